/*
 * slab.h - slabs: a page run cut into equal blocks of one size class, owned
 * by one heap (heap.h), with three free lists threaded through the free
 * blocks (no block header), after the free-list sharding of mimalloc (Leijen,
 * Zorn and de Moura, "Mimalloc: Free List Sharding in Action", 2019).
 *
 * Lists
 *   free         what allocation pops; only the owner touches it.
 *   local_free   what the owner's frees push; only the owner touches it.
 *   thread_free  what other threads' frees push, with one compare-and-swap;
 *                the owner takes the whole list with one atomic exchange.
 * The owner moves local_free and thread_free to free ("collects") only when
 * free is empty, so allocation and the owner's free each touch one list with
 * plain loads and stores.  A collect that finds blocks on thread_free makes
 * that list the free list whole and leaves local_free for the next collect
 * (joining the two would walk one of them to its tail).
 *
 * Carving.  A new slab links only its first page's worth of blocks into its
 * free list; `extent` counts the blocks carved so far, and the owner carves
 * the next page's worth when a class finds no free block in the slab.  So a
 * slab touches only the pages it hands out (a small program's classes cost a
 * page each, not a whole slab each), and formatting costs no page faults
 * beyond those.  Blocks past the extent are no blocks yet: the block test
 * refuses them.
 *
 * Counting.  `used` counts the carved blocks on none of free and local_free: blocks
 * handed out, and blocks other threads freed that the owner has not collected
 * yet, plus one while the slab is its heap's current slab (`current`).
 * Allocation adds one, the owner's free subtracts one, a collect subtracts
 * the length of the thread_free list it took, which the thread_free word
 * carries in its top 16 bits (each remote push adds one in the same
 * compare-and-swap), so no collect walks the list.  used == 0 means every block is
 * free and on the owner's lists and the slab is not current: it can go back
 * to the page allocator.  The hold of the current slab spares the owner's
 * free a second test: a class used in alloc+free pairs never sees 0.
 *
 * Full slabs and SLAB_NOTIFY.  A slab whose three lists are empty is parked
 * by its owner on the heap's full list; the owner sets bit 0 of thread_free
 * (SLAB_NOTIFY) with a compare-and-swap from 0, so parking fails if a block
 * arrived meanwhile.  Parking also takes all but an eighth of the capacity
 * off used (into `parked`), so the owner's free finds "used == 0" once an
 * eighth of the slab is free, with the test it makes for an empty slab: only
 * then does the owner take the notification back (a compare-and-swap on
 * another cache line; at every free into a parked slab it took a fifth of the
 * churn profile, and the call at every free a tenth of the one-thread churn)
 * and queue the slab again; meanwhile its frees wait on local_free.  The
 * remote free that finds the bit set clears it in the
 * same compare-and-swap that pushes its block, and then pushes the slab on
 * its heap's stack of notified slabs (heap.h): exactly one thread does so per
 * parking, and the owner takes the stack with one exchange when it needs
 * blocks.  Until the owner has taken a notified slab from that stack it
 * never collects or releases it (the notifier may still be pushing it).
 *
 * Marks.  The second word of every free block holds the pool's secret
 * random key (pool->key); allocation clears it, so every block is at least
 * 16 bytes.  The owner's inline free does not read the block (on a random
 * free that read is a cache miss, and it made the free twice as slow in the
 * churn benchmark): it refuses only the head of local_free (free(a);
 * free(a)).  Any other double free by the owner puts a block on a list twice,
 * and is found before the block can be handed out twice: a pop whose block
 * lacks the mark (it was handed out since), or a slab whose count says empty
 * while not every block carries the mark.  Then the owner rebuilds the
 * slab's lists from the marks (slab_rebuild), which are exact, and the double
 * free is reported.  Every other free (another thread's, the general path)
 * reads the mark first and refuses a block that carries it.
 *
 * Links.  A free block's first word is the next block's address XOR the
 * pool's secret `link` (another random word than the mark: a read of a freed
 * block shows the mark, which must not give the link secret away), so a
 * link overwritten by a program that does not know the secret decodes to a
 * random address.  Allocation checks that every head lies in the slab's
 * region and carries the mark before it reads the head's link (the region
 * test also stands for the test of an empty list): a corrupted link fails
 * it, and the owner rebuilds the lists from the marks and reports it
 * (heap.c); nothing is read outside the region.  The walks stop at a link
 * that leaves the region.  The
 * walks of cold paths decode with the copy of the secret in the slab's
 * descriptor (page->link).
 *
 * Releasing pages.  mpool_trim has the owner give back (slab_trim) every
 * page of a slab but the first whose carved blocks are all free: on free or
 * local_free after thread_free is taken under SLAB_LOCKED, or in a page
 * released before.  The blocks that start in such a page leave the lists
 * (`released` counts them) and its descriptor becomes a stub that its
 * heads-table entry leads to: kind PAGE_SLAB, npages 0, no heap
 * (page_is_released, region.h).  Every lookup
 * of an address there stops at the stub, which heads no run: the owner's
 * inline free falls through (no heap), and the general path, the exact
 * queries and realloc find no block and refuse it as an invalid pointer.
 * So a released block cannot be freed twice onto a list, and its bytes
 * (zeros once decommitted) are never read as a link or a mark: slab_verify_
 * empty counts it free, slab_marked_count skips it, slab_rebuild first
 * marks it and restores its page.  When its lists are empty, the owner
 * re-links a released page's blocks (slab_recarve) before carving further,
 * so carving never writes into a released page.  The first page stays: its
 * descriptor is the slab's head.  A page with no block start (inside a
 * block larger than a page) is only decommitted.  A remote free that read
 * the descriptor before it became a stub and pushed a released block (a
 * double free racing the trim) is dropped when the owner collects it.
 *
 * Memory ordering.  A remote free writes the block's link and mark, then
 * publishes the block, and one more in the count, with a compare-and-swap on
 * thread_free; the owner's exchange is an acquire, so it reads the links the
 * pushers wrote, and takes exactly as many blocks as the count it takes.  Parking
 * and the remote compare-and-swap are both acquire-release, so the free that
 * takes a notification sees what the owner did to the slab before parking.
 * The notified-slab stack works the same way (release push, acquire take).
 */
