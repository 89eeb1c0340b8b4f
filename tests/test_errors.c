/*
 * test_errors.c - bad input gets a clear error and loses nothing.
 *
 * Every failure must return NULL / false / 0, set mpool_last_error() and errno
 * (ENOMEM for out of memory, pool full and count*size overflow; EINVAL
 * otherwise) and leave every live block untouched.  The error strings, the
 * per-thread last error and the on_error policies are in test_policy.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpool.h>

#include "testutil.h"


static void setup(void)
{
    pattern_init();
}

TestSuite(errors, .init = setup);

#define assert_failed_with(err, errno_val, what)                                                \
    do {                                                                                        \
        int e_ = errno;                                                                         \
        mpool_error_t got_ = mpool_last_error();                                                \
        cr_assert_eq(got_, (err), "%s: last_error %d (%s), expected %d (%s)", (what), (int)got_, \
                     mpool_strerror(got_), (int)(err), mpool_strerror(err));                    \
        cr_assert_eq(e_, (errno_val), "%s: errno %d (%s), expected %d (%s)", (what), e_,        \
                     strerror(e_), (int)(errno_val), strerror(errno_val));                      \
    } while (0)

/* A set of live blocks of every kind, filled with patterns, to prove that a
 * failed call changed nothing. */
#define N_WITNESS 7
typedef struct witness {
    mpool_t *pool;
    void *p[N_WITNESS];
    size_t size[N_WITNESS];
} witness_t;

static void witness_make(witness_t *w, mpool_t *pool)
{
    static const size_t sizes[N_WITNESS] = {0, 1, 64, 1000, 20000, 200 * KiB, 3 * MiB};
    w->pool = pool;
    for (int i = 0; i < N_WITNESS; i++) {
        w->size[i] = sizes[i];
        w->p[i] = mpool_alloc(pool, sizes[i]);
        cr_assert_not_null(w->p[i], "witness alloc(%zu)", sizes[i]);
        pattern_fill(w->p[i], 1000 + (uint64_t)i, sizes[i]);
    }
}

static void witness_check(const witness_t *w, const char *what)
{
    for (int i = 0; i < N_WITNESS; i++) {
        cr_assert(mpool_owns(w->pool, w->p[i]), "%s: witness block %d no longer live", what, i);
        cr_assert_geq(mpool_usable_size(w->pool, w->p[i]), w->size[i]);
        cr_assert(pattern_ok(w->p[i], 1000 + (uint64_t)i, w->size[i]),
                  "%s: witness block %d (size %zu) changed", what, i, w->size[i]);
    }
    cr_assert_eq(mpool_check(w->pool), 0, "%s: mpool_check found problems", what);
}

/* A failed call must not change what the pool counts as used; calls that fail
 * on their arguments (not on memory) must not change the pool's size either. */
static void assert_usage_same(const mpool_t *pool, mpool_usage_t before, bool total_too,
                              const char *what)
{
    mpool_usage_t u = mpool_get_usage(pool);
    cr_assert_eq(u.used, before.used, "%s: used changed from %zu to %zu", what, before.used,
                 u.used);
    if (total_too)
        cr_assert_eq(u.total, before.total, "%s: total changed from %zu to %zu", what,
                     before.total, u.total);
}

static void witness_free(witness_t *w)
{
    for (int i = 0; i < N_WITNESS; i++)
        cr_assert(mpool_safe_free(w->pool, w->p[i]), "witness block %d not freeable", i);
}

/* ---- count * size overflow ----------------------------------------------- */

Test(errors, calloc_overflow)
{
    mpool_t *pool = create_or_die(NULL);
    witness_t w;
    witness_make(&w, pool);
    static const size_t pairs[][2] = {
        {SIZE_MAX, 2},
        {2, SIZE_MAX / 2 + 1},
        {SIZE_MAX, SIZE_MAX},
        {(size_t)1 << 32, (size_t)1 << 32},
        {SIZE_MAX / 3 + 1, 3},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        mpool_usage_t u0 = mpool_get_usage(pool);
        prime_error(MPOOL_ERR_INVALID_ARGUMENT);
        void *p = mpool_calloc(pool, pairs[i][0], pairs[i][1]);
        cr_assert_null(p, "calloc(%zu, %zu) must fail", pairs[i][0], pairs[i][1]);
        assert_failed_with(MPOOL_ERR_INVALID_ARGUMENT, ENOMEM, "calloc overflow");
        assert_usage_same(pool, u0, true, "calloc overflow");
        witness_check(&w, "calloc overflow");
    }
    prime_error(MPOOL_ERR_INVALID_ARGUMENT);
    cr_assert_null(mpool_calloc(NULL, SIZE_MAX, 16));
    assert_failed_with(MPOOL_ERR_INVALID_ARGUMENT, ENOMEM, "calloc overflow (NULL pool)");
    witness_free(&w);
    mpool_destroy(pool);
}

/* ---- sizes no system can serve ------------------------------------------- */

