/*
 * test_arena.c - arenas (mpool_arena_*): allocation, alignment, own blocks,
 * marks and rewinds, cleanups and children in their order, caps, the
 * parent pool's figures and report, misuse with its report, the debug
 * owner-thread check, and a randomized model test.
 *
 * The model test drives a tree of arenas with random operations and keeps,
 * for each arena, the sequence of things that took a place in it (each
 * allocation of at least one byte, cleanup, child and the record a rewind
 * leaves: "slots", each with a unique id).  A mark is the number of slots
 * and the id of the last one (or the reset epoch for an empty prefix): it is
 * live iff that prefix is still there, which is exactly the arena's rule
 * (src/arena.c, "Generations").  Every cleanup writes its id to a log that
 * the model predicts; every allocation holds a pattern checked after every
 * step (so overlaps and writes into live memory are found).
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpool.h>

#include "testutil.h"

static void setup(void)
{
    pattern_init();
}

TestSuite(arena, .init = setup);

#define assert_error(err, what)                                                                  \
    do {                                                                                        \
        mpool_error_t got_ = mpool_last_error();                                                \
        cr_assert_eq(got_, (err), "%s: last_error %d (%s), expected %d (%s)", (what), (int)got_, \
                     mpool_strerror(got_), (int)(err), mpool_strerror(err));                    \
    } while (0)

/* ---- A logger that keeps the last message -------------------------------- */

static char last_message[600];
static int messages;

static void keep_message(mpool_error_t err, const char *message, void *arg)
{
    (void)err;
    (void)arg;
    snprintf(last_message, sizeof last_message, "%s", message);
    messages++;
}

static mpool_t *logging_pool(bool debug)
{
    mpool_config_t c = mpool_config_default();
    c.on_error = MPOOL_ON_ERROR_LOG;
    c.logger = keep_message;
    c.enable_debug = debug;
    messages = 0;
    last_message[0] = 0;
    return create_or_die(&c);
}

static void assert_logged(const char *what)
{
    cr_assert(messages > 0, "nothing logged, expected \"%s\"", what);
    cr_assert_not_null(strstr(last_message, what), "\"%s\" not in \"%s\"", what, last_message);
}

static mpool_arena_t *arena_or_die(mpool_t *pool, size_t chunk, size_t max)
{
    mpool_arena_t *a = mpool_arena_create(pool, chunk, max);
    cr_assert_not_null(a, "mpool_arena_create: %s", mpool_strerror(mpool_last_error()));
    return a;
}

/* ---- Allocation ------------------------------------------------------------ */

Test(arena, allocations_are_aligned_distinct_and_counted)
{
    mpool_t *pool = create_or_die(NULL);
    mpool_arena_t *a = arena_or_die(pool, 0, 0);
    cr_assert_eq(mpool_arena_used(a), 0);
    cr_assert_eq(mpool_arena_held(a), 64 * KiB);
    char *prev = NULL;
    size_t used = 0;
    for (size_t size = 1; size <= 300; size++) {
        char *p = mpool_arena_alloc(a, size);
        cr_assert_not_null(p);
        cr_assert(is_aligned(p, 16), "%p not aligned to 16", (void *)p);
        cr_assert(!prev || p >= prev + ((size - 1 + 15) & ~(size_t)15), "overlap at size %zu", size);
        pattern_fill(p, size, size);
        prev = p;
        used += (size + 15) & ~(size_t)15;
        cr_assert_eq(mpool_arena_used(a), used, "used %zu, expected %zu", mpool_arena_used(a), used);
    }
    void *z = mpool_arena_alloc(a, 0);
    cr_assert_not_null(z, "size 0 gives a pointer");
    cr_assert_eq(mpool_arena_used(a), used, "size 0 uses nothing");
    mpool_arena_destroy(a);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* mpool.h inlines mpool_arena_alloc through a macro: the exported function
 * is still there under its name, through its address and in parentheses,
 * and the three ways share one arena's state (each sees the others' bytes
 * as used), over chunk boundaries and own blocks too. */
