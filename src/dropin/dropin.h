/*
 * dropin/dropin.h - what the parts of the malloc replacement share: the
 * export marker and the call counts reported at exit (MPOOL_SHOW_STATS).
 */
#ifndef MPOOL_DROPIN_H
#define MPOOL_DROPIN_H

#include <stdatomic.h>
#include <stdbool.h>

#include "common.h"

#define DROPIN_API __attribute__((visibility("default")))

extern bool dropin_counting mpool_internal; /* set at start-up when show_stats is on */
extern atomic_size_t dropin_allocations mpool_internal;
extern atomic_size_t dropin_frees mpool_internal;

static inline void dropin_count(atomic_size_t *counter)
{
    if (unlikely(dropin_counting))
        atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

#endif /* MPOOL_DROPIN_H */
