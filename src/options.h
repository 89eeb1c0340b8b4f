/*
 * options.h - the one table of options: every mpool_config_t field of the
 * default pool, plus the options of the process (verbose, statistics at
 * exit and in a file, log file), with their names, defaults and meaning.
 *
 * Sources, later ones winning: built-in defaults, the file named by
 * MPOOL_CONFIG ("name = value" lines, '#' comments), then the environment
 * (MPOOL_<NAME>).  An invalid value gives one warning line and keeps what was
 * there.  Nothing here allocates: the file is read with read(2) into static
 * storage and messages are written with write(2).
 */
#ifndef MPOOL_OPTIONS_H
#define MPOOL_OPTIONS_H

#include <stdbool.h>

#include "common.h"
#include "mpool.h"

/* Options of the process that are not pool configuration. */
struct process_options {
    bool verbose;       /* print the options in effect at start */
    bool show_stats;    /* print a report of the default pool at exit */
    bool leak_report;   /* print the default pool's live blocks by call site at exit (debug mode) */
    bool fast_unwind;   /* debug mode captures call sites with libunwind when present (callsite.c) */
    int log_fd;         /* where the default pool's messages go (-1: stderr) */
    double stats_interval; /* seconds between two lines of stats_fd (0: only the line at exit) */
    int stats_fd;       /* the statistics file, opened for appending (-1: none) */
};

/* Fills *cfg and *proc for the default pool.  dropin: the defaults of the
 * malloc replacement (invalid frees abort, as in glibc). */
void options_load(mpool_config_t *cfg, struct process_options *proc, bool dropin) mpool_internal;

/* A logger (mpool_logger_fn) writing one line to the file descriptor in arg. */
void options_fd_logger(mpool_error_t err, const char *message, void *arg) mpool_internal;

#endif /* MPOOL_OPTIONS_H */
