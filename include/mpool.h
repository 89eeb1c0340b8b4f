/*
 * mpool.h - the public interface of the mpool memory pool library.
 *
 * A pool serves blocks of any size: small and medium requests from size-class
 * slabs carved out of a buddy page allocator, large requests as page runs of
 * that allocator, and requests above max_block_size as blocks mapped directly
 * from the system.  Pools are independent: each has its own configuration,
 * growth limit, error policy and locks, and destroying or resetting one
 * releases every block it served at once.
 *
 * Conventions shared by every function below:
 *   - `pool` may be NULL.  Allocation then uses the process-wide default pool;
 *     calls that take an existing block use the pool that owns the block.
 *     With a non-NULL pool, a block of another pool is an invalid pointer.
 *   - Every failure returns NULL / false / 0, sets mpool_last_error() and
 *     errno (ENOMEM for out of memory, pool full and count*size overflow;
 *     EINVAL otherwise), and then follows the pool's on_error policy.
 *   - Every block is aligned to max(config.alignment, requested alignment).
 */
#ifndef MPOOL_H
#define MPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the functions the shared library exports; everything else is hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define MPOOL_API __attribute__((visibility("default")))
#else
#define MPOOL_API
#endif

#define MPOOL_VERSION_MAJOR 0
#define MPOOL_VERSION_MINOR 1
#define MPOOL_VERSION_PATCH 0

/* ---- Types ------------------------------------------------------------- */

typedef struct mpool_pool mpool_t; /* opaque */

typedef enum {
    MPOOL_OK = 0,
    MPOOL_ERR_OUT_OF_MEMORY,     /* the system refused memory, or no system could serve the size */
    MPOOL_ERR_POOL_FULL,         /* serving the request would take the pool past max_size */
    MPOOL_ERR_INVALID_POINTER,   /* not a live block (foreign, interior, freed, other pool) */
    MPOOL_ERR_INVALID_ALIGNMENT, /* alignment 0 or not a power of two */
    MPOOL_ERR_INVALID_ARGUMENT   /* bad configuration, count*size overflow, ... */
} mpool_error_t;

typedef enum {
    MPOOL_ON_ERROR_RETURN = 0, /* report through the return value and mpool_last_error() only */
    MPOOL_ON_ERROR_LOG,        /* also call the logger with a one-line message */
    MPOOL_ON_ERROR_ABORT       /* log, then abort() */
} mpool_on_error_t;

/* Receives one line (no trailing newline) describing a failed call. */
typedef void (*mpool_logger_fn)(mpool_error_t err, const char *message, void *arg);

typedef struct mpool_config {
    size_t initial_size;       /* bytes reserved at creation; default 1 MiB */
    size_t max_size;           /* bytes the pool may take from the system; 0 = no cap (default) */
    double growth_factor;      /* growth multiplies the pool size by this; >= 1.0; default 2.0 */
    size_t min_block_size;     /* smallest block served; >= sizeof(void *); default 16 */
    size_t max_block_size;     /* above this, blocks are mapped directly; default 2 MiB */
    size_t alignment;          /* every block aligned at least this much; power of two; default 16 */
    bool thread_safe;          /* usable from many threads at once; default true */
    bool enable_statistics;    /* keep statistics; default true */
    bool enable_debug;         /* canaries, fills, quarantine, call sites, exact checks on every free,
                                  mpool_report_leaks (README: debug mode); default false */
    mpool_on_error_t on_error; /* default MPOOL_ON_ERROR_RETURN */
    mpool_logger_fn logger;    /* NULL: one line on stderr */
    void *logger_arg;          /* passed to logger */
    /* Statistics (mpool_get_stats, mpool_health): */
    unsigned timing_sample_rate;      /* time one allocation and one free in N; 0 = off (default) */
    double health_warning_usage;      /* WARNING at this fraction of max_size in use; default 0.80 */
    double health_critical_usage;     /* CRITICAL at this fraction; default 0.95 */
    double health_warning_fragmentation; /* WARNING at this fragmentation; default 0.50 */
    double health_warning_error_rate; /* WARNING at this share of failed or invalid calls; default 0.01 */
    double health_critical_error_rate;/* CRITICAL at this share; default 0.10 */
} mpool_config_t;

typedef struct mpool_usage {
    size_t total;         /* bytes the pool holds from the system (regions and huge blocks) */
    size_t used;          /* bytes in live blocks, counted at their usable size */
    size_t free;          /* total - used */
    double usage_percent; /* 100 * used / total (0 when total is 0) */
} mpool_usage_t;

