/*
 * mpool.hpp - C++17 interface of the mpool memory pool library (header only).
 *
 *   mpool::pool             owns one pool (RAII): created by the constructor,
 *                           destroyed by the destructor; movable, not copyable.
 *   mpool::allocator<T>     a stateful STL allocator that serves a container
 *                           from one pool; equal when the pools are equal.
 *   mpool::memory_resource  a std::pmr::memory_resource over one pool, for
 *                           std::pmr containers.
 *   mpool::default_pool()   the process-wide default pool (never owned).
 *   mpool::object_pool<T>   owns one fixed-size pool of T objects (mpool_fixed_*):
 *                           construct/destroy, and make_unique returning a
 *                           std::unique_ptr whose deleter gives the object back.
 *   mpool::arena            owns one arena (mpool_arena_*): bump allocation
 *                           released all at once; a std::pmr::memory_resource
 *                           whose deallocate does nothing (like
 *                           std::pmr::monotonic_buffer_resource), plus marks,
 *                           rewinds, cleanups and make<T>() with destructors.
 *
 * Example:
 *
 *   mpool::pool p;                                     // a pool of its own
 *   std::vector<int, mpool::allocator<int>> v(p);       // served by p
 *   mpool::memory_resource res(p);
 *   std::pmr::vector<int> w(&res);                      // served by p too
 *   std::size_t n = p.stats().live_blocks;              // statistics (mpool_get_stats)
 *   std::string r = p.report_string(MPOOL_REPORT_JSON); // report, health() and the rest
 *   mpool::arena a(p);                                 // an arena on p
 *   std::pmr::vector<std::pmr::string> words(&a);       // freed all at once by
 *   a.reset();                                         // reset (or ~arena)
 *
 * The pool must outlive every container, allocator and resource that uses it.
 *
 * Exceptions:
 *   - Every allocation that fails throws std::bad_alloc (whatever the reason:
 *     out of memory, the pool's max_size reached, an alignment the pool
 *     refuses), as containers expect; allocator<T>::allocate(n) throws
 *     std::bad_array_new_length when n * sizeof(T) overflows.  The pool's
 *     on_error policy still applies first (a LOG pool logs, an ABORT pool
 *     aborts before anything is thrown).
 *   - pool's constructors throw std::invalid_argument, whose what() holds
 *     mpool_strerror(MPOOL_ERR_INVALID_ARGUMENT), for a configuration that
 *     mpool_create refuses, and std::bad_alloc when memory runs out.
 *   - report_string throws std::bad_alloc if its string cannot grow.
 *   - Nothing else throws; freeing, observing and moving never do.
 *
 * Alignment: every wrapper knows the alignment its pool guarantees for every
 * block (its "base alignment": the pool's config.alignment).  Requests up to
 * that alignment use mpool_alloc, larger ones mpool_alloc_aligned.  A
 * mpool::pool knows its own; allocators and resources made from a pool copy
 * it; those made from a bare mpool_t * (and the default pool) assume
 * default_alignment (16, the library default) unless told otherwise.
 *
 * Threads: the wrappers add no state of their own to share; they are as
 * thread safe as the pool (config.thread_safe).
 */
#ifndef MPOOL_HPP
#define MPOOL_HPP

#include <mpool.h>

#include <cstddef>
#include <limits>
#include <memory>
#include <memory_resource>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace mpool {

/* The alignment of every block of a pool with the default configuration. */
inline constexpr std::size_t default_alignment = 16;

/* The process-wide default pool, the one the C API uses for a NULL pool.  Not
 * owned: it is never destroyed.  Use it with allocator or memory_resource. */
inline mpool_t *default_pool() noexcept
{
    return mpool_default();
}

