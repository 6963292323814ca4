/* shim_fsync.c - an LD_PRELOAD shim for the fsync tests: logs syncs, writes and responses in
 * the order they happen, and makes a chosen sync fail.
 *
 *     SHIM_FSYNC_LOG=FILE [SHIM_FSYNC_FAIL_NEXT=TRIGGER] LD_PRELOAD=.../shim_fsync.so taskserver
 * ...
 *
 * Appends one line per event to FILE, fields separated by tabs:
 *
 *     SEQ PID EVENT RESULT PATH DATA
 *
 *   SEQ     a sequence number shared by the process and every child it forks (a counter
 *           in a MAP_SHARED page set up before main), so lines order events across the
 *           master and its workers; each line is one write(2) to an O_APPEND file
 *   EVENT   fdatasync, fsync (RESULT: 0, or the errno name), logged when the call returns,
 *           and fdatasync-call, fsync-call (RESULT: -) logged before it is made (with group
 *           commit a sync covers the writes that completed before its call);
 *           pwrite (a regular file; RESULT: BYTES@OFFSET written), logged when it returns;
 *           create (open or openat with O_CREAT of a file that did not exist; RESULT: fd);
 *           send (write, writev, send, sendto or sendmsg on a socket; RESULT: -), logged
 *           BEFORE the call: a response logged here has not reached the client yet
 *   PATH    the file, read back from /proc/self/fd (a directory for a directory fsync)
 *   DATA    the first bytes written (at most 400; pwrite and send), non-printable
 *           bytes as \xHH
 *
 * SHIM_FSYNC_FAIL_NEXT=TRIGGER: while the file TRIGGER exists, the next fdatasync or fsync
 * of a path ending in SHIM_FSYNC_FAIL_SUFFIX (default "tasks.json") is not done and fails
 * with EIO (logged with RESULT EIO), and TRIGGER is removed: one failure per trigger, in
 * whichever process gets to it first (unlink decides). A test creates TRIGGER right
 * before the request whose sync must fail, however many syncs the start-up made.
 * SHIM_FSYNC_FAIL_DELAY_MS=N: that failing call first sleeps N ms (after removing TRIGGER),
 * a sync still in progress while other processes go on.
 * SHIM_FSYNC_GROW=FILE: the first fsync of a torn tail's saved copy (a path with ".torn-")
 * first appends a line to FILE: another program writing while the cut is under way.
 *
 * For tests only (tests/meson.build builds it as a shared module; nothing installs it).
 * The shim's own writes go through syscall(2), never through the functions it wraps.
 */
/* Both pwrite and pwrite64 (open and open64, ...) are wrapped: without the large-file
 * redirection, the two names are two symbols here. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SHIM_DATA_MAX 400

struct shim_shared {
    unsigned long seq; /* events logged */
};

static struct shim_shared *shim_shared;
static int shim_log_fd = -1;
static const char *shim_fail_next;
static long shim_fail_delay_ms;
static const char *shim_grow;
static const char *shim_fail_suffix = "tasks.json";

static int (*real_fdatasync)(int);
static int (*real_fsync)(int);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);

static void *shim_sym(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (p == NULL) {
        static const char msg[] = "shim_fsync: a symbol is missing\n";
        syscall(SYS_write, 2, msg, sizeof(msg) - 1);
        _exit(99);
    }
    return p;
}

