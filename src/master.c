/* master.c - the master process: fork N workers, supervise, respawn, shut down. */
#include "master.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proctitle.h"
#include "worker.h"

/* A worker ends with _exit(), which skips LeakSanitizer's check at exit:
 * in a build with AddressSanitizer the worker runs the check itself. */
#if defined(__SANITIZE_ADDRESS__)
#define MASTER_LEAK_CHECK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MASTER_LEAK_CHECK 1
#endif
#endif
#ifdef MASTER_LEAK_CHECK
#include <sanitizer/lsan_interface.h>
#endif

/* Signals and races.
 *
 * Every signal the master acts on is blocked for the whole of master_run() and
 * delivered only inside sigsuspend(), which atomically unblocks them and waits.
 * The handlers merely set the flags below; all real work (waitpid, kill, fork,
 * logging) happens in the loop after sigsuspend() returns, with the signals
 * blocked again. So a SIGCHLD that arrives while we are forking or logging
 * stays pending and wakes the next sigsuspend(): no wake-up is ever lost, and
 * no handler ever runs in the middle of our bookkeeping.
 *
 * One ITIMER_REAL (SIGALRM) serves two purposes that never overlap: while
 * running, it wakes us for a delayed respawn (crash-loop throttle, respawn
 * rate cap); once
 * shutting down, it is the grace timer after which stragglers get SIGKILL.
 */
static volatile sig_atomic_t master_got_child;
static volatile sig_atomic_t master_got_terminate; /* SIGTERM or SIGINT */
static volatile sig_atomic_t master_got_quit;
static volatile sig_atomic_t master_got_hup;
static volatile sig_atomic_t master_got_alarm;

static const int master_signals[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGALRM};
#define MASTER_NUM_SIGNALS (sizeof(master_signals) / sizeof(master_signals[0]))

/* Crash-loop throttle: a worker that dies by itself (exit status not 0, or a
 * signal such as SIGSEGV or SIGABRT) within MASTER_CRASH_MS of its start
 * counts as a crash. SIGKILL does not: a worker never sends it to itself, so
 * it comes from outside (an operator, the OOM killer, a fault test), whose
 * rate is not ours to amplify; delaying those respawns would only leave the
 * listening socket without workers. The first crash delays respawns by MASTER_BACKOFF_MIN_MS,
 * each further one doubles the delay up to MASTER_BACKOFF_MAX_MS, and
 * MASTER_BACKOFF_RESET_MS without a crash starts over from the minimum. A
 * worker that cannot start at all (bad file, no memory) therefore costs at
 * most N forks per 5 s, never a fork storm. */
#define MASTER_CRASH_MS 1000
#define MASTER_BACKOFF_MIN_MS 100
#define MASTER_BACKOFF_MAX_MS 5000
#define MASTER_BACKOFF_RESET_MS 10000

/* A global cap on the respawn rate, whatever the cause of death: the throttle
 * above does not see SIGKILL, so a worker killed right after each start (an
 * OOM killer that picks the newest process, a supervisor gone wrong) would
 * be replaced as fast as it dies. Every respawn takes a token from a bucket
 * that holds as many as there are workers (at least MASTER_RESPAWN_BURST), so
 * all of them can be replaced at once, and that refills at
 * MASTER_RESPAWN_PER_S. The fault suite kills a worker every 100 ms (10 per
 * second) and needs each replaced at once: the cap is twice that. The start
 * of the first workers takes no token. */
#define MASTER_RESPAWN_PER_S 20
#define MASTER_RESPAWN_BURST 20
#define MASTER_RESPAWN_INTERVAL_MS (1000 / MASTER_RESPAWN_PER_S)

struct master_slot {
    pid_t pid;          /* 0: no process in this slot (dead, respawn pending) */
    int64_t started_ms; /* monotonic time of the fork */
};

struct master {
    const struct config *cfg;
    int listen_fd; /* -1 once closed: the shutdown began, nothing may be forked */
    pid_t pid;
    struct master_slot *slots;
    unsigned num_live;
    int shutting_down;
    int started;           /* the first workers were forked: later forks are respawns */
    int64_t respawn_at_ms; /* no respawn before this time (throttle) */
    int64_t last_crash_ms; /* when a worker last died young; < 0: never */
    unsigned backoff_ms;   /* current respawn delay after a crash */
    /* The rate cap as a virtual clock (the generic cell rate algorithm): each
     * respawn moves it MASTER_RESPAWN_INTERVAL_MS on from max(it, now); a
     * respawn may happen while it is less than a full bucket ahead of now. */
    int64_t rate_clock_ms;
    int rate_limited;   /* the cap is delaying respawns (logged once per episode) */
    int64_t kill_at_ms; /* shutting down: SIGKILL to stragglers at this time */
};

