/*
 * test_dropin.c - the malloc replacement libmpool-malloc.so, tested from
 * outside: every test runs a helper program of tests/dropin/ (plain libc / C++
 * programs, not linked with mpool) with LD_PRELOAD=libmpool-malloc.so and
 * asserts on its exit status, stdout and stderr.  Inside, the helpers prove
 * that mpool served their memory with mpool_owns(NULL, p), found with dlsym.
 *
 * - api: every function of the malloc family with POSIX/C semantics, and
 *   glibc's introspection (helper tests/dropin/api.c)
 * - cxx: every form of operator new/delete, bad_alloc, nothrow, new_handler,
 *   containers, thread_local (tests/dropin/cxx.cpp)
 * - hard: constructors before main, atexit and destructors, dlopen of a
 *   library that allocates in its constructor, thousands of threads, fork in a
 *   multi-threaded program (tests/dropin/hard.c, plugin.c)
 * - misuse: invalid and double free with MPOOL_ON_ERROR abort/log/return, out
 *   of memory under MPOOL_MAX_SIZE
 * - config: MPOOL_VERBOSE, every MPOOL_<FIELD>, size suffixes, invalid values,
 *   the MPOOL_CONFIG file, precedence, MPOOL_ALIGNMENT, MPOOL_ENABLE_DEBUG,
 *   MPOOL_LOG_FILE, MPOOL_SHOW_STATS (the statistics file and the health
 *   options: tests/dropin/stats.py)
 *
 * CMake passes the paths of the library and the helpers (MPOOL_DROPIN_PATH,
 * DROPIN_API, DROPIN_HARD, DROPIN_CXX).  Sanitizer builds do not: a
 * sanitizer runtime cannot share a process with a preloaded allocator, and
 * the test is disabled there.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mpool.h>

#if !defined(MPOOL_DROPIN_PATH) || !defined(DROPIN_API) || !defined(DROPIN_HARD) || !defined(DROPIN_CXX)

Test(dropin, not_configured)
{
    cr_skip_test("the drop-in tests are built only without MPOOL_SANITIZE");
}

#else

extern char **environ;

/* ---- Running a helper --------------------------------------------------- */

struct run {
    int status;      /* from waitpid */
    bool timed_out;
    char *out, *err; /* captured stdout and stderr, NUL-terminated */
    char cmd[512];   /* for messages */
};

#define ENV(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_ENV ((const char *const[]){NULL})
#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

static char *slurp_fd(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return strdup("");
    size_t len = (size_t)st.st_size;
    char *buf = malloc(len + 1);
    cr_assert_not_null(buf);
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return buf;
}

static int temp_file(void)
{
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/mpool-dropin-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    cr_assert(fd >= 0, "mkstemp(%s): %s", path, strerror(errno));
    unlink(path);
    return fd;
}

/* Runs argv with the environment of this process minus LD_PRELOAD and MPOOL_*,
 * plus `extra`, plus LD_PRELOAD of the drop-in if `preload`.  Kills it after
 * timeout_s seconds. */
