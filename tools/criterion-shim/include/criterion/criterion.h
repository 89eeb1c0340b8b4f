/*
 * criterion/criterion.h - a small stand-in for Criterion, used only where
 * Criterion itself cannot run: ThreadSanitizer builds (MPOOL_SANITIZE=thread).
 *
 * Why: Criterion 2.4's runner (BoxFort) maps its shared arenas with MAP_FIXED
 * at random addresses in 0x2000'0000'0000..0x6000'0000'0000, which is almost
 * all shadow and meta memory under TSan; the runner then aborts with "Could
 * not initialize inheritable arena" before any test runs (Criterion issue
 * #274).  This shim keeps the test sources unchanged: it implements the part
 * of Criterion's C API that the mpool tests use, and runs each test in a
 * fork()ed child (a crash, a TSan report or a timeout fails only that test).
 *
 * Supported: Test, TestSuite (.init .fini .signal .exit_code .disabled
 * .description .timeout), the old-style cr_assert_* / cr_expect_* / cr_assume_*
 * macros (message optional, a string literal), the new-style criteria eq ne lt
 * le gt ge zero not all any none epsilon_eq with scalar and str/wcs tags,
 * cr_skip_test, cr_log_*.  Not supported: parameterized tests, theories,
 * redirections, stream and memory tags.  The runner accepts --filter, --list,
 * --timeout, --fail-fast, --always-succeed, -j/--jobs (ignored: one test at a
 * time), -q and --verbose.
 */
#ifndef MPOOL_CRITERION_SHIM_H
#define MPOOL_CRITERION_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <wchar.h>

#define CRITERION_SHIM 1

