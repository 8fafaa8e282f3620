/*
 * X.509-SVIDs (X509-SVID.md): parse a leaf, its signing certificates and its
 * private key; check the shape rules of §2-§5.2; verify the chain (§5.1)
 * against the X.509 authorities of the SVID's trust domain bundle.
 */
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>

#include "base/mw_ossl.h"
#include "spiffe/spiffe_internal.h"

struct mw_x509svid {
    STACK_OF(X509) * chain; /* leaf first */
    EVP_PKEY *key;          /* NULL when none was given */
    struct mw_spiffe_id id;
};

void mw_x509svid_free(struct mw_x509svid *svid)
{
    if (svid == NULL)
        return;
    sk_X509_pop_free(svid->chain, X509_free);
    EVP_PKEY_free(svid->key);
    free(svid);
}

const struct mw_spiffe_id *mw_x509svid_id(const struct mw_x509svid *svid)
{
    return &svid->id;
}

size_t mw_x509svid_chain_len(const struct mw_x509svid *svid)
{
    return (size_t)sk_X509_num(svid->chain);
}

bool mw_x509svid_has_key(const struct mw_x509svid *svid)
{
    return svid->key != NULL;
}

mw_result mw_x509svid_cert_info(const struct mw_x509svid *svid, size_t i, struct mw_cert_info *out)
{
    MW_ENSURE(i < mw_x509svid_chain_len(svid), MW_E_INPUT, "no certificate %zu in the chain", i);
    return mw_spiffe_cert_info(sk_X509_value(svid->chain, (int)i), out);
}

mw_result mw_x509svid_cert_der(const struct mw_x509svid *svid, size_t i, struct mw_dynbuf *out)
{
    MW_ENSURE(i < mw_x509svid_chain_len(svid), MW_E_INPUT, "no certificate %zu in the chain", i);
    unsigned char *der = NULL;
    int n = i2d_X509(sk_X509_value(svid->chain, (int)i), &der);
    MW_GUARD_OSSL(n > 0, MW_E_CRYPTO, "encoding certificate %zu", i);
    mw_result r = mw_dynbuf_add(out, der, (size_t)n);
    OPENSSL_free(der);
    return r;
}

static bool is_key_label(const char *name)
{
    return strcmp(name, "PRIVATE KEY") == 0 || strcmp(name, "RSA PRIVATE KEY") == 0 ||
           strcmp(name, "EC PRIVATE KEY") == 0;
}

static mw_result mem_bio(mw_slice s, BIO **out)
{
    MW_ENSURE(s.n <= INT_MAX, MW_E_LIMIT, "input of %zu bytes is too large", s.n);
    *out = BIO_new_mem_buf(s.p, (int)s.n);
    MW_ENSURE(*out != NULL, MW_E_NOMEM, "out of memory");
    return MW_SUCCESS;
}

static mw_result push_cert(STACK_OF(X509) * certs, const unsigned char *der, size_t n, size_t index,
                           size_t *used)
{
    MW_ENSURE(sk_X509_num(certs) < MW_X509SVID_MAX_CHAIN, MW_E_LIMIT,
              "more than %d certificates in the chain", MW_X509SVID_MAX_CHAIN);
    const unsigned char *p = der;
    long len = n > LONG_MAX ? LONG_MAX : (long)n;
    X509 *cert = d2i_X509(NULL, &p, len);
    if (cert == NULL) {
        mw_error_openssl(MW_E_INPUT, "malformed certificate %zu", index + 1);
        return MW_FAILURE;
    }
    *used = (size_t)(p - der);
    if (sk_X509_push(certs, cert) <= 0) {
        X509_free(cert);
        MW_BAIL(MW_E_NOMEM, "out of memory");
    }
    return MW_SUCCESS;
}

