/* JWT-SVIDs (JWT-SVID.md): tokens signed here with keys made here. */
#include "testutil.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include <meshward/spiffe.h>

#define NOW 1700000000

struct keys {
    EVP_PKEY *rsa, *p256, *p384, *p521, *ed;
    struct mw_bundle *bundle;
};

static void add_spki(struct mw_bundle *b, const char *kid, EVP_PKEY *k)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    assert_true(n > 0);
    mw_assert_ok(mw_bundle_add_jwt_spki(b, kid, mw_slice_make(der, (size_t)n)));
    OPENSSL_free(der);
}

static int setup(void **state)
{
    struct keys *k = calloc(1, sizeof(*k));
    k->rsa = EVP_RSA_gen(2048);
    k->p256 = EVP_EC_gen("P-256");
    k->p384 = EVP_EC_gen("P-384");
    k->p521 = EVP_EC_gen("P-521");
    k->ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (mw_failed(mw_bundle_new("example.org", &k->bundle)))
        return -1;
    add_spki(k->bundle, "rsa", k->rsa);
    add_spki(k->bundle, "p256", k->p256);
    add_spki(k->bundle, "p384", k->p384);
    add_spki(k->bundle, "p521", k->p521);
    add_spki(k->bundle, "ed", k->ed);
    *state = k;
    return 0;
}

static int teardown(void **state)
{
    struct keys *k = *state;
    EVP_PKEY_free(k->rsa);
    EVP_PKEY_free(k->p256);
    EVP_PKEY_free(k->p384);
    EVP_PKEY_free(k->p521);
    EVP_PKEY_free(k->ed);
    mw_bundle_free(k->bundle);
    free(k);
    return 0;
}

static void b64url(struct mw_dynbuf *out, const void *p, size_t n)
{
    mw_assert_ok(mw_b64_encode(mw_slice_make(p, n), MW_B64_URL, out));
}

/*
 * header.payload.signature, signed with key as alg says. ec_bytes > 0 turns
 * OpenSSL's DER ECDSA signature into JOSE r || s (RFC 7518 §3.4).
 */
static void make_token(struct mw_dynbuf *tok, const char *header, const char *payload,
                       EVP_PKEY *key, const char *md, int ec_bytes, bool pss)
{
    mw_dynbuf_init(tok, 1 << 16);
    b64url(tok, header, strlen(header));
    mw_assert_ok(mw_dynbuf_add_byte(tok, '.'));
    b64url(tok, payload, strlen(payload));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, key, NULL), 1);
    if (pss) {
        assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0);
    }
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, tok->p, tok->n), 1);
    EVP_MD_CTX_free(ctx);
    mw_assert_ok(mw_dynbuf_add_byte(tok, '.'));
    if (ec_bytes > 0) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
        assert_non_null(es);
        unsigned char raw[132];
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, ec_bytes), ec_bytes);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + ec_bytes, ec_bytes), ec_bytes);
        ECDSA_SIG_free(es);
        b64url(tok, raw, (size_t)ec_bytes * 2);
    } else {
        b64url(tok, sig, siglen);
    }
}

#define CLAIMS                                              \
    "{\"sub\":\"spiffe://example.org/ns/a/sa/"              \
    "b\",\"aud\":[\"svc-x\",\"svc-y\"],\"exp\":1700003600," \
    "\"iat\":1699999000}"

static void test_algorithms(void **state)
{
    struct keys *k = *state;
    struct {
        const char *alg, *kid, *md;
        EVP_PKEY *key;
        int ec;
        bool pss;
    } algs[] = {
        {"RS256", "rsa", "SHA256", k->rsa, 0, false},
        {"RS384", "rsa", "SHA384", k->rsa, 0, false},
        {"RS512", "rsa", "SHA512", k->rsa, 0, false},
        {"PS256", "rsa", "SHA256", k->rsa, 0, true},
        {"PS384", "rsa", "SHA384", k->rsa, 0, true},
        {"PS512", "rsa", "SHA512", k->rsa, 0, true},
        {"ES256", "p256", "SHA256", k->p256, 32, false},
        {"ES384", "p384", "SHA384", k->p384, 48, false},
        {"ES512", "p521", "SHA512", k->p521, 66, false},
    };
    struct mw_clock now = mw_clock_fixed(NOW);
    for (size_t i = 0; i < MW_ARRAY_LEN(algs); i++) {
        char hdr[128];
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", algs[i].alg,
                 algs[i].kid);
        struct mw_dynbuf tok;
        make_token(&tok, hdr, CLAIMS, algs[i].key, algs[i].md, algs[i].ec, algs[i].pss);
        struct mw_jwtsvid out;
        mw_result r = mw_jwtsvid_validate(mw_dynbuf_slice(&tok), k->bundle, "svc-y", &now, &out);
        if (mw_failed(r))
            fail_msg("%s: %s", algs[i].alg, mw_error_msg());
        assert_string_equal(out.sub.path, "/ns/a/sa/b");
        assert_string_equal(out.alg, algs[i].alg);
        assert_int_equal(out.exp, 1700003600);
        assert_true(out.has_iat);
        /* Change one signature character (not the last, whose low bits must be zero). */
        tok.p[tok.n - 10] = tok.p[tok.n - 10] == 'A' ? 'B' : 'A';
        mw_assert_fails(mw_jwtsvid_validate(mw_dynbuf_slice(&tok), k->bundle, "svc-y", &now, &out),
                        MW_E_VERIFY);
        mw_dynbuf_free(&tok);
    }
}