/* ---- Pools ------------------------------------------------------------- */

/* The default configuration (the values documented in mpool_config_t). */
MPOOL_API mpool_config_t mpool_config_default(void);

/* Creates a pool.  NULL config: defaults.  A bad configuration (growth_factor
 * < 1, alignment not a power of two, min_block_size > max_block_size,
 * initial_size > max_size, ...) returns NULL with MPOOL_ERR_INVALID_ARGUMENT. */
MPOOL_API mpool_t *mpool_create(const mpool_config_t *config);

/* Releases every block of the pool and all its memory.  NULL does nothing;
 * the default pool cannot be destroyed (the call is reported and ignored).
 * No other thread may use the pool during or after the call. */
MPOOL_API void mpool_destroy(mpool_t *pool);

/* Every block of the pool becomes free at once; the pool stays usable and keeps
 * its regions (their pages are returned to the system).  Huge blocks are
 * unmapped.  No other thread may use the pool during the call. */
MPOOL_API void mpool_reset(mpool_t *pool);

/* The process-wide pool used when a call is given a NULL pool.  Never destroyed. */
MPOOL_API mpool_t *mpool_default(void);

/* Returns memory that no block uses to the system: free pages are decommitted
 * and regions without blocks unmapped.  Returns the bytes released.  Empty
 * slabs of the calling thread's heap and of the heaps of exited threads go
 * back first, and the pages of their other slabs that hold only free blocks
 * are given back too (the slab's first page stays); other threads' heaps
 * are left alone. */
MPOOL_API size_t mpool_trim(mpool_t *pool);

/* ---- Blocks ------------------------------------------------------------ */

/* A block of at least `size` bytes.  Size 0 gives a unique address that can
 * be freed, resized and asked about like any block, and faults on any read
 * or write (unless the pool's alignment is above 16: then an ordinary block). */
MPOOL_API void *mpool_alloc(mpool_t *pool, size_t size);

/* A block aligned to `alignment` (a power of two; up to at least 1 MiB). */
MPOOL_API void *mpool_alloc_aligned(mpool_t *pool, size_t size, size_t alignment);

/* count * size zeroed bytes; overflow of count * size fails with
 * MPOOL_ERR_INVALID_ARGUMENT and errno ENOMEM. */
MPOOL_API void *mpool_calloc(mpool_t *pool, size_t count, size_t size);

/* Resizes a block, keeping its contents up to the smaller size.  ptr NULL:
 * allocates.  size 0: frees ptr and returns NULL.  On failure the old block is
 * untouched and still owned by the caller. */
MPOOL_API void *mpool_realloc(mpool_t *pool, void *ptr, size_t size);

/* Frees a block.  NULL does nothing.  Catches foreign pointers and interior
 * pointers at once, and double frees before the block could be handed out
 * twice: at once when the same block is freed twice in a row or by another
 * thread, otherwise by a later allocation, when the block's slab empties, or
 * at the latest by mpool_destroy (every free block carries the pool's secret
 * mark; mpool_check counts them too).  mpool_safe_free refuses a freed block
 * at once. */
MPOOL_API void mpool_free(mpool_t *pool, void *ptr);

/* Frees ptr if and only if it is a live block of the pool; otherwise returns
 * false with MPOOL_ERR_INVALID_POINTER and changes nothing.  NULL: false. */
MPOOL_API bool mpool_safe_free(mpool_t *pool, void *ptr);

/* The bytes usable in the live block at ptr (>= the size asked for); 0 if ptr
 * is not a live block. */
MPOOL_API size_t mpool_usable_size(const mpool_t *pool, const void *ptr);

/* True if ptr is the start of a live block of the pool (any pool if NULL). */
MPOOL_API bool mpool_owns(const mpool_t *pool, const void *ptr);

/* ---- Threads ----------------------------------------------------------- */

/* Switches thread safety on or off.  Call only while no other thread uses
 * the pool.  A thread-safe pool gives each thread a heap that owns the slabs
 * it allocates from, used without locks; a pool that is not thread safe has
 * one heap for every call.  Switching gathers every slab into that one. */
MPOOL_API void mpool_set_thread_safe(mpool_t *pool, bool on);
MPOOL_API bool mpool_is_thread_safe(const mpool_t *pool);

/* ---- Observation ------------------------------------------------------- */

