/*
 * test_prim.c - the operating-system layer (prim.h) and how every caller
 * handles a refusal.  The tests link the OS layer built with fault injection
 * (prim/fault.c), so a map, unmap, decommit or remap can be made to fail as
 * Linux does: madvise(MADV_DONTNEED) on locked pages, an munmap or mremap
 * that would split a mapping past vm.max_map_count, mmap out of memory.
 *
 * What must hold: a page is recorded clean only when the system confirmed it
 * (mpool_calloc then never hands out old bytes, after mpool_reset, mpool_trim
 * or the decay of dirty runs, for slab, large and huge blocks); memory is
 * counted as returned only when it was; a refused call loses no live block
 * and leaves mpool_check at 0.  One test repeats the first case without
 * injection, in a process that locks its memory with mlockall.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <mpool.h>

#include "huge.h"
#include "pool.h"
#include "prim.h"
#include "testutil.h"

static void disarm(void) { prim_fault_disarm(); }

TestSuite(prim, .fini = disarm);

static mpool_t *make_pool(void)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.on_error = MPOOL_ON_ERROR_RETURN;
    return create_or_die(&cfg);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- calloc after reset, trim and decay, with decommit refused ----------- */

enum event { AFTER_RESET, AFTER_TRIM, AFTER_DECAY };

struct kind {
    const char *name;
    size_t size;   /* block size */
    size_t count;  /* blocks: enough that freeing them passes the decay threshold */
};

static const struct kind SLAB = {"slab", 64, 32768};          /* 2 MiB of 64 B blocks */
static const struct kind LARGE = {"large", 300000, 24};       /* 7.2 MB: past the 2 MiB large cache */
static const struct kind HUGE = {"huge", 3 * MiB, 3};         /* above max_block_size (1 MiB) */

static bool in_old_set(void *const *old, size_t n, const void *p)
{
    for (size_t i = 0; i < n; i++)
        if (old[i] == p)
            return true;
    return false;
}

/* Allocates k.count blocks filled with 0xAA, lets the event happen with every
 * decommit refused, then checks that mpool_calloc gives zeros everywhere. */
static void calloc_is_zero_after(const struct kind k, enum event ev)
{
    mpool_t *pool = make_pool();
    void **blocks = calloc(k.count, sizeof *blocks);
    void **old = calloc(k.count, sizeof *old);
    cr_assert(blocks && old);
    for (size_t i = 0; i < k.count; i++) {
        blocks[i] = mpool_alloc(pool, k.size);
        cr_assert_not_null(blocks[i], "%s block %zu", k.name, i);
        memset(blocks[i], 0xAA, k.size);
        old[i] = blocks[i];
    }
    prim_fault_arm(PRIM_DECOMMIT, 1, SIZE_MAX);
    switch (ev) {
    case AFTER_RESET:
        mpool_reset(pool);
        cr_assert_gt(prim_fault_calls(PRIM_DECOMMIT), 0, "reset decommitted nothing");
        break;
    case AFTER_TRIM:
        for (size_t i = 0; i + 1 < k.count; i++) /* the last keeps its region mapped */
            mpool_free(pool, blocks[i]);
        mpool_trim(pool);
        if (k.size < 1 * MiB) { /* slab and large: the freed runs stayed in the pool, dirty */
            cr_assert_gt(prim_fault_calls(PRIM_DECOMMIT), 0, "trim decommitted nothing");
            cr_assert_gt(pool->buddy.dirty_pages, 0, "refused pages were recorded clean");
        }
        break;
    case AFTER_DECAY:
        for (size_t i = 0; i + 1 < k.count; i++)
            mpool_free(pool, blocks[i]);
        if (k.size < 1 * MiB)
            cr_assert_gt(pool->buddy.dirty_pages, pool->buddy.purge_threshold,
                         "the test frees too little to start the decay");
        sleep_ms(150); /* older than the decay age (100 ms) */
        for (int round = 0; round < 2; round++) { /* page-allocator activity runs the decay */
            void *t = mpool_alloc(pool, 480 * KiB);
            cr_assert_not_null(t);
            mpool_free(pool, t);
            sleep_ms(15);
        }
        if (k.size < 1 * MiB) {
            cr_assert_gt(prim_fault_calls(PRIM_DECOMMIT), 0, "the decay decommitted nothing");
            cr_assert_gt(pool->buddy.dirty_pages, pool->buddy.purge_threshold,
                         "refused pages were recorded clean");
        }
        break;
    }
    size_t reused = 0, again = ev == AFTER_RESET ? k.count : k.count - 1;
    for (size_t i = 0; i < again; i++) {
        unsigned char *p = mpool_calloc(pool, 1, k.size);
        cr_assert_not_null(p, "%s calloc %zu", k.name, i);
        cr_assert(bytes_all_zero(p, k.size), "%s calloc %zu (%p) holds old bytes", k.name, i, (void *)p);
        reused += in_old_set(old, k.count, p);
        blocks[i] = p;
    }
    if (k.size < 1 * MiB) /* huge blocks are new mappings; the others must test reuse */
        cr_assert_gt(reused, 0, "no %s block was reused: the test shows nothing", k.name);
    cr_assert_eq(mpool_check(pool), 0);
    prim_fault_disarm();
    free(blocks);
    free(old);
    mpool_destroy(pool);
}

