/*
 * X.509-SVIDs: the go-spiffe files with the outcomes EXPECTED.md lists, then
 * PKIs made here with OpenSSL for what those files cannot show (time, trust
 * domains, chain length, DER, file permissions).
 */
#include "testutil.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <meshward/spiffe.h>

#define DIR "spiffe/svid/x509svid/testdata/"

struct expected_row {
    const char *certs;
    const char *key;  /* NULL: no key at all */
    const char *want; /* NULL: success; else a fragment of the error */
};

/* EXPECTED.md "X.509-SVID parse + validate", one row each. */
static const struct expected_row expected_rows[] = {
    {"good-leaf-only.pem", "key-pkcs8-rsa.pem", NULL},
    {"good-leaf-and-intermediate.pem", "key-pkcs8-ecdsa.pem", NULL},
    {"good-key-and-cert.pem", "good-key-and-cert.pem", NULL},
    {"good-cert-and-key.pem", "good-cert-and-key.pem", NULL},
    {"key-pkcs8-rsa.pem", "key-pkcs8-rsa.pem", "no certificates found"},
    {"good-leaf-only.pem", "good-leaf-only.pem", "no private key found"},
    {"good-leaf-only.pem", "not-pem", "key is not PEM"},
    {"not-pem", "key-pkcs8-rsa.pem", "certificate is not PEM"},
    {"good-leaf-only.pem", "corrupt-key.pem", "corrupt private key"},
    {"corrupt-cert.pem", "key-pkcs8-rsa.pem", "malformed certificate"},
    {"good-leaf-and-intermediate.pem", "key-pkcs8-rsa.pem", "leaf does not match private key"},
    {"wrong-leaf-empty-id.pem", "key-pkcs8-rsa.pem", "certificate contains no URI SAN"},
    {"wrong-leaf-ca-true.pem", "key-pkcs8-rsa.pem", "leaf certificate must not have CA flag"},
    {"wrong-leaf-no-digital-signature.pem", "key-pkcs8-rsa.pem", "leaf must have digitalSignature"},
    {"wrong-leaf-cert-sign.pem", "key-pkcs8-rsa.pem", "leaf must not have keyCertSign"},
    {"wrong-leaf-crl-sign.pem", "key-pkcs8-rsa.pem", "leaf must not have cRLSign"},
    {"wrong-intermediate-no-ca.pem", "key-pkcs8-rsa.pem",
     "signing certificate 1 must have CA flag"},
    {"wrong-intermediate-no-key-cert-sign.pem", "key-pkcs8-rsa.pem",
     "signing certificate 1 must have keyCertSign"},
};

static void test_expected_md(void **state)
{
    (void)state;
    size_t agree = 0;
    for (size_t i = 0; i < MW_ARRAY_LEN(expected_rows); i++) {
        const struct expected_row *row = &expected_rows[i];
        char rel[256];
        struct mw_dynbuf certs, key;
        snprintf(rel, sizeof(rel), DIR "%s", row->certs);
        mw_test_read(rel, &certs);
        snprintf(rel, sizeof(rel), DIR "%s", row->key);
        mw_test_read(rel, &key);
        struct mw_x509svid *svid = NULL;
        mw_result r = mw_x509svid_parse_pem(mw_dynbuf_slice(&certs), mw_dynbuf_slice(&key), &svid);
        bool ok;
        if (row->want == NULL) {
            ok = mw_ok(r) && strcmp(mw_x509svid_id(svid)->td, "example.org") == 0 &&
                 strcmp(mw_x509svid_id(svid)->path, "/workload-1") == 0 &&
                 mw_x509svid_has_key(svid);
            if (!ok)
                print_message("DISAGREE %s + %s: want ok, got %s\n", row->certs, row->key,
                              mw_failed(r) ? mw_error_msg() : "a different ID");
        } else {
            ok = mw_failed(r) && strstr(mw_error_msg(), row->want) != NULL;
            if (!ok)
                print_message("DISAGREE %s + %s: want \"%s\", got %s\n", row->certs, row->key,
                              row->want, mw_failed(r) ? mw_error_msg() : "success");
        }
        agree += ok;
        mw_x509svid_free(svid);
        mw_dynbuf_free(&certs);
        mw_dynbuf_free(&key);
    }
    print_message("EXPECTED.md X.509-SVID rows: %zu/%zu agree\n", agree,
                  MW_ARRAY_LEN(expected_rows));
    assert_int_equal(agree, MW_ARRAY_LEN(expected_rows));
}

