/*
 * The control plane's mesh directory: Istio's own valid policy files load,
 * invalid ones are refused with their place, each namespace gets exactly its
 * documents and the root namespace's, and what is rendered loads again.
 */
#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <meshward/conf.h>
#include <meshward/control.h>
#include <meshward/policy.h>

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void copy_testdata(const char *dir, const char *rel, const char *name)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1 << 24);
    mw_test_read(rel, &b);
    write_file(dir, name, mw_dynbuf_cstr(&b));
    mw_dynbuf_free(&b);
}

static size_t count_docs(const char *rel)
{
    struct mw_docs *d = NULL;
    mw_assert_ok(mw_yaml_load_file(mw_test_data(rel), NULL, &d));
    size_t n = 0;
    for (size_t i = 0; i < mw_docs_count(d); i++)
        n += mw_docs_root(d, i) != NULL;
    mw_docs_free(d);
    return n;
}

static const char *registry = "apiVersion: meshward.io/v1alpha1\n"
                              "kind: MeshService\n"
                              "metadata: {name: ratings, namespace: bookinfo}\n"
                              "spec:\n"
                              "  host: ratings.bookinfo\n"
                              "  port: 9080\n"
                              "  endpoints: [\"10.0.0.7:15006\", \"[fd00::7]:15006\"]\n"
                              "  spiffeId: spiffe://cluster.local/ns/bookinfo/sa/ratings\n"
                              "  protocol: http\n";

static const char *egress = "apiVersion: meshward.io/v1alpha1\n"
                            "kind: EgressPolicy\n"
                            "metadata: {name: out, namespace: bookinfo}\n"
                            "spec: {egress: [{host: pypi.org, ports: [443]}]}\n"
                            "---\n"
                            "apiVersion: meshward.io/v1alpha1\n"
                            "kind: EgressPolicy\n"
                            "metadata: {name: mesh-wide, namespace: istio-system}\n"
                            "spec: {egress: [{cidr: 10.1.0.0/16, ports: [53]}]}\n";

static const char *mesh_dir(void)
{
    const char *dir = mw_test_tmpdir();
    copy_testdata(dir, "istio/validation/authz-valid.yaml", "10-authz.yaml");
    copy_testdata(dir, "istio/validation/peerauth-valid.yaml", "20-peerauth.yml");
    copy_testdata(dir, "istio/validation/reqauth-valid.yaml", "30-reqauth.yaml");
    write_file(dir, "40-registry.yaml", registry);
    write_file(dir, "50-egress.yaml", egress);
    /* Not read: a dot file and a file of another extension. */
    write_file(dir, ".hidden.yaml", "not: [valid");
    write_file(dir, "notes.txt", "not yaml at all: [");
    return dir;
}

static void test_load_istio_files(void **state)
{
    const char *dir = mesh_dir();
    struct mw_control_mesh *m = NULL;
    mw_assert_ok(mw_control_mesh_load(dir, NULL, &m));
    struct mw_control_mesh_stats st;
    mw_control_mesh_stats(m, &st);
    size_t want = count_docs("istio/validation/authz-valid.yaml") +
                  count_docs("istio/validation/peerauth-valid.yaml") +
                  count_docs("istio/validation/reqauth-valid.yaml");
    assert_int_equal(st.files, 5);
    assert_int_equal(st.policies, want);
    assert_int_equal(st.egress, 2);
    assert_int_equal(st.services, 1);
    mw_control_mesh_free(m);
}

