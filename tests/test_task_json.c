/* test_task_json.c - task_json as tables: every rejection with its message, round trips,
 * canonicalization, the escaper, the line classifier. */
#include "task_json.h"

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct reject_case {
    const char *input;
    const char *expected; /* the exact message */
    const char *description;
};

/* Inputs use explicit lengths so that NUL and raw bytes can be tested. */
#define S(lit) lit, sizeof(lit) - 1

static const struct {
    const char *input;
    size_t input_len;
    const char *expected;
    const char *description;
} reject_cases[] = {
    {S(""), "body: invalid JSON at byte 0", "empty body"},
    {S("   "), "body: invalid JSON at byte 2", "only whitespace"},
    {S("{\"titulo\":\"a\""), "body: invalid JSON at byte 12", "unterminated object"},
    {S("{\"titulo\":\"a\"} x"), "body: invalid JSON at byte 15", "trailing bytes"},
    {S("{\"titulo\":\"a\"}{}"), "body: invalid JSON at byte 14", "two objects"},
    {S("[]"), "body: must be a JSON object", "array"},
    {S("\"titulo\""), "body: must be a JSON object", "string"},
    {S("null"), "body: must be a JSON object", "null"},
    {S("{}"), "field \"titulo\": required", "no titulo"},
    {S("{\"descripcion\":\"x\"}"), "field \"titulo\": required", "only descripcion"},
    {S("{\"titulo\":1}"), "field \"titulo\": must be a string", "titulo number"},
    {S("{\"titulo\":null}"), "field \"titulo\": must be a string", "titulo null"},
    {S("{\"titulo\":[\"a\"]}"), "field \"titulo\": must be a string", "titulo array"},
    {S("{\"titulo\":\"\"}"), "field \"titulo\": must not be empty", "titulo empty"},
    {S("{\"titulo\":\"a\",\"x\":1}"), "unknown field \"x\"", "unknown field"},
    {S("{\"titulo\":\"a\",\"k0123456789012345678901234567890123456789xyz\":1}"),
     "unknown field \"k012345678901234567890123456789012345678...\"", "a long unknown key, cut"},
    {S("{\"Titulo\":\"a\"}"), "unknown field \"Titulo\"", "keys are case-sensitive"},
    {S("{\"titulo\":\"a\",\"id\":3}"), "unknown field \"id\"", "client may not set id"},
    {S("{\"titulo\":\"a\",\"titulo\":\"b\"}"), "duplicate field \"titulo\"", "duplicate key"},
    {S("{\"titulo\":\"a\",\"seq\":1,\"seq\":2}"), "duplicate field \"seq\"", "duplicate seq"},
    {S("{\"titulo\":\"a\",\"descripcion\":5}"), "field \"descripcion\": must be a string",
     "descripcion number"},
    {S("{\"titulo\":\"a\",\"cliente\":true}"), "field \"cliente\": must be a string",
     "cliente bool"},
    {S("{\"titulo\":\"a\",\"seq\":-1}"),
     "field \"seq\": must be an integer >= 0 written with digits only, not -1", "seq negative"},
    {S("{\"titulo\":\"a\",\"seq\":1.5}"),
     "field \"seq\": must be an integer >= 0 written with digits only, not 1.5", "seq fraction"},
    /* Strict JSON numbers: each of these is another spelling, or not JSON at all. */
    {S("{\"titulo\":\"a\",\"seq\":070}"),
     "field \"seq\": not a JSON number at byte 20 (no leading zeros, digits on both sides of a "
     "point)",
     "seq with a leading zero"},
    {S("{\"titulo\":\"a\",\"seq\":1.0}"),
     "field \"seq\": must be an integer >= 0 written with digits only, not 1.0", "seq 1.0"},
    {S("{\"titulo\":\"a\",\"seq\":1e2}"),
     "field \"seq\": must be an integer >= 0 written with digits only, not 1e2", "seq 1e2"},
    {S("{\"titulo\":\"a\",\"seq\":-0}"),
     "field \"seq\": must be an integer >= 0 written with digits only, not -0", "seq -0"},
    {S("{\"titulo\":\"a\",\"seq\":9007199254740990.9}"),
     "field \"seq\": must be an integer >= 0 written with digits only, not 9007199254740990.9",
     "seq with a fraction near 2^53"},
    {S("{\"titulo\":\"a\",\"seq\":1.}"),
     "field \"seq\": not a JSON number at byte 20 (no leading zeros, digits on both sides of a "
     "point)",
     "seq 1."},
    {S("{\"titulo\":\"a\",\"seq\":-}"),
     "field \"seq\": not a JSON number at byte 20 (no leading zeros, digits on both sides of a "
     "point)",
     "a lone minus"},
    {S("[00]"), "body: not a JSON number at byte 1", "leading zero outside an object"},
    {S("{\"titulo\":\"a\",\"seq\":\"1\"}"), "field \"seq\": must be an integer >= 0", "seq string"},
    {S("{\"titulo\":\"a\",\"seq\":null}"), "field \"seq\": must be an integer >= 0", "seq null"},
    {S("{\"titulo\":\"a\",\"seq\":9007199254740993}"),
     "field \"seq\": larger than 9007199254740991", "seq beyond 2^53"},
    {S("{\"titulo\":\"a\\u0000b\"}"), "field \"titulo\": must not contain \\u0000", "escaped NUL"},
    {S("\x01{\"titulo\":\"x\"}"), "body: control character 0x01 at byte 0",
     "control byte before the object (cJSON takes it for a space)"},
    {S("{\"titulo\":\"x\",\x0b\"seq\":1}"), "body: control character 0x0b at byte 14",
     "vertical tab between members"},
    {S("{\"titulo\":\"x\"}\0"), "body: control character 0x00 at byte 14", "NUL after the object"},
    {S("{\"titulo\":\"a\nb\"}"),
     "field \"titulo\": raw control character in string (must be escaped)", "raw newline"},
    {S("{\"titulo\":\"a\0b\"}"),
     "field \"titulo\": raw control character in string (must be escaped)", "raw NUL byte"},
    {S("{\"titulo\":\"a\",\"cliente\":\"\t\"}"),
     "field \"cliente\": raw control character in string (must be escaped)", "raw tab"},
    {S("{\"ti\ntulo\":\"a\"}"), "body: raw control character in string (must be escaped) at byte 4",
     "raw newline in a key"},
    {S("{\"titulo\":\"\xff\"}"), "field \"titulo\": invalid UTF-8", "0xff byte"},
    {S("{\"titulo\":\"\xc0\xaf\"}"), "field \"titulo\": invalid UTF-8", "overlong slash"},
    {S("{\"titulo\":\"\xe0\x80\xaf\"}"), "field \"titulo\": invalid UTF-8", "overlong 3 bytes"},
    {S("{\"titulo\":\"\xed\xa0\x80\"}"), "field \"titulo\": invalid UTF-8", "raw surrogate"},
    {S("{\"titulo\":\"\xf4\x90\x80\x80\"}"), "field \"titulo\": invalid UTF-8", "above U+10FFFF"},
    {S("{\"titulo\":\"\xe2\x82\"}"), "field \"titulo\": invalid UTF-8", "truncated sequence"},
    {S("{\"titulo\":\"a\",\"cliente\":\"\xa0\"}"), "field \"cliente\": invalid UTF-8",
     "lone continuation byte"},
    {S("{\"titulo\":\"\\ud800\"}"), "body: invalid JSON at byte 11", "escaped lone surrogate"},
    {S("{\"titulo\":\"\\x\"}"), "body: invalid JSON at byte 11", "bad escape"},
};