static struct run run_helper(bool preload, const char *const *extra, const char *const *argv,
                             double timeout_s)
{
    struct run r;
    memset(&r, 0, sizeof r);
    size_t k = 0;
    for (size_t i = 0; argv[i] && k < sizeof r.cmd - 2; i++)
        k += (size_t)snprintf(r.cmd + k, sizeof r.cmd - k, "%s ", argv[i]);
    for (size_t i = 0; extra[i] && k < sizeof r.cmd - 2; i++)
        k += (size_t)snprintf(r.cmd + k, sizeof r.cmd - k, "[%s] ", extra[i]);

    size_t n_env = 0, n_extra = 0;
    while (environ[n_env])
        n_env++;
    while (extra[n_extra])
        n_extra++;
    char **envp = calloc(n_env + n_extra + 2, sizeof *envp);
    cr_assert_not_null(envp);
    size_t e = 0;
    for (size_t i = 0; i < n_env; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0 && strncmp(environ[i], "MPOOL_", 6) != 0)
            envp[e++] = environ[i];
    for (size_t i = 0; i < n_extra; i++)
        envp[e++] = (char *)extra[i];
    if (preload)
        envp[e++] = "LD_PRELOAD=" MPOOL_DROPIN_PATH;
    envp[e] = NULL;

    int out_fd = temp_file(), err_fd = temp_file();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    cr_assert_eq(rc, 0, "posix_spawn(%s): %s", argv[0], strerror(rc));

    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pid_t w = waitpid(pid, &r.status, WNOHANG);
        if (w == pid)
            break;
        cr_assert(w == 0 || errno == EINTR, "waitpid: %s", strerror(errno));
        clock_gettime(CLOCK_MONOTONIC, &now);
        double elapsed = (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9;
        if (elapsed > timeout_s) {
            r.timed_out = true;
            kill(pid, SIGKILL);
            waitpid(pid, &r.status, 0);
            break;
        }
        struct timespec nap = {0, 2000000};
        nanosleep(&nap, NULL);
    }
    r.out = slurp_fd(out_fd);
    r.err = slurp_fd(err_fd);
    close(out_fd);
    close(err_fd);
    return r;
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

static bool exited_ok(const struct run *r)
{
    return !r->timed_out && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

static const char *status_text(const struct run *r)
{
    static char text[100];
    if (r->timed_out)
        snprintf(text, sizeof text, "timed out");
    else if (WIFEXITED(r->status))
        snprintf(text, sizeof text, "exit %d", WEXITSTATUS(r->status));
    else if (WIFSIGNALED(r->status))
        snprintf(text, sizeof text, "killed by signal %d (%s)", WTERMSIG(r->status),
                 strsignal(WTERMSIG(r->status)));
    else
        snprintf(text, sizeof text, "status 0x%x", r->status);
    return text;
}

/* Asserts with the whole story of the run in the message. */
#define assert_run(r, cond, ...)                                                         \
    cr_assert((cond), "%s\n  command: %s\n  status: %s\n  stdout: %.3000s\n  stderr: %.3000s", \
              #cond, (r)->cmd, status_text(r), (r)->out, (r)->err)

/* The helper passed: exit 0 and "OK <scenario>" on stdout. */
static void assert_ok(const struct run *r, const char *scenario)
{
    char want[100];
    snprintf(want, sizeof want, "OK %s\n", scenario);
    assert_run(r, exited_ok(r));
    assert_run(r, strstr(r->out, want) != NULL);
}

/* Runs a helper under the drop-in and asserts it passed with nothing on stderr. */
static void expect_clean_pass(const char *const *extra, const char *const *argv, const char *scenario,
                              double timeout_s)
{
    struct run r = run_helper(true, extra, argv, timeout_s);
    assert_ok(&r, scenario);
    assert_run(&r, r.err[0] == '\0');
    run_free(&r);
}

/* ---- Text helpers ------------------------------------------------------- */

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++)
        if (*p == '\n')
            n++;
    if (*text && text[strlen(text) - 1] != '\n')
        n++;
    return n;
}

/* Number of lines of text containing every one of the needles (NULL-terminated). */
static size_t lines_with(const char *text, const char *const *needles)
{
    size_t n = 0;
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[2048];
        size_t c = len < sizeof buf - 1 ? len : sizeof buf - 1;
        memcpy(buf, line, c);
        buf[c] = '\0';
        bool all = true;
        for (size_t i = 0; needles[i]; i++)
            all = all && strstr(buf, needles[i]) != NULL;
        n += all;
        line = end ? end + 1 : line + len;
    }
    return n;
}
#define LINES_WITH(text, ...) lines_with((text), (const char *const[]){__VA_ARGS__, NULL})

/* The first line of text, without its newline. */
static void first_line(const char *text, char *buf, size_t len)
{
    size_t n = strcspn(text, "\n");
    if (n >= len)
        n = len - 1;
    memcpy(buf, text, n);
    buf[n] = '\0';
}

/* The value shown for `var` (MPOOL_<FIELD>) in MPOOL_VERBOSE output: the word
 * after "MPOOL_<FIELD> =" (or ':').  The last such mention counts (the table
 * of options comes after any warning about a value).  False if the option is
 * not shown. */
static bool verbose_value(const char *text, const char *var, char *value, size_t len)
{
    bool found = false;
    size_t vlen = strlen(var);
    for (const char *p = strstr(text, var); p; p = strstr(p + 1, var)) {
        char after = p[vlen];
        if (!(after == ' ' || after == '\t' || after == '=' || after == ':'))
            continue; /* a longer name */
        if (p > text && (p[-1] == '_' || (p[-1] >= 'A' && p[-1] <= 'Z')))
            continue;
        const char *q = p + vlen;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q != '=' && *q != ':')
            continue;
        q++;
        while (*q == ' ' || *q == '\t')
            q++;
        size_t n = strcspn(q, " \t\n");
        if (n == 0 || n >= len)
            continue;
        memcpy(value, q, n);
        value[n] = '\0';
        found = true;
    }
    return found;
}

static bool parse_flag(const char *v, bool *out)
{
    if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
        return *out = true, true;
    if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off"))
        return *out = false, true;
    return false;
}

/* Asserts the verbose output shows `var` with the size `want` (in bytes). */
static void assert_shows_size(const struct run *r, const char *var, size_t want)
{
    char v[64];
    assert_run(r, verbose_value(r->err, var, v, sizeof v));
    char *end;
    errno = 0;
    unsigned long long got = strtoull(v, &end, 10);
    cr_assert(*end == '\0' && errno == 0 && got == want, "%s shown as '%s', expected %zu\n  stderr: %s",
              var, v, want, r->err);
}

