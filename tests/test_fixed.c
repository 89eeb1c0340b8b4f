/*
 * test_fixed.c - fixed-size object pools (mpool_fixed_*).
 *
 * - configuration: defaults, every refused configuration;
 * - objects: aligned, distinct, never overlapping (patterns), owns, in_use
 *   and capacity exact; growth by growth_factor up to max_count (POOL_FULL,
 *   nothing changed); batches; reset and destroy give memory back to the
 *   parent; huge objects (a chunk each); the parent's max_size;
 * - misuse, each expecting its report through the logger: double free,
 *   interior pointer, an object of another fixed pool, a block of the
 *   parent, a foreign pointer, a released chunk, a NULL pool; nothing changed;
 * - a randomized model test (several pools of both modes against a model of
 *   live objects);
 * - threads (run under TSan: the name matches "fixed"): a thread-safe pool
 *   shared by threads that free each other's objects, threads that exit with
 *   objects in their caches, a pool destroyed while threads keep caches;
 * - fork() while threads use a thread-safe pool and create and destroy
 *   others: the child uses and destroys the pool and makes a new one;
 * - the parent's report lists its fixed pools (text and JSON).
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mpool.h>

#include "testutil.h"

#ifdef UNDER_TSAN
#define DIVISOR 8
#else
#define DIVISOR 1
#endif

static void setup(void)
{
    pattern_init();
}

TestSuite(fixed, .init = setup);

/* ---- Helpers ------------------------------------------------------------ */

/* What the logger saw. */
struct log {
    int calls;
    mpool_error_t last;
    char text[512];
};

static void log_fn(mpool_error_t err, const char *msg, void *arg)
{
    struct log *l = arg;
    l->calls++;
    l->last = err;
    snprintf(l->text, sizeof l->text, "%s", msg);
}

static mpool_t *parent_pool(bool thread_safe, size_t max_size)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.thread_safe = thread_safe;
    cfg.max_size = max_size;
    cfg.initial_size = max_size && max_size < MiB ? max_size : MiB;
    return create_or_die(&cfg);
}

static mpool_fixed_t *fixed_or_die(const mpool_fixed_config_t *cfg)
{
    mpool_fixed_t *fp = mpool_fixed_create(cfg);
    cr_assert_not_null(fp, "mpool_fixed_create: %s", mpool_strerror(mpool_last_error()));
    return fp;
}

/* ---- Configuration ------------------------------------------------------ */

Test(fixed, config_default)
{
    mpool_fixed_config_t c = mpool_fixed_config_default(48);
    cr_assert_eq(c.object_size, 48);
    cr_assert_eq(c.alignment, 0);
    cr_assert_eq(c.initial_count, 64);
    cr_assert_eq(c.max_count, 0);
    cr_assert_float_eq(c.growth_factor, 2.0, 1e-12);
    cr_assert(c.thread_safe);
    cr_assert_eq(c.on_error, MPOOL_ON_ERROR_RETURN);
    cr_assert_null(c.logger);
    cr_assert_null(c.parent);
}

Test(fixed, bad_configurations_are_refused)
{
    mpool_fixed_config_t bad[7];
    for (int i = 0; i < 7; i++)
        bad[i] = mpool_fixed_config_default(32);
    bad[0].object_size = 0;
    bad[1].alignment = 24;
    bad[2].alignment = 8192;
    bad[3].growth_factor = 0.5;
    bad[4].initial_count = 10, bad[4].max_count = 5;
    bad[5].on_error = (mpool_on_error_t)7;
    bad[6].growth_factor = 1.0 / 0.0;
    for (int i = 0; i < 7; i++) {
        errno = 0;
        cr_assert_null(mpool_fixed_create(&bad[i]), "configuration %d accepted", i);
        cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ARGUMENT, "configuration %d", i);
        cr_assert_eq(errno, EINVAL);
    }
    cr_assert_null(mpool_fixed_create(NULL));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ARGUMENT);

    struct log l = {0};
    bad[0].on_error = MPOOL_ON_ERROR_LOG;
    bad[0].logger = log_fn;
    bad[0].logger_arg = &l;
    cr_assert_null(mpool_fixed_create(&bad[0]));
    cr_assert_eq(l.calls, 1);
    cr_assert(strstr(l.text, "object_size"), "message: %s", l.text);
}

Test(fixed, null_pool_is_an_invalid_argument)
{
    cr_assert_null(mpool_fixed_alloc(NULL));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ARGUMENT);
    mpool_fixed_free(NULL, NULL);
    int x;
    mpool_fixed_free(NULL, &x);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ARGUMENT);
    void *out[2];
    cr_assert_eq(mpool_fixed_alloc_batch(NULL, out, 2), 0);
    cr_assert_eq(mpool_fixed_in_use(NULL), 0);
    cr_assert_eq(mpool_fixed_capacity(NULL), 0);
    cr_assert_not(mpool_fixed_owns(NULL, &x));
    mpool_fixed_destroy(NULL);
    mpool_fixed_reset(NULL);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ARGUMENT);
}

/* ---- Objects ------------------------------------------------------------ */

/* Fills the pool to its capacity and checks alignment, distinctness and
 * patterns, then frees everything. */
