/* task_json.c - tasks <-> JSON text: strict input validation, record encoding and decoding. */
#include "task_json.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decimal.h"

#define TASK_JSON_KEY_SHOW 40 /* bytes of an unknown key quoted in a message */

static void json_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void json_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || err_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* Copies a key for a message: printable ASCII only, so a hostile key cannot
 * inject escape sequences or newlines into a log line. */
static void json_show_key(const char *key, size_t key_len, char *out, size_t out_cap)
{
    size_t o = 0;
    for (size_t i = 0; i < key_len && o + 4 < out_cap; i++) {
        unsigned char c = (unsigned char)key[i];
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
        if (i + 1 == TASK_JSON_KEY_SHOW && i + 1 < key_len) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
    }
    out[o] = '\0';
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF. Returns 1 when s[0, len) is valid. */
static int json_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* The length of the JSON number at s (RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?
 * ([eE][+-]?[0-9]+)?), or 0 when the text there is not one. cJSON reads
 * numbers with strtod() and so takes "070", "1." and ".5" too. */
static size_t json_number_len(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0') {
        i++;
    } else if (i < n && s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        size_t digits = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == digits)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t digits = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == digits)
            return 0;
    }
    /* "01" lexes as "0" then "1": a leading zero, not two numbers */
    if (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
        return 0;
    return i;
}

/* The raw text of the "seq" member at depth 1, when it is a number. */
struct json_seq_token {
    const char *text;
    size_t len;
};

/* cJSON accepts raw control characters inside strings, decodes \u0000 into a
 * string that stops early, and reads numbers more loosely than JSON allows.
 * All of these would break guarantees callers rely on (one record per line,
 * strlen == _len, seq an exact integer), so the raw text is scanned first.
 * The scan follows strings and numbers only; structure is cJSON's job. It
 * remembers the last key seen at depth 1 so that the message can name the
 * field, and hands back the text of the "seq" number (seq may be NULL).
 * Returns 0, or -1 with err. */
static int json_prescan(const char *body, size_t body_len, char *err, size_t err_len,
                        size_t *bad_at, struct json_seq_token *seq)
{
    int depth = 0;
    int expect_key = 0; /* at depth 1, the next string is a key */
    const char *key = NULL;
    size_t key_len = 0;
    size_t i = 0;
    while (i < body_len) {
        char c = body[i];
        if (c == '{' || c == '[') {
            depth++;
            expect_key = (depth == 1 && c == '{');
            i++;
        } else if (c == '}' || c == ']') {
            depth--;
            i++;
        } else if (c == ',') {
            expect_key = (depth == 1);
            i++;
        } else if (c == '"') {
            size_t start = ++i;
            int is_key = expect_key;
            expect_key = 0;
            while (i < body_len && body[i] != '"') {
                unsigned char b = (unsigned char)body[i];
                const char *what = NULL;
                if (b < 0x20) {
                    what = "raw control character in string (must be escaped)";
                } else if (b == '\\') {
                    if (i + 5 < body_len && body[i + 1] == 'u' &&
                        memcmp(body + i + 2, "0000", 4) == 0)
                        what = "must not contain \\u0000";
                    i++; /* skip the escaped byte; cJSON checks the rest */
                }
                if (what != NULL) {
                    if (is_key || key == NULL || depth < 1) {
                        json_err(err, err_len, "body: %s at byte %zu", what, i);
                    } else {
                        char shown[TASK_JSON_KEY_SHOW + 8];
                        json_show_key(key, key_len, shown, sizeof(shown));
                        json_err(err, err_len, "field \"%s\": %s", shown, what);
                    }
                    *bad_at = i;
                    return -1;
                }
                i++;
            }
            if (is_key && depth == 1) {
                key = body + start;
                key_len = i - start;
            }
            i++; /* closing quote */
        } else if ((unsigned char)c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            /* cJSON skips every byte <= 0x20 as whitespace, NUL included; JSON allows
             * only these four, and a NUL-filled region must read as damage. */
            json_err(err, err_len, "body: control character 0x%02x at byte %zu", (unsigned)c, i);
            *bad_at = i;
            return -1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t n = json_number_len(body + i, body_len - i);
            if (n == 0) {
                char shown[TASK_JSON_KEY_SHOW + 8];
                if (depth == 1 && key != NULL) {
                    json_show_key(key, key_len, shown, sizeof(shown));
                    json_err(err, err_len,
                             "field \"%s\": not a JSON number at byte %zu (no leading zeros, "
                             "digits on both sides of a point)",
                             shown, i);
                } else {
                    json_err(err, err_len, "body: not a JSON number at byte %zu", i);
                }
                *bad_at = i;
                return -1;
            }
            if (seq != NULL && depth == 1 && key != NULL && key_len == 3 &&
                memcmp(key, "seq", 3) == 0) {
                seq->text = body + i;
                seq->len = n;
            }
            i += n;
        } else {
            i++;
        }
    }
    return 0;
}

