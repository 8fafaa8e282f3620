/*
 * trusted_root.json (dev.sigstore.trustroot.v1.TrustedRoot, protobuf-specs
 * protos/sigstore_trustroot.proto). Log IDs are taken as declared: Rekor v1
 * and CT logs use SHA-256 of the key's SPKI, but Rekor v2 logs declare the
 * ID their entries carry, which is not that hash.
 */
#include <string.h>

#include <openssl/sha.h>

#include <meshward/conf.h>

#include "verify/verify_internal.h"

static const char *const trust_root_media_types[] = {
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    "application/vnd.dev.sigstore.trustedroot.v0.2+json",
};

static mw_result parse_validity(json_t *parent, const char *what, struct mw_validity *out)
{
    json_t *vf = json_object_get(parent, "validFor");
    /* A window without a start would make the key valid since forever. */
    MW_ENSURE(json_is_object(vf), MW_E_INPUT, "%s: missing \"validFor\"", what);
    const char *start, *end;
    json_t *endv = json_object_get(vf, "end");
    MW_GUARD(mw_vj_str(vf, "start", what, true, &start));
    MW_GUARD(mw_parse_rfc3339(start, &out->start));
    out->has_end = false;
    if (endv != NULL && !json_is_null(endv)) {
        MW_GUARD(mw_vj_str(vf, "end", what, true, &end));
        MW_GUARD(mw_parse_rfc3339(end, &out->end));
        MW_ENSURE(out->end >= out->start, MW_E_INPUT, "%s: validity ends before it starts", what);
        out->has_end = true;
    }
    return MW_SUCCESS;
}

/* host[:port] of an http(s) URL, or the text itself. */
static mw_result url_host(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    p = p != NULL ? p + 3 : url;
    size_t n = strcspn(p, "/");
    return mw_vcopy(out, cap, p, n, "log URL host");
}

static mw_result ed25519_note_verifier(const char *name, EVP_PKEY *key,
                                       struct mw_note_verifier **out)
{
    uint8_t pub[32];
    size_t publen = sizeof(pub);
    MW_GUARD_OSSL(EVP_PKEY_get_raw_public_key(key, pub, &publen), MW_E_INPUT,
                  "Ed25519 log key unreadable");
    /* C2SP signed-note: key ID = SHA-256(name || "\n" || 0x01 || key)[:4]. */
    uint8_t md[32];
    MW_DEFER_BUF struct mw_dynbuf in;
    mw_dynbuf_init(&in, 1024);
    MW_GUARD(mw_dynbuf_add_cstr(&in, name));
    MW_GUARD(mw_dynbuf_add(&in, "\n\x01", 2));
    MW_GUARD(mw_dynbuf_add(&in, pub, publen));
    SHA256(in.p, in.n, md);
    uint8_t raw[33];
    raw[0] = 0x01;
    memcpy(raw + 1, pub, 32);
    MW_DEFER_BUF struct mw_dynbuf vkey;
    mw_dynbuf_init(&vkey, 1024);
    MW_GUARD(mw_dynbuf_addf(&vkey, "%s+%02x%02x%02x%02x+", name, md[0], md[1], md[2], md[3]));
    MW_GUARD(mw_b64_encode(mw_slice_make(raw, sizeof(raw)), MW_B64_STD, &vkey));
    return mw_note_verifier_new(mw_dynbuf_slice(&vkey), out);
}

