/* fuzz_http_parser.c - libFuzzer harness: the request parser and chunked decoder must give the
 * same answer whether the input arrives whole or split at arbitrary points, and never misbehave.
 *
 * Build and run with tools/fuzz http_parser SECONDS. Every buffer handed to the
 * parser is a heap copy of exactly the bytes it may read, so AddressSanitizer
 * reports any read past the end. A disagreement between feeds is a crash
 * (__builtin_trap), so libFuzzer saves the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parser.h"

#define FUZZ_MAX_BODY_DEFAULT 4096

/* A small deterministic generator, seeded from the input, for split points. */
static uint64_t next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return *state >> 33;
}

static uint64_t seed_of(const uint8_t *data, size_t size)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    size_t i;

    for (i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ULL;
    return h;
}

static char *copy_of(const uint8_t *data, size_t n)
{
    char *p = malloc(n > 0 ? n : 1);
    if (p == NULL)
        abort();
    memcpy(p, data, n);
    return p;
}

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

static int same_bytes(const char *a, size_t a_len, const char *b, size_t b_len)
{
    if (a == NULL || b == NULL)
        return a == b;
    return a_len == b_len && memcmp(a, b, a_len) == 0;
}

/* Whatever the parser returned must be self-consistent. */
static void check_invariants(const char *buf, size_t len, int n, const struct http_request *req,
                             const struct http_limits *lim)
{
    size_t i;

    check(n == -2 || n == -1 || (n > 0 && (size_t)n <= len));
    if (n == -1) {
        check(req->error != NULL);
        check(req->error_status == 400 || req->error_status == 414 || req->error_status == 431 ||
              req->error_status == 501 || req->error_status == 505);
        return;
    }
    if (n < 0)
        return;
    check((size_t)n <= lim->max_header_bytes);
    check(req->method >= buf && req->method + req->method_len <= buf + n && req->method_len > 0);
    check(req->path_len > 0 && req->path[0] == '/');
    check(req->minor_version == 0 || req->minor_version == 1);
    check(req->num_headers <= lim->max_headers && req->num_headers <= HTTP_MAX_HEADERS_CAP);
    for (i = 0; i < req->num_headers; i++) {
        const struct http_header *h = &req->headers[i];
        check(h->name >= buf && h->name + h->name_len <= buf + n && h->name_len > 0);
        check(h->value >= buf && h->value + h->value_len <= buf + n);
        check(memchr(h->value, '\r', h->value_len) == NULL);
        check(memchr(h->value, '\n', h->value_len) == NULL);
        check(memchr(h->value, '\0', h->value_len) == NULL);
    }
    check(req->minor_version == 0 || req->host != NULL);
    check(req->body_kind != HTTP_BODY_CHUNKED || req->minor_version == 1);
}

/* Parses whole, then fed in random pieces with prev_len; both must agree. */
static void fuzz_head(const uint8_t *data, size_t size, const struct http_limits *lim,
                      uint64_t *rnd)
{
    struct http_request *whole = malloc(sizeof(*whole));
    struct http_request *part = malloc(sizeof(*part));
    char *buf = copy_of(data, size);
    int n = http_parse_request(buf, size, 0, lim, whole);
    size_t k = 0;
    size_t prev = 0;
    int m = -2;
    size_t i;

    if (whole == NULL || part == NULL)
        abort();
    check_invariants(buf, size, n, whole, lim);

    while (m == -2 && k < size) {
        char *piece;
        k += 1 + next_random(rnd) % (next_random(rnd) % 4 == 0 ? 512 : 8);
        if (k > size)
            k = size;
        piece = copy_of(data, k);
        m = http_parse_request(piece, k, prev, lim, part);
        check_invariants(piece, k, m, part, lim);
        if (m != -2) {
            check(m == n);
            if (m == -1)
                check(part->error_status == whole->error_status);
            if (m >= 0) {
                check(same_bytes(part->method, part->method_len, whole->method, whole->method_len));
                check(same_bytes(part->path, part->path_len, whole->path, whole->path_len));
                check(part->minor_version == whole->minor_version);
                check(part->num_headers == whole->num_headers);
                for (i = 0; i < part->num_headers; i++) {
                    check(same_bytes(part->headers[i].name, part->headers[i].name_len,
                                     whole->headers[i].name, whole->headers[i].name_len));
                    check(same_bytes(part->headers[i].value, part->headers[i].value_len,
                                     whole->headers[i].value, whole->headers[i].value_len));
                }
                check(part->body_kind == whole->body_kind);
                check(part->content_length == whole->content_length);
                check(part->keep_alive == whole->keep_alive);
                check(part->expect_continue == whole->expect_continue);
                check(part->expect_unsupported == whole->expect_unsupported);
                check(same_bytes(part->host, part->host_len, whole->host, whole->host_len));
            }
        }
        free(piece);
        prev = k;
    }
    if (m == -2)
        check(n == -2);
    free(buf);
    free(part);
    free(whole);
}

