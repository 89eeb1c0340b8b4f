/*
 * heap.c - heaps (rules in heap.h): refilling a class, settling a slab after
 * its owner's free, notified slabs, and the registry of heaps: attaching a
 * thread, its exit, and what whole pools do to their heaps (trim, reset,
 * destroy, mode switches, checks, fork).
 *
 * Invariants (heap_check)
 *   Every slab of the heap has page->heap == the heap and is in exactly one
 *   place: current[cls] (no flag), queue[cls] (PG_QUEUED; queue_last[cls]
 *   is its last slab), full (PG_FULL, also on remote_full once notified)
 *   or spare[cls] (PG_SPARE, used == 0); a parked slab that is not
 *   notified has SLAB_NOTIFY set; spare_pages is the sum of the spares'
 *   pages, at most HEAP_SPARE_PAGES.
 */
#include "heap.h"

#include <pthread.h>
#include <string.h>

#include "list.h"
#include "prim.h"
#include "slab.h"

struct page mpool_empty_slab; /* free == NULL and heap == NULL: every fast path falls through */

#define EMPTY_SLABS_INIT { [0 ... CLASS_COUNT] = &mpool_empty_slab }
struct heap mpool_heap_empty = {.current = EMPTY_SLABS_INIT};

_Thread_local struct heap *mpool_default_heap __attribute__((tls_model("initial-exec"))) = &mpool_heap_empty;
_Thread_local struct heap_thread mpool_heap_thread __attribute__((tls_model("initial-exec")));

/* The calling thread's default heap while its inline paths are diverted to
 * the slow halves for a timing sample (heap_divert_default), else NULL. */
static _Thread_local struct heap *diverted_heap __attribute__((tls_model("initial-exec")));

static mpool_lock_t heaps_lock;    /* every pool's list of heaps and their owners; zero: free */
static uint64_t next_pool_id = 1;  /* atomic */
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static bool exit_key_ok;

uint64_t heap_next_pool_id(void)
{
    return __atomic_fetch_add(&next_pool_id, 1, __ATOMIC_RELAXED);
}

/* splitmix64's finaliser. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t heap_new_key(const void *salt)
{
    static uint64_t counter; /* atomic */
    uint64_t seed = (uint64_t)prim_clock_ms() ^ ((uint64_t)(uintptr_t)salt << 17) ^ (uintptr_t)&seed ^
                    __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 0x9e3779b97f4a7c15ULL;
    const unsigned char *random = prim_random_bytes();
    if (random) {
        uint64_t r;
        memcpy(&r, random, sizeof r);
        seed ^= r;
    }
    return mix64(mix64(seed)) | (1ULL << 63); /* never 0 (a live block's mark) nor small */
}

static size_t heap_bytes(void) { return align_up(HEAP_STATS_OFFSET + sizeof(struct heap_stats), PAGE_SIZE); }

/* ---- One heap's slabs --------------------------------------------------- */

static void queue_push(struct heap *h, struct page *pg)
{
    pg->flags = PG_QUEUED;
    if (!h->queue[pg->cls])
        h->queue_last[pg->cls] = pg;
    LIST_PUSH(h->queue[pg->cls], pg, next, prev);
}

static void queue_remove(struct heap *h, struct page *pg)
{
    if (h->queue_last[pg->cls] == pg)
        h->queue_last[pg->cls] = pg->prev;
    LIST_REMOVE(h->queue[pg->cls], pg, next, prev);
    pg->flags = 0;
}

static void full_push(struct heap *h, struct page *pg)
{
    pg->flags = PG_FULL;
    LIST_PUSH(h->full, pg, next, prev);
}

static void full_remove(struct heap *h, struct page *pg)
{
    LIST_REMOVE(h->full, pg, next, prev);
    pg->flags = 0;
}

