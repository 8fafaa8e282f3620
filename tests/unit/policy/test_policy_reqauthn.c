/*
 * policy_reqauthn.c: RequestAuthentication validation beyond Istio's own tables (those run in
 * test_policy_validation.c): jwksUri forms, durations, inline JWKS, header names, duplicate
 * issuers, and that a RequestAuthentication never takes part in authorization decisions.
 */
#include <stdio.h>
#include <string.h>

#include "policy/policy_internal.h"

#include "testutil.h"

static void test_jwks_uri(void **state)
{
    (void)state;
    static const struct {
        const char *uri;
        bool ok;
    } cases[] = {
        {"https://example.com/.well-known/jwks.json", true},
        {"http://example.com", true},
        {"HTTPS://Example.com/keys", true}, /* url.Parse lower-cases the scheme */
        {"https://example.com:8443/keys", true},
        {"https://user@example.com/keys", true},
        {"https://[2001:db8::1]:443/keys", true},
        {"https://10.0.0.1/keys", true},
        {"https://example.com?x=1", true},
        {"foo.com", false},
        {"example.com/keys", false},
        {"ftp://example.com/keys", false},
        {"file:///etc/keys.json", false},
        {"https:example.com", false},
        {"https:/example.com", false},
        {"https://", false},
        {"https:///keys", false},
        {"https://:443/keys", false},
        {"https://example.com:0/keys", false},
        {"https://example.com:65536/keys", false},
        {"https://example.com:http/keys", false},
        {"https://example.com:/keys", false},
        {"https://[::1/keys", false},
        {"https://[zz::1]/keys", false},
        {"https://exa mple.com/keys", false},
        {"https://example.com/ke\x01ys", false},
        {"hTPp\\\blah", false},
        {"://example.com", false},
        {"", false},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        mw_result r = pol_jwks_uri_check(mw_slice_cstr(cases[i].uri));
        if (mw_ok(r) != cases[i].ok)
            fail_msg("jwksUri '%s': ok=%d, want %d (%s)", cases[i].uri, mw_ok(r), cases[i].ok,
                     mw_ok(r) ? "" : mw_error_msg());
    }
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        long long ms; /* -1: refused */
    } cases[] = {
        {"5s", 5000},
        {"1ms", 1},
        {"1.5s", 1500},
        {"2m30s", 150000},
        {"1h", 3600000},
        {"1000us", 1},
        {"1000000ns", 1},
        {"0.001s", 1},
        {".5s", 500},
        {"1s500ms", 1500},
        {"1000\xc2\xb5s", 1},
        {"+5s", 5000},
        {"apple", -1},
        {"", -1},
        {"5", -1},
        {"s", -1},
        {"0", -1},
        {"0s", -1},
        {"-5s", -1},
        {"999us", -1},
        {"1500us", -1}, /* not ms precision */
        {"5 s", -1},
        {"5sec", -1},
        {"5d", -1},
        {"1..5s", -1},
        {"99999999999999999999h", -1},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        uint64_t ms = 0;
        mw_result r = pol_go_duration_ms(mw_slice_cstr(cases[i].text), &ms);
        if (cases[i].ms < 0) {
            if (mw_ok(r))
                fail_msg("duration '%s' accepted as %llu ms, want refused", cases[i].text,
                         (unsigned long long)ms);
            continue;
        }
        if (mw_failed(r))
            fail_msg("duration '%s' refused: %s", cases[i].text, mw_error_msg());
        assert_int_equal(ms, cases[i].ms);
    }
}

