/*
 * bench.c - the allocator benchmark driver: one program, one workload per
 * subcommand, one line of JSON out.
 *
 * Built twice (CMakeLists.txt, "Benchmarks" block):
 *   mpool_bench      calls only malloc/free/realloc and is NOT linked with
 *                    mpool, so the same binary measures any allocator that
 *                    LD_PRELOAD puts in front of glibc (or glibc itself);
 *   mpool_bench_api  the same source with -DBENCH_MPOOL_API: every call goes
 *                    to the mpool API (mpool_alloc/free/realloc/trim) on one
 *                    thread-safe pool of the default configuration.
 *
 *   bench pair SIZE N                   N tight alloc+free pairs of SIZE bytes
 *   bench batch N ROUNDS                N random small blocks, freed in random order
 *   bench churn LIVE STEPS MAXSIZE      LIVE live blocks; each step frees one at
 *                                       random and allocates a new one
 *   bench prodcons N                    one thread allocates, another frees
 *   bench threads T OPS LIVE            T threads, each its own churn; OPS in all
 *   bench realloc NBUF MAXSIZE ROUNDS   NBUF buffers grown from 64 B to MAXSIZE
 *   bench larson T ROUNDS SLOTS OPS     larson-like: threads replace blocks in
 *                                       arrays that move to the next thread
 *                                       every round
 *   bench frag N                        build N mixed blocks, free 90% interleaved,
 *                                       trim, reuse; resident memory at each step
 *
 *   bench spawn PRELOAD STDIN PROG ARGS...
 *                                       runs PROG (LD_PRELOAD=PRELOAD, stdin from
 *                                       STDIN; "-": none) and reports its wall
 *                                       time and peak RSS: the runner's launcher
 *
 * Output: {"workload":..., "ns_per_op":..., "ops":..., "seconds":...,
 * "peak_rss_kb":..., extra fields}.  Times cover the measured loop only
 * (CLOCK_MONOTONIC), not start-up.  Random numbers are a fixed-seed
 * xorshift, so every allocator sees the same sequence of requests.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef BENCH_MPOOL_API
#include <mpool.h>
static mpool_t *bench_pool;
#define B_MALLOC(n) mpool_alloc(bench_pool, (n))
#define B_FREE(p) mpool_free(bench_pool, (p))
#define B_REALLOC(p, n) mpool_realloc(bench_pool, (p), (n))
#define B_VARIANT "mpool-api"
#else
#define B_MALLOC(n) malloc(n)
#define B_FREE(p) free(p)
#define B_REALLOC(p, n) realloc((p), (n))
#define B_VARIANT "malloc"
#endif

/* Keeps the compiler from removing an allocation that is never used. */
#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

/* ---- Small helpers ------------------------------------------------------ */

static _Noreturn void die(const char *what)
{
    fprintf(stderr, "bench: %s\n", what);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = B_MALLOC(n);
    if (!p)
        die("out of memory");
    return p;
}

/* Bookkeeping arrays of the benchmark itself: from the measured allocator
 * too (the binary has no other), but allocated before the clock starts. */