/* Gives an empty slab (on no list, not current) back to the page allocator. */
static void slab_release(struct heap *h, struct page *pg)
{
    struct mpool_pool *pool = h->pool;
    stat_add(&heap_stats(h)->class_capacity[pg->cls], -(uint64_t)pg->capacity);
    slab_unrelease(pg, 0); /* its released pages are inner pages again */
    __atomic_store_n(&pg->heap, NULL, __ATOMIC_RELAXED);
    pg->free = pg->local_free = NULL;
    pg->flags = 0;
    buddy_free(&pool->buddy, pg, pool->thread_safe);
}

/* Keeps pg, an empty slab on no list and not current whose marks
 * slab_verify_empty confirmed (leaving thread_free locked), as its class's
 * spare;
 * false if the class has one or the heap's spares would pass
 * HEAP_SPARE_PAGES. */
static bool spare_keep(struct heap *h, struct page *pg)
{
    if (h->spare[pg->cls] || h->spare_pages + pg->npages > HEAP_SPARE_PAGES)
        return false;
    __atomic_store_n(&pg->thread_free, 0, __ATOMIC_RELEASE); /* slab_verify_empty left it locked */
    pg->flags = PG_SPARE;
    h->spare[pg->cls] = pg;
    h->spare_pages += pg->npages;
    return true;
}

/* Takes the spare slab of class cls off h (NULL if none). */
static struct page *spare_take(struct heap *h, unsigned cls)
{
    struct page *pg = h->spare[cls];
    if (pg) {
        h->spare[cls] = NULL;
        h->spare_pages -= pg->npages;
        pg->flags = 0;
    }
    return pg;
}

