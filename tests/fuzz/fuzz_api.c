/*
 * fuzz_api.c - libFuzzer target: the whole public API of mpool.h driven by
 * the fuzzer's bytes and checked against a model.
 *
 * One input is one short program.  Its first bytes configure three pools
 * (thread safe or not, debug or not, statistics, alignment, min/max block
 * size, max_size, growth, initial size, error policy RETURN or LOG with a
 * logger that counts lines); the default pool (NULL) is the fourth.  The rest
 * is a stream of operations, each an opcode byte and the bytes of its
 * arguments (missing bytes read as 0): every allocating call with sizes from
 * 0 to 12 MiB and absurd ones, alignments valid and not, realloc, free,
 * safe_free, usable_size and owns of pointers that are live, freed, interior,
 * one past the end, on a page or chunk boundary, foreign (stack, static,
 * malloc, a pool object) or of another pool, reset, trim, usage, statistics,
 * health, text and JSON reports, the thread-safety switch, a second thread
 * that frees and allocates, destroying and recreating a pool, invalid
 * configurations, and the fault-injection hook of the OS layer (prim.h): the
 * Nth map, unmap, decommit or remap call fails.
 *
 * The model knows every live block: its pool, requested size, usable size
 * and the seed of the pattern that fills all its usable bytes.  After every
 * operation: no two live blocks overlap; every live block still starts and
 * ends with its pattern (whole blocks are compared when they are freed or
 * resized, and every 64 operations); mpool_check is 0 for every pool.  Calls
 * are exact: safe_free, owns and usable_size of a pointer succeed if and only
 * if it starts a live block of the pool asked (any pool for NULL); a refused
 * call returns NULL/false/0 with the documented error and errno and changes
 * nothing; a failed allocation is POOL_FULL only on a pool with max_size and
 * OUT_OF_MEMORY only for a size no system serves or while a fault is armed;
 * a pool with a LOG policy calls its logger exactly once per failed call and
 * never for a successful one; usage and statistics equal the model's live
 * blocks and bytes.
 *
 * mpool_free is given live blocks, NULL, pointers no block can start at
 * (foreign, or an odd offset into a block) and a block it freed just before,
 * which it must refuse at once; it is never given the start of a block freed
 * earlier: such double frees are documented to be found later, not at once.
 * Other bad pointers go to the exact calls.  Build: CMake target fuzz_api (clang, MPOOL_FUZZ); run: make fuzz.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpool.h>

#ifdef MPOOL_FAULT_INJECTION
#include "prim.h"
#endif

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

#define NPOOLS 4               /* three created per input, and the default pool */
#define DEFAULT_SLOT (NPOOLS - 1)
#define MAX_BLOCKS 192         /* live blocks of all pools */
#define MAX_DEAD 64            /* addresses of freed blocks kept as bad pointers */
#define MAX_LIVE_BYTES (96 * MiB)
#define MAX_SIZE (12 * MiB)    /* largest ordinary request */
#define FILL_MAX (16 * MiB)    /* bytes of a block the pattern covers */
#define SHIFTS 65536           /* pattern start offsets */
#define MAX_OPS 400
#define FULL_CHECK_EVERY 64

/* ---- Failing ------------------------------------------------------------ */

static size_t op_no;
static unsigned op_code;

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_api: op %zu (opcode %u): ", op_no, op_code);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

#define CHECK(cond, ...)            \
    do {                            \
        if (!(cond))                \
            fail(__VA_ARGS__);      \
    } while (0)

/* ---- Input -------------------------------------------------------------- */

struct input {
    const uint8_t *p;
    size_t n;
};

