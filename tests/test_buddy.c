/*
 * test_buddy.c - the page allocator (buddy.h, buddy.c) driven directly, with
 * no pool: a struct buddy on the stack, its own struct budget, ts = false.
 *
 * Covered: the layout of a fresh region, alignment of runs (natural and
 * requested), tail trimming, no overlap, merging back to the fresh free-list
 * shape, buddy_check_locked after every step of a long random sequence
 * (alloc / free / shrink / trim), growth, the max_size budget, trimming and
 * the "clean pages read as zero" promise of *dirty == false.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buddy.h"
#include "common.h"
#include "region.h"
#include "testutil.h"


TestSuite(buddy);

/* ---- fixture -------------------------------------------------------------- */

struct fix {
    struct buddy b;
    struct budget budget;
};

static void fix_init(struct fix *f, size_t max, double growth)
{
    memset(f, 0, sizeof *f);
    f->budget.max = max;
    buddy_init(&f->b, NULL, &f->budget, growth);
}

static void fix_fini(struct fix *f)
{
    buddy_destroy(&f->b);
    cr_assert_eq(budget_held(&f->budget), 0, "budget holds %zu bytes after buddy_destroy",
                 budget_held(&f->budget));
}

static struct page *alloc_run(struct fix *f, size_t n, unsigned align_order, bool *dirty,
                              enum buddy_status *st)
{
    struct run_request req = {n, align_order, PAGE_LARGE, 0, 0};
    bool d = true;
    enum buddy_status s = BUDDY_NOMEM;
    struct page *pg = buddy_alloc(&f->b, &req, false, &d, &s);
    if (dirty)
        *dirty = d;
    if (st)
        *st = s;
    return pg;
}

static struct page *alloc_ok(struct fix *f, size_t n, unsigned align_order, bool *dirty)
{
    enum buddy_status st;
    struct page *pg = alloc_run(f, n, align_order, dirty, &st);
    cr_assert_not_null(pg, "buddy_alloc(%zu pages, align_order %u) failed with status %d", n,
                       align_order, (int)st);
    cr_assert_eq(st, BUDDY_OK);
    return pg;
}

static void check_ok(const struct fix *f, const char *when)
{
    size_t problems = buddy_check_locked(&f->b);
    cr_assert_eq(problems, 0, "buddy_check_locked found %zu problems %s", problems, when);
}

/* Data pages (meta pages excluded) of all regions. */
static size_t data_pages(const struct buddy *b)
{
    size_t n = 0;
    for (const struct region *r = b->regions; r; r = r->next)
        n += r->npages - r->meta_pages;
    return n;
}

static size_t region_count(const struct buddy *b)
{
    size_t n = 0;
    for (const struct region *r = b->regions; r; r = r->next)
        n++;
    return n;
}

/* Number of free runs per order. */
static void free_shape(const struct buddy *b, size_t shape[BUDDY_ORDERS])
{
    for (unsigned o = 0; o < BUDDY_ORDERS; o++) {
        shape[o] = 0;
        for (const struct page *pg = b->free[o]; pg; pg = pg->next)
            shape[o]++;
    }
}

static void assert_same_shape(const size_t a[BUDDY_ORDERS], const size_t b[BUDDY_ORDERS],
                              const char *when)
{
    for (unsigned o = 0; o < BUDDY_ORDERS; o++)
        cr_assert_eq(a[o], b[o], "%s: %zu free runs of order %u, expected %zu", when, a[o], o,
                     b[o]);
}

static size_t head_index(const struct page *pg)
{
    return page_index(page_region(pg), pg);
}

/* The run starts where its rules say: 4 MiB-aligned region, page index a
 * multiple of 2^max(ceil_log2(n), align_order). */
static void assert_run_aligned(const struct page *pg, size_t n, unsigned align_order)
{
    struct region *r = page_region(pg);
    cr_assert_eq((uintptr_t)r & (REGION_SIZE - 1), 0, "region %p not 4 MiB aligned", (void *)r);
    cr_assert_eq(r->magic, REGION_MAGIC);
    size_t idx = head_index(pg);
    unsigned order = ceil_log2(n);
    if (order < align_order)
        order = align_order;
    cr_assert_geq(idx, r->meta_pages, "run of %zu pages starts in the meta pages (index %zu)", n,
                  idx);
    cr_assert_leq(idx + n, r->npages, "run of %zu pages at index %zu passes the region end %u", n,
                  idx, r->npages);
    cr_assert_eq(idx & (((size_t)1 << order) - 1), 0,
                 "run of %zu pages (align_order %u) at page index %zu, not a multiple of %zu", n,
                 align_order, idx, (size_t)1 << order);
    cr_assert_eq((uintptr_t)page_start(pg) & ((PAGE_SIZE << order) - 1), 0,
                 "run of %zu pages at %p not aligned to %zu bytes", n, page_start(pg),
                 PAGE_SIZE << order);
    cr_assert_eq(pg->npages, n, "head says %u pages, asked for %zu", pg->npages, n);
    cr_assert_eq(pg->kind, PAGE_LARGE);
    cr_assert_eq(page_back(pg), 0);
}

/* ---- live-run bookkeeping ------------------------------------------------ */

struct live {
    struct page *head;
    char *start;
    size_t npages;
    uint64_t tag;
};

struct liveset {
    struct live *v;
    size_t n, cap;
    size_t pages;
};