void heap_notify(struct heap *h, struct page *pg)
{
    struct page *top = __atomic_load_n(&h->remote_full, __ATOMIC_RELAXED);
    do
        pg->remote_next = top;
    while (!__atomic_compare_exchange_n(&h->remote_full, &top, pg, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/* Queues again every parked slab that a remote free notified. */
static void heap_take_notified(struct heap *h)
{
    if (!__atomic_load_n(&h->remote_full, __ATOMIC_RELAXED))
        return;
    struct page *pg = __atomic_exchange_n(&h->remote_full, NULL, __ATOMIC_ACQUIRE);
    while (pg) {
        struct page *next = pg->remote_next;
        pg->remote_next = NULL;
        mpool_assert_internal(pg->flags & PG_FULL, "a notified slab is parked");
        full_remove(h, pg);
        slab_end_parking(pg);
        queue_push(h, pg);
        pg = next;
    }
}

/* Reports a double free its owner's inline free let through, found when the
 * slab's lists were rebuilt (slab.h): block was handed out again while on a
 * list (how: "found by a later allocation"), or found twice on the lists of
 * a slab whose count said empty. */
static mpool_noinline void heap_report_double_free(const struct mpool_pool *pool, const void *block,
                                                   const char *how)
{
    error_raise(&pool->policy, MPOOL_ERR_INVALID_POINTER, 0,
                "mpool_free(%p): double free detected: the block was freed twice (%s; the slab's lists "
                "were rebuilt)", block, how);
}

#define FOUND_BY_ALLOCATION "found by a later allocation"
#define FOUND_AT_EMPTY "found when its slab emptied"

/* A head without the mark: a block freed twice and handed out since, or, if
 * it is no block of a slab at all, a link that was overwritten (slab.h:
 * links). */
static mpool_noinline void heap_report_bad_head(const struct mpool_pool *pool, const void *head)
{
    const struct page *pg = chunk_is_region(head) ? region_head_of(region_of(head), head) : NULL;
    if (pg && pg->kind == PAGE_SLAB && pg->heap && slab_is_block_offset(pg, slab_offset(pg, head)))
        heap_report_double_free(pool, head, FOUND_BY_ALLOCATION);
    else
        error_raise(&pool->policy, MPOOL_ERR_INVALID_POINTER, 0,
                    "free list corrupted: a freed block's link was overwritten (it led to %p, not a block; "
                    "the slab's lists were rebuilt)", head);
}

/* True if pg has a block to hand out: the head of its free list, else what a
 * collect brings.  A head that lacks the mark (a block its owner freed twice
 * and that was handed out since) makes the owner rebuild the lists from the
 * marks and note the block in *bad. */
static bool heap_slab_ready(struct heap *h, struct page *pg, void **bad)
{
    if (!pg->free && !slab_collect(pg) && !slab_carve(pg, h->key))
        return false; /* pg->free non-NULL: a block, or a corrupted link (slab_head_ok) */
    if (likely(slab_head_ok(pg, pg->free, h->key)))
        return true;
    if (!*bad)
        *bad = pg->free;
    slab_rebuild(pg, h->key);
    return pg->free != NULL; /* built from the marks: its head carries one */
}

/* pg (not current, on no list) has a block to hand out: true; else it is
 * parked (a remote free arriving meanwhile makes parking fail: collect again). */
static bool heap_ready_or_park(struct heap *h, struct page *pg, void **bad)
{
    for (;;) {
        if (heap_slab_ready(h, pg, bad))
            return true;
        if (slab_park(pg)) {
            full_push(h, pg);
            return false;
        }
    }
}

/* Makes pg, a slab whose free list has a marked head, the current slab of
 * its class, and pops a block. */
static void *heap_use(struct heap *h, struct page *pg)
{
    slab_set_current(pg, true);
    h->current[pg->cls] = pg;
    return slab_pop(pg, h->link);
}

/* The class's current slab stops being current (slab.h: its hold of used). */
static struct page *heap_unuse(struct heap *h, unsigned cls)
{
    struct page *pg = h->current[cls];
    h->current[cls] = &mpool_empty_slab;
    slab_set_current(pg, false);
    return pg;
}

static void *heap_refill(struct heap *h, unsigned cls, enum buddy_status *status, void **bad)
{
    struct mpool_pool *pool = h->pool;
    struct page *pg = h->current[cls];
    if (pg != &mpool_empty_slab) {
        if (heap_slab_ready(h, pg, bad))
            return slab_pop(pg, h->link);
        heap_unuse(h, cls);
        if (heap_ready_or_park(h, pg, bad))
            return heap_use(h, pg);
    }
    heap_take_notified(h);
    while ((pg = h->queue_last[cls]) != NULL) {
        queue_remove(h, pg);
        if (heap_ready_or_park(h, pg, bad))
            return heap_use(h, pg);
    }
    if ((pg = spare_take(h, cls)) != NULL && heap_ready_or_park(h, pg, bad))
        return heap_use(h, pg);
    const struct sclass *c = &pool->cls[cls];
    struct run_request req = {c->slab_pages, 0, PAGE_SLAB, (uint8_t)cls, (uint32_t)c->block_size};
    bool dirty;
    pg = buddy_alloc(&pool->buddy, &req, pool->thread_safe, &dirty, status);
    if (!pg)
        return NULL;
    slab_format(pg, h, c->block_size, h->key, h->link);
    stat_add(&heap_stats(h)->class_capacity[cls], pg->capacity);
    if (pool->config.enable_statistics)
        stats_note_peaks(pool);
    return heap_use(h, pg);
}

void *heap_alloc_refill(struct heap *h, unsigned cls, enum buddy_status *status)
{
    if (cls == CLASS_NONE || !h->pool) {
        *status = BUDDY_NOMEM;
        return NULL;
    }
    void *bad = NULL;
    void *block = heap_refill(h, cls, status, &bad);
    if (unlikely(bad != NULL))
        heap_report_bad_head(h->pool, bad);
    return block;
}

/* The block a double free put on pg's lists twice (or the slab's start if
 * none is found there), noted in *doubled, before the lists are rebuilt. */
static void heap_rebuild_doubled(struct heap *h, struct page *pg, const void **doubled)
{
    const void *block = slab_find_repeat(pg);
    *doubled = block ? block : pg->start;
    slab_rebuild(pg, h->key);
}

/* Gives pg (not current; queued or on no list) back to the page allocator,
 * or if keep, keeps it as its class's spare when there is room
 * (spare_keep), if every block is free, which its marks must confirm
 * (slab.h); a count that says empty against the marks is a double free: the
 * lists are rebuilt and the block noted in *doubled.  True if it left the
 * queue (released or kept). */
static bool heap_retire_empty(struct heap *h, struct page *pg, bool keep, const void **doubled)
{
    if (!slab_verify_empty(pg, h->key)) {
        heap_rebuild_doubled(h, pg, doubled);
        if (slab_live(pg) != 0)
            return false;
    }
    if (pg->flags & PG_QUEUED)
        queue_remove(h, pg);
    if (!keep || !spare_keep(h, pg))
        slab_release(h, pg);
    return true;
}

/* heap_retire_empty without keeping: true if released. */
static bool heap_release_empty(struct heap *h, struct page *pg, const void **doubled)
{
    return heap_retire_empty(h, pg, false, doubled);
}

void heap_free_settle(struct heap *h, struct page *pg)
{
    if (pg->flags & PG_FULL) {
        /* An eighth of a parked slab is free (slab.h): it goes back on the
         * queue, unless a remote free took the notification: the slab then
         * comes through remote_full. */
        if (!slab_unpark(pg))
            return;
        full_remove(h, pg);
        queue_push(h, pg);
        if (pg->used > 0)
            return;
    }
    const void *doubled = NULL;
    if (pg->used == 0 && !pg->current) {
        heap_retire_empty(h, pg, true, &doubled);
    } else { /* below 0, or a current slab at 0: the owner freed a block twice */
        heap_rebuild_doubled(h, pg, &doubled);
        if (slab_live(pg) == 0 && !pg->current)
            heap_retire_empty(h, pg, true, &doubled);
    }
    if (unlikely(doubled != NULL))
        heap_report_double_free(h->pool, doubled, FOUND_AT_EMPTY); /* last: the logger may call into the pool */
}

/* Collects every slab of h that is not parked and releases the empty ones
 * (current slabs and spares too); returns how many went back, and notes in *doubled a
 * count contradicted the marks (a double free: reported by the caller, after
 * heaps_lock, since the logger may call into the pool).  With decommitted
 * (mpool_trim), the slabs that stay also give back the pages that hold only
 * free blocks (slab_trim), counted there in bytes.  The owner, or
 * nobody runs h. */
static size_t heap_collect(struct heap *h, const void **doubled, size_t *decommitted)
{
    size_t released = 0;
    bool decommit = decommitted && !h->pool->debug; /* a debug pool checks its freed blocks' poison */
    heap_take_notified(h);
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        struct page *cur = h->current[cls];
        if (cur != &mpool_empty_slab) {
            slab_collect_remote(cur);
            if (slab_live(cur) == 0) {
                heap_unuse(h, cls);
                if (heap_release_empty(h, cur, doubled))
                    released++;
                else
                    queue_push(h, cur);
            } else if (decommit) {
                *decommitted += slab_trim(cur);
            }
        }
        struct page *pg = h->queue[cls];
        while (pg) {
            struct page *next = pg->next;
            slab_collect_remote(pg);
            if (pg->used == 0 && heap_release_empty(h, pg, doubled))
                released++;
            else if (decommit)
                *decommitted += slab_trim(pg);
            pg = next;
        }
        if ((pg = spare_take(h, cls)) != NULL) {
            if (heap_release_empty(h, pg, doubled))
                released++;
            else
                queue_push(h, pg);
        }
    }
    return released;
}

/* Forgets every slab of h (its pool is being reset). */
static void heap_forget(struct heap *h)
{
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        h->current[cls] = &mpool_empty_slab;
        h->queue[cls] = h->queue_last[cls] = NULL;
        h->spare[cls] = NULL;
    }
    h->spare_pages = 0;
    h->full = NULL;
    __atomic_store_n(&h->remote_full, NULL, __ATOMIC_RELAXED);
}

/* Takes every slab off h (current, queue, full and notified), each with all
 * its lists collected and its notification bit cleared, and hands it to fn.
 * Only on a quiet pool. */
static void heap_drain(struct heap *h, void (*fn)(struct page *pg, void *arg), void *arg)
{
    struct page *all = NULL;
    __atomic_store_n(&h->remote_full, NULL, __ATOMIC_RELAXED);
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        if (h->current[cls] != &mpool_empty_slab) {
            struct page *pg = heap_unuse(h, cls);
            pg->next = all;
            all = pg;
        }
        while (h->queue[cls]) {
            struct page *pg = h->queue[cls];
            queue_remove(h, pg);
            pg->next = all;
            all = pg;
        }
        struct page *spare = spare_take(h, cls);
        if (spare) {
            spare->next = all;
            all = spare;
        }
    }
    while (h->full) {
        struct page *pg = h->full;
        full_remove(h, pg);
        pg->next = all;
        all = pg;
    }
    while (all) {
        struct page *pg = all;
        all = pg->next;
        pg->next = pg->prev = pg->remote_next = NULL;
        pg->flags = 0;
        slab_end_parking(pg);
        slab_collect_remote(pg);
        fn(pg, arg);
    }
}

