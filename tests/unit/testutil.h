/* Shared helpers for the cmocka unit tests. */
#ifndef MESHWARD_TESTUTIL_H
#define MESHWARD_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <meshward/base.h>

/*
 * Absolute path of a file under ../shared/testdata. Fails the test, saying
 * that the shared folder is missing, when it does not exist. The string is
 * valid until the next call from the same thread.
 */
const char *mw_test_data(const char *rel);
/* Read a test data file into b (fails the test on error). */
void mw_test_read(const char *rel, struct mw_dynbuf *b);
/* A fresh empty temporary directory for this test (removed by the OS, not us). */
const char *mw_test_tmpdir(void);

/* Assert a result succeeded, printing the error message if it did not. */
#define mw_assert_ok(expr)                                    \
    do {                                                      \
        mw_result r_ = (expr);                                \
        if (mw_failed(r_))                                    \
            fail_msg("%s failed: %s", #expr, mw_error_msg()); \
    } while (0)

/* Assert a result failed with the given code. */
#define mw_assert_fails(expr, code)                                                          \
    do {                                                                                     \
        mw_result r_ = (expr);                                                               \
        if (mw_ok(r_))                                                                       \
            fail_msg("%s succeeded, want failure %s", #expr, mw_err_name(code));             \
        if (mw_error_code() != (code))                                                       \
            fail_msg("%s failed with %s (%s), want %s", #expr, mw_err_name(mw_error_code()), \
                     mw_error_msg(), mw_err_name(code));                                     \
    } while (0)

#endif
