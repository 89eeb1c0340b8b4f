/*
 * bench.c - the allocator benchmark driver: one program, one workload per
 * subcommand, one line of JSON out.
 *
 * The multi-thread workloads (prodcons, threads, larson, xfree, exchange,
 * bursts) live in threads.c; what the workloads share is in bench.h.
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
 *                                       by 1/8 + 16 B a step, last byte written
 *   bench grow NBUF MAXSIZE ROUNDS      the same by 25% a step (size * 5 / 4),
 *                                       each new tail written
 *   bench larson T ROUNDS SLOTS OPS     larson-like: threads replace blocks in
 *                                       arrays that move to the next thread
 *                                       every round
 *   bench frag N                        build N mixed blocks, free 90% interleaved,
 *                                       trim, reuse; resident memory at each step
 *   bench xfree PAIRS BATCH BATCHES     PAIRS producer threads fill batches of
 *                                       BATCH blocks of 16 B - 1 KiB; PAIRS
 *                                       consumer threads free whole batches
 *   bench exchange T STEPS MAXSIZE      T threads each allocate STEPS blocks of
 *                                       16 B - MAXSIZE (log-uniform), touch them,
 *                                       pass half to the next thread through a
 *                                       queue, and free what they receive
 *   bench bursts T BURSTS K MAXSIZE     T threads each run BURSTS bursts: K/2..K
 *                                       blocks of 16 B - MAXSIZE made, written,
 *                                       freed
 *   bench tiny N                        a small single-thread program (N words
 *                                       counted, sorted, printed to a buffer):
 *                                       the runner takes its peak RSS and time
 *
 *   bench spawn PRELOAD STDIN PROG ARGS...
 *                                       runs PROG (LD_PRELOAD=PRELOAD, stdin from
 *                                       STDIN; "-": none) and reports its wall
 *                                       time and peak RSS: the runner's launcher
 *
 * Output: {"workload":..., "ns_per_op":..., "ops":..., "seconds":...,
 * "peak_rss_kb":..., extra fields}.  Times cover the measured loop only
 * (CLOCK_MONOTONIC), not start-up; for several threads, from the first
 * thread's start to the last one's end.  Random numbers are a fixed-seed
 * xorshift, so every allocator sees the same sequence of requests (threads
 * exchanging blocks see the same requests, not the same interleaving).
 *
 * The real programs of the runner (a Python script, sqlite3, redis-server)
 * are not here: bench/run.py launches them through spawn or, for a server,
 * starts and measures them itself.
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

#include "bench.h"

#ifdef BENCH_MPOOL_API
mpool_t *bench_pool;
#endif

/* ---- Small helpers ------------------------------------------------------ */

_Noreturn void die(const char *what)
{
    fprintf(stderr, "bench: %s\n", what);
    exit(1);
}

void *xmalloc(size_t n)
{
    void *p = B_MALLOC(n);
    if (!p)
        die("out of memory");
    return p;
}

/* Bookkeeping arrays of the benchmark itself: from the measured allocator
 * too (the binary has no other), but allocated before the clock starts. */
void *table(size_t count, size_t size)
{
    void *p = xmalloc(count * size);
    memset(p, 0, count * size);
    return p;
}

double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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

long arg(int argc, char **argv, int i, long fallback)
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
void report(const char *workload, double seconds, double ops, const char *extra)
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

double churn_run(char **live, size_t count, long steps, size_t max, rng_t *r)
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

char **churn_fill(size_t count, size_t max, rng_t *r)
{
    char **live = table(count, sizeof *live);
    for (size_t i = 0; i < count; i++) {
        live[i] = xmalloc(rnd_size(r, max));
        live[i][0] = 1;
    }
    return live;
}

void churn_drop(char **live, size_t count)
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

/* ---- 6. realloc, grow: buffers grown from 64 B to MAXSIZE --------------- */

/* How a buffer grows: next = size * num / den + add; fill writes every new
 * byte (a buffer filled as it grows), else only the new last one. */
typedef struct {
    size_t num, den, add;
    int fill;
} growth_t;

/* NBUF buffers grown round robin, so neighbours compete for the space after
 * each buffer; checks that realloc kept the contents.  Returns the reallocs. */
