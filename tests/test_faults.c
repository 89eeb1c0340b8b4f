/*
 * test_faults.c - every call the system may refuse, refused in turn.
 *
 * A scripted workload (four pools: thread safe and not, capped, debug; small,
 * medium, large and huge blocks, calloc, aligned blocks, a realloc chain from
 * 24 bytes through every kind to 3.5 MiB and back, a second thread whose
 * blocks the first frees, growth into new regions, trim, reset, the
 * thread-safety switch) first runs
 * with nothing armed, counting the calls of each kind it makes into the OS
 * layer (prim.h: map, unmap, decommit, remap).  Then, for every kind and
 * every N from 1 to that count, it runs again with the Nth call of that kind
 * refused; and for every N, with every kind refused from its Nth call on.
 * In each run:
 *   - a call that fails returns NULL with MPOOL_ERR_OUT_OF_MEMORY and errno
 *     ENOMEM, only when a map was refused, and no more often than maps were
 *     refused (a refused unmap, decommit or remap never fails a call: the
 *     pool keeps the memory, or copies instead of moving);
 *   - a failed realloc leaves its block as it was, a failed mpool_create
 *     returns NULL and the workload tries once more;
 *   - after every step in which a call was refused, every live block still
 *     holds its pattern and is owned, mpool_check is 0 for every pool, and
 *     its usage and statistics count exactly the blocks the workload holds;
 *   - once the system gives memory again, every pool serves every kind of
 *     block, every block the workload holds is freed by mpool_safe_free (so
 *     none was lost), usage falls to 0 and mpool_check is 0.
 *
 * Each run happens in a fresh thread, so the heaps it attaches start from
 * the same state and the Nth call is the same call from run to run (the
 * decay of dirty pages follows the clock, so decommit counts may vary a
 * little).  The worker thread records its first failure and stops; the
 * test's thread asserts on it.  MPOOL_FAULTS_VERBOSE=1 prints the counts.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mpool.h>

#include "prim.h"
#include "testutil.h"

#define NPOOLS 4
#define MAX_LIVE 512

static const char *kind_name(unsigned k)
{
    static const char *const names[] = {"map", "unmap", "decommit", "remap"};
    return k < sizeof names / sizeof *names ? names[k] : "other";
}

struct wblk {
    unsigned char *p;
    size_t size;  /* requested; the pattern covers it */
    uint64_t id;
    int pool;
};

/* How a run is armed. */
struct arming {
    bool on;
    bool all_kinds;      /* every kind from its Nth call on */
    enum prim_call kind; /* else: only the Nth call of this kind */
    size_t nth;
};

struct work {
    struct arming arm;
    mpool_t *pool[NPOOLS];
    struct wblk blk[MAX_LIVE];
    size_t n;
    uint64_t next_id;
    size_t failed_calls;           /* calls that returned NULL (checked) */
    size_t counts[PRIM_CALL_KINDS]; /* calls made by the armed part */
    size_t refused_seen;           /* refusals the last full check saw */
    const char *step;
    jmp_buf jump;
    char msg[512];
};

static void work_fail(struct work *w, int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));
static void work_fail(struct work *w, int line, const char *fmt, ...)
{
    int k = snprintf(w->msg, sizeof w->msg, "line %d, step '%s': ", line, w->step ? w->step : "?");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg + k, sizeof w->msg - (size_t)k, fmt, ap);
    va_end(ap);
    longjmp(w->jump, 1);
}

#define W_CHECK(w, cond, ...)                          \
    do {                                               \
        if (!(cond))                                   \
            work_fail((w), __LINE__, __VA_ARGS__);     \
    } while (0)

/* ---- Arming ------------------------------------------------------------- */

static void arm(const struct arming *a)
{
    prim_fault_disarm();
    for (unsigned k = 0; k < PRIM_CALL_KINDS; k++) {
        if (!a->on)
            prim_fault_arm((enum prim_call)k, 0, 0); /* counts, fails nothing */
        else if (a->all_kinds)
            prim_fault_arm((enum prim_call)k, a->nth, SIZE_MAX);
        else if (k == (unsigned)a->kind)
            prim_fault_arm((enum prim_call)k, a->nth, 1);
        else
            prim_fault_arm((enum prim_call)k, 0, 0);
    }
}

