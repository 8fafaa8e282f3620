/*
 * SPIFFE trust bundles (SPIFFE_Trust_Domain_and_Bundle.md §4): a JWKS whose
 * keys carry "use" = "x509-svid" (a CA certificate in x5c, X509-SVID §6) or
 * "jwt-svid" (a public key with kid, JWT-SVID §6); and PEM bundles of CA
 * certificates. Parsing is strict where a lax reading could change which
 * keys are trusted (duplicate members, duplicate kids, repeated certificates)
 * and lenient where the spec asks consumers to skip (unknown use, unknown kty).
 */
#include <jansson.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <string.h>

#include <openssl/core_names.h>

#include "base/mw_ossl.h"
#include "conf/conf_json.h"
#include "spiffe/spiffe_internal.h"

const char *mw_bundle_format_name(enum mw_bundle_format fmt)
{
    switch (fmt) {
    case MW_BUNDLE_FMT_AUTO:
        return "auto";
    case MW_BUNDLE_FMT_SPIFFE:
        return "spiffe-jwks";
    case MW_BUNDLE_FMT_JWKS_JWT:
        return "jwt-jwks";
    case MW_BUNDLE_FMT_PEM:
        return "pem";
    }
    return "unknown";
}

mw_result mw_bundle_new(const char *td, struct mw_bundle **out)
{
    char name[MW_SPIFFE_TD_MAX + 1] = "";
    if (td != NULL)
        MW_GUARD(mw_spiffe_td_parse(mw_slice_cstr(td), name));
    struct mw_bundle *b = calloc(1, sizeof(*b));
    MW_ENSURE(b != NULL, MW_E_NOMEM, "out of memory");
    b->x509 = sk_X509_new_null();
    if (b->x509 == NULL) {
        free(b);
        MW_BAIL(MW_E_NOMEM, "out of memory");
    }
    memcpy(b->td, name, sizeof(name));
    *out = b;
    return MW_SUCCESS;
}

void mw_bundle_free(struct mw_bundle *b)
{
    if (b == NULL)
        return;
    sk_X509_pop_free(b->x509, X509_free);
    for (size_t i = 0; i < b->jwt_n; i++) {
        free(b->jwt[i].kid);
        EVP_PKEY_free(b->jwt[i].key);
    }
    free(b->jwt);
    free(b);
}

static void bundle_cleanup(struct mw_bundle **p)
{
    mw_bundle_free(*p);
    *p = NULL;
}
#define MW_DEFER_BUNDLE __attribute__((cleanup(bundle_cleanup)))

const char *mw_bundle_td(const struct mw_bundle *b)
{
    return b->td;
}

mw_result mw_bundle_set_td(struct mw_bundle *b, const char *td)
{
    return mw_spiffe_td_parse(mw_slice_cstr(td), b->td);
}

size_t mw_bundle_x509_count(const struct mw_bundle *b)
{
    return (size_t)sk_X509_num(b->x509);
}

size_t mw_bundle_jwt_count(const struct mw_bundle *b)
{
    return b->jwt_n;
}

bool mw_bundle_sequence(const struct mw_bundle *b, uint64_t *out)
{
    if (b->has_seq)
        *out = b->seq;
    return b->has_seq;
}

bool mw_bundle_refresh_hint(const struct mw_bundle *b, int64_t *out)
{
    if (b->has_refresh)
        *out = b->refresh;
    return b->has_refresh;
}

void mw_bundle_set_sequence(struct mw_bundle *b, uint64_t seq)
{
    b->has_seq = true;
    b->seq = seq;
}

void mw_bundle_set_refresh_hint(struct mw_bundle *b, int64_t seconds)
{
    b->has_refresh = true;
    b->refresh = seconds;
}

size_t mw_bundle_ignored(const struct mw_bundle *b)
{
    return b->ignored;
}

size_t mw_bundle_x5c_extra(const struct mw_bundle *b)
{
    return b->x5c_extra;
}

mw_result mw_bundle_x509_info(const struct mw_bundle *b, size_t i, struct mw_cert_info *out)
{
    MW_ENSURE(i < mw_bundle_x509_count(b), MW_E_INPUT, "no X.509 authority %zu", i);
    return mw_spiffe_cert_info(sk_X509_value(b->x509, (int)i), out);
}

static mw_result cert_der(X509 *c, struct mw_dynbuf *out);

mw_result mw_bundle_x509_der(const struct mw_bundle *b, size_t i, struct mw_dynbuf *out)
{
    MW_ENSURE(i < mw_bundle_x509_count(b), MW_E_INPUT, "no X.509 authority %zu", i);
    return cert_der(sk_X509_value(b->x509, (int)i), out);
}

