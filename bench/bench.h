/*
 * bench.h - what the workloads of the benchmark driver share (bench.c, the
 * driver and its single-thread workloads; threads.c, the multi-thread ones):
 * the allocator under test (B_MALLOC, B_FREE, B_REALLOC), the clock, the
 * fixed-seed random sizes, the result line.  The helpers called in measured
 * loops are static inline here, so every workload's loop compiles as if they
 * were in its own file.
 */
#ifndef MPOOL_BENCH_H
#define MPOOL_BENCH_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef BENCH_MPOOL_API
#include <mpool.h>
extern mpool_t *bench_pool; /* bench.c */
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

_Noreturn void die(const char *what);
void *xmalloc(size_t n);
void *table(size_t count, size_t size); /* zeroed, from the allocator under test */
double now(void);
long arg(int argc, char **argv, int i, long fallback);
void report(const char *workload, double seconds, double ops, const char *extra);

typedef struct { uint64_t s; } rng_t;

static inline uint64_t rnd(rng_t *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

static inline rng_t rng_seed(uint64_t seed) { return (rng_t){ seed * 0x9E3779B97F4A7C15ULL + 1 }; }

/* A size between min and max (inclusive), log-uniform: a power-of-two band
 * is picked uniformly, then a size uniformly inside it.  Small sizes dominate
 * the count, large ones the bytes, as in most programs. */
static inline size_t rnd_size_from(rng_t *r, size_t min, size_t max)
{
    unsigned bands = 0;
    while ((min << (bands + 1)) <= max)
        bands++;
    uint64_t x = rnd(r);
    size_t lo = min << (x % (bands + 1));
    size_t size = lo + (size_t)((x >> 16) % lo);
    return size > max ? max : size;
}

static inline size_t rnd_size(rng_t *r, size_t max) { return rnd_size_from(r, 8, max); }

/* Writes a block the way a program using it would make it resident: all of
 * it when small, one byte per page and the last byte when larger. */
static inline void touch(char *p, size_t size, int v)
{
    if (size <= 1024) {
        memset(p, v, size);
        return;
    }
    for (size_t i = 0; i < size; i += 4096)
        p[i] = (char)v;
    p[size - 1] = (char)v;
}

/* Waits a little in a spin loop: pause, and after 64 rounds give the core away. */
static inline void relax(unsigned *spins)
{
    if (++*spins < 64)
        __asm__ volatile("pause");
    else {
        sched_yield();
        *spins = 0;
    }
}

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

/* The churn of bench.c, also the body of each thread of `threads`. */
double churn_run(char **live, size_t count, long steps, size_t max, rng_t *r);
char **churn_fill(size_t count, size_t max, rng_t *r);
void churn_drop(char **live, size_t count);

/* threads.c: the multi-thread workloads. */
int cmd_prodcons(int argc, char **argv);
int cmd_threads(int argc, char **argv);
int cmd_larson(int argc, char **argv);
int cmd_xfree(int argc, char **argv);
int cmd_exchange(int argc, char **argv);
int cmd_bursts(int argc, char **argv);

#endif /* MPOOL_BENCH_H */
