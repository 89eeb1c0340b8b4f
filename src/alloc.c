/*
 * alloc.c - the block functions of the public API: allocation, resizing,
 * freeing and queries of single blocks.
 *
 * Routing of a request of `size` bytes aligned to A = max(A, pool alignment):
 *   size <= max_block_size and round_up(size, A) <= 256 KiB, A <= 4 KiB -> slab
 *   size <= max_block_size and size <= 2 MiB                            -> large (page run)
 *   otherwise                                                           -> huge (own mapping)
 *
 * One path for slab blocks, whatever the pool (heap.h, slab.h): allocation
 * pops the free list of the calling thread's heap's current slab of the
 * class; free finds the slab from the address and, if the calling thread's
 * heap owns it, pushes its local list, else its thread_free list.  The
 * inline parts (mpool_alloc, mpool_free, and malloc and free through
 * alloc_default and free_default) hold the common case of the owner; every
 * other case leaves them through one unlikely branch:
 *   alloc_slow    a pool whose heap is not reached inline (thread safe,
 *                 debug, the default pool), or a class whose slab is empty;
 *   alloc_general everything else: large and huge blocks, debug pools, errors;
 *   free_remote   a block of another heap's slab (the remote free: one
 *                 compare-and-swap on the slab's thread_free);
 *   free_general  large and huge blocks, debug pools, every pointer that is
 *                 not a live block, and what free_remote leaves (a marked
 *                 block, the owner's own blocks past the inline test).
 *
 * Checking pointers: free first proves with the chunk map that the pointer
 * lies in one of our regions (nothing is read through a foreign pointer),
 * then that the slab's owner is the caller's heap and that the pointer starts
 * a block (slab.h: one multiplication).  The owner's inline free refuses the
 * head of local_free; its other double frees are found later, before the
 * block is handed out twice (slab.h).  free_remote and the general path find
 * the block the same way, then its pool, and refuse a block that carries the
 * free mark (the general path reports it);
 * mpool_safe_free, mpool_owns and mpool_usable_size are exact by the same
 * tests.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "debug.h"
#include "heap.h"
#include "huge.h"
#include "large.h"
#include "pool.h"
#include "slab.h"
#include "zero.h"

#define MAX_REQUEST ((size_t)PTRDIFF_MAX - 2 * REGION_SIZE) /* larger sizes cannot be served */

enum block_kind { BLOCK_NONE = 0, BLOCK_SLAB, BLOCK_LARGE, BLOCK_HUGE, BLOCK_ZERO };

struct block {
    enum block_kind kind;
    struct mpool_pool *pool;
    struct page *pg;  /* SLAB, LARGE: head of the run */
    struct huge *h;   /* HUGE */
    struct zero_area *z; /* ZERO */
};

/* ---- Finding blocks ----------------------------------------------------- */

/* The block p points into, without trusting p (BLOCK_NONE if foreign). */
static struct block block_find(const void *p)
{
    struct block b = {BLOCK_NONE, NULL, NULL, NULL, NULL};
    struct region *r = region_find(p);
    if (r) {
        struct page *head = region_run_of(r, p);
        if (head && (head->kind == PAGE_LARGE || __atomic_load_n(&head->heap, __ATOMIC_ACQUIRE))) {
            b.kind = head->kind == PAGE_SLAB ? BLOCK_SLAB : BLOCK_LARGE;
            b.pool = r->pool;
            b.pg = head;
        }
        return b;
    }
    struct huge *h = huge_of(p);
    if (h) {
        b.kind = BLOCK_HUGE;
        b.pool = h->pool;
        b.h = h;
        return b;
    }
    struct zero_area *z = zero_area_of(p);
    if (z) {
        b.kind = BLOCK_ZERO;
        b.pool = z->pool;
        b.z = z;
    }
    return b;
}

/* True if p is where a block starts (not inside one). */
static bool block_is_start(const struct block *b, const void *p)
{
    if (b->kind == BLOCK_SLAB)
        return slab_is_block_offset(b->pg, slab_offset(b->pg, p));
    if (b->kind == BLOCK_LARGE)
        return large_is_block(b->pg, p);
    if (b->kind == BLOCK_ZERO)
        return zero_is_live(b->z, p); /* a freed slot is no block until handed out again */
    return b->kind == BLOCK_HUGE;
}

