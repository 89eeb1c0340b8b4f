/*
 * test_huge.c - huge blocks (huge.h, huge.c): requests above max_block_size
 * (or above what a page run holds, or with alignment above 2 MiB) mapped one
 * by one.  Alignment, ownership, usable size and usage figures, realloc
 * that keeps contents (grow, shrink, to and from other kinds of block),
 * large alignments, unmapping on free / reset / destroy, interior pointers,
 * and max_size.  mpool_check() must be 0 throughout.
 */
#define _DEFAULT_SOURCE /* msync */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <mpool.h>

#include "huge.h"
#include "pool.h"
#include "testutil.h"


static void setup(void)
{
    pattern_init();
}

TestSuite(huge, .init = setup);

static mpool_t *make_pool(bool thread_safe, size_t max_size)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.thread_safe = thread_safe;
    cfg.max_size = max_size;
    cfg.max_block_size = MiB; /* the sizes below: huge above 1 MiB */
    mpool_t *pool = mpool_create(&cfg);
    cr_assert_not_null(pool, "mpool_create failed: %s", mpool_strerror(mpool_last_error()));
    return pool;
}

static void reset_last_error(mpool_t *pool)
{
    cr_assert_null(mpool_alloc_aligned(pool, 8, 3));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ALIGNMENT);
}

/* True if the page holding p is mapped in this process. */
static bool page_mapped(const void *p)
{
    void *page = (void *)((uintptr_t)p & ~(uintptr_t)(PAGE_SIZE - 1));
    if (msync(page, PAGE_SIZE, MS_ASYNC) == 0)
        return true;
    return errno != ENOMEM;
}

static void check0(const mpool_t *pool, const char *when)
{
    size_t problems = mpool_check(pool);
    cr_assert_eq(problems, 0, "mpool_check found %zu problems %s", problems, when);
}

/* ---- basics ------------------------------------------------------------------ */

static void basic_one(mpool_t *pool, size_t size, uint64_t id)
{
    mpool_usage_t u0 = mpool_get_usage(pool);
    unsigned char *p = mpool_alloc(pool, size);
    cr_assert_not_null(p, "alloc(%zu) failed: %s", size, mpool_strerror(mpool_last_error()));
    cr_assert(is_aligned(p, REGION_SIZE), "huge block %p of %zu bytes not 4 MiB aligned",
              (void *)p, size);
    cr_assert_not_null(huge_of(p), "alloc(%zu) did not give a huge block", size);
    cr_assert(mpool_owns(pool, p));
    cr_assert(mpool_owns(NULL, p));
    size_t us = mpool_usable_size(pool, p);
    cr_assert_geq(us, size, "usable %zu < size %zu", us, size);
    cr_assert_eq(us % PAGE_SIZE, 0, "usable %zu not a whole number of pages", us);
    cr_assert_lt(us - size, PAGE_SIZE, "usable %zu wastes more than a page for %zu", us, size);
    mpool_usage_t u1 = mpool_get_usage(pool);
    cr_assert_eq(u1.used, u0.used + us, "used went from %zu to %zu for a block of %zu usable",
                 u0.used, u1.used, us);
    cr_assert_geq(u1.total, u0.total + us, "total went from %zu to %zu for %zu usable", u0.total,
                  u1.total, us);
    cr_assert_leq(u1.total, u0.total + us + 64 * KiB, "total grew by %zu for %zu usable",
                  u1.total - u0.total, us);
    size_t fill = us < PATTERN_MAX_BLOCK ? us : PATTERN_MAX_BLOCK;
    pattern_fill(p, id, fill);
    cr_assert(pattern_ok(p, id, fill));
    check0(pool, "with a live huge block");
    mpool_free(pool, p);
    mpool_usage_t u2 = mpool_get_usage(pool);
    cr_assert_leq(u2.total, u0.total + us + PAGE_SIZE, "the cache keeps at most the block's mapping");
    huge_cache_flush(pool); /* freed mappings wait in the cache (huge.h) */
    u2 = mpool_get_usage(pool);
    cr_assert_eq(u2.total, u0.total, "free of a huge block: total %zu, before %zu", u2.total,
                 u0.total);
    cr_assert_eq(u2.used, u0.used);
    cr_assert_not(mpool_owns(pool, p));
    cr_assert_eq(mpool_usable_size(pool, p), 0);
    cr_assert_not(page_mapped(p), "a freed huge block is still mapped");
    cr_assert_not(page_mapped(p + us - 1), "the end of a freed huge block is still mapped");
    check0(pool, "after freeing a huge block");
}