/* Calls of kind k refused so far in this run. */
static size_t refused(const struct work *w, enum prim_call k)
{
    const struct arming *a = &w->arm;
    if (!a->on || (!a->all_kinds && a->kind != k))
        return 0;
    size_t calls = prim_fault_calls(k);
    if (calls < a->nth)
        return 0;
    size_t n = calls - a->nth + 1;
    return a->all_kinds ? n : (n > 1 ? 1 : n);
}

static size_t refused_all(const struct work *w)
{
    size_t n = 0;
    for (unsigned k = 0; k < PRIM_CALL_KINDS; k++)
        n += refused(w, (enum prim_call)k);
    return n;
}

/* ---- Patterns ----------------------------------------------------------- */

/* A block's pattern (testutil.h) covers all of it up to DENSE bytes; above,
 * the first and last 4 KiB and a 512-byte stripe every 64 KiB (calloc's
 * zeros are checked at the same places): a run must not spend its time
 * touching megabytes, each new page is a fault. */
#define DENSE (64 * KiB)
#define STRIPE 512
#define STRIDE (64 * KiB)

/* Calls fn on each patterned range of a block of size bytes clipped to
 * [0, limit); stops at the first false. */
static bool pattern_walk(unsigned char *p, uint64_t id, size_t size, size_t limit,
                         bool (*fn)(unsigned char *p, uint64_t id, size_t from, size_t to))
{
    size_t ranges[2 + 2 * (64 * MiB / STRIDE)][2];
    size_t n = 0;
    if (size <= DENSE) {
        ranges[n][0] = 0, ranges[n++][1] = size;
    } else {
        ranges[n][0] = 0, ranges[n++][1] = 4 * KiB;
        for (size_t off = STRIDE; off + STRIPE <= size && n < 1 + 64 * MiB / STRIDE; off += STRIDE)
            ranges[n][0] = off, ranges[n++][1] = off + STRIPE;
        ranges[n][0] = size - 4 * KiB, ranges[n++][1] = size;
    }
    for (size_t i = 0; i < n; i++) {
        size_t to = ranges[i][1] < limit ? ranges[i][1] : limit;
        if (ranges[i][0] < to && !fn(p, id, ranges[i][0], to))
            return false;
    }
    return true;
}

static bool range_fill(unsigned char *p, uint64_t id, size_t from, size_t to)
{
    pattern_fill_range(p, id, from, to);
    return true;
}

static bool range_ok(unsigned char *p, uint64_t id, size_t from, size_t to)
{
    const unsigned char *want = pattern_table + pattern_shift(id);
    return memcmp(p + from, want + from, to - from) == 0;
}

static bool range_zero(unsigned char *p, uint64_t id, size_t from, size_t to)
{
    (void)id;
    return bytes_all_zero(p + from, to - from);
}

static void block_fill(unsigned char *p, uint64_t id, size_t size) { pattern_walk(p, id, size, size, range_fill); }

/* True if the block of size bytes at p still holds its pattern below limit. */
static bool block_ok(unsigned char *p, uint64_t id, size_t size, size_t limit)
{
    return pattern_walk(p, id, size, limit, range_ok);
}

/* ---- The model ---------------------------------------------------------- */

