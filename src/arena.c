/*
 * arena.c - arenas (mpool_arena_*, mpool.h): bump allocation from chunks
 * taken from a pool, marks and rewinds, child arenas and cleanups.  Arenas
 * sit above the block functions: every byte they hold is a block of their
 * pool, asked for with mpool_alloc / mpool_alloc_aligned and given back with
 * mpool_free, so the pool's max_size, statistics, health and check cover
 * them.  Ideas from APR pools (subpools, cleanups), talloc (children die
 * with their parent) and GNU obstacks (freeing back to a point).
 *
 * Encoding.  An arena allocates from its current chunk, a block of
 * chunk_size bytes of the pool: a header (struct arena_chunk), then data,
 * then ARENA_RESERVE bytes that only rewind records use.  `pos` is the next
 * free byte (always a multiple of 16), `end` the limit the inline path may
 * reach: the chunk's limit, or 0 to send every call to the slow path (no
 * chunk yet, or debug mode).  The struct of an arena made by
 * mpool_arena_create lies at the start of its first chunk; the struct of a
 * child lies in its parent's chunks, as a record (below).
 *
 * Positions.  Every byte the arena has handed out, in order, has a position:
 * the number of bytes consumed before it across all the chunks in use (each
 * chunk's header records the position of its first data byte, `base`; the
 * tail a chunk could not use is not counted).  Positions grow with every
 * allocation and only a rewind lowers them.  A mark is a position plus the
 * generation of that position (below); a rewind to position M discards, in
 * this order, the children whose record lies at or after M (destroyed), the
 * cleanups registered at or after M (run, newest first), the own blocks
 * taken at or after M (freed to the pool), the rewind records at or after
 * M, and the chunks whose base is above M (kept for reuse or freed), and
 * then sets pos to M in the chunk that holds M.
 *
 * Records.  What must be undone in order is itself allocated in the arena's
 * sequence, so that its position orders it: cleanup records, own-block
 * records, child arenas and rewind records (each a multiple of 16 bytes,
 * counted in `overhead`, not in mpool_arena_used).  Each kind is a list,
 * newest first, so positions decrease along it and a rewind pops a prefix.
 * A destroyed child stays on its parent's list (dead) until the parent
 * rewinds or resets past its record.
 *
 * Generations: exact detection of stale marks.  Generation numbers come from
 * one process-wide counter and are never reused.  Each arena has a base
 * generation (new at creation and at every reset) and a list of rewind
 * records: a rewind to M that discards anything pushes a record at M with a
 * new generation, after popping the records at or after M.  The generation
 * of position P is that of the newest record below P, or the base.  A mark
 * taken at P carries the generation of P; it is live iff P is not past the
 * arena's position and the generation of P is still the same.  A rewind to
 * R < P (or a reset) gives P a new generation that no later rewind can take
 * back (records are only popped by rewinds to at or below them, which push
 * a newer generation over P again); a rewind to R >= P leaves P's
 * generation alone.  A mark of another arena carries a generation this
 * arena never had.  The mark's second word also holds 16 bits of the
 * arena's serial, which names the more likely mistake in the message.
 * Bound: the records have increasing positions and 32 bytes each, so they
 * take at most the bytes the arena uses; a rewind that discards nothing
 * pushes nothing (a loop of mark, nothing, rewind uses no memory).  Every
 * chunk keeps ARENA_RESERVE bytes after its limit so that the record always
 * fits where the rewind lands: a rewind never needs memory.
 *
 * Bounds.  Allocation is O(1): the inline path is a load, an add, a compare
 * and a store; the slow path takes a spare chunk or a new one.  A request
 * above a quarter of a chunk's capacity (or aligned more than that) gets
 * its own block, so at most a quarter of a chunk is left unused when a
 * chunk is given up.  Rewind and reset are linear in what they discard.
 * Reset and rewind keep the chunks they release for reuse, up to
 * max(ARENA_SPARE_MIN chunks, ARENA_SPARE_BYTES), and free the rest; the
 * first chunk always stays.
 *
 * Caps.  held = the bytes the arena asked of the pool (chunks, spares, own
 * blocks); family_held adds its children's.  max_size caps family_held, so
 * a child's chunk counts against every ancestor's cap; the check happens
 * before the pool is asked.
 *
 * Threads.  An arena is used by one thread at a time.  In debug mode (the
 * pool's enable_debug) every call is a slow-path call that checks the
 * calling thread against the creator and refuses others.  The pool's list
 * of arenas (arena.h) is under its own lock, as are the changes that a
 * report on another thread could trip over: linking and unlinking arenas
 * and giving chunks back to the pool.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "pool.h"

#define ARENA_ALIGN 16                            /* every allocation, every record */
#define ARENA_DEFAULT_CHUNK ((size_t)64 << 10)
#define ARENA_MIN_CHUNK ((size_t)1 << 10)
#define ARENA_MAX_CHUNK ((size_t)1 << 30)
#define ARENA_FAST_MAX ((size_t)INT32_MAX)         /* inline path: pos + size cannot wrap; an imm32 */
#define ARENA_MAX_REQUEST ((size_t)PTRDIFF_MAX / 2) /* no pool serves more */
#define ARENA_POS_BITS 48                         /* positions in a mark's second word */
#define ARENA_POS_MASK (((size_t)1 << ARENA_POS_BITS) - 1)
#define ARENA_SERIAL_MASK ((size_t)0xffff)
#define ARENA_SPARE_MIN 4                         /* chunks kept for reuse, at least */
#define ARENA_SPARE_BYTES ((size_t)1 << 20)       /* or as many as fit in this */
#define ARENA_MAGIC 0x6d706f6f6c41524eULL         /* "mpoolARN" */

