/*
 * test_slab.c - slabs (slab.h, slab.c) seen through a single-threaded pool
 * (thread_safe = false, so the inline fast paths are used), with the
 * internal structures inspected through pool.h and region.h: which slab a
 * block comes from, slab geometry, return of empty slabs to the page
 * allocator, the partial list, double-free and interior-pointer detection,
 * LIFO reuse, and a long random run with no overlap.
 */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpool.h>

#include "pool.h"
#include "region.h"
#include "sizeclass.h"
#include "slab.h"
#include "testutil.h"

static void setup(void)
{
    pattern_init();
}

TestSuite(slab, .init = setup);

static mpool_t *make_pool_aligned(size_t alignment)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.thread_safe = false;
    cfg.alignment = alignment;
    cfg.min_block_size = alignment < 16 ? 8 : 16;
    mpool_t *pool = mpool_create(&cfg);
    cr_assert_not_null(pool, "mpool_create failed: %s", mpool_strerror(mpool_last_error()));
    cr_assert(pool->fast, "a single-threaded, non-debug pool should use the fast paths");
    return pool;
}

static mpool_t *make_pool(void)
{
    return make_pool_aligned(16);
}

/* Puts a known, different value in mpool_last_error(). */
static void reset_last_error(mpool_t *pool)
{
    cr_assert_null(mpool_alloc_aligned(pool, 8, 3));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ALIGNMENT);
}

/* The class a default pool uses for size (alignment 16, min block 16). */
static unsigned class_for(const mpool_t *pool, size_t size)
{
    size_t req = size < pool->min_block ? pool->min_block : size;
    return sizeclass_of(align_up(req, pool->align));
}

/* The slab holding block p. */
static struct page *slab_of(const void *p)
{
    struct region *r = region_find(p);
    cr_assert_not_null(r, "%p is not in a region", p);
    struct page *h = region_run_of(r, p);
    cr_assert_not_null(h, "%p is in a free page", p);
    cr_assert_eq(h->kind, PAGE_SLAB, "%p is not in a slab (kind %u)", p, h->kind);
    return h;
}

static size_t free_list_length(const struct page *pg)
{
    size_t n = 0;
    for (const void *f = pg->free; f; f = *(void *const *)f) {
        n++;
        cr_assert_leq(n, slab_capacity(pg), "free list longer than the slab");
    }
    return n;
}

static bool on_class_list(const mpool_t *pool, unsigned cls, const struct page *pg)
{
    for (const struct page *s = pool->cls[cls].slabs; s; s = s->cnext)
        if (s == pg)
            return true;
    return false;
}

static void assert_slab_geometry(const mpool_t *pool, const struct page *pg, unsigned cls)
{
    size_t bsize = sizeclass_size(cls);
    size_t pages = sizeclass_slab_pages(bsize);
    cr_assert_eq(pg->cls, cls, "slab class %u, expected %u", pg->cls, cls);
    cr_assert_eq(pg->block_size, bsize, "class %u: slab block size %u, expected %zu", cls,
                 pg->block_size, bsize);
    cr_assert_eq(pg->npages, pages, "class %u (%zu B): slab of %u pages, sizeclass_slab_pages %zu",
                 cls, bsize, pg->npages, pages);
    cr_assert_eq(slab_capacity(pg), (pages << PAGE_SHIFT) / bsize,
                 "class %u: capacity %zu, expected %zu", cls, slab_capacity(pg),
                 (pages << PAGE_SHIFT) / bsize);
    cr_assert_eq(pool->cls[cls].slab_pages, pages);
    cr_assert_eq(slab_check_one(pg), 0);
}

/* ---- one slab until full ------------------------------------------------- */

