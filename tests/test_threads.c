/*
 * test_threads.c - multi-thread stress.
 *
 * - shared_pool_cross_thread_frees: several threads on one thread-safe pool
 *   allocate, reallocate and free small, medium, large (100 KiB) and huge
 *   (2 MiB) blocks with patterns, and hand blocks to each other through an
 *   exchange queue so that many blocks are freed by a thread that did not
 *   allocate them.
 * - private_pools_concurrently: every thread creates, uses, resets and
 *   destroys its own pools while the others do the same.
 * - default_pool_from_many_threads: the same traffic on the default pool via
 *   NULL.
 * - shared_pool_switched_to_thread_safe: a pool created unlocked and switched
 *   on with mpool_set_thread_safe before the threads start.
 * - capped_pool_fills_from_many_threads: threads race to fill a pool with a
 *   max_size; failures must be POOL_FULL and total never passes the cap.
 * - last_error_does_not_leak_between_threads.
 * While the shared-pool tests run, an observer thread calls mpool_check,
 * mpool_get_usage and mpool_trim concurrently.
 *
 * Worker threads never call cr_assert (the runner's asserts belong to the
 * test's main thread): they record their first failure, stop, and the main
 * thread asserts on it.  Iteration counts scale with MPOOL_TEST_SCALE and are
 * smaller under ThreadSanitizer.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mpool.h>

#include "testutil.h"


#ifdef UNDER_TSAN
#define BASE_DIVISOR 8
#else
#define BASE_DIVISOR 1
#endif

#define DEFAULT_SEED UINT64_C(0x7468726561647321)

static void setup(void)
{
    pattern_init();
}

TestSuite(threads, .init = setup, .timeout = 600);

/* ---- failure recording for worker threads ------------------------------- */

typedef struct worker {
    int index;
    pthread_t thread;
    mpool_t *pool;      /* pool given to calls (NULL: default pool) */
    mpool_t *real;      /* the pool blocks must belong to */
    uint64_t seed;
    size_t iterations;
    /* results */
    bool failed;
    unsigned fail_seq; /* order of the failure among all threads */
    char why[512];
    size_t allocs, frees, cross_frees, pushes, reallocs, larges, huges, rounds;
} worker_t;

static atomic_uint fail_counter;