/* ---- The registry ------------------------------------------------------- */

/* A new heap for pool (owned by nobody, listed); caller holds heaps_lock. */
static struct heap *heap_new_locked(struct mpool_pool *pool)
{
    struct heap *h = prim_map(heap_bytes(), PAGE_SIZE, 0);
    if (!h)
        return NULL;
    for (unsigned cls = 0; cls <= CLASS_COUNT; cls++)
        h->current[cls] = &mpool_empty_slab;
    h->pool = pool;
    h->key = pool->key;
    h->link = pool->link;
    /* Published last, with its next already set: statistics walk the list
     * without heaps_lock (heaps leave it only when the pool is destroyed). */
    h->next = pool->heaps;
    h->prev = NULL;
    if (h->next)
        h->next->prev = h;
    __atomic_store_n(&pool->heaps, h, __ATOMIC_RELEASE);
    return h;
}

static void heap_unmap(struct heap *h)
{
    (void)prim_unmap(h, heap_bytes()); /* refused: the page stays behind, unused */
}

/* A double free found while heaps_lock was held, reported after it. */
struct found {
    struct mpool_pool *pool;
    const void *block; /* NULL: none found */
};

static void report_found(const struct found *f)
{
    if (f->block)
        heap_report_double_free(f->pool, f->block, FOUND_AT_EMPTY);
}

