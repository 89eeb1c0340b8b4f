/*
 * lock.c - the contended halves of the pool locks (lock.h).
 *
 * A thread that finds the lock held spins a little (the holder usually
 * leaves within a few hundred cycles), then marks the lock "waited for" (2)
 * and sleeps on the word with FUTEX_WAIT until an unlock that saw 2 wakes it.
 * A woken thread takes the lock as 2, since others may still be waiting.
 */
#define _GNU_SOURCE /* syscall */
#include "lock.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOCK_SPINS 100

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

void lock_wait(mpool_lock_t *l)
{
    for (int i = 0; i < LOCK_SPINS; i++) {
        cpu_relax();
        uint32_t expected = 0;
        if (__atomic_load_n(&l->state, __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(&l->state, &expected, 1, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return;
    }
    while (__atomic_exchange_n(&l->state, 2, __ATOMIC_ACQUIRE) != 0)
        syscall(SYS_futex, &l->state, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

void lock_wake(mpool_lock_t *l)
{
    syscall(SYS_futex, &l->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