static const size_t impossible_sizes[] = {
    SIZE_MAX,     SIZE_MAX - 1,     SIZE_MAX - 15,     SIZE_MAX - 4095, SIZE_MAX - MiB,
    SIZE_MAX / 2, SIZE_MAX / 2 + 1, (size_t)1 << 62,   (size_t)1 << 56,
};
#define N_IMPOSSIBLE (sizeof impossible_sizes / sizeof impossible_sizes[0])

Test(errors, alloc_impossible_size)
{
    mpool_t *pool = create_or_die(NULL);
    witness_t w;
    witness_make(&w, pool);
    for (size_t i = 0; i < N_IMPOSSIBLE; i++) {
        size_t size = impossible_sizes[i];
        mpool_usage_t u0 = mpool_get_usage(pool);
        prime_error(MPOOL_ERR_OUT_OF_MEMORY);
        cr_assert_null(mpool_alloc(pool, size), "alloc(%zu) must fail", size);
        assert_failed_with(MPOOL_ERR_OUT_OF_MEMORY, ENOMEM, "alloc(huge size)");
        assert_usage_same(pool, u0, false, "alloc(huge size)");
        witness_check(&w, "alloc(huge size)");

        prime_error(MPOOL_ERR_OUT_OF_MEMORY);
        cr_assert_null(mpool_alloc(NULL, size), "alloc(NULL, %zu) must fail", size);
        assert_failed_with(MPOOL_ERR_OUT_OF_MEMORY, ENOMEM, "alloc(NULL pool, huge size)");
    }
    /* still usable */
    void *p = mpool_alloc(pool, 100);
    cr_assert_not_null(p);
    mpool_free(pool, p);
    witness_free(&w);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

Test(errors, alloc_aligned_impossible_size)
{
    mpool_t *pool = create_or_die(NULL);
    witness_t w;
    witness_make(&w, pool);
    static const size_t aligns[] = {1, 16, 64, 4096, 65536, MiB};
    mpool_usage_t u0 = mpool_get_usage(pool);
    for (size_t i = 0; i < N_IMPOSSIBLE; i++) {
        for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
            size_t size = impossible_sizes[i];
            prime_error(MPOOL_ERR_OUT_OF_MEMORY);
            cr_assert_null(mpool_alloc_aligned(pool, size, aligns[a]),
                           "alloc_aligned(%zu, %zu) must fail", size, aligns[a]);
            assert_failed_with(MPOOL_ERR_OUT_OF_MEMORY, ENOMEM, "alloc_aligned(huge size)");
        }
    }
    assert_usage_same(pool, u0, false, "alloc_aligned(huge size)");
    witness_check(&w, "alloc_aligned(huge size)");
    witness_free(&w);
    mpool_destroy(pool);
}

Test(errors, calloc_impossible_size)
{
    mpool_t *pool = create_or_die(NULL);
    witness_t w;
    witness_make(&w, pool);
    mpool_usage_t u0 = mpool_get_usage(pool);
    for (size_t i = 0; i < N_IMPOSSIBLE; i++) {
        size_t size = impossible_sizes[i];
        prime_error(MPOOL_ERR_OUT_OF_MEMORY);
        cr_assert_null(mpool_calloc(pool, 1, size), "calloc(1, %zu) must fail", size);
        assert_failed_with(MPOOL_ERR_OUT_OF_MEMORY, ENOMEM, "calloc(1, huge size)");
        prime_error(MPOOL_ERR_OUT_OF_MEMORY);
        cr_assert_null(mpool_calloc(pool, size, 1), "calloc(%zu, 1) must fail", size);
        assert_failed_with(MPOOL_ERR_OUT_OF_MEMORY, ENOMEM, "calloc(huge size, 1)");
    }
    assert_usage_same(pool, u0, false, "calloc(huge size)");
    witness_check(&w, "calloc(huge size)");
    witness_free(&w);
    mpool_destroy(pool);
}

