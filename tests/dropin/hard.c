/*
 * dropin/hard.c - situations that are hard on an allocator, under LD_PRELOAD
 * of libmpool-malloc.so (run by test_dropin; see helper.h for the protocol).
 *
 *   hard lifecycle   allocation in a constructor before main, in an atexit
 *                    handler and in a destructor after exit starts (prints
 *                    "ATEXIT-OK" and "DESTRUCTOR-OK" from there)
 *   hard dlopen      a library whose constructor allocates, loaded with dlopen
 *                    (also from threads); dlsym and dlerror
 *   hard threads N   N threads (in batches) that allocate and free, detached
 *                    threads, and thread-specific data with a destructor
 *   hard fork N      N forks while threads hammer malloc/free; every child
 *                    allocates and frees before _exit
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helper.h"

#ifndef PLUGIN_PATH
#error "PLUGIN_PATH (the path of the plugin library) must be defined"
#endif

/* ---- lifecycle ---------------------------------------------------------- */

static void *ctor_block;
static int ctor_ok = -1;

/* Runs before main (and before most of libc's own start-up allocations). */
__attribute__((constructor(101))) static void early_constructor(void)
{
    void *tmp[16];
    int ok = 1;
    for (int i = 0; i < 16; i++) {
        tmp[i] = malloc((size_t)1 << i);
        ok &= tmp[i] != NULL && owned(tmp[i]);
    }
    for (int i = 0; i < 16; i += 2)
        free(tmp[i]);
    for (int i = 1; i < 16; i += 2)
        free(tmp[i]);
    ctor_block = malloc(1000);
    if (ctor_block)
        pattern_fill(ctor_block, 1000, 42);
    ctor_ok = ok && ctor_block && owned(ctor_block);
}

static int lifecycle_active;

static void at_exit_handler(void)
{
    /* exit() has started: stdio may be flushed; allocate anyway. */
    void *blocks[100];
    for (int i = 0; i < 100; i++) {
        blocks[i] = malloc((size_t)i * 1000 + 1);
        if (!blocks[i] || !owned(blocks[i])) {
            helper_say(2, "FAIL atexit: malloc(%d) = %p not owned", i * 1000 + 1, blocks[i]);
            _exit(1);
        }
    }
    void *big = realloc(blocks[5], 3 << 20);
    if (!big || !owned(big)) {
        helper_say(2, "FAIL atexit: realloc to 3 MiB = %p", big);
        _exit(1);
    }
    blocks[5] = big;
    for (int i = 0; i < 100; i++)
        free(blocks[i]);
    helper_say(1, "ATEXIT-OK");
}

__attribute__((destructor(101))) static void late_destructor(void)
{
    if (!lifecycle_active)
        return;
    char *s = malloc(4000);
    if (!s || !owned(s)) {
        helper_say(2, "FAIL destructor: malloc = %p not owned", (void *)s);
        _exit(1);
    }
    snprintf(s, 4000, "destructor %d", 1);
    char *t = strdup(s);
    if (!t || !owned(t) || strcmp(t, "destructor 1") != 0) {
        helper_say(2, "FAIL destructor: strdup");
        _exit(1);
    }
    free(t);
    free(s);
    helper_say(1, "DESTRUCTOR-OK");
}

static int scenario_lifecycle(void)
{
    CHECK(ctor_ok == 1, "allocation in a constructor before main (ctor_ok %d)", ctor_ok);
    CHECK(pattern_check(ctor_block, 1000, 42) == 1000, "block from the constructor changed");
    free(ctor_block);
    lifecycle_active = 1;
    CHECK(atexit(at_exit_handler) == 0, "atexit");
    /* A stdio stream with a buffer to flush at exit. */
    printf("stdio buffered line\n");
    return 0;
}

/* ---- dlopen / dlsym / dlerror ------------------------------------------- */

typedef int (*result_fn)(void);
typedef char *(*strdup_fn)(const char *);

