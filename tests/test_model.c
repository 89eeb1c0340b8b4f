/*
 * test_model.c - randomized model test.
 *
 * At least a million mixed operations (alloc, alloc_aligned, calloc, realloc,
 * free, safe_free, plus a few invalid-pointer probes) over three pools with
 * different configurations and the default pool reached through NULL.  The
 * test keeps its own model of every live block (pointer, requested size, id);
 * every block holds a pattern derived from (id, offset) over its whole
 * requested size, verified completely at realloc (up to the smaller size) and
 * at free.  Every new block is checked for alignment, usable_size >= size and
 * ownership; calloc blocks must be zero.  Every 10000 operations each pool
 * must pass mpool_check(), its `used` must cover the live requested sizes and
 * equal the sum of live usable sizes, and no two live blocks may overlap.
 *
 * Environment: MPOOL_TEST_SCALE (float, default 1.0) scales the operation
 * count; MPOOL_TEST_SEED (decimal or 0x hex) replaces the fixed seed.
 */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpool.h>

#include "testutil.h"


#define DEFAULT_SEED UINT64_C(0x6D706F6F6C2D3031)
#define BASE_OPS ((size_t)1000000)
#define CHECK_EVERY 10000
#define MAX_LIVE 2000                 /* live blocks per pool */
#define MAX_LIVE_BYTES ((size_t)64 << 20) /* requested bytes live per pool */
#define N_SLOTS 4

typedef struct blk {
    unsigned char *p;
    size_t size; /* requested */
    uint64_t id;
} blk_t;

typedef struct slot {
    const char *name;
    mpool_t *handle; /* what allocation calls get: NULL for the default pool */
    mpool_t *real;   /* the pool itself */
    bool created;    /* destroy at the end */
    size_t align;    /* config.alignment */
    blk_t live[MAX_LIVE];
    size_t n;
    size_t live_bytes;
} slot_t;

static slot_t slots[N_SLOTS];
static uint64_t seed;
static size_t op_no;
static uint64_t next_id = 1;

#define ctx_fmt "[seed 0x%" PRIx64 ", op %zu, pool %s] "
#define ctx_args(s) seed, op_no, (s)->name

static void setup(void)
{
    pattern_init();
}

TestSuite(model, .init = setup, .timeout = 600);

static void slot_init(slot_t *s, const char *name, const mpool_config_t *cfg)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    if (cfg == NULL) {
        s->handle = NULL;
        s->real = mpool_default();
        s->align = 16;
    } else {
        s->real = mpool_create(cfg);
        cr_assert_not_null(s->real, "mpool_create(%s): %s", name,
                           mpool_strerror(mpool_last_error()));
        s->handle = s->real;
        s->created = true;
        s->align = cfg->alignment;
    }
}

/* The pool argument for calls on an existing block: the pool or NULL. */
static mpool_t *block_handle(slot_t *s, rng_t *r)
{
    return (rng_next(r) & 1) ? s->real : NULL;
}

static size_t draw_size(rng_t *r)
{
    uint64_t b = rng_below(r, 100);
    if (b < 70)
        return (size_t)rng_below(r, 257);
    if (b < 90)
        return (size_t)rng_logrange(r, 257, 64 * KiB);
    if (b < 99)
        return (size_t)rng_logrange(r, 64 * KiB + 1, MiB);
    return (size_t)rng_logrange(r, MiB + 1, 4 * MiB);
}

static void verify_block(const slot_t *s, const blk_t *b, size_t len, const char *when)
{
    size_t bad = pattern_find_bad(b->p, b->id, len);
    cr_assert_eq(bad, SIZE_MAX,
                 ctx_fmt "%s: block %p (id %" PRIu64 ", size %zu) corrupted at offset %zu", ctx_args(s),
                 when, (void *)b->p, b->id, b->size, bad);
}