/* The header of a chunk. */
struct arena_chunk {
    struct arena_chunk *prev; /* the chunk in use before this one; on the spare list, the next spare */
    uintptr_t data;           /* first data byte (a multiple of 16) */
    uintptr_t limit;          /* allocations end at or before this; ARENA_RESERVE bytes follow */
    uintptr_t top;            /* while not current: where its allocations ended */
    size_t base;              /* position of data */
    size_t pad;
};

struct arena_cleanup {
    struct arena_cleanup *next;
    size_t pos;
    mpool_cleanup_fn fn;
    void *arg;
};

/* A request served by a block of its own. */
struct arena_big {
    struct arena_big *next;
    size_t pos;
    void *block;
    size_t size; /* bytes asked of the pool (the request rounded up to 16) */
};

struct arena_rewind {
    struct arena_rewind *next;
    size_t pos;
    uint64_t gen; /* of the positions above pos */
    size_t pad;
};

#define ARENA_RESERVE sizeof(struct arena_rewind)

struct mpool_arena {
    uintptr_t pos;                   /* the inline paths' two words (here and in mpool.h: */
    uintptr_t end;                   /* an ABI promise), 0 when they may not serve */
    struct arena_chunk *chunk;       /* current chunk, NULL before the first allocation of a child */
    struct arena_chunk *spare;       /* chunks kept for reuse */
    size_t spares;
    struct mpool_pool *pool;
    struct mpool_arena *parent;      /* NULL for an arena made by mpool_arena_create */
    struct mpool_arena *children;    /* newest first; destroyed ones stay until popped */
    struct mpool_arena *next, *prev; /* siblings (next only), or the pool's list of roots */
    size_t self_pos;                 /* a child: position of its record in the parent */
    struct arena_cleanup *cleanups;
    struct arena_big *bigs;
    struct arena_rewind *rewinds;
    uint64_t gen;                    /* base generation */
    uint64_t serial;                 /* the generation it was created with */
    uint64_t magic;                  /* ARENA_MAGIC while alive */
    size_t chunk_size;
    size_t big_limit;                /* larger requests get their own block */
    size_t max_size;
    size_t spare_max;                /* chunks kept for reuse at most */
    size_t held, family_held;
    size_t overhead;                 /* bytes of records in the sequence */
    size_t big_used;                 /* bytes of own blocks */
    pthread_t owner;
    bool debug;
};

