/*
 * test_heap.c - per-thread heaps (heap.h, heap.c) and frees across threads
 * (slab.h), with the internal structures inspected through pool.h and
 * heap.h: every class allocated by one thread and freed by others while the
 * owner keeps allocating; a parked slab that other threads free into comes
 * back through its heap's notifications; a thread's exit leaves its heap to
 * the next thread, with blocks still live elsewhere; 10 000 threads keep the
 * number of heaps and the memory bounded; fork while other threads
 * allocate; a randomized run of 8 threads sharing two pools; double frees
 * across threads; destroy, reset, mode switches and slot eviction.
 *
 * Runs under ThreadSanitizer too (make test: TSAN_TESTS).
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mpool.h>

#include "heap.h"
#include "pool.h"
#include "region.h"
#include "sizeclass.h"
#include "slab.h"
#include "testutil.h"

static void setup(void)
{
    pattern_init();
}

TestSuite(heap, .init = setup, .timeout = 300);

static mpool_t *make_pool(void)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.thread_safe = true;
    cfg.on_error = MPOOL_ON_ERROR_RETURN;
    return create_or_die(&cfg);
}

/* Heaps of a quiet pool, and how many of them a thread owns. */
static size_t heaps_of(const mpool_t *pool, size_t *owned)
{
    size_t n = 0, o = 0;
    for (const struct heap *h = pool->heaps; h; h = h->next) {
        n++;
        o += h->owner != NULL;
    }
    if (owned)
        *owned = o;
    return n;
}

static void assert_refused(const char *what)
{
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER, "%s: last error %d", what, mpool_last_error());
}

static struct page *slab_of(const void *p)
{
    struct region *r = region_find(p);
    cr_assert_not_null(r);
    struct page *h = region_run_of(r, p);
    cr_assert(h && h->kind == PAGE_SLAB);
    return h;
}

/* ---- a queue of blocks between threads ----------------------------------- */

#define QCAP 4096

struct queue {
    pthread_mutex_t lock;
    void *item[QCAP];
    size_t size[QCAP];
    uint64_t id[QCAP];
    size_t head, count;
    bool closed;
};

static void queue_init(struct queue *q)
{
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
}

