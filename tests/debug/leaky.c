/*
 * tests/debug/leaky.c - a plain C program (not linked with mpool) that
 * leaks three kinds of blocks, for the test of MPOOL_LEAK_REPORT=1 under the
 * malloc replacement (test_debug.c): 3 blocks of 1000 bytes from
 * make_buffer, one of 77 from main.
 */
#include <stdlib.h>
#include <string.h>

static char *volatile keep[8];

__attribute__((noinline)) static char *make_buffer(size_t n)
{
    char *p = malloc(n);
    memset(p, 'x', n);
    return p;
}

int main(void)
{
    for (int i = 0; i < 3; i++)
        keep[i] = make_buffer(1000);
    keep[3] = malloc(77);
    free(malloc(5000)); /* freed: not a leak */
    return 0;
}