Test(prim, calloc_after_reset_slab) { calloc_is_zero_after(SLAB, AFTER_RESET); }
Test(prim, calloc_after_reset_large) { calloc_is_zero_after(LARGE, AFTER_RESET); }
Test(prim, calloc_after_reset_huge) { calloc_is_zero_after(HUGE, AFTER_RESET); }
Test(prim, calloc_after_trim_slab) { calloc_is_zero_after(SLAB, AFTER_TRIM); }
Test(prim, calloc_after_trim_large) { calloc_is_zero_after(LARGE, AFTER_TRIM); }
Test(prim, calloc_after_trim_huge) { calloc_is_zero_after(HUGE, AFTER_TRIM); }
Test(prim, calloc_after_decay_slab) { calloc_is_zero_after(SLAB, AFTER_DECAY); }
Test(prim, calloc_after_decay_large) { calloc_is_zero_after(LARGE, AFTER_DECAY); }
Test(prim, calloc_after_decay_huge) { calloc_is_zero_after(HUGE, AFTER_DECAY); }

/* The case of the bug report, without injection: a process that locks its
 * pages (real-time programs do) has madvise(MADV_DONTNEED) refused.  (100000
 * bytes is a medium slab block now; the page-run case is the _large tests.) */
Test(prim, calloc_after_reset_under_mlockall)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || (rl.rlim_cur != RLIM_INFINITY && geteuid() != 0))
        cr_skip_test("mlockall needs CAP_IPC_LOCK or an unlimited RLIMIT_MEMLOCK here");
    mpool_t *pool = make_pool();
#ifdef MCL_ONFAULT
    int flags = MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT;
#else
    int flags = MCL_CURRENT | MCL_FUTURE;
#endif
    if (mlockall(flags) != 0)
        cr_skip_test("mlockall refused: %s", strerror(errno));
    unsigned char *a = mpool_alloc(pool, 100000);
    cr_assert_not_null(a);
    memset(a, 0xAA, 100000);
    mpool_reset(pool);
    unsigned char *b = mpool_calloc(pool, 1, 100000);
    munlockall();
    cr_assert_not_null(b);
    cr_assert(bytes_all_zero(b, 100000), "calloc after reset returned old bytes at %p (a was %p)",
              (void *)b, (void *)a);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* ---- Unmap refused ------------------------------------------------------- */

/* A region whose unmapping is refused stays in the pool, usable; trim counts
 * only what the system took back. */
