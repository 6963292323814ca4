/* task_json.h - tasks <-> JSON text; the only module that includes cJSON.h.
 *
 * Three jobs, all without I/O:
 *
 *   1. Validate a task as received (POST body, taskctl add):
 *        struct task t;
 *        if (task_json_decode_input(body, body_len, &t, err, sizeof(err)) < 0)
 *            reply 400 with err;     (err names the field and the problem)
 *
 *   2. Encode a stored record: one line of tasks.json, without the newline:
 *        {"id":1,"titulo":"...","descripcion":"...","cliente":"...","seq":1,
 *         "creada":"2026-11-26T15:00:00Z","pid":4123,"host":"server-2"}
 *      Optional fields are omitted when absent ("host" came later: records
 *      written before it simply lack it). Strings are escaped so that a
 *      record never contains a raw newline: one record per line is the file's
 *      invariant, and the store relies on it.
 *
 *   3. Decode a stored record (one line) for taskctl, the store's checks and
 *      clientemulator's verification.
 *
 * Return convention: 0 or a byte count on success, -1 on bad input with a
 * NUL-terminated, lower-case message in err (never longer than err_len).
 * Nothing here allocates memory that outlives the call.
 */
#ifndef TASKSERVER_TASK_JSON_H
#define TASKSERVER_TASK_JSON_H

#include <stddef.h>
#include <stdint.h>

#define TASK_TITULO_MAX 1024            /* bytes of UTF-8, at least 1 */
#define TASK_DESCRIPCION_MAX 4096       /* bytes */
#define TASK_CLIENTE_MAX 128            /* bytes */
#define TASK_SEQ_MAX 9007199254740991LL /* 2^53 - 1: exact in every JSON reader */
#define TASK_HOST_MAX 64                /* bytes: HOST_NAME_MAX on Linux */

/* Upper bound of one encoded record line (every byte escaped as \uXXXX, plus
 * the other fields); records longer than this are refused by the store. */
#define TASK_JSON_RECORD_MAX 65536

/* A task as the client sends it. Strings are NUL-terminated copies (U+0000 is
 * rejected on input, so strlen() agrees with the _len fields). */
struct task {
    char titulo[TASK_TITULO_MAX + 1];
    size_t titulo_len;
    char descripcion[TASK_DESCRIPCION_MAX + 1];
    size_t descripcion_len;
    int has_descripcion;
    char cliente[TASK_CLIENTE_MAX + 1];
    size_t cliente_len;
    int has_cliente;
    int64_t seq; /* -1 when absent */
};

/* What the store adds when it stores a task. */
struct task_meta {
    uint64_t id;      /* 1, 2, 3, ... in file order */
    int64_t creada;   /* seconds since the epoch, UTC */
    long pid;         /* process that stored it */
    const char *host; /* the host name of the machine or container it runs on (pid and host
                         name the writer among several servers on one file); NULL or "":
                         not recorded. Owned by the store, valid while it is open. */
};

/* A stored record as read back. Records written by other programs may lack
 * fields (has_* = 0, seq/pid = -1) or carry longer strings (truncated here,
 * with the _len fields giving the stored length). */
struct task_record {
    uint64_t id;
    struct task task;
    char creada[40];              /* as stored, e.g. "2026-11-26T15:00:00Z"; "" when absent */
    long pid;                     /* -1 when absent */
    char host[TASK_HOST_MAX + 1]; /* as stored (cut to fit); "" when absent */
};

/* Validates and copies a task sent by a client. Accepts exactly one JSON
 * object with "titulo" (required, string, 1..1024 bytes), "descripcion"
 * (string, <= 4096), "cliente" (string, <= 128), "seq" (integer 0..2^53-1);
 * rejects other fields, duplicate fields, wrong types, invalid UTF-8, U+0000,
 * trailing bytes. Returns 0, or -1 with a message such as
 * "field \"titulo\": must be a string". */
int task_json_decode_input(const char *body, size_t body_len, struct task *t, char *err,
                           size_t err_len);

/* Writes the record line for t with meta into buf (no newline, no NUL).
 * Returns its length, or -1 if cap is too small (never for cap >=
 * TASK_JSON_RECORD_MAX). */
long task_json_encode_record(const struct task *t, const struct task_meta *meta, char *buf,
                             size_t cap);

/* Writes s (n bytes) into out as a JSON string literal, quotes included:
 * '"', '\\' and control characters escaped, UTF-8 as it is. Every JSON string
 * this project writes goes through here. Returns its length, or -1 if cap is
 * too small (6 * n + 2 always suffices). */
long task_json_escape(const char *s, size_t n, char *out, size_t cap);

/* The string value of key in a stored record line (at its top level), decoded
 * into out (escapes resolved; cut at a UTF-8 boundary to fit cap - 1 bytes;
 * NUL-terminated). Returns its length in out, or -1 when the key is absent or
 * not a string. No allocation, one pass: for hot paths (tracing), where cJSON
 * would cost more than the rest of the work. */
long task_json_record_string(const char *line, size_t len, const char *key, char *out, size_t cap);

/* Formats seconds since the epoch as RFC 3339 UTC ("2026-11-26T15:00:00Z")
 * into buf (at least 21 bytes). Returns buf. */
char *task_json_format_time(int64_t epoch_seconds, char *buf, size_t cap);

/* Parses one JSON object that starts at text[0] and ends somewhere before
 * text_len; *end receives the offset just past its closing brace. The object
 * must have an integer "id" >= 1. rec may be NULL when only id and end are
 * wanted (the store's tail scan). Returns 0, or -1 with err (and *end = the
 * offset where parsing failed, when known). */
int task_json_decode_record(const char *text, size_t text_len, struct task_record *rec, size_t *end,
                            char *err, size_t err_len);

/* Canonical re-encoding of any JSON array of objects (a file written by
 * another program: "[]", pretty-printed, the original Python server's layout).
 * Calls emit() once per element, in order, with the element re-encoded on one
 * line and "id" moved first and set to 1, 2, 3, ... (the old "id", if any, is
 * replaced: the caller keeps the original file). If renumbered is not NULL it
 * gets the number of elements whose "id" was missing or another value.
 * Returns the number of elements, or -1 with err and *err_offset when text is
 * not such an array or emit() fails (emit returns 0 or -1). */
typedef int task_json_emit_fn(void *arg, const char *line, size_t line_len);
long task_json_canonicalize(const char *text, size_t text_len, task_json_emit_fn *emit, void *arg,
                            char *err, size_t err_len, size_t *err_offset, size_t *renumbered);

#endif
