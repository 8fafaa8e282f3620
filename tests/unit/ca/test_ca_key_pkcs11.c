/*
 * The PKCS#11 backend against a real SoftHSM2 token in a temporary directory:
 * key generation on the token, login with a PIN file or variable, C_Sign,
 * the refusals, and a whole CA (root and intermediate) living on the token.
 */
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <meshward/ca.h>
#include <meshward/spiffe.h>

#include "base/mw_ossl.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN  "meshward-test"
#define T0     1790000000LL

MW_DEFINE_CLEANUP(X509_REQ, X509_REQ_free)

static char pin_file[1024], pin_file_open[1024];

static int setup(void **state)
{
    (void)state;
    if (access(MODULE, R_OK) != 0) {
        fprintf(stderr, "SoftHSM2 module %s is missing (apt-get install softhsm2)\n", MODULE);
        return -1;
    }
    const char *dir = mw_test_tmpdir();
    char conf[1100], tokens[1100], cmd[2400];
    snprintf(tokens, sizeof(tokens), "%s/tokens", dir);
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
    if (mkdir(tokens, 0700) != 0)
        return -1;
    FILE *f = fopen(conf, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens);
    fclose(f);
    setenv("SOFTHSM2_CONF", conf, 1);
    snprintf(cmd, sizeof(cmd),
             "softhsm2-util --init-token --free --label %s --pin 1234 --so-pin 5678 >/dev/null",
             TOKEN);
    if (system(cmd) != 0) {
        fprintf(stderr, "softhsm2-util --init-token failed\n");
        return -1;
    }
    snprintf(pin_file, sizeof(pin_file), "%s/pin", dir);
    f = fopen(pin_file, "w");
    fputs("1234\n", f);
    fclose(f);
    chmod(pin_file, 0600);
    snprintf(pin_file_open, sizeof(pin_file_open), "%s/pin-open", dir);
    f = fopen(pin_file_open, "w");
    fputs("1234\n", f);
    fclose(f);
    chmod(pin_file_open, 0644);
    return 0;
}

static struct mw_ca_pkcs11 p11(const char *label)
{
    return (struct mw_ca_pkcs11){
        .module = MODULE, .token_label = TOKEN, .key_label = label, .pin_file = pin_file};
}

static void check_signs(struct mw_ca_key *k)
{
    static const char msg[] = "tbs bytes";
    struct mw_dynbuf sig, spki;
    mw_dynbuf_init(&sig, 1024);
    mw_dynbuf_init(&spki, 4096);
    mw_assert_ok(mw_ca_key_sign(k, mw_slice_cstr(msg), &sig));
    mw_assert_ok(mw_ca_key_spki(k, &spki));
    const uint8_t *p = spki.p;
    MW_DEFER(EVP_PKEY) EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)spki.n);
    assert_non_null(pub);
    MW_DEFER(EVP_MD_CTX) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const EVP_MD *md = mw_ca_key_type(k) == MW_CA_KEY_EC_P384 ? EVP_sha384() : EVP_sha256();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub), 1);
    /* The token's r || s came back as a DER ECDSA-Sig-Value that OpenSSL accepts. */
    assert_int_equal(EVP_DigestVerify(ctx, sig.p, sig.n, (const uint8_t *)msg, strlen(msg)), 1);
    sig.p[sig.n - 1] ^= 1;
    assert_int_not_equal(EVP_DigestVerify(ctx, sig.p, sig.n, (const uint8_t *)msg, strlen(msg)), 1);
    mw_dynbuf_free(&sig);
    mw_dynbuf_free(&spki);
}

static void test_generate_open_sign(void **state)
{
    (void)state;
    struct mw_ca_pkcs11 p = p11("gen-p256");
    struct mw_ca_key *k = NULL, *k2 = NULL, *k3 = NULL;
    mw_assert_ok(mw_ca_key_generate_pkcs11(&p, MW_CA_KEY_EC_P256, &k));
    assert_string_equal(mw_ca_key_backend(k), "pkcs11");
    assert_int_equal(mw_ca_key_type(k), MW_CA_KEY_EC_P256);
    check_signs(k);
    /* Reopen by label, with the PIN from a variable this time; same key ID. */
    p.pin_file = NULL;
    setenv("MW_TEST_PIN", "1234", 1);
    p.pin_env = "MW_TEST_PIN";
    mw_assert_ok(mw_ca_key_open_pkcs11(&p, &k2));
    char id1[65], id2[65];
    mw_ca_key_id(k, id1);
    mw_ca_key_id(k2, id2);
    assert_string_equal(id1, id2);
    /* Two keys share the module; freeing one leaves the other working. */
    mw_ca_key_free(k);
    check_signs(k2);
    /* P-384. */
    struct mw_ca_pkcs11 p384 = p11("gen-p384");
    mw_assert_ok(mw_ca_key_generate_pkcs11(&p384, MW_CA_KEY_EC_P384, &k3));
    assert_int_equal(mw_ca_key_type(k3), MW_CA_KEY_EC_P384);
    check_signs(k3);
    mw_ca_key_free(k3);
    mw_ca_key_free(k2);
}

