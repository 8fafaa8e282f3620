#include "testutil.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <meshward/conf.h>

static void assert_msg(const char *want)
{
    if (strcmp(mw_error_msg(), want) != 0)
        fail_msg("error message\n  got:  %s\n  want: %s", mw_error_msg(), want);
}

static void assert_msg_has(const char *want)
{
    if (strstr(mw_error_msg(), want) == NULL)
        fail_msg("error message \"%s\" does not contain \"%s\"", mw_error_msg(), want);
}

static void test_load(void **state)
{
    json_t *v = NULL;
    mw_assert_ok(mw_json_load(mw_slice_cstr("{\"a\": [1, \"x\", {\"b\": null}], \"c\": true}"),
                              "t.json", NULL, &v));
    assert_non_null(v);
    assert_true(json_is_object(v));
    assert_int_equal(json_array_size(json_object_get(v, "a")), 3);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(v, "a"), 0)), 1);
    assert_true(json_is_true(json_object_get(v, "c")));
    json_decref(v);

    mw_assert_ok(mw_json_load(mw_slice_cstr("[]"), "t.json", NULL, &v));
    assert_true(json_is_array(v));
    json_decref(v);
}

struct reject_case {
    const char *text;
    struct mw_conf_limits limits;
    enum mw_err code;
    const char *msg;
    bool exact;
};

static const struct reject_case rejects[] = {
    /* RFC 8259 §4: names SHOULD be unique; readers disagree on which one wins. */
    {"{\"a\": 1,\n \"a\": 2}", {0}, MW_E_INPUT, "t.json:2:", false},
    {"{\"a\": 1, \"a\": 2}", {0}, MW_E_INPUT, "duplicate object key", false},
    {"{\"o\": {\"k\": 1, \"j\": 2, \"k\": 3}}", {0}, MW_E_INPUT, "duplicate object key", false},
    /* Syntax and truncation, with line and column. */
    {"{\"a\": 1,}", {0}, MW_E_INPUT, "t.json:1:9: string or '}' expected near '}'", true},
    {"{\n  \"a\": tru\n}", {0}, MW_E_INPUT, "t.json:2:", false},
    {"{\"a\": [1, 2", {0}, MW_E_INPUT, "t.json:1:", false},
    {"{\"a\": \"abc", {0}, MW_E_INPUT, "premature end of input", false},
    {"", {0}, MW_E_INPUT, "t.json:1:", false},
    {"{} {}", {0}, MW_E_INPUT, "end of file expected", false},
    /* A bare scalar is not a document; NUL in a string is not a C string. */
    {"42", {0}, MW_E_INPUT, "'[' or '{' expected", false},
    {"{\"a\": \"x\\u0000y\"}", {0}, MW_E_INPUT, "\\u0000 is not allowed", false},
    {"{\"a\": 99999999999999999999}", {0}, MW_E_INPUT, "too big integer", false},
    /* Control bytes from the input are escaped in the message. */
    {"{\"a\": \x01}", {0}, MW_E_INPUT, "\\x01", false},
    {"{\"a\": \"\xff\"}", {0}, MW_E_INPUT, "unable to decode byte 0xff", false},
    /* Limits. */
    {"{\"a\": 12345}",
     {.max_bytes = 10},
     MW_E_LIMIT,
     "t.json: 12 bytes is more than the limit of 10",
     true},
    {"[[[[1]]]]", {.max_depth = 3}, MW_E_LIMIT, "t.json:1:4: nesting deeper than 3", true},
    {"{\"a\": \"[[[[\",\n \"b\": {\"c\": [{}]}}",
     {.max_depth = 3},
     MW_E_LIMIT,
     "t.json:2:14: nesting deeper than 3",
     true},
};

static void test_rejections(void **state)
{
    for (size_t i = 0; i < MW_ARRAY_LEN(rejects); i++) {
        const struct reject_case *c = &rejects[i];
        json_t *v = json_true();
        mw_result r = mw_json_load(mw_slice_cstr(c->text), "t.json", &c->limits, &v);
        if (mw_ok(r))
            fail_msg("case %zu (%s): loaded, want %s", i, c->text, c->msg);
        assert_null(v);
        if (mw_error_code() != c->code)
            fail_msg("case %zu (%s): code %s (%s), want %s", i, c->text,
                     mw_err_name(mw_error_code()), mw_error_msg(), mw_err_name(c->code));
        if (c->exact ? strcmp(mw_error_msg(), c->msg) != 0 : strstr(mw_error_msg(), c->msg) == NULL)
            fail_msg("case %zu:\n  got:  %s\n  want: %s%s", i, mw_error_msg(), c->msg,
                     c->exact ? "" : " (a part)");
    }
}

/* The size cap comes before parsing: text that is not JSON at all fails on size. */
static void test_size_before_parse(void **state)
{
    struct mw_conf_limits lim = {.max_bytes = 4};
    json_t *v = NULL;
    mw_assert_fails(mw_json_load(mw_slice_cstr("not json"), "t.json", &lim, &v), MW_E_LIMIT);
    assert_msg("t.json: 8 bytes is more than the limit of 4");
    mw_assert_ok(mw_json_load(mw_slice_cstr("[1]"), "t.json", &lim, &v));
    json_decref(v);
}