__attribute__((constructor)) static void shim_init(void)
{
    real_fdatasync = shim_sym("fdatasync");
    real_fsync = shim_sym("fsync");
    real_pwrite = shim_sym("pwrite");
    real_pwrite64 = shim_sym("pwrite64");
    real_write = shim_sym("write");
    real_writev = shim_sym("writev");
    real_send = shim_sym("send");
    real_sendto = shim_sym("sendto");
    real_sendmsg = shim_sym("sendmsg");
    real_open = shim_sym("open");
    real_open64 = shim_sym("open64");
    real_openat = shim_sym("openat");
    real_openat64 = shim_sym("openat64");
    const char *log = getenv("SHIM_FSYNC_LOG");
    if (log == NULL || log[0] == '\0')
        return; /* nothing to log: pass everything through */
    shim_shared =
        mmap(NULL, sizeof(*shim_shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shim_shared == MAP_FAILED) {
        perror("shim_fsync: mmap");
        _exit(99);
    }
    shim_log_fd =
        (int)syscall(SYS_openat, AT_FDCWD, log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (shim_log_fd < 0) {
        fprintf(stderr, "shim_fsync: %s: %s\n", log, strerror(errno));
        _exit(99);
    }
    /* Copied: taskserver's proctitle_init() writes its process title over the environment
     * strings that getenv() points into. */
    static char fail_next[4096], fail_suffix[256];
    const char *next = getenv("SHIM_FSYNC_FAIL_NEXT");
    if (next != NULL && snprintf(fail_next, sizeof(fail_next), "%s", next) < (int)sizeof(fail_next))
        shim_fail_next = fail_next;
    static char grow[4096];
    const char *g = getenv("SHIM_FSYNC_GROW");
    if (g != NULL && snprintf(grow, sizeof(grow), "%s", g) < (int)sizeof(grow))
        shim_grow = grow;
    const char *delay = getenv("SHIM_FSYNC_FAIL_DELAY_MS");
    if (delay != NULL)
        shim_fail_delay_ms = strtol(delay, NULL, 10);
    const char *suffix = getenv("SHIM_FSYNC_FAIL_SUFFIX");
    if (suffix != NULL && suffix[0] != '\0' &&
        snprintf(fail_suffix, sizeof(fail_suffix), "%s", suffix) < (int)sizeof(fail_suffix))
        shim_fail_suffix = fail_suffix;
}

static void shim_path(int fd, char *out, size_t cap)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, cap - 1);
    if (n < 0)
        n = 0;
    out[n] = '\0';
}

static int shim_is(int fd, mode_t type)
{
    struct stat st;
    return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == type;
}

/* One line, one write(2) to the O_APPEND log: lines never interleave. */
static void shim_log(const char *event, const char *result, const char *path, const void *data,
                     size_t len)
{
    if (shim_log_fd < 0)
        return;
    int saved = errno;
    char line[4096 + 2 * 1024];
    unsigned long seq = __atomic_add_fetch(&shim_shared->seq, 1, __ATOMIC_SEQ_CST);
    int n = snprintf(line, sizeof(line), "%lu\t%ld\t%s\t%s\t%s\t", seq, (long)getpid(), event,
                     result, path);
    size_t off = n > 0 && (size_t)n < sizeof(line) ? (size_t)n : 0;
    const unsigned char *p = data;
    for (size_t i = 0; i < len && i < SHIM_DATA_MAX && off + 5 < sizeof(line); i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            line[off++] = (char)p[i];
        else
            off += (size_t)snprintf(line + off, sizeof(line) - off, "\\x%02x", p[i]);
    }
    line[off++] = '\n';
    syscall(SYS_write, shim_log_fd, line, off);
    errno = saved;
}

static int shim_sync(int (*real)(int), const char *event, int fd)
{
    char path[4096];
    if (shim_log_fd < 0)
        return real(fd);
    shim_path(fd, path, sizeof(path));
    char call[32];
    snprintf(call, sizeof(call), "%s-call", event);
    shim_log(call, "-", path, NULL, 0);
    size_t plen = strlen(path), slen = strlen(shim_fail_suffix);
    if (shim_grow != NULL && strstr(path, ".torn-") != NULL) {
        int gfd = (int)syscall(SYS_openat, AT_FDCWD, shim_grow, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (gfd >= 0) {
            static const char line[] = "\n{\"added\":\"by another program\"}\n";
            syscall(SYS_write, gfd, line, sizeof(line) - 1);
            syscall(SYS_close, gfd);
        }
        shim_grow = NULL;
    }
    if (shim_fail_next != NULL && plen >= slen &&
        strcmp(path + plen - slen, shim_fail_suffix) == 0 &&
        syscall(SYS_unlinkat, AT_FDCWD, shim_fail_next, 0) == 0) {
        if (shim_fail_delay_ms > 0) {
            struct timespec ts = {shim_fail_delay_ms / 1000, shim_fail_delay_ms % 1000 * 1000000};
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
            }
        }
        shim_log(event, "EIO", path, NULL, 0);
        errno = EIO;
        return -1;
    }
    int rc = real(fd);
    int e = errno;
    shim_log(event, rc == 0 ? "0" : strerrorname_np(e), path, NULL, 0);
    errno = e;
    return rc;
}

