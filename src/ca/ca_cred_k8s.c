/*
 * Kubernetes projected service-account tokens (a compact JWS, RFC 7515 §7.1,
 * carrying a JWT, RFC 7519) verified against the cluster's JWKS, and mapped
 * to spiffe://TD/ns/NS/sa/SA.
 *
 * The order matters: the header is read only to pick the key; the signature
 * is verified before any claim is looked at, so nothing an attacker wrote in
 * an unsigned payload steers a decision.
 */
#include <inttypes.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <string.h>

#include <meshward/conf.h>

#include "base/mw_ossl.h"
#include "ca/ca_auth_internal.h"
#include "conf/conf_json.h"
#include "spiffe/spiffe_jose.h"

/* Real service-account tokens are 1-2 KiB; the bound caps work on hostile input. */
#define K8S_TOKEN_MAX  (16u << 10)
#define JWKS_MAX       (1u << 20)
#define JWKS_MAX_KEYS  256
#define LEEWAY_DEFAULT 60
#define LEEWAY_MAX     300
/* Kubernetes caps projected token lifetime far below this; later dates are nonsense. */
#define NUMERIC_DATE_MAX ((int64_t)1 << 40)

struct k8s_key {
    char *kid;
    EVP_PKEY *key;
};

struct mw_k8s_verifier {
    struct k8s_key *keys;
    size_t n_keys;
    char *issuer;
    char *audience;
    char td[MW_SPIFFE_TD_MAX + 1];
    int64_t leeway;
};

/* Attacker-controlled text for an error message: printable ASCII, bounded. */
static const char *shown(mw_slice s, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < s.n && o + 4 < cap; i++)
        buf[o++] = s.p[i] >= 0x20 && s.p[i] < 0x7f && s.p[i] != '"' ? (char)s.p[i] : '?';
    if (o + 4 >= cap && s.n > o) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static mw_slice jstr(const json_t *v)
{
    return mw_slice_make(json_string_value(v), json_string_length(v));
}

/* ---------------------------------------------------------------- names */

static bool label_chars(mw_slice s)
{
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        uint8_t c = s.p[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && i > 0 && i + 1 < s.n))
            return false;
    }
    return true;
}

bool mw_k8s_is_dns_label(mw_slice s)
{
    return s.n <= 63 && label_chars(s);
}

bool mw_k8s_is_dns_subdomain(mw_slice s)
{
    if (s.n == 0 || s.n > 253)
        return false;
    size_t from = 0;
    for (;;) {
        size_t dot = mw_slice_find(s, '.', from);
        if (!label_chars(mw_slice_sub(s, from, dot - from)))
            return false;
        if (dot == s.n)
            return true;
        from = dot + 1;
    }
}

/* ---------------------------------------------------------------- JWKS */

static mw_result jwk_bytes(json_t *jwk, const char *member, size_t index, struct mw_dynbuf *out)
{
    json_t *v = json_object_get(jwk, member);
    MW_ENSURE(json_is_string(v), MW_E_INPUT, "JWKS key %zu: no \"%s\" string", index, member);
    if (mw_failed(mw_b64_decode(jstr(v), MW_B64_URL, out))) {
        mw_error_prefix("JWKS key %zu \"%s\": ", index, member);
        return MW_FAILURE;
    }
    MW_ENSURE(out->n > 0, MW_E_INPUT, "JWKS key %zu: \"%s\" is empty", index, member);
    return MW_SUCCESS;
}

static mw_result pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, size_t index, EVP_PKEY **out)
{
    MW_DEFER(OSSL_PARAM) OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    MW_ENSURE(params != NULL, MW_E_NOMEM, "out of memory");
    MW_DEFER(EVP_PKEY_CTX) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    MW_GUARD_OSSL(ctx != NULL, MW_E_CRYPTO, "JWKS key %zu: no %s support", index, type);
    MW_GUARD_OSSL(EVP_PKEY_fromdata_init(ctx), MW_E_CRYPTO, "JWKS key %zu", index);
    MW_GUARD_OSSL(EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params), MW_E_INPUT,
                  "JWKS key %zu: not a valid %s public key", index, type);
    return MW_SUCCESS;
}