/* The calling thread stops using h: an orphan is unmapped; otherwise, if the
 * pool is thread safe (no other thread may be using the heap), its empty
 * slabs go back, and it becomes ownerless.  Caller holds heaps_lock; a
 * double free found is noted in *found. */
static void heap_abandon_locked(struct heap *h, struct found *found)
{
    if (!h->pool) {
        heap_unmap(h);
        return;
    }
    const void *doubled = NULL;
    if (h->pool->thread_safe)
        heap_collect(h, &doubled, NULL);
    if (doubled && !found->block)
        *found = (struct found){h->pool, doubled};
    h->owner = NULL;
}

/* Puts h in t's slot for pool, abandoning the heap that was there. */
static void heap_slot_set_locked(struct heap_thread *t, const struct mpool_pool *pool, struct heap *h,
                                 struct found *found)
{
    unsigned slot = (unsigned)(pool->id % HEAP_SLOTS);
    if (t->heap[slot])
        heap_abandon_locked(t->heap[slot], found);
    t->id[slot] = pool->id;
    t->heap[slot] = h;
}

void heap_divert_default(void)
{
    struct heap *h = mpool_default_heap;
    if (h != &mpool_heap_empty && !diverted_heap) {
        diverted_heap = h;
        mpool_default_heap = &mpool_heap_empty;
    }
}

void heap_undivert_default(void)
{
    if (diverted_heap) {
        mpool_default_heap = diverted_heap;
        diverted_heap = NULL;
    }
}

