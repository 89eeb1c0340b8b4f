/*
 * test_cpp.cpp - the C++ header mpool.hpp: mpool::pool (RAII, moves, errors),
 * mpool::allocator<T> with the standard containers, mpool::memory_resource
 * with the std::pmr containers, and the statistics, health and reports of
 * mpool::pool.  Every container test shows that the memory
 * came from the pool: buffers are live blocks of the pool (mpool_owns), the
 * pool's used bytes grow while the container holds elements and fall back to
 * 0 once it is gone, and a tracking allocator checks every block allocated.
 *
 * Only plain cr_assert* macros and try/catch are used (no cr_assert_throw),
 * so the file also runs under the Criterion-compatible shim.
 */
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <list>
#include <map>
#include <memory_resource>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <mpool.hpp>

/* Last: the Criterion-compatible shim (TSan builds) defines function-like
 * macros such as eq, lt and zero that would break standard headers after it. */
#include <criterion/criterion.h>

namespace {

constexpr std::size_t KiB = std::size_t(1) << 10;
constexpr std::size_t MiB = std::size_t(1) << 20;

bool aligned_to(const void *p, std::size_t alignment)
{
    return (reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) == 0;
}

std::size_t used(const mpool_t *p)
{
    return mpool_get_usage(p).used;
}

/* An allocator on top of mpool::allocator<T> that checks every block it gets
 * is a live block of the pool and counts the blocks and bytes outstanding. */
struct tally {
    std::size_t live_blocks = 0;
    std::size_t live_bytes = 0;
    std::size_t total_blocks = 0;
    std::size_t foreign_blocks = 0; /* blocks mpool_owns denied */
};

template <class T>
struct tracking_allocator {
    using value_type = T;
    using propagate_on_container_copy_assignment = std::true_type;
    using propagate_on_container_move_assignment = std::true_type;
    using propagate_on_container_swap = std::true_type;
    using is_always_equal = std::false_type;

    mpool::allocator<T> base;
    tally *t;

    tracking_allocator(mpool::pool &p, tally *tl) : base(p), t(tl) {}
    template <class U>
    tracking_allocator(const tracking_allocator<U> &o) noexcept : base(o.base), t(o.t)
    {
    }

    T *allocate(std::size_t n)
    {
        T *p = base.allocate(n);
        if (!mpool_owns(base.get(), p))
            t->foreign_blocks++;
        t->live_blocks++;
        t->total_blocks++;
        t->live_bytes += n * sizeof(T);
        return p;
    }
    void deallocate(T *p, std::size_t n) noexcept
    {
        if (!mpool_owns(base.get(), p))
            t->foreign_blocks++;
        t->live_blocks--;
        t->live_bytes -= n * sizeof(T);
        base.deallocate(p, n);
    }
};

template <class T, class U>
bool operator==(const tracking_allocator<T> &a, const tracking_allocator<U> &b)
{
    return a.base == b.base && a.t == b.t;
}
template <class T, class U>
bool operator!=(const tracking_allocator<T> &a, const tracking_allocator<U> &b)
{
    return !(a == b);
}

template <class T>
using pvector = std::vector<T, mpool::allocator<T>>;

using pstring = std::basic_string<char, std::char_traits<char>, mpool::allocator<char>>;

struct alignas(64) over_aligned {
    unsigned char bytes[64];
};

struct alignas(256) very_aligned {
    double d[3];
};

} // namespace

/* ---- mpool::pool ----------------------------------------------------------- */

Test(cpp_pool, create_allocate_deallocate)
{
    mpool::pool p;
    cr_assert_not_null(p.get());
    cr_assert(static_cast<bool>(p));
    cr_assert_neq(p.get(), mpool::default_pool());
    cr_assert_eq(p.alignment(), mpool::default_alignment);
    cr_assert_eq(p.usage().used, 0);

    void *a = p.allocate(100);
    cr_assert_not_null(a);
    cr_assert(p.owns(a));
    cr_assert(mpool_owns(p.get(), a));
    cr_assert(aligned_to(a, alignof(std::max_align_t)));
    std::memset(a, 0x5A, 100);
    cr_assert_geq(p.usage().used, 100);

    void *b = p.allocate(1000, 4096);
    cr_assert(aligned_to(b, 4096), "allocate(1000, 4096) gave %p", b);
    cr_assert(p.owns(b));

    p.deallocate(a);
    p.deallocate(b);
    p.deallocate(nullptr); /* does nothing */
    cr_assert_not(p.owns(a));
    cr_assert_eq(p.usage().used, 0);
    cr_assert_eq(p.check(), 0);
}

