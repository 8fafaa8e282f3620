/*
 * Every request of every case of ../shared/testdata/istio/authz-decisions.json, and every
 * peer_authentication_case: the decision, the audit mark and the matched policy must agree.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <meshward/policy.h>

#include "testutil.h"

#define MAX_LABELS 16

struct workload {
    const char *ns;
    const char *k[MAX_LABELS];
    const char *v[MAX_LABELS];
    size_t n;
};

static void read_workload(const json_t *c, struct workload *w)
{
    const json_t *wl = json_object_get(c, "workload");
    w->ns = json_string_value(json_object_get(wl, "namespace"));
    w->n = 0;
    const char *key;
    json_t *val;
    json_object_foreach(json_object_get((json_t *)wl, "labels"), key, val)
    {
        assert_true(w->n < MAX_LABELS);
        w->k[w->n] = key;
        w->v[w->n] = json_string_value(val);
        w->n++;
    }
}

static json_t *load_table(void)
{
    /* jansson directly: the table is trusted test data, and this keeps the test off conf. */
    json_error_t err;
    json_t *root =
        json_load_file(mw_test_data("istio/authz-decisions.json"), JSON_REJECT_DUPLICATES, &err);
    if (root == NULL)
        fail_msg("authz-decisions.json:%d: %s", err.line, err.text);
    return root;
}

static struct mw_policy_set *load_policies(const json_t *c)
{
    struct mw_policy_set *set;
    mw_assert_ok(mw_policy_set_new(&set));
    const char *text = json_string_value(json_object_get(c, "policies"));
    const char *name = json_string_value(json_object_get(c, "name"));
    mw_result r = mw_policy_set_add_yaml(set, mw_slice_cstr(text), name);
    if (mw_failed(r))
        fail_msg("case %s: policies rejected: %s", name, mw_error_msg());
    return set;
}

static void test_authz_cases(void **state)
{
    (void)state;
    json_t *root = load_table();
    const json_t *cases = json_object_get(root, "cases");
    size_t total = 0, agree = 0;
    struct mw_dynbuf bad;
    mw_dynbuf_init(&bad, 1 << 20);
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        struct workload w;
        read_workload(c, &w);
        struct mw_policy_set *set = load_policies(c);
        struct mw_policy_mesh mesh = {
            .root_namespace = json_string_value(json_object_get(c, "root_namespace")),
            .trust_domain = json_string_value(json_object_get(c, "trust_domain")),
        };
        struct mw_policy_engine *e;
        mw_assert_ok(mw_policy_engine_compile(set, &mesh, w.ns, w.k, w.v, w.n, &e));
        const json_t *reqs = json_object_get(c, "requests");
        for (size_t j = 0; j < json_array_size(reqs); j++) {
            const json_t *rq = json_array_get(reqs, j);
            struct mw_policy_request req;
            struct mw_policy_header *hdrs;
            mw_assert_ok(mw_policy_request_from_json(rq, &req, &hdrs));
            struct mw_policy_decision d;
            mw_policy_evaluate(e, &req, &d);
            free(hdrs);
            total++;
            const char *want = json_string_value(json_object_get(rq, "expect"));
            bool want_audit = json_is_true(json_object_get(rq, "audit"));
            const json_t *mp = json_object_get(rq, "matched_policy");
            const char *got = d.verdict == MW_POLICY_ALLOW ? "ALLOW" : "DENY";
            bool ok = strcmp(want, got) == 0 && want_audit == d.audit;
            if (ok && json_is_string(mp))
                ok = d.policy != NULL && strcmp(d.policy, json_string_value(mp)) == 0;
            if (ok && json_is_null(mp))
                ok = d.policy == NULL;
            if (ok) {
                agree++;
            } else {
                mw_assert_ok(mw_dynbuf_addf(
                    &bad, "  %s[%zu]: want %s audit=%d policy=%s, got %s audit=%d policy=%s (%s)\n",
                    name, j, want, want_audit, json_is_string(mp) ? json_string_value(mp) : "-",
                    got, d.audit, d.policy ? d.policy : "-", d.reason));
            }
        }
        mw_policy_engine_free(e);
        mw_policy_set_free(set);
    }
    printf("authz-decisions: %zu of %zu requests agree\n", agree, total);
    json_decref(root);
    if (agree != total)
        fail_msg("%zu disagreements:\n%s", total - agree, mw_dynbuf_cstr(&bad));
    mw_dynbuf_free(&bad);
}

static void test_peer_authentication_cases(void **state)
{
    (void)state;
    json_t *root = load_table();
    const json_t *cases = json_object_get(root, "peer_authentication_cases");
    size_t agree = 0;
    struct mw_dynbuf bad;
    mw_dynbuf_init(&bad, 1 << 20);
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        struct workload w;
        read_workload(c, &w);
        struct mw_policy_set *set = load_policies(c);
        struct mw_policy_mesh mesh = {
            .root_namespace = json_string_value(json_object_get(c, "root_namespace")),
        };
        struct mw_policy_mtls_result m;
        mw_policy_mtls_mode(set, &mesh, w.ns, w.k, w.v, w.n,
                            (uint16_t)json_integer_value(json_object_get(c, "port")), &m);
        const char *want = json_string_value(json_object_get(c, "expect_mode"));
        if (strcmp(want, mw_policy_mtls_name(m.mode)) == 0)
            agree++;
        else
            mw_assert_ok(mw_dynbuf_addf(&bad, "  %s: want %s, got %s (%s %s)\n",
                                        json_string_value(json_object_get(c, "name")), want,
                                        mw_policy_mtls_name(m.mode), m.scope,
                                        m.policy ? m.policy : "-"));
        mw_policy_set_free(set);
    }
    printf("peer_authentication_cases: %zu of %zu agree\n", agree, json_array_size(cases));
    size_t n = json_array_size(cases);
    json_decref(root);
    if (agree != n)
        fail_msg("disagreements:\n%s", mw_dynbuf_cstr(&bad));
    mw_dynbuf_free(&bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authz_cases),
        cmocka_unit_test(test_peer_authentication_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
