/*
 * The CA service's request parser and CSR pre-check. The service itself runs
 * end to end in tests/integration/test_ca_serve.sh and test_ca_crash.sh.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

#include <meshward/ca_service.h>

#include "testutil.h"

/* A PEM CSR for a fresh key of the given kind, DER into der (may be NULL). */
static char *make_csr(const char *alg, const char *param, struct mw_dynbuf *der)
{
    EVP_PKEY *key = NULL;
    if (strcmp(alg, "EC") == 0)
        key = EVP_EC_gen(param);
    else if (strcmp(alg, "RSA") == 0)
        key = EVP_RSA_gen((unsigned)strtoul(param, NULL, 10));
    else
        key = EVP_PKEY_Q_keygen(NULL, NULL, alg);
    assert_non_null(key);
    X509_REQ *req = X509_REQ_new();
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    const EVP_MD *md = strcmp(alg, "ED25519") == 0 ? NULL : EVP_sha256();
    assert_true(X509_REQ_sign(req, key, md) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509_REQ(b, req), 1);
    char *d;
    long n = BIO_get_mem_data(b, &d);
    char *pem = strndup(d, (size_t)n);
    if (der != NULL) {
        unsigned char *p = NULL;
        int len = i2d_X509_REQ(req, &p);
        assert_true(len > 0);
        mw_assert_ok(mw_dynbuf_add(der, p, (size_t)len));
        OPENSSL_free(p);
    }
    BIO_free(b);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return pem;
}

/* {"csr": pem, "credential": {...}} + extra members, with newlines escaped. */
static void body_with(struct mw_dynbuf *b, const char *pem, const char *cred, const char *extra)
{
    mw_dynbuf_reset(b);
    mw_assert_ok(mw_dynbuf_add_cstr(b, "{\"csr\":"));
    mw_assert_ok(mw_dynbuf_add_json_str(b, mw_slice_cstr(pem)));
    mw_assert_ok(mw_dynbuf_addf(b, ",\"credential\":%s%s}", cred, extra));
}

#define TOK "{\"kind\":\"join-token\",\"token\":\"mwjt_secret-token-value\"}"

static void test_parse_ok(void **state)
{
    char *pem = make_csr("EC", "P-256", NULL);
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1 << 20);
    body_with(&b, pem, TOK,
              ",\"image_digest\":\"sha256:"
              "1111111111111111111111111111111111111111111111111111111111111111\",\"ttl\":\"30m\"");
    struct mw_ca_svid_request r;
    mw_ca_svid_request_init(&r);
    mw_assert_ok(mw_ca_svid_request_parse(mw_dynbuf_slice(&b), &r));
    assert_int_equal(r.kind, MW_CA_CRED_JOIN);
    assert_true(mw_slice_eq_cstr(mw_dynbuf_slice(&r.token), "mwjt_secret-token-value"));
    assert_true(r.has_image);
    assert_int_equal(r.ttl, 1800);
    assert_true(r.csr_der.n > 50 && r.csr_der.p[0] == 0x30);
    mw_assert_ok(mw_ca_csr_check(mw_dynbuf_slice(&r.csr_der)));
    mw_ca_svid_request_free(&r);

    /* Optional members absent; k8s kind. */
    body_with(&b, pem, "{\"token\":\"a.b.c\",\"kind\":\"k8s-sat\"}", "");
    mw_ca_svid_request_init(&r);
    mw_assert_ok(mw_ca_svid_request_parse(mw_dynbuf_slice(&b), &r));
    assert_int_equal(r.kind, MW_CA_CRED_K8S);
    assert_false(r.has_image);
    assert_int_equal(r.ttl, 0);
    mw_ca_svid_request_free(&r);
    mw_dynbuf_free(&b);
    free(pem);
}