Test(cpp_pool, config_constructor_and_alignment)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.alignment = 64;
    cfg.thread_safe = false;
    mpool::pool p(cfg);
    cr_assert_eq(p.alignment(), 64);
    for (int i = 0; i < 50; i++) {
        void *q = p.allocate(static_cast<std::size_t>(i) * 7 + 1);
        cr_assert(aligned_to(q, 64));
        p.deallocate(q);
    }
    void *big = p.allocate(3 * MiB, 8192);
    cr_assert(aligned_to(big, 8192));
    cr_assert(p.owns(big));
    p.deallocate(big);
    cr_assert_eq(p.usage().used, 0);
    cr_assert_eq(p.check(), 0);
}

Test(cpp_pool, bad_config_throws_invalid_argument)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.growth_factor = 0.5;
    bool caught = false;
    try {
        mpool::pool p(cfg);
        (void)p;
    } catch (const std::invalid_argument &e) {
        caught = true;
        cr_assert_not_null(std::strstr(e.what(), mpool_strerror(MPOOL_ERR_INVALID_ARGUMENT)),
                           "what() = '%s'", e.what());
    }
    cr_assert(caught, "a growth_factor of 0.5 did not throw std::invalid_argument");

    cfg = mpool_config_default();
    cfg.alignment = 24; /* not a power of two */
    caught = false;
    try {
        mpool::pool p(cfg);
    } catch (const std::invalid_argument &) {
        caught = true;
    }
    cr_assert(caught, "alignment 24 did not throw std::invalid_argument");
}

Test(cpp_pool, allocate_failure_throws_bad_alloc_and_pool_survives)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.max_size = 1 * MiB;
    mpool::pool p(cfg);
    bool caught = false;
    try {
        (void)p.allocate(100 * MiB);
    } catch (const std::bad_alloc &) {
        caught = true;
    }
    cr_assert(caught);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL);

    caught = false;
    try {
        (void)p.allocate(16, 3); /* 3 is not a power of two, but is below the base: fine */
        (void)p.allocate(16, 48); /* not a power of two above the base: refused */
    } catch (const std::bad_alloc &) {
        caught = true;
    }
    cr_assert(caught);

    void *q = p.allocate(1000);
    cr_assert(p.owns(q));
    p.deallocate(q);
    cr_assert_eq(p.check(), 0);
}

Test(cpp_pool, move_construct_and_assign)
{
    mpool::pool a;
    mpool_t *raw = a.get();
    void *blk = a.allocate(64);

    mpool::pool b(std::move(a));
    cr_assert_null(a.get());
    cr_assert_not(static_cast<bool>(a));
    cr_assert_eq(b.get(), raw);
    cr_assert(b.owns(blk));
    cr_assert_not(a.owns(blk));

    /* The moved-from pool is empty and never falls back to the default pool. */
    cr_assert_eq(a.usage().used, 0);
    cr_assert_eq(a.usage().total, 0);
    cr_assert_eq(a.check(), 0);
    a.reset();
    a.deallocate(nullptr);
    bool caught = false;
    try {
        (void)a.allocate(8);
    } catch (const std::bad_alloc &) {
        caught = true;
    }
    cr_assert(caught, "allocate on a moved-from pool did not throw");
    cr_assert(b.owns(blk), "an operation on the moved-from pool touched the live one");

    /* Move assignment destroys the target's old pool and takes the source's. */
    mpool::pool c;
    void *cblk = c.allocate(32);
    c = std::move(b);
    cr_assert_null(b.get());
    cr_assert_eq(c.get(), raw);
    cr_assert(c.owns(blk));
    cr_assert_not(mpool_owns(nullptr, cblk), "c's old pool was not destroyed");
    cr_assert_eq(c.check(), 0);

    /* Self-move leaves it intact. */
    mpool::pool &cref = c;
    c = std::move(cref);
    cr_assert_eq(c.get(), raw);

    /* Assigning into a moved-from pool works, and the pool keeps working. */
    a = std::move(c);
    cr_assert_eq(a.get(), raw);
    void *more = a.allocate(5000);
    cr_assert(a.owns(more));
    a.deallocate(more);
    a.deallocate(blk);
    cr_assert_eq(a.usage().used, 0);
    cr_assert_eq(mpool_check(a.get()), 0);

    swap(a, c);
    cr_assert_null(a.get());
    cr_assert_eq(c.get(), raw);
    cr_assert_eq(mpool_check(c.get()), 0);
    /* a, b: empty; c: destroys raw once. */
}

