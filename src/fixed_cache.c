/*
 * fixed_cache.c - the per-thread caches of thread-safe fixed-size object
 * pools, the registry that finds them, and fork() (fixed.c holds the pools,
 * their chunks and the rules of objects; fixed.h the shared structures).
 *
 * Caches
 *   A thread-safe pool gives each thread a cache of free objects: a page
 *   (FIXED_CACHE_BYTES, mapped from the system, so it outlives pools) of
 *   (object, chunk) entries used as a stack.  A thread finds its cache of a
 *   pool through a table of FIXED_SLOTS slots keyed by the pool's id (ids
 *   are never reused, so a stale slot never matches), as threads find their
 *   heap (heap.h).  Allocation pops the cache and sets the object's live
 *   byte with an atomic store; free (fixed_free_check clears the byte first
 *   with an atomic exchange, whose old value tells a double free: of two
 *   racing frees exactly one wins; it tries the chunk of the thread's last
 *   free before the lookup) pushes it.  The pool's lock is taken only to refill an empty cache
 *   (half of it), flush a full one (half of it) and grow.  Any thread may
 *   free any object: the object goes to the freeing thread's cache.  Objects
 *   in caches are free (byte 0), so in_use and owns stay exact.
 *
 * Lifetimes
 *   At a thread's exit (a pthread key destructor) its caches go back to
 *   their pools.  A pool taking a thread's slot sends the old cache back.  A
 *   destroyed pool orphans its caches (fp = NULL): their threads unmap them
 *   at exit or when the slot is taken; the destroying thread's own at once.
 *   Reset empties every cache of the pool (their objects are cleared with
 *   the chunks).
 *
 * fork()
 *   The child has only the thread that forked.  Around fork() the default
 *   pool's handlers (pool.c) call fixed_fork_*: prepare takes the registry
 *   and every thread-safe pool's lock, so no list is half-changed in the
 *   child; the child then unmaps every cache it finds on a pool's list that
 *   is not its own thread's.  Their objects stay free (byte 0) and
 *   unreachable until the pool is reset or destroyed: one of those threads
 *   may have been between popping an entry and setting its byte, or between
 *   writing an entry and counting it, so their contents are not trusted.
 *   Orphaned caches of other threads (on no list) stay mapped in the child.
 *
 * Locks, in the only order they nest:
 *   fixed_registry (the slot tables, every pool's list of caches, every
 *   parent's list of fixed pools, the process-wide list) -> fp->lock ->
 *   the parent's locks.  A cache's count and entries change only by its
 *   thread, under fp->lock when a flush moves entries, so that a fork
 *   never sees a flush half done.
 */
#include <pthread.h>
#include <string.h>

#include "fixed.h"
#include "list.h"
#include "prim.h"

#define FIXED_SLOTS 16 /* fixed pools a thread keeps a cache for at once */
#define FIXED_CACHE_BYTES PAGE_SIZE

struct fixed_entry {
    void *obj;
    struct fixed_chunk *chunk;
};

/* A thread's cache of free objects of one pool. */
struct fixed_cache {
    struct mpool_fixed *fp;          /* NULL once fp is destroyed (registry) */
    struct fixed_cache *next, *prev; /* fp->caches (registry) */
    struct fixed_chunk *hint;        /* chunk of the thread's last free, or NULL (reset clears it) */
    uint32_t count, cap;
    struct fixed_entry entry[];
};
#define FIXED_CACHE_CAP ((FIXED_CACHE_BYTES - sizeof(struct fixed_cache)) / sizeof(struct fixed_entry))
_Static_assert(FIXED_CACHE_CAP >= 64, "a cache holds a useful number of objects");

struct fixed_thread {
    uint64_t id[FIXED_SLOTS];
    struct fixed_cache *cache[FIXED_SLOTS];
};

