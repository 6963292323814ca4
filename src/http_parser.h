/* http_parser.h - incremental HTTP/1.1 request parsing (RFC 9110, RFC 9112).
 *
 * No I/O, no allocation: every string in the result points into the caller's
 * buffer, which must stay put while the result is used.
 *
 * Its names take the prefix http_ (struct http_request, http_parse_request()),
 * which no other module uses; short, as it is written on every line of the
 * parser (the idea is picohttpparser's phr_).
 *
 * Calling sequence for one request on a connection:
 *
 *   struct http_request req;
 *   int n = http_parse_request(buf, buf_len, prev_len, &limits, &req);
 *     n >= 0   the header section is complete and n bytes long; the body (if
 *              any) starts at buf + n. req.body_kind says how to read it.
 *     n == -2  need more bytes: read more, call again with the whole buffer
 *              (prev_len = the length given last time, to skip a rescan).
 *              Until the header section is complete, two things are judged
 *              as soon as the buffered bytes prove them: the size limits
 *              (414, 431), so a caller never needs more than
 *              max_header_bytes buffered; and bytes that can never be part
 *              of a request (400): NUL, a control character other than
 *              HTAB, CR and LF, DEL, a CR followed by anything but LF, a
 *              method that is not a token followed by SP. So a TLS
 *              handshake or other garbage is refused at once, not at the
 *              header timeout. Every prefix of a valid request is -2;
 *              everything else is judged once the head is whole.
 *              The result depends only on buf[0..len), never on prev_len
 *              (nor on how the bytes were split between calls).
 *     n == -1  bad request: req.error_status is the status to answer
 *              (400, 414, 431, 501, 505) and req.error says why. req.method
 *              is set whenever the bytes read so far show one (so that a
 *              HEAD gets its error without a body), else NULL.
 *   Empty lines before the request line are skipped and counted in n. Lines
 *   end with CRLF or a bare LF; a CR anywhere else is an error.
 *
 *   Body with Content-Length: wait for req.content_length bytes.
 *   Chunked body: decode in place as bytes arrive:
 *       struct http_chunked_decoder dec = {0};
 *       long r = http_decode_chunked(&dec, data, &data_len, max_body);
 *     data[0..data_len) is rewritten to the decoded bytes so far;
 *     r >= 0   the body is complete; the last r bytes of the input belong
 *              to the next request (see http_decode_chunked)
 *     r == -2  need more: every input byte was consumed
 *     r == -1  bad chunk framing (400; also extensions or trailers over
 *              their limits), or dec.error_status == 413 when the decoded
 *              size would exceed max_body; data_len is set to 0.
 *   Chunk framing lines must end with CRLF (no bare LF there: that is where
 *   lenient parsers disagree and requests get smuggled).
 *
 * Limits: request line (414), header section bytes and field count (431);
 * chunk extensions and trailers (400, set in the decoder).
 *
 * One header, two files: the head parser is http_parser.c, the chunked
 * decoder http_chunked.c (its file header says why they share this face).
 */
#ifndef TASKSERVER_HTTP_PARSER_H
#define TASKSERVER_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include "http_limits.h" /* struct http_limits, HTTP_MAX_HEADERS_CAP */

struct http_header {
    const char *name; /* token, case as sent */
    size_t name_len;
    const char *value; /* optional whitespace trimmed */
    size_t value_len;
};

enum http_body_kind {
    HTTP_BODY_NONE,    /* no Content-Length, no Transfer-Encoding */
    HTTP_BODY_LENGTH,  /* Content-Length: content_length bytes */
    HTTP_BODY_CHUNKED, /* Transfer-Encoding: chunked */
};

struct http_request {
    const char *method; /* token, e.g. "GET" */
    size_t method_len;
    const char *path;  /* origin-form, or the path of an absolute-form target ("/" if empty,
                          a static string; the query of "http://h?q" is then dropped) */
    size_t path_len;   /* includes any "?query" */
    int minor_version; /* 0 or 1 (other 1.x minors are reported as 1) */

    struct http_header headers[HTTP_MAX_HEADERS_CAP];
    size_t num_headers;

    /* Semantics derived from the fields, valid when the parse succeeded. */
    enum http_body_kind body_kind;
    uint64_t content_length; /* HTTP_BODY_LENGTH only */
    int keep_alive;          /* 1.1 unless "close"; 1.0 only with "keep-alive" */
    int expect_continue;     /* Expect: 100-continue (HTTP/1.1 only) */
    int expect_unsupported;  /* another expectation (HTTP/1.1 only): answer 417 */
    const char *host;        /* Host value (NULL if absent: allowed in 1.0 only) */
    size_t host_len;

    /* On -1: the status to answer and a short reason for the log and body. */
    int error_status;
    const char *error;
};

/* Parses the request line and header fields at buf[0..len). prev_len is the
 * len of the previous call on the same bytes (0 the first time). Returns the
 * header section length (>= 0), -2 (need more) or -1 (bad; see error_status). */
int http_parse_request(const char *buf, size_t len, size_t prev_len,
                       const struct http_limits *limits, struct http_request *req);

#define HTTP_CHUNK_EXT_DEFAULT 8192      /* = the default request-line limit */
#define HTTP_CHUNK_TRAILER_DEFAULT 16384 /* = the default header-section limit */

/* Incremental chunked-body decoder state; zero-initialize before the first
 * call, then set the two limits if the defaults do not suit (the server uses
 * its request-line limit for the extensions of one chunk-size line, and its
 * header-section limit for the trailer section: the same kinds of bytes). */
struct http_chunked_decoder {
    size_t max_ext_bytes;     /* extensions of one chunk-size line; 0: HTTP_CHUNK_EXT_DEFAULT */
    size_t max_trailer_bytes; /* the trailer section; 0: HTTP_CHUNK_TRAILER_DEFAULT */
    int state;                /* private */
    uint64_t chunk_left;      /* private: bytes left in the current chunk */
    size_t size_digits;       /* private */
    size_t trailer_bytes;     /* private */
    uint64_t decoded;         /* total decoded body bytes so far */
    int error_status;         /* on -1: 400 (bad framing, or over a limit above), 413 */
    const char *error;
};

/* Decodes chunked framing in place. On entry buf[0..*len) holds bytes not yet
 * consumed by the decoder; on return buf[0..*len) holds the decoded body bytes
 * produced by this call (append them to the body; the decoder keeps no
 * pointer into buf). Returns -2 (need more), -1 (bad: error_status), or the
 * number of bytes after the end of the chunked body that belong to the next
 * request: they are at buf + (original length - that number). */
long http_decode_chunked(struct http_chunked_decoder *dec, char *buf, size_t *len,
                         uint64_t max_body);

/* The reason phrase of a status code ("Not Found"); "Unknown" for others. */
const char *http_status_text(int status);

#endif
