/* SidecarConfig loading: accepted shapes, every refusal with file:line, lookups. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <meshward/ca_auth.h>

#include "sidecar/sidecar_internal.h"
#include "testutil.h"

#define HEAD                                                                  \
    "apiVersion: meshward.io/v1alpha1\n"                                      \
    "kind: SidecarConfig\n"                                                   \
    "metadata: {name: web}\n"                                                 \
    "spec:\n"                                                                 \
    "  workload: {namespace: foo, serviceAccount: web, labels: {app: web}}\n" \
    "  identity:\n"                                                           \
    "    certificate: svid.pem\n"                                             \
    "    key: svid.key\n"                                                     \
    "    bundles: [{trustDomain: cluster.local, file: /etc/b.pem}]\n"

#define CA_HEAD                                           \
    "apiVersion: meshward.io/v1alpha1\n"                  \
    "kind: SidecarConfig\n"                               \
    "spec:\n"                                             \
    "  workload: {namespace: foo, serviceAccount: web}\n" \
    "  outbound: {port: 15001}\n"                         \
    "  identity:\n"                                       \
    "    mode: ca\n"
#define CA_GOOD                                            \
    CA_HEAD "    caURL: https://127.0.0.1:8443\n"          \
            "    credentialFile: /var/run/secrets/token\n" \
            "    credentialKind: k8s-sat\n"
#define CA_BUNDLE "    bundles: [{trustDomain: cluster.local, file: /etc/b.pem}]\n"

/* CA mode with every field. */
static void test_ca_mode(void **state)
{
    static const char text[] =
        CA_HEAD "    caURL: https://127.0.0.1:8443\n"
                "    credentialFile: tok\n"
                "    credentialKind: join-token\n"
                "    imageDigest: sha256:"
                "1111111111111111111111111111111111111111111111111111111111111111\n"
                "    ttl: 30s\n"
                "    rotation: {fraction: 0.25, jitter: 0}\n"
                "    bundleRefresh: 5s\n"
                "    bundles:\n"
                "    - {trustDomain: cluster.local, file: b.pem}\n"
                "    - {trustDomain: other.org, file: o.jwks}\n";
    struct mw_sidecar_config *c = NULL;
    mw_result r = mw_sidecar_config_parse(mw_slice_cstr(text), "sc.yaml", "/cfg", &c);
    if (mw_failed(r))
        fail_msg("%s", mw_error_msg());
    assert_int_equal(c->id_mode, SC_ID_CA);
    assert_string_equal(c->ca_url, "https://127.0.0.1:8443");
    assert_string_equal(c->credential_file, "/cfg/tok");
    assert_int_equal(c->credential_kind, MW_CA_CRED_JOIN);
    assert_non_null(strstr(c->image_digest, "sha256:1111"));
    assert_int_equal(c->svid_ttl, 30);
    assert_true(c->rotation_fraction == 0.25);
    assert_true(c->rotation_jitter == 0);
    assert_true(c->bundle_refresh == 5);
    assert_null(c->cert_file);
    assert_int_equal(c->n_bundles, 2);
    mw_sidecar_config_free(c);

    /* The defaults: half the lifetime, 10 % jitter, bundle every 5 minutes, the CA's TTL. */
    r = mw_sidecar_config_parse(mw_slice_cstr(CA_GOOD CA_BUNDLE), "sc.yaml", "/cfg", &c);
    if (mw_failed(r))
        fail_msg("%s", mw_error_msg());
    assert_int_equal(c->credential_kind, MW_CA_CRED_K8S);
    assert_true(c->rotation_fraction == 0.5);
    assert_true(c->rotation_jitter == 0.1);
    assert_true(c->bundle_refresh == 300);
    assert_int_equal(c->svid_ttl, 0);
    assert_null(c->image_digest);
    mw_sidecar_config_free(c);
}

static const char good[] =
    HEAD "  inbound:\n"
         "    port: 15006\n"
         "    ports:\n"
         "    - {port: 8080, protocol: http}\n"
         "    - {port: 9000, protocol: tcp, listenPort: 19000, appPort: 9001}\n"
         "  outbound:\n"
         "    port: 15001\n"
         "    services:\n"
         "    - name: db.foo\n"
         "      port: 5432\n"
         "      endpoints: [\"10.0.0.5:15006\", \"[::1]:15006\"]\n"
         "      spiffeId: spiffe://cluster.local/ns/foo/sa/db\n"
         "      protocol: http\n"
         "    - {name: cache.foo, port: 6379, endpoints: [\"10.0.0.6:15006\"],\n"
         "       spiffeId: spiffe://cluster.local/ns/foo/sa/cache}\n"
         "  egress:\n"
         "  - {host: api.example.com, ports: [443]}\n"
         "  - {host: \"*.example.org\", ports: [443, 8443]}\n"
         "  - {cidr: 192.168.10.0/24, ports: [53]}\n"
         "  policies: [p.yaml]\n"
         "  mesh: {pathNormalization: MERGE_SLASHES}\n"
         "  admin: {port: 15000}\n"
         "  accessLog: \"-\"\n"
         "  timeouts: {head: 5s, idle: 2m}\n";

