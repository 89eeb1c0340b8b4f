/*
 * test_stats.c - the counted figures of mpool_get_stats (issue 11).
 *
 * - exact counts in one thread: allocations, frees, reallocs (in place and
 *   moved, realloc(NULL, n) and realloc(p, 0)), failures, invalid frees,
 *   requested and allocated bytes, live blocks and bytes, per class in_use,
 *   allocations and frees, the histogram at its edges 0, 1, 2, 3, 4, 2^k - 1
 *   and 2^k; for pools that are and are not thread safe, and the default
 *   pool's path through mpool_alloc(NULL, ...);
 * - peaks (held exactly, live bytes and class peaks at least the current
 *   figures and at least what a snapshot saw), mpool_reset_stats, mpool_reset;
 * - 8 threads allocating and freeing each other's blocks while an observer
 *   takes snapshots: no figure is ever negative, wrapped or above what is
 *   possible, and every figure is exact once the threads are joined;
 * - statistics off: counted figures 0, structural ones still filled;
 * - timing samples when timing_sample_rate is set.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mpool.h>

#include "testutil.h"

static mpool_t *make_pool(bool thread_safe)
{
    mpool_config_t c = mpool_config_default();
    c.thread_safe = thread_safe;
    mpool_t *p = mpool_create(&c);
    cr_assert_not_null(p);
    return p;
}

static mpool_stats_t stats_of(const mpool_t *p)
{
    mpool_stats_t s;
    cr_assert(mpool_get_stats(p, &s));
    return s;
}

static size_t bucket_of(size_t size)
{
    size_t k = 0;
    while (size) {
        k++;
        size >>= 1;
    }
    return k < MPOOL_HISTOGRAM_BUCKETS ? k : MPOOL_HISTOGRAM_BUCKETS - 1;
}

/* The class whose block_size is the usable size of p. */
static size_t class_of_block(const mpool_stats_t *s, size_t usable)
{
    for (size_t k = 0; k < s->class_count; k++)
        if (s->classes[k].block_size == usable)
            return k;
    return SIZE_MAX;
}

