/*
 * threads.c - the multi-thread workloads of the benchmark driver (bench.c
 * has the list, the single-thread ones and main): prodcons, threads, larson,
 * xfree, exchange, bursts.  Each reports the wall time from the first
 * thread's start to the last one's end (SPAN).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* ---- 4. prodcons: one thread allocates, the other frees ----------------- */

/* A single-producer single-consumer ring.  Each side publishes its index
 * once per RING_BATCH blocks and rereads the other's only when it runs out,
 * so the two threads do not trade cache lines on every block: the figure is
 * the allocator's, not the queue's. */
#define RING 4096
#define RING_BATCH 64
static struct {
    void *slot[RING];
    _Alignas(64) atomic_long head; /* slots below head are filled */
    _Alignas(64) atomic_long tail; /* slots below tail are emptied */
} ring;

static void *consumer(void *arg)
{
    long n = *(long *)arg, seen = 0;
    unsigned spins = 0;
    for (long i = 0; i < n; i++) {
        while (i == seen) {
            seen = atomic_load_explicit(&ring.head, memory_order_acquire);
            if (i == seen)
                relax(&spins);
        }
        void *p = ring.slot[i % RING];
        if ((i + 1) % RING_BATCH == 0)
            atomic_store_explicit(&ring.tail, i + 1, memory_order_release);
        B_FREE(p);
    }
    return NULL;
}

int cmd_prodcons(int argc, char **argv)
{
    long n = arg(argc, argv, 2, 2000000), emptied = 0;
    rng_t r = rng_seed(4);
    pthread_t t;
    double t0 = now();
    if (pthread_create(&t, NULL, consumer, &n))
        die("pthread_create failed");
    unsigned spins = 0;
    for (long i = 0; i < n; i++) {
        char *p = xmalloc(rnd_size(&r, 512));
        p[0] = (char)i;
        while (i - emptied >= RING) {
            emptied = atomic_load_explicit(&ring.tail, memory_order_acquire);
            if (i - emptied >= RING)
                relax(&spins);
        }
        ring.slot[i % RING] = p;
        if ((i + 1) % RING_BATCH == 0 || i + 1 == n)
            atomic_store_explicit(&ring.head, i + 1, memory_order_release);
    }
    pthread_join(t, NULL);
    report("prodcons", now() - t0, (double)n, "");
    return 0;
}

/* ---- 5. threads: T threads, each with its own churn --------------------- */

typedef struct {
    pthread_barrier_t *start, *done;
    size_t live;
    long steps;
    unsigned id;
    double t0, t1; /* when this thread's steps began and ended */
} worker_t;

static void *churn_worker(void *arg)
{
    worker_t *w = arg;
    rng_t r = rng_seed(100 + w->id);
    char **live = churn_fill(w->live, 512, &r);
    pthread_barrier_wait(w->start);
    w->t0 = now();
    churn_run(live, w->live, w->steps, 512, &r);
    w->t1 = now();
    pthread_barrier_wait(w->done);
    churn_drop(live, w->live);
    return NULL;
}

int cmd_threads(int argc, char **argv)
{
    long nthreads = arg(argc, argv, 2, 2);
    long ops = arg(argc, argv, 3, 2000000);
    size_t live = (size_t)arg(argc, argv, 4, 10000);
    if (nthreads < 1 || nthreads > 256 || live < 1)
        die("threads: 1 <= T <= 256, LIVE >= 1");
    pthread_barrier_t start, done;
    pthread_barrier_init(&start, NULL, (unsigned)nthreads);
    pthread_barrier_init(&done, NULL, (unsigned)nthreads);
    pthread_t *tid = table((size_t)nthreads, sizeof *tid);
    worker_t *w = table((size_t)nthreads, sizeof *w);
    for (long i = 0; i < nthreads; i++) {
        w[i] = (worker_t){ &start, &done, live, ops / nthreads, (unsigned)i, 0, 0 };
        if (pthread_create(&tid[i], NULL, churn_worker, &w[i]))
            die("pthread_create failed");
    }
    for (long i = 0; i < nthreads; i++)
        pthread_join(tid[i], NULL);
    double t; /* the steps only: live sets are filled before, freed after */
    SPAN(w, nthreads, t);
    char extra[64];
    snprintf(extra, sizeof extra, ", \"threads\": %ld", nthreads);
    report("threads", t, (double)(ops / nthreads * nthreads), extra);
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&done);
    B_FREE(tid);
    B_FREE(w);
    return 0;
}

