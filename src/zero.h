/*
 * zero.h - zero-size blocks: what malloc(0) and mpool_alloc(pool, 0) return.
 *
 * A zero-size block is a unique address that can be freed (or resized, or
 * asked about) like any block, and that faults on any read or write: a
 * program that uses the bytes of malloc(0) is stopped at the access.  It
 * costs no memory: the addresses are 16-byte slots of an *area*, a 4 MiB
 * chunk (CHUNK_ZERO in the chunk map) whose first ZERO_HEADER_BYTES are a
 * readable header and whose other pages are mapped without access.  The
 * header's bitmap says which slots are live blocks, so free, realloc,
 * mpool_owns and mpool_usable_size are exact for them (a freed slot is an
 * invalid pointer until it is handed out again) and a double free is
 * refused at once.
 *
 * A pool makes its first area at its first zero-size request and another
 * when every slot of the existing ones is live (258 048 per area).  Areas
 * live until the pool is destroyed; mpool_reset frees every slot.  They are
 * address space, not memory the pool holds: they count in neither its total
 * nor its max_size.  Under the pool's huge.lock.
 */
#ifndef MPOOL_ZERO_H
#define MPOOL_ZERO_H

#include "chunkmap.h"
#include "pool.h"

#define ZERO_MAGIC 0x6d706f6f6c5a5231ULL /* "mpoolZR1" */
#define ZERO_SLOT 16                      /* bytes between two zero-size blocks: their alignment */
#define ZERO_HEADER_BYTES ((size_t)64 << 10)
#define ZERO_SLOTS ((REGION_SIZE - ZERO_HEADER_BYTES) / ZERO_SLOT)

struct zero_area {
    uint64_t magic;
    struct mpool_pool *pool;
    struct zero_area *next;
    size_t live;               /* slots handed out */
    size_t hint;               /* bitmap word where the search for a free slot starts */
    uint64_t bits[ZERO_SLOTS / 64]; /* bit i: slot i is a live block */
};
_Static_assert(sizeof(struct zero_area) <= ZERO_HEADER_BYTES, "the header holds the bitmap");
_Static_assert(ZERO_SLOTS % 64 == 0, "whole bitmap words");
_Static_assert(ZERO_SLOT >= 16 && ZERO_HEADER_BYTES % 4096 == 0, "slots aligned like blocks, header in pages");

/* The area p points into, or NULL (nothing is read unless the chunk map
 * says the chunk is an area). */
static inline struct zero_area *zero_area_of(const void *p)
{
    if (chunk_kind(p) != CHUNK_ZERO)
        return NULL;
    struct zero_area *a = (struct zero_area *)((uintptr_t)p & ~(uintptr_t)(REGION_SIZE - 1));
    return a->magic == ZERO_MAGIC ? a : NULL;
}

/* True if p is a live zero-size block of area a. */
bool zero_is_live(const struct zero_area *a, const void *p) mpool_internal;

/* A new zero-size block of pool; NULL if the system refused an area. */
void *zero_alloc(struct mpool_pool *pool) mpool_internal;

/* Frees p if it is a live zero-size block of area a; false otherwise. */
bool zero_free(struct zero_area *a, const void *p) mpool_internal;

/* Live zero-size blocks of the pool (statistics). */
size_t zero_live(struct mpool_pool *pool) mpool_internal;

/* Every slot becomes free (mpool_reset); the pool is quiet. */
void zero_reset(struct mpool_pool *pool) mpool_internal;

/* Unmaps every area (mpool_destroy). */
void zero_release_all(struct mpool_pool *pool) mpool_internal;

/* Problems of the pool's areas (live counts against the bitmaps). */
size_t zero_check(struct mpool_pool *pool) mpool_internal;

#endif /* MPOOL_ZERO_H */
