/*
 * arena.c - the arena benchmark (mpool_bench_arena): a parse-like phase
 * workload served by an mpool arena, APR pools, talloc and malloc, and the
 * loop whose instructions per mpool_arena_alloc are counted.
 *
 *   mpool_bench_arena phase IMPL PHASES NODES
 *       PHASES times: build a tree of NODES nodes the way a parser does (a
 *       node of 48 bytes, its name copied into a string of 3-24 bytes, and
 *       every fourth node a list of 1-4 attribute pointers), walk it, then
 *       drop the whole phase at once.  IMPL:
 *         mpool        an arena (mpool_arena_create on a pool of the default
 *                      configuration): mpool_arena_alloc, then mpool_arena_reset
 *         apr          an APR pool: apr_palloc, then apr_pool_clear
 *         talloc       a talloc context per phase: talloc_size, then talloc_free
 *         talloc-pool  a talloc_pool of 1 MiB reused by every phase (what
 *                      talloc offers for this pattern): talloc_size, then
 *                      talloc_free_children
 *         malloc       malloc each, free each at the end of the phase (the
 *                      allocator is whatever LD_PRELOAD puts in front of glibc)
 *       ns_per_op: the thread's CPU time per allocation, the phase's release
 *       included (CPU time, not wall time: on a shared machine the wall time
 *       also counts the time other processes held the core; wall_ns_per_op
 *       gives it too).
 *   mpool_bench_arena loop N
 *       N mpool_arena_alloc calls of 32 bytes (a size known at compile time,
 *       as sizeof of a struct is), with a reset every 1000 (so they stay in
 *       one chunk): the loop of
 *       /work/shared/tools/instr-per-op './mpool_bench_arena loop @N@'.
 *
 * Every implementation sees the same requests (a fixed-seed xorshift).  APR
 * and talloc are compiled in when CMake finds them (BENCH_HAVE_APR,
 * BENCH_HAVE_TALLOC); asking for a missing one exits with status 2.
 * Output: one JSON line as bench.c writes it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpool.h>

#include "bench.h"

#ifdef BENCH_HAVE_APR
#include <apr_general.h>
#include <apr_pools.h>
#endif
#ifdef BENCH_HAVE_TALLOC
#include <talloc.h>
#endif

struct node {
    int kind;
    int nattrs;
    struct node *next, *child;
    char *name;
    void **attrs;
    double value;
};

_Static_assert(sizeof(struct node) == 48, "a node is 48 bytes");

/* ---- The allocators ------------------------------------------------------ */

enum impl { IMPL_MPOOL, IMPL_APR, IMPL_TALLOC, IMPL_TALLOC_POOL, IMPL_MALLOC };

struct phase_alloc {
    enum impl impl;
    mpool_arena_t *arena;
#ifdef BENCH_HAVE_APR
    apr_pool_t *apr;
#endif
#ifdef BENCH_HAVE_TALLOC
    void *ctx;
#endif
    void **blocks; /* malloc: every block of the phase, freed at its end */
    size_t nblocks;
};

static void fail(const char *what, int status)
{
    fprintf(stderr, "mpool_bench_arena: %s\n", what);
    exit(status);
}

static inline void *phase_get(struct phase_alloc *a, size_t size)
{
    switch (a->impl) {
    case IMPL_MPOOL:
        return mpool_arena_alloc(a->arena, size);
#ifdef BENCH_HAVE_APR
    case IMPL_APR:
        return apr_palloc(a->apr, size);
#endif
#ifdef BENCH_HAVE_TALLOC
    case IMPL_TALLOC:
    case IMPL_TALLOC_POOL:
        return talloc_size(a->ctx, size);
#endif
    case IMPL_MALLOC: {
        void *p = malloc(size);
        a->blocks[a->nblocks++] = p;
        return p;
    }
    default:
        return NULL;
    }
}

/* Drops everything the phase allocated. */
static void phase_end(struct phase_alloc *a)
{
    switch (a->impl) {
    case IMPL_MPOOL:
        mpool_arena_reset(a->arena);
        break;
#ifdef BENCH_HAVE_APR
    case IMPL_APR:
        apr_pool_clear(a->apr);
        break;
#endif
#ifdef BENCH_HAVE_TALLOC
    case IMPL_TALLOC:
        talloc_free(a->ctx);
        a->ctx = talloc_new(NULL);
        break;
    case IMPL_TALLOC_POOL:
        talloc_free_children(a->ctx);
        break;
#endif
    case IMPL_MALLOC:
        for (size_t i = 0; i < a->nblocks; i++)
            free(a->blocks[i]);
        a->nblocks = 0;
        break;
    default:
        break;
    }
}

