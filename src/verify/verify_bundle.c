/*
 * Sigstore bundle JSON (dev.sigstore.bundle.v1.Bundle, protobuf-specs
 * protos/sigstore_bundle.proto): proto3 JSON mapping, so camelCase names,
 * bytes as standard base64 and int64 as strings.
 */
#include <string.h>

#include <meshward/conf.h>

#include "verify/verify_internal.h"

static const struct {
    const char *media_type;
    int version;
} bundle_media_types[] = {
    {"application/vnd.dev.sigstore.bundle+json;version=0.1", 1},
    {"application/vnd.dev.sigstore.bundle+json;version=0.2", 2},
    {"application/vnd.dev.sigstore.bundle+json;version=0.3", 3},
    {"application/vnd.dev.sigstore.bundle.v0.3+json", 3},
};

static void entry_init(struct mw_tlog_entry *e)
{
    mw_dynbuf_init(&e->set, 1024);
    mw_dynbuf_init(&e->root_hash, 64);
    mw_dynbuf_init(&e->checkpoint, 64 << 10);
    mw_dynbuf_init(&e->body, 1u << 20);
}

static void entry_free(struct mw_tlog_entry *e)
{
    mw_dynbuf_free(&e->set);
    mw_dynbuf_free(&e->root_hash);
    mw_dynbuf_free(&e->checkpoint);
    mw_dynbuf_free(&e->body);
}

static mw_result parse_proof(json_t *pj, const char *what, struct mw_tlog_entry *e)
{
    MW_ENSURE(json_is_object(pj), MW_E_INPUT, "%s: inclusionProof is not an object", what);
    MW_GUARD(mw_vj_i64(pj, "logIndex", what, true, &e->proof_index, NULL));
    MW_GUARD(mw_vj_i64(pj, "treeSize", what, true, &e->tree_size, NULL));
    MW_GUARD(mw_vj_b64(pj, "rootHash", what, true, &e->root_hash, NULL));
    MW_ENSURE(e->root_hash.n == MW_TLOG_HASH_LEN, MW_E_INPUT,
              "%s: inclusionProof.rootHash is %zu bytes, want 32", what, e->root_hash.n);
    json_t *hs = json_object_get(pj, "hashes");
    if (hs != NULL) {
        MW_ENSURE(json_is_array(hs), MW_E_INPUT, "%s: inclusionProof.hashes is not an array", what);
        MW_ENSURE(json_array_size(hs) <= MW_PROOF_MAX_HASHES, MW_E_LIMIT,
                  "%s: %zu proof hashes, at most %d", what, json_array_size(hs),
                  MW_PROOF_MAX_HASHES);
        MW_DEFER_BUF struct mw_dynbuf h;
        mw_dynbuf_init(&h, 64);
        for (size_t i = 0; i < json_array_size(hs); i++) {
            json_t *v = json_array_get(hs, i);
            MW_ENSURE(json_is_string(v), MW_E_INPUT, "%s: proof hash %zu is not a string", what, i);
            mw_dynbuf_reset(&h);
            if (mw_failed(mw_b64_decode(mw_slice_make(json_string_value(v), json_string_length(v)),
                                        MW_B64_STD, &h))) {
                mw_error_prefix("%s: proof hash %zu: ", what, i);
                return MW_FAILURE;
            }
            MW_ENSURE(h.n == MW_TLOG_HASH_LEN, MW_E_INPUT,
                      "%s: proof hash %zu is %zu bytes, want 32", what, i, h.n);
            memcpy(e->hashes[i].b, h.p, MW_TLOG_HASH_LEN);
        }
        e->nhashes = json_array_size(hs);
    }
    json_t *cp = json_object_get(pj, "checkpoint");
    if (cp != NULL) {
        const char *env;
        MW_ENSURE(json_is_object(cp), MW_E_INPUT, "%s: checkpoint is not an object", what);
        MW_GUARD(mw_vj_str(cp, "envelope", what, true, &env));
        MW_GUARD(mw_dynbuf_add_cstr(&e->checkpoint, env));
        e->has_checkpoint = true;
    }
    e->has_proof = true;
    return MW_SUCCESS;
}