static void check_all(struct work *w)
{
    for (size_t i = 0; i < w->n; i++) {
        const struct wblk *b = &w->blk[i];
        W_CHECK(w, block_ok(b->p, b->id, b->size, b->size), "block %p (pool %d, %zu bytes) changed",
                (void *)b->p, b->pool, b->size);
        W_CHECK(w, mpool_owns(w->pool[b->pool], b->p), "block %p (pool %d) is no longer owned", (void *)b->p,
                b->pool);
        W_CHECK(w, mpool_usable_size(w->pool[b->pool], b->p) >= b->size, "block %p lost usable bytes",
                (void *)b->p);
    }
    for (int i = 0; i < NPOOLS; i++) {
        if (!w->pool[i])
            continue;
        size_t problems = mpool_check(w->pool[i]);
        W_CHECK(w, problems == 0, "mpool_check(pool %d) = %zu", i, problems);
        /* The pool's accounts match the blocks it holds. */
        size_t count = 0, bytes = 0;
        for (size_t k = 0; k < w->n; k++)
            if (w->blk[k].pool == i) {
                count++;
                bytes += mpool_usable_size(w->pool[i], w->blk[k].p);
            }
        /* A debug pool's blocks report the size asked for, and its usage
         * counts the pool blocks that hold them with their header and
         * canaries (docs/architecture.md: debug mode): at least as much. */
        bool debug = i == NPOOLS - 1 && getenv("XDBG") == NULL;
        mpool_usage_t u = mpool_get_usage(w->pool[i]);
        W_CHECK(w, debug ? u.used >= bytes : u.used == bytes, "pool %d: usage.used %zu, live blocks hold %zu", i,
                u.used, bytes);
        mpool_stats_t st;
        W_CHECK(w, mpool_get_stats(w->pool[i], &st), "mpool_get_stats failed");
        /* (its statistics also count the blocks waiting in its quarantine) */
        W_CHECK(w, debug ? st.live_blocks >= count && st.used_bytes >= bytes
                         : st.live_blocks == count && st.used_bytes == bytes,
                "pool %d: statistics count %zu blocks of %zu bytes, the workload holds %zu of %zu", i,
                st.live_blocks, st.used_bytes, count, bytes);
        W_CHECK(w, st.total_bytes == u.total, "pool %d: statistics and usage differ on the total", i);
    }
}

/* After each step: the whole check when a call was refused since the last
 * one, else the first bytes of every block. */
static void step_done(struct work *w)
{
    size_t r = refused_all(w);
    if (r != w->refused_seen) {
        w->refused_seen = r;
        check_all(w);
        return;
    }
    for (size_t i = 0; i < w->n; i++) {
        const struct wblk *b = &w->blk[i];
        size_t head = b->size < 64 ? b->size : 64;
        W_CHECK(w, pattern_ok(b->p, b->id, head), "block %p (pool %d) changed", (void *)b->p, b->pool);
    }
}

/* A call returned NULL: only a refused map may cause it, once per refusal. */
static void expect_failure(struct work *w, const char *who, size_t size)
{
    mpool_error_t e = mpool_last_error();
    int en = errno;
    w->failed_calls++;
    W_CHECK(w, w->arm.on, "%s(%zu) failed with nothing refused: %s", who, size, mpool_strerror(e));
    W_CHECK(w, e == MPOOL_ERR_OUT_OF_MEMORY, "%s(%zu) failed with '%s', not out of memory", who, size,
            mpool_strerror(e));
    W_CHECK(w, en == ENOMEM, "%s(%zu) failed with errno %d, not ENOMEM", who, size, en);
    size_t maps = refused(w, PRIM_MAP);
    W_CHECK(w, w->failed_calls <= maps, "%zu calls failed, but only %zu maps were refused (%s(%zu))",
            w->failed_calls, maps, who, size);
    check_all(w);
}

static void add_block(struct work *w, int pool, void *p, size_t size, size_t align, bool zero)
{
    W_CHECK(w, w->n < MAX_LIVE, "too many live blocks");
    W_CHECK(w, is_aligned(p, align), "block %p not aligned to %zu", p, align);
    W_CHECK(w, mpool_usable_size(w->pool[pool], p) >= size, "usable_size(%p) < %zu", p, size);
    if (zero)
        W_CHECK(w, pattern_walk(p, 0, size, size, range_zero), "calloc block %p of %zu bytes is not zero", p,
                size);
    struct wblk *b = &w->blk[w->n++];
    b->p = p;
    b->size = size;
    b->id = w->next_id++;
    b->pool = pool;
    block_fill(p, b->id, size);
}

static void remove_block(struct work *w, size_t i)
{
    w->blk[i] = w->blk[--w->n];
}

/* ---- Calls -------------------------------------------------------------- */

enum how { ALLOC, CALLOC, ALIGNED, REALLOC_NULL };

