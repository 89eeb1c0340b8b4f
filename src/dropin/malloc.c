/*
 * dropin/malloc.c - the malloc family served by the default pool: the
 * replacement that libmpool-malloc.so gives any program through LD_PRELOAD
 * or by being linked first.
 *
 * Rules
 *   - Every call uses the default pool (mpool_default()), configured from the
 *     environment and MPOOL_CONFIG (options.h).  Its first use, from the first
 *     malloc of the process (possibly inside the dynamic loader, a library
 *     constructor or thread-local storage set-up), initialises it without
 *     allocating.
 *   - POSIX and C semantics: ENOMEM on failure; posix_memalign returns EINVAL
 *     or ENOMEM and leaves errno alone; calloc and reallocarray always check
 *     the multiplication; realloc(p, 0) frees p and returns NULL (as glibc).
 *   - Misuse (an invalid or double free) follows MPOOL_ON_ERROR: abort after
 *     one line naming the pointer by default (as glibc), or log, or return.
 *     Running out of memory only returns NULL.
 *   - glibc's malloc_trim, malloc_stats, mallinfo and mallinfo2 answer from
 *     the pool's own figures; malloc_stats prints the pool's text report.
 *   - Statistics at exit and in a file (MPOOL_SHOW_STATS, MPOOL_STATS_FILE,
 *     MPOOL_STATS_INTERVAL) come from the pool's own counts (monitor.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "callsite.h"
#include "dropin.h"
#include "error.h"
#include "mpool.h"
#include "options.h"
#include "pool.h"

/* Read by pool.c (weakly): this build is the malloc replacement. */
const bool mpool_dropin_build = true;

/* C23 and glibc-internal entry points that the system headers may not declare. */
DROPIN_API void free_sized(void *p, size_t size);
DROPIN_API void free_aligned_sized(void *p, size_t alignment, size_t size);
DROPIN_API void *__libc_malloc(size_t size);
DROPIN_API void __libc_free(void *p);
DROPIN_API void *__libc_calloc(size_t count, size_t size);
DROPIN_API void *__libc_realloc(void *p, size_t size);
DROPIN_API void *__libc_memalign(size_t alignment, size_t size);
DROPIN_API void *__libc_valloc(size_t size);
DROPIN_API void *__libc_pvalloc(size_t size);

/* ---- The malloc family -------------------------------------------------- */

/* Sizes above SMALL_MAX that a slab serves are popped here, as the inline
 * part pops smaller ones; the rest takes the general slow half. */
static mpool_noinline void *malloc_slow(size_t size)
{
    if (size > SMALL_MAX && size <= SLAB_MAX) {
        void *p = alloc_default_medium(size);
        if (likely(p != NULL))
            return p;
    }
    return alloc_default_slow(size);
}

static mpool_noinline void free_slow(void *p)
{
    if (!p)
        return;
    free_default_slow(p);
}

DROPIN_API void *malloc(size_t size)
{
    if (likely(size <= SMALL_MAX)) {
        void *p = alloc_default_pop(size);
        if (likely(p != NULL))
            return p;
    }
    return malloc_slow(size);
}

DROPIN_API void free(void *p)
{
    if (likely(heap_free_mine(mpool_default_heap, p)))
        return;
    free_slow(p);
}

DROPIN_API void *calloc(size_t count_, size_t size)
{
    return mpool_calloc(NULL, count_, size);
}

DROPIN_API void *realloc(void *p, size_t size)
{
    return mpool_realloc(NULL, p, size);
}

DROPIN_API void *reallocarray(void *p, size_t count_, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count_, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, total);
}

/* An aligned block; alignment must already be a power of two. */
static void *alloc_aligned(size_t alignment, size_t size)
{
    return mpool_alloc_aligned(NULL, size, alignment);
}

DROPIN_API int posix_memalign(void **out, size_t alignment, size_t size)
{
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0)
        return EINVAL;
    int saved = errno;
    void *p = alloc_aligned(alignment, size);
    int err = p ? 0 : errno == ENOMEM ? ENOMEM : EINVAL;
    errno = saved;
    if (p)
        *out = p;
    return err;
}

