/* shim_fault.c - fault injection for the tests: chosen system calls fail on demand, in a
 * program under LD_PRELOAD or in a Check suite that links this file in.
 *
 *     SHIM_FAULT='RULE[;RULE...]' [SHIM_FAULT_LOG=FILE] LD_PRELOAD=.../shim_fault.so PROGRAM
 *
 *     shim_fault_set("RULE[;RULE...]");  ...  shim_fault_set(NULL);     (linked in: the
 *     executable's own definitions of the calls win over libc's; tests/shim_fault.h)
 *
 * RULE is CALL=RESULT[,OPTION...]:
 *
 *   CALL      one of the calls wrapped below: open (open and openat), stat, fstat, pread,
 *             pwrite, write, fsync, fdatasync, ftruncate, fcntl, accept4, socket, setsockopt,
 *             bind, listen, getsockname, fork, mmap, realpath (the 64-bit twins count as
 *             the same call)
 *   RESULT    an errno name (EIO, ENOSPC, ...): the call is not made and fails with it;
 *             or 0: the call is not made and returns 0 (a write of nothing, a read at
 *             the end of the file)
 *   path=S    only calls on a path, or on a descriptor whose path, ends in S
 *   has=S     only calls on a path (or a descriptor whose path) that contains S
 *   write     open, openat: only opens for writing (O_WRONLY, O_RDWR)
 *   lock      fcntl: only lock requests (F_SETLK, F_SETLKW, F_OFD_SETLK, F_OFD_SETLKW)
 *   level=N   setsockopt: only this level (IPPROTO_TCP is 6)
 *   shared    mmap: only MAP_SHARED mappings
 *   after=N   let the first N matching calls through (default 0)
 *   times=N   then fail N of them, and let every later one through (default: all)
 *   trigger=F only while the file F exists...
 *   once      ... and the first failure removes F: one failure, in whichever process gets
 *             there first (the master and workers of a server share no memory otherwise)
 *
 * Counts (after, times) are per process. Each injected failure appends one line to
 * SHIM_FAULT_LOG, "PID CALL RESULT PATH", with one write(2): a test can check that the
 * fault it meant was the one that happened. Nothing else changes: without a matching rule
 * every call goes straight through. The shim's own files go through syscall(2).
 *
 * For tests only (tests/meson.build builds it; nothing installs it).
 */
/* Both pread and pread64 (open and open64, ...) are defined: without the large-file
 * redirection, the two names are two symbols here. */
#undef _FILE_OFFSET_BITS
#include "shim_fault.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SHIM_MAX_RULES 8

enum shim_call {
    SC_OPEN,
    SC_STAT,
    SC_FSTAT,
    SC_PREAD,
    SC_PWRITE,
    SC_WRITE,
    SC_FSYNC,
    SC_FDATASYNC,
    SC_FTRUNCATE,
    SC_FCNTL,
    SC_ACCEPT4,
    SC_SOCKET,
    SC_SETSOCKOPT,
    SC_BIND,
    SC_LISTEN,
    SC_GETSOCKNAME,
    SC_FORK,
    SC_MMAP,
    SC_REALPATH,
    SC_NUM
};

static const char *const shim_call_names[SC_NUM] = {
    "open",      "stat",        "fstat", "pread",   "pwrite",  "write",      "fsync",
    "fdatasync", "ftruncate",   "fcntl", "accept4", "socket",  "setsockopt", "bind",
    "listen",    "getsockname", "fork",  "mmap",    "realpath"};

struct shim_rule {
    enum shim_call call;
    int result;      /* an errno, or 0: return 0 */
    char path[256];  /* "" any */
    char has[256];   /* "" any */
    int write_only;  /* open: O_WRONLY or O_RDWR only */
    int lock_only;   /* fcntl: lock requests only */
    int level;       /* setsockopt: -1 any */
    int shared_only; /* mmap: MAP_SHARED only */
    unsigned long after, times;
    unsigned long seen, hit;
    char trigger[512];
    int once;
};