static void thread_exit(void *arg)
{
    struct heap_thread *t = arg;
    struct found found = {NULL, NULL};
    heap_undivert_default();
    lock_take(&heaps_lock, true);
    struct heap *d = mpool_default_heap;
    if (d != &mpool_heap_empty)
        heap_abandon_locked(d, &found);
    mpool_default_heap = &mpool_heap_empty;
    for (unsigned i = 0; i < HEAP_SLOTS; i++) {
        if (t->heap[i])
            heap_abandon_locked(t->heap[i], &found);
        t->heap[i] = NULL;
        t->id[i] = 0;
    }
    t->registered = false;
    lock_give(&heaps_lock, true);
    report_found(&found);
}

static void make_exit_key(void)
{
    exit_key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
}

struct heap *heap_attach(struct mpool_pool *pool)
{
    struct heap_thread *t = &mpool_heap_thread;
    if (!t->registered) { /* the destructor runs again if a heap is attached during it */
        pthread_once(&exit_once, make_exit_key);
        t->registered = exit_key_ok && pthread_setspecific(exit_key, t) == 0;
    }
    if (pool->tls_heap && diverted_heap) { /* a slow path while diverted: the heap is still ours */
        heap_undivert_default();
        return mpool_default_heap;
    }
    struct found found = {NULL, NULL};
    lock_take(&heaps_lock, true);
    struct heap *h = pool->heaps;
    while (h && h->owner)
        h = h->next;
    if (!h)
        h = heap_new_locked(pool);
    if (h) {
        h->owner = t;
        if (pool->tls_heap)
            mpool_default_heap = h;
        else
            heap_slot_set_locked(t, pool, h, &found);
    }
    lock_give(&heaps_lock, true);
    report_found(&found);
    return h;
}

/* ---- Whole pools -------------------------------------------------------- */

bool heap_pool_init(struct mpool_pool *pool)
{
    pool->id = heap_next_pool_id();
    pool->heaps = NULL;
    lock_take(&heaps_lock, true);
    pool->heap0 = heap_new_locked(pool);
    lock_give(&heaps_lock, true);
    return pool->heap0 != NULL;
}

size_t heap_pool_trim(struct mpool_pool *pool, size_t *decommitted)
{
    size_t released = 0;
    struct found found = {pool, NULL};
    lock_take(&heaps_lock, true);
    struct heap *mine = heap_mine(pool);
    for (struct heap *h = pool->heaps; h; h = h->next)
        if (!pool->thread_safe || h == mine || !h->owner)
            released += heap_collect(h, &found.block, decommitted);
    lock_give(&heaps_lock, true);
    report_found(&found);
    return released;
}

void heap_pool_reset(struct mpool_pool *pool)
{
    lock_take(&heaps_lock, true);
    for (struct heap *h = pool->heaps; h; h = h->next)
        heap_forget(h);
    lock_give(&heaps_lock, true);
}

void heap_pool_destroy(struct mpool_pool *pool)
{
    lock_take(&heaps_lock, true);
    struct heap *h = pool->heaps;
    while (h) {
        struct heap *next = h->next;
        h->pool = NULL;
        h->next = h->prev = NULL;
        if (!h->owner)
            heap_unmap(h);
        h = next;
    }
    pool->heaps = pool->heap0 = NULL;
    lock_give(&heaps_lock, true);
}

struct adoption {
    struct heap *h0;
    struct found found;
};

/* heap_pool_gather's step: pg joins heap0. */
static void adopt_into(struct page *pg, void *arg)
{
    struct adoption *a = arg;
    __atomic_store_n(&pg->heap, a->h0, __ATOMIC_RELAXED);
    stat_add(&heap_stats(a->h0)->class_capacity[pg->cls], pg->capacity);
    if (pg->used != 0 || !heap_release_empty(a->h0, pg, &a->found.block))
        queue_push(a->h0, pg);
}

void heap_pool_gather(struct mpool_pool *pool)
{
    struct adoption a = {pool->heap0, {pool, NULL}};
    lock_take(&heaps_lock, true);
    for (struct heap *h = pool->heaps; h; h = h->next) /* adopt_into counts them again */
        memset(heap_stats(h)->class_capacity, 0, sizeof heap_stats(h)->class_capacity);
    for (struct heap *h = pool->heaps; h; h = h->next)
        heap_drain(h, adopt_into, &a);
    lock_give(&heaps_lock, true);
    report_found(&a.found);
}

