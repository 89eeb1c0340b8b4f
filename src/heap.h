/*
 * heap.h - heaps: the slabs one thread allocates from, per pool.
 *
 * Ownership
 *   Every slab belongs to exactly one heap (page->heap).  A thread-safe pool
 *   gives each thread that uses it a heap of its own; the thread allocates
 *   from its heap's slabs and frees into them with plain loads and stores,
 *   and frees blocks of other heaps' slabs onto their thread_free lists
 *   (slab.h).  A pool that is not thread safe has one heap, heap0, used by
 *   every call.  Nothing on these paths takes a lock.
 *
 * A heap's slabs, per class
 *   current[cls]  the slab allocation pops (or the empty sentinel);
 *   queue[cls]    other slabs of the class that may have free blocks
 *                 (PG_QUEUED, doubly linked through next/prev, newest
 *                 first; queue_last[cls] is the oldest, which a refill
 *                 takes first: it had the longest to gather frees);
 *   full          parked slabs of every class (PG_FULL, SLAB_NOTIFY set);
 *   remote_full   an atomic stack (through remote_next) of parked slabs that
 *                 a remote free notified: the owner takes it with one
 *                 exchange and queues them again.
 *   spare[cls]    an empty slab kept for the class (PG_SPARE, on no list).
 *   When current runs dry the owner collects its local_free and thread_free;
 *   failing that it parks it, takes the notified slabs, and tries the queue,
 *   oldest first, collecting each; failing that it takes the spare, and only
 *   then a new slab from the page allocator.  Oldest first: in a random
 *   churn the newest queued slab has just been unparked with an eighth
 *   free, the oldest has gathered frees the longest, so a refill gets more
 *   blocks and slabs are parked and unparked (two compare-and-swaps) less
 *   often.  A slab whose last block comes back to its owner stays if it is
 *   current (so a class used in rounds does not take and return a slab each
 *   round); otherwise it becomes the class's spare if the class has none
 *   and the heap's spares stay within HEAP_SPARE_PAGES, else it goes back
 *   to the page allocator.  So a churn of medium blocks (slabs of one to a
 *   few blocks, which empty often) does not take the page lock, split,
 *   format and touch fresh pages for every slab it needs, and a heap keeps
 *   at most HEAP_SPARE_PAGES of empty slabs; trim, a request that meets
 *   max_size and the thread's exit give them back.
 *
 * Threads and life cycle
 *   A thread finds its heap for the default pool in one initial-exec
 *   thread-local pointer (mpool_default_heap) and for other pools in a table
 *   of HEAP_SLOTS slots keyed by pool id (ids are never reused).  A thread
 *   without a heap for a pool sees the static empty heap, whose slabs are all
 *   the empty sentinel, so the fast path falls through to heap_attach.
 *   Heaps are never freed while their pool lives: at a thread's exit (a
 *   pthread key destructor) its heaps give their empty slabs back and become
 *   ownerless, keeping their other slabs and notifications; the next thread
 *   that needs a heap for the pool adopts an ownerless one whole.  So a slab
 *   always has a heap to notify, the number of heaps is the largest number of
 *   threads that used the pool at once, and blocks other threads free into
 *   an exited thread's slabs are reused by the thread that adopts them.
 *   Destroying a pool unmaps its ownerless heaps and orphans the owned ones
 *   (pool = NULL): their threads unmap them when they need the slot again or
 *   exit, and never touch the pool.
 *
 * Locks: heaps_lock (process-wide, heap.c) guards every pool's list of heaps
 * and each heap's owner; taken only to attach, exit, destroy, reset, switch
 * modes, trim and check.  Order: heaps_lock -> page lock.
 */
#ifndef MPOOL_HEAP_H
#define MPOOL_HEAP_H

#include "pool.h"
#include "slab.h"

#define HEAP_SLOTS 8 /* pools other than the default one a thread keeps a heap for at once */
#define HEAP_SPARE_PAGES 256 /* empty slabs a heap keeps (1 MiB: four slabs of medium blocks) */

struct heap_thread;