/* ---- 7. larson: threads replace blocks in arrays that change hands ------ */

typedef struct {
    pthread_barrier_t *barrier;
    char ***arrays; /* arrays[i]: the array thread i works on this round */
    long nthreads, rounds, slots, ops;
    unsigned id;
    double t0, t1;
} larson_t;

static void *larson_worker(void *arg)
{
    larson_t *w = arg;
    rng_t r = rng_seed(200 + w->id);
    pthread_barrier_wait(w->barrier);
    w->t0 = now();
    for (long round = 0; round < w->rounds; round++) {
        char **a = w->arrays[w->id];
        for (long k = 0; k < w->ops; k++) {
            long i = (long)(rnd(&r) % (uint64_t)w->slots);
            B_FREE(a[i]);
            a[i] = xmalloc(rnd_size(&r, 1024));
            a[i][0] = (char)k;
        }
        /* Hand the array on: thread i takes thread i+1's, so the blocks it
         * frees next round were allocated by another thread. */
        pthread_barrier_wait(w->barrier);
        if (w->id == 0) {
            char **first = w->arrays[0];
            for (long t = 0; t + 1 < w->nthreads; t++)
                w->arrays[t] = w->arrays[t + 1];
            w->arrays[w->nthreads - 1] = first;
        }
        pthread_barrier_wait(w->barrier);
    }
    w->t1 = now();
    return NULL;
}

int cmd_larson(int argc, char **argv)
{
    long nthreads = arg(argc, argv, 2, 4);
    long rounds = arg(argc, argv, 3, 20);
    long slots = arg(argc, argv, 4, 2000);
    long ops = arg(argc, argv, 5, 20000);
    if (nthreads < 1 || nthreads > 256 || slots < 1)
        die("larson: 1 <= T <= 256, SLOTS >= 1");
    rng_t r = rng_seed(7);
    char ***arrays = table((size_t)nthreads, sizeof *arrays);
    for (long t = 0; t < nthreads; t++) {
        arrays[t] = table((size_t)slots, sizeof **arrays);
        for (long i = 0; i < slots; i++)
            arrays[t][i] = xmalloc(rnd_size(&r, 1024));
    }
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
    pthread_t *tid = table((size_t)nthreads, sizeof *tid);
    larson_t *w = table((size_t)nthreads, sizeof *w);
    for (long t = 0; t < nthreads; t++) {
        w[t] = (larson_t){ &barrier, arrays, nthreads, rounds, slots, ops, (unsigned)t, 0, 0 };
        if (pthread_create(&tid[t], NULL, larson_worker, &w[t]))
            die("pthread_create failed");
    }
    for (long t = 0; t < nthreads; t++)
        pthread_join(tid[t], NULL);
    double t;
    SPAN(w, nthreads, t);
    char extra[64];
    snprintf(extra, sizeof extra, ", \"threads\": %ld", nthreads);
    report("larson", t, (double)(nthreads * rounds * ops), extra);
    for (long k = 0; k < nthreads; k++) {
        for (long i = 0; i < slots; i++)
            B_FREE(arrays[k][i]);
        B_FREE(arrays[k]);
    }
    B_FREE(arrays);
    B_FREE(tid);
    B_FREE(w);
    pthread_barrier_destroy(&barrier);
    return 0;
}

/* ---- 10. xfree: batches made by producers, freed whole by consumers ----- */