/* total = bytes held from the system; used = bytes in live blocks. */
MPOOL_API mpool_usage_t mpool_get_usage(const mpool_t *pool);

/* Walks every structure of the pool and returns the number of problems found
 * (0 for a healthy pool).  Reports nothing itself, except in debug mode: then
 * it also verifies the canaries of every live block and the fill of every
 * freed block in quarantine, and reports each damaged one in one line
 * through the pool's error policy. */
MPOOL_API size_t mpool_check(const mpool_t *pool);

/* ---- Statistics, health and reports ------------------------------------ */

#define MPOOL_HISTOGRAM_BUCKETS 48   /* bucket 0: size 0; bucket k >= 1: sizes in [2^(k-1), 2^k) */
#define MPOOL_MAX_CLASSES      128   /* at least the number of size classes */

typedef struct mpool_class_stats {
    size_t block_size;    /* usable bytes of a block of this class */
    size_t in_use;        /* live blocks */
    size_t capacity;      /* blocks in the class's slabs, live or free */
    size_t peak_in_use;
    size_t allocations, frees;          /* since creation or mpool_reset_stats */
} mpool_class_stats_t;

typedef struct mpool_stats {
    size_t total_bytes, peak_total_bytes;  /* held from the system: regions and huge blocks */
    size_t used_bytes, peak_used_bytes;    /* in live blocks, at usable size */
    size_t live_blocks;
    size_t requested_bytes;                /* sizes asked for by every allocation and realloc (the new
                                              size) since creation or mpool_reset_stats */
    size_t allocated_bytes;                /* usable bytes those calls got (internal waste =
                                              1 - requested_bytes / allocated_bytes) */
    size_t allocations, frees, reallocs;   /* successful calls since creation or mpool_reset_stats */
    size_t alloc_failures;                 /* allocating calls that failed, any error */
    size_t invalid_frees;                  /* free/safe_free/realloc refused: invalid pointer */
    size_t pool_hits;                      /* allocations served from memory the pool already held */
    size_t system_allocations;             /* allocations that needed new memory from the system */
    size_t regions, huge_blocks;
    double unused_ratio;                   /* 1 - used_bytes / total_bytes (seed 000) */
    double fragmentation;                  /* documented formula, 0..1 */
    double uptime_seconds;
    size_t size_histogram[MPOOL_HISTOGRAM_BUCKETS]; /* requests by size, since creation or reset */
    size_t class_count;
    mpool_class_stats_t classes[MPOOL_MAX_CLASSES];
    size_t timing_samples;                 /* 0 unless timing is on (below) */
    double avg_alloc_ns, avg_free_ns;
    double max_alloc_ns, max_free_ns;
    /* Added by mpool beyond the fields above: */
    bool statistics_enabled;               /* false: the counted fields (documented in
                                              docs/statistics.md) are 0; the figures read from
                                              the pool's structures are still filled */
    size_t max_size;                       /* the pool's cap (0: none) */
    size_t large_blocks;                   /* live page-run blocks */
} mpool_stats_t;

typedef enum { MPOOL_HEALTHY = 0, MPOOL_WARNING, MPOOL_CRITICAL } mpool_health_status_t;
typedef struct mpool_health {
    mpool_health_status_t status;
    char message[256];    /* one line: the worst finding with its figure and threshold */
    double fragmentation, usage, error_rate;
} mpool_health_t;

typedef enum { MPOOL_REPORT_TEXT = 0, MPOOL_REPORT_JSON } mpool_report_format_t;
typedef void (*mpool_write_fn)(const char *text, size_t len, void *arg);

/* One consistent snapshot of the pool's figures (NULL pool: the default
 * pool); false with MPOOL_ERR_INVALID_ARGUMENT if out is NULL.  Exact while
 * no other thread uses the pool; under threads every figure is a value the
 * pool had recently, never negative, wrapped or torn. */
MPOOL_API bool mpool_get_stats(const mpool_t *pool, mpool_stats_t *out);

/* Zeroes the counters, the histogram and the timings; peaks become the
 * current figures. */
MPOOL_API void mpool_reset_stats(mpool_t *pool);

/* The pool's health verdict with the figure that decided it.  (In C++ the
 * function hides the struct's tag, which -Wshadow reports; mpool_health_t
 * names the type.) */
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
MPOOL_API mpool_health_t mpool_health(const mpool_t *pool);
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* Writes a report of the pool (text for a person, or one JSON object) through
 * write (NULL: stderr), in pieces; never allocates from the pool.  False if
 * the pool could not be read or format is unknown. */
