/*
 * basic.c - the smallest complete use of mpool: create a pool, allocate two
 * blocks, free them, look at the pool's usage, destroy the pool.
 */
#include <stdio.h>
#include <stdlib.h>

#include <mpool.h>

static void print_usage(const char *when, const mpool_t *pool)
{
    mpool_usage_t u = mpool_get_usage(pool);
    printf("  usage %-15s total %9zu B, used %7zu B, free %9zu B (%.2f%% used)\n",
           when, u.total, u.used, u.free, u.usage_percent);
}

int main(void)
{
    mpool_config_t config = mpool_config_default();
    config.initial_size = 1024 * 1024; /* 1 MiB */
    config.thread_safe = true;
    config.growth_factor = 2.0;

    printf("mpool %d.%d.%d basic example\n", MPOOL_VERSION_MAJOR, MPOOL_VERSION_MINOR,
           MPOOL_VERSION_PATCH);

    mpool_t *pool = mpool_create(&config);
    if (!pool) {
        fprintf(stderr, "mpool_create failed: %s\n", mpool_strerror(mpool_last_error()));
        return EXIT_FAILURE;
    }
    printf("created a pool: initial size 1 MiB, thread-safe, growth factor 2.0\n");
    print_usage("after create:", pool);

    char *small = mpool_alloc(pool, 100);
    char *large = mpool_alloc(pool, 1024);
    if (!small || !large) {
        fprintf(stderr, "mpool_alloc failed: %s\n", mpool_strerror(mpool_last_error()));
        mpool_destroy(pool);
        return EXIT_FAILURE;
    }
    /* Touch every byte we asked for. */
    for (size_t i = 0; i < 100; i++)
        small[i] = (char)i;
    for (size_t i = 0; i < 1024; i++)
        large[i] = (char)(i >> 2);

    printf("allocated  100 B at %p (usable %zu B)\n", (void *)small, mpool_usable_size(pool, small));
    printf("allocated 1024 B at %p (usable %zu B)\n", (void *)large, mpool_usable_size(pool, large));
    print_usage("with 2 blocks:", pool);

    mpool_free(pool, small);
    mpool_free(pool, large);
    printf("freed both blocks\n");
    print_usage("after free:", pool);

    size_t problems = mpool_check(pool);
    printf("mpool_check: %zu problem(s)\n", problems);

    mpool_destroy(pool);
    printf("destroyed the pool\n");
    return problems == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
