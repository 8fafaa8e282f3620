/*
 * Fulcio leaf certificates: the chain to a trusted CA at the signing time,
 * the embedded SCT (RFC 6962 §3.2), the certificate profile and the identity
 * (sigstore/fulcio docs/certificate-specification.md, docs/oid-info.md).
 */
#include <regex.h>
#include <string.h>

#include <openssl/sha.h>

#include "verify/verify_internal.h"

/* The chain of a trusted CA whose first certificate issued leaf, or NULL. */
static const struct mw_tr_ca *find_issuing_ca(const struct mw_trust_root *tr, X509 *leaf,
                                              bool *sig_bad)
{
    *sig_bad = false;
    for (size_t i = 0; i < tr->ncas; i++) {
        X509 *up = sk_X509_value(tr->cas[i].chain, 0);
        if (X509_check_issued(up, leaf) != X509_V_OK)
            continue;
        if (X509_verify(leaf, X509_get0_pubkey(up)) == 1)
            return &tr->cas[i];
        *sig_bad = true;
    }
    return NULL;
}

static bool cert_valid_at(X509 *c, int64_t t)
{
    int64_t nb, na;
    if (mw_failed(mw_asn1_time_unix(X509_get0_notBefore(c), &nb)) ||
        mw_failed(mw_asn1_time_unix(X509_get0_notAfter(c), &na)))
        return false;
    return t >= nb && t <= na;
}

