/*
 * test_slab.c - slabs (slab.h, slab.c) and one heap's handling of them
 * (heap.h), seen through a pool that is not thread safe (one heap, heap0,
 * used inline) and through a thread-safe one used by one thread, with the
 * internal structures inspected through pool.h, heap.h and region.h: which
 * slab a block comes from, slab geometry, parking of full slabs and their
 * return to the queue, return of empty slabs to the page allocator, the
 * block test, the free mark (double frees in any order), interior pointers,
 * LIFO reuse, and a long random run with no overlap.
 */
#define _DEFAULT_SOURCE /* mincore */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>

#include <mpool.h>

#include "heap.h"
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

static mpool_t *make_pool_ts(bool thread_safe, size_t alignment)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.thread_safe = thread_safe;
    cfg.alignment = alignment;
    cfg.min_block_size = 8;
    cfg.on_error = MPOOL_ON_ERROR_RETURN;
    mpool_t *pool = create_or_die(&cfg);
    if (!thread_safe)
        cr_assert_eq(pool->fast_heap, pool->heap0, "a single-threaded, non-debug pool uses heap0 inline");
    return pool;
}

static mpool_t *make_pool(void)
{
    return make_pool_ts(false, 16);
}

/* The calling thread's heap of pool (made by an allocation if needed). */
static struct heap *my_heap(mpool_t *pool)
{
    struct heap *h = heap_mine(pool);
    cr_assert_not_null(h, "the thread has no heap for the pool");
    return h;
}

/* Puts a known, different value in mpool_last_error(). */
static void reset_last_error(mpool_t *pool)
{
    cr_assert_null(mpool_alloc_aligned(pool, 8, 3));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ALIGNMENT);
}

/* The class a pool uses for size. */
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

static bool on_list(const struct page *head, const struct page *pg)
{
    for (const struct page *s = head; s; s = s->next)
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
    cr_assert_eq(pg->capacity, (pages << PAGE_SHIFT) / bsize, "class %u: capacity %u", cls, pg->capacity);
    cr_assert_leq(pg->extent, pg->capacity);
    cr_assert_geq(pg->extent, 1);
    cr_assert_eq(pool->cls[cls].slab_pages, pages);
    cr_assert_eq(pg->start, (char *)page_start(pg));
    cr_assert_eq(slab_check(pg, pool->key), 0);
}

/* Takes every block of one slab of size-byte blocks; the slab in *pg. */
static void **fill_slab(mpool_t *pool, size_t size, struct page **pg)
{
    void *first = mpool_alloc(pool, size);
    cr_assert_not_null(first);
    *pg = slab_of(first);
    size_t cap = (*pg)->capacity;
    void **blocks = calloc(cap, sizeof *blocks);
    cr_assert_not_null(blocks);
    blocks[0] = first;
    for (size_t i = 1; i < cap; i++) {
        blocks[i] = mpool_alloc(pool, size);
        cr_assert_eq(slab_of(blocks[i]), *pg, "block %zu of %zu came from another slab", i, cap);
    }
    return blocks;
}

/* ---- one slab until full, parking and the queue -------------------------- */

