/*
 * report.c - what a pool's figures mean to a program, a person and a tool:
 * the health verdict (mpool_health) and the text and JSON reports
 * (mpool_report).  Everything here is read from one mpool_get_stats snapshot
 * and the pool's configuration; nothing is counted here.
 *
 * Health (docs/statistics.md has the same rules for users):
 *   usage      = used_bytes / max_size          (0 without max_size)
 *   error_rate = (alloc_failures + invalid_frees) /
 *                (allocations + frees + reallocs + alloc_failures + invalid_frees)
 *   fragmentation = the snapshot's figure
 * Five rules, each a figure reaching a threshold of the configuration (0 in a
 * configuration means the default of mpool_config_default):
 *   CRITICAL  usage >= health_critical_usage, error_rate >= health_critical_error_rate
 *   WARNING   usage >= health_warning_usage, error_rate >= health_warning_error_rate,
 *             fragmentation >= health_warning_fragmentation
 * The verdict is the worst rule that holds; among rules of the same status,
 * the one whose figure is furthest past its threshold (figure / threshold)
 * names the message.  Usage rules need a max_size.  Fragmentation is judged
 * only when at least FRAGMENTATION_MIN_FREE bytes of what the pool holds are
 * free: fragmentation strands free memory only, so below one region the loss
 * is less than a region costs, and the first blocks of a fresh pool, which
 * split its first region, would otherwise read as "fragmented".
 *
 * Output is formatted into a buffer on the stack and handed to the caller's
 * write function in pieces of at most OUT_BUFFER bytes.  Nothing is
 * allocated, so a report may be written from a logger, a signal-free exit
 * handler or the malloc replacement, and never changes the figures it shows.
 * JSON numbers are always finite (a non-finite figure is written as 0) and
 * use '.' whatever the locale.
 *
 * The arenas of the pool (arena.h) are listed after the histogram, parents
 * before their children, with their bytes used and held; the list is walked
 * under its lock, which is held while their lines are written (a write
 * function must not create or destroy arenas of the pool it reports).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fixed.h"
#include "arena.h"
#include "options.h"
#include "pool.h"

#define FRAGMENTATION_MIN_FREE ((size_t)4 << 20) /* one region (see the header comment) */
#define OUT_BUFFER 1024                          /* bytes handed to write at most per call */
#define BAR_WIDTH 50                             /* '#'s of the largest histogram bucket */
#define REPORT_VERSION 1                         /* "report_version" of the JSON report */

_Static_assert(OUT_BUFFER >= 512, "one formatted line of a report must fit the buffer");
_Static_assert(MPOOL_HISTOGRAM_BUCKETS <= 64, "histogram bounds are 64-bit shifts");

/* ---- Figures ----------------------------------------------------------- */

static double finite_or_zero(double v) { return isfinite(v) ? v : 0.0; }

/* num / den, 0 when den is 0. */
static double ratio(double num, double den) { return den > 0 ? finite_or_zero(num / den) : 0.0; }

static double percent(double fraction) { return 100.0 * finite_or_zero(fraction); }

static size_t error_count(const mpool_stats_t *st) { return st->alloc_failures + st->invalid_frees; }

static size_t call_count(const mpool_stats_t *st)
{
    return st->allocations + st->frees + st->reallocs + error_count(st);
}

/* The cap the usage is measured against: the snapshot's, else the
 * configuration's (the same value once the snapshot fills it). */
static size_t pool_max_size(const struct mpool_pool *pool, const mpool_stats_t *st)
{
    return st->max_size ? st->max_size : pool->config.max_size;
}

/* Bucket k of the size histogram holds requests of [bucket_min, bucket_max] bytes. */
static size_t bucket_min(unsigned k) { return k ? (size_t)1 << (k - 1) : 0; }
static size_t bucket_max(unsigned k) { return k ? ((size_t)1 << k) - 1 : 0; }

static bool class_is_shown(const mpool_class_stats_t *c)
{
    return c->capacity || c->in_use || c->peak_in_use || c->allocations || c->frees;
}

static size_t class_limit(const mpool_stats_t *st)
{
    return st->class_count < MPOOL_MAX_CLASSES ? st->class_count : MPOOL_MAX_CLASSES;
}

/* ---- Health ------------------------------------------------------------ */