Test(huge, alloc_properties_and_free_unmaps)
{
    static const size_t sizes[] = {MiB + 1, 2 * MiB, 2 * MiB + 1, 3 * MiB + 5, 4 * MiB,
                                   4 * MiB + 1, 20 * MiB, 33 * MiB + 123};
    for (int ts = 0; ts < 2; ts++) {
        mpool_t *pool = make_pool(ts, 0);
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            basic_one(pool, sizes[i], i + 1);
        mpool_destroy(pool);
    }
}

Test(huge, many_live_huge_blocks)
{
    mpool_t *pool = make_pool(true, 0);
    enum { N = 12 };
    unsigned char *ps[N];
    size_t sz[N], total_usable = 0;
    mpool_usage_t u0 = mpool_get_usage(pool);
    for (int i = 0; i < N; i++) {
        sz[i] = MiB + 1 + (size_t)i * 777 * KiB;
        ps[i] = mpool_alloc(pool, sz[i]);
        cr_assert_not_null(ps[i]);
        cr_assert(is_aligned(ps[i], REGION_SIZE));
        total_usable += mpool_usable_size(pool, ps[i]);
        pattern_fill(ps[i], (uint64_t)i + 100, sz[i]);
        for (int j = 0; j < i; j++)
            cr_assert(ps[j] + sz[j] <= ps[i] || ps[i] + sz[i] <= ps[j], "huge blocks overlap");
    }
    mpool_usage_t u1 = mpool_get_usage(pool);
    cr_assert_eq(u1.used - u0.used, total_usable);
    cr_assert_geq(u1.total - u0.total, total_usable);
    check0(pool, "with many huge blocks");
    for (int i = 0; i < N; i += 2)
        mpool_free(pool, ps[i]);
    for (int i = 1; i < N; i += 2)
        cr_assert(pattern_ok(ps[i], (uint64_t)i + 100, sz[i]), "huge block %d corrupted", i);
    check0(pool, "after freeing half");
    for (int i = 1; i < N; i += 2)
        cr_assert(mpool_safe_free(pool, ps[i]));
    huge_cache_flush(pool);
    mpool_usage_t u2 = mpool_get_usage(pool);
    cr_assert_eq(u2.total, u0.total);
    cr_assert_eq(u2.used, u0.used);
    check0(pool, "after freeing all");
    mpool_destroy(pool);
}

/* ---- realloc -------------------------------------------------------------------- */

Test(huge, realloc_grow_and_shrink_keep_contents)
{
    mpool_t *pool = make_pool(true, 0);
    mpool_usage_t u0 = mpool_get_usage(pool);
    unsigned char *p = mpool_alloc(pool, 8 * MiB);
    cr_assert_not_null(p);
    pattern_fill(p, 1, 8 * MiB);
    unsigned char *q = mpool_realloc(pool, p, 64 * MiB);
    cr_assert_not_null(q, "realloc to 64 MiB failed: %s", mpool_strerror(mpool_last_error()));
    cr_assert(is_aligned(q, REGION_SIZE));
    cr_assert_not_null(huge_of(q));
    size_t bad = pattern_find_bad(q, 1, 8 * MiB);
    cr_assert_eq(bad, SIZE_MAX, "grow to 64 MiB lost byte %zu of the first 8 MiB", bad);
    cr_assert_geq(mpool_usable_size(pool, q), 64 * MiB);
    cr_assert(mpool_owns(pool, q));
    if (q != p)
        cr_assert_not(mpool_owns(pool, p), "the old address is still a block after a move");
    cr_assert_eq(mpool_get_usage(pool).used, u0.used + mpool_usable_size(pool, q));
    check0(pool, "after growing a huge block");
    /* The new part is usable. */
    memset(q + 8 * MiB, 0x3C, 56 * MiB);
    cr_assert(q[8 * MiB] == 0x3C && q[64 * MiB - 1] == 0x3C);
    cr_assert(pattern_ok(q, 1, 8 * MiB));
    unsigned char *r = mpool_realloc(pool, q, 5 * MiB);
    cr_assert_not_null(r, "realloc to 5 MiB failed");
    cr_assert(is_aligned(r, REGION_SIZE));
    bad = pattern_find_bad(r, 1, 5 * MiB);
    cr_assert_eq(bad, SIZE_MAX, "shrink to 5 MiB lost byte %zu", bad);
    size_t us = mpool_usable_size(pool, r);
    cr_assert_geq(us, 5 * MiB);
    cr_assert_lt(us, 5 * MiB + PAGE_SIZE, "shrink to 5 MiB kept %zu usable bytes", us);
    mpool_usage_t u1 = mpool_get_usage(pool);
    cr_assert_eq(u1.used, u0.used + us);
    cr_assert_leq(u1.total, u0.total + us + 64 * KiB, "shrinking did not give memory back");
    check0(pool, "after shrinking a huge block");
    mpool_free(pool, r);
    huge_cache_flush(pool);
    cr_assert_eq(mpool_get_usage(pool).total, u0.total);
    check0(pool, "after freeing");
    mpool_destroy(pool);
}

