/*
 * test_policy.c - error strings, the per-thread last error, on_error policies.
 *
 * mpool_strerror() describes every code in one line; mpool_last_error() is
 * per thread and, like errno, only failures change it.  After a failure the
 * pool follows its on_error policy: RETURN quietly, LOG once through the
 * logger (or one line on stderr), or ABORT after logging.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpool.h>

#include "testutil.h"

TestSuite(policy);

/* ---- error strings and the per-thread last error -------------------------- */

Test(policy, strerror_strings)
{
    static const mpool_error_t codes[] = {
        MPOOL_OK,
        MPOOL_ERR_OUT_OF_MEMORY,
        MPOOL_ERR_POOL_FULL,
        MPOOL_ERR_INVALID_POINTER,
        MPOOL_ERR_INVALID_ALIGNMENT,
        MPOOL_ERR_INVALID_ARGUMENT,
    };
    enum { N = sizeof codes / sizeof codes[0] };
    const char *s[N];
    for (int i = 0; i < N; i++) {
        s[i] = mpool_strerror(codes[i]);
        cr_assert_not_null(s[i], "strerror(%d) is NULL", (int)codes[i]);
        cr_assert_gt(strlen(s[i]), 0, "strerror(%d) is empty", (int)codes[i]);
        cr_assert_null(strchr(s[i], '\n'));
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(s[i], s[j], "codes %d and %d share the description \"%s\"",
                              (int)codes[i], (int)codes[j], s[i]);
    }
    cr_assert(strstr(mpool_strerror(MPOOL_ERR_POOL_FULL), "full") != NULL,
              "pool full description: \"%s\"", mpool_strerror(MPOOL_ERR_POOL_FULL));
    const char *u = mpool_strerror((mpool_error_t)42);
    cr_assert_not_null(u);
    cr_assert_gt(strlen(u), 0);
    const char *v = mpool_strerror((mpool_error_t)-1);
    cr_assert_not_null(v);
    cr_assert_gt(strlen(v), 0);
}

static void *thread_fails_differently(void *arg)
{
    mpool_error_t *out = arg;
    out[0] = mpool_last_error(); /* a new thread starts clean */
    int x;
    mpool_safe_free(NULL, &x);
    out[1] = mpool_last_error();
    return NULL;
}

Test(policy, last_error_is_per_thread)
{
    prime_error(MPOOL_ERR_INVALID_ALIGNMENT); /* sets INVALID_ALIGNMENT */
    cr_assert_null(mpool_alloc_aligned(NULL, 8, 24));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ALIGNMENT);
    mpool_error_t seen[2] = {(mpool_error_t)-1, (mpool_error_t)-1};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, thread_fails_differently, seen), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_eq(seen[0], MPOOL_OK, "a new thread's last error is %d, expected MPOOL_OK",
                 (int)seen[0]);
    cr_assert_eq(seen[1], MPOOL_ERR_INVALID_POINTER);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ALIGNMENT,
                 "another thread's failure changed this thread's last error");
}

Test(policy, success_does_not_clear_last_error)
{
    mpool_t *pool = create_or_die(NULL);
    cr_assert_null(mpool_alloc_aligned(pool, 8, 24));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ALIGNMENT);
    void *p = mpool_alloc(pool, 100);
    cr_assert_not_null(p);
    p = mpool_realloc(pool, p, 10000);
    cr_assert_not_null(p);
    void *q = mpool_calloc(pool, 3, 3);
    cr_assert_not_null(q);
    mpool_free(pool, p);
    cr_assert(mpool_safe_free(pool, q));
    mpool_t *other = create_or_die(NULL);
    mpool_destroy(other);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ALIGNMENT,
                 "a successful call changed the last error (it works like errno)");
    mpool_destroy(pool);
}

/* ---- on_error policies --------------------------------------------------- */

typedef struct log_capture {
    int calls;
    mpool_error_t last_err;
    char last_msg[512];
    void *arg_seen;
} log_capture_t;

static void capture_logger(mpool_error_t err, const char *message, void *arg)
{
    log_capture_t *lc = arg;
    lc->calls++;
    lc->last_err = err;
    lc->arg_seen = arg;
    snprintf(lc->last_msg, sizeof lc->last_msg, "%s", message ? message : "(null)");
}

static mpool_t *logging_pool(log_capture_t *lc, mpool_on_error_t policy)
{
    memset(lc, 0, sizeof *lc);
    mpool_config_t c = mpool_config_default();
    c.on_error = policy;
    c.logger = capture_logger;
    c.logger_arg = lc;
    c.max_size = 4 * MiB;
    return create_or_die(&c);
}

