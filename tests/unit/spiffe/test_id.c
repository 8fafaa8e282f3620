/* SPIFFE IDs against the shared vectors (SPIFFE-ID.md §2), then our own edge cases. */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <meshward/spiffe.h>

static void test_vectors(void **state)
{
    (void)state;
    struct mw_dynbuf file;
    mw_test_read("spiffe/spiffe-id-vectors.json", &file);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)file.p, file.n, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        fail_msg("spiffe-id-vectors.json: %s", jerr.text);
    json_t *cases = json_object_get(root, "cases");
    assert_true(json_is_array(cases));
    size_t total = json_array_size(cases), agree = 0, class_agree = 0, classed = 0;
    for (size_t i = 0; i < total; i++) {
        json_t *c = json_array_get(cases, i);
        const char *hex = json_string_value(json_object_get(c, "input_hex"));
        assert_non_null(hex);
        bool want_valid = json_is_true(json_object_get(c, "valid"));
        struct mw_dynbuf in;
        mw_dynbuf_init(&in, 1 << 16);
        mw_assert_ok(mw_hex_decode(mw_slice_cstr(hex), &in));
        struct mw_spiffe_id id;
        enum mw_spiffe_id_fault fault;
        bool got_valid = mw_ok(mw_spiffe_id_parse(mw_dynbuf_slice(&in), &id, &fault));
        bool ok = got_valid == want_valid;
        if (ok && want_valid) {
            const char *td = json_string_value(json_object_get(c, "trust_domain"));
            const char *path = json_string_value(json_object_get(c, "path"));
            ok = td != NULL && path != NULL && strcmp(td, id.td) == 0 && strcmp(path, id.path) == 0;
        }
        if (ok)
            agree++;
        else
            print_message("DISAGREE case %zu input_hex=%s: want valid=%d, got %d (%s)\n", i, hex,
                          want_valid, got_valid, got_valid ? id.td : mw_error_msg());
        const char *cls = json_string_value(json_object_get(c, "error_class"));
        if (!want_valid && cls != NULL) {
            classed++;
            if (!got_valid && strcmp(cls, mw_spiffe_id_fault_name(fault)) == 0 &&
                strstr(mw_error_msg(), cls) != NULL)
                class_agree++;
            else
                print_message("CLASS case %zu input_hex=%s: want %s, got %s\n", i, hex, cls,
                              got_valid ? "valid" : mw_spiffe_id_fault_name(fault));
        }
        mw_dynbuf_free(&in);
    }
    print_message("spiffe-id-vectors: %zu/%zu agree; error class %zu/%zu agree\n", agree, total,
                  class_agree, classed);
    assert_int_equal(total, 537);
    assert_int_equal(agree, total);
    assert_int_equal(class_agree, classed);
    json_decref(root);
    mw_dynbuf_free(&file);
}

struct id_case {
    const char *in;
    enum mw_spiffe_id_fault fault;
    const char *td;
    const char *path;
};

static void test_own_cases(void **state)
{
    (void)state;
    static const struct id_case cases[] = {
        {"spiffe://example.org/ns/a/sa/b", MW_SPIFFE_ID_OK, "example.org", "/ns/a/sa/b"},
        {"spiffe://example.org", MW_SPIFFE_ID_OK, "example.org", ""},
        {"spiffe://a/...", MW_SPIFFE_ID_OK, "a", "/..."},
        {"spiffe://a/.x", MW_SPIFFE_ID_OK, "a", "/.x"},
        {"spiffe://Example.org/x", MW_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR, NULL, NULL},
        {"spiffe://user@example.org/x", MW_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR, NULL, NULL},
        {"spiffe://example.org:8080/x", MW_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR, NULL, NULL},
        {"spiffe://example.org/a%20b", MW_SPIFFE_ID_BAD_PATH_CHAR, NULL, NULL},
        {"spiffe://example.org/a?b", MW_SPIFFE_ID_BAD_PATH_CHAR, NULL, NULL},
        {"spiffe://example.org/a#b", MW_SPIFFE_ID_BAD_PATH_CHAR, NULL, NULL},
        {"spiffe://example.org?x", MW_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR, NULL, NULL},
        {"SPIFFE://example.org/a", MW_SPIFFE_ID_BAD_SCHEME, NULL, NULL},
        {"https://example.org/a", MW_SPIFFE_ID_BAD_SCHEME, NULL, NULL},
        {"spiffe:/", MW_SPIFFE_ID_BAD_SCHEME, NULL, NULL},
        {"spiffe://example.org/a//b", MW_SPIFFE_ID_EMPTY_SEGMENT, NULL, NULL},
        {"spiffe://example.org/a/..", MW_SPIFFE_ID_DOT_SEGMENT, NULL, NULL},
        {"spiffe://example.org/a/", MW_SPIFFE_ID_TRAILING_SLASH, NULL, NULL},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct mw_spiffe_id id;
        enum mw_spiffe_id_fault fault;
        mw_result r = mw_spiffe_id_parse(mw_slice_cstr(cases[i].in), &id, &fault);
        if (fault != cases[i].fault)
            fail_msg("%s: fault %s, want %s (%s)", cases[i].in, mw_spiffe_id_fault_name(fault),
                     mw_spiffe_id_fault_name(cases[i].fault), mw_error_msg());
        assert_int_equal(mw_ok(r), cases[i].fault == MW_SPIFFE_ID_OK);
        if (mw_ok(r)) {
            assert_string_equal(id.td, cases[i].td);
            assert_string_equal(id.path, cases[i].path);
            char buf[MW_SPIFFE_ID_MAX + 16];
            assert_true(mw_spiffe_id_format(&id, buf, sizeof(buf)));
            assert_string_equal(buf, cases[i].in);
        } else {
            assert_int_equal(mw_error_code(), MW_E_INPUT);
        }
    }
}

