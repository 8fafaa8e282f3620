/*
 * Admission: an allowed verdict becomes a record in the CA's admitted-artifact
 * store, which the CA's provenance binding reads at issuance; revocation takes
 * records out of the store and verdicts out of the cache together, so that
 * neither can keep vouching for what the other has dropped.
 */
#include <string.h>

#include <openssl/pem.h>
#include <openssl/sha.h>

#include <meshward/ca_auth.h>

#include "verify/verify_internal.h"

mw_result mw_verify_key_id(mw_slice key_pem, char out[MW_VERIFY_KEY_ID_HEX + 1])
{
    out[0] = '\0';
    MW_ENSURE(key_pem.n > 0 && key_pem.n <= (1u << 20), MW_E_INPUT,
              "public key PEM is %zu bytes, want 1..1048576", key_pem.n);
    MW_DEFER(BIO) BIO *bio = BIO_new_mem_buf(key_pem.p, (int)key_pem.n);
    MW_ENSURE(bio != NULL, MW_E_NOMEM, "out of memory");
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (key == NULL) {
        mw_error_openssl(MW_E_INPUT, "key is not a PEM public key");
        return MW_FAILURE;
    }
    /* The SPKI as re-encoded by OpenSSL: one DER per key, whatever PEM wrapping it came in. */
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    if (n <= 0) {
        mw_error_openssl(MW_E_CRYPTO, "cannot encode the public key");
        return MW_FAILURE;
    }
    uint8_t h[32];
    SHA256(der, (size_t)n, h);
    OPENSSL_free(der);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(h); i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    out[MW_VERIFY_KEY_ID_HEX] = '\0';
    return MW_SUCCESS;
}

static mw_result digest_text(const uint8_t d[32], char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    MW_ENSURE(cap >= 7 + 64 + 1, MW_E_INTERNAL, "digest buffer too small");
    memcpy(out, "sha256:", 7);
    for (size_t i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[d[i] >> 4];
        out[7 + 2 * i + 1] = hex[d[i] & 15];
    }
    out[7 + 64] = '\0';
    return MW_SUCCESS;
}

static mw_result put_field(char *dst, size_t cap, const char *src, const char *what)
{
    return mw_vcopy(dst, cap, src, strlen(src), what);
}

mw_result mw_verify_admit(struct mw_ca_store *s, const struct mw_image_verdict *v,
                          const uint8_t policy[32], const uint8_t root[32], int64_t now,
                          struct mw_ca_artifact *out)
{
    MW_ENSURE(v->allowed, MW_E_VERIFY, "image %s was denied (%s); only allowed images are admitted",
              v->digest, v->reason);
    /* The provenance binding puts the attestation digest and the builder id into the SVID; an
     * image admitted without them would satisfy a "requires provenance" registration with none. */
    MW_ENSURE(v->attestation[0] != '\0' && v->builder_id[0] != '\0', MW_E_VERIFY,
              "image %s is allowed but its bundle carries no SLSA provenance (%s); the CA's "
              "provenance binding needs an attestation digest and a builder id",
              v->digest, v->attestation[0] == '\0' ? "no DSSE attestation" : "no builder id");
    struct mw_ca_artifact a;
    memset(&a, 0, sizeof(a));
    MW_GUARD(put_field(a.image_digest, sizeof(a.image_digest), v->digest, "image digest"));
    MW_GUARD(put_field(a.attestation_digest, sizeof(a.attestation_digest), v->attestation,
                       "attestation digest"));
    MW_GUARD(put_field(a.builder_id, sizeof(a.builder_id), v->builder_id, "builder id"));
    MW_GUARD(put_field(a.source_repo, sizeof(a.source_repo), v->source_repo, "source repository"));
    MW_GUARD(put_field(a.source_ref, sizeof(a.source_ref), v->source_ref, "source ref"));
    if (v->key_id[0] != '\0') {
        MW_GUARD(put_field(a.key_id, sizeof(a.key_id), v->key_id, "key id"));
    } else {
        MW_GUARD(put_field(a.signer_identity, sizeof(a.signer_identity), v->identity,
                           "signer identity"));
        MW_GUARD(put_field(a.signer_issuer, sizeof(a.signer_issuer), v->issuer, "signer issuer"));
    }
    MW_GUARD(digest_text(policy, a.policy_hash, sizeof(a.policy_hash)));
    MW_GUARD(digest_text(root, a.trusted_root_hash, sizeof(a.trusted_root_hash)));
    a.admitted_at = now;
    MW_GUARD(mw_ca_artifact_put(s, &a));
    if (out != NULL)
        *out = a;
    return MW_SUCCESS;
}