mw_result mw_verify_fulcio_chain(const struct mw_trust_root *tr, X509 *leaf, const int64_t *times,
                                 size_t ntimes, X509 **issuer)
{
    bool sig_bad;
    ERR_clear_error();
    /* One signature check per leaf; the CA chains were checked at load. */
    const struct mw_tr_ca *ca = find_issuing_ca(tr, leaf, &sig_bad);
    ERR_clear_error();
    MW_ENSURE(ca != NULL, MW_E_VERIFY, "%s",
              sig_bad ? "signing certificate: signature by the CA does not verify"
                      : "signing certificate was not issued by a CA of the trusted root");
    for (size_t k = 0; k < ntimes; k++) {
        int64_t t = times[k];
        char when[32];
        mw_time_format(t, when, sizeof(when));
        MW_ENSURE(mw_validity_has(&ca->valid, t), MW_E_EXPIRED,
                  "signing certificate: its CA %s is not trusted at the signing time %s", ca->uri,
                  when);
        for (int i = 0; i < sk_X509_num(ca->chain); i++)
            MW_ENSURE(cert_valid_at(sk_X509_value(ca->chain, i), t), MW_E_EXPIRED,
                      "signing certificate: CA certificate %d is not valid at the signing time %s",
                      i, when);
        MW_ENSURE(cert_valid_at(leaf, t), MW_E_EXPIRED,
                  "signing certificate is not valid at the signing time %s", when);
    }
    *issuer = sk_X509_value(ca->chain, 0);
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- SCT */

static const struct mw_tr_log *find_ctlog(const struct mw_trust_root *tr, mw_slice id)
{
    for (size_t i = 0; i < tr->nctlogs; i++)
        if (id.n == 32 && memcmp(tr->ctlogs[i].log_id, id.p, 32) == 0)
            return &tr->ctlogs[i];
    return NULL;
}

/*
 * The precertificate TBS is the certificate's TBSCertificate without the SCT
 * list extension (RFC 6962 §3.2). It is cut out of the DER directly: the
 * obvious X509_dup + X509_delete_ext + i2d_re_X509_tbs decodes the whole
 * certificate again, key included, which costs more under OpenSSL 3.0 than
 * the SCT's signature check. Only the lengths of the extensions, [3] and
 * TBSCertificate wrappers change; every other byte is the CA's.
 */
struct der_item {
    uint8_t tag;
    mw_slice all, body;
};

/* The next DER TLV of *in (low tag numbers, definite lengths up to 2^32-1). */
static bool der_next(mw_slice *in, struct der_item *it)
{
    const uint8_t *p = in->p;
    size_t n = in->n, len, hdr;
    if (n < 2 || (p[0] & 0x1f) == 0x1f)
        return false;
    if (p[1] < 0x80) {
        len = p[1];
        hdr = 2;
    } else {
        size_t k = p[1] & 0x7f;
        if (k == 0 || k > 4 || n < 2 + k)
            return false;
        len = 0;
        for (size_t i = 0; i < k; i++)
            len = (len << 8) | p[2 + i];
        hdr = 2 + k;
    }
    if (len > n - hdr)
        return false;
    it->tag = p[0];
    it->all = mw_slice_make(p, hdr + len);
    it->body = mw_slice_make(p + hdr, len);
    in->p += hdr + len;
    in->n -= hdr + len;
    return true;
}

static size_t der_header_len(size_t len)
{
    return len < 0x80 ? 2 : len <= 0xff ? 3 : len <= 0xffff ? 4 : len <= 0xffffff ? 5 : 6;
}

static mw_result der_header(struct mw_dynbuf *out, uint8_t tag, size_t len)
{
    uint8_t h[6];
    size_t n = der_header_len(len);
    h[0] = tag;
    if (n == 2) {
        h[1] = (uint8_t)len;
    } else {
        h[1] = (uint8_t)(0x80 | (n - 2));
        for (size_t i = 2; i < n; i++)
            h[i] = (uint8_t)(len >> (8 * (n - 1 - i)));
    }
    return mw_dynbuf_add(out, h, n);
}

static mw_result precert_tbs(X509 *leaf, struct mw_dynbuf *out)
{
    /* 1.3.6.1.4.1.11129.2.4.2, the embedded SCT list. */
    static const uint8_t sct_oid[] = {0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02};
    unsigned char *der = NULL;
    int der_n = i2d_X509(leaf, &der);
    MW_GUARD_OSSL(der_n, MW_E_CRYPTO, "cannot encode the signing certificate");
    MW_DEFER_BUF struct mw_dynbuf body, exts;
    mw_dynbuf_init(&body, 1u << 20);
    mw_dynbuf_init(&exts, 1u << 20);
    mw_slice in = mw_slice_make(der, (size_t)der_n);
    struct der_item cert, tbs, it, seq, ext, oid;
    bool ok =
        der_next(&in, &cert) && cert.tag == 0x30 && der_next(&cert.body, &tbs) && tbs.tag == 0x30;
    bool removed = false;
    mw_result r = MW_SUCCESS;
    while (ok && mw_ok(r) && tbs.body.n > 0) {
        ok = der_next(&tbs.body, &it);
        if (!ok)
            break;
        if (it.tag != 0xa3) { /* extensions are [3] EXPLICIT */
            r = mw_dynbuf_add_slice(&body, it.all);
            continue;
        }
        ok = der_next(&it.body, &seq) && seq.tag == 0x30 && it.body.n == 0;
        while (ok && mw_ok(r) && seq.body.n > 0) {
            ok = der_next(&seq.body, &ext) && ext.tag == 0x30 && der_next(&ext.body, &oid) &&
                 oid.tag == 0x06;
            if (!ok)
                break;
            if (!removed && mw_slice_eq(oid.body, mw_slice_make(sct_oid, sizeof(sct_oid))))
                removed = true; /* the first one, as X509_get_ext_by_NID finds it */
            else
                r = mw_dynbuf_add_slice(&exts, ext.all);
        }
        if (ok && mw_ok(r))
            r = der_header(&body, 0xa3, der_header_len(exts.n) + exts.n);
        if (ok && mw_ok(r))
            r = der_header(&body, 0x30, exts.n);
        if (ok && mw_ok(r))
            r = mw_dynbuf_add_slice(&body, mw_dynbuf_slice(&exts));
    }
    OPENSSL_free(der);
    MW_GUARD(r);
    MW_ENSURE(ok, MW_E_INPUT, "signing certificate is not DER a TBSCertificate can be cut from");
    MW_ENSURE(removed, MW_E_INPUT, "signing certificate: SCT list extension not found");
    MW_GUARD(der_header(out, 0x30, body.n));
    return mw_dynbuf_add_slice(out, mw_dynbuf_slice(&body));
}

/* RFC 6962 §3.2 digitally-signed struct for a precertificate entry. */
static mw_result sct_signed_data(uint64_t ts, mw_slice issuer_key_hash, mw_slice tbs, mw_slice ext,
                                 struct mw_dynbuf *out)
{
    uint8_t hdr[12] = {0, 0};
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (uint8_t)(ts >> (56 - 8 * i));
    hdr[10] = 0;
    hdr[11] = 1; /* precert_entry */
    MW_GUARD(mw_dynbuf_add(out, hdr, sizeof(hdr)));
    MW_GUARD(mw_dynbuf_add_slice(out, issuer_key_hash));
    MW_ENSURE(tbs.n < (1u << 24), MW_E_LIMIT, "certificate body too large for an SCT");
    uint8_t l3[3] = {(uint8_t)(tbs.n >> 16), (uint8_t)(tbs.n >> 8), (uint8_t)tbs.n};
    MW_GUARD(mw_dynbuf_add(out, l3, 3));
    MW_GUARD(mw_dynbuf_add_slice(out, tbs));
    uint8_t l2[2] = {(uint8_t)(ext.n >> 8), (uint8_t)ext.n};
    MW_GUARD(mw_dynbuf_add(out, l2, 2));
    MW_GUARD(mw_dynbuf_add_slice(out, ext));
    return MW_SUCCESS;
}

mw_result mw_verify_sct(const struct mw_trust_root *tr, X509 *leaf, X509 *issuer, int64_t now)
{
    int idx = X509_get_ext_by_NID(leaf, NID_ct_precert_scts, -1);
    /* Fulcio: clients MUST NOT trust a certificate without an SCT. */
    MW_ENSURE(idx >= 0, MW_E_VERIFY, "signing certificate has no embedded SCT");
    ASN1_OCTET_STRING *data = X509_EXTENSION_get_data(X509_get_ext(leaf, idx));
    const unsigned char *p = ASN1_STRING_get0_data(data);
    MW_DEFER(ASN1_OCTET_STRING)
    ASN1_OCTET_STRING *inner = d2i_ASN1_OCTET_STRING(NULL, &p, ASN1_STRING_length(data));
    MW_ENSURE(inner != NULL, MW_E_INPUT, "SCT list extension is not an OCTET STRING");

    /* The issuer key hash: SHA-256 of the issuer's SubjectPublicKeyInfo DER. */
    unsigned char *spki = NULL;
    int spki_n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(issuer), &spki);
    MW_GUARD_OSSL(spki_n, MW_E_CRYPTO, "cannot encode the issuer key");
    uint8_t ikh[32];
    SHA256(spki, (size_t)spki_n, ikh);
    OPENSSL_free(spki);

    MW_DEFER_BUF struct mw_dynbuf tbs;
    mw_dynbuf_init(&tbs, 1u << 20);
    MW_GUARD(precert_tbs(leaf, &tbs));

    struct mw_cursor list, all;
    mw_cursor_init(&all, mw_slice_make(ASN1_STRING_get0_data(inner), ASN1_STRING_length(inner)));
    uint16_t list_len;
    mw_slice list_bytes;
    MW_GUARD(mw_cursor_u16be(&all, &list_len));
    MW_GUARD(mw_cursor_bytes(&all, list_len, &list_bytes));
    MW_ENSURE(mw_cursor_left(&all) == 0, MW_E_INPUT, "SCT list has trailing bytes");
    mw_cursor_init(&list, list_bytes);
    size_t verified = 0, seen = 0;
    while (mw_cursor_left(&list) > 0) {
        uint16_t n;
        mw_slice one;
        MW_GUARD(mw_cursor_u16be(&list, &n));
        MW_GUARD(mw_cursor_bytes(&list, n, &one));
        seen++;
        struct mw_cursor c;
        mw_cursor_init(&c, one);
        uint8_t ver, halg, salg;
        uint16_t ext_n, sig_n;
        uint64_t ts;
        mw_slice log_id, ext, sig;
        MW_GUARD(mw_cursor_u8(&c, &ver));
        MW_GUARD(mw_cursor_bytes(&c, 32, &log_id));
        MW_GUARD(mw_cursor_u64be(&c, &ts));
        MW_GUARD(mw_cursor_u16be(&c, &ext_n));
        MW_GUARD(mw_cursor_bytes(&c, ext_n, &ext));
        MW_GUARD(mw_cursor_u8(&c, &halg));
        MW_GUARD(mw_cursor_u8(&c, &salg));
        MW_GUARD(mw_cursor_u16be(&c, &sig_n));
        MW_GUARD(mw_cursor_bytes(&c, sig_n, &sig));
        MW_ENSURE(mw_cursor_left(&c) == 0, MW_E_INPUT, "SCT %zu has trailing bytes", seen);
        if (ver != 0)
            continue; /* only v1 SCTs exist */
        const struct mw_tr_log *log = find_ctlog(tr, log_id);
        if (log == NULL)
            continue;
        int64_t ts_s = (int64_t)(ts / 1000);
        MW_ENSURE(mw_validity_has(&log->valid, ts_s), MW_E_VERIFY,
                  "SCT from %s is dated outside the log's validity", log->base_url);
        MW_ENSURE(ts_s <= now, MW_E_VERIFY, "SCT from %s is dated in the future", log->base_url);
        const EVP_MD *md = halg == 4 ? EVP_sha256() : halg == 5 ? EVP_sha384() : NULL;
        MW_ENSURE(md != NULL, MW_E_UNSUPPORTED, "SCT hash algorithm %u is not supported", halg);
        MW_DEFER_BUF struct mw_dynbuf signed_data;
        mw_dynbuf_init(&signed_data, 2u << 20);
        MW_GUARD(
            sct_signed_data(ts, mw_slice_make(ikh, 32), mw_dynbuf_slice(&tbs), ext, &signed_data));
        if (mw_failed(mw_verify_sig(log->key, md, mw_dynbuf_slice(&signed_data), sig, "SCT"))) {
            mw_error_prefix("CT log %s: ", log->base_url);
            return MW_FAILURE;
        }
        verified++;
    }
    MW_ENSURE(verified > 0, MW_E_VERIFY,
              "signing certificate: none of its %zu SCTs is from a CT log of the trusted root",
              seen);
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- identity */

/* Fulcio extension .n: raw bytes (.1-.6) or a DER UTF8String (.8 on). */
static mw_result fulcio_ext(X509 *leaf, int n, bool der, char *out, size_t cap, bool *found)
{
    char oid[40];
    snprintf(oid, sizeof(oid), "1.3.6.1.4.1.57264.1.%d", n);
    *found = false;
    out[0] = '\0';
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    MW_ENSURE(obj != NULL, MW_E_CRYPTO, "cannot make OID %s", oid);
    int idx = X509_get_ext_by_OBJ(leaf, obj, -1);
    ASN1_OBJECT_free(obj);
    if (idx < 0)
        return MW_SUCCESS;
    ASN1_OCTET_STRING *data = X509_EXTENSION_get_data(X509_get_ext(leaf, idx));
    const unsigned char *p = ASN1_STRING_get0_data(data);
    int len = ASN1_STRING_length(data);
    if (der) {
        ASN1_UTF8STRING *s = d2i_ASN1_UTF8STRING(NULL, &p, len);
        MW_ENSURE(s != NULL, MW_E_INPUT, "Fulcio extension %s is not a DER UTF8String", oid);
        mw_result r = mw_vcopy(out, cap, (const char *)ASN1_STRING_get0_data(s),
                               (size_t)ASN1_STRING_length(s), oid);
        ASN1_UTF8STRING_free(s);
        MW_GUARD(r);
    } else {
        MW_GUARD(mw_vcopy(out, cap, (const char *)p, (size_t)len, oid));
    }
    *found = true;
    return MW_SUCCESS;
}

static mw_result leaf_san(X509 *leaf, char *out, size_t cap)
{
    MW_DEFER(GENERAL_NAMES)
    GENERAL_NAMES *names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    MW_ENSURE(names != NULL, MW_E_VERIFY, "signing certificate has no subjectAltName");
    MW_ENSURE(sk_GENERAL_NAME_num(names) == 1, MW_E_VERIFY,
              "signing certificate has %d subjectAltNames, want 1", sk_GENERAL_NAME_num(names));
    GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, 0);
    ASN1_STRING *s = NULL;
    if (gn->type == GEN_URI || gn->type == GEN_EMAIL) {
        s = gn->d.ia5;
    } else if (gn->type == GEN_OTHERNAME) {
        char oid[64];
        OBJ_obj2txt(oid, sizeof(oid), gn->d.otherName->type_id, 1);
        MW_ENSURE(strcmp(oid, "1.3.6.1.4.1.57264.1.7") == 0 &&
                      gn->d.otherName->value->type == V_ASN1_UTF8STRING,
                  MW_E_VERIFY, "signing certificate SAN is an unknown otherName %s", oid);
        s = gn->d.otherName->value->value.utf8string;
    }
    MW_ENSURE(s != NULL, MW_E_VERIFY,
              "signing certificate SAN is not a URI, email or Fulcio username");
    return mw_vcopy(out, cap, (const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s),
                    "certificate SAN");
}

