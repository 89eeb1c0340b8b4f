/*
 * debug.c - debug mode (config.enable_debug, MPOOL_ENABLE_DEBUG=1): canaries
 * around every block, fill patterns, a quarantine of freed blocks, exact
 * checks on every free, and one report line per problem with the call sites
 * of the block's allocation and free.
 *
 * Layout.  A debug block of `size` bytes is carved out of a pool block (the
 * "raw" block, served by the normal routing of alloc.c) of size plus the
 * overhead; the program gets `user`:
 *
 *   raw                                     user            user+size
 *   | pad | struct debug_block | front canary |  size bytes   | tail canary |
 *           <----------- DEBUG_HEAD = 256 --->                 >= 64 bytes
 *
 *   slab layout   the pad is what the alignment needs (usually none); the
 *                 tail runs to the end of the raw block.
 *   page layout   (raw blocks above the largest slab class: page runs) user
 *                 starts one page into the run, so the block's own pages can
 *                 be protected while it is in quarantine.
 *   huge layout   (raw blocks mapped directly) user ends as close to the last
 *                 page of the mapping as the alignment allows, and that page
 *                 is a guard page (PROT_NONE): an overflow faults at once.
 *   zero layout   (a request of 0 bytes, alignment at most 16) user is a slot
 *                 of zero.h, which faults on any read or write, as in the
 *                 default mode; the header is a raw block of its own, and
 *                 there are no canaries (nothing can be written).
 * The header holds the requested size and alignment (0: none asked), the
 * form of the allocating call (malloc family, operator new, operator
 * new[]), the raw block, where user is (as an offset: memcheck's leak check
 * must not find the block reachable from its header), up to 10 return
 * addresses of the allocation and 4 of the free, and a checksum of the
 * fields that never change (keyed with the pool's secret): an underflow that
 * reaches past the 64-byte front canary into the header is reported, and a
 * damaged block is never freed.
 *
 * Fill bytes (debug.h): new blocks DEBUG_FILL_ALLOC (0xAB; calloc then
 * zeroes), freed blocks DEBUG_FILL_FREE (0xDF), canaries DEBUG_FILL_CANARY
 * (0xCB).
 *
 * Checks.  Canaries at free, realloc and mpool_check; the header checksum
 * with them.  A freed block enters its pool's quarantine (FIFO, at most 4096
 * blocks and 16 MiB of raw blocks, an eighth of max_size if the pool has a
 * cap) filled with DEBUG_FILL_FREE; the pages entirely inside the block of a
 * page or huge layout are protected, so reading them faults.  When a block
 * leaves the quarantine (or mpool_check runs) its fill is verified: a changed
 * byte is a write after free.  Then the raw block goes back to the pool.
 *
 * Releases are exact.  A release names its form (free and the malloc
 * family's other calls, the mpool_* API, operator delete, operator
 * delete[]) and may pass a size (free_sized, sized delete) and an alignment
 * (free_aligned_sized and aligned delete pass one; free_sized and unaligned
 * delete ask for an unaligned block: 0).  Each must be what the allocation
 * recorded, exactly: a mismatch is reported ("mismatched release", "size
 * mismatch", "alignment mismatch", with the release's call site) and the
 * block stays live.  realloc is of the malloc family.
 *
 * Finding blocks.  Every live and quarantined block is in one hash table
 * keyed by its user pointer, for all debug pools (a free with a NULL pool
 * must find it), chained through the headers, under one lock (debug_lock).
 * So every free, realloc and usable-size query is exact: a pointer that is
 * not in the table is not a block (invalid free: foreign, interior, or
 * freed long ago); one in quarantine is a double free; one of another pool
 * is a wrong-pool free.  The table grows (doubles) when it holds two blocks
 * per bucket.
 *
 * Reports.  One line per problem, through the pool's error policy and
 * logger (MPOOL_ERR_INVALID_POINTER: the drop-in aborts after it by
 * default): "<call>(<pointer>): <kind>: block <p> of <n> bytes, <detail>;
 * allocated at <site>; freed at <site>" (or "released at <site>" for a
 * refused release), where kind is one of heap overflow, heap underflow,
 * write after free, double free, invalid free, wrong pool, mismatched
 * release, size mismatch, alignment mismatch.
 * A damaged canary is repaired after its report, so a problem is reported
 * once.
 *
 * Locks.  debug_lock is a leaf: nothing is called into the pool (which takes
 * its own locks) or the error policy (which calls the program's logger)
 * while it is held.  Call sites are captured before it is taken (backtrace
 * may allocate: callsite.c).
 *
 * Valgrind and ASan (sanitize.h): canaries and quarantined blocks are
 * poisoned; blocks are announced to memcheck as malloc-like.  Under memcheck
 * every pool runs in debug mode (pool.c).
 */
#define _GNU_SOURCE
#include "debug.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "callsite.h"
#include "huge.h"
#include "zero.h"
#include "options.h"
#include "prim.h"
#include "sanitize.h"

