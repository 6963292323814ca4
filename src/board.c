/* board.c - the workers' shared page of state for the master. */
#include "board.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/mman.h>

#include "task_store.h"

struct board_slot {
    _Atomic int64_t no_file_since_ms; /* 0: the worker can use tasks.json */
    _Atomic uint32_t connections;     /* open connections; BOARD_NO_WORKER: no worker */
};

struct board {
    unsigned num_slots;
    size_t size;
    struct task_store_shared *store; /* after the slots, in the same mapping */
    struct board_slot slots[];
};

struct board *board_create(unsigned num_workers)
{
    size_t slots = sizeof(struct board) + num_workers * sizeof(struct board_slot);
    size_t align = _Alignof(max_align_t);
    slots = (slots + align - 1) / align * align;
    size_t size = slots + task_store_shared_size();
    /* Anonymous and shared: inherited by every fork, no file, no name. */
    struct board *b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED)
        return NULL;
    b->num_slots = num_workers;
    b->size = size;
    b->store = (struct task_store_shared *)((char *)b + slots);
    task_store_shared_init(b->store);
    for (unsigned i = 0; i < num_workers; i++) {
        atomic_init(&b->slots[i].no_file_since_ms, 0);
        atomic_init(&b->slots[i].connections, BOARD_NO_WORKER);
    }
    return b;
}

struct task_store_shared *board_store_shared(struct board *b)
{
    return b != NULL ? b->store : NULL;
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
