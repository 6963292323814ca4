/* http_parser.c - incremental HTTP/1.1 request-head parser (the chunked-body decoder is in
 * http_chunked.c). */
#include "http_parser.h"

#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "http_chars.h"

/*
 * The request head is parsed in two passes.
 *
 * Framing (find_head_end) runs on every call, over the bytes that are new
 * since the last one (prev_len): it skips the empty lines allowed before the
 * request line, finds the empty line that ends the header section, enforces
 * the two size limits, and rejects at once the bytes that can never be part
 * of a request: NUL, control characters other than HTAB, CR and LF, DEL, a CR
 * not followed by LF, and a method that is not a token followed by SP. A TLS
 * ClientHello or a stray binary protocol thus gets 400 from its first bytes
 * instead of waiting for the header timeout (408). Everything else waits for
 * the complete head, so every prefix of a valid request is "need more".
 *
 * The answer for a buffer must not depend on how its bytes arrived (whole,
 * byte by byte, split anywhere). Each outcome has a point: the buffered length
 * at which the bytes first prove it. The head's end is at its last LF; a limit
 * at the first byte past it (so a caller never needs more than the limits
 * buffered); a bad byte at itself, or at the byte after a bare CR. The
 * earliest point wins, the limit on a tie. A bad byte is answered as the
 * complete head would be: the complete lines before it are parsed first, so
 * that their errors (505, 431 for too many fields) come first.
 *
 * Syntax and semantics (parse_head) run once over the complete head: the
 * request line, every field line, and then the rules that need all fields
 * (Host count, Content-Length versus Transfer-Encoding). Errors are reported
 * in byte order, then in the order of the final checks.
 */

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Case-insensitive comparison of s[0..n) with a lower-case literal. */
static int token_eq(const char *s, size_t n, const char *lit)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (lit[i] == '\0' || ascii_lower((unsigned char)s[i]) != (unsigned char)lit[i])
            return 0;
    }
    return lit[n] == '\0';
}

static int fail(struct http_request *req, int status, const char *why)
{
    req->error_status = status;
    req->error = why;
    return -1;
}

/* ---------------------------------------------------------------- framing */

/* Skips the empty lines (CRLF or LF) that RFC 9112 §2.2 lets a server ignore
 * before the request line; returns where the request line starts. */
static size_t skip_empty_lines(const char *buf, size_t len)
{
    size_t i = 0;

    while (i < len) {
        if (buf[i] == '\n')
            i++;
        else if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')
            i += 2;
        else
            break;
    }
    return i;
}

/* Returns the buffered length at which the request line starting at rl is
 * known to be longer than max_rl bytes (without its line end), or 0 if the
 * bytes so far do not prove it. *line_end is set to the index of the line's LF
 * when the line is complete and fits, else to 0. */
static size_t request_line_overflow(const char *buf, size_t len, size_t rl, size_t max_rl,
                                    size_t *line_end)
{
    size_t window = len - rl;
    const char *lf;
    size_t k;

    *line_end = 0;
    if (window > max_rl && window - max_rl > 2)
        window = max_rl + 2;
    lf = memchr(buf + rl, '\n', window);
    if (lf != NULL) {
        size_t p = (size_t)(lf - buf);
        size_t content = p - rl - (p > rl && buf[p - 1] == '\r');
        if (content <= max_rl) {
            *line_end = p;
            return 0;
        }
    }
    /* The byte at k is the first one past the limit. It proves the overflow
     * unless it is a CR whose LF has not arrived yet. */
    k = rl + max_rl;
    if (len > k && buf[k] != '\r')
        return k + 1;
    if (len > k + 1)
        return k + 2;
    return 0;
}

/* The first byte in [from, to) that no request head may hold: NUL, a control
 * character other than HTAB, CR and LF, DEL, or a CR not followed by LF (a CR
 * that is the last byte buffered may still get its LF: not judged yet).
 * Returns the buffered length that proves it (its index + 1; + 2 for a CR,
 * whose proof is the byte after it), or 0; *at gets its index. */