Test(errors, realloc_impossible_size_keeps_old_block)
{
    mpool_t *pool = create_or_die(NULL);
    witness_t w;
    witness_make(&w, pool);
    static const size_t old_sizes[] = {1, 100, 5000, 100 * KiB, 2 * MiB};
    for (size_t o = 0; o < sizeof old_sizes / sizeof old_sizes[0]; o++) {
        size_t old = old_sizes[o];
        void *p = mpool_alloc(pool, old);
        cr_assert_not_null(p);
        pattern_fill(p, 77 + o, old);
        size_t us = mpool_usable_size(pool, p);
        size_t used = mpool_get_usage(pool).used;
        for (size_t i = 0; i < N_IMPOSSIBLE; i++) {
            size_t size = impossible_sizes[i];
            prime_error(MPOOL_ERR_OUT_OF_MEMORY);
            cr_assert_null(mpool_realloc(pool, p, size), "realloc(%zu -> %zu) must fail", old,
                           size);
            assert_failed_with(MPOOL_ERR_OUT_OF_MEMORY, ENOMEM, "realloc(huge size)");
            cr_assert(mpool_owns(pool, p), "failed realloc(%zu -> %zu) freed the old block", old,
                      size);
            cr_assert_eq(mpool_usable_size(pool, p), us);
            cr_assert(pattern_ok(p, 77 + o, old),
                      "failed realloc(%zu -> %zu) changed the old block", old, size);
            cr_assert_eq(mpool_get_usage(pool).used, used);
            prime_error(MPOOL_ERR_OUT_OF_MEMORY);
            cr_assert_null(mpool_realloc(NULL, p, size));
            assert_failed_with(MPOOL_ERR_OUT_OF_MEMORY, ENOMEM, "realloc(NULL pool, huge size)");
            cr_assert(pattern_ok(p, 77 + o, old));
        }
        cr_assert_eq(mpool_check(pool), 0);
        /* the old block still grows normally and is freeable */
        void *q = mpool_realloc(pool, p, old * 2 + 10);
        cr_assert_not_null(q);
        cr_assert(pattern_ok(q, 77 + o, old));
        cr_assert(mpool_safe_free(pool, q), "block not freeable after a failed realloc");
    }
    witness_check(&w, "realloc(huge size)");
    witness_free(&w);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

/* ---- bad alignment ------------------------------------------------------- */

Test(errors, bad_alignment)
{
    mpool_t *pool = create_or_die(NULL);
    witness_t w;
    witness_make(&w, pool);
    static const size_t aligns[] = {0, 3, 24, 48, 100, 4097, SIZE_MAX, ((size_t)1 << 20) + 1};
    static const size_t sizes[] = {0, 1, 100, 5000, 200 * KiB, 3 * MiB};
    mpool_usage_t u0 = mpool_get_usage(pool);
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            prime_error(MPOOL_ERR_INVALID_ALIGNMENT);
            cr_assert_null(mpool_alloc_aligned(pool, sizes[s], aligns[a]),
                           "alloc_aligned(%zu, %zu) must fail", sizes[s], aligns[a]);
            assert_failed_with(MPOOL_ERR_INVALID_ALIGNMENT, EINVAL, "bad alignment");
        }
        prime_error(MPOOL_ERR_INVALID_ALIGNMENT);
        cr_assert_null(mpool_alloc_aligned(NULL, 10, aligns[a]));
        assert_failed_with(MPOOL_ERR_INVALID_ALIGNMENT, EINVAL, "bad alignment (NULL pool)");
    }
    assert_usage_same(pool, u0, true, "bad alignment");
    witness_check(&w, "bad alignment");
    witness_free(&w);
    mpool_destroy(pool);
}

/* ---- max_size ------------------------------------------------------------ */