static size_t block_usable(const struct block *b)
{
    switch (b->kind) {
    case BLOCK_SLAB:
        return b->pg->block_size;
    case BLOCK_LARGE:
        return large_usable(b->pg);
    case BLOCK_HUGE:
        return b->h->usable;
    default:
        return 0;
    }
}

/* True if slab block p carries its pool's free mark (slab.h). */
static bool block_marked_free(const struct block *b, void *p)
{
    return b->kind == BLOCK_SLAB && *block_mark(p) == b->pool->key;
}

/* Exact: p starts a live block of pool (any pool if NULL), found in *b. */
static bool block_lookup_raw(const struct mpool_pool *pool, const void *p, struct block *b)
{
    *b = block_find(p);
    return b->kind != BLOCK_NONE && (!pool || b->pool == pool) && block_is_start(b, p) &&
           !block_marked_free(b, (void *)p);
}

/* A debug pool's blocks hold debug blocks (debug.h): the program's pointers
 * are the debug layer's, which the hooks take before these paths, so a
 * pointer that reaches them and starts one of its blocks is no block of the
 * program (the start of a debug block's header, for one). */
static bool block_of_program(const struct block *b)
{
    return !b->pool || !b->pool->debug;
}

/* Exact: p starts a live block of pool (any pool if NULL) that the program
 * was given, found in *b. */
static bool block_lookup_live(const struct mpool_pool *pool, const void *p, struct block *b)
{
    return block_lookup_raw(pool, p, b) && block_of_program(b);
}

/* ---- Reporting ---------------------------------------------------------- */

static mpool_noinline void fail_invalid_pointer(const struct mpool_pool *pool, const char *who, const void *p)
{
    struct mpool_pool *to = (struct mpool_pool *)(pool ? pool : mpool_default());
    stat_atomic_inc(&to->stats.invalid_frees);
    error_raise(&to->policy, MPOOL_ERR_INVALID_POINTER, 0,
                "%s(%p): invalid pointer (foreign, interior, already freed or of another pool)", who, p);
}

static mpool_noinline void fail_double_free(const struct mpool_pool *pool, const char *who, const void *p)
{
    stat_atomic_inc(&((struct mpool_pool *)pool)->stats.invalid_frees);
    error_raise(&pool->policy, MPOOL_ERR_INVALID_POINTER, 0,
                "%s(%p): double free detected: the block is already free", who, p);
}

static mpool_noinline void fail_size_mismatch(const struct mpool_pool *pool, const char *who, const void *p,
                                              size_t size, size_t align, size_t usable)
{
    stat_atomic_inc(&((struct mpool_pool *)pool)->stats.invalid_frees);
    char al[40] = "";
    if (align)
        snprintf(al, sizeof al, ", alignment=%zu", align);
    error_raise(&pool->policy, MPOOL_ERR_INVALID_POINTER, 0,
                "%s(%p, size=%zu%s): size or alignment does not match the block (%zu usable bytes); not freed",
                who, p, size, al, usable);
}

/* Reports a failed allocation of size bytes; old is the block being resized (or NULL). */
static mpool_noinline void fail_status(const struct mpool_pool *pool, const char *who, const void *old,
                                       size_t size, enum buddy_status st)
{
    stat_atomic_inc(&((struct mpool_pool *)pool)->stats.failures);
    char ptr[40] = "";
    if (old)
        snprintf(ptr, sizeof ptr, "%p, ", old);
    if (st == BUDDY_FULL)
        error_raise(&pool->policy, MPOOL_ERR_POOL_FULL, 0, "%s(%ssize=%zu): pool full (max_size %zu bytes reached)",
                    who, ptr, size, pool->config.max_size);
    else
        error_raise(&pool->policy, MPOOL_ERR_OUT_OF_MEMORY, 0, "%s(%ssize=%zu): out of memory", who, ptr, size);
}

/* ---- Allocation --------------------------------------------------------- */