struct revoke_ctx {
    struct mw_dynbuf *affected;
    size_t from; /* where this call's lines start in affected */
    size_t n;
};

static bool already_listed(const struct revoke_ctx *rc, const char *digest)
{
    size_t dn = strlen(digest);
    for (size_t i = rc->from; i + dn <= rc->affected->n; i++) {
        if ((i == rc->from || rc->affected->p[i - 1] == '\n') &&
            memcmp(rc->affected->p + i, digest, dn) == 0 &&
            (i + dn == rc->affected->n || rc->affected->p[i + dn] == '\n'))
            return true;
    }
    return false;
}

static mw_result add_line(struct revoke_ctx *rc, const char *digest)
{
    if (already_listed(rc, digest))
        return MW_SUCCESS;
    MW_GUARD(mw_dynbuf_addf(rc->affected, "%s\n", digest));
    rc->n++;
    return MW_SUCCESS;
}

static mw_result list_removed(void *ctx, const struct mw_ca_artifact *a)
{
    return add_line(ctx, a->image_digest);
}

mw_result mw_verify_revoke(struct mw_ca_store *s, struct mw_verdict_cache *c,
                           const struct mw_ca_artifact_match *m, struct mw_dynbuf *affected,
                           size_t *n)
{
    *n = 0;
    struct revoke_ctx rc = {.affected = affected, .from = affected->n};
    /* The store first: it is what the CA trusts at issuance, and it validates m. */
    if (s != NULL)
        MW_GUARD(mw_ca_artifact_revoke(s, m, list_removed, &rc, NULL));
    if (c != NULL) {
        MW_DEFER_BUF struct mw_dynbuf cached;
        mw_dynbuf_init(&cached, affected->max);
        size_t nc = 0;
        switch (m->kind) {
        case MW_CA_MATCH_DIGEST:
            if (mw_verdict_cache_revoke_digest(c, m->value) > 0)
                MW_GUARD(mw_dynbuf_addf(&cached, "%s\n", m->value));
            break;
        case MW_CA_MATCH_SIGNER:
            MW_GUARD(mw_verdict_cache_revoke_signer(c, m->value, m->issuer, &cached, &nc));
            break;
        case MW_CA_MATCH_KEY_ID:
            MW_GUARD(mw_verdict_cache_revoke_key(c, m->value, &cached, &nc));
            break;
        case MW_CA_MATCH_ATTESTATION:
            MW_GUARD(mw_verdict_cache_revoke_attestation(c, m->value, &cached, &nc));
            break;
        default:
            MW_BAIL(MW_E_INPUT, "unknown revocation match kind %d", (int)m->kind);
        }
        /* The union: a digest in both the store and the cache is listed once. */
        char line[MW_CA_DIGEST_MAX + 16];
        size_t at = 0;
        while (at < cached.n) {
            const uint8_t *nl = memchr(cached.p + at, '\n', cached.n - at);
            size_t ln = nl != NULL ? (size_t)(nl - (cached.p + at)) : cached.n - at;
            MW_GUARD(mw_vcopy(line, sizeof(line), (const char *)cached.p + at, ln, "digest"));
            MW_GUARD(add_line(&rc, line));
            at += ln + 1;
        }
    }
    *n = rc.n;
    return MW_SUCCESS;
}
