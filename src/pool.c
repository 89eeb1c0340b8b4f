/*
 * pool.c - pools as objects: configuration, creation, destruction, reset,
 * the default pool, thread-safety switch, trimming and usage.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "callsite.h"
#include "debug.h"
#include "fixed.h"
#include "heap.h"
#include "huge.h"
#include "large.h"
#include "options.h"
#include "pool.h"
#include "zero.h"
#include "prim.h"
#include "sanitize.h"
#include "slab.h"

#define MAX_CONFIG_ALIGNMENT ((size_t)1 << 30)

mpool_config_t mpool_config_default(void)
{
    mpool_config_t c;
    memset(&c, 0, sizeof c);
    c.initial_size = (size_t)1 << 20;
    c.max_size = 0;
    c.growth_factor = 2.0;
    c.min_block_size = 16;
    c.max_block_size = (size_t)2 << 20; /* the largest page run (BUDDY_MAX_RUN) */
    c.alignment = 16;
    c.thread_safe = true;
    c.enable_statistics = true;
    c.enable_debug = false;
    c.on_error = MPOOL_ON_ERROR_RETURN;
    c.logger = NULL;
    c.logger_arg = NULL;
    c.timing_sample_rate = 0;
    c.health_warning_usage = 0.80;
    c.health_critical_usage = 0.95;
    c.health_warning_fragmentation = 0.50;
    c.health_warning_error_rate = 0.01;
    c.health_critical_error_rate = 0.10;
    return c;
}

/* The reason a configuration is refused, or NULL if it is good. */
static const char *config_problem(const mpool_config_t *c)
{
    if (!(c->growth_factor >= 1.0) || isinf(c->growth_factor))
        return "growth_factor must be a finite number >= 1.0";
    if (!is_pow2(c->alignment) || c->alignment > MAX_CONFIG_ALIGNMENT)
        return "alignment must be a power of two up to 1 GiB";
    if (c->min_block_size < sizeof(void *))
        return "min_block_size must be at least sizeof(void *)";
    if (c->min_block_size > c->max_block_size)
        return "min_block_size must not exceed max_block_size";
    if (c->max_size && c->initial_size > c->max_size)
        return "initial_size must not exceed max_size";
    if ((unsigned)c->on_error > MPOOL_ON_ERROR_ABORT)
        return "on_error must be RETURN, LOG or ABORT";
    return NULL;
}

/* Points the inline paths at heap0 when they may use it: a pool that is
 * neither thread safe nor in debug mode (heap.h). */
static void pool_set_fast(struct mpool_pool *pool)
{
    pool->fast_heap = !pool->thread_safe && !pool->debug ? pool->heap0 : &mpool_heap_empty;
}

/* Fills a zeroed pool from a valid configuration and reserves initial_size. */
static enum buddy_status pool_init(struct mpool_pool *pool, const mpool_config_t *cfg)
{
    pool->config = *cfg;
    pool->magic = POOL_MAGIC;
    pool->thread_safe = cfg->thread_safe;
    pool->debug = cfg->enable_debug || san_under_memcheck(); /* memcheck sees blocks through debug.c */
    pool->timing = cfg->timing_sample_rate > 0;
    stats_pool_init(pool);
    pool->align = cfg->alignment < 8 ? 8 : cfg->alignment;
    pool->min_block = cfg->min_block_size < 16 ? 16 : cfg->min_block_size; /* a link and a mark */
    pool->max_block = cfg->max_block_size;
    pool->policy.on_error = cfg->on_error;
    pool->policy.on_failure = cfg->on_error;
    pool->policy.logger = cfg->logger;
    pool->policy.logger_arg = cfg->logger_arg;
    pool->budget.held = 0;
    pool->budget.max = cfg->max_size;
    pool->key = heap_new_key(pool);
    pool->link = heap_new_key(&pool->link);
    buddy_init(&pool->buddy, pool, &pool->budget, cfg->growth_factor);
    lock_init(&pool->huge.lock);
    lock_init(&pool->arenas.lock);
    for (unsigned i = 0; i < CLASS_COUNT; i++) {
        struct sclass *c = &pool->cls[i];
        c->block_size = (uint32_t)sizeclass_size(i);
        c->slab_pages = (uint32_t)sizeclass_slab_pages(c->block_size);
    }
    for (size_t size = 0; size <= SMALL_MAX; size++) {
        size_t req = size < pool->min_block ? pool->min_block : size;
        size_t rounded = align_up(req, pool->align);
        bool slab = size <= pool->max_block && pool->align <= PAGE_SIZE && rounded <= SLAB_MAX;
        pool->size_class[size] = slab && size > 0 ? (uint8_t)sizeclass_of(rounded) : CLASS_NONE; /* 0: zero.h */
    }
    pool->fast_heap = &mpool_heap_empty;
    if (!heap_pool_init(pool) || (pool->debug && !debug_pool_init(pool)))
        return BUDDY_NOMEM;
    pool_set_fast(pool);
    if (!cfg->initial_size)
        return BUDDY_OK;
    enum buddy_status st = buddy_reserve(&pool->buddy, cfg->initial_size);
    return st == BUDDY_FULL ? BUDDY_OK : st; /* rounding past max_size: grow on demand */
}

