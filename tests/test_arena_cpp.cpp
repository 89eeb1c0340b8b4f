/*
 * test_arena_cpp.cpp - mpool::arena (mpool.hpp): a std::pmr::memory_resource
 * for the pmr containers, make<T> with destructors run at reset, marks and
 * rewinds, children, and the exceptions.  Memory is shown to come from the
 * arena: its used() grows while containers fill and the pool's used bytes
 * fall back once the arena is gone.
 *
 * Only plain cr_assert* macros and try/catch are used (no cr_assert_throw),
 * so the file also runs under the Criterion-compatible shim.
 */
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory_resource>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <mpool.hpp>

#include <criterion/criterion.h>

namespace {

constexpr std::size_t KiB = std::size_t(1) << 10;

int destroyed = 0;

struct counted {
    int value;
    std::string name; /* not trivially destructible */
    explicit counted(int v) : value(v), name(std::to_string(v)) {}
    ~counted() { destroyed++; }
};

struct alignas(64) wide {
    char bytes[64];
};

} // namespace

Test(cpp_arena, pmr_containers_come_from_the_arena)
{
    mpool::pool p;
    {
        mpool::arena a(p);
        std::size_t before = a.used();
        std::pmr::vector<int> v(&a);
        for (int i = 0; i < 10000; i++)
            v.push_back(i);
        cr_assert(a.used() >= before + 10000 * sizeof(int), "used %zu", a.used());
        std::pmr::map<std::pmr::string, int> m(&a);
        for (int i = 0; i < 1000; i++)
            m.emplace(std::pmr::string("a key long enough to leave the small-string buffer " + std::to_string(i), &a), i);
        cr_assert_eq(m.size(), 1000u);
        cr_assert_eq(m.begin()->first.get_allocator().resource(), &a, "nested strings use the arena too");
        for (int i = 0; i < 10000; i++)
            cr_assert_eq(v[static_cast<std::size_t>(i)], i);
        cr_assert(mpool_get_usage(p.get()).used >= a.held());
    }
    cr_assert_eq(mpool_get_usage(p.get()).used, 0u, "the arena's memory is back in the pool");
}

Test(cpp_arena, alignment_and_equality)
{
    mpool::arena a;
    for (std::size_t align = 1; align <= 4096; align <<= 1) {
        void *q = a.allocate(24, align);
        cr_assert_eq(reinterpret_cast<std::uintptr_t>(q) % align, 0u, "alignment %zu", align);
    }
    std::pmr::vector<wide> w(&a);
    w.resize(100);
    cr_assert_eq(reinterpret_cast<std::uintptr_t>(w.data()) % 64, 0u);
    mpool::arena b;
    cr_assert(a.is_equal(a));
    cr_assert(!a.is_equal(b));
    cr_assert(*std::pmr::new_delete_resource() != a);
}

Test(cpp_arena, make_runs_destructors_at_reset_last_first)
{
    mpool::arena a;
    destroyed = 0;
    std::vector<counted *> made;
    for (int i = 0; i < 10; i++)
        made.push_back(a.make<counted>(i));
    cr_assert_eq(made[3]->value, 3);
    cr_assert_str_eq(made[7]->name.c_str(), "7");
    int *plain = a.make<int>(42);
    cr_assert_eq(*plain, 42);
    auto m = a.mark();
    a.make<counted>(100);
    a.make<counted>(101);
    cr_assert(a.rewind(m));
    cr_assert_eq(destroyed, 2, "a rewind destroys what was made after the mark");
    a.reset();
    cr_assert_eq(destroyed, 12);
    cr_assert(!a.rewind(m), "a mark does not survive a reset");
    char *s = a.strdup("copied");
    cr_assert_str_eq(s, "copied");
}

Test(cpp_arena, rewind_in_a_loop_reuses_memory)
{
    mpool::arena a(nullptr, 4 * KiB);
    auto m = a.mark();
    for (int round = 0; round < 1000; round++) {
        std::pmr::vector<std::pmr::string> words(&a);
        for (int i = 0; i < 20; i++)
            words.emplace_back("word number " + std::to_string(i) + " of a line that is long enough");
        cr_assert_eq(words.size(), 20u);
        cr_assert(a.rewind(m));
    }
    cr_assert_eq(a.used(), 0u);
    cr_assert(a.held() <= 8 * 4 * KiB, "held %zu", a.held());
}

Test(cpp_arena, children)
{
    mpool::arena parent;
    destroyed = 0;
    {
        mpool::arena child(parent);
        child.make<counted>(1);
        std::pmr::vector<int> v(&child);
        v.assign(1000, 7);
        cr_assert(child.used() >= 1000 * sizeof(int));
        cr_assert(!child.is_equal(parent));
    }
    cr_assert_eq(destroyed, 1, "the child's destructor ran its cleanups");
}

Test(cpp_arena, exceptions)
{
    try {
        mpool::arena bad(nullptr, 100);
        cr_assert_fail("a chunk of 100 bytes was accepted");
    } catch (const std::invalid_argument &e) {
        cr_assert_not_null(std::strstr(e.what(), "invalid argument"), "%s", e.what());
    }
    mpool::pool empty;
    mpool_t *raw = empty.release();
    try {
        mpool::arena none(empty);
        cr_assert_fail("an arena on a pool that owns nothing");
    } catch (const std::invalid_argument &) {
    }
    mpool_destroy(raw);
    mpool::arena capped(nullptr, 4 * KiB, 16 * KiB);
    bool threw = false;
    try {
        std::pmr::vector<char> v(&capped);
        v.resize(64 * KiB);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    cr_assert(threw, "past max_size: std::bad_alloc");
    cr_assert_eq(mpool_last_error(), MPOOL_ERR_POOL_FULL);
    void *q = capped.allocate(100);
    cr_assert_not_null(q, "the arena still serves");
}
