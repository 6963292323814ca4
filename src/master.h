/* master.h - the master process: fork N workers, supervise, respawn, shut down.
 *
 *     int listen_fd = net_listen(...);      (before master_run)
 *     return master_run(&cfg, listen_fd, check_body);   (exit status of taskserver)
 *
 * The master never touches tasks.json after the start-up check. It reaps every
 * child (it may be PID 1 in a container), replaces a worker that dies (after a
 * second when it died young by itself: no fork storm), and on SIGTERM or
 * SIGINT forwards SIGTERM, waits up to cfg->grace_ms, then SIGKILLs stragglers
 * and returns 0. SIGQUIT: SIGKILL to all workers, return at once. When no
 * worker has been able to use tasks.json for cfg->grace_ms (board.h), it shuts
 * down the same way and returns 1, so that a supervisor restarts the server.
 *
 * master_run() owns listen_fd from then on: it keeps it open while it runs
 * (the queue of pending connections outlives a killed worker) and closes it
 * when shutdown begins, so that new clients are refused at once.
 */
#ifndef TASKSERVER_MASTER_H
#define TASKSERVER_MASTER_H

#include "config.h"

/* check_body: only the file's tail was checked at start (task_store_check()
 * with TASK_STORE_TAIL_ONLY): the master has the body checked in the
 * background, and GET /tareas waits for the verdict. */
int master_run(const struct config *cfg, int listen_fd, int check_body);

#endif