Test(cpp_pool, release_and_reset)
{
    mpool::pool p;
    void *q = p.allocate(128);
    mpool_t *raw = p.release();
    cr_assert_null(p.get());
    cr_assert(mpool_owns(raw, q));
    mpool_destroy(raw);

    mpool::pool r;
    for (int i = 0; i < 100; i++)
        (void)r.allocate(static_cast<std::size_t>(i) * 100 + 1);
    void *huge = r.allocate(4 * MiB);
    cr_assert_gt(r.usage().used, 4 * MiB);
    r.reset();
    cr_assert_eq(r.usage().used, 0);
    cr_assert_not(r.owns(huge));
    void *again = r.allocate(64);
    cr_assert(r.owns(again));
    cr_assert_eq(r.check(), 0);
}

/* ---- Statistics, health and reports ----------------------------------------- */

namespace {

/* The report's pieces as they come: how many, how many bytes. */
struct piece_count {
    std::size_t pieces = 0;
    std::size_t bytes = 0;
};

void count_piece(const char *text, std::size_t len, void *arg)
{
    auto *c = static_cast<piece_count *>(arg);
    cr_assert_not_null(text);
    c->pieces++;
    c->bytes += len;
}

/* text without blanks at both ends. */
std::string trimmed(const std::string &text)
{
    std::size_t a = text.find_first_not_of(" \t\r\n");
    std::size_t b = text.find_last_not_of(" \t\r\n");
    return a == std::string::npos ? std::string() : text.substr(a, b - a + 1);
}

} // namespace

Test(cpp_stats, stats_count_blocks_and_reset_stats_keeps_them)
{
    mpool::pool p;
    std::vector<void *> blocks;
    for (int i = 0; i < 10; i++)
        blocks.push_back(p.allocate(100));
    mpool_stats_t s = p.stats();
    cr_assert(s.statistics_enabled);
    cr_assert_eq(s.allocations, 10);
    cr_assert_eq(s.frees, 0);
    cr_assert_eq(s.live_blocks, 10);
    cr_assert_geq(s.used_bytes, 10 * 100);
    cr_assert_geq(s.total_bytes, s.used_bytes);
    cr_assert_geq(s.peak_used_bytes, s.used_bytes);
    cr_assert_eq(s.requested_bytes, 10 * 100);

    for (int i = 0; i < 4; i++)
        p.deallocate(blocks[static_cast<std::size_t>(i)]);
    s = p.stats();
    cr_assert_eq(s.frees, 4);
    cr_assert_eq(s.live_blocks, 6);

    p.reset_stats();
    s = p.stats();
    cr_assert_eq(s.allocations, 0);
    cr_assert_eq(s.frees, 0);
    cr_assert_eq(s.live_blocks, 6); /* a figure of the pool, not a counter */
    cr_assert_geq(s.peak_used_bytes, s.used_bytes);
    for (std::size_t i = 4; i < blocks.size(); i++)
        p.deallocate(blocks[i]);
    cr_assert_eq(p.stats().live_blocks, 0);
}

Test(cpp_stats, health_of_a_quiet_pool_and_of_a_full_one)
{
    mpool::pool p;
    p.deallocate(p.allocate(1000));
    mpool_health_t h = p.health();
    cr_assert_eq(h.status, MPOOL_HEALTHY, "%s", h.message);
    cr_assert_str_eq(mpool_health_name(h.status), "HEALTHY");

    /* Filled until it refuses: usage near the cap, and failed calls. */
    mpool_config_t cfg = mpool_config_default();
    cfg.max_size = 1 * MiB;
    mpool::pool full(cfg);
    std::size_t failures = 0;
    for (int i = 0; i < 64 && failures < 4; i++) {
        try {
            (void)full.allocate(32 * KiB);
        } catch (const std::bad_alloc &) {
            failures++;
        }
    }
    cr_assert_gt(failures, 0);
    h = full.health();
    cr_assert_neq(h.status, MPOOL_HEALTHY, "a pool that refuses calls is healthy: %s", h.message);
    cr_assert_neq(h.message[0], '\0');
    cr_assert_gt(h.error_rate + h.usage, 0.0);
}