mw_result mw_bundle_jwt_info(const struct mw_bundle *b, size_t i, struct mw_jwt_key_info *out)
{
    MW_ENSURE(i < b->jwt_n, MW_E_INPUT, "no JWT authority %zu", i);
    memset(out, 0, sizeof(*out));
    snprintf(out->kid, sizeof(out->kid), "%s", b->jwt[i].kid);
    mw_spiffe_key_desc(b->jwt[i].key, out->key_type, sizeof(out->key_type), &out->key_bits,
                       out->curve, sizeof(out->curve));
    return MW_SUCCESS;
}

const struct mw_jwt_authority *mw_bundle_find_jwt(const struct mw_bundle *b, mw_slice kid)
{
    for (size_t i = 0; i < b->jwt_n; i++) {
        if (mw_slice_eq_cstr(kid, b->jwt[i].kid))
            return &b->jwt[i];
    }
    return NULL;
}

/* ------------------------------------------------------------ adding authorities */

static mw_result cert_der(X509 *c, struct mw_dynbuf *out)
{
    int len = i2d_X509(c, NULL);
    MW_ENSURE(len > 0, MW_E_CRYPTO, "cannot encode a certificate");
    MW_GUARD(mw_dynbuf_reserve(out, (size_t)len));
    unsigned char *p = out->p + out->n;
    MW_ENSURE(i2d_X509(c, &p) == len, MW_E_CRYPTO, "cannot encode a certificate");
    out->n += (size_t)len;
    out->p[out->n] = '\0';
    return MW_SUCCESS;
}

/* Takes ownership of cert. what names it in errors ("key 3", "PEM block 2"). */
static mw_result add_cert(struct mw_bundle *b, X509 *cert_in, const char *what)
{
    MW_DEFER(X509) X509 *cert = cert_in;
    MW_ENSURE(mw_bundle_x509_count(b) < MW_BUNDLE_MAX_KEYS, MW_E_LIMIT,
              "more than %d X.509 authorities", MW_BUNDLE_MAX_KEYS);
    /* d2i_X509 decodes the key lazily; an authority whose key cannot be read verifies nothing. */
    if (X509_get0_pubkey(cert) == NULL) {
        mw_error_openssl(MW_E_INPUT, "%s: certificate has an unreadable public key", what);
        return MW_FAILURE;
    }
    /*
     * The same CA twice is harmless to trust but a sign of a broken or
     * tampered bundle (and makes "remove this CA" edits ambiguous): refuse it.
     */
    for (int i = 0; i < sk_X509_num(b->x509); i++) {
        MW_ENSURE(X509_cmp(sk_X509_value(b->x509, i), cert) != 0, MW_E_INPUT,
                  "%s repeats X.509 authority %d", what, i + 1);
    }
    MW_ENSURE(sk_X509_push(b->x509, cert) > 0, MW_E_NOMEM, "out of memory");
    cert = NULL;
    return MW_SUCCESS;
}

static mw_result parse_cert_der(const unsigned char *der, size_t n, const char *what, X509 **out)
{
    MW_ENSURE(n <= LONG_MAX, MW_E_LIMIT, "%s: certificate too large", what);
    const unsigned char *p = der;
    X509 *c = d2i_X509(NULL, &p, (long)n);
    if (c == NULL) {
        mw_error_openssl(MW_E_INPUT, "%s: malformed certificate", what);
        return MW_FAILURE;
    }
    if ((size_t)(p - der) != n) {
        X509_free(c);
        MW_BAIL(MW_E_INPUT, "%s: malformed certificate: %zu bytes after its end", what,
                n - (size_t)(p - der));
    }
    *out = c;
    return MW_SUCCESS;
}

mw_result mw_bundle_add_x509_der(struct mw_bundle *b, mw_slice der)
{
    X509 *c = NULL;
    MW_GUARD(parse_cert_der(der.p, der.n, "certificate", &c));
    return add_cert(b, c, "certificate");
}

static mw_result check_kid(mw_slice kid, size_t index)
{
    MW_ENSURE(kid.n > 0, MW_E_INPUT, "key %zu: kid is empty", index);
    MW_ENSURE(kid.n < sizeof(((struct mw_jwt_key_info *)0)->kid), MW_E_LIMIT,
              "key %zu: kid is %zu bytes, limit 255", index, kid.n);
    MW_ENSURE(memchr(kid.p, 0, kid.n) == NULL, MW_E_INPUT, "key %zu: kid contains a NUL", index);
    return MW_SUCCESS;
}

