/*
 * tests/debug/buggy.c - a small program with one heap bug in an mpool pool,
 * for the tests that run it under Valgrind (memcheck) and in the
 * AddressSanitizer build (test_debug.c):
 *
 *   buggy overflow [debug]   writes one byte past a 24-byte block
 *   buggy uaf [debug]        reads a 300 KiB block after freeing it
 *   buggy leak [debug]       loses a 100-byte block (never freed)
 *
 * "debug" creates the pool with enable_debug (under Valgrind every pool is
 * in debug mode anyway; under ASan only a debug pool poisons its canaries
 * and its quarantine).  The pool is never destroyed, so a leaked block stays
 * a leak when the program ends.
 */
#include <stdio.h>
#include <string.h>

#include <mpool.h>

static volatile char sink;

static char *leak_site(mpool_t *pool)
{
    char *p = mpool_alloc(pool, 100);
    memset(p, 1, 100);
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    mpool_config_t cfg = mpool_config_default();
    cfg.enable_debug = argc > 2 && strcmp(argv[2], "debug") == 0;
    cfg.on_error = MPOOL_ON_ERROR_LOG;
    mpool_t *pool = mpool_create(&cfg);
    if (!pool)
        return 3;
    if (strcmp(argv[1], "overflow") == 0) {
        char *p = mpool_alloc(pool, 24);
        p[24] = 'x';
        mpool_free(pool, p);
    } else if (strcmp(argv[1], "uaf") == 0) {
        char *p = mpool_alloc(pool, 300 << 10);
        memset(p, 2, 300 << 10);
        mpool_free(pool, p);
        sink = p[100];
    } else if (strcmp(argv[1], "leak") == 0) {
        char *p = leak_site(pool);
        p = NULL;
        (void)p;
    } else {
        return 2;
    }
    printf("buggy %s: done\n", argv[1]);
    return 0;
}
