/*
 * lock.h - the locks of a pool.  Every lock is taken only when the pool is
 * thread safe (the `on` argument), so a pool used by one thread pays one
 * well-predicted branch per operation and no atomic instruction.
 *
 * A lock is one 32-bit word used as a futex (after Drepper, "Futexes Are
 * Tricky", mutex 3): 0 free, 1 held, 2 held and perhaps waited for.  Taking a
 * free lock is one compare-and-swap and giving it back one exchange; only a
 * lock that is contended spins briefly and then sleeps in the kernel
 * (lock.c).  Under ThreadSanitizer the lock describes itself through the
 * mutex annotations, so races and lock-order inversions are still found.
 */
#ifndef MPOOL_LOCK_H
#define MPOOL_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"

#ifdef MPOOL_TSAN
#include <sanitizer/tsan_interface.h>
#define lock_note(call, l) call((void *)(l), 0)
#define lock_note_taken(l) __tsan_mutex_post_lock((void *)(l), 0, 0)
#define lock_note_try(l) __tsan_mutex_pre_lock((void *)(l), __tsan_mutex_try_lock)
#define lock_note_tried(l, ok) \
    __tsan_mutex_post_lock((void *)(l), __tsan_mutex_try_lock | ((ok) ? 0 : __tsan_mutex_try_lock_failed), 0)
#else
#define lock_note(call, l) ((void)0)
#define lock_note_taken(l) ((void)0)
#define lock_note_try(l) ((void)0)
#define lock_note_tried(l, ok) ((void)0)
#endif

typedef struct mpool_lock {
    uint32_t state; /* 0 free, 1 held, 2 held with possible waiters */
} mpool_lock_t;

/* The slow halves (lock.c): wait for a held lock; wake one waiter. */
void lock_wait(mpool_lock_t *l) mpool_internal mpool_noinline;
void lock_wake(mpool_lock_t *l) mpool_internal mpool_noinline;

static inline void lock_init(mpool_lock_t *l)
{
    l->state = 0;
    lock_note(__tsan_mutex_create, l);
}

static inline void lock_fini(mpool_lock_t *l)
{
    lock_note(__tsan_mutex_destroy, l);
    (void)l;
}

static inline void lock_take(mpool_lock_t *l, bool on)
{
    if (!on)
        return;
    lock_note(__tsan_mutex_pre_lock, l);
    uint32_t expected = 0;
    if (unlikely(!__atomic_compare_exchange_n(&l->state, &expected, 1, false, __ATOMIC_ACQUIRE,
                                              __ATOMIC_RELAXED)))
        lock_wait(l);
    lock_note_taken(l);
}

/* Takes l if it is free: one compare-and-swap, and never a wait (the caller
 * goes another way when it fails).  False, nothing changed, if l is held. */
static inline bool lock_try(mpool_lock_t *l)
{
    lock_note_try(l);
    uint32_t expected = 0;
    bool ok = __atomic_compare_exchange_n(&l->state, &expected, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
    lock_note_tried(l, ok);
    return ok;
}

/* Gives l back; true if a thread may wait for it, which the caller must then
 * wake with lock_wake (so that it can do so in a tail call). */
static inline bool lock_give_waited(mpool_lock_t *l)
{
    lock_note(__tsan_mutex_pre_unlock, l);
    bool waited = __atomic_exchange_n(&l->state, 0, __ATOMIC_RELEASE) == 2;
    lock_note(__tsan_mutex_post_unlock, l);
    return waited;
}

static inline void lock_give(mpool_lock_t *l, bool on)
{
    if (on && unlikely(lock_give_waited(l)))
        lock_wake(l);
}

#endif /* MPOOL_LOCK_H */