/* A blocking queue of pointers, sized for every item that can be in it at
 * once, so that putting never waits.  Only whole batches pass through it:
 * one lock per batch, not per block, so the figure is the allocator's. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    void **slot;
    size_t cap, head, count;
} queue_t;

static void queue_init(queue_t *q, size_t cap)
{
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->ready, NULL);
    q->slot = table(cap, sizeof *q->slot);
    q->cap = cap;
    q->head = q->count = 0;
}

static void queue_put(queue_t *q, void *p)
{
    pthread_mutex_lock(&q->lock);
    if (q->count == q->cap)
        die("queue overflow");
    q->slot[(q->head + q->count++) % q->cap] = p;
    pthread_cond_signal(&q->ready);
    pthread_mutex_unlock(&q->lock);
}

static void *queue_take(queue_t *q)
{
    pthread_mutex_lock(&q->lock);
    while (q->count == 0)
        pthread_cond_wait(&q->ready, &q->lock);
    void *p = q->slot[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    pthread_mutex_unlock(&q->lock);
    return p;
}

static void queue_drop(queue_t *q)
{
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->ready);
    B_FREE(q->slot);
}

#define XFREE_SPARE 4 /* batch arrays per producer: how far producers run ahead */

typedef struct {
    pthread_barrier_t *start;
    queue_t *full, *empty; /* batches to free; emptied batch arrays */
    atomic_long *producing; /* producers still running */
    long batch, batches, consumers;
    unsigned id;
    int producer;
    double t0, t1;
} xfree_t;

/* A producer fills batch arrays with new blocks of 16 B - 1 KiB and hands
 * each whole to the consumers; the last producer to finish tells every
 * consumer to stop (a NULL batch each).  A consumer frees every block of the
 * batches it takes and hands the array back. */
static void *xfree_worker(void *arg)
{
    xfree_t *w = arg;
    rng_t r = rng_seed(300 + w->id);
    pthread_barrier_wait(w->start);
    w->t0 = now();
    if (w->producer) {
        for (long k = 0; k < w->batches; k++) {
            char **b = queue_take(w->empty);
            for (long i = 0; i < w->batch; i++) {
                b[i] = xmalloc(rnd_size_from(&r, 16, 1024));
                b[i][0] = (char)i;
            }
            queue_put(w->full, b);
        }
        if (atomic_fetch_sub(w->producing, 1) == 1)
            for (long c = 0; c < w->consumers; c++)
                queue_put(w->full, NULL);
    } else {
        char **b;
        while ((b = queue_take(w->full)) != NULL) {
            for (long i = 0; i < w->batch; i++)
                B_FREE(b[i]);
            queue_put(w->empty, b);
        }
    }
    w->t1 = now();
    return NULL;
}

int cmd_xfree(int argc, char **argv)
{
    long pairs = arg(argc, argv, 2, 2);
    long batch = arg(argc, argv, 3, 1000);
    long batches = arg(argc, argv, 4, 1000);
    if (pairs < 1 || pairs > 128 || batch < 1)
        die("xfree: 1 <= PAIRS <= 128, BATCH >= 1");
    long nthreads = 2 * pairs, narrays = XFREE_SPARE * pairs;
    queue_t full, empty;
    queue_init(&full, (size_t)(narrays + pairs)); /* every array, and a NULL per consumer */
    queue_init(&empty, (size_t)narrays);
    char **arrays = table((size_t)narrays, sizeof *arrays);
    for (long k = 0; k < narrays; k++) {
        arrays[k] = table((size_t)batch, sizeof(char *));
        queue_put(&empty, arrays[k]);
    }
    atomic_long producing = pairs;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)nthreads);
    pthread_t *tid = table((size_t)nthreads, sizeof *tid);
    xfree_t *w = table((size_t)nthreads, sizeof *w);
    for (long i = 0; i < nthreads; i++) {
        w[i] = (xfree_t){ &start, &full, &empty, &producing, batch, batches, pairs, (unsigned)i,
                          i % 2 == 0, 0, 0 };
        if (pthread_create(&tid[i], NULL, xfree_worker, &w[i]))
            die("pthread_create failed");
    }
    for (long i = 0; i < nthreads; i++)
        pthread_join(tid[i], NULL);
    double t;
    SPAN(w, nthreads, t);
    char extra[96];
    snprintf(extra, sizeof extra, ", \"threads\": %ld, \"batch\": %ld", nthreads, batch);
    report("xfree", t, (double)(pairs * batches * batch), extra); /* per block */
    for (long k = 0; k < narrays; k++)
        B_FREE(arrays[k]);
    B_FREE(arrays);
    queue_drop(&full);
    queue_drop(&empty);
    B_FREE(tid);
    B_FREE(w);
    pthread_barrier_destroy(&start);
    return 0;
}

