/* Kubernetes service-account tokens: keys and tokens made here with OpenSSL. */
#include "testutil.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <string.h>

#include <meshward/ca_auth.h>

#define NOW 1795521600 /* 2026-11-24T12:00:00Z */

struct keys {
    EVP_PKEY *rsa, *ec, *rsa_small;
    char jwks[8192];
};

static struct keys K;

static void b64url(const void *p, size_t n, char *out, size_t cap)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 8192);
    mw_assert_ok(mw_b64_encode(mw_slice_make(p, n), MW_B64_URL, &b));
    assert_true(b.n < cap);
    memcpy(out, b.p, b.n + 1);
    mw_dynbuf_free(&b);
}

static void bn_b64(EVP_PKEY *k, const char *name, char *out, size_t cap)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, name, &bn), 1);
    unsigned char buf[1024];
    int n = BN_bn2bin(bn, buf);
    BN_free(bn);
    b64url(buf, (size_t)n, out, cap);
}

static void rsa_jwk(EVP_PKEY *k, const char *kid, char *out, size_t cap)
{
    char n[1024], e[64];
    bn_b64(k, OSSL_PKEY_PARAM_RSA_N, n, sizeof(n));
    bn_b64(k, OSSL_PKEY_PARAM_RSA_E, e, sizeof(e));
    snprintf(out, cap,
             "{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"RS256\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":"
             "\"%s\"}",
             kid, n, e);
}

static void ec_jwk(EVP_PKEY *k, const char *kid, char *out, size_t cap)
{
    unsigned char pt[65];
    size_t len = 0;
    assert_int_equal(
        EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &len), 1);
    assert_int_equal(len, 65);
    char x[64], y[64];
    b64url(pt + 1, 32, x, sizeof(x));
    b64url(pt + 33, 32, y, sizeof(y));
    snprintf(out, cap,
             "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}", kid, x,
             y);
}

static int setup(void **state)
{
    K.rsa = EVP_RSA_gen(2048);
    K.ec = EVP_EC_gen("P-256");
    K.rsa_small = EVP_RSA_gen(1024);
    if (K.rsa == NULL || K.ec == NULL || K.rsa_small == NULL)
        return -1;
    char r[2048], e[512];
    rsa_jwk(K.rsa, "rsa-1", r, sizeof(r));
    ec_jwk(K.ec, "ec-1", e, sizeof(e));
    /* An encryption key and an unsupported curve are skipped, not fatal. */
    snprintf(K.jwks, sizeof(K.jwks),
             "{\"keys\":[%s,%s,{\"kty\":\"oct\",\"kid\":\"sym\",\"k\":\"AAAA\"},"
             "{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"p384\",\"x\":\"AA\",\"y\":\"AA\"}]}",
             r, e);
    return 0;
}

static int teardown(void **state)
{
    EVP_PKEY_free(K.rsa);
    EVP_PKEY_free(K.ec);
    EVP_PKEY_free(K.rsa_small);
    return 0;
}

static struct mw_k8s_verifier *verifier(void)
{
    struct mw_k8s_config cfg = {.issuer = "https://kubernetes.default.svc.cluster.local",
                                .audience = "meshward-ca",
                                .trust_domain = "example.org",
                                .leeway_s = 60};
    struct mw_k8s_verifier *v = NULL;
    mw_assert_ok(mw_k8s_verifier_new(mw_slice_cstr(K.jwks), &cfg, &v));
    return v;
}

/* A compact JWS over header and claims, signed with key (NULL: sig_override or empty). */
static void make_token(const char *header, const char *claims, EVP_PKEY *key, bool raw_es,
                       struct mw_dynbuf *out)
{
    char h[1024], c[4096];
    b64url(header, strlen(header), h, sizeof(h));
    b64url(claims, strlen(claims), c, sizeof(c));
    mw_dynbuf_init(out, 16384);
    mw_assert_ok(mw_dynbuf_addf(out, "%s.%s", h, c));
    if (key == NULL) {
        mw_assert_ok(mw_dynbuf_add_byte(out, '.'));
        return;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, key, NULL), 1);
    unsigned char sig[1024];
    size_t sl = sizeof(sig);
    assert_int_equal(EVP_DigestSign(ctx, sig, &sl, out->p, out->n), 1);
    EVP_MD_CTX_free(ctx);
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC && raw_es) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sl);
        assert_non_null(es);
        unsigned char rs[64];
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32), 32);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32), 32);
        ECDSA_SIG_free(es);
        memcpy(sig, rs, 64);
        sl = 64;
    }
    char s[2048];
    b64url(sig, sl, s, sizeof(s));
    mw_assert_ok(mw_dynbuf_addf(out, ".%s", s));
}

