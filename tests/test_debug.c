/*
 * test_debug.c - debug mode (src/debug.c), the leak report (src/leak.c),
 * and the Valgrind and ASan annotations (src/sanitize.h).
 *
 * - Every misuse a debug pool catches, for blocks of 8 B, 4 KiB, 256 KiB and
 *   a huge block (3 MiB) where it applies, expecting its one report line
 *   through the pool's logger: overflow and underflow by 1, 8 and 32 bytes
 *   by direct write and by memcpy, write after free (found by mpool_check
 *   and when the block leaves the quarantine), double free, interior and
 *   foreign frees, a block of another pool, realloc of a freed block.
 * - What must fault: reading a freed 256 KiB block, and overflowing a huge
 *   block (guard page), in a forked child (SIGSEGV; in the ASan build ASan
 *   reports the poisoned access first, and the child dies either way).
 * - Fill bytes, usable size, realloc and calloc of debug blocks.
 * - mpool_report_leaks: counts, bytes and the call site (this file).
 * - MPOOL_LEAK_REPORT=1 under the malloc replacement (tests/debug/leaky.c).
 * - tests/debug/buggy.c under Valgrind's memcheck (skipped without
 *   valgrind) and, in the ASan build, under AddressSanitizer.
 *
 * In the ASan build the test's own bad writes go through poke() and
 * copy_bytes(), which are not instrumented: ASan would (rightly) stop the
 * test at the first one, before the pool could report it.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mpool.h>

#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#define NO_ASAN __attribute__((no_sanitize_address, noinline))
#else
#define TEST_ASAN 0
#define NO_ASAN __attribute__((noinline))
#endif

/* ---- Capturing the report lines ----------------------------------------- */

struct capture {
    int lines;
    char text[64][600];
};

static void capture_logger(mpool_error_t err, const char *message, void *arg)
{
    (void)err;
    struct capture *c = arg;
    if (c->lines < 64)
        snprintf(c->text[c->lines], sizeof c->text[0], "%s", message);
    c->lines++;
}

static struct capture cap;

static mpool_t *debug_pool(void)
{
    memset(&cap, 0, sizeof cap);
    mpool_config_t c = mpool_config_default();
    c.enable_debug = true;
    c.on_error = MPOOL_ON_ERROR_LOG;
    c.logger = capture_logger;
    c.logger_arg = &cap;
    return create_or_die(&c);
}

/* Exactly one line was reported since the last reset, and it holds every needle. */
#define expect_one_line(...)                                                                       \
    do {                                                                                            \
        const char *needles_[] = {__VA_ARGS__, NULL};                                               \
        cr_assert_eq(cap.lines, 1, "expected one report line, got %d (first: %s)", cap.lines,     \
                     cap.lines ? cap.text[0] : "-");                                                \
        for (size_t i_ = 0; needles_[i_]; i_++)                                                     \
            cr_assert(strstr(cap.text[0], needles_[i_]), "'%s' not in: %s", needles_[i_], cap.text[0]); \
        cap.lines = 0;                                                                              \
    } while (0)

static const size_t sizes[] = {8, 4 * KiB, 256 * KiB, 3 * MiB};
#define SIZE_COUNT (sizeof sizes / sizeof sizes[0])

/* Bad writes the pool must find (not instrumented under ASan). */
static NO_ASAN void poke(char *p, ptrdiff_t at, char v)
{
    ((volatile char *)p)[at] = v;
}

static NO_ASAN void copy_bytes(char *dst, const char *src, size_t n)
{
#if TEST_ASAN
    for (size_t i = 0; i < n; i++)
        ((volatile char *)dst)[i] = src[i];
#else
    memcpy(dst, src, n);
#endif
}

static char *block_of(mpool_t *pool, size_t size)
{
    char *p = mpool_alloc(pool, size);
    cr_assert_not_null(p, "mpool_alloc(%zu)", size);
    return p;
}

static char size_buf[64];
static const char *size_text(size_t n)
{
    snprintf(size_buf, sizeof size_buf, "of %zu bytes", n);
    return size_buf;
}

/* ---- Canaries ------------------------------------------------------------ */