static void fill_one_slab(bool thread_safe, size_t size)
{
    mpool_t *pool = make_pool_ts(thread_safe, 16);
    unsigned cls = class_for(pool, size);
    char *p0 = mpool_alloc(pool, size);
    cr_assert_not_null(p0);
    struct heap *h = my_heap(pool);
    struct page *a = slab_of(p0);
    assert_slab_geometry(pool, a, cls);
    cr_assert_eq(h->current[cls], a, "the first block's slab is not current");
    cr_assert_eq(a->heap, h);
    cr_assert(a->current);
    cr_assert_eq(p0, (char *)page_start(a), "a new slab hands out its first block first");
    size_t cap = a->capacity, bsize = a->block_size;
    for (size_t i = 1; i < cap; i++) {
        char *p = mpool_alloc(pool, size);
        cr_assert_not_null(p);
        cr_assert_eq(slab_of(p), a, "size %zu: block %zu of %zu came from another slab", size, i, cap);
        cr_assert_eq(p, p0 + i * bsize, "size %zu: block %zu not handed out in address order", size, i);
        cr_assert_eq(mpool_usable_size(pool, p), bsize);
    }
    cr_assert_null(a->free, "a slab that gave all its blocks still has a free list");
    cr_assert_eq(slab_live(a), cap);
    cr_assert_eq(a->used, (int32_t)cap + 1, "the current slab holds one count (slab.h)");
    char *q = mpool_alloc(pool, size);
    cr_assert_not_null(q);
    struct page *b = slab_of(q);
    cr_assert_neq(b, a, "size %zu: the block after a full slab came from the same slab", size);
    assert_slab_geometry(pool, b, cls);
    cr_assert_eq(h->current[cls], b);
    cr_assert_not(a->current, "a full slab is still current");
    cr_assert_eq(a->flags, PG_FULL, "a full slab is not parked");
    cr_assert(on_list(h->full, a));
    cr_assert_eq(a->used, (int32_t)(cap >= 8 ? cap / 8 : 1), "parking leaves an eighth in the count");
    cr_assert_eq(slab_used(a), (int32_t)cap);
    cr_assert_eq(a->thread_free, SLAB_NOTIFY);
    cr_assert_eq(mpool_get_usage(pool).used, (cap + 1) * bsize);
    cr_assert_eq(mpool_check(pool), 0);
    /* The owner frees into the parked slab: the blocks wait on local_free
     * until an eighth of the slab is free, then it goes back on the queue. */
    size_t eighth = cap >= 8 ? cap / 8 : 1;
    for (size_t i = 0; i < eighth; i++) {
        cr_assert_eq(a->flags, PG_FULL, "size %zu: queued again after %zu of %zu frees", size, i, eighth);
        mpool_free(pool, p0 + i * bsize);
        cr_assert_eq(mpool_check(pool), 0);
    }
    cr_assert_eq(a->flags, PG_QUEUED, "a parked slab an eighth free is not queued again");
    cr_assert(on_list(h->queue[cls], a));
    cr_assert_eq(a->used, (int32_t)(cap - eighth));
    cr_assert_eq(a->thread_free, 0);
    cr_assert_eq(mpool_check(pool), 0);
    /* Once b is full, the class takes the queued slab, not a new one. */
    for (size_t i = 1; i < b->capacity; i++)
        cr_assert_eq(slab_of(mpool_alloc(pool, size)), b);
    char *again = mpool_alloc(pool, size);
    cr_assert_eq(again, p0 + (eighth - 1) * bsize, "the queued slab's last freed block was not reused first");
    cr_assert_eq(h->current[cls], a);
    cr_assert_eq(b->flags, PG_FULL);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(slab, same_slab_until_full_then_new_slab)
{
    static const size_t sizes[] = {1, 16, 48, 100, 1024, 4000, 32768};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        fill_one_slab(false, sizes[i]);
        fill_one_slab(true, sizes[i]);
    }
}

Test(slab, capacity_matches_sizeclass_for_every_class)
{
    mpool_t *pool = make_pool_ts(false, 8);
    for (unsigned cls = 1; cls < CLASS_COUNT; cls++) { /* class 0 (8 B) holds no mark: unused */
        size_t bsize = sizeclass_size(cls);
        void *p = mpool_alloc(pool, bsize);
        cr_assert_not_null(p);
        assert_slab_geometry(pool, slab_of(p), cls);
        mpool_free(pool, p);
    }
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* Blocks are at least 16 bytes (a link and the free mark), whatever
 * min_block_size says. */
Test(slab, smallest_block_is_sixteen_bytes)
{
    mpool_t *pool = make_pool_ts(false, 8);
    void *p = mpool_alloc(pool, 1), *q = mpool_alloc(pool, 8);
    cr_assert(p && q);
    cr_assert_eq(mpool_usable_size(pool, p), 16);
    cr_assert_eq(mpool_usable_size(pool, q), 16);
    cr_assert_eq(slab_of(p)->block_size, 16);
    mpool_free(pool, p);
    mpool_free(pool, q);
    mpool_destroy(pool);
}

/* ---- back: which descriptors lead to the slab ---------------------------- */

/* A slab of blocks above a page sets `back` only where a block starts
 * (region.h): a pointer into any other page of a block is refused by every
 * query, as an interior pointer always was, and the block starts still find
 * the slab. */
static void blocks_of_medium_slab(size_t size)
{
    mpool_t *pool = make_pool();
    char *p = mpool_alloc(pool, size);
    cr_assert_not_null(p);
    struct page *head = slab_of(p);
    size_t bsize = head->block_size, npages = head->npages;
    cr_assert_gt(bsize, PAGE_SIZE);
    for (size_t k = 1; k < npages; k++) /* the heads table: every page leads to the head */
        cr_assert_eq(page_head(&head[k]), head, "page %zu of a slab of %zu B blocks", k, bsize);
    /* Every block of the slab: found, owned, and freed by the inline path. */
    size_t cap = head->capacity;
    void **blocks = calloc(cap, sizeof *blocks);
    cr_assert_not_null(blocks);
    blocks[0] = p;
    for (size_t i = 1; i < cap; i++) {
        blocks[i] = mpool_alloc(pool, size);
        cr_assert_eq(slab_of(blocks[i]), head);
        cr_assert(mpool_owns(pool, blocks[i]));
        cr_assert_eq(mpool_usable_size(pool, blocks[i]), bsize);
    }
    /* A pointer a page into the first block (no block starts there when the
     * blocks are whole pages) is no block. */
    char *inside = p + PAGE_SIZE;
    cr_assert_not(mpool_owns(pool, inside));
    cr_assert_eq(mpool_usable_size(pool, inside), 0);
    reset_last_error(pool);
    mpool_free(pool, inside);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER, "an interior pointer was freed");
    cr_assert_eq(mpool_check(pool), 0);
    for (size_t i = 0; i < cap; i++)
        mpool_free(pool, blocks[i]);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    free(blocks);
    mpool_destroy(pool);
}

