/*
 * Path normalisation and the bypass corpus: for every mode, no spelling of /admin that a backend
 * could read as /admin gets past a DENY on /admin and /admin/ + anything. Also ProvenancePolicy.
 */
#include <stdio.h>
#include <string.h>

#include <meshward/policy.h>

#include "testutil.h"

static const char *const bypass[] = {
    "/admin",
    "/admin/",
    "/admin/x",
    "/admin?x=1",
    "/admin#frag",
    "//admin",
    "///admin/x",
    "/./admin",
    "/x/../admin",
    "/admin/x/../y",
    "/admin/a/b/../../c",
    "/admin/x/%2e%2e/y",
    "/admin/x%2f..%2fy",
    "/admin/./x",
    "/%2e%2e/admin",
    "/x/%2e%2e/admin",
    "/x/%2E%2E/admin",
    "/%61dmin",
    "/adm%69n",
    "/x%2f..%2fadmin",
    "/x%2F..%2Fadmin",
    "%2fadmin",
    "/x/..%2fadmin",
    "\\admin",
    "/x\\..\\admin",
    "/admin.",
    "/admin./x",
    "/ADMIN",
    "/Admin/x",
    "/admin;jsessionid=1",
    "/x/.%2e/admin",
    "/%2Fadmin",
    "/admin%2fx",
    "/admin//x",
    "/admin?/../public",
    "/admin#/../public",
    "/x/..//admin",
    "/admin%20",
    "/.//admin",
};

static const char *const allowed[] = {"/public", "/public/admin", "/administrator-docs"};

static const char *const deny_yaml =
    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-admin, "
    "namespace: foo}\nspec:\n  action: DENY\n  rules:\n  - to:\n    - operation:\n        paths: "
    "['/admin', '/admin/*']\n";

static void run_mode(enum mw_policy_path_norm mode, const char *name)
{
    struct mw_policy_set *set;
    mw_assert_ok(mw_policy_set_new(&set));
    mw_assert_ok(mw_policy_set_add_yaml(set, mw_slice_cstr(deny_yaml), "deny.yaml"));
    struct mw_policy_mesh mesh = {.path_norm = mode};
    struct mw_policy_engine *e;
    mw_assert_ok(mw_policy_engine_compile(set, &mesh, "foo", NULL, NULL, 0, &e));
    for (size_t i = 0; i < MW_ARRAY_LEN(bypass); i++) {
        struct mw_policy_request r = {
            .http = true, .method = mw_slice_cstr("GET"), .path = mw_slice_cstr(bypass[i])};
        struct mw_policy_decision d;
        mw_policy_evaluate(e, &r, &d);
        if (d.verdict != MW_POLICY_DENY)
            fail_msg("mode %s: '%s' bypassed the DENY", name, bypass[i]);
    }
    for (size_t i = 0; i < MW_ARRAY_LEN(allowed); i++) {
        struct mw_policy_request r = {
            .http = true, .method = mw_slice_cstr("GET"), .path = mw_slice_cstr(allowed[i])};
        struct mw_policy_decision d;
        mw_policy_evaluate(e, &r, &d);
        if (d.verdict != MW_POLICY_ALLOW)
            fail_msg("mode %s: '%s' denied, want allowed (%s)", name, allowed[i], d.reason);
    }
    /* %00 is refused outright, as Envoy answers 400. */
    struct mw_policy_request r = {.http = true, .path = mw_slice_cstr("/public%00")};
    struct mw_policy_decision d;
    mw_policy_evaluate(e, &r, &d);
    assert_int_equal(d.verdict, MW_POLICY_DENY);
    mw_policy_engine_free(e);
    mw_policy_set_free(set);
}

static void test_bypass_corpus(void **state)
{
    (void)state;
    run_mode(MW_POLICY_PATH_BASE, "BASE");
    run_mode(MW_POLICY_PATH_MERGE_SLASHES, "MERGE_SLASHES");
    run_mode(MW_POLICY_PATH_DECODE_AND_MERGE_SLASHES, "DECODE_AND_MERGE_SLASHES");
    run_mode(MW_POLICY_PATH_NONE, "NONE");
    printf("bypass corpus: %zu attempts x 4 modes held\n", MW_ARRAY_LEN(bypass));
}

