/*
 * POST /v1/svid and /v1/svid/renew bodies come from anyone who can reach the CA. The parser
 * must never read out of bounds or leak, and whatever it accepts must be
 * complete: a CSR of at least one byte, a credential with a kind and a
 * non-empty token, a valid image digest when one is named. The CSR check
 * (DER, key type, proof of possession) runs on what the parser produced, as
 * the service does.
 */
#include <stdlib.h>
#include <string.h>

#include <meshward/ca_service.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mw_ca_svid_request r;
    mw_ca_svid_request_init(&r);
    if (mw_ok(mw_ca_svid_request_parse(mw_slice_make(data, size), &r))) {
        if (r.csr_der.n == 0 || r.token.n == 0 ||
            (r.kind != MW_CA_CRED_JOIN && r.kind != MW_CA_CRED_K8S) || r.ttl < 0)
            abort();
        if (r.has_image &&
            mw_failed(mw_ca_digest_check(mw_slice_cstr(r.image_digest), "image_digest")))
            abort();
        if (mw_failed(mw_ca_csr_check(mw_dynbuf_slice(&r.csr_der))))
            mw_error_clear();
    }
    mw_error_clear();
    mw_ca_svid_request_free(&r);
    /* The same bytes as a POST /v1/svid/renew body: a CSR, maybe a TTL, nothing else. */
    mw_ca_svid_request_init(&r);
    if (mw_ok(mw_ca_svid_renew_request_parse(mw_slice_make(data, size), &r))) {
        if (r.csr_der.n == 0 || r.token.n != 0 || r.kind != 0 || r.has_image || r.ttl < 0)
            abort();
        if (mw_failed(mw_ca_csr_check(mw_dynbuf_slice(&r.csr_der))))
            mw_error_clear();
    }
    mw_error_clear();
    mw_ca_svid_request_free(&r);
    return 0;
}