#define DEBUG_HEAD 256 /* from the header's start to the block */
#define DEBUG_REDZONE 64 /* canary bytes at least after the block */
#define DEBUG_ALLOC_FRAMES DEBUG_SITE_FRAMES
#define DEBUG_FREE_FRAMES 4
#define DEBUG_QUARANTINE_BLOCKS 4096
#define DEBUG_QUARANTINE_BYTES ((size_t)16 << 20)
#define DEBUG_MAX_REQUEST ((size_t)PTRDIFF_MAX / 2) /* larger requests fail in alloc_plain */
#define DEBUG_TABLE_MIN 4096 /* buckets */
#define DEBUG_REPORTS_PER_CHECK 16 /* lines mpool_check writes at most (it counts every problem) */

enum debug_state { STATE_LIVE = 0x4c495645, STATE_QUARANTINED = 0x51554152 };
enum debug_layout { LAYOUT_SLAB = 1, LAYOUT_PAGES, LAYOUT_HUGE, LAYOUT_ZERO };

struct debug_block {
    uint64_t checksum;  /* of the fields from pool to align and alloc_site, keyed with pool->key */
    uint32_t state;
    uint16_t layout;
    uint8_t form;       /* enum debug_form: the call that allocated it */
    uint8_t own;        /* allocated for mpool itself (callsite.h): not in leak reports */
    struct mpool_pool *pool;
    struct debug_block *hash_next;
    struct debug_block *quarantine_next;
    void *raw;
    uintptr_t user_at;  /* the program's pointer less the header's address: DEBUG_HEAD, or
                           a zero-size slot's (not a pointer: memcheck's leak check
                           must not see the block as reachable from its header) */
    size_t raw_size;    /* usable bytes of the raw block */
    size_t size;        /* requested */
    size_t align;       /* requested (0: none asked; the pool's alignment applies) */
    void *alloc_site[DEBUG_ALLOC_FRAMES];
    void *free_site[DEBUG_FREE_FRAMES];
};
_Static_assert(sizeof(struct debug_block) + 64 <= DEBUG_HEAD, "the front canary is at least 64 bytes");
_Static_assert(DEBUG_HEAD % 64 == 0, "blocks keep alignments up to 64 without padding");

/* A pool's quarantine (mapped at debug_pool_init, one page). */
struct debug_pool {
    struct debug_block *head, *tail; /* oldest first */
    size_t blocks, bytes;
    size_t max_bytes;
};

int debug_pools_live;
static mpool_lock_t debug_lock;
static struct debug_block **table; /* debug_lock */
static size_t table_buckets, table_count;

/* ---- Geometry ----------------------------------------------------------- */

static inline char *block_user(const struct debug_block *b) { return (char *)((uintptr_t)b + b->user_at); }
static inline struct debug_block *block_header(const void *user)
{
    return (struct debug_block *)((char *)(uintptr_t)user - DEBUG_HEAD);
}

/* Where the front canary starts and the tail canary ends (the raw block's
 * end, or the guard page); a zero-size block has neither. */
static inline char *front_start(const struct debug_block *b)
{
    return b->layout == LAYOUT_ZERO ? block_user(b) : (char *)(b + 1);
}
static inline char *tail_end(const struct debug_block *b)
{
    char *end = (char *)b->raw + b->raw_size;
    return b->layout == LAYOUT_ZERO ? block_user(b) : b->layout == LAYOUT_HUGE ? end - PAGE_SIZE : end;
}

/* The whole pages inside the block (protected while it is in quarantine). */
static void block_inner_pages(const struct debug_block *b, char **lo, size_t *len)
{
    *lo = NULL;
    *len = 0;
    if (b->layout == LAYOUT_SLAB || b->layout == LAYOUT_ZERO)
        return;
    uintptr_t a = align_up((uintptr_t)block_user(b), PAGE_SIZE);
    uintptr_t z = ((uintptr_t)block_user(b) + b->size) & ~(uintptr_t)(PAGE_SIZE - 1);
    if (z > a) {
        *lo = (char *)a;
        *len = z - a;
    }
}

static uint64_t block_checksum(const struct debug_block *b)
{
    uint64_t h = b->pool ? b->pool->key : 0;
    const uint64_t words[] = {(uint64_t)(uintptr_t)b->pool, (uint64_t)(uintptr_t)b->raw, (uint64_t)b->user_at,
                              b->raw_size, b->size, b->align, (uint64_t)b->layout << 16 | b->form};
    /* h -> (h ^ w) * K is a bijection of h and of w (K odd): one changed
     * word always changes h */
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        h = (h ^ words[i]) * 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < DEBUG_ALLOC_FRAMES; i++)
        h = (h ^ (uint64_t)(uintptr_t)b->alloc_site[i]) * 0x9E3779B97F4A7C15ull;
    return (h ^ h >> 29) | 1; /* never 0: a zeroed header is never taken for sound */
}

/* ---- The table (debug_lock) --------------------------------------------- */

static size_t table_slot(const void *user)
{
    return (size_t)(((uint64_t)(uintptr_t)user >> 4) * 0x9E3779B97F4A7C15ull >> 20) & (table_buckets - 1);
}