_Static_assert(offsetof(struct mpool_arena, pos) == 0 && offsetof(struct mpool_arena, end) == sizeof(uintptr_t),
               "mpool.h's inline mpool_arena_alloc reads pos and end as the arena's first two words");
_Static_assert(ARENA_FAST_MAX == 0x7fffffff && ARENA_ALIGN == 16, "mpool.h's inline path uses these values");
#define ARENA_STRUCT_SIZE align_up(sizeof(struct mpool_arena), ARENA_ALIGN)

_Static_assert(sizeof(struct arena_chunk) % ARENA_ALIGN == 0, "chunk data starts 16-aligned");
_Static_assert(sizeof(struct arena_cleanup) % ARENA_ALIGN == 0, "records keep pos 16-aligned");
_Static_assert(sizeof(struct arena_big) % ARENA_ALIGN == 0, "records keep pos 16-aligned");
_Static_assert(sizeof(struct arena_rewind) % ARENA_ALIGN == 0, "records keep pos 16-aligned");
_Static_assert(ARENA_MIN_CHUNK >= 2 * (sizeof(struct mpool_arena) + sizeof(struct arena_chunk) + ARENA_RESERVE) + 64,
               "the smallest chunk holds a root arena's struct, and a fresh one a child's record");
_Static_assert((ARENA_MAX_CHUNK >> ARENA_POS_BITS) == 0 && ARENA_FAST_MAX < ARENA_POS_MASK,
               "positions fit the mark's word");

static uint64_t arena_gens; /* atomic; the last generation given out */

static uint64_t arena_new_gen(void)
{
    return __atomic_add_fetch(&arena_gens, 1, __ATOMIC_RELAXED);
}

/* ---- Figures ------------------------------------------------------------ */

/* The position of pos. */
static size_t arena_position(const struct mpool_arena *a)
{
    const struct arena_chunk *c = a->chunk;
    return c ? c->base + (a->pos - c->data) : 0;
}

static size_t arena_used(const struct mpool_arena *a)
{
    size_t at = arena_position(a);
    return (at > a->overhead ? at - a->overhead : 0) + a->big_used;
}

/* The generation of position at (see the top of the file). */
static uint64_t arena_gen_at(const struct mpool_arena *a, size_t at)
{
    for (const struct arena_rewind *r = a->rewinds; r; r = r->next)
        if (r->pos < at)
            return r->gen;
    return a->gen;
}

static void arena_set_end(struct mpool_arena *a)
{
    a->end = a->debug || !a->chunk ? 0 : a->chunk->limit;
}

/* ---- Checks and errors -------------------------------------------------- */

/* True if a may be used by the caller; else reports why (through the pool's
 * policy when a looks like an arena, the default pool's otherwise). */
static bool arena_usable(const struct mpool_arena *a, const char *who)
{
    if (unlikely(a == NULL)) {
        error_raise(&pool_default()->policy, MPOOL_ERR_INVALID_ARGUMENT, 0, "%s(NULL): no arena", who);
        return false;
    }
    if (unlikely(a->magic != ARENA_MAGIC)) {
        error_raise(&pool_default()->policy, MPOOL_ERR_INVALID_ARGUMENT, 0,
                    "%s(%p): not a live arena (destroyed, or never one)", who, (const void *)a);
        return false;
    }
    if (unlikely(a->debug) && !pthread_equal(a->owner, pthread_self())) {
        error_raise(&a->pool->policy, MPOOL_ERR_INVALID_ARGUMENT, 0,
                    "%s(%p): called from a thread that does not own the arena (arenas are single-thread "
                    "objects; the owner is the thread that created it)",
                    who, (const void *)a);
        return false;
    }
    return true;
}

/* Adds bytes to what a holds, if no cap of a or its ancestors is passed;
 * else reports POOL_FULL and changes nothing. */