static void check_new_block(const slot_t *s, const void *p, size_t size, size_t align,
                            const char *what)
{
    cr_assert_not_null(p, ctx_fmt "%s(%zu) failed: %s", ctx_args(s), what, size,
                       mpool_strerror(mpool_last_error()));
    size_t want = align > s->align ? align : s->align;
    cr_assert(is_aligned(p, want), ctx_fmt "%s(%zu) = %p not aligned to %zu", ctx_args(s), what,
              size, p, want);
    size_t us = mpool_usable_size(s->handle, p);
    cr_assert_geq(us, size, ctx_fmt "%s(%zu) = %p: usable_size %zu", ctx_args(s), what, size, p,
                  us);
    cr_assert(mpool_owns(s->real, p), ctx_fmt "%s(%zu) = %p not owned by its pool", ctx_args(s),
              what, size, p);
}

static void add_block(slot_t *s, void *p, size_t size)
{
    blk_t *b = &s->live[s->n++];
    b->p = p;
    b->size = size;
    b->id = next_id++;
    s->live_bytes += size;
    pattern_fill(b->p, b->id, size);
}

static void remove_block(slot_t *s, size_t i)
{
    s->live_bytes -= s->live[i].size;
    s->live[i] = s->live[--s->n];
}

/* ---- operations ---------------------------------------------------------- */

static void op_alloc(slot_t *s, rng_t *r)
{
    size_t size = draw_size(r);
    void *p = mpool_alloc(s->handle, size);
    check_new_block(s, p, size, 1, "alloc");
    add_block(s, p, size);
}

static void op_alloc_aligned(slot_t *s, rng_t *r)
{
    size_t size = draw_size(r);
    size_t align;
    if (rng_below(r, 100) < 3)
        align = (size_t)1 << rng_range(r, 13, 20);
    else
        align = (size_t)1 << rng_below(r, 13);
    void *p = mpool_alloc_aligned(s->handle, size, align);
    check_new_block(s, p, size, align, "alloc_aligned");
    add_block(s, p, size);
}

static void op_calloc(slot_t *s, rng_t *r)
{
    size_t want = draw_size(r);
    size_t count = (size_t)rng_range(r, 1, 8);
    size_t each = want / count;
    size_t size = count * each;
    void *p = mpool_calloc(s->handle, count, each);
    check_new_block(s, p, size, 1, "calloc");
    cr_assert(bytes_all_zero(p, size), ctx_fmt "calloc(%zu, %zu) = %p not zeroed", ctx_args(s),
              count, each, p);
    add_block(s, p, size);
}

static void op_realloc(slot_t *s, rng_t *r)
{
    if (rng_below(r, 100) < 3) {
        size_t size = draw_size(r);
        void *p = mpool_realloc(s->handle, NULL, size);
        check_new_block(s, p, size, 1, "realloc(NULL)");
        add_block(s, p, size);
        return;
    }
    size_t i = (size_t)rng_below(r, s->n);
    blk_t *b = &s->live[i];
    size_t ns = rng_below(r, 100) == 0 ? 0 : draw_size(r);
    mpool_t *h = block_handle(s, r);
    if (ns == 0) {
        verify_block(s, b, b->size, "before realloc(p, 0)");
        void *q = mpool_realloc(h, b->p, 0);
        cr_assert_null(q, ctx_fmt "realloc(%p, 0) returned %p", ctx_args(s), (void *)b->p, q);
        cr_assert_not(mpool_owns(s->real, b->p), ctx_fmt "realloc(%p, 0) did not free",
                      ctx_args(s), (void *)b->p);
        remove_block(s, i);
        return;
    }
    if (s->live_bytes - b->size + ns > MAX_LIVE_BYTES)
        ns = b->size / 2 + 1;
    unsigned char *old = b->p;
    unsigned char *q = mpool_realloc(h, old, ns);
    check_new_block(s, q, ns, 1, "realloc");
    b->p = q;
    size_t keep = b->size < ns ? b->size : ns;
    char when[64];
    snprintf(when, sizeof when, "after realloc(%zu -> %zu)", b->size, ns);
    verify_block(s, b, keep, when);
    if (q != old)
        cr_assert_not(mpool_owns(s->real, old), ctx_fmt "realloc moved %p to %p but kept the old",
                      ctx_args(s), (void *)old, (void *)q);
    pattern_fill_range(q, b->id, keep, ns);
    s->live_bytes = s->live_bytes - b->size + ns;
    b->size = ns;
}

