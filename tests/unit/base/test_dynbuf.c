#include "testutil.h"

#include <string.h>

static void test_dynbuf_grows_to_max(void **state)
{
    (void)state;
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1000);
    assert_string_equal(mw_dynbuf_cstr(&b), "");
    for (int i = 0; i < 100; i++)
        mw_assert_ok(mw_dynbuf_add(&b, "0123456789", 10));
    assert_int_equal(b.n, 1000);
    assert_int_equal(b.p[1000], 0);
    mw_assert_fails(mw_dynbuf_add_byte(&b, 'x'), MW_E_LIMIT);
    assert_int_equal(b.n, 1000);
    mw_dynbuf_free(&b);
    assert_null(b.p);
}

static void test_dynbuf_limit_overflow(void **state)
{
    (void)state;
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 16);
    mw_assert_ok(mw_dynbuf_add(&b, "abc", 3));
    mw_assert_fails(mw_dynbuf_reserve(&b, SIZE_MAX), MW_E_LIMIT);
    mw_assert_fails(mw_dynbuf_reserve(&b, SIZE_MAX - 1), MW_E_LIMIT);
    mw_assert_fails(mw_dynbuf_add(&b, "0123456789abcdef", 14), MW_E_LIMIT);
    assert_string_equal(mw_dynbuf_cstr(&b), "abc");
    mw_dynbuf_free(&b);
}

static void test_dynbuf_format_and_json(void **state)
{
    (void)state;
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 4096);
    mw_assert_ok(mw_dynbuf_addf(&b, "%s=%d;", "port", 8443));
    mw_assert_ok(mw_dynbuf_add_json_str(&b, mw_slice_make("a\"b\\c\n\x01\x7f", 8)));
    assert_string_equal(mw_dynbuf_cstr(&b), "port=8443;\"a\\\"b\\\\c\\n\\u0001\\u007f\"");
    mw_dynbuf_reset(&b);
    assert_int_equal(b.n, 0);
    mw_assert_ok(mw_dynbuf_add_slice(&b, mw_slice_make("x\0y", 3)));
    assert_int_equal(b.n, 3);
    size_t n;
    uint8_t *p = mw_dynbuf_take(&b, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "x\0y", 3);
    free(p);
    assert_null(b.p);
    mw_dynbuf_free(&b);
}

static void test_dynbuf_addf_respects_limit(void **state)
{
    (void)state;
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 8);
    mw_assert_fails(mw_dynbuf_addf(&b, "%s", "123456789"), MW_E_LIMIT);
    assert_int_equal(b.n, 0);
    mw_dynbuf_free(&b);
}

static void test_dynbuf_secure(void **state)
{
    (void)state;
    struct mw_dynbuf b;
    mw_dynbuf_init_secure(&b, 1 << 20);
    for (int i = 0; i < 1000; i++)
        mw_assert_ok(mw_dynbuf_add(&b, "key-material", 12));
    assert_int_equal(b.n, 12000);
    assert_memory_equal(b.p + 11988, "key-material", 12);
    mw_dynbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dynbuf_grows_to_max),
        cmocka_unit_test(test_dynbuf_limit_overflow),
        cmocka_unit_test(test_dynbuf_format_and_json),
        cmocka_unit_test(test_dynbuf_addf_respects_limit),
        cmocka_unit_test(test_dynbuf_secure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
