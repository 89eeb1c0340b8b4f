/*
 * test_large.c - large blocks (large.h, large.c): page runs between the
 * largest slab class (256 KiB) and 2 MiB, and the cache that keeps freed ones whole.
 * Internal structures are inspected through pool.h and region.h: a freed
 * block is cached (and no longer a block for any call), comes back for the
 * same length, respects alignment, the cache stays under its cap, and
 * mpool_trim, max_size, reset and destroy empty it.  Both a single-threaded
 * and a thread-safe pool are used.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <mpool.h>

#include "large.h"
#include "pool.h"
#include "region.h"
#include "testutil.h"

TestSuite(large);

static mpool_t *make_pool(bool thread_safe, size_t max_size)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.thread_safe = thread_safe;
    cfg.max_size = max_size;
    cfg.max_block_size = 2 * MiB;
    cfg.on_error = MPOOL_ON_ERROR_RETURN;
    return create_or_die(&cfg);
}

/* The head descriptor of the run holding p (any page of it). */
static struct page *run_of(const void *p)
{
    struct region *r = region_find(p);
    cr_assert_not_null(r, "%p is not in a region", p);
    struct page *pg = &r->pages[((uintptr_t)p - (uintptr_t)r) >> PAGE_SHIFT];
    return pg - page_back(pg) / sizeof(struct page);
}

static size_t pages_for(size_t size)
{
    return (size + PAGE_SIZE - 1) / PAGE_SIZE;
}

/* A freed large block is cached: no call accepts it any more, and a double
 * free is reported without changing anything. */
static void freed_block_is_cached_and_dead(bool thread_safe)
{
    mpool_t *pool = make_pool(thread_safe, 0);
    size_t size = 320 * KiB; /* above the largest slab class (256 KiB) */
    char *p = mpool_alloc(pool, size);
    cr_assert_not_null(p);
    struct page *head = run_of(p);
    cr_assert_eq(head->kind, PAGE_LARGE);
    cr_assert_eq(mpool_usable_size(pool, p), size);
    memset(p, 0x5a, size);
    mpool_free(pool, p);
    cr_assert(head->flags & PG_CACHED, "a freed 64 KiB block was not cached");
    cr_assert_eq(pool->large_cache.pages, pages_for(size));
    cr_assert_eq(head->kind, PAGE_LARGE, "a cached run is still an allocated run to the page allocator");
    cr_assert_not(mpool_owns(pool, p), "a cached block is owned");
    cr_assert_eq(mpool_usable_size(pool, p), 0);
    cr_assert_eq(mpool_get_usage(pool).used, 0, "a cached block counts as used");
    prime_error(MPOOL_ERR_INVALID_POINTER);
    mpool_free(pool, p);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER, "double free of a cached block not reported");
    prime_error(MPOOL_ERR_INVALID_POINTER);
    cr_assert_not(mpool_safe_free(pool, p));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    prime_error(MPOOL_ERR_INVALID_POINTER);
    cr_assert_null(mpool_realloc(pool, p, 2 * size), "realloc of a cached block succeeded");
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    cr_assert_eq(pool->large_cache.pages, pages_for(size), "a refused free changed the cache");
    cr_assert_eq(mpool_check(pool), 0);
    /* The same length comes back whole; calloc still zeroes it. */
    char *q = mpool_calloc(pool, 1, size);
    cr_assert_eq(q, p, "the cached run was not reused (%p, cached %p)", (void *)q, (void *)p);
    cr_assert_not(head->flags & PG_CACHED);
    cr_assert_eq(pool->large_cache.pages, 0);
    for (size_t i = 0; i < size; i++)
        if (q[i] != 0)
            cr_assert_fail("calloc from the cache: byte %zu is %d", i, q[i]);
    cr_assert(mpool_owns(pool, q));
    cr_assert_eq(mpool_get_usage(pool).used, size);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_free(pool, q);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(large, freed_block_is_cached_and_dead_unlocked)
{
    freed_block_is_cached_and_dead(false);
}

Test(large, freed_block_is_cached_and_dead_thread_safe)
{
    freed_block_is_cached_and_dead(true);
}