namespace detail {

/* Allocates size bytes aligned to alignment from pool, whose blocks are all
 * aligned to base; throws std::bad_alloc on failure. */
inline void *allocate(mpool_t *pool, std::size_t size, std::size_t alignment, std::size_t base)
{
    void *p = alignment > base ? mpool_alloc_aligned(pool, size, alignment)
                               : mpool_alloc(pool, size);
    if (p == nullptr)
        throw std::bad_alloc();
    return p;
}

/* The exception for a configuration mpool_create refused (or ran out of memory on). */
[[noreturn]] inline void throw_create_failure()
{
    mpool_error_t err = mpool_last_error();
    if (err == MPOOL_ERR_INVALID_ARGUMENT)
        throw std::invalid_argument(std::string("mpool::pool: ") + mpool_strerror(err));
    throw std::bad_alloc();
}

} // namespace detail

/* ---- pool ------------------------------------------------------------------ */

/* Owns one pool created with mpool_create and destroys it (and with it every
 * block it served) in its destructor.  Movable, not copyable.  A moved-from
 * (or released) pool owns nothing: get() is nullptr, allocate throws
 * std::bad_alloc, usage() and stats() are all zeros, check() 0, owns()
 * false, health() HEALTHY with an empty message, report() false,
 * report_string() empty, and deallocate, reset, reset_stats and the
 * destructor do nothing.  It never falls back to the default pool. */
class pool {
public:
    /* A pool with the default configuration. */
    pool() : pool_(mpool_create(nullptr)), align_(default_alignment)
    {
        if (pool_ == nullptr)
            detail::throw_create_failure();
    }

    /* A pool with configuration cfg (see mpool_config_t). */
    explicit pool(const mpool_config_t &cfg) : pool_(mpool_create(&cfg)), align_(cfg.alignment)
    {
        if (pool_ == nullptr)
            detail::throw_create_failure();
    }

    pool(const pool &) = delete;
    pool &operator=(const pool &) = delete;

    /* Takes other's pool; other then owns nothing. */
    pool(pool &&other) noexcept : pool_(other.pool_), align_(other.align_)
    {
        other.pool_ = nullptr;
    }

    /* Destroys this pool, then takes other's; other then owns nothing. */
    pool &operator=(pool &&other) noexcept
    {
        if (this != &other) {
            mpool_destroy(pool_);
            pool_ = other.pool_;
            align_ = other.align_;
            other.pool_ = nullptr;
        }
        return *this;
    }

    /* Destroys the pool (mpool_destroy): every block it served is freed. */
    ~pool()
    {
        mpool_destroy(pool_);
    }

    /* A block of at least bytes bytes aligned to alignment (a power of two);
     * throws std::bad_alloc on failure.  mpool_alloc_aligned serves it only if
     * alignment exceeds the pool's base alignment. */
    void *allocate(std::size_t bytes, std::size_t alignment = alignof(std::max_align_t))
    {
        if (pool_ == nullptr)
            throw std::bad_alloc();
        return detail::allocate(pool_, bytes, alignment, align_);
    }

    /* Frees a block of this pool (mpool_free); nullptr does nothing. */
    void deallocate(void *p) noexcept
    {
        if (pool_ != nullptr)
            mpool_free(pool_, p);
    }

    /* Bytes held from the system and in live blocks (mpool_get_usage). */
    mpool_usage_t usage() const
    {
        if (pool_ == nullptr)
            return mpool_usage_t{0, 0, 0, 0.0};
        return mpool_get_usage(pool_);
    }

    /* One consistent snapshot of the pool's statistics (mpool_get_stats). */
    mpool_stats_t stats() const noexcept
    {
        mpool_stats_t s{};
        if (pool_ != nullptr)
            mpool_get_stats(pool_, &s);
        return s;
    }

    /* Zeroes the counters, the histogram and the timings; peaks become the
     * current figures (mpool_reset_stats). */
    void reset_stats() noexcept
    {
        if (pool_ != nullptr)
            mpool_reset_stats(pool_);
    }

    /* The health verdict with the figure that decided it (mpool_health). */
    mpool_health_t health() const noexcept
    {
        if (pool_ == nullptr)
            return mpool_health_t{};
        return mpool_health(pool_);
    }