static uint8_t in_u8(struct input *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static uint16_t in_u16(struct input *in)
{
    uint16_t lo = in_u8(in);
    return (uint16_t)(lo | (uint16_t)(in_u8(in) << 8));
}

static uint32_t in_u32(struct input *in)
{
    uint32_t lo = in_u16(in);
    return lo | ((uint32_t)in_u16(in) << 16);
}

/* A request size: mostly small, sometimes medium, large or huge. */
static size_t in_size(struct input *in)
{
    uint8_t kind = in_u8(in);
    uint32_t r = in_u32(in);
    switch (kind & 31) {
    case 0: case 1: return r % 17;                  /* 0..16 */
    case 2: case 3: case 4: case 5: case 6: case 7: return r % 129;
    case 8: case 9: case 10: case 11: case 12: case 13: return r % 1025;
    case 14: case 15: case 16: case 17: return r % (32 * KiB + 1);
    case 18: case 19: return 32 * KiB + r % (224 * KiB + 1); /* medium slab blocks */
    case 20: case 21: return 256 * KiB + r % (1792 * KiB + 1); /* page runs */
    case 22: return (size_t)1 << (r % 24);        /* powers of two up to 8 MiB */
    case 23: { /* around them */
        size_t base = (size_t)1 << (r % 24);
        return base >= 128 ? base + (r >> 24) - 128 : base + (r >> 24) % 128;
    }
    case 24: return 2 * MiB + r % (MAX_SIZE - 2 * MiB + 1); /* huge */
    case 25: case 26: return (r % 65) * 4096;     /* whole pages */
    default: return r % 300;
    }
}

/* An alignment: a power of two from 1 to 16 MiB, mostly small. */
static size_t in_align(struct input *in)
{
    uint8_t b = in_u8(in);
    if (b < 128)
        return (size_t)1 << (b % 7);     /* 1..64 */
    if (b < 224)
        return (size_t)1 << (b % 13);    /* up to 4 KiB */
    if (b < 252)
        return (size_t)1 << (b % 23);    /* up to 4 MiB */
    return (size_t)1 << (23 + b % 2);    /* 8 and 16 MiB */
}

/* ---- Pattern ------------------------------------------------------------ */

static unsigned char *pattern; /* FILL_MAX + SHIFTS pseudo-random bytes */

static void pattern_init(void)
{
    pattern = malloc(FILL_MAX + SHIFTS);
    if (!pattern)
        abort();
    uint64_t x = 0x6d706f6f6c66757aULL;
    for (size_t i = 0; i < FILL_MAX + SHIFTS; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(pattern + i, &x, 8);
    }
}

static const unsigned char *pattern_at(uint32_t seed) { return pattern + seed % SHIFTS; }

/* ---- Model -------------------------------------------------------------- */

struct blk {
    unsigned char *p;
    size_t size;    /* requested */
    size_t usable;  /* mpool_usable_size when last checked */
    uint32_t seed;
    unsigned pool;  /* slot */
};

struct slot {
    mpool_t *handle;      /* what calls get: NULL for the default pool */
    mpool_t *real;        /* NULL: slot empty (a recreation failed) */
    mpool_config_t cfg;
    bool capped;          /* max_size set: POOL_FULL is possible */
    bool logs;            /* on_error LOG with the counting logger */
    size_t min_align;
};

static struct slot slots[NPOOLS];
static struct blk blocks[MAX_BLOCKS];
static size_t nblocks;
static size_t live_bytes;
static unsigned char *dead[MAX_DEAD];
static size_t ndead, dead_next;
static uint32_t next_seed;
static bool faults_armed;        /* a fault window may still fail calls */
static size_t logged;            /* logger calls (any thread) */
static int static_probe;         /* a foreign static address */

/* What the run saw, printed at exit with FUZZ_API_TALLY=1 (to see that
 * the inputs reach each outcome). */
enum tally { T_OPS, T_BLOCKS, T_POOL_FULL, T_OOM_FAULT, T_OOM_ABSURD, T_REFUSED, T_SAFE_FREE_OK,
             T_SAFE_FREE_REFUSED, T_REALLOC_MOVED, T_REMOTE, T_RECREATE, T_TALLIES };
static const char *const TALLY_NAMES[T_TALLIES] = {
    "operations", "blocks handed out", "pool full", "out of memory (fault armed)",
    "out of memory (absurd request)", "refused arguments", "safe_free done", "safe_free refused",
    "realloc moved", "second-thread rounds", "pools recreated"};
static size_t tallies[T_TALLIES];

static void tally_print(void)
{
    for (int t = 0; t < T_TALLIES; t++)
        fprintf(stderr, "fuzz_api: %-32s %zu\n", TALLY_NAMES[t], tallies[t]);
}

static void logger(mpool_error_t err, const char *message, void *arg)
{
    (void)err;
    (void)arg;
    if (!message || !*message)
        fail("logger called with an empty message");
    __atomic_add_fetch(&logged, 1, __ATOMIC_SEQ_CST);
}

static size_t logged_now(void) { return __atomic_load_n(&logged, __ATOMIC_SEQ_CST); }

static void dead_add(unsigned char *p)
{
    dead[dead_next] = p;
    dead_next = (dead_next + 1) % MAX_DEAD;
    if (ndead < MAX_DEAD)
        ndead++;
}

static size_t fill_len(const struct blk *b) { return b->usable < FILL_MAX ? b->usable : FILL_MAX; }

/* The patterned ranges of a block whose first n bytes were filled: all of
 * them up to DENSE_MAX bytes; above, a STRIPE every STRIDE bytes and the
 * last STRIPE (filling megabytes at every step would make the fuzzer slow).
 * Calls fn on each range clipped to [0, limit); stops when fn says false. */
#define DENSE_MAX (1 * MiB)
#define STRIPE (4 * KiB)
#define STRIDE (64 * KiB)

typedef bool (*range_fn)(unsigned char *p, const unsigned char *want, size_t from, size_t to, void *arg);

static bool range_clip(range_fn fn, unsigned char *p, const unsigned char *want, size_t from, size_t to,
                       size_t limit, void *arg)
{
    if (to > limit)
        to = limit;
    return from >= to || fn(p, want, from, to, arg);
}

static void pattern_ranges(unsigned char *p, uint32_t seed, size_t n, size_t limit, range_fn fn, void *arg)
{
    const unsigned char *want = pattern_at(seed);
    if (n <= DENSE_MAX) {
        range_clip(fn, p, want, 0, n, limit, arg);
        return;
    }
    for (size_t off = 0; off < n; off += STRIDE)
        if (!range_clip(fn, p, want, off, off + STRIPE < n ? off + STRIPE : n, limit, arg))
            return;
    range_clip(fn, p, want, n - STRIPE, n, limit, arg);
}

static bool range_fill(unsigned char *p, const unsigned char *want, size_t from, size_t to, void *arg)
{
    (void)arg;
    memcpy(p + from, want + from, to - from);
    return true;
}

/* Finds the first wrong byte: *(size_t *)arg = its offset (SIZE_MAX: none). */
static bool range_find_bad(unsigned char *p, const unsigned char *want, size_t from, size_t to, void *arg)
{
    if (memcmp(p + from, want + from, to - from) == 0)
        return true;
    for (size_t i = from; i < to; i++)
        if (p[i] != want[i]) {
            *(size_t *)arg = i;
            return false;
        }
    return true;
}

static void blk_fill(struct blk *b)
{
    b->seed = next_seed++;
    pattern_ranges(b->p, b->seed, fill_len(b), SIZE_MAX, range_fill, NULL);
}

/* Verifies the patterned bytes of b below limit, read at p (b->p, or where
 * realloc moved them). */
static void blk_verify_at(const struct blk *b, unsigned char *p, size_t limit, const char *when)
{
    size_t bad = SIZE_MAX;
    pattern_ranges(p, b->seed, fill_len(b), limit, range_find_bad, &bad);
    if (bad != SIZE_MAX)
        fail("%s: block %p (pool %u, size %zu, usable %zu), read at %p, changed at offset %zu: %#x, not %#x",
             when, (void *)b->p, b->pool, b->size, b->usable, (void *)p, bad, p[bad], pattern_at(b->seed)[bad]);
}

static void blk_verify(const struct blk *b, const char *when) { blk_verify_at(b, b->p, SIZE_MAX, when); }

/* The first and last 16 bytes (every operation). */
static void blk_verify_ends(const struct blk *b)
{
    size_t n = fill_len(b);
    const unsigned char *want = pattern_at(b->seed);
    size_t head = n < 16 ? n : 16, tail = n < 16 ? 0 : n - 16;
    if (memcmp(b->p, want, head) != 0 || memcmp(b->p + tail, want + tail, n - tail) != 0)
        blk_verify(b, "ends");
}

static long blk_find(const void *p)
{
    for (size_t i = 0; i < nblocks; i++)
        if (blocks[i].p == p)
            return (long)i;
    return -1;
}

/* Bytes of b no other block may share: its usable bytes, at least one. */
static size_t blk_span(const struct blk *b) { return b->usable ? b->usable : 1; }

static void blk_check_overlap(size_t k)
{
    const struct blk *a = &blocks[k];
    uintptr_t a0 = (uintptr_t)a->p, a1 = a0 + blk_span(a);
    for (size_t i = 0; i < nblocks; i++) {
        if (i == k)
            continue;
        uintptr_t b0 = (uintptr_t)blocks[i].p, b1 = b0 + blk_span(&blocks[i]);
        if (a0 < b1 && b0 < a1)
            fail("blocks overlap: %p+%zu (pool %u) and %p+%zu (pool %u)", (void *)a->p, a->usable, a->pool,
                 (void *)blocks[i].p, blocks[i].usable, blocks[i].pool);
    }
}

static void blk_remove(size_t k)
{
    live_bytes -= blocks[k].usable;
    dead_add(blocks[k].p);
    blocks[k] = blocks[--nblocks];
}

/* Forgets every block of slot s (reset, destroy). */
static void blk_drop_pool(unsigned s)
{
    for (size_t i = nblocks; i-- > 0;)
        if (blocks[i].pool == s)
            blk_remove(i);
}

/* ---- Checks of calls ---------------------------------------------------- */

static const char *err_name(mpool_error_t e) { return mpool_strerror(e); }

/* A failed allocating call on slot s: the error must be one the situation
 * allows, with errno ENOMEM, and logged once if the pool logs. */
static void check_alloc_failure(unsigned s, const char *who, size_t size, bool absurd, size_t log_before)
{
    mpool_error_t e = mpool_last_error();
    int en = errno;
    bool ok = (e == MPOOL_ERR_POOL_FULL && slots[s].capped) ||
              (e == MPOOL_ERR_OUT_OF_MEMORY && (absurd || faults_armed));
    CHECK(ok, "%s(size %zu) on pool %u failed with '%s' (capped %d, faults %d)", who, size, s, err_name(e),
          slots[s].capped, faults_armed);
    CHECK(en == ENOMEM, "%s failed with errno %d, not ENOMEM", who, en);
    tallies[e == MPOOL_ERR_POOL_FULL ? T_POOL_FULL : absurd ? T_OOM_ABSURD : T_OOM_FAULT]++;
    if (slots[s].logs)
        CHECK(logged_now() == log_before + 1, "%s: %zu logger calls for one failure", who,
              logged_now() - log_before);
}

static void check_quiet(unsigned s, const char *who, size_t log_before)
{
    if (slots[s].logs)
        CHECK(logged_now() == log_before, "%s: the logger was called for a successful call", who);
}

/* A refused call (bad pointer or argument) with error want and errno. */
static void check_refused(unsigned s, const char *who, mpool_error_t want, int want_errno, size_t log_before)
{
    mpool_error_t e = mpool_last_error();
    int en = errno;
    CHECK(e == want, "%s: error '%s', not '%s'", who, err_name(e), err_name(want));
    CHECK(en == want_errno, "%s: errno %d, not %d", who, en, want_errno);
    tallies[T_REFUSED]++;
    if (slots[s].logs)
        CHECK(logged_now() == log_before + 1, "%s: %zu logger calls for one refusal", who, logged_now() - log_before);
}

/* A new block p of slot s, asked with size bytes and alignment align: checks
 * it and enters it in the model (filled).  zero: calloc's bytes. */
static void blk_add(unsigned s, void *p, size_t size, size_t align, bool zero)
{
    struct slot *sl = &slots[s];
    size_t a = align > sl->min_align ? align : sl->min_align;
    CHECK(((uintptr_t)p & (a - 1)) == 0, "block %p of pool %u not aligned to %zu", p, s, a);
    CHECK(blk_find(p) < 0, "block %p handed out while live", p);
    size_t usable = mpool_usable_size(sl->handle, p);
    CHECK(usable >= size, "usable_size %zu < %zu asked (pool %u)", usable, size, s);
    CHECK(mpool_usable_size(NULL, p) == usable, "usable_size(NULL) differs");
    CHECK(mpool_owns(sl->handle, p) && mpool_owns(NULL, p), "a new block %p is not owned", p);
    if (zero) {
        const unsigned char *z = p;
        if (size && (z[0] != 0 || memcmp(z, z + 1, size - 1) != 0))
            for (size_t i = 0; i < size; i++)
                if (z[i] != 0)
                    fail("calloc block %p (size %zu) holds %#x at %zu", p, size, z[i], i);
    }
    tallies[T_BLOCKS]++;
    struct blk *b = &blocks[nblocks];
    b->p = p;
    b->size = size;
    b->usable = usable;
    b->pool = s;
    blk_fill(b);
    nblocks++;
    live_bytes += usable;
    blk_check_overlap(nblocks - 1);
}

/* ---- Pools -------------------------------------------------------------- */

static const size_t ALIGNS[8] = {8, 16, 32, 64, 256, 4096, 16384, 16};
static const size_t MAX_SIZES[8] = {0, 0, 1 * MiB, 4 * MiB, 0, 16 * MiB, 512 * KiB, 64 * MiB};
static const size_t MAX_BLOCKS_CFG[8] = {2 * MiB, 64 * KiB, 1 * MiB, 4096, 2 * MiB, 8 * MiB, 300000, 128};
static const size_t MIN_BLOCKS[4] = {16, 8, 64, 256};
static const size_t INITIAL[4] = {0, 64 * KiB, 256 * KiB, 1 * MiB};
static const double GROWTH[4] = {2.0, 1.0, 1.5, 4.0};

static mpool_config_t config_from(uint8_t a, uint8_t b, uint8_t c)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.thread_safe = a & 1;
    cfg.enable_debug = (a & 2) != 0;
    cfg.enable_statistics = !(a & 4);
    cfg.on_error = (a & 8) ? MPOOL_ON_ERROR_LOG : MPOOL_ON_ERROR_RETURN;
    cfg.logger = (a & 8) ? logger : NULL;
    cfg.alignment = ALIGNS[(a >> 4) & 7];
    cfg.timing_sample_rate = (a & 0x80) ? 3 : 0;
    cfg.max_size = MAX_SIZES[b & 7];
    cfg.max_block_size = MAX_BLOCKS_CFG[(b >> 3) & 7];
    cfg.min_block_size = MIN_BLOCKS[(b >> 6) & 3];
    if (cfg.min_block_size > cfg.max_block_size)
        cfg.min_block_size = cfg.max_block_size;
    cfg.initial_size = INITIAL[c & 3];
    if (cfg.max_size && cfg.initial_size > cfg.max_size)
        cfg.initial_size = cfg.max_size;
    cfg.growth_factor = GROWTH[(c >> 2) & 3];
    return cfg;
}

