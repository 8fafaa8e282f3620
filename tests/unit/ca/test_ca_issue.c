/* X.509-SVID issuance: what the leaf holds, what is refused, and that it validates. */
#include "testutil.h"

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <meshward/ca.h>
#include <meshward/spiffe.h>

#include "base/mw_ossl.h"

#define T0  1790000000LL
#define TD  "example.org"
#define SID "spiffe://example.org/ns/prod/sa/web"

MW_DEFINE_CLEANUP(X509_REQ, X509_REQ_free)

static char config[1024];

/* One CA for the whole file: root 10 y, intermediate 1 y, made at T0. */
static int setup(void **state)
{
    const char *dir = mw_test_tmpdir();
    struct mw_clock clk = mw_clock_fixed(T0);
    struct mw_ca_init_opts o = {.trust_domain = TD, .dir = dir, .clock = &clk};
    if (mw_failed(mw_ca_init(&o))) {
        fprintf(stderr, "mw_ca_init: %s\n", mw_error_msg());
        return -1;
    }
    snprintf(config, sizeof(config), "%s/ca.yaml", dir);
    struct mw_ca *ca = NULL;
    if (mw_failed(mw_ca_open(config, NULL, NULL, &ca))) {
        fprintf(stderr, "mw_ca_open: %s\n", mw_error_msg());
        return -1;
    }
    *state = ca;
    return 0;
}

static int teardown(void **state)
{
    mw_ca_free(*state);
    return 0;
}

static EVP_PKEY *gen(const char *kind)
{
    if (strcmp(kind, "p256") == 0)
        return EVP_EC_gen("P-256");
    if (strcmp(kind, "p384") == 0)
        return EVP_EC_gen("P-384");
    if (strcmp(kind, "p521") == 0)
        return EVP_EC_gen("P-521");
    if (strcmp(kind, "rsa2048") == 0)
        return EVP_RSA_gen(2048);
    if (strcmp(kind, "rsa1024") == 0)
        return EVP_RSA_gen(1024);
    if (strcmp(kind, "ed25519") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return NULL;
}

/* A CSR for key asking for a DNS name (which the CA must ignore). */
static void make_csr(EVP_PKEY *key, struct mw_dynbuf *out)
{
    MW_DEFER(X509_REQ) X509_REQ *req = X509_REQ_new();
    X509_NAME *n = X509_REQ_get_subject_name(req);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const uint8_t *)"evil", -1, -1, 0);
    X509_REQ_set_pubkey(req, key);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *ext =
        X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
                            "DNS:evil.example,URI:spiffe://example.org/ns/kube-system/sa/admin");
    sk_X509_EXTENSION_push(exts, ext);
    X509_REQ_add_extensions(req, exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    const EVP_MD *md = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    assert_true(X509_REQ_sign(req, key, md) > 0);
    uint8_t *der = NULL;
    int len = i2d_X509_REQ(req, &der);
    assert_true(len > 0);
    mw_assert_ok(mw_dynbuf_add(out, der, (size_t)len));
    OPENSSL_free(der);
}

static X509 *leaf_of(const struct mw_ca_svid *s)
{
    const uint8_t *p = s->leaf_der.p;
    X509 *x = d2i_X509(NULL, &p, (long)s->leaf_der.n);
    assert_non_null(x);
    return x;
}

static struct mw_bundle *bundle_of(struct mw_ca *ca)
{
    struct mw_dynbuf j;
    mw_dynbuf_init(&j, 1 << 20);
    mw_assert_ok(mw_ca_bundle_jwks(ca, &j));
    struct mw_bundle *b = NULL;
    mw_assert_ok(mw_bundle_parse(mw_dynbuf_slice(&j), MW_BUNDLE_FMT_SPIFFE, TD, &b, NULL));
    mw_dynbuf_free(&j);
    return b;
}

