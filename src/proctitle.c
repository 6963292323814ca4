/* proctitle.c - rewrites the command line that ps shows, as nginx does, plus comm. */
#include "proctitle.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "log.h"

extern char **environ;

/* Where the title may be written: argv[0] up to the end of the last string that followed
 * it without a gap (the argv strings, then the environment strings we moved away). NULL
 * until proctitle_init() succeeds. */
static char *proctitle_start;
static char *proctitle_end;

/* Why this works, and what it costs.
 *
 * Linux reports a process's command line (/proc/PID/cmdline, hence ps and top) as the
 * bytes between two addresses fixed at exec: where the kernel copied the argv strings,
 * one after another, each with its NUL. The environment strings follow right after them.
 * So a process can write any title over its argv strings, and past them over the
 * environment strings, provided nothing still needs those bytes: we copy the environment
 * strings to the heap first and point environ[] at the copies, so getenv() and children
 * see the same environment. When the title fills the argv area, the kernel notices that
 * the last byte of that area is no longer a NUL and reads on into the old environment
 * area up to the first NUL; when it is shorter, the rest is padded with NULs.
 *
 * What it costs: /proc/PID/environ still reads the old area, so it shows the title and
 * NULs instead of the environment (use `cat /proc/PID/environ` before, or the copies via
 * a debugger); argv[] must not be read after the first title is set (taskserver copies
 * every flag into its struct config first); a string that was not contiguous with the
 * others (someone called setenv() before us) is left where it is and ends the area. */
void proctitle_init(int argc, char **argv)
{
    if (argc < 1 || argv == NULL || argv[0] == NULL)
        return;
    char *end = argv[0] + strlen(argv[0]) + 1;
    for (int i = 1; i < argc && argv[i] == end; i++)
        end = argv[i] + strlen(argv[i]) + 1;

    /* The environment strings that follow without a gap: copied as one block. */
    size_t num = 0, bytes = 0;
    char *p = end;
    for (; environ != NULL && environ[num] == p; num++) {
        size_t n = strlen(environ[num]) + 1;
        p += n;
        bytes += n;
    }
    if (num > 0) {
        char *copy = malloc(bytes);
        if (copy == NULL) {
            log_warn("process title: no memory to move %zu bytes of environment: the title "
                     "gets only the space of the command line",
                     bytes);
        } else {
            memcpy(copy, end, bytes);
            for (size_t i = 0; i < num; i++) {
                environ[i] = copy + (environ[i] - end);
            }
            end = p;
        }
    }

    /* glibc's program_invocation_name points at argv[0] (assert() and error() print it):
     * keep it readable. Out of memory: it shows the title instead, which is harmless. */
    char *name = strdup(argv[0]);
    if (name != NULL) {
        program_invocation_name = name;
        char *slash = strrchr(name, '/');
        program_invocation_short_name = slash != NULL ? slash + 1 : name;
    }
    proctitle_start = argv[0];
    proctitle_end = end;
}

void proctitle_set(const char *comm, const char *fmt, ...)
{
    /* PR_SET_NAME fails only for a bad pointer; the kernel cuts the name to 15 bytes. */
    if (comm != NULL && prctl(PR_SET_NAME, comm, 0, 0, 0) < 0)
        log_warn("prctl PR_SET_NAME \"%s\": %s", comm, strerror(errno));
    if (proctitle_start == NULL)
        return;
    size_t cap = (size_t)(proctitle_end - proctitle_start);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(proctitle_start, cap, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    /* NULs after the title: ps must not show the rest of the old command line. */
    memset(proctitle_start + len, '\0', cap - len);
}
