/*
 * buddy.c - a binary buddy allocator of pages (after Knuth, TAOCP 2.5, and
 * SQLite's memsys5), spread over the regions of one pool.
 *
 * Rules and encoding
 *   - A run of order k is 2^k pages whose first page index (counted from the
 *     region base, which is 4 MiB aligned) is a multiple of 2^k; its buddy is
 *     the run at index ^ 2^k.  Orders go up to 9 (2 MiB, half a region).
 *   - A free run is described by its head descriptor: kind PAGE_FREE, `order`,
 *     back 0, linked on free[order]; `dirty` counts (from above) its pages
 *     that may be resident.  A head absorbed by a merge gets order 0xFF, so it can never
 *     pass for a free buddy.
 *   - Freeing merges a run with its buddy while the buddy is a free run of the
 *     same order inside the same region, so two free buddies never coexist.
 *   - A request for n pages takes a run of order ceil(log2 n) (or the
 *     alignment's order, if larger) and gives the unused tail back at once as
 *     the aligned power-of-two pieces it decomposes into: a 65 KiB block holds
 *     17 pages of address space, not 32.  Freeing n pages frees the same
 *     decomposition, and the pieces merge back.
 *   - Regions may be shorter than 4 MiB: their data pages are decomposed into
 *     the largest aligned runs that fit.
 *
 * Invariants (buddy_check_locked verifies them)
 *   Every data page belongs to exactly one run (free, slab or large block);
 *   every free run is on the list of its order exactly once; free_pages and
 *   dirty_pages equal the sums over the lists.
 *
 * Bounds
 *   Allocation and free are O(log n) in the region size: at most 9 splits or
 *   merges, plus the tail pieces (at most 9).  As for every buddy system,
 *   Robson's bound applies: with requests rounded to powers of two, memory
 *   needed is at most M * (1 + log2(n)/2) for live size M and largest request n;
 *   tail trimming only reduces the rounding loss.
 *
 * Returning memory
 *   Freed runs are dirty, and each free run remembers when its newest dirty
 *   page was freed.  When dirty pages pass purge_threshold (1/8 of the pool,
 *   at least 1 MiB), the page allocator's allocations and frees (at most
 *   every 10 ms) decommit the dirty runs that have stayed free for 100 ms
 *   (prim_decommit).  So resident memory falls after a peak while the program
 *   goes on using the pool, and memory freed and soon taken again (rounds of
 *   allocation) is not given back and faulted in again each time.  A program
 *   that frees and then stops calling the pool keeps its dirty pages until it
 *   calls mpool_trim (as with peers that purge on activity only).
 */
#include "buddy.h"
#include "sanitize.h"

#include <string.h>

#include "list.h"
#include "prim.h"

#define PURGE_MIN_PAGES 256   /* 1 MiB */
#define PURGE_AGE_MS 100      /* dirty runs freed longer ago than this are returned... */
#define PURGE_INTERVAL_MS 10  /* ...checked at most this often */
#define ORDER_ABSORBED 0xFF

static size_t run_pages(unsigned order) { return (size_t)1 << order; }

/* Puts a run on its free list, without merging; dirty: pages that may be
 * resident (at most the run's length is kept), freed at `stamp`. */
static void buddy_insert_locked(struct buddy *b, struct page *pg, unsigned order, size_t dirty,
                                uint32_t stamp)
{
    pg->stamp = stamp;
    pg->kind = PAGE_FREE;
    pg->order = (uint8_t)order;
    page_clear_back(pg);
    pg->flags = 0;
    pg->dirty = dirty < run_pages(order) ? dirty : run_pages(order);
    LIST_PUSH(b->free[order], pg, next, prev);
    b->free_pages += run_pages(order);
    page_region(pg)->free_pages += (uint32_t)run_pages(order);
    b->dirty_pages += pg->dirty;
}

static void buddy_unlink_locked(struct buddy *b, struct page *pg)
{
    LIST_REMOVE(b->free[pg->order], pg, next, prev);
    b->free_pages -= run_pages(pg->order);
    page_region(pg)->free_pages -= (uint32_t)run_pages(pg->order);
    b->dirty_pages -= pg->dirty;
}

