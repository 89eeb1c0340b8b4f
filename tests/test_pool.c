/*
 * test_pool.c - behaviour of pools and blocks through the public API:
 * configuration defaults, creation, every block size class (small, medium,
 * large, huge), alignment, calloc, realloc, reset, destroy, the NULL pool,
 * ownership, usage figures, growth, max_size, thread-safety switch, trim.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mpool.h>

#include "testutil.h"


static const size_t block_sizes[] = {
    0,     1,     8,         16,          17,      100,     128,     129,
    1000,  4096,  32768,     65537,       MiB,     MiB + 1, 3 * MiB, 20 * MiB,
};
#define N_BLOCK_SIZES (sizeof block_sizes / sizeof block_sizes[0])

static void setup(void)
{
    pattern_init();
}

TestSuite(pool, .init = setup);

static void assert_usage_consistent(const mpool_t *pool)
{
    mpool_usage_t u = mpool_get_usage(pool);
    cr_assert_geq(u.total, u.used, "total %zu < used %zu", u.total, u.used);
    cr_assert_eq(u.free, u.total - u.used, "free %zu != total %zu - used %zu", u.free, u.total,
                 u.used);
    double want = u.total ? 100.0 * (double)u.used / (double)u.total : 0.0;
    cr_assert(fabs(u.usage_percent - want) < 1e-6, "usage_percent %f, expected %f", u.usage_percent,
              want);
    cr_assert(u.usage_percent >= 0.0 && u.usage_percent <= 100.0, "usage_percent %f",
              u.usage_percent);
}

/* ---- configuration and creation ------------------------------------------ */

Test(pool, config_defaults)
{
    mpool_config_t c = mpool_config_default();
    cr_assert_eq(c.initial_size, MiB);
    cr_assert_eq(c.max_size, 0);
    cr_assert(c.growth_factor == 2.0, "growth_factor %f", c.growth_factor);
    cr_assert_eq(c.min_block_size, 16);
    cr_assert_eq(c.max_block_size, 2 * MiB);
    cr_assert_eq(c.alignment, 16);
    cr_assert(c.thread_safe);
    cr_assert(c.enable_statistics);
    cr_assert_not(c.enable_debug);
    cr_assert_eq(c.on_error, MPOOL_ON_ERROR_RETURN);
    cr_assert_null((void *)c.logger);
    cr_assert_null(c.logger_arg);
}

Test(pool, create_null_config_and_default_config)
{
    mpool_t *a = create_or_die(NULL);
    mpool_config_t c = mpool_config_default();
    mpool_t *b = create_or_die(&c);
    cr_assert_neq(a, b);
    cr_assert_neq(a, mpool_default());
    cr_assert(mpool_is_thread_safe(a), "NULL config must give a thread-safe pool");
    mpool_usage_t u = mpool_get_usage(a);
    cr_assert_eq(u.used, 0);
    cr_assert_geq(u.total, MiB, "initial_size 1 MiB must be reserved at creation, total %zu",
                  u.total);
    cr_assert_eq(mpool_check(a), 0);
    cr_assert_eq(mpool_check(b), 0);
    void *p = mpool_alloc(a, 10);
    cr_assert_not_null(p);
    cr_assert(mpool_owns(a, p));
    cr_assert_not(mpool_owns(b, p));
    mpool_free(a, p);
    mpool_destroy(a);
    mpool_destroy(b);
}

Test(pool, default_pool_is_stable)
{
    mpool_t *d = mpool_default();
    cr_assert_not_null(d);
    cr_assert_eq(d, mpool_default());
    cr_assert_eq(mpool_check(d), 0);
}

/* ---- alloc / free of every size ------------------------------------------ */

static void check_one_size(mpool_t *pool, size_t size, size_t align)
{
    unsigned char *p = mpool_alloc(pool, size);
    cr_assert_not_null(p, "alloc(%zu) failed: %s", size, mpool_strerror(mpool_last_error()));
    cr_assert(is_aligned(p, align), "alloc(%zu) = %p not aligned to %zu", size, (void *)p, align);
    size_t us = mpool_usable_size(pool, p);
    cr_assert_geq(us, size, "usable_size %zu < size %zu", us, size);
    cr_assert(mpool_owns(pool, p), "owns false for fresh block of size %zu", size);
    cr_assert(mpool_owns(NULL, p), "owns(NULL) false for fresh block of size %zu", size);
    memset(p, 0xA5, us);
    if (us > 0)
        cr_assert_eq(p[0] + p[us - 1], 2 * 0xA5);
    cr_assert_eq(mpool_check(pool), 0, "check after alloc(%zu)", size);
    mpool_free(pool, p);
    cr_assert_not(mpool_owns(pool, p), "owns true after free of size %zu", size);
    cr_assert_eq(mpool_usable_size(pool, p), 0, "usable_size != 0 after free of size %zu", size);
    cr_assert_eq(mpool_check(pool), 0, "check after free(%zu)", size);
}