/* Copies a validated string field; returns 0 or -1 with err. */
static int json_take_string(const cJSON *item, const char *name, size_t min, size_t max, char *out,
                            size_t *out_len, char *err, size_t err_len)
{
    if (!cJSON_IsString(item) || item->valuestring == NULL) {
        json_err(err, err_len, "field \"%s\": must be a string", name);
        return -1;
    }
    size_t len = strlen(item->valuestring);
    if (len < min) {
        json_err(err, err_len, "field \"%s\": must not be empty", name);
        return -1;
    }
    if (len > max) {
        json_err(err, err_len, "field \"%s\": longer than %zu bytes", name, max);
        return -1;
    }
    if (!json_utf8_valid((const unsigned char *)item->valuestring, len)) {
        json_err(err, err_len, "field \"%s\": invalid UTF-8", name);
        return -1;
    }
    memcpy(out, item->valuestring, len + 1);
    *out_len = len;
    return 0;
}

/* seq from its text, exactly: digits only (no sign, fraction or exponent: 1.0,
 * 1e2 and -0 are other spellings, and doubles round 2^53 + 1), at most
 * TASK_SEQ_MAX. tok is what json_prescan() found for the member cJSON gave. */
static int json_take_seq(const cJSON *item, const struct json_seq_token *tok, int64_t *seq,
                         char *err, size_t err_len)
{
    if (!cJSON_IsNumber(item) || tok->text == NULL) {
        json_err(err, err_len, "field \"seq\": must be an integer >= 0");
        return -1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < tok->len; i++) {
        char c = tok->text[i];
        if (c < '0' || c > '9') {
            json_err(err, err_len,
                     "field \"seq\": must be an integer >= 0 written with digits only, not %.*s",
                     (int)(tok->len < 32 ? tok->len : 32), tok->text);
            return -1;
        }
        if (v > (uint64_t)TASK_SEQ_MAX) /* keeps going without overflow */
            continue;
        v = v * 10 + (uint64_t)(c - '0');
    }
    if (v > (uint64_t)TASK_SEQ_MAX) {
        json_err(err, err_len, "field \"seq\": larger than %lld", (long long)TASK_SEQ_MAX);
        return -1;
    }
    *seq = (int64_t)v;
    return 0;
}

