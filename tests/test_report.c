/*
 * test_report.c - the health verdict and the text and JSON reports.
 *
 * Each health state is reached by a constructed scenario: a pool capped by
 * max_size and filled with huge blocks of known size (so usage is exact),
 * a burst of invalid frees for the error rate, and configurations whose
 * thresholds differ from the defaults (0 meaning the default).  The reports
 * are read back: the text for its sections, per-class lines and bars, the
 * JSON by Python's json module against the figures of mpool_get_stats.  A
 * report never allocates from the pool it reports and, with no write
 * function, goes to stderr.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpool.h>

#include "testutil.h"

TestSuite(report);

/* ---- Scenarios ------------------------------------------------------------ */

/* A pool of at most 20 MiB whose blocks above 4 KiB are huge blocks of
 * exactly 1 MiB each (1020 KiB usable plus a one-page header), so n blocks
 * put n * 1020 KiB in use: 17 blocks are 84.7% of max_size, 20 are 99.6%. */
#define CAP_MAX_SIZE ((size_t)20 << 20)
#define CAP_BLOCK ((size_t)1020 << 10)

static mpool_config_t capped_config(void)
{
    mpool_config_t c = mpool_config_default();
    c.max_size = CAP_MAX_SIZE;
    c.initial_size = 0;
    c.max_block_size = 4 * KiB;
    return c;
}

/* A pool of cfg with n blocks of CAP_BLOCK in use (left live: destroying the
 * pool frees them). */
static mpool_t *capped_pool_with(const mpool_config_t *cfg, size_t n)
{
    mpool_t *pool = create_or_die(cfg);
    for (size_t i = 0; i < n; i++)
        cr_assert_not_null(mpool_alloc(pool, CAP_BLOCK), "block %zu of %zu: %s", i, n,
                           mpool_strerror(mpool_last_error()));
    return pool;
}

static void assert_status(mpool_health_t h, mpool_health_status_t want)
{
    cr_assert_eq(h.status, want, "status %s, expected %s (%s)", mpool_health_name(h.status),
                 mpool_health_name(want), h.message);
    cr_assert(strncmp(h.message, mpool_health_name(want), strlen(mpool_health_name(want))) == 0,
              "message does not begin with the status: \"%s\"", h.message);
    cr_assert_null(strchr(h.message, '\n'), "message is one line: \"%s\"", h.message);
}

static void assert_mentions(const char *text, const char *what)
{
    cr_assert_not_null(strstr(text, what), "\"%s\" not in:\n%s", what, text);
}

static mpool_stats_t stats_of(const mpool_t *pool)
{
    mpool_stats_t st;
    cr_assert(mpool_get_stats(pool, &st));
    return st;
}

/* ---- Health --------------------------------------------------------------- */

Test(report, health_names)
{
    cr_assert_str_eq(mpool_health_name(MPOOL_HEALTHY), "HEALTHY");
    cr_assert_str_eq(mpool_health_name(MPOOL_WARNING), "WARNING");
    cr_assert_str_eq(mpool_health_name(MPOOL_CRITICAL), "CRITICAL");
    cr_assert_not_null(mpool_health_name((mpool_health_status_t)42));
}

Test(report, fresh_pool_is_healthy)
{
    mpool_t *pool = create_or_die(NULL);
    mpool_health_t h = mpool_health(pool);
    assert_status(h, MPOOL_HEALTHY);
    assert_mentions(h.message, "no max_size");
    cr_assert_eq(h.usage, 0.0);
    cr_assert_eq(h.error_rate, 0.0);
    /* Its first few blocks split its first region: still not "fragmented". */
    void *p[8];
    for (int i = 0; i < 8; i++)
        p[i] = mpool_alloc(pool, (size_t)16 << (2 * i));
    for (int i = 0; i < 8; i += 2)
        mpool_free(pool, p[i]);
    assert_status(mpool_health(pool), MPOOL_HEALTHY);
    mpool_destroy(pool);

    mpool_config_t cfg = capped_config();
    pool = create_or_die(&cfg);
    h = mpool_health(pool);
    assert_status(h, MPOOL_HEALTHY);
    assert_mentions(h.message, "of max_size in use");
    mpool_destroy(pool);
}

Test(report, default_pool_is_readable)
{
    mpool_health_t h = mpool_health(NULL);
    cr_assert(h.status == MPOOL_HEALTHY || h.status == MPOOL_WARNING || h.status == MPOOL_CRITICAL);
    cr_assert_gt(strlen(h.message), 0);
}

