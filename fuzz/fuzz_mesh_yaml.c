/*
 * meshward's own YAML kinds that no other harness reaches: WorkloadRegistration
 * (the CA's registrations), IssuanceMonitorPolicy (the issuance monitor) and
 * ImagePolicy (the verifier). They arrive from GitOps repositories and config
 * maps, so a hostile file must end in a verdict, never a crash or a leak; an
 * accepted file must survive every accessor.
 */
#include <stdlib.h>

#include <meshward/ca_auth.h>
#include <meshward/verify.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw_slice in = mw_slice_make(data, size);

    struct mw_ca_registrations *regs = NULL;
    if (mw_ok(mw_ca_registrations_parse(in, "fuzz.yaml", &regs))) {
        for (size_t i = 0; i < mw_ca_registrations_count(regs); i++) {
            const struct mw_ca_registration *r = mw_ca_registrations_at(regs, i);
            if (r == NULL || (r->n_images > 0 && r->images == NULL))
                abort();
        }
        mw_ca_registrations_free(regs);
    }

    struct mw_ca_monitor_policy *mp = NULL;
    if (mw_ok(mw_ca_monitor_policy_parse(in, "fuzz.yaml", &mp)))
        mw_ca_monitor_policy_free(mp);

    struct mw_image_policy *ip = NULL;
    if (mw_ok(mw_image_policy_load(in, "fuzz.yaml", &ip))) {
        struct mw_dynbuf b;
        mw_dynbuf_init(&b, 1 << 20);
        uint8_t digest[32];
        mw_image_policy_digest(ip, digest);
        if (mw_failed(mw_image_policy_explain(ip, &b)))
            abort();
        (void)mw_image_policy_sidecar_pinned(ip, "prod", "sha256:00");
        mw_dynbuf_free(&b);
        mw_image_policy_free(ip);
    }
    return 0;
}
