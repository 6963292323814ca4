/* event_loop.c - epoll with a callback table indexed by descriptor (redis ae style). */
#include "event_loop.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define EVENT_LOOP_BATCH 256 /* events fetched per epoll_pwait */

struct event_loop_entry {
    event_loop_fn *fn; /* NULL: not registered */
    void *arg;
    unsigned mask;
    uint32_t gen; /* bumped on every add: tells stale queued events apart */
};

struct event_loop {
    int epfd;
    struct event_loop_entry *entries; /* indexed by fd */
    size_t num_entries;
    uint32_t next_gen;
    struct epoll_event events[EVENT_LOOP_BATCH];
};

struct event_loop *event_loop_create(void)
{
    struct event_loop *loop = calloc(1, sizeof(*loop));
    if (loop == NULL)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        int saved_errno = errno;
        free(loop);
        errno = saved_errno;
        return NULL;
    }
    return loop;
}

void event_loop_free(struct event_loop *loop)
{
    if (loop == NULL)
        return;
    close(loop->epfd);
    free(loop->entries);
    free(loop);
}

static uint32_t event_loop_epoll_mask(unsigned mask)
{
    uint32_t ev = 0;
    if (mask & EVENT_LOOP_READ)
        ev |= EPOLLIN;
    if (mask & EVENT_LOOP_WRITE)
        ev |= EPOLLOUT;
    if (mask & EVENT_LOOP_EXCLUSIVE)
        ev |= EPOLLEXCLUSIVE;
    return ev;
}

/* Grows the table so that fd is a valid index. */
static int event_loop_reserve(struct event_loop *loop, int fd)
{
    if ((size_t)fd < loop->num_entries)
        return 0;
    size_t n = loop->num_entries ? loop->num_entries : 64;
    while (n <= (size_t)fd)
        n *= 2;
    struct event_loop_entry *e = realloc(loop->entries, n * sizeof(*e));
    if (e == NULL)
        return -1;
    memset(e + loop->num_entries, 0, (n - loop->num_entries) * sizeof(*e));
    loop->entries = e;
    loop->num_entries = n;
    return 0;
}

int event_loop_add(struct event_loop *loop, int fd, unsigned mask, event_loop_fn *fn, void *arg)
{
    if (fd < 0 || fn == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (event_loop_reserve(loop, fd) < 0)
        return -1;
    struct event_loop_entry *e = &loop->entries[fd];
    uint32_t gen = ++loop->next_gen;
    struct epoll_event ev = {.events = event_loop_epoll_mask(mask),
                             .data.u64 = ((uint64_t)gen << 32) | (uint32_t)fd};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    e->fn = fn;
    e->arg = arg;
    e->mask = mask;
    e->gen = gen;
    return 0;
}

int event_loop_modify(struct event_loop *loop, int fd, unsigned mask)
{
    if (fd < 0 || (size_t)fd >= loop->num_entries || loop->entries[fd].fn == NULL) {
        errno = EBADF;
        return -1;
    }
    struct event_loop_entry *e = &loop->entries[fd];
    if (e->mask == mask)
        return 0;
    struct epoll_event ev = {.events = event_loop_epoll_mask(mask),
                             .data.u64 = ((uint64_t)e->gen << 32) | (uint32_t)fd};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        return -1;
    e->mask = mask;
    return 0;
}

int event_loop_del(struct event_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->num_entries || loop->entries[fd].fn == NULL) {
        errno = EBADF;
        return -1;
    }
    struct event_loop_entry *e = &loop->entries[fd];
    e->fn = NULL;
    e->arg = NULL;
    e->mask = 0;
    /* The event argument is ignored but must be non-NULL before Linux 2.6.9. */
    struct epoll_event ev = {0};
    return epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, &ev);
}

int event_loop_poll(struct event_loop *loop, int timeout_ms, const sigset_t *sigmask)
{
    int n = epoll_pwait(loop->epfd, loop->events, EVENT_LOOP_BATCH, timeout_ms, sigmask);
    int dispatched = 0;
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        uint64_t data = loop->events[i].data.u64;
        int fd = (int)(uint32_t)data;
        uint32_t gen = (uint32_t)(data >> 32);
        struct event_loop_entry *e = &loop->entries[fd];
        /* Deleted (or deleted and re-added) by an earlier callback of this batch. */
        if (e->fn == NULL || e->gen != gen)
            continue;
        uint32_t ev = loop->events[i].events;
        unsigned fired = 0;
        if (ev & EPOLLIN)
            fired |= EVENT_LOOP_READ;
        if (ev & EPOLLOUT)
            fired |= EVENT_LOOP_WRITE;
        if (ev & (EPOLLERR | EPOLLHUP))
            fired |= EVENT_LOOP_ERROR;
        e->fn(loop, fd, e->arg, fired);
        dispatched++;
    }
    return dispatched;
}
