/*
 * Issuance-log records are read back from exported logs that anyone may have
 * touched. The parser must never read out of bounds, and it must be strict:
 * whatever it accepts re-encodes to exactly the input bytes (one encoding per
 * record, so equal records have equal leaf hashes) and renders as JSON.
 */
#include <stdlib.h>
#include <string.h>

#include <meshward/ca_auth.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mw_ca_record r;
    if (mw_failed(mw_ca_record_parse(mw_slice_make(data, size), &r))) {
        mw_error_clear();
        return 0;
    }
    struct mw_dynbuf b, j;
    mw_dynbuf_init(&b, MW_CA_RECORD_MAX);
    mw_dynbuf_init(&j, 1u << 22);
    if (mw_failed(mw_ca_record_encode(&r, &b)) || b.n != size || memcmp(b.p, data, size) != 0)
        abort();
    if (mw_failed(mw_ca_record_to_json(&r, &j)))
        abort();
    mw_dynbuf_free(&b);
    mw_dynbuf_free(&j);
    return 0;
}