static void op_free(slot_t *s, rng_t *r, bool safe)
{
    size_t i = (size_t)rng_below(r, s->n);
    blk_t *b = &s->live[i];
    verify_block(s, b, b->size, safe ? "before safe_free" : "before free");
    mpool_t *h = block_handle(s, r);
    if (safe) {
        bool ok = mpool_safe_free(h, b->p);
        cr_assert(ok, ctx_fmt "safe_free(%p) of a live block failed: %s", ctx_args(s),
                  (void *)b->p, mpool_strerror(mpool_last_error()));
    } else {
        mpool_free(h, b->p);
    }
    if (rng_below(r, 8) == 0)
        cr_assert_not(mpool_owns(s->real, b->p), ctx_fmt "%p still owned after free",
                      ctx_args(s), (void *)b->p);
    remove_block(s, i);
}

/* Invalid requests that must fail and change nothing. */
static void op_probe(slot_t *s, rng_t *r)
{
    size_t i = (size_t)rng_below(r, s->n);
    blk_t *b = &s->live[i];
    slot_t *other = &slots[(size_t)(s - slots + 1 + rng_below(r, N_SLOTS - 1)) % N_SLOTS];
    cr_assert_not(mpool_owns(other->real, b->p), ctx_fmt "pool %s owns %p", ctx_args(s),
                  other->name, (void *)b->p);
    if (b->size >= 2) {
        size_t off = (size_t)rng_range(r, 1, b->size - 1);
        cr_assert_not(mpool_safe_free(s->real, b->p + off),
                      ctx_fmt "safe_free(interior %p + %zu) succeeded", ctx_args(s), (void *)b->p,
                      off);
        cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    }
    cr_assert_not(mpool_safe_free(other->real, b->p),
                  ctx_fmt "pool %s freed %p of another pool", ctx_args(s), other->name,
                  (void *)b->p);
    cr_assert(mpool_owns(s->real, b->p));
    verify_block(s, b, b->size, "after invalid frees");
}

/* ---- checkpoints --------------------------------------------------------- */

typedef struct interval {
    uintptr_t start, end;
    const char *pool;
} interval_t;