Test(arena, the_exported_function_and_the_inline_path_agree)
{
    void *(*through_address)(mpool_arena_t *, size_t) = mpool_arena_alloc;
    cr_assert_not_null(through_address);
    mpool_t *pool = create_or_die(NULL);
    mpool_arena_t *a = arena_or_die(pool, 4 * KiB, 0);
    size_t used = 0;
    char *prev = NULL;
    for (size_t i = 0; i < 3000; i++) {
        size_t size = 1 + (i * 37) % (i % 100 == 99 ? 3000 : 200); /* some above a quarter of a chunk */
        char *p = i % 3 == 0 ? mpool_arena_alloc(a, size)
                  : i % 3 == 1 ? (mpool_arena_alloc)(a, size)
                               : through_address(a, size);
        cr_assert_not_null(p, "allocation %zu of %zu bytes", i, size);
        cr_assert(is_aligned(p, 16));
        cr_assert_neq(p, prev);
        pattern_fill(p, i, size);
        used += (size + 15) & ~(size_t)15;
        cr_assert_eq(mpool_arena_used(a), used, "allocation %zu", i);
        prev = p;
    }
    char *c = mpool_arena_alloc(a, 32); /* a constant size: rounded at compile time */
    cr_assert(is_aligned(c, 16));
    cr_assert_eq(mpool_arena_used(a), used + 32);
    cr_assert_null(mpool_arena_alloc(NULL, 16), "a NULL arena takes the exported function's report");
    mpool_arena_destroy(a);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(arena, bad_sizes_are_refused)
{
    mpool_t *pool = create_or_die(NULL);
    prime_error(MPOOL_ERR_INVALID_ARGUMENT);
    cr_assert_null(mpool_arena_create(pool, 100, 0));
    assert_error(MPOOL_ERR_INVALID_ARGUMENT, "chunk_size 100");
    cr_assert_eq(errno, EINVAL);
    prime_error(MPOOL_ERR_INVALID_ARGUMENT);
    cr_assert_null(mpool_arena_create(pool, (size_t)2 << 30, 0));
    assert_error(MPOOL_ERR_INVALID_ARGUMENT, "chunk_size 2 GiB");
    prime_error(MPOOL_ERR_INVALID_ARGUMENT);
    cr_assert_null(mpool_arena_create(pool, 64 * KiB, 32 * KiB));
    assert_error(MPOOL_ERR_INVALID_ARGUMENT, "max_size below chunk_size");
    mpool_usage_t u = mpool_get_usage(pool);
    cr_assert_eq(u.used, 0, "nothing taken from the pool");
    mpool_destroy(pool);
}

Test(arena, default_pool_serves_a_null_parent)
{
    mpool_arena_t *a = arena_or_die(NULL, 4 * KiB, 0);
    void *p = mpool_arena_alloc(a, 100);
    cr_assert(mpool_owns(NULL, p) == false, "an arena allocation is not a pool block of its own");
    mpool_arena_destroy(a);
}

Test(arena, aligned_allocations)
{
    mpool_t *pool = create_or_die(NULL);
    mpool_arena_t *a = arena_or_die(pool, 16 * KiB, 0);
    for (size_t align = 1; align <= 64 * KiB; align <<= 1) {
        for (size_t size = 0; size < 200; size += 37) {
            char *p = mpool_arena_alloc_aligned(a, size, align);
            cr_assert_not_null(p, "align %zu size %zu: %s", align, size, mpool_strerror(mpool_last_error()));
            cr_assert(is_aligned(p, align < 16 ? 16 : align), "%p not aligned to %zu", (void *)p, align);
            pattern_fill(p, align * 1000 + size, size);
        }
    }
    prime_error(MPOOL_ERR_INVALID_ALIGNMENT);
    size_t used = mpool_arena_used(a);
    cr_assert_null(mpool_arena_alloc_aligned(a, 8, 3));
    assert_error(MPOOL_ERR_INVALID_ALIGNMENT, "alignment 3");
    cr_assert_null(mpool_arena_alloc_aligned(a, 8, 0));
    assert_error(MPOOL_ERR_INVALID_ALIGNMENT, "alignment 0");
    cr_assert_eq(mpool_arena_used(a), used);
    mpool_arena_destroy(a);
    mpool_destroy(pool);
}

Test(arena, a_pool_aligned_to_8_still_gives_16)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.alignment = 8;
    mpool_t *pool = create_or_die(&cfg);
    mpool_arena_t *a = arena_or_die(pool, 1000 * 8 + 8, 0);
    for (size_t size = 1; size < 40000; size = size * 3 + 1)
        cr_assert(is_aligned(mpool_arena_alloc(a, size), 16), "size %zu", size);
    mpool_arena_destroy(a);
    mpool_destroy(pool);
}

Test(arena, large_requests_get_their_own_blocks)
{
    mpool_t *pool = create_or_die(NULL);
    mpool_arena_t *a = arena_or_die(pool, 16 * KiB, 0);
    size_t held = mpool_arena_held(a);
    char *small = mpool_arena_alloc(a, 64);
    char *big = mpool_arena_alloc(a, 100 * KiB);
    cr_assert_not_null(big);
    cr_assert(mpool_owns(pool, big), "a large request is a block of the pool");
    cr_assert_eq(mpool_arena_held(a), held + 100 * KiB);
    cr_assert_eq(mpool_arena_used(a), 64 + 100 * KiB);
    char *after = mpool_arena_alloc(a, 64);
    cr_assert(after >= small + 64 && after <= small + 128, "the chunk goes on after an own block (and its record)");
    pattern_fill(big, 7, 100 * KiB);
    mpool_arena_reset(a);
    cr_assert(!mpool_owns(pool, big), "reset frees own blocks");
    cr_assert_eq(mpool_arena_held(a), held);
    cr_assert_eq(mpool_arena_used(a), 0);
    mpool_arena_destroy(a);
    cr_assert_eq(mpool_get_usage(pool).used, 0, "everything back to the pool");
    mpool_destroy(pool);
}

