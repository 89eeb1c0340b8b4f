/*
 * debug.h - debug mode (config.enable_debug, MPOOL_ENABLE_DEBUG=1): every
 * block of a debug pool carries a header with its size and call sites and
 * canaries on both sides; freed blocks wait in a quarantine; every problem
 * is reported in one line.  debug.c states the layout and the rules.
 *
 * The block layer (alloc.c) calls in at the entry of its general functions
 * only; a debug pool never takes the inline paths (pool.c: fast_heap).
 */
#ifndef MPOOL_DEBUG_MODE_H
#define MPOOL_DEBUG_MODE_H

#include "pool.h"

/* Fill bytes: new blocks (not calloc), freed blocks, canaries. */
#define DEBUG_FILL_ALLOC 0xAB
#define DEBUG_FILL_FREE 0xDF
#define DEBUG_FILL_CANARY 0xCB

/* Number of live debug pools (atomic): the hooks of the paths that may see a
 * debug block with a NULL pool (free, realloc, usable size) test it first. */
extern int debug_pools_live mpool_internal;

static inline bool debug_any(void)
{
    return unlikely(__atomic_load_n(&debug_pools_live, __ATOMIC_RELAXED) != 0);
}

/* Sets up debug mode for a pool being created (pool->debug is set); false if
 * there is no memory for its state. */
bool debug_pool_init(struct mpool_pool *pool) mpool_internal;

/* The pool's blocks go (reset, or destroy when `destroying`): forgets them
 * and its quarantine, making protected pages accessible again first. */
void debug_pool_forget(struct mpool_pool *pool, bool destroying) mpool_internal;

/* The call that allocated a block, which says how it must be released:
 * the malloc family (and the mpool_* API) with free, operator new with
 * delete, operator new[] with delete[]. */
enum debug_form { DEBUG_FORM_MALLOC = 0, DEBUG_FORM_NEW, DEBUG_FORM_NEW_ARRAY };

/* What a release call says of the block: the form of the call, and the size
 * and alignment it passes (DEBUG_ANY: it passes none; alignment 0: it asks
 * for an unaligned block, as free_sized and unaligned delete do).  Each
 * must be exactly what the allocation asked for. */
#define DEBUG_ANY SIZE_MAX
struct debug_release {
    enum debug_form form;
    size_t size;
    size_t align;
};

/* alloc_any of a debug pool: a block of size bytes inside a pool block of
 * size plus the overhead, recording form and the alignment asked (0:
 * none).  *usable gets size; *zeroed (optional) false. */
void *debug_alloc(struct mpool_pool *pool, size_t size, size_t align, enum debug_form form, const char *who,
                  const void *old, bool *zeroed, size_t *usable) mpool_internal mpool_noinline;

enum debug_verdict {
    DEBUG_NOT_MINE, /* p is no debug block and pool no debug pool: the normal path decides */
    DEBUG_DONE,     /* freed */
    DEBUG_REFUSED   /* reported (double, invalid, wrong pool); nothing changed */
};

/* Frees p if it is a live debug block of pool (of any pool if NULL) that
 * release rel fits (NULL: a plain free, which fits any block of the malloc
 * family); a block it does not fit is reported and stays live. */
enum debug_verdict debug_free(struct mpool_pool *pool, void *p, const char *who,
                              const struct debug_release *rel) mpool_internal mpool_noinline;

/* mpool_realloc of a debug block (p not NULL): true with *out set if it
 * was (allocates, copies, frees: never in place), false if not a debug matter. */
bool debug_realloc(struct mpool_pool *pool, void *p, size_t size, void **out) mpool_internal mpool_noinline;

/* Whether p is a live debug block (of pool, any pool if NULL) and its
 * requested size; false if neither p nor pool is a debug matter. */
bool debug_usable(const struct mpool_pool *pool, const void *p, bool *live, size_t *out) mpool_internal mpool_noinline;

/* Verifies the canaries of every live block and the fills of the quarantine;
 * reports each problem and returns their number (0 for a pool not in debug
 * mode). */
size_t debug_check(struct mpool_pool *pool) mpool_internal;

/* Bytes of the pool blocks in the pool's quarantine (0 if not in debug mode). */
size_t debug_quarantine_bytes(struct mpool_pool *pool) mpool_internal;

/* A live block as the leak report sees it (leak.c). */
#define DEBUG_SITE_FRAMES 10
struct debug_live {
    size_t size;
    void *site[DEBUG_SITE_FRAMES]; /* return addresses of its allocation, innermost first */
};

/* Copies up to cap of the pool's live blocks into out; *live gets how many
 * there are.  Returns how many were copied. */
size_t debug_live_snapshot(struct mpool_pool *pool, struct debug_live *out, size_t cap, size_t *live) mpool_internal;
size_t debug_live_count(struct mpool_pool *pool) mpool_internal;

/* fork(): the debug lock around the call (registered by debug_pool_init, or
 * by mpool_default for the default pool). */
void debug_register_fork(void) mpool_internal;

#endif /* MPOOL_DEBUG_MODE_H */
