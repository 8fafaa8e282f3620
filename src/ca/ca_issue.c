/*
 * X.509-SVID issuance (X509-SVID.md §2-§4, RFC 5280 §4.1). The caller has
 * authenticated the requester and hands over the identity; the CSR only
 * proves possession of the key. Everything else in the CSR (subject, SANs,
 * requested extensions) is ignored: a workload cannot ask for names.
 */
#include <openssl/err.h>
#include <openssl/rand.h>
#include <string.h>

#include <meshward/ca_service.h>
#include <meshward/spiffe.h>

#include "ca/ca_internal.h"

/* Clock skew allowed between the CA and relying parties (docs/ca.md). */
#define SVID_SKEW 10

void mw_ca_svid_init(struct mw_ca_svid *s)
{
    memset(s, 0, sizeof(*s));
    mw_dynbuf_init(&s->chain_pem, 1 << 20);
    mw_dynbuf_init(&s->leaf_der, 1 << 20);
    mw_dynbuf_init(&s->chain_der, 1 << 20);
}

void mw_ca_svid_free(struct mw_ca_svid *s)
{
    mw_dynbuf_free(&s->chain_pem);
    mw_dynbuf_free(&s->leaf_der);
    mw_dynbuf_free(&s->chain_der);
}

static const char *key_type_name(int id)
{
    switch (id) {
    case EVP_PKEY_ED25519:
        return "Ed25519";
    case EVP_PKEY_ED448:
        return "Ed448";
    case EVP_PKEY_X25519:
        return "X25519";
    case EVP_PKEY_X448:
        return "X448";
    case EVP_PKEY_DSA:
        return "DSA";
    case EVP_PKEY_DH:
        return "DH";
    case EVP_PKEY_RSA_PSS:
        return "RSA-PSS";
    case EVP_PKEY_SM2:
        return "SM2";
    default:
        return OBJ_nid2sn(id) != NULL ? OBJ_nid2sn(id) : "unknown";
    }
}

/* SVID keys: EC P-256 / P-384 or RSA 2048..8192 bits (docs/ca.md). */
static mw_result check_leaf_key(EVP_PKEY *pub, bool *is_rsa)
{
    int id = EVP_PKEY_get_base_id(pub);
    *is_rsa = id == EVP_PKEY_RSA;
    if (id == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(pub);
        MW_ENSURE(bits >= 2048, MW_E_UNSUPPORTED,
                  "RSA key of %d bits is too small for SVIDs (minimum 2048)", bits);
        MW_ENSURE(bits <= 8192, MW_E_UNSUPPORTED,
                  "RSA key of %d bits is too large for SVIDs (maximum 8192)", bits);
        return MW_SUCCESS;
    }
    if (id == EVP_PKEY_EC) {
        char group[64];
        size_t glen = 0;
        if (EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof(group), &glen) != 1) {
            ERR_clear_error();
            MW_BAIL(MW_E_UNSUPPORTED,
                    "EC key with explicit curve parameters is not allowed for SVIDs");
        }
        MW_ENSURE(strcmp(group, "prime256v1") == 0 || strcmp(group, "secp384r1") == 0,
                  MW_E_UNSUPPORTED, "EC curve %s is not allowed for SVIDs (P-256, P-384)", group);
        return MW_SUCCESS;
    }
    MW_BAIL(MW_E_UNSUPPORTED, "key type %s is not allowed for SVIDs (EC P-256/P-384, RSA >= 2048)",
            key_type_name(id));
}

static mw_result parse_csr(mw_slice der, X509_REQ **out, EVP_PKEY **pub_out)
{
    MW_ENSURE(der.n > 0, MW_E_INPUT, "CSR is empty");
    MW_ENSURE(der.n <= MW_CA_CSR_MAX, MW_E_LIMIT, "CSR is %zu bytes, more than %d", der.n,
              MW_CA_CSR_MAX);
    const uint8_t *p = der.p;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)der.n);
    if (req == NULL) {
        mw_error_openssl(MW_E_INPUT, "CSR is not a DER PKCS#10 request");
        return MW_FAILURE;
    }
    if (p != der.p + der.n) {
        X509_REQ_free(req);
        MW_BAIL(MW_E_INPUT, "CSR has %zu bytes after the request", (size_t)(der.p + der.n - p));
    }
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    if (pub == NULL) {
        X509_REQ_free(req);
        mw_error_openssl(MW_E_INPUT, "CSR public key cannot be decoded");
        return MW_FAILURE;
    }
    *out = req;
    *pub_out = pub;
    return MW_SUCCESS;
}