static bool queue_put(struct queue *q, void *p, size_t size, uint64_t id)
{
    pthread_mutex_lock(&q->lock);
    bool ok = q->count < QCAP;
    if (ok) {
        size_t at = (q->head + q->count++) % QCAP;
        q->item[at] = p;
        q->size[at] = size;
        q->id[at] = id;
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

/* 1: got one; 0: empty for now; -1: empty and closed. */
static int queue_get(struct queue *q, void **p, size_t *size, uint64_t *id)
{
    pthread_mutex_lock(&q->lock);
    int r = q->count ? 1 : q->closed ? -1 : 0;
    if (r == 1) {
        *p = q->item[q->head];
        *size = q->size[q->head];
        *id = q->id[q->head];
        q->head = (q->head + 1) % QCAP;
        q->count--;
    }
    pthread_mutex_unlock(&q->lock);
    return r;
}

static void queue_close(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_mutex_unlock(&q->lock);
}

/* ---- every class freed by other threads while the owner allocates -------- */

struct xfree {
    mpool_t *pool;
    struct queue *q;
    size_t blocks;
    bool failed;
};

static void *owner_thread(void *arg)
{
    struct xfree *x = arg;
    uint64_t id = 0;
    void *mine[64];
    size_t nmine = 0;
    for (size_t i = 0; i < x->blocks && !x->failed; i++) {
        unsigned cls = 1 + (unsigned)(i % (CLASS_COUNT - 1));
        size_t size = sizeclass_size(cls);
        void *p = mpool_alloc(x->pool, size);
        if (!p) {
            x->failed = true;
            break;
        }
        size_t fill = size < 256 ? size : 256;
        pattern_fill(p, ++id, fill);
        if (i % 4 == 3) { /* the owner frees some of its own, too */
            if (nmine == 64) {
                while (nmine)
                    mpool_free(x->pool, mine[--nmine]);
            }
            mine[nmine++] = p;
            continue;
        }
        while (!queue_put(x->q, p, fill, id))
            sched_yield();
    }
    while (nmine)
        mpool_free(x->pool, mine[--nmine]);
    queue_close(x->q);
    return NULL;
}

static void *freer_thread(void *arg)
{
    struct xfree *x = arg;
    void *p;
    size_t size;
    uint64_t id;
    int r;
    while ((r = queue_get(x->q, &p, &size, &id)) >= 0) {
        if (r == 0) {
            sched_yield();
            continue;
        }
        if (!pattern_ok(p, id, size))
            x->failed = true;
        mpool_free(x->pool, p);
    }
    return NULL;
}

Test(heap, every_class_freed_by_other_threads_while_the_owner_allocates)
{
    mpool_t *pool = make_pool();
    static struct queue q;
    queue_init(&q);
    struct xfree x = {pool, &q, test_scaled(60000, 2000), false};
    pthread_t owner, freers[2];
    cr_assert_eq(pthread_create(&owner, NULL, owner_thread, &x), 0);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&freers[i], NULL, freer_thread, &x), 0);
    pthread_join(owner, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(freers[i], NULL);
    cr_assert_not(x.failed, "a block changed between threads, or an allocation failed");
    cr_assert_eq(mpool_get_usage(pool).used, 0, "used %zu after every block was freed",
                 mpool_get_usage(pool).used);
    cr_assert_eq(mpool_check(pool), 0);
    size_t owned;
    heaps_of(pool, &owned);
    cr_assert_eq(owned, 0, "exited threads still own heaps");
    mpool_destroy(pool);
}

/* ---- a parked slab comes back through its notification ------------------- */

struct free_list {
    mpool_t *pool;
    void **blocks;
    size_t n;
};

static void *free_them(void *arg)
{
    struct free_list *f = arg;
    for (size_t i = 0; i < f->n; i++)
        mpool_free(f->pool, f->blocks[i]);
    return NULL;
}

Test(heap, parked_slab_freed_into_by_another_thread_is_reused)
{
    mpool_t *pool = make_pool();
    void *first = mpool_alloc(pool, 512);
    struct page *s = slab_of(first);
    size_t cap = s->capacity;
    void **blocks = calloc(cap, sizeof *blocks);
    blocks[0] = first;
    for (size_t i = 1; i < cap; i++)
        cr_assert_eq(slab_of(blocks[i] = mpool_alloc(pool, 512)), s);
    void *next = mpool_alloc(pool, 512); /* s is parked */
    struct heap *h = heap_mine(pool);
    cr_assert_eq(s->flags, PG_FULL);
    cr_assert_eq(s->thread_free, SLAB_NOTIFY);
    struct free_list f = {pool, blocks, 3};
    pthread_t tid;
    cr_assert_eq(pthread_create(&tid, NULL, free_them, &f), 0);
    pthread_join(tid, NULL);
    cr_assert_eq(h->remote_full, s, "the remote free did not notify the owner");
    cr_assert_eq(s->thread_free & SLAB_NOTIFY, 0);
    cr_assert_eq(mpool_check(pool), 0);
    /* The owner frees into it before taking the notification: it stays
     * parked (the stack brings it back), its block on local_free. */
    mpool_free(pool, blocks[5]);
    cr_assert_eq(s->flags, PG_FULL);
    cr_assert_eq(s->local_free, blocks[5]);
    cr_assert_eq(mpool_check(pool), 0, "a notified parked slab with local frees is a sound state");
    /* Once the current slab is full, the notified slab's blocks come back. */
    struct page *t = slab_of(next);
    for (size_t i = 1; i < t->capacity; i++)
        cr_assert_eq(slab_of(mpool_alloc(pool, 512)), t);
    void *again[4];
    for (int i = 0; i < 4; i++) {
        again[i] = mpool_alloc(pool, 512);
        cr_assert_eq(slab_of(again[i]), s, "block %d did not come from the notified slab", i);
    }
    cr_assert_null(h->remote_full);
    cr_assert_eq(mpool_check(pool), 0);
    free(blocks);
    mpool_destroy(pool);
}

/* Remote frees count themselves in thread_free's word, and a collect that
 * finds them makes them the free list whole, leaving local_free for later. */
Test(heap, remote_frees_are_counted_and_collected_whole)
{
    mpool_t *pool = make_pool();
    void *first = mpool_alloc(pool, 512);
    struct page *s = slab_of(first);
    size_t cap = s->capacity;
    cr_assert_geq(cap, 16);
    void **blocks = calloc(cap, sizeof *blocks);
    blocks[0] = first;
    for (size_t i = 1; i < cap; i++)
        cr_assert_eq(slab_of(blocks[i] = mpool_alloc(pool, 512)), s);
    cr_assert_null(s->free, "every block of the current slab is handed out");
    mpool_free(pool, blocks[10]);
    cr_assert_eq(s->local_free, blocks[10]);
    struct free_list f = {pool, blocks, 3};
    pthread_t tid;
    cr_assert_eq(pthread_create(&tid, NULL, free_them, &f), 0);
    pthread_join(tid, NULL);
    uintptr_t tf = __atomic_load_n(&s->thread_free, __ATOMIC_ACQUIRE);
    cr_assert_eq(slab_tf_count(tf), 3, "thread_free counts %u blocks, 3 were pushed", slab_tf_count(tf));
    cr_assert_eq(slab_tf_list(tf), blocks[2], "the last block pushed heads the list");
    cr_assert_eq(tf & SLAB_FLAGS, 0);
    cr_assert_eq(mpool_check(pool), 0);
    /* The owner's next allocations take the three (newest first), then its
     * own free. */
    for (int i = 2; i >= 0; i--) {
        void *p = mpool_alloc(pool, 512);
        cr_assert_eq(p, blocks[i], "allocation %d did not take the remote list in order", 2 - i);
        cr_assert_eq(s->local_free, blocks[10], "local_free was left for the next collect");
        cr_assert_eq(__atomic_load_n(&s->thread_free, __ATOMIC_ACQUIRE), 0);
    }
    cr_assert_eq(mpool_check(pool), 0, "used matches the lists after the counted collect");
    cr_assert_eq(mpool_alloc(pool, 512), blocks[10]);
    cr_assert_null(s->local_free);
    cr_assert_eq(mpool_check(pool), 0);
    for (size_t i = 0; i < cap; i++)
        mpool_free(pool, blocks[i]);
    cr_assert_eq(mpool_check(pool), 0);
    free(blocks);
    mpool_destroy(pool);
}

/* Two parked slabs come back on the queue when an eighth of each is free;
 * when the current slab runs dry the refill takes the one queued first. */
Test(heap, refill_takes_the_oldest_queued_slab)
{
    mpool_t *pool = make_pool();
    struct page *slab[3];
    size_t cap = 0;
    void **blocks[2];
    for (int k = 0; k < 3; k++) {
        void *b = mpool_alloc(pool, 512);
        slab[k] = slab_of(b);
        if (k == 2)
            break;
        cap = slab[k]->capacity;
        blocks[k] = calloc(cap, sizeof(void *));
        blocks[k][0] = b;
        for (size_t i = 1; i < cap; i++)
            cr_assert_eq(slab_of(blocks[k][i] = mpool_alloc(pool, 512)), slab[k]);
    }
    cr_assert_eq(slab[0]->flags, PG_FULL);
    cr_assert_eq(slab[1]->flags, PG_FULL);
    size_t eighth = cap / 8;
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < eighth; i++)
            mpool_free(pool, blocks[k][i]);
        cr_assert_eq(slab[k]->flags, PG_QUEUED, "slab %d was not queued again at an eighth free", k);
    }
    struct heap *h = heap_mine(pool);
    cr_assert_eq(h->queue_last[slab[0]->cls], slab[0], "the slab queued first is the oldest");
    cr_assert_eq(mpool_check(pool), 0);
    for (size_t i = 1; i < slab[2]->capacity; i++) /* the current slab runs dry */
        cr_assert_eq(slab_of(mpool_alloc(pool, 512)), slab[2]);
    void *p = mpool_alloc(pool, 512);
    cr_assert_eq(slab_of(p), slab[0], "the refill took a newer queued slab, not the oldest");
    cr_assert_eq(slab[1]->flags, PG_QUEUED);
    cr_assert_eq(mpool_check(pool), 0);
    for (int k = 0; k < 2; k++)
        free(blocks[k]);
    mpool_destroy(pool);
}