static struct debug_block *table_find_locked(const void *user)
{
    if (!table)
        return NULL;
    for (struct debug_block *b = table[table_slot(user)]; b; b = b->hash_next)
        if (block_user(b) == user)
            return b;
    return NULL;
}

/* Doubles the table (or makes the first one); false if no memory. */
static bool table_grow_locked(void)
{
    size_t buckets = table_buckets ? table_buckets * 2 : DEBUG_TABLE_MIN;
    struct debug_block **fresh = prim_map(align_up(buckets * sizeof *fresh, PAGE_SIZE), PAGE_SIZE, 0);
    if (!fresh)
        return false;
    struct debug_block **old = table;
    size_t old_buckets = table_buckets;
    table = fresh;
    table_buckets = buckets;
    for (size_t i = 0; i < old_buckets; i++) {
        for (struct debug_block *b = old[i], *next; b; b = next) {
            next = b->hash_next;
            size_t s = table_slot(block_user(b));
            b->hash_next = table[s];
            table[s] = b;
        }
    }
    if (old)
        (void)prim_unmap(old, align_up(old_buckets * sizeof *old, PAGE_SIZE));
    return true;
}

static bool table_insert_locked(struct debug_block *b)
{
    if ((!table || table_count >= 2 * table_buckets) && !table_grow_locked() && !table)
        return false;
    size_t s = table_slot(block_user(b));
    b->hash_next = table[s];
    table[s] = b;
    table_count++;
    return true;
}

static void table_remove_locked(struct debug_block *b)
{
    for (struct debug_block **at = &table[table_slot(block_user(b))]; *at; at = &(*at)->hash_next) {
        if (*at == b) {
            *at = b->hash_next;
            table_count--;
            return;
        }
    }
}

/* ---- Reports ------------------------------------------------------------ */

struct debug_problem {
    const char *kind;
    const char *who;
    const void *ptr;   /* the pointer of the call */
    bool block;        /* the fields below describe a block */
    size_t size;
    char detail[96];
    void *alloc_site[DEBUG_ALLOC_FRAMES];
    void *free_site[DEBUG_FREE_FRAMES];
    bool freed;
    bool released;     /* release_site is the call's own (a refused release) */
    void *release_site[DEBUG_FREE_FRAMES];
};

static void problem_of_block(struct debug_problem *pr, const char *kind, const char *who,
                             const struct debug_block *b)
{
    memset(pr, 0, sizeof *pr);
    pr->kind = kind;
    pr->who = who;
    pr->ptr = block_user(b);
    pr->block = true;
    pr->size = b->size;
    memcpy(pr->alloc_site, b->alloc_site, sizeof pr->alloc_site);
    memcpy(pr->free_site, b->free_site, sizeof pr->free_site);
    pr->freed = b->state == STATE_QUARANTINED;
}

/* One line through the pool's policy (never with debug_lock held). */
static void problem_report(struct mpool_pool *pool, const struct debug_problem *pr)
{
    stat_atomic_inc(&pool->stats.invalid_frees);
    if (!pr->block) {
        error_raise(&pool->policy, MPOOL_ERR_INVALID_POINTER, 0, "%s(%p): %s: %s", pr->who, pr->ptr, pr->kind,
                    pr->detail);
        return;
    }
    char alloc_at[CALLSITE_TEXT + 16], free_at[CALLSITE_TEXT + 32] = "";
    callsite_format(alloc_at, sizeof alloc_at, pr->alloc_site, DEBUG_ALLOC_FRAMES);
    if (pr->freed || pr->released) {
        char site[CALLSITE_TEXT];
        callsite_format(site, sizeof site, pr->freed ? pr->free_site : pr->release_site, DEBUG_FREE_FRAMES);
        snprintf(free_at, sizeof free_at, "; %s at %s", pr->freed ? "freed" : "released", site);
    }
    error_raise(&pool->policy, MPOOL_ERR_INVALID_POINTER, 0, "%s(%p): %s: block %p of %zu bytes%s%s; allocated at %s%s",
                pr->who, pr->ptr, pr->kind, pr->ptr, pr->size, pr->detail[0] ? ", " : "", pr->detail, alloc_at,
                free_at);
}

/* The first and last bytes of [p, p + n) that differ from fill; false if none. */
static bool span_changed(const char *p, size_t n, unsigned char fill, size_t *first, size_t *last)
{
    size_t i = 0;
    uint64_t word = 0x0101010101010101ull * fill;
    while (i < n && ((uintptr_t)(p + i) & 7))
        if ((unsigned char)p[i++] != fill)
            goto found;
    /* 64 bytes a step with one test (the compiler may use vector
     * registers); a step that differs is searched word by word below */
    while (i + 64 <= n) {
        const uint64_t *w = (const uint64_t *)(const void *)(p + i);
        uint64_t diff = 0;
        for (int k = 0; k < 8; k++)
            diff |= w[k] ^ word;
        if (diff)
            break;
        i += 64;
    }
    while (i + 8 <= n && *(const uint64_t *)(const void *)(p + i) == word)
        i += 8;
    while (i < n)
        if ((unsigned char)p[i++] != fill)
            goto found;
    return false;
found:
    *first = i - 1;
    *last = *first;
    for (size_t j = n; j > *first + 1; j--) {
        if ((unsigned char)p[j - 1] != fill) {
            *last = j - 1;
            break;
        }
    }
    return true;
}

