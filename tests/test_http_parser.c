/* test_http_parser.c - table-driven tests of the request parser and chunked decoder, fed whole,
 * byte by byte and split at every point. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parser.h"

/* Every call gets a fresh heap copy of exactly the bytes it may read, so
 * AddressSanitizer and valgrind catch any read past the end. */
static char *copy_of(const char *s, size_t n)
{
    char *p = malloc(n > 0 ? n : 1);
    ck_assert_msg(p != NULL, "malloc %zu bytes failed", n);
    memcpy(p, s, n);
    return p;
}

/* ------------------------------------------------------------ request heads */

#define IN(s) .input = (s), .input_len = sizeof(s) - 1
#define NEED_MORE (-2)

static const struct http_limits default_limits = {8192, 16384, 100};
static const struct http_limits small_limits = {16, 64, 2};
/* For the cases whose request line must fit but whose head may not. */
static const struct http_limits small = {32, 48, 4};
static const struct http_limits odd_limits = {100, 32, 10}; /* line limit above the head limit */

struct head_case {
    const char *desc;
    const char *input;
    size_t input_len;
    const struct http_limits *limits; /* NULL: default_limits */
    int status;                       /* 0: parses; else the error status */
    int need_more;                    /* 1: the input is an incomplete, valid head */
    size_t head_len;                  /* 0: the whole input */
    const char *method;
    const char *path;
    int minor;
    size_t num_headers;
    enum http_body_kind body;
    uint64_t length;
    int keep_alive;
    int expect_continue;
    int expect_unsupported;
    const char *host;  /* NULL: absent */
    const char *error; /* with status: the reason expected; NULL: not checked */
};

#define GET11(rest) "GET / HTTP/1.1\r\nHost: h\r\n" rest "\r\n"