Test(errors, pool_full_changes_nothing_and_pool_stays_usable)
{
    mpool_config_t c = mpool_config_default();
    c.initial_size = MiB;
    c.max_size = 4 * MiB;
    mpool_t *pool = create_or_die(&c);

    /* a request that can never fit fails at once, and nothing else changes */
    void *small = mpool_alloc(pool, 32);
    cr_assert_not_null(small);
    pattern_fill(small, 5, 32);
    prime_error(MPOOL_ERR_POOL_FULL);
    cr_assert_null(mpool_alloc(pool, 8 * MiB), "alloc(8 MiB) in a 4 MiB pool must fail");
    assert_failed_with(MPOOL_ERR_POOL_FULL, ENOMEM, "alloc past max_size");
    prime_error(MPOOL_ERR_POOL_FULL);
    cr_assert_null(mpool_alloc_aligned(pool, 5 * MiB, 4096));
    assert_failed_with(MPOOL_ERR_POOL_FULL, ENOMEM, "alloc_aligned past max_size");
    prime_error(MPOOL_ERR_POOL_FULL);
    cr_assert_null(mpool_calloc(pool, 5, MiB));
    assert_failed_with(MPOOL_ERR_POOL_FULL, ENOMEM, "calloc past max_size");
    prime_error(MPOOL_ERR_POOL_FULL);
    cr_assert_null(mpool_realloc(pool, small, 6 * MiB));
    assert_failed_with(MPOOL_ERR_POOL_FULL, ENOMEM, "realloc past max_size");
    cr_assert(mpool_owns(pool, small), "failed realloc freed the block");
    cr_assert(pattern_ok(small, 5, 32), "failed realloc changed the block");
    void *p = mpool_alloc(pool, 1000);
    cr_assert_not_null(p, "pool unusable after POOL_FULL: %s",
                       mpool_strerror(mpool_last_error()));
    mpool_free(pool, p);
    cr_assert(mpool_safe_free(pool, small));
    cr_assert_eq(mpool_get_usage(pool).used, 0);

    /* fill the pool with patterned blocks until it refuses */
    enum { N = 50000 };
    static void *ps[N]; /* static: nothing leaks when an assertion stops the test */
    static size_t sz[N];
    size_t n = 0;
    bool full = false;
    for (size_t i = 0; i < N; i++) {
        size_t size = (i % 10 == 9) ? 40 * KiB : 1000;
        void *q = mpool_alloc(pool, size);
        cr_assert_leq(mpool_get_usage(pool).total, c.max_size);
        if (q == NULL) {
            cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL, "filling: got %s",
                         mpool_strerror(mpool_last_error()));
            if (size == 1000) {
                full = true;
                break;
            }
            continue;
        }
        pattern_fill(q, n, size);
        ps[n] = q;
        sz[n] = size;
        n++;
    }
    cr_assert(full, "a 4 MiB pool took %zu blocks without filling up", n);
    cr_assert_gt(n, 50);
    mpool_usage_t at_full = mpool_get_usage(pool);
    cr_assert_eq(mpool_check(pool), 0);

    /* more failures while full: every kind of call, nothing changes */
    for (int k = 0; k < 20; k++) {
        prime_error(MPOOL_ERR_POOL_FULL);
        cr_assert_null(mpool_alloc(pool, 1000));
        assert_failed_with(MPOOL_ERR_POOL_FULL, ENOMEM, "alloc in a full pool");
        prime_error(MPOOL_ERR_POOL_FULL);
        cr_assert_null(mpool_calloc(pool, 10, 100));
        assert_failed_with(MPOOL_ERR_POOL_FULL, ENOMEM, "calloc in a full pool");
        prime_error(MPOOL_ERR_POOL_FULL);
        cr_assert_null(mpool_alloc(pool, 2 * MiB));
        assert_failed_with(MPOOL_ERR_POOL_FULL, ENOMEM, "alloc(2 MiB) in a full pool");
        prime_error(MPOOL_ERR_POOL_FULL);
        cr_assert_null(mpool_realloc(pool, ps[k], 3 * MiB));
        assert_failed_with(MPOOL_ERR_POOL_FULL, ENOMEM, "realloc in a full pool");
    }
    mpool_usage_t u = mpool_get_usage(pool);
    cr_assert_eq(u.used, at_full.used);
    cr_assert_eq(u.total, at_full.total);
    cr_assert_eq(mpool_check(pool), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert(pattern_ok(ps[i], i, sz[i]), "block %zu changed while the pool was full", i);

    /* free a few 1000-byte blocks: the same requests fit again */
    size_t freed = 0;
    for (size_t i = 0; i < n && freed < 10; i++) {
        if (sz[i] == 1000) {
            mpool_free(pool, ps[i]);
            ps[i] = NULL;
            freed++;
        }
    }
    cr_assert_eq(freed, 10);
    for (size_t i = 0; i < n; i++) {
        if (ps[i] != NULL)
            continue;
        ps[i] = mpool_alloc(pool, 1000);
        cr_assert_not_null(ps[i], "a request that fits failed after POOL_FULL: %s",
                           mpool_strerror(mpool_last_error()));
        pattern_fill(ps[i], i, 1000);
    }
    for (size_t i = 0; i < n; i++) {
        cr_assert(pattern_ok(ps[i], i, sz[i]), "block %zu corrupted", i);
        mpool_free(pool, ps[i]);
    }
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* ---- invalid pointers to mpool_safe_free --------------------------------- */

static unsigned char static_array[4096];

static void expect_safe_free_rejects(mpool_t *pool, const witness_t *w, void *ptr,
                                     const char *what)
{
    mpool_usage_t u0 = mpool_get_usage(w->pool);
    prime_error(MPOOL_ERR_INVALID_POINTER);
    cr_assert_not(mpool_safe_free(pool, ptr), "safe_free(%s) returned true", what);
    assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, what);
    cr_assert_not(mpool_owns(pool, ptr), "owns(%s) true", what);
    cr_assert_eq(mpool_usable_size(pool, ptr), 0, "usable_size(%s) not 0", what);
    cr_assert_not(mpool_owns(NULL, ptr), "owns(NULL, %s) true", what);
    cr_assert_eq(mpool_usable_size(NULL, ptr), 0, "usable_size(NULL, %s) not 0", what);
    witness_check(w, what);
    /* the same through the NULL pool */
    prime_error(MPOOL_ERR_INVALID_POINTER);
    cr_assert_not(mpool_safe_free(NULL, ptr), "safe_free(NULL, %s) returned true", what);
    assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, what);
    witness_check(w, what);
    assert_usage_same(w->pool, u0, true, what);
}

Test(errors, safe_free_foreign_pointers)
{
    mpool_t *pool = create_or_die(NULL);
    witness_t w;
    witness_make(&w, pool);
    int on_stack[16];
    void *from_malloc = malloc(64);
    void *big_malloc = malloc(4 * MiB);
    cr_assert(from_malloc && big_malloc);
    expect_safe_free_rejects(pool, &w, on_stack, "stack address");
    expect_safe_free_rejects(pool, &w, &on_stack[4], "stack address + 16");
    expect_safe_free_rejects(pool, &w, from_malloc, "malloc'd pointer");
    expect_safe_free_rejects(pool, &w, big_malloc, "large malloc'd pointer");
    expect_safe_free_rejects(pool, &w, static_array, "static array");
    expect_safe_free_rejects(pool, &w, static_array + 64, "pointer into a static array");
    expect_safe_free_rejects(pool, &w, (void *)(uintptr_t)0x1000, "low address");
    expect_safe_free_rejects(pool, &w, (void *)(uintptr_t)16, "tiny address");
    free(from_malloc);
    free(big_malloc);
    cr_assert_not(mpool_safe_free(pool, NULL), "safe_free(NULL) must return false");
    witness_check(&w, "safe_free(NULL)");
    witness_free(&w);
    mpool_destroy(pool);
}