    /* Writes a report (MPOOL_REPORT_TEXT or MPOOL_REPORT_JSON) through write,
     * in pieces (write nullptr: stderr); false if none could be written.
     * The report takes no memory from the pool, so write may allocate from
     * anywhere but this pool. */
    bool report(mpool_report_format_t format, mpool_write_fn write = nullptr, void *arg = nullptr) const noexcept
    {
        return pool_ != nullptr && mpool_report(pool_, format, write, arg);
    }

    /* The report as a string (held by the global operator new, not by this
     * pool); empty if the pool owns nothing or the report failed.  Throws
     * std::bad_alloc if the string cannot grow. */
    std::string report_string(mpool_report_format_t format) const
    {
        struct sink {
            std::string text;
            bool failed = false;
        } out;
        /* No exception may cross mpool_report (C frames): kept in failed. */
        mpool_write_fn append = [](const char *text, std::size_t len, void *arg) {
            auto *o = static_cast<sink *>(arg);
            if (o->failed)
                return;
            try {
                o->text.append(text, len);
            } catch (...) {
                o->failed = true;
            }
        };
        if (!report(format, append, &out))
            out.text.clear();
        if (out.failed)
            throw std::bad_alloc();
        return std::move(out.text);
    }

    /* The number of problems mpool_check finds (0: healthy). */
    std::size_t check() const
    {
        return pool_ != nullptr ? mpool_check(pool_) : 0;
    }

    /* True if p is the start of a live block of this pool (mpool_owns). */
    bool owns(const void *p) const
    {
        return pool_ != nullptr && mpool_owns(pool_, p);
    }

    /* Frees every block at once (mpool_reset); the pool stays usable.  Every
     * container using the pool must be gone or must never touch its memory
     * again.  No other thread may use the pool meanwhile. */
    void reset()
    {
        if (pool_ != nullptr)
            mpool_reset(pool_);
    }

    /* The pool owned, or nullptr; ownership stays here. */
    mpool_t *get() const noexcept
    {
        return pool_;
    }

    /* Gives up ownership: returns the pool (the caller must mpool_destroy it)
     * and owns nothing from then on. */
    mpool_t *release() noexcept
    {
        mpool_t *p = pool_;
        pool_ = nullptr;
        return p;
    }

    /* The alignment every block of the pool has (its config.alignment). */
    std::size_t alignment() const noexcept
    {
        return align_;
    }

    /* True if a pool is owned. */
    explicit operator bool() const noexcept
    {
        return pool_ != nullptr;
    }

    /* Exchanges the pools of a and b. */
    friend void swap(pool &a, pool &b) noexcept
    {
        std::swap(a.pool_, b.pool_);
        std::swap(a.align_, b.align_);
    }

private:
    mpool_t *pool_;
    std::size_t align_;
};

/* ---- allocator ------------------------------------------------------------- */

/* A stateful STL allocator serving T objects from one pool (not owned; it must
 * outlive the allocator and every container using it).  Copies and rebound
 * copies use the same pool; two allocators are equal iff their pools are,
 * and only then may one free what the other allocated.  The allocator moves
 * and swaps with the container's contents, and is copied on copy assignment,
 * so a block is always freed into the pool that served it.  allocate throws
 * std::bad_alloc on failure (std::bad_array_new_length if n * sizeof(T)
 * overflows); alignof(T) above the base alignment goes to mpool_alloc_aligned. */
template <class T>
class allocator {
public:
    using value_type = T;
    using size_type = std::size_t;
    using difference_type = std::ptrdiff_t;
    using propagate_on_container_copy_assignment = std::true_type;
    using propagate_on_container_move_assignment = std::true_type;
    using propagate_on_container_swap = std::true_type;
    using is_always_equal = std::false_type;

    /* Serves from the default pool. */
    allocator() noexcept : pool_(mpool_default()), align_(default_alignment) {}

