/*
 * fixed.c - fixed-size object pools (mpool_fixed_*): objects of one size
 * carved from chunks of a parent pool's memory.
 *
 * Chunks
 *   A chunk is one page run of the parent's page allocator (large.h), taken
 *   and given back under the parent's page lock, so the parent's max_size,
 *   usage, statistics and health count it like any large block.  Unlike
 *   other large blocks, its pages all lead back to its head (PG_BACKED,
 *   region.h), since objects start on every page.  A chunk of
 *   one object that does not fit 2 MiB (the largest run) is a huge block of
 *   the parent (huge.h).  Layout:
 *
 *     | struct fixed_chunk | live map | pad to align | object 0 | object 1 | ... |
 *     ^ run start                                    ^ objs
 *
 *   Objects are `stride` bytes apart (object_size rounded up to the
 *   alignment, at least 8); nothing precedes an object.  Creation takes
 *   chunks until the capacity reaches initial_count.  When every object is
 *   live, the pool grows by one chunk of capacity * (growth_factor - 1)
 *   objects (at least initial_count, at least one; at most max_count minus
 *   the capacity; at most what fits 2 MiB), so the capacity is always exact
 *   (seed 003's "800/1000").  Reset keeps the chunks creation made and gives
 *   the others back; destroy gives back everything.  A chunk that is a whole
 *   2 MiB run (so 2 MiB-aligned) is advised as a huge page (prim.h) while
 *   the pool holds it: it is filled in address order, so a big pool takes
 *   one fault per 2 MiB instead of 512 (and such a chunk may be resident
 *   whole from its first object).
 *
 * Free objects
 *   Each chunk has a free list threaded through its free objects (first
 *   word) and a bump pointer `fresh`: objects from fresh to end were never
 *   handed out, so a new chunk costs no formatting pass and touches only the
 *   pages it hands out.  The pool allocates from one chunk, `cur`; chunks
 *   that are not cur and have free objects wait on the `avail` stack.  When
 *   cur has none left, the next chunk comes from avail, else the pool grows.
 *   A free into a chunk that is neither cur nor on avail puts it on avail.
 *   Allocation and free are O(1); no walk anywhere but reset, destroy and
 *   the in_use count.
 *
 * Exact checks
 *   Byte i of a chunk's live map is 1 exactly while object i is live, else
 *   0 (a byte, not a bit: setting, testing and clearing it are one
 *   instruction each on the inline paths; it costs 1 byte per object).  A free
 *   finds the chunk without reading through the pointer (the chunk map says
 *   whether the address lies in one of our regions or huge blocks, the page
 *   descriptors give the head of the page run holding it: region.h), reads
 *   the chunk header there, which must carry CHUNK_MAGIC and name this pool
 *   (released chunks have the magic cleared first), then rotr64((p - objs) *
 *   inverse, shift) (common.h) must be an index below count (not interior,
 *   not past the last object) and the object's byte 1 (not freed already).
 *   So a foreign pointer, an interior pointer, an object of another pool or
 *   of a released chunk and a double free are all refused, exactly, before
 *   anything changes.  The single-thread inline free first tries cur, then
 *   the chunk of the last free elsewhere (hint), with no lookup: there the
 *   rotr64 test alone proves p is an object start of that chunk (p below
 *   objs wraps around to a huge offset), then its byte is tested.  A
 *   thread-safe pool's free tries the chunk of the thread's last free the
 *   same way (fixed_cache.c) before the lookup.
 *
 * Threads
 *   A pool that is not thread safe takes no lock and no atomic instruction:
 *   allocation pops cur's free list (or bumps fresh) and sets the byte; free
 *   clears it and pushes.  A thread-safe pool keeps the chunks' lists under
 *   its lock and gives each thread a cache of free objects (fixed_cache.c
 *   states their rules, and how fork() treats them): allocation sets the
 *   object's byte with an atomic store; free clears it with an atomic
 *   exchange, whose old value tells a double free (of two racing frees
 *   exactly one wins), before the object goes to the freeing thread's cache.
 *
 * Locks, in the only order they nest:
 *   the registry (fixed_cache.c: the thread tables, every pool's list of
 *   caches, every parent's list of fixed pools) -> fp->lock (chunks and
 *   lists; taken only if thread safe) -> the parent's page lock.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fixed.h"
#include "huge.h"
#include "large.h"
#include "list.h"
#include "prim.h"

static uint64_t fixed_next_id = 1; /* atomic: pool ids, never reused */

