/*
 * programs/stress.c - multi-thread malloc stress that knows nothing of mpool.
 *
 * A plain C program using only the libc allocation API (malloc, calloc,
 * realloc, free, posix_memalign, aligned_alloc, malloc_usable_size).  It is
 * built without linking mpool and run twice by tests/programs/run.sh: once
 * on glibc's allocator and once with libmpool-malloc.so preloaded; both runs
 * must print the same summary.
 *
 *   stress [THREADS [OPS_PER_THREAD [SEED]]]      defaults: 4 100000 1
 *
 * Phases
 *   1. THREADS workers, each with its own random generator and 1024 slots,
 *      do OPS_PER_THREAD random operations: malloc / calloc / realloc /
 *      posix_memalign / aligned_alloc / free, sizes from 1 B to 1 MiB
 *      (mostly small), alignments from sizeof(void *) to 1 MiB.  Every block
 *      carries a pattern derived from a tag; it is checked before every free
 *      and realloc (realloc must keep the common prefix) and calloc memory
 *      must be zero.  A share of the blocks is handed to the next worker
 *      through a mailbox and freed there (cross-thread frees).  While the
 *      workers run, the main thread forks children that allocate, check and
 *      free before _exit.
 *   2. Short-lived threads by the hundred (a few at a time); each leaves
 *      blocks behind that the main thread checks and frees after the thread
 *      has ended.
 *
 * The summary depends only on the seeds, never on scheduling: per-thread
 * counts and sums of tags (sums commute, so the order in which mailboxes are
 * drained does not matter).  Any failed check prints one line on stderr and
 * the program exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOTS 1024
#define MAX_THREADS 64
#define SHORT_ROUNDS 40     /* phase 2: rounds ... */
#define SHORT_PER_ROUND 8   /* ... of this many threads at once */
#define SHORT_OPS 1500
#define SHORT_LEFT 16       /* blocks each short-lived thread leaves behind */
#define FORKS 4

static atomic_int failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("stress: FAILED: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    atomic_fetch_add(&failures, 1);
}

/* ---- random numbers ------------------------------------------------------ */

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static size_t below(uint64_t *rng, size_t n)
{
    return (size_t)(splitmix(rng) % n);
}

/* Mostly small sizes, some medium, few large, rare huge. */
static size_t random_size(uint64_t *rng)
{
    unsigned r = (unsigned)below(rng, 1000);
    if (r < 700)
        return 1 + below(rng, 128);
    if (r < 950)
        return 129 + below(rng, 4096 - 128);
    if (r < 995)
        return 4097 + below(rng, 65536 - 4096);
    return 65537 + below(rng, (1u << 20) - 65536);
}

static size_t random_alignment(uint64_t *rng)
{
    unsigned r = (unsigned)below(rng, 1000);
    unsigned shift;
    if (r < 900)
        shift = 3 + (unsigned)below(rng, 4);     /* 8 .. 64 */
    else if (r < 995)
        shift = 7 + (unsigned)below(rng, 6);     /* 128 .. 4096 */
    else
        shift = 13 + (unsigned)below(rng, 8);    /* 8 KiB .. 1 MiB */
    return (size_t)1 << shift;
}

/* ---- patterns ------------------------------------------------------------ */

typedef struct block {
    unsigned char *p;
    size_t size;
    uint64_t tag;
    int zero; /* came from calloc and not written yet */
} block_t;

static uint64_t word_at(uint64_t tag, size_t index)
{
    return (tag * UINT64_C(0x9e3779b97f4a7c15)) ^ (index * UINT64_C(0xff51afd7ed558ccd));
}

/* Fill bytes [from, to) of a block with its pattern (whole words by index). */
static void fill(unsigned char *p, uint64_t tag, size_t from, size_t to)
{
    size_t i = from;
    while (i < to) {
        size_t w = i / 8, off = i % 8, n = 8 - off;
        uint64_t v = word_at(tag, w);
        if (n > to - i)
            n = to - i;
        memcpy(p + i, (unsigned char *)&v + off, n);
        i += n;
    }
}

/* Check bytes [0, len) of a block against its pattern; 0 when good. */
static int check(const unsigned char *p, uint64_t tag, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t w = i / 8, off = i % 8, n = 8 - off;
        uint64_t v = word_at(tag, w);
        if (n > len - i)
            n = len - i;
        if (memcmp(p + i, (unsigned char *)&v + off, n) != 0)
            return 1;
        i += n;
    }
    return 0;
}

