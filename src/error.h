/*
 * error.h - how a failed call is reported: the thread's last error, errno,
 * and the pool's policy (return quietly, log one line, or log and abort).
 */
#ifndef MPOOL_ERROR_H
#define MPOOL_ERROR_H

#include "common.h"
#include "mpool.h"

struct error_policy {
    mpool_on_error_t on_error;   /* misuse: invalid pointers */
    mpool_on_error_t on_failure; /* every other failure (out of memory, pool full, bad arguments) */
    mpool_logger_fn logger; /* NULL: one line on stderr */
    void *logger_arg;
};

/* The policy of a configuration being checked: on_error for every failure,
 * RETURN if on_error is out of range (the configuration is refused next). */
static inline struct error_policy error_policy_of(mpool_on_error_t on_error, mpool_logger_fn logger, void *arg)
{
    if ((unsigned)on_error > MPOOL_ON_ERROR_ABORT)
        on_error = MPOOL_ON_ERROR_RETURN;
    return (struct error_policy){on_error, on_error, logger, arg};
}

/* Writes "mpool: <text>\n" to fd (stderr if fd < 0) with one write(2). */
void error_write_line(int fd, const char *text) mpool_internal;

/* Writes all of [text, text + len) to fd, again after EINTR and short
 * writes; false on an error. */
bool error_write_all(int fd, const char *text, size_t len) mpool_internal;

/* Records err for this thread, sets errno (ENOMEM for out of memory and pool
 * full, EINVAL otherwise, unless errno_value is non-zero), then follows the
 * policy with a message formatted like printf ("mpool_free: ..."). */
mpool_noinline void error_raise(const struct error_policy *policy, mpool_error_t err, int errno_value,
                                const char *fmt, ...)
    __attribute__((format(printf, 4, 5))) mpool_internal;

#endif /* MPOOL_ERROR_H */