/* Every CSR rule: DER PKCS#10, an SVID key type, and proof of possession. */
static mw_result check_csr(mw_slice der, X509_REQ **out, EVP_PKEY **pub_out, bool *is_rsa)
{
    MW_DEFER(X509_REQ) X509_REQ *req = NULL;
    EVP_PKEY *pub = NULL;
    MW_GUARD(parse_csr(der, &req, &pub));
    MW_GUARD(check_leaf_key(pub, is_rsa));
    /* Proof of possession: the requester signed the CSR with the key it wants certified. */
    if (X509_REQ_verify(req, pub) != 1) {
        ERR_clear_error();
        MW_BAIL(MW_E_VERIFY, "CSR signature does not verify");
    }
    *out = req;
    req = NULL;
    *pub_out = pub;
    return MW_SUCCESS;
}

/* The service runs this before authorization, so a bad CSR does not spend a join token. */
mw_result mw_ca_csr_check(mw_slice der)
{
    MW_DEFER(X509_REQ) X509_REQ *req = NULL;
    EVP_PKEY *pub = NULL;
    bool is_rsa = false;
    return check_csr(der, &req, &pub, &is_rsa);
}

static mw_result add_san(X509 *x, const char *uri)
{
    MW_DEFER(GENERAL_NAMES) GENERAL_NAMES *gens = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    if (gens == NULL || gn == NULL || ia5 == NULL || ASN1_STRING_set(ia5, uri, -1) != 1) {
        GENERAL_NAME_free(gn);
        ASN1_IA5STRING_free(ia5);
        MW_BAIL(MW_E_NOMEM, "out of memory for the URI SAN");
    }
    GENERAL_NAME_set0_value(gn, GEN_URI, ia5);
    if (sk_GENERAL_NAME_push(gens, gn) <= 0) {
        GENERAL_NAME_free(gn);
        MW_BAIL(MW_E_NOMEM, "out of memory for the URI SAN");
    }
    /* Non-critical: the subject is not empty (X509-SVID §2, RFC 5280 §4.2.1.6). */
    MW_GUARD_OSSL(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT),
                  MW_E_CRYPTO, "cannot add the URI SAN");
    return MW_SUCCESS;
}

static mw_result serial_hex(X509 *x, char out[33])
{
    MW_DEFER(BIGNUM) BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    MW_ENSURE(bn != NULL, MW_E_NOMEM, "out of memory");
    char *hex = BN_bn2hex(bn);
    MW_ENSURE(hex != NULL, MW_E_NOMEM, "out of memory");
    const char *h = hex;
    while (h[0] == '0' && h[1] != '\0')
        h++;
    size_t n = strlen(h);
    if (n > 32) {
        OPENSSL_free(hex);
        MW_BAIL(MW_E_INTERNAL, "serial longer than 128 bits");
    }
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)(h[i] >= 'A' && h[i] <= 'F' ? h[i] - 'A' + 'a' : h[i]);
    OPENSSL_free(hex);
    return MW_SUCCESS;
}

static mw_result add_der(struct mw_dynbuf *b, X509 *x)
{
    int n = i2d_X509(x, NULL);
    MW_GUARD_OSSL(n, MW_E_CRYPTO, "cannot encode a certificate");
    MW_GUARD(mw_dynbuf_reserve(b, (size_t)n));
    uint8_t *p = b->p + b->n;
    MW_GUARD_OSSL(i2d_X509(x, &p), MW_E_CRYPTO, "cannot encode a certificate");
    b->n += (size_t)n;
    b->p[b->n] = '\0';
    return MW_SUCCESS;
}

mw_result mw_ca_spki_sha256(X509_PUBKEY *pk, uint8_t out[32])
{
    uint8_t *der = NULL;
    int n = i2d_X509_PUBKEY(pk, &der);
    MW_GUARD_OSSL(n, MW_E_CRYPTO, "cannot encode a public key");
    int ok = EVP_Digest(der, (size_t)n, out, NULL, EVP_sha256(), NULL);
    OPENSSL_free(der);
    MW_GUARD_OSSL(ok, MW_E_CRYPTO, "cannot hash a public key");
    return MW_SUCCESS;
}

/*
 * The CSR's SubjectPublicKeyInfo, copied field by field. X509_set_pubkey
 * would re-encode the EVP_PKEY through OpenSSL 3.0's encoder, which costs
 * more than signing the certificate (docs/ca.md, performance).
 */
