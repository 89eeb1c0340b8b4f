/*
 * dropin/dropin.h - what the parts of the malloc replacement share: the
 * export marker and the statistics it reports (monitor.c).
 */
#ifndef MPOOL_DROPIN_H
#define MPOOL_DROPIN_H

#include "common.h"

#define DROPIN_API __attribute__((visibility("default")))

/* At start-up (the replacement's constructor): opens what MPOOL_SHOW_STATS
 * and MPOOL_STATS_FILE need and starts the MPOOL_STATS_INTERVAL thread. */
void monitor_start(void) mpool_internal;

/* At exit (the replacement's destructor): stops the thread, writes the last
 * line of MPOOL_STATS_FILE and the MPOOL_SHOW_STATS report. */
void monitor_exit(void) mpool_internal;

/* Writes the text report of the default pool to MPOOL_LOG_FILE or stderr. */
void monitor_text_report(void) mpool_internal;

#endif /* MPOOL_DROPIN_H */