/* Checks the header and both canaries of b; fills up to `room` problems and
 * returns how many it found (a damaged header counts one and stops, with
 * *damaged set).  The canaries are repaired. */
static size_t block_verify(struct debug_block *b, const char *who, struct debug_problem *out, size_t room,
                           bool *damaged)
{
    size_t found = 0;
    *damaged = b->checksum != block_checksum(b);
    if (*damaged) {
        if (room) {
            memset(&out[0], 0, sizeof out[0]);
            out[0].kind = "heap underflow";
            out[0].who = who;
            out[0].ptr = block_user(b);
            snprintf(out[0].detail, sizeof out[0].detail,
                     "the block's header (%d bytes and more before it) was overwritten; the block is not freed",
                     DEBUG_HEAD - (int)sizeof(struct debug_block));
        }
        return 1;
    }
    char *front = front_start(b), *user = block_user(b), *end = tail_end(b);
    size_t flen = (size_t)(user - front), tlen = (size_t)(end - (user + b->size)), first, last;
    san_unpoison(front, flen);
    if (span_changed(front, flen, DEBUG_FILL_CANARY, &first, &last)) {
        if (found < room) {
            problem_of_block(&out[found], "heap underflow", who, b);
            snprintf(out[found].detail, sizeof out[found].detail, "written before its start at offsets %td..%td",
                     (ptrdiff_t)first - (ptrdiff_t)flen, (ptrdiff_t)last - (ptrdiff_t)flen);
        }
        found++;
        memset(front, DEBUG_FILL_CANARY, flen);
    }
    san_poison(front, flen);
    san_unpoison(user + b->size, tlen);
    if (span_changed(user + b->size, tlen, DEBUG_FILL_CANARY, &first, &last)) {
        if (found < room) {
            problem_of_block(&out[found], "heap overflow", who, b);
            snprintf(out[found].detail, sizeof out[found].detail, "written past its end at offsets %zu..%zu",
                     b->size + first, b->size + last);
        }
        found++;
        memset(user + b->size, DEBUG_FILL_CANARY, tlen);
    }
    san_poison(user + b->size, tlen);
    return found;
}

/* Checks the fill of quarantined block b (not its protected pages, which
 * nothing could write); one problem at most, the fill repaired. */
static size_t block_verify_fill(struct debug_block *b, const char *who, struct debug_problem *out, size_t room)
{
    char *user = block_user(b), *lo;
    size_t plen, first, last;
    block_inner_pages(b, &lo, &plen);
    size_t head = lo ? (size_t)(lo - user) : b->size;
    size_t tail_at = lo ? head + plen : b->size;
    bool bad = false;
    size_t f = 0, l = 0;
    san_unpoison(user, b->size);
    if (span_changed(user, head, DEBUG_FILL_FREE, &first, &last)) {
        bad = true;
        f = first;
        l = last;
    }
    if (tail_at < b->size && span_changed(user + tail_at, b->size - tail_at, DEBUG_FILL_FREE, &first, &last)) {
        if (!bad)
            f = tail_at + first;
        bad = true;
        l = tail_at + last;
    }
    if (bad) {
        memset(user, DEBUG_FILL_FREE, head);
        memset(user + tail_at, DEBUG_FILL_FREE, b->size - tail_at);
    }
    san_poison(user, b->size);
    if (!bad)
        return 0;
    if (room) {
        problem_of_block(out, "write after free", who, b);
        snprintf(out->detail, sizeof out->detail, "changed at offsets %zu..%zu after it was freed", f, l);
    }
    return 1;
}

/* ---- Pools -------------------------------------------------------------- */

static void fork_prepare(void) { lock_take(&debug_lock, true); }
static void fork_release(void) { lock_give(&debug_lock, true); }

void debug_register_fork(void)
{
    static bool done;
    if (!__atomic_exchange_n(&done, true, __ATOMIC_ACQ_REL))
        pthread_atfork(fork_prepare, fork_release, fork_release);
}

bool debug_pool_init(struct mpool_pool *pool)
{
    struct debug_pool *dp = prim_map(PAGE_SIZE, PAGE_SIZE, 0);
    if (!dp)
        return false;
    dp->max_bytes = DEBUG_QUARANTINE_BYTES;
    if (pool->config.max_size && pool->config.max_size / 8 < dp->max_bytes)
        dp->max_bytes = pool->config.max_size / 8;
    pool->debug_state = dp;
    __atomic_fetch_add(&debug_pools_live, 1, __ATOMIC_RELAXED);
    /* Not inside the default pool's creation (the first malloc: pthread_atfork
     * may allocate); mpool_default registers for it. */
    if (pool != &mpool_default_pool) {
        debug_register_fork();
        callsite_prepare(pool_process_options()->fast_unwind);
    }
    return true;
}

