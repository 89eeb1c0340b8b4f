/*
 * sizeclass.h - the size classes of slabs.
 *
 * Class c has block size
 *   c < 16:   8 * (c + 1)                       8, 16, ..., 128 (8-byte steps)
 *   c >= 16:  2^k + j * 2^(k-3), k = 7 + (c-16)/8, j = 1 + (c-16)%8
 *                                               144, 160, ..., 256, 288, ..., 262144
 * so above 128 B neighbouring classes are at most 12.5% apart and a request
 * wastes less than 12.5% of its block.  Every power of two from 8 B to 256 KiB
 * is a class, and a class above 128 B is a multiple of 2^(k-3), so rounding a
 * request up to a multiple of A (a power of two) always lands on a class that
 * is itself a multiple of A: that is how alignment is honoured in slabs.
 *
 * A pool never uses classes below its min_block_size or that are not a
 * multiple of its alignment; its O(1) table for sizes up to SMALL_MAX maps
 * straight to the class it uses (pool.c builds it with sizeclass_of).
 */
#ifndef MPOOL_SIZECLASS_H
#define MPOOL_SIZECLASS_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* The block size of class c. */
static inline size_t sizeclass_size(unsigned c)
{
    if (c < 16)
        return 8 * ((size_t)c + 1);
    unsigned k = 7 + (c - 16) / 8, j = 1 + (c - 16) % 8;
    return ((size_t)1 << k) + ((size_t)j << (k - 3));
}

/* The smallest class whose blocks hold `size` bytes (1..SLAB_MAX), by bit
 * arithmetic. */
static inline unsigned sizeclass_of(size_t size)
{
    if (size <= 128)
        return size <= 8 ? 0 : (unsigned)((size - 1) >> 3);
    size_t s = size - 1;
    unsigned k = floor_log2(s); /* 7 .. 17 */
    return 16 + (k - 7) * 8 + (unsigned)((s >> (k - 3)) & 7);
}

/* Pages in a slab of blocks of block_size bytes: up to 32 KiB blocks, at
 * least 4 pages (16 KiB) and 8 blocks, with at most 1/16 of the slab left
 * over; above, as many blocks as fit 256 KiB (at least one), so that a
 * medium block does not take a slab eight times its size (a pool capped at
 * 1 MiB must still hold a 128 KiB block). */
#define SLAB_SMALL_MAX ((size_t)32768)
#define SLAB_MEDIUM_BYTES ((size_t)256 * 1024)
size_t sizeclass_slab_pages(size_t block_size) mpool_internal;

_Static_assert(SLAB_MAX == 1 << 18, "the last class is 2^18");
_Static_assert(SLAB_MAX <= SLAB_MEDIUM_BYTES, "a medium slab holds a block of the largest class");
_Static_assert(SLAB_SMALL_MAX % PAGE_SIZE == 0, "classes above SLAB_SMALL_MAX are whole pages");

#endif /* MPOOL_SIZECLASS_H */
