/* fuzz_task_json.c - libFuzzer harness: the task JSON decoder accepts only what round-trips, and
 * canonicalization emits only lines the record decoder reads back.
 *
 * Build and run with tools/fuzz task_json SECONDS. Each input is tried four
 * ways: as a client body (task_json_decode_input), as a stored record line
 * (task_json_decode_record), as a line of tasks.json (task_json_line_read) and
 * as a foreign file (task_json_canonicalize).
 * Every buffer handed to the decoders is a heap copy of exactly the input
 * bytes, so AddressSanitizer reports any read past the end. A broken promise
 * of task_json.h is a crash (__builtin_trap), so libFuzzer saves the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "task_json.h"

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

static uint64_t hash_of(const uint8_t *data, size_t size)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ULL;
    return h;
}

/* An error message is NUL-terminated within its buffer, not empty, and holds
 * no control byte: it ends up in one log line and in a 400 body. */
static void check_message(const char *err, size_t err_len)
{
    size_t n = strnlen(err, err_len);
    check(n > 0 && n < err_len);
    for (size_t i = 0; i < n; i++)
        check((unsigned char)err[i] >= 0x20);
}

/* A string field as task_json.h promises it: NUL-terminated, strlen == _len. */
static void check_field(const char *s, size_t len, size_t min, size_t max)
{
    check(len >= min && len <= max);
    check(strlen(s) == len);
}

static int same_field(const char *a, size_t a_len, const char *b, size_t b_len)
{
    return a_len == b_len && memcmp(a, b, a_len) == 0;
}

/* An accepted task, encoded as a record and decoded back, must come back
 * field for field, with exactly the meta it was stored with. */
static void fuzz_round_trip(const struct task *t, uint64_t h)
{
    struct task_meta meta;
    struct task_record *rec = malloc(sizeof(*rec));
    char *line = malloc(TASK_JSON_RECORD_MAX);
    char when[40];
    char err[256];
    size_t end = 0;

    if (rec == NULL || line == NULL)
        abort();
    /* Any id a store can reach (ids stay below 2^53: exact in every JSON
     * reader), any time (format_time must cope), any pid. */
    meta.id = 1 + h % (uint64_t)TASK_SEQ_MAX;
    meta.creada = (int64_t)(h * 2862933555777941757ULL);
    meta.pid = (long)((h >> 17) & 0x7fffffff);
    meta.host = (h & 1) ? "server-1" : NULL; /* with several servers, and with one */

    long n = task_json_encode_record(t, &meta, line, TASK_JSON_RECORD_MAX);
    check(n > 0 && n <= TASK_JSON_RECORD_MAX);
    /* One record per line: no raw control byte, so no newline, ever. */
    for (long i = 0; i < n; i++)
        check((unsigned char)line[i] >= 0x20);
    /* Too small a buffer is refused, never overrun (the copy is exact). */
    char *tight = malloc((size_t)n);
    if (tight == NULL)
        abort();
    check(task_json_encode_record(t, &meta, tight, (size_t)n - 1) == -1);
    check(task_json_encode_record(t, &meta, tight, (size_t)n) == n);
    check(memcmp(tight, line, (size_t)n) == 0);
    free(tight);

    check(task_json_decode_record(line, (size_t)n, rec, &end, err, sizeof(err)) == 0);
    check(end == (size_t)n);
    check(rec->id == meta.id);
    check(same_field(rec->task.titulo, rec->task.titulo_len, t->titulo, t->titulo_len));
    check(rec->task.has_descripcion == t->has_descripcion);
    check(same_field(rec->task.descripcion, rec->task.descripcion_len, t->descripcion,
                     t->descripcion_len));
    check(rec->task.has_cliente == t->has_cliente);
    check(same_field(rec->task.cliente, rec->task.cliente_len, t->cliente, t->cliente_len));
    check(rec->task.seq == t->seq);
    check(strcmp(rec->creada, task_json_format_time(meta.creada, when, sizeof(when))) == 0);
    check(rec->pid == meta.pid);
    free(line);
    free(rec);
}

/* The body as a client would send it. */
static void fuzz_input(const char *body, size_t size, uint64_t h)
{
    struct task *t = malloc(sizeof(*t));
    char err[128];

    if (t == NULL)
        abort();
    /* A short buffer for the message too: it must be cut, never overrun. */
    size_t err_len = h % 2 ? sizeof(err) : 16;
    memset(err, 0, sizeof(err));
    if (task_json_decode_input(body, size, t, err, err_len) < 0) {
        check_message(err, err_len);
    } else {
        check_field(t->titulo, t->titulo_len, 1, TASK_TITULO_MAX);
        if (t->has_descripcion)
            check_field(t->descripcion, t->descripcion_len, 0, TASK_DESCRIPCION_MAX);
        else
            check(t->descripcion_len == 0);
        if (t->has_cliente)
            check_field(t->cliente, t->cliente_len, 0, TASK_CLIENTE_MAX);
        else
            check(t->cliente_len == 0);
        check(t->seq >= -1 && t->seq <= TASK_SEQ_MAX);
        fuzz_round_trip(t, h);
    }
    free(t);
}