static double realloc_run(char **buf, size_t *size, long nbuf, size_t max, long rounds,
                          growth_t g)
{
    double ops = 0;
    for (long round = 0; round < rounds; round++) {
        for (long b = 0; b < nbuf; b++) {
            size[b] = 64;
            buf[b] = xmalloc(64);
            memset(buf[b], (int)b, 64);
        }
        int growing = 1;
        while (growing) {
            growing = 0;
            for (long b = 0; b < nbuf; b++) {
                if (size[b] >= max)
                    continue;
                size_t next = size[b] * g.num / g.den + g.add;
                if (next > max)
                    next = max;
                char *p = B_REALLOC(buf[b], next);
                if (!p)
                    die("out of memory");
                if (p[size[b] - 1] != (char)b)
                    die("realloc lost the contents");
                if (g.fill)
                    memset(p + size[b], (int)b, next - size[b]);
                else
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
    return ops;
}

static int realloc_cmd(int argc, char **argv, const char *name, growth_t g, size_t max_default)
{
    long nbuf = arg(argc, argv, 2, 8);
    size_t max = (size_t)arg(argc, argv, 3, (long)max_default);
    long rounds = arg(argc, argv, 4, 10);
    if (nbuf < 1 || max < 64)
        die("realloc: NBUF >= 1, MAXSIZE >= 64");
    char **buf = table((size_t)nbuf, sizeof *buf);
    size_t *size = table((size_t)nbuf, sizeof *size);
    double t0 = now();
    double ops = realloc_run(buf, size, nbuf, max, rounds, g);
    double t = now() - t0;
    char extra[64];
    snprintf(extra, sizeof extra, ", \"max_size\": %zu", max);
    report(name, t, ops, extra);
    B_FREE(buf);
    B_FREE(size);
    return 0;
}

/* Each step adds 1/8 plus 16 bytes (a string or vector that grows a little
 * at a time) and writes the new last byte. */
static int cmd_realloc(int argc, char **argv)
{
    return realloc_cmd(argc, argv, "realloc", (growth_t){ 9, 8, 16, 0 }, 4 << 20);
}

/* Each step adds 25% (size * 5 / 4) and writes the whole new tail: a buffer
 * that is filled as it grows. */
static int cmd_grow(int argc, char **argv)
{
    return realloc_cmd(argc, argv, "grow", (growth_t){ 5, 4, 0, 1 }, 1 << 20);
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

/* ---- 13. tiny: a short single-thread program ------------------------------ */

/* What a small command-line tool does with the heap: split generated text
 * into words (a block each), count them in a chained hash table, gather the
 * distinct ones in an array grown by realloc, sort it, render a report into
 * a growing string, free everything.  About N + N/8 + a few hundred blocks;
 * the runner reports the peak RSS and the wall time of the whole process. */
typedef struct word {
    struct word *next;
    long count;
    char text[];
} word_t;

static int word_order(const void *a, const void *b)
{
    const word_t *x = *(word_t *const *)a, *y = *(word_t *const *)b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->text, y->text);
}

static int cmd_tiny(int argc, char **argv)
{
    long nwords = arg(argc, argv, 2, 3000);
    if (nwords < 1)
        die("tiny: N >= 1");
    rng_t r = rng_seed(13);
    double t0 = now();
    size_t nbuckets = 256, ndistinct = 0, cap = 16, len = 0, room = 256;
    word_t **bucket = xmalloc(nbuckets * sizeof *bucket);
    memset(bucket, 0, nbuckets * sizeof *bucket);
    word_t **all = xmalloc(cap * sizeof *all);
    for (long i = 0; i < nwords; i++) {
        char w[48]; /* a word from a small vocabulary, most of them short */
        uint64_t x = rnd(&r) % (uint64_t)(nwords / 8 + 1);
        int n = snprintf(w, sizeof w, "w%" PRIu64 "%.*s", x, (int)(x % 29),
                         "abcdefghijklmnopqrstuvwxyz0123456789");
        char *token = xmalloc((size_t)n + 1); /* the tokenizer's copy */
        memcpy(token, w, (size_t)n + 1);
        uint64_t h = 1469598103934665603ULL;
        for (const char *c = token; *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ULL;
        word_t **slot = &bucket[h % nbuckets];
        while (*slot && strcmp((*slot)->text, token) != 0)
            slot = &(*slot)->next;
        if (*slot) {
            (*slot)->count++;
        } else {
            word_t *e = xmalloc(sizeof *e + (size_t)n + 1);
            e->next = NULL;
            e->count = 1;
            memcpy(e->text, token, (size_t)n + 1);
            *slot = e;
            if (ndistinct == cap) {
                cap *= 2;
                word_t **grown = B_REALLOC(all, cap * sizeof *all);
                if (!grown)
                    die("out of memory");
                all = grown;
            }
            all[ndistinct++] = e;
        }
        B_FREE(token);
    }
    qsort(all, ndistinct, sizeof *all, word_order);
    char *out = xmalloc(room);
    for (size_t i = 0; i < ndistinct; i++) {
        char line[96];
        int n = snprintf(line, sizeof line, "%6ld %s\n", all[i]->count, all[i]->text);
        if (len + (size_t)n + 1 > room) {
            room *= 2;
            char *grown = B_REALLOC(out, room);
            if (!grown)
                die("out of memory");
            out = grown;
        }
        memcpy(out + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
    unsigned long sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = sum * 31 + (unsigned char)out[i];
    B_FREE(out);
    for (size_t i = 0; i < ndistinct; i++)
        B_FREE(all[i]);
    B_FREE(all);
    B_FREE(bucket);
    double t = now() - t0;
    char extra[96];
    snprintf(extra, sizeof extra, ", \"distinct\": %zu, \"checksum\": %lu", ndistinct, sum % 1000000);
    report("tiny", t, (double)nwords, extra); /* per word read */
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
    { "grow", cmd_grow, "NBUF MAXSIZE ROUNDS" },
    { "larson", cmd_larson, "T ROUNDS SLOTS OPS" },
    { "frag", cmd_frag, "N" },
    { "xfree", cmd_xfree, "PAIRS BATCH BATCHES" },
    { "exchange", cmd_exchange, "T STEPS MAXSIZE" },
    { "bursts", cmd_bursts, "T BURSTS K MAXSIZE" },
    { "tiny", cmd_tiny, "N" },
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