static struct shim_rule shim_rules[SHIM_MAX_RULES];
static int shim_num_rules;
static unsigned long shim_hits;
static int shim_log_fd = -1;

/* The real calls, looked up on first use: in a linked-in copy, a libc or sanitizer
 * constructor may call one before this file's constructor has run. */
static void *shim_real(void **slot, const char *name)
{
    if (*slot == NULL) {
        *slot = dlsym(RTLD_NEXT, name);
        if (*slot == NULL) {
            static const char msg[] = "shim_fault: a symbol is missing\n";
            syscall(SYS_write, 2, msg, sizeof(msg) - 1);
            _exit(99);
        }
    }
    return *slot;
}
#define REAL(name)                                                                                 \
    static void *real_##name;                                                                      \
    __typeof__(&name) r_##name = (__typeof__(&name))shim_real(&real_##name, #name)

static int shim_errno_value(const char *name)
{
    if (strcmp(name, "0") == 0)
        return 0;
    for (int e = 1; e < 200; e++) {
        const char *n = strerrorname_np(e);
        if (n != NULL && strcmp(n, name) == 0)
            return e;
    }
    return -1;
}

static int shim_complain(const char *what, const char *text)
{
    char msg[600];
    int n = snprintf(msg, sizeof(msg), "shim_fault: %s: %s\n", what, text);
    if (n > 0)
        syscall(SYS_write, 2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    return -1;
}

/* One rule, "CALL=RESULT[,OPTION...]", into r. */
static int shim_parse_rule(char *text, struct shim_rule *r)
{
    char *save = NULL;
    char *head = strtok_r(text, ",", &save);
    char *eq = head != NULL ? strchr(head, '=') : NULL;
    if (eq == NULL)
        return shim_complain("a rule is CALL=RESULT[,OPTION...]", text);
    *eq = '\0';
    memset(r, 0, sizeof(*r));
    r->level = -1;
    r->call = SC_NUM;
    for (int c = 0; c < SC_NUM; c++)
        if (strcmp(head, shim_call_names[c]) == 0)
            r->call = (enum shim_call)c;
    if (r->call == SC_NUM)
        return shim_complain("unknown call", head);
    r->result = shim_errno_value(eq + 1);
    if (r->result < 0)
        return shim_complain("unknown errno name", eq + 1);
    for (char *opt; (opt = strtok_r(NULL, ",", &save)) != NULL;) {
        if (strncmp(opt, "path=", 5) == 0)
            snprintf(r->path, sizeof(r->path), "%s", opt + 5);
        else if (strncmp(opt, "has=", 4) == 0)
            snprintf(r->has, sizeof(r->has), "%s", opt + 4);
        else if (strcmp(opt, "write") == 0)
            r->write_only = 1;
        else if (strcmp(opt, "lock") == 0)
            r->lock_only = 1;
        else if (strcmp(opt, "shared") == 0)
            r->shared_only = 1;
        else if (strncmp(opt, "level=", 6) == 0)
            r->level = atoi(opt + 6);
        else if (strncmp(opt, "after=", 6) == 0)
            r->after = strtoul(opt + 6, NULL, 10);
        else if (strncmp(opt, "times=", 6) == 0)
            r->times = strtoul(opt + 6, NULL, 10);
        else if (strncmp(opt, "trigger=", 8) == 0)
            snprintf(r->trigger, sizeof(r->trigger), "%s", opt + 8);
        else if (strcmp(opt, "once") == 0)
            r->once = 1;
        else
            return shim_complain("unknown option", opt);
    }
    return 0;
}

int shim_fault_set(const char *spec)
{
    char copy[4096];
    struct shim_rule rules[SHIM_MAX_RULES];
    int n = 0;
    shim_num_rules = 0; /* nothing armed while the new rules are read */
    shim_hits = 0;
    if (spec == NULL || spec[0] == '\0')
        return 0;
    if (snprintf(copy, sizeof(copy), "%s", spec) >= (int)sizeof(copy))
        return shim_complain("rules too long", spec);
    char *save = NULL;
    for (char *r = strtok_r(copy, ";", &save); r != NULL; r = strtok_r(NULL, ";", &save)) {
        if (n == SHIM_MAX_RULES)
            return shim_complain("too many rules", spec);
        if (shim_parse_rule(r, &rules[n]) < 0)
            return -1;
        n++;
    }
    memcpy(shim_rules, rules, sizeof(rules[0]) * (size_t)n);
    shim_num_rules = n;
    return 0;
}

unsigned long shim_fault_hits(void)
{
    return shim_hits;
}

__attribute__((constructor)) static void shim_init(void)
{
    const char *log = getenv("SHIM_FAULT_LOG");
    if (log != NULL && log[0] != '\0') {
        shim_log_fd = (int)syscall(SYS_openat, AT_FDCWD, log,
                                   O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (shim_log_fd < 0) {
            shim_complain("cannot open SHIM_FAULT_LOG", log);
            _exit(99);
        }
    }
    /* Parsed (copied) now: taskserver writes its process title over the environment. */
    const char *spec = getenv("SHIM_FAULT");
    if (spec != NULL && shim_fault_set(spec) < 0)
        _exit(99);
}

static void shim_fd_path(int fd, char *out, size_t cap)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = syscall(SYS_readlinkat, AT_FDCWD, link, out, cap - 1);
    out[n > 0 ? n : 0] = '\0';
}

static int shim_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* What a call matches on besides its name. */
struct shim_call_info {
    const char *path; /* NULL: use fd */
    int fd;           /* -1: none */
    int flags;        /* open: its flags; mmap: its flags */
    int lock;         /* fcntl: a lock request */
    int level;        /* setsockopt */
};

/* Whether this call fails, and how: 1 with *result (an errno, or 0 for "return 0"). */
static int shim_fails(enum shim_call call, const struct shim_call_info *ci, int *result)
{
    char fd_path[PATH_MAX] = "";
    for (int i = 0; i < shim_num_rules; i++) {
        struct shim_rule *r = &shim_rules[i];
        if (r->call != call || (r->write_only && (ci->flags & O_ACCMODE) == O_RDONLY) ||
            (r->lock_only && !ci->lock) || (r->level >= 0 && ci->level != r->level) ||
            (r->shared_only && !(ci->flags & MAP_SHARED)))
            continue;
        const char *path = ci->path;
        if (r->path[0] != '\0' || r->has[0] != '\0') {
            if (path == NULL && ci->fd >= 0) {
                if (fd_path[0] == '\0')
                    shim_fd_path(ci->fd, fd_path, sizeof(fd_path));
                path = fd_path;
            }
            if (path == NULL || (r->path[0] != '\0' && !shim_ends_with(path, r->path)) ||
                (r->has[0] != '\0' && strstr(path, r->has) == NULL))
                continue;
        }
        if (r->trigger[0] != '\0' && syscall(SYS_faccessat, AT_FDCWD, r->trigger, F_OK) != 0)
            continue;
        if (r->seen++ < r->after)
            continue;
        if (r->times > 0 && r->hit >= r->times)
            continue;
        if (r->once && syscall(SYS_unlinkat, AT_FDCWD, r->trigger, 0) != 0)
            continue; /* another process took this one */
        r->hit++;
        shim_hits++;
        *result = r->result;
        if (shim_log_fd >= 0) {
            char line[PATH_MAX + 128];
            int n = snprintf(
                line, sizeof(line), "%ld %s %s %s\n", (long)getpid(), shim_call_names[call],
                r->result == 0 ? "0" : strerrorname_np(r->result), path != NULL ? path : "-");
            if (n > 0)
                syscall(SYS_write, shim_log_fd, line,
                        (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
        }
        return 1;
    }
    return 0;
}

/* The common head of every wrapper: returns from it when the call is to fail. */
#define SHIM_CHECK(call, ci, fail_value)                                                           \
    do {                                                                                           \
        int shim_result_;                                                                          \
        if (shim_num_rules > 0 && shim_fails((call), (ci), &shim_result_)) {                       \
            if (shim_result_ == 0)                                                                 \
                return 0;                                                                          \
            errno = shim_result_;                                                                  \
            return (fail_value);                                                                   \
        }                                                                                          \
    } while (0)

/* ---- files ---- */

static mode_t shim_mode(int flags, va_list ap)
{
    return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

#define SHIM_OPEN(name)                                                                            \
    int name(const char *path, int flags, ...)                                                     \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, flags);                                                                       \
        mode_t mode = shim_mode(flags, ap);                                                        \
        va_end(ap);                                                                                \
        struct shim_call_info ci = {.path = path, .fd = -1, .flags = flags};                       \
        SHIM_CHECK(SC_OPEN, &ci, -1);                                                              \
        REAL(name);                                                                                \
        return r_##name(path, flags, mode);                                                        \
    }
SHIM_OPEN(open)
SHIM_OPEN(open64)

#define SHIM_OPENAT(name)                                                                          \
    int name(int dirfd, const char *path, int flags, ...)                                          \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, flags);                                                                       \
        mode_t mode = shim_mode(flags, ap);                                                        \
        va_end(ap);                                                                                \
        struct shim_call_info ci = {.path = path, .fd = -1, .flags = flags};                       \
        SHIM_CHECK(SC_OPEN, &ci, -1);                                                              \
        REAL(name);                                                                                \
        return r_##name(dirfd, path, flags, mode);                                                 \
    }