static void test_refusals(void **state)
{
    (void)state;
    struct mw_ca_key *k = NULL;
    struct mw_ca_pkcs11 p = p11("refuse");
    mw_assert_ok(mw_ca_key_generate_pkcs11(&p, MW_CA_KEY_EC_P256, &k));
    mw_ca_key_free(k);
    k = NULL;
    /* The label is taken. */
    mw_assert_fails(mw_ca_key_generate_pkcs11(&p, MW_CA_KEY_EC_P256, &k), MW_E_STATE);
    assert_non_null(strstr(mw_error_msg(), "already holds a key labelled \"refuse\""));
    /* A PIN file others can read. */
    struct mw_ca_pkcs11 q = p;
    q.pin_file = pin_file_open;
    mw_assert_fails(mw_ca_key_open_pkcs11(&q, &k), MW_E_PERM);
    /* A wrong PIN. */
    q.pin_file = NULL;
    setenv("MW_TEST_BADPIN", "9999", 1);
    q.pin_env = "MW_TEST_BADPIN";
    mw_assert_fails(mw_ca_key_open_pkcs11(&q, &k), MW_E_PERM);
    assert_non_null(strstr(mw_error_msg(), "CKR_PIN_INCORRECT"));
    /* No PIN at all; an unset variable. */
    q.pin_env = NULL;
    mw_assert_fails(mw_ca_key_open_pkcs11(&q, &k), MW_E_INPUT);
    q.pin_env = "MW_TEST_UNSET_PIN_VARIABLE";
    mw_assert_fails(mw_ca_key_open_pkcs11(&q, &k), MW_E_NOTFOUND);
    /* No such token, key, module. */
    q = p;
    q.token_label = "no-such-token";
    mw_assert_fails(mw_ca_key_open_pkcs11(&q, &k), MW_E_NOTFOUND);
    assert_non_null(strstr(mw_error_msg(), "no token labelled \"no-such-token\""));
    q = p;
    q.key_label = "no-such-key";
    mw_assert_fails(mw_ca_key_open_pkcs11(&q, &k), MW_E_NOTFOUND);
    q = p;
    q.module = "/nonexistent/libpkcs11.so";
    mw_assert_fails(mw_ca_key_open_pkcs11(&q, &k), MW_E_NOTFOUND);
    q = p;
    q.module = "/lib/x86_64-linux-gnu/libc.so.6";
    if (access(q.module, R_OK) == 0)
        mw_assert_fails(mw_ca_key_open_pkcs11(&q, &k), MW_E_INPUT);
    /* A wrong CKA_ID narrows the label to nothing. */
    q = p;
    q.key_id_hex = "00";
    mw_assert_fails(mw_ca_key_open_pkcs11(&q, &k), MW_E_NOTFOUND);
    assert_null(k);
}

static void test_ca_on_token(void **state)
{
    (void)state;
    const char *dir = mw_test_tmpdir();
    struct mw_clock clk = mw_clock_fixed(T0);
    struct mw_ca_pkcs11 p = p11("ca");
    struct mw_ca_init_opts o = {
        .trust_domain = "example.org", .dir = dir, .clock = &clk, .p11 = &p};
    mw_assert_ok(mw_ca_init(&o));
    /* No key files: both keys are on the token. */
    char path[1200];
    snprintf(path, sizeof(path), "%s/root.key", dir);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof(path), "%s/ca.yaml", dir);
    struct mw_ca *ca = NULL;
    mw_assert_ok(mw_ca_open(path, NULL, NULL, &ca));

    MW_DEFER(EVP_PKEY) EVP_PKEY *key = EVP_EC_gen("P-256");
    MW_DEFER(X509_REQ) X509_REQ *req = X509_REQ_new();
    X509_REQ_set_pubkey(req, key);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    uint8_t *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    struct mw_ca_svid s;
    mw_ca_svid_init(&s);
    struct mw_clock now = mw_clock_fixed(T0 + 60);
    mw_assert_ok(mw_ca_issue(ca, mw_slice_make(der, (size_t)n), "spiffe://example.org/ns/a/sa/b", 0,
                             NULL, &now, &s));
    OPENSSL_free(der);
    struct mw_x509svid *svid = NULL;
    mw_assert_ok(
        mw_x509svid_parse_der(mw_dynbuf_slice(&s.chain_der), mw_slice_make(NULL, 0), &svid));
    struct mw_dynbuf pem;
    mw_dynbuf_init(&pem, 1 << 16);
    mw_assert_ok(mw_ca_bundle_pem(ca, &pem));
    struct mw_bundle *b = NULL;
    mw_assert_ok(
        mw_bundle_parse(mw_dynbuf_slice(&pem), MW_BUNDLE_FMT_PEM, "example.org", &b, NULL));
    mw_assert_ok(mw_x509svid_verify(svid, b, &now));
    /* Rotation makes the next intermediate's key on the token too. */
    enum mw_ca_rotation done;
    mw_assert_ok(mw_ca_rotate(ca, &now, true, true, &done));
    assert_int_equal(done, MW_CA_ROTATE_ACTIVATED);
    mw_ca_svid_free(&s);
    mw_ca_free(ca);
    /* Reopen with a PIN override. */
    setenv("MW_TEST_PIN2", "1234", 1);
    mw_assert_ok(mw_ca_open(path, NULL, "MW_TEST_PIN2", &ca));
    struct mw_ca_key *k = NULL;
    struct mw_ca_pkcs11 q = p11("ca-intermediate-2");
    mw_assert_ok(mw_ca_key_open_pkcs11(&q, &k));
    mw_ca_key_free(k);
    mw_ca_free(ca);
    mw_bundle_free(b);
    mw_x509svid_free(svid);
    mw_dynbuf_free(&pem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_open_sign),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_ca_on_token),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
