/* http_chars.h - the character classes of RFC 9110, shared by the two halves of the http
 * module: the head parser (http_parser.c) and the chunked-body decoder (http_chunked.c).
 *
 * Private to those two files: every other module goes through http_parser.h. Pure functions
 * of one byte, static inline, so each file keeps its own copy and nothing is exported.
 */
#ifndef TASKSERVER_HTTP_CHARS_H
#define TASKSERVER_HTTP_CHARS_H

/* RFC 9110 §5.6.2: token characters. */
static inline int http_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return 1;
    default:
        return 0;
    }
}

/* RFC 9110 §5.5: field-vchar (VCHAR or obs-text), i.e. neither a control nor DEL nor SP. */
static inline int http_is_field_vchar(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

/* RFC 9110 §5.6.3: optional whitespace, one byte of it. */
static inline int http_is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* The value of a hex digit, or -1. */
static inline int http_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