/* A block of class cls from the calling thread's heap. */
static void *slab_alloc(struct mpool_pool *pool, unsigned cls, enum buddy_status *st)
{
    struct heap *h = heap_of(pool);
    if (unlikely(h == NULL)) {
        *st = BUDDY_NOMEM;
        return NULL;
    }
    struct page *pg = h->current[cls];
    void *p = likely(slab_head_ok(pg, pg->free, h->key)) ? slab_pop(pg, h->link)
                                                                         : heap_alloc_refill(h, cls, st);
    if (p)
        stat_inc(&heap_stats(h)->other_allocs[cls]);
    return p;
}

/* One attempt at a block of size bytes (req after min_block) aligned to align,
 * routed as described at the top of this file. */
static void *alloc_route(struct mpool_pool *pool, size_t size, size_t req, size_t align, bool *fresh,
                         size_t *usable, enum buddy_status *st)
{
    *fresh = false;
    if (size == 0 && align <= ZERO_SLOT) { /* zero.h: a unique address that faults on access */
        *usable = 0;
        void *p = zero_alloc(pool);
        *st = p ? BUDDY_OK : BUDDY_NOMEM;
        return p;
    }
    if (size <= pool->max_block) {
        size_t rounded = align_up(req, align);
        if (align <= PAGE_SIZE && rounded <= SLAB_MAX) {
            unsigned cls = sizeclass_of(rounded);
            *usable = pool->cls[cls].block_size;
            return slab_alloc(pool, cls, st);
        }
        *usable = align_up(req, PAGE_SIZE);
        if (req <= BUDDY_MAX_RUN && align <= BUDDY_MAX_RUN)
            return large_alloc(pool, req, align, fresh, st);
    }
    *usable = align_up(req, PAGE_SIZE);
    return huge_alloc(pool, req, align, fresh, st);
}

/* Gives back what the pool holds without using it (empty slabs of the heaps
 * the caller may touch, cached large blocks, then regions without blocks), to
 * make room under max_size; true if anything was given back. */
static bool make_room(struct mpool_pool *pool)
{
    bool freed = heap_pool_trim(pool, NULL) > 0;
    freed |= large_cache_flush(pool) > 0;
    freed |= huge_cache_flush(pool) > 0;
    return buddy_release_empty(&pool->buddy, pool->thread_safe) > 0 || freed;
}

/* Serves any request; align is a power of two (0: the pool's alignment).
 * *zeroed (optional) tells if the block is known to read as zeros.  When
 * max_size stands in the way, make_room runs and the request is tried once
 * more.  Below the debug layer: debug.c wraps these blocks. */
void *alloc_plain(struct mpool_pool *pool, size_t size, size_t align, const char *who,
                  const void *old, bool *zeroed, size_t *usable)
{
    if (unlikely(size > MAX_REQUEST)) {
        fail_status(pool, who, old, size, BUDDY_NOMEM);
        return NULL;
    }
    if (align < pool->align)
        align = pool->align;
    size_t req = size < pool->min_block ? pool->min_block : size;
    enum buddy_status st = BUDDY_OK;
    bool fresh;
    void *p = alloc_route(pool, size, req, align, &fresh, usable, &st);
    if (unlikely(!p) && st == BUDDY_FULL && make_room(pool))
        p = alloc_route(pool, size, req, align, &fresh, usable, &st);
    if (unlikely(!p)) {
        fail_status(pool, who, old, size, st);
        return NULL;
    }
    if (fresh && pool->config.enable_statistics)
        stats_note_peaks(pool); /* memory fresh from the system (stats.c) */
    if (zeroed)
        *zeroed = fresh;
    return p;
}

/* alloc_plain, or the debug layer's block for a debug pool. */
static inline void *alloc_any(struct mpool_pool *pool, size_t size, size_t align, enum debug_form form,
                              const char *who, const void *old, bool *zeroed, size_t *usable)
{
    if (unlikely(pool->debug)) /* DEBUG HOOK (debug.h) */
        return debug_alloc(pool, size, align, form, who, old, zeroed, usable);
    return alloc_plain(pool, size, align, who, old, zeroed, usable);
}