/* Frees one aligned run of the given order, merging it with free buddies. */
static void buddy_release_locked(struct buddy *b, struct page *pg, unsigned order, size_t dirty,
                                 uint32_t stamp)
{
    struct region *r = page_region(pg);
    size_t idx = page_index(r, pg);
    while (order < BUDDY_MAX_ORDER) {
        size_t bi = idx ^ run_pages(order);
        if (bi < r->meta_pages || bi + run_pages(order) > r->npages)
            break;
        struct page *bud = &r->pages[bi];
        if (bud->kind != PAGE_FREE || bud->order != order || page_back(bud) != 0)
            break;
        buddy_unlink_locked(b, bud);
        if (bud->dirty && (int32_t)(bud->stamp - stamp) > 0) /* keep the newest stamp */
            stamp = bud->stamp;
        dirty += bud->dirty;
        struct page *absorbed = bi > idx ? bud : &r->pages[idx];
        absorbed->order = ORDER_ABSORBED;
        absorbed->kind = PAGE_FREE;
        idx &= ~run_pages(order);
        order++;
    }
    buddy_insert_locked(b, &r->pages[idx], order, dirty, stamp);
}

/* Frees pages [idx, idx + n) of r as the aligned runs they decompose into;
 * each run counts at most `dirty` pages that may be resident. */
static void buddy_release_range_locked(struct buddy *b, struct region *r, size_t idx, size_t n,
                                       size_t dirty, uint32_t stamp, bool merge)
{
    while (n) {
        unsigned order = idx ? (unsigned)__builtin_ctzll(idx) : BUDDY_MAX_ORDER;
        if (order > BUDDY_MAX_ORDER)
            order = BUDDY_MAX_ORDER;
        while (run_pages(order) > n)
            order--;
        size_t piece_dirty = dirty < run_pages(order) ? dirty : run_pages(order);
        if (merge)
            buddy_release_locked(b, &r->pages[idx], order, piece_dirty, stamp);
        else
            buddy_insert_locked(b, &r->pages[idx], order, piece_dirty, stamp);
        idx += run_pages(order);
        n -= run_pages(order);
    }
}

void buddy_init(struct buddy *b, struct mpool_pool *pool, struct budget *budget, double growth_factor)
{
    memset(b, 0, sizeof *b);
    lock_init(&b->lock);
    b->pool = pool;
    b->budget = budget;
    b->growth_factor = growth_factor;
    b->purge_threshold = PURGE_MIN_PAGES;
}

static void buddy_update_threshold(struct buddy *b)
{
    size_t eighth = (b->region_bytes >> PAGE_SHIFT) / 8;
    b->purge_threshold = eighth > PURGE_MIN_PAGES ? eighth : PURGE_MIN_PAGES;
}

/* Maps one region of npages pages and adopts its data pages. */
static enum buddy_status buddy_add_region_locked(struct buddy *b, size_t npages)
{
    size_t bytes = npages << PAGE_SHIFT;
    if (!budget_take(b->budget, bytes))
        return BUDDY_FULL;
    struct region *r = region_create(b->pool, npages);
    if (!r) {
        budget_give(b->budget, bytes);
        return BUDDY_NOMEM;
    }
    LIST_PUSH(b->regions, r, next, prev);
    b->region_bytes += bytes;
    __atomic_store_n(&b->nregions, b->nregions + 1, __ATOMIC_RELAXED);
    buddy_release_range_locked(b, r, r->meta_pages, r->npages - r->meta_pages, 0, 0, false);
    buddy_update_threshold(b);
    return BUDDY_OK;
}

/* Unmaps a region none of whose data pages is allocated; false if the system
 * refused, and the region then stays as it was, its free runs back on the
 * lists with their dirty counts and stamps. */
