/*
 * One bundle, verified in the order sigstore-python and sigstore-js share
 * (anchors-supply-chain.md §2): trusted times first, then the signing key,
 * then the signature. A failure anywhere fails the whole bundle.
 */
#include <string.h>

#include <openssl/pem.h>
#include <openssl/sha.h>

#include "verify/verify_internal.h"

#define MW_MAX_TIMES (MW_BUNDLE_MAX_ENTRIES + MW_BUNDLE_MAX_TIMESTAMPS)

mw_result mw_artifact_from_digest(const char *text, struct mw_artifact *out)
{
    memset(out, 0, sizeof(*out));
    MW_ENSURE(strncmp(text, "sha256:", 7) == 0, MW_E_INPUT,
              "artifact digest \"%.80s\" does not start with sha256:", text);
    MW_DEFER_BUF struct mw_dynbuf h;
    mw_dynbuf_init(&h, 64);
    if (mw_failed(mw_hex_decode(mw_slice_cstr(text + 7), &h)) || h.n != 32)
        MW_BAIL(MW_E_INPUT, "artifact digest \"%.80s\" is not sha256:<64 hex digits>", text);
    memcpy(out->sha256, h.p, 32);
    out->is_digest = true;
    return MW_SUCCESS;
}

void mw_artifact_from_bytes(mw_slice bytes, struct mw_artifact *out)
{
    memset(out, 0, sizeof(*out));
    out->bytes = bytes;
    SHA256(bytes.p, bytes.n, out->sha256);
}

/*
 * The key, and its DER when the PEM is a plain PUBLIC KEY block: the log
 * entry body compares against those bytes before decoding its own copy.
 */