/* ---- 11. exchange: threads pass random-size blocks to a neighbour ------- */

/* A single-sender single-receiver channel.  The sender publishes its index
 * every CHAN_BATCH blocks and whenever the channel is full; the receiver
 * takes everything published at once, so the threads touch each other's
 * cache lines once per batch, not once per block. */
#define CHAN 1024
#define CHAN_BATCH 32
typedef struct {
    void *slot[CHAN];
    _Alignas(64) atomic_long head; /* published by the sender */
    _Alignas(64) atomic_long tail; /* published by the receiver */
    _Alignas(64) long sent, tail_seen; /* the sender's */
    _Alignas(64) long taken; /* the receiver's */
} chan_t;

static void chan_publish(chan_t *c)
{
    atomic_store_explicit(&c->head, c->sent, memory_order_release);
}

/* False when the channel is full (after publishing what it holds). */
static int chan_send(chan_t *c, void *p)
{
    if (c->sent - c->tail_seen >= CHAN) {
        c->tail_seen = atomic_load_explicit(&c->tail, memory_order_acquire);
        if (c->sent - c->tail_seen >= CHAN) {
            chan_publish(c);
            return 0;
        }
    }
    c->slot[c->sent++ % CHAN] = p;
    if (c->sent % CHAN_BATCH == 0)
        chan_publish(c);
    return 1;
}

/* Frees every block published so far; returns how many. */
static long chan_free_all(chan_t *c)
{
    long head = atomic_load_explicit(&c->head, memory_order_acquire), n = head - c->taken;
    for (; c->taken < head; c->taken++)
        B_FREE(c->slot[c->taken % CHAN]);
    if (n)
        atomic_store_explicit(&c->tail, c->taken, memory_order_release);
    return n;
}

#define EXCHANGE_KEEP 256 /* blocks each thread keeps live */

typedef struct {
    pthread_barrier_t *start;
    chan_t *in, *out; /* from the previous thread; to the next */
    atomic_long *sending; /* threads still sending */
    char **keep;
    long steps;
    size_t max;
    unsigned id;
    double t0, t1;
} exchange_t;

/* Each step allocates a block of 16 B - MAX (log-uniform) and touches it;
 * half the blocks go to the next thread, the other half replace a random
 * one of the blocks this thread keeps.  Received blocks are freed every
 * few steps, and whenever the next thread's channel is full. */
static void *exchange_worker(void *arg)
{
    exchange_t *w = arg;
    rng_t r = rng_seed(400 + w->id);
    unsigned spins = 0;
    pthread_barrier_wait(w->start);
    w->t0 = now();
    for (long s = 0; s < w->steps; s++) {
        size_t size = rnd_size_from(&r, 16, w->max);
        char *p = xmalloc(size);
        touch(p, size, (int)s);
        uint64_t x = rnd(&r);
        if (x & 1) {
            while (!chan_send(w->out, p))
                if (!chan_free_all(w->in))
                    relax(&spins);
        } else {
            size_t i = (size_t)(x >> 1) % EXCHANGE_KEEP;
            B_FREE(w->keep[i]);
            w->keep[i] = p;
        }
        if (s % 16 == 15)
            chan_free_all(w->in);
    }
    chan_publish(w->out);
    atomic_fetch_sub(w->sending, 1);
    for (;;) { /* the previous thread may still be sending */
        int last = atomic_load(w->sending) == 0;
        if (!chan_free_all(w->in) && last)
            break;
        if (!last)
            relax(&spins);
    }
    w->t1 = now();
    return NULL;
}

