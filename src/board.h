/* board.h - the page the master shares with its workers: one slot per worker (what each tells
 * the master), and the store's group-commit state (what the workers tell each other).
 *
 *     struct board *b = board_create(num_workers);   master, before the first fork
 *     worker, whenever it changes:   board_set_file(b, index, ok, now_ms);
 *     master, at a fork or a death:  board_set_file(b, index, ok, now_ms);
 *     master, now and then:          if (board_no_file_since(b, &since)) ...
 *     worker, each loop turn:        board_set_connections(b, index, n);
 *     worker, at its limit:          if (board_other_has_room(b, index, max)) stop accepting
 *     board_free(b);                                  master, at the end
 *
 * A slot has one writer at a time: the worker of that index while it lives,
 * the master otherwise (a dead worker's slot, and the fresh slot of a new
 * worker just before its fork). Values are single words written and read with
 * relaxed atomics: the master only needs to see them eventually.
 *
 * Errors: board_create() returns NULL with errno (mmap failed).
 */
#ifndef TASKSERVER_BOARD_H
#define TASKSERVER_BOARD_H

#include <stdint.h>

struct board;

struct board *board_create(unsigned num_workers);
void board_free(struct board *b);

/* The store's shared state (task_store.h, task_store_sync.c), for every
 * worker's store options. */
struct task_store_shared *board_store_shared(struct board *b);

/* Slot index says whether its worker can use tasks.json (ok), or since when
 * (monotonic ms) it cannot: it could not open the file, or the path names
 * nothing usable. */
void board_set_file(struct board *b, unsigned index, int ok, int64_t now_ms);

/* 1 when no slot's worker can use the file; *since is the last moment one
 * could (the latest of the slots' "since"). 0 when at least one can. */
int board_no_file_since(const struct board *b, int64_t *since);

/* The open connections of slot index's worker; BOARD_NO_WORKER while the
 * slot has none (the master sets it at a death, and 0 at a fork). */
#define BOARD_NO_WORKER UINT32_MAX
void board_set_connections(struct board *b, unsigned index, uint32_t n);

/* Whether a worker other than index has fewer than max connections. */
int board_other_has_room(const struct board *b, unsigned index, uint32_t max);

#endif