static size_t find_bad_byte(const char *buf, size_t len, size_t from, size_t to, size_t *at)
{
    size_t i;

    for (i = from; i < to; i++) {
        unsigned char c = (unsigned char)buf[i];
        if ((c >= 0x20 && c != 0x7f) || c == '\t' || c == '\n')
            continue;
        if (c == '\r') {
            if (i + 1 >= len || buf[i + 1] == '\n')
                continue;
            *at = i;
            return i + 2;
        }
        *at = i;
        return i + 1;
    }
    return 0;
}

/* The method (RFC 9112 §3) is a token followed by SP: the first byte in
 * [rl, to) that breaks that proves the request bad. Returns the buffered
 * length that proves it (its index + 1), or 0; *at gets its index. A CR where
 * the request line starts is left to find_bad_byte: it may begin an empty
 * line, which is skipped. */
static size_t find_bad_method(const char *buf, size_t rl, size_t to, size_t *at)
{
    size_t i = rl;

    /* rl may lie past to (empty lines beyond a limit or the head's end). */
    while (i < to && http_is_tchar((unsigned char)buf[i]))
        i++;
    if (i >= to || (buf[i] == ' ' && i > rl) || (buf[i] == '\r' && i == rl))
        return 0;
    *at = i;
    return i + 1;
}

/* What framing found in buf[0..len). */
struct framing {
    size_t rl;      /* where the request line starts */
    size_t end;     /* the head's length; 0: not complete */
    size_t bad_at;  /* with FRAME_BAD_BYTE: the offending byte */
    int bad_method; /* ... which breaks the method */
    size_t proof;   /* FRAME_BAD_BYTE, FRAME_LIMIT: the buffered length that proves it */
};

enum frame_result {
    FRAME_NEED_MORE,
    FRAME_COMPLETE,
    FRAME_LIMIT,    /* 414 or 431, in req */
    FRAME_BAD_BYTE, /* bad_at: answered by reject_bad_byte() */
};

/* Finds the end of the head, a limit exceeded, or a byte that can never be
 * part of a request, whichever the buffered bytes prove first (see the
 * comment at the top). */
static enum frame_result find_head_end(const char *buf, size_t len, size_t prev_len,
                                       const struct http_limits *limits, struct http_request *req,
                                       struct framing *fr)
{
    /* The head length is returned as an int. */
    size_t max_hb = limits->max_header_bytes < INT_MAX ? limits->max_header_bytes : INT_MAX;
    size_t line_end;
    size_t over_414;
    size_t over = 0; /* where a limit is proven; 0: nowhere yet */
    int over_status = 0;
    size_t cap;
    size_t bad;
    size_t bad_m;
    size_t at_m = 0;
    size_t from;

    fr->rl = skip_empty_lines(buf, len);
    fr->end = 0;
    fr->bad_at = 0;
    fr->bad_method = 0;
    over_414 = request_line_overflow(buf, len, fr->rl, limits->max_request_line, &line_end);

    /* The head ends with an LF followed by an empty line (LF or CRLF). Such an
     * end lying wholly before prev_len would have been found by the last call,
     * so its first LF is at prev_len - 2 or later. */
    if (line_end != 0) {
        size_t a = line_end;
        if (prev_len <= len && prev_len >= 2 && prev_len - 2 > a)
            a = prev_len - 2;
        while (a < len && fr->end == 0) {
            const char *lf = memchr(buf + a, '\n', len - a);
            if (lf == NULL)
                break;
            a = (size_t)(lf - buf);
            if (a + 1 < len && buf[a + 1] == '\n')
                fr->end = a + 2;
            else if (a + 2 < len && buf[a + 1] == '\r' && buf[a + 2] == '\n')
                fr->end = a + 3;
            a++;
        }
    }
    if (fr->end > max_hb)
        fr->end = 0; /* too late: the limit was proven at max_hb */
    if (over_414 != 0) {
        /* The header-byte limit may have been crossed at an earlier byte. */
        over = over_414;
        over_status = 414;
    }
    if (fr->end == 0 && len >= max_hb && (over == 0 || max_hb < over)) {
        over = max_hb;
        over_status = 431;
    }