static void check_plugin_once(void)
{
    void *h = dlopen(PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL, "dlopen(%s): %s", PLUGIN_PATH, dlerror());
    result_fn result = (result_fn)(uintptr_t)dlsym(h, "plugin_result");
    CHECK(result != NULL, "dlsym(plugin_result): %s", dlerror());
    CHECK(result() == 1, "the plugin's constructor saw blocks not owned by mpool (%d)", result());
    strdup_fn dup = (strdup_fn)(uintptr_t)dlsym(h, "plugin_strdup");
    CHECK(dup != NULL, "dlsym(plugin_strdup)");
    char *s = dup("from the plugin");
    CHECK(s && owned(s) && !strcmp(s, "from the plugin"), "strdup in the plugin");
    free(s); /* freed outside the library that allocated it */
    /* dlerror: the message of a failed lookup (glibc allocates it). */
    dlerror();
    void *missing = dlsym(h, "no_such_symbol_anywhere");
    CHECK(missing == NULL, "dlsym of a missing symbol");
    const char *err = dlerror();
    CHECK(err != NULL && strstr(err, "no_such_symbol_anywhere"), "dlerror: %s", err ? err : "(null)");
    CHECK(dlerror() == NULL, "dlerror twice");
    CHECK(dlclose(h) == 0, "dlclose: %s", dlerror());
}

static void *dlopen_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        check_plugin_once();
    return NULL;
}

static int scenario_dlopen(void)
{
    for (int i = 0; i < 20; i++)
        check_plugin_once();
    void *h = dlopen("libno-such-library-mpool.so.7", RTLD_NOW);
    CHECK(h == NULL, "dlopen of a missing library");
    const char *err = dlerror();
    CHECK(err && strstr(err, "libno-such-library-mpool"), "dlerror after a failed dlopen: %s",
          err ? err : "(null)");
    /* A system library, with its own constructors and TLS. */
    h = dlopen("libm.so.6", RTLD_NOW);
    CHECK(h != NULL, "dlopen(libm.so.6): %s", dlerror());
    CHECK(dlsym(h, "cos") != NULL, "dlsym(cos)");
    dlclose(h);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, dlopen_thread, NULL) == 0, "pthread_create");
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    return 0;
}

/* ---- threads ------------------------------------------------------------ */

static pthread_key_t tsd_key;
static atomic_int tsd_destroyed;
static atomic_int thread_failures;
static atomic_int detached_done;
static __thread void *tls_block;   /* C thread-local storage pointing at a block */
static __thread char tls_array[256];

static void tsd_destructor(void *p)
{
    if (!owned(p))
        atomic_fetch_add(&thread_failures, 1);
    free(p);
    atomic_fetch_add(&tsd_destroyed, 1);
}

static void *worker(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15u + 1;
    void *blocks[16];
    int bad = 0;
    for (int i = 0; i < 16; i++) {
        size_t n = helper_size(&rng) % 70000;
        blocks[i] = malloc(n);
        bad |= !blocks[i] || !owned(blocks[i]);
        if (blocks[i])
            memset(blocks[i], i, n);
    }
    tls_block = calloc(1, 64);
    bad |= !tls_block || !owned(tls_block);
    snprintf(tls_array, sizeof tls_array, "thread %zu", (size_t)(uintptr_t)arg);
    void *tsd = malloc(128);
    bad |= !tsd || pthread_setspecific(tsd_key, tsd) != 0;
    for (int i = 15; i >= 0; i--)
        free(blocks[i]);
    free(tls_block);
    if (bad)
        atomic_fetch_add(&thread_failures, 1);
    return NULL;
}

static void *detached_worker(void *arg)
{
    worker(arg);
    atomic_fetch_add(&detached_done, 1);
    return NULL;
}

static int scenario_threads(int total)
{
    CHECK(pthread_key_create(&tsd_key, tsd_destructor) == 0, "pthread_key_create");
    enum { BATCH = 64 };
    pthread_t t[BATCH];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int started = 0;
    while (started < total) {
        int n = total - started < BATCH ? total - started : BATCH;
        for (int i = 0; i < n; i++) {
            int rc = pthread_create(&t[i], &attr, worker, (void *)(uintptr_t)(started + i));
            CHECK(rc == 0, "pthread_create #%d: %s", started + i, strerror(rc));
        }
        for (int i = 0; i < n; i++)
            CHECK(pthread_join(t[i], NULL) == 0, "pthread_join");
        started += n;
    }
    CHECK(atomic_load(&thread_failures) == 0, "%d threads saw failures", atomic_load(&thread_failures));
    CHECK(atomic_load(&tsd_destroyed) == total, "thread-specific destructors: %d of %d",
          atomic_load(&tsd_destroyed), total);

    /* Detached threads, a few at a time. */
    const int detached = 200;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < detached; i++) {
        pthread_t d;
        int rc;
        while ((rc = pthread_create(&d, &attr, detached_worker, (void *)(uintptr_t)(i + 100000))) == EAGAIN)
            usleep(1000);
        CHECK(rc == 0, "pthread_create (detached): %s", strerror(rc));
        if (i % 32 == 31)
            while (atomic_load(&detached_done) < i - 16)
                usleep(200);
    }
    for (int waited = 0; atomic_load(&detached_done) < detached && waited < 20000; waited++)
        usleep(1000);
    CHECK(atomic_load(&detached_done) == detached, "detached threads finished: %d of %d",
          atomic_load(&detached_done), detached);
    CHECK(atomic_load(&thread_failures) == 0, "%d detached threads saw failures",
          atomic_load(&thread_failures));
    pthread_attr_destroy(&attr);
    return 0;
}