static void fill_and_check(mpool_fixed_t *fp, size_t size, size_t align, size_t n)
{
    void **objs = malloc(n * sizeof *objs);
    cr_assert_not_null(objs);
    for (size_t i = 0; i < n; i++) {
        objs[i] = mpool_fixed_alloc(fp);
        cr_assert_not_null(objs[i], "object %zu of %zu: %s", i, n, mpool_strerror(mpool_last_error()));
        cr_assert(is_aligned(objs[i], align), "object %p not aligned to %zu", objs[i], align);
        cr_assert(mpool_fixed_owns(fp, objs[i]));
        pattern_fill(objs[i], i, size);
    }
    cr_assert_eq(mpool_fixed_in_use(fp), n);
    for (size_t i = 0; i < n; i++)
        cr_assert(pattern_ok(objs[i], i, size), "object %zu overwritten", i);
    for (size_t i = 0; i < n; i++) {
        mpool_fixed_free(fp, objs[i]);
        cr_assert_not(mpool_fixed_owns(fp, objs[i]));
    }
    cr_assert_eq(mpool_fixed_in_use(fp), 0);
    free(objs);
}

Test(fixed, objects_are_aligned_distinct_and_counted)
{
    static const size_t sizes[] = {1, 7, 8, 12, 16, 24, 40, 64, 100, 256, 1000, 4096, 5000};
    for (int ts = 0; ts < 2; ts++) {
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            mpool_fixed_config_t cfg = mpool_fixed_config_default(sizes[k]);
            cfg.initial_count = 100;
            cfg.thread_safe = ts;
            mpool_fixed_t *fp = fixed_or_die(&cfg);
            cr_assert_eq(mpool_fixed_capacity(fp), 100);
            cr_assert_eq(mpool_fixed_in_use(fp), 0);
            cr_assert_eq(mpool_fixed_object_size(fp), sizes[k]);
            size_t natural = sizes[k] & (~sizes[k] + 1);
            size_t align = natural < 16 ? natural : 16;
            fill_and_check(fp, sizes[k], align < 8 ? 8 : align, 100);
            cr_assert_eq(mpool_fixed_capacity(fp), 100, "no growth within initial_count");
            fill_and_check(fp, sizes[k], 8, 350); /* grows */
            mpool_fixed_destroy(fp);
        }
    }
}

Test(fixed, explicit_alignment)
{
    static const size_t aligns[] = {8, 16, 32, 64, 128, 1024, 4096};
    for (size_t k = 0; k < sizeof aligns / sizeof aligns[0]; k++) {
        mpool_fixed_config_t cfg = mpool_fixed_config_default(24);
        cfg.alignment = aligns[k];
        cfg.thread_safe = false;
        mpool_fixed_t *fp = fixed_or_die(&cfg);
        fill_and_check(fp, 24, aligns[k], 200);
        mpool_fixed_destroy(fp);
    }
}

Test(fixed, growth_follows_the_factor_up_to_max_count)
{
    struct log l = {0};
    mpool_fixed_config_t cfg = mpool_fixed_config_default(32);
    cfg.initial_count = 10;
    cfg.max_count = 75;
    cfg.thread_safe = false;
    cfg.on_error = MPOOL_ON_ERROR_LOG;
    cfg.logger = log_fn;
    cfg.logger_arg = &l;
    mpool_fixed_t *fp = fixed_or_die(&cfg);
    void *objs[75];
    size_t expect_cap[] = {10, 20, 40, 75};
    size_t step = 0;
    for (size_t i = 0; i < 75; i++) {
        objs[i] = mpool_fixed_alloc(fp);
        cr_assert_not_null(objs[i]);
        pattern_fill(objs[i], i, 32);
        while (step < 3 && i + 1 > expect_cap[step])
            step++;
        cr_assert_eq(mpool_fixed_capacity(fp), expect_cap[step], "after %zu objects", i + 1);
    }
    errno = 0;
    cr_assert_null(mpool_fixed_alloc(fp));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL);
    cr_assert_eq(errno, ENOMEM);
    cr_assert_eq(l.calls, 1);
    cr_assert_eq(l.last, MPOOL_ERR_POOL_FULL);
    cr_assert(strstr(l.text, "max_count 75"), "message: %s", l.text);
    cr_assert_eq(mpool_fixed_capacity(fp), 75);
    cr_assert_eq(mpool_fixed_in_use(fp), 75);
    for (size_t i = 0; i < 75; i++)
        cr_assert(pattern_ok(objs[i], i, 32));
    mpool_fixed_free(fp, objs[40]);
    cr_assert_eq(mpool_fixed_alloc(fp), objs[40], "the one free object comes back");
    mpool_fixed_destroy(fp);
}

Test(fixed, growth_factor_one_adds_initial_count)
{
    mpool_fixed_config_t cfg = mpool_fixed_config_default(16);
    cfg.initial_count = 5;
    cfg.growth_factor = 1.0;
    mpool_fixed_t *fp = fixed_or_die(&cfg);
    for (int i = 0; i < 12; i++)
        cr_assert_not_null(mpool_fixed_alloc(fp));
    cr_assert_eq(mpool_fixed_capacity(fp), 15);
    mpool_fixed_destroy(fp);
}

Test(fixed, initial_count_zero_grows_on_demand)
{
    mpool_fixed_config_t cfg = mpool_fixed_config_default(16);
    cfg.initial_count = 0;
    for (int ts = 0; ts < 2; ts++) {
        cfg.thread_safe = ts;
        mpool_fixed_t *fp = fixed_or_die(&cfg);
        cr_assert_eq(mpool_fixed_capacity(fp), 0);
        void *p = mpool_fixed_alloc(fp);
        cr_assert_not_null(p);
        cr_assert_geq(mpool_fixed_capacity(fp), 1);
        mpool_fixed_free(fp, p);
        mpool_fixed_destroy(fp);
    }
}

