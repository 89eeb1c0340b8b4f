/*
 * dropin/api.c - the malloc family under LD_PRELOAD of libmpool-malloc.so
 * (run by test_dropin; see helper.h for the protocol).
 *
 *   api functions        every entry point of the malloc family, with POSIX/C
 *                        semantics (errno, EINVAL, overflow, alignment)
 *   api malloc_stats     malloc_stats() between two marker lines on stderr
 *   api bad_free         free() of a stack address (prints it first)
 *   api double_free N    free() twice of a malloc(N) block (prints it first)
 *   api interior_free N  free() of an address inside a malloc(N) block
 *   api bad_realloc      realloc() of a stack address
 *   api fill LIMIT       malloc(64 KiB) until NULL or LIMIT bytes; prints the total
 *   api oom CAP          allocation past a MPOOL_MAX_SIZE of CAP bytes
 *   api align A          every block of every function is A-aligned
 *   api workload         random malloc/calloc/realloc/free with patterns
 *   api hello            one malloc and free
 *   api close_stderr     allocates, closes fd 2 and exits
 *
 * Built with -fno-builtin so that the compiler keeps every call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* C23 names that glibc before 2.41 neither declares nor defines: weak, so
 * that the program links and the dynamic loader binds them to the preloaded
 * library (NULL without it). */
void free_sized(void *p, size_t size) __attribute__((weak));
void free_aligned_sized(void *p, size_t alignment, size_t size) __attribute__((weak));

/* Sizes the compiler cannot see through (no folding of impossible requests). */
static volatile size_t v_size_max = SIZE_MAX;
static volatile size_t v_half = SIZE_MAX / 2;

static const size_t sizes[] = {0, 1, 7, 8, 15, 16, 17, 24, 100, 255, 256, 1000, 4095, 4096, 4097,
                               30000, 65536, 100000, 300000, MiB - 1, MiB, MiB + 1, 3 * MiB};
#define N_SIZES (sizeof sizes / sizeof sizes[0])

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* ---- malloc, free, malloc_usable_size ----------------------------------- */

static void check_malloc_free(void)
{
    void *blocks[N_SIZES];
    for (size_t i = 0; i < N_SIZES; i++) {
        size_t n = sizes[i];
        void *p = malloc(n);
        CHECK(p != NULL, "malloc(%zu)", n);
        CHECK(owned(p), "malloc(%zu) = %p not owned by mpool", n, p);
        CHECK(aligned_to(p, 16), "malloc(%zu) = %p not 16-aligned", n, p);
        CHECK(malloc_usable_size(p) >= n, "malloc_usable_size(malloc(%zu)) = %zu", n,
              malloc_usable_size(p));
        pattern_fill(p, n, i);
        blocks[i] = p;
    }
    for (size_t i = 0; i < N_SIZES; i++) {
        size_t bad = pattern_check(blocks[i], sizes[i], i);
        CHECK(bad == sizes[i], "block of %zu bytes changed at offset %zu", sizes[i], bad);
        errno = 4242; /* POSIX.1-2024: free() shall not modify errno */
        FREED(free(blocks[i]), blocks[i], "free");
        CHECK(errno == 4242, "free of a %zu-byte block changed errno to %d", sizes[i], errno);
    }
    /* malloc(0): a unique block that can be freed. */
    void *z1 = malloc(0), *z2 = malloc(0);
    CHECK(z1 && z2 && z1 != z2, "malloc(0) twice: %p %p", z1, z2);
    CHECK(owned(z1) && owned(z2), "malloc(0) not owned");
    free(z1);
    free(z2);
    free(NULL);
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu", malloc_usable_size(NULL));

    /* Impossible sizes: NULL and ENOMEM, no abort, no message. */
    errno = 0;
    void *p = malloc(v_size_max);
    CHECK(p == NULL && errno == ENOMEM, "malloc(SIZE_MAX) = %p, errno %d", p, errno);
    errno = 0;
    p = malloc(v_half);
    CHECK(p == NULL && errno == ENOMEM, "malloc(SIZE_MAX/2) = %p, errno %d", p, errno);
    errno = 0;
    p = malloc(v_size_max - 4096);
    CHECK(p == NULL && errno == ENOMEM, "malloc(SIZE_MAX-4096) = %p, errno %d", p, errno);
    /* Still usable afterwards. */
    p = malloc(100);
    CHECK(p && owned(p), "malloc(100) after failures");
    free(p);
}

