/*
 * stats.h - the counters behind mpool_get_stats (stats.c merges them).
 *
 * Where each count lives
 *   Per heap (struct heap_stats, written only by the heap's thread, read by
 *   snapshots with relaxed loads): what the fast paths count, and what the
 *   slow paths count for the calling thread.  The fast paths add one
 *   instruction to an allocation (requests[size]) and two to a free
 *   (class_frees[cls]); everything else is derived at snapshot time:
 *     allocations      sum of requests[] + sum of medium[] + other_calls
 *     requested_bytes  sum of size * requests[size] + other_requested
 *     allocated_bytes  sum of block_size(class(size)) * requests[size] + other_allocated
 *     class allocs     requests[] of the sizes of the class + other_allocs[cls]
 *     class in_use     class allocs - class frees
 *   Per pool (struct pool_stats, atomics): rare events: failures, invalid
 *   frees, frees by threads without a heap, large and huge blocks (under
 *   their locks), peaks, and the baseline that mpool_reset_stats sets.
 *
 * A count is a plain load and store by its owner (a relaxed atomic store
 * under ThreadSanitizer, as slab.h does for used), so it never costs a
 * locked instruction; a reader may see it a few events late, never torn.
 */
#ifndef MPOOL_STATS_H
#define MPOOL_STATS_H

#include <stdint.h>

#include "common.h"
#include "lock.h"
#include "mpool.h"

struct heap_stats {
    uint64_t requests[SMALL_MAX + 1];        /* allocating calls by size served from the class table */
    uint64_t class_frees[CLASS_COUNT];       /* slab blocks this thread freed, by class */
    uint64_t medium[CLASS_COUNT];            /* allocating calls above SMALL_MAX served by alloc_slow
                                                from class cls (their size is in other_requested
                                                and other_hist) */
    uint64_t other_allocs[CLASS_COUNT];      /* slab blocks handed out not counted in requests[]
                                                nor medium[] */
    uint64_t class_capacity[CLASS_COUNT];    /* blocks in the slabs this heap holds */
    uint64_t other_calls;                    /* allocating calls not counted in requests[] */
    uint64_t other_requested, other_allocated;
    uint64_t other_hist[MPOOL_HISTOGRAM_BUCKETS];
    uint64_t reallocs;                       /* successful reallocs of live blocks to a new size */
    uint64_t moves;                          /* of those, the ones that moved the block (an alloc
                                                and a free that are not calls of their own) */
};

/* Adds n to a counter its owner alone writes. */
static inline void stat_add(uint64_t *c, uint64_t n)
{
#ifdef MPOOL_TSAN
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
#else
    *c += n;
#endif
}

static inline void stat_inc(uint64_t *c) { stat_add(c, 1); }

/* The histogram bucket of a request of size bytes: its bit length. */
static inline unsigned stats_bucket(size_t size)
{
    unsigned k = size ? 64 - (unsigned)__builtin_clzll((unsigned long long)size) : 0;
    return k < MPOOL_HISTOGRAM_BUCKETS ? k : MPOOL_HISTOGRAM_BUCKETS - 1;
}

/* An allocating call counted in heap counters s (not through requests[]). */
static inline void stats_heap_call(struct heap_stats *s, size_t size, size_t usable)
{
    stat_inc(&s->other_calls);
    stat_add(&s->other_requested, size);
    stat_add(&s->other_allocated, usable);
    stat_inc(&s->other_hist[stats_bucket(size)]);
}

/* An allocating call above SMALL_MAX served from a slab of class cls by the
 * calling thread's heap (counters s): calls, usable bytes and class
 * allocations follow from medium[cls]. */
static inline void stats_count_medium(struct heap_stats *s, unsigned cls, size_t size)
{
    stat_inc(&s->medium[cls]);
    stat_add(&s->other_requested, size);
    stat_inc(&s->other_hist[stats_bucket(size)]);
}

/* A counter read by a snapshot. */
static inline uint64_t stat_read(const uint64_t *c) { return __atomic_load_n(c, __ATOMIC_RELAXED); }

/* A counter that must be read before the reads that follow it (a snapshot
 * reads frees before allocations): an acquire load, a plain load on x86. */
static inline uint64_t stat_read_first(const uint64_t *c) { return __atomic_load_n(c, __ATOMIC_ACQUIRE); }


/* What a snapshot sums, raw (since creation); mpool_reset_stats keeps one as
 * the baseline. */
struct stats_raw {
    uint64_t allocations, frees, reallocs, requested, allocated;
    uint64_t failures, invalid_frees, system_allocations;
    uint64_t hist[MPOOL_HISTOGRAM_BUCKETS];
    uint64_t class_allocs[CLASS_COUNT], class_frees[CLASS_COUNT];
    uint64_t alloc_ns, free_ns, alloc_samples, free_samples;
};