static char *claims_std(char *buf, size_t cap, const char *aud, long exp, const char *ns,
                        const char *sa)
{
    snprintf(buf, cap,
             "{\"aud\":%s,\"exp\":%ld,\"iat\":%ld,\"nbf\":%ld,"
             "\"iss\":\"https://kubernetes.default.svc.cluster.local\","
             "\"kubernetes.io\":{\"namespace\":\"%s\",\"pod\":{\"name\":\"web-5d8f\","
             "\"uid\":\"0b7c6a1e-1111-2222-3333-444455556666\"},"
             "\"serviceaccount\":{\"name\":\"%s\",\"uid\":\"9a2b\"}},"
             "\"sub\":\"system:serviceaccount:%s:%s\"}",
             aud, exp, exp - 3600, exp - 3600, ns, sa, ns, sa);
    return buf;
}

static const char *RS = "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}";
static const char *ES = "{\"alg\":\"ES256\",\"kid\":\"ec-1\",\"typ\":\"JWT\"}";

static void verify_ok(const char *header, const char *claims, EVP_PKEY *key,
                      struct mw_k8s_identity *id)
{
    struct mw_k8s_verifier *v = verifier();
    struct mw_dynbuf t;
    make_token(header, claims, key, true, &t);
    struct mw_clock clk = mw_clock_fixed(NOW);
    mw_assert_ok(mw_k8s_token_verify(v, mw_dynbuf_slice(&t), &clk, id));
    mw_dynbuf_free(&t);
    mw_k8s_verifier_free(v);
}

