/*
 * prim.h - the contract with the operating system.  The only layer that maps,
 * decommits, remaps and unmaps memory; nothing else in the library calls mmap.
 * One implementation per platform lives in prim/ (prim/unix.c: Linux, POSIX).
 *
 * Every function works on whole pages of the system and reports failure by
 * its return value; none of them prints or sets the library's error state.
 */
#ifndef MPOOL_PRIM_H
#define MPOOL_PRIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Maps `size` bytes, readable, writable and zero-filled, at an address base
 * such that (base + offset) is a multiple of `align` (a power of two, at least
 * a system page).  NULL if the system refuses. */
void *prim_map(size_t size, size_t align, size_t offset);

/* Returns a mapping (or a page-aligned part of one) to the system. */
void prim_unmap(void *addr, size_t size);

/* The pages keep their addresses but lose their contents: the system may take
 * the memory back, and the next touch sees zeros.  Returns false on failure. */
bool prim_decommit(void *addr, size_t size);

/* Resizes a mapping made by prim_map without copying its pages.  The result
 * keeps the alignment rule of prim_map (align, offset); it is `addr` itself
 * when the mapping could change size in place.  NULL on failure, and the old
 * mapping is then unchanged. */
void *prim_remap(void *addr, size_t old_size, size_t new_size, size_t align, size_t offset);

/* A coarse monotonic clock in milliseconds (wraps after 49 days: compare
 * with unsigned subtraction).  Cheap: no system call where the system has a
 * coarse clock in user space. */
uint32_t prim_clock_ms(void);

#endif /* MPOOL_PRIM_H */