Test(arena, many_chunks_keep_their_contents)
{
    mpool_t *pool = create_or_die(NULL);
    mpool_arena_t *a = arena_or_die(pool, 4 * KiB, 0);
    enum { N = 20000 };
    static char *p[N];
    static size_t size[N];
    rng_t r;
    rng_seed(&r, 11);
    for (size_t i = 0; i < N; i++) {
        size[i] = (size_t)rng_logrange(&r, 1, 2000);
        p[i] = mpool_arena_alloc(a, size[i]);
        cr_assert_not_null(p[i]);
        pattern_fill(p[i], i, size[i]);
    }
    for (size_t i = 0; i < N; i++)
        cr_assert(pattern_ok(p[i], i, size[i]), "allocation %zu changed", i);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_arena_destroy(a);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

Test(arena, calloc_and_strdup)
{
    mpool_t *pool = create_or_die(NULL);
    mpool_arena_t *a = arena_or_die(pool, 0, 0);
    char *junk = mpool_arena_alloc(a, 4000);
    memset(junk, 0x5a, 4000);
    mpool_arena_mark_t m = mpool_arena_mark(a);
    (void)mpool_arena_alloc(a, 4000);
    cr_assert(mpool_arena_rewind(a, mpool_arena_mark(a)));
    cr_assert(mpool_arena_rewind(a, m));
    unsigned char *z = mpool_arena_calloc(a, 100, 40);
    cr_assert_not_null(z);
    cr_assert(bytes_all_zero(z, 4000));
    char *s = mpool_arena_strdup(a, "hello, arena");
    cr_assert_str_eq(s, "hello, arena");
    prime_error(MPOOL_ERR_INVALID_ARGUMENT);
    cr_assert_null(mpool_arena_calloc(a, SIZE_MAX / 2, 3));
    assert_error(MPOOL_ERR_INVALID_ARGUMENT, "calloc overflow");
    cr_assert_eq(errno, ENOMEM);
    prime_error(MPOOL_ERR_INVALID_ARGUMENT);
    cr_assert_null(mpool_arena_strdup(a, NULL));
    assert_error(MPOOL_ERR_INVALID_ARGUMENT, "strdup NULL");
    prime_error(MPOOL_ERR_OUT_OF_MEMORY);
    cr_assert_null(mpool_arena_alloc(a, SIZE_MAX - 3));
    assert_error(MPOOL_ERR_OUT_OF_MEMORY, "alloc SIZE_MAX - 3");
    mpool_arena_destroy(a);
    mpool_destroy(pool);
}

/* ---- Marks and rewinds ------------------------------------------------------ */

Test(arena, rewind_restores_the_arena)
{
    mpool_t *pool = create_or_die(NULL);
    mpool_arena_t *a = arena_or_die(pool, 4 * KiB, 0);
    char *keep = mpool_arena_alloc(a, 100);
    pattern_fill(keep, 1, 100);
    size_t used = mpool_arena_used(a);
    mpool_arena_mark_t m = mpool_arena_mark(a);
    char *first = mpool_arena_alloc(a, 50);
    for (int i = 0; i < 100; i++)
        (void)mpool_arena_alloc(a, 1000);        /* several chunks */
    (void)mpool_arena_alloc(a, 10 * KiB);        /* an own block */
    cr_assert(mpool_arena_held(a) > 8 * KiB);
    for (int round = 0; round < 5; round++) {
        cr_assert(mpool_arena_rewind(a, m), "round %d: %s", round, mpool_strerror(mpool_last_error()));
        cr_assert_eq(mpool_arena_used(a), used, "round %d: used %zu, expected %zu", round, mpool_arena_used(a), used);
        cr_assert(pattern_ok(keep, 1, 100));
        char *again = mpool_arena_alloc(a, 50);
        cr_assert(again >= first, "memory after the mark is reused");
        for (int i = 0; i < 30; i++)
            (void)mpool_arena_alloc(a, 1000);
    }
    cr_assert(mpool_arena_rewind(a, m));
    cr_assert(mpool_arena_rewind(a, m), "rewinding to where the arena is changes nothing");
    cr_assert_eq(mpool_arena_used(a), used);
    mpool_arena_destroy(a);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

Test(arena, nested_marks)
{
    mpool_t *pool = create_or_die(NULL);
    mpool_arena_t *a = arena_or_die(pool, 1 * KiB, 0);
    enum { DEPTH = 50 };
    mpool_arena_mark_t m[DEPTH];
    size_t used[DEPTH];
    for (int i = 0; i < DEPTH; i++) {
        m[i] = mpool_arena_mark(a);
        used[i] = mpool_arena_used(a);
        (void)mpool_arena_alloc(a, 16 + 8 * (size_t)i);
    }
    for (int i = DEPTH - 1; i >= 0; i -= 3) {
        cr_assert(mpool_arena_rewind(a, m[i]), "mark %d", i);
        cr_assert_eq(mpool_arena_used(a), used[i]);
        if (i + 1 < DEPTH) {
            prime_error(MPOOL_ERR_INVALID_ARGUMENT);
            cr_assert(!mpool_arena_rewind(a, m[i + 1]), "mark %d was rewound past", i + 1);
            assert_error(MPOOL_ERR_INVALID_ARGUMENT, "stale mark");
            cr_assert_eq(mpool_arena_used(a), used[i], "a refused rewind changes nothing");
        }
    }
    mpool_arena_destroy(a);
    mpool_destroy(pool);
}

Test(arena, stale_and_foreign_marks_are_refused)
{
    mpool_t *pool = logging_pool(false);
    mpool_arena_t *a = arena_or_die(pool, 4 * KiB, 0);
    mpool_arena_t *b = arena_or_die(pool, 4 * KiB, 0);
    (void)mpool_arena_alloc(a, 32);
    mpool_arena_mark_t early = mpool_arena_mark(a);
    (void)mpool_arena_alloc(a, 32);
    mpool_arena_mark_t late = mpool_arena_mark(a);
    (void)mpool_arena_alloc(b, 64);
    (void)mpool_arena_alloc(b, 64);
    mpool_arena_mark_t of_b = mpool_arena_mark(b);
    char *live = mpool_arena_alloc(a, 64);
    pattern_fill(live, 3, 64);
    size_t used = mpool_arena_used(a);

    /* Another arena's mark, even at a position a has. */
    prime_error(MPOOL_ERR_INVALID_ARGUMENT);
    cr_assert(!mpool_arena_rewind(a, of_b));
    assert_error(MPOOL_ERR_INVALID_ARGUMENT, "mark of another arena");
    cr_assert_eq(errno, EINVAL);
    assert_logged("not one of this arena's");
    cr_assert_eq(mpool_arena_used(a), used);
    cr_assert(pattern_ok(live, 3, 64));

    /* A mark that an earlier rewind went past, with the arena beyond it again. */
    cr_assert(mpool_arena_rewind(a, early));
    for (int i = 0; i < 10; i++)
        (void)mpool_arena_alloc(a, 64);
    used = mpool_arena_used(a);
    prime_error(MPOOL_ERR_INVALID_ARGUMENT);
    cr_assert(!mpool_arena_rewind(a, late));
    assert_error(MPOOL_ERR_INVALID_ARGUMENT, "rewound past");
    assert_logged("stale mark");
    cr_assert_eq(mpool_arena_used(a), used);
    cr_assert(mpool_arena_rewind(a, early), "the earlier mark is still live");

    /* Reset invalidates every mark, even the one at the start. */
    mpool_arena_mark_t start = mpool_arena_mark(a);
    cr_assert(mpool_arena_rewind(a, start));
    mpool_arena_reset(a);
    mpool_arena_mark_t zero = mpool_arena_mark(a);
    cr_assert(!mpool_arena_rewind(a, early));
    assert_error(MPOOL_ERR_INVALID_ARGUMENT, "mark before reset");
    mpool_arena_t *c = mpool_arena_create_child(a);
    (void)c;
    cr_assert(mpool_arena_rewind(a, zero), "a mark at the start taken after the reset is live");

    /* Forged marks. */
    mpool_arena_mark_t forged = {{0, 0}};
    cr_assert(!mpool_arena_rewind(a, forged));
    assert_error(MPOOL_ERR_INVALID_ARGUMENT, "zero mark");
    forged = mpool_arena_mark(a);
    forged.opaque[0] ^= 1;
    cr_assert(!mpool_arena_rewind(a, forged));
    assert_error(MPOOL_ERR_INVALID_ARGUMENT, "forged generation");

    /* A mark of a destroyed arena, checked against an arena at the same address. */
    mpool_arena_t *d = arena_or_die(pool, 4 * KiB, 0);
    (void)mpool_arena_alloc(d, 16);
    mpool_arena_mark_t of_d = mpool_arena_mark(d);
    mpool_arena_destroy(d);
    mpool_arena_t *e = arena_or_die(pool, 4 * KiB, 0);
    (void)mpool_arena_alloc(e, 16);
    (void)mpool_arena_alloc(e, 16);
    cr_assert(!mpool_arena_rewind(e, of_d), "a mark of the arena that was at %p before", (void *)e);
    assert_error(MPOOL_ERR_INVALID_ARGUMENT, "mark of a destroyed arena");
    mpool_arena_destroy(e);
    mpool_arena_destroy(a);
    mpool_arena_destroy(b);
    mpool_destroy(pool);
}

Test(arena, a_rewind_loop_uses_no_memory)
{
    mpool_t *pool = create_or_die(NULL);
    mpool_arena_t *a = arena_or_die(pool, 4 * KiB, 0);
    mpool_arena_mark_t m = mpool_arena_mark(a);
    for (int i = 0; i < 100000; i++) {
        (void)mpool_arena_alloc(a, 1 + (size_t)i % 3000);
        cr_assert(mpool_arena_rewind(a, m));
        mpool_arena_mark_t n = mpool_arena_mark(a);
        cr_assert(mpool_arena_rewind(a, n));
    }
    cr_assert_eq(mpool_arena_used(a), 0);
    cr_assert(mpool_arena_held(a) <= 8 * KiB, "held %zu", mpool_arena_held(a));
    mpool_arena_destroy(a);
    mpool_destroy(pool);
}

/* ---- Cleanups and children -------------------------------------------------- */

static int order_log[256];
static int order_len;

static void note(void *arg)
{
    order_log[order_len++] = (int)(intptr_t)arg;
}

static void assert_order(const int *want, int n, const char *what)
{
    char got[512] = "", exp[512] = "";
    for (int i = 0; i < order_len; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), " %d", order_log[i]);
    for (int i = 0; i < n; i++)
        snprintf(exp + strlen(exp), sizeof exp - strlen(exp), " %d", want[i]);
    cr_assert_str_eq(got, exp, "%s: ran%s, expected%s", what, got, exp);
    order_len = 0;
}

Test(arena, cleanups_run_last_first)
{
    mpool_t *pool = create_or_die(NULL);
    mpool_arena_t *a = arena_or_die(pool, 0, 0);
    order_len = 0;
    for (int i = 1; i <= 3; i++)
        cr_assert(mpool_arena_on_reset(a, note, (void *)(intptr_t)i));
    mpool_arena_mark_t m = mpool_arena_mark(a);
    for (int i = 4; i <= 5; i++)
        cr_assert(mpool_arena_on_reset(a, note, (void *)(intptr_t)i));
    cr_assert(mpool_arena_rewind(a, m));
    assert_order((int[]){5, 4}, 2, "rewind");
    mpool_arena_reset(a);
    assert_order((int[]){3, 2, 1}, 3, "reset");
    mpool_arena_reset(a);
    assert_order(NULL, 0, "a cleanup runs once");
    cr_assert(mpool_arena_on_reset(a, note, (void *)(intptr_t)6));
    mpool_arena_destroy(a);
    assert_order((int[]){6}, 1, "destroy");
    prime_error(MPOOL_ERR_INVALID_ARGUMENT);
    mpool_arena_t *b = arena_or_die(pool, 0, 0);
    cr_assert(!mpool_arena_on_reset(b, NULL, NULL));
    assert_error(MPOOL_ERR_INVALID_ARGUMENT, "NULL cleanup");
    mpool_arena_destroy(b);
    mpool_destroy(pool);
}

Test(arena, children_die_before_their_parents_cleanups)
{
    mpool_t *pool = create_or_die(NULL);
    mpool_arena_t *a = arena_or_die(pool, 4 * KiB, 0);
    order_len = 0;
    cr_assert(mpool_arena_on_reset(a, note, (void *)1));
    mpool_arena_t *c1 = mpool_arena_create_child(a);
    cr_assert_not_null(c1);
    cr_assert(mpool_arena_on_reset(c1, note, (void *)10));
    mpool_arena_t *g = mpool_arena_create_child(c1);
    cr_assert(mpool_arena_on_reset(g, note, (void *)100));
    cr_assert(mpool_arena_on_reset(a, note, (void *)2));
    mpool_arena_mark_t m = mpool_arena_mark(a);
    mpool_arena_t *c2 = mpool_arena_create_child(a);
    cr_assert(mpool_arena_on_reset(c2, note, (void *)20));
    (void)mpool_arena_alloc(c2, 30 * KiB); /* chunks and an own block of the child */
    for (int i = 0; i < 20; i++)
        (void)mpool_arena_alloc(c2, 900);
    cr_assert(mpool_arena_on_reset(a, note, (void *)3));
    cr_assert(mpool_arena_rewind(a, m));
    assert_order((int[]){20, 3}, 2, "rewind: the child made after the mark, then the cleanup");
    /* c2 is gone, and its struct's memory is the parent's again. */
    char *x = mpool_arena_alloc(c1, 100);
    cr_assert_not_null(x, "the child made before the mark lives");
    mpool_arena_reset(a);
    assert_order((int[]){100, 10, 2, 1}, 4, "reset: children (theirs first), then cleanups");
    mpool_arena_destroy(a);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

Test(arena, a_child_destroyed_early_and_its_parent)
{
    mpool_t *pool = create_or_die(NULL);
    mpool_arena_t *a = arena_or_die(pool, 4 * KiB, 0);
    size_t held = mpool_arena_held(a);
    mpool_arena_t *c = mpool_arena_create_child(a);
    for (int i = 0; i < 50; i++)
        (void)mpool_arena_alloc(c, 500);
    cr_assert(mpool_arena_held(c) >= 6 * 4 * KiB);
    cr_assert_eq(mpool_arena_held(a), held, "a child's chunks are its own");
    order_len = 0;
    cr_assert(mpool_arena_on_reset(c, note, (void *)7));
    mpool_arena_destroy(c);
    assert_order((int[]){7}, 1, "destroy of the child");
    mpool_arena_reset(a);
    assert_order(NULL, 0, "a destroyed child is not destroyed again");
    for (int i = 0; i < 200; i++) { /* children made and destroyed over and over */
        mpool_arena_t *k = mpool_arena_create_child(a);
        cr_assert_not_null(mpool_arena_alloc(k, 100));
        mpool_arena_destroy(k);
    }
    mpool_arena_reset(a);
    cr_assert_eq(mpool_arena_used(a), 0);
    mpool_arena_destroy(a);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

/* ---- Caps and the parent pool ------------------------------------------------ */

Test(arena, max_size_caps_the_arena_and_its_children)
{
    mpool_t *pool = logging_pool(false);
    mpool_arena_t *a = arena_or_die(pool, 4 * KiB, 16 * KiB);
    size_t n = 0;
    while (mpool_arena_alloc(a, 512))
        n++;
    assert_error(MPOOL_ERR_POOL_FULL, "arena past max_size");
    cr_assert_eq(errno, ENOMEM);
    assert_logged("arena full");
    cr_assert(n >= 20 && n < 32, "%zu allocations of 512 B in 16 KiB", n);
    cr_assert(mpool_arena_held(a) <= 16 * KiB);
    size_t used = mpool_arena_used(a);
    cr_assert_null(mpool_arena_alloc(a, 8 * KiB), "an own block counts too");
    assert_error(MPOOL_ERR_POOL_FULL, "own block past max_size");
    cr_assert_eq(mpool_arena_used(a), used, "nothing changed");
    mpool_arena_reset(a);
    mpool_arena_t *c = mpool_arena_create_child(a);
    cr_assert_not_null(c);
    size_t k = 0;
    while (mpool_arena_alloc(c, 512))
        k++;
    assert_error(MPOOL_ERR_POOL_FULL, "child past its parent's max_size");
    cr_assert(mpool_arena_held(c) + mpool_arena_held(a) <= 16 * KiB, "child %zu + parent %zu",
              mpool_arena_held(c), mpool_arena_held(a));
    mpool_arena_destroy(c);
    cr_assert_not_null(mpool_arena_alloc(a, 3000), "the child's bytes came back");
    mpool_arena_destroy(a);
    mpool_destroy(pool);
}

Test(arena, the_pools_max_size_and_figures_cover_arenas)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.max_size = 8 * MiB;
    cfg.initial_size = 0;
    mpool_t *pool = create_or_die(&cfg);
    mpool_arena_t *a = arena_or_die(pool, 64 * KiB, 0);
    mpool_usage_t before = mpool_get_usage(pool);
    cr_assert(before.used >= 64 * KiB);
    while (mpool_arena_alloc(a, 4000))
        ;
    assert_error(MPOOL_ERR_POOL_FULL, "the pool's max_size");
    cr_assert(mpool_arena_held(a) > 6 * MiB, "held %zu", mpool_arena_held(a));
    mpool_usage_t full = mpool_get_usage(pool);
    cr_assert(full.used >= mpool_arena_held(a), "pool used %zu, arena held %zu", full.used, mpool_arena_held(a));
    mpool_stats_t st;
    cr_assert(mpool_get_stats(pool, &st));
    cr_assert(st.allocations >= mpool_arena_held(a) / (64 * KiB));
    mpool_arena_reset(a);
    cr_assert(mpool_arena_held(a) <= 17 * 64 * KiB, "reset keeps at most 1 MiB of spare chunks: %zu",
              mpool_arena_held(a));
    cr_assert(mpool_get_usage(pool).used <= 17 * 64 * KiB);
    mpool_arena_destroy(a);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(arena, destroying_or_resetting_the_pool_destroys_its_arenas)
{
    mpool_t *pool = create_or_die(NULL);
    mpool_arena_t *a = arena_or_die(pool, 0, 0);
    mpool_arena_t *c = mpool_arena_create_child(a);
    order_len = 0;
    cr_assert(mpool_arena_on_reset(a, note, (void *)1));
    cr_assert(mpool_arena_on_reset(c, note, (void *)2));
    (void)mpool_arena_alloc(c, 100 * KiB);
    mpool_reset(pool);
    assert_order((int[]){2, 1}, 2, "mpool_reset");
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_arena_t *b = arena_or_die(pool, 0, 0);
    cr_assert(mpool_arena_on_reset(b, note, (void *)3));
    mpool_destroy(pool);
    assert_order((int[]){3}, 1, "mpool_destroy");
}

struct text {
    char buf[16384];
    size_t len;
};

static void to_text(const char *s, size_t n, void *arg)
{
    struct text *t = arg;
    if (t->len + n < sizeof t->buf) {
        memcpy(t->buf + t->len, s, n);
        t->len += n;
        t->buf[t->len] = 0;
    }
}

Test(arena, the_pools_report_lists_its_arenas)
{
    mpool_t *pool = create_or_die(NULL);
    static struct text t;
    t.len = 0;
    t.buf[0] = 0;
    cr_assert(mpool_report(pool, MPOOL_REPORT_TEXT, to_text, &t));
    cr_assert_null(strstr(t.buf, "arenas"), "no arena section without arenas");
    mpool_arena_t *a = arena_or_die(pool, 0, 1 * MiB);
    (void)mpool_arena_alloc(a, 1000);
    mpool_arena_t *c = mpool_arena_create_child(a);
    (void)mpool_arena_alloc(c, 100);
    char line[200];
    t.len = 0;
    cr_assert(mpool_report(pool, MPOOL_REPORT_TEXT, to_text, &t));
    cr_assert_not_null(strstr(t.buf, "arenas (bytes used / held"), "%s", t.buf);
    snprintf(line, sizeof line, "  %p", (void *)a);
    cr_assert_not_null(strstr(t.buf, line), "%s not in %s", line, t.buf);
    cr_assert_not_null(strstr(t.buf, "1008 B / 64 KiB"), "%s", t.buf);
    cr_assert_not_null(strstr(t.buf, "max_size 1 MiB"), "%s", t.buf);
    snprintf(line, sizeof line, "    %p", (void *)c);
    cr_assert_not_null(strstr(t.buf, line), "the child, indented: %s", t.buf);

    if (system("python3 -c 'import json' >/dev/null 2>&1") != 0)
        cr_skip_test("python3 not found: JSON not checked");
    t.len = 0;
    cr_assert(mpool_report(pool, MPOOL_REPORT_JSON, to_text, &t));
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_arena_%d.json", (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fwrite(t.buf, 1, t.len, f);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json, sys\n"
             "d = json.load(open(sys.argv[1]))\n"
             "a = d[\"arenas\"]\n"
             "assert len(a) == 2, a\n"
             "assert a[0][\"arena\"] == sys.argv[2] and a[0][\"parent\"] is None and a[0][\"depth\"] == 0, a\n"
             "assert a[0][\"used\"] == 1008 and a[0][\"held\"] == 65536 and a[0][\"max_size\"] == 1048576, a\n"
             "assert a[1][\"parent\"] == sys.argv[2] and a[1][\"depth\"] == 1 and a[1][\"used\"] == 112, a\n"
             "' %s %p",
             path, (void *)a);
    int rc = system(cmd);
    remove(path);
    cr_assert_eq(rc, 0, "JSON check failed:\n%s", t.buf);
    mpool_arena_destroy(a);
    mpool_destroy(pool);
}

/* ---- Misuse and debug mode --------------------------------------------------- */

Test(arena, null_and_dead_arenas_are_reported)
{
    prime_error(MPOOL_ERR_INVALID_ARGUMENT);
    cr_assert_null(mpool_arena_alloc(NULL, 8));
    assert_error(MPOOL_ERR_INVALID_ARGUMENT, "alloc NULL");
    cr_assert_null(mpool_arena_create_child(NULL));
    cr_assert(!mpool_arena_rewind(NULL, (mpool_arena_mark_t){{0, 0}}));
    cr_assert_eq(mpool_arena_used(NULL), 0);
    mpool_arena_reset(NULL);
    mpool_arena_destroy(NULL);
    mpool_t *pool = create_or_die(NULL);
    mpool_arena_t *a = arena_or_die(pool, 0, 0);
    mpool_arena_t *c = mpool_arena_create_child(a);
    mpool_arena_destroy(c);
    prime_error(MPOOL_ERR_INVALID_ARGUMENT);
    cr_assert_null(mpool_arena_alloc(c, 8));
    assert_error(MPOOL_ERR_INVALID_ARGUMENT, "alloc in a destroyed child");
    prime_error(MPOOL_ERR_INVALID_ARGUMENT);
    mpool_arena_destroy(c);
    assert_error(MPOOL_ERR_INVALID_ARGUMENT, "destroying a child twice");
    mpool_arena_destroy(a);
    mpool_destroy(pool);
}

struct other_thread {
    mpool_arena_t *a;
    void *p;
    bool rewound;
    size_t used;
    mpool_error_t err;
};

static void *use_from_other_thread(void *arg)
{
    struct other_thread *o = arg;
    o->p = mpool_arena_alloc(o->a, 16);
    o->err = mpool_last_error();
    o->rewound = mpool_arena_rewind(o->a, (mpool_arena_mark_t){{0, 0}});
    o->used = mpool_arena_used(o->a);
    mpool_arena_reset(o->a);
    mpool_arena_destroy(o->a);
    return NULL;
}

Test(arena, debug_mode_reports_other_threads)
{
    mpool_t *pool = logging_pool(true);
    mpool_arena_t *a = arena_or_die(pool, 0, 0);
    unsigned char *p = mpool_arena_alloc(a, 64);
    cr_assert_eq(p[0], 0xAB, "debug: fresh memory is filled with 0xAB");
    cr_assert_eq(p[63], 0xAB);
    memset(p, 1, 64);
    struct other_thread o = {a, NULL, true, 1, MPOOL_OK};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, use_from_other_thread, &o), 0);
    pthread_join(t, NULL);
    cr_assert_null(o.p, "another thread's allocation is refused");
    cr_assert_eq(o.err, MPOOL_ERR_INVALID_ARGUMENT);
    cr_assert(!o.rewound);
    cr_assert_eq(o.used, 0);
    assert_logged("called from a thread that does not own the arena");
    cr_assert_eq(mpool_arena_used(a), 64, "the owner's arena is untouched");
    cr_assert_eq(p[0], 1);
    mpool_arena_mark_t m = mpool_arena_mark(a);
    (void)mpool_arena_alloc(a, 64);
    unsigned char *q = mpool_arena_alloc(a, 64);
    cr_assert(mpool_arena_rewind(a, m));
    cr_assert_eq(q[10], 0xDF, "debug: memory given back is filled with 0xDF");
    mpool_arena_destroy(a);
    mpool_destroy(pool);
}

