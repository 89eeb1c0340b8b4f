/*
 * misuse.h - what the programs of tests/misuse/ share.  Each program commits
 * one kind of heap misuse on a block of the size given as its argument (8,
 * 4096 and 262144: a small, a medium and a large block), through whatever
 * malloc the process has (run.py preloads libmpool-malloc.so), then prints
 * "survived" and exits 0 if nothing stopped it.  run.py knows which report
 * each must give.
 */
#ifndef MISUSE_H
#define MISUSE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The compiler must not see through the misuse (it may drop a store to
 * freed memory, or a double free, as undefined behaviour). */
static inline void *opaque(void *p)
{
    __asm__ volatile("" : "+r"(p) : : "memory");
    return p;
}

static inline size_t size_arg(int argc, char **argv)
{
    return argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 8;
}

/* Warms the size's class up so the misuse happens on the common path. */
static inline void warm(size_t size)
{
    void *w[64];
    for (int i = 0; i < 64; i++)
        w[i] = malloc(size);
    for (int i = 0; i < 64; i++)
        free(w[i]);
}

static inline int survived(void)
{
    puts("survived");
    fflush(stdout);
    return 0;
}

#endif