struct heap {
    struct page *current[CLASS_COUNT + 1]; /* [CLASS_NONE] is always the empty sentinel */
    struct mpool_pool *pool;               /* NULL once the pool is destroyed */
    uint64_t key;                          /* pool->key: the mark of free blocks (slab.h) */
    uint64_t link;                         /* pool->link: the secret of free blocks' links (slab.h) */
    struct page *queue[CLASS_COUNT];
    struct page *queue_last[CLASS_COUNT];
    struct page *full;
    struct page *spare[CLASS_COUNT];       /* an empty slab kept per class (PG_SPARE), or NULL */
    size_t spare_pages;                    /* pages of the spare slabs, at most HEAP_SPARE_PAGES */
    struct page *remote_full;              /* atomic */
    struct heap_thread *owner;             /* heaps_lock; NULL: ownerless */
    struct heap *next, *prev;              /* the pool's heaps (heaps_lock; next is set
                                              before the heap is published: stats.c reads the list
                                              without the lock) */
};

/* A heap's counters (stats.h), written by its owner only, follow the heap in
 * its mapping at a fixed offset: as cheap to reach as a member, and the
 * static empty heap (a struct heap alone, whose slabs are never popped or
 * freed into) does not carry 12 KiB of zeros in the library's data. */
#define HEAP_STATS_OFFSET ((sizeof(struct heap) + 63) & ~(size_t)63)
static inline struct heap_stats *heap_stats(const struct heap *h)
{
    return (struct heap_stats *)((char *)(uintptr_t)h + HEAP_STATS_OFFSET);
}

/* A thread's table of heaps for pools other than the default one. */
struct heap_thread {
    uint64_t id[HEAP_SLOTS];
    struct heap *heap[HEAP_SLOTS];
    bool registered; /* its exit destructor is armed */
};

extern struct heap mpool_heap_empty mpool_internal;
extern _Thread_local struct heap *mpool_default_heap
    __attribute__((tls_model("initial-exec"))) mpool_internal;
extern _Thread_local struct heap_thread mpool_heap_thread
    __attribute__((tls_model("initial-exec"))) mpool_internal;

/* The calling thread's heap for pool, or NULL if it has none yet. */
static inline struct heap *heap_mine(const struct mpool_pool *pool)
{
    if (!pool->thread_safe)
        return pool->heap0;
    if (pool->tls_heap) {
        struct heap *h = mpool_default_heap;
        return h != &mpool_heap_empty ? h : NULL;
    }
    const struct heap_thread *t = &mpool_heap_thread;
    unsigned slot = (unsigned)(pool->id % HEAP_SLOTS);
    return t->id[slot] == pool->id ? t->heap[slot] : NULL;
}

/* Gives the calling thread a heap for pool; NULL if no memory for one. */
struct heap *heap_attach(struct mpool_pool *pool) mpool_internal mpool_noinline;

/* The calling thread's heap for pool, attached on first use (NULL: no memory). */
static inline struct heap *heap_of(struct mpool_pool *pool)
{
    struct heap *h = heap_mine(pool);
    return likely(h != NULL) ? h : heap_attach(pool);
}

/* A block of class cls when current[cls] has none (rules above); NULL with
 * *status if the page allocator cannot give a slab. */
void *heap_alloc_refill(struct heap *h, unsigned cls, enum buddy_status *status) mpool_internal mpool_noinline;

/* After an owner's free brought pg's count to 0: the slab is empty (released),
 * or parked with an eighth free (queued again), or a double free broke it. */
void heap_free_settle(struct heap *h, struct page *pg) mpool_internal mpool_noinline;

/* A remote free found pg parked: puts it on its heap's stack of notified slabs. */
void heap_notify(struct heap *h, struct page *pg) mpool_internal;

/* The owner's free of block p of its slab pg (the caller checked p). */
static inline void heap_free_local(struct heap *h, struct page *pg, void *p)
{
    slab_link_put(p, pg->local_free, h->link);
    slab_asan_freed(pg, p);
    pg->local_free = p;
    ((uint64_t *)p)[1] = h->key;
    stat_inc(&heap_stats(h)->class_frees[pg->cls]);
#ifdef MPOOL_TSAN
    int32_t used = pg->used - 1;
    slab_set_used(pg, used);
#else
    int32_t used = --pg->used; /* plain: see slab_set_used */
#endif
    /* Empty, or parked with an eighth free (slab.h).  Each free subtracts
     * one, so the count passes 0 before going below it: "== 0" sees every
     * case "<= 0" would, and compiles to the decrement's own flags.  Below 0
     * a parked slab waits for the notification its remote free took. */
    if (unlikely(used == 0))
        heap_free_settle(h, pg);
}

