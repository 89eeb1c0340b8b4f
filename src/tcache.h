/*
 * tcache.h - per-thread caches of slab blocks for thread-safe pools.
 *
 * Each thread keeps, per thread-safe pool it uses (not in debug mode), one
 * cache: per size class, a bounded LIFO list of free blocks.  Allocation pops
 * and free pushes that list with no lock and no atomic read-modify-write; a
 * class's lock is taken only to refill an empty list with a batch (half the
 * bound) from the class's slabs, or to flush half of a full list back to them
 * (seed 002).  The thread finds its cache for a pool in a small thread-local
 * table keyed by the pool's id (ids are never reused, so a slot naming a
 * destroyed pool matches no pool).
 *
 * Marks.  A block on a cache list has the pool's secret random key K in its
 * second word, a block a cache gave back to a slab (or that the general free
 * path put there) has K ^ 1; every block handed out has that word cleared.
 * Every block on a slab's list of a caching pool has K ^ 1 (slab_format marks
 * new slabs; mpool_check verifies it).  So a marked block is free wherever it
 * sits: the exact queries (mpool_owns, mpool_usable_size, mpool_safe_free)
 * and the general free path refuse it.
 * The inline free path does not read the block (on a random free that read is
 * a cache miss: churn 81 -> 52 ns without it); it refuses the list's head
 * (the common double free) and writes K.  A block freed twice is found when
 * a list reaches it again with the wrong mark, before it is handed out a
 * second time: a cache list expects K (tcache_pop, flushes; the list is
 * dropped), a slab's list K ^ 1 (refills; the block is left out).  Either
 * is reported as a double free, at that later call.  A live block whose own data holds a mark would be misjudged;
 * the key is random per pool (and replaced when the pool switches modes or is
 * reset), so that takes a program reading freed memory.  Classes of 8-byte
 * blocks have no second word and are not cached.
 *
 * Registry.  Every cache is on its pool's list, under one process-wide lock
 * (tcache_lock, rare operations only: attaching, a thread's exit, usage,
 * reset, destroy, mode switches).  Lock order: tcache_lock -> class lock ->
 * page lock.  A thread's exit (a pthread key destructor) flushes its caches
 * back; destroying a pool orphans its caches (their threads unmap them when
 * they next need the slot, or at exit); reset empties them.  Other threads'
 * caches are never touched while they may run: statistics read their counts
 * with relaxed atomic loads, and mpool_trim flushes only the caller's.
 */
#ifndef MPOOL_TCACHE_H
#define MPOOL_TCACHE_H

#include "pool.h"

#define TCACHE_SLOTS 8            /* pools a thread keeps a cache for at once */
#define TCACHE_BIN_BYTES ((size_t)16 * 1024) /* a list holds about this many bytes */
#define TCACHE_BIN_MAX 64         /* and at most this many blocks */

struct tcache_bin {
    void *head;     /* blocks linked through their first word */
    uint32_t count; /* written by the owner only (relaxed atomic stores) */
    uint32_t max;   /* 0: the class is not cached */
};

struct tcache {
    struct mpool_pool *pool;    /* NULL once the pool is destroyed */
    struct tcache *next, *prev; /* the pool's caches (tcache_lock) */
    struct tcache_bin bin[CLASS_COUNT];
};

/* A thread's table: the cache of pool id[i] is tc[i], at slot id % TCACHE_SLOTS. */
struct tcache_thread {
    uint64_t id[TCACHE_SLOTS];
    struct tcache *tc[TCACHE_SLOTS];
    bool exiting; /* its caches were flushed at exit: no new ones */
};

extern _Thread_local struct tcache_thread mpool_tcache_thread
    __attribute__((tls_model("initial-exec"))) mpool_internal;

/* Slow halves (tcache.c). */
struct tcache *tcache_attach(struct mpool_pool *pool) mpool_internal mpool_noinline;
void *tcache_refill(struct mpool_pool *pool, struct tcache *tc, unsigned cls,
                    enum buddy_status *status) mpool_internal mpool_noinline;
bool tcache_flush_half(struct mpool_pool *pool, struct tcache *tc, unsigned cls) mpool_internal mpool_noinline;
/* Reports a list found broken at block p (a block pushed twice) and empties
 * the list: its blocks stay marked free and are not used again. */
void tcache_corrupt(struct mpool_pool *pool, struct tcache *tc, unsigned cls, const void *p,
                    const char *who) mpool_internal mpool_noinline;

/* The calling thread's cache for pool if it has one already, else NULL. */
static inline struct tcache *tcache_mine(const struct mpool_pool *pool)
{
    struct tcache_thread *t = &mpool_tcache_thread;
    unsigned slot = (unsigned)(pool->id % TCACHE_SLOTS);
    return likely(t->id[slot] == pool->id) ? t->tc[slot] : NULL;
}

/* The calling thread's cache for pool, made on first use; NULL if the pool
 * does not cache (not thread safe, debug) or the thread cannot have one. */