/* Every length of a large block, freed and asked for again, in both orders. */
Test(large, every_length_comes_back)
{
    mpool_t *pool = make_pool(false, 0);
    enum { FIRST = 65, LENGTHS = 72 }; /* 65 + ... + 71 = 476 pages: all fit in the cache */
    _Static_assert((FIRST + LENGTHS - 1) * (LENGTHS - FIRST) / 2 <= LARGE_CACHE_CAP_PAGES, "the lengths fit the cache");
    _Static_assert(FIRST * PAGE_SIZE - 100 > SLAB_MAX, "every length is above the slab limit");
    char *blocks[LENGTHS];
    for (size_t n = FIRST; n < LENGTHS; n++) {
        blocks[n] = mpool_alloc(pool, n * PAGE_SIZE);
        cr_assert_not_null(blocks[n]);
        cr_assert_eq(run_of(blocks[n])->npages, n);
    }
    for (size_t n = FIRST; n < LENGTHS; n++)
        mpool_free(pool, blocks[n]);
    cr_assert_eq(mpool_check(pool), 0);
    for (size_t n = LENGTHS; n-- > FIRST;) {
        char *p = mpool_alloc(pool, n * PAGE_SIZE - 100);
        cr_assert_eq(p, blocks[n], "%zu pages: got %p, the cached run is %p", n, (void *)p, (void *)blocks[n]);
        blocks[n] = p;
    }
    cr_assert_eq(pool->large_cache.pages, 0);
    cr_assert_eq(mpool_check(pool), 0);
    for (size_t n = FIRST; n < LENGTHS; n++)
        mpool_free(pool, blocks[n]);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* An aligned request takes a cached run only if it is aligned enough. */
Test(large, aligned_requests_respect_alignment)
{
    mpool_t *pool = make_pool(false, 0);
    size_t size = 320 * KiB;
    void *hold[6];
    for (int i = 0; i < 6; i++)
        hold[i] = mpool_alloc(pool, size);
    for (int i = 0; i < 6; i++)
        mpool_free(pool, hold[i]);
    cr_assert_eq(pool->large_cache.pages, 6 * pages_for(size));
    for (size_t align = PAGE_SIZE; align <= 512 * KiB; align *= 2) {
        void *p = mpool_alloc_aligned(pool, size, align);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % align, 0, "alignment %zu: got %p", align, p);
        cr_assert_eq(mpool_check(pool), 0);
        mpool_free(pool, p);
    }
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* The cache never holds more than its cap; the rest goes back to the buddies. */
Test(large, cache_stays_under_its_cap)
{
    mpool_t *pool = make_pool(false, 0);
    enum { N = 24 };
    void *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = mpool_alloc(pool, 1 * MiB);
        cr_assert_not_null(blocks[i]);
    }
    size_t free_pages_before = pool->buddy.free_pages;
    for (int i = 0; i < N; i++) {
        mpool_free(pool, blocks[i]);
        cr_assert_leq(pool->large_cache.pages, LARGE_CACHE_CAP_PAGES);
    }
    cr_assert_eq(pool->large_cache.pages, LARGE_CACHE_CAP_PAGES / 256 * 256);
    cr_assert_gt(pool->buddy.free_pages, free_pages_before, "nothing went back to the page allocator");
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* mpool_trim empties the cache and gives its memory back. */
Test(large, trim_empties_the_cache)
{
    mpool_t *pool = make_pool(true, 0);
    void *p = mpool_alloc(pool, 300 * KiB), *q = mpool_alloc(pool, 1 * MiB);
    cr_assert(p && q);
    mpool_free(pool, p);
    mpool_free(pool, q);
    cr_assert_gt(pool->large_cache.pages, 0);
    size_t held = mpool_get_usage(pool).total;
    mpool_trim(pool);
    cr_assert_eq(pool->large_cache.pages, 0, "trim left runs in the cache");
    cr_assert_lt(mpool_get_usage(pool).total, held, "trim gave nothing back");
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* Cached runs never make a pool with max_size refuse a request that fits:
 * the pool gives the cache back first (and reports POOL_FULL only when the
 * request cannot fit even then). */
Test(large, cache_gives_way_under_max_size)
{
    size_t max = 4 * MiB;
    mpool_t *pool = make_pool(false, max);
    void *blocks[64];
    size_t n = 0;
    while (n < 64 && (blocks[n] = mpool_alloc(pool, 300 * KiB)) != NULL)
        n++;
    cr_assert_gt(n, 2);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL);
    for (size_t i = 0; i < n; i++)
        mpool_free(pool, blocks[i]);
    cr_assert_gt(pool->large_cache.pages, 0);
    /* A length never cached, as large as the pool can hold. */
    void *big = mpool_alloc(pool, 1536 * KiB);
    cr_assert_not_null(big, "a request that fits was refused while the cache held %zu pages: %s",
                       pool->large_cache.pages, mpool_strerror(mpool_last_error()));
    cr_assert_leq(mpool_get_usage(pool).total, max);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_free(pool, big);
    mpool_destroy(pool);
}

/* reset forgets the cache; the pool then serves the same lengths again. */
Test(large, reset_forgets_the_cache)
{
    mpool_t *pool = make_pool(true, 0);
    void *p = mpool_alloc(pool, 320 * KiB);
    mpool_free(pool, p);
    cr_assert_gt(pool->large_cache.pages, 0);
    mpool_reset(pool);
    cr_assert_eq(pool->large_cache.pages, 0);
    cr_assert_eq(mpool_check(pool), 0);
    void *q = mpool_alloc(pool, 320 * KiB);
    cr_assert_not_null(q);
    cr_assert(mpool_owns(pool, q));
    cr_assert_eq(mpool_check(pool), 0);
    mpool_free(pool, q);
    mpool_destroy(pool);
}

/* realloc grows a large block in place while the pages after it are free,
 * and copies once they are taken; the contents stay either way. */
Test(large, realloc_grows_in_place_when_the_pages_after_are_free)
{
    mpool_t *pool = make_pool(false, 0);
    pattern_init();
    size_t size = 300 * KiB;
    char *p = mpool_alloc(pool, size);
    cr_assert_not_null(p);
    pattern_fill(p, 7, size);
    size_t in_place = 0;
    for (size_t grown = size + 75 * KiB; grown <= 2 * MiB - 64 * KiB; grown += grown / 4) {
        struct page *head = run_of(p);
        size_t before = pool->buddy.free_pages, old_pages = head->npages;
        char *q = mpool_realloc(pool, p, grown);
        cr_assert_not_null(q);
        cr_assert(pattern_ok(q, 7, size), "contents lost growing to %zu", grown);
        if (q == p) {
            in_place++;
            cr_assert_eq(run_of(q)->npages, pages_for(grown));
            cr_assert_eq(pool->buddy.free_pages, before - (pages_for(grown) - old_pages),
                         "growing in place took the wrong number of pages");
        }
        cr_assert_eq(mpool_usable_size(pool, q), pages_for(grown) * PAGE_SIZE);
        cr_assert_eq(mpool_get_usage(pool).used, pages_for(grown) * PAGE_SIZE);
        cr_assert_eq(mpool_check(pool), 0, "after growing to %zu", grown);
        p = q;
    }
    cr_assert_gt(in_place, 0, "no growth happened in place");
    mpool_free(pool, p);
    /* Now a block whose next page is another block's: growing it moves and
     * copies, the neighbour untouched.  Two 512 KiB runs (order 7, no tail)
     * cut from one larger run lie side by side. */
    enum { N = 8 };
    char *b[N];
    for (int k = 0; k < N; k++) {
        cr_assert_not_null(b[k] = mpool_alloc(pool, 512 * KiB));
        pattern_fill(b[k], 10 + (uint64_t)k, 512 * KiB);
    }
    int a = -1, nb = -1;
    for (int x = 0; x < N && a < 0; x++)
        for (int y = 0; y < N; y++)
            if (b[y] == b[x] + 512 * KiB) {
                a = x;
                nb = y;
                break;
            }
    cr_assert_geq(a, 0, "no two 512 KiB blocks side by side");
    char *q = mpool_realloc(pool, b[a], 600 * KiB);
    cr_assert_not_null(q);
    cr_assert_neq(q, b[a], "grew in place over the next block");
    cr_assert(pattern_ok(q, 10 + (uint64_t)a, 512 * KiB), "contents lost by a moving realloc");
    cr_assert(pattern_ok(b[nb], 10 + (uint64_t)nb, 512 * KiB), "the neighbour changed");
    b[a] = q;
    cr_assert_eq(mpool_check(pool), 0);
    for (int k = 0; k < N; k++)
        mpool_free(pool, b[k]);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}