/* Takes ownership of key. */
static mw_result add_jwt(struct mw_bundle *b, mw_slice kid, EVP_PKEY *key_in, size_t index)
{
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = key_in;
    MW_GUARD(check_kid(kid, index));
    MW_ENSURE(b->jwt_n < MW_BUNDLE_MAX_KEYS, MW_E_LIMIT, "more than %d JWT authorities",
              MW_BUNDLE_MAX_KEYS);
    /* JWT-SVID §6: kid selects the key; two keys under one kid make the choice ambiguous. */
    MW_ENSURE(mw_bundle_find_jwt(b, kid) == NULL, MW_E_INPUT, "key %zu: kid \"%.*s\" is repeated",
              index, (int)kid.n, (const char *)kid.p);
    if (b->jwt_n == b->jwt_cap) {
        size_t cap = b->jwt_cap ? b->jwt_cap * 2 : 8;
        struct mw_jwt_authority *n = realloc(b->jwt, cap * sizeof(*n));
        MW_ENSURE(n != NULL, MW_E_NOMEM, "out of memory");
        b->jwt = n;
        b->jwt_cap = cap;
    }
    char *k = malloc(kid.n + 1);
    MW_ENSURE(k != NULL, MW_E_NOMEM, "out of memory");
    memcpy(k, kid.p, kid.n);
    k[kid.n] = '\0';
    b->jwt[b->jwt_n].kid = k;
    b->jwt[b->jwt_n].key = key;
    b->jwt_n++;
    key = NULL;
    return MW_SUCCESS;
}

mw_result mw_bundle_add_jwt_spki(struct mw_bundle *b, const char *kid, mw_slice spki)
{
    MW_ENSURE(spki.n <= LONG_MAX, MW_E_LIMIT, "public key too large");
    const unsigned char *p = spki.p;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)spki.n);
    if (key == NULL) {
        mw_error_openssl(MW_E_INPUT, "malformed SubjectPublicKeyInfo");
        return MW_FAILURE;
    }
    if ((size_t)(p - spki.p) != spki.n) {
        EVP_PKEY_free(key);
        MW_BAIL(MW_E_INPUT, "malformed SubjectPublicKeyInfo: trailing bytes");
    }
    return add_jwt(b, mw_slice_cstr(kid), key, b->jwt_n + 1);
}

/* ------------------------------------------------------------ JWK <-> EVP_PKEY */

static mw_result jwk_b64url(json_t *jwk, const char *member, size_t index, struct mw_dynbuf *out)
{
    json_t *v = json_object_get(jwk, member);
    MW_ENSURE(v != NULL, MW_E_INPUT, "key %zu: no \"%s\"", index, member);
    MW_ENSURE(json_is_string(v), MW_E_INPUT, "key %zu: \"%s\" is not a string", index, member);
    mw_slice s = mw_slice_make(json_string_value(v), json_string_length(v));
    if (mw_failed(mw_b64_decode(s, MW_B64_URL, out))) {
        mw_error_prefix("key %zu: \"%s\": ", index, member);
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

struct curve {
    const char *jwk;   /* RFC 7518 §6.2.1.1 "crv" */
    const char *group; /* OpenSSL group name */
    size_t bytes;      /* coordinate size */
};

static const struct curve curves[] = {
    {"P-256", "prime256v1", 32},
    {"P-384", "secp384r1", 48},
    {"P-521", "secp521r1", 66},
};

static mw_result fromdata(const char *type, OSSL_PARAM_BLD *bld, size_t index, EVP_PKEY **out)
{
    MW_DEFER(OSSL_PARAM) OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    MW_ENSURE(params != NULL, MW_E_NOMEM, "out of memory");
    MW_DEFER(EVP_PKEY_CTX) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    MW_ENSURE(ctx != NULL, MW_E_CRYPTO, "no %s support in OpenSSL", type);
    MW_GUARD_OSSL(EVP_PKEY_fromdata_init(ctx), MW_E_CRYPTO, "EVP_PKEY_fromdata_init");
    EVP_PKEY *key = NULL;
    if (EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        mw_error_openssl(MW_E_INPUT, "key %zu: not a valid %s public key", index, type);
        return MW_FAILURE;
    }
    /*
     * An EC point off the curve invites invalid-curve attacks: check it. Not
     * for RSA: OpenSSL 3.0's RSA public check runs a randomized Miller-Rabin
     * test that sometimes refuses a genuine modulus (seen while fuzzing);
     * jwk_rsa checks what matters for verification instead.
     */
    if (strcmp(type, "EC") != 0) {
        *out = key;
        return MW_SUCCESS;
    }
    MW_DEFER(EVP_PKEY_CTX) EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (check == NULL || EVP_PKEY_public_check(check) <= 0) {
        EVP_PKEY_free(key);
        mw_error_openssl(MW_E_INPUT, "key %zu: %s public key fails its consistency check", index,
                         type);
        return MW_FAILURE;
    }
    *out = key;
    return MW_SUCCESS;
}

static mw_result jwk_ec(json_t *jwk, size_t index, EVP_PKEY **out, bool *unsupported)
{
    json_t *crv = json_object_get(jwk, "crv");
    MW_ENSURE(json_is_string(crv), MW_E_INPUT, "key %zu: EC key without a \"crv\" string", index);
    const struct curve *c = NULL;
    for (size_t i = 0; i < MW_ARRAY_LEN(curves); i++) {
        if (strcmp(json_string_value(crv), curves[i].jwk) == 0)
            c = &curves[i];
    }
    if (c == NULL) {
        *unsupported = true;
        return MW_SUCCESS;
    }
    struct mw_dynbuf pt;
    mw_dynbuf_init(&pt, 1 + 2 * 66 + 8);
    mw_result r = mw_dynbuf_add_byte(&pt, 0x04); /* SEC 1 §2.3.3 uncompressed point */
    size_t after_x = 0;
    if (mw_ok(r))
        r = jwk_b64url(jwk, "x", index, &pt);
    after_x = pt.n;
    if (mw_ok(r))
        r = jwk_b64url(jwk, "y", index, &pt);
    /* RFC 7518 §6.2.1.2-3: coordinates are the full size of the field, no shorter. */
    if (mw_ok(r) && (after_x != 1 + c->bytes || pt.n != 1 + 2 * c->bytes)) {
        mw_error_set(MW_E_INPUT, "key %zu: %s coordinates must be %zu bytes each", index, c->jwk,
                     c->bytes);
        r = MW_FAILURE;
    }
    MW_DEFER(OSSL_PARAM_BLD) OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (mw_ok(r) &&
        (bld == NULL ||
         !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, c->group, 0) ||
         !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt.p, pt.n))) {
        mw_error_set(MW_E_NOMEM, "out of memory");
        r = MW_FAILURE;
    }
    if (mw_ok(r))
        r = fromdata("EC", bld, index, out);
    mw_dynbuf_free(&pt);
    return r;
}

