/*
 * slab.c - the slow paths of slabs (layout and fast paths in slab.h).
 *
 * Rules
 *   - A class allocates from its current slab until the slab's free list is
 *     empty, then takes a slab from its partial list, or a new run of
 *     slab_pages pages from the page allocator.  A full slab is on no list.
 *   - A free into a full slab puts it on the partial list; a free that leaves a
 *     slab empty returns it to the page allocator, unless it is current.
 *   - A new slab threads its free list through all its blocks in address
 *     order, so blocks are handed out front to back.
 *
 * Invariants (slab_check_one, slab_check_locked)
 *   used + length(free list) == capacity for a slab that is not current, and
 *   used == 1 for the current one (slab.h); every free-list entry is a block
 *   start inside the slab; the partial list holds only non-current slabs with
 *   free blocks.
 */
#include "slab.h"

#include <string.h>

#include "list.h"

struct page mpool_empty_slab; /* free == NULL: the fast path falls through */
struct mpool_pool mpool_no_fast_owner;

static void partial_push(struct sclass *c, struct page *pg)
{
    pg->flags |= PG_LISTED;
    LIST_PUSH(c->partial, pg, next, prev);
}

static void partial_remove(struct sclass *c, struct page *pg)
{
    LIST_REMOVE(c->partial, pg, next, prev);
    pg->flags &= (uint8_t)~PG_LISTED;
}

/* Turns a fresh page run into a slab of class c with every block free.  In a
 * pool with thread caches, every block also gets the slab mark in its second
 * word (tcache.h), like every other block on a slab's list there. */
static void slab_format(const struct mpool_pool *pool, struct sclass *c, unsigned cls, struct page *pg)
{
    size_t bsize = c->block_size;
    size_t cap = ((size_t)pg->npages << PAGE_SHIFT) / bsize;
    char *start = page_start(pg);
    for (size_t i = 0; i + 1 < cap; i++)
        *(void **)(start + i * bsize) = start + (i + 1) * bsize;
    *(void **)(start + (cap - 1) * bsize) = NULL;
    if (pool->tcache && bsize >= 2 * sizeof(uint64_t))
        for (size_t i = 0; i < cap; i++)
            ((uint64_t *)(start + i * bsize))[1] = pool_slab_mark(pool);
    mpool_assert_internal(pg->kind == PAGE_SLAB && pg->cls == cls, "the page allocator made the run a slab");
    pg->block_size = (uint16_t)bsize;
    pg->limit = (uint32_t)(cap * bsize);
    pg->recip = UINT64_MAX / bsize + 1;
    pg->used = 0;
    pg->flags = 0;
    pg->free = start;
    LIST_PUSH(c->slabs, pg, cnext, cprev);
}

/* Makes the current slab pg an ordinary one: counts its live blocks, then
 * lists it or gives it back as they require. */
static void slab_retire(struct mpool_pool *pool, struct page *pg)
{
    size_t live = slab_live(pg);
    pg->flags &= (uint8_t)~PG_CURRENT;
    pg->used = (uint16_t)live;
    if (live == 0 || pg->free)
        slab_after_free_locked(pool, pg);
}

size_t slab_free_count(const struct page *pg)
{
    size_t n = 0, capacity = slab_capacity(pg);
    for (const void *f = pg->free; f && n <= capacity; f = *(void *const *)f)
        n++;
    return n;
}

void *slab_refill_locked(struct mpool_pool *pool, unsigned cls, enum buddy_status *status)
{
    struct sclass *c = &pool->cls[cls];
    struct page *old = pool->current[cls];
    pool->current[cls] = &mpool_empty_slab;
    if (pool->fast && old == pool->hot_slab) /* only fast pools (no other thread) have one */
        slab_set_hot(pool, NULL);
    if (old != &mpool_empty_slab)
        slab_retire(pool, old);
    if (cls == CLASS_NONE)
        return NULL;
    struct page *pg = c->partial;
    if (pg) {
        partial_remove(c, pg);
    } else {
        bool dirty;
        struct run_request req = {c->slab_pages, 0, PAGE_SLAB, (uint8_t)cls};
        pg = buddy_alloc(&pool->buddy, &req, pool->thread_safe, &dirty, status);
        if (!pg)
            return NULL;
        slab_format(pool, c, cls, pg);
    }
    pg->flags |= PG_CURRENT;
    pg->used = 1; /* counts nothing while current (slab.h) */
    pool->current[cls] = pg;
    if (pool->fast) {
        pool->hot_region = page_region(pg);
        slab_set_hot(pool, pg);
    }
    void *block = pg->free;
    pg->free = *(void **)block;
    return block;
}

void slab_after_free_locked(struct mpool_pool *pool, struct page *pg)
{
    struct sclass *c = &pool->cls[pg->cls];
    if (pg->used == 0 && !(pg->flags & PG_CURRENT)) {
        if (pg->flags & PG_LISTED)
            partial_remove(c, pg);
        LIST_REMOVE(c->slabs, pg, cnext, cprev);
        pg->flags = 0;
        pg->free = NULL;
        buddy_free(&pool->buddy, pg, pool->thread_safe);
    } else if (!(pg->flags & (PG_LISTED | PG_CURRENT))) {
        partial_push(c, pg);
    }
}