/* The go-spiffe chain verifies against its own root in its validity window only. */
static void test_expected_chain_facts(void **state)
{
    (void)state;
    struct mw_dynbuf certs, key;
    mw_test_read(DIR "good-leaf-and-intermediate.pem", &certs);
    mw_test_read(DIR "key-pkcs8-ecdsa.pem", &key);
    struct mw_x509svid *svid = NULL;
    mw_assert_ok(mw_x509svid_parse_pem(mw_dynbuf_slice(&certs), mw_dynbuf_slice(&key), &svid));
    assert_int_equal(mw_x509svid_chain_len(svid), 2);
    struct mw_cert_info info;
    mw_assert_ok(mw_x509svid_cert_info(svid, 0, &info));
    assert_string_equal(info.uri_san, "spiffe://example.org/workload-1");
    assert_false(info.is_ca);
    mw_assert_ok(mw_x509svid_cert_info(svid, 1, &info));
    assert_true(info.is_ca);
    mw_x509svid_free(svid);
    mw_dynbuf_free(&certs);
    mw_dynbuf_free(&key);
}

/* ------------------------------------------------------------ a PKI made here */

#define T0 1700000000 /* 2023-11-14T22:13:20Z */

struct pki_cert {
    X509 *cert;
    EVP_PKEY *key;
};

struct cert_spec {
    const char *cn;
    const char *san; /* e.g. "URI:spiffe://example.org/a"; NULL for none */
    const char *bc;  /* basicConstraints value; NULL for none */
    const char *ku;  /* keyUsage value; NULL for none */
    int64_t not_before, not_after;
    bool rsa;
};

static EVP_PKEY *gen_key(bool rsa)
{
    EVP_PKEY *k = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

static struct pki_cert make_cert(const struct cert_spec *s, const struct pki_cert *issuer)
{
    static long serial = 1000;
    struct pki_cert out = {X509_new(), gen_key(s->rsa)};
    X509 *c = out.cert;
    assert_non_null(c);
    assert_int_equal(X509_set_version(c, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(c), serial++), 1);
    X509_NAME *name = X509_get_subject_name(c);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)s->cn, -1, -1, 0),
                     1);
    X509 *icert = issuer ? issuer->cert : c;
    EVP_PKEY *ikey = issuer ? issuer->key : out.key;
    assert_int_equal(X509_set_issuer_name(c, X509_get_subject_name(icert)), 1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(c), (time_t)s->not_before));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(c), (time_t)s->not_after));
    assert_int_equal(X509_set_pubkey(c, out.key), 1);
    if (s->bc)
        add_ext(c, icert, NID_basic_constraints, s->bc);
    if (s->ku)
        add_ext(c, icert, NID_key_usage, s->ku);
    if (s->san)
        add_ext(c, icert, NID_subject_alt_name, s->san);
    add_ext(c, icert, NID_subject_key_identifier, "hash");
    /* As real CAs do: the AKID picks the right issuer when two roots share a name (rotation). */
    if (issuer)
        add_ext(c, icert, NID_authority_key_identifier, "keyid:always");
    assert_true(X509_sign(c, ikey, EVP_sha256()) > 0);
    return out;
}

static void free_cert(struct pki_cert *p)
{
    X509_free(p->cert);
    EVP_PKEY_free(p->key);
    p->cert = NULL;
    p->key = NULL;
}

