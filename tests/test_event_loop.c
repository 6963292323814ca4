/* test_event_loop.c - the event loop's dispatch, and above all its generation check: a callback
 * that deletes, closes and re-adds another descriptor within one batch of events, as a table. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "event_loop.h"

/*
 * Each case starts with two pipes whose read ends, A and B, are both readable, so that one
 * epoll_pwait() returns both in one batch. The kernel decides which comes first: the callback
 * that runs first (the "actor") treats the other descriptor as its victim and does the case's
 * action on it. The victim's event, still queued in the batch, is stale: it must reach
 * neither the victim's old callback nor a new callback registered under the same number. A
 * later poll must then deliver the new registration's own events, with its own argument.
 */

enum victim_action {
    VICTIM_DEL,          /* event_loop_del() only */
    VICTIM_DEL_CLOSE,    /* ... and close() */
    VICTIM_REOPEN_PIPE,  /* del, close, pipe() gets the same number, add */
    VICTIM_DUP2,         /* del, dup2() another pipe's read end onto the number, add */
    VICTIM_READD,        /* del and add again, the same descriptor (no close) */
    VICTIM_READD_TWICE,  /* del, add, del, add: two generations within one callback */
    VICTIM_CLOSE_REOPEN, /* del, close, pipe() reuses the number, nothing written to it, add */
};

struct loop_case {
    const char *desc;
    enum victim_action action;
    int readded;   /* a new registration holds the victim's number after the batch */
    int next_poll; /* events for the new registration in the following poll (0 or 1) */
};

static const struct loop_case loop_cases[] = {
    {"deleted", VICTIM_DEL, 0, 0},
    {"deleted and closed", VICTIM_DEL_CLOSE, 0, 0},
    {"deleted, closed, number reused by pipe() with a byte waiting, re-added", VICTIM_REOPEN_PIPE,
     1, 1},
    {"deleted, closed, number reused by pipe() with nothing to read, re-added", VICTIM_CLOSE_REOPEN,
     1, 0},
    {"deleted, another open file dup2()'d onto its number, re-added", VICTIM_DUP2, 1, 1},
    {"deleted and re-added, same descriptor", VICTIM_READD, 1, 1},
    {"deleted and re-added twice in one callback", VICTIM_READD_TWICE, 1, 1},
};

#define NUM_LOOP_CASES (sizeof(loop_cases) / sizeof(loop_cases[0]))

/* What the callbacks saw. */
struct loop_fixture {
    const struct loop_case *c;
    struct event_loop *loop;
    int a; /* read ends of the two pipes */
    int b;
    int a_w; /* their write ends */
    int b_w;
    int extra[2]; /* a third pipe (dup2 source, or the reopened pipe's write end) */
    int actor;    /* the descriptor whose callback ran first, -1 before */
    int actor_calls;
    int old_calls_on_victim; /* the first registration's callback called for the victim */
    int new_calls;           /* the new registration's callback called */
    int new_fd;              /* the fd it was called with */
    void *new_arg;           /* and its argument */
    unsigned new_events;
};

/* Opens /dev/null onto every free descriptor below limit, so that the lowest free number is
 * the one the case closes: a pipe() after that close must get it back. */
static void fill_fd_gaps(int limit, int *fillers, size_t *num_fillers, size_t max_fillers)
{
    for (int fd = 0; fd < limit; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        ck_assert_uint_lt(*num_fillers, max_fillers);
        int n = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_msg(n == fd, "open /dev/null: got %d for the free descriptor %d", n, fd);
        fillers[(*num_fillers)++] = n;
    }
}

static void on_new(struct event_loop *loop, int fd, void *arg, unsigned events)
{
    struct loop_fixture *fx = arg;
    (void)loop;
    fx->new_calls++;
    fx->new_fd = fd;
    fx->new_arg = arg;
    fx->new_events = events;
}

/* Registers fd for the new callback, with the fixture as its argument. */
static void add_new(struct loop_fixture *fx, int fd)
{
    ck_assert_msg(event_loop_add(fx->loop, fd, EVENT_LOOP_READ, on_new, fx) == 0,
                  "event_loop_add %d: %s", fd, strerror(errno));
}

