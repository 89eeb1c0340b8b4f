/*
 * slab.h - slabs: a buddy run cut into equal blocks of one size class, with
 * its own free list threaded through the free blocks (no block header).
 *
 * The inline pop is the allocation path; everything else (taking a new slab,
 * listing a slab that was full, returning an empty one) is in slab.c.  All
 * functions here need the class lock when the pool is thread safe (_locked).
 *
 * Counting.  A slab that is not current counts its live blocks in `used`, so
 * the free that empties it (and gives it back) or that frees a block of a
 * full one (and lists it) is seen at once.  The current slab (PG_CURRENT)
 * counts nothing: allocations pop and frees push its list, and its live
 * blocks are its capacity minus the length of that list.  Its `used` is just
 * kept at 1, so that a non-zero used still marks a live slab's head
 * (region.h).  When the class moves on to another slab, the list is empty,
 * so the count taken then (slab_retire) is the capacity and costs nothing;
 * the slow queries (statistics, trim, checks) walk the current slab's list.
 */
#ifndef MPOOL_SLAB_H
#define MPOOL_SLAB_H

#include "pool.h"

/* Takes a block when the current slab has none left; NULL with *status set
 * if the page allocator cannot give a new slab. */
void *slab_refill_locked(struct mpool_pool *pool, unsigned cls,
                         enum buddy_status *status) mpool_internal mpool_noinline;

/* Called after a push when the slab was full or is now empty. */
void slab_after_free_locked(struct mpool_pool *pool, struct page *pg) mpool_internal mpool_noinline;

/* True if p is the start of a block of slab pg that is not on its free list. */
bool slab_block_is_live_locked(const struct page *pg, const void *p) mpool_internal;

/* Blocks in the slab. */
static inline size_t slab_capacity(const struct page *pg) { return pg->limit / pg->block_size; }

/* True if byte offset off of the slab headed by pg is where a block starts:
 * off < limit, and block_size divides off, tested with one multiplication by
 * recip = UINT64_MAX / block_size + 1 (exact for every off below 2^32:
 * Lemire, Kaser and Kurz, "Faster remainder by direct computation", 2019). */
static inline bool slab_offset_is_block(const struct page *pg, uint64_t off)
{
    return off < pg->limit && off * pg->recip < pg->recip;
}

/* Blocks on the slab's free list, counting at most capacity + 1 (a longer
 * list is broken). */
size_t slab_free_count(const struct page *pg) mpool_internal;

/* Live blocks of the slab (a current slab's list is walked). */
static inline size_t slab_live(const struct page *pg)
{
    if (!(pg->flags & PG_CURRENT))
        return pg->used;
    size_t capacity = slab_capacity(pg), nfree = slab_free_count(pg);
    return nfree < capacity ? capacity - nfree : 0;
}

/* The cheap checks before p (a block start of slab pg) is pushed: p is not
 * the block freed last, and a slab that is not current has a live block. */
static inline bool slab_may_push(const struct page *pg, const void *p)
{
    return p != pg->free && ((pg->flags & PG_CURRENT) || pg->used > 0);
}

/* Returns every class's current slab that holds no live block to the page
 * allocator (takes the class locks); returns how many were returned. */
size_t slab_flush_empty(struct mpool_pool *pool) mpool_internal;

/* Bytes in live blocks of class cls. */
size_t slab_class_bytes_locked(const struct mpool_pool *pool, unsigned cls) mpool_internal;

/* x rotated right by s bits (s < 64). */
static inline uint64_t slab_index_rotate(uint64_t x, unsigned s)
{
    return (x >> s) | (x << ((64 - s) & 63));
}

/* Points the pool's hot slab at pg (a current slab), or at nothing.
 *
 * The block test of the hot slab is one multiplication, one rotation and one
 * compare, exact for every 64-bit offset: with block_size = d * 2^s (d odd)
 * and inverse * d == 1 mod 2^64, rotr(off * inverse, s) is off / block_size
 * when block_size divides off, and at least 2^64 / block_size (more than any
 * capacity) otherwise (Granlund and Montgomery, "Division by invariant
 * integers using multiplication", 1994, section 9). */
static inline void slab_set_hot(struct mpool_pool *pool, struct page *pg)
{
    pool->hot_slab = pg ? pg : &mpool_empty_slab;
    pool->hot_start = pg ? (uintptr_t)page_start(pg) : 0;
    pool->hot_count = pg ? slab_capacity(pg) : 0;
    unsigned shift = pg ? (unsigned)__builtin_ctz(pg->block_size) : 0;
    uint64_t odd = pg ? (uint64_t)pg->block_size >> shift : 1, inverse = odd; /* right to 3 bits */
    for (int i = 0; i < 5; i++) /* Newton's iteration doubles the correct bits */
        inverse *= 2 - odd * inverse;
    pool->hot_inverse = inverse;
    pool->hot_shift = (uint8_t)shift;
}

/* Forgets every slab of every class (the page allocator is reset after). */
void slab_reset_classes(struct mpool_pool *pool) mpool_internal;

/* Number of broken invariants of one slab (free list and counts). */
size_t slab_check_one(const struct page *pg) mpool_internal;

/* Number of broken invariants of class cls's current slab and partial list. */
size_t slab_check_locked(const struct mpool_pool *pool, unsigned cls) mpool_internal;

static inline void *slab_pop_locked(struct mpool_pool *pool, unsigned cls, enum buddy_status *status)
{
    struct page *pg = pool->current[cls];
    void *block = pg->free;
    if (unlikely(!block))
        return slab_refill_locked(pool, cls, status);
    pg->free = *(void **)block; /* the current slab: nothing to count */
    return block;
}

/* Pushes block p of slab pg; the caller checked slab_may_push. */
static inline void slab_push_locked(struct mpool_pool *pool, struct page *pg, void *p)
{
    void *head = pg->free;
    *(void **)p = head;
    pg->free = p;
    if (pg->flags & PG_CURRENT)
        return;
    if (unlikely(--pg->used == 0 || head == NULL))
        slab_after_free_locked(pool, pg);
}

#endif /* MPOOL_SLAB_H */
