/* Shared helpers of the verifier: JSON fields, times, signatures. */
#include <string.h>
#include <time.h>

#include "verify/verify_internal.h"

mw_result mw_vj_str(json_t *obj, const char *key, const char *what, bool required, const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL) {
        MW_ENSURE(!required, MW_E_INPUT, "%s: missing \"%s\"", what, key);
        return MW_SUCCESS;
    }
    MW_ENSURE(json_is_string(v), MW_E_INPUT, "%s: \"%s\" is not a string", what, key);
    MW_ENSURE(strlen(json_string_value(v)) == json_string_length(v), MW_E_INPUT,
              "%s: \"%s\" holds a NUL byte", what, key);
    *out = json_string_value(v);
    return MW_SUCCESS;
}

mw_result mw_vj_b64(json_t *obj, const char *key, const char *what, bool required,
                    struct mw_dynbuf *out, bool *present)
{
    json_t *v = json_object_get(obj, key);
    if (present != NULL)
        *present = false;
    if (v == NULL) {
        MW_ENSURE(!required, MW_E_INPUT, "%s: missing \"%s\"", what, key);
        return MW_SUCCESS;
    }
    MW_ENSURE(json_is_string(v), MW_E_INPUT, "%s: \"%s\" is not a string", what, key);
    mw_dynbuf_reset(out);
    /*
     * Line breaks are dropped first, as Go's and Python's decoders do: `base64
     * FILE` wraps at 76 columns and such bundles exist in the wild
     * (conformance rekor2-timestamp-with-incorrect-time). Anything else
     * outside the alphabet, and bad padding, stays an error.
     */
    mw_slice in = mw_slice_make(json_string_value(v), json_string_length(v));
    MW_DEFER_BUF struct mw_dynbuf flat;
    mw_dynbuf_init(&flat, in.n + 1);
    if (memchr(in.p, '\n', in.n) != NULL || memchr(in.p, '\r', in.n) != NULL) {
        for (size_t i = 0; i < in.n; i++)
            if (in.p[i] != '\n' && in.p[i] != '\r')
                MW_GUARD(mw_dynbuf_add_byte(&flat, in.p[i]));
        in = mw_dynbuf_slice(&flat);
    }
    if (mw_failed(mw_b64_decode(in, MW_B64_STD, out))) {
        mw_error_prefix("%s: \"%s\" is not standard base64: ", what, key);
        return MW_FAILURE;
    }
    if (present != NULL)
        *present = true;
    return MW_SUCCESS;
}

mw_result mw_vj_i64(json_t *obj, const char *key, const char *what, bool required, int64_t *out,
                    bool *present)
{
    json_t *v = json_object_get(obj, key);
    if (present != NULL)
        *present = false;
    *out = 0;
    if (v == NULL) {
        MW_ENSURE(!required, MW_E_INPUT, "%s: missing \"%s\"", what, key);
        return MW_SUCCESS;
    }
    /* proto3 JSON writes int64 as a string but parsers accept a number too. */
    if (json_is_integer(v)) {
        MW_ENSURE(json_integer_value(v) >= 0, MW_E_INPUT, "%s: \"%s\" is negative (%lld)", what,
                  key, (long long)json_integer_value(v));
        *out = json_integer_value(v);
    } else {
        MW_ENSURE(json_is_string(v), MW_E_INPUT, "%s: \"%s\" is not an integer string", what, key);
        int64_t n;
        MW_GUARD(mw_parse_i64(mw_slice_make(json_string_value(v), json_string_length(v)), INT64_MIN,
                              INT64_MAX, key, &n));
        MW_ENSURE(n >= 0, MW_E_INPUT, "%s: \"%s\" is negative (%lld)", what, key, (long long)n);
        *out = n;
    }
    if (present != NULL)
        *present = true;
    return MW_SUCCESS;
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

mw_result mw_parse_rfc3339(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, sec;
    size_t n = strlen(s);
    MW_ENSURE(n >= 20 && s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == 't') &&
                  s[13] == ':' && s[16] == ':',
              MW_E_INPUT, "time \"%.40s\" is not RFC 3339", s);
    MW_ENSURE(digits(s, 4, &y) && digits(s + 5, 2, &mo) && digits(s + 8, 2, &d) &&
                  digits(s + 11, 2, &h) && digits(s + 14, 2, &mi) && digits(s + 17, 2, &sec),
              MW_E_INPUT, "time \"%.40s\" is not RFC 3339", s);
    MW_ENSURE(mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && sec <= 60,
              MW_E_INPUT, "time \"%.40s\" is out of range", s);
    size_t i = 19;
    if (s[i] == '.') {
        i++;
        size_t f = i;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
        MW_ENSURE(i > f && i - f <= 9, MW_E_INPUT, "time \"%.40s\": bad fraction", s);
    }
    int64_t offset = 0;
    if ((s[i] == 'Z' || s[i] == 'z') && s[i + 1] == '\0') {
        offset = 0;
    } else if ((s[i] == '+' || s[i] == '-') && n - i == 6 && s[i + 3] == ':') {
        int oh, om;
        MW_ENSURE(digits(s + i + 1, 2, &oh) && digits(s + i + 4, 2, &om) && oh <= 23 && om <= 59,
                  MW_E_INPUT, "time \"%.40s\": bad offset", s);
        offset = (int64_t)(oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
    } else {
        MW_BAIL(MW_E_INPUT, "time \"%.40s\": want Z or an offset", s);
    }
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec == 60 ? 59 : sec};
    /* The fraction is dropped: a window end of 23:59:59.999 still covers 23:59:59. */
    *out = (int64_t)timegm(&tm) - offset;
    return MW_SUCCESS;
}