Test(prim, region_unmap_refused_keeps_the_region)
{
    mpool_t *pool = make_pool();
    void *p = mpool_alloc(pool, 900 * KiB); /* page runs: grow the pool past its first region */
    void *q = mpool_alloc(pool, 900 * KiB);
    void *r = mpool_alloc(pool, 900 * KiB);
    cr_assert(p && q && r);
    memset(q, 0x5A, 900 * KiB);
    mpool_free(pool, p);
    mpool_free(pool, r);
    size_t total = mpool_get_usage(pool).total;
    prim_fault_arm(PRIM_UNMAP, 1, SIZE_MAX);
    prim_fault_arm(PRIM_DECOMMIT, 1, SIZE_MAX);
    size_t released = mpool_trim(pool);
    cr_assert_gt(prim_fault_calls(PRIM_UNMAP), 0, "trim unmapped no region: the test shows nothing");
    cr_assert_eq(released, 0, "trim reported %zu bytes the system refused", released);
    cr_assert_eq(mpool_get_usage(pool).total, total, "a region the system kept left the count");
    cr_assert_eq(mpool_check(pool), 0);
    /* The kept region serves blocks again, and they are zeroed by calloc. */
    void *again[3];
    for (int i = 0; i < 3; i++) {
        again[i] = mpool_calloc(pool, 1, 900 * KiB);
        cr_assert_not_null(again[i]);
        cr_assert(bytes_all_zero(again[i], 900 * KiB));
    }
    for (size_t i = 0; i < 900 * KiB; i++)
        cr_assert_eq(((unsigned char *)q)[i], 0x5A, "live block changed at %zu", i);
    for (int i = 0; i < 3; i++)
        mpool_free(pool, again[i]);
    prim_fault_disarm();
    cr_assert_gt(mpool_trim(pool), 0, "nothing released once the system agrees");
    cr_assert_lt(mpool_get_usage(pool).total, total);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* A freed huge block whose unmapping is refused (when its mapping leaves the
 * cache, huge.h) is no block any more, stays charged, and is unmapped by the
 * next trim the system allows. */
Test(prim, huge_unmap_refused_is_retried_by_trim)
{
    mpool_t *pool = make_pool();
    unsigned char *h = mpool_alloc(pool, 3 * MiB);
    cr_assert_not_null(h);
    memset(h, 0xAA, 3 * MiB);
    size_t total = mpool_get_usage(pool).total;
    mpool_free(pool, h); /* its mapping waits in the cache */
    prim_fault_arm(PRIM_UNMAP, 1, SIZE_MAX);
    cr_assert_eq(huge_cache_flush(pool), 0, "a refused unmapping was counted as released");
    cr_assert_eq(prim_fault_calls(PRIM_UNMAP), 1);
    cr_assert_not(mpool_owns(pool, h), "a freed huge block is still owned");
    cr_assert_not(mpool_safe_free(pool, h), "a freed huge block was freed twice");
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    cr_assert_eq(mpool_get_usage(pool).total, total, "the kept mapping left the count");
    cr_assert_eq(mpool_get_usage(pool).used, 0);
    cr_assert_eq(mpool_check(pool), 0);
    unsigned char *z = mpool_calloc(pool, 1, 3 * MiB);
    cr_assert_not_null(z);
    cr_assert(bytes_all_zero(z, 3 * MiB));
    size_t released = mpool_trim(pool);
    cr_assert_eq(released, 0, "trim counted %zu bytes the system refused", released);
    prim_fault_disarm();
    cr_assert_geq(mpool_trim(pool), 3 * MiB, "the stuck block was not unmapped");
    cr_assert_eq(pool->huge.stuck, NULL);
    mpool_free(pool, z);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* ---- Remap refused ------------------------------------------------------- */

/* Shrinking a huge block when the system refuses: the block stays as it is
 * and still serves the request. */
Test(prim, huge_shrink_refused_keeps_the_block)
{
    mpool_t *pool = make_pool();
    pattern_init();
    void *h = mpool_alloc(pool, 8 * MiB);
    cr_assert_not_null(h);
    pattern_fill(h, 1, 8 * MiB);
    prim_fault_arm(PRIM_REMAP, 1, SIZE_MAX);
    void *s = mpool_realloc(pool, h, 5 * MiB);
    cr_assert_eq(prim_fault_calls(PRIM_REMAP), 1);
    cr_assert_eq(s, h, "a refused shrink moved or failed");
    cr_assert_geq(mpool_usable_size(pool, s), 5 * MiB);
    cr_assert(pattern_ok(s, 1, 5 * MiB));
    cr_assert_eq(mpool_check(pool), 0);
    mpool_free(pool, s);
    mpool_destroy(pool);
}

/* Growing a huge block when moving its pages is refused: realloc copies. */
Test(prim, huge_grow_refused_copies)
{
    mpool_t *pool = make_pool();
    pattern_init();
    void *h = mpool_alloc(pool, 4 * MiB);
    cr_assert_not_null(h);
    pattern_fill(h, 2, 4 * MiB);
    prim_fault_arm(PRIM_REMAP, 1, SIZE_MAX);
    void *g = mpool_realloc(pool, h, 12 * MiB);
    cr_assert_eq(prim_fault_calls(PRIM_REMAP), 1);
    cr_assert_not_null(g, "realloc failed instead of copying: %s", mpool_strerror(mpool_last_error()));
    cr_assert_geq(mpool_usable_size(pool, g), 12 * MiB);
    cr_assert(pattern_ok(g, 2, 4 * MiB), "contents lost by the copy");
    cr_assert_eq(mpool_check(pool), 0);
    mpool_free(pool, g);
    mpool_destroy(pool);
}

/* ---- Map refused --------------------------------------------------------- */

/* With every map refused, each kind of request fails with OUT_OF_MEMORY and
 * changes nothing; the pool works again once the system gives memory. */
Test(prim, map_refused_fails_cleanly_and_recovers)
{
    mpool_t *pool = make_pool();
    pattern_init();
    void *live = mpool_alloc(pool, 200);
    cr_assert_not_null(live);
    pattern_fill(live, 3, 200);
    /* Fill the reserved first region so that the next large block must grow the pool. */
    void *big[8];
    size_t nbig = 0;
    while (nbig < 8 && mpool_get_usage(pool).free >= 512 * KiB)
        cr_assert_not_null(big[nbig++] = mpool_alloc(pool, 256 * KiB));
    prim_fault_arm(PRIM_MAP, 1, SIZE_MAX);
    static const size_t sizes[] = {2 * MiB, 4 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        prime_error(MPOOL_ERR_OUT_OF_MEMORY);
        cr_assert_null(mpool_alloc(pool, sizes[i]), "size %zu served without memory", sizes[i]);
        cr_assert_eq(mpool_last_error(), MPOOL_ERR_OUT_OF_MEMORY);
        cr_assert_eq(errno, ENOMEM);
    }
    cr_assert_gt(prim_fault_calls(PRIM_MAP), 0);
    prime_error(MPOOL_ERR_OUT_OF_MEMORY);
    cr_assert_null(mpool_create(NULL), "a pool was created without memory");
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_OUT_OF_MEMORY);
    cr_assert(pattern_ok(live, 3, 200), "a live block changed");
    cr_assert_eq(mpool_check(pool), 0);
    prim_fault_disarm();
    void *ok = mpool_alloc(pool, 4 * MiB);
    cr_assert_not_null(ok, "the pool did not recover");
    mpool_free(pool, ok);
    for (size_t i = 0; i < nbig; i++)
        mpool_free(pool, big[i]);
    mpool_free(pool, live);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* The hook itself: the window counts calls and fails exactly the asked ones. */
Test(prim, fault_window_fails_the_nth_calls)
{
    prim_fault_arm(PRIM_DECOMMIT, 2, 2);
    void *m = prim_map(PAGE_SIZE, PAGE_SIZE, 0);
    cr_assert_not_null(m);
    bool got[5];
    for (int i = 0; i < 5; i++)
        got[i] = prim_decommit(m, PAGE_SIZE);
    cr_assert(got[0] && !got[1] && !got[2] && got[3] && got[4]);
    cr_assert_eq(prim_fault_calls(PRIM_DECOMMIT), 5);
    prim_fault_disarm();
    cr_assert(prim_unmap(m, PAGE_SIZE));
}
