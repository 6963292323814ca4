/* client_barrier.c - a start barrier and an overlap report through files in a shared folder. */
#include "client_barrier.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint64_t client_barrier_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void client_barrier_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int client_barrier_init(struct client_barrier *b, const char *dir, const char *id, unsigned parties,
                        long timeout_ms, char *err, size_t err_len)
{
    memset(b, 0, sizeof(*b));
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 0 || n + 32 + CLIENT_BARRIER_NAME_MAX >= sizeof(b->dir)) {
        snprintf(err, err_len, "barrier folder \"%.64s\": must be 1 to %zu bytes", dir,
                 sizeof(b->dir) - 33 - CLIENT_BARRIER_NAME_MAX);
        return -1;
    }
    memcpy(b->dir, dir, n);
    b->dir[n] = '\0';
    size_t i = 0;
    for (; id[i] != '\0' && i < sizeof(b->name) - 1; i++) {
        char c = id[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '@' || c == '-';
        b->name[i] = ok ? c : '_';
    }
    b->name[i] = '\0';
    if (i == 0 || b->name[0] == '.') {
        snprintf(err, err_len, "client id \"%.64s\": cannot name a barrier file", id);
        return -1;
    }
    if (parties < 1) {
        snprintf(err, err_len, "barrier: the number of clients must be at least 1");
        return -1;
    }
    b->parties = parties;
    b->timeout_ms = timeout_ms;
    return 0;
}

/* out = a + "/" + b. Returns 0, or -1 with err when it does not fit (init() bounds the
 * folder, so this is only a guard). */
static int client_barrier_join(char *out, size_t cap, const char *a, const char *b, char *err,
                               size_t err_len)
{
    int n = snprintf(out, cap, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, err_len, "barrier path %.64s/%.64s...: too long", a, b);
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* mkdir that accepts an existing folder. */
static int client_barrier_mkdir(const char *path, char *err, size_t err_len)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    snprintf(err, err_len, "mkdir %s: %s", path, strerror(errno));
    return -1;
}

/* Writes text to DIR/SUB/NAME through a temporary file and rename(). With exclusive, an
 * existing DIR/SUB/NAME is an error (EEXIST). */