static void make_pipe(int p[2], int with_byte)
{
    ck_assert_msg(pipe2(p, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
    if (with_byte)
        ck_assert_int_eq(write(p[1], "x", 1), 1);
}

/* The case's action on the victim, from inside the actor's callback. */
static void act_on(struct loop_fixture *fx, int victim)
{
    ck_assert_int_eq(event_loop_del(fx->loop, victim), 0);
    switch (fx->c->action) {
    case VICTIM_DEL:
        return;
    case VICTIM_DEL_CLOSE:
        ck_assert_int_eq(close(victim), 0);
        return;
    case VICTIM_REOPEN_PIPE:
    case VICTIM_CLOSE_REOPEN:
        ck_assert_int_eq(close(victim), 0);
        make_pipe(fx->extra, fx->c->action == VICTIM_REOPEN_PIPE);
        ck_assert_msg(fx->extra[0] == victim, "pipe() gave %d, not the freed number %d",
                      fx->extra[0], victim);
        fx->extra[0] = -1; /* now the victim's number: closed as such */
        break;
    case VICTIM_DUP2:
        ck_assert_int_eq(dup2(fx->extra[0], victim), victim);
        break;
    case VICTIM_READD:
        break;
    case VICTIM_READD_TWICE:
        add_new(fx, victim);
        ck_assert_int_eq(event_loop_del(fx->loop, victim), 0);
        break;
    }
    add_new(fx, victim);
}

static void on_first(struct event_loop *loop, int fd, void *arg, unsigned events)
{
    struct loop_fixture *fx = arg;
    char ch;
    (void)loop;
    (void)events;
    if (fx->actor >= 0) {
        /* Only the victim's stale event can bring the first callback back in this batch. */
        fx->old_calls_on_victim++;
        return;
    }
    fx->actor = fd;
    fx->actor_calls++;
    ck_assert_int_eq(read(fd, &ch, 1), 1); /* drained: not ready in the next poll */
    act_on(fx, fd == fx->a ? fx->b : fx->a);
}

START_TEST(stale_event_dropped)
{
    const struct loop_case *c = &loop_cases[_i];
    struct loop_fixture fx = {.c = c, .actor = -1, .new_fd = -1, .extra = {-1, -1}};
    int pa[2], pb[2];
    int fillers[64];
    size_t num_fillers = 0;
    sigset_t none;

    sigemptyset(&none);
    fx.loop = event_loop_create();
    ck_assert_msg(fx.loop != NULL, "event_loop_create: %s", strerror(errno));
    make_pipe(pa, 1);
    make_pipe(pb, 1);
    fx.a = pa[0];
    fx.a_w = pa[1];
    fx.b = pb[0];
    fx.b_w = pb[1];
    if (c->action == VICTIM_DUP2)
        make_pipe(fx.extra, 1);
    fill_fd_gaps(fx.a > fx.b ? fx.a : fx.b, fillers, &num_fillers, 64);
    ck_assert_int_eq(event_loop_add(fx.loop, fx.a, EVENT_LOOP_READ, on_first, &fx), 0);
    ck_assert_int_eq(event_loop_add(fx.loop, fx.b, EVENT_LOOP_READ, on_first, &fx), 0);

    int n = event_loop_poll(fx.loop, 1000, &none);
    int victim = fx.actor == fx.a ? fx.b : fx.a;
    ck_assert_msg(fx.actor_calls == 1, "%s: the actor ran %d times", c->desc, fx.actor_calls);
    ck_assert_msg(fx.old_calls_on_victim == 0 && fx.new_calls == 0,
                  "%s: the victim's stale event was dispatched (old callback %d, new %d times)",
                  c->desc, fx.old_calls_on_victim, fx.new_calls);
    ck_assert_msg(n == 1, "%s: poll says %d dispatched, expected 1", c->desc, n);

    n = event_loop_poll(fx.loop, c->next_poll ? 1000 : 0, &none);
    ck_assert_msg(n == c->next_poll && fx.new_calls == c->next_poll,
                  "%s: next poll: %d dispatched, new callback %d times, expected %d", c->desc, n,
                  fx.new_calls, c->next_poll);
    if (c->next_poll)
        ck_assert_msg(fx.new_fd == victim && fx.new_arg == &fx &&
                          (fx.new_events & EVENT_LOOP_READ) != 0,
                      "%s: new callback got fd %d (want %d), events %#x", c->desc, fx.new_fd,
                      victim, fx.new_events);
    if (c->readded)
        ck_assert_int_eq(event_loop_del(fx.loop, victim), 0);
    else
        ck_assert_msg(event_loop_del(fx.loop, victim) < 0 && errno == EBADF,
                      "%s: the victim is still registered", c->desc);
    ck_assert_int_eq(event_loop_del(fx.loop, fx.actor), 0);

    event_loop_free(fx.loop);
    if (c->action != VICTIM_DEL_CLOSE)
        close(victim);
    close(fx.actor);
    close(fx.a_w);
    close(fx.b_w);
    for (int i = 0; i < 2; i++)
        if (fx.extra[i] >= 0)
            close(fx.extra[i]);
    for (size_t i = 0; i < num_fillers; i++)
        close(fillers[i]);
}
END_TEST

/* The plain contract around the check: level-triggered, the argument and mask given at add,
 * modify and delete take effect at the next poll, a timeout dispatches nothing. */
START_TEST(dispatch_basics)
{
    struct loop_fixture fx = {.actor = -1, .new_fd = -1, .extra = {-1, -1}};
    int p[2];
    sigset_t none;

    sigemptyset(&none);
    fx.loop = event_loop_create();
    ck_assert(fx.loop != NULL);
    make_pipe(p, 0);
    add_new(&fx, p[0]);
    ck_assert_int_eq(event_loop_poll(fx.loop, 0, &none), 0);
    ck_assert_int_eq(fx.new_calls, 0);

    ck_assert_int_eq(write(p[1], "x", 1), 1);
    for (int round = 1; round <= 2; round++) { /* level-triggered: again while unread */
        ck_assert_int_eq(event_loop_poll(fx.loop, 1000, &none), 1);
        ck_assert_msg(fx.new_calls == round && fx.new_fd == p[0] && fx.new_arg == &fx &&
                          fx.new_events == EVENT_LOOP_READ,
                      "round %d: %d calls, fd %d, events %#x", round, fx.new_calls, fx.new_fd,
                      fx.new_events);
    }
    ck_assert_int_eq(event_loop_modify(fx.loop, p[0], EVENT_LOOP_WRITE), 0);
    ck_assert_int_eq(event_loop_poll(fx.loop, 0, &none), 0); /* a read end is never writable */
    ck_assert_int_eq(event_loop_modify(fx.loop, p[0], EVENT_LOOP_READ), 0);
    ck_assert_int_eq(event_loop_poll(fx.loop, 1000, &none), 1);
    ck_assert_int_eq(event_loop_del(fx.loop, p[0]), 0);
    ck_assert_int_eq(event_loop_poll(fx.loop, 0, &none), 0);
    ck_assert_int_eq(fx.new_calls, 3);

    /* Refusals: a descriptor not registered, twice registered, or negative. */
    ck_assert(event_loop_del(fx.loop, p[0]) < 0 && errno == EBADF);
    ck_assert(event_loop_modify(fx.loop, p[0], EVENT_LOOP_READ) < 0 && errno == EBADF);
    ck_assert(event_loop_add(fx.loop, -1, EVENT_LOOP_READ, on_new, &fx) < 0 && errno == EINVAL);
    add_new(&fx, p[0]);
    ck_assert(event_loop_add(fx.loop, p[0], EVENT_LOOP_READ, on_new, &fx) < 0 && errno == EEXIST);

    event_loop_free(fx.loop);
    close(p[0]);
    close(p[1]);
}
END_TEST

static Suite *event_loop_suite(void)
{
    Suite *s = suite_create("event_loop");
    TCase *tc = tcase_create("batch");

    tcase_add_loop_test(tc, stale_event_dropped, 0, (int)NUM_LOOP_CASES);
    tcase_add_test(tc, dispatch_basics);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(event_loop_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