Test(report, full_pool_is_critical)
{
    mpool_config_t cfg = capped_config();
    mpool_t *pool = capped_pool_with(&cfg, 20);
    mpool_health_t h = mpool_health(pool);
    cr_assert_float_eq(h.usage, 20.0 * CAP_BLOCK / CAP_MAX_SIZE, 1e-9, "usage %f", h.usage);
    cr_assert_geq(h.usage, 0.95);
    assert_status(h, MPOOL_CRITICAL);
    assert_mentions(h.message, "max_size");
    assert_mentions(h.message, "99.6%");
    assert_mentions(h.message, "critical at 95.0%");
    mpool_destroy(pool);
}

Test(report, mostly_full_pool_warns)
{
    mpool_config_t cfg = capped_config();
    mpool_t *pool = capped_pool_with(&cfg, 17);
    mpool_health_t h = mpool_health(pool);
    cr_assert(h.usage >= 0.80 && h.usage < 0.95, "usage %f", h.usage);
    assert_status(h, MPOOL_WARNING);
    assert_mentions(h.message, "max_size");
    assert_mentions(h.message, "warning at 80.0%");
    mpool_destroy(pool);
}

Test(report, zero_thresholds_mean_the_defaults)
{
    mpool_config_t cfg = capped_config();
    cfg.health_warning_usage = cfg.health_critical_usage = 0;
    cfg.health_warning_fragmentation = 0;
    cfg.health_warning_error_rate = cfg.health_critical_error_rate = 0;
    mpool_t *pool = capped_pool_with(&cfg, 12);
    assert_status(mpool_health(pool), MPOOL_HEALTHY);
    for (int i = 12; i < 17; i++)
        cr_assert_not_null(mpool_alloc(pool, CAP_BLOCK));
    assert_status(mpool_health(pool), MPOOL_WARNING);
    for (int i = 17; i < 20; i++)
        cr_assert_not_null(mpool_alloc(pool, CAP_BLOCK));
    assert_status(mpool_health(pool), MPOOL_CRITICAL);
    mpool_destroy(pool);
}

Test(report, custom_usage_thresholds)
{
    mpool_config_t cfg = capped_config();
    cfg.health_warning_usage = 0.50;
    cfg.health_critical_usage = 0.70;
    mpool_t *pool = capped_pool_with(&cfg, 12); /* 59.8% */
    mpool_health_t h = mpool_health(pool);
    assert_status(h, MPOOL_WARNING);
    assert_mentions(h.message, "warning at 50.0%");
    for (int i = 12; i < 15; i++) /* 74.7% */
        cr_assert_not_null(mpool_alloc(pool, CAP_BLOCK));
    h = mpool_health(pool);
    assert_status(h, MPOOL_CRITICAL);
    assert_mentions(h.message, "critical at 70.0%");
    mpool_destroy(pool);

    cfg = capped_config();
    cfg.health_warning_usage = 0.90;
    cfg.health_critical_usage = 0.999;
    pool = capped_pool_with(&cfg, 17); /* 84.7%: healthy by these thresholds */
    assert_status(mpool_health(pool), MPOOL_HEALTHY);
    for (int i = 17; i < 20; i++) /* 99.6% */
        cr_assert_not_null(mpool_alloc(pool, CAP_BLOCK));
    h = mpool_health(pool);
    assert_status(h, MPOOL_WARNING);
    assert_mentions(h.message, "warning at 90.0%");
    mpool_destroy(pool);
}

/* 80000 blocks of 128 B with 7 of every 8 freed: about 8.5 MiB free in
 * slabs that their survivors pin, in pieces of 128 B that no large request
 * can use (docs/statistics.md: fragmentation). */
enum { CHECKER_BLOCKS = 80000 };
static mpool_t *checkerboard_pool(const mpool_config_t *cfg)
{
    mpool_t *pool = create_or_die(cfg);
    void **p = malloc(CHECKER_BLOCKS * sizeof *p);
    cr_assert_not_null(p);
    for (int i = 0; i < CHECKER_BLOCKS; i++)
        cr_assert_not_null(p[i] = mpool_alloc(pool, 128));
    for (int i = 0; i < CHECKER_BLOCKS; i++)
        if (i % 8)
            mpool_free(pool, p[i]);
    free(p);
    return pool;
}