static mw_result jwk_rsa(json_t *jwk, size_t index, EVP_PKEY **out)
{
    struct mw_dynbuf n, e;
    mw_dynbuf_init(&n, 2048);
    mw_dynbuf_init(&e, 64);
    mw_result r = jwk_bytes(jwk, "n", index, &n);
    if (mw_ok(r))
        r = jwk_bytes(jwk, "e", index, &e);
    /* RFC 7518 §6.3.1: unsigned big-endian, so a leading zero byte is not canonical. */
    if (mw_ok(r) && (n.p[0] == 0 || e.p[0] == 0)) {
        mw_error_set(MW_E_INPUT, "JWKS key %zu: RSA n or e has a leading zero byte", index);
        r = MW_FAILURE;
    }
    if (mw_ok(r) && n.n < 256) {
        mw_error_set(MW_E_INPUT, "JWKS key %zu: RSA key of %zu bits, want >= 2048", index, n.n * 8);
        r = MW_FAILURE;
    }
    BIGNUM *bn_n = mw_ok(r) ? BN_bin2bn(n.p, (int)n.n, NULL) : NULL;
    BIGNUM *bn_e = mw_ok(r) ? BN_bin2bn(e.p, (int)e.n, NULL) : NULL;
    MW_DEFER(OSSL_PARAM_BLD) OSSL_PARAM_BLD *bld = mw_ok(r) ? OSSL_PARAM_BLD_new() : NULL;
    if (mw_ok(r) && (bn_n == NULL || bn_e == NULL || bld == NULL ||
                     !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
                     !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))) {
        mw_error_set(MW_E_NOMEM, "out of memory");
        r = MW_FAILURE;
    }
    if (mw_ok(r))
        r = pkey_fromdata("RSA", bld, index, out);
    BN_free(bn_n);
    BN_free(bn_e);
    mw_dynbuf_free(&n);
    mw_dynbuf_free(&e);
    return r;
}

static mw_result jwk_ec(json_t *jwk, size_t index, EVP_PKEY **out, bool *skip)
{
    json_t *crv = json_object_get(jwk, "crv");
    MW_ENSURE(json_is_string(crv), MW_E_INPUT, "JWKS key %zu: EC key without a \"crv\" string",
              index);
    /* ES256 is the only EC algorithm we accept, so P-256 is the only curve we load. */
    if (strcmp(json_string_value(crv), "P-256") != 0) {
        *skip = true;
        return MW_SUCCESS;
    }
    struct mw_dynbuf pt;
    mw_dynbuf_init(&pt, 256);
    mw_result r = mw_dynbuf_add_byte(&pt, 0x04); /* SEC 1 §2.3.3 uncompressed point */
    if (mw_ok(r))
        r = jwk_bytes(jwk, "x", index, &pt);
    if (mw_ok(r) && pt.n != 33) {
        mw_error_set(MW_E_INPUT, "JWKS key %zu: P-256 x must be 32 bytes", index);
        r = MW_FAILURE;
    }
    if (mw_ok(r))
        r = jwk_bytes(jwk, "y", index, &pt);
    if (mw_ok(r) && pt.n != 65) {
        mw_error_set(MW_E_INPUT, "JWKS key %zu: P-256 y must be 32 bytes", index);
        r = MW_FAILURE;
    }
    MW_DEFER(OSSL_PARAM_BLD) OSSL_PARAM_BLD *bld = mw_ok(r) ? OSSL_PARAM_BLD_new() : NULL;
    if (mw_ok(r) &&
        (bld == NULL ||
         !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
         !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt.p, pt.n))) {
        mw_error_set(MW_E_NOMEM, "out of memory");
        r = MW_FAILURE;
    }
    if (mw_ok(r))
        r = pkey_fromdata("EC", bld, index, out);
    mw_dynbuf_free(&pt);
    return r;
}