/* Every rendered document: in ns or the root namespace, or a MeshService; loads and validates. */
static void check_render(const struct mw_control_mesh *m, const char *ns, size_t *n_docs)
{
    struct mw_dynbuf out;
    mw_dynbuf_init(&out, 1 << 26);
    mw_assert_ok(mw_control_mesh_render(m, ns, &out));
    struct mw_docs *d = NULL;
    mw_assert_ok(mw_yaml_load(mw_dynbuf_slice(&out), "rendered", NULL, &d));
    struct mw_policy_set *set = NULL;
    mw_assert_ok(mw_policy_set_new(&set));
    *n_docs = 0;
    for (size_t i = 0; i < mw_docs_count(d); i++) {
        const struct mw_node *root = mw_docs_root(d, i);
        assert_non_null(root);
        const char *kind = mw_node_str(mw_node_get(root, "kind"));
        const char *dns = mw_node_str(mw_node_get(mw_node_get(root, "metadata"), "namespace"));
        if (dns == NULL)
            dns = "default";
        if (strcmp(kind, "MeshService") != 0 && strcmp(dns, ns) != 0 &&
            strcmp(dns, "istio-system") != 0)
            fail_msg("namespace %s got a %s of namespace %s", ns, kind, dns);
        if (strcmp(kind, "MeshService") != 0 && strcmp(kind, "EgressPolicy") != 0)
            mw_assert_ok(mw_policy_set_add_doc(set, root));
        (*n_docs)++;
    }
    mw_policy_set_free(set);
    mw_docs_free(d);
    mw_dynbuf_free(&out);
}

static void test_render_per_namespace(void **state)
{
    struct mw_control_mesh *m = NULL;
    mw_assert_ok(mw_control_mesh_load(mesh_dir(), NULL, &m));
    size_t def = 0, bookinfo = 0, nowhere = 0;
    check_render(m, "default", &def); /* Istio's files name no namespace */
    check_render(m, "bookinfo", &bookinfo);
    check_render(m, "no-such-namespace", &nowhere);
    /* The registry and the root namespace's documents reach every namespace. */
    assert_true(nowhere >= 2);
    assert_true(def > nowhere);
    /* bookinfo has its own EgressPolicy on top. */
    assert_int_equal(bookinfo, nowhere + 1);
    mw_control_mesh_free(m);
}

static void test_root_namespace_option(void **state)
{
    struct mw_control_mesh *m = NULL;
    mw_assert_ok(mw_control_mesh_load(mesh_dir(), "bookinfo", &m));
    struct mw_dynbuf out;
    mw_dynbuf_init(&out, 1 << 26);
    mw_assert_ok(mw_control_mesh_render(m, "elsewhere", &out));
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "pypi.org"));
    assert_null(strstr(mw_dynbuf_cstr(&out), "10.1.0.0/16"));
    mw_dynbuf_free(&out);
    mw_control_mesh_free(m);
}

static void test_digest(void **state)
{
    const char *dir = mesh_dir();
    struct mw_control_mesh *a = NULL, *b = NULL, *c = NULL;
    mw_assert_ok(mw_control_mesh_load(dir, NULL, &a));
    mw_assert_ok(mw_control_mesh_load(dir, NULL, &b));
    uint8_t da[32], db[32], dc[32];
    mw_control_mesh_digest(a, da);
    mw_control_mesh_digest(b, db);
    assert_memory_equal(da, db, 32);
    /* The same documents written another way: the same mesh. */
    write_file(dir, "40-registry.yaml",
               "{apiVersion: meshward.io/v1alpha1, kind: MeshService, metadata: {name: ratings, "
               "namespace: bookinfo}, spec: {host: ratings.bookinfo, port: 9080, endpoints: "
               "['10.0.0.7:15006', '[fd00::7]:15006'], spiffeId: "
               "'spiffe://cluster.local/ns/bookinfo/sa/ratings', protocol: http}}\n");
    mw_assert_ok(mw_control_mesh_load(dir, NULL, &c));
    mw_control_mesh_digest(c, dc);
    assert_memory_equal(da, dc, 32);
    mw_control_mesh_free(c);
    /* A real change: another digest. */
    write_file(dir, "40-registry.yaml", registry);
    write_file(dir, "60-more.yaml",
               "apiVersion: meshward.io/v1alpha1\nkind: EgressPolicy\nmetadata: {name: x, "
               "namespace: foo}\nspec: {egress: [{host: example.org, ports: [443]}]}\n");
    mw_assert_ok(mw_control_mesh_load(dir, NULL, &c));
    mw_control_mesh_digest(c, dc);
    assert_memory_not_equal(da, dc, 32);
    mw_control_mesh_free(a);
    mw_control_mesh_free(b);
    mw_control_mesh_free(c);
}