/* ---- thread exit --------------------------------------------------------- */

struct exiting {
    mpool_t *pool;
    void **blocks;
    size_t n;
    struct heap *heap;
};

static void *alloc_and_exit(void *arg)
{
    struct exiting *e = arg;
    for (size_t i = 0; i < e->n; i++) {
        e->blocks[i] = mpool_alloc(e->pool, 24 + (i % 7) * 40);
        pattern_fill(e->blocks[i], i + 1, 24);
    }
    e->heap = heap_mine(e->pool);
    return NULL;
}

Test(heap, a_thread_exit_leaves_its_heap_to_the_next_thread)
{
    mpool_t *pool = make_pool();
    enum { N = 2000 };
    void **blocks = calloc(N, sizeof *blocks);
    struct exiting e = {pool, blocks, N, NULL};
    pthread_t tid;
    cr_assert_eq(pthread_create(&tid, NULL, alloc_and_exit, &e), 0);
    pthread_join(tid, NULL);
    cr_assert_not_null(e.heap);
    cr_assert_null(e.heap->owner, "an exited thread's heap is still owned");
    cr_assert_eq(mpool_check(pool), 0);
    /* The blocks are live; this thread (not the owner) frees half of them. */
    for (size_t i = 0; i < N; i++)
        cr_assert(pattern_ok(blocks[i], i + 1, 24) && mpool_owns(pool, blocks[i]));
    for (size_t i = 0; i < N; i += 2)
        mpool_free(pool, blocks[i]);
    cr_assert_eq(mpool_check(pool), 0);
    /* The next thread adopts the heap whole and reuses what was freed. */
    size_t before = heaps_of(pool, NULL);
    void **more = calloc(N, sizeof *more);
    struct exiting e2 = {pool, more, N, NULL};
    cr_assert_eq(pthread_create(&tid, NULL, alloc_and_exit, &e2), 0);
    pthread_join(tid, NULL);
    cr_assert_eq(heaps_of(pool, NULL), before, "a new thread made a heap though one was ownerless");
    size_t reused = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t k = 0; k < N; k += 2)
            reused += more[i] == blocks[k];
    cr_assert_gt(reused, 0, "no block freed into the exited thread's slabs was reused");
    for (size_t i = 1; i < N; i += 2)
        cr_assert(pattern_ok(blocks[i], i + 1, 24), "a live block changed");
    for (size_t i = 1; i < N; i += 2)
        mpool_free(pool, blocks[i]);
    for (size_t i = 0; i < N; i++)
        mpool_free(pool, more[i]);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    free(blocks);
    free(more);
    mpool_destroy(pool);
}