Test(slab, medium_slabs_find_every_block_and_refuse_interior_pointers)
{
    blocks_of_medium_slab(5 * 1024);   /* 5 KiB blocks: some pages hold no block start */
    blocks_of_medium_slab(40 * 1024);  /* whole pages: a pointer a page in is interior */
    blocks_of_medium_slab(200 * 1024); /* one block per slab */
}

/* ---- empty slabs --------------------------------------------------------- */

static void empty_slabs_go_back(bool thread_safe)
{
    mpool_t *pool = make_pool_ts(thread_safe, 16);
    struct page *a, *b;
    void **blocks = fill_slab(pool, 256, &a);
    size_t cap = a->capacity;
    void **bblocks = fill_slab(pool, 256, &b); /* a is parked, b full and current */
    cr_assert_neq(a, b);
    cr_assert_eq(b->capacity, cap);
    void *other = mpool_alloc(pool, 256); /* b is parked, c current */
    struct page *c = slab_of(other);
    cr_assert(c != a && c != b);
    unsigned cls = c->cls;
    struct heap *h = my_heap(pool);
    size_t free_pages = pool->buddy.free_pages;
    /* The first slab of the class that empties is kept as its spare. */
    for (size_t i = 0; i < cap; i++)
        mpool_free(pool, blocks[i]);
    cr_assert_eq(pool->buddy.free_pages, free_pages, "the spare went back to the page allocator");
    cr_assert_eq(h->spare[cls], a, "the empty slab is not the class's spare");
    cr_assert_eq(a->kind, PAGE_SLAB);
    cr_assert_eq(a->flags, PG_SPARE);
    cr_assert_eq(a->heap, h);
    cr_assert_eq(h->spare_pages, a->npages);
    cr_assert_eq(mpool_check(pool), 0);
    /* The next one goes back: the class has a spare. */
    for (size_t i = 0; i < cap; i++)
        mpool_free(pool, bblocks[i]);
    cr_assert_eq(pool->buddy.free_pages, free_pages + b->npages, "an empty slab kept its pages");
    cr_assert_neq(b->kind, PAGE_SLAB, "the empty slab is still a slab");
    cr_assert_null(b->heap, "a released slab still names a heap");
    cr_assert_eq(h->spare[cls], a);
    cr_assert_eq(mpool_check(pool), 0);
    /* The class's next slab is the spare, not fresh pages. */
    size_t left = c->capacity - 1;
    for (size_t i = 0; i < left; i++)
        bblocks[i] = mpool_alloc(pool, 256);
    cr_assert_eq(slab_of(bblocks[left - 1]), c);
    free_pages = pool->buddy.free_pages;
    void *next = mpool_alloc(pool, 256);
    cr_assert_eq(slab_of(next), a, "the refill took another slab than the spare");
    cr_assert_eq(pool->buddy.free_pages, free_pages);
    cr_assert_null(h->spare[cls]);
    cr_assert_eq(h->spare_pages, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_free(pool, next);
    for (size_t i = 0; i < left; i++)
        mpool_free(pool, bblocks[i]);
    /* The current slab is kept when it empties. */
    cr_assert_eq(a->kind, PAGE_SLAB);
    cr_assert_eq(h->current[cls], a, "the current slab was given back when empty");
    cr_assert_eq(slab_live(a), 0);
    /* c (not current) empties and becomes the spare. */
    cr_assert_null(h->spare[cls]);
    mpool_free(pool, other);
    cr_assert_eq(h->spare[cls], c);
    cr_assert_eq(h->spare_pages, c->npages);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    /* Trim gives both back (and may unmap their region: a and c are not read after). */
    mpool_trim(pool);
    cr_assert_eq(h->current[cls], &mpool_empty_slab);
    cr_assert_null(h->spare[cls]);
    cr_assert_eq(h->spare_pages, 0);
    cr_assert_eq(mpool_check(pool), 0);
    free(blocks);
    free(bblocks);
    mpool_destroy(pool);
}

Test(slab, empty_slabs_are_kept_one_per_class_then_go_back)
{
    empty_slabs_go_back(false);
    empty_slabs_go_back(true);
}

/* ---- double frees --------------------------------------------------------- */

/* Frees the same block twice in a row: refused at once (the head of the
 * owner's local list), nothing changes. */
static void double_free_in_a_row(bool thread_safe)
{
    mpool_t *pool = make_pool_ts(thread_safe, 16);
    void *keep = mpool_alloc(pool, 40), *p = mpool_alloc(pool, 40);
    struct page *s = slab_of(p);
    mpool_free(pool, p);
    int32_t used = s->used;
    reset_last_error(pool);
    mpool_free(pool, p);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER, "free(p); free(p) was not refused");
    cr_assert_eq(s->used, used);
    cr_assert_eq(mpool_check(pool), 0);
    /* The exact calls refuse a freed block wherever it is. */
    void *q = mpool_alloc(pool, 40);
    mpool_free(pool, p == q ? keep : q);
    reset_last_error(pool);
    cr_assert_not(mpool_safe_free(pool, p == q ? keep : q));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    mpool_destroy(pool);
}

