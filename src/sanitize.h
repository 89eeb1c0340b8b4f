/*
 * sanitize.h - telling Valgrind's memcheck and AddressSanitizer which bytes
 * of the pool's memory a program may touch.
 *
 * Valgrind: the client requests of valgrind/memcheck.h, compiled only when
 * the header was found at configure time (MPOOL_HAVE_VALGRIND, CMake
 * check_include_file).  Outside Valgrind each request is a few instructions
 * that do nothing; they sit only on the debug layer's paths (debug.c), never
 * on the inline allocation and free.  Under memcheck every pool runs in debug
 * mode (pool.c asks san_under_memcheck), so every block is announced:
 *   allocation  VALGRIND_MALLOCLIKE_BLOCK(block, size, redzone)
 *   free        VALGRIND_FREELIKE_BLOCK (memcheck makes the block unaddressable)
 *   canaries    VALGRIND_MAKE_MEM_NOACCESS, so an overflow is reported where
 *               it happens, not only when the block is freed
 * and memcheck's leak checker sees the pool's blocks like malloc's.
 *
 * AddressSanitizer: the manual poisoning interface of
 * sanitizer/asan_interface.h, compiled only when the library itself is built
 * with -fsanitize=address (__SANITIZE_ADDRESS__, or clang's
 * __has_feature(address_sanitizer)).  Poisoned bytes make any instrumented
 * access fail with "use-after-poison".
 *
 * san_poison / san_unpoison do both; without either tool they compile to
 * nothing.  Under AddressSanitizer every pool also poisons the bytes of a
 * free slab block past its link and mark (slab.h), unpoisons a block it hands
 * out, and unpoisons memory it takes afresh (san_asan_*).  The library's own reads of poisoned bytes (checking canaries and
 * fills) unpoison first and poison again after.
 */
#ifndef MPOOL_SANITIZE_H
#define MPOOL_SANITIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define MPOOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MPOOL_ASAN 1
#endif
#endif

#ifdef MPOOL_ASAN
#include <sanitizer/asan_interface.h>
#endif
#ifdef MPOOL_HAVE_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

/* True when the process runs under Valgrind's memcheck (always false
 * without the header).  Other tools (callgrind counting the instructions of
 * the fast paths) see the pools as they are: memcheck is recognised by the
 * preload it puts in the environment. */
static inline bool san_under_memcheck(void)
{
#ifdef MPOOL_HAVE_VALGRIND
    if (RUNNING_ON_VALGRIND == 0)
        return false;
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "vgpreload_memcheck") != NULL;
#else
    return false;
#endif
}

/* AddressSanitizer only (nothing otherwise, not even Valgrind's requests):
 * the poisoning of free slab memory on the inline paths, and the unpoisoning
 * of memory that a pool takes afresh (a new mapping, a run of the page
 * allocator), whose shadow may still say what an earlier use left. */
static inline void san_asan_poison(const void *p, size_t n)
{
    (void)p;
    (void)n;
#ifdef MPOOL_ASAN
    ASAN_POISON_MEMORY_REGION(p, n);
#endif
}

static inline void san_asan_unpoison(const void *p, size_t n)
{
    (void)p;
    (void)n;
#ifdef MPOOL_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
}

/* [p, p + n) may not be touched by the program. */
static inline void san_poison(const void *p, size_t n)
{
    (void)p;
    (void)n;
#ifdef MPOOL_ASAN
    ASAN_POISON_MEMORY_REGION(p, n);
#endif
#ifdef MPOOL_HAVE_VALGRIND
    (void)VALGRIND_MAKE_MEM_NOACCESS(p, n);
#endif
}

/* [p, p + n) may be touched again (its contents count as defined). */
static inline void san_unpoison(const void *p, size_t n)
{
    (void)p;
    (void)n;
#ifdef MPOOL_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
#ifdef MPOOL_HAVE_VALGRIND
    (void)VALGRIND_MAKE_MEM_DEFINED(p, n);
#endif
}

/* The program got the block [p, p + size) with redzone bytes around it. */
static inline void san_block_alloc(const void *p, size_t size, size_t redzone, bool zeroed)
{
    (void)p;
    (void)size;
    (void)redzone;
    (void)zeroed;
#ifdef MPOOL_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p, size);
#endif
#ifdef MPOOL_HAVE_VALGRIND
    VALGRIND_MALLOCLIKE_BLOCK(p, size, redzone, zeroed);
#endif
}

/* The program gave the block at p back: none of it may be touched. */
static inline void san_block_free(const void *p, size_t size, size_t redzone)
{
    (void)p;
    (void)size;
    (void)redzone;
#ifdef MPOOL_ASAN
    ASAN_POISON_MEMORY_REGION(p, size);
#endif
#ifdef MPOOL_HAVE_VALGRIND
    VALGRIND_FREELIKE_BLOCK(p, redzone);
#endif
}

/* The debug layer's own accesses to memory the program may not touch
 * (headers of other blocks, canaries): memcheck reports nothing for this
 * thread in between.  Calls nest. */
static inline void san_internal_begin(void)
{
#ifdef MPOOL_HAVE_VALGRIND
    VALGRIND_DISABLE_ERROR_REPORTING;
#endif
}

static inline void san_internal_end(void)
{
#ifdef MPOOL_HAVE_VALGRIND
    VALGRIND_ENABLE_ERROR_REPORTING;
#endif
}

#endif /* MPOOL_SANITIZE_H */