static int all_zero(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return 0;
    return 1;
}

static void verify(const char *who, const block_t *b)
{
    if (b->zero ? !all_zero(b->p, b->size) : check(b->p, b->tag, b->size) != 0)
        fail("%s: block %p (%zu bytes, tag %" PRIu64 ") was overwritten", who, (void *)b->p,
             b->size, b->tag);
    size_t usable = malloc_usable_size(b->p);
    if (usable < b->size)
        fail("%s: malloc_usable_size(%p) = %zu < %zu requested", who, (void *)b->p, usable,
             b->size);
}

static void release(const char *who, block_t *b)
{
    verify(who, b);
    free(b->p);
    b->p = NULL;
}

/* ---- mailboxes (cross-thread frees) -------------------------------------- */

typedef struct mailbox {
    pthread_mutex_t lock;
    block_t *items; /* grown with realloc, so it goes through the allocator too */
    size_t count, cap;
} mailbox_t;

static void post(mailbox_t *m, block_t b)
{
    pthread_mutex_lock(&m->lock);
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        block_t *items = realloc(m->items, cap * sizeof *items);
        if (!items) {
            pthread_mutex_unlock(&m->lock);
            fail("realloc of a mailbox to %zu items returned NULL", cap);
            free(b.p);
            return;
        }
        m->items = items;
        m->cap = cap;
    }
    m->items[m->count++] = b;
    pthread_mutex_unlock(&m->lock);
}

typedef struct counts {
    uint64_t mallocs, callocs, reallocs, aligned, frees, sent, received;
    uint64_t tag_sum, received_sum, byte_sum;
} counts_t;

/* Take every block out of a mailbox, check and free it. */
static void drain(mailbox_t *m, counts_t *c)
{
    pthread_mutex_lock(&m->lock);
    size_t n = m->count;
    block_t *items = m->items;
    m->items = NULL;
    m->count = m->cap = 0;
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; i < n; i++) {
        c->received++;
        c->received_sum += items[i].tag;
        release("cross-thread free", &items[i]);
    }
    free(items);
}

/* ---- phase 1: workers ---------------------------------------------------- */

typedef struct worker {
    int index;
    pthread_t thread;
    uint64_t rng;
    uint64_t ops;
    mailbox_t *inbox, *next_inbox;
    counts_t c;
} worker_t;

static int nthreads;
static mailbox_t mailboxes[MAX_THREADS];
static worker_t workers[MAX_THREADS];
static atomic_int workers_done;

