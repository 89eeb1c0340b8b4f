/*
 * test_cpp_fixed.cpp - mpool::object_pool<T> (mpool.hpp) over the fixed-size
 * pools: construct/destroy, make_unique with the pool's deleter, containers
 * of pool objects, exceptions, misuse, moves, alignment, threads.
 */
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <mpool.hpp>

#include <criterion/criterion.h>

namespace {

/* Counts constructions and destructions, and checks it is intact. */
struct tracked {
    static int alive;
    std::uint64_t key;
    std::string name;
    std::uint64_t check;
    tracked(std::uint64_t k, std::string n) : key(k), name(std::move(n)), check(~k)
    {
        ++alive;
    }
    ~tracked()
    {
        --alive;
    }
    bool intact() const
    {
        return check == ~key;
    }
};
int tracked::alive = 0;

struct throws_on_ctor {
    explicit throws_on_ctor(bool fail)
    {
        if (fail)
            throw std::runtime_error("constructor failed");
    }
};

struct alignas(64) cache_line {
    char bytes[40];
};

/* A binary tree whose nodes come from one object_pool. */
struct node {
    int key;
    node *left = nullptr, *right = nullptr;
    explicit node(int k) : key(k) {}
};

struct log_record {
    int calls = 0;
    mpool_error_t last = MPOOL_OK;
};

void record(mpool_error_t err, const char *, void *arg)
{
    auto *l = static_cast<log_record *>(arg);
    l->calls++;
    l->last = err;
}

} // namespace

Test(cpp_fixed, construct_and_destroy)
{
    tracked::alive = 0;
    {
        mpool::object_pool<tracked> pool;
        tracked *a = pool.construct(1, "one");
        tracked *b = pool.construct(2, std::string(100, 'x'));
        cr_assert_eq(tracked::alive, 2);
        cr_assert(pool.owns(a) && pool.owns(b));
        cr_assert_eq(pool.in_use(), 2);
        cr_assert_geq(pool.capacity(), 64);
        cr_assert(a->intact() && b->intact() && a->name == "one" && b->name.size() == 100);
        pool.destroy(a);
        cr_assert_eq(tracked::alive, 1);
        cr_assert_not(pool.owns(a));
        pool.destroy(b);
        pool.destroy(nullptr);
        cr_assert_eq(tracked::alive, 0);
        cr_assert_eq(pool.in_use(), 0);
    }
}

Test(cpp_fixed, make_unique_in_containers)
{
    tracked::alive = 0;
    mpool::object_pool<tracked> pool(nullptr, 16, false);
    {
        std::vector<mpool::object_pool<tracked>::unique_ptr> v;
        for (std::uint64_t i = 0; i < 1000; i++)
            v.push_back(pool.make_unique(i, std::to_string(i)));
        cr_assert_eq(pool.in_use(), 1000);
        cr_assert_eq(tracked::alive, 1000);
        std::sort(v.begin(), v.end(), [](const auto &x, const auto &y) { return x->key > y->key; });
        for (std::size_t i = 0; i < v.size(); i++)
            cr_assert(v[i]->intact() && v[i]->key == 999 - i && v[i]->name == std::to_string(999 - i));
        v.erase(v.begin(), v.begin() + 500); /* their deleters give the objects back */
        cr_assert_eq(pool.in_use(), 500);
        std::map<std::uint64_t, mpool::object_pool<tracked>::unique_ptr> m;
        for (auto &p : v)
            m.emplace(p->key, std::move(p));
        cr_assert_eq(pool.in_use(), 500);
        m.erase(m.begin(), m.find(250));
        cr_assert_eq(pool.in_use(), 250);
        std::unordered_map<std::string, mpool::object_pool<tracked>::unique_ptr> u;
        for (auto &kv : m)
            u.emplace(kv.second->name, std::move(kv.second));
        cr_assert_eq(u.size(), 250);
        cr_assert(u.at("300")->key == 300 && u.at("300")->intact());
    }
    cr_assert_eq(pool.in_use(), 0);
    cr_assert_eq(tracked::alive, 0);
}

Test(cpp_fixed, a_tree_of_pool_nodes)
{
    mpool::object_pool<node> pool;
    node *root = nullptr;
    std::vector<node *> all;
    std::uint64_t x = 12345;
    for (int i = 0; i < 5000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int k = static_cast<int>(x >> 40);
        node **at = &root;
        while (*at && (*at)->key != k)
            at = k < (*at)->key ? &(*at)->left : &(*at)->right;
        if (!*at) {
            *at = pool.construct(k);
            all.push_back(*at);
        }
    }
    cr_assert_eq(pool.in_use(), all.size());
    std::list<node *> order; /* in-order walk into a list */
    std::vector<node *> stack;
    for (node *n = root; n || !stack.empty();) {
        while (n) {
            stack.push_back(n);
            n = n->left;
        }
        n = stack.back();
        stack.pop_back();
        order.push_back(n);
        n = n->right;
    }
    cr_assert_eq(order.size(), all.size());
    cr_assert(std::is_sorted(order.begin(), order.end(), [](node *a, node *b) { return a->key < b->key; }));
    pool.reset(); /* the whole tree at once */
    cr_assert_eq(pool.in_use(), 0);
    cr_assert_not(pool.owns(root));
}