Test(huge, realloc_many_steps_keeps_contents)
{
    mpool_t *pool = make_pool(false, 0);
    size_t size = 2 * MiB + 100;
    unsigned char *p = mpool_alloc(pool, size);
    pattern_fill(p, 7, size);
    static const size_t steps[] = {3 * MiB,  9 * MiB + 1, 4 * MiB + 4097, 17 * MiB,
                                   12 * MiB, 30 * MiB,    2 * MiB + 1,    6 * MiB};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        size_t next = steps[i];
        unsigned char *q = mpool_realloc(pool, p, next);
        cr_assert_not_null(q, "realloc %zu -> %zu failed", size, next);
        size_t keep = size < next ? size : next;
        size_t bad = pattern_find_bad(q, 7, keep);
        cr_assert_eq(bad, SIZE_MAX, "realloc %zu -> %zu lost byte %zu", size, next, bad);
        cr_assert_geq(mpool_usable_size(pool, q), next);
        cr_assert(is_aligned(q, REGION_SIZE));
        if (next > size)
            pattern_fill_range(q, 7, size, next);
        p = q;
        size = next;
        check0(pool, "during realloc steps");
    }
    mpool_free(pool, p);
    check0(pool, "after realloc steps");
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

Test(huge, realloc_between_huge_and_smaller_blocks)
{
    mpool_t *pool = make_pool(true, 0);
    /* slab -> huge */
    unsigned char *p = mpool_alloc(pool, 1000);
    pattern_fill(p, 3, 1000);
    unsigned char *q = mpool_realloc(pool, p, 6 * MiB);
    cr_assert_not_null(q);
    cr_assert_not_null(huge_of(q), "a 6 MiB block is not huge");
    cr_assert(pattern_ok(q, 3, 1000));
    pattern_fill(q, 4, 6 * MiB);
    /* huge -> large (within max_block_size) */
    unsigned char *r = mpool_realloc(pool, q, 300 * KiB);
    cr_assert_not_null(r);
    cr_assert_null(huge_of(r), "a 300 KiB block stayed huge");
    cr_assert(pattern_ok(r, 4, 300 * KiB), "huge -> large lost contents");
    cr_assert_eq(mpool_get_usage(pool).used, mpool_usable_size(pool, r),
                 "the huge block was not released");
    /* large -> huge -> slab */
    unsigned char *s = mpool_realloc(pool, r, 3 * MiB);
    cr_assert_not_null(huge_of(s));
    cr_assert(pattern_ok(s, 4, 300 * KiB));
    unsigned char *t = mpool_realloc(pool, s, 100);
    cr_assert_not_null(t);
    cr_assert_null(huge_of(t));
    cr_assert(pattern_ok(t, 4, 100));
    cr_assert_eq(mpool_get_usage(pool).used, mpool_usable_size(pool, t));
    check0(pool, "after realloc across kinds");
    mpool_free(pool, t);
    mpool_destroy(pool);
}

/* ---- alignment ------------------------------------------------------------------- */

