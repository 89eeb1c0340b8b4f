/*
 * stats.c - statistics snapshots (work in progress: filled in by the counting
 * commit that follows).
 */
#include <string.h>

#include "pool.h"

bool mpool_get_stats(const mpool_t *pool, mpool_stats_t *out)
{
    if (!out)
        return false;
    memset(out, 0, sizeof *out);
    mpool_usage_t u = mpool_get_usage(pool);
    out->total_bytes = out->peak_total_bytes = u.total;
    out->used_bytes = out->peak_used_bytes = u.used;
    out->statistics_enabled = true;
    return true;
}

void mpool_reset_stats(mpool_t *pool)
{
    (void)pool;
}
