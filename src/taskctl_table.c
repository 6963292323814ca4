/* taskctl_table.c - renders tasks as a table that fits the terminal, whatever they contain. */
#include "taskctl_table.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define TABLE_CREADA_WIDTH 20 /* "2026-11-26T15:00:00Z" */
#define TABLE_PID_WIDTH 7
#define TABLE_HOST_WIDTH 12 /* "server-3", a container's 12-digit id */
#define TABLE_CLIENTE_WIDTH 12
#define TABLE_SEQ_WIDTH 6
#define TABLE_GAP 2
#define TABLE_TITULO_MIN 10
/* The host column is shown only where the titulo keeps this much room beside it: at 80
 * columns the titulo matters more (the host is in `list --json` and `verify`). */
#define TABLE_TITULO_BESIDE_HOST 20

/* Decodes one UTF-8 sequence at s (len > 0). Returns its length and sets *cp,
 * or 0 when the bytes are not valid UTF-8 (overlong, surrogate, too large). */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    size_t n;
    uint32_t c = s[0], min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        n = 2, c &= 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, c &= 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, c &= 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

/* Terminal columns of a printable code point. A small table rather than
 * wcwidth(): wcwidth() depends on the locale, and under the C locale (cron,
 * tests, containers) it calls every non-ASCII character unprintable. */
