/* The provenance extension: exact DER out, strict DER in. */
#include "testutil.h"

#include <openssl/x509v3.h>
#include <string.h>

#include <meshward/ca.h>

#include "base/mw_ossl.h"

#define IMG "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ATT "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define BLD "https://slsa.example/builder@v1"

static void encode(const char *img, const char *att, const char *bld, struct mw_dynbuf *out)
{
    struct mw_ca_provenance p;
    mw_assert_ok(mw_ca_provenance_set(&p, img, att, bld));
    mw_assert_ok(mw_ca_provenance_encode(&p, out));
}

static void test_roundtrip_and_bytes(void **state)
{
    (void)state;
    struct mw_dynbuf der;
    mw_dynbuf_init(&der, 4096);
    encode(IMG, ATT, BLD, &der);
    /* SEQUENCE (2+71 + 2+71 + 2+31 = 179 = 0x81 0xb3) of three UTF8Strings. */
    static const uint8_t head[] = {0x30, 0x81, 0xb3, 0x0c, 0x47, 's', 'h', 'a'};
    assert_int_equal(der.n, 3 + 179);
    assert_memory_equal(der.p, head, sizeof(head));
    assert_int_equal(der.p[3 + 73], 0x0c);
    assert_int_equal(der.p[3 + 146], 0x0c);
    assert_int_equal(der.p[3 + 147], 31);
    struct mw_ca_provenance got;
    mw_assert_ok(mw_ca_provenance_decode(mw_dynbuf_slice(&der), &got));
    assert_string_equal(got.image_digest, IMG);
    assert_string_equal(got.attestation_digest, ATT);
    assert_string_equal(got.builder_id, BLD);
    /* Every proper prefix is refused. */
    for (size_t n = 0; n < der.n; n++)
        mw_assert_fails(mw_ca_provenance_decode(mw_slice_make(der.p, n), &got), MW_E_INPUT);
    mw_dynbuf_free(&der);

    /* A builder ID of 200 bytes takes the two-byte length forms. */
    char bld[1025];
    memset(bld, 'b', 1024);
    bld[1024] = '\0';
    mw_dynbuf_init(&der, 4096);
    encode(IMG, ATT, bld, &der);
    assert_int_equal(der.p[1], 0x82);
    mw_assert_ok(mw_ca_provenance_decode(mw_dynbuf_slice(&der), &got));
    assert_int_equal(strlen(got.builder_id), 1024);
    mw_dynbuf_free(&der);
}

static void test_set_rejects(void **state)
{
    (void)state;
    struct mw_ca_provenance p;
    char long_bld[1026];
    memset(long_bld, 'b', 1025);
    long_bld[1025] = '\0';
    const char *cases[][4] = {
        {"sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", ATT, BLD,
         "image digest"},
        {"sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ATT, BLD,
         "image digest"},
        {"sha256:0123", ATT, BLD, "image digest"},
        {IMG, "sha256:xyz", BLD, "attestation digest"},
        {IMG, IMG "0", BLD, "attestation digest"},
        {IMG, ATT, "", "builder ID"},
        {IMG, ATT, "has space", "builder ID"},
        {IMG, ATT, "caf\xc3\xa9", "builder ID"},
        {IMG, ATT, long_bld, "builder ID"},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        mw_assert_fails(mw_ca_provenance_set(&p, cases[i][0], cases[i][1], cases[i][2]),
                        MW_E_INPUT);
        if (strstr(mw_error_msg(), cases[i][3]) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, mw_error_msg(), cases[i][3]);
    }
    mw_assert_fails(mw_ca_provenance_set(&p, NULL, ATT, BLD), MW_E_INPUT);
}