static void verify_fails(const char *header, const char *claims, EVP_PKEY *key, bool raw_es,
                         enum mw_err code, const char *want_msg)
{
    struct mw_k8s_verifier *v = verifier();
    struct mw_dynbuf t;
    make_token(header, claims, key, raw_es, &t);
    struct mw_clock clk = mw_clock_fixed(NOW);
    struct mw_k8s_identity id;
    mw_assert_fails(mw_k8s_token_verify(v, mw_dynbuf_slice(&t), &clk, &id), code);
    if (want_msg != NULL && strstr(mw_error_msg(), want_msg) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", mw_error_msg(), want_msg);
    /* The token itself never appears in an error. */
    assert_null(strstr(mw_error_msg(), (const char *)t.p + t.n - 16));
    mw_dynbuf_free(&t);
    mw_k8s_verifier_free(v);
}

static void test_rs256_ok(void **state)
{
    char c[2048];
    struct mw_k8s_identity id;
    verify_ok(RS, claims_std(c, sizeof(c), "[\"x\",\"meshward-ca\"]", NOW + 600, "shop", "web"),
              K.rsa, &id);
    char uri[512];
    assert_true(mw_spiffe_id_format(&id.id, uri, sizeof(uri)));
    assert_string_equal(uri, "spiffe://example.org/ns/shop/sa/web");
    assert_string_equal(id.ns, "shop");
    assert_string_equal(id.sa, "web");
    assert_string_equal(id.pod_name, "web-5d8f");
    assert_string_equal(id.kid, "rsa-1");
    assert_string_equal(id.alg, "RS256");
    assert_int_equal(id.exp, NOW + 600);
}

static void test_es256_ok(void **state)
{
    char c[2048];
    struct mw_k8s_identity id;
    verify_ok(ES, claims_std(c, sizeof(c), "\"meshward-ca\"", NOW + 600, "a-b", "sa.with.dots"),
              K.ec, &id);
    char uri[512];
    assert_true(mw_spiffe_id_format(&id.id, uri, sizeof(uri)));
    assert_string_equal(uri, "spiffe://example.org/ns/a-b/sa/sa.with.dots");
    assert_string_equal(id.alg, "ES256");
}

static void test_sub_only(void **state)
{
    char c[1024];
    snprintf(c, sizeof(c),
             "{\"aud\":\"meshward-ca\",\"exp\":%d,\"iss\":\"https://kubernetes.default.svc.cluster."
             "local\",\"sub\":\"system:serviceaccount:ns1:sa1\"}",
             NOW + 60);
    struct mw_k8s_identity id;
    verify_ok(RS, c, K.rsa, &id);
    assert_string_equal(id.ns, "ns1");
    assert_string_equal(id.sa, "sa1");
    assert_string_equal(id.pod_name, "");
}

static void test_leeway(void **state)
{
    char c[2048];
    struct mw_k8s_identity id;
    /* Expired 30 s ago: inside the 60 s leeway. */
    verify_ok(RS, claims_std(c, sizeof(c), "\"meshward-ca\"", NOW - 30, "n", "s"), K.rsa, &id);
    /* Expired an hour ago: refused, and the message says when. */
    verify_fails(RS, claims_std(c, sizeof(c), "\"meshward-ca\"", NOW - 3600, "n", "s"), K.rsa, true,
                 MW_E_EXPIRED, "token expired at 2026-11-24T11:00:00Z");
}

static void test_time_claims(void **state)
{
    char c[1024];
    const char *iss = "https://kubernetes.default.svc.cluster.local";
    snprintf(c, sizeof(c),
             "{\"aud\":\"meshward-ca\",\"iss\":\"%s\",\"sub\":\"system:serviceaccount:a:b\"}", iss);
    verify_fails(RS, c, K.rsa, true, MW_E_INPUT, "no \"exp\"");
    snprintf(c, sizeof(c),
             "{\"aud\":\"meshward-ca\",\"iss\":\"%s\",\"exp\":%d,\"nbf\":%d,\"sub\":\"system:"
             "serviceaccount:a:b\"}",
             iss, NOW + 7200, NOW + 3600);
    verify_fails(RS, c, K.rsa, true, MW_E_EXPIRED, "not valid before 2026-11-24T13:00:00Z");
    snprintf(c, sizeof(c),
             "{\"aud\":\"meshward-ca\",\"iss\":\"%s\",\"exp\":%d,\"iat\":%d,\"sub\":\"system:"
             "serviceaccount:a:b\"}",
             iss, NOW + 7200, NOW + 3600);
    verify_fails(RS, c, K.rsa, true, MW_E_INPUT, "issued in the future");
    snprintf(c, sizeof(c),
             "{\"aud\":\"meshward-ca\",\"iss\":\"%s\",\"exp\":%d.5,\"sub\":\"system:"
             "serviceaccount:a:b\"}",
             iss, NOW + 7200);
    verify_fails(RS, c, K.rsa, true, MW_E_INPUT, "not an integer");
    snprintf(c, sizeof(c),
             "{\"aud\":\"meshward-ca\",\"iss\":\"%s\",\"exp\":-5,\"sub\":\"system:"
             "serviceaccount:a:b\"}",
             iss);
    verify_fails(RS, c, K.rsa, true, MW_E_INPUT, "out of range");
}

static void test_audience(void **state)
{
    char c[2048];
    verify_fails(RS, claims_std(c, sizeof(c), "[\"x\"]", NOW + 600, "n", "s"), K.rsa, true,
                 MW_E_VERIFY, "audience [x] does not include meshward-ca");
    verify_fails(RS, claims_std(c, sizeof(c), "\"other\"", NOW + 600, "n", "s"), K.rsa, true,
                 MW_E_VERIFY, "audience other does not include meshward-ca");
    verify_fails(RS, claims_std(c, sizeof(c), "[]", NOW + 600, "n", "s"), K.rsa, true, MW_E_INPUT,
                 "non-empty array");
    verify_fails(RS, claims_std(c, sizeof(c), "[1]", NOW + 600, "n", "s"), K.rsa, true, MW_E_INPUT,
                 "not a string");
    /* A prefix is not a match. */
    verify_fails(RS, claims_std(c, sizeof(c), "\"meshward-ca-2\"", NOW + 600, "n", "s"), K.rsa,
                 true, MW_E_VERIFY, "does not include");
}

static void test_issuer(void **state)
{
    char c[1024];
    snprintf(c, sizeof(c),
             "{\"aud\":\"meshward-ca\",\"iss\":\"https://evil\",\"exp\":%d,\"sub\":\"system:"
             "serviceaccount:a:b\"}",
             NOW + 60);
    verify_fails(RS, c, K.rsa, true, MW_E_VERIFY, "issuer https://evil is not");
}

static void test_algorithms(void **state)
{
    char c[2048];
    claims_std(c, sizeof(c), "\"meshward-ca\"", NOW + 600, "n", "s");
    verify_fails("{\"alg\":\"none\",\"kid\":\"rsa-1\"}", c, NULL, true, MW_E_VERIFY, NULL);
    verify_fails("{\"alg\":\"HS256\",\"kid\":\"rsa-1\"}", c, K.rsa, true, MW_E_VERIFY,
                 "alg HS256 is not allowed");
    verify_fails("{\"alg\":\"RS384\",\"kid\":\"rsa-1\"}", c, K.rsa, true, MW_E_VERIFY,
                 "not allowed");
    verify_fails("{\"alg\":\"PS256\",\"kid\":\"rsa-1\"}", c, K.rsa, true, MW_E_VERIFY,
                 "not allowed");
    /* alg and key type must agree: an RS256 header naming the EC key. */
    verify_fails("{\"alg\":\"RS256\",\"kid\":\"ec-1\"}", c, K.ec, true, MW_E_VERIFY,
                 "does not fit kid ec-1");
    verify_fails("{\"alg\":\"ES256\",\"kid\":\"rsa-1\"}", c, K.rsa, true, MW_E_VERIFY,
                 "does not fit kid rsa-1");
    /* ES256 with a DER signature instead of r || s (RFC 7518 §3.4). */
    verify_fails(ES, c, K.ec, false, MW_E_VERIFY, "want 64");
    verify_fails("{\"alg\":\"RS256\",\"kid\":\"abc\"}", c, K.rsa, true, MW_E_VERIFY,
                 "kid abc not in JWKS");
    verify_fails("{\"alg\":\"RS256\"}", c, K.rsa, true, MW_E_INPUT, "no \"kid\"");
    verify_fails("{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"crit\":[\"x\"]}", c, K.rsa, true,
                 MW_E_UNSUPPORTED, "crit");
    /* Signed by a key that is not the one the kid names. */
    EVP_PKEY *other = EVP_RSA_gen(2048);
    verify_fails(RS, c, other, true, MW_E_VERIFY, "signature does not verify");
    EVP_PKEY_free(other);
    EVP_PKEY *other_ec = EVP_EC_gen("P-256");
    verify_fails(ES, c, other_ec, true, MW_E_VERIFY, "signature does not verify");
    EVP_PKEY_free(other_ec);
}

static void test_tampered(void **state)
{
    char c[2048];
    struct mw_k8s_verifier *v = verifier();
    struct mw_dynbuf t;
    make_token(RS, claims_std(c, sizeof(c), "\"meshward-ca\"", NOW + 600, "n", "s"), K.rsa, true,
               &t);
    struct mw_clock clk = mw_clock_fixed(NOW);
    struct mw_k8s_identity id;
    /* Flip one character in the claims: the signature no longer covers them. */
    size_t dot = mw_slice_find(mw_dynbuf_slice(&t), '.', 0);
    t.p[dot + 5] = t.p[dot + 5] == 'A' ? 'B' : 'A';
    mw_assert_fails(mw_k8s_token_verify(v, mw_dynbuf_slice(&t), &clk, &id), MW_E_VERIFY);
    mw_dynbuf_free(&t);
    mw_k8s_verifier_free(v);
}

static void test_malformed(void **state)
{
    struct mw_k8s_verifier *v = verifier();
    struct mw_clock clk = mw_clock_fixed(NOW);
    struct mw_k8s_identity id;
    static const struct {
        const char *tok;
        enum mw_err code;
    } cases[] = {
        {"", MW_E_INPUT},
        {"abc", MW_E_INPUT},
        {"a.b", MW_E_INPUT},
        {"a.b.c.d", MW_E_INPUT},
        {"a.b.c.d.e", MW_E_INPUT},
        {"eyJhbGciOiJSUzI1NiJ9.e30.", MW_E_VERIFY},                      /* unsigned */
        {"!!!.e30.AAAA", MW_E_INPUT},                                    /* bad base64url */
        {"WzFd.e30.AAAA", MW_E_INPUT},                                   /* header is an array */
        {"eyJhbGciOiJSUzI1NiJ9=.e30.AAAA", MW_E_INPUT},                  /* padding */
        {"eyJhbGciOiJSUzI1NiIsImFsZyI6Im5vbmUifQ.e30.AAAA", MW_E_INPUT}, /* duplicate alg */
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        mw_result r = mw_k8s_token_verify(v, mw_slice_cstr(cases[i].tok), &clk, &id);
        if (mw_ok(r) || mw_error_code() != cases[i].code)
            fail_msg("case %zu (%s): got %s (%s)", i, cases[i].tok,
                     mw_ok(r) ? "ok" : mw_err_name(mw_error_code()), mw_error_msg());
    }
    char big[20000];
    memset(big, 'A', sizeof(big));
    mw_assert_fails(mw_k8s_token_verify(v, mw_slice_make(big, sizeof(big)), &clk, &id), MW_E_LIMIT);
    mw_k8s_verifier_free(v);
}

static void test_names(void **state)
{
    char c[2048];
    verify_fails(RS, claims_std(c, sizeof(c), "\"meshward-ca\"", NOW + 600, "Bad_NS", "s"), K.rsa,
                 true, MW_E_INPUT, "DNS-1123");
    verify_fails(RS, claims_std(c, sizeof(c), "\"meshward-ca\"", NOW + 600, "n", "a..b"), K.rsa,
                 true, MW_E_INPUT, "DNS-1123");
    verify_fails(RS, claims_std(c, sizeof(c), "\"meshward-ca\"", NOW + 600, "n", "../x"), K.rsa,
                 true, MW_E_INPUT, "DNS-1123");
    /* sub and kubernetes.io must agree. */
    snprintf(c, sizeof(c),
             "{\"aud\":\"meshward-ca\",\"exp\":%d,\"iss\":\"https://kubernetes.default.svc.cluster."
             "local\",\"kubernetes.io\":{\"namespace\":\"a\",\"serviceaccount\":{\"name\":\"b\"}},"
             "\"sub\":\"system:serviceaccount:a:admin\"}",
             NOW + 60);
    verify_fails(RS, c, K.rsa, true, MW_E_INPUT, "sub says a/admin but kubernetes.io says a/b");
    snprintf(c, sizeof(c),
             "{\"aud\":\"meshward-ca\",\"exp\":%d,\"iss\":\"https://kubernetes.default.svc.cluster."
             "local\",\"sub\":\"system:node:n1\"}",
             NOW + 60);
    verify_fails(RS, c, K.rsa, true, MW_E_INPUT, "not system:serviceaccount");
    snprintf(c, sizeof(c),
             "{\"aud\":\"meshward-ca\",\"exp\":%d,\"iss\":\"https://kubernetes.default.svc.cluster."
             "local\"}",
             NOW + 60);
    verify_fails(RS, c, K.rsa, true, MW_E_INPUT, "neither");

    static const struct {
        const char *s;
        bool label, subdomain;
    } names[] = {
        {"a", true, true},    {"a-b", true, true},   {"a.b", false, true}, {"-a", false, false},
        {"a-", false, false}, {"A", false, false},   {"", false, false},   {"a..b", false, false},
        {".a", false, false}, {"a_b", false, false}, {"0", true, true},    {"a.b-", false, false},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(names); i++) {
        assert_int_equal(mw_k8s_is_dns_label(mw_slice_cstr(names[i].s)), names[i].label);
        assert_int_equal(mw_k8s_is_dns_subdomain(mw_slice_cstr(names[i].s)), names[i].subdomain);
    }
    char l64[65];
    memset(l64, 'a', 64);
    l64[64] = '\0';
    assert_false(mw_k8s_is_dns_label(mw_slice_cstr(l64)));
    assert_true(mw_k8s_is_dns_label(mw_slice_make(l64, 63)));
}

static void test_jwks_errors(void **state)
{
    struct mw_k8s_config cfg = {.issuer = "i", .audience = "a", .trust_domain = "example.org"};
    struct mw_k8s_verifier *v = NULL;
    char small[2048], rsa[2048], buf[8192];
    rsa_jwk(K.rsa_small, "s", small, sizeof(small));
    rsa_jwk(K.rsa, "dup", rsa, sizeof(rsa));
    snprintf(buf, sizeof(buf), "{\"keys\":[%s]}", small);
    mw_assert_fails(mw_k8s_verifier_new(mw_slice_cstr(buf), &cfg, &v), MW_E_INPUT);
    assert_non_null(strstr(mw_error_msg(), "want >= 2048"));
    snprintf(buf, sizeof(buf), "{\"keys\":[%s,%s]}", rsa, rsa);
    mw_assert_fails(mw_k8s_verifier_new(mw_slice_cstr(buf), &cfg, &v), MW_E_INPUT);
    assert_non_null(strstr(mw_error_msg(), "kid dup twice"));
    mw_assert_fails(mw_k8s_verifier_new(mw_slice_cstr("{\"keys\":[]}"), &cfg, &v), MW_E_INPUT);
    mw_assert_fails(mw_k8s_verifier_new(mw_slice_cstr("{}"), &cfg, &v), MW_E_INPUT);
    mw_assert_fails(mw_k8s_verifier_new(mw_slice_cstr("{\"keys\":[{\"kty\":\"RSA\"}]}"), &cfg, &v),
                    MW_E_INPUT);
    mw_assert_fails(mw_k8s_verifier_new(mw_slice_cstr("{\"keys\":[{\"kty\":\"EC\",\"kid\":\"e\","
                                                      "\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":"
                                                      "\"AAAA\"}]}"),
                                        &cfg, &v),
                    MW_E_INPUT);
    mw_assert_fails(mw_k8s_verifier_new(mw_slice_cstr("not json"), &cfg, &v), MW_E_INPUT);
    /* Configuration errors. */
    struct mw_k8s_config bad = cfg;
    bad.audience = "";
    mw_assert_fails(mw_k8s_verifier_new(mw_slice_cstr(K.jwks), &bad, &v), MW_E_INPUT);
    bad = cfg;
    bad.leeway_s = 3600;
    mw_assert_fails(mw_k8s_verifier_new(mw_slice_cstr(K.jwks), &bad, &v), MW_E_INPUT);
    bad = cfg;
    bad.trust_domain = "Bad TD";
    mw_assert_fails(mw_k8s_verifier_new(mw_slice_cstr(K.jwks), &bad, &v), MW_E_INPUT);
    assert_null(v);
}

static void test_load_file(void **state)
{
    struct mw_k8s_config cfg = {.issuer = "i", .audience = "a", .trust_domain = "example.org"};
    char path[512];
    snprintf(path, sizeof(path), "%s/jwks.json", mw_test_tmpdir());
    mw_assert_ok(mw_file_write_atomic(path, mw_slice_cstr(K.jwks), 0644));
    struct mw_k8s_verifier *v = NULL;
    mw_assert_ok(mw_k8s_verifier_load(path, &cfg, &v));
    mw_k8s_verifier_free(v);
    v = NULL;
    mw_assert_ok(mw_file_write_atomic(path, mw_slice_cstr("{\"keys\":[]}"), 0644));
    mw_assert_fails(mw_k8s_verifier_load(path, &cfg, &v), MW_E_INPUT);
    assert_non_null(strstr(mw_error_msg(), path));
    snprintf(path, sizeof(path), "%s/missing.json", mw_test_tmpdir());
    mw_result r = mw_k8s_verifier_load(path, &cfg, &v);
    assert_true(mw_failed(r));
    assert_null(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rs256_ok),    cmocka_unit_test(test_es256_ok),
        cmocka_unit_test(test_sub_only),    cmocka_unit_test(test_leeway),
        cmocka_unit_test(test_time_claims), cmocka_unit_test(test_audience),
        cmocka_unit_test(test_issuer),      cmocka_unit_test(test_algorithms),
        cmocka_unit_test(test_tampered),    cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_names),       cmocka_unit_test(test_jwks_errors),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