START_TEST(test_rejections)
{
    const char *in = reject_cases[_i].input;
    struct task *t = malloc(sizeof(*t));
    char err[256] = "";
    int rc = task_json_decode_input(in, reject_cases[_i].input_len, t, err, sizeof(err));
    ck_assert_msg(rc == -1, "case %d (%s): expected -1, got %d", _i, reject_cases[_i].description,
                  rc);
    ck_assert_msg(strcmp(err, reject_cases[_i].expected) == 0,
                  "case %d (%s):\n  expected: %s\n  got:      %s", _i, reject_cases[_i].description,
                  reject_cases[_i].expected, err);
    free(t);
}
END_TEST

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* Length limits: exactly at the limit is accepted, one byte more refused. */
START_TEST(test_lengths)
{
    static const struct {
        const char *field;
        size_t max;
        const char *expected;
    } cases[] = {
        {"titulo", TASK_TITULO_MAX, "field \"titulo\": longer than 1024 bytes"},
        {"descripcion", TASK_DESCRIPCION_MAX, "field \"descripcion\": longer than 4096 bytes"},
        {"cliente", TASK_CLIENTE_MAX, "field \"cliente\": longer than 128 bytes"},
    };
    struct task *t = malloc(sizeof(*t));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t extra = 0; extra <= 1; extra++) {
            char *val = repeat('x', cases[i].max + extra);
            size_t cap = strlen(val) + 64;
            char *body = malloc(cap);
            if (strcmp(cases[i].field, "titulo") == 0)
                snprintf(body, cap, "{\"titulo\":\"%s\"}", val);
            else
                snprintf(body, cap, "{\"titulo\":\"t\",\"%s\":\"%s\"}", cases[i].field, val);
            char err[256] = "";
            int rc = task_json_decode_input(body, strlen(body), t, err, sizeof(err));
            if (extra == 0)
                ck_assert_msg(rc == 0, "%s at %zu bytes: expected ok, got %s", cases[i].field,
                              cases[i].max, err);
            else
                ck_assert_msg(rc == -1 && strcmp(err, cases[i].expected) == 0,
                              "%s one over: expected %s, got rc %d %s", cases[i].field,
                              cases[i].expected, rc, err);
            free(val);
            free(body);
        }
    }
    /* A 4-byte character counts as 4 bytes. */
    char body[5000];
    size_t o = (size_t)snprintf(body, sizeof(body), "{\"titulo\":\"");
    for (int k = 0; k < 257; k++) {
        memcpy(body + o, "\xf0\x9f\x98\x80", 4);
        o += 4;
    }
    memcpy(body + o, "\"}", 3);
    char err[256] = "";
    ck_assert_int_eq(task_json_decode_input(body, strlen(body), t, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "field \"titulo\": longer than 1024 bytes");
    free(t);
}
END_TEST

/* Accepted inputs: the decoded strings, exactly. */
static const struct {
    const char *input;
    const char *titulo;
    const char *descripcion; /* NULL: absent */
    const char *cliente;     /* NULL: absent */
    long long seq;
    const char *description;
} accept_cases[] = {
    {"{\"titulo\":\"comprar pan\"}", "comprar pan", NULL, NULL, -1, "minimal"},
    {" \r\n\t{\"titulo\":\"a\"} \n", "a", NULL, NULL, -1, "whitespace around"},
    {"{\"seq\":0,\"cliente\":\"c1\",\"descripcion\":\"\",\"titulo\":\"x\"}", "x", "", "c1", 0,
     "all fields, any order, empty descripcion"},
    {"{\"titulo\":\"q\\\"b\\\\s\\/n\\nt\\tr\\r\"}", "q\"b\\s/n\nt\tr\r", NULL, NULL, -1, "escapes"},
    {"{\"titulo\":\"\\u00e9\\u2028\\ud83d\\ude00\"}", "\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80", NULL,
     NULL, -1, "escaped non-ASCII and a surrogate pair"},
    {"{\"titulo\":\"\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\"}",
     "\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80", NULL, NULL, -1, "raw UTF-8"},
    {"{\"titulo\":\"a\",\"seq\":9007199254740991}", "a", NULL, NULL, 9007199254740991LL,
     "largest seq"},
    {"{\"titulo\":\"a\",\"seq\":0}", "a", NULL, NULL, 0, "seq 0"},
};

START_TEST(test_accepted)
{
    struct task *t = malloc(sizeof(*t));
    char err[256] = "";
    const char *in = accept_cases[_i].input;
    int rc = task_json_decode_input(in, strlen(in), t, err, sizeof(err));
    ck_assert_msg(rc == 0, "case %d (%s): expected ok, got %s", _i, accept_cases[_i].description,
                  err);
    ck_assert_str_eq(t->titulo, accept_cases[_i].titulo);
    ck_assert_uint_eq(t->titulo_len, strlen(accept_cases[_i].titulo));
    ck_assert_int_eq(t->has_descripcion, accept_cases[_i].descripcion != NULL);
    if (accept_cases[_i].descripcion != NULL)
        ck_assert_str_eq(t->descripcion, accept_cases[_i].descripcion);
    ck_assert_int_eq(t->has_cliente, accept_cases[_i].cliente != NULL);
    if (accept_cases[_i].cliente != NULL)
        ck_assert_str_eq(t->cliente, accept_cases[_i].cliente);
    ck_assert_int_eq(t->seq, accept_cases[_i].seq);
    free(t);
}
END_TEST

/* Strings that must survive encode -> decode byte for byte. */
static const char *round_trip_strings[] = {
    "comprar pan",
    "with \"quotes\"",
    "back\\slash\\",
    "line\nbreak\r\n",
    "tab\there",
    "]",
    "\"},{\"id\":999",
    "\"}\n]\n",
    "\xe2\x80\xa8 and \xe2\x80\xa9",
    "emoji \xf0\x9f\x98\x80\xf0\x9f\x8d\x9e",
    "\x01\x02\x1f\x7f",
    "\\u0041 is not A",
    "espa\xc3\xb1ol",
    "bell\b and form feed\f",
};

