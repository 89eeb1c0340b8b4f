/*
 * dropin/helper.h - shared by the helper programs of test_dropin (header
 * only).  The helpers are plain libc programs, NOT linked with mpool:
 * test_dropin runs them with LD_PRELOAD=libmpool-malloc.so.  They find
 * mpool_owns at run time with dlsym(RTLD_DEFAULT, ...), so "owned" proves that
 * the preloaded pool served a block (and is false when nothing is preloaded).
 *
 * Protocol: a helper prints "OK <scenario>" on stdout and exits 0 when every
 * check passed; the first failed check prints "FAIL <file>:<line>: <what>" on
 * stderr and exits 1.  Messages are written with write(2): no stdio buffers
 * (and no allocation) at awkward moments.
 */
#ifndef DROPIN_HELPER_H
#define DROPIN_HELPER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef bool (*helper_owns_fn)(const void *pool, const void *ptr);

/* Writes a formatted line to fd without stdio. */
static inline void helper_say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void helper_say(int fd, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
    line[len++] = '\n';
    for (size_t done = 0; done < len;) {
        ssize_t w = write(fd, line + done, len - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
}

#define HELPER_FAIL(...)                                                     \
    do {                                                                     \
        char what_[768];                                                     \
        snprintf(what_, sizeof what_, __VA_ARGS__);                          \
        helper_say(2, "FAIL %s:%d: %s", __FILE__, __LINE__, what_);          \
        _exit(1);                                                            \
    } while (0)

/* CHECK(cond, "fmt", ...): fails the helper with the message when cond is false. */
#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            char why_[640];                                                  \
            snprintf(why_, sizeof why_, __VA_ARGS__);                        \
            HELPER_FAIL("%s (%s)", #cond, why_);                             \
        }                                                                    \
    } while (0)

/* mpool_owns of the preloaded library; fails the helper if there is none. */
static inline helper_owns_fn helper_owns_fn_get(void)
{
    static helper_owns_fn fn;
    if (!fn) {
        fn = (helper_owns_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "mpool_owns");
        if (!fn)
            HELPER_FAIL("mpool_owns not found: libmpool-malloc.so is not preloaded");
    }
    return fn;
}

/* True if p is the start of a live block of the preloaded pool. */
static inline bool owned(const void *p)
{
    return helper_owns_fn_get()(NULL, p);
}

/* The same for an address kept as an integer (of a block since freed). */
static inline bool owned_addr(uintptr_t addr)
{
    return helper_owns_fn_get()(NULL, (const void *)addr);
}

/* FREED(call, p, what): call frees p; afterwards p is no longer a live block.
 * (The address is kept as an integer: the pointer itself is dead.) */
#define FREED(call, p, what)                                                          \
    do {                                                                              \
        volatile uintptr_t addr_ = (uintptr_t)(p); /* opaque to -Wuse-after-free */  \
        call;                                                                         \
        CHECK(!owned_addr(addr_), "%s(%#zx): still a live block", what, (size_t)addr_); \
    } while (0)

static inline bool aligned_to(const void *p, size_t a)
{
    return ((uintptr_t)p & (a - 1)) == 0;
}

/* A byte pattern that depends on the block and the offset. */
static inline unsigned char pattern_byte(size_t seed, size_t i)
{
    return (unsigned char)((seed * 131u + i * 7u + (i >> 8)) & 0xff);
}

static inline void pattern_fill(void *p, size_t n, size_t seed)
{
    unsigned char *b = (unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        b[i] = pattern_byte(seed, i);
}

/* Index of the first byte that differs from the pattern, or n. */
static inline size_t pattern_check(const void *p, size_t n, size_t seed)
{
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern_byte(seed, i))
            return i;
    return n;
}

/* Small PRNG (xorshift64*). */
static inline uint64_t helper_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(2685821657736338717);
}

/* The block sizes used by the workloads: tiny to a few MiB, mostly small. */
static inline size_t helper_size(uint64_t *s)
{
    uint64_t r = helper_rand(s);
    switch (r % 16) {
    case 0: return (size_t)(r >> 8) % 4000000 + 1;   /* up to ~4 MB: large and huge */
    case 1: case 2: return (size_t)(r >> 8) % 200000; /* medium and large */
    default: return (size_t)(r >> 8) % 1024;          /* small, including 0 */
    }
}

#ifdef __cplusplus
}
#endif

#endif /* DROPIN_HELPER_H */