static void *small_life(void *arg)
{
    mpool_t *pool = arg;
    void *p[32];
    for (int i = 0; i < 32; i++)
        p[i] = mpool_alloc(pool, 16 + 32 * (size_t)i);
    for (int i = 0; i < 32; i++)
        mpool_free(pool, p[i]);
    void *q = malloc(100); /* the default pool too */
    free(q);
    return NULL;
}

/* 10 000 threads, created and joined a few at a time, each allocating: the
 * pool keeps as many heaps as threads ran at once, and its memory stays put. */
Test(heap, ten_thousand_threads_stay_bounded)
{
    mpool_t *pool = make_pool();
    size_t threads = test_scaled(10000, 200);
    enum { AT_ONCE = 4 };
    size_t total_after_first = 0;
    for (size_t done = 0; done < threads; done += AT_ONCE) {
        pthread_t tid[AT_ONCE];
        for (int i = 0; i < AT_ONCE; i++)
            cr_assert_eq(pthread_create(&tid[i], NULL, small_life, pool), 0);
        for (int i = 0; i < AT_ONCE; i++)
            pthread_join(tid[i], NULL);
        if (done == 0)
            total_after_first = mpool_get_usage(pool).total;
    }
    size_t owned, heaps = heaps_of(pool, &owned);
    cr_assert_leq(heaps, AT_ONCE + 1, "%zu heaps after %zu threads", heaps, threads);
    cr_assert_eq(owned, 0);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_leq(mpool_get_usage(pool).total, 2 * total_after_first + 4 * MiB,
                  "the pool grew from %zu to %zu bytes", total_after_first, mpool_get_usage(pool).total);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* ---- fork ---------------------------------------------------------------- */

static volatile int fork_stop; /* atomic */

static void *churn_default(void *arg)
{
    (void)arg;
    void *p[64] = {0};
    unsigned i = 0;
    while (!__atomic_load_n(&fork_stop, __ATOMIC_RELAXED)) {
        unsigned k = i++ % 64;
        mpool_free(NULL, p[k]);
        p[k] = mpool_alloc(NULL, 16 + (i * 40) % 3000);
    }
    for (int k = 0; k < 64; k++)
        mpool_free(NULL, p[k]);
    return NULL;
}

Test(heap, fork_while_other_threads_allocate)
{
    /* The default pool exists before the threads start (as it does in any
     * program using the drop-in: the loader's first malloc makes it), since a
     * fork while another thread is inside its one-time set-up would leave
     * the child waiting for that set-up forever. */
    mpool_free(NULL, mpool_alloc(NULL, 16));
    pthread_t tid[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&tid[i], NULL, churn_default, NULL), 0);
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            void *p[200];
            for (int i = 0; i < 200; i++)
                if (!(p[i] = mpool_alloc(NULL, 16 + 8 * (size_t)i)))
                    _exit(2);
            for (int i = 0; i < 200; i++)
                mpool_free(NULL, p[i]);
            _exit(mpool_check(NULL) == 0 ? 0 : 3);
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child of round %d: status %d", round, status);
    }
    __atomic_store_n(&fork_stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++)
        pthread_join(tid[i], NULL);
}