/* ---- calloc ------------------------------------------------------------- */

static void check_zero(const void *p, size_t n, const char *what)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        CHECK(b[i] == 0, "%s: byte %zu of %zu is %d", what, i, n, b[i]);
}

static void check_calloc(void)
{
    for (size_t i = 0; i < N_SIZES; i++) {
        size_t n = sizes[i];
        /* Dirty a block of the same size first, so calloc may be handed it back. */
        void *d = malloc(n);
        CHECK(d != NULL, "malloc(%zu)", n);
        memset(d, 0xA5, n);
        free(d);
        void *p = calloc(1, n);
        CHECK(p && owned(p), "calloc(1, %zu) = %p", n, p);
        check_zero(p, n, "calloc(1, n)");
        free(p);
        p = calloc(n, 3);
        CHECK(p && owned(p), "calloc(%zu, 3) = %p", n, p);
        check_zero(p, n * 3, "calloc(n, 3)");
        free(p);
    }
    const size_t bad[][2] = {
        {SIZE_MAX, 2}, {2, SIZE_MAX}, {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 33, (size_t)1 << 33},
        {SIZE_MAX, SIZE_MAX}, {(SIZE_MAX / 3) + 1, 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        volatile size_t a = bad[i][0], b = bad[i][1];
        errno = 0;
        void *p = calloc(a, b);
        CHECK(p == NULL && errno == ENOMEM, "calloc(%zu, %zu) = %p, errno %d", (size_t)a, (size_t)b,
              p, errno);
    }
    errno = 0;
    void *p = calloc(1, v_half);
    CHECK(p == NULL && errno == ENOMEM, "calloc(1, SIZE_MAX/2) = %p, errno %d", p, errno);
}

/* ---- realloc, reallocarray ---------------------------------------------- */

static void check_realloc(void)
{
    /* Grow through every size range and back, contents kept. */
    static const size_t steps[] = {1, 10, 100, 1000, 5000, 70000, 300000, 2 * MiB, 5 * MiB,
                                   600000, 3000, 40, 2};
    void *p = realloc(NULL, 1);
    CHECK(p && owned(p), "realloc(NULL, 1) = %p", p);
    pattern_fill(p, 1, 77);
    size_t have = 1;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        size_t n = steps[i];
        void *q = realloc(p, n);
        CHECK(q && owned(q), "realloc(%p, %zu) = %p", p, n, q);
        size_t keep = have < n ? have : n;
        size_t at = pattern_check(q, keep, 77);
        CHECK(at == keep, "realloc %zu -> %zu lost contents at %zu", have, n, at);
        CHECK(malloc_usable_size(q) >= n, "usable %zu < %zu", malloc_usable_size(q), n);
        pattern_fill(q, n, 77);
        p = q;
        have = n;
    }
    /* realloc(p, 0): frees p and returns NULL (as glibc). */
    void *r;
    FREED(r = realloc(p, 0), p, "realloc(p, 0)");
    CHECK(r == NULL, "realloc(p, 0) = %p", r);

    /* A failed realloc leaves the block alone. */
    p = malloc(1000);
    CHECK(p != NULL, "malloc");
    pattern_fill(p, 1000, 5);
    errno = 0;
    r = realloc(p, v_size_max);
    CHECK(r == NULL && errno == ENOMEM, "realloc(p, SIZE_MAX) = %p, errno %d", r, errno);
    errno = 0;
    r = realloc(p, v_half);
    CHECK(r == NULL && errno == ENOMEM, "realloc(p, SIZE_MAX/2) = %p, errno %d", r, errno);
    CHECK(owned(p) && pattern_check(p, 1000, 5) == 1000, "block changed by a failed realloc");
    free(p);

    /* reallocarray */
    p = reallocarray(NULL, 100, 8);
    CHECK(p && owned(p), "reallocarray(NULL, 100, 8) = %p", p);
    pattern_fill(p, 800, 9);
    void *q = reallocarray(p, 1000, 8);
    CHECK(q && owned(q), "reallocarray(p, 1000, 8) = %p", q);
    CHECK(pattern_check(q, 800, 9) == 800, "reallocarray lost contents");
    p = q;
    const size_t bad[][2] = {{SIZE_MAX, 2}, {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 32, (size_t)1 << 32},
                             {2, SIZE_MAX}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        volatile size_t a = bad[i][0], b = bad[i][1];
        errno = 0;
        r = reallocarray(p, a, b);
        CHECK(r == NULL && errno == ENOMEM, "reallocarray(p, %zu, %zu) = %p, errno %d", (size_t)a,
              (size_t)b, r, errno);
        CHECK(owned(p), "reallocarray overflow freed the old block");
        CHECK(pattern_check(p, 800, 9) == 800, "reallocarray overflow changed the old block");
    }
    errno = 0;
    r = reallocarray(NULL, v_size_max, 16);
    CHECK(r == NULL && errno == ENOMEM, "reallocarray(NULL, SIZE_MAX, 16) = %p, errno %d", r, errno);
    free(p);
}

