/*
 * error.c - error reporting (error.h), mpool_last_error, mpool_strerror and
 * the failure of internal checks.
 *
 * Messages are formatted on the stack and written with one write(2) call:
 * reporting never allocates, so it is safe inside an allocator.
 */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* initial-exec: the variable lives in the static TLS block, so touching it
 * never calls into the dynamic loader (which could allocate, from inside
 * malloc). */
static _Thread_local mpool_error_t last_error __attribute__((tls_model("initial-exec"))) = MPOOL_OK;

void error_write_line(int fd, const char *text)
{
    char line[600];
    int n = snprintf(line, sizeof line, "mpool: %s\n", text);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (len == sizeof line - 1)
        line[len - 1] = '\n';
    ssize_t w = write(fd < 0 ? STDERR_FILENO : fd, line, len);
    (void)w;
}

void error_raise(const struct error_policy *policy, mpool_error_t err, int errno_value,
                 const char *fmt, ...)
{
    last_error = err;
    errno = errno_value ? errno_value
                        : (err == MPOOL_ERR_OUT_OF_MEMORY || err == MPOOL_ERR_POOL_FULL) ? ENOMEM
                                                                                         : EINVAL;
    mpool_on_error_t action = !policy                          ? MPOOL_ON_ERROR_RETURN
                              : err == MPOOL_ERR_INVALID_POINTER ? policy->on_error
                                                                 : policy->on_failure;
    if (action == MPOOL_ON_ERROR_RETURN)
        return;
    int saved = errno;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (policy->logger)
        policy->logger(err, msg, policy->logger_arg);
    else
        error_write_line(-1, msg);
    if (action == MPOOL_ON_ERROR_ABORT)
        abort();
    errno = saved;
}

bool error_write_all(int fd, const char *text, size_t len)
{
    while (len) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        text += n;
        len -= (size_t)n;
    }
    return true;
}

mpool_error_t mpool_last_error(void)
{
    return last_error;
}

const char *mpool_strerror(mpool_error_t err)
{
    switch (err) {
    case MPOOL_OK:
        return "success";
    case MPOOL_ERR_OUT_OF_MEMORY:
        return "out of memory";
    case MPOOL_ERR_POOL_FULL:
        return "pool full (max_size reached)";
    case MPOOL_ERR_INVALID_POINTER:
        return "invalid pointer (not a live block of the pool)";
    case MPOOL_ERR_INVALID_ALIGNMENT:
        return "invalid alignment (must be a power of two)";
    case MPOOL_ERR_INVALID_ARGUMENT:
        return "invalid argument";
    }
    return "unknown error";
}

void mpool_assert_fail(const char *file, int line, const char *expr, const char *msg)
{
    char text[512];
    snprintf(text, sizeof text, "internal check failed at %s:%d: %s (%s)", file, line, msg, expr);
    error_write_line(-1, text);
    abort();
}