static void test_depth(void **state)
{
    char text[2 * 3000];
    for (size_t depth = 64; depth <= 65; depth++) {
        size_t n = 0;
        for (size_t i = 0; i < depth; i++)
            text[n++] = '[';
        for (size_t i = 0; i < depth; i++)
            text[n++] = ']';
        json_t *v = NULL;
        mw_result r = mw_json_load(mw_slice_make(text, n), "d.json", NULL, &v);
        if (depth == 64) {
            mw_assert_ok(r);
            json_decref(v);
        } else {
            assert_true(mw_failed(r));
            assert_int_equal(mw_error_code(), MW_E_LIMIT);
            assert_msg("d.json:1:65: nesting deeper than 64");
        }
    }
    /* Deeper than jansson's own limit (2048): refused by jansson, as a limit. */
    memset(text, '[', 3000);
    struct mw_conf_limits lim = {.max_depth = 100000};
    json_t *v = NULL;
    mw_assert_fails(mw_json_load(mw_slice_make(text, 3000), "d.json", &lim, &v), MW_E_LIMIT);
    assert_msg_has("d.json:1:");
    assert_msg_has("maximum parsing depth reached");
    assert_null(v);
}

static void test_load_file(void **state)
{
    const char *dir = mw_test_tmpdir();
    char path[512];
    snprintf(path, sizeof(path), "%s/p.json", dir);
    mw_assert_ok(mw_file_write_atomic(path, mw_slice_cstr("{\"k\": [1, 2]}\n"), 0644));
    json_t *v = NULL;
    mw_assert_ok(mw_json_load_file(path, NULL, &v));
    assert_int_equal(json_array_size(json_object_get(v, "k")), 2);
    json_decref(v);

    struct mw_conf_limits exact = {.max_bytes = 14};
    mw_assert_ok(mw_json_load_file(path, &exact, &v));
    json_decref(v);
    struct mw_conf_limits small = {.max_bytes = 13};
    mw_assert_fails(mw_json_load_file(path, &small, &v), MW_E_LIMIT);
    assert_null(v);
    assert_msg_has(path);

    snprintf(path, sizeof(path), "%s/missing.json", dir);
    mw_assert_fails(mw_json_load_file(path, NULL, &v), MW_E_NOTFOUND);

    snprintf(path, sizeof(path), "%s/bad.json", dir);
    mw_assert_ok(mw_file_write_atomic(path, mw_slice_cstr("{\n\"k\": 1,\n\"k\": 2\n}\n"), 0644));
    mw_assert_fails(mw_json_load_file(path, NULL, &v), MW_E_INPUT);
    char want[600];
    snprintf(want, sizeof(want), "%s:3:", path);
    assert_msg_has(want);
    assert_msg_has("duplicate object key");
}

/* ---------------------------------------------------------------- real data */

static void join(char *buf, size_t cap, const char *a, const char *b)
{
    int n = snprintf(buf, cap, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= cap)
        fail_msg("path too long: %s/%s", a, b);
}

/*
 * Test vectors whose integers do not fit jansson's json_int_t (int64): the
 * leaf indexes 2^64-1 and 2^63+2 of underflow cases. jansson refuses them
 * rather than rounding, and so must we: a rounded index is a different leaf.
 */
static const char *const too_big[] = {
    "merkle/testdata/subtreeinclusion/errors/invalid-large-subtree.json",
    "merkle/testdata/subtreeinclusion/0/leafIdx-sub-@1-subtree.json",
    "merkle/testdata/subtreeinclusion/0/leafIdx-sub-@1.json",
    "merkle/testdata/subtreeinclusion/1/leafIdx-sub-@1-subtree.json",
    "merkle/testdata/subtreeinclusion/1/leafIdx-sub-@1.json",
    "merkle/testdata/inclusion/0/leafIdx-sub-@1.json",
    "merkle/testdata/inclusion/1/leafIdx-sub-@1.json",
};

static size_t load_tree(const char *rel)
{
    const char *abs = mw_test_data(rel);
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", abs);
    DIR *dp = opendir(dir);
    if (dp == NULL)
        fail_msg("cannot open %s", dir);
    size_t files = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096], path[4096];
        join(sub, sizeof(sub), rel, e->d_name);
        join(path, sizeof(path), dir, e->d_name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            files += load_tree(sub);
            continue;
        }
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        bool want_fail = false;
        for (size_t i = 0; i < MW_ARRAY_LEN(too_big); i++)
            want_fail |= strcmp(sub, too_big[i]) == 0;
        json_t *v = NULL;
        mw_result r = mw_json_load_file(path, NULL, &v);
        files++;
        if (want_fail) {
            if (mw_ok(r))
                fail_msg("%s loaded, want \"too big integer\"", sub);
            assert_int_equal(mw_error_code(), MW_E_INPUT);
            assert_msg_has("too big integer near '");
            continue;
        }
        if (mw_failed(r))
            fail_msg("%s: %s", sub, mw_error_msg());
        assert_true(json_is_object(v) || json_is_array(v));
        json_decref(v);
    }
    closedir(dp);
    return files;
}

static void test_istio_json(void **state)
{
    static const char *const files[] = {
        "istio/authz-decisions.json",
        "istio/validation-cases.json",
        "istio/analyzers-expected.json",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(files); i++) {
        json_t *v = NULL;
        mw_assert_ok(mw_json_load_file(mw_test_data(files[i]), NULL, &v));
        assert_true(json_is_object(v) || json_is_array(v));
        assert_true(json_is_object(v) ? json_object_size(v) > 0 : json_array_size(v) > 0);
        json_decref(v);
    }
}

static void test_merkle_json(void **state)
{
    assert_true(load_tree("merkle") >= 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_size_before_parse),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_istio_json),
        cmocka_unit_test(test_merkle_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
