/*
 * threads.c - one thread-safe pool shared by four threads.
 *
 * Each thread makes 1000 allocations of 16..271 bytes, fills every block,
 * frees a random live block about a third of the time, and frees the rest at
 * the end.  Afterwards the pool must be healthy (mpool_check) and empty.
 */
#define _POSIX_C_SOURCE 200809L /* rand_r */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpool.h>

enum { THREADS = 4, ALLOCS_PER_THREAD = 1000, MIN_SIZE = 16, SIZE_SPAN = 256 };

struct worker {
    mpool_t *pool;
    unsigned seed;
    int id;
    size_t allocs;  /* blocks allocated */
    size_t frees;   /* blocks freed */
    size_t bytes;   /* bytes asked for */
    size_t corrupt; /* blocks whose contents changed under us */
    size_t failed;  /* allocations that returned NULL */
};

struct block {
    unsigned char *ptr;
    size_t size;
};

/* Every byte of a block holds its owner's id and the block's size. */
static unsigned char fill_byte(const struct worker *w, size_t size)
{
    return (unsigned char)(w->id * 61 + (int)size);
}

static void release(struct worker *w, struct block *b)
{
    unsigned char want = fill_byte(w, b->size);
    for (size_t i = 0; i < b->size; i++) {
        if (b->ptr[i] != want) {
            w->corrupt++;
            break;
        }
    }
    mpool_free(w->pool, b->ptr);
    w->frees++;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct block *live = calloc(ALLOCS_PER_THREAD, sizeof *live);
    size_t nlive = 0;
    if (!live) {
        w->failed = ALLOCS_PER_THREAD;
        return NULL;
    }

    for (int i = 0; i < ALLOCS_PER_THREAD; i++) {
        size_t size = MIN_SIZE + (size_t)(rand_r(&w->seed) % SIZE_SPAN);
        unsigned char *p = mpool_alloc(w->pool, size);
        if (!p) {
            w->failed++;
            continue;
        }
        memset(p, fill_byte(w, size), size);
        live[nlive++] = (struct block){p, size};
        w->allocs++;
        w->bytes += size;

        if (rand_r(&w->seed) % 3 == 0) {
            size_t victim = (size_t)rand_r(&w->seed) % nlive;
            release(w, &live[victim]);
            live[victim] = live[--nlive];
        }
    }
    while (nlive > 0)
        release(w, &live[--nlive]);
    free(live);
    return NULL;
}

int main(void)
{
    mpool_config_t config = mpool_config_default();
    config.initial_size = 10 * 1024 * 1024; /* 10 MiB */
    config.thread_safe = true;

    mpool_t *pool = mpool_create(&config);
    if (!pool) {
        fprintf(stderr, "mpool_create failed: %s\n", mpool_strerror(mpool_last_error()));
        return EXIT_FAILURE;
    }
    printf("mpool threads example: %d threads x %d allocations of %d..%d B, one 10 MiB pool\n",
           THREADS, ALLOCS_PER_THREAD, MIN_SIZE, MIN_SIZE + SIZE_SPAN - 1);

    struct worker workers[THREADS];
    pthread_t threads[THREADS];
    int started = 0;
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (struct worker){.pool = pool, .seed = 12345u + 7919u * (unsigned)t, .id = t};
        int rc = pthread_create(&threads[t], NULL, work, &workers[t]);
        if (rc != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(rc));
            break;
        }
        started++;
    }
    for (int t = 0; t < started; t++)
        pthread_join(threads[t], NULL);

    size_t allocs = 0, frees = 0, bytes = 0, corrupt = 0, failed = 0;
    for (int t = 0; t < started; t++) {
        const struct worker *w = &workers[t];
        printf("  thread %d: %zu allocations (%zu B), %zu frees\n", t, w->allocs, w->bytes, w->frees);
        allocs += w->allocs;
        frees += w->frees;
        bytes += w->bytes;
        corrupt += w->corrupt;
        failed += w->failed;
    }

    mpool_usage_t u = mpool_get_usage(pool);
    size_t problems = mpool_check(pool);
    printf("total allocations: %zu (%zu B), frees: %zu, failed allocations: %zu, corrupted blocks: %zu\n",
           allocs, bytes, frees, failed, corrupt);
    printf("usage: total %zu B, used %zu B, free %zu B (%.2f%% used)\n", u.total, u.used, u.free,
           u.usage_percent);
    printf("mpool_check: %zu problem(s)\n", problems);
    mpool_destroy(pool);

    int ok = started == THREADS && failed == 0 && corrupt == 0 && allocs == frees && problems == 0 &&
             u.used == 0;
    printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