/* alloc_any for an allocating call, counted (stats.h) in the calling
 * thread's heap, or by stats_count_call if it has none yet. */
static void *alloc_call(struct mpool_pool *pool, size_t size, size_t align, enum debug_form form, const char *who,
                        bool *zeroed)
{
    size_t usable;
    void *p = alloc_any(pool, size, align, form, who, NULL, zeroed, &usable);
    if (likely(p != NULL)) {
        struct heap *h = heap_mine(pool);
        if (likely(h != NULL))
            stats_heap_call(heap_stats(h), size, usable);
        else
            stats_count_call(pool, size, usable);
    }
    return p;
}

/* Every allocation alloc_slow does not finish. */
static mpool_noinline void *alloc_general(struct mpool_pool *pool, size_t size)
{
    return alloc_call(pool, size, 0, DEBUG_FORM_MALLOC, "mpool_alloc", NULL);
}

/* mpool_alloc when its inline part cannot serve: a pool whose heap it does
 * not reach, a class whose current slab is empty, sizes above SMALL_MAX (a
 * slab block up to SLAB_MAX still comes from the heap here, without the
 * general routing). */
/* alloc_slow's body (inlined into it and into alloc_timed). */
static mpool_always_inline void *alloc_slow_untimed(struct mpool_pool *pool, size_t size)
{
    if (unlikely(pool->debug || size > SLAB_MAX))
        return alloc_general(pool, size);
    unsigned cls = likely(size <= SMALL_MAX) ? pool->size_class[size] : slab_class_for(pool, size);
    struct heap *h = heap_mine(pool);
    if (unlikely(cls == CLASS_NONE || h == NULL))
        return alloc_general(pool, size);
    struct page *pg = h->current[cls];
    void *p;
    if (likely(slab_head_ok(pg, pg->free, h->key)) ||
        (slab_collect_local(pg) && likely(slab_head_ok(pg, pg->free, h->key)))) {
        p = slab_pop(pg, h->link);
    } else {
        enum buddy_status st;
        p = heap_alloc_refill(h, cls, &st);
        if (unlikely(p == NULL))
            return alloc_general(pool, size);
    }
    if (likely(size <= SMALL_MAX))
        stat_inc(&heap_stats(h)->requests[size]);
    else
        stats_count_medium(heap_stats(h), cls, size);
    return p;
}

/* The slab an allocation of size would pop inline (for timing's count of
 * inline allocations), or NULL if the pool has no inline path for it. */
static struct page *timing_slab(struct mpool_pool *pool, size_t size)
{
    if (size > SMALL_MAX || !(pool->tls_heap || (!pool->thread_safe && !pool->debug)))
        return NULL;
    struct heap *h = heap_mine(pool);
    return h ? h->current[pool->size_class[size]] : NULL;
}

/* alloc_slow for a pool that times calls (stats.h: timing). */
static mpool_noinline void *alloc_timed(struct mpool_pool *pool, size_t size)
{
    bool sample = stats_timing_begin(pool, true);
    uint64_t start = sample ? stats_now_ns() : 0;
    struct page *before = timing_slab(pool, size);
    bool had = before && before->free != NULL;
    void *p = alloc_slow_untimed(pool, size);
    struct page *after = timing_slab(pool, size);
    size_t installed = 0;
    if (after && after != &mpool_empty_slab && (after != before || !had)) { /* refilled */
        int64_t left = (int64_t)after->extent + after->current - after->used;
        installed = left > 0 ? (size_t)left : 0;
    }
    stats_timing_end(pool, true, sample, start, installed);
    return p;
}

static mpool_noinline void *alloc_slow(mpool_t *pool, size_t size)
{
    if (!pool)
        pool = pool_default();
    if (unlikely(pool->timing))
        return alloc_timed(pool, size);
    return alloc_slow_untimed(pool, size);
}

void *mpool_alloc(mpool_t *pool, size_t size)
{
    if (likely(pool != NULL && size <= SMALL_MAX)) {
        struct heap *h = pool->fast_heap;
        struct page *pg = h->current[pool->size_class[size]];
        if (likely(slab_head_ok(pg, pg->free, h->key))) {
            stat_inc(&heap_stats(h)->requests[size]);
            return slab_pop(pg, h->link);
        }
    }
    return alloc_slow(pool, size);
}

