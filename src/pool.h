/*
 * pool.h - the pool object: its configuration, its size classes, its page
 * allocator and its list of huge blocks.  The top of the library (alloc.c,
 * pool.c, check.c) works on it; the layers below only see their own parts.
 *
 * Locks of a thread-safe pool, and the only order in which they nest:
 *   heaps_lock (heap.c, process-wide)  ->  page lock (buddy.lock)
 *   huge lock (huge.lock) nests with no other.
 *   arenas lock (arenas.lock)  ->  the locks mpool_free takes.
 * Slab blocks take no lock: they come from the calling thread's heap (heap.h).
 */
#ifndef MPOOL_POOL_H
#define MPOOL_POOL_H

#include "arena.h"
#include "buddy.h"
#include "error.h"
#include "lock.h"
#include "mpool.h"
#include "region.h"
#include "sizeclass.h"
#include "stats.h"

/* One size class of a pool. */
struct sclass {
    uint32_t block_size;
    uint32_t slab_pages;
};

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
    struct huge *cached;   /* freed mappings kept for reuse, newest first (huge.h) */
    size_t cached_count, cached_bytes; /* their number and mapped bytes */
};

#define POOL_MAGIC 0x6d706f6f6c504c31ULL /* "mpoolPL1" */

struct heap; /* heap.h */
struct debug_pool; /* debug.c */

struct mpool_fixed; /* fixed.h */

/* The fixed-size object pools made on a pool (fixed.c): listed for
 * mpool_report, and ended by end_all (set by fixed.c) when the pool is reset
 * or destroyed, before the memory they live in goes. */
struct fixed_list {
    struct mpool_fixed *head; /* under the fixed pools' registry (fixed_cache.c) */
    void (*end_all)(struct mpool_pool *pool);
};

struct mpool_pool {
    /* Read by the inline paths: heap0 when neither thread safe nor in debug
     * mode (every call uses it), else the empty heap, whose slabs are all the
     * empty sentinel, so the inline paths fall through. */
    struct heap *fast_heap;
    uint8_t size_class[SMALL_MAX + 1]; /* size -> class, or CLASS_NONE (indexed by the size
                                          itself: two instructions fewer than by (size + 7) / 8) */
    bool thread_safe;
    bool debug;
    bool is_default;
    bool tls_heap;         /* threads find their heap in mpool_default_heap (heap.h) */
    size_t max_block;      /* requests above are huge blocks */
    size_t align;          /* every block's alignment: max(config.alignment, 8) */
    size_t min_block;      /* requests below are served as this (at least 16, slab.h) */
    uint64_t magic;
    uint64_t id;           /* unique in the process, never reused (heap.h) */
    uint64_t key;          /* secret random mark of free slab blocks (slab.h) */
    uint64_t link;         /* secret that free slab blocks' links are encoded with (slab.h) */
    struct heap *heap0;    /* the heap of a pool that is not thread safe (heap.h) */
    struct heap *heaps;    /* every heap of the pool (heaps_lock) */

    struct sclass cls[CLASS_COUNT];
    struct buddy buddy;
    size_t large_used;     /* bytes in live large blocks (page runs); under buddy.lock */
    struct large_cache large_cache;
    struct huge_list huge;
    struct zero_area *zero; /* the areas of zero-size blocks (zero.h); under huge.lock */
    struct budget budget;
    struct error_policy policy;
    mpool_config_t config;
    bool timing;           /* config.timing_sample_rate > 0: calls take the slow halves */
    struct debug_pool *debug_state; /* debug.c: the quarantine (debug pools only) */
    struct pool_stats stats;
    struct fixed_list fixed_pools; /* fixed.h */
    struct arena_list arenas; /* the pool's arenas, under their own lock (arena.h) */
};

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

/* The shared sentinel standing for "no current slab": its free list is empty
 * and it belongs to no heap. */
extern struct page mpool_empty_slab mpool_internal;

#endif /* MPOOL_POOL_H */
