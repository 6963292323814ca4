/* http_chunked.c - the chunked-body decoder (RFC 9112 §7.1), in place, one byte at a time.
 *
 * A second file of the http module, not a second module: its API stays in http_parser.h.
 * The decoder is one of the two framings a request body can have (Content-Length needs no
 * code), the head parser decides which one applies, and every caller of one calls the other:
 * one header then tells the whole story of reading a request, from the first byte to the
 * last of its body (the layout is picohttpparser's, whose header carries both). The file is
 * separate because the two share nothing but the character classes (http_chars.h): a reader
 * of the head parser need not page through a state machine, and this one reads on its own.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "http_chars.h"
#include "http_parser.h"

#define CHUNK_SIZE_DIGITS_MAX 16 /* hex digits: 64 bits, so the size cannot overflow */

/*
 * A byte-at-a-time state machine, so a body may be split anywhere between reads; only chunk
 * data is copied in bulk. One step function per state reads one byte (the name of each is
 * the state's, in lower case); chunk_step() dispatches on the state, and chunk_limit_of()
 * says which limit each state's bytes count against.
 *
 *   SIZE -hex-> SIZE_MORE -hex...-> SIZE_MORE
 *   SIZE_MORE -SP/HT-> EXT_BWS -';'-> EXT;  SIZE_MORE -';'-> EXT
 *   EXT <-> EXT_QUOTED <-> EXT_ESCAPE        (extensions are skipped)
 *   SIZE_MORE/EXT -CR-> SIZE_LF -LF-> DATA (size > 0) or TRAILER (size 0)
 *   DATA -size bytes-> DATA_CR -CR-> DATA_LF -LF-> SIZE
 *   TRAILER -tchar-> TRAILER_NAME -':'-> TRAILER_VALUE -CR-> TRAILER_LF -LF-> TRAILER
 *   TRAILER -CR-> LAST_LF -LF-> DONE
 *   any byte not on an arrow -> ERROR (sticky)
 *
 * Framing lines must end with CRLF: a bare LF is refused here although the head accepts one.
 * Chunk framing is where lenient parsers disagree and request smuggling lives, and RFC 9112
 * §2.2 allows bare LF only for the start-line and header fields.
 *
 * The private fields: chunk_left is the size being read and then the data left; size_digits
 * counts hex digits; trailer_bytes counts the extension bytes of the current size line and,
 * after the last chunk, the trailer section (the two uses never overlap).
 */
enum chunk_state {
    CH_SIZE = 0, /* zero-initialized decoder starts here */
    CH_SIZE_MORE,
    CH_EXT_BWS,
    CH_EXT,
    CH_EXT_QUOTED,
    CH_EXT_ESCAPE,
    CH_SIZE_LF,
    CH_DATA, /* copied in bulk by chunk_copy_data(), no step */
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER,
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_LAST_LF,
    CH_DONE,  /* every later byte belongs to the next request */
    CH_ERROR, /* every later call fails again */
};

/* Records the error; returns -1 for the step to return. */
static int chunk_error(struct http_chunked_decoder *dec, int status, const char *why)
{
    dec->state = CH_ERROR;
    dec->error_status = status;
    dec->error = why;
    return -1;
}

/* Steps: each reads the byte c in its state, moves dec->state on, and returns 0, or -1
 * after chunk_error(). */

/* One more hex digit of the chunk size; the size grows no larger than the body may. */
static int chunk_size_digit(struct http_chunked_decoder *dec, int d, uint64_t max_body)
{
    if (dec->size_digits == CHUNK_SIZE_DIGITS_MAX)
        return chunk_error(dec, 400, "chunk size too long");
    dec->size_digits++;
    dec->chunk_left = dec->chunk_left * 16 + (unsigned)d;
    if (dec->chunk_left > max_body - dec->decoded)
        return chunk_error(dec, 413, "chunked body too large");
    dec->state = CH_SIZE_MORE;
    return 0;
}

static int chunk_size(struct http_chunked_decoder *dec, unsigned char c, uint64_t max_body)
{
    int d = http_hex_value(c);

    if (d < 0)
        return chunk_error(dec, 400, "invalid chunk size");
    return chunk_size_digit(dec, d, max_body);
}

static int chunk_size_more(struct http_chunked_decoder *dec, unsigned char c, uint64_t max_body)
{
    int d = http_hex_value(c);

    if (d >= 0)
        return chunk_size_digit(dec, d, max_body);
    if (c == ';')
        dec->state = CH_EXT;
    else if (http_is_ows(c))
        dec->state = CH_EXT_BWS;
    else if (c == '\r')
        dec->state = CH_SIZE_LF;
    else
        return chunk_error(dec, 400, "invalid chunk size line");
    return 0;
}

