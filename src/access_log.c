/* access_log.c - per-request lines in the common log format, buffered and written once per loop
 * turn. */
#include "access_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "decimal.h"
#include "log.h"

#define ACCESS_LOG_BUF (64 * 1024)
#define ACCESS_LOG_LINE_MAX (ACCESS_LOG_REQUEST_MAX * 4 + 256) /* every byte escaped */
_Static_assert(ACCESS_LOG_LINE_MAX <= PIPE_BUF, "a line must fit one atomic pipe write");

static int access_log_fd = -1;
static const char *access_log_path = "";
static size_t access_log_chunk; /* bytes per write(): PIPE_BUF unless a regular file */

struct access_log {
    char buf[ACCESS_LOG_BUF];
    size_t len;
    time_t time_sec;
    char time[40]; /* "[26/Nov/2026:15:00:00 +0000]" */
    size_t time_len;
};

int access_log_open(const char *path, char *err, size_t err_len)
{
    struct stat st;
    if (path == NULL || path[0] == '\0')
        return 0;
    if (strcmp(path, "-") == 0) {
        access_log_fd = STDOUT_FILENO;
    } else {
        access_log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
        if (access_log_fd < 0) {
            snprintf(err, err_len, "access log %s: %s", path, strerror(errno));
            return -1;
        }
    }
    if (fstat(access_log_fd, &st) < 0) {
        snprintf(err, err_len, "access log %s: fstat: %s", path, strerror(errno));
        return -1;
    }
    access_log_path = path;
    /* O_APPEND writes to a regular file go in whole; on a pipe only up to
     * PIPE_BUF bytes are sure not to mix with another worker's. */
    access_log_chunk = S_ISREG(st.st_mode) ? ACCESS_LOG_BUF : PIPE_BUF;
    return 0;
}

struct access_log *access_log_create(void)
{
    if (access_log_fd < 0) {
        errno = 0;
        return NULL;
    }
    return calloc(1, sizeof(struct access_log));
}

/* Writes buf[0, len) in chunks of whole lines. */
static void access_log_write(const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        size_t n = len - off;
        if (n > access_log_chunk) {
            n = access_log_chunk;
            while (n > 0 && buf[off + n - 1] != '\n')
                n--;
            if (n == 0)
                n = access_log_chunk; /* cannot happen: a line fits a chunk */
        }
        ssize_t w = write(access_log_fd, buf + off, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            log_error("access log %s: write: %s; %zu bytes of lines dropped", access_log_path,
                      strerror(errno), len - off);
            return;
        }
        off += (size_t)w;
    }
}

void access_log_flush(struct access_log *al)
{
    if (al == NULL || al->len == 0)
        return;
    access_log_write(al->buf, al->len);
    al->len = 0;
}

void access_log_free(struct access_log *al)
{
    access_log_flush(al);
    free(al);
}

static void access_log_update_time(struct access_log *al)
{
    time_t now = time(NULL);
    if (now == al->time_sec && al->time_len > 0)
        return;
    struct tm tm;
    gmtime_r(&now, &tm);
    al->time_len = strftime(al->time, sizeof(al->time), "[%d/%b/%Y:%H:%M:%S +0000]", &tm);
    al->time_sec = now;
}

/* The peer's address as text, "-" when it cannot be had. */
static void access_log_peer(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    const void *addr = NULL;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            addr = &((struct sockaddr_in *)&ss)->sin_addr;
        else if (ss.ss_family == AF_INET6)
            addr = &((struct sockaddr_in6 *)&ss)->sin6_addr;
    }
    if (addr == NULL || inet_ntop(ss.ss_family, addr, out, (socklen_t)cap) == NULL)
        snprintf(out, cap, "-");
}

/* Copies the request line (up to CR or LF) escaped; returns the end. */
static char *access_log_put_request(char *p, const char *req, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (len > ACCESS_LOG_REQUEST_MAX)
        len = ACCESS_LOG_REQUEST_MAX;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)req[i];
        if (c == '\r' || c == '\n')
            break;
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        } else {
            *p++ = (char)c;
        }
    }
    return p;
}

void access_log_add(struct access_log *al, int fd, const char *request, size_t request_len,
                    int status, uint64_t bytes, int64_t duration_ns)
{
    char line[ACCESS_LOG_LINE_MAX];
    char peer[INET6_ADDRSTRLEN];
    if (al == NULL)
        return;
    access_log_update_time(al);
    access_log_peer(fd, peer, sizeof(peer));
    if (duration_ns < 0)
        duration_ns = 0;

    char *p = line;
    size_t n = strlen(peer);
    memcpy(p, peer, n);
    p += n;
    memcpy(p, " - - ", 5);
    p += 5;
    memcpy(p, al->time, al->time_len);
    p += al->time_len;
    memcpy(p, " \"", 2);
    p = access_log_put_request(p + 2, request, request_len);
    memcpy(p, "\" ", 2);
    p = decimal_put_u64(p + 2, (uint64_t)status);
    *p++ = ' ';
    if (bytes == 0)
        *p++ = '-';
    else
        p = decimal_put_u64(p, bytes);
    *p++ = ' ';
    p = decimal_put_u64(p, (uint64_t)duration_ns / 1000000000u);
    uint64_t us = ((uint64_t)duration_ns % 1000000000u) / 1000u;
    *p++ = '.';
    for (int i = 5; i >= 0; i--) {
        p[i] = (char)('0' + us % 10);
        us /= 10;
    }
    p += 6;
    *p++ = '\n';

    size_t len = (size_t)(p - line);
    if (al->len + len > sizeof(al->buf))
        access_log_flush(al);
    memcpy(al->buf + al->len, line, len);
    al->len += len;
}