static void master_handle_signal(int sig)
{
    int saved_errno = errno;
    switch (sig) {
    case SIGCHLD:
        master_got_child = 1;
        break;
    case SIGTERM:
    case SIGINT:
        master_got_terminate = 1;
        break;
    case SIGQUIT:
        master_got_quit = 1;
        break;
    case SIGHUP:
        master_got_hup = 1;
        break;
    case SIGALRM:
        master_got_alarm = 1;
        break;
    default:
        break;
    }
    errno = saved_errno;
}

static int64_t master_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Arms the single SIGALRM timer ms from now; 0 disarms it. */
static void master_set_timer(int64_t ms)
{
    struct itimerval it;
    memset(&it, 0, sizeof(it));
    if (ms > 0) {
        it.it_value.tv_sec = (time_t)(ms / 1000);
        it.it_value.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    }
    if (setitimer(ITIMER_REAL, &it, NULL) < 0)
        log_error("setitimer: %s", strerror(errno));
}

/* In the child: back to a clean signal state, then become a worker. Never returns.
 * worker_run() is entered with every signal unblocked and at its default disposition,
 * and installs its own handlers. Signals were blocked across fork(), so none can run
 * one of the master's handlers in the child before the reset below. */
static void master_become_worker(struct master *m, size_t slot)
{
    struct sigaction sa;
    sigset_t none;

    log_init("taskserver");
    /* ps shows "taskserver: worker N", N = slot + 1: a replacement keeps its slot's N. */
    char comm[32]; /* the kernel keeps 15 bytes: "taskserver-w999" */
    snprintf(comm, sizeof(comm), "taskserver-w%zu", slot + 1);
    proctitle_set(comm, "taskserver: worker %zu", slot + 1);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < MASTER_NUM_SIGNALS; i++)
        sigaction(master_signals[i], &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int status = worker_run(m->cfg, m->listen_fd, m->pid, (unsigned)slot);
#ifdef MASTER_LEAK_CHECK
    /* Reports on stderr and ends the process with an error if anything leaked. */
    __lsan_do_leak_check();
#endif
    _exit(status);
}

static int master_spawn(struct master *m, size_t slot)
{
    assert(m->listen_fd >= 0); /* the socket is closed only once no worker will be forked */
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork worker: %s", strerror(errno));
        return -1;
    }
    if (pid == 0)
        master_become_worker(m, slot);
    log_info("started worker %d", (int)pid);
    m->slots[slot].pid = pid;
    m->slots[slot].started_ms = master_now_ms();
    m->num_live++;
    return 0;
}

/* Delays the next respawns after a worker died young. */
static void master_note_crash(struct master *m, int64_t now)
{
    if (now < m->respawn_at_ms)
        return; /* already waiting: the dead ones join that respawn */
    if (m->last_crash_ms < 0 || now - m->last_crash_ms >= MASTER_BACKOFF_RESET_MS)
        m->backoff_ms = MASTER_BACKOFF_MIN_MS;
    else if (m->backoff_ms * 2 <= MASTER_BACKOFF_MAX_MS)
        m->backoff_ms *= 2;
    else
        m->backoff_ms = MASTER_BACKOFF_MAX_MS;
    m->last_crash_ms = now;
    m->respawn_at_ms = now + m->backoff_ms;
}

/* The earliest time the rate cap allows another respawn: now, or later. */
static int64_t master_rate_allows_at(const struct master *m, int64_t now)
{
    unsigned burst =
        m->cfg->workers > MASTER_RESPAWN_BURST ? m->cfg->workers : MASTER_RESPAWN_BURST;
    int64_t ahead = (int64_t)(burst - 1) * MASTER_RESPAWN_INTERVAL_MS;
    int64_t clock = m->rate_clock_ms > now ? m->rate_clock_ms : now;
    return clock - ahead > now ? clock - ahead : now;
}

/* A respawn happened: it takes its token. */
static void master_rate_take(struct master *m, int64_t now)
{
    int64_t clock = m->rate_clock_ms > now ? m->rate_clock_ms : now;
    m->rate_clock_ms = clock + MASTER_RESPAWN_INTERVAL_MS;
}

