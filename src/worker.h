/* worker.h - one worker process: an epoll loop serving HTTP on the shared listening socket.
 *
 * Called by the master in a freshly forked child:
 *     _exit(worker_run(&cfg, listen_fd, master_pid, index, board));
 * The worker opens tasks.json itself (its own descriptor, its own locks), serves
 * until SIGTERM (graceful: stop accepting, finish in-flight requests, close idle
 * connections) or SIGQUIT (immediate), and returns the exit status: 0 after a
 * graceful stop, 1 if it could not start (the master logs and throttles that).
 * index is the worker's slot in the master, 0..workers-1: a replacement worker
 * gets the slot (and the index) of the one it replaces. The worker keeps its
 * slot of the board up to date: whether it can use tasks.json (board.h). A
 * worker that cannot open the file does not exit: it answers 503 with the
 * reason and tries again (api.h).
 */
#ifndef TASKSERVER_WORKER_H
#define TASKSERVER_WORKER_H

#include <sys/types.h>

#include "board.h"
#include "config.h"

int worker_run(const struct config *cfg, int listen_fd, pid_t master_pid, unsigned index,
               struct board *board);

#endif