/* CERTIFICATE blocks, in order; other blocks (keys) are skipped. */
static mw_result certs_from_pem(mw_slice text, STACK_OF(X509) * certs)
{
    MW_ENSURE(mw_pem_present(text), MW_E_INPUT, "certificate is not PEM");
    MW_DEFER(BIO) BIO *in = NULL;
    MW_GUARD(mem_bio(text, &in));
    for (;;) {
        struct mw_pem_block blk;
        int got = 0;
        MW_GUARD(mw_pem_next(in, &blk, &got));
        if (!got)
            break;
        mw_result r = MW_SUCCESS;
        if (strcmp(blk.name, "CERTIFICATE") == 0) {
            size_t used = 0;
            size_t idx = (size_t)sk_X509_num(certs);
            r = push_cert(certs, blk.data, (size_t)blk.len, idx, &used);
            if (mw_ok(r) && used != (size_t)blk.len) {
                mw_error_set(MW_E_INPUT, "malformed certificate %zu: %zu bytes after its end",
                             idx + 1, (size_t)blk.len - used);
                r = MW_FAILURE;
            }
        } else if (is_key_label(blk.name) || strcmp(blk.name, "ENCRYPTED PRIVATE KEY") == 0) {
            OPENSSL_cleanse(blk.data, (size_t)blk.len);
        }
        mw_pem_block_free(&blk);
        MW_GUARD(r);
    }
    MW_ENSURE(sk_X509_num(certs) > 0, MW_E_INPUT, "no certificates found");
    return MW_SUCCESS;
}

static mw_result certs_from_der(mw_slice der, STACK_OF(X509) * certs)
{
    MW_ENSURE(der.n > 0, MW_E_INPUT, "no certificates found");
    size_t off = 0;
    while (off < der.n) {
        size_t used = 0;
        MW_GUARD(push_cert(certs, der.p + off, der.n - off, (size_t)sk_X509_num(certs), &used));
        off += used;
    }
    return MW_SUCCESS;
}

static mw_result key_from_der(const unsigned char *der, size_t n, EVP_PKEY **out)
{
    const unsigned char *p = der;
    MW_ENSURE(n <= LONG_MAX, MW_E_LIMIT, "private key too large");
    /* d2i_AutoPrivateKey takes PKCS#8 and the traditional RSA/EC forms. */
    EVP_PKEY *key = d2i_AutoPrivateKey(NULL, &p, (long)n);
    if (key == NULL) {
        mw_error_openssl(MW_E_INPUT, "corrupt private key");
        return MW_FAILURE;
    }
    if ((size_t)(p - der) != n) {
        EVP_PKEY_free(key);
        MW_BAIL(MW_E_INPUT, "corrupt private key: %zu bytes after its end", n - (size_t)(p - der));
    }
    *out = key;
    return MW_SUCCESS;
}

/* Exactly one private key block; certificates are skipped. */
static mw_result key_from_pem(mw_slice text, EVP_PKEY **out)
{
    MW_ENSURE(mw_pem_present(text), MW_E_INPUT, "key is not PEM");
    MW_DEFER(BIO) BIO *in = NULL;
    MW_GUARD(mem_bio(text, &in));
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = NULL;
    size_t keys = 0;
    for (;;) {
        struct mw_pem_block blk;
        int got = 0;
        MW_GUARD(mw_pem_next(in, &blk, &got));
        if (!got)
            break;
        mw_result r = MW_SUCCESS;
        if (is_key_label(blk.name)) {
            keys++;
            if (keys == 1)
                r = key_from_der(blk.data, (size_t)blk.len, &key);
            OPENSSL_cleanse(blk.data, (size_t)blk.len);
        } else if (strcmp(blk.name, "ENCRYPTED PRIVATE KEY") == 0) {
            OPENSSL_cleanse(blk.data, (size_t)blk.len);
            mw_error_set(MW_E_UNSUPPORTED, "encrypted private keys are not supported");
            r = MW_FAILURE;
        }
        mw_pem_block_free(&blk);
        MW_GUARD(r);
    }
    MW_ENSURE(keys > 0, MW_E_INPUT, "no private key found");
    MW_ENSURE(keys == 1, MW_E_INPUT, "%zu private keys found, want 1", keys);
    *out = key;
    key = NULL;
    return MW_SUCCESS;
}

static bool has_ca_flag(X509 *cert)
{
    return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
}

/*
 * The leaf's SPIFFE ID: X509-SVID §2 "An X.509 SVID MUST contain exactly one
 * URI SAN", §5.2 "SVIDs containing more than one URI SAN MUST be rejected".
 */
