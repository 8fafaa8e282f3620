/*
 * JWT-SVID validation (JWT-SVID.md): a compact JWS (RFC 7515 §7.1) whose
 * header names an allowed algorithm and a kid from the trust domain's bundle,
 * and whose claims carry the SPIFFE ID (sub), the audience and an expiry.
 */
#include <jansson.h>
#include <math.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <string.h>

#include "base/mw_ossl.h"
#include "conf/conf_json.h"
#include "spiffe/spiffe_internal.h"
#include "spiffe/spiffe_jose.h"

/* Real JWT-SVIDs are well under 4 KiB; the bound caps work on hostile input. */
#define MW_JWT_MAX (64u << 10)

enum alg_family { ALG_RS, ALG_PS, ALG_ES };

struct alg {
    const char *name;
    enum alg_family family;
    const char *md;
    int ec_bytes; /* ES: size of r and of s (RFC 7518 §3.4) */
    const char *ec_curve;
};

/*
 * JWT-SVID §3: "alg" is one of these. "none" and the HMAC algorithms are not
 * here on purpose: a public key used as an HMAC secret is the classic JWT
 * algorithm-confusion attack.
 */
static const struct alg algs[] = {
    {"RS256", ALG_RS, "SHA256", 0, NULL},     {"RS384", ALG_RS, "SHA384", 0, NULL},
    {"RS512", ALG_RS, "SHA512", 0, NULL},     {"PS256", ALG_PS, "SHA256", 0, NULL},
    {"PS384", ALG_PS, "SHA384", 0, NULL},     {"PS512", ALG_PS, "SHA512", 0, NULL},
    {"ES256", ALG_ES, "SHA256", 32, "P-256"}, {"ES384", ALG_ES, "SHA384", 48, "P-384"},
    {"ES512", ALG_ES, "SHA512", 66, "P-521"},
};

static mw_result b64url_json(mw_slice seg, const char *what, json_t **out)
{
    struct mw_dynbuf dec;
    mw_dynbuf_init(&dec, MW_JWT_MAX);
    mw_result r = mw_b64_decode(seg, MW_B64_URL, &dec);
    if (mw_failed(r)) {
        mw_error_prefix("JWT %s: ", what);
    } else {
        json_error_t jerr;
        *out = json_loadb((const char *)dec.p, dec.n, JSON_REJECT_DUPLICATES, &jerr);
        if (*out == NULL || !json_is_object(*out)) {
            if (*out != NULL)
                mw_error_set(MW_E_INPUT, "JWT %s is not a JSON object", what);
            else
                mw_error_set(MW_E_INPUT, "JWT %s: %s", what, jerr.text);
            json_decref(*out);
            *out = NULL;
            r = MW_FAILURE;
        }
    }
    mw_dynbuf_free(&dec);
    return r;
}

static mw_result key_fits(const struct alg *a, EVP_PKEY *key, const char *kid)
{
    char type[16], curve[16];
    int bits = 0;
    mw_spiffe_key_desc(key, type, sizeof(type), &bits, curve, sizeof(curve));
    if (a->family == ALG_ES) {
        MW_ENSURE(EVP_PKEY_get_base_id(key) == EVP_PKEY_EC && strcmp(curve, a->ec_curve) == 0,
                  MW_E_VERIFY, "alg %s needs a %s key, but kid \"%s\" is %s %s", a->name,
                  a->ec_curve, kid, type, curve);
    } else {
        MW_ENSURE(EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA, MW_E_VERIFY,
                  "alg %s needs an RSA key, but kid \"%s\" is %s", a->name, kid, type);
        MW_ENSURE(bits >= 2048, MW_E_VERIFY, "kid \"%s\" is RSA %d, want >= 2048 bits", kid, bits);
    }
    return MW_SUCCESS;
}

static mw_result verify_sig(const struct alg *a, EVP_PKEY *key, mw_slice signing_input,
                            mw_slice sig)
{
    struct mw_dynbuf der;
    mw_dynbuf_init(&der, 1024);
    mw_result r = MW_SUCCESS;
    if (a->family == ALG_ES) {
        if (sig.n != (size_t)a->ec_bytes * 2) {
            mw_error_set(MW_E_VERIFY, "%s signature is %zu bytes, want %d", a->name, sig.n,
                         a->ec_bytes * 2);
            r = MW_FAILURE;
        } else {
            r = mw_jws_ecdsa_to_der(sig, (size_t)a->ec_bytes, &der);
        }
        sig = mw_dynbuf_slice(&der);
    }
    MW_DEFER(EVP_MD_CTX) EVP_MD_CTX *ctx = mw_ok(r) ? EVP_MD_CTX_new() : NULL;
    EVP_PKEY_CTX *pctx = NULL;
    if (mw_ok(r) &&
        (ctx == NULL || EVP_DigestVerifyInit_ex(ctx, &pctx, a->md, NULL, NULL, key, NULL) <= 0)) {
        mw_error_openssl(MW_E_CRYPTO, "cannot start %s verification", a->name);
        r = MW_FAILURE;
    }
    /* RFC 7518 §3.5: PSS with MGF1 of the same hash and a salt as long as the hash. */
    if (mw_ok(r) && a->family == ALG_PS &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, a->md, NULL) <= 0)) {
        mw_error_openssl(MW_E_CRYPTO, "cannot set up PSS");
        r = MW_FAILURE;
    }
    if (mw_ok(r) && EVP_DigestVerify(ctx, sig.p, sig.n, signing_input.p, signing_input.n) != 1) {
        ERR_clear_error();
        mw_error_set(MW_E_VERIFY, "JWT signature does not verify");
        r = MW_FAILURE;
    }
    mw_dynbuf_free(&der);
    return r;
}