Test(fixed, batches)
{
    for (int ts = 0; ts < 2; ts++) {
        mpool_fixed_config_t cfg = mpool_fixed_config_default(40);
        cfg.initial_count = 100;
        cfg.max_count = 1000;
        cfg.thread_safe = ts;
        mpool_fixed_t *fp = fixed_or_die(&cfg);
        void *objs[1200];
        cr_assert_eq(mpool_fixed_alloc_batch(fp, objs, 600), 600);
        cr_assert_eq(mpool_fixed_in_use(fp), 600);
        for (size_t i = 0; i < 600; i++)
            pattern_fill(objs[i], i, 40);
        errno = 0;
        cr_assert_eq(mpool_fixed_alloc_batch(fp, objs + 600, 600), 400, "up to max_count");
        cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL);
        cr_assert_eq(errno, ENOMEM);
        for (size_t i = 600; i < 1000; i++)
            pattern_fill(objs[i], i, 40);
        for (size_t i = 0; i < 1000; i++)
            cr_assert(pattern_ok(objs[i], i, 40), "object %zu", i);
        cr_assert_eq(mpool_fixed_in_use(fp), 1000);
        objs[5] = NULL; /* skipped */
        mpool_fixed_free_batch(fp, objs, 1000);
        cr_assert_eq(mpool_fixed_in_use(fp), 1);
        cr_assert_eq(mpool_fixed_alloc_batch(fp, objs, 0), 0);
        mpool_fixed_destroy(fp);
    }
}

Test(fixed, reset_frees_everything_and_gives_growth_back)
{
    for (int ts = 0; ts < 2; ts++) {
        mpool_t *parent = parent_pool(true, 0);
        mpool_usage_t empty = mpool_get_usage(parent);
        mpool_fixed_config_t cfg = mpool_fixed_config_default(64);
        cfg.parent = parent;
        cfg.initial_count = 50;
        cfg.thread_safe = ts;
        mpool_fixed_t *fp = fixed_or_die(&cfg);
        mpool_usage_t created = mpool_get_usage(parent);
        cr_assert_gt(created.used, empty.used, "the chunk is the parent's memory");
        void *objs[500];
        for (int i = 0; i < 500; i++)
            cr_assert_not_null(objs[i] = mpool_fixed_alloc(fp));
        cr_assert_gt(mpool_get_usage(parent).used, created.used);
        mpool_fixed_reset(fp);
        cr_assert_eq(mpool_fixed_in_use(fp), 0);
        cr_assert_eq(mpool_fixed_capacity(fp), 50);
        cr_assert_eq(mpool_get_usage(parent).used, created.used, "growth went back to the parent");
        for (int i = 0; i < 500; i++)
            cr_assert_not(mpool_fixed_owns(fp, objs[i]));
        for (int i = 0; i < 50; i++) {
            void *p = mpool_fixed_alloc(fp);
            cr_assert_not_null(p);
            pattern_fill(p, (uint64_t)i, 64);
        }
        cr_assert_eq(mpool_fixed_capacity(fp), 50);
        mpool_fixed_destroy(fp);
        cr_assert_eq(mpool_get_usage(parent).used, empty.used, "destroy gave everything back");
        cr_assert_eq(mpool_check(parent), 0);
        mpool_destroy(parent);
    }
}

Test(fixed, huge_objects_get_a_chunk_each)
{
    size_t size = 3 * MiB;
    mpool_fixed_config_t cfg = mpool_fixed_config_default(size);
    cfg.initial_count = 2;
    cfg.thread_safe = false;
    mpool_fixed_t *fp = fixed_or_die(&cfg);
    void *a = mpool_fixed_alloc(fp), *b = mpool_fixed_alloc(fp), *c = mpool_fixed_alloc(fp);
    cr_assert(a && b && c);
    cr_assert_eq(mpool_fixed_capacity(fp), 3, "growth is one chunk, and a chunk holds one such object");
    pattern_fill(a, 1, size);
    pattern_fill(b, 2, size);
    pattern_fill(c, 3, size);
    cr_assert(pattern_ok(a, 1, size) && pattern_ok(b, 2, size) && pattern_ok(c, 3, size));
    cr_assert(mpool_fixed_owns(fp, c));
    cr_assert_not(mpool_fixed_owns(fp, (char *)c + 8));
    mpool_fixed_free(fp, b);
    cr_assert_not(mpool_fixed_owns(fp, b));
    cr_assert_eq(mpool_fixed_in_use(fp), 2);
    mpool_fixed_destroy(fp);
}

Test(fixed, parent_max_size_is_pool_full)
{
    mpool_t *parent = parent_pool(false, 2 * MiB);
    mpool_fixed_config_t cfg = mpool_fixed_config_default(1024);
    cfg.parent = parent;
    cfg.thread_safe = false;
    mpool_fixed_t *fp = fixed_or_die(&cfg);
    size_t n = 0;
    while (mpool_fixed_alloc(fp))
        n++;
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL);
    cr_assert_eq(mpool_fixed_in_use(fp), n);
    cr_assert_gt(n, 100);
    cr_assert_leq(mpool_get_usage(parent).total, 2 * MiB);
    mpool_fixed_destroy(fp);
    mpool_destroy(parent);
}

