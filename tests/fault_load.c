/* fault_load.c - a time-bounded POST load for the fault suite that records every acknowledged task.
 *
 *     fault_load -p PORT -o DIR [-c CLIENTS] [-d DURATION_MS] [-n MAX] [-i PREFIX]
 *                [-t TIMEOUT_MS] [-x STATUS] [-l]
 *
 * Forks CLIENTS processes (default 8). Client k is cliente "PREFIXk" (PREFIX
 * default "c") and POSTs {"titulo":..,"cliente":..,"seq":s} for s = 1, 2, ...
 * over one keep-alive connection, until DURATION_MS (default 10000) has passed,
 * MAX requests were sent, the file DIR/stop exists, or (with -x) the server
 * answered STATUS once. Each 201 appends its seq to DIR/ack.PREFIXk the moment
 * it arrives, so the record survives whatever happens to this program later.
 * With -l, every request is also logged to DIR/log.PREFIXk as one line
 * "seq sent_ns answered_ns status" (CLOCK_MONOTONIC, status 0: no response),
 * so that a test can tell which answers came after a change it made at a
 * known moment (the outside suite).
 *
 * A seq is never sent twice: a request that failed (reset, EOF, timeout,
 * another status) may or may not be stored, and resending it under the same
 * seq would make "stored exactly once" unprovable. A refused connect sends
 * nothing, so the seq is kept and the connect retried after 20 ms.
 *
 * The clients are processes rather than a poll loop on purpose: each one is a
 * plain blocking request-response loop, easy to trust, and the fault tests
 * need at most a few dozen.
 *
 * Prints one line when every client has finished:
 *     sent=S acked=A failed=F refused=R statuses=201:A,503:N
 * (failed: sent but no response; refused: connects refused or reset at once).
 * Exit status: 0 done, 2 usage error, 3 system error.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "driver.h"

#define LOAD_MAX_CLIENTS 64
#define LOAD_MAX_STATUS 600
#define LOAD_RESP_MAX 65536 /* a POST answer is small: a task or an error object */

static long load_port;
static const char *load_dir;
static const char *load_prefix = "c";
static long load_clients = 8;
static long load_duration_ms = 10000;
static long load_max = 0; /* 0: no limit but the duration */
static long load_timeout_ms = 10000;
static long load_stop_status = 0;
static int load_log = 0; /* -l: DIR/log.CLIENTE, one line per request */

/* What one client counted; written to DIR/stats.CLIENTE for the parent. */
struct load_counts {
    long sent;
    long acked;
    long failed;
    long refused;
    long status[LOAD_MAX_STATUS];
};

/* Reads one response within deadline. Returns its status (> 0) and sets
 * *keep to 0 if the server said Connection: close; -1 on EOF, reset, timeout
 * or a response this loader cannot parse. */