/* RFC 7519 §2 NumericDate: a JSON number of seconds, possibly fractional. */
static mw_result numeric_date(json_t *claims, const char *name, bool required, bool *has,
                              int64_t *out)
{
    json_t *v = json_object_get(claims, name);
    *has = v != NULL;
    if (v == NULL) {
        MW_ENSURE(!required, MW_E_INPUT, "JWT has no \"%s\" claim", name);
        return MW_SUCCESS;
    }
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return MW_SUCCESS;
    }
    MW_ENSURE(json_is_real(v), MW_E_INPUT, "JWT \"%s\" is not a number", name);
    double d = json_real_value(v);
    MW_ENSURE(isfinite(d) && d > -9.0e18 && d < 9.0e18, MW_E_INPUT, "JWT \"%s\" is out of range",
              name);
    int64_t whole = (int64_t)d;
    *out = (double)whole > d ? whole - 1 : whole; /* round down, without libm */
    return MW_SUCCESS;
}

static mw_result check_header(json_t *hdr, const struct alg **alg, mw_slice *kid)
{
    json_t *a = json_object_get(hdr, "alg");
    MW_ENSURE(json_is_string(a), MW_E_INPUT, "JWT header has no \"alg\" string");
    *alg = NULL;
    for (size_t i = 0; i < MW_ARRAY_LEN(algs); i++) {
        if (strcmp(json_string_value(a), algs[i].name) == 0 &&
            json_string_length(a) == strlen(algs[i].name))
            *alg = &algs[i];
    }
    MW_ENSURE(*alg != NULL, MW_E_VERIFY, "JWT alg \"%.16s\" is not allowed (JWT-SVID §3)",
              json_string_value(a));
    /* JWT-SVID §3: typ, when present, is "JWT" or "JOSE". */
    json_t *typ = json_object_get(hdr, "typ");
    if (typ != NULL) {
        MW_ENSURE(json_is_string(typ) && (strcmp(json_string_value(typ), "JWT") == 0 ||
                                          strcmp(json_string_value(typ), "JOSE") == 0),
                  MW_E_INPUT, "JWT typ must be \"JWT\" or \"JOSE\"");
    }
    /* RFC 7515 §4.1.11: we understand no extension, so any crit is fatal. */
    MW_ENSURE(json_object_get(hdr, "crit") == NULL, MW_E_UNSUPPORTED,
              "JWT header has \"crit\" extensions we do not understand");
    json_t *k = json_object_get(hdr, "kid");
    MW_ENSURE(json_is_string(k) && json_string_length(k) > 0, MW_E_INPUT,
              "JWT header has no \"kid\" string");
    MW_ENSURE(json_string_length(k) < 256, MW_E_INPUT, "JWT kid is longer than 255 bytes");
    *kid = mw_slice_make(json_string_value(k), json_string_length(k));
    return MW_SUCCESS;
}

static mw_result check_aud(json_t *claims, const char *audience)
{
    json_t *aud = json_object_get(claims, "aud");
    MW_ENSURE(aud != NULL, MW_E_INPUT, "JWT has no \"aud\" claim");
    if (json_is_string(aud)) {
        MW_ENSURE(strcmp(json_string_value(aud), audience) == 0 &&
                      json_string_length(aud) == strlen(audience),
                  MW_E_VERIFY, "JWT audience does not contain \"%s\"", audience);
        return MW_SUCCESS;
    }
    MW_ENSURE(json_is_array(aud) && json_array_size(aud) > 0, MW_E_INPUT,
              "JWT \"aud\" is not a string or a non-empty array");
    bool found = false;
    for (size_t i = 0; i < json_array_size(aud); i++) {
        json_t *v = json_array_get(aud, i);
        MW_ENSURE(json_is_string(v), MW_E_INPUT, "JWT \"aud\"[%zu] is not a string", i);
        if (strcmp(json_string_value(v), audience) == 0 &&
            json_string_length(v) == strlen(audience))
            found = true;
    }
    MW_ENSURE(found, MW_E_VERIFY, "JWT audience does not contain \"%s\"", audience);
    return MW_SUCCESS;
}