Test(debug, overflow_by_1_8_32_bytes_direct_and_memcpy_is_one_line_at_free)
{
    mpool_t *pool = debug_pool();
    static const char junk[64] = "0123456789abcdef0123456789abcdef0123456789abcdef";
    for (size_t s = 0; s < SIZE_COUNT; s++) {
        if (sizes[s] > 2 * MiB)
            continue; /* huge blocks end on a guard page: overflow_of_a_huge_block_faults */
        for (int by = 1; by <= 32; by = by == 1 ? 8 : by * 4) {
            char *p = block_of(pool, sizes[s]);
            poke(p, (ptrdiff_t)sizes[s] + by - 1, 'x');
            mpool_free(pool, p);
            expect_one_line("mpool_free(", "heap overflow", size_text(sizes[s]), "allocated at");

            p = block_of(pool, sizes[s]);
            copy_bytes(p + sizes[s] - 4, junk, 4 + (size_t)by);
            mpool_free(pool, p);
            expect_one_line("heap overflow", size_text(sizes[s]), "past its end");
        }
    }
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(debug, underflow_by_1_8_32_bytes_direct_and_memcpy_is_one_line_at_free)
{
    mpool_t *pool = debug_pool();
    static const char junk[64] = "0123456789abcdef0123456789abcdef0123456789abcdef";
    for (size_t s = 0; s < SIZE_COUNT; s++) {
        for (int by = 1; by <= 32; by = by == 1 ? 8 : by * 4) {
            char *p = block_of(pool, sizes[s]);
            poke(p, -by, 'x');
            mpool_free(pool, p);
            expect_one_line("heap underflow", size_text(sizes[s]), "before its start");

            p = block_of(pool, sizes[s]);
            copy_bytes(p - by, junk, (size_t)by + 2);
            mpool_free(pool, p);
            expect_one_line("heap underflow", size_text(sizes[s]));
        }
    }
    mpool_destroy(pool);
}

Test(debug, overflow_is_found_by_realloc_and_by_mpool_check)
{
    mpool_t *pool = debug_pool();
    for (size_t s = 0; s < 3; s++) {
        char *p = block_of(pool, sizes[s]);
        poke(p, (ptrdiff_t)sizes[s], 'x');
        cr_assert_eq(mpool_check(pool), 1);
        expect_one_line("mpool_check(", "heap overflow", size_text(sizes[s]));
        cr_assert_eq(mpool_check(pool), 0, "a repaired canary is reported once");
        poke(p, (ptrdiff_t)sizes[s] + 3, 'y');
        p = mpool_realloc(pool, p, sizes[s] * 2);
        cr_assert_not_null(p);
        expect_one_line("mpool_realloc(", "heap overflow", size_text(sizes[s]));
        mpool_free(pool, p);
        cr_assert_eq(cap.lines, 0);
    }
    mpool_destroy(pool);
}

Test(debug, overflow_of_a_huge_block_faults_on_its_guard_page)
{
    mpool_t *pool = debug_pool();
    char *p = block_of(pool, 3 * MiB);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        poke(p, 3 * MiB, 'x');
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    if (TEST_ASAN) /* ASan's handler reports the fault, then aborts or exits */
        cr_assert(!WIFEXITED(status) || WEXITSTATUS(status) != 0, "status 0x%x", status);
    else
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "status 0x%x", status);
    mpool_free(pool, p);
    cr_assert_eq(cap.lines, 0);
    mpool_destroy(pool);
}

/* ---- Frees ---------------------------------------------------------------- */

Test(debug, double_free_names_both_call_sites)
{
    mpool_t *pool = debug_pool();
    for (size_t s = 0; s < SIZE_COUNT; s++) {
        char *p = block_of(pool, sizes[s]);
        char *q = block_of(pool, 8);
        mpool_free(pool, p);
        mpool_free(pool, q); /* another free in between */
        mpool_free(pool, p);
        expect_one_line("mpool_free(", "double free", size_text(sizes[s]), "allocated at", "freed at");
        cr_assert(!mpool_safe_free(pool, p));
        expect_one_line("mpool_safe_free(", "double free");
    }
    mpool_destroy(pool);
}

