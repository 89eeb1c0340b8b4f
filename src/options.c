/*
 * options.c - the option table of the default pool and the process
 * (options.h): parsing of the environment and of the MPOOL_CONFIG file.
 *
 * Value syntax
 *   size     digits with an optional K, M, G or T suffix (powers of 1024),
 *            optionally followed by B or iB: 512M, 64KiB, 1048576
 *   count    a whole number, optionally with K, M or G (timing_sample_rate=1K)
 *   number   a decimal such as 2, 1.5 or 0.25 (each option states its range)
 *   bool     1/0, true/false, yes/no, on/off
 *   policy   return, log or abort
 *   path     a file name, opened for appending when the option is read
 *            (log_file: messages; stats_file: the periodic statistics lines)
 *
 * Nothing here allocates memory (it runs inside the first malloc of a
 * process): no stdio streams, no strtod, no getline.
 */
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, strcasecmp */
#include "options.h"

#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "error.h"

enum option_kind { OPT_SIZE, OPT_COUNT, OPT_NUMBER, OPT_BOOL, OPT_POLICY, OPT_PATH };

/* Extra rule a value must follow on its own: sizes (power of two, block
 * size) and numbers (at least one, a fraction, an interval). */
enum option_rule { RULE_NONE, RULE_POWER_OF_TWO, RULE_BLOCK_SIZE, RULE_AT_LEAST_ONE, RULE_FRACTION,
                   RULE_INTERVAL };

/* The shortest stats_interval (seconds): a snapshot walks every heap. */
#define STATS_INTERVAL_MIN 0.01

struct option_spec {
    const char *name;      /* config-file name; the environment variable is MPOOL_<NAME> */
    enum option_kind kind; /* the C type at `offset`: size_t, unsigned, double, bool,
                              mpool_on_error_t, int (fd) */
    bool process;          /* in struct process_options (else in mpool_config_t) */
    size_t offset;
    enum option_rule rule;
    const char *doc;
};

#define CFG(field) false, offsetof(mpool_config_t, field)
#define PROC(field) true, offsetof(struct process_options, field)

/* The table.  Defaults are those of mpool_config_default() and, for the
 * malloc replacement, on_error = abort; verbose mode prints the values. */
