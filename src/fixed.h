/*
 * fixed.h - the structures of fixed-size object pools, shared by fixed.c
 * (chunks, objects, the single-thread paths; the rules are at its top) and
 * fixed_cache.c (the per-thread caches of thread-safe pools, the registry
 * and fork()); and what the reports read of a pool's fixed pools.
 */
#ifndef MPOOL_FIXED_H
#define MPOOL_FIXED_H

#include "pool.h"

#define FIXED_MAGIC 0x6d706f6f6c465031ULL /* "mpoolFP1": a live fixed pool */
#define CHUNK_MAGIC 0x6d706f6f6c464331ULL /* "mpoolFC1": a live chunk */

struct fixed_chunk {
    /* What the single-thread paths touch: one cache line. */
    void *free;               /* free objects, linked through their first word */
    char *fresh;              /* objects from here to end were never handed out */
    char *end;                /* objs + count * stride */
    char *objs;               /* object 0 */
    uint64_t inverse;         /* of fp->stride (common.h: size_inverse) */
    uint64_t count;           /* objects (64 bits: the free compares it with a register) */
    uint8_t shift;            /* of stride */
    bool listed;              /* on fp->avail */
    bool initial;             /* made by create: reset keeps it */
    bool huge;                /* a huge block of the parent, else a page run */
    struct mpool_fixed *fp;   /* owner */
    /* 64 bytes */
    uint64_t magic;           /* CHUNK_MAGIC while the chunk belongs to fp */
    struct fixed_chunk *next; /* fp's chunks */
    struct fixed_chunk *avail_next;
    size_t bytes;             /* header, live map and objects */
    uint8_t live[];           /* live[i]: 1 while object i is live, else 0 (atomic if thread safe) */
};
_Static_assert(offsetof(struct fixed_chunk, magic) == 64, "the fast fields fill one cache line");

struct fixed_cache; /* fixed_cache.c */

struct mpool_fixed {
    struct fixed_chunk *fast;   /* the single-thread inline paths: cur, else fixed_none */
    struct fixed_chunk *hint;   /* single thread: the chunk of the last free outside cur, else
                                   fixed_none (frees come in runs from one chunk) */
    size_t stride;
    uint64_t magic;
    bool thread_safe;
    struct fixed_chunk *cur;    /* the chunk allocation takes from (NULL: none yet) */
    struct fixed_chunk *avail;  /* other chunks with free objects */
    struct fixed_chunk *chunks; /* every chunk */
    size_t capacity;            /* atomic reads: objects in all chunks */
    size_t nchunks, bytes;
    size_t align;               /* of every object: max(alignment, 8) */
    uint64_t id;                /* unique in the process, never reused */
    mpool_lock_t lock;          /* chunks and lists, if thread safe */
    struct fixed_cache *caches; /* the threads' caches of this pool (registry) */
    struct mpool_pool *parent;
    struct mpool_fixed *next, *prev;         /* parent->fixed_pools (registry) */
    struct mpool_fixed *all_next, *all_prev; /* every fixed pool of the process (registry) */
    uint64_t failures, invalid_frees;        /* atomic: for the parent's report */
    struct error_policy policy;
    mpool_fixed_config_t config;
};

enum fixed_status { FIXED_OK = 0, FIXED_AT_MAX, FIXED_PARENT_FULL, FIXED_NOMEM };

/* Index of object p of chunk c (p is an object start). */
static inline uint64_t chunk_index(const struct fixed_chunk *c, const void *p)
{
    return (((uintptr_t)p - (uintptr_t)c->objs) >> c->shift) * c->inverse;
}

/* Object i becomes live (it was free).  A thread-safe pool's store is
 * atomic: the free that reads it may run on another thread. */
static inline void chunk_set_live(struct mpool_fixed *fp, struct fixed_chunk *c, uint64_t i)
{
    if (fp->thread_safe)
        __atomic_store_n(&c->live[i], 1, __ATOMIC_RELAXED);
    else
        c->live[i] = 1;
}