static bool arena_charge(struct mpool_arena *a, size_t bytes, const char *who)
{
    for (struct mpool_arena *x = a; x; x = x->parent) {
        if (x->max_size && (x->family_held > x->max_size || bytes > x->max_size - x->family_held)) {
            error_raise(&a->pool->policy, MPOOL_ERR_POOL_FULL, 0,
                        "%s(%p): arena full: %zu more bytes would pass the max_size of %zu bytes of arena %p",
                        who, (const void *)a, bytes, x->max_size, (const void *)x);
            return false;
        }
    }
    a->held += bytes;
    for (struct mpool_arena *x = a; x; x = x->parent)
        x->family_held += bytes;
    return true;
}

static void arena_uncharge(struct mpool_arena *a, size_t bytes)
{
    a->held -= bytes;
    for (struct mpool_arena *x = a; x; x = x->parent)
        x->family_held -= bytes;
}

/* ---- Chunks ------------------------------------------------------------- */

/* A block of the pool aligned to align (at least 16, whatever the pool's
 * alignment): a chunk, or an own block. */
static void *arena_pool_alloc(struct mpool_pool *pool, size_t size, size_t align)
{
    return align > pool->align ? mpool_alloc_aligned(pool, size, align) : mpool_alloc(pool, size);
}

/* Lays a chunk header at c for a block ending at block_end. */
static struct arena_chunk *chunk_init(void *c, uintptr_t block_end)
{
    struct arena_chunk *k = c;
    k->prev = NULL;
    k->data = (uintptr_t)(k + 1);
    k->limit = block_end - ARENA_RESERVE;
    k->top = 0;
    k->base = 0;
    return k;
}

/* True if chunk c is the first chunk of root arena a (the block a lies in). */
static bool chunk_is_first(const struct mpool_arena *a, const struct arena_chunk *c)
{
    return !a->parent && (uintptr_t)c == (uintptr_t)a + ARENA_STRUCT_SIZE;
}

/* A chunk from the spare list or the pool, made current (its base is the
 * current position). */
static bool arena_next_chunk(struct mpool_arena *a, const char *who)
{
    struct arena_chunk *c = a->spare;
    if (c) {
        a->spare = c->prev;
        a->spares--;
    } else {
        if (!arena_charge(a, a->chunk_size, who))
            return false;
        void *block = arena_pool_alloc(a->pool, a->chunk_size, ARENA_ALIGN); /* failures: reported by the pool */
        if (!block) {
            arena_uncharge(a, a->chunk_size);
            return false;
        }
        c = chunk_init(block, (uintptr_t)block + a->chunk_size);
    }
    c->base = arena_position(a);
    c->prev = a->chunk;
    if (a->chunk)
        a->chunk->top = a->pos;
    a->chunk = c;
    a->pos = c->data;
    return true;
}

/* Makes room for size bytes aligned to align (both at most big_limit) in the
 * current chunk. */
static bool arena_room(struct mpool_arena *a, size_t size, size_t align, const char *who)
{
    if (a->chunk && align_up(a->pos, align) + size <= a->chunk->limit)
        return true;
    return arena_next_chunk(a, who);
}

/* A record of the arena's own of size bytes in its sequence; *at is its
 * position. */
static void *arena_record(struct mpool_arena *a, size_t size, const char *who, size_t *at)
{
    if (!arena_room(a, size, ARENA_ALIGN, who))
        return NULL;
    *at = arena_position(a);
    void *r = (void *)a->pos;
    a->pos += size;
    a->overhead += size;
    arena_set_end(a);
    return r;
}

/* Gives a chunk that leaves the chain of a back: to the spare list while it
 * has room, else to the pool (under the list lock: a report may be reading
 * the arena). */
static void arena_drop_chunk(struct mpool_arena *a, struct arena_chunk *c, bool keep)
{
    if (a->debug)
        memset((void *)c->data, MPOOL_POISON_FREED, c->limit - c->data);
    if (keep && a->spares < a->spare_max) {
        c->prev = a->spare;
        a->spare = c;
        a->spares++;
        return;
    }
    mpool_free(a->pool, c);
    arena_uncharge(a, a->chunk_size);
}

/* ---- Allocation --------------------------------------------------------- */

