/*
 * RequestAuthentication (security.istio.io v1 and v1beta1): validated as Istio validates it, so
 * that `meshward policy lint` and the admission gate accept and refuse the same documents. Two
 * validators stand between a user and Istio and both must pass: the Go webhook
 * (pkg/config/validation/validation.go ValidateRequestAuthentication, validateJwtRule) and the
 * CRD schema of istio/api (minLength, patterns, CEL rules). Each check below names the one it
 * reproduces. JWTs themselves are not verified here: the sidecar hands the engine a validated
 * request principal and claims.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "policy/policy_internal.h"

#define NOMEM_IF(x)                               \
    do {                                          \
        if ((x) == NULL)                          \
            MW_BAIL(MW_E_NOMEM, "out of memory"); \
    } while (0)

#define FAIL(node, ...)                                 \
    do {                                                \
        mw_node_error((node), MW_E_INPUT, __VA_ARGS__); \
        return MW_FAILURE;                              \
    } while (0)

/* The CRD caps jwtRules at 4096 entries; the lists inside a rule are capped here alike. */
#define MAX_JWT_RULES 4096
#define MAX_LIST      4096
/* Inline JWKS larger than this is refused before JSON parsing. */
#define MAX_JWKS (1u << 20)

static bool is_map(const struct mw_node *n)
{
    return n != NULL && mw_node_kind(n) == MW_NODE_MAP;
}

static bool is_seq(const struct mw_node *n)
{
    return n != NULL && mw_node_kind(n) == MW_NODE_SEQ;
}

static bool is_null(const struct mw_node *n)
{
    return n == NULL || mw_node_is_null(n);
}

static mw_slice text_of(const struct mw_node *n)
{
    if (is_null(n))
        return mw_slice_make("", 0);
    return mw_node_slice(n);
}

static MW_RESULT check_keys(const struct mw_node *map, const char *what, const char *const *allowed)
{
    for (size_t i = 0; i < mw_node_len(map); i++) {
        const struct mw_node *k = mw_node_key_at(map, i);
        const char *ks = mw_node_str(k);
        bool ok = false;
        for (size_t j = 0; allowed[j] != NULL && !ok; j++)
            ok = strcmp(ks, allowed[j]) == 0;
        if (!ok)
            FAIL(k, "unknown field \"%s\" in %s", ks, what);
    }
    return MW_SUCCESS;
}

/* A scalar string field; absent and null read as "". */
static MW_RESULT want_str(const struct mw_node *n, const char *what)
{
    if (!is_null(n) && mw_node_kind(n) != MW_NODE_SCALAR)
        FAIL(n, "%s must be a string", what);
    return MW_SUCCESS;
}

/*
 * A list of strings, each at least one character (CRD: items minLength 1; validation.go checks
 * audiences, fromParams and fromCookies the same way).
 */
