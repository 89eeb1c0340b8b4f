/*
 * test_zero.c - zero-size blocks (zero.h, zero.c): mpool_alloc(pool, 0) and
 * calloc of no bytes give unique addresses that fault on any access and are
 * exact blocks to free, realloc, owns and usable_size; a freed one is an
 * invalid pointer at once; reset and statistics count them; mpool_check
 * stays 0.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mpool.h>

#include "testutil.h"

static mpool_t *make_pool(bool thread_safe)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.thread_safe = thread_safe;
    cfg.on_error = MPOOL_ON_ERROR_RETURN;
    return create_or_die(&cfg);
}

Test(zero, blocks_are_unique_aligned_and_exact)
{
    for (int ts = 0; ts < 2; ts++) {
        mpool_t *pool = make_pool(ts);
        enum { N = 5000 };
        static void *p[N];
        for (int i = 0; i < N; i++) {
            p[i] = i % 2 ? mpool_alloc(pool, 0) : mpool_calloc(pool, 0, 8);
            cr_assert_not_null(p[i]);
            cr_assert(is_aligned(p[i], 16));
            cr_assert(mpool_owns(pool, p[i]));
            cr_assert_eq(mpool_usable_size(pool, p[i]), 0);
            if (i > 0)
                cr_assert_neq(p[i], p[i - 1]);
        }
        cr_assert_not(mpool_owns(pool, (char *)p[0] + 1), "an interior address is a block");
        mpool_stats_t st;
        mpool_get_stats(pool, &st);
        cr_assert_eq(st.live_blocks, N, "live_blocks %zu", st.live_blocks);
        cr_assert_eq(mpool_check(pool), 0);
        for (int i = 0; i < N; i += 2)
            mpool_free(pool, p[i]);
        cr_assert_not(mpool_owns(pool, p[0]), "a freed zero-size block is still owned");
        prime_error(MPOOL_ERR_INVALID_POINTER);
        mpool_free(pool, p[0]);
        cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER, "a double free was not refused at once");
        cr_assert_not(mpool_safe_free(pool, p[2]));
        mpool_get_stats(pool, &st);
        cr_assert_eq(st.live_blocks, N / 2, "live_blocks %zu", st.live_blocks);
        /* realloc keeps nothing (there is nothing) and frees the old block */
        char *q = mpool_realloc(pool, p[1], 100);
        cr_assert_not_null(q);
        cr_assert_not(mpool_owns(pool, p[1]));
        memset(q, 7, 100);
        cr_assert_null(mpool_realloc(pool, mpool_alloc(pool, 0), 0), "realloc(p, 0) frees");
        mpool_free(pool, q);
        mpool_reset(pool);
        cr_assert_not(mpool_owns(pool, p[3]), "reset left a zero-size block live");
        mpool_get_stats(pool, &st);
        cr_assert_eq(st.live_blocks, 0);
        cr_assert_eq(mpool_check(pool), 0);
        mpool_destroy(pool);
    }
}

/* A read or write of any byte of a zero-size block faults. */
static int access_in_child(bool write, size_t offset)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        mpool_t *pool = make_pool(false);
        volatile char *p = mpool_alloc(pool, 0);
        if (write)
            p[offset] = 1;
        else
            (void)p[offset];
        _exit(0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
#if defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer catches the fault, reports it ("SEGV on unknown
     * address") and exits with 1, or aborts (abort_on_error) */
    if ((WIFEXITED(status) && WEXITSTATUS(status) != 0) || (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT))
        return SIGSEGV;
#endif
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

Test(zero, any_access_faults)
{
    for (size_t off = 0; off < 32; off += 8) {
        cr_assert_eq(access_in_child(false, off), SIGSEGV, "a read at +%zu did not fault", off);
        cr_assert_eq(access_in_child(true, off), SIGSEGV, "a write at +%zu did not fault", off);
    }
}

/* A pool whose alignment is above the slots' gives a zero-size request an
 * ordinary block of that alignment. */
Test(zero, large_alignment_gets_an_ordinary_block)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.alignment = 64;
    mpool_t *pool = create_or_die(&cfg);
    void *p = mpool_alloc(pool, 0);
    cr_assert(is_aligned(p, 64));
    cr_assert_geq(mpool_usable_size(pool, p), 16);
    void *q = mpool_alloc_aligned(mpool_default(), 0, 4096);
    cr_assert(is_aligned(q, 4096));
    mpool_free(NULL, q);
    mpool_free(pool, p);
    mpool_destroy(pool);
}