static void fill_one_slab(size_t size)
{
    mpool_t *pool = make_pool();
    unsigned cls = class_for(pool, size);
    char *p0 = mpool_alloc(pool, size);
    cr_assert_not_null(p0);
    struct page *a = slab_of(p0);
    assert_slab_geometry(pool, a, cls);
    cr_assert_eq(pool->current[cls], a, "the first block's slab is not current");
    cr_assert(a->flags & PG_CURRENT);
    cr_assert_eq(p0, (char *)page_start(a), "a new slab hands out its first block first");
    size_t cap = slab_capacity(a), bsize = a->block_size;
    for (size_t i = 1; i < cap; i++) {
        char *p = mpool_alloc(pool, size);
        cr_assert_not_null(p);
        cr_assert_eq(slab_of(p), a, "size %zu: block %zu of %zu came from another slab", size, i,
                     cap);
        cr_assert_eq(p, p0 + i * bsize, "size %zu: block %zu not handed out in address order",
                     size, i);
        cr_assert_eq(mpool_usable_size(pool, p), bsize);
    }
    cr_assert_null(a->free, "a slab that gave all its blocks still has a free list");
    cr_assert_eq(slab_live(a), cap);
    cr_assert_eq(a->used, 1, "the current slab counts nothing: used stays 1 (slab.h)");
    char *q = mpool_alloc(pool, size);
    cr_assert_not_null(q);
    struct page *b = slab_of(q);
    cr_assert_neq(b, a, "size %zu: the block after a full slab came from the same slab", size);
    assert_slab_geometry(pool, b, cls);
    cr_assert_eq(pool->current[cls], b);
    cr_assert_not(a->flags & PG_CURRENT, "a full retired slab is still marked current");
    cr_assert_eq(a->used, cap, "a retired full slab counts all its blocks");
    cr_assert_not(a->flags & PG_LISTED, "a full slab is on the partial list");
    cr_assert(on_class_list(pool, cls, a) && on_class_list(pool, cls, b));
    cr_assert_eq(mpool_get_usage(pool).used, (cap + 1) * bsize);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(slab, same_slab_until_full_then_new_slab)
{
    static const size_t sizes[] = {1, 16, 24, 48, 100, 128, 129, 700, 1000, 1024,
                                   1025, 4000, 4096, 10000, 20000, 32768};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        fill_one_slab(sizes[i]);
}

Test(slab, capacity_matches_sizeclass_for_every_class)
{
    mpool_t *pool = make_pool();
    size_t seen = 0;
    for (unsigned c = 0; c < CLASS_COUNT; c++) {
        size_t bsize = sizeclass_size(c);
        if (bsize < pool->min_block || bsize % pool->align != 0)
            continue; /* the pool never uses this class */
        void *p = mpool_alloc(pool, bsize);
        cr_assert_not_null(p);
        cr_assert_eq(class_for(pool, bsize), c);
        struct page *pg = slab_of(p);
        assert_slab_geometry(pool, pg, c);
        cr_assert_eq(mpool_usable_size(pool, p), bsize);
        seen++;
    }
    cr_assert_geq(seen, 70, "only %zu classes were reachable", seen);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* ---- returning empty slabs ------------------------------------------------ */

static void **fill_slab(mpool_t *pool, size_t size, struct page **slab, size_t *cap)
{
    void *first = mpool_alloc(pool, size);
    cr_assert_not_null(first);
    struct page *a = slab_of(first);
    cr_assert_eq(page_start(a), first, "the slab was not fresh");
    void **blocks = malloc(slab_capacity(a) * sizeof *blocks);
    cr_assert_not_null(blocks);
    blocks[0] = first;
    for (size_t i = 1; i < slab_capacity(a); i++) {
        blocks[i] = mpool_alloc(pool, size);
        cr_assert_eq(slab_of(blocks[i]), a);
    }
    *slab = a;
    *cap = slab_capacity(a);
    return blocks;
}

Test(slab, empty_noncurrent_slab_returns_pages)
{
    static const size_t sizes[] = {16, 200, 3000, 32768};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t size = sizes[si];
        mpool_t *pool = make_pool();
        unsigned cls = class_for(pool, size);
        struct page *a;
        size_t cap;
        void **blocks = fill_slab(pool, size, &a, &cap);
        void *other = mpool_alloc(pool, size); /* a new current slab */
        struct page *b = slab_of(other);
        cr_assert_neq(a, b);
        size_t slab_pages = a->npages;
        size_t free_before = pool->buddy.free_pages;
        size_t used_before = mpool_get_usage(pool).used;
        char *a_start = page_start(a);
        rng_t rng;
        rng_seed(&rng, test_seed(9) + si);
        for (size_t i = cap; i > 1; i--) { /* free in random order */
            size_t j = (size_t)rng_below(&rng, i);
            void *t = blocks[i - 1];
            blocks[i - 1] = blocks[j];
            blocks[j] = t;
        }
        for (size_t i = 0; i < cap; i++) {
            mpool_free(pool, blocks[i]);
            if (i + 1 < cap) {
                cr_assert_eq(pool->buddy.free_pages, free_before,
                             "size %zu: pages returned while the slab still has %zu live blocks",
                             size, cap - i - 1);
                cr_assert_eq(slab_live(a), cap - i - 1);
            }
        }
        cr_assert_eq(pool->buddy.free_pages, free_before + slab_pages,
                     "size %zu: emptying a slab of %zu pages gave back %zu pages", size,
                     slab_pages, pool->buddy.free_pages - free_before);
        cr_assert_null(region_run_of(region_find(a_start), a_start),
                       "the emptied slab's pages are still a run");
        cr_assert_not(on_class_list(pool, cls, a), "an emptied slab stays on its class list");
        for (const struct page *s = pool->cls[cls].partial; s; s = s->next)
            cr_assert_neq(s, a, "an emptied slab stays on the partial list");
        cr_assert_eq(mpool_get_usage(pool).used, used_before - cap * sizeclass_size(cls));
        cr_assert_not(mpool_owns(pool, blocks[0]));
        cr_assert(mpool_owns(pool, other));
        cr_assert_eq(mpool_check(pool), 0);
        free(blocks);
        mpool_destroy(pool);
    }
}

Test(slab, current_slab_is_kept_when_empty)
{
    mpool_t *pool = make_pool();
    void *p = mpool_alloc(pool, 64);
    struct page *a = slab_of(p);
    size_t free_before = pool->buddy.free_pages;
    mpool_free(pool, p);
    cr_assert_eq(pool->current[class_for(pool, 64)], a);
    cr_assert_eq(pool->buddy.free_pages, free_before, "the current slab was given back");
    cr_assert_eq(slab_live(a), 0);
    cr_assert_eq(mpool_alloc(pool, 64), p);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* ---- partial list ---------------------------------------------------------- */

Test(slab, full_slab_becomes_partial_after_one_free)
{
    mpool_t *pool = make_pool();
    size_t size = 256;
    unsigned cls = class_for(pool, size);
    struct page *a;
    size_t cap;
    void **blocks = fill_slab(pool, size, &a, &cap);
    void *b0 = mpool_alloc(pool, size);
    struct page *b = slab_of(b0);
    cr_assert_neq(a, b);
    cr_assert_null(pool->cls[cls].partial);
    void *x = blocks[cap / 2];
    mpool_free(pool, x);
    cr_assert(a->flags & PG_LISTED, "a full slab that got a block back is not listed");
    cr_assert_eq(pool->cls[cls].partial, a);
    cr_assert_eq(a->free, x);
    cr_assert_eq(slab_live(a), cap - 1);
    cr_assert_eq(mpool_check(pool), 0);
    /* Use up the current slab; the next block is x, from the partial slab. */
    size_t bcap = slab_capacity(b);
    for (size_t i = 1; i < bcap; i++)
        cr_assert_eq(slab_of(mpool_alloc(pool, size)), b);
    void *y = mpool_alloc(pool, size);
    cr_assert_eq(y, x, "the block freed into a full slab was not reused (got %p, want %p)", y, x);
    cr_assert_eq(pool->current[cls], a, "the partial slab did not become current");
    cr_assert_not(a->flags & PG_LISTED);
    cr_assert_null(pool->cls[cls].partial);
    cr_assert_eq(mpool_check(pool), 0);
    free(blocks);
    mpool_destroy(pool);
}

/* ---- double frees and bad pointers ----------------------------------------- */

Test(slab, double_free_of_last_freed_block_caught)
{
    mpool_t *pool = make_pool();
    char *a = mpool_alloc(pool, 40), *b = mpool_alloc(pool, 40), *c = mpool_alloc(pool, 40);
    cr_assert(a && b && c);
    struct page *s = slab_of(b);
    mpool_free(pool, b);
    size_t live = slab_live(s), nfree = free_list_length(s);
    reset_last_error(pool);
    mpool_free(pool, b);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER,
                 "double free of the last freed block: last error %d", mpool_last_error());
    cr_assert_eq(slab_live(s), live, "the double free changed the live count");
    cr_assert_eq(free_list_length(s), nfree, "the double free changed the free list");
    cr_assert_eq(mpool_check(pool), 0);
    char *d = mpool_alloc(pool, 40), *e = mpool_alloc(pool, 40), *f = mpool_alloc(pool, 40);
    cr_assert_eq(d, b, "LIFO reuse after a rejected double free");
    const char *ps[] = {a, c, d, e, f};
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < i; j++)
            cr_assert_neq(ps[i], ps[j], "blocks %d and %d are the same %p after a double free", i,
                          j, (const void *)ps[i]);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(slab, double_free_into_full_and_lone_slabs_caught)
{
    mpool_t *pool = make_pool();
    /* A block freed into a full (retired) slab, then freed again. */
    struct page *a;
    size_t cap;
    void **blocks = fill_slab(pool, 512, &a, &cap);
    void *other = mpool_alloc(pool, 512);
    cr_assert_neq(slab_of(other), a);
    mpool_free(pool, blocks[3]);
    reset_last_error(pool);
    mpool_free(pool, blocks[3]);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    cr_assert_eq(slab_live(a), cap - 1);
    cr_assert_eq(mpool_check(pool), 0);
    /* The only block of the current slab, freed twice. */
    void *lone = mpool_alloc(pool, 2000);
    struct page *s = slab_of(lone);
    mpool_free(pool, lone);
    reset_last_error(pool);
    mpool_free(pool, lone);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    cr_assert_eq(slab_live(s), 0);
    cr_assert_eq(free_list_length(s), slab_capacity(s));
    cr_assert_eq(mpool_check(pool), 0);
    void *p1 = mpool_alloc(pool, 2000), *p2 = mpool_alloc(pool, 2000);
    cr_assert_eq(p1, lone);
    cr_assert_neq(p1, p2);
    free(blocks);
    mpool_destroy(pool);
}

Test(slab, safe_free_catches_double_free_not_at_head)
{
    mpool_t *pool = make_pool();
    void *a = mpool_alloc(pool, 96), *b = mpool_alloc(pool, 96), *c = mpool_alloc(pool, 96);
    struct page *s = slab_of(a);
    cr_assert(mpool_safe_free(pool, a));
    cr_assert(mpool_safe_free(pool, b)); /* b is now the head of the free list, a behind it */
    cr_assert_eq(s->free, b);
    size_t live = slab_live(s), nfree = free_list_length(s);
    reset_last_error(pool);
    cr_assert_not(mpool_safe_free(pool, a), "safe_free accepted a freed block behind the head");
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    reset_last_error(pool);
    cr_assert_not(mpool_safe_free(pool, b), "safe_free accepted the freed head");
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    cr_assert_eq(slab_live(s), live);
    cr_assert_eq(free_list_length(s), nfree);
    cr_assert_eq(s->free, b);
    cr_assert_not(mpool_owns(pool, a));
    cr_assert_eq(mpool_usable_size(pool, a), 0);
    cr_assert(mpool_owns(pool, c));
    cr_assert_eq(mpool_check(pool), 0);
    void *x = mpool_alloc(pool, 96), *y = mpool_alloc(pool, 96), *z = mpool_alloc(pool, 96);
    cr_assert_eq(x, b);
    cr_assert_eq(y, a);
    cr_assert(z != a && z != b && z != c);
    cr_assert(mpool_safe_free(pool, c));
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(slab, safe_free_rejects_interior_and_tail_pointers)
{
    mpool_t *pool = make_pool();
    /* 48-byte blocks: a 4-page slab holds 341 of them and 16 spare bytes at the end. */
    char *p = mpool_alloc(pool, 48);
    struct page *s = slab_of(p);
    cr_assert_eq(s->block_size, 48);
    size_t live = slab_live(s);
    static const size_t offs[] = {1, 8, 16, 47};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        reset_last_error(pool);
        cr_assert_not(mpool_safe_free(pool, p + offs[i]), "safe_free(p + %zu) accepted",
                      offs[i]);
        cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
        cr_assert_not(mpool_owns(pool, p + offs[i]));
        cr_assert_eq(mpool_usable_size(pool, p + offs[i]), 0);
    }
    char *tail = (char *)page_start(s) + (size_t)slab_capacity(s) * s->block_size;
    cr_assert_lt((size_t)(tail - (char *)page_start(s)), (size_t)s->npages << PAGE_SHIFT,
                 "this class has no tail to test");
    reset_last_error(pool);
    cr_assert_not(mpool_safe_free(pool, tail), "safe_free accepted the slab's unused tail");
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    cr_assert_eq(slab_live(s), live, "a rejected pointer changed the slab");
    cr_assert(mpool_owns(pool, p));
    cr_assert_eq(mpool_check(pool), 0);
    cr_assert(mpool_safe_free(pool, p));
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* The hot slab's block test (slab_set_hot) against plain division, for every
 * class: every offset of the slab and a little around it, and far-away ones
 * (foreign pointers below and above, where the difference wraps). */
Test(slab, hot_block_test_is_exact_for_every_class)
{
    mpool_t *pool = make_pool_aligned(8); /* every class, 8 B included */
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        size_t bsize = sizeclass_size(cls);
        void *p = mpool_alloc(pool, bsize);
        cr_assert_not_null(p);
        struct page *s = slab_of(p);
        cr_assert_eq(s->cls, cls);
        slab_set_hot(pool, s);
        size_t limit = s->limit;
        cr_assert_eq(pool->hot_count, slab_capacity(s));
        for (uint64_t off = (uint64_t)0 - 3 * bsize; off != limit + 3 * bsize; off++) {
            uint64_t idx = slab_index_rotate(off * pool->hot_inverse, pool->hot_shift);
            bool block = off < limit && off % bsize == 0;
            if ((idx < pool->hot_count) != block)
                cr_assert_fail("class %u (%zu B): offset %" PRId64 " judged %s", cls, bsize, (int64_t)off,
                               block ? "not a block" : "a block");
            if (block && idx != off / bsize)
                cr_assert_fail("class %u: offset %" PRIu64 " gave index %" PRIu64, cls, off, idx);
        }
        uint64_t x = 0x9e3779b97f4a7c15ULL * (cls + 1);
        for (int i = 0; i < 100000; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            uint64_t off = x & ~(uint64_t)15; /* aligned, like any pointer a caller might pass */
            bool block = off < limit && off % bsize == 0;
            cr_assert_eq(slab_index_rotate(off * pool->hot_inverse, pool->hot_shift) < pool->hot_count, block,
                         "class %u: random offset %" PRIu64, cls, off);
        }
        mpool_free(pool, p);
    }
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* mpool_free (not only safe_free) refuses interior and tail pointers of the
 * hot slab, of another current slab and of a retired slab, for every class,
 * and changes nothing. */
Test(slab, free_rejects_interior_pointers_of_every_class)
{
    mpool_t *pool = make_pool_aligned(8); /* every class, 8 B included */
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        size_t bsize = sizeclass_size(cls);
        char *p = mpool_alloc(pool, bsize), *q = mpool_alloc(pool, bsize);
        cr_assert(p && q);
        struct page *s = slab_of(p);
        for (int where = 0; where < 2; where++) { /* 0: hot slab, 1: current but not hot */
            if (where == 1)
                slab_set_hot(pool, NULL);
            else
                slab_set_hot(pool, s);
            const size_t offs[] = {1, 8, 16, bsize / 2, bsize - 8, bsize + 8, bsize * 2 - 1};
            for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
                if (offs[i] % bsize == 0)
                    continue;
                size_t live = slab_live(s), nfree = free_list_length(s);
                reset_last_error(pool);
                mpool_free(pool, p + offs[i]);
                cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER,
                             "class %u (%zu B), %s: free(p + %zu) was not refused", cls, bsize,
                             where ? "current slab" : "hot slab", offs[i]);
                cr_assert_eq(slab_live(s), live);
                cr_assert_eq(free_list_length(s), nfree);
            }
            char *tail = (char *)page_start(s) + s->limit;
            if ((size_t)(tail - (char *)page_start(s)) < ((size_t)s->npages << PAGE_SHIFT)) {
                reset_last_error(pool);
                mpool_free(pool, tail);
                cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER,
                             "class %u: free of the slab's unused tail was not refused", cls);
            }
        }
        cr_assert_eq(mpool_check(pool), 0, "class %u", cls);
        mpool_free(pool, p);
        mpool_free(pool, q);
    }
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* ---- reuse and a long random run -------------------------------------------- */

