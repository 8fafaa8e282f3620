#include "testutil.h"

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
        cmocka_unit_test(test_secmem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
