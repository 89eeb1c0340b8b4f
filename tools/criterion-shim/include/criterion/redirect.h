/* criterion/redirect.h - part of the mpool Criterion shim: see criterion/criterion.h. */
#error "criterion/redirect.h is not supported by the mpool Criterion shim (tools/criterion-shim), which runs the tests of ThreadSanitizer builds"
