/*
 * RFC 3161 timestamps (a TimeStampResp: CMS SignedData around a TSTInfo)
 * against the trusted root's timestamp authorities. The message imprint is
 * over the signature bytes (sigstore-python verifier.py,
 * _verify_timestamp_authority). The TSA chain is judged at genTime, and
 * genTime must fall inside the authority's validFor, both ends inclusive.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/ts.h>

#include "verify/verify_internal.h"

MW_DEFINE_CLEANUP(TS_RESP, TS_RESP_free)
MW_DEFINE_CLEANUP(TS_VERIFY_CTX, TS_VERIFY_CTX_free)

/*
 * The TSA chain's signatures were checked once, when the trusted root was
 * loaded (verify_trustroot.c, parse_ca), so judging a timestamp re-verifying
 * them (one P-384 check per chain link, ~0.45 ms each) buys nothing. This
 * replaces only the signature-and-time step of X509_verify_cert (chain
 * building, purpose, trust and name constraints still run): the chain it
 * built must be, certificate for certificate, the trusted root's chain for
 * this TSA, and every certificate must be valid at genTime, both ends
 * inclusive, as OpenSSL's own check would have required. A chain built
 * through certificates embedded in the response fails the comparison.
 */
static int tsa_ex_index = -1;
static CRYPTO_ONCE tsa_ex_once = CRYPTO_ONCE_STATIC_INIT;

