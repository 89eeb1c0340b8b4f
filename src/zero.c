/*
 * zero.c - zero-size blocks (rules in zero.h).
 *
 * Finding a free slot: each area remembers the bitmap word where the last
 * search ended (hint) and searches on from there, wrapping once, so a
 * program that keeps a few zero-size blocks live pays one word test per
 * allocation.  An area is full when live == ZERO_SLOTS.
 */
#include "zero.h"

#include <string.h>

#include "prim.h"

static void *slot_address(const struct zero_area *a, size_t i)
{
    return (char *)(uintptr_t)a + ZERO_HEADER_BYTES + i * ZERO_SLOT;
}

/* The slot index of p in a, or ZERO_SLOTS if p is not where a slot starts. */
static size_t slot_index(const struct zero_area *a, const void *p)
{
    uintptr_t off = (uintptr_t)p - (uintptr_t)a;
    if (off < ZERO_HEADER_BYTES || (off - ZERO_HEADER_BYTES) % ZERO_SLOT != 0)
        return ZERO_SLOTS;
    size_t i = (off - ZERO_HEADER_BYTES) / ZERO_SLOT;
    return i < ZERO_SLOTS ? i : ZERO_SLOTS;
}

static bool slot_live(const struct zero_area *a, size_t i)
{
    return (a->bits[i / 64] >> (i % 64)) & 1;
}

bool zero_is_live(const struct zero_area *a, const void *p)
{
    struct mpool_pool *pool = a->pool;
    lock_take(&pool->huge.lock, pool->thread_safe);
    size_t i = slot_index(a, p);
    bool live = i < ZERO_SLOTS && slot_live(a, i);
    lock_give(&pool->huge.lock, pool->thread_safe);
    return live;
}

/* Maps a new area: the header readable and writable, every slot page
 * without access. */
static struct zero_area *area_new(struct mpool_pool *pool)
{
    struct zero_area *a = prim_map(REGION_SIZE, REGION_SIZE, 0);
    if (!a)
        return NULL;
    if (!prim_protect((char *)a + ZERO_HEADER_BYTES, REGION_SIZE - ZERO_HEADER_BYTES, false)) {
        (void)prim_unmap(a, REGION_SIZE);
        return NULL;
    }
    a->magic = ZERO_MAGIC;
    a->pool = pool;
    a->next = pool->zero;
    pool->zero = a;
    chunk_mark(a, CHUNK_ZERO);
    return a;
}

/* Takes a free slot of a (which has one). */
static void *area_take(struct zero_area *a)
{
    const size_t words = ZERO_SLOTS / 64;
    for (size_t n = 0, w = a->hint; n < words; n++, w = w + 1 < words ? w + 1 : 0) {
        if (a->bits[w] != ~(uint64_t)0) {
            unsigned b = (unsigned)__builtin_ctzll(~a->bits[w]);
            a->bits[w] |= (uint64_t)1 << b;
            a->live++;
            a->hint = w;
            return slot_address(a, w * 64 + b);
        }
    }
    mpool_assert(false, "zero_alloc: an area with free slots has none");
    return NULL;
}

void *zero_alloc(struct mpool_pool *pool)
{
    lock_take(&pool->huge.lock, pool->thread_safe);
    struct zero_area *a = pool->zero;
    while (a && a->live == ZERO_SLOTS)
        a = a->next;
    if (!a)
        a = area_new(pool);
    void *p = a ? area_take(a) : NULL;
    if (p)
        __atomic_store_n(&pool->stats.zero_allocs, pool->stats.zero_allocs + 1, __ATOMIC_RELAXED);
    lock_give(&pool->huge.lock, pool->thread_safe);
    return p;
}

bool zero_free(struct zero_area *a, const void *p)
{
    struct mpool_pool *pool = a->pool;
    lock_take(&pool->huge.lock, pool->thread_safe);
    size_t i = slot_index(a, p);
    bool live = i < ZERO_SLOTS && slot_live(a, i);
    if (live) {
        a->bits[i / 64] &= ~((uint64_t)1 << (i % 64));
        a->live--;
    }
    lock_give(&pool->huge.lock, pool->thread_safe);
    return live;
}

size_t zero_live(struct mpool_pool *pool)
{
    size_t n = 0;
    lock_take(&pool->huge.lock, pool->thread_safe);
    for (const struct zero_area *a = pool->zero; a; a = a->next)
        n += a->live;
    lock_give(&pool->huge.lock, pool->thread_safe);
    return n;
}

void zero_reset(struct mpool_pool *pool)
{
    for (struct zero_area *a = pool->zero; a; a = a->next) {
        memset(a->bits, 0, sizeof a->bits);
        a->live = 0;
        a->hint = 0;
    }
}

void zero_release_all(struct mpool_pool *pool)
{
    struct zero_area *a = pool->zero;
    while (a) {
        struct zero_area *next = a->next;
        chunk_mark(a, CHUNK_NONE);
        a->magic = 0;
        (void)prim_unmap(a, REGION_SIZE); /* refused: the area stays behind, unused */
        a = next;
    }
    pool->zero = NULL;
}

size_t zero_check(struct mpool_pool *pool)
{
    size_t problems = 0;
    lock_take(&pool->huge.lock, pool->thread_safe);
    for (const struct zero_area *a = pool->zero; a; a = a->next) {
        size_t n = 0;
        for (size_t w = 0; w < ZERO_SLOTS / 64; w++)
            n += (size_t)__builtin_popcountll(a->bits[w]);
        problems += a->magic != ZERO_MAGIC || a->pool != pool || n != a->live || a->hint >= ZERO_SLOTS / 64;
    }
    lock_give(&pool->huge.lock, pool->thread_safe);
    return problems;
}
