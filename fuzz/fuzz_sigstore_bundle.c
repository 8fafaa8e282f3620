/*
 * Sigstore bundles arrive from registries and build systems we do not trust.
 * Whatever the bytes: no crash, no leak, and a parsed bundle reports a known
 * version and exactly one kind of content. Parsed bundles are also run
 * through verification against an empty trusted root, which must refuse
 * them (nothing can verify without a trusted log) after exercising the
 * timestamp and entry decoding.
 */
#include <stdlib.h>

#include <meshward/verify.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char empty_root[] =
    "{\"mediaType\":\"application/vnd.dev.sigstore.trustedroot+json;version=0.1\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mw_trust_root *tr;
    if (tr == NULL && mw_failed(mw_trust_root_load(mw_slice_cstr(empty_root), "empty", &tr)))
        abort();
    struct mw_sigstore_bundle *b;
    if (mw_failed(mw_sigstore_bundle_parse(mw_slice_make(data, size), "fuzz", &b))) {
        if (b != NULL)
            abort();
        return 0;
    }
    int v = mw_sigstore_bundle_version(b);
    enum mw_bundle_content c = mw_sigstore_bundle_content(b);
    if (v < 1 || v > 3 || (c != MW_CONTENT_MESSAGE_SIGNATURE && c != MW_CONTENT_DSSE))
        abort();
    const char *pt;
    mw_slice payload = mw_sigstore_bundle_payload(b, &pt);
    if (c == MW_CONTENT_MESSAGE_SIGNATURE && payload.n != 0)
        abort();
    struct mw_artifact a;
    mw_artifact_from_bytes(mw_slice_make(data, size), &a);
    struct mw_verify_policy p = {.identity = "x", .issuer = "y"};
    struct mw_verify_result res;
    if (mw_ok(mw_verify_bundle(tr, b, &a, &p, NULL, &res)))
        abort();
    mw_sigstore_bundle_free(b);
    return 0;
}