static void *alloc_one(uint64_t *rng, block_t *b, counts_t *c, uint64_t tag)
{
    size_t size = random_size(rng);
    unsigned kind = (unsigned)below(rng, 10);
    void *p = NULL;
    b->zero = 0;
    if (kind < 6) {
        p = malloc(size);
        c->mallocs++;
    } else if (kind < 8) {
        size_t n = 1 + below(rng, 4);
        p = calloc(n, size);
        size *= n;
        b->zero = 1;
        c->callocs++;
    } else {
        size_t align = random_alignment(rng);
        if (kind == 8) {
            int err = posix_memalign(&p, align, size);
            if (err) {
                fail("posix_memalign(%zu, %zu) returned %d", align, size, err);
                p = NULL;
            }
        } else {
            size_t rounded = (size + align - 1) / align * align;
            p = aligned_alloc(align, rounded);
            size = rounded;
        }
        if (p && ((uintptr_t)p & (align - 1)) != 0)
            fail("aligned allocation of %zu bytes at %p is not %zu-aligned", size, p, align);
        c->aligned++;
    }
    if (!p) {
        fail("allocation of %zu bytes returned NULL (errno %d)", size, errno);
        b->p = NULL;
        return NULL;
    }
    b->p = p;
    b->size = size;
    b->tag = tag;
    c->tag_sum += tag;
    c->byte_sum += size;
    if (!b->zero)
        fill(b->p, tag, 0, size);
    return p;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    block_t *slots = calloc(SLOTS, sizeof *slots);
    if (!slots) {
        fail("worker %d: calloc of its slots failed", w->index);
        return NULL;
    }
    uint64_t next_tag = (uint64_t)w->index << 40;
    for (uint64_t op = 0; op < w->ops && atomic_load(&failures) == 0; op++) {
        block_t *b = &slots[below(&w->rng, SLOTS)];
        unsigned what = (unsigned)below(&w->rng, 100);
        if (!b->p) {
            alloc_one(&w->rng, b, &w->c, ++next_tag);
        } else if (what < 30) {
            w->c.frees++;
            release("free", b);
        } else if (what < 55) {
            /* realloc: keep the common prefix, fill the rest */
            verify("realloc", b);
            size_t size = random_size(&w->rng);
            unsigned char *p = realloc(b->p, size);
            w->c.reallocs++;
            if (!p) {
                fail("realloc(%p, %zu) returned NULL", (void *)b->p, size);
                continue;
            }
            size_t keep = size < b->size ? size : b->size;
            if (b->zero ? !all_zero(p, keep) : check(p, b->tag, keep) != 0)
                fail("realloc from %zu to %zu bytes lost the contents (tag %" PRIu64 ")",
                     b->size, size, b->tag);
            if (b->zero) /* turn it into a patterned block */
                fill(p, b->tag, 0, size);
            else
                fill(p, b->tag, keep, size);
            b->p = p;
            b->size = size;
            b->zero = 0;
            w->c.byte_sum += size;
        } else if (what < 70) {
            /* hand the block to the next worker, who frees it */
            verify("send", b);
            post(w->next_inbox, *b);
            w->c.sent++;
            b->p = NULL;
        } else {
            /* free and allocate anew */
            w->c.frees++;
            release("free", b);
            alloc_one(&w->rng, b, &w->c, ++next_tag);
        }
        if ((op & 255) == 0)
            drain(w->inbox, &w->c);
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (slots[i].p) {
            w->c.frees++;
            release("final free", &slots[i]);
        }
    free(slots);
    atomic_fetch_add(&workers_done, 1);
    return NULL;
}

/* A child of a multi-threaded parent: allocate, check, free, _exit. */
static void forked_child(uint64_t seed)
{
    uint64_t rng = seed;
    block_t blocks[256];
    counts_t c;
    memset(&c, 0, sizeof c);
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < 256; i++)
            if (!alloc_one(&rng, &blocks[i], &c, (uint64_t)round * 1000 + (uint64_t)i + 1))
                _exit(3);
        for (int i = 0; i < 256; i++)
            release("forked child", &blocks[i]);
    }
    _exit(atomic_load(&failures) ? 4 : 0);
}

/* ---- phase 2: short-lived threads ---------------------------------------- */

typedef struct shorty {
    pthread_t thread;
    uint64_t rng;
    uint64_t tag_base;
    block_t left[SHORT_LEFT];
    counts_t c;
} shorty_t;

static void *shorty_main(void *arg)
{
    shorty_t *s = arg;
    block_t slots[64];
    memset(slots, 0, sizeof slots);
    uint64_t tag = s->tag_base;
    for (int op = 0; op < SHORT_OPS; op++) {
        block_t *b = &slots[below(&s->rng, 64)];
        if (b->p) {
            s->c.frees++;
            release("short-lived free", b);
        } else {
            alloc_one(&s->rng, b, &s->c, ++tag);
        }
    }
    int kept = 0;
    for (int i = 0; i < 64; i++) {
        if (!slots[i].p)
            continue;
        if (kept < SHORT_LEFT) {
            s->left[kept++] = slots[i]; /* freed by the main thread after we end */
        } else {
            s->c.frees++;
            release("short-lived final free", &slots[i]);
        }
    }
    while (kept < SHORT_LEFT)
        alloc_one(&s->rng, &s->left[kept++], &s->c, ++tag);
    return NULL;
}

/* ---- main ---------------------------------------------------------------- */

static void print_counts(const char *label, const counts_t *c)
{
    printf("%s: malloc %" PRIu64 " calloc %" PRIu64 " realloc %" PRIu64 " aligned %" PRIu64
           " free %" PRIu64 " sent %" PRIu64 " received %" PRIu64 " tags %016" PRIx64
           " received-tags %016" PRIx64 " bytes %" PRIu64 "\n",
           label, c->mallocs, c->callocs, c->reallocs, c->aligned, c->frees, c->sent, c->received,
           c->tag_sum, c->received_sum, c->byte_sum);
}