static void assert_shows_flag(const struct run *r, const char *var, bool want)
{
    char v[64];
    bool got;
    assert_run(r, verbose_value(r->err, var, v, sizeof v));
    cr_assert(parse_flag(v, &got) && got == want, "%s shown as '%s', expected %d\n  stderr: %s", var,
              v, want, r->err);
}

static void assert_shows_number(const struct run *r, const char *var, double want)
{
    char v[64];
    assert_run(r, verbose_value(r->err, var, v, sizeof v));
    char *end;
    double got = strtod(v, &end);
    cr_assert(*end == '\0' && got > want - 0.006 && got < want + 0.006,
              "%s shown as '%s', expected %g\n  stderr: %s", var, v, want, r->err);
}

static void assert_shows_word(const struct run *r, const char *var, const char *want)
{
    char v[64];
    assert_run(r, verbose_value(r->err, var, v, sizeof v));
    cr_assert(!strcasecmp(v, want), "%s shown as '%s', expected %s\n  stderr: %s", var, v, want, r->err);
}

/* The defaults of the drop-in's pool: mpool_config_default(), but invalid
 * frees abort (as in glibc). */
static mpool_config_t dropin_defaults(void)
{
    mpool_config_t c = mpool_config_default();
    c.on_error = MPOOL_ON_ERROR_ABORT;
    return c;
}

static const char *policy_name(mpool_on_error_t p)
{
    return p == MPOOL_ON_ERROR_ABORT ? "abort" : p == MPOOL_ON_ERROR_LOG ? "log" : "return";
}

/* Asserts every field of the verbose output equals cfg. */
static void assert_shows_config(const struct run *r, const mpool_config_t *c)
{
    assert_shows_size(r, "MPOOL_INITIAL_SIZE", c->initial_size);
    assert_shows_size(r, "MPOOL_MAX_SIZE", c->max_size);
    assert_shows_number(r, "MPOOL_GROWTH_FACTOR", c->growth_factor);
    assert_shows_size(r, "MPOOL_MIN_BLOCK_SIZE", c->min_block_size);
    assert_shows_size(r, "MPOOL_MAX_BLOCK_SIZE", c->max_block_size);
    assert_shows_size(r, "MPOOL_ALIGNMENT", c->alignment);
    assert_shows_flag(r, "MPOOL_THREAD_SAFE", c->thread_safe);
    assert_shows_flag(r, "MPOOL_ENABLE_STATISTICS", c->enable_statistics);
    assert_shows_flag(r, "MPOOL_ENABLE_DEBUG", c->enable_debug);
    assert_shows_word(r, "MPOOL_ON_ERROR", policy_name(c->on_error));
}

/* A temporary file holding text; returns its path in path. */
static void write_temp(char *path, size_t len, const char *text)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, len, "%s/mpool-dropin-cfg-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    cr_assert(fd >= 0, "mkstemp: %s", strerror(errno));
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
}

/* Lines of MPOOL_VERBOSE=1 output of a clean run (the baseline for counting warnings). */
static size_t verbose_baseline_lines(void)
{
    struct run r = run_helper(true, ENV("MPOOL_VERBOSE=1"), ARGV(DROPIN_API, "hello"), 20);
    assert_ok(&r, "hello");
    size_t n = count_lines(r.err);
    assert_run(&r, n >= 10);
    run_free(&r);
    return n;
}

#define T_SHORT 30.0
#define T_LONG 60.0

TestSuite(dropin, .timeout = 120);

/* ---- The malloc family -------------------------------------------------- */

/* Without the drop-in, the helpers notice: their "owned" checks mean something. */
Test(dropin, helpers_fail_without_preload)
{
    struct run r = run_helper(false, NO_ENV, ARGV(DROPIN_API, "hello"), T_SHORT);
    assert_run(&r, WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1);
    assert_run(&r, strstr(r.err, "not preloaded") != NULL);
    run_free(&r);
}

Test(dropin, every_function_of_the_malloc_family)
{
    expect_clean_pass(NO_ENV, ARGV(DROPIN_API, "functions"), "functions", T_LONG);
}

Test(dropin, malloc_stats_prints_to_stderr)
{
    struct run r = run_helper(true, NO_ENV, ARGV(DROPIN_API, "malloc_stats"), T_SHORT);
    assert_ok(&r, "malloc_stats");
    const char *a = strstr(r.err, "BEFORE-MALLOC-STATS\n"), *b = strstr(r.err, "AFTER-MALLOC-STATS");
    assert_run(&r, a && b && b > a);
    const char *report = a + strlen("BEFORE-MALLOC-STATS\n");
    size_t len = (size_t)(b - report);
    assert_run(&r, len > 1); /* something between the markers */
    run_free(&r);
}