void *alloc_default_slow(size_t size)
{
    return alloc_slow(NULL, size);
}

void *alloc_new(size_t size, size_t align, enum debug_form form)
{
    struct mpool_pool *pool = mpool_default();
    if (unlikely(pool->debug) && (align == 0 || (is_pow2(align) && align <= MAX_REQUEST / 2))) /* DEBUG HOOK */
        return alloc_call(pool, size, align, form, form == DEBUG_FORM_NEW ? "operator new" : "operator new[]", NULL);
    return align ? mpool_alloc_aligned(NULL, size, align) : mpool_alloc(NULL, size);
}

void *mpool_alloc_aligned(mpool_t *pool, size_t size, size_t alignment)
{
    if (!pool)
        pool = mpool_default();
    if (unlikely(!is_pow2(alignment))) {
        stat_atomic_inc(&pool->stats.failures);
        error_raise(&pool->policy, MPOOL_ERR_INVALID_ALIGNMENT, 0,
                    "mpool_alloc_aligned(size=%zu, alignment=%zu): alignment must be a power of two",
                    size, alignment);
        return NULL;
    }
    if (unlikely(alignment > MAX_REQUEST / 2)) {
        stat_atomic_inc(&pool->stats.failures);
        error_raise(&pool->policy, MPOOL_ERR_OUT_OF_MEMORY, 0,
                    "mpool_alloc_aligned(size=%zu, alignment=%zu): no system can serve this alignment",
                    size, alignment);
        return NULL;
    }
    return alloc_call(pool, size, alignment, DEBUG_FORM_MALLOC, "mpool_alloc_aligned", NULL);
}

void *mpool_calloc(mpool_t *pool, size_t count, size_t size)
{
    if (!pool)
        pool = mpool_default();
    size_t total;
    if (unlikely(__builtin_mul_overflow(count, size, &total))) {
        stat_atomic_inc(&pool->stats.failures);
        error_raise(&pool->policy, MPOOL_ERR_INVALID_ARGUMENT, ENOMEM,
                    "mpool_calloc(count=%zu, size=%zu): count * size overflows", count, size);
        return NULL;
    }
    bool zeroed = false;
    void *p = alloc_call(pool, total, 0, DEBUG_FORM_MALLOC, "mpool_calloc", &zeroed);
    if (p && !zeroed)
        memset(p, 0, total);
    return p;
}

/* ---- Freeing ------------------------------------------------------------ */

enum free_result { FREED, NOT_A_BLOCK, ALREADY_FREE };

/* The free of live block p of slab pg of pool by a thread whose heap h
 * (NULL: none yet) does not own the slab: marks the block and pushes it on
 * the slab's thread_free list, and notifies the owner if the slab was
 * parked (slab.h). */
static void free_remote_push(struct mpool_pool *pool, struct page *pg, void *p, struct heap *h)
{
    __atomic_store_n(block_mark(p), pool->key, __ATOMIC_RELAXED); /* mpool_check may be counting marks */
    slab_asan_freed(pg, p);
    unsigned cls = pg->cls; /* read before the block is published */
    struct heap *notify = slab_free_remote(pg, p);
    stats_count_remote_free(pool, h, cls);
    if (notify)
        heap_notify(notify, pg);
}

/* The free of a block of another heap's slab, past the owner's inline test,
 * without free_general's search: true if done; false if p needs the
 * general path: not in a slab of one of our regions, of another pool than
 * pool (any pool if NULL), a debug pool's (or any debug pool exists: its
 * hook sees every pointer first), not where a block starts, a block of the
 * calling thread's own heap, or a block that carries the free mark.  The
 * same tests as free_general's, in the order that reads least: the heads
 * table leads to the slab's descriptor (a data page of a live slab, or a
 * descriptor whose heap is NULL), whose block test needs no more. */
