/* worker.c - one worker process: signals, the store, the accept loop and the event loop. */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include "access_log.h"
#include "api.h"
#include "board.h"
#include "conn.h"
#include "event_loop.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "task_store.h"
#include "trace.h"

#define WORKER_ACCEPT_BATCH 64    /* accepts per wake-up: fairness with open connections */
#define WORKER_FILE_CHECK_MS 1000 /* how often a worker looks at the file by itself */

static int64_t worker_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static volatile sig_atomic_t worker_stop;     /* SIGTERM, SIGINT: graceful */
static volatile sig_atomic_t worker_stop_now; /* SIGQUIT: immediate */

struct worker {
    const struct config *cfg;
    struct event_loop *loop;
    struct board *board;
    unsigned index;
    int listen_fd;
    int accepting;
    int paused;   /* at its --max-connections while another worker has room: the
                     listening socket is out of the epoll set (worker_balance) */
    int spare_fd; /* /dev/null, given up to accept (and drop) when out of descriptors */
    struct conn_server *srv;
    struct api *api;
    struct access_log *access_log;
    int64_t no_file_reported; /* what the board was last told (board_set_file) */
    int64_t file_checked_ms;  /* api_check_file(), about once a second */
    unsigned emfile_logged;
    struct trace *trace; /* --trace: this worker's event log, else NULL */
};

/* The store's one observer: fans each event out to whoever watches (metrics;
 * tracing joins here). Called inside store calls, possibly under the file
 * lock: every branch must be quick, must not block and must not call the store. */
static void worker_on_signal(int sig)
{
    int saved_errno = errno;
    if (sig == SIGQUIT)
        worker_stop_now = 1;
    else
        worker_stop = 1;
    errno = saved_errno;
}

/* Installs the handlers and blocks the three signals; *wait_mask receives
 * the mask to wait with, where they are deliverable. Signals are only ever
 * delivered inside epoll_pwait, so a flag set just before the wait cannot
 * be missed: the wait returns EINTR at once. */
static int worker_signals(sigset_t *wait_mask)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGQUIT};
    struct sigaction sa;
    sigset_t block;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0)
        return -1;
    sigemptyset(&block);
    sa.sa_handler = worker_on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        sigaddset(&block, sigs[i]);
        if (sigaction(sigs[i], &sa, NULL) < 0)
            return -1;
    }
    /* The master may have left SIGCHLD and friends blocked for its own
     * sigsuspend loop; the worker needs only its three. */
    if (sigprocmask(SIG_BLOCK, &block, wait_mask) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigdelset(wait_mask, sigs[i]);
    return 0;
}

/* The store's observer: one function that hands each event to whoever watches (tracing,
 * metrics), each only when enabled. Runs under the file lock: quick, no blocking. */
static void worker_observe(void *arg, const struct task_store_event *ev)
{
    struct worker *w = arg;
    if (METRICS_ENABLED)
        metrics_observe_store(ev);
    if (w->trace != NULL)
        trace_store_event(w->trace, ev);
}

/* The status of every response, to the same watchers. */
static void worker_on_response(void *arg, int status)
{
    struct worker *w = arg;
    if (w->trace != NULL)
        trace_response(w->trace, status);
}

/* Out of descriptors with connections pending: level-triggered epoll would
 * report the listening socket forever. Free one descriptor, accept the
 * oldest pending connection, tell it 503, close it, take the spare back. */
static void worker_shed_one(struct worker *w)
{
    if (w->spare_fd >= 0) {
        close(w->spare_fd);
        w->spare_fd = -1;
    }
    int fd = net_accept(w->listen_fd);
    if (fd >= 0)
        conn_reject(w->srv, fd);
    /* Take the spare back at once; if another descriptor was freed and reused
     * meanwhile this fails, and the next shedding simply has none to give up. */
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (w->spare_fd < 0 && w->emfile_logged % 1000 == 0)
        log_warn("/dev/null: reopening the spare descriptor: %s", strerror(errno));
    /* One line per burst, not one per connection. */
    if (w->emfile_logged++ % 1000 == 0)
        log_error("accept on listening socket: out of file descriptors; connections refused "
                  "with 503");
}

static void worker_on_accept(struct event_loop *loop, int fd, void *arg, unsigned events);

/* The connection limit is per worker, and new connections go to whichever
 * worker the kernel wakes: one worker can fill up while another has room. So
 * a worker at its limit takes the listening socket out of its epoll set while
 * another worker has room (the board says), and puts it back once it has room
 * itself or nobody has: only then are new connections refused (503). Called
 * before each accept at the limit, and once per loop turn. */
