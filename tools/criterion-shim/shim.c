/*
 * shim.c - the runner of the mpool Criterion shim (see include/criterion/criterion.h):
 * runs every registered test in its own fork()ed child, one at a time, and
 * reports like Criterion.  Exit status 0 when every selected test passed.
 */
#define _POSIX_C_SOURCE 200809L

#include "criterion/criterion.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    EXIT_ASSERT_FAILED = 251, /* a cr_assert / cr_expect failed */
    EXIT_SKIPPED = 250        /* cr_skip_test / cr_assume */
};

static struct crs_test *tests_head, **tests_tail = &tests_head;
static struct crs_suite *suites;

/* State of the child that runs one test. */
static jmp_buf test_jmp;
static int jmp_armed;
static int failed;
static pthread_t main_thread;

void crs_register_test(struct crs_test *test)
{
    test->next = NULL;
    *tests_tail = test;
    tests_tail = &test->next;
}

void crs_register_suite(struct crs_suite *suite)
{
    suite->next = suites;
    suites = suite;
}

static void print_message(const char *fmt, va_list ap)
{
    /* Messages arrive as " " "user format": drop the separator when empty. */
    if (fmt[0] == ' ' && fmt[1] == '\0')
        return;
    fputs(":", stderr);
    vfprintf(stderr, fmt, ap);
}

void crs_fail(int fatal, const char *file, int line, const char *what, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "[----] %s:%d: Assertion failed: %s", file, line, what);
    va_start(ap, fmt);
    print_message(fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    failed = 1;
    if (!fatal)
        return;
    /* longjmp across threads is undefined: a failing thread ends the child. */
    if (jmp_armed && pthread_equal(pthread_self(), main_thread))
        longjmp(test_jmp, 1);
    _exit(EXIT_ASSERT_FAILED);
}

void crs_skip(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "[----] %s:%d: Skipped", file, line);
    va_start(ap, fmt);
    print_message(fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    exit(EXIT_SKIPPED);
}

