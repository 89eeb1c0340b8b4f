/*
 * huge.c - huge blocks mapped directly (layout in huge.h).
 */
#include "huge.h"

#include "list.h"
#include "prim.h"

static size_t huge_map_size(size_t usable) { return PAGE_SIZE + usable; }

void *huge_alloc(struct mpool_pool *pool, size_t size, size_t align, enum buddy_status *status)
{
    if (size > SIZE_MAX / 2 || align > SIZE_MAX / 4) {
        *status = BUDDY_NOMEM;
        return NULL;
    }
    size_t usable = align_up(size ? size : 1, PAGE_SIZE);
    size_t map = huge_map_size(usable);
    if (align < REGION_SIZE)
        align = REGION_SIZE;
    if (!budget_take(&pool->budget, map)) {
        *status = BUDDY_FULL;
        return NULL;
    }
    struct huge *h = prim_map(map, align, PAGE_SIZE);
    if (!h) {
        budget_give(&pool->budget, map);
        *status = BUDDY_NOMEM;
        return NULL;
    }
    h->magic = HUGE_MAGIC;
    h->pool = pool;
    h->usable = usable;
    h->align = align;
    lock_take(&pool->huge.lock, pool->thread_safe);
    LIST_PUSH(pool->huge.head, h, next, prev);
    pool->huge.count++;
    pool->huge.usable += usable;
    __atomic_store_n(&pool->stats.huge_allocs, pool->stats.huge_allocs + 1, __ATOMIC_RELAXED);
    chunk_mark(huge_block(h), CHUNK_HUGE);
    lock_give(&pool->huge.lock, pool->thread_safe);
    *status = BUDDY_OK;
    return huge_block(h);
}

/* Unmaps without touching the lists; false if the system refused. */
static bool huge_unmap(struct mpool_pool *pool, struct huge *h)
{
    size_t map = huge_map_size(h->usable);
    if (!prim_unmap(h, map))
        return false;
    budget_give(&pool->budget, map);
    return true;
}

/* Keeps a freed block whose unmapping was refused: its pages are given back
 * as far as the system allows, its mapping waits on the stuck list. */
static void huge_keep_stuck_locked(struct mpool_pool *pool, struct huge *h)
{
    (void)prim_decommit(huge_block(h), h->usable);
    h->magic = HUGE_STUCK;
    LIST_PUSH(pool->huge.stuck, h, next, prev);
}

void huge_free(struct mpool_pool *pool, struct huge *h)
{
    lock_take(&pool->huge.lock, pool->thread_safe);
    LIST_REMOVE(pool->huge.head, h, next, prev);
    pool->huge.count--;
    pool->huge.usable -= h->usable;
    chunk_mark(huge_block(h), CHUNK_NONE);
    h->magic = 0;
    if (!huge_unmap(pool, h))
        huge_keep_stuck_locked(pool, h);
    lock_give(&pool->huge.lock, pool->thread_safe);
}

/* Unmaps the stuck blocks the system lets go now. */
static size_t huge_trim_locked(struct mpool_pool *pool)
{
    size_t released = 0;
    struct huge *h = pool->huge.stuck;
    while (h) {
        struct huge *next = h->next;
        size_t map = huge_map_size(h->usable);
        LIST_REMOVE(pool->huge.stuck, h, next, prev);
        if (huge_unmap(pool, h))
            released += map;
        else
            LIST_PUSH(pool->huge.stuck, h, next, prev);
        h = next;
    }
    return released;
}

size_t huge_trim(struct mpool_pool *pool)
{
    lock_take(&pool->huge.lock, pool->thread_safe);
    size_t released = huge_trim_locked(pool);
    lock_give(&pool->huge.lock, pool->thread_safe);
    return released;
}

void *huge_resize(struct mpool_pool *pool, struct huge *h, size_t size, enum buddy_status *status)
{
    if (size > SIZE_MAX / 2) {
        *status = BUDDY_NOMEM;
        return NULL;
    }
    size_t usable = align_up(size ? size : 1, PAGE_SIZE);
    size_t old_map = huge_map_size(h->usable), map = huge_map_size(usable);
    if (map > old_map && !budget_take(&pool->budget, map - old_map)) {
        *status = BUDDY_FULL;
        return NULL;
    }
    lock_take(&pool->huge.lock, pool->thread_safe);
    void *old_block = huge_block(h);
    struct huge *nh = prim_remap(h, old_map, map, h->align, PAGE_SIZE);
    if (!nh) {
        lock_give(&pool->huge.lock, pool->thread_safe);
        if (map <= old_map) { /* a refused shrink: the block still serves the request */
            *status = BUDDY_OK;
            return old_block;
        }
        budget_give(&pool->budget, map - old_map);
        *status = BUDDY_NOMEM;
        return NULL;
    }
    if (nh != h) { /* moved: the header came along, relink it */
        chunk_mark(old_block, CHUNK_NONE);
        if (nh->prev)
            nh->prev->next = nh;
        else
            pool->huge.head = nh;
        if (nh->next)
            nh->next->prev = nh;
        chunk_mark(huge_block(nh), CHUNK_HUGE);
    }
    pool->huge.usable = pool->huge.usable - nh->usable + usable;
    nh->usable = usable;
    lock_give(&pool->huge.lock, pool->thread_safe);
    if (map < old_map)
        budget_give(&pool->budget, old_map - map);
    *status = BUDDY_OK;
    return huge_block(nh);
}

void huge_release_all(struct mpool_pool *pool)
{
    struct huge *h = pool->huge.head;
    while (h) {
        struct huge *next = h->next;
        chunk_mark(huge_block(h), CHUNK_NONE);
        h->magic = 0;
        if (!huge_unmap(pool, h))
            huge_keep_stuck_locked(pool, h);
        h = next;
    }
    pool->huge.head = NULL;
    pool->huge.count = 0;
    pool->huge.usable = 0;
    huge_trim_locked(pool);
}

size_t huge_check_locked(const struct mpool_pool *pool)
{
    size_t problems = 0, n = 0, usable = 0;
    const struct huge *prev = NULL;
    for (const struct huge *h = pool->huge.head; h; h = h->next) {
        if (h->magic != HUGE_MAGIC || h->pool != pool || h->prev != prev ||
            chunk_kind(huge_block(h)) != CHUNK_HUGE || h->usable % PAGE_SIZE != 0 ||
            ((uintptr_t)huge_block(h) & (h->align - 1)) != 0)
            problems++;
        usable += h->usable;
        prev = h;
        if (++n > pool->huge.count) {
            problems++;
            break;
        }
    }
    if (n != pool->huge.count || usable != pool->huge.usable)
        problems++;
    return problems;
}
