/* taskctl_verify.c - streaming verification of tasks.json: layout, ids, seq per cliente, count. */
#include "taskctl_verify.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "task_json.h"
#include "task_store.h"
#include "taskctl_lines.h"
#include "taskctl_table.h"

#define VERIFY_DAMAGE_LIST 5 /* damage places described one by one */
#define VERIFY_HOSTS_MAX 64  /* hosts counted one by one; the rest together */

/* The seq values seen for one cliente: bit n of seen is set when seq n was
 * found, bit n of doubled when it was found again. */
struct verify_cliente {
    char name[TASK_CLIENTE_MAX + 1];
    int has_name; /* 0: the records that carry a seq but no cliente */
    uint8_t *seen;
    uint8_t *doubled;
    uint64_t num_bits;  /* capacity of both bitmaps */
    int64_t max_seq;    /* -1 before the first */
    uint64_t num_extra; /* copies beyond the first, over all doubled seqs */
    uint64_t num_too_large;
    int64_t first_too_large;
};

/* The judged records one server stored ("host" field): several replicas on one file. */
struct verify_host {
    char name[TASK_HOST_MAX + 1];
    uint64_t count;
};

struct verify_damage {
    off_t offset;
    uint64_t line;
    char reason[320];
};

enum verify_layout {
    VERIFY_EXPECT_OPEN, /* before the "[" line */
    VERIFY_IN_LIST,     /* between "[" and "]" */
    VERIFY_AFTER_CLOSE  /* after the "]" line: nothing may follow */
};

struct verify_state {
    struct verify_cliente **clientes;
    size_t num_clientes;
    size_t clientes_cap;
    size_t *slots; /* open addressing: index + 1 into clientes, 0 free */
    size_t num_slots;

    enum verify_layout layout;
    int prev_record; /* the previous line was a record */
    int prev_comma;  /* ... and it ended with a comma */
    off_t prev_end;  /* offset just past it (and its comma) */
    uint64_t prev_line;

    uint64_t num_records; /* lines that decode as a record */
    uint64_t first_id, last_id;
    uint64_t num_id_errors;
    uint64_t id_error_line, id_error_id, id_error_prev;

    const char *glob;      /* only clientes matching it are judged; NULL: all */
    uint64_t num_selected; /* records judged (all of them without a glob) */
    uint64_t num_switches; /* adjacent judged records of different clientes */
    int prev_has_cliente;  /* the previous judged record: -1 none, 0 no cliente, 1 one */
    char prev_cliente[TASK_CLIENTE_MAX + 1];

    struct verify_host hosts[VERIFY_HOSTS_MAX];
    size_t num_hosts;
    uint64_t num_hosted;     /* judged records that name their host */
    uint64_t num_host_other; /* ... whose host is past the first VERIFY_HOSTS_MAX */

    int last_closes;     /* the last line ends with ']' (another layout's end) */
    int other_layout;    /* judged from the whole-file JSON parse, not line by line */
    uint64_t renumbered; /* other_layout: records whose id the store's rewrite changes */
    char other_why[256]; /* the line damage stands: why the whole-file parse did not help */
    int other_too_large; /* ... as the file is over TASKCTL_VERIFY_PARSE_MAX: not parsed */
    uint64_t num_damaged;
    struct verify_damage damage[VERIFY_DAMAGE_LIST];
    int oom;
};

static void verify_damage(struct verify_state *st, off_t offset, uint64_t line, const char *reason)
{
    if (st->num_damaged < VERIFY_DAMAGE_LIST) {
        struct verify_damage *d = &st->damage[st->num_damaged];
        d->offset = offset;
        d->line = line;
        snprintf(d->reason, sizeof(d->reason), "%s", reason);
    }
    st->num_damaged++;
}

static uint64_t cliente_hash(const char *name, int has_name)
{
    uint64_t h = has_name ? 14695981039346656037ULL : 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static int cliente_grow_index(struct verify_state *st)
{
    size_t n = st->num_slots ? st->num_slots * 2 : 64;
    size_t *slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < st->num_clientes; i++) {
        const struct verify_cliente *c = st->clientes[i];
        size_t j = (size_t)cliente_hash(c->name, c->has_name) & (n - 1);
        while (slots[j] != 0)
            j = (j + 1) & (n - 1);
        slots[j] = i + 1;
    }
    free(st->slots);
    st->slots = slots;
    st->num_slots = n;
    return 0;
}

