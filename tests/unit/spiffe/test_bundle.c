/* SPIFFE bundles: the go-spiffe files, then our own JWKS and PEM cases. */
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include <meshward/spiffe.h>

struct bundle_row {
    const char *file;
    enum mw_bundle_format fmt;
    const char *want_err; /* NULL: accepted */
    size_t x509, jwt;
    int64_t refresh; /* -1: absent */
    int64_t seq;     /* -1: absent */
    size_t ignored, x5c_extra;
};

#define SB "spiffe/bundle/spiffebundle/testdata/"
#define JB "spiffe/bundle/jwtbundle/testdata/"
#define XB "spiffe/bundle/x509bundle/testdata/"

/*
 * EXPECTED.md "SPIFFE bundles": "N keys" there counts JWT authorities; every
 * valid file also holds one x509-svid authority. Then the jwtbundle and
 * x509bundle files, with the outcomes we chose.
 */
static const struct bundle_row rows[] = {
    {SB "spiffebundle_valid_1.json", MW_BUNDLE_FMT_AUTO, NULL, 1, 1, -1, -1, 0, 0},
    {SB "spiffebundle_valid_2.json", MW_BUNDLE_FMT_AUTO, NULL, 1, 6, 60, 1, 0, 0},
    {SB "spiffebundle_valid_with_wit.json", MW_BUNDLE_FMT_AUTO, NULL, 1, 2, 60, 1, 2, 0},
    {SB "spiffebundle_missing_kid.json", MW_BUNDLE_FMT_AUTO, "jwt-svid key has no kid", 0, 0, 0, 0,
     0, 0},
    {SB "spiffebundle_no_keys.json", MW_BUNDLE_FMT_AUTO, "no authorities", 0, 0, 0, 0, 0, 0},
    /* Our decision (docs/spiffe.md): X509-SVID §6.2, use x5c[0] and ignore the rest. */
    {SB "spiffebundle_multiple_x509.json", MW_BUNDLE_FMT_AUTO, NULL, 1, 1, -1, -1, 0, 1},
    {JB "jwks_valid_1.json", MW_BUNDLE_FMT_JWKS_JWT, NULL, 0, 1, -1, -1, 0, 0},
    {JB "jwks_valid_2.json", MW_BUNDLE_FMT_JWKS_JWT, NULL, 0, 2, -1, -1, 0, 0},
    {JB "jwks_missing_kid.json", MW_BUNDLE_FMT_JWKS_JWT, "key 2: jwt-svid key has no kid", 0, 0, 0,
     0, 0, 0},
    /* As SPIFFE bundles these lack the required "use" (bundle spec §4.2.2). */
    {JB "jwks_valid_1.json", MW_BUNDLE_FMT_AUTO, "key 1 has no \"use\"", 0, 0, 0, 0, 0, 0},
    {XB "cert.pem", MW_BUNDLE_FMT_AUTO, NULL, 1, 0, -1, -1, 0, 0},
    {XB "certs.pem", MW_BUNDLE_FMT_AUTO, NULL, 2, 0, -1, -1, 0, 0},
    {XB "cert.pem", MW_BUNDLE_FMT_PEM, NULL, 1, 0, -1, -1, 0, 0},
    {XB "corrupted.pem", MW_BUNDLE_FMT_AUTO, "malformed certificate", 0, 0, 0, 0, 0, 0},
    {XB "empty.pem", MW_BUNDLE_FMT_AUTO, "bundle is empty", 0, 0, 0, 0, 0, 0},
    {XB "key.pem", MW_BUNDLE_FMT_AUTO, "PEM block 1 is PRIVATE KEY, want CERTIFICATE", 0, 0, 0, 0,
     0, 0},
    {XB "not-pem.pem", MW_BUNDLE_FMT_AUTO, "neither JSON nor PEM", 0, 0, 0, 0, 0, 0},
    {XB "cert.pem", MW_BUNDLE_FMT_SPIFFE, "bundle JSON", 0, 0, 0, 0, 0, 0},
};

