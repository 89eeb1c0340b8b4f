/*
 * slab.c - the lists of one slab (rules in slab.h).
 *
 * Invariants (slab_check)
 *   used + length(free) + length(local_free) + released == extent + current;
 *   released counts the carved blocks that start in released pages; every block on a
 *   list starts a block of the slab and carries the key; thread_free holds
 *   blocks counted in used, as many as its count says; a slab with SLAB_NOTIFY set is parked and its
 *   free list is empty.
 */
#include "slab.h"

#include <sched.h>

#include "prim.h"

#define BIT_TEST(bits, i) (((bits)[(i) / 64] >> ((i) % 64)) & 1)
#define BIT_SET(bits, i) ((bits)[(i) / 64] |= (uint64_t)1 << ((i) % 64))

/* Removes from a list of slab pg the blocks that start in a page of rel;
 * returns how many. */
static size_t list_drop_released(struct page *pg, void **head, const uint64_t *rel)
{
    size_t dropped = 0;
    void *prev = NULL;
    for (void *b = *head; b;) {
        void *next = slab_link_get(b, pg->link);
        if (BIT_TEST(rel, (size_t)(slab_offset(pg, b) >> PAGE_SHIFT))) {
            if (prev)
                slab_link_put(prev, next, pg->link);
            else
                *head = next;
            dropped++;
        } else {
            prev = b;
        }
        b = next;
    }
    return dropped;
}

/* The blocks that start in page k of the slab and are carved: [*first, *end). */
static void slab_page_blocks(const struct page *pg, size_t k, size_t *first, size_t *end)
{
    size_t bsize = pg->block_size;
    size_t a = ((k << PAGE_SHIFT) + bsize - 1) / bsize, b = (((k + 1) << PAGE_SHIFT) + bsize - 1) / bsize;
    *first = a < pg->extent ? a : pg->extent;
    *end = b < pg->extent ? b : pg->extent;
}

/* True if block i of the slab starts in a released page. */
static bool slab_block_released(const struct page *pg, size_t i)
{
    size_t k = (i * pg->block_size) >> PAGE_SHIFT;
    return k > 0 && page_is_released(pg + k);
}

/* Blocks that start in the slab's released pages (slab_check compares it
 * with pg->released). */
static size_t slab_released_count(const struct page *pg)
{
    size_t n = 0;
    for (size_t k = 1; k < pg->npages; k++)
        if (page_is_released(pg + k)) {
            size_t first, end;
            slab_page_blocks(pg, k, &first, &end);
            n += end - first;
        }
    return n;
}

void slab_format(struct page *pg, struct heap *heap, size_t block_size, uint64_t key, uint64_t link)
{
    size_t cap = ((size_t)pg->npages << PAGE_SHIFT) / block_size;
    mpool_assert(cap >= 1 && cap <= SLAB_COUNT_MAX, "slab_format: a block or more, counted in thread_free's 16 bits");
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
    pg->released = 0;
    pg->next = pg->prev = pg->remote_next = NULL;
    slab_carve(pg, key);
    __atomic_store_n(&pg->heap, heap, __ATOMIC_RELEASE);
}