bool slab_block_is_live_locked(const struct page *pg, const void *p)
{
    const char *start = page_start(pg);
    if (!slab_offset_is_block(pg, (uint64_t)((const char *)p - start)))
        return false;
    size_t steps = 0, capacity = slab_capacity(pg);
    for (const void *f = pg->free; f && steps <= capacity; f = *(void *const *)f, steps++)
        if (f == p)
            return false;
    return true;
}

size_t slab_flush_empty(struct mpool_pool *pool)
{
    size_t flushed = 0;
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        struct sclass *c = &pool->cls[cls];
        lock_take(&c->lock, pool->thread_safe);
        struct page *pg = pool->current[cls];
        if (pg != &mpool_empty_slab && slab_live(pg) == 0) {
            pool->current[cls] = &mpool_empty_slab;
            if (pool->fast && pg == pool->hot_slab)
                slab_set_hot(pool, NULL);
            slab_retire(pool, pg);
            flushed++;
        }
        lock_give(&c->lock, pool->thread_safe);
    }
    return flushed;
}

void slab_reset_classes(struct mpool_pool *pool)
{
    slab_set_hot(pool, NULL);
    for (unsigned i = 0; i <= CLASS_COUNT; i++)
        pool->current[i] = &mpool_empty_slab;
    for (unsigned i = 0; i < CLASS_COUNT; i++)
        pool->cls[i].partial = pool->cls[i].slabs = NULL;
}

size_t slab_class_bytes_locked(const struct mpool_pool *pool, unsigned cls)
{
    size_t blocks = 0;
    for (const struct page *pg = pool->cls[cls].slabs; pg; pg = pg->cnext)
        blocks += slab_live(pg);
    return blocks * pool->cls[cls].block_size;
}

size_t slab_check_locked(const struct mpool_pool *pool, unsigned cls)
{
    size_t problems = 0;
    const struct sclass *c = &pool->cls[cls];
    const struct page *cur = pool->current[cls];
    if (cur != &mpool_empty_slab &&
        (cur->kind != PAGE_SLAB || cur->cls != cls || !(cur->flags & PG_CURRENT)))
        problems++;
    const struct page *prev = NULL;
    size_t n = 0, limit = budget_held(&pool->budget) >> PAGE_SHIFT; /* more slabs than pages: a cycle */
    bool current_seen = cur == &mpool_empty_slab;
    for (const struct page *pg = c->slabs; pg; pg = pg->cnext) {
        if (pg->kind != PAGE_SLAB || pg->cls != cls || pg->cprev != prev)
            problems++;
        else
            problems += slab_check_one(pg);
        current_seen |= pg == cur;
        prev = pg;
        if (++n > limit) { /* a cycle */
            problems++;
            break;
        }
    }
    if (!current_seen)
        problems++;
    if (pool->tcache && c->block_size >= 2 * sizeof(uint64_t)) /* every free block has the slab mark */
        for (const struct page *pg = c->slabs; pg; pg = pg->cnext) {
            size_t steps = 0, capacity = slab_capacity(pg);
            for (const uint64_t *f = pg->free; f && steps <= capacity; f = *(const uint64_t *const *)f, steps++)
                if (f[1] != pool_slab_mark(pool)) {
                    problems++;
                    break;
                }
        }
    prev = NULL;
    n = 0;
    for (const struct page *pg = c->partial; pg; pg = pg->next) {
        if (pg->kind != PAGE_SLAB || pg->cls != cls || !(pg->flags & PG_LISTED) ||
            (pg->flags & PG_CURRENT) || pg->prev != prev || !pg->free)
            problems++;
        prev = pg;
        if (++n > limit) { /* a cycle */
            problems++;
            break;
        }
    }
    return problems;
}

size_t slab_check_one(const struct page *pg)
{
    size_t problems = 0, nfree = 0;
    const char *start = page_start(pg);
    size_t bytes = (size_t)pg->npages << PAGE_SHIFT;
    if (pg->block_size == 0 || pg->limit != bytes / pg->block_size * pg->block_size ||
        pg->recip != UINT64_MAX / pg->block_size + 1 || slab_live(pg) > slab_capacity(pg))
        return 1;
    size_t capacity = slab_capacity(pg);
    for (const char *f = pg->free; f; f = *(char *const *)f) {
        if (f < start || f >= start + pg->limit || (size_t)(f - start) % pg->block_size != 0 ||
            ++nfree > capacity) {
            problems++;
            break;
        }
    }
    if (!problems && !(pg->flags & PG_CURRENT) && nfree + pg->used != capacity)
        problems++;
    if ((pg->flags & PG_CURRENT) && pg->used != 1)
        problems++;
    return problems;
}