Test(slab, double_free_in_a_row_refused_at_once)
{
    double_free_in_a_row(false);
    double_free_in_a_row(true);
}

static int ptr_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return x < y ? -1 : x > y;
}

/* Double frees in any other order: the owner's inline free lets them
 * through (it does not read the block), and each is found before a block is
 * handed out twice: reported once allocation or the slab's count meets it,
 * the slab's lists rebuilt from the marks.  Meanwhile the exact calls refuse
 * the freed block. */
static void double_free_in_any_order(bool thread_safe)
{
    mpool_t *pool = make_pool_ts(thread_safe, 16);
    enum { N = 64 };
    void *p[N];
    for (int i = 0; i < N; i++)
        cr_assert_not_null(p[i] = mpool_alloc(pool, 40));
    mpool_free(pool, p[5]);
    for (int i = 10; i < 40; i++)
        mpool_free(pool, p[i]);
    for (int victim = 5; victim < 40; victim += 7) {
        reset_last_error(pool);
        cr_assert_not(mpool_safe_free(pool, p[victim]), "safe_free of a freed block %d", victim);
        cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
        cr_assert_not(mpool_owns(pool, p[victim]));
        cr_assert_eq(mpool_usable_size(pool, p[victim]), 0);
        reset_last_error(pool);
        cr_assert_null(mpool_realloc(pool, p[victim], 80));
        cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
        mpool_free(pool, p[victim]); /* let through */
    }
    /* Every block comes back at most once, and the double frees are reported. */
    reset_last_error(pool);
    enum { M = 4096 };
    void **q = calloc(M, sizeof *q);
    bool reported = false;
    for (int i = 0; i < M; i++) {
        cr_assert_not_null(q[i] = mpool_alloc(pool, 40));
        reported |= mpool_last_error() == MPOOL_ERR_INVALID_POINTER;
        for (int j = 0; j < N; j++)
            if (j != 5 && (j < 10 || j >= 40))
                cr_assert_neq(q[i], p[j], "live block %d handed out", j);
    }
    cr_assert(reported, "the double frees were never reported");
    qsort(q, M, sizeof *q, ptr_cmp);
    for (int i = 1; i < M; i++)
        cr_assert_neq(q[i - 1], q[i], "block %p handed out twice", q[i]);
    cr_assert_eq(mpool_check(pool), 0, "the lists were not rebuilt");
    for (int i = 0; i < M; i++)
        mpool_free(pool, q[i]);
    for (int i = 0; i < N; i++)
        if (i != 5 && (i < 10 || i >= 40)) /* the blocks never freed */
            mpool_free(pool, p[i]);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    free(q);
    mpool_destroy(pool);
}