START_TEST(test_round_trip)
{
    const char *str = round_trip_strings[_i];
    struct task *t = calloc(1, sizeof(*t));
    struct task_record *rec = malloc(sizeof(*rec));
    char *line = malloc(TASK_JSON_RECORD_MAX);
    size_t n = strlen(str);
    memcpy(t->titulo, str, n + 1);
    t->titulo_len = n;
    memcpy(t->descripcion, str, n + 1);
    t->descripcion_len = n;
    t->has_descripcion = 1;
    memcpy(t->cliente, str, n + 1);
    t->cliente_len = n;
    t->has_cliente = 1;
    t->seq = 42;
    struct task_meta meta = {7, 1795738800, 4123, str}; /* each string as the host too */
    long len = task_json_encode_record(t, &meta, line, TASK_JSON_RECORD_MAX);
    ck_assert_int_gt(len, 0);
    ck_assert_msg(memchr(line, '\n', (size_t)len) == NULL, "raw newline in record: %.*s", (int)len,
                  line);
    size_t end = 0;
    char err[256] = "";
    ck_assert_msg(task_json_decode_record(line, (size_t)len, rec, &end, err, sizeof(err)) == 0,
                  "decode %.*s: %s", (int)len, line, err);
    ck_assert_uint_eq(end, (size_t)len);
    ck_assert_uint_eq(rec->id, 7);
    ck_assert_msg(rec->task.titulo_len == n && memcmp(rec->task.titulo, str, n) == 0,
                  "titulo: expected [%s] got [%s]", str, rec->task.titulo);
    ck_assert_msg(strcmp(rec->task.descripcion, str) == 0, "descripcion: expected [%s] got [%s]",
                  str, rec->task.descripcion);
    ck_assert_msg(strcmp(rec->task.cliente, str) == 0, "cliente: expected [%s] got [%s]", str,
                  rec->task.cliente);
    ck_assert_int_eq(rec->task.seq, 42);
    ck_assert_int_eq(rec->pid, 4123);
    ck_assert_msg(strcmp(rec->host, str) == 0, "host: expected [%s] got [%s]", str, rec->host);
    ck_assert_str_eq(rec->creada, "2026-11-27T00:20:00Z");
    free(t);
    free(rec);
    free(line);
}
END_TEST