static void exact_counts(bool thread_safe)
{
    mpool_t *p = make_pool(thread_safe);
    static const size_t sizes[] = {0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 1023, 1024, 1025,
                                   4095, 4096, 65535, 65536, 300000, 3u << 20};
    enum { N = sizeof sizes / sizeof sizes[0] };
    void *blk[N];
    size_t requested = 0, allocated = 0, hist[MPOOL_HISTOGRAM_BUCKETS] = {0};
    for (size_t i = 0; i < N; i++) {
        blk[i] = mpool_alloc(p, sizes[i]);
        cr_assert_not_null(blk[i]);
        requested += sizes[i];
        allocated += mpool_usable_size(p, blk[i]);
        hist[bucket_of(sizes[i])]++;
    }
    mpool_stats_t s = stats_of(p);
    cr_assert(s.statistics_enabled);
    cr_expect_eq(s.allocations, N);
    cr_expect_eq(s.frees, 0);
    cr_expect_eq(s.live_blocks, N);
    cr_expect_eq(s.requested_bytes, requested);
    cr_expect_eq(s.allocated_bytes, allocated);
    cr_expect_eq(s.used_bytes, allocated);
    cr_expect_eq(s.used_bytes, mpool_get_usage(p).used);
    cr_expect_eq(s.huge_blocks, 1);
    cr_expect(s.class_count >= 1 && s.class_count <= MPOOL_MAX_CLASSES);
    for (size_t k = 0; k < MPOOL_HISTOGRAM_BUCKETS; k++)
        cr_expect_eq(s.size_histogram[k], hist[k], "bucket %zu: %zu, expected %zu", k, s.size_histogram[k],
                     hist[k]);
    cr_expect_eq(s.size_histogram[0], 1);  /* size 0 */
    cr_expect_eq(s.size_histogram[1], 1);  /* 1 */
    cr_expect_eq(s.size_histogram[2], 2);  /* 2, 3 */
    cr_expect_eq(s.size_histogram[3], 2);  /* 4, 7 */
    cr_expect_eq(s.size_histogram[11], 2); /* 1024, 1025 (1023 is in bucket 10) */

    /* Per class: every slab block is in the class its usable size names. */
    size_t in_use[MPOOL_MAX_CLASSES] = {0};
    size_t slab_blocks = 0;
    for (size_t i = 0; i < N; i++) {
        size_t k = class_of_block(&s, mpool_usable_size(p, blk[i]));
        if (sizes[i] <= 65536 && k != SIZE_MAX) {
            in_use[k]++;
            slab_blocks++;
        }
    }
    size_t class_live = 0;
    for (size_t k = 0; k < s.class_count; k++) {
        cr_expect_eq(s.classes[k].in_use, in_use[k], "class %zu (%zu B)", k, s.classes[k].block_size);
        cr_expect_eq(s.classes[k].allocations, in_use[k]);
        cr_expect_eq(s.classes[k].frees, 0);
        cr_expect(s.classes[k].capacity >= s.classes[k].in_use);
        cr_expect(s.classes[k].peak_in_use >= s.classes[k].in_use);
        class_live += s.classes[k].in_use;
    }
    cr_expect_eq(class_live, slab_blocks);

    /* Frees, then reallocs of every kind. */
    for (size_t i = 0; i < N; i += 2)
        mpool_free(p, blk[i]);
    size_t freed = (N + 1) / 2;
    s = stats_of(p);
    cr_expect_eq(s.frees, freed);
    cr_expect_eq(s.live_blocks, N - freed);
    void *q = mpool_realloc(p, blk[1], 2);        /* in place: one realloc */
    cr_assert_eq(q, blk[1]);
    void *r = mpool_realloc(p, blk[3], 100000);   /* moved: still one realloc */
    cr_assert_not_null(r);
    void *n = mpool_realloc(p, NULL, 40);         /* an allocation */
    cr_assert_not_null(n);
    cr_assert_null(mpool_realloc(p, blk[5], 0));  /* a free */
    s = stats_of(p);
    cr_expect_eq(s.reallocs, 2);
    cr_expect_eq(s.allocations, N + 1);
    cr_expect_eq(s.frees, freed + 1);
    cr_expect_eq(s.live_blocks, N - freed);
    cr_expect_eq(s.requested_bytes, requested + 2 + 100000 + 40);
    cr_expect_eq(s.used_bytes, mpool_get_usage(p).used);

    /* Failures and invalid frees: counted, nothing else. */
    char local;
    mpool_free(p, &local);
    cr_expect_not(mpool_safe_free(p, (char *)n + 1));
    cr_expect_null(mpool_alloc_aligned(p, 16, 3));
    cr_expect_null(mpool_calloc(p, SIZE_MAX / 2, 4));
    s = stats_of(p);
    cr_expect_eq(s.invalid_frees, 2);
    cr_expect_eq(s.alloc_failures, 2);
    cr_expect_eq(s.allocations, N + 1);
    cr_expect_eq(s.pool_hits + s.system_allocations, s.allocations);
    cr_expect(s.system_allocations >= 1); /* the huge block at least */
    mpool_destroy(p);
}

Test(stats, exact_counts_unlocked) { exact_counts(false); }
Test(stats, exact_counts_thread_safe) { exact_counts(true); }

Test(stats, default_pool_counts_deltas)
{
    mpool_stats_t a = stats_of(NULL);
    void *b[64];
    for (int i = 0; i < 64; i++)
        b[i] = mpool_alloc(NULL, 24);
    for (int i = 0; i < 64; i++)
        mpool_free(NULL, b[i]);
    mpool_stats_t z = stats_of(NULL);
    cr_expect_eq(z.allocations - a.allocations, 64);
    cr_expect_eq(z.frees - a.frees, 64);
    cr_expect_eq(z.size_histogram[5] - a.size_histogram[5], 64); /* 24 is in [16, 32) */
    cr_expect_eq(z.requested_bytes - a.requested_bytes, 64 * 24);
}