int task_json_decode_input(const char *body, size_t body_len, struct task *t, char *err,
                           size_t err_len)
{
    const char *parse_end = NULL;
    int rc = -1;
    memset(t, 0, sizeof(*t));
    t->seq = -1;

    size_t bad_at;
    struct json_seq_token seq_tok = {NULL, 0};
    if (json_prescan(body, body_len, err, err_len, &bad_at, &seq_tok) < 0)
        return -1;
    cJSON *root = cJSON_ParseWithLengthOpts(body, body_len, &parse_end, 0);
    if (root == NULL) {
        size_t at = parse_end != NULL ? (size_t)(parse_end - body) : 0;
        json_err(err, err_len, "body: invalid JSON at byte %zu", at);
        return -1;
    }
    for (size_t at = (size_t)(parse_end - body); at < body_len; at++) {
        char c = body[at];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            json_err(err, err_len, "body: invalid JSON at byte %zu", at);
            goto out;
        }
    }
    if (!cJSON_IsObject(root)) {
        json_err(err, err_len, "body: must be a JSON object");
        goto out;
    }

    const cJSON *titulo = NULL, *descripcion = NULL, *cliente = NULL, *seq = NULL;
    for (const cJSON *it = root->child; it != NULL; it = it->next) {
        const cJSON **slot;
        if (strcmp(it->string, "titulo") == 0) {
            slot = &titulo;
        } else if (strcmp(it->string, "descripcion") == 0) {
            slot = &descripcion;
        } else if (strcmp(it->string, "cliente") == 0) {
            slot = &cliente;
        } else if (strcmp(it->string, "seq") == 0) {
            slot = &seq;
        } else {
            char shown[TASK_JSON_KEY_SHOW + 8];
            json_show_key(it->string, strlen(it->string), shown, sizeof(shown));
            json_err(err, err_len, "unknown field \"%s\"", shown);
            goto out;
        }
        /* cJSON keeps duplicates as separate members; JSON leaves their
         * meaning open, so refuse rather than pick one. */
        if (*slot != NULL) {
            json_err(err, err_len, "duplicate field \"%s\"", it->string);
            goto out;
        }
        *slot = it;
    }
    if (titulo == NULL) {
        json_err(err, err_len, "field \"titulo\": required");
        goto out;
    }
    if (json_take_string(titulo, "titulo", 1, TASK_TITULO_MAX, t->titulo, &t->titulo_len, err,
                         err_len) < 0)
        goto out;
    if (descripcion != NULL) {
        if (json_take_string(descripcion, "descripcion", 0, TASK_DESCRIPCION_MAX, t->descripcion,
                             &t->descripcion_len, err, err_len) < 0)
            goto out;
        t->has_descripcion = 1;
    }
    if (cliente != NULL) {
        if (json_take_string(cliente, "cliente", 0, TASK_CLIENTE_MAX, t->cliente, &t->cliente_len,
                             err, err_len) < 0)
            goto out;
        t->has_cliente = 1;
    }
    if (seq != NULL && json_take_seq(seq, &seq_tok, &t->seq, err, err_len) < 0)
        goto out;
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

/* A bounded writer: every put checks the room left, so the encoder needs no
 * allocation and reports "too small" instead of overflowing. */
struct json_out {
    char *buf;
    size_t cap;
    size_t len;
    int overflow;
};

