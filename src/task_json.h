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
 *   3. Read the lines of tasks.json for the store's check, taskctl verify and
 *      clientemulator's verification: task_json_line_read() says what a line
 *      is ("[", "]", a record, blank, or damage and where), each caller
 *      judging it with its own strictness; task_json_decode_record() decodes
 *      one record.
 *
 *   Every JSON string the project writes (records, error bodies, taskctl's and
 *   clientemulator's request bodies) is escaped by task_json_escape().
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

/* ---- Lines of tasks.json: the one reader of the line format ----
 *
 * The store writes "[", then one record per line, each but the last followed
 * by ",", then "]". Three readers judge such lines, each with its own
 * strictness: the store's check (canonical bytes only), taskctl verify (one
 * item per line, damage reported line by line) and clientemulator's verifier
 * (any layout a JSON writer may use, several items on a line). All of them
 * classify with task_json_line_read():
 *
 *   struct task_json_line it;
 *   switch (task_json_line_read(line, len, flags, rec, &it)) { ... }
 *
 * flags 0 (the store, taskctl): the line is exactly one item, nothing around
 * it. TASK_JSON_LINE_SPACES: spaces, tabs and CRs around items are allowed.
 * TASK_JSON_LINE_ITEMS: only the first item is read, and it.next says where
 * the rest of the line starts (call again there). No allocation of its own
 * (a record is decoded by task_json_decode_record()), no I/O. */
#define TASK_JSON_LINE_SPACES 1u /* spaces, tabs and CRs around items are not damage */
#define TASK_JSON_LINE_ITEMS 2u  /* read the first item only; more may follow at it.next */

enum task_json_line_kind {
    TASK_JSON_LINE_BLANK,  /* nothing (or only spaces, with TASK_JSON_LINE_SPACES) */
    TASK_JSON_LINE_OPEN,   /* "[" */
    TASK_JSON_LINE_CLOSE,  /* "]" */
    TASK_JSON_LINE_RECORD, /* one record, "{...}" or "{...}," (comma set) */
    TASK_JSON_LINE_COMMA,  /* TASK_JSON_LINE_ITEMS only: a ',' that follows no record on this
                              line (the record may end the line before) */
    TASK_JSON_LINE_DAMAGE  /* anything else: damage says what, at says where */
};

enum task_json_line_damage {
    TASK_JSON_DAMAGE_NONE,
    TASK_JSON_DAMAGE_NOT_ITEM,     /* starts with none of '[', ']', '{' */
    TASK_JSON_DAMAGE_BAD_RECORD,   /* starts with '{' but is not a record (why says how) */
    TASK_JSON_DAMAGE_AFTER_RECORD, /* a whole record, then bytes other than one ',' */
    TASK_JSON_DAMAGE_AFTER_BRACKET /* "[" or "]", then more bytes */
};

struct task_json_line {
    enum task_json_line_kind kind;
    enum task_json_line_damage damage;
    size_t start;     /* the item's first byte */
    size_t end;       /* just past the item ('[', ']', ',' or the record's '}') */
    size_t next;      /* past the item, a record's ',' and spaces: where the rest starts */
    size_t at;        /* DAMAGE: the byte where it was found (BAD_RECORD: where the decoder
                         stopped; AFTER_*: end) */
    int comma;        /* RECORD: a ',' follows it */
    uint64_t head_id; /* N when the item starts exactly with {"id":N then ',' or '}' (the
                         store's own layout; read before the JSON is checked, so also set for
                         a BAD_RECORD), else 0 */
    char why[160];    /* DAMAGE: what is wrong, lower-case (BAD_RECORD: the decoder's message) */
};

/* Classifies line[0, len) (without its '\n'); offsets in it count from line.
 * With rec not NULL, a record's fields are decoded into it (valid when the
 * kind is RECORD, or DAMAGE with AFTER_RECORD). Returns it->kind. */
enum task_json_line_kind task_json_line_read(const char *line, size_t len, unsigned flags,
                                             struct task_record *rec, struct task_json_line *it);

/* The id of a line that starts exactly with {"id":N followed by ',' or '}' (the
 * store's layout, read without parsing the rest: for the store's fast paths),
 * or 0 if it does not. */
uint64_t task_json_line_id(const char *line, size_t len);

#endif
