/* http_limits.h - the limits a request head is held to: what the parser enforces and what the
 * configuration lets an operator set.
 *
 * Usage: the server's wiring (conn.c) fills a struct http_limits from its configuration and
 * passes it to http_parse_request() (http_parser.h, which includes this file). config.c bounds
 * --max-headers by HTTP_MAX_HEADERS_CAP, the size of the parser's field array.
 *
 * Why a header of its own: the cap is a fact of the request layout that two layers must agree
 * on, the one that parses and the one that validates flags before fork. Kept in
 * http_parser.h it made config.c depend on the whole parser for one number; kept in config.h
 * it would make the parser depend on the server's flags. Here it depends on nothing and both
 * see it. Declarations only, no code.
 */
#ifndef TASKSERVER_HTTP_LIMITS_H
#define TASKSERVER_HTTP_LIMITS_H

#include <stddef.h>

#define HTTP_MAX_HEADERS_CAP 128 /* array size; the configured limit may be lower */

struct http_limits {
    size_t max_request_line; /* bytes, default 8192: longer -> 414 */
    size_t max_header_bytes; /* whole head from buf[0] (request line, fields, final
                                empty line), default 16384: longer -> 431 */
    size_t max_headers;      /* fields, default 100 (<= HTTP_MAX_HEADERS_CAP): more -> 431 */
};

#endif