SHIM_OPENAT(openat)
SHIM_OPENAT(openat64)

#define SHIM_STAT(name, type)                                                                      \
    int name(const char *path, type *st)                                                           \
    {                                                                                              \
        struct shim_call_info ci = {.path = path, .fd = -1};                                       \
        SHIM_CHECK(SC_STAT, &ci, -1);                                                              \
        REAL(name);                                                                                \
        return r_##name(path, st);                                                                 \
    }
SHIM_STAT(stat, struct stat)
SHIM_STAT(stat64, struct stat64)

#define SHIM_FSTAT(name, type)                                                                     \
    int name(int fd, type *st)                                                                     \
    {                                                                                              \
        struct shim_call_info ci = {.fd = fd};                                                     \
        SHIM_CHECK(SC_FSTAT, &ci, -1);                                                             \
        REAL(name);                                                                                \
        return r_##name(fd, st);                                                                   \
    }
SHIM_FSTAT(fstat, struct stat)
SHIM_FSTAT(fstat64, struct stat64)

#define SHIM_PIO(name, call, buftype)                                                              \
    ssize_t name(int fd, buftype buf, size_t len, off_t off)                                       \
    {                                                                                              \
        struct shim_call_info ci = {.fd = fd};                                                     \
        SHIM_CHECK(call, &ci, -1);                                                                 \
        REAL(name);                                                                                \
        return r_##name(fd, buf, len, off);                                                        \
    }