static _Thread_local struct fixed_thread fixed_thread __attribute__((tls_model("initial-exec")));
static mpool_lock_t fixed_registry;  /* zero: free */
static struct mpool_fixed *fixed_all; /* every fixed pool (registry) */
static pthread_key_t fixed_exit_key;
static pthread_once_t fixed_exit_once = PTHREAD_ONCE_INIT;
static bool fixed_exit_ok;

void fixed_registry_take(void) { lock_take(&fixed_registry, true); }
void fixed_registry_give(void) { lock_give(&fixed_registry, true); }

void fixed_registry_add_locked(struct mpool_fixed *fp) { LIST_PUSH(fixed_all, fp, all_next, all_prev); }
void fixed_registry_remove_locked(struct mpool_fixed *fp) { LIST_REMOVE(fixed_all, fp, all_next, all_prev); }

/* Moves the cache's n oldest objects back to its pool's chunks. */
static void cache_flush(struct fixed_cache *k, uint32_t n)
{
    struct mpool_fixed *fp = k->fp;
    lock_take(&fp->lock, true);
    for (uint32_t i = 0; i < n; i++)
        fixed_give_locked(fp, k->entry[i].chunk, k->entry[i].obj);
    k->count -= n;
    memmove(k->entry, k->entry + n, k->count * sizeof k->entry[0]);
    lock_give(&fp->lock, true);
}

/* Empties and unmaps a cache; caller holds the registry. */
static void cache_release_locked(struct fixed_cache *k)
{
    if (k->fp) {
        cache_flush(k, k->count);
        LIST_REMOVE(k->fp->caches, k, next, prev);
    }
    (void)prim_unmap(k, FIXED_CACHE_BYTES); /* refused: the page stays, unused */
}

/* The pthread key destructor: the exiting thread's caches go back. */
static void fixed_thread_exit(void *arg)
{
    (void)arg;
    struct fixed_thread *t = &fixed_thread;
    lock_take(&fixed_registry, true);
    for (unsigned s = 0; s < FIXED_SLOTS; s++) {
        if (t->cache[s])
            cache_release_locked(t->cache[s]);
        t->cache[s] = NULL;
        t->id[s] = 0;
    }
    lock_give(&fixed_registry, true);
}

static void fixed_exit_key_init(void)
{
    fixed_exit_ok = pthread_key_create(&fixed_exit_key, fixed_thread_exit) == 0;
}

static inline struct fixed_cache *cache_mine(const struct mpool_fixed *fp)
{
    unsigned s = (unsigned)(fp->id % FIXED_SLOTS);
    return fixed_thread.id[s] == fp->id ? fixed_thread.cache[s] : NULL;
}

/* Gives the calling thread a cache for fp (in the pool's slot, whose old
 * cache goes back); NULL if the system refuses the page. */
static mpool_noinline struct fixed_cache *cache_attach(struct mpool_fixed *fp)
{
    pthread_once(&fixed_exit_once, fixed_exit_key_init);
    struct fixed_cache *k = prim_map(FIXED_CACHE_BYTES, PAGE_SIZE, 0);
    if (!k)
        return NULL;
    k->cap = (uint32_t)FIXED_CACHE_CAP;
    k->count = 0;
    k->hint = NULL;
    k->fp = fp;
    struct fixed_thread *t = &fixed_thread;
    unsigned s = (unsigned)(fp->id % FIXED_SLOTS);
    lock_take(&fixed_registry, true);
    if (t->cache[s])
        cache_release_locked(t->cache[s]);
    LIST_PUSH(fp->caches, k, next, prev);
    t->cache[s] = k;
    t->id[s] = fp->id;
    lock_give(&fixed_registry, true);
    if (fixed_exit_ok && !pthread_getspecific(fixed_exit_key))
        pthread_setspecific(fixed_exit_key, t);
    return k;
}