/* Starts every empty slot unless throttled; arms the timer for a delayed respawn. */
static void master_fill_slots(struct master *m)
{
    int64_t now = master_now_ms();
    if (m->shutting_down)
        return;
    if (now < m->respawn_at_ms) {
        master_set_timer(m->respawn_at_ms - now);
        return;
    }
    for (size_t i = 0; i < m->cfg->workers; i++) {
        if (m->slots[i].pid != 0)
            continue;
        if (m->started) {
            int64_t at = master_rate_allows_at(m, now);
            if (at > now) {
                if (!m->rate_limited)
                    log_warn("workers die faster than %d respawns per second: next respawn in "
                             "%lld ms",
                             MASTER_RESPAWN_PER_S, (long long)(at - now));
                m->rate_limited = 1;
                master_set_timer(at - now);
                return;
            }
        }
        if (master_spawn(m, i) < 0) {
            /* fork failed (EAGAIN, ENOMEM): treat like a crash and retry later. */
            master_note_crash(m, now);
            master_set_timer(m->respawn_at_ms - now);
            return;
        }
        if (m->started)
            master_rate_take(m, now);
    }
    m->started = 1;
    m->rate_limited = 0;
}

static void master_log_death(pid_t pid, int status, int64_t lived_ms)
{
    if (WIFEXITED(status))
        log_info("worker %d exited with status %d after %lld.%03lld s", (int)pid,
                 WEXITSTATUS(status), (long long)(lived_ms / 1000), (long long)(lived_ms % 1000));
    else if (WIFSIGNALED(status))
        log_info("worker %d killed by signal %d (%s)%s after %lld.%03lld s", (int)pid,
                 WTERMSIG(status), strsignal(WTERMSIG(status)),
                 WCOREDUMP(status) ? ", core dumped" : "", (long long)(lived_ms / 1000),
                 (long long)(lived_ms % 1000));
}

/* Collects every exited child. As PID 1 in a container we also inherit orphans:
 * they are reaped too, silently. */
static void master_reap(struct master *m)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            break; /* 0: none left exited; ECHILD: no children at all */
        if (!WIFEXITED(status) && !WIFSIGNALED(status))
            continue;
        size_t i;
        for (i = 0; i < m->cfg->workers; i++)
            if (m->slots[i].pid == pid)
                break;
        if (i == m->cfg->workers)
            continue;
        int64_t now = master_now_ms();
        int64_t lived = now - m->slots[i].started_ms;
        m->slots[i].pid = 0;
        m->num_live--;
        master_log_death(pid, status, lived);
        if (m->shutting_down)
            continue;
        int by_itself = WIFEXITED(status) ? WEXITSTATUS(status) != 0 : WTERMSIG(status) != SIGKILL;
        if (lived < MASTER_CRASH_MS && by_itself) {
            master_note_crash(m, now);
            log_warn("worker %d died %lld ms after start: respawning in %lld ms", (int)pid,
                     (long long)lived, (long long)(m->respawn_at_ms - now));
        }
    }
}

static void master_kill_all(struct master *m, int sig)
{
    for (size_t i = 0; i < m->cfg->workers; i++)
        if (m->slots[i].pid > 0 && kill(m->slots[i].pid, sig) < 0 && errno != ESRCH)
            log_error("kill worker %d: %s", (int)m->slots[i].pid, strerror(errno));
}

/* Blocks until every worker has been reaped (after SIGKILL, this is quick). */
static void master_wait_all(struct master *m)
{
    while (m->num_live > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            log_error("waitpid: %s", strerror(errno));
            return;
        }
        for (size_t i = 0; i < m->cfg->workers; i++) {
            if (m->slots[i].pid == pid) {
                master_log_death(pid, status, master_now_ms() - m->slots[i].started_ms);
                m->slots[i].pid = 0;
                m->num_live--;
            }
        }
    }
}

/* Closes the master's copy of the listening socket (see worker_stop_accepting:
 * new connections are refused once the workers have closed theirs). Only at
 * shutdown: while running, the master's copy keeps the queue of pending
 * connections alive when a worker dies, for its replacement to accept. */
static void master_close_listener(struct master *m)
{
    if (m->listen_fd < 0)
        return;
    /* Never retried: the descriptor is gone even on EINTR. */
    if (close(m->listen_fd) < 0 && errno != EINTR)
        log_error("close listening socket: %s", strerror(errno));
    m->listen_fd = -1;
}