#ifndef MPOOL_SLAB_H
#define MPOOL_SLAB_H

#include "pool.h"
#include "sanitize.h"

#define SLAB_NOTIFY ((uintptr_t)1) /* thread_free bit 0: the slab is parked full */
#define SLAB_LOCKED ((uintptr_t)2) /* thread_free bit 1: the owner rebuilds the lists; remote frees wait */
#define SLAB_FLAGS (SLAB_NOTIFY | SLAB_LOCKED)
/* thread_free bits 48-63: how many blocks its list holds (slab.h: counting),
 * so that the owner takes list and count in one exchange without walking the
 * list (each step of that walk was a cache miss on a block another thread
 * wrote).  Regions lie below 2^48 (REGION_ADDRESS_LIMIT) and a slab holds
 * fewer than 2^16 blocks (slab_format). */
#define SLAB_COUNT_SHIFT 48
#define SLAB_COUNT_ONE ((uintptr_t)1 << SLAB_COUNT_SHIFT)
#define SLAB_COUNT_MAX 0xFFFFu
#define SLAB_LIST ((SLAB_COUNT_ONE - 1) & ~SLAB_FLAGS) /* the bits of the list's first block */
_Static_assert(SLAB_COUNT_ONE == REGION_ADDRESS_LIMIT, "blocks' addresses fit below the count");

/* The list and the count of a thread_free word. */
static inline void *slab_tf_list(uintptr_t tf) { return (void *)(tf & SLAB_LIST); }
static inline uint32_t slab_tf_count(uintptr_t tf) { return (uint32_t)(tf >> SLAB_COUNT_SHIFT); }


/* True if byte offset off from the slab's first block is where a carved block
 * starts (a block beyond the extent was never handed out): rotr64(off *
 * inverse, shift) is the block index when off is a multiple of the block
 * size and more than any capacity otherwise (common.h), so one
 * multiplication, one rotation and one compare, exact for every 64-bit
 * offset. */
static inline bool slab_is_block_offset(const struct page *pg, uint64_t off)
{
    /* extent grows while other threads test blocks they hold (below it) */
    return rotr64(off * pg->inverse, pg->shift) < __atomic_load_n(&pg->extent, __ATOMIC_RELAXED);
}

/* The same test by the slab's owner, the only thread that writes extent: a
 * plain read, which the compiler folds into the compare. */
static inline bool slab_is_block_offset_owner(const struct page *pg, uint64_t off)
{
    return rotr64(off * pg->inverse, pg->shift) < pg->extent;
}

/* The offset of p from the first block of slab pg. */
static inline uint64_t slab_offset(const struct page *pg, const void *p)
{
    return (uint64_t)((uintptr_t)p - (uintptr_t)pg->start);
}

/* The block's second word: the pool's key while the block is free. */
static inline uint64_t *block_mark(void *p) { return (uint64_t *)p + 1; }