int fdatasync(int fd)
{
    return shim_sync(real_fdatasync, "fdatasync", fd);
}

int fsync(int fd)
{
    return shim_sync(real_fsync, "fsync", fd);
}

static ssize_t shim_pwrite(ssize_t (*real)(int, const void *, size_t, off_t), int fd,
                           const void *buf, size_t len, off_t off)
{
    ssize_t n = real(fd, buf, len, off);
    if (shim_log_fd >= 0 && n >= 0 && shim_is(fd, S_IFREG)) {
        int e = errno;
        char path[4096], result[32];
        shim_path(fd, path, sizeof(path));
        snprintf(result, sizeof(result), "%zd@%lld", n, (long long)off);
        shim_log("pwrite", result, path, buf, (size_t)n);
        errno = e;
    }
    return n;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    return shim_pwrite(real_pwrite, fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
    return shim_pwrite(real_pwrite64, fd, buf, len, off);
}

/* A write to a socket, logged before it happens. */
static void shim_send(int fd, const void *data, size_t len)
{
    if (shim_log_fd < 0 || fd == shim_log_fd || !shim_is(fd, S_IFSOCK))
        return;
    shim_log("send", "-", "socket", data, len);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    shim_send(fd, buf, len);
    return real_write(fd, buf, len);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (iovcnt > 0)
        shim_send(fd, iov[0].iov_base, iov[0].iov_len);
    return real_writev(fd, iov, iovcnt);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    shim_send(fd, buf, len);
    return real_send(fd, buf, len, flags);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
               socklen_t to_len)
{
    shim_send(fd, buf, len);
    return real_sendto(fd, buf, len, flags, to, to_len);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (msg != NULL && msg->msg_iovlen > 0)
        shim_send(fd, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len);
    return real_sendmsg(fd, msg, flags);
}

/* open and openat with O_CREAT: "create" when the file did not exist before. */
static int shim_open(int dirfd, const char *path, int flags, mode_t mode, int at, int big)
{
    int existed = 1;
    if (shim_log_fd >= 0 && (flags & O_CREAT))
        existed = faccessat(dirfd, path, F_OK, 0) == 0;
    int fd;
    if (at)
        fd = big ? real_openat64(dirfd, path, flags, mode) : real_openat(dirfd, path, flags, mode);
    else
        fd = big ? real_open64(path, flags, mode) : real_open(path, flags, mode);
    if (!existed && fd >= 0) {
        int e = errno;
        char full[4096], result[32];
        shim_path(fd, full, sizeof(full));
        snprintf(result, sizeof(result), "%d", fd);
        shim_log("create", result, full, NULL, 0);
        errno = e;
    }
    return fd;
}

static mode_t shim_mode(int flags, va_list ap)
{
    return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = shim_mode(flags, ap);
    va_end(ap);
    return shim_open(AT_FDCWD, path, flags, mode, 0, 0);
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = shim_mode(flags, ap);
    va_end(ap);
    return shim_open(AT_FDCWD, path, flags, mode, 0, 1);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = shim_mode(flags, ap);
    va_end(ap);
    return shim_open(dirfd, path, flags, mode, 1, 0);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = shim_mode(flags, ap);
    va_end(ap);
    return shim_open(dirfd, path, flags, mode, 1, 1);
}