static mw_result parse_log(json_t *j, size_t i, const char *kind, bool tlog, struct mw_tr_log *log)
{
    char what[64];
    snprintf(what, sizeof(what), "%s[%zu]", kind, i);
    MW_ENSURE(json_is_object(j), MW_E_INPUT, "%s is not an object", what);
    const char *url, *details;
    MW_GUARD(mw_vj_str(j, "baseUrl", what, true, &url));
    MW_GUARD(mw_vcopy(log->base_url, sizeof(log->base_url), url, strlen(url), "baseUrl"));
    MW_GUARD(url_host(url, log->name, sizeof(log->name)));
    const char *halg;
    MW_GUARD(mw_vj_str(j, "hashAlgorithm", what, false, &halg));
    MW_ENSURE(halg == NULL || strcmp(halg, "SHA2_256") == 0, MW_E_UNSUPPORTED,
              "%s: hashAlgorithm %s is not supported (want SHA2_256)", what, halg);

    json_t *pk = json_object_get(j, "publicKey");
    MW_ENSURE(json_is_object(pk), MW_E_INPUT, "%s: missing \"publicKey\"", what);
    MW_DEFER_BUF struct mw_dynbuf der;
    mw_dynbuf_init(&der, 64 << 10);
    MW_GUARD(mw_vj_b64(pk, "rawBytes", what, true, &der, NULL));
    MW_GUARD(mw_vj_str(pk, "keyDetails", what, true, &details));
    MW_GUARD(parse_validity(pk, what, &log->valid));
    const unsigned char *p = der.p;
    if (strncmp(details, "PKCS1_RSA_", 10) == 0)
        log->key = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)der.n); /* RFC 8017 RSAPublicKey */
    else
        log->key = d2i_PUBKEY(NULL, &p, (long)der.n);
    if (log->key == NULL || p != der.p + der.n) {
        mw_error_openssl(MW_E_INPUT, "%s: publicKey.rawBytes is not a DER %s", what,
                         strncmp(details, "PKCS1_RSA_", 10) == 0 ? "RSAPublicKey"
                                                                 : "SubjectPublicKeyInfo");
        return MW_FAILURE;
    }
    int id = EVP_PKEY_get_base_id(log->key);
    if (strcmp(details, "PKIX_ECDSA_P256_SHA_256") == 0)
        log->details = MW_KEY_ECDSA_P256;
    else if (strcmp(details, "PKIX_ECDSA_P384_SHA_384") == 0)
        log->details = MW_KEY_ECDSA_P384;
    else if (strcmp(details, "PKIX_ED25519") == 0)
        log->details = MW_KEY_ED25519;
    else if (strncmp(details, "PKIX_RSA_", 9) == 0 || strncmp(details, "PKCS1_RSA_", 10) == 0)
        log->details = MW_KEY_RSA;
    else
        log->details = MW_KEY_OTHER;
    MW_ENSURE(!(log->details == MW_KEY_ED25519 && id != EVP_PKEY_ED25519) &&
                  !((log->details == MW_KEY_ECDSA_P256 || log->details == MW_KEY_ECDSA_P384) &&
                    id != EVP_PKEY_EC),
              MW_E_INPUT, "%s: keyDetails %s does not match the key", what, details);

    json_t *lid = json_object_get(j, "logId");
    MW_ENSURE(json_is_object(lid), MW_E_INPUT, "%s: missing \"logId\"", what);
    MW_DEFER_BUF struct mw_dynbuf idb;
    mw_dynbuf_init(&idb, 64);
    MW_GUARD(mw_vj_b64(lid, "keyId", what, true, &idb, NULL));
    MW_ENSURE(idb.n == 32, MW_E_INPUT, "%s: logId.keyId is %zu bytes, want 32", what, idb.n);
    memcpy(log->log_id, idb.p, 32);

    if (tlog) {
        if (log->details == MW_KEY_ED25519)
            MW_GUARD(ed25519_note_verifier(log->name, log->key, &log->note));
        else if (log->details == MW_KEY_ECDSA_P256 || log->details == MW_KEY_ECDSA_P384)
            MW_GUARD(mw_note_verifier_new_ecdsa(log->name, mw_dynbuf_slice(&der), &log->note));
    }
    return MW_SUCCESS;
}

static bool self_signed(X509 *c)
{
    return X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(c)) == 0;
}