/* Decodes data as a chunked body whole and in random pieces; the result, the
 * decoded bytes and the bytes left over must agree. */
static void fuzz_chunked(const uint8_t *data, size_t size, uint64_t max_body, uint64_t *rnd)
{
    struct http_chunked_decoder dw = {0};
    struct http_chunked_decoder dp = {0};
    char *whole = copy_of(data, size);
    char *body = malloc(size > 0 ? size : 1);
    size_t whole_len = size;
    long rw = http_decode_chunked(&dw, whole, &whole_len, max_body);
    size_t body_len = 0;
    size_t start = 0;
    long rp = -2;

    if (body == NULL)
        abort();
    check(rw >= -2 && rw <= (long)size);
    check(whole_len <= size && dw.decoded <= max_body);
    if (rw == -1)
        check((dw.error_status == 400 || dw.error_status == 413) && dw.error != NULL);

    while (rp == -2 && start < size) {
        size_t end = start + 1 + next_random(rnd) % (next_random(rnd) % 4 == 0 ? 512 : 8);
        size_t len;
        char *piece;
        if (end > size)
            end = size;
        len = end - start;
        piece = copy_of(data + start, len);
        rp = http_decode_chunked(&dp, piece, &len, max_body);
        if (rp != -1) {
            check(len <= end - start && body_len + len <= size);
            memcpy(body + body_len, piece, len);
            body_len += len;
        }
        if (rp >= 0) {
            check((size_t)rp <= end - start);
            rp += (long)(size - end); /* the unfed rest is left over too */
        }
        free(piece);
        start = end;
    }
    check(rp == rw);
    if (rw == -1)
        check(dp.error_status == dw.error_status);
    else
        check(body_len == whole_len && memcmp(body, whole, body_len) == 0 &&
              dp.decoded == dw.decoded && dw.decoded == whole_len);
    free(body);
    free(whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct http_limits limit_sets[] = {
        {8192, 16384, 100}, {32, 256, 4}, {64, 48, 128}, /* a line limit above the head limit */
    };
    uint64_t seed = seed_of(data, size);
    uint64_t rnd = seed;
    const struct http_limits *lim = &limit_sets[seed % 3];
    struct http_request *req = malloc(sizeof(*req));
    char *buf = copy_of(data, size);
    int n;

    if (req == NULL)
        abort();
    fuzz_head(data, size, lim, &rnd);

    /* A request with a chunked body: decode what follows its head. Any input
     * is also tried as a chunked body on its own. */
    n = http_parse_request(buf, size, 0, lim, req);
    if (n >= 0 && req->body_kind == HTTP_BODY_CHUNKED)
        fuzz_chunked(data + n, size - (size_t)n, FUZZ_MAX_BODY_DEFAULT, &rnd);
    fuzz_chunked(data, size, (seed >> 8) % 2 ? FUZZ_MAX_BODY_DEFAULT : UINT64_MAX, &rnd);
    free(buf);
    free(req);
    return 0;
}
