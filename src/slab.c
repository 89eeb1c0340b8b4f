/*
 * slab.c - the lists of one slab (rules in slab.h).
 *
 * Invariants (slab_check)
 *   used + length(free) + length(local_free) == extent + current; every block on a
 *   list starts a block of the slab and carries the key; thread_free holds
 *   blocks counted in used; a slab with SLAB_NOTIFY set is parked and its
 *   free list is empty.
 */
#include "slab.h"

#include <sched.h>

void slab_format(struct page *pg, struct heap *heap, size_t block_size, uint64_t key, uint64_t link)
{
    size_t cap = ((size_t)pg->npages << PAGE_SHIFT) / block_size;
    mpool_assert(cap >= 1 && cap <= INT32_MAX, "slab_format: a block or more, counted in 31 bits");
    mpool_assert(block_size >= 2 * sizeof(uint64_t), "slab_format: blocks hold a link and a mark");
    unsigned shift;
    uint64_t inverse = size_inverse(block_size, &shift);
    mpool_assert_internal(pg->block_size == block_size, "slab_format: the run was asked for this block size");
    pg->capacity = (uint32_t)cap;
    __atomic_store_n(&pg->extent, 0, __ATOMIC_RELAXED);
    pg->inverse = inverse;
    pg->shift = (uint8_t)shift;
    pg->start = page_start(pg);
    pg->link = link;
    pg->free = NULL;
    pg->local_free = NULL;
    __atomic_store_n(&pg->thread_free, 0, __ATOMIC_RELAXED);
    slab_set_used(pg, 0);
    __atomic_store_n(&pg->parked, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&pg->current, 0, __ATOMIC_RELAXED);
    pg->flags = 0;
    pg->next = pg->prev = pg->remote_next = NULL;
    slab_carve(pg, key);
    __atomic_store_n(&pg->heap, heap, __ATOMIC_RELEASE);
}

bool slab_carve(struct page *pg, uint64_t key)
{
    mpool_assert_internal(pg->free == NULL, "slab_carve: only onto an empty free list");
    size_t first = pg->extent, bsize = pg->block_size;
    if (first >= pg->capacity)
        return false;
    size_t n = PAGE_SIZE / bsize;
    if (n == 0)
        n = 1;
    if (n > pg->capacity - first)
        n = pg->capacity - first;
    char *b = pg->start + first * bsize;
    for (size_t i = 0; i < n; i++, b += bsize) {
        slab_link_put(b, i + 1 < n ? b + bsize : NULL, pg->link);
        *block_mark(b) = key;
        slab_asan_freed(pg, b);
    }
    pg->free = pg->start + first * bsize;
    __atomic_store_n(&pg->extent, first + n, __ATOMIC_RELAXED); /* other threads' block tests read it */
    return true;
}

void slab_collect_remote(struct page *pg)
{
    uintptr_t tf = __atomic_load_n(&pg->thread_free, __ATOMIC_RELAXED);
    if (!(tf & ~SLAB_FLAGS))
        return;
    mpool_assert_internal(!(tf & SLAB_NOTIFY), "slab_collect_remote: not a parked slab");
    tf = __atomic_exchange_n(&pg->thread_free, 0, __ATOMIC_ACQUIRE);
    void *head = (void *)tf, *tail = head;
    int32_t n = 1;
    while (slab_link_readable(pg, slab_link_get(tail, pg->link)) && (uint64_t)n <= pg->capacity) {
        tail = slab_link_get(tail, pg->link);
        n++;
    }
    mpool_assert(n <= pg->used, "slab_collect: more blocks freed than handed out");
    slab_link_put(tail, pg->local_free, pg->link);
    pg->local_free = head;
    slab_set_used(pg, pg->used - n);
}

bool slab_collect(struct page *pg)
{
    mpool_assert_internal(pg->free == NULL, "slab_collect: only onto an empty free list");
    slab_collect_remote(pg);
    pg->free = pg->local_free;
    pg->local_free = NULL;
    return pg->free != NULL;
}

