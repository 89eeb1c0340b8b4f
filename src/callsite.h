/*
 * callsite.h - call sites of debug mode: capturing the return addresses of
 * an allocation or a free, telling the library's own frames from the
 * program's, and naming them (dladdr; file and line through addr2line).
 * callsite.c states the rules.
 */
#ifndef MPOOL_CALLSITE_H
#define MPOOL_CALLSITE_H

#include <stdbool.h>
#include <stddef.h>

#include "common.h"

#define CALLSITE_TEXT 200 /* room for one named frame: "function (file.c:12)" */

/* Fills out[0..n) with the return addresses of the calling stack, dropping
 * callsite_capture's own frame and `skip` more (the debug layer's), and
 * zeros past the last one; returns how many it stored.  Stores nothing
 * while this thread is already capturing (backtrace may allocate the first
 * time: the allocation it makes gets no call sites). */
size_t callsite_capture(void **out, size_t n, unsigned skip) mpool_internal mpool_noinline;

/* Opens libunwind for the fast capture if `fast` (the process option
 * fast_unwind, MPOOL_FAST_UNWIND) and the system has it; once, and never
 * from inside an allocation (callsite.c). */
void callsite_prepare(bool fast) mpool_internal;

/* True while this thread is inside callsite_prepare's dlopen: the blocks
 * allocated then are mpool's own (not leaks of the program). */
bool callsite_own_allocation(void) mpool_internal;

/* True if frame addr (with its function name, NULL if unknown) is inside
 * mpool or the malloc family it serves (not the program's call site). */
bool callsite_internal(const void *addr, const char *function) mpool_internal;

/* Writes the program's first frame of frames[0..n) into buf as "name+0xoff
 * (object)", found with dladdr; when dladdr cannot name the frames (a
 * program linked statically with mpool), up to three frames separated by
 * " < ".  "unknown" if there is none.  Never allocates. */
void callsite_format(char *buf, size_t len, void *const *frames, size_t n) mpool_internal;

/* One frame named for a report: function and "file:line" (addr2line, run as
 * a child process, when the object has debug information), or what dladdr
 * knows. */
struct callsite_name {
    const void *addr;
    const void *object; /* set by callsite_name_all: the base of its object (dladdr) */
    const void *key;    /* free for the caller (leak.c: one address per distinct name) */
    bool internal;
    char function[CALLSITE_TEXT];
    char where[CALLSITE_TEXT]; /* "file.c:12", or "object+0xoff" */
};

/* Names names[i].addr for i < n (addr2line once per object and batch of
 * addresses; no pool lock may be held: the child is started with fork).
 * Allocates nothing from any pool. */
void callsite_name_all(struct callsite_name *names, size_t n) mpool_internal;

#endif /* MPOOL_CALLSITE_H */
