/*
 * test_tcache.c - per-thread caches (tcache.h, tcache.c) of thread-safe
 * pools, with the internal structures inspected through pool.h and tcache.h:
 * a freed block waits in the freeing thread's cache and is no block for any
 * call; free(a); free(a) is refused at once, and every other double free is
 * found before the block could be handed out twice;
 * lists stay within their bound; a thread's exit gives its blocks back;
 * destroy, reset, mode switches, trim and slot eviction leave nothing
 * dangling; usage does not count cached blocks; classes without room for
 * the mark are not cached.
 *
 * Runs under ThreadSanitizer too (make test: TSAN_TESTS).
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <mpool.h>

#include "pool.h"
#include "region.h"
#include "slab.h"
#include "tcache.h"
#include "testutil.h"

TestSuite(tcache);

static mpool_t *make_pool(void)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.thread_safe = true;
    cfg.on_error = MPOOL_ON_ERROR_RETURN;
    mpool_t *pool = create_or_die(&cfg);
    cr_assert(pool->tcache, "a thread-safe pool should cache");
    return pool;
}

static size_t caches_of(const mpool_t *pool)
{
    size_t n = 0;
    for (const struct tcache *tc = pool->tcaches; tc; tc = tc->next)
        n++;
    return n;
}

static unsigned class_of(const mpool_t *pool, size_t size)
{
    return pool->small_class[(size + 7) >> 3];
}

static void assert_refused(const char *what)
{
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER, "%s: last error %d", what, mpool_last_error());
}

Test(tcache, freed_block_waits_in_the_cache_and_is_dead)
{
    mpool_t *pool = make_pool();
    char *p = mpool_alloc(pool, 48);
    cr_assert_not_null(p);
    struct tcache *tc = tcache_mine(pool);
    cr_assert_not_null(tc, "the first allocation made no cache");
    cr_assert_eq(caches_of(pool), 1);
    cr_assert_eq(mpool_get_usage(pool).used, 48);
    memset(p, 0x77, 48);
    mpool_free(pool, p);
    unsigned cls = class_of(pool, 48);
    cr_assert_eq(tc->bin[cls].head, p, "the freed block is not on top of its list");
    cr_assert_eq(mpool_get_usage(pool).used, 0, "a cached block counts as used");
    cr_assert_not(mpool_owns(pool, p));
    cr_assert_eq(mpool_usable_size(pool, p), 0);
    prime_error(MPOOL_ERR_INVALID_POINTER);
    cr_assert_not(mpool_safe_free(pool, p));
    assert_refused("safe_free of a cached block");
    prime_error(MPOOL_ERR_INVALID_POINTER);
    cr_assert_null(mpool_realloc(pool, p, 100));
    assert_refused("realloc of a cached block");
    cr_assert_eq(mpool_check(pool), 0);
    char *q = mpool_alloc(pool, 48);
    cr_assert_eq(q, p, "the cached block was not reused first");
    cr_assert(mpool_owns(pool, q), "a block handed out again is not live");
    mpool_free(pool, q);
    mpool_destroy(pool);
}

/* Allocates n blocks of size and asserts that no two are the same; true if
 * one of the calls reported a double free (INVALID_POINTER). */
static bool alloc_distinct(mpool_t *pool, size_t size, void **out, size_t n)
{
    bool reported = false;
    for (size_t i = 0; i < n; i++) {
        prime_error(MPOOL_ERR_INVALID_POINTER);
        out[i] = mpool_alloc(pool, size);
        cr_assert_not_null(out[i]);
        reported |= mpool_last_error() == MPOOL_ERR_INVALID_POINTER;
        for (size_t j = 0; j < i; j++)
            cr_assert_neq(out[i], out[j], "blocks %zu and %zu are the same %p after a double free", i, j, out[i]);
    }
    return reported;
}

/* The free path compares with the list's head only: free(a); free(a) is
 * refused at once, and so is any double free that reaches the general path. */