#define FIXED_MAX_ALIGN PAGE_SIZE
#define FIXED_MAX_OBJECT ((size_t)1 << 40)
#define CHUNK_MAX_BYTES BUDDY_MAX_RUN   /* a chunk is one page run */
/* "No chunk": no free object, no fresh one, no object (count 0); what the inline
 * paths of a thread-safe pool (or one without chunks) see, so they fall
 * through with the tests they make anyway. */
static struct fixed_chunk fixed_none;

/* ---- Chunks -------------------------------------------------------------- */

/* Bytes of the live map of count objects: whole words, for fixed_count_live. */
static size_t chunk_map_bytes(size_t count)
{
    return align_up(count, sizeof(uint64_t));
}

/* Bytes of a chunk of count objects before object 0: header and live map,
 * rounded up to the alignment. */
static size_t chunk_header(const struct mpool_fixed *fp, size_t count)
{
    return align_up(sizeof(struct fixed_chunk) + chunk_map_bytes(count), fp->align);
}

static size_t chunk_bytes(const struct mpool_fixed *fp, size_t count)
{
    return chunk_header(fp, count) + count * fp->stride;
}

/* The most objects a page-run chunk holds (0 if not even one). */
static size_t chunk_max_count(const struct mpool_fixed *fp)
{
    size_t n = CHUNK_MAX_BYTES / fp->stride;
    while (n && chunk_bytes(fp, n) > CHUNK_MAX_BYTES)
        n--;
    return n;
}

/* The pointer's chunk of fp and object index, or NULL if p is not where an
 * object of one of fp's chunks starts.  Reads nothing through p before the
 * parent's chunk map and page descriptors proved it lies in a page run or a
 * huge block (rules at the top). */
static struct fixed_chunk *chunk_find(const struct mpool_fixed *fp, const void *p, uint64_t *index)
{
    struct fixed_chunk *c;
    unsigned kind = chunk_kind(p);
    if (likely(kind == CHUNK_REGION)) {
        const struct page *head = region_head_of(region_of(p), p);
        if (head->kind != PAGE_LARGE || (head->flags & PG_CACHED))
            return NULL; /* a cached run is nobody's chunk (and poisoned under ASan) */
        c = page_start(head);
    } else if (kind == CHUNK_HUGE) {
        c = (struct fixed_chunk *)region_of(p);
        if (!huge_of(c))
            return NULL;
    } else {
        return NULL;
    }
    if (c->magic != CHUNK_MAGIC || c->fp != fp)
        return NULL;
    uint64_t i = rotr64(((uintptr_t)p - (uintptr_t)c->objs) * c->inverse, c->shift);
    if (i >= c->count)
        return NULL;
    *index = i;
    return c;
}

/* True if object i of c is live. */
static bool chunk_is_live(const struct fixed_chunk *c, uint64_t i)
{
    return __atomic_load_n(&c->live[i], __ATOMIC_RELAXED) != 0;
}

/* Object i becomes free; false (nothing changed) if it was free already.  In
 * a thread-safe pool the exchange's old value decides: of two racing frees
 * of one object exactly one sees 1. */
static bool chunk_set_free(struct mpool_fixed *fp, struct fixed_chunk *c, uint64_t i)
{
    if (fp->thread_safe)
        return __atomic_exchange_n(&c->live[i], 0, __ATOMIC_RELAXED) != 0;
    if (!c->live[i])
        return false;
    c->live[i] = 0;
    return true;
}

/* Every object of c becomes free and never handed out. */
static void chunk_clear(struct fixed_chunk *c)
{
    c->free = NULL;
    c->fresh = c->objs;
    c->listed = false;
    memset(c->live, 0, chunk_map_bytes(c->count));
}

/* Flags the page run starting at c PG_BACKED and points every page's back at
 * its head, so that any object's page leads to the chunk (region.h); or
 * undoes that before the run goes back. */
