/* Compact JWS splitting and ECDSA signature conversion, for JWT-SVIDs and k8s tokens. */
#include <openssl/ecdsa.h>

#include "base/mw_ossl.h"
#include "spiffe/spiffe_jose.h"

size_t mw_jws_split(mw_slice token, struct mw_jws_parts *parts)
{
    size_t d1 = mw_slice_find(token, '.', 0);
    if (d1 >= token.n)
        return 0;
    size_t d2 = mw_slice_find(token, '.', d1 + 1);
    if (d2 >= token.n)
        return 1;
    if (mw_slice_find(token, '.', d2 + 1) != token.n)
        return 3;
    parts->header = mw_slice_sub(token, 0, d1);
    parts->payload = mw_slice_sub(token, d1 + 1, d2 - d1 - 1);
    parts->signature = mw_slice_sub(token, d2 + 1, token.n - d2 - 1);
    parts->signing_input = mw_slice_sub(token, 0, d2);
    return 2;
}

mw_result mw_jws_ecdsa_to_der(mw_slice sig, size_t half, struct mw_dynbuf *der)
{
    MW_ENSURE(half > 0 && sig.n == half * 2, MW_E_VERIFY, "ECDSA signature is %zu bytes, want %zu",
              sig.n, half * 2);
    MW_DEFER(ECDSA_SIG) ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig.p, (int)half, NULL);
    BIGNUM *s = BN_bin2bn(sig.p + half, (int)half, NULL);
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        MW_BAIL(MW_E_NOMEM, "out of memory");
    }
    int len = i2d_ECDSA_SIG(es, NULL);
    MW_ENSURE(len > 0, MW_E_CRYPTO, "cannot encode an ECDSA signature");
    MW_GUARD(mw_dynbuf_reserve(der, (size_t)len));
    unsigned char *p = der->p;
    MW_ENSURE(i2d_ECDSA_SIG(es, &p) == len, MW_E_CRYPTO, "cannot encode an ECDSA signature");
    der->n = (size_t)len;
    return MW_SUCCESS;
}
