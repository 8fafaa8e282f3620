/*
 * The provenance extension comes from peers' certificates (svid inspect, the
 * sidecar's provenance conditions). The decoder is strict DER, so whatever
 * it accepts must re-encode to exactly the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include <meshward/ca.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mw_ca_provenance p;
    if (mw_failed(mw_ca_provenance_decode(mw_slice_make(data, size), &p)))
        return 0;
    struct mw_dynbuf der;
    mw_dynbuf_init(&der, MW_CA_PROVENANCE_DER_MAX);
    if (mw_failed(mw_ca_provenance_encode(&p, &der)) || der.n != size ||
        memcmp(der.p, data, size) != 0)
        abort(); /* accepted, but not the one DER encoding of what it holds */
    mw_dynbuf_free(&der);
    return 0;
}