Test(debug, interior_and_foreign_frees_are_invalid)
{
    mpool_t *pool = debug_pool();
    for (size_t s = 0; s < SIZE_COUNT; s++) {
        char *p = block_of(pool, sizes[s]);
        mpool_free(pool, p + 16);
        expect_one_line("mpool_free(", "invalid free", "not a live block");
        mpool_free(pool, p - 256);
        expect_one_line("invalid free");
        cr_assert_eq(mpool_usable_size(pool, p + 8), 0);
        cr_assert(!mpool_owns(pool, p + 8));
        mpool_free(pool, p);
        cr_assert_eq(cap.lines, 0);
    }
    int on_stack;
    mpool_free(pool, &on_stack);
    expect_one_line("invalid free");
    mpool_destroy(pool);
}

Test(debug, a_block_of_another_pool_is_refused)
{
    mpool_t *pool = debug_pool();
    mpool_t *other = create_or_die(NULL);
    mpool_t *other_debug = debug_pool();
    char *p = block_of(pool, 100);
    mpool_free(other_debug, p);
    expect_one_line("wrong pool");
    mpool_free(other, p); /* a pool not in debug mode (its policy: return) refuses it too */
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    cr_assert_eq(cap.lines, 0);
    cr_assert_eq(mpool_usable_size(pool, p), 100);
    mpool_free(NULL, p); /* NULL: the pool that owns it */
    cr_assert_eq(cap.lines, 0);
    mpool_destroy(other);
    mpool_destroy(other_debug);
    mpool_destroy(pool);
}

/* ---- After free ------------------------------------------------------------ */

Test(debug, write_after_free_is_found_by_mpool_check_and_when_leaving_quarantine)
{
    mpool_t *pool = debug_pool();
    for (size_t s = 0; s < SIZE_COUNT; s++) {
        char *p = block_of(pool, sizes[s]);
        mpool_free(pool, p);
        if (sizes[s] >= 256 * KiB)
            continue; /* its pages are protected: read_after_free_of_a_large_block_faults */
        poke(p, 3, 'w');
        cr_assert_eq(mpool_check(pool), 1);
        expect_one_line("mpool_check(", "write after free", size_text(sizes[s]), "offsets 3..3", "freed at");
    }
    /* Before reuse: the block leaves the quarantine (4096 blocks) and is checked then. */
    char *p = block_of(pool, 8);
    mpool_free(pool, p);
    poke(p, 0, 'w');
    poke(p, 7, 'w');
    for (int i = 0; i < 5000 && cap.lines == 0; i++)
        mpool_free(pool, block_of(pool, 8));
    expect_one_line("mpool_free(", "write after free", "of 8 bytes", "offsets 0..7");
    mpool_destroy(pool);
}

Test(debug, read_after_free_of_a_large_block_faults)
{
    mpool_t *pool = debug_pool();
    for (size_t s = 2; s < SIZE_COUNT; s++) {
        char *p = block_of(pool, sizes[s]);
        mpool_free(pool, p);
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
            volatile char c = *(volatile char *)(p + 4096);
            (void)c;
            _exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
        if (TEST_ASAN)
            cr_assert(!WIFEXITED(status) || WEXITSTATUS(status) != 0, "status 0x%x", status);
        else
            cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "size %zu: status 0x%x", sizes[s], status);
    }
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

/* A child that reads or writes p: true if the access faulted (under ASan,
 * its handler reports the fault and ends the child otherwise than by exit 0). */
static bool access_faults(char *p, bool write)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (write)
            poke(p, 0, 'x');
        else {
            volatile char c = *(volatile char *)p;
            (void)c;
        }
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    if (TEST_ASAN)
        return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

Test(debug, a_zero_size_block_faults_on_read_and_write_and_is_freed_exactly)
{
    mpool_t *pool = debug_pool();
    char *p = block_of(pool, 0), *q = block_of(pool, 0);
    cr_assert_neq(p, q);
    cr_assert(access_faults(p, false), "a read through mpool_alloc(pool, 0) did not fault");
    cr_assert(access_faults(p, true), "a write through mpool_alloc(pool, 0) did not fault");
    cr_assert(mpool_owns(pool, p));
    cr_assert_eq(mpool_usable_size(pool, p), 0);
    cr_assert_eq(mpool_report_leaks(pool, NULL, NULL), 2, "both zero-size blocks are live");
    mpool_free(pool, p);
    cr_assert_eq(cap.lines, 0, "%s", cap.text[0]);
    mpool_free(pool, p);
    expect_one_line("mpool_free(", "double free", "of 0 bytes", "allocated at", "freed at");
    cr_assert(!mpool_owns(pool, p));
    cr_assert(access_faults(p, false), "a read of a freed zero-size block did not fault");
    char *r = mpool_realloc(pool, q, 16); /* a zero-size block resizes like any */
    cr_assert_not_null(r);
    cr_assert_eq(mpool_usable_size(pool, r), 16);
    mpool_free(pool, r);
    cr_assert_eq(mpool_check(pool), 0);
    cr_assert_eq(cap.lines, 0, "%s", cap.text[0]);
    mpool_destroy(pool);
}