static bool row_agrees(const struct bundle_row *row, mw_result r, struct mw_bundle *b)
{
    if (row->want_err != NULL)
        return mw_failed(r) && strstr(mw_error_msg(), row->want_err) != NULL;
    if (mw_failed(r))
        return false;
    uint64_t seq = 0;
    int64_t refresh = 0;
    bool has_seq = mw_bundle_sequence(b, &seq);
    bool has_refresh = mw_bundle_refresh_hint(b, &refresh);
    return mw_bundle_x509_count(b) == row->x509 && mw_bundle_jwt_count(b) == row->jwt &&
           has_seq == (row->seq >= 0) && (!has_seq || (int64_t)seq == row->seq) &&
           has_refresh == (row->refresh >= 0) && (!has_refresh || refresh == row->refresh) &&
           mw_bundle_ignored(b) == row->ignored && mw_bundle_x5c_extra(b) == row->x5c_extra &&
           strcmp(mw_bundle_td(b), "domain.test") == 0;
}

static void test_testdata(void **state)
{
    (void)state;
    size_t agree = 0;
    for (size_t i = 0; i < MW_ARRAY_LEN(rows); i++) {
        struct mw_dynbuf data;
        mw_test_read(rows[i].file, &data);
        struct mw_bundle *b = NULL;
        mw_result r = mw_bundle_parse(mw_dynbuf_slice(&data), rows[i].fmt, "domain.test", &b, NULL);
        if (row_agrees(&rows[i], r, b))
            agree++;
        else
            print_message("DISAGREE %s (%s): %s\n", rows[i].file,
                          mw_bundle_format_name(rows[i].fmt),
                          mw_failed(r) ? mw_error_msg() : "accepted with other contents");
        mw_bundle_free(b);
        mw_dynbuf_free(&data);
    }
    print_message("bundle rows: %zu/%zu agree\n", agree, MW_ARRAY_LEN(rows));
    assert_int_equal(agree, MW_ARRAY_LEN(rows));
}

static void test_kids_and_facts(void **state)
{
    (void)state;
    struct mw_dynbuf data;
    mw_test_read(SB "spiffebundle_valid_2.json", &data);
    struct mw_bundle *b = NULL;
    enum mw_bundle_format fmt;
    mw_assert_ok(mw_bundle_parse(mw_dynbuf_slice(&data), MW_BUNDLE_FMT_AUTO, NULL, &b, &fmt));
    assert_int_equal(fmt, MW_BUNDLE_FMT_SPIFFE);
    assert_string_equal(mw_bundle_td(b), "");
    struct mw_jwt_key_info ki;
    mw_assert_ok(mw_bundle_jwt_info(b, 0, &ki));
    assert_string_equal(ki.kid, "IRsID4VIM3T11TsK43Ny1DgCD5UNWhva");
    assert_string_equal(ki.key_type, "EC");
    assert_string_equal(ki.curve, "P-256");
    struct mw_cert_info ci;
    mw_assert_ok(mw_bundle_x509_info(b, 0, &ci));
    assert_string_equal(ci.curve, "P-384");
    assert_true(ci.is_ca);
    mw_assert_fails(mw_bundle_jwt_info(b, 6, &ki), MW_E_INPUT);
    mw_bundle_free(b);
    mw_dynbuf_free(&data);
}

/* Write, parse again, write again: same authorities, same bytes. */
static void roundtrip(struct mw_bundle *b)
{
    struct mw_dynbuf out1, out2;
    mw_dynbuf_init(&out1, 1 << 20);
    mw_dynbuf_init(&out2, 1 << 20);
    mw_assert_ok(mw_bundle_write_jwks(b, &out1));
    struct mw_bundle *b2 = NULL;
    mw_assert_ok(mw_bundle_parse(mw_dynbuf_slice(&out1), MW_BUNDLE_FMT_SPIFFE,
                                 mw_bundle_td(b)[0] ? mw_bundle_td(b) : NULL, &b2, NULL));
    assert_int_equal(mw_bundle_x509_count(b2), mw_bundle_x509_count(b));
    assert_int_equal(mw_bundle_jwt_count(b2), mw_bundle_jwt_count(b));
    for (size_t i = 0; i < mw_bundle_x509_count(b); i++) {
        struct mw_dynbuf d1, d2;
        mw_dynbuf_init(&d1, 1 << 16);
        mw_dynbuf_init(&d2, 1 << 16);
        mw_assert_ok(mw_bundle_x509_der(b, i, &d1));
        mw_assert_ok(mw_bundle_x509_der(b2, i, &d2));
        assert_true(mw_slice_eq(mw_dynbuf_slice(&d1), mw_dynbuf_slice(&d2)));
        mw_dynbuf_free(&d1);
        mw_dynbuf_free(&d2);
    }
    for (size_t i = 0; i < mw_bundle_jwt_count(b); i++) {
        struct mw_jwt_key_info k1, k2;
        mw_assert_ok(mw_bundle_jwt_info(b, i, &k1));
        mw_assert_ok(mw_bundle_jwt_info(b2, i, &k2));
        assert_string_equal(k1.kid, k2.kid);
        assert_string_equal(k1.key_type, k2.key_type);
        assert_int_equal(k1.key_bits, k2.key_bits);
    }
    uint64_t s1 = 0, s2 = 0;
    assert_int_equal(mw_bundle_sequence(b, &s1), mw_bundle_sequence(b2, &s2));
    assert_int_equal(s1, s2);
    mw_assert_ok(mw_bundle_write_jwks(b2, &out2));
    assert_true(mw_slice_eq(mw_dynbuf_slice(&out1), mw_dynbuf_slice(&out2)));
    mw_bundle_free(b2);
    mw_dynbuf_free(&out1);
    mw_dynbuf_free(&out2);
}