static const struct cert_spec ca_spec = {"root",
                                         "URI:spiffe://example.org",
                                         "critical,CA:TRUE",
                                         "critical,keyCertSign,cRLSign",
                                         T0 - 86400,
                                         T0 + 10 * 86400,
                                         false};
static const struct cert_spec int_spec = {"int",
                                          "URI:spiffe://example.org",
                                          "critical,CA:TRUE",
                                          "critical,keyCertSign,cRLSign",
                                          T0 - 3600,
                                          T0 + 5 * 86400,
                                          false};
static const struct cert_spec leaf_spec = {"leaf",
                                           "URI:spiffe://example.org/ns/a/sa/b",
                                           "critical,CA:FALSE",
                                           "critical,digitalSignature,keyEncipherment",
                                           T0 - 600,
                                           T0 + 3600,
                                           false};

static void pem_add(struct mw_dynbuf *b, X509 *cert, EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    if (cert)
        assert_int_equal(PEM_write_bio_X509(bio, cert), 1);
    if (key)
        assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    mw_assert_ok(mw_dynbuf_add(b, p, (size_t)n));
    BIO_free(bio);
}

static void der_add(struct mw_dynbuf *b, X509 *cert)
{
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);
    assert_true(n > 0);
    mw_assert_ok(mw_dynbuf_add(b, der, (size_t)n));
    OPENSSL_free(der);
}

static struct mw_bundle *bundle_of(const char *td, X509 *a, X509 *b)
{
    struct mw_bundle *bundle = NULL;
    mw_assert_ok(mw_bundle_new(td, &bundle));
    struct mw_dynbuf der;
    mw_dynbuf_init(&der, 1 << 16);
    der_add(&der, a);
    mw_assert_ok(mw_bundle_add_x509_der(bundle, mw_dynbuf_slice(&der)));
    if (b) {
        mw_dynbuf_reset(&der);
        der_add(&der, b);
        mw_assert_ok(mw_bundle_add_x509_der(bundle, mw_dynbuf_slice(&der)));
    }
    mw_dynbuf_free(&der);
    return bundle;
}

/* Parse leaf (+ signers) with leaf's key; returns the SVID or NULL with the error set. */
static struct mw_x509svid *parse_chain(struct pki_cert *leaf, X509 *s1, X509 *s2, mw_result *res)
{
    struct mw_dynbuf certs, key;
    mw_dynbuf_init(&certs, 1 << 20);
    mw_dynbuf_init(&key, 1 << 20);
    pem_add(&certs, leaf->cert, NULL);
    if (s1)
        pem_add(&certs, s1, NULL);
    if (s2)
        pem_add(&certs, s2, NULL);
    pem_add(&key, NULL, leaf->key);
    struct mw_x509svid *svid = NULL;
    *res = mw_x509svid_parse_pem(mw_dynbuf_slice(&certs), mw_dynbuf_slice(&key), &svid);
    mw_dynbuf_free(&certs);
    mw_dynbuf_free(&key);
    return svid;
}

struct pki {
    struct pki_cert root, inter, leaf;
};

static int pki_setup(void **state)
{
    struct pki *p = calloc(1, sizeof(*p));
    p->root = make_cert(&ca_spec, NULL);
    p->inter = make_cert(&int_spec, &p->root);
    p->leaf = make_cert(&leaf_spec, &p->inter);
    *state = p;
    return 0;
}

static int pki_teardown(void **state)
{
    struct pki *p = *state;
    free_cert(&p->root);
    free_cert(&p->inter);
    free_cert(&p->leaf);
    free(p);
    return 0;
}

