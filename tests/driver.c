/* driver.c - what the C test drivers share: options, clock, TCP client, escapes, HTTP heads. */
#include "driver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DRIVER_MAX_OPTIONS 32

/* "-p" or "--mode", for messages. */
static void option_name(const struct driver_option *o, char *buf, size_t cap)
{
    if (o->letter != 0)
        snprintf(buf, cap, "-%c", o->letter);
    else
        snprintf(buf, cap, "--%s", o->name);
}

/* Prints "PROG: MESSAGE" and the usage text, and exits 2. */
static void options_fail(const char *prog, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static void options_fail(const char *prog, const char *usage, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage);
    exit(2);
}

/* Stores the value of option o. */
static void option_store(const char *prog, const char *usage, const struct driver_option *o,
                         const char *value)
{
    char name[64];
    option_name(o, name, sizeof(name));
    if (o->kind == DRIVER_OPT_FLAG) {
        *(int *)o->dest = 1;
        return;
    }
    if (o->kind == DRIVER_OPT_TEXT) {
        *(const char **)o->dest = value;
        return;
    }
    const char *digits = value[0] == '-' ? value + 1 : value;
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (*digits < '0' || *digits > '9' || *end != '\0' || errno != 0 || v < o->min || v > o->max)
        options_fail(prog, usage, "%s \"%s\": expected an integer from %ld to %ld", name, value,
                     o->min, o->max);
    *(long *)o->dest = v;
}

int driver_options(const char *prog, const char *usage, int argc, char **argv,
                   const struct driver_option *options, size_t num_options, int stop_at_operand)
{
    char optstring[2 + 2 * DRIVER_MAX_OPTIONS + 1];
    struct option longopts[DRIVER_MAX_OPTIONS + 1];
    int seen[DRIVER_MAX_OPTIONS] = {0};
    size_t s = 0, l = 0;

    if (num_options > DRIVER_MAX_OPTIONS)
        options_fail(prog, usage, "too many options in the table");
    if (stop_at_operand)
        optstring[s++] = '+';
    optstring[s++] = ':'; /* a missing value is told from an unknown option */
    for (size_t i = 0; i < num_options; i++) {
        const struct driver_option *o = &options[i];
        int has_arg = o->kind != DRIVER_OPT_FLAG;
        if (o->letter != 0) {
            optstring[s++] = (char)o->letter;
            if (has_arg)
                optstring[s++] = ':';
        }
        if (o->name != NULL)
            longopts[l++] = (struct option){o->name, has_arg ? required_argument : no_argument,
                                            NULL, o->letter != 0 ? o->letter : 256 + (int)i};
    }
    optstring[s] = '\0';
    longopts[l] = (struct option){NULL, 0, NULL, 0};

    int c;
    while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
        if (c == '?' && strncmp(argv[optind - 1], "--", 2) == 0)
            options_fail(prog, usage, "bad option %s (unknown, or a value it does not take)",
                         argv[optind - 1]);
        if (c == '?')
            options_fail(prog, usage, "unknown option -%c", optopt);
        int missing = c == ':';
        if (missing)
            c = optopt;
        size_t i = 0;
        while (i < num_options && options[i].letter != c &&
               !(options[i].letter == 0 && c == 256 + (int)i))
            i++;
        if (i == num_options)
            options_fail(prog, usage, "unknown option %s", argv[optind - 1]);
        char name[64];
        option_name(&options[i], name, sizeof(name));
        if (missing)
            options_fail(prog, usage, "%s needs a value", name);
        option_store(prog, usage, &options[i], optarg);
        seen[i] = 1;
    }
    for (size_t i = 0; i < num_options; i++) {
        char name[64];
        option_name(&options[i], name, sizeof(name));
        if (options[i].required && !seen[i])
            options_fail(prog, usage, "%s is required", name);
    }
    return optind;
}

long long driver_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long driver_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void driver_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int driver_connect(const char *addr, long port, int rcvbuf)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (port < 1 || port > 65535 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
        (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0))
        goto fail;
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        goto fail;
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int driver_send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* The value of a hex digit, or -1. Deliberately not the parser's http_hex_value()
 * (src/http_chars.h, private to the parser): the bytes a test sends must not depend on the
 * code under test, or a bug there would shape its own test input. */
static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *driver_unescape(const char *s, size_t *out_len)
{
    static const char from[] = "rnt0\\", to[] = "\r\n\t\0\\";
    size_t n = strlen(s), o = 0;
    char *out = malloc(n + 1);
    if (out == NULL) {
        perror("malloc");
        exit(3);
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 == n) {
            out[o++] = s[i];
            continue;
        }
        char c = s[++i];
        const char *esc = c != '\0' ? strchr(from, c) : NULL;
        if (c == 'x' && i + 2 < n && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out[o++] = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else if (esc != NULL) {
            out[o++] = to[esc - from];
        } else { /* not an escape: kept as it is */
            out[o++] = '\\';
            out[o++] = c;
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

int driver_http_status(const char *head, size_t head_len)
{
    if (head_len < 12 || memcmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ')
        return -1;
    int status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (head[i] < '0' || head[i] > '9')
            return -1;
        status = status * 10 + (head[i] - '0');
    }
    return status;
}

const char *driver_http_header(const char *head, size_t head_len, const char *name,
                               size_t *value_len)
{
    size_t name_len = strlen(name);
    const char *end = head + head_len;
    const char *line = memmem(head, head_len, "\r\n", 2); /* past the first line */
    while (line != NULL && (line += 2) < end) {
        const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (eol == NULL)
            eol = end;
        if (eol == line)
            break; /* the blank line */
        if ((size_t)(eol - line) > name_len && line[name_len] == ':' &&
            strncasecmp(line, name, name_len) == 0) {
            const char *v = line + name_len + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *value_len = (size_t)(ve - v);
            return v;
        }
        line = eol < end ? eol : NULL;
    }
    return NULL;
}