static mw_result add_key(struct mw_k8s_verifier *v, json_t *jwk, size_t index)
{
    MW_ENSURE(json_is_object(jwk), MW_E_INPUT, "JWKS key %zu is not an object", index);
    json_t *kty = json_object_get(jwk, "kty");
    MW_ENSURE(json_is_string(kty), MW_E_INPUT, "JWKS key %zu: no \"kty\" string", index);
    json_t *use = json_object_get(jwk, "use");
    /* A key published for encryption is not a token-signing key. */
    if (use != NULL && !(json_is_string(use) && strcmp(json_string_value(use), "sig") == 0))
        return MW_SUCCESS;
    json_t *kid = json_object_get(jwk, "kid");
    MW_ENSURE(json_is_string(kid) && json_string_length(kid) > 0 && json_string_length(kid) < 256,
              MW_E_INPUT, "JWKS key %zu: no \"kid\" string of 1..255 bytes", index);
    char buf[96];
    for (size_t i = 0; i < v->n_keys; i++)
        MW_ENSURE(!mw_slice_eq(mw_slice_cstr(v->keys[i].kid), jstr(kid)), MW_E_INPUT,
                  "JWKS has kid %s twice", shown(jstr(kid), buf, sizeof(buf)));
    EVP_PKEY *key = NULL;
    bool skip = false;
    if (strcmp(json_string_value(kty), "RSA") == 0)
        MW_GUARD(jwk_rsa(jwk, index, &key));
    else if (strcmp(json_string_value(kty), "EC") == 0)
        MW_GUARD(jwk_ec(jwk, index, &key, &skip));
    else
        skip = true;
    if (skip)
        return MW_SUCCESS;
    char *k = strndup(json_string_value(kid), json_string_length(kid));
    if (k == NULL || memchr(json_string_value(kid), 0, json_string_length(kid)) != NULL) {
        free(k);
        EVP_PKEY_free(key);
        MW_BAIL(MW_E_INPUT, "JWKS key %zu: kid is not text", index);
    }
    v->keys[v->n_keys].kid = k;
    v->keys[v->n_keys].key = key;
    v->n_keys++;
    return MW_SUCCESS;
}

