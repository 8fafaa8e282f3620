/* The canonical issuance-log record: round trips, and every non-canonical form refused. */
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <string.h>

#include <meshward/ca_auth.h>

#define ID  "spiffe://example.org/ns/shop/sa/api"
#define IMG "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define ATT "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const uint8_t serial[] = {0x7f, 0x01, 0x02, 0x03};

static struct mw_ca_record sample(bool prov)
{
    struct mw_ca_record r;
    memset(&r, 0, sizeof(r));
    r.serial = mw_slice_make(serial, sizeof(serial));
    r.spiffe_id = mw_slice_cstr(ID);
    r.issued_at = 1795521600;
    r.not_before = 1795521570;
    r.not_after = 1795525200;
    memset(r.spki_sha256, 0xab, 32);
    r.cred_kind = MW_CA_CRED_K8S;
    r.cred_subject = mw_slice_cstr("system:serviceaccount:shop:api");
    r.has_provenance = prov;
    if (prov) {
        r.image_digest = mw_slice_cstr(IMG);
        r.attestation_digest = mw_slice_cstr(ATT);
        r.builder_id = mw_slice_cstr("https://builder.example/v1");
    }
    r.ca_key_id = mw_slice_cstr("int-2026a");
    r.n_sans = 1;
    r.sans[0].type = MW_CA_SAN_URI;
    r.sans[0].value = mw_slice_cstr(ID);
    return r;
}

static void encode(const struct mw_ca_record *r, struct mw_dynbuf *b)
{
    mw_dynbuf_init(b, MW_CA_RECORD_MAX);
    mw_assert_ok(mw_ca_record_encode(r, b));
}

static void test_roundtrip(void **state)
{
    for (int prov = 0; prov < 2; prov++) {
        struct mw_ca_record r = sample(prov), got;
        struct mw_dynbuf b, b2;
        encode(&r, &b);
        assert_memory_equal(b.p, "MWIR\x01", 5);
        mw_assert_ok(mw_ca_record_parse(mw_dynbuf_slice(&b), &got));
        assert_true(mw_slice_eq(got.spiffe_id, r.spiffe_id));
        assert_true(mw_slice_eq(got.serial, r.serial));
        assert_int_equal(got.not_after, r.not_after);
        assert_int_equal(got.issued_at, r.issued_at);
        assert_int_equal(got.has_provenance, prov);
        assert_int_equal(got.n_sans, 1);
        assert_memory_equal(got.spki_sha256, r.spki_sha256, 32);
        /* Canonical: re-encoding the parsed record gives the same bytes. */
        encode(&got, &b2);
        assert_int_equal(b.n, b2.n);
        assert_memory_equal(b.p, b2.p, b.n);
        mw_dynbuf_free(&b);
        mw_dynbuf_free(&b2);
    }
}

static void test_json(void **state)
{
    struct mw_ca_record r = sample(true);
    r.n_sans = 3;
    static const uint8_t ip[4] = {10, 0, 0, 1};
    r.sans[1].type = MW_CA_SAN_DNS;
    r.sans[1].value = mw_slice_cstr("api.shop.svc");
    r.sans[2].type = MW_CA_SAN_IP;
    r.sans[2].value = mw_slice_make(ip, 4);
    struct mw_dynbuf j;
    mw_dynbuf_init(&j, 65536);
    mw_assert_ok(mw_ca_record_to_json(&r, &j));
    assert_string_equal(
        mw_dynbuf_cstr(&j),
        "{\"serial\":\"7f010203\",\"spiffe_id\":\"" ID "\",\"issued_at\":\"2026-11-24T12:00:00Z\","
        "\"not_before\":\"2026-11-24T11:59:30Z\",\"not_after\":\"2026-11-24T13:00:00Z\","
        "\"spki_sha256\":\"abababababababababababababababababababababababababababababababab\","
        "\"credential\":{\"kind\":\"k8s-sat\",\"subject\":\"system:serviceaccount:shop:api\"},"
        "\"provenance\":{\"image_digest\":\"" IMG "\",\"attestation_digest\":\"" ATT "\","
        "\"builder_id\":\"https://builder.example/v1\"},\"ca_key_id\":\"int-2026a\","
        "\"sans\":[{\"type\":\"uri\",\"value\":\"" ID "\"},{\"type\":\"dns\",\"value\":"
        "\"api.shop.svc\"},{\"type\":\"ip\",\"value\":\"10.0.0.1\"}]}");
    mw_dynbuf_free(&j);
}