    /* Bad bytes: only the new ones, as the last call (which said "need more")
     * judged every byte before its last, and that one only if it was not a CR
     * waiting for its LF. Nothing at or past the head's end: that is body. */
    cap = fr->end != 0 ? fr->end : over != 0 ? over : len;
    from = prev_len <= len && prev_len > 0 ? prev_len - 1 : 0;
    bad = find_bad_byte(buf, len, from, cap, &fr->bad_at);
    bad_m = find_bad_method(buf, fr->rl, cap, &at_m);
    if (bad_m != 0 && (bad == 0 || bad_m < bad)) {
        bad = bad_m;
        fr->bad_at = at_m;
        fr->bad_method = 1;
    }
    /* On a tie (both proven by the same buffered length) the limit wins, as
     * it did before bad bytes were judged early. */
    if (bad != 0 && (over == 0 || bad < over)) {
        fr->proof = bad;
        return FRAME_BAD_BYTE;
    }
    fr->proof = over;
    if (over != 0) {
        fail(req, over_status,
             over_status == 414 ? "request line too long" : "request header section too large");
        return FRAME_LIMIT;
    }
    return fr->end != 0 ? FRAME_COMPLETE : FRAME_NEED_MORE;
}

/* ------------------------------------------------------ syntax and meaning */

/* Returns the next line of the complete head at *pos: its content without the
 * line end in [*ls, *le), and moves *pos past the LF (which must exist). */
static void next_line(const char *buf, size_t *pos, size_t *ls, size_t *le)
{
    size_t p = *pos;

    while (buf[p] != '\n')
        p++;
    *ls = *pos;
    *le = (p > *pos && buf[p - 1] == '\r') ? p - 1 : p;
    *pos = p + 1;
}

/* The message for the byte at i that may not appear there (i == le: the
 * line ended too early). */
static const char *bad_byte_reason(const char *buf, size_t i, size_t le, const char *otherwise)
{
    unsigned char c = i < le ? (unsigned char)buf[i] : 'x';

    if (c == '\r')
        return "bare cr in request head";
    if (c == '\0')
        return "nul byte in request head";
    return otherwise;
}

/* Splits a comma-separated field value (RFC 9110 §5.6.1) into elements with
 * their optional whitespace trimmed, skipping empty ones. Returns 1 with the
 * next element in [*e, *e + *e_len), 0 at the end. */
static int list_next(const char **p, const char *end, const char **e, size_t *e_len)
{
    while (*p < end) {
        const char *s = *p;
        const char *t;
        const char *comma = memchr(s, ',', (size_t)(end - s));
        t = comma != NULL ? comma : end;
        *p = comma != NULL ? comma + 1 : end;
        while (s < t && http_is_ows((unsigned char)*s))
            s++;
        while (t > s && http_is_ows((unsigned char)t[-1]))
            t--;
        if (t > s) {
            *e = s;
            *e_len = (size_t)(t - s);
            return 1;
        }
    }
    return 0;
}

/* What the fields say, gathered while they are parsed. */
struct head_meaning {
    size_t num_host;
    int has_length;
    uint64_t length;
    int has_te;
    size_t num_codings;
    int chunked_last;  /* the last coding so far is a plain "chunked" */
    int chunked_inner; /* a "chunked" is followed by another coding */
    int conn_close;
    int conn_keep_alive;
    int expect_continue;
    int expect_other;
};

/* Content-Length (RFC 9112 §6.3): digits only, below 2^63, and every value in
 * every field the same (a list "5, 5" is the same as two fields). */
static int take_content_length(const struct http_header *h, struct head_meaning *m,
                               struct http_request *req)
{
    const char *p = h->value;
    const char *end = h->value + h->value_len;
    const char *e;
    size_t e_len;
    int any = 0;