enum figure { FIG_USAGE, FIG_FRAGMENTATION, FIG_ERROR_RATE };

#define HEALTH_RULES 5

struct rule {
    enum figure figure;
    mpool_health_status_t status;
    double threshold;
};

/* A configured threshold, or the default when it is 0 (or not a positive
 * finite number). */
static double threshold_or(double configured, double dflt)
{
    return configured > 0 && isfinite(configured) ? configured : dflt;
}

/* The five rules of the header comment with the pool's thresholds. */
static void health_rules(const mpool_config_t *c, struct rule rules[HEALTH_RULES])
{
    mpool_config_t d = mpool_config_default();
    rules[0] = (struct rule){FIG_USAGE, MPOOL_CRITICAL,
                             threshold_or(c->health_critical_usage, d.health_critical_usage)};
    rules[1] = (struct rule){FIG_ERROR_RATE, MPOOL_CRITICAL,
                             threshold_or(c->health_critical_error_rate, d.health_critical_error_rate)};
    rules[2] = (struct rule){FIG_USAGE, MPOOL_WARNING,
                             threshold_or(c->health_warning_usage, d.health_warning_usage)};
    rules[3] = (struct rule){FIG_FRAGMENTATION, MPOOL_WARNING,
                             threshold_or(c->health_warning_fragmentation, d.health_warning_fragmentation)};
    rules[4] = (struct rule){FIG_ERROR_RATE, MPOOL_WARNING,
                             threshold_or(c->health_warning_error_rate, d.health_warning_error_rate)};
}

static double figure_value(const mpool_health_t *h, enum figure f)
{
    return f == FIG_USAGE ? h->usage : f == FIG_FRAGMENTATION ? h->fragmentation : h->error_rate;
}

/* Whether a rule on figure f can be judged at all for this snapshot. */
static bool figure_is_judged(enum figure f, size_t max_size, const mpool_stats_t *st)
{
    if (f == FIG_USAGE)
        return max_size > 0;
    if (f == FIG_FRAGMENTATION)
        return st->total_bytes > st->used_bytes && st->total_bytes - st->used_bytes >= FRAGMENTATION_MIN_FREE;
    return true;
}

/* The rule that decides the verdict, or NULL if none holds. */
static const struct rule *health_worst(const struct rule rules[HEALTH_RULES], const mpool_health_t *h, size_t max_size,
                                       const mpool_stats_t *st)
{
    const struct rule *worst = NULL;
    double worst_excess = 0;
    for (int i = 0; i < HEALTH_RULES; i++) {
        const struct rule *r = &rules[i];
        double v = figure_value(h, r->figure);
        if (!figure_is_judged(r->figure, max_size, st) || v < r->threshold)
            continue;
        double excess = v / r->threshold;
        if (!worst || r->status > worst->status || (r->status == worst->status && excess > worst_excess)) {
            worst = r;
            worst_excess = excess;
        }
    }
    return worst;
}

static const char *status_word(mpool_health_status_t s) { return s == MPOOL_CRITICAL ? "critical" : "warning"; }

/* Human-readable byte count: "824 B", "64 KiB", "15.9 MiB". */
static const char *size_text(char buf[24], size_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    unsigned u = 0;
    while (u + 1 < sizeof units / sizeof units[0] && n >> (10 * (u + 1)))
        u++;
    size_t unit = (size_t)1 << (10 * u);
    if (n % unit == 0)
        snprintf(buf, 24, "%zu %s", n / unit, units[u]);
    else
        snprintf(buf, 24, "%.1f %s", (double)n / (double)unit, units[u]);
    return buf;
}

/* Human-readable duration of ns nanoseconds: "557 ns", "143.1 us", "2.5 ms". */
static const char *ns_text(char buf[24], double ns)
{
    ns = finite_or_zero(ns);
    if (ns < 1e3)
        snprintf(buf, 24, "%.0f ns", ns);
    else if (ns < 1e6)
        snprintf(buf, 24, "%.1f us", ns / 1e3);
    else
        snprintf(buf, 24, "%.1f ms", ns / 1e6);
    return buf;
}

