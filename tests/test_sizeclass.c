/*
 * test_sizeclass.c - the size classes of slabs (sizeclass.h, sizeclass.c):
 * the class table is increasing and consistent with sizeclass_of, rounding
 * wastes less than 12.5% above 128 B, the documented shape of the table
 * (8-byte steps up to 128 B, every power of two a class, alignment closure)
 * and the slab geometry of every class; plus the waste bound seen through
 * the public API.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>

#include <mpool.h>

#include "common.h"
#include "sizeclass.h"
#include "testutil.h"

TestSuite(sizeclass);

Test(sizeclass, sizes_increase_and_round_trip)
{
    cr_assert_eq(sizeclass_size(0), 8, "class 0 is 8 bytes, got %zu", sizeclass_size(0));
    cr_assert_eq(sizeclass_size(CLASS_COUNT - 1), SLAB_MAX, "last class %zu != SLAB_MAX",
                 sizeclass_size(CLASS_COUNT - 1));
    for (unsigned c = 0; c < CLASS_COUNT; c++) {
        size_t s = sizeclass_size(c);
        cr_assert_eq(sizeclass_of(s), c, "sizeclass_of(sizeclass_size(%u) = %zu) = %u", c, s,
                     sizeclass_of(s));
        if (c > 0) {
            size_t prev = sizeclass_size(c - 1);
            cr_assert_gt(s, prev, "class %u (%zu) not larger than class %u (%zu)", c, s, c - 1,
                         prev);
            cr_assert_eq(sizeclass_of(prev + 1), c, "sizeclass_of(%zu) = %u, expected %u",
                         prev + 1, sizeclass_of(prev + 1), c);
        } else {
            cr_assert_eq(sizeclass_of(1), 0, "sizeclass_of(1) = %u", sizeclass_of(1));
        }
    }
}

Test(sizeclass, every_size_fits_and_waste_bounded)
{
    for (size_t s = 1; s <= SLAB_MAX; s++) {
        unsigned c = sizeclass_of(s);
        cr_assert_lt(c, CLASS_COUNT, "sizeclass_of(%zu) = %u out of range", s, c);
        size_t block = sizeclass_size(c);
        cr_assert_geq(block, s, "size %zu: class %u holds only %zu bytes", s, c, block);
        /* The smallest class that holds s: the class below is too small. */
        if (c > 0)
            cr_assert_lt(sizeclass_size(c - 1), s, "size %zu: class %u (%zu) is not the smallest",
                         s, c, block);
        if (s > 128)
            cr_assert((double)(block - s) / (double)s < 0.125,
                      "size %zu: block %zu wastes %.4f >= 12.5%%", s, block,
                      (double)(block - s) / (double)s);
    }
}

Test(sizeclass, steps_of_8_up_to_128)
{
    for (unsigned c = 0; c < 16; c++)
        cr_assert_eq(sizeclass_size(c), 8 * ((size_t)c + 1), "class %u = %zu", c,
                     sizeclass_size(c));
    cr_assert_eq(sizeclass_size(15), 128);
    cr_assert_gt(sizeclass_size(16), 128);
    /* Above 128 B, neighbours are at most 12.5% apart. */
    for (unsigned c = 17; c < CLASS_COUNT; c++) {
        size_t a = sizeclass_size(c - 1), b = sizeclass_size(c);
        cr_assert_leq((b - a) * 8, a, "classes %u (%zu) and %u (%zu) more than 12.5%% apart",
                      c - 1, a, c, b);
    }
}

Test(sizeclass, every_power_of_two_is_a_class)
{
    for (size_t p = 8; p <= SLAB_MAX; p <<= 1) {
        unsigned c = sizeclass_of(p);
        cr_assert_eq(sizeclass_size(c), p, "power of two %zu lands on class %u of %zu bytes", p,
                     c, sizeclass_size(c));
    }
}

Test(sizeclass, alignment_closure)
{
    for (size_t a = 1; a <= 4096; a <<= 1) {
        for (size_t s = 1; s <= SLAB_MAX; s++) {
            size_t r = align_up(s, a);
            if (r > SLAB_MAX)
                break;
            size_t block = sizeclass_size(sizeclass_of(r));
            cr_assert_eq(block % a, 0,
                         "size %zu rounded to alignment %zu (%zu) lands on class of %zu bytes, "
                         "not a multiple of %zu",
                         s, a, r, block, a);
        }
    }
}

Test(sizeclass, slab_geometry)
{
    for (unsigned c = 0; c < CLASS_COUNT; c++) {
        size_t b = sizeclass_size(c);
        size_t pages = sizeclass_slab_pages(b);
        size_t bytes = pages * PAGE_SIZE;
        cr_assert_geq(pages, 4, "class %u (%zu B): slab of %zu pages, fewer than 4", c, b, pages);
        cr_assert_leq(pages, (size_t)1 << BUDDY_MAX_ORDER,
                      "class %u (%zu B): slab of %zu pages exceeds the largest buddy run", c, b,
                      pages);
        size_t capacity = bytes / b; /* as slab_format computes it */
        if (b <= SLAB_SMALL_MAX)
            cr_assert_geq(capacity, 8, "class %u (%zu B): slab of %zu pages holds %zu blocks", c, b,
                          pages, capacity);
        else /* medium: as many blocks as fit 256 KiB, no tail */
            cr_assert(capacity >= 1 && bytes <= SLAB_MEDIUM_BYTES && bytes + b > SLAB_MEDIUM_BYTES &&
                          bytes == capacity * b,
                      "class %u (%zu B): medium slab of %zu pages holds %zu blocks", c, b, pages, capacity);
        size_t tail = bytes - capacity * b;
        cr_assert_leq(tail * 16, bytes,
                      "class %u (%zu B): slab of %zu pages wastes %zu tail bytes (> 1/16)", c, b,
                      pages, tail);
        cr_assert_leq(capacity, UINT16_MAX, "class %u (%zu B): capacity %zu exceeds uint16", c,
                      b, capacity);
        /* struct page keeps capacity, block size and used (capacity + the
         * current reference) in uint32 fields. */
        cr_assert_lt(capacity + 1, (size_t)UINT32_MAX, "class %u: capacity %zu overflows uint32",
                     c, capacity);
        cr_assert_leq(b, (size_t)UINT32_MAX);
        /* Consistency with what the pool asks of the page allocator. */
        cr_assert_eq(capacity, (pages << PAGE_SHIFT) / b);
    }
}

Test(sizeclass, public_api_waste_bounded)
{
    mpool_t *pool = mpool_create(NULL);
    cr_assert_not_null(pool);
    for (size_t s = 129; s <= SLAB_MAX; s += 7) {
        void *p = mpool_alloc(pool, s);
        cr_assert_not_null(p, "alloc(%zu) failed", s);
        size_t us = mpool_usable_size(pool, p);
        cr_assert_geq(us, s, "alloc(%zu): usable %zu", s, us);
        double waste = (double)us / (double)s - 1.0;
        cr_assert(waste < 0.125, "alloc(%zu): usable %zu wastes %.4f >= 12.5%%", s, us, waste);
        mpool_free(pool, p);
    }
    cr_assert_eq(mpool_check(pool), 0);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}