/* A request served by a block of its own, listed by a record. */
static void *arena_alloc_big(struct mpool_arena *a, size_t size, size_t align, const char *who)
{
    size_t n = align_up(size, ARENA_ALIGN), at;
    struct arena_big *r = arena_record(a, sizeof *r, who, &at);
    if (!r)
        return NULL;
    void *block = NULL;
    if (arena_charge(a, n, who)) {
        block = arena_pool_alloc(a->pool, n, align);
        if (!block)
            arena_uncharge(a, n);
    }
    if (!block) { /* the record was the last thing allocated */
        a->pos -= sizeof *r;
        a->overhead -= sizeof *r;
        arena_set_end(a);
        return NULL;
    }
    *r = (struct arena_big){a->bigs, at, block, n};
    a->bigs = r;
    a->big_used += n;
    return block;
}

/* Every allocation the inline path does not finish. */
static mpool_noinline void *arena_alloc_general(struct mpool_arena *a, size_t size, size_t align,
                                                const char *who)
{
    if (!arena_usable(a, who))
        return NULL;
    if (unlikely(!is_pow2(align))) {
        error_raise(&a->pool->policy, MPOOL_ERR_INVALID_ALIGNMENT, 0,
                    "%s(%p, size=%zu, alignment=%zu): alignment must be a power of two", who, (void *)a, size,
                    align);
        return NULL;
    }
    if (unlikely(size > ARENA_MAX_REQUEST || align > ARENA_MAX_REQUEST)) {
        error_raise(&a->pool->policy, MPOOL_ERR_OUT_OF_MEMORY, 0,
                    "%s(%p, size=%zu, alignment=%zu): no pool can serve this", who, (void *)a, size, align);
        return NULL;
    }
    align = align < ARENA_ALIGN ? ARENA_ALIGN : align;
    if (size > a->big_limit || align > a->big_limit)
        return arena_alloc_big(a, size, align, who);
    size_t n = align_up(size, ARENA_ALIGN);
    if (!arena_room(a, n, align, who))
        return NULL;
    uintptr_t p = align_up(a->pos, align);
    a->pos = p + n;
    arena_set_end(a);
    if (a->debug)
        memset((void *)p, MPOOL_POISON_FRESH, n);
    return (void *)p;
}

/* The exported function (mpool.h inlines the same test in its callers;
 * this one serves calls through its address and the inline path's misses). */
#undef mpool_arena_alloc
void *mpool_arena_alloc(mpool_arena_t *a, size_t size)
{
    if (likely(a != NULL)) {
        /* p is 16-aligned: round p + size (one lea, one and), or add a size
         * the compiler knows, rounded at compile time (inlined, with LTO). */
        uintptr_t p = a->pos;
        uintptr_t q = __builtin_constant_p(size) ? p + align_up(size, ARENA_ALIGN) : align_up(p + size, ARENA_ALIGN);
        if (likely(size <= ARENA_FAST_MAX && q < a->end)) {
            a->pos = q;
            return (void *)p;
        }
    }
    return arena_alloc_general(a, size, ARENA_ALIGN, "mpool_arena_alloc");
}

void *mpool_arena_alloc_aligned(mpool_arena_t *a, size_t size, size_t alignment)
{
    return arena_alloc_general(a, size, alignment, "mpool_arena_alloc_aligned");
}

void *mpool_arena_calloc(mpool_arena_t *a, size_t count, size_t size)
{
    size_t total;
    if (unlikely(__builtin_mul_overflow(count, size, &total))) {
        if (arena_usable(a, "mpool_arena_calloc"))
            error_raise(&a->pool->policy, MPOOL_ERR_INVALID_ARGUMENT, ENOMEM,
                        "mpool_arena_calloc(%p, count=%zu, size=%zu): count * size overflows", (void *)a, count,
                        size);
        return NULL;
    }
    void *p = arena_alloc_general(a, total, ARENA_ALIGN, "mpool_arena_calloc");
    if (p)
        memset(p, 0, total);
    return p;
}

