/*
 * testutil.h - helpers shared by the mpool test programs (header only).
 *
 * - A small fast PRNG (splitmix64 to seed, xoshiro256** to draw).
 * - MPOOL_TEST_SCALE / MPOOL_TEST_SEED environment knobs.
 * - Block patterns: a block with id `id` holds, at offset o, the byte
 *   pattern_table[pattern_shift(id) + o].  The table is filled once with
 *   pseudo-random bytes, so writing and checking a pattern is one memcpy /
 *   memcmp (fast even in unoptimised builds), and two blocks with different
 *   ids almost always hold different bytes at every offset.
 *
 * - KiB and MiB, create_or_die (a pool or a failed test) and prime_error
 *   (makes the last error and errno something a test can see change).
 *
 * Everything is static inline so each test program may use any subset.
 */
#ifndef MPOOL_TESTUTIL_H
#define MPOOL_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- PRNG -------------------------------------------------------------- */

typedef struct rng {
    uint64_t s[4];
} rng_t;

static inline uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static inline void rng_seed(rng_t *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl64(uint64_t v, int k)
{
    return (v << k) | (v >> (64 - k));
}

static inline uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Uniform in [0, n); n > 0.  (The tiny modulo bias does not matter here.) */
static inline uint64_t rng_below(rng_t *r, uint64_t n)
{
    return rng_next(r) % n;
}

/* Uniform in [lo, hi]. */
static inline uint64_t rng_range(rng_t *r, uint64_t lo, uint64_t hi)
{
    return lo + rng_below(r, hi - lo + 1);
}

/* Roughly log-uniform in [lo, hi] (lo >= 1): small values are more likely. */
static inline uint64_t rng_logrange(rng_t *r, uint64_t lo, uint64_t hi)
{
    int lo_bits = 63 - __builtin_clzll(lo);
    int hi_bits = 63 - __builtin_clzll(hi);
    int b = (int)rng_range(r, (uint64_t)lo_bits, (uint64_t)hi_bits);
    uint64_t blo = UINT64_C(1) << b;
    uint64_t bhi = (b >= 63) ? UINT64_MAX : (UINT64_C(1) << (b + 1)) - 1;
    if (blo < lo)
        blo = lo;
    if (bhi > hi)
        bhi = hi;
    return rng_range(r, blo, bhi);
}

/* ---- Environment knobs ------------------------------------------------- */

/* MPOOL_TEST_SCALE (a float > 0), default 1.0. */
static inline double test_scale(void)
{
    const char *s = getenv("MPOOL_TEST_SCALE");
    if (s == NULL || *s == '\0')
        return 1.0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || !(v > 0.0))
        return 1.0;
    return v;
}

/* n * scale, at least `min`. */
static inline size_t test_scaled(size_t n, size_t min)
{
    double v = (double)n * test_scale();
    if (v < (double)min)
        return min;
    return (size_t)v;
}

/* MPOOL_TEST_SEED (decimal or 0x hex), or `dflt`. */
static inline uint64_t test_seed(uint64_t dflt)
{
    const char *s = getenv("MPOOL_TEST_SEED");
    if (s == NULL || *s == '\0')
        return dflt;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 0);
    if (end == s)
        return dflt;
    return (uint64_t)v;
}

/* ---- Patterns ---------------------------------------------------------- */

#define PATTERN_SHIFTS ((size_t)1 << 20)                  /* distinct starting offsets */
#define PATTERN_MAX_BLOCK ((size_t)32 << 20)              /* longest patterned length */
#define PATTERN_TABLE_SIZE (PATTERN_SHIFTS + PATTERN_MAX_BLOCK)

static unsigned char *pattern_table;

/* Fills the table; call once before any thread starts. */
static inline void pattern_init(void)
{
    if (pattern_table != NULL)
        return;
    pattern_table = malloc(PATTERN_TABLE_SIZE);
    if (pattern_table == NULL)
        abort();
    uint64_t x = UINT64_C(0x5EED0F9A77E27AB1);
    for (size_t i = 0; i < PATTERN_TABLE_SIZE; i += 8) {
        uint64_t v = splitmix64(&x);
        memcpy(pattern_table + i, &v, 8);
    }
}

static inline size_t pattern_shift(uint64_t id)
{
    uint64_t x = id * UINT64_C(0xD6E8FEB86659FD93);
    return (size_t)((x ^ (x >> 32)) & (PATTERN_SHIFTS - 1));
}

/* Writes the pattern of block `id` over bytes [from, to) of p. */
static inline void pattern_fill_range(void *p, uint64_t id, size_t from, size_t to)
{
    if (to > from)
        memcpy((unsigned char *)p + from, pattern_table + pattern_shift(id) + from, to - from);
}

static inline void pattern_fill(void *p, uint64_t id, size_t size)
{
    pattern_fill_range(p, id, 0, size);
}

/* Returns the first offset in [0, size) whose byte is wrong, or SIZE_MAX if
 * the whole range holds the pattern of block `id`. */
static inline size_t pattern_find_bad(const void *p, uint64_t id, size_t size)
{
    const unsigned char *want = pattern_table + pattern_shift(id);
    if (size == 0 || memcmp(p, want, size) == 0)
        return SIZE_MAX;
    const unsigned char *got = p;
    for (size_t i = 0; i < size; i++)
        if (got[i] != want[i])
            return i;
    return SIZE_MAX; /* not reached */
}

static inline bool pattern_ok(const void *p, uint64_t id, size_t size)
{
    return pattern_find_bad(p, id, size) == SIZE_MAX;
}

/* True if all `size` bytes at p are zero. */
static inline bool bytes_all_zero(const void *p, size_t size)
{
    const unsigned char *b = p;
    if (size == 0)
        return true;
    if (b[0] != 0)
        return false;
    return memcmp(b, b + 1, size - 1) == 0;
}

static inline bool is_aligned(const void *p, size_t alignment)
{
    return ((uintptr_t)p & (alignment - 1)) == 0;
}

/* ---- Pools and errors --------------------------------------------------- */

#include <criterion/criterion.h>

#include <errno.h>

#include <mpool.h>

/* UNDER_TSAN: the test runs under ThreadSanitizer (gcc or clang), which
 * makes threaded loops many times slower: tests scale their work down. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* Makes this thread's last error something other than `not_this`, and clears
 * errno, so that the next assertion proves the call under test set both. */
static inline void prime_error(mpool_error_t not_this)
{
    if (not_this != MPOOL_ERR_INVALID_ALIGNMENT)
        cr_assert_null(mpool_alloc_aligned(NULL, 8, 3));
    else
        cr_assert_null(mpool_calloc(NULL, SIZE_MAX, 2));
    cr_assert_neq(mpool_last_error(), not_this, "could not prime the last error");
    errno = 0;
}

static inline mpool_t *create_or_die(const mpool_config_t *cfg)
{
    mpool_t *pool = mpool_create(cfg);
    cr_assert_not_null(pool, "mpool_create failed: %s", mpool_strerror(mpool_last_error()));
    return pool;
}


#endif /* MPOOL_TESTUTIL_H */