static mw_result copy_spki(X509 *x, X509_REQ *req)
{
    ASN1_OBJECT *alg = NULL;
    const uint8_t *pk = NULL;
    int pklen = 0;
    X509_ALGOR *algor = NULL;
    MW_GUARD_OSSL(X509_PUBKEY_get0_param(&alg, &pk, &pklen, &algor, X509_REQ_get_X509_PUBKEY(req)),
                  MW_E_INPUT, "CSR public key cannot be read");
    int ptype = V_ASN1_UNDEF;
    const void *pval = NULL;
    X509_ALGOR_get0(NULL, &ptype, &pval, algor);
    /* check_leaf_key allowed named-curve EC (an OID parameter) and RSA (NULL) only. */
    void *param = NULL;
    if (ptype == V_ASN1_OBJECT)
        param = OBJ_dup(pval);
    else
        MW_ENSURE(ptype == V_ASN1_NULL || ptype == V_ASN1_UNDEF, MW_E_INPUT,
                  "CSR public key has unexpected algorithm parameters");
    ASN1_OBJECT *alg_copy = OBJ_dup(alg);
    uint8_t *pk_copy = OPENSSL_memdup(pk, (size_t)pklen);
    if ((ptype == V_ASN1_OBJECT && param == NULL) || alg_copy == NULL || pk_copy == NULL ||
        X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), alg_copy, ptype, param, pk_copy, pklen) !=
            1) {
        ASN1_OBJECT_free(param);
        ASN1_OBJECT_free(alg_copy);
        OPENSSL_free(pk_copy);
        MW_BAIL(MW_E_NOMEM, "cannot copy the CSR public key");
    }
    return MW_SUCCESS;
}

/* PEM "CERTIFICATE" of DER (RFC 7468 §5: base64 in lines of 64). */
static mw_result add_pem(struct mw_dynbuf *out, mw_slice der)
{
    struct mw_dynbuf b64;
    mw_dynbuf_init(&b64, 1 << 21);
    mw_result r = mw_b64_encode(der, MW_B64_STD, &b64);
    if (mw_ok(r))
        r = mw_dynbuf_add_cstr(out, "-----BEGIN CERTIFICATE-----\n");
    for (size_t i = 0; i < b64.n && mw_ok(r); i += 64) {
        r = mw_dynbuf_add(out, b64.p + i, b64.n - i < 64 ? b64.n - i : 64);
        if (mw_ok(r))
            r = mw_dynbuf_add_byte(out, '\n');
    }
    if (mw_ok(r))
        r = mw_dynbuf_add_cstr(out, "-----END CERTIFICATE-----\n");
    mw_dynbuf_free(&b64);
    return r;
}

static mw_result build_leaf(struct mw_ca_slot *slot, X509_REQ *req, bool is_rsa, const char *id,
                            int64_t nb, int64_t na, const struct mw_ca_provenance *prov,
                            struct mw_ca_svid *out)
{
    MW_DEFER(X509) X509 *x = X509_new();
    MW_DEFER(X509_NAME) X509_NAME *subject = X509_NAME_new();
    MW_ENSURE(x != NULL && subject != NULL, MW_E_NOMEM, "out of memory for an SVID");
    /* X509-SVID §2: the subject is not significant; O=SPIFFE keeps it non-empty. */
    MW_GUARD_OSSL(X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC, (const uint8_t *)"SPIFFE",
                                             -1, -1, 0),
                  MW_E_CRYPTO, "cannot build the subject");
    MW_GUARD_OSSL(X509_set_version(x, X509_VERSION_3), MW_E_CRYPTO, "cannot set version");
    MW_GUARD(mw_ca_random_serial(x));
    MW_GUARD_OSSL(X509_set_subject_name(x, subject), MW_E_CRYPTO, "cannot set subject");
    MW_GUARD_OSSL(X509_set_issuer_name(x, X509_get_subject_name(slot->cert)), MW_E_CRYPTO,
                  "cannot set issuer");
    MW_GUARD(mw_ca_set_validity(x, nb, na));
    MW_GUARD(copy_spki(x, req));
    MW_GUARD(mw_ca_add_ext(x, slot->cert, NID_basic_constraints, "critical,CA:FALSE"));
    /*
     * digitalSignature is what TLS 1.3 (and ECDHE in 1.2) uses; RSA keys also
     * get keyEncipherment for TLS 1.2 RSA key transport. No keyAgreement: no
     * static ECDH in the mesh (docs/ca.md).
     */
    MW_GUARD(mw_ca_add_ext(x, slot->cert, NID_key_usage,
                           is_rsa ? "critical,digitalSignature,keyEncipherment"
                                  : "critical,digitalSignature"));
    MW_GUARD(mw_ca_add_ext(x, slot->cert, NID_ext_key_usage, "serverAuth,clientAuth"));
    MW_GUARD(mw_ca_add_ext(x, slot->cert, NID_subject_key_identifier, "hash"));
    MW_GUARD(mw_ca_add_ext(x, slot->cert, NID_authority_key_identifier, "keyid:always"));
    MW_GUARD(add_san(x, id));
    if (prov != NULL) {
        MW_DEFER(X509_EXTENSION) X509_EXTENSION *ext = NULL;
        MW_GUARD(mw_ca_provenance_ext(prov, &ext));
        MW_GUARD_OSSL(X509_add_ext(x, ext, -1), MW_E_CRYPTO, "cannot add the provenance extension");
    }
    MW_GUARD(mw_ca_sign_cert_der(slot->key, x, &out->leaf_der));
    MW_GUARD(serial_hex(x, out->serial));
    return mw_ca_spki_sha256(X509_get_X509_PUBKEY(x), out->spki_sha256);
}

