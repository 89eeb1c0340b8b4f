/*
 * alloc.h - block functions that the public API does not offer, for the
 * malloc replacement (dropin/).
 */
#ifndef MPOOL_ALLOC_H
#define MPOOL_ALLOC_H

#include <stddef.h>

#include "common.h"
#include "debug.h"
#include "heap.h"
#include "sizeclass.h"

/* malloc_usable_size: the usable size of the live block at p; anything else
 * (foreign, interior, freed) is reported as an invalid pointer through the
 * default pool's policy, and gives 0. */
size_t alloc_usable_size_checked(const void *p) mpool_internal;

/* free_sized, free_aligned_sized and sized or aligned operator delete, past
 * their inline part: frees p if it is a live block that a request of size
 * bytes aligned to align (0: no alignment asked; a value that is not a power
 * of two fits no block) would get; a live block that does not fit is reported (misuse:
 * MPOOL_ERR_INVALID_POINTER) and not freed, anything else reported as by free. */
void alloc_free_sized(void *p, size_t size, size_t align, enum debug_form form, const char *who)
    mpool_internal mpool_noinline;
#define ALLOC_SIZE_UNKNOWN SIZE_MAX /* alloc_free_sized: check the alignment only */

/* operator new past its inline part: a block of the default pool; in debug
 * mode it records the form (debug.h), which delete must match. */
void *alloc_new(size_t size, size_t align, enum debug_form form) mpool_internal mpool_noinline;

/* Unsized operator delete past its inline part (p not NULL): as free, and in
 * debug mode the block must be of that form and unaligned. */
void free_delete_slow(void *p, enum debug_form form, const char *who) mpool_internal mpool_noinline;

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
    if (likely(slab_head_ok(pg, b, h->key))) {
        pg->free = slab_link_get(b, h->link);
        slab_set_used(pg, pg->used + 1);
        *block_mark(b) = 0;
        slab_asan_handed_out(pg, b);
        stat_inc(&heap_stats(h)->requests[size]);
        return b;
    }
    return NULL;
}

/* The slab class of a request of size bytes with the pool's alignment, or
 * CLASS_NONE if it is not served from a slab (alloc.c: alloc_route's rule). */
static inline unsigned slab_class_for(const struct mpool_pool *pool, size_t size)
{
    size_t req = size < pool->min_block ? pool->min_block : size;
    size_t rounded = align_up(req, pool->align);
    if (size > pool->max_block || pool->align > PAGE_SIZE || rounded > SLAB_MAX)
        return CLASS_NONE;
    return sizeclass_of(rounded);
}

/* A block for malloc(size), size above SMALL_MAX, from the calling thread's
 * default heap's current slab of its class (collecting the owner's own frees
 * when its free list is empty: slab_collect_local), or NULL: then malloc
 * takes the general slow half (no slab class, no heap yet, a slab to refill,
 * a head without the free mark). */
static inline void *alloc_default_medium(size_t size)
{
    struct heap *h = mpool_default_heap;
    unsigned cls = slab_class_for(&mpool_default_pool, size);
    struct page *pg = h->current[cls]; /* current[CLASS_NONE] is the empty sentinel */
    if (likely(slab_head_ok(pg, pg->free, h->key)) ||
        (slab_collect_local(pg) && likely(slab_head_ok(pg, pg->free, h->key)))) {
        void *p = slab_pop(pg, h->link);
        stats_count_medium(heap_stats(h), cls, size);
        return p;
    }
    return NULL;
}

#endif /* MPOOL_ALLOC_H */