static void validate(struct mw_ca *ca, const struct mw_ca_svid *s, int64_t at)
{
    struct mw_x509svid *svid = NULL;
    mw_assert_ok(
        mw_x509svid_parse_der(mw_dynbuf_slice(&s->chain_der), mw_slice_make(NULL, 0), &svid));
    assert_string_equal(mw_x509svid_id(svid)->path, "/ns/prod/sa/web");
    assert_int_equal(mw_x509svid_chain_len(svid), 2);
    struct mw_bundle *b = bundle_of(ca);
    struct mw_clock clk = mw_clock_fixed(at);
    mw_assert_ok(mw_x509svid_verify(svid, b, &clk));
    mw_bundle_free(b);
    mw_x509svid_free(svid);
}

static void issue_ok(void **state, const char *kind, bool rsa)
{
    struct mw_ca *ca = *state;
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = gen(kind);
    struct mw_dynbuf csr;
    mw_dynbuf_init(&csr, 1 << 16);
    make_csr(key, &csr);
    struct mw_clock clk = mw_clock_fixed(T0 + 100);
    struct mw_ca_svid s;
    mw_ca_svid_init(&s);
    mw_assert_ok(mw_ca_issue(ca, mw_dynbuf_slice(&csr), SID, 0, NULL, &clk, &s));
    assert_int_equal(s.not_before, T0 + 90);
    assert_int_equal(s.not_after, T0 + 100 + 3600);
    assert_int_equal(strlen(s.ca_key_id), 64);
    assert_true(strlen(s.serial) > 16);

    MW_DEFER(X509) X509 *x = leaf_of(&s);
    /* Exactly one SAN: the URI given by the caller; the CSR's names are gone. */
    MW_DEFER(GENERAL_NAMES)
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
    const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, 0);
    assert_int_equal(gn->type, GEN_URI);
    assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier), SID);
    assert_int_equal(X509_check_ca(x), 0);
    uint32_t ku = X509_get_key_usage(x);
    assert_true(ku & KU_DIGITAL_SIGNATURE);
    assert_false(ku & (KU_KEY_CERT_SIGN | KU_CRL_SIGN | KU_KEY_AGREEMENT));
    assert_int_equal(!!(ku & KU_KEY_ENCIPHERMENT), rsa);
    uint32_t eku = X509_get_extended_key_usage(x);
    assert_true((eku & XKU_SSL_SERVER) && (eku & XKU_SSL_CLIENT));
    assert_non_null(X509_get0_authority_key_id(x));
    char subj[128];
    X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
    assert_string_equal(subj, "/O=SPIFFE");
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), key), 1);
    /* The log's facts: SHA-256 of the SPKI, the serial. */
    uint8_t *spki = NULL, h[32];
    int spki_len = i2d_PUBKEY(key, &spki);
    EVP_Digest(spki, (size_t)spki_len, h, NULL, EVP_sha256(), NULL);
    OPENSSL_free(spki);
    assert_memory_equal(h, s.spki_sha256, 32);
    MW_DEFER(BIGNUM) BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *serial_hex = BN_bn2hex(serial);
    assert_int_equal(strcasecmp(serial_hex[0] == '0' ? serial_hex + 1 : serial_hex, s.serial), 0);
    OPENSSL_free(serial_hex);
    /* chain_pem is the leaf then the intermediate, the same certificates as the DER. */
    MW_DEFER(BIO) BIO *bio = BIO_new_mem_buf(s.chain_pem.p, (int)s.chain_pem.n);
    MW_DEFER(X509) X509 *pem_leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    MW_DEFER(X509) X509 *pem_inter = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    assert_non_null(pem_leaf);
    assert_non_null(pem_inter);
    assert_int_equal(X509_cmp(pem_leaf, x), 0);
    assert_int_equal(X509_check_issued(pem_inter, pem_leaf), X509_V_OK);
    assert_int_equal(X509_verify(pem_leaf, X509_get0_pubkey(pem_inter)), 1);
    /* No provenance extension when none was given. */
    struct mw_ca_provenance p;
    bool present = true;
    mw_assert_ok(mw_ca_provenance_from_cert(mw_dynbuf_slice(&s.leaf_der), &p, &present));
    assert_false(present);

    validate(ca, &s, T0 + 100);
    validate(ca, &s, T0 + 95); /* within the skew allowance */
    mw_ca_svid_free(&s);
    mw_dynbuf_free(&csr);
}