/* Creates the pool of slot s; false if the system refused (faults). */
static bool slot_create(unsigned s, const mpool_config_t *cfg)
{
    struct slot *sl = &slots[s];
    size_t before = logged_now();
    errno = 0;
    mpool_t *p = mpool_create(cfg);
    memset(sl, 0, sizeof *sl);
    if (!p) {
        mpool_error_t e = mpool_last_error();
        CHECK(faults_armed && e == MPOOL_ERR_OUT_OF_MEMORY && errno == ENOMEM,
              "mpool_create of a valid configuration failed: '%s'", err_name(e));
        if (cfg->on_error == MPOOL_ON_ERROR_LOG)
            CHECK(logged_now() == before + 1, "mpool_create: failure not logged once");
        return false;
    }
    CHECK(mpool_check(p) == 0, "new pool fails mpool_check");
    CHECK(mpool_is_thread_safe(p) == cfg->thread_safe, "is_thread_safe differs from the configuration");
    sl->handle = sl->real = p;
    sl->cfg = *cfg;
    sl->capped = cfg->max_size != 0;
    sl->logs = cfg->on_error == MPOOL_ON_ERROR_LOG;
    sl->min_align = cfg->alignment;
    return true;
}

static void slot_destroy(unsigned s)
{
    if (s == DEFAULT_SLOT || !slots[s].real)
        return;
    blk_drop_pool(s);
    mpool_destroy(slots[s].real);
    slots[s].real = slots[s].handle = NULL;
}

static void default_slot_init(void)
{
    struct slot *sl = &slots[DEFAULT_SLOT];
    memset(sl, 0, sizeof *sl);
    sl->handle = NULL;
    sl->real = mpool_default();
    sl->cfg = mpool_config_default();
    sl->capped = getenv("MPOOL_MAX_SIZE") != NULL || getenv("MPOOL_CONFIG") != NULL;
    sl->min_align = 16;
    if (getenv("MPOOL_ALIGNMENT") || getenv("MPOOL_CONFIG"))
        sl->min_align = 1;  /* unknown: alignment checked against the request only */
}

/* A slot that holds a pool, chosen by b. */
static unsigned pick_pool(uint8_t b)
{
    for (unsigned k = 0; k < NPOOLS; k++) {
        unsigned s = (b + k) % NPOOLS;
        if (slots[s].real)
            return s;
    }
    return DEFAULT_SLOT;
}