static bool free_remote(const struct mpool_pool *pool, void *p)
{
    if (unlikely(!chunk_is_region(p)) || debug_any())
        return false;
    struct region *r = region_of(p);
    struct page *pg = region_head_of(r, p);
    struct heap *owner = __atomic_load_n(&pg->heap, __ATOMIC_ACQUIRE); /* non-NULL: a live slab's head */
    if (owner == NULL)
        return false;
    struct mpool_pool *bp = r->pool;
    if ((pool && bp != pool) || bp->debug || !slab_is_block_offset(pg, slab_offset(pg, p)))
        return false;
    struct heap *h = heap_mine(bp);
    if (owner == h || *block_mark(p) == bp->key)
        return false;
    free_remote_push(bp, pg, p, h);
    return true;
}

/* Frees slab block p of b (a block start).  A block carrying the free mark
 * is free, unless its owner (or anyone, on a pool that is not thread safe)
 * finds it on none of the slab's lists: then a live block's data held the
 * key by chance.  Others cannot read the owner's lists, and report it. */
static enum free_result free_slab_block(const struct block *b, void *p)
{
    struct mpool_pool *pool = b->pool;
    struct page *pg = b->pg;
    struct heap *h = heap_mine(pool);
    bool owner = h != NULL && __atomic_load_n(&pg->heap, __ATOMIC_ACQUIRE) == h;
    if (unlikely(*block_mark(p) == pool->key) && (!owner || slab_block_is_free(pg, p)))
        return ALREADY_FREE;
    if (unlikely(pool->debug) && pg->block_size > 2 * sizeof(uint64_t))
        memset((uint64_t *)p + 2, MPOOL_POISON_FREED, pg->block_size - 2 * sizeof(uint64_t));
    if (owner) {
        heap_free_local(h, pg, p);
        return FREED;
    }
    free_remote_push(pool, pg, p, h);
    return FREED;
}

/* Frees the block b found for p (a block start). */
static enum free_result free_block(const struct block *b, void *p)
{
    struct mpool_pool *pool = b->pool;
    switch (b->kind) {
    case BLOCK_SLAB:
        return free_slab_block(b, p);
    case BLOCK_LARGE:
        if (unlikely(pool->debug))
            memset(p, MPOOL_POISON_FREED, large_usable(b->pg));
        large_free(pool, b->pg);
        return FREED;
    case BLOCK_HUGE:
        huge_free(pool, b->h);
        return FREED;
    case BLOCK_ZERO:
        return zero_free(b->z, p) ? FREED : NOT_A_BLOCK;
    default:
        return NOT_A_BLOCK;
    }
}

/* Every free the inline paths do not finish: finds the block, checks it
 * belongs to pool (any pool if NULL) and starts there, frees it, and reports
 * anything that is not a live block. */
static mpool_noinline void free_general(mpool_t *pool, void *p, const char *who)
{
    if (!p)
        return;
    if (debug_any() && debug_free(pool, p, who, NULL) != DEBUG_NOT_MINE) /* DEBUG HOOK (debug.h) */
        return;
    struct block b = block_find(p);
    enum free_result r = NOT_A_BLOCK;
    if (b.kind != BLOCK_NONE && (!pool || b.pool == pool) && block_is_start(&b, p) && block_of_program(&b))
        r = free_block(&b, p);
    if (r == ALREADY_FREE)
        fail_double_free(b.pool, who, p);
    else if (r == NOT_A_BLOCK)
        fail_invalid_pointer(pool ? pool : b.pool, who, p);
}

static void free_slow_untimed(mpool_t *pool, void *p)
{
    if (pool && !pool->debug) {
        struct heap *h = heap_mine(pool);
        if (h && heap_free_mine(h, p))
            return;
    }
    if (free_remote(pool, p))
        return;
    free_general(pool, p, "mpool_free");
}

/* free_slow for a pool that times calls (stats.h: timing): the owner's free
 * first, as inline (the call may have been diverted from there), then the
 * rest. */
static mpool_noinline void free_timed(mpool_t *pool, struct mpool_pool *timed, void *p)
{
    bool sample = stats_timing_begin(timed, false);
    uint64_t start = sample ? stats_now_ns() : 0;
    struct heap *h = timed->debug ? NULL : heap_mine(timed);
    if (!h || !heap_free_mine(h, p))
        free_general(pool, p, "mpool_free");
    stats_timing_end(timed, false, sample, start, 0);
}