static mw_result parse_jwks(struct mw_k8s_verifier *v, mw_slice jwks)
{
    struct mw_conf_limits lim = {.max_bytes = JWKS_MAX, .max_depth = 8};
    MW_DEFER_JSON json_t *doc = NULL;
    MW_GUARD(mw_json_load(jwks, "JWKS", &lim, &doc));
    json_t *keys = json_is_object(doc) ? json_object_get(doc, "keys") : NULL;
    MW_ENSURE(json_is_array(keys), MW_E_INPUT, "JWKS has no \"keys\" array");
    size_t n = json_array_size(keys);
    MW_ENSURE(n <= JWKS_MAX_KEYS, MW_E_LIMIT, "JWKS has %zu keys, at most %d", n, JWKS_MAX_KEYS);
    v->keys = calloc(n == 0 ? 1 : n, sizeof(*v->keys));
    MW_ENSURE(v->keys != NULL, MW_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        MW_GUARD(add_key(v, json_array_get(keys, i), i));
    MW_ENSURE(v->n_keys > 0, MW_E_INPUT, "JWKS has no RSA or EC P-256 signing key");
    return MW_SUCCESS;
}

mw_result mw_k8s_verifier_new(mw_slice jwks, const struct mw_k8s_config *cfg,
                              struct mw_k8s_verifier **out)
{
    *out = NULL;
    MW_ENSURE(cfg->issuer != NULL && cfg->issuer[0] != '\0', MW_E_INPUT,
              "Kubernetes token verifier needs an issuer");
    MW_ENSURE(cfg->audience != NULL && cfg->audience[0] != '\0', MW_E_INPUT,
              "Kubernetes token verifier needs an audience");
    MW_ENSURE(cfg->leeway_s >= 0 && cfg->leeway_s <= LEEWAY_MAX, MW_E_INPUT,
              "leeway of %" PRId64 " s, want 0 .. %d", cfg->leeway_s, LEEWAY_MAX);
    struct mw_k8s_verifier *v = calloc(1, sizeof(*v));
    MW_ENSURE(v != NULL, MW_E_NOMEM, "out of memory");
    mw_result r = mw_spiffe_td_parse(
        mw_slice_cstr(cfg->trust_domain != NULL ? cfg->trust_domain : ""), v->td);
    if (mw_failed(r))
        mw_error_prefix("trust domain: ");
    v->leeway = cfg->leeway_s == 0 ? LEEWAY_DEFAULT : cfg->leeway_s;
    v->issuer = mw_ok(r) ? strdup(cfg->issuer) : NULL;
    v->audience = mw_ok(r) ? strdup(cfg->audience) : NULL;
    if (mw_ok(r) && (v->issuer == NULL || v->audience == NULL)) {
        mw_error_set(MW_E_NOMEM, "out of memory");
        r = MW_FAILURE;
    }
    if (mw_ok(r))
        r = parse_jwks(v, jwks);
    if (mw_failed(r)) {
        mw_k8s_verifier_free(v);
        return MW_FAILURE;
    }
    *out = v;
    return MW_SUCCESS;
}

mw_result mw_k8s_verifier_load(const char *jwks_path, const struct mw_k8s_config *cfg,
                               struct mw_k8s_verifier **out)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, JWKS_MAX);
    mw_result r = mw_file_read(jwks_path, JWKS_MAX, &b);
    if (mw_ok(r))
        r = mw_k8s_verifier_new(mw_dynbuf_slice(&b), cfg, out);
    if (mw_failed(r))
        mw_error_prefix("%s: ", jwks_path);
    mw_dynbuf_free(&b);
    return r;
}

void mw_k8s_verifier_free(struct mw_k8s_verifier *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n_keys; i++) {
        free(v->keys[i].kid);
        EVP_PKEY_free(v->keys[i].key);
    }
    free(v->keys);
    free(v->issuer);
    free(v->audience);
    free(v);
}

/* ---------------------------------------------------------------- tokens */

static mw_result segment_json(mw_slice seg, const char *what, json_t **out)
{
    struct mw_dynbuf dec;
    mw_dynbuf_init(&dec, K8S_TOKEN_MAX);
    mw_result r = mw_b64_decode(seg, MW_B64_URL, &dec);
    if (mw_failed(r))
        mw_error_prefix("token %s: ", what);
    struct mw_conf_limits lim = {.max_bytes = K8S_TOKEN_MAX, .max_depth = 8};
    if (mw_ok(r)) {
        r = mw_json_load(mw_dynbuf_slice(&dec), what, &lim, out);
        if (mw_failed(r))
            mw_error_prefix("token ");
    }
    if (mw_ok(r) && !json_is_object(*out)) {
        mw_error_set(MW_E_INPUT, "token %s is not a JSON object", what);
        json_decref(*out);
        *out = NULL;
        r = MW_FAILURE;
    }
    mw_dynbuf_free(&dec);
    return r;
}

