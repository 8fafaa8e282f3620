/*
 * Base64, base64url, hex and number parsing take untrusted text (JWKS
 * members, JWT segments, digests, ports). Decoding must never read or write
 * out of bounds, and whatever decodes must encode back to the same text in
 * the strict alphabets (one accepted spelling per byte string).
 */
#include <stdlib.h>
#include <string.h>

#include <meshward/base.h>

static void check_b64(mw_slice in, enum mw_b64 alphabet)
{
    struct mw_dynbuf dec, enc;
    mw_dynbuf_init(&dec, 1 << 16);
    mw_dynbuf_init(&enc, 1 << 17);
    if (mw_ok(mw_b64_decode(in, alphabet, &dec))) {
        if (mw_failed(mw_b64_encode(mw_dynbuf_slice(&dec), alphabet, &enc)))
            abort();
        if ((alphabet == MW_B64_STD || alphabet == MW_B64_URL) &&
            !mw_slice_eq(mw_dynbuf_slice(&enc), in))
            abort();
    }
    mw_dynbuf_free(&dec);
    mw_dynbuf_free(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw_slice in = mw_slice_make(data, size);
    check_b64(in, MW_B64_STD);
    check_b64(in, MW_B64_STD_NOPAD);
    check_b64(in, MW_B64_URL);
    check_b64(in, MW_B64_URL_ANYPAD);

    struct mw_dynbuf dec, enc;
    mw_dynbuf_init(&dec, 1 << 16);
    mw_dynbuf_init(&enc, 1 << 17);
    if (mw_ok(mw_hex_decode(in, &dec))) {
        if (mw_failed(mw_hex_encode(mw_dynbuf_slice(&dec), &enc)) || enc.n != size)
            abort();
    }
    mw_dynbuf_free(&dec);
    mw_dynbuf_free(&enc);

    uint64_t u;
    int64_t i;
    if (mw_ok(mw_parse_u64(in, 0, UINT64_MAX, "fuzz", &u))) {
        char back[32];
        int n = snprintf(back, sizeof(back), "%llu", (unsigned long long)u);
        if (n < 0 || (size_t)n != size || memcmp(back, data, size) != 0)
            abort();
    }
    (void)mw_parse_i64(in, INT64_MIN, INT64_MAX, "fuzz", &i);
    (void)mw_parse_duration(in, UINT64_MAX, "fuzz", &u);
    return 0;
}