static const struct {
    const char *name;
    const char *cred;  /* NULL: the body is `extra` alone */
    const char *extra; /* appended members, or the whole body */
    enum mw_err code;
    const char *says;
} bad_cases[] = {
    {"empty", NULL, "", MW_E_INPUT, "empty"},
    {"truncated", NULL, "{\"csr\":\"-----BEGIN", MW_E_INPUT, "not valid JSON"},
    {"array", NULL, "[1]", MW_E_INPUT, "JSON object"},
    {"not json", NULL, "csr=abc", MW_E_INPUT, "not valid JSON"},
    {"duplicate", TOK, ",\"ttl\":\"1h\",\"ttl\":\"2h\"", MW_E_INPUT, "not valid JSON"},
    {"duplicate in credential", "{\"kind\":\"join-token\",\"token\":\"a\",\"token\":\"b\"}", "",
     MW_E_INPUT, "not valid JSON"},
    {"unknown member", TOK, ",\"spiffe_id\":\"spiffe://td/admin\"", MW_E_INPUT,
     "unknown member \"spiffe_id\""},
    {"unknown credential member", "{\"kind\":\"join-token\",\"token\":\"a\",\"id\":1}", "",
     MW_E_INPUT, "credential: unknown member \"id\""},
    {"credential not object", "\"mwjt_x\"", "", MW_E_INPUT, "credential must be an object"},
    {"kind wrong", "{\"kind\":\"password\",\"token\":\"a\"}", "", MW_E_INPUT, "credential.kind"},
    {"kind number", "{\"kind\":1,\"token\":\"a\"}", "", MW_E_INPUT,
     "credential.kind must be a string"},
    {"token number", "{\"kind\":\"join-token\",\"token\":5}", "", MW_E_INPUT,
     "credential.token must be a string"},
    {"token empty", "{\"kind\":\"join-token\",\"token\":\"\"}", "", MW_E_INPUT, "empty"},
    {"token missing", "{\"kind\":\"join-token\"}", "", MW_E_INPUT, "credential.token is missing"},
    {"kind missing", "{\"token\":\"x\"}", "", MW_E_INPUT, "credential.kind is missing"},
    {"ttl number", TOK, ",\"ttl\":3600", MW_E_INPUT, "ttl must be a string"},
    {"ttl bad", TOK, ",\"ttl\":\"forever\"", MW_E_INPUT, "ttl"},
    {"ttl zero", TOK, ",\"ttl\":\"0s\"", MW_E_INPUT, "more than 0"},
    {"ttl too long", TOK, ",\"ttl\":\"31d\"", MW_E_INPUT, "ttl"},
    {"image bad", TOK, ",\"image_digest\":\"sha256:abc\"", MW_E_INPUT, "image_digest"},
    {"image null", TOK, ",\"image_digest\":null", MW_E_INPUT, "image_digest must be a string"},
    {"deep", TOK, ",\"ttl\":[[[[[[1]]]]]]", MW_E_LIMIT, "not valid JSON"},
};

static void test_parse_rejects(void **state)
{
    char *pem = make_csr("EC", "P-256", NULL);
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1 << 20);
    for (size_t i = 0; i < MW_ARRAY_LEN(bad_cases); i++) {
        if (bad_cases[i].cred == NULL) {
            mw_dynbuf_reset(&b);
            mw_assert_ok(mw_dynbuf_add_cstr(&b, bad_cases[i].extra));
        } else {
            body_with(&b, pem, bad_cases[i].cred, bad_cases[i].extra);
        }
        struct mw_ca_svid_request r;
        mw_ca_svid_request_init(&r);
        mw_result res = mw_ca_svid_request_parse(mw_dynbuf_slice(&b), &r);
        if (mw_ok(res))
            fail_msg("case %s: accepted", bad_cases[i].name);
        if (mw_error_code() != bad_cases[i].code ||
            strstr(mw_error_msg(), bad_cases[i].says) == NULL)
            fail_msg("case %s: %s (%s), want %s with \"%s\"", bad_cases[i].name,
                     mw_err_name(mw_error_code()), mw_error_msg(), mw_err_name(bad_cases[i].code),
                     bad_cases[i].says);
        /* No message ever quotes the token. */
        assert_null(strstr(mw_error_msg(), "secret-token-value"));
        mw_ca_svid_request_free(&r);
    }
    mw_dynbuf_free(&b);
    free(pem);
}

