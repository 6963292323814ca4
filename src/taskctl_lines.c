/* taskctl_lines.c - line-by-line pread() reader with a fixed buffer, for taskctl. */
#include "taskctl_lines.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int taskctl_lines_init(struct taskctl_lines *r, int fd, off_t end)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->end = end;
    r->buf = malloc(TASKCTL_LINES_BUF);
    if (r->buf == NULL)
        return -1;
    return 0;
}

void taskctl_lines_release(struct taskctl_lines *r)
{
    free(r->buf);
    r->buf = NULL;
}

/* Moves the unreturned bytes to the front and reads more behind them.
 * Returns 0 (r->eof set at the end), or -1 with errno. */
static int lines_fill(struct taskctl_lines *r)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->len - r->start);
        r->buf_pos += (off_t)r->start;
        r->len -= r->start;
        r->start = 0;
    }
    size_t want = TASKCTL_LINES_BUF - r->len;
    if (r->end >= 0) {
        off_t left = r->end - r->read_pos;
        if (left <= 0) {
            r->eof = 1;
            return 0;
        }
        if ((off_t)want > left)
            want = (size_t)left;
    }
    ssize_t n;
    do
        n = pread(r->fd, r->buf + r->len, want, r->read_pos);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if (n == 0)
        r->eof = 1;
    r->len += (size_t)n;
    r->read_pos += n;
    return 0;
}

static void lines_emit(struct taskctl_lines *r, struct taskctl_line *line, size_t len, int nl,
                       int too_long)
{
    line->text = r->buf + r->start;
    line->len = len;
    line->offset = r->buf_pos + (off_t)r->start;
    line->number = ++r->number;
    line->has_newline = nl;
    line->too_long = too_long;
    r->start += len + (nl ? 1 : 0);
}

int taskctl_lines_next(struct taskctl_lines *r, struct taskctl_line *line)
{
    for (;;) {
        char *p = r->buf + r->start;
        size_t avail = r->len - r->start;
        char *nl = memchr(p, '\n', avail);
        if (r->skipping) {
            if (nl != NULL) {
                r->start += (size_t)(nl - p) + 1;
                r->skipping = 0;
                continue;
            }
            r->start = r->len;
        } else if (nl != NULL) {
            lines_emit(r, line, (size_t)(nl - p), 1, 0);
            return 1;
        } else if (avail == TASKCTL_LINES_BUF) {
            /* A full buffer and no newline: the line is longer than TASKCTL_LINES_MAX.
             * Hand out that much, skip the rest. */
            lines_emit(r, line, TASKCTL_LINES_MAX, 0, 1);
            r->skipping = 1;
            return 1;
        } else if (r->eof) {
            if (avail == 0)
                return 0;
            lines_emit(r, line, avail, 0, 0);
            return 1;
        }
        if (r->eof)
            return 0;
        if (lines_fill(r) < 0)
            return -1;
    }
}