/* Needs the fragmentation figure of mpool_get_stats. */
Test(report, fragmented_pool_warns)
{
    mpool_t *pool = checkerboard_pool(NULL);
    mpool_stats_t st = stats_of(pool);
    cr_assert_geq(st.total_bytes - st.used_bytes, 4 * MiB);
    mpool_health_t h = mpool_health(pool);
    cr_assert_float_eq(h.fragmentation, st.fragmentation, 1e-12);
    cr_assert_geq(h.fragmentation, 0.5, "fragmentation %f of a checkerboard", h.fragmentation);
    assert_status(h, MPOOL_WARNING);
    assert_mentions(h.message, "fragmentation");
    assert_mentions(h.message, "warning at 50.0%");
    mpool_destroy(pool);

    mpool_config_t cfg = mpool_config_default();
    cfg.health_warning_fragmentation = 0.999;
    pool = checkerboard_pool(&cfg);
    assert_status(mpool_health(pool), MPOOL_HEALTHY);
    mpool_destroy(pool);
}

/* 10 allocations and 10 frees, then `invalid` frees of a pointer that is not
 * a block: an error rate of invalid / (20 + invalid). */
static mpool_t *pool_with_invalid_frees(const mpool_config_t *cfg, int invalid)
{
    mpool_t *pool = create_or_die(cfg);
    void *p[10];
    for (int i = 0; i < 10; i++)
        cr_assert_not_null(p[i] = mpool_alloc(pool, 24));
    for (int i = 0; i < 10; i++)
        mpool_free(pool, p[i]);
    long not_a_block = 0;
    for (int i = 0; i < invalid; i++) {
        if (i % 2)
            cr_assert_not(mpool_safe_free(pool, &not_a_block));
        else
            mpool_free(pool, &not_a_block);
        cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_POINTER);
    }
    return pool;
}

Test(report, error_rate_is_the_share_of_failed_calls)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.on_error = MPOOL_ON_ERROR_RETURN;
    mpool_t *pool = pool_with_invalid_frees(&cfg, 5);
    mpool_stats_t st = stats_of(pool);
    mpool_health_t h = mpool_health(pool);
    size_t errors = st.alloc_failures + st.invalid_frees;
    size_t calls = st.allocations + st.frees + st.reallocs + errors;
    cr_assert_float_eq(h.error_rate, calls ? (double)errors / (double)calls : 0.0, 1e-12);
    mpool_destroy(pool);
}

/* Needs the counting of mpool_get_stats (allocations, frees, invalid_frees). */
Test(report, invalid_frees_make_the_pool_critical)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.on_error = MPOOL_ON_ERROR_RETURN;
    mpool_t *pool = pool_with_invalid_frees(&cfg, 5); /* 5 of 25 calls: 20% */
    mpool_health_t h = mpool_health(pool);
    cr_assert_float_eq(h.error_rate, 0.2, 1e-12, "error rate %f (%s)", h.error_rate, h.message);
    assert_status(h, MPOOL_CRITICAL);
    assert_mentions(h.message, "error rate 20.00%");
    assert_mentions(h.message, "5 of 25 calls");
    assert_mentions(h.message, "critical at 10.00%");
    mpool_destroy(pool);
}

/* Needs the counting of mpool_get_stats. */
Test(report, custom_error_rate_thresholds)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.on_error = MPOOL_ON_ERROR_RETURN;
    cfg.health_critical_error_rate = 0.5;
    mpool_t *pool = pool_with_invalid_frees(&cfg, 5); /* 20%: a warning only */
    mpool_health_t h = mpool_health(pool);
    assert_status(h, MPOOL_WARNING);
    assert_mentions(h.message, "error rate");
    assert_mentions(h.message, "warning at 1.00%");
    mpool_destroy(pool);

    cfg.health_warning_error_rate = 0.25; /* 1 of 21 calls, 4.8%: healthy */
    pool = pool_with_invalid_frees(&cfg, 1);
    assert_status(mpool_health(pool), MPOOL_HEALTHY);
    mpool_destroy(pool);
}

/* ---- Capturing a report ------------------------------------------------------ */

#define CAPTURE_MAX ((size_t)1 << 20)

struct capture {
    char *text;
    size_t len;
    size_t pieces;
    size_t longest;
};

