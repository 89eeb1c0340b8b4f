/*
 * stats.c - statistics: merging the per-heap counters (stats.h) into one
 * snapshot, peaks, the baseline of mpool_reset_stats, and timing samples.
 *
 * Snapshots read the pool's list of heaps without heaps_lock: a heap is
 * published with its next pointer already set and leaves the list only when
 * the pool is destroyed, and every counter is a word its owner stores whole.
 * A figure that is a difference of two counts read at slightly different
 * times (in_use = allocations - frees) is clamped at 0, so a snapshot taken
 * while other threads run never shows a negative or wrapped figure; it is
 * exact as soon as they are quiet.
 */
#include <errno.h>
#include <string.h>

#include "heap.h"
#include "huge.h"
#include "pool.h"
#include "prim.h"
#include "stats.h"
#include "zero.h"

/* Timing samples of the calling thread (stats_timing_begin): allocations
 * until the next sample, and the pool and kinds of call whose sample is due. */
enum { TIMING_ALLOC = 1, TIMING_FREE = 2 };
static _Thread_local int64_t timing_left __attribute__((tls_model("initial-exec")));
static _Thread_local const struct mpool_pool *timing_pool __attribute__((tls_model("initial-exec")));
static _Thread_local unsigned timing_due __attribute__((tls_model("initial-exec")));

void stats_pool_init(struct mpool_pool *pool)
{
    memset(&pool->stats, 0, sizeof pool->stats);
    lock_init(&pool->stats.lock);
    pool->stats.created_ms = prim_clock_ns() / 1000000u;
}

/* ---- Counting on the slow paths ------------------------------------------ */

/* The calling thread's heap for counting an allocating call: attached if
 * the thread has none (it allocates, so it may take an ownerless heap); a
 * shared atomic per large allocation would be a contended cache line.  NULL
 * if no memory. */
static struct heap *counting_heap(struct mpool_pool *pool, struct heap *h)
{
    return h ? h : heap_of(pool);
}

void stats_count_call(struct mpool_pool *pool, size_t size, size_t usable)
{
    struct heap *h = counting_heap(pool, heap_mine(pool));
    if (likely(h != NULL)) {
        stats_heap_call(heap_stats(h), size, usable);
        return;
    }
    struct pool_stats *s = &pool->stats;
    stat_atomic_inc(&s->orphan_calls);
    __atomic_fetch_add(&s->orphan_requested, size, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->orphan_allocated, usable, __ATOMIC_RELAXED);
    stat_atomic_inc(&s->orphan_hist[stats_bucket(size)]);
}

void stats_count_realloc(struct mpool_pool *pool, size_t size, size_t usable, bool moved)
{
    struct heap *h = counting_heap(pool, heap_mine(pool));
    struct pool_stats *s = &pool->stats;
    if (likely(h != NULL)) {
        stat_inc(&heap_stats(h)->reallocs);
        stat_add(&heap_stats(h)->other_requested, size);
        stat_add(&heap_stats(h)->other_allocated, usable);
        stat_inc(&heap_stats(h)->other_hist[stats_bucket(size)]);
        if (moved)
            stat_inc(&heap_stats(h)->moves);
        return;
    }
    stat_atomic_inc(&s->orphan_reallocs);
    __atomic_fetch_add(&s->orphan_requested, size, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->orphan_allocated, usable, __ATOMIC_RELAXED);
    stat_atomic_inc(&s->orphan_hist[stats_bucket(size)]);
    if (moved)
        stat_atomic_inc(&s->orphan_moves);
}

/* A thread without a heap for the pool (one that only frees) counts in a
 * pool-level atomic: attaching a heap to count in would take an ownerless
 * heap, and its slabs, from the threads that allocate.  The atomics sit on
 * cache lines of their own (pool_stats), apart from what allocating threads
 * write. */
void stats_count_remote_free(struct mpool_pool *pool, struct heap *h, unsigned cls)
{
    if (likely(h != NULL))
        stat_inc(&heap_stats(h)->class_frees[cls]);
    else
        stat_atomic_inc(&pool->stats.orphan_frees[cls]);
}

