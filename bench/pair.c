/*
 * pair.c - N alloc+free pairs of one size on one pool that is not thread
 * safe: the loop whose instructions per pair measure the fast paths
 * (scripts/instr-per-pair.sh counts them under callgrind).
 *
 *   pair N [SIZE]     (SIZE defaults to 16)
 */
#include <stdio.h>
#include <stdlib.h>

#include <mpool.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s N [SIZE]\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    size_t size = argc > 2 ? (size_t)atol(argv[2]) : 16;
    mpool_config_t config = mpool_config_default();
    config.thread_safe = false;
    mpool_t *pool = mpool_create(&config);
    if (!pool)
        return 1;
    for (long i = 0; i < n; i++) {
        void *p = mpool_alloc(pool, size);
        __asm__ volatile("" : : "r"(p) : "memory"); /* keep the pair from being optimised away */
        mpool_free(pool, p);
    }
    size_t problems = mpool_check(pool);
    mpool_destroy(pool);
    return problems != 0;
}