static void capture_write(const char *text, size_t len, void *arg)
{
    struct capture *c = arg;
    cr_assert_leq(c->len + len, CAPTURE_MAX - 1, "report longer than the capture");
    memcpy(c->text + c->len, text, len);
    c->len += len;
    c->text[c->len] = '\0';
    c->pieces++;
    c->longest = len > c->longest ? len : c->longest;
}

static struct capture capture_report(const mpool_t *pool, mpool_report_format_t format)
{
    struct capture c = {.text = calloc(1, CAPTURE_MAX)};
    cr_assert_not_null(c.text);
    cr_assert(mpool_report(pool, format, capture_write, &c), "mpool_report failed: %s",
              mpool_strerror(mpool_last_error()));
    cr_assert_gt(c.len, 0);
    cr_assert_eq(strlen(c.text), c.len, "the report holds a NUL byte");
    return c;
}

/* The line of text that contains `what` (which may begin with the newline
 * before the line), copied into line (empty if none). */
static void line_with(const char *text, const char *what, char *line, size_t size)
{
    line[0] = '\0';
    const char *at = strstr(text, what);
    if (!at)
        return;
    at += what[0] == '\n';
    const char *start = at;
    while (start > text && start[-1] != '\n')
        start--;
    const char *end = strchr(at, '\n');
    size_t n = end ? (size_t)(end - start) : strlen(start);
    n = n < size - 1 ? n : size - 1;
    memcpy(line, start, n);
    line[n] = '\0';
}

/* 10 blocks of 24 bytes, 3 of 100, one of 0 bytes, all live.  *usable24
 * (if not NULL): the block size of the 24-byte requests' class. */
static mpool_t *pool_with_small_blocks(size_t *usable24)
{
    mpool_t *pool = create_or_die(NULL);
    for (int i = 0; i < 10; i++) {
        void *p = mpool_alloc(pool, 24);
        cr_assert_not_null(p);
        if (usable24)
            *usable24 = mpool_usable_size(pool, p);
    }
    for (int i = 0; i < 3; i++)
        cr_assert_not_null(mpool_alloc(pool, 100));
    cr_assert_not_null(mpool_alloc(pool, 0));
    return pool;
}

/* ---- Text report ------------------------------------------------------------ */

Test(report, text_has_every_section_and_the_health_line)
{
    mpool_t *pool = pool_with_small_blocks(NULL);
    struct capture c = capture_report(pool, MPOOL_REPORT_TEXT);
    static const char *const labels[] = {
        "mpool report", "held", "live", "unused ratio", "fragmentation", "internal waste", "successful",
        "failed", "hit rate", "uptime", "size classes", "in use / capacity", "request sizes", "health ",
    };
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
        assert_mentions(c.text, labels[i]);
    char line[512];
    line_with(c.text, "health ", line, sizeof line);
    assert_mentions(line, mpool_health(pool).message);
    cr_assert_leq(c.longest, 1024, "pieces of at most the report's buffer");
    cr_assert_eq(c.text[c.len - 1], '\n');
    free(c.text);
    mpool_destroy(pool);
}

/* Needs the per-class figures and the histogram of mpool_get_stats. */
Test(report, text_shows_classes_and_histogram_bars)
{
    size_t usable = 0;
    mpool_t *pool = pool_with_small_blocks(&usable);
    cr_assert(usable >= 24 && usable < 1024, "usable size %zu", usable);
    mpool_stats_t st = stats_of(pool);
    size_t k = 0;
    while (k < st.class_count && st.classes[k].block_size != usable)
        k++;
    cr_assert_lt(k, st.class_count, "no class of %zu B in the snapshot", usable);
    cr_assert_eq(st.classes[k].in_use, 10);
    struct capture c = capture_report(pool, MPOOL_REPORT_TEXT);
    char want[64], line[512];
    snprintf(want, sizeof want, "10/%zu blocks", st.classes[k].capacity);
    line_with(c.text, want, line, sizeof line);
    snprintf(want, sizeof want, " %zu B ", usable);
    assert_mentions(line, want);
    /* 10 requests of 24 B: the largest bucket, a full bar; 3 of 100 B: 15 '#'. */
    line_with(c.text, "[16 B, 32 B)", line, sizeof line);
    assert_mentions(line, " 10 ##################################################");
    line_with(c.text, "[64 B, 128 B)", line, sizeof line);
    assert_mentions(line, " 3 ###############");
    cr_assert_null(strstr(line, "################"), "bar of 3 of 10 is 15 '#': %s", line);
    line_with(c.text, "\n  0 B ", line, sizeof line);
    assert_mentions(line, " 1 #");
    free(c.text);
    mpool_destroy(pool);
}