START_TEST(test_encode_exact)
{
    static const struct {
        const char *titulo;
        int with_optional;
        const char *host; /* the store's host name: NULL or "" leave the field out */
        const char *expected;
    } cases[] = {
        {"comprar pan", 1, NULL,
         "{\"id\":1,\"titulo\":\"comprar pan\",\"descripcion\":\"d\",\"cliente\":\"client1\","
         "\"seq\":1,\"creada\":\"2026-11-26T15:00:00Z\",\"pid\":4123}"},
        {"a\"b\\c\nd\x01", 0, NULL,
         "{\"id\":1,\"titulo\":\"a\\\"b\\\\c\\nd\\u0001\",\"creada\":\"2026-11-26T15:00:00Z\","
         "\"pid\":4123}"},
        {"comprar pan", 1, "server-2",
         "{\"id\":1,\"titulo\":\"comprar pan\",\"descripcion\":\"d\",\"cliente\":\"client1\","
         "\"seq\":1,\"creada\":\"2026-11-26T15:00:00Z\",\"pid\":4123,\"host\":\"server-2\"}"},
        {"x", 0, "",
         "{\"id\":1,\"titulo\":\"x\",\"creada\":\"2026-11-26T15:00:00Z\",\"pid\":4123}"},
        {"x", 0, "a\"b\n",
         "{\"id\":1,\"titulo\":\"x\",\"creada\":\"2026-11-26T15:00:00Z\",\"pid\":4123,"
         "\"host\":\"a\\\"b\\n\"}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct task *t = calloc(1, sizeof(*t));
        strcpy(t->titulo, cases[i].titulo);
        t->titulo_len = strlen(t->titulo);
        t->seq = -1;
        if (cases[i].with_optional) {
            strcpy(t->descripcion, "d");
            t->descripcion_len = 1;
            t->has_descripcion = 1;
            strcpy(t->cliente, "client1");
            t->cliente_len = 7;
            t->has_cliente = 1;
            t->seq = 1;
        }
        struct task_meta meta = {1, 1795705200, 4123, cases[i].host};
        char line[1024];
        long len = task_json_encode_record(t, &meta, line, sizeof(line));
        ck_assert_int_gt(len, 0);
        line[len] = '\0';
        ck_assert_msg(strcmp(line, cases[i].expected) == 0,
                      "case %zu:\n  expected: %s\n  got:      %s", i, cases[i].expected, line);
        /* Too small a buffer is refused, not overflowed. */
        ck_assert_int_eq(task_json_encode_record(t, &meta, line, (size_t)len - 1), -1);
        free(t);
    }
}
END_TEST

START_TEST(test_worst_case_fits)
{
    /* Every byte a control character: each becomes \u00XX (6 bytes). */
    struct task *t = calloc(1, sizeof(*t));
    memset(t->titulo, 1, TASK_TITULO_MAX);
    t->titulo_len = TASK_TITULO_MAX;
    memset(t->descripcion, 2, TASK_DESCRIPCION_MAX);
    t->descripcion_len = TASK_DESCRIPCION_MAX;
    t->has_descripcion = 1;
    memset(t->cliente, 3, TASK_CLIENTE_MAX);
    t->cliente_len = TASK_CLIENTE_MAX;
    t->has_cliente = 1;
    t->seq = TASK_SEQ_MAX;
    char host[TASK_HOST_MAX + 1];
    memset(host, 4, TASK_HOST_MAX);
    host[TASK_HOST_MAX] = '\0';
    struct task_meta meta = {UINT64_MAX, INT32_MAX, 2147483647, host};
    char *line = malloc(TASK_JSON_RECORD_MAX);
    long len = task_json_encode_record(t, &meta, line, TASK_JSON_RECORD_MAX);
    ck_assert_int_gt(len, 6 * (TASK_TITULO_MAX + TASK_DESCRIPCION_MAX));
    ck_assert_int_le(len, TASK_JSON_RECORD_MAX);
    free(line);
    free(t);
}
END_TEST

static const struct {
    const char *input;
    const char *expected_err;
    size_t expected_end;
    const char *description;
} record_cases[] = {
    {"{\"id\":3,\"titulo\":\"a\"},\n{\"id\":4}", NULL, 21, "stops after the object"},
    {"{\"titulo\":\"a\",\"id\":9}", NULL, 21, "id anywhere"},
    {"{\"titulo\":\"a\"}", "record: \"id\" must be an integer >= 1", 14, "no id"},
    {"{\"id\":0}", "record: \"id\" must be an integer >= 1", 8, "id 0"},
    {"{\"id\":\"1\"}", "record: \"id\" must be an integer >= 1", 10, "id string"},
    {"{\"id\":1,\"titulo\":\"a", "record: invalid JSON at byte 18", 18, "torn"},
    {"[{\"id\":1}]", "record: must start with '{'", 0, "array"},
    {"", "record: must start with '{'", 0, "empty"},
    {"{\"id\":1,\"titulo\":\"a\x01\"}", "record: raw control character at byte 19", 19,
     "a raw control byte inside a string"},
};

/* The "host" field as read back: records of older files have none. */
static const struct {
    const char *input;
    const char *expected_host;
    long expected_pid;
    const char *description;
} host_cases[] = {
    {"{\"id\":1,\"titulo\":\"a\",\"pid\":7,\"host\":\"server-1\"}", "server-1", 7, "host and pid"},
    {"{\"id\":1,\"titulo\":\"a\",\"pid\":7}", "", 7, "an older record: no host"},
    {"{\"id\":1,\"host\":\"h\\u00e9\\n\"}", "h\xc3\xa9\n", -1, "escapes resolved"},
    {"{\"id\":1,\"host\":5}", "", -1, "not a string: as absent"},
    {"{\"id\":1,\"host\":\"\"}", "", -1, "empty"},
    {"{\"id\":1,\"host\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbb\"}",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", -1,
     "longer than TASK_HOST_MAX: cut"},
};

START_TEST(test_decode_host)
{
    struct task_record *rec = malloc(sizeof(*rec));
    const char *in = host_cases[_i].input;
    size_t end = 0;
    char err[256] = "";
    ck_assert_msg(task_json_decode_record(in, strlen(in), rec, &end, err, sizeof(err)) == 0,
                  "case %d (%s): %s", _i, host_cases[_i].description, err);
    ck_assert_msg(strcmp(rec->host, host_cases[_i].expected_host) == 0,
                  "case %d (%s): host expected [%s] got [%s]", _i, host_cases[_i].description,
                  host_cases[_i].expected_host, rec->host);
    ck_assert_msg(rec->pid == host_cases[_i].expected_pid, "case %d (%s): pid expected %ld got %ld",
                  _i, host_cases[_i].description, host_cases[_i].expected_pid, rec->pid);
    free(rec);
}
END_TEST

START_TEST(test_decode_record)
{
    const char *in = record_cases[_i].input;
    size_t end = 12345;
    char err[256] = "";
    int rc = task_json_decode_record(in, strlen(in), NULL, &end, err, sizeof(err));
    if (record_cases[_i].expected_err == NULL) {
        ck_assert_msg(rc == 0, "case %d (%s): expected ok, got %s", _i,
                      record_cases[_i].description, err);
    } else {
        ck_assert_msg(rc == -1 && strcmp(err, record_cases[_i].expected_err) == 0,
                      "case %d (%s):\n  expected: %s\n  got:      rc %d %s", _i,
                      record_cases[_i].description, record_cases[_i].expected_err, rc, err);
    }
    ck_assert_msg(end == record_cases[_i].expected_end, "case %d (%s): end expected %zu got %zu",
                  _i, record_cases[_i].description, record_cases[_i].expected_end, end);
}
END_TEST

struct collect {
    char out[8192];
    size_t len;
};

static int collect_emit(void *arg, const char *line, size_t line_len)
{
    struct collect *c = arg;
    if (c->len + line_len + 2 > sizeof(c->out))
        return -1;
    memcpy(c->out + c->len, line, line_len);
    c->len += line_len;
    c->out[c->len++] = '|';
    c->out[c->len] = '\0';
    return 0;
}

static const struct {
    const char *input;
    long expected_count;
    const char *expected; /* lines joined by '|', or the error */
    size_t expected_offset;
    const char *description;
} canon_cases[] = {
    {"[]", 0, "", 0, "empty array"},
    {"[\n]\n", 0, "", 0, "canonical empty"},
    {"[{\"titulo\": \"a\", \"descripcion\": \"b\"}, {\"titulo\": \"c\"}]", 2,
     "{\"id\":1,\"titulo\":\"a\",\"descripcion\":\"b\"}|{\"id\":2,\"titulo\":\"c\"}|", 0,
     "python json.dump without ids"},
    {"[\n  {\n    \"titulo\": \"a\",\n    \"id\": 7\n  },\n  {\n    \"id\": 9,\n    \"titulo\": "
     "\"\\u00e9\\n\"\n  }\n]",
     2, "{\"id\":1,\"titulo\":\"a\"}|{\"id\":2,\"titulo\":\"\xc3\xa9\\n\"}|", 0,
     "pretty-printed with ids, renumbered"},
    {"[{\"titulo\":\"x\",\"seq\":3,\"ok\":true,\"n\":null,\"l\":[1,2.5,\"s\"],\"o\":{\"k\":\"v\"}}"
     "]",
     1,
     "{\"id\":1,\"titulo\":\"x\",\"seq\":3,\"ok\":true,\"n\":null,\"l\":[1,2.5,\"s\"],\"o\":{\"k\":"
     "\"v\"}}|",
     0, "other value types kept"},
    {"[{\"titulo\":\"x\",\"f\":false,\"o\":{\"a\":1,\"b\":[true,false]}}]", 1,
     "{\"id\":1,\"titulo\":\"x\",\"f\":false,\"o\":{\"a\":1,\"b\":[true,false]}}|", 0,
     "false and a nested object of two keys kept"},
    {"{\"titulo\":\"a\"}", -1, "not a JSON array", 0, "object"},
    {"[1,2]", -1, "element 1: not a JSON object", 0, "array of numbers"},
    {"[{\"titulo\":\"a\"},", -1, "invalid JSON", 15, "torn"},
    {"[{}] x", -1, "unexpected data after the JSON array", 5, "trailing"},
};

START_TEST(test_canonicalize)
{
    struct collect *c = calloc(1, sizeof(*c));
    char err[256] = "";
    size_t off = 999;
    const char *in = canon_cases[_i].input;
    long n = task_json_canonicalize(in, strlen(in), collect_emit, c, err, sizeof(err), &off, NULL);
    ck_assert_msg(n == canon_cases[_i].expected_count,
                  "case %d (%s): count expected %ld got %ld (%s)", _i, canon_cases[_i].description,
                  canon_cases[_i].expected_count, n, err);
    const char *got = n >= 0 ? c->out : err;
    ck_assert_msg(strcmp(got, canon_cases[_i].expected) == 0,
                  "case %d (%s):\n  expected: %s\n  got:      %s", _i, canon_cases[_i].description,
                  canon_cases[_i].expected, got);
    if (n < 0)
        ck_assert_msg(off == canon_cases[_i].expected_offset,
                      "case %d (%s): offset expected %zu got %zu", _i, canon_cases[_i].description,
                      canon_cases[_i].expected_offset, off);
    free(c);
}
END_TEST

/* The hand-written formatter, at fixed epochs: day and year boundaries, 1970
 * and before it, leap days (2000 and 2024 are leap years, 2100 is not), the
 * last second of year 9999. */
static const struct {
    int64_t epoch;
    const char *expected;
    const char *description;
} time_cases[] = {
    {0, "1970-01-01T00:00:00Z", "the epoch"},
    {59, "1970-01-01T00:00:59Z", "last second of the first minute"},
    {86399, "1970-01-01T23:59:59Z", "last second of 1970-01-01"},
    {86400, "1970-01-02T00:00:00Z", "second day"},
    {31535999, "1970-12-31T23:59:59Z", "last second of 1970"},
    {31536000, "1971-01-01T00:00:00Z", "1971"},
    {68169600, "1972-02-29T00:00:00Z", "first leap day after the epoch"},
    {-1, "1969-12-31T23:59:59Z", "one second before the epoch"},
    {951782399, "2000-02-28T23:59:59Z", "before a leap day of a 400-year"},
    {951782400, "2000-02-29T00:00:00Z", "leap day 2000"},
    {951868800, "2000-03-01T00:00:00Z", "after leap day 2000"},
    {1709164800, "2024-02-29T00:00:00Z", "leap day 2024"},
    {1709251199, "2024-02-29T23:59:59Z", "last second of leap day 2024"},
    {1709251200, "2024-03-01T00:00:00Z", "after leap day 2024"},
    {1735689599, "2024-12-31T23:59:59Z", "last second of a leap year"},
    {1795705200, "2026-11-26T15:00:00Z", "a working day"},
    {4107456000, "2100-02-28T00:00:00Z", "2100 is not a leap year"},
    {4107542400, "2100-03-01T00:00:00Z", "the day after 2100-02-28"},
    {253402300799, "9999-12-31T23:59:59Z", "last second of year 9999"},
};

START_TEST(test_format_time)
{
    char buf[40];
    memset(buf, 'x', sizeof(buf));
    const char *got = task_json_format_time(time_cases[_i].epoch, buf, sizeof(buf));
    ck_assert_msg(got == buf && strcmp(got, time_cases[_i].expected) == 0,
                  "epoch %" PRId64 " (%s):\n  expected: %s\n  got:      %.30s",
                  time_cases[_i].epoch, time_cases[_i].description, time_cases[_i].expected, buf);
}
END_TEST

/* The formatter against gmtime_r() + strftime() over five centuries, in a
 * stride that visits every day of the year and every time of day. */
START_TEST(test_format_time_sweep)
{
    char got[40], want[40];
    int64_t from = -2208988800LL; /* 1900-01-01 */
    int64_t step = 86400LL * 3 + 3601 * 5 + 7;
    for (int i = 0; i < 60000; i++) {
        int64_t e = from + (int64_t)i * step;
        time_t tt = (time_t)e;
        struct tm tm;
        ck_assert_ptr_nonnull(gmtime_r(&tt, &tm));
        ck_assert_uint_ne(strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm), 0);
        task_json_format_time(e, got, sizeof(got));
        ck_assert_msg(strcmp(got, want) == 0, "epoch %" PRId64 ": expected %s got %s", e, want,
                      got);
    }
}
END_TEST