static const struct head_case head_cases[] = {
    /* valid heads */
    {"simple get", IN("GET /tareas HTTP/1.1\r\nHost: example\r\n\r\n"), .method = "GET",
     .path = "/tareas", .minor = 1, .num_headers = 1, .keep_alive = 1, .host = "example"},
    {"bare lf line ends", IN("GET / HTTP/1.1\nHost: a\n\n"), .method = "GET", .path = "/",
     .minor = 1, .num_headers = 1, .keep_alive = 1, .host = "a"},
    {"mixed line ends", IN("GET / HTTP/1.1\r\nHost: a\n\r\n"), .method = "GET", .path = "/",
     .minor = 1, .num_headers = 1, .keep_alive = 1, .host = "a"},
    {"leading empty lines skipped", IN("\r\n\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
     .method = "GET", .path = "/", .minor = 1, .num_headers = 1, .keep_alive = 1, .host = "a"},
    {"http/1.0 without host closes", IN("GET /x HTTP/1.0\r\n\r\n"), .method = "GET", .path = "/x",
     .minor = 0},
    {"http/1.0 keep-alive", IN("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), .method = "GET",
     .path = "/", .minor = 0, .num_headers = 1, .keep_alive = 1},
    {"http/1.0 connection list", IN("GET / HTTP/1.0\r\nConnection: upgrade , keep-alive\r\n\r\n"),
     .method = "GET", .path = "/", .minor = 0, .num_headers = 1, .keep_alive = 1},
    {"http/1.1 connection close", IN(GET11("Connection: close\r\n")), .method = "GET", .path = "/",
     .minor = 1, .num_headers = 2, .host = "h"},
    {"close wins over keep-alive", IN(GET11("Connection: keep-alive, CLOSE\r\n")), .method = "GET",
     .path = "/", .minor = 1, .num_headers = 2, .host = "h"},
    {"close in a second connection field",
     IN(GET11("Connection: keep-alive\r\nconnection: close\r\n")), .method = "GET", .path = "/",
     .minor = 1, .num_headers = 3, .host = "h"},
    {"http/1.2 served as 1.1", IN("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), .method = "GET",
     .path = "/", .minor = 1, .num_headers = 1, .keep_alive = 1, .host = "a"},
    {"http/1.9 served as 1.1", IN("GET / HTTP/1.9\r\nHost: a\r\n\r\n"), .method = "GET",
     .path = "/", .minor = 1, .num_headers = 1, .keep_alive = 1, .host = "a"},
    {"absolute-form keeps path and query",
     IN("GET http://example.com:9000/tareas?x=1 HTTP/1.1\r\nHost: other\r\n\r\n"), .method = "GET",
     .path = "/tareas?x=1", .minor = 1, .num_headers = 1, .keep_alive = 1, .host = "other"},
    {"absolute-form https upper case, empty path", IN("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n"),
     .method = "GET", .path = "/", .minor = 1, .num_headers = 1, .keep_alive = 1, .host = "h"},
    {"absolute-form query without path", IN("GET http://h?q=1 HTTP/1.1\r\nHost: h\r\n\r\n"),
     .method = "GET", .path = "/", .minor = 1, .num_headers = 1, .keep_alive = 1, .host = "h"},
    {"post with content-length",
     IN("POST /tareas HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"), .method = "POST",
     .path = "/tareas", .minor = 1, .num_headers = 2, .body = HTTP_BODY_LENGTH, .length = 5,
     .keep_alive = 1, .host = "h"},
    {"content-length zero", IN(GET11("Content-Length: 0\r\n")), .method = "GET", .path = "/",
     .minor = 1, .num_headers = 2, .body = HTTP_BODY_LENGTH, .length = 0, .keep_alive = 1,
     .host = "h"},
    {"content-length identical duplicates and list",
     IN(GET11("Content-Length: 5, 5\r\nContent-Length: 5\r\n")), .method = "GET", .path = "/",
     .minor = 1, .num_headers = 3, .body = HTTP_BODY_LENGTH, .length = 5, .keep_alive = 1,
     .host = "h"},
    {"content-length leading zeros", IN(GET11("Content-Length: 007\r\n")), .method = "GET",
     .path = "/", .minor = 1, .num_headers = 2, .body = HTTP_BODY_LENGTH, .length = 7,
     .keep_alive = 1, .host = "h"},
    {"content-length 2^63-1", IN(GET11("Content-Length: 9223372036854775807\r\n")), .method = "GET",
     .path = "/", .minor = 1, .num_headers = 2, .body = HTTP_BODY_LENGTH,
     .length = 9223372036854775807ULL, .keep_alive = 1, .host = "h"},
    {"chunked", IN("POST /t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"),
     .method = "POST", .path = "/t", .minor = 1, .num_headers = 2, .body = HTTP_BODY_CHUNKED,
     .keep_alive = 1, .host = "h"},
    {"chunked any case, empty list elements", IN(GET11("Transfer-Encoding: , CHUNKED ,\r\n")),
     .method = "GET", .path = "/", .minor = 1, .num_headers = 2, .body = HTTP_BODY_CHUNKED,
     .keep_alive = 1, .host = "h"},
    {"expect 100-continue", IN(GET11("Expect: 100-Continue\r\n")), .method = "GET", .path = "/",
     .minor = 1, .num_headers = 2, .keep_alive = 1, .expect_continue = 1, .host = "h"},
    {"other expectation", IN(GET11("Expect: teapot\r\n")), .method = "GET", .path = "/", .minor = 1,
     .num_headers = 2, .keep_alive = 1, .expect_unsupported = 1, .host = "h"},
    {"expect ignored in http/1.0", IN("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"),
     .method = "GET", .path = "/", .minor = 0, .num_headers = 1},
    {"ows trimmed", IN("GET / HTTP/1.1\r\nHost: \t a:80 \t\r\n\r\n"), .method = "GET", .path = "/",
     .minor = 1, .num_headers = 1, .keep_alive = 1, .host = "a:80"},
    {"host ipv6 literal with port", IN("GET / HTTP/1.1\r\nHost: [::1]:9000\r\n\r\n"),
     .method = "GET", .path = "/", .minor = 1, .num_headers = 1, .keep_alive = 1,
     .host = "[::1]:9000"},
    {"host with every reg-name character",
     IN("GET / HTTP/1.1\r\nHost: a-b.c_d~e!$&'()*+,;=%2F9:\r\n\r\n"), .method = "GET", .path = "/",
     .minor = 1, .num_headers = 1, .keep_alive = 1, .host = "a-b.c_d~e!$&'()*+,;=%2F9:"},
    {"empty host allowed", IN("GET / HTTP/1.1\r\nHost:\r\n\r\n"), .method = "GET", .path = "/",
     .minor = 1, .num_headers = 1, .keep_alive = 1, .host = ""},
    {"obs-text and tab in value", IN(GET11("X-A: \x80\xff\tz\r\n")), .method = "GET", .path = "/",
     .minor = 1, .num_headers = 2, .keep_alive = 1, .host = "h"},
    {"extension method", IN("M-SEARCH /x HTTP/1.1\r\nHost: h\r\n\r\n"), .method = "M-SEARCH",
     .path = "/x", .minor = 1, .num_headers = 1, .keep_alive = 1, .host = "h"},
    {"request line at the limit", IN("GET /ab HTTP/1.1\r\nHost: h\r\n\r\n"),
     .limits = &small_limits, .method = "GET", .path = "/ab", .minor = 1, .num_headers = 1,
     .keep_alive = 1, .host = "h"},
    {"head of exactly 64 bytes",
     IN("GET / HTTP/1.1\r\nHost: h\r\nX: 01234567890123456789012345678901\r\n\r\n"),
     .limits = &small_limits, .method = "GET", .path = "/", .minor = 1, .num_headers = 2,
     .keep_alive = 1, .host = "h"},
    {"body bytes after the head are not read",
     IN("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"),
     .head_len = sizeof("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n") - 1,
     .method = "POST", .path = "/", .minor = 1, .num_headers = 2, .body = HTTP_BODY_LENGTH,
     .length = 3, .keep_alive = 1, .host = "h"},

    /* incomplete but valid so far */
    {"head without its empty line", IN("GET / HTTP/1.1\r\nHost: a\r\n"), .need_more = 1},
    {"only empty lines", IN("\r\n\r\n\n"), .need_more = 1},
    {"cr awaiting its lf", IN("GET / HTTP/1.1\r\nHost: a\r\n\r"), .need_more = 1},
    {"long token method, no space yet", IN("M-SEARCH_1.0~x"), .need_more = 1},
    {"cr after the method's space", IN("GET \r"), .need_more = 1},
    {"obs-text in a value before the end", IN("GET / HTTP/1.1\r\nX: \x80\xff"), .need_more = 1},

    /* bytes that can never be a request: 400 before the head ends */
    {"garbage is judged before the head ends", IN("\x01\x02 GET"), .status = 400},
    {"tls clienthello", IN("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), .status = 400},
    {"cr cr lf ends no head", IN("GET /health HTTP/1.1\r\nHost: a\r\n\r\r\n"), .status = 400},
    {"bare cr before the head ends", IN("GET / HTTP/1.1\r\nHost: a\rb"), .status = 400},
    {"nul before the head ends", IN("GET / HTTP/1.1\r\nHo\0"), .status = 400},
    {"del before the head ends", IN("GET /\x7f"), .status = 400},
    {"json instead of a request", IN("{\"titulo\":\"x\"}"), .status = 400},
    {"method ended by lf", IN("GET\nHost: a\n"), .status = 400},
    {"method ended by cr", IN("GET\r"), .status = 400},
    {"control byte after empty lines", IN("\r\n\n\x05"), .status = 400},
    {"bad byte after a request line answered 505", IN("GET / HTTP/2.0\r\nHost: a\x01"),
     .status = 505},
    {"bad byte after too many fields answered 431",
     IN("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC\x01"), .limits = &small_limits,
     .status = 431},
    {"bad byte after an invalid field answered 400", IN("GET / HTTP/1.1\r\nHost : h\r\nC\x01"),
     .status = 400},
    {"bad byte before the request line limit", IN("GET /\x01zyxwvutsrqponmlk"),
     .limits = &small_limits, .status = 400},
    {"request line limit before a bad byte", IN("GET /abcdefghijklmnopq\x01"),
     .limits = &small_limits, .status = 414},
    {"header limit before a bad byte",
     IN("GET / HTTP/1.1\r\nHost: h\r\nX: 012345678901234567890123456789012345678\x01"),
     .limits = &small_limits, .status = 431},

    /* request line: 400 */
    {"two spaces after method", IN("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"two spaces before version", IN("GET /  HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"trailing space", IN("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), .status = 400},
    {"tab as separator", IN("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"leading space", IN(" GET / HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"no version", IN("GET /\r\nHost: h\r\n\r\n"), .status = 400},
    {"only a method", IN("GET\r\n\r\n"), .status = 400},
    {"bad method char", IN("G@T / HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"lower-case protocol", IN("GET / http/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"two-digit minor", IN("GET / HTTP/1.10\r\nHost: h\r\n\r\n"), .status = 400},
    {"no minor", IN("GET / HTTP/1\r\nHost: h\r\n\r\n"), .status = 400},
    {"two-digit major", IN("GET / HTTP/11.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"not a version", IN("GET / FTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"asterisk-form", IN("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"authority-form", IN("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"relative target", IN("GET tareas HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"other scheme", IN("GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"empty authority", IN("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"control char in target", IN("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"del in target", IN("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"raw utf-8 in target", IN("GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"nul in target", IN("GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"bare cr in request line", IN("GET /\r HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400,
     .error = "bare cr in request head"},
    {"bare cr before request line", IN("\rGET / HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400,
     .error = "bare cr in request head"},
    {"bare cr after the method", IN("GET\rX / HTTP/1.1\r\nHost: h\r\n\r\n"), .status = 400},
    {"control char in method", IN("GE\x01T / HTTP/1.1\r\n\r\n"), .status = 400,
     .error = "control character in request head"},

    /* request lines cut short (what a person types into nc): the reason says what is missing */
    {"method only", IN("hello\r\n\r\n"), .status = 400,
     .error = "request line without target and http version"},
    {"method only, bare lf", IN("hello\n\n"), .status = 400,
     .error = "request line without target and http version"},
    {"get only", IN("GET\r\nHost: h\r\n\r\n"), .status = 400,
     .error = "request line without target and http version"},
    {"no version", IN("GET /health\r\n\r\n"), .status = 400,
     .error = "request line without http version"},
    {"no version, bare lf", IN("GET /health\n\n"), .status = 400,
     .error = "request line without http version"},
    {"no version, a field follows", IN("GET /health\r\nHost: h\r\n\r\n"), .status = 400,
     .error = "request line without http version"},
    {"empty version", IN("GET /health \r\n\r\n"), .status = 400,
     .error = "request line without http version"},
    {"method and space only", IN("GET \r\n\r\n"), .status = 400,
     .error = "request line without target and http version"},
    {"version not last", IN("GET / HTTP/1.1 x\r\n\r\n"), .status = 400,
     .error = "invalid http version"},
    {"two spaces before the target", IN("GET  / HTTP/1.1\r\n\r\n"), .status = 400,
     .error = "invalid request target"},

    /* version: 505 */
    {"http/2.0", IN("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), .status = 505},
    {"http/0.9", IN("GET / HTTP/0.9\r\n\r\n"), .status = 505},
    {"http/3.0", IN("GET / HTTP/3.0\r\nHost: h\r\n\r\n"), .status = 505},

    /* fields: 400 */
    {"obs-fold", IN("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"), .status = 400},
    {"obs-fold with tab", IN("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n"), .status = 400},
    {"space before first field", IN("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), .status = 400},
    {"space before colon", IN("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), .status = 400},
    {"tab before colon", IN("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n"), .status = 400},
    {"space inside name", IN("GET / HTTP/1.1\r\nHo st: h\r\n\r\n"), .status = 400},
    {"empty name", IN("GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n"), .status = 400},
    {"no colon", IN("GET / HTTP/1.1\r\nHost h\r\n\r\n"), .status = 400},
    {"bad name char", IN("GET / HTTP/1.1\r\nHo@st: h\r\n\r\n"), .status = 400},
    {"nul in value", IN("GET / HTTP/1.1\r\nHost: h\0x\r\n\r\n"), .status = 400},
    {"nul in name", IN("GET / HTTP/1.1\r\nHo\0st: h\r\n\r\n"), .status = 400},
    {"control char in value", IN("GET / HTTP/1.1\r\nHost: h\x01\r\n\r\n"), .status = 400},
    {"escape in value", IN("GET / HTTP/1.1\r\nHost: h\x1b[0m\r\n\r\n"), .status = 400},
    {"del in value", IN("GET / HTTP/1.1\r\nHost: h\x7f\r\n\r\n"), .status = 400},
    {"bare cr in value", IN("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), .status = 400},
    {"bare cr starting a line", IN("GET / HTTP/1.1\r\nHost: a\r\n\rX: b\r\n\r\n"), .status = 400},
    {"cr cr lf", IN("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"), .status = 400},
    {"missing host in 1.1", IN("GET / HTTP/1.1\r\nX: y\r\n\r\n"), .status = 400},
    {"two hosts in 1.1", IN("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), .status = 400},
    {"two hosts in 1.0", IN("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), .status = 400},
    {"host with a space", IN("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), .status = 400},
    {"host with a slash", IN("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), .status = 400},
    {"host with userinfo", IN("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), .status = 400},
    {"host port not digits", IN("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n"), .status = 400},
    {"host two colons", IN("GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n"), .status = 400},
    {"host bad pct-encoding", IN("GET / HTTP/1.1\r\nHost: a%2\r\n\r\n"), .status = 400},
    {"host unclosed ipv6 literal", IN("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), .status = 400},
    {"host empty ipv6 literal", IN("GET / HTTP/1.1\r\nHost: []\r\n\r\n"), .status = 400},
    {"host junk after ipv6 literal", IN("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n"), .status = 400},
    {"host obs-text", IN("GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n"), .status = 400},
    {"invalid host in 1.0", IN("GET / HTTP/1.0\r\nHost: a b\r\n\r\n"), .status = 400},

    /* body framing */
    {"content-length letters", IN(GET11("Content-Length: abc\r\n")), .status = 400},
    {"content-length negative", IN(GET11("Content-Length: -1\r\n")), .status = 400},
    {"content-length plus sign", IN(GET11("Content-Length: +5\r\n")), .status = 400},
    {"content-length inner space", IN(GET11("Content-Length: 5 5\r\n")), .status = 400},
    {"content-length decimal", IN(GET11("Content-Length: 1.0\r\n")), .status = 400},
    {"content-length hex", IN(GET11("Content-Length: 0x5\r\n")), .status = 400},
    {"content-length empty", IN(GET11("Content-Length:\r\n")), .status = 400},
    {"content-length only commas", IN(GET11("Content-Length: , ,\r\n")), .status = 400},
    {"content-length list differs", IN(GET11("Content-Length: 5, 6\r\n")), .status = 400},
    {"content-length fields differ", IN(GET11("Content-Length: 5\r\nContent-Length: 6\r\n")),
     .status = 400},
    {"content-length 2^63", IN(GET11("Content-Length: 9223372036854775808\r\n")), .status = 400},
    {"content-length 2^64", IN(GET11("Content-Length: 18446744073709551616\r\n")), .status = 400},
    {"content-length huge", IN(GET11("Content-Length: 99999999999999999999999999\r\n")),
     .status = 400},
    {"transfer-encoding in 1.0", IN("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
     .status = 400},
    {"content-length with chunked",
     IN(GET11("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")), .status = 400},
    {"chunked with content-length after",
     IN(GET11("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")), .status = 400},
    /* Found by tools/mutate: a zero length is no excuse (request smuggling). */
    {"content-length 0 with chunked",
     IN(GET11("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n")), .status = 400},
    {"content-length with gzip", IN(GET11("Content-Length: 5\r\nTransfer-Encoding: gzip\r\n")),
     .status = 400},
    {"empty transfer-encoding", IN(GET11("Transfer-Encoding:\r\n")), .status = 400},
    {"transfer-encoding not a token", IN(GET11("Transfer-Encoding: @\r\n")), .status = 400},
    {"gzip", IN(GET11("Transfer-Encoding: gzip\r\n")), .status = 501},
    {"identity", IN(GET11("Transfer-Encoding: identity\r\n")), .status = 501},
    {"gzip then chunked", IN(GET11("Transfer-Encoding: gzip, chunked\r\n")), .status = 501},
    /* RFC 9112 6.3: chunked not the final coding: 400 (6.1: never applied twice). */
    {"chunked then gzip", IN(GET11("Transfer-Encoding: chunked, gzip\r\n")), .status = 400},
    {"chunked twice", IN(GET11("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")),
     .status = 400},
    {"chunked twice in one field", IN(GET11("Transfer-Encoding: chunked, chunked\r\n")),
     .status = 400},
    {"gzip, chunked, chunked", IN(GET11("Transfer-Encoding: gzip, chunked, chunked\r\n")),
     .status = 400},
    {"chunked with parameter", IN(GET11("Transfer-Encoding: chunked;q=1\r\n")), .status = 501},

    /* limits (small_limits: line 16, head 64, 2 fields) */
    {"request line one over", IN("GET /abc HTTP/1.1\r\nHost: h\r\n\r\n"), .limits = &small_limits,
     .status = 414},
    {"request line over before its end", IN("GET /abcdefghijklm"), .limits = &small_limits,
     .status = 414},
    {"request line over by a bare cr", IN("GET /ab HTTP/1.1\rX"), .limits = &small_limits,
     .status = 414},
    {"head one over",
     IN("GET / HTTP/1.1\r\nHost: h\r\nX: 012345678901234567890123456789012\r\n\r\n"),
     .limits = &small_limits, .status = 431},
    {"head over before its end",
     IN("GET / HTTP/1.1\r\nHost: h\r\nX: 012345678901234567890123456789012345678"),
     .limits = &small_limits, .status = 431},
    {"empty lines count toward the head",
     IN("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
        "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"),
     .limits = &small_limits, .status = 431},
    {"long line against a smaller head limit", IN("GET /0123456789012345678901234567890123456789"),
     .limits = &odd_limits, .status = 431},
    {"three fields over two", IN("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n"),
     .limits = &small_limits, .status = 431},
};

#define NUM_HEAD_CASES (sizeof(head_cases) / sizeof(head_cases[0]))

static const char *show(const char *s, size_t n)
{
    static char out[512];
    size_t o = 0;
    size_t i;

    if (s == NULL)
        return "(null)";
    for (i = 0; i < n && o + 5 < sizeof(out); i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
    }
    out[o] = '\0';
    return out;
}

static int str_is(const char *got, size_t got_len, const char *want)
{
    if (want == NULL)
        return got == NULL;
    return got != NULL && got_len == strlen(want) && memcmp(got, want, got_len) == 0;
}

static int head_expected_n(const struct head_case *c)
{
    if (c->status != 0)
        return -1;
    if (c->need_more)
        return NEED_MORE;
    return (int)(c->head_len != 0 ? c->head_len : c->input_len);
}

/* Checks one parse result against the case; how says how it was fed. */
static void check_head(const struct head_case *c, const char *how, int n,
                       const struct http_request *req)
{
    int want = head_expected_n(c);

    ck_assert_msg(n == want, "%s (%s): expected %d, got %d (status %d: %s)", c->desc, how, want, n,
                  req->error_status, req->error ? req->error : "-");
    if (n == -1) {
        ck_assert_msg(req->error_status == c->status && req->error != NULL,
                      "%s (%s): expected status %d, got %d (%s)", c->desc, how, c->status,
                      req->error_status, req->error ? req->error : "no reason");
        ck_assert_msg(c->error == NULL || strcmp(req->error, c->error) == 0,
                      "%s (%s): expected reason \"%s\", got \"%s\"", c->desc, how, c->error,
                      req->error);
        return;
    }
    if (n < 0)
        return;
    ck_assert_msg(str_is(req->method, req->method_len, c->method), "%s (%s): method %s, got %s",
                  c->desc, how, c->method, show(req->method, req->method_len));
    ck_assert_msg(str_is(req->path, req->path_len, c->path), "%s (%s): path %s, got %s", c->desc,
                  how, c->path, show(req->path, req->path_len));
    ck_assert_msg(req->minor_version == c->minor, "%s (%s): minor %d, got %d", c->desc, how,
                  c->minor, req->minor_version);
    ck_assert_msg(req->num_headers == c->num_headers, "%s (%s): %zu headers, got %zu", c->desc, how,
                  c->num_headers, req->num_headers);
    ck_assert_msg(req->body_kind == c->body, "%s (%s): body kind %d, got %d", c->desc, how,
                  (int)c->body, (int)req->body_kind);
    ck_assert_msg(req->content_length == c->length, "%s (%s): length %llu, got %llu", c->desc, how,
                  (unsigned long long)c->length, (unsigned long long)req->content_length);
    ck_assert_msg(req->keep_alive == c->keep_alive, "%s (%s): keep_alive %d, got %d", c->desc, how,
                  c->keep_alive, req->keep_alive);
    ck_assert_msg(req->expect_continue == c->expect_continue, "%s (%s): expect_continue %d, got %d",
                  c->desc, how, c->expect_continue, req->expect_continue);
    ck_assert_msg(req->expect_unsupported == c->expect_unsupported,
                  "%s (%s): expect_unsupported %d, got %d", c->desc, how, c->expect_unsupported,
                  req->expect_unsupported);
    ck_assert_msg(str_is(req->host, req->host_len, c->host), "%s (%s): host %s, got %s", c->desc,
                  how, c->host ? c->host : "(null)", show(req->host, req->host_len));
}

static int parse_copy(const struct head_case *c, size_t len, size_t prev_len,
                      struct http_request *req, char **copy)
{
    const struct http_limits *lim = c->limits ? c->limits : &default_limits;

    *copy = copy_of(c->input, len);
    return http_parse_request(*copy, len, prev_len, lim, req);
}

START_TEST(head_whole)
{
    const struct head_case *c = &head_cases[_i];
    struct http_request req;
    char *buf;
    int n = parse_copy(c, c->input_len, 0, &req, &buf);

    check_head(c, "whole", n, &req);
    free(buf);
}
END_TEST

/* Every prefix alone, then the byte-by-byte sequence with prev_len: each is
 * "need more" until the deciding byte, and the decision never changes. */
START_TEST(head_prefixes)
{
    const struct head_case *c = &head_cases[_i];
    int want = head_expected_n(c);
    int decided_at = -1;
    size_t k;

    for (k = 1; k <= c->input_len; k++) {
        struct http_request req;
        char how[64];
        char *buf;
        int n = parse_copy(c, k, 0, &req, &buf);
        snprintf(how, sizeof(how), "prefix %zu", k);
        if (n == NEED_MORE) {
            ck_assert_msg(decided_at < 0, "%s (%s): need more after a decision at %d", c->desc, how,
                          decided_at);
            if (want >= 0)
                ck_assert_msg(k < (size_t)want, "%s (%s): need more with the head complete",
                              c->desc, how);
        } else {
            if (decided_at < 0)
                decided_at = (int)k;
            check_head(c, how, n, &req);
        }
        free(buf);
    }
    if (want >= 0)
        ck_assert_msg(decided_at == want, "%s: decided at prefix %d, expected at %d", c->desc,
                      decided_at, want);
}
END_TEST

START_TEST(head_byte_by_byte)
{
    const struct head_case *c = &head_cases[_i];
    struct http_request req;
    int n = NEED_MORE;
    size_t k;

    char *buf = NULL;

    memset(&req, 0, sizeof(req));
    for (k = 1; k <= c->input_len && n == NEED_MORE; k++) {
        free(buf);
        n = parse_copy(c, k, k - 1, &req, &buf);
    }
    check_head(c, "byte by byte", n, &req);
    free(buf);
    if (n >= 0)
        ck_assert_msg(k - 1 == (size_t)n, "%s: byte by byte decided at %zu, head is %d", c->desc,
                      k - 1, n);
}
END_TEST

START_TEST(head_split_everywhere)
{
    const struct head_case *c = &head_cases[_i];
    size_t s;

    for (s = 1; s < c->input_len; s++) {
        struct http_request req;
        char how[64];
        char *buf;
        int n = parse_copy(c, s, 0, &req, &buf);
        snprintf(how, sizeof(how), "split at %zu", s);
        if (n == NEED_MORE) {
            free(buf);
            n = parse_copy(c, c->input_len, s, &req, &buf);
        }
        check_head(c, how, n, &req);
        free(buf);
    }
}
END_TEST

/* ------------------------------------------------- generated head cases */

/* Builds "GET / HTTP/1.1\r\nHost: h\r\n" plus num_extra fields "X: v\r\n". */
static size_t head_with_fields(char *out, size_t out_size, size_t num_extra)
{
    size_t o = (size_t)snprintf(out, out_size, "GET / HTTP/1.1\r\nHost: h\r\n");
    size_t i;

    for (i = 0; i < num_extra; i++)
        o += (size_t)snprintf(out + o, out_size - o, "X-%zu: v\r\n", i);
    o += (size_t)snprintf(out + o, out_size - o, "\r\n");
    ck_assert(o < out_size);
    return o;
}

START_TEST(field_count_limit)
{
    static char buf[8192];
    struct http_limits lim = default_limits;
    struct http_request req;
    size_t len;
    int n;

    len = head_with_fields(buf, sizeof(buf), 99);
    n = http_parse_request(buf, len, 0, &lim, &req);
    ck_assert_msg(n == (int)len && req.num_headers == 100, "100 fields: got %d, %zu headers", n,
                  req.num_headers);
    len = head_with_fields(buf, sizeof(buf), 100);
    n = http_parse_request(buf, len, 0, &lim, &req);
    ck_assert_msg(n == -1 && req.error_status == 431, "101 fields: got %d status %d", n,
                  req.error_status);

    /* A configured limit above the array is clamped to the array. */
    lim.max_headers = 1000;
    len = head_with_fields(buf, sizeof(buf), HTTP_MAX_HEADERS_CAP - 1);
    n = http_parse_request(buf, len, 0, &lim, &req);
    ck_assert_msg(n == (int)len && req.num_headers == HTTP_MAX_HEADERS_CAP,
                  "cap fields: got %d, %zu headers", n, req.num_headers);
    len = head_with_fields(buf, sizeof(buf), HTTP_MAX_HEADERS_CAP);
    n = http_parse_request(buf, len, 0, &lim, &req);
    ck_assert_msg(n == -1 && req.error_status == 431, "cap + 1 fields: got %d status %d", n,
                  req.error_status);
}
END_TEST

/* The default limits: a request line of 8192 bytes is served, 8193 is 414
 * as soon as the 8193rd byte is buffered; a head over 16384 is 431 once
 * 16384 bytes are buffered without its end. */
START_TEST(default_size_limits)
{
    size_t size = 40000;
    char *buf = malloc(size);
    struct http_request req;
    size_t line;
    size_t len;
    int n;

    ck_assert(buf != NULL);
    memset(buf, 'a', size);
    memcpy(buf, "GET /", 5);
    line = 8192;
    memcpy(buf + line - 9, " HTTP/1.1\r\nHost: h\r\n\r\n", 22);
    n = http_parse_request(buf, line + 13, 0, &default_limits, &req);
    ck_assert_msg(n == (int)line + 13 && req.path_len == line - 13, "8192-byte line: got %d (%s)",
                  n, req.error ? req.error : "-");

    memset(buf, 'a', size);
    memcpy(buf, "GET /", 5);
    n = http_parse_request(buf, 8192, 0, &default_limits, &req);
    ck_assert_msg(n == NEED_MORE, "8192 bytes of line: got %d", n);
    n = http_parse_request(buf, 8193, 8192, &default_limits, &req);
    ck_assert_msg(n == -1 && req.error_status == 414, "8193 bytes of line: got %d status %d", n,
                  req.error_status);

    memset(buf, 'a', size);
    len = (size_t)snprintf(buf, size, "GET / HTTP/1.1\r\nHost: h\r\nX: ");
    buf[len] = 'a';
    n = http_parse_request(buf, 16383, 0, &default_limits, &req);
    ck_assert_msg(n == NEED_MORE, "16383 bytes of head: got %d", n);
    n = http_parse_request(buf, 16384, 16383, &default_limits, &req);
    ck_assert_msg(n == -1 && req.error_status == 431, "16384 bytes, no end: got %d status %d", n,
                  req.error_status);
    memcpy(buf + 16380, "\r\n\r\n", 4);
    n = http_parse_request(buf, 16384, 0, &default_limits, &req);
    ck_assert_msg(n == 16384, "head of exactly 16384 bytes: got %d (%s)", n,
                  req.error ? req.error : "-");
    free(buf);
}
END_TEST

/* Empty lines that run past the head limit: the request line would start
 * beyond the last byte that may be judged, and nothing may be read past the
 * buffer (found by fuzz/fuzz_http_parser.c; the buffer is exactly the
 * input's size, so ASan and valgrind see any over-read). */
START_TEST(empty_lines_past_limit)
{
    struct http_request req;
    for (size_t len = 1; len <= 64; len++) {
        char *buf = malloc(len);
        ck_assert_ptr_nonnull(buf);
        memset(buf, '\n', len);
        int n = http_parse_request(buf, len, 0, &small, &req);
        if (len < 48)
            ck_assert_msg(n == NEED_MORE, "%zu empty lines: got %d", len, n);
        else
            ck_assert_msg(n == -1 && req.error_status == 431, "%zu empty lines: got %d status %d",
                          len, n, req.error_status);
        free(buf);
    }
}
END_TEST

/* A head refused before its request line is parsed (a limit, a bad byte)
 * still tells its method when the bytes show one, so a HEAD gets its error
 * without a body; the same whether fed whole or byte by byte. */
static const struct {
    const char *in;
    int status;
    const char *method; /* NULL: none shown */
} early_method_cases[] = {
    {"HEAD / HTTP/1.1\r\nHost: h\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 431, "HEAD"},
    {"HEAD /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 414, "HEAD"},
    {"HEAD /a\x01 HTTP/1.1\r\n", 400, "HEAD"},
    {"\r\nHEAD /a\x7f", 400, "HEAD"},
    {"GET / HTTP/1.1\r\nX: \x01", 400, "GET"},
    {"HE\x01"
     "AD / HTTP/1.1\r\n",
     400, NULL},
    {"HEADaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 414, NULL},
};

START_TEST(early_error_method)
{
    const char *in = early_method_cases[_i].in;
    size_t len = strlen(in);
    struct http_request req;
    int n = -2;
    size_t k;

    for (int whole = 1; whole >= 0; whole--) {
        for (k = whole ? len : 1; k <= len; k++) {
            char *buf = malloc(k);
            ck_assert_ptr_nonnull(buf);
            memcpy(buf, in, k);
            n = http_parse_request(buf, k, whole ? 0 : k - 1, &small, &req);
            char method[16] = "";
            if (req.method != NULL)
                snprintf(method, sizeof(method), "%.*s", (int)req.method_len, req.method);
            free(buf);
            if (n != -2) {
                ck_assert_msg(n == -1 && req.error_status == early_method_cases[_i].status,
                              "case %d (%s): got %d status %d", _i,
                              whole ? "whole" : "byte by byte", n, req.error_status);
                const char *want = early_method_cases[_i].method;
                ck_assert_msg(want ? strcmp(method, want) == 0 : req.method == NULL,
                              "case %d (%s): method [%s], expected [%s]", _i,
                              whole ? "whole" : "byte by byte", method, want ? want : "none");
                break;
            }
        }
        ck_assert_msg(n == -1, "case %d: never refused", _i);
    }
}
END_TEST

/* ------------------------------------------------------------ pipelining */

START_TEST(pipelined_requests)
{
    static const char stream[] =
        "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
        "POST /tareas HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
        "\r\n" /* a stray CRLF after a body, as old clients send */
        "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\n\r\n"
        "GET /d HTTP/1.0\r\n\r\n"
        "GET /e HTTP/1.1\r\nHo";
    static const char *paths[] = {"/a", "/tareas", "/c", "/d"};
    size_t len = sizeof(stream) - 1;
    char *buf = copy_of(stream, len);
    size_t off = 0;
    size_t i;
    struct http_request req;
    int n;

    for (i = 0; i < 4; i++) {
        n = http_parse_request(buf + off, len - off, 0, &default_limits, &req);
        ck_assert_msg(n > 0, "request %zu: got %d (%s)", i, n, req.error ? req.error : "-");
        ck_assert_msg(str_is(req.path, req.path_len, paths[i]), "request %zu: path %s, got %s", i,
                      paths[i], show(req.path, req.path_len));
        off += (size_t)n;
        if (req.body_kind == HTTP_BODY_LENGTH) {
            ck_assert(memcmp(buf + off, "hello", 5) == 0);
            off += req.content_length;
        } else if (req.body_kind == HTTP_BODY_CHUNKED) {
            struct http_chunked_decoder dec = {0};
            size_t dlen = len - off;
            long rest = http_decode_chunked(&dec, buf + off, &dlen, 1024);
            ck_assert_msg(rest >= 0 && dlen == 3 && memcmp(buf + off, "abc", 3) == 0,
                          "chunked body: got %ld, %zu bytes", rest, dlen);
            off = len - (size_t)rest;
        }
    }
    n = http_parse_request(buf + off, len - off, 0, &default_limits, &req);
    ck_assert_msg(n == NEED_MORE, "incomplete last request: got %d", n);
    free(buf);
}
END_TEST

/* A connection's life: the stream arrives in pseudo-random pieces; the
 * caller keeps a buffer, passes prev_len, and consumes each request. */
START_TEST(pipelined_random_reads)
{
    static const char one[] = "POST /tareas HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}";
    size_t one_len = sizeof(one) - 1;
    size_t total = one_len * 50;
    char *stream = malloc(total);
    char *buf = malloc(total);
    unsigned seed = 12345;
    int round;

    ck_assert(stream != NULL && buf != NULL);
    for (size_t i = 0; i < 50; i++)
        memcpy(stream + i * one_len, one, one_len);
    for (round = 0; round < 20; round++) {
        size_t fed = 0, have = 0, prev = 0, done = 0;
        int reads = 0;
        while (done < 50) {
            struct http_request req;
            int n;
            ck_assert_msg(reads++ < 10000, "round %d: stalled with %zu bytes, %zu done", round,
                          have, done);
            seed = seed * 1103515245u + 12345u;
            if (fed < total) {
                size_t piece = 1 + (seed >> 16) % 40;
                if (piece > total - fed)
                    piece = total - fed;
                memcpy(buf + have, stream + fed, piece);
                fed += piece;
                have += piece;
            }
            for (;;) {
                n = http_parse_request(buf, have, prev, &default_limits, &req);
                if (n == NEED_MORE) {
                    prev = have;
                    break;
                }
                ck_assert_msg(n > 0, "request %zu: got %d (%s)", done, n,
                              req.error ? req.error : "-");
                if (have - (size_t)n < req.content_length) {
                    prev = 0; /* the head will be parsed again once the body is in */
                    break;
                }
                ck_assert(req.content_length == 2 && memcmp(buf + n, "{}", 2) == 0);
                memmove(buf, buf + n + 2, have - (size_t)n - 2);
                have -= (size_t)n + 2;
                prev = 0;
                done++;
            }
        }
        ck_assert_msg(have == 0, "round %d: %zu bytes left", round, have);
    }
    free(stream);
    free(buf);
}
END_TEST

/* ------------------------------------------------------------- chunked */

struct chunk_case {
    const char *desc;
    const char *input;
    size_t input_len;
    uint64_t max_body; /* 0: 1 MiB */
    long result;       /* bytes left for the next request, -1 or -2 */
    int status;        /* with -1 */
    const char *body;  /* decoded bytes (so far, with -2) */
};

#define BODY(s) .body = (s)

static const struct chunk_case chunk_cases[] = {
    {"one chunk", IN("5\r\nhello\r\n0\r\n\r\n"), .result = 0, BODY("hello")},
    {"next request follows", IN("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), .result = 16,
     BODY("hello")},
    {"several chunks", IN("3\r\nabc\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n"), .result = 0,
     BODY("abcdef")},
    {"hex sizes", IN("a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\n"), .result = 0,
     BODY("0123456789abcdefghijk")},
    {"leading zeros", IN("0005\r\nhello\r\n000\r\n\r\n"), .result = 0, BODY("hello")},
    {"sixteen digits", IN("0000000000000005\r\nhello\r\n0\r\n\r\n"), .result = 0, BODY("hello")},
    {"empty body", IN("0\r\n\r\n"), .result = 0, BODY("")},
    {"data holding crlf", IN("4\r\n\r\n\r\n\r\n0\r\n\r\n"), .result = 0, BODY("\r\n\r\n")},
    {"extensions", IN("5;foo=bar\r\nhello\r\n0;last\r\n\r\n"), .result = 0, BODY("hello")},
    {"extension after whitespace", IN("5 \t;foo ; bar = baz\r\nhello\r\n0\r\n\r\n"), .result = 0,
     BODY("hello")},
    {"quoted extension", IN("5;a=\"q;\\\"x\\\\\"\r\nhello\r\n0\r\n\r\n"), .result = 0,
     BODY("hello")},
    {"trailers", IN("5\r\nhello\r\n0\r\nX-Sum: 1\r\nY:\r\n\r\nnext"), .result = 4, BODY("hello")},
    {"body at max_body", IN("5\r\nhello\r\n0\r\n\r\n"), .max_body = 5, .result = 0, BODY("hello")},
    {"incomplete data", IN("5\r\nhel"), .result = -2, BODY("hel")},
    {"incomplete after a chunk", IN("5\r\nhello\r\n0\r\n"), .result = -2, BODY("hello")},
    {"huge size within max_body, waiting", IN("FFFFFFFFFFFFFFFF\r\nab"), .max_body = UINT64_MAX,
     .result = -2, BODY("ab")},

    {"not hex", IN("x\r\n"), .result = -1, .status = 400, BODY("")},
    {"empty size", IN("\r\nhello\r\n"), .result = -1, .status = 400, BODY("")},
    {"negative size", IN("-5\r\nhello\r\n"), .result = -1, .status = 400, BODY("")},
    {"0x prefix", IN("0x5\r\nhello\r\n"), .result = -1, .status = 400, BODY("")},
    {"seventeen digits", IN("00000000000000005\r\nhello\r\n0\r\n\r\n"), .result = -1, .status = 400,
     BODY("")},
    {"size overflow", IN("1FFFFFFFFFFFFFFFF\r\n"), .max_body = UINT64_MAX, .result = -1,
     .status = 400, BODY("")},
    {"bare lf after size", IN("5\nhello\r\n0\r\n\r\n"), .result = -1, .status = 400, BODY("")},
    {"trailing space after size", IN("5 \r\nhello\r\n0\r\n\r\n"), .result = -1, .status = 400,
     BODY("")},
    {"space between digits", IN("5 6\r\n"), .result = -1, .status = 400, BODY("")},
    {"cr without lf after size", IN("5\rXhello"), .result = -1, .status = 400, BODY("")},
    {"data longer than size", IN("5\r\nhelloX\r\n0\r\n\r\n"), .result = -1, .status = 400,
     BODY("")},
    {"bare lf after data", IN("5\r\nhello\n0\r\n\r\n"), .result = -1, .status = 400, BODY("")},
    {"cr without lf after data", IN("5\r\nhello\rX"), .result = -1, .status = 400, BODY("")},
    {"control char in extension", IN("5;a\x01\r\nhello\r\n0\r\n\r\n"), .result = -1, .status = 400,
     BODY("")},
    {"cr in quoted extension", IN("5;a=\"x\r\n\"\r\nhello\r\n0\r\n\r\n"), .result = -1,
     .status = 400, BODY("")},
    {"unterminated quote", IN("5;a=\"x\r\nhello\r\n"), .result = -1, .status = 400, BODY("")},
    {"trailer obs-fold", IN("0\r\nX: 1\r\n 2\r\n\r\n"), .result = -1, .status = 400, BODY("")},
    {"trailer without colon", IN("0\r\nX 1\r\n\r\n"), .result = -1, .status = 400, BODY("")},
    {"trailer bare lf", IN("0\r\nX: 1\n\r\n"), .result = -1, .status = 400, BODY("")},
    {"trailer control char", IN("0\r\nX: \x01\r\n\r\n"), .result = -1, .status = 400, BODY("")},
    {"last line bare lf", IN("0\r\n\n"), .result = -1, .status = 400, BODY("")},
    {"last cr without lf", IN("0\r\n\rX"), .result = -1, .status = 400, BODY("")},
    {"chunk over max_body", IN("5\r\nhello\r\n0\r\n\r\n"), .max_body = 4, .result = -1,
     .status = 413, BODY("")},
    {"sum over max_body", IN("3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"), .max_body = 5, .result = -1,
     .status = 413, BODY("")},
    {"size digits over max_body before the line ends", IN("10000"), .max_body = 4096, .result = -1,
     .status = 413, BODY("")},
};

#define NUM_CHUNK_CASES (sizeof(chunk_cases) / sizeof(chunk_cases[0]))

/* Feeds the case in pieces that end at cuts[0..num_cuts) and then at the
 * end, each piece in a fresh buffer; checks the result, the decoded body and
 * the bytes left over. */
static void feed_chunked(const struct chunk_case *c, const size_t *cuts, size_t num_cuts,
                         const char *how)
{
    struct http_chunked_decoder dec = {0};
    uint64_t max_body = c->max_body ? c->max_body : 1024 * 1024;
    char body[256];
    size_t body_len = 0;
    size_t start = 0;
    size_t i;
    long r = -2;
    char *left = NULL;
    size_t left_len = 0;

    for (i = 0; i <= num_cuts && r == -2; i++) {
        size_t end = i < num_cuts ? cuts[i] : c->input_len;
        size_t n = end - start;
        char *piece = copy_of(c->input + start, n);
        size_t len = n;
        r = http_decode_chunked(&dec, piece, &len, max_body);
        if (r != -1) {
            ck_assert_msg(len <= n && body_len + len <= sizeof(body), "%s (%s): %zu bytes out",
                          c->desc, how, len);
            memcpy(body + body_len, piece, len);
            body_len += len;
        }
        if (r >= 0) {
            /* What is left: the end of this piece, then the unfed input. */
            ck_assert_msg((size_t)r <= n, "%s (%s): %ld left of a %zu-byte piece", c->desc, how, r,
                          n);
            left_len = (size_t)r + (c->input_len - end);
            left = malloc(left_len + 1);
            ck_assert(left != NULL);
            memcpy(left, piece + (n - (size_t)r), (size_t)r);
            memcpy(left + r, c->input + end, c->input_len - end);
        }
        free(piece);
        start = end;
    }
    if (r >= 0)
        ck_assert_msg(c->result >= 0 && left_len == (size_t)c->result &&
                          memcmp(left, c->input + c->input_len - left_len, left_len) == 0,
                      "%s (%s): expected %ld bytes left, got %zu", c->desc, how, c->result,
                      left_len);
    free(left);
    if (r >= 0)
        r = (long)left_len;
    ck_assert_msg(r == c->result, "%s (%s): expected %ld, got %ld (status %d: %s)", c->desc, how,
                  c->result, r, dec.error_status, dec.error ? dec.error : "-");
    if (r == -1) {
        ck_assert_msg(dec.error_status == c->status && dec.error != NULL,
                      "%s (%s): expected status %d, got %d", c->desc, how, c->status,
                      dec.error_status);
        return;
    }
    ck_assert_msg(body_len == strlen(c->body) && memcmp(body, c->body, body_len) == 0,
                  "%s (%s): body \"%s\", got \"%s\"", c->desc, how, c->body, show(body, body_len));
    ck_assert_msg(dec.decoded == body_len, "%s (%s): decoded %llu, body %zu", c->desc, how,
                  (unsigned long long)dec.decoded, body_len);
}

START_TEST(chunked_whole)
{
    feed_chunked(&chunk_cases[_i], NULL, 0, "whole");
}
END_TEST

START_TEST(chunked_byte_by_byte)
{
    const struct chunk_case *c = &chunk_cases[_i];
    size_t cuts[256];
    size_t i;

    ck_assert(c->input_len <= sizeof(cuts) / sizeof(cuts[0]));
    for (i = 1; i < c->input_len; i++)
        cuts[i - 1] = i;
    feed_chunked(c, cuts, c->input_len > 0 ? c->input_len - 1 : 0, "byte by byte");
}
END_TEST

START_TEST(chunked_split_everywhere)
{
    const struct chunk_case *c = &chunk_cases[_i];
    size_t a, b;
    char how[64];

    for (a = 0; a <= c->input_len; a++) {
        size_t cut[2] = {a, 0};
        snprintf(how, sizeof(how), "split at %zu", a);
        feed_chunked(c, cut, 1, how);
        for (b = a; b <= c->input_len; b++) {
            cut[1] = b;
            snprintf(how, sizeof(how), "split at %zu and %zu", a, b);
            feed_chunked(c, cut, 2, how);
        }
    }
}
END_TEST

/* Decodes a 1-byte chunk whose size line carries ext_len bytes of extension
 * (after the ';', up to the CR), with the decoder's extension limit max_ext
 * (0: the default). Returns the decoder's result. */
static long decode_with_extension(size_t ext_len, size_t max_ext, int *status)
{
    size_t size = ext_len + 16;
    char *buf = malloc(size);
    struct http_chunked_decoder dec;
    size_t len = size;
    long r;

    ck_assert(buf != NULL);
    memset(&dec, 0, sizeof(dec));
    dec.max_ext_bytes = max_ext;
    memset(buf, 'e', size);
    buf[0] = '1';
    buf[1] = ';';
    memcpy(buf + 1 + ext_len, "\r\nx\r\n0\r\n\r\n", 10);
    len = ext_len + 11;
    r = http_decode_chunked(&dec, buf, &len, 100);
    if (r == 0)
        ck_assert_msg(len == 1 && buf[0] == 'x', "%zu-byte extension: body of %zu bytes", ext_len,
                      len);
    *status = dec.error_status;
    free(buf);
    return r;
}

/* Decodes an empty body whose trailer section (from "X:" to the final CRLF)
 * is trailer_len bytes, with the decoder's trailer limit max_trailer. */
static long decode_with_trailers(size_t trailer_len, size_t max_trailer, int *status)
{
    char *buf = malloc(trailer_len + 3);
    struct http_chunked_decoder dec;
    size_t len = trailer_len + 3;
    long r;

    ck_assert(buf != NULL && trailer_len >= 7);
    memset(&dec, 0, sizeof(dec));
    dec.max_trailer_bytes = max_trailer;
    memset(buf, 'v', len);
    memcpy(buf, "0\r\nX:", 5);
    memcpy(buf + len - 4, "\r\n\r\n", 4);
    r = http_decode_chunked(&dec, buf, &len, 100);
    *status = dec.error_status;
    free(buf);
    return r;
}

/* The limits: the defaults (the server's default request-line and header
 * limits) and configured ones; at the limit passes, one byte more is 400. */
START_TEST(chunked_long_extension_and_trailer)
{
    static const struct {
        size_t limit; /* 0: the default */
        size_t effective;
    } ext[] = {{0, HTTP_CHUNK_EXT_DEFAULT}, {100, 100}, {20000, 20000}},
      trailer[] = {{0, HTTP_CHUNK_TRAILER_DEFAULT}, {64, 64}, {40000, 40000}};
    size_t i;
    int status;
    long r;

    ck_assert_int_eq(HTTP_CHUNK_EXT_DEFAULT, 8192);
    ck_assert_int_eq(HTTP_CHUNK_TRAILER_DEFAULT, 16384);
    for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
        r = decode_with_extension(ext[i].effective, ext[i].limit, &status);
        ck_assert_msg(r == 0, "%zu-byte extension, limit %zu: expected 0, got %ld",
                      ext[i].effective, ext[i].limit, r);
        r = decode_with_extension(ext[i].effective + 1, ext[i].limit, &status);
        ck_assert_msg(r == -1 && status == 400,
                      "%zu-byte extension, limit %zu: expected -1 (400), got %ld (%d)",
                      ext[i].effective + 1, ext[i].limit, r, status);
    }
    for (i = 0; i < sizeof(trailer) / sizeof(trailer[0]); i++) {
        r = decode_with_trailers(trailer[i].effective, trailer[i].limit, &status);
        ck_assert_msg(r == 0, "%zu-byte trailers, limit %zu: expected 0, got %ld",
                      trailer[i].effective, trailer[i].limit, r);
        r = decode_with_trailers(trailer[i].effective + 1, trailer[i].limit, &status);
        ck_assert_msg(r == -1 && status == 400,
                      "%zu-byte trailers, limit %zu: expected -1 (400), got %ld (%d)",
                      trailer[i].effective + 1, trailer[i].limit, r, status);
    }
}
END_TEST

/* The whitespace between the chunk size and a ';' (RFC 9112 §7.1.1 BWS) is
 * part of the extension bytes: a size line of endless blanks meets the same
 * limit. "1", spaces, ";", CRLF: every byte after the first space counts. */
START_TEST(chunked_long_whitespace_before_extension)
{
    static const struct {
        size_t spaces;
        size_t max_ext;
        long result;
    } cases[] = {{1, 2, 0}, {99, 100, 0}, {100, 100, -1}, {8191, 0, 0}, {8192, 0, -1}};
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = cases[i].spaces + 12;
        char *buf = malloc(len);
        struct http_chunked_decoder dec = {.max_ext_bytes = cases[i].max_ext};
        long r;

        ck_assert(buf != NULL);
        buf[0] = '1';
        memset(buf + 1, ' ', cases[i].spaces);
        memcpy(buf + 1 + cases[i].spaces, ";\r\nx\r\n0\r\n\r\n", 11);
        r = http_decode_chunked(&dec, buf, &len, 100);
        free(buf);
        ck_assert_msg(r == cases[i].result && (r == 0 || dec.error_status == 400),
                      "%zu spaces, limit %zu: expected %ld, got %ld (%d)", cases[i].spaces,
                      cases[i].max_ext, cases[i].result, r, dec.error_status);
    }
}
END_TEST

START_TEST(chunked_after_end_and_error)
{
    struct http_chunked_decoder dec = {0};
    char buf[32];
    size_t len;
    long r;

    memcpy(buf, "0\r\n\r\nGET", 8);
    len = 8;
    r = http_decode_chunked(&dec, buf, &len, 10);
    ck_assert_msg(r == 3 && len == 0, "end: got %ld, len %zu", r, len);
    memcpy(buf, "more", 4);
    len = 4;
    r = http_decode_chunked(&dec, buf, &len, 10);
    ck_assert_msg(r == 4 && len == 0, "after the end every byte is left over: got %ld", r);

    memset(&dec, 0, sizeof(dec));
    memcpy(buf, "z", 1);
    len = 1;
    r = http_decode_chunked(&dec, buf, &len, 10);
    ck_assert(r == -1 && dec.error_status == 400);
    memcpy(buf, "0\r\n\r\n", 5);
    len = 5;
    r = http_decode_chunked(&dec, buf, &len, 10);
    ck_assert_msg(r == -1 && dec.error_status == 400 && len == 0, "errors stick: got %ld", r);
}
END_TEST

/* ------------------------------------------------------------- helpers */

/* Callers look fields up in req.headers: every field line, in order, the
 * name as sent, duplicates kept, the value trimmed. */
START_TEST(fields_in_order)
{
    static const char in[] =
        "GET / HTTP/1.1\r\nHost: h\r\nX-Thing: one\r\nx-thing: \t two \r\nEmpty:\r\n\r\n";
    static const struct {
        const char *name;
        const char *value;
    } want[] = {{"Host", "h"}, {"X-Thing", "one"}, {"x-thing", "two"}, {"Empty", ""}};
    struct http_request req;
    int n = http_parse_request(in, sizeof(in) - 1, 0, &default_limits, &req);
    size_t i;

    ck_assert_int_eq(n, (int)sizeof(in) - 1);
    ck_assert_uint_eq(req.num_headers, sizeof(want) / sizeof(want[0]));
    for (i = 0; i < req.num_headers; i++) {
        const struct http_header *h = &req.headers[i];
        ck_assert_msg(str_is(h->name, h->name_len, want[i].name) &&
                          str_is(h->value, h->value_len, want[i].value),
                      "field %zu: expected \"%s: %s\", got \"%.*s: %.*s\"", i, want[i].name,
                      want[i].value, (int)h->name_len, h->name, (int)h->value_len, h->value);
    }
}
END_TEST

START_TEST(status_texts)
{
    static const int used[] = {100, 200, 201, 204, 400, 404, 405, 408, 411, 413,
                               414, 415, 417, 431, 500, 501, 503, 505, 507};
    size_t i;

    for (i = 0; i < sizeof(used) / sizeof(used[0]); i++)
        ck_assert_msg(strcmp(http_status_text(used[i]), "Unknown") != 0, "no text for %d", used[i]);
    ck_assert_str_eq(http_status_text(404), "Not Found");
    ck_assert_str_eq(http_status_text(431), "Request Header Fields Too Large");
    ck_assert_str_eq(http_status_text(299), "Unknown");
}
END_TEST

static Suite *http_parser_suite(void)
{
    Suite *s = suite_create("http_parser");
    TCase *tc = tcase_create("heads");
    TCase *tc_chunked = tcase_create("chunked");
    TCase *tc_misc = tcase_create("misc");

    tcase_add_loop_test(tc, head_whole, 0, NUM_HEAD_CASES);
    tcase_add_loop_test(tc, head_prefixes, 0, NUM_HEAD_CASES);
    tcase_add_loop_test(tc, head_byte_by_byte, 0, NUM_HEAD_CASES);
    tcase_add_loop_test(tc, head_split_everywhere, 0, NUM_HEAD_CASES);
    tcase_add_test(tc, field_count_limit);
    tcase_add_test(tc, default_size_limits);
    tcase_add_test(tc, empty_lines_past_limit);
    tcase_add_loop_test(tc, early_error_method, 0,
                        (int)(sizeof(early_method_cases) / sizeof(early_method_cases[0])));
    suite_add_tcase(s, tc);

    tcase_add_loop_test(tc_chunked, chunked_whole, 0, NUM_CHUNK_CASES);
    tcase_add_loop_test(tc_chunked, chunked_byte_by_byte, 0, NUM_CHUNK_CASES);
    tcase_add_loop_test(tc_chunked, chunked_split_everywhere, 0, NUM_CHUNK_CASES);
    tcase_add_test(tc_chunked, chunked_long_extension_and_trailer);
    tcase_add_test(tc_chunked, chunked_long_whitespace_before_extension);
    tcase_add_test(tc_chunked, chunked_after_end_and_error);
    suite_add_tcase(s, tc_chunked);

    tcase_add_test(tc_misc, pipelined_requests);
    tcase_add_test(tc_misc, pipelined_random_reads);
    tcase_add_test(tc_misc, fields_in_order);
    tcase_add_test(tc_misc, status_texts);
    suite_add_tcase(s, tc_misc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_parser_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