static const struct option_spec option_table[] = {
    {"initial_size", OPT_SIZE, CFG(initial_size), RULE_NONE, "bytes mapped when the default pool starts"},
    {"max_size", OPT_SIZE, CFG(max_size), RULE_NONE, "bytes the default pool may take from the system (0: no cap)"},
    {"growth_factor", OPT_NUMBER, CFG(growth_factor), RULE_AT_LEAST_ONE, "growth multiplies the pool size by this (>= 1)"},
    {"min_block_size", OPT_SIZE, CFG(min_block_size), RULE_BLOCK_SIZE, "smallest block"},
    {"max_block_size", OPT_SIZE, CFG(max_block_size), RULE_BLOCK_SIZE, "larger blocks are mapped directly"},
    {"alignment", OPT_SIZE, CFG(alignment), RULE_POWER_OF_TWO, "every block is aligned at least this much"},
    {"thread_safe", OPT_BOOL, CFG(thread_safe), RULE_NONE, "lock the default pool (turn off only in one-thread programs)"},
    {"enable_statistics", OPT_BOOL, CFG(enable_statistics), RULE_NONE, "keep statistics"},
    {"enable_debug", OPT_BOOL, CFG(enable_debug), RULE_NONE, "exact checks on every free, poison freed memory"},
    {"on_error", OPT_POLICY, CFG(on_error), RULE_NONE, "misuse: return (silently), log (and continue) or abort"},
    {"timing_sample_rate", OPT_COUNT, CFG(timing_sample_rate), RULE_NONE, "time one allocation and one free in N (0: off)"},
    {"health_warning_usage", OPT_NUMBER, CFG(health_warning_usage), RULE_FRACTION, "health WARNING at this fraction of max_size in use (0: default)"},
    {"health_critical_usage", OPT_NUMBER, CFG(health_critical_usage), RULE_FRACTION, "health CRITICAL at this fraction of max_size in use (0: default)"},
    {"health_warning_fragmentation", OPT_NUMBER, CFG(health_warning_fragmentation), RULE_FRACTION, "health WARNING at this fragmentation (0: default)"},
    {"health_warning_error_rate", OPT_NUMBER, CFG(health_warning_error_rate), RULE_FRACTION, "health WARNING at this share of failed or invalid calls (0: default)"},
    {"health_critical_error_rate", OPT_NUMBER, CFG(health_critical_error_rate), RULE_FRACTION, "health CRITICAL at this share of failed or invalid calls (0: default)"},
    {"log_file", OPT_PATH, PROC(log_fd), RULE_NONE, "append messages to this file instead of stderr (the logger)"},
    {"verbose", OPT_BOOL, PROC(verbose), RULE_NONE, "print the options in effect at start"},
    {"show_stats", OPT_BOOL, PROC(show_stats), RULE_NONE, "print a report of the default pool at exit"},
    {"leak_report", OPT_BOOL, PROC(leak_report), RULE_NONE, "print the live blocks by call site at exit (turns on enable_debug)"},
    {"fast_unwind", OPT_BOOL, PROC(fast_unwind), RULE_NONE, "debug mode: capture call sites with libunwind if the system has it (false: glibc's backtrace)"},
    {"stats_interval", OPT_NUMBER, PROC(stats_interval), RULE_INTERVAL, "seconds between two lines of stats_file (0: only the line at exit)"},
    {"stats_file", OPT_PATH, PROC(stats_fd), RULE_NONE, "append a JSON line of statistics every stats_interval and at exit"},
};
#define OPTION_COUNT (sizeof option_table / sizeof option_table[0])

/* ---- Value parsers (return false on a malformed value) ------------------ */

static bool parse_size(const char *s, size_t *out)
{
    size_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (SIZE_MAX - 9) / 10)
            return false;
        v = v * 10 + (size_t)(*p - '0');
    }
    unsigned shift = 0;
    switch (*p) {
    case 'k': case 'K': shift = 10; p++; break;
    case 'm': case 'M': shift = 20; p++; break;
    case 'g': case 'G': shift = 30; p++; break;
    case 't': case 'T': shift = 40; p++; break;
    default: break;
    }
    if (shift && (*p == 'i' || *p == 'I'))
        p++;
    if (*p == 'b' || *p == 'B')
        p++;
    if (*p != '\0' || (shift && v > (SIZE_MAX >> shift)))
        return false;
    *out = v << shift;
    return true;
}

static bool parse_number(const char *s, double *out)
{
    double v = 0, scale = 1;
    const char *p = s;
    bool digits = false, dot = false;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            digits = true;
            if (dot) {
                scale /= 10;
                v += (*p - '0') * scale;
            } else {
                v = v * 10 + (*p - '0');
            }
        } else if (*p == '.' && !dot) {
            dot = true;
        } else {
            return false;
        }
    }
    if (!digits || v > 1e6)
        return false;
    *out = v;
    return true;
}

static bool word_is(const char *s, const char *a, const char *b, const char *c, const char *d)
{
    return !strcasecmp(s, a) || !strcasecmp(s, b) || !strcasecmp(s, c) || !strcasecmp(s, d);
}

static bool parse_bool(const char *s, bool *out)
{
    if (word_is(s, "1", "true", "yes", "on")) {
        *out = true;
        return true;
    }
    if (word_is(s, "0", "false", "no", "off")) {
        *out = false;
        return true;
    }
    return false;
}