static mw_result parse_ca(json_t *j, size_t i, const char *kind, bool tsa, struct mw_tr_ca *ca)
{
    char what[64];
    snprintf(what, sizeof(what), "%s[%zu]", kind, i);
    MW_ENSURE(json_is_object(j), MW_E_INPUT, "%s is not an object", what);
    const char *uri;
    MW_GUARD(mw_vj_str(j, "uri", what, false, &uri));
    if (uri != NULL)
        MW_GUARD(mw_vcopy(ca->uri, sizeof(ca->uri), uri, strlen(uri), "uri"));
    MW_GUARD(parse_validity(j, what, &ca->valid));
    json_t *chain = json_object_get(j, "certChain");
    json_t *certs = json_is_object(chain) ? json_object_get(chain, "certificates") : NULL;
    MW_ENSURE(json_is_array(certs) && json_array_size(certs) > 0, MW_E_INPUT,
              "%s: certChain.certificates is missing or empty", what);
    MW_ENSURE(json_array_size(certs) <= MW_TR_MAX_CHAIN, MW_E_LIMIT,
              "%s: %zu certificates in the chain, at most %d", what, json_array_size(certs),
              MW_TR_MAX_CHAIN);
    ca->chain = sk_X509_new_null();
    MW_ENSURE(ca->chain != NULL, MW_E_NOMEM, "out of memory");
    MW_DEFER_BUF struct mw_dynbuf der;
    mw_dynbuf_init(&der, 64 << 10);
    for (size_t k = 0; k < json_array_size(certs); k++) {
        json_t *c = json_array_get(certs, k);
        MW_ENSURE(json_is_object(c), MW_E_INPUT, "%s: certificate %zu is not an object", what, k);
        MW_GUARD(mw_vj_b64(c, "rawBytes", what, true, &der, NULL));
        const unsigned char *p = der.p;
        X509 *x = d2i_X509(NULL, &p, (long)der.n);
        if (x == NULL || p != der.p + der.n) {
            X509_free(x);
            mw_error_openssl(MW_E_INPUT, "%s: certificate %zu is not DER X.509", what, k);
            return MW_FAILURE;
        }
        if (!sk_X509_push(ca->chain, x)) {
            X509_free(x);
            MW_BAIL(MW_E_NOMEM, "out of memory");
        }
    }
    /*
     * Check the chain's own signatures once, here, so that verifying a leaf
     * costs one signature check (P-384 is ~0.6 ms; anchors-supply-chain §0).
     */
    int n = sk_X509_num(ca->chain);
    for (int k = 0; k < n; k++) {
        X509 *c = sk_X509_value(ca->chain, k);
        X509 *up = k + 1 < n ? sk_X509_value(ca->chain, k + 1) : c;
        /* A TSA chain starts with the TSA's own (leaf) certificate. */
        MW_ENSURE((tsa && k == 0) || X509_check_ca(c) > 0, MW_E_INPUT,
                  "%s: certificate %d of the chain is not a CA certificate", what, k);
        if (k + 1 == n && !self_signed(c))
            continue; /* a chain that stops below its root: the last cert is the anchor */
        EVP_PKEY *upk = X509_get0_pubkey(up);
        MW_ENSURE(upk != NULL && X509_verify(c, upk) == 1, MW_E_INPUT,
                  "%s: certificate %d of the chain is not signed by the next one", what, k);
    }
    return MW_SUCCESS;
}

static mw_result parse_list(json_t *root, const char *key, bool required, size_t *count,
                            json_t **arr)
{
    json_t *a = json_object_get(root, key);
    *arr = NULL;
    *count = 0;
    if (a == NULL) {
        MW_ENSURE(!required, MW_E_INPUT, "trusted root: missing \"%s\"", key);
        return MW_SUCCESS;
    }
    MW_ENSURE(json_is_array(a), MW_E_INPUT, "trusted root: \"%s\" is not an array", key);
    MW_ENSURE(json_array_size(a) <= MW_TR_MAX_ITEMS, MW_E_LIMIT, "trusted root: %zu %s, at most %d",
              json_array_size(a), key, MW_TR_MAX_ITEMS);
    *arr = a;
    *count = json_array_size(a);
    return MW_SUCCESS;
}