void crs_log(enum crs_log_level level, const char *fmt, ...)
{
    static const char *const tags[] = {"[----] ", "[WARN] ", "[ERR ] "};
    va_list ap;
    fputs(tags[level], stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bool crs_all(const int *values, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (!values[i])
            return false;
    return true;
}

bool crs_any(const int *values, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (values[i])
            return true;
    return false;
}

static const struct crs_suite *find_suite(const char *name)
{
    for (const struct crs_suite *s = suites; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static void call(void (*fn)(void))
{
    if (fn)
        fn();
}

/* The child: setup, test, teardown (teardown also after a failed assert). */
static _Noreturn void run_child(const struct crs_test *t, const struct crs_suite *s, double timeout)
{
    if (timeout > 0) {
        struct itimerval it = {{0, 0}, {0, 0}};
        it.it_value.tv_sec = (time_t)timeout;
        it.it_value.tv_usec = (suseconds_t)((timeout - floor(timeout)) * 1e6);
        setitimer(ITIMER_REAL, &it, NULL);
    }
    main_thread = pthread_self();
    jmp_armed = 1;
    if (setjmp(test_jmp) == 0) {
        call(s ? s->data.init : NULL);
        call(t->data.init);
        t->fn();
    }
    if (setjmp(test_jmp) == 0) {
        call(t->data.fini);
        call(s ? s->data.fini : NULL);
    }
    jmp_armed = 0;
    fflush(NULL);
    exit(failed ? EXIT_ASSERT_FAILED : 0);
}

struct options {
    const char *filter;
    double timeout;
    int list, fail_fast, always_succeed, verbose, quiet;
};

static int parse_args(int argc, char **argv, struct options *o)
{
    const char *env;
    if ((env = getenv("CRITERION_TEST_PATTERN")) && *env)
        o->filter = env;
    if ((env = getenv("CRITERION_FAIL_FAST")) && *env && strcmp(env, "0") != 0)
        o->fail_fast = 1;
    if ((env = getenv("CRITERION_ALWAYS_SUCCEED")) && *env && strcmp(env, "0") != 0)
        o->always_succeed = 1;
    if ((env = getenv("CRITERION_VERBOSITY_LEVEL")) && *env)
        o->verbose = atoi(env) > 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--filter") == 0 && i + 1 < argc)
            o->filter = argv[++i];
        else if (strncmp(a, "--filter=", 9) == 0)
            o->filter = a + 9;
        else if (strcmp(a, "--timeout") == 0 && i + 1 < argc)
            o->timeout = atof(argv[++i]);
        else if (strncmp(a, "--timeout=", 10) == 0)
            o->timeout = atof(a + 10);
        else if (strcmp(a, "-l") == 0 || strcmp(a, "--list") == 0)
            o->list = 1;
        else if (strcmp(a, "-f") == 0 || strcmp(a, "--fail-fast") == 0)
            o->fail_fast = 1;
        else if (strcmp(a, "--always-succeed") == 0)
            o->always_succeed = 1;
        else if (strncmp(a, "--verbose", 9) == 0)
            o->verbose = 1;
        else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)
            o->quiet = 1;
        else if (strcmp(a, "-j") == 0 || strcmp(a, "--jobs") == 0)
            i += i + 1 < argc; /* accepted; tests run one at a time */
        else if (strncmp(a, "-j", 2) == 0 || strncmp(a, "--jobs=", 7) == 0)
            ; /* idem */
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("usage: %s [--filter PATTERN] [--list] [--timeout S] [--fail-fast]\n"
                   "          [--always-succeed] [--verbose] [-q] [-j N]\n"
                   "mpool Criterion shim: runs each test in a forked child, one at a time.\n",
                   argv[0]);
            return 1;
        } else
            fprintf(stderr, "[WARN] criterion shim: ignoring unsupported option %s\n", a);
    }
    return 0;
}

static int selected(const struct crs_test *t, const char *filter)
{
    char id[512];
    if (!filter)
        return 1;
    snprintf(id, sizeof id, "%s/%s", t->suite, t->name);
    return fnmatch(filter, id, 0) == 0;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    if (parse_args(argc, argv, &o))
        return 0;

    if (o.list) {
        for (const struct crs_test *t = tests_head; t; t = t->next)
            if (selected(t, o.filter))
                printf("%s: %s\n", t->suite, t->name);
        return 0;
    }

    unsigned tested = 0, passing = 0, failing = 0, crashing = 0, skipped = 0;
    if (!o.quiet)
        fprintf(stderr, "[----] mpool criterion shim (Criterion cannot run under ThreadSanitizer): "
                        "one forked child per test\n");
    for (const struct crs_test *t = tests_head; t; t = t->next) {
        if (!selected(t, o.filter))
            continue;
        const struct crs_suite *s = find_suite(t->suite);
        const struct criterion_test_extra_data *sd = s ? &s->data : NULL;
        if (t->data.disabled || (sd && sd->disabled)) {
            skipped++;
            if (o.verbose)
                fprintf(stderr, "[SKIP] %s::%s: test is disabled\n", t->suite, t->name);
            continue;
        }
        double timeout = t->data.timeout > 0 ? t->data.timeout
                         : sd && sd->timeout > 0 ? sd->timeout
                                                 : o.timeout;
        int want_signal = t->data.signal ? t->data.signal : sd ? sd->signal : 0;
        int want_exit = t->data.exit_code ? t->data.exit_code : sd ? sd->exit_code : 0;

        if (o.verbose)
            fprintf(stderr, "[RUN ] %s::%s\n", t->suite, t->name);
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("criterion shim: fork");
            return 2;
        }
        if (pid == 0)
            run_child(t, s, timeout);

        int status;
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) {
                perror("criterion shim: waitpid");
                return 2;
            }
        }

        tested++;
        const char *verdict = NULL; /* NULL: passed */
        char why[128] = "";
        int crashed = 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SKIPPED) {
            tested--;
            skipped++;
            continue;
        } else if (WIFEXITED(status)) {
            int code = WEXITSTATUS(status);
            if (code == EXIT_ASSERT_FAILED)
                verdict = "assertion failed";
            else if (want_signal)
                snprintf(why, sizeof why, "exited with %d, expected signal %d", code, want_signal);
            else if (code != want_exit)
                snprintf(why, sizeof why, "exited with %d, expected %d", code, want_exit);
        } else if (WIFSIGNALED(status)) {
            int sig = WTERMSIG(status);
            if (sig == SIGALRM && timeout > 0)
                snprintf(why, sizeof why, "timed out after %gs", timeout);
            else if (sig != want_signal) {
                snprintf(why, sizeof why, "CRASH! killed by signal %d (%s)", sig, strsignal(sig));
                crashed = 1;
            }
        }
        if (why[0])
            verdict = why;
        if (verdict) {
            failing++;
            crashing += (unsigned)crashed;
            fprintf(stderr, "[FAIL] %s::%s: %s (%s:%u)\n", t->suite, t->name, verdict, t->file, t->line);
            if (o.fail_fast)
                break;
        } else {
            passing++;
            if (o.verbose)
                fprintf(stderr, "[PASS] %s::%s\n", t->suite, t->name);
        }
    }

    fprintf(stderr, "[====] Synthesis: Tested: %u | Passing: %u | Failing: %u | Crashing: %u\n",
            tested, passing, failing, crashing);
    if (skipped)
        fprintf(stderr, "[====] Skipped: %u\n", skipped);
    return (failing && !o.always_succeed) ? 1 : 0;
}