static void test_roundtrip_testdata(void **state)
{
    (void)state;
    const char *files[] = {SB "spiffebundle_valid_1.json", SB "spiffebundle_valid_2.json",
                           SB "spiffebundle_valid_with_wit.json",
                           SB "spiffebundle_multiple_x509.json"};
    for (size_t i = 0; i < MW_ARRAY_LEN(files); i++) {
        struct mw_dynbuf data;
        mw_test_read(files[i], &data);
        struct mw_bundle *b = NULL;
        mw_assert_ok(
            mw_bundle_parse(mw_dynbuf_slice(&data), MW_BUNDLE_FMT_AUTO, "domain.test", &b, NULL));
        roundtrip(b);
        mw_bundle_free(b);
        mw_dynbuf_free(&data);
    }
}

static void add_spki(struct mw_bundle *b, const char *kid, EVP_PKEY *k)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    assert_true(n > 0);
    mw_assert_ok(mw_bundle_add_jwt_spki(b, kid, mw_slice_make(der, (size_t)n)));
    OPENSSL_free(der);
}

static void test_key_types(void **state)
{
    (void)state;
    struct mw_bundle *b = NULL;
    mw_assert_ok(mw_bundle_new("example.org", &b));
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    EVP_PKEY *p384 = EVP_EC_gen("P-384");
    EVP_PKEY *p521 = EVP_EC_gen("P-521");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(rsa);
    assert_non_null(p384);
    assert_non_null(p521);
    assert_non_null(ed);
    add_spki(b, "rsa", rsa);
    add_spki(b, "p384", p384);
    add_spki(b, "p521", p521);
    add_spki(b, "ed", ed);
    /* Same kid twice. */
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(ed, &der);
    mw_assert_fails(mw_bundle_add_jwt_spki(b, "rsa", mw_slice_make(der, (size_t)n)), MW_E_INPUT);
    OPENSSL_free(der);
    mw_bundle_set_sequence(b, 42);
    mw_bundle_set_refresh_hint(b, 300);
    roundtrip(b);
    struct mw_jwt_key_info ki;
    mw_assert_ok(mw_bundle_jwt_info(b, 2, &ki));
    assert_string_equal(ki.curve, "P-521");
    mw_assert_ok(mw_bundle_jwt_info(b, 3, &ki));
    assert_string_equal(ki.key_type, "Ed25519");
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(p521);
    EVP_PKEY_free(ed);
    mw_bundle_free(b);
}

struct json_case {
    const char *name;
    const char *json;
    const char *want_err; /* NULL: accepted */
    size_t jwt, ignored;
};

/* A P-256 point from jwks_valid_1.json, on the curve. */
#define EC_XY                                                                        \
    "\"crv\":\"P-256\",\"x\":\"ngLYQnlfF6GsojUwqtcEE3WgTNG2RUlsGhK73RNEl5k\",\"y\":" \
    "\"tKbiDSUSsQ3F1P7wteeHNXIcU-cx6CgSbroeQrQHTLM\""
#define EC_XY2                                                                       \
    "\"crv\":\"P-256\",\"x\":\"7MGOl06DP9df2u8oHY6lqYFIoQWzCj9UYlp-MFeEYeY\",\"y\":" \
    "\"PSLLy5Pg0_kNGFFXq_eeq9kYcGDM3MPHJ6ncteNOr6w\""