static void phase_setup(struct phase_alloc *a, const char *name, size_t max_blocks)
{
    memset(a, 0, sizeof *a);
    if (strcmp(name, "mpool") == 0) {
        a->impl = IMPL_MPOOL;
        a->arena = mpool_arena_create(mpool_create(NULL), 0, 0);
        if (!a->arena)
            fail("mpool_arena_create failed", 1);
    } else if (strcmp(name, "apr") == 0) {
        a->impl = IMPL_APR;
#ifdef BENCH_HAVE_APR
        if (apr_initialize() != APR_SUCCESS || apr_pool_create(&a->apr, NULL) != APR_SUCCESS)
            fail("apr_pool_create failed", 1);
#else
        fail("built without APR (Debian libapr1-dev)", 2);
#endif
    } else if (strcmp(name, "talloc") == 0 || strcmp(name, "talloc-pool") == 0) {
#ifdef BENCH_HAVE_TALLOC
        a->impl = name[6] ? IMPL_TALLOC_POOL : IMPL_TALLOC;
        a->ctx = a->impl == IMPL_TALLOC_POOL ? talloc_pool(NULL, (size_t)1 << 20) : talloc_new(NULL);
        if (!a->ctx)
            fail("talloc failed", 1);
#else
        fail("built without talloc (Debian libtalloc-dev)", 2);
#endif
    } else if (strcmp(name, "malloc") == 0) {
        a->impl = IMPL_MALLOC;
        a->blocks = malloc(max_blocks * sizeof *a->blocks);
        if (!a->blocks)
            fail("out of memory", 1);
    } else {
        fail("IMPL is mpool, apr, talloc, talloc-pool or malloc", 2);
    }
}

/* ---- The workloads -------------------------------------------------------- */

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long number(const char *s)
{
    char *end;
    long v = strtol(s, &end, 0);
    if (*end || v <= 0)
        fail("arguments are positive integers", 2);
    return v;
}

static const char source_text[] = "the quick brown fox jumps over the lazy dog while parsing a phase";

/* One phase: NODES nodes in a tree, walked; returns the allocations made. */
static size_t phase_run(struct phase_alloc *a, long nodes, rng_t *r, uint64_t *sum)
{
    size_t allocs = 0;
    struct node *root = NULL, *open = NULL;
    for (long i = 0; i < nodes; i++) {
        uint64_t x = rnd(r);
        struct node *n = phase_get(a, sizeof *n);
        size_t len = 3 + x % 22;
        n->name = phase_get(a, len + 1);
        memcpy(n->name, source_text + (x >> 8) % (sizeof source_text - 26), len);
        n->name[len] = 0;
        n->kind = (int)(x >> 16) & 7;
        n->value = (double)i;
        n->nattrs = (x >> 20) % 4 == 0 ? 1 + (int)((x >> 24) % 4) : 0;
        n->attrs = NULL;
        allocs += 2;
        if (n->nattrs) {
            n->attrs = phase_get(a, (size_t)n->nattrs * sizeof *n->attrs);
            for (int k = 0; k < n->nattrs; k++)
                n->attrs[k] = n->name;
            allocs++;
        }
        n->child = NULL;
        if (!open || (x >> 32) % 3 == 0) { /* a sibling of the open node's children, or a new child */
            n->next = root;
            root = n;
        } else {
            n->next = open->child;
            open->child = n;
        }
        if ((x >> 40) % 5 == 0)
            open = n;
    }
    for (struct node *n = root; n; n = n->next) {
        *sum += (uint64_t)n->kind + (unsigned char)n->name[0];
        for (struct node *c = n->child; c; c = c->next)
            *sum += (uint64_t)c->nattrs + (unsigned char)c->name[1];
    }
    phase_end(a);
    return allocs;
}

static int cmd_phase(int argc, char **argv)
{
    if (argc != 5)
        fail("phase IMPL PHASES NODES", 2);
    long phases = number(argv[3]), nodes = number(argv[4]);
    struct phase_alloc a;
    phase_setup(&a, argv[2], (size_t)nodes * 3);
    rng_t r = rng_seed(42);
    uint64_t sum = 0;
    size_t allocs = phase_run(&a, nodes, &r, &sum); /* warm up: the first phase takes the memory */
    allocs = 0;
    double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    for (long p = 0; p < phases; p++)
        allocs += phase_run(&a, nodes, &r, &sum);
    double cpu = now_s(CLOCK_THREAD_CPUTIME_ID) - c0, wall = now_s(CLOCK_MONOTONIC) - t0;
    printf("{\"workload\": \"arena-phase\", \"variant\": \"%s\", \"ns_per_op\": %.3f, \"wall_ns_per_op\": %.3f, "
           "\"ops\": %zu, \"seconds\": %.6f, \"cpu_seconds\": %.6f, \"checksum\": %llu}\n",
           argv[2], cpu * 1e9 / (double)allocs, wall * 1e9 / (double)allocs, allocs, wall, cpu,
           (unsigned long long)(sum & 0xffff));
    return 0;
}

static int cmd_loop(int argc, char **argv)
{
    if (argc != 3)
        fail("loop N", 2);
    long n = number(argv[2]);
    mpool_arena_t *a = mpool_arena_create(mpool_create(NULL), 0, 0);
    if (!a)
        fail("loop: no arena", 1);
    for (long i = 0; i < n; i += 1000) {
        for (int k = 0; k < 1000; k++) {
            void *p = mpool_arena_alloc(a, sizeof(struct node) - 16); /* a 32-byte struct */
            ESCAPE(p);
        }
        mpool_arena_reset(a);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "phase") == 0)
        return cmd_phase(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "loop") == 0)
        return cmd_loop(argc, argv);
    fail("usage: mpool_bench_arena phase IMPL PHASES NODES | loop N", 2);
    return 2;
}