static mw_result unsigned_bn(json_t *jwk, const char *member, size_t index, BIGNUM **out)
{
    struct mw_dynbuf v;
    mw_dynbuf_init(&v, 2048);
    mw_result r = jwk_b64url(jwk, member, index, &v);
    /* RFC 7518 §6.3.1.1: base64urlUInt, the shortest big-endian form: no leading zero. */
    if (mw_ok(r) && (v.n == 0 || v.p[0] == 0)) {
        mw_error_set(MW_E_INPUT, "key %zu: \"%s\" is empty or has a leading zero octet", index,
                     member);
        r = MW_FAILURE;
    }
    if (mw_ok(r)) {
        *out = BN_bin2bn(v.p, (int)v.n, NULL);
        if (*out == NULL) {
            mw_error_set(MW_E_NOMEM, "out of memory");
            r = MW_FAILURE;
        }
    }
    mw_dynbuf_free(&v);
    return r;
}

static mw_result jwk_rsa(json_t *jwk, size_t index, EVP_PKEY **out)
{
    MW_DEFER(BIGNUM) BIGNUM *n = NULL;
    MW_DEFER(BIGNUM) BIGNUM *e = NULL;
    MW_GUARD(unsigned_bn(jwk, "n", index, &n));
    MW_GUARD(unsigned_bn(jwk, "e", index, &e));
    MW_ENSURE(BN_num_bits(n) >= 2048, MW_E_INPUT, "key %zu: RSA key of %d bits, want >= 2048",
              index, BN_num_bits(n));
    MW_ENSURE(BN_num_bits(n) <= 16384, MW_E_LIMIT, "key %zu: RSA key of %d bits, limit 16384",
              index, BN_num_bits(n));
    /* RFC 8017 §3.1: n is a product of odd primes, e odd and at least 3. */
    MW_ENSURE(BN_is_odd(n) && BN_is_odd(e) && BN_num_bits(e) >= 2 && BN_num_bits(e) <= 256,
              MW_E_INPUT, "key %zu: RSA n must be odd and e an odd number from 3 to 2^256", index);
    MW_DEFER(OSSL_PARAM_BLD) OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    MW_ENSURE(bld != NULL && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
                  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e),
              MW_E_NOMEM, "out of memory");
    return fromdata("RSA", bld, index, out);
}

static mw_result jwk_okp(json_t *jwk, size_t index, EVP_PKEY **out, bool *unsupported)
{
    json_t *crv = json_object_get(jwk, "crv");
    MW_ENSURE(json_is_string(crv), MW_E_INPUT, "key %zu: OKP key without a \"crv\" string", index);
    int type;
    size_t len;
    /* RFC 8037 §2: Ed25519 and Ed448 sign; X25519/X448 only agree keys, so no use here. */
    if (strcmp(json_string_value(crv), "Ed25519") == 0) {
        type = EVP_PKEY_ED25519;
        len = 32;
    } else if (strcmp(json_string_value(crv), "Ed448") == 0) {
        type = EVP_PKEY_ED448;
        len = 57;
    } else {
        *unsupported = true;
        return MW_SUCCESS;
    }
    struct mw_dynbuf x;
    mw_dynbuf_init(&x, 128);
    mw_result r = jwk_b64url(jwk, "x", index, &x);
    if (mw_ok(r) && x.n != len) {
        mw_error_set(MW_E_INPUT, "key %zu: %s \"x\" is %zu bytes, want %zu", index,
                     json_string_value(crv), x.n, len);
        r = MW_FAILURE;
    }
    if (mw_ok(r)) {
        *out = EVP_PKEY_new_raw_public_key(type, NULL, x.p, x.n);
        if (*out == NULL) {
            mw_error_openssl(MW_E_INPUT, "key %zu: bad %s key", index, json_string_value(crv));
            r = MW_FAILURE;
        }
    }
    mw_dynbuf_free(&x);
    return r;
}

