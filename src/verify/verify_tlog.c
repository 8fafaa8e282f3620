/*
 * Rekor entries in a bundle: the signed entry timestamp (Rekor v1), the
 * checkpoint as a signed note, the RFC 6962 inclusion proof, and the entry
 * body, which must describe this bundle's signature, key and digest
 * (CVE-2022-36056: a valid entry for a different signature proves nothing).
 */
#include <string.h>

#include <openssl/pem.h>
#include <openssl/sha.h>

#include <meshward/conf.h>

#include "verify/verify_internal.h"

/*
 * The SET is an ECDSA signature over the RFC 8785 canonical JSON of
 * {body, integratedTime, logID, logIndex}: keys sorted, no spaces. Every value
 * here is base64, lowercase hex or a non-negative integer, so no escaping or
 * number formatting question arises.
 */
static mw_result verify_set(const struct mw_tr_log *log, const struct mw_tlog_entry *e)
{
    MW_DEFER_BUF struct mw_dynbuf c;
    mw_dynbuf_init(&c, 4u << 20);
    MW_GUARD(mw_dynbuf_add_cstr(&c, "{\"body\":\""));
    MW_GUARD(mw_b64_encode(mw_dynbuf_slice(&e->body), MW_B64_STD, &c));
    MW_GUARD(mw_dynbuf_addf(&c, "\",\"integratedTime\":%lld,\"logID\":\"",
                            (long long)e->integrated_time));
    MW_GUARD(mw_hex_encode(mw_slice_make(e->log_id, e->log_id_len), &c));
    MW_GUARD(mw_dynbuf_addf(&c, "\",\"logIndex\":%lld}", (long long)e->log_index));
    return mw_verify_sig(log->key, EVP_sha256(), mw_dynbuf_slice(&c), mw_dynbuf_slice(&e->set),
                         "signed entry timestamp");
}

static mw_result verify_proof(const struct mw_tr_log *log, const struct mw_tlog_entry *e,
                              int version)
{
    mw_tlog_hash leaf, root;
    memcpy(root.b, e->root_hash.p, MW_TLOG_HASH_LEN);
    mw_tlog_leaf_hash(mw_dynbuf_slice(&e->body), &leaf);
    if (mw_failed(mw_tlog_verify_inclusion((uint64_t)e->proof_index, (uint64_t)e->tree_size, &leaf,
                                           e->hashes, e->nhashes, &root))) {
        mw_error_prefix("inclusion proof: ");
        return MW_FAILURE;
    }
    /*
     * Without a signed checkpoint the root hash is the bundle's word only;
     * v0.1 bundles may lack one because their signed entry timestamp (required
     * there) is the log's commitment.
     */
    if (!e->has_checkpoint) {
        MW_ENSURE(version == 1, MW_E_VERIFY, "inclusion proof has no checkpoint");
        return MW_SUCCESS;
    }
    MW_ENSURE(log->note != NULL, MW_E_UNSUPPORTED, "log %s: its key type cannot sign checkpoints",
              log->base_url);
    mw_slice text;
    struct mw_note_verifier *v = log->note;
    if (mw_failed(mw_note_open(mw_dynbuf_slice(&e->checkpoint), &v, 1, &text))) {
        mw_error_prefix("checkpoint: ");
        return MW_FAILURE;
    }
    struct mw_checkpoint cp;
    if (mw_failed(mw_checkpoint_parse(text, &cp))) {
        mw_error_prefix("checkpoint: ");
        return MW_FAILURE;
    }
    MW_ENSURE(cp.size == (uint64_t)e->tree_size, MW_E_VERIFY,
              "checkpoint tree size %llu is not the proof's %lld", (unsigned long long)cp.size,
              (long long)e->tree_size);
    MW_ENSURE(memcmp(cp.root.b, e->root_hash.p, MW_TLOG_HASH_LEN) == 0, MW_E_VERIFY,
              "checkpoint root hash is not the inclusion proof's root hash");
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- body */

static json_t *path(json_t *j, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n && j != NULL; i++)
        j = json_object_get(j, keys[i]);
    return j;
}
#define PATH(j, ...)                              \
    path((j), (const char *const[]){__VA_ARGS__}, \
         MW_ARRAY_LEN(((const char *const[]){__VA_ARGS__})))

