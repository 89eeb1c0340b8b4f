/* criterion/assert.h - part of the mpool Criterion shim: see criterion/criterion.h. */
#ifndef MPOOL_CRITERION_SHIM_ASSERT_H
#define MPOOL_CRITERION_SHIM_ASSERT_H
#include "criterion.h"
#endif
