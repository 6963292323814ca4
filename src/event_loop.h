/* event_loop.h - a thin epoll wrapper: descriptors with a callback and an interest mask.
 *
 * Calling sequence (one loop per worker process, single-threaded):
 *
 *     struct event_loop *loop = event_loop_create();
 *     event_loop_add(loop, fd, EVENT_LOOP_READ, on_event, arg);
 *     for (;;)
 *         event_loop_poll(loop, timeout_ms, &wait_mask);   dispatches the callbacks
 *     event_loop_free(loop);
 *
 * Level-triggered. A callback may add, modify or delete any descriptor,
 * including its own, and may close it after deleting it: events still queued
 * for a descriptor deleted during the same poll are dropped, even if the
 * number was reused by a new registration meanwhile (a generation count
 * travels with every event). The caller owns the descriptors; the loop never
 * closes them.
 *
 * Errors: 0 or a count on success, -1 with errno.
 */
#ifndef TASKSERVER_EVENT_LOOP_H
#define TASKSERVER_EVENT_LOOP_H

#include <signal.h>

#define EVENT_LOOP_READ 1u      /* interest and event: readable (or EOF) */
#define EVENT_LOOP_WRITE 2u     /* interest and event: writable */
#define EVENT_LOOP_EXCLUSIVE 4u /* interest only, at add time: EPOLLEXCLUSIVE (shared sockets) */
#define EVENT_LOOP_ERROR 8u     /* event only: error or hang-up on the descriptor */

struct event_loop;

/* Called with the events that fired (EVENT_LOOP_READ | _WRITE | _ERROR). */
typedef void event_loop_fn(struct event_loop *loop, int fd, void *arg, unsigned events);

/* Returns a new loop, or NULL with errno. */
struct event_loop *event_loop_create(void);

/* Closes the epoll descriptor and frees the loop (not the registered descriptors). */
void event_loop_free(struct event_loop *loop);

/* Registers fd (not yet registered) with an interest mask. Returns 0 or -1. */
int event_loop_add(struct event_loop *loop, int fd, unsigned mask, event_loop_fn *fn, void *arg);

/* Changes the interest mask of a registered fd (not one added with
 * EVENT_LOOP_EXCLUSIVE: the kernel refuses). Does nothing when the mask is
 * unchanged. Returns 0 or -1. */
int event_loop_modify(struct event_loop *loop, int fd, unsigned mask);

/* Unregisters fd; call it before closing fd. Returns 0 or -1. */
int event_loop_del(struct event_loop *loop, int fd);

/* Waits up to timeout_ms (-1: forever) with sigmask installed during the
 * wait only (epoll_pwait: signals blocked elsewhere are delivered here, with
 * no lost wake-up), then dispatches the callbacks. Returns the number of
 * events dispatched (0 on timeout or when a signal interrupted the wait), or
 * -1 with errno. */
int event_loop_poll(struct event_loop *loop, int timeout_ms, const sigset_t *sigmask);

#endif