Test(slab, double_free_found_before_reuse_in_any_order)
{
    double_free_in_any_order(false);
    double_free_in_any_order(true);
}

/* A double free that takes a slab's count to empty while a block is still
 * live is found by the marks before the slab is given back: the live block
 * stays intact. */
Test(slab, double_free_never_releases_a_slab_with_a_live_block)
{
    mpool_t *pool = make_pool();
    struct page *s;
    void **blocks = fill_slab(pool, 2048, &s);
    size_t cap = s->capacity;
    void *other = mpool_alloc(pool, 2048); /* s is parked */
    cr_assert_neq(slab_of(other), s);
    memset(blocks[0], 0x77, 2048);
    for (size_t i = 1; i < cap; i++)
        mpool_free(pool, blocks[i]);
    reset_last_error(pool);
    mpool_free(pool, blocks[3]); /* the count now says empty; blocks[0] is live */
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER, "the double free was not reported");
    cr_assert_eq(s->kind, PAGE_SLAB, "the slab went back with a live block");
    cr_assert(mpool_owns(pool, blocks[0]));
    for (size_t i = 0; i < 2048; i++)
        cr_assert_eq(((unsigned char *)blocks[0])[i], 0x77, "the live block changed");
    cr_assert_eq(mpool_check(pool), 0);
    mpool_free(pool, blocks[0]);
    mpool_free(pool, other);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    free(blocks);
    mpool_destroy(pool);
}

/* A live block whose second word happens to hold the key is still freed by
 * its owner (the lists show it is live). */
Test(slab, live_block_holding_the_key_is_freed)
{
    mpool_t *pool = make_pool();
    uint64_t *p = mpool_alloc(pool, 32);
    cr_assert_not_null(p);
    p[1] = pool->key;
    cr_assert(mpool_owns(pool, p) == false, "documented: a block holding the key looks free to queries");
    struct page *s = slab_of(p);
    int32_t used = s->used;
    mpool_free(pool, p);
    cr_assert_eq(s->used, used - 1, "the owner did not free a live block holding the key");
    cr_assert_eq(s->local_free, p);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* ---- the block test ------------------------------------------------------- */

/* slab_is_block_offset against plain division, for every class: every offset
 * of the slab and a little around it, and far-away ones (foreign pointers
 * below and above, where the difference wraps). */
Test(slab, block_test_is_exact_for_every_class)
{
    mpool_t *pool = make_pool_ts(false, 8);
    for (unsigned cls = 1; cls < CLASS_COUNT; cls++) {
        size_t bsize = sizeclass_size(cls);
        void *p = mpool_alloc(pool, bsize);
        cr_assert_not_null(p);
        struct page *s = slab_of(p);
        cr_assert_eq(s->cls, cls);
        size_t limit = s->extent * bsize; /* carved blocks only: the others were never handed out */
        cr_assert_geq(s->extent, 1);
        for (uint64_t off = (uint64_t)0 - 3 * bsize; off != limit + 3 * bsize; off++) {
            bool block = off < limit && off % bsize == 0;
            if (slab_is_block_offset(s, off) != block)
                cr_assert_fail("class %u (%zu B): offset %" PRId64 " judged %s", cls, bsize, (int64_t)off,
                               block ? "not a block" : "a block");
            if (block && rotr64(off * s->inverse, s->shift) != off / bsize)
                cr_assert_fail("class %u: offset %" PRIu64 " gave the wrong index", cls, off);
        }
        uint64_t x = 0x9e3779b97f4a7c15ULL * (cls + 1);
        for (int i = 0; i < 100000; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            uint64_t off = x & ~(uint64_t)15;
            bool block = off < limit && off % bsize == 0;
            cr_assert_eq(slab_is_block_offset(s, off), block, "class %u: random offset %" PRIu64, cls, off);
        }
        mpool_free(pool, p);
    }
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* mpool_free and mpool_safe_free refuse interior and tail pointers of the
 * current slab and of a parked one, for every class, and change nothing. */
static void interior_pointers_refused(bool thread_safe)
{
    mpool_t *pool = make_pool_ts(thread_safe, 8);
    for (unsigned cls = 1; cls < CLASS_COUNT; cls++) {
        size_t bsize = sizeclass_size(cls);
        char *p = mpool_alloc(pool, bsize), *q = mpool_alloc(pool, bsize);
        cr_assert(p && q);
        struct page *s = slab_of(p);
        const size_t offs[] = {1, 8, 16, bsize / 2, bsize - 8, bsize + 8, bsize * 2 - 1};
        for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
            if (offs[i] % bsize == 0)
                continue;
            int32_t used = s->used;
            size_t nfree = slab_free_count(s);
            reset_last_error(pool);
            mpool_free(pool, p + offs[i]);
            cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER,
                         "class %u (%zu B): free(p + %zu) was not refused", cls, bsize, offs[i]);
            reset_last_error(pool);
            cr_assert_not(mpool_safe_free(pool, p + offs[i]));
            cr_assert_eq(mpool_usable_size(pool, p + offs[i]), 0);
            cr_assert_eq(s->used, used);
            cr_assert_eq(slab_free_count(s), nfree);
        }
        char *tail = s->start + s->capacity * bsize;
        if ((size_t)(tail - s->start) < ((size_t)s->npages << PAGE_SHIFT)) {
            reset_last_error(pool);
            mpool_free(pool, tail);
            cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER,
                         "class %u: free of the slab's unused tail was not refused", cls);
        }
        cr_assert_eq(mpool_check(pool), 0, "class %u", cls);
        mpool_free(pool, p);
        mpool_free(pool, q);
    }
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(slab, free_rejects_interior_pointers_of_every_class)
{
    interior_pointers_refused(false);
    interior_pointers_refused(true);
}