static int interval_cmp(const void *a, const void *b)
{
    const interval_t *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

static interval_t intervals[N_SLOTS * MAX_LIVE];

static void checkpoint(rng_t *r)
{
    size_t k = 0;
    for (int si = 0; si < N_SLOTS; si++) {
        slot_t *s = &slots[si];
        size_t problems = mpool_check(s->real);
        cr_assert_eq(problems, 0, ctx_fmt "mpool_check found %zu problems", ctx_args(s),
                     problems);
        size_t sum_usable = 0;
        for (size_t i = 0; i < s->n; i++) {
            size_t us = mpool_usable_size(s->real, s->live[i].p);
            cr_assert_geq(us, s->live[i].size, ctx_fmt "live block %p: usable %zu < size %zu",
                          ctx_args(s), (void *)s->live[i].p, us, s->live[i].size);
            sum_usable += us;
            intervals[k].start = (uintptr_t)s->live[i].p;
            intervals[k].end = (uintptr_t)s->live[i].p + us;
            intervals[k].pool = s->name;
            k++;
        }
        mpool_usage_t u = mpool_get_usage(s->real);
        cr_assert_geq(u.used, s->live_bytes,
                      ctx_fmt "used %zu < %zu bytes requested by %zu live blocks", ctx_args(s),
                      u.used, s->live_bytes, s->n);
        cr_assert_eq(u.used, sum_usable,
                     ctx_fmt "used %zu != %zu, the sum of live usable sizes", ctx_args(s), u.used,
                     sum_usable);
        cr_assert_geq(u.total, u.used, ctx_fmt "total %zu < used %zu", ctx_args(s), u.total,
                      u.used);
        cr_assert_eq(u.free, u.total - u.used);
        /* spot-check some live blocks completely */
        for (int j = 0; j < 32 && s->n > 0; j++) {
            const blk_t *b = &s->live[rng_below(r, s->n)];
            verify_block(s, b, b->size, "checkpoint");
        }
    }
    qsort(intervals, k, sizeof intervals[0], interval_cmp);
    for (size_t i = 1; i < k; i++) {
        cr_assert_neq(intervals[i].start, intervals[i - 1].start,
                      "[seed 0x%" PRIx64 ", op %zu] two live blocks at %p (pools %s, %s)", seed,
                      op_no, (void *)intervals[i].start, intervals[i - 1].pool, intervals[i].pool);
        cr_assert_geq(intervals[i].start, intervals[i - 1].end,
                      "[seed 0x%" PRIx64 ", op %zu] live blocks overlap: [%p, %p) of pool %s and "
                      "[%p, %p) of pool %s",
                      seed, op_no, (void *)intervals[i - 1].start, (void *)intervals[i - 1].end,
                      intervals[i - 1].pool, (void *)intervals[i].start, (void *)intervals[i].end,
                      intervals[i].pool);
    }
}

/* ---- the test ------------------------------------------------------------ */

Test(model, random_operations)
{
    seed = test_seed(DEFAULT_SEED);
    size_t ops = test_scaled(BASE_OPS, 20000);
    fprintf(stderr, "test_model: seed=0x%" PRIx64 " ops=%zu (set MPOOL_TEST_SEED / MPOOL_TEST_SCALE)\n",
            seed, ops);
    rng_t r;
    rng_seed(&r, seed);

    mpool_config_t c1 = mpool_config_default();
    mpool_config_t c2 = mpool_config_default();
    c2.alignment = 64;
    c2.min_block_size = 32;
    mpool_config_t c3 = mpool_config_default();
    c3.max_block_size = 64 * KiB;
    c3.thread_safe = false;
    slot_init(&slots[0], "default(NULL)", NULL);
    slot_init(&slots[1], "defaults", &c1);
    slot_init(&slots[2], "align64-min32", &c2);
    slot_init(&slots[3], "maxblock64k-unlocked", &c3);
    cr_assert_not(mpool_is_thread_safe(slots[3].real));

    size_t counts[7] = {0};
    for (op_no = 0; op_no < ops; op_no++) {
        slot_t *s = &slots[rng_below(&r, N_SLOTS)];
        unsigned kind;
        if (s->n == 0)
            kind = 0;
        else if (s->n >= MAX_LIVE || s->live_bytes >= MAX_LIVE_BYTES)
            kind = 4 + (unsigned)(rng_next(&r) & 1); /* free or safe_free */
        else {
            uint64_t x = rng_below(&r, 100);
            kind = x < 28 ? 0 : x < 38 ? 1 : x < 46 ? 2 : x < 63 ? 3 : x < 88 ? 4 : x < 98 ? 5 : 6;
        }
        counts[kind]++;
        switch (kind) {
        case 0:
            op_alloc(s, &r);
            break;
        case 1:
            op_alloc_aligned(s, &r);
            break;
        case 2:
            op_calloc(s, &r);
            break;
        case 3:
            op_realloc(s, &r);
            break;
        case 4:
            op_free(s, &r, false);
            break;
        case 5:
            op_free(s, &r, true);
            break;
        default:
            op_probe(s, &r);
            break;
        }
        if ((op_no + 1) % CHECK_EVERY == 0)
            checkpoint(&r);
    }
    checkpoint(&r);
    fprintf(stderr,
            "test_model: alloc %zu, aligned %zu, calloc %zu, realloc %zu, free %zu, safe_free "
            "%zu, probes %zu\n",
            counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6]);
    for (int k = 0; k < 6; k++)
        cr_assert_gt(counts[k], ops / 100, "operation kind %d ran only %zu times", k, counts[k]);

    /* free everything, verifying every block */
    for (int si = 0; si < N_SLOTS; si++) {
        slot_t *s = &slots[si];
        while (s->n > 0) {
            blk_t *b = &s->live[s->n - 1];
            verify_block(s, b, b->size, "final free");
            cr_assert(mpool_safe_free(s->real, b->p), ctx_fmt "final safe_free(%p) failed",
                      ctx_args(s), (void *)b->p);
            remove_block(s, s->n - 1);
        }
        mpool_usage_t u = mpool_get_usage(s->real);
        cr_assert_eq(u.used, 0, ctx_fmt "used %zu after freeing every block", ctx_args(s), u.used);
        cr_assert_eq(mpool_check(s->real), 0, ctx_fmt "mpool_check after freeing everything",
                     ctx_args(s));
        if (s->created)
            mpool_destroy(s->real);
    }
}
