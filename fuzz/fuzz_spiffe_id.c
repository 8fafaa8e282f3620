/*
 * SPIFFE IDs arrive in certificates and tokens from peers. The parser must
 * never read out of bounds, and what it accepts must print back to exactly
 * the input (one spelling per identity, SPIFFE-ID.md §2) and satisfy the
 * character rules independently checked here.
 */
#include <stdlib.h>
#include <string.h>

#include <meshward/spiffe.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mw_spiffe_id id;
    enum mw_spiffe_id_fault fault;
    mw_slice in = mw_slice_make(data, size);
    if (mw_ok(mw_spiffe_id_parse(in, &id, &fault))) {
        char buf[MW_SPIFFE_ID_MAX + 16];
        if (fault != MW_SPIFFE_ID_OK || !mw_spiffe_id_format(&id, buf, sizeof(buf)))
            abort();
        if (!mw_slice_eq_cstr(in, buf))
            abort();
        for (const char *p = id.td; *p; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-._", *p)))
                abort();
        }
        if (id.path[0] != '\0' && (id.path[0] != '/' || strstr(id.path, "//") != NULL))
            abort();
        char td[MW_SPIFFE_TD_MAX + 1];
        if (mw_failed(mw_spiffe_td_parse(mw_slice_cstr(id.td), td)) || strcmp(td, id.td) != 0)
            abort();
    } else if (fault == MW_SPIFFE_ID_OK) {
        abort();
    }
    char td[MW_SPIFFE_TD_MAX + 1];
    (void)mw_spiffe_td_parse(in, td);
    return 0;
}