static void test_good(void **state)
{
    struct mw_sidecar_config *c;
    mw_assert_ok(mw_sidecar_config_parse(mw_slice_cstr(good), "sc.yaml", "/cfg", &c));
    assert_string_equal(c->ns, "foo");
    assert_string_equal(c->td, "cluster.local");
    assert_string_equal(c->name, "web");
    assert_int_equal(c->n_labels, 1);
    assert_string_equal(c->cert_file, "/cfg/svid.pem");
    assert_string_equal(c->bundles[0].file, "/etc/b.pem");
    assert_int_equal(c->n_ports, 2);
    assert_true(c->ports[0].http);
    assert_int_equal(c->ports[0].app_port, 8080);
    assert_int_equal(c->ports[1].app_port, 9001);
    assert_int_equal(c->ports[1].listen_port, 19000);
    assert_int_equal(c->n_services, 2);
    assert_int_equal(c->services[0].n_endpoints, 2);
    assert_true(c->services[0].http);
    assert_false(c->services[1].http); /* tcp unless said otherwise */
    assert_int_equal(c->n_egress, 3);
    assert_string_equal(c->policy_files[0], "/cfg/p.yaml");
    assert_int_equal(c->path_norm, MW_POLICY_PATH_MERGE_SLASHES);
    assert_int_equal(c->admin_port, 15000);
    assert_string_equal(c->access_log, "-");
    assert_true(c->head_timeout == 5 && c->idle_timeout == 120);
    assert_true(c->pool_idle_timeout == 30);
    assert_string_equal(c->app_address, "127.0.0.1");

    /* Lookups. */
    struct sc_addr a;
    mw_assert_ok(sc_addr_parse("10.0.0.5", 15006, &a));
    assert_ptr_equal(sc_registry_find(c, NULL, &a.ss, 15006), &c->services[0]);
    assert_ptr_equal(sc_registry_find(c, "DB.foo", NULL, 5432), &c->services[0]);
    assert_null(sc_registry_find(c, "db.foo", NULL, 5433));
    mw_assert_ok(sc_addr_parse("10.0.0.5", 15007, &a));
    assert_null(sc_registry_find(c, NULL, &a.ss, 15007));

    const char *where = NULL;
    assert_true(sc_egress_allowed(c, "api.example.com", NULL, 443, &where));
    assert_non_null(strstr(where, "sc.yaml:"));
    assert_false(sc_egress_allowed(c, "api.example.com", NULL, 80, NULL));
    assert_false(sc_egress_allowed(c, "evil-api.example.com", NULL, 443, NULL));
    assert_true(sc_egress_allowed(c, "x.example.org", NULL, 8443, NULL));
    assert_false(sc_egress_allowed(c, "example.org", NULL, 443, NULL));
    mw_assert_ok(sc_addr_parse("192.168.10.77", 53, &a));
    assert_true(sc_egress_allowed(c, NULL, &a.ss, 53, NULL));
    mw_assert_ok(sc_addr_parse("192.168.11.1", 53, &a));
    assert_false(sc_egress_allowed(c, NULL, &a.ss, 53, NULL));
    mw_sidecar_config_free(c);
}

struct bad_case {
    const char *name;
    const char *text;
    const char *want; /* substring of the error */
};