struct usage_walk {
    const struct heap *mine;
    bool thread_safe;
    size_t bytes;
};

/* Adds the bytes in live blocks of a slab: used, less the blocks on its
 * thread_free list where nobody can be collecting that list (the caller's
 * heap, an ownerless one, or every heap of a pool that is not thread safe). */
static void usage_slab(const struct page *pg, void *arg)
{
    struct usage_walk *w = arg;
    const struct heap *h = __atomic_load_n(&pg->heap, __ATOMIC_ACQUIRE);
    if (pg->kind != PAGE_SLAB || !h)
        return;
    size_t live = slab_live(pg);
    if (!w->thread_safe || h == w->mine || !h->owner) {
        size_t n = slab_tf_count(__atomic_load_n(&pg->thread_free, __ATOMIC_ACQUIRE));
        live -= n < live ? n : live;
    }
    w->bytes += live * sizeclass_size(pg->cls);
}

size_t heap_pool_used_bytes(struct mpool_pool *pool)
{
    struct usage_walk w = {NULL, pool->thread_safe, 0};
    lock_take(&heaps_lock, true);
    w.mine = heap_mine(pool);
    lock_take(&pool->buddy.lock, pool->thread_safe);
    buddy_each_run_locked(&pool->buddy, usage_slab, &w);
    lock_give(&pool->buddy.lock, pool->thread_safe);
    lock_give(&heaps_lock, true);
    return w.bytes;
}

/* Problems of one heap: each slab in one place, with the right flags and
 * owner, its lists sound (slab_check). */
static size_t heap_check(const struct heap *h, size_t *slabs)
{
    size_t problems = 0, n = 0, spare_pages = 0, limit = budget_held(&h->pool->budget) >> PAGE_SHIFT;
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        const struct page *cur = h->current[cls];
        if (cur != &mpool_empty_slab) {
            n++;
            if (cur->kind != PAGE_SLAB || cur->cls != cls || cur->heap != h || cur->flags != 0 || !cur->current)
                problems++;
            else
                problems += slab_check(cur, h->key);
        }
        const struct page *prev = NULL;
        for (const struct page *pg = h->queue[cls]; pg; pg = pg->next) {
            if (pg->kind != PAGE_SLAB || pg->cls != cls || pg->heap != h || pg->flags != PG_QUEUED ||
                pg->prev != prev || pg == cur || pg->current)
                problems++;
            else
                problems += slab_check(pg, h->key);
            prev = pg;
            if (++n > limit)
                return problems + 1; /* a cycle */
        }
        if (h->queue_last[cls] != prev)
            problems++;
        const struct page *spare = h->spare[cls];
        if (spare) {
            n++;
            spare_pages += spare->npages;
            if (spare->kind != PAGE_SLAB || spare->cls != cls || spare->heap != h || spare->flags != PG_SPARE ||
                spare->current || slab_live(spare) != 0 || spare == cur)
                problems++;
            else
                problems += slab_check(spare, h->key);
        }
    }
    if (spare_pages != h->spare_pages || spare_pages > HEAP_SPARE_PAGES)
        problems++;
    /* A parked slab is on the notified stack when a remote free took its
     * notification bit, except while that free is between taking the bit
     * and pushing the slab (a check that runs beside other threads' frees
     * sees that window), so the stack may hold fewer, never more, slabs
     * than have lost their bit.  The owner's own frees into a parked slab
     * wait on its local_free (heap_free_settle). */
    size_t notified = 0, waiting_slabs = 0;
    for (const struct page *pg = __atomic_load_n(&h->remote_full, __ATOMIC_ACQUIRE); pg; pg = pg->remote_next)
        if (++notified > limit)
            return problems + 1;
    const struct page *prev = NULL;
    for (const struct page *pg = h->full; pg; pg = pg->next) {
        bool waiting = !(__atomic_load_n(&pg->thread_free, __ATOMIC_ACQUIRE) & SLAB_NOTIFY);
        if (pg->kind != PAGE_SLAB || pg->heap != h || pg->flags != PG_FULL || pg->prev != prev ||
            pg->free || pg->current)
            problems++;
        else
            problems += slab_check(pg, h->key);
        waiting_slabs += waiting;
        prev = pg;
        if (++n > limit)
            return problems + 1;
    }
    if (notified > waiting_slabs) /* on the stack but not parked, or notified twice */
        problems++;
    *slabs += n;
    return problems;
}