static void live_add(struct liveset *s, struct page *head, size_t n, uint64_t tag)
{
    char *start = page_start(head);
    for (size_t i = 0; i < s->n; i++) {
        char *a = s->v[i].start, *ae = a + (s->v[i].npages << PAGE_SHIFT);
        char *be = start + (n << PAGE_SHIFT);
        cr_assert(be <= a || start >= ae,
                  "new run [%p, %p) of %zu pages overlaps live run [%p, %p) of %zu pages",
                  (void *)start, (void *)be, n, (void *)a, (void *)ae, s->v[i].npages);
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        cr_assert_not_null(s->v);
    }
    s->v[s->n++] = (struct live){head, start, n, tag};
    s->pages += n;
}

static void live_remove(struct liveset *s, size_t i)
{
    s->pages -= s->v[i].npages;
    s->v[i] = s->v[--s->n];
}

/* Writes the tag at the start of every page of the run. */
static void tag_run(const struct live *l)
{
    for (size_t k = 0; k < l->npages; k++) {
        uint64_t v = l->tag ^ k;
        memcpy(l->start + (k << PAGE_SHIFT), &v, sizeof v);
    }
}

static void verify_tags(const struct live *l)
{
    for (size_t k = 0; k < l->npages; k++) {
        uint64_t v;
        memcpy(&v, l->start + (k << PAGE_SHIFT), sizeof v);
        cr_assert_eq(v, l->tag ^ k, "page %zu of run %p (tag %llu) overwritten", k,
                     (void *)l->start, (unsigned long long)l->tag);
    }
}

/* A clean run (dirty == false) must read as zeros; checks the page starts,
 * where tag_run writes. */
static void verify_clean(const struct page *head, size_t n)
{
    const char *start = page_start(head);
    for (size_t k = 0; k < n; k++) {
        uint64_t v;
        memcpy(&v, start + (k << PAGE_SHIFT), sizeof v);
        cr_assert_eq(v, 0, "run %p reported clean, but page %zu holds %#llx", (void *)start, k,
                     (unsigned long long)v);
    }
}

static void verify_head(const struct live *l)
{
    cr_assert_eq(l->head->kind, PAGE_LARGE, "run %p lost its kind", (void *)l->start);
    cr_assert_eq(l->head->npages, l->npages, "run %p: head says %u pages, expected %zu",
                 (void *)l->start, l->head->npages, l->npages);
    struct region *r = page_region(l->head);
    cr_assert_eq(region_run_of(r, l->start), l->head);
    /* Only the first page of a large block leads to it (its pages keep back 0). */
    if (l->npages > 1)
        cr_assert_null(region_run_of(r, l->start + ((l->npages - 1) << PAGE_SHIFT)),
                       "last page of large run %p is taken for a run head", (void *)l->start);
}

/* ---- tests ---------------------------------------------------------------- */

Test(buddy, fresh_reserve_layout)
{
    struct fix f;
    fix_init(&f, 0, 2.0);
    cr_assert_eq(buddy_reserve(&f.b, 4 * MiB), BUDDY_OK);
    check_ok(&f, "after reserving 4 MiB");
    cr_assert_eq(region_count(&f.b), 1);
    struct region *r = f.b.regions;
    cr_assert_eq(r->npages, REGION_PAGES);
    cr_assert_eq(r->meta_pages, REGION_META_PAGES);
    cr_assert_eq(f.b.region_bytes, 4 * MiB);
    cr_assert_eq(budget_held(&f.budget), 4 * MiB);
    cr_assert_eq(f.b.free_pages, data_pages(&f.b), "free_pages %zu != data pages %zu",
                 f.b.free_pages, data_pages(&f.b));
    cr_assert_eq(f.b.free_pages, REGION_PAGES - REGION_META_PAGES);
    cr_assert_eq(r->free_pages, f.b.free_pages);
    cr_assert_eq(f.b.dirty_pages, 0);
    /* Pages 33..1023 decompose into aligned runs of orders 0,1,2,3,4,6,7,8,9. */
    size_t shape[BUDDY_ORDERS], want[BUDDY_ORDERS] = {1, 1, 1, 1, 1, 0, 1, 1, 1, 1};
    free_shape(&f.b, shape);
    assert_same_shape(shape, want, "fresh 4 MiB region");
    for (unsigned o = 0; o < BUDDY_ORDERS; o++)
        for (const struct page *pg = f.b.free[o]; pg; pg = pg->next) {
            cr_assert_eq(pg->kind, PAGE_FREE);
            cr_assert_eq(pg->order, o);
            cr_assert_eq(head_index(pg) % ((size_t)1 << o), 0);
            cr_assert_null(region_run_of(r, page_start(pg)), "a free page is found as a run");
        }
    fix_fini(&f);
}

Test(buddy, reserve_small_and_odd_sizes)
{
    struct fix f;
    fix_init(&f, 0, 2.0);
    /* 1 byte: the smallest region (64 pages). */
    cr_assert_eq(buddy_reserve(&f.b, 1), BUDDY_OK);
    cr_assert_eq(region_count(&f.b), 1);
    cr_assert_eq(f.b.regions->npages, REGION_MIN_PAGES);
    /* 5 MiB + 1 byte: one full region and a partial one. */
    cr_assert_eq(buddy_reserve(&f.b, 5 * MiB + 1), BUDDY_OK);
    check_ok(&f, "after odd reserves");
    cr_assert_eq(f.b.free_pages, data_pages(&f.b));
    cr_assert_geq(f.b.region_bytes, 5 * MiB + 1 + 128 * KiB);
    cr_assert_eq(budget_held(&f.budget), f.b.region_bytes);
    for (const struct region *r = f.b.regions; r; r = r->next) {
        cr_assert_eq((uintptr_t)r & (REGION_SIZE - 1), 0);
        cr_assert_eq(r->free_pages, r->npages - r->meta_pages);
    }
    fix_fini(&f);
}

