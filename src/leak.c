/*
 * leak.c - mpool_report_leaks: the live blocks of a debug pool, grouped by
 * the call site that allocated them, largest first (MPOOL_LEAK_REPORT=1
 * writes it for the default pool at exit: dropin/monitor.c).
 *
 *   mpool leak report: pool 0x5581e6a4e000: 3 blocks (1104 bytes) live, from 2 call sites
 *     1000 bytes in 2 blocks allocated at make_buffer (leaky.c:12)
 *         from main (leaky.c:25)
 *     ...
 *
 * Steps, none of which allocates from any pool:
 *   1. copy every live block's size and allocation stack (debug.c, under its
 *      lock) into scratch memory mapped for the report (prim.h);
 *   2. merge identical stacks (sorted with a heap sort: qsort may allocate);
 *   3. name every distinct frame (callsite.c: dladdr, then addr2line with
 *      no lock held);
 *   4. the call site of a stack is its first frame that is not mpool's
 *      (by object, or by name when mpool is linked into the program);
 *      merge stacks by call site and sort by bytes.
 * The sites are the program's return addresses as captured at allocation;
 * a block allocated while its thread was capturing (the first backtrace of
 * the process may allocate) has no site and is counted under "unknown".
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "callsite.h"
#include "debug.h"
#include "error.h"
#include "prim.h"

#define LEAK_SITES_SHOWN 30     /* sites written in full; the rest are summed in one line */
#define LEAK_CONTEXT_FRAMES 3   /* "from" lines under each site */
#define LEAK_NAMES_MAX 8192     /* distinct frames named at most */

struct stack_group {
    size_t blocks, bytes;
    size_t site;                         /* index into frames of the call site (DEBUG_SITE_FRAMES: none) */
    const void *site_key;                /* the same for every address of one named site */
    void *frames[DEBUG_SITE_FRAMES];
};

/* ---- Sorting without allocating --------------------------------------- */

typedef int (*leak_cmp_fn)(const void *, const void *);

static void swap_bytes(char *a, char *b, size_t size)
{
    while (size--) {
        char t = *a;
        *a++ = *b;
        *b++ = t;
    }
}

static void sift_down(char *base, size_t n, size_t size, size_t i, leak_cmp_fn cmp)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && cmp(base + c * size, base + (c + 1) * size) < 0)
            c++;
        if (cmp(base + i * size, base + c * size) >= 0)
            return;
        swap_bytes(base + i * size, base + c * size, size);
        i = c;
    }
}

/* Heap sort: O(n log n), no memory beyond the array. */
static void leak_sort(void *array, size_t n, size_t size, leak_cmp_fn cmp)
{
    char *base = array;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(base, n, size, i, cmp);
    for (size_t end = n; end > 1; end--) {
        swap_bytes(base, base + (end - 1) * size, size);
        sift_down(base, end - 1, size, 0, cmp);
    }
}

static int cmp_stack(const void *a, const void *b)
{
    const struct debug_live *x = a, *y = b;
    return memcmp(x->site, y->site, sizeof x->site);
}