static void chunk_set_backs(struct mpool_pool *parent, void *c, bool on)
{
    struct page *head = region_page_of(region_of(c), c);
    lock_take(&parent->buddy.lock, parent->thread_safe);
    for (size_t k = 1; k < head->npages; k++) {
        if (on)
            page_set_back(head, k);
        else
            page_clear_back(&head[k]);
    }
    head->flags = on ? (uint8_t)(head->flags | PG_BACKED) : (uint8_t)(head->flags & ~PG_BACKED);
    lock_give(&parent->buddy.lock, parent->thread_safe);
}

/* True if the page-run chunk c of bytes is a whole run of the largest order
 * (2 MiB, so aligned to 2 MiB): one the system may back with one huge page,
 * a fault instead of 512, since its objects are handed out in address order
 * and the chunk is filled whole (the rules at the top). */
static bool chunk_is_whole_run(const void *c, size_t bytes)
{
    return bytes > CHUNK_MAX_BYTES - PAGE_SIZE && ((uintptr_t)c & (CHUNK_MAX_BYTES - 1)) == 0;
}

/* A new chunk of count objects from the parent, listed in fp's chunks (not
 * yet cur or on avail); NULL with *st. */
static struct fixed_chunk *chunk_new(struct mpool_fixed *fp, size_t count, bool initial, enum fixed_status *st)
{
    struct mpool_pool *parent = fp->parent;
    size_t bytes = chunk_bytes(fp, count);
    bool huge = bytes > CHUNK_MAX_BYTES;
    struct fixed_chunk *c = NULL;
    for (int attempt = 0; attempt < 2 && !c; attempt++) {
        enum buddy_status bs = BUDDY_OK;
        bool zeroed;
        c = huge ? huge_alloc(parent, bytes, PAGE_SIZE, NULL, &bs) : large_alloc(parent, bytes, PAGE_SIZE, &zeroed, &bs);
        if (!c && bs != BUDDY_FULL) {
            *st = FIXED_NOMEM;
            return NULL;
        }
        if (!c && (attempt == 1 || mpool_trim(parent) == 0)) { /* trim: cached and empty memory first */
            *st = FIXED_PARENT_FULL;
            return NULL;
        }
    }
    if (!huge) {
        chunk_set_backs(parent, c, true);
        if (chunk_is_whole_run(c, bytes))
            (void)prim_advise_huge(c, CHUNK_MAX_BYTES, true);
    }
    memset(c, 0, sizeof *c);
    c->objs = (char *)c + chunk_header(fp, count);
    c->end = c->objs + (uint64_t)count * fp->stride;
    unsigned shift;
    c->inverse = size_inverse(fp->stride, &shift);
    c->shift = (uint8_t)shift;
    c->count = count;
    c->initial = initial;
    c->huge = huge;
    c->fp = fp;
    c->bytes = bytes;
    chunk_clear(c);
    c->next = fp->chunks;
    fp->chunks = c;
    __atomic_store_n(&fp->capacity, fp->capacity + count, __ATOMIC_RELAXED);
    fp->nchunks++;
    fp->bytes += bytes;
    c->magic = CHUNK_MAGIC; /* last: the chunk is now findable */
    return c;
}

/* Gives chunk c back to the parent (its magic cleared first, so pointers into
 * it are refused from now on). */
static void chunk_release(struct mpool_fixed *fp, struct fixed_chunk *c)
{
    struct mpool_pool *parent = fp->parent;
    c->magic = 0;
    c->fp = NULL;
    __atomic_store_n(&fp->capacity, fp->capacity - c->count, __ATOMIC_RELAXED);
    fp->nchunks--;
    fp->bytes -= c->bytes;
    if (c->huge) {
        huge_free(parent, huge_of(c));
        return;
    }
    chunk_set_backs(parent, c, false);
    if (chunk_is_whole_run(c, c->bytes))
        (void)prim_advise_huge(c, CHUNK_MAX_BYTES, false);
    large_free(parent, region_page_of(region_of(c), c));
}

/* ---- The pool's lists (fp->lock if thread safe) --------------------------- */

/* Puts chunk c (not cur, not listed) on the avail stack. */
static void avail_push(struct mpool_fixed *fp, struct fixed_chunk *c)
{
    c->avail_next = fp->avail;
    fp->avail = c;
    c->listed = true;
}