static const struct bad_case bad_cases[] = {
    {"wrong kind", "apiVersion: meshward.io/v1alpha1\nkind: Sidecar\nspec: {}\n", "kind must be"},
    {"wrong api", "apiVersion: v1\nkind: SidecarConfig\nspec: {}\n", "apiVersion must be"},
    {"no spec", "apiVersion: meshward.io/v1alpha1\nkind: SidecarConfig\n", "spec"},
    {"two documents", HEAD "  outbound: {port: 1}\n---\n" HEAD, "exactly one"},
    {"unknown top key", HEAD "  outbound: {port: 1}\n  inbund: {}\n",
     "sc.yaml:11:3: unknown key \"inbund\""},
    {"unknown port key", HEAD "  inbound:\n    ports: [{port: 1, protocol: http, tls: x}]\n",
     "unknown key \"tls\""},
    {"bad protocol", HEAD "  inbound:\n    ports: [{port: 1, protocol: grpc}]\n",
     "want http or tcp"},
    {"port zero", HEAD "  inbound:\n    port: 0\n", "1..65535"},
    {"port too big", HEAD "  inbound:\n    port: 65536\n", "1..65535"},
    {"port as string", HEAD "  inbound:\n    port: \"80\"\n", "1..65535"},
    {"duplicate port",
     HEAD "  inbound:\n    port: 1\n    ports: [{port: 80, protocol: http}, {port: 80, protocol: "
          "tcp}]\n",
     "listed twice"},
    {"app not loopback", HEAD "  inbound: {port: 1, appAddress: 10.0.0.1}\n", "loopback"},
    {"admin not loopback", HEAD "  outbound: {port: 1}\n  admin: {address: 0.0.0.0, port: 2}\n",
     "loopback"},
    {"address a name", HEAD "  inbound: {port: 1, address: localhost}\n", "numeric"},
    {"nothing to listen on", HEAD, "nothing to listen on"},
    {"ca mode with a certificate",
     CA_HEAD
     "    caURL: https://127.0.0.1:8443\n    credentialFile: t\n    credentialKind: k8s-sat\n"
     "    certificate: a\n" CA_BUNDLE,
     "for identity mode static"},
    {"ca mode without caURL",
     CA_HEAD "    credentialFile: t\n    credentialKind: k8s-sat\n" CA_BUNDLE, "caURL"},
    {"ca mode plain http",
     CA_HEAD "    caURL: http://127.0.0.1:8443\n    credentialFile: t\n"
             "    credentialKind: k8s-sat\n" CA_BUNDLE,
     "https://"},
    {"ca mode without credentialFile",
     CA_HEAD "    caURL: https://127.0.0.1:1\n    credentialKind: k8s-sat\n" CA_BUNDLE,
     "credentialFile"},
    {"ca mode without credentialKind",
     CA_HEAD "    caURL: https://127.0.0.1:1\n    credentialFile: t\n" CA_BUNDLE, "credentialKind"},
    {"ca mode bad credentialKind",
     CA_HEAD "    caURL: https://127.0.0.1:1\n    credentialFile: t\n    credentialKind: "
             "password\n" CA_BUNDLE,
     "join-token or k8s-sat"},
    {"ca mode bad imageDigest", CA_GOOD "    imageDigest: sha256:abc\n" CA_BUNDLE, "imageDigest"},
    {"ca mode ttl zero", CA_GOOD "    ttl: 0s\n" CA_BUNDLE, "ttl"},
    {"ca mode ttl too long", CA_GOOD "    ttl: 31d\n" CA_BUNDLE, "ttl"},
    {"ca mode fraction too big", CA_GOOD "    rotation: {fraction: 1.5}\n" CA_BUNDLE, "fraction"},
    {"ca mode fraction not a number", CA_GOOD "    rotation: {fraction: half}\n" CA_BUNDLE,
     "fraction"},
    {"ca mode fraction negative", CA_GOOD "    rotation: {fraction: -0.5}\n" CA_BUNDLE, "fraction"},
    {"ca mode jitter too big", CA_GOOD "    rotation: {jitter: 0.9}\n" CA_BUNDLE, "jitter"},
    {"ca mode rotation unknown key", CA_GOOD "    rotation: {every: 1h}\n" CA_BUNDLE,
     "unknown key"},
    {"ca mode rotation not a map", CA_GOOD "    rotation: 0.5\n" CA_BUNDLE, "rotation"},
    {"ca mode bad bundleRefresh", CA_GOOD "    bundleRefresh: never\n" CA_BUNDLE, "duration"},
    {"ca mode no bundle for own td",
     CA_GOOD "    bundles: [{trustDomain: other.org, file: /etc/b.pem}]\n", "pins the CA"},
    {"static mode with caURL",
     "apiVersion: meshward.io/v1alpha1\nkind: SidecarConfig\nspec:\n"
     "  workload: {namespace: foo, serviceAccount: web}\n"
     "  identity: {caURL: https://ca, certificate: a, key: b}\n",
     "for identity mode ca"},
    {"unknown identity mode",
     "apiVersion: meshward.io/v1alpha1\nkind: SidecarConfig\nspec:\n"
     "  workload: {namespace: foo, serviceAccount: web}\n"
     "  identity: {mode: spire, bundles: [{trustDomain: cluster.local, file: x}]}\n",
     "want static or ca"},
    {"no bundles",
     "apiVersion: meshward.io/v1alpha1\nkind: SidecarConfig\nspec:\n"
     "  workload: {namespace: foo, serviceAccount: web}\n"
     "  identity: {certificate: a, key: b}\n",
     "bundle"},
    {"duplicate bundle td",
     "apiVersion: meshward.io/v1alpha1\nkind: SidecarConfig\nspec:\n"
     "  workload: {namespace: foo, serviceAccount: web}\n"
     "  identity: {certificate: a, key: b, bundles: [{trustDomain: a.b, file: x}, {trustDomain: "
     "a.b, file: y}]}\n",
     "second bundle"},
    {"bad namespace",
     "apiVersion: meshward.io/v1alpha1\nkind: SidecarConfig\nspec:\n"
     "  workload: {namespace: \"a/b\", serviceAccount: web}\n"
     "  identity: {certificate: a, key: b, bundles: [{trustDomain: a.b, file: x}]}\n",
     "SPIFFE ID"},
    {"bad trust domain",
     "apiVersion: meshward.io/v1alpha1\nkind: SidecarConfig\nspec:\n"
     "  workload: {namespace: foo, serviceAccount: web, trustDomain: \"Bad TD\"}\n"
     "  identity: {certificate: a, key: b, bundles: [{trustDomain: a.b, file: x}]}\n",
     "trust domain"},
    {"missing serviceAccount",
     "apiVersion: meshward.io/v1alpha1\nkind: SidecarConfig\nspec:\n"
     "  workload: {namespace: foo}\n",
     "serviceAccount"},
    {"service bad spiffe id",
     HEAD "  outbound:\n    services: [{name: a, port: 1, endpoints: [\"127.0.0.1:1\"], spiffeId: "
          "\"spiffe://x/../y\"}]\n",
     "spiffeId"},
    {"service no endpoints",
     HEAD "  outbound:\n    services: [{name: a, port: 1, endpoints: [], spiffeId: "
          "\"spiffe://x/y\"}]\n",
     "endpoint"},
    {"service endpoint a name",
     HEAD "  outbound:\n    services: [{name: a, port: 1, endpoints: [\"db:5432\"], spiffeId: "
          "\"spiffe://x/y\"}]\n",
     "numeric"},
    {"service endpoint no port",
     HEAD "  outbound:\n    services: [{name: a, port: 1, endpoints: [\"10.0.0.1\"], spiffeId: "
          "\"spiffe://x/y\"}]\n",
     "address:port"},
    {"service bad protocol",
     HEAD "  outbound:\n    services: [{name: a, port: 1, endpoints: [\"127.0.0.1:1\"], spiffeId: "
          "\"spiffe://x/y\", protocol: udp}]\n",
     "want http or tcp"},
    {"service protocol not a string",
     HEAD "  outbound:\n    services: [{name: a, port: 1, endpoints: [\"127.0.0.1:1\"], spiffeId: "
          "\"spiffe://x/y\", protocol: [http]}]\n",
     "protocol"},
    {"bad poolIdle", HEAD "  outbound: {port: 1}\n  timeouts: {poolIdle: 0s}\n", "poolIdle"},
    /* Control mode (docs/sidecar.md "Control mode"). */
    {"control in static mode", HEAD "  outbound: {port: 1}\n  control: {url: \"https://c:1\"}\n",
     "needs identity mode ca"},
    {"control plain http", CA_GOOD CA_BUNDLE "  control: {url: \"http://c:1\"}\n", "https://"},
    {"control without url", CA_GOOD CA_BUNDLE "  control: {pollTimeout: 5s}\n", "url"},
    {"control not a map", CA_GOOD CA_BUNDLE "  control: https://c:1\n", "must be a map"},
    {"control unknown key", CA_GOOD CA_BUNDLE "  control: {url: \"https://c:1\", every: 1s}\n",
     "unknown key"},
    {"control pollTimeout too long",
     CA_GOOD CA_BUNDLE "  control: {url: \"https://c:1\", pollTimeout: 10m}\n", "1s..5m"},
    {"control and local policies",
     CA_GOOD CA_BUNDLE "  control: {url: \"https://c:1\"}\n  policies: [p.yaml]\n",
     "comes from the control plane"},
    {"control and local egress",
     CA_GOOD CA_BUNDLE "  control: {url: \"https://c:1\"}\n  egress: [{host: a.b, ports: [1]}]\n",
     "comes from the control plane"},
    {"egress host and cidr",
     HEAD "  outbound: {port: 1}\n  egress: [{host: a.b, cidr: 1.2.3.4/32, ports: [1]}]\n",
     "exactly one"},
    {"egress no ports", HEAD "  outbound: {port: 1}\n  egress: [{host: a.b}]\n", "ports"},
    {"egress bad cidr", HEAD "  outbound: {port: 1}\n  egress: [{cidr: 1.2.3.4/33, ports: [1]}]\n",
     "prefix"},
    {"egress bad host", HEAD "  outbound: {port: 1}\n  egress: [{host: \"A_B\", ports: [1]}]\n",
     "DNS name"},
    {"egress port 0", HEAD "  outbound: {port: 1}\n  egress: [{host: a.b, ports: [0]}]\n",
     "1..65535"},
    {"bad path normalisation", HEAD "  outbound: {port: 1}\n  mesh: {pathNormalization: LOOSE}\n",
     "pathNormalization"},
    {"bad duration", HEAD "  outbound: {port: 1}\n  timeouts: {head: forever}\n", "duration"},
    {"yaml alias", HEAD "  outbound: &o {port: 1}\n  inbound: *o\n", "alias"},
    {"missing egress file", HEAD "  outbound: {port: 1}\n  egressFiles: [/nonexistent/e.yaml]\n",
     "nonexistent"},
};