static mw_result parse_entry(json_t *ej, size_t i, int version, struct mw_tlog_entry *e)
{
    char what[48];
    snprintf(what, sizeof(what), "tlogEntries[%zu]", i);
    MW_ENSURE(json_is_object(ej), MW_E_INPUT, "%s is not an object", what);
    MW_GUARD(mw_vj_i64(ej, "logIndex", what, true, &e->log_index, NULL));
    json_t *lid = json_object_get(ej, "logId");
    MW_ENSURE(json_is_object(lid), MW_E_INPUT, "%s: missing \"logId\"", what);
    MW_DEFER_BUF struct mw_dynbuf idb;
    mw_dynbuf_init(&idb, sizeof(e->log_id));
    MW_GUARD(mw_vj_b64(lid, "keyId", what, true, &idb, NULL));
    memcpy(e->log_id, idb.p, idb.n);
    e->log_id_len = idb.n;

    json_t *kv = json_object_get(ej, "kindVersion");
    MW_ENSURE(json_is_object(kv), MW_E_INPUT, "%s: missing \"kindVersion\"", what);
    const char *kind, *ver;
    MW_GUARD(mw_vj_str(kv, "kind", what, true, &kind));
    MW_GUARD(mw_vj_str(kv, "version", what, true, &ver));
    MW_GUARD(mw_vcopy(e->kind, sizeof(e->kind), kind, strlen(kind), "kindVersion.kind"));
    MW_GUARD(mw_vcopy(e->version, sizeof(e->version), ver, strlen(ver), "kindVersion.version"));

    MW_GUARD(mw_vj_i64(ej, "integratedTime", what, false, &e->integrated_time, &e->has_time));
    json_t *ip = json_object_get(ej, "inclusionPromise");
    if (ip != NULL) {
        MW_ENSURE(json_is_object(ip), MW_E_INPUT, "%s: inclusionPromise is not an object", what);
        MW_GUARD(mw_vj_b64(ip, "signedEntryTimestamp", what, true, &e->set, NULL));
        e->has_set = true;
    }
    json_t *pj = json_object_get(ej, "inclusionProof");
    if (pj != NULL)
        MW_GUARD(parse_proof(pj, what, e));
    MW_GUARD(mw_vj_b64(ej, "canonicalizedBody", what, true, &e->body, NULL));
    /* protobuf-specs: v0.1 needs the promise; from v0.2 on the proof is required. */
    MW_ENSURE(version != 1 || e->has_set, MW_E_INPUT, "%s: a v0.1 bundle needs an inclusionPromise",
              what);
    MW_ENSURE(version < 2 || e->has_proof, MW_E_INPUT, "%s: a v0.%d bundle needs an inclusionProof",
              what, version);
    return MW_SUCCESS;
}

static mw_result push_cert(STACK_OF(X509) * certs, mw_slice der, const char *what)
{
    const unsigned char *p = der.p;
    X509 *x = d2i_X509(NULL, &p, (long)der.n);
    if (x == NULL || p != der.p + der.n) {
        X509_free(x);
        mw_error_openssl(MW_E_INPUT, "%s is not a DER X.509 certificate", what);
        return MW_FAILURE;
    }
    if (!sk_X509_push(certs, x)) {
        X509_free(x);
        MW_BAIL(MW_E_NOMEM, "out of memory");
    }
    return MW_SUCCESS;
}