static mw_result b64_field(json_t *v, const char *what, struct mw_dynbuf *out)
{
    MW_ENSURE(json_is_string(v), MW_E_VERIFY, "log entry body: missing %s", what);
    mw_dynbuf_reset(out);
    if (mw_failed(mw_b64_decode(mw_slice_make(json_string_value(v), json_string_length(v)),
                                MW_B64_STD, out))) {
        mw_error_prefix("log entry body: %s: ", what);
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

static mw_result hex_field_eq(json_t *v, const char *what, const uint8_t want[32])
{
    MW_ENSURE(json_is_string(v), MW_E_VERIFY, "log entry body: missing %s", what);
    MW_DEFER_BUF struct mw_dynbuf h;
    mw_dynbuf_init(&h, 128);
    MW_GUARD(mw_hex_encode(mw_slice_make(want, 32), &h));
    MW_ENSURE(strcmp(json_string_value(v), mw_dynbuf_cstr(&h)) == 0, MW_E_VERIFY,
              "log entry body: %s does not match the bundle", what);
    return MW_SUCCESS;
}

static mw_result sig_eq(mw_slice got, const struct mw_body_expect *x)
{
    MW_ENSURE(mw_slice_eq(got, x->sig), MW_E_VERIFY,
              "log entry body: the signature is not the bundle's signature");
    return MW_SUCCESS;
}

/*
 * Decoding a certificate or key costs an OpenSSL 3.0 decoder context (~70 us,
 * more than a P-256 verification), so equal DER bytes are taken as equal
 * first; only bytes that differ are decoded and compared as objects (a key
 * may be spelled differently, e.g. with a compressed point).
 */
static bool cert_der_same(mw_slice der, X509 *cert)
{
    unsigned char *mine = NULL;
    int n = i2d_X509(cert, &mine);
    bool same = n > 0 && mw_slice_eq(der, mw_slice_make(mine, (size_t)n));
    OPENSSL_free(mine);
    return same;
}

static bool key_der_same(mw_slice der, const struct mw_body_expect *x)
{
    return x->key_der.n > 0 && mw_slice_eq(der, x->key_der);
}

/* A PEM certificate or public key from the body against the bundle's. */
static mw_result pem_eq(mw_slice pem, const struct mw_body_expect *x)
{
    MW_DEFER(BIO) BIO *raw = BIO_new_mem_buf(pem.p, (int)pem.n);
    MW_ENSURE(raw != NULL, MW_E_NOMEM, "out of memory");
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    bool same = false;
    if (PEM_read_bio(raw, &name, &header, &data, &len) == 1) {
        mw_slice der = mw_slice_make(data, (size_t)len);
        same = x->cert != NULL ? (strcmp(name, PEM_STRING_X509) == 0 && cert_der_same(der, x->cert))
                               : (strcmp(name, PEM_STRING_PUBLIC) == 0 && key_der_same(der, x));
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    ERR_clear_error();
    if (same)
        return MW_SUCCESS;
    MW_DEFER(BIO) BIO *bio = BIO_new_mem_buf(pem.p, (int)pem.n);
    MW_ENSURE(bio != NULL, MW_E_NOMEM, "out of memory");
    if (x->cert != NULL) {
        MW_DEFER(X509) X509 *c = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        ERR_clear_error();
        MW_ENSURE(c != NULL && X509_cmp(c, x->cert) == 0, MW_E_VERIFY,
                  "log entry body: the certificate is not the bundle's certificate");
        return MW_SUCCESS;
    }
    MW_DEFER(EVP_PKEY) EVP_PKEY *k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    ERR_clear_error();
    MW_ENSURE(k != NULL && EVP_PKEY_eq(k, x->key) == 1, MW_E_VERIFY,
              "log entry body: the public key is not the verification key");
    return MW_SUCCESS;
}

static mw_result der_eq(json_t *verifier, const struct mw_body_expect *x)
{
    MW_DEFER_BUF struct mw_dynbuf der;
    mw_dynbuf_init(&der, 64 << 10);
    if (x->cert != NULL) {
        MW_GUARD(
            b64_field(PATH(verifier, "x509Certificate", "rawBytes"), "verifier certificate", &der));
        if (cert_der_same(mw_dynbuf_slice(&der), x->cert))
            return MW_SUCCESS;
        const unsigned char *p = der.p;
        MW_DEFER(X509) X509 *c = d2i_X509(NULL, &p, (long)der.n);
        ERR_clear_error();
        MW_ENSURE(c != NULL && X509_cmp(c, x->cert) == 0, MW_E_VERIFY,
                  "log entry body: the certificate is not the bundle's certificate");
        return MW_SUCCESS;
    }
    MW_GUARD(b64_field(PATH(verifier, "publicKey", "rawBytes"), "verifier public key", &der));
    if (key_der_same(mw_dynbuf_slice(&der), x))
        return MW_SUCCESS;
    const unsigned char *p = der.p;
    MW_DEFER(EVP_PKEY) EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)der.n);
    ERR_clear_error();
    MW_ENSURE(k != NULL && EVP_PKEY_eq(k, x->key) == 1, MW_E_VERIFY,
              "log entry body: the public key is not the verification key");
    return MW_SUCCESS;
}

static mw_result body_hashedrekord_v001(json_t *spec, const struct mw_body_expect *x)
{
    MW_ENSURE(!x->dsse, MW_E_VERIFY, "log entry is a hashedrekord but the bundle holds DSSE");
    json_t *alg = PATH(spec, "data", "hash", "algorithm");
    MW_ENSURE(json_is_string(alg) && strcmp(json_string_value(alg), "sha256") == 0, MW_E_VERIFY,
              "log entry body: hash algorithm is not sha256");
    MW_GUARD(hex_field_eq(PATH(spec, "data", "hash", "value"), "artifact hash", x->digest));
    MW_DEFER_BUF struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1u << 20);
    MW_GUARD(b64_field(PATH(spec, "signature", "content"), "signature", &b));
    MW_GUARD(sig_eq(mw_dynbuf_slice(&b), x));
    MW_GUARD(b64_field(PATH(spec, "signature", "publicKey", "content"), "public key", &b));
    return pem_eq(mw_dynbuf_slice(&b), x);
}