/* ---- Pool-wide checks --------------------------------------------------- */

static void model_pool_figures(unsigned s, size_t *count, size_t *bytes)
{
    *count = *bytes = 0;
    for (size_t i = 0; i < nblocks; i++)
        if (blocks[i].pool == s) {
            (*count)++;
            *bytes += blocks[i].usable;
        }
}

static void check_pool(unsigned s)
{
    struct slot *sl = &slots[s];
    if (!sl->real)
        return;
    size_t problems = mpool_check(sl->handle);
    CHECK(problems == 0, "mpool_check(pool %u) found %zu problems", s, problems);
}

static void check_usage(unsigned s)
{
    struct slot *sl = &slots[s];
    size_t count, bytes;
    model_pool_figures(s, &count, &bytes);
    mpool_usage_t u = mpool_get_usage(sl->handle);
    /* A debug pool's blocks report the size asked for, and its usage and
     * statistics count the pool blocks that hold them (header, canaries)
     * and the ones waiting in its quarantine: at least the model's. */
    bool debug = sl->cfg.enable_debug;
    CHECK(debug ? u.used >= bytes : u.used == bytes, "pool %u: usage.used %zu, the model's live usable bytes %zu", s,
          u.used, bytes);
    CHECK(u.total >= u.used && u.free == u.total - u.used, "pool %u: usage total %zu used %zu free %zu", s,
          u.total, u.used, u.free);
    CHECK(u.usage_percent >= 0.0 && u.usage_percent <= 100.0, "usage_percent %f", u.usage_percent);
    if (sl->capped && sl->cfg.max_size)
        CHECK(u.total <= sl->cfg.max_size, "pool %u holds %zu bytes past max_size %zu", s, u.total,
              sl->cfg.max_size);
    mpool_stats_t st;
    CHECK(mpool_get_stats(sl->handle, &st), "mpool_get_stats failed");
    CHECK(debug ? st.used_bytes >= bytes : st.used_bytes == bytes, "pool %u: stats used_bytes %zu, model %zu", s,
          st.used_bytes, bytes);
    CHECK(debug ? st.live_blocks >= count : st.live_blocks == count, "pool %u: stats live_blocks %zu, model %zu", s,
          st.live_blocks, count);
    CHECK(st.total_bytes == u.total, "pool %u: stats total %zu, usage total %zu", s, st.total_bytes, u.total);
    CHECK(st.peak_total_bytes >= st.total_bytes, "peak_total_bytes below total_bytes");
    CHECK(st.class_count <= MPOOL_MAX_CLASSES, "class_count %zu", st.class_count);
    CHECK(st.fragmentation >= 0.0 && st.fragmentation <= 1.0, "fragmentation %f", st.fragmentation);
    if (s != DEFAULT_SLOT)
        CHECK(st.max_size == sl->cfg.max_size, "stats max_size %zu, configured %zu", st.max_size,
              sl->cfg.max_size);
    for (size_t c = 0; c < st.class_count; c++)
        CHECK(st.classes[c].in_use <= st.classes[c].capacity, "class %zu: in_use %zu > capacity %zu", c,
              st.classes[c].in_use, st.classes[c].capacity);
    if (!sl->cfg.enable_statistics && s != DEFAULT_SLOT)
        CHECK(!st.statistics_enabled && st.allocations == 0, "statistics off, yet counted");
}

/* ---- Reports ------------------------------------------------------------ */

static char report_buf[256 * KiB];
static size_t report_len;
static bool report_truncated;

static void report_write(const char *text, size_t len, void *arg)
{
    CHECK(arg == &report_len, "report writer got the wrong argument");
    if (len > sizeof report_buf - 1 - report_len) {
        report_truncated = true;
        len = sizeof report_buf - 1 - report_len;
    }
    memcpy(report_buf + report_len, text, len);
    report_len += len;
    report_buf[report_len] = 0;
}

/* A small JSON parser: true if [*pp, end) starts with one valid value. */
static const char *json_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static const char *json_value(const char *p, const char *end, int depth);

static const char *json_string(const char *p, const char *end)
{
    if (p >= end || *p != '"')
        return NULL;
    for (p++; p < end; p++) {
        if (*p == '"')
            return p + 1;
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (p >= end || !strchr("\"\\/bfnrtu", *p))
                return NULL;
        }
    }
    return NULL;
}

static const char *json_number(const char *p, const char *end)
{
    const char *start = p;
    if (p < end && *p == '-')
        p++;
    const char *digits = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    if (p == digits)
        return NULL;
    if (p < end && *p == '.') {
        p++;
        const char *frac = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == frac)
            return NULL;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const char *ex = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == ex)
            return NULL;
    }
    return p > start ? p : NULL;
}