static mw_result leaf_id(X509 *leaf, struct mw_spiffe_id *id)
{
    int crit = 0;
    /* No index argument: then OpenSSL reports a repeated extension as crit == -2. */
    MW_DEFER(GENERAL_NAMES)
    GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
    MW_ENSURE(sans != NULL || crit == -1, MW_E_INPUT,
              crit == -2 ? "certificate has more than one subjectAltName extension"
                         : "certificate has a malformed subjectAltName extension");
    int uris = 0;
    const ASN1_IA5STRING *uri = NULL;
    for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type == GEN_URI) {
            uris++;
            uri = gn->d.uniformResourceIdentifier;
        }
    }
    MW_ENSURE(uris > 0, MW_E_INPUT, "certificate contains no URI SAN");
    MW_ENSURE(uris == 1, MW_E_INPUT, "certificate has %d URI SANs, want 1", uris);
    mw_slice s = mw_slice_make(ASN1_STRING_get0_data(uri), (size_t)ASN1_STRING_length(uri));
    if (mw_failed(mw_spiffe_id_parse(s, id, NULL))) {
        mw_error_prefix("leaf URI SAN: ");
        return MW_FAILURE;
    }
    /* §3.1: a leaf's SPIFFE ID has a non-root path; the root names the trust domain. */
    MW_ENSURE(id->path[0] != '\0', MW_E_INPUT,
              "leaf SPIFFE ID spiffe://%s has no path (X509-SVID §3.1 wants a non-root path)",
              id->td);
    return MW_SUCCESS;
}

/* X509-SVID §4.1, §4.3, §5.2: the rules that keep a leaf from acting as a CA. */
static mw_result check_leaf(X509 *leaf)
{
    MW_ENSURE(!has_ca_flag(leaf), MW_E_INPUT, "leaf certificate must not have CA flag set");
    uint32_t ku = X509_get_key_usage(leaf);
    MW_ENSURE((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) != 0, MW_E_INPUT,
              "leaf has no keyUsage extension, want digitalSignature");
    MW_ENSURE((ku & KU_DIGITAL_SIGNATURE) != 0, MW_E_INPUT,
              "leaf must have digitalSignature key usage");
    MW_ENSURE((ku & KU_KEY_CERT_SIGN) == 0, MW_E_INPUT, "leaf must not have keyCertSign key usage");
    MW_ENSURE((ku & KU_CRL_SIGN) == 0, MW_E_INPUT, "leaf must not have cRLSign key usage");
    return MW_SUCCESS;
}

/* X509-SVID §3.2, §4.3: signing certificates are CAs that may sign certificates. */
static mw_result check_signer(X509 *cert, size_t pos)
{
    MW_ENSURE(has_ca_flag(cert), MW_E_INPUT, "signing certificate %zu must have CA flag set", pos);
    MW_ENSURE((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) != 0 &&
                  (X509_get_key_usage(cert) & KU_KEY_CERT_SIGN) != 0,
              MW_E_INPUT, "signing certificate %zu must have keyCertSign key usage", pos);
    return MW_SUCCESS;
}

/* Takes ownership of certs and key whatever the outcome. */
static mw_result finish(STACK_OF(X509) * certs_in, EVP_PKEY *key_in, struct mw_x509svid **out)
{
    MW_DEFER_X509_STACK STACK_OF(X509) *certs = certs_in;
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = key_in;
    struct mw_spiffe_id id;
    X509 *leaf = sk_X509_value(certs, 0);

    for (int i = 0; i < sk_X509_num(certs); i++) {
        /* OpenSSL marks certificates with duplicate or undecodable extensions. */
        MW_ENSURE((X509_get_extension_flags(sk_X509_value(certs, i)) & EXFLAG_INVALID) == 0,
                  MW_E_INPUT, "certificate %d has invalid or duplicate extensions", i + 1);
        MW_ENSURE(X509_get0_pubkey(sk_X509_value(certs, i)) != NULL, MW_E_INPUT,
                  "certificate %d has an unreadable public key", i + 1);
    }
    MW_GUARD(leaf_id(leaf, &id));
    MW_GUARD(check_leaf(leaf));
    for (int i = 1; i < sk_X509_num(certs); i++)
        MW_GUARD(check_signer(sk_X509_value(certs, i), (size_t)i));
    if (key != NULL) {
        ERR_clear_error();
        MW_ENSURE(X509_check_private_key(leaf, key) == 1, MW_E_INPUT,
                  "leaf does not match private key");
        ERR_clear_error();
    }

    struct mw_x509svid *svid = calloc(1, sizeof(*svid));
    MW_ENSURE(svid != NULL, MW_E_NOMEM, "out of memory");
    svid->chain = certs;
    svid->key = key;
    svid->id = id;
    certs = NULL;
    key = NULL;
    *out = svid;
    return MW_SUCCESS;
}