static void test_issue_p256(void **state)
{
    issue_ok(state, "p256", false);
}
static void test_issue_p384(void **state)
{
    issue_ok(state, "p384", false);
}
static void test_issue_rsa2048(void **state)
{
    issue_ok(state, "rsa2048", true);
}

static void test_issue_expired_later(void **state)
{
    struct mw_ca *ca = *state;
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = gen("p256");
    struct mw_dynbuf csr;
    mw_dynbuf_init(&csr, 1 << 16);
    make_csr(key, &csr);
    struct mw_clock clk = mw_clock_fixed(T0 + 100);
    struct mw_ca_svid s;
    mw_ca_svid_init(&s);
    mw_assert_ok(mw_ca_issue(ca, mw_dynbuf_slice(&csr), SID, 600, NULL, &clk, &s));
    assert_int_equal(s.not_after, T0 + 700);
    struct mw_x509svid *svid = NULL;
    mw_assert_ok(
        mw_x509svid_parse_der(mw_dynbuf_slice(&s.chain_der), mw_slice_make(NULL, 0), &svid));
    struct mw_bundle *b = bundle_of(ca);
    struct mw_clock later = mw_clock_fixed(T0 + 701);
    mw_assert_fails(mw_x509svid_verify(svid, b, &later), MW_E_EXPIRED);
    mw_bundle_free(b);
    mw_x509svid_free(svid);
    mw_ca_svid_free(&s);
    mw_dynbuf_free(&csr);
}

static void test_ttl_capped(void **state)
{
    struct mw_ca *ca = *state;
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = gen("p256");
    struct mw_dynbuf csr;
    mw_dynbuf_init(&csr, 1 << 16);
    make_csr(key, &csr);
    struct mw_ca_svid s;
    /* Over the configured maximum (24 h): capped. */
    struct mw_clock clk = mw_clock_fixed(T0 + 100);
    mw_ca_svid_init(&s);
    mw_assert_ok(mw_ca_issue(ca, mw_dynbuf_slice(&csr), SID, 7 * 86400, NULL, &clk, &s));
    assert_int_equal(s.not_after, T0 + 100 + mw_ca_max_ttl(ca));
    mw_ca_svid_free(&s);
    /* Near the intermediate's end: capped at its notAfter. */
    struct mw_ca_slot_info si;
    mw_assert_ok(mw_ca_slot_info(ca, 0, &si));
    struct mw_clock late = mw_clock_fixed(si.not_after - 60);
    mw_ca_svid_init(&s);
    mw_assert_ok(mw_ca_issue(ca, mw_dynbuf_slice(&csr), SID, 3600, NULL, &late, &s));
    assert_int_equal(s.not_after, si.not_after);
    mw_ca_svid_free(&s);
    /* After it: refused. */
    struct mw_clock after = mw_clock_fixed(si.not_after + 1);
    mw_ca_svid_init(&s);
    mw_assert_fails(mw_ca_issue(ca, mw_dynbuf_slice(&csr), SID, 3600, NULL, &after, &s),
                    MW_E_EXPIRED);
    mw_ca_svid_free(&s);
    /* Negative TTL: refused. */
    mw_ca_svid_init(&s);
    mw_assert_fails(mw_ca_issue(ca, mw_dynbuf_slice(&csr), SID, -1, NULL, &clk, &s), MW_E_INPUT);
    mw_ca_svid_free(&s);
    mw_dynbuf_free(&csr);
}

