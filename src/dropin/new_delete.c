/*
 * dropin/new_delete.c - every form of C++ operator new and delete, served by
 * the default pool, written in C under their Itanium C++ ABI names so that the
 * replacement needs no C++ runtime of its own.
 *
 * operator new follows the C++ rules: on failure it calls the installed
 * std::new_handler and tries again, and throws std::bad_alloc when there is
 * none.  The C++ runtime's functions for that (std::get_new_handler,
 * std::__throw_bad_alloc) are weak references: a program that uses operator
 * new has the runtime loaded; a C program never gets here.  The nothrow forms
 * return NULL instead of calling the handler (a handler that throws could not
 * be caught in C).  The pool finds every block from its address; the size
 * and alignment that sized and aligned delete pass are checked against the
 * block (a mismatch is reported and the block not freed: alloc.h).
 *
 * The form (new or new[], delete or delete[], or the malloc family): debug
 * mode records it in the block's header and checks every release exactly,
 * with the size and alignment (debug.h).  The default mode keeps no record
 * of it; what it catches of a wrong form follows from the pointer and the
 * size alone (docs/architecture.md, "Safety nets of the default mode": a
 * delete of a new[] block whose array has a cookie passes an interior
 * pointer, a sized delete of the wrong form may pass a size of another
 * class).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "alloc.h"
#include "dropin.h"
#include "mpool.h"

typedef void (*new_handler_fn)(void);
extern new_handler_fn _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

/* The allocation loop of operator new; align 0 means the default. */
static void *cxx_new(size_t size, size_t align, bool nothrow, enum debug_form form)
{
    if (likely(align == 0 && size <= SMALL_MAX)) { /* malloc's inline pop */
        void *p = alloc_default_pop(size);
        if (likely(p != NULL))
            return p;
    }
    for (;;) {
        void *p = alloc_new(size, align, form);
        if (__builtin_expect(p != NULL, 1))
            return p;
        if (nothrow)
            return NULL;
        new_handler_fn handler = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
        if (!handler) {
            if (_ZSt17__throw_bad_allocv)
                _ZSt17__throw_bad_allocv();
            abort(); /* no C++ runtime: cannot throw */
        }
        handler();
    }
}

/* The declarations (needed by -Wmissing-prototypes) and definitions share one list. */
#define ONE DEBUG_FORM_NEW
#define ARRAY DEBUG_FORM_NEW_ARRAY
#define NEW_FORMS(X)                                                                              \
    X(_Znwm, (size_t n), n, 0, false, ONE)                                    /* new(size) */      \
    X(_Znam, (size_t n), n, 0, false, ARRAY)                                  /* new[](size) */    \
    X(_ZnwmRKSt9nothrow_t, (size_t n, const void *nt), n, 0, true, ONE)       /* new(size, nothrow) */ \
    X(_ZnamRKSt9nothrow_t, (size_t n, const void *nt), n, 0, true, ARRAY)                         \
    X(_ZnwmSt11align_val_t, (size_t n, size_t al), n, al, false, ONE)         /* new(size, align) */ \
    X(_ZnamSt11align_val_t, (size_t n, size_t al), n, al, false, ARRAY)                           \
    X(_ZnwmSt11align_val_tRKSt9nothrow_t, (size_t n, size_t al, const void *nt), n, al, true, ONE) \
    X(_ZnamSt11align_val_tRKSt9nothrow_t, (size_t n, size_t al, const void *nt), n, al, true, ARRAY)

/* delete(p): the owner's free inline, as free(). */
static inline void cxx_delete(void *p, enum debug_form form, const char *who)
{
    if (likely(heap_free_mine(mpool_default_heap, p)))
        return;
    if (p)
        free_delete_slow(p, form, who);
}

/* Sized delete: the block must be of the class of n bytes (free_sized). */
static inline void cxx_delete_sized(void *p, size_t n, enum debug_form form, const char *who)
{
    if (likely(n <= SMALL_MAX) &&
        likely(heap_free_mine_class(mpool_default_heap, p, mpool_default_pool.size_class[n])))
        return;
    alloc_free_sized(p, n, 0, form, who);
}

#define DEL "operator delete"
#define DEL_ARRAY "operator delete[]"
#define ANY_SIZE ALLOC_SIZE_UNKNOWN
#define DELETE_FORMS(X)                                                                                \
    X(_ZdlPv, (void *p), cxx_delete(p, ONE, DEL))                                /* delete(p) */       \
    X(_ZdaPv, (void *p), cxx_delete(p, ARRAY, DEL_ARRAY))                        /* delete[](p) */     \
    X(_ZdlPvm, (void *p, size_t n), cxx_delete_sized(p, n, ONE, DEL))            /* sized */           \
    X(_ZdaPvm, (void *p, size_t n), cxx_delete_sized(p, n, ARRAY, DEL_ARRAY))                         \
    X(_ZdlPvRKSt9nothrow_t, (void *p, const void *nt), cxx_delete(p, ONE, DEL))  /* nothrow */         \
    X(_ZdaPvRKSt9nothrow_t, (void *p, const void *nt), cxx_delete(p, ARRAY, DEL_ARRAY))               \
    X(_ZdlPvSt11align_val_t, (void *p, size_t al),                               /* aligned */         \
      alloc_free_sized(p, ANY_SIZE, al, ONE, DEL))                                                    \
    X(_ZdaPvSt11align_val_t, (void *p, size_t al), alloc_free_sized(p, ANY_SIZE, al, ARRAY, DEL_ARRAY)) \
    X(_ZdlPvmSt11align_val_t, (void *p, size_t n, size_t al),                    /* sized, aligned */  \
      alloc_free_sized(p, n, al, ONE, DEL))                                                           \
    X(_ZdaPvmSt11align_val_t, (void *p, size_t n, size_t al), alloc_free_sized(p, n, al, ARRAY, DEL_ARRAY)) \
    X(_ZdlPvSt11align_val_tRKSt9nothrow_t, (void *p, size_t al, const void *nt),                       \
      alloc_free_sized(p, ANY_SIZE, al, ONE, DEL))                                                    \
    X(_ZdaPvSt11align_val_tRKSt9nothrow_t, (void *p, size_t al, const void *nt),                       \
      alloc_free_sized(p, ANY_SIZE, al, ARRAY, DEL_ARRAY))

#define DECLARE_NEW(name, params, size, align, nothrow, form) DROPIN_API void *name params;
#define DEFINE_NEW(name, params, size, align, nothrow, form) \
    void *name params { return cxx_new(size, align, nothrow, form); }
#define DECLARE_DELETE(name, params, body) DROPIN_API void name params;
#define DEFINE_DELETE(name, params, body) \
    void name params { body; }

NEW_FORMS(DECLARE_NEW)
DELETE_FORMS(DECLARE_DELETE)

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
NEW_FORMS(DEFINE_NEW)
DELETE_FORMS(DEFINE_DELETE)
#pragma GCC diagnostic pop
