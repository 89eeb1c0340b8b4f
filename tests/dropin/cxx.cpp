/*
 * dropin/cxx.cpp - C++ operator new/delete under LD_PRELOAD of
 * libmpool-malloc.so (run by test_dropin; see helper.h for the protocol).
 *
 *   cxx forms        every form of operator new and delete, by explicit call
 *                    and through new-expressions; bad_alloc; nothrow; containers
 *   cxx handler CAP  std::new_handler under MPOOL_MAX_SIZE=CAP: a handler that
 *                    frees a reserve and returns makes the retry succeed
 *   cxx tls N        thread_local std::string / std::vector / objects with
 *                    destructors in N threads
 */
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "helper.h"

namespace {

volatile std::size_t v_huge = SIZE_MAX / 2;
volatile std::size_t v_max = SIZE_MAX;

/* An object from a new-expression: present, owned, aligned (not written). */
void check_obj(const void *p, std::size_t n, std::size_t align, const char *what)
{
    CHECK(p != nullptr, "%s(%zu) = nullptr", what, n);
    CHECK(owned(p), "%s(%zu) = %p not owned by mpool", what, n, p);
    CHECK(aligned_to(p, align), "%s(%zu) = %p not %zu-aligned", what, n, p, align);
}

/* Raw memory from operator new: also writable at both ends. */
void check_block(void *p, std::size_t n, std::size_t align, const char *what)
{
    check_obj(p, n, align, what);
    if (n) {
        static_cast<volatile char *>(p)[0] = 1;
        static_cast<volatile char *>(p)[n - 1] = 2;
    }
}


struct alignas(128) Aligned128 {
    char data[200];
};
struct alignas(4096) AlignedPage {
    char data[100];
};

std::atomic<int> tracked_live{0};
struct Tracked {
    std::string name;
    std::vector<int> values;
    explicit Tracked(int i) : name("tracked object number " + std::to_string(i)), values(100, i)
    {
        tracked_live++;
    }
    ~Tracked() { tracked_live--; }
};

const std::size_t sizes[] = {0, 1, 8, 16, 100, 1000, 4096, 70000, 300000, 1 << 20, 3 << 20};

void forms()
{
    for (std::size_t n : sizes) {
        void *p = ::operator new(n);
        check_block(p, n, 16, "operator new");
        FREED(::operator delete(p), p, "operator delete");

        p = ::operator new[](n);
        check_block(p, n, 16, "operator new[]");
        FREED(::operator delete[](p), p, "operator delete[]");

        p = ::operator new(n);
        check_block(p, n, 16, "operator new");
        FREED(::operator delete(p, n), p, "sized operator delete");

        p = ::operator new[](n);
        check_block(p, n, 16, "operator new[]");
        FREED(::operator delete[](p, n), p, "sized operator delete[]");

        p = ::operator new(n, std::nothrow);
        check_block(p, n, 16, "operator new(nothrow)");
        FREED(::operator delete(p, std::nothrow), p, "operator delete(nothrow)");

        p = ::operator new[](n, std::nothrow);
        check_block(p, n, 16, "operator new[](nothrow)");
        FREED(::operator delete[](p, std::nothrow), p, "operator delete[](nothrow)");

        for (std::size_t a = 32; a <= 4096; a <<= 1) {
            std::align_val_t al{a};
            p = ::operator new(n, al);
            check_block(p, n, a, "operator new(align)");
            FREED(::operator delete(p, al), p, "operator delete(align)");

            p = ::operator new[](n, al);
            check_block(p, n, a, "operator new[](align)");
            FREED(::operator delete[](p, al), p, "operator delete[](align)");

            p = ::operator new(n, al);
            check_block(p, n, a, "operator new(align)");
            FREED(::operator delete(p, n, al), p, "operator delete(size, align)");

            p = ::operator new[](n, al);
            check_block(p, n, a, "operator new[](align)");
            FREED(::operator delete[](p, n, al), p, "operator delete[](size, align)");

            p = ::operator new(n, al, std::nothrow);
            check_block(p, n, a, "operator new(align, nothrow)");
            FREED(::operator delete(p, al, std::nothrow), p, "operator delete(align, nothrow)");

            p = ::operator new[](n, al, std::nothrow);
            check_block(p, n, a, "operator new[](align, nothrow)");
            FREED(::operator delete[](p, al, std::nothrow), p, "operator delete[](align, nothrow)");
        }
    }
    /* new-expressions */
    int *i = new int(42);
    CHECK(*i == 42, "new int(42)");
    check_obj(i, sizeof *i, alignof(int), "new int");
    FREED(delete i, i, "delete");
    int *arr = new int[1000]();
    check_obj(arr, 4000, 16, "new int[]");
    for (int k = 0; k < 1000; k++)
        CHECK(arr[k] == 0, "new int[1000]() not zeroed");
    FREED(delete[] arr, arr, "delete[]");
    Tracked *t = new Tracked(7);
    check_obj(t, sizeof *t, alignof(Tracked), "new Tracked");
    CHECK(owned(t->values.data()), "vector inside a new object not owned");
    delete t;
    Tracked *ta = new Tracked[3]{Tracked(1), Tracked(2), Tracked(3)};
    CHECK(owned(reinterpret_cast<char *>(ta) - sizeof(std::size_t)) || owned(ta),
          "new Tracked[3] not owned");
    delete[] ta;
    CHECK(tracked_live == 0, "Tracked objects alive: %d", tracked_live.load());
    Aligned128 *a128 = new Aligned128;
    check_obj(a128, sizeof *a128, 128, "new alignas(128)");
    FREED(delete a128, a128, "delete alignas(128)");
    AlignedPage *ap = new AlignedPage[5];
    check_obj(ap, sizeof *ap * 5, 4096, "new alignas(4096)[]");
    FREED(delete[] ap, ap, "delete[] alignas(4096)");
    AlignedPage *apn = new (std::nothrow) AlignedPage;
    check_obj(apn, sizeof *apn, 4096, "new (nothrow) alignas(4096)");
    delete apn;

    /* Impossible sizes: bad_alloc; nothrow forms return nullptr. */
    bool thrown = false;
    try {
        void *p = ::operator new(v_huge);
        CHECK(false, "operator new(SIZE_MAX/2) returned %p", p);
    } catch (const std::bad_alloc &) {
        thrown = true;
    }
    CHECK(thrown, "operator new(SIZE_MAX/2) did not throw std::bad_alloc");
    thrown = false;
    try {
        char *p = new char[v_huge];
        CHECK(false, "new char[SIZE_MAX/2] returned %p", static_cast<void *>(p));
    } catch (const std::bad_alloc &) {
        thrown = true;
    }
    CHECK(thrown, "new char[SIZE_MAX/2] did not throw std::bad_alloc");
    thrown = false;
    try {
        void *p = ::operator new(v_huge, std::align_val_t{64});
        CHECK(false, "operator new(SIZE_MAX/2, align 64) returned %p", p);
    } catch (const std::bad_alloc &) {
        thrown = true;
    }
    CHECK(thrown, "aligned operator new(SIZE_MAX/2) did not throw std::bad_alloc");
    CHECK(::operator new(v_max, std::nothrow) == nullptr, "operator new(SIZE_MAX, nothrow)");
    CHECK(::operator new[](v_huge, std::nothrow) == nullptr, "operator new[](SIZE_MAX/2, nothrow)");
    CHECK(::operator new(v_huge, std::align_val_t{256}, std::nothrow) == nullptr,
          "operator new(SIZE_MAX/2, align, nothrow)");
    CHECK(::operator new[](v_huge, std::align_val_t{256}, std::nothrow) == nullptr,
          "operator new[](SIZE_MAX/2, align, nothrow)");
    char *np = new (std::nothrow) char[v_huge];
    CHECK(np == nullptr, "new (nothrow) char[SIZE_MAX/2] = %p", static_cast<void *>(np));

    /* Containers. */
    std::vector<long> v;
    for (long k = 0; k < 200000; k++)
        v.push_back(k);
    CHECK(owned(v.data()), "vector storage not owned");
    long sum = 0;
    for (long x : v)
        sum += x;
    CHECK(sum == 199999L * 200000L / 2, "vector sum %ld", sum);
    std::map<int, std::string> m;
    std::unordered_map<std::string, int> um;
    std::list<std::string> l;
    for (int k = 0; k < 20000; k++) {
        std::string s = "key number " + std::to_string(k) + std::string(static_cast<std::size_t>(k % 50), 'x');
        m[k] = s;
        um[s] = k;
        l.push_back(s);
    }
    int found = 0;
    for (const auto &kv : m)
        found += um.at(kv.second) == kv.first;
    CHECK(found == 20000 && l.size() == 20000, "containers: %d found", found);
    std::string big(5 << 20, 'q');
    CHECK(owned(big.data()), "std::string storage (5 MB) not owned");
    auto sp = std::make_shared<Tracked>(9);
    auto up = std::make_unique<std::vector<std::string>>(1000, "unique");
    CHECK(owned(up.get()) && owned(up->data()), "make_unique not owned");
    CHECK(tracked_live == 1, "make_shared");
    sp.reset();
    CHECK(tracked_live == 0, "shared_ptr reset");
}

/* ---- new_handler -------------------------------------------------------- */

char *reserve;
int handler_calls;

void free_reserve()
{
    handler_calls++;
    if (reserve) {
        delete[] reserve;
        reserve = nullptr;
    } else {
        std::set_new_handler(nullptr); /* nothing left: the next failure throws */
    }
}

void handler(std::size_t cap)
{
    const std::size_t chunk = 4 << 20;
    reserve = new char[chunk];
    std::memset(reserve, 1, chunk);
    CHECK(owned(reserve), "reserve not owned");
    std::set_new_handler(free_reserve);
    std::vector<char *> blocks;
    blocks.reserve(4096);
    bool retried = false, thrown = false;
    for (std::size_t k = 0; k < 4096; k++) {
        int before = handler_calls;
        char *p;
        try {
            p = new char[chunk];
        } catch (const std::bad_alloc &) {
            thrown = true;
            break;
        }
        check_block(p, chunk, 16, "new char[4 MiB]");
        blocks.push_back(p);
        if (before == 0 && handler_calls == 1)
            retried = true; /* the handler freed the reserve and the retry succeeded */
    }
    CHECK(handler_calls >= 1, "the new_handler was never called (%zu blocks under a cap of %zu)",
          blocks.size(), cap);
    CHECK(retried, "after the new_handler freed the reserve, the retry did not succeed "
                   "(handler calls %d, blocks %zu)", handler_calls, blocks.size());
    CHECK(thrown, "std::bad_alloc was not thrown once the handler gave up");
    CHECK(handler_calls == 2, "handler calls %d, expected 2", handler_calls);
    CHECK(blocks.size() * chunk <= cap, "%zu blocks of 4 MiB under a cap of %zu", blocks.size(), cap);
    for (char *p : blocks)
        delete[] p;
    /* The handler is gone and memory is back: new works and nothrow fails quietly. */
    char *p = new char[chunk];
    check_block(p, chunk, 16, "new after freeing");
    delete[] p;
    CHECK(::operator new(cap + chunk, std::nothrow) == nullptr, "nothrow new past the cap");
}

/* ---- thread_local ------------------------------------------------------- */

std::atomic<int> tls_destroyed{0};
std::atomic<int> tls_failures{0};

struct TlsObject {
    std::vector<std::string> strings;
    char *raw;
    TlsObject() : raw(new char[1000]) {}
    ~TlsObject()
    {
        if (!owned(raw))
            tls_failures++;
        delete[] raw;
        for (const auto &s : strings)
            if (s.size() > 15 && !owned(s.data()))
                tls_failures++;
        tls_destroyed++;
    }
};

thread_local std::string tls_string;
thread_local std::vector<int> tls_vector;
thread_local TlsObject tls_object;

void tls_thread(int k)
{
    tls_string = "a thread-local string long enough to be on the heap: " + std::to_string(k);
    tls_vector.assign(static_cast<std::size_t>(1000 + k), k);
    for (int i = 0; i < 20; i++)
        tls_object.strings.push_back(std::string(static_cast<std::size_t>(20 + i * 10), 'a' + i % 26));
    if (!owned(tls_string.data()) || !owned(tls_vector.data()) || !owned(tls_object.raw))
        tls_failures++;
}

void tls(int threads)
{
    int done = 0;
    while (done < threads) {
        std::vector<std::thread> batch;
        for (int i = 0; i < 50 && done < threads; i++, done++)
            batch.emplace_back(tls_thread, done);
        for (auto &t : batch)
            t.join();
    }
    CHECK(tls_failures == 0, "%d thread-local blocks not owned", tls_failures.load());
    CHECK(tls_destroyed == threads, "thread_local destructors run: %d of %d", tls_destroyed.load(),
          threads);
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 2)
        HELPER_FAIL("usage: cxx SCENARIO [N]");
    std::string s = argv[1];
    std::size_t arg = argc > 2 ? std::strtoull(argv[2], nullptr, 0) : 0;
    if (s == "forms")
        forms();
    else if (s == "handler")
        handler(arg);
    else if (s == "tls")
        tls(static_cast<int>(arg));
    else
        HELPER_FAIL("unknown scenario %s", argv[1]);
    helper_say(1, "OK %s", argv[1]);
    return 0;
}