/* ---- Merging -------------------------------------------------------------- */

/* Everything a snapshot needs, summed over the heaps and the pool. */
struct merged {
    struct stats_raw raw;              /* since creation */
    uint64_t in_use[CLASS_COUNT];
    uint64_t capacity[CLASS_COUNT];
    uint64_t slab_used_bytes;
    size_t large_bytes, large_live, huge_bytes, huge_live, zero_live;
};

static const struct heap *heaps_first(const struct mpool_pool *pool)
{
    return __atomic_load_n(&pool->heaps, __ATOMIC_ACQUIRE);
}

static uint64_t sub_clamped(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

/* The counts of what left the heap's blocks: read before every count of
 * what was handed out (merge). */
static void merge_heap_frees(const struct heap_stats *s, struct merged *m)
{
    struct stats_raw *r = &m->raw;
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
        r->class_frees[cls] += stat_read_first(&s->class_frees[cls]);
    r->frees -= stat_read_first(&s->moves); /* wraps below 0 until the block frees are added */
}

static void merge_heap(const struct mpool_pool *pool, const struct heap_stats *s, struct merged *m)
{
    struct stats_raw *r = &m->raw;
    for (size_t size = 0; size <= SMALL_MAX; size++) {
        uint64_t n = stat_read(&s->requests[size]);
        if (!n)
            continue;
        unsigned cls = pool->size_class[size];
        r->allocations += n;
        r->requested += n * size;
        r->hist[stats_bucket(size)] += n;
        if (cls < CLASS_COUNT) {
            r->allocated += n * pool->cls[cls].block_size;
            r->class_allocs[cls] += n;
        }
    }
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        uint64_t medium = stat_read(&s->medium[cls]);
        r->allocations += medium;
        r->allocated += medium * pool->cls[cls].block_size;
        r->class_allocs[cls] += medium + stat_read(&s->other_allocs[cls]);
        m->capacity[cls] += stat_read(&s->class_capacity[cls]);
    }
    r->allocations += stat_read(&s->other_calls);
    r->requested += stat_read(&s->other_requested);
    r->allocated += stat_read(&s->other_allocated);
    for (unsigned k = 0; k < MPOOL_HISTOGRAM_BUCKETS; k++)
        r->hist[k] += stat_read(&s->other_hist[k]);
    r->reallocs += stat_read(&s->reallocs);
}

/* Sums every counter of the pool (since creation).  Every count of frees is
 * read before any count of allocations: a block counted freed was counted
 * allocated before that, so the later read sees its allocation, and no class
 * shows more frees than allocations. */
static void merge(const struct mpool_pool *pool, struct merged *m)
{
    memset(m, 0, sizeof *m);
    struct stats_raw *r = &m->raw;
    const struct pool_stats *ps = &pool->stats;
    for (const struct heap *h = heaps_first(pool); h; h = h->next)
        merge_heap_frees(heap_stats(h), m);
    r->frees -= stat_read_first(&ps->orphan_moves);
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
        r->class_frees[cls] += stat_read_first(&ps->orphan_frees[cls]);
    for (const struct heap *h = heaps_first(pool); h; h = h->next)
        merge_heap(pool, heap_stats(h), m);
    r->allocations += stat_read(&ps->orphan_calls);
    r->requested += stat_read(&ps->orphan_requested);
    r->allocated += stat_read(&ps->orphan_allocated);
    r->reallocs += stat_read(&ps->orphan_reallocs);
    for (unsigned k = 0; k < MPOOL_HISTOGRAM_BUCKETS; k++)
        r->hist[k] += stat_read(&ps->orphan_hist[k]);

    uint64_t block_frees = 0;
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        block_frees += r->class_frees[cls];
        m->in_use[cls] = sub_clamped(r->class_allocs[cls], r->class_frees[cls] + ps->dropped_class[cls]);
        m->slab_used_bytes += m->in_use[cls] * pool->cls[cls].block_size;
    }
    struct mpool_pool *wp = (struct mpool_pool *)pool;
    lock_take(&wp->buddy.lock, pool->thread_safe);
    m->large_bytes = pool->large_used;
    m->large_live = pool->stats.large_live;
    uint64_t large_allocs = pool->stats.large_allocs;
    lock_give(&wp->buddy.lock, pool->thread_safe);
    lock_take(&wp->huge.lock, pool->thread_safe);
    m->huge_bytes = pool->huge.usable;
    m->huge_live = pool->huge.count;
    uint64_t huge_allocs = pool->stats.huge_allocs;
    uint64_t zero_allocs = pool->stats.zero_allocs;
    for (const struct zero_area *a = pool->zero; a; a = a->next)
        m->zero_live += a->live;
    lock_give(&wp->huge.lock, pool->thread_safe);
    /* Large, huge and zero-size blocks gone: freed, or dropped by mpool_reset. */
    block_frees += sub_clamped(large_allocs + huge_allocs + zero_allocs,
                               m->large_live + m->huge_live + m->zero_live + ps->dropped);
    r->frees += block_frees;
    if ((int64_t)r->frees < 0) /* moves read after their frees */
        r->frees = 0;
    r->failures = stat_read(&ps->failures);
    r->invalid_frees = stat_read(&ps->invalid_frees);
    r->system_allocations = __atomic_load_n(&pool->buddy.grows, __ATOMIC_RELAXED) + huge_allocs;
    r->alloc_samples = stat_read(&ps->timing_samples_alloc);
    r->free_samples = stat_read(&ps->timing_samples_free);
    r->alloc_ns = stat_read(&ps->alloc_ns);
    r->free_ns = stat_read(&ps->free_ns);
}