Test(tcache, immediate_double_free_is_refused)
{
    mpool_t *pool = make_pool();
    unsigned cls = class_of(pool, 64);
    char *a = mpool_alloc(pool, 64);
    mpool_free(pool, a);
    struct tcache *tc = tcache_mine(pool);
    uint32_t count = tc->bin[cls].count;
    prime_error(MPOOL_ERR_INVALID_POINTER);
    mpool_free(pool, a);
    assert_refused("free(a); free(a)");
    cr_assert_eq(tc->bin[cls].count, count, "a refused free changed the list");
    prime_error(MPOOL_ERR_INVALID_POINTER);
    cr_assert_not(mpool_safe_free(pool, a));
    assert_refused("safe_free of a cached block");
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* free(a); free(b); free(a): a is on the list twice.  The list finds it when
 * it reaches a again (its mark is gone), reports the double free there and
 * hands out no block twice. */
Test(tcache, double_free_in_a_cache_is_found_before_reuse)
{
    mpool_t *pool = make_pool();
    size_t size = 64;
    char *a = mpool_alloc(pool, size), *b = mpool_alloc(pool, size);
    cr_assert(a && b);
    mpool_free(pool, a);
    mpool_free(pool, b);
    mpool_free(pool, a); /* not the head: taken, found later */
    enum { N = 8 };
    void *got[N];
    cr_assert(alloc_distinct(pool, size, got, N), "the double free of a was never reported");
    for (int i = 0; i < N; i++)
        mpool_free(pool, got[i]);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* The same found by a flush (mpool_trim gives the caller's lists back): the
 * list is dropped at the block pushed twice and the double free reported. */
Test(tcache, double_free_in_a_cache_is_found_by_a_flush)
{
    mpool_t *pool = make_pool();
    size_t size = 48;
    char *a = mpool_alloc(pool, size), *b = mpool_alloc(pool, size);
    cr_assert(a && b);
    mpool_free(pool, a);
    mpool_free(pool, b);
    mpool_free(pool, a);
    prime_error(MPOOL_ERR_INVALID_POINTER);
    mpool_trim(pool);
    assert_refused("a flush of a list holding a block twice");
    cr_assert_eq(tcache_mine(pool)->bin[class_of(pool, size)].count, 0);
    enum { N = 8 };
    void *got[N];
    alloc_distinct(pool, size, got, N); /* a, once on its slab's list, may come back once */
    for (int i = 0; i < N; i++)
        mpool_free(pool, got[i]);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* A block a flush gave back to its slab, freed again into a cache: it is on
 * a slab's list and a cache list.  Whichever hands it out first, the other
 * finds its mark wrong: reported, and it is never handed out twice. */
Test(tcache, double_free_of_a_flushed_block_is_found_before_reuse)
{
    mpool_t *pool = make_pool();
    size_t size = 80;
    unsigned cls = class_of(pool, size);
    char *keep = mpool_alloc(pool, size), *z = mpool_alloc(pool, size); /* keep holds the slab */
    mpool_free(pool, z);
    mpool_trim(pool); /* the caller's cache goes back to the slabs */
    cr_assert_eq(page_head(region_page_of(region_of(z), z))->kind, PAGE_SLAB);
    cr_assert_eq(tcache_mine(pool)->bin[cls].count, 0);
    prime_error(MPOOL_ERR_INVALID_POINTER);
    cr_assert_not(mpool_owns(pool, z), "a block on a slab's list is owned");
    mpool_free(pool, z); /* the second free: into the cache, unread */
    size_t n = 4 * slab_capacity(page_head(region_page_of(region_of(z), z)));
    void **got = calloc(n, sizeof *got);
    cr_assert(alloc_distinct(pool, size, got, n), "the double free of a flushed block was never reported");
    for (size_t i = 0; i < n; i++)
        cr_assert_neq(got[i], keep);
    for (size_t i = 0; i < n; i++)
        mpool_free(pool, got[i]);
    free(got);
    mpool_free(pool, keep);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(tcache, lists_stay_within_their_bound)
{
    mpool_t *pool = make_pool();
    static const size_t sizes[] = {16, 100, 512, 1024, 4000, 20000, 32768};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        enum { N = 300 };
        void *blocks[N];
        for (int i = 0; i < N; i++)
            cr_assert_not_null(blocks[i] = mpool_alloc(pool, sizes[s]));
        for (int i = 0; i < N; i++)
            mpool_free(pool, blocks[i]);
        struct tcache *tc = tcache_mine(pool);
        unsigned cls = sizes[s] <= SMALL_MAX ? class_of(pool, sizes[s]) : sizeclass_of(sizes[s]);
        struct tcache_bin *b = &tc->bin[cls];
        cr_assert_gt(b->max, 0);
        cr_assert_leq(b->max, TCACHE_BIN_MAX);
        cr_assert(b->max <= 2 || (size_t)b->max * pool->cls[cls].block_size <= TCACHE_BIN_BYTES,
                  "size %zu: %u blocks allowed", sizes[s], b->max);
        cr_assert_leq(b->count, b->max, "size %zu: %u blocks on a list of %u", sizes[s], b->count, b->max);
        size_t on_list = 0;
        for (void **f = b->head; f; f = *f)
            on_list++;
        cr_assert_eq(on_list, b->count, "size %zu: count %u, list %zu", sizes[s], b->count, on_list);
        cr_assert_eq(mpool_get_usage(pool).used, 0);
        cr_assert_eq(mpool_check(pool), 0);
    }
    /* mpool_trim empties the caller's cache. */
    mpool_trim(pool);
    struct tcache *tc = tcache_mine(pool);
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
        cr_assert_eq(tc->bin[cls].count, 0, "trim left blocks in list %u", cls);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* 8-byte blocks have no second word for the mark: that class is not cached. */
Test(tcache, eight_byte_class_is_not_cached)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.min_block_size = 8;
    cfg.alignment = 8;
    mpool_t *pool = create_or_die(&cfg);
    void *a = mpool_alloc(pool, 8), *b = mpool_alloc(pool, 8);
    cr_assert(a && b);
    cr_assert_eq(pool->cls[class_of(pool, 8)].block_size, 8);
    struct tcache *tc = tcache_mine(pool);
    cr_assert_not_null(tc);
    cr_assert_eq(tc->bin[class_of(pool, 8)].max, 0);
    mpool_free(pool, a);
    cr_assert_eq(tc->bin[class_of(pool, 8)].count, 0);
    prime_error(MPOOL_ERR_INVALID_POINTER);
    mpool_free(pool, a);
    assert_refused("double free of the last freed 8-byte block");
    cr_assert_eq(((char *)b)[0] = 1, 1); /* the neighbour is untouched and usable */
    mpool_free(pool, b);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* ---- threads ----------------------------------------------------------------- */

struct worker {
    mpool_t *pool;
    void **blocks; /* in: to free; out: allocated */
    size_t n;
    size_t size;
    pthread_barrier_t *go, *done;
    bool failed;
};

static void *alloc_free_exit(void *arg)
{
    struct worker *w = arg;
    for (size_t i = 0; i < w->n; i++) {
        w->blocks[i] = mpool_alloc(w->pool, w->size);
        if (!w->blocks[i])
            w->failed = true;
    }
    for (size_t i = 0; i < w->n; i += 2) /* half freed here: into this thread's cache */
        mpool_free(w->pool, w->blocks[i]);
    return NULL;
}

Test(tcache, a_thread_exit_gives_its_blocks_back)
{
    mpool_t *pool = make_pool();
    enum { T = 4, N = 200 };
    void *blocks[T][N];
    struct worker w[T];
    pthread_t tid[T];
    for (int t = 0; t < T; t++) {
        w[t] = (struct worker){pool, blocks[t], N, 24 + 40 * (size_t)t, NULL, NULL, false};
        cr_assert_eq(pthread_create(&tid[t], NULL, alloc_free_exit, &w[t]), 0);
    }
    for (int t = 0; t < T; t++) {
        pthread_join(tid[t], NULL);
        cr_assert_not(w[t].failed);
    }
    cr_assert_eq(caches_of(pool), 0, "exited threads left %zu caches", caches_of(pool));
    size_t live = 0;
    for (int t = 0; t < T; t++)
        live += (N / 2) * mpool_usable_size(pool, blocks[t][1]);
    cr_assert_eq(mpool_get_usage(pool).used, live);
    /* The blocks the threads freed are free (and marked), the others live: the
     * main thread frees those, and the exact free refuses the first kind. */
    for (int t = 0; t < T; t++) {
        prime_error(MPOOL_ERR_INVALID_POINTER);
        cr_assert_not(mpool_safe_free(pool, blocks[t][0]));
        assert_refused("safe_free of a block an exited thread freed");
        cr_assert_not(mpool_owns(pool, blocks[t][2]));
        for (size_t i = 1; i < N; i += 2)
            mpool_free(pool, blocks[t][i]);
    }
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

static void *use_then_wait(void *arg)
{
    struct worker *w = arg;
    void *p = mpool_alloc(w->pool, w->size);
    w->failed = !p;
    mpool_free(w->pool, p); /* a cache with a block in it */
    pthread_barrier_wait(w->go);   /* main destroys the pool */
    pthread_barrier_wait(w->done); /* main made a new pool in w->pool */
    for (int i = 0; i < 1000 && !w->failed; i++) {
        void *q = mpool_alloc(w->pool, w->size);
        w->failed = !q;
        mpool_free(w->pool, q);
    }
    return NULL;
}

/* A pool destroyed while another thread's cache holds its blocks: the cache is
 * orphaned, never touched again, and unmapped by its thread. */
Test(tcache, destroy_with_caches_in_other_threads)
{
    pthread_barrier_t go, done;
    pthread_barrier_init(&go, NULL, 2);
    pthread_barrier_init(&done, NULL, 2);
    struct worker w = {make_pool(), NULL, 0, 96, &go, &done, false};
    mpool_t *first = w.pool;
    pthread_t tid;
    cr_assert_eq(pthread_create(&tid, NULL, use_then_wait, &w), 0);
    pthread_barrier_wait(&go);
    cr_assert_eq(caches_of(first), 1);
    mpool_destroy(first);
    w.pool = make_pool();
    pthread_barrier_wait(&done);
    pthread_join(tid, NULL);
    cr_assert_not(w.failed);
    cr_assert_eq(caches_of(w.pool), 0);
    cr_assert_eq(mpool_get_usage(w.pool).used, 0);
    cr_assert_eq(mpool_check(w.pool), 0);
    mpool_destroy(w.pool);
    pthread_barrier_destroy(&go);
    pthread_barrier_destroy(&done);
}

/* More pools than a thread has slots: caches are evicted (flushed back) and
 * made again, and every block stays intact. */
Test(tcache, more_pools_than_slots)
{
    enum { P = 3 * TCACHE_SLOTS, N = 50 };
    mpool_t *pools[P];
    char *blocks[P][N];
    for (int i = 0; i < P; i++)
        pools[i] = make_pool();
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < P; i++)
            for (int k = 0; k < N; k++) {
                blocks[i][k] = mpool_alloc(pools[i], 32 + (size_t)k);
                cr_assert_not_null(blocks[i][k]);
                memset(blocks[i][k], i + k, 32);
            }
        for (int i = P; i-- > 0;)
            for (int k = 0; k < N; k++) {
                for (int b = 0; b < 32; b++)
                    if (blocks[i][k][b] != (char)(i + k))
                        cr_assert_fail("pool %d block %d changed", i, k);
                mpool_free(pools[i], blocks[i][k]);
            }
    }
    size_t caches = 0;
    for (int i = 0; i < P; i++) {
        caches += caches_of(pools[i]);
        cr_assert_eq(mpool_get_usage(pools[i]).used, 0);
        cr_assert_eq(mpool_check(pools[i]), 0);
    }
    cr_assert_leq(caches, TCACHE_SLOTS, "one thread holds %zu caches", caches);
    for (int i = 0; i < P; i++)
        mpool_destroy(pools[i]);
}

Test(tcache, reset_and_mode_switches_empty_the_caches)
{
    mpool_t *pool = make_pool();
    void *p = mpool_alloc(pool, 200);
    mpool_free(pool, p);
    struct tcache *tc = tcache_mine(pool);
    unsigned cls = class_of(pool, 200);
    cr_assert_gt(tc->bin[cls].count, 0); /* the block, and the rest of the refill */
    uint64_t key = pool->tc_key;
    mpool_reset(pool);
    cr_assert_eq(tc->bin[cls].count, 0, "reset left a block in a cache");
    cr_assert_neq(pool->tc_key, key, "reset kept the mark");
    cr_assert_eq(mpool_check(pool), 0);
    p = mpool_alloc(pool, 200);
    mpool_free(pool, p);
    cr_assert_gt(tc->bin[cls].count, 0);
    mpool_set_thread_safe(pool, false);
    cr_assert_not(pool->tcache);
    cr_assert_eq(tc->bin[cls].count, 0, "switching locking off left a block in a cache");
    cr_assert_eq(mpool_check(pool), 0);
    void *q = mpool_alloc(pool, 200);
    cr_assert(mpool_owns(pool, q));
    mpool_free(pool, q);
    mpool_set_thread_safe(pool, true);
    cr_assert(pool->tcache);
    q = mpool_alloc(pool, 200);
    cr_assert(mpool_owns(pool, q), "a block allocated after switching back is not live");
    mpool_free(pool, q);
    prime_error(MPOOL_ERR_INVALID_POINTER);
    mpool_free(pool, q);
    assert_refused("double free after switching back");
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

static void *free_all(void *arg)
{
    struct worker *w = arg;
    for (size_t i = 0; i < w->n; i++)
        mpool_free(w->pool, w->blocks[i]);
    for (size_t i = 0; i < w->n; i++) { /* and take them again from this thread's cache */
        w->blocks[i] = mpool_alloc(w->pool, w->size);
        w->failed |= !w->blocks[i];
    }
    return NULL;
}

/* Blocks allocated by one thread and freed by another go to the freeing
 * thread's cache, and are handed out from there. */
Test(tcache, cross_thread_frees)
{
    mpool_t *pool = make_pool();
    enum { N = 40 };
    void *blocks[N];
    for (int i = 0; i < N; i++)
        blocks[i] = mpool_alloc(pool, 128);
    struct worker w = {pool, blocks, N, 128, NULL, NULL, false};
    pthread_t tid;
    cr_assert_eq(pthread_create(&tid, NULL, free_all, &w), 0);
    pthread_join(tid, NULL);
    cr_assert_not(w.failed);
    for (int i = 0; i < N; i++) {
        cr_assert(mpool_owns(pool, blocks[i]));
        for (int j = 0; j < i; j++)
            cr_assert_neq(blocks[i], blocks[j]);
        mpool_free(pool, blocks[i]);
    }
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}