static mw_result parse_material(json_t *vm, struct mw_sigstore_bundle *b)
{
    MW_ENSURE(json_is_object(vm), MW_E_INPUT, "bundle: missing \"verificationMaterial\"");
    json_t *pk = json_object_get(vm, "publicKey");
    json_t *chain = json_object_get(vm, "x509CertificateChain");
    json_t *cert = json_object_get(vm, "certificate");
    int n = (pk != NULL) + (chain != NULL) + (cert != NULL);
    MW_ENSURE(n == 1, MW_E_INPUT,
              "verificationMaterial: want exactly one of publicKey, x509CertificateChain and "
              "certificate, got %d",
              n);
    b->certs = sk_X509_new_null();
    MW_ENSURE(b->certs != NULL, MW_E_NOMEM, "out of memory");
    MW_DEFER_BUF struct mw_dynbuf der;
    mw_dynbuf_init(&der, 64 << 10);
    if (pk != NULL) {
        MW_ENSURE(json_is_object(pk), MW_E_INPUT,
                  "verificationMaterial.publicKey is not an object");
        b->material = MW_MATERIAL_PUBLIC_KEY;
    } else if (chain != NULL) {
        MW_ENSURE(b->version < 3, MW_E_INPUT,
                  "a v0.3 bundle must carry a single certificate, not x509CertificateChain");
        json_t *certs = json_is_object(chain) ? json_object_get(chain, "certificates") : NULL;
        MW_ENSURE(json_is_array(certs) && json_array_size(certs) > 0, MW_E_INPUT,
                  "x509CertificateChain.certificates is missing or empty");
        MW_ENSURE(json_array_size(certs) <= MW_BUNDLE_MAX_CHAIN, MW_E_LIMIT,
                  "x509CertificateChain holds %zu certificates, at most %d", json_array_size(certs),
                  MW_BUNDLE_MAX_CHAIN);
        for (size_t i = 0; i < json_array_size(certs); i++) {
            char what[64];
            snprintf(what, sizeof(what), "x509CertificateChain certificate %zu", i);
            json_t *c = json_array_get(certs, i);
            MW_ENSURE(json_is_object(c), MW_E_INPUT, "%s is not an object", what);
            MW_GUARD(mw_vj_b64(c, "rawBytes", what, true, &der, NULL));
            MW_GUARD(push_cert(b->certs, mw_dynbuf_slice(&der), what));
        }
        b->material = MW_MATERIAL_CHAIN;
    } else {
        MW_ENSURE(json_is_object(cert), MW_E_INPUT,
                  "verificationMaterial.certificate is not an object");
        MW_GUARD(mw_vj_b64(cert, "rawBytes", "certificate", true, &der, NULL));
        MW_GUARD(push_cert(b->certs, mw_dynbuf_slice(&der), "certificate"));
        b->material = MW_MATERIAL_CERTIFICATE;
    }

    json_t *entries = json_object_get(vm, "tlogEntries");
    if (entries != NULL) {
        MW_ENSURE(json_is_array(entries), MW_E_INPUT, "tlogEntries is not an array");
        MW_ENSURE(json_array_size(entries) <= MW_BUNDLE_MAX_ENTRIES, MW_E_LIMIT,
                  "%zu tlogEntries, at most %d", json_array_size(entries), MW_BUNDLE_MAX_ENTRIES);
        for (size_t i = 0; i < json_array_size(entries); i++) {
            entry_init(&b->entries[i]);
            b->nentries = i + 1;
            MW_GUARD(parse_entry(json_array_get(entries, i), i, b->version, &b->entries[i]));
        }
    }
    json_t *tvd = json_object_get(vm, "timestampVerificationData");
    if (tvd != NULL) {
        MW_ENSURE(json_is_object(tvd), MW_E_INPUT, "timestampVerificationData is not an object");
        json_t *ts = json_object_get(tvd, "rfc3161Timestamps");
        if (ts != NULL) {
            MW_ENSURE(json_is_array(ts), MW_E_INPUT, "rfc3161Timestamps is not an array");
            MW_ENSURE(json_array_size(ts) <= MW_BUNDLE_MAX_TIMESTAMPS, MW_E_LIMIT,
                      "%zu RFC 3161 timestamps, at most %d", json_array_size(ts),
                      MW_BUNDLE_MAX_TIMESTAMPS);
            for (size_t i = 0; i < json_array_size(ts); i++) {
                json_t *t = json_array_get(ts, i);
                mw_dynbuf_init(&b->tsrs[i], 64 << 10);
                b->ntsrs = i + 1;
                MW_ENSURE(json_is_object(t), MW_E_INPUT, "rfc3161Timestamps[%zu] is not an object",
                          i);
                MW_GUARD(
                    mw_vj_b64(t, "signedTimestamp", "rfc3161Timestamps", true, &b->tsrs[i], NULL));
            }
        }
    }
    return MW_SUCCESS;
}

static mw_result parse_content(json_t *root, struct mw_sigstore_bundle *b)
{
    json_t *ms = json_object_get(root, "messageSignature");
    json_t *de = json_object_get(root, "dsseEnvelope");
    MW_ENSURE((ms != NULL) + (de != NULL) == 1, MW_E_INPUT,
              "bundle: want exactly one of messageSignature and dsseEnvelope");
    if (ms != NULL) {
        MW_ENSURE(json_is_object(ms), MW_E_INPUT, "messageSignature is not an object");
        b->content = MW_CONTENT_MESSAGE_SIGNATURE;
        json_t *md = json_object_get(ms, "messageDigest");
        if (md != NULL) {
            const char *alg;
            MW_ENSURE(json_is_object(md), MW_E_INPUT, "messageDigest is not an object");
            MW_GUARD(mw_vj_str(md, "algorithm", "messageDigest", true, &alg));
            MW_ENSURE(strcmp(alg, "SHA2_256") == 0, MW_E_UNSUPPORTED,
                      "messageDigest.algorithm %.40s is not supported (want SHA2_256)", alg);
            MW_GUARD(mw_vj_b64(md, "digest", "messageDigest", true, &b->digest, NULL));
            MW_ENSURE(b->digest.n == 32, MW_E_INPUT, "messageDigest.digest is %zu bytes, want 32",
                      b->digest.n);
            b->has_digest = true;
        }
        MW_GUARD(mw_vj_b64(ms, "signature", "messageSignature", true, &b->sig, NULL));
        MW_ENSURE(b->sig.n > 0, MW_E_INPUT, "messageSignature.signature is empty");
        return MW_SUCCESS;
    }
    MW_ENSURE(json_is_object(de), MW_E_INPUT, "dsseEnvelope is not an object");
    b->content = MW_CONTENT_DSSE;
    const char *pt;
    MW_GUARD(mw_vj_b64(de, "payload", "dsseEnvelope", true, &b->payload, NULL));
    MW_GUARD(mw_vj_str(de, "payloadType", "dsseEnvelope", true, &pt));
    MW_GUARD(mw_vcopy(b->payload_type, sizeof(b->payload_type), pt, strlen(pt), "payloadType"));
    json_t *sigs = json_object_get(de, "signatures");
    MW_ENSURE(json_is_array(sigs), MW_E_INPUT, "dsseEnvelope.signatures is not an array");
    /* protobuf-specs: a bundle's envelope carries exactly one signature. */
    MW_ENSURE(json_array_size(sigs) == 1, MW_E_INPUT,
              "dsseEnvelope has %zu signatures, want exactly 1", json_array_size(sigs));
    json_t *s = json_array_get(sigs, 0);
    MW_ENSURE(json_is_object(s), MW_E_INPUT, "dsseEnvelope signature is not an object");
    MW_GUARD(mw_vj_b64(s, "sig", "dsseEnvelope signature", true, &b->sig, NULL));
    MW_ENSURE(b->sig.n > 0, MW_E_INPUT, "dsseEnvelope signature is empty");
    return MW_SUCCESS;
}