static bool buddy_remove_region_locked(struct buddy *b, struct region *r)
{
    for (size_t i = r->meta_pages; i < r->npages;) {
        struct page *pg = &r->pages[i];
        mpool_assert_internal(pg->kind == PAGE_FREE && pg->order < BUDDY_ORDERS, "an empty region holds only free runs");
        i += run_pages(pg->order);
        buddy_unlink_locked(b, pg);
    }
    LIST_REMOVE(b->regions, r, next, prev);
    size_t bytes = (size_t)r->npages << PAGE_SHIFT;
    if (!region_destroy(r)) {
        LIST_PUSH(b->regions, r, next, prev);
        for (size_t i = r->meta_pages; i < r->npages;) { /* unlinking kept order, dirty, stamp */
            struct page *pg = &r->pages[i];
            i += run_pages(pg->order);
            buddy_insert_locked(b, pg, pg->order, pg->dirty, pg->stamp);
        }
        return false;
    }
    b->region_bytes -= bytes;
    __atomic_store_n(&b->nregions, b->nregions - 1, __ATOMIC_RELAXED);
    budget_give(b->budget, bytes);
    buddy_update_threshold(b);
    return true;
}

/* Unmaps every region with no allocated page; returns the bytes unmapped. */
static size_t buddy_release_empty_locked(struct buddy *b)
{
    size_t released = 0;
    struct region *r = b->regions;
    while (r) {
        struct region *next = r->next;
        size_t bytes = (size_t)r->npages << PAGE_SHIFT;
        if (r->free_pages == r->npages - r->meta_pages && buddy_remove_region_locked(b, r))
            released += bytes;
        r = next;
    }
    return released;
}

/* The smallest region (in pages) that holds an aligned run of the given order. */
static size_t region_pages_for_order(unsigned order)
{
    size_t n = align_up(REGION_META_PAGES, run_pages(order)) + run_pages(order);
    return n < REGION_MIN_PAGES ? REGION_MIN_PAGES : n;
}

/* Grows the pool so that a run of `order` can be served: by growth_factor
 * times the current size, at least one region that fits the run, never past
 * max_size (then only what the run needs, or BUDDY_FULL). */
static enum buddy_status buddy_grow_locked(struct buddy *b, unsigned order)
{
    size_t need = region_pages_for_order(order);
    size_t cur = b->region_bytes >> PAGE_SHIFT;
    double want_d = (double)cur * (b->growth_factor - 1.0);
    size_t want = want_d > (double)(SIZE_MAX >> (PAGE_SHIFT + 1)) ? SIZE_MAX >> (PAGE_SHIFT + 1)
                                                                : (size_t)want_d;
    if (want < need)
        want = need;
    if (b->budget->max) {
        size_t held = budget_held(b->budget);
        size_t room = held < b->budget->max ? (b->budget->max - held) >> PAGE_SHIFT : 0;
        if (want > room)
            want = room > need ? room : need;
    }
    /* The region that serves the run first, then whole regions for the rest. */
    size_t first = want >= REGION_PAGES ? REGION_PAGES : (want > need ? want : need);
    enum buddy_status st = buddy_add_region_locked(b, first);
    if (st != BUDDY_OK)
        return st;
    want -= first < want ? first : want;
    while (want >= need) {
        size_t n = want >= REGION_PAGES ? REGION_PAGES : want;
        if (buddy_add_region_locked(b, n) != BUDDY_OK)
            break; /* the request is served; growing further is optional */
        want -= n;
    }
    return BUDDY_OK;
}

enum buddy_status buddy_reserve(struct buddy *b, size_t bytes)
{
    size_t pages = align_up(bytes, PAGE_SIZE) >> PAGE_SHIFT;
    while (pages) {
        size_t n = pages >= REGION_PAGES ? REGION_PAGES : pages;
        if (n < REGION_MIN_PAGES)
            n = REGION_MIN_PAGES;
        enum buddy_status st = buddy_add_region_locked(b, n);
        if (st != BUDDY_OK)
            return st;
        pages -= n < pages ? n : pages;
    }
    return BUDDY_OK;
}

/* Decommits every dirty free run whose newest dirty page was freed at least
 * min_age ms before now. */
static size_t buddy_purge_locked(struct buddy *b, uint32_t now, uint32_t min_age)
{
    size_t released = 0;
    for (unsigned o = 0; o < BUDDY_ORDERS; o++) {
        for (struct page *pg = b->free[o]; pg; pg = pg->next) {
            if (!pg->dirty || (uint32_t)(now - pg->stamp) < min_age)
                continue;
            if (prim_decommit(page_start(pg), run_pages(o) << PAGE_SHIFT)) {
                b->dirty_pages -= pg->dirty;
                released += pg->dirty << PAGE_SHIFT;
                pg->dirty = 0;
            }
        }
    }
    return released;
}