static mw_result body_hashedrekord_v002(json_t *spec, const struct mw_body_expect *x)
{
    json_t *h = PATH(spec, "hashedRekordV002");
    json_t *alg = PATH(h, "data", "algorithm");
    MW_ENSURE(json_is_string(alg) && strcmp(json_string_value(alg), "SHA2_256") == 0, MW_E_VERIFY,
              "log entry body: digest algorithm is not SHA2_256");
    MW_DEFER_BUF struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1u << 20);
    MW_GUARD(b64_field(PATH(h, "data", "digest"), "digest", &b));
    /* For DSSE (rekor-v2 spec §6.1.4) the digest is of PAE(type, payload). */
    MW_ENSURE(mw_slice_eq(mw_dynbuf_slice(&b), mw_slice_make(x->digest, 32)), MW_E_VERIFY,
              "log entry body: the digest does not match the %s",
              x->dsse ? "DSSE envelope" : "artifact");
    MW_GUARD(b64_field(PATH(h, "signature", "content"), "signature", &b));
    MW_GUARD(sig_eq(mw_dynbuf_slice(&b), x));
    return der_eq(PATH(h, "signature", "verifier"), x);
}

static mw_result body_dsse_v001(json_t *spec, const struct mw_body_expect *x)
{
    MW_ENSURE(x->dsse, MW_E_VERIFY, "log entry is DSSE but the bundle holds a message signature");
    /* envelopeHash cannot be checked: the envelope JSON is not canonical. */
    json_t *alg = PATH(spec, "payloadHash", "algorithm");
    MW_ENSURE(json_is_string(alg) && strcmp(json_string_value(alg), "sha256") == 0, MW_E_VERIFY,
              "log entry body: payload hash algorithm is not sha256");
    MW_GUARD(hex_field_eq(PATH(spec, "payloadHash", "value"), "payload hash", x->payload_sha256));
    json_t *sigs = PATH(spec, "signatures");
    MW_ENSURE(json_is_array(sigs) && json_array_size(sigs) == 1, MW_E_VERIFY,
              "log entry body: want exactly 1 signature");
    json_t *s = json_array_get(sigs, 0);
    MW_DEFER_BUF struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1u << 20);
    MW_GUARD(b64_field(json_object_get(s, "signature"), "signature", &b));
    MW_GUARD(sig_eq(mw_dynbuf_slice(&b), x));
    MW_GUARD(b64_field(json_object_get(s, "verifier"), "verifier", &b));
    return pem_eq(mw_dynbuf_slice(&b), x);
}