bool slab_park(struct page *pg)
{
    uintptr_t expected = 0;
    if (!__atomic_compare_exchange_n(&pg->thread_free, &expected, SLAB_NOTIFY, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return false;
    uint32_t eighth = pg->capacity >= 8 ? pg->capacity / 8 : 1;
    uint32_t take = (uint32_t)pg->used > eighth ? (uint32_t)pg->used - eighth : 0;
    __atomic_store_n(&pg->parked, take, __ATOMIC_RELAXED);
    slab_set_used(pg, pg->used - (int32_t)take);
    return true;
}

bool slab_unpark(struct page *pg)
{
    uintptr_t tf = __atomic_load_n(&pg->thread_free, __ATOMIC_RELAXED);
    while (tf & SLAB_NOTIFY)
        if (__atomic_compare_exchange_n(&pg->thread_free, &tf, tf & ~SLAB_FLAGS, true,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            slab_set_used(pg, pg->used + (int32_t)pg->parked);
            __atomic_store_n(&pg->parked, 0, __ATOMIC_RELAXED);
            return true;
        }
    return false;
}

void slab_end_parking(struct page *pg)
{
    __atomic_fetch_and(&pg->thread_free, ~SLAB_NOTIFY, __ATOMIC_ACQ_REL);
    slab_set_used(pg, pg->used + (int32_t)pg->parked);
    __atomic_store_n(&pg->parked, 0, __ATOMIC_RELAXED);
}

struct heap *slab_free_remote(struct page *pg, void *p)
{
    struct heap *heap = __atomic_load_n(&pg->heap, __ATOMIC_ACQUIRE); /* stable: p is live */
    uintptr_t tf = __atomic_load_n(&pg->thread_free, __ATOMIC_RELAXED);
    while (tf & SLAB_LOCKED) { /* the owner rebuilds the lists (rare: after a double free) */
        sched_yield();
        tf = __atomic_load_n(&pg->thread_free, __ATOMIC_RELAXED);
    }
    /* Release: the owner's exchange sees the block's link and mark.  Acquire:
     * a free that takes the notification sees everything the owner did to
     * the slab before parking it (its remote_next among them). */
    for (;;) {
        slab_link_put(p, (void *)(tf & ~SLAB_FLAGS), pg->link);
        if (__atomic_compare_exchange_n(&pg->thread_free, &tf, (uintptr_t)p, true, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED))
            break;
        while (tf & SLAB_LOCKED) {
            sched_yield();
            tf = __atomic_load_n(&pg->thread_free, __ATOMIC_RELAXED);
        }
    }
    return tf & SLAB_NOTIFY ? heap : NULL;
}

/* Locks thread_free against remote frees (they wait); returns what it held. */
static uintptr_t slab_lock_remote(struct page *pg)
{
    uintptr_t tf = __atomic_load_n(&pg->thread_free, __ATOMIC_RELAXED);
    for (;;) {
        if (tf & SLAB_LOCKED) { /* only the owner locks, and it is here */
            mpool_assert(false, "slab_lock_remote: locked twice");
        }
        if (__atomic_compare_exchange_n(&pg->thread_free, &tf, tf | SLAB_LOCKED, true, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED))
            return tf;
    }
}

/* Blocks of the slab that carry the mark, linked in address order into
 * *list; returns how many. */
static size_t slab_marked_blocks(struct page *pg, uint64_t key, void **list)
{
    size_t n = 0, bsize = pg->block_size;
    void *last = NULL;
    for (size_t i = 0; i < pg->extent; i++) {
        void *b = pg->start + i * bsize;
        if (*block_mark(b) == key) {
            if (last)
                slab_link_put(last, b, pg->link);
            else
                *list = b;
            last = b;
            n++;
        }
    }
    if (last)
        slab_link_put(last, NULL, pg->link);
    else
        *list = NULL;
    return n;
}

size_t slab_rebuild(struct page *pg, uint64_t key)
{
    mpool_assert(!(pg->flags & PG_FULL), "slab_rebuild: not a parked slab");
    slab_lock_remote(pg); /* blocks on thread_free carry the mark: the scan finds them */
    void *list;
    size_t n = slab_marked_blocks(pg, key, &list);
    pg->free = list;
    pg->local_free = NULL;
    slab_set_used(pg, (int32_t)(pg->extent - n) + pg->current);
    __atomic_store_n(&pg->thread_free, 0, __ATOMIC_RELEASE);
    return n;
}

bool slab_verify_empty(struct page *pg, uint64_t key)
{
    uintptr_t held = slab_lock_remote(pg);
    size_t n = 0;
    for (size_t i = 0; i < pg->extent && held == 0; i++)
        n += *block_mark(pg->start + i * pg->block_size) == key;
    if (held == 0 && n == pg->extent)
        return true; /* stays locked: it goes back to the page allocator */
    __atomic_store_n(&pg->thread_free, held, __ATOMIC_RELEASE);
    return false;
}

/* True if p is on the list of slab pg starting at f (at most limit steps). */
static bool list_holds(const struct page *pg, const void *f, const void *p, size_t limit)
{
    for (size_t steps = 0; slab_link_readable(pg, f) && steps <= limit; f = slab_link_get(f, pg->link), steps++)
        if (f == p)
            return true;
    return false;
}

bool slab_block_is_free(const struct page *pg, const void *p)
{
    uintptr_t tf = __atomic_load_n(&pg->thread_free, __ATOMIC_ACQUIRE) & ~SLAB_FLAGS;
    return list_holds(pg, pg->free, p, pg->capacity) || list_holds(pg, pg->local_free, p, pg->capacity) ||
           list_holds(pg, (const void *)tf, p, pg->capacity);
}

/* Length of a list of slab pg, at most limit + 1. */
static size_t list_length(const struct page *pg, const void *f, size_t limit)
{
    size_t n = 0;
    for (; slab_link_readable(pg, f) && n <= limit; f = slab_link_get(f, pg->link))
        n++;
    return n;
}

size_t slab_free_count(const struct page *pg)
{
    uintptr_t tf = __atomic_load_n(&pg->thread_free, __ATOMIC_ACQUIRE) & ~SLAB_FLAGS;
    return list_length(pg, pg->free, pg->capacity) + list_length(pg, pg->local_free, pg->capacity) +
           list_length(pg, (const void *)tf, pg->capacity);
}

/* Problems of one list: blocks outside the slab or not at a block start,
 * without the key, or more than the slab holds.  *n gets its length. */
static size_t list_check(const struct page *pg, const void *f, uint64_t key, size_t *n)
{
    const char *start = page_start(pg);
    size_t limit = (size_t)pg->npages << PAGE_SHIFT;
    *n = 0;
    for (; f; f = slab_link_get(f, pg->link)) {
        const char *b = f;
        if (b < start || (size_t)(b - start) >= limit || !slab_is_block_offset(pg, (uint64_t)(b - start)) ||
            ((const uint64_t *)b)[1] != key || ++*n > pg->capacity)
            return 1;
    }
    return 0;
}

size_t slab_marked_count(const struct page *pg, uint64_t key)
{
    size_t n = 0, extent = __atomic_load_n(&pg->extent, __ATOMIC_RELAXED);
    for (size_t i = 0; i < extent; i++) /* other threads' frees may be writing marks */
        n += __atomic_load_n(block_mark(pg->start + i * pg->block_size), __ATOMIC_RELAXED) == key;
    return n;
}

/* Walks a list with the bitmap of blocks seen (bit i: block i); returns the
 * first block met twice, or NULL.  Stops at anything that is not a block. */
static const void *list_first_repeat(const struct page *pg, const void *f, uint64_t *seen)
{
    for (size_t steps = 0; slab_link_readable(pg, f) && steps <= pg->capacity; f = slab_link_get(f, pg->link), steps++) {
        uint64_t off = slab_offset(pg, f);
        if (!slab_is_block_offset(pg, off))
            return NULL;
        size_t i = (size_t)(off / pg->block_size);
        if (seen[i / 64] & ((uint64_t)1 << (i % 64)))
            return f;
        seen[i / 64] |= (uint64_t)1 << (i % 64);
    }
    return NULL;
}

const void *slab_find_repeat(const struct page *pg)
{
    uint64_t seen[SLAB_REPEAT_MAX / 64] = {0};
    if (pg->capacity > SLAB_REPEAT_MAX)
        return NULL;
    uintptr_t tf = __atomic_load_n(&pg->thread_free, __ATOMIC_ACQUIRE) & ~SLAB_FLAGS;
    const void *r = list_first_repeat(pg, pg->free, seen);
    if (!r)
        r = list_first_repeat(pg, pg->local_free, seen);
    if (!r)
        r = list_first_repeat(pg, (const void *)tf, seen);
    return r;
}

size_t slab_check(const struct page *pg, uint64_t key)
{
    size_t bytes = (size_t)pg->npages << PAGE_SHIFT;
    int32_t used = slab_used(pg);
    if (pg->block_size < 16 || pg->capacity != bytes / pg->block_size || pg->extent > pg->capacity ||
        pg->current > 1 || used < 0 || (size_t)used > pg->extent + pg->current ||
        (pg->parked && !(pg->flags & PG_FULL)) || ((pg->flags & PG_FULL) && pg->extent != pg->capacity))
        return 1;
    uintptr_t tf = __atomic_load_n(&pg->thread_free, __ATOMIC_ACQUIRE);
    size_t nfree, nlocal, nthread, problems = 0;
    problems += list_check(pg, pg->free, key, &nfree);
    problems += list_check(pg, pg->local_free, key, &nlocal);
    problems += list_check(pg, (const void *)(tf & ~SLAB_FLAGS), key, &nthread);
    if (!problems && ((size_t)used + nfree + nlocal != pg->extent + pg->current || nthread > slab_live(pg) ||
                      nfree + nlocal + nthread > slab_marked_count(pg, key))) /* a block freed twice */
        problems++;
    if ((tf & SLAB_NOTIFY) && (pg->free || !(pg->flags & PG_FULL)))
        problems++;
    return problems;
}
