/*
 * dropin/monitor.c - the statistics of the default pool that the malloc
 * replacement gives a person and a tool without changing the program:
 *
 *   MPOOL_SHOW_STATS=1        the text report (mpool_report) at exit, on
 *                             stderr or MPOOL_LOG_FILE; malloc_stats()
 *                             prints the same report at any time.
 *   MPOOL_LEAK_REPORT=1       the live blocks by allocation call site at exit
 *                             (mpool_report_leaks; turns on debug mode, whose
 *                             last check of every block runs at exit too).
 *   MPOOL_STATS_FILE=path     one JSON line appended at exit, and with
 *   MPOOL_STATS_INTERVAL=s    one every s seconds, written by a thread:
 *
 *       {"timestamp": 1718000000.250000, "pid": 4242, "report": {...}}
 *
 *   where "timestamp" is Unix time in seconds (microsecond resolution) and
 *   "report" the JSON report (docs/statistics.md) on one line.
 *
 * Rules
 *   - Nothing here allocates from the pool it reports: a line is gathered in
 *     a static buffer from the pieces mpool_report hands out and written with
 *     one write(2) (O_APPEND: lines of processes sharing the file do not
 *     mix); the text report goes out through a buffer on the stack.  A line
 *     longer than the buffer is dropped, with one warning.
 *   - The thread starts in the replacement's constructor, once the C library
 *     can create threads (pthread_create allocates, from this pool: that is
 *     the program's business, not the report's), with every signal blocked,
 *     and sleeps on a condition variable until its next line or exit.  It is
 *     not started for a pool that is not thread safe (it would read the pool
 *     while the program changes it): then only the line at exit is written.
 *   - Exit (the replacement's destructor) wakes the thread, joins it, and
 *     writes the last line.
 *   - fork: the handlers hold monitor.lock across the fork, so the child
 *     never inherits a line half written, and they run before the pool's own
 *     (registered after them), so the thread can finish a line that needs
 *     the pool's locks.  The parent's thread does not exist in the child:
 *     the child forgets it and starts its own, so a forked child writes its
 *     lines (with its own pid) into the same file.
 *   - The file is checked before every line: if the program closed the
 *     descriptor and it now names another file, the monitor stops writing
 *     (one warning) rather than write into a file it did not open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dropin.h"
#include "heap.h"
#include "error.h"
#include "mpool.h"
#include "options.h"
#include "pool.h"

#define LINE_CAPACITY ((size_t)256 << 10) /* a JSON report of every class holds about 30 KiB */
#define TEXT_CHUNK 4096                   /* the text report is written in pieces of this size */
#define THREAD_STACK ((size_t)256 << 10)

static struct {
    pthread_mutex_t lock; /* held while a line is written, by fork, and to change the fields below */
    pthread_cond_t wake;  /* signalled at exit */
    pthread_t thread;
    bool running;         /* the thread exists in this process */
    bool stopping;        /* exit: the thread returns */
    bool broken;          /* the file is gone or replaced: no more lines */
    int fd;               /* the statistics file (-1: none) */
    dev_t dev;            /* what fd named when it was opened */
    ino_t ino;
    double interval;      /* seconds between two lines (0: no thread) */
    int text_fd;          /* stderr as it was at start (programs may close fd 2 before exit) */
} monitor = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1, .text_fd = -1};

static char line_buf[LINE_CAPACITY]; /* the line being written; under monitor.lock */

/* ---- Writing ------------------------------------------------------------ */

/* Gathers the pieces of a report.  A line (JSON) keeps everything for one
 * write and drops newlines and the indentation after them (JSON strings
 * hold no raw newline, so this changes no value); text goes out whenever
 * the buffer fills. */
struct sink {
    int fd;
    char *buf;
    size_t cap, len;
    bool one_line;
    bool line_start; /* one_line: after a dropped newline, skipping indentation */
    bool overflow;   /* one_line: the line did not fit */
    bool failed;     /* a write failed */
};

static void sink_flush(struct sink *s)
{
    if (s->len && !error_write_all(s->fd, s->buf, s->len))
        s->failed = true;
    s->len = 0;
}

