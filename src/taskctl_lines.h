/* taskctl_lines.h - reads a file line by line with pread(), in one fixed buffer.
 *
 * Calling sequence:
 *
 *   struct taskctl_lines r;
 *   struct taskctl_line line;
 *   if (taskctl_lines_init(&r, fd, end) < 0)        (end < 0: read to end of file)
 *       out of memory;
 *   while ((rc = taskctl_lines_next(&r, &line)) > 0)
 *       use line.text[0 .. line.len): valid until the next call;
 *   if (rc < 0) read error, errno set;
 *   taskctl_lines_release(&r);
 *
 * The caller owns fd (never closed here) and r. Memory is one buffer of
 * TASKCTL_LINES_BUF bytes whatever the size of the file: a line of up to
 * TASKCTL_LINES_MAX bytes is returned whole, a longer one cut at that size with
 * too_long set, and the rest of it skipped, so a damaged file without newlines
 * cannot make the reader grow. The text is returned as stored: a CR before the
 * newline stays in it.
 */
#ifndef TASKSERVER_TASKCTL_LINES_H
#define TASKSERVER_TASKCTL_LINES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "task_json.h"

/* A record line is at most TASK_JSON_RECORD_MAX bytes plus its comma. */
#define TASKCTL_LINES_MAX (TASK_JSON_RECORD_MAX + 64)
/* One byte more, for the newline of a line of exactly TASKCTL_LINES_MAX bytes. */
#define TASKCTL_LINES_BUF (TASKCTL_LINES_MAX + 1)

struct taskctl_line {
    const char *text; /* not NUL-terminated, without the newline */
    size_t len;
    off_t offset;    /* of text[0] in the file */
    uint64_t number; /* 1 for the first line */
    int has_newline; /* 0 for a last line that ends without one */
    int too_long;    /* the line was longer than TASKCTL_LINES_MAX and is cut */
};

struct taskctl_lines {
    int fd;
    off_t end;      /* stop reading here; < 0: at end of file */
    off_t read_pos; /* file offset of the next pread() */
    off_t buf_pos;  /* file offset of buf[0] */
    char *buf;
    size_t start; /* first byte not yet returned */
    size_t len;   /* bytes in buf */
    uint64_t number;
    int eof;
    int skipping; /* discarding the rest of a too-long line */
};

/* Returns 0, or -1 with errno ENOMEM. */
int taskctl_lines_init(struct taskctl_lines *r, int fd, off_t end);

/* Returns 1 with the next line, 0 at the end, -1 on a read error (errno). */
int taskctl_lines_next(struct taskctl_lines *r, struct taskctl_line *line);

void taskctl_lines_release(struct taskctl_lines *r);

#endif