/* With more dirty pages than the threshold, at most every PURGE_INTERVAL_MS,
 * decommits the dirty runs older than PURGE_AGE_MS.  now: prim_clock_ms(), or
 * 0 to read it only if needed. */
static void buddy_decay_locked(struct buddy *b, uint32_t now)
{
    if (b->dirty_pages <= b->purge_threshold)
        return;
    if (!now)
        now = prim_clock_ms();
    if ((uint32_t)(now - b->last_purge) < PURGE_INTERVAL_MS)
        return;
    buddy_purge_locked(b, now, PURGE_AGE_MS);
    b->last_purge = now;
}

struct page *buddy_alloc_locked(struct buddy *b, const struct run_request *req, bool *dirty,
                                enum buddy_status *status)
{
    size_t npages = req->npages;
    unsigned align_order = req->align_order;
    mpool_assert(npages >= 1 && npages <= run_pages(BUDDY_MAX_ORDER), "buddy_alloc: 1..512 pages");
    unsigned order = ceil_log2(npages);
    if (order < align_order)
        order = align_order;
    mpool_assert(order <= BUDDY_MAX_ORDER, "buddy_alloc: order too large");
    unsigned j = order;
    while (j < BUDDY_ORDERS && !b->free[j])
        j++;
    if (j == BUDDY_ORDERS) {
        enum buddy_status st = buddy_grow_locked(b, order);
        if (st == BUDDY_FULL && buddy_release_empty_locked(b)) /* make room under max_size */
            st = buddy_grow_locked(b, order);
        if (st != BUDDY_OK) {
            *status = st;
            return NULL;
        }
        __atomic_store_n(&b->grows, b->grows + 1, __ATOMIC_RELAXED);
        j = order;
        while (j < BUDDY_ORDERS && !b->free[j])
            j++;
        mpool_assert(j < BUDDY_ORDERS, "buddy_alloc: growth gave no run");
    }
    buddy_decay_locked(b, 0); /* page-allocator activity ages dirty runs too */
    struct page *pg = b->free[j];
    size_t was_dirty = pg->dirty; /* its halves and tail pieces may each hold all of it */
    uint32_t stamp = pg->stamp;
    buddy_unlink_locked(b, pg);
    struct region *r = page_region(pg);
    size_t idx = page_index(r, pg);
    while (j > order) { /* split: keep the lower half, free the upper */
        j--;
        buddy_insert_locked(b, &r->pages[idx + run_pages(j)], j, was_dirty, stamp);
    }
    if (npages < run_pages(order))
        buddy_release_range_locked(b, r, idx + npages, run_pages(order) - npages, was_dirty, stamp, false);
    if (req->kind == PAGE_SLAB) /* blocks inside a slab find its head from any page */
        for (size_t i = 1; i < npages; i++)
            page_set_back(pg, i);
    page_clear_back(pg);
    pg->kind = req->kind;
    pg->cls = req->cls;
    if (req->kind == PAGE_SLAB)
        pg->block_size = req->block_size; /* buddy_check reads it: set under the lock */
    pg->used = 0;
    pg->heap = NULL; /* the slab layer sets it once the slab is formatted */
    pg->free = pg->local_free = NULL;
    pg->thread_free = 0;
    pg->flags = 0;
    pg->order = 0;
    pg->npages = (uint32_t)npages;
    pg->next = pg->prev = NULL;
    pg->dirty = 0;
    *dirty = was_dirty != 0;
    *status = BUDDY_OK;
    san_asan_unpoison(page_start(pg), npages << PAGE_SHIFT); /* a slab's free blocks were poisoned */
    return pg;
}

struct page *buddy_alloc(struct buddy *b, const struct run_request *req, bool ts, bool *dirty,
                         enum buddy_status *status)
{
    lock_take(&b->lock, ts);
    struct page *pg = buddy_alloc_locked(b, req, dirty, status);
    lock_give(&b->lock, ts);
    return pg;
}


