/*
 * buddy.h - the page allocator of a pool: power-of-two runs of 4 KiB pages
 * inside the pool's regions, split and merged buddy-style (rules in buddy.c).
 * It feeds slabs and serves large blocks with page granularity, grows the
 * pool by adding regions, and returns free runs to the system.
 *
 * Locking: one lock per pool (`lock`).  Functions ending in _locked expect the
 * caller to hold it when the pool is thread safe; the others take it.
 */
#ifndef MPOOL_BUDDY_H
#define MPOOL_BUDDY_H

#include <stdbool.h>
#include <stddef.h>

#include "lock.h"
#include "region.h"

struct buddy {
    mpool_lock_t lock;
    struct page *free[BUDDY_ORDERS]; /* free runs of each order (doubly linked) */
    struct region *regions;          /* every region of the pool */
    struct mpool_pool *pool;         /* owner written into new regions */
    struct budget *budget;           /* shared with the huge blocks */
    double growth_factor;
    size_t region_bytes;             /* bytes mapped as regions */
    size_t nregions;                 /* regions mapped (statistics read it: atomic) */
    size_t grows;                    /* allocations that needed a new region (statistics; atomic) */
    size_t free_pages;               /* pages in free runs */
    size_t dirty_pages;              /* pages in free runs that may still be resident */
    size_t purge_threshold;          /* dirty pages above which old dirty runs are returned */
    uint32_t last_purge;             /* prim_clock_ms of the last purge by age */
};

/* Why an allocation failed. */
enum buddy_status { BUDDY_OK = 0, BUDDY_FULL, BUDDY_NOMEM };

void buddy_init(struct buddy *b, struct mpool_pool *pool, struct budget *budget,
                double growth_factor) mpool_internal;

/* Pages in free runs of order `order` or more; under the page lock (walks
 * those lists). */
size_t buddy_free_pages_from_locked(const struct buddy *b, unsigned order) mpool_internal;

/* Maps regions holding at least `bytes` (whole pages); false if refused. */
enum buddy_status buddy_reserve(struct buddy *b, size_t bytes) mpool_internal;

/* Which run is wanted: its length in pages (1..512), the alignment of its
 * first page (2^align_order pages), and what it becomes: kind PAGE_SLAB with a
 * class, or PAGE_LARGE.  These head fields (kind, cls, npages, and the heads table: region.h) are
 * written only under the page lock, so mpool_check may read them under it. */
struct run_request {
    size_t npages;
    unsigned align_order;
    uint8_t kind;
    uint8_t cls;
    uint32_t block_size; /* SLAB: bytes per block (set on the head under the page lock: buddy_check reads it) */
};

/* A run as requested, grown into if needed.  *dirty tells if its pages may
 * hold old data (false: they read as zeros).  NULL with *status set. */
struct page *buddy_alloc(struct buddy *b, const struct run_request *req, bool ts, bool *dirty,
                         enum buddy_status *status) mpool_internal;
struct page *buddy_alloc_locked(struct buddy *b, const struct run_request *req, bool *dirty,
                                enum buddy_status *status) mpool_internal;

/* Returns the run headed by `head` (head->npages pages) to the free runs. */
void buddy_free(struct buddy *b, struct page *head, bool ts) mpool_internal;
void buddy_free_locked(struct buddy *b, struct page *head) mpool_internal;

/* Keeps the first npages pages of the run and frees the rest. */
void buddy_shrink_locked(struct buddy *b, struct page *head, size_t npages) mpool_internal;

/* Grows the run headed by head (a large block) in place to npages pages
 * (at most 512) if the pages after it are free: takes them (giving back what
 * the last free run has beyond) and returns true; else false, nothing changed. */
bool buddy_extend_locked(struct buddy *b, struct page *head, size_t npages) mpool_internal;

/* Decommits every free run that may be resident and unmaps every region with
 * no allocated page; returns the bytes released. */
size_t buddy_trim(struct buddy *b, bool ts) mpool_internal;

/* Unmaps every region with no allocated page; returns the bytes unmapped. */
size_t buddy_release_empty(struct buddy *b, bool ts) mpool_internal;

/* Every data page becomes free and decommitted; the regions are kept.  No
 * other thread may use the pool. */
void buddy_reset(struct buddy *b) mpool_internal;

/* Unmaps every region. */
void buddy_destroy(struct buddy *b) mpool_internal;

/* Calls fn on the head of every allocated run (slab or large block), region
 * by region in address order.  Caller holds the lock. */
void buddy_each_run_locked(const struct buddy *b, void (*fn)(const struct page *head, void *arg),
                           void *arg) mpool_internal;

/* Number of broken invariants (see buddy.c).  Caller holds the lock. */
size_t buddy_check_locked(const struct buddy *b) mpool_internal;

#endif /* MPOOL_BUDDY_H */