static mw_result new_stack(STACK_OF(X509) * *out)
{
    *out = sk_X509_new_null();
    MW_ENSURE(*out != NULL, MW_E_NOMEM, "out of memory");
    return MW_SUCCESS;
}

mw_result mw_x509svid_parse_pem(mw_slice certs_pem, mw_slice key_pem, struct mw_x509svid **out)
{
    MW_DEFER_X509_STACK STACK_OF(X509) *certs = NULL;
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = NULL;
    MW_GUARD(new_stack(&certs));
    MW_GUARD(certs_from_pem(certs_pem, certs));
    if (key_pem.p != NULL)
        MW_GUARD(key_from_pem(key_pem, &key));
    STACK_OF(X509) *c = certs;
    EVP_PKEY *k = key;
    certs = NULL;
    key = NULL;
    return finish(c, k, out);
}

mw_result mw_x509svid_parse_der(mw_slice certs_der, mw_slice key_der, struct mw_x509svid **out)
{
    MW_DEFER_X509_STACK STACK_OF(X509) *certs = NULL;
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = NULL;
    MW_GUARD(new_stack(&certs));
    MW_GUARD(certs_from_der(certs_der, certs));
    if (key_der.p != NULL)
        MW_GUARD(key_from_der(key_der.p, key_der.n, &key));
    STACK_OF(X509) *c = certs;
    EVP_PKEY *k = key;
    certs = NULL;
    key = NULL;
    return finish(c, k, out);
}

static mw_result load_files(const char *cert_path, const char *key_path, struct mw_dynbuf *cbuf,
                            struct mw_dynbuf *kbuf, const char **fault_path,
                            struct mw_x509svid **out)
{
    *fault_path = NULL;
    MW_GUARD(mw_file_read(cert_path, MW_SPIFFE_FILE_MAX, cbuf));
    *fault_path = cert_path;
    MW_DEFER_X509_STACK STACK_OF(X509) *certs = NULL;
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = NULL;
    MW_GUARD(new_stack(&certs));
    mw_slice cs = mw_dynbuf_slice(cbuf);
    if (mw_pem_present(cs))
        MW_GUARD(certs_from_pem(cs, certs));
    else
        MW_GUARD(certs_from_der(cs, certs));
    if (key_path != NULL) {
        /* STYLE.md "Secrets": a key others can read is already lost; refuse it. */
        *fault_path = NULL;
        MW_GUARD(mw_file_check_private(key_path));
        MW_GUARD(mw_file_read(key_path, MW_SPIFFE_FILE_MAX, kbuf));
        *fault_path = key_path;
        mw_slice ks = mw_dynbuf_slice(kbuf);
        if (mw_pem_present(ks)) {
            MW_GUARD(key_from_pem(ks, &key));
        } else {
            mw_result r = key_from_der(ks.p, ks.n, &key);
            if (mw_failed(r)) {
                mw_error_set(MW_E_INPUT, "key is neither PEM nor a DER private key");
                return MW_FAILURE;
            }
        }
    }
    *fault_path = cert_path;
    STACK_OF(X509) *c = certs;
    EVP_PKEY *k = key;
    certs = NULL;
    key = NULL;
    return finish(c, k, out);
}

mw_result mw_x509svid_load_files(const char *cert_path, const char *key_path,
                                 struct mw_x509svid **out)
{
    struct mw_dynbuf cbuf, kbuf;
    mw_dynbuf_init_secure(&cbuf, MW_SPIFFE_FILE_MAX); /* may hold a key too */
    mw_dynbuf_init_secure(&kbuf, MW_SPIFFE_FILE_MAX);
    const char *fault_path = cert_path;
    mw_result r = load_files(cert_path, key_path, &cbuf, &kbuf, &fault_path, out);
    /* File errors name their file already; parse errors get the file in front. */
    if (mw_failed(r) && fault_path != NULL)
        mw_error_prefix("%s: ", fault_path);
    mw_dynbuf_free(&cbuf);
    mw_dynbuf_free(&kbuf);
    return r;
}

