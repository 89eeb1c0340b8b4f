/*
 * tcache.c - the slow halves of the per-thread caches (tcache.h): making a
 * thread's cache for a pool, refilling and flushing lists under the class
 * lock, the registry of every pool's caches, and a thread's exit.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "tcache.h"

#include <pthread.h>
#include <time.h>

#include "list.h"
#include "prim.h"
#include "slab.h"

_Thread_local struct tcache_thread mpool_tcache_thread __attribute__((tls_model("initial-exec")));

static _Thread_local bool thread_registered __attribute__((tls_model("initial-exec")));
static mpool_lock_t tcache_lock; /* every pool's list of caches; zero: free */
static uint64_t next_pool_id = 1; /* atomic */
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static bool exit_key_ok;

static size_t tcache_bytes(void) { return align_up(sizeof(struct tcache), PAGE_SIZE); }

/* How many blocks of bsize bytes a list may hold (0: not cached). */
static uint32_t bin_max(size_t bsize)
{
    if (bsize < 2 * sizeof(uint64_t)) /* no second word for the mark */
        return 0;
    size_t n = TCACHE_BIN_BYTES / bsize;
    return (uint32_t)(n < 2 ? 2 : n > TCACHE_BIN_MAX ? TCACHE_BIN_MAX : n);
}

/* The slab holding p, a block start of a live slab. */
static struct page *slab_of_block(void *p)
{
    return page_head(region_page_of(region_of(p), p));
}

/* Empties list b, found broken (a block on it was pushed twice).  The blocks
 * on it stay marked free and are not used again. */
static void drop_list(struct tcache_bin *b)
{
    b->head = NULL;
    tcache_set_count(b, 0);
}

/* Reports the double free of block p found on a cache list (never under a
 * lock of ours: the pool's logger may call into mpool). */
static void report_double_free(struct mpool_pool *pool, const void *p, const char *who)
{
    error_raise(&pool->policy, MPOOL_ERR_INVALID_POINTER, 0,
                "%s: double free detected: block %p was freed twice (found again on a thread cache)", who, p);
}

void tcache_corrupt(struct mpool_pool *pool, struct tcache *tc, unsigned cls, const void *p, const char *who)
{
    drop_list(&tc->bin[cls]);
    report_double_free(pool, p, who);
}

/* Gives up to n blocks of list cls back to their slabs under the class lock,
 * marked as slab blocks.  A block without the cache mark was pushed twice:
 * the rest of the list is dropped, and the block returned for the caller to
 * report once it holds no lock (else NULL). */
static void **bin_give_back(struct mpool_pool *pool, struct tcache_bin *b, unsigned cls, uint32_t n)
{
    struct sclass *c = &pool->cls[cls];
    uint32_t moved = 0;
    void **bad = NULL;
    lock_take(&c->lock, pool->thread_safe);
    while (moved < n && b->head) {
        void **block = b->head;
        if (((uint64_t *)block)[1] != pool->tc_key) {
            bad = block;
            break;
        }
        b->head = block[0];
        ((uint64_t *)block)[1] = pool_slab_mark(pool);
        slab_push_locked(pool, slab_of_block(block), block);
        moved++;
    }
    lock_give(&c->lock, pool->thread_safe);
    tcache_set_count(b, b->count - moved);
    if (bad)
        drop_list(b);
    return bad;
}

/* Gives every list of tc back; returns a block found freed twice, or NULL. */
static void **flush_all(struct mpool_pool *pool, struct tcache *tc)
{
    void **bad = NULL;
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
        if (tc->bin[cls].head) {
            void **b = bin_give_back(pool, &tc->bin[cls], cls, tc->bin[cls].count);
            bad = bad ? bad : b;
        }
    return bad;
}

/* A double free found while tcache_lock was held, reported after it. */
struct found {
    struct mpool_pool *pool;
    void **block;
};

static void report_found(const struct found *f)
{
    if (f->block)
        report_double_free(f->pool, f->block, "mpool_free");
}

/* Takes tc off its pool's list after flushing it (if the pool still exists).
 * Caller holds tcache_lock; a double free found is left in *found. */