/* ---- aligned allocation ------------------------------------------------- */

static void check_block(void *p, size_t align, size_t n, const char *what)
{
    CHECK(p != NULL, "%s(align %zu, size %zu) = NULL", what, align, n);
    CHECK(aligned_to(p, align), "%s(align %zu, size %zu) = %p: misaligned", what, align, n, p);
    CHECK(owned(p), "%s(align %zu, size %zu) = %p: not owned by mpool", what, align, n, p);
    CHECK(malloc_usable_size(p) >= n, "%s(align %zu, size %zu): usable %zu", what, align, n,
          malloc_usable_size(p));
    if (n) {
        ((volatile char *)p)[0] = 1;
        ((volatile char *)p)[n - 1] = 2;
    }
}

static void check_posix_memalign(void)
{
    static const size_t psizes[] = {1, 8, 24, 100, 4096, 5000, 100000, MiB + 3, 3 * MiB};
    for (size_t align = sizeof(void *); align <= ((size_t)1 << 21); align <<= 1) {
        void *blocks[sizeof psizes / sizeof psizes[0]];
        for (size_t i = 0; i < sizeof psizes / sizeof psizes[0]; i++) {
            void *p = (void *)(uintptr_t)0x1234;
            errno = 4321;
            int rc = posix_memalign(&p, align, psizes[i]);
            CHECK(rc == 0, "posix_memalign(align %zu, size %zu) returned %d", align, psizes[i], rc);
            CHECK(errno == 4321, "posix_memalign changed errno to %d", errno);
            check_block(p, align, psizes[i], "posix_memalign");
            blocks[i] = p;
        }
        for (size_t i = 0; i < sizeof psizes / sizeof psizes[0]; i++) {
            FREED(free(blocks[i]), blocks[i], "free of a posix_memalign block");
        }
    }
    /* size 0 */
    void *p = NULL;
    CHECK(posix_memalign(&p, 64, 0) == 0 && p && aligned_to(p, 64) && owned(p), "posix_memalign size 0");
    free(p);

    /* Bad alignments: EINVAL returned, errno and *out untouched. */
    static const size_t bad[] = {0, 1, 2, 3, 4, 24, 48, 100, 4097, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = (void *)(uintptr_t)0x1234;
        errno = 4321;
        volatile size_t a = bad[i];
        int rc = posix_memalign(&p, a, 64);
        CHECK(rc == EINVAL, "posix_memalign(align %zu) returned %d, expected EINVAL", bad[i], rc);
        CHECK(errno == 4321, "posix_memalign(align %zu) set errno to %d", bad[i], errno);
        CHECK(p == (void *)(uintptr_t)0x1234, "posix_memalign(align %zu) wrote *out = %p", bad[i], p);
    }
    /* Impossible size: ENOMEM returned, errno untouched. */
    p = (void *)(uintptr_t)0x1234;
    errno = 4321;
    int rc = posix_memalign(&p, 64, v_half);
    CHECK(rc == ENOMEM, "posix_memalign(64, SIZE_MAX/2) returned %d, expected ENOMEM", rc);
    CHECK(errno == 4321, "posix_memalign(64, SIZE_MAX/2) set errno to %d", errno);
}