/* Allocates size bytes in pool i; returns the block's index or -1. */
static long w_alloc(struct work *w, int i, size_t size, enum how how, size_t align)
{
    if (!w->pool[i])
        return -1;
    errno = 0;
    void *p = NULL;
    switch (how) {
    case ALLOC: p = mpool_alloc(w->pool[i], size); break;
    case CALLOC: p = mpool_calloc(w->pool[i], 1, size); break;
    case ALIGNED: p = mpool_alloc_aligned(w->pool[i], size, align); break;
    case REALLOC_NULL: p = mpool_realloc(w->pool[i], NULL, size); break;
    }
    if (!p) {
        expect_failure(w, "alloc", size);
        return -1;
    }
    add_block(w, i, p, size, how == ALIGNED ? align : 16, how == CALLOC);
    return (long)(w->n - 1);
}

/* Resizes block k; returns its (possibly new) index, or k if it failed. */
static long w_realloc(struct work *w, long k, size_t size)
{
    if (k < 0)
        return -1;
    struct wblk *b = &w->blk[k];
    size_t usable = mpool_usable_size(w->pool[b->pool], b->p);
    errno = 0;
    unsigned char *q = mpool_realloc(w->pool[b->pool], b->p, size);
    if (!q) {
        expect_failure(w, "realloc", size);
        W_CHECK(w, block_ok(b->p, b->id, b->size, b->size), "a failed realloc changed its block");
        W_CHECK(w, mpool_usable_size(w->pool[b->pool], b->p) == usable, "a failed realloc resized its block");
        return k;
    }
    size_t keep = size < b->size ? size : b->size;
    W_CHECK(w, block_ok(q, b->id, b->size, keep), "realloc(%p, %zu) -> %p lost the contents", (void *)b->p,
            size, (void *)q);
    W_CHECK(w, mpool_usable_size(w->pool[b->pool], q) >= size, "realloc gave fewer bytes than asked");
    b->id = w->next_id++;
    block_fill(q, b->id, size);
    b->p = q;
    b->size = size;
    return k;
}

static void w_free(struct work *w, size_t k, bool safe)
{
    struct wblk *b = &w->blk[k];
    W_CHECK(w, block_ok(b->p, b->id, b->size, b->size), "block %p changed before its free", (void *)b->p);
    if (safe)
        W_CHECK(w, mpool_safe_free(w->pool[b->pool], b->p), "safe_free of live block %p failed: %s",
                (void *)b->p, mpool_strerror(mpool_last_error()));
    else
        mpool_free(w->pool[b->pool], b->p);
    remove_block(w, k);
}

/* Frees every other block of pool i (or all of them), from the last. */
static void w_free_some(struct work *w, int i, bool all)
{
    bool odd = false;
    for (size_t k = w->n; k-- > 0;)
        if (w->blk[k].pool == i && (all || (odd = !odd)))
            w_free(w, k, (k & 2) != 0);
}

static void w_create(struct work *w, int i, const mpool_config_t *cfg)
{
    for (int attempt = 0; attempt < 2 && !w->pool[i]; attempt++) {
        errno = 0;
        w->pool[i] = mpool_create(cfg);
        if (!w->pool[i])
            expect_failure(w, "mpool_create", cfg->initial_size);
    }
}

/* ---- A second thread ---------------------------------------------------- */

struct helper {
    mpool_t *pool;
    size_t n;
    void *p[40];
    size_t size[40];
    size_t failed;
    bool bad_error;
};

static void *helper_main(void *arg)
{
    struct helper *h = arg;
    for (size_t i = 0; i < 40; i++) {
        size_t size = i % 10 == 9 ? 50000 + 1000 * i : 24 + 40 * i;
        errno = 0;
        void *p = mpool_alloc(h->pool, size);
        if (!p) {
            h->failed++;
            if (mpool_last_error() != MPOOL_ERR_OUT_OF_MEMORY || errno != ENOMEM)
                h->bad_error = true;
            continue;
        }
        h->p[h->n] = p;
        h->size[h->n++] = size;
    }
    return NULL;
}

/* Another thread allocates in pool i and ends (its heap becomes
 * ownerless); this thread takes its blocks into the model. */
static void w_helper(struct work *w, int i)
{
    if (!w->pool[i])
        return;
    struct helper h;
    memset(&h, 0, sizeof h);
    h.pool = w->pool[i];
    pthread_t t;
    W_CHECK(w, pthread_create(&t, NULL, helper_main, &h) == 0, "pthread_create failed");
    pthread_join(t, NULL);
    W_CHECK(w, !h.bad_error, "a helper thread's allocation failed with the wrong error");
    for (size_t f = 0; f < h.failed; f++) {
        w->failed_calls++;
        W_CHECK(w, w->failed_calls <= refused(w, PRIM_MAP), "a helper allocation failed with no map refused");
    }
    for (size_t k = 0; k < h.n; k++)
        add_block(w, i, h.p[k], h.size[k], 16, false);
}