/* fixed.c, for the caches: a free object of fp and its chunk (the object
 * stays marked free), growing the pool only if may_grow; NULL with *st if
 * the pool cannot grow, or (FIXED_OK) if it may not.  And the way back: free
 * object p of chunk c onto its chunk's list.  Both under fp->lock. */
void *fixed_take_locked(struct mpool_fixed *fp, struct fixed_chunk **chunk, bool may_grow,
                        enum fixed_status *st) mpool_internal;
void fixed_give_locked(struct mpool_fixed *fp, struct fixed_chunk *c, void *p) mpool_internal;

/* fixed.c: the exact test of a free.  If p is a live object of fp, marks it
 * free and returns its chunk; else reports it as who (invalid pointer or
 * double free) and returns NULL, nothing changed.  hint (NULL: none) is a
 * chunk of fp tried before the lookup through the parent's chunk map. */
struct fixed_chunk *fixed_free_check(struct mpool_fixed *fp, void *p, struct fixed_chunk *hint,
                                     const char *who) mpool_internal;

/* ---- fixed_cache.c ---------------------------------------------------------- */

/* The registry lock: the threads' slot tables, every pool's list of caches,
 * every parent's list of fixed pools and the process-wide list of them. */
void fixed_registry_take(void) mpool_internal;
void fixed_registry_give(void) mpool_internal;

/* fp joins or leaves the process-wide list (registry held). */
void fixed_registry_add_locked(struct mpool_fixed *fp) mpool_internal;
void fixed_registry_remove_locked(struct mpool_fixed *fp) mpool_internal;

/* A thread-safe pool's allocation from the calling thread's cache (byte set);
 * NULL with *st. */
void *fixed_cache_alloc(struct mpool_fixed *fp, enum fixed_status *st) mpool_internal;

/* A thread-safe pool's free of p (not NULL) as who: checked by
 * fixed_free_check with the chunk of the thread's last free as the hint,
 * then into the thread's cache. */
void fixed_cache_free(struct mpool_fixed *fp, void *p, const char *who) mpool_internal;

/* fp is going (registry held): every thread's cache of it is orphaned, the
 * calling thread's unmapped at once. */
void fixed_caches_orphan_locked(struct mpool_fixed *fp) mpool_internal;

/* fp is reset (registry held): its caches forget their objects. */
void fixed_caches_empty_locked(struct mpool_fixed *fp) mpool_internal;

/* fork(): the prepare handler takes the registry and every thread-safe
 * pool's lock; the parent's gives them back; the child's drops the caches
 * of the threads it does not have, then gives them back.  Called by the
 * default pool's handlers (pool.c), outside its own locks. */
void fixed_fork_prepare(void) mpool_internal;
void fixed_fork_parent(void) mpool_internal;
void fixed_fork_child(void) mpool_internal;

/* ---- Reports ------------------------------------------------------------------ */

/* One fixed pool as mpool_report shows it. */
struct fixed_summary {
    const void *fp;       /* the mpool_fixed_t, as an identity */
    size_t object_size;   /* config.object_size */
    size_t stride;        /* bytes between objects (size rounded to the alignment) */
    size_t in_use;        /* live objects */
    size_t capacity;      /* objects the chunks hold */
    size_t chunks;        /* chunks taken from the pool */
    size_t bytes;         /* bytes of those chunks */
    bool thread_safe;
    size_t failures;      /* allocations refused (max_count, memory) */
    size_t invalid_frees; /* frees refused (invalid pointer, double free) */
};

/* Calls fn for every fixed pool of pool, newest first, under the registry
 * (fn must not create or destroy fixed pools); returns how many.  Allocates
 * nothing. */
size_t fixed_pool_each(struct mpool_pool *pool, void (*fn)(const struct fixed_summary *s, void *arg),
                       void *arg) mpool_internal;

#endif /* MPOOL_FIXED_H */