static void test_chain_verifies(void **state)
{
    struct pki *p = *state;
    mw_result r;
    struct mw_x509svid *svid = parse_chain(&p->leaf, p->inter.cert, NULL, &r);
    mw_assert_ok(r);
    assert_string_equal(mw_x509svid_id(svid)->path, "/ns/a/sa/b");
    struct mw_bundle *bundle = bundle_of("example.org", p->root.cert, NULL);
    struct mw_clock now = mw_clock_fixed(T0);
    mw_assert_ok(mw_x509svid_verify(svid, bundle, &now));

    /* Time: before the leaf's notBefore, after its notAfter, and just inside. */
    struct mw_clock early = mw_clock_fixed(T0 - 601);
    mw_assert_fails(mw_x509svid_verify(svid, bundle, &early), MW_E_EXPIRED);
    assert_non_null(strstr(mw_error_msg(), "not valid until"));
    struct mw_clock late = mw_clock_fixed(T0 + 3601);
    mw_assert_fails(mw_x509svid_verify(svid, bundle, &late), MW_E_EXPIRED);
    assert_non_null(strstr(mw_error_msg(), "expired at 2023-11-14T23:13:20Z"));
    /* OpenSSL counts the notAfter second itself as expired (RFC 5280 says inclusive). */
    struct mw_clock edge = mw_clock_fixed(T0 + 3599);
    mw_assert_ok(mw_x509svid_verify(svid, bundle, &edge));
    /* An intermediate that expired first fails the chain even though the leaf is fine. */
    struct mw_clock far = mw_clock_fixed(T0 + 6 * 86400);
    mw_assert_fails(mw_x509svid_verify(svid, bundle, &far), MW_E_EXPIRED);
    mw_bundle_free(bundle);

    /* The bundle of another trust domain, even with the right root (§6.4 of the bundle spec). */
    bundle = bundle_of("other.org", p->root.cert, NULL);
    mw_assert_fails(mw_x509svid_verify(svid, bundle, &now), MW_E_VERIFY);
    assert_non_null(strstr(mw_error_msg(), "the bundle is for other.org"));
    mw_bundle_free(bundle);

    /* The right trust domain with a root that did not sign this chain. */
    struct pki_cert other = make_cert(&ca_spec, NULL);
    bundle = bundle_of("example.org", other.cert, NULL);
    mw_assert_fails(mw_x509svid_verify(svid, bundle, &now), MW_E_VERIFY);
    assert_non_null(strstr(mw_error_msg(), "chain does not verify"));
    mw_bundle_free(bundle);

    /* A bundle with both roots: rotation. */
    bundle = bundle_of("example.org", other.cert, p->root.cert);
    mw_assert_ok(mw_x509svid_verify(svid, bundle, &now));
    mw_bundle_free(bundle);

    /* An intermediate in the bundle is an anchor too (X509-SVID §6.2: a set of CAs). */
    bundle = bundle_of("example.org", p->inter.cert, NULL);
    mw_assert_ok(mw_x509svid_verify(svid, bundle, &now));
    mw_bundle_free(bundle);
    free_cert(&other);
    mw_x509svid_free(svid);

    /* Without its intermediate the leaf does not reach the root. */
    svid = parse_chain(&p->leaf, NULL, NULL, &r);
    mw_assert_ok(r);
    bundle = bundle_of("example.org", p->root.cert, NULL);
    mw_assert_fails(mw_x509svid_verify(svid, bundle, &now), MW_E_VERIFY);
    assert_non_null(strstr(mw_error_msg(), "issuer"));
    mw_bundle_free(bundle);
    mw_x509svid_free(svid);
}