/* The input as a stored record line (the store's tail scan feeds it such bytes). */
static void fuzz_record(const char *text, size_t size)
{
    struct task_record *rec = malloc(sizeof(*rec));
    char err[128];
    size_t end = (size_t)-1;

    if (rec == NULL)
        abort();
    if (task_json_decode_record(text, size, rec, &end, err, sizeof(err)) == 0) {
        check(end >= 2 && end <= size && text[end - 1] == '}');
        check(rec->id >= 1);
        check(strlen(rec->task.titulo) <= TASK_TITULO_MAX);
        check(strlen(rec->creada) < sizeof(rec->creada));
        check(rec->pid >= -1 && rec->task.seq >= -1);
        /* With rec == NULL (the tail scan's way) the answer is the same. */
        size_t end2 = 0;
        check(task_json_decode_record(text, size, NULL, &end2, err, sizeof(err)) == 0);
        check(end2 == end);
    } else {
        check_message(err, sizeof(err));
        check(end <= size);
    }
    free(rec);
}

/* The input as a line of tasks.json, read with every set of flags: offsets stay inside the
 * line, damage says why, and read item by item the line ends in a bounded number of steps. */
static void fuzz_line(const char *text, size_t size)
{
    struct task_record *rec = malloc(sizeof(*rec));
    if (rec == NULL)
        abort();
    for (unsigned flags = 0; flags < 4; flags++) {
        size_t p = 0;
        for (size_t steps = 0;; steps++) {
            struct task_json_line it, again;
            enum task_json_line_kind k = task_json_line_read(text + p, size - p, flags, rec, &it);
            check(k == it.kind && it.start <= it.end && it.end <= it.next && it.next <= size - p);
            check(it.at <= size - p);
            if (k == TASK_JSON_LINE_DAMAGE)
                check_message(it.why, sizeof(it.why));
            else
                check(it.why[0] == '\0' && it.damage == TASK_JSON_DAMAGE_NONE);
            if (!(flags & TASK_JSON_LINE_ITEMS) && k != TASK_JSON_LINE_DAMAGE)
                check(it.next == size - p);
            check(task_json_line_read(text + p, size - p, flags, NULL, &again) == k);
            check(again.at == it.at && again.next == it.next && again.head_id == it.head_id);
            /* Ids past 2^53 are doubles to the decoder: only exact ones must agree. */
            if (k == TASK_JSON_LINE_RECORD && it.head_id != 0 && it.head_id <= TASK_SEQ_MAX)
                check(rec->id == it.head_id);
            if (!(flags & TASK_JSON_LINE_ITEMS) || k == TASK_JSON_LINE_BLANK ||
                k == TASK_JSON_LINE_DAMAGE)
                break;
            check(it.next > 0 && steps < size);
            p += it.next;
        }
    }
    free(rec);
}

struct canon_state {
    long num_emitted;
    long fail_at; /* emit returns -1 for this element (1-based), 0: never */
    struct task_record rec;
};

static int canon_emit(void *arg, const char *line, size_t line_len)
{
    struct canon_state *st = arg;
    char err[128];
    size_t end = 0;

    st->num_emitted++;
    check(line_len > 0 && line_len <= TASK_JSON_RECORD_MAX);
    check(memchr(line, '\n', line_len) == NULL);
    /* A copy of exactly the line, so a read past its end is caught. */
    char *copy = malloc(line_len);
    if (copy == NULL)
        abort();
    memcpy(copy, line, line_len);
    check(task_json_decode_record(copy, line_len, &st->rec, &end, err, sizeof(err)) == 0);
    check(end == line_len);
    check(st->rec.id == (uint64_t)st->num_emitted);
    free(copy);
    return st->num_emitted == st->fail_at ? -1 : 0;
}

/* The input as a file written by another program. */
static void fuzz_canonicalize(const char *text, size_t size, uint64_t h)
{
    struct canon_state *st = calloc(1, sizeof(*st));
    char err[128];
    size_t err_offset = (size_t)-1;

    if (st == NULL)
        abort();
    st->fail_at = h % 8 == 0 ? (long)(1 + (h >> 8) % 4) : 0;
    long n =
        task_json_canonicalize(text, size, canon_emit, st, err, sizeof(err), &err_offset, NULL);
    if (n >= 0) {
        check(n == st->num_emitted);
        check(st->fail_at == 0 || n < st->fail_at);
    } else {
        check(n == -1);
        check_message(err, sizeof(err));
        check(err_offset <= size);
        /* A failing emit stops the walk at once. */
        if (st->fail_at > 0 && st->num_emitted == st->fail_at)
            check(strstr(err, "cannot write it") != NULL);
        else
            check(st->fail_at == 0 || st->num_emitted < st->fail_at);
    }
    free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t h = hash_of(data, size);
    char *text = malloc(size > 0 ? size : 1);

    if (text == NULL)
        abort();
    memcpy(text, data, size);
    fuzz_input(text, size, h);
    fuzz_record(text, size);
    fuzz_line(text, size);
    fuzz_canonicalize(text, size, h);
    free(text);
    return 0;
}