void fixed_caches_orphan_locked(struct mpool_fixed *fp)
{
    struct fixed_cache *mine = cache_mine(fp);
    while (fp->caches) {
        struct fixed_cache *k = fp->caches;
        LIST_REMOVE(fp->caches, k, next, prev);
        k->fp = NULL;
        k->count = 0;
    }
    if (mine) {
        unsigned s = (unsigned)(fp->id % FIXED_SLOTS);
        fixed_thread.cache[s] = NULL;
        fixed_thread.id[s] = 0;
        (void)prim_unmap(mine, FIXED_CACHE_BYTES);
    }
}

void fixed_caches_empty_locked(struct mpool_fixed *fp)
{
    for (struct fixed_cache *k = fp->caches; k; k = k->next) {
        k->count = 0; /* their objects are in chunks that are cleared or released */
        k->hint = NULL;
    }
}

/* Refills the empty cache k with up to half its capacity, growing the pool
 * only if it has no free object at all; false with *st if not one object
 * could be had.  The cache pops from its top, so the objects go in reverse:
 * they come out in the order the chunks gave them (address order). */
static bool cache_refill(struct mpool_fixed *fp, struct fixed_cache *k, enum fixed_status *st)
{
    struct fixed_entry got[FIXED_CACHE_CAP / 2];
    uint32_t n = 0;
    lock_take(&fp->lock, true);
    while (n < k->cap / 2) {
        void *p = fixed_take_locked(fp, &got[n].chunk, n == 0, st);
        if (!p)
            break;
        got[n++].obj = p;
    }
    for (uint32_t i = 0; i < n; i++)
        k->entry[n - 1 - i] = got[i];
    k->count = n;
    lock_give(&fp->lock, true);
    return n > 0;
}

void *fixed_cache_alloc(struct mpool_fixed *fp, enum fixed_status *st)
{
    struct fixed_cache *k = cache_mine(fp);
    if (unlikely(!k)) {
        k = cache_attach(fp);
        if (!k) {
            *st = FIXED_NOMEM;
            return NULL;
        }
    }
    if (unlikely(k->count == 0) && !cache_refill(fp, k, st))
        return NULL;
    struct fixed_entry e = k->entry[--k->count];
    chunk_set_live(fp, e.chunk, chunk_index(e.chunk, e.obj));
    return e.obj;
}

void fixed_cache_free(struct mpool_fixed *fp, void *p, const char *who)
{
    struct fixed_cache *k = cache_mine(fp);
    struct fixed_chunk *c = fixed_free_check(fp, p, k ? k->hint : NULL, who);
    if (!c)
        return;
    if (unlikely(!k))
        k = cache_attach(fp);
    if (unlikely(!k)) { /* no cache to be had: straight to the chunk */
        lock_take(&fp->lock, true);
        fixed_give_locked(fp, c, p);
        lock_give(&fp->lock, true);
        return;
    }
    if (unlikely(k->count == k->cap))
        cache_flush(k, k->cap / 2);
    k->entry[k->count].obj = p;
    k->entry[k->count].chunk = c;
    k->count++;
    k->hint = c;
}

/* ---- fork() ------------------------------------------------------------------ */

void fixed_fork_prepare(void)
{
    lock_take(&fixed_registry, true);
    for (struct mpool_fixed *fp = fixed_all; fp; fp = fp->all_next)
        lock_take(&fp->lock, fp->thread_safe);
}

void fixed_fork_parent(void)
{
    for (struct mpool_fixed *fp = fixed_all; fp; fp = fp->all_next)
        lock_give(&fp->lock, fp->thread_safe);
    lock_give(&fixed_registry, true);
}

void fixed_fork_child(void)
{
    for (struct mpool_fixed *fp = fixed_all; fp; fp = fp->all_next) {
        struct fixed_cache *mine = cache_mine(fp), *k = fp->caches;
        while (k) { /* the caches of threads the child does not have */
            struct fixed_cache *next = k->next;
            if (k != mine) {
                LIST_REMOVE(fp->caches, k, next, prev);
                (void)prim_unmap(k, FIXED_CACHE_BYTES);
            }
            k = next;
        }
        lock_give(&fp->lock, fp->thread_safe);
    }
    lock_give(&fixed_registry, true);
}