/* ---- The workload ------------------------------------------------------- */

static mpool_config_t pool_config(int i)
{
    mpool_config_t c = mpool_config_default();
    c.on_error = MPOOL_ON_ERROR_RETURN;
    switch (i) {
    case 0: /* thread safe, defaults */
        c.initial_size = 256 * KiB;
        break;
    case 1: /* one heap, coarse alignment, slow growth */
        c.thread_safe = false;
        c.initial_size = 0;
        c.growth_factor = 1.5;
        c.alignment = 64;
        c.min_block_size = 32;
        break;
    case 2: /* thread safe, capped, blocks above 64 KiB mapped directly */
        c.initial_size = 0;
        c.max_size = 96 * MiB;
        c.max_block_size = 64 * KiB;
        break;
    default: /* debug */
        c.thread_safe = false;
        c.enable_debug = getenv("XDBG") == NULL;
        c.initial_size = 64 * KiB;
        break;
    }
    return c;
}

static void workload(struct work *w)
{
    static const size_t small[] = {8, 16, 24, 40, 64, 100, 128, 200, 256, 500, 512, 777, 1000, 1024, 2000, 4000};
    for (int i = 0; i < NPOOLS; i++) {
        w->step = "create";
        mpool_config_t cfg = pool_config(i);
        w_create(w, i, &cfg);
        step_done(w);
    }
    /* Pools 0 and 1 take the whole sequence, 2 and 3 a shorter one: every
     * call a run makes is one more run of the walk. */
    for (int i = 0; i < NPOOLS; i++) {
        bool full = i < 2;
        w->step = "small";
        for (size_t k = 0; k < (full ? 48u : 16u); k++)
            w_alloc(w, i, small[k % 16] + k, k % 3 ? ALLOC : REALLOC_NULL, 0);
        step_done(w);
        w->step = "calloc";
        for (size_t k = 0; k < (full ? 6u : 3u); k++)
            w_alloc(w, i, 100 + 900 * k, CALLOC, 0);
        if (full)
            w_alloc(w, i, 300 * KiB, CALLOC, 0);
        step_done(w);
        w->step = "medium";
        static const size_t medium[] = {40 * KiB, 100 * KiB, 200 * KiB, 70 * KiB};
        for (size_t k = 0; k < (full ? 4u : 1u); k++)
            w_alloc(w, i, medium[k], ALLOC, 0);
        step_done(w);
        w->step = "large";
        w_alloc(w, i, 300 * KiB, ALLOC, 0);
        if (full)
            w_alloc(w, i, 1900 * KiB, ALLOC, 0);
        step_done(w);
        w->step = "huge";
        if (i != 2) /* pool 2's large blocks are huge ones already */
            w_alloc(w, i, 3 * MiB + 123, ALLOC, 0);
        step_done(w);
        w->step = "aligned";
        static const size_t align[] = {64, 4096, 64 * KiB, 1 * MiB, 4 * MiB};
        static const size_t asize[] = {100, 5000, 70 * KiB, 1500 * KiB, 100};
        for (size_t k = 0; k < (full ? 5u : 2u); k++)
            w_alloc(w, i, asize[k], ALIGNED, align[k]);
        step_done(w);
        w->step = "realloc chain";
        /* Each kind to the next (slab, medium, large, grown in place if the
         * pages after it are free, huge, remapped up and down, slab again),
         * with small copies: every page a copy touches is a fault. */
        static const size_t chain[] = {200, 3000, 40 * KiB, 260 * KiB, 400 * KiB, 2100 * KiB, 3500 * KiB,
                                       2200 * KiB, 20 * KiB, 48};
        static const size_t short_chain[] = {3000, 40 * KiB, 260 * KiB, 2100 * KiB, 20 * KiB};
        const size_t *c = full ? chain : short_chain;
        size_t nc = full ? sizeof chain / sizeof *chain : sizeof short_chain / sizeof *short_chain;
        long r = w_alloc(w, i, 24, ALLOC, 0);
        for (size_t k = 0; k < nc && r >= 0; k++) {
            r = w_realloc(w, r, c[k]);
            step_done(w);
        }
        w->step = "free half";
        w_free_some(w, i, false);
        step_done(w);
    }
    for (int i = 0; i < NPOOLS; i += 2) { /* the thread-safe pools */
        w->step = "second thread";
        w_helper(w, i);
        step_done(w);
        w->step = "remote frees";
        w_free_some(w, i, false);
        step_done(w);
        w->step = "second thread again";
        w_helper(w, i); /* adopts the ownerless heap */
        step_done(w);
    }
    for (int i = 0; i < NPOOLS; i++) {
        w->step = "trim";
        if (w->pool[i] && i >= 2) /* 0 and 1 trim after their growth */
            mpool_trim(w->pool[i]);
        step_done(w);
        if (i >= 2)
            continue;
        w->step = "growth"; /* past the pool's regions: new ones */
        size_t first = w->n;
        for (size_t k = 0; k < 4; k++)
            w_alloc(w, i, 600 * KiB, ALLOC, 0);
        step_done(w);
        w->step = "shrink"; /* and back: trim unmaps the empty ones */
        for (size_t k = w->n; k-- > first;)
            w_free(w, k, k % 2);
        if (w->pool[i])
            mpool_trim(w->pool[i]);
        step_done(w);
    }
    w->step = "thread-safety switch";
    if (w->pool[0]) {
        mpool_set_thread_safe(w->pool[0], false);
        w_alloc(w, 0, 5000, ALLOC, 0);
        mpool_set_thread_safe(w->pool[0], true);
        w_alloc(w, 0, 6000, ALLOC, 0);
    }
    step_done(w);
    w->step = "reset";
    if (w->pool[1]) {
        mpool_reset(w->pool[1]);
        for (size_t k = w->n; k-- > 0;)
            if (w->blk[k].pool == 1)
                remove_block(w, k);
        for (size_t k = 0; k < 8; k++)
            w_alloc(w, 1, 1000 + 40000 * k, k % 2 ? ALLOC : CALLOC, 0);
    }
    step_done(w);
}

