/*
 * callsite.c - call sites of debug mode (callsite.h).
 *
 * Capture.  From the debug layer, whose own frames are dropped by count
 * (its functions are noinline), with libunwind's unw_backtrace when the
 * system has libunwind.so.8, else glibc's backtrace() (execinfo.h).  Both
 * give the same addresses (frame 0 is the return address into the caller).
 * backtrace() walks each frame with libgcc_s's DWARF interpreter, about
 * 1,450 instructions a frame here; unw_backtrace keeps a per-thread cache
 * of each return address's frame layout and takes about 100 (callgrind, a
 * 16-frame stack; BENCHMARKS.md, "Debug mode: what it costs").  libunwind
 * is opened by callsite_prepare, never inside an allocation (the first one
 * of a process may come from the dynamic loader itself, where dlopen must
 * not be entered): the drop-in's constructor calls it for the default pool
 * and mpool_create for a debug pool; captures before that use backtrace().
 * libunwind's trace cache takes its memory from mmap, not malloc; what the
 * dynamic loader allocates to open it is mpool's own, not the program's
 * (callsite_own_allocation: the leak report leaves it out).  Under
 * Valgrind's memcheck it is not used (its probes of stack memory with
 * system calls are reported as errors there).  The
 * first backtrace of a process loads libgcc_s, which allocates: under the
 * malloc replacement that allocation comes back here, so a thread that is
 * already capturing captures nothing (a thread-local flag, initial-exec so
 * that reading it never calls the dynamic loader).
 *
 * The program's frame.  The frames of mpool itself (the debug layer, the
 * block functions, the malloc family of the replacement) are not call sites.
 * A frame is mpool's if it lies in the executable segments of the object
 * that holds this file when that object is a shared library (libmpool.so,
 * libmpool-malloc.so), or if its function's name is one of the library's
 * (mpool_*, alloc_*, free_*, the debug layer's entries, the malloc family,
 * operator new and delete).  A program linked statically with libmpool.a has mpool inside
 * its own object, and dladdr names only exported functions, so there the
 * names come from addr2line in reports at exit, and the one-line problem
 * reports show three frames instead of one.
 *
 * Names.  dladdr gives the object, and the function when it is exported;
 * addr2line (binutils), run as a child process with fork and execve (no
 * allocation: the malloc replacement may be the allocator being reported),
 * gives the function and the file and line from the object's debug
 * information.  Return addresses point after the call: a frame is looked up
 * at address - 1, the call instruction itself.
 */
#define _GNU_SOURCE
#include "callsite.h"
#include "sanitize.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CAPTURE_MAX 32      /* frames backtrace may return to one capture */
#define ADDR2LINE_BATCH 32  /* addresses per addr2line run */
#define ADDR2LINE_OUTPUT (64 << 10)

static _Thread_local bool capturing __attribute__((tls_model("initial-exec")));
static _Thread_local bool opening __attribute__((tls_model("initial-exec"))); /* callsite_prepare's dlopen */

bool callsite_own_allocation(void)
{
    return opening;
}

typedef int (*unwind_backtrace_fn)(void **frames, int size);
static unwind_backtrace_fn fast_backtrace; /* atomic: libunwind's unw_backtrace, once opened */

void callsite_prepare(bool fast)
{
    static bool tried;
    if (!fast || san_under_memcheck() || __atomic_exchange_n(&tried, true, __ATOMIC_ACQ_REL))
        return;
    capturing = opening = true; /* the loader's allocations are mpool's, with no call site */
    void *lib = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    capturing = opening = false;
    if (!lib)
        return;
    unwind_backtrace_fn fn;
    void *sym = dlsym(lib, "unw_backtrace");
    memcpy(&fn, &sym, sizeof fn);
    if (fn)
        __atomic_store_n(&fast_backtrace, fn, __ATOMIC_RELEASE);
}

size_t callsite_capture(void **out, size_t n, unsigned skip)
{
    memset(out, 0, n * sizeof *out);
    if (capturing)
        return 0;
    capturing = true;
    void *frames[CAPTURE_MAX];
    size_t want = n + skip + 1 < CAPTURE_MAX ? n + skip + 1 : CAPTURE_MAX;
    unwind_backtrace_fn fast = __atomic_load_n(&fast_backtrace, __ATOMIC_ACQUIRE);
    int got = fast ? fast(frames, (int)want) : backtrace(frames, (int)want);
    capturing = false;
    size_t k = 0;
    for (size_t i = skip + 1; i < (size_t)(got > 0 ? got : 0) && k < n; i++)
        out[k++] = frames[i];
    return k;
}

/* ---- mpool's frames ----------------------------------------------------- */

static struct {
    bool ready;       /* atomic: the fields below are set */
    bool shared;      /* this file is in a shared library, not the main program */
    uintptr_t lo, hi; /* its executable segments span [lo, hi) */
} self;

struct self_search {
    uintptr_t probe;
    unsigned index; /* objects visited; 0 is the main program */
};

static int self_visit(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct self_search *s = arg;
    unsigned index = s->index++;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    if (s->probe < lo || s->probe >= hi)
        return 0;
    self.lo = lo;
    self.hi = hi;
    self.shared = index != 0;
    return 1;
}