static void worker_balance(struct worker *w)
{
    unsigned n = conn_server_count(w->srv);
    unsigned max = w->cfg->max_connections;
    if (!w->accepting)
        return;
    if (!w->paused && n >= max && board_other_has_room(w->board, w->index, max)) {
        if (event_loop_del(w->loop, w->listen_fd) < 0)
            log_error("epoll del listening socket: %s", strerror(errno));
        else
            w->paused = 1;
    } else if (w->paused && (n < max || !board_other_has_room(w->board, w->index, max))) {
        if (event_loop_add(w->loop, w->listen_fd, EVENT_LOOP_READ | EVENT_LOOP_EXCLUSIVE,
                           worker_on_accept, w) < 0)
            log_error("epoll add listening socket: %s", strerror(errno));
        else
            w->paused = 0;
    }
}

static void worker_on_accept(struct event_loop *loop, int fd, void *arg, unsigned events)
{
    struct worker *w = arg;
    static const int one = 1;
    (void)loop;
    (void)events;

    for (int i = 0; i < WORKER_ACCEPT_BATCH; i++) {
        if (conn_server_count(w->srv) >= w->cfg->max_connections) {
            worker_balance(w);
            if (w->paused)
                return;
        }
        int cfd = net_accept(fd);
        if (cfd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == ECONNABORTED || errno == EPROTO || errno == EPERM)
                continue; /* that client gave up (or a firewall said no): next */
            if (errno == EMFILE || errno == ENFILE) {
                worker_shed_one(w);
                return;
            }
            log_error("accept on listening socket: %s", strerror(errno));
            return;
        }
        if (conn_server_count(w->srv) >= w->cfg->max_connections) {
            conn_reject(w->srv, cfd);
            continue;
        }
        /* Responses are written whole: small ones must not wait for an ACK. */
        if (setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 && errno != EOPNOTSUPP)
            log_warn("setsockopt tcp_nodelay on connection fd %d: %s", cfd, strerror(errno));
        if (conn_open(w->srv, cfd) < 0)
            log_error("connection fd %d: %s", cfd, strerror(errno));
    }
}

/* Graceful stop: the listening socket leaves the epoll set and is closed.
 * Leaving the set alone is not enough: while any process holds the socket
 * the kernel completes new handshakes and queues connections that nobody
 * will accept, and those clients hang. The master closes its copy too when
 * the shutdown begins; once the last copy is gone, new connections are
 * refused at once (RST) and the ones still queued are reset. */
static void worker_stop_accepting(struct worker *w, struct event_loop *loop)
{
    if (!w->accepting)
        return;
    if (!w->paused && event_loop_del(loop, w->listen_fd) < 0)
        log_error("epoll del listening socket: %s", strerror(errno));
    /* Never retried: the descriptor is gone even on EINTR. */
    if (close(w->listen_fd) < 0 && errno != EINTR)
        log_error("close listening socket: %s", strerror(errno));
    w->listen_fd = -1;
    w->accepting = 0;
}

/* The process itself, right after fork: logging, its metrics slot, dying
 * with the master, signals. Returns 0 or -1 (logged). */