static void detach_locked(struct tcache *tc, struct found *found)
{
    struct mpool_pool *pool = tc->pool;
    if (!pool)
        return;
    void **bad = flush_all(pool, tc);
    if (bad && !found->block)
        *found = (struct found){pool, bad};
    LIST_REMOVE(pool->tcaches, tc, next, prev);
    tc->pool = NULL;
}

static void thread_exit(void *arg)
{
    struct tcache_thread *t = arg;
    struct found found = {NULL, NULL};
    t->exiting = true;
    lock_take(&tcache_lock, true);
    for (unsigned i = 0; i < TCACHE_SLOTS; i++) {
        struct tcache *tc = t->tc[i];
        t->id[i] = 0;
        t->tc[i] = NULL;
        if (tc) {
            detach_locked(tc, &found);
            prim_unmap(tc, tcache_bytes());
        }
    }
    lock_give(&tcache_lock, true);
    report_found(&found);
}

static void make_exit_key(void)
{
    exit_key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
}

struct tcache *tcache_attach(struct mpool_pool *pool)
{
    struct tcache_thread *t = &mpool_tcache_thread;
    if (t->exiting)
        return NULL;
    if (!thread_registered) { /* the exit handler needs a non-NULL value */
        pthread_once(&exit_once, make_exit_key);
        if (!exit_key_ok || pthread_setspecific(exit_key, t) != 0)
            return NULL;
        thread_registered = true;
    }
    struct tcache *tc = prim_map(tcache_bytes(), PAGE_SIZE, 0);
    if (!tc)
        return NULL;
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
        tc->bin[cls].max = bin_max(pool->cls[cls].block_size);
    unsigned slot = (unsigned)(pool->id % TCACHE_SLOTS);
    struct tcache *old = t->tc[slot];
    struct found found = {NULL, NULL};
    lock_take(&tcache_lock, true);
    if (old)
        detach_locked(old, &found);
    tc->pool = pool;
    LIST_PUSH(pool->tcaches, tc, next, prev);
    lock_give(&tcache_lock, true);
    t->id[slot] = pool->id;
    t->tc[slot] = tc;
    if (old)
        prim_unmap(old, tcache_bytes());
    report_found(&found);
    return tc;
}

/* Takes the next block of class cls for a cache from the slabs (under the
 * class lock): every block on a slab's list carries the slab mark, so one
 * without it was freed twice (it is on a cache list too, or was handed out
 * from one): it is left out, never to be used, and *bad remembers it. */
static void **take_checked_locked(struct mpool_pool *pool, unsigned cls, bool marks, bool any_slab,
                                  enum buddy_status *status, void ***bad)
{
    for (;;) {
        void **block;
        if (any_slab) {
            block = slab_pop_locked(pool, cls, status);
        } else {
            struct page *pg = pool->current[cls];
            block = pg->free;
            if (block)
                pg->free = block[0];
        }
        if (!block || !marks || ((uint64_t *)block)[1] == pool_slab_mark(pool))
            return block;
        *bad = block;
    }
}

void *tcache_refill(struct mpool_pool *pool, struct tcache *tc, unsigned cls, enum buddy_status *status)
{
    struct tcache_bin *b = &tc->bin[cls];
    struct sclass *c = &pool->cls[cls];
    bool marks = c->block_size >= 2 * sizeof(uint64_t);
    void **bad = NULL;
    lock_take(&c->lock, pool->thread_safe);
    void **first = take_checked_locked(pool, cls, marks, true, status, &bad);
    uint32_t n = 0;
    /* Half a list more, from the current slab only: caching never takes a new
     * slab from the page allocator. */
    while (first && n < b->max / 2) {
        void **block = take_checked_locked(pool, cls, marks, false, status, &bad);
        if (!block)
            break;
        block[0] = b->head;
        ((uint64_t *)block)[1] = pool->tc_key;
        b->head = block;
        n++;
    }
    lock_give(&c->lock, pool->thread_safe);
    if (n)
        tcache_set_count(b, b->count + n);
    if (bad)
        error_raise(&pool->policy, MPOOL_ERR_INVALID_POINTER, 0,
                    "mpool_alloc: double free detected: block %p was freed twice (found on a slab without its mark)",
                    (void *)bad);
    if (!first)
        return NULL;
    if (marks)
        first[1] = NULL; /* live blocks never hold a mark */
    return first;
}