Test(errors, safe_free_interior_pointers)
{
    mpool_t *pool = create_or_die(NULL);
    witness_t w;
    witness_make(&w, pool);
    unsigned char *small = mpool_alloc(pool, 64);
    unsigned char *large = mpool_alloc(pool, 300 * KiB);
    unsigned char *huge = mpool_alloc(pool, 5 * MiB);
    cr_assert(small && large && huge);
    pattern_fill(small, 1, 64);
    pattern_fill(large, 2, 300 * KiB);
    pattern_fill(huge, 3, 5 * MiB);
    expect_safe_free_rejects(pool, &w, small + 1, "p+1 of a 64-byte block");
    expect_safe_free_rejects(pool, &w, small + 16, "p+16 of a 64-byte block");
    expect_safe_free_rejects(pool, &w, small + 32, "p+32 of a 64-byte block");
    expect_safe_free_rejects(pool, &w, large + 8, "p+8 of a large block");
    expect_safe_free_rejects(pool, &w, large + 4096, "p+4096 of a large block");
    expect_safe_free_rejects(pool, &w, large + 150 * KiB, "middle of a large block");
    expect_safe_free_rejects(pool, &w, huge + 16, "p+16 of a huge block");
    expect_safe_free_rejects(pool, &w, huge + 4096, "p+4096 of a huge block");
    expect_safe_free_rejects(pool, &w, huge + 2 * MiB, "middle of a huge block");
    cr_assert(pattern_ok(small, 1, 64));
    cr_assert(pattern_ok(large, 2, 300 * KiB));
    cr_assert(pattern_ok(huge, 3, 5 * MiB));
    cr_assert(mpool_safe_free(pool, small));
    cr_assert(mpool_safe_free(pool, large));
    cr_assert(mpool_safe_free(pool, huge));
    witness_check(&w, "after freeing the interior-pointer blocks");
    witness_free(&w);
    mpool_destroy(pool);
}

Test(errors, safe_free_already_freed)
{
    mpool_t *pool = create_or_die(NULL);
    witness_t w;
    witness_make(&w, pool);
    static const size_t sizes[] = {0, 16, 64, 3000, 100 * KiB, 3 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = mpool_alloc(pool, sizes[i]);
        cr_assert_not_null(p);
        cr_assert(mpool_safe_free(pool, p));
        char what[64];
        snprintf(what, sizeof what, "already freed block of size %zu", sizes[i]);
        expect_safe_free_rejects(pool, &w, p, what);
    }
    witness_free(&w);
    mpool_destroy(pool);
}

Test(errors, safe_free_other_pools_block)
{
    mpool_t *a = create_or_die(NULL);
    mpool_t *b = create_or_die(NULL);
    witness_t wa, wb;
    witness_make(&wa, a);
    witness_make(&wb, b);
    for (int i = 0; i < N_WITNESS; i++) {
        prime_error(MPOOL_ERR_INVALID_POINTER);
        cr_assert_not(mpool_safe_free(a, wb.p[i]), "pool A freed block %d of pool B", i);
        assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, "safe_free(other pool's block)");
        prime_error(MPOOL_ERR_INVALID_POINTER);
        cr_assert_not(mpool_safe_free(mpool_default(), wa.p[i]),
                      "default pool freed block %d of pool A", i);
        assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, "safe_free(default, A's block)");
    }
    witness_check(&wa, "other pool's block");
    witness_check(&wb, "other pool's block");
    witness_free(&wa);
    witness_free(&wb);
    mpool_destroy(a);
    mpool_destroy(b);
}

/* ---- invalid pointers to mpool_free -------------------------------------- */

Test(errors, free_foreign_malloc_pointer_is_caught)
{
    mpool_t *pool = create_or_die(NULL);
    witness_t w;
    witness_make(&w, pool);
    void *m = malloc(100);
    cr_assert_not_null(m);
    memset(m, 0x3C, 100);
    mpool_usage_t u0 = mpool_get_usage(pool);
    prime_error(MPOOL_ERR_INVALID_POINTER);
    mpool_free(pool, m);
    assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, "free(malloc'd pointer)");
    prime_error(MPOOL_ERR_INVALID_POINTER);
    mpool_free(NULL, m);
    assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, "free(NULL pool, malloc'd pointer)");
    unsigned char *mb = m;
    for (int i = 0; i < 100; i++)
        cr_assert_eq(mb[i], 0x3C, "mpool_free wrote into foreign memory");
    free(m);
    assert_usage_same(pool, u0, true, "free(malloc'd pointer)");
    witness_check(&w, "free(malloc'd pointer)");
    witness_free(&w);
    mpool_destroy(pool);
}

Test(errors, free_foreign_stack_and_static_pointer_is_caught)
{
    mpool_t *pool = create_or_die(NULL);
    witness_t w;
    witness_make(&w, pool);
    long on_stack[8] = {0};
    mpool_usage_t u0 = mpool_get_usage(pool);
    prime_error(MPOOL_ERR_INVALID_POINTER);
    mpool_free(pool, on_stack);
    assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, "free(stack address)");
    prime_error(MPOOL_ERR_INVALID_POINTER);
    mpool_free(NULL, static_array + 128);
    assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, "free(NULL, static array)");
    for (int i = 0; i < 8; i++)
        cr_assert_eq(on_stack[i], 0);
    assert_usage_same(pool, u0, true, "free(stack/static)");
    witness_check(&w, "free(stack/static)");
    witness_free(&w);
    mpool_destroy(pool);
}

