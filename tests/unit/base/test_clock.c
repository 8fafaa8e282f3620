#include "testutil.h"

#include <string.h>
#include <time.h>

static void test_fixed_and_system(void **state)
{
    (void)state;
    struct mw_clock c = mw_clock_fixed(1700000000);
    assert_true(mw_clock_now(&c) == 1700000000);
    int64_t now = (int64_t)time(NULL);
    int64_t sys = mw_clock_now(NULL);
    assert_true(sys >= now - 5 && sys <= now + 5);
    assert_true(mw_clock_now(mw_clock_system()) >= now - 5);
    uint64_t a = mw_monotonic_ns();
    uint64_t b = mw_monotonic_ns();
    assert_true(b >= a);
}

static void test_time_format(void **state)
{
    (void)state;
    char buf[32];
    mw_time_format(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    mw_time_format(1795521600, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-24T12:00:00Z");
}

static void test_time_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool ok;
        int64_t want;
    } cases[] = {
        {"2026-11-24T12:00:00Z", true, 1795521600},
        {"2026-11-24t12:00:00z", true, 1795521600},
        {"2026-11-24T12:00:00.999Z", true, 1795521600},
        {"2026-11-24T13:30:00+01:30", true, 1795521600},
        {"2026-11-24T10:00:00-02:00", true, 1795521600},
        {"1970-01-01T00:00:00Z", true, 0},
        {"2024-02-29T00:00:00Z", true, 1709164800},
        {"2023-02-29T00:00:00Z", false, 0},
        {"2026-11-31T00:00:00Z", false, 0},
        {"2026-13-01T00:00:00Z", false, 0},
        {"2026-11-24T24:00:00Z", false, 0},
        {"2026-11-24T12:00:00", false, 0},
        {"2026-11-24 12:00:00Z", false, 0},
        {"2026-11-24T12:00:00.Z", false, 0},
        {"2026-11-24T12:00:00+0100", false, 0},
        {"2026-1-24T12:00:00Z", false, 0},
        {"", false, 0},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        int64_t t = -1;
        mw_result r = mw_time_parse_rfc3339(mw_slice_cstr(cases[i].in), "--at", &t);
        if (mw_ok(r) != cases[i].ok)
            fail_msg("\"%s\": ok=%d want %d (%s)", cases[i].in, mw_ok(r), cases[i].ok,
                     mw_error_msg());
        if (cases[i].ok && t != cases[i].want)
            fail_msg("\"%s\": %lld want %lld", cases[i].in, (long long)t, (long long)cases[i].want);
    }
    mw_assert_fails(
        mw_time_parse_rfc3339(mw_slice_cstr("2026-02-30T00:00:00Z"), "--at", &(int64_t){0}),
        MW_E_INPUT);
    assert_non_null(strstr(mw_error_msg(), "--at"));
}

static void test_secmem(void **state)
{
    (void)state;
    uint8_t *p = mw_secmem_alloc(64);
    assert_non_null(p);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(p[i], 0);
    p[0] = 0x42;
    mw_secmem_free(p, 64);
    uint8_t w[4] = {1, 2, 3, 4};
    mw_wipe(w, sizeof(w));
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(w[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_and_system),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_secmem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