static void test_json_cases(void **state)
{
    (void)state;
    static const struct json_case cases[] = {
        {"ok", "{\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":\"a\"," EC_XY "}]}", NULL,
         1, 0},
        {"duplicate member",
         "{\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":\"a\",\"kid\":\"b\"," EC_XY "}]}",
         "duplicate", 0, 0},
        {"duplicate top-level member", "{\"keys\":[],\"keys\":[]}", "duplicate", 0, 0},
        {"duplicate kid",
         "{\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":\"a\"," EC_XY
         "},{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":\"a\"," EC_XY2 "}]}",
         "kid \"a\" is repeated", 0, 0},
        {"unknown kty ignored",
         "{\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"oct\",\"kid\":\"s\",\"k\":\"AAAA\"},"
         "{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":\"a\"," EC_XY "}]}",
         NULL, 1, 1},
        {"unknown use ignored",
         "{\"keys\":[{\"use\":\"enc\",\"kty\":\"EC\",\"kid\":\"x\"," EC_XY
         "},{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":\"a\"," EC_XY "}]}",
         NULL, 1, 1},
        {"unknown curve ignored",
         "{\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":\"k\",\"crv\":\"secp256k1\","
         "\"x\":\"AA\",\"y\":\"AA\"},{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":\"a\"," EC_XY
         "}]}",
         NULL, 1, 1},
        {"x509 entry without x5c ignored",
         "{\"keys\":[{\"use\":\"x509-svid\",\"kty\":\"EC\"," EC_XY
         "},{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":\"a\"," EC_XY "}]}",
         NULL, 1, 1},
        {"only ignored keys", "{\"keys\":[{\"use\":\"enc\",\"kty\":\"EC\"}]}", "no authorities", 0,
         0},
        {"point off the curve",
         "{\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":\"a\",\"crv\":\"P-256\","
         "\"x\":\"ngLYQnlfF6GsojUwqtcEE3WgTNG2RUlsGhK73RNEl5k\","
         "\"y\":\"tKbiDSUSsQ3F1P7wteeHNXIcU-cx6CgSbroeQrQHTLA\"}]}",
         "key 1", 0, 0},
        {"short coordinate",
         "{\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":\"a\",\"crv\":\"P-256\","
         "\"x\":\"AAAA\",\"y\":\"AAAA\"}]}",
         "coordinates must be 32 bytes", 0, 0},
        {"padded base64url",
         "{\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":\"a\",\"crv\":\"P-256\","
         "\"x\":\"ngLYQnlfF6GsojUwqtcEE3WgTNG2RUlsGhK73RNEl5k=\","
         "\"y\":\"tKbiDSUSsQ3F1P7wteeHNXIcU-cx6CgSbroeQrQHTLM\"}]}",
         "padding", 0, 0},
        {"small RSA",
         "{\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"AQAB\","
         "\"e\":\"AQAB\"}]}",
         "want >= 2048", 0, 0},
        {"RSA leading zero",
         "{\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"AAEA\","
         "\"e\":\"AQAB\"}]}",
         "leading zero", 0, 0},
        {"no kty", "{\"keys\":[{\"use\":\"jwt-svid\",\"kid\":\"a\"," EC_XY "}]}", "no \"kty\"", 0,
         0},
        {"empty kid", "{\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":\"\"," EC_XY "}]}",
         "kid is empty", 0, 0},
        {"kid not a string",
         "{\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":1," EC_XY "}]}",
         "kid is not a string", 0, 0},
        {"use not a string", "{\"keys\":[{\"use\":1,\"kty\":\"EC\",\"kid\":\"a\"," EC_XY "}]}",
         "\"use\" is not a string", 0, 0},
        {"keys not an array", "{\"keys\":{}}", "not an array", 0, 0},
        {"key not an object", "{\"keys\":[1]}", "key 1 is not an object", 0, 0},
        {"sequence negative",
         "{\"spiffe_sequence\":-1,\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":"
         "\"a\"," EC_XY "}]}",
         "negative", 0, 0},
        {"sequence a string",
         "{\"spiffe_sequence\":\"1\",\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":"
         "\"a\"," EC_XY "}]}",
         "not an integer", 0, 0},
        {"refresh hint a real",
         "{\"spiffe_refresh_hint\":1.5,\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"EC\",\"kid\":"
         "\"a\"," EC_XY "}]}",
         "not an integer", 0, 0},
        {"x5c not base64", "{\"keys\":[{\"use\":\"x509-svid\",\"kty\":\"EC\",\"x5c\":[\"!!!!\"]}]}",
         "x5c[0]", 0, 0},
        {"x5c garbage DER",
         "{\"keys\":[{\"use\":\"x509-svid\",\"kty\":\"EC\",\"x5c\":[\"AAAA\"]}]}",
         "malformed certificate", 0, 0},
        {"x5c value not a string",
         "{\"keys\":[{\"use\":\"x509-svid\",\"kty\":\"EC\",\"x5c\":[1]}]}", "not a string", 0, 0},
        {"not an object", "[]", "not an object", 0, 0},
        {"truncated", "{\"keys\":[", "bundle JSON", 0, 0},
        {"trailing garbage", "{\"keys\":[]} x", "bundle JSON", 0, 0},
        {"NUL in string", "{\"keys\":[{\"use\":\"jwt\\u0000svid\"}]}", "bundle JSON", 0, 0},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct mw_bundle *b = NULL;
        mw_result r = mw_bundle_parse(mw_slice_cstr(cases[i].json), MW_BUNDLE_FMT_AUTO,
                                      "example.org", &b, NULL);
        if (cases[i].want_err == NULL) {
            if (mw_failed(r))
                fail_msg("%s: %s", cases[i].name, mw_error_msg());
            assert_int_equal(mw_bundle_jwt_count(b), cases[i].jwt);
            assert_int_equal(mw_bundle_ignored(b), cases[i].ignored);
        } else {
            if (mw_ok(r))
                fail_msg("%s: accepted", cases[i].name);
            if (strstr(mw_error_msg(), cases[i].want_err) == NULL)
                fail_msg("%s: error \"%s\", want \"%s\"", cases[i].name, mw_error_msg(),
                         cases[i].want_err);
            assert_null(b);
        }
        mw_bundle_free(b);
    }
}