/* Integers written by hand: the extremes of id, seq and pid. */
/* task_json_record_string(): a field read from a record line without cJSON. */
static const struct {
    const char *line, *key;
    size_t cap;
    long expect_len; /* -1: absent or not a string */
    const char *expect;
} field_cases[] = {
    {"{\"id\":1,\"titulo\":\"hola\",\"cliente\":\"ana\"}", "titulo", 64, 4, "hola"},
    {"{\"id\":1,\"titulo\":\"hola\",\"cliente\":\"ana\"}", "cliente", 64, 3, "ana"},
    {"{\"id\":1,\"titulo\":\"hola\"}", "cliente", 64, -1, ""},
    {"{\"id\":1,\"seq\":4}", "seq", 64, -1, ""},
    {"{\"id\":1,\"titulo\":\"a \\\"b\\\" \\\\ \\n\"}", "titulo", 64, 9, "a \"b\" \\ \n"},
    {"{\"id\":1,\"titulo\":\"\\u00e9\\ud83d\\ude00\"}", "titulo", 64, 6,
     "\xc3\xa9\xf0\x9f\x98\x80"},
    {"{\"id\":1,\"titulo\":\"\xc3\xb1\xc3\xb1\"}", "titulo", 4, 2, "\xc3\xb1"}, /* cut whole */
    {"{\"id\":1,\"o\":{\"titulo\":\"no\"},\"l\":[\"x\",{}],\"titulo\":\"si\"}", "titulo", 64, 2,
     "si"},
    {"{\"id\":1,\"titulos\":\"no\",\"titulo\":\"si\"}", "titulo", 64, 2, "si"},
    {"not a record", "titulo", 64, -1, ""},
    {"{\"id\":1,\"titulo\":\"open", "titulo", 64, 4, "open"},
    {"{\"id\":1,\"titulo\":\"\\u0041\\u20ac\"}", "titulo", 64, 4, "A\xe2\x82\xac"},
};

START_TEST(test_record_string)
{
    char out[64];
    long n = task_json_record_string(field_cases[_i].line, strlen(field_cases[_i].line),
                                     field_cases[_i].key, out, field_cases[_i].cap);
    ck_assert_msg(n == field_cases[_i].expect_len, "case %d: length %ld, expected %ld", _i, n,
                  field_cases[_i].expect_len);
    if (n >= 0)
        ck_assert_msg(strcmp(out, field_cases[_i].expect) == 0, "case %d: got [%s]", _i, out);
}
END_TEST

/* An emit callback that refuses: the element is named, the count is -1. */
START_TEST(test_canonicalize_emit_fails)
{
    static char in[20000];
    size_t len = 0;
    in[len++] = '[';
    for (int i = 0; i < 300; i++)
        len += (size_t)snprintf(in + len, sizeof(in) - len, "%s{\"titulo\":\"task number %03d\"}",
                                i ? "," : "", i);
    in[len++] = ']';
    struct collect *c = calloc(1, sizeof(*c));
    char err[256] = "";
    size_t off = 0;
    long n = task_json_canonicalize(in, len, collect_emit, c, err, sizeof(err), &off, NULL);
    ck_assert_int_eq(n, -1);
    /* The collector holds 8192 bytes: about 220 of the 300 lines (37 bytes each with '|'). */
    ck_assert_msg(strstr(err, ": cannot write it") != NULL && strncmp(err, "element ", 8) == 0,
                  "%s", err);
    ck_assert_msg(c->len > 8000, "emitted only %zu bytes before refusing", c->len);
    free(c);
}
END_TEST