static void check_other_aligned(void)
{
    size_t page = page_size();
    for (size_t align = 1; align <= ((size_t)1 << 20); align <<= 1) {
        size_t n = align * 3; /* C11 aligned_alloc: a multiple of the alignment */
        void *p = aligned_alloc(align, n);
        check_block(p, align, n, "aligned_alloc");
        free(p);
        p = memalign(align, 1000);
        check_block(p, align, 1000, "memalign");
        free(p);
    }
    /* glibc's memalign takes any alignment and rounds it up to a power of two. */
    static const size_t odd[][2] = {{24, 32}, {3, 4}, {48, 64}, {100, 128}, {1000, 1024},
                                    {5000, 8192}, {65537, 131072}};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        void *p = memalign(odd[i][0], 200);
        check_block(p, odd[i][1], 200, "memalign (odd alignment)");
        free(p);
    }
    errno = 0;
    void *p = memalign(64, v_half);
    CHECK(p == NULL && errno == ENOMEM, "memalign(64, SIZE_MAX/2) = %p, errno %d", p, errno);
    errno = 0;
    p = aligned_alloc(64, v_half);
    CHECK(p == NULL && errno == ENOMEM, "aligned_alloc(64, SIZE_MAX/2) = %p, errno %d", p, errno);

    /* valloc / pvalloc: page aligned; pvalloc rounds the size up to pages. */
    static const size_t vsizes[] = {1, 100, 4096, 4097, 10000, 2 * MiB + 1};
    for (size_t i = 0; i < sizeof vsizes / sizeof vsizes[0]; i++) {
        size_t n = vsizes[i];
        p = valloc(n);
        check_block(p, page, n, "valloc");
        free(p);
        p = pvalloc(n);
        size_t rounded = (n + page - 1) / page * page;
        check_block(p, page, rounded, "pvalloc");
        free(p);
    }
    p = pvalloc(0);
    check_block(p, page, page, "pvalloc(0)");
    free(p);
    errno = 0;
    p = valloc(v_half);
    CHECK(p == NULL && errno == ENOMEM, "valloc(SIZE_MAX/2) = %p, errno %d", p, errno);
    errno = 0;
    p = pvalloc(v_size_max - 10);
    CHECK(p == NULL && errno == ENOMEM, "pvalloc(SIZE_MAX-10) = %p, errno %d", p, errno);
}

/* ---- free_sized, free_aligned_sized, glibc introspection ----------------- */