Test(cpp_stats, report_through_a_callback_and_as_a_string)
{
    mpool::pool p;
    std::vector<void *> blocks;
    for (std::size_t i = 1; i <= 200; i++)
        blocks.push_back(p.allocate(i * 24));
    mpool_stats_t before = p.stats();

    std::string text = p.report_string(MPOOL_REPORT_TEXT);
    cr_assert_gt(text.size(), 100);
    cr_assert_neq(text.find(mpool_health_name(p.health().status)), std::string::npos, "%s", text.c_str());

    std::string json = trimmed(p.report_string(MPOOL_REPORT_JSON));
    cr_assert_gt(json.size(), 2);
    cr_assert_eq(json.front(), '{');
    cr_assert_eq(json.back(), '}');
    cr_assert_neq(json.find("\"total_bytes\""), std::string::npos, "%s", json.c_str());

    piece_count c;
    cr_assert(p.report(MPOOL_REPORT_JSON, count_piece, &c));
    cr_assert_gt(c.pieces, 0);
    cr_assert_gt(c.bytes, 2);

    /* Reporting took nothing from the pool. */
    mpool_stats_t after = p.stats();
    cr_assert_eq(after.allocations, before.allocations);
    cr_assert_eq(after.live_blocks, before.live_blocks);
    cr_assert_eq(after.used_bytes, before.used_bytes);
    for (void *b : blocks)
        p.deallocate(b);
}

Test(cpp_stats, a_pool_that_owns_nothing)
{
    mpool::pool p;
    mpool::pool q(std::move(p));
    cr_assert_null(p.get());
    mpool_stats_t s = p.stats();
    cr_assert_eq(s.total_bytes, 0);
    cr_assert_eq(s.allocations, 0);
    cr_assert_eq(s.class_count, 0);
    p.reset_stats();
    mpool_health_t h = p.health();
    cr_assert_eq(h.status, MPOOL_HEALTHY);
    cr_assert_eq(h.message[0], '\0');
    piece_count c;
    cr_assert_not(p.report(MPOOL_REPORT_TEXT, count_piece, &c));
    cr_assert_eq(c.pieces, 0);
    cr_assert(p.report_string(MPOOL_REPORT_JSON).empty());
    cr_assert_gt(q.stats().total_bytes, 0); /* the pool went to q */
}

/* ---- mpool::allocator -------------------------------------------------------- */

Test(cpp_allocator, equality_and_rebind)
{
    mpool::pool p1, p2;
    mpool::allocator<int> a1(p1), a1b(p1.get()), a2(p2);
    cr_assert(a1 == a1b);
    cr_assert_not(a1 != a1b);
    cr_assert(a1 != a2);
    cr_assert_not(a1 == a2);

    mpool::allocator<double> d1(a1);
    cr_assert_eq(d1.get(), p1.get());
    cr_assert(d1 == a1);
    cr_assert(d1 != a2);

    using rebound = std::allocator_traits<mpool::allocator<int>>::rebind_alloc<std::string>;
    static_assert(std::is_same_v<rebound, mpool::allocator<std::string>>);
    rebound r(a2);
    cr_assert_eq(r.get(), p2.get());
    cr_assert(r == a2);

    mpool::allocator<int> copy = a1;
    cr_assert(copy == a1);
    copy = a2;
    cr_assert(copy == a2);

    using traits = std::allocator_traits<mpool::allocator<int>>;
    static_assert(traits::propagate_on_container_move_assignment::value);
    static_assert(traits::propagate_on_container_copy_assignment::value);
    static_assert(traits::propagate_on_container_swap::value);
    static_assert(!traits::is_always_equal::value);

    /* nullptr and default construction both mean the default pool. */
    mpool::allocator<int> def, fromnull(nullptr), fromdef(mpool::default_pool());
    cr_assert(def == fromnull);
    cr_assert(def == fromdef);
    cr_assert(def != a1);
    cr_assert_eq(def.get(), mpool_default());

    /* An empty pool cannot back an allocator. */
    mpool::pool gone(std::move(p1));
    bool caught = false;
    try {
        mpool::allocator<int> bad(p1);
        (void)bad;
    } catch (const std::invalid_argument &) {
        caught = true;
    }
    cr_assert(caught);
}