/* A JWK public key (RFC 7517, RFC 7518 §6, RFC 8037); *unsupported for a kty or crv we skip. */
static mw_result jwk_to_pkey(json_t *jwk, size_t index, EVP_PKEY **out, bool *unsupported)
{
    json_t *kty = json_object_get(jwk, "kty");
    *unsupported = false;
    *out = NULL;
    MW_ENSURE(kty != NULL, MW_E_INPUT, "key %zu: no \"kty\" (RFC 7517 §4.1 requires it)", index);
    MW_ENSURE(json_is_string(kty), MW_E_INPUT, "key %zu: \"kty\" is not a string", index);
    const char *t = json_string_value(kty);
    if (strcmp(t, "EC") == 0)
        return jwk_ec(jwk, index, out, unsupported);
    if (strcmp(t, "RSA") == 0)
        return jwk_rsa(jwk, index, out);
    if (strcmp(t, "OKP") == 0)
        return jwk_okp(jwk, index, out, unsupported);
    *unsupported = true;
    return MW_SUCCESS;
}

static mw_result set_b64url(json_t *obj, const char *member, const uint8_t *p, size_t n)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 8192);
    mw_result r = mw_b64_encode(mw_slice_make(p, n), MW_B64_URL, &b);
    if (mw_ok(r) && json_object_set_new(obj, member, json_stringn((const char *)b.p, b.n)) != 0) {
        mw_error_set(MW_E_NOMEM, "out of memory");
        r = MW_FAILURE;
    }
    mw_dynbuf_free(&b);
    return r;
}

static mw_result set_bn(json_t *obj, const char *member, const BIGNUM *bn, int pad)
{
    int n = pad > 0 ? pad : BN_num_bytes(bn);
    MW_ENSURE(n > 0 && n <= 2048, MW_E_INTERNAL, "bad key parameter size %d", n);
    uint8_t buf[2048];
    MW_ENSURE(BN_bn2binpad(bn, buf, n) == n, MW_E_CRYPTO, "cannot encode a key parameter");
    return set_b64url(obj, member, buf, (size_t)n);
}

static mw_result set_str(json_t *obj, const char *member, const char *value)
{
    MW_ENSURE(json_object_set_new(obj, member, json_string(value)) == 0, MW_E_NOMEM,
              "out of memory");
    return MW_SUCCESS;
}

/* kty and the public parameters of key, for writing (RFC 7518 §6, RFC 8037 §2). */
static mw_result pkey_to_jwk(const EVP_PKEY *key, json_t *obj)
{
    int id = EVP_PKEY_get_base_id(key);
    if (id == EVP_PKEY_EC) {
        char type[16], crv[16];
        int bits = 0;
        mw_spiffe_key_desc(key, type, sizeof(type), &bits, crv, sizeof(crv));
        const struct curve *c = NULL;
        for (size_t i = 0; i < MW_ARRAY_LEN(curves); i++) {
            if (strcmp(crv, curves[i].jwk) == 0)
                c = &curves[i];
        }
        MW_ENSURE(c != NULL, MW_E_UNSUPPORTED, "EC curve %s has no JWK name", crv);
        MW_DEFER(BIGNUM) BIGNUM *x = NULL;
        MW_DEFER(BIGNUM) BIGNUM *y = NULL;
        MW_ENSURE(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) > 0 &&
                      EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) > 0,
                  MW_E_CRYPTO, "cannot read an EC public key");
        MW_GUARD(set_str(obj, "kty", "EC"));
        MW_GUARD(set_str(obj, "crv", c->jwk));
        MW_GUARD(set_bn(obj, "x", x, (int)c->bytes));
        MW_GUARD(set_bn(obj, "y", y, (int)c->bytes));
        return MW_SUCCESS;
    }
    if (id == EVP_PKEY_RSA) {
        MW_DEFER(BIGNUM) BIGNUM *n = NULL;
        MW_DEFER(BIGNUM) BIGNUM *e = NULL;
        MW_ENSURE(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) > 0 &&
                      EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) > 0,
                  MW_E_CRYPTO, "cannot read an RSA public key");
        MW_GUARD(set_str(obj, "kty", "RSA"));
        MW_GUARD(set_bn(obj, "n", n, 0));
        MW_GUARD(set_bn(obj, "e", e, 0));
        return MW_SUCCESS;
    }
    if (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) {
        uint8_t raw[64];
        size_t len = sizeof(raw);
        MW_ENSURE(EVP_PKEY_get_raw_public_key(key, raw, &len) > 0, MW_E_CRYPTO,
                  "cannot read an EdDSA public key");
        MW_GUARD(set_str(obj, "kty", "OKP"));
        MW_GUARD(set_str(obj, "crv", id == EVP_PKEY_ED25519 ? "Ed25519" : "Ed448"));
        MW_GUARD(set_b64url(obj, "x", raw, len));
        return MW_SUCCESS;
    }
    MW_BAIL(MW_E_UNSUPPORTED, "key type %d cannot be written as a JWK", id);
}