Test(stats, peaks_and_reset_stats)
{
    mpool_t *p = make_pool(true);
    void *b[1000];
    for (int i = 0; i < 1000; i++)
        b[i] = mpool_alloc(p, 48);
    mpool_stats_t s = stats_of(p);
    size_t cls = class_of_block(&s, mpool_usable_size(p, b[0]));
    cr_assert_neq(cls, SIZE_MAX);
    size_t used_full = s.used_bytes, total_full = s.total_bytes;
    cr_expect_eq(s.classes[cls].in_use, 1000);
    cr_expect_geq(s.classes[cls].capacity, 1000);
    cr_expect_eq(s.classes[cls].peak_in_use, 1000);
    for (int i = 0; i < 1000; i++)
        mpool_free(p, b[i]);
    mpool_trim(p);
    s = stats_of(p);
    cr_expect_eq(s.classes[cls].in_use, 0);
    cr_expect_eq(s.classes[cls].peak_in_use, 1000); /* seen by the snapshot above */
    cr_expect_geq(s.peak_used_bytes, used_full);
    cr_expect_geq(s.peak_total_bytes, total_full);
    cr_expect_geq(s.peak_total_bytes, s.total_bytes);

    /* A peak no snapshot saw: sampled at a slow-path event (a new slab) more
     * than one sampling period (8 ms) after the last sample
     * (docs/statistics.md). */
    for (int i = 0; i < 1000; i++)
        b[i] = mpool_alloc(p, 200);
    struct timespec ms20 = {0, 20000000};
    nanosleep(&ms20, NULL);
    void *other = mpool_alloc(p, 3000); /* a class without a slab yet: takes one */
    mpool_free(p, other);
    for (int i = 0; i < 1000; i++)
        mpool_free(p, b[i]);
    s = stats_of(p);
    size_t cls200 = class_of_block(&s, 208);
    cr_assert_neq(cls200, SIZE_MAX);
    cr_expect_eq(s.classes[cls200].peak_in_use, 1000, "peak %zu, sampled when the 3000-byte class took a slab",
                 s.classes[cls200].peak_in_use);
    cr_expect_geq(s.peak_used_bytes, 1000 * 208);

    mpool_reset_stats(p);
    s = stats_of(p);
    cr_expect_eq(s.allocations, 0);
    cr_expect_eq(s.frees, 0);
    cr_expect_eq(s.requested_bytes, 0);
    for (size_t k = 0; k < MPOOL_HISTOGRAM_BUCKETS; k++)
        cr_expect_eq(s.size_histogram[k], 0);
    cr_expect_eq(s.peak_used_bytes, s.used_bytes);
    cr_expect_eq(s.peak_total_bytes, s.total_bytes);
    cr_expect_eq(s.classes[cls].peak_in_use, 0);
    void *x = mpool_alloc(p, 48);
    s = stats_of(p);
    cr_expect_eq(s.allocations, 1);
    cr_expect_eq(s.classes[cls].allocations, 1);
    cr_expect_eq(s.classes[cls].in_use, 1);
    mpool_free(p, x);
    mpool_destroy(p);
}

Test(stats, pool_reset_drops_live_blocks)
{
    mpool_t *p = make_pool(false);
    for (int i = 0; i < 100; i++)
        cr_assert_not_null(mpool_alloc(p, (size_t)i * 100));
    cr_assert_not_null(mpool_alloc(p, 500000));
    cr_assert_not_null(mpool_alloc(p, 4u << 20));
    mpool_reset(p);
    mpool_stats_t s = stats_of(p);
    cr_expect_eq(s.live_blocks, 0);
    cr_expect_eq(s.used_bytes, 0);
    cr_expect_eq(s.allocations, 102);
    cr_expect_eq(s.frees, 0); /* a reset is no free call */
    for (size_t k = 0; k < s.class_count; k++) {
        cr_expect_eq(s.classes[k].in_use, 0);
        cr_expect_eq(s.classes[k].capacity, 0);
    }
    void *b = mpool_alloc(p, 100);
    s = stats_of(p);
    cr_expect_eq(s.live_blocks, 1);
    mpool_free(p, b);
    mpool_destroy(p);
}

