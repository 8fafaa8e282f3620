#include "testutil.h"

#include <string.h>

static const struct {
    const char *in;
    uint64_t min, max;
    bool ok;
    uint64_t want;
} u64_cases[] = {
    {"0", 0, 10, true, 0},
    {"10", 0, 10, true, 10},
    {"11", 0, 10, false, 0},
    {"5", 6, 10, false, 0},
    {"18446744073709551615", 0, UINT64_MAX, true, UINT64_MAX},
    {"18446744073709551616", 0, UINT64_MAX, false, 0},
    {"99999999999999999999999", 0, UINT64_MAX, false, 0},
    {"", 0, 10, false, 0},
    {"-1", 0, 10, false, 0},
    {"+1", 0, 10, false, 0},
    {" 1", 0, 10, false, 0},
    {"1 ", 0, 10, false, 0},
    {"0x10", 0, 100, false, 0},
    {"010", 0, 100, false, 0},
    {"1e3", 0, 10000, false, 0},
};

static void test_parse_u64(void **state)
{
    (void)state;
    for (size_t i = 0; i < MW_ARRAY_LEN(u64_cases); i++) {
        uint64_t v = 12345;
        mw_result r = mw_parse_u64(mw_slice_cstr(u64_cases[i].in), u64_cases[i].min,
                                   u64_cases[i].max, "port", &v);
        if (mw_ok(r) != u64_cases[i].ok)
            fail_msg("case %zu \"%s\": ok=%d want %d (%s)", i, u64_cases[i].in, mw_ok(r),
                     u64_cases[i].ok, mw_error_msg());
        if (u64_cases[i].ok)
            assert_true(v == u64_cases[i].want);
        else
            assert_true(v == 12345); /* untouched on failure */
    }
}

static void test_parse_u64_message_names_field(void **state)
{
    (void)state;
    uint64_t v;
    mw_assert_fails(mw_parse_u64(mw_slice_cstr("70000"), 1, 65535, "port", &v), MW_E_INPUT);
    assert_string_equal(mw_error_msg(), "port: 70000 is outside [1, 65535]");
}

static void test_message_escapes_input(void **state)
{
    (void)state;
    uint64_t v;
    mw_assert_fails(mw_parse_u64(mw_slice_make("1\x1b[2J\"", 6), 0, 10, "port", &v), MW_E_INPUT);
    assert_string_equal(mw_error_msg(), "port: \"1\\x1b[2J\\x22\" is not a decimal number");
    mw_assert_fails(mw_parse_duration(mw_slice_cstr("0123456789012345678901234567890123456789"),
                                      100, "ttl", &v),
                    MW_E_INPUT);
    assert_non_null(strstr(mw_error_msg(), "...\""));
}

static void test_parse_i64(void **state)
{
    (void)state;
    int64_t v;
    mw_assert_ok(
        mw_parse_i64(mw_slice_cstr("-9223372036854775808"), INT64_MIN, INT64_MAX, NULL, &v));
    assert_true(v == INT64_MIN);
    mw_assert_ok(
        mw_parse_i64(mw_slice_cstr("9223372036854775807"), INT64_MIN, INT64_MAX, NULL, &v));
    assert_true(v == INT64_MAX);
    mw_assert_ok(mw_parse_i64(mw_slice_cstr("-5"), -10, 10, NULL, &v));
    assert_true(v == -5);
    mw_assert_fails(
        mw_parse_i64(mw_slice_cstr("9223372036854775808"), INT64_MIN, INT64_MAX, NULL, &v),
        MW_E_INPUT);
    mw_assert_fails(
        mw_parse_i64(mw_slice_cstr("-9223372036854775809"), INT64_MIN, INT64_MAX, NULL, &v),
        MW_E_INPUT);
    mw_assert_fails(mw_parse_i64(mw_slice_cstr("-0"), -10, 10, NULL, &v), MW_E_INPUT);
    mw_assert_fails(mw_parse_i64(mw_slice_cstr("-"), -10, 10, NULL, &v), MW_E_INPUT);
    mw_assert_fails(mw_parse_i64(mw_slice_cstr("--1"), -10, 10, NULL, &v), MW_E_INPUT);
    mw_assert_fails(mw_parse_i64(mw_slice_cstr("-11"), -10, 10, NULL, &v), MW_E_INPUT);
}

static void test_parse_duration(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool ok;
        uint64_t want;
    } cases[] = {
        {"90s", true, 90},   {"1h", true, 3600}, {"2m", true, 120},   {"1d", true, 86400},
        {"1500ms", true, 1}, {"0s", true, 0},    {"1", false, 0},     {"h", false, 0},
        {"1y", false, 0},    {"-1s", false, 0},  {"1h30m", false, 0}, {"8d", false, 0},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        uint64_t v = 0;
        mw_result r = mw_parse_duration(mw_slice_cstr(cases[i].in), 7 * 86400, "ttl", &v);
        if (mw_ok(r) != cases[i].ok)
            fail_msg("case \"%s\": ok=%d want %d (%s)", cases[i].in, mw_ok(r), cases[i].ok,
                     mw_error_msg());
        if (cases[i].ok)
            assert_true(v == cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_u64),
        cmocka_unit_test(test_parse_u64_message_names_field),
        cmocka_unit_test(test_message_escapes_input),
        cmocka_unit_test(test_parse_i64),
        cmocka_unit_test(test_parse_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
