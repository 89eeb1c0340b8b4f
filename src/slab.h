/*
 * slab.h - slabs: a buddy run cut into equal blocks of one size class, with
 * its own free list threaded through the free blocks (no block header).
 *
 * The inline pop is the allocation path; everything else (taking a new slab,
 * listing a slab that was full, returning an empty one) is in slab.c.  All
 * functions here need the class lock when the pool is thread safe (_locked).
 *
 * While a slab is its class's current slab, its `used` count holds one extra
 * reference, so a free never sees the current slab become empty and the
 * free fast path has only two rare cases: the slab was full, or it is now
 * empty (and not current).
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

/* Live blocks of the slab (its used count without the current reference). */
static inline size_t slab_live(const struct page *pg)
{
    return (size_t)pg->used - ((pg->flags & PG_CURRENT) ? 1 : 0);
}

/* Returns every class's current slab that holds no live block to the page
 * allocator (takes the class locks); returns how many were returned. */
size_t slab_flush_empty(struct mpool_pool *pool) mpool_internal;

/* Bytes in live blocks of class cls. */
size_t slab_class_bytes_locked(const struct mpool_pool *pool, unsigned cls) mpool_internal;

/* Points the pool's hot slab at pg (a current slab), or at nothing. */
static inline void slab_set_hot(struct mpool_pool *pool, struct page *pg)
{
    pool->hot_slab = pg ? pg : &mpool_empty_slab;
    pool->hot_start = pg ? (uintptr_t)page_start(pg) : 0;
    pool->hot_recip = pg ? pg->recip : 0;
    pool->hot_limit = pg ? pg->limit : 0;
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
    pg->free = *(void **)block;
    pg->used++;
    return block;
}

/* Pushes block p of slab pg.  The caller checked that p is not the free-list
 * head and that the slab has a live block (used > 1 on the fast path, which
 * also proves the descriptor is a slab head: see region.h). */
static inline void slab_push_locked(struct mpool_pool *pool, struct page *pg, void *p)
{
    void *head = pg->free;
    *(void **)p = head;
    pg->free = p;
    if (unlikely(head == NULL)) {
        pg->used--;
        slab_after_free_locked(pool, pg);
    } else if (unlikely(--pg->used == 0)) {
        slab_after_free_locked(pool, pg);
    }
}

#endif /* MPOOL_SLAB_H */