Test(debug, realloc_of_a_freed_block_is_reported)
{
    mpool_t *pool = debug_pool();
    char *p = block_of(pool, 40);
    mpool_free(pool, p);
    cr_assert_null(mpool_realloc(pool, p, 80));
    expect_one_line("mpool_realloc(", "double free", "realloc of a freed block");
    mpool_destroy(pool);
}

/* ---- Blocks that are used right ------------------------------------------- */

Test(debug, fills_sizes_realloc_and_calloc)
{
    mpool_t *pool = debug_pool();
    for (size_t s = 0; s < SIZE_COUNT; s++) {
        unsigned char *p = (unsigned char *)block_of(pool, sizes[s]);
        cr_assert_eq((uintptr_t)p % 16, 0);
        cr_assert_eq(p[0], 0xAB);
        cr_assert_eq(p[sizes[s] - 1], 0xAB);
        cr_assert_eq(mpool_usable_size(pool, p), sizes[s]);
        cr_assert(mpool_owns(pool, p));
        memset(p, 0x5A, sizes[s]);
        p = mpool_realloc(pool, p, sizes[s] + 100);
        cr_assert_not_null(p);
        cr_assert_eq(p[0], 0x5A);
        cr_assert_eq(p[sizes[s] - 1], 0x5A);
        cr_assert_eq(p[sizes[s]], 0xAB);
        cr_assert_eq(mpool_usable_size(pool, p), sizes[s] + 100);
        mpool_free(pool, p);
        unsigned char *z = mpool_calloc(pool, 1, sizes[s]);
        cr_assert_not_null(z);
        cr_assert_eq(z[0], 0);
        cr_assert_eq(z[sizes[s] - 1], 0);
        mpool_free(pool, z);
        void *a = mpool_alloc_aligned(pool, sizes[s], 4096);
        cr_assert_not_null(a);
        cr_assert_eq((uintptr_t)a % 4096, 0);
        mpool_free(pool, a);
    }
    cr_assert_eq(mpool_check(pool), 0);
    cr_assert_eq(cap.lines, 0);
    mpool_reset(pool);
    char *p = block_of(pool, 300 * KiB); /* reset forgets the quarantine (and its protected pages) */
    memset(p, 1, 300 * KiB);
    mpool_free(pool, p);
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}

Test(debug, many_blocks_and_threads_of_a_thread_safe_debug_pool)
{
    mpool_t *pool = debug_pool();
    enum { N = 20000 };
    static char *keep[N];
    rng_t r;
    rng_seed(&r, 42);
    for (int i = 0; i < N; i++) {
        keep[i] = block_of(pool, (size_t)rng_logrange(&r, 1, 70000));
        keep[i][0] = (char)i;
    }
    for (int i = 0; i < N; i += 2)
        mpool_free(pool, keep[i]);
    cr_assert_eq(mpool_check(pool), 0);
    for (int i = 1; i < N; i += 2) {
        cr_assert_eq(keep[i][0], (char)i);
        mpool_free(pool, keep[i]);
    }
    cr_assert_eq(cap.lines, 0);
    cr_assert_eq(mpool_report_leaks(pool, NULL, NULL) == 0 ? 0 : 1, 0);
    mpool_destroy(pool);
}

/* ---- Leak report ------------------------------------------------------------ */

struct text_sink {
    char buf[16384];
    size_t len;
};