static void check_sized_and_glibc(void)
{
    CHECK(free_sized != NULL, "free_sized is not exported by the preloaded library");
    CHECK(free_aligned_sized != NULL, "free_aligned_sized is not exported by the preloaded library");
    for (size_t i = 0; i < N_SIZES; i++) {
        void *p = malloc(sizes[i]);
        CHECK(p && owned(p), "malloc(%zu)", sizes[i]);
        FREED(free_sized(p, sizes[i]), p, "free_sized");
        p = aligned_alloc(256, 256 * (i + 1));
        CHECK(p && owned(p) && aligned_to(p, 256), "aligned_alloc(256)");
        FREED(free_aligned_sized(p, 256, 256 * (i + 1)), p, "free_aligned_sized");
    }
    free_sized(NULL, 0);
    free_aligned_sized(NULL, 64, 0);

    /* mallinfo2: uordblks follows a 10 MB block. */
    const size_t big = 10 * MiB;
    struct mallinfo2 m0 = mallinfo2();
    void *p = malloc(big);
    CHECK(p && owned(p), "malloc(10 MB)");
    memset(p, 1, big);
    struct mallinfo2 m1 = mallinfo2();
    free(p);
    struct mallinfo2 m2 = mallinfo2();
    CHECK(m1.uordblks >= m0.uordblks + big, "mallinfo2.uordblks %zu -> %zu after malloc(10 MB)",
          m0.uordblks, m1.uordblks);
    CHECK(m2.uordblks + big <= m1.uordblks, "mallinfo2.uordblks %zu -> %zu after free(10 MB)",
          m1.uordblks, m2.uordblks);
    CHECK(m1.arena >= m1.uordblks, "mallinfo2: arena %zu < uordblks %zu", m1.arena, m1.uordblks);
    CHECK(m1.arena >= big, "mallinfo2.arena %zu with 10 MB live", m1.arena);

    /* malloc_trim: harmless, the heap works afterwards. */
    void *keep[64];
    for (int i = 0; i < 64; i++) {
        keep[i] = malloc((size_t)i * 1000 + 1);
        CHECK(keep[i] != NULL, "malloc");
        pattern_fill(keep[i], (size_t)i * 1000 + 1, (size_t)i);
    }
    for (int i = 0; i < 64; i += 2)
        free(keep[i]);
    int rc = malloc_trim(0);
    CHECK(rc == 0 || rc == 1, "malloc_trim returned %d", rc);
    rc = malloc_trim(1 << 20);
    CHECK(rc == 0 || rc == 1, "malloc_trim returned %d", rc);
    for (int i = 1; i < 64; i += 2) {
        CHECK(owned(keep[i]), "block lost by malloc_trim");
        CHECK(pattern_check(keep[i], (size_t)i * 1000 + 1, (size_t)i) == (size_t)i * 1000 + 1,
              "block changed by malloc_trim");
        free(keep[i]);
    }
    p = malloc(5000);
    CHECK(p && owned(p), "malloc after malloc_trim");
    free(p);
}

/* ---- scenarios ---------------------------------------------------------- */

static int scenario_functions(void)
{
    check_malloc_free();
    check_calloc();
    check_realloc();
    check_posix_memalign();
    check_other_aligned();
    check_sized_and_glibc();
    return 0;
}

static int scenario_malloc_stats(void)
{
    void *p = malloc(12345);
    CHECK(p && owned(p), "malloc");
    helper_say(2, "BEFORE-MALLOC-STATS");
    malloc_stats();
    helper_say(2, "AFTER-MALLOC-STATS");
    free(p);
    return 0;
}

static int scenario_bad_free(void)
{
    char buf[64];
    char *volatile p = buf + 16; /* volatile: no -Wfree-nonheap-object */
    memset(buf, 0, sizeof buf);
    helper_say(1, "%p", (void *)p);
    free(p);
    helper_say(1, "CONTINUED");
    return 0;
}

static int scenario_double_free(size_t n)
{
    void *p = malloc(n);
    CHECK(p && owned(p), "malloc(%zu)", n);
    helper_say(1, "%p", p);
    free(p);
    free(p);
    helper_say(1, "CONTINUED");
    /* The heap still works. */
    void *q = malloc(n);
    CHECK(q && owned(q), "malloc after a double free");
    free(q);
    return 0;
}

/* free() of an address inside a live malloc(n) block. */
static int scenario_interior_free(size_t n)
{
    char *p = malloc(n);
    CHECK(p && owned(p), "malloc(%zu)", n);
    char *volatile inside = p + 16;
    helper_say(1, "%p", (void *)inside);
    free(inside);
    helper_say(1, "CONTINUED");
    CHECK(owned(p), "the block survives an invalid free of its interior");
    free(p);
    return 0;
}

/* realloc() of a stack address. */
static int scenario_bad_realloc(void)
{
    char buf[64];
    char *volatile p = buf + 16;
    memset(buf, 0, sizeof buf);
    helper_say(1, "%p", (void *)p);
    void *r = realloc(p, 1000);
    helper_say(1, "CONTINUED");
    CHECK(r == NULL, "realloc of a stack address returned %p", r);
    return 0;
}

/* Fills the pool with 64 KiB blocks up to `limit` bytes (or until NULL) and
 * prints how many bytes it got: "FILLED <bytes>". */
