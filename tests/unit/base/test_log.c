#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static char *capture(bool json, enum mw_log_level at, const char *msg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    mw_log_set_stream(f);
    mw_log_set_json(json);
    mw_log(at, "ca", "%s", msg);
    fclose(f);
    mw_log_set_stream(NULL);
    return text;
}

static void test_levels_filter(void **state)
{
    (void)state;
    mw_log_set_level(MW_LOG_WARN);
    char *t = capture(false, MW_LOG_INFO, "hidden");
    assert_string_equal(t, "");
    free(t);
    t = capture(false, MW_LOG_ERROR, "shown\nsecond line");
    assert_non_null(strstr(t, " error ca: shown second line\n"));
    free(t);
    mw_log_set_level(MW_LOG_INFO);
}

static void test_json_lines(void **state)
{
    (void)state;
    mw_log_set_level(MW_LOG_DEBUG);
    char *t = capture(true, MW_LOG_INFO, "issued \"spiffe://td/ns/a/sa/b\"\n");
    json_error_t err;
    json_t *o = json_loads(t, 0, &err);
    if (o == NULL)
        fail_msg("log line is not JSON: %s (%s)", t, err.text);
    assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(o, "component")), "ca");
    assert_string_equal(json_string_value(json_object_get(o, "msg")),
                        "issued \"spiffe://td/ns/a/sa/b\"\n");
    assert_non_null(json_object_get(o, "time"));
    assert_int_equal(t[strlen(t) - 1], '\n');
    json_decref(o);
    free(t);
    mw_log_set_json(false);
}

static void test_parse_level(void **state)
{
    (void)state;
    enum mw_log_level l;
    mw_assert_ok(mw_log_parse_level("WARN", &l));
    assert_int_equal(l, MW_LOG_WARN);
    mw_assert_fails(mw_log_parse_level("verbose", &l), MW_E_INPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels_filter),
        cmocka_unit_test(test_json_lines),
        cmocka_unit_test(test_parse_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