static void out_put(struct json_out *o, const char *s, size_t n)
{
    if (o->overflow || o->cap - o->len < n) {
        o->overflow = 1;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void out_str(struct json_out *o, const char *s)
{
    out_put(o, s, strlen(s));
}

/* Writes s as a JSON string. Only '"', '\\' and control characters are
 * escaped: UTF-8 stays raw (readable with cat, half the size of \uXXXX), and
 * no raw newline can ever reach the file, which keeps one record per line. */
static void out_json_string(struct json_out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    out_put(o, "\"", 1);
    size_t run = 0; /* start of the pending run of bytes copied as they are */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        out_put(o, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        default:
            u[0] = '\\';
            u[1] = 'u';
            u[2] = '0';
            u[3] = '0';
            u[4] = hex[c >> 4];
            u[5] = hex[c & 0xf];
            u[6] = '\0';
            esc = u;
        }
        out_str(o, esc);
    }
    out_put(o, s + run, n - run);
    out_put(o, "\"", 1);
}

/* Skips the JSON string at s[*i] == '"'; *i ends past its closing quote.
 * Returns 0, or -1 if it does not close. */
static int json_skip_string(const char *s, size_t n, size_t *i)
{
    for (size_t k = *i + 1; k < n; k++) {
        if (s[k] == '\\')
            k++;
        else if (s[k] == '"') {
            *i = k + 1;
            return 0;
        }
    }
    return -1;
}

/* Decodes the JSON string at s[i] == '"' into out (cap >= 1): escapes
 * resolved, cut at a UTF-8 boundary to fit, NUL-terminated. Returns the
 * length written. The text is a stored record's: valid JSON. */
static size_t json_decode_string(const char *s, size_t n, size_t i, char *out, size_t cap)
{
    size_t o = 0;
    for (i++; i < n && s[i] != '"'; i++) {
        char buf[4];
        size_t b = 1;
        buf[0] = s[i];
        if (s[i] == '\\' && i + 1 < n) {
            char e = s[++i];
            unsigned cp = 0;
            buf[0] = e == 'n'   ? '\n'
                     : e == 't' ? '\t'
                     : e == 'r' ? '\r'
                     : e == 'b' ? '\b'
                     : e == 'f' ? '\f'
                                : e;
            if (e == 'u' && i + 4 < n) {
                for (int k = 1; k <= 4; k++) {
                    char h = s[i + k];
                    cp = cp * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
                }
                i += 4;
                if (cp >= 0xd800 && cp < 0xdc00 && i + 6 < n && s[i + 1] == '\\' &&
                    s[i + 2] == 'u') {
                    unsigned lo = 0;
                    for (int k = 3; k <= 6; k++) {
                        char h = s[i + k];
                        lo = lo * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
                    }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 6;
                }
                if (cp < 0x80) {
                    buf[0] = (char)cp;
                } else if (cp < 0x800) {
                    buf[0] = (char)(0xc0 | (cp >> 6));
                    buf[1] = (char)(0x80 | (cp & 0x3f));
                    b = 2;
                } else if (cp < 0x10000) {
                    buf[0] = (char)(0xe0 | (cp >> 12));
                    buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    buf[2] = (char)(0x80 | (cp & 0x3f));
                    b = 3;
                } else {
                    buf[0] = (char)(0xf0 | (cp >> 18));
                    buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
                    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    buf[3] = (char)(0x80 | (cp & 0x3f));
                    b = 4;
                }
            }
        } else if ((unsigned char)s[i] >= 0xc0) {
            /* A raw multi-byte character: copied whole or not at all. */
            b = (unsigned char)s[i] >= 0xf0 ? 4 : (unsigned char)s[i] >= 0xe0 ? 3 : 2;
            if (i + b > n)
                break;
            memcpy(buf, s + i, b);
            i += b - 1;
        }
        if (o + b >= cap)
            break;
        memcpy(out + o, buf, b);
        o += b;
    }
    out[o] = '\0';
    return o;
}

long task_json_record_string(const char *line, size_t len, const char *key, char *out, size_t cap)
{
    size_t key_len = strlen(key);
    size_t i = 0;
    if (cap == 0 || len == 0 || line[0] != '{')
        return -1;
    i = 1;
    while (i < len) {
        while (i < len && (line[i] == ' ' || line[i] == ',' || line[i] == '\t'))
            i++;
        if (i >= len || line[i] != '"')
            return -1;
        size_t k0 = i + 1;
        if (json_skip_string(line, len, &i) < 0)
            return -1;
        int match = i - 1 - k0 == key_len && memcmp(line + k0, key, key_len) == 0;
        while (i < len && (line[i] == ' ' || line[i] == ':'))
            i++;
        if (i >= len)
            return -1;
        if (match)
            return line[i] == '"' ? (long)json_decode_string(line, len, i, out, cap) : -1;
        /* Skip the value: a string, a nested object or array, or a bare token. */
        int depth = 0;
        while (i < len) {
            char c = line[i];
            if (c == '"') {
                if (json_skip_string(line, len, &i) < 0)
                    return -1;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                if (depth == 0)
                    return -1; /* the record ended: no such key */
                depth--;
            } else if (c == ',' && depth == 0)
                break;
            i++;
        }
    }
    return -1;
}

long task_json_escape(const char *s, size_t n, char *out, size_t cap)
{
    struct json_out o = {out, cap, 0, 0};
    out_json_string(&o, s, n);
    return o.overflow ? -1 : (long)o.len;
}

/* Integers by hand: snprintf() was the largest single cost of encoding a
 * record. */
static void out_u64(struct json_out *o, uint64_t v)
{
    char num[DECIMAL_U64_MAX];
    out_put(o, num, (size_t)(decimal_put_u64(num, v) - num));
}

static void out_i64(struct json_out *o, int64_t v)
{
    if (v < 0) {
        out_put(o, "-", 1);
        out_u64(o, (uint64_t)0 - (uint64_t)v); /* also right for INT64_MIN */
        return;
    }
    out_u64(o, (uint64_t)v);
}

#define JSON_TIME_MIN (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define JSON_TIME_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */

/* Writes n as exactly width decimal digits at p. */
static void json_digits(char *p, unsigned n, int width)
{
    while (width-- > 0) {
        p[width] = (char)('0' + n % 10);
        n /= 10;
    }
}

/* The proleptic Gregorian date of a day number (days since 1970-01-01, may
 * be negative). Counts in 400-year eras of 146097 days that start on March
 * 1st, so that the leap day is the last day of its year: each era repeats
 * the same calendar, and within an era the year, then the day of the year,
 * then the month follow by integer arithmetic. (The method of Howard
 * Hinnant's "chrono-compatible low-level date algorithms".) */
static void json_civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
    days += 719468; /* from 1970-01-01 to 0000-03-01 */
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);                       /* [0, 146096] */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    unsigned mp = (5 * doy + 2) / 153;                                    /* March = 0 */
    *day = doy - (153 * mp + 2) / 5 + 1;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = (int64_t)yoe + era * 400 + (*month <= 2);
}