Test(fixed, parent_end_ends_its_fixed_pools)
{
    for (int ts = 0; ts < 2; ts++) {
        mpool_t *parent = parent_pool(true, 0);
        mpool_fixed_config_t cfg = mpool_fixed_config_default(100);
        cfg.parent = parent;
        cfg.thread_safe = ts;
        mpool_fixed_t *a = fixed_or_die(&cfg), *b = fixed_or_die(&cfg);
        cr_assert_not_null(mpool_fixed_alloc(a));
        cr_assert_not_null(mpool_fixed_alloc(b));
        mpool_reset(parent); /* a and b end with the parent's blocks */
        cfg.initial_count = 10;
        mpool_fixed_t *c = fixed_or_die(&cfg);
        cr_assert_not_null(mpool_fixed_alloc(c));
        cr_assert_eq(mpool_fixed_in_use(c), 1);
        mpool_destroy(parent); /* c ends with it */
    }
}

/* ---- Misuse -------------------------------------------------------------- */

/* A pool whose logger records into l, with some live patterned objects. */
struct misuse {
    mpool_fixed_t *fp;
    struct log l;
    void *live[20];
};

static void misuse_setup(struct misuse *m, bool thread_safe, size_t size)
{
    memset(m, 0, sizeof *m);
    mpool_fixed_config_t cfg = mpool_fixed_config_default(size);
    cfg.initial_count = 16; /* the live objects span two chunks */
    cfg.thread_safe = thread_safe;
    cfg.on_error = MPOOL_ON_ERROR_LOG;
    cfg.logger = log_fn;
    cfg.logger_arg = &m->l;
    m->fp = fixed_or_die(&cfg);
    for (int i = 0; i < 20; i++) {
        m->live[i] = mpool_fixed_alloc(m->fp);
        cr_assert_not_null(m->live[i]);
        pattern_fill(m->live[i], 500 + (uint64_t)i, size);
    }
}

/* The free of p must be reported as an invalid pointer (message containing
 * `says`) and change nothing. */
static void expect_refused(struct misuse *m, void *p, const char *says, size_t size)
{
    int before = m->l.calls;
    size_t in_use = mpool_fixed_in_use(m->fp), cap = mpool_fixed_capacity(m->fp);
    errno = 0;
    mpool_fixed_free(m->fp, p);
    cr_assert_eq(m->l.calls, before + 1, "free(%p) not reported", p);
    cr_assert_eq(m->l.last, MPOOL_ERR_INVALID_POINTER);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    cr_assert_eq(errno, EINVAL);
    cr_assert(strstr(m->l.text, says), "message '%s' lacks '%s'", m->l.text, says);
    cr_assert_eq(mpool_fixed_in_use(m->fp), in_use, "in_use changed");
    cr_assert_eq(mpool_fixed_capacity(m->fp), cap);
    for (int i = 0; i < 20; i++)
        if (m->live[i])
            cr_assert(pattern_ok(m->live[i], 500 + (uint64_t)i, size), "live object %d changed", i);
}

/* After misuse the pool still hands out each object once. */
static void expect_sound(struct misuse *m)
{
    void *fresh[64];
    size_t n = mpool_fixed_alloc_batch(m->fp, fresh, 64);
    cr_assert_eq(n, 64);
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < 20; j++)
            cr_assert_neq(fresh[i], m->live[j], "a live object handed out again");
        for (size_t k = 0; k < i; k++)
            cr_assert_neq(fresh[i], fresh[k], "an object handed out twice");
    }
    mpool_fixed_free_batch(m->fp, fresh, n);
}

Test(fixed, misuse_is_reported_and_changes_nothing)
{
    for (int ts = 0; ts < 2; ts++) {
        size_t size = 48;
        struct misuse m;
        misuse_setup(&m, ts, size);

        /* double free, in the chunk allocation takes from and in the other */
        void *first = m.live[0], *last = m.live[19];
        mpool_fixed_free(m.fp, first);
        m.live[0] = NULL;
        expect_refused(&m, first, "double free", size);
        mpool_fixed_free(m.fp, last);
        m.live[19] = NULL;
        expect_refused(&m, last, "double free", size);

        /* interior pointers */
        expect_refused(&m, (char *)m.live[3] + 1, "invalid pointer", size);
        expect_refused(&m, (char *)m.live[3] + 8, "invalid pointer", size);
        expect_refused(&m, (char *)m.live[17] + size - 1, "invalid pointer", size);

        /* an object of another fixed pool of the same size and parent */
        mpool_fixed_config_t cfg = mpool_fixed_config_default(size);
        cfg.thread_safe = ts;
        mpool_fixed_t *other = fixed_or_die(&cfg);
        void *theirs = mpool_fixed_alloc(other);
        expect_refused(&m, theirs, "invalid pointer", size);
        cr_assert(mpool_fixed_owns(other, theirs), "the other pool's object is still live");
        cr_assert_not(mpool_fixed_owns(m.fp, theirs));
        mpool_fixed_free(other, theirs);

        /* a block of the parent, small and large */
        void *small = mpool_alloc(NULL, size), *large = mpool_alloc(NULL, 600 * KiB);
        expect_refused(&m, small, "invalid pointer", size);
        expect_refused(&m, large, "invalid pointer", size);
        expect_refused(&m, (char *)large + 4096, "invalid pointer", size);
        cr_assert(mpool_owns(NULL, small) && mpool_owns(NULL, large));
        mpool_free(NULL, small);
        mpool_free(NULL, large);

        /* foreign pointers: the stack, malloc, a wild address */
        int local;
        void *heap = malloc(64);
        expect_refused(&m, &local, "invalid pointer", size);
        expect_refused(&m, heap, "invalid pointer", size);
        expect_refused(&m, (void *)(uintptr_t)0x1000, "invalid pointer", size);
        expect_refused(&m, (void *)~(uintptr_t)0xfff, "invalid pointer", size);
        free(heap);

        /* objects of a destroyed pool, and of a pool grown and reset */
        mpool_fixed_destroy(other);
        expect_refused(&m, theirs, "invalid pointer", size);
        expect_sound(&m);
        cr_assert_eq(mpool_fixed_in_use(m.fp), 18);
        mpool_fixed_reset(m.fp); /* the second chunk goes back, the first is cleared */
        expect_refused(&m, m.live[19 - 1], "invalid pointer", size);
        expect_refused(&m, m.live[1], "double free", size);
        memset(m.live, 0, sizeof m.live);
        expect_sound(&m);
        cr_assert_eq(mpool_fixed_in_use(m.fp), 0);
        mpool_fixed_destroy(m.fp);
    }
}


