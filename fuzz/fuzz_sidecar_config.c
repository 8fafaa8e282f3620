/*
 * The SidecarConfig loader reads a file an operator (or a compromised
 * control plane) writes. Whatever the bytes: no crash, no leak, an error
 * message on refusal, and an accepted configuration whose lookups are safe.
 */
#include <stdlib.h>
#include <string.h>

#include "sidecar/sidecar_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (64u << 10))
        return 0;
    struct mw_sidecar_config *c = NULL;
    /* base_dir NULL: relative paths stay relative, no egress file is read from the fuzz dir. */
    mw_result r = mw_sidecar_config_parse(mw_slice_make(data, size), "fuzz.yaml", NULL, &c);
    if (mw_failed(r)) {
        if (c != NULL || mw_error_msg()[0] == 0)
            abort();
        return 0;
    }
    if (c->ns == NULL || c->sa == NULL || c->td == NULL ||
        (c->id_mode == SC_ID_STATIC && c->cert_file == NULL) || c->n_bundles == 0)
        abort();
    struct sc_addr a;
    if (mw_ok(sc_addr_parse("127.0.0.1", 80, &a))) {
        (void)sc_registry_find(c, "x", &a.ss, 80);
        (void)sc_egress_allowed(c, "a.example", &a.ss, 443, NULL);
    }
    for (size_t i = 0; i < c->n_ports; i++)
        if (c->ports[i].port == 0 || c->ports[i].app_port == 0)
            abort();
    for (size_t i = 0; i < c->n_services; i++)
        if (c->services[i].n_endpoints == 0)
            abort();
    mw_sidecar_config_free(c);
    return 0;
}