char *mpool_arena_strdup(mpool_arena_t *a, const char *s)
{
    if (unlikely(s == NULL)) {
        if (arena_usable(a, "mpool_arena_strdup"))
            error_raise(&a->pool->policy, MPOOL_ERR_INVALID_ARGUMENT, 0, "mpool_arena_strdup(%p, NULL): no string",
                        (void *)a);
        return NULL;
    }
    size_t len = strlen(s) + 1;
    char *p = mpool_arena_alloc(a, len);
    if (p)
        memcpy(p, s, len);
    return p;
}

/* ---- Creation ----------------------------------------------------------- */

/* Fills the struct of a new arena (no chunk yet). */
static void arena_init(struct mpool_arena *a, struct mpool_pool *pool, size_t chunk_size, size_t max_size,
                       struct mpool_arena *parent)
{
    memset(a, 0, sizeof *a);
    a->pool = pool;
    a->parent = parent;
    a->chunk_size = chunk_size;
    a->big_limit = (chunk_size - sizeof(struct arena_chunk) - ARENA_RESERVE) / 4;
    a->max_size = max_size;
    a->spare_max = ARENA_SPARE_BYTES / chunk_size > ARENA_SPARE_MIN ? ARENA_SPARE_BYTES / chunk_size
                                                                    : ARENA_SPARE_MIN;
    a->gen = arena_new_gen();
    a->serial = a->gen;
    a->owner = pthread_self();
    a->debug = pool->debug;
    a->magic = ARENA_MAGIC;
}

mpool_arena_t *mpool_arena_create(mpool_t *parent, size_t chunk_size, size_t max_size)
{
    struct mpool_pool *pool = parent ? parent : mpool_default();
    if (!chunk_size)
        chunk_size = ARENA_DEFAULT_CHUNK;
    if (chunk_size < ARENA_MIN_CHUNK || chunk_size > ARENA_MAX_CHUNK || (max_size && max_size < chunk_size)) {
        error_raise(&pool->policy, MPOOL_ERR_INVALID_ARGUMENT, 0,
                    "mpool_arena_create(chunk_size=%zu, max_size=%zu): chunk_size must be 0 or %zu..%zu bytes, "
                    "max_size 0 or at least chunk_size",
                    chunk_size, max_size, ARENA_MIN_CHUNK, ARENA_MAX_CHUNK);
        return NULL;
    }
    chunk_size = align_up(chunk_size, ARENA_ALIGN);
    void *block = arena_pool_alloc(pool, chunk_size, ARENA_ALIGN); /* failures: reported by the pool */
    if (!block)
        return NULL;
    struct mpool_arena *a = block;
    arena_init(a, pool, chunk_size, max_size, NULL);
    a->held = a->family_held = chunk_size;
    a->chunk = chunk_init((char *)block + ARENA_STRUCT_SIZE, (uintptr_t)block + chunk_size);
    a->pos = a->chunk->data;
    arena_set_end(a);
    if (a->debug)
        memset((void *)a->chunk->data, MPOOL_POISON_FRESH, a->chunk->limit - a->chunk->data);
    lock_take(&pool->arenas.lock, pool->thread_safe);
    a->next = pool->arenas.head;
    if (a->next)
        a->next->prev = a;
    pool->arenas.head = a;
    lock_give(&pool->arenas.lock, pool->thread_safe);
    return a;
}

mpool_arena_t *mpool_arena_create_child(mpool_arena_t *parent)
{
    if (!arena_usable(parent, "mpool_arena_create_child"))
        return NULL;
    size_t at;
    struct mpool_arena *c = arena_record(parent, ARENA_STRUCT_SIZE, "mpool_arena_create_child", &at);
    if (!c)
        return NULL;
    arena_init(c, parent->pool, parent->chunk_size, 0, parent);
    c->self_pos = at;
    struct mpool_pool *pool = parent->pool;
    lock_take(&pool->arenas.lock, pool->thread_safe);
    c->next = parent->children;
    parent->children = c;
    lock_give(&pool->arenas.lock, pool->thread_safe);
    return c;
}

/* ---- Unwinding: rewind, reset, destroy ---------------------------------- */