Test(slab, lifo_reuse)
{
    mpool_t *pool = make_pool();
    static const size_t sizes[] = {1, 16, 33, 128, 500, 1024, 1500, 8000, 32768};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t size = sizes[i];
        void *keep = mpool_alloc(pool, size); /* keeps the slab non-empty */
        void *p = mpool_alloc(pool, size);
        mpool_free(pool, p);
        void *q = mpool_alloc(pool, size);
        cr_assert_eq(q, p, "size %zu: free then alloc gave %p, not %p", size, q, p);
        void *r[3];
        for (int k = 0; k < 3; k++)
            r[k] = mpool_alloc(pool, size);
        for (int k = 0; k < 3; k++)
            mpool_free(pool, r[k]);
        for (int k = 2; k >= 0; k--)
            cr_assert_eq(mpool_alloc(pool, size), r[k], "size %zu: reuse not last-in first-out",
                         size);
        (void)keep;
    }
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

struct blk {
    char *p;
    size_t size;
    size_t usable;
    uint64_t id;
};

static int blk_cmp(const void *a, const void *b)
{
    const struct blk *x = a, *y = b;
    return x->p < y->p ? -1 : x->p > y->p;
}

static void assert_no_overlap(struct blk *v, size_t n)
{
    qsort(v, n, sizeof *v, blk_cmp);
    for (size_t i = 1; i < n; i++)
        cr_assert_leq(v[i - 1].p + v[i - 1].usable, v[i].p,
                      "blocks %p (+%zu) and %p overlap", (void *)v[i - 1].p, v[i - 1].usable,
                      (void *)v[i].p);
}