MPOOL_API bool mpool_report(const mpool_t *pool, mpool_report_format_t format, mpool_write_fn write, void *arg);

/* Debug mode only (enable_debug, MPOOL_ENABLE_DEBUG=1): writes the pool's
 * live blocks through write (NULL: stderr), grouped by the call site that
 * allocated them (function, file and line when the program has debug
 * information and addr2line is installed), largest first, and returns the
 * number of live blocks (call it when every block should have been freed:
 * each one is then a leak).  A pool not in debug mode gets one line saying
 * so and 0.  Never allocates from any pool; call it with no other thread
 * using the pool if the figures must be exact. */
MPOOL_API size_t mpool_report_leaks(const mpool_t *pool, mpool_write_fn write, void *arg);

/* A short constant name of a health status ("HEALTHY", "WARNING", "CRITICAL"). */
MPOOL_API const char *mpool_health_name(mpool_health_status_t status);

/* ---- Arenas ------------------------------------------------------------ */

/* An arena hands out memory by bumping a pointer through chunks it takes from
 * a pool, and gives it all back at once: mpool_arena_reset, or
 * mpool_arena_rewind to a mark taken earlier.  Nothing is freed one by one.
 *
 *   - Chunks are chunk_size bytes (0: 64 KiB) taken from the parent pool with
 *     its allocation calls, so its max_size, statistics, health and
 *     mpool_report cover them; a request above a quarter of a chunk gets its
 *     own block of the pool.  Every allocation is aligned to 16 (or to the
 *     power of two asked of mpool_arena_alloc_aligned).
 *   - max_size (0: no cap) caps the bytes the arena and its children hold
 *     from the pool; past it MPOOL_ERR_POOL_FULL, nothing changed.
 *   - A child arena (mpool_arena_create_child) takes its own chunks from the
 *     same pool and is destroyed with its parent: by the parent's destroy and
 *     reset, and by a rewind to a mark taken before the child was created.
 *   - reset: children destroyed, then cleanups run (last registered first),
 *     then everything allocated is gone; the arena keeps its first chunk and
 *     a few more for reuse (at most 1 MiB or 4 chunks) and returns the rest.
 *     destroy: the same, then all its memory goes back to the pool.
 *   - A mark records where the arena is; a rewind to it undoes everything
 *     since, in the same order as a reset: children created after the mark
 *     destroyed, cleanups registered after it run, memory allocated after it
 *     reusable.  A mark of another arena, or one that a rewind to an earlier
 *     mark or a reset went past, is refused with MPOOL_ERR_INVALID_ARGUMENT
 *     and changes nothing (exactly: marks carry a generation number that is
 *     never reused).  A mark stays valid across any number of rewinds to it.
 *   - Single-thread objects: one thread at a time may use an arena and its
 *     children (the pool itself may be shared).  When the pool has
 *     enable_debug, every call from another thread than the one that created
 *     the arena is reported (MPOOL_ERR_INVALID_ARGUMENT) and refused, fresh
 *     memory is filled with 0xAB and memory given back with 0xDF.
 *   - Errors go through the parent pool's error policy.  Destroying or
 *     resetting the pool destroys its arenas first (with their cleanups).
 *   - A cleanup must not call the arena it is registered in. */
typedef struct mpool_arena mpool_arena_t; /* opaque */
typedef struct mpool_arena_mark { size_t opaque[2]; } mpool_arena_mark_t;
typedef void (*mpool_cleanup_fn)(void *arg);

/* An arena on parent (NULL: the default pool).  chunk_size 0: 64 KiB (at
 * least 1 KiB, at most 1 GiB); max_size 0: no cap, else at least chunk_size.
 * NULL with MPOOL_ERR_INVALID_ARGUMENT on bad sizes, or the pool's error when
 * it cannot give the first chunk. */
MPOOL_API mpool_arena_t *mpool_arena_create(mpool_t *parent, size_t chunk_size, size_t max_size);

/* A child of parent with parent's chunk size; its memory counts against the
 * max_size of parent and of parent's ancestors.  Dies with its parent. */
MPOOL_API mpool_arena_t *mpool_arena_create_child(mpool_arena_t *parent);

/* size bytes aligned to 16 (size 0: a valid pointer to nothing).  NULL with
 * MPOOL_ERR_POOL_FULL past max_size, or the pool's error. */
MPOOL_API void *mpool_arena_alloc(mpool_arena_t *a, size_t size);

