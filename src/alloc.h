/*
 * alloc.h - block functions that the public API does not offer, for the
 * malloc replacement (dropin/).
 */
#ifndef MPOOL_ALLOC_H
#define MPOOL_ALLOC_H

#include <stddef.h>

#include "common.h"
#include "heap.h"

/* The usable size of the block starting at p, or 0 if p is foreign or not a
 * block start; unlike mpool_usable_size it does not prove the block is live
 * (no free-list walk), as malloc_usable_size need not. */
size_t alloc_usable_size_fast(const void *p) mpool_internal;

/* The block functions below the debug layer (debug.c), which wraps the
 * blocks of debug pools in these: alloc_any and the exact free of a live
 * block p of pool (false, with nothing reported, if p is not one). */
struct mpool_pool;
void *alloc_plain(struct mpool_pool *pool, size_t size, size_t align, const char *who, const void *old,
                  bool *zeroed, size_t *usable) mpool_internal;
bool free_plain(struct mpool_pool *pool, void *p) mpool_internal;

/* malloc and free: the owner's pop and push on the calling thread's heap of
 * the default pool, inline (heap.h); everything else in the slow halves. */
void *alloc_default_slow(size_t size) mpool_internal mpool_noinline;
void free_default_slow(void *p) mpool_internal mpool_noinline;

/* A block for malloc(size) (size at most SMALL_MAX) from the head of the
 * calling thread's default heap's current slab of the class, or NULL: then
 * malloc takes the slow half (no heap yet, an empty slab, a head without the
 * free mark: slab.h). */
static inline void *alloc_default_pop(size_t size)
{
    struct heap *h = mpool_default_heap;
    struct page *pg = h->current[mpool_default_pool.size_class[size]];
    void **b = pg->free;
    if (likely(b != NULL && slab_head_ok(b, h->key))) {
        pg->free = b[0];
        slab_set_used(pg, pg->used + 1);
        *block_mark(b) = 0;
        stat_inc(&heap_stats(h)->requests[size]);
        return b;
    }
    return NULL;
}

#endif /* MPOOL_ALLOC_H */