/* Makes c (or no chunk) cur.  The inline paths of a thread-safe pool always
 * see fixed_none, written once at creation. */
static void fixed_set_cur(struct mpool_fixed *fp, struct fixed_chunk *c)
{
    fp->cur = c;
    if (!fp->thread_safe)
        fp->fast = c ? c : &fixed_none;
}

/* Objects the next growth adds (rules at the top); 0 with *st at max_count. */
static size_t fixed_growth(const struct mpool_fixed *fp, enum fixed_status *st)
{
    const mpool_fixed_config_t *cfg = &fp->config;
    double want_d = (double)fp->capacity * (cfg->growth_factor - 1.0);
    size_t want = want_d >= (double)SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)want_d;
    if ((double)want < want_d) /* rounded up, without libm */
        want++;
    if (want < cfg->initial_count)
        want = cfg->initial_count;
    if (want == 0)
        want = 1;
    if (cfg->max_count) {
        if (fp->capacity >= cfg->max_count) {
            *st = FIXED_AT_MAX;
            return 0;
        }
        if (want > cfg->max_count - fp->capacity)
            want = cfg->max_count - fp->capacity;
    }
    size_t most = chunk_max_count(fp);
    if (want > most)
        want = most ? most : 1; /* one object too big for a run: a huge chunk */
    if (want > UINT32_MAX)
        want = UINT32_MAX;
    return want;
}

/* fixed.h */
void *fixed_take_locked(struct mpool_fixed *fp, struct fixed_chunk **chunk, bool may_grow,
                               enum fixed_status *st)
{
    struct fixed_chunk *c = fp->cur;
    for (;;) {
        if (c) {
            void **p = c->free;
            if (p) {
                c->free = *p;
                *chunk = c;
                return p;
            }
            if (c->fresh != c->end) {
                p = (void **)c->fresh;
                c->fresh += fp->stride;
                *chunk = c;
                return p;
            }
        }
        if (fp->avail) {
            c = fp->avail;
            fp->avail = c->avail_next;
            c->listed = false;
        } else {
            if (!may_grow)
                return NULL;
            size_t n = fixed_growth(fp, st);
            c = n ? chunk_new(fp, n, false, st) : NULL;
            if (!c)
                return NULL;
        }
        fixed_set_cur(fp, c);
    }
}

/* fixed.h */
void fixed_give_locked(struct mpool_fixed *fp, struct fixed_chunk *c, void *p)
{
    *(void **)p = c->free;
    c->free = p;
    if (!c->listed && c != fp->cur)
        avail_push(fp, c);
}

/* Reset: the chunks creation made are kept and cleared (the newest of them
 * becomes cur, the others wait on avail), every other chunk goes back. */
static void fixed_clear_locked(struct mpool_fixed *fp)
{
    struct fixed_chunk **link = &fp->chunks;
    fp->hint = &fixed_none;
    fp->avail = NULL;
    fixed_set_cur(fp, NULL);
    while (*link) {
        struct fixed_chunk *c = *link;
        if (!c->initial) {
            *link = c->next;
            chunk_release(fp, c);
            continue;
        }
        chunk_clear(c);
        if (fp->cur) {
            avail_push(fp, c);
        } else {
            fixed_set_cur(fp, c);
        }
        link = &c->next;
    }
}

static void fixed_release_all_locked(struct mpool_fixed *fp)
{
    fp->hint = &fixed_none;
    while (fp->chunks) {
        struct fixed_chunk *c = fp->chunks;
        fp->chunks = c->next;
        chunk_release(fp, c);
    }
    fp->avail = NULL;
    fixed_set_cur(fp, NULL);
}

/* ---- Reporting ------------------------------------------------------------- */

static mpool_noinline void fixed_fail_alloc(struct mpool_fixed *fp, const char *who, enum fixed_status st)
{
    stat_atomic_inc(&fp->failures);
    if (st == FIXED_AT_MAX)
        error_raise(&fp->policy, MPOOL_ERR_POOL_FULL, 0, "%s(%p): fixed pool full (max_count %zu reached)", who,
                    (void *)fp, fp->config.max_count);
    else if (st == FIXED_PARENT_FULL)
        error_raise(&fp->policy, MPOOL_ERR_POOL_FULL, 0,
                    "%s(%p): pool full (the parent pool's max_size %zu bytes reached)", who, (void *)fp,
                    fp->parent->config.max_size);
    else
        error_raise(&fp->policy, MPOOL_ERR_OUT_OF_MEMORY, 0, "%s(%p): out of memory", who, (void *)fp);
}