static inline struct tcache *tcache_of(struct mpool_pool *pool)
{
    struct tcache *tc = tcache_mine(pool);
    if (likely(tc != NULL))
        return tc;
    return pool->tcache ? tcache_attach(pool) : NULL;
}

static inline void tcache_set_count(struct tcache_bin *b, uint32_t n)
{
    __atomic_store_n(&b->count, n, __ATOMIC_RELAXED);
}

/* Takes the top block of list b for the caller, or NULL if the list is empty
 * or its top lacks the cache mark (a block pushed twice: tcache_pop). */
static inline void *tcache_take(const struct mpool_pool *pool, struct tcache_bin *b)
{
    void **block = b->head;
    if (unlikely(block == NULL || ((uint64_t *)block)[1] != pool->tc_key))
        return NULL;
    b->head = block[0];
    block[1] = NULL; /* live blocks never hold a mark */
    tcache_set_count(b, b->count - 1);
    return block;
}

/* Puts block p on top of list b with the cache mark (the caller checked the
 * bound and, as much as it wants, that p is not free already). */
static inline void tcache_put(const struct mpool_pool *pool, struct tcache_bin *b, void *p)
{
    void **block = p;
    block[0] = b->head;
    ((uint64_t *)block)[1] = pool->tc_key;
    b->head = block;
    tcache_set_count(b, b->count + 1);
}

/* A block of class cls for the caller; NULL with *status if the pool has none.
 * A block on the list without the cache mark was pushed twice (a double free
 * that the free path does not look for): tcache_corrupt reports it and drops
 * the list, so nothing is handed out twice. */
static inline void *tcache_pop(struct mpool_pool *pool, struct tcache *tc, unsigned cls,
                               enum buddy_status *status)
{
    struct tcache_bin *b = &tc->bin[cls];
    void *block = tcache_take(pool, b);
    if (likely(block != NULL))
        return block;
    if (b->head)
        tcache_corrupt(pool, tc, cls, b->head, "mpool_alloc");
    return tcache_refill(pool, tc, cls, status);
}

/* True if the block at p (of a class with a second word) is marked free: on
 * a cache list or on a slab's list. */
static inline bool tcache_marked(const struct mpool_pool *pool, const void *p)
{
    return (((const uint64_t *)p)[1] ^ pool->tc_key) <= 1; /* tc_key or pool_slab_mark */
}

/* Clears the mark a block p of class cls may carry from an earlier list, before
 * it is handed out by a path that bypasses the cache. */
static inline void tcache_unmark(const struct mpool_pool *pool, unsigned cls, void *p)
{
    if (pool->tcache && pool->cls[cls].block_size >= 2 * sizeof(uint64_t))
        ((uint64_t *)p)[1] = 0;
}

/* True if block p of slab pg is marked free (only a caching pool marks). */
static inline bool tcache_block_marked(const struct mpool_pool *pool, const struct page *pg, const void *p)
{
    return pool->tcache && pg->block_size >= 2 * sizeof(uint64_t) && tcache_marked(pool, p);
}

/* Pushes block p (a block start of class cls, checked by the caller) onto the
 * cache.  False, nothing changed, if p is marked free (a double free) or the
 * class is not cached: the caller then takes the general path.  (This is the
 * general path's push, which may read the block; free_slow's inline push
 * only compares p with the list's head.) */
static inline bool tcache_push(struct mpool_pool *pool, struct tcache *tc, unsigned cls, void *p)
{
    struct tcache_bin *b = &tc->bin[cls];
    if (unlikely(b->count >= b->max) && !tcache_flush_half(pool, tc, cls))
        return false;
    if (unlikely(tcache_marked(pool, p)))
        return false;
    tcache_put(pool, b, p);
    return true;
}

/* ---- The pool's side (pool.c, alloc.c) ---------------------------------- */

/* A new pool's id and key. */
void tcache_pool_init(struct mpool_pool *pool) mpool_internal;

/* The pool changes mode (thread_safe, so pool->tcache): every cache is
 * flushed back and the key replaced.  No other thread may use the pool. */
void tcache_pool_switch(struct mpool_pool *pool) mpool_internal;

/* After a switch that turned caching on: every block on a slab's list gets
 * the slab mark.  No other thread may use the pool. */
void tcache_pool_mark_slabs(struct mpool_pool *pool) mpool_internal;

/* Reset: every cache of the pool forgets its blocks; a new key. */
void tcache_pool_reset(struct mpool_pool *pool) mpool_internal;

/* Destroy: the pool's caches are orphaned (their threads unmap them). */
void tcache_pool_destroy(struct mpool_pool *pool) mpool_internal;

/* Flushes the calling thread's cache for pool; returns the blocks flushed. */
size_t tcache_flush_mine(struct mpool_pool *pool) mpool_internal;

/* Bytes in blocks held by all caches of the pool (for usage). */
size_t tcache_cached_bytes(const struct mpool_pool *pool) mpool_internal;

/* fork(): the registry lock is held across it (pool.c). */
void tcache_fork_prepare(void) mpool_internal;
void tcache_fork_release(void) mpool_internal;

#endif /* MPOOL_TCACHE_H */