/* An ALLOW on /public/ + anything must not admit a path that resolves elsewhere. */
static void test_allow_side_strict(void **state)
{
    (void)state;
    static const char *yaml =
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, "
        "namespace: foo}\nspec:\n  rules:\n  - to:\n    - operation:\n        paths: "
        "['/public/*']\n";
    static const char *const sneaky[] = {"/public/..%2fadmin", "/public/%2e%2e/admin",
                                         "/public/../admin", "/public\\..\\admin"};
    struct mw_policy_set *set;
    mw_assert_ok(mw_policy_set_new(&set));
    mw_assert_ok(mw_policy_set_add_yaml(set, mw_slice_cstr(yaml), "allow.yaml"));
    for (int mode = 0; mode < 4; mode++) {
        struct mw_policy_mesh mesh = {.path_norm = (enum mw_policy_path_norm)mode};
        struct mw_policy_engine *e;
        mw_assert_ok(mw_policy_engine_compile(set, &mesh, "foo", NULL, NULL, 0, &e));
        for (size_t i = 0; i < MW_ARRAY_LEN(sneaky); i++) {
            struct mw_policy_request r = {.http = true, .path = mw_slice_cstr(sneaky[i])};
            struct mw_policy_decision d;
            mw_policy_evaluate(e, &r, &d);
            if (d.verdict != MW_POLICY_DENY)
                fail_msg("mode %d: '%s' allowed by /public/*", mode, sneaky[i]);
        }
        struct mw_policy_request ok = {.http = true, .path = mw_slice_cstr("/public/x")};
        struct mw_policy_decision d;
        mw_policy_evaluate(e, &ok, &d);
        assert_int_equal(d.verdict, MW_POLICY_ALLOW);
        mw_policy_engine_free(e);
    }
    mw_policy_set_free(set);
}

static void test_provenance(void **state)
{
    (void)state;
    static const char *yaml =
        "apiVersion: meshward.io/v1alpha1\nkind: ProvenancePolicy\nmetadata: {name: built-here, "
        "namespace: foo}\nspec:\n  action: DENY\n  rules:\n  - from:\n    - source:\n        "
        "namespaces: [bar]\n    when:\n    - key: source.provenance.builderId\n      notValues: "
        "['https://github.com/org/*']\n    - key: source.provenance.imageDigest\n      "
        "notValues: ['sha256:aaaa']\n";
    struct mw_policy_set *set;
    mw_assert_ok(mw_policy_set_new(&set));
    mw_assert_ok(mw_policy_set_add_yaml(set, mw_slice_cstr(yaml), "prov.yaml"));
    struct mw_policy_engine *e;
    mw_assert_ok(mw_policy_engine_compile(set, NULL, "foo", NULL, NULL, 0, &e));
    struct mw_policy_request r = {.http = true,
                                  .source_principal = mw_slice_cstr("cluster.local/ns/bar/sa/x"),
                                  .builder_id = mw_slice_cstr("https://evil.example/b"),
                                  .image_digest = mw_slice_cstr("sha256:bbbb")};
    struct mw_policy_decision d;
    mw_policy_evaluate(e, &r, &d);
    assert_int_equal(d.verdict, MW_POLICY_DENY);
    assert_string_equal(d.policy, "foo/built-here");
    r.builder_id = mw_slice_cstr("https://github.com/org/builder");
    mw_policy_evaluate(e, &r, &d);
    /* The when conditions are ANDed: a trusted builder alone takes the peer out of the DENY. */
    assert_int_equal(d.verdict, MW_POLICY_ALLOW);
    r.builder_id = mw_slice_cstr("https://evil.example/b");
    r.image_digest = mw_slice_cstr("sha256:aaaa");
    mw_policy_evaluate(e, &r, &d);
    assert_int_equal(d.verdict, MW_POLICY_ALLOW);
    /* Plaintext peers have no provenance: notValues match, namespaces do not (mTLS only). */
    r.source_principal = mw_slice_make(NULL, 0);
    r.image_digest = mw_slice_make(NULL, 0);
    mw_policy_evaluate(e, &r, &d);
    assert_int_equal(d.verdict, MW_POLICY_ALLOW);
    mw_policy_engine_free(e);
    mw_policy_set_free(set);

    /* Provenance keys are refused on Istio kinds: never extra fields on Istio's schema. */
    static const char *istio =
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x}\n"
        "spec:\n  rules:\n  - when:\n    - key: source.provenance.builderId\n      values: [a]\n";
    mw_assert_ok(mw_policy_set_new(&set));
    assert_true(mw_failed(mw_policy_set_add_yaml(set, mw_slice_cstr(istio), "i.yaml")));
    assert_non_null(strstr(mw_error_msg(), "unknown attribute"));
    mw_policy_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bypass_corpus),
        cmocka_unit_test(test_allow_side_strict),
        cmocka_unit_test(test_provenance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