struct claim_case {
    const char *name;
    const char *header;
    const char *claims;
    enum mw_err want; /* MW_E_NONE: accepted */
    const char *fragment;
};

static void test_rules(void **state)
{
    struct keys *k = *state;
    static const char *es = "{\"alg\":\"ES256\",\"kid\":\"p256\"}";
    const struct claim_case cases[] = {
        {"ok, aud as a string", es,
         "{\"sub\":\"spiffe://example.org/w\",\"aud\":\"svc-x\",\"exp\":1700000001}", MW_E_NONE,
         NULL},
        {"typ JOSE", "{\"alg\":\"ES256\",\"kid\":\"p256\",\"typ\":\"JOSE\"}", CLAIMS, MW_E_NONE,
         NULL},
        {"typ other", "{\"alg\":\"ES256\",\"kid\":\"p256\",\"typ\":\"at+jwt\"}", CLAIMS, MW_E_INPUT,
         "typ"},
        {"expired", es, "{\"sub\":\"spiffe://example.org/w\",\"aud\":\"svc-x\",\"exp\":1700000000}",
         MW_E_EXPIRED, "expired at 2023-11-14T22:13:20Z"},
        {"no exp", es, "{\"sub\":\"spiffe://example.org/w\",\"aud\":\"svc-x\"}", MW_E_INPUT,
         "no \"exp\""},
        {"exp a string", es,
         "{\"sub\":\"spiffe://example.org/w\",\"aud\":\"svc-x\",\"exp\":\"1800000000\"}",
         MW_E_INPUT, "not a number"},
        {"exp fractional", es,
         "{\"sub\":\"spiffe://example.org/w\",\"aud\":\"svc-x\",\"exp\":1700000000.5}",
         MW_E_EXPIRED, "expired"},
        {"nbf in the future", es,
         "{\"sub\":\"spiffe://example.org/w\",\"aud\":\"svc-x\",\"exp\":1800000000,\"nbf\":"
         "1700000100}",
         MW_E_EXPIRED, "not valid until"},
        {"wrong audience", es,
         "{\"sub\":\"spiffe://example.org/w\",\"aud\":[\"svc-z\"],\"exp\":1800000000}", MW_E_VERIFY,
         "audience does not contain \"svc-x\""},
        {"audience prefix", es,
         "{\"sub\":\"spiffe://example.org/w\",\"aud\":\"svc-x2\",\"exp\":1800000000}", MW_E_VERIFY,
         "audience"},
        {"no aud", es, "{\"sub\":\"spiffe://example.org/w\",\"exp\":1800000000}", MW_E_INPUT,
         "no \"aud\""},
        {"aud empty array", es,
         "{\"sub\":\"spiffe://example.org/w\",\"aud\":[],\"exp\":1800000000}", MW_E_INPUT, "aud"},
        {"sub in another trust domain", es,
         "{\"sub\":\"spiffe://other.org/w\",\"aud\":\"svc-x\",\"exp\":1800000000}", MW_E_VERIFY,
         "bundle is for example.org"},
        {"sub not a SPIFFE ID", es,
         "{\"sub\":\"spiffe://example.org/w/\",\"aud\":\"svc-x\",\"exp\":1800000000}", MW_E_INPUT,
         "trailing_slash"},
        {"no sub", es, "{\"aud\":\"svc-x\",\"exp\":1800000000}", MW_E_INPUT, "no \"sub\""},
        {"duplicate claim", es,
         "{\"sub\":\"spiffe://example.org/w\",\"sub\":\"spiffe://example.org/v\",\"aud\":\"svc-x\","
         "\"exp\":1800000000}",
         MW_E_INPUT, "duplicate"},
        {"duplicate header member", "{\"alg\":\"ES256\",\"kid\":\"p256\",\"kid\":\"p256\"}", CLAIMS,
         MW_E_INPUT, "duplicate"},
        {"unknown kid", "{\"alg\":\"ES256\",\"kid\":\"nope\"}", CLAIMS, MW_E_VERIFY,
         "kid \"nope\" is not in the bundle"},
        {"no kid", "{\"alg\":\"ES256\"}", CLAIMS, MW_E_INPUT, "no \"kid\""},
        {"alg does not fit the key", "{\"alg\":\"ES384\",\"kid\":\"p256\"}", CLAIMS, MW_E_VERIFY,
         "needs a P-384 key"},
        {"RS alg with an EC key", "{\"alg\":\"RS256\",\"kid\":\"p256\"}", CLAIMS, MW_E_VERIFY,
         "needs an RSA key"},
        {"alg none", "{\"alg\":\"none\",\"kid\":\"p256\"}", CLAIMS, MW_E_VERIFY, "not allowed"},
        {"alg HS256", "{\"alg\":\"HS256\",\"kid\":\"p256\"}", CLAIMS, MW_E_VERIFY, "not allowed"},
        {"alg EdDSA", "{\"alg\":\"EdDSA\",\"kid\":\"ed\"}", CLAIMS, MW_E_VERIFY, "not allowed"},
        {"crit", "{\"alg\":\"ES256\",\"kid\":\"p256\",\"crit\":[\"b64\"],\"b64\":false}", CLAIMS,
         MW_E_UNSUPPORTED, "crit"},
        {"claims not an object", es, "[1]", MW_E_INPUT, "not a JSON object"},
    };
    struct mw_clock now = mw_clock_fixed(NOW);
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct mw_dynbuf tok;
        make_token(&tok, cases[i].header, cases[i].claims, k->p256, "SHA256", 32, false);
        struct mw_jwtsvid out;
        mw_result r = mw_jwtsvid_validate(mw_dynbuf_slice(&tok), k->bundle, "svc-x", &now, &out);
        if (cases[i].want == MW_E_NONE) {
            if (mw_failed(r))
                fail_msg("%s: %s", cases[i].name, mw_error_msg());
        } else {
            if (mw_ok(r))
                fail_msg("%s: accepted", cases[i].name);
            if (mw_error_code() != cases[i].want ||
                strstr(mw_error_msg(), cases[i].fragment) == NULL)
                fail_msg("%s: %s (%s), want %s with \"%s\"", cases[i].name,
                         mw_err_name(mw_error_code()), mw_error_msg(), mw_err_name(cases[i].want),
                         cases[i].fragment);
        }
        mw_dynbuf_free(&tok);
    }
}