static mw_result load_pem_key(mw_slice pem, EVP_PKEY **out, unsigned char **der, long *der_len)
{
    MW_DEFER(BIO) BIO *bio = BIO_new_mem_buf(pem.p, (int)pem.n);
    MW_ENSURE(bio != NULL, MW_E_NOMEM, "out of memory");
    *out = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (*out == NULL) {
        mw_error_openssl(MW_E_INPUT, "verification key is not a PEM public key");
        return MW_FAILURE;
    }
    MW_DEFER(BIO) BIO *raw = BIO_new_mem_buf(pem.p, (int)pem.n);
    char *name = NULL, *header = NULL;
    if (raw != NULL && PEM_read_bio(raw, &name, &header, der, der_len) == 1 &&
        strcmp(name, PEM_STRING_PUBLIC) != 0) {
        OPENSSL_free(*der);
        *der = NULL;
        *der_len = 0;
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    ERR_clear_error();
    return MW_SUCCESS;
}

static mw_result check_statement(const struct mw_sigstore_bundle *b, const struct mw_artifact *a,
                                 struct mw_verify_result *out)
{
    MW_ENSURE(strcmp(b->payload_type, "application/vnd.in-toto+json") == 0, MW_E_UNSUPPORTED,
              "DSSE payload type \"%s\" is not application/vnd.in-toto+json", b->payload_type);
    struct mw_intoto *st;
    MW_GUARD(mw_intoto_parse(mw_dynbuf_slice(&b->payload), &st));
    bool has = mw_intoto_has_sha256(st, a->sha256);
    struct mw_slsa slsa;
    mw_intoto_slsa(st, &slsa);
    mw_result r =
        mw_vcopy(out->predicate_type, sizeof(out->predicate_type), mw_intoto_predicate_type(st),
                 strlen(mw_intoto_predicate_type(st)), "predicateType");
    if (mw_ok(r) && slsa.builder_id != NULL)
        r = mw_vcopy(out->builder_id, sizeof(out->builder_id), slsa.builder_id,
                     strlen(slsa.builder_id), "builder id");
    if (mw_ok(r) && slsa.build_type != NULL)
        r = mw_vcopy(out->build_type, sizeof(out->build_type), slsa.build_type,
                     strlen(slsa.build_type), "build type");
    mw_intoto_free(st);
    MW_GUARD(r);
    MW_ENSURE(has, MW_E_VERIFY, "no subject of the in-toto statement has the artifact's sha256");
    return MW_SUCCESS;
}

static mw_result verify(const struct mw_trust_root *tr, const struct mw_sigstore_bundle *b,
                        const struct mw_artifact *a, const struct mw_verify_policy *p,
                        const struct mw_clock *now, struct mw_verify_result *out,
                        EVP_PKEY **owned_key, unsigned char **key_der, long *key_der_len)
{
    bool keyed = p->key_pem.n > 0;
    out->keyed = keyed;
    EVP_PKEY *key;
    X509 *leaf = NULL;
    if (keyed) {
        MW_ENSURE(b->material == MW_MATERIAL_PUBLIC_KEY, MW_E_VERIFY,
                  "verification with a key needs a bundle with publicKey material, this one "
                  "carries a certificate");
        MW_GUARD(load_pem_key(p->key_pem, owned_key, key_der, key_der_len));
        key = *owned_key;
    } else {
        MW_ENSURE(b->material != MW_MATERIAL_PUBLIC_KEY, MW_E_VERIFY,
                  "bundle is signed with a key (publicKey material); verify it with --key");
        leaf = sk_X509_value(b->certs, 0);
        key = X509_get0_pubkey(leaf);
        MW_ENSURE(key != NULL, MW_E_INPUT, "signing certificate key is unreadable");
    }

    struct mw_body_expect x = {.sig = mw_dynbuf_slice(&b->sig),
                               .cert = leaf,
                               .key = key,
                               .key_der = mw_slice_make(*key_der, (size_t)*key_der_len)};
    MW_DEFER_BUF struct mw_dynbuf pae;
    mw_dynbuf_init(&pae, MW_BUNDLE_MAX + 512);
    if (b->content == MW_CONTENT_MESSAGE_SIGNATURE) {
        MW_ENSURE(!b->has_digest || memcmp(b->digest.p, a->sha256, 32) == 0, MW_E_VERIFY,
                  "messageDigest in the bundle is not the artifact's sha256");
        memcpy(x.digest, a->sha256, 32);
    } else {
        x.dsse = true;
        out->dsse = true;
        MW_GUARD(mw_vcopy(out->payload_type, sizeof(out->payload_type), b->payload_type,
                          strlen(b->payload_type), "payloadType"));
        SHA256(b->payload.p, b->payload.n, x.payload_sha256);
        memcpy(out->payload_sha256, x.payload_sha256, 32);
        MW_GUARD(mw_dsse_pae(mw_slice_cstr(b->payload_type), mw_dynbuf_slice(&b->payload), &pae));
        SHA256(pae.p, pae.n, x.digest);
    }

    /* Step 0: trusted times. */
    int64_t times[MW_MAX_TIMES];
    size_t ntimes = 0;
    for (size_t i = 0; i < b->ntsrs; i++) {
        if (mw_failed(
                mw_verify_timestamp(tr, mw_dynbuf_slice(&b->tsrs[i]), x.sig, &times[ntimes]))) {
            mw_error_prefix("timestamp %zu: ", i);
            return MW_FAILURE;
        }
        ntimes++;
    }
    MW_ENSURE(b->nentries > 0, MW_E_VERIFY, "bundle has no transparency log entry");
    size_t ntsa_times = ntimes;
    bool entry_timed[MW_BUNDLE_MAX_ENTRIES];
    for (size_t i = 0; i < b->nentries; i++) {
        if (mw_failed(mw_verify_tlog_entry(tr, b, &b->entries[i], &x, &entry_timed[i]))) {
            mw_error_prefix("tlog entry %zu: ", i);
            return MW_FAILURE;
        }
        if (entry_timed[i])
            times[ntimes++] = b->entries[i].integrated_time;
        out->tlog_entries++;
    }
    /*
     * An entry without a signed timestamp (Rekor v2) is dated by the RFC 3161
     * timestamps; its log's key must have been valid then.
     */
    for (size_t i = 0; i < b->nentries; i++) {
        if (entry_timed[i])
            continue;
        const struct mw_tlog_entry *e = &b->entries[i];
        const struct mw_tr_log *log =
            mw_trust_root_tlog(tr, mw_slice_make(e->log_id, e->log_id_len));
        for (size_t k = 0; log != NULL && k < ntsa_times; k++) {
            char when[32];
            mw_time_format(times[k], when, sizeof(when));
            MW_ENSURE(mw_validity_has(&log->valid, times[k]), MW_E_EXPIRED,
                      "tlog entry %zu: log %s's key is not valid at the timestamp %s", i,
                      log->base_url, when);
        }
    }
    /* Rekor v2 has no integrated time: without a timestamp there is no trusted time. */
    MW_ENSURE(ntimes > 0, MW_E_VERIFY,
              "no verified time: the bundle has neither an RFC 3161 timestamp nor a signed "
              "entry timestamp");
    out->times_verified = ntimes;
    out->signed_at = times[0];
    for (size_t i = 1; i < ntimes; i++)
        out->signed_at = times[i] < out->signed_at ? times[i] : out->signed_at;

    /* Steps 1-3, 7: the certificate at every verified time, its SCT, the identity. */
    if (!keyed) {
        X509 *issuer = NULL;
        MW_GUARD(mw_verify_fulcio_chain(tr, leaf, times, ntimes, &issuer));
        MW_GUARD(mw_verify_sct(tr, leaf, issuer, mw_clock_now(now)));
        MW_GUARD(mw_verify_identity(leaf, p, out));
    }

    /* Step 8: the signature. */
    if (b->content == MW_CONTENT_MESSAGE_SIGNATURE) {
        if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) {
            MW_ENSURE(!a->is_digest, MW_E_UNSUPPORTED,
                      "an Ed25519 signature needs the artifact, not its digest");
            MW_GUARD(mw_verify_sig(key, NULL, a->bytes, x.sig, "artifact signature"));
        } else {
            MW_GUARD(mw_verify_prehash(key, EVP_sha256(), mw_slice_make(a->sha256, 32), x.sig,
                                       "artifact signature"));
        }
    } else {
        MW_GUARD(mw_verify_sig(key, mw_key_md(key), mw_dynbuf_slice(&pae), x.sig, "DSSE envelope"));
        MW_GUARD(check_statement(b, a, out));
    }
    return MW_SUCCESS;
}

mw_result mw_verify_bundle(const struct mw_trust_root *tr, const struct mw_sigstore_bundle *b,
                           const struct mw_artifact *a, const struct mw_verify_policy *p,
                           const struct mw_clock *now, struct mw_verify_result *out)
{
    memset(out, 0, sizeof(*out));
    MW_DEFER(EVP_PKEY) EVP_PKEY *owned = NULL;
    unsigned char *key_der = NULL;
    long key_der_len = 0;
    mw_result r = verify(tr, b, a, p, now, out, &owned, &key_der, &key_der_len);
    OPENSSL_free(key_der);
    ERR_clear_error();
    return r;
}
