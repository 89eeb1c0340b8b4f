/*
 * region.h - regions: the large blocks of memory a pool takes from the
 * system, and the page descriptors inside them.
 *
 * A region is at most 4 MiB long and starts at a 4 MiB boundary (a chunk, see
 * chunkmap.h), so the header of the region holding any pointer is found by
 * masking the pointer's low 22 bits.  The header is followed by one 128-byte
 * descriptor per 4 KiB page of the chunk; the header and descriptors fill the
 * first `meta_pages` (33) pages, the rest are data pages managed by the buddy
 * allocator:
 *
 *   chunk base                                                   base + npages*4K
 *   | struct region | struct page[npages] |  data pages ...                      |
 *   |<------------ meta_pages ----------->|<-- runs of 2^k pages (buddy.h) --->|
 *
 * Every page of a slab where a block starts (every page when blocks are at
 * most a page; each block's first page when they are larger:
 * slab_page_has_start), and every page of a large block flagged PG_BACKED (a
 * chunk of a fixed-size pool, whose objects lie on every page), has `back`
 * set to the distance in bytes from its descriptor back to the descriptor of
 * the run's first page (the head); only the head's other fields describe the
 * run.  So the descriptor of the slab holding block p is
 *   page = &region->pages[(p - base) >> 12];  head = (char *)page - page->back.
 * Every other page has back 0: pages of free runs, the pages of a slab that
 * lie inside one block, and the pages after the first of other large blocks
 * (whose only valid pointer is their first byte).  A descriptor is 1/32 of
 * its page: writing the ones no block start needs would make a program that
 * touches only the first page of each large block resident in 128 extra
 * bytes per page of its blocks.
 * A lookup from any page thus reaches the head of the slab or large block it
 * starts, or a descriptor that is not an allocated head (kind FREE or META).
 * A descriptor's `heap` is non-NULL only at the head of a live slab.
 */
#ifndef MPOOL_REGION_H
#define MPOOL_REGION_H

#include <stddef.h>
#include <stdint.h>

#include "chunkmap.h"
#include "common.h"

struct mpool_pool;

/*
 * The bytes a pool holds from the system (regions and huge blocks), against
 * its max_size.  Taken before mapping and given back after unmapping, with
 * atomics, so the page allocator and the huge-block list share it without a
 * common lock.
 */
struct budget {
    size_t held; /* atomic */
    size_t max;  /* 0: no cap */
    size_t peak; /* atomic: the most ever held (statistics) */
};