/* ---- JSON report ------------------------------------------------------------ */

static bool have_python(void)
{
    return system("python3 -c 'import json' >/dev/null 2>&1") == 0;
}

/* Writes the JSON report of pool to a temporary file whose name goes in path. */
static void json_to_file(const mpool_t *pool, char path[64])
{
    struct capture c = capture_report(pool, MPOOL_REPORT_JSON);
    strcpy(path, "/tmp/mpool-report-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
    cr_assert_eq(write(fd, c.text, c.len), (ssize_t)c.len);
    close(fd);
    free(c.text);
}

/* Python checks on the report in argv[1]; argv[2..] are "key=value" pairs
 * that must equal the top-level figures.  Exit status 0 when all hold. */
static const char json_checks[] =
    "import json, math, sys\n"
    "def no_constant(c): sys.exit(\"non-finite number: \" + c)\n"
    "d = json.load(open(sys.argv[1]), parse_constant=no_constant)\n"
    "sizes = [\"total_bytes\", \"peak_total_bytes\", \"used_bytes\", \"peak_used_bytes\", \"live_blocks\",\n"
    "  \"requested_bytes\", \"allocated_bytes\", \"allocations\", \"frees\", \"reallocs\", \"alloc_failures\",\n"
    "  \"invalid_frees\", \"pool_hits\", \"system_allocations\", \"regions\", \"huge_blocks\", \"class_count\",\n"
    "  \"timing_samples\", \"max_size\", \"large_blocks\"]\n"
    "reals = [\"unused_ratio\", \"fragmentation\", \"uptime_seconds\", \"avg_alloc_ns\", \"avg_free_ns\",\n"
    "  \"max_alloc_ns\", \"max_free_ns\"]\n"
    "for k in sizes: assert type(d[k]) is int and d[k] >= 0, k\n"
    "for k in reals: assert type(d[k]) in (int, float) and math.isfinite(d[k]), k\n"
    "assert d[\"report_version\"] == 1\n"
    "assert type(d[\"statistics_enabled\"]) is bool\n"
    "for c in d[\"classes\"]:\n"
    "  assert set(c) == {\"class\", \"block_size\", \"in_use\", \"capacity\", \"peak_in_use\", \"allocations\", \"frees\"}, c\n"
    "  assert 0 <= c[\"class\"] < d[\"class_count\"] and c[\"in_use\"] <= c[\"peak_in_use\"], c\n"
    "for b in d[\"size_histogram\"]:\n"
    "  assert set(b) == {\"min\", \"max\", \"count\"} and b[\"count\"] > 0, b\n"
    "  assert b[\"min\"] == b[\"max\"] == 0 or b[\"max\"] == 2 * b[\"min\"] - 1, b\n"
    "h = d[\"health\"]\n"
    "assert h[\"status\"] in (\"HEALTHY\", \"WARNING\", \"CRITICAL\"), h\n"
    "assert h[\"message\"].startswith(h[\"status\"] + \":\"), h\n"
    "for k in (\"fragmentation\", \"usage\", \"error_rate\"): assert math.isfinite(h[k]), k\n"
    "for kv in sys.argv[2:]:\n"
    "  k, v = kv.split(\"=\", 1)\n"
    "  got = d\n"
    "  for part in k.split(\".\"): got = got[int(part)] if type(got) is list else got[part]\n"
    "  assert str(got) == v, \"%s: %r, expected %s\" % (k, got, v)\n";

static int run_json_checks(const char *path, const char *expect)
{
    char cmd[8192];
    int n = snprintf(cmd, sizeof cmd, "python3 -c '%s' %s %s", json_checks, path, expect);
    cr_assert_lt((size_t)n, sizeof cmd);
    return system(cmd);
}

Test(report, json_parses_and_matches_the_snapshot)
{
    if (!have_python())
        cr_skip_test("python3 not found");
    mpool_config_t cfg = capped_config();
    mpool_t *pool = capped_pool_with(&cfg, 17);
    for (int i = 0; i < 10; i++)
        mpool_alloc(pool, 24);
    mpool_stats_t st = stats_of(pool);
    mpool_health_t h = mpool_health(pool);
    char path[64], expect[2048];
    json_to_file(pool, path);
    snprintf(expect, sizeof expect,
             "total_bytes=%zu used_bytes=%zu live_blocks=%zu allocations=%zu frees=%zu invalid_frees=%zu "
             "regions=%zu huge_blocks=%zu class_count=%zu max_size=%zu health.status=%s",
             st.total_bytes, st.used_bytes, st.live_blocks, st.allocations, st.frees, st.invalid_frees,
             st.regions, st.huge_blocks, st.class_count, st.max_size, mpool_health_name(h.status));
    int rc = run_json_checks(path, expect);
    cr_assert_eq(rc, 0, "the JSON report in %s failed the checks", path);
    unlink(path);
    mpool_destroy(pool);
}

/* Needs the counting of mpool_get_stats. */
Test(report, json_has_the_exact_counts)
{
    if (!have_python())
        cr_skip_test("python3 not found");
    mpool_t *pool = pool_with_small_blocks(NULL);
    char path[64];
    json_to_file(pool, path);
    /* 14 allocations: 10 of 24 B in [16, 31], 3 of 100 B in [64, 127], one of 0 B. */
    int rc = run_json_checks(path,
                             "allocations=14 live_blocks=14 requested_bytes=540 "
                             "size_histogram.0.min=0 size_histogram.0.count=1 "
                             "size_histogram.1.min=16 size_histogram.1.max=31 size_histogram.1.count=10 "
                             "size_histogram.2.min=64 size_histogram.2.count=3");
    cr_assert_eq(rc, 0, "the JSON report in %s failed the checks", path);
    unlink(path);
    mpool_destroy(pool);
}

/* ---- Where a report goes, and what it costs ---------------------------------- */

Test(report, no_write_function_means_stderr)
{
    mpool_t *pool = pool_with_small_blocks(NULL);
    char path[] = "/tmp/mpool-report-stderr-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    fflush(stderr);
    int saved = dup(2);
    cr_assert_geq(dup2(fd, 2), 0);
    bool ok = mpool_report(pool, MPOOL_REPORT_TEXT, NULL, NULL);
    dup2(saved, 2);
    close(saved);
    cr_assert(ok);
    char text[16384];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    unlink(path);
    cr_assert_gt(n, 0, "nothing reached stderr");
    text[n] = '\0';
    assert_mentions(text, "mpool report");
    assert_mentions(text, "health ");
    mpool_destroy(pool);
}

Test(report, unknown_format_is_refused)
{
    mpool_t *pool = create_or_die(NULL);
    struct capture c = {.text = calloc(1, CAPTURE_MAX)};
    cr_assert_not(mpool_report(pool, (mpool_report_format_t)7, capture_write, &c));
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_INVALID_ARGUMENT);
    cr_assert_eq(c.pieces, 0, "nothing written for an unknown format");
    free(c.text);
    mpool_destroy(pool);
}

