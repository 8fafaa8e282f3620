#include "testutil.h"

#include <string.h>

static void test_slice_compare(void **state)
{
    (void)state;
    mw_slice a = mw_slice_cstr("spiffe://example.org");
    assert_true(mw_slice_eq_cstr(a, "spiffe://example.org"));
    assert_false(mw_slice_eq_cstr(a, "spiffe://example.or"));
    assert_true(mw_slice_has_prefix(a, mw_slice_cstr("spiffe://")));
    assert_false(mw_slice_has_prefix(mw_slice_cstr("sp"), mw_slice_cstr("spiffe")));
    assert_true(mw_slice_has_suffix(a, mw_slice_cstr(".org")));
    assert_false(mw_slice_has_suffix(a, mw_slice_cstr(".com")));
    assert_true(mw_slice_eq(mw_slice_make(NULL, 0), mw_slice_cstr("")));
    assert_true(mw_slice_eq_ct(mw_slice_cstr("secret"), mw_slice_cstr("secret")));
    assert_false(mw_slice_eq_ct(mw_slice_cstr("secret"), mw_slice_cstr("secreT")));
    assert_false(mw_slice_eq_ct(mw_slice_cstr("secret"), mw_slice_cstr("secrets")));
}

static void test_slice_sub_clamps(void **state)
{
    (void)state;
    mw_slice s = mw_slice_cstr("abcdef");
    assert_true(mw_slice_eq_cstr(mw_slice_sub(s, 2, 2), "cd"));
    assert_true(mw_slice_eq_cstr(mw_slice_sub(s, 4, 100), "ef"));
    assert_int_equal(mw_slice_sub(s, 100, 1).n, 0);
    assert_int_equal(mw_slice_sub(mw_slice_make(NULL, 0), 1, 1).n, 0);
    assert_int_equal(mw_slice_find(s, 'd', 0), 3);
    assert_int_equal(mw_slice_find(s, 'a', 1), 6);
}

static void test_cursor_reads(void **state)
{
    (void)state;
    const uint8_t wire[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
                            0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 'x',  ':'};
    struct mw_cursor c;
    mw_cursor_init(&c, mw_slice_make(wire, sizeof(wire)));
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    mw_assert_ok(mw_cursor_u8(&c, &u8));
    assert_int_equal(u8, 0x01);
    mw_assert_ok(mw_cursor_u16be(&c, &u16));
    assert_int_equal(u16, 0x0203);
    mw_assert_ok(mw_cursor_u24be(&c, &u32));
    assert_int_equal(u32, 0x040506);
    mw_assert_ok(mw_cursor_u32be(&c, &u32));
    assert_int_equal(u32, 0x0708090a);
    mw_assert_ok(mw_cursor_u64be(&c, &u64));
    assert_true(u64 == 0x0b0c0d0e0f101112ull);
    mw_slice tok;
    mw_assert_ok(mw_cursor_until(&c, ':', &tok));
    assert_true(mw_slice_eq_cstr(tok, "x"));
    assert_int_equal(mw_cursor_left(&c), 0);
}

static void test_cursor_failed_read_leaves_cursor(void **state)
{
    (void)state;
    const uint8_t wire[] = {0xaa, 0xbb, 0xcc};
    struct mw_cursor c;
    mw_cursor_init(&c, mw_slice_make(wire, sizeof(wire)));
    mw_assert_ok(mw_cursor_skip(&c, 1));
    uint32_t u32;
    uint64_t u64;
    mw_slice s;
    mw_assert_fails(mw_cursor_u32be(&c, &u32), MW_E_INPUT);
    assert_int_equal(c.off, 1);
    mw_assert_fails(mw_cursor_u24be(&c, &u32), MW_E_INPUT);
    mw_assert_fails(mw_cursor_u64be(&c, &u64), MW_E_INPUT);
    mw_assert_fails(mw_cursor_bytes(&c, 3, &s), MW_E_INPUT);
    mw_assert_fails(mw_cursor_skip(&c, SIZE_MAX), MW_E_INPUT);
    mw_assert_fails(mw_cursor_until(&c, 'z', &s), MW_E_INPUT);
    assert_int_equal(c.off, 1);
    assert_non_null(strstr(mw_error_msg(), "truncated"));
    mw_assert_ok(mw_cursor_bytes(&c, 2, &s));
    assert_int_equal(s.p[0], 0xbb);
    assert_true(mw_slice_eq(mw_cursor_rest(&c), mw_slice_make(NULL, 0)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slice_compare),
        cmocka_unit_test(test_slice_sub_clamps),
        cmocka_unit_test(test_cursor_reads),
        cmocka_unit_test(test_cursor_failed_read_leaves_cursor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