struct arena_work {
    mpool_t *pool;
    int id;
    bool ok;
};

static void *arena_thread(void *arg)
{
    struct arena_work *w = arg;
    mpool_arena_t *a = mpool_arena_create(w->pool, 4 * KiB, 0);
    w->ok = a != NULL;
    for (int round = 0; a && round < 50; round++) {
        mpool_arena_mark_t m = mpool_arena_mark(a);
        char *p[100];
        for (int i = 0; i < 100; i++) {
            p[i] = mpool_arena_alloc(a, 10 + (size_t)i * 7);
            pattern_fill(p[i], (uint64_t)w->id * 1000 + (uint64_t)i, 10 + (size_t)i * 7);
        }
        for (int i = 0; i < 100; i++)
            w->ok &= pattern_ok(p[i], (uint64_t)w->id * 1000 + (uint64_t)i, 10 + (size_t)i * 7);
        w->ok &= mpool_arena_rewind(a, m);
        if (round % 10 == 9)
            mpool_arena_reset(a);
    }
    mpool_arena_destroy(a);
    return NULL;
}

Test(arena, a_thread_safe_pool_serves_arenas_on_many_threads)
{
    /* Each thread its own arena on one shared pool: arenas are single-thread
     * objects, their pool is not. */
    mpool_t *pool = create_or_die(NULL);
    enum { T = 4 };
    pthread_t t[T];
    struct arena_work w[T];
    for (int i = 0; i < T; i++) {
        w[i] = (struct arena_work){pool, i, false};
        cr_assert_eq(pthread_create(&t[i], NULL, arena_thread, &w[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(t[i], NULL);
        cr_assert(w[i].ok, "thread %d", i);
    }
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

/* ---- Randomized model test ---------------------------------------------------- */

enum slot_kind { SLOT_ALLOC, SLOT_CLEANUP, SLOT_CHILD, SLOT_REWIND };

struct slot {
    enum slot_kind kind;
    uint64_t id;
    char *p;     /* SLOT_ALLOC */
    size_t size;
    int child;   /* SLOT_CHILD: model index */
};

#define MODEL_ARENAS 48
#define MODEL_SLOTS 3000
#define MODEL_MARKS 64
#define MODEL_LOG 4096

struct model_arena {
    mpool_arena_t *a;
    int parent;   /* -1: a root */
    bool live;
    bool listed;  /* a slot of its parent names it (so the entry cannot be reused) */
    uint64_t epoch;
    uint64_t incarnation; /* entries are reused: which arena this is */
    size_t n;
    struct slot slots[MODEL_SLOTS];
};

struct model_mark {
    bool set;
    int arena;
    uint64_t incarnation;
    size_t len;
    uint64_t last;  /* id of slot len - 1, or the epoch when len is 0 */
    size_t used;
    mpool_arena_mark_t m;
};

static struct model_arena model[MODEL_ARENAS];
static int model_count;
static struct model_mark marks[MODEL_MARKS];
static uint64_t next_id = 1;
static int got_log[MODEL_LOG], want_log[MODEL_LOG];
static int got_len, want_len;

static void model_cleanup(void *arg)
{
    cr_assert(got_len < MODEL_LOG);
    got_log[got_len++] = (int)(intptr_t)arg;
}

static void model_unwind(int i, size_t len);

/* What the arena does when it destroys arena i. */
static void model_kill(int i)
{
    model_unwind(i, 0);
    model[i].live = false;
}

/* What a rewind to len (or a reset: 0) undoes: children first, newest
 * first; then cleanups, newest first. */
static void model_unwind(int i, size_t len)
{
    struct model_arena *m = &model[i];
    for (size_t k = m->n; k-- > len;)
        if (m->slots[k].kind == SLOT_CHILD && model[m->slots[k].child].live)
            model_kill(m->slots[k].child);
    for (size_t k = m->n; k-- > len;)
        if (m->slots[k].kind == SLOT_CLEANUP)
            want_log[want_len++] = (int)m->slots[k].id;
        else if (m->slots[k].kind == SLOT_CHILD)
            model[m->slots[k].child].listed = false;
    m->n = len;
}

static void model_check_log(const char *what, long step)
{
    cr_assert_eq(got_len, want_len, "step %ld (%s): %d cleanups ran, %d expected", step, what, got_len, want_len);
    for (int k = 0; k < got_len; k++)
        cr_assert_eq(got_log[k], want_log[k], "step %ld (%s): cleanup %d is %d, expected %d", step, what, k,
                     got_log[k], want_log[k]);
    got_len = want_len = 0;
}

static void model_check_memory(int i, long step)
{
    struct model_arena *m = &model[i];
    for (size_t k = 0; k < m->n; k++) {
        struct slot *s = &m->slots[k];
        if (s->kind == SLOT_ALLOC)
            cr_assert(pattern_ok(s->p, s->id, s->size), "step %ld: arena %d allocation %zu (%zu B) changed", step,
                      i, k, s->size);
    }
}

static bool model_mark_live(const struct model_mark *mk, int i)
{
    const struct model_arena *m = &model[i];
    if (mk->arena != i || mk->incarnation != m->incarnation || m->n < mk->len)
        return false;
    return mk->len == 0 ? mk->last == m->epoch : m->slots[mk->len - 1].id == mk->last;
}

static int model_live_arena(rng_t *r)
{
    for (;;) {
        int i = (int)rng_below(r, (uint64_t)model_count);
        if (model[i].live)
            return i;
    }
}

static void model_push(int i, struct slot s)
{
    cr_assert(model[i].n < MODEL_SLOTS);
    model[i].slots[model[i].n++] = s;
}

Test(arena, randomized_model, .timeout = 300)
{
    mpool_t *pool = create_or_die(NULL);
    rng_t r;
    rng_seed(&r, test_seed(0xA7E4A));
    memset(model, 0, sizeof model);
    memset(marks, 0, sizeof marks);
    model_count = 2;
    model[0] = (struct model_arena){arena_or_die(pool, 1 * KiB, 0), -1, true, false, 1, next_id++, 0, {{0}}};
    model[1] = (struct model_arena){arena_or_die(pool, 4 * KiB, 48 * KiB), -1, true, false, 1, next_id++, 0, {{0}}};
    long steps = (long)test_scaled(30000, 2000);
    long rewinds = 0, refused = 0, full = 0, children = 0;
    int newest = 0;
    for (long step = 0; step < steps; step++) {
        int i = model_live_arena(&r);
        struct model_arena *m = &model[i];
        uint64_t op = rng_below(&r, 100);
        const char *what;
        if (m->n + 4 >= MODEL_SLOTS)
            op = 99; /* reset */
        if (op < 55) {
            what = "alloc";
            size_t size = rng_below(&r, 50) == 0 ? (size_t)rng_logrange(&r, 1000, 64 * KiB)
                                                 : (size_t)rng_below(&r, 300);
            size_t align = rng_below(&r, 8) == 0 ? (size_t)1 << rng_below(&r, 13) : 0;
            size_t used = mpool_arena_used(m->a);
            char *p = align ? mpool_arena_alloc_aligned(m->a, size, align) : mpool_arena_alloc(m->a, size);
            if (!p) {
                cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL, "step %ld: %s", step,
                             mpool_strerror(mpool_last_error()));
                cr_assert_eq(mpool_arena_used(m->a), used, "step %ld: a failed allocation changed nothing", step);
                full++;
            } else {
                cr_assert(is_aligned(p, align > 16 ? align : 16));
                cr_assert(mpool_arena_used(m->a) >= used + size);
                if (mpool_arena_used(m->a) != used) { /* it took a place (size 0 may not) */
                    uint64_t id = next_id++;
                    pattern_fill(p, id, size);
                    model_push(i, (struct slot){SLOT_ALLOC, id, p, size, -1});
                }
            }
        } else if (op < 65) {
            what = "mark";
            newest = (int)rng_below(&r, MODEL_MARKS);
            struct model_mark *mk = &marks[newest];
            *mk = (struct model_mark){true, i, m->incarnation, m->n, m->n ? m->slots[m->n - 1].id : m->epoch,
                                      mpool_arena_used(m->a), mpool_arena_mark(m->a)};
        } else if (op < 80) {
            what = "rewind";
            struct model_mark *mk = &marks[rng_below(&r, 2) ? newest : (int)rng_below(&r, MODEL_MARKS)];
            if (!mk->set)
                continue;
            if (rng_below(&r, 4) != 0 && model[mk->arena].live && model[mk->arena].incarnation == mk->incarnation)
                i = mk->arena, m = &model[i]; /* mostly its own arena */
            bool live = model_mark_live(mk, i);
            size_t used = mpool_arena_used(m->a);
            bool ok = mpool_arena_rewind(m->a, mk->m);
            cr_assert_eq(ok, live, "step %ld: rewind of arena %d to a mark of arena %d (len %zu, now %zu): %s, "
                         "expected %s", step, i, mk->arena, mk->len, m->n, ok ? "done" : "refused",
                         live ? "done" : "refused");
            if (!live) {
                cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ARGUMENT);
                cr_assert_eq(mpool_arena_used(m->a), used, "step %ld: a refused rewind changes nothing", step);
                refused++;
            } else {
                if (m->n != mk->len) {
                    model_unwind(i, mk->len);
                    model_push(i, (struct slot){SLOT_REWIND, next_id++, NULL, 0, -1});
                }
                cr_assert_eq(mpool_arena_used(m->a), mk->used, "step %ld: used %zu after the rewind, %zu at the mark",
                             step, mpool_arena_used(m->a), mk->used);
                rewinds++;
            }
        } else if (op < 88) {
            what = "on_reset";
            uint64_t id = next_id++;
            bool ok = mpool_arena_on_reset(m->a, model_cleanup, (void *)(intptr_t)id);
            if (ok)
                model_push(i, (struct slot){SLOT_CLEANUP, id, NULL, 0, -1});
            else
                cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL);
        } else if (op < 93) {
            what = "child";
            int k = 2;
            while (k < model_count && (model[k].live || model[k].listed))
                k++;
            if (k == MODEL_ARENAS)
                continue;
            mpool_arena_t *c = mpool_arena_create_child(m->a);
            if (!c) {
                cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL);
                continue;
            }
            model_count += k == model_count;
            model[k] = (struct model_arena){c, i, true, true, 1, next_id++, 0, {{0}}};
            children++;
            model_push(i, (struct slot){SLOT_CHILD, next_id++, NULL, 0, k});
        } else if (op < 96) {
            what = "destroy";
            if (m->parent < 0)
                continue; /* roots live to the end */
            mpool_arena_destroy(m->a);
            model_kill(i);
        } else {
            what = "reset";
            mpool_arena_reset(m->a);
            model_unwind(i, 0);
            m->epoch = next_id++;
            cr_assert_eq(mpool_arena_used(m->a), 0);
        }
        model_check_log(what, step);
        if (step % 16 == 0 || op >= 65)
            for (int k = 0; k < model_count; k++)
                if (model[k].live)
                    model_check_memory(k, step);
        if (step % 1000 == 0)
            cr_assert_eq(mpool_check(pool), 0, "step %ld", step);
    }
    cr_assert(rewinds > steps / 50 && refused > steps / 50 && full > 0, "%ld rewinds, %ld refused, %ld full", rewinds,
              refused, full);
    for (int k = 0; k < 2; k++) {
        mpool_arena_destroy(model[k].a);
        model_kill(k);
    }
    model_check_log("destroy the roots", steps);
    cr_assert_eq(mpool_get_usage(pool).used, 0, "every byte back to the pool");
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
    cr_log_info("%ld steps: %ld rewinds, %ld refused, %ld allocations refused (max_size), %ld children", steps,
                rewinds, refused, full, children);
}