SHIM_PIO(pread, SC_PREAD, void *)
SHIM_PIO(pread64, SC_PREAD, void *)
SHIM_PIO(pwrite, SC_PWRITE, const void *)
SHIM_PIO(pwrite64, SC_PWRITE, const void *)

ssize_t write(int fd, const void *buf, size_t len)
{
    struct shim_call_info ci = {.fd = fd};
    SHIM_CHECK(SC_WRITE, &ci, -1);
    REAL(write);
    return r_write(fd, buf, len);
}

#define SHIM_SYNC(name, call)                                                                      \
    int name(int fd)                                                                               \
    {                                                                                              \
        struct shim_call_info ci = {.fd = fd};                                                     \
        SHIM_CHECK(call, &ci, -1);                                                                 \
        REAL(name);                                                                                \
        return r_##name(fd);                                                                       \
    }
SHIM_SYNC(fsync, SC_FSYNC)
SHIM_SYNC(fdatasync, SC_FDATASYNC)

#define SHIM_FTRUNCATE(name)                                                                       \
    int name(int fd, off_t len)                                                                    \
    {                                                                                              \
        struct shim_call_info ci = {.fd = fd};                                                     \
        SHIM_CHECK(SC_FTRUNCATE, &ci, -1);                                                         \
        REAL(name);                                                                                \
        return r_##name(fd, len);                                                                  \
    }