static void pool_release_memory(struct mpool_pool *pool)
{
    debug_pool_forget(pool, true);
    heap_pool_destroy(pool);
    huge_release_all(pool);
    zero_release_all(pool);
    buddy_destroy(&pool->buddy);
    lock_fini(&pool->huge.lock);
}

static size_t pool_struct_size(void) { return align_up(sizeof(struct mpool_pool), PAGE_SIZE); }

mpool_t *mpool_create(const mpool_config_t *config)
{
    mpool_config_t cfg = config ? *config : mpool_config_default();
    struct error_policy policy = error_policy_of(cfg.on_error, cfg.logger, cfg.logger_arg);
    const char *problem = config_problem(&cfg);
    if (problem) {
        error_raise(&policy, MPOOL_ERR_INVALID_ARGUMENT, 0, "mpool_create: invalid configuration: %s",
                    problem);
        return NULL;
    }
    struct mpool_pool *pool = prim_map(pool_struct_size(), PAGE_SIZE, 0);
    if (!pool) {
        error_raise(&policy, MPOOL_ERR_OUT_OF_MEMORY, 0, "mpool_create: out of memory for the pool");
        return NULL;
    }
    enum buddy_status st = pool_init(pool, &cfg);
    if (st != BUDDY_OK) {
        pool_release_memory(pool);
        (void)prim_unmap(pool, pool_struct_size());
        error_raise(&policy, MPOOL_ERR_OUT_OF_MEMORY, 0,
                    "mpool_create(initial_size=%zu): out of memory", cfg.initial_size);
        return NULL;
    }
    return pool;
}

void mpool_destroy(mpool_t *pool)
{
    if (!pool)
        return;
    if (pool->is_default) {
        error_raise(&pool->policy, MPOOL_ERR_INVALID_ARGUMENT, 0,
                    "mpool_destroy(%p): the default pool cannot be destroyed", (void *)pool);
        return;
    }
    arena_pool_release(pool);
    if (pool->fixed_pools.end_all)
        pool->fixed_pools.end_all(pool);
    heap_pool_sweep(pool, true); /* double frees no allocation met yet */
    pool->magic = 0;
    pool_release_memory(pool);
    (void)prim_unmap(pool, pool_struct_size()); /* refused: the mapping outlives the pool, unused */
}

void mpool_reset(mpool_t *pool)
{
    if (!pool)
        pool = mpool_default();
    /* No other thread may use the pool now (its blocks are going), so no locks. */
    arena_pool_release(pool);
    if (pool->fixed_pools.end_all)
        pool->fixed_pools.end_all(pool);
    stats_pool_reset(pool);
    debug_pool_forget(pool, false);
    heap_pool_reset(pool);
    huge_release_all(pool);
    zero_reset(pool);
    large_cache_forget(pool);
    buddy_reset(&pool->buddy);
    pool->large_used = 0;
}

size_t mpool_trim(mpool_t *pool)
{
    if (!pool)
        pool = mpool_default();
    size_t released = 0;
    heap_pool_trim(pool, &released);
    large_cache_flush(pool);
    released += huge_trim(pool);
    return released + buddy_trim(&pool->buddy, pool->thread_safe);
}

/* ---- The default pool --------------------------------------------------- */

struct mpool_pool mpool_default_pool;
static struct process_options default_process;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
bool mpool_default_ready; /* atomic */
static bool fork_handlers_done; /* atomic */

/* Defined only in the malloc replacement (dropin/), whose default pool
 * aborts on invalid frees unless configured otherwise. */
extern const bool mpool_dropin_build __attribute__((weak));

/* Configures the default pool from the option table (options.h): the
 * environment and the MPOOL_CONFIG file.  A configuration that is invalid as a
 * whole is reported and replaced by the defaults. */