/* mpool_free when the pool's heap is not reached inline. */
static mpool_noinline void free_slow(mpool_t *pool, void *p)
{
    struct mpool_pool *timed = pool ? pool : pool_default();
    if (unlikely(timed->timing))
        free_timed(pool, timed, p);
    else
        free_slow_untimed(pool, p);
}

void mpool_free(mpool_t *pool, void *p)
{
    if (likely(pool != NULL) && likely(heap_free_mine(pool->fast_heap, p)))
        return;
    free_slow(pool, p);
}

void free_default_slow(void *p)
{
    free_slow(NULL, p);
}

void free_delete_slow(void *p, enum debug_form form, const char *who)
{
    if (debug_any()) { /* DEBUG HOOK (debug.h): debug mode knows the form */
        struct debug_release rel = {form, DEBUG_ANY, 0};
        if (debug_free(NULL, p, who, &rel) != DEBUG_NOT_MINE)
            return;
    }
    free_slow(NULL, p);
}

bool mpool_safe_free(mpool_t *pool, void *p)
{
    if (p && debug_any()) { /* DEBUG HOOK (debug.h) */
        enum debug_verdict v = debug_free(pool, p, "mpool_safe_free", NULL);
        if (v != DEBUG_NOT_MINE)
            return v == DEBUG_DONE;
    }
    struct block b = {BLOCK_NONE, NULL, NULL, NULL, NULL};
    if (!p || !block_lookup_live(pool, p, &b) || free_block(&b, p) != FREED) {
        fail_invalid_pointer(pool ? pool : b.pool, "mpool_safe_free", p);
        return false;
    }
    return true;
}

bool free_plain(struct mpool_pool *pool, void *p)
{
    struct block b;
    return block_lookup_raw(pool, p, &b) && free_block(&b, p) == FREED;
}

/* ---- Resizing ----------------------------------------------------------- */


static bool is_huge_size(const struct mpool_pool *pool, size_t size)
{
    size_t req = size < pool->min_block ? pool->min_block : size;
    return size > pool->max_block || req > BUDDY_MAX_RUN;
}

void *mpool_realloc(mpool_t *pool, void *p, size_t size)
{
    if (!p)
        return alloc_call(pool ? pool : mpool_default(), size, 0, DEBUG_FORM_MALLOC, "mpool_realloc", NULL);
    void *moved;
    if (debug_any() && debug_realloc(pool, p, size, &moved)) /* DEBUG HOOK (debug.h) */
        return moved;
    struct block b;
    if (!block_lookup_live(pool, p, &b)) {
        fail_invalid_pointer(pool ? pool : b.pool, "mpool_realloc", p);
        return NULL;
    }
    pool = b.pool;
    if (size == 0) {
        free_block(&b, p);
        return NULL;
    }
    if (unlikely(size > MAX_REQUEST)) {
        fail_status(pool, "mpool_realloc", p, size, BUDDY_NOMEM);
        return NULL;
    }
    size_t usable = block_usable(&b);
    switch (b.kind) {
    case BLOCK_SLAB: {
        if (slab_class_for(pool, size) == b.pg->cls) { /* within its class: sized frees stay exact */
            stats_count_realloc(pool, size, usable, false);
            return p;
        }
        break;
    }
    case BLOCK_LARGE:
        if (slab_class_for(pool, size) == CLASS_NONE && !is_huge_size(pool, size)) {
            if (size <= usable) {
                large_shrink(pool, b.pg, size);
                stats_count_realloc(pool, size, large_usable(b.pg), false);
                return p;
            }
            if (large_grow(pool, b.pg, size)) { /* the pages after it were free */
                if (unlikely(pool->debug))
                    memset((char *)p + usable, MPOOL_POISON_FRESH, size - usable);
                stats_count_realloc(pool, size, large_usable(b.pg), false);
                return p;
            }
        }
        break;
    case BLOCK_HUGE:
        if (is_huge_size(pool, size)) {
            enum buddy_status st;
            void *q = huge_resize(pool, b.h, size, &st);
            if (q || st == BUDDY_FULL) {
                if (!q)
                    fail_status(pool, "mpool_realloc", p, size, st);
                else
                    stats_count_realloc(pool, size, align_up(size, PAGE_SIZE), false);
                return q;
            }
        }
        break; /* moving the pages was refused (or the block changes kind): copy */
    default:
        break;
    }
    size_t got;
    void *q = alloc_any(pool, size, 0, DEBUG_FORM_MALLOC, "mpool_realloc", p, NULL, &got);
    if (!q)
        return NULL;
    memcpy(q, p, size < usable ? size : usable);
    free_block(&b, p);
    stats_count_realloc(pool, size, got, true);
    return q;
}

