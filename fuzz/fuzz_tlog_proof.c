/*
 * Inclusion and consistency proofs arrive from a log we do not trust. Any
 * sizes, index and proof bytes must give a verdict without reading out of
 * bounds or looping; and a proof must never verify two different roots for
 * the same position.
 * Input: u8 selector, u64 a, u64 b, 32-byte root1, 32-byte root2/leaf, then
 * up to 64 proof hashes.
 */
#include <stdlib.h>
#include <string.h>

#include <meshward/tlog.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mw_cursor c;
    mw_cursor_init(&c, mw_slice_make(data, size));
    uint8_t sel;
    uint64_t a, b;
    mw_slice h1, h2;
    if (mw_failed(mw_cursor_u8(&c, &sel)) || mw_failed(mw_cursor_u64be(&c, &a)) ||
        mw_failed(mw_cursor_u64be(&c, &b)) || mw_failed(mw_cursor_bytes(&c, 32, &h1)) ||
        mw_failed(mw_cursor_bytes(&c, 32, &h2)))
        return 0;
    mw_tlog_hash proof[64];
    size_t n = 0;
    mw_slice p;
    while (n < 64 && mw_ok(mw_cursor_bytes(&c, 32, &p)))
        memcpy(proof[n++].b, p.p, 32);

    mw_tlog_hash x, y;
    memcpy(x.b, h1.p, 32);
    memcpy(y.b, h2.p, 32);
    if (sel & 1) {
        if (mw_ok(mw_tlog_verify_inclusion(a, b, &y, proof, n, &x))) {
            /* The same proof must not also place a different leaf there. */
            y.b[0] ^= 1;
            if (mw_ok(mw_tlog_verify_inclusion(a, b, &y, proof, n, &x)))
                abort();
        }
    } else {
        if (mw_ok(mw_tlog_verify_consistency(a, b, h1, h2, proof, n)) && a != b) {
            y.b[0] ^= 1;
            if (mw_ok(mw_tlog_verify_consistency(a, b, h1, mw_slice_make(y.b, 32), proof, n)))
                abort();
        }
    }
    return 0;
}