static void test_malformed(void **state)
{
    struct keys *k = *state;
    struct mw_clock now = mw_clock_fixed(NOW);
    struct mw_jwtsvid out;
    struct mw_dynbuf tok;
    make_token(&tok, "{\"alg\":\"ES256\",\"kid\":\"p256\"}", CLAIMS, k->p256, "SHA256", 32, false);
    const char *bad[] = {
        "", "abc", "a.b", "a.b.c.d", "eyJ9.e30.", "!!!.e30.AAAA",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        mw_result r = mw_jwtsvid_validate(mw_slice_cstr(bad[i]), k->bundle, "svc-x", &now, &out);
        if (mw_ok(r))
            fail_msg("\"%s\" accepted", bad[i]);
    }
    /* Truncated signature, and a signature with a wrong length for ES256. */
    assert_true(mw_failed(
        mw_jwtsvid_validate(mw_slice_make(tok.p, tok.n - 3), k->bundle, "svc-x", &now, &out)));
    /* 2 characters off decode cleanly (86 -> 84), to a signature 1 byte short. */
    mw_assert_fails(
        mw_jwtsvid_validate(mw_slice_make(tok.p, tok.n - 2), k->bundle, "svc-x", &now, &out),
        MW_E_VERIFY);
    /* Payload swapped under the same signature. */
    size_t d1 = mw_slice_find(mw_dynbuf_slice(&tok), '.', 0);
    tok.p[d1 + 2] = tok.p[d1 + 2] == 'A' ? 'B' : 'A';
    mw_result r = mw_jwtsvid_validate(mw_dynbuf_slice(&tok), k->bundle, "svc-x", &now, &out);
    assert_true(mw_failed(r));
    /* No audience to check against is a caller bug, not a pass. */
    mw_assert_fails(mw_jwtsvid_validate(mw_dynbuf_slice(&tok), k->bundle, "", &now, &out),
                    MW_E_STATE);
    mw_dynbuf_free(&tok);

    /* A bundle of another trust domain holding the same key. */
    struct mw_bundle *other = NULL;
    mw_assert_ok(mw_bundle_new("other.org", &other));
    add_spki(other, "p256", k->p256);
    make_token(&tok, "{\"alg\":\"ES256\",\"kid\":\"p256\"}", CLAIMS, k->p256, "SHA256", 32, false);
    mw_assert_fails(mw_jwtsvid_validate(mw_dynbuf_slice(&tok), other, "svc-x", &now, &out),
                    MW_E_VERIFY);
    assert_non_null(strstr(mw_error_msg(), "bundle is for other.org"));
    mw_bundle_free(other);
    mw_dynbuf_free(&tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_algorithms),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