mw_result mw_ca_issue(struct mw_ca *ca, mw_slice csr_der, const char *spiffe_id, int64_t ttl,
                      const struct mw_ca_provenance *prov, const struct mw_clock *clock,
                      struct mw_ca_svid *out)
{
    struct mw_ca_slot *slot = mw_ca_active_slot(ca);
    MW_ENSURE(slot != NULL && slot->cert != NULL && slot->key != NULL, MW_E_STATE,
              "the CA has no active intermediate");
    MW_ENSURE(spiffe_id != NULL, MW_E_INPUT, "no SPIFFE ID to certify");
    struct mw_spiffe_id id;
    MW_GUARD(mw_spiffe_id_parse(mw_slice_cstr(spiffe_id), &id, NULL));
    MW_ENSURE(strcmp(id.td, ca->td) == 0, MW_E_INPUT,
              "SPIFFE ID %s is not in this CA's trust domain %s", spiffe_id, ca->td);
    MW_ENSURE(id.path[0] != '\0', MW_E_INPUT,
              "SPIFFE ID %s has no path; SVIDs name a workload (X509-SVID §3)", spiffe_id);
    MW_ENSURE(ttl >= 0, MW_E_INPUT, "SVID TTL %lld is negative", (long long)ttl);

    MW_DEFER(X509_REQ) X509_REQ *req = NULL;
    EVP_PKEY *pub = NULL;
    bool is_rsa = false;
    MW_GUARD(check_csr(csr_der, &req, &pub, &is_rsa));

    int64_t now = mw_clock_now(clock), inb, ina;
    MW_GUARD(mw_ca_cert_times(slot->cert, &inb, &ina));
    MW_ENSURE(now >= inb && now < ina, MW_E_EXPIRED,
              "intermediate %d is not valid now (valid %lld..%lld)", slot->id, (long long)inb,
              (long long)ina);
    if (ttl == 0)
        ttl = ca->default_ttl;
    if (ttl > ca->max_ttl)
        ttl = ca->max_ttl;
    int64_t nb = now - SVID_SKEW < inb ? inb : now - SVID_SKEW;
    int64_t na = now + ttl > ina ? ina : now + ttl;

    /*
     * The signature over the exact TBS bytes was checked under the
     * intermediate's key before the certificate was assembled; tests and
     * fuzz/fuzz_csr.c parse and path-validate what comes out.
     */
    MW_GUARD(build_leaf(slot, req, is_rsa, spiffe_id, nb, na, prov, out));
    MW_GUARD(mw_dynbuf_add_slice(&out->chain_der, mw_dynbuf_slice(&out->leaf_der)));
    MW_GUARD(add_der(&out->chain_der, slot->cert));
    MW_GUARD(add_pem(&out->chain_pem, mw_dynbuf_slice(&out->leaf_der)));
    MW_GUARD(mw_ca_cert_pem(slot->cert, &out->chain_pem));
    out->not_before = nb;
    out->not_after = na;
    mw_ca_key_id(slot->key, out->ca_key_id);
    return MW_SUCCESS;
}