/* Human-readable age: "12.3 s", "4 min 05 s", "3 h 02 min". */
static const char *age_text(char buf[24], double seconds)
{
    seconds = finite_or_zero(seconds);
    if (seconds < 60)
        snprintf(buf, 24, "%.1f s", seconds);
    else if (seconds < 3600)
        snprintf(buf, 24, "%u min %02u s", (unsigned)(seconds / 60), (unsigned)seconds % 60);
    else
        snprintf(buf, 24, "%llu h %02u min", (unsigned long long)(seconds / 3600), /* no libm: libmpool needs only libc */
                 (unsigned)((unsigned long long)seconds % 3600 / 60));
    return buf;
}

/* The one-line message: the deciding rule with its figure and threshold. */
static void health_message(mpool_health_t *h, const struct rule *r, size_t max_size, const mpool_stats_t *st)
{
    char a[24], b[24];
    const char *name = mpool_health_name(h->status);
    if (!r && max_size)
        snprintf(h->message, sizeof h->message, "%s: %.1f%% of max_size in use, fragmentation %.1f%%, error rate %.2f%%",
                 name, percent(h->usage), percent(h->fragmentation), percent(h->error_rate));
    else if (!r)
        snprintf(h->message, sizeof h->message, "%s: no max_size, fragmentation %.1f%%, error rate %.2f%%", name,
                 percent(h->fragmentation), percent(h->error_rate));
    else if (r->figure == FIG_USAGE)
        snprintf(h->message, sizeof h->message, "%s: %.1f%% of max_size in use (%s of %s; %s at %.1f%%)", name,
                 percent(h->usage), size_text(a, st->used_bytes), size_text(b, max_size), status_word(r->status),
                 percent(r->threshold));
    else if (r->figure == FIG_FRAGMENTATION)
        snprintf(h->message, sizeof h->message, "%s: fragmentation %.1f%% (%s free of %s held; %s at %.1f%%)", name,
                 percent(h->fragmentation), size_text(a, st->total_bytes - st->used_bytes),
                 size_text(b, st->total_bytes), status_word(r->status), percent(r->threshold));
    else
        snprintf(h->message, sizeof h->message,
                 "%s: error rate %.2f%% (%zu of %zu calls failed or were invalid frees; %s at %.2f%%)", name,
                 percent(h->error_rate), error_count(st), call_count(st), status_word(r->status),
                 percent(r->threshold));
}

/* The verdict of one snapshot of the pool. */
static mpool_health_t health_of(const struct mpool_pool *pool, const mpool_stats_t *st)
{
    mpool_health_t h;
    memset(&h, 0, sizeof h);
    size_t max_size = pool_max_size(pool, st);
    h.usage = ratio((double)st->used_bytes, (double)max_size);
    h.fragmentation = finite_or_zero(st->fragmentation);
    h.error_rate = ratio((double)error_count(st), (double)call_count(st));
    struct rule rules[HEALTH_RULES];
    health_rules(&pool->config, rules);
    const struct rule *worst = health_worst(rules, &h, max_size, st);
    h.status = worst ? worst->status : MPOOL_HEALTHY;
    health_message(&h, worst, max_size, st);
    return h;
}

const char *mpool_health_name(mpool_health_status_t status)
{
    switch (status) {
    case MPOOL_HEALTHY:
        return "HEALTHY";
    case MPOOL_WARNING:
        return "WARNING";
    case MPOOL_CRITICAL:
        return "CRITICAL";
    }
    return "UNKNOWN";
}

mpool_health_t mpool_health(const mpool_t *pool)
{
    const struct mpool_pool *p = pool ? pool : mpool_default();
    mpool_stats_t st;
    if (mpool_get_stats(p, &st))
        return health_of(p, &st);
    mpool_health_t h;
    memset(&h, 0, sizeof h);
    h.status = MPOOL_CRITICAL;
    snprintf(h.message, sizeof h.message, "CRITICAL: the pool's statistics could not be read (%s)",
             mpool_strerror(mpool_last_error()));
    return h;
}

/* ---- Output ------------------------------------------------------------ */

struct out {
    mpool_write_fn write;
    void *arg;
    size_t len;
    char buf[OUT_BUFFER];
};

static void out_flush(struct out *o)
{
    if (o->len)
        o->write(o->buf, o->len, o->arg);
    o->len = 0;
}

/* Appends formatted text; a piece longer than the buffer is cut (none of
 * this file's pieces is). */