static void test_encode_rules(void **state)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, MW_CA_RECORD_MAX);
    static const uint8_t zero_lead[] = {0, 0x80};
    static const uint8_t long_serial[21] = {1};
    struct mw_ca_record r;
#define REFUSE(mutation, code)                              \
    do {                                                    \
        r = sample(true);                                   \
        mutation;                                           \
        mw_assert_fails(mw_ca_record_encode(&r, &b), code); \
        assert_int_equal(b.n, 0);                           \
    } while (0)
    REFUSE(r.serial = mw_slice_make(zero_lead, 2), MW_E_INPUT);
    REFUSE(r.serial = mw_slice_make(long_serial, 21), MW_E_INPUT);
    REFUSE(r.serial = mw_slice_make(serial, 0), MW_E_INPUT);
    REFUSE(r.spiffe_id = mw_slice_cstr("https://example.org/x"), MW_E_INPUT);
    REFUSE(r.spiffe_id = mw_slice_cstr("spiffe://Example.org/x"), MW_E_INPUT);
    REFUSE(r.not_before = r.not_after + 1, MW_E_INPUT);
    REFUSE(r.issued_at = -1, MW_E_INPUT);
    REFUSE(r.cred_kind = (enum mw_ca_cred_kind)9, MW_E_INPUT);
    REFUSE(r.cred_subject = mw_slice_cstr(""), MW_E_INPUT);
    REFUSE(r.cred_subject = mw_slice_cstr("has space"), MW_E_INPUT);
    REFUSE(r.image_digest = mw_slice_cstr("sha256:00"), MW_E_INPUT);
    REFUSE(r.has_provenance = false, MW_E_INPUT); /* fields without the flag */
    REFUSE(r.ca_key_id = mw_slice_cstr(""), MW_E_INPUT);
    REFUSE((r.sans[0].type = (enum mw_ca_san_type)0), MW_E_INPUT);
    REFUSE((r.sans[0].type = MW_CA_SAN_IP), MW_E_INPUT);
    REFUSE(r.n_sans = MW_CA_RECORD_MAX_SANS + 1, MW_E_LIMIT);
    /* Too large for one log entry: 32 SANs of 4096 bytes. */
    static char big[4097];
    memset(big, 'a', 4096);
    r = sample(true);
    r.n_sans = MW_CA_RECORD_MAX_SANS;
    for (size_t i = 0; i < r.n_sans; i++) {
        r.sans[i].type = MW_CA_SAN_DNS;
        r.sans[i].value = mw_slice_make(big, 4096);
    }
    mw_assert_fails(mw_ca_record_encode(&r, &b), MW_E_LIMIT);
    assert_int_equal(b.n, 0);
    mw_dynbuf_free(&b);
#undef REFUSE
}

