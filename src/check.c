/*
 * check.c - mpool_check: walks every structure of a pool and counts broken
 * invariants: those of the page allocator (buddy.c), of the heaps and their
 * slabs (heap.c, slab.c), of the large cache and the huge-block list; that
 * the heaps hold exactly the slab runs of the pool's regions; and that the
 * pool's count of bytes in large blocks matches its runs.
 *
 * A heap that another thread may be using is not read (its lists change
 * without a lock): on a thread-safe pool the check covers the caller's heap
 * and the ownerless ones (those of threads that exited), and the slab count
 * is then only bounded by the runs.  On a quiet pool whose threads have
 * exited, or one that is not thread safe, it covers every slab.
 */
#include "debug.h"
#include "heap.h"
#include "huge.h"
#include "large.h"
#include "pool.h"
#include "zero.h"

struct run_census {
    size_t slab_runs;
    size_t large_bytes;
    size_t cached_pages;
};

/* Reads only head fields written under the page lock (buddy.h). */
static void census_run(const struct page *pg, void *arg)
{
    struct run_census *c = arg;
    if (pg->kind == PAGE_LARGE && !(pg->flags & PG_CACHED))
        c->large_bytes += (size_t)pg->npages << PAGE_SHIFT;
    else if (pg->kind == PAGE_LARGE)
        c->cached_pages += pg->npages;
    else
        c->slab_runs++;
}

size_t mpool_check(const mpool_t *cpool)
{
    struct mpool_pool *pool = (struct mpool_pool *)(cpool ? cpool : mpool_default());
    if (pool->magic != POOL_MAGIC)
        return 1;
    bool ts = pool->thread_safe;
    size_t slabs = 0;
    bool complete = true;
    size_t problems = heap_pool_check(pool, &slabs, &complete);
    lock_take(&pool->buddy.lock, ts);
    problems += buddy_check_locked(&pool->buddy);
    struct run_census census = {0, 0, 0};
    buddy_each_run_locked(&pool->buddy, census_run, &census);
    if (census.large_bytes != pool->large_used || census.cached_pages != pool->large_cache.pages)
        problems++;
    if (complete ? slabs != census.slab_runs : slabs > census.slab_runs)
        problems++;
    problems += large_cache_check_locked(pool);
    lock_give(&pool->buddy.lock, ts);
    lock_take(&pool->huge.lock, ts);
    problems += huge_check_locked(pool);
    lock_give(&pool->huge.lock, ts);
    problems += zero_check((struct mpool_pool *)pool);
    problems += debug_check(pool); /* canaries and quarantine of a debug pool */
    return problems;
}