/* One jwtRules entry inside a whole document; want NULL means it loads. */
static const struct {
    const char *rule;
    const char *want;
} rule_cases[] = {
    {"issuer: a", NULL},
    {"jwksUri: https://idp.example.com/keys", NULL}, /* issuer may be omitted since 1.27 */
    {"issuer: a\n    audiences: [x, y]", NULL},
    {"issuer: a\n    audiences: [x, '']", "audiences[1] should be at least 1 chars long"},
    {"issuer: a\n    audiences: x", "list of strings"},
    {"issuer: [a]", "issuer must be a string"},
    {"issuer: a\n    bogus: 1", "unknown field \"bogus\""},
    {"issuer: a\n    jwks: '{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}'", NULL},
    {"issuer: a\n    jwks: '{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQ\",\"y\":\"Ag\"}'", NULL},
    {"issuer: a\n    jwks: '{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AQID\"}]}'",
     NULL},
    {"issuer: a\n    jwks: '{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\"}]}'", "\"e\" is missing"},
    {"issuer: a\n    jwks: '{\"keys\":[{\"kty\":\"RSA\",\"n\":\"!!\",\"e\":\"AQAB\"}]}'",
     "not base64url"},
    {"issuer: a\n    jwks: '{\"keys\":[{\"kty\":\"XYZ\"}]}'", "invalid key type"},
    {"issuer: a\n    jwks: '{\"keys\":{}}'", "must be an array"},
    {"issuer: a\n    jwks: '[1]'", "want a JSON object"},
    {"issuer: a\n    jwks: '{\"keys\":[1]}'", "not a JSON object"},
    {"issuer: a\n    jwks: "
     "'{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-1\",\"x\":\"AQ\",\"y\":\"AQ\"}]}'",
     "crv"},
    {"issuer: a\n    jwks: '{'", "jwks parse error"},
    {"issuer: a\n    fromHeaders: [{name: x-jwt, prefix: 'Bearer '}]", NULL},
    {"issuer: a\n    fromHeaders: [{prefix: 'Bearer '}]", "name: Required value"},
    {"issuer: a\n    fromHeaders: [x-jwt]", "must be of type object"},
    {"issuer: a\n    fromHeaders: [{name: x, other: y}]", "unknown field \"other\""},
    {"issuer: a\n    fromParams: [token]\n    fromCookies: [session]", NULL},
    {"issuer: a\n    fromCookies: [[a]]", "fromCookies[0] must be a string"},
    {"issuer: a\n    outputClaimToHeaders: [{header: x-sub, claim: sub}]", NULL},
    {"issuer: a\n    outputClaimToHeaders: [{header: x_sub, claim: sub}]", "should match"},
    {"issuer: a\n    outputClaimToHeaders: [{header: 'x sub', claim: sub}]", "should match"},
    {"issuer: a\n    outputClaimToHeaders: [{claim: sub}]", "header: Required value"},
    {"issuer: a\n    outputClaimToHeaders: [{header: x}]", "claim: Required value"},
    {"issuer: a\n    forwardOriginalToken: true\n    outputPayloadToHeader: x-payload", NULL},
    {"issuer: a\n    forwardOriginalToken: maybe", "must be a boolean"},
    {"issuer: a\n    timeout: 10s", NULL},
    {"issuer: a\n    timeout: 500us", "greater than 1ms"},
    {"issuer: a\n    timeout: 1500us", "ms precision"},
    {"issuer: a\n    presence: OPTIONAL", NULL},
    {"issuer: a\n    presence: maybe", "Unsupported value"},
    {"issuer: a\n    spaceDelimitedClaims: [scope, roles]", NULL},
    {"issuer: a\n    jwksUri: https://idp/keys\n    jwks: '{\"kty\":\"oct\",\"k\":\"AQ\"}'", NULL},
    {"issuer: a\n    jwksUri: ftp://idp/keys", "url must have scheme"},
};

static void test_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < MW_ARRAY_LEN(rule_cases); i++) {
        char doc[1024];
        snprintf(doc, sizeof(doc),
                 "apiVersion: security.istio.io/v1beta1\nkind: RequestAuthentication\n"
                 "metadata: {name: ra, namespace: foo}\nspec:\n  jwtRules:\n  - %s\n",
                 rule_cases[i].rule);
        struct mw_policy_set *set;
        mw_assert_ok(mw_policy_set_new(&set));
        mw_result r = mw_policy_set_add_yaml(set, mw_slice_cstr(doc), "ra.yaml");
        if (rule_cases[i].want == NULL) {
            if (mw_failed(r))
                fail_msg("rule %zu refused: %s\n%s", i, mw_error_msg(), doc);
            assert_int_equal(mw_policy_set_count(set), 1);
        } else {
            if (mw_ok(r))
                fail_msg("rule %zu accepted, want '%s'\n%s", i, rule_cases[i].want, doc);
            if (strstr(mw_error_msg(), rule_cases[i].want) == NULL)
                fail_msg("rule %zu: '%s' does not say '%s'", i, mw_error_msg(), rule_cases[i].want);
            assert_true(strncmp(mw_error_msg(), "ra.yaml:", 8) == 0);
        }
        mw_policy_set_free(set);
    }
}

static size_t warnings_of(const char *spec, const char *want)
{
    char doc[1024];
    snprintf(doc, sizeof(doc),
             "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
             "metadata: {name: ra, namespace: foo}\nspec:\n%s",
             spec);
    struct mw_policy_set *set;
    mw_assert_ok(mw_policy_set_new(&set));
    mw_assert_ok(mw_policy_set_add_yaml(set, mw_slice_cstr(doc), "ra.yaml"));
    size_t n = mw_policy_set_warning_count(set);
    if (want != NULL) {
        assert_true(n > 0);
        if (strstr(mw_policy_set_warning(set, 0), want) == NULL)
            fail_msg("warning '%s' does not say '%s'", mw_policy_set_warning(set, 0), want);
    }
    mw_policy_set_free(set);
    return n;
}