static void test_parse_csr_pem(void **state)
{
    char *pem = make_csr("EC", "P-256", NULL);
    char *two = NULL;
    assert_true(asprintf(&two, "%s%s", pem, pem) > 0);
    char *junk = NULL;
    assert_true(asprintf(&junk, "hello\n%s", pem) > 0);
    char *cert = strdup(pem);
    memcpy(strstr(cert, "CERTIFICATE REQUEST"), "CERTIFICATE  REQUEST", 19);
    const struct {
        const char *pem;
        const char *says;
    } cases[] = {
        {"", "csr is empty"},
        {"   \n", "csr is empty"},
        {two, "more than one PEM block"},
        {junk, "not a PEM CERTIFICATE REQUEST"},
        {cert, "not a PEM CERTIFICATE REQUEST"},
        {"-----BEGIN CERTIFICATE REQUEST-----\nMIIB!!\n-----END CERTIFICATE REQUEST-----\n",
         "PEM body"},
        {"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n", "does not end"},
        /* fuzz_svid_request: a block with nothing inside decoded to an empty CSR. */
        {"-----BEGIN CERTIFICATE REQUEST----------END CERTIFICATE REQUEST-----\n",
         "the PEM block is empty"},
        {"-----BEGIN CERTIFICATE REQUEST-----\n\n-----END CERTIFICATE REQUEST-----",
         "the PEM block is empty"},
    };
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1 << 20);
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        body_with(&b, cases[i].pem, TOK, "");
        struct mw_ca_svid_request r;
        mw_ca_svid_request_init(&r);
        mw_assert_fails(mw_ca_svid_request_parse(mw_dynbuf_slice(&b), &r), MW_E_INPUT);
        if (strstr(mw_error_msg(), cases[i].says) == NULL)
            fail_msg("csr case %zu: \"%s\", want \"%s\"", i, mw_error_msg(), cases[i].says);
        mw_ca_svid_request_free(&r);
    }
    /* Surrounding whitespace is fine. */
    char *spaced = NULL;
    assert_true(asprintf(&spaced, "\n  %s\n\n", pem) > 0);
    body_with(&b, spaced, TOK, "");
    struct mw_ca_svid_request r;
    mw_ca_svid_request_init(&r);
    mw_assert_ok(mw_ca_svid_request_parse(mw_dynbuf_slice(&b), &r));
    mw_ca_svid_request_free(&r);
    free(spaced);
    free(two);
    free(junk);
    free(cert);
    free(pem);
    mw_dynbuf_free(&b);
}

static void test_parse_oversized(void **state)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, MW_CA_SVID_REQUEST_MAX * 2);
    mw_assert_ok(mw_dynbuf_add_cstr(&b, "{\"csr\":\""));
    while (b.n < MW_CA_SVID_REQUEST_MAX)
        mw_assert_ok(mw_dynbuf_add_byte(&b, 'a'));
    mw_assert_ok(mw_dynbuf_add_cstr(&b, "\"}"));
    struct mw_ca_svid_request r;
    mw_ca_svid_request_init(&r);
    mw_assert_fails(mw_ca_svid_request_parse(mw_dynbuf_slice(&b), &r), MW_E_LIMIT);
    assert_non_null(strstr(mw_error_msg(), "more than"));
    mw_ca_svid_request_free(&r);
    mw_dynbuf_free(&b);
}

static void test_csr_check(void **state)
{
    struct {
        const char *alg, *param;
        enum mw_err code; /* MW_E_NONE: accepted */
        const char *says;
    } cases[] = {
        {"EC", "P-256", MW_E_NONE, NULL},
        {"EC", "P-384", MW_E_NONE, NULL},
        {"RSA", "2048", MW_E_NONE, NULL},
        {"EC", "P-521", MW_E_UNSUPPORTED, "secp521r1"},
        {"RSA", "1024", MW_E_UNSUPPORTED, "1024 bits is too small"},
        {"ED25519", NULL, MW_E_UNSUPPORTED, "key type Ed25519"},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct mw_dynbuf der;
        mw_dynbuf_init(&der, MW_CA_CSR_MAX);
        free(make_csr(cases[i].alg, cases[i].param, &der));
        mw_result r = mw_ca_csr_check(mw_dynbuf_slice(&der));
        if (cases[i].code == MW_E_NONE) {
            if (mw_failed(r))
                fail_msg("csr %zu refused: %s", i, mw_error_msg());
        } else if (mw_ok(r) || mw_error_code() != cases[i].code ||
                   strstr(mw_error_msg(), cases[i].says) == NULL) {
            fail_msg("csr %zu: %s, want \"%s\"", i, mw_ok(r) ? "accepted" : mw_error_msg(),
                     cases[i].says);
        }
        if (i == 0) {
            /* Tampered signature: proof of possession fails. */
            der.p[der.n - 3] ^= 1;
            mw_assert_fails(mw_ca_csr_check(mw_dynbuf_slice(&der)), MW_E_VERIFY);
            der.p[der.n - 3] ^= 1;
            /* Trailing bytes, truncation, empty. */
            mw_assert_ok(mw_dynbuf_add_byte(&der, 0));
            mw_assert_fails(mw_ca_csr_check(mw_dynbuf_slice(&der)), MW_E_INPUT);
            mw_assert_fails(mw_ca_csr_check(mw_slice_make(der.p, der.n - 10)), MW_E_INPUT);
            mw_assert_fails(mw_ca_csr_check(mw_slice_make(der.p, 0)), MW_E_INPUT);
        }
        mw_dynbuf_free(&der);
    }
}