static void tsa_ex_init(void)
{
    tsa_ex_index = X509_STORE_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static bool valid_at(X509 *c, int64_t t)
{
    int64_t nb, na;
    if (mw_failed(mw_asn1_time_unix(X509_get0_notBefore(c), &nb)) ||
        mw_failed(mw_asn1_time_unix(X509_get0_notAfter(c), &na)))
        return false;
    return t >= nb && t <= na;
}

static int tsa_chain_as_loaded(X509_STORE_CTX *ctx)
{
    const struct mw_tr_ca *tsa =
        X509_STORE_get_ex_data(X509_STORE_CTX_get0_store(ctx), tsa_ex_index);
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    int n = sk_X509_num(chain);
    /* verify_with always judges at genTime; without that time there is nothing to judge at. */
    if (tsa == NULL || n != sk_X509_num(tsa->chain) ||
        !(X509_VERIFY_PARAM_get_flags(param) & X509_V_FLAG_USE_CHECK_TIME)) {
        X509_STORE_CTX_set_error(ctx, X509_V_ERR_CERT_SIGNATURE_FAILURE);
        return 0;
    }
    int64_t t = (int64_t)X509_VERIFY_PARAM_get_time(param);
    for (int i = 0; i < n; i++) {
        X509 *c = sk_X509_value(chain, i);
        X509_STORE_CTX_set_error_depth(ctx, i);
        X509_STORE_CTX_set_current_cert(ctx, c);
        if (X509_cmp(c, sk_X509_value(tsa->chain, i)) != 0) {
            X509_STORE_CTX_set_error(ctx, X509_V_ERR_CERT_SIGNATURE_FAILURE);
            return 0;
        }
        if (!valid_at(c, t)) {
            X509_STORE_CTX_set_error(ctx, X509_V_ERR_CERT_HAS_EXPIRED);
            return 0;
        }
    }
    return 1;
}

static mw_result verify_with(const struct mw_tr_ca *tsa, TS_RESP *resp, mw_slice sig,
                             int64_t gen_time)
{
    MW_DEFER(TS_VERIFY_CTX) TS_VERIFY_CTX *ctx = TS_VERIFY_CTX_new();
    MW_ENSURE(ctx != NULL, MW_E_NOMEM, "out of memory");
    X509_STORE *store = X509_STORE_new();
    MW_ENSURE(store != NULL, MW_E_NOMEM, "out of memory");
    TS_VERIFY_CTX_set_store(ctx, store); /* owned by ctx from here */
    MW_ENSURE(CRYPTO_THREAD_run_once(&tsa_ex_once, tsa_ex_init) == 1 && tsa_ex_index >= 0,
              MW_E_CRYPTO, "cannot register the TSA chain check");
    MW_ENSURE(X509_STORE_set_ex_data(store, tsa_ex_index, (void *)tsa) == 1, MW_E_NOMEM,
              "out of memory");
    X509_STORE_set_verify(store, tsa_chain_as_loaded);
    int n = sk_X509_num(tsa->chain);
    MW_GUARD_OSSL(X509_STORE_add_cert(store, sk_X509_value(tsa->chain, n - 1)), MW_E_CRYPTO,
                  "cannot add the TSA root");
    /* A chain that stops below a self-signed root is anchored at its last certificate. */
    X509_VERIFY_PARAM *param = X509_STORE_get0_param(store);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    X509_VERIFY_PARAM_set_time(param, (time_t)gen_time);
    STACK_OF(X509) *certs = sk_X509_new_null();
    MW_ENSURE(certs != NULL, MW_E_NOMEM, "out of memory");
    TS_VERIFY_CTX_set_certs(ctx, certs); /* owned by ctx */
    for (int i = 0; i < n; i++) {
        X509 *c = sk_X509_value(tsa->chain, i);
        MW_ENSURE(X509_up_ref(c) == 1, MW_E_CRYPTO, "cannot reference a TSA certificate");
        if (!sk_X509_push(certs, c)) {
            X509_free(c);
            MW_BAIL(MW_E_NOMEM, "out of memory");
        }
    }
    BIO *data = BIO_new_mem_buf(sig.p, (int)sig.n);
    MW_ENSURE(data != NULL, MW_E_NOMEM, "out of memory");
    TS_VERIFY_CTX_set_data(ctx, data); /* owned by ctx */
    TS_VERIFY_CTX_set_flags(ctx, TS_VFY_VERSION | TS_VFY_SIGNATURE | TS_VFY_DATA);
    if (TS_RESP_verify_response(ctx, resp) != 1) {
        mw_error_openssl(MW_E_VERIFY, "RFC 3161 timestamp does not verify against TSA %s",
                         tsa->uri);
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

mw_result mw_verify_timestamp(const struct mw_trust_root *tr, mw_slice tsr, mw_slice sig,
                              int64_t *gen_time)
{
    const unsigned char *p = tsr.p;
    MW_DEFER(TS_RESP) TS_RESP *resp = d2i_TS_RESP(NULL, &p, (long)tsr.n);
    if (resp == NULL || p != tsr.p + tsr.n) {
        mw_error_openssl(MW_E_INPUT, "RFC 3161 timestamp is not a DER TimeStampResp");
        return MW_FAILURE;
    }
    TS_TST_INFO *info = TS_RESP_get_tst_info(resp);
    MW_ENSURE(info != NULL, MW_E_INPUT, "RFC 3161 timestamp has no TSTInfo");
    MW_GUARD(mw_asn1_time_unix(TS_TST_INFO_get_time(info), gen_time));
    MW_ENSURE(tr->ntsas > 0, MW_E_VERIFY,
              "bundle has an RFC 3161 timestamp but the trusted root has no timestamp authority");
    char when[32];
    mw_time_format(*gen_time, when, sizeof(when));
    bool in_window = false;
    for (size_t i = 0; i < tr->ntsas; i++) {
        if (!mw_validity_has(&tr->tsas[i].valid, *gen_time))
            continue;
        in_window = true;
        if (mw_ok(verify_with(&tr->tsas[i], resp, sig, *gen_time)))
            return MW_SUCCESS;
    }
    if (!in_window)
        MW_BAIL(MW_E_EXPIRED,
                "RFC 3161 timestamp time %s is outside every timestamp authority's validity", when);
    mw_error_prefix("timestamp at %s: ", when);
    return MW_FAILURE;
}