static void test_pem_cases(void **state)
{
    (void)state;
    struct mw_dynbuf cert, two;
    mw_test_read(XB "cert.pem", &cert);
    mw_dynbuf_init(&two, 1 << 16);
    mw_assert_ok(mw_dynbuf_add_slice(&two, mw_dynbuf_slice(&cert)));
    mw_assert_ok(mw_dynbuf_add_slice(&two, mw_dynbuf_slice(&cert)));
    struct mw_bundle *b = NULL;
    /* The same certificate twice. */
    mw_assert_fails(mw_bundle_parse(mw_dynbuf_slice(&two), MW_BUNDLE_FMT_AUTO, NULL, &b, NULL),
                    MW_E_INPUT);
    assert_non_null(strstr(mw_error_msg(), "PEM block 2 repeats X.509 authority 1"));
    /* Truncated PEM. */
    mw_assert_fails(
        mw_bundle_parse(mw_slice_make(cert.p, cert.n - 30), MW_BUNDLE_FMT_AUTO, NULL, &b, NULL),
        MW_E_INPUT);
    /* A PEM bundle written as a SPIFFE JWKS and read back. */
    mw_assert_ok(
        mw_bundle_parse(mw_dynbuf_slice(&cert), MW_BUNDLE_FMT_AUTO, "example.org", &b, NULL));
    roundtrip(b);
    mw_bundle_free(b);
    /* Bad trust domain names. */
    mw_assert_fails(
        mw_bundle_parse(mw_dynbuf_slice(&cert), MW_BUNDLE_FMT_AUTO, "Example.org", &b, NULL),
        MW_E_INPUT);
    mw_dynbuf_free(&cert);
    mw_dynbuf_free(&two);
}

static void test_load_file(void **state)
{
    (void)state;
    struct mw_bundle *b = NULL;
    enum mw_bundle_format fmt;
    mw_assert_ok(
        mw_bundle_load_file(mw_test_data(XB "certs.pem"), MW_BUNDLE_FMT_AUTO, NULL, &b, &fmt));
    assert_int_equal(fmt, MW_BUNDLE_FMT_PEM);
    mw_bundle_free(b);
    mw_assert_fails(
        mw_bundle_load_file("/nonexistent/bundle.json", MW_BUNDLE_FMT_AUTO, NULL, &b, &fmt),
        MW_E_NOTFOUND);
    mw_assert_fails(
        mw_bundle_load_file(mw_test_data(XB "empty.pem"), MW_BUNDLE_FMT_AUTO, NULL, &b, &fmt),
        MW_E_INPUT);
    assert_non_null(strstr(mw_error_msg(), "empty.pem: bundle is empty"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_testdata),           cmocka_unit_test(test_kids_and_facts),
        cmocka_unit_test(test_roundtrip_testdata), cmocka_unit_test(test_key_types),
        cmocka_unit_test(test_json_cases),         cmocka_unit_test(test_pem_cases),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