size_t heap_pool_check(struct mpool_pool *pool, size_t *slabs, bool *complete)
{
    size_t problems = 0;
    *slabs = 0;
    *complete = true;
    lock_take(&heaps_lock, true);
    struct heap *mine = heap_mine(pool);
    for (struct heap *h = pool->heaps; h; h = h->next) {
        if (h->pool != pool || h->key != pool->key)
            problems++;
        if (!pool->thread_safe || h == mine || !h->owner)
            problems += heap_check(h, slabs);
        else
            *complete = false;
    }
    lock_give(&heaps_lock, true);
    return problems;
}

/* heap_pool_sweep's look at one slab: a block on its lists twice is
 * reported (once the lists are rebuilt, if the slab is not parked). */
static void sweep_slab(struct heap *h, struct page *pg, const void **found, size_t *n)
{
    /* A remote free marks its block before pushing it, so a free in flight
     * can make the marks outnumber the lists, never the reverse. */
    uintptr_t tf = __atomic_load_n(&pg->thread_free, __ATOMIC_ACQUIRE);
    if ((tf & SLAB_LOCKED) || slab_free_count(pg) <= slab_marked_count(pg, h->key))
        return;
    const void *block = slab_find_repeat(pg);
    if (*n < SWEEP_REPORTS)
        found[*n] = block ? block : pg->start;
    ++*n;
    if (!(pg->flags & PG_FULL))
        slab_rebuild(pg, h->key);
}

size_t heap_pool_sweep(struct mpool_pool *pool, bool quiet)
{
    const void *found[SWEEP_REPORTS];
    size_t n = 0;
    lock_take(&heaps_lock, true);
    struct heap *mine = heap_mine(pool);
    for (struct heap *h = pool->heaps; h; h = h->next) {
        if (pool->thread_safe && !quiet && h != mine && h->owner)
            continue; /* its thread may be running it */
        for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
            if (h->current[cls] != &mpool_empty_slab)
                sweep_slab(h, h->current[cls], found, &n);
            for (struct page *pg = h->queue[cls]; pg; pg = pg->next)
                sweep_slab(h, pg, found, &n);
            if (h->spare[cls])
                sweep_slab(h, h->spare[cls], found, &n);
        }
        for (struct page *pg = h->full; pg; pg = pg->next)
            sweep_slab(h, pg, found, &n);
    }
    lock_give(&heaps_lock, true);
    for (size_t i = 0; i < n && i < SWEEP_REPORTS; i++) /* after the lock: the logger may allocate */
        heap_report_double_free(pool, found[i], "found by the final check");
    if (n > SWEEP_REPORTS)
        error_raise(&pool->policy, MPOOL_ERR_INVALID_POINTER, 0,
                    "mpool_free: %zu more double frees found by the final check", n - SWEEP_REPORTS);
    stat_atomic_add(&pool->stats.invalid_frees, n);
    return n;
}

void heap_fork_prepare(void)
{
    lock_take(&heaps_lock, true);
}

void heap_fork_parent(void)
{
    lock_give(&heaps_lock, true);
}

/* The heaps of threads that do not exist in the child stay owned: another
 * thread may have been half-way through one of their lists at the fork.
 * Their slabs stay out of use (at most what those threads held). */
void heap_fork_child(void)
{
    lock_give(&heaps_lock, true);
}