/* Hand-made encodings that must be refused. */
static void test_decode_rejects(void **state)
{
    (void)state;
    struct mw_dynbuf good;
    mw_dynbuf_init(&good, 4096);
    encode(IMG, ATT, "b", &good);
    /* 30 81 95? no: body = 73 + 73 + 3 = 149 = 0x95 -> 30 81 95 */
    assert_int_equal(good.p[1], 0x81);
    assert_int_equal(good.p[2], 149);
    struct mw_ca_provenance got;
    mw_assert_ok(mw_ca_provenance_decode(mw_dynbuf_slice(&good), &got));

    struct {
        const char *name;
        size_t off; /* byte to change */
        int val;    /* new value, or -1: insert extra byte 0 at end, -2: append to seq */
        const char *msg;
    } cases[] = {
        {"SET not SEQUENCE", 0, 0x31, "tag 0x31"},
        {"indefinite length", 1, 0x80, "length form 0x80"},
        {"PrintableString", 3, 0x13, "tag 0x13"},
        {"OCTET STRING builder", 3 + 73 + 73, 0x04, "tag 0x04"},
        {"upper-case hex", 3 + 2 + 7, 'A', "image digest"},
        {"trailing byte", 0, -1, "after the SEQUENCE"},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct mw_dynbuf b;
        mw_dynbuf_init(&b, 4096);
        mw_assert_ok(mw_dynbuf_add_slice(&b, mw_dynbuf_slice(&good)));
        if (cases[i].val == -1)
            mw_assert_ok(mw_dynbuf_add_byte(&b, 0));
        else
            b.p[cases[i].off] = (uint8_t)cases[i].val;
        mw_assert_fails(mw_ca_provenance_decode(mw_dynbuf_slice(&b), &got), MW_E_INPUT);
        if (strstr(mw_error_msg(), cases[i].msg) == NULL)
            fail_msg("%s: \"%s\" lacks \"%s\"", cases[i].name, mw_error_msg(), cases[i].msg);
        mw_dynbuf_free(&b);
    }
    /* Non-minimal length: 30 82 00 95 ... */
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 4096);
    mw_assert_ok(mw_dynbuf_add(&b, "\x30\x82\x00\x95", 4));
    mw_assert_ok(mw_dynbuf_add(&b, good.p + 3, good.n - 3));
    mw_assert_fails(mw_ca_provenance_decode(mw_dynbuf_slice(&b), &got), MW_E_INPUT);
    assert_non_null(strstr(mw_error_msg(), "not minimal"));
    mw_dynbuf_reset(&b);
    /* Short length in long form: 30 81 05 is not allowed (must be 30 05). */
    mw_assert_ok(mw_dynbuf_add(&b, "\x30\x81\x05\x0c\x01\x61\x0c\x00", 8));
    mw_assert_fails(mw_ca_provenance_decode(mw_dynbuf_slice(&b), &got), MW_E_INPUT);
    mw_dynbuf_reset(&b);
    /* A fourth element inside the SEQUENCE. */
    mw_assert_ok(mw_dynbuf_add(&b, "\x30\x81\x97", 3));
    mw_assert_ok(mw_dynbuf_add(&b, good.p + 3, good.n - 3));
    mw_assert_ok(mw_dynbuf_add(&b, "\x0c\x00", 2));
    mw_assert_fails(mw_ca_provenance_decode(mw_dynbuf_slice(&b), &got), MW_E_INPUT);
    assert_non_null(strstr(mw_error_msg(), "after builderId"));
    mw_dynbuf_reset(&b);
    /* Only two elements. */
    mw_assert_ok(mw_dynbuf_add(&b, "\x30\x81\x92", 3));
    mw_assert_ok(mw_dynbuf_add(&b, good.p + 3, 146));
    mw_assert_fails(mw_ca_provenance_decode(mw_dynbuf_slice(&b), &got), MW_E_INPUT);
    mw_dynbuf_reset(&b);
    /* Oversized input. */
    for (int i = 0; i < MW_CA_PROVENANCE_DER_MAX + 1; i++)
        mw_assert_ok(mw_dynbuf_add_byte(&b, 0));
    mw_assert_fails(mw_ca_provenance_decode(mw_dynbuf_slice(&b), &got), MW_E_LIMIT);
    mw_dynbuf_free(&b);
    mw_dynbuf_free(&good);
}

/* A certificate carrying the extension the wrong way: critical, or twice. */
static void cert_with(bool critical, int copies, struct mw_dynbuf *out)
{
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = EVP_EC_gen("P-256");
    MW_DEFER(X509) X509 *x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const uint8_t *)"t",
                               -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    struct mw_dynbuf der;
    mw_dynbuf_init(&der, 4096);
    encode(IMG, ATT, BLD, &der);
    ASN1_OBJECT *oid = OBJ_txt2obj(MW_CA_PROVENANCE_OID, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(os, der.p, (int)der.n);
    for (int i = 0; i < copies; i++) {
        X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, oid, critical, os);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING_free(os);
    mw_dynbuf_free(&der);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    uint8_t *p = NULL;
    int n = i2d_X509(x, &p);
    mw_assert_ok(mw_dynbuf_add(out, p, (size_t)n));
    OPENSSL_free(p);
}

static void test_from_cert(void **state)
{
    (void)state;
    struct mw_ca_provenance got;
    bool present = false;
    struct mw_dynbuf c;
    mw_dynbuf_init(&c, 1 << 16);
    cert_with(false, 1, &c);
    mw_assert_ok(mw_ca_provenance_from_cert(mw_dynbuf_slice(&c), &got, &present));
    assert_true(present);
    assert_string_equal(got.builder_id, BLD);
    mw_dynbuf_reset(&c);
    cert_with(true, 1, &c);
    mw_assert_fails(mw_ca_provenance_from_cert(mw_dynbuf_slice(&c), &got, &present), MW_E_INPUT);
    assert_non_null(strstr(mw_error_msg(), "critical"));
    mw_dynbuf_reset(&c);
    cert_with(false, 2, &c);
    mw_assert_fails(mw_ca_provenance_from_cert(mw_dynbuf_slice(&c), &got, &present), MW_E_INPUT);
    assert_non_null(strstr(mw_error_msg(), "twice"));
    mw_dynbuf_reset(&c);
    cert_with(false, 0, &c);
    mw_assert_ok(mw_ca_provenance_from_cert(mw_dynbuf_slice(&c), &got, &present));
    assert_false(present);
    mw_dynbuf_free(&c);
    mw_assert_fails(mw_ca_provenance_from_cert(mw_slice_cstr("junk"), &got, &present), MW_E_INPUT);
}

static void test_oid(void **state)
{
    (void)state;
    /* 2.25 arc (ITU-T X.667): the decimal form of UUID f038f2ee-fe8a-40ef-82da-0af3c2818922. */
    ASN1_OBJECT *oid = OBJ_txt2obj(MW_CA_PROVENANCE_OID, 1);
    assert_non_null(oid);
    char buf[128];
    OBJ_obj2txt(buf, sizeof(buf), oid, 1);
    assert_string_equal(buf, "2.25.319310414890660852850650409127980927266");
    ASN1_OBJECT_free(oid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_bytes),
        cmocka_unit_test(test_set_rejects),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_from_cert),
        cmocka_unit_test(test_oid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