/* The system gives memory again: every pool serves every kind of block,
 * and everything the workload holds frees exactly. */
static void recover(struct work *w)
{
    w->step = "recovery";
    check_all(w);
    for (int i = 0; i < NPOOLS; i++) {
        if (!w->pool[i]) {
            mpool_config_t cfg = pool_config(i);
            w->pool[i] = mpool_create(&cfg);
            W_CHECK(w, w->pool[i], "pool %d cannot be created once memory is back", i);
        }
        static const size_t sizes[] = {16, 3000, 100 * KiB, 700 * KiB, 2 * MiB + 1};
        for (size_t k = 0; k < 5; k++)
            W_CHECK(w, w_alloc(w, i, sizes[k], k == 1 ? CALLOC : ALLOC, 0) >= 0, "pool %d: %zu bytes refused", i,
                    sizes[k]);
        W_CHECK(w, w_alloc(w, i, 5000, ALIGNED, 64 * KiB) >= 0, "pool %d: aligned block refused", i);
        long r = w_alloc(w, i, 1000, ALLOC, 0);
        W_CHECK(w, r >= 0 && w_realloc(w, r, 2500 * KiB) >= 0 && w->blk[r].size == 2500 * KiB,
                "pool %d: realloc growth refused", i);
    }
    check_all(w);
    for (size_t k = w->n; k-- > 0;)
        w_free(w, k, true);
    for (int i = 0; i < NPOOLS; i++) {
        mpool_usage_t u = mpool_get_usage(w->pool[i]);
        W_CHECK(w, u.used == 0, "pool %d: %zu bytes still used with no block live", i, u.used);
        mpool_trim(w->pool[i]);
        W_CHECK(w, mpool_check(w->pool[i]) == 0, "pool %d: mpool_check after freeing everything", i);
        mpool_destroy(w->pool[i]);
        w->pool[i] = NULL;
    }
}