static void arena_kill(struct mpool_arena *a, bool give_back);

/* Undoes everything at or after position at, in the order of the top of the
 * file, and sets pos there (keep: released chunks may be kept for reuse).
 * give_back false: the pool is being dropped whole, nothing is returned. */
static void arena_unwind(struct mpool_arena *a, size_t at, bool give_back)
{
    struct mpool_pool *pool = a->pool;
    while (a->children && a->children->self_pos >= at) {
        struct mpool_arena *c = a->children;
        if (c->magic == ARENA_MAGIC)
            arena_kill(c, give_back);
        lock_take(&pool->arenas.lock, pool->thread_safe);
        a->children = c->next;
        lock_give(&pool->arenas.lock, pool->thread_safe);
        a->overhead -= ARENA_STRUCT_SIZE;
    }
    while (a->cleanups && a->cleanups->pos >= at) {
        struct arena_cleanup *r = a->cleanups;
        a->cleanups = r->next;
        a->overhead -= sizeof *r;
        r->fn(r->arg);
    }
    while (a->bigs && a->bigs->pos >= at) {
        struct arena_big *r = a->bigs;
        a->bigs = r->next;
        a->overhead -= sizeof *r;
        a->big_used -= r->size;
        if (give_back) {
            mpool_free(pool, r->block);
            arena_uncharge(a, r->size);
        }
    }
    while (a->rewinds && a->rewinds->pos >= at) {
        a->overhead -= sizeof *a->rewinds;
        a->rewinds = a->rewinds->next;
    }
    if (!a->chunk || !give_back)
        return;
    uintptr_t old_end = a->pos;
    if (a->chunk->base > at) {
        lock_take(&pool->arenas.lock, pool->thread_safe);
        while (a->chunk->base > at) {
            struct arena_chunk *c = a->chunk;
            a->chunk = c->prev;
            old_end = a->chunk->top;
            arena_drop_chunk(a, c, true);
        }
        lock_give(&pool->arenas.lock, pool->thread_safe);
    }
    a->pos = a->chunk->data + (at - a->chunk->base);
    if (a->debug && old_end > a->pos)
        memset((void *)a->pos, MPOOL_POISON_FREED, old_end - a->pos);
}

/* Destroys a: its children, its cleanups, then (give_back) every byte back
 * to the pool.  A child's struct stays in its parent, dead. */
static void arena_kill(struct mpool_arena *a, bool give_back)
{
    arena_unwind(a, 0, give_back);
    struct mpool_pool *pool = a->pool;
    lock_take(&pool->arenas.lock, pool->thread_safe);
    a->magic = 0;
    a->pos = a->end = 0;
    if (!a->parent) {
        if (a->prev)
            a->prev->next = a->next;
        else
            pool->arenas.head = a->next;
        if (a->next)
            a->next->prev = a->prev;
    }
    if (give_back) {
        while (a->spare) {
            struct arena_chunk *c = a->spare;
            a->spare = c->prev;
            arena_drop_chunk(a, c, false);
        }
        while (a->chunk) {
            struct arena_chunk *c = a->chunk;
            a->chunk = c->prev;
            if (!chunk_is_first(a, c))
                arena_drop_chunk(a, c, false);
        }
    }
    lock_give(&pool->arenas.lock, pool->thread_safe);
    if (give_back && !a->parent)
        mpool_free(pool, a); /* its first chunk, unreachable now */
}

mpool_arena_mark_t mpool_arena_mark(mpool_arena_t *a)
{
    mpool_arena_mark_t m = {{0, 0}};
    if (!arena_usable(a, "mpool_arena_mark"))
        return m;
    size_t at = arena_position(a);
    m.opaque[0] = (size_t)arena_gen_at(a, at);
    m.opaque[1] = at | (size_t)(a->serial & ARENA_SERIAL_MASK) << ARENA_POS_BITS;
    return m;
}