Test(buddy, every_run_length_aligned_and_trimmed)
{
    struct fix f;
    fix_init(&f, 0, 2.0);
    cr_assert_eq(buddy_reserve(&f.b, 4 * MiB), BUDDY_OK);
    size_t free0 = f.b.free_pages;
    size_t shape0[BUDDY_ORDERS], shape[BUDDY_ORDERS];
    free_shape(&f.b, shape0);
    for (size_t n = 1; n <= 512; n++) {
        bool dirty;
        struct page *pg = alloc_ok(&f, n, 0, &dirty);
        assert_run_aligned(pg, n, 0);
        cr_assert_eq(region_count(&f.b), 1, "a run of %zu pages made the fresh region grow", n);
        cr_assert_eq(f.b.free_pages, free0 - n,
                     "after allocating %zu pages free_pages fell by %zu (tail not trimmed?)", n,
                     free0 - f.b.free_pages);
        cr_assert_eq(page_region(pg)->free_pages, free0 - n);
        /* Pages right after the run are free again, not part of it. */
        struct region *r = page_region(pg);
        size_t idx = head_index(pg);
        if (idx + n < r->npages)
            cr_assert_null(region_run_of(r, (char *)page_start(pg) + (n << PAGE_SHIFT)),
                           "page after a run of %zu pages is not free", n);
        check_ok(&f, "after an allocation");
        buddy_free(&f.b, pg, false);
        check_ok(&f, "after a free");
        cr_assert_eq(f.b.free_pages, free0, "free of %zu pages did not give them all back", n);
        free_shape(&f.b, shape);
        assert_same_shape(shape, shape0, "after alloc+free of one run");
    }
    fix_fini(&f);
}

Test(buddy, tail_trimming_17_pages)
{
    struct fix f;
    fix_init(&f, 0, 2.0);
    cr_assert_eq(buddy_reserve(&f.b, 4 * MiB), BUDDY_OK);
    size_t free0 = f.b.free_pages;
    struct page *pg = alloc_ok(&f, 17, 0, NULL);
    cr_assert_eq(f.b.free_pages, free0 - 17, "17 pages took %zu pages", free0 - f.b.free_pages);
    assert_run_aligned(pg, 17, 0);
    /* The other 15 pages of the order-5 run are free runs of orders 0..3. */
    struct region *r = page_region(pg);
    size_t idx = head_index(pg);
    const struct page *p0 = &r->pages[idx + 17], *p1 = &r->pages[idx + 18],
                      *p2 = &r->pages[idx + 20], *p3 = &r->pages[idx + 24];
    cr_assert(p0->kind == PAGE_FREE && p0->order == 0);
    cr_assert(p1->kind == PAGE_FREE && p1->order == 1);
    cr_assert(p2->kind == PAGE_FREE && p2->order == 2);
    cr_assert(p3->kind == PAGE_FREE && p3->order == 3);
    /* Those tail pieces can serve other requests without growing. */
    struct page *q = alloc_ok(&f, 8, 0, NULL);
    cr_assert_eq(region_count(&f.b), 1);
    check_ok(&f, "after allocating in the tail");
    buddy_free(&f.b, q, false);
    buddy_free(&f.b, pg, false);
    cr_assert_eq(f.b.free_pages, free0);
    check_ok(&f, "after freeing both");
    fix_fini(&f);
}

Test(buddy, alignment_requests)
{
    static const size_t lens[] = {1, 2, 3, 5, 8, 17, 100, 255, 256, 300, 512};
    struct fix f;
    fix_init(&f, 0, 2.0);
    cr_assert_eq(buddy_reserve(&f.b, 8 * MiB), BUDDY_OK);
    rng_t rng;
    rng_seed(&rng, test_seed(7));
    struct liveset live = {0};
    uint64_t tag = 1;
    for (int round = 0; round < 4; round++) {
        for (unsigned ao = 0; ao <= BUDDY_MAX_ORDER; ao++) {
            for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
                size_t n = lens[i];
                size_t before = f.b.free_pages, data_before = data_pages(&f.b);
                struct page *pg = alloc_ok(&f, n, ao, NULL);
                assert_run_aligned(pg, n, ao);
                /* Tail trimmed even when the alignment forced a larger run. */
                cr_assert_eq(f.b.free_pages + n, before + (data_pages(&f.b) - data_before),
                             "alloc of %zu pages at align_order %u took %zu pages", n, ao,
                             before + (data_pages(&f.b) - data_before) - f.b.free_pages);
                live_add(&live, pg, n, tag++);
                tag_run(&live.v[live.n - 1]);
                check_ok(&f, "after an aligned allocation");
                /* Free a random live run now and then so positions vary. */
                if (rng_below(&rng, 3) == 0) {
                    size_t k = (size_t)rng_below(&rng, live.n);
                    verify_tags(&live.v[k]);
                    buddy_free(&f.b, live.v[k].head, false);
                    live_remove(&live, k);
                    check_ok(&f, "after a free");
                }
            }
        }
    }
    for (size_t k = 0; k < live.n; k++) {
        verify_tags(&live.v[k]);
        verify_head(&live.v[k]);
    }
    while (live.n) {
        buddy_free(&f.b, live.v[0].head, false);
        live_remove(&live, 0);
    }
    check_ok(&f, "after freeing everything");
    cr_assert_eq(f.b.free_pages, data_pages(&f.b));
    free(live.v);
    fix_fini(&f);
}

