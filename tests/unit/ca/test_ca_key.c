/* The file key backend and the common key interface. */
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <meshward/ca.h>

#include "ca/ca_internal.h"

static void write_key(const char *path, EVP_PKEY *key, unsigned mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void verify_sig(struct mw_ca_key *k, const EVP_MD *md)
{
    static const char msg[] = "to be signed";
    struct mw_dynbuf sig, spki;
    mw_dynbuf_init(&sig, 1024);
    mw_dynbuf_init(&spki, 4096);
    mw_assert_ok(mw_ca_key_sign(k, mw_slice_cstr(msg), &sig));
    mw_assert_ok(mw_ca_key_spki(k, &spki));
    const uint8_t *p = spki.p;
    MW_DEFER(EVP_PKEY) EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)spki.n);
    MW_DEFER(EVP_MD_CTX) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub), 1);
    assert_int_equal(EVP_DigestVerify(ctx, sig.p, sig.n, (const uint8_t *)msg, strlen(msg)), 1);
    mw_dynbuf_free(&sig);
    mw_dynbuf_free(&spki);
}

static void test_generate_and_load(void **state)
{
    (void)state;
    const char *dir = mw_test_tmpdir();
    char path[1100];
    snprintf(path, sizeof(path), "%s/k.pem", dir);
    struct mw_ca_key *k = NULL, *k2 = NULL;
    mw_assert_ok(mw_ca_key_generate_file(MW_CA_KEY_EC_P384, path, &k));
    assert_string_equal(mw_ca_key_backend(k), "file");
    assert_int_equal(mw_ca_key_type(k), MW_CA_KEY_EC_P384);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    verify_sig(k, EVP_sha384());
    mw_assert_ok(mw_ca_key_load_file(path, &k2));
    char a[65], b[65];
    mw_ca_key_id(k, a);
    mw_ca_key_id(k2, b);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 64);
    verify_sig(k2, EVP_sha384());
    /* Never overwrites a key. */
    struct mw_ca_key *k3 = NULL;
    mw_assert_fails(mw_ca_key_generate_file(MW_CA_KEY_EC_P256, path, &k3), MW_E_STATE);
    mw_ca_key_free(k);
    mw_ca_key_free(k2);
}

static void test_load_refusals(void **state)
{
    (void)state;
    const char *dir = mw_test_tmpdir();
    char path[1100];
    struct mw_ca_key *k = NULL;

    MW_DEFER(EVP_PKEY) EVP_PKEY *ec = EVP_EC_gen("P-256");
    snprintf(path, sizeof(path), "%s/group.pem", dir);
    write_key(path, ec, 0640);
    mw_assert_fails(mw_ca_key_load_file(path, &k), MW_E_PERM);
    snprintf(path, sizeof(path), "%s/world.pem", dir);
    write_key(path, ec, 0604);
    mw_assert_fails(mw_ca_key_load_file(path, &k), MW_E_PERM);
    snprintf(path, sizeof(path), "%s/ok.pem", dir);
    write_key(path, ec, 0600);
    mw_assert_ok(mw_ca_key_load_file(path, &k));
    verify_sig(k, EVP_sha256());
    mw_ca_key_free(k);
    k = NULL;

    struct {
        const char *name;
        EVP_PKEY *key;
        enum mw_err code;
        const char *msg;
    } cases[] = {
        {"rsa.pem", EVP_RSA_gen(2048), MW_E_UNSUPPORTED, "CA key type rsaEncryption"},
        {"ed.pem", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), MW_E_UNSUPPORTED, "CA key type"},
        {"p521.pem", EVP_EC_gen("P-521"), MW_E_UNSUPPORTED, "curve secp521r1"},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, cases[i].name);
        write_key(path, cases[i].key, 0600);
        EVP_PKEY_free(cases[i].key);
        mw_assert_fails(mw_ca_key_load_file(path, &k), cases[i].code);
        if (strstr(mw_error_msg(), cases[i].msg) == NULL)
            fail_msg("%s: \"%s\" lacks \"%s\"", cases[i].name, mw_error_msg(), cases[i].msg);
    }
    snprintf(path, sizeof(path), "%s/junk.pem", dir);
    FILE *f = fopen(path, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    chmod(path, 0600);
    mw_assert_fails(mw_ca_key_load_file(path, &k), MW_E_INPUT);
    snprintf(path, sizeof(path), "%s/missing.pem", dir);
    mw_assert_fails(mw_ca_key_load_file(path, &k), MW_E_NOTFOUND);
    assert_null(k);
}

static void test_type_names(void **state)
{
    (void)state;
    enum mw_ca_key_type t;
    mw_assert_ok(mw_ca_key_type_parse("ec-p256", &t));
    assert_int_equal(t, MW_CA_KEY_EC_P256);
    mw_assert_ok(mw_ca_key_type_parse("ec-p384", &t));
    assert_string_equal(mw_ca_key_type_name(t), "ec-p384");
    mw_assert_fails(mw_ca_key_type_parse("rsa-2048", &t), MW_E_UNSUPPORTED);
    mw_assert_fails(mw_ca_key_type_parse("", &t), MW_E_UNSUPPORTED);
}

/* A backend that signs with the wrong key (a broken token, a mixed-up label). */
static mw_result wrong_sign(void *impl, const uint8_t *digest, size_t len, struct mw_dynbuf *out)
{
    MW_DEFER(EVP_PKEY_CTX) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(impl, NULL);
    size_t n = 0;
    if (EVP_PKEY_sign_init(ctx) != 1 || EVP_PKEY_sign(ctx, NULL, &n, digest, len) != 1 ||
        mw_failed(mw_dynbuf_reserve(out, n)) ||
        EVP_PKEY_sign(ctx, out->p + out->n, &n, digest, len) != 1)
        return MW_FAILURE;
    out->n += n;
    return MW_SUCCESS;
}

static void wrong_free(void *impl)
{
    EVP_PKEY_free(impl);
}

static const struct mw_ca_key_ops wrong_ops = {"broken", wrong_sign, wrong_free};

static void test_wrong_signature_caught(void **state)
{
    (void)state;
    EVP_PKEY *real = EVP_EC_gen("P-256");
    EVP_PKEY *other = EVP_EC_gen("P-256");
    uint8_t *der = NULL;
    int n = i2d_PUBKEY(real, &der);
    const uint8_t *p = der;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, n);
    OPENSSL_free(der);
    EVP_PKEY_free(real);
    struct mw_ca_key *k = NULL;
    mw_assert_ok(mw_ca_key_wrap(&wrong_ops, other, MW_CA_KEY_EC_P256, pub, &k));
    MW_DEFER(X509) X509 *x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    X509_set_pubkey(x, pub);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 60);
    struct mw_dynbuf out;
    mw_dynbuf_init(&out, 1 << 16);
    mw_assert_fails(mw_ca_sign_cert_der(k, x, &out), MW_E_CRYPTO);
    assert_non_null(strstr(mw_error_msg(), "broken key's signature does not verify"));
    assert_int_equal(out.n, 0);
    X509 *cert = NULL;
    mw_assert_fails(mw_ca_sign_cert(k, x, &cert), MW_E_CRYPTO);
    assert_null(cert);
    mw_dynbuf_free(&out);
    mw_ca_key_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_and_load),
        cmocka_unit_test(test_load_refusals),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_wrong_signature_caught),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