    while (list_next(&p, end, &e, &e_len)) {
        uint64_t v = 0;
        size_t i;
        for (i = 0; i < e_len; i++) {
            unsigned d = (unsigned char)e[i] - '0';
            if (d > 9)
                return fail(req, 400, "invalid content-length");
            if (v > ((uint64_t)INT64_MAX - d) / 10)
                return fail(req, 400, "content-length too large");
            v = v * 10 + d;
        }
        if (m->has_length && m->length != v)
            return fail(req, 400, "conflicting content-length values");
        m->has_length = 1;
        m->length = v;
        any = 1;
    }
    if (!any)
        return fail(req, 400, "empty content-length");
    return 0;
}

/* Transfer-Encoding: each element is a coding name, maybe with parameters. */
static int take_transfer_encoding(const struct http_header *h, struct head_meaning *m,
                                  struct http_request *req)
{
    const char *p = h->value;
    const char *end = h->value + h->value_len;
    const char *e;
    size_t e_len;

    m->has_te = 1;
    while (list_next(&p, end, &e, &e_len)) {
        size_t n = 0;
        while (n < e_len && http_is_tchar((unsigned char)e[n]))
            n++;
        if (n == 0)
            return fail(req, 400, "invalid transfer-encoding");
        m->num_codings++;
        if (m->chunked_last)
            m->chunked_inner = 1;
        m->chunked_last = n == e_len && token_eq(e, n, "chunked");
    }
    return 0;
}

static void take_connection(const struct http_header *h, struct head_meaning *m)
{
    const char *p = h->value;
    const char *end = h->value + h->value_len;
    const char *e;
    size_t e_len;

    while (list_next(&p, end, &e, &e_len)) {
        if (token_eq(e, e_len, "close"))
            m->conn_close = 1;
        else if (token_eq(e, e_len, "keep-alive"))
            m->conn_keep_alive = 1;
    }
}

static void take_expect(const struct http_header *h, struct head_meaning *m)
{
    const char *p = h->value;
    const char *end = h->value + h->value_len;
    const char *e;
    size_t e_len;

    while (list_next(&p, end, &e, &e_len)) {
        if (token_eq(e, e_len, "100-continue"))
            m->expect_continue = 1;
        else
            m->expect_other = 1;
    }
}

/* RFC 3986 §2.3, §2.2: unreserved and sub-delims. */
static int is_unreserved_or_sub_delim(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("-._~!$&'()*+,;=", c) != NULL;
}

/* Host (RFC 9110 §7.2) = uri-host [ ":" port ], uri-host an IP-literal in
 * brackets or a reg-name (RFC 3986 §3.2.2); empty is allowed (RFC 9112 §3.2).
 * The host is not compared with anything, but a value that cannot be one
 * (spaces, slashes, "@") is a malformed request, and a proxy in front may
 * read it differently. */
static int host_valid(const char *h, size_t n)
{
    size_t i = 0;

    if (n > 0 && h[0] == '[') {
        /* IPv6 or IPvFuture: hex digits, '.', ':' and the characters of IPvFuture. */
        for (i = 1; i < n && h[i] != ']'; i++)
            if (!is_unreserved_or_sub_delim((unsigned char)h[i]) && h[i] != ':')
                return 0;
        if (i == n || i == 1)
            return 0;
        i++;
    } else {
        for (; i < n && h[i] != ':'; i++) {
            if (h[i] == '%') {
                if (i + 2 >= n || http_hex_value((unsigned char)h[i + 1]) < 0 ||
                    http_hex_value((unsigned char)h[i + 2]) < 0)
                    return 0;
                i += 2;
            } else if (!is_unreserved_or_sub_delim((unsigned char)h[i])) {
                return 0;
            }
        }
    }
    if (i == n)
        return 1;
    if (h[i] != ':')
        return 0;
    for (i++; i < n; i++)
        if (h[i] < '0' || h[i] > '9')
            return 0;
    return 1;
}