static void *work_main(void *arg)
{
    struct work *w = arg;
    if (setjmp(w->jump) != 0) {
        prim_fault_disarm();
        return NULL;
    }
    arm(&w->arm);
    workload(w);
    for (unsigned k = 0; k < PRIM_CALL_KINDS; k++)
        w->counts[k] = prim_fault_calls((enum prim_call)k);
    prim_fault_disarm();
    recover(w);
    return NULL;
}

/* One run of the workload in a fresh thread; returns the failed calls. */
static size_t run(const struct arming *a, size_t counts[PRIM_CALL_KINDS])
{
    static struct work w; /* large: not on a stack */
    memset(&w, 0, sizeof w);
    w.arm = *a;
    w.next_id = 1;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, work_main, &w), 0);
    pthread_join(t, NULL);
    if (a->on)
        cr_assert_str_empty(w.msg, "%s N=%zu: %s", a->all_kinds ? "all kinds from" : kind_name(a->kind),
                            a->nth, w.msg);
    else
        cr_assert_str_empty(w.msg, "unarmed run: %s", w.msg);
    if (counts)
        memcpy(counts, w.counts, sizeof w.counts);
    return w.failed_calls;
}

static bool verbose(void)
{
    const char *v = getenv("MPOOL_FAULTS_VERBOSE");
    return v && *v == '1';
}

static void setup(void)
{
    pattern_init();
}

static void teardown(void)
{
    prim_fault_disarm();
}

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 600);

/* The counting run: the workload makes calls of every kind, and fails none. */
static size_t baseline[PRIM_CALL_KINDS];

static void count_calls(void)
{
    struct arming off = {false, false, PRIM_MAP, 0};
    cr_assert_eq(run(&off, NULL), 0);
    cr_assert_eq(run(&off, baseline), 0, "the unarmed workload failed calls");
    for (unsigned k = 0; k < PRIM_CALL_KINDS; k++) {
        cr_assert_gt(baseline[k], 0, "the workload makes no %s call: the test shows nothing", kind_name(k));
        if (verbose())
            fprintf(stderr, "faults: %zu %s calls\n", baseline[k], kind_name(k));
    }
}

/* Refuses the Nth call of one kind, for every N; checks that the refusals
 * land (a run makes at least N calls of that kind). */
static void walk_kind(enum prim_call kind)
{
    count_calls();
    size_t landed = 0, failed = 0;
    for (size_t n = 1; n <= baseline[kind]; n++) {
        struct arming a = {true, false, kind, n};
        size_t counts[PRIM_CALL_KINDS];
        failed += run(&a, counts);
        landed += counts[kind] >= n;
    }
    if (verbose())
        fprintf(stderr, "faults: %s: %zu runs, %zu reached the refused call, %zu calls failed\n",
                kind_name(kind), baseline[kind], landed, failed);
    if (kind != PRIM_DECOMMIT) /* the decay of dirty pages follows the clock */
        cr_assert_eq(landed, baseline[kind], "only %zu of %zu runs reached their refused %s call", landed,
                     baseline[kind], kind_name(kind));
    if (kind == PRIM_MAP)
        cr_assert_gt(failed, 0, "no refused map made a call fail: the test shows nothing");
}

/* One test per kind of prim.h (a new kind needs its line here; the test
 * below refuses every kind already). */
Test(faults, map_refused_once_each) { walk_kind(PRIM_MAP); }
Test(faults, unmap_refused_once_each) { walk_kind(PRIM_UNMAP); }
Test(faults, decommit_refused_once_each) { walk_kind(PRIM_DECOMMIT); }
Test(faults, remap_refused_once_each) { walk_kind(PRIM_REMAP); }

/* Every kind refused from its Nth call on, for every N. */
Test(faults, every_kind_refused_from_n_on)
{
    count_calls();
    size_t most = 0;
    for (unsigned k = 0; k < PRIM_CALL_KINDS; k++)
        if (baseline[k] > most)
            most = baseline[k];
    size_t failed = 0;
    for (size_t n = 1; n <= most; n++) {
        struct arming a = {true, true, PRIM_MAP, n};
        failed += run(&a, NULL);
    }
    if (verbose())
        fprintf(stderr, "faults: all kinds: %zu runs, %zu calls failed\n", most, failed);
    cr_assert_gt(failed, 0);
}