/* AddressSanitizer builds (sanitize.h): the bytes of a free block past its
 * link and mark are poisoned, so the program's use after free is reported;
 * a block handed out is unpoisoned whole.  Nothing in other builds. */
static inline void slab_asan_freed(const struct page *pg, void *b)
{
    san_asan_poison((char *)b + 2 * sizeof(uint64_t), pg->block_size - 2 * sizeof(uint64_t));
}

static inline void slab_asan_handed_out(const struct page *pg, void *b)
{
    san_asan_unpoison(b, pg->block_size);
}

/* The next block on a free list from free block b's encoded first word. */
static inline void *slab_link_get(const void *b, uint64_t link)
{
    return (void *)(*(const uintptr_t *)b ^ (uintptr_t)link);
}

/* Links free block b to next (NULL: the end of the list). */
static inline void slab_link_put(void *b, const void *next, uint64_t link)
{
    *(uintptr_t *)b = (uintptr_t)next ^ (uintptr_t)link;
}

/* used is written by its owner only; statistics in other threads read it,
 * and a stale value there is harmless.  So the owner's updates are plain,
 * which lets the compiler fold "used -= 1; if (used == 0)" into two
 * instructions; under ThreadSanitizer they are relaxed atomic stores, so
 * that this benign race is not reported. */
static inline void slab_set_used(struct page *pg, int32_t used)
{
#ifdef MPOOL_TSAN
    __atomic_store_n(&pg->used, used, __ATOMIC_RELAXED);
#else
    pg->used = used;
#endif
}

/* used with what parking took off it. */
static inline int32_t slab_used(const struct page *pg)
{
    return __atomic_load_n(&pg->used, __ATOMIC_RELAXED) + (int32_t)__atomic_load_n(&pg->parked, __ATOMIC_RELAXED);
}

/* True if b, the head of slab pg's free list, is in pg's region (pg is its
 * descriptor, in the region's header) and carries the free mark.  The first
 * test also fails for an empty list (NULL) and for a link that decoded to an
 * address outside the region (slab.h: links), so nothing is read there. */
static inline bool slab_head_ok(const struct page *pg, void *const *b, uint64_t key)
{
#ifdef MPOOL_ASAN /* a corrupted link may lead into a free block's poisoned bytes: not a mark */
    if (((uintptr_t)b ^ (uintptr_t)pg) < REGION_SIZE && __asan_address_is_poisoned((const uint64_t *)b + 1))
        return false;
#endif
    return ((uintptr_t)b ^ (uintptr_t)pg) < REGION_SIZE && ((const uint64_t *)b)[1] == key;
}

/* True if the next block a link led to may be read: in slab pg's region (so
 * a link overwritten by the program is not followed out of it). */
static inline bool slab_link_readable(const struct page *pg, const void *b)
{
    return ((uintptr_t)b ^ (uintptr_t)pg) < REGION_SIZE;
}

/* Pops a block off the slab's free list (the caller checked it is not empty
 * and its head carries the mark). */
static inline void *slab_pop(struct page *pg, uint64_t link)
{
    void *block = pg->free;
    pg->free = slab_link_get(block, link);
    slab_set_used(pg, pg->used + 1);
    *block_mark(block) = 0;
    slab_asan_handed_out(pg, block);
    return block;
}

/* The owner's collect when the free list is empty and no other thread freed
 * into the slab: local_free becomes the free list (slab_collect without its
 * call and its test of thread_free's contents).  True if it did.  A class
 * whose slab carves one block at a time (blocks of a page or more) meets
 * this at every allocation of a malloc+free pair, so the slow halves of
 * allocation try it before the refill. */
static inline bool slab_collect_local(struct page *pg)
{
    if (pg->free != NULL || pg->local_free == NULL || __atomic_load_n(&pg->thread_free, __ATOMIC_RELAXED) != 0)
        return false;
    pg->free = pg->local_free;
    pg->local_free = NULL;
    return true;
}

/* Formats a fresh run (pg, kind SLAB, class cls, block_size already set by
 * the page allocator under its lock: buddy_check reads it) into a slab of
 * blocks of block_size bytes owned by heap, with the pool's mark key and link secret,
 * and carves its first blocks. */
void slab_format(struct page *pg, struct heap *heap, size_t block_size, uint64_t key, uint64_t link) mpool_internal;

/* The owner: links the next page's worth of uncarved blocks (at least one),
 * marked with key, into the empty free list; false if every block is carved. */
bool slab_carve(struct page *pg, uint64_t key) mpool_internal;