static void aligned_one(mpool_t *pool, size_t size, size_t align)
{
    mpool_usage_t u0 = mpool_get_usage(pool);
    unsigned char *p = mpool_alloc_aligned(pool, size, align);
    cr_assert_not_null(p, "alloc_aligned(%zu, %zu) failed: %s", size, align,
                       mpool_strerror(mpool_last_error()));
    cr_assert(is_aligned(p, align), "alloc_aligned(%zu, %zu) = %p", size, align, (void *)p);
    cr_assert_not_null(huge_of(p), "alloc_aligned(%zu, %zu) is not a huge block", size, align);
    cr_assert(mpool_owns(pool, p));
    size_t us = mpool_usable_size(pool, p);
    cr_assert_geq(us, size);
    cr_assert_eq(us % PAGE_SIZE, 0);
    size_t fill = size < PATTERN_MAX_BLOCK ? size : PATTERN_MAX_BLOCK;
    pattern_fill(p, align + size, fill);
    check0(pool, "with an aligned huge block");
    /* Growing keeps the block's alignment (mpool_check verifies it too). */
    unsigned char *q = mpool_realloc(pool, p, 3 * size + 5 * MiB);
    cr_assert_not_null(q);
    cr_assert(pattern_ok(q, align + size, fill));
    cr_assert(is_aligned(q, align), "growing a %zu-aligned block gave %p", align, (void *)q);
    check0(pool, "after growing an aligned huge block");
    mpool_free(pool, q);
    huge_cache_flush(pool);
    mpool_usage_t u1 = mpool_get_usage(pool);
    cr_assert_eq(u1.total, u0.total, "aligned huge block: total %zu after free, %zu before",
                 u1.total, u0.total);
    cr_assert_eq(u1.used, u0.used);
    check0(pool, "after freeing an aligned huge block");
}

Test(huge, large_alignments)
{
    mpool_t *pool = make_pool(true, 0);
    aligned_one(pool, 5 * MiB, 8 * MiB);
    aligned_one(pool, 100, 8 * MiB);
    aligned_one(pool, 100, 64 * MiB);
    aligned_one(pool, 70 * MiB, 64 * MiB);
    aligned_one(pool, 3 * MiB, 4 * MiB);
    aligned_one(pool, 2 * MiB + 1, 16 * MiB);
    /* Several aligned blocks live together. */
    void *a = mpool_alloc_aligned(pool, 9 * MiB, 8 * MiB);
    void *b = mpool_alloc_aligned(pool, 1, 64 * MiB);
    void *c = mpool_alloc_aligned(pool, 30 * MiB, 8 * MiB);
    cr_assert(a && b && c);
    cr_assert(is_aligned(a, 8 * MiB) && is_aligned(b, 64 * MiB) && is_aligned(c, 8 * MiB));
    check0(pool, "with several aligned huge blocks");
    mpool_free(pool, b);
    mpool_free(pool, a);
    mpool_free(pool, c);
    check0(pool, "after freeing aligned huge blocks");
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

/* ---- bad pointers ------------------------------------------------------------------ */

Test(huge, interior_pointers_rejected)
{
    mpool_t *pool = make_pool(true, 0);
    unsigned char *p = mpool_alloc(pool, 10 * MiB);
    cr_assert_not_null(p);
    pattern_fill(p, 9, 10 * MiB);
    mpool_usage_t u0 = mpool_get_usage(pool);
    unsigned char *bad[] = {p + PAGE_SIZE, p + 1, p + 16, p + 4 * MiB, p + 8 * MiB,
                            p - PAGE_SIZE};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        reset_last_error(pool);
        cr_assert_not(mpool_safe_free(pool, bad[i]), "safe_free(p %+td) accepted",
                      bad[i] - p);
        cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER, "safe_free(p %+td): error %d",
                     bad[i] - p, mpool_last_error());
        cr_assert_not(mpool_owns(pool, bad[i]), "owns(p %+td)", bad[i] - p);
        cr_assert_eq(mpool_usable_size(pool, bad[i]), 0);
        reset_last_error(pool);
        mpool_free(pool, bad[i]);
        cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER, "free(p %+td): error %d",
                     bad[i] - p, mpool_last_error());
        reset_last_error(pool);
        cr_assert_null(mpool_realloc(pool, bad[i], 20 * MiB));
        cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    }
    mpool_usage_t u1 = mpool_get_usage(pool);
    cr_assert_eq(u1.total, u0.total);
    cr_assert_eq(u1.used, u0.used);
    cr_assert(mpool_owns(pool, p), "rejected pointers freed the block");
    cr_assert(pattern_ok(p, 9, 10 * MiB));
    check0(pool, "after rejected pointers");
    /* Freed huge block: its start is no longer a block. */
    cr_assert(mpool_safe_free(pool, p));
    reset_last_error(pool);
    cr_assert_not(mpool_safe_free(pool, p), "double safe_free of a huge block accepted");
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    reset_last_error(pool);
    mpool_free(pool, p);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    check0(pool, "after a double free of a huge block");
    mpool_destroy(pool);
}