/* A table of CSRs and identities the CA must refuse, with the fault it must name. */
static void test_refusals(void **state)
{
    struct mw_ca *ca = *state;
    struct mw_clock clk = mw_clock_fixed(T0 + 100);
    struct {
        const char *key;
        const char *id;
        int mutate; /* 0 none, 1 flip last byte, 2 truncate, 3 trailing byte, 4 empty, 5 junk */
        enum mw_err code;
        const char *msg;
    } cases[] = {
        {"ed25519", SID, 0, MW_E_UNSUPPORTED, "key type Ed25519 is not allowed for SVIDs"},
        {"rsa1024", SID, 0, MW_E_UNSUPPORTED, "RSA key of 1024 bits is too small"},
        {"p521", SID, 0, MW_E_UNSUPPORTED, "EC curve secp521r1 is not allowed"},
        {"p256", SID, 1, MW_E_VERIFY, "CSR signature does not verify"},
        {"p256", SID, 2, MW_E_INPUT, "CSR is not a DER PKCS#10 request"},
        {"p256", SID, 3, MW_E_INPUT, "CSR has 1 bytes after the request"},
        {"p256", SID, 4, MW_E_INPUT, "CSR is empty"},
        {"p256", SID, 5, MW_E_INPUT, "CSR is not a DER PKCS#10 request"},
        {"p256", "spiffe://other.org/ns/a/sa/b", 0, MW_E_INPUT, "not in this CA's trust domain"},
        {"p256", "spiffe://example.org", 0, MW_E_INPUT, "has no path"},
        {"p256", "spiffe://example.org/a//b", 0, MW_E_INPUT, ""},
        {"p256", "https://example.org/a", 0, MW_E_INPUT, ""},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        MW_DEFER(EVP_PKEY) EVP_PKEY *key = gen(cases[i].key);
        assert_non_null(key);
        struct mw_dynbuf csr;
        mw_dynbuf_init(&csr, 1 << 16);
        make_csr(key, &csr);
        if (cases[i].mutate == 1)
            csr.p[csr.n - 1] ^= 0x01;
        else if (cases[i].mutate == 2)
            csr.n -= 10;
        else if (cases[i].mutate == 3)
            mw_assert_ok(mw_dynbuf_add_byte(&csr, 0));
        else if (cases[i].mutate == 4)
            csr.n = 0;
        else if (cases[i].mutate == 5)
            memset(csr.p, 'A', csr.n);
        struct mw_ca_svid s;
        mw_ca_svid_init(&s);
        mw_assert_fails(mw_ca_issue(ca, mw_dynbuf_slice(&csr), cases[i].id, 0, NULL, &clk, &s),
                        cases[i].code);
        if (strstr(mw_error_msg(), cases[i].msg) == NULL)
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, mw_error_msg(), cases[i].msg);
        assert_int_equal(s.leaf_der.n, 0);
        mw_ca_svid_free(&s);
        mw_dynbuf_free(&csr);
    }
    /* Oversized. */
    struct mw_dynbuf big;
    mw_dynbuf_init(&big, MW_CA_CSR_MAX + 2);
    for (size_t i = 0; i <= MW_CA_CSR_MAX; i++)
        mw_assert_ok(mw_dynbuf_add_byte(&big, 0x30));
    struct mw_ca_svid s;
    mw_ca_svid_init(&s);
    mw_assert_fails(mw_ca_issue(ca, mw_dynbuf_slice(&big), SID, 0, NULL, &clk, &s), MW_E_LIMIT);
    mw_ca_svid_free(&s);
    mw_dynbuf_free(&big);
}