/* ---- C++ ---------------------------------------------------------------- */

Test(dropin, cxx_every_form_of_new_and_delete)
{
    expect_clean_pass(NO_ENV, ARGV(DROPIN_CXX, "forms"), "forms", T_LONG);
}

Test(dropin, cxx_new_handler_frees_a_reserve_and_the_retry_succeeds)
{
    expect_clean_pass(ENV("MPOOL_MAX_SIZE=64M"), ARGV(DROPIN_CXX, "handler", "67108864"), "handler",
                      T_SHORT);
}

Test(dropin, cxx_thread_local_objects_in_many_threads)
{
    expect_clean_pass(NO_ENV, ARGV(DROPIN_CXX, "tls", "400"), "tls", T_LONG);
}

/* ---- Hard situations ---------------------------------------------------- */

Test(dropin, constructors_atexit_and_destructors)
{
    struct run r = run_helper(true, NO_ENV, ARGV(DROPIN_HARD, "lifecycle"), T_SHORT);
    assert_ok(&r, "lifecycle");
    assert_run(&r, strstr(r.out, "ATEXIT-OK\n") != NULL);
    assert_run(&r, strstr(r.out, "DESTRUCTOR-OK\n") != NULL);
    assert_run(&r, strstr(r.out, "stdio buffered line\n") != NULL);
    assert_run(&r, r.err[0] == '\0');
    run_free(&r);
}

Test(dropin, dlopen_of_a_library_that_allocates_dlsym_dlerror)
{
    expect_clean_pass(NO_ENV, ARGV(DROPIN_HARD, "dlopen"), "dlopen", T_SHORT);
}

Test(dropin, two_thousand_threads_and_detached_threads)
{
    expect_clean_pass(NO_ENV, ARGV(DROPIN_HARD, "threads", "2000"), "threads", T_LONG);
}

Test(dropin, fork_while_threads_allocate)
{
    struct run r = run_helper(true, NO_ENV, ARGV(DROPIN_HARD, "fork", "50"), T_SHORT);
    assert_ok(&r, "fork");
    assert_run(&r, r.err[0] == '\0');
    run_free(&r);
}

/* ---- Misuse ------------------------------------------------------------- */

/* Runs a misuse scenario and checks the report: with `policy` abort the helper
 * dies of SIGABRT, otherwise it continues; log and abort print exactly one
 * line naming the pointer (printed by the helper as its first stdout line),
 * return prints nothing. */
static void check_misuse(const char *policy, const char *const *argv)
{
    char env[64];
    snprintf(env, sizeof env, "MPOOL_ON_ERROR=%s", policy ? policy : "");
    const char *const *extra = policy ? ENV(env) : NO_ENV;
    struct run r = run_helper(true, extra, argv, T_SHORT);
    char ptr[64];
    first_line(r.out, ptr, sizeof ptr);
    assert_run(&r, strncmp(ptr, "0x", 2) == 0);
    bool aborts = !policy || !strcmp(policy, "abort");
    if (aborts) {
        assert_run(&r, !r.timed_out && WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT);
        assert_run(&r, strstr(r.out, "CONTINUED") == NULL);
    } else {
        assert_ok(&r, argv[1]);
        assert_run(&r, strstr(r.out, "CONTINUED\n") != NULL);
    }
    if (policy && !strcmp(policy, "return")) {
        assert_run(&r, r.err[0] == '\0');
    } else {
        cr_assert_eq(count_lines(r.err), 1, "expected exactly one line on stderr naming %s\n"
                     "  command: %s\n  status: %s\n  stderr: %s", ptr, r.cmd, status_text(&r), r.err);
        cr_assert_eq(LINES_WITH(r.err, "mpool", ptr), 1, "the line does not say 'mpool' and %s\n"
                     "  command: %s\n  stderr: %s", ptr, r.cmd, r.err);
    }
    run_free(&r);
}

Test(dropin, free_of_a_stack_pointer_aborts_with_one_line)
{
    check_misuse(NULL, ARGV(DROPIN_API, "bad_free"));
    check_misuse("abort", ARGV(DROPIN_API, "bad_free"));
}

Test(dropin, double_free_aborts_with_one_line)
{
    check_misuse(NULL, ARGV(DROPIN_API, "double_free", "64"));
    check_misuse(NULL, ARGV(DROPIN_API, "double_free", "5000"));
    check_misuse(NULL, ARGV(DROPIN_API, "double_free", "200000"));
    check_misuse(NULL, ARGV(DROPIN_API, "double_free", "4194304"));
}