static void test_longer_chain(void **state)
{
    struct pki *p = *state;
    struct cert_spec s2 = int_spec;
    s2.cn = "int2";
    struct pki_cert int2 = make_cert(&s2, &p->inter);
    struct pki_cert leaf = make_cert(&leaf_spec, &int2);
    mw_result r;
    struct mw_x509svid *svid = parse_chain(&leaf, int2.cert, p->inter.cert, &r);
    mw_assert_ok(r);
    assert_int_equal(mw_x509svid_chain_len(svid), 3);
    struct mw_bundle *bundle = bundle_of("example.org", p->root.cert, NULL);
    struct mw_clock now = mw_clock_fixed(T0);
    mw_assert_ok(mw_x509svid_verify(svid, bundle, &now));
    mw_x509svid_free(svid);

    /* Signers given in the wrong order still build (OpenSSL searches the untrusted set). */
    svid = parse_chain(&leaf, p->inter.cert, int2.cert, &r);
    mw_assert_ok(r);
    mw_assert_ok(mw_x509svid_verify(svid, bundle, &now));
    mw_x509svid_free(svid);

    /* A pathLenConstraint of 0 on the first intermediate forbids int2. */
    struct cert_spec s0 = int_spec;
    s0.bc = "critical,CA:TRUE,pathlen:0";
    struct pki_cert int0 = make_cert(&s0, &p->root);
    struct pki_cert int3 = make_cert(&s2, &int0);
    struct pki_cert leaf3 = make_cert(&leaf_spec, &int3);
    svid = parse_chain(&leaf3, int3.cert, int0.cert, &r);
    mw_assert_ok(r);
    mw_assert_fails(mw_x509svid_verify(svid, bundle, &now), MW_E_VERIFY);
    assert_non_null(strstr(mw_error_msg(), "path length"));
    mw_x509svid_free(svid);
    mw_bundle_free(bundle);
    free_cert(&int0);
    free_cert(&int3);
    free_cert(&leaf3);
    free_cert(&int2);
    free_cert(&leaf);
}

struct shape_case {
    const char *name;
    struct cert_spec spec;
    const char *want;
};

static void test_leaf_shapes(void **state)
{
    struct pki *p = *state;
    const struct shape_case cases[] = {
        {"two URI SANs",
         {"l", "URI:spiffe://example.org/a,URI:spiffe://example.org/b", "critical,CA:FALSE",
          "critical,digitalSignature", T0 - 60, T0 + 60, false},
         "certificate has 2 URI SANs, want 1"},
        {"URI and DNS SANs are fine",
         {"l", "DNS:a.example.org,URI:spiffe://example.org/a", "critical,CA:FALSE",
          "critical,digitalSignature", T0 - 60, T0 + 60, false},
         NULL},
        {"leaf with CA true",
         {"l", "URI:spiffe://example.org/a", "critical,CA:TRUE", "critical,digitalSignature",
          T0 - 60, T0 + 60, false},
         "leaf certificate must not have CA flag"},
        {"no key usage",
         {"l", "URI:spiffe://example.org/a", "critical,CA:FALSE", NULL, T0 - 60, T0 + 60, false},
         "leaf has no keyUsage extension"},
        {"no basic constraints is a non-CA leaf",
         {"l", "URI:spiffe://example.org/a", NULL, "critical,digitalSignature", T0 - 60, T0 + 60,
          false},
         NULL},
        {"root ID on a leaf",
         {"l", "URI:spiffe://example.org", "critical,CA:FALSE", "critical,digitalSignature",
          T0 - 60, T0 + 60, false},
         "has no path"},
        {"bad SPIFFE ID",
         {"l", "URI:spiffe://Example.org/a", "critical,CA:FALSE", "critical,digitalSignature",
          T0 - 60, T0 + 60, false},
         "bad_trust_domain_char"},
        {"https URI",
         {"l", "URI:https://example.org/a", "critical,CA:FALSE", "critical,digitalSignature",
          T0 - 60, T0 + 60, false},
         "bad_scheme"},
        {"no SAN",
         {"l", NULL, "critical,CA:FALSE", "critical,digitalSignature", T0 - 60, T0 + 60, false},
         "no URI SAN"},
        {"RSA leaf",
         {"l", "URI:spiffe://example.org/rsa", "critical,CA:FALSE",
          "critical,digitalSignature,keyEncipherment", T0 - 60, T0 + 60, true},
         NULL},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct pki_cert leaf = make_cert(&cases[i].spec, &p->inter);
        mw_result r;
        struct mw_x509svid *svid = parse_chain(&leaf, p->inter.cert, NULL, &r);
        if (cases[i].want == NULL) {
            if (mw_failed(r))
                fail_msg("%s: %s", cases[i].name, mw_error_msg());
        } else {
            if (mw_ok(r))
                fail_msg("%s: accepted", cases[i].name);
            if (strstr(mw_error_msg(), cases[i].want) == NULL)
                fail_msg("%s: error \"%s\", want \"%s\"", cases[i].name, mw_error_msg(),
                         cases[i].want);
        }
        mw_x509svid_free(svid);
        free_cert(&leaf);
    }

    /* A signer without keyCertSign. */
    struct cert_spec bad = int_spec;
    bad.ku = "critical,cRLSign";
    struct pki_cert bint = make_cert(&bad, &p->root);
    struct pki_cert leaf = make_cert(&leaf_spec, &bint);
    mw_result r;
    struct mw_x509svid *svid = parse_chain(&leaf, bint.cert, NULL, &r);
    assert_true(mw_failed(r));
    assert_non_null(strstr(mw_error_msg(), "signing certificate 1 must have keyCertSign"));
    assert_null(svid);
    free_cert(&bint);
    free_cert(&leaf);
}