START_TEST(test_encode_extremes)
{
    struct task t;
    memset(&t, 0, sizeof(t));
    memcpy(t.titulo, "x", 2);
    t.titulo_len = 1;
    t.seq = TASK_SEQ_MAX;
    struct task_meta m = {UINT64_MAX, 951782400, -42, NULL};
    char buf[512];
    long n = task_json_encode_record(&t, &m, buf, sizeof(buf));
    const char *want = "{\"id\":18446744073709551615,\"titulo\":\"x\",\"seq\":9007199254740991,"
                       "\"creada\":\"2000-02-29T00:00:00Z\",\"pid\":-42}";
    ck_assert_int_eq(n, (long)strlen(want));
    buf[n] = '\0';
    ck_assert_str_eq(buf, want);
    t.seq = 0;
    struct task_meta m0 = {1, 0, 0, NULL};
    n = task_json_encode_record(&t, &m0, buf, sizeof(buf));
    want = "{\"id\":1,\"titulo\":\"x\",\"seq\":0,\"creada\":\"1970-01-01T00:00:00Z\",\"pid\":0}";
    ck_assert_int_eq(n, (long)strlen(want));
    buf[n] = '\0';
    ck_assert_str_eq(buf, want);
}
END_TEST

/* ---- task_json_escape: the one escaper ---- */