Test(cpp_allocator, vector_memory_comes_from_pool)
{
    mpool::pool p;
    {
        pvector<int> v(p);
        for (int i = 0; i < 10000; i++)
            v.push_back(i);
        cr_assert(mpool_owns(p.get(), v.data()));
        cr_assert_geq(used(p.get()), v.capacity() * sizeof(int));
        for (int i = 0; i < 10000; i++)
            cr_assert_eq(v[static_cast<std::size_t>(i)], i);

        pvector<int> w = v; /* the copy uses the same pool */
        cr_assert(w.get_allocator() == v.get_allocator());
        cr_assert(mpool_owns(p.get(), w.data()));
        cr_assert_neq(w.data(), v.data());
        cr_assert_geq(used(p.get()), 2 * 10000 * sizeof(int));

        v.clear();
        v.shrink_to_fit();
        cr_assert_eq(v.capacity(), 0);
    }
    cr_assert_eq(used(p.get()), 0);
    cr_assert_eq(p.check(), 0);
}

Test(cpp_allocator, container_move_assignment_propagates_allocator)
{
    mpool::pool p1, p2;
    pvector<int> a(100, 7, mpool::allocator<int>(p1));
    pvector<int> b(5, 1, mpool::allocator<int>(p2));
    const int *data = a.data();
    b = std::move(a); /* POCMA: b takes a's allocator and buffer */
    cr_assert(b.get_allocator() == mpool::allocator<int>(p1));
    cr_assert_eq(b.data(), data);
    cr_assert(mpool_owns(p1.get(), b.data()));
    cr_assert_eq(used(p2.get()), 0, "b's old buffer was not freed into p2");

    pvector<int> c(3, 2, mpool::allocator<int>(p2));
    c = b; /* POCCA: c takes b's allocator */
    cr_assert(c.get_allocator() == b.get_allocator());
    cr_assert(mpool_owns(p1.get(), c.data()));
    cr_assert_eq(used(p2.get()), 0);

    pvector<int> d(4, 3, mpool::allocator<int>(p2));
    d.swap(c); /* POCS */
    cr_assert(mpool_owns(p2.get(), c.data()));
    cr_assert(mpool_owns(p1.get(), d.data()));
    cr_assert(c.get_allocator() == mpool::allocator<int>(p2));
}

Test(cpp_allocator, list_nodes_come_from_pool)
{
    mpool::pool p;
    tally t;
    const std::size_t n = 5000;
    {
        std::list<long, tracking_allocator<long>> l(tracking_allocator<long>(p, &t));
        for (std::size_t i = 0; i < n; i++)
            l.push_back(static_cast<long>(i));
        cr_assert_eq(t.live_blocks, n);
        cr_assert_eq(t.foreign_blocks, 0);
        /* A node: two links and the value. */
        cr_assert_geq(used(p.get()), n * (2 * sizeof(void *) + sizeof(long)));
        cr_assert_geq(used(p.get()), t.live_bytes);
        long sum = 0;
        for (long x : l)
            sum += x;
        cr_assert_eq(sum, static_cast<long>(n * (n - 1) / 2));
        l.sort([](long a, long b) { return a > b; });
        cr_assert_eq(l.front(), static_cast<long>(n - 1));
    }
    cr_assert_eq(t.live_blocks, 0);
    cr_assert_eq(t.foreign_blocks, 0);
    cr_assert_eq(used(p.get()), 0);

    /* Plain mpool::allocator: usage grows and falls back. */
    {
        std::list<int, mpool::allocator<int>> l(p);
        for (int i = 0; i < 1000; i++)
            l.push_front(i);
        cr_assert_geq(used(p.get()), 1000 * (2 * sizeof(void *) + sizeof(int)));
    }
    cr_assert_eq(used(p.get()), 0);
    cr_assert_eq(p.check(), 0);
}

