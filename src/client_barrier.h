/* client_barrier.h - clients that start at one instant and then learn how long they overlapped.
 *
 * Calling sequence (each of the `parties` clients, possibly in different containers that
 * share DIR and run on one kernel):
 *
 *   struct client_barrier b;
 *   if (client_barrier_init(&b, dir, id, parties, timeout_ms, err, n) < 0) ...  (usage)
 *   ...set up everything the load needs...
 *   if (client_barrier_start(&b, err, n) < 0) ...     (the others never came: give up)
 *   ...send; b.start_ns is the common start instant...
 *   struct client_barrier_span me = {b.start_ns or later, end, sent, acked};
 *   struct client_barrier_overlap ov;
 *   client_barrier_finish(&b, &me, &ov, err, n);       (waits for the others' spans)
 *   client_barrier_result(&b, "exit=0\nsent=100\n...", err, n);   (for a verifier)
 *
 * The barrier. Each client writes DIR/ready/NAME holding its arrival time, then waits
 * until `parties` files are there. Every client then reads the same arrival times, so each
 * computes the same start instant: the last arrival plus CLIENT_BARRIER_LEAD_MS, enough
 * for every waiter to notice the last file. All sleep until that instant on CLOCK_REALTIME
 * (one clock for every container on a host: containers share the kernel's clocks) and
 * start together. A client that notices too late starts at once; b.late_ns says by how
 * much. More than `parties` ready files (CLIENTS set too low) still gives one instant for
 * the clients that see them all; the verifier reports the count mismatch.
 *
 * After the load each client writes DIR/done/NAME (its span and counts), waits (bounded)
 * until `parties` spans are there and computes how long it overlapped with the others.
 *
 * Files: DIR/ready/NAME, DIR/done/NAME, DIR/result/NAME; NAME is the id with every byte
 * outside [A-Za-z0-9._@-] replaced by '_'. Each is written under a temporary name and
 * renamed, so readers see it whole or not at all. DIR serves one run: a second arrival
 * under the same NAME is refused. Errors: -1 with err naming the file and strerror(errno).
 * All waits poll every CLIENT_BARRIER_POLL_MS and end at timeout_ms.
 */
#ifndef TASKSERVER_CLIENT_BARRIER_H
#define TASKSERVER_CLIENT_BARRIER_H

#include <stddef.h>
#include <stdint.h>

#define CLIENT_BARRIER_LEAD_MS 100
#define CLIENT_BARRIER_POLL_MS 2
#define CLIENT_BARRIER_NAME_MAX 256
#define CLIENT_BARRIER_PATH_MAX 4096

struct client_barrier {
    char dir[CLIENT_BARRIER_PATH_MAX];
    char name[CLIENT_BARRIER_NAME_MAX];
    unsigned parties;
    long timeout_ms;
    unsigned num_ready; /* ready files seen when the start instant was computed */
    uint64_t start_ns;  /* the common start instant, ns on CLOCK_REALTIME */
    uint64_t late_ns;   /* how long after start_ns this client woke up */
};

struct client_barrier_span {
    uint64_t start_ns, end_ns; /* CLOCK_REALTIME: first request sent, last answer */
    uint64_t sent, acked;
};

struct client_barrier_overlap {
    unsigned num_spans; /* spans read, this client's included */
    uint64_t mine_ns;   /* this client's span */
    uint64_t shared_ns; /* of it, while at least one other client was sending */
    uint64_t all_ns;    /* while every client that reported was sending */
    uint64_t union_ns;  /* while any client was sending */
};

/* Checks and copies the settings. Returns 0, or -1 with err. */
int client_barrier_init(struct client_barrier *b, const char *dir, const char *id, unsigned parties,
                        long timeout_ms, char *err, size_t err_len);

/* Arrives, waits for the others and sleeps until the common instant. Returns 0, or -1
 * with err (a file could not be written or read, or fewer than parties arrived in time). */
int client_barrier_start(struct client_barrier *b, char *err, size_t err_len);

/* Publishes this client's span and waits for the others' (bounded). Fills *ov from the
 * spans that arrived, even on a timeout. Returns 0 when all parties reported, 1 when
 * fewer did in time (err says how many), -1 on a file error (err). */
int client_barrier_finish(struct client_barrier *b, const struct client_barrier_span *mine,
                          struct client_barrier_overlap *ov, char *err, size_t err_len);

/* Writes text as DIR/result/NAME. Returns 0, or -1 with err. */
int client_barrier_result(const struct client_barrier *b, const char *text, char *err,
                          size_t err_len);

/* ns on CLOCK_REALTIME. */
uint64_t client_barrier_now_ns(void);

#endif
