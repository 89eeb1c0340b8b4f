/*
 * pool.h - the pool object: its configuration, its size classes, its page
 * allocator and its list of huge blocks.  The top of the library (alloc.c,
 * pool.c, check.c) works on it; the layers below only see their own parts.
 *
 * Locks of a thread-safe pool, and the only order in which they nest:
 *   tcache_lock (tcache.c, process-wide)  ->  class lock (one per size class)
 *     ->  page lock (buddy.lock)
 *   huge lock (huge.lock) nests with no other.
 */
#ifndef MPOOL_POOL_H
#define MPOOL_POOL_H

#include "buddy.h"
#include "error.h"
#include "lock.h"
#include "mpool.h"
#include "region.h"
#include "sizeclass.h"

/* One size class of a pool (its current slab is pool->current[class]). */
struct sclass {
    struct page *partial;  /* other slabs with free blocks (PG_LISTED) */
    struct page *slabs;    /* every slab of the class (cnext/cprev) */
    uint32_t block_size;
    uint32_t slab_pages;
    mpool_lock_t lock;
} __attribute__((aligned(64)));

/* Freed large blocks kept whole, by length in pages (large.c); under the
 * page lock. */
#define LARGE_CACHE_MAX_PAGES 512   /* every large block: up to 2 MiB */
#define LARGE_CACHE_CAP_PAGES 512   /* 2 MiB at most in all (peak RSS: see docs/architecture.md) */
struct large_cache {
    struct page *bin[LARGE_CACHE_MAX_PAGES + 1]; /* bin[n]: runs of n pages (LIFO, via next) */
    size_t pages;                                /* pages held in all bins */
};

struct huge; /* huge.h */

struct huge_list {
    mpool_lock_t lock;
    struct huge *head;
    size_t count;          /* live huge blocks */
    size_t usable;         /* their usable bytes */
    struct huge *stuck;    /* freed blocks the system refused to unmap (huge.c) */
};

#define POOL_MAGIC 0x6d706f6f6c504c31ULL /* "mpoolPL1" */

struct mpool_pool {
    /* Read by every allocation.  current[c] is the slab class c allocates from;
     * it is never NULL (an empty shared sentinel stands in, and always does for
     * CLASS_NONE), so the fast path tests only the free-list head. */
    struct page *current[CLASS_COUNT + 1];
    /* Fast pools: the newest current slab, copied here so that a free into it
     * needs no lookup (alloc.c); hot_count 0 when there is none. */
    struct page *hot_slab;     /* a current slab, or the empty sentinel */
    uintptr_t hot_start;       /* its first byte */
    uint64_t hot_inverse;      /* block index test of the hot slab (slab_set_hot) */
    uint64_t hot_count;        /* its capacity; 0 when there is none */
    uint8_t hot_shift;
    struct region *hot_region; /* fast pools: region of the newest current slab (else NO_REGION) */
    uint8_t fast_class[SMALL_MAX + 1];      /* size -> class if `fast`, else all CLASS_NONE */
    uint8_t small_class[SMALL_MAX / 8 + 1]; /* (size + 7) / 8 -> class, or CLASS_NONE */
    bool fast;             /* neither thread safe nor in debug mode: lock-free inline paths */
    bool tcache;           /* thread safe and not in debug mode: per-thread caches (tcache.h) */
    bool thread_safe;
    bool debug;
    bool is_default;
    size_t max_block;      /* requests above are huge blocks */
    size_t slab_limit;     /* requests up to this (after rounding) use slabs */
    size_t align;          /* every block's alignment: max(config.alignment, 8) */
    size_t min_block;      /* requests below are served as this */
    uint64_t magic;
    uint64_t id;           /* unique in the process, never reused (tcache.h) */
    uint64_t tc_key;       /* the mark of blocks on cache lists (tcache.h) */
    struct tcache *tcaches; /* every thread's cache of this pool (tcache_lock) */

    struct sclass cls[CLASS_COUNT];
    struct buddy buddy;
    size_t large_used;     /* bytes in live large blocks (page runs); under buddy.lock */
    struct large_cache large_cache;
    struct huge_list huge;
    struct budget budget;
    struct error_policy policy;
    mpool_config_t config;
};

/* The mark of a block on a slab's free list of a pool with thread caches
 * (the cache mark is tc_key itself; tcache.h). */
static inline uint64_t pool_slab_mark(const struct mpool_pool *pool)
{
    return pool->tc_key ^ 1;
}

struct process_options;

/* The default pool (pool.c), set up by the first mpool_default(). */
extern struct mpool_pool mpool_default_pool mpool_internal;
extern bool mpool_default_ready mpool_internal; /* atomic */

/* mpool_default() without a call once the default pool exists. */
static inline struct mpool_pool *pool_default(void)
{
    if (likely(__atomic_load_n(&mpool_default_ready, __ATOMIC_ACQUIRE)))
        return &mpool_default_pool;
    return mpool_default();
}

/* The process options read with the default pool's configuration (options.h). */
const struct process_options *pool_process_options(void) mpool_internal;

/* The shared sentinel standing for "no current slab", and the fast_owner of
 * regions whose pool is not fast (it is no pool, so no caller matches it). */
extern struct page mpool_empty_slab mpool_internal;
extern struct mpool_pool mpool_no_fast_owner mpool_internal;

#endif /* MPOOL_POOL_H */
