/* master.c - the master process: fork N workers, supervise, respawn, shut down. */
#include "master.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "board.h"
#include "log.h"
#include "metrics.h"
#include "proctitle.h"
#include "task_store.h"
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
/* ... and skips gcov's write-out of the counters: a coverage build writes them itself. */
#ifdef TASKSERVER_COVERAGE
void __gcov_dump(void);
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
 * Time: one ITIMER_REAL (SIGALRM), armed before each wait for the earliest of
 * the deadlines (master_arm()): a delayed respawn, the end of the grace period
 * when shutting down, and a look at the board once a second while running.
 */
static volatile sig_atomic_t master_got_child;
static volatile sig_atomic_t master_got_terminate; /* SIGTERM or SIGINT */
static volatile sig_atomic_t master_got_quit;
static volatile sig_atomic_t master_got_hup;
static volatile sig_atomic_t master_got_alarm;

static const int master_signals[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGALRM};
#define MASTER_NUM_SIGNALS (sizeof(master_signals) / sizeof(master_signals[0]))

/* The respawn rule, one rule: a worker that dies by itself (an exit status
 * other than 0, or a signal such as SIGSEGV or SIGABRT) within MASTER_YOUNG_MS
 * of its start is replaced after MASTER_YOUNG_MS; any other death at once. A
 * worker that cannot start therefore costs one fork per second per slot, never
 * a fork storm, and a worker killed from outside (SIGKILL: an operator, the
 * OOM killer, a fault test; a worker never sends it to itself) is replaced
 * at once, so the listening socket is never left without workers for long.
 * (A worker that cannot open tasks.json does not die: it answers 503 and
 * tries again; see the board below.) */
#define MASTER_YOUNG_MS 1000
#define MASTER_BOARD_MS 1000 /* how often the board is read while running */

struct master_slot {
    pid_t pid;             /* 0: no process in this slot (dead, respawn pending) */
    int64_t started_ms;    /* monotonic time of the fork */
    int64_t respawn_at_ms; /* pid 0: not before this time */
    int spawned;           /* a worker was forked for it before: the next one is a restart */
};

struct master {
    const struct config *cfg;
    int listen_fd; /* -1 once closed: the shutdown began, nothing may be forked */
    pid_t pid;
    struct master_slot *slots;
    struct board *board; /* what the workers say: can they use tasks.json? */
    unsigned num_live;
    int shutting_down;
    int killed;         /* shutting down: stragglers got SIGKILL */
    int64_t kill_at_ms; /* shutting down: SIGKILL to stragglers at this time */
    int status;         /* master_run()'s return value */
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

/* A child of the master (a worker, the background check) ends here. _exit() skips
 * LeakSanitizer's check at exit and gcov's write-out of the counters: a build with either
 * runs them first. */
__attribute__((noreturn)) static void master_child_exit(int status)
{
#ifdef MASTER_LEAK_CHECK
    /* Reports on stderr and ends the process with an error if anything leaked. */
    __lsan_do_leak_check();
#endif
#ifdef TASKSERVER_COVERAGE
    __gcov_dump();
#endif
    _exit(status);
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
    master_child_exit(worker_run(m->cfg, m->listen_fd, m->pid, (unsigned)slot, m->board));
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
    if (m->slots[slot].spawned)
        metrics_count_restart();
    m->slots[slot].spawned = 1;
    metrics_set_workers(m->num_live);
    return 0;
}

/* Starts every empty slot whose time has come. */
static void master_fill_slots(struct master *m, int64_t now)
{
    for (size_t i = 0; i < m->cfg->workers; i++) {
        struct master_slot *sl = &m->slots[i];
        if (sl->pid != 0 || now < sl->respawn_at_ms)
            continue;
        /* The slot is the master's until the fork: a fresh worker counts as
         * able to use the file until it says otherwise. */
        board_set_file(m->board, (unsigned)i, 1, now);
        board_set_connections(m->board, (unsigned)i, 0);
        if (master_spawn(m, i) < 0) {
            board_set_connections(m->board, (unsigned)i, BOARD_NO_WORKER);
            /* fork failed (EAGAIN, ENOMEM): try again later */
            board_set_file(m->board, (unsigned)i, 0, now);
            sl->respawn_at_ms = now + MASTER_YOUNG_MS;
        }
    }
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
        m->slots[i].respawn_at_ms = now;
        m->num_live--;
        /* The slot is the master's again: no worker serves from it. */
        board_set_file(m->board, (unsigned)i, 0, now);
        board_set_connections(m->board, (unsigned)i, BOARD_NO_WORKER);
        metrics_worker_gone((unsigned)i);
        metrics_set_workers(m->num_live);
        master_log_death(pid, status, lived);
        if (m->shutting_down)
            continue;
        int by_itself = WIFEXITED(status) ? WEXITSTATUS(status) != 0 : WTERMSIG(status) != SIGKILL;
        if (lived < MASTER_YOUNG_MS && by_itself) {
            m->slots[i].respawn_at_ms = now + MASTER_YOUNG_MS;
            log_warn("worker %d died %lld ms after start: respawning in %d ms", (int)pid,
                     (long long)lived, MASTER_YOUNG_MS);
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
    /* The deadline, not a signal, decides when stragglers are killed: a
     * SIGALRM armed for a respawn may still arrive (see the main loop). */
    m->kill_at_ms = master_now_ms() + m->cfg->grace_ms;
}

/* Whether no worker has been able to use tasks.json for --grace: then the
 * master gives up, so that a supervisor (Docker's restart policy, systemd)
 * restarts the server and shows the failure, instead of a server that only
 * answers 503. */
static int master_board_says_stop(struct master *m, int64_t now)
{
    int64_t since;
    if (!board_no_file_since(m->board, &since) || now - since < (int64_t)m->cfg->grace_ms)
        return 0;
    log_error("no worker has been able to use %s for %lld.%03lld s (--grace): exiting with "
              "status 1",
              m->cfg->file, (long long)((now - since) / 1000), (long long)((now - since) % 1000));
    return 1;
}

/* Arms the timer for the earliest deadline (see "Time" above). */
static void master_arm(struct master *m, int64_t now)
{
    int64_t next = INT64_MAX;
    if (m->shutting_down) {
        if (!m->killed && m->num_live > 0)
            next = m->kill_at_ms;
    } else {
        next = now + MASTER_BOARD_MS;
        for (size_t i = 0; i < m->cfg->workers; i++)
            if (m->slots[i].pid == 0 && m->slots[i].respawn_at_ms < next)
                next = m->slots[i].respawn_at_ms;
    }
    if (next == INT64_MAX)
        master_set_timer(0);
    else
        master_set_timer(next > now ? next - now : 1);
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
/* The background check of the file's body (task_store_check_body()), in a
 * child of its own at the lowest CPU and I/O priority, so that a server on a
 * large file listens as soon as its tail is checked. Its verdict reaches the
 * workers through the shared page; the master reaps it like any orphan. */
static void master_spawn_checker(struct master *m)
{
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork the background check of %s: %s; GET /tareas will wait", m->cfg->file,
                  strerror(errno));
        return;
    }
    if (pid > 0) {
        log_info("checking the whole of %s in the background (process %d)", m->cfg->file, (int)pid);
        return;
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    log_init("taskserver");
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != m->pid)
        master_child_exit(1);
    /* Idle priority: the check must not slow the requests down. */
    if (setpriority(PRIO_PROCESS, 0, 19) < 0)
        log_warn("setpriority for the background check: %s", strerror(errno));
    if (syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, 3 << 13 /* IOPRIO_CLASS_IDLE */) < 0)
        log_warn("ioprio_set for the background check: %s", strerror(errno));
    char err[512];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = task_store_check_body(m->cfg->file, board_store_shared(m->board), err, sizeof(err));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (rc == 0)
        log_info("%s: the whole file checked in the background in %ld ms: canonical", m->cfg->file,
                 ms);
    else
        log_error("%s (found by the background check; GET /tareas refuses the list, appends go "
                  "on: taskctl check says more)",
                  err);
    master_child_exit(rc == 0 ? 0 : 1);
}