static void self_find(void)
{
    if (__atomic_load_n(&self.ready, __ATOMIC_ACQUIRE))
        return;
    struct self_search s = {(uintptr_t)&callsite_capture, 0};
    dl_iterate_phdr(self_visit, &s);
    __atomic_store_n(&self.ready, true, __ATOMIC_RELEASE);
}

static bool name_is_internal(const char *f)
{
    static const char *const prefixes[] = {"mpool_", "alloc_", "free_", "__libc_", "_Znw", "_Zna", "_Zdl",
                                           "_Zda", "operator new", "operator delete"};
    static const char *const names[] = {"malloc", "calloc", "realloc", "free", "reallocarray",
                                        "posix_memalign", "aligned_alloc", "memalign", "valloc",
                                        "pvalloc", "malloc_slow", "free_slow", "debug_alloc",
                                        "debug_realloc", "debug_free", "debug_release"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (strncmp(f, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t len = strlen(names[i]);
        if (strncmp(f, names[i], len) == 0 && (f[len] == '\0' || f[len] == '(' || f[len] == '.'))
            return true;
    }
    return false;
}

bool callsite_internal(const void *addr, const char *function)
{
    self_find();
    if (self.shared && (uintptr_t)addr >= self.lo && (uintptr_t)addr < self.hi)
        return true;
    return function && *function && name_is_internal(function);
}

/* ---- One line --------------------------------------------------------- */

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path ? path : "";
}

/* "name+0xoff (object)" or "object+0xoff" or the address; *named tells if
 * dladdr knew the function. */
static void frame_format(char *buf, size_t len, const void *addr, bool *named)
{
    Dl_info di;
    *named = false;
    if (!dladdr((const char *)addr - 1, &di) || !di.dli_fname) {
        snprintf(buf, len, "%p", addr);
        return;
    }
    if (di.dli_sname && di.dli_saddr) {
        *named = true;
        snprintf(buf, len, "%s+0x%zx (%s)", di.dli_sname, (size_t)((uintptr_t)addr - (uintptr_t)di.dli_saddr),
                 base_name(di.dli_fname));
    } else {
        const char *obj = base_name(di.dli_fname);
        snprintf(buf, len, "%s+0x%zx", *obj ? obj : "program", (size_t)((uintptr_t)addr - (uintptr_t)di.dli_fbase));
    }
}

void callsite_format(char *buf, size_t len, void *const *frames, size_t n)
{
    snprintf(buf, len, "unknown");
    size_t first = n;
    bool any_named = false;
    for (size_t i = 0; i < n && frames[i]; i++) {
        Dl_info di;
        const char *f = dladdr((const char *)frames[i] - 1, &di) ? di.dli_sname : NULL;
        any_named |= f != NULL;
        if (!callsite_internal(frames[i], f)) {
            first = i;
            break;
        }
    }
    if (first == n)
        return;
    size_t shown = any_named || self.shared ? 1 : 3, used = 0;
    for (size_t i = first; i < n && frames[i] && shown; i++, shown--) {
        char one[CALLSITE_TEXT];
        bool named;
        frame_format(one, sizeof one, frames[i], &named);
        int w = snprintf(buf + used, len - used, "%s%s", used ? " < " : "", one);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
}

/* ---- Names through addr2line ---------------------------------------------- */

/* The addr2line program on PATH, into path; false if there is none. */
static bool addr2line_path(char *path, size_t len)
{
    const char *dirs = getenv("PATH");
    if (!dirs || !*dirs)
        dirs = "/usr/bin:/bin";
    while (*dirs) {
        size_t n = strcspn(dirs, ":");
        if (n && n + sizeof "/addr2line" < len) {
            memcpy(path, dirs, n);
            memcpy(path + n, "/addr2line", sizeof "/addr2line");
            if (access(path, X_OK) == 0)
                return true;
        }
        dirs += n + (dirs[n] == ':');
    }
    return false;
}

/* Runs argv, returning its standard output in out (NUL-terminated, cut at
 * len - 1 bytes); false if it could not run. */
static bool run_capture(const char *path, char *const argv[], char *out, size_t len)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return false;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDERR_FILENO);
        /* The tool must not run under the replacement, nor write reports of its own. */
        extern char **environ;
        char *env[256];
        size_t k = 0;
        for (char **e = environ; e && *e && k < sizeof env / sizeof *env - 1; e++)
            if (strncmp(*e, "LD_PRELOAD=", 11) != 0 && strncmp(*e, "MPOOL_", 6) != 0)
                env[k++] = *e;
        env[k] = NULL;
        execve(path, argv, env);
        _exit(127);
    }
    close(fds[1]);
    size_t got = 0;
    for (;;) {
        char sink[512];
        char *dst = got < len - 1 ? out + got : sink;
        size_t room = got < len - 1 ? len - 1 - got : sizeof sink;
        ssize_t r = read(fds[0], dst, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (dst != sink)
            got += (size_t)r;
    }
    out[got] = '\0';
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* The next line of *text into buf; false at the end. */
static bool next_line(char **text, char *buf, size_t len)
{
    if (!**text)
        return false;
    size_t n = strcspn(*text, "\n");
    size_t c = n < len - 1 ? n : len - 1;
    memcpy(buf, *text, c);
    buf[c] = '\0';
    *text += n + ((*text)[n] == '\n');
    return true;
}

/* The file of the object that holds a frame, for addr2line. */
static void object_path(const Dl_info *di, char *path, size_t len)
{
    const char *name = di->dli_fname;
    if (name && strchr(name, '/') && access(name, R_OK) == 0) {
        snprintf(path, len, "%s", name);
        return;
    }
    ssize_t n = readlink("/proc/self/exe", path, len - 1); /* the main program */
    path[n > 0 ? n : 0] = '\0';
}

/* Names the frames idx[0..count) of names, which all lie in the object of di. */
static void name_batch(struct callsite_name *names, const size_t *idx, size_t count, const Dl_info *di,
                       const char *tool, char *output)
{
    char obj[512];
    object_path(di, obj, sizeof obj);
    const ElfW(Ehdr) *eh = di->dli_fbase;
    bool absolute = eh && eh->e_type == ET_EXEC;
    char addrs[ADDR2LINE_BATCH][24];
    char *argv[6 + ADDR2LINE_BATCH + 1];
    size_t a = 0;
    argv[a++] = (char *)"addr2line";
    argv[a++] = (char *)"-f";
    argv[a++] = (char *)"-C";
    argv[a++] = (char *)"-s";
    argv[a++] = (char *)"-e";
    argv[a++] = obj;
    for (size_t i = 0; i < count; i++) {
        uintptr_t at = (uintptr_t)names[idx[i]].addr - 1;
        if (!absolute)
            at -= (uintptr_t)di->dli_fbase;
        snprintf(addrs[i], sizeof addrs[i], "0x%zx", (size_t)at);
        argv[a++] = addrs[i];
    }
    argv[a] = NULL;
    if (!obj[0] || !run_capture(tool, argv, output, ADDR2LINE_OUTPUT))
        return;
    char *text = output;
    for (size_t i = 0; i < count; i++) {
        char fn[CALLSITE_TEXT], where[CALLSITE_TEXT];
        if (!next_line(&text, fn, sizeof fn) || !next_line(&text, where, sizeof where))
            break;
        struct callsite_name *nm = &names[idx[i]];
        if (strcmp(fn, "??") != 0)
            snprintf(nm->function, sizeof nm->function, "%s", fn);
        char *disc = strstr(where, " (discriminator");
        if (disc)
            *disc = '\0';
        if (where[0] != '?' && !strstr(where, ":0") && !strstr(where, ":?"))
            snprintf(nm->where, sizeof nm->where, "%s", where);
    }
}

void callsite_name_all(struct callsite_name *names, size_t n)
{
    /* First what dladdr knows, for every frame. */
    for (size_t i = 0; i < n; i++) {
        struct callsite_name *nm = &names[i];
        nm->function[0] = nm->where[0] = '\0';
        Dl_info di;
        nm->object = NULL;
        if (dladdr((const char *)nm->addr - 1, &di) && di.dli_fname) {
            nm->object = di.dli_fbase;
            if (di.dli_sname)
                snprintf(nm->function, sizeof nm->function, "%s", di.dli_sname);
            const char *obj = base_name(di.dli_fname);
            snprintf(nm->where, sizeof nm->where, "%s+0x%zx", *obj ? obj : "program",
                     (size_t)((uintptr_t)nm->addr - (uintptr_t)di.dli_fbase));
        } else {
            snprintf(nm->where, sizeof nm->where, "%p", nm->addr);
        }
    }
    /* Then addr2line, per object, in batches. */
    char tool[512];
    static char output[ADDR2LINE_OUTPUT];
    static int output_lock; /* a report at a time uses the buffer */
    if (addr2line_path(tool, sizeof tool) && !__atomic_exchange_n(&output_lock, 1, __ATOMIC_ACQUIRE)) {
        for (size_t i = 0; i < n; i++) {
            const void *obj = names[i].object;
            bool done = obj == NULL;
            for (size_t j = 0; j < i && !done; j++) /* an earlier frame of the same object did it */
                done = names[j].object == obj;
            if (done)
                continue;
            Dl_info di;
            if (!dladdr((const char *)names[i].addr - 1, &di) || !di.dli_fname)
                continue;
            size_t idx[ADDR2LINE_BATCH], count = 0;
            for (size_t j = i; j < n; j++) {
                if (names[j].object != obj)
                    continue;
                idx[count++] = j;
                if (count == ADDR2LINE_BATCH) {
                    name_batch(names, idx, count, &di, tool, output);
                    count = 0;
                }
            }
            if (count)
                name_batch(names, idx, count, &di, tool, output);
        }
        __atomic_store_n(&output_lock, 0, __ATOMIC_RELEASE);
    }
    for (size_t i = 0; i < n; i++)
        names[i].internal = callsite_internal(names[i].addr, names[i].function);
}