/* ------------------------------------------------------------ JWKS parse */

static mw_result parse_x509_entry(struct mw_bundle *b, json_t *jwk, size_t index)
{
    json_t *x5c = json_object_get(jwk, "x5c");
    /* X509-SVID §6.2: "If x5c is not set, or is empty, then the entry MUST be ignored." */
    if (x5c == NULL || (json_is_array(x5c) && json_array_size(x5c) == 0)) {
        b->ignored++;
        return MW_SUCCESS;
    }
    MW_ENSURE(json_is_array(x5c), MW_E_INPUT, "key %zu: \"x5c\" is not an array", index);
    /*
     * X509-SVID §6.1 says a publisher puts exactly one certificate in x5c; §6.2
     * says a consumer uses the first and MUST ignore the rest. We consume as
     * §6.2 says (go-spiffe rejects instead): the extra values add no trust,
     * since only the first becomes an authority, and refusing the whole bundle
     * would cut off a trust domain over a publisher's formatting slip. We count
     * them so that `meshward bundle inspect` can show the publisher's fault,
     * and we write exactly one (mw_bundle_write_jwks).
     */
    if (json_array_size(x5c) > 1)
        b->x5c_extra++;
    json_t *first = json_array_get(x5c, 0);
    MW_ENSURE(json_is_string(first), MW_E_INPUT, "key %zu: x5c[0] is not a string", index);
    struct mw_dynbuf der;
    mw_dynbuf_init(&der, MW_SPIFFE_FILE_MAX);
    char what[48];
    snprintf(what, sizeof(what), "key %zu x5c[0]", index);
    /* RFC 7517 §4.7: x5c values are base64 (not base64url) DER. */
    mw_result r = mw_b64_decode(mw_slice_make(json_string_value(first), json_string_length(first)),
                                MW_B64_STD, &der);
    if (mw_failed(r))
        mw_error_prefix("%s: ", what);
    X509 *cert = NULL;
    if (mw_ok(r))
        r = parse_cert_der(der.p, der.n, what, &cert);
    mw_dynbuf_free(&der);
    MW_GUARD(r);
    snprintf(what, sizeof(what), "key %zu", index);
    return add_cert(b, cert, what);
}

static mw_result parse_jwt_entry(struct mw_bundle *b, json_t *jwk, size_t index)
{
    json_t *kid = json_object_get(jwk, "kid");
    /* JWT-SVID §6: "the kid parameter MUST be set" for jwt-svid entries. */
    MW_ENSURE(kid != NULL, MW_E_INPUT, "key %zu: jwt-svid key has no kid", index);
    MW_ENSURE(json_is_string(kid), MW_E_INPUT, "key %zu: kid is not a string", index);
    mw_slice kids = mw_slice_make(json_string_value(kid), json_string_length(kid));
    MW_GUARD(check_kid(kids, index));
    EVP_PKEY *key = NULL;
    bool unsupported = false;
    MW_GUARD(jwk_to_pkey(jwk, index, &key, &unsupported));
    if (unsupported) {
        /* RFC 7517 §5: members with unknown kty are ignored; so is a curve we cannot use. */
        b->ignored++;
        return MW_SUCCESS;
    }
    return add_jwt(b, kids, key, index);
}

static mw_result parse_u64_member(json_t *root, const char *name, bool *has, uint64_t *out)
{
    json_t *v = json_object_get(root, name);
    *has = v != NULL;
    if (v == NULL)
        return MW_SUCCESS;
    MW_ENSURE(json_is_integer(v), MW_E_INPUT, "\"%s\" is not an integer", name);
    json_int_t i = json_integer_value(v);
    MW_ENSURE(i >= 0, MW_E_INPUT, "\"%s\" is negative", name);
    *out = (uint64_t)i;
    return MW_SUCCESS;
}