SHIM_FTRUNCATE(ftruncate)
SHIM_FTRUNCATE(ftruncate64)

/* fcntl's third argument is an int or a pointer: passed on as a pointer-sized word. */
#define SHIM_FCNTL(name)                                                                           \
    int name(int fd, int cmd, ...)                                                                 \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, cmd);                                                                         \
        void *arg = va_arg(ap, void *);                                                            \
        va_end(ap);                                                                                \
        struct shim_call_info ci = {.fd = fd,                                                      \
                                    .lock = cmd == F_SETLK || cmd == F_SETLKW ||                   \
                                            cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW};            \
        SHIM_CHECK(SC_FCNTL, &ci, -1);                                                             \
        REAL(name);                                                                                \
        return r_##name(fd, cmd, arg);                                                             \
    }
SHIM_FCNTL(fcntl)
SHIM_FCNTL(fcntl64)

char *realpath(const char *path, char *resolved)
{
    struct shim_call_info ci = {.path = path, .fd = -1};
    SHIM_CHECK(SC_REALPATH, &ci, NULL);
    REAL(realpath);
    return r_realpath(path, resolved);
}

/* ---- sockets and processes ---- */

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    struct shim_call_info ci = {.fd = fd};
    SHIM_CHECK(SC_ACCEPT4, &ci, -1);
    REAL(accept4);
    return r_accept4(fd, addr, len, flags);
}

int socket(int domain, int type, int protocol)
{
    struct shim_call_info ci = {.fd = -1};
    SHIM_CHECK(SC_SOCKET, &ci, -1);
    REAL(socket);
    return r_socket(domain, type, protocol);
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    struct shim_call_info ci = {.fd = fd, .level = level};
    SHIM_CHECK(SC_SETSOCKOPT, &ci, -1);
    REAL(setsockopt);
    return r_setsockopt(fd, level, name, val, len);
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct shim_call_info ci = {.fd = fd};
    SHIM_CHECK(SC_BIND, &ci, -1);
    REAL(bind);
    return r_bind(fd, addr, len);
}

int listen(int fd, int backlog)
{
    struct shim_call_info ci = {.fd = fd};
    SHIM_CHECK(SC_LISTEN, &ci, -1);
    REAL(listen);
    return r_listen(fd, backlog);
}

int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    struct shim_call_info ci = {.fd = fd};
    SHIM_CHECK(SC_GETSOCKNAME, &ci, -1);
    REAL(getsockname);
    return r_getsockname(fd, addr, len);
}

pid_t fork(void)
{
    struct shim_call_info ci = {.fd = -1};
    SHIM_CHECK(SC_FORK, &ci, -1);
    REAL(fork);
    return r_fork();
}

#define SHIM_MMAP(name)                                                                            \
    void *name(void *addr, size_t len, int prot, int flags, int fd, off_t off)                     \
    {                                                                                              \
        struct shim_call_info ci = {.fd = fd, .flags = flags};                                     \
        SHIM_CHECK(SC_MMAP, &ci, MAP_FAILED);                                                      \
        REAL(name);                                                                                \
        return r_##name(addr, len, prot, flags, fd, off);                                          \
    }
SHIM_MMAP(mmap)
SHIM_MMAP(mmap64)