/* ---- Queries ------------------------------------------------------------ */

size_t mpool_usable_size(const mpool_t *pool, const void *p)
{
    struct block b;
    bool live;
    size_t size;
    if (p && debug_any() && debug_usable(pool, p, &live, &size)) /* DEBUG HOOK (debug.h) */
        return size;
    if (!p || !block_lookup_live(pool, p, &b))
        return 0;
    return block_usable(&b);
}

bool mpool_owns(const mpool_t *pool, const void *p)
{
    struct block b;
    bool live;
    size_t size;
    if (p && debug_any() && debug_usable(pool, p, &live, &size)) /* DEBUG HOOK (debug.h) */
        return live;
    return p && block_lookup_live(pool, p, &b);
}

size_t alloc_usable_size_checked(const void *p)
{
    bool live;
    size_t size;
    if (debug_any() && debug_usable(NULL, p, &live, &size)) { /* DEBUG HOOK (debug.h) */
        if (!live)
            fail_invalid_pointer(NULL, "malloc_usable_size", p);
        return size;
    }
    struct block b;
    if (block_lookup_live(NULL, p, &b))
        return block_usable(&b);
    fail_invalid_pointer(NULL, "malloc_usable_size", p);
    return 0;
}

/* True if block b (at p) is what a request of size bytes aligned to align
 * (0: the pool's) gets from its pool by alloc_route's rule: the same slab
 * class, or the same whole pages.  Resizing keeps it true (realloc keeps a
 * slab block only within its class; large and huge blocks are resized to
 * whole pages). */
static bool block_fits_request(const struct block *b, const void *p, size_t size, size_t align)
{
    const struct mpool_pool *pool = b->pool;
    if (((uintptr_t)p & (align - 1)) != 0 || align > MAX_REQUEST / 2)
        return false;
    if (size == ALLOC_SIZE_UNKNOWN)
        return true;
    if (size > MAX_REQUEST)
        return false;
    if (align < pool->align)
        align = pool->align;
    size_t req = size < pool->min_block ? pool->min_block : size;
    size_t rounded = align_up(req, align);
    bool slab = size <= pool->max_block && align <= PAGE_SIZE && rounded <= SLAB_MAX;
    if (b->kind == BLOCK_ZERO)
        return size == 0;
    if (b->kind == BLOCK_SLAB)
        return slab && sizeclass_of(rounded) == b->pg->cls;
    return !slab && align_up(req, PAGE_SIZE) == block_usable(b);
}

void alloc_free_sized(void *p, size_t size, size_t align, enum debug_form form, const char *who)
{
    if (!p)
        return;
    if (debug_any()) { /* DEBUG HOOK (debug.h): exact size, alignment and form */
        struct debug_release rel = {form, size == ALLOC_SIZE_UNKNOWN ? DEBUG_ANY : size, align};
        if (debug_free(NULL, p, who, &rel) != DEBUG_NOT_MINE)
            return;
    }
    struct block b = block_find(p);
    if (b.kind != BLOCK_NONE && block_is_start(&b, p) && !block_marked_free(&b, p) && block_of_program(&b) &&
        (align ? !is_pow2(align) || !block_fits_request(&b, p, size, align) : !block_fits_request(&b, p, size, 1))) {
        fail_size_mismatch(b.pool, who, p, size, align, block_usable(&b));
        return;
    }
    free_general(NULL, p, who);
}
