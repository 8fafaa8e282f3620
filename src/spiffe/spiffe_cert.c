/* Certificate facts and PEM block iteration shared by SVIDs and bundles. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>

#include <openssl/core_names.h>

#include "base/mw_ossl.h"
#include "spiffe/spiffe_internal.h"

bool mw_pem_present(mw_slice text)
{
    static const char begin[] = "-----BEGIN ";
    const size_t bn = sizeof(begin) - 1;
    for (size_t i = 0; i + bn <= text.n; i++) {
        if (text.p[i] == '-' && memcmp(text.p + i, begin, bn) == 0)
            return true;
    }
    return false;
}

void mw_pem_block_free(struct mw_pem_block *blk)
{
    OPENSSL_free(blk->name);
    OPENSSL_free(blk->data);
    blk->name = NULL;
    blk->data = NULL;
    blk->len = 0;
}

mw_result mw_pem_next(BIO *in, struct mw_pem_block *blk, int *got)
{
    char *header = NULL;
    blk->name = NULL;
    blk->data = NULL;
    blk->len = 0;
    ERR_clear_error();
    int r = PEM_read_bio(in, &blk->name, &header, &blk->data, &blk->len);
    OPENSSL_free(header);
    if (r > 0) {
        *got = 1;
        return MW_SUCCESS;
    }
    unsigned long e = ERR_peek_last_error();
    mw_pem_block_free(blk);
    /* PEM_read_bio reports the end of its input as "no start line". */
    if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        *got = 0;
        return MW_SUCCESS;
    }
    mw_error_openssl(MW_E_INPUT, "malformed PEM block");
    return MW_FAILURE;
}

void mw_spiffe_key_desc(const EVP_PKEY *key, char *type, size_t type_len, int *bits, char *curve,
                        size_t curve_len)
{
    const char *name = "unknown";
    curve[0] = '\0';
    *bits = EVP_PKEY_get_bits(key);
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        name = "RSA";
        break;
    case EVP_PKEY_RSA_PSS:
        name = "RSA-PSS";
        break;
    case EVP_PKEY_EC: {
        name = "EC";
        char group[64];
        size_t glen = 0;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           &glen) > 0) {
            int nid = OBJ_sn2nid(group);
            const char *nist = nid != NID_undef ? EC_curve_nid2nist(nid) : NULL;
            snprintf(curve, curve_len, "%s", nist != NULL ? nist : group);
        }
        break;
    }
    case EVP_PKEY_ED25519:
        name = "Ed25519";
        break;
    case EVP_PKEY_ED448:
        name = "Ed448";
        break;
    default:
        break;
    }
    snprintf(type, type_len, "%s", name);
}

static int64_t asn1_time_unix(const ASN1_TIME *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) <= 0)
        return 0;
    int64_t secs = 0;
    /* OPENSSL_gmtime_diff against the epoch avoids timegm's locale and range issues. */
    int day = 0, sec = 0;
    MW_DEFER(ASN1_TIME) ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
    if (epoch != NULL && ASN1_TIME_diff(&day, &sec, epoch, t) > 0)
        secs = (int64_t)day * 86400 + sec;
    return secs;
}

static void name_line(const X509_NAME *name, char *buf, size_t len)
{
    buf[0] = '\0';
    MW_DEFER(BIO) BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL || name == NULL)
        return;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
        return;
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    if (n < 0)
        return;
    size_t m = (size_t)n < len - 1 ? (size_t)n : len - 1;
    memcpy(buf, p, m);
    buf[m] = '\0';
}

mw_result mw_spiffe_cert_info(X509 *cert, struct mw_cert_info *out)
{
    memset(out, 0, sizeof(*out));
    name_line(X509_get_subject_name(cert), out->subject, sizeof(out->subject));
    name_line(X509_get_issuer_name(cert), out->issuer, sizeof(out->issuer));

    MW_DEFER(BIGNUM) BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    MW_ENSURE(bn != NULL, MW_E_NOMEM, "out of memory reading a serial number");
    char *hex = BN_bn2hex(bn);
    MW_ENSURE(hex != NULL, MW_E_NOMEM, "out of memory reading a serial number");
    size_t hl = strlen(hex);
    if (hl >= sizeof(out->serial))
        hl = sizeof(out->serial) - 1;
    for (size_t i = 0; i < hl; i++) {
        char c = hex[i];
        out->serial[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
    }
    out->serial[hl] = '\0';
    OPENSSL_free(hex);

    out->not_before = asn1_time_unix(X509_get0_notBefore(cert));
    out->not_after = asn1_time_unix(X509_get0_notAfter(cert));
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    if (pub != NULL)
        mw_spiffe_key_desc(pub, out->key_type, sizeof(out->key_type), &out->key_bits, out->curve,
                           sizeof(out->curve));
    else
        snprintf(out->key_type, sizeof(out->key_type), "unknown");
    out->is_ca = X509_check_ca(cert) > 0 && (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;

    MW_DEFER(GENERAL_NAMES)
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type != GEN_URI)
            continue;
        const ASN1_IA5STRING *u = gn->d.uniformResourceIdentifier;
        size_t n = (size_t)ASN1_STRING_length(u);
        if (n > MW_SPIFFE_ID_MAX)
            n = MW_SPIFFE_ID_MAX;
        memcpy(out->uri_san, ASN1_STRING_get0_data(u), n);
        out->uri_san[n] = '\0';
        break;
    }
    return MW_SUCCESS;
}