Test(errors, free_other_pools_block_is_caught)
{
    mpool_t *a = create_or_die(NULL);
    mpool_t *b = create_or_die(NULL);
    witness_t wb;
    witness_make(&wb, b);
    mpool_usage_t ua = mpool_get_usage(a), ub = mpool_get_usage(b);
    for (int i = 0; i < N_WITNESS; i++) {
        prime_error(MPOOL_ERR_INVALID_POINTER);
        mpool_free(a, wb.p[i]);
        assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, "free(A, block of B)");
    }
    assert_usage_same(a, ua, true, "free(A, block of B)");
    assert_usage_same(b, ub, true, "free(A, block of B)");
    witness_check(&wb, "free(A, block of B)");
    witness_free(&wb);
    mpool_destroy(a);
    mpool_destroy(b);
}

static void double_free_case(mpool_t *pool, size_t size)
{
    witness_t w;
    witness_make(&w, pool);
    void *p = mpool_alloc(pool, size);
    cr_assert_not_null(p);
    mpool_free(pool, p);
    size_t used = mpool_get_usage(pool).used;
    prime_error(MPOOL_ERR_INVALID_POINTER);
    mpool_free(pool, p);
    assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, "double free");
    cr_assert_eq(mpool_get_usage(pool).used, used, "double free of size %zu changed used", size);
    cr_assert_eq(mpool_check(pool), 0, "double free of size %zu corrupted the pool", size);
    /* the free list is not corrupted: two new blocks of the size are distinct */
    void *x = mpool_alloc(pool, size);
    void *y = mpool_alloc(pool, size);
    cr_assert_not_null(x);
    cr_assert_not_null(y);
    cr_assert_neq(x, y, "double free of size %zu handed out one block twice", size);
    pattern_fill(x, 1, size);
    pattern_fill(y, 2, size);
    cr_assert(pattern_ok(x, 1, size));
    cr_assert(pattern_ok(y, 2, size));
    witness_check(&w, "after double free");
    mpool_free(pool, x);
    mpool_free(pool, y);
    witness_free(&w);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
}

Test(errors, double_free_small_is_caught)
{
    mpool_t *pool = create_or_die(NULL);
    double_free_case(pool, 16);
    double_free_case(pool, 64);
    double_free_case(pool, 1000);
    mpool_destroy(pool);
}

Test(errors, double_free_large_is_caught)
{
    mpool_t *pool = create_or_die(NULL);
    double_free_case(pool, 100 * KiB);
    mpool_destroy(pool);
}

Test(errors, double_free_huge_is_caught)
{
    mpool_t *pool = create_or_die(NULL);
    double_free_case(pool, 3 * MiB);
    mpool_destroy(pool);
}

Test(errors, double_free_default_pool_is_caught)
{
    void *p = mpool_alloc(NULL, 48);
    cr_assert_not_null(p);
    mpool_free(NULL, p);
    prime_error(MPOOL_ERR_INVALID_POINTER);
    mpool_free(NULL, p);
    assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, "double free in the default pool");
    cr_assert_eq(mpool_check(mpool_default()), 0);
}

Test(errors, debug_pool_free_checks_exactly)
{
    mpool_config_t c = mpool_config_default();
    c.enable_debug = true;
    mpool_t *pool = create_or_die(&c);
    witness_t w;
    witness_make(&w, pool);
    unsigned char *p = mpool_alloc(pool, 64);
    cr_assert_not_null(p);
    pattern_fill(p, 9, 64);
    mpool_usage_t u0 = mpool_get_usage(pool);
    prime_error(MPOOL_ERR_INVALID_POINTER);
    mpool_free(pool, p + 16);
    assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, "debug free(interior pointer)");
    cr_assert(mpool_owns(pool, p), "debug free of an interior pointer freed the block");
    cr_assert(pattern_ok(p, 9, 64));
    witness_check(&w, "debug free(interior pointer)");
    assert_usage_same(pool, u0, true, "debug free(interior pointer)");
    mpool_free(pool, p);
    mpool_free(pool, p);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    witness_free(&w);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* ---- invalid pointers to mpool_realloc ----------------------------------- */