static void sink_write(const char *text, size_t len, void *arg)
{
    struct text_sink *s = arg;
    size_t room = sizeof s->buf - 1 - s->len;
    size_t n = len < room ? len : room;
    memcpy(s->buf + s->len, text, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

static void *volatile last_leak;

static __attribute__((noinline)) void leak_from_here(mpool_t *pool, size_t n)
{
    last_leak = mpool_alloc(pool, n); /* not a tail call: this frame is on the stack */
}

Test(debug, report_leaks_groups_live_blocks_by_call_site_largest_first)
{
    mpool_t *pool = debug_pool();
    for (int i = 0; i < 3; i++)
        leak_from_here(pool, 1000);
    void *other = mpool_alloc(pool, 10);
    mpool_free(pool, block_of(pool, 5000));
    static struct text_sink s;
    s.len = 0;
    size_t n = mpool_report_leaks(pool, sink_write, &s);
    cr_assert_eq(n, 4, "%s", s.buf);
    cr_assert(strstr(s.buf, "4 blocks (3010 bytes) live, from 2 call sites"), "%s", s.buf);
    const char *big = strstr(s.buf, "3000 bytes in 3 blocks allocated at leak_from_here");
    const char *small = strstr(s.buf, "10 bytes in 1 block allocated at");
    cr_assert(big && small && big < small, "%s", s.buf);
    cr_assert(strstr(s.buf, "test_debug.c:"), "file and line through addr2line: %s", s.buf);
    mpool_free(pool, other);

    mpool_t *plain = create_or_die(NULL);
    s.len = 0;
    cr_assert_eq(mpool_report_leaks(plain, sink_write, &s), 0);
    cr_assert(strstr(s.buf, "not in debug mode"), "%s", s.buf);
    mpool_destroy(plain);
    mpool_destroy(pool);
}

/* ---- Programs ---------------------------------------------------------------- */

/* Runs argv with extra environment entries; returns the wait status and
 * stdout+stderr (NUL-terminated, caller frees). */
static __attribute__((unused)) int run_program(const char *const *argv, const char *const *env_extra, char **output)
{
    char path[] = "/tmp/mpool-debug-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    unlink(path);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        for (size_t i = 0; env_extra[i]; i++)
            putenv((char *)env_extra[i]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    struct stat st;
    fstat(fd, &st);
    *output = calloc(1, (size_t)st.st_size + 1);
    cr_assert(pread(fd, *output, (size_t)st.st_size, 0) == st.st_size);
    close(fd);
    return status;
}

#if defined(MPOOL_DROPIN_PATH) && defined(DEBUG_LEAKY)
Test(debug, leak_report_at_exit_of_a_program_under_the_malloc_replacement)
{
    const char *argv[] = {DEBUG_LEAKY, NULL};
    const char *env[] = {"LD_PRELOAD=" MPOOL_DROPIN_PATH, "MPOOL_LEAK_REPORT=1", NULL};
    char *out;
    int status = run_program(argv, env, &out);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x: %s", status, out);
    const char *big = strstr(out, "3000 bytes in 3 blocks allocated at make_buffer (leaky.c:");
    const char *small = strstr(out, "77 bytes in 1 block allocated at main (leaky.c:");
    cr_assert(strstr(out, "mpool leak report: pool"), "%s", out);
    cr_assert(big && small && big < small, "%s", out);
    cr_assert(!strstr(out, "5000 bytes"), "%s", out);
    free(out);
}
#endif

#ifdef DEBUG_BUGGY
#if defined(VALGRIND_PROGRAM) && !TEST_ASAN
static bool have_valgrind(void)
{
    return access(VALGRIND_PROGRAM, X_OK) == 0;
}
#endif

Test(debug, valgrind_memcheck_sees_overflow_use_after_free_and_leak_in_a_pool)
{
#if !defined(VALGRIND_PROGRAM) || TEST_ASAN
    cr_skip_test("valgrind is not installed (or this is the ASan build)");
#else
    if (!have_valgrind())
        cr_skip_test("valgrind is not installed");
    static const struct {
        const char *what, *want, *want2;
    } cases[] = {
        {"overflow", "Invalid write of size 1", "0 bytes after a block of size 24 alloc'd"},
        {"uaf", "Invalid read of size 1", "inside a block of size 307,200 free'd"},
        {"leak", "100 bytes in 1 blocks are definitely lost", "leak_site (buggy.c:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[] = {VALGRIND_PROGRAM, "--leak-check=full", "--error-exitcode=9", DEBUG_BUGGY,
                              cases[i].what, NULL};
        const char *env[] = {NULL};
        char *out;
        int status = run_program(argv, env, &out);
        /* 9: memcheck found errors; the read of a protected page also ends the program (SIGSEGV) */
        cr_assert((WIFEXITED(status) && WEXITSTATUS(status) == 9) || (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV),
                  "%s: status 0x%x: %s", cases[i].what, status, out);
        cr_assert(strstr(out, cases[i].want), "%s: '%s' not in: %s", cases[i].what, cases[i].want, out);
        cr_assert(strstr(out, cases[i].want2), "%s: '%s' not in: %s", cases[i].what, cases[i].want2, out);
        free(out);
    }
#endif
}

Test(debug, asan_reports_a_use_after_free_of_a_large_block_in_a_plain_pool)
{
#if !TEST_ASAN
    cr_skip_test("runs in the ASan build only");
#else
    const char *argv[] = {DEBUG_BUGGY, "uaf", NULL}; /* no debug mode: the large cache's poison */
    const char *env[] = {"ASAN_OPTIONS=abort_on_error=0:detect_leaks=0", NULL};
    char *out;
    int status = run_program(argv, env, &out);
    cr_assert(!WIFEXITED(status) || WEXITSTATUS(status) != 0, "status 0x%x: %s", status, out);
    cr_assert(strstr(out, "ERROR: AddressSanitizer: use-after-poison"), "%s", out);
    cr_assert(strstr(out, "buggy.c:"), "%s", out);
    free(out);
#endif
}

Test(debug, asan_reports_an_overflow_and_a_use_after_free_in_a_debug_pool)
{
#if !TEST_ASAN
    cr_skip_test("runs in the ASan build only");
#else
    static const struct {
        const char *what, *want;
    } cases[] = {
        {"overflow", "use-after-poison"},
        {"uaf", "use-after-poison"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[] = {DEBUG_BUGGY, cases[i].what, "debug", NULL};
        const char *env[] = {"ASAN_OPTIONS=abort_on_error=0:detect_leaks=0", NULL};
        char *out;
        int status = run_program(argv, env, &out);
        cr_assert(!WIFEXITED(status) || WEXITSTATUS(status) != 0, "%s: status 0x%x: %s", cases[i].what, status, out);
        cr_assert(strstr(out, "ERROR: AddressSanitizer: use-after-poison"), "%s: %s", cases[i].what, out);
        cr_assert(strstr(out, "buggy.c:"), "%s: the report names the line: %s", cases[i].what, out);
        free(out);
    }
#endif
}
#endif

/* The pool blocks that hold debug blocks are not the program's: their
 * starts (below a small block's header, a huge block's chunk base) are
 * refused by every exact call and by free, and nothing changes (found by
 * tests/fuzz: mpool_safe_free(NULL, chunk base) freed a huge debug block's
 * mapping). */
Test(debug, the_blocks_holding_debug_blocks_are_not_blocks)
{
    mpool_t *pool = debug_pool();
    size_t asked[] = {8, 4096, 3 << 20};
    for (int i = 0; i < 3; i++) {
        unsigned char *p = mpool_alloc(pool, asked[i]);
        cr_assert_not_null(p);
        memset(p, 0x33, asked[i]);
        unsigned char *raw = asked[i] > (1u << 20) ? (unsigned char *)((uintptr_t)p & ~(uintptr_t)((4u << 20) - 1))
                                                   : p - 256 - 80;
        for (unsigned char *q = raw; q < p; q += 16) {
            cr_assert_not(mpool_owns(NULL, q), "%p below a debug block of %zu bytes is a block", (const void *)q, asked[i]);
            cr_assert_eq(mpool_usable_size(NULL, q), 0);
            cr_assert_not(mpool_safe_free(NULL, q), "%p below a debug block was freed", (const void *)q);
            if (asked[i] > (1u << 20))
                break; /* a huge block's header is a page below its data: one probe */
        }
        cr_assert(mpool_owns(pool, p));
        for (size_t k = 0; k < asked[i]; k++)
            cr_assert_eq(p[k], 0x33, "the debug block changed");
        mpool_free(pool, p);
    }
    cr_assert_eq(mpool_check(pool), 0);
    mpool_destroy(pool);
}