DROPIN_API void *aligned_alloc(size_t alignment, size_t size)
{
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    return alloc_aligned(alignment, size);
}

/* glibc's memalign takes any alignment and rounds it up to a power of two. */
DROPIN_API void *memalign(size_t alignment, size_t size)
{
    if (alignment <= sizeof(void *))
        return malloc(size);
    if (alignment > ((size_t)-1 >> 1) + 1) {
        errno = EINVAL;
        return NULL;
    }
    size_t a = 1;
    while (a < alignment)
        a <<= 1;
    return alloc_aligned(a, size);
}

static size_t page_size(void)
{
    static size_t cached;
    if (!cached)
        cached = (size_t)sysconf(_SC_PAGESIZE);
    return cached;
}

DROPIN_API void *valloc(size_t size)
{
    return alloc_aligned(page_size(), size);
}

DROPIN_API void *pvalloc(size_t size)
{
    size_t page = page_size();
    if (size > (size_t)-1 - page) {
        errno = ENOMEM;
        return NULL;
    }
    size_t rounded = size ? (size + page - 1) & ~(page - 1) : page;
    return alloc_aligned(page, rounded);
}

/* A pointer that is not a live block is misuse, reported as free reports it. */
DROPIN_API size_t malloc_usable_size(void *p)
{
    return p ? alloc_usable_size_checked(p) : 0;
}

/* C23: the size (and alignment) must be those the block was allocated with
 * (or last resized to); a mismatch is reported and the block is not freed. */
DROPIN_API void free_sized(void *p, size_t size)
{
    if (likely(size <= SMALL_MAX) &&
        likely(heap_free_mine_class(mpool_default_heap, p, mpool_default_pool.size_class[size])))
        return;
    alloc_free_sized(p, size, 0, DEBUG_FORM_MALLOC, "free_sized");
}

DROPIN_API void free_aligned_sized(void *p, size_t alignment, size_t size)
{
    alloc_free_sized(p, size, alignment, DEBUG_FORM_MALLOC, "free_aligned_sized");
}

/* ---- glibc's introspection, from the pool's own figures ----------------- */

DROPIN_API int malloc_trim(size_t pad)
{
    (void)pad;
    return mpool_trim(NULL) > 0;
}

DROPIN_API struct mallinfo2 mallinfo2(void)
{
    mpool_usage_t u = mpool_get_usage(NULL);
    struct mallinfo2 m;
    memset(&m, 0, sizeof m);
    m.arena = u.total;    /* bytes held from the system */
    m.uordblks = u.used;  /* bytes in live blocks */
    m.fordblks = u.free;  /* bytes held but not in blocks */
    return m;
}

static int clamp_int(size_t v) { return v > (size_t)0x7fffffff ? 0x7fffffff : (int)v; }

DROPIN_API struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo m;
    memset(&m, 0, sizeof m);
    m.arena = clamp_int(m2.arena);
    m.uordblks = clamp_int(m2.uordblks);
    m.fordblks = clamp_int(m2.fordblks);
    return m;
}

/* glibc prints its arenas on stderr; this prints the pool's text report
 * (on MPOOL_LOG_FILE when it is set). */
DROPIN_API void malloc_stats(void)
{
    monitor_text_report();
}

/* ---- glibc-internal names, for code that calls them directly ------------ */

void *__libc_malloc(size_t size) { return malloc(size); }
void __libc_free(void *p) { free(p); }
void *__libc_calloc(size_t count_, size_t size) { return calloc(count_, size); }
void *__libc_realloc(void *p, size_t size) { return realloc(p, size); }
void *__libc_memalign(size_t alignment, size_t size) { return memalign(alignment, size); }
void *__libc_valloc(size_t size) { return valloc(size); }
void *__libc_pvalloc(size_t size) { return pvalloc(size); }

/* ---- Start and exit ----------------------------------------------------- */

__attribute__((constructor)) static void dropin_start(void)
{
    if (mpool_default()->debug) /* libunwind for call sites: not from inside an allocation (callsite.c) */
        callsite_prepare(pool_process_options()->fast_unwind);
    monitor_start();
}

__attribute__((destructor)) static void dropin_exit(void)
{
    monitor_exit();
}