Test(errors, realloc_invalid_pointer)
{
    mpool_t *pool = create_or_die(NULL);
    mpool_t *other = create_or_die(NULL);
    witness_t w;
    witness_make(&w, pool);
    void *m = malloc(64);
    unsigned char *freed = mpool_alloc(pool, 64);
    unsigned char *live = mpool_alloc(pool, 64);
    void *theirs = mpool_alloc(other, 64);
    cr_assert(m && freed && live && theirs);
    pattern_fill(live, 4, 64);
    pattern_fill(theirs, 5, 64);
    mpool_free(pool, freed);
    mpool_usage_t u0 = mpool_get_usage(pool);
    struct {
        void *p;
        const char *what;
    } cases[] = {
        {m, "malloc'd pointer"},     {static_array, "static array"},
        {live + 16, "interior"},     {freed, "freed block"},
        {theirs, "other pool's block"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        static const size_t sizes[] = {1, 100, 200 * KiB, 3 * MiB};
        for (size_t s = 0; s < 4; s++) {
            prime_error(MPOOL_ERR_INVALID_POINTER);
            cr_assert_null(mpool_realloc(pool, cases[i].p, sizes[s]),
                           "realloc(%s, %zu) must fail", cases[i].what, sizes[s]);
            assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, cases[i].what);
            witness_check(&w, cases[i].what);
            assert_usage_same(pool, u0, true, cases[i].what);
        }
    }
    cr_assert(pattern_ok(live, 4, 64));
    cr_assert(pattern_ok(theirs, 5, 64));
    cr_assert(mpool_owns(other, theirs));
    cr_assert(mpool_safe_free(pool, live));
    cr_assert(mpool_safe_free(other, theirs));
    free(m);
    witness_free(&w);
    mpool_destroy(pool);
    mpool_destroy(other);
}

/* ---- bad configurations -------------------------------------------------- */

static void expect_bad_config(const mpool_config_t *c, const char *what)
{
    prime_error(MPOOL_ERR_INVALID_ARGUMENT);
    mpool_t *pool = mpool_create(c);
    cr_assert_null(pool, "mpool_create accepted a bad config: %s", what);
    assert_failed_with(MPOOL_ERR_INVALID_ARGUMENT, EINVAL, what);
}

Test(errors, bad_configs_are_rejected)
{
    mpool_config_t c;

    c = mpool_config_default();
    c.growth_factor = 0.5;
    expect_bad_config(&c, "growth_factor 0.5");
    c.growth_factor = 0.0;
    expect_bad_config(&c, "growth_factor 0");
    c.growth_factor = -2.0;
    expect_bad_config(&c, "growth_factor -2");
    c.growth_factor = 0.999;
    expect_bad_config(&c, "growth_factor 0.999");

    c = mpool_config_default();
    c.alignment = 0;
    expect_bad_config(&c, "alignment 0");
    c.alignment = 24;
    expect_bad_config(&c, "alignment 24");
    c.alignment = 3;
    expect_bad_config(&c, "alignment 3");
    c.alignment = 4095;
    expect_bad_config(&c, "alignment 4095");

    c = mpool_config_default();
    c.min_block_size = 4096;
    c.max_block_size = 1024;
    expect_bad_config(&c, "min_block_size > max_block_size");

    c = mpool_config_default();
    c.min_block_size = 0;
    expect_bad_config(&c, "min_block_size 0");
    c.min_block_size = 1;
    expect_bad_config(&c, "min_block_size 1");
    c.min_block_size = sizeof(void *) - 1;
    expect_bad_config(&c, "min_block_size < sizeof(void *)");

    c = mpool_config_default();
    c.initial_size = 2 * MiB;
    c.max_size = MiB;
    expect_bad_config(&c, "initial_size > max_size");

    c = mpool_config_default();
    c.on_error = (mpool_on_error_t)3;
    expect_bad_config(&c, "on_error 3");
    c.on_error = (mpool_on_error_t)99;
    expect_bad_config(&c, "on_error 99");
    c.on_error = (mpool_on_error_t)-1;
    expect_bad_config(&c, "on_error -1");
}

Test(errors, growth_factor_nan_is_rejected)
{
    mpool_config_t c = mpool_config_default();
    c.growth_factor = NAN;
    expect_bad_config(&c, "growth_factor NaN");
}

Test(errors, boundary_configs_are_accepted)
{
    mpool_config_t c = mpool_config_default();
    c.growth_factor = 1.0;
    mpool_t *p1 = mpool_create(&c);
    cr_assert_not_null(p1, "growth_factor 1.0 is valid (>= 1.0)");

    c = mpool_config_default();
    c.initial_size = MiB;
    c.max_size = MiB;
    mpool_t *p2 = mpool_create(&c);
    cr_assert_not_null(p2, "initial_size == max_size is valid");

    c = mpool_config_default();
    c.initial_size = 64 * MiB;
    c.max_size = 0;
    mpool_t *p3 = mpool_create(&c);
    cr_assert_not_null(p3, "initial_size above the default with max_size 0 (no cap) is valid");

    c = mpool_config_default();
    c.min_block_size = sizeof(void *);
    mpool_t *p4 = mpool_create(&c);
    cr_assert_not_null(p4, "min_block_size sizeof(void *) is valid");

    for (int i = 0; i < 4; i++) {
        mpool_t *p = (mpool_t *[]){p1, p2, p3, p4}[i];
        void *b = mpool_alloc(p, 100);
        cr_assert_not_null(b);
        cr_assert_eq(mpool_check(p), 0);
        mpool_free(p, b);
        mpool_destroy(p);
    }
}

/* A block that realloc moved away from is freed: using the old pointer is an
 * invalid pointer, and the new block is untouched. */
