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

#endif /* MPOOL_ALLOC_H */