/* ---- reuse and a long random run -------------------------------------------- */

/* The owner's frees wait on local_free until the free list runs dry; then
 * they are reused, newest first, before the class takes another slab. */
Test(slab, freed_blocks_come_back_when_the_free_list_runs_dry)
{
    static const size_t sizes[] = {16, 33, 128, 500, 1024, 1500, 8000, 32768}; /* one per class */
    for (int ts = 0; ts < 2; ts++) {
        mpool_t *pool = make_pool_ts(ts, 16);
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t size = sizes[i];
            struct page *s;
            void **blocks = fill_slab(pool, size, &s);
            size_t cap = s->capacity;
            cr_assert_null(s->free);
            mpool_free(pool, blocks[1]);
            mpool_free(pool, blocks[2]);
            cr_assert_null(s->free, "a free went to the list allocation pops");
            cr_assert_eq(s->local_free, blocks[2]);
            cr_assert_eq(mpool_alloc(pool, size), blocks[2], "size %zu: reuse is not newest first", size);
            cr_assert_eq(mpool_alloc(pool, size), blocks[1]);
            void *next = mpool_alloc(pool, size);
            cr_assert_neq(slab_of(next), s, "size %zu: a full slab gave a block", size);
            cr_assert_eq(s->flags, PG_FULL);
            (void)cap;
            free(blocks);
        }
        cr_assert_eq(mpool_check(pool), 0);
        mpool_destroy(pool);
    }
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

/* ---- trim: the pages inside free blocks go back --------------------------- */

/* Pages of the slab that hold a byte of a live block (bit k: page k). */
static void live_pages(const struct page *pg, void **blocks, const bool *live, size_t cap, bool *out)
{
    memset(out, 0, pg->npages * sizeof *out);
    for (size_t i = 0; i < cap; i++)
        if (live[i]) {
            size_t a = (size_t)((char *)blocks[i] - pg->start) >> PAGE_SHIFT;
            size_t b = (size_t)((char *)blocks[i] + pg->block_size - 1 - pg->start) >> PAGE_SHIFT;
            for (size_t k = a; k <= b; k++)
                out[k] = true;
        }
}

/* One slab of size-byte blocks, every block written, a pseudo-random third
 * kept live: mpool_trim leaves resident exactly the slab's first page and
 * the pages that hold live bytes (mincore); the live blocks keep their data;
 * a freed block is refused by the exact calls and by free and realloc, as
 * before trim; mpool_check passes; every freed block is handed out again
 * (none twice, none live), and the slab goes back when all are freed. */
