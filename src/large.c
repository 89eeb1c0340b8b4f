/*
 * large.c - large blocks as page runs (large.h).  The pool's count of bytes
 * in large blocks is kept under the page lock.
 */
#include "large.h"

void *large_alloc(struct mpool_pool *pool, size_t size, size_t align, bool *zeroed,
                  enum buddy_status *status)
{
    size_t npages = align_up(size ? size : 1, PAGE_SIZE) >> PAGE_SHIFT;
    unsigned align_order = align > PAGE_SIZE ? floor_log2(align) - PAGE_SHIFT : 0;
    bool dirty;
    lock_take(&pool->buddy.lock, pool->thread_safe);
    struct run_request req = {npages, align_order, PAGE_LARGE, 0};
    struct page *head = buddy_alloc_locked(&pool->buddy, &req, &dirty, status);
    if (head)
        pool->large_used += npages << PAGE_SHIFT;
    lock_give(&pool->buddy.lock, pool->thread_safe);
    if (!head)
        return NULL;
    *zeroed = !dirty;
    return page_start(head);
}

void large_free(struct mpool_pool *pool, struct page *head)
{
    lock_take(&pool->buddy.lock, pool->thread_safe);
    pool->large_used -= large_usable(head);
    buddy_free_locked(&pool->buddy, head);
    lock_give(&pool->buddy.lock, pool->thread_safe);
}

void large_shrink(struct mpool_pool *pool, struct page *head, size_t size)
{
    size_t npages = align_up(size ? size : 1, PAGE_SIZE) >> PAGE_SHIFT;
    if (npages >= head->npages)
        return;
    lock_take(&pool->buddy.lock, pool->thread_safe);
    pool->large_used -= (head->npages - npages) << PAGE_SHIFT;
    buddy_shrink_locked(&pool->buddy, head, npages);
    lock_give(&pool->buddy.lock, pool->thread_safe);
}