/* By hand rather than gmtime_r() + strftime(): those were a fifth of the
 * cost of encoding a record, and every POST encodes one. Years outside
 * 0000..9999 (never from time()) take the library's path. */
char *task_json_format_time(int64_t epoch_seconds, char *buf, size_t cap)
{
    assert(cap >= 21);
    if (epoch_seconds >= JSON_TIME_MIN && epoch_seconds <= JSON_TIME_MAX) {
        int64_t days = epoch_seconds / 86400, secs = epoch_seconds % 86400;
        if (secs < 0) {
            secs += 86400;
            days--;
        }
        int64_t year;
        unsigned month, day;
        json_civil_from_days(days, &year, &month, &day);
        memcpy(buf, "0000-00-00T00:00:00Z", 21);
        json_digits(buf, (unsigned)year, 4);
        json_digits(buf + 5, month, 2);
        json_digits(buf + 8, day, 2);
        json_digits(buf + 11, (unsigned)(secs / 3600), 2);
        json_digits(buf + 14, (unsigned)(secs / 60 % 60), 2);
        json_digits(buf + 17, (unsigned)(secs % 60), 2);
        return buf;
    }
    struct tm tm;
    time_t tt = (time_t)epoch_seconds;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "1970-01-01T00:00:00Z");
    return buf;
}

long task_json_encode_record(const struct task *t, const struct task_meta *meta, char *buf,
                             size_t cap)
{
    struct json_out o = {buf, cap, 0, 0};
    char when[40];
    out_str(&o, "{\"id\":");
    out_u64(&o, meta->id);
    out_str(&o, ",\"titulo\":");
    out_json_string(&o, t->titulo, t->titulo_len);
    if (t->has_descripcion) {
        out_str(&o, ",\"descripcion\":");
        out_json_string(&o, t->descripcion, t->descripcion_len);
    }
    if (t->has_cliente) {
        out_str(&o, ",\"cliente\":");
        out_json_string(&o, t->cliente, t->cliente_len);
    }
    if (t->seq >= 0) {
        out_str(&o, ",\"seq\":");
        out_i64(&o, t->seq);
    }
    out_str(&o, ",\"creada\":\"");
    task_json_format_time(meta->creada, when, sizeof(when));
    out_str(&o, when); /* digits and punctuation only: nothing to escape */
    out_put(&o, "\"", 1);
    out_str(&o, ",\"pid\":");
    out_i64(&o, meta->pid);
    if (meta->host != NULL && meta->host[0] != '\0') {
        out_str(&o, ",\"host\":");
        out_json_string(&o, meta->host, strlen(meta->host));
    }
    out_put(&o, "}", 1);
    return o.overflow ? -1 : (long)o.len;
}