static int cmp_addr(const void *a, const void *b)
{
    const struct callsite_name *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static const void *group_site_addr(const struct stack_group *g)
{
    return g->site < DEBUG_SITE_FRAMES ? g->frames[g->site] : NULL;
}

static int cmp_site(const void *a, const void *b)
{
    const struct stack_group *x = a, *y = b;
    return x->site_key < y->site_key ? -1 : x->site_key > y->site_key;
}

static const struct callsite_name *sort_names; /* cmp_name_index's array */

static int cmp_name_index(const void *a, const void *b)
{
    const struct callsite_name *x = &sort_names[*(const size_t *)a], *y = &sort_names[*(const size_t *)b];
    int c = strcmp(x->function, y->function);
    return c ? c : strcmp(x->where, y->where);
}

static int cmp_bytes_desc(const void *a, const void *b)
{
    const struct stack_group *x = a, *y = b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

/* ---- Naming ------------------------------------------------------------- */

static const struct callsite_name *name_of(const struct callsite_name *names, size_t n, const void *addr)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (names[mid].addr < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && names[lo].addr == addr ? &names[lo] : NULL;
}

/* "function (file:line)", "function (object+0xoff)" or what is known. */
static void name_format(char *buf, size_t len, const struct callsite_name *nm, const void *addr)
{
    if (!nm)
        snprintf(buf, len, "%p", addr);
    else if (nm->function[0])
        snprintf(buf, len, "%s (%s)", nm->function, nm->where);
    else
        snprintf(buf, len, "%s", nm->where);
}

/* ---- Writing ------------------------------------------------------------ */

struct out {
    mpool_write_fn write;
    void *arg;
};

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct out *o, const char *fmt, ...)
{
    char line[3 * CALLSITE_TEXT];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    o->write(line, len, o->arg);
}

static void write_stderr(const char *text, size_t len, void *arg)
{
    (void)arg;
    (void)error_write_all(2, text, len);
}

/* ---- The report --------------------------------------------------------- */

size_t mpool_report_leaks(const mpool_t *cpool, mpool_write_fn write, void *arg)
{
    struct mpool_pool *pool = (struct mpool_pool *)(uintptr_t)(cpool ? cpool : mpool_default());
    struct out o = {write ? write : write_stderr, arg};
    if (pool->magic != POOL_MAGIC)
        return 0;
    if (!pool->debug || !pool->debug_state) {
        out_printf(&o, "mpool leak report: pool %p is not in debug mode (enable_debug, MPOOL_ENABLE_DEBUG=1): "
                       "no call sites were recorded\n", (void *)pool);
        return 0;
    }
    size_t live = debug_live_count(pool);
    size_t cap = live + live / 8 + 64; /* blocks allocated meanwhile are left out */
    size_t entries_bytes = align_up(cap * sizeof(struct debug_live), PAGE_SIZE);
    size_t names_cap = cap * DEBUG_SITE_FRAMES < LEAK_NAMES_MAX ? cap * DEBUG_SITE_FRAMES : LEAK_NAMES_MAX;
    size_t names_bytes = align_up(names_cap * sizeof(struct callsite_name), PAGE_SIZE);
    size_t groups_bytes = align_up(cap * sizeof(struct stack_group), PAGE_SIZE);
    struct debug_live *entries = prim_map(entries_bytes, PAGE_SIZE, 0);
    struct callsite_name *names = prim_map(names_bytes, PAGE_SIZE, 0);
    struct stack_group *groups = prim_map(groups_bytes, PAGE_SIZE, 0);
    if (!entries || !names || !groups) {
        out_printf(&o, "mpool leak report: pool %p: no memory for the report\n", (void *)pool);
        live = 0;
        goto done;
    }
    size_t n = debug_live_snapshot(pool, entries, cap, &live);

    /* 2. Identical stacks become one group. */
    leak_sort(entries, n, sizeof *entries, cmp_stack);
    size_t ngroups = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += entries[i].size;
        if (ngroups && memcmp(groups[ngroups - 1].frames, entries[i].site, sizeof entries[i].site) == 0) {
            groups[ngroups - 1].blocks++;
            groups[ngroups - 1].bytes += entries[i].size;
            continue;
        }
        struct stack_group *g = &groups[ngroups++];
        g->blocks = 1;
        g->bytes = entries[i].size;
        memcpy(g->frames, entries[i].site, sizeof g->frames);
    }

    /* 3. Every distinct frame, named once. */
    size_t nnames = 0;
    for (size_t i = 0; i < ngroups; i++)
        for (size_t f = 0; f < DEBUG_SITE_FRAMES && groups[i].frames[f] && nnames < names_cap; f++)
            names[nnames++].addr = groups[i].frames[f];
    leak_sort(names, nnames, sizeof *names, cmp_addr);
    size_t distinct = 0;
    for (size_t i = 0; i < nnames; i++)
        if (!distinct || names[distinct - 1].addr != names[i].addr)
            names[distinct++].addr = names[i].addr;
    callsite_name_all(names, distinct);
    /* Addresses with one name (a call unrolled in a loop, or one line's
     * several calls) are one site: key = the first of them in name order. */
    size_t *order = (size_t *)(void *)entries; /* the entries are no longer needed */
    size_t order_room = entries_bytes / sizeof *order;
    if (distinct <= order_room) {
        for (size_t i = 0; i < distinct; i++)
            order[i] = i;
        sort_names = names;
        leak_sort(order, distinct, sizeof *order, cmp_name_index);
        for (size_t i = 0; i < distinct; i++) {
            bool same = i > 0 && names[order[i]].function[0] && cmp_name_index(&order[i - 1], &order[i]) == 0;
            names[order[i]].key = same ? names[order[i - 1]].key : names[order[i]].addr;
        }
    } else {
        for (size_t i = 0; i < distinct; i++)
            names[i].key = names[i].addr;
    }

    /* 4. Each stack's call site; stacks of one site merge. */
    for (size_t i = 0; i < ngroups; i++) {
        struct stack_group *g = &groups[i];
        g->site = DEBUG_SITE_FRAMES;
        g->site_key = NULL;
        for (size_t f = 0; f < DEBUG_SITE_FRAMES && g->frames[f]; f++) {
            const struct callsite_name *nm = name_of(names, distinct, g->frames[f]);
            if (!(nm ? nm->internal : callsite_internal(g->frames[f], NULL))) {
                g->site = f;
                g->site_key = nm ? nm->key : g->frames[f];
                break;
            }
        }
    }
    leak_sort(groups, ngroups, sizeof *groups, cmp_site);
    size_t nsites = 0;
    for (size_t i = 0; i < ngroups; i++) {
        if (nsites && groups[nsites - 1].site_key == groups[i].site_key) {
            struct stack_group *s = &groups[nsites - 1];
            if (groups[i].bytes > s->bytes) { /* the context shown is the largest stack's */
                size_t b = s->blocks, by = s->bytes;
                *s = groups[i];
                s->blocks += b;
                s->bytes += by;
            } else {
                s->blocks += groups[i].blocks;
                s->bytes += groups[i].bytes;
            }
            continue;
        }
        groups[nsites++] = groups[i];
    }
    leak_sort(groups, nsites, sizeof *groups, cmp_bytes_desc);

    out_printf(&o, "mpool leak report: pool %p: %zu block%s (%zu bytes) live, from %zu call site%s\n",
               (void *)pool, live, live == 1 ? "" : "s", bytes, nsites, nsites == 1 ? "" : "s");
    for (size_t i = 0; i < nsites && i < LEAK_SITES_SHOWN; i++) {
        const struct stack_group *s = &groups[i];
        char text[2 * CALLSITE_TEXT + 8];
        const void *at = group_site_addr(s);
        if (at)
            name_format(text, sizeof text, name_of(names, distinct, at), at);
        else
            snprintf(text, sizeof text, "unknown (no call site recorded)");
        out_printf(&o, "  %zu bytes in %zu block%s allocated at %s\n", s->bytes, s->blocks,
                   s->blocks == 1 ? "" : "s", text);
        for (size_t f = s->site + 1, k = 0; at && f < DEBUG_SITE_FRAMES && s->frames[f] && k < LEAK_CONTEXT_FRAMES;
             f++, k++) {
            name_format(text, sizeof text, name_of(names, distinct, s->frames[f]), s->frames[f]);
            out_printf(&o, "      from %s\n", text);
        }
    }
    if (nsites > LEAK_SITES_SHOWN) {
        size_t rb = 0, rk = 0;
        for (size_t i = LEAK_SITES_SHOWN; i < nsites; i++) {
            rb += groups[i].bytes;
            rk += groups[i].blocks;
        }
        out_printf(&o, "  %zu bytes in %zu blocks from %zu more call sites\n", rb, rk, nsites - LEAK_SITES_SHOWN);
    }
done:
    if (entries)
        (void)prim_unmap(entries, entries_bytes);
    if (names)
        (void)prim_unmap(names, names_bytes);
    if (groups)
        (void)prim_unmap(groups, groups_bytes);
    return live;
}