static int codepoint_width(uint32_t c)
{
    if ((c >= 0x0300 && c <= 0x036F) || (c >= 0x200B && c <= 0x200F) ||
        (c >= 0xFE00 && c <= 0xFE0F) || (c >= 0xE0100 && c <= 0xE01EF) || c == 0x20E3)
        return 0; /* combining marks, zero-width spaces, variation selectors */
    if ((c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0x303E) ||
        (c >= 0x3041 && c <= 0x33FF) || (c >= 0x3400 && c <= 0x4DBF) ||
        (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xA000 && c <= 0xA4CF) ||
        (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) ||
        (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
        (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x1F300 && c <= 0x1F64F) ||
        (c >= 0x1F900 && c <= 0x1F9FF) || (c >= 0x1FA70 && c <= 0x1FAFF) ||
        (c >= 0x20000 && c <= 0x3FFFD))
        return 2;
    return 1;
}

/* One displayable unit: the bytes to print and the columns they take. */
struct cell_unit {
    char text[8];
    size_t text_len;
    int width;
    size_t consumed; /* input bytes */
};

static void cell_next(const char *s, size_t len, struct cell_unit *u)
{
    unsigned char c = (unsigned char)s[0];
    uint32_t cp;
    size_t n;
    if (c < 0x20 || c == 0x7F) {
        static const char hex[] = "0123456789abcdef";
        const char *esc = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
        if (esc != NULL) {
            memcpy(u->text, esc, 2);
            u->text_len = 2;
        } else {
            memcpy(u->text, "\\x", 2);
            u->text[2] = hex[c >> 4];
            u->text[3] = hex[c & 15];
            u->text_len = 4;
        }
        u->width = (int)u->text_len;
        u->consumed = 1;
    } else if ((n = utf8_decode((const unsigned char *)s, len, &cp)) == 0) {
        u->text[0] = '?';
        u->text_len = 1;
        u->width = 1;
        u->consumed = 1;
    } else {
        memcpy(u->text, s, n);
        u->text_len = n;
        u->width = (cp >= 0x80 && cp < 0xA0) ? 1 : codepoint_width(cp);
        if (cp >= 0x80 && cp < 0xA0) { /* C1 controls: escape them too */
            u->text[0] = '?';
            u->text_len = 1;
        }
        u->consumed = n;
    }
}

/* Columns s would take in full, stopping early once it exceeds limit. */
static int cell_width(const char *s, size_t len, int limit)
{
    int w = 0;
    struct cell_unit u;
    for (size_t i = 0; i < len && w <= limit; i += u.consumed) {
        cell_next(s + i, len - i, &u);
        w += u.width;
    }
    return w;
}

int taskctl_table_print_cell(FILE *out, const char *s, size_t len, int max_cols)
{
    int fits = cell_width(s, len, max_cols) <= max_cols;
    int limit = fits ? max_cols : max_cols - 3;
    int w = 0;
    struct cell_unit u;
    for (size_t i = 0; i < len; i += u.consumed) {
        cell_next(s + i, len - i, &u);
        if (w + u.width > limit)
            break;
        fwrite(u.text, 1, u.text_len, out);
        w += u.width;
    }
    if (!fits && max_cols >= 3) {
        fputs("...", out);
        w += 3;
    }
    return w;
}

static void print_padded(FILE *out, const char *s, size_t len, int width, int right)
{
    int w = cell_width(s, len, width);
    if (w > width)
        w = width;
    if (right)
        fprintf(out, "%*s", width - w, "");
    w = taskctl_table_print_cell(out, s, len, width);
    if (!right)
        fprintf(out, "%*s", width - w, "");
}

int taskctl_table_columns(void)
{
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    const char *env = getenv("COLUMNS");
    if (env != NULL) {
        char *end;
        long v = strtol(env, &end, 10);
        if (end != env && *end == '\0' && v > 0 && v <= 10000)
            return (int)v;
    }
    return 80;
}

void taskctl_table_init(struct taskctl_table *t, int columns, uint64_t num_tasks)
{
    if (columns < TASKCTL_TABLE_MIN_COLUMNS)
        columns = TASKCTL_TABLE_MIN_COLUMNS;
    t->id_width = 2;
    for (uint64_t n = num_tasks; n >= 100; n /= 10)
        t->id_width++;
    int fixed = t->id_width + TABLE_CREADA_WIDTH + TABLE_PID_WIDTH + TABLE_CLIENTE_WIDTH +
                TABLE_SEQ_WIDTH + 5 * TABLE_GAP;
    t->host = columns - fixed - TABLE_HOST_WIDTH - TABLE_GAP >= TABLE_TITULO_BESIDE_HOST;
    if (t->host)
        fixed += TABLE_HOST_WIDTH + TABLE_GAP;
    t->titulo_width = columns - fixed;
    if (t->titulo_width < TABLE_TITULO_MIN)
        t->titulo_width = TABLE_TITULO_MIN;
}

void taskctl_table_header(const struct taskctl_table *t, FILE *out)
{
    fprintf(out, "%*s  %-*s  %*s  ", t->id_width, "id", TABLE_CREADA_WIDTH, "creada",
            TABLE_PID_WIDTH, "pid");
    if (t->host)
        fprintf(out, "%-*s  ", TABLE_HOST_WIDTH, "host");
    fprintf(out, "%-*s  %*s  %s\n", TABLE_CLIENTE_WIDTH, "cliente", TABLE_SEQ_WIDTH, "seq",
            "titulo");
}

void taskctl_table_row(const struct taskctl_table *t, FILE *out, const struct task_record *rec)
{
    const struct task *k = &rec->task;
    char num[32];
    fprintf(out, "%*llu  ", t->id_width, (unsigned long long)rec->id);
    if (rec->creada[0] != '\0')
        print_padded(out, rec->creada, strlen(rec->creada), TABLE_CREADA_WIDTH, 0);
    else
        print_padded(out, "-", 1, TABLE_CREADA_WIDTH, 0);
    fputs("  ", out);
    if (rec->pid >= 0)
        snprintf(num, sizeof(num), "%ld", rec->pid);
    else
        strcpy(num, "-");
    print_padded(out, num, strlen(num), TABLE_PID_WIDTH, 1);
    fputs("  ", out);
    if (t->host) {
        if (rec->host[0] != '\0')
            print_padded(out, rec->host, strlen(rec->host), TABLE_HOST_WIDTH, 0);
        else
            print_padded(out, "-", 1, TABLE_HOST_WIDTH, 0);
        fputs("  ", out);
    }
    if (k->has_cliente)
        print_padded(out, k->cliente, strlen(k->cliente), TABLE_CLIENTE_WIDTH, 0);
    else
        print_padded(out, "-", 1, TABLE_CLIENTE_WIDTH, 0);
    fputs("  ", out);
    if (k->seq >= 0)
        snprintf(num, sizeof(num), "%lld", (long long)k->seq);
    else
        strcpy(num, "-");
    print_padded(out, num, strlen(num), TABLE_SEQ_WIDTH, 1);
    fputs("  ", out);
    taskctl_table_print_cell(out, k->titulo, strlen(k->titulo), t->titulo_width);
    fputc('\n', out);
}