static mw_result verify_signature(bool es, EVP_PKEY *key, mw_slice input, mw_slice sig_b64)
{
    struct mw_dynbuf sig, der;
    mw_dynbuf_init(&sig, 1024);
    mw_dynbuf_init(&der, 256);
    mw_result r = mw_b64_decode(sig_b64, MW_B64_URL, &sig);
    if (mw_failed(r))
        mw_error_prefix("token signature: ");
    mw_slice s = mw_dynbuf_slice(&sig);
    /* RFC 7518 §3.4: ES256 signatures are r || s of 32 bytes each. */
    if (mw_ok(r) && es && s.n != 64) {
        mw_error_set(MW_E_VERIFY, "ES256 signature is %zu bytes, want 64 (r || s)", s.n);
        r = MW_FAILURE;
    }
    if (mw_ok(r) && es) {
        r = mw_jws_ecdsa_to_der(s, 32, &der);
        s = mw_dynbuf_slice(&der);
    }
    MW_DEFER(EVP_MD_CTX) EVP_MD_CTX *ctx = mw_ok(r) ? EVP_MD_CTX_new() : NULL;
    if (mw_ok(r) &&
        (ctx == NULL || EVP_DigestVerifyInit_ex(ctx, NULL, "SHA256", NULL, NULL, key, NULL) <= 0)) {
        mw_error_openssl(MW_E_CRYPTO, "cannot start signature verification");
        r = MW_FAILURE;
    }
    if (mw_ok(r) && EVP_DigestVerify(ctx, s.p, s.n, input.p, input.n) != 1) {
        ERR_clear_error();
        mw_error_set(MW_E_VERIFY, "token signature does not verify");
        r = MW_FAILURE;
    }
    mw_dynbuf_free(&sig);
    mw_dynbuf_free(&der);
    return r;
}

/* Header: alg from the allowlist, a kid in the JWKS whose key fits alg. */
static mw_result pick_key(const struct mw_k8s_verifier *v, json_t *hdr, bool *es,
                          const struct k8s_key **key)
{
    char buf[96];
    json_t *alg = json_object_get(hdr, "alg");
    MW_ENSURE(json_is_string(alg), MW_E_INPUT, "token header has no \"alg\" string");
    /* Only the two algorithms Kubernetes signs with. none and HS* would let a public key be
     * used as an HMAC secret (algorithm confusion); others have no business here. */
    if (mw_slice_eq_cstr(jstr(alg), "RS256"))
        *es = false;
    else if (mw_slice_eq_cstr(jstr(alg), "ES256"))
        *es = true;
    else
        MW_BAIL(MW_E_VERIFY, "token alg %s is not allowed (want RS256 or ES256)",
                shown(jstr(alg), buf, sizeof(buf)));
    /* RFC 7515 §4.1.11: no extension is understood, so crit is fatal. */
    MW_ENSURE(json_object_get(hdr, "crit") == NULL, MW_E_UNSUPPORTED,
              "token header has \"crit\" extensions meshward does not understand");
    json_t *kid = json_object_get(hdr, "kid");
    MW_ENSURE(json_is_string(kid) && json_string_length(kid) > 0, MW_E_INPUT,
              "token header has no \"kid\" string");
    *key = NULL;
    for (size_t i = 0; i < v->n_keys; i++)
        if (mw_slice_eq(mw_slice_cstr(v->keys[i].kid), jstr(kid)))
            *key = &v->keys[i];
    MW_ENSURE(*key != NULL, MW_E_VERIFY, "kid %s not in JWKS", shown(jstr(kid), buf, sizeof(buf)));
    int type = EVP_PKEY_get_base_id((*key)->key);
    MW_ENSURE(*es ? type == EVP_PKEY_EC : type == EVP_PKEY_RSA, MW_E_VERIFY,
              "token alg %s does not fit kid %s, which is an %s key", *es ? "ES256" : "RS256",
              (*key)->kid, type == EVP_PKEY_EC ? "EC" : "RSA");
    return MW_SUCCESS;
}

/* RFC 7519 §2 NumericDate; Kubernetes writes integers, and we accept only those. */
static mw_result numeric_date(json_t *claims, const char *name, bool *has, int64_t *out)
{
    json_t *v = json_object_get(claims, name);
    *has = v != NULL;
    if (v == NULL)
        return MW_SUCCESS;
    MW_ENSURE(json_is_integer(v), MW_E_INPUT, "token \"%s\" is not an integer", name);
    *out = (int64_t)json_integer_value(v);
    MW_ENSURE(*out >= 0 && *out <= NUMERIC_DATE_MAX, MW_E_INPUT, "token \"%s\" is out of range",
              name);
    return MW_SUCCESS;
}

