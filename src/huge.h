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
 * The cache.  A freed block's mapping (up to HUGE_CACHE_BYTES) is kept, its
 * chunk unmarked so that every pointer into it is invalid, on the pool's
 * `cached` list (at most HUGE_CACHE_COUNT mappings, HUGE_CACHE_BYTES in all,
 * the oldest unmapped first); an allocation whose size fits one takes it
 * back (its tail unmapped if it is over a quarter larger), instead of mapping and
 * faulting in fresh pages: a program that allocates and frees buffers of a
 * few MiB in turn (a Python workload did, with 1.2 M page faults more than
 * glibc) pays neither the system calls nor the faults.  Its pages hold old
 * data (calloc clears them).  The cache stays charged to max_size; it is
 * emptied when a mapping has waited HUGE_CACHE_AGE_MS (checked at the next
 * huge allocation or free), by mpool_trim, by a request that meets max_size,
 * and by reset and destroy.
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
#define HUGE_CACHED 0x6d706f6f6c484743ULL /* "mpoolHGC": freed, kept for reuse */
#define HUGE_CACHE_COUNT 4
#define HUGE_CACHE_BYTES ((size_t)64 << 20)
#define HUGE_CACHE_AGE_MS 1000u

struct huge {
    uint64_t magic;
    struct mpool_pool *pool;
    struct huge *next, *prev;
    size_t usable;     /* bytes of the block: the size asked for, in whole pages */
    size_t mapped;     /* bytes of the mapping, this page included (a reused one may hold more) */
    size_t align;      /* alignment of the block start (>= 4 MiB) */
    uint32_t freed_ms; /* cached: when it was freed (prim_clock_ms) */
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
void *huge_alloc(struct mpool_pool *pool, size_t size, size_t align, bool *zeroed,
                 enum buddy_status *status) mpool_internal;

/* Unmaps every cached mapping; returns the bytes the system let go (a
 * refused one is kept stuck, as a refused free is). */
size_t huge_cache_flush(struct mpool_pool *pool) mpool_internal;

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