    /* Serves from p (nullptr: the default pool, as in the C API), whose
     * blocks are all aligned to base_alignment (its config.alignment). */
    allocator(mpool_t *p, std::size_t base_alignment = default_alignment) noexcept
        : pool_(p != nullptr ? p : mpool_default()), align_(base_alignment)
    {
    }

    /* Serves from the pool p owns; throws std::invalid_argument if p owns none. */
    allocator(const pool &p) : pool_(p.get()), align_(p.alignment())
    {
        if (pool_ == nullptr)
            throw std::invalid_argument("mpool::allocator: the pool owns nothing");
    }

    /* Rebinding: an allocator of U on the same pool. */
    template <class U>
    allocator(const allocator<U> &other) noexcept : pool_(other.get()), align_(other.base_alignment())
    {
    }

    /* Storage for n objects of T, uninitialised. */
    [[nodiscard]] T *allocate(std::size_t n)
    {
        if (n > max_size())
            throw std::bad_array_new_length();
        return static_cast<T *>(detail::allocate(pool_, n * sizeof(T), alignof(T), align_));
    }

    /* Frees storage from allocate (of an equal allocator); nullptr does nothing. */
    void deallocate(T *p, std::size_t n) noexcept
    {
        (void)n;
        mpool_free(pool_, p);
    }

    /* The largest n that allocate can be asked for without overflow. */
    std::size_t max_size() const noexcept
    {
        return std::numeric_limits<std::size_t>::max() / sizeof(T);
    }

    /* The pool served from (never nullptr). */
    mpool_t *get() const noexcept
    {
        return pool_;
    }

    /* The alignment assumed for every block of the pool. */
    std::size_t base_alignment() const noexcept
    {
        return align_;
    }

private:
    mpool_t *pool_;
    std::size_t align_;
};

/* Equal iff both serve from the same pool. */
template <class T, class U>
bool operator==(const allocator<T> &a, const allocator<U> &b) noexcept
{
    return a.get() == b.get();
}

template <class T, class U>
bool operator!=(const allocator<T> &a, const allocator<U> &b) noexcept
{
    return a.get() != b.get();
}

/* ---- memory_resource ------------------------------------------------------- */

/* A std::pmr::memory_resource serving from one pool (not owned; it must
 * outlive the resource and everything allocated through it).  do_allocate
 * honours any power-of-two alignment (mpool_alloc_aligned above the base
 * alignment) and throws std::bad_alloc on failure; do_deallocate is
 * mpool_free; two resources are equal iff both are mpool::memory_resource
 * objects on the same pool. */
class memory_resource : public std::pmr::memory_resource {
public:
    /* Serves from the default pool. */
    memory_resource() noexcept : pool_(mpool_default()), align_(default_alignment) {}

    /* Serves from p (nullptr: the default pool), whose blocks are all aligned
     * to base_alignment (its config.alignment). */
    explicit memory_resource(mpool_t *p, std::size_t base_alignment = default_alignment) noexcept
        : pool_(p != nullptr ? p : mpool_default()), align_(base_alignment)
    {
    }

    /* Serves from the pool p owns; throws std::invalid_argument if p owns none. */
    explicit memory_resource(const pool &p) : pool_(p.get()), align_(p.alignment())
    {
        if (pool_ == nullptr)
            throw std::invalid_argument("mpool::memory_resource: the pool owns nothing");
    }

    /* The pool served from (never nullptr). */
    mpool_t *get() const noexcept
    {
        return pool_;
    }

private:
    void *do_allocate(std::size_t bytes, std::size_t alignment) override
    {
        return detail::allocate(pool_, bytes, alignment, align_);
    }

    void do_deallocate(void *p, std::size_t bytes, std::size_t alignment) override
    {
        (void)bytes;
        (void)alignment;
        mpool_free(pool_, p);
    }

    bool do_is_equal(const std::pmr::memory_resource &other) const noexcept override
    {
        const auto *o = dynamic_cast<const memory_resource *>(&other);
        return o != nullptr && o->pool_ == pool_;
    }

    mpool_t *pool_;
    std::size_t align_;
};

/* ---- object_pool ----------------------------------------------------------- */