Test(errors, stale_pointer_after_moving_realloc)
{
    mpool_t *pool = create_or_die(NULL);
    static const size_t from[] = {64, 3000, 100 * KiB, 2 * MiB};
    static const size_t to[] = {100 * KiB, 2 * MiB, 3 * MiB, 8 * MiB};
    int moved = 0;
    for (int i = 0; i < 4; i++) {
        /* a neighbour right after the block keeps realloc from growing in place */
        unsigned char *p = mpool_alloc(pool, from[i]);
        void *fence = mpool_alloc(pool, from[i]);
        cr_assert(p && fence);
        pattern_fill(p, 50 + (uint64_t)i, from[i]);
        unsigned char *q = mpool_realloc(pool, p, to[i]);
        cr_assert_not_null(q);
        cr_assert(pattern_ok(q, 50 + (uint64_t)i, from[i]));
        if (q == p) { /* grew in place: nothing stale to test for this size */
            mpool_free(pool, q);
            mpool_free(pool, fence);
            continue;
        }
        moved++;
        pattern_fill(q, 60 + (uint64_t)i, to[i]);
        size_t used = mpool_get_usage(pool).used;
        prime_error(MPOOL_ERR_INVALID_POINTER);
        cr_assert_not(mpool_safe_free(pool, p), "safe_free of the pre-realloc pointer succeeded");
        assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, "safe_free(stale pointer)");
        prime_error(MPOOL_ERR_INVALID_POINTER);
        mpool_free(pool, p);
        assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, "free(stale pointer)");
        prime_error(MPOOL_ERR_INVALID_POINTER);
        cr_assert_null(mpool_realloc(pool, p, 10));
        assert_failed_with(MPOOL_ERR_INVALID_POINTER, EINVAL, "realloc(stale pointer)");
        cr_assert_eq(mpool_get_usage(pool).used, used);
        cr_assert(mpool_owns(pool, q));
        cr_assert(pattern_ok(q, 60 + (uint64_t)i, to[i]), "new block changed");
        cr_assert_eq(mpool_check(pool), 0);
        cr_assert(mpool_safe_free(pool, q));
        cr_assert(mpool_safe_free(pool, fence));
    }
    cr_assert_geq(moved, 2, "small -> large and small -> huge reallocs must move the block");
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

/* Freed memory may be poisoned in debug pools; calloc must still zero it. */
Test(errors, debug_pool_calloc_after_poison)
{
    mpool_config_t c = mpool_config_default();
    c.enable_debug = true;
    mpool_t *pool = create_or_die(&c);
    static const size_t sizes[] = {8, 100, 4000, 100 * KiB, 2 * MiB};
    for (int i = 0; i < 5; i++) {
        void *ps[8];
        for (int k = 0; k < 8; k++) {
            ps[k] = mpool_alloc(pool, sizes[i]);
            cr_assert_not_null(ps[k]);
            memset(ps[k], 0x77, sizes[i]);
        }
        for (int k = 0; k < 8; k++)
            mpool_free(pool, ps[k]);
        for (int k = 0; k < 8; k++) {
            ps[k] = mpool_calloc(pool, 1, sizes[i]);
            cr_assert_not_null(ps[k]);
            cr_assert(bytes_all_zero(ps[k], sizes[i]), "debug pool calloc(%zu) not zeroed",
                      sizes[i]);
        }
        for (int k = 0; k < 8; k++)
            cr_assert(mpool_safe_free(pool, ps[k]));
    }
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* Alignments beyond the guaranteed 1 MiB either work or fail cleanly with
 * OUT_OF_MEMORY; they never crash or hand out a misaligned block. */
Test(errors, very_large_alignments)
{
    mpool_t *pool = create_or_die(NULL);
    witness_t w;
    witness_make(&w, pool);
    int served = 0, refused = 0;
    for (int b = 21; b < 64; b++) {
        size_t a = (size_t)1 << b;
        static const size_t sizes[] = {0, 100, 5000, 3 * MiB};
        for (int s = 0; s < 4; s++) {
            mpool_usage_t u0 = mpool_get_usage(pool);
            prime_error(MPOOL_ERR_OUT_OF_MEMORY);
            void *p = mpool_alloc_aligned(pool, sizes[s], a);
            if (p == NULL) {
                assert_failed_with(MPOOL_ERR_OUT_OF_MEMORY, ENOMEM, "alloc_aligned(2^b)");
                assert_usage_same(pool, u0, false, "failed alloc_aligned(2^b)");
                refused++;
                continue;
            }
            served++;
            cr_assert(is_aligned(p, a), "alloc_aligned(%zu, 2^%d) = %p misaligned", sizes[s], b,
                      p);
            cr_assert_geq(mpool_usable_size(pool, p), sizes[s]);
            cr_assert(mpool_owns(pool, p));
            pattern_fill(p, 9, sizes[s]);
            cr_assert(pattern_ok(p, 9, sizes[s]));
            cr_assert(mpool_safe_free(pool, p));
        }
    }
    cr_assert_gt(refused, 0, "an alignment of 2^63 cannot be served");
    cr_assert_gt(served, 0, "2 MiB alignment not served");
    witness_check(&w, "very large alignments");
    witness_free(&w);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}
