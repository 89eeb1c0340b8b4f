/*
 * chunkmap.h - which 4 MiB chunks of the address space hold mpool memory.
 *
 * One byte per chunk of the 47-bit user address space (2^25 entries, 32 MiB of
 * address space in .bss that the system materialises only where touched).  A
 * pointer is ours only if its chunk is marked, so a foreign pointer is
 * rejected with one load before anything is read through it.
 *
 *   CHUNK_REGION  the chunk starts a region: its header is at the chunk base.
 *   CHUNK_HUGE    the chunk base is the first byte of a huge block: its header
 *                 is the page just below the chunk base.
 *   CHUNK_ZERO    the chunk is an area of zero-size blocks (zero.h): its
 *                 header is at the chunk base.
 *
 * Entries are written when a region or huge block is mapped or unmapped, and
 * read without locks (relaxed atomics): a pointer being freed keeps its chunk
 * mapped until the free returns.
 */
#ifndef MPOOL_CHUNKMAP_H
#define MPOOL_CHUNKMAP_H

#include <stdint.h>

#include "common.h"

enum { CHUNK_NONE = 0, CHUNK_REGION = 1, CHUNK_HUGE = 2, CHUNK_ZERO = 3 };

#define CHUNK_ENTRIES ((size_t)1 << (ADDRESS_BITS - REGION_SHIFT))
extern uint8_t mpool_chunk_map[CHUNK_ENTRIES] mpool_internal;

/* The mark of the chunk holding p (CHUNK_NONE for any address we never mapped). */
static inline unsigned chunk_kind(const void *p)
{
    uintptr_t chunk = (uintptr_t)p >> REGION_SHIFT;
    if (unlikely(chunk >= CHUNK_ENTRIES))
        return CHUNK_NONE;
    return __atomic_load_n(&mpool_chunk_map[chunk], __ATOMIC_RELAXED);
}

/* chunk_kind(p) == CHUNK_REGION, for the free fast path.  Outside
 * ThreadSanitizer builds the byte is read plainly, so that the compiler
 * compares it in memory: a byte load cannot tear, and an entry changes only
 * while its chunk is mapped or unmapped, never under a block being freed. */
static inline bool chunk_is_region(const void *p)
{
    uintptr_t chunk = (uintptr_t)p >> REGION_SHIFT;
    if (unlikely(chunk >= CHUNK_ENTRIES))
        return false;
#ifdef MPOOL_TSAN
    return __atomic_load_n(&mpool_chunk_map[chunk], __ATOMIC_RELAXED) == CHUNK_REGION;
#else
    return mpool_chunk_map[chunk] == CHUNK_REGION;
#endif
}

static inline void chunk_mark(const void *chunk_base, unsigned kind)
{
    __atomic_store_n(&mpool_chunk_map[(uintptr_t)chunk_base >> REGION_SHIFT], (uint8_t)kind,
                     __ATOMIC_RELAXED);
}

#endif /* MPOOL_CHUNKMAP_H */