static void test_key_and_formats(void **state)
{
    struct pki *p = *state;
    struct mw_dynbuf all, der, kder;
    mw_dynbuf_init(&all, 1 << 20);
    mw_dynbuf_init(&der, 1 << 20);
    mw_dynbuf_init(&kder, 1 << 20);
    struct mw_x509svid *svid = NULL;

    /* One file, key in the middle. */
    pem_add(&all, p->leaf.cert, NULL);
    pem_add(&all, NULL, p->leaf.key);
    pem_add(&all, p->inter.cert, NULL);
    mw_assert_ok(mw_x509svid_parse_pem(mw_dynbuf_slice(&all), mw_dynbuf_slice(&all), &svid));
    assert_int_equal(mw_x509svid_chain_len(svid), 2);
    mw_x509svid_free(svid);
    svid = NULL;

    /* Certificates only, no key: allowed, and has_key says so. */
    mw_assert_ok(mw_x509svid_parse_pem(mw_dynbuf_slice(&all), mw_slice_make(NULL, 0), &svid));
    assert_false(mw_x509svid_has_key(svid));
    mw_x509svid_free(svid);
    svid = NULL;

    /* Two keys. */
    pem_add(&all, NULL, p->inter.key);
    mw_assert_fails(mw_x509svid_parse_pem(mw_dynbuf_slice(&all), mw_dynbuf_slice(&all), &svid),
                    MW_E_INPUT);
    assert_non_null(strstr(mw_error_msg(), "2 private keys"));

    /* Leaf first is required: an intermediate first has no SPIFFE leaf shape. */
    mw_dynbuf_reset(&all);
    pem_add(&all, p->inter.cert, NULL);
    pem_add(&all, p->leaf.cert, NULL);
    mw_assert_fails(mw_x509svid_parse_pem(mw_dynbuf_slice(&all), mw_slice_make(NULL, 0), &svid),
                    MW_E_INPUT);

    /* Mismatched key. */
    mw_dynbuf_reset(&all);
    pem_add(&all, p->leaf.cert, NULL);
    pem_add(&all, NULL, p->inter.key);
    mw_assert_fails(mw_x509svid_parse_pem(mw_dynbuf_slice(&all), mw_dynbuf_slice(&all), &svid),
                    MW_E_INPUT);
    assert_non_null(strstr(mw_error_msg(), "leaf does not match private key"));

    /* DER: concatenated certificates and a PKCS#8 key. */
    der_add(&der, p->leaf.cert);
    der_add(&der, p->inter.cert);
    unsigned char *k = NULL;
    int kn = i2d_PrivateKey(p->leaf.key, &k);
    assert_true(kn > 0);
    mw_assert_ok(mw_dynbuf_add(&kder, k, (size_t)kn));
    OPENSSL_free(k);
    mw_assert_ok(mw_x509svid_parse_der(mw_dynbuf_slice(&der), mw_dynbuf_slice(&kder), &svid));
    assert_int_equal(mw_x509svid_chain_len(svid), 2);
    struct mw_bundle *bundle = bundle_of("example.org", p->root.cert, NULL);
    struct mw_clock now = mw_clock_fixed(T0);
    mw_assert_ok(mw_x509svid_verify(svid, bundle, &now));
    mw_bundle_free(bundle);
    mw_x509svid_free(svid);
    svid = NULL;

    /* Truncated and padded DER. */
    mw_assert_fails(
        mw_x509svid_parse_der(mw_slice_make(der.p, der.n - 1), mw_slice_make(NULL, 0), &svid),
        MW_E_INPUT);
    mw_assert_ok(mw_dynbuf_add_byte(&der, 0));
    mw_assert_fails(mw_x509svid_parse_der(mw_dynbuf_slice(&der), mw_slice_make(NULL, 0), &svid),
                    MW_E_INPUT);
    mw_assert_fails(mw_x509svid_parse_der(mw_slice_make(NULL, 0), mw_slice_make(NULL, 0), &svid),
                    MW_E_INPUT);
    assert_null(svid);

    mw_dynbuf_free(&all);
    mw_dynbuf_free(&der);
    mw_dynbuf_free(&kder);
}