static void test_provenance_in_svid(void **state)
{
    struct mw_ca *ca = *state;
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = gen("p256");
    struct mw_dynbuf csr;
    mw_dynbuf_init(&csr, 1 << 16);
    make_csr(key, &csr);
    struct mw_ca_provenance p;
    mw_assert_ok(mw_ca_provenance_set(
        &p, "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
        "https://github.com/actions/runner/github-hosted"));
    struct mw_clock clk = mw_clock_fixed(T0 + 100);
    struct mw_ca_svid s;
    mw_ca_svid_init(&s);
    mw_assert_ok(mw_ca_issue(ca, mw_dynbuf_slice(&csr), SID, 0, &p, &clk, &s));
    struct mw_ca_provenance got;
    bool present = false;
    mw_assert_ok(mw_ca_provenance_from_cert(mw_dynbuf_slice(&s.leaf_der), &got, &present));
    assert_true(present);
    assert_string_equal(got.image_digest, p.image_digest);
    assert_string_equal(got.attestation_digest, p.attestation_digest);
    assert_string_equal(got.builder_id, p.builder_id);
    /* The extension is non-critical, so validators that do not know it accept the SVID. */
    validate(ca, &s, T0 + 100);
    mw_ca_svid_free(&s);
    mw_dynbuf_free(&csr);
}

/* The CA directory: the key files are private, the bundle is the root, reopening works. */
static void test_ca_files(void **state)
{
    (void)state;
    const char *dir = mw_test_tmpdir();
    struct mw_clock clk = mw_clock_fixed(T0);
    struct mw_ca_init_opts o = {
        .trust_domain = TD, .dir = dir, .clock = &clk, .key_type = MW_CA_KEY_EC_P384};
    mw_assert_ok(mw_ca_init(&o));
    mw_assert_fails(mw_ca_init(&o), MW_E_STATE); /* never replaces a CA */
    char path[1200];
    snprintf(path, sizeof(path), "%s/root.key", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/intermediate-1.key", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* A key file others can read is refused. */
    assert_int_equal(chmod(path, 0644), 0);
    snprintf(path, sizeof(path), "%s/ca.yaml", dir);
    struct mw_ca *ca = NULL;
    mw_assert_fails(mw_ca_open(path, NULL, NULL, &ca), MW_E_PERM);
    snprintf(path, sizeof(path), "%s/intermediate-1.key", dir);
    assert_int_equal(chmod(path, 0600), 0);
    snprintf(path, sizeof(path), "%s/ca.yaml", dir);
    mw_assert_ok(mw_ca_open(path, NULL, NULL, &ca));
    /* The JWKS bundle file parses as a SPIFFE bundle with one x509 authority: the root. */
    snprintf(path, sizeof(path), "%s/bundle.jwks.json", dir);
    struct mw_bundle *b = NULL;
    mw_assert_ok(mw_bundle_load_file(path, MW_BUNDLE_FMT_SPIFFE, TD, &b, NULL));
    assert_int_equal(mw_bundle_x509_count(b), 1);
    uint64_t seq = 0;
    assert_true(mw_bundle_sequence(b, &seq));
    assert_int_equal(seq, 1);
    struct mw_cert_info ci;
    mw_assert_ok(mw_bundle_x509_info(b, 0, &ci));
    assert_true(ci.is_ca);
    assert_string_equal(ci.curve, "P-384");
    mw_bundle_free(b);
    snprintf(path, sizeof(path), "%s/bundle.pem", dir);
    mw_assert_ok(mw_bundle_load_file(path, MW_BUNDLE_FMT_PEM, TD, &b, NULL));
    assert_int_equal(mw_bundle_x509_count(b), 1);
    mw_bundle_free(b);
    mw_ca_free(ca);
    /* A trust domain that is not one is refused before anything is written. */
    struct mw_ca_init_opts bad = {.trust_domain = "Example.ORG", .dir = mw_test_tmpdir()};
    mw_assert_fails(mw_ca_init(&bad), MW_E_INPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_p256),         cmocka_unit_test(test_issue_p384),
        cmocka_unit_test(test_issue_rsa2048),      cmocka_unit_test(test_issue_expired_later),
        cmocka_unit_test(test_ttl_capped),         cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_provenance_in_svid), cmocka_unit_test(test_ca_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