static void buddy_free_tail_locked(struct buddy *b, struct page *head, size_t from, size_t n)
{
    struct region *r = page_region(head);
    size_t idx = page_index(r, head);
    if (head->kind == PAGE_SLAB) /* a stale back must never reach a live run */
        for (size_t k = from; k < from + n; k++)
            page_clear_back(&head[k]);
    uint32_t now = prim_clock_ms();
    buddy_release_range_locked(b, r, idx + from, n, SIZE_MAX, now, true);
    buddy_decay_locked(b, now);
}

void buddy_free_locked(struct buddy *b, struct page *head)
{
    buddy_free_tail_locked(b, head, 0, head->npages);
}

void buddy_free(struct buddy *b, struct page *head, bool ts)
{
    lock_take(&b->lock, ts);
    buddy_free_locked(b, head);
    lock_give(&b->lock, ts);
}

void buddy_shrink_locked(struct buddy *b, struct page *head, size_t npages)
{
    mpool_assert(npages >= 1 && npages <= head->npages, "buddy_shrink: keeps 1..npages pages");
    size_t old = head->npages;
    if (npages == old)
        return;
    head->npages = (uint32_t)npages;
    buddy_free_tail_locked(b, head, npages, old - npages);
}

bool buddy_extend_locked(struct buddy *b, struct page *head, size_t npages)
{
    struct region *r = page_region(head);
    size_t idx = page_index(r, head), old = head->npages, end = idx + npages;
    mpool_assert(head->kind == PAGE_LARGE, "buddy_extend: a large block");
    if (npages <= old)
        return npages == old;
    if (npages > run_pages(BUDDY_MAX_ORDER) || end > r->npages)
        return false;
    /* Runs tile the region, so the page after a run heads the next one. */
    for (size_t i = idx + old; i < end;) {
        const struct page *pg = &r->pages[i];
        if (pg->kind != PAGE_FREE || pg->order >= BUDDY_ORDERS || page_back(pg) != 0)
            return false;
        i += run_pages(pg->order);
    }
    for (size_t i = idx + old; i < end;) {
        struct page *pg = &r->pages[i];
        size_t n = run_pages(pg->order), dirty = pg->dirty;
        uint32_t stamp = pg->stamp;
        buddy_unlink_locked(b, pg);
        pg->order = ORDER_ABSORBED;
        if (i + n > end) /* the part beyond the new end stays free */
            buddy_release_range_locked(b, r, end, i + n - end, dirty, stamp, false);
        i += n;
    }
    head->npages = (uint16_t)npages;
    san_asan_unpoison(page_start(head), npages << PAGE_SHIFT); /* the pages taken may have been a slab's */
    return true;
}

size_t buddy_release_empty(struct buddy *b, bool ts)
{
    lock_take(&b->lock, ts);
    size_t released = buddy_release_empty_locked(b);
    lock_give(&b->lock, ts);
    return released;
}

size_t buddy_trim(struct buddy *b, bool ts)
{
    lock_take(&b->lock, ts);
    size_t released = buddy_release_empty_locked(b);
    released += buddy_purge_locked(b, prim_clock_ms(), 0);
    lock_give(&b->lock, ts);
    return released;
}

void buddy_reset(struct buddy *b)
{
    uint32_t now = prim_clock_ms();
    memset(b->free, 0, sizeof b->free);
    b->free_pages = b->dirty_pages = 0;
    for (struct region *r = b->regions; r; r = r->next) {
        size_t data = r->npages - r->meta_pages;
        r->free_pages = 0;
        /* Pages count as clean only if the system confirmed it. */
        bool clean = prim_decommit(region_base(r) + ((size_t)r->meta_pages << PAGE_SHIFT),
                                   data << PAGE_SHIFT);
        for (size_t i = r->meta_pages; i < r->npages; i++) {
            r->pages[i].kind = PAGE_FREE;
            r->pages[i].order = ORDER_ABSORBED;
            page_clear_back(&r->pages[i]);
            r->pages[i].used = 0;
            r->pages[i].heap = NULL;
        }
        buddy_release_range_locked(b, r, r->meta_pages, data, clean ? 0 : SIZE_MAX, now, false);
    }
}

