/*
 * region.h - regions: the large blocks of memory a pool takes from the
 * system, and the page descriptors inside them.
 *
 * A region is at most 4 MiB long and starts at a 4 MiB boundary (a chunk, see
 * chunkmap.h), so the header of the region holding any pointer is found by
 * masking the pointer's low 22 bits.  The header is followed by one 64-byte
 * descriptor per 4 KiB page of the chunk; the header and descriptors fill the
 * first `meta_pages` (17) pages, the rest are data pages managed by the buddy
 * allocator:
 *
 *   chunk base                                                   base + npages*4K
 *   | struct region | struct page[npages] |  data pages ...                      |
 *   |<------------ meta_pages ----------->|<-- runs of 2^k pages (buddy.h) --->|
 *
 * Every page of a slab has `back` set to the distance in bytes from its
 * descriptor back to the descriptor of the slab's first page (the head); only
 * the head's other fields describe the run.  So the descriptor of the slab
 * holding pointer p is
 *   page = &region->pages[(p - base) >> 12];  head = (char *)page - page->back.
 * Every other page has back 0: pages of free runs, and the pages after the
 * first of a large block (whose only valid pointer is its first byte, so
 * setting and clearing 512 descriptors per 2 MiB block would buy nothing).
 * A lookup from any page thus reaches the head of the slab or large block it
 * starts, or a descriptor that is not an allocated head (kind FREE or META).
 * A descriptor's `used` is non-zero only at the head of a live slab.
 */
#ifndef MPOOL_REGION_H
#define MPOOL_REGION_H

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
    PG_LISTED = 2,  /* SLAB: on its class's partial list */
    PG_CURRENT = 4, /* SLAB: the slab its class allocates from */
    PG_CACHED = 8,  /* LARGE: a freed block kept whole for reuse (large.c), not live */
};

struct page {
    void *free;            /* SLAB: first free block (NULL when full) */
    uint16_t used;         /* SLAB: live blocks (1 while current, see slab.h) */
    uint16_t back;         /* bytes back to the head's descriptor (0 on the head) */
    uint8_t kind;          /* PAGE_* */
    uint8_t order;         /* FREE: buddy order of the run */
    uint8_t cls;           /* SLAB: size class */
    uint8_t flags;         /* PG_* */
    uint16_t npages;       /* head: pages in the run */
    uint16_t block_size;   /* SLAB: bytes per block */
    union {
        uint32_t limit;    /* SLAB: capacity * block_size; blocks start below it */
        uint32_t stamp;    /* FREE: when its newest dirty page was freed (prim_clock_ms) */
    };
    union {
        uint64_t recip;    /* SLAB: UINT64_MAX / block_size + 1 (slab_is_block_start) */
        uint64_t dirty;    /* FREE: pages of the run that may be resident (buddy.c) */
    };
    struct page *next;     /* FREE: buddy free list; SLAB: class partial list; LARGE: cache bin */
    struct page *prev;
    struct page *cnext;    /* SLAB: the class's list of all its slabs */
    struct page *cprev;
};
_Static_assert(sizeof(struct page) == 64, "a page descriptor is 64 bytes");

#define NO_REGION ((struct region *)(uintptr_t)1) /* a region pointer that matches no address */
#define REGION_MAGIC 0x6d706f6f6c524731ULL /* "mpoolRG1" */

struct region {
    uint64_t magic;
    struct mpool_pool *pool;       /* owner */
    struct mpool_pool *fast_owner; /* the owner if its lock-free fast paths apply, else a sentinel */
    uint32_t npages;          /* pages mapped, meta pages included */
    uint32_t meta_pages;      /* pages holding this header and the descriptors */
    struct region *next;      /* the pool's list of regions */
    struct region *prev;
    uint32_t free_pages;      /* data pages in free runs (buddy.c) */
    uint32_t spare[3];        /* pads the header to one descriptor */
    struct page pages[];      /* one per page of the chunk (REGION_PAGES) */
};
_Static_assert(sizeof(struct region) == 64, "the region header is one descriptor long");

/* Pages holding the header and the descriptors.  Every region has room for
 * 1024 descriptors, whatever its length: a descriptor can then be read for any
 * address of the chunk (those past the end stay PAGE_META), which spares the
 * free fast path a bounds check. */
#define REGION_META_PAGES ((sizeof(struct region) + REGION_PAGES * sizeof(struct page) + PAGE_SIZE - 1) >> PAGE_SHIFT)
#define REGION_MIN_PAGES 32 /* 128 KiB: the smallest region */

/* Maps a region of npages pages (meta pages included) for pool; every data
 * page is PAGE_META until the buddy allocator adopts it.  NULL if refused. */
struct region *region_create(struct mpool_pool *pool, struct mpool_pool *fast_owner, size_t npages) mpool_internal;

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
 * a mask, since descriptors are 64 bytes. */
static inline struct page *region_page_of(struct region *r, const void *p)
{
    uintptr_t off = ((uintptr_t)p >> (PAGE_SHIFT - 6)) & ((REGION_PAGES - 1) << 6);
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

_Static_assert(SLAB_MAX <= UINT16_MAX, "a block size fits 16 bits");
_Static_assert(((REGION_PAGES / 2 - 1) * 64) <= UINT16_MAX, "back of the last page of a 2 MiB run fits 16 bits");

_Static_assert(sizeof(struct page) == 1 << 6, "region_page_of shifts by 6");

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