static int chunk_ext_bws(struct http_chunked_decoder *dec, unsigned char c)
{
    if (c == ';')
        dec->state = CH_EXT;
    else if (!http_is_ows(c))
        return chunk_error(dec, 400, "invalid chunk size line");
    return 0;
}

static int chunk_ext(struct http_chunked_decoder *dec, unsigned char c)
{
    if (c == '"')
        dec->state = CH_EXT_QUOTED;
    else if (c == '\r')
        dec->state = CH_SIZE_LF;
    else if (!http_is_tchar(c) && c != '=' && c != ';' && !http_is_ows(c))
        return chunk_error(dec, 400, "invalid chunk extension");
    return 0;
}

/* RFC 9110 §5.6.4: qdtext. */
static int is_qdtext(unsigned char c)
{
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

static int chunk_ext_quoted(struct http_chunked_decoder *dec, unsigned char c)
{
    if (c == '"')
        dec->state = CH_EXT;
    else if (c == '\\')
        dec->state = CH_EXT_ESCAPE;
    else if (!is_qdtext(c))
        return chunk_error(dec, 400, "invalid chunk extension");
    return 0;
}

/* RFC 9110 §5.6.4: what may follow a backslash in a quoted-pair. */
static int chunk_ext_escape(struct http_chunked_decoder *dec, unsigned char c)
{
    if (!http_is_field_vchar(c) && !http_is_ows(c))
        return chunk_error(dec, 400, "invalid chunk extension");
    dec->state = CH_EXT_QUOTED;
    return 0;
}

static int chunk_size_lf(struct http_chunked_decoder *dec, unsigned char c)
{
    if (c != '\n')
        return chunk_error(dec, 400, "chunk size line not ended by crlf");
    dec->trailer_bytes = 0;
    dec->state = dec->chunk_left == 0 ? CH_TRAILER : CH_DATA;
    return 0;
}

static int chunk_data_cr(struct http_chunked_decoder *dec, unsigned char c)
{
    if (c != '\r')
        return chunk_error(dec, 400, "chunk data not followed by crlf");
    dec->state = CH_DATA_LF;
    return 0;
}

static int chunk_data_lf(struct http_chunked_decoder *dec, unsigned char c)
{
    if (c != '\n')
        return chunk_error(dec, 400, "chunk data not followed by crlf");
    dec->size_digits = 0;
    dec->trailer_bytes = 0;
    dec->state = CH_SIZE;
    return 0;
}

static int chunk_trailer(struct http_chunked_decoder *dec, unsigned char c)
{
    if (c == '\r')
        dec->state = CH_LAST_LF;
    else if (http_is_tchar(c))
        dec->state = CH_TRAILER_NAME;
    else
        return chunk_error(dec, 400, "invalid trailer field");
    return 0;
}

static int chunk_trailer_name(struct http_chunked_decoder *dec, unsigned char c)
{
    if (c == ':')
        dec->state = CH_TRAILER_VALUE;
    else if (!http_is_tchar(c))
        return chunk_error(dec, 400, "invalid trailer field");
    return 0;
}

static int chunk_trailer_value(struct http_chunked_decoder *dec, unsigned char c)
{
    if (c == '\r')
        dec->state = CH_TRAILER_LF;
    else if (!http_is_field_vchar(c) && !http_is_ows(c))
        return chunk_error(dec, 400, "invalid trailer field");
    return 0;
}

static int chunk_trailer_lf(struct http_chunked_decoder *dec, unsigned char c)
{
    if (c != '\n')
        return chunk_error(dec, 400, "trailer field not ended by crlf");
    dec->state = CH_TRAILER;
    return 0;
}

static int chunk_last_lf(struct http_chunked_decoder *dec, unsigned char c)
{
    if (c != '\n')
        return chunk_error(dec, 400, "chunked body not ended by crlf");
    dec->state = CH_DONE;
    return 0;
}

/* Reads one byte of framing in the current state: the chart's dispatch. */
static int chunk_step(struct http_chunked_decoder *dec, unsigned char c, uint64_t max_body)
{
    switch (dec->state) {
    case CH_SIZE:
        return chunk_size(dec, c, max_body);
    case CH_SIZE_MORE:
        return chunk_size_more(dec, c, max_body);
    case CH_EXT_BWS:
        return chunk_ext_bws(dec, c);
    case CH_EXT:
        return chunk_ext(dec, c);
    case CH_EXT_QUOTED:
        return chunk_ext_quoted(dec, c);
    case CH_EXT_ESCAPE:
        return chunk_ext_escape(dec, c);
    case CH_SIZE_LF:
        return chunk_size_lf(dec, c);
    case CH_DATA_CR:
        return chunk_data_cr(dec, c);
    case CH_DATA_LF:
        return chunk_data_lf(dec, c);
    case CH_TRAILER:
        return chunk_trailer(dec, c);
    case CH_TRAILER_NAME:
        return chunk_trailer_name(dec, c);
    case CH_TRAILER_VALUE:
        return chunk_trailer_value(dec, c);
    case CH_TRAILER_LF:
        return chunk_trailer_lf(dec, c);
    case CH_LAST_LF:
        return chunk_last_lf(dec, c);
    default:
        assert(0 && "unreachable chunk state");
        return chunk_error(dec, 400, "invalid chunked decoder state");
    }
}

/* Which limit a state's bytes count against (see struct http_chunked_decoder). */
enum chunk_limit {
    CHUNK_LIMIT_NONE,
    CHUNK_LIMIT_EXT,     /* the extensions of one chunk-size line: max_ext_bytes */
    CHUNK_LIMIT_TRAILER, /* the trailer section, its final CRLF included: max_trailer_bytes */
};

static enum chunk_limit chunk_limit_of(int state)
{
    switch (state) {
    case CH_EXT_BWS:
    case CH_EXT:
    case CH_EXT_QUOTED:
    case CH_EXT_ESCAPE:
        return CHUNK_LIMIT_EXT;
    case CH_TRAILER:
    case CH_TRAILER_NAME:
    case CH_TRAILER_VALUE:
    case CH_TRAILER_LF:
    case CH_LAST_LF:
        return CHUNK_LIMIT_TRAILER;
    default:
        return CHUNK_LIMIT_NONE;
    }
}

/* Counts one more byte of the current state against its limit, max[limit]. Returns 0, or
 * -1 after chunk_error() when the byte is one too many. */
static int chunk_count(struct http_chunked_decoder *dec, const size_t *max)
{
    enum chunk_limit limit = chunk_limit_of(dec->state);

    if (limit == CHUNK_LIMIT_NONE || ++dec->trailer_bytes <= max[limit])
        return 0;
    if (limit == CHUNK_LIMIT_EXT)
        return chunk_error(dec, 400, "chunk extension too long");
    return chunk_error(dec, 400, "chunked trailer section too large");
}

/* In state DATA: moves as much of the chunk as buf[r..n) holds down to buf + *w, the end
 * of the decoded bytes so far. Returns the bytes taken. */
static size_t chunk_copy_data(struct http_chunked_decoder *dec, char *buf, size_t *w, size_t r,
                              size_t n)
{
    size_t k = n - r;

    if (k > dec->chunk_left)
        k = (size_t)dec->chunk_left;
    memmove(buf + *w, buf + r, k);
    *w += k;
    dec->chunk_left -= k;
    dec->decoded += k;
    if (dec->chunk_left == 0)
        dec->state = CH_DATA_CR;
    return k;
}

long http_decode_chunked(struct http_chunked_decoder *dec, char *buf, size_t *len,
                         uint64_t max_body)
{
    size_t n = *len;
    size_t r = 0; /* read position */
    size_t w = 0; /* write position of decoded data, never ahead of r */
    const size_t max[] = {
        [CHUNK_LIMIT_NONE] = SIZE_MAX,
        [CHUNK_LIMIT_EXT] = dec->max_ext_bytes ? dec->max_ext_bytes : HTTP_CHUNK_EXT_DEFAULT,
        [CHUNK_LIMIT_TRAILER] =
            dec->max_trailer_bytes ? dec->max_trailer_bytes : HTTP_CHUNK_TRAILER_DEFAULT,
    };

    assert(dec != NULL && len != NULL && (buf != NULL || n == 0));
    if (dec->state == CH_DONE) {
        *len = 0;
        return (long)n;
    }
    while (r < n && dec->state != CH_DONE && dec->state != CH_ERROR) {
        if (dec->state == CH_DATA) {
            r += chunk_copy_data(dec, buf, &w, r, n);
            continue;
        }
        if (chunk_count(dec, max) < 0 || chunk_step(dec, (unsigned char)buf[r++], max_body) < 0)
            break;
    }
    if (dec->state == CH_ERROR) {
        *len = 0;
        return -1;
    }
    *len = w;
    return dec->state == CH_DONE ? (long)(n - r) : -2;
}
