/*
 * large.c - large blocks as page runs, and the cache of freed ones (large.h).
 * The pool's count of bytes in live large blocks and the cache are kept under
 * the page lock.  Built with AddressSanitizer, a cached run is poisoned
 * (sanitize.h): a use after free of a large block is reported while it waits
 * there; it is unpoisoned when it leaves the cache, whoever takes it.
 */
#include "large.h"

#include <string.h>

#include "sanitize.h"

#ifdef MPOOL_ASAN
#define large_poison(pg, n) ASAN_POISON_MEMORY_REGION(page_start(pg), (size_t)(n) << PAGE_SHIFT)
#define large_unpoison(pg, n) ASAN_UNPOISON_MEMORY_REGION(page_start(pg), (size_t)(n) << PAGE_SHIFT)
#else
#define large_poison(pg, n) ((void)0)
#define large_unpoison(pg, n) ((void)0)
#endif

/* A cached run of npages pages whose start is aligned to 2^align_order pages,
 * taken out of the cache; NULL if there is none. */
static struct page *cache_take_locked(struct large_cache *lc, size_t npages, unsigned align_order)
{
    if (npages > LARGE_CACHE_MAX_PAGES)
        return NULL;
    struct page **link = &lc->bin[npages];
    size_t mask = ((size_t)1 << align_order) - 1;
    for (struct page *pg = *link; pg; link = &pg->next, pg = *link) {
        if ((page_index(page_region(pg), pg) & mask) == 0) {
            *link = pg->next;
            pg->next = NULL;
            pg->flags &= (uint8_t)~PG_CACHED;
            lc->pages -= npages;
            large_unpoison(pg, npages);
            return pg;
        }
    }
    return NULL;
}

void *large_alloc(struct mpool_pool *pool, size_t size, size_t align, bool *zeroed,
                  enum buddy_status *status)
{
    size_t npages = align_up(size ? size : 1, PAGE_SIZE) >> PAGE_SHIFT;
    unsigned align_order = align > PAGE_SIZE ? floor_log2(align) - PAGE_SHIFT : 0;
    bool dirty = true;
    lock_take(&pool->buddy.lock, pool->thread_safe);
    struct page *head = cache_take_locked(&pool->large_cache, npages, align_order);
    if (!head) {
        struct run_request req = {npages, align_order, PAGE_LARGE, 0, 0};
        head = buddy_alloc_locked(&pool->buddy, &req, &dirty, status);
    }
    if (head) {
        pool->large_used += npages << PAGE_SHIFT;
        __atomic_store_n(&pool->stats.large_allocs, pool->stats.large_allocs + 1, __ATOMIC_RELAXED);
        __atomic_store_n(&pool->stats.large_live, pool->stats.large_live + 1, __ATOMIC_RELAXED);
    }
    lock_give(&pool->buddy.lock, pool->thread_safe);
    if (!head)
        return NULL;
    *zeroed = !dirty;
    return page_start(head);
}

void large_free(struct mpool_pool *pool, struct page *head)
{
    struct large_cache *lc = &pool->large_cache;
    size_t npages = head->npages;
    lock_take(&pool->buddy.lock, pool->thread_safe);
    pool->large_used -= large_usable(head);
    __atomic_store_n(&pool->stats.large_live, pool->stats.large_live - 1, __ATOMIC_RELAXED);
    if (npages <= LARGE_CACHE_MAX_PAGES && lc->pages + npages <= LARGE_CACHE_CAP_PAGES) {
        head->flags |= PG_CACHED;
        head->next = lc->bin[npages];
        lc->bin[npages] = head;
        lc->pages += npages;
        large_poison(head, npages);
    } else {
        buddy_free_locked(&pool->buddy, head);
    }
    lock_give(&pool->buddy.lock, pool->thread_safe);
}

size_t large_cache_flush(struct mpool_pool *pool)
{
    struct large_cache *lc = &pool->large_cache;
    lock_take(&pool->buddy.lock, pool->thread_safe);
    size_t bytes = lc->pages << PAGE_SHIFT;
    for (size_t n = 1; n <= LARGE_CACHE_MAX_PAGES && lc->pages; n++) {
        while (lc->bin[n]) {
            struct page *pg = lc->bin[n];
            lc->bin[n] = pg->next;
            pg->next = NULL;
            pg->flags &= (uint8_t)~PG_CACHED;
            lc->pages -= n;
            large_unpoison(pg, n);
            buddy_free_locked(&pool->buddy, pg);
        }
    }
    lock_give(&pool->buddy.lock, pool->thread_safe);
    return bytes;
}

void large_cache_forget(struct mpool_pool *pool)
{
#ifdef MPOOL_ASAN /* the pages are reused or unmapped: no poison may stay behind */
    for (size_t n = 1; n <= LARGE_CACHE_MAX_PAGES; n++)
        for (struct page *pg = pool->large_cache.bin[n]; pg; pg = pg->next)
            large_unpoison(pg, n);
#endif
    memset(&pool->large_cache, 0, sizeof pool->large_cache);
}

size_t large_cache_check_locked(const struct mpool_pool *pool)
{
    const struct large_cache *lc = &pool->large_cache;
    size_t problems = 0, pages = 0;
    for (size_t n = 1; n <= LARGE_CACHE_MAX_PAGES; n++) {
        for (const struct page *pg = lc->bin[n]; pg; pg = pg->next) {
            if (pg->kind != PAGE_LARGE || pg->npages != n || !(pg->flags & PG_CACHED)) {
                problems++;
                break;
            }
            pages += n;
            if (pages > LARGE_CACHE_CAP_PAGES) { /* a cycle */
                problems++;
                break;
            }
        }
    }
    return problems + (pages != lc->pages);
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

bool large_grow(struct mpool_pool *pool, struct page *head, size_t size)
{
    size_t npages = align_up(size, PAGE_SIZE) >> PAGE_SHIFT;
    lock_take(&pool->buddy.lock, pool->thread_safe);
    size_t old = head->npages;
    bool ok = buddy_extend_locked(&pool->buddy, head, npages);
    if (ok)
        pool->large_used += (npages - old) << PAGE_SHIFT;
    lock_give(&pool->buddy.lock, pool->thread_safe);
    return ok;
}