static bool parse_policy(const char *s, mpool_on_error_t *out)
{
    static const char *const names[] = {"return", "log", "abort"};
    for (unsigned i = 0; i < 3; i++) {
        if (!strcasecmp(s, names[i])) {
            *out = (mpool_on_error_t)i;
            return true;
        }
    }
    return false;
}

/* ---- Applying ----------------------------------------------------------- */

static void warn(const char *where, const char *name, const char *value, const char *why)
{
    char text[400];
    snprintf(text, sizeof text, "ignoring %s%s=%s: %s; keeping the current value", where, name, value, why);
    error_write_line(-1, text);
}

/* The rule of one size field on its own (those between fields come after
 * every source is read: options_reconcile). */
static bool size_fits(enum option_rule rule, size_t size)
{
    switch (rule) {
    case RULE_POWER_OF_TWO:
        return size && !(size & (size - 1)) && size <= ((size_t)1 << 30);
    case RULE_BLOCK_SIZE:
        return size >= sizeof(void *);
    default:
        break;
    }
    return true;
}

/* The rule of one number on its own. */
static bool number_fits(enum option_rule rule, double number)
{
    switch (rule) {
    case RULE_AT_LEAST_ONE:
        return number >= 1.0;
    case RULE_FRACTION:
        return number <= 1.0;
    case RULE_INTERVAL:
        return number == 0.0 || number >= STATS_INTERVAL_MIN * (1 - 1e-9); /* 0.01 parsed may be below */
    default:
        break;
    }
    return true;
}

/* Where an option's value lives. */
static void *option_slot(const struct option_spec *o, mpool_config_t *cfg, struct process_options *proc)
{
    return (char *)(o->process ? (void *)proc : (void *)cfg) + o->offset;
}

/* Sets one option from its text; false (and nothing changed) if malformed. */
static bool option_set(const struct option_spec *o, const char *value, mpool_config_t *cfg,
                       struct process_options *proc)
{
    void *slot = option_slot(o, cfg, proc);
    switch (o->kind) {
    case OPT_SIZE: {
        size_t size;
        if (!parse_size(value, &size) || !size_fits(o->rule, size))
            return false;
        *(size_t *)slot = size;
        return true;
    }
    case OPT_COUNT: {
        size_t count;
        if (!parse_size(value, &count) || count > UINT_MAX)
            return false;
        *(unsigned *)slot = (unsigned)count;
        return true;
    }
    case OPT_NUMBER: {
        double number;
        if (!parse_number(value, &number) || !number_fits(o->rule, number))
            return false;
        *(double *)slot = number;
        return true;
    }
    case OPT_BOOL:
        return parse_bool(value, (bool *)slot);
    case OPT_POLICY:
        return parse_policy(value, (mpool_on_error_t *)slot);
    case OPT_PATH: {
        int fd = open(value, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return false;
        if (*(int *)slot >= 0)
            close(*(int *)slot);
        *(int *)slot = fd;
        return true;
    }
    }
    return false;
}

/* What a value of each kind looks like, for warnings. */
static const char *kind_syntax(enum option_kind kind)
{
    switch (kind) {
    case OPT_SIZE: return "expected a size such as 4096, 64K or 512M";
    case OPT_COUNT: return "expected a whole number such as 0, 1000 or 1K";
    case OPT_NUMBER: return "expected a number such as 1.5";
    case OPT_BOOL: return "expected 1/0, true/false, yes/no or on/off";
    case OPT_POLICY: return "expected return, log or abort";
    case OPT_PATH: return "cannot open the file for appending";
    }
    return "malformed";
}

/* What a value of this option must look like, for warnings. */
static const char *option_syntax(const struct option_spec *o)
{
    if (o->rule == RULE_POWER_OF_TWO)
        return "expected a power of two up to 1G, such as 64 or 4K";
    if (o->rule == RULE_BLOCK_SIZE)
        return "expected a size of at least 8, such as 16 or 64K";
    if (o->rule == RULE_AT_LEAST_ONE)
        return "expected a number >= 1 such as 1.5";
    if (o->rule == RULE_FRACTION)
        return "expected a fraction from 0 to 1 such as 0.8 (0: the default)";
    if (o->rule == RULE_INTERVAL)
        return "expected seconds such as 1 or 0.25 (at least 0.01; 0: off)";
    return kind_syntax(o->kind);
}

static const struct option_spec *option_find(const char *name)
{
    if (!strncasecmp(name, "MPOOL_", 6))
        name += 6;
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (!strcasecmp(option_table[i].name, name))
            return &option_table[i];
    return NULL;
}

/* Strips blanks at both ends of [s, s+n) in place; returns the new start. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        *--end = '\0';
    return s;
}

/* Applies one line of the config file (modified in place). */
static void load_line(const char *where, char *line, mpool_config_t *cfg, struct process_options *proc)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *text = trim(line);
    if (!*text)
        return;
    char *eq = strchr(text, '=');
    if (!eq) {
        warn(where, text, "", "expected name = value");
        return;
    }
    *eq = '\0';
    char *name = trim(text), *value = trim(eq + 1);
    const struct option_spec *o = option_find(name);
    if (!o)
        warn(where, name, value, "no such option");
    else if (!option_set(o, value, cfg, proc))
        warn(where, name, value, option_syntax(o));
}