static mw_result check_time(const struct mw_k8s_verifier *v, json_t *claims, int64_t now,
                            int64_t *exp)
{
    bool has_exp, has_nbf, has_iat;
    int64_t nbf = 0, iat = 0;
    char t1[32], t2[32];
    MW_GUARD(numeric_date(claims, "exp", &has_exp, exp));
    MW_ENSURE(has_exp, MW_E_INPUT, "token has no \"exp\" claim (an expiry is required)");
    MW_GUARD(numeric_date(claims, "nbf", &has_nbf, &nbf));
    MW_GUARD(numeric_date(claims, "iat", &has_iat, &iat));
    mw_time_format(now, t2, sizeof(t2));
    if (now >= *exp + v->leeway) {
        mw_time_format(*exp, t1, sizeof(t1));
        MW_BAIL(MW_E_EXPIRED, "token expired at %s (now %s, leeway %" PRId64 " s)", t1, t2,
                v->leeway);
    }
    if (has_nbf && nbf > now + v->leeway) {
        mw_time_format(nbf, t1, sizeof(t1));
        MW_BAIL(MW_E_EXPIRED, "token not valid before %s (now %s)", t1, t2);
    }
    if (has_iat && iat > now + v->leeway) {
        mw_time_format(iat, t1, sizeof(t1));
        MW_BAIL(MW_E_INPUT, "token issued in the future, at %s (now %s)", t1, t2);
    }
    MW_ENSURE(!has_iat || iat <= *exp, MW_E_INPUT, "token \"iat\" is after its \"exp\"");
    MW_ENSURE(!has_nbf || nbf <= *exp, MW_E_INPUT, "token \"nbf\" is after its \"exp\"");
    return MW_SUCCESS;
}

/* For a message only: a list that no longer fits is cut short, not an error. */
static void add_shown(struct mw_dynbuf *b, const char *s)
{
    if (mw_failed(mw_dynbuf_add_cstr(b, s)))
        mw_error_clear();
}

static mw_result check_aud(const struct mw_k8s_verifier *v, json_t *claims)
{
    json_t *aud = json_object_get(claims, "aud");
    MW_ENSURE(aud != NULL, MW_E_INPUT, "token has no \"aud\" claim");
    char buf[160];
    if (json_is_string(aud)) {
        MW_ENSURE(mw_slice_eq_cstr(jstr(aud), v->audience), MW_E_VERIFY,
                  "audience %s does not include %s", shown(jstr(aud), buf, sizeof(buf)),
                  v->audience);
        return MW_SUCCESS;
    }
    MW_ENSURE(json_is_array(aud) && json_array_size(aud) > 0, MW_E_INPUT,
              "token \"aud\" is not a string or a non-empty array");
    struct mw_dynbuf list;
    mw_dynbuf_init(&list, 512);
    bool found = false;
    mw_result r = mw_dynbuf_add_byte(&list, '[');
    for (size_t i = 0; mw_ok(r) && i < json_array_size(aud); i++) {
        json_t *a = json_array_get(aud, i);
        if (!json_is_string(a)) {
            mw_error_set(MW_E_INPUT, "token \"aud\"[%zu] is not a string", i);
            r = MW_FAILURE;
            break;
        }
        if (mw_slice_eq_cstr(jstr(a), v->audience))
            found = true;
        if (i > 0)
            add_shown(&list, " ");
        add_shown(&list, shown(jstr(a), buf, 64));
    }
    if (mw_ok(r) && !found) {
        add_shown(&list, "]");
        mw_error_set(MW_E_VERIFY, "audience %s does not include %s", mw_dynbuf_cstr(&list),
                     v->audience);
        r = MW_FAILURE;
    }
    mw_dynbuf_free(&list);
    return r;
}