static bool worker_fail(worker_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool worker_fail(worker_t *w, const char *fmt, ...)
{
    if (!w->failed) {
        char msg[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(w->why, sizeof w->why, "thread %d: %s", w->index, msg);
        w->failed = true;
        w->fail_seq = atomic_fetch_add(&fail_counter, 1);
    }
    return false;
}

#define WCHECK(w, cond, ...)                                                                   \
    do {                                                                                       \
        if (!(cond))                                                                           \
            return worker_fail((w), __VA_ARGS__);                                              \
    } while (0)

/* ---- blocks and the exchange queue --------------------------------------- */

typedef struct tblk {
    unsigned char *p;
    size_t size;
    uint64_t id;
} tblk_t;

#define XQ_CAP 2048
typedef struct xqueue {
    pthread_mutex_t mu;
    tblk_t items[XQ_CAP];
    size_t head, count;
} xqueue_t;

static void xq_init(xqueue_t *q)
{
    pthread_mutex_init(&q->mu, NULL);
    q->head = q->count = 0;
}

static bool xq_push(xqueue_t *q, tblk_t b)
{
    bool ok = false;
    pthread_mutex_lock(&q->mu);
    if (q->count < XQ_CAP) {
        q->items[(q->head + q->count) % XQ_CAP] = b;
        q->count++;
        ok = true;
    }
    pthread_mutex_unlock(&q->mu);
    return ok;
}

static bool xq_pop(xqueue_t *q, tblk_t *out)
{
    bool ok = false;
    pthread_mutex_lock(&q->mu);
    if (q->count > 0) {
        *out = q->items[q->head];
        q->head = (q->head + 1) % XQ_CAP;
        q->count--;
        ok = true;
    }
    pthread_mutex_unlock(&q->mu);
    return ok;
}

/* Block ids: thread index in the top bits, a counter below. */
static uint64_t make_id(const worker_t *w, uint64_t *counter)
{
    return (((uint64_t)w->index + 1) << 48) | ++*counter;
}

static size_t draw_thread_size(rng_t *r, worker_t *w)
{
    uint64_t x = rng_below(r, 1000);
    if (x < 700)
        return (size_t)rng_below(r, 257);
    if (x < 960)
        return (size_t)rng_logrange(r, 257, 32 * KiB);
    if (x < 996) {
        w->larges++;
        return 100 * KiB + (size_t)rng_below(r, 4096);
    }
    w->huges++;
    return 2 * MiB + (size_t)rng_below(r, 4096);
}

/* Checks a block that the thread just received from the pool. */
static bool check_new(worker_t *w, const void *p, size_t size, size_t align, const char *what)
{
    WCHECK(w, p != NULL, "%s(%zu) failed: %s", what, size, mpool_strerror(mpool_last_error()));
    WCHECK(w, is_aligned(p, align), "%s(%zu) = %p not aligned to %zu", what, size, p, align);
    size_t us = mpool_usable_size(w->pool, p);
    WCHECK(w, us >= size, "%s(%zu) = %p: usable_size %zu", what, size, p, us);
    WCHECK(w, mpool_owns(w->real, p), "%s(%zu) = %p not owned by the pool", what, size, p);
    WCHECK(w, mpool_owns(NULL, p), "%s(%zu) = %p not owned by any pool", what, size, p);
    return true;
}

static bool verify(worker_t *w, const tblk_t *b, const char *when)
{
    size_t bad = pattern_find_bad(b->p, b->id, b->size);
    WCHECK(w, bad == SIZE_MAX, "%s: block %p (id %" PRIx64 ", size %zu) corrupted at offset %zu",
           when, (void *)b->p, b->id, b->size, bad);
    return true;
}

/* Frees a block (verifying it first) in one of the ways the API allows. */
static bool free_block(worker_t *w, rng_t *r, const tblk_t *b, const char *when)
{
    if (!verify(w, b, when))
        return false;
    switch (rng_below(r, 3)) {
    case 0:
        mpool_free(w->pool, b->p);
        break;
    case 1:
        mpool_free(NULL, b->p);
        break;
    default:
        WCHECK(w, mpool_safe_free(w->pool, b->p), "%s: safe_free(%p) of a live block failed: %s",
               when, (void *)b->p, mpool_strerror(mpool_last_error()));
        break;
    }
    w->frees++;
    return true;
}

/* ---- shared pool with cross-thread frees --------------------------------- */

#define LOCAL_MAX 256

typedef struct shared_ctx {
    xqueue_t queue;
    atomic_int stop;    /* set when a thread fails, so that the others end early */
    atomic_int workers; /* workers still running */
} shared_ctx_t;

static shared_ctx_t shared;

static bool worker_body(worker_t *w)
{
    rng_t r;
    rng_seed(&r, w->seed);
    tblk_t local[LOCAL_MAX];
    size_t n = 0;
    uint64_t counter = 0;
    bool ok = true;

    for (size_t it = 0; it < w->iterations && ok; it++) {
        if ((it & 1023) == 0 && atomic_load(&shared.stop))
            break;
        uint64_t x = rng_below(&r, 100);
        if (n == 0 || (x < 45 && n < LOCAL_MAX)) {
            tblk_t b;
            b.size = draw_thread_size(&r, w);
            b.id = make_id(w, &counter);
            if (rng_below(&r, 10) == 0) {
                size_t each = b.size / 4;
                b.size = each * 4;
                b.p = mpool_calloc(w->pool, 4, each);
                if (!(ok = check_new(w, b.p, b.size, 16, "calloc")))
                    break;
                if (!bytes_all_zero(b.p, b.size)) {
                    ok = worker_fail(w, "calloc(4, %zu) = %p not zeroed", each, (void *)b.p);
                    break;
                }
            } else if (rng_below(&r, 10) == 0) {
                size_t align = (size_t)1 << rng_range(&r, 4, 12);
                b.p = mpool_alloc_aligned(w->pool, b.size, align);
                if (!(ok = check_new(w, b.p, b.size, align, "alloc_aligned")))
                    break;
            } else {
                b.p = mpool_alloc(w->pool, b.size);
                if (!(ok = check_new(w, b.p, b.size, 16, "alloc")))
                    break;
            }
            pattern_fill(b.p, b.id, b.size);
            local[n++] = b;
            w->allocs++;
        } else if (x < 75) {
            size_t i = (size_t)rng_below(&r, n);
            ok = free_block(w, &r, &local[i], "own free");
            local[i] = local[--n];
        } else if (x < 82) {
            size_t i = (size_t)rng_below(&r, n);
            tblk_t *b = &local[i];
            size_t ns = draw_thread_size(&r, w);
            if (ns == 0)
                ns = 1; /* realloc(p, 0) frees: not what this branch tests */
            if (!(ok = verify(w, b, "before realloc")))
                break;
            unsigned char *q = mpool_realloc(w->pool, b->p, ns);
            if (!(ok = check_new(w, q, ns, 16, "realloc")))
                break;
            size_t keep = b->size < ns ? b->size : ns;
            b->p = q;
            size_t bad = pattern_find_bad(q, b->id, keep);
            if (bad != SIZE_MAX) {
                ok = worker_fail(w, "realloc(%zu -> %zu) lost content at offset %zu", b->size, ns,
                                 bad);
                break;
            }
            pattern_fill_range(q, b->id, keep, ns);
            b->size = ns;
            w->reallocs++;
        } else if (x < 91) {
            /* hand a block to whichever thread pops it */
            size_t i = (size_t)rng_below(&r, n);
            if (xq_push(&shared.queue, local[i])) {
                local[i] = local[--n];
                w->pushes++;
            }
        } else {
            tblk_t b;
            if (xq_pop(&shared.queue, &b)) {
                if (!(ok = mpool_owns(w->real, b.p)))
                    worker_fail(w, "block %p from the queue is not live", (void *)b.p);
                else if ((ok = free_block(w, &r, &b, "cross-thread free")) &&
                         (b.id >> 48) != (uint64_t)w->index + 1)
                    w->cross_frees++;
            }
        }
    }
    /* free what is left (after a failure the blocks are left alone: their
     * state is unknown, and freeing them could hide the first failure) */
    for (size_t i = 0; i < n && ok; i++)
        ok = free_block(w, &r, &local[i], "final free");
    return ok;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    if (!worker_body(w))
        atomic_store(&shared.stop, 1);
    atomic_fetch_sub(&shared.workers, 1);
    return NULL;
}

/* Watches the pool while the workers run: mpool_check, usage snapshots and
 * mpool_trim must be safe and consistent under concurrent use. */
typedef struct observer {
    pthread_t thread;
    const mpool_t *real;
    mpool_t *trim_pool;
    size_t rounds;
    bool failed;
    char why[256];
} observer_t;

static void *observer_main(void *arg)
{
    observer_t *o = arg;
    while (atomic_load(&shared.workers) > 0 && !o->failed) {
        size_t problems = mpool_check(o->real);
        if (problems != 0) {
            snprintf(o->why, sizeof o->why, "concurrent mpool_check found %zu problems",
                     problems);
            o->failed = true;
        }
        mpool_usage_t u = mpool_get_usage(o->real);
        if (u.used > u.total || u.free != u.total - u.used) {
            snprintf(o->why, sizeof o->why,
                     "inconsistent usage snapshot: total %zu, used %zu, free %zu", u.total,
                     u.used, u.free);
            o->failed = true;
        }
        if (o->rounds % 8 == 0)
            mpool_trim(o->trim_pool);
        o->rounds++;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Fails the test with the first failure in time order, if any. */
static void report_first_failure(const worker_t *ws, int n)
{
    const worker_t *first = NULL;
    int failures = 0;
    for (int i = 0; i < n; i++) {
        if (ws[i].failed) {
            failures++;
            if (first == NULL || ws[i].fail_seq < first->fail_seq)
                first = &ws[i];
        }
    }
    cr_assert_null(first, "%d thread(s) failed; first: %s", failures, first ? first->why : "");
}

static void run_workers(worker_t *ws, int n, mpool_t *real)
{
    observer_t obs;
    memset(&obs, 0, sizeof obs);
    obs.real = real;
    obs.trim_pool = real;
    atomic_store(&shared.workers, n);
    for (int i = 0; i < n; i++)
        cr_assert_eq(pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]), 0);
    cr_assert_eq(pthread_create(&obs.thread, NULL, observer_main, &obs), 0);
    for (int i = 0; i < n; i++)
        cr_assert_eq(pthread_join(ws[i].thread, NULL), 0);
    cr_assert_eq(pthread_join(obs.thread, NULL), 0);
    report_first_failure(ws, n);
    cr_assert_not(obs.failed, "observer: %s", obs.why);
    cr_assert_gt(obs.rounds, 0, "the observer never ran");
}

/* Frees what is left in the exchange queue from the main thread. */
static size_t drain_queue(mpool_t *pool, mpool_t *real)
{
    size_t k = 0;
    tblk_t b;
    while (xq_pop(&shared.queue, &b)) {
        cr_assert(mpool_owns(real, b.p), "queued block %p not live", (void *)b.p);
        size_t bad = pattern_find_bad(b.p, b.id, b.size);
        cr_assert_eq(bad, SIZE_MAX, "queued block %p (size %zu) corrupted at offset %zu",
                     (void *)b.p, b.size, bad);
        cr_assert(mpool_safe_free(pool, b.p));
        k++;
    }
    return k;
}

static void run_shared_stress(mpool_t *pool, mpool_t *real, int nthreads, size_t base_iters)
{
    uint64_t seed = test_seed(DEFAULT_SEED);
    size_t iters = test_scaled(base_iters / BASE_DIVISOR, 2000);
    fprintf(stderr, "test_threads: seed=0x%" PRIx64 " threads=%d iterations=%zu\n", seed,
            nthreads, iters);
    xq_init(&shared.queue);
    atomic_store(&shared.stop, 0);
    worker_t ws[8];
    cr_assert_leq(nthreads, 8);
    memset(ws, 0, sizeof ws);
    for (int i = 0; i < nthreads; i++) {
        ws[i].index = i;
        ws[i].pool = pool;
        ws[i].real = real;
        ws[i].seed = seed + (uint64_t)i * UINT64_C(0x9E3779B97F4A7C15);
        ws[i].iterations = iters;
    }
    run_workers(ws, nthreads, real);
    drain_queue(pool, real);

    size_t allocs = 0, cross = 0, pushes = 0, reallocs = 0, larges = 0, huges = 0;
    for (int i = 0; i < nthreads; i++) {
        allocs += ws[i].allocs;
        cross += ws[i].cross_frees;
        pushes += ws[i].pushes;
        reallocs += ws[i].reallocs;
        larges += ws[i].larges;
        huges += ws[i].huges;
    }
    fprintf(stderr,
            "test_threads: allocs %zu, reallocs %zu, pushed %zu, cross-thread frees %zu, "
            "large %zu, huge %zu\n",
            allocs, reallocs, pushes, cross, larges, huges);
    cr_assert_gt(allocs, iters, "too few allocations: %zu", allocs);
    cr_assert_gt(cross, 100, "too few cross-thread frees: %zu", cross);
    cr_assert_gt(reallocs, 100);
    cr_assert_gt(larges, 10, "no large blocks were exercised");
    cr_assert_gt(huges, 0, "no huge blocks were exercised");

    size_t problems = mpool_check(real);
    cr_assert_eq(problems, 0, "mpool_check found %zu problems after the stress", problems);
    mpool_usage_t u = mpool_get_usage(real);
    cr_assert_eq(u.used, 0, "used %zu after every block was freed", u.used);
    cr_assert_geq(u.total, u.used);
}

Test(threads, shared_pool_cross_thread_frees)
{
    mpool_t *pool = mpool_create(NULL);
    cr_assert_not_null(pool);
    cr_assert(mpool_is_thread_safe(pool));
    run_shared_stress(pool, pool, 6, 150000);
    /* the pool still works from the main thread */
    void *p = mpool_alloc(pool, 100);
    cr_assert_not_null(p);
    mpool_free(pool, p);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(threads, shared_pool_switched_to_thread_safe)
{
    /* a pool created unlocked and switched on before the threads start */
    mpool_config_t c = mpool_config_default();
    c.thread_safe = false;
    c.initial_size = 64 * KiB;
    c.max_block_size = 256 * KiB;
    mpool_t *pool = mpool_create(&c);
    cr_assert_not_null(pool);
    mpool_set_thread_safe(pool, true);
    cr_assert(mpool_is_thread_safe(pool));
    run_shared_stress(pool, pool, 4, 60000);
    mpool_destroy(pool);
}

Test(threads, default_pool_from_many_threads)
{
    mpool_t *d = mpool_default();
    cr_assert_not_null(d);
    size_t used0 = mpool_get_usage(d).used;
    run_shared_stress(NULL, d, 4, 60000);
    cr_assert_eq(mpool_get_usage(d).used, used0);
}

/* ---- private pools created and destroyed concurrently --------------------- */

static bool private_pools_body(worker_t *w)
{
    rng_t r;
    rng_seed(&r, w->seed);
    uint64_t counter = 0;
    enum { NB = 200 };
    tblk_t blocks[NB];
    for (size_t round = 0; round < w->iterations; round++) {
        mpool_config_t c = mpool_config_default();
        c.thread_safe = (round & 1) != 0;
        c.alignment = (round % 3 == 0) ? 64 : 16;
        c.initial_size = (round % 4 == 0) ? 64 * KiB : MiB;
        if (round % 5 == 0)
            c.max_block_size = 64 * KiB;
        mpool_t *pool = mpool_create(&c);
        WCHECK(w, pool != NULL, "round %zu: mpool_create failed: %s", round,
               mpool_strerror(mpool_last_error()));
        w->pool = w->real = pool;
        size_t nb = (size_t)rng_range(&r, 20, NB);
        for (size_t i = 0; i < nb; i++) {
            tblk_t *b = &blocks[i];
            b->size = draw_thread_size(&r, w);
            if (b->size > MiB && rng_below(&r, 4) != 0)
                b->size = 1000; /* keep huge blocks rare here */
            b->id = make_id(w, &counter);
            b->p = mpool_alloc(pool, b->size);
            if (!check_new(w, b->p, b->size, c.alignment, "alloc"))
                return false;
            pattern_fill(b->p, b->id, b->size);
            w->allocs++;
        }
        for (size_t i = 0; i < nb; i++)
            if (!verify(w, &blocks[i], "private pool"))
                return false;
        size_t problems = mpool_check(pool);
        WCHECK(w, problems == 0, "round %zu: mpool_check found %zu problems", round, problems);
        /* lookups of foreign pointers while other threads map and unmap pools */
        int on_stack = 0;
        WCHECK(w, !mpool_owns(NULL, &on_stack), "round %zu: a stack address is owned", round);
        WCHECK(w, !mpool_safe_free(NULL, &on_stack), "round %zu: safe_free(stack) succeeded",
               round);
        WCHECK(w, mpool_last_error() == MPOOL_ERR_INVALID_POINTER,
               "round %zu: safe_free(stack) error %d", round, (int)mpool_last_error());
        WCHECK(w, !mpool_owns(NULL, blocks[0].p + 1), "round %zu: an interior pointer is owned",
               round);
        switch (round % 3) {
        case 0: /* free everything, then destroy */
            for (size_t i = 0; i < nb; i++)
                if (!free_block(w, &r, &blocks[i], "private free"))
                    return false;
            WCHECK(w, mpool_get_usage(pool).used == 0, "round %zu: used %zu after freeing all",
                   round, mpool_get_usage(pool).used);
            break;
        case 1: /* reset, reuse, destroy with live blocks */
            mpool_reset(pool);
            WCHECK(w, mpool_get_usage(pool).used == 0, "round %zu: used %zu after reset", round,
                   mpool_get_usage(pool).used);
            for (size_t i = 0; i < nb / 2; i++) {
                void *p = mpool_alloc(pool, blocks[i].size);
                if (!check_new(w, p, blocks[i].size, c.alignment, "alloc after reset"))
                    return false;
            }
            break;
        default: /* destroy with every block live */
            break;
        }
        problems = mpool_check(pool);
        WCHECK(w, problems == 0, "round %zu: mpool_check found %zu problems", round, problems);
        mpool_destroy(pool);
        w->rounds++;
    }
    return true;
}

static void *private_pools_main(void *arg)
{
    worker_t *w = arg;
    private_pools_body(w);
    return NULL;
}

Test(threads, private_pools_concurrently)
{
    enum { N = 8 };
    worker_t ws[N];
    memset(ws, 0, sizeof ws);
    uint64_t seed = test_seed(DEFAULT_SEED);
    size_t rounds = test_scaled(300 / BASE_DIVISOR, 10);
    for (int i = 0; i < N; i++) {
        ws[i].index = i;
        ws[i].seed = seed ^ ((uint64_t)i << 32);
        ws[i].iterations = rounds;
        cr_assert_eq(pthread_create(&ws[i].thread, NULL, private_pools_main, &ws[i]), 0);
    }
    for (int i = 0; i < N; i++)
        cr_assert_eq(pthread_join(ws[i].thread, NULL), 0);
    report_first_failure(ws, N);
    size_t pools = 0;
    for (int i = 0; i < N; i++)
        pools += ws[i].rounds;
    cr_assert_eq(pools, (size_t)N * rounds, "only %zu pools were created and destroyed", pools);
    /* the default pool was never touched and is healthy */
    cr_assert_eq(mpool_check(mpool_default()), 0);
}

/* ---- last error and pool creation from many threads at once ------------- */

typedef struct err_worker {
    pthread_t thread;
    int index;
    int mismatches;
    int iterations;
} err_worker_t;

static void *err_worker_main(void *arg)
{
    err_worker_t *e = arg;
    static const size_t bad_align[] = {3, 24, 0};
    for (int i = 0; i < e->iterations; i++) {
        int x;
        if ((i + e->index) % 2 == 0) {
            mpool_alloc_aligned(NULL, 8, bad_align[i % 3]);
            if (mpool_last_error() != MPOOL_ERR_INVALID_ALIGNMENT)
                e->mismatches++;
        } else {
            mpool_safe_free(NULL, &x);
            if (mpool_last_error() != MPOOL_ERR_INVALID_POINTER)
                e->mismatches++;
        }
        void *p = mpool_alloc(NULL, 32);
        if (p == NULL)
            e->mismatches++;
        mpool_free(NULL, p);
    }
    return NULL;
}

Test(threads, last_error_does_not_leak_between_threads)
{
    enum { N = 6 };
    err_worker_t es[N];
    memset(es, 0, sizeof es);
    int iters = (int)test_scaled(20000 / BASE_DIVISOR, 200);
    for (int i = 0; i < N; i++) {
        es[i].index = i;
        es[i].iterations = iters;
        cr_assert_eq(pthread_create(&es[i].thread, NULL, err_worker_main, &es[i]), 0);
    }
    for (int i = 0; i < N; i++)
        cr_assert_eq(pthread_join(es[i].thread, NULL), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(es[i].mismatches, 0, "thread %d saw %d foreign or missing errors", i,
                     es[i].mismatches);
    cr_assert_eq(mpool_get_usage(mpool_default()).used, 0);
}

/* ---- a capped pool filled from many threads at once ---------------------- */

typedef struct capped_ctx {
    mpool_t *pool;
    size_t max_size;
    atomic_size_t full_failures;
    atomic_size_t over_cap; /* times total was seen above max_size */
} capped_ctx_t;

static capped_ctx_t capped;

static bool capped_body(worker_t *w)
{
    rng_t r;
    rng_seed(&r, w->seed);
    tblk_t local[LOCAL_MAX];
    size_t n = 0;
    uint64_t counter = 0;
    for (size_t it = 0; it < w->iterations; it++) {
        if (n < LOCAL_MAX && rng_below(&r, 100) < 60) {
            tblk_t b;
            b.size = draw_thread_size(&r, w);
            if (rng_below(&r, 50) == 0)
                b.size = 1536 * KiB; /* huge under this pool's max_block_size */
            b.id = make_id(w, &counter);
            b.p = mpool_alloc(w->pool, b.size);
            if (b.p == NULL) {
                mpool_error_t e = mpool_last_error();
                WCHECK(w, e == MPOOL_ERR_POOL_FULL, "alloc(%zu) failed with %s, not pool full",
                       b.size, mpool_strerror(e));
                atomic_fetch_add(&capped.full_failures, 1);
            } else {
                if (!check_new(w, b.p, b.size, 16, "capped alloc"))
                    return false;
                pattern_fill(b.p, b.id, b.size);
                local[n++] = b;
                w->allocs++;
            }
        } else if (n > 0) {
            size_t i = (size_t)rng_below(&r, n);
            if (!free_block(w, &r, &local[i], "capped free"))
                return false;
            local[i] = local[--n];
        }
        if ((it & 63) == 0 && mpool_get_usage(w->pool).total > capped.max_size)
            atomic_fetch_add(&capped.over_cap, 1);
    }
    for (size_t i = 0; i < n; i++)
        if (!free_block(w, &r, &local[i], "capped final free"))
            return false;
    return true;
}

static void *capped_main(void *arg)
{
    worker_t *w = arg;
    capped_body(w);
    return NULL;
}

Test(threads, capped_pool_fills_from_many_threads)
{
    mpool_config_t c = mpool_config_default();
    c.initial_size = 256 * KiB;
    c.max_size = 24 * MiB;
    c.max_block_size = 256 * KiB;
    mpool_t *pool = mpool_create(&c);
    cr_assert_not_null(pool);
    capped.pool = pool;
    capped.max_size = c.max_size;
    atomic_store(&capped.full_failures, 0);
    atomic_store(&capped.over_cap, 0);
    enum { N = 4 };
    worker_t ws[N];
    memset(ws, 0, sizeof ws);
    uint64_t seed = test_seed(DEFAULT_SEED);
    size_t iters = test_scaled(40000 / BASE_DIVISOR, 1000);
    for (int i = 0; i < N; i++) {
        ws[i].index = i;
        ws[i].pool = ws[i].real = pool;
        ws[i].seed = seed * 31 + (uint64_t)i;
        ws[i].iterations = iters;
        cr_assert_eq(pthread_create(&ws[i].thread, NULL, capped_main, &ws[i]), 0);
    }
    for (int i = 0; i < N; i++)
        cr_assert_eq(pthread_join(ws[i].thread, NULL), 0);
    report_first_failure(ws, N);
    fprintf(stderr, "test_threads: capped pool: %zu pool-full failures\n",
            (size_t)atomic_load(&capped.full_failures));
    cr_assert_gt(atomic_load(&capped.full_failures), 0, "the 24 MiB pool never filled up");
    cr_assert_eq(atomic_load(&capped.over_cap), 0, "total went above max_size %zu times",
                 (size_t)atomic_load(&capped.over_cap));
    mpool_usage_t u = mpool_get_usage(pool);
    cr_assert_leq(u.total, c.max_size);
    cr_assert_eq(u.used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    /* the pool is whole again: a large block fits */
    void *p = mpool_alloc(pool, 200 * KiB);
    cr_assert_not_null(p, "capped pool unusable after the stress: %s",
                       mpool_strerror(mpool_last_error()));
    mpool_free(pool, p);
    mpool_destroy(pool);
}
