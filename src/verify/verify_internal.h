/* Internal to src/verify: the OpenSSL- and jansson-typed side of the verifier. */
#ifndef MESHWARD_VERIFY_INTERNAL_H
#define MESHWARD_VERIFY_INTERNAL_H

#include <jansson.h>
#include <openssl/x509.h>

#include <meshward/tlog.h>
#include <meshward/verify.h>

#include <openssl/err.h>

#include "base/mw_ossl.h"
#include "conf/conf_json.h"

/* Real trusted roots are ~7 KiB and bundles ~12 KiB; these are generous bounds. */
#define MW_TRUST_ROOT_MAX        (1u << 20)
#define MW_BUNDLE_MAX            (4u << 20)
#define MW_TR_MAX_ITEMS          64 /* CAs, logs or TSAs of one kind */
#define MW_TR_MAX_CHAIN          8
#define MW_BUNDLE_MAX_ENTRIES    16
#define MW_BUNDLE_MAX_TIMESTAMPS 16
#define MW_BUNDLE_MAX_CHAIN      8
#define MW_PROOF_MAX_HASHES      64

static inline void mw_cleanup_dynbuf(struct mw_dynbuf *b)
{
    mw_dynbuf_free(b);
}
#define MW_DEFER_BUF __attribute__((cleanup(mw_cleanup_dynbuf)))

/* Closed interval [start, end] in Unix seconds; end absent = open-ended. */
struct mw_validity {
    int64_t start;
    int64_t end;
    bool has_end;
};

static inline bool mw_validity_has(const struct mw_validity *v, int64_t t)
{
    return t >= v->start && (!v->has_end || t <= v->end);
}

enum mw_key_details {
    MW_KEY_ECDSA_P256 = 1,
    MW_KEY_ECDSA_P384,
    MW_KEY_ED25519,
    MW_KEY_RSA,
    MW_KEY_OTHER,
};

/* A transparency log (Rekor) or a CT log. */
struct mw_tr_log {
    char base_url[256];
    char name[256]; /* host[:port] of base_url: the signed-note key name */
    EVP_PKEY *key;
    enum mw_key_details details;
    uint8_t log_id[32];
    struct mw_validity valid;
    struct mw_note_verifier *note; /* tlogs only */
};

/* A certificate authority (Fulcio) or a timestamp authority. */
struct mw_tr_ca {
    char uri[256];
    STACK_OF(X509) * chain; /* as given: [0] issues leaves, last is the anchor */
    struct mw_validity valid;
};

struct mw_trust_root {
    uint8_t digest[32];
    struct mw_tr_log tlogs[MW_TR_MAX_ITEMS];
    size_t ntlogs;
    struct mw_tr_log ctlogs[MW_TR_MAX_ITEMS];
    size_t nctlogs;
    struct mw_tr_ca cas[MW_TR_MAX_ITEMS];
    size_t ncas;
    struct mw_tr_ca tsas[MW_TR_MAX_ITEMS];
    size_t ntsas;
};

struct mw_tlog_entry {
    int64_t log_index;
    uint8_t log_id[64];
    size_t log_id_len;
    char kind[32];
    char version[16];
    bool has_time;
    int64_t integrated_time;
    bool has_set;
    struct mw_dynbuf set;
    bool has_proof;
    int64_t proof_index;
    int64_t tree_size;
    struct mw_dynbuf root_hash;
    mw_tlog_hash hashes[MW_PROOF_MAX_HASHES];
    size_t nhashes;
    bool has_checkpoint;
    struct mw_dynbuf checkpoint;
    struct mw_dynbuf body;
};

struct mw_sigstore_bundle {
    int version;
    enum mw_bundle_material material;
    STACK_OF(X509) * certs; /* leaf first */
    struct mw_tlog_entry entries[MW_BUNDLE_MAX_ENTRIES];
    size_t nentries;
    struct mw_dynbuf tsrs[MW_BUNDLE_MAX_TIMESTAMPS];
    size_t ntsrs;
    enum mw_bundle_content content;
    /* messageSignature */
    bool has_digest;
    struct mw_dynbuf digest; /* messageDigest.digest (SHA2_256) */
    /* both: the signature bytes */
    struct mw_dynbuf sig;
    /* dsseEnvelope */
    struct mw_dynbuf payload;
    char payload_type[128];
};