int master_run(const struct config *cfg, int listen_fd, int check_body)
{
    struct master m;
    sigset_t orig_mask;
    sigset_t wait_mask;
    struct sigaction orig_actions[MASTER_NUM_SIGNALS];

    memset(&m, 0, sizeof(m));
    m.cfg = cfg;
    m.listen_fd = listen_fd;
    m.pid = getpid();
    m.slots = calloc(cfg->workers, sizeof(*m.slots));
    m.board = m.slots != NULL ? board_create(cfg->workers) : NULL;
    if (m.board == NULL) {
        log_error("allocate %u worker slots: %s", cfg->workers, strerror(errno));
        free(m.slots);
        master_close_listener(&m);
        return 1;
    }
    /* Before any fork: every worker inherits the one shared mapping. */
    char err[256];
    if (metrics_init(cfg->workers, err, sizeof(err)) < 0) {
        log_error("%s", err);
        free(m.slots);
        master_close_listener(&m);
        return 1;
    }
    master_got_child = master_got_terminate = master_got_quit = 0;
    master_got_hup = master_got_alarm = 0;
    if (master_install_signals(&orig_mask, orig_actions) < 0) {
        board_free(m.board);
        free(m.slots);
        master_close_listener(&m);
        return 1;
    }
    /* sigsuspend() waits with the caller's original mask minus our signals. */
    wait_mask = orig_mask;
    for (size_t i = 0; i < MASTER_NUM_SIGNALS; i++)
        sigdelset(&wait_mask, master_signals[i]);
    if (check_body) {
        /* Before any worker: a GET /tareas must wait for the verdict. */
        task_store_body_pending(board_store_shared(m.board), cfg->file);
        master_spawn_checker(&m);
    }

    proctitle_set("taskserver", "taskserver: master");

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
        master_got_alarm = 0; /* only a wake-up: the deadlines say what is due */
        int64_t now = master_now_ms();
        if (m.shutting_down) {
            if (m.num_live == 0) {
                log_info("all workers stopped");
                break;
            }
            if (!m.killed && now >= m.kill_at_ms) {
                log_warn("grace period over: SIGKILL to %u workers", m.num_live);
                master_kill_all(&m, SIGKILL);
                m.killed = 1;
            }
        } else {
            master_fill_slots(&m, now);
            if (master_board_says_stop(&m, now)) {
                m.status = 1;
                master_begin_shutdown(&m);
                continue;
            }
        }
        master_arm(&m, now);
        sigsuspend(&wait_mask);
    }

    master_close_listener(&m);
    master_restore_signals(&orig_mask, orig_actions);
    board_free(m.board);
    free(m.slots);
    return m.status;
}
