/*
 * check.c - mpool_check: walks every structure of a pool with all its locks
 * held and counts broken invariants: those of the page allocator (buddy.c),
 * of every slab and class list (slab.c), of the huge-block list (huge.h), and
 * that the pool's count of bytes in large blocks matches its runs.
 */
#include "huge.h"
#include "pool.h"
#include "slab.h"

struct run_census {
    const struct mpool *pool;
    size_t problems;
    size_t large_bytes;
};

static void check_run(const struct page *pg, void *arg)
{
    struct run_census *c = arg;
    if (pg->kind == PAGE_LARGE) {
        c->large_bytes += (size_t)pg->npages << PAGE_SHIFT;
    } else if (pg->cls >= CLASS_COUNT || pg->block_size != c->pool->cls[pg->cls].block_size) {
        c->problems++;
    } else {
        c->problems += slab_check_one(pg);
    }
}

size_t mpool_check(const mpool_t *cpool)
{
    struct mpool *pool = (struct mpool *)(cpool ? cpool : mpool_default());
    if (pool->magic != POOL_MAGIC)
        return 1;
    struct run_census census = {pool, 0, 0};
    bool ts = pool->thread_safe;
    for (unsigned i = 0; i < CLASS_COUNT; i++)
        lock_take(&pool->cls[i].lock, ts);
    lock_take(&pool->buddy.lock, ts);
    census.problems += buddy_check_locked(&pool->buddy);
    buddy_each_run_locked(&pool->buddy, check_run, &census);
    for (unsigned i = 0; i < CLASS_COUNT; i++)
        census.problems += slab_check_locked(pool, i);
    if (census.large_bytes != pool->large_used)
        census.problems++;
    lock_give(&pool->buddy.lock, ts);
    for (unsigned i = CLASS_COUNT; i-- > 0;)
        lock_give(&pool->cls[i].lock, ts);
    lock_take(&pool->huge.lock, ts);
    size_t problems = census.problems + huge_check_locked(pool);
    lock_give(&pool->huge.lock, ts);
    return problems;
}