static void test_parse_strict(void **state)
{
    struct mw_ca_record r = sample(true), got;
    struct mw_dynbuf b;
    encode(&r, &b);
    /* Every truncation fails. */
    for (size_t n = 0; n < b.n; n++)
        if (mw_ok(mw_ca_record_parse(mw_slice_make(b.p, n), &got)))
            fail_msg("truncated record of %zu/%zu bytes parsed", n, b.n);
    /* Trailing bytes. */
    mw_assert_ok(mw_dynbuf_add_byte(&b, 0));
    mw_assert_fails(mw_ca_record_parse(mw_dynbuf_slice(&b), &got), MW_E_INPUT);
    b.n--;
    /* Version and magic. */
    b.p[4] = 2;
    mw_assert_fails(mw_ca_record_parse(mw_dynbuf_slice(&b), &got), MW_E_UNSUPPORTED);
    b.p[4] = 1;
    b.p[0] = 'X';
    mw_assert_fails(mw_ca_record_parse(mw_dynbuf_slice(&b), &got), MW_E_INPUT);
    b.p[0] = 'M';
    /* The provenance flag byte: serial(1+4) spiffe(2+35) times(24) spki(32) kind(1) subj(2+30). */
    size_t flag = 5 + 1 + 4 + 2 + strlen(ID) + 24 + 32 + 1 + 2 + 30;
    assert_int_equal(b.p[flag], 1);
    b.p[flag] = 2;
    mw_assert_fails(mw_ca_record_parse(mw_dynbuf_slice(&b), &got), MW_E_INPUT);
    b.p[flag] = 1;
    /* A time with the top bit set is not an int64. */
    size_t t0 = 5 + 1 + 4 + 2 + strlen(ID);
    b.p[t0] = 0x80;
    mw_assert_fails(mw_ca_record_parse(mw_dynbuf_slice(&b), &got), MW_E_INPUT);
    b.p[t0] = 0;
    mw_assert_ok(mw_ca_record_parse(mw_dynbuf_slice(&b), &got));
    mw_dynbuf_free(&b);
    mw_assert_fails(mw_ca_record_parse(mw_slice_make("", 0), &got), MW_E_INPUT);
}

/* A leaf made here: serial 0x8001 (DER adds a sign byte), three SANs. */
static void make_cert(const char *sans, struct mw_dynbuf *der, uint8_t spki_hash[32])
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(key);
    BIGNUM *bn = BN_new();
    assert_int_equal(BN_hex2bn(&bn, "8001"), 4);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), 1795521570));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), 1795525200));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    if (sans != NULL) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, sans);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    unsigned char *spki = NULL;
    int n = i2d_PUBKEY(key, &spki);
    unsigned int hl = 0;
    assert_int_equal(EVP_Digest(spki, (size_t)n, spki_hash, &hl, EVP_sha256(), NULL), 1);
    OPENSSL_free(spki);
    unsigned char *p = NULL;
    n = i2d_X509(x, &p);
    mw_dynbuf_init(der, 1 << 16);
    mw_assert_ok(mw_dynbuf_add(der, p, (size_t)n));
    OPENSSL_free(p);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void test_from_cert(void **state)
{
    struct mw_dynbuf der, st, enc;
    uint8_t want_spki[32];
    make_cert("URI:" ID ",DNS:evil.example.com,IP:10.0.0.1", &der, want_spki);
    struct mw_ca_record r = sample(false), got;
    mw_dynbuf_init(&st, 1 << 16);
    mw_assert_ok(mw_ca_record_from_cert(mw_dynbuf_slice(&der), &r, &st));
    assert_int_equal(r.serial.n, 2);
    assert_memory_equal(r.serial.p, "\x80\x01", 2);
    assert_int_equal(r.not_before, 1795521570);
    assert_int_equal(r.not_after, 1795525200);
    assert_memory_equal(r.spki_sha256, want_spki, 32);
    assert_int_equal(r.n_sans, 3);
    assert_int_equal(r.sans[0].type, MW_CA_SAN_URI);
    assert_true(mw_slice_eq_cstr(r.sans[0].value, ID));
    assert_int_equal(r.sans[1].type, MW_CA_SAN_DNS);
    assert_true(mw_slice_eq_cstr(r.sans[1].value, "evil.example.com"));
    assert_int_equal(r.sans[2].type, MW_CA_SAN_IP);
    assert_memory_equal(r.sans[2].value.p, "\x0a\x00\x00\x01", 4);
    mw_dynbuf_init(&enc, MW_CA_RECORD_MAX);
    mw_assert_ok(mw_ca_record_encode(&r, &enc));
    mw_assert_ok(mw_ca_record_parse(mw_dynbuf_slice(&enc), &got));
    assert_int_equal(got.n_sans, 3);
    mw_dynbuf_free(&enc);
    mw_dynbuf_free(&der);
    /* No SAN extension at all: recorded as none. */
    make_cert(NULL, &der, want_spki);
    mw_assert_ok(mw_ca_record_from_cert(mw_dynbuf_slice(&der), &r, &st));
    assert_int_equal(r.n_sans, 0);
    /* Not a certificate; trailing bytes. */
    mw_assert_fails(mw_ca_record_from_cert(mw_slice_cstr("junk"), &r, &st), MW_E_INPUT);
    mw_assert_ok(mw_dynbuf_add_byte(&der, 0));
    mw_assert_fails(mw_ca_record_from_cert(mw_dynbuf_slice(&der), &r, &st), MW_E_INPUT);
    mw_dynbuf_free(&der);
    mw_dynbuf_free(&st);
}

