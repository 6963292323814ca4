/* board.c - the workers' shared page of state for the master. */
#include "board.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/mman.h>

struct board_slot {
    _Atomic int64_t no_file_since_ms; /* 0: the worker can use tasks.json */
    _Atomic uint32_t connections;     /* open connections; BOARD_NO_WORKER: no worker */
};

struct board {
    unsigned num_slots;
    size_t size;
    struct board_slot slots[];
};

struct board *board_create(unsigned num_workers)
{
    size_t size = sizeof(struct board) + num_workers * sizeof(struct board_slot);
    /* Anonymous and shared: inherited by every fork, no file, no name. */
    struct board *b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED)
        return NULL;
    b->num_slots = num_workers;
    b->size = size;
    for (unsigned i = 0; i < num_workers; i++) {
        atomic_init(&b->slots[i].no_file_since_ms, 0);
        atomic_init(&b->slots[i].connections, BOARD_NO_WORKER);
    }
    return b;
}

void board_free(struct board *b)
{
    if (b != NULL)
        munmap(b, b->size);
}

void board_set_file(struct board *b, unsigned index, int ok, int64_t now_ms)
{
    if (b == NULL || index >= b->num_slots)
        return;
    int64_t v = ok ? 0 : (now_ms > 0 ? now_ms : 1);
    atomic_store_explicit(&b->slots[index].no_file_since_ms, v, memory_order_relaxed);
}

int board_no_file_since(const struct board *b, int64_t *since)
{
    int64_t latest = 0;
    for (unsigned i = 0; i < b->num_slots; i++) {
        int64_t v = atomic_load_explicit(&b->slots[i].no_file_since_ms, memory_order_relaxed);
        if (v == 0)
            return 0;
        if (v > latest)
            latest = v;
    }
    *since = latest;
    return b->num_slots > 0;
}

void board_set_connections(struct board *b, unsigned index, uint32_t n)
{
    if (b == NULL || index >= b->num_slots)
        return;
    atomic_store_explicit(&b->slots[index].connections, n, memory_order_relaxed);
}

int board_other_has_room(const struct board *b, unsigned index, uint32_t max)
{
    if (b == NULL)
        return 0;
    for (unsigned i = 0; i < b->num_slots; i++) {
        if (i == index)
            continue;
        uint32_t n = atomic_load_explicit(&b->slots[i].connections, memory_order_relaxed);
        if (n != BOARD_NO_WORKER && n < max)
            return 1;
    }
    return 0;
}
