/*
 * huge.h - huge blocks: requests above max_block_size (or above what a page
 * run can hold, 2 MiB) are mapped directly from the system, one mapping each.
 *
 * Layout: the block starts at a 4 MiB boundary (or its requested alignment,
 * if larger) and its header fills the page just below it:
 *
 *   | struct huge ... (one page) | block (usable bytes, whole pages) ... |
 *   ^ mapping start              ^ chunk base, marked CHUNK_HUGE
 *
 * so a pointer finds its header with the chunk map and one subtraction, and
 * only the exact block start passes.  Blocks are listed in their pool (so
 * statistics, reset and destroy cover them); resizing moves pages with
 * mremap instead of copying.
 *
 * A freed block whose unmapping the system refuses (it would split a mapping
 * past vm.max_map_count) is decommitted and kept on the pool's `stuck` list,
 * still charged to max_size, until mpool_trim, reset or destroy unmaps it.
 */
#ifndef MPOOL_HUGE_H
#define MPOOL_HUGE_H

#include "pool.h"

#define HUGE_MAGIC 0x6d706f6f6c484731ULL /* "mpoolHG1" */
#define HUGE_STUCK 0x6d706f6f6c484758ULL /* "mpoolHGX": freed, not yet unmapped */

struct huge {
    uint64_t magic;
    struct mpool_pool *pool;
    struct huge *next, *prev;
    size_t usable;     /* bytes from the block start to the end of the mapping */
    size_t align;      /* alignment of the block start (>= 4 MiB) */
};

/* The header of the huge block starting exactly at p, or NULL. */
static inline struct huge *huge_of(const void *p)
{
    if (chunk_kind(p) != CHUNK_HUGE || ((uintptr_t)p & (REGION_SIZE - 1)) != 0)
        return NULL;
    struct huge *h = (struct huge *)((uintptr_t)p - PAGE_SIZE);
    return h->magic == HUGE_MAGIC ? h : NULL;
}

static inline void *huge_block(const struct huge *h) { return (char *)h + PAGE_SIZE; }

/* A huge block of at least size bytes aligned to align; NULL with *status. */
void *huge_alloc(struct mpool_pool *pool, size_t size, size_t align, enum buddy_status *status) mpool_internal;

/* Unmaps a huge block (or keeps it stuck, see above). */
void huge_free(struct mpool_pool *pool, struct huge *h) mpool_internal;

/* Unmaps the stuck blocks the system now lets go; returns the bytes unmapped. */
size_t huge_trim(struct mpool_pool *pool) mpool_internal;

/* Resizes a huge block in place or by moving its pages; NULL (block
 * unchanged) with *status on failure.  A shrink the system refuses leaves
 * the block as it is, which still serves the request. */
void *huge_resize(struct mpool_pool *pool, struct huge *h, size_t size, enum buddy_status *status) mpool_internal;

/* Unmaps every huge block of the pool, stuck ones included. */
void huge_release_all(struct mpool_pool *pool) mpool_internal;

/* Number of broken invariants in the pool's list.  Caller holds huge.lock. */
size_t huge_check_locked(const struct mpool_pool *pool) mpool_internal;

#endif /* MPOOL_HUGE_H */