void buddy_destroy(struct buddy *b)
{
    struct region *r = b->regions;
    while (r) {
        struct region *next = r->next;
        size_t bytes = (size_t)r->npages << PAGE_SHIFT;
        (void)region_destroy(r); /* if refused, the mapping outlives the pool: nothing can use it */
        budget_give(b->budget, bytes);
        r = next;
    }
    b->regions = NULL;
    b->region_bytes = 0;
    lock_fini(&b->lock);
}

void buddy_each_run_locked(const struct buddy *b, void (*fn)(const struct page *head, void *arg),
                           void *arg)
{
    for (const struct region *r = b->regions; r; r = r->next) {
        size_t i = r->meta_pages;
        while (i < r->npages) {
            const struct page *pg = &r->pages[i];
            size_t n = 1;
            if (pg->kind == PAGE_FREE && pg->order < BUDDY_ORDERS) {
                n = run_pages(pg->order);
            } else if (pg->kind == PAGE_SLAB || pg->kind == PAGE_LARGE) {
                n = pg->npages ? pg->npages : 1;
                fn(pg, arg);
            }
            i += n;
        }
    }
}

size_t buddy_check_locked(const struct buddy *b)
{
    size_t problems = 0, listed = 0, dirty = 0, walked_free = 0, bytes = 0;
    for (unsigned o = 0; o < BUDDY_ORDERS; o++) {
        const struct page *prev = NULL;
        for (const struct page *pg = b->free[o]; pg; pg = pg->next) {
            const struct region *r = page_region(pg);
            size_t idx = page_index(r, pg);
            if (pg->kind != PAGE_FREE || pg->order != o || page_back(pg) != 0 || pg->prev != prev ||
                (idx & (run_pages(o) - 1)) != 0 || idx < r->meta_pages ||
                idx + run_pages(o) > r->npages)
                problems++;
            listed += run_pages(o);
            if (pg->dirty > run_pages(o))
                problems++;
            dirty += pg->dirty;
            prev = pg;
            if (listed > b->region_bytes >> PAGE_SHIFT) { /* a cycle */
                problems++;
                break;
            }
        }
    }
    for (const struct region *r = b->regions; r; r = r->next) {
        bytes += (size_t)r->npages << PAGE_SHIFT;
        if (r->magic != REGION_MAGIC || chunk_kind(r) != CHUNK_REGION)
            problems++;
        size_t i = r->meta_pages, region_free = 0;
        while (i < r->npages) {
            const struct page *pg = &r->pages[i];
            size_t n = 1;
            if (pg->kind == PAGE_FREE && pg->order < BUDDY_ORDERS) {
                n = run_pages(pg->order);
                walked_free += n;
                region_free += n;
                if (page_back(pg) != 0 || (i & (n - 1)) != 0 || i + n > r->npages)
                    problems++;
            } else if (pg->kind == PAGE_SLAB || pg->kind == PAGE_LARGE) {
                n = pg->npages;
                if (n == 0 || i + n > r->npages || page_back(pg) != 0) {
                    problems++;
                    n = 1;
                }
                for (size_t k = 1; k < n; k++)
                    if (page_back(&pg[k]) !=
                            (pg->kind == PAGE_SLAB || (pg->flags & PG_BACKED) ? k * sizeof(struct page) : 0) &&
                        !(pg->kind == PAGE_SLAB && page_is_released(&pg[k]))) /* slab.h: releasing pages */
                        problems++;
            } else {
                problems++; /* a data page that belongs to no run */
            }
            i += n;
        }
        if (i != r->npages || region_free != r->free_pages)
            problems++;
    }
    if (listed != b->free_pages || walked_free != b->free_pages || dirty != b->dirty_pages ||
        bytes != b->region_bytes)
        problems++;
    return problems;
}

size_t buddy_free_pages_from_locked(const struct buddy *b, unsigned order)
{
    size_t pages = 0;
    for (unsigned j = order; j < BUDDY_ORDERS; j++)
        for (const struct page *pg = b->free[j]; pg; pg = pg->next)
            pages += run_pages(j);
    return pages;
}