static int worker_start(struct worker *w, pid_t master_pid, sigset_t *wait_mask)
{
    log_init("taskserver");
    log_set_quiet(w->cfg->quiet);
    /* Per-request errors (a stopped lock holder: one 503 each) must not flood the log. */
    log_set_rate_limit(1);
    /* The slot of the worker this one replaces, if any: its counts go on. */
    metrics_worker_start(w->index);
    /* The master may die without telling us (SIGKILL): then finish up like
     * on SIGTERM. The check after prctl closes the race where it died first. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0) {
        log_error("prctl pr_set_pdeathsig: %s", strerror(errno));
        return -1;
    }
    if (getppid() != master_pid) {
        log_error("master %ld is gone before the worker started", (long)master_pid);
        return -1;
    }
    if (worker_signals(wait_mask) < 0) {
        log_error("worker signal set-up: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* What the worker serves with: the trace, the api (and through it the store:
 * this process's own descriptor, hence its own locks), the connections, the
 * access log, the listening socket in the loop. Returns 0 or -1 (logged). */
static int worker_setup(struct worker *w)
{
    const struct config *cfg = w->cfg;
    char err[512];
    if (cfg->trace_dir[0] != '\0') {
        w->trace = trace_open(cfg->trace_dir, w->index, cfg->trace_max_events, err, sizeof(err));
        if (w->trace == NULL) {
            log_error("%s", err);
            return -1;
        }
    }
    struct task_store_options opts = {
        .fsync = cfg->fsync,
        .race_window_us = cfg->race_window_us,
        .lock_timeout_ms = cfg->lock_timeout_ms,
        .crash_after_bytes = -1,
        /* --quiet silences only the per-task lines: a repaired torn tail is
         * always logged (the store option is for tests). */
        .quiet = 0,
        .shared = board_store_shared(w->board), /* group commit with the other workers */
        /* No observer when nobody watches: the store then reads no clock for it. */
        .observe = METRICS_ENABLED || w->trace != NULL ? worker_observe : NULL,
        .observe_arg = w,
    };
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (w->spare_fd < 0) {
        log_error("open /dev/null: %s", strerror(errno));
        return -1;
    }
    w->loop = event_loop_create();
    /* A file that cannot be opened leaves the worker serving 503s with the
     * reason, never a listening socket that nobody answers (api.h). */
    w->api = w->loop ? api_create(cfg, &opts) : NULL;
    w->srv = w->api ? conn_server_create(w->loop, w->api, cfg) : NULL;
    if (w->srv == NULL) {
        log_error("worker set-up: %s", strerror(errno));
        return -1;
    }
    if (w->trace != NULL)
        conn_server_on_response(w->srv, worker_on_response, w);
    w->access_log = access_log_create();
    if (w->access_log == NULL && errno != 0) {
        log_error("access log buffer: %s", strerror(errno));
        return -1;
    }
    conn_server_set_access_log(w->srv, w->access_log);
    /* EPOLLEXCLUSIVE: a new connection wakes one idle worker, not all. */
    if (event_loop_add(w->loop, w->listen_fd, EVENT_LOOP_READ | EVENT_LOOP_EXCLUSIVE,
                       worker_on_accept, w) < 0) {
        log_error("epoll add listening socket: %s", strerror(errno));
        return -1;
    }
    w->accepting = 1;
    return 0;
}

/* Once per turn: what the master should know (board.h), and about once a
 * second, even with nothing to do, whether the file is still usable (the
 * master gives up when no worker can use it: an idle worker must know too,
 * not only the one that gets the requests). */
static void worker_report(struct worker *w)
{
    int64_t now = worker_now_ms();
    if (now - w->file_checked_ms >= WORKER_FILE_CHECK_MS) {
        api_check_file(w->api);
        w->file_checked_ms = now;
    }
    int64_t no_file = api_no_file_since(w->api);
    if (no_file != w->no_file_reported) {
        board_set_file(w->board, w->index, no_file == 0, no_file);
        w->no_file_reported = no_file;
    }
    board_set_connections(w->board, w->index, conn_server_count(w->srv));
    worker_balance(w);
}

/* Serves until a graceful stop has closed every connection, or SIGQUIT.
 * Returns 0, or -1 when the event loop fails. */
static int worker_loop(struct worker *w, const sigset_t *wait_mask)
{
    while (!worker_stop_now) {
        worker_report(w);
        if (worker_stop && w->accepting) {
            worker_stop_accepting(w, w->loop);
            conn_server_drain(w->srv);
        }
        if (!w->accepting && conn_server_count(w->srv) == 0)
            return 0;
        int timeout = conn_server_count(w->srv) > 0 ? CONN_TICK_MS : WORKER_FILE_CHECK_MS;
        if (event_loop_poll(w->loop, timeout, wait_mask) < 0) {
            log_error("epoll_pwait: %s", strerror(errno));
            return -1;
        }
        conn_server_tick(w->srv);
        /* With no connection the next wait may last forever: then write what is buffered. */
        if (w->trace != NULL)
            trace_turn(w->trace, conn_server_count(w->srv) == 0);
        /* Once per loop turn, not per request: one write for a whole batch. */
        access_log_flush(w->access_log);
        log_flush_suppressed(0);
    }
    return 0;
}

int worker_run(const struct config *cfg, int listen_fd, pid_t master_pid, unsigned index,
               struct board *board)
{
    struct worker w = {.cfg = cfg,
                       .board = board,
                       .index = index,
                       .listen_fd = listen_fd,
                       .spare_fd = -1,
                       .no_file_reported = -1,
                       .file_checked_ms = worker_now_ms()};
    sigset_t wait_mask;
    if (worker_start(&w, master_pid, &wait_mask) < 0)
        return 1;
    int status = worker_setup(&w) == 0 && worker_loop(&w, &wait_mask) == 0 ? 0 : 1;
    conn_server_free(w.srv);
    access_log_free(w.access_log);
    log_flush_suppressed(1);
    api_free(w.api);
    event_loop_free(w.loop);
    if (w.spare_fd >= 0)
        close(w.spare_fd);
    trace_close(w.trace);
    return status;
}