static mw_result load(struct mw_trust_root *tr, json_t *root)
{
    MW_ENSURE(json_is_object(root), MW_E_INPUT, "trusted root is not a JSON object");
    const char *mt;
    MW_GUARD(mw_vj_str(root, "mediaType", "trusted root", true, &mt));
    bool known = false;
    for (size_t i = 0; i < MW_ARRAY_LEN(trust_root_media_types); i++)
        known = known || strcmp(mt, trust_root_media_types[i]) == 0;
    MW_ENSURE(known, MW_E_UNSUPPORTED, "trusted root: unknown mediaType \"%.100s\"", mt);

    json_t *a;
    size_t n;
    MW_GUARD(parse_list(root, "tlogs", false, &n, &a));
    for (size_t i = 0; i < n; i++, tr->ntlogs++)
        MW_GUARD(parse_log(json_array_get(a, i), i, "tlogs", true, &tr->tlogs[i]));
    MW_GUARD(parse_list(root, "ctlogs", false, &n, &a));
    for (size_t i = 0; i < n; i++, tr->nctlogs++)
        MW_GUARD(parse_log(json_array_get(a, i), i, "ctlogs", false, &tr->ctlogs[i]));
    MW_GUARD(parse_list(root, "certificateAuthorities", false, &n, &a));
    for (size_t i = 0; i < n; i++, tr->ncas++)
        MW_GUARD(parse_ca(json_array_get(a, i), i, "certificateAuthorities", false, &tr->cas[i]));
    MW_GUARD(parse_list(root, "timestampAuthorities", false, &n, &a));
    for (size_t i = 0; i < n; i++, tr->ntsas++)
        MW_GUARD(parse_ca(json_array_get(a, i), i, "timestampAuthorities", true, &tr->tsas[i]));
    return MW_SUCCESS;
}

mw_result mw_trust_root_load(mw_slice json, const char *name, struct mw_trust_root **out)
{
    *out = NULL;
    struct mw_conf_limits lim = {.max_bytes = MW_TRUST_ROOT_MAX, .max_depth = 16};
    MW_DEFER_JSON json_t *root = NULL;
    MW_GUARD(mw_json_load(json, name, &lim, &root));
    struct mw_trust_root *tr = calloc(1, sizeof(*tr));
    MW_ENSURE(tr != NULL, MW_E_NOMEM, "out of memory");
    SHA256(json.p, json.n, tr->digest);
    /* Every piece is built in place, so a partial root frees like a whole one (callocated). */
    if (mw_failed(load(tr, root))) {
        mw_error_prefix("%s: ", name);
        mw_trust_root_free(tr);
        return MW_FAILURE;
    }
    *out = tr;
    return MW_SUCCESS;
}

mw_result mw_trust_root_load_file(const char *path, struct mw_trust_root **out)
{
    MW_DEFER_BUF struct mw_dynbuf b;
    mw_dynbuf_init(&b, MW_TRUST_ROOT_MAX);
    *out = NULL;
    MW_GUARD(mw_file_read(path, MW_TRUST_ROOT_MAX, &b));
    return mw_trust_root_load(mw_dynbuf_slice(&b), path, out);
}

static void free_log(struct mw_tr_log *l)
{
    EVP_PKEY_free(l->key);
    mw_note_verifier_free(l->note);
}

void mw_trust_root_free(struct mw_trust_root *tr)
{
    if (tr == NULL)
        return;
    /* The count lags one behind while an item is parsed; free that one too. */
    for (size_t i = 0; i <= tr->ntlogs && i < MW_TR_MAX_ITEMS; i++)
        free_log(&tr->tlogs[i]);
    for (size_t i = 0; i <= tr->nctlogs && i < MW_TR_MAX_ITEMS; i++)
        free_log(&tr->ctlogs[i]);
    for (size_t i = 0; i <= tr->ncas && i < MW_TR_MAX_ITEMS; i++)
        sk_X509_pop_free(tr->cas[i].chain, X509_free);
    for (size_t i = 0; i <= tr->ntsas && i < MW_TR_MAX_ITEMS; i++)
        sk_X509_pop_free(tr->tsas[i].chain, X509_free);
    free(tr);
}

void mw_trust_root_digest(const struct mw_trust_root *tr, uint8_t out[32])
{
    memcpy(out, tr->digest, 32);
}

void mw_trust_root_counts(const struct mw_trust_root *tr, struct mw_trust_root_counts *out)
{
    out->cas = tr->ncas;
    out->tlogs = tr->ntlogs;
    out->ctlogs = tr->nctlogs;
    out->tsas = tr->ntsas;
}

const struct mw_tr_log *mw_trust_root_tlog(const struct mw_trust_root *tr, mw_slice log_id)
{
    for (size_t i = 0; i < tr->ntlogs; i++)
        if (log_id.n == 32 && memcmp(tr->tlogs[i].log_id, log_id.p, 32) == 0)
            return &tr->tlogs[i];
    return NULL;
}
