#include "testutil.h"

#include <string.h>

/* RFC 4648 §10 test vectors. */
static const struct {
    const char *plain, *b64, *b64url;
} rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void test_b64_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < MW_ARRAY_LEN(rfc4648); i++) {
        struct mw_dynbuf b;
        mw_dynbuf_init(&b, 1024);
        mw_assert_ok(mw_b64_encode(mw_slice_cstr(rfc4648[i].plain), MW_B64_STD, &b));
        assert_string_equal(mw_dynbuf_cstr(&b), rfc4648[i].b64);
        mw_dynbuf_reset(&b);
        mw_assert_ok(mw_b64_encode(mw_slice_cstr(rfc4648[i].plain), MW_B64_URL, &b));
        assert_string_equal(mw_dynbuf_cstr(&b), rfc4648[i].b64url);
        mw_dynbuf_reset(&b);
        mw_assert_ok(mw_b64_decode(mw_slice_cstr(rfc4648[i].b64), MW_B64_STD, &b));
        assert_string_equal(mw_dynbuf_cstr(&b), rfc4648[i].plain);
        mw_dynbuf_reset(&b);
        mw_assert_ok(mw_b64_decode(mw_slice_cstr(rfc4648[i].b64url), MW_B64_URL, &b));
        assert_string_equal(mw_dynbuf_cstr(&b), rfc4648[i].plain);
        mw_dynbuf_reset(&b);
        mw_assert_ok(mw_b64_decode(mw_slice_cstr(rfc4648[i].b64), MW_B64_URL_ANYPAD, &b));
        assert_string_equal(mw_dynbuf_cstr(&b), rfc4648[i].plain);
        mw_dynbuf_free(&b);
    }
}

static void test_b64_alphabets(void **state)
{
    (void)state;
    const uint8_t raw[] = {0xfb, 0xff, 0xbf};
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 64);
    mw_assert_ok(mw_b64_encode(mw_slice_make(raw, 3), MW_B64_STD, &b));
    assert_string_equal(mw_dynbuf_cstr(&b), "+/+/");
    mw_dynbuf_reset(&b);
    mw_assert_ok(mw_b64_encode(mw_slice_make(raw, 3), MW_B64_URL, &b));
    assert_string_equal(mw_dynbuf_cstr(&b), "-_-_");
    mw_dynbuf_reset(&b);
    mw_assert_fails(mw_b64_decode(mw_slice_cstr("-_-_"), MW_B64_STD, &b), MW_E_INPUT);
    mw_assert_fails(mw_b64_decode(mw_slice_cstr("+/+/"), MW_B64_URL, &b), MW_E_INPUT);
    mw_dynbuf_free(&b);
}

static const struct {
    const char *in;
    enum mw_b64 alphabet;
} b64_bad[] = {
    {"Zg", MW_B64_STD},      /* padding required */
    {"Zg=", MW_B64_STD},     /* wrong padding */
    {"Zg==", MW_B64_URL},    /* padding forbidden */
    {"Zh==", MW_B64_STD},    /* non-zero trailing bits */
    {"Zm9=", MW_B64_STD},    /* non-zero trailing bits */
    {"Z", MW_B64_STD_NOPAD}, /* impossible length */
    {"Zm9v\n", MW_B64_STD},  /* whitespace */
    {"Zm 9v", MW_B64_STD_NOPAD},
    {"Z===", MW_B64_STD},
    {"=Zg=", MW_B64_STD},
    {"Zg==Zg==", MW_B64_STD}, /* padding in the middle */
    {"Zm9v\x80", MW_B64_STD_NOPAD},
};

static void test_b64_rejects(void **state)
{
    (void)state;
    for (size_t i = 0; i < MW_ARRAY_LEN(b64_bad); i++) {
        struct mw_dynbuf b;
        mw_dynbuf_init(&b, 64);
        mw_result r = mw_b64_decode(mw_slice_cstr(b64_bad[i].in), b64_bad[i].alphabet, &b);
        if (mw_ok(r))
            fail_msg("case %zu \"%s\" decoded, want rejection", i, b64_bad[i].in);
        assert_int_equal(mw_error_code(), MW_E_INPUT);
        assert_non_null(strstr(mw_error_msg(), "base64"));
        mw_dynbuf_free(&b);
    }
}

static void test_b64_respects_limit(void **state)
{
    (void)state;
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 3);
    mw_assert_fails(mw_b64_decode(mw_slice_cstr("Zm9vYmFy"), MW_B64_STD, &b), MW_E_LIMIT);
    mw_dynbuf_free(&b);
}

static void test_hex(void **state)
{
    (void)state;
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 64);
    const uint8_t raw[] = {0x00, 0x01, 0xab, 0xff};
    mw_assert_ok(mw_hex_encode(mw_slice_make(raw, 4), &b));
    assert_string_equal(mw_dynbuf_cstr(&b), "0001abff");
    mw_dynbuf_reset(&b);
    mw_assert_ok(mw_hex_decode(mw_slice_cstr("0001ABff"), &b));
    assert_int_equal(b.n, 4);
    assert_memory_equal(b.p, raw, 4);
    mw_dynbuf_reset(&b);
    mw_assert_fails(mw_hex_decode(mw_slice_cstr("abc"), &b), MW_E_INPUT);
    mw_assert_fails(mw_hex_decode(mw_slice_cstr("zz"), &b), MW_E_INPUT);
    mw_assert_fails(mw_hex_decode(mw_slice_cstr("0x"), &b), MW_E_INPUT);
    mw_dynbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_rfc4648_vectors),
        cmocka_unit_test(test_b64_alphabets),
        cmocka_unit_test(test_b64_rejects),
        cmocka_unit_test(test_b64_respects_limit),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