static void sink_put(struct sink *s, const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (s->one_line) {
            if (c == '\n' || c == '\r') {
                s->line_start = true;
                continue;
            }
            if (s->line_start && (c == ' ' || c == '\t'))
                continue;
            s->line_start = false;
            if (s->len == s->cap) {
                s->overflow = true;
                return;
            }
        } else if (s->len == s->cap) {
            sink_flush(s);
        }
        s->buf[s->len++] = c;
    }
}

/* The mpool_write_fn of every report written here. */
static void sink_write(const char *text, size_t len, void *arg)
{
    sink_put(arg, text, len);
}

static void sink_puts(struct sink *s, const char *text)
{
    sink_put(s, text, strlen(text));
}

/* ---- The text report ---------------------------------------------------- */

void monitor_text_report(void)
{
    const struct process_options *proc = pool_process_options();
    int fd = proc->log_fd >= 0 ? proc->log_fd : monitor.text_fd >= 0 ? monitor.text_fd : STDERR_FILENO;
    char buf[TEXT_CHUNK];
    struct sink s = {.fd = fd, .buf = buf, .cap = sizeof buf};
    if (!mpool_report(NULL, MPOOL_REPORT_TEXT, sink_write, &s))
        sink_puts(&s, "mpool: the report of the default pool could not be written\n");
    sink_flush(&s);
}

/* ---- Debug mode at exit --------------------------------------------------- */

/* A last check of the default pool in debug mode (canaries of the live
 * blocks, fills of the quarantine: a write after free the program made just
 * before exiting), then with MPOOL_LEAK_REPORT=1 the live blocks by call
 * site, on MPOOL_LOG_FILE or stderr as it was at start. */
static void monitor_debug_exit(const struct process_options *proc)
{
    (void)mpool_check(NULL);
    if (!proc->leak_report)
        return;
    int fd = proc->log_fd >= 0 ? proc->log_fd : monitor.text_fd >= 0 ? monitor.text_fd : STDERR_FILENO;
    char buf[TEXT_CHUNK];
    struct sink s = {.fd = fd, .buf = buf, .cap = sizeof buf};
    (void)mpool_report_leaks(NULL, sink_write, &s);
    sink_flush(&s);
}

/* ---- The statistics file ------------------------------------------------ */

/* True while monitor.fd is still the file opened at start. */
static bool monitor_file_same_locked(void)
{
    struct stat st;
    return fstat(monitor.fd, &st) == 0 && st.st_dev == monitor.dev && st.st_ino == monitor.ino;
}

/* Appends one line: the time, the pid and the JSON report. */
static void monitor_write_line_locked(void)
{
    if (monitor.fd < 0 || monitor.broken)
        return;
    if (!monitor_file_same_locked()) {
        monitor.broken = true;
        error_write_line(pool_process_options()->log_fd,
                         "MPOOL_STATS_FILE: the file was closed or replaced; no more statistics lines");
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct sink s = {.fd = monitor.fd, .buf = line_buf, .cap = sizeof line_buf, .one_line = true};
    char head[96]; /* no %f: printf of floating point may allocate */
    snprintf(head, sizeof head, "{\"timestamp\": %lld.%06ld, \"pid\": %ld, \"report\": ", (long long)now.tv_sec,
             now.tv_nsec / 1000, (long)getpid());
    sink_puts(&s, head);
    bool ok = mpool_report(NULL, MPOOL_REPORT_JSON, sink_write, &s);
    sink_puts(&s, "}");
    if (!ok || s.overflow || s.len == s.cap) {
        static bool warned;
        if (!warned) {
            warned = true;
            error_write_line(pool_process_options()->log_fd,
                             ok ? "MPOOL_STATS_FILE: a statistics line longer than 256 KiB was dropped"
                                : "MPOOL_STATS_FILE: the report could not be written; line dropped");
        }
        return;
    }
    s.buf[s.len++] = '\n';
    sink_flush(&s);
}

static void timespec_add(struct timespec *t, long long ns)
{
    ns += t->tv_nsec;
    t->tv_sec += (time_t)(ns / 1000000000);
    t->tv_nsec = (long)(ns % 1000000000);
}

static bool timespec_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* The thread: one line every interval on the monotonic clock, until exit. */
static void *monitor_main(void *arg)
{
    (void)arg;
    long long step = (long long)(monitor.interval * 1e9);
    pthread_mutex_lock(&monitor.lock);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    timespec_add(&next, step);
    while (!monitor.stopping && !monitor.broken) {
        int rc = pthread_cond_timedwait(&monitor.wake, &monitor.lock, &next);
        if (monitor.stopping)
            break;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (rc != ETIMEDOUT && timespec_before(&now, &next))
            continue; /* woken early */
        monitor_write_line_locked();
        timespec_add(&next, step);
        if (timespec_before(&next, &now)) { /* fell behind (a stopped process): no burst of lines */
            next = now;
            timespec_add(&next, step);
        }
    }
    pthread_mutex_unlock(&monitor.lock);
    return NULL;
}

/* Starts the thread, its signals blocked (the program's signals go to the
 * program's threads); false if it could not be created. */
static bool monitor_spawn_locked(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&monitor.wake, &ca);
    pthread_condattr_destroy(&ca);
    monitor.stopping = false;

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&monitor.thread, &attr, monitor_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    monitor.running = rc == 0;
    if (monitor.running)
        pthread_setname_np(monitor.thread, "mpool-stats");
    return monitor.running;
}