static mw_result match(const char *what, const char *have, const char *exact, const char *re)
{
    if (exact != NULL)
        MW_ENSURE(strcmp(have, exact) == 0, MW_E_VERIFY,
                  "certificate %s \"%s\" is not the expected \"%s\"", what, have, exact);
    if (re != NULL) {
        MW_DEFER_BUF struct mw_dynbuf anchored;
        mw_dynbuf_init(&anchored, 8192);
        /* Anchored at both ends: a regex "https://github.com/acme/.*" must not match a prefix. */
        MW_GUARD(mw_dynbuf_addf(&anchored, "^(%s)$", re));
        regex_t rx;
        int rc = regcomp(&rx, mw_dynbuf_cstr(&anchored), REG_EXTENDED | REG_NOSUB);
        MW_ENSURE(rc == 0, MW_E_INPUT, "%s regex \"%s\" does not compile", what, re);
        rc = regexec(&rx, have, 0, NULL, 0);
        regfree(&rx);
        MW_ENSURE(rc == 0, MW_E_VERIFY, "certificate %s \"%s\" does not match /%s/", what, have,
                  re);
    }
    return MW_SUCCESS;
}

mw_result mw_verify_identity(X509 *leaf, const struct mw_verify_policy *p,
                             struct mw_verify_result *out)
{
    /* Fulcio profile: a leaf for code signing only. */
    X509_check_purpose(leaf, -1, 0);
    uint32_t xf = X509_get_extension_flags(leaf);
    MW_ENSURE(!(xf & EXFLAG_CRITICAL), MW_E_VERIFY,
              "signing certificate has an unknown critical extension");
    MW_ENSURE(X509_check_ca(leaf) == 0, MW_E_VERIFY, "signing certificate is a CA certificate");
    MW_ENSURE((X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) != 0, MW_E_VERIFY,
              "signing certificate key usage lacks digitalSignature");
    MW_ENSURE((xf & EXFLAG_XKUSAGE) && (X509_get_extended_key_usage(leaf) & XKU_CODE_SIGN),
              MW_E_VERIFY, "signing certificate extended key usage lacks codeSigning");