static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof o->buf - o->len) {
        o->len += (size_t)n;
        return;
    }
    out_flush(o);
    va_start(ap, fmt);
    n = vsnprintf(o->buf, sizeof o->buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = (size_t)n < sizeof o->buf ? (size_t)n : sizeof o->buf - 1;
}

static void out_char(struct out *o, char c)
{
    if (o->len == sizeof o->buf)
        out_flush(o);
    o->buf[o->len++] = c;
}

/* The default writer: all of text to the file descriptor in arg. */
static void fd_write(const char *text, size_t len, void *arg)
{
    (void)error_write_all((int)(intptr_t)arg, text, len);
}

/* Where a report with no write function goes: the log file of the default
 * pool (MPOOL_LOG_FILE) for the default pool, stderr otherwise. */
static int report_fd(const struct mpool_pool *pool)
{
    if (pool->is_default) {
        int fd = pool_process_options()->log_fd;
        if (fd >= 0)
            return fd;
    }
    return STDERR_FILENO;
}

/* ---- Text report ------------------------------------------------------- */

static void text_memory(struct out *o, const struct mpool_pool *pool, const mpool_stats_t *st)
{
    char a[24], b[24], c[24];
    size_t max_size = pool_max_size(pool, st);
    out_printf(o, "memory\n  held            %s (peak %s), max_size %s\n", size_text(a, st->total_bytes),
               size_text(b, st->peak_total_bytes), max_size ? size_text(c, max_size) : "none");
    out_printf(o, "                  %zu regions, %zu large blocks, %zu huge blocks\n", st->regions,
               st->large_blocks, st->huge_blocks);
    out_printf(o, "  live            %s in %zu blocks (peak %s)\n", size_text(a, st->used_bytes), st->live_blocks,
               size_text(b, st->peak_used_bytes));
    out_printf(o, "  unused ratio    %.1f%% of the memory held is in no live block\n", percent(st->unused_ratio));
    out_printf(o, "  fragmentation   %.1f%%\n", percent(st->fragmentation));
    if (st->allocated_bytes)
        out_printf(o, "  internal waste  %.1f%% (%s requested, %s allocated)\n",
                   percent(1.0 - ratio((double)st->requested_bytes, (double)st->allocated_bytes)),
                   size_text(a, st->requested_bytes), size_text(b, st->allocated_bytes));
    else
        out_printf(o, "  internal waste  - (nothing allocated yet)\n");
}

static void text_calls(struct out *o, const mpool_stats_t *st)
{
    out_printf(o, "calls\n  successful      %zu allocations, %zu frees, %zu reallocs\n", st->allocations, st->frees,
               st->reallocs);
    out_printf(o, "  failed          %zu failed allocations, %zu invalid frees\n", st->alloc_failures,
               st->invalid_frees);
    size_t served = st->pool_hits + st->system_allocations;
    if (served)
        out_printf(o, "  hit rate        %.1f%% (%zu served from memory held, %zu needed the system)\n",
                   percent(ratio((double)st->pool_hits, (double)served)), st->pool_hits, st->system_allocations);
    else
        out_printf(o, "  hit rate        - (no allocation yet)\n");
    char a[24], b[24], c[24], d[24];
    out_printf(o, "  uptime          %s\n", age_text(a, st->uptime_seconds));
    if (st->timing_samples)
        out_printf(o, "  timing          %zu samples: allocation %s average, %s max; free %s average, %s max\n",
                   st->timing_samples, ns_text(a, st->avg_alloc_ns), ns_text(b, st->max_alloc_ns),
                   ns_text(c, st->avg_free_ns), ns_text(d, st->max_free_ns));
}

static void text_classes(struct out *o, const mpool_stats_t *st)
{
    out_printf(o, "size classes (those with blocks or calls)\n"
                  "  %10s  %-26s  %10s  %12s  %12s\n",
               "block size", "in use / capacity", "peak", "allocations", "frees");
    size_t shown = 0;
    for (size_t i = 0; i < class_limit(st); i++) {
        const mpool_class_stats_t *c = &st->classes[i];
        if (!class_is_shown(c))
            continue;
        char size[24], use[64];
        snprintf(use, sizeof use, "%zu/%zu blocks", c->in_use, c->capacity);
        out_printf(o, "  %10s  %-26s  %10zu  %12zu  %12zu\n", size_text(size, c->block_size), use, c->peak_in_use,
                   c->allocations, c->frees);
        shown++;
    }
    if (!shown)
        out_printf(o, "  (none)\n");
}