struct pool_stats {
    uint64_t failures;                    /* atomic: allocating calls that failed */
    uint64_t invalid_frees;               /* atomic */
    uint64_t orphan_frees[CLASS_COUNT] __attribute__((aligned(64))); /* atomic: slab frees by
                                                                         threads without a heap */
    uint64_t after_orphan_frees __attribute__((aligned(64)));         /* keeps the line apart */
    uint64_t orphan_moves;                /* atomic: realloc moves by threads without a heap */
    uint64_t dropped;                     /* large and huge blocks mpool_reset dropped (quiet) */
    uint64_t dropped_class[CLASS_COUNT];  /* slab blocks mpool_reset dropped (quiet) */
    uint64_t orphan_calls, orphan_requested, orphan_allocated; /* atomic: calls by threads */
    uint64_t orphan_hist[MPOOL_HISTOGRAM_BUCKETS];             /* that have no heap */
    uint64_t orphan_reallocs;             /* atomic */
    uint64_t peak_ms __attribute__((aligned(64))); /* atomic: prim_clock_ms / PEAK_PERIOD_MS of the
                                                      last peak sample (every new slab reads it) */
    uint64_t after_peak_ms __attribute__((aligned(64)));
    uint64_t large_allocs, large_live;    /* under the page lock */
    uint64_t huge_allocs;                 /* under the huge lock */
    uint64_t zero_allocs;                 /* zero-size blocks (zero.h); under the huge lock */
    uint64_t peak_used;                   /* atomic */
    uint64_t class_peak[CLASS_COUNT];     /* atomic */
    uint64_t timing_samples_alloc, timing_samples_free; /* atomic */
    uint64_t alloc_ns, free_ns, max_alloc_ns, max_free_ns; /* atomic */
    uint64_t created_ms;                  /* CLOCK_MONOTONIC at creation */
    mpool_lock_t lock;                    /* the baseline */
    struct stats_raw base;
};

struct mpool_pool;
struct heap;

static inline void stat_atomic_inc(uint64_t *c) { __atomic_fetch_add(c, 1, __ATOMIC_RELAXED); }
static inline void stat_atomic_add(uint64_t *c, uint64_t n) { __atomic_fetch_add(c, n, __ATOMIC_RELAXED); }

/* Sets up the pool's counters at creation. */
void stats_pool_init(struct mpool_pool *pool) mpool_internal;

/* A successful allocating call of size bytes that got usable bytes, other
 * than those the class table serves (they count requests[size] inline). */
void stats_count_call(struct mpool_pool *pool, size_t size, size_t usable) mpool_internal;

/* A successful realloc of a live block to size bytes (usable after it). */
void stats_count_realloc(struct mpool_pool *pool, size_t size, size_t usable, bool moved) mpool_internal;

/* A slab block of class cls freed by a thread that does not own its slab; h:
 * the thread's heap for the pool, if it has one. */
void stats_count_remote_free(struct mpool_pool *pool, struct heap *h, unsigned cls) mpool_internal;

/* A slow-path event (a heap took a new slab, an allocation got memory fresh
 * from the system): samples the peaks of live bytes and of every class, at
 * most once per millisecond. */
void stats_note_peaks(struct mpool_pool *pool) mpool_internal;

/* mpool_reset (a quiet pool), before the heaps forget their slabs: every
 * live block is dropped, which is no free call. */
void stats_pool_reset(struct mpool_pool *pool) mpool_internal;

/* Timing (timing_sample_rate = N).  The inline paths stay as they are; the
 * slow halves count allocations (their own, and the blocks a refill makes
 * poppable inline), and when N have passed they divert the thread's inline
 * paths of the pool (heap_divert_default, or the pool's fast_heap) so that
 * the next allocation and the next free come through the slow halves and
 * are timed there.  So about one allocation in N and one free in N are
 * timed, and a pool that times costs nothing between samples.
 *   stats_timing_begin: at a slow half's start; ends a diversion; true if
 *     this call is the sample.
 *   stats_timing_end: at its end; `installed` blocks were just made poppable
 *     inline by a refill (0 if none). */
bool stats_timing_begin(struct mpool_pool *pool, bool alloc) mpool_internal;
void stats_timing_end(struct mpool_pool *pool, bool alloc, bool sampled, uint64_t start,
                      size_t installed) mpool_internal;
uint64_t stats_now_ns(void) mpool_internal;
void stats_timed(struct mpool_pool *pool, bool alloc, uint64_t ns) mpool_internal;

#endif /* MPOOL_STATS_H */