static void test_warnings(void **state)
{
    (void)state;
    assert_int_equal(warnings_of("  jwtRules: [{issuer: a}, {issuer: b}]\n", NULL), 0);
    assert_int_equal(warnings_of("  jwtRules: [{issuer: a}, {issuer: b}, {issuer: a}]\n",
                                 "repeats issuer \"a\" of jwtRules[0]"),
                     1);
    /* validateWorkloadSelector: a selector without labels is a warning. */
    assert_int_equal(warnings_of("  selector: {}\n", "without labels"), 1);
    assert_int_equal(warnings_of("  jwtRules: [{issuer: a, jwksUri: 'https://x/k', jwks: "
                                 "'{\"kty\":\"oct\",\"k\":\"AQ\"}'}]\n",
                                 "jwksUri is ignored"),
                     1);
}

static void test_spec_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *want;
    } cases[] = {
        {"  jwtRules: {issuer: a}\n", "jwtRules must be a list"},
        {"  rules: []\n", "unknown field \"rules\""},
        {"  selector: {matchLabels: {'': x}}\n", "empty label key"},
        {"  selector: {matchLabels: {app: 'a*'}}\n", "wildcard"},
        {"  targetRefs: [{group: '', kind: Service, name: a}, {kind: Service}]\n",
         "targetRefs[1].name: Required value"},
        {"  targetRefs: [{group: UPPER, kind: Service, name: a}]\n", "targetRefs[0].group"},
        {"  targetRef: {group: '', kind: Pod, name: a}\n", "not supported"},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        char doc[1024];
        snprintf(doc, sizeof(doc),
                 "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
                 "metadata:\n  name: ra\n  namespace: foo\n  annotations: {a: b}\nspec:\n%s",
                 cases[i].spec);
        struct mw_policy_set *set;
        mw_assert_ok(mw_policy_set_new(&set));
        if (mw_ok(mw_policy_set_add_yaml(set, mw_slice_cstr(doc), "ra.yaml")))
            fail_msg("case %zu accepted, want '%s'", i, cases[i].want);
        if (strstr(mw_error_msg(), cases[i].want) == NULL)
            fail_msg("case %zu: '%s' does not say '%s'", i, mw_error_msg(), cases[i].want);
        mw_policy_set_free(set);
    }
    /* validateMetadata: istio.io/dry-run is for AuthorizationPolicy only, spec or not. */
    static const char *const dry[] = {
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ra, "
        "namespace: foo, annotations: {istio.io/dry-run: 'true'}}\nspec: {jwtRules: [{issuer: "
        "a}]}\n",
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ra, "
        "namespace: foo, annotations: {istio.io/dry-run: 'true'}}\n",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(dry); i++) {
        struct mw_policy_set *set;
        mw_assert_ok(mw_policy_set_new(&set));
        assert_true(mw_failed(mw_policy_set_add_yaml(set, mw_slice_cstr(dry[i]), "ra.yaml")));
        assert_non_null(strstr(mw_error_msg(), "dry-run"));
        mw_policy_set_free(set);
    }
}

/* A RequestAuthentication is validated and kept, but never counts as an (allow-nothing) ALLOW. */
static void test_not_evaluated(void **state)
{
    (void)state;
    static const char *const yaml =
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ra, "
        "namespace: foo}\nspec:\n  jwtRules: [{issuer: a}]\n---\napiVersion: "
        "security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: empty, namespace: "
        "foo}\n";
    struct mw_policy_set *set;
    mw_assert_ok(mw_policy_set_new(&set));
    mw_assert_ok(mw_policy_set_add_yaml(set, mw_slice_cstr(yaml), "ra.yaml"));
    assert_int_equal(mw_policy_set_count(set), 2);
    assert_int_equal(mw_policy_set_warning_count(set), 0);
    struct mw_policy_engine *e;
    mw_assert_ok(mw_policy_engine_compile(set, NULL, "foo", NULL, NULL, 0, &e));
    assert_int_equal(mw_policy_engine_count(e, "ALLOW"), 0);
    struct mw_policy_request r = {
        .http = true, .method = mw_slice_cstr("GET"), .path = mw_slice_cstr("/")};
    struct mw_policy_decision d;
    mw_policy_evaluate(e, &r, &d);
    assert_int_equal(d.verdict, MW_POLICY_ALLOW);
    struct mw_policy_mtls_result m;
    mw_policy_mtls_mode(set, NULL, "foo", NULL, NULL, 0, 80, &m);
    assert_int_equal(m.mode, MW_POLICY_MTLS_PERMISSIVE);
    assert_null(m.policy);
    mw_policy_engine_free(e);
    mw_policy_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwks_uri),     cmocka_unit_test(test_durations),
        cmocka_unit_test(test_rules),        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_spec_rejects), cmocka_unit_test(test_not_evaluated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