static void trim_releases_free_pages(bool thread_safe, size_t size, unsigned seed)
{
    mpool_t *pool = make_pool_ts(thread_safe, 16);
    struct page *pg;
    void **blocks = fill_slab(pool, size, &pg);
    size_t cap = pg->capacity, bsize = pg->block_size, npages = pg->npages;
    bool *live = calloc(cap, sizeof *live), *want = calloc(npages, sizeof *want);
    cr_assert(live && want);
    for (size_t i = 0; i < cap; i++)
        memset(blocks[i], (int)(i & 0x7F) + 1, bsize);
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
    size_t nlive = 0;
    for (size_t i = 0; i < cap; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        live[i] = x % 3 == 0 && nlive + 1 < cap;
        nlive += live[i];
    }
    if (nlive == 0)
        live[cap / 2] = true, nlive = 1;
    for (size_t i = 0; i < cap; i++)
        if (!live[i])
            mpool_free(pool, blocks[i]);
    size_t released = mpool_trim(pool);
    for (size_t i = 0; i < cap; i++)
        if (live[i])
            cr_assert_eq(slab_of(blocks[i]), pg, "size %zu: the slab stays", size);
    cr_assert_eq(mpool_check(pool), 0, "size %zu: mpool_check after trim", size);
    live_pages(pg, blocks, live, cap, want);
    want[0] = true;
    unsigned char vec[256];
    cr_assert_eq(mincore(pg->start, npages * PAGE_SIZE, vec), 0);
    size_t expect = 0;
    for (size_t k = 0; k < npages; k++) {
        cr_assert_eq(vec[k] & 1, want[k], "size %zu: page %zu of %zu resident %d, expected %d", size, k, npages,
                     vec[k] & 1, want[k]);
        expect += !want[k];
    }
    cr_assert_eq(released, expect * PAGE_SIZE, "size %zu: trim returned %zu bytes, %zu pages went",
                 size, released, expect);
    cr_assert_eq(slab_trim(pg), 0, "size %zu: a second trim finds nothing more", size);
    for (size_t i = 0; i < cap; i++) {
        if (live[i]) {
            for (size_t k = 0; k < bsize; k++)
                cr_assert_eq(((unsigned char *)blocks[i])[k], (i & 0x7F) + 1, "size %zu: live block %zu", size, i);
            continue;
        }
        cr_assert_not(mpool_owns(pool, blocks[i]), "size %zu: freed block %zu", size, i);
        cr_assert_eq(mpool_usable_size(pool, blocks[i]), 0);
        reset_last_error(pool);
        cr_assert_not(mpool_safe_free(pool, blocks[i]));
        cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
        if (i % 5 == 1 && !live[i]) {
            size_t k = (size_t)((char *)blocks[i] - pg->start) >> PAGE_SHIFT;
            if (k > 0 && page_is_released(pg + k)) { /* a released block: every path refuses it at once */
                reset_last_error(pool);
                mpool_free(pool, blocks[i]);
                cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER, "size %zu: free of released %zu", size, i);
                reset_last_error(pool);
                cr_assert_null(mpool_realloc(pool, blocks[i], size + 1));
                cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
            }
        }
    }
    cr_assert_eq(mpool_check(pool), 0);
    /* Every freed block comes back, once. */
    size_t nfree = cap - nlive, back = 0;
    void **again = calloc(nfree, sizeof *again);
    for (size_t n = 0; n < nfree; n++) {
        char *p = mpool_alloc(pool, size);
        cr_assert_not_null(p);
        if (slab_of(p) != pg)
            continue;
        for (size_t i = 0; i < cap; i++)
            cr_assert(!(live[i] && blocks[i] == p), "size %zu: a live block handed out", size);
        for (size_t j = 0; j < back; j++)
            cr_assert_neq(again[j], p, "size %zu: a block handed out twice", size);
        memset(p, 0xEE, bsize);
        again[back++] = p;
    }
    cr_assert_eq(back, nfree, "size %zu: %zu of %zu freed blocks came back", size, back, nfree);
    cr_assert_eq(pg->released, 0);
    cr_assert_eq(mpool_check(pool), 0);
    for (size_t j = 0; j < back; j++)
        mpool_free(pool, again[j]);
    for (size_t i = 0; i < cap; i++)
        if (live[i])
            mpool_free(pool, blocks[i]);
    cr_assert_eq(mpool_check(pool), 0);
    free(again);
    free(want);
    free(live);
    free(blocks);
    mpool_destroy(pool);
}

Test(slab, trim_releases_the_pages_that_hold_only_free_blocks)
{
    static const size_t sizes[] = {16, 48, 512, 1000, 3072, 4096, 5120, 16384, 40000};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (unsigned seed = 1; seed <= 3; seed++) {
            trim_releases_free_pages(false, sizes[s], seed);
            trim_releases_free_pages(true, sizes[s], seed);
        }
}

