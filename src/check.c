/*
 * check.c - mpool_check: walks every structure of a pool and counts broken
 * invariants: those of the page allocator (buddy.c), of every slab and class
 * list (slab.c) and of the huge-block list (huge.h); that every slab run is
 * on its class's list and no list holds anything else; and that the pool's
 * count of bytes in large blocks matches its runs.
 *
 * Locks are taken a class at a time (class lock, then the page lock), never
 * all at once, so the check may run while other threads use the pool and
 * still sees each class in a consistent state.
 */
#include "huge.h"
#include "large.h"
#include "pool.h"
#include "slab.h"

struct run_census {
    unsigned cls;       /* the class whose slab runs are counted */
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
    else if (pg->cls == c->cls)
        c->slab_runs++;
}

static size_t class_list_length(const struct sclass *c)
{
    size_t n = 0;
    for (const struct page *pg = c->slabs; pg; pg = pg->cnext)
        n++;
    return n;
}

size_t mpool_check(const mpool_t *cpool)
{
    struct mpool_pool *pool = (struct mpool_pool *)(cpool ? cpool : mpool_default());
    if (pool->magic != POOL_MAGIC)
        return 1;
    bool ts = pool->thread_safe;
    size_t problems = 0;
    for (unsigned i = 0; i < CLASS_COUNT; i++) {
        struct sclass *c = &pool->cls[i];
        lock_take(&c->lock, ts);
        problems += slab_check_locked(pool, i);
        lock_take(&pool->buddy.lock, ts);
        struct run_census census = {i, 0, 0, 0};
        buddy_each_run_locked(&pool->buddy, census_run, &census);
        if (census.slab_runs != class_list_length(c))
            problems++;
        lock_give(&pool->buddy.lock, ts);
        lock_give(&c->lock, ts);
    }
    lock_take(&pool->buddy.lock, ts);
    problems += buddy_check_locked(&pool->buddy);
    struct run_census census = {CLASS_NONE, 0, 0, 0};
    buddy_each_run_locked(&pool->buddy, census_run, &census);
    if (census.large_bytes != pool->large_used || census.cached_pages != pool->large_cache.pages)
        problems++;
    problems += large_cache_check_locked(pool);
    lock_give(&pool->buddy.lock, ts);
    lock_take(&pool->huge.lock, ts);
    problems += huge_check_locked(pool);
    lock_give(&pool->huge.lock, ts);
    return problems;
}