static void text_histogram(struct out *o, const mpool_stats_t *st)
{
    static const char bar[BAR_WIDTH + 1] = "##################################################";
    _Static_assert(sizeof bar == BAR_WIDTH + 1, "the bar string holds BAR_WIDTH '#'");
    size_t most = 0;
    for (unsigned k = 0; k < MPOOL_HISTOGRAM_BUCKETS; k++)
        most = st->size_histogram[k] > most ? st->size_histogram[k] : most;
    out_printf(o, "request sizes (allocations and reallocs by size asked for)\n");
    if (!most) {
        out_printf(o, "  (none)\n");
        return;
    }
    for (unsigned k = 0; k < MPOOL_HISTOGRAM_BUCKETS; k++) {
        size_t n = st->size_histogram[k];
        if (!n)
            continue;
        char lo[24], hi[24], label[56];
        if (k == 0)
            snprintf(label, sizeof label, "0 B");
        else
            snprintf(label, sizeof label, "[%s, %s)", size_text(lo, bucket_min(k)), size_text(hi, bucket_max(k) + 1));
        /* Scaled to the largest bucket; a non-empty bucket shows at least one '#'. */
        int width = (int)((double)n / (double)most * BAR_WIDTH + 0.5);
        width = width < 1 ? 1 : width;
        out_printf(o, "  %-20s %12zu %.*s\n", label, n, width, bar);
    }
}

/* ---- Fixed-size pools (fixed.h) ----------------------------------------- */

static void text_fixed_row(const struct fixed_summary *s, void *arg)
{
    struct out *o = arg;
    char size[24], held[24], use[80];
    snprintf(use, sizeof use, "%zu/%zu objects (%.1f%%)", s->in_use, s->capacity,
             percent(ratio((double)s->in_use, (double)s->capacity)));
    out_printf(o, "  %11s  %-30s  %6zu  %10s  %s %p", size_text(size, s->object_size), use, s->chunks,
               size_text(held, s->bytes), s->thread_safe ? "thread-safe" : "one-thread ", s->fp);
    if (s->failures || s->invalid_frees)
        out_printf(o, "  (%zu failed allocations, %zu invalid frees)", s->failures, s->invalid_frees);
    out_char(o, '\n');
}

/* The pool's fixed-size object pools, if it has any: object size, objects in
 * use / capacity (seed 003's "800/1000"), chunks and the bytes they take. */
static void text_fixed_pools(struct out *o, const struct mpool_pool *pool)
{
    if (!__atomic_load_n(&pool->fixed_pools.head, __ATOMIC_RELAXED))
        return;
    out_printf(o, "fixed-size pools\n  %11s  %-30s  %6s  %10s  %s\n", "object size", "in use / capacity", "chunks",
               "memory", "mode and pool");
    fixed_pool_each((struct mpool_pool *)pool, text_fixed_row, o);
}

struct json_fixed {
    struct out *o;
    bool first;
};

static void json_fixed_row(const struct fixed_summary *s, void *arg)
{
    struct json_fixed *j = arg;
    out_printf(j->o,
               "%s{\"object_size\":%zu,\"stride\":%zu,\"in_use\":%zu,\"capacity\":%zu,\"chunks\":%zu,"
               "\"bytes\":%zu,\"thread_safe\":%s,\"failures\":%zu,\"invalid_frees\":%zu}",
               j->first ? "" : ",", s->object_size, s->stride, s->in_use, s->capacity, s->chunks, s->bytes,
               s->thread_safe ? "true" : "false", s->failures, s->invalid_frees);
    j->first = false;
}

/* "fixed_pools": one object per fixed pool (an empty array if none). */
static void json_fixed_pools(struct out *o, const struct mpool_pool *pool)
{
    struct json_fixed j = {o, true};
    out_printf(o, "\"fixed_pools\":[");
    fixed_pool_each((struct mpool_pool *)pool, json_fixed_row, &j);
    out_printf(o, "],");
}