/* JSON field helpers: the error names the field. */
MW_RESULT mw_vj_str(json_t *obj, const char *key, const char *what, bool required,
                    const char **out);
MW_RESULT mw_vj_b64(json_t *obj, const char *key, const char *what, bool required,
                    struct mw_dynbuf *out, bool *present);
/* A proto3 int64: a decimal string (or a JSON integer), >= 0. */
MW_RESULT mw_vj_i64(json_t *obj, const char *key, const char *what, bool required, int64_t *out,
                    bool *present);
/* RFC 3339 ("2022-12-31T23:59:59.999Z"); fractions round toward the interval (floor). */
MW_RESULT mw_parse_rfc3339(const char *s, int64_t *out);
/* ASN1_TIME to Unix seconds. */
MW_RESULT mw_asn1_time_unix(const ASN1_TIME *t, int64_t *out);

/* Copy text into a fixed buffer, failing when it does not fit. */
MW_RESULT mw_vcopy(char *dst, size_t cap, const char *src, size_t n, const char *what);

/* Verify sig over data (hashed with md, NULL for Ed25519) with key. */
MW_RESULT mw_verify_sig(EVP_PKEY *key, const EVP_MD *md, mw_slice data, mw_slice sig,
                        const char *what);
/* Verify sig over a precomputed digest (ECDSA/RSA) with key. */
MW_RESULT mw_verify_prehash(EVP_PKEY *key, const EVP_MD *md, mw_slice digest, mw_slice sig,
                            const char *what);
/* The digest the key's signatures use: SHA-256 for P-256/RSA/Ed25519 envelopes, SHA-384 for P-384.
 */
const EVP_MD *mw_key_md(EVP_PKEY *key);

/* Find the transparency log with this log ID. */
const struct mw_tr_log *mw_trust_root_tlog(const struct mw_trust_root *tr, mw_slice log_id);

/* The RFC 3161 timestamp tsr, over sig, by a trusted TSA: its genTime. */
MW_RESULT mw_verify_timestamp(const struct mw_trust_root *tr, mw_slice tsr, mw_slice sig,
                              int64_t *gen_time);

/*
 * Fulcio leaf: issued by a trusted CA, and leaf, CA chain and CA window all
 * valid at every verified time; the issuing CA cert in *issuer (borrowed).
 */
MW_RESULT mw_verify_fulcio_chain(const struct mw_trust_root *tr, X509 *leaf, const int64_t *times,
                                 size_t ntimes, X509 **issuer);
/* Embedded SCTs: at least one by a trusted CT log. */
MW_RESULT mw_verify_sct(const struct mw_trust_root *tr, X509 *leaf, X509 *issuer, int64_t now);
/* Fulcio profile and identity facts into out; then the policy. */
MW_RESULT mw_verify_identity(X509 *leaf, const struct mw_verify_policy *p,
                             struct mw_verify_result *out);

/* What the tlog body must agree with. */
struct mw_body_expect {
    bool dsse;
    mw_slice sig;
    uint8_t digest[32];         /* hashedrekord: artifact sha256; v2 DSSE: sha256(PAE) */
    uint8_t payload_sha256[32]; /* dsse/intoto: sha256(payload) */
    X509 *cert;                 /* or */
    EVP_PKEY *key;
    mw_slice key_der; /* keyed: the verifier's SubjectPublicKeyInfo DER, if known */
};

/* One log entry: SET (v1), checkpoint and inclusion proof, and its body. */
MW_RESULT mw_verify_tlog_entry(const struct mw_trust_root *tr, const struct mw_sigstore_bundle *b,
                               const struct mw_tlog_entry *e, const struct mw_body_expect *x,
                               bool *time_ok);

#endif