mw_result mw_jwtsvid_validate(mw_slice token, const struct mw_bundle *bundle, const char *audience,
                              const struct mw_clock *clock, struct mw_jwtsvid *out)
{
    MW_ENSURE(token.n > 0, MW_E_INPUT, "JWT is empty");
    MW_ENSURE(token.n <= MW_JWT_MAX, MW_E_LIMIT, "JWT of %zu bytes, limit %u", token.n, MW_JWT_MAX);
    MW_ENSURE(audience != NULL && audience[0] != '\0', MW_E_STATE,
              "no expected audience given (JWT-SVID §7 requires an audience check)");
    struct mw_jws_parts jws;
    size_t dots = mw_jws_split(token, &jws);
    MW_ENSURE(dots >= 1, MW_E_INPUT, "JWT is not compact JWS: no '.'");
    MW_ENSURE(dots >= 2, MW_E_INPUT, "JWT is not compact JWS: one '.', want two");
    MW_ENSURE(dots == 2, MW_E_INPUT, "JWT has more than three parts (JWE is not a JWT-SVID)");
    MW_ENSURE(jws.signature.n > 0, MW_E_VERIFY, "JWT is unsigned");

    MW_DEFER_JSON json_t *hdr = NULL;
    MW_DEFER_JSON json_t *claims = NULL;
    MW_GUARD(b64url_json(jws.header, "header", &hdr));
    const struct alg *alg = NULL;
    mw_slice kid;
    MW_GUARD(check_header(hdr, &alg, &kid));

    const struct mw_jwt_authority *auth = mw_bundle_find_jwt(bundle, kid);
    MW_ENSURE(auth != NULL, MW_E_VERIFY, "JWT kid \"%.*s\" is not in the bundle for %s", (int)kid.n,
              (const char *)kid.p, mw_bundle_td(bundle));
    MW_GUARD(key_fits(alg, auth->key, auth->kid));

    /* Verify before reading claims: nothing from an unauthenticated payload is trusted. */
    struct mw_dynbuf sig;
    mw_dynbuf_init(&sig, MW_JWT_MAX);
    mw_result r = mw_b64_decode(jws.signature, MW_B64_URL, &sig);
    if (mw_failed(r))
        mw_error_prefix("JWT signature: ");
    else
        r = verify_sig(alg, auth->key, jws.signing_input, mw_dynbuf_slice(&sig));
    mw_dynbuf_free(&sig);
    MW_GUARD(r);

    MW_GUARD(b64url_json(jws.payload, "claims", &claims));
    struct mw_jwtsvid res;
    memset(&res, 0, sizeof(res));
    json_t *sub = json_object_get(claims, "sub");
    MW_ENSURE(json_is_string(sub), MW_E_INPUT, "JWT has no \"sub\" string");
    if (mw_failed(mw_spiffe_id_parse(mw_slice_make(json_string_value(sub), json_string_length(sub)),
                                     &res.sub, NULL))) {
        mw_error_prefix("JWT sub: ");
        return MW_FAILURE;
    }
    /* JWT-SVID §7: the SVID must come from the trust domain whose bundle signed it. */
    const char *btd = mw_bundle_td(bundle);
    MW_ENSURE(btd[0] != '\0', MW_E_STATE, "bundle is not bound to a trust domain");
    MW_ENSURE(strcmp(res.sub.td, btd) == 0, MW_E_VERIFY,
              "JWT sub is in trust domain %s, but the bundle is for %s", res.sub.td, btd);
    MW_GUARD(check_aud(claims, audience));

    bool has = false;
    int64_t now = mw_clock_now(clock);
    char t1[32], t2[32];
    MW_GUARD(numeric_date(claims, "exp", true, &has, &res.exp));
    if (res.exp <= now) {
        mw_time_format(res.exp, t1, sizeof(t1));
        mw_time_format(now, t2, sizeof(t2));
        MW_BAIL(MW_E_EXPIRED, "JWT expired at %s (now %s)", t1, t2);
    }
    int64_t nbf = 0;
    MW_GUARD(numeric_date(claims, "nbf", false, &has, &nbf));
    if (has && nbf > now) {
        mw_time_format(nbf, t1, sizeof(t1));
        mw_time_format(now, t2, sizeof(t2));
        MW_BAIL(MW_E_EXPIRED, "JWT is not valid until %s (now %s)", t1, t2);
    }
    MW_GUARD(numeric_date(claims, "iat", false, &res.has_iat, &res.iat));
    snprintf(res.alg, sizeof(res.alg), "%s", alg->name);
    snprintf(res.kid, sizeof(res.kid), "%s", auth->kid);
    *out = res;
    return MW_SUCCESS;
}