Test(fixed, owns_is_exact)
{
    mpool_fixed_config_t cfg = mpool_fixed_config_default(24);
    cfg.thread_safe = false;
    mpool_fixed_t *fp = fixed_or_die(&cfg);
    char *p = mpool_fixed_alloc(fp);
    cr_assert(mpool_fixed_owns(fp, p));
    for (int off = 1; off < 24; off++)
        cr_assert_not(mpool_fixed_owns(fp, p + off));
    cr_assert_not(mpool_fixed_owns(fp, NULL));
    char *q = mpool_fixed_alloc(fp);
    cr_assert_eq(q - p, 24, "objects follow each other at the stride");
    mpool_fixed_free(fp, p);
    cr_assert_not(mpool_fixed_owns(fp, p));
    cr_assert(mpool_fixed_owns(fp, q));
    cr_assert_not(mpool_fixed_owns(fp, q + 24), "never handed out");
    mpool_fixed_destroy(fp);
}

/* ---- Randomized model test ------------------------------------------------- */

#define MODEL_POOLS 5
#define MODEL_MAX 3000

struct model_pool {
    mpool_fixed_t *fp;
    size_t size, max_count;
    void *obj[MODEL_MAX];
    uint64_t id[MODEL_MAX];
    size_t n;
    void *freed[64]; /* recently freed objects: must be refused */
    size_t nfreed;
};

static void model_check(struct model_pool *m)
{
    cr_assert_eq(mpool_fixed_in_use(m->fp), m->n);
    if (m->max_count)
        cr_assert_leq(mpool_fixed_capacity(m->fp), m->max_count);
    cr_assert_geq(mpool_fixed_capacity(m->fp), m->n);
    for (size_t i = 0; i < m->n; i++) {
        cr_assert(mpool_fixed_owns(m->fp, m->obj[i]));
        cr_assert(pattern_ok(m->obj[i], m->id[i], m->size), "object %p (id %llu) changed", m->obj[i],
                  (unsigned long long)m->id[i]);
    }
}

static void model_note_freed(struct model_pool *m, void *p)
{
    m->freed[m->nfreed++ % 64] = p;
}

/* True if p is live in the model (a freed object may have come back). */
static bool model_has(const struct model_pool *m, const void *p)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->obj[i] == p)
            return true;
    return false;
}

Test(fixed, randomized_model)
{
    rng_t r;
    uint64_t seed = test_seed(0xF1CED0B1EC75ULL);
    rng_seed(&r, seed);
    size_t steps = test_scaled(60000, 3000) / DIVISOR;
    static struct model_pool pools[MODEL_POOLS];
    static const size_t sizes[MODEL_POOLS] = {8, 24, 100, 512, 3000};
    uint64_t next_id = 1;
    for (int k = 0; k < MODEL_POOLS; k++) {
        struct model_pool *m = &pools[k];
        memset(m, 0, sizeof *m);
        mpool_fixed_config_t cfg = mpool_fixed_config_default(sizes[k]);
        cfg.thread_safe = k % 2;
        cfg.initial_count = (size_t)rng_range(&r, 0, 40);
        cfg.growth_factor = 1.0 + (double)rng_below(&r, 200) / 100.0;
        cfg.max_count = k == 2 ? 700 : 0;
        if (cfg.max_count && cfg.initial_count > cfg.max_count)
            cfg.initial_count = cfg.max_count;
        cfg.alignment = k == 3 ? 64 : 0;
        m->fp = fixed_or_die(&cfg);
        m->size = sizes[k];
        m->max_count = cfg.max_count;
    }
    for (size_t step = 0; step < steps; step++) {
        struct model_pool *m = &pools[rng_below(&r, MODEL_POOLS)];
        unsigned op = (unsigned)rng_below(&r, 100);
        if (op < 45) { /* one allocation */
            if (m->n == MODEL_MAX)
                continue;
            void *p = mpool_fixed_alloc(m->fp);
            if (!p) {
                cr_assert(m->max_count && m->n == m->max_count, "step %zu: alloc failed (seed %llu)", step,
                          (unsigned long long)seed);
                cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL);
                continue;
            }
            cr_assert_not(model_has(m, p), "step %zu: a live object handed out again", step);
            m->obj[m->n] = p;
            m->id[m->n] = next_id++;
            pattern_fill(p, m->id[m->n], m->size);
            m->n++;
        } else if (op < 80) { /* one free */
            if (!m->n)
                continue;
            size_t i = (size_t)rng_below(&r, m->n);
            void *p = m->obj[i];
            mpool_fixed_free(m->fp, p);
            model_note_freed(m, p);
            m->obj[i] = m->obj[--m->n];
            m->id[i] = m->id[m->n];
        } else if (op < 85) { /* a batch */
            void *got[100];
            size_t want = (size_t)rng_range(&r, 1, 100);
            if (m->n + want > MODEL_MAX)
                continue;
            size_t n = mpool_fixed_alloc_batch(m->fp, got, want);
            if (n < want)
                cr_assert(m->max_count && m->n + n == m->max_count, "step %zu: batch short", step);
            for (size_t j = 0; j < n; j++) {
                cr_assert_not(model_has(m, got[j]));
                m->obj[m->n] = got[j];
                m->id[m->n] = next_id++;
                pattern_fill(got[j], m->id[m->n], m->size);
                m->n++;
            }
        } else if (op < 90) { /* a batch of frees */
            size_t n = m->n < 50 ? m->n : 50;
            void *batch[50];
            for (size_t j = 0; j < n; j++) {
                batch[j] = m->obj[m->n - 1 - j];
                model_note_freed(m, batch[j]);
            }
            mpool_fixed_free_batch(m->fp, batch, n);
            m->n -= n;
        } else if (op < 96) { /* misuse: refused, nothing changes */
            void *p = NULL;
            if (op < 93 && m->nfreed) {
                p = m->freed[rng_below(&r, m->nfreed < 64 ? m->nfreed : 64)];
                if (model_has(m, p))
                    continue; /* handed out again since */
            } else if (m->n) {
                p = (char *)m->obj[rng_below(&r, m->n)] + rng_range(&r, 1, m->size - 1 ? m->size - 1 : 1);
            } else {
                continue;
            }
            size_t before = mpool_fixed_in_use(m->fp);
            mpool_fixed_free(m->fp, p);
            cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER, "step %zu: misuse not reported", step);
            cr_assert_eq(mpool_fixed_in_use(m->fp), before);
        } else if (op < 97) { /* reset */
            mpool_fixed_reset(m->fp);
            m->n = 0;
            m->nfreed = 0;
        } else {
            model_check(m);
        }
    }
    for (int k = 0; k < MODEL_POOLS; k++) {
        model_check(&pools[k]);
        mpool_fixed_destroy(pools[k].fp);
    }
}