void debug_pool_forget(struct mpool_pool *pool, bool destroying)
{
    struct debug_pool *dp = pool->debug_state;
    if (!dp)
        return;
    san_internal_begin();
    lock_take(&debug_lock, true);
    for (size_t i = 0; table && i < table_buckets; i++) {
        for (struct debug_block **at = &table[i]; *at;) {
            struct debug_block *b = *at;
            if (b->pool != pool) {
                at = &b->hash_next;
                continue;
            }
            *at = b->hash_next;
            table_count--;
            char *lo;
            size_t len;
            block_inner_pages(b, &lo, &len);
            if (b->state == STATE_QUARANTINED && len)
                (void)prim_protect(lo, len, true);
            if (b->layout == LAYOUT_HUGE)
                (void)prim_protect(tail_end(b), PAGE_SIZE, true);
            san_unpoison(b->raw, b->raw_size);
        }
    }
    dp->head = dp->tail = NULL;
    dp->blocks = dp->bytes = 0;
    lock_give(&debug_lock, true);
    san_internal_end();
    if (destroying) {
        pool->debug_state = NULL;
        (void)prim_unmap(dp, PAGE_SIZE);
        __atomic_fetch_sub(&debug_pools_live, 1, __ATOMIC_RELAXED);
    }
}

/* The debug pool that answers for p when the call named `pool` (NULL: the
 * pool of p's region, else the default pool), or NULL if that is no debug
 * pool. */
static struct mpool_pool *debug_target(struct mpool_pool *pool, const void *p)
{
    if (!pool) {
        struct region *r = region_find(p);
        if (r)
            pool = r->pool;
        else if (__atomic_load_n(&mpool_default_ready, __ATOMIC_ACQUIRE))
            pool = &mpool_default_pool;
    }
    return pool && pool->debug && pool->debug_state ? pool : NULL;
}

/* ---- The quarantine ---------------------------------------------------- */

/* Takes the blocks that must leave the quarantine (all if `all`) off it and
 * the table; returns them as a list through quarantine_next. */
static struct debug_block *quarantine_take_locked(struct debug_pool *dp, bool all)
{
    struct debug_block *out = NULL, **tail = &out;
    while (dp->head && (all || dp->blocks > DEBUG_QUARANTINE_BLOCKS || dp->bytes > dp->max_bytes)) {
        struct debug_block *b = dp->head;
        dp->head = b->quarantine_next;
        if (!dp->head)
            dp->tail = NULL;
        dp->blocks--;
        dp->bytes -= b->raw_size;
        table_remove_locked(b);
        b->quarantine_next = NULL;
        *tail = b;
        tail = &b->quarantine_next;
    }
    return out;
}

/* Verifies blocks that left the quarantine and gives them back to the pool. */
static void quarantine_release(struct mpool_pool *pool, struct debug_block *list, const char *who)
{
    while (list) {
        struct debug_block *b = list;
        list = b->quarantine_next;
        char *lo;
        size_t len;
        block_inner_pages(b, &lo, &len);
        if (len)
            (void)prim_protect(lo, len, true);
        struct debug_problem pr[3];
        bool damaged;
        size_t n = block_verify_fill(b, who, pr, 1);
        n += block_verify(b, who, pr + n, 2, &damaged);
        void *raw = b->raw;
        size_t raw_size = b->raw_size;
        if (b->layout == LAYOUT_HUGE)
            (void)prim_protect(tail_end(b), PAGE_SIZE, true);
        for (size_t i = 0; i < n && i < 3; i++)
            problem_report(pool, &pr[i]);
        if (damaged)
            continue; /* raw and its size are not to be trusted: the block stays out of use */
        if (b->layout == LAYOUT_ZERO)
            free_plain(pool, block_user(b));
        san_unpoison(raw, raw_size);
        free_plain(pool, raw);
    }
}

/* ---- Allocation --------------------------------------------------------- */