Test(dropin, misuse_with_on_error_log_reports_and_continues)
{
    check_misuse("log", ARGV(DROPIN_API, "bad_free"));
    check_misuse("log", ARGV(DROPIN_API, "double_free", "64"));
    check_misuse("log", ARGV(DROPIN_API, "double_free", "200000"));
    check_misuse("log", ARGV(DROPIN_API, "double_free", "4194304"));
}

Test(dropin, free_of_an_interior_pointer_aborts_with_one_line)
{
    check_misuse(NULL, ARGV(DROPIN_API, "interior_free", "64"));
    check_misuse(NULL, ARGV(DROPIN_API, "interior_free", "5000"));
    check_misuse(NULL, ARGV(DROPIN_API, "interior_free", "200000"));
    check_misuse(NULL, ARGV(DROPIN_API, "interior_free", "4194304"));
    check_misuse("log", ARGV(DROPIN_API, "interior_free", "5000"));
    check_misuse("return", ARGV(DROPIN_API, "interior_free", "5000"));
}

Test(dropin, realloc_of_an_invalid_pointer_is_misuse)
{
    check_misuse(NULL, ARGV(DROPIN_API, "bad_realloc"));
    check_misuse("log", ARGV(DROPIN_API, "bad_realloc"));
    check_misuse("return", ARGV(DROPIN_API, "bad_realloc"));
}

Test(dropin, misuse_with_on_error_return_is_silent)
{
    check_misuse("return", ARGV(DROPIN_API, "bad_free"));
    check_misuse("return", ARGV(DROPIN_API, "double_free", "64"));
    check_misuse("return", ARGV(DROPIN_API, "double_free", "200000"));
    check_misuse("return", ARGV(DROPIN_API, "double_free", "4194304"));
}

Test(dropin, out_of_memory_returns_null_without_a_message)
{
    /* on_error is abort by default: running out of memory must still only return NULL. */
    expect_clean_pass(ENV("MPOOL_MAX_SIZE=16M"), ARGV(DROPIN_API, "oom", "16777216"), "oom", T_SHORT);
}

/* ---- Configuration ------------------------------------------------------ */

Test(dropin, verbose_prints_every_option_with_its_default)
{
    struct run r = run_helper(true, ENV("MPOOL_VERBOSE=1"), ARGV(DROPIN_API, "hello"), T_SHORT);
    assert_ok(&r, "hello");
    static const char *const fields[] = {
        "MPOOL_INITIAL_SIZE", "MPOOL_MAX_SIZE",    "MPOOL_GROWTH_FACTOR",     "MPOOL_MIN_BLOCK_SIZE",
        "MPOOL_MAX_BLOCK_SIZE", "MPOOL_ALIGNMENT", "MPOOL_THREAD_SAFE",       "MPOOL_ENABLE_STATISTICS",
        "MPOOL_ENABLE_DEBUG",   "MPOOL_ON_ERROR",
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char v[64];
        cr_assert(verbose_value(r.err, fields[i], v, sizeof v), "%s not shown with a value\n  stderr: %s",
                  fields[i], r.err);
    }
    mpool_config_t c = dropin_defaults();
    assert_shows_config(&r, &c);
    run_free(&r);
}

Test(dropin, every_field_from_the_environment_with_size_suffixes)
{
    struct run r = run_helper(true,
                              ENV("MPOOL_VERBOSE=1", "MPOOL_MAX_SIZE=512M", "MPOOL_INITIAL_SIZE=2M",
                                  "MPOOL_GROWTH_FACTOR=1.5", "MPOOL_MIN_BLOCK_SIZE=32",
                                  "MPOOL_MAX_BLOCK_SIZE=512K", "MPOOL_ALIGNMENT=32", "MPOOL_THREAD_SAFE=0",
                                  "MPOOL_ENABLE_STATISTICS=0", "MPOOL_ENABLE_DEBUG=1", "MPOOL_ON_ERROR=log"),
                              ARGV(DROPIN_API, "workload"), T_LONG);
    assert_ok(&r, "workload");
    mpool_config_t c = dropin_defaults();
    c.max_size = 536870912;
    c.initial_size = 2097152;
    c.growth_factor = 1.5;
    c.min_block_size = 32;
    c.max_block_size = 524288;
    c.alignment = 32;
    c.thread_safe = false;
    c.enable_statistics = false;
    c.enable_debug = true;
    c.on_error = MPOOL_ON_ERROR_LOG;
    assert_shows_config(&r, &c);
    run_free(&r);

    /* G suffix and plain bytes. */
    r = run_helper(true, ENV("MPOOL_VERBOSE=1", "MPOOL_MAX_SIZE=1G", "MPOOL_INITIAL_SIZE=65536"),
                   ARGV(DROPIN_API, "hello"), T_SHORT);
    assert_ok(&r, "hello");
    assert_shows_size(&r, "MPOOL_MAX_SIZE", (size_t)1 << 30);
    assert_shows_size(&r, "MPOOL_INITIAL_SIZE", 65536);
    run_free(&r);
}