Test(cpp_allocator, map_nodes_come_from_pool)
{
    mpool::pool p;
    tally t;
    const int n = 4000;
    {
        using A = tracking_allocator<std::pair<const int, pstring>>;
        std::map<int, pstring, std::less<int>, A> m{A(p, &t)};
        mpool::allocator<char> ca(p);
        for (int i = 0; i < n; i++)
            m.emplace(i, pstring("value number " + std::to_string(i) + " padded past SSO", ca));
        cr_assert_eq(t.live_blocks, static_cast<std::size_t>(n));
        cr_assert_eq(t.foreign_blocks, 0);
        /* A node: three links, a colour and the pair. */
        cr_assert_geq(used(p.get()), static_cast<std::size_t>(n) *
                                         (3 * sizeof(void *) + sizeof(std::pair<const int, pstring>)));
        for (const auto &kv : m)
            cr_assert(mpool_owns(p.get(), kv.second.data()), "string of key %d not in the pool",
                      kv.first);
        cr_assert_eq(m.at(1234), pstring("value number 1234 padded past SSO", ca));
        m.erase(m.begin(), m.find(n / 2));
        cr_assert_eq(t.live_blocks, static_cast<std::size_t>(n / 2));
    }
    cr_assert_eq(t.live_blocks, 0);
    cr_assert_eq(used(p.get()), 0);
    cr_assert_eq(p.check(), 0);
}

Test(cpp_allocator, unordered_map_nodes_and_buckets_come_from_pool)
{
    mpool::pool p;
    tally t;
    const std::size_t n = 20000;
    {
        using A = tracking_allocator<std::pair<const std::size_t, double>>;
        std::unordered_map<std::size_t, double, std::hash<std::size_t>, std::equal_to<std::size_t>, A>
            m(16, std::hash<std::size_t>(), std::equal_to<std::size_t>(), A(p, &t));
        for (std::size_t i = 0; i < n; i++)
            m[i * 7919] = static_cast<double>(i) / 2;
        cr_assert_geq(t.live_blocks, n, "nodes and the bucket array");
        cr_assert_eq(t.foreign_blocks, 0);
        cr_assert_geq(used(p.get()), n * (sizeof(void *) + sizeof(std::pair<const std::size_t, double>)) +
                                         m.bucket_count() * sizeof(void *));
        cr_assert(m.at(5 * 7919) == 2.5);
        m.rehash(4 * m.bucket_count());
        cr_assert_eq(t.foreign_blocks, 0);
    }
    cr_assert_eq(t.live_blocks, 0);
    cr_assert_eq(t.live_bytes, 0);
    cr_assert_eq(used(p.get()), 0);

    {
        std::unordered_map<int, int, std::hash<int>, std::equal_to<int>,
                           mpool::allocator<std::pair<const int, int>>>
            m(8, std::hash<int>(), std::equal_to<int>(), mpool::allocator<std::pair<const int, int>>(p));
        for (int i = 0; i < 1000; i++)
            m.emplace(i, -i);
        cr_assert_gt(used(p.get()), 1000 * sizeof(std::pair<const int, int>));
    }
    cr_assert_eq(used(p.get()), 0);
    cr_assert_eq(p.check(), 0);
}

Test(cpp_allocator, basic_string_buffer_comes_from_pool)
{
    mpool::pool p;
    {
        pstring s(p);
        for (int i = 0; i < 1000; i++)
            s += "abcdefghij";
        cr_assert_eq(s.size(), 10000);
        cr_assert(mpool_owns(p.get(), s.data()));
        cr_assert_geq(used(p.get()), s.capacity());
        pstring t = s + s;
        cr_assert(mpool_owns(p.get(), t.data()));
        cr_assert_eq(t.size(), 20000);
        cr_assert_eq(std::memcmp(t.data() + 10000, s.data(), s.size()), 0);
        t.resize(5);
        t.shrink_to_fit();
        cr_assert_str_eq(t.c_str(), "abcde");
    }
    cr_assert_eq(used(p.get()), 0);
    cr_assert_eq(p.check(), 0);
}

Test(cpp_allocator, over_aligned_type)
{
    static_assert(alignof(over_aligned) == 64);
    mpool::pool p;
    {
        std::vector<over_aligned, mpool::allocator<over_aligned>> v(p);
        for (std::size_t i = 0; i < 3000; i++) {
            v.emplace_back();
            std::memset(v.back().bytes, static_cast<int>(i & 0xFF), sizeof v.back().bytes);
            cr_assert(aligned_to(v.data(), 64), "vector of %zu at %p", v.size(), (void *)v.data());
            cr_assert(mpool_owns(p.get(), v.data()));
        }
        std::vector<very_aligned, mpool::allocator<very_aligned>> w(p);
        for (std::size_t n = 1; n < 5000; n = n * 3 + 1) {
            w.resize(n);
            cr_assert(aligned_to(w.data(), 256), "%zu elements at %p", n, (void *)w.data());
        }
        /* Single objects through the allocator too. */
        mpool::allocator<over_aligned> a(p);
        for (int i = 0; i < 100; i++) {
            over_aligned *o = a.allocate(1);
            cr_assert(aligned_to(o, 64));
            a.deallocate(o, 1);
        }
    }
    cr_assert_eq(used(p.get()), 0);
    cr_assert_eq(p.check(), 0);
}