/* ---- 8 threads sharing two pools ----------------------------------------- */

#define SHARED_SLOTS 512

struct shared {
    mpool_t *pools[2];
    void *slot[SHARED_SLOTS];        /* atomic: exchanged whole */
    size_t ops;
    bool failed;
};

/* A block in a slot carries its size and pool in its first 16 bytes and a
 * pattern after. */
struct tag {
    uint32_t size;
    uint32_t pool;
    uint64_t id;
};

static void *shared_worker(void *arg)
{
    struct shared *s = arg;
    rng_t rng;
    rng_seed(&rng, (uint64_t)(uintptr_t)&rng);
    for (size_t op = 0; op < s->ops && !__atomic_load_n(&s->failed, __ATOMIC_RELAXED); op++) {
        size_t k = rng_below(&rng, SHARED_SLOTS);
        unsigned which = (unsigned)rng_below(&rng, 2);
        void *mine = NULL;
        if (rng_below(&rng, 2)) {
            size_t size = rng_below(&rng, 30) == 0 ? rng_range(&rng, 1025, 40000) : rng_logrange(&rng, 16, 1024);
            mine = mpool_alloc(s->pools[which], size);
            if (!mine) {
                __atomic_store_n(&s->failed, true, __ATOMIC_RELAXED);
                break;
            }
            struct tag t = {(uint32_t)size, which, rng_next(&rng)};
            memcpy(mine, &t, sizeof t);
            pattern_fill_range(mine, t.id, sizeof t, size < 200 ? size : 200);
        }
        void *old = __atomic_exchange_n(&s->slot[k], mine, __ATOMIC_ACQ_REL);
        if (old) {
            struct tag t;
            memcpy(&t, old, sizeof t);
            size_t end = t.size < 200 ? t.size : 200;
            const unsigned char *want = pattern_table + pattern_shift(t.id);
            if (t.pool > 1 || memcmp((char *)old + sizeof t, want + sizeof t, end - sizeof t) != 0 ||
                !mpool_owns(s->pools[t.pool], old))
                __atomic_store_n(&s->failed, true, __ATOMIC_RELAXED);
            if (rng_below(&rng, 8) == 0)
                old = mpool_realloc(s->pools[t.pool], old, t.size + 64);
            mpool_free(s->pools[t.pool], old);
        }
    }
    return NULL;
}

Test(heap, eight_threads_share_two_pools)
{
    static struct shared s;
    memset(&s, 0, sizeof s);
    s.pools[0] = make_pool();
    s.pools[1] = make_pool();
    s.ops = test_scaled(40000, 1000);
    enum { T = 8 };
    pthread_t tid[T];
    for (int i = 0; i < T; i++)
        cr_assert_eq(pthread_create(&tid[i], NULL, shared_worker, &s), 0);
    for (int i = 0; i < T; i++)
        pthread_join(tid[i], NULL);
    cr_assert_not(s.failed, "a block changed, was not owned, or an allocation failed");
    for (size_t k = 0; k < SHARED_SLOTS; k++)
        if (s.slot[k]) {
            struct tag t;
            memcpy(&t, s.slot[k], sizeof t);
            mpool_free(s.pools[t.pool], s.slot[k]);
        }
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(mpool_get_usage(s.pools[i]).used, 0);
        cr_assert_eq(mpool_check(s.pools[i]), 0);
        mpool_destroy(s.pools[i]);
    }
}