/* Kind 3 (renewal by SVID): the subject is exactly svid:<lower-case hex serial>. */
static void test_renewal_kind(void **state)
{
    struct mw_ca_record r = sample(false), got;
    r.cred_kind = MW_CA_CRED_SVID;
    r.cred_subject = mw_slice_cstr("svid:7f010203");
    struct mw_dynbuf b;
    encode(&r, &b);
    mw_assert_ok(mw_ca_record_parse(mw_dynbuf_slice(&b), &got));
    assert_int_equal(got.cred_kind, MW_CA_CRED_SVID);
    mw_slice parent;
    mw_assert_ok(mw_ca_record_renewed_serial(&got, &parent));
    assert_true(mw_slice_eq_cstr(parent, "7f010203"));
    struct mw_dynbuf js;
    mw_dynbuf_init(&js, 1 << 16);
    mw_assert_ok(mw_ca_record_to_json(&got, &js));
    assert_non_null(strstr(mw_dynbuf_cstr(&js), "\"kind\":\"svid\",\"subject\":\"svid:7f010203\""));
    mw_dynbuf_free(&js);
    /* The parser enforces the subject rule too: patch the subject's bytes in place. */
    size_t at = (size_t)((const uint8_t *)memmem(b.p, b.n, "svid:7f", 7) - b.p);
    b.p[at + 5] = 'F';
    mw_assert_fails(mw_ca_record_parse(mw_dynbuf_slice(&b), &got), MW_E_INPUT);
    b.p[at + 5] = '0';
    mw_assert_fails(mw_ca_record_parse(mw_dynbuf_slice(&b), &got), MW_E_INPUT);
    mw_dynbuf_free(&b);
    const char *bad[] = {"join:abc", "svid:",    "svid:0abc",
                         "svid:ABC", "svid:12g", "svid:12345678901234567890123456789012345678901"};
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        r.cred_subject = mw_slice_cstr(bad[i]);
        mw_dynbuf_init(&b, MW_CA_RECORD_MAX);
        mw_assert_fails(mw_ca_record_encode(&r, &b), MW_E_INPUT);
        mw_dynbuf_free(&b);
    }
    /* Kind 4 is still unknown. */
    r.cred_kind = (enum mw_ca_cred_kind)4;
    r.cred_subject = mw_slice_cstr("x");
    mw_dynbuf_init(&b, MW_CA_RECORD_MAX);
    mw_assert_fails(mw_ca_record_encode(&r, &b), MW_E_INPUT);
    mw_dynbuf_free(&b);
    /* And "svid" is never a credential a request can name. */
    enum mw_ca_cred_kind k;
    mw_assert_fails(mw_ca_cred_kind_parse(mw_slice_cstr("svid"), &k), MW_E_INPUT);
    assert_string_equal(mw_ca_cred_kind_name(MW_CA_CRED_SVID), "svid");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),    cmocka_unit_test(test_json),
        cmocka_unit_test(test_encode_rules), cmocka_unit_test(test_parse_strict),
        cmocka_unit_test(test_from_cert),    cmocka_unit_test(test_renewal_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