#define assert_logged_once(lc, before, err, fname)                                              \
    do {                                                                                        \
        cr_assert_eq((lc).calls, (before) + 1, "%s: logger called %d times, expected once",     \
                     (fname), (lc).calls - (before));                                           \
        cr_assert_eq((lc).last_err, (err), "%s: logger got error %d, expected %d", (fname),     \
                     (int)(lc).last_err, (int)(err));                                           \
        cr_assert_eq((lc).arg_seen, (void *)&(lc), "logger_arg not passed through");            \
        cr_assert(strstr((lc).last_msg, (fname)) != NULL,                                       \
                  "message \"%s\" does not name %s", (lc).last_msg, (fname));                   \
        cr_assert_null(strchr((lc).last_msg, '\n'), "message is not one line: \"%s\"",          \
                       (lc).last_msg);                                                          \
        cr_assert_eq(mpool_last_error(), (err));                                                \
    } while (0)

static void assert_msg_has_pointer(const log_capture_t *lc, const void *p)
{
    char want[64];
    snprintf(want, sizeof want, "%p", p);
    cr_assert(strstr(lc->last_msg, want) != NULL, "message \"%s\" does not show the pointer %s",
              lc->last_msg, want);
}

static void assert_msg_has_size(const log_capture_t *lc, size_t size)
{
    char want[64];
    snprintf(want, sizeof want, "%zu", size);
    cr_assert(strstr(lc->last_msg, want) != NULL, "message \"%s\" does not show the size %s",
              lc->last_msg, want);
}

Test(policy, log_policy_calls_logger_once_per_failure)
{
    log_capture_t lc;
    mpool_t *pool = logging_pool(&lc, MPOOL_ON_ERROR_LOG);
    int n;

    /* successes log nothing */
    void *ok = mpool_alloc(pool, 100);
    cr_assert_not_null(ok);
    void *ok2 = mpool_realloc(pool, ok, 200);
    cr_assert_not_null(ok2);
    mpool_free(pool, ok2);
    cr_assert_eq(lc.calls, 0, "successful calls were logged: \"%s\"", lc.last_msg);

    int on_stack;
    n = lc.calls;
    cr_assert_not(mpool_safe_free(pool, &on_stack));
    assert_logged_once(lc, n, MPOOL_ERR_INVALID_POINTER, "mpool_safe_free");
    assert_msg_has_pointer(&lc, &on_stack);

    void *m = malloc(32);
    cr_assert_not_null(m);
    n = lc.calls;
    mpool_free(pool, m);
    assert_logged_once(lc, n, MPOOL_ERR_INVALID_POINTER, "mpool_free");
    assert_msg_has_pointer(&lc, m);

    n = lc.calls;
    cr_assert_null(mpool_realloc(pool, m, 100));
    assert_logged_once(lc, n, MPOOL_ERR_INVALID_POINTER, "mpool_realloc");
    assert_msg_has_pointer(&lc, m);
    free(m);

    n = lc.calls;
    cr_assert_null(mpool_alloc(pool, 8 * MiB));
    assert_logged_once(lc, n, MPOOL_ERR_POOL_FULL, "mpool_alloc");
    assert_msg_has_size(&lc, 8 * MiB);

    n = lc.calls;
    cr_assert_null(mpool_alloc_aligned(pool, 100, 24));
    assert_logged_once(lc, n, MPOOL_ERR_INVALID_ALIGNMENT, "mpool_alloc_aligned");

    n = lc.calls;
    cr_assert_null(mpool_calloc(pool, SIZE_MAX, 8));
    assert_logged_once(lc, n, MPOOL_ERR_INVALID_ARGUMENT, "mpool_calloc");

    n = lc.calls;
    cr_assert_null(mpool_calloc(pool, 1, 9 * MiB));
    assert_logged_once(lc, n, MPOOL_ERR_POOL_FULL, "mpool_calloc");
    assert_msg_has_size(&lc, 9 * MiB);

    /* a failed realloc logs once, naming realloc (not an inner alloc) */
    void *p = mpool_alloc(pool, 64);
    cr_assert_not_null(p);
    n = lc.calls;
    cr_assert_null(mpool_realloc(pool, p, 10 * MiB));
    assert_logged_once(lc, n, MPOOL_ERR_POOL_FULL, "mpool_realloc");
    assert_msg_has_pointer(&lc, p);
    assert_msg_has_size(&lc, 10 * MiB);
    cr_assert(mpool_owns(pool, p));

    /* double free */
    mpool_free(pool, p);
    n = lc.calls;
    mpool_free(pool, p);
    assert_logged_once(lc, n, MPOOL_ERR_INVALID_POINTER, "mpool_free");
    assert_msg_has_pointer(&lc, p);

    cr_assert_eq(mpool_get_usage(pool).used, 0);
    mpool_destroy(pool);
}

