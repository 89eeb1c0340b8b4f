/*
 * fixed.cpp - fixed-size object workloads: mpool's fixed pools against
 * Boost.Pool's object_pool, APR pools, talloc and malloc (whatever malloc the
 * process has: run it under LD_PRELOAD for each malloc peer).  bench/run.py
 * runs it (section "Fixed-size object pools"); each run prints one JSON line.
 *
 *   mpool_bench_fixed LIB WORKLOAD SIZE N [ROUNDS]
 *
 * LIB: mpool (a fixed pool, thread_safe = false), mpool-ts (thread safe),
 *      boost (boost::object_pool<obj>), apr (apr_palloc on a pool), talloc
 *      (talloc_size children of one context), malloc.
 * WORKLOAD (objects of SIZE bytes; the time is per object: ns_per_op is the
 * thread's CPU time, page faults included, since on a shared machine the
 * wall time also counts the time other processes held the core; the wall
 * time is printed too, as wall_ns_per_op):
 *   pair   N alloc+free pairs                               ns per pair
 *   batch  ROUNDS rounds of N allocations then N frees      ns per object (alloc + free)
 *          (mpool: mpool_fixed_alloc_batch / free_batch)
 *   build  N allocations (each written), then everything    ns per object
 *          freed at once (mpool: destroy; boost: the pool's
 *          destructor; apr: apr_pool_destroy; talloc: free the
 *          context; malloc: free each)
 *   build-each  N allocations (each written), then each     ns per object
 *          freed one by one (mpool, boost, talloc, malloc)
 *   pair-loop   (no timing) the alloc+free loop alone, for  instructions per pair
 *          /work/shared/tools/instr-per-op
 * A library that does not offer a workload (APR frees nothing one by one)
 * prints {"skip": ...} and exits 0.  Peers missing at build time are
 * reported the same way.
 */
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include <mpool.h>