static int client_barrier_write(const struct client_barrier *b, const char *sub, const char *text,
                                int exclusive, char *err, size_t err_len)
{
    char folder[CLIENT_BARRIER_PATH_MAX], path[CLIENT_BARRIER_PATH_MAX],
        tmp[CLIENT_BARRIER_PATH_MAX], tmp_name[CLIENT_BARRIER_NAME_MAX + 32];
    snprintf(tmp_name, sizeof(tmp_name), ".%s.%ld", b->name, (long)getpid());
    if (client_barrier_join(folder, sizeof(folder), b->dir, sub, err, err_len) < 0 ||
        client_barrier_join(path, sizeof(path), folder, b->name, err, err_len) < 0 ||
        client_barrier_join(tmp, sizeof(tmp), folder, tmp_name, err, err_len) < 0 ||
        client_barrier_mkdir(folder, err, err_len) < 0)
        return -1;
    if (exclusive && access(path, F_OK) == 0) {
        snprintf(err, err_len,
                 "%s exists: a client with this id already arrived (a barrier folder serves one "
                 "run; give each client its own id)",
                 path);
        errno = EEXIST;
        return -1;
    }
    int fd;
    do
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        snprintf(err, err_len, "open %s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            snprintf(err, err_len, "write %s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)w;
    }
    if (close(fd) < 0 && errno != EINTR) {
        snprintf(err, err_len, "close %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) < 0) {
        snprintf(err, err_len, "rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Calls fn(arg, text) for each whole file in DIR/SUB (not the temporary ones). Returns the
 * number of files, or -1 with err. */
static int client_barrier_scan(const struct client_barrier *b, const char *sub,
                               void (*fn)(void *arg, const char *text), void *arg, char *err,
                               size_t err_len)
{
    char folder[CLIENT_BARRIER_PATH_MAX], path[CLIENT_BARRIER_PATH_MAX];
    if (client_barrier_join(folder, sizeof(folder), b->dir, sub, err, err_len) < 0)
        return -1;
    DIR *d = opendir(folder);
    if (d == NULL) {
        snprintf(err, err_len, "open folder %s: %s", folder, strerror(errno));
        return -1;
    }
    int count = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        count++;
        if (fn == NULL)
            continue;
        char text[512];
        if (client_barrier_join(path, sizeof(path), folder, e->d_name, err, err_len) < 0) {
            closedir(d);
            return -1;
        }
        FILE *f = fopen(path, "re");
        if (f == NULL) {
            snprintf(err, err_len, "open %s: %s", path, strerror(errno));
            closedir(d);
            return -1;
        }
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        text[n] = '\0';
        fclose(f);
        fn(arg, text);
        errno = 0;
    }
    int saved = errno;
    closedir(d);
    if (saved != 0) {
        snprintf(err, err_len, "read folder %s: %s", folder, strerror(saved));
        return -1;
    }
    return count;
}

/* Polls DIR/SUB until it holds at least want files or deadline_ns (CLOCK_REALTIME) passes.
 * Returns the count seen last, or -1 with err. */
static int client_barrier_wait_count(const struct client_barrier *b, const char *sub, unsigned want,
                                     uint64_t deadline_ns, char *err, size_t err_len)
{
    for (;;) {
        int n = client_barrier_scan(b, sub, NULL, NULL, err, err_len);
        if (n < 0 || (unsigned)n >= want || client_barrier_now_ns() >= deadline_ns)
            return n;
        client_barrier_sleep_ms(CLIENT_BARRIER_POLL_MS);
    }
}

static uint64_t client_barrier_field(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p != NULL ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static void client_barrier_max_arrival(void *arg, const char *text)
{
    uint64_t *max = arg, t = client_barrier_field(text, "arrived_ns=");
    if (t > *max)
        *max = t;
}

int client_barrier_start(struct client_barrier *b, char *err, size_t err_len)
{
    char text[64];
    uint64_t now = client_barrier_now_ns();
    uint64_t deadline = now + (uint64_t)b->timeout_ms * 1000000u;
    if (client_barrier_mkdir(b->dir, err, err_len) < 0)
        return -1;
    snprintf(text, sizeof(text), "arrived_ns=%" PRIu64 "\n", now);
    if (client_barrier_write(b, "ready", text, 1, err, err_len) < 0)
        return -1;
    int n = client_barrier_wait_count(b, "ready", b->parties, deadline, err, err_len);
    if (n < 0)
        return -1;
    if ((unsigned)n < b->parties) {
        snprintf(err, err_len, "barrier %s/ready: only %d of %u clients arrived within %.1f s",
                 b->dir, n, b->parties, (double)b->timeout_ms / 1000);
        return -1;
    }
    uint64_t last = 0;
    n = client_barrier_scan(b, "ready", client_barrier_max_arrival, &last, err, err_len);
    if (n < 0)
        return -1;
    b->num_ready = (unsigned)n;
    b->start_ns = last + (uint64_t)CLIENT_BARRIER_LEAD_MS * 1000000u;
    struct timespec at = {(time_t)(b->start_ns / 1000000000u), (long)(b->start_ns % 1000000000u)};
    int rc;
    while ((rc = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL)) == EINTR)
        ;
    if (rc != 0) {
        snprintf(err, err_len, "clock_nanosleep until the barrier's start: %s", strerror(rc));
        return -1;
    }
    now = client_barrier_now_ns();
    b->late_ns = now > b->start_ns ? now - b->start_ns : 0;
    return 0;
}

struct client_barrier_spans {
    struct client_barrier_span s[64];
    unsigned num;
    unsigned dropped; /* beyond the array: not in the overlap */
};

static void client_barrier_add_span(void *arg, const char *text)
{
    struct client_barrier_spans *sp = arg;
    if (sp->num == sizeof(sp->s) / sizeof(sp->s[0])) {
        sp->dropped++;
        return;
    }
    struct client_barrier_span *s = &sp->s[sp->num++];
    s->start_ns = client_barrier_field(text, "start_ns=");
    s->end_ns = client_barrier_field(text, "end_ns=");
    s->sent = client_barrier_field(text, "sent=");
    s->acked = client_barrier_field(text, "acked=");
    if (s->end_ns < s->start_ns)
        s->end_ns = s->start_ns;
}

static int client_barrier_cmp_start(const void *a, const void *b)
{
    const struct client_barrier_span *x = a, *y = b;
    return (x->start_ns > y->start_ns) - (x->start_ns < y->start_ns);
}

/* Fills ov from the spans: mine is one of them (the first equal to it is taken as mine). */
static void client_barrier_overlap(struct client_barrier_spans *sp,
                                   const struct client_barrier_span *mine,
                                   struct client_barrier_overlap *ov)
{
    memset(ov, 0, sizeof(*ov));
    ov->num_spans = sp->num;
    ov->mine_ns = mine->end_ns - mine->start_ns;
    qsort(sp->s, sp->num, sizeof(sp->s[0]), client_barrier_cmp_start);
    uint64_t all_from = 0, all_to = UINT64_MAX, cur_from = 0, cur_to = 0;
    int have_cur = 0, skipped_mine = 0;
    /* The union of every span, and of the others' spans intersected with mine. */
    uint64_t o_from = 0, o_to = 0;
    int have_o = 0;
    for (unsigned i = 0; i < sp->num; i++) {
        const struct client_barrier_span *s = &sp->s[i];
        if (s->start_ns > all_from)
            all_from = s->start_ns;
        if (s->end_ns < all_to)
            all_to = s->end_ns;
        if (have_cur && s->start_ns <= cur_to) {
            if (s->end_ns > cur_to)
                cur_to = s->end_ns;
        } else {
            if (have_cur)
                ov->union_ns += cur_to - cur_from;
            cur_from = s->start_ns;
            cur_to = s->end_ns;
            have_cur = 1;
        }
        if (!skipped_mine && s->start_ns == mine->start_ns && s->end_ns == mine->end_ns) {
            skipped_mine = 1;
            continue;
        }
        uint64_t from = s->start_ns > mine->start_ns ? s->start_ns : mine->start_ns;
        uint64_t to = s->end_ns < mine->end_ns ? s->end_ns : mine->end_ns;
        if (from >= to)
            continue;
        if (have_o && from <= o_to) {
            if (to > o_to)
                o_to = to;
        } else {
            if (have_o)
                ov->shared_ns += o_to - o_from;
            o_from = from;
            o_to = to;
            have_o = 1;
        }
    }
    if (have_cur)
        ov->union_ns += cur_to - cur_from;
    if (have_o)
        ov->shared_ns += o_to - o_from;
    ov->all_ns = sp->num > 0 && all_to > all_from ? all_to - all_from : 0;
}

int client_barrier_finish(struct client_barrier *b, const struct client_barrier_span *mine,
                          struct client_barrier_overlap *ov, char *err, size_t err_len)
{
    char text[256];
    uint64_t deadline = client_barrier_now_ns() + (uint64_t)b->timeout_ms * 1000000u;
    memset(ov, 0, sizeof(*ov));
    snprintf(text, sizeof(text),
             "start_ns=%" PRIu64 "\nend_ns=%" PRIu64 "\nsent=%" PRIu64 "\nacked=%" PRIu64 "\n",
             mine->start_ns, mine->end_ns, mine->sent, mine->acked);
    if (client_barrier_write(b, "done", text, 0, err, err_len) < 0)
        return -1;
    int n = client_barrier_wait_count(b, "done", b->parties, deadline, err, err_len);
    if (n < 0)
        return -1;
    struct client_barrier_spans *sp = calloc(1, sizeof(*sp));
    if (sp == NULL) {
        snprintf(err, err_len, "barrier %s/done: out of memory", b->dir);
        return -1;
    }
    n = client_barrier_scan(b, "done", client_barrier_add_span, sp, err, err_len);
    if (n >= 0)
        client_barrier_overlap(sp, mine, ov);
    free(sp);
    if (n < 0)
        return -1;
    if ((unsigned)n < b->parties) {
        snprintf(err, err_len, "barrier %s/done: only %d of %u clients finished within %.1f s",
                 b->dir, n, b->parties, (double)b->timeout_ms / 1000);
        return 1;
    }
    return 0;
}

int client_barrier_result(const struct client_barrier *b, const char *text, char *err,
                          size_t err_len)
{
    return client_barrier_write(b, "result", text, 0, err, err_len);
}