static int scenario_fill(size_t limit)
{
    enum { MAX_BLOCKS = 65536 };
    static void *blocks[MAX_BLOCKS];
    size_t count = 0, chunk = 64 * KiB;
    while (count < MAX_BLOCKS && count * chunk < limit) {
        void *p = malloc(chunk);
        if (!p)
            break;
        blocks[count++] = p;
    }
    helper_say(1, "FILLED %zu", count * chunk);
    for (size_t i = 0; i < count; i++)
        free(blocks[i]);
    return 0;
}

/* Allocates 1 MiB blocks past a cap of `cap` bytes: NULL + ENOMEM before the
 * cap, and the pool recovers once they are freed. */
static int scenario_oom(size_t cap)
{
    enum { MAX_BLOCKS = 1024 };
    static void *blocks[MAX_BLOCKS];
    size_t count = 0;
    errno = 0;
    for (; count < MAX_BLOCKS; count++) {
        void *p = malloc(MiB);
        if (!p)
            break;
        CHECK(owned(p), "malloc(1 MiB) not owned");
        memset(p, 0x5a, 4096);
        blocks[count] = p;
    }
    CHECK(count < MAX_BLOCKS, "%zu MiB allocated under a cap of %zu bytes", count, cap);
    CHECK(errno == ENOMEM, "malloc at the cap: errno %d, expected ENOMEM", errno);
    CHECK(count * MiB <= cap, "%zu MiB allocated under a cap of %zu bytes", count, cap);
    CHECK(count * MiB >= cap / 4, "only %zu MiB allocated under a cap of %zu bytes", count, cap);
    /* Other sizes fail too while the pool is full; huge requests always. */
    errno = 0;
    void *p = malloc(cap + MiB);
    CHECK(p == NULL && errno == ENOMEM, "malloc(cap + 1 MiB) = %p, errno %d", p, errno);
    p = calloc(cap / 2, 4);
    CHECK(p == NULL, "calloc(cap/2, 4) = %p with the pool full", p);
    int rc = posix_memalign(&p, 4096, cap);
    CHECK(rc == ENOMEM, "posix_memalign(4096, cap) returned %d", rc);
    for (size_t i = 0; i < count; i++)
        free(blocks[i]);
    /* Room again. */
    p = malloc(cap / 4);
    CHECK(p && owned(p), "malloc(cap/4) after freeing everything = %p (errno %d)", p, errno);
    free(p);
    p = malloc(MiB);
    CHECK(p && owned(p), "malloc(1 MiB) after freeing everything");
    free(p);
    return 0;
}

/* Every block from every function is aligned to `a` (MPOOL_ALIGNMENT=a). */
static int scenario_align(size_t a)
{
    void *blocks[512];
    size_t k = 0;
    for (size_t n = 0; n < 300; n++) {
        void *p = malloc(n);
        CHECK(p && owned(p) && aligned_to(p, a), "malloc(%zu) = %p, not %zu-aligned", n, p, a);
        blocks[k++] = p;
    }
    for (size_t i = 0; i < N_SIZES; i++) {
        void *p = malloc(sizes[i]);
        CHECK(p && aligned_to(p, a), "malloc(%zu) = %p, not %zu-aligned", sizes[i], p, a);
        blocks[k++] = p;
        p = calloc(3, sizes[i]);
        CHECK(p && aligned_to(p, a), "calloc(3, %zu) = %p, not %zu-aligned", sizes[i], p, a);
        blocks[k++] = p;
        p = memalign(8, sizes[i]);
        CHECK(p && aligned_to(p, a), "memalign(8, %zu) = %p, not %zu-aligned", sizes[i], p, a);
        blocks[k++] = p;
    }
    for (size_t i = 0; i < 40; i++) {
        void *q = realloc(blocks[i], 1 + i * 37);
        CHECK(q && aligned_to(q, a), "realloc(%zu) = %p, not %zu-aligned", 1 + i * 37, q, a);
        blocks[i] = q;
    }
    for (size_t i = 0; i < k; i++)
        free(blocks[i]);
    return 0;
}