static void write_file(const char *path, const struct mw_dynbuf *b, mode_t mode)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b->p, 1, b->n, f), b->n);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_load_files(void **state)
{
    struct pki *p = *state;
    const char *dir = mw_test_tmpdir();
    char cpath[512], kpath[512], dpath[512];
    snprintf(cpath, sizeof(cpath), "%s/svid.pem", dir);
    snprintf(kpath, sizeof(kpath), "%s/key.pem", dir);
    snprintf(dpath, sizeof(dpath), "%s/svid.der", dir);
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1 << 20);
    pem_add(&b, p->leaf.cert, NULL);
    pem_add(&b, p->inter.cert, NULL);
    write_file(cpath, &b, 0644);
    mw_dynbuf_reset(&b);
    pem_add(&b, NULL, p->leaf.key);
    write_file(kpath, &b, 0644);
    mw_dynbuf_reset(&b);
    der_add(&b, p->leaf.cert);
    write_file(dpath, &b, 0644);

    struct mw_x509svid *svid = NULL;
    /* STYLE.md: a readable key file is refused. */
    mw_assert_fails(mw_x509svid_load_files(cpath, kpath, &svid), MW_E_PERM);
    assert_int_equal(chmod(kpath, 0600), 0);
    mw_assert_ok(mw_x509svid_load_files(cpath, kpath, &svid));
    assert_true(mw_x509svid_has_key(svid));
    mw_x509svid_free(svid);
    mw_assert_ok(mw_x509svid_load_files(dpath, kpath, &svid));
    assert_int_equal(mw_x509svid_chain_len(svid), 1);
    mw_x509svid_free(svid);
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/nope.pem", dir);
    mw_assert_fails(mw_x509svid_load_files(missing, NULL, &svid), MW_E_NOTFOUND);
    mw_dynbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expected_md),
        cmocka_unit_test(test_expected_chain_facts),
        cmocka_unit_test_setup_teardown(test_chain_verifies, pki_setup, pki_teardown),
        cmocka_unit_test_setup_teardown(test_longer_chain, pki_setup, pki_teardown),
        cmocka_unit_test_setup_teardown(test_leaf_shapes, pki_setup, pki_teardown),
        cmocka_unit_test_setup_teardown(test_key_and_formats, pki_setup, pki_teardown),
        cmocka_unit_test_setup_teardown(test_load_files, pki_setup, pki_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