bool slab_carve(struct page *pg, uint64_t key)
{
    mpool_assert_internal(pg->free == NULL, "slab_carve: only onto an empty free list");
    if (pg->released) /* first the released pages: carving never writes into one */
        return slab_recarve(pg, key);
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

/* The list taken from thread_free of a slab with released pages, less the
 * released blocks on it, *n less their number: another thread freed a
 * released block (free, so a double free) while slab_trim released its page,
 * having read the page's head before; the page stays released, the block
 * leaves the list again.  Out of line: slab_take_remote stays small. */
static mpool_noinline void *slab_drop_released(struct page *pg, void *list, int32_t *n)
{
    uint64_t rel[SLAB_TRIM_MAX_PAGES / 64] = {0};
    for (size_t k = 1; k < pg->npages && k < SLAB_TRIM_MAX_PAGES; k++)
        if (page_is_released(pg + k))
            BIT_SET(rel, k);
    *n -= (int32_t)list_drop_released(pg, &list, rel);
    return list;
}

/* Takes thread_free's list (non-empty, not parked) and subtracts its count
 * from used; returns its first block (NULL if it held only released blocks). */
static void *slab_take_remote(struct page *pg)
{
    uintptr_t tf = __atomic_exchange_n(&pg->thread_free, 0, __ATOMIC_ACQUIRE);
    mpool_assert_internal(!(tf & SLAB_NOTIFY), "slab_collect_remote: not a parked slab");
    int32_t n = (int32_t)slab_tf_count(tf);
    void *list = slab_tf_list(tf);
    if (unlikely(pg->released))
        list = slab_drop_released(pg, list, &n);
    mpool_assert(n <= pg->used, "slab_collect: more blocks freed than handed out");
    slab_set_used(pg, pg->used - n);
    return list;
}

/* Puts the list from head (NULL: nothing) in front of local_free.  A link
 * the program overwrote ends the walk to its tail early: allocation finds it
 * (slab.h). */
static void slab_prepend_local(struct page *pg, void *head)
{
    if (!head)
        return;
    void *tail = head;
    size_t steps = 0;
    while (slab_link_readable(pg, slab_link_get(tail, pg->link)) && ++steps < pg->capacity)
        tail = slab_link_get(tail, pg->link);
    slab_link_put(tail, pg->local_free, pg->link);
    pg->local_free = head;
}

void slab_collect_remote(struct page *pg)
{
    if (!slab_tf_list(__atomic_load_n(&pg->thread_free, __ATOMIC_RELAXED)))
        return;
    slab_prepend_local(pg, slab_take_remote(pg));
}

bool slab_collect(struct page *pg)
{
    mpool_assert_internal(pg->free == NULL, "slab_collect: only onto an empty free list");
    if (slab_tf_list(__atomic_load_n(&pg->thread_free, __ATOMIC_RELAXED))) {
        pg->free = slab_take_remote(pg);
        if (likely(pg->free != NULL))
            return true;
    }
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
        slab_link_put(p, slab_tf_list(tf), pg->link);
        uintptr_t pushed = (uintptr_t)p | ((tf & ~SLAB_LIST & ~SLAB_FLAGS) + SLAB_COUNT_ONE);
        if (__atomic_compare_exchange_n(&pg->thread_free, &tf, pushed, true, __ATOMIC_ACQ_REL,
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
    slab_unrelease(pg, key); /* released blocks are free: marked, the scan finds them too */
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
        n += slab_block_released(pg, i) || *block_mark(pg->start + i * pg->block_size) == key;
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
    const void *tf = slab_tf_list(__atomic_load_n(&pg->thread_free, __ATOMIC_ACQUIRE));
    return list_holds(pg, pg->free, p, pg->capacity) || list_holds(pg, pg->local_free, p, pg->capacity) ||
           list_holds(pg, tf, p, pg->capacity);
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
    const void *tf = slab_tf_list(__atomic_load_n(&pg->thread_free, __ATOMIC_ACQUIRE));
    return list_length(pg, pg->free, pg->capacity) + list_length(pg, pg->local_free, pg->capacity) +
           list_length(pg, tf, pg->capacity);
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
        n += !slab_block_released(pg, i) &&
             __atomic_load_n(block_mark(pg->start + i * pg->block_size), __ATOMIC_RELAXED) == key;
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
    const void *tf = slab_tf_list(__atomic_load_n(&pg->thread_free, __ATOMIC_ACQUIRE));
    const void *r = list_first_repeat(pg, pg->free, seen);
    if (!r)
        r = list_first_repeat(pg, pg->local_free, seen);
    if (!r)
        r = list_first_repeat(pg, tf, seen);
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
    problems += list_check(pg, slab_tf_list(tf), key, &nthread);
    if (!problems && ((size_t)used + nfree + nlocal + pg->released != pg->extent + pg->current ||
                      slab_released_count(pg) != pg->released || nthread > slab_live(pg) ||
                      nfree + nlocal + nthread > slab_marked_count(pg, key))) /* a block freed twice */
        problems++;
    if ((tf & SLAB_NOTIFY) && (pg->free || !(pg->flags & PG_FULL)))
        problems++;
    if (!problems && slab_tf_count(tf) != nthread) /* a free in flight pushes block and count at once */
        problems++;
    return problems;
}

/* ---- Releasing pages (slab.h) ------------------------------------------- */


/* Makes page k of the slab released (the owner, its blocks off the lists):
 * every lookup in it stops at its descriptor (page_is_released). */
static void slab_page_release(struct page *pg, size_t k)
{
    struct page *d = pg + k;
    __atomic_store_n(&d->heap, NULL, __ATOMIC_RELAXED);
    d->npages = 0;
    d->kind = PAGE_SLAB;
    page_clear_back(d);
}

/* Page k of the slab is an inner page again (its blocks are on a list or the
 * slab is going back). */
static void slab_page_restore(struct page *pg, size_t k)
{
    struct page *d = pg + k;
    d->kind = PAGE_META; /* an inner page: never taken for the head of a free run */
    page_set_back(pg, k);
}

/* The first released page of the slab, or 0 if none. */
static size_t slab_first_released(const struct page *pg)
{
    for (size_t k = 1; k < pg->npages; k++)
        if (page_is_released(pg + k))
            return k;
    return 0;
}

bool slab_recarve(struct page *pg, uint64_t key)
{
    mpool_assert_internal(pg->free == NULL, "slab_recarve: only onto an empty free list");
    size_t k = slab_first_released(pg);
    if (k == 0)
        return false;
    size_t first, end, bsize = pg->block_size;
    slab_page_blocks(pg, k, &first, &end);
    mpool_assert(end > first && end - first <= pg->released, "slab_recarve: a released page holds released blocks");
    char *b = pg->start + first * bsize;
    for (size_t i = first; i < end; i++, b += bsize) {
        slab_link_put(b, i + 1 < end ? b + bsize : NULL, pg->link);
        *block_mark(b) = key;
        slab_asan_freed(pg, b);
    }
    slab_page_restore(pg, k);
    pg->released -= (uint32_t)(end - first);
    pg->free = pg->start + first * bsize;
    return true;
}

void slab_unrelease(struct page *pg, uint64_t key)
{
    for (size_t k = 1; pg->released && k < pg->npages; k++) {
        if (!page_is_released(pg + k))
            continue;
        size_t first, end;
        slab_page_blocks(pg, k, &first, &end);
        for (size_t i = first; i < end; i++)
            if (key) {
                __atomic_store_n(block_mark(pg->start + i * pg->block_size), key, __ATOMIC_RELAXED);
                slab_asan_freed(pg, pg->start + i * pg->block_size);
            }
        slab_page_restore(pg, k);
        pg->released -= (uint32_t)(end - first);
    }
    mpool_assert(pg->released == 0, "slab_unrelease: every released block was in a released page");
    pg->released = 0;
}

/* Sets in seen the blocks of a list of slab pg; false if the list holds
 * something that is not a carved block, or a block twice. */
static bool list_mark_seen(const struct page *pg, const void *f, uint64_t *seen)
{
    for (size_t steps = 0; f; f = slab_link_get(f, pg->link), steps++) {
        uint64_t off = slab_offset(pg, f);
        if (!slab_link_readable(pg, f) || steps >= pg->capacity || !slab_is_block_offset_owner(pg, off))
            return false;
        size_t i = (size_t)(off / pg->block_size);
        if (BIT_TEST(seen, i))
            return false;
        BIT_SET(seen, i);
    }
    return true;
}

size_t slab_trim(struct page *pg)
{
    size_t bsize = pg->block_size, npages = pg->npages;
    if (npages > SLAB_TRIM_MAX_PAGES || pg->capacity > SLAB_TRIM_MAX_BLOCKS)
        return 0;
    mpool_assert_internal(!(pg->flags & PG_FULL), "slab_trim: not a parked slab");
    /* Every free block on free or local_free: thread_free taken under the
     * lock bit, so a block another thread is still freeing counts as live. */
    uintptr_t tf = slab_lock_remote(pg);
    void *held = slab_tf_list(tf);
    if (held) {
        int32_t n = (int32_t)slab_tf_count(tf);
        if (pg->released) /* a racing free of a released block (slab_drop_released) */
            held = slab_drop_released(pg, held, &n);
        slab_prepend_local(pg, held);
        slab_set_used(pg, pg->used - n);
    }
    uint64_t seen[SLAB_TRIM_MAX_BLOCKS / 64] = {0}, rel[SLAB_TRIM_MAX_PAGES / 64] = {0},
             gone[SLAB_TRIM_MAX_PAGES / 64] = {0};
    if (!list_mark_seen(pg, pg->free, seen) || !list_mark_seen(pg, pg->local_free, seen)) {
        __atomic_store_n(&pg->thread_free, 0, __ATOMIC_RELEASE);
        return 0; /* a broken list or a double free: left to the checks that report them */
    }
    size_t carved_bytes = (size_t)pg->extent * bsize, nrel = 0;
    for (size_t k = 1; k < npages; k++) { /* the first page is the head's: it stays */
        if (page_is_released(pg + k))
            continue; /* given back already */
        size_t lo = k << PAGE_SHIFT, hi = lo + PAGE_SIZE;
        bool free = true;
        if (lo < carved_bytes) { /* the carved blocks the page overlaps */
            size_t last = ((hi < carved_bytes ? hi : carved_bytes) - 1) / bsize;
            for (size_t i = lo / bsize; free && i <= last; i++)
                free = BIT_TEST(seen, i) || slab_block_released(pg, i);
        }
        if (!free)
            continue;
        BIT_SET(gone, k);
        size_t first, end;
        slab_page_blocks(pg, k, &first, &end);
        if (end > first) { /* carved blocks start in it: they leave the lists, the page is released */
            BIT_SET(rel, k);
            nrel++;
        }
    }
    if (nrel) {
        size_t dropped = list_drop_released(pg, &pg->free, rel) + list_drop_released(pg, &pg->local_free, rel);
        for (size_t k = 1; k < npages; k++)
            if (BIT_TEST(rel, k))
                slab_page_release(pg, k);
        pg->released += (uint32_t)dropped;
    }
    __atomic_store_n(&pg->thread_free, 0, __ATOMIC_RELEASE);
    /* The pages go back: resident ones counted, runs of them in one call. */
    unsigned char vec[SLAB_TRIM_MAX_PAGES];
    if (!prim_resident(pg->start, npages, vec))
        return 0;
    size_t released = 0;
    for (size_t k = 1; k < npages;) {
        if (!BIT_TEST(gone, k)) {
            k++;
            continue;
        }
        size_t j = k, resident = 0;
        while (j < npages && BIT_TEST(gone, j))
            resident += vec[j++] & 1;
        if (resident && prim_decommit(pg->start + (k << PAGE_SHIFT), (j - k) << PAGE_SHIFT))
            released += resident << PAGE_SHIFT;
        k = j;
    }
    return released;
}