static mw_result name_field(json_t *parent, const char *member, const char *what, bool label,
                            char *dst, size_t cap)
{
    json_t *s = json_object_get(parent, member);
    MW_ENSURE(json_is_string(s), MW_E_INPUT, "token %s is not a string", what);
    char buf[96];
    bool ok = label ? mw_k8s_is_dns_label(jstr(s)) : mw_k8s_is_dns_subdomain(jstr(s));
    MW_ENSURE(ok, MW_E_INPUT, "token %s %s is not a Kubernetes name (DNS-1123 %s)", what,
              shown(jstr(s), buf, sizeof(buf)), label ? "label" : "subdomain");
    return mw_ca_copy(dst, cap, jstr(s), what);
}

/* The identity: "kubernetes.io" claim and/or sub "system:serviceaccount:NS:SA". */
static mw_result identity(json_t *claims, struct mw_k8s_identity *id)
{
    char buf[96];
    json_t *sub = json_object_get(claims, "sub");
    MW_ENSURE(sub == NULL || json_is_string(sub), MW_E_INPUT, "token \"sub\" is not a string");
    char sub_ns[64] = "", sub_sa[254] = "";
    if (sub != NULL) {
        mw_slice s = jstr(sub);
        mw_slice pre = mw_slice_cstr("system:serviceaccount:");
        MW_ENSURE(mw_slice_has_prefix(s, pre), MW_E_INPUT,
                  "token sub %s is not system:serviceaccount:NS:SA", shown(s, buf, sizeof(buf)));
        mw_slice rest = mw_slice_sub(s, pre.n, s.n - pre.n);
        size_t colon = mw_slice_find(rest, ':', 0);
        MW_ENSURE(colon < rest.n, MW_E_INPUT, "token sub %s is not system:serviceaccount:NS:SA",
                  shown(s, buf, sizeof(buf)));
        mw_slice ns = mw_slice_sub(rest, 0, colon);
        mw_slice sa = mw_slice_sub(rest, colon + 1, rest.n - colon - 1);
        MW_ENSURE(mw_k8s_is_dns_label(ns), MW_E_INPUT,
                  "token sub namespace %s is not a Kubernetes name (DNS-1123 label)",
                  shown(ns, buf, sizeof(buf)));
        MW_ENSURE(mw_k8s_is_dns_subdomain(sa), MW_E_INPUT,
                  "token sub service account %s is not a Kubernetes name (DNS-1123 subdomain)",
                  shown(sa, buf, sizeof(buf)));
        MW_GUARD(mw_ca_copy(sub_ns, sizeof(sub_ns), ns, "namespace"));
        MW_GUARD(mw_ca_copy(sub_sa, sizeof(sub_sa), sa, "service account"));
    }
    json_t *k = json_object_get(claims, "kubernetes.io");
    if (k == NULL) {
        MW_ENSURE(sub != NULL, MW_E_INPUT,
                  "token has neither a \"kubernetes.io\" claim nor a \"sub\"");
        memcpy(id->ns, sub_ns, sizeof(id->ns));
        memcpy(id->sa, sub_sa, sizeof(id->sa));
        return MW_SUCCESS;
    }
    MW_ENSURE(json_is_object(k), MW_E_INPUT, "token \"kubernetes.io\" is not an object");
    MW_GUARD(name_field(k, "namespace", "namespace", true, id->ns, sizeof(id->ns)));
    json_t *sa = json_object_get(k, "serviceaccount");
    MW_ENSURE(json_is_object(sa), MW_E_INPUT, "token has no kubernetes.io serviceaccount object");
    MW_GUARD(name_field(sa, "name", "service account", false, id->sa, sizeof(id->sa)));
    json_t *pod = json_object_get(k, "pod");
    if (pod != NULL) {
        MW_ENSURE(json_is_object(pod), MW_E_INPUT, "token kubernetes.io pod is not an object");
        MW_GUARD(name_field(pod, "name", "pod name", false, id->pod_name, sizeof(id->pod_name)));
        json_t *uid = json_object_get(pod, "uid");
        MW_ENSURE(json_is_string(uid), MW_E_INPUT, "token pod uid is not a string");
        for (size_t i = 0; i < json_string_length(uid); i++) {
            char c = json_string_value(uid)[i];
            MW_ENSURE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-', MW_E_INPUT,
                      "token pod uid is not a UID");
        }
        MW_GUARD(mw_ca_copy(id->pod_uid, sizeof(id->pod_uid), jstr(uid), "pod uid"));
    }
    /* Two statements of the identity must agree, or one of them is lying. */
    MW_ENSURE(sub == NULL || (strcmp(sub_ns, id->ns) == 0 && strcmp(sub_sa, id->sa) == 0),
              MW_E_INPUT, "token sub says %s/%s but kubernetes.io says %s/%s", sub_ns, sub_sa,
              id->ns, id->sa);
    return MW_SUCCESS;
}