/* ---- Arenas (text and JSON) -------------------------------------------- */

struct arena_out {
    struct out *o;
    size_t shown;
};

static void text_arena(const struct arena_figures *f, void *arg)
{
    struct arena_out *ao = arg;
    char used[24], held[24], chunk[24], cap[24];
    if (!ao->shown++)
        out_printf(ao->o, "arenas (bytes used / held; children indented)\n");
    out_printf(ao->o, "  %*s%-18p  %10s / %-10s  chunk %s, max_size %s\n", (int)(2 * f->depth), "", f->arena,
               size_text(used, f->used), size_text(held, f->held), size_text(chunk, f->chunk_size),
               f->max_size ? size_text(cap, f->max_size) : "none");
}

/* The pool's arenas, if it has any. */
static void text_arenas(struct out *o, const struct mpool_pool *pool)
{
    struct arena_out ao = {o, 0};
    arena_pool_visit(pool, text_arena, &ao);
}

static void json_arena(const struct arena_figures *f, void *arg)
{
    struct arena_out *ao = arg;
    out_printf(ao->o, "%s{\"arena\":\"%p\",\"parent\":", ao->shown++ ? "," : "", f->arena);
    if (f->parent)
        out_printf(ao->o, "\"%p\"", f->parent);
    else
        out_printf(ao->o, "null");
    out_printf(ao->o, ",\"depth\":%u,\"used\":%zu,\"held\":%zu,\"chunk_size\":%zu,\"max_size\":%zu}", f->depth,
               f->used, f->held, f->chunk_size, f->max_size);
}

/* "arenas": every arena of the pool, parents before their children. */
static void json_arenas(struct out *o, const struct mpool_pool *pool)
{
    struct arena_out ao = {o, 0};
    out_printf(o, "\"arenas\":[");
    arena_pool_visit(pool, json_arena, &ao);
    out_printf(o, "],");
}

static void report_text(struct out *o, const struct mpool_pool *pool, const mpool_stats_t *st,
                        const mpool_health_t *h)
{
    out_printf(o, "mpool report: %s %p\n", pool->is_default ? "default pool" : "pool", (const void *)pool);
    if (!st->statistics_enabled)
        out_printf(o, "statistics off: the counted figures below are 0 (docs/statistics.md)\n");
    text_memory(o, pool, st);
    text_calls(o, st);
    text_classes(o, st);
    text_histogram(o, st);
    text_fixed_pools(o, pool);
    text_arenas(o, pool);
    out_printf(o, "health            %s\n", h->message);
}

/* ---- JSON report ------------------------------------------------------- */

/* The size_t fields of mpool_stats_t, in the order of the struct. */
static const struct {
    const char *name;
    size_t offset;
} json_sizes[] = {
#define STAT(f) {#f, offsetof(mpool_stats_t, f)}
    STAT(total_bytes),   STAT(peak_total_bytes),   STAT(used_bytes),    STAT(peak_used_bytes),
    STAT(live_blocks),   STAT(requested_bytes),    STAT(allocated_bytes), STAT(allocations),
    STAT(frees),         STAT(reallocs),           STAT(alloc_failures), STAT(invalid_frees),
    STAT(pool_hits),     STAT(system_allocations), STAT(regions),       STAT(huge_blocks),
    STAT(class_count),   STAT(timing_samples),     STAT(max_size),      STAT(large_blocks),
};

/* The double fields of mpool_stats_t. */
static const struct {
    const char *name;
    size_t offset;
} json_doubles[] = {
    STAT(unused_ratio), STAT(fragmentation), STAT(uptime_seconds), STAT(avg_alloc_ns),
    STAT(avg_free_ns),  STAT(max_alloc_ns),  STAT(max_free_ns),
#undef STAT
};

