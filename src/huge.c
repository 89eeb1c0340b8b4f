/*
 * huge.c - huge blocks mapped directly (layout in huge.h).
 */
#include "huge.h"

#include "list.h"
#include "prim.h"

static size_t huge_map_size(size_t usable) { return PAGE_SIZE + usable; }

static bool huge_unmap(struct mpool_pool *pool, struct huge *h);
static struct huge *huge_map(struct mpool_pool *pool, size_t map, size_t align, enum buddy_status *status);
static void huge_keep_stuck_locked(struct mpool_pool *pool, struct huge *h);

/* Unmaps cached mapping h (on the cached list); returns the bytes unmapped
 * (0 if the system refused: the mapping is then stuck). */
static size_t cache_drop_locked(struct mpool_pool *pool, struct huge *h)
{
    size_t map = h->mapped;
    LIST_REMOVE(pool->huge.cached, h, next, prev);
    pool->huge.cached_count--;
    pool->huge.cached_bytes -= map;
    if (huge_unmap(pool, h))
        return map;
    huge_keep_stuck_locked(pool, h);
    return 0;
}

/* Unmaps the cached mappings that waited HUGE_CACHE_AGE_MS or more. */
static void cache_age_locked(struct mpool_pool *pool)
{
    uint32_t now = prim_clock_ms();
    struct huge *h = pool->huge.cached;
    while (h) {
        struct huge *next = h->next;
        if ((uint32_t)(now - h->freed_ms) >= HUGE_CACHE_AGE_MS)
            cache_drop_locked(pool, h);
        h = next;
    }
}

/* A cached mapping for a block of usable bytes aligned to align, or NULL.
 * The smallest that fits is taken; one over a quarter larger is cut to the
 * size (its tail unmapped), so a small request does not hold a large
 * mapping's pages. */
static struct huge *cache_take_locked(struct mpool_pool *pool, size_t usable, size_t align)
{
    struct huge *best = NULL;
    size_t map = huge_map_size(usable);
    for (struct huge *h = pool->huge.cached; h; h = h->next)
        if (h->mapped >= map && h->align >= align && (!best || h->mapped < best->mapped))
            best = h;
    if (!best)
        return NULL;
    size_t old_map = best->mapped;
    if (old_map - map > usable / 4) {
        if (!prim_unmap((char *)best + map, old_map - map))
            return NULL; /* cutting the tail was refused: map afresh */
        budget_give(&pool->budget, old_map - map);
        best->mapped = map;
    }
    LIST_REMOVE(pool->huge.cached, best, next, prev);
    pool->huge.cached_count--;
    pool->huge.cached_bytes -= old_map;
    return best;
}

size_t huge_cache_flush(struct mpool_pool *pool)
{
    lock_take(&pool->huge.lock, pool->thread_safe);
    size_t bytes = 0;
    while (pool->huge.cached)
        bytes += cache_drop_locked(pool, pool->huge.cached);
    lock_give(&pool->huge.lock, pool->thread_safe);
    return bytes;
}