/* Blocks another thread freed wait on thread_free when the owner trims:
 * they are free, and their pages go back too. */
struct remote_frees {
    mpool_t *pool;
    void **blocks;
    size_t from, to;
};

static void *free_remotely(void *arg)
{
    struct remote_frees *r = arg;
    for (size_t i = r->from; i < r->to; i++)
        mpool_free(r->pool, r->blocks[i]);
    return NULL;
}

Test(slab, trim_counts_blocks_other_threads_freed)
{
    mpool_t *pool = make_pool_ts(true, 16);
    struct page *pg;
    void **blocks = fill_slab(pool, 512, &pg);
    size_t cap = pg->capacity, per_page = PAGE_SIZE / 512;
    for (size_t i = 0; i < cap; i++)
        memset(blocks[i], 3, 512);
    struct remote_frees r = {pool, blocks, per_page, cap}; /* all but the first page's blocks */
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, free_remotely, &r), 0);
    pthread_join(t, NULL);
    cr_assert_neq(__atomic_load_n(&pg->thread_free, __ATOMIC_ACQUIRE), 0, "the frees wait on thread_free");
    mpool_trim(pool);
    cr_assert_eq(mpool_check(pool), 0);
    unsigned char vec[256];
    cr_assert_eq(mincore(pg->start, pg->npages * PAGE_SIZE, vec), 0);
    cr_assert_eq(vec[0] & 1, 1);
    for (size_t k = 1; k < pg->npages; k++) {
        cr_assert_eq(vec[k] & 1, 0, "page %zu went back", k);
        cr_assert(page_is_released(pg + k));
    }
    cr_assert_eq(pg->released, cap - per_page);
    for (size_t i = per_page; i < cap; i++) {
        char *p = mpool_alloc(pool, 512);
        cr_assert_eq(slab_of(p), pg);
        memset(p, 4, 512);
    }
    cr_assert_eq(pg->released, 0);
    cr_assert_eq(mpool_check(pool), 0);
    for (size_t i = 0; i < per_page; i++)
        for (size_t k = 0; k < 512; k++)
            cr_assert_eq(((unsigned char *)blocks[i])[k], 3);
    free(blocks);
    mpool_destroy(pool);
}

/* A remote free of a released block that raced with the trim (it found the
 * slab before the page became a stub, and pushed the block): the owner drops
 * it when it collects thread_free, so the block is handed out once. */
static void racing_remote_free_of_a_released_block(bool trim_again)
{
    mpool_t *pool = make_pool_ts(true, 16);
    struct page *pg;
    void **blocks = fill_slab(pool, 512, &pg);
    size_t cap = pg->capacity, per_page = PAGE_SIZE / 512;
    for (size_t i = per_page; i < cap; i++)
        mpool_free(pool, blocks[i]);
    mpool_trim(pool);
    cr_assert(page_is_released(pg + 1));
    void *victim = blocks[per_page + 1];
    __atomic_store_n(block_mark(victim), pool->key, __ATOMIC_RELAXED); /* what free_slab_block does */
    cr_assert_null(slab_free_remote(pg, victim));
    if (trim_again) /* a trim that takes thread_free itself (the push came after the collect) */
        slab_trim(pg);
    size_t n = cap - per_page;
    void **again = calloc(n + 1, sizeof *again);
    for (size_t i = 0; i < n; i++) {
        again[i] = mpool_alloc(pool, 512);
        cr_assert_eq(slab_of(again[i]), pg);
        for (size_t j = 0; j < i; j++)
            cr_assert_neq(again[j], again[i], "block %p handed out twice", again[i]);
    }
    cr_assert_eq(pg->released, 0);
    cr_assert_eq(mpool_check(pool), 0);
    again[n] = mpool_alloc(pool, 512);
    cr_assert_neq(slab_of(again[n]), pg, "the slab is full: the dropped block was not a spare");
    for (size_t i = 0; i <= n; i++)
        mpool_free(pool, again[i]);
    for (size_t i = 0; i < per_page; i++)
        mpool_free(pool, blocks[i]);
    cr_assert_eq(mpool_check(pool), 0);
    free(again);
    free(blocks);
    mpool_destroy(pool);
}

Test(slab, a_released_block_pushed_by_a_racing_remote_free_is_dropped)
{
    racing_remote_free_of_a_released_block(false);
    racing_remote_free_of_a_released_block(true);
}