static const struct {
    const char *input;
    size_t input_len;
    const char *expected; /* the literal, quotes included */
    const char *description;
} escape_cases[] = {
    {S(""), "\"\"", "empty"},
    {S("comprar pan"), "\"comprar pan\"", "plain ASCII"},
    {S("a\"b"), "\"a\\\"b\"", "a quote"},
    {S("a\\b"), "\"a\\\\b\"", "a backslash"},
    {S("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"", "the short escapes"},
    {S("\x01\x1f"), "\"\\u0001\\u001f\"", "other control characters as \\u00XX"},
    {S("a\0b"), "\"a\\u0000b\"", "a NUL inside the length"},
    {S("\x7f"), "\"\x7f\"", "DEL is not a control character in JSON"},
    {S("/"), "\"/\"", "a slash stays"},
    {S("\xc3\xb1 \xe2\x9c\x93 \xf0\x9f\x98\x80"), "\"\xc3\xb1 \xe2\x9c\x93 \xf0\x9f\x98\x80\"",
     "UTF-8 stays raw"},
    {S("\xff\xfe"), "\"\xff\xfe\"", "bytes that are not UTF-8 pass (validation is the decoder's)"},
    {S("\"}\n]\n"), "\"\\\"}\\n]\\n\"", "a record's end cannot break out of the string"},
};

START_TEST(test_escape)
{
    const char *in = escape_cases[_i].input, *want = escape_cases[_i].expected;
    size_t in_len = escape_cases[_i].input_len, want_len = strlen(want);
    char out[128];
    /* Every cap below the length is refused without writing past cap; the exact length fits. */
    for (size_t cap = 0; cap <= want_len; cap++) {
        memset(out, '#', sizeof(out));
        long n = task_json_escape(in, in_len, out, cap);
        if (cap < want_len) {
            ck_assert_msg(n == -1, "%s: cap %zu: expected -1, got %ld",
                          escape_cases[_i].description, cap, n);
        } else {
            ck_assert_msg(n == (long)want_len && memcmp(out, want, want_len) == 0,
                          "%s: expected [%s], got %ld [%.*s]", escape_cases[_i].description, want,
                          n, n > 0 ? (int)n : 0, out);
        }
        ck_assert_msg(out[cap] == '#', "%s: cap %zu: wrote past it", escape_cases[_i].description,
                      cap);
    }
    /* And it reads back as the input. */
    char body[160];
    int m = snprintf(body, sizeof(body), "{\"titulo\":%s}", want);
    struct task t;
    char err[128] = "";
    if (in_len > 0 && memchr(in, '\0', in_len) == NULL && in[0] != '\xff') {
        ck_assert_msg(task_json_decode_input(body, (size_t)m, &t, err, sizeof(err)) == 0, "%s: %s",
                      escape_cases[_i].description, err);
        ck_assert(t.titulo_len == in_len && memcmp(t.titulo, in, in_len) == 0);
    }
}
END_TEST

START_TEST(test_escape_worst_case)
{
    /* 6 bytes per input byte + 2, the bound the header promises. */
    char in[64], out[6 * 64 + 2];
    memset(in, '\x01', sizeof(in));
    ck_assert_int_eq(task_json_escape(in, sizeof(in), out, sizeof(out)), (long)sizeof(out));
    ck_assert_int_eq(task_json_escape(in, sizeof(in), out, sizeof(out) - 1), -1);
}
END_TEST

/* ---- task_json_line_read: the one reader of the line format ---- */

/* A record line as the store writes it. */
#define L(id) "{\"id\":" #id ",\"titulo\":\"t\",\"cliente\":\"a\",\"seq\":1,\"pid\":4}"
#define L_LEN(id) (sizeof(L(id)) - 1)

#define BLANK TASK_JSON_LINE_BLANK
#define OPEN TASK_JSON_LINE_OPEN
#define CLOSE TASK_JSON_LINE_CLOSE
#define RECORD TASK_JSON_LINE_RECORD
#define COMMA TASK_JSON_LINE_COMMA
#define DAMAGE TASK_JSON_LINE_DAMAGE
#define NONE TASK_JSON_DAMAGE_NONE
#define NOT_ITEM TASK_JSON_DAMAGE_NOT_ITEM
#define BAD_RECORD TASK_JSON_DAMAGE_BAD_RECORD
#define AFTER_RECORD TASK_JSON_DAMAGE_AFTER_RECORD
#define AFTER_BRACKET TASK_JSON_DAMAGE_AFTER_BRACKET
#define SP TASK_JSON_LINE_SPACES
#define IT TASK_JSON_LINE_ITEMS

static const struct {
    const char *line;
    size_t line_len;
    unsigned flags;
    enum task_json_line_kind kind;
    enum task_json_line_damage damage;
    size_t start, end, next, at;
    int comma;
    uint64_t head_id; /* and, for a record, the decoded id */
    const char *why;  /* a part of it.why, or NULL */
    const char *description;
} line_cases[] = {
    /* the store's layout, read strictly (the store, taskctl) */
    {S("["), 0, OPEN, NONE, 0, 1, 1, 0, 0, 0, NULL, "open"},
    {S("]"), 0, CLOSE, NONE, 0, 1, 1, 0, 0, 0, NULL, "close"},
    {S(""), 0, BLANK, NONE, 0, 0, 0, 0, 0, 0, NULL, "empty"},
    {S(L(1)), 0, RECORD, NONE, 0, L_LEN(1), L_LEN(1), 0, 0, 1, NULL, "the last record"},
    {S(L(7) ","), 0, RECORD, NONE, 0, L_LEN(7), L_LEN(7) + 1, 0, 1, 7, NULL, "record and comma"},
    {S("{\"id\":99999999999999999999}"), 0, DAMAGE, BAD_RECORD, 0, 27, 27, 27, 0, 0, "\"id\"",
     "an id past 2^64: no head id, and the decoder wants an exact integer"},
    {S("{\"titulo\":\"a\",\"id\":3}"), 0, RECORD, NONE, 0, 21, 21, 0, 0, 0, NULL,
     "id not first: a record, but not the store's head"},
    {S("{\"id\": 3}"), 0, RECORD, NONE, 0, 9, 9, 0, 0, 0, NULL, "a space in the head"},
    {S("{\"id\":03}"), 0, RECORD, NONE, 0, 9, 9, 0, 0, 0, NULL,
     "a leading zero: the decoder takes it (other programs' files), the head does not"},
    {S(" ["), 0, DAMAGE, NOT_ITEM, 0, 2, 2, 0, 0, 0, NULL, "strict: no space before"},
    {S("[ "), 0, DAMAGE, AFTER_BRACKET, 0, 1, 1, 1, 0, 0, NULL, "strict: no space after"},
    {S("[\r"), 0, DAMAGE, AFTER_BRACKET, 0, 1, 1, 1, 0, 0, NULL, "strict: no CR"},
    {S("]]"), 0, DAMAGE, AFTER_BRACKET, 0, 1, 1, 1, 0, 0, "after the bracket", "two brackets"},
    {S("],"), 0, DAMAGE, AFTER_BRACKET, 0, 1, 1, 1, 0, 0, NULL, "a bracket takes no comma"},
    {S("[" L(1)), 0, DAMAGE, AFTER_BRACKET, 0, 1, 1, 1, 0, 0, NULL,
     "strict: a compact array is not one item"},
    {S(","), 0, DAMAGE, NOT_ITEM, 0, 1, 1, 0, 0, 0, NULL, "strict: a lone comma"},
    {S("hello"), 0, DAMAGE, NOT_ITEM, 0, 5, 5, 0, 0, 0, "not \"[\"", "not JSON"},
    {S("\0\0\0"), 0, DAMAGE, NOT_ITEM, 0, 3, 3, 0, 0, 0, NULL, "NULs"},
    {S(L(2) ",,"), 0, DAMAGE, AFTER_RECORD, 0, L_LEN(2), L_LEN(2) + 1, L_LEN(2), 1, 2,
     "closing brace", "two commas"},
    {S(L(2) " ,"), 0, DAMAGE, AFTER_RECORD, 0, L_LEN(2), L_LEN(2), L_LEN(2), 0, 2, NULL,
     "strict: a space before the comma"},
    {S(L(2) L(3)), 0, DAMAGE, AFTER_RECORD, 0, L_LEN(2), L_LEN(2), L_LEN(2), 0, 2, NULL,
     "two records glued"},
    {S(L(2) "," L(3)), 0, DAMAGE, AFTER_RECORD, 0, L_LEN(2), L_LEN(2) + 1, L_LEN(2), 1, 2, NULL,
     "strict: two records on a line"},
    {S(L(2) "}"), 0, DAMAGE, AFTER_RECORD, 0, L_LEN(2), L_LEN(2), L_LEN(2), 0, 2, NULL,
     "a brace too many"},
    {S("{\"id\":4,\"titulo\":\"a"), 0, DAMAGE, BAD_RECORD, 0, 19, 19, 18, 0, 4, "invalid JSON",
     "torn: the head is read, the record is not"},
    {S("{\"id\":4,\"ti@@@\"b\"},"), 0, DAMAGE, BAD_RECORD, 0, 19, 19, 15, 0, 4, "invalid JSON",
     "damage inside: where the decoder stopped"},
    {S("{\"titulo\":\"a\"}"), 0, DAMAGE, BAD_RECORD, 0, 14, 14, 14, 0, 0, "\"id\"",
     "no id: not a record"},
    {S("{\"id\":0}"), 0, DAMAGE, BAD_RECORD, 0, 8, 8, 8, 0, 0, "\"id\"", "id 0"},
    {S("{\"id\":1,\"titulo\":\"a\nb\"}"), 0, DAMAGE, BAD_RECORD, 0, 23, 23, 19, 0, 1, "raw control",
     "a raw newline inside (a line reader never passes one, a caller might)"},
    {S("{\"id\":1}\0"), 0, DAMAGE, AFTER_RECORD, 0, 8, 8, 8, 0, 1, NULL, "a NUL after the record"},
    /* with spaces (the client) */
    {S("  [ \t"), SP, OPEN, NONE, 2, 3, 5, 2, 0, 0, NULL, "spaces around the bracket"},
    {S(" \t\r"), SP, BLANK, NONE, 3, 3, 3, 3, 0, 0, NULL, "only spaces"},
    {S("\t" L(5) " , \r"), SP, RECORD, NONE, 1, 1 + L_LEN(5), L_LEN(5) + 5, 1, 1, 5, NULL,
     "spaces around the record and its comma"},
    {S("\n"), SP, DAMAGE, NOT_ITEM, 0, 1, 1, 0, 0, 0, NULL, "a newline is not a space here"},
    /* several items on a line (the client) */
    {S("[" L(1) ",]"), SP | IT, OPEN, NONE, 0, 1, 1, 0, 0, 0, NULL, "items: the '[' first"},
    {S(L(1) "," L(2) "]"), SP | IT, RECORD, NONE, 0, L_LEN(1), L_LEN(1) + 1, 0, 1, 1, NULL,
     "items: a record, then more"},
    {S(L(1) L(2)), IT, RECORD, NONE, 0, L_LEN(1), L_LEN(1), 0, 0, 1, NULL,
     "items: glued records, no comma"},
    {S(", " L(1)), SP | IT, COMMA, NONE, 0, 1, 2, 0, 0, 0, NULL, "items: a leading comma"},
    {S("] x"), SP | IT, CLOSE, NONE, 0, 1, 2, 0, 0, 0, NULL, "items: the rest is the caller's"},
    {S("x]"), SP | IT, DAMAGE, NOT_ITEM, 0, 2, 2, 0, 0, 0, NULL, "items: damage first"},
    {S("{\"id\":1,"), SP | IT, DAMAGE, BAD_RECORD, 0, 8, 8, 7, 0, 1, "invalid JSON",
     "items: a record cut short"},
};

START_TEST(test_line_read)
{
    const char *d = line_cases[_i].description;
    static struct task_record rec; /* 5 KiB */
    struct task_json_line it;
    memset(&it, 0x5a, sizeof(it)); /* every field must be set, whatever was there */
    memset(&rec, 0, sizeof(rec));
    enum task_json_line_kind k = task_json_line_read(line_cases[_i].line, line_cases[_i].line_len,
                                                     line_cases[_i].flags, &rec, &it);
    ck_assert_msg(k == it.kind, "%s: returned %d, it.kind %d", d, k, it.kind);
    ck_assert_msg(k == line_cases[_i].kind && it.damage == line_cases[_i].damage,
                  "%s: kind %d damage %d, expected %d %d (why: %s)", d, k, it.damage,
                  line_cases[_i].kind, line_cases[_i].damage, it.why);
    ck_assert_msg(it.start == line_cases[_i].start, "%s: start %zu, expected %zu", d, it.start,
                  line_cases[_i].start);
    ck_assert_msg(it.at == line_cases[_i].at, "%s: at %zu, expected %zu", d, it.at,
                  line_cases[_i].at);
    ck_assert_msg(it.comma == line_cases[_i].comma, "%s: comma %d", d, it.comma);
    ck_assert_msg(it.head_id == line_cases[_i].head_id,
                  "%s: head_id %" PRIu64 ", expected %" PRIu64, d, it.head_id,
                  line_cases[_i].head_id);
    if (k != DAMAGE || it.damage != NOT_ITEM) {
        ck_assert_msg(it.end == line_cases[_i].end, "%s: end %zu, expected %zu", d, it.end,
                      line_cases[_i].end);
        ck_assert_msg(it.next == line_cases[_i].next, "%s: next %zu, expected %zu", d, it.next,
                      line_cases[_i].next);
    }
    if (k == DAMAGE)
        ck_assert_msg(it.why[0] != '\0', "%s: damage without a why", d);
    else
        ck_assert_msg(it.why[0] == '\0', "%s: a why without damage: %s", d, it.why);
    if (line_cases[_i].why != NULL)
        ck_assert_msg(strstr(it.why, line_cases[_i].why) != NULL, "%s: why \"%s\", expected \"%s\"",
                      d, it.why, line_cases[_i].why);
    if (k == RECORD && it.head_id != 0)
        ck_assert_msg(rec.id == it.head_id, "%s: decoded id %" PRIu64, d, rec.id);
    /* Without rec the answer is the same. */
    struct task_json_line again;
    ck_assert_int_eq(task_json_line_read(line_cases[_i].line, line_cases[_i].line_len,
                                         line_cases[_i].flags, NULL, &again),
                     k);
    ck_assert(again.at == it.at && again.next == it.next && again.head_id == it.head_id);
}
END_TEST

/* A line read item by item (TASK_JSON_LINE_ITEMS), as the client does: each item as a word,
 * "[", "]", ",", "{ID" or "{ID," for a record (its decoded id), "!B" bad record, "!N" not an
 * item; the last word "." when the line ended blank. */
static const struct {
    const char *line;
    unsigned flags;
    const char *expected;
} items_cases[] = {
    {"[" L(1) "," L(2) "]", SP | IT, "[ {1, {2 ] ."},
    {"  [ " L(1) " , " L(2) " ] ", SP | IT, "[ {1, {2 ] ."},
    {L(1) L(2), SP | IT, "{1 {2 ."},
    {",," L(3), SP | IT, ", , {3 ."},
    {"[]", SP | IT, "[ ] ."},
    {"[x]", SP | IT, "[ !N"},
    {"[" L(1) ",{\"id\":2,", SP | IT, "[ {1, !B"},
    {"{\"titulo\":\"a\",\"id\":9},", SP | IT, "{9, ."},
    {"[ " L(1), IT, "[ !N"}, /* no spaces allowed */
    {"", SP | IT, "."},
};

START_TEST(test_line_items)
{
    static struct task_record rec;
    const char *line = items_cases[_i].line;
    size_t len = strlen(line), p = 0;
    char got[256] = "";
    size_t n = 0;
    for (int guard = 0; guard < 64; guard++) {
        struct task_json_line it;
        enum task_json_line_kind k =
            task_json_line_read(line + p, len - p, items_cases[_i].flags, &rec, &it);
        const char *sep = n > 0 ? " " : "";
        if (k == BLANK) {
            n += (size_t)snprintf(got + n, sizeof(got) - n, "%s.", sep);
            break;
        }
        if (k == DAMAGE) {
            n += (size_t)snprintf(got + n, sizeof(got) - n, "%s!%c", sep,
                                  it.damage == BAD_RECORD ? 'B' : 'N');
            break;
        }
        if (k == RECORD)
            n += (size_t)snprintf(got + n, sizeof(got) - n, "%s{%" PRIu64 "%s", sep, rec.id,
                                  it.comma ? "," : "");
        else
            n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s", sep,
                                  k == OPEN    ? "["
                                  : k == CLOSE ? "]"
                                               : ",");
        ck_assert_msg(it.next > 0 && it.next <= len - p, "%s: next %zu", line, it.next);
        p += it.next;
    }
    ck_assert_msg(strcmp(got, items_cases[_i].expected) == 0, "%s: got \"%s\", expected \"%s\"",
                  line, got, items_cases[_i].expected);
}
END_TEST

static const struct {
    const char *line;
    uint64_t id;
} line_id_cases[] = {
    {"{\"id\":1,\"titulo\":\"a\"}", 1},
    {"{\"id\":42}", 42},
    {"{\"id\":1844674407370955160}", 1844674407370955160u},
    {"{\"id\":18446744073709551615}", 0}, /* a conservative bound: never near */
    {"{\"id\":18446744073709551616}", 0},
    {"{\"id\":0,", 0},
    {"{\"id\":01,", 0},
    {"{\"id\":-1,", 0},
    {"{\"id\":1", 0},
    {"{\"id\":1 ,", 0},
    {"{\"id\": 1,", 0},
    {"{ \"id\":1,", 0},
    {"{\"ID\":1,", 0},
    {"", 0},
};

START_TEST(test_line_id)
{
    const char *l = line_id_cases[_i].line;
    ck_assert_msg(task_json_line_id(l, strlen(l)) == line_id_cases[_i].id, "%s: got %" PRIu64, l,
                  task_json_line_id(l, strlen(l)));
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void)
{
    Suite *s = suite_create("task_json");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_rejections, 0, N(reject_cases));
    tcase_add_test(tc, test_lengths);
    tcase_add_loop_test(tc, test_accepted, 0, N(accept_cases));
    tcase_add_loop_test(tc, test_round_trip, 0, N(round_trip_strings));
    tcase_add_test(tc, test_encode_exact);
    tcase_add_test(tc, test_worst_case_fits);
    tcase_add_loop_test(tc, test_decode_record, 0, N(record_cases));
    tcase_add_loop_test(tc, test_decode_host, 0, N(host_cases));
    tcase_add_loop_test(tc, test_canonicalize, 0, N(canon_cases));
    tcase_add_loop_test(tc, test_format_time, 0, N(time_cases));
    tcase_add_test(tc, test_format_time_sweep);
    tcase_add_test(tc, test_encode_extremes);
    tcase_add_test(tc, test_canonicalize_emit_fails);
    tcase_add_loop_test(tc, test_record_string, 0, N(field_cases));
    tcase_add_loop_test(tc, test_escape, 0, N(escape_cases));
    tcase_add_test(tc, test_escape_worst_case);
    tcase_add_loop_test(tc, test_line_read, 0, N(line_cases));
    tcase_add_loop_test(tc, test_line_items, 0, N(items_cases));
    tcase_add_loop_test(tc, test_line_id, 0, N(line_id_cases));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
