/*
 * fixed.h - what the reports read of a pool's fixed-size object pools
 * (fixed.c holds the pools and their rules).
 */
#ifndef MPOOL_FIXED_H
#define MPOOL_FIXED_H

#include "pool.h"

/* One fixed pool as mpool_report shows it. */
struct fixed_summary {
    const void *fp;       /* the mpool_fixed_t, as an identity */
    size_t object_size;   /* config.object_size */
    size_t stride;        /* bytes between objects (size rounded to the alignment) */
    size_t in_use;        /* live objects */
    size_t capacity;      /* objects the chunks hold */
    size_t chunks;        /* chunks taken from the pool */
    size_t bytes;         /* bytes of those chunks */
    bool thread_safe;
    size_t failures;      /* allocations refused (max_count, memory) */
    size_t invalid_frees; /* frees refused (invalid pointer, double free) */
};

/* Calls fn for every fixed pool of pool, newest first, under the pool's list
 * lock (fn must not create or destroy fixed pools of it); returns how many.
 * Allocates nothing. */
size_t fixed_pool_each(struct mpool_pool *pool, void (*fn)(const struct fixed_summary *s, void *arg),
                       void *arg) mpool_internal;

#endif /* MPOOL_FIXED_H */
