/*
 * Validation against Istio's own data: every document of authz-valid.yaml and peerauth-valid.yaml
 * loads; every document of the -invalid.yaml files is rejected with a message that names the
 * fault of its `_err:` line; every case of validation-cases.json agrees (valid and warning).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <meshward/policy.h>

#include "testutil.h"

static void load_docs(const char *rel, struct mw_docs **docs)
{
    mw_assert_ok(mw_yaml_load_file(mw_test_data(rel), &mw_conf_default_limits, docs));
}

static void check_valid_file(const char *rel)
{
    struct mw_docs *docs;
    load_docs(rel, &docs);
    size_t n = 0;
    for (size_t i = 0; i < mw_docs_count(docs); i++) {
        if (mw_docs_root(docs, i) == NULL)
            continue;
        struct mw_policy_set *set;
        mw_assert_ok(mw_policy_set_new(&set));
        if (mw_failed(mw_policy_set_add_doc(set, mw_docs_root(docs, i))))
            fail_msg("%s document %zu rejected: %s", rel, i, mw_error_msg());
        assert_int_equal(mw_policy_set_count(set), 1);
        mw_policy_set_free(set);
        n++;
    }
    printf("%s: %zu documents load\n", rel, n);
    assert_true(n > 0);
    mw_docs_free(docs);
}

static void test_valid_files(void **state)
{
    (void)state;
    check_valid_file("istio/validation/authz-valid.yaml");
    check_valid_file("istio/validation/peerauth-valid.yaml");
    check_valid_file("istio/validation/reqauth-valid.yaml");
}

/*
 * The words of Istio's _err line that our message must contain (case-insensitive). A mapping
 * rather than equality: our messages say more (file:line, what to do instead).
 */
static const struct {
    const char *err;
    const char *want;
} err_keywords[] = {
    {"Cannot set serviceAccounts with namespaces or principals",
     "serviceAccounts with namespaces or principals"},
    {"Unsupported value: \"BLAH\"", "Unsupported value: \"BLAH\""},
    {"type conversion error from", "type conversion error from"},
    {"portLevelMtls requires selector", "portLevelMtls requires selector"},
    {"spec.portLevelMtls in body should have at least 1 properties", "at least 1 properties"},
    {"port must be between 1-65535", "port must be between 1-65535"},
    /* reqauth-invalid.yaml: the CRD schema's words, and where ours differ, the same fault. */
    {"only one of targetRefs or selector can be set", "only one of targetRefs"},
    {"spec.targetRef.name: Required value", "targetRef.name: Required value"},
    {"cross namespace referencing is not currently supported", "cross namespace referencing"},
    {"spec.targetRef.group in body should match", "targetRef.group"},
    {"spec.targetRef.kind in body should match", "targetRef.kind"},
    {"spec.jwtRules[0] in body must be of type object", "jwtRules[0] must be of type object"},
    {"audiences[0] in body should be at least 1 chars long",
     "audiences[0] should be at least 1 chars long"},
    {"url must have scheme", "url must have scheme"},
    {"spec.jwtRules[0].fromHeaders[0].name: Required value",
     "jwtRules[0].fromHeaders[0].name: Required value"},
    {"spec.jwtRules[0].fromHeaders[0].name in body should be at least 1 chars long",
     "jwtRules[0].fromHeaders[0].name should be at least 1 chars long"},
    {"fromParams[0] in body should be at least 1 chars long",
     "fromParams[0] should be at least 1 chars long"},
    {"fromCookies[0] in body should be at least 1 chars long",
     "fromCookies[0] should be at least 1 chars long"},
    {"spec.jwtRules[0].outputClaimToHeaders[0] in body must be of type object",
     "jwtRules[0].outputClaimToHeaders[0] must be of type object"},
    {"spec.jwtRules[0].outputClaimToHeaders[0].claim in body should be at least 1 chars long",
     "outputClaimToHeaders[0].claim should be at least 1 chars long"},
    {"header in body should be at least 1 chars long", "header should be at least 1 chars long"},
    {"header in body should match", "header \":authority\" should match"},
    {"must be a valid duration greater than", "must be a valid duration greater than 1ms"},
    {"spaceDelimitedClaims[0] in body should be at least 1 chars long",
     "spaceDelimitedClaims[0] should be at least 1 chars long"},
    {"Unsupported value: \"MANDATORY\"", "Unsupported value: \"MANDATORY\""},
};

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        if (strncasecmp(p, needle, n) == 0)
            return true;
    }
    return false;
}

static void check_invalid_file(const char *rel)
{
    struct mw_docs *docs;
    load_docs(rel, &docs);
    size_t n = 0;
    for (size_t i = 0; i < mw_docs_count(docs); i++) {
        const struct mw_node *root = mw_docs_root(docs, i);
        if (root == NULL)
            continue;
        const struct mw_node *err = mw_node_get(root, "_err");
        assert_non_null(err);
        const char *want = NULL;
        for (size_t k = 0; k < MW_ARRAY_LEN(err_keywords); k++) {
            if (strcmp(mw_node_str(err), err_keywords[k].err) == 0)
                want = err_keywords[k].want;
        }
        if (want == NULL)
            fail_msg("%s document %zu: no keyword mapping for _err '%s'", rel, i, mw_node_str(err));
        struct mw_policy_set *set;
        mw_assert_ok(mw_policy_set_new(&set));
        if (mw_ok(mw_policy_set_add_doc(set, root)))
            fail_msg("%s document %zu accepted, want '%s'", rel, i, mw_node_str(err));
        if (!contains_ci(mw_error_msg(), want))
            fail_msg("%s document %zu: message '%s' does not name '%s'", rel, i, mw_error_msg(),
                     want);
        /* The message starts with file:line:col. */
        assert_true(strstr(mw_error_msg(), rel) != NULL);
        mw_policy_set_free(set);
        n++;
    }
    printf("%s: %zu documents rejected with the right fault\n", rel, n);
    assert_true(n > 0);
    mw_docs_free(docs);
}