static void *table(size_t count, size_t size)
{
    void *p = xmalloc(count * size);
    memset(p, 0, count * size);
    return p;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct { uint64_t s; } rng_t;

static uint64_t rnd(rng_t *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

static rng_t rng_seed(uint64_t seed) { return (rng_t){ seed * 0x9E3779B97F4A7C15ULL + 1 }; }

/* A size between 8 B and max (inclusive), log-uniform: a power-of-two band is
 * picked uniformly, then a size uniformly inside it.  Small sizes dominate
 * the count, large ones the bytes, as in most programs. */
static size_t rnd_size(rng_t *r, size_t max)
{
    unsigned bands = 0;
    while (((size_t)8 << (bands + 1)) <= max)
        bands++;
    uint64_t x = rnd(r);
    size_t lo = (size_t)8 << (x % (bands + 1));
    size_t size = lo + (size_t)((x >> 16) % lo);
    return size > max ? max : size;
}

static long resident_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Peak resident memory of this process image (VmHWM: reset by exec, unlike
 * getrusage's ru_maxrss, which keeps the peak of whoever forked us). */
static long peak_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    if (f) {
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %ld", &kb) == 1)
                break;
        fclose(f);
    }
    return kb;
}

static long arg(int argc, char **argv, int i, long fallback)
{
    if (i >= argc)
        return fallback;
    char *end;
    errno = 0;
    long v = strtol(argv[i], &end, 0);
    if (errno || *end || v < 0)
        die("arguments are non-negative integers");
    return v;
}

/* Prints the result line: the common fields, then `extra` (", \"k\": v ..." or ""). */
static void report(const char *workload, double seconds, double ops, const char *extra)
{
    printf("{\"workload\": \"%s\", \"variant\": \"%s\", \"ns_per_op\": %.3f, \"ops\": %.0f, "
           "\"seconds\": %.6f, \"peak_rss_kb\": %ld%s}\n",
           workload, B_VARIANT, ops > 0 ? seconds * 1e9 / ops : 0.0, ops, seconds, peak_kb(),
           extra);
    fflush(stdout);
}

/* Returns free memory to the system the way each allocator offers it:
 * mpool_trim for the API; otherwise glibc's malloc_trim (which the mpool
 * drop-in answers with mpool_trim) plus whichever native call the preloaded
 * allocator exports.  Names what it called. */
static const char *trim_all(void)
{
#ifdef BENCH_MPOOL_API
    mpool_trim(bench_pool);
    return "mpool_trim";
#else
    static char used[128];
    snprintf(used, sizeof used, "malloc_trim");
    malloc_trim(0);
    void (*mi_collect)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "mi_collect");
    if (mi_collect) {
        mi_collect(1);
        strcat(used, "+mi_collect");
    }
    int (*mallctl)(const char *, void *, size_t *, void *, size_t) =
        (int (*)(const char *, void *, size_t *, void *, size_t))dlsym(RTLD_DEFAULT, "mallctl");
    if (mallctl && mallctl("arena.4096.purge", NULL, NULL, NULL, 0) == 0) /* MALLCTL_ARENAS_ALL */
        strcat(used, "+mallctl(purge)");
    void (*release)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory");
    if (release) {
        release();
        strcat(used, "+ReleaseFreeMemory");
    }
    return used;
#endif
}

/* ---- 1. pair: tight alloc+free pairs of one size ------------------------ */

static int cmd_pair(int argc, char **argv)
{
    size_t size = (size_t)arg(argc, argv, 2, 16);
    long n = arg(argc, argv, 3, 1000000);
    double t0 = now();
    for (long i = 0; i < n; i++) {
        void *p = B_MALLOC(size);
        ESCAPE(p);
        B_FREE(p);
    }
    double t = now() - t0;
    char extra[64];
    snprintf(extra, sizeof extra, ", \"size\": %zu", size);
    report("pair", t, (double)n, extra);
    return 0;
}

/* ---- 2. batch: many random small blocks, freed in random order ---------- */

static int cmd_batch(int argc, char **argv)
{
    long n = arg(argc, argv, 2, 50000);
    long rounds = arg(argc, argv, 3, 20);
    if (n < 1)
        die("batch: N >= 1");
    rng_t r = rng_seed(2);
    char **blocks = table((size_t)n, sizeof *blocks);
    size_t *sizes = table((size_t)n, sizeof *sizes);
    long *order = table((size_t)n, sizeof *order);
    double total = 0;
    for (long round = 0; round < rounds; round++) {
        for (long i = 0; i < n; i++) {
            sizes[i] = rnd_size(&r, 512);
            order[i] = i;
        }
        for (long i = n - 1; i > 0; i--) {
            long j = (long)(rnd(&r) % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        double t0 = now();
        for (long i = 0; i < n; i++) {
            blocks[i] = xmalloc(sizes[i]);
            blocks[i][0] = (char)i;
        }
        for (long i = 0; i < n; i++)
            B_FREE(blocks[order[i]]);
        total += now() - t0;
    }
    report("batch", total, (double)n * (double)rounds, "");  /* per block: alloc + free */
    B_FREE(blocks);
    B_FREE(sizes);
    B_FREE(order);
    return 0;
}

/* ---- 3. churn: a live set where one random block is replaced per step --- */

static double churn_run(char **live, size_t count, long steps, size_t max, rng_t *r)
{
    double t0 = now();
    for (long s = 0; s < steps; s++) {
        size_t i = (size_t)(rnd(r) % count);
        B_FREE(live[i]);
        size_t size = rnd_size(r, max);
        live[i] = xmalloc(size);
        live[i][0] = (char)s;
    }
    return now() - t0;
}

static char **churn_fill(size_t count, size_t max, rng_t *r)
{
    char **live = table(count, sizeof *live);
    for (size_t i = 0; i < count; i++) {
        live[i] = xmalloc(rnd_size(r, max));
        live[i][0] = 1;
    }
    return live;
}

static void churn_drop(char **live, size_t count)
{
    for (size_t i = 0; i < count; i++)
        B_FREE(live[i]);
    B_FREE(live);
}

static int cmd_churn(int argc, char **argv)
{
    size_t count = (size_t)arg(argc, argv, 2, 100000);
    long steps = arg(argc, argv, 3, 1000000);
    size_t max = (size_t)arg(argc, argv, 4, 512);
    if (count < 1 || max < 8)
        die("churn: LIVE >= 1, MAXSIZE >= 8");
    rng_t r = rng_seed(3);
    char **live = churn_fill(count, max, &r);
    double t = churn_run(live, count, steps, max, &r);
    char extra[96];
    snprintf(extra, sizeof extra, ", \"live\": %zu, \"max_size\": %zu", count, max);
    report("churn", t, (double)steps, extra);
    churn_drop(live, count);
    return 0;
}

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

static void relax(unsigned *spins)
{
    if (++*spins < 64)
        __asm__ volatile("pause");
    else {
        sched_yield();
        *spins = 0;
    }
}

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

static int cmd_prodcons(int argc, char **argv)
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

/* Wall time of a multi-threaded phase: first start to last end, as the
 * threads saw them (the main thread may not be running at either moment). */
#define SPAN(w, n, span)                                    \
    do {                                                    \
        double first_ = (w)[0].t0, last_ = (w)[0].t1;       \
        for (long k_ = 1; k_ < (n); k_++) {                 \
            if ((w)[k_].t0 < first_)                        \
                first_ = (w)[k_].t0;                        \
            if ((w)[k_].t1 > last_)                         \
                last_ = (w)[k_].t1;                         \
        }                                                   \
        (span) = last_ - first_;                            \
    } while (0)

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

static int cmd_threads(int argc, char **argv)
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

/* ---- 6. realloc: buffers grown from 64 B to MAXSIZE ---------------------- */

static int cmd_realloc(int argc, char **argv)
{
    long nbuf = arg(argc, argv, 2, 8);
    size_t max = (size_t)arg(argc, argv, 3, 4 << 20);
    long rounds = arg(argc, argv, 4, 10);
    if (nbuf < 1 || max < 64)
        die("realloc: NBUF >= 1, MAXSIZE >= 64");
    char **buf = table((size_t)nbuf, sizeof *buf);
    size_t *size = table((size_t)nbuf, sizeof *size);
    double ops = 0;
    double t0 = now();
    for (long round = 0; round < rounds; round++) {
        for (long b = 0; b < nbuf; b++) {
            size[b] = 64;
            buf[b] = xmalloc(64);
            memset(buf[b], (int)b, 64);
        }
        /* Round robin, so neighbours compete for the space after each buffer;
         * each step grows by 1/8 plus 16 bytes (a string or vector that
         * grows a little at a time) and writes the new last byte. */
        int growing = 1;
        while (growing) {
            growing = 0;
            for (long b = 0; b < nbuf; b++) {
                if (size[b] >= max)
                    continue;
                size_t next = size[b] + size[b] / 8 + 16;
                if (next > max)
                    next = max;
                char *p = B_REALLOC(buf[b], next);
                if (!p)
                    die("out of memory");
                if (p[size[b] - 1] != (char)b)
                    die("realloc lost the contents");
                p[next - 1] = (char)b;
                buf[b] = p;
                size[b] = next;
                ops++;
                growing = 1;
            }
        }
        for (long b = 0; b < nbuf; b++)
            B_FREE(buf[b]);
    }
    double t = now() - t0;
    char extra[64];
    snprintf(extra, sizeof extra, ", \"max_size\": %zu", max);
    report("realloc", t, ops, extra);
    B_FREE(buf);
    B_FREE(size);
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

static int cmd_larson(int argc, char **argv)
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

/* ---- 8. frag: build up, free 90% interleaved, trim, reuse --------------- */

/* Mostly small blocks, one in 16 up to 16 KiB, one in 256 up to 256 KiB
 * (chosen so that some of them are among the survivors, i % 10 == 0). */
static size_t frag_size(rng_t *r, size_t i)
{
    if (i % 256 == 128)
        return rnd_size(r, 256 << 10);
    if (i % 16 == 8)
        return rnd_size(r, 16 << 10);
    return rnd_size(r, 512);
}

static int cmd_frag(int argc, char **argv)
{
    size_t n = (size_t)arg(argc, argv, 2, 1000000);
    if (n < 10)
        die("frag: N >= 10");
    rng_t r = rng_seed(8);
    char **blocks = table(n, sizeof *blocks);
    long base_kb = resident_kb();

    double t0 = now();
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t size = frag_size(&r, i);
        blocks[i] = xmalloc(size);
        memset(blocks[i], 1, size); /* the heap is really in use */
        bytes += size;
    }
    double t_build = now() - t0;
    long built_kb = resident_kb();

    t0 = now();
    for (size_t i = 0; i < n; i++)
        if (i % 10 != 0) { /* keep every tenth block: the survivors pin the heap */
            B_FREE(blocks[i]);
            blocks[i] = NULL;
        }
    double t_free = now() - t0;
    long freed_kb = resident_kb();

    t0 = now();
    const char *how = trim_all();
    double t_trim = now() - t0;
    long trimmed_kb = resident_kb();
#ifdef BENCH_MPOOL_API
    mpool_usage_t trimmed_usage = mpool_get_usage(bench_pool); /* held vs in live blocks */
#endif

    t0 = now();
    for (size_t i = 0; i < n; i++)
        if (!blocks[i]) {
            size_t size = frag_size(&r, i);
            blocks[i] = xmalloc(size);
            memset(blocks[i], 2, size);
        }
    double t_reuse = now() - t0;
    long reused_kb = resident_kb();

    char pool[96] = "";
#ifdef BENCH_MPOOL_API
    snprintf(pool, sizeof pool, ", \"trimmed_pool_total_kb\": %zu, \"trimmed_pool_used_kb\": %zu",
             trimmed_usage.total >> 10, trimmed_usage.used >> 10);
#endif
    char extra[896];
    snprintf(extra, sizeof extra,
             ", \"blocks\": %zu, \"bytes\": %zu, \"base_rss_kb\": %ld, \"built_rss_kb\": %ld, "
             "\"freed_rss_kb\": %ld, \"trimmed_rss_kb\": %ld, \"reused_rss_kb\": %ld, "
             "\"build_s\": %.6f, \"free_s\": %.6f, \"trim_s\": %.6f, \"reuse_s\": %.6f, "
             "\"trim\": \"%s\"%s",
             n, bytes, base_kb, built_kb, freed_kb, trimmed_kb, reused_kb, t_build, t_free, t_trim,
             t_reuse, how, pool);
    /* ops: the blocks built, freed and allocated again */
    report("frag", t_build + t_free + t_trim + t_reuse, (double)n + 2.0 * (double)(n - n / 10),
           extra);
    for (size_t i = 0; i < n; i++)
        B_FREE(blocks[i]);
    B_FREE(blocks);
    return 0;
}

/* ---- spawn: the runner's launcher -------------------------------------- */

/* A fresh small process between the runner and the measured program: a
 * child's ru_maxrss starts from the memory of the process that forked it, so
 * forking from the (large) runner would put a floor under every figure. */
static int cmd_spawn(int argc, char **argv)
{
    if (argc < 5)
        die("spawn: PRELOAD STDIN PROG [ARGS...]");
    const char *preload = argv[2], *input = argv[3];
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0)
        die("fork failed");
    if (pid == 0) {
        if (strcmp(input, "-") != 0 && !freopen(input, "r", stdin)) {
            perror(input);
            _exit(127);
        }
        if (strcmp(preload, "-") != 0)
            setenv("LD_PRELOAD", preload, 1);
        else
            unsetenv("LD_PRELOAD");
        execvp(argv[4], argv + 4);
        perror(argv[4]);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid)
        die("wait4 failed");
    double t = now() - t0;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fflush(stdout);
    printf("{\"spawn\": true, \"wall_s\": %.6f, \"maxrss_kb\": %ld, \"user_s\": %.6f, "
           "\"sys_s\": %.6f, \"exit\": %d}\n",
           t, ru.ru_maxrss, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6, code);
    return code;
}

/* ---- main ---------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *usage;
} commands[] = {
    { "pair", cmd_pair, "SIZE N" },
    { "batch", cmd_batch, "N ROUNDS" },
    { "churn", cmd_churn, "LIVE STEPS MAXSIZE" },
    { "prodcons", cmd_prodcons, "N" },
    { "threads", cmd_threads, "T OPS LIVE" },
    { "realloc", cmd_realloc, "NBUF MAXSIZE ROUNDS" },
    { "larson", cmd_larson, "T ROUNDS SLOTS OPS" },
    { "frag", cmd_frag, "N" },
    { "spawn", cmd_spawn, "PRELOAD STDIN PROG [ARGS...]" },
};

int main(int argc, char **argv)
{
    size_t ncommands = sizeof commands / sizeof commands[0];
    if (argc >= 2 && strcmp(argv[1], "spawn") == 0)
        return cmd_spawn(argc, argv); /* no pool: it only launches */
    if (argc >= 2)
        for (size_t i = 0; i < ncommands; i++)
            if (strcmp(argv[1], commands[i].name) == 0) {
#ifdef BENCH_MPOOL_API
                bench_pool = mpool_create(NULL);
                if (!bench_pool)
                    die("mpool_create failed");
#endif
                int rc = commands[i].run(argc, argv);
#ifdef BENCH_MPOOL_API
                if (mpool_check(bench_pool) != 0)
                    die("mpool_check found problems");
                mpool_destroy(bench_pool);
#endif
                return rc;
            }
    fprintf(stderr, "usage (%s):\n", B_VARIANT);
    for (size_t i = 0; i < ncommands; i++)
        fprintf(stderr, "  %s %s %s\n", argv[0], commands[i].name, commands[i].usage);
    return 2;
}