/* ---- double frees across threads ----------------------------------------- */

struct twice {
    mpool_t *pool;
    void *p;
    mpool_error_t err;
};

static void *free_and_note(void *arg)
{
    struct twice *t = arg;
    prime_error(MPOOL_ERR_INVALID_POINTER);
    mpool_free(t->pool, t->p);
    t->err = mpool_last_error();
    return NULL;
}

Test(heap, double_frees_across_threads_are_found)
{
    mpool_t *pool = make_pool();
    void *keep = mpool_alloc(pool, 64);
    void *p = mpool_alloc(pool, 64);
    struct page *s = slab_of(p);
    struct twice t = {pool, p, MPOOL_OK};
    pthread_t tid;
    /* Freed by another thread, then by a third: refused. */
    cr_assert_eq(pthread_create(&tid, NULL, free_and_note, &t), 0);
    pthread_join(tid, NULL);
    cr_assert_neq(t.err, MPOOL_ERR_INVALID_POINTER, "the first free was refused");
    cr_assert_eq(pthread_create(&tid, NULL, free_and_note, &t), 0);
    pthread_join(tid, NULL);
    cr_assert_eq(t.err, MPOOL_ERR_INVALID_POINTER, "a second remote free was not refused");
    /* Then by the owner: refused by the exact call at once; the inline free
     * lets it through (it does not read the block), and it is found when the
     * owner's allocation meets the block again, before a second hand-out. */
    prime_error(MPOOL_ERR_INVALID_POINTER);
    cr_assert_not(mpool_safe_free(pool, p));
    assert_refused("safe_free of a block another thread freed");
    cr_assert_eq(mpool_check(pool), 0);
    mpool_free(pool, p);
    prime_error(MPOOL_ERR_INVALID_POINTER);
    enum { M = 2000 };
    void **got = calloc(M, sizeof *got);
    bool reported = false;
    for (int i = 0; i < M; i++) {
        got[i] = mpool_alloc(pool, 64);
        reported |= mpool_last_error() == MPOOL_ERR_INVALID_POINTER;
        cr_assert_neq(got[i], keep, "a live block was handed out");
    }
    cr_assert(reported, "the owner's double free was never reported");
    size_t same = 0;
    for (int i = 0; i < M; i++)
        same += got[i] == p;
    cr_assert_leq(same, 1, "the double-freed block was handed out %zu times", same);
    cr_assert_eq(mpool_check(pool), 0, "the lists were not rebuilt");
    for (int i = 0; i < M; i++)
        mpool_free(pool, got[i]);
    free(got);
    cr_assert_eq(mpool_check(pool), 0);
    /* Freed by the owner, then by another thread: refused (remote frees read
     * the mark). */
    void *q = mpool_alloc(pool, 64);
    mpool_free(pool, q);
    t.p = q;
    cr_assert_eq(pthread_create(&tid, NULL, free_and_note, &t), 0);
    pthread_join(tid, NULL);
    cr_assert_eq(t.err, MPOOL_ERR_INVALID_POINTER, "a remote free of a block the owner freed was not refused");
    cr_assert_eq(mpool_check(pool), 0);
    /* Nothing is handed out twice. */
    void *a[8];
    for (int i = 0; i < 8; i++) {
        a[i] = mpool_alloc(pool, 64);
        for (int j = 0; j < i; j++)
            cr_assert_neq(a[i], a[j]);
        cr_assert_neq(a[i], keep);
    }
    (void)s;
    mpool_destroy(pool);
}

/* The owner's free(p); free(q); free(p) when nothing allocates again: the
 * blocks are on the lists twice, mpool_check sees it, and destroy's final
 * check reports the block by its address. */
struct heard {
    int lines;
    char last[256];
};

static void hear(mpool_error_t err, const char *msg, void *arg)
{
    struct heard *h = arg;
    (void)err;
    h->lines++;
    snprintf(h->last, sizeof h->last, "%s", msg);
}

