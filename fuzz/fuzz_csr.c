/*
 * CSRs arrive from workloads over POST /v1/svid. Each input is handed to
 * mw_ca_issue as the CSR of a fixed identity, against a CA made once in a
 * temporary directory at a fixed time. Nothing may crash or leak, and an
 * issued SVID must validate against the CA's bundle and carry the caller's
 * identity, never a name from the CSR.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <meshward/ca.h>
#include <meshward/spiffe.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0 1790000000LL

static struct mw_ca *ca;
static struct mw_bundle *bundle;

static void setup(void)
{
    char tmpl[] = "/tmp/fuzz_csr.XXXXXX";
    char *dir = mkdtemp(tmpl);
    char ca_dir[64], config[96];
    if (dir == NULL)
        abort();
    snprintf(ca_dir, sizeof(ca_dir), "%s/ca", dir);
    snprintf(config, sizeof(config), "%s/ca.yaml", ca_dir);
    struct mw_clock clk = mw_clock_fixed(T0);
    struct mw_ca_init_opts o = {.trust_domain = "fuzz.example", .dir = ca_dir, .clock = &clk};
    struct mw_dynbuf jwks;
    mw_dynbuf_init(&jwks, 1 << 20);
    if (mw_failed(mw_ca_init(&o)) || mw_failed(mw_ca_open(config, NULL, NULL, &ca)) ||
        mw_failed(mw_ca_bundle_jwks(ca, &jwks)) ||
        mw_failed(mw_bundle_parse(mw_dynbuf_slice(&jwks), MW_BUNDLE_FMT_SPIFFE, "fuzz.example",
                                  &bundle, NULL))) {
        fprintf(stderr, "fuzz_csr setup: %s\n", mw_error_msg());
        abort();
    }
    mw_dynbuf_free(&jwks);
    /* Everything is in memory now; leave nothing behind in /tmp. */
    static const char *const files[] = {
        "ca.yaml",    "root.pem",        "root.key", "intermediate-1.pem", "intermediate-1.key",
        "bundle.pem", "bundle.jwks.json"};
    char path[128];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", ca_dir, files[i]);
        unlink(path);
    }
    rmdir(ca_dir);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ca == NULL)
        setup();
    struct mw_clock clk = mw_clock_fixed(T0 + 60);
    struct mw_ca_svid s;
    mw_ca_svid_init(&s);
    if (mw_ok(mw_ca_issue(ca, mw_slice_make(data, size), "spiffe://fuzz.example/w", 0, NULL, &clk,
                          &s))) {
        struct mw_x509svid *svid = NULL;
        if (mw_failed(mw_x509svid_parse_der(mw_dynbuf_slice(&s.chain_der), mw_slice_make(NULL, 0),
                                            &svid)) ||
            strcmp(mw_x509svid_id(svid)->path, "/w") != 0 ||
            mw_failed(mw_x509svid_verify(svid, bundle, &clk)))
            abort();
        mw_x509svid_free(svid);
    }
    mw_ca_svid_free(&s);
    return 0;
}