static void test_bad(void **state)
{
    for (size_t i = 0; i < MW_ARRAY_LEN(bad_cases); i++) {
        const struct bad_case *bc = &bad_cases[i];
        struct mw_sidecar_config *c = NULL;
        mw_result r = mw_sidecar_config_parse(mw_slice_cstr(bc->text), "sc.yaml", "/cfg", &c);
        if (mw_ok(r))
            fail_msg("%s: accepted", bc->name);
        assert_null(c);
        if (strstr(mw_error_msg(), bc->want) == NULL)
            fail_msg("%s: error \"%s\" lacks \"%s\"", bc->name, mw_error_msg(), bc->want);
        /* Semantic errors name the place (file:line:col). */
        if (strstr(bc->name, "documents") == NULL && strstr(bc->name, "missing egress") == NULL &&
            strstr(mw_error_msg(), "sc.yaml:") == NULL)
            fail_msg("%s: error \"%s\" does not say where", bc->name, mw_error_msg());
    }
}

static void test_egress_file(void **state)
{
    const char *dir = mw_test_tmpdir();
    char path[512], cfgpath[512];
    snprintf(path, sizeof(path), "%s/egress.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("apiVersion: meshward.io/v1alpha1\nkind: EgressPolicy\nmetadata: {name: e}\n"
          "spec:\n  egress:\n  - {host: pypi.org, ports: [443]}\n---\n"
          "apiVersion: meshward.io/v1alpha1\nkind: EgressPolicy\nmetadata: {name: f}\n"
          "spec:\n  egress:\n  - {cidr: \"10.0.0.0/8\", ports: [80]}\n",
          f);
    fclose(f);
    snprintf(cfgpath, sizeof(cfgpath), "%s/sc.yaml", dir);
    f = fopen(cfgpath, "w");
    assert_non_null(f);
    fputs(HEAD "  outbound: {port: 1}\n  egressFiles: [egress.yaml]\n"
               "  egress: [{host: a.example, ports: [1]}]\n",
          f);
    fclose(f);
    struct mw_sidecar_config *c;
    mw_assert_ok(mw_sidecar_config_load(cfgpath, &c));
    assert_int_equal(c->n_egress, 3);
    assert_true(sc_egress_allowed(c, "pypi.org", NULL, 443, NULL));
    struct sc_addr a;
    mw_assert_ok(sc_addr_parse("10.1.2.3", 80, &a));
    assert_true(sc_egress_allowed(c, NULL, &a.ss, 80, NULL));
    mw_sidecar_config_free(c);

    /* A wrong kind inside an egress file is refused with its place. */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("apiVersion: meshward.io/v1alpha1\nkind: Egress\nspec: {egress: []}\n", f);
    fclose(f);
    assert_true(mw_failed(mw_sidecar_config_load(cfgpath, &c)));
    assert_non_null(strstr(mw_error_msg(), "egress.yaml:1:"));
}

static void test_addr(void **state)
{
    struct sc_addr a;
    mw_assert_ok(sc_addr_parse("::1", 443, &a));
    assert_string_equal(a.text, "[::1]:443");
    mw_assert_ok(sc_addr_parse("127.0.0.1", 80, &a));
    assert_string_equal(a.text, "127.0.0.1:80");
    mw_assert_fails(sc_addr_parse("localhost", 80, &a), MW_E_INPUT);
    mw_assert_fails(sc_addr_parse("1.2.3", 80, &a), MW_E_INPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),    cmocka_unit_test(test_bad),
        cmocka_unit_test(test_ca_mode), cmocka_unit_test(test_egress_file),
        cmocka_unit_test(test_addr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