Test(stats, statistics_off)
{
    mpool_config_t c = mpool_config_default();
    c.enable_statistics = false;
    mpool_t *p = mpool_create(&c);
    cr_assert_not_null(p);
    void *b = mpool_alloc(p, 100);
    mpool_stats_t s = stats_of(p);
    cr_expect_not(s.statistics_enabled);
    cr_expect_eq(s.allocations, 0);
    cr_expect_eq(s.requested_bytes, 0);
    cr_expect_eq(s.size_histogram[7], 0);
    cr_expect_eq(s.live_blocks, 1);               /* structural: still filled */
    cr_expect_eq(s.used_bytes, mpool_usable_size(p, b));
    cr_expect_gt(s.total_bytes, 0);
    mpool_free(p, b);
    mpool_destroy(p);
}

/* About one allocation in N and one free in N are timed: every call of a
 * pool without inline paths is counted; a pool with inline paths counts the
 * blocks each refill makes poppable (stats.h: timing). */
static void timing_case(bool thread_safe, size_t size, double low, double high)
{
    mpool_config_t c = mpool_config_default();
    c.timing_sample_rate = 16;
    c.thread_safe = thread_safe;
    mpool_t *p = mpool_create(&c);
    cr_assert_not_null(p);
    void *b[10];
    for (int round = 0; round < 320; round++) { /* 3200 allocations and frees */
        for (int i = 0; i < 10; i++)
            cr_assert_not_null(b[i] = mpool_alloc(p, size));
        for (int i = 0; i < 10; i++)
            mpool_free(p, b[i]);
    }
    mpool_stats_t s = stats_of(p);
    double expected = 2.0 * 3200 / 16;
    cr_expect(s.timing_samples >= low * expected && s.timing_samples <= high * expected,
              "thread_safe %d, size %zu: %zu samples, expected about %.0f", thread_safe, size, s.timing_samples,
              expected);
    cr_expect_gt(s.avg_alloc_ns, 0.0);
    cr_expect_gt(s.avg_free_ns, 0.0);
    cr_expect_geq(s.max_alloc_ns, s.avg_alloc_ns);
    cr_expect_geq(s.max_free_ns, s.avg_free_ns);
    cr_expect_eq(s.allocations, 3200);
    cr_expect_eq(s.frees, 3200);
    mpool_destroy(p);
}

Test(stats, timing_samples)
{
    timing_case(true, 32, 0.95, 1.05);   /* no inline path: every call counted */
    timing_case(true, 5000, 0.95, 1.05);
    timing_case(false, 32, 0.5, 1.5);    /* inline paths: counted at refills */
    timing_case(false, 5000, 0.95, 1.05); /* above SMALL_MAX: every call is a slow one */
    mpool_t *p;

    p = make_pool(true);
    mpool_free(p, mpool_alloc(p, 32));
    cr_expect_eq(stats_of(p).timing_samples, 0);
    mpool_destroy(p);
}

Test(stats, null_out_is_refused)
{
    cr_expect_not(mpool_get_stats(NULL, NULL));
    cr_expect_eq(mpool_last_error(), MPOOL_ERR_INVALID_ARGUMENT);
}

/* ---- Threads ------------------------------------------------------------ */

#define THREADS 8
#define SLOTS 256

struct shared {
    mpool_t *pool;
    _Atomic(void *) slot[SLOTS]; /* blocks handed between threads */
    atomic_size_t allocs, frees;
    atomic_bool stop;
    int rounds;
};