bool tcache_flush_half(struct mpool_pool *pool, struct tcache *tc, unsigned cls)
{
    struct tcache_bin *b = &tc->bin[cls];
    if (!b->max)
        return false;
    void **bad = bin_give_back(pool, b, cls, b->count - b->max / 2);
    if (bad)
        report_double_free(pool, bad, "mpool_free");
    return true;
}

/* ---- The pool's side ---------------------------------------------------- */

static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A fresh key: unpredictable enough that no program holds it by chance,
 * never 0 (what a block handed out holds) and never a small number. */
static uint64_t new_key(const struct mpool_pool *pool)
{
    static uint64_t counter; /* atomic */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uintptr_t)pool ^
                    (uintptr_t)&ts ^ __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 0x2545f4914f6cdd1dULL;
    return splitmix(seed) | (1ULL << 63);
}

void tcache_pool_init(struct mpool_pool *pool)
{
    pool->id = __atomic_fetch_add(&next_pool_id, 1, __ATOMIC_RELAXED);
    pool->tc_key = new_key(pool);
    pool->tcaches = NULL;
}

void tcache_pool_switch(struct mpool_pool *pool)
{
    struct found found = {pool, NULL};
    lock_take(&tcache_lock, true);
    for (struct tcache *tc = pool->tcaches; tc; tc = tc->next) {
        void **bad = flush_all(pool, tc);
        found.block = found.block ? found.block : bad;
    }
    pool->tc_key = new_key(pool);
    lock_give(&tcache_lock, true);
    report_found(&found);
}

void tcache_pool_mark_slabs(struct mpool_pool *pool)
{
    if (!pool->tcache)
        return;
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        struct sclass *c = &pool->cls[cls];
        if (c->block_size < 2 * sizeof(uint64_t))
            continue;
        for (struct page *pg = c->slabs; pg; pg = pg->cnext)
            for (uint64_t *f = pg->free; f; f = *(uint64_t **)f)
                f[1] = pool_slab_mark(pool);
    }
}

void tcache_pool_reset(struct mpool_pool *pool)
{
    lock_take(&tcache_lock, true);
    for (struct tcache *tc = pool->tcaches; tc; tc = tc->next)
        for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
            tc->bin[cls].head = NULL;
            tcache_set_count(&tc->bin[cls], 0);
        }
    pool->tc_key = new_key(pool);
    lock_give(&tcache_lock, true);
}

void tcache_pool_destroy(struct mpool_pool *pool)
{
    lock_take(&tcache_lock, true);
    while (pool->tcaches) {
        struct tcache *tc = pool->tcaches;
        LIST_REMOVE(pool->tcaches, tc, next, prev);
        tc->pool = NULL;
    }
    lock_give(&tcache_lock, true);
}

size_t tcache_flush_mine(struct mpool_pool *pool)
{
    struct tcache_thread *t = &mpool_tcache_thread;
    unsigned slot = (unsigned)(pool->id % TCACHE_SLOTS);
    if (!pool->tcache || t->id[slot] != pool->id)
        return 0;
    struct tcache *tc = t->tc[slot];
    size_t n = 0;
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
        n += tc->bin[cls].count;
    struct found found = {pool, flush_all(pool, tc)};
    report_found(&found);
    return n;
}

size_t tcache_cached_bytes(const struct mpool_pool *pool)
{
    size_t bytes = 0;
    lock_take(&tcache_lock, true);
    for (const struct tcache *tc = pool->tcaches; tc; tc = tc->next)
        for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
            bytes += (size_t)__atomic_load_n(&tc->bin[cls].count, __ATOMIC_RELAXED) * pool->cls[cls].block_size;
    lock_give(&tcache_lock, true);
    return bytes;
}

void tcache_fork_prepare(void)
{
    lock_take(&tcache_lock, true);
}

void tcache_fork_release(void)
{
    lock_give(&tcache_lock, true);
}