/* mpool_arena_alloc's inline path, as obstack's bump allocation is: a call
 * of mpool_arena_alloc(a, size) compiles to these few instructions, and to
 * the exported function only when they cannot serve it.  The exported
 * function stays (its address may be taken; (mpool_arena_alloc)(a, size)
 * or defining MPOOL_NO_INLINE before including this header calls it).
 * What this relies on, a promise of the library's ABI: every arena starts
 * with two words, pos (the next free byte of its current chunk, 16-aligned)
 * and end (the end of what the chunk may hand out inline); an arena that
 * must take the general path (no chunk yet, debug mode) has end 0.  Only
 * these two words are read and pos written. */
#ifdef __cplusplus
#define MPOOL_INLINE_CAST(type, x) reinterpret_cast<type>(x) /* clean under -Wold-style-cast */
#else
#define MPOOL_INLINE_CAST(type, x) ((type)(x))
#endif
static inline void *mpool_arena_alloc_inline(mpool_arena_t *a, size_t size)
{
    if (a && size <= 0x7fffffffu) { /* no wrap below */
        uintptr_t *w = MPOOL_INLINE_CAST(uintptr_t *, a); /* w[0]: pos, w[1]: end */
        const uintptr_t low = 15; /* every pos is 16-aligned */
        uintptr_t p = w[0];
#if defined(__GNUC__)
        /* a size known at compile time is rounded there */
        uintptr_t q = __builtin_constant_p(size) ? p + ((size + low) & ~low) : (p + size + low) & ~low;
#else
        uintptr_t q = (p + size + low) & ~low;
#endif
        if (q < w[1]) {
            w[0] = q;
            return MPOOL_INLINE_CAST(void *, p);
        }
    }
    return (mpool_arena_alloc)(a, size);
}
#ifndef MPOOL_NO_INLINE
#define mpool_arena_alloc(a, size) mpool_arena_alloc_inline((a), (size))
#endif

/* size bytes aligned to alignment (a power of two, else
 * MPOOL_ERR_INVALID_ALIGNMENT). */
MPOOL_API void *mpool_arena_alloc_aligned(mpool_arena_t *a, size_t size, size_t alignment);

/* count * size zeroed bytes aligned to 16; overflow: MPOOL_ERR_INVALID_ARGUMENT. */
MPOOL_API void *mpool_arena_calloc(mpool_arena_t *a, size_t count, size_t size);

/* A copy of the string s in the arena (NULL s: NULL with MPOOL_ERR_INVALID_ARGUMENT). */
MPOOL_API char *mpool_arena_strdup(mpool_arena_t *a, const char *s);

/* Where the arena is now, for mpool_arena_rewind.  (In C++ the function
 * hides the struct's tag, as mpool_health does; mpool_arena_mark_t names the
 * type.) */
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
MPOOL_API mpool_arena_mark_t mpool_arena_mark(mpool_arena_t *a);
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* Restores the arena to mark (see above); false with
 * MPOOL_ERR_INVALID_ARGUMENT, nothing changed, if mark is not a live mark of a. */
MPOOL_API bool mpool_arena_rewind(mpool_arena_t *a, mpool_arena_mark_t mark);

/* Registers cleanup(arg) to run at the next reset or destroy, or at a rewind
 * to a mark taken before this call; false if the arena has no room for it. */
MPOOL_API bool mpool_arena_on_reset(mpool_arena_t *a, mpool_cleanup_fn cleanup, void *arg);

/* Children destroyed, then cleanups (last first); everything allocated is
 * gone and every mark invalid.  Chunks are kept (see above). */
MPOOL_API void mpool_arena_reset(mpool_arena_t *a);

/* Children, cleanups, then every byte back to the pool.  NULL does nothing. */
MPOOL_API void mpool_arena_destroy(mpool_arena_t *a);

/* Bytes handed out and not rewound: each allocation rounded up to its
 * alignment, with the padding an aligned allocation skipped; not the arena's
 * own records, nor its children's memory. */
MPOOL_API size_t mpool_arena_used(const mpool_arena_t *a);

/* Bytes the arena holds from the pool: its chunks (in use and kept for
 * reuse) and its own blocks, as asked of the pool; not its children's. */
MPOOL_API size_t mpool_arena_held(const mpool_arena_t *a);

/* ---- Errors ------------------------------------------------------------ */

/* This thread's most recent failure (MPOOL_OK if none), like errno. */
MPOOL_API mpool_error_t mpool_last_error(void);