Test(pool, alloc_free_every_size)
{
    mpool_t *pool = create_or_die(NULL);
    for (size_t i = 0; i < N_BLOCK_SIZES; i++)
        check_one_size(pool, block_sizes[i], 16);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

Test(pool, alloc_free_every_size_all_live_at_once)
{
    mpool_t *pool = create_or_die(NULL);
    void *ps[N_BLOCK_SIZES];
    for (size_t i = 0; i < N_BLOCK_SIZES; i++) {
        ps[i] = mpool_alloc(pool, block_sizes[i]);
        cr_assert_not_null(ps[i], "alloc(%zu)", block_sizes[i]);
        pattern_fill(ps[i], i, block_sizes[i]);
    }
    for (size_t i = 0; i < N_BLOCK_SIZES; i++) {
        cr_assert(pattern_ok(ps[i], i, block_sizes[i]), "block of size %zu corrupted",
                  block_sizes[i]);
        cr_assert(mpool_owns(pool, ps[i]));
    }
    cr_assert_eq(mpool_check(pool), 0);
    for (size_t i = 0; i < N_BLOCK_SIZES; i++)
        mpool_free(pool, ps[i]);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(pool, size_zero_gives_distinct_blocks)
{
    mpool_t *pool = create_or_die(NULL);
    enum { N = 200 };
    void *ps[N];
    for (int i = 0; i < N; i++) {
        ps[i] = mpool_alloc(pool, 0);
        cr_assert_not_null(ps[i]);
        cr_assert(is_aligned(ps[i], 16));
        cr_assert(mpool_owns(pool, ps[i]));
        for (int j = 0; j < i; j++)
            cr_assert_neq(ps[i], ps[j], "size-0 blocks %d and %d share %p", i, j, ps[i]);
    }
    for (int i = 0; i < N; i++) {
        cr_assert(mpool_safe_free(pool, ps[i]), "size-0 block %d not freeable", i);
        cr_assert_not(mpool_owns(pool, ps[i]));
    }
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

/* Usable size stays within 12.5% of the request from 128 B up to max_block_size. */
Test(pool, usable_size_waste_bounded)
{
    mpool_t *pool = create_or_die(NULL);
    rng_t r;
    rng_seed(&r, 12345);
    for (int i = 0; i < 3000; i++) {
        size_t size = (size_t)rng_logrange(&r, 128, MiB);
        if (i < 64)
            size = 128 + (size_t)i * 37;
        void *p = mpool_alloc(pool, size);
        cr_assert_not_null(p, "alloc(%zu)", size);
        size_t us = mpool_usable_size(pool, p);
        cr_assert_geq(us, size);
        cr_assert_leq(us, size + size / 8,
                      "alloc(%zu): usable %zu wastes more than 12.5%% of the request", size, us);
        mpool_free(pool, p);
    }
    mpool_destroy(pool);
}

/* ---- alignment ----------------------------------------------------------- */

Test(pool, alloc_aligned_all_powers_of_two)
{
    mpool_t *pool = create_or_die(NULL);
    static const size_t sizes[] = {0, 1, 100, 5000, 70000, 2 * MiB};
    uint64_t id = 0;
    for (size_t a = 1; a <= MiB; a <<= 1) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t size = sizes[s];
            unsigned char *p = mpool_alloc_aligned(pool, size, a);
            cr_assert_not_null(p, "alloc_aligned(%zu, %zu) failed: %s", size, a,
                               mpool_strerror(mpool_last_error()));
            size_t want = a > 16 ? a : 16;
            cr_assert(is_aligned(p, want), "alloc_aligned(%zu, %zu) = %p", size, a, (void *)p);
            size_t us = mpool_usable_size(pool, p);
            cr_assert_geq(us, size, "alloc_aligned(%zu, %zu): usable %zu", size, a, us);
            cr_assert(mpool_owns(pool, p));
            pattern_fill(p, ++id, size);
            cr_assert(pattern_ok(p, id, size));
            cr_assert_eq(mpool_check(pool), 0, "check after alloc_aligned(%zu, %zu)", size, a);
            mpool_free(pool, p);
            cr_assert_not(mpool_owns(pool, p));
        }
    }
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(pool, alloc_aligned_many_live)
{
    /* Keep many aligned blocks alive together so that alignment padding
     * bookkeeping is exercised with neighbours around. */
    mpool_t *pool = create_or_die(NULL);
    enum { N = 300 };
    void *ps[N];
    size_t sz[N];
    rng_t r;
    rng_seed(&r, 99);
    for (int i = 0; i < N; i++) {
        size_t a = (size_t)1 << rng_below(&r, 17);
        sz[i] = (size_t)rng_logrange(&r, 1, 200000);
        ps[i] = mpool_alloc_aligned(pool, sz[i], a);
        cr_assert_not_null(ps[i]);
        cr_assert(is_aligned(ps[i], a > 16 ? a : 16));
        cr_assert_geq(mpool_usable_size(pool, ps[i]), sz[i]);
        pattern_fill(ps[i], (uint64_t)i, sz[i]);
    }
    cr_assert_eq(mpool_check(pool), 0);
    for (int i = 0; i < N; i++) {
        cr_assert(pattern_ok(ps[i], (uint64_t)i, sz[i]), "aligned block %d corrupted", i);
        mpool_free(pool, ps[i]);
    }
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

static void check_config_alignment(size_t alignment)
{
    mpool_config_t c = mpool_config_default();
    c.alignment = alignment;
    mpool_t *pool = create_or_die(&c);
    enum { N = 2 * N_BLOCK_SIZES + 40 };
    void *ps[N];
    size_t sz[N];
    for (size_t i = 0; i < N; i++) {
        if (i < N_BLOCK_SIZES)
            sz[i] = block_sizes[i];
        else
            sz[i] = (i * 97) % 3000;
        if (i >= 2 * N_BLOCK_SIZES)
            ps[i] = mpool_alloc_aligned(pool, sz[i], 8);
        else if (i >= N_BLOCK_SIZES)
            ps[i] = mpool_calloc(pool, 1, sz[i]);
        else
            ps[i] = mpool_alloc(pool, sz[i]);
        cr_assert_not_null(ps[i], "alloc(%zu) in alignment-%zu pool", sz[i], alignment);
        cr_assert(is_aligned(ps[i], alignment), "block %p of size %zu not aligned to %zu", ps[i],
                  sz[i], alignment);
        cr_assert_geq(mpool_usable_size(pool, ps[i]), sz[i]);
        pattern_fill(ps[i], i, sz[i]);
    }
    /* realloc keeps the pool alignment */
    for (size_t i = N_BLOCK_SIZES; i < N_BLOCK_SIZES + 10; i++) {
        void *q = mpool_realloc(pool, ps[i], sz[i] * 3 + 1000);
        cr_assert_not_null(q);
        cr_assert(is_aligned(q, alignment), "realloc result %p not aligned to %zu", q, alignment);
        cr_assert(pattern_ok(q, i, sz[i]));
        ps[i] = q;
    }
    cr_assert_eq(mpool_check(pool), 0);
    for (size_t i = 0; i < N; i++) {
        cr_assert(pattern_ok(ps[i], i, sz[i]), "block %zu corrupted", i);
        mpool_free(pool, ps[i]);
    }
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(pool, config_alignment_64)
{
    check_config_alignment(64);
}

Test(pool, config_alignment_4096)
{
    check_config_alignment(4096);
}

/* ---- calloc -------------------------------------------------------------- */

Test(pool, calloc_zeroes)
{
    mpool_t *pool = create_or_die(NULL);
    for (size_t i = 0; i < N_BLOCK_SIZES; i++) {
        size_t size = block_sizes[i];
        unsigned char *p = mpool_calloc(pool, 1, size);
        cr_assert_not_null(p, "calloc(1, %zu)", size);
        cr_assert(is_aligned(p, 16));
        cr_assert_geq(mpool_usable_size(pool, p), size);
        cr_assert(bytes_all_zero(p, size), "calloc(1, %zu) not zeroed", size);
        mpool_free(pool, p);
    }
    /* count * size split */
    unsigned char *p = mpool_calloc(pool, 1000, 24);
    cr_assert_not_null(p);
    cr_assert_geq(mpool_usable_size(pool, p), 24000);
    cr_assert(bytes_all_zero(p, 24000));
    mpool_free(pool, p);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

Test(pool, calloc_zeroes_reused_dirty_blocks)
{
    mpool_t *pool = create_or_die(NULL);
    for (size_t i = 0; i < N_BLOCK_SIZES; i++) {
        size_t size = block_sizes[i];
        /* dirty several blocks of this size, free them, then calloc the same size */
        enum { K = 8 };
        unsigned char *d[K];
        for (int k = 0; k < K; k++) {
            d[k] = mpool_alloc(pool, size);
            cr_assert_not_null(d[k]);
            memset(d[k], 0xEE, mpool_usable_size(pool, d[k]));
        }
        for (int k = K - 1; k >= 0; k--)
            mpool_free(pool, d[k]);
        for (int k = 0; k < K; k++) {
            d[k] = mpool_calloc(pool, 1, size);
            cr_assert_not_null(d[k]);
            cr_assert(bytes_all_zero(d[k], size), "calloc(1, %zu) of a reused block not zeroed",
                      size);
        }
        for (int k = 0; k < K; k++)
            mpool_free(pool, d[k]);
    }
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(pool, calloc_zero_count_or_size)
{
    mpool_t *pool = create_or_die(NULL);
    void *a = mpool_calloc(pool, 0, 16);
    void *b = mpool_calloc(pool, 16, 0);
    cr_assert_not_null(a, "calloc(0, 16) must give a unique block like alloc(0)");
    cr_assert_not_null(b, "calloc(16, 0) must give a unique block like alloc(0)");
    cr_assert_neq(a, b);
    cr_assert(mpool_safe_free(pool, a));
    cr_assert(mpool_safe_free(pool, b));
    mpool_destroy(pool);
}

/* ---- realloc ------------------------------------------------------------- */

Test(pool, realloc_null_allocates)
{
    mpool_t *pool = create_or_die(NULL);
    void *p = mpool_realloc(pool, NULL, 300);
    cr_assert_not_null(p);
    cr_assert(mpool_owns(pool, p));
    cr_assert_geq(mpool_usable_size(pool, p), 300);
    void *q = mpool_realloc(NULL, NULL, 50);
    cr_assert_not_null(q);
    cr_assert(mpool_owns(mpool_default(), q), "realloc(NULL pool, NULL, n) uses the default pool");
    mpool_free(pool, p);
    mpool_free(NULL, q);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

Test(pool, realloc_grow_shrink_keeps_content)
{
    mpool_t *pool = create_or_die(NULL);
    static const size_t chain[] = {
        10,      100,     128,     129,     5000,        70000,   MiB - 1, MiB,
        MiB + 1, 2 * MiB, 30 * MiB, 31 * MiB, 3 * MiB, 2 * MiB, MiB + 1,   50000,
        4096,    300,     30,      1,       64,      65537,   20 * MiB, 17,
    };
    size_t n = sizeof chain / sizeof chain[0];
    size_t cur = chain[0];
    unsigned char *p = mpool_realloc(pool, NULL, cur);
    cr_assert_not_null(p);
    pattern_fill(p, 7, cur);
    for (size_t i = 1; i < n; i++) {
        size_t next = chain[i];
        unsigned char *q = mpool_realloc(pool, p, next);
        cr_assert_not_null(q, "realloc(%zu -> %zu) failed: %s", cur, next,
                           mpool_strerror(mpool_last_error()));
        cr_assert(is_aligned(q, 16));
        cr_assert_geq(mpool_usable_size(pool, q), next, "realloc(%zu -> %zu) usable %zu", cur,
                      next, mpool_usable_size(pool, q));
        cr_assert(mpool_owns(pool, q));
        size_t keep = cur < next ? cur : next;
        size_t bad = pattern_find_bad(q, 7, keep);
        cr_assert_eq(bad, SIZE_MAX, "realloc(%zu -> %zu) lost content at offset %zu", cur, next,
                     bad);
        if (q != p)
            cr_assert_not(mpool_owns(pool, p), "old block still live after moving realloc");
        pattern_fill_range(q, 7, keep, next);
        cr_assert_eq(mpool_check(pool), 0, "check after realloc(%zu -> %zu)", cur, next);
        mpool_usage_t u = mpool_get_usage(pool);
        cr_assert_eq(u.used, mpool_usable_size(pool, q),
                     "used %zu != usable size %zu of the only live block", u.used,
                     mpool_usable_size(pool, q));
        p = q;
        cur = next;
    }
    mpool_free(pool, p);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

Test(pool, realloc_with_neighbours_keeps_everyone)
{
    mpool_t *pool = create_or_die(NULL);
    enum { N = 64 };
    unsigned char *ps[N];
    size_t sz[N];
    rng_t r;
    rng_seed(&r, 4242);
    for (int i = 0; i < N; i++) {
        sz[i] = (size_t)rng_logrange(&r, 1, 3 * MiB);
        ps[i] = mpool_alloc(pool, sz[i]);
        cr_assert_not_null(ps[i]);
        pattern_fill(ps[i], (uint64_t)i, sz[i]);
    }
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < N; i++) {
            size_t ns = (size_t)rng_logrange(&r, 1, 3 * MiB);
            unsigned char *q = mpool_realloc(pool, ps[i], ns);
            cr_assert_not_null(q, "realloc(%zu -> %zu)", sz[i], ns);
            size_t keep = sz[i] < ns ? sz[i] : ns;
            cr_assert(pattern_ok(q, (uint64_t)i, keep), "realloc(%zu -> %zu) lost content",
                      sz[i], ns);
            pattern_fill_range(q, (uint64_t)i, keep, ns);
            ps[i] = q;
            sz[i] = ns;
        }
        for (int i = 0; i < N; i++)
            cr_assert(pattern_ok(ps[i], (uint64_t)i, sz[i]), "round %d: block %d corrupted",
                      round, i);
        cr_assert_eq(mpool_check(pool), 0);
    }
    for (int i = 0; i < N; i++)
        mpool_free(pool, ps[i]);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

Test(pool, realloc_zero_frees)
{
    mpool_t *pool = create_or_die(NULL);
    static const size_t sizes[] = {8, 5000, 200000, 3 * MiB};
    for (size_t i = 0; i < 4; i++) {
        void *p = mpool_alloc(pool, sizes[i]);
        cr_assert_not_null(p);
        cr_assert_gt(mpool_get_usage(pool).used, 0);
        void *q = mpool_realloc(pool, p, 0);
        cr_assert_null(q, "realloc(p, 0) must return NULL");
        cr_assert_not(mpool_owns(pool, p), "realloc(p, 0) must free p (size %zu)", sizes[i]);
        cr_assert_eq(mpool_get_usage(pool).used, 0);
    }
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* ---- reset and destroy --------------------------------------------------- */

Test(pool, reset_frees_everything)
{
    mpool_t *pool = create_or_die(NULL);
    enum { N = 500 };
    void *ps[N];
    for (int i = 0; i < N; i++) {
        size_t size = (i % 50 == 0) ? 2 * MiB : (i % 10 == 0) ? 100 * KiB : (size_t)(i * 13 % 900);
        ps[i] = mpool_alloc(pool, size);
        cr_assert_not_null(ps[i]);
        memset(ps[i], 0x5A, size);
    }
    size_t total_before = mpool_get_usage(pool).total;
    cr_assert_gt(mpool_get_usage(pool).used, 0);
    mpool_reset(pool);
    mpool_usage_t u = mpool_get_usage(pool);
    cr_assert_eq(u.used, 0, "used %zu after reset", u.used);
    cr_assert_leq(u.total, total_before, "reset must not grow the pool");
    assert_usage_consistent(pool);
    cr_assert_eq(mpool_check(pool), 0);
    for (int i = 0; i < N; i++)
        cr_assert_not(mpool_owns(pool, ps[i]), "block %d (%p) still owned after reset", i, ps[i]);
    /* the pool is still usable, repeatedly */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            size_t size = (i % 50 == 0) ? 2 * MiB : (size_t)(i * 7 % 2000);
            ps[i] = mpool_alloc(pool, size);
            cr_assert_not_null(ps[i]);
            pattern_fill(ps[i], (uint64_t)i, size);
        }
        for (int i = 0; i < N; i++) {
            size_t size = (i % 50 == 0) ? 2 * MiB : (size_t)(i * 7 % 2000);
            cr_assert(pattern_ok(ps[i], (uint64_t)i, size));
        }
        cr_assert_eq(mpool_check(pool), 0);
        mpool_reset(pool);
        cr_assert_eq(mpool_get_usage(pool).used, 0);
        cr_assert_eq(mpool_check(pool), 0);
    }
    mpool_destroy(pool);
}

Test(pool, destroy_releases_everything)
{
    for (int round = 0; round < 20; round++) {
        mpool_t *pool = create_or_die(NULL);
        void *small = mpool_alloc(pool, 64);
        void *large = mpool_alloc(pool, 300 * KiB);
        void *huge = mpool_alloc(pool, 5 * MiB);
        cr_assert_not_null(small);
        cr_assert_not_null(large);
        cr_assert_not_null(huge);
        memset(huge, 1, 5 * MiB);
        mpool_destroy(pool); /* with live blocks */
        cr_assert_not(mpool_owns(NULL, small), "block of a destroyed pool still owned");
        cr_assert_not(mpool_owns(NULL, large), "block of a destroyed pool still owned");
        cr_assert_not(mpool_owns(NULL, huge), "block of a destroyed pool still owned");
    }
    mpool_destroy(NULL); /* does nothing */
}

Test(pool, default_pool_cannot_be_destroyed)
{
    void *p = mpool_alloc(NULL, 100);
    cr_assert_not_null(p);
    pattern_fill(p, 1, 100);
    cr_assert_null(mpool_alloc_aligned(NULL, 8, 3)); /* last error: INVALID_ALIGNMENT */
    errno = 0;
    mpool_destroy(mpool_default());
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ARGUMENT,
                 "destroying the default pool must be reported (got %s)",
                 mpool_strerror(mpool_last_error()));
    cr_assert_eq(errno, EINVAL);
    cr_assert(mpool_owns(mpool_default(), p), "destroying the default pool must be ignored");
    cr_assert(pattern_ok(p, 1, 100));
    void *q = mpool_alloc(NULL, 100);
    cr_assert_not_null(q);
    cr_assert(mpool_safe_free(NULL, q));
    cr_assert(mpool_safe_free(NULL, p));
    cr_assert_eq(mpool_check(mpool_default()), 0);
}

/* ---- NULL pool and ownership --------------------------------------------- */

Test(pool, null_pool_uses_default_and_owner)
{
    mpool_t *d = mpool_default();
    size_t used0 = mpool_get_usage(d).used;
    void *p = mpool_alloc(NULL, 100);
    cr_assert_not_null(p);
    cr_assert(mpool_owns(d, p));
    cr_assert(mpool_owns(NULL, p));
    cr_assert_geq(mpool_usable_size(NULL, p), 100);
    cr_assert_eq(mpool_usable_size(NULL, p), mpool_usable_size(d, p));
    void *a = mpool_alloc_aligned(NULL, 10, 256);
    cr_assert_not_null(a);
    cr_assert(is_aligned(a, 256));
    cr_assert(mpool_owns(d, a));
    void *c = mpool_calloc(NULL, 10, 10);
    cr_assert_not_null(c);
    cr_assert(mpool_owns(d, c));
    cr_assert(bytes_all_zero(c, 100));
    cr_assert_gt(mpool_get_usage(d).used, used0);

    /* blocks of a private pool, handled through NULL */
    mpool_t *pool = create_or_die(NULL);
    void *b = mpool_alloc(pool, 500);
    cr_assert_not_null(b);
    cr_assert_not(mpool_owns(d, b));
    cr_assert(mpool_owns(NULL, b));
    cr_assert_geq(mpool_usable_size(NULL, b), 500);
    pattern_fill(b, 3, 500);
    void *b2 = mpool_realloc(NULL, b, 5000);
    cr_assert_not_null(b2);
    cr_assert(mpool_owns(pool, b2), "realloc through NULL must stay in the owner pool");
    cr_assert_not(mpool_owns(d, b2));
    cr_assert(pattern_ok(b2, 3, 500));
    size_t used_pool = mpool_get_usage(pool).used;
    cr_assert_geq(used_pool, 5000);
    mpool_free(NULL, b2);
    cr_assert_not(mpool_owns(pool, b2));
    cr_assert_eq(mpool_get_usage(pool).used, 0, "free through NULL must free in the owner pool");
    void *b3 = mpool_alloc(pool, 70000);
    cr_assert_not_null(b3);
    cr_assert(mpool_safe_free(NULL, b3));
    cr_assert_eq(mpool_get_usage(pool).used, 0);

    mpool_free(NULL, p);
    mpool_free(d, a);
    cr_assert(mpool_safe_free(NULL, c));
    cr_assert_not(mpool_owns(NULL, p));
    cr_assert_eq(mpool_get_usage(d).used, used0);
    mpool_free(NULL, NULL); /* does nothing */
    mpool_free(pool, NULL);
    cr_assert_eq(mpool_check(d), 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(pool, owns_is_per_pool)
{
    mpool_t *a = create_or_die(NULL);
    mpool_t *b = create_or_die(NULL);
    static const size_t sizes[] = {0, 16, 1000, 100 * KiB, 3 * MiB};
    for (size_t i = 0; i < 5; i++) {
        void *pa = mpool_alloc(a, sizes[i]);
        void *pb = mpool_alloc(b, sizes[i]);
        cr_assert_not_null(pa);
        cr_assert_not_null(pb);
        cr_assert(mpool_owns(a, pa));
        cr_assert(mpool_owns(b, pb));
        cr_assert_not(mpool_owns(a, pb), "pool A owns a block of pool B (size %zu)", sizes[i]);
        cr_assert_not(mpool_owns(b, pa), "pool B owns a block of pool A (size %zu)", sizes[i]);
        cr_assert_not(mpool_owns(mpool_default(), pa));
        cr_assert_eq(mpool_usable_size(a, pb), 0, "usable_size in the wrong pool must be 0");
        cr_assert_eq(mpool_usable_size(b, pa), 0);
        mpool_free(a, pa);
        mpool_free(b, pb);
    }
    mpool_destroy(a);
    mpool_destroy(b);
}

/* ---- usage --------------------------------------------------------------- */

Test(pool, usage_tracks_live_blocks)
{
    mpool_t *pool = create_or_die(NULL);
    mpool_usage_t u0 = mpool_get_usage(pool);
    cr_assert_eq(u0.used, 0);
    assert_usage_consistent(pool);
    enum { N = 200 };
    void *ps[N];
    size_t sum = 0;
    rng_t r;
    rng_seed(&r, 77);
    for (int i = 0; i < N; i++) {
        size_t size = (i % 40 == 0) ? 2 * MiB : (size_t)rng_logrange(&r, 1, 200 * KiB);
        size_t before = mpool_get_usage(pool).used;
        ps[i] = mpool_alloc(pool, size);
        cr_assert_not_null(ps[i]);
        size_t us = mpool_usable_size(pool, ps[i]);
        size_t after = mpool_get_usage(pool).used;
        cr_assert_eq(after - before, us,
                     "alloc(%zu): used grew by %zu, usable size is %zu (used counts usable sizes)",
                     size, after - before, us);
        sum += us;
        cr_assert_eq(after, sum);
        assert_usage_consistent(pool);
    }
    cr_assert_eq(mpool_check(pool), 0);
    for (int i = 0; i < N; i++) {
        size_t us = mpool_usable_size(pool, ps[i]);
        mpool_free(pool, ps[i]);
        sum -= us;
        cr_assert_eq(mpool_get_usage(pool).used, sum);
        assert_usage_consistent(pool);
    }
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* ---- growth and max_size ------------------------------------------------- */

Test(pool, grows_from_small_initial_size)
{
    mpool_config_t c = mpool_config_default();
    c.initial_size = 64 * KiB;
    mpool_t *pool = create_or_die(&c);
    size_t t0 = mpool_get_usage(pool).total;
    enum { BS = 64, N = (10 << 20) / BS };
    static void *ps[N]; /* static: nothing leaks when an assertion stops the test */
    for (size_t i = 0; i < N; i++) {
        ps[i] = mpool_alloc(pool, BS);
        cr_assert_not_null(ps[i], "alloc %zu of %d failed: %s", i, N,
                           mpool_strerror(mpool_last_error()));
        memcpy(ps[i], &i, sizeof i);
    }
    mpool_usage_t u = mpool_get_usage(pool);
    cr_assert_geq(u.used, (size_t)N * BS);
    cr_assert_geq(u.total, (size_t)10 << 20);
    cr_assert_gt(u.total, t0);
    assert_usage_consistent(pool);
    cr_assert_eq(mpool_check(pool), 0);
    for (size_t i = 0; i < N; i++) {
        size_t v;
        memcpy(&v, ps[i], sizeof v);
        cr_assert_eq(v, i, "block %zu corrupted", i);
        mpool_free(pool, ps[i]);
    }
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(pool, max_size_is_respected)
{
    mpool_config_t c = mpool_config_default();
    c.initial_size = 256 * KiB;
    c.max_size = 4 * MiB;
    mpool_t *pool = create_or_die(&c);
    enum { N = 100000 };
    static void *ps[N];
    static size_t sz[N];
    size_t n = 0;
    rng_t r;
    rng_seed(&r, 5);
    bool failed = false;
    while (n < N) {
        size_t size = (n % 16 == 15) ? (size_t)rng_range(&r, 8 * KiB, 200 * KiB)
                                     : (size_t)rng_range(&r, 1, 3000);
        void *p = mpool_alloc(pool, size);
        mpool_usage_t u = mpool_get_usage(pool);
        cr_assert_leq(u.total, c.max_size, "total %zu above max_size %zu", u.total, c.max_size);
        if (p == NULL) {
            cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL, "got %s",
                         mpool_strerror(mpool_last_error()));
            failed = true;
            if (size <= 3000)
                break;
            continue;
        }
        pattern_fill(p, n, size);
        ps[n] = p;
        sz[n] = size;
        n++;
    }
    cr_assert(failed, "4 MiB pool never filled up after %zu blocks", n);
    cr_assert_gt(n, 100, "pool filled up after only %zu blocks", n);
    cr_assert_eq(mpool_check(pool), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert(pattern_ok(ps[i], i, sz[i]), "block %zu changed when the pool was full", i);
    for (size_t i = 0; i < n; i++)
        mpool_free(pool, ps[i]);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_leq(mpool_get_usage(pool).total, c.max_size);
    /* after freeing, the pool serves again */
    void *p = mpool_alloc(pool, MiB);
    cr_assert_not_null(p, "empty 4 MiB pool cannot serve 1 MiB: %s",
                       mpool_strerror(mpool_last_error()));
    mpool_free(pool, p);
    mpool_destroy(pool);
}

/* ---- thread-safety switch ------------------------------------------------ */

Test(pool, thread_safe_switch)
{
    mpool_config_t c = mpool_config_default();
    c.thread_safe = false;
    mpool_t *pool = create_or_die(&c);
    cr_assert_not(mpool_is_thread_safe(pool));
    void *p = mpool_alloc(pool, 100);
    cr_assert_not_null(p);
    mpool_set_thread_safe(pool, true);
    cr_assert(mpool_is_thread_safe(pool));
    void *q = mpool_alloc(pool, 100);
    cr_assert_not_null(q);
    mpool_free(pool, p); /* allocated unlocked, freed locked */
    mpool_set_thread_safe(pool, false);
    cr_assert_not(mpool_is_thread_safe(pool));
    mpool_free(pool, q); /* allocated locked, freed unlocked */
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_set_thread_safe(pool, true);
    cr_assert(mpool_is_thread_safe(pool));
    mpool_destroy(pool);
    cr_assert(mpool_is_thread_safe(mpool_default()));
}

/* ---- trim ---------------------------------------------------------------- */

Test(pool, trim_keeps_live_blocks)
{
    mpool_t *pool = create_or_die(NULL);
    enum { N = 3000 };
    void *ps[N];
    size_t sz[N];
    rng_t r;
    rng_seed(&r, 31337);
    for (int i = 0; i < N; i++) {
        sz[i] = (i % 100 == 0) ? 2 * MiB : (size_t)rng_logrange(&r, 1, 300 * KiB);
        ps[i] = mpool_alloc(pool, sz[i]);
        cr_assert_not_null(ps[i]);
        pattern_fill(ps[i], (uint64_t)i, sz[i]);
    }
    /* free most blocks, leaving scattered survivors */
    for (int i = 0; i < N; i++) {
        if (i % 7 != 0) {
            mpool_free(pool, ps[i]);
            ps[i] = NULL;
        }
    }
    size_t used = mpool_get_usage(pool).used;
    size_t total_before = mpool_get_usage(pool).total;
    size_t released = mpool_trim(pool);
    mpool_usage_t u = mpool_get_usage(pool);
    cr_assert_eq(u.used, used, "trim changed used");
    cr_assert_leq(u.total, total_before, "trim grew the pool");
    cr_assert_leq(released, total_before);
    assert_usage_consistent(pool);
    cr_assert_eq(mpool_check(pool), 0);
    for (int i = 0; i < N; i++) {
        if (ps[i] == NULL)
            continue;
        cr_assert(mpool_owns(pool, ps[i]));
        cr_assert(pattern_ok(ps[i], (uint64_t)i, sz[i]), "block %d changed by trim", i);
    }
    /* the pool keeps working after trim */
    for (int i = 0; i < N; i++) {
        if (ps[i] != NULL)
            continue;
        ps[i] = mpool_alloc(pool, sz[i]);
        cr_assert_not_null(ps[i]);
        pattern_fill(ps[i], (uint64_t)i, sz[i]);
    }
    for (int i = 0; i < N; i++) {
        cr_assert(pattern_ok(ps[i], (uint64_t)i, sz[i]), "block %d corrupted after trim", i);
        mpool_free(pool, ps[i]);
    }
    mpool_trim(pool);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* ---- configuration matrix ------------------------------------------------ */

static void exercise_pool(const mpool_config_t *c, const char *what)
{
    mpool_t *pool = mpool_create(c);
    cr_assert_not_null(pool, "%s: mpool_create failed: %s", what,
                       mpool_strerror(mpool_last_error()));
    enum { N = 400 };
    static void *ps[N];
    static size_t sz[N];
    rng_t r;
    rng_seed(&r, 2024);
    size_t align = c->alignment;
    for (size_t i = 0; i < N; i++) {
        if (i < N_BLOCK_SIZES)
            sz[i] = block_sizes[i] > 4 * MiB ? 4 * MiB : block_sizes[i];
        else
            sz[i] = (i % 50 == 0) ? (size_t)rng_logrange(&r, MiB, 6 * MiB)
                                  : (size_t)rng_logrange(&r, 1, 300 * KiB) - 1;
        ps[i] = (i % 3 == 0) ? mpool_calloc(pool, 1, sz[i]) : mpool_alloc(pool, sz[i]);
        cr_assert_not_null(ps[i], "%s: alloc(%zu) failed: %s", what, sz[i],
                           mpool_strerror(mpool_last_error()));
        cr_assert(is_aligned(ps[i], align), "%s: alloc(%zu) = %p not aligned to %zu", what,
                  sz[i], ps[i], align);
        cr_assert_geq(mpool_usable_size(pool, ps[i]), sz[i], "%s: usable_size", what);
        if ((sz[i] > 0 || c->alignment > 16) && !c->enable_debug) /* a zero-size block has no bytes
                                                                    (zero.h); a debug block has the size
                                                                    asked for */
            cr_assert_geq(mpool_usable_size(pool, ps[i]), c->min_block_size,
                          "%s: block of %zu bytes smaller than min_block_size %zu", what, sz[i],
                          c->min_block_size);
        cr_assert(mpool_owns(pool, ps[i]));
        if (i % 3 == 0)
            cr_assert(bytes_all_zero(ps[i], sz[i]), "%s: calloc(%zu) not zeroed", what, sz[i]);
        pattern_fill(ps[i], i, sz[i]);
    }
    cr_assert_eq(mpool_check(pool), 0, "%s: check", what);
    for (size_t i = 0; i < N; i += 2) {
        size_t ns = sz[i] / 2 + 3000;
        void *q = mpool_realloc(pool, ps[i], ns);
        cr_assert_not_null(q);
        cr_assert(is_aligned(q, align));
        size_t keep = sz[i] < ns ? sz[i] : ns;
        cr_assert(pattern_ok(q, i, keep), "%s: realloc(%zu -> %zu) lost content", what, sz[i],
                  ns);
        pattern_fill_range(q, i, keep, ns);
        ps[i] = q;
        sz[i] = ns;
    }
    for (size_t i = 0; i < N; i++) {
        cr_assert(pattern_ok(ps[i], i, sz[i]), "%s: block %zu (size %zu) corrupted", what, i,
                  sz[i]);
        cr_assert(mpool_safe_free(pool, ps[i]), "%s: safe_free of block %zu", what, i);
    }
    mpool_usage_t u = mpool_get_usage(pool);
    cr_assert_eq(u.used, 0, "%s: used %zu after freeing everything", what, u.used);
    cr_assert_eq(mpool_check(pool), 0, "%s: check at the end", what);
    mpool_destroy(pool);
}

Test(pool, config_matrix)
{
    static const size_t mins[] = {sizeof(void *), 16, 32, 64, 256};
    static const size_t maxs[] = {4 * KiB, 64 * KiB, MiB, 8 * MiB};
    static const size_t aligns[] = {8, 16, 64, 4096};
    static const size_t inits[] = {64 * KiB, MiB, 3 * MiB};
    int k = 0;
    for (size_t a = 0; a < 5; a++) {
        for (size_t b = 0; b < 4; b++) {
            for (size_t al = 0; al < 4; al++) {
                mpool_config_t c = mpool_config_default();
                c.min_block_size = mins[a];
                c.max_block_size = maxs[b];
                c.alignment = aligns[al];
                c.initial_size = inits[k % 3];
                c.thread_safe = (k & 1) != 0;
                c.enable_statistics = (k % 5) != 0;
                char what[160];
                snprintf(what, sizeof what,
                         "min %zu max %zu align %zu initial %zu thread_safe %d statistics %d",
                         c.min_block_size, c.max_block_size, c.alignment, c.initial_size,
                         c.thread_safe, c.enable_statistics);
                exercise_pool(&c, what);
                k++;
            }
        }
    }
    cr_assert_eq(k, 80);
}

Test(pool, debug_pool_works)
{
    mpool_config_t c = mpool_config_default();
    c.enable_debug = true;
    exercise_pool(&c, "enable_debug");
}

Test(pool, growth_factor_one_still_grows)
{
    mpool_config_t c = mpool_config_default();
    c.initial_size = 64 * KiB;
    c.growth_factor = 1.0;
    mpool_t *pool = create_or_die(&c);
    enum { N = 40000 };
    static void *ps[N];
    for (size_t i = 0; i < N; i++) {
        ps[i] = mpool_alloc(pool, 100);
        cr_assert_not_null(ps[i], "growth_factor 1.0: alloc %zu failed: %s", i,
                           mpool_strerror(mpool_last_error()));
    }
    void *big = mpool_alloc(pool, 900 * KiB);
    cr_assert_not_null(big, "growth_factor 1.0: large alloc failed");
    cr_assert_geq(mpool_get_usage(pool).total, (size_t)N * 100 + 900 * KiB);
    cr_assert_eq(mpool_check(pool), 0);
    for (size_t i = 0; i < N; i++)
        mpool_free(pool, ps[i]);
    mpool_free(pool, big);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

Test(pool, max_size_counts_huge_blocks)
{
    mpool_config_t c = mpool_config_default();
    c.initial_size = MiB;
    c.max_size = 12 * MiB;
    mpool_t *pool = create_or_die(&c);
    enum { N = 16 };
    void *ps[N];
    int n = 0;
    while (n < N) {
        ps[n] = mpool_alloc(pool, 3 * MiB);
        mpool_usage_t u = mpool_get_usage(pool);
        cr_assert_leq(u.total, c.max_size, "total %zu above max_size with %d huge blocks",
                      u.total, n);
        if (ps[n] == NULL) {
            cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL);
            break;
        }
        pattern_fill(ps[n], (uint64_t)n, 3 * MiB);
        n++;
    }
    cr_assert_lt(n, N, "12 MiB pool took %d blocks of 3 MiB", n);
    cr_assert_geq(n, 2, "12 MiB pool (1 MiB initial) took only %d blocks of 3 MiB", n);
    mpool_free(pool, ps[0]);
    void *again = mpool_alloc(pool, 3 * MiB);
    cr_assert_not_null(again, "freeing a huge block did not make room for another: %s",
                       mpool_strerror(mpool_last_error()));
    ps[0] = again;
    pattern_fill(ps[0], 0, 3 * MiB);
    for (int i = 0; i < n; i++) {
        cr_assert(pattern_ok(ps[i], (uint64_t)i, 3 * MiB));
        mpool_free(pool, ps[i]);
    }
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

Test(pool, reset_unmaps_huge_blocks)
{
    mpool_t *pool = create_or_die(NULL);
    void *small = mpool_alloc(pool, 100);
    cr_assert_not_null(small);
    size_t huge_bytes = 0;
    for (int i = 0; i < 5; i++) {
        void *h = mpool_alloc(pool, 4 * MiB);
        cr_assert_not_null(h);
        huge_bytes += mpool_usable_size(pool, h);
    }
    mpool_usage_t before = mpool_get_usage(pool);
    mpool_reset(pool);
    mpool_usage_t after = mpool_get_usage(pool);
    cr_assert_eq(after.used, 0);
    cr_assert_leq(after.total, before.total - huge_bytes,
                  "reset kept huge blocks: total %zu before, %zu after, %zu in huge blocks",
                  before.total, after.total, huge_bytes);
    cr_assert_not(mpool_owns(pool, small));
    mpool_destroy(pool);
}