Test(slab, random_small_ops_never_overlap)
{
    mpool_t *pool = make_pool();
    rng_t rng;
    rng_seed(&rng, test_seed(2024));
    size_t ops = test_scaled(100000, 1000);
    enum { MAX_LIVE = 4000 };
    struct blk *live = calloc(MAX_LIVE, sizeof *live);
    cr_assert_not_null(live);
    size_t n = 0;
    uint64_t id = 0;
    for (size_t op = 0; op < ops; op++) {
        bool do_alloc = n == 0 || (n < MAX_LIVE && rng_below(&rng, 100) < 52);
        if (do_alloc) {
            size_t size = rng_below(&rng, 50) == 0 ? (size_t)rng_range(&rng, 1025, SLAB_MAX)
                                                   : (size_t)rng_logrange(&rng, 1, 1024);
            char *p = mpool_alloc(pool, size);
            cr_assert_not_null(p, "op %zu: alloc(%zu) failed", op, size);
            cr_assert(is_aligned(p, 16));
            struct page *s = slab_of(p);
            size_t us = s->block_size;
            cr_assert_geq(us, size);
            cr_assert_eq(s->cls, class_for(pool, size));
            cr_assert_eq(((size_t)(p - (char *)page_start(s))) % us, 0,
                         "op %zu: block %p not at a block boundary of its slab", op, (void *)p);
            live[n] = (struct blk){p, size, us, ++id};
            pattern_fill(p, id, size);
            n++;
        } else {
            size_t k = (size_t)rng_below(&rng, n);
            struct blk b = live[k];
            size_t bad = pattern_find_bad(b.p, b.id, b.size);
            cr_assert_eq(bad, SIZE_MAX, "op %zu: block %p (size %zu) corrupted at offset %zu", op,
                         (void *)b.p, b.size, bad);
            if (rng_below(&rng, 4) == 0)
                cr_assert(mpool_safe_free(pool, b.p), "op %zu: safe_free of a live block", op);
            else
                mpool_free(pool, b.p);
            live[k] = live[--n];
        }
        if (op % 20000 == 19999) {
            assert_no_overlap(live, n);
            cr_assert_eq(mpool_check(pool), 0, "op %zu: mpool_check", op);
        }
    }
    assert_no_overlap(live, n);
    cr_assert_eq(mpool_check(pool), 0);
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert(pattern_ok(live[i].p, live[i].id, live[i].size), "block %p corrupted at the end",
                  (void *)live[i].p);
        used += live[i].usable;
    }
    cr_assert_eq(mpool_get_usage(pool).used, used, "usage.used %zu, live blocks hold %zu",
                 mpool_get_usage(pool).used, used);
    for (size_t i = 0; i < n; i++)
        mpool_free(pool, live[i].p);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    free(live);
    mpool_destroy(pool);
}