Test(heap, double_free_with_a_free_between_is_found_by_the_final_check)
{
    for (int safe = 0; safe < 2; safe++) {
        struct heard heard = {0, ""};
        mpool_config_t cfg = mpool_config_default();
        cfg.thread_safe = safe;
        cfg.on_error = MPOOL_ON_ERROR_LOG;
        cfg.logger = hear;
        cfg.logger_arg = &heard;
        mpool_t *pool = create_or_die(&cfg);
        void *keep = mpool_alloc(pool, 48);
        void *p = mpool_alloc(pool, 48), *q = mpool_alloc(pool, 48);
        mpool_free(pool, p);
        mpool_free(pool, q);
        mpool_free(pool, p); /* not the head of local_free: let through inline */
        cr_assert_eq(heard.lines, 0, "reported at once: %s", heard.last);
        cr_assert_gt(mpool_check(pool), 0, "mpool_check missed a block on the lists twice");
        char want[64];
        snprintf(want, sizeof want, "mpool_free(%p): double free detected", p);
        mpool_destroy(pool);
        cr_assert_eq(heard.lines, 1, "destroy reported %d lines", heard.lines);
        cr_assert(strstr(heard.last, want) && strstr(heard.last, "final check"), "report: %s", heard.last);
        (void)keep;
    }
}

/* An overflow of y by 8 bytes rewrites the link of the free block after it:
 * the link is encoded with the pool's secret, so it decodes to no block;
 * the allocation that meets it reports the corruption, rebuilds the lists
 * from the marks and hands out only real free blocks. */
Test(heap, overwritten_link_is_detected_not_followed)
{
    struct heard heard = {0, ""};
    mpool_config_t cfg = mpool_config_default();
    cfg.thread_safe = false;
    cfg.on_error = MPOOL_ON_ERROR_LOG;
    cfg.logger = hear;
    cfg.logger_arg = &heard;
    mpool_t *pool = create_or_die(&cfg);
    char *y = mpool_alloc(pool, 64);
    uint64_t *next = (uint64_t *)(y + 64); /* the free block after y */
    cr_assert(!mpool_owns(pool, next), "the block after y is free");
    *next ^= 8; /* y[64..71]: an overflow by 8 bytes */
    void *got[8];
    for (int i = 0; i < 8; i++) {
        got[i] = mpool_alloc(pool, 64);
        cr_assert_not_null(got[i]);
        cr_assert_eq((uintptr_t)got[i] % 64, (uintptr_t)y % 64, "an interior pointer was handed out");
        for (int j = 0; j < i; j++)
            cr_assert_neq(got[i], got[j]);
    }
    cr_assert_geq(heard.lines, 1, "the corrupted link was not reported");
    cr_assert(strstr(heard.last, "free list corrupted"), "report: %s", heard.last);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* ---- destroy, slots, reset, modes ----------------------------------------- */

struct waiter {
    mpool_t *pool;
    pthread_barrier_t *go, *done;
    bool failed;
};

static void *use_then_wait(void *arg)
{
    struct waiter *w = arg;
    void *p = mpool_alloc(w->pool, 96);
    w->failed = !p;
    mpool_free(w->pool, p);
    pthread_barrier_wait(w->go);   /* main destroys the pool */
    pthread_barrier_wait(w->done); /* main made a new pool in w->pool */
    for (int i = 0; i < 1000 && !w->failed; i++) {
        void *q = mpool_alloc(w->pool, 96);
        w->failed = !q;
        mpool_free(w->pool, q);
    }
    return NULL;
}

/* A pool destroyed while another thread owns one of its heaps: the heap is
 * orphaned, never touched again, and unmapped by its thread. */
Test(heap, destroy_with_heaps_in_other_threads)
{
    pthread_barrier_t go, done;
    pthread_barrier_init(&go, NULL, 2);
    pthread_barrier_init(&done, NULL, 2);
    struct waiter w = {make_pool(), &go, &done, false};
    mpool_t *first = w.pool;
    pthread_t tid;
    cr_assert_eq(pthread_create(&tid, NULL, use_then_wait, &w), 0);
    pthread_barrier_wait(&go);
    size_t owned;
    heaps_of(first, &owned);
    cr_assert_eq(owned, 1);
    mpool_destroy(first);
    w.pool = make_pool();
    pthread_barrier_wait(&done);
    pthread_join(tid, NULL);
    cr_assert_not(w.failed);
    heaps_of(w.pool, &owned);
    cr_assert_eq(owned, 0);
    cr_assert_eq(mpool_get_usage(w.pool).used, 0);
    cr_assert_eq(mpool_check(w.pool), 0);
    mpool_destroy(w.pool);
    pthread_barrier_destroy(&go);
    pthread_barrier_destroy(&done);
}

/* More pools than a thread has slots: heaps are left and taken again, and
 * every block stays intact. */
Test(heap, more_pools_than_slots)
{
    enum { P = 3 * HEAP_SLOTS, N = 50 };
    mpool_t *pools[P];
    char *blocks[P][N];
    for (int i = 0; i < P; i++)
        pools[i] = make_pool();
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < P; i++)
            for (int k = 0; k < N; k++) {
                blocks[i][k] = mpool_alloc(pools[i], 32 + (size_t)k);
                cr_assert_not_null(blocks[i][k]);
                memset(blocks[i][k], i + k, 32);
            }
        for (int i = P; i-- > 0;)
            for (int k = 0; k < N; k++) {
                for (int b = 0; b < 32; b++)
                    if (blocks[i][k][b] != (char)(i + k))
                        cr_assert_fail("pool %d block %d changed", i, k);
                mpool_free(pools[i], blocks[i][k]);
            }
    }
    size_t owned_total = 0;
    for (int i = 0; i < P; i++) {
        size_t owned, heaps = heaps_of(pools[i], &owned);
        cr_assert_leq(heaps, 2, "pool %d has %zu heaps for one thread", i, heaps);
        owned_total += owned;
        cr_assert_eq(mpool_get_usage(pools[i]).used, 0);
        cr_assert_eq(mpool_check(pools[i]), 0);
    }
    cr_assert_leq(owned_total, HEAP_SLOTS, "one thread owns %zu heaps", owned_total);
    for (int i = 0; i < P; i++)
        mpool_destroy(pools[i]);
}