/* An invalid value: exactly one warning line (naming the variable), the
 * default kept, the program runs. */
static void check_invalid(const char *assignment, const char *var)
{
    struct run r = run_helper(true, ENV(assignment), ARGV(DROPIN_API, "hello"), T_SHORT);
    assert_ok(&r, "hello");
    cr_assert_eq(count_lines(r.err), 1, "%s: expected exactly one warning line\n  stderr: %s", assignment,
                 r.err);
    cr_assert_eq(LINES_WITH(r.err, var), 1, "%s: the warning does not name %s\n  stderr: %s", assignment,
                 var, r.err);
    run_free(&r);

    size_t baseline = verbose_baseline_lines();
    r = run_helper(true, ENV("MPOOL_VERBOSE=1", assignment), ARGV(DROPIN_API, "hello"), T_SHORT);
    assert_ok(&r, "hello");
    cr_assert_eq(count_lines(r.err), baseline + 1, "%s with MPOOL_VERBOSE=1: %zu lines, expected %zu\n"
                 "  stderr: %s", assignment, count_lines(r.err), baseline + 1, r.err);
    mpool_config_t c = dropin_defaults();
    assert_shows_config(&r, &c);
    run_free(&r);
}

Test(dropin, invalid_values_warn_once_and_keep_the_default)
{
    check_invalid("MPOOL_MAX_SIZE=abc", "MPOOL_MAX_SIZE");
    check_invalid("MPOOL_GROWTH_FACTOR=0.5", "MPOOL_GROWTH_FACTOR");
    check_invalid("MPOOL_THREAD_SAFE=maybe", "MPOOL_THREAD_SAFE");
    check_invalid("MPOOL_ON_ERROR=explode", "MPOOL_ON_ERROR");
    check_invalid("MPOOL_INITIAL_SIZE=12Q", "MPOOL_INITIAL_SIZE");
    check_invalid("MPOOL_ALIGNMENT=", "MPOOL_ALIGNMENT");
}

/* Values that parse as sizes but are invalid for their field (alignment not
 * a power of two, below sizeof(void *), min_block_size above max_block_size):
 * the same rule, one warning naming the variable and the default kept for
 * that field only; the other options stay in effect. */
Test(dropin, semantically_invalid_values_warn_once_and_keep_the_default)
{
    check_invalid("MPOOL_ALIGNMENT=24", "MPOOL_ALIGNMENT");
    check_invalid("MPOOL_ALIGNMENT=0", "MPOOL_ALIGNMENT");
    check_invalid("MPOOL_MIN_BLOCK_SIZE=4", "MPOOL_MIN_BLOCK_SIZE");
    check_invalid("MPOOL_MIN_BLOCK_SIZE=4M", "MPOOL_MIN_BLOCK_SIZE"); /* above max_block_size (2 MiB) */
}

Test(dropin, an_invalid_value_does_not_discard_the_other_options)
{
    struct run r = run_helper(true, ENV("MPOOL_ALIGNMENT=24", "MPOOL_MAX_SIZE=16M"),
                              ARGV(DROPIN_API, "oom", "16777216"), T_SHORT);
    assert_ok(&r, "oom"); /* the 16M cap is still in effect */
    cr_assert_eq(count_lines(r.err), 1, "expected one warning line\n  stderr: %s", r.err);
    cr_assert_eq(LINES_WITH(r.err, "MPOOL_ALIGNMENT"), 1, "the warning does not name MPOOL_ALIGNMENT\n"
                 "  stderr: %s", r.err);
    run_free(&r);
}

/* MPOOL_VERBOSE shows the options in effect: a cap it shows is honoured. */
Test(dropin, verbose_shows_the_options_in_effect)
{
    static const char *const caps[] = {"MPOOL_MAX_SIZE=512K", "MPOOL_MAX_SIZE=8M"};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        struct run r = run_helper(true, ENV("MPOOL_VERBOSE=1", caps[i]), ARGV(DROPIN_API, "fill", "67108864"),
                                  T_SHORT);
        assert_ok(&r, "fill");
        char v[64];
        assert_run(&r, verbose_value(r.err, "MPOOL_MAX_SIZE", v, sizeof v));
        size_t shown = (size_t)strtoull(v, NULL, 10);
        const char *f = strstr(r.out, "FILLED ");
        assert_run(&r, f != NULL);
        size_t filled = (size_t)strtoull(f + 7, NULL, 10);
        cr_assert(shown == 0 || filled <= shown,
                  "%s: verbose shows MPOOL_MAX_SIZE = %zu, but %zu bytes were allocated\n  stderr: %s",
                  caps[i], shown, filled, r.err);
        run_free(&r);
    }
}