mw_result mw_asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    MW_ENSURE(t != NULL && ASN1_TIME_to_tm(t, &tm) == 1, MW_E_INPUT, "unreadable ASN.1 time");
    *out = (int64_t)timegm(&tm);
    return MW_SUCCESS;
}

mw_result mw_vcopy(char *dst, size_t cap, const char *src, size_t n, const char *what)
{
    MW_ENSURE(n < cap, MW_E_LIMIT, "%s is %zu bytes, at most %zu allowed", what, n, cap - 1);
    MW_ENSURE(memchr(src, '\0', n) == NULL, MW_E_INPUT, "%s holds a NUL byte", what);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return MW_SUCCESS;
}

const EVP_MD *mw_key_md(EVP_PKEY *key)
{
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519)
        return NULL;
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
        int bits = EVP_PKEY_get_bits(key);
        if (bits > 384)
            return EVP_sha512();
        if (bits > 256)
            return EVP_sha384();
    }
    return EVP_sha256();
}

mw_result mw_verify_sig(EVP_PKEY *key, const EVP_MD *md, mw_slice data, mw_slice sig,
                        const char *what)
{
    MW_DEFER(EVP_MD_CTX) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    MW_ENSURE(ctx != NULL, MW_E_NOMEM, "out of memory");
    MW_GUARD_OSSL(EVP_DigestVerifyInit(ctx, NULL, md, NULL, key), MW_E_CRYPTO,
                  "%s: cannot set up verification", what);
    if (EVP_DigestVerify(ctx, sig.p, sig.n, data.p, data.n) != 1) {
        mw_error_openssl(MW_E_VERIFY, "%s: signature does not verify", what);
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

mw_result mw_verify_prehash(EVP_PKEY *key, const EVP_MD *md, mw_slice digest, mw_slice sig,
                            const char *what)
{
    MW_ENSURE(EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519, MW_E_UNSUPPORTED,
              "%s: an Ed25519 key cannot verify a digest; give the artifact itself", what);
    MW_DEFER(EVP_PKEY_CTX) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    MW_ENSURE(ctx != NULL, MW_E_NOMEM, "out of memory");
    MW_GUARD_OSSL(EVP_PKEY_verify_init(ctx), MW_E_CRYPTO, "%s: cannot set up verification", what);
    MW_GUARD_OSSL(EVP_PKEY_CTX_set_signature_md(ctx, md), MW_E_CRYPTO, "%s: cannot set the digest",
                  what);
    if (EVP_PKEY_verify(ctx, sig.p, sig.n, digest.p, digest.n) != 1) {
        mw_error_openssl(MW_E_VERIFY, "%s: signature does not verify", what);
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}