/* ---- Threads ----------------------------------------------------------------- */

#define XTHREADS 4
#define RING 256

/* A ring per thread: others push objects into it, the owner frees them. */
struct ring {
    pthread_mutex_t lock;
    void *slot[RING];
    uint64_t id[RING];
    size_t head, count;
};

struct xshared {
    mpool_fixed_t *fp;
    size_t size, rounds;
    struct ring ring[XTHREADS];
    atomic_int failures;
    char why[200];
};

struct xarg {
    struct xshared *s;
    int me;
};

static void xfail(struct xshared *s, const char *why)
{
    if (atomic_fetch_add(&s->failures, 1) == 0)
        snprintf(s->why, sizeof s->why, "%s", why);
}

static bool ring_push(struct ring *r, void *p, uint64_t id)
{
    pthread_mutex_lock(&r->lock);
    bool ok = r->count < RING;
    if (ok) {
        size_t i = (r->head + r->count++) % RING;
        r->slot[i] = p;
        r->id[i] = id;
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}

static bool ring_pop(struct ring *r, void **p, uint64_t *id)
{
    pthread_mutex_lock(&r->lock);
    bool ok = r->count > 0;
    if (ok) {
        *p = r->slot[r->head];
        *id = r->id[r->head];
        r->head = (r->head + 1) % RING;
        r->count--;
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}

static void *xworker(void *arg)
{
    struct xarg *a = arg;
    struct xshared *s = a->s;
    rng_t r;
    rng_seed(&r, 77 + (uint64_t)a->me);
    void *mine[64];
    uint64_t ids[64];
    size_t n = 0;
    for (size_t round = 0; round < s->rounds && !atomic_load(&s->failures); round++) {
        unsigned op = (unsigned)rng_below(&r, 10);
        if (op < 4 && n < 64) {
            void *p = mpool_fixed_alloc(s->fp);
            if (!p) {
                xfail(s, "alloc failed");
                break;
            }
            ids[n] = ((uint64_t)a->me << 40) | round;
            pattern_fill(p, ids[n], s->size);
            mine[n++] = p;
        } else if (op < 6 && n) { /* hand one to another thread, which frees it */
            int to = (a->me + 1 + (int)rng_below(&r, XTHREADS - 1)) % XTHREADS;
            if (ring_push(&s->ring[to], mine[n - 1], ids[n - 1]))
                n--;
        } else if (op < 8 && n) {
            n--;
            if (!pattern_ok(mine[n], ids[n], s->size))
                xfail(s, "own object changed");
            mpool_fixed_free(s->fp, mine[n]);
        } else if (op == 8) {
            void *batch[16];
            size_t got = mpool_fixed_alloc_batch(s->fp, batch, 16);
            if (got != 16)
                xfail(s, "batch short");
            mpool_fixed_free_batch(s->fp, batch, got);
        } else {
            void *p;
            uint64_t id;
            while (ring_pop(&s->ring[a->me], &p, &id)) {
                if (!pattern_ok(p, id, s->size))
                    xfail(s, "handed object changed");
                if (!mpool_fixed_owns(s->fp, p))
                    xfail(s, "handed object not owned");
                mpool_fixed_free(s->fp, p); /* a cross-thread free */
            }
        }
    }
    while (n) {
        n--;
        mpool_fixed_free(s->fp, mine[n]);
    }
    return NULL;
}

Test(fixed, threads_free_each_others_objects)
{
    static const size_t sizes[] = {16, 72, 1000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        static struct xshared s;
        memset(&s, 0, sizeof s);
        mpool_fixed_config_t cfg = mpool_fixed_config_default(sizes[k]);
        cfg.initial_count = 32;
        s.fp = fixed_or_die(&cfg);
        s.size = sizes[k];
        s.rounds = test_scaled(40000, 2000) / DIVISOR;
        for (int i = 0; i < XTHREADS; i++)
            pthread_mutex_init(&s.ring[i].lock, NULL);
        pthread_t th[XTHREADS];
        struct xarg args[XTHREADS];
        for (int i = 0; i < XTHREADS; i++) {
            args[i] = (struct xarg){&s, i};
            cr_assert_eq(pthread_create(&th[i], NULL, xworker, &args[i]), 0);
        }
        for (int i = 0; i < XTHREADS; i++)
            pthread_join(th[i], NULL);
        cr_assert_eq(atomic_load(&s.failures), 0, "%s", s.why);
        /* what stayed in the rings is still live */
        size_t left = 0;
        for (int i = 0; i < XTHREADS; i++) {
            void *p;
            uint64_t id;
            while (ring_pop(&s.ring[i], &p, &id)) {
                cr_assert(pattern_ok(p, id, s.size));
                mpool_fixed_free(s.fp, p);
                left++;
            }
            pthread_mutex_destroy(&s.ring[i].lock);
        }
        cr_assert_eq(mpool_fixed_in_use(s.fp), 0, "every object came back (%zu from rings)", left);
        /* the exited threads' caches went back: the pool can hand out its whole capacity */
        size_t cap = mpool_fixed_capacity(s.fp);
        void **all = malloc(cap * sizeof *all);
        for (size_t i = 0; i < cap; i++)
            cr_assert_not_null(all[i] = mpool_fixed_alloc(s.fp));
        cr_assert_eq(mpool_fixed_capacity(s.fp), cap, "no growth: nothing was lost in caches");
        mpool_fixed_free_batch(s.fp, all, cap);
        free(all);
        mpool_fixed_destroy(s.fp);
    }
}

struct keeper {
    mpool_fixed_t *fp;
    atomic_int ready;
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
    bool *go;
};

/* Allocates and frees (so its cache holds objects), then waits for go. */
static void *keeper_thread(void *arg)
{
    struct keeper *k = arg;
    void *p[100];
    for (int i = 0; i < 100; i++)
        p[i] = mpool_fixed_alloc(k->fp);
    for (int i = 0; i < 100; i++)
        mpool_fixed_free(k->fp, p[i]);
    atomic_fetch_add(&k->ready, 1);
    pthread_mutex_lock(k->lock);
    while (!*k->go)
        pthread_cond_wait(k->cond, k->lock);
    pthread_mutex_unlock(k->lock);
    return NULL;
}

Test(fixed, pool_destroyed_while_threads_keep_caches)
{
    mpool_fixed_config_t cfg = mpool_fixed_config_default(32);
    mpool_fixed_t *fp = fixed_or_die(&cfg);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    bool go = false;
    struct keeper k = {fp, 0, &lock, &cond, &go};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, keeper_thread, &k), 0);
    while (atomic_load(&k.ready) < 3) /* every thread holds a cache with objects */
        sched_yield();
    cr_assert_eq(mpool_fixed_in_use(fp), 0);
    mpool_fixed_destroy(fp); /* the threads' caches are orphaned */
    mpool_fixed_t *again = fixed_or_die(&cfg);
    cr_assert_not_null(mpool_fixed_alloc(again));
    pthread_mutex_lock(&lock);
    go = true;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(mpool_fixed_in_use(again), 1);
    mpool_fixed_destroy(again);
}