static mw_result parse(json_t *root, struct mw_sigstore_bundle *b)
{
    MW_ENSURE(json_is_object(root), MW_E_INPUT, "bundle is not a JSON object");
    const char *mt;
    MW_GUARD(mw_vj_str(root, "mediaType", "bundle", true, &mt));
    for (size_t i = 0; i < MW_ARRAY_LEN(bundle_media_types); i++)
        if (strcmp(mt, bundle_media_types[i].media_type) == 0)
            b->version = bundle_media_types[i].version;
    MW_ENSURE(b->version != 0, MW_E_UNSUPPORTED, "bundle: unknown mediaType \"%.100s\"", mt);
    MW_GUARD(parse_material(json_object_get(root, "verificationMaterial"), b));
    MW_GUARD(parse_content(root, b));
    return MW_SUCCESS;
}

mw_result mw_sigstore_bundle_parse(mw_slice json, const char *name, struct mw_sigstore_bundle **out)
{
    *out = NULL;
    struct mw_conf_limits lim = {.max_bytes = MW_BUNDLE_MAX, .max_depth = 16};
    MW_DEFER_JSON json_t *root = NULL;
    MW_GUARD(mw_json_load(json, name, &lim, &root));
    struct mw_sigstore_bundle *b = calloc(1, sizeof(*b));
    MW_ENSURE(b != NULL, MW_E_NOMEM, "out of memory");
    mw_dynbuf_init(&b->digest, 64);
    mw_dynbuf_init(&b->sig, 64 << 10);
    mw_dynbuf_init(&b->payload, MW_BUNDLE_MAX);
    if (mw_failed(parse(root, b))) {
        mw_error_prefix("%s: ", name);
        mw_sigstore_bundle_free(b);
        return MW_FAILURE;
    }
    *out = b;
    return MW_SUCCESS;
}

void mw_sigstore_bundle_free(struct mw_sigstore_bundle *b)
{
    if (b == NULL)
        return;
    sk_X509_pop_free(b->certs, X509_free);
    for (size_t i = 0; i < b->nentries; i++)
        entry_free(&b->entries[i]);
    for (size_t i = 0; i < b->ntsrs; i++)
        mw_dynbuf_free(&b->tsrs[i]);
    mw_dynbuf_free(&b->digest);
    mw_dynbuf_free(&b->sig);
    mw_dynbuf_free(&b->payload);
    free(b);
}

int mw_sigstore_bundle_version(const struct mw_sigstore_bundle *b)
{
    return b->version;
}

enum mw_bundle_material mw_sigstore_bundle_material(const struct mw_sigstore_bundle *b)
{
    return b->material;
}

enum mw_bundle_content mw_sigstore_bundle_content(const struct mw_sigstore_bundle *b)
{
    return b->content;
}

size_t mw_sigstore_bundle_tlog_count(const struct mw_sigstore_bundle *b)
{
    return b->nentries;
}

size_t mw_sigstore_bundle_timestamp_count(const struct mw_sigstore_bundle *b)
{
    return b->ntsrs;
}

mw_slice mw_sigstore_bundle_payload(const struct mw_sigstore_bundle *b, const char **payload_type)
{
    if (payload_type != NULL)
        *payload_type = b->content == MW_CONTENT_DSSE ? b->payload_type : "";
    return b->content == MW_CONTENT_DSSE ? mw_dynbuf_slice(&b->payload) : mw_slice_make(NULL, 0);
}