static void refused(const char *file_text, const char *want)
{
    const char *dir = mesh_dir();
    write_file(dir, "99-bad.yaml", file_text);
    struct mw_control_mesh *m = NULL;
    mw_assert_fails(mw_control_mesh_load(dir, NULL, &m), MW_E_INPUT);
    assert_null(m);
    if (strstr(mw_error_msg(), want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", mw_error_msg(), want);
}

static void test_refusals(void **state)
{
    refused("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            "99-bad.yaml:1:1: not a kind the control plane distributes");
    refused("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
            "metadata: {name: x, namespace: foo}\nspec: {action: MAYBE}\n",
            "99-bad.yaml:4:");
    refused("apiVersion: meshward.io/v1alpha1\nkind: MeshService\nmetadata: {name: x}\n"
            "spec: {host: x, port: 80, endpoints: [\"1.2.3.4:80\"], spiffeId: \"spiffe://TD/x\"}\n",
            "spiffeId must be a SPIFFE ID");
    refused("apiVersion: meshward.io/v1alpha1\nkind: MeshService\nmetadata: {name: x}\n"
            "spec: {host: x, port: 80, endpoints: [\"1.2.3.4\"], spiffeId: \"spiffe://td/x\"}\n",
            "numeric \"address:port\"");
    refused("apiVersion: meshward.io/v1alpha1\nkind: MeshService\nmetadata: {name: x}\n"
            "spec: {host: x, port: 0, endpoints: [\"1.2.3.4:1\"], spiffeId: \"spiffe://td/x\"}\n",
            "port must be a number in 1..65535");
    refused("apiVersion: meshward.io/v1alpha1\nkind: MeshService\nmetadata: {name: x}\n"
            "spec: {host: x, port: 1, endpoints: [\"1.2.3.4:1\"], spiffeId: \"spiffe://td/x\", "
            "extra: 1}\n",
            "unknown key in MeshService spec");
    refused("apiVersion: meshward.io/v1alpha1\nkind: MeshService\nmetadata: {name: x}\n"
            "spec: {host: x, port: 1, endpoints: [\"1.2.3.4:1\"], spiffeId: \"spiffe://td/x\", "
            "protocol: udp}\n",
            "spec.protocol must be http or tcp");
    refused("apiVersion: meshward.io/v1alpha1\nkind: MeshService\nmetadata: {name: x}\n"
            "spec: {host: x, port: 1, endpoints: [\"1.2.3.4:1\"], spiffeId: \"spiffe://td/x\", "
            "protocol: [http]}\n",
            "spec.protocol must be http or tcp");
    refused("apiVersion: meshward.io/v1alpha1\nkind: EgressPolicy\nmetadata: {name: x}\n"
            "spec: {egress: {host: x}}\n",
            "EgressPolicy spec must be {egress: [...]}");
    refused("- just\n- a list\n", "a document must be a mapping");
}

/* Istio's own invalid file: the first invalid document stops the load. */
static void test_istio_invalid_file(void **state)
{
    const char *dir = mw_test_tmpdir();
    copy_testdata(dir, "istio/validation/authz-invalid.yaml", "authz.yaml");
    struct mw_control_mesh *m = NULL;
    mw_assert_fails(mw_control_mesh_load(dir, NULL, &m), MW_E_INPUT);
    assert_non_null(strstr(mw_error_msg(), "authz.yaml:"));
}

static void test_missing_dir(void **state)
{
    struct mw_control_mesh *m = NULL;
    mw_assert_fails(mw_control_mesh_load("/nonexistent/mesh", NULL, &m), MW_E_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_istio_files),
        cmocka_unit_test(test_render_per_namespace),
        cmocka_unit_test(test_root_namespace_option),
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_istio_invalid_file),
        cmocka_unit_test(test_missing_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