static void shuffle(rng_t *rng, struct live *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(rng, i);
        struct live t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* Fills a capped buddy with random runs, then frees them in random order:
 * no overlap, and everything merges back to the fresh shape. */
static void fill_and_free_random(uint64_t seed, size_t max_len, bool with_align)
{
    struct fix f;
    fix_init(&f, 4 * MiB, 2.0);
    cr_assert_eq(buddy_reserve(&f.b, 4 * MiB), BUDDY_OK);
    size_t free0 = f.b.free_pages;
    size_t shape0[BUDDY_ORDERS], shape[BUDDY_ORDERS];
    free_shape(&f.b, shape0);
    rng_t rng;
    rng_seed(&rng, seed);
    struct liveset live = {0};
    uint64_t tag = seed << 20;
    size_t fails = 0;
    while (fails < 50) {
        size_t n = (size_t)rng_logrange(&rng, 1, max_len);
        unsigned ao = with_align && rng_below(&rng, 4) == 0 ? (unsigned)rng_below(&rng, 6) : 0;
        enum buddy_status st;
        struct page *pg = alloc_run(&f, n, ao, NULL, &st);
        cr_assert_leq(budget_held(&f.budget), f.budget.max);
        if (!pg) {
            cr_assert_eq(st, BUDDY_FULL, "failed allocation of %zu pages: status %d", n, (int)st);
            fails++;
            continue;
        }
        assert_run_aligned(pg, n, ao);
        live_add(&live, pg, n, ++tag);
        tag_run(&live.v[live.n - 1]);
        cr_assert_eq(live.pages + f.b.free_pages, free0, "pages lost: live %zu + free %zu != %zu",
                     live.pages, f.b.free_pages, free0);
    }
    cr_assert_eq(region_count(&f.b), 1, "a 4 MiB cap allowed a second region");
    check_ok(&f, "after filling");
    shuffle(&rng, live.v, live.n);
    while (live.n) {
        struct live *l = &live.v[live.n - 1];
        verify_tags(l);
        verify_head(l);
        buddy_free(&f.b, l->head, false);
        live_remove(&live, live.n - 1);
        check_ok(&f, "while freeing in random order");
        cr_assert_eq(live.pages + f.b.free_pages, free0);
    }
    cr_assert_eq(f.b.free_pages, free0);
    free_shape(&f.b, shape);
    assert_same_shape(shape, shape0, "after freeing everything in random order");
    free(live.v);
    fix_fini(&f);
}

Test(buddy, fill_then_free_random_order_merges_back)
{
    for (uint64_t seed = 1; seed <= 8; seed++) {
        fill_and_free_random(test_seed(100) + seed, 64, false);
        fill_and_free_random(test_seed(200) + seed, 512, false);
        fill_and_free_random(test_seed(300) + seed, 40, true);
    }
}

/* A long random sequence of alloc / free / shrink (and an occasional trim),
 * with buddy_check_locked and page conservation after every step. */
Test(buddy, random_sequence_checked_every_step)
{
    struct fix f;
    fix_init(&f, 0, 2.0);
    cr_assert_eq(buddy_reserve(&f.b, 1 * MiB), BUDDY_OK);
    rng_t rng;
    rng_seed(&rng, test_seed(4242));
    struct liveset live = {0};
    uint64_t tag = 0;
    size_t ops = test_scaled(20000, 1000);
    size_t nalloc = 0, nfree = 0, nshrink = 0, ntrim = 0, nclean = 0;
    for (size_t op = 0; op < ops; op++) {
        unsigned what = (unsigned)rng_below(&rng, 100);
        if (live.n < 8 || (what < 45 && live.n < 150)) {
            size_t n = (size_t)rng_logrange(&rng, 1, 512);
            unsigned ao = rng_below(&rng, 5) == 0 ? (unsigned)rng_below(&rng, 10) : 0;
            size_t data_before = data_pages(&f.b), free_before = f.b.free_pages;
            bool dirty;
            struct page *pg = alloc_ok(&f, n, ao, &dirty);
            assert_run_aligned(pg, n, ao);
            cr_assert_eq(f.b.free_pages + n, free_before + (data_pages(&f.b) - data_before),
                         "op %zu: alloc of %zu pages (align_order %u) took %zu pages", op, n, ao,
                         free_before + (data_pages(&f.b) - data_before) - f.b.free_pages);
            if (!dirty) {
                verify_clean(pg, n);
                nclean++;
            }
            live_add(&live, pg, n, ++tag);
            tag_run(&live.v[live.n - 1]);
            nalloc++;
        } else if (what < 85) {
            size_t k = (size_t)rng_below(&rng, live.n);
            verify_tags(&live.v[k]);
            verify_head(&live.v[k]);
            size_t before = f.b.free_pages;
            buddy_free(&f.b, live.v[k].head, false);
            cr_assert_eq(f.b.free_pages, before + live.v[k].npages, "op %zu: free of %zu pages",
                         op, live.v[k].npages);
            live_remove(&live, k);
            nfree++;
        } else if (what < 99) {
            size_t k = (size_t)rng_below(&rng, live.n);
            struct live *l = &live.v[k];
            size_t keep = (size_t)rng_range(&rng, 1, l->npages);
            size_t before = f.b.free_pages;
            buddy_shrink_locked(&f.b, l->head, keep);
            cr_assert_eq(f.b.free_pages, before + (l->npages - keep),
                         "op %zu: shrink %zu -> %zu pages freed %zu pages", op, l->npages, keep,
                         f.b.free_pages - before);
            cr_assert_eq(l->head->npages, keep);
            if (keep < l->npages) {
                struct region *r = page_region(l->head);
                cr_assert_null(region_run_of(r, l->start + (keep << PAGE_SHIFT)),
                               "op %zu: page past a shrunk run still belongs to it", op);
            }
            live.pages -= l->npages - keep;
            l->npages = keep;
            verify_tags(l);
            verify_head(l);
            nshrink++;
        } else {
            size_t regions_before = region_count(&f.b);
            buddy_trim(&f.b, false);
            cr_assert_eq(f.b.dirty_pages, 0, "op %zu: dirty pages left after trim", op);
            cr_assert_leq(region_count(&f.b), regions_before);
            for (const struct region *r = f.b.regions; r; r = r->next)
                cr_assert_lt(r->free_pages, r->npages - r->meta_pages,
                             "op %zu: trim kept an empty region", op);
            ntrim++;
        }
        check_ok(&f, "in the random sequence");
        cr_assert_eq(live.pages + f.b.free_pages, data_pages(&f.b),
                     "op %zu: live %zu + free %zu != data pages %zu", op, live.pages,
                     f.b.free_pages, data_pages(&f.b));
        cr_assert_eq(budget_held(&f.budget), f.b.region_bytes);
        cr_assert_leq(f.b.dirty_pages, f.b.free_pages);
    }
    cr_assert(nalloc > 100 && nfree > 100 && nshrink > 100 && ntrim > 10,
              "op mix too thin: %zu alloc, %zu free, %zu shrink, %zu trim", nalloc, nfree,
              nshrink, ntrim);
    cr_assert_gt(nclean, 0, "no clean allocation was ever checked");
    for (size_t k = 0; k < live.n; k++)
        verify_tags(&live.v[k]);
    while (live.n) {
        buddy_free(&f.b, live.v[live.n - 1].head, false);
        live_remove(&live, live.n - 1);
    }
    check_ok(&f, "after freeing everything");
    cr_assert_eq(f.b.free_pages, data_pages(&f.b));
    cr_assert_gt(buddy_trim(&f.b, false), 0);
    cr_assert_null(f.b.regions, "trim of an empty allocator kept regions");
    cr_assert_eq(f.b.region_bytes, 0);
    free(live.v);
    fix_fini(&f);
}

Test(buddy, growth_from_nothing)
{
    struct fix f;
    fix_init(&f, 0, 2.0);
    cr_assert_null(f.b.regions);
    cr_assert_eq(f.b.region_bytes, 0);
    bool dirty;
    struct page *first = alloc_ok(&f, 1, 0, &dirty);
    cr_assert_not(dirty, "a run from a new region must be clean");
    cr_assert_not_null(f.b.regions);
    cr_assert_gt(f.b.region_bytes, 0);
    cr_assert_eq(budget_held(&f.budget), f.b.region_bytes);
    check_ok(&f, "after the first growth");
    struct liveset live = {0};
    live_add(&live, first, 1, 1);
    tag_run(&live.v[0]);
    size_t growths = 0;
    /* Single pages until the allocator has grown several times: each growth
     * at least doubles the size (growth_factor 2). */
    while (f.b.region_bytes < 32 * MiB) {
        size_t before = f.b.region_bytes;
        struct page *pg = alloc_ok(&f, 1, 0, &dirty);
        cr_assert_not(dirty, "a never-used page reported dirty");
        verify_clean(pg, 1);
        live_add(&live, pg, 1, live.n + 1);
        tag_run(&live.v[live.n - 1]);
        if (f.b.region_bytes != before) {
            growths++;
            cr_assert_geq(f.b.region_bytes, 2 * before,
                          "growth from %zu bytes reached only %zu (growth_factor 2)", before,
                          f.b.region_bytes);
            check_ok(&f, "after a growth");
        }
        cr_assert_eq(budget_held(&f.budget), f.b.region_bytes);
    }
    cr_assert_geq(growths, 5);
    cr_assert_gt(region_count(&f.b), 1);
    for (size_t k = 0; k < live.n; k++)
        verify_tags(&live.v[k]);
    check_ok(&f, "after growing to 32 MiB");
    /* A run of the largest order after growth by single pages. */
    struct page *big = alloc_ok(&f, 512, 0, NULL);
    assert_run_aligned(big, 512, 0);
    check_ok(&f, "after a 512-page run");
    free(live.v);
    fix_fini(&f);
}

Test(buddy, growth_factor_one_grows_by_what_is_needed)
{
    struct fix f;
    fix_init(&f, 0, 1.0);
    for (int i = 0; i < 40; i++) {
        size_t before = f.b.region_bytes;
        struct page *pg = alloc_ok(&f, 16, 0, NULL);
        assert_run_aligned(pg, 16, 0);
        /* At most the smallest region that holds an aligned 16-page run. */
        size_t smallest = (align_up(REGION_META_PAGES, 16) + 16) << PAGE_SHIFT;
        cr_assert_leq(f.b.region_bytes, before + smallest,
                      "growth_factor 1 grew from %zu to %zu bytes for 16 pages", before,
                      f.b.region_bytes);
    }
    check_ok(&f, "after growth by 1.0");
    fix_fini(&f);
}

Test(buddy, budget_max_is_never_passed)
{
    for (int variant = 0; variant < 3; variant++) {
        size_t max = variant == 0 ? 8 * MiB : variant == 1 ? 10 * MiB + 64 * KiB : 3 * MiB;
        struct fix f;
        fix_init(&f, max, 2.0);
        rng_t rng;
        rng_seed(&rng, test_seed(31) + (uint64_t)variant);
        size_t live_pages = 0, fulls = 0;
        struct liveset live = {0};
        for (int i = 0; i < 4000 && fulls < 200; i++) {
            size_t n = (size_t)rng_logrange(&rng, 1, 512);
            enum buddy_status st;
            struct page *pg = alloc_run(&f, n, 0, NULL, &st);
            cr_assert_leq(budget_held(&f.budget), max, "held %zu > max %zu",
                          budget_held(&f.budget), max);
            cr_assert_leq(f.b.region_bytes, max);
            if (!pg) {
                cr_assert_eq(st, BUDDY_FULL, "allocation of %zu pages under a cap: status %d", n,
                             (int)st);
                fulls++;
                continue;
            }
            live_add(&live, pg, n, (uint64_t)i + 1);
            live_pages += n;
            cr_assert_leq(live_pages << PAGE_SHIFT, max);
        }
        cr_assert_gt(fulls, 0, "max %zu never refused an allocation", max);
        check_ok(&f, "under a cap");
        while (live.n) {
            buddy_free(&f.b, live.v[live.n - 1].head, false);
            live_remove(&live, live.n - 1);
        }
        check_ok(&f, "after freeing under a cap");
        free(live.v);
        fix_fini(&f);
    }
}

Test(buddy, budget_shared_with_others)
{
    /* Someone else (huge blocks) holds most of the budget. */
    struct fix f;
    fix_init(&f, 4 * MiB, 2.0);
    f.budget.held = 4 * MiB - 64 * KiB;
    enum buddy_status st;
    struct page *pg = alloc_run(&f, 1, 0, NULL, &st);
    cr_assert_null(pg, "a run was served past the budget");
    cr_assert_eq(st, BUDDY_FULL);
    cr_assert_eq(budget_held(&f.budget), 4 * MiB - 64 * KiB);
    cr_assert_null(f.b.regions);
    f.budget.held -= 2 * MiB; /* they gave some back */
    pg = alloc_run(&f, 1, 0, NULL, &st);
    cr_assert_not_null(pg, "status %d", (int)st);
    cr_assert_leq(budget_held(&f.budget), 4 * MiB);
    check_ok(&f, "after a shared-budget allocation");
    buddy_free(&f.b, pg, false);
    buddy_trim(&f.b, false);
    cr_assert_eq(budget_held(&f.budget), 2 * MiB - 64 * KiB, "trim did not give the region back");
    f.budget.held = 0;
    fix_fini(&f);
}

Test(buddy, full_cap_releases_empty_regions_to_serve)
{
    /* A 2 MiB region cannot hold a 512-page run; under a 4 MiB cap the empty
     * region must be given back so that a region that fits can be mapped. */
    struct fix f;
    fix_init(&f, 4 * MiB, 2.0);
    cr_assert_eq(buddy_reserve(&f.b, 2 * MiB), BUDDY_OK);
    enum buddy_status st;
    struct page *pg = alloc_run(&f, 512, 0, NULL, &st);
    cr_assert_not_null(pg, "512 pages under a 4 MiB cap with an empty 2 MiB region: status %d",
                       (int)st);
    assert_run_aligned(pg, 512, 0);
    cr_assert_leq(budget_held(&f.budget), 4 * MiB);
    check_ok(&f, "after releasing an empty region");
    fix_fini(&f);
}

/* Takes every page of a capped 4 MiB allocator in random runs and fills them
 * with 0xAB. */
static void fill_all_dirty(struct fix *f, struct liveset *live, rng_t *rng)
{
    size_t free0 = f->b.free_pages;
    for (;;) {
        size_t n = (size_t)rng_logrange(rng, 1, 32);
        enum buddy_status st;
        struct page *pg = alloc_run(f, n, 0, NULL, &st);
        if (!pg) {
            pg = alloc_run(f, 1, 0, NULL, &st);
            if (!pg)
                break;
            n = 1;
        }
        live_add(live, pg, n, live->n + 1);
        memset(page_start(pg), 0xAB, n << PAGE_SHIFT);
    }
    cr_assert_eq(f->b.free_pages, 0, "a page was left free");
    cr_assert_eq(live->pages, free0);
}

/* Allocates every free page; each run must be clean and read as zeros.
 * Returns the pages taken. */
static size_t take_all_clean(struct fix *f, rng_t *rng)
{
    size_t got = 0;
    for (;;) {
        size_t n = (size_t)rng_logrange(rng, 1, 64);
        bool dirty;
        enum buddy_status st;
        struct page *pg = alloc_run(f, n, 0, &dirty, &st);
        if (!pg) {
            pg = alloc_run(f, 1, 0, &dirty, &st);
            if (!pg)
                break;
            n = 1;
        }
        cr_assert_not(dirty, "a run of %zu pages from trimmed pages reported dirty", n);
        cr_assert(bytes_all_zero(page_start(pg), n << PAGE_SHIFT),
                  "a clean run of %zu pages does not read as zeros", n);
        got += n;
    }
    return got;
}

static void assert_runs_hold_ab(const struct liveset *live, size_t from)
{
    for (size_t k = from; k < live->n; k++) {
        const unsigned char *p = (const unsigned char *)live->v[k].start;
        size_t len = live->v[k].npages << PAGE_SHIFT;
        cr_assert(p[0] == 0xAB && p[len / 2] == 0xAB && p[len - 1] == 0xAB,
                  "trim wiped live run %p of %zu pages", (void *)p, live->v[k].npages);
    }
}

Test(buddy, trim_decommits_dirty_runs)
{
    struct fix f;
    fix_init(&f, 4 * MiB, 2.0);
    cr_assert_eq(buddy_reserve(&f.b, 4 * MiB), BUDDY_OK);
    struct liveset live = {0};
    rng_t rng;
    rng_seed(&rng, test_seed(55));
    fill_all_dirty(&f, &live, &rng);
    /* Free some runs: every free page is then dirty (no clean page to merge
     * with), and the total stays under the automatic purge threshold. */
    size_t freed = 0;
    for (size_t k = 0; k < live.n && freed < 100; k++) {
        if (live.v[k].npages + freed > 200)
            continue;
        freed += live.v[k].npages;
        buddy_free(&f.b, live.v[k].head, false);
        live_remove(&live, k); /* the last run moves into slot k and is skipped */
    }
    cr_assert_geq(freed, 100);
    check_ok(&f, "after freeing dirty runs");
    cr_assert_eq(f.b.free_pages, freed);
    cr_assert_eq(f.b.dirty_pages, freed, "%zu pages freed but %zu dirty", freed,
                 f.b.dirty_pages);
    size_t released = buddy_trim(&f.b, false);
    cr_assert_eq(released, freed << PAGE_SHIFT,
                 "buddy_trim released %zu bytes after freeing %zu dirty pages", released, freed);
    cr_assert_eq(f.b.dirty_pages, 0);
    cr_assert_eq(region_count(&f.b), 1, "trim unmapped a region with live runs");
    check_ok(&f, "after trim");
    cr_assert_eq(buddy_trim(&f.b, false), 0, "a second trim released memory again");
    cr_assert_eq(take_all_clean(&f, &rng), freed);
    assert_runs_hold_ab(&live, 0);
    free(live.v);
    fix_fini(&f);
}

Test(buddy, trim_after_freeing_nearly_everything)
{
    struct fix f;
    fix_init(&f, 4 * MiB, 2.0);
    cr_assert_eq(buddy_reserve(&f.b, 4 * MiB), BUDDY_OK);
    size_t free0 = f.b.free_pages;
    struct liveset live = {0};
    rng_t rng;
    rng_seed(&rng, test_seed(56));
    fill_all_dirty(&f, &live, &rng);
    size_t keep_n = live.v[0].npages;
    while (live.n > 1) {
        buddy_free(&f.b, live.v[live.n - 1].head, false);
        live_remove(&live, live.n - 1);
    }
    check_ok(&f, "after freeing dirty runs");
    cr_assert_eq(f.b.free_pages, free0 - keep_n);
    buddy_trim(&f.b, false);
    cr_assert_eq(f.b.dirty_pages, 0);
    cr_assert_eq(region_count(&f.b), 1, "trim unmapped a region with a live run");
    check_ok(&f, "after trim");
    cr_assert_eq(take_all_clean(&f, &rng), free0 - keep_n);
    assert_runs_hold_ab(&live, 0);
    free(live.v);
    fix_fini(&f);
}

/* Pages freed with data in them, then handed out again in smaller pieces
 * (split halves and trimmed tails): every piece reported clean must read as
 * zeros.  Sizes stay under the automatic purge threshold so nothing is
 * decommitted in between. */
Test(buddy, split_and_tail_of_dirty_run_stay_dirty)
{
    for (int variant = 0; variant < 2; variant++) {
        struct fix f;
        fix_init(&f, 4 * MiB, 2.0);
        cr_assert_eq(buddy_reserve(&f.b, 4 * MiB), BUDDY_OK);
        struct liveset live = {0};
        enum buddy_status st;
        struct page *pg;
        while ((pg = alloc_run(&f, 64, 0, NULL, &st)) != NULL)
            live_add(&live, pg, 64, live.n + 1);
        while ((pg = alloc_run(&f, 1, 0, NULL, &st)) != NULL)
            live_add(&live, pg, 1, live.n + 1);
        cr_assert_eq(f.b.free_pages, 0);
        for (size_t k = 0; k < live.n; k++)
            memset(live.v[k].start, 0xC7, live.v[k].npages << PAGE_SHIFT);
        /* Free one 64-page run full of data. */
        size_t k64 = 0;
        while (live.v[k64].npages != 64)
            k64++;
        buddy_free(&f.b, live.v[k64].head, false);
        cr_assert_eq(f.b.dirty_pages, 64);
        size_t got = 0;
        if (variant == 1) { /* 33 pages: the 31-page tail is given back */
            bool dirty;
            pg = alloc_ok(&f, 33, 0, &dirty);
            if (!dirty)
                cr_assert(bytes_all_zero(page_start(pg), 33 << PAGE_SHIFT));
            got += 33;
        }
        for (;;) {
            bool dirty;
            pg = alloc_run(&f, 1, 0, &dirty, &st);
            if (!pg)
                break;
            got++;
            if (!dirty)
                cr_assert(bytes_all_zero(page_start(pg), PAGE_SIZE),
                          "variant %d: a page of a freed dirty run was reported clean but holds "
                          "old data",
                          variant);
        }
        cr_assert_eq(got, 64);
        check_ok(&f, "after reusing a dirty run");
        free(live.v);
        fix_fini(&f);
    }
}

Test(buddy, trim_unmaps_empty_regions)
{
    struct fix f;
    fix_init(&f, 0, 2.0);
    cr_assert_eq(buddy_reserve(&f.b, 12 * MiB), BUDDY_OK);
    cr_assert_eq(region_count(&f.b), 3);
    struct page *pg = alloc_ok(&f, 100, 0, NULL);
    memset(page_start(pg), 0x5A, 100 << PAGE_SHIFT);
    struct region *used = page_region(pg);
    size_t released = buddy_trim(&f.b, false);
    cr_assert_eq(released, 8 * MiB, "trim released %zu bytes, expected the two empty regions",
                 released);
    cr_assert_eq(region_count(&f.b), 1);
    cr_assert_eq(f.b.regions, used);
    cr_assert_eq(budget_held(&f.budget), 4 * MiB);
    check_ok(&f, "after trimming empty regions");
    buddy_free(&f.b, pg, false);
    cr_assert_gt(f.b.dirty_pages, 0, "a freed run is not dirty");
    released = buddy_trim(&f.b, false);
    cr_assert_geq(released, 4 * MiB);
    cr_assert_null(f.b.regions);
    cr_assert_eq(budget_held(&f.budget), 0);
    bool dirty;
    pg = alloc_ok(&f, 100, 0, &dirty);
    cr_assert_not(dirty);
    cr_assert(bytes_all_zero(page_start(pg), 100 << PAGE_SHIFT));
    check_ok(&f, "after regrowing");
    fix_fini(&f);
}

Test(buddy, shrink_gives_back_tail)
{
    struct fix f;
    fix_init(&f, 0, 2.0);
    cr_assert_eq(buddy_reserve(&f.b, 4 * MiB), BUDDY_OK);
    size_t free0 = f.b.free_pages;
    size_t shape0[BUDDY_ORDERS], shape[BUDDY_ORDERS];
    free_shape(&f.b, shape0);
    for (size_t n = 2; n <= 512; n += 17) {
        for (size_t keep = 1; keep <= n; keep += (n / 7) + 1) {
            struct page *pg = alloc_ok(&f, n, 0, NULL);
            memset(page_start(pg), 0x11, keep << PAGE_SHIFT);
            buddy_shrink_locked(&f.b, pg, keep);
            cr_assert_eq(f.b.free_pages, free0 - keep, "%zu pages shrunk to %zu: %zu pages taken",
                         n, keep, free0 - f.b.free_pages);
            cr_assert_eq(pg->npages, keep);
            check_ok(&f, "after a shrink");
            /* The freed tail can be reused without growth. */
            if (keep < n && n - keep <= 256) { /* an order-8 run is left in the region */
                struct page *q = alloc_ok(&f, n - keep, 0, NULL);
                cr_assert_eq(region_count(&f.b), 1);
                check_ok(&f, "after reusing a tail");
                buddy_free(&f.b, q, false);
            }
            buddy_free(&f.b, pg, false);
            cr_assert_eq(f.b.free_pages, free0);
            free_shape(&f.b, shape);
            assert_same_shape(shape, shape0, "after shrink and free");
        }
    }
    fix_fini(&f);
}

/* ---- decay: dirty runs that stay free go back to the system --------------- */

/* Sleeps ms milliseconds (at least). */
static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

Test(buddy, dirty_runs_decay_only_after_staying_free)
{
    struct fix f;
    fix_init(&f, 0, 2.0);
    cr_assert_eq(buddy_reserve(&f.b, 8 << 20), BUDDY_OK);
    /* Dirty well past the threshold: 16 runs of 256 pages (16 MiB) written and freed. */
    struct page *runs[16];
    for (int i = 0; i < 16; i++) {
        runs[i] = alloc_ok(&f, 256, 0, NULL);
        memset(page_start(runs[i]), 0xA5, 256 * PAGE_SIZE);
    }
    for (int i = 0; i < 16; i++)
        buddy_free(&f.b, runs[i], false);
    size_t dirty = f.b.dirty_pages;
    cr_assert_geq(dirty, 16 * 256, "freed pages are not counted dirty (%zu)", dirty);
    cr_assert_gt(dirty, f.b.purge_threshold, "the test must pass the threshold");
    /* Freed just now: activity does not return them yet (they may be taken again). */
    struct page *one = alloc_ok(&f, 1, 0, NULL);
    buddy_free(&f.b, one, false);
    cr_assert_geq(f.b.dirty_pages, dirty, "runs freed moments ago were returned at once");
    check_ok(&f, "before the decay");
    /* After they stay free a while, the next activity returns them. */
    sleep_ms(150);
    one = alloc_ok(&f, 1, 0, NULL);
    buddy_free(&f.b, one, false);
    cr_assert_leq(f.b.dirty_pages, 1, "runs that stayed free 150 ms are still dirty (%zu pages)",
                  f.b.dirty_pages);
    check_ok(&f, "after the decay");
    /* Decommitted pages read as zero when taken again. */
    bool was_dirty = true;
    struct page *again = alloc_ok(&f, 256, 0, &was_dirty);
    if (!was_dirty)
        for (size_t k = 0; k < 256 * PAGE_SIZE; k += 512)
            cr_assert_eq(((unsigned char *)page_start(again))[k], 0);
    buddy_free(&f.b, again, false);
    fix_fini(&f);
}
