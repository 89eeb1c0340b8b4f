/*
 * prim/unix.c - the operating-system contract of prim.h on Linux and other
 * POSIX systems: anonymous private mappings, madvise(MADV_DONTNEED) to
 * decommit, and on Linux mremap to resize huge blocks without copying.
 *
 * Aligned mappings are made by mapping size + align bytes and unmapping the
 * misaligned head and the unused tail, so no address space is wasted.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mremap */
#endif
#include "prim.h"
#include "sanitize.h"

#include <stdint.h>
#include <sys/mman.h>
#ifdef __linux__
#include <sys/auxv.h>
#endif
#include <time.h>

#include "common.h"

/* Test builds may make any call fail as the system would (prim/fault.c). */
#ifdef MPOOL_FAULT_INJECTION
#define FAULT(call) prim_fault_hit(call)
#else
#define FAULT(call) false
#endif

/* A range of address space (size + align), then trimmed to the aligned part. */
static void *map_trimmed(size_t size, size_t align, size_t offset, int prot)
{
    if (size > SIZE_MAX - align)
        return NULL;
    size_t span = size + align;
    char *raw = mmap(NULL, span, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t want = (((uintptr_t)raw + offset + align - 1) & ~(uintptr_t)(align - 1)) - offset;
    if (want < (uintptr_t)raw)
        want += align;
    char *base = (char *)want;
    size_t head = (size_t)(base - raw);
    size_t tail = span - head - size;
    /* A refused trim would leave address space that nothing ever unmaps:
     * give back what is still mapped and report the refusal instead. */
    if (head && munmap(raw, head) != 0) {
        munmap(raw, span);
        return NULL;
    }
    if (tail && munmap(base + size, tail) != 0) {
        munmap(base, size + tail);
        return NULL;
    }
    return base;
}

void *prim_map(size_t size, size_t align, size_t offset)
{
    mpool_assert(is_pow2(align) && align >= PAGE_SIZE, "prim_map: alignment is a power of two >= page");
    mpool_assert(size % PAGE_SIZE == 0 && offset % PAGE_SIZE == 0, "prim_map: whole pages");
    if (FAULT(PRIM_MAP))
        return NULL;
    if (align == PAGE_SIZE) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    void *p = map_trimmed(size, align, offset, PROT_READ | PROT_WRITE);
    return p;
}

bool prim_unmap(void *addr, size_t size)
{
    san_asan_unpoison(addr, size); /* a later mapping here must not inherit a pool's poisoning */
    if (size == 0)
        return true;
    if (FAULT(PRIM_UNMAP))
        return false;
    return munmap(addr, size) == 0;
}

bool prim_decommit(void *addr, size_t size)
{
    if (size == 0)
        return true;
    if (FAULT(PRIM_DECOMMIT))
        return false;
    return madvise(addr, size, MADV_DONTNEED) == 0;
}

bool prim_advise_huge(void *addr, size_t size, bool on)
{
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
    return size != 0 && madvise(addr, size, on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) == 0;
#else
    (void)addr;
    (void)size;
    (void)on;
    return false;
#endif
}

bool prim_resident(const void *addr, size_t npages, unsigned char *vec)
{
    return npages == 0 || mincore((void *)addr, npages * PAGE_SIZE, vec) == 0;
}

bool prim_protect(void *addr, size_t size, bool accessible)
{
    if (size == 0)
        return true;
    return mprotect(addr, size, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
}

void *prim_remap(void *addr, size_t old_size, size_t new_size, size_t align, size_t offset)
{
    if (FAULT(PRIM_REMAP))
        return NULL;
#ifdef MREMAP_FIXED
    if (new_size <= old_size) {
        if (new_size < old_size && munmap((char *)addr + new_size, old_size - new_size) != 0)
            return NULL; /* splitting the mapping was refused; it is unchanged */
        return addr;
    }
    void *p = mremap(addr, old_size, new_size, 0);
    if (p != MAP_FAILED)
        return p;
    /* Reserve an aligned range, then move the pages into it. */
    void *dest = map_trimmed(new_size, align, offset, PROT_NONE);
    if (!dest)
        return NULL;
    p = mremap(addr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
    if (p == MAP_FAILED) {
        munmap(dest, new_size);
        return NULL;
    }
    return p;
#else
    (void)addr; (void)old_size; (void)new_size; (void)align; (void)offset;
    return NULL; /* the caller copies instead */
#endif
}

uint32_t prim_clock_ms(void)
{
    struct timespec ts = {0, 0};
#ifdef CLOCK_MONOTONIC_COARSE
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0)
        return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
#endif
    /* Without a coarse clock, or if the kernel refuses it.  CLOCK_MONOTONIC
     * is always there on POSIX systems that have clock_gettime; were it
     * refused too, time stands still at 0 and dirty runs age only at trim. */
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

uint64_t prim_clock_ns(void)
{
    struct timespec ts = {0, 0};
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const unsigned char *prim_random_bytes(void)
{
#if defined(__linux__) && defined(AT_RANDOM)
    return (const unsigned char *)(uintptr_t)getauxval(AT_RANDOM);
#else
    return NULL;
#endif
}
