/* conn.h - HTTP connections of one worker: read, parse, dispatch to the api, write, keep-alive.
 *
 * Calling sequence (in a worker, single-threaded, after the store and api exist):
 *
 *     struct conn_server *srv = conn_server_create(loop, api, cfg);
 *     conn_server_on_response(srv, fn, arg);   optional: each response's status
 *     conn_server_set_access_log(srv, al);     optional: one line per response
 *     on each accepted socket (non-blocking):
 *         if (conn_server_count(srv) >= cfg->max_connections)
 *             conn_reject(srv, fd);            short 503, Connection: close, fd closed
 *         else
 *             conn_open(srv, fd);              the connection now owns fd
 *     after every event_loop_poll():
 *         conn_server_tick(srv);               stores the turn's POSTs; clock, Date header,
 *                                              timeouts
 *     graceful shutdown:
 *         conn_server_drain(srv);              idle connections closed, later responses close
 *         ... poll until conn_server_count(srv) == 0
 *     conn_server_free(srv);                   closes whatever is left
 *
 * The connections register themselves in the loop and are driven by its
 * callbacks; the caller only accepts and ticks. A connection serves one
 * request at a time and answers pipelined requests in order. Memory: a
 * connection with nothing buffered holds no buffer, only its small struct.
 * The poll timeout must be at most CONN_TICK_MS while connections exist, so
 * that deadlines are enforced.
 */
#ifndef TASKSERVER_CONN_H
#define TASKSERVER_CONN_H

#include "api.h"
#include "config.h"
#include "event_loop.h"

#define CONN_TICK_MS 250 /* deadlines are checked this often (at most) */

struct conn_server;

/* Returns a server for connections on loop answering through api, or NULL
 * with errno. cfg, loop and api must outlive it. */
struct conn_server *conn_server_create(struct event_loop *loop, struct api *api,
                                       const struct config *cfg);

/* Logs each response to al (NULL: no access log); al must outlive srv. */
struct access_log;
void conn_server_set_access_log(struct conn_server *srv, struct access_log *al);

/* Closes every connection and frees the server. */
void conn_server_free(struct conn_server *srv);

/* Called with the status of every response about to be sent (tracing, metrics): must be
 * quick. fn NULL: none. */
typedef void conn_response_fn(void *arg, int status);
void conn_server_on_response(struct conn_server *srv, conn_response_fn *fn, void *arg);

/* Number of open connections. */
unsigned conn_server_count(const struct conn_server *srv);

/* Stores the POSTs queued since the last call (every POST that a turn of the
 * event loop brings goes to the api's batch: one store call for all of them)
 * and answers them, in order. conn_server_tick() calls it; call it directly
 * only outside the loop (tests). */
void conn_server_flush(struct conn_server *srv);

/* Stores the turn's POSTs (conn_server_flush), refreshes the cached clock and
 * Date header; at most every CONN_TICK_MS,
 * expires connections past their deadline (header and body timeouts: 408;
 * idle keep-alive and stalled readers: closed silently). */
void conn_server_tick(struct conn_server *srv);

/* Starts a graceful shutdown: closes idle connections now; every response
 * from now on carries Connection: close and ends its connection. */
void conn_server_drain(struct conn_server *srv);

/* Takes ownership of an accepted non-blocking socket and starts reading
 * requests on it. Returns 0, or -1 with errno (fd has been closed). */
int conn_open(struct conn_server *srv, int fd);

/* Answers a freshly accepted socket with 503 and Connection: close, without
 * reading it, and closes it (the per-worker connection limit). */
void conn_reject(struct conn_server *srv, int fd);

#endif