static mpool_noinline void fixed_fail_pointer(struct mpool_fixed *fp, const char *who, const void *p, bool found)
{
    stat_atomic_inc(&fp->invalid_frees);
    if (found)
        error_raise(&fp->policy, MPOOL_ERR_INVALID_POINTER, 0,
                    "%s(%p, %p): double free: the object is already free", who, (void *)fp, p);
    else
        error_raise(&fp->policy, MPOOL_ERR_INVALID_POINTER, 0,
                    "%s(%p, %p): invalid pointer (not an object of this fixed pool: foreign, interior, "
                    "or of another pool)", who, (void *)fp, p);
}

/* True if fp is a live fixed pool; else reports it (no pool, so no policy:
 * the last error and errno only). */
static bool fixed_valid(const struct mpool_fixed *fp, const char *who)
{
    if (likely(fp && fp->magic == FIXED_MAGIC))
        return true;
    error_raise(NULL, MPOOL_ERR_INVALID_ARGUMENT, 0, "%s(%p): not a fixed pool", who, (const void *)fp);
    return false;
}

/* ---- Creation and destruction ---------------------------------------------- */

mpool_fixed_config_t mpool_fixed_config_default(size_t object_size)
{
    mpool_fixed_config_t c;
    memset(&c, 0, sizeof c);
    c.object_size = object_size;
    c.alignment = 0;
    c.initial_count = 64;
    c.max_count = 0;
    c.growth_factor = 2.0;
    c.thread_safe = true;
    c.on_error = MPOOL_ON_ERROR_RETURN;
    c.logger = NULL;
    c.logger_arg = NULL;
    c.parent = NULL;
    return c;
}

static const char *fixed_config_problem(const mpool_fixed_config_t *c)
{
    if (c->object_size == 0 || c->object_size > FIXED_MAX_OBJECT)
        return "object_size must be between 1 and 1 TiB";
    if (c->alignment && (!is_pow2(c->alignment) || c->alignment > FIXED_MAX_ALIGN))
        return "alignment must be 0 or a power of two up to 4096";
    if (!(c->growth_factor >= 1.0) || isinf(c->growth_factor))
        return "growth_factor must be a finite number >= 1.0";
    if (c->max_count && c->initial_count > c->max_count)
        return "initial_count must not exceed max_count";
    if ((unsigned)c->on_error > MPOOL_ON_ERROR_ABORT)
        return "on_error must be RETURN, LOG or ABORT";
    if (c->parent && c->parent->magic != POOL_MAGIC)
        return "parent is not a pool";
    return NULL;
}

/* The parent's end (reset or destroy): its fixed pools end with it; their
 * memory is the parent's and goes with it. */
static void fixed_end_all(struct mpool_pool *parent)
{
    fixed_registry_take();
    while (parent->fixed_pools.head) {
        struct mpool_fixed *fp = parent->fixed_pools.head;
        LIST_REMOVE(parent->fixed_pools.head, fp, next, prev);
        fixed_registry_remove_locked(fp);
        fixed_caches_orphan_locked(fp);
        fp->magic = 0;
        lock_fini(&fp->lock);
    }
    fixed_registry_give();
}