/* ---- fork() ------------------------------------------------------------------------ */

static atomic_int fork_stop;

/* Churns a thread-safe fixed pool in runs longer than a cache (refills and
 * flushes under the pool's lock), and creates and destroys pools of its own
 * (the registry). */
static void *fork_churn(void *arg)
{
    mpool_fixed_t *fp = arg;
    void *p[600];
    unsigned round = 0;
    while (!atomic_load(&fork_stop)) {
        size_t n = 1 + (round * 97) % 600;
        for (size_t i = 0; i < n; i++)
            p[i] = mpool_fixed_alloc(fp);
        for (size_t i = 0; i < n; i++)
            mpool_fixed_free(fp, p[i]);
        if (round++ % 8 == 0) {
            mpool_fixed_config_t cfg = mpool_fixed_config_default(24);
            mpool_fixed_t *mine = mpool_fixed_create(&cfg);
            if (mine) {
                mpool_fixed_free(mine, mpool_fixed_alloc(mine));
                mpool_fixed_destroy(mine);
            }
        }
    }
    return NULL;
}

/* The child of fork_while_threads_use_fixed_pools: uses and destroys the
 * pool the threads were using, and a new one.  Exit status: 0 if all went
 * well, else the number of the step that failed (SIGALRM if it hung). */