/* The owner, for a slab that is not parked (mpool_trim): gives back to the
 * system every page but the first whose blocks are all free (on free or
 * local_free once thread_free is taken under the lock bit, so a block
 * another thread is still freeing counts as live).  The blocks that start
 * in such a page leave the lists and the page is released; pages that only
 * lie inside free blocks are just decommitted.  Returns the bytes that were
 * resident and went back.  Slabs of more pages or blocks than these are
 * left alone (none of the default classes). */
#define SLAB_TRIM_MAX_PAGES 128
#define SLAB_TRIM_MAX_BLOCKS 2048
size_t slab_trim(struct page *pg) mpool_internal;

/* The owner, onto an empty free list: links the blocks of the first
 * released page (marked with key) and makes it an inner page again; false if
 * no page is released.  slab_carve does this before carving further. */
bool slab_recarve(struct page *pg, uint64_t key) mpool_internal;

/* Every released page becomes an inner page again and released 0; with a
 * key (not 0), the blocks that start there are marked free first (for a
 * rebuild, which then finds them); with 0, the slab is going back. */
void slab_unrelease(struct page *pg, uint64_t key) mpool_internal;

/* Live blocks of the slab, thread frees not yet collected included. */
static inline size_t slab_live(const struct page *pg)
{
    return (size_t)slab_used(pg) - __atomic_load_n(&pg->current, __ATOMIC_RELAXED);
}

/* Makes the slab current (holding one count of used) or not. */
static inline void slab_set_current(struct page *pg, bool on)
{
    slab_set_used(pg, on ? pg->used + 1 : pg->used - 1);
    __atomic_store_n(&pg->current, (uint8_t)on, __ATOMIC_RELAXED);
}

/* The owner: moves thread_free onto local_free (one atomic exchange). */
void slab_collect_remote(struct page *pg) mpool_internal;

/* The owner: makes the empty free list thread_free's blocks, or if there are
 * none local_free's; false if all three were empty.  Not for a slab parked
 * full. */
bool slab_collect(struct page *pg) mpool_internal;

/* The owner: parks a slab whose lists are all empty (sets SLAB_NOTIFY and
 * takes all but an eighth of used into `parked`); false if a remote free
 * arrived first (then collect again). */
bool slab_park(struct page *pg) mpool_internal;

/* The owner: takes back the notification of a parked slab and gives used
 * back what parking took;
 * false if a remote free took the notification first (the slab then comes
 * through the heap's stack). */
bool slab_unpark(struct page *pg) mpool_internal;

/* The owner, for a parked slab a remote free notified (or any parked slab of
 * a quiet pool): ends the parking (used and the notification bit). */
void slab_end_parking(struct page *pg) mpool_internal;

/* Another thread frees block p of pg (marked and checked by the caller):
 * returns the heap to notify (the slab was parked full), else NULL. */
struct heap *slab_free_remote(struct page *pg, void *p) mpool_internal;

/* The owner, after a double free broke the lists: locks thread_free (remote
 * frees wait), makes the free list every block that carries the mark, in
 * address order, empties local_free and thread_free and sets used to match;
 * returns the number of free blocks.  Not for a parked slab. */
size_t slab_rebuild(struct page *pg, uint64_t key) mpool_internal;

/* The owner, for a slab whose count says it is empty: true if every block
 * carries the mark (then thread_free is left locked: the slab is going back
 * to the page allocator); else false, lists untouched (a double free: the
 * caller finds it and rebuilds). */
bool slab_verify_empty(struct page *pg, uint64_t key) mpool_internal;

/* True if block p is on one of the slab's lists (the owner or a quiet pool:
 * thread_free is read with an acquire load, not taken). */
bool slab_block_is_free(const struct page *pg, const void *p) mpool_internal;

/* Blocks on the slab's three lists, counting at most capacity + 1 each (a
 * longer list is broken); only while the owner does not run. */
size_t slab_free_count(const struct page *pg) mpool_internal;

/* Carved blocks that carry the mark.  The lists hold exactly these when no
 * block was freed twice. */
size_t slab_marked_count(const struct page *pg, uint64_t key) mpool_internal;

/* The first block found twice on the slab's lists (a double free its owner's
 * inline free let through), or NULL; slabs of more than SLAB_REPEAT_MAX
 * blocks are not searched.  Only while the owner does not run. */
#define SLAB_REPEAT_MAX 65536
const void *slab_find_repeat(const struct page *pg) mpool_internal;

/* Number of broken invariants of one slab (lists, marks, counts); only while
 * its owner does not run. */
size_t slab_check(const struct page *pg, uint64_t key) mpool_internal;

#endif /* MPOOL_SLAB_H */
