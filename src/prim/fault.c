/*
 * prim/fault.c - fault injection for the operating-system layer (prim.h),
 * compiled only into the test library: prim/unix.c asks prim_fault_hit before
 * each call and reports a refusal, as the system would, when it says so.
 *
 * Per kind of call: the number of calls since it was armed, and the window
 * [first, first + count) of call numbers that fail.  Counters are atomic, so
 * threads may call while a test arms or reads them.
 */
#include "prim.h"

struct fault_window {
    size_t calls;   /* calls counted since arming */
    size_t first;   /* number of the first failing call; 0: none fails */
    size_t count;   /* failing calls from first on (SIZE_MAX: all) */
};

static struct fault_window windows[PRIM_CALL_KINDS];

void prim_fault_arm(enum prim_call call, size_t nth, size_t count)
{
    struct fault_window *w = &windows[call];
    __atomic_store_n(&w->first, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&w->calls, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&w->count, count, __ATOMIC_SEQ_CST);
    __atomic_store_n(&w->first, nth, __ATOMIC_SEQ_CST);
}

void prim_fault_disarm(void)
{
    for (unsigned k = 0; k < PRIM_CALL_KINDS; k++)
        __atomic_store_n(&windows[k].first, 0, __ATOMIC_SEQ_CST);
}

size_t prim_fault_calls(enum prim_call call)
{
    return __atomic_load_n(&windows[call].calls, __ATOMIC_SEQ_CST);
}

bool prim_fault_hit(enum prim_call call)
{
    struct fault_window *w = &windows[call];
    size_t n = __atomic_add_fetch(&w->calls, 1, __ATOMIC_SEQ_CST);
    size_t first = __atomic_load_n(&w->first, __ATOMIC_SEQ_CST);
    size_t count = __atomic_load_n(&w->count, __ATOMIC_SEQ_CST);
    return first != 0 && n >= first && n - first < count;
}