/* ---- fork in a multi-threaded program ----------------------------------- */

static atomic_int stop_hammer;
static atomic_long hammer_rounds;

static void *hammer(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 7919 + 3;
    void *slots[64] = {0};
    while (!atomic_load_explicit(&stop_hammer, memory_order_relaxed)) {
        unsigned i = (unsigned)(helper_rand(&rng) % 64);
        free(slots[i]);
        size_t n = helper_size(&rng);
        slots[i] = (helper_rand(&rng) & 1) ? malloc(n) : calloc(1, n);
        if (!slots[i] || !owned(slots[i]))
            atomic_fetch_add(&thread_failures, 1);
        else
            memset(slots[i], 0x33, n < 256 ? n : 256);
        atomic_fetch_add_explicit(&hammer_rounds, 1, memory_order_relaxed);
    }
    for (int i = 0; i < 64; i++)
        free(slots[i]);
    return NULL;
}

/* The child: allocates every size range, with a thread too, then _exit. */
static void child_work(int k)
{
    void *blocks[8];
    static const size_t sz[8] = {16, 100, 1000, 5000, 70000, 300000, 2 << 20, 24};
    for (int i = 0; i < 8; i++) {
        blocks[i] = malloc(sz[i]);
        if (!blocks[i] || !owned(blocks[i]))
            _exit(10 + i);
        memset(blocks[i], k, sz[i]);
    }
    void *r = realloc(blocks[0], 50000);
    if (!r || !owned(r))
        _exit(20);
    blocks[0] = r;
    for (int i = 0; i < 8; i++)
        free(blocks[i]);
    if (k % 10 == 0) { /* a thread in the child */
        pthread_t t;
        if (pthread_create(&t, NULL, worker, (void *)(uintptr_t)k) != 0)
            _exit(30);
        pthread_join(t, NULL);
        if (atomic_load(&thread_failures))
            _exit(31);
    }
    _exit(0);
}

static int scenario_fork(int forks)
{
    CHECK(pthread_key_create(&tsd_key, tsd_destructor) == 0, "pthread_key_create");
    enum { HAMMERS = 4 };
    pthread_t t[HAMMERS];
    for (int i = 0; i < HAMMERS; i++)
        CHECK(pthread_create(&t[i], NULL, hammer, (void *)(uintptr_t)(i + 1)) == 0, "pthread_create");
    while (atomic_load(&hammer_rounds) < 1000)
        usleep(100);
    for (int k = 0; k < forks; k++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0)
            child_work(k);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status 0x%x", k, status);
        /* The parent allocates between forks too. */
        void *p = malloc((size_t)k * 1000 + 10);
        CHECK(p && owned(p), "parent malloc after fork %d", k);
        free(p);
    }
    atomic_store(&stop_hammer, 1);
    for (int i = 0; i < HAMMERS; i++)
        pthread_join(t[i], NULL);
    CHECK(atomic_load(&thread_failures) == 0, "hammer threads saw %d failures",
          atomic_load(&thread_failures));
    helper_say(1, "hammer rounds %ld", atomic_load(&hammer_rounds));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        HELPER_FAIL("usage: hard SCENARIO [N]");
    const char *s = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 0;
    int rc;
    if (!strcmp(s, "lifecycle"))
        rc = scenario_lifecycle();
    else if (!strcmp(s, "dlopen"))
        rc = scenario_dlopen();
    else if (!strcmp(s, "threads"))
        rc = scenario_threads(n);
    else if (!strcmp(s, "fork"))
        rc = scenario_fork(n);
    else
        HELPER_FAIL("unknown scenario %s", s);
    if (rc == 0)
        helper_say(1, "OK %s", s);
    return rc;
}