/* Random traffic with content checks (for MPOOL_ENABLE_DEBUG=1 and others). */
static int scenario_workload(void)
{
    enum { SLOTS = 512, ROUNDS = 40000 };
    static void *slot[SLOTS];
    static size_t len[SLOTS], seed[SLOTS];
    uint64_t rng = 0x9e3779b97f4a7c15u;
    for (size_t r = 0; r < ROUNDS; r++) {
        size_t i = (size_t)(helper_rand(&rng) % SLOTS);
        if (slot[i]) {
            size_t bad = pattern_check(slot[i], len[i], seed[i]);
            CHECK(bad == len[i], "block %p of %zu bytes changed at %zu", slot[i], len[i], bad);
        }
        size_t n = helper_size(&rng) % 300000;
        switch (helper_rand(&rng) % 4) {
        case 0: /* realloc */
            if (slot[i]) {
                void *q = realloc(slot[i], n + 1);
                CHECK(q && owned(q), "realloc(%zu)", n + 1);
                size_t keep = len[i] < n + 1 ? len[i] : n + 1;
                CHECK(pattern_check(q, keep, seed[i]) == keep, "realloc lost contents");
                slot[i] = q;
                len[i] = n + 1;
                pattern_fill(q, len[i], seed[i]);
                break;
            }
            /* fall through */
        case 1: { /* calloc */
            free(slot[i]);
            void *p = calloc(1, n);
            CHECK(p && owned(p), "calloc(1, %zu)", n);
            check_zero(p, n, "calloc");
            slot[i] = p;
            len[i] = n;
            seed[i] = r;
            pattern_fill(p, n, r);
            break;
        }
        default: /* free + malloc */
            free(slot[i]);
            slot[i] = malloc(n);
            CHECK(slot[i] && owned(slot[i]), "malloc(%zu)", n);
            len[i] = n;
            seed[i] = r;
            pattern_fill(slot[i], n, r);
        }
    }
    for (size_t i = 0; i < SLOTS; i++)
        free(slot[i]);
    return 0;
}

static int scenario_hello(void)
{
    char *p = malloc(100);
    CHECK(p && owned(p), "malloc(100) = %p", (void *)p);
    strcpy(p, "hello");
    free(p);
    return 0;
}

/* The report at exit (MPOOL_SHOW_STATS) must not depend on fd 2 staying open. */
static int scenario_close_stderr(void)
{
    for (int i = 0; i < 100; i++)
        free(malloc((size_t)i * 10));
    void *p = malloc(77);
    CHECK(p && owned(p), "malloc");
    helper_say(1, "OK close_stderr");
    close(2);
    free(p);
    exit(0);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        HELPER_FAIL("usage: api SCENARIO [ARG]");
    const char *s = argv[1];
    size_t arg = argc > 2 ? (size_t)strtoull(argv[2], NULL, 0) : 0;
    int rc;
    if (!strcmp(s, "functions"))
        rc = scenario_functions();
    else if (!strcmp(s, "malloc_stats"))
        rc = scenario_malloc_stats();
    else if (!strcmp(s, "bad_free"))
        rc = scenario_bad_free();
    else if (!strcmp(s, "double_free"))
        rc = scenario_double_free(arg);
    else if (!strcmp(s, "interior_free"))
        rc = scenario_interior_free(arg);
    else if (!strcmp(s, "bad_realloc"))
        rc = scenario_bad_realloc();
    else if (!strcmp(s, "fill"))
        rc = scenario_fill(arg);
    else if (!strcmp(s, "oom"))
        rc = scenario_oom(arg);
    else if (!strcmp(s, "align"))
        rc = scenario_align(arg);
    else if (!strcmp(s, "workload"))
        rc = scenario_workload();
    else if (!strcmp(s, "hello"))
        rc = scenario_hello();
    else if (!strcmp(s, "close_stderr"))
        rc = scenario_close_stderr();
    else
        HELPER_FAIL("unknown scenario %s", s);
    if (rc == 0)
        helper_say(1, "OK %s", s);
    return rc;
}
