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

/* malloc and free: the owner's pop and push on the calling thread's heap of
 * the default pool, inline (heap.h); everything else in the slow halves. */
void *alloc_default_slow(size_t size) mpool_internal mpool_noinline;
void free_default_slow(void *p) mpool_internal mpool_noinline;

/* The slab malloc pops for size (at most SMALL_MAX): the calling thread's
 * default heap's current slab of the class, or the empty sentinel. */
static inline struct page *alloc_default_slab(size_t size)
{
    return mpool_default_heap->current[mpool_default_pool.size_class[size]];
}

#endif /* MPOOL_ALLOC_H */