/* Reserves n bytes of the budget; false if that would pass max. */
static inline bool budget_take(struct budget *b, size_t n)
{
    size_t cur = __atomic_load_n(&b->held, __ATOMIC_RELAXED);
    do {
        if (b->max && (n > b->max || cur > b->max - n))
            return false;
    } while (!__atomic_compare_exchange_n(&b->held, &cur, cur + n, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    size_t now = cur + n, peak = __atomic_load_n(&b->peak, __ATOMIC_RELAXED);
    while (peak < now && !__atomic_compare_exchange_n(&b->peak, &peak, now, true, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED))
        ;
    return true;
}

static inline void budget_give(struct budget *b, size_t n)
{
    __atomic_fetch_sub(&b->held, n, __ATOMIC_RELAXED);
}

static inline size_t budget_held(const struct budget *b)
{
    return __atomic_load_n(&b->held, __ATOMIC_RELAXED);
}

enum { PAGE_META = 0, PAGE_FREE, PAGE_SLAB, PAGE_LARGE };

enum {
    PG_QUEUED = 1, /* SLAB: on its heap's queue of its class (heap.h) */
    PG_FULL = 2,   /* SLAB: on its heap's list of full slabs (heap.h) */
    PG_BACKED = 4, /* LARGE: every page's back leads to the head, as in a slab (a chunk of a
                      fixed-size pool: fixed.c sets and clears it under the page lock) */
    PG_CACHED = 8, /* LARGE: a freed block kept whole for reuse (large.c), not live */
    PG_SPARE = 16, /* SLAB: an empty slab its heap keeps for the next refill of its class (heap.h) */
};

struct heap;

/* One per page of a region.  The first 64 bytes hold what the owner's free
 * and allocation read and write; the rest is read on slower paths (and
 * thread_free, which other threads write, sits apart from them). */
struct page {
    void *free;              /* SLAB: blocks allocation pops (owner only) */
    void *local_free;        /* SLAB: blocks the owner freed since its last collect */
    struct heap *heap;       /* SLAB: the heap that owns it; NULL for every other run */
    char *start;             /* SLAB: its first block */
    int32_t used;            /* SLAB: blocks not on free or local_free, negative while parked (slab.h) */
    uint16_t back;           /* bytes back to the head's descriptor (0 on the head) */
    uint8_t cls;             /* SLAB: size class */
    uint8_t flags;           /* PG_* */
    uint8_t shift;           /* SLAB: block test (slab_is_block_offset) */
    uint8_t spare0[7];
    uint64_t extent;         /* SLAB: blocks carved so far (slab.h); the block test stops there */
    uint64_t inverse;        /* SLAB: block test */
    /* 64 bytes */
    struct page *next;       /* FREE: buddy free list; SLAB: heap queue or full list; LARGE: cache bin */
    struct page *prev;
    struct page *remote_next; /* SLAB: link on its heap's stack of notified full slabs */
    uintptr_t thread_free;   /* SLAB: atomic; blocks other threads freed, bit 0: SLAB_NOTIFY (slab.h) */
    union {
        uint64_t dirty;      /* FREE: pages of the run that may be resident (buddy.c) */
        uint64_t link;       /* SLAB: the pool's link secret (slab.h: links), for the cold list walks */
    };
    uint32_t stamp;          /* FREE: when its newest dirty page was freed (prim_clock_ms) */
    uint32_t block_size;     /* SLAB: bytes per block */
    uint16_t npages;         /* head: pages in the run */
    uint8_t kind;            /* PAGE_* */
    uint8_t order;           /* FREE: buddy order of the run */
    uint8_t current;         /* SLAB: 1 while its heap allocates from it (atomic: statistics read it) */
    uint8_t spare1[3];
    uint32_t capacity;       /* SLAB: blocks the slab can hold */
    uint32_t parked;         /* SLAB: taken off used while parked (slab.h); atomic, statistics read it */
};
_Static_assert(sizeof(struct page) == 128, "a page descriptor is 128 bytes");
_Static_assert(offsetof(struct page, next) == 64, "the fast path's fields fill the first 64 bytes");

#define REGION_MAGIC 0x6d706f6f6c524732ULL /* "mpoolRG2" */

struct region {
    uint64_t magic;
    struct mpool_pool *pool;  /* owner */
    uint32_t npages;          /* pages mapped, meta pages included */
    uint32_t meta_pages;      /* pages holding this header and the descriptors */
    struct region *next;      /* the pool's list of regions */
    struct region *prev;
    uint32_t free_pages;      /* data pages in free runs (buddy.c) */
    uint32_t spare[5];        /* pads the header to 64 bytes */
    struct page pages[];      /* one per page of the chunk (REGION_PAGES) */
};
_Static_assert(sizeof(struct region) == 64, "the region header is 64 bytes");

/* Pages holding the header and the descriptors.  Every region has room for
 * 1024 descriptors, whatever its length: a descriptor can then be read for any
 * address of the chunk (those past the end stay PAGE_META), which spares the
 * free fast path a bounds check. */
#define REGION_META_PAGES ((sizeof(struct region) + REGION_PAGES * sizeof(struct page) + PAGE_SIZE - 1) >> PAGE_SHIFT)
#define REGION_MIN_PAGES 64 /* 256 KiB: the smallest region */

/* Maps a region of npages pages (meta pages included) for pool; every data
 * page is PAGE_META until the buddy allocator adopts it.  NULL if refused. */
struct region *region_create(struct mpool_pool *pool, size_t npages) mpool_internal;

/* Unmaps the region and clears its chunk mark; false if the system refused
 * (the region is then still mapped and marked, unchanged). */
bool region_destroy(struct region *r) mpool_internal;

static inline struct region *region_of(const void *p)
{
    return (struct region *)((uintptr_t)p & ~(uintptr_t)(REGION_SIZE - 1));
}

static inline char *region_base(const struct region *r) { return (char *)r; }

static inline size_t page_index(const struct region *r, const struct page *pg)
{
    return (size_t)(pg - r->pages);
}

static inline struct region *page_region(const struct page *pg) { return region_of(pg); }

/* The first byte of the memory a descriptor describes. */
static inline void *page_start(const struct page *pg)
{
    const struct region *r = page_region(pg);
    return region_base(r) + (page_index(r, pg) << PAGE_SHIFT);
}

/* The region holding p if p lies in a data page of one of our regions, else NULL. */
static inline struct region *region_find(const void *p)
{
    if (chunk_kind(p) != CHUNK_REGION)
        return NULL;
    struct region *r = region_of(p);
    size_t idx = ((uintptr_t)p - (uintptr_t)r) >> PAGE_SHIFT;
    if (idx < r->meta_pages || idx >= r->npages)
        return NULL;
    return r;
}

/* The descriptor of the page holding p (p inside the chunk of r): shifts and
 * a mask, since descriptors are 128 bytes. */
static inline struct page *region_page_of(struct region *r, const void *p)
{
    uintptr_t off = ((uintptr_t)p >> (PAGE_SHIFT - 7)) & ((REGION_PAGES - 1) << 7);
    return (struct page *)((char *)r->pages + off);
}

/* The head descriptor of the run whose page pg is. */
static inline struct page *page_head(struct page *pg)
{
    return (struct page *)((char *)pg - pg->back);
}

/* Marks page k of the run headed by head as part of it. */
static inline void page_set_back(struct page *head, size_t k)
{
    head[k].back = (uint16_t)(k * sizeof(struct page));
}

/* The pages of a slab whose descriptors hold `back`: page k >= 1 does if a
 * block starts in it.  With blocks of at most a page that is every page;
 * with larger ones only each block's first page (a pointer into any other
 * page lies inside a block, which no lookup may take for a block anyway),
 * so a slab of 256 KiB blocks writes one descriptor, not 64, and the
 * descriptor pages of regions full of medium blocks stay untouched. */
static inline bool slab_page_has_start(size_t k, size_t npages, size_t block_size)
{
    if (block_size <= PAGE_SIZE)
        return k < npages;
    size_t lo = k << PAGE_SHIFT;
    size_t first = (lo + block_size - 1) / block_size * block_size; /* the first start at or after lo */
    return first < lo + PAGE_SIZE && first + block_size <= (npages << PAGE_SHIFT);
}

/* Sets (or clears) `back` in the descriptors of a slab's pages that
 * slab_page_has_start names; the head's stays 0. */
static inline void slab_set_backs(struct page *head, size_t npages, size_t block_size, bool set)
{
    size_t step = block_size <= PAGE_SIZE ? PAGE_SIZE : block_size;
    size_t end = (npages << PAGE_SHIFT) / step * step; /* past the last block that fits */
    for (size_t off = step; off < end; off += step) {
        size_t k = off >> PAGE_SHIFT;
        head[k].back = set ? (uint16_t)(k * sizeof(struct page)) : 0;
    }
}

_Static_assert(((REGION_PAGES / 2 - 1) * sizeof(struct page)) <= UINT16_MAX, "back of the last page of a 2 MiB run fits 16 bits");

_Static_assert(sizeof(struct page) == 1 << 7, "region_page_of shifts by 7");

/* The head descriptor of the allocated run (slab or large block) holding p,
 * which must lie in a data page of r; NULL if that page is free. */
static inline struct page *region_run_of(struct region *r, const void *p)
{
    size_t idx = ((uintptr_t)p - (uintptr_t)r) >> PAGE_SHIFT;
    struct page *pg = &r->pages[idx];
    size_t back = pg->back / sizeof(struct page);
    if (back > idx - r->meta_pages)
        return NULL;
    struct page *head = pg - back;
    if ((head->kind != PAGE_SLAB && head->kind != PAGE_LARGE) || back >= head->npages)
        return NULL;
    return head;
}

#endif /* MPOOL_REGION_H */