#ifdef __cplusplus
extern "C" {
#endif

struct criterion_test_extra_data {
    int crs_sentinel_; /* keeps the designated initializer non-empty */
    void (*init)(void);
    void (*fini)(void);
    int signal;
    int exit_code;
    bool disabled;
    const char *description;
    double timeout;
    void *data;
};

struct crs_test {
    const char *suite;
    const char *name;
    void (*fn)(void);
    const char *file;
    unsigned line;
    struct criterion_test_extra_data data;
    struct crs_test *next;
};

struct crs_suite {
    const char *name;
    struct criterion_test_extra_data data;
    struct crs_suite *next;
};

enum crs_log_level { CRS_LOG_INFO, CRS_LOG_WARN, CRS_LOG_ERROR };

void crs_register_test(struct crs_test *test);
void crs_register_suite(struct crs_suite *suite);
void crs_fail(int fatal, const char *file, int line, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void crs_skip(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void crs_log(enum crs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool crs_all(const int *values, size_t count);
bool crs_any(const int *values, size_t count);

#ifdef __cplusplus
}
#endif

/* ---- Tests and suites --------------------------------------------------- */

/* C++ (before C++20) takes the designated initializers as an extension and
 * warns about the members they leave out. */
#if defined(__cplusplus) && defined(__clang__)
#define CRS_DIAG_PUSH_                                                       \
    _Pragma("clang diagnostic push")                                         \
    _Pragma("clang diagnostic ignored \"-Wmissing-field-initializers\"")     \
    _Pragma("clang diagnostic ignored \"-Wc++20-designator\"")
#define CRS_DIAG_POP_ _Pragma("clang diagnostic pop")
#elif defined(__cplusplus)
#define CRS_DIAG_PUSH_                                                       \
    _Pragma("GCC diagnostic push")                                           \
    _Pragma("GCC diagnostic ignored \"-Wmissing-field-initializers\"")
#define CRS_DIAG_POP_ _Pragma("GCC diagnostic pop")
#else
#define CRS_DIAG_PUSH_
#define CRS_DIAG_POP_
#endif

#define Test(Suite, Name, ...)                                                    \
    static void Suite##_##Name##_crs_impl(void);                                 \
    CRS_DIAG_PUSH_                                                               \
    static struct crs_test Suite##_##Name##_crs_test = {                         \
        #Suite, #Name, Suite##_##Name##_crs_impl, __FILE__, __LINE__,            \
        { .crs_sentinel_ = 0, __VA_ARGS__ }, NULL};                              \
    CRS_DIAG_POP_                                                                \
    __attribute__((constructor)) static void Suite##_##Name##_crs_register(void) \
    {                                                                            \
        crs_register_test(&Suite##_##Name##_crs_test);                           \
    }                                                                            \
    static void Suite##_##Name##_crs_impl(void)

#define TestSuite(Suite, ...)                                                    \
    CRS_DIAG_PUSH_                                                               \
    static struct crs_suite Suite##_crs_suite = {                                \
        #Suite, { .crs_sentinel_ = 0, __VA_ARGS__ }, NULL};                      \
    CRS_DIAG_POP_                                                                \
    __attribute__((constructor)) static void Suite##_crs_suite_register(void)    \
    {                                                                            \
        crs_register_suite(&Suite##_crs_suite);                                  \
    }                                                                            \
    extern int crs_swallow_semicolon_

/* ---- Assertions --------------------------------------------------------- */

/* Kind: 1 assert (stops the test), 0 expect (goes on), 2 assume (skips). */
#define CRS_CHECK_(Kind, Cond, What, ...)                                         \
    do {                                                                         \
        if (!(Cond)) {                                                           \
            if ((Kind) == 2)                                                     \
                crs_skip(__FILE__, __LINE__, " " __VA_ARGS__);                   \
            else                                                                 \
                crs_fail((Kind), __FILE__, __LINE__, (What), " " __VA_ARGS__);   \
        }                                                                        \
    } while (0)

#define cr_assert(Cond, ...) CRS_CHECK_(1, (Cond), #Cond, __VA_ARGS__)
#define cr_expect(Cond, ...) CRS_CHECK_(0, (Cond), #Cond, __VA_ARGS__)
#define cr_assume(Cond, ...) CRS_CHECK_(2, (Cond), #Cond, __VA_ARGS__)
#define cr_assert_not(Cond, ...) CRS_CHECK_(1, !(Cond), "!(" #Cond ")", __VA_ARGS__)
#define cr_expect_not(Cond, ...) CRS_CHECK_(0, !(Cond), "!(" #Cond ")", __VA_ARGS__)
#define cr_assume_not(Cond, ...) CRS_CHECK_(2, !(Cond), "!(" #Cond ")", __VA_ARGS__)

#define cr_assert_fail(...) crs_fail(1, __FILE__, __LINE__, "cr_assert_fail", " " __VA_ARGS__)
#define cr_expect_fail(...) crs_fail(0, __FILE__, __LINE__, "cr_expect_fail", " " __VA_ARGS__)
#define cr_fatal(...) crs_fail(1, __FILE__, __LINE__, "cr_fatal", " " __VA_ARGS__)
#define cr_fail(...) crs_fail(0, __FILE__, __LINE__, "cr_fail", " " __VA_ARGS__)
#define cr_skip_test(...) crs_skip(__FILE__, __LINE__, " " __VA_ARGS__)
#define cr_skip(...) crs_skip(__FILE__, __LINE__, " " __VA_ARGS__)

#define CRS_BINOP_(Kind, A, Op, B, ...) CRS_CHECK_(Kind, (A) Op (B), #A " " #Op " " #B, __VA_ARGS__)
#define cr_assert_eq(A, B, ...) CRS_BINOP_(1, A, ==, B, __VA_ARGS__)
#define cr_assert_neq(A, B, ...) CRS_BINOP_(1, A, !=, B, __VA_ARGS__)
#define cr_assert_lt(A, B, ...) CRS_BINOP_(1, A, <, B, __VA_ARGS__)
#define cr_assert_leq(A, B, ...) CRS_BINOP_(1, A, <=, B, __VA_ARGS__)
#define cr_assert_gt(A, B, ...) CRS_BINOP_(1, A, >, B, __VA_ARGS__)
#define cr_assert_geq(A, B, ...) CRS_BINOP_(1, A, >=, B, __VA_ARGS__)
#define cr_expect_eq(A, B, ...) CRS_BINOP_(0, A, ==, B, __VA_ARGS__)
#define cr_expect_neq(A, B, ...) CRS_BINOP_(0, A, !=, B, __VA_ARGS__)
#define cr_expect_lt(A, B, ...) CRS_BINOP_(0, A, <, B, __VA_ARGS__)
#define cr_expect_leq(A, B, ...) CRS_BINOP_(0, A, <=, B, __VA_ARGS__)
#define cr_expect_gt(A, B, ...) CRS_BINOP_(0, A, >, B, __VA_ARGS__)
#define cr_expect_geq(A, B, ...) CRS_BINOP_(0, A, >=, B, __VA_ARGS__)
#define cr_assume_eq(A, B, ...) CRS_BINOP_(2, A, ==, B, __VA_ARGS__)
#define cr_assume_neq(A, B, ...) CRS_BINOP_(2, A, !=, B, __VA_ARGS__)
#define cr_assume_lt(A, B, ...) CRS_BINOP_(2, A, <, B, __VA_ARGS__)
#define cr_assume_leq(A, B, ...) CRS_BINOP_(2, A, <=, B, __VA_ARGS__)
#define cr_assume_gt(A, B, ...) CRS_BINOP_(2, A, >, B, __VA_ARGS__)
#define cr_assume_geq(A, B, ...) CRS_BINOP_(2, A, >=, B, __VA_ARGS__)

#define cr_assert_null(V, ...) CRS_CHECK_(1, (V) == NULL, #V " == NULL", __VA_ARGS__)
#define cr_assert_not_null(V, ...) CRS_CHECK_(1, (V) != NULL, #V " != NULL", __VA_ARGS__)
#define cr_expect_null(V, ...) CRS_CHECK_(0, (V) == NULL, #V " == NULL", __VA_ARGS__)
#define cr_expect_not_null(V, ...) CRS_CHECK_(0, (V) != NULL, #V " != NULL", __VA_ARGS__)
#define cr_assume_null(V, ...) CRS_CHECK_(2, (V) == NULL, #V " == NULL", __VA_ARGS__)
#define cr_assume_not_null(V, ...) CRS_CHECK_(2, (V) != NULL, #V " != NULL", __VA_ARGS__)

#define CRS_FLOAT_EQ_(A, B, Eps) ((A) - (B) <= (Eps) && (B) - (A) <= (Eps))
#define cr_assert_float_eq(A, B, Eps, ...) \
    CRS_CHECK_(1, CRS_FLOAT_EQ_(A, B, Eps), #A " ~= " #B, __VA_ARGS__)
#define cr_assert_float_neq(A, B, Eps, ...) \
    CRS_CHECK_(1, !CRS_FLOAT_EQ_(A, B, Eps), #A " !~= " #B, __VA_ARGS__)
#define cr_expect_float_eq(A, B, Eps, ...) \
    CRS_CHECK_(0, CRS_FLOAT_EQ_(A, B, Eps), #A " ~= " #B, __VA_ARGS__)
#define cr_expect_float_neq(A, B, Eps, ...) \
    CRS_CHECK_(0, !CRS_FLOAT_EQ_(A, B, Eps), #A " !~= " #B, __VA_ARGS__)

#define CRS_STROP_(Kind, A, Op, B, ...) \
    CRS_CHECK_(Kind, strcmp((A), (B)) Op 0, "strcmp(" #A ", " #B ") " #Op " 0", __VA_ARGS__)
#define cr_assert_str_eq(A, B, ...) CRS_STROP_(1, A, ==, B, __VA_ARGS__)
#define cr_assert_str_neq(A, B, ...) CRS_STROP_(1, A, !=, B, __VA_ARGS__)
#define cr_assert_str_lt(A, B, ...) CRS_STROP_(1, A, <, B, __VA_ARGS__)
#define cr_assert_str_leq(A, B, ...) CRS_STROP_(1, A, <=, B, __VA_ARGS__)
#define cr_assert_str_gt(A, B, ...) CRS_STROP_(1, A, >, B, __VA_ARGS__)
#define cr_assert_str_geq(A, B, ...) CRS_STROP_(1, A, >=, B, __VA_ARGS__)
#define cr_expect_str_eq(A, B, ...) CRS_STROP_(0, A, ==, B, __VA_ARGS__)
#define cr_expect_str_neq(A, B, ...) CRS_STROP_(0, A, !=, B, __VA_ARGS__)
#define cr_expect_str_lt(A, B, ...) CRS_STROP_(0, A, <, B, __VA_ARGS__)
#define cr_expect_str_leq(A, B, ...) CRS_STROP_(0, A, <=, B, __VA_ARGS__)
#define cr_expect_str_gt(A, B, ...) CRS_STROP_(0, A, >, B, __VA_ARGS__)
#define cr_expect_str_geq(A, B, ...) CRS_STROP_(0, A, >=, B, __VA_ARGS__)
#define cr_assert_str_empty(S, ...) CRS_CHECK_(1, (S)[0] == '\0', #S " is empty", __VA_ARGS__)
#define cr_assert_str_not_empty(S, ...) CRS_CHECK_(1, (S)[0] != '\0', #S " is not empty", __VA_ARGS__)
#define cr_expect_str_empty(S, ...) CRS_CHECK_(0, (S)[0] == '\0', #S " is empty", __VA_ARGS__)
#define cr_expect_str_not_empty(S, ...) CRS_CHECK_(0, (S)[0] != '\0', #S " is not empty", __VA_ARGS__)

#define cr_assert_arr_eq(A, B, Size, ...) \
    CRS_CHECK_(1, memcmp((A), (B), (Size)) == 0, "memcmp(" #A ", " #B ", " #Size ") == 0", __VA_ARGS__)
#define cr_assert_arr_neq(A, B, Size, ...) \
    CRS_CHECK_(1, memcmp((A), (B), (Size)) != 0, "memcmp(" #A ", " #B ", " #Size ") != 0", __VA_ARGS__)
#define cr_expect_arr_eq(A, B, Size, ...) \
    CRS_CHECK_(0, memcmp((A), (B), (Size)) == 0, "memcmp(" #A ", " #B ", " #Size ") == 0", __VA_ARGS__)
#define cr_expect_arr_neq(A, B, Size, ...) \
    CRS_CHECK_(0, memcmp((A), (B), (Size)) != 0, "memcmp(" #A ", " #B ", " #Size ") != 0", __VA_ARGS__)

/* ---- New-style criteria (criterion/new/assert.h) ------------------------ */

#define CRS_REL_(Tag, Op, A, B) CRS_REL_##Tag(Op, A, B)
#define CRS_REL_SCALAR_(Op, A, B) ((A) Op (B))
#define CRS_REL_i8 CRS_REL_SCALAR_
#define CRS_REL_i16 CRS_REL_SCALAR_
#define CRS_REL_i32 CRS_REL_SCALAR_
#define CRS_REL_i64 CRS_REL_SCALAR_
#define CRS_REL_u8 CRS_REL_SCALAR_
#define CRS_REL_u16 CRS_REL_SCALAR_
#define CRS_REL_u32 CRS_REL_SCALAR_
#define CRS_REL_u64 CRS_REL_SCALAR_
#define CRS_REL_sz CRS_REL_SCALAR_
#define CRS_REL_ptr CRS_REL_SCALAR_
#define CRS_REL_iptr CRS_REL_SCALAR_
#define CRS_REL_uptr CRS_REL_SCALAR_
#define CRS_REL_chr CRS_REL_SCALAR_
#define CRS_REL_int CRS_REL_SCALAR_
#define CRS_REL_uint CRS_REL_SCALAR_
#define CRS_REL_long CRS_REL_SCALAR_
#define CRS_REL_ulong CRS_REL_SCALAR_
#define CRS_REL_llong CRS_REL_SCALAR_
#define CRS_REL_ullong CRS_REL_SCALAR_
#define CRS_REL_flt CRS_REL_SCALAR_
#define CRS_REL_dbl CRS_REL_SCALAR_
#define CRS_REL_ldbl CRS_REL_SCALAR_
#define CRS_REL_str(Op, A, B) (strcmp((A), (B)) Op 0)
#define CRS_REL_wcs(Op, A, B) (wcscmp((A), (B)) Op 0)

#define eq(Tag, A, B) CRS_REL_(Tag, ==, A, B)
#define ne(Tag, A, B) CRS_REL_(Tag, !=, A, B)
#define lt(Tag, A, B) CRS_REL_(Tag, <, A, B)
#define le(Tag, A, B) CRS_REL_(Tag, <=, A, B)
#define gt(Tag, A, B) CRS_REL_(Tag, >, A, B)
#define ge(Tag, A, B) CRS_REL_(Tag, >=, A, B)
#define zero(Tag, V) CRS_ZERO_##Tag(V)
#define CRS_ZERO_SCALAR_(V) ((V) == 0)
#define CRS_ZERO_i8 CRS_ZERO_SCALAR_
#define CRS_ZERO_i16 CRS_ZERO_SCALAR_
#define CRS_ZERO_i32 CRS_ZERO_SCALAR_
#define CRS_ZERO_i64 CRS_ZERO_SCALAR_
#define CRS_ZERO_u8 CRS_ZERO_SCALAR_
#define CRS_ZERO_u16 CRS_ZERO_SCALAR_
#define CRS_ZERO_u32 CRS_ZERO_SCALAR_
#define CRS_ZERO_u64 CRS_ZERO_SCALAR_
#define CRS_ZERO_sz CRS_ZERO_SCALAR_
#define CRS_ZERO_ptr(V) ((V) == NULL)
#define CRS_ZERO_iptr CRS_ZERO_SCALAR_
#define CRS_ZERO_uptr CRS_ZERO_SCALAR_
#define CRS_ZERO_chr CRS_ZERO_SCALAR_
#define CRS_ZERO_int CRS_ZERO_SCALAR_
#define CRS_ZERO_uint CRS_ZERO_SCALAR_
#define CRS_ZERO_long CRS_ZERO_SCALAR_
#define CRS_ZERO_ulong CRS_ZERO_SCALAR_
#define CRS_ZERO_llong CRS_ZERO_SCALAR_
#define CRS_ZERO_ullong CRS_ZERO_SCALAR_
#define CRS_ZERO_flt CRS_ZERO_SCALAR_
#define CRS_ZERO_dbl CRS_ZERO_SCALAR_
#define CRS_ZERO_ldbl CRS_ZERO_SCALAR_
#define CRS_ZERO_str(V) ((V)[0] == '\0')
#define CRS_ZERO_wcs(V) ((V)[0] == L'\0')
#define epsilon_eq(Tag, A, B, Eps) ((A) - (B) <= (Eps) && (B) - (A) <= (Eps))
#ifndef __cplusplus
#define not(Cond) (!(Cond))
#define all(...) crs_all((const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int))
#define any(...) crs_any((const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int))
#define none(...) (!any(__VA_ARGS__))
#endif

/* ---- Logging (criterion/logging.h) -------------------------------------- */

#define cr_log_info(...) crs_log(CRS_LOG_INFO, __VA_ARGS__)
#define cr_log_warn(...) crs_log(CRS_LOG_WARN, __VA_ARGS__)
#define cr_log_error(...) crs_log(CRS_LOG_ERROR, __VA_ARGS__)
#define CR_LOG_INFO CRS_LOG_INFO
#define CR_LOG_WARNING CRS_LOG_WARN
#define CR_LOG_ERROR CRS_LOG_ERROR
#define cr_log(Level, ...) crs_log((Level), __VA_ARGS__)

#endif /* MPOOL_CRITERION_SHIM_H */