static void default_init(void)
{
    mpool_config_t cfg;
    bool dropin = &mpool_dropin_build != NULL;
    options_load(&cfg, &default_process, dropin);
    const char *problem = config_problem(&cfg);
    if (problem) {
        char text[200];
        snprintf(text, sizeof text, "invalid options for the default pool (%s); using the defaults", problem);
        error_write_line(default_process.log_fd, text);
        mpool_config_t fallback = mpool_config_default();
        fallback.on_error = cfg.on_error;
        fallback.logger = cfg.logger;
        fallback.logger_arg = cfg.logger_arg;
        cfg = fallback;
    }
    pool_init(&mpool_default_pool, &cfg);
    mpool_default_pool.is_default = true;
    mpool_default_pool.tls_heap = !mpool_default_pool.debug;
    if (dropin) /* malloc fails by returning NULL; only misuse follows on_error */
        mpool_default_pool.policy.on_failure = MPOOL_ON_ERROR_RETURN;
    __atomic_store_n(&mpool_default_ready, true, __ATOMIC_RELEASE);
}

/* fork() in a threaded program: the child must not inherit a lock of the
 * default pool, or of the fixed pools (fixed_cache.c), held by a thread that
 * does not exist in the child. */
static void default_fork_prepare(void)
{
    fixed_fork_prepare(); /* its locks nest outside the pool's */
    heap_fork_prepare();
    lock_take(&mpool_default_pool.buddy.lock, mpool_default_pool.thread_safe);
    lock_take(&mpool_default_pool.huge.lock, mpool_default_pool.thread_safe);
}

static void default_fork_parent(void)
{
    lock_give(&mpool_default_pool.huge.lock, mpool_default_pool.thread_safe);
    lock_give(&mpool_default_pool.buddy.lock, mpool_default_pool.thread_safe);
    heap_fork_parent();
    fixed_fork_parent();
}

static void default_fork_child(void)
{
    lock_give(&mpool_default_pool.huge.lock, mpool_default_pool.thread_safe);
    lock_give(&mpool_default_pool.buddy.lock, mpool_default_pool.thread_safe);
    heap_fork_child();
    fixed_fork_child();
}

mpool_t *mpool_default(void)
{
    if (likely(__atomic_load_n(&mpool_default_ready, __ATOMIC_ACQUIRE)))
        return &mpool_default_pool;
    pthread_once(&default_once, default_init);
    /* After the pool is ready: registering may allocate, and then finds it. */
    if (!__atomic_exchange_n(&fork_handlers_done, true, __ATOMIC_ACQ_REL)) {
        pthread_atfork(default_fork_prepare, default_fork_parent, default_fork_child);
        if (mpool_default_pool.debug)
            debug_register_fork();
        /* Not from here in the replacement, where this may be the loader's
         * first malloc: its constructor does it (callsite.c). */
        if (mpool_default_pool.debug && &mpool_dropin_build == NULL)
            callsite_prepare(default_process.fast_unwind);
    }
    return &mpool_default_pool;
}

const struct process_options *pool_process_options(void)
{
    mpool_default();
    return &default_process;
}

/* ---- Threads and usage -------------------------------------------------- */

void mpool_set_thread_safe(mpool_t *pool, bool on)
{
    if (!pool)
        pool = mpool_default();
    heap_pool_gather(pool); /* every slab into heap0, which a pool that is not thread safe uses */
    pool->thread_safe = on;
    pool_set_fast(pool);
}

bool mpool_is_thread_safe(const mpool_t *pool)
{
    if (!pool)
        pool = mpool_default();
    return pool->thread_safe;
}

mpool_usage_t mpool_get_usage(const mpool_t *cpool)
{
    struct mpool_pool *pool = (struct mpool_pool *)(cpool ? cpool : mpool_default());
    mpool_usage_t u = {0, 0, 0, 0.0};
    u.used = heap_pool_used_bytes(pool);
    lock_take(&pool->buddy.lock, pool->thread_safe);
    u.used += pool->large_used;
    lock_give(&pool->buddy.lock, pool->thread_safe);
    lock_take(&pool->huge.lock, pool->thread_safe);
    u.used += pool->huge.usable;
    lock_give(&pool->huge.lock, pool->thread_safe);
    u.used -= debug_quarantine_bytes(pool); /* freed debug blocks are held, not used */
    u.total = budget_held(&pool->budget);
    if (u.used > u.total) /* a racing grow; never report more used than held */
        u.total = u.used;
    u.free = u.total - u.used;
    u.usage_percent = u.total ? 100.0 * (double)u.used / (double)u.total : 0.0;
    return u;
}
