/*
 * sizeclass.c - slab geometry of the size classes (the classes themselves
 * are pure arithmetic, in sizeclass.h).
 */
#include "sizeclass.h"

_Static_assert(CLASS_COUNT == 16 + 11 * 8, "8-byte classes, then 8 per doubling from 128 B to 256 KiB");

size_t sizeclass_slab_pages(size_t block_size)
{
    if (block_size > SLAB_SMALL_MAX) /* a multiple of 4 KiB: no tail */
        return (block_size * (SLAB_MEDIUM_BYTES / block_size)) >> PAGE_SHIFT;
    size_t min_bytes = block_size * 8 > 4 * PAGE_SIZE ? block_size * 8 : 4 * PAGE_SIZE;
    size_t pages = align_up(min_bytes, PAGE_SIZE) >> PAGE_SHIFT;
    /* Lengthen the slab until the unusable tail is at most 1/16 of it. */
    for (size_t p = pages; p <= pages * 2; p++) {
        size_t bytes = p << PAGE_SHIFT;
        if ((bytes % block_size) * 16 <= bytes && bytes / block_size <= UINT16_MAX)
            return p;
    }
    return pages;
}