int main(int argc, char **argv)
{
    nthreads = argc > 1 ? atoi(argv[1]) : 4;
    long long ops = argc > 2 ? atoll(argv[2]) : 100000;
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : 1;
    if (nthreads < 1 || nthreads > MAX_THREADS || ops < 1) {
        fprintf(stderr, "usage: stress [THREADS (1..%d) [OPS_PER_THREAD [SEED]]]\n", MAX_THREADS);
        return 2;
    }
    printf("stress: %d threads x %lld operations, seed %" PRIu64 "\n", nthreads, ops, seed);

    /* phase 1 */
    for (int i = 0; i < nthreads; i++) {
        pthread_mutex_init(&mailboxes[i].lock, NULL);
        workers[i].index = i;
        workers[i].rng = seed * 1000003u + (uint64_t)i;
        workers[i].ops = (uint64_t)ops;
        workers[i].inbox = &mailboxes[i];
        workers[i].next_inbox = &mailboxes[(i + 1) % nthreads];
    }
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            fprintf(stderr, "stress: pthread_create failed\n");
            return 1;
        }
    /* fork while the workers allocate */
    int forks_ok = 0;
    for (int f = 0; f < FORKS; f++) {
        if (atomic_load(&workers_done) == nthreads)
            break; /* counted below as ok: the output must not depend on timing */
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            fail("fork: errno %d", errno);
            break;
        }
        if (pid == 0)
            forked_child(seed + (uint64_t)f);
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail("forked child %d did not exit 0 (status 0x%x)", f, (unsigned)status);
        else
            forks_ok++;
        usleep(20000);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(workers[i].thread, NULL);
    counts_t total;
    memset(&total, 0, sizeof total);
    for (int i = 0; i < nthreads; i++) {
        drain(&mailboxes[i], &workers[i].c);
        char label[32];
        snprintf(label, sizeof label, "worker %d", i);
        print_counts(label, &workers[i].c);
        total.mallocs += workers[i].c.mallocs;
        total.callocs += workers[i].c.callocs;
        total.reallocs += workers[i].c.reallocs;
        total.aligned += workers[i].c.aligned;
        total.frees += workers[i].c.frees;
        total.sent += workers[i].c.sent;
        total.received += workers[i].c.received;
        total.tag_sum += workers[i].c.tag_sum;
        total.received_sum += workers[i].c.received_sum;
        total.byte_sum += workers[i].c.byte_sum;
    }
    print_counts("workers", &total);
    if (total.sent != total.received)
        fail("%" PRIu64 " blocks sent but %" PRIu64 " received", total.sent, total.received);
    printf("fork: children ok\n");
    (void)forks_ok;

    /* phase 2 */
    counts_t shorts;
    memset(&shorts, 0, sizeof shorts);
    static shorty_t group[SHORT_PER_ROUND];
    for (int round = 0; round < SHORT_ROUNDS; round++) {
        for (int i = 0; i < SHORT_PER_ROUND; i++) {
            memset(&group[i], 0, sizeof group[i]);
            group[i].rng = seed * 7919u + (uint64_t)(round * SHORT_PER_ROUND + i);
            group[i].tag_base = (uint64_t)(round * SHORT_PER_ROUND + i + 1) << 32;
            if (pthread_create(&group[i].thread, NULL, shorty_main, &group[i]) != 0) {
                fprintf(stderr, "stress: pthread_create failed\n");
                return 1;
            }
        }
        for (int i = 0; i < SHORT_PER_ROUND; i++) {
            pthread_join(group[i].thread, NULL);
            for (int k = 0; k < SHORT_LEFT; k++) {
                if (!group[i].left[k].p)
                    continue;
                group[i].c.frees++;
                group[i].c.received++;
                group[i].c.received_sum += group[i].left[k].tag;
                release("free after thread exit", &group[i].left[k]);
            }
            shorts.mallocs += group[i].c.mallocs;
            shorts.callocs += group[i].c.callocs;
            shorts.aligned += group[i].c.aligned;
            shorts.frees += group[i].c.frees;
            shorts.received += group[i].c.received;
            shorts.tag_sum += group[i].c.tag_sum;
            shorts.received_sum += group[i].c.received_sum;
            shorts.byte_sum += group[i].c.byte_sum;
        }
    }
    char label[64];
    snprintf(label, sizeof label, "short-lived threads (%d)", SHORT_ROUNDS * SHORT_PER_ROUND);
    print_counts(label, &shorts);

    int bad = atomic_load(&failures);
    printf("%s\n", bad ? "FAILED" : "OK");
    return bad ? 1 : 0;
}