static int take_field(const struct http_header *h, struct head_meaning *m, struct http_request *req)
{
    if (token_eq(h->name, h->name_len, "host")) {
        if (!host_valid(h->value, h->value_len))
            return fail(req, 400, "invalid host header");
        if (m->num_host++ == 0) {
            req->host = h->value;
            req->host_len = h->value_len;
        }
    } else if (token_eq(h->name, h->name_len, "content-length")) {
        return take_content_length(h, m, req);
    } else if (token_eq(h->name, h->name_len, "transfer-encoding")) {
        return take_transfer_encoding(h, m, req);
    } else if (token_eq(h->name, h->name_len, "connection")) {
        take_connection(h, m);
    } else if (token_eq(h->name, h->name_len, "expect")) {
        take_expect(h, m);
    }
    return 0;
}

/* The request-target (RFC 9112 §3.2): origin-form, or absolute-form with an
 * http(s) scheme, whose path is kept and whose authority is not checked
 * against Host. Asterisk-form and authority-form are refused: this server
 * answers neither OPTIONS * nor CONNECT. */
static int take_target(const char *t, size_t t_len, struct http_request *req)
{
    size_t i = 0;
    size_t auth;

    if (t[0] == '/') {
        req->path = t;
        req->path_len = t_len;
        return 0;
    }
    if (t_len == 1 && t[0] == '*')
        return fail(req, 400, "asterisk-form request target not served");
    while (i < t_len && t[i] != ':')
        i++;
    if (!(i + 2 < t_len && t[i + 1] == '/' && t[i + 2] == '/'))
        return fail(req, 400, "invalid request target");
    if (!token_eq(t, i, "http") && !token_eq(t, i, "https"))
        return fail(req, 400, "request target scheme not served");
    auth = i + 3;
    i = auth;
    while (i < t_len && t[i] != '/' && t[i] != '?' && t[i] != '#')
        i++;
    if (i == auth)
        return fail(req, 400, "empty host in request target");
    if (i < t_len && t[i] == '/') {
        req->path = t + i;
        req->path_len = t_len - i;
    } else {
        /* "http://host" or "http://host?q": the path is "/" and, since the
         * result can only point into the caller's buffer, the query is lost. */
        req->path = "/";
        req->path_len = 1;
    }
    return 0;
}

/* Request line (RFC 9112 §3): method SP request-target SP HTTP-version, with
 * exactly one SP between the parts. */