mpool_fixed_t *mpool_fixed_create(const mpool_fixed_config_t *config)
{
    if (!config) {
        error_raise(NULL, MPOOL_ERR_INVALID_ARGUMENT, 0, "mpool_fixed_create: NULL configuration");
        return NULL;
    }
    mpool_fixed_config_t cfg = *config;
    struct error_policy policy = error_policy_of(cfg.on_error, cfg.logger, cfg.logger_arg);
    const char *problem = fixed_config_problem(&cfg);
    if (problem) {
        error_raise(&policy, MPOOL_ERR_INVALID_ARGUMENT, 0, "mpool_fixed_create: invalid configuration: %s",
                    problem);
        return NULL;
    }
    struct mpool_pool *dflt = mpool_default(); /* also sets up fork() (pool.c, fixed_cache.c) */
    struct mpool_pool *parent = cfg.parent ? cfg.parent : dflt;
    struct mpool_fixed *fp = mpool_alloc(parent, sizeof *fp);
    if (!fp) {
        error_raise(&policy, mpool_last_error(), 0, "mpool_fixed_create: no memory for the pool");
        return NULL;
    }
    memset(fp, 0, sizeof *fp);
    cfg.parent = parent;
    fp->config = cfg;
    fp->policy = policy;
    fp->parent = parent;
    fp->thread_safe = cfg.thread_safe;
    size_t natural = cfg.object_size & (~cfg.object_size + 1); /* largest power of two dividing it */
    size_t align = cfg.alignment ? cfg.alignment : natural < 16 ? natural : 16;
    fp->align = align < 8 ? 8 : align;
    fp->stride = align_up(cfg.object_size < 8 ? 8 : cfg.object_size, fp->align);
    fp->id = __atomic_fetch_add(&fixed_next_id, 1, __ATOMIC_RELAXED);
    lock_init(&fp->lock);
    fp->fast = fp->hint = &fixed_none;
    fixed_set_cur(fp, NULL);
    while (fp->capacity < cfg.initial_count) {
        size_t n = cfg.initial_count - fp->capacity, most = chunk_max_count(fp);
        if (n > most)
            n = most ? most : 1;
        enum fixed_status st = FIXED_OK;
        struct fixed_chunk *c = chunk_new(fp, n, true, &st);
        if (!c) {
            fixed_fail_alloc(fp, "mpool_fixed_create", st);
            fixed_release_all_locked(fp);
            lock_fini(&fp->lock);
            mpool_free(parent, fp);
            return NULL;
        }
        if (fp->cur) {
            avail_push(fp, c);
        } else {
            fixed_set_cur(fp, c);
        }
    }
    fp->magic = FIXED_MAGIC;
    fixed_registry_take();
    parent->fixed_pools.end_all = fixed_end_all; /* under the lock: creators on other threads write it too */
    LIST_PUSH(parent->fixed_pools.head, fp, next, prev);
    fixed_registry_add_locked(fp);
    fixed_registry_give();
    return fp;
}

void mpool_fixed_destroy(mpool_fixed_t *fp)
{
    if (!fp || !fixed_valid(fp, "mpool_fixed_destroy"))
        return;
    struct mpool_pool *parent = fp->parent;
    fixed_registry_take();
    LIST_REMOVE(parent->fixed_pools.head, fp, next, prev);
    fixed_registry_remove_locked(fp);
    fixed_caches_orphan_locked(fp);
    fp->magic = 0;
    fixed_registry_give();
    fixed_release_all_locked(fp); /* nobody else may use fp now */
    lock_fini(&fp->lock);
    mpool_free(parent, fp);
}

void mpool_fixed_reset(mpool_fixed_t *fp)
{
    if (!fixed_valid(fp, "mpool_fixed_reset"))
        return;
    fixed_registry_take();
    fixed_caches_empty_locked(fp);
    lock_take(&fp->lock, fp->thread_safe);
    fixed_clear_locked(fp);
    lock_give(&fp->lock, fp->thread_safe);
    fixed_registry_give();
}

/* ---- Objects --------------------------------------------------------------- */

/* One object for any pool, not reported; NULL with *st. */
static void *fixed_take(struct mpool_fixed *fp, enum fixed_status *st)
{
    if (fp->thread_safe)
        return fixed_cache_alloc(fp, st);
    struct fixed_chunk *c;
    void *p = fixed_take_locked(fp, &c, true, st);
    if (p)
        chunk_set_live(fp, c, chunk_index(c, p));
    return p;
}

/* mpool_fixed_alloc when cur has nothing to pop or bump, or the pool is
 * thread safe. */
static mpool_noinline void *fixed_alloc_slow(struct mpool_fixed *fp)
{
    if (!fixed_valid(fp, "mpool_fixed_alloc"))
        return NULL;
    enum fixed_status st = FIXED_OK;
    void *p = fixed_take(fp, &st);
    if (unlikely(!p))
        fixed_fail_alloc(fp, "mpool_fixed_alloc", st);
    return p;
}