int cmd_exchange(int argc, char **argv)
{
    long nthreads = arg(argc, argv, 2, 4);
    long steps = arg(argc, argv, 3, 200000);
    size_t max = (size_t)arg(argc, argv, 4, 64 << 10);
    if (nthreads < 2 || nthreads > 256 || max < 16)
        die("exchange: 2 <= T <= 256, MAXSIZE >= 16");
    chan_t *chans = table((size_t)nthreads, sizeof *chans);
    char **keep = table((size_t)nthreads * EXCHANGE_KEEP, sizeof *keep);
    atomic_long sending = nthreads;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)nthreads);
    pthread_t *tid = table((size_t)nthreads, sizeof *tid);
    exchange_t *w = table((size_t)nthreads, sizeof *w);
    for (long i = 0; i < nthreads; i++) {
        w[i] = (exchange_t){ &start, &chans[i], &chans[(i + 1) % nthreads], &sending,
                             keep + i * EXCHANGE_KEEP, steps, max, (unsigned)i, 0, 0 };
        if (pthread_create(&tid[i], NULL, exchange_worker, &w[i]))
            die("pthread_create failed");
    }
    for (long i = 0; i < nthreads; i++)
        pthread_join(tid[i], NULL);
    double t;
    SPAN(w, nthreads, t);
    char extra[96];
    snprintf(extra, sizeof extra, ", \"threads\": %ld, \"max_size\": %zu", nthreads, max);
    report("exchange", t, (double)(nthreads * steps), extra); /* per block */
    for (long i = 0; i < nthreads * EXCHANGE_KEEP; i++)
        B_FREE(keep[i]);
    B_FREE(keep);
    B_FREE(chans);
    B_FREE(tid);
    B_FREE(w);
    pthread_barrier_destroy(&start);
    return 0;
}

/* ---- 12. bursts: threads allocate, touch and free short bursts ---------- */

typedef struct {
    pthread_barrier_t *start;
    long bursts, most;
    size_t max;
    unsigned id;
    long blocks; /* made by this thread */
    double t0, t1;
} bursts_t;

/* Each burst makes K/2..K blocks of 16 B - MAX, writes all of them, then
 * frees them: oldest first in even bursts, newest first in odd ones. */
static void *bursts_worker(void *arg)
{
    bursts_t *w = arg;
    rng_t r = rng_seed(500 + w->id);
    char **b = table((size_t)w->most, sizeof *b);
    long blocks = 0;
    pthread_barrier_wait(w->start);
    w->t0 = now();
    for (long k = 0; k < w->bursts; k++) {
        long n = w->most - (long)(rnd(&r) % (uint64_t)(w->most / 2 + 1));
        for (long i = 0; i < n; i++) {
            size_t size = rnd_size_from(&r, 16, w->max);
            b[i] = xmalloc(size);
            touch(b[i], size, (int)i);
        }
        if (k % 2 == 0)
            for (long i = 0; i < n; i++)
                B_FREE(b[i]);
        else
            for (long i = n; i-- > 0;)
                B_FREE(b[i]);
        blocks += n;
    }
    w->t1 = now();
    w->blocks = blocks;
    B_FREE(b);
    return NULL;
}

int cmd_bursts(int argc, char **argv)
{
    long nthreads = arg(argc, argv, 2, 4);
    long bursts = arg(argc, argv, 3, 1000);
    long most = arg(argc, argv, 4, 1000);
    size_t max = (size_t)arg(argc, argv, 5, 1024);
    if (nthreads < 1 || nthreads > 256 || most < 1 || max < 16)
        die("bursts: 1 <= T <= 256, K >= 1, MAXSIZE >= 16");
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)nthreads);
    pthread_t *tid = table((size_t)nthreads, sizeof *tid);
    bursts_t *w = table((size_t)nthreads, sizeof *w);
    for (long i = 0; i < nthreads; i++) {
        w[i] = (bursts_t){ &start, bursts, most, max, (unsigned)i, 0, 0, 0 };
        if (pthread_create(&tid[i], NULL, bursts_worker, &w[i]))
            die("pthread_create failed");
    }
    double blocks = 0;
    for (long i = 0; i < nthreads; i++) {
        pthread_join(tid[i], NULL);
        blocks += (double)w[i].blocks;
    }
    double t;
    SPAN(w, nthreads, t);
    char extra[96];
    snprintf(extra, sizeof extra, ", \"threads\": %ld, \"max_size\": %zu", nthreads, max);
    report("bursts", t, blocks, extra); /* per block: alloc + touch + free */
    B_FREE(tid);
    B_FREE(w);
    pthread_barrier_destroy(&start);
    return 0;
}