bool mpool_arena_rewind(mpool_arena_t *a, mpool_arena_mark_t mark)
{
    if (!arena_usable(a, "mpool_arena_rewind"))
        return false;
    size_t at = mark.opaque[1] & ARENA_POS_MASK, now = arena_position(a);
    if ((mark.opaque[1] >> ARENA_POS_BITS) != (a->serial & ARENA_SERIAL_MASK)) {
        error_raise(&a->pool->policy, MPOOL_ERR_INVALID_ARGUMENT, 0,
                    "mpool_arena_rewind(%p): the mark is not one of this arena's", (void *)a);
        return false;
    }
    if (at > now || arena_gen_at(a, at) != (uint64_t)mark.opaque[0]) {
        error_raise(&a->pool->policy, MPOOL_ERR_INVALID_ARGUMENT, 0,
                    "mpool_arena_rewind(%p): stale mark: a rewind to an earlier mark or a reset went past it "
                    "(or it is not of this arena)",
                    (void *)a);
        return false;
    }
    if (at == now) /* nothing after the mark */
        return true;
    arena_unwind(a, at, true);
    mpool_assert(a->pos <= a->chunk->limit, "a rewind lands at or below its chunk's limit");
    struct arena_rewind *r = (struct arena_rewind *)a->pos; /* fits: ARENA_RESERVE */
    *r = (struct arena_rewind){a->rewinds, at, arena_new_gen(), 0};
    a->rewinds = r;
    a->pos += sizeof *r;
    a->overhead += sizeof *r;
    arena_set_end(a);
    return true;
}

bool mpool_arena_on_reset(mpool_arena_t *a, mpool_cleanup_fn cleanup, void *arg)
{
    if (!arena_usable(a, "mpool_arena_on_reset"))
        return false;
    if (!cleanup) {
        error_raise(&a->pool->policy, MPOOL_ERR_INVALID_ARGUMENT, 0, "mpool_arena_on_reset(%p, NULL): no function",
                    (void *)a);
        return false;
    }
    size_t at;
    struct arena_cleanup *r = arena_record(a, sizeof *r, "mpool_arena_on_reset", &at);
    if (!r)
        return false;
    *r = (struct arena_cleanup){a->cleanups, at, cleanup, arg};
    a->cleanups = r;
    return true;
}

void mpool_arena_reset(mpool_arena_t *a)
{
    if (!arena_usable(a, "mpool_arena_reset"))
        return;
    arena_unwind(a, 0, true);
    a->gen = arena_new_gen();
    arena_set_end(a);
}

void mpool_arena_destroy(mpool_arena_t *a)
{
    if (a && arena_usable(a, "mpool_arena_destroy"))
        arena_kill(a, true);
}

size_t mpool_arena_used(const mpool_arena_t *a)
{
    return arena_usable(a, "mpool_arena_used") ? arena_used(a) : 0;
}

size_t mpool_arena_held(const mpool_arena_t *a)
{
    return arena_usable(a, "mpool_arena_held") ? a->held : 0;
}

/* ---- The pool's arenas -------------------------------------------------- */

static size_t arena_visit_tree(const struct mpool_arena *a, unsigned depth,
                               void (*visit)(const struct arena_figures *, void *), void *arg)
{
    size_t n = 0;
    for (; a; a = a->next) {
        if (a->magic != ARENA_MAGIC)
            continue;
        struct arena_figures f = {a, a->parent, depth, arena_used(a), a->held, a->chunk_size, a->max_size};
        visit(&f, arg);
        n += 1 + arena_visit_tree(a->children, depth + 1, visit, arg);
    }
    return n;
}

size_t arena_pool_visit(const struct mpool_pool *cpool, void (*visit)(const struct arena_figures *, void *),
                        void *arg)
{
    struct mpool_pool *pool = (struct mpool_pool *)cpool;
    lock_take(&pool->arenas.lock, pool->thread_safe);
    size_t n = arena_visit_tree(pool->arenas.head, 0, visit, arg);
    lock_give(&pool->arenas.lock, pool->thread_safe);
    return n;
}

void arena_pool_release(struct mpool_pool *pool)
{
    while (pool->arenas.head)
        arena_kill(pool->arenas.head, false);
}