static void master_begin_shutdown(struct master *m)
{
    m->shutting_down = 1;
    master_close_listener(m); /* no worker is forked from now on (master_fill_slots) */
    log_info("shutting down: %u workers get SIGTERM and %u.%03u s to finish", m->num_live,
             m->cfg->grace_ms / 1000, m->cfg->grace_ms % 1000);
    master_kill_all(m, SIGTERM);
    m->kill_at_ms = master_now_ms() + m->cfg->grace_ms;
    /* A SIGALRM of a respawn timer may still be pending: the deadline, not the
     * signal, decides when stragglers are killed (see the main loop). */
    if (m->cfg->grace_ms == 0)
        master_got_alarm = 1; /* no grace: straight to SIGKILL */
    else
        master_set_timer(m->cfg->grace_ms);
}

/* Installs the handlers and blocks the signals; saves what to restore. */
static int master_install_signals(sigset_t *orig_mask, struct sigaction *orig_actions)
{
    struct sigaction sa;
    sigset_t block;

    sigemptyset(&block);
    for (size_t i = 0; i < MASTER_NUM_SIGNALS; i++)
        sigaddset(&block, master_signals[i]);
    if (sigprocmask(SIG_BLOCK, &block, orig_mask) < 0) {
        log_error("sigprocmask: %s", strerror(errno));
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = master_handle_signal;
    sa.sa_mask = block;
    /* No SA_RESTART: nothing blocking runs with the signals unblocked except sigsuspend. */
    for (size_t i = 0; i < MASTER_NUM_SIGNALS; i++) {
        sa.sa_flags = master_signals[i] == SIGCHLD ? SA_NOCLDSTOP : 0;
        if (sigaction(master_signals[i], &sa, &orig_actions[i]) < 0) {
            log_error("sigaction %s: %s", strsignal(master_signals[i]), strerror(errno));
            return -1;
        }
    }
    return 0;
}

static void master_restore_signals(const sigset_t *orig_mask, const struct sigaction *orig_actions)
{
    master_set_timer(0);
    for (size_t i = 0; i < MASTER_NUM_SIGNALS; i++)
        sigaction(master_signals[i], &orig_actions[i], NULL);
    sigprocmask(SIG_SETMASK, orig_mask, NULL);
}

/* Owns listen_fd: it is closed when the shutdown begins, or before returning. */
int master_run(const struct config *cfg, int listen_fd)
{
    struct master m;
    sigset_t orig_mask;
    sigset_t wait_mask;
    struct sigaction orig_actions[MASTER_NUM_SIGNALS];

    memset(&m, 0, sizeof(m));
    m.cfg = cfg;
    m.listen_fd = listen_fd;
    m.pid = getpid();
    m.last_crash_ms = -1;
    m.slots = calloc(cfg->workers, sizeof(*m.slots));
    if (m.slots == NULL) {
        log_error("allocate %u worker slots: %s", cfg->workers, strerror(errno));
        master_close_listener(&m);
        return 1;
    }
    master_got_child = master_got_terminate = master_got_quit = 0;
    master_got_hup = master_got_alarm = 0;
    if (master_install_signals(&orig_mask, orig_actions) < 0) {
        free(m.slots);
        master_close_listener(&m);
        return 1;
    }
    /* sigsuspend() waits with the caller's original mask minus our signals. */
    wait_mask = orig_mask;
    for (size_t i = 0; i < MASTER_NUM_SIGNALS; i++)
        sigdelset(&wait_mask, master_signals[i]);

    proctitle_set("taskserver", "taskserver: master");
    master_fill_slots(&m);

    for (;;) {
        if (master_got_child) {
            master_got_child = 0;
            master_reap(&m);
        }
        if (master_got_quit) {
            log_info("quitting now: SIGKILL to %u workers", m.num_live);
            master_kill_all(&m, SIGKILL);
            master_wait_all(&m);
            break;
        }
        if (master_got_terminate) {
            master_got_terminate = 0;
            if (!m.shutting_down)
                master_begin_shutdown(&m);
        }
        if (master_got_hup) {
            master_got_hup = 0;
            log_info("SIGHUP ignored: there is no configuration to reload");
        }
        if (master_got_alarm) {
            master_got_alarm = 0;
            int64_t left = m.kill_at_ms - master_now_ms();
            if (m.shutting_down && m.num_live > 0 && left > 0) {
                master_set_timer(left); /* early: a stale respawn alarm */
            } else if (m.shutting_down && m.num_live > 0) {
                log_warn("grace period over: SIGKILL to %u workers", m.num_live);
                master_kill_all(&m, SIGKILL);
            }
        }
        if (m.shutting_down) {
            if (m.num_live == 0) {
                log_info("all workers stopped");
                break;
            }
        } else {
            master_fill_slots(&m);
        }
        sigsuspend(&wait_mask);
    }

    master_close_listener(&m);
    master_restore_signals(&orig_mask, orig_actions);
    free(m.slots);
    return 0;
}