static void assert_report_changes_nothing(const mpool_t *pool, mpool_report_format_t format)
{
    mpool_stats_t before = stats_of(pool);
    struct capture c = capture_report(pool, format);
    mpool_stats_t after = stats_of(pool);
    cr_assert_eq(after.allocations, before.allocations, "the report allocated from its pool");
    cr_assert_eq(after.alloc_failures, before.alloc_failures);
    cr_assert_eq(after.live_blocks, before.live_blocks);
    cr_assert_eq(after.used_bytes, before.used_bytes);
    cr_assert_eq(after.total_bytes, before.total_bytes);
    free(c.text);
}

Test(report, reporting_never_allocates_from_the_pool)
{
    mpool_t *pool = pool_with_small_blocks(NULL);
    assert_report_changes_nothing(pool, MPOOL_REPORT_TEXT);
    assert_report_changes_nothing(pool, MPOOL_REPORT_JSON);
    assert_report_changes_nothing(NULL, MPOOL_REPORT_TEXT);
    assert_report_changes_nothing(NULL, MPOOL_REPORT_JSON);
    mpool_destroy(pool);
}

/* Needs statistics_enabled from mpool_get_stats. */
Test(report, statistics_off_is_said)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.enable_statistics = false;
    mpool_t *pool = create_or_die(&cfg);
    cr_assert_not_null(mpool_alloc(pool, 24));
    struct capture c = capture_report(pool, MPOOL_REPORT_TEXT);
    assert_mentions(c.text, "statistics off");
    free(c.text);
    mpool_destroy(pool);
}
