/*
 * prim.h - the contract with the operating system.  The only layer that maps,
 * decommits, remaps and unmaps memory; nothing else in the library calls mmap.
 * One implementation per platform lives in prim/ (prim/unix.c: Linux, POSIX).
 *
 * Every function works on whole pages of the system and reports failure by
 * its return value; none of them prints or sets the library's error state.
 * Any call may fail, and callers record a change (memory returned, pages
 * clean, a mapping resized) only when the call confirmed it: Linux refuses
 * madvise(MADV_DONTNEED) on locked pages (mlockall), and refuses an munmap or
 * mremap that would split a mapping once vm.max_map_count is reached.
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

/* Returns a mapping (or a page-aligned part of one) to the system.  False if
 * the system refused: the pages are then still mapped, contents unchanged. */
bool prim_unmap(void *addr, size_t size);

/* The pages keep their addresses but lose their contents: the system may take
 * the memory back, and the next touch sees zeros.  Returns false on failure:
 * the pages may then still hold their old contents. */
bool prim_decommit(void *addr, size_t size);

/* A hint that [addr, addr + size), which the caller will fill whole, is
 * better backed by huge pages (on: Linux madvise(MADV_HUGEPAGE), which
 * matters when transparent huge pages are "madvise" only: one fault instead
 * of 512 per 2 MiB), or, once the caller gives the range back, that it is
 * not (off: MADV_NOHUGEPAGE, so that a later user touching one page of it
 * does not get 2 MiB).  False if the system refused or has no such thing;
 * nothing may depend on it. */
bool prim_advise_huge(void *addr, size_t size, bool on);

/* Which of the npages pages from addr (page aligned) are resident: bit 0 of
 * vec[i] is set for page i.  False if the system cannot tell (vec is then
 * undefined). */
bool prim_resident(const void *addr, size_t npages, unsigned char *vec);

/* Resizes a mapping made by prim_map without copying its pages.  The result
 * keeps the alignment rule of prim_map (align, offset); it is `addr` itself
 * when the mapping could change size in place.  NULL on failure, and the old
 * mapping is then unchanged. */
void *prim_remap(void *addr, size_t old_size, size_t new_size, size_t align, size_t offset);

/* Makes whole pages of a mapping inaccessible (any read or write faults:
 * zero-size blocks, debug mode's guard pages and quarantined large blocks) or
 * readable and writable again.  False if the system refused: the protection
 * is then unchanged. */
bool prim_protect(void *addr, size_t size, bool accessible);

/* A coarse monotonic clock in milliseconds (wraps after 49 days: compare
 * with unsigned subtraction).  Cheap: no system call where the system has a
 * coarse clock in user space. */
uint32_t prim_clock_ms(void);

/* CLOCK_MONOTONIC in nanoseconds (statistics: uptime and timings); 0 if refused. */
uint64_t prim_clock_ns(void);

/* 16 random bytes the system gave the process at start (Linux: AT_RANDOM),
 * or NULL where there are none.  For secrets that must not be guessed. */
const unsigned char *prim_random_bytes(void);

#ifdef MPOOL_FAULT_INJECTION
/* Fault injection, compiled only into the test library (CMake target
 * mpool_testlib, prim/fault.c): each kind of call can be made to fail as the
 * system would, to test the paths that handle a refusal. */
enum prim_call { PRIM_MAP, PRIM_UNMAP, PRIM_DECOMMIT, PRIM_REMAP, PRIM_CALL_KINDS };

/* From the nth call of `call` on (1: the next one), `count` calls fail
 * (SIZE_MAX: every one); also restarts the count of prim_fault_calls. */
void prim_fault_arm(enum prim_call call, size_t nth, size_t count);

/* No call fails any more (every kind). */
void prim_fault_disarm(void);

/* Calls of `call` made since it was last armed (or since the start). */
size_t prim_fault_calls(enum prim_call call);

/* Counts a call of `call`; true if it must fail (prim/unix.c asks). */
bool prim_fault_hit(enum prim_call call);
#endif

#endif /* MPOOL_PRIM_H */
