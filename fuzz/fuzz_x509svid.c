/*
 * X.509-SVIDs come from peers during mTLS and from files. The input is tried
 * as PEM (certificates and key in one blob) and as DER; whatever parses is
 * verified against a fixed bundle at a fixed time. Nothing may crash or leak,
 * and an accepted SVID must hold a SPIFFE ID with a path (X509-SVID §3.1).
 */
#include <stdlib.h>
#include <string.h>

#include <meshward/spiffe.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The CA of the seed corpus (P-256, CN=fuzz root, spiffe://fuzz.example), made once with openssl.
 */
static const char bundle_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBfTCCASOgAwIBAgIBATAKBggqhkjOPQQDAjAUMRIwEAYDVQQDDAlmdXp6IHJv\n"
    "b3QwIBcNMjYxMTI0MTIyNDU3WhgPMjEwMDEwMjcxMjI0NTdaMBQxEjAQBgNVBAMM\n"
    "CWZ1enogcm9vdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABKxJoHdtp1Lga/nY\n"
    "9LegFut4JJBIPHRsO/zFQnO7EJkKvkAP73HXUuDmIVjTHT9H6TpyNPfkJp2AUWNN\n"
    "TNdxcZWjZDBiMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMB0GA1Ud\n"
    "DgQWBBT1KjYIRp2+Dg7qJCvLEVGO6kaBaDAgBgNVHREEGTAXhhVzcGlmZmU6Ly9m\n"
    "dXp6LmV4YW1wbGUwCgYIKoZIzj0EAwIDSAAwRQIhAOUtvUVdvazvSWs0/DOvmgc1\n"
    "nF/Nt7XynEUaYoNFr4nWAiBXRmZ4fQZLXkaw3u7m63fQXODKIuXK/AwLTMIIkiKB\n"
    "sg==\n"
    "-----END CERTIFICATE-----\n";

static struct mw_bundle *bundle;

static void check(struct mw_x509svid *svid)
{
    const struct mw_spiffe_id *id = mw_x509svid_id(svid);
    if (id->td[0] == '\0' || id->path[0] != '/' || mw_x509svid_chain_len(svid) == 0)
        abort();
    struct mw_clock at = mw_clock_fixed(1893456000); /* 2030-01-01, inside the seeds' validity */
    (void)mw_x509svid_verify(svid, bundle, &at);
    struct mw_cert_info info;
    for (size_t i = 0; i < mw_x509svid_chain_len(svid); i++) {
        if (mw_failed(mw_x509svid_cert_info(svid, i, &info)))
            abort();
    }
    mw_x509svid_free(svid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (bundle == NULL) {
        if (mw_failed(mw_bundle_parse(mw_slice_make(bundle_pem, sizeof(bundle_pem) - 1),
                                      MW_BUNDLE_FMT_PEM, NULL, &bundle, NULL)))
            abort();
    }
    mw_slice in = mw_slice_make(data, size);
    struct mw_x509svid *svid = NULL;
    if (mw_ok(mw_x509svid_parse_pem(in, mw_slice_make(NULL, 0), &svid)))
        check(svid);
    svid = NULL;
    if (mw_ok(mw_x509svid_parse_pem(in, in, &svid)))
        check(svid);
    svid = NULL;
    if (mw_ok(mw_x509svid_parse_der(in, mw_slice_make(NULL, 0), &svid)))
        check(svid);
    return 0;
}
