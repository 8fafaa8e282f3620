/*
 * trusted_root.json usually comes through TUF, but a mirror or an operator
 * can hand us anything. No crash, no leak; a loaded root reports counts
 * within the limits and a digest.
 */
#include <stdlib.h>

#include <meshward/verify.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mw_trust_root *tr;
    if (mw_failed(mw_trust_root_load(mw_slice_make(data, size), "fuzz", &tr))) {
        if (tr != NULL)
            abort();
        return 0;
    }
    struct mw_trust_root_counts n;
    mw_trust_root_counts(tr, &n);
    if (n.cas > 64 || n.tlogs > 64 || n.ctlogs > 64 || n.tsas > 64)
        abort();
    uint8_t d[32];
    mw_trust_root_digest(tr, d);
    mw_trust_root_free(tr);
    return 0;
}