static MW_RESULT non_empty_strings(const struct mw_node *list, const char *what)
{
    if (is_null(list))
        return MW_SUCCESS;
    if (!is_seq(list))
        FAIL(list, "%s must be a list of strings", what);
    if (mw_node_len(list) > MAX_LIST)
        FAIL(list, "%s has %zu entries, at most %d are allowed", what, mw_node_len(list), MAX_LIST);
    for (size_t i = 0; i < mw_node_len(list); i++) {
        const struct mw_node *it = mw_node_item(list, i);
        if (!is_null(it) && mw_node_kind(it) != MW_NODE_SCALAR)
            FAIL(it, "%s[%zu] must be a string", what, i);
        if (text_of(it).n == 0)
            FAIL(it ? it : list, "%s[%zu] should be at least 1 chars long: empty value", what, i);
    }
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- jwksUri */

static bool is_scheme_char(uint8_t c, bool first)
{
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return alpha || (!first && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'));
}

/*
 * security.go ParseJwksURI: Go's url.Parse, then scheme http or https (url.Parse lower-cases the
 * scheme, so "HTTPS" passes); the CRD's CEL rule says "url must have scheme http:// or
 * https://". meshward also wants an authority with a host, as istiod needs one to build the
 * JWKS cluster (a hostless "https:/x" is accepted by Go and then fails at fetch time), and a
 * port in 1..65535. Go's url.Parse refuses ASCII control characters and spaces in the host.
 */
MW_RESULT pol_jwks_uri_check(mw_slice u)
{
    const char *s = (const char *)u.p;
    int shown = (int)(u.n > 200 ? 200 : u.n);
    size_t colon = 0;
    while (colon < u.n && is_scheme_char(u.p[colon], colon == 0))
        colon++;
    bool has_scheme = colon > 0 && colon < u.n && u.p[colon] == ':';
    mw_slice scheme = mw_slice_make(u.p, has_scheme ? colon : 0);
    bool http = scheme.n == 4 && strncasecmp(s, "http", 4) == 0;
    bool https = scheme.n == 5 && strncasecmp(s, "https", 5) == 0;
    MW_ENSURE(http || https, MW_E_INPUT,
              "jwksUri \"%.*s\": url must have scheme http:// or https:// (URI scheme \"%.*s\" is "
              "not supported)",
              shown, s, (int)scheme.n, s);
    MW_ENSURE(colon + 3 <= u.n && u.p[colon + 1] == '/' && u.p[colon + 2] == '/', MW_E_INPUT,
              "jwksUri \"%.*s\": url must have scheme http:// or https:// followed by a host",
              shown, s);
    for (size_t i = 0; i < u.n; i++) {
        MW_ENSURE(u.p[i] >= 0x20 && u.p[i] != 0x7f, MW_E_INPUT,
                  "jwksUri has a control character at offset %zu: not a URL", i);
    }
    size_t a = colon + 3, e = a;
    while (e < u.n && u.p[e] != '/' && u.p[e] != '?' && u.p[e] != '#')
        e++;
    mw_slice auth = mw_slice_sub(u, a, e - a);
    /* userinfo@ is legal URL syntax; the host follows the last '@'. */
    for (size_t i = auth.n; i > 0; i--) {
        if (auth.p[i - 1] == '@') {
            auth = mw_slice_sub(auth, i, auth.n - i);
            break;
        }
    }
    mw_slice host = auth, port = mw_slice_make("", 0);
    if (auth.n > 0 && auth.p[0] == '[') {
        size_t close = mw_slice_find(auth, ']', 0);
        MW_ENSURE(close < auth.n, MW_E_INPUT, "jwksUri \"%.*s\": missing ']' in host", shown, s);
        host = mw_slice_sub(auth, 1, close - 1);
        struct mw_policy_ip ip;
        MW_ENSURE(mw_ok(mw_policy_ip_parse(host, &ip)) && ip.family == 6, MW_E_INPUT,
                  "jwksUri \"%.*s\": invalid IPv6 host", shown, s);
        if (close + 1 < auth.n) {
            MW_ENSURE(auth.p[close + 1] == ':', MW_E_INPUT,
                      "jwksUri \"%.*s\": invalid text after the IPv6 host", shown, s);
            port = mw_slice_sub(auth, close + 2, auth.n);
        }
    } else {
        size_t c = mw_slice_find(auth, ':', 0);
        host = mw_slice_sub(auth, 0, c);
        if (c < auth.n)
            port = mw_slice_sub(auth, c + 1, auth.n);
    }
    MW_ENSURE(host.n > 0, MW_E_INPUT, "jwksUri \"%.*s\": url must have a host", shown, s);
    for (size_t i = 0; i < host.n; i++) {
        MW_ENSURE(host.p[i] != ' ' && host.p[i] != '\\' && host.p[i] != '[' && host.p[i] != ']',
                  MW_E_INPUT, "jwksUri \"%.*s\": invalid character in host", shown, s);
    }
    if (port.n > 0 || (auth.n > 0 && auth.p[auth.n - 1] == ':' && port.n == 0)) {
        uint64_t pn;
        if (port.n == 0 || mw_failed(mw_parse_u64(port, 1, 65535, "port", &pn)))
            MW_BAIL(MW_E_INPUT, "jwksUri \"%.*s\": invalid port \"%.*s\": want 1..65535", shown, s,
                    (int)port.n, (const char *)port.p);
    }
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- durations */

/*
 * Go time.ParseDuration ("300ms", "1.5s", "2m30s"; units ns us µs ms s m h), which the CRD's
 * CEL duration() uses, into whole milliseconds. Istio's agent.ValidateDuration then wants at
 * least 1ms and millisecond precision. Negative and zero durations fail the >= 1ms rule.
 */
MW_RESULT pol_go_duration_ms(mw_slice t, uint64_t *ms)
{
    static const struct {
        const char *u;
        uint64_t ns;
    } units[] = {
        {"ns", 1},       {"us", 1000},         {"\xc2\xb5s", 1000},   {"\xce\xbcs", 1000},
        {"ms", 1000000}, {"s", 1000000000ull}, {"m", 60000000000ull}, {"h", 3600000000000ull}};
    const uint64_t max = UINT64_MAX / 2;
    size_t i = 0;
    bool neg = false;
    int shown = (int)(t.n > 64 ? 64 : t.n);
    if (i < t.n && (t.p[i] == '+' || t.p[i] == '-'))
        neg = t.p[i++] == '-';
    if (t.n - i == 1 && t.p[i] == '0') {
        *ms = 0;
        MW_BAIL(MW_E_INPUT, "timeout \"%.*s\" must be a valid duration greater than 1ms", shown,
                (const char *)t.p);
    }
    MW_ENSURE(i < t.n, MW_E_INPUT, "timeout \"%.*s\" must be a valid duration greater than 1ms",
              shown, (const char *)t.p);
    /* Accumulate in nanoseconds; fractions are kept to the nanosecond as Go does. */
    uint64_t total = 0;
    while (i < t.n) {
        uint64_t whole = 0, frac = 0, scale = 1;
        size_t d0 = i;
        while (i < t.n && t.p[i] >= '0' && t.p[i] <= '9') {
            MW_ENSURE(whole <= (max - 9) / 10, MW_E_INPUT, "timeout \"%.*s\" is out of range",
                      shown, (const char *)t.p);
            whole = whole * 10 + (uint64_t)(t.p[i++] - '0');
        }
        bool digits = i > d0;
        if (i < t.n && t.p[i] == '.') {
            i++;
            size_t f0 = i;
            while (i < t.n && t.p[i] >= '0' && t.p[i] <= '9') {
                if (scale < 1000000000000000000ull) {
                    frac = frac * 10 + (uint64_t)(t.p[i] - '0');
                    scale *= 10;
                }
                i++;
            }
            digits = digits || i > f0;
        }
        MW_ENSURE(digits, MW_E_INPUT,
                  "timeout \"%.*s\" must be a valid duration greater than 1ms: want a number "
                  "and a unit (ms, s, m, h)",
                  shown, (const char *)t.p);
        size_t u0 = i;
        while (i < t.n && !(t.p[i] >= '0' && t.p[i] <= '9') && t.p[i] != '.')
            i++;
        mw_slice unit = mw_slice_sub(t, u0, i - u0);
        uint64_t per = 0;
        for (size_t k = 0; k < MW_ARRAY_LEN(units) && per == 0; k++) {
            if (mw_slice_eq_cstr(unit, units[k].u))
                per = units[k].ns;
        }
        MW_ENSURE(per != 0, MW_E_INPUT,
                  "timeout \"%.*s\" must be a valid duration greater than 1ms: unknown unit "
                  "\"%.*s\"",
                  shown, (const char *)t.p, (int)unit.n, (const char *)unit.p);
        MW_ENSURE(whole <= max / per, MW_E_INPUT, "timeout \"%.*s\" is out of range", shown,
                  (const char *)t.p);
        uint64_t v = whole * per;
        /* frac/scale of a unit: per * frac / scale without overflow (scale <= 1e18). */
        long double fv = (long double)per * (long double)frac / (long double)scale;
        v += (uint64_t)fv;
        MW_ENSURE(v <= max - total, MW_E_INPUT, "timeout \"%.*s\" is out of range", shown,
                  (const char *)t.p);
        total += v;
    }
    MW_ENSURE(!neg && total >= 1000000, MW_E_INPUT,
              "timeout \"%.*s\" must be a valid duration greater than 1ms", shown,
              (const char *)t.p);
    MW_ENSURE(total % 1000000 == 0, MW_E_INPUT,
              "timeout \"%.*s\": only durations to ms precision are supported", shown,
              (const char *)t.p);
    *ms = total / 1000000;
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- jwks */

/* A JWK member that must be present and decode as base64url (jwx accepts padding or not). */
static MW_RESULT jwk_b64(const json_t *key, const char *member, size_t idx)
{
    const json_t *v = json_object_get(key, member);
    MW_ENSURE(json_is_string(v) && json_string_length(v) > 0, MW_E_INPUT,
              "jwks parse error: key %zu: required member \"%s\" is missing", idx, member);
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, MAX_JWKS);
    mw_slice s = mw_slice_make(json_string_value(v), json_string_length(v));
    bool ok = mw_ok(mw_b64_decode(s, MW_B64_URL_ANYPAD, &b));
    if (!ok) {
        mw_dynbuf_reset(&b);
        ok = mw_ok(mw_b64_decode(s, MW_B64_STD_NOPAD, &b));
    }
    mw_dynbuf_free(&b);
    MW_ENSURE(ok, MW_E_INPUT, "jwks parse error: key %zu: member \"%s\" is not base64url", idx,
              member);
    return MW_SUCCESS;
}

static MW_RESULT jwk_check(const json_t *key, size_t idx)
{
    MW_ENSURE(json_is_object(key), MW_E_INPUT, "jwks parse error: key %zu is not a JSON object",
              idx);
    const json_t *kty = json_object_get(key, "kty");
    MW_ENSURE(json_is_string(kty), MW_E_INPUT,
              "jwks parse error: key %zu: required member \"kty\" is missing", idx);
    const char *t = json_string_value(kty);
    /* RFC 7518 §6 and RFC 8037 §2: the members each key type cannot do without. */
    if (strcmp(t, "RSA") == 0) {
        MW_GUARD(jwk_b64(key, "n", idx));
        MW_GUARD(jwk_b64(key, "e", idx));
    } else if (strcmp(t, "EC") == 0) {
        const char *crv = json_string_value(json_object_get(key, "crv"));
        MW_ENSURE(crv != NULL && (strcmp(crv, "P-256") == 0 || strcmp(crv, "P-384") == 0 ||
                                  strcmp(crv, "P-521") == 0 || strcmp(crv, "secp256k1") == 0),
                  MW_E_INPUT, "jwks parse error: key %zu: EC key needs crv P-256, P-384 or P-521",
                  idx);
        MW_GUARD(jwk_b64(key, "x", idx));
        MW_GUARD(jwk_b64(key, "y", idx));
    } else if (strcmp(t, "OKP") == 0) {
        const char *crv = json_string_value(json_object_get(key, "crv"));
        MW_ENSURE(crv != NULL && (strcmp(crv, "Ed25519") == 0 || strcmp(crv, "Ed448") == 0 ||
                                  strcmp(crv, "X25519") == 0 || strcmp(crv, "X448") == 0),
                  MW_E_INPUT, "jwks parse error: key %zu: OKP key needs crv Ed25519 or Ed448", idx);
        MW_GUARD(jwk_b64(key, "x", idx));
    } else if (strcmp(t, "oct") == 0) {
        MW_GUARD(jwk_b64(key, "k", idx));
    } else {
        MW_BAIL(MW_E_INPUT, "jwks parse error: key %zu: invalid key type \"%.32s\"", idx, t);
    }
    return MW_SUCCESS;
}

/*
 * validation.go: jwk.Parse (lestrrat-go/jwx) must accept the inline JWKS: a JSON object that is
 * either a JWK Set ({"keys": [...]}) or a single JWK, each key of a known type with its members.
 */
static MW_RESULT jwks_check(mw_slice text)
{
    MW_ENSURE(text.n <= MAX_JWKS, MW_E_LIMIT, "jwks is %zu bytes, at most %u are allowed", text.n,
              MAX_JWKS);
    json_error_t err;
    json_t *root = json_loadb((const char *)text.p, text.n, JSON_REJECT_DUPLICATES, &err);
    MW_ENSURE(root != NULL, MW_E_INPUT, "jwks parse error: not JSON: %s", err.text);
    mw_result r = MW_SUCCESS;
    const json_t *keys = json_object_get(root, "keys");
    if (!json_is_object(root)) {
        mw_error_set(MW_E_INPUT, "jwks parse error: want a JSON object (a JWK Set or a JWK)");
        r = MW_FAILURE;
    } else if (keys == NULL) {
        r = jwk_check(root, 0);
    } else if (!json_is_array(keys)) {
        mw_error_set(MW_E_INPUT, "jwks parse error: \"keys\" must be an array");
        r = MW_FAILURE;
    } else {
        for (size_t i = 0; i < json_array_size(keys) && mw_ok(r); i++)
            r = jwk_check(json_array_get(keys, i), i);
    }
    json_decref(root);
    return r;
}

/* ---------------------------------------------------------------- rule parts */

/* Envoy's JWT filter takes header names as HTTP tokens; Istio narrows them further. */
static bool strict_header_name(mw_slice h)
{
    /*
     * validation.go ValidateStrictHTTPHeaderName: ^[-A-Za-z0-9]+$. The CRD pattern also allows
     * '_', but the webhook runs after the schema, so '_' is refused in the end.
     */
    if (h.n == 0)
        return false;
    for (size_t i = 0; i < h.n; i++) {
        uint8_t c = h.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return true;
}

static MW_RESULT check_from_headers(const struct mw_node *list, const char *rule)
{
    if (is_null(list))
        return MW_SUCCESS;
    if (!is_seq(list))
        FAIL(list, "%s.fromHeaders must be a list", rule);
    if (mw_node_len(list) > MAX_LIST)
        FAIL(list, "%s.fromHeaders has too many entries", rule);
    for (size_t i = 0; i < mw_node_len(list); i++) {
        const struct mw_node *h = mw_node_item(list, i);
        if (!is_map(h))
            FAIL(h ? h : list,
                 "%s.fromHeaders[%zu] must be of type object: location header must be non-null",
                 rule, i);
        static const char *const keys[] = {"name", "prefix", NULL};
        char what[96];
        snprintf(what, sizeof(what), "%s.fromHeaders[%zu]", rule, i);
        MW_GUARD(check_keys(h, what, keys));
        const struct mw_node *name = mw_node_get(h, "name");
        if (name == NULL)
            FAIL(h, "%s.name: Required value: location header name must be set", what);
        MW_GUARD(want_str(name, "fromHeaders name"));
        MW_GUARD(want_str(mw_node_get(h, "prefix"), "fromHeaders prefix"));
        if (text_of(name).n == 0)
            FAIL(name,
                 "%s.name should be at least 1 chars long: location header name must be "
                 "non-empty",
                 what);
    }
    return MW_SUCCESS;
}

static MW_RESULT check_claim_to_headers(const struct mw_node *list, const char *rule)
{
    if (is_null(list))
        return MW_SUCCESS;
    if (!is_seq(list))
        FAIL(list, "%s.outputClaimToHeaders must be a list", rule);
    if (mw_node_len(list) > MAX_LIST)
        FAIL(list, "%s.outputClaimToHeaders has too many entries", rule);
    for (size_t i = 0; i < mw_node_len(list); i++) {
        const struct mw_node *c = mw_node_item(list, i);
        char what[96];
        snprintf(what, sizeof(what), "%s.outputClaimToHeaders[%zu]", rule, i);
        if (!is_map(c))
            FAIL(c ? c : list, "%s must be of type object: outputClaimToHeaders must not be null",
                 what);
        static const char *const keys[] = {"header", "claim", NULL};
        MW_GUARD(check_keys(c, what, keys));
        const struct mw_node *claim = mw_node_get(c, "claim");
        const struct mw_node *header = mw_node_get(c, "header");
        MW_GUARD(want_str(claim, "outputClaimToHeaders claim"));
        MW_GUARD(want_str(header, "outputClaimToHeaders header"));
        /* CRD: both required, minLength 1; validation.go: "header and claim value must be
         * non-empty string". */
        if (claim == NULL)
            FAIL(c, "%s.claim: Required value: outputClaimToHeaders claim must be set", what);
        if (header == NULL)
            FAIL(c, "%s.header: Required value: outputClaimToHeaders header must be set", what);
        if (text_of(claim).n == 0)
            FAIL(claim, "%s.claim should be at least 1 chars long: claim must be non-empty", what);
        mw_slice h = text_of(header);
        if (h.n == 0)
            FAIL(header, "%s.header should be at least 1 chars long: header must be non-empty",
                 what);
        if (!strict_header_name(h))
            FAIL(header, "%s.header \"%.*s\" should match ^[-A-Za-z0-9]+$: not a valid header name",
                 what, (int)(h.n > 100 ? 100 : h.n), (const char *)h.p);
    }
    return MW_SUCCESS;
}

static MW_RESULT check_bool(const struct mw_node *n, const char *what)
{
    bool b;
    if (is_null(n))
        return MW_SUCCESS;
    if (mw_node_kind(n) != MW_NODE_SCALAR || mw_failed(mw_node_bool(n, &b)))
        FAIL(n, "%s must be a boolean", what);
    return MW_SUCCESS;
}

static MW_RESULT load_rule(struct mw_policy_set *set, const struct mw_node *r, size_t idx,
                           struct pol_jwt_rule *out)
{
    char rule[48];
    snprintf(rule, sizeof(rule), "jwtRules[%zu]", idx);
    /* CRD: items of type object; a null item is refused by the API server. */
    if (!is_map(r))
        FAIL(r, "%s must be of type object", rule);
    static const char *const keys[] = {"issuer",
                                       "audiences",
                                       "jwksUri",
                                       "jwks",
                                       "fromHeaders",
                                       "fromParams",
                                       "fromCookies",
                                       "outputPayloadToHeader",
                                       "forwardOriginalToken",
                                       "outputClaimToHeaders",
                                       "timeout",
                                       "spaceDelimitedClaims",
                                       "presence",
                                       NULL};
    MW_GUARD(check_keys(r, rule, keys));
    const struct mw_node *iss = mw_node_get(r, "issuer");
    const struct mw_node *uri = mw_node_get(r, "jwksUri");
    const struct mw_node *jwks = mw_node_get(r, "jwks");
    MW_GUARD(want_str(iss, "issuer"));
    MW_GUARD(want_str(uri, "jwksUri"));
    MW_GUARD(want_str(jwks, "jwks"));
    MW_GUARD(want_str(mw_node_get(r, "outputPayloadToHeader"), "outputPayloadToHeader"));
    MW_GUARD(want_str(mw_node_get(r, "timeout"), "timeout"));
    MW_GUARD(want_str(mw_node_get(r, "presence"), "presence"));
    char what[96];
    snprintf(what, sizeof(what), "%s.audiences", rule);
    MW_GUARD(non_empty_strings(mw_node_get(r, "audiences"), what));
    /*
     * validation.go (1.27+): "issuer or jwksUri must be non-empty string"; a rule with only a
     * jwksUri accepts tokens of any issuer signed by those keys.
     */
    mw_slice is = text_of(iss), us = text_of(uri);
    if (is.n == 0 && us.n == 0)
        FAIL(iss ? iss : r, "%s: issuer or jwksUri must be non-empty string", rule);
    if (us.n > 0 && mw_failed(pol_jwks_uri_check(us))) {
        mw_node_error(uri, MW_E_INPUT, "%s: %s", rule, mw_error_msg());
        return MW_FAILURE;
    }
    if (text_of(jwks).n > 0 && mw_failed(jwks_check(text_of(jwks)))) {
        mw_node_error(jwks, MW_E_INPUT, "%s: %s", rule, mw_error_msg());
        return MW_FAILURE;
    }
    MW_GUARD(check_from_headers(mw_node_get(r, "fromHeaders"), rule));
    snprintf(what, sizeof(what), "%s.fromParams", rule);
    MW_GUARD(non_empty_strings(mw_node_get(r, "fromParams"), what));
    snprintf(what, sizeof(what), "%s.fromCookies", rule);
    MW_GUARD(non_empty_strings(mw_node_get(r, "fromCookies"), what));
    snprintf(what, sizeof(what), "%s.spaceDelimitedClaims", rule);
    MW_GUARD(non_empty_strings(mw_node_get(r, "spaceDelimitedClaims"), what));
    MW_GUARD(check_claim_to_headers(mw_node_get(r, "outputClaimToHeaders"), rule));
    MW_GUARD(check_bool(mw_node_get(r, "forwardOriginalToken"), "forwardOriginalToken"));
    const struct mw_node *to = mw_node_get(r, "timeout");
    uint64_t ms;
    if (!is_null(to) && mw_failed(pol_go_duration_ms(text_of(to), &ms))) {
        mw_node_error(to, MW_E_INPUT, "%s: %s", rule, mw_error_msg());
        return MW_FAILURE;
    }
    /* jwt.proto JWTRule.presence: an enum, by name. */
    const struct mw_node *pr = mw_node_get(r, "presence");
    mw_slice ps = text_of(pr);
    if (ps.n > 0 && !mw_slice_eq_cstr(ps, "OPTIONAL") && !mw_slice_eq_cstr(ps, "REQUIRED"))
        FAIL(pr, "%s.presence: Unsupported value: \"%.*s\": supported values: OPTIONAL, REQUIRED",
             rule, (int)(ps.n > 64 ? 64 : ps.n), (const char *)ps.p);
    /* Istio's documentation: only one of jwks and jwksUri; with both, jwks is used. */
    if (text_of(jwks).n > 0 && us.n > 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "%s sets both jwks and jwksUri: jwksUri is ignored", rule);
        MW_GUARD(pol_add_warning(set, uri, msg));
    }
    NOMEM_IF(out->issuer = pol_strndup(&set->arena, (const char *)is.p, is.n));
    NOMEM_IF(out->jwks_uri = pol_strndup(&set->arena, (const char *)us.p, us.n));
    out->line = mw_node_line(r);
    return MW_SUCCESS;
}

MW_RESULT pol_reqauthn_load(struct mw_policy_set *set, struct pol_policy *p,
                            const struct mw_node *root, const struct mw_node *spec)
{
    static const char *const keys[] = {"selector", "targetRef", "targetRefs", "jwtRules", NULL};
    MW_GUARD(check_keys(spec, "spec", keys));
    MW_GUARD(pol_load_targeting(set, p, root, spec, true));
    const struct mw_node *rules = mw_node_get(spec, "jwtRules");
    if (is_null(rules))
        return MW_SUCCESS;
    if (!is_seq(rules))
        FAIL(rules, "jwtRules must be a list");
    size_t n = mw_node_len(rules);
    if (n > MAX_JWT_RULES)
        FAIL(rules, "jwtRules has %zu entries, at most %d are allowed", n, MAX_JWT_RULES);
    struct pol_jwt_rule *jr = pol_alloc(&set->arena, (n ? n : 1) * sizeof(*jr));
    NOMEM_IF(jr);
    for (size_t i = 0; i < n; i++) {
        const struct mw_node *r = mw_node_item(rules, i);
        MW_GUARD(load_rule(set, r ? r : rules, i, &jr[i]));
        /*
         * Istio accepts two rules with one issuer, but which rule's keys and audiences a token
         * of that issuer meets is then hard to tell from the YAML: say so rather than refuse.
         */
        for (size_t k = 0; k < i && jr[i].issuer[0] != '\0'; k++) {
            if (strcmp(jr[k].issuer, jr[i].issuer) == 0) {
                char msg[256];
                snprintf(msg, sizeof(msg),
                         "jwtRules[%zu] repeats issuer \"%.100s\" of jwtRules[%zu]: which rule's "
                         "keys and audiences apply to its tokens is ambiguous",
                         i, jr[i].issuer, k);
                MW_GUARD(pol_add_warning(set, r, msg));
                break;
            }
        }
    }
    p->jwt = jr;
    p->njwt = n;
    return MW_SUCCESS;
}