static char config_chunk[4096]; /* a window on the config file: whole lines, read as they come */

/* Reads the file named by MPOOL_CONFIG line by line, whatever its length; a
 * line longer than the window is reported and skipped. */
static void load_file(const char *path, mpool_config_t *cfg, struct process_options *proc)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        warn("", "MPOOL_CONFIG", path, "cannot open the file");
        return;
    }
    char where[300];
    snprintf(where, sizeof where, "%s: ", path);
    size_t len = 0;
    bool skipping = false; /* inside a line too long for the window */
    for (;;) {
        ssize_t n = read(fd, config_chunk + len, sizeof config_chunk - 1 - len);
        bool eof = n <= 0;
        if (!eof)
            len += (size_t)n;
        config_chunk[len] = '\0';
        char *line = config_chunk;
        char *nl;
        while ((nl = memchr(line, '\n', len - (size_t)(line - config_chunk))) != NULL) {
            *nl = '\0';
            if (!skipping)
                load_line(where, line, cfg, proc);
            skipping = false;
            line = nl + 1;
        }
        size_t rest = len - (size_t)(line - config_chunk);
        if (eof) {
            if (rest && !skipping)
                load_line(where, line, cfg, proc);
            break;
        }
        if (rest == sizeof config_chunk - 1) { /* no newline in a full window */
            if (!skipping)
                warn(where, "", "", "a line longer than 4095 bytes, skipped");
            skipping = true;
            rest = 0;
        }
        memmove(config_chunk, line, rest);
        len = rest;
    }
    close(fd);
}

/* The environment variable of an option: MPOOL_ and its name in capitals. */
static void option_env_name(const struct option_spec *o, char *var, size_t len)
{
    size_t k = (size_t)snprintf(var, len, "MPOOL_");
    for (const char *c = o->name; *c && k + 1 < len; c++)
        var[k++] = (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
    var[k] = '\0';
}

static void load_environment(mpool_config_t *cfg, struct process_options *proc)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        char var[64];
        option_env_name(&option_table[i], var, sizeof var);
        const char *value = getenv(var);
        if (value && !option_set(&option_table[i], value, cfg, proc))
            warn("", var, value, option_syntax(&option_table[i]));
    }
}