/* The single-thread allocation from cur (fp->fast): pops its free list or
 * bumps fresh, and sets the object's byte; NULL if cur has nothing (or the
 * pool is thread safe: fixed_none). */
static inline void *fixed_pop_local(struct mpool_fixed *fp)
{
    struct fixed_chunk *c = fp->fast;
    void **p = c->free;
    if (likely(p != NULL)) {
        c->free = *p;
    } else {
        p = (void **)c->fresh;
        if (unlikely(p == (void **)c->end))
            return NULL;
        c->fresh += fp->stride;
    }
    c->live[chunk_index(c, p)] = 1;
    return p;
}

void *mpool_fixed_alloc(mpool_fixed_t *fp)
{
    if (likely(fp != NULL)) {
        void *p = fixed_pop_local(fp);
        if (likely(p != NULL))
            return p;
    }
    return fixed_alloc_slow(fp);
}

/* fixed.h */
struct fixed_chunk *fixed_free_check(struct mpool_fixed *fp, void *p, struct fixed_chunk *hint, const char *who)
{
    uint64_t i;
    struct fixed_chunk *c = NULL;
    if (hint) { /* one of fp's chunks: the test of chunk_free_local, no lookup */
        i = rotr64(((uintptr_t)p - (uintptr_t)hint->objs) * hint->inverse, hint->shift);
        if (i < hint->count)
            c = hint;
    }
    if (!c)
        c = chunk_find(fp, p, &i);
    if (unlikely(!c || !chunk_set_free(fp, c, i))) {
        fixed_fail_pointer(fp, who, p, c != NULL);
        return NULL;
    }
    return c;
}

/* mpool_fixed_free of anything the inline path does not finish: an object
 * of another chunk than cur, a thread-safe pool, and every invalid pointer. */
static mpool_noinline void fixed_free_slow(struct mpool_fixed *fp, void *p, const char *who)
{
    if (!p || !fixed_valid(fp, who))
        return;
    if (fp->thread_safe) {
        fixed_cache_free(fp, p, who);
        return;
    }
    struct fixed_chunk *c = fixed_free_check(fp, p, NULL, who);
    if (c) {
        fixed_give_locked(fp, c, p);
        fp->hint = c;
    }
}

/* The single-thread free of p if it is a live object of c, which fp holds
 * (no lookup: one test proves p is where an object of c starts, the block
 * test of common.h, since (p - objs) wraps around for p below objs); false
 * if it is not (never for fixed_none, whose count is 0). */
static inline bool chunk_free_local(struct fixed_chunk *c, void *p)
{
    uint64_t i = rotr64(((uintptr_t)p - (uintptr_t)c->objs) * c->inverse, c->shift);
    if (unlikely(i >= c->count || !c->live[i]))
        return false;
    c->live[i] = 0;
    *(void **)p = c->free;
    c->free = p;
    return true;
}

/* mpool_fixed_free's body: cur, then the hint, inline; the rest through
 * fixed_free_slow. */
static inline void fixed_free_one(struct mpool_fixed *fp, void *p, const char *who)
{
    if (likely(fp != NULL)) {
        if (likely(chunk_free_local(fp->fast, p))) /* cur: never needs to go on avail */
            return;
        struct fixed_chunk *h = fp->hint;
        if (chunk_free_local(h, p)) {
            if (unlikely(!h->listed) && h != fp->cur)
                avail_push(fp, h);
            return;
        }
    }
    fixed_free_slow(fp, p, who);
}

void mpool_fixed_free(mpool_fixed_t *fp, void *p)
{
    fixed_free_one(fp, p, "mpool_fixed_free");
}