static void *worker(void *arg)
{
    struct shared *sh = arg;
    rng_t r;
    rng_seed(&r, (uint64_t)(uintptr_t)&r);
    for (int i = 0; i < sh->rounds; i++) {
        size_t size = (size_t)(rng_next(&r) % 3000);
        void *b = mpool_alloc(sh->pool, size);
        if (!b)
            continue;
        atomic_fetch_add(&sh->allocs, 1);
        void *old = atomic_exchange(&sh->slot[rng_next(&r) % SLOTS], b);
        if (old) { /* often another thread's block */
            mpool_free(sh->pool, old);
            atomic_fetch_add(&sh->frees, 1);
        }
    }
    return NULL;
}

struct observation {
    struct shared *sh;
    size_t snapshots, bad;
};

static void *observer(void *arg)
{
    struct observation *o = arg;
    mpool_stats_t s;
    while (!atomic_load(&o->sh->stop)) {
        if (!mpool_get_stats(o->sh->pool, &s)) {
            o->bad++;
            continue;
        }
        o->snapshots++;
        size_t live = 0;
        for (size_t k = 0; k < s.class_count; k++) {
            const mpool_class_stats_t *c = &s.classes[k];
            live += c->in_use;
            if (c->in_use > (size_t)THREADS * 1000000 || c->in_use > c->capacity || c->peak_in_use < c->in_use)
                o->bad++;
        }
        if (getenv("STATS_DEBUG") && (s.frees > s.allocations || live > s.live_blocks || s.used_bytes > s.total_bytes))
            fprintf(stderr, "frees %zu allocs %zu live %zu/%zu used %zu total %zu\n", s.frees, s.allocations, live,
                    s.live_blocks, s.used_bytes, s.total_bytes);
        if (s.allocations > (size_t)THREADS * 1000000 ||
            s.live_blocks > (size_t)THREADS * 1000000 || s.used_bytes > s.total_bytes ||
            s.peak_used_bytes < s.used_bytes || s.peak_total_bytes < s.total_bytes || live > s.live_blocks ||
            !(s.unused_ratio >= 0.0 && s.unused_ratio <= 1.0) ||
            !(s.fragmentation >= 0.0 && s.fragmentation <= 1.0))
            o->bad++;
    }
    return NULL;
}

Test(stats, consistent_under_threads, .timeout = 120)
{
    struct shared *sh = calloc(1, sizeof *sh);
    cr_assert_not_null(sh);
    sh->pool = make_pool(true);
    sh->rounds = 20000 * test_scale();
#ifdef __SANITIZE_THREAD__
    sh->rounds /= 10;
#endif
    mpool_stats_t before = stats_of(sh->pool);
    struct observation o = {sh, 0, 0};
    pthread_t obs, t[THREADS];
    cr_assert_eq(pthread_create(&obs, NULL, observer, &o), 0);
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, worker, sh), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&sh->stop, true);
    pthread_join(obs, NULL);
    cr_expect_eq(o.bad, 0, "%zu of %zu snapshots showed an impossible figure", o.bad, o.snapshots);
    cr_expect_gt(o.snapshots, 0);

    /* Quiet now: exact. */
    mpool_stats_t s = stats_of(sh->pool);
    size_t live = 0;
    for (int i = 0; i < SLOTS; i++)
        live += atomic_load(&sh->slot[i]) != NULL;
    cr_expect_eq(s.allocations - before.allocations, atomic_load(&sh->allocs));
    cr_expect_eq(s.frees - before.frees, atomic_load(&sh->frees));
    cr_expect_eq(s.live_blocks, live);
    cr_expect_eq(s.used_bytes, mpool_get_usage(sh->pool).used);
    for (int i = 0; i < SLOTS; i++)
        mpool_free(sh->pool, atomic_load(&sh->slot[i]));
    s = stats_of(sh->pool);
    cr_expect_eq(s.live_blocks, 0);
    cr_expect_eq(s.used_bytes, 0);
    mpool_destroy(sh->pool);
    free(sh);
}