/* Finds or adds the cliente. Returns NULL when out of memory. */
static struct verify_cliente *cliente_get(struct verify_state *st, const char *name, int has_name)
{
    if (!has_name)
        name = "";
    /* Keep the table at most half full so probe sequences stay short. */
    if ((st->num_clientes + 1) * 2 > st->num_slots && cliente_grow_index(st) < 0)
        return NULL;
    size_t mask = st->num_slots - 1;
    size_t j = (size_t)cliente_hash(name, has_name) & mask;
    for (; st->slots[j] != 0; j = (j + 1) & mask) {
        struct verify_cliente *c = st->clientes[st->slots[j] - 1];
        if (c->has_name == has_name && strcmp(c->name, name) == 0)
            return c;
    }
    if (st->num_clientes == st->clientes_cap) {
        size_t cap = st->clientes_cap ? st->clientes_cap * 2 : 16;
        struct verify_cliente **v = realloc(st->clientes, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        st->clientes = v;
        st->clientes_cap = cap;
    }
    struct verify_cliente *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->has_name = has_name;
    c->max_seq = -1;
    st->clientes[st->num_clientes++] = c;
    st->slots[j] = st->num_clientes;
    return c;
}

static int bit_get(const uint8_t *map, uint64_t n)
{
    return (map[n >> 3] >> (n & 7)) & 1;
}

static void bit_set(uint8_t *map, uint64_t n)
{
    map[n >> 3] |= (uint8_t)(1u << (n & 7));
}

/* Makes both bitmaps hold bit seq. Returns 0 or -1 (out of memory). */
static int cliente_reserve(struct verify_cliente *c, uint64_t seq)
{
    if (seq < c->num_bits)
        return 0;
    uint64_t bits = c->num_bits ? c->num_bits : 1024;
    while (bits <= seq)
        bits *= 2;
    if (bits > (uint64_t)TASKCTL_VERIFY_SEQ_LIMIT)
        bits = (uint64_t)TASKCTL_VERIFY_SEQ_LIMIT;
    size_t old_bytes = (size_t)(c->num_bits / 8), bytes = (size_t)(bits / 8);
    uint8_t *seen = realloc(c->seen, bytes);
    if (seen == NULL)
        return -1;
    c->seen = seen;
    uint8_t *doubled = realloc(c->doubled, bytes);
    if (doubled == NULL)
        return -1;
    c->doubled = doubled;
    memset(c->seen + old_bytes, 0, bytes - old_bytes);
    memset(c->doubled + old_bytes, 0, bytes - old_bytes);
    c->num_bits = bits;
    return 0;
}

static void verify_seq(struct verify_state *st, const struct task *t)
{
    struct verify_cliente *c = cliente_get(st, t->cliente, t->has_cliente);
    if (c == NULL) {
        st->oom = 1;
        return;
    }
    if (t->seq >= TASKCTL_VERIFY_SEQ_LIMIT) {
        if (c->num_too_large++ == 0)
            c->first_too_large = t->seq;
        return;
    }
    uint64_t seq = (uint64_t)t->seq;
    if (cliente_reserve(c, seq) < 0) {
        st->oom = 1;
        return;
    }
    if (bit_get(c->seen, seq)) {
        bit_set(c->doubled, seq);
        c->num_extra++;
    } else {
        bit_set(c->seen, seq);
    }
    if (t->seq > c->max_seq)
        c->max_seq = t->seq;
}

/* Counts a judged record for its host. A linear search: a run has a few replicas. */
static void verify_host(struct verify_state *st, const char *host)
{
    if (host[0] == '\0')
        return;
    st->num_hosted++;
    for (size_t i = 0; i < st->num_hosts; i++) {
        if (strcmp(st->hosts[i].name, host) == 0) {
            st->hosts[i].count++;
            return;
        }
    }
    if (st->num_hosts == VERIFY_HOSTS_MAX) {
        st->num_host_other++;
        return;
    }
    struct verify_host *h = &st->hosts[st->num_hosts++];
    snprintf(h->name, sizeof(h->name), "%s", host);
    h->count = 1;
}

static void verify_record(struct verify_state *st, const struct task_record *rec, uint64_t line)
{
    if (st->num_records == 0) {
        st->first_id = rec->id;
    } else if (rec->id <= st->last_id) {
        if (st->num_id_errors++ == 0) {
            st->id_error_line = line;
            st->id_error_id = rec->id;
            st->id_error_prev = st->last_id;
        }
    }
    if (st->num_records == 0 || rec->id > st->last_id)
        st->last_id = rec->id;
    st->num_records++;
    const struct task *t = &rec->task;
    if (st->glob != NULL && (!t->has_cliente || fnmatch(st->glob, t->cliente, 0) != 0))
        return;
    st->num_selected++;
    verify_host(st, rec->host);
    int has = t->has_cliente;
    if (st->prev_has_cliente >= 0 &&
        (has != st->prev_has_cliente || (has && strcmp(t->cliente, st->prev_cliente) != 0)))
        st->num_switches++;
    st->prev_has_cliente = has;
    snprintf(st->prev_cliente, sizeof(st->prev_cliente), "%s", has ? t->cliente : "");
    if (t->seq >= 0)
        verify_seq(st, t);
}

/* The line was read as a record, or began as one (it starts with '{'). */
static int verify_starts_record(const struct task_json_line *it)
{
    return it->kind == TASK_JSON_LINE_RECORD || it->damage == TASK_JSON_DAMAGE_BAD_RECORD ||
           it->damage == TASK_JSON_DAMAGE_AFTER_RECORD;
}

/* One line between "[" and "]" that starts with '{', classified into it and rec. */
static void verify_record_line(struct verify_state *st, const struct taskctl_line *l,
                               const struct task_json_line *it, const struct task_record *rec)
{
    char why[320];
    size_t len = l->len;
    /* The line's last byte, not it->comma: a damaged record still owes no comma when it
     * was written with one, so the damage is reported once, not again on the next line. */
    int comma = len > 0 && l->text[len - 1] == ',';
    if (comma)
        len--;
    if (st->prev_record && !st->prev_comma)
        verify_damage(st, st->prev_end, st->prev_line, "missing comma between two records");
    if (it->kind != TASK_JSON_LINE_RECORD) {
        off_t at = l->offset + (off_t)(it->at <= l->len ? it->at : 0);
        if (!l->has_newline)
            snprintf(why, sizeof(why), "torn tail, the last record is incomplete: %s", it->why);
        else
            snprintf(why, sizeof(why), "record is not valid: %s", it->why);
        verify_damage(st, at, l->number, why);
    } else {
        verify_record(st, rec, l->number);
    }
    st->prev_record = 1;
    st->prev_comma = comma;
    st->prev_end = l->offset + (off_t)len;
    st->prev_line = l->number;
}

static int ends_with_bracket(const struct taskctl_line *l)
{
    size_t n = l->len;
    while (n > 0 && (l->text[n - 1] == ' ' || l->text[n - 1] == '\t' || l->text[n - 1] == '\r'))
        n--;
    return n > 0 && l->text[n - 1] == ']';
}

static void verify_line(struct verify_state *st, const struct taskctl_line *l)
{
    static struct task_record rec; /* 5 KiB: keep it off the stack */
    struct task_json_line it;
    char why[128];
    st->last_closes = !l->too_long && ends_with_bracket(l);
    if (l->too_long) {
        snprintf(why, sizeof(why), "line longer than %d bytes", TASKCTL_LINES_MAX);
        verify_damage(st, l->offset, l->number, why);
        st->prev_record = 0;
        return;
    }
    /* One item per line, nothing around it: the store's layout. */
    enum task_json_line_kind kind = task_json_line_read(l->text, l->len, 0, &rec, &it);
    switch (st->layout) {
    case VERIFY_EXPECT_OPEN:
        st->layout = VERIFY_IN_LIST;
        if (kind == TASK_JSON_LINE_OPEN && l->has_newline)
            return;
        verify_damage(st, l->offset, l->number,
                      "the first line is not \"[\": another layout or damage "
                      "(taskctl check tells which; taskctl repair rewrites a valid array)");
        if (verify_starts_record(&it))
            verify_record_line(st, l, &it, &rec);
        return;
    case VERIFY_IN_LIST:
        if (kind == TASK_JSON_LINE_CLOSE) {
            if (st->prev_record && st->prev_comma)
                verify_damage(st, st->prev_end, st->prev_line, "comma after the last record");
            if (!l->has_newline)
                verify_damage(st, l->offset + 1, l->number, "no newline after the closing \"]\"");
            st->layout = VERIFY_AFTER_CLOSE;
            return;
        }
        if (verify_starts_record(&it)) {
            verify_record_line(st, l, &it, &rec);
            return;
        }
        verify_damage(st, l->offset, l->number,
                      l->has_newline || st->last_closes
                          ? "not one record per line (another layout or damage: taskctl "
                            "check tells which)"
                          : "torn tail: the file ends inside a line");
        st->prev_record = 0;
        return;
    case VERIFY_AFTER_CLOSE:
        verify_damage(st, l->offset, l->number, "bytes after the closing \"]\"");
        /* Still counted when it is a whole record: writers without the lock leave a "]"
         * in the middle of the list (one append's end overwritten by another's shorter
         * one) and go on appending after it. A line reader finds those records, so they
         * are stored; only a JSON parser, which stops at the first "]", does not. */
        if (verify_starts_record(&it)) {
            st->prev_record = 0; /* no comma is owed across the "]" */
            verify_record_line(st, l, &it, &rec);
        }
        return;
    }
}

static void verify_release(struct verify_state *st)
{
    for (size_t i = 0; i < st->num_clientes; i++) {
        free(st->clientes[i]->seen);
        free(st->clientes[i]->doubled);
        free(st->clientes[i]);
    }
    free(st->clientes);
    free(st->slots);
}

static void verify_state_init(struct verify_state *st, const char *glob)
{
    memset(st, 0, sizeof(*st));
    st->glob = glob;
    st->prev_has_cliente = -1;
}

/* One element of a file in another layout, re-encoded on one line by task_json_canonicalize()
 * with the id the store will give it. */
static int verify_other_emit(void *arg, const char *line, size_t len)
{
    static struct task_record rec; /* 5 KiB: keep it off the stack */
    struct verify_state *st = arg;
    char err[160];
    if (task_json_decode_record(line, len, &rec, NULL, err, sizeof(err)) < 0)
        return -1; /* cannot happen: canonicalize writes {"id":n first */
    verify_record(st, &rec, 0);
    return st->oom ? -1 : 0;
}

static ssize_t verify_pread_full(int fd, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* The line reader found the file out of the store's layout. A valid JSON array of objects in
 * any layout ("[]" from `echo "[]" >`, python3 -m json.tool's output) is no damage: the store
 * rewrites it in its own layout at its next request or start, ids renumbered 1..n. Then st is
 * refilled with the records the store will hold, and 1 returned; 0 when the file is not such an
 * array (st->other_why says why) or too large to parse whole (st->other_too_large), st keeping the
 * line reader's findings; -1 on a read error or out of memory (errno). */
static int verify_other_layout(struct verify_state *st, int fd, off_t size)
{
    char jerr[160];
    size_t jerr_off = 0, renumbered = 0;
    if (size > TASKCTL_VERIFY_PARSE_MAX) {
        st->other_too_large = 1;
        return 0;
    }
    char *text = malloc((size_t)size + 1);
    if (text == NULL)
        return -1;
    ssize_t n = verify_pread_full(fd, text, (size_t)size);
    if (n < 0) {
        free(text);
        return -1;
    }
    struct verify_state *whole = malloc(sizeof(*whole));
    if (whole == NULL) {
        free(text);
        return -1;
    }
    verify_state_init(whole, st->glob);
    long count = task_json_canonicalize(text, (size_t)n, verify_other_emit, whole, jerr,
                                        sizeof(jerr), &jerr_off, &renumbered);
    free(text);
    if (whole->oom) {
        verify_release(whole);
        free(whole);
        errno = ENOMEM;
        return -1;
    }
    if (count < 0) {
        snprintf(st->other_why, sizeof(st->other_why), "byte %zu: %s", jerr_off, jerr);
        verify_release(whole);
        free(whole);
        return 0;
    }
    verify_release(st);
    *st = *whole;
    free(whole);
    st->other_layout = 1;
    st->renumbered = renumbered;
    return 1;
}

/* Prints up to TASKCTL_VERIFY_LIST_MAX of c's missing (or, with doubled, doubled) seq numbers. */
static void print_seq_list(FILE *out, const struct verify_cliente *c, int doubled)
{
    int listed = 0;
    for (int64_t s = doubled ? 0 : 1; s <= c->max_seq && listed < TASKCTL_VERIFY_LIST_MAX; s++) {
        int hit = doubled ? bit_get(c->doubled, (uint64_t)s) : !bit_get(c->seen, (uint64_t)s);
        if (hit) {
            fprintf(out, " %lld", (long long)s);
            listed++;
        }
    }
}

static void print_cliente(FILE *out, const struct verify_cliente *c)
{
    if (c->has_name) {
        fputs("cliente \"", out);
        taskctl_table_print_cell(out, c->name, strlen(c->name), 64);
        fputc('"', out);
    } else {
        fputs("tasks without cliente", out);
    }
}

/* Reports the seq values of every cliente. Returns the number of clientes with a problem. */
static size_t verify_report_seq(const struct verify_state *st, FILE *out)
{
    size_t bad = 0;
    for (size_t i = 0; i < st->num_clientes; i++) {
        const struct verify_cliente *c = st->clientes[i];
        uint64_t missing = 0, doubled = 0;
        for (int64_t s = 1; s <= c->max_seq; s++)
            missing += !bit_get(c->seen, (uint64_t)s);
        for (int64_t s = 0; s <= c->max_seq; s++)
            doubled += bit_get(c->doubled, (uint64_t)s);
        if (missing == 0 && doubled == 0 && c->num_too_large == 0)
            continue;
        bad++;
        if (missing > 0) {
            print_cliente(out, c);
            fprintf(out, ": seq 1..%lld: %llu missing:", (long long)c->max_seq,
                    (unsigned long long)missing);
            print_seq_list(out, c, 0);
            fputs(missing > TASKCTL_VERIFY_LIST_MAX ? " ...\n" : "\n", out);
        }
        if (doubled > 0) {
            print_cliente(out, c);
            /* Seq 0 may be doubled too: the range starts where the doubles do. */
            fprintf(out, ": seq %d..%lld: %llu doubled (%llu extra copies):",
                    bit_get(c->doubled, 0) ? 0 : 1, (long long)c->max_seq,
                    (unsigned long long)doubled, (unsigned long long)c->num_extra);
            print_seq_list(out, c, 1);
            fputs(doubled > TASKCTL_VERIFY_LIST_MAX ? " ...\n" : "\n", out);
        }
        if (c->num_too_large > 0) {
            print_cliente(out, c);
            fprintf(out, ": %llu seq values of %lld or more cannot be checked, the first %lld\n",
                    (unsigned long long)c->num_too_large, (long long)TASKCTL_VERIFY_SEQ_LIMIT,
                    (long long)c->first_too_large);
        }
    }
    return bad;
}

static int host_cmp(const void *a, const void *b)
{
    return strcmp(((const struct verify_host *)a)->name, ((const struct verify_host *)b)->name);
}

/* Who stored the judged records, host by host (only when some record names its host). */
static void verify_report_hosts(struct verify_state *st, FILE *out)
{
    if (st->num_hosted == 0)
        return;
    qsort(st->hosts, st->num_hosts, sizeof(st->hosts[0]), host_cmp);
    fprintf(out, "hosts: %zu%s stored the %llu judged records", st->num_hosts,
            st->num_host_other ? " and more" : "", (unsigned long long)st->num_selected);
    if (st->num_hosted < st->num_selected)
        fprintf(out, " (%llu of them name no host: written before records did)",
                (unsigned long long)(st->num_selected - st->num_hosted));
    fputc('\n', out);
    for (size_t i = 0; i < st->num_hosts; i++) {
        fputs("host ", out);
        taskctl_table_print_cell(out, st->hosts[i].name, strlen(st->hosts[i].name), TASK_HOST_MAX);
        fprintf(out, ": %llu (%.1f%%)\n", (unsigned long long)st->hosts[i].count,
                100.0 * (double)st->hosts[i].count / (double)st->num_selected);
    }
    if (st->num_host_other > 0)
        fprintf(out, "hosts beyond the first %d: %llu records\n", VERIFY_HOSTS_MAX,
                (unsigned long long)st->num_host_other);
}

static int cliente_cmp(const void *a, const void *b)
{
    const struct verify_cliente *x = *(struct verify_cliente *const *)a;
    const struct verify_cliente *y = *(struct verify_cliente *const *)b;
    if (x->has_name != y->has_name)
        return x->has_name - y->has_name;
    return strcmp(x->name, y->name);
}

/* Prints the verdict. Returns 0 passed, 1 failed. */
static int verify_report(struct verify_state *st, const char *path, off_t size, uint64_t lines,
                         const struct taskctl_verify_options *opts, FILE *out)
{
    int bad_ids = 0, bad_count = 0, no_match = 0;
    size_t bad_seq;
    fprintf(out, "file: %s (%lld bytes, %llu lines)\n", path, (long long)size,
            (unsigned long long)lines);
    if (size == 0)
        fputs("file is empty (0 bytes): the store reads it as an empty list\n", out);
    if (st->other_layout && st->num_records == 0)
        fputs("layout: not the store's (\"[\", one record per line, \"]\"): an empty JSON "
              "array, which the server rewrites as \"[\\n]\\n\" at its next request or start "
              "(taskctl add and repair too)\n",
              out);
    else if (st->other_layout)
        fprintf(out,
                "layout: not the store's (\"[\", one record per line, \"]\"): a JSON array of "
                "%llu records (%llu of them get a new id), which the server rewrites in the "
                "store's layout, ids 1..%llu, at its next request or start (taskctl add and "
                "repair too, keeping the original beside it); judged as it will hold them\n",
                (unsigned long long)st->num_records, (unsigned long long)st->renumbered,
                (unsigned long long)st->num_records);
    for (uint64_t i = 0; i < st->num_damaged && i < VERIFY_DAMAGE_LIST; i++)
        fprintf(out, "damage: byte %lld, line %llu: %s\n", (long long)st->damage[i].offset,
                (unsigned long long)st->damage[i].line, st->damage[i].reason);
    if (st->num_damaged > VERIFY_DAMAGE_LIST)
        fprintf(out, "damage: %llu places in all\n", (unsigned long long)st->num_damaged);
    if (st->num_records > 0)
        fprintf(out, "records: %llu readable, ids %llu..%llu\n",
                (unsigned long long)st->num_records, (unsigned long long)st->first_id,
                (unsigned long long)st->last_id);
    else
        fprintf(out, "records: 0 readable\n");
    if (st->num_damaged > 0 && st->other_too_large)
        fprintf(out,
                "json: not parsed whole, being over %ld bytes (the store refuses to rewrite "
                "another layout that large too); the counts here are of the records readable "
                "line by line\n",
                TASKCTL_VERIFY_PARSE_MAX);
    else if (st->num_damaged > 0)
        fprintf(out,
                "json: not a valid JSON array of objects either (%s); the counts here are of the "
                "records readable line by line (a JSON parser such as python3 -m json.tool reads "
                "none of them when the damage breaks the JSON)\n",
                st->other_why);
    if (st->glob != NULL)
        fprintf(out, "selected: %llu of %llu records, those whose cliente matches \"%s\"\n",
                (unsigned long long)st->num_selected, (unsigned long long)st->num_records,
                st->glob);
    /* Nothing selected is a typo in the pattern far more often than an empty run: it fails,
     * unless --expect 0 says that none is what is wanted. */
    if (st->glob != NULL && st->num_selected == 0 && !(opts->has_expect && opts->expect == 0)) {
        no_match = 1;
        fprintf(out,
                "selected: no record's cliente matches \"%s\" (a typo in the pattern? "
                "--expect 0 if none should)\n",
                st->glob);
    }
    if (st->num_id_errors > 0) {
        bad_ids = 1;
        fprintf(out,
                "ids: %llu not greater than the id before them, the first on line %llu "
                "(id %llu after id %llu)\n",
                (unsigned long long)st->num_id_errors, (unsigned long long)st->id_error_line,
                (unsigned long long)st->id_error_id, (unsigned long long)st->id_error_prev);
    } else {
        fputs("ids: unique and increasing\n", out);
    }
    if (st->num_clientes > 1)
        qsort(st->clientes, st->num_clientes, sizeof(*st->clientes), cliente_cmp);
    bad_seq = verify_report_seq(st, out);
    fprintf(out, "seq: %zu clientes with seq, %zu complete (1..max, each exactly once)\n",
            st->num_clientes, st->num_clientes - bad_seq);
    if (st->num_clientes > 1)
        fprintf(out,
                "interleaving: %llu switches between clientes in file order (at most %llu for "
                "these %llu records)\n",
                (unsigned long long)st->num_switches,
                (unsigned long long)(st->num_selected ? st->num_selected - 1 : 0),
                (unsigned long long)st->num_selected);
    verify_report_hosts(st, out);
    if (opts->has_expect) {
        bad_count = st->num_selected != opts->expect;
        fprintf(out, "count: expected %llu, found %llu\n", (unsigned long long)opts->expect,
                (unsigned long long)st->num_selected);
    }
    if (st->num_damaged == 0 && !bad_ids && bad_seq == 0 && !bad_count && !no_match) {
        fprintf(out, "verdict: OK: %llu tasks\n", (unsigned long long)st->num_selected);
        return 0;
    }
    fprintf(out, "verdict: FAILED:%s%s%s%s%s\n", st->num_damaged ? " damaged" : "",
            bad_ids ? " ids" : "", bad_seq ? " seq" : "", bad_count ? " count" : "",
            no_match ? " no match" : "");
    return 1;
}

int taskctl_verify(const char *path, const struct taskctl_verify_options *opts, FILE *out,
                   char *err, size_t err_len)
{
    struct verify_state st;
    struct taskctl_lines reader;
    struct taskctl_line line;
    int rc = -1, fd, saved;

    verify_state_init(&st, opts->cliente_glob);
    /* Under the read lock for the whole reading, so that no append is half
     * done in what we see (writers wait meanwhile: about 0.7 s per million
     * tasks). */
    fd = task_store_reader_open(path, err, err_len);
    if (fd < 0)
        return -1;
    if (taskctl_lines_init(&reader, fd, -1) < 0) {
        snprintf(err, err_len, "verify %s: %s", path, strerror(errno));
        goto out_close;
    }
    while ((rc = taskctl_lines_next(&reader, &line)) > 0 && !st.oom)
        verify_line(&st, &line);
    if (rc < 0) {
        snprintf(err, err_len, "read %s: %s", path, strerror(errno));
        goto out_release;
    }
    if (st.oom) {
        errno = ENOMEM;
        snprintf(err, err_len, "verify %s: out of memory for the seq bitmaps", path);
        rc = -1;
        goto out_release;
    }
    off_t size = reader.read_pos;
    /* A file in another layout ("[]", pretty-printed) ends with ']' too:
     * its damage is already reported line by line, it is not torn. */
    if (size > 0 && st.layout != VERIFY_AFTER_CLOSE && !st.last_closes)
        verify_damage(&st, size, reader.number,
                      "no closing \"]\": the file ends inside the list (a torn tail)");
    if (st.num_damaged > 0 && verify_other_layout(&st, fd, size) < 0) {
        snprintf(err, err_len, "verify %s: reading it whole as JSON: %s", path, strerror(errno));
        rc = -1;
        goto out_release;
    }
    rc = verify_report(&st, path, size, reader.number, opts, out);
out_release:
    taskctl_lines_release(&reader);
out_close:
    saved = errno;
    task_store_reader_close(fd);
    verify_release(&st);
    errno = saved;
    return rc;
}