static int read_response(int fd, long long deadline, int *keep)
{
    static char buf[LOAD_RESP_MAX];
    size_t len = 0;
    *keep = 1;
    for (;;) {
        const char *end = memmem(buf, len, "\r\n\r\n", 4);
        if (end != NULL) {
            size_t head_len = (size_t)(end - buf) + 4, v_len;
            int status = driver_http_status(buf, head_len);
            if (status < 0)
                return -1;
            const char *v = driver_http_header(buf, head_len, "Content-Length", &v_len);
            long body_len = v != NULL ? atol(v) : 0; /* the value ends at its CR */
            v = driver_http_header(buf, head_len, "Connection", &v_len);
            if (v != NULL && memmem(v, v_len, "close", 5) != NULL)
                *keep = 0;
            if (body_len < 0 || head_len + (size_t)body_len > LOAD_RESP_MAX)
                return -1;
            if (len >= head_len + (size_t)body_len) {
                /* Anything after it would be a second response nobody asked for. */
                if (len > head_len + (size_t)body_len)
                    *keep = 0;
                return status;
            }
        }
        if (len == LOAD_RESP_MAX)
            return -1;
        long long left = deadline - driver_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        ssize_t r = recv(fd, buf + len, LOAD_RESP_MAX - len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        len += (size_t)r;
    }
}

/* Appends a line to an ack or log file at once: the record must outlive this process. */
static void load_record(int fd, const char *line, int n, const char *path)
{
    ssize_t w;
    do
        w = write(fd, line, (size_t)n);
    while (w < 0 && errno == EINTR);
    if (w != n) {
        fprintf(stderr, "fault_load: write %s: %s\n", path,
                w < 0 ? strerror(errno) : "short write");
        exit(3);
    }
}

static void load_record_ack(int ack_fd, long seq, const char *ack_path)
{
    char line[32];
    int n = snprintf(line, sizeof(line), "%ld\n", seq);
    load_record(ack_fd, line, n, ack_path);
}

static void load_record_log(int log_fd, long seq, long long sent_ns, int status,
                            const char *log_path)
{
    char line[96];
    int n = snprintf(line, sizeof(line), "%ld %lld %lld %d\n", seq, sent_ns, driver_now_ns(),
                     status < 0 ? 0 : status);
    load_record(log_fd, line, n, log_path);
}

/* One client's loop; never returns. */
static void load_client(int k, long long deadline)
{
    char cliente[64], ack_path[4096], stop_path[4096], stats_path[4096], log_path[4096];
    snprintf(cliente, sizeof(cliente), "%s%d", load_prefix, k);
    snprintf(ack_path, sizeof(ack_path), "%s/ack.%s", load_dir, cliente);
    snprintf(log_path, sizeof(log_path), "%s/log.%s", load_dir, cliente);
    snprintf(stop_path, sizeof(stop_path), "%s/stop", load_dir);
    snprintf(stats_path, sizeof(stats_path), "%s/stats.%s", load_dir, cliente);
    int ack_fd = open(ack_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (ack_fd < 0) {
        fprintf(stderr, "fault_load: open %s: %s\n", ack_path, strerror(errno));
        exit(3);
    }
    int log_fd = -1;
    if (load_log &&
        (log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644)) < 0) {
        fprintf(stderr, "fault_load: open %s: %s\n", log_path, strerror(errno));
        exit(3);
    }
    struct load_counts *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        perror("fault_load: calloc");
        exit(3);
    }
    int fd = -1;
    long seq = 1;
    while (driver_now_ms() < deadline && (load_max == 0 || c->sent < load_max) &&
           access(stop_path, F_OK) < 0) {
        if (fd < 0 && (fd = driver_connect("127.0.0.1", load_port, 0)) < 0) {
            c->refused++;
            driver_sleep_ms(20);
            continue;
        }
        char body[256], req[512];
        int body_len = snprintf(body, sizeof(body),
                                "{\"titulo\":\"falla %s %ld\",\"cliente\":\"%s\",\"seq\":%ld}",
                                cliente, seq, cliente, seq);
        int req_len = snprintf(req, sizeof(req),
                               "POST /tareas HTTP/1.1\r\nHost: 127.0.0.1:%ld\r\n"
                               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                               load_port, body_len, body);
        long long sent_ns = driver_now_ns();
        if (driver_send_all(fd, req, (size_t)req_len) < 0) {
            /* Nothing may have reached a worker, but a seq is never reused. */
            if (log_fd >= 0)
                load_record_log(log_fd, seq, sent_ns, 0, log_path);
            c->sent++;
            c->failed++;
            seq++;
            close(fd);
            fd = -1;
            continue;
        }
        c->sent++;
        int keep;
        int status = read_response(fd, driver_now_ms() + load_timeout_ms, &keep);
        if (log_fd >= 0)
            load_record_log(log_fd, seq, sent_ns, status, log_path);
        if (status < 0) {
            c->failed++;
            keep = 0;
        } else {
            c->status[status < LOAD_MAX_STATUS ? status : 0]++;
            if (status == 201) {
                c->acked++;
                load_record_ack(ack_fd, seq, ack_path);
            }
        }
        seq++;
        if (!keep) {
            close(fd);
            fd = -1;
        }
        if (load_stop_status != 0 && status == load_stop_status)
            break;
    }
    if (fd >= 0)
        close(fd);
    close(ack_fd);
    if (log_fd >= 0)
        close(log_fd);
    FILE *f = fopen(stats_path, "w");
    if (f == NULL) {
        fprintf(stderr, "fault_load: open %s: %s\n", stats_path, strerror(errno));
        exit(3);
    }
    fprintf(f, "%ld %ld %ld %ld\n", c->sent, c->acked, c->failed, c->refused);
    for (int s = 0; s < LOAD_MAX_STATUS; s++)
        if (c->status[s])
            fprintf(f, "%d %ld\n", s, c->status[s]);
    if (fclose(f) != 0) {
        fprintf(stderr, "fault_load: write %s: %s\n", stats_path, strerror(errno));
        exit(3);
    }
    free(c);
    exit(0);
}

