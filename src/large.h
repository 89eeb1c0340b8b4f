/*
 * large.h - large blocks: requests too big for a slab class but within
 * max_block_size (and 2 MiB) are page runs of the buddy allocator, rounded
 * to whole pages only (the buddy allocator gives back the rest of the run).
 *
 * A freed large block is kept whole in the pool's large cache, by its length
 * in pages, while the cache holds at most 2 MiB: the next request for that
 * many pages takes it back without splitting and merging buddies (64 KiB
 * malloc+free pair: see docs/architecture.md).  A cached run is still an
 * allocated run to the page allocator, with kind LARGE and flag PG_CACHED,
 * which makes every pointer into it invalid (alloc.c: block_is_start).
 * mpool_trim, a pool that hits max_size, reset and destroy empty the cache.
 */
#ifndef MPOOL_LARGE_H
#define MPOOL_LARGE_H

#include "pool.h"

/* A block of whole pages holding size bytes, aligned to align (<= 2 MiB).
 * *zeroed tells if its pages read as zeros.  NULL with *status on failure. */
void *large_alloc(struct mpool_pool *pool, size_t size, size_t align, bool *zeroed,
                  enum buddy_status *status) mpool_internal;

void large_free(struct mpool_pool *pool, struct page *head) mpool_internal;

/* Shrinks the block in place to hold size bytes. */
void large_shrink(struct mpool_pool *pool, struct page *head, size_t size) mpool_internal;

/* Grows the block in place to hold size bytes (at most 2 MiB) if the pages
 * after it are free; false if they are not (nothing changed). */
bool large_grow(struct mpool_pool *pool, struct page *head, size_t size) mpool_internal;

static inline size_t large_usable(const struct page *head) { return (size_t)head->npages << PAGE_SHIFT; }

/* True if p is the block of the large run headed by head: its first byte,
 * and the run is not cached. */
static inline bool large_is_block(const struct page *head, const void *p)
{
    return p == page_start(head) && !(head->flags & PG_CACHED);
}

/* Gives every cached run back to the page allocator; returns the bytes. */
size_t large_cache_flush(struct mpool_pool *pool) mpool_internal;

/* Forgets the cache (the page allocator is reset or destroyed after). */
void large_cache_forget(struct mpool_pool *pool) mpool_internal;

/* Number of broken invariants of the cache; caller holds the page lock. */
size_t large_cache_check_locked(const struct mpool_pool *pool) mpool_internal;

#endif /* MPOOL_LARGE_H */