static uint64_t used_bytes_of(const struct merged *m)
{
    return m->slab_used_bytes + m->large_bytes + m->huge_bytes;
}

static void raise_to(uint64_t *peak, uint64_t value)
{
    uint64_t cur = __atomic_load_n(peak, __ATOMIC_RELAXED);
    while (cur < value && !__atomic_compare_exchange_n(peak, &cur, value, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

/* Milliseconds between two peak samples at slow-path events: a merge reads
 * about 1500 words of every heap, lines their threads keep writing (each
 * read makes the owner's next write a miss); at one per 8 ms that is a few
 * hundred misses per heap and second. */
#define PEAK_PERIOD_MS 8

void stats_note_peaks(struct mpool_pool *pool)
{
    /* Done by the one thread that moves the stamp; the others pay a clock
     * read and a load. */
    uint64_t now = prim_clock_ms() / PEAK_PERIOD_MS, then = __atomic_load_n(&pool->stats.peak_ms, __ATOMIC_RELAXED);
    if (then == now || !__atomic_compare_exchange_n(&pool->stats.peak_ms, &then, now, false, __ATOMIC_RELAXED,
                                                    __ATOMIC_RELAXED))
        return;
    struct merged m;
    merge(pool, &m);
    raise_to(&pool->stats.peak_used, used_bytes_of(&m));
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
        raise_to(&pool->stats.class_peak[cls], m.in_use[cls]);
}

void stats_pool_reset(struct mpool_pool *pool)
{
    struct merged m;
    merge(pool, &m);
    struct pool_stats *s = &pool->stats;
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
        s->dropped_class[cls] += m.in_use[cls];
    s->dropped += m.large_live + m.huge_live + m.zero_live;
    s->large_live = 0;
    for (struct heap *h = pool->heaps; h; h = h->next)
        memset(heap_stats(h)->class_capacity, 0, sizeof heap_stats(h)->class_capacity);
}

/* ---- Timing ---------------------------------------------------------------- */

/* True if the pool has inline paths, which a diversion sends to the slow
 * halves. */
static bool timing_inline(const struct mpool_pool *pool)
{
    return pool->tls_heap || (!pool->thread_safe && !pool->debug);
}

static void timing_divert(struct mpool_pool *pool)
{
    if (pool->tls_heap)
        heap_divert_default();
    else if (timing_inline(pool))
        pool->fast_heap = &mpool_heap_empty;
}

static void timing_undivert(struct mpool_pool *pool)
{
    if (pool->tls_heap)
        heap_undivert_default();
    else if (timing_inline(pool))
        pool->fast_heap = pool->heap0;
}

bool stats_timing_begin(struct mpool_pool *pool, bool alloc)
{
    timing_undivert(pool);
    unsigned kind = alloc ? TIMING_ALLOC : TIMING_FREE;
    if (timing_pool != pool || !(timing_due & kind))
        return false;
    timing_due &= ~kind;
    return true;
}

void stats_timing_end(struct mpool_pool *pool, bool alloc, bool sampled, uint64_t start, size_t installed)
{
    if (sampled)
        stats_timed(pool, alloc, stats_now_ns() - start);
    if (alloc) {
        timing_left -= 1 + (int64_t)installed;
        if (timing_left <= 0) {
            timing_left += pool->config.timing_sample_rate;
            timing_pool = pool;
            timing_due = TIMING_ALLOC | TIMING_FREE;
        }
    }
    if (timing_pool == pool && timing_due)
        timing_divert(pool);
}

uint64_t stats_now_ns(void)
{
    return prim_clock_ns();
}

void stats_timed(struct mpool_pool *pool, bool alloc, uint64_t ns)
{
    struct pool_stats *s = &pool->stats;
    stat_atomic_inc(alloc ? &s->timing_samples_alloc : &s->timing_samples_free);
    __atomic_fetch_add(alloc ? &s->alloc_ns : &s->free_ns, ns, __ATOMIC_RELAXED);
    raise_to(alloc ? &s->max_alloc_ns : &s->max_free_ns, ns);
}

/* ---- Snapshots --------------------------------------------------------------- */

/* The counted figures since the baseline. */
static void since_base(const struct stats_raw *now, const struct stats_raw *base, struct stats_raw *out)
{
    const uint64_t *a = (const uint64_t *)now, *b = (const uint64_t *)base;
    uint64_t *o = (uint64_t *)out;
    for (size_t i = 0; i < sizeof *out / sizeof(uint64_t); i++)
        o[i] = sub_clamped(a[i], b[i]);
}

/* Fragmentation: the share of the pool's free memory that lies in pieces
 * smaller than FRAG_PIECE_ORDER pages (64 KiB), which no large request can
 * use: 1 - (bytes in free page runs of at least 64 KiB) / (bytes in free page
 * runs + bytes of free slab blocks).  Free slab blocks are small pieces by
 * definition; 0 when nothing is free.  A fresh or trimmed pool reads near 0, a
 * pool whose slabs are mostly empty but pinned by a few live blocks near 1. */
#define FRAG_PIECE_ORDER 4
static double fragmentation_of(const struct mpool_pool *pool, const struct merged *m)
{
    struct mpool_pool *wp = (struct mpool_pool *)pool;
    uint64_t slab_free = 0;
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
        if (m->capacity[cls] > m->in_use[cls])
            slab_free += (m->capacity[cls] - m->in_use[cls]) * pool->cls[cls].block_size;
    lock_take(&wp->buddy.lock, pool->thread_safe);
    uint64_t runs = (uint64_t)wp->buddy.free_pages << PAGE_SHIFT;
    uint64_t big = (uint64_t)buddy_free_pages_from_locked(&wp->buddy, FRAG_PIECE_ORDER) << PAGE_SHIFT;
    lock_give(&wp->buddy.lock, pool->thread_safe);
    uint64_t free_bytes = runs + slab_free;
    if (!free_bytes || big >= free_bytes)
        return 0.0;
    return 1.0 - (double)big / (double)free_bytes;
}

bool mpool_get_stats(const mpool_t *cpool, mpool_stats_t *out)
{
    struct mpool_pool *pool = (struct mpool_pool *)(cpool ? cpool : mpool_default());
    if (!out) {
        error_raise(&pool->policy, MPOOL_ERR_INVALID_ARGUMENT, EINVAL, "mpool_get_stats: out is NULL");
        return false;
    }
    memset(out, 0, sizeof *out);
    struct merged m;
    merge(pool, &m);
    struct pool_stats *ps = &pool->stats;
    bool counted = pool->config.enable_statistics;
    out->statistics_enabled = counted;
    out->max_size = pool->config.max_size;

    /* Read from the pool's structures: always filled. */
    uint64_t used = used_bytes_of(&m);
    out->total_bytes = budget_held(&pool->budget);
    if (out->total_bytes < used) /* a racing grow: never more used than held */
        out->total_bytes = used;
    out->peak_total_bytes = __atomic_load_n(&pool->budget.peak, __ATOMIC_RELAXED);
    if (out->peak_total_bytes < out->total_bytes)
        out->peak_total_bytes = out->total_bytes;
    out->used_bytes = used;
    out->regions = __atomic_load_n(&pool->buddy.nregions, __ATOMIC_RELAXED);
    out->huge_blocks = m.huge_live;
    out->large_blocks = m.large_live;
    out->unused_ratio = out->total_bytes ? 1.0 - (double)used / (double)out->total_bytes : 0.0;
    out->fragmentation = fragmentation_of(pool, &m);
    out->uptime_seconds = (double)(prim_clock_ns() / 1000000u - ps->created_ms) / 1000.0;
    out->class_count = CLASS_COUNT;
    size_t live = m.large_live + m.huge_live + m.zero_live;
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        mpool_class_stats_t *c = &out->classes[cls];
        c->block_size = pool->cls[cls].block_size;
        c->in_use = m.in_use[cls];
        c->capacity = m.capacity[cls];
        if (c->capacity < c->in_use) /* a slab taken after its blocks were counted */
            c->capacity = c->in_use;
        live += c->in_use;
    }
    out->live_blocks = live;
    if (!counted) {
        out->peak_used_bytes = used;
        for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
            out->classes[cls].peak_in_use = out->classes[cls].in_use;
        return true;
    }

    /* Counted: since creation or the last mpool_reset_stats. */
    struct stats_raw d;
    lock_take(&ps->lock, true);
    raise_to(&ps->peak_used, used);
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
        raise_to(&ps->class_peak[cls], m.in_use[cls]);
    since_base(&m.raw, &ps->base, &d);
    lock_give(&ps->lock, true);
    out->peak_used_bytes = stat_read(&ps->peak_used);
    out->requested_bytes = d.requested;
    out->allocated_bytes = d.allocated;
    out->allocations = d.allocations;
    out->frees = d.frees;
    out->reallocs = d.reallocs;
    out->alloc_failures = d.failures;
    out->invalid_frees = d.invalid_frees;
    out->system_allocations = d.system_allocations;
    out->pool_hits = sub_clamped(d.allocations, d.system_allocations);
    memcpy(out->size_histogram, d.hist, sizeof out->size_histogram);
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        mpool_class_stats_t *c = &out->classes[cls];
        c->peak_in_use = stat_read(&ps->class_peak[cls]);
        c->allocations = d.class_allocs[cls];
        c->frees = d.class_frees[cls];
    }
    out->timing_samples = d.alloc_samples + d.free_samples;
    out->avg_alloc_ns = d.alloc_samples ? (double)d.alloc_ns / (double)d.alloc_samples : 0.0;
    out->avg_free_ns = d.free_samples ? (double)d.free_ns / (double)d.free_samples : 0.0;
    out->max_alloc_ns = (double)stat_read(&ps->max_alloc_ns);
    out->max_free_ns = (double)stat_read(&ps->max_free_ns);
    return true;
}

void mpool_reset_stats(mpool_t *pool)
{
    if (!pool)
        pool = mpool_default();
    struct merged m;
    merge(pool, &m);
    struct pool_stats *ps = &pool->stats;
    lock_take(&ps->lock, true);
    ps->base = m.raw;
    __atomic_store_n(&ps->peak_used, used_bytes_of(&m), __ATOMIC_RELAXED);
    __atomic_store_n(&pool->budget.peak, budget_held(&pool->budget), __ATOMIC_RELAXED);
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
        __atomic_store_n(&ps->class_peak[cls], m.in_use[cls], __ATOMIC_RELAXED);
    __atomic_store_n(&ps->max_alloc_ns, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&ps->max_free_ns, 0, __ATOMIC_RELAXED);
    lock_give(&ps->lock, true);
}