Test(cpp_allocator, throws_bad_alloc_when_pool_full_and_pool_survives)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.max_size = 1 * MiB;
    mpool::pool p(cfg);
    pvector<char> v(p);
    v.push_back('x');
    bool caught = false;
    try {
        v.reserve(100 * MiB);
    } catch (const std::bad_alloc &) {
        caught = true;
    }
    cr_assert(caught, "reserve(100 MiB) on a 1 MiB pool did not throw std::bad_alloc");
    cr_assert_eq(v.size(), 1);
    cr_assert_eq(v[0], 'x');

    caught = false;
    try {
        pvector<int> big(25 * MiB, 0, mpool::allocator<int>(p));
    } catch (const std::bad_alloc &) {
        caught = true;
    }
    cr_assert(caught);

    /* Still usable afterwards. */
    for (int i = 0; i < 100000; i++)
        v.push_back(static_cast<char>(i));
    cr_assert(mpool_owns(p.get(), v.data()));
    cr_assert_eq(p.check(), 0);
}

Test(cpp_allocator, overflow_throws_bad_array_new_length)
{
    mpool::pool p;
    mpool::allocator<std::uint64_t> a(p);
    bool caught = false;
    try {
        (void)a.allocate(a.max_size() + 1);
    } catch (const std::bad_array_new_length &) {
        caught = true;
    }
    cr_assert(caught);
    caught = false;
    try {
        (void)a.allocate(a.max_size()); /* no overflow, but far too large */
    } catch (const std::bad_alloc &) {
        caught = true;
    }
    cr_assert(caught);
    cr_assert_eq(p.check(), 0);
}

Test(cpp_allocator, deallocate_nullptr_is_safe)
{
    mpool::pool p;
    mpool_error_t before = mpool_last_error();
    mpool::allocator<int> a(p);
    a.deallocate(nullptr, 0);
    a.deallocate(nullptr, 10);
    mpool::allocator<int>().deallocate(nullptr, 1);
    p.deallocate(nullptr);
    /* (std::pmr::memory_resource::deallocate is declared nonnull by libstdc++,
     * so nullptr is not passed to it.) */
    cr_assert_eq(mpool_last_error(), before, "freeing nullptr reported an error");
    cr_assert_eq(p.check(), 0);
}

Test(cpp_allocator, default_pool_allocator)
{
    std::size_t before = used(mpool_default());
    {
        pvector<int> v; /* default-constructed allocator: the default pool */
        cr_assert_eq(v.get_allocator().get(), mpool_default());
        for (int i = 0; i < 50000; i++)
            v.push_back(i);
        cr_assert(mpool_owns(mpool_default(), v.data()));
        cr_assert(mpool_owns(nullptr, v.data()));
        cr_assert_geq(used(mpool_default()), before + v.capacity() * sizeof(int));

        std::map<int, int, std::less<int>, mpool::allocator<std::pair<const int, int>>> m;
        for (int i = 0; i < 100; i++)
            m[i] = i;
        cr_assert_eq(m.size(), 100);
        pstring s(300, 'q');
        cr_assert(mpool_owns(mpool_default(), s.data()));
    }
    cr_assert_eq(used(mpool_default()), before);
    cr_assert_eq(mpool_check(mpool_default()), 0);
}

/* ---- mpool::memory_resource ---------------------------------------------------- */

Test(cpp_resource, honours_alignment)
{
    mpool::pool p;
    mpool::memory_resource r(p);
    std::vector<void *> blocks;
    std::vector<std::pair<std::size_t, std::size_t>> shapes;
    const std::size_t sizes[] = {1, 24, 100, 4096, 70000, 2 * MiB};
    for (std::size_t align = 1; align <= 4096; align *= 2) {
        for (std::size_t size : sizes) {
            void *q = r.allocate(size, align);
            cr_assert(aligned_to(q, align), "allocate(%zu, %zu) = %p", size, align, q);
            cr_assert(mpool_owns(p.get(), q), "allocate(%zu, %zu) = %p not in the pool", size, align, q);
            cr_assert_geq(mpool_usable_size(p.get(), q), size);
            std::memset(q, 0xA5, size);
            blocks.push_back(q);
            shapes.emplace_back(size, align);
        }
    }
    cr_assert_gt(used(p.get()), 0);
    for (std::size_t i = 0; i < blocks.size(); i++)
        r.deallocate(blocks[i], shapes[i].first, shapes[i].second);
    cr_assert_eq(used(p.get()), 0);
    cr_assert_eq(p.check(), 0);
    /* (An alignment that is not a power of two breaks the precondition of
     * std::pmr::memory_resource::allocate, so it is not tried here.) */
}