Test(huge, block_of_another_pool_rejected)
{
    mpool_t *a = make_pool(true, 0), *b = make_pool(true, 0);
    void *p = mpool_alloc(a, 5 * MiB);
    cr_assert_not_null(p);
    cr_assert_not(mpool_owns(b, p));
    reset_last_error(b);
    cr_assert_not(mpool_safe_free(b, p));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    cr_assert(mpool_owns(a, p));
    mpool_free(NULL, p); /* NULL: the owning pool */
    cr_assert_not(mpool_owns(a, p));
    check0(a, "after a NULL-pool free of a huge block");
    check0(b, "untouched pool");
    mpool_destroy(a);
    mpool_destroy(b);
}

/* ---- reset and destroy ---------------------------------------------------------------- */

Test(huge, reset_frees_huge_blocks)
{
    mpool_t *pool = make_pool(true, 0);
    mpool_usage_t u0 = mpool_get_usage(pool);
    unsigned char *ps[3] = {mpool_alloc(pool, 2 * MiB), mpool_alloc(pool, 9 * MiB),
                            mpool_alloc(pool, 17 * MiB)};
    void *small = mpool_alloc(pool, 64);
    cr_assert(ps[0] && ps[1] && ps[2] && small);
    for (int i = 0; i < 3; i++)
        ps[i][0] = 1;
    mpool_usage_t u1 = mpool_get_usage(pool);
    cr_assert_geq(u1.total, u0.total + 28 * MiB);
    mpool_reset(pool);
    mpool_usage_t u2 = mpool_get_usage(pool);
    cr_assert_eq(u2.used, 0);
    cr_assert_lt(u2.total, u1.total);
    cr_assert_eq(u2.total, u0.total, "reset left %zu bytes held, %zu before the huge blocks",
                 u2.total, u0.total);
    for (int i = 0; i < 3; i++) {
        cr_assert_not(mpool_owns(pool, ps[i]), "huge block %d survives reset", i);
        cr_assert_not(page_mapped(ps[i]), "huge block %d still mapped after reset", i);
    }
    check0(pool, "after reset");
    /* The pool is usable again. */
    void *p = mpool_alloc(pool, 12 * MiB);
    cr_assert_not_null(p);
    cr_assert(mpool_owns(pool, p));
    check0(pool, "after reuse");
    mpool_destroy(pool);
}

Test(huge, destroy_unmaps_huge_blocks)
{
    mpool_t *pool = make_pool(false, 0);
    unsigned char *ps[3] = {mpool_alloc(pool, 2 * MiB), mpool_alloc(pool, 9 * MiB),
                            mpool_alloc_aligned(pool, 5 * MiB, 16 * MiB)};
    for (int i = 0; i < 3; i++) {
        cr_assert_not_null(ps[i]);
        ps[i][0] = 1;
        cr_assert(page_mapped(ps[i]));
    }
    check0(pool, "before destroy");
    mpool_destroy(pool);
    for (int i = 0; i < 3; i++) {
        cr_assert_not(page_mapped(ps[i]), "huge block %d still mapped after destroy", i);
        cr_assert_not(mpool_owns(NULL, ps[i]), "huge block %d still owned after destroy", i);
    }
}

/* ---- max_size ------------------------------------------------------------------------- */