static void test_lengths(void **state)
{
    (void)state;
    char buf[MW_SPIFFE_ID_MAX + 64];
    struct mw_spiffe_id id;
    enum mw_spiffe_id_fault fault;
    /* §2.1: 255-byte trust domain is the limit. */
    memcpy(buf, "spiffe://", 9);
    memset(buf + 9, 'a', 255);
    buf[9 + 255] = '\0';
    mw_assert_ok(mw_spiffe_id_parse(mw_slice_cstr(buf), &id, &fault));
    assert_int_equal(strlen(id.td), 255);
    memset(buf + 9, 'a', 256);
    buf[9 + 256] = '\0';
    mw_assert_fails(mw_spiffe_id_parse(mw_slice_cstr(buf), &id, &fault), MW_E_INPUT);
    assert_int_equal(fault, MW_SPIFFE_ID_TOO_LONG);
    /* §2.3: 2048 bytes in all. */
    size_t n = 9;
    memcpy(buf, "spiffe://td", 11);
    n = 11;
    while (n < MW_SPIFFE_ID_MAX) {
        buf[n++] = '/';
        buf[n++] = 'x';
    }
    buf[n] = '\0';
    mw_assert_ok(mw_spiffe_id_parse(mw_slice_make(buf, MW_SPIFFE_ID_MAX - 1), &id, &fault));
    buf[n++] = 'y';
    buf[n] = '\0';
    mw_assert_fails(mw_spiffe_id_parse(mw_slice_make(buf, n), &id, &fault), MW_E_INPUT);
    assert_int_equal(fault, MW_SPIFFE_ID_TOO_LONG);
    /* Embedded NUL is a bad byte, not an end of string. */
    static const char nul[] = "spiffe://td/a\0b";
    mw_assert_fails(mw_spiffe_id_parse(mw_slice_make(nul, sizeof(nul) - 1), &id, &fault),
                    MW_E_INPUT);
    assert_int_equal(fault, MW_SPIFFE_ID_BAD_PATH_CHAR);
}

static void test_trust_domain(void **state)
{
    (void)state;
    char td[MW_SPIFFE_TD_MAX + 1];
    mw_assert_ok(mw_spiffe_td_parse(mw_slice_cstr("example.org"), td));
    assert_string_equal(td, "example.org");
    mw_assert_ok(mw_spiffe_td_parse(mw_slice_cstr("spiffe://example.org"), td));
    assert_string_equal(td, "example.org");
    mw_assert_fails(mw_spiffe_td_parse(mw_slice_cstr("spiffe://example.org/x"), td), MW_E_INPUT);
    mw_assert_fails(mw_spiffe_td_parse(mw_slice_cstr("Example.org"), td), MW_E_INPUT);
    mw_assert_fails(mw_spiffe_td_parse(mw_slice_cstr(""), td), MW_E_INPUT);
    mw_assert_fails(mw_spiffe_td_parse(mw_slice_cstr("a/b"), td), MW_E_INPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_own_cases),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_trust_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