/* Copies a string member of a stored record, truncating to cap - 1 bytes but
 * reporting the stored length. Returns 1 if present. */
static int json_copy_member(const cJSON *obj, const char *name, char *out, size_t cap,
                            size_t *out_len)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsString(it) || it->valuestring == NULL)
        return 0;
    size_t len = strlen(it->valuestring);
    size_t n = len < cap - 1 ? len : cap - 1;
    memcpy(out, it->valuestring, n);
    out[n] = '\0';
    if (out_len != NULL)
        *out_len = len;
    return 1;
}

/* An integer member that fits int64 exactly; returns 1 if present and valid. */
static int json_int_member(const cJSON *obj, const char *name, int64_t *v)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsNumber(it))
        return 0;
    double d = it->valuedouble;
    if (floor(d) != d || d < -9007199254740992.0 || d > 9007199254740992.0)
        return 0;
    *v = (int64_t)d;
    return 1;
}

int task_json_decode_record(const char *text, size_t text_len, struct task_record *rec, size_t *end,
                            char *err, size_t err_len)
{
    const char *parse_end = NULL;
    int64_t id = 0;
    if (text_len == 0 || text[0] != '{') {
        json_err(err, err_len, "record: must start with '{'");
        if (end != NULL)
            *end = 0;
        return -1;
    }
    cJSON *obj = cJSON_ParseWithLengthOpts(text, text_len, &parse_end, 0);
    if (obj == NULL) {
        size_t at = parse_end != NULL ? (size_t)(parse_end - text) : 0;
        json_err(err, err_len, "record: invalid JSON at byte %zu", at);
        if (end != NULL)
            *end = at;
        return -1;
    }
    if (end != NULL)
        *end = (size_t)(parse_end - text);
    /* Records are written without any raw control character; cJSON would
     * take NULs and other bytes below 0x20 for whitespace or string content. */
    for (const char *q = text; q < parse_end; q++) {
        if ((unsigned char)*q < 0x20) {
            json_err(err, err_len, "record: raw control character at byte %zu", (size_t)(q - text));
            if (end != NULL)
                *end = (size_t)(q - text);
            cJSON_Delete(obj);
            return -1;
        }
    }
    if (!json_int_member(obj, "id", &id) || id < 1) {
        json_err(err, err_len, "record: \"id\" must be an integer >= 1");
        cJSON_Delete(obj);
        return -1;
    }
    if (rec != NULL) {
        memset(rec, 0, sizeof(*rec));
        rec->id = (uint64_t)id;
        struct task *t = &rec->task;
        json_copy_member(obj, "titulo", t->titulo, sizeof(t->titulo), &t->titulo_len);
        t->has_descripcion = json_copy_member(obj, "descripcion", t->descripcion,
                                              sizeof(t->descripcion), &t->descripcion_len);
        t->has_cliente =
            json_copy_member(obj, "cliente", t->cliente, sizeof(t->cliente), &t->cliente_len);
        if (!json_int_member(obj, "seq", &t->seq) || t->seq < 0)
            t->seq = -1;
        json_copy_member(obj, "creada", rec->creada, sizeof(rec->creada), NULL);
        int64_t pid;
        rec->pid = json_int_member(obj, "pid", &pid) && pid >= 0 ? (long)pid : -1;
        json_copy_member(obj, "host", rec->host, sizeof(rec->host), NULL);
    }
    cJSON_Delete(obj);
    return 0;
}

