/*
 * alloc.c - the block functions of the public API: allocation, resizing,
 * freeing and queries of single blocks.
 *
 * Routing of a request of `size` bytes aligned to A = max(A, pool alignment):
 *   size <= max_block_size and round_up(size, A) <= 32 KiB, A <= 4 KiB -> slab
 *   size <= max_block_size and size <= 2 MiB                            -> large (page run)
 *   otherwise                                                           -> huge (own mapping)
 *
 * Fast paths: mpool_alloc and mpool_free on a pool that is neither thread
 * safe nor in debug mode pop and push a slab free list without locks.  The
 * free tries, in order: the pool's hot slab (a range compare proves the
 * pointer is the pool's, no lookup), its hot region (no chunk-map lookup),
 * then any region of the pool; everything else goes through the noinline
 * slow functions below, which take the class lock when the pool is thread
 * safe.
 *
 * Checking pointers: every other entry first finds the block with the chunk
 * map (a foreign pointer never gets dereferenced), then checks the owner pool.
 * mpool_free and mpool_realloc add cheap checks (block start, the slab's
 * most recently freed block); mpool_safe_free, mpool_owns, mpool_usable_size
 * and debug pools are exact (a slab block is also looked for on the free list).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "huge.h"
#include "large.h"
#include "pool.h"
#include "slab.h"
#include "tcache.h"

#define MAX_REQUEST ((size_t)PTRDIFF_MAX - 2 * REGION_SIZE) /* larger sizes cannot be served */
#define POISON_FREED 0xDF  /* debug: freed blocks */
#define POISON_FRESH 0xAB  /* debug: new blocks (not calloc) */

enum block_kind { BLOCK_NONE = 0, BLOCK_SLAB, BLOCK_LARGE, BLOCK_HUGE };

struct block {
    enum block_kind kind;
    struct mpool_pool *pool;
    struct page *pg;  /* SLAB, LARGE: head of the run */
    struct huge *h;   /* HUGE */
};

/* ---- Finding blocks ----------------------------------------------------- */