/* A short constant description of err ("pool full", ...). */
MPOOL_API const char *mpool_strerror(mpool_error_t err);

/* ---- Fixed-size object pools ------------------------------------------ */

/* A pool of objects of one size, carved from chunks of a parent pool's memory
 * (so the parent's max_size, statistics, health and report cover it): O(1)
 * allocation and free with no per-object header.  Freeing anything that is not
 * a live object of the pool (an object of another pool, an interior pointer, a
 * foreign pointer, an object already freed) is MPOOL_ERR_INVALID_POINTER
 * through the pool's on_error policy and changes nothing, exactly (every chunk
 * keeps a bitmap of its live objects).  A thread-safe fixed pool gives each
 * thread a cache of objects, so allocation and free take no lock; any thread
 * may free any object.  Destroying or resetting the parent destroys its fixed
 * pools. */
typedef struct mpool_fixed mpool_fixed_t; /* opaque */

typedef struct mpool_fixed_config {
    size_t object_size;        /* required, > 0 */
    size_t alignment;          /* power of two up to 4096; 0: the natural alignment of object_size, at
                                  most 16 (objects are always aligned to at least 8) */
    size_t initial_count;      /* objects reserved at creation; default 64 */
    size_t max_count;          /* 0: no cap; past it MPOOL_ERR_POOL_FULL */
    double growth_factor;      /* a full pool grows its capacity by this factor (>= 1.0); default 2.0 */
    bool thread_safe;          /* usable from many threads at once; default true */
    mpool_on_error_t on_error; /* default MPOOL_ON_ERROR_RETURN */
    mpool_logger_fn logger;    /* NULL: one line on stderr */
    void *logger_arg;
    mpool_t *parent;           /* pool whose memory it uses; NULL: the default pool */
} mpool_fixed_config_t;

/* The default configuration for objects of object_size bytes. */
MPOOL_API mpool_fixed_config_t mpool_fixed_config_default(size_t object_size);

/* Creates a fixed pool holding initial_count objects.  NULL with
 * MPOOL_ERR_INVALID_ARGUMENT on a bad configuration (or NULL config), with
 * POOL_FULL or OUT_OF_MEMORY if the parent cannot give the memory. */
MPOOL_API mpool_fixed_t *mpool_fixed_create(const mpool_fixed_config_t *config);

/* Releases every object at once and gives all the memory back to the parent.
 * NULL does nothing.  No other thread may use the pool during or after it. */
MPOOL_API void mpool_fixed_destroy(mpool_fixed_t *fp);

/* Every object becomes free at once; the pool keeps the chunks it was created
 * with and gives the rest back to the parent.  No other thread may use the
 * pool during the call. */
MPOOL_API void mpool_fixed_reset(mpool_fixed_t *fp);

/* One object (aligned, contents undefined); NULL with POOL_FULL past max_count
 * or when the parent is full, OUT_OF_MEMORY if the system refuses. */
MPOOL_API void *mpool_fixed_alloc(mpool_fixed_t *fp);

/* Frees a live object of fp.  NULL does nothing; anything else that is not a
 * live object of fp is reported (MPOOL_ERR_INVALID_POINTER), nothing changed. */
MPOOL_API void mpool_fixed_free(mpool_fixed_t *fp, void *obj);

/* Up to n objects into out; returns how many.  Fewer than n only at max_count
 * or when memory is refused, with the error set (and reported). */
MPOOL_API size_t mpool_fixed_alloc_batch(mpool_fixed_t *fp, void **out, size_t n);

/* mpool_fixed_free of each of the n objects (NULL entries are skipped). */
MPOOL_API void mpool_fixed_free_batch(mpool_fixed_t *fp, void *const *objs, size_t n);

/* True exactly when obj is a live object of fp (reports nothing). */
MPOOL_API bool mpool_fixed_owns(const mpool_fixed_t *fp, const void *obj);

/* Live objects (exact; counts the chunks' bitmaps, O(capacity / 64)). */
MPOOL_API size_t mpool_fixed_in_use(const mpool_fixed_t *fp);

/* Objects the pool's chunks hold, live or free. */
MPOOL_API size_t mpool_fixed_capacity(const mpool_fixed_t *fp);

/* The size of every object (config.object_size). */
MPOOL_API size_t mpool_fixed_object_size(const mpool_fixed_t *fp);

#ifdef __cplusplus
}
#endif

#endif /* MPOOL_H */