static int fork_child(mpool_fixed_t *shared)
{
    alarm(20);
    enum { N = 1500 };
    static void *p[N];
    size_t before = mpool_fixed_in_use(shared);
    for (size_t i = 0; i < N; i++)
        if (!(p[i] = mpool_fixed_alloc(shared)))
            return 2;
    if (mpool_fixed_in_use(shared) != before + N)
        return 3;
    for (size_t i = 0; i < N; i++)
        if (!mpool_fixed_owns(shared, p[i]))
            return 4;
    for (size_t i = 0; i < N; i++)
        mpool_fixed_free(shared, p[i]);
    if (mpool_fixed_in_use(shared) != before)
        return 5;
    mpool_fixed_config_t cfg = mpool_fixed_config_default(40);
    mpool_fixed_t *fresh = mpool_fixed_create(&cfg);
    if (!fresh)
        return 6;
    for (size_t i = 0; i < N; i++)
        if (!(p[i] = mpool_fixed_alloc(fresh)))
            return 7;
    mpool_fixed_free_batch(fresh, p, N);
    if (mpool_fixed_in_use(fresh) != 0)
        return 8;
    mpool_fixed_destroy(fresh);
    mpool_fixed_destroy(shared);
    return mpool_check(NULL) == 0 ? 0 : 9;
}

Test(fixed, fork_while_threads_use_fixed_pools)
{
    mpool_fixed_config_t cfg = mpool_fixed_config_default(48);
    cfg.initial_count = 16;
    mpool_fixed_t *shared = fixed_or_die(&cfg);
    atomic_store(&fork_stop, 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, fork_churn, shared), 0);
    int rounds = test_scaled(40, 10);
    for (int round = 0; round < rounds; round++) {
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0)
            _exit(fork_child(shared));
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child of round %d: %s %d", round,
                  WIFEXITED(status) ? "failed at step" : "killed by signal",
                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
    atomic_store(&fork_stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(mpool_fixed_in_use(shared), 0);
    mpool_fixed_destroy(shared);
}

/* ---- Reports -------------------------------------------------------------------- */

struct text {
    char buf[64 * 1024];
    size_t len;
};

static void text_write(const char *s, size_t len, void *arg)
{
    struct text *t = arg;
    if (t->len + len < sizeof t->buf) {
        memcpy(t->buf + t->len, s, len);
        t->len += len;
        t->buf[t->len] = 0;
    }
}

Test(fixed, parent_report_lists_fixed_pools)
{
    mpool_t *parent = parent_pool(true, 0);
    static struct text t;
    t.len = 0;
    cr_assert(mpool_report(parent, MPOOL_REPORT_TEXT, text_write, &t));
    cr_assert_null(strstr(t.buf, "fixed-size pools"), "no section without fixed pools");
    mpool_fixed_config_t cfg = mpool_fixed_config_default(8192);
    cfg.parent = parent;
    cfg.initial_count = 1000;
    mpool_fixed_t *fp = fixed_or_die(&cfg);
    cfg.object_size = 24;
    cfg.initial_count = 64;
    cfg.thread_safe = false;
    mpool_fixed_t *small = fixed_or_die(&cfg);
    for (int i = 0; i < 800; i++)
        cr_assert_not_null(mpool_fixed_alloc(fp));
    for (int i = 0; i < 3; i++)
        cr_assert_not_null(mpool_fixed_alloc(small));
    t.len = 0;
    cr_assert(mpool_report(parent, MPOOL_REPORT_TEXT, text_write, &t));
    cr_assert(strstr(t.buf, "fixed-size pools"), "%s", t.buf);
    cr_assert(strstr(t.buf, "800/1000 objects (80.0%)"), "%s", t.buf);
    cr_assert(strstr(t.buf, "3/64 objects"), "%s", t.buf);
    cr_assert(strstr(t.buf, "8 KiB"), "%s", t.buf);
    t.len = 0;
    cr_assert(mpool_report(parent, MPOOL_REPORT_JSON, text_write, &t));
    cr_assert(strstr(t.buf, "\"fixed_pools\":[{\"object_size\":24,\"stride\":24,\"in_use\":3,\"capacity\":64,"),
              "%s", t.buf);
    cr_assert(strstr(t.buf, "{\"object_size\":8192,\"stride\":8192,\"in_use\":800,\"capacity\":1000,"), "%s",
              t.buf);
    mpool_fixed_destroy(small);
    mpool_fixed_destroy(fp);
    t.len = 0;
    cr_assert(mpool_report(parent, MPOOL_REPORT_JSON, text_write, &t));
    cr_assert(strstr(t.buf, "\"fixed_pools\":[],"), "%s", t.buf);
    mpool_destroy(parent);
}

Test(fixed, misuse_counts_in_the_fixed_pool_not_the_parent)
{
    mpool_t *parent = parent_pool(true, 0);
    mpool_fixed_config_t cfg = mpool_fixed_config_default(16);
    cfg.parent = parent;
    cfg.max_count = 64;
    mpool_fixed_t *fp = fixed_or_die(&cfg);
    void *p = mpool_fixed_alloc(fp);
    mpool_fixed_free(fp, p);
    mpool_fixed_free(fp, p);
    void *all[65];
    cr_assert_eq(mpool_fixed_alloc_batch(fp, all, 65), 64);
    mpool_stats_t st;
    cr_assert(mpool_get_stats(parent, &st));
    cr_assert_eq(st.invalid_frees, 0, "the parent's error rate counts its own calls only");
    cr_assert_eq(st.alloc_failures, 0);
    static struct text t;
    t.len = 0;
    cr_assert(mpool_report(parent, MPOOL_REPORT_JSON, text_write, &t));
    cr_assert(strstr(t.buf, "\"failures\":1,\"invalid_frees\":1}"), "%s", t.buf);
    t.len = 0;
    cr_assert(mpool_report(parent, MPOOL_REPORT_TEXT, text_write, &t));
    cr_assert(strstr(t.buf, "(1 failed allocations, 1 invalid frees)"), "%s", t.buf);
    mpool_fixed_destroy(fp);
    mpool_destroy(parent);
}
