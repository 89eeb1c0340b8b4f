/*
 * arena.h - what the rest of the library knows of arenas (arena.c): the
 * pool's list of its arenas, tearing them down with the pool, and the
 * figures of each for mpool_report.
 */
#ifndef MPOOL_ARENA_H
#define MPOOL_ARENA_H

#include <stddef.h>

#include "common.h"
#include "lock.h"

struct mpool_pool;
struct mpool_arena;

/* The arenas of a pool (struct mpool_pool, field arenas): the roots, newest
 * first; each arena lists its children.  The lock (taken only in a
 * thread-safe pool) covers these lists and the return of an arena's memory
 * to the pool, so a report on another thread walks them safely.  A zeroed
 * list is an empty one. */
struct arena_list {
    mpool_lock_t lock;
    struct mpool_arena *head;
};

/* One arena as mpool_report shows it. */
struct arena_figures {
    const void *arena;
    const void *parent;   /* NULL for an arena made by mpool_arena_create */
    unsigned depth;       /* 0 for those, 1 for their children, ... */
    size_t used;          /* mpool_arena_used */
    size_t held;          /* mpool_arena_held */
    size_t chunk_size;
    size_t max_size;      /* 0: no cap of its own */
};

/* Calls visit for every live arena of pool, parents before their children,
 * under the list's lock; returns the number visited.  visit must not call
 * the arenas of pool.  An arena that its thread is using meanwhile shows
 * figures it had recently. */
size_t arena_pool_visit(const struct mpool_pool *pool, void (*visit)(const struct arena_figures *, void *),
                        void *arg) mpool_internal;

/* Destroys every arena of pool (children, cleanups) without giving their
 * memory back: mpool_reset and mpool_destroy of the pool drop it whole.
 * No other thread may use the pool or its arenas. */
void arena_pool_release(struct mpool_pool *pool) mpool_internal;

#endif /* MPOOL_ARENA_H */
