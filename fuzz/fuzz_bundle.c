/*
 * Bundles are fetched from other trust domains' endpoints: attacker-reachable
 * input. Parse as SPIFFE JWKS, plain JWKS and PEM; whatever parses must write
 * back as a SPIFFE JWKS that parses to the same authorities, and writing that
 * again must give the same bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <meshward/spiffe.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(struct mw_bundle *b)
{
    struct mw_dynbuf w1, w2;
    mw_dynbuf_init(&w1, 16u << 20);
    mw_dynbuf_init(&w2, 16u << 20);
    struct mw_bundle *b2 = NULL;
    if (mw_failed(mw_bundle_write_jwks(b, &w1))) {
        /* Only key types we cannot express as a JWK may fail to write. */
        if (mw_error_code() != MW_E_UNSUPPORTED)
            abort();
        goto out;
    }
    if (mw_failed(mw_bundle_parse(mw_dynbuf_slice(&w1), MW_BUNDLE_FMT_SPIFFE, "fuzz.example", &b2,
                                  NULL))) {
        fprintf(stderr, "written bundle does not parse: %s\n%s\n", mw_error_msg(),
                mw_dynbuf_cstr(&w1));
        abort();
    }
    if (mw_bundle_x509_count(b2) != mw_bundle_x509_count(b) ||
        mw_bundle_jwt_count(b2) != mw_bundle_jwt_count(b))
        abort();
    uint64_t s1 = 0, s2 = 0;
    if (mw_bundle_sequence(b, &s1) != mw_bundle_sequence(b2, &s2) || s1 != s2)
        abort();
    if (mw_failed(mw_bundle_write_jwks(b2, &w2)) ||
        !mw_slice_eq(mw_dynbuf_slice(&w1), mw_dynbuf_slice(&w2)))
        abort();
out:
    mw_bundle_free(b2);
    mw_dynbuf_free(&w1);
    mw_dynbuf_free(&w2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum mw_bundle_format fmts[] = {MW_BUNDLE_FMT_AUTO, MW_BUNDLE_FMT_JWKS_JWT,
                                                 MW_BUNDLE_FMT_PEM};
    for (size_t i = 0; i < MW_ARRAY_LEN(fmts); i++) {
        struct mw_bundle *b = NULL;
        if (mw_ok(mw_bundle_parse(mw_slice_make(data, size), fmts[i], "fuzz.example", &b, NULL))) {
            roundtrip(b);
            mw_bundle_free(b);
        }
    }
    return 0;
}
