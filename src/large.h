/*
 * large.h - large blocks: requests too big for a slab class but within
 * max_block_size (and 2 MiB) are page runs of the buddy allocator, rounded
 * to whole pages only (the buddy allocator gives back the rest of the run).
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

static inline size_t large_usable(const struct page *head) { return (size_t)head->npages << PAGE_SHIFT; }

#endif /* MPOOL_LARGE_H */