static mw_result parse_jwks(mw_slice data, enum mw_bundle_format fmt, struct mw_bundle *b)
{
    json_error_t jerr;
    MW_DEFER_JSON json_t *root =
        json_loadb((const char *)data.p, data.n, JSON_REJECT_DUPLICATES, &jerr);
    MW_ENSURE(root != NULL, MW_E_INPUT, "bundle JSON %d:%d: %s", jerr.line, jerr.column, jerr.text);
    MW_ENSURE(json_is_object(root), MW_E_INPUT, "bundle JSON is not an object");

    bool has = false;
    uint64_t v = 0;
    /* SPIFFE_Trust_Domain_and_Bundle §4.1.1 and §4.1.2. */
    MW_GUARD(parse_u64_member(root, "spiffe_sequence", &has, &v));
    if (has)
        mw_bundle_set_sequence(b, v);
    MW_GUARD(parse_u64_member(root, "spiffe_refresh_hint", &has, &v));
    if (has) {
        MW_ENSURE(v <= INT64_MAX, MW_E_INPUT, "\"spiffe_refresh_hint\" is too large");
        mw_bundle_set_refresh_hint(b, (int64_t)v);
    }

    json_t *keys = json_object_get(root, "keys");
    MW_ENSURE(keys == NULL || json_is_array(keys), MW_E_INPUT, "\"keys\" is not an array");
    size_t n = keys != NULL ? json_array_size(keys) : 0;
    MW_ENSURE(n <= MW_BUNDLE_MAX_KEYS, MW_E_LIMIT, "%zu keys, limit %d", n, MW_BUNDLE_MAX_KEYS);
    for (size_t i = 0; i < n; i++) {
        json_t *jwk = json_array_get(keys, i);
        size_t index = i + 1;
        MW_ENSURE(json_is_object(jwk), MW_E_INPUT, "key %zu is not an object", index);
        json_t *use = json_object_get(jwk, "use");
        MW_ENSURE(use == NULL || json_is_string(use), MW_E_INPUT,
                  "key %zu: \"use\" is not a string", index);
        const char *u = use != NULL ? json_string_value(use) : NULL;
        if (fmt == MW_BUNDLE_FMT_JWKS_JWT) {
            /* A plain JWKS of JWT authorities (OIDC style): no use, or "sig", or "jwt-svid". */
            if (u == NULL || strcmp(u, "sig") == 0 || strcmp(u, "jwt-svid") == 0)
                MW_GUARD(parse_jwt_entry(b, jwk, index));
            else
                b->ignored++;
            continue;
        }
        /* §4.2.2: "The use parameter MUST be set"; unknown values MUST be ignored. */
        MW_ENSURE(u != NULL, MW_E_INPUT, "key %zu has no \"use\" (a SPIFFE bundle requires it)",
                  index);
        if (strcmp(u, "x509-svid") == 0)
            MW_GUARD(parse_x509_entry(b, jwk, index));
        else if (strcmp(u, "jwt-svid") == 0)
            MW_GUARD(parse_jwt_entry(b, jwk, index));
        else
            b->ignored++;
    }
    MW_ENSURE(mw_bundle_x509_count(b) + b->jwt_n > 0, MW_E_INPUT,
              "bundle has no authorities (no usable x509-svid or jwt-svid keys)");
    return MW_SUCCESS;
}

/* ------------------------------------------------------------ PEM parse */

static mw_result parse_pem(mw_slice data, struct mw_bundle *b)
{
    MW_ENSURE(data.n > 0, MW_E_INPUT, "bundle is empty");
    MW_ENSURE(mw_pem_present(data), MW_E_INPUT, "bundle is neither JSON nor PEM");
    MW_ENSURE(data.n <= INT_MAX, MW_E_LIMIT, "bundle too large");
    MW_DEFER(BIO) BIO *in = BIO_new_mem_buf(data.p, (int)data.n);
    MW_ENSURE(in != NULL, MW_E_NOMEM, "out of memory");
    for (size_t index = 1;; index++) {
        struct mw_pem_block blk;
        int got = 0;
        MW_GUARD(mw_pem_next(in, &blk, &got));
        if (!got)
            break;
        char what[48];
        snprintf(what, sizeof(what), "PEM block %zu", index);
        mw_result r = MW_SUCCESS;
        X509 *cert = NULL;
        if (strcmp(blk.name, "CERTIFICATE") != 0) {
            /* A key in a trust bundle is a leak or a mix-up; either way not a CA. */
            mw_error_set(MW_E_INPUT, "%s is %s, want CERTIFICATE", what, blk.name);
            OPENSSL_cleanse(blk.data, (size_t)blk.len);
            r = MW_FAILURE;
        } else {
            r = parse_cert_der(blk.data, (size_t)blk.len, what, &cert);
        }
        mw_pem_block_free(&blk);
        MW_GUARD(r);
        MW_GUARD(add_cert(b, cert, what));
    }
    MW_ENSURE(mw_bundle_x509_count(b) > 0, MW_E_INPUT, "no certificates found");
    return MW_SUCCESS;
}