size_t mpool_fixed_alloc_batch(mpool_fixed_t *fp, void **out, size_t n)
{
    if (!fixed_valid(fp, "mpool_fixed_alloc_batch"))
        return 0;
    if (n && !out) {
        error_raise(&fp->policy, MPOOL_ERR_INVALID_ARGUMENT, 0, "mpool_fixed_alloc_batch(%p): NULL out",
                    (void *)fp);
        return 0;
    }
    enum fixed_status st = FIXED_OK;
    size_t got = 0;
    if (!fp->thread_safe) {
        for (; got < n; got++) {
            void *p = fixed_pop_local(fp);
            if (unlikely(!p)) {
                struct fixed_chunk *c;
                p = fixed_take_locked(fp, &c, true, &st);
                if (!p)
                    break;
                chunk_set_live(fp, c, chunk_index(c, p));
            }
            out[got] = p;
        }
    } else {
        for (; got < n; got++) {
            void *p = fixed_cache_alloc(fp, &st);
            if (!p)
                break;
            out[got] = p;
        }
    }
    if (got < n)
        fixed_fail_alloc(fp, "mpool_fixed_alloc_batch", st);
    return got;
}

void mpool_fixed_free_batch(mpool_fixed_t *fp, void *const *objs, size_t n)
{
    if (!fixed_valid(fp, "mpool_fixed_free_batch"))
        return;
    if (n && !objs) {
        error_raise(&fp->policy, MPOOL_ERR_INVALID_ARGUMENT, 0, "mpool_fixed_free_batch(%p): NULL objs",
                    (void *)fp);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (objs[i])
            fixed_free_one(fp, objs[i], "mpool_fixed_free_batch");
}

/* ---- Queries ----------------------------------------------------------------- */

bool mpool_fixed_owns(const mpool_fixed_t *fp, const void *p)
{
    if (!fp || fp->magic != FIXED_MAGIC || !p)
        return false;
    uint64_t i;
    const struct fixed_chunk *c = chunk_find(fp, p, &i);
    return c && chunk_is_live(c, i);
}

/* Live objects of fp: the ones in its chunks' live maps (each byte 0 or 1, so
 * a word's population count is its number of live objects). */
static size_t fixed_count_live(struct mpool_fixed *fp)
{
    size_t n = 0;
    lock_take(&fp->lock, fp->thread_safe);
    for (const struct fixed_chunk *c = fp->chunks; c; c = c->next)
        for (size_t w = 0; w < chunk_map_bytes(c->count); w += sizeof(uint64_t)) {
            uint64_t word;
            if (fp->thread_safe) /* byte by byte: other threads store bytes */
                for (size_t b = 0; b < sizeof word; b++)
                    ((uint8_t *)&word)[b] = __atomic_load_n(&c->live[w + b], __ATOMIC_RELAXED);
            else
                memcpy(&word, &c->live[w], sizeof word);
            n += (size_t)__builtin_popcountll(word);
        }
    lock_give(&fp->lock, fp->thread_safe);
    return n;
}

size_t mpool_fixed_in_use(const mpool_fixed_t *fp)
{
    if (!fixed_valid(fp, "mpool_fixed_in_use"))
        return 0;
    return fixed_count_live((struct mpool_fixed *)fp);
}

size_t mpool_fixed_capacity(const mpool_fixed_t *fp)
{
    if (!fixed_valid(fp, "mpool_fixed_capacity"))
        return 0;
    return __atomic_load_n(&fp->capacity, __ATOMIC_RELAXED);
}

size_t mpool_fixed_object_size(const mpool_fixed_t *fp)
{
    if (!fixed_valid(fp, "mpool_fixed_object_size"))
        return 0;
    return fp->config.object_size;
}

size_t fixed_pool_each(struct mpool_pool *pool, void (*fn)(const struct fixed_summary *s, void *arg), void *arg)
{
    size_t n = 0;
    fixed_registry_take();
    for (struct mpool_fixed *fp = pool->fixed_pools.head; fp; fp = fp->next, n++) {
        struct fixed_summary s;
        s.fp = fp;
        s.object_size = fp->config.object_size;
        s.stride = fp->stride;
        s.in_use = fixed_count_live(fp);
        lock_take(&fp->lock, fp->thread_safe);
        s.capacity = fp->capacity;
        s.chunks = fp->nchunks;
        s.bytes = fp->bytes;
        lock_give(&fp->lock, fp->thread_safe);
        s.thread_safe = fp->thread_safe;
        s.failures = __atomic_load_n(&fp->failures, __ATOMIC_RELAXED);
        s.invalid_frees = __atomic_load_n(&fp->invalid_frees, __ATOMIC_RELAXED);
        fn(&s, arg);
    }
    fixed_registry_give();
    return n;
}
