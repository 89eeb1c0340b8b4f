/*
 * glibc_malloc.c - libbench-glibc.so: glibc's own malloc, as a preload.
 *
 * A program linked with another allocator (Debian's redis-server links
 * libjemalloc.so.2) never reaches glibc's malloc: its malloc symbols bind to
 * the linked library.  Preloading this library puts glibc's allocator back
 * in front, so that bench/run.py's "glibc" column measures glibc for such a
 * program too.  Every function forwards to glibc's exported __libc_* entry
 * points (malloc_usable_size, which has none, to libc.so.6's own symbol).
 * C++ operator new/delete are not covered: a program using them reaches
 * whatever its linked allocator defines.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

void *__libc_malloc(size_t size);
void __libc_free(void *ptr);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void *__libc_memalign(size_t alignment, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);

void *malloc(size_t size) { return __libc_malloc(size); }
void free(void *ptr) { __libc_free(ptr); }
void *calloc(size_t count, size_t size) { return __libc_calloc(count, size); }
void *realloc(void *ptr, size_t size) { return __libc_realloc(ptr, size); }
void *memalign(size_t alignment, size_t size) { return __libc_memalign(alignment, size); }
void *valloc(size_t size) { return __libc_valloc(size); }
void *pvalloc(size_t size) { return __libc_pvalloc(size); }

void *aligned_alloc(size_t alignment, size_t size)
{
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size)
{
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0)
        return EINVAL;
    void *p = __libc_memalign(alignment, size);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *reallocarray(void *ptr, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_realloc(ptr, count * size);
}

typedef size_t (*usable_fn)(void *);
static _Atomic(usable_fn) glibc_usable;

size_t malloc_usable_size(void *ptr)
{
    usable_fn f = atomic_load_explicit(&glibc_usable, memory_order_acquire);
    if (!f) {
        void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
        f = libc ? (usable_fn)dlsym(libc, "malloc_usable_size") : NULL;
        if (!f || f == malloc_usable_size)
            abort(); /* no glibc underneath: nothing sensible to answer */
        atomic_store_explicit(&glibc_usable, f, memory_order_release);
    }
    return f(ptr);
}