/* A finite number with '.' as its decimal point, whatever LC_NUMERIC says. */
static void json_number(struct out *o, double v)
{
    char text[40];
    int n = snprintf(text, sizeof text, "%.9g", finite_or_zero(v));
    for (int i = 0; i < n && i < (int)sizeof text - 1; i++) {
        char c = text[i];
        out_char(o, (c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' ? c : '.');
    }
}

static void json_string(struct out *o, const char *s)
{
    out_char(o, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out_char(o, '\\');
            out_char(o, (char)c);
        } else if (c < 0x20) {
            out_printf(o, "\\u%04x", c);
        } else {
            out_char(o, (char)c);
        }
    }
    out_char(o, '"');
}

static void json_classes(struct out *o, const mpool_stats_t *st)
{
    out_printf(o, "\"classes\":[");
    const char *sep = "";
    for (size_t i = 0; i < class_limit(st); i++) {
        const mpool_class_stats_t *c = &st->classes[i];
        if (!class_is_shown(c))
            continue;
        out_printf(o,
                   "%s{\"class\":%zu,\"block_size\":%zu,\"in_use\":%zu,\"capacity\":%zu,"
                   "\"peak_in_use\":%zu,\"allocations\":%zu,\"frees\":%zu}",
                   sep, i, c->block_size, c->in_use, c->capacity, c->peak_in_use, c->allocations, c->frees);
        sep = ",";
    }
    out_printf(o, "],");
}

static void json_histogram(struct out *o, const mpool_stats_t *st)
{
    out_printf(o, "\"size_histogram\":[");
    const char *sep = "";
    for (unsigned k = 0; k < MPOOL_HISTOGRAM_BUCKETS; k++) {
        if (!st->size_histogram[k])
            continue;
        out_printf(o, "%s{\"min\":%zu,\"max\":%zu,\"count\":%zu}", sep, bucket_min(k), bucket_max(k),
                   st->size_histogram[k]);
        sep = ",";
    }
    out_printf(o, "],");
}

static void json_health(struct out *o, const mpool_health_t *h)
{
    out_printf(o, "\"health\":{\"status\":");
    json_string(o, mpool_health_name(h->status));
    out_printf(o, ",\"message\":");
    json_string(o, h->message);
    out_printf(o, ",\"fragmentation\":");
    json_number(o, h->fragmentation);
    out_printf(o, ",\"usage\":");
    json_number(o, h->usage);
    out_printf(o, ",\"error_rate\":");
    json_number(o, h->error_rate);
    out_printf(o, "}");
}

static void report_json(struct out *o, const struct mpool_pool *pool, const mpool_stats_t *st,
                        const mpool_health_t *h)
{
    out_printf(o, "{\"report_version\":%d,\"statistics_enabled\":%s,", REPORT_VERSION,
               st->statistics_enabled ? "true" : "false");
    for (size_t i = 0; i < sizeof json_sizes / sizeof json_sizes[0]; i++) {
        size_t v;
        memcpy(&v, (const char *)st + json_sizes[i].offset, sizeof v);
        out_printf(o, "\"%s\":%zu,", json_sizes[i].name, v);
    }
    for (size_t i = 0; i < sizeof json_doubles / sizeof json_doubles[0]; i++) {
        double v;
        memcpy(&v, (const char *)st + json_doubles[i].offset, sizeof v);
        out_printf(o, "\"%s\":", json_doubles[i].name);
        json_number(o, v);
        out_char(o, ',');
    }
    json_classes(o, st);
    json_histogram(o, st);
    json_fixed_pools(o, pool);
    json_arenas(o, pool);
    json_health(o, h);
    out_printf(o, "}\n");
}

/* ---- mpool_report ------------------------------------------------------ */

bool mpool_report(const mpool_t *pool, mpool_report_format_t format, mpool_write_fn write_fn, void *arg)
{
    const struct mpool_pool *p = pool ? pool : mpool_default();
    if (format != MPOOL_REPORT_TEXT && format != MPOOL_REPORT_JSON) {
        error_raise(&p->policy, MPOOL_ERR_INVALID_ARGUMENT, 0, "mpool_report: unknown format %d", (int)format);
        return false;
    }
    mpool_stats_t st;
    if (!mpool_get_stats(p, &st))
        return false;
    mpool_health_t h = health_of(p, &st);
    int saved_errno = errno;
    struct out o = {.write = write_fn, .arg = arg, .len = 0};
    if (!o.write) {
        o.write = fd_write;
        o.arg = (void *)(intptr_t)report_fd(p);
    }
    if (format == MPOOL_REPORT_TEXT)
        report_text(&o, p, &st, &h);
    else
        report_json(&o, p, &st, &h);
    out_flush(&o);
    errno = saved_errno;
    return true;
}
