/* task_store_io.c - the store's system calls on files, EINTR retried, and copies saved beside
 * tasks.json. */
#include "task_store_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void store_err(char *err, size_t err_len, const char *fmt, ...)
{
    int saved = errno;
    if (err != NULL && err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    errno = saved;
}

ssize_t store_pread_full(int fd, char *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, off + (off_t)got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int store_pwrite_full(int fd, const char *buf, size_t n, off_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, buf + done, n - done, off + (off_t)done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        done += (size_t)w;
    }
    return 0;
}

int store_fdatasync(int fd)
{
    int r;
    while ((r = fdatasync(fd)) < 0 && errno == EINTR) {
    }
    return r;
}

int store_ftruncate(int fd, off_t len)
{
    while (ftruncate(fd, len) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

void store_sleep_us(unsigned us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int store_fsync_dir(const char *path)
{
    char copy[4096];
    if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc;
    while ((rc = fsync(fd)) < 0 && errno == EINTR) {
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int store_save_beside(const char *path, const char *kind, const char *data, size_t len,
                      int sync_dir, char *saved, size_t saved_cap)
{
    char stamp[32];
    struct tm tm;
    time_t now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    for (int n = 0; n < 100; n++) {
        int len_name = n == 0 ? snprintf(saved, saved_cap, "%s.%s-%s", path, kind, stamp)
                              : snprintf(saved, saved_cap, "%s.%s-%s-%d", path, kind, stamp, n);
        if (len_name < 0 || (size_t)len_name >= saved_cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(saved, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
            if (errno == EEXIST || errno == EINTR)
                continue;
            return -1;
        }
        int rc = store_pwrite_full(fd, data, len, 0);
        if (rc == 0)
            rc = fsync(fd);
        int saved_errno = errno;
        close(fd);
        if (rc == 0 && sync_dir)
            rc = store_fsync_dir(saved);
        if (rc < 0) {
            saved_errno = errno;
            unlink(saved);
            errno = saved_errno;
            return -1;
        }
        return 0;
    }
    errno = EEXIST;
    return -1;
}