/* Owns one fixed-size object pool (mpool_fixed_create) of T objects: each
 * object is one slot of sizeof(T) bytes aligned to alignof(T) (at most 4096),
 * allocated and freed in O(1).  construct builds a T in a slot, destroy runs
 * ~T and frees the slot, make_unique returns a unique_ptr whose deleter does
 * destroy through this pool.  Destroying something that is not a live object
 * of the pool (twice, another pool's) runs no destructor and is reported by
 * the pool's on_error policy.  The destructor (and reset) releases every slot
 * at once WITHOUT running the destructors of objects still live: destroy
 * those that own resources first.  Movable (a moved-from pool owns nothing;
 * construct then throws std::bad_alloc; unique_ptrs follow the move), not
 * copyable; the pool must outlive every unique_ptr it made.  Thread safe when config.thread_safe (the
 * default): any thread may destroy any object. */
template <class T>
class object_pool {
    static_assert(alignof(T) <= 4096, "mpool::object_pool: alignof(T) must be at most 4096");

public:
    using value_type = T;

    /* Destroys an object through the fixed pool it came from (the C pool, so
     * moving the object_pool does not disturb its unique_ptrs). */
    class deleter {
    public:
        deleter() noexcept = default;
        explicit deleter(mpool_fixed_t *fp) noexcept : fp_(fp) {}
        void operator()(T *p) const noexcept
        {
            destroy_in(fp_, p);
        }
        mpool_fixed_t *get() const noexcept
        {
            return fp_;
        }

    private:
        mpool_fixed_t *fp_ = nullptr;
    };
    using unique_ptr = std::unique_ptr<T, deleter>;

    /* A pool of the default configuration (64 objects reserved, growing by 2,
     * thread safe) on the default pool. */
    object_pool() : object_pool(mpool_fixed_config_default(sizeof(T))) {}

    /* A pool on parent (nullptr: the default pool) reserving initial_count objects. */
    explicit object_pool(mpool_t *parent, std::size_t initial_count = 64, bool thread_safe = true)
        : object_pool(config(parent, initial_count, thread_safe))
    {
    }

    /* A pool of configuration cfg; object_size and alignment are T's (an
     * alignment above alignof(T) in cfg is kept).  Throws
     * std::invalid_argument if mpool_fixed_create refuses cfg, std::bad_alloc
     * if memory runs out. */
    explicit object_pool(mpool_fixed_config_t cfg)
    {
        cfg.object_size = sizeof(T);
        if (cfg.alignment < alignof(T))
            cfg.alignment = alignof(T);
        fp_ = mpool_fixed_create(&cfg);
        if (fp_ == nullptr)
            detail::throw_create_failure();
    }

    object_pool(const object_pool &) = delete;
    object_pool &operator=(const object_pool &) = delete;
    object_pool(object_pool &&other) noexcept : fp_(other.fp_)
    {
        other.fp_ = nullptr;
    }
    object_pool &operator=(object_pool &&other) noexcept
    {
        if (this != &other) {
            mpool_fixed_destroy(fp_);
            fp_ = other.fp_;
            other.fp_ = nullptr;
        }
        return *this;
    }
    ~object_pool()
    {
        mpool_fixed_destroy(fp_);
    }

    /* A T built from args in a new slot; throws std::bad_alloc when no slot
     * can be had (max_count, memory), and whatever T's constructor throws
     * (the slot is then given back). */
    template <class... Args>
    T *construct(Args &&...args)
    {
        void *slot = allocate_slot();
        try {
            return ::new (slot) T(std::forward<Args>(args)...);
        } catch (...) {
            mpool_fixed_free(fp_, slot);
            throw;
        }
    }

    /* Runs ~T and frees the slot, if p is a live object of this pool; else
     * reports p through the pool's policy.  nullptr does nothing. */
    void destroy(T *p) noexcept
    {
        destroy_in(fp_, p);
    }