/* The owner's free of p through its heap h: true if done; false if p needs
 * the general path: foreign (the chunk map proves p lies in one of our
 * regions before anything is read there), a block of another heap's slab or
 * no slab at all, not where a block starts, the block the owner freed last,
 * or (cls other than CLASS_ANY) a block of another class than cls: a sized
 * free whose size does not fit the block.  It does not read the block
 * (slab.h: marks).  Inlined with a constant CLASS_ANY, the class test goes. */
#define CLASS_ANY 0xFFFFu
static mpool_always_inline bool heap_free_mine_class(struct heap *h, void *p, unsigned cls)
{
    if (unlikely(!chunk_is_region(p)))
        return false;
    struct page *pg = region_head_of(region_of(p), p);
    if (unlikely(pg->heap != h || !slab_is_block_offset_owner(pg, slab_offset(pg, p)) || p == pg->local_free))
        return false;
    if (cls != CLASS_ANY && unlikely(pg->cls != cls))
        return false;
    heap_free_local(h, pg, p);
    return true;
}

static inline bool heap_free_mine(struct heap *h, void *p)
{
    return heap_free_mine_class(h, p, CLASS_ANY);
}

/* Timing samples (stats.c): the calling thread's inline paths of the default
 * pool fall through to the slow halves (mpool_default_heap points at the
 * empty heap) until heap_undivert_default; heap_attach and thread exit undo
 * it too. */
void heap_divert_default(void) mpool_internal;
void heap_undivert_default(void) mpool_internal;

/* ---- Whole heaps (heap.c) ----------------------------------------------- */

/* Sets up the pool's heap list and heap0 (owned by nobody); false if no memory. */
bool heap_pool_init(struct mpool_pool *pool) mpool_internal;

/* Gives back the empty slabs of the calling thread's heap for pool and of the
 * pool's ownerless heaps (all heaps if the pool is not thread safe); returns
 * how many slabs went back.  With decommitted (not NULL), the other slabs of
 * those heaps give back the pages that hold only free blocks (slab_trim),
 * whose bytes are added to *decommitted. */
size_t heap_pool_trim(struct mpool_pool *pool, size_t *decommitted) mpool_internal;

/* Every heap forgets its slabs (the page allocator is reset after).  The
 * pool is quiet. */
void heap_pool_reset(struct mpool_pool *pool) mpool_internal;

/* Before a pool's memory goes: unmaps its ownerless heaps, orphans the rest. */
void heap_pool_destroy(struct mpool_pool *pool) mpool_internal;

/* Gathers every slab of every heap of the quiet pool into heap0, with every
 * list collected (before the pool changes modes). */
void heap_pool_gather(struct mpool_pool *pool) mpool_internal;

/* Bytes in live slab blocks of the pool.  Blocks freed by other threads
 * count until collected only in heaps that another thread may be running. */
size_t heap_pool_used_bytes(struct mpool_pool *pool) mpool_internal;

/* Number of broken invariants in the pool's heaps that may be read without
 * racing their threads: heap0 if the pool is not thread safe, else the
 * calling thread's heap and the ownerless ones.  *slabs gets how many slabs
 * they hold, *complete whether that is every heap. */
size_t heap_pool_check(struct mpool_pool *pool, size_t *slabs, bool *complete) mpool_internal;

/* The final check of double frees that the owners' inline frees let
 * through and no allocation met yet (slab.h: marks): every slab of the
 * heaps that may be read (every heap if quiet: no other thread runs the
 * pool) whose lists hold more blocks than carry the mark has them rebuilt,
 * and the block found twice is reported (at most SWEEP_REPORTS lines, then
 * a count).  Returns how many slabs had one.  Takes time in proportion to
 * the blocks of those slabs; run at mpool_destroy and, for the malloc
 * replacement, at exit. */
#define SWEEP_REPORTS 8
size_t heap_pool_sweep(struct mpool_pool *pool, bool quiet) mpool_internal;

/* fork(): the registry lock around the call (heap.c says what the child
 * keeps). */
void heap_fork_prepare(void) mpool_internal;
void heap_fork_parent(void) mpool_internal;
void heap_fork_child(void) mpool_internal;

/* A new pool id (ids are never reused). */
uint64_t heap_next_pool_id(void) mpool_internal;

/* A secret key for a pool's free marks: unpredictable, never 0. */
uint64_t heap_new_key(const void *salt) mpool_internal;

#endif /* MPOOL_HEAP_H */
