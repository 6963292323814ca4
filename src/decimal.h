/* decimal.h - unsigned integers to decimal text, by hand: on the request path
 * snprintf() was a measurable share of a POST (record ids, Content-Length,
 * Location) and of /health. */
#ifndef TASKSERVER_DECIMAL_H
#define TASKSERVER_DECIMAL_H

#include <stdint.h>

#define DECIMAL_U64_MAX 20 /* digits of UINT64_MAX */

/* Writes the digits of v at p (at most DECIMAL_U64_MAX bytes, no NUL) and
 * returns the end. */
static inline char *decimal_put_u64(char *p, uint64_t v)
{
    char tmp[DECIMAL_U64_MAX];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

#endif