static void test_invalid_files(void **state)
{
    (void)state;
    check_invalid_file("istio/validation/authz-invalid.yaml");
    check_invalid_file("istio/validation/peerauth-invalid.yaml");
    check_invalid_file("istio/validation/reqauth-invalid.yaml");
}

static void test_validation_cases(void **state)
{
    (void)state;
    json_error_t err;
    json_t *root =
        json_load_file(mw_test_data("istio/validation-cases.json"), JSON_REJECT_DUPLICATES, &err);
    if (root == NULL)
        fail_msg("validation-cases.json:%d: %s", err.line, err.text);
    const json_t *cases = json_object_get(root, "cases");
    size_t agree = 0, total = 0, reqauthn = 0;
    struct mw_dynbuf bad;
    mw_dynbuf_init(&bad, 1 << 20);
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        const char *kind = json_string_value(json_object_get(c, "kind"));
        const char *name = json_string_value(json_object_get(c, "name"));
        total++;
        reqauthn += strcmp(kind, "RequestAuthentication") == 0;
        bool want_valid = json_is_true(json_object_get(c, "valid"));
        bool want_warning = json_is_true(json_object_get(c, "warning"));
        struct mw_policy_set *set;
        mw_assert_ok(mw_policy_set_new(&set));
        mw_result r = mw_policy_set_add_yaml(
            set, mw_slice_cstr(json_string_value(json_object_get(c, "yaml"))), name);
        bool got_valid = mw_ok(r);
        bool got_warning = mw_policy_set_warning_count(set) > 0;
        if (got_valid == want_valid && (!want_valid || got_warning == want_warning))
            agree++;
        else
            mw_assert_ok(mw_dynbuf_addf(&bad, "  %s %s: want valid=%d warning=%d, got %d %d: %s\n",
                                        kind, name, want_valid, want_warning, got_valid,
                                        got_warning, got_valid ? "" : mw_error_msg()));
        mw_policy_set_free(set);
    }
    printf("validation-cases: %zu of %zu agree (%zu RequestAuthentication)\n", agree, total,
           reqauthn);
    assert_int_equal(total, 79);
    assert_int_equal(reqauthn, 22);
    json_decref(root);
    if (agree != total)
        fail_msg("disagreements:\n%s", mw_dynbuf_cstr(&bad));
    mw_dynbuf_free(&bad);
}

/* Our own rejecting cases: wrong types, unknown fields, bad templates, bad keys. */
static void test_own_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        const char *want;
    } cases[] = {
        {"rules: [{to: [{operation: {paths: ['/foo/{*}.txt']}}]}]", "path template"},
        {"rules: [{to: [{operation: {paths: ['/{**}/a/{*}']}}]}]", "last operator"},
        {"rules: [{when: [{key: destination.namespace, values: [a]}]}]", "metadata.namespace"},
        {"rules: [{when: [{key: 'destination.labels[app]', values: [a]}]}]", "selector"},
        {"rules: [{when: [{key: destination.port, values: ['70000']}]}]", "port"},
        {"rules: [{when: [{key: remote.ip, values: ['1.2.3.4/33']}]}]", "CIDR"},
        {"rules: [{from: [{source: {principals: a}}]}]", "list"},
        {"rules: [{from: [{source: {bogus: [a]}}]}]", "unknown field"},
        {"rules: [{from: [{source: {serviceAccounts: ['a/b/c']}}]}]", "serviceAccount"},
        {"rules: [{from: [{source: {serviceAccounts: ['ns/*']}}]}]", "wildcards"},
        {"action: CUSTOM\n  provider: {name: x}\n  rules: [{from: [{source: {principals: [a]}}]}]",
         "CUSTOM"},
        {"action: DENY\n  provider: {name: x}\n  rules: [{}]", "provider"},
        {"action: BOGUS", "Unsupported value"},
        {"targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: g}]\n  selector: "
         "{matchLabels: {a: b}}",
         "only one of"},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        char doc[1024];
        snprintf(doc, sizeof(doc),
                 "apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\nmetadata:\n"
                 "  name: x\n  namespace: foo\nspec:\n  %s\n",
                 cases[i].spec);
        struct mw_policy_set *set;
        mw_assert_ok(mw_policy_set_new(&set));
        mw_result r = mw_policy_set_add_yaml(set, mw_slice_cstr(doc), "own.yaml");
        if (mw_ok(r))
            fail_msg("case %zu accepted: %s", i, cases[i].spec);
        if (!contains_ci(mw_error_msg(), cases[i].want))
            fail_msg("case %zu: '%s' does not say '%s'", i, mw_error_msg(), cases[i].want);
        assert_true(strncmp(mw_error_msg(), "own.yaml:", 9) == 0);
        mw_policy_set_free(set);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_files),
        cmocka_unit_test(test_invalid_files),
        cmocka_unit_test(test_validation_cases),
        cmocka_unit_test(test_own_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