void *debug_alloc(struct mpool_pool *pool, size_t size, size_t align, enum debug_form form, const char *who,
                  const void *old, bool *zeroed, size_t *usable)
{
    if (zeroed)
        *zeroed = false;
    size_t asked = align;
    if (align < pool->align)
        align = pool->align;
    if (size > DEBUG_MAX_REQUEST || align > DEBUG_MAX_REQUEST / 4)
        return alloc_plain(pool, size, align, who, old, NULL, usable); /* fails and reports */
    void *sites[DEBUG_ALLOC_FRAMES];
    callsite_capture(sites, DEBUG_ALLOC_FRAMES, 1);

    /* The layout follows the routing of alloc.c for the raw size. */
    size_t front = align_up(DEBUG_HEAD, align);
    size_t total = front + size + DEBUG_REDZONE;
    enum debug_layout layout = LAYOUT_SLAB;
    size_t raw_align = align;
    char *user = NULL;
    if (size == 0 && align <= ZERO_SLOT) { /* the header apart, the block a slot of zero.h */
        layout = LAYOUT_ZERO;
        total = sizeof(struct debug_block);
        raw_align = 0;
        size_t none;
        user = alloc_plain(pool, 0, align, who, old, NULL, &none);
        if (!user)
            return NULL;
    } else if (total > pool->max_block || align > PAGE_SIZE || align_up(total, align) > SLAB_MAX) {
        layout = LAYOUT_PAGES;
        front = front > PAGE_SIZE ? front : PAGE_SIZE;
        total = front + size + DEBUG_REDZONE;
        if (total > pool->max_block || total > BUDDY_MAX_RUN || align > BUDDY_MAX_RUN) {
            layout = LAYOUT_HUGE;
            total = front + align_up(size, align) + PAGE_SIZE;
        }
    }
    size_t raw_size;
    void *raw = alloc_plain(pool, total, raw_align, who, old, NULL, &raw_size);
    if (!raw) {
        if (user)
            free_plain(pool, user);
        return NULL;
    }
    if (layout == LAYOUT_ZERO) {
        /* user is the slot */
    } else if (layout == LAYOUT_HUGE) {
        struct huge *h = huge_of(raw);
        if (h) {
            raw_size = h->usable;
            char *guard = (char *)raw + raw_size - PAGE_SIZE;
            user = (char *)((uintptr_t)(guard - size) & ~(uintptr_t)(align - 1));
        } else { /* not mapped directly after all: no guard page */
            layout = LAYOUT_PAGES;
            user = (char *)raw + front;
        }
    } else {
        user = (char *)raw + front;
    }

    san_internal_begin();
    struct debug_block *b = layout == LAYOUT_ZERO ? (struct debug_block *)raw : block_header(user);
    memset(b, 0, sizeof *b);
    b->state = STATE_LIVE;
    b->layout = (uint16_t)layout;
    b->form = (uint8_t)form;
    b->own = callsite_own_allocation();
    b->pool = pool;
    b->raw = raw;
    b->user_at = (uintptr_t)user - (uintptr_t)b;
    b->raw_size = raw_size;
    b->size = size;
    b->align = asked;
    memcpy(b->alloc_site, sites, sizeof sites);
    b->checksum = block_checksum(b);
    memset(front_start(b), DEBUG_FILL_CANARY, (size_t)(user - front_start(b)));
    memset(user, DEBUG_FILL_ALLOC, size);
    memset(user + size, DEBUG_FILL_CANARY, (size_t)(tail_end(b) - (user + size)));
    if (layout == LAYOUT_HUGE)
        (void)prim_protect(tail_end(b), PAGE_SIZE, false);

    lock_take(&debug_lock, true);
    bool listed = table_insert_locked(b);
    lock_give(&debug_lock, true);
    if (!listed) {
        if (layout == LAYOUT_HUGE)
            (void)prim_protect(tail_end(b), PAGE_SIZE, true);
        san_internal_end();
        if (layout == LAYOUT_ZERO)
            free_plain(pool, user);
        free_plain(pool, raw);
        stat_atomic_inc(&pool->stats.failures);
        error_raise(&pool->policy, MPOOL_ERR_OUT_OF_MEMORY, 0, "%s(size=%zu): out of memory (debug table)", who,
                    size);
        return NULL;
    }
    san_poison(front_start(b), (size_t)(user - front_start(b)));
    san_poison(user + size, (size_t)(tail_end(b) - (user + size)));
    san_internal_end();
    san_block_alloc(user, size, DEBUG_REDZONE, false);
    *usable = size;
    return user;
}

/* ---- Freeing ------------------------------------------------------------ */

/* Looks p up: its header and state, or NULL. */
static struct debug_block *debug_find(const void *p, uint32_t *state, struct mpool_pool **pool)
{
    lock_take(&debug_lock, true);
    struct debug_block *b = table_find_locked(p);
    if (b) {
        *state = b->state;
        *pool = b->pool;
    }
    lock_give(&debug_lock, true);
    return b;
}

static void report_not_a_block(struct mpool_pool *target, const char *who, const void *p)
{
    struct debug_problem pr;
    memset(&pr, 0, sizeof pr);
    pr.kind = "invalid free";
    pr.who = who;
    pr.ptr = p;
    snprintf(pr.detail, sizeof pr.detail, "not a live block of debug pool %p (foreign, interior or freed long ago)",
             (void *)target);
    problem_report(target, &pr);
}

static void report_wrong_pool(struct mpool_pool *pool, const char *who, const void *p, struct mpool_pool *owner)
{
    struct debug_problem pr;
    memset(&pr, 0, sizeof pr);
    pr.kind = "wrong pool";
    pr.who = who;
    pr.ptr = p;
    snprintf(pr.detail, sizeof pr.detail, "a block of pool %p, not of pool %p", (void *)owner, (void *)pool);
    problem_report(pool, &pr);
}

/* Frees live block b (user pointer p) of its pool: checks, fills, protects,
 * quarantines, and releases what leaves the quarantine.  False if it was
 * refused (reported). */