static const char config_text[] =
    "# mpool configuration for test_dropin\n"
    "\n"
    "max_size = 256M          # a comment after a value\n"
    "   growth_factor=1.5\n"
    "alignment = 32\n"
    "# on_error = return     (commented out)\n"
    "on_error = log\n"
    "enable_statistics = no\n"
    "\t initial_size\t=\t2M \n";

Test(dropin, config_file_is_applied)
{
    size_t baseline = verbose_baseline_lines();
    char path[512], env[600];
    write_temp(path, sizeof path, config_text);
    snprintf(env, sizeof env, "MPOOL_CONFIG=%s", path);
    struct run r = run_helper(true, ENV("MPOOL_VERBOSE=1", env), ARGV(DROPIN_API, "hello"), T_SHORT);
    unlink(path);
    assert_ok(&r, "hello");
    mpool_config_t c = dropin_defaults();
    c.max_size = (size_t)256 << 20;
    c.growth_factor = 1.5;
    c.alignment = 32;
    c.on_error = MPOOL_ON_ERROR_LOG;
    c.enable_statistics = false;
    c.initial_size = (size_t)2 << 20;
    assert_shows_config(&r, &c);
    cr_assert_eq(count_lines(r.err), baseline, "a valid config file gave warnings\n  stderr: %s", r.err);
    run_free(&r);
}

Test(dropin, environment_wins_over_the_config_file)
{
    char path[512], env[600];
    write_temp(path, sizeof path, config_text);
    snprintf(env, sizeof env, "MPOOL_CONFIG=%s", path);
    struct run r = run_helper(true,
                              ENV("MPOOL_VERBOSE=1", env, "MPOOL_MAX_SIZE=128M", "MPOOL_ON_ERROR=return",
                                  "MPOOL_ALIGNMENT=64"),
                              ARGV(DROPIN_API, "hello"), T_SHORT);
    unlink(path);
    assert_ok(&r, "hello");
    mpool_config_t c = dropin_defaults();
    c.max_size = (size_t)128 << 20;   /* environment */
    c.on_error = MPOOL_ON_ERROR_RETURN; /* environment */
    c.alignment = 64;                   /* environment */
    c.growth_factor = 1.5;              /* file */
    c.enable_statistics = false;        /* file */
    c.initial_size = (size_t)2 << 20;   /* file */
    assert_shows_config(&r, &c);
    run_free(&r);
}

Test(dropin, bad_lines_in_the_config_file_warn)
{
    size_t baseline = verbose_baseline_lines();
    char path[512], env[600];
    write_temp(path, sizeof path,
               "max_size = 256M\n"
               "this line has no equals sign\n"
               "growth_factor = fast\n"
               "no_such_option = 1\n"
               "alignment = 32\n");
    snprintf(env, sizeof env, "MPOOL_CONFIG=%s", path);
    struct run r = run_helper(true, ENV("MPOOL_VERBOSE=1", env), ARGV(DROPIN_API, "hello"), T_SHORT);
    unlink(path);
    assert_ok(&r, "hello");
    cr_assert_eq(count_lines(r.err), baseline + 3, "3 bad lines: %zu lines on stderr, expected %zu\n"
                 "  stderr: %s", count_lines(r.err), baseline + 3, r.err);
    mpool_config_t c = dropin_defaults();
    c.max_size = (size_t)256 << 20;
    c.alignment = 32;
    assert_shows_config(&r, &c);
    run_free(&r);

    /* A file that cannot be read warns once too. */
    r = run_helper(true, ENV("MPOOL_CONFIG=/nonexistent/mpool.conf"), ARGV(DROPIN_API, "hello"), T_SHORT);
    assert_ok(&r, "hello");
    cr_assert_eq(count_lines(r.err), 1, "missing config file\n  stderr: %s", r.err);
    run_free(&r);
}

/* A long config file (here 90 KB of comments before the setting) is read
 * whole, or at least not cut silently. */
Test(dropin, long_config_file_is_not_cut_silently)
{
    size_t baseline = verbose_baseline_lines();
    size_t len = 0, cap = 100000;
    char *text = malloc(cap);
    cr_assert_not_null(text);
    for (int i = 0; i < 1200; i++)
        len += (size_t)snprintf(text + len, cap - len, "# padding comment line number %05d %040d\n", i, 0);
    snprintf(text + len, cap - len, "max_size = 256M\n");
    char path[512], env[600];
    write_temp(path, sizeof path, text);
    free(text);
    snprintf(env, sizeof env, "MPOOL_CONFIG=%s", path);
    struct run r = run_helper(true, ENV("MPOOL_VERBOSE=1", env), ARGV(DROPIN_API, "hello"), T_SHORT);
    unlink(path);
    assert_ok(&r, "hello");
    char v[64];
    assert_run(&r, verbose_value(r.err, "MPOOL_MAX_SIZE", v, sizeof v));
    bool applied = !strcmp(v, "268435456");
    bool warned = count_lines(r.err) > baseline;
    cr_assert(applied || warned, "max_size = 256M at the end of a 90 KB config file was ignored without a "
              "warning\n  stderr: %s", r.err);
    run_free(&r);
}