void *huge_alloc(struct mpool_pool *pool, size_t size, size_t align, bool *zeroed, enum buddy_status *status)
{
    if (size > SIZE_MAX / 2 || align > SIZE_MAX / 4) {
        *status = BUDDY_NOMEM;
        return NULL;
    }
    size_t usable = align_up(size ? size : 1, PAGE_SIZE);
    size_t map = huge_map_size(usable);
    if (align < REGION_SIZE)
        align = REGION_SIZE;
    lock_take(&pool->huge.lock, pool->thread_safe); /* a huge allocation maps or faults in MiBs: the lock is noise */
    cache_age_locked(pool);
    struct huge *h = cache_take_locked(pool, usable, align);
    lock_give(&pool->huge.lock, pool->thread_safe);
    if (zeroed)
        *zeroed = h == NULL;
    if (!h) {
        h = huge_map(pool, map, align, status);
        if (!h)
            return NULL;
        h->mapped = map;
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

/* A fresh mapping of map bytes whose block (a page in) is aligned to align. */
static struct huge *huge_map(struct mpool_pool *pool, size_t map, size_t align, enum buddy_status *status)
{
    if (!budget_take(&pool->budget, map)) {
        *status = BUDDY_FULL;
        return NULL;
    }
    struct huge *h = prim_map(map, align, PAGE_SIZE);
    if (!h) {
        budget_give(&pool->budget, map);
        *status = BUDDY_NOMEM;
    }
    return h;
}

/* Unmaps without touching the lists; false if the system refused. */
static bool huge_unmap(struct mpool_pool *pool, struct huge *h)
{
    size_t map = h->mapped;
    if (!prim_unmap(h, map))
        return false;
    budget_give(&pool->budget, map);
    return true;
}

/* Keeps a freed block whose unmapping was refused: its pages are given back
 * as far as the system allows, its mapping waits on the stuck list. */
static void huge_keep_stuck_locked(struct mpool_pool *pool, struct huge *h)
{
    (void)prim_decommit(huge_block(h), h->mapped - PAGE_SIZE);
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
    cache_age_locked(pool);
    size_t map = h->mapped;
    if (map <= HUGE_CACHE_BYTES) { /* kept for the next request of its size (huge.h) */
        while (pool->huge.cached &&
               (pool->huge.cached_count >= HUGE_CACHE_COUNT || pool->huge.cached_bytes + map > HUGE_CACHE_BYTES)) {
            struct huge *oldest = pool->huge.cached;
            while (oldest->next)
                oldest = oldest->next;
            cache_drop_locked(pool, oldest);
        }
        h->magic = HUGE_CACHED;
        h->freed_ms = prim_clock_ms();
        LIST_PUSH(pool->huge.cached, h, next, prev);
        pool->huge.cached_count++;
        pool->huge.cached_bytes += map;
    } else if (!huge_unmap(pool, h)) {
        huge_keep_stuck_locked(pool, h);
    }
    lock_give(&pool->huge.lock, pool->thread_safe);
}

/* Unmaps the stuck blocks the system lets go now. */
static size_t huge_trim_locked(struct mpool_pool *pool)
{
    size_t released = 0;
    struct huge *h = pool->huge.stuck;
    while (h) {
        struct huge *next = h->next;
        size_t map = h->mapped;
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
    size_t released = huge_cache_flush(pool);
    lock_take(&pool->huge.lock, pool->thread_safe);
    released += huge_trim_locked(pool);
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
    size_t old_map = h->mapped, map = huge_map_size(usable);
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
    nh->mapped = map;
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
    while (pool->huge.cached)
        cache_drop_locked(pool, pool->huge.cached);
    huge_trim_locked(pool);
}

size_t huge_check_locked(const struct mpool_pool *pool)
{
    size_t problems = 0, n = 0, usable = 0;
    const struct huge *prev = NULL;
    for (const struct huge *h = pool->huge.head; h; h = h->next) {
        if (h->magic != HUGE_MAGIC || h->pool != pool || h->prev != prev ||
            chunk_kind(huge_block(h)) != CHUNK_HUGE || h->usable % PAGE_SIZE != 0 ||
            h->mapped < huge_map_size(h->usable) || h->mapped % PAGE_SIZE != 0 ||
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
    size_t cn = 0, cbytes = 0;
    prev = NULL;
    for (const struct huge *h = pool->huge.cached; h && cn <= HUGE_CACHE_COUNT; h = h->next, cn++) {
        if (h->magic != HUGE_CACHED || h->pool != pool || h->prev != prev || chunk_kind(huge_block(h)) == CHUNK_HUGE)
            problems++;
        cbytes += h->mapped;
        prev = h;
    }
    if (cn != pool->huge.cached_count || cbytes != pool->huge.cached_bytes || cbytes > HUGE_CACHE_BYTES)
        problems++;
    return problems;
}