static bool debug_release(struct debug_block *b, void *p, const char *who, void *const *free_sites)
{
    struct mpool_pool *pool = b->pool;
    struct debug_pool *dp = pool->debug_state;
    struct debug_problem pr[2];
    bool damaged;
    size_t n = block_verify(b, who, pr, 2, &damaged);
    for (size_t i = 0; i < n && i < 2; i++)
        problem_report(pool, &pr[i]);
    if (damaged)
        return false;
    san_block_free(p, b->size, DEBUG_REDZONE);
    san_unpoison(p, b->size);
    memset(p, DEBUG_FILL_FREE, b->size);
    san_poison(p, b->size);
    char *lo;
    size_t len;
    block_inner_pages(b, &lo, &len);

    lock_take(&debug_lock, true);
    if (table_find_locked(p) != b || b->state != STATE_LIVE) { /* another thread freed it meanwhile */
        lock_give(&debug_lock, true);
        struct debug_problem d;
        problem_of_block(&d, "double free", who, b);
        problem_report(pool, &d);
        return false;
    }
    if (len)
        (void)prim_protect(lo, len, false);
    b->state = STATE_QUARANTINED;
    memcpy(b->free_site, free_sites, sizeof b->free_site);
    b->quarantine_next = NULL;
    if (dp->tail)
        dp->tail->quarantine_next = b;
    else
        dp->head = b;
    dp->tail = b;
    dp->blocks++;
    dp->bytes += b->raw_size;
    struct debug_block *leaving = quarantine_take_locked(dp, false);
    lock_give(&debug_lock, true);
    quarantine_release(pool, leaving, who);
    return true;
}

static const char *form_name(unsigned form)
{
    return form == DEBUG_FORM_NEW ? "operator new" : form == DEBUG_FORM_NEW_ARRAY ? "operator new[]" : "malloc";
}

static const char *form_release_name(unsigned form)
{
    return form == DEBUG_FORM_NEW ? "operator delete" : form == DEBUG_FORM_NEW_ARRAY ? "operator delete[]" : "free";
}

/* True if release rel (NULL: a plain free) does not fit live block b: the
 * form of the call, the size and the alignment it passes are exactly those
 * of the allocation; pr gets the problem. */
static bool release_mismatch(const struct debug_block *b, const struct debug_release *rel, const char *who,
                             struct debug_problem *pr)
{
    static const struct debug_release plain = {DEBUG_FORM_MALLOC, DEBUG_ANY, DEBUG_ANY};
    if (!rel)
        rel = &plain;
    const char *kind = NULL;
    char detail[sizeof pr->detail];
    if (rel->form != b->form) {
        kind = "mismatched release";
        snprintf(detail, sizeof detail, "allocated with %s, to be released with %s", form_name(b->form),
                 form_release_name(b->form));
    } else if (rel->size != DEBUG_ANY && rel->size != b->size) {
        kind = "size mismatch";
        snprintf(detail, sizeof detail, "released with size %zu", rel->size);
    } else if (rel->align != DEBUG_ANY && rel->align != b->align) {
        kind = "alignment mismatch";
        snprintf(detail, sizeof detail, "allocated with alignment %zu, released with alignment %zu (0: none)",
                 b->align, rel->align);
    }
    if (!kind)
        return false;
    problem_of_block(pr, kind, who, b);
    memcpy(pr->detail, detail, sizeof detail);
    return true;
}

enum debug_verdict debug_free(struct mpool_pool *pool, void *p, const char *who, const struct debug_release *rel)
{
    san_internal_begin();
    uint32_t state = 0;
    struct mpool_pool *owner = NULL;
    struct debug_block *b = debug_find(p, &state, &owner);
    enum debug_verdict v = DEBUG_REFUSED;
    if (!b) {
        struct mpool_pool *target = debug_target(pool, p);
        if (!target)
            v = DEBUG_NOT_MINE;
        else
            report_not_a_block(target, who, p);
    } else if (pool && owner != pool) {
        report_wrong_pool(pool, who, p, owner);
    } else if (state != STATE_LIVE) {
        struct debug_problem pr;
        problem_of_block(&pr, "double free", who, b);
        pr.detail[0] = '\0';
        snprintf(pr.detail, sizeof pr.detail, "already freed");
        problem_report(owner, &pr);
    } else {
        void *sites[DEBUG_FREE_FRAMES];
        callsite_capture(sites, DEBUG_FREE_FRAMES, 1);
        struct debug_problem pr;
        if (release_mismatch(b, rel, who, &pr)) { /* the block stays live */
            pr.released = true;
            memcpy(pr.release_site, sites, sizeof sites);
            problem_report(owner, &pr);
        } else {
            v = debug_release(b, p, who, sites) ? DEBUG_DONE : DEBUG_REFUSED;
        }
    }
    san_internal_end();
    return v;
}

/* ---- Resizing and queries ----------------------------------------------- */