static void test_renew_parse(void **state)
{
    char *pem = make_csr("EC", "P-256", NULL);
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1 << 20);
    mw_assert_ok(mw_dynbuf_add_cstr(&b, "{\"csr\":"));
    mw_assert_ok(mw_dynbuf_add_json_str(&b, mw_slice_cstr(pem)));
    mw_assert_ok(mw_dynbuf_add_cstr(&b, ",\"ttl\":\"90s\"}"));
    struct mw_ca_svid_request r;
    mw_ca_svid_request_init(&r);
    mw_assert_ok(mw_ca_svid_renew_request_parse(mw_dynbuf_slice(&b), &r));
    assert_int_equal(r.ttl, 90);
    assert_true(r.csr_der.n > 0);
    assert_int_equal(r.token.n, 0);
    mw_ca_svid_request_free(&r);

    struct mw_dynbuf csr;
    mw_dynbuf_init(&csr, 1 << 20);
    mw_assert_ok(mw_dynbuf_add_json_str(&csr, mw_slice_cstr(pem)));
    const char *c = mw_dynbuf_cstr(&csr);
    char *cases[8][2];
    size_t n = 0;
#define CASE(says, fmt, ...)                                       \
    do {                                                           \
        assert_true(asprintf(&cases[n][0], fmt, __VA_ARGS__) > 0); \
        cases[n++][1] = (says);                                    \
    } while (0)
    CASE("unknown member \"credential\"", "{\"csr\":%s,\"credential\":{}}", c);
    CASE("unknown member \"image_digest\"", "{\"csr\":%s,\"image_digest\":\"x\"}", c);
    CASE("not valid JSON", "{\"csr\":%s,\"csr\":%s}", c, c);
    CASE("csr is missing", "{\"ttl\":\"1h\"%s}", "");
    CASE("ttl must be a string", "{\"csr\":%s,\"ttl\":3600}", c);
    CASE("must be a JSON object", "[%s]", c);
    CASE("not valid JSON", "{\"csr\":%s", c);
    CASE("ttl must be more than 0", "{\"csr\":%s,\"ttl\":\"0s\"}", c);
#undef CASE
    for (size_t i = 0; i < n; i++) {
        mw_ca_svid_request_init(&r);
        mw_assert_fails(mw_ca_svid_renew_request_parse(mw_slice_cstr(cases[i][0]), &r), MW_E_INPUT);
        if (strstr(mw_error_msg(), cases[i][1]) == NULL)
            fail_msg("renew case %zu: \"%s\", want \"%s\"", i, mw_error_msg(), cases[i][1]);
        mw_ca_svid_request_free(&r);
        free(cases[i][0]);
    }
    /* Empty and oversized. */
    mw_ca_svid_request_init(&r);
    mw_assert_fails(mw_ca_svid_renew_request_parse(mw_slice_make("", 0), &r), MW_E_INPUT);
    mw_dynbuf_reset(&b);
    while (b.n <= MW_CA_SVID_REQUEST_MAX)
        mw_assert_ok(mw_dynbuf_add_byte(&b, ' '));
    mw_assert_fails(mw_ca_svid_renew_request_parse(mw_dynbuf_slice(&b), &r), MW_E_LIMIT);
    mw_ca_svid_request_free(&r);
    mw_dynbuf_free(&csr);
    mw_dynbuf_free(&b);
    free(pem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),      cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_csr_pem), cmocka_unit_test(test_parse_oversized),
        cmocka_unit_test(test_csr_check),     cmocka_unit_test(test_renew_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