#ifdef BENCH_HAVE_BOOST_POOL
#include <boost/pool/object_pool.hpp>
#endif
#ifdef BENCH_HAVE_APR
#include <apr_general.h>
#include <apr_pools.h>
#endif
#ifdef BENCH_HAVE_TALLOC
#include <talloc.h>
#endif

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0)
{
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/* The calling thread's CPU time in seconds (page faults included). */
double cpu_seconds()
{
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A measured interval: the thread's CPU time and the wall time. */
struct timer {
    clock_type::time_point t0 = clock_type::now();
    double c0 = cpu_seconds();
    double cpu() const { return cpu_seconds() - c0; }
    double wall() const { return seconds_since(t0); }
};

inline void keep(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

inline void touch(void *p, std::size_t i)
{
    static_cast<volatile unsigned char *>(p)[0] = static_cast<unsigned char>(i);
}

/* The objects of boost::object_pool, whose size is a template argument. */
template <std::size_t N>
struct obj {
    unsigned char bytes[N];
};

/* One library's operations on objects of one size.  alloc/free may throw
 * nothing; free_all ends the "build" workload. */
struct lib {
    virtual ~lib() = default;
    virtual void *alloc() = 0;
    virtual void free(void *p) = 0; /* one object */
    virtual bool frees_one() const { return true; }
    virtual void alloc_batch(void **out, std::size_t n)
    {
        for (std::size_t i = 0; i < n; i++)
            out[i] = alloc();
    }
    virtual void free_batch(void **objs, std::size_t n)
    {
        for (std::size_t i = 0; i < n; i++)
            free(objs[i]);
    }
    virtual void free_all(std::vector<void *> &objs) /* everything at once */
    {
        for (void *p : objs)
            free(p);
    }
};

struct mpool_lib final : lib {
    mpool_fixed_t *fp;
    std::size_t size;
    mpool_lib(std::size_t sz, bool ts) : size(sz)
    {
        mpool_fixed_config_t cfg = mpool_fixed_config_default(sz);
        cfg.thread_safe = ts;
        fp = mpool_fixed_create(&cfg);
        if (!fp) {
            std::fprintf(stderr, "mpool_fixed_create failed\n");
            std::exit(1);
        }
    }
    ~mpool_lib() override { mpool_fixed_destroy(fp); }
    void *alloc() override { return mpool_fixed_alloc(fp); }
    void free(void *p) override { mpool_fixed_free(fp, p); }
    void alloc_batch(void **out, std::size_t n) override { mpool_fixed_alloc_batch(fp, out, n); }
    void free_batch(void **objs, std::size_t n) override { mpool_fixed_free_batch(fp, objs, n); }
    void free_all(std::vector<void *> &) override
    {
        mpool_fixed_destroy(fp);
        fp = nullptr; /* the destructor's destroy does nothing */
    }
};

struct malloc_lib final : lib {
    std::size_t size;
    explicit malloc_lib(std::size_t sz) : size(sz) {}
    void *alloc() override { return std::malloc(size); }
    void free(void *p) override { std::free(p); }
};

#ifdef BENCH_HAVE_BOOST_POOL
template <std::size_t N>
struct boost_lib final : lib {
    boost::object_pool<obj<N>> *pool = new boost::object_pool<obj<N>>();
    ~boost_lib() override { delete pool; }
    void *alloc() override { return pool->malloc(); }
    void free(void *p) override { pool->free(static_cast<obj<N> *>(p)); }
    void free_all(std::vector<void *> &) override
    {
        delete pool; /* the object_pool's destructor releases every block */
        pool = nullptr;
    }
};
#endif

#ifdef BENCH_HAVE_APR
struct apr_lib final : lib {
    apr_pool_t *pool = nullptr;
    std::size_t size;
    explicit apr_lib(std::size_t sz) : size(sz)
    {
        apr_initialize();
        apr_pool_create(&pool, nullptr);
    }
    ~apr_lib() override
    {
        if (pool)
            apr_pool_destroy(pool);
        apr_terminate();
    }
    void *alloc() override { return apr_palloc(pool, size); }
    void free(void *) override {}
    bool frees_one() const override { return false; }
    void free_all(std::vector<void *> &) override
    {
        apr_pool_destroy(pool);
        pool = nullptr;
    }
};
#endif

#ifdef BENCH_HAVE_TALLOC
struct talloc_lib final : lib {
    void *ctx = talloc_new(nullptr);
    std::size_t size;
    explicit talloc_lib(std::size_t sz) : size(sz) {}
    ~talloc_lib() override { talloc_free(ctx); }
    void *alloc() override { return talloc_size(ctx, size); }
    void free(void *p) override { talloc_free(p); }
    void free_all(std::vector<void *> &) override
    {
        talloc_free(ctx);
        ctx = talloc_new(nullptr);
    }
};
#endif

#ifdef BENCH_HAVE_BOOST_POOL
lib *make_boost(std::size_t size)
{
    switch (size) {
    case 16: return new boost_lib<16>();
    case 32: return new boost_lib<32>();
    case 64: return new boost_lib<64>();
    case 128: return new boost_lib<128>();
    case 256: return new boost_lib<256>();
    default: return nullptr;
    }
}
#endif

lib *make_lib(const std::string &name, std::size_t size, std::string &why)
{
    if (name == "mpool")
        return new mpool_lib(size, false);
    if (name == "mpool-ts")
        return new mpool_lib(size, true);
    if (name == "malloc")
        return new malloc_lib(size);
    if (name == "boost") {
#ifdef BENCH_HAVE_BOOST_POOL
        lib *l = make_boost(size);
        if (!l)
            why = "boost: sizes 16, 32, 64, 128, 256 only";
        return l;
#else
        why = "Boost.Pool not found at build time (libboost-dev)";
        return nullptr;
#endif
    }
    if (name == "apr") {
#ifdef BENCH_HAVE_APR
        return new apr_lib(size);
#else
        why = "APR not found at build time (libapr1-dev)";
        return nullptr;
#endif
    }
    if (name == "talloc") {
#ifdef BENCH_HAVE_TALLOC
        return new talloc_lib(size);
#else
        why = "talloc not found at build time (libtalloc-dev)";
        return nullptr;
#endif
    }
    why = "unknown library " + name;
    return nullptr;
}

void result(const char *lib, const char *workload, std::size_t size, std::size_t n, const timer &t)
{
    std::printf("{\"workload\":\"fixed-%s\",\"lib\":\"%s\",\"size\":%zu,\"n\":%zu,\"ns_per_op\":%.3f,"
                "\"wall_ns_per_op\":%.3f}\n",
                workload, lib, size, n, t.cpu() * 1e9 / (double)n, t.wall() * 1e9 / (double)n);
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s LIB pair|batch|build|build-each|pair-loop SIZE N [ROUNDS]\n", argv[0]);
        return 2;
    }
    std::string name = argv[1], workload = argv[2];
    std::size_t size = std::strtoull(argv[3], nullptr, 10);
    std::size_t n = std::strtoull(argv[4], nullptr, 10);
    std::size_t rounds = argc > 5 ? std::strtoull(argv[5], nullptr, 10) : 1;
    std::string why;
    lib *l = make_lib(name, size, why);
    if (!l) {
        std::printf("{\"skip\":\"%s\"}\n", why.c_str());
        return 0;
    }
    if (!l->frees_one() && workload != "build") {
        std::printf("{\"skip\":\"%s frees no single object\"}\n", name.c_str());
        delete l;
        return 0;
    }
    if (workload == "pair-loop") { /* for instr-per-op: nothing but the loop */
        if (auto *m = dynamic_cast<mpool_lib *>(l)) { /* the C calls themselves, not through lib */
            for (std::size_t i = 0; i < n; i++) {
                void *p = mpool_fixed_alloc(m->fp);
                keep(p);
                mpool_fixed_free(m->fp, p);
            }
            delete l;
            return 0;
        }
        for (std::size_t i = 0; i < n; i++) {
            void *p = l->alloc();
            keep(p);
            l->free(p);
        }
        delete l;
        return 0;
    }
    timer t;
    std::size_t ops = n;
    if (workload == "pair") {
        for (std::size_t i = 0; i < 1000; i++) /* warm: the first chunk, the caches */
            l->free(l->alloc());
        t = timer();
        for (std::size_t i = 0; i < n; i++) {
            void *p = l->alloc();
            keep(p);
            l->free(p);
        }
        result(name.c_str(), workload.c_str(), size, ops, t);
    } else if (workload == "batch") {
        std::vector<void *> objs(n);
        l->alloc_batch(objs.data(), n); /* warm */
        l->free_batch(objs.data(), n);
        t = timer();
        for (std::size_t r = 0; r < rounds; r++) {
            l->alloc_batch(objs.data(), n);
            keep(objs[n - 1]);
            l->free_batch(objs.data(), n);
        }
        ops = n * rounds;
        result(name.c_str(), workload.c_str(), size, ops, t);
    } else if (workload == "build" || workload == "build-each") {
        std::vector<void *> objs(n);
        t = timer();
        for (std::size_t i = 0; i < n; i++) {
            objs[i] = l->alloc();
            touch(objs[i], i);
        }
        if (workload == "build")
            l->free_all(objs);
        else
            for (std::size_t i = 0; i < n; i++)
                l->free(objs[i]);
        result(name.c_str(), workload.c_str(), size, ops, t);
    } else {
        std::fprintf(stderr, "unknown workload %s\n", workload.c_str());
        delete l;
        return 2;
    }
    delete l;
    return 0;
}