Test(cpp_resource, is_equal)
{
    mpool::pool p1, p2;
    mpool::memory_resource a(p1), a2(p1.get()), b(p2), d, d2(nullptr);
    cr_assert(a.is_equal(a));
    cr_assert(a.is_equal(a2));
    cr_assert(a == a2);
    cr_assert_not(a.is_equal(b));
    cr_assert(a != b);
    cr_assert(d.is_equal(d2));
    cr_assert_eq(d.get(), mpool_default());
    cr_assert_not(d.is_equal(a));
    cr_assert_not(a.is_equal(*std::pmr::new_delete_resource()));
    cr_assert_not(std::pmr::new_delete_resource()->is_equal(a));
    std::pmr::monotonic_buffer_resource mono(&a);
    cr_assert_not(a.is_equal(mono));

    /* Memory from one resource may go back through an equal one. */
    void *q = a.allocate(200, 32);
    a2.deallocate(q, 200, 32);
    cr_assert_eq(used(p1.get()), 0);
}

Test(cpp_resource, pmr_containers_come_from_pool)
{
    mpool::pool p;
    mpool::memory_resource r(p);
    {
        std::pmr::vector<int> v(&r);
        for (int i = 0; i < 10000; i++)
            v.push_back(i);
        cr_assert(mpool_owns(p.get(), v.data()));
        cr_assert_geq(used(p.get()), v.capacity() * sizeof(int));

        std::pmr::string s(&r);
        s.assign(5000, 'z');
        cr_assert(mpool_owns(p.get(), s.data()));

        std::pmr::unordered_map<int, std::pmr::string> m(&r);
        for (int i = 0; i < 2000; i++)
            m.emplace(i, std::pmr::string(std::to_string(i) + " is a long enough value to avoid SSO"));
        for (const auto &kv : m) {
            cr_assert(mpool_owns(p.get(), kv.second.data()), "value of %d not in the pool", kv.first);
            cr_assert(kv.second.get_allocator().resource()->is_equal(r));
        }
        cr_assert_geq(used(p.get()), 2000 * (sizeof(void *) + sizeof(std::pair<const int, std::pmr::string>)) +
                                         10000 * sizeof(int) + 5000);

        std::pmr::vector<over_aligned> ov(&r);
        ov.resize(100);
        cr_assert(aligned_to(ov.data(), 64));
        cr_assert(mpool_owns(p.get(), ov.data()));
    }
    cr_assert_eq(used(p.get()), 0);
    cr_assert_eq(p.check(), 0);
}

Test(cpp_resource, upstream_of_pmr_pool_resource)
{
    mpool::pool p;
    mpool::memory_resource r(p);
    {
        std::pmr::unsynchronized_pool_resource pr(&r);
        std::pmr::vector<std::pmr::string> v(&pr);
        for (int i = 0; i < 3000; i++)
            v.emplace_back(std::string(100, static_cast<char>('a' + i % 26)));
        cr_assert_gt(used(p.get()), 3000 * 100);
        cr_assert_eq(v[27][0], 'b');
    }
    cr_assert_eq(used(p.get()), 0);
    cr_assert_eq(p.check(), 0);
}

Test(cpp_resource, throws_bad_alloc_when_pool_full)
{
    mpool_config_t cfg = mpool_config_default();
    cfg.max_size = 1 * MiB;
    mpool::pool p(cfg);
    mpool::memory_resource r(p);
    std::pmr::vector<char> v(&r);
    bool caught = false;
    try {
        v.resize(100 * MiB);
    } catch (const std::bad_alloc &) {
        caught = true;
    }
    cr_assert(caught);
    v.resize(64 * KiB);
    cr_assert(mpool_owns(p.get(), v.data()));
    cr_assert_eq(p.check(), 0);
}