Test(huge, max_size_limits_huge_blocks)
{
    size_t max = 16 * MiB;
    mpool_t *pool = make_pool(true, max);
    mpool_usage_t u0 = mpool_get_usage(pool);
    cr_assert_leq(u0.total, max);
    reset_last_error(pool);
    errno = 0;
    cr_assert_null(mpool_alloc(pool, 32 * MiB), "a 32 MiB block under a 16 MiB cap");
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL, "error %d", mpool_last_error());
    cr_assert_eq(errno, ENOMEM);
    /* Refusing may give back unused memory (make_room), never take more. */
    cr_assert_leq(mpool_get_usage(pool).total, u0.total, "a refused block grew total");
    unsigned char *a = mpool_alloc(pool, 8 * MiB);
    cr_assert_not_null(a, "8 MiB under a 16 MiB cap: %s", mpool_strerror(mpool_last_error()));
    pattern_fill(a, 5, 8 * MiB);
    cr_assert_leq(mpool_get_usage(pool).total, max);
    /* A second 8 MiB block would pass the cap (regions and headers count too). */
    reset_last_error(pool);
    cr_assert_null(mpool_alloc(pool, 8 * MiB));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL);
    cr_assert_leq(mpool_get_usage(pool).total, max);
    /* Growing past the cap fails and leaves the block alone. */
    reset_last_error(pool);
    cr_assert_null(mpool_realloc(pool, a, 16 * MiB)); /* the block alone would pass the cap */
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL);
    cr_assert(mpool_owns(pool, a));
    cr_assert(pattern_ok(a, 5, 8 * MiB), "a failed realloc damaged the block");
    cr_assert_leq(mpool_get_usage(pool).total, max);
    check0(pool, "after refusals");
    /* What fits still fits. */
    void *b = mpool_alloc(pool, 4 * MiB);
    cr_assert_not_null(b, "4 MiB more under the cap: %s", mpool_strerror(mpool_last_error()));
    cr_assert_leq(mpool_get_usage(pool).total, max);
    void *small = mpool_alloc(pool, 100);
    cr_assert_not_null(small);
    mpool_free(pool, b);
    mpool_free(pool, a);
    /* Freed room serves again. */
    void *c = mpool_alloc(pool, 14 * MiB);
    cr_assert_not_null(c, "14 MiB after freeing: %s", mpool_strerror(mpool_last_error()));
    cr_assert_leq(mpool_get_usage(pool).total, max);
    check0(pool, "at the end");
    mpool_free(pool, c);
    mpool_free(pool, small);
    mpool_destroy(pool);
}

/* A freed huge block's mapping waits in the cache: the next request that
 * fits takes it back cut to its size (same address, old contents, calloc
 * clears them), pointers into a cached mapping are invalid, sized frees stay
 * exact, and trim, max_size pressure and age give the cache back. */
Test(huge, freed_mappings_are_reused)
{
    mpool_t *pool = create_or_die(NULL);
    size_t size = 6 * MiB;
    unsigned char *p = mpool_alloc(pool, size);
    cr_assert_not_null(p);
    memset(p, 0x5a, size);
    mpool_free(pool, p);
    cr_assert_not(mpool_owns(pool, p), "a cached mapping is a block");
    prime_error(MPOOL_ERR_INVALID_POINTER);
    cr_assert_not(mpool_safe_free(pool, p), "a cached mapping was freed again");
    check0(pool, "with a cached mapping");
    unsigned char *q = mpool_alloc(pool, 5 * MiB);
    cr_assert_eq(q, p, "the cached mapping was not reused");
    cr_assert_eq(mpool_usable_size(pool, q), 5 * MiB, "not cut to the size asked for");
    check0(pool, "after reuse");
    mpool_free(pool, q);
    unsigned char *z = mpool_calloc(pool, 1, 4 * MiB);
    cr_assert_eq(z, p);
    cr_assert(bytes_all_zero(z, 4 * MiB), "calloc of a reused mapping is not zeroed");
    mpool_free(pool, z);
    cr_assert_gt(huge_cache_flush(pool), 0);
    cr_assert_eq(huge_cache_flush(pool), 0, "the cache was not emptied");
    /* max_size: a request that meets the cap empties the cache first */
    mpool_config_t cfg = mpool_config_default();
    cfg.max_size = 24 * MiB;
    cfg.initial_size = 0;
    mpool_t *capped = create_or_die(&cfg);
    void *a = mpool_alloc(capped, 16 * MiB);
    cr_assert_not_null(a);
    mpool_free(capped, a);
    void *b = mpool_alloc(capped, 18 * MiB); /* the cached 16 MiB does not fit it, and both together pass the cap */
    cr_assert_not_null(b, "the cache kept the pool full: %s", mpool_strerror(mpool_last_error()));
    mpool_free(capped, b);
    cr_assert_gt(mpool_trim(capped), 0, "trim did not give the cache back");
    check0(capped, "after trim");
    mpool_destroy(capped);
    mpool_destroy(pool);
}