mw_result mw_k8s_token_verify(const struct mw_k8s_verifier *v, mw_slice token,
                              const struct mw_clock *clock, struct mw_k8s_identity *out)
{
    MW_ENSURE(token.n > 0, MW_E_INPUT, "token is empty");
    MW_ENSURE(token.n <= K8S_TOKEN_MAX, MW_E_LIMIT, "token of %zu bytes, limit %u", token.n,
              K8S_TOKEN_MAX);
    struct mw_jws_parts jws;
    size_t dots = mw_jws_split(token, &jws);
    MW_ENSURE(dots >= 2, MW_E_INPUT, "token is not a compact JWS (want three parts)");
    MW_ENSURE(dots == 2, MW_E_INPUT,
              "token has more than three parts (a JWE is not a service-account token)");
    MW_ENSURE(jws.signature.n > 0, MW_E_VERIFY, "token is unsigned");

    MW_DEFER_JSON json_t *hdr = NULL;
    MW_DEFER_JSON json_t *claims = NULL;
    MW_GUARD(segment_json(jws.header, "header", &hdr));
    bool es = false;
    const struct k8s_key *key = NULL;
    MW_GUARD(pick_key(v, hdr, &es, &key));
    MW_GUARD(verify_signature(es, key->key, jws.signing_input, jws.signature));

    MW_GUARD(segment_json(jws.payload, "claims", &claims));
    json_t *iss = json_object_get(claims, "iss");
    char buf[160];
    MW_ENSURE(json_is_string(iss), MW_E_INPUT, "token has no \"iss\" string");
    MW_ENSURE(mw_slice_eq_cstr(jstr(iss), v->issuer), MW_E_VERIFY, "token issuer %s is not %s",
              shown(jstr(iss), buf, sizeof(buf)), v->issuer);
    MW_GUARD(check_aud(v, claims));
    struct mw_k8s_identity id;
    memset(&id, 0, sizeof(id));
    MW_GUARD(check_time(v, claims, mw_clock_now(clock), &id.exp));
    MW_GUARD(identity(claims, &id));

    /* DNS-1123 names use only SPIFFE path characters, so this parse cannot surprise. */
    char uri[MW_SPIFFE_ID_MAX + 1];
    int n = snprintf(uri, sizeof(uri), "spiffe://%s/ns/%s/sa/%s", v->td, id.ns, id.sa);
    MW_ENSURE(n > 0 && (size_t)n < sizeof(uri), MW_E_LIMIT, "SPIFFE ID too long");
    MW_GUARD(mw_spiffe_id_parse(mw_slice_make(uri, (size_t)n), &id.id, NULL));
    snprintf(id.kid, sizeof(id.kid), "%s", key->kid);
    snprintf(id.alg, sizeof(id.alg), "%s", es ? "ES256" : "RS256");
    *out = id;
    return MW_SUCCESS;
}