static const char *json_container(const char *p, const char *end, int depth, char close, bool keys)
{
    p = json_ws(p + 1, end);
    if (p < end && *p == close)
        return p + 1;
    for (;;) {
        if (keys) {
            p = json_string(json_ws(p, end), end);
            if (!p)
                return NULL;
            p = json_ws(p, end);
            if (p >= end || *p != ':')
                return NULL;
            p++;
        }
        p = json_value(p, end, depth + 1);
        if (!p)
            return NULL;
        p = json_ws(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        return p < end && *p == close ? p + 1 : NULL;
    }
}

static const char *json_value(const char *p, const char *end, int depth)
{
    if (depth > 32)
        return NULL;
    p = json_ws(p, end);
    if (p >= end)
        return NULL;
    switch (*p) {
    case '{': return json_container(p, end, depth, '}', true);
    case '[': return json_container(p, end, depth, ']', false);
    case '"': return json_string(p, end);
    case 't': return end - p >= 4 && !memcmp(p, "true", 4) ? p + 4 : NULL;
    case 'f': return end - p >= 5 && !memcmp(p, "false", 5) ? p + 5 : NULL;
    case 'n': return end - p >= 4 && !memcmp(p, "null", 4) ? p + 4 : NULL;
    default: return json_number(p, end);
    }
}

static void op_report(unsigned s, uint8_t how)
{
    struct slot *sl = &slots[s];
    mpool_report_format_t fmt = (how & 1) ? MPOOL_REPORT_JSON : MPOOL_REPORT_TEXT;
    report_len = 0;
    report_truncated = false;
    report_buf[0] = 0;
    CHECK(mpool_report(sl->handle, fmt, report_write, &report_len), "mpool_report failed");
    CHECK(report_len > 0, "empty report");
    CHECK(strlen(report_buf) == report_len, "report holds a NUL byte");
    if (fmt == MPOOL_REPORT_JSON && !report_truncated) {
        const char *end = report_buf + report_len;
        const char *q = json_value(report_buf, end, 0);
        CHECK(q && json_ws(q, end) == end && report_buf[0] == '{', "invalid JSON report:\n%s", report_buf);
    }
    mpool_health_t h = mpool_health(sl->handle);
    CHECK(h.status <= MPOOL_CRITICAL, "health status %d", (int)h.status);
    CHECK(memchr(h.message, 0, sizeof h.message) != NULL, "health message not terminated");
    const char *name = mpool_health_name(h.status);
    CHECK(name && *name, "no health name");
    CHECK(h.usage >= 0.0 && h.error_rate >= 0.0 && h.error_rate <= 1.0 && h.fragmentation >= 0.0,
          "health figures usage %f error_rate %f fragmentation %f", h.usage, h.error_rate, h.fragmentation);
    if (how & 2)
        CHECK(!mpool_report(sl->handle, (mpool_report_format_t)7, report_write, &report_len),
              "a report in an unknown format succeeded");
}

/* ---- Candidate pointers ------------------------------------------------- */

static unsigned char *foreign_heap;  /* from malloc: foreign */
static unsigned char *stack_probe;   /* a buffer on LLVMFuzzerTestOneInput's stack */

/* A pointer for the exact calls: live, interior, past the end, freed,
 * foreign, or another pool's; *what names it for messages. */
static void *pick_pointer(struct input *in, const char **what)
{
    uint8_t kind = in_u8(in);
    uint32_t r = in_u32(in);
    const struct blk *b = nblocks ? &blocks[r % nblocks] : NULL;
    switch (kind % 14) {
    case 0: case 1: case 2:
        *what = "live";
        return b ? b->p : NULL;
    case 3:
        *what = "interior";
        return b && b->usable > 1 ? b->p + 1 + (r >> 8) % (b->usable - 1) : NULL;
    case 4:
        *what = "one past the end";
        return b ? b->p + b->usable : NULL;
    case 5:
        *what = "below the start";
        return b ? b->p - (16u << ((r >> 8) % 9)) : NULL; /* 16 B .. 4 KiB below */
    case 6: case 7:
        *what = "freed";
        return ndead ? dead[(r >> 8) % ndead] : NULL;
    case 8:
        *what = "freed, interior";
        return ndead ? dead[(r >> 8) % ndead] + 8 : NULL;
    case 9:
        *what = "page boundary";
        return b ? (unsigned char *)(((uintptr_t)b->p & ~(uintptr_t)4095) + (((r >> 8) % 5) - 2) * 4096) : NULL;
    case 10:
        *what = "chunk base";
        return b ? (unsigned char *)(((uintptr_t)b->p & ~(uintptr_t)(4 * MiB - 1)) + ((r >> 8) % 40) * 4096)
                 : NULL;
    case 11:
        *what = "stack";
        return stack_probe + (r >> 8) % 64;
    case 12:
        *what = (r & 1) ? "static" : "malloc";
        return (r & 1) ? (void *)&static_probe : (void *)(foreign_heap + (r >> 8) % 64);
    default:
        *what = "pool object";
        return (void *)slots[(r >> 8) % NPOOLS].real;
    }
}

/* The live block at p that a call given slot s (or NULL: any) accepts. */
static long expect_live(const void *p, bool any, unsigned s)
{
    long k = p ? blk_find(p) : -1;
    if (k >= 0 && !any && blocks[k].pool != s)
        return -1;
    return k;
}

/* ---- Operations --------------------------------------------------------- */

/* Room for one more block: frees one if the model is full. */
static bool make_room_in_model(void)
{
    if (nblocks < MAX_BLOCKS && live_bytes < MAX_LIVE_BYTES)
        return true;
    if (nblocks == 0)
        return false;
    struct blk *b = &blocks[0];
    blk_verify(b, "free to make room");
    mpool_free(slots[b->pool].handle, b->p);
    blk_remove(0);
    return nblocks < MAX_BLOCKS;
}

enum alloc_how { HOW_ALLOC, HOW_ALIGNED, HOW_CALLOC, HOW_REALLOC_NULL };

static void op_alloc(struct input *in, enum alloc_how how)
{
    unsigned s = pick_pool(in_u8(in));
    struct slot *sl = &slots[s];
    size_t size = in_size(in);
    size_t align = how == HOW_ALIGNED ? in_align(in) : 1;
    size_t count = 1;
    if (how == HOW_CALLOC) {
        count = in_u8(in) % 9;
        if (count > 1)
            size /= count;
    }
    if (!make_room_in_model())
        return;
    size_t before = logged_now();
    errno = 0;
    void *p;
    const char *who;
    switch (how) {
    case HOW_ALLOC: p = mpool_alloc(sl->handle, size); who = "mpool_alloc"; break;
    case HOW_ALIGNED: p = mpool_alloc_aligned(sl->handle, size, align); who = "mpool_alloc_aligned"; break;
    case HOW_CALLOC: p = mpool_calloc(sl->handle, count, size); who = "mpool_calloc"; break;
    default: p = mpool_realloc(sl->handle, NULL, size); who = "mpool_realloc(NULL)"; break;
    }
    if (!p) {
        check_alloc_failure(s, who, size * count, false, before);
        return;
    }
    check_quiet(s, who, before);
    blk_add(s, p, size * count, align, how == HOW_CALLOC);
}

/* Requests that must fail: absurd sizes, bad alignments, calloc overflow. */
static void op_bad_alloc(struct input *in)
{
    unsigned s = pick_pool(in_u8(in));
    struct slot *sl = &slots[s];
    uint8_t k = in_u8(in);
    size_t before = logged_now();
    errno = 0;
    void *p;
    switch (k % 6) {
    case 0: {
        static const size_t absurd[] = {SIZE_MAX, SIZE_MAX - 4095, (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1,
                                        SIZE_MAX / 2 - 4 * MiB};
        size_t size = absurd[(k >> 3) % 5];
        p = (k & 4) ? mpool_alloc_aligned(sl->handle, size, 64) : mpool_alloc(sl->handle, size);
        CHECK(!p, "an allocation of %zu bytes succeeded", size);
        check_alloc_failure(s, "absurd allocation", size, true, before);
        return;
    }
    case 1: {
        static const size_t bad[] = {0, 3, 24, 48, 4097, (size_t)1 << 63 | 1, SIZE_MAX, 12288};
        size_t a = bad[(k >> 3) % 8];
        p = mpool_alloc_aligned(sl->handle, in_size(in), a);
        CHECK(!p, "alignment %zu accepted", a);
        check_refused(s, "mpool_alloc_aligned(bad alignment)", MPOOL_ERR_INVALID_ALIGNMENT, EINVAL, before);
        return;
    }
    case 2: {
        size_t a = (size_t)1 << (62 + (k >> 7)); /* 2^62, 2^63 */
        p = mpool_alloc_aligned(sl->handle, 16, a);
        CHECK(!p, "alignment %zu served", a);
        check_alloc_failure(s, "mpool_alloc_aligned(huge alignment)", 16, true, before);
        return;
    }
    case 3: {
        size_t count = SIZE_MAX / 3 + 1 + in_u8(in), size = 3 + (k >> 3);
        p = mpool_calloc(sl->handle, count, size);
        CHECK(!p, "calloc(%zu, %zu) overflowed and succeeded", count, size);
        check_refused(s, "mpool_calloc(overflow)", MPOOL_ERR_INVALID_ARGUMENT, ENOMEM, before);
        return;
    }
    case 4: { /* realloc of a live block to an absurd size: refused, block kept */
        if (!nblocks)
            return;
        struct blk *b = &blocks[in_u8(in) % nblocks];
        s = b->pool;
        before = logged_now();
        errno = 0;
        p = mpool_realloc(slots[s].handle, b->p, SIZE_MAX - (k >> 3));
        CHECK(!p, "realloc to an absurd size succeeded");
        check_alloc_failure(s, "mpool_realloc(absurd)", SIZE_MAX, true, before);
        blk_verify(b, "after a refused realloc");
        CHECK(mpool_owns(slots[s].handle, b->p), "refused realloc lost the block");
        return;
    }
    default: { /* invalid configurations */
        mpool_config_t cfg = mpool_config_default();
        switch ((k >> 3) % 7) {
        case 0: cfg.alignment = 24; break;
        case 1: cfg.growth_factor = 0.5; break;
        case 2: cfg.min_block_size = 4; break;
        case 3: cfg.min_block_size = 4096; cfg.max_block_size = 1024; break;
        case 4: cfg.max_size = 1 * MiB; cfg.initial_size = 2 * MiB; break;
        case 5: cfg.on_error = (mpool_on_error_t)7; break;
        default: cfg.growth_factor = INFINITY; break;
        }
        errno = 0;
        mpool_t *bad = mpool_create(&cfg);
        if (bad)
            mpool_destroy(bad);
        CHECK(!bad, "an invalid configuration (case %d) was accepted", (k >> 3) % 7);
        CHECK(mpool_last_error() == MPOOL_ERR_INVALID_ARGUMENT && errno == EINVAL,
              "invalid configuration: error '%s', errno %d", err_name(mpool_last_error()), errno);
        return;
    }
    }
}

static void op_realloc(struct input *in)
{
    if (!nblocks)
        return;
    size_t k = in_u8(in) % nblocks;
    uint8_t how = in_u8(in);
    size_t size = in_size(in);
    struct blk *b = &blocks[k];
    unsigned s = b->pool;
    /* The pool argument: the owner, NULL, or (refused) another pool. */
    unsigned arg = s;
    mpool_t *handle = slots[s].handle;
    bool wrong = false;
    if ((how & 3) == 1) {
        handle = NULL;
    } else if ((how & 3) == 2) {
        arg = pick_pool((uint8_t)(s + 1 + (how >> 2)));
        if (arg != s && slots[arg].handle != NULL) {
            handle = slots[arg].handle;
            wrong = true;
        }
    }
    size_t before = logged_now();
    errno = 0;
    unsigned char *q = mpool_realloc(handle, b->p, size);
    if (wrong) {
        CHECK(!q, "realloc through another pool succeeded");
        check_refused(arg, "mpool_realloc(other pool)", MPOOL_ERR_INVALID_POINTER, EINVAL, before);
        blk_verify(b, "after realloc through another pool");
        CHECK(mpool_owns(slots[s].handle, b->p), "realloc through another pool lost the block");
        return;
    }
    if (size == 0) {
        CHECK(!q, "realloc to 0 returned %p", (void *)q);
        check_quiet(s, "mpool_realloc(0)", before);
        unsigned char *old = b->p;
        blk_remove(k);
        CHECK(!mpool_owns(NULL, old), "realloc to 0 did not free %p", (void *)old);
        return;
    }
    if (!q) {
        check_alloc_failure(s, "mpool_realloc", size, false, before);
        blk_verify(b, "after a failed realloc");
        CHECK(mpool_usable_size(slots[s].handle, b->p) == b->usable, "a failed realloc changed the block");
        return;
    }
    check_quiet(s, "mpool_realloc", before);
    size_t keep = size < b->usable ? size : b->usable;
    blk_verify_at(b, q, keep, "the bytes realloc keeps");
    unsigned char *old = b->p;
    live_bytes -= b->usable;
    blocks[k] = blocks[--nblocks];
    if (q != old) {
        tallies[T_REALLOC_MOVED]++;
        dead_add(old);
        CHECK(!mpool_owns(NULL, old) || blk_find(old) >= 0, "realloc moved %p and left it live", (void *)old);
    }
    blk_add(s, q, size, 1, false);
}

static void op_free(struct input *in)
{
    if (!nblocks)
        return;
    size_t k = in_u8(in) % nblocks;
    uint8_t how = in_u8(in);
    struct blk *b = &blocks[k];
    unsigned s = b->pool;
    blk_verify(b, "before free");
    size_t before = logged_now();
    unsigned char *p = b->p;
    mpool_free((how & 1) ? NULL : slots[s].handle, p);
    check_quiet(s, "mpool_free", before);
    blk_remove(k);
    CHECK(!mpool_owns(NULL, p) || blk_find(p) >= 0, "mpool_free(%p) left the block live", (void *)p);
    if (how & 2) {
        mpool_free(slots[s].handle, NULL);
        mpool_free(NULL, NULL);
    }
}

/* A live block freed twice in a row: the second free is documented to be
 * refused at once (INVALID_POINTER, one log line), whatever the block's kind
 * and whichever thread allocated it. */
static void op_double_free(struct input *in)
{
    if (!nblocks)
        return;
    size_t k = in_u8(in) % nblocks;
    uint8_t how = in_u8(in);
    struct blk *b = &blocks[k];
    unsigned s = b->pool;
    mpool_t *handle = (how & 1) ? NULL : slots[s].handle;
    blk_verify(b, "before a double free");
    unsigned char *p = b->p;
    size_t size = b->size, usable = b->usable;
    size_t before = logged_now();
    mpool_free(handle, p);
    check_quiet(s, "mpool_free", before);
    blk_remove(k);
    errno = 0;
    mpool_free(handle, p);
    mpool_error_t e = mpool_last_error();
    CHECK(e == MPOOL_ERR_INVALID_POINTER && errno == EINVAL,
          "the second mpool_free(%p) in a row: error '%s', errno %d", (void *)p, err_name(e), errno);
    /* Through NULL, a pointer that is no block any more (its slab went back
     * to the page allocator) is reported to the default pool: no pool owns it. */
    if (slots[s].logs && handle)
        CHECK(logged_now() == before + 1,
              "a double free in a row of %p (pool %u%s, thread safe %d, debug %d, size %zu, usable %zu): "
              "%zu logger calls",
              (void *)p, s, handle ? "" : " through NULL", mpool_is_thread_safe(slots[s].handle),
              slots[s].cfg.enable_debug, size, usable, logged_now() - before);
    CHECK(!mpool_owns(NULL, p), "a block freed twice is live");
    tallies[T_REFUSED]++;
}

/* mpool_free of a live block through another pool: refused, block kept. */
static void op_free_other_pool(struct input *in)
{
    if (!nblocks)
        return;
    struct blk *b = &blocks[in_u8(in) % nblocks];
    unsigned other = pick_pool((uint8_t)(b->pool + 1 + in_u8(in) % 3));
    if (other == b->pool || !slots[other].handle)
        return;
    size_t before = logged_now();
    errno = 0;
    mpool_free(slots[other].handle, b->p);
    check_refused(other, "mpool_free(other pool)", MPOOL_ERR_INVALID_POINTER, EINVAL, before);
    CHECK(mpool_owns(slots[b->pool].handle, b->p), "mpool_free through another pool freed the block");
    blk_verify(b, "after mpool_free through another pool");
}

/* mpool_free of a pointer that is no block start and that no block could
 * start at (foreign, or a live or freed block's address plus an odd offset):
 * documented to be refused at once.  (A freed block's exact start is a
 * double free, documented to be found later: never given to mpool_free.) */
static void op_free_bad(struct input *in)
{
    uint8_t sel = in_u8(in);
    uint32_t r = in_u32(in);
    unsigned char *x;
    const char *what;
    switch (sel % 6) {
    case 0:
        if (!nblocks || blocks[r % nblocks].usable < 2)
            return;
        x = blocks[r % nblocks].p + ((r >> 8) % (blocks[r % nblocks].usable - 1) | 1);
        what = "interior";
        break;
    case 1:
        if (!ndead)
            return;
        x = dead[r % ndead] + ((r >> 8) % 64 | 1);
        what = "freed, interior";
        break;
    case 2: x = stack_probe + (r % 64); what = "stack"; break;
    case 3: x = (unsigned char *)&static_probe; what = "static"; break;
    case 4: x = foreign_heap + (r % 64); what = "malloc"; break;
    default: x = (unsigned char *)slots[r % NPOOLS].real; what = "pool object"; break;
    }
    if (!x)
        return;
    unsigned s = pick_pool(sel >> 3);
    bool any = (sel & 4) || slots[s].handle == NULL;
    size_t before = logged_now();
    errno = 0;
    mpool_free(any ? NULL : slots[s].handle, x);
    mpool_error_t e = mpool_last_error();
    CHECK(e == MPOOL_ERR_INVALID_POINTER && errno == EINVAL, "mpool_free(%s pointer %p): error '%s', errno %d",
          what, (void *)x, err_name(e), errno);
    if (!any && slots[s].logs)
        CHECK(logged_now() == before + 1, "mpool_free(%s): %zu logger calls", what, logged_now() - before);
    tallies[T_REFUSED]++;
}

/* safe_free, owns or usable_size of a candidate pointer. */
static void op_probe(struct input *in, int call)
{
    uint8_t sel = in_u8(in);
    const char *what = "";
    unsigned char *x = pick_pointer(in, &what);
    bool any = (sel & 3) == 0;
    unsigned s = pick_pool(sel >> 2);
    mpool_t *handle = any ? NULL : slots[s].handle;
    if (handle == NULL)
        any = true;
    long k = expect_live(x, any, s);
    size_t before = logged_now();
    errno = 0;
    if (call == 0) {
        if (k >= 0)
            blk_verify(&blocks[k], "before safe_free");
        bool ok = mpool_safe_free(handle, x);
        tallies[ok ? T_SAFE_FREE_OK : T_SAFE_FREE_REFUSED]++;
        CHECK(ok == (k >= 0), "mpool_safe_free(%s pointer %p, pool %s%u) = %d, model says %d", what, (void *)x,
              any ? "NULL/" : "", s, ok, k >= 0);
        if (ok) {
            check_quiet(blocks[k].pool, "mpool_safe_free", before);
            blk_remove((size_t)k);
            CHECK(!mpool_owns(NULL, x) || blk_find(x) >= 0, "safe_free left %p live", (void *)x);
        } else {
            /* With NULL the error goes to the pool of the pointer, which may
             * log or not: check only the error code then. */
            mpool_error_t e = mpool_last_error();
            CHECK(e == MPOOL_ERR_INVALID_POINTER, "mpool_safe_free(%s %p): error '%s'", what, (void *)x,
                  err_name(e));
            CHECK(errno == EINVAL, "mpool_safe_free(%s): errno %d", what, errno);
            if (!any && slots[s].logs)
                CHECK(logged_now() == before + 1, "safe_free refusal logged %zu times", logged_now() - before);
        }
    } else if (call == 1) {
        bool owns = mpool_owns(handle, x);
        CHECK(owns == (k >= 0), "mpool_owns(%s pointer %p, pool %s%u) = %d, model says %d", what, (void *)x,
              any ? "NULL/" : "", s, owns, k >= 0);
        CHECK(logged_now() == before, "mpool_owns logged");
    } else {
        size_t u = mpool_usable_size(handle, x);
        if (k < 0)
            CHECK(u == 0, "mpool_usable_size(%s pointer %p, pool %s%u) = %zu for no live block", what, (void *)x,
                  any ? "NULL/" : "", s, u);
        else
            CHECK(u == blocks[k].usable && u >= blocks[k].size, "mpool_usable_size(%p) = %zu, was %zu (size %zu)",
                  (void *)x, u, blocks[k].usable, blocks[k].size);
    }
}

static void op_reset(struct input *in)
{
    unsigned s = pick_pool(in_u8(in));
    for (size_t i = 0; i < nblocks; i++)
        if (blocks[i].pool != s)
            blk_verify(&blocks[i], "before another pool's reset");
    mpool_reset(slots[s].handle);
    blk_drop_pool(s);
    for (size_t i = 0; i < nblocks; i++)
        blk_verify(&blocks[i], "after another pool's reset");
    check_usage(s);
}

static void op_trim(struct input *in)
{
    unsigned s = pick_pool(in_u8(in));
    mpool_usage_t before = mpool_get_usage(slots[s].handle);
    size_t released = mpool_trim(slots[s].handle);
    mpool_usage_t after = mpool_get_usage(slots[s].handle);
    CHECK(after.total <= before.total, "trim grew the pool: %zu -> %zu", before.total, after.total);
    (void)released;
    check_usage(s);
}

static void op_thread_safe(struct input *in)
{
    unsigned s = pick_pool(in_u8(in));
    bool on = !mpool_is_thread_safe(slots[s].handle);
    mpool_set_thread_safe(slots[s].handle, on);
    CHECK(mpool_is_thread_safe(slots[s].handle) == on, "set_thread_safe(%d) did not stick", on);
    check_usage(s);
}

static void op_stats(struct input *in)
{
    unsigned s = pick_pool(in_u8(in));
    uint8_t how = in_u8(in);
    check_usage(s);
    if (how & 1)
        mpool_reset_stats(slots[s].handle);
    if (how & 2)
        op_report(s, how >> 2);
    errno = 0;
    CHECK(!mpool_get_stats(slots[s].handle, NULL), "mpool_get_stats(NULL out) succeeded");
    CHECK(mpool_last_error() == MPOOL_ERR_INVALID_ARGUMENT, "get_stats(NULL): error '%s'",
          err_name(mpool_last_error()));
}

/* ---- A second thread ---------------------------------------------------- */

struct remote {
    mpool_t *free_pool;   /* pool argument of the free */
    void *free_ptr;       /* a live block, or NULL */
    bool use_safe;
    mpool_t *alloc_pool;
    size_t alloc_size;
    void *got;
    bool safe_ok;
    mpool_error_t alloc_error;
    int alloc_errno;
};

static void *remote_main(void *arg)
{
    struct remote *r = arg;
    if (r->free_ptr) {
        if (r->use_safe)
            r->safe_ok = mpool_safe_free(r->free_pool, r->free_ptr);
        else
            mpool_free(r->free_pool, r->free_ptr);
    }
    errno = 0;
    r->got = mpool_alloc(r->alloc_pool, r->alloc_size);
    r->alloc_error = mpool_last_error();
    r->alloc_errno = errno;
    return NULL;
}

/* Another thread frees a live block and allocates one; the main thread
 * then owns the new block (its heap is ownerless once the thread ends). */
static void op_remote(struct input *in)
{
    uint8_t how = in_u8(in);
    struct remote r;
    memset(&r, 0, sizeof r);
    long k = nblocks ? (long)(in_u8(in) % nblocks) : -1;
    unsigned as = pick_pool(in_u8(in));
    r.alloc_pool = slots[as].handle;
    r.alloc_size = in_size(in);
    if (r.alloc_size > 1 * MiB)
        r.alloc_size %= 4096;
    if (k >= 0) {
        struct blk *b = &blocks[k];
        blk_verify(b, "before a remote free");
        r.free_ptr = b->p;
        r.free_pool = (how & 1) ? NULL : slots[b->pool].handle;
        r.use_safe = (how & 2) != 0;
    }
    if (!make_room_in_model())
        return;
    /* make_room may have freed blocks[0]: find the block again. */
    if (k >= 0 && blk_find(r.free_ptr) < 0)
        r.free_ptr = NULL;
    size_t before = logged_now();
    pthread_t t;
    if (pthread_create(&t, NULL, remote_main, &r) != 0)
        return;
    pthread_join(t, NULL);
    tallies[T_REMOTE]++;
    if (r.free_ptr) {
        long j = blk_find(r.free_ptr);
        CHECK(!r.use_safe || r.safe_ok, "remote safe_free of a live block failed");
        blk_remove((size_t)j);
    }
    if (!r.got) {
        bool ok = (r.alloc_error == MPOOL_ERR_POOL_FULL && slots[as].capped) ||
                  (r.alloc_error == MPOOL_ERR_OUT_OF_MEMORY && faults_armed);
        CHECK(ok, "remote mpool_alloc(%zu) failed: '%s'", r.alloc_size, err_name(r.alloc_error));
        CHECK(r.alloc_errno == ENOMEM, "remote failure errno %d", r.alloc_errno);
        return;
    }
    if (slots[as].logs && !(r.free_ptr && r.free_pool == NULL))
        CHECK(logged_now() == before, "logger called in a successful remote round");
    blk_add(as, r.got, r.alloc_size, 1, false);
}

/* ---- Faults and pools --------------------------------------------------- */

static void op_fault(struct input *in)
{
#ifdef MPOOL_FAULT_INJECTION
    uint8_t k = in_u8(in);
    uint8_t n = in_u8(in);
    if (k & 0x80) {
        prim_fault_disarm();
        faults_armed = false;
        return;
    }
    enum prim_call call = (enum prim_call)(k % PRIM_CALL_KINDS);
    size_t count = (k & 0x40) ? SIZE_MAX : 1 + (k >> 3) % 4;
    prim_fault_arm(call, 1 + n % 8, count);
    if (call == PRIM_MAP || call == PRIM_REMAP)
        faults_armed = true;
#else
    (void)in;
#endif
}

static void faults_off(void)
{
#ifdef MPOOL_FAULT_INJECTION
    prim_fault_disarm();
#endif
    faults_armed = false;
}

static void op_recreate(struct input *in)
{
    unsigned s = in_u8(in) % (NPOOLS - 1);
    uint8_t a = in_u8(in), b = in_u8(in), c = in_u8(in);
    mpool_config_t cfg = config_from(a, b, c);
    /* A refused unmap at destroy leaves the mapping behind for good: keep
     * those out of a long fuzzing run.  An armed fault stays armed as a
     * refused map, for the creation. */
    bool armed = faults_armed;
    faults_off();
    slot_destroy(s);
    tallies[T_RECREATE]++;
#ifdef MPOOL_FAULT_INJECTION
    if (armed) {
        prim_fault_arm(PRIM_MAP, 1 + a % 4, 1);
        faults_armed = true;
    }
#else
    (void)armed;
#endif
    slot_create(s, &cfg);
}

static void verify_all(void)
{
    for (size_t i = 0; i < nblocks; i++)
        blk_verify(&blocks[i], "full check");
}

/* ---- Entry points ------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    pattern_init();
    const char *tally = getenv("FUZZ_API_TALLY");
    if (tally && *tally == '1')
        atexit(tally_print);
    foreign_heap = malloc(64);
    if (!foreign_heap)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    unsigned char stack_buffer[64];
    memset(stack_buffer, 0, sizeof stack_buffer);
    stack_probe = stack_buffer;
    nblocks = 0;
    live_bytes = 0;
    ndead = dead_next = 0;
    next_seed = 1;
    op_no = 0;
    op_code = 0;
    faults_off();
    for (unsigned s = 0; s < DEFAULT_SLOT; s++) {
        uint8_t a = in_u8(&in), b = in_u8(&in), c = in_u8(&in);
        mpool_config_t cfg = config_from(a, b, c);
        if (!slot_create(s, &cfg))
            fail("could not create pool %u", s);
    }
    default_slot_init();

    while (in.n > 0 && op_no < MAX_OPS) {
        op_no++;
        tallies[T_OPS]++;
        op_code = in_u8(&in) % 32;
        switch (op_code) {
        case 0: case 1: case 2: case 3: op_alloc(&in, HOW_ALLOC); break;
        case 4: case 5: op_alloc(&in, HOW_ALIGNED); break;
        case 6: op_alloc(&in, HOW_CALLOC); break;
        case 7: op_alloc(&in, HOW_REALLOC_NULL); break;
        case 8: case 9: case 10: op_realloc(&in); break;
        case 11: case 12: case 13: case 14: op_free(&in); break;
        case 15: case 16: op_probe(&in, 0); break;
        case 17: op_probe(&in, 1); break;
        case 18: op_probe(&in, 2); break;
        case 19: op_reset(&in); break;
        case 20: op_trim(&in); break;
        case 21: op_stats(&in); break;
        case 22: op_thread_safe(&in); break;
        case 23: op_remote(&in); break;
        case 24: op_fault(&in); break;
        case 25: op_recreate(&in); break;
        case 26: op_bad_alloc(&in); break;
        case 27: op_free_other_pool(&in); break;
        case 28: verify_all(); break;
        case 29: op_free_bad(&in); break;
        case 30: op_double_free(&in); break;
        default: op_alloc(&in, HOW_ALLOC); break;
        }
        for (size_t i = 0; i < nblocks; i++)
            blk_verify_ends(&blocks[i]);
        for (unsigned s = 0; s < NPOOLS; s++)
            check_pool(s);
        if (op_no % FULL_CHECK_EVERY == 0)
            verify_all();
    }

    faults_off();
    op_code = 99;
    verify_all();
    for (unsigned s = 0; s < NPOOLS; s++)
        if (slots[s].real)
            check_usage(s);
    /* Free what is left (through every path), then release the pools. */
    for (size_t i = nblocks; i-- > 0;) {
        struct blk *b = &blocks[i];
        if (i % 2)
            mpool_free(slots[b->pool].handle, b->p);
        else
            CHECK(mpool_safe_free(NULL, b->p), "final safe_free of %p failed", (void *)b->p);
        blk_remove(i);
    }
    for (unsigned s = 0; s < NPOOLS; s++)
        if (slots[s].real) {
            check_usage(s);
            check_pool(s);
        }
    for (unsigned s = 0; s < DEFAULT_SLOT; s++)
        slot_destroy(s);
    mpool_reset(NULL);
    if (!mpool_is_thread_safe(NULL))
        mpool_set_thread_safe(NULL, true);
    return 0;
}