static enum mw_bundle_format detect(mw_slice data)
{
    for (size_t i = 0; i < data.n; i++) {
        uint8_t c = data.p[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        return (c == '{' || c == '[') ? MW_BUNDLE_FMT_SPIFFE : MW_BUNDLE_FMT_PEM;
    }
    return MW_BUNDLE_FMT_PEM;
}

mw_result mw_bundle_parse(mw_slice data, enum mw_bundle_format fmt, const char *td,
                          struct mw_bundle **out, enum mw_bundle_format *detected)
{
    MW_ENSURE(data.n <= MW_SPIFFE_FILE_MAX, MW_E_LIMIT, "bundle of %zu bytes, limit %u", data.n,
              MW_SPIFFE_FILE_MAX);
    if (fmt == MW_BUNDLE_FMT_AUTO)
        fmt = detect(data);
    if (detected != NULL)
        *detected = fmt;
    MW_DEFER_BUNDLE struct mw_bundle *b = NULL;
    MW_GUARD(mw_bundle_new(td, &b));
    if (fmt == MW_BUNDLE_FMT_PEM)
        MW_GUARD(parse_pem(data, b));
    else
        MW_GUARD(parse_jwks(data, fmt, b));
    ERR_clear_error();
    *out = b;
    b = NULL;
    return MW_SUCCESS;
}

mw_result mw_bundle_load_file(const char *path, enum mw_bundle_format fmt, const char *td,
                              struct mw_bundle **out, enum mw_bundle_format *detected)
{
    struct mw_dynbuf buf;
    mw_dynbuf_init(&buf, MW_SPIFFE_FILE_MAX);
    mw_result r = mw_file_read(path, MW_SPIFFE_FILE_MAX, &buf);
    if (mw_ok(r)) {
        r = mw_bundle_parse(mw_dynbuf_slice(&buf), fmt, td, out, detected);
        if (mw_failed(r))
            mw_error_prefix("%s: ", path);
    }
    mw_dynbuf_free(&buf);
    return r;
}

/* ------------------------------------------------------------ JWKS write */

static mw_result write_keys(const struct mw_bundle *b, json_t *keys)
{
    for (int i = 0; i < sk_X509_num(b->x509); i++) {
        X509 *c = sk_X509_value(b->x509, i);
        MW_DEFER_JSON json_t *k = json_object();
        MW_ENSURE(k != NULL, MW_E_NOMEM, "out of memory");
        MW_GUARD(set_str(k, "use", "x509-svid"));
        EVP_PKEY *pub = X509_get0_pubkey(c);
        MW_ENSURE(pub != NULL, MW_E_INPUT, "X.509 authority %d has an unreadable key", i + 1);
        MW_GUARD(pkey_to_jwk(pub, k));
        struct mw_dynbuf der, b64;
        mw_dynbuf_init(&der, MW_SPIFFE_FILE_MAX);
        mw_dynbuf_init(&b64, MW_SPIFFE_FILE_MAX * 2);
        mw_result r = cert_der(c, &der);
        if (mw_ok(r))
            r = mw_b64_encode(mw_dynbuf_slice(&der), MW_B64_STD, &b64);
        json_t *arr = mw_ok(r) ? json_array() : NULL;
        if (mw_ok(r) &&
            (arr == NULL ||
             json_array_append_new(arr, json_stringn((const char *)b64.p, b64.n)) != 0 ||
             json_object_set_new(k, "x5c", arr) != 0)) {
            mw_error_set(MW_E_NOMEM, "out of memory");
            r = MW_FAILURE;
        }
        mw_dynbuf_free(&der);
        mw_dynbuf_free(&b64);
        MW_GUARD(r);
        MW_ENSURE(json_array_append(keys, k) == 0, MW_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < b->jwt_n; i++) {
        MW_DEFER_JSON json_t *k = json_object();
        MW_ENSURE(k != NULL, MW_E_NOMEM, "out of memory");
        MW_GUARD(set_str(k, "use", "jwt-svid"));
        MW_GUARD(set_str(k, "kid", b->jwt[i].kid));
        MW_GUARD(pkey_to_jwk(b->jwt[i].key, k));
        MW_ENSURE(json_array_append(keys, k) == 0, MW_E_NOMEM, "out of memory");
    }
    return MW_SUCCESS;
}

mw_result mw_bundle_write_jwks(const struct mw_bundle *b, struct mw_dynbuf *out)
{
    MW_DEFER_JSON json_t *root = json_object();
    MW_DEFER_JSON json_t *keys = json_array();
    MW_ENSURE(root != NULL && keys != NULL, MW_E_NOMEM, "out of memory");
    MW_GUARD(write_keys(b, keys));
    MW_ENSURE(json_object_set(root, "keys", keys) == 0, MW_E_NOMEM, "out of memory");
    if (b->has_seq) {
        MW_ENSURE(b->seq <= (uint64_t)INT64_MAX, MW_E_LIMIT, "sequence too large for JSON");
        MW_ENSURE(json_object_set_new(root, "spiffe_sequence", json_integer((json_int_t)b->seq)) ==
                      0,
                  MW_E_NOMEM, "out of memory");
    }
    if (b->has_refresh)
        MW_ENSURE(json_object_set_new(root, "spiffe_refresh_hint",
                                      json_integer((json_int_t)b->refresh)) == 0,
                  MW_E_NOMEM, "out of memory");
    char *text = json_dumps(root, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    MW_ENSURE(text != NULL, MW_E_NOMEM, "out of memory");
    mw_result r = mw_dynbuf_add_cstr(out, text);
    free(text);
    MW_GUARD(r);
    return mw_dynbuf_add_byte(out, '\n');
}
