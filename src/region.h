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
 *   (the heads table, 2 KiB, follows the descriptors in the last meta page)
 *
 * Heads.  After the descriptors, in the last meta page, the region keeps a
 * table of 1024 16-bit entries, one per page of the chunk: entry i is the
 * byte offset from the chunk base, halved, of the descriptor that a lookup
 * from page i must reach (the head).  Every page of a slab, and of a large
 * block flagged PG_BACKED (a chunk of a fixed-size pool, whose objects lie
 * on every page), leads to the descriptor of the run's first page (the
 * head); only the head's other fields describe the run.  So the descriptor
 * of the slab holding pointer p is
 *   head = base + 2 * heads[(p - base) >> 12]
 * one read of a 2 KiB table that stays in cache (the free of a random block
 * used to read the page's own 128-byte descriptor first: a second cache
 * miss beside the head's).  Every other page leads to its own descriptor:
 * pages of free runs, meta pages, pages past the region's end, and the pages
 * after the first of other large blocks (whose only valid pointer is their
 * first byte, so setting and clearing 512 entries per 2 MiB block would buy
 * nothing).  A lookup from any page thus reaches the head of the slab or
 * large block it starts, or a descriptor that is not an allocated head (kind
 * FREE or META).  page_back() gives the distance in bytes from a descriptor
 * back to the one its page leads to (0: itself).  A released page of a slab
 * (slab.h: releasing pages) is the exception among a slab's pages: it leads
 * to itself, see page_is_released.  A descriptor's `heap` is non-NULL only at
 * the head of a live slab.
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
    uint16_t spare_back;     /* unused (a page's head is in the region's heads table) */
    uint8_t cls;             /* SLAB: size class */
    uint8_t flags;           /* PG_* */
    uint8_t shift;           /* SLAB: block test (slab_is_block_offset) */
    uint8_t spare0[3];
    uint32_t released;       /* SLAB: blocks in its released pages (slab.h: releasing pages) */
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

/* Regions lie below this address (region_create refuses others): a slab's
 * thread_free word keeps a count above its pointer bits (slab.h).  Linux
 * maps below 2^47 unless asked for higher addresses. */
#define REGION_ADDRESS_LIMIT ((uintptr_t)1 << 48)

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

/* The heads table (above): entry i, at byte 2i of it. */
#define REGION_HEADS_OFFSET (sizeof(struct region) + REGION_PAGES * sizeof(struct page))
static inline uint16_t *region_heads(const struct region *r)
{
    return (uint16_t *)(uintptr_t)((const char *)r + REGION_HEADS_OFFSET);
}

/* The descriptor a lookup from the page holding p (p inside the chunk of r)
 * reaches: the head of its slab or backed run, else its own. */
static inline struct page *region_head_of(struct region *r, const void *p)
{
    uintptr_t off = ((uintptr_t)p >> (PAGE_SHIFT - 1)) & ((REGION_PAGES - 1) << 1);
    uint16_t half = *(const uint16_t *)(const void *)((const char *)r + REGION_HEADS_OFFSET + off);
    return (struct page *)((char *)r + 2 * (size_t)half);
}

/* The head descriptor of the run whose page pg is (pg itself if its page
 * leads to no other). */
static inline struct page *page_head(struct page *pg)
{
    struct region *r = page_region(pg);
    return (struct page *)((char *)r + 2 * (size_t)region_heads(r)[page_index(r, pg)]);
}

/* Bytes from pg back to the descriptor its page leads to (0: itself). */
static inline size_t page_back(const struct page *pg)
{
    return (size_t)((const char *)pg - (const char *)page_head((struct page *)(uintptr_t)pg));
}

/* Page k of the run headed by head leads to head. */
static inline void page_set_back(struct page *head, size_t k)
{
    struct region *r = page_region(head);
    region_heads(r)[page_index(r, head) + k] = (uint16_t)(((char *)head - (char *)r) / 2);
}

/* pg's page leads to pg itself. */
static inline void page_clear_back(struct page *pg)
{
    struct region *r = page_region(pg);
    region_heads(r)[page_index(r, pg)] = (uint16_t)(((char *)pg - (char *)r) / 2);
}

_Static_assert((REGION_HEADS_OFFSET - sizeof(struct page)) / 2 <= UINT16_MAX, "a halved descriptor offset fits 16 bits");
_Static_assert(REGION_HEADS_OFFSET % 2 == 0, "heads entries are aligned");

_Static_assert(sizeof(struct page) == 1 << 7, "region_page_of shifts by 7");

/* True if pg, an inner page of a slab (not its head), is released (slab.h:
 * releasing pages): it leads to itself, kind PAGE_SLAB and npages 0, so a lookup of any
 * address in it stops at pg itself, which heads nothing (region_run_of:
 * NULL) and has no heap (the owner's inline free falls through). */
static inline bool page_is_released(const struct page *pg)
{
    return pg->kind == PAGE_SLAB && pg->npages == 0 && page_back(pg) == 0;
}

/* The head descriptor of the allocated run (slab or large block) holding p,
 * which must lie in a data page of r; NULL if that page is free. */
static inline struct page *region_run_of(struct region *r, const void *p)
{
    size_t idx = ((uintptr_t)p - (uintptr_t)r) >> PAGE_SHIFT;
    struct page *head = region_head_of(r, p);
    size_t back = idx - page_index(r, head); /* wraps (refused) if the entry leads forward */
    if (back > idx - r->meta_pages)
        return NULL;
    if ((head->kind != PAGE_SLAB && head->kind != PAGE_LARGE) || back >= head->npages)
        return NULL;
    return head;
}

#endif /* MPOOL_REGION_H */
