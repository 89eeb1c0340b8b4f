/*
 * region.c - mapping and unmapping regions (layout in region.h).
 */
#include "region.h"

#include <string.h>

#include "prim.h"

_Static_assert(REGION_META_PAGES == 33, "the header and 1024 descriptors fill 33 pages");
_Static_assert(REGION_MIN_PAGES > REGION_META_PAGES, "the smallest region has data pages");
_Static_assert(REGION_HEADS_OFFSET + REGION_PAGES * sizeof(uint16_t) <= (size_t)REGION_META_PAGES << PAGE_SHIFT,
               "the heads table fits in the meta pages");

struct region *region_create(struct mpool_pool *pool, size_t npages)
{
    mpool_assert(npages >= REGION_MIN_PAGES && npages <= REGION_PAGES, "region_create: 64..1024 pages");
    size_t meta = REGION_META_PAGES;
    struct region *r = prim_map(npages << PAGE_SHIFT, REGION_SIZE, 0);
    if (!r)
        return NULL;
    if ((uintptr_t)r + (npages << PAGE_SHIFT) > REGION_ADDRESS_LIMIT) {
        (void)prim_unmap(r, npages << PAGE_SHIFT);
        return NULL;
    }
    /* The mapping is zero-filled: every descriptor starts as PAGE_META (0). */
    r->magic = REGION_MAGIC;
    r->pool = pool;
    r->npages = (uint32_t)npages;
    r->meta_pages = (uint32_t)meta;
    r->next = r->prev = NULL;
    for (size_t i = 0; i < REGION_PAGES; i++) /* every page leads to its own descriptor */
        page_clear_back(&r->pages[i]);
    chunk_mark(r, CHUNK_REGION);
    return r;
}

bool region_destroy(struct region *r)
{
    chunk_mark(r, CHUNK_NONE);
    if (prim_unmap(r, (size_t)r->npages << PAGE_SHIFT))
        return true;
    chunk_mark(r, CHUNK_REGION);
    return false;
}
