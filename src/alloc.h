/*
 * alloc.h - block functions that the public API does not offer, for the
 * malloc replacement (dropin/).
 */
#ifndef MPOOL_ALLOC_H
#define MPOOL_ALLOC_H

#include <stddef.h>

#include "common.h"

/* The usable size of the block starting at p, or 0 if p is foreign or not a
 * block start; unlike mpool_usable_size it does not prove the block is live
 * (no free-list walk), as malloc_usable_size need not. */
size_t alloc_usable_size_fast(const void *p) mpool_internal;

/* mpool_alloc(NULL, size) and mpool_free(NULL, p) (p not NULL) without the
 * inline paths that only unlocked pools use: malloc and free go straight to
 * the default pool's thread cache. */
void *alloc_default(size_t size) mpool_internal;
void free_default(void *p) mpool_internal;

#endif /* MPOOL_ALLOC_H */
