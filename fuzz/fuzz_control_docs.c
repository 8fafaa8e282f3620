/*
 * What a sidecar in control mode applies from GET /v1/config: a YAML stream
 * of MeshService, EgressPolicy and policy documents from the control plane
 * (authenticated, but a compromised control plane is an attacker). Whatever
 * the bytes: no crash, no leak, an error on refusal; when accepted, every
 * registry entry is complete and the policies compile.
 */
#include <stdlib.h>
#include <string.h>

#include "sidecar/sidecar_internal.h"

static const char base[] = "apiVersion: meshward.io/v1alpha1\n"
                           "kind: SidecarConfig\n"
                           "spec:\n"
                           "  workload: {namespace: foo, serviceAccount: app, labels: {app: x}}\n"
                           "  identity:\n"
                           "    mode: ca\n"
                           "    caURL: https://127.0.0.1:1\n"
                           "    credentialFile: /nonexistent/token\n"
                           "    credentialKind: k8s-sat\n"
                           "    bundles: [{trustDomain: cluster.local, file: /nonexistent/b.pem}]\n"
                           "  control: {url: \"https://127.0.0.1:1\"}\n"
                           "  inbound: {port: 15006, ports: [{port: 80, protocol: http}]}\n"
                           "  outbound:\n"
                           "    port: 15001\n"
                           "    services: [{name: a.foo, port: 80, localPort: 18080}]\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (256u << 10))
        return 0;
    struct mw_sidecar_config *c = NULL;
    if (mw_failed(mw_sidecar_config_parse(mw_slice_cstr(base), "base.yaml", NULL, &c)))
        abort();
    mw_result r = sc_config_apply_mesh(c, mw_slice_make(data, size));
    if (mw_failed(r)) {
        if (mw_error_msg()[0] == 0)
            abort();
        mw_sidecar_config_free(c);
        return 0;
    }
    for (size_t i = 0; i < c->n_services; i++)
        if (c->services[i].n_endpoints == 0 || c->services[i].spiffe_id == NULL ||
            c->services[i].name == NULL)
            abort();
    struct sc_addr a;
    if (mw_ok(sc_addr_parse("127.0.0.1", 80, &a))) {
        (void)sc_registry_find(c, "a.foo", &a.ss, 80);
        (void)sc_egress_allowed(c, "a.example", &a.ss, 443, NULL);
    }
    struct mw_policy_set *set = NULL;
    struct mw_policy_engine *engine = NULL;
    if (mw_ok(sc_policies_load(c, &set, &engine))) {
        mw_policy_engine_free(engine);
        mw_policy_set_free(set);
    } else if (mw_error_msg()[0] == 0) {
        abort();
    }
    mw_sidecar_config_free(c);
    return 0;
}