Test(policy, log_policy_out_of_memory)
{
    log_capture_t lc;
    memset(&lc, 0, sizeof lc);
    mpool_config_t c = mpool_config_default();
    c.on_error = MPOOL_ON_ERROR_LOG;
    c.logger = capture_logger;
    c.logger_arg = &lc;
    mpool_t *pool = create_or_die(&c);
    int n = lc.calls;
    cr_assert_null(mpool_alloc(pool, SIZE_MAX / 2));
    assert_logged_once(lc, n, MPOOL_ERR_OUT_OF_MEMORY, "mpool_alloc");
    n = lc.calls;
    cr_assert_null(mpool_calloc(pool, 1, SIZE_MAX - 100));
    assert_logged_once(lc, n, MPOOL_ERR_OUT_OF_MEMORY, "mpool_calloc");
    void *p = mpool_alloc(pool, 3 * MiB);
    cr_assert_not_null(p);
    n = lc.calls;
    cr_assert_null(mpool_realloc(pool, p, SIZE_MAX / 2));
    assert_logged_once(lc, n, MPOOL_ERR_OUT_OF_MEMORY, "mpool_realloc");
    mpool_free(pool, p);
    cr_assert_eq(lc.calls, n + 1);
    mpool_destroy(pool);
}

Test(policy, return_policy_never_logs)
{
    log_capture_t lc;
    mpool_t *pool = logging_pool(&lc, MPOOL_ON_ERROR_RETURN);
    int x;
    cr_assert_not(mpool_safe_free(pool, &x));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    cr_assert_null(mpool_alloc(pool, 8 * MiB));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL);
    cr_assert_null(mpool_alloc_aligned(pool, 8, 3));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ALIGNMENT);
    cr_assert_null(mpool_calloc(pool, SIZE_MAX, 2));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ARGUMENT);
    cr_assert_null(mpool_realloc(pool, &x, 10));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    cr_assert_eq(lc.calls, 0, "RETURN policy called the logger: \"%s\"", lc.last_msg);
    mpool_destroy(pool);
}

/* LOG with a NULL logger writes one line on stderr. */
Test(policy, log_policy_null_logger_writes_stderr)
{
    mpool_config_t c = mpool_config_default();
    c.on_error = MPOOL_ON_ERROR_LOG;
    c.logger = NULL;
    mpool_t *pool = create_or_die(&c);
    int x;

    /* capture file descriptor 2 in a temporary file */
    char path[] = "/tmp/mpool_test_stderr_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    cr_assert_geq(saved, 0);
    cr_assert_geq(dup2(fd, 2), 0);

    bool r = mpool_safe_free(pool, &x);

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    cr_assert_not(r);

    char buf[1024] = {0};
    ssize_t len = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    cr_assert_gt(len, 0, "LOG policy with a NULL logger wrote nothing on stderr");
    buf[len] = '\0';
    cr_assert(strstr(buf, "mpool") != NULL, "stderr line does not mention mpool: \"%s\"", buf);
    cr_assert(strstr(buf, "mpool_safe_free") != NULL, "stderr line does not name the call: \"%s\"",
              buf);
    char *nl = strchr(buf, '\n');
    cr_assert_not_null(nl, "stderr output is not a terminated line: \"%s\"", buf);
    cr_assert_eq(nl[1], '\0', "more than one line on stderr: \"%s\"", buf);
    mpool_destroy(pool);
}

/* ABORT policy: log, then abort(). */
static void quiet_logger(mpool_error_t err, const char *message, void *arg)
{
    (void)err;
    (void)message;
    (void)arg;
}

static mpool_t *aborting_pool(mpool_logger_fn logger)
{
    mpool_config_t c = mpool_config_default();
    c.on_error = MPOOL_ON_ERROR_ABORT;
    c.logger = logger;
    c.max_size = 2 * MiB;
    mpool_t *pool = mpool_create(&c);
    if (pool == NULL)
        _exit(3); /* not the expected signal: the test fails */
    return pool;
}

Test(policy, abort_policy_safe_free_foreign, .signal = SIGABRT)
{
    mpool_t *pool = aborting_pool(quiet_logger);
    void *p = mpool_alloc(pool, 64); /* successes do not abort */
    if (p == NULL)
        _exit(4);
    mpool_free(pool, p);
    int x;
    mpool_safe_free(pool, &x);
    _exit(5); /* not reached if the policy works */
}

Test(policy, abort_policy_alloc_past_max_size, .signal = SIGABRT)
{
    mpool_t *pool = aborting_pool(quiet_logger);
    void *p = mpool_alloc(pool, 1000);
    if (p == NULL)
        _exit(4);
    mpool_alloc(pool, 16 * MiB);
    _exit(5);
}

Test(policy, abort_policy_null_logger, .signal = SIGABRT)
{
    mpool_t *pool = aborting_pool(NULL);
    mpool_alloc_aligned(pool, 8, 24);
    _exit(5);
}

static void exiting_logger(mpool_error_t err, const char *message, void *arg)
{
    (void)arg;
    if (err == MPOOL_ERR_POOL_FULL && message != NULL && strstr(message, "mpool_alloc") != NULL)
        _exit(42);
    _exit(43);
}

/* ABORT logs before it aborts: a logger that exits proves it was called. */
Test(policy, abort_policy_logs_first, .exit_code = 42)
{
    mpool_t *pool = aborting_pool(exiting_logger);
    mpool_alloc(pool, 16 * MiB);
    _exit(5);
}