/* Formats an option's current value. */
static void option_format(const struct option_spec *o, mpool_config_t *cfg, struct process_options *proc,
                          char *buf, size_t len)
{
    const void *slot = option_slot(o, cfg, proc);
    switch (o->kind) {
    case OPT_SIZE:
        snprintf(buf, len, "%zu", *(const size_t *)slot);
        break;
    case OPT_COUNT:
        snprintf(buf, len, "%u", *(const unsigned *)slot);
        break;
    case OPT_NUMBER: { /* no %f: printf of floating point may allocate */
        unsigned long thousandths = (unsigned long)(*(const double *)slot * 1000 + 0.5);
        snprintf(buf, len, "%lu.%03lu", thousandths / 1000, thousandths % 1000);
        break;
    }
    case OPT_BOOL:
        snprintf(buf, len, "%d", *(const bool *)slot);
        break;
    case OPT_POLICY: {
        mpool_on_error_t policy = *(const mpool_on_error_t *)slot;
        snprintf(buf, len, "%s", policy == MPOOL_ON_ERROR_ABORT ? "abort"
                                 : policy == MPOOL_ON_ERROR_LOG ? "log" : "return");
        break;
    }
    case OPT_PATH: {
        bool log = o->process && o->offset == offsetof(struct process_options, log_fd);
        snprintf(buf, len, "%s", *(const int *)slot >= 0 ? "(open)" : log ? "(stderr)" : "(none)");
        break;
    }
    }
}

/* Settles conflicts between fields, each with one warning: the block sizes
 * return to their defaults together, initial_size is lowered to max_size. */
static void options_reconcile(mpool_config_t *cfg)
{
    mpool_config_t def = mpool_config_default();
    char text[300];
    if (cfg->min_block_size > cfg->max_block_size) {
        snprintf(text, sizeof text,
                 "MPOOL_MIN_BLOCK_SIZE (%zu) exceeds MPOOL_MAX_BLOCK_SIZE (%zu); keeping the defaults of both",
                 cfg->min_block_size, cfg->max_block_size);
        error_write_line(-1, text);
        cfg->min_block_size = def.min_block_size;
        cfg->max_block_size = def.max_block_size;
    }
    if (cfg->max_size && cfg->initial_size > cfg->max_size) {
        snprintf(text, sizeof text, "MPOOL_INITIAL_SIZE (%zu) exceeds MPOOL_MAX_SIZE (%zu); using %zu",
                 cfg->initial_size, cfg->max_size, cfg->max_size);
        error_write_line(-1, text);
        cfg->initial_size = cfg->max_size;
    }
}

void options_fd_logger(mpool_error_t err, const char *message, void *arg)
{
    (void)err;
    error_write_line((int)(intptr_t)arg, message);
}

void options_load(mpool_config_t *cfg, struct process_options *proc, bool dropin)
{
    *cfg = mpool_config_default();
    if (dropin)
        cfg->on_error = MPOOL_ON_ERROR_ABORT;
    proc->verbose = proc->show_stats = proc->leak_report = false;
    proc->fast_unwind = true;
    proc->stats_interval = 0;
    proc->log_fd = proc->stats_fd = -1;
    const char *file = getenv("MPOOL_CONFIG");
    if (file && *file)
        load_file(file, cfg, proc);
    load_environment(cfg, proc);
    options_reconcile(cfg);
    if (proc->leak_report)
        cfg->enable_debug = true; /* call sites are recorded only in debug mode */
    if (proc->log_fd >= 0) {
        cfg->logger = options_fd_logger;
        cfg->logger_arg = (void *)(intptr_t)proc->log_fd;
    }
    if (proc->verbose) {
        error_write_line(proc->log_fd, dropin ? "options of the default pool (malloc replacement):"
                                              : "options of the default pool:");
        for (size_t i = 0; i < OPTION_COUNT; i++) {
            char var[64], value[64], text[300];
            option_env_name(&option_table[i], var, sizeof var);
            option_format(&option_table[i], cfg, proc, value, sizeof value);
            snprintf(text, sizeof text, "  %-34s = %-12s %s", var, value, option_table[i].doc);
            error_write_line(proc->log_fd, text);
        }
    }
}