static bool time_error(int err)
{
    return err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID;
}

mw_result mw_x509svid_verify(const struct mw_x509svid *svid, const struct mw_bundle *bundle,
                             const struct mw_clock *clock)
{
    const char *btd = mw_bundle_td(bundle);
    /*
     * SPIFFE_Trust_Domain_and_Bundle §6.4: authorities of one trust domain
     * must not vouch for IDs of another, even when roots are shared.
     */
    MW_ENSURE(btd[0] == '\0' || strcmp(btd, svid->id.td) == 0, MW_E_VERIFY,
              "SVID is in trust domain %s, but the bundle is for %s", svid->id.td, btd);
    MW_ENSURE(sk_X509_num(bundle->x509) > 0, MW_E_VERIFY, "bundle for %s has no X.509 authorities",
              btd[0] ? btd : svid->id.td);

    MW_DEFER(X509_STORE) X509_STORE *store = X509_STORE_new();
    MW_ENSURE(store != NULL, MW_E_NOMEM, "out of memory");
    for (int i = 0; i < sk_X509_num(bundle->x509); i++)
        MW_GUARD_OSSL(X509_STORE_add_cert(store, sk_X509_value(bundle->x509, i)), MW_E_CRYPTO,
                      "adding bundle certificate %d", i + 1);

    MW_DEFER_X509_STACK STACK_OF(X509) *untrusted = sk_X509_new_null();
    MW_ENSURE(untrusted != NULL, MW_E_NOMEM, "out of memory");
    for (int i = 1; i < sk_X509_num(svid->chain); i++) {
        X509 *c = sk_X509_value(svid->chain, i);
        MW_ENSURE(X509_up_ref(c) == 1, MW_E_CRYPTO, "X509_up_ref failed");
        if (sk_X509_push(untrusted, c) <= 0) {
            X509_free(c);
            MW_BAIL(MW_E_NOMEM, "out of memory");
        }
    }

    X509 *leaf = sk_X509_value(svid->chain, 0);
    MW_DEFER(X509_STORE_CTX) X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    MW_ENSURE(ctx != NULL, MW_E_NOMEM, "out of memory");
    MW_GUARD_OSSL(X509_STORE_CTX_init(ctx, store, leaf, untrusted), MW_E_CRYPTO,
                  "X509_STORE_CTX_init");
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, (time_t)mw_clock_now(clock));
    /*
     * A SPIFFE bundle is a set of trust anchors (X509-SVID §6.2: "the union of
     * CA certificates"); they need not be self-signed, so a chain may end at
     * any of them.
     */
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);

    ERR_clear_error();
    int ok = X509_verify_cert(ctx);
    if (ok == 1) {
        ERR_clear_error();
        return MW_SUCCESS;
    }
    int err = X509_STORE_CTX_get_error(ctx);
    int depth = X509_STORE_CTX_get_error_depth(ctx);
    X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
    ERR_clear_error();
    if (time_error(err) && bad != NULL) {
        struct mw_cert_info info;
        char when[32], now[32];
        MW_GUARD(mw_spiffe_cert_info(bad, &info));
        mw_time_format(mw_clock_now(clock), now, sizeof(now));
        if (err == X509_V_ERR_CERT_HAS_EXPIRED) {
            mw_time_format(info.not_after, when, sizeof(when));
            MW_BAIL(MW_E_EXPIRED, "certificate at depth %d expired at %s (now %s)", depth, when,
                    now);
        }
        mw_time_format(info.not_before, when, sizeof(when));
        MW_BAIL(MW_E_EXPIRED, "certificate at depth %d is not valid until %s (now %s)", depth, when,
                now);
    }
    MW_BAIL(MW_E_VERIFY, "chain does not verify against the bundle for %s: %s (depth %d)",
            btd[0] ? btd : svid->id.td, X509_verify_cert_error_string(err), depth);
}