/* Adds one client's stats file to the totals. Returns 0, or -1 with a message. */
static int load_add_stats(int k, struct load_counts *t)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/stats.%s%d", load_dir, load_prefix, k);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "fault_load: open %s: %s\n", path, strerror(errno));
        return -1;
    }
    long sent, acked, failed, refused, n;
    int s;
    if (fscanf(f, "%ld %ld %ld %ld", &sent, &acked, &failed, &refused) != 4) {
        fprintf(stderr, "fault_load: %s: bad stats line\n", path);
        fclose(f);
        return -1;
    }
    t->sent += sent;
    t->acked += acked;
    t->failed += failed;
    t->refused += refused;
    while (fscanf(f, "%d %ld", &s, &n) == 2)
        if (s >= 0 && s < LOAD_MAX_STATUS)
            t->status[s] += n;
    fclose(f);
    return 0;
}

static const char load_usage[] =
    "usage: fault_load -p PORT -o DIR [-c CLIENTS] [-d DURATION_MS] [-n MAX]\n"
    "                  [-i PREFIX] [-t TIMEOUT_MS] [-x STATUS] [-l]\n";

static const struct driver_option load_options[] = {
    {'p', NULL, DRIVER_OPT_LONG, &load_port, 1, 65535, 1},
    {'o', NULL, DRIVER_OPT_TEXT, &load_dir, 0, 0, 1},
    {'c', NULL, DRIVER_OPT_LONG, &load_clients, 1, LOAD_MAX_CLIENTS, 0},
    {'d', NULL, DRIVER_OPT_LONG, &load_duration_ms, 0, LONG_MAX / 2, 0},
    {'n', NULL, DRIVER_OPT_LONG, &load_max, 0, LONG_MAX, 0},
    {'i', NULL, DRIVER_OPT_TEXT, &load_prefix, 0, 0, 0},
    {'t', NULL, DRIVER_OPT_LONG, &load_timeout_ms, 1, INT_MAX, 0},
    {'x', NULL, DRIVER_OPT_LONG, &load_stop_status, 0, LOAD_MAX_STATUS - 1, 0},
    {'l', NULL, DRIVER_OPT_FLAG, &load_log, 0, 0, 0},
};

int main(int argc, char **argv)
{
    if (driver_options("fault_load", load_usage, argc, argv, load_options,
                       sizeof(load_options) / sizeof(load_options[0]), 0) != argc ||
        strlen(load_prefix) > 32) {
        fputs(load_usage, stderr);
        return 2;
    }
    int clients = (int)load_clients;
    long long deadline = driver_now_ms() + load_duration_ms;
    pid_t pids[LOAD_MAX_CLIENTS];
    for (int k = 1; k <= clients; k++) {
        pids[k - 1] = fork();
        if (pids[k - 1] < 0) {
            fprintf(stderr, "fault_load: fork: %s\n", strerror(errno));
            for (int j = 0; j < k - 1; j++)
                kill(pids[j], SIGKILL);
            return 3;
        }
        if (pids[k - 1] == 0)
            load_client(k, deadline);
    }
    int bad = 0;
    for (int k = 0; k < clients; k++) {
        int st;
        pid_t r;
        do
            r = waitpid(pids[k], &st, 0);
        while (r < 0 && errno == EINTR);
        if (r < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "fault_load: client %s%d (pid %d) failed\n", load_prefix, k + 1,
                    (int)pids[k]);
            bad = 1;
        }
    }
    struct load_counts *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        perror("fault_load: calloc");
        return 3;
    }
    for (int k = 1; k <= clients && !bad; k++)
        if (load_add_stats(k, t) < 0)
            bad = 1;
    printf("sent=%ld acked=%ld failed=%ld refused=%ld statuses=", t->sent, t->acked, t->failed,
           t->refused);
    const char *sep = "";
    for (int s = 0; s < LOAD_MAX_STATUS; s++) {
        if (t->status[s]) {
            printf("%s%d:%ld", sep, s, t->status[s]);
            sep = ",";
        }
    }
    printf("\n");
    free(t);
    return bad ? 3 : 0;
}