    /* construct wrapped in a unique_ptr that destroys through this pool. */
    template <class... Args>
    unique_ptr make_unique(Args &&...args)
    {
        return unique_ptr(construct(std::forward<Args>(args)...), deleter(fp_));
    }

    /* A raw slot for one T (no constructor run); throws std::bad_alloc. */
    T *allocate()
    {
        return static_cast<T *>(allocate_slot());
    }

    /* Frees a raw slot (no destructor run). */
    void deallocate(T *p) noexcept
    {
        mpool_fixed_free(fp_, p);
    }

    /* True if p is a live object of this pool. */
    bool owns(const T *p) const noexcept
    {
        return fp_ != nullptr && mpool_fixed_owns(fp_, p);
    }
    std::size_t in_use() const noexcept
    {
        return fp_ != nullptr ? mpool_fixed_in_use(fp_) : 0;
    }
    std::size_t capacity() const noexcept
    {
        return fp_ != nullptr ? mpool_fixed_capacity(fp_) : 0;
    }

    /* Every slot becomes free (no destructor runs; see above). */
    void reset() noexcept
    {
        if (fp_ != nullptr)
            mpool_fixed_reset(fp_);
    }

    mpool_fixed_t *get() const noexcept
    {
        return fp_;
    }
    explicit operator bool() const noexcept
    {
        return fp_ != nullptr;
    }

private:
    static void destroy_in(mpool_fixed_t *fp, T *p) noexcept
    {
        if (p == nullptr)
            return;
        if (fp != nullptr && mpool_fixed_owns(fp, p))
            p->~T();
        mpool_fixed_free(fp, p); /* reports what is not a live object */
    }

    static mpool_fixed_config_t config(mpool_t *parent, std::size_t initial_count, bool thread_safe) noexcept
    {
        mpool_fixed_config_t cfg = mpool_fixed_config_default(sizeof(T));
        cfg.parent = parent;
        cfg.initial_count = initial_count;
        cfg.thread_safe = thread_safe;
        return cfg;
    }

    void *allocate_slot()
    {
        void *slot = fp_ != nullptr ? mpool_fixed_alloc(fp_) : nullptr;
        if (slot == nullptr)
            throw std::bad_alloc();
        return slot;
    }

    mpool_fixed_t *fp_ = nullptr;
};

/* ---- arena ----------------------------------------------------------------- */

/* Owns one arena (mpool.h, "Arenas") and destroys it in its destructor.  As a
 * std::pmr::memory_resource it serves any power-of-two alignment and throws
 * std::bad_alloc on failure (past max_size, or when the pool fails); its
 * deallocate does nothing: memory comes back at reset(), at a rewind() to a
 * mark taken before it, or with the arena.  Equal only to itself.
 *
 * An arena is a single-thread object, neither copyable nor movable
 * (containers hold its address).  It must outlive every container and object
 * using it, and its pool must outlive it.  A child arena (the constructor
 * taking a parent arena) dies with its parent: it must be destroyed before
 * its parent is destroyed, reset, or rewound to a mark taken before the child
 * was made.
 *
 * make<T>(args...) constructs a T in the arena and, unless T is trivially
 * destructible, registers its destructor to run at the next reset, at a
 * rewind past it, or with the arena (last made, first destroyed). */
class arena : public std::pmr::memory_resource {
public:
    using mark_type = mpool_arena_mark_t;

    /* An arena on pool p (nullptr: the default pool); chunk_size and max_size
     * as for mpool_arena_create (0: 64 KiB chunks, no cap).  Throws
     * std::invalid_argument for sizes mpool_arena_create refuses,
     * std::bad_alloc when the pool cannot give the first chunk. */
    explicit arena(mpool_t *p = nullptr, std::size_t chunk_size = 0, std::size_t max_size = 0)
        : arena_(mpool_arena_create(p, chunk_size, max_size))
    {
        if (arena_ == nullptr)
            throw_failure();
    }