static void monitor_fork_prepare(void)
{
    pthread_mutex_lock(&monitor.lock);
}

static void monitor_fork_parent(void)
{
    pthread_mutex_unlock(&monitor.lock);
}

static void monitor_fork_child(void)
{
    monitor.running = false; /* the parent's thread is not here */
    if (monitor.interval > 0 && monitor.fd >= 0 && !monitor.broken)
        monitor_spawn_locked();
    pthread_mutex_unlock(&monitor.lock);
}

void monitor_start(void)
{
    const struct process_options *proc = pool_process_options(); /* first: the pool's fork handlers */
    if (proc->show_stats || proc->leak_report)
        monitor.text_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (proc->stats_fd < 0) {
        if (proc->stats_interval > 0)
            error_write_line(proc->log_fd, "MPOOL_STATS_INTERVAL without MPOOL_STATS_FILE: no statistics lines");
        return;
    }
    struct stat st;
    if (fstat(proc->stats_fd, &st) != 0)
        return;
    pthread_mutex_lock(&monitor.lock);
    monitor.fd = proc->stats_fd;
    monitor.dev = st.st_dev;
    monitor.ino = st.st_ino;
    if (proc->stats_interval > 0 && !mpool_is_thread_safe(NULL))
        error_write_line(proc->log_fd, "MPOOL_STATS_INTERVAL needs MPOOL_THREAD_SAFE=1 (a thread reads the "
                                       "pool); writing only the line at exit");
    else
        monitor.interval = proc->stats_interval;
    pthread_atfork(monitor_fork_prepare, monitor_fork_parent, monitor_fork_child);
    if (monitor.interval > 0 && !monitor_spawn_locked())
        error_write_line(proc->log_fd, "MPOOL_STATS_INTERVAL: cannot start the statistics thread; "
                                       "writing only the line at exit");
    pthread_mutex_unlock(&monitor.lock);
}

void monitor_exit(void)
{
    const struct process_options *proc = pool_process_options();
    if (__atomic_load_n(&mpool_default_ready, __ATOMIC_ACQUIRE))
        heap_pool_sweep(&mpool_default_pool, false); /* double frees no allocation met yet */
    if (monitor.fd >= 0) {
        pthread_mutex_lock(&monitor.lock);
        bool join = monitor.running;
        monitor.stopping = true;
        monitor.running = false;
        if (join)
            pthread_cond_signal(&monitor.wake);
        pthread_mutex_unlock(&monitor.lock);
        if (join)
            pthread_join(monitor.thread, NULL);
        pthread_mutex_lock(&monitor.lock);
        monitor_write_line_locked();
        pthread_mutex_unlock(&monitor.lock);
    }
    if (proc->show_stats)
        monitor_text_report();
    if (pool_default()->debug)
        monitor_debug_exit(proc);
}
