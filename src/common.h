/*
 * common.h - compile-time facts, check macros and small helpers shared by
 * every layer of the library.  Includes nothing of the library itself.
 *
 * Check levels (MPOOL_DEBUG, 0..3, default 1):
 *   mpool_assert           level >= 1  cheap checks of arguments and states
 *   mpool_assert_internal  level >= 2  checks of internal invariants
 *   mpool_assert_expensive level >= 3  checks that walk structures
 */
#ifndef MPOOL_COMMON_H
#define MPOOL_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef MPOOL_DEBUG
#define MPOOL_DEBUG 1
#endif

/* Built with ThreadSanitizer. */
#if defined(__SANITIZE_THREAD__)
#define MPOOL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MPOOL_TSAN 1
#endif
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define mpool_noinline __attribute__((noinline))
#define mpool_always_inline inline __attribute__((always_inline))
#define mpool_internal __attribute__((visibility("hidden")))

/* Reports a failed check (file, line, expression, message) and aborts. */
_Noreturn void mpool_assert_fail(const char *file, int line, const char *expr, const char *msg);

#define mpool_check_at(level, cond, msg)                                  \
    do {                                                                  \
        if (MPOOL_DEBUG >= (level) && unlikely(!(cond)))                  \
            mpool_assert_fail(__FILE__, __LINE__, #cond, msg);            \
    } while (0)
#define mpool_assert(cond, msg) mpool_check_at(1, cond, msg)
#define mpool_assert_internal(cond, msg) mpool_check_at(2, cond, msg)
#define mpool_assert_expensive(cond, msg) mpool_check_at(3, cond, msg)

/* Debug mode (enable_debug) fills memory with these bytes. */
#define MPOOL_POISON_FREED 0xDF /* freed blocks (past a slab block's link and mark), memory an arena gave back */
#define MPOOL_POISON_FRESH 0xAB /* new blocks (not calloc), new arena allocations */

/* ---- Geometry ---------------------------------------------------------- */

#define PAGE_SHIFT 12                          /* the buddy allocator's page */
#define PAGE_SIZE ((size_t)1 << PAGE_SHIFT)
#define REGION_SHIFT 22                        /* regions are aligned to 4 MiB */
#define REGION_SIZE ((size_t)1 << REGION_SHIFT)
#define REGION_PAGES (REGION_SIZE >> PAGE_SHIFT)
#define ADDRESS_BITS 47                        /* user space of x86-64 and aarch64 (48-bit VA) */
#define BUDDY_ORDERS 10                        /* runs of 2^0 .. 2^9 pages */
#define BUDDY_MAX_ORDER (BUDDY_ORDERS - 1)
#define BUDDY_MAX_RUN ((size_t)PAGE_SIZE << BUDDY_MAX_ORDER) /* 2 MiB: largest page run */

#define SMALL_MAX 1024                         /* sizes served through the lookup table */
#define SLAB_MAX 262144                        /* largest size class (256 KiB) */
#define CLASS_COUNT 104                        /* 16 classes of 8 B steps, then 8 per doubling */
#define CLASS_NONE CLASS_COUNT                 /* "no class": its current slab is always empty */

_Static_assert((PAGE_SIZE & (PAGE_SIZE - 1)) == 0, "page size must be a power of two");
_Static_assert(REGION_PAGES == 1024, "a region is 1024 pages");
_Static_assert(BUDDY_MAX_RUN * 2 == REGION_SIZE, "the largest run is half a region");
_Static_assert(SLAB_MAX <= BUDDY_MAX_RUN / 8, "a slab of the largest class fits a buddy run");
_Static_assert(SMALL_MAX % 8 == 0, "the lookup table steps by 8 bytes");

static inline size_t align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }
static inline bool is_pow2(size_t n) { return n != 0 && (n & (n - 1)) == 0; }
static inline unsigned floor_log2(size_t n) { return 63u - (unsigned)__builtin_clzll((unsigned long long)n); }
static inline unsigned ceil_log2(size_t n) { return n <= 1 ? 0 : floor_log2(n - 1) + 1; }

/* ---- Exact division by an invariant size -------------------------------- *
 * With size = d * 2^s (d odd) and inverse * d == 1 (mod 2^64),
 * rotr64(off * inverse, s) is off / size when size divides off, and at least
 * 2^64 / size otherwise (Granlund and Montgomery, "Division by invariant
 * integers using multiplication", 1994, section 9): one multiplication and
 * one rotation tell an index from an offset that is no multiple of the size.
 * Slabs (slab.h) and fixed pools (fixed.c) test their pointers this way. */

/* x rotated right by s bits (s < 64). */
static inline uint64_t rotr64(uint64_t x, unsigned s)
{
    return (x >> s) | (x << ((64 - s) & 63));
}

/* The s of size = d * 2^s, and the inverse of d mod 2^64 (size > 0). */
static inline uint64_t size_inverse(uint64_t size, unsigned *shift)
{
    *shift = (unsigned)__builtin_ctzll(size);
    uint64_t odd = size >> *shift, inverse = odd; /* right to 3 bits */
    for (int i = 0; i < 5; i++) /* Newton's iteration doubles the correct bits */
        inverse *= 2 - odd * inverse;
    return inverse;
}

#endif /* MPOOL_COMMON_H */