static int take_request_line(const char *buf, size_t ls, size_t le, struct http_request *req)
{
    size_t i = ls;
    size_t t;
    const char *v;

    while (i < le && http_is_tchar((unsigned char)buf[i]))
        i++;
    if (i == ls || i == le || buf[i] != ' ')
        return fail(req, 400, bad_byte_reason(buf, i, le, "invalid method"));
    req->method = buf + ls;
    req->method_len = i - ls;

    t = ++i;
    while (i < le && (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7f)
        i++;
    if (i == le) /* "GET /x" or "GET ": HTTP/0.9's form, which this server does not serve */
        return fail(req, 400,
                    i == t ? "request line without target and http version"
                           : "request line without http version");
    if (i == t || buf[i] != ' ')
        return fail(req, 400, bad_byte_reason(buf, i, le, "invalid request target"));
    if (take_target(buf + t, i - t, req) < 0)
        return -1;

    i++;
    if (i == le)
        return fail(req, 400, "request line without http version");
    v = buf + i;
    if (le - i != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return fail(req, 400, "invalid http version");
    if (v[5] != '1')
        return fail(req, 505, "http version not supported");
    req->minor_version = v[7] == '0' ? 0 : 1;
    return 0;
}

/* One field line (RFC 9112 §5): field-name ":" OWS field-value OWS. */
static int take_field_line(const char *buf, size_t ls, size_t le, size_t max_headers,
                           struct http_request *req)
{
    size_t i = ls;
    size_t v;
    size_t ve;
    struct http_header *h;

    if (http_is_ows((unsigned char)buf[ls]))
        return fail(req, 400, "obsolete line folding in request head");
    while (i < le && http_is_tchar((unsigned char)buf[i]))
        i++;
    if (i < le && buf[i] == ':' && i > ls) {
        /* fine */
    } else if (i < le && http_is_ows((unsigned char)buf[i]) && i > ls) {
        return fail(req, 400, "whitespace before colon in header field");
    } else {
        return fail(req, 400, bad_byte_reason(buf, i, le, "invalid header name"));
    }

    v = i + 1;
    while (v < le && http_is_ows((unsigned char)buf[v]))
        v++;
    for (ve = v; ve < le; ve++) {
        unsigned char c = (unsigned char)buf[ve];
        if (!http_is_field_vchar(c) && !http_is_ows(c))
            return fail(req, 400,
                        bad_byte_reason(buf, ve, le, "control character in header value"));
    }
    while (ve > v && http_is_ows((unsigned char)buf[ve - 1]))
        ve--;

    if (req->num_headers >= max_headers)
        return fail(req, 431, "too many header fields");
    h = &req->headers[req->num_headers++];
    h->name = buf + ls;
    h->name_len = i - ls;
    h->value = buf + v;
    h->value_len = ve - v;
    return 0;
}

/* Parses, in order, the lines that start at rl and end (their LF) before
 * stop: the request line, then field lines gathered into m, up to the empty
 * line that ends the head. Returns 0, or -1 at the first error. */
static int take_lines(const char *buf, size_t rl, size_t stop, size_t max_headers,
                      struct head_meaning *m, struct http_request *req)
{
    size_t pos = rl;
    size_t ls;
    size_t le;
    int first = 1;

    while (pos < stop && memchr(buf + pos, '\n', stop - pos) != NULL) {
        next_line(buf, &pos, &ls, &le);
        if (first) {
            if (take_request_line(buf, ls, le, req) < 0)
                return -1;
            first = 0;
            continue;
        }
        /* Only the final empty line is empty: framing stopped there. */
        if (le == ls)
            break;
        if (take_field_line(buf, ls, le, max_headers, req) < 0)
            return -1;
        if (take_field(&req->headers[req->num_headers - 1], m, req) < 0)
            return -1;
    }
    return 0;
}

/* Framing found a byte that can never be part of a request before the head
 * ended. The complete lines before it are parsed first, as they would be in
 * a complete head, so that their errors (505, 431 for too many fields) come
 * first in byte order and the answer is the same however the bytes arrive.
 * Returns -1. */
static int reject_bad_byte(const char *buf, const struct framing *fr, size_t max_headers,
                           struct http_request *req)
{
    struct head_meaning m;
    unsigned char c = (unsigned char)buf[fr->bad_at];

    memset(&m, 0, sizeof(m));
    if (take_lines(buf, fr->rl, fr->bad_at, max_headers, &m, req) < 0)
        return -1;
    /* The line ends (or a CR that may end it) where the SP after the method belongs: what
     * "hello" or "GET" typed into nc sends. Said so, whatever the byte after the CR, so that
     * the answer does not depend on how the bytes arrive. */
    if (fr->bad_method && (c == '\r' || c == '\n'))
        return fail(req, 400, "request line without target and http version");
    if (c == '\0')
        return fail(req, 400, "nul byte in request head");
    if (c == '\r')
        return fail(req, 400, "bare cr in request head");
    if (fr->bad_method && c >= 0x20 && c != 0x7f)
        return fail(req, 400, "invalid method");
    return fail(req, 400, "control character in request head");
}

/* Parses the complete head buf[0..n), which framing has checked. */
static int parse_head(const char *buf, const struct framing *fr, size_t max_headers,
                      struct http_request *req)
{
    struct head_meaning m;

    memset(&m, 0, sizeof(m));
    if (take_lines(buf, fr->rl, fr->end, max_headers, &m, req) < 0)
        return -1;

    if (req->minor_version == 1 && m.num_host == 0)
        return fail(req, 400, "missing host header");
    if (m.num_host > 1)
        return fail(req, 400, "more than one host header");
    if (m.has_te) {
        if (req->minor_version == 0)
            return fail(req, 400, "transfer-encoding in an http/1.0 request");
        if (m.has_length)
            return fail(req, 400, "both content-length and transfer-encoding");
        if (m.num_codings == 0)
            return fail(req, 400, "empty transfer-encoding");
        /* RFC 9112 §6.3: with chunked not the final coding the body's length
         * cannot be known: 400 (and close). That covers chunked applied
         * twice, which §6.1 forbids. */
        if (m.chunked_inner)
            return fail(req, 400, "chunked is not the final transfer-coding");
        if (m.num_codings != 1 || !m.chunked_last)
            return fail(req, 501, "transfer-coding not implemented");
        req->body_kind = HTTP_BODY_CHUNKED;
    } else if (m.has_length) {
        req->body_kind = HTTP_BODY_LENGTH;
        req->content_length = m.length;
    }
    if (m.conn_close)
        req->keep_alive = 0;
    else
        req->keep_alive = req->minor_version == 1 || m.conn_keep_alive;
    /* Expect arrived with HTTP/1.1; an HTTP/1.0 client cannot wait for a 100
     * (RFC 9110 §10.1.1 says to ignore 100-continue from it). */
    if (req->minor_version == 1) {
        req->expect_continue = m.expect_continue;
        req->expect_unsupported = m.expect_other;
    }
    return 0;
}

/* A head refused before its request line was parsed still tells its method
 * when the bytes that prove the refusal show one (a token, then SP): the
 * caller must answer HEAD without a body, errors included. Only bytes before
 * the proof count, so the method is the same however the bytes arrived. */
static void note_method(const char *buf, const struct framing *fr, struct http_request *req)
{
    size_t i = fr->rl;

    if (req->method != NULL)
        return;
    while (i < fr->proof && http_is_tchar((unsigned char)buf[i]))
        i++;
    if (i > fr->rl && i < fr->proof && buf[i] == ' ') {
        req->method = buf + fr->rl;
        req->method_len = i - fr->rl;
    }
}

int http_parse_request(const char *buf, size_t len, size_t prev_len,
                       const struct http_limits *limits, struct http_request *req)
{
    int n;

    struct framing fr;
    size_t max_headers;

    assert(buf != NULL || len == 0);
    assert(limits != NULL && req != NULL);

    req->method = NULL;
    req->method_len = 0;
    req->path = NULL;
    req->path_len = 0;
    req->minor_version = 0;
    req->num_headers = 0;
    req->body_kind = HTTP_BODY_NONE;
    req->content_length = 0;
    req->keep_alive = 0;
    req->expect_continue = 0;
    req->expect_unsupported = 0;
    req->host = NULL;
    req->host_len = 0;
    req->error_status = 0;
    req->error = NULL;

    if (len == 0)
        return -2;
    max_headers = limits->max_headers;
    if (max_headers > HTTP_MAX_HEADERS_CAP)
        max_headers = HTTP_MAX_HEADERS_CAP;
    switch (find_head_end(buf, len, prev_len, limits, req, &fr)) {
    case FRAME_NEED_MORE:
        return -2;
    case FRAME_LIMIT:
        note_method(buf, &fr, req);
        return -1;
    case FRAME_BAD_BYTE:
        n = reject_bad_byte(buf, &fr, max_headers, req);
        note_method(buf, &fr, req);
        return n;
    case FRAME_COMPLETE:
        break;
    }
    if (parse_head(buf, &fr, max_headers, req) < 0)
        return -1;
    return (int)fr.end;
}

const char *http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    case 507:
        return "Insufficient Storage";
    default:
        return "Unknown";
    }
}