Test(dropin, alignment_option_aligns_every_block)
{
    expect_clean_pass(ENV("MPOOL_ALIGNMENT=64"), ARGV(DROPIN_API, "align", "64"), "align", T_SHORT);
    expect_clean_pass(ENV("MPOOL_ALIGNMENT=256"), ARGV(DROPIN_API, "align", "256"), "align", T_SHORT);
}

Test(dropin, max_size_caps_the_pool)
{
    expect_clean_pass(ENV("MPOOL_MAX_SIZE=64M"), ARGV(DROPIN_API, "oom", "67108864"), "oom", T_SHORT);
}

Test(dropin, enable_debug_runs_programs_correctly)
{
    expect_clean_pass(ENV("MPOOL_ENABLE_DEBUG=1"), ARGV(DROPIN_API, "workload"), "workload", T_LONG);
    expect_clean_pass(ENV("MPOOL_ENABLE_DEBUG=1"), ARGV(DROPIN_API, "functions"), "functions", T_LONG);
    expect_clean_pass(ENV("MPOOL_ENABLE_DEBUG=1"), ARGV(DROPIN_CXX, "forms"), "forms", T_LONG);
    expect_clean_pass(ENV("MPOOL_ENABLE_DEBUG=1"), ARGV(DROPIN_HARD, "threads", "200"), "threads", T_LONG);
}

Test(dropin, log_file_receives_the_messages)
{
    char path[512], env[600];
    write_temp(path, sizeof path, "");
    snprintf(env, sizeof env, "MPOOL_LOG_FILE=%s", path);
    struct run r = run_helper(true, ENV(env, "MPOOL_ON_ERROR=log"), ARGV(DROPIN_API, "bad_free"), T_SHORT);
    int fd = open(path, O_RDONLY);
    unlink(path);
    cr_assert(fd >= 0);
    char *log = slurp_fd(fd);
    close(fd);
    assert_ok(&r, "bad_free");
    assert_run(&r, r.err[0] == '\0');
    char ptr[64];
    first_line(r.out, ptr, sizeof ptr);
    cr_assert_eq(count_lines(log), 1, "log file: %s", log);
    cr_assert_eq(LINES_WITH(log, "mpool", ptr), 1, "log file does not name %s: %s", ptr, log);
    free(log);
    run_free(&r);
}

/* The count of successful allocations in the text report at exit (its
 * "successful ... N allocations" line), or -1 if there is none. */
static long exit_report_allocations(const char *err)
{
    const char *line = strstr(err, "successful");
    if (!line)
        return -1;
    const char *p = line + strlen("successful");
    while (*p == ' ')
        p++;
    char *end;
    long n = strtol(p, &end, 10);
    return end != p && !strncmp(end, " allocations", 12) ? n : -1;
}

/* The parts of the text report (mpool_report) a person looks for: the
 * title, the class table's header and the health line with its verdict,
 * once each. */
static void assert_text_report(struct run *r)
{
    assert_run(r, LINES_WITH(r->err, "mpool report: default pool") == 1);
    assert_run(r, LINES_WITH(r->err, "in use / capacity") == 1);
    const char *health = strstr(r->err, "\nhealth ");
    char line[512] = "";
    if (health)
        first_line(health + 1, line, sizeof line);
    assert_run(r, strstr(line, "HEALTHY") || strstr(line, "WARNING") || strstr(line, "CRITICAL"));
}

Test(dropin, show_stats_reports_at_exit)
{
    struct run r = run_helper(true, ENV("MPOOL_SHOW_STATS=1"), ARGV(DROPIN_API, "workload"), T_LONG);
    assert_ok(&r, "workload");
    assert_text_report(&r);
    long n = exit_report_allocations(r.err);
    assert_run(&r, n >= 20000); /* the workload alone makes about 30000 allocations */
    run_free(&r);

    /* Also when the program closed stderr before exiting. */
    r = run_helper(true, ENV("MPOOL_SHOW_STATS=1"), ARGV(DROPIN_API, "close_stderr"), T_SHORT);
    assert_ok(&r, "close_stderr");
    assert_text_report(&r);
    assert_run(&r, exit_report_allocations(r.err) > 100);
    run_free(&r);

    /* Off by default. */
    r = run_helper(true, NO_ENV, ARGV(DROPIN_API, "hello"), T_SHORT);
    assert_ok(&r, "hello");
    assert_run(&r, r.err[0] == '\0');
    run_free(&r);
}

#endif /* MPOOL_DROPIN_PATH */