static mw_result body_intoto_v002(json_t *spec, const struct mw_body_expect *x)
{
    MW_ENSURE(x->dsse, MW_E_VERIFY,
              "log entry is in-toto but the bundle holds a message signature");
    json_t *content = json_object_get(spec, "content");
    json_t *alg = PATH(content, "payloadHash", "algorithm");
    MW_ENSURE(json_is_string(alg) && strcmp(json_string_value(alg), "sha256") == 0, MW_E_VERIFY,
              "log entry body: payload hash algorithm is not sha256");
    MW_GUARD(
        hex_field_eq(PATH(content, "payloadHash", "value"), "payload hash", x->payload_sha256));
    json_t *sigs = PATH(content, "envelope", "signatures");
    MW_ENSURE(json_is_array(sigs) && json_array_size(sigs) == 1, MW_E_VERIFY,
              "log entry body: want exactly 1 signature");
    json_t *s = json_array_get(sigs, 0);
    MW_DEFER_BUF struct mw_dynbuf b;
    MW_DEFER_BUF struct mw_dynbuf inner;
    mw_dynbuf_init(&b, 1u << 20);
    mw_dynbuf_init(&inner, 1u << 20);
    /* intoto 0.0.2 stores the envelope's base64 strings base64-encoded again. */
    MW_GUARD(b64_field(json_object_get(s, "sig"), "signature", &b));
    /* Not base64 inside: then it cannot be the bundle's signature either. */
    if (mw_failed(mw_b64_decode(mw_dynbuf_slice(&b), MW_B64_STD, &inner)))
        mw_dynbuf_reset(&inner);
    MW_GUARD(sig_eq(mw_dynbuf_slice(&inner), x));
    MW_GUARD(b64_field(json_object_get(s, "publicKey"), "public key", &b));
    return pem_eq(mw_dynbuf_slice(&b), x);
}

static mw_result verify_body(const struct mw_tlog_entry *e, const struct mw_body_expect *x)
{
    struct mw_conf_limits lim = {.max_bytes = 4u << 20, .max_depth = 16};
    MW_DEFER_JSON json_t *body = NULL;
    MW_GUARD(mw_json_load(mw_dynbuf_slice(&e->body), "log entry body", &lim, &body));
    json_t *kind = json_object_get(body, "kind");
    json_t *ver = json_object_get(body, "apiVersion");
    MW_ENSURE(json_is_string(kind) && json_is_string(ver) &&
                  strcmp(json_string_value(kind), e->kind) == 0 &&
                  strcmp(json_string_value(ver), e->version) == 0,
              MW_E_VERIFY, "log entry body is not the %s %s its kindVersion says", e->kind,
              e->version);
    json_t *spec = json_object_get(body, "spec");
    MW_ENSURE(json_is_object(spec), MW_E_VERIFY, "log entry body has no spec");
    if (strcmp(e->kind, "hashedrekord") == 0 && strcmp(e->version, "0.0.1") == 0)
        return body_hashedrekord_v001(spec, x);
    if (strcmp(e->kind, "hashedrekord") == 0 && strcmp(e->version, "0.0.2") == 0)
        return body_hashedrekord_v002(spec, x);
    if (strcmp(e->kind, "dsse") == 0 && strcmp(e->version, "0.0.1") == 0)
        return body_dsse_v001(spec, x);
    if (strcmp(e->kind, "intoto") == 0 && strcmp(e->version, "0.0.2") == 0)
        return body_intoto_v002(spec, x);
    MW_BAIL(MW_E_UNSUPPORTED, "log entry kind %s %s is not supported", e->kind, e->version);
}

mw_result mw_verify_tlog_entry(const struct mw_trust_root *tr, const struct mw_sigstore_bundle *b,
                               const struct mw_tlog_entry *e, const struct mw_body_expect *x,
                               bool *time_ok)
{
    *time_ok = false;
    const struct mw_tr_log *log = mw_trust_root_tlog(tr, mw_slice_make(e->log_id, e->log_id_len));
    MW_ENSURE(log != NULL, MW_E_VERIFY, "log entry %lld is from a log not in the trusted root",
              (long long)e->log_index);
    if (e->has_set) {
        MW_ENSURE(e->has_time, MW_E_VERIFY, "log entry has a promise but no integratedTime");
        MW_GUARD(verify_set(log, e));
        char when[32];
        mw_time_format(e->integrated_time, when, sizeof(when));
        MW_ENSURE(mw_validity_has(&log->valid, e->integrated_time), MW_E_EXPIRED,
                  "log entry integrated at %s, outside the validity of log %s's key", when,
                  log->base_url);
        *time_ok = true;
    }
    if (e->has_proof)
        MW_GUARD(verify_proof(log, e, b->version));
    else
        MW_ENSURE(b->version == 1 && e->has_set, MW_E_VERIFY,
                  "log entry has neither inclusion proof nor promise");
    return verify_body(e, x);
}