    MW_GUARD(leaf_san(leaf, out->identity, sizeof(out->identity)));
    bool found;
    MW_GUARD(fulcio_ext(leaf, 8, true, out->issuer, sizeof(out->issuer), &found));
    if (!found)
        MW_GUARD(fulcio_ext(leaf, 1, false, out->issuer, sizeof(out->issuer), &found));
    MW_GUARD(fulcio_ext(leaf, 9, true, out->build_signer, sizeof(out->build_signer), &found));
    MW_GUARD(fulcio_ext(leaf, 12, true, out->source_repo, sizeof(out->source_repo), &found));
    MW_GUARD(fulcio_ext(leaf, 14, true, out->source_ref, sizeof(out->source_ref), &found));

    MW_ENSURE(p->identity != NULL || p->identity_regex != NULL, MW_E_INPUT,
              "keyless verification needs an expected identity");
    MW_ENSURE(p->issuer != NULL || p->issuer_regex != NULL, MW_E_INPUT,
              "keyless verification needs an expected OIDC issuer");
    MW_GUARD(match("identity", out->identity, p->identity, p->identity_regex));
    MW_ENSURE(out->issuer[0] != '\0', MW_E_VERIFY,
              "signing certificate has no OIDC issuer extension");
    MW_GUARD(match("OIDC issuer", out->issuer, p->issuer, p->issuer_regex));
    if (p->source_repo != NULL)
        MW_GUARD(match("source repository", out->source_repo, p->source_repo, NULL));
    if (p->source_ref != NULL)
        MW_GUARD(match("source ref", out->source_ref, p->source_ref, NULL));
    if (p->build_signer != NULL)
        MW_GUARD(match("build signer URI", out->build_signer, p->build_signer, NULL));
    return MW_SUCCESS;
}