/* Writes any JSON value on one line: strings through our escaper, numbers
 * in their shortest exact form, containers recursively. */
static void out_json_value(struct json_out *o, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        out_json_string(o, v->valuestring, strlen(v->valuestring));
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        char num[40];
        if (floor(d) == d && fabs(d) <= 9007199254740992.0) {
            snprintf(num, sizeof(num), "%" PRId64, (int64_t)d);
        } else if (isfinite(d)) {
            snprintf(num, sizeof(num), "%.17g", d);
        } else {
            snprintf(num, sizeof(num), "null");
        }
        out_str(o, num);
    } else if (cJSON_IsTrue(v)) {
        out_str(o, "true");
    } else if (cJSON_IsFalse(v)) {
        out_str(o, "false");
    } else if (cJSON_IsArray(v)) {
        out_put(o, "[", 1);
        for (const cJSON *it = v->child; it != NULL; it = it->next) {
            out_json_value(o, it);
            if (it->next != NULL)
                out_put(o, ",", 1);
        }
        out_put(o, "]", 1);
    } else if (cJSON_IsObject(v)) {
        out_put(o, "{", 1);
        for (const cJSON *it = v->child; it != NULL; it = it->next) {
            out_json_string(o, it->string, strlen(it->string));
            out_put(o, ":", 1);
            out_json_value(o, it);
            if (it->next != NULL)
                out_put(o, ",", 1);
        }
        out_put(o, "}", 1);
    } else {
        out_str(o, "null");
    }
}

long task_json_canonicalize(const char *text, size_t text_len, task_json_emit_fn *emit, void *arg,
                            char *err, size_t err_len, size_t *err_offset, size_t *renumbered)
{
    size_t changed = 0;
    const char *parse_end = NULL;
    long count = -1;
    char *line = NULL;
    size_t dummy;
    if (err_offset == NULL)
        err_offset = &dummy;
    *err_offset = 0;

    if (json_prescan(text, text_len, err, err_len, err_offset, NULL) < 0)
        return -1;
    cJSON *root = cJSON_ParseWithLengthOpts(text, text_len, &parse_end, 0);
    if (root == NULL) {
        *err_offset = parse_end != NULL ? (size_t)(parse_end - text) : 0;
        json_err(err, err_len, "invalid JSON");
        return -1;
    }
    for (size_t at = (size_t)(parse_end - text); at < text_len; at++) {
        char c = text[at];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            *err_offset = at;
            json_err(err, err_len, "unexpected data after the JSON array");
            goto out;
        }
    }
    if (!cJSON_IsArray(root)) {
        json_err(err, err_len, "not a JSON array");
        goto out;
    }
    line = malloc(TASK_JSON_RECORD_MAX);
    if (line == NULL) {
        json_err(err, err_len, "out of memory");
        goto out;
    }
    long n = 0;
    for (const cJSON *el = root->child; el != NULL; el = el->next) {
        struct json_out o = {line, TASK_JSON_RECORD_MAX, 0, 0};
        n++;
        if (!cJSON_IsObject(el)) {
            json_err(err, err_len, "element %ld: not a JSON object", n);
            goto out;
        }
        out_str(&o, "{\"id\":");
        out_u64(&o, (uint64_t)n);
        int kept = 0;
        for (const cJSON *it = el->child; it != NULL; it = it->next) {
            if (strcmp(it->string, "id") == 0) {
                kept = cJSON_IsNumber(it) && it->valuedouble == (double)n;
                continue;
            }
            out_put(&o, ",", 1);
            out_json_string(&o, it->string, strlen(it->string));
            out_put(&o, ":", 1);
            out_json_value(&o, it);
        }
        out_put(&o, "}", 1);
        if (o.overflow) {
            json_err(err, err_len, "element %ld: longer than %d bytes on one line", n,
                     TASK_JSON_RECORD_MAX);
            goto out;
        }
        changed += !kept;
        if (emit(arg, line, o.len) < 0) {
            json_err(err, err_len, "element %ld: cannot write it", n);
            goto out;
        }
    }
    count = n;
    if (renumbered != NULL)
        *renumbered = changed;
