/*
 * lock.h - the locks of a pool.  Every lock is taken only when the pool is
 * thread safe (the `on` argument), so a pool used by one thread pays one
 * well-predicted branch per operation and no atomic instruction.
 */
#ifndef MPOOL_LOCK_H
#define MPOOL_LOCK_H

#include <pthread.h>
#include <stdbool.h>

typedef pthread_mutex_t mpool_lock_t;

static inline void lock_init(mpool_lock_t *l) { pthread_mutex_init(l, NULL); }
static inline void lock_fini(mpool_lock_t *l) { pthread_mutex_destroy(l); }
static inline void lock_take(mpool_lock_t *l, bool on) { if (on) pthread_mutex_lock(l); }
static inline void lock_give(mpool_lock_t *l, bool on) { if (on) pthread_mutex_unlock(l); }

#endif /* MPOOL_LOCK_H */