/* The block p points into, without trusting p (BLOCK_NONE if foreign). */
static struct block block_find(const void *p)
{
    struct block b = {BLOCK_NONE, NULL, NULL, NULL};
    struct region *r = region_find(p);
    if (r) {
        struct page *head = region_run_of(r, p);
        if (head) {
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
    }
    return b;
}

/* True if p is where a block starts (not inside one). */
static bool block_is_start(const struct block *b, const void *p)
{
    if (b->kind == BLOCK_SLAB) {
        return slab_offset_is_block(b->pg, (uint64_t)((const char *)p - (const char *)page_start(b->pg)));
    }
    if (b->kind == BLOCK_LARGE)
        return large_is_block(b->pg, p);
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

/* Exact: p starts a live block of pool (any pool if NULL), found in *b. */
static bool block_lookup_live(const struct mpool_pool *pool, const void *p, struct block *b)
{
    *b = block_find(p);
    if (b->kind == BLOCK_NONE || (pool && b->pool != pool) || !block_is_start(b, p))
        return false;
    if (b->kind != BLOCK_SLAB)
        return true;
    struct mpool_pool *owner = b->pool;
    struct sclass *c = &owner->cls[b->pg->cls];
    lock_take(&c->lock, owner->thread_safe);
    bool live = b->pg->kind == PAGE_SLAB && slab_block_is_live_locked(b->pg, p) &&
                !tcache_block_marked(owner, b->pg, p);
    lock_give(&c->lock, owner->thread_safe);
    return live;
}

/* The cheap double-free check of mpool_free: p is not the block freed last. */
static bool slab_not_last_freed(struct mpool_pool *pool, struct page *pg, const void *p)
{
    struct sclass *c = &pool->cls[pg->cls];
    lock_take(&c->lock, pool->thread_safe);
    bool ok = pg->free != p && !tcache_block_marked(pool, pg, p);
    lock_give(&c->lock, pool->thread_safe);
    return ok;
}

/* ---- Reporting ---------------------------------------------------------- */

static mpool_noinline void fail_invalid_pointer(const struct mpool_pool *pool, const char *who, const void *p)
{
    error_raise(pool ? &pool->policy : &mpool_default()->policy, MPOOL_ERR_INVALID_POINTER, 0,
                "%s(%p): invalid pointer (foreign, interior, already freed or of another pool)", who, p);
}

/* Reports a failed allocation of size bytes; old is the block being resized (or NULL). */
static mpool_noinline void fail_status(const struct mpool_pool *pool, const char *who, const void *old,
                                       size_t size, enum buddy_status st)
{
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

static void *slab_alloc(struct mpool_pool *pool, unsigned cls, enum buddy_status *st)
{
    if (pool->tcache) {
        struct tcache *tc = tcache_of(pool);
        if (likely(tc != NULL))
            return tcache_pop(pool, tc, cls, st);
    }
    struct sclass *c = &pool->cls[cls];
    lock_take(&c->lock, pool->thread_safe);
    void *p = slab_pop_locked(pool, cls, st);
    lock_give(&c->lock, pool->thread_safe);
    if (p)
        tcache_unmark(pool, cls, p);
    return p;
}

/* One attempt at a block of size bytes (req after min_block) aligned to align,
 * routed as described at the top of this file. */
static void *alloc_route(struct mpool_pool *pool, size_t size, size_t req, size_t align, bool *fresh,
                         enum buddy_status *st)
{
    *fresh = false;
    if (size <= pool->max_block) {
        size_t rounded = align_up(req, align);
        if (align <= PAGE_SIZE && rounded <= SLAB_MAX)
            return slab_alloc(pool, sizeclass_of(rounded), st);
        if (req <= BUDDY_MAX_RUN && align <= BUDDY_MAX_RUN)
            return large_alloc(pool, req, align, fresh, st);
    }
    *fresh = true;
    return huge_alloc(pool, req, align, st);
}

/* Gives back what the pool holds without using it (the empty slabs classes
 * keep, then regions without blocks), to make room under max_size; true if
 * anything was given back. */
static bool make_room(struct mpool_pool *pool)
{
    bool flushed = tcache_flush_mine(pool) > 0;
    flushed |= slab_flush_empty(pool) > 0;
    flushed |= large_cache_flush(pool) > 0;
    return buddy_release_empty(&pool->buddy, pool->thread_safe) > 0 || flushed;
}

/* Serves any request; align is a power of two (0: the pool's alignment).
 * *zeroed (optional) tells if the block is known to read as zeros.  When
 * max_size stands in the way, make_room runs and the request is tried once
 * more. */
static void *alloc_any(struct mpool_pool *pool, size_t size, size_t align, const char *who,
                       const void *old, bool *zeroed)
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
    void *p = alloc_route(pool, size, req, align, &fresh, &st);
    if (unlikely(!p) && st == BUDDY_FULL && make_room(pool))
        p = alloc_route(pool, size, req, align, &fresh, &st);
    if (unlikely(!p)) {
        fail_status(pool, who, old, size, st);
        return NULL;
    }
    if (zeroed)
        *zeroed = fresh;
    if (unlikely(pool->debug) && !fresh)
        memset(p, POISON_FRESH, size);
    return p;
}

/* The slab class of a request with the pool's alignment, or CLASS_NONE if it
 * is not served from a slab (alloc_route's rule). */
static inline unsigned slab_class_for(const struct mpool_pool *pool, size_t size)
{
    size_t req = size < pool->min_block ? pool->min_block : size;
    size_t rounded = align_up(req, pool->align);
    if (size > pool->max_block || pool->align > PAGE_SIZE || rounded > SLAB_MAX)
        return CLASS_NONE;
    return sizeclass_of(rounded);
}

/* Every allocation alloc_slow does not finish: refills, large and huge
 * blocks, debug pools, errors. */
static mpool_noinline void *alloc_general(struct mpool_pool *pool, size_t size)
{
    if (likely(!pool->debug && size <= MAX_REQUEST)) { /* the route alone; alloc_any handles the rest */
        size_t req = size < pool->min_block ? pool->min_block : size;
        bool fresh;
        enum buddy_status st;
        void *p = alloc_route(pool, size, req, pool->align, &fresh, &st);
        if (likely(p != NULL))
            return p;
    }
    return alloc_any(pool, size, 0, "mpool_alloc", NULL, NULL);
}

/* Wakes a thread waiting for lock l, just given back, then returns block, or
 * takes the general path if there is none (out of line: see alloc_slow). */
static mpool_noinline void *alloc_wake(struct mpool_pool *pool, size_t size, mpool_lock_t *l, void *block)
{
    lock_wake(l);
    return block ? block : alloc_general(pool, size);
}

/* mpool_alloc when its inline path cannot serve: every request of a
 * thread-safe pool, and the rest of an unlocked one.  The common case, a
 * small block from the current slab, takes the class lock with one
 * compare-and-swap and never waits here: a held lock, an empty slab, a debug
 * pool or anything that is not small goes to alloc_general, which does it all.
 * Every call out of this function is a tail call, so it saves no registers. */
static mpool_noinline void *alloc_slow(mpool_t *pool, size_t size)
{
    if (!pool)
        pool = pool_default();
    if (pool->tcache) { /* a missing cache or an empty list: made or refilled via slab_alloc */
        unsigned cls = size <= SMALL_MAX ? pool->small_class[(size + 7) >> 3] : slab_class_for(pool, size);
        if (unlikely(cls == CLASS_NONE))
            return alloc_general(pool, size);
        struct tcache *tc = tcache_mine(pool);
        if (unlikely(tc == NULL))
            return alloc_general(pool, size);
        void *block = tcache_take(pool, &tc->bin[cls]);
        if (unlikely(block == NULL))
            return alloc_general(pool, size); /* tcache_pop refills, or reports a broken list */
        return block;
    }
    unsigned cls = pool->debug || size > SMALL_MAX ? CLASS_NONE : pool->small_class[(size + 7) >> 3];
    if (unlikely(cls == CLASS_NONE))
        return alloc_general(pool, size);
    mpool_lock_t *l = &pool->cls[cls].lock;
    bool locking = pool->thread_safe;
    if (locking && !lock_try(l))
        return alloc_general(pool, size);
    struct page *pg = pool->current[cls];
    void *block = pg->free;
    if (likely(block != NULL)) {
        pg->free = *(void **)block; /* the current slab: nothing to count (slab.h) */
        tcache_unmark(pool, cls, block);
    }
    if (locking && unlikely(lock_give_waited(l)))
        return alloc_wake(pool, size, l, block);
    return likely(block != NULL) ? block : alloc_general(pool, size);
}

void *mpool_alloc(mpool_t *pool, size_t size)
{
    if (likely(pool != NULL && size <= SMALL_MAX)) {
        struct page *pg = pool->current[pool->fast_class[size]];
        void *block = pg->free;
        if (likely(block != NULL)) {
            pg->free = *(void **)block;
            return block;
        }
    }
    return alloc_slow(pool, size);
}

void *mpool_alloc_aligned(mpool_t *pool, size_t size, size_t alignment)
{
    if (!pool)
        pool = mpool_default();
    if (unlikely(!is_pow2(alignment))) {
        error_raise(&pool->policy, MPOOL_ERR_INVALID_ALIGNMENT, 0,
                    "mpool_alloc_aligned(size=%zu, alignment=%zu): alignment must be a power of two",
                    size, alignment);
        return NULL;
    }
    if (unlikely(alignment > MAX_REQUEST / 2)) {
        error_raise(&pool->policy, MPOOL_ERR_OUT_OF_MEMORY, 0,
                    "mpool_alloc_aligned(size=%zu, alignment=%zu): no system can serve this alignment",
                    size, alignment);
        return NULL;
    }
    return alloc_any(pool, size, alignment, "mpool_alloc_aligned", NULL, NULL);
}

void *mpool_calloc(mpool_t *pool, size_t count, size_t size)
{
    if (!pool)
        pool = mpool_default();
    size_t total;
    if (unlikely(__builtin_mul_overflow(count, size, &total))) {
        error_raise(&pool->policy, MPOOL_ERR_INVALID_ARGUMENT, ENOMEM,
                    "mpool_calloc(count=%zu, size=%zu): count * size overflows", count, size);
        return NULL;
    }
    bool zeroed = false;
    void *p = alloc_any(pool, total, 0, "mpool_calloc", NULL, &zeroed);
    if (p && !zeroed)
        memset(p, 0, total);
    return p;
}

/* ---- Freeing ------------------------------------------------------------ */

/* Frees a block found by block_find.  exact: p must be live (else the free
 * list head is the only freed block caught).  False, nothing changed, if p is
 * not a block that may be freed. */
static bool free_block(struct block *b, void *p, bool exact)
{
    struct mpool_pool *pool = b->pool;
    if (b->kind == BLOCK_SLAB) {
        struct page *pg = b->pg;
        if (pool->tcache) { /* every block freed is marked: a double free is one */
            if (tcache_block_marked(pool, pg, p))
                return false;
            struct tcache *tc = tcache_of(pool);
            if (tc && tcache_push(pool, tc, pg->cls, p))
                return true;
        }
        struct sclass *c = &pool->cls[pg->cls];
        lock_take(&c->lock, pool->thread_safe);
        if (pg->kind != PAGE_SLAB || !slab_may_push(pg, p) || tcache_block_marked(pool, pg, p) ||
            (exact && !slab_block_is_live_locked(pg, p))) {
            lock_give(&c->lock, pool->thread_safe);
            return false;
        }
        if (unlikely(pool->debug))
            memset(p, POISON_FREED, pg->block_size);
        if (pool->tcache && pg->block_size >= 2 * sizeof(uint64_t))
            ((uint64_t *)p)[1] = pool_slab_mark(pool);
        slab_push_locked(pool, pg, p);
        lock_give(&c->lock, pool->thread_safe);
        return true;
    }
    if (b->kind == BLOCK_LARGE) {
        if (unlikely(pool->debug))
            memset(p, POISON_FREED, large_usable(b->pg));
        large_free(pool, b->pg);
        return true;
    }
    huge_free(pool, b->h);
    return true;
}

/* Everything free_slow does not finish: large and huge blocks, debug pools,
 * a held class lock, NULL, and every pointer that is not a live block
 * (reported).  Blocks are found with block_find and freed by free_block,
 * which waits for locks. */
static mpool_noinline void free_general(mpool_t *pool, void *p)
{
    if (!p)
        return;
    struct block b = block_find(p);
    if (b.kind == BLOCK_NONE || (pool && b.pool != pool) || !block_is_start(&b, p) ||
        !free_block(&b, p, b.pool->debug))
        fail_invalid_pointer(pool ? pool : b.pool, "mpool_free", p);
}

/* free_slow's case of a run that is not a slab: a large block (its head
 * descriptor says LARGE only while it is allocated or cached, region.h) is
 * freed at once when p is its first byte, the block is not cached and the
 * pool agrees; everything else goes to free_general. */
static mpool_noinline void free_large(mpool_t *pool, void *p, struct mpool_pool *owner, struct page *pg)
{
    if (pg->kind == PAGE_LARGE && large_is_block(pg, p) && (!pool || pool == owner) && !owner->debug) {
        large_free(owner, pg);
        return;
    }
    free_general(pool, p);
}

/* Gives back the class lock l of a refused free (held when `locking`), then
 * lets free_general sort the pointer out. */
static mpool_noinline void free_refused(mpool_t *pool, void *p, mpool_lock_t *l, bool locking)
{
    lock_give(l, locking);
    free_general(pool, p);
}

/* After a push into slab pg that left it empty or had found it full: lists it
 * or gives it back, then gives back the class lock l (held when `locking`). */
static mpool_noinline void free_after_push(struct mpool_pool *owner, struct page *pg, mpool_lock_t *l,
                                           bool locking)
{
    slab_after_free_locked(owner, pg);
    lock_give(l, locking);
}

/* mpool_free when the inline path cannot take p: every free of a
 * thread-safe pool, and the rest of an unlocked one.  The common case, a
 * slab block, needs one lookup: the chunk map proves p is in one of our
 * regions before anything is read there; then the slab's descriptor, its
 * owner, and "p starts a block" (descriptor fields of a live slab's run, which
 * only change once the slab is empty).  Under the class lock, taken with one
 * compare-and-swap (a held lock goes to free_general, which waits): the run is
 * still a slab, p is not its last freed block, and a slab that is not current
 * has a live block.  Every call out of this function is a tail call, so it
 * saves no registers. */
static mpool_noinline void free_slow(mpool_t *pool, void *p)
{
    if (chunk_kind(p) != CHUNK_REGION)
        return free_general(pool, p);
    struct region *r = region_of(p);
    struct page *page = region_page_of(r, p);
    struct page *pg = page_head(page);
    struct mpool_pool *owner = r->pool;
    uint64_t off = ((uintptr_t)p & (PAGE_SIZE - 1)) + ((uint64_t)page->back << (PAGE_SHIFT - 6));
    if (unlikely(pg->kind != PAGE_SLAB))
        return free_large(pool, p, owner, pg);
    if ((pool && pool != owner) || !slab_offset_is_block(pg, off))
        return free_general(pool, p);
    if (owner->tcache) { /* a caching pool is not in debug mode */
        /* No cache yet, a full list, a class not cached, or p already on top
         * of the list (the common double free): free_general sorts it out
         * through free_block.  The block is written, not read (tcache.h). */
        struct tcache *tc = tcache_mine(owner);
        if (unlikely(tc == NULL))
            return free_general(pool, p);
        struct tcache_bin *b = &tc->bin[pg->cls];
        if (unlikely(b->count >= b->max || p == b->head))
            return free_general(pool, p);
        tcache_put(owner, b, p);
        return;
    }
    if (owner->debug)
        return free_general(pool, p);
    mpool_lock_t *l = &owner->cls[pg->cls].lock;
    bool locking = owner->thread_safe;
    if (locking && !lock_try(l))
        return free_general(pool, p);
    void *head = pg->free;
    if (unlikely(pg->kind != PAGE_SLAB || !slab_may_push(pg, p)))
        return free_refused(pool, p, l, locking);
    *(void **)p = head;
    pg->free = p;
    if (!(pg->flags & PG_CURRENT) && unlikely(--pg->used == 0 || head == NULL))
        return free_after_push(owner, pg, l, locking);
    if (locking && unlikely(lock_give_waited(l)))
        lock_wake(l);
}

/* The free fast path once p is known to lie in a region of the fast pool:
 * false if p needs the slow path.  A non-zero used means the descriptor heads
 * a live slab (region.h); a NULL head means the slab was full; p == head is
 * the common double free; p must be where a block starts (an interior pointer
 * would corrupt the free list); and a slab that is not current must keep a
 * live block (used > 1), since an empty one goes back to the page allocator. */
static inline bool free_fast_in_region(struct region *r, void *p)
{
    struct page *page = region_page_of(r, p);
    uint64_t back = page->back;
    struct page *pg = page_head(page);
    void *head = pg->free;
    uint64_t off = ((uintptr_t)p & (PAGE_SIZE - 1)) + (back << (PAGE_SHIFT - 6)); /* from the slab start */
    if (unlikely(pg->used == 0 || head == NULL || p == head || !slab_offset_is_block(pg, off)))
        return false;
    if (!(pg->flags & PG_CURRENT)) {
        if (unlikely(pg->used == 1))
            return false;
        pg->used--;
    }
    *(void **)p = head;
    pg->free = p;
    return true;
}

/* Every free the hot region does not take.  A fast pool's slab block in
 * another of its regions still goes lock-free (the chunk map proves p is in a
 * region before the region is read); everything else, and every free on a
 * thread-safe pool, goes through free_slow. */
static mpool_noinline void free_other_region(mpool_t *pool, void *p)
{
    if (pool && pool->fast && chunk_kind(p) == CHUNK_REGION) {
        struct region *r = region_of(p);
        if (r->fast_owner == pool && free_fast_in_region(r, p))
            return;
    }
    free_slow(pool, p);
}

/* A fast pool's free in the hot region but not the hot slab. */
static mpool_noinline void free_hot_region(mpool_t *pool, void *p)
{
    struct region *r = region_of(p);
    if (r == pool->hot_region && free_fast_in_region(r, p))
        return;
    free_other_region(pool, p);
}

/* The fast path: p lies in the pool's hot slab and starts a block there (one
 * multiplication, one rotation and one compare, slab_set_hot in slab.h: so p
 * is ours and needs no lookup), and p is not the block freed last.  The hot
 * slab is a current slab, which counts nothing (slab.h), so the push is all
 * there is to do. */
void mpool_free(mpool_t *pool, void *p)
{
    if (likely(pool != NULL)) {
        struct page *pg = pool->hot_slab;
        uint64_t off = (uintptr_t)p - pool->hot_start;
        void *head = pg->free;
        if (likely(slab_index_rotate(off * pool->hot_inverse, pool->hot_shift) < pool->hot_count && p != head)) {
            *(void **)p = head;
            pg->free = p;
            return;
        }
        free_hot_region(pool, p);
        return;
    }
    free_slow(pool, p);
}

void *alloc_default(size_t size)
{
    return alloc_slow(pool_default(), size);
}

void free_default(void *p)
{
    free_slow(NULL, p);
}

bool mpool_safe_free(mpool_t *pool, void *p)
{
    struct block b = {BLOCK_NONE, NULL, NULL, NULL};
    if (!p || !block_lookup_live(pool, p, &b) || !free_block(&b, p, true)) {
        fail_invalid_pointer(pool ? pool : b.pool, "mpool_safe_free", p);
        return false;
    }
    return true;
}

/* ---- Resizing ----------------------------------------------------------- */

/* The usable size a fresh allocation of size bytes would get from a slab, or
 * 0 if it would not come from a slab. */
static size_t slab_usable_for(const struct mpool_pool *pool, size_t size)
{
    unsigned cls = slab_class_for(pool, size);
    return cls == CLASS_NONE ? 0 : sizeclass_size(cls);
}

static bool is_huge_size(const struct mpool_pool *pool, size_t size)
{
    size_t req = size < pool->min_block ? pool->min_block : size;
    return size > pool->max_block || req > BUDDY_MAX_RUN;
}

void *mpool_realloc(mpool_t *pool, void *p, size_t size)
{
    if (!p)
        return alloc_any(pool ? pool : mpool_default(), size, 0, "mpool_realloc", NULL, NULL);
    struct block b = block_find(p);
    bool ok = b.kind != BLOCK_NONE && (!pool || b.pool == pool) && block_is_start(&b, p);
    if (ok && b.pool->debug)
        ok = block_lookup_live(pool, p, &b);
    else if (ok && b.kind == BLOCK_SLAB)
        ok = slab_not_last_freed(b.pool, b.pg, p);
    if (!ok) {
        fail_invalid_pointer(pool ? pool : b.pool, "mpool_realloc", p);
        return NULL;
    }
    pool = b.pool;
    if (size == 0) {
        free_block(&b, p, false);
        return NULL;
    }
    if (unlikely(size > MAX_REQUEST)) {
        fail_status(pool, "mpool_realloc", p, size, BUDDY_NOMEM);
        return NULL;
    }
    size_t usable = block_usable(&b);
    switch (b.kind) {
    case BLOCK_SLAB: {
        size_t want = slab_usable_for(pool, size);
        if (size <= usable && want && usable <= 2 * want)
            return p;
        break;
    }
    case BLOCK_LARGE:
        if (size <= usable && !slab_usable_for(pool, size) && !is_huge_size(pool, size)) {
            large_shrink(pool, b.pg, size);
            return p;
        }
        break;
    case BLOCK_HUGE:
        if (is_huge_size(pool, size)) {
            enum buddy_status st;
            void *q = huge_resize(pool, b.h, size, &st);
            if (q || st == BUDDY_FULL) {
                if (!q)
                    fail_status(pool, "mpool_realloc", p, size, st);
                return q;
            }
        }
        break; /* moving the pages was refused (or the block changes kind): copy */
    default:
        break;
    }
    void *q = alloc_any(pool, size, 0, "mpool_realloc", p, NULL);
    if (!q)
        return NULL;
    memcpy(q, p, size < usable ? size : usable);
    free_block(&b, p, false);
    return q;
}

/* ---- Queries ------------------------------------------------------------ */

size_t mpool_usable_size(const mpool_t *pool, const void *p)
{
    struct block b;
    if (!p || !block_lookup_live(pool, p, &b))
        return 0;
    return block_usable(&b);
}

bool mpool_owns(const mpool_t *pool, const void *p)
{
    struct block b;
    return p && block_lookup_live(pool, p, &b);
}

size_t alloc_usable_size_fast(const void *p)
{
    struct block b = block_find(p);
    return b.kind != BLOCK_NONE && block_is_start(&b, p) ? block_usable(&b) : 0;
}