out:
    free(line);
    cJSON_Delete(root);
    return count;
}

uint64_t task_json_line_id(const char *line, size_t len)
{
    static const char head[] = "{\"id\":";
    size_t i = sizeof(head) - 1;
    uint64_t id = 0;
    if (len <= i || memcmp(line, head, i) != 0 || line[i] < '1' || line[i] > '9')
        return 0;
    for (; i < len && line[i] >= '0' && line[i] <= '9'; i++) {
        if (id > (UINT64_MAX - 9) / 10)
            return 0;
        id = id * 10 + (uint64_t)(line[i] - '0');
    }
    if (i >= len || (line[i] != ',' && line[i] != '}'))
        return 0;
    return id;
}

static size_t line_skip_spaces(const char *line, size_t len, size_t i, unsigned flags)
{
    if (flags & TASK_JSON_LINE_SPACES)
        while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
            i++;
    return i;
}

/* The line is damaged at byte at: kind DAMAGE, with what and why. */
static enum task_json_line_kind
line_damage(struct task_json_line *it, enum task_json_line_damage what, size_t at, const char *why)
{
    it->kind = TASK_JSON_LINE_DAMAGE;
    it->damage = what;
    it->at = at;
    if (why != NULL)
        snprintf(it->why, sizeof(it->why), "%s", why);
    return it->kind;
}

/* One pass: the first byte names the item, a record is decoded once, and what
 * follows the item decides between "done", "more items" and "damage". Per line
 * this costs the record's decoding and a few comparisons: the store's check
 * runs it on every line of a file that may hold millions. */
enum task_json_line_kind task_json_line_read(const char *line, size_t len, unsigned flags,
                                             struct task_record *rec, struct task_json_line *it)
{
    size_t i = line_skip_spaces(line, len, 0, flags);
    it->damage = TASK_JSON_DAMAGE_NONE;
    it->start = it->at = i;
    it->end = it->next = len;
    it->comma = 0;
    it->head_id = 0;
    it->why[0] = '\0';
    if (i == len) {
        it->kind = TASK_JSON_LINE_BLANK;
        return it->kind;
    }
    if (line[i] == '[' || line[i] == ']') {
        it->kind = line[i] == '[' ? TASK_JSON_LINE_OPEN : TASK_JSON_LINE_CLOSE;
        it->end = i + 1;
    } else if (line[i] == ',' && (flags & TASK_JSON_LINE_ITEMS)) {
        it->kind = TASK_JSON_LINE_COMMA;
        it->end = i + 1;
    } else if (line[i] == '{') {
        size_t end = 0;
        it->head_id = task_json_line_id(line + i, len - i);
        if (task_json_decode_record(line + i, len - i, rec, &end, it->why, sizeof(it->why)) < 0)
            return line_damage(it, TASK_JSON_DAMAGE_BAD_RECORD, i + end, NULL);
        it->kind = TASK_JSON_LINE_RECORD;
        it->end = i + end;
    } else {
        return line_damage(it, TASK_JSON_DAMAGE_NOT_ITEM, i, "not \"[\", \"]\" or a record");
    }
    size_t j = line_skip_spaces(line, len, it->end, flags);
    if (it->kind == TASK_JSON_LINE_RECORD && j < len && line[j] == ',') {
        it->comma = 1;
        j = line_skip_spaces(line, len, j + 1, flags);
    }
    it->next = j;
    if (j < len && !(flags & TASK_JSON_LINE_ITEMS)) {
        if (it->kind == TASK_JSON_LINE_RECORD)
            return line_damage(it, TASK_JSON_DAMAGE_AFTER_RECORD, it->end,
                               "bytes after the record's closing brace");
        return line_damage(it, TASK_JSON_DAMAGE_AFTER_BRACKET, it->end, "bytes after the bracket");
    }
    return it->kind;
}