bool debug_realloc(struct mpool_pool *pool, void *p, size_t size, void **out)
{
    san_internal_begin();
    uint32_t state = 0;
    struct mpool_pool *owner = NULL;
    struct debug_block *b = debug_find(p, &state, &owner);
    bool mine = true;
    *out = NULL;
    if (!b) {
        struct mpool_pool *target = debug_target(pool, p);
        if (!target)
            mine = false;
        else
            report_not_a_block(target, "mpool_realloc", p);
    } else if (pool && owner != pool) {
        report_wrong_pool(pool, "mpool_realloc", p, owner);
    } else if (state != STATE_LIVE) {
        struct debug_problem pr;
        problem_of_block(&pr, "double free", "mpool_realloc", b);
        snprintf(pr.detail, sizeof pr.detail, "realloc of a freed block");
        problem_report(owner, &pr);
    } else if (b->form != DEBUG_FORM_MALLOC) {
        struct debug_problem pr;
        release_mismatch(b, NULL, "mpool_realloc", &pr);
        pr.released = true;
        callsite_capture(pr.release_site, DEBUG_FREE_FRAMES, 1);
        problem_report(owner, &pr);
    } else if (size == 0) {
        void *sites[DEBUG_FREE_FRAMES];
        callsite_capture(sites, DEBUG_FREE_FRAMES, 1);
        debug_release(b, p, "mpool_realloc", sites);
    } else {
        size_t got;
        void *q = debug_alloc(owner, size, 0, DEBUG_FORM_MALLOC, "mpool_realloc", p, NULL, &got);
        if (q) {
            size_t keep = size < b->size ? size : b->size;
            memcpy(q, p, keep);
            void *sites[DEBUG_FREE_FRAMES];
            callsite_capture(sites, DEBUG_FREE_FRAMES, 1);
            debug_release(b, p, "mpool_realloc", sites);
            stats_count_realloc(owner, size, size, true);
            *out = q;
        }
    }
    san_internal_end();
    return mine;
}

bool debug_usable(const struct mpool_pool *pool, const void *p, bool *live, size_t *out)
{
    san_internal_begin();
    *live = false;
    *out = 0;
    bool mine = true;
    lock_take(&debug_lock, true);
    struct debug_block *b = table_find_locked(p);
    if (b && b->state == STATE_LIVE && (!pool || b->pool == pool)) {
        *live = true;
        *out = b->size;
    }
    lock_give(&debug_lock, true);
    if (!b && !debug_target((struct mpool_pool *)(uintptr_t)pool, p))
        mine = false;
    san_internal_end();
    return mine;
}

/* ---- Checking ----------------------------------------------------------- */

size_t debug_check(struct mpool_pool *pool)
{
    if (!pool->debug || !pool->debug_state)
        return 0;
    san_internal_begin();
    struct debug_problem pr[DEBUG_REPORTS_PER_CHECK];
    size_t found = 0;
    lock_take(&debug_lock, true);
    for (size_t i = 0; table && i < table_buckets; i++) {
        for (struct debug_block *b = table[i]; b; b = b->hash_next) {
            if (b->pool != pool)
                continue;
            size_t room = found < DEBUG_REPORTS_PER_CHECK ? DEBUG_REPORTS_PER_CHECK - found : 0;
            bool damaged;
            size_t n = block_verify(b, "mpool_check", pr + (DEBUG_REPORTS_PER_CHECK - room), room, &damaged);
            if (b->state == STATE_QUARANTINED && !damaged) {
                size_t r = found + n < DEBUG_REPORTS_PER_CHECK ? DEBUG_REPORTS_PER_CHECK - found - n : 0;
                n += block_verify_fill(b, "mpool_check", pr + (DEBUG_REPORTS_PER_CHECK - r), r);
            }
            found += n;
        }
    }
    lock_give(&debug_lock, true);
    for (size_t i = 0; i < found && i < DEBUG_REPORTS_PER_CHECK; i++)
        problem_report(pool, &pr[i]);
    san_internal_end();
    return found;
}

size_t debug_quarantine_bytes(struct mpool_pool *pool)
{
    struct debug_pool *dp = pool->debug_state;
    if (!dp)
        return 0;
    lock_take(&debug_lock, true);
    size_t bytes = dp->bytes;
    lock_give(&debug_lock, true);
    return bytes;
}

/* ---- Leaks -------------------------------------------------------------- */

/* The program's live blocks (not those allocated for mpool itself). */
size_t debug_live_snapshot(struct mpool_pool *pool, struct debug_live *out, size_t cap, size_t *live)
{
    size_t n = 0, all = 0;
    san_internal_begin();
    lock_take(&debug_lock, true);
    for (size_t i = 0; table && i < table_buckets; i++) {
        for (struct debug_block *b = table[i]; b; b = b->hash_next) {
            if (b->pool != pool || b->state != STATE_LIVE || b->own)
                continue;
            all++;
            if (n < cap) {
                out[n].size = b->size;
                memcpy(out[n].site, b->alloc_site, sizeof out[n].site);
                n++;
            }
        }
    }
    lock_give(&debug_lock, true);
    san_internal_end();
    *live = all;
    return n;
}

size_t debug_live_count(struct mpool_pool *pool)
{
    size_t live;
    debug_live_snapshot(pool, NULL, 0, &live);
    return live;
}