Test(cpp_fixed, constructor_exception_gives_the_slot_back)
{
    mpool::object_pool<throws_on_ctor> pool;
    throws_on_ctor *ok = pool.construct(false);
    bool thrown = false;
    try {
        pool.construct(true);
    } catch (const std::runtime_error &) {
        thrown = true;
    }
    cr_assert(thrown);
    cr_assert_eq(pool.in_use(), 1);
    pool.destroy(ok);
}

Test(cpp_fixed, full_pool_throws_bad_alloc)
{
    mpool_fixed_config_t cfg = mpool_fixed_config_default(0);
    cfg.initial_count = 4;
    cfg.max_count = 4;
    mpool::object_pool<int> pool(cfg);
    int *p[4];
    for (auto &q : p)
        q = pool.construct(7);
    bool thrown = false;
    try {
        pool.construct(8);
    } catch (const std::bad_alloc &) {
        thrown = true;
    }
    cr_assert(thrown);
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL);
    for (auto &q : p)
        pool.destroy(q);
}

Test(cpp_fixed, bad_configuration_throws_invalid_argument)
{
    mpool_fixed_config_t cfg = mpool_fixed_config_default(0);
    cfg.growth_factor = 0.5;
    bool thrown = false;
    try {
        mpool::object_pool<int> pool(cfg);
    } catch (const std::invalid_argument &) {
        thrown = true;
    }
    cr_assert(thrown);
}

Test(cpp_fixed, misuse_runs_no_destructor_and_is_reported)
{
    tracked::alive = 0;
    log_record log;
    mpool_fixed_config_t cfg = mpool_fixed_config_default(0);
    cfg.on_error = MPOOL_ON_ERROR_LOG;
    cfg.logger = record;
    cfg.logger_arg = &log;
    mpool::object_pool<tracked> pool(cfg), other(cfg);
    tracked *a = pool.construct(1, "a");
    tracked *b = other.construct(2, "b");
    pool.destroy(a);
    pool.destroy(a); /* twice */
    cr_assert_eq(log.calls, 1);
    cr_assert_eq(log.last, MPOOL_ERR_INVALID_POINTER);
    pool.destroy(b); /* another pool's */
    cr_assert_eq(log.calls, 2);
    cr_assert_eq(tracked::alive, 1, "b was not destroyed");
    cr_assert(b->intact() && other.owns(b));
    other.destroy(b);
    cr_assert_eq(tracked::alive, 0);
}

Test(cpp_fixed, moves_keep_unique_ptrs_working)
{
    tracked::alive = 0;
    mpool::object_pool<tracked> a;
    auto p = a.make_unique(5, "five");
    mpool::object_pool<tracked> b(std::move(a));
    cr_assert_not(static_cast<bool>(a));
    cr_assert(b.owns(p.get()));
    bool thrown = false;
    try {
        a.construct(1, "x");
    } catch (const std::bad_alloc &) {
        thrown = true;
    }
    cr_assert(thrown, "a moved-from pool owns nothing");
    mpool::object_pool<tracked> c;
    c = std::move(b);
    p.reset(); /* the deleter names the C pool, which c owns now */
    cr_assert_eq(tracked::alive, 0);
    cr_assert_eq(c.in_use(), 0);
}

Test(cpp_fixed, alignment_of_t)
{
    mpool::object_pool<cache_line> pool(nullptr, 8, false);
    std::vector<cache_line *> v;
    for (int i = 0; i < 100; i++) {
        v.push_back(pool.construct());
        cr_assert_eq(reinterpret_cast<std::uintptr_t>(v.back()) % 64, 0);
    }
    for (auto *q : v)
        pool.destroy(q);
}

Test(cpp_fixed, threads_destroy_each_others_objects)
{
    tracked::alive = 0;
    mpool::object_pool<std::uint64_t> pool;
    constexpr int threads = 4, per = 5000;
    std::vector<std::vector<std::uint64_t *>> made(threads);
    std::vector<std::thread> t;
    for (int i = 0; i < threads; i++)
        t.emplace_back([&pool, &made, i] {
            for (int k = 0; k < per; k++)
                made[i].push_back(pool.construct(static_cast<std::uint64_t>(i) * per + k));
        });
    for (auto &th : t)
        th.join();
    t.clear();
    std::atomic<int> bad{0};
    for (int i = 0; i < threads; i++) /* each thread destroys the next one's objects */
        t.emplace_back([&pool, &made, &bad, i] {
            const auto &theirs = made[(i + 1) % threads];
            for (int k = 0; k < per; k++) {
                if (*theirs[k] != static_cast<std::uint64_t>((i + 1) % threads) * per + k)
                    bad++;
                pool.destroy(theirs[k]);
            }
        });
    for (auto &th : t)
        th.join();
    cr_assert_eq(bad.load(), 0);
    cr_assert_eq(pool.in_use(), 0);
}