static void *free_one(void *arg)
{
    struct free_list *f = arg;
    mpool_free(f->pool, f->blocks[0]);
    return NULL;
}

/* Switching modes gathers every slab, with every list collected, into heap0;
 * reset forgets every heap's slabs. */
Test(heap, reset_and_mode_switches)
{
    mpool_t *pool = make_pool();
    void *p = mpool_alloc(pool, 200), *q = mpool_alloc(pool, 200);
    struct free_list f = {pool, &q, 1};
    pthread_t tid;
    cr_assert_eq(pthread_create(&tid, NULL, free_one, &f), 0); /* q on thread_free */
    pthread_join(tid, NULL);
    struct heap *mine = heap_mine(pool);
    cr_assert_not_null(mine);
    mpool_set_thread_safe(pool, false);
    cr_assert_eq(pool->fast_heap, pool->heap0);
    struct page *s = slab_of(p);
    cr_assert_eq(s->heap, pool->heap0, "a slab was not gathered into heap0");
    cr_assert_eq(s->thread_free, 0, "a gathered slab kept its thread_free list");
    cr_assert_eq(mpool_get_usage(pool).used, mpool_usable_size(pool, p));
    cr_assert_eq(mpool_check(pool), 0);
    prime_error(MPOOL_ERR_INVALID_POINTER);
    mpool_free(pool, q);
    assert_refused("double free after switching");
    void *r = mpool_alloc(pool, 200);
    cr_assert(mpool_owns(pool, r));
    mpool_free(pool, r);
    mpool_set_thread_safe(pool, true);
    cr_assert_eq(pool->fast_heap, &mpool_heap_empty);
    r = mpool_alloc(pool, 200);
    cr_assert(mpool_owns(pool, r), "a block allocated after switching back is not live");
    mpool_free(pool, r);
    prime_error(MPOOL_ERR_INVALID_POINTER);
    mpool_free(pool, r);
    assert_refused("double free after switching back");
    mpool_free(pool, p);
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    p = mpool_alloc(pool, 200);
    mpool_reset(pool);
    for (const struct heap *h = pool->heaps; h; h = h->next)
        for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
            cr_assert(h->current[cls] == &mpool_empty_slab && !h->queue[cls], "reset left a slab in a heap");
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    p = mpool_alloc(pool, 200);
    cr_assert(mpool_owns(pool, p));
    mpool_free(pool, p);
    mpool_destroy(pool);
}