    /* An arena on the pool p owns; throws std::invalid_argument if p owns none. */
    explicit arena(const pool &p, std::size_t chunk_size = 0, std::size_t max_size = 0)
        : arena_(p.get() != nullptr ? mpool_arena_create(p.get(), chunk_size, max_size) : nullptr)
    {
        if (p.get() == nullptr)
            throw std::invalid_argument("mpool::arena: the pool owns nothing");
        if (arena_ == nullptr)
            throw_failure();
    }

    /* A child of parent (mpool_arena_create_child); see above for its lifetime. */
    explicit arena(arena &parent) : arena_(mpool_arena_create_child(parent.arena_))
    {
        if (arena_ == nullptr)
            throw std::bad_alloc();
    }

    arena(const arena &) = delete;
    arena &operator=(const arena &) = delete;

    /* Destroys the arena: its children, its cleanups, then its memory. */
    ~arena() override
    {
        mpool_arena_destroy(arena_);
    }

    /* Constructs a T in the arena from args; throws std::bad_alloc if there
     * is no room (and whatever T's constructor throws, with nothing kept). */
    template <class T, class... Args>
    T *make(Args &&...args)
    {
        void *p = allocate(sizeof(T), alignof(T));
        T *obj = ::new (p) T(std::forward<Args>(args)...);
        if constexpr (!std::is_trivially_destructible_v<T>) {
            if (!mpool_arena_on_reset(arena_, [](void *o) { static_cast<T *>(o)->~T(); }, obj)) {
                obj->~T();
                throw std::bad_alloc();
            }
        }
        return obj;
    }

    /* A copy of s in the arena; throws std::bad_alloc if there is no room. */
    char *strdup(const char *s)
    {
        char *copy = mpool_arena_strdup(arena_, s);
        if (copy == nullptr)
            throw std::bad_alloc();
        return copy;
    }

    /* Where the arena is now, for rewind. */
    mark_type mark() noexcept
    {
        return mpool_arena_mark(arena_);
    }

    /* Back to m (mpool_arena_rewind): false, nothing changed, if m is not a
     * live mark of this arena. */
    bool rewind(mark_type m) noexcept
    {
        return mpool_arena_rewind(arena_, m);
    }

    /* Children destroyed, cleanups run, everything allocated gone. */
    void reset() noexcept
    {
        mpool_arena_reset(arena_);
    }

    /* Runs cleanup(arg) at the next reset, at a rewind past this call, or
     * with the arena; false if there is no room for it. */
    bool on_reset(mpool_cleanup_fn cleanup, void *arg) noexcept
    {
        return mpool_arena_on_reset(arena_, cleanup, arg);
    }

    /* Bytes handed out (mpool_arena_used) and held from the pool (mpool_arena_held). */
    std::size_t used() const noexcept
    {
        return mpool_arena_used(arena_);
    }

    std::size_t held() const noexcept
    {
        return mpool_arena_held(arena_);
    }

    /* The arena owned (never nullptr). */
    mpool_arena_t *get() const noexcept
    {
        return arena_;
    }

private:
    [[noreturn]] static void throw_failure()
    {
        if (mpool_last_error() == MPOOL_ERR_INVALID_ARGUMENT)
            throw std::invalid_argument(std::string("mpool::arena: ") + mpool_strerror(MPOOL_ERR_INVALID_ARGUMENT));
        throw std::bad_alloc();
    }

    void *do_allocate(std::size_t bytes, std::size_t alignment) override
    {
        void *p = alignment <= 16 ? mpool_arena_alloc(arena_, bytes)
                                  : mpool_arena_alloc_aligned(arena_, bytes, alignment);
        if (p == nullptr)
            throw std::bad_alloc();
        return p;
    }

    void do_deallocate(void *p, std::size_t bytes, std::size_t alignment) override
    {
        (void)p;
        (void)bytes;
        (void)alignment;
    }

    bool do_is_equal(const std::pmr::memory_resource &other) const noexcept override
    {
        return this == &other;
    }

    mpool_arena_t *arena_;
};

} // namespace mpool

#endif /* MPOOL_HPP */
