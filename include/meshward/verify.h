/*
 * meshward verify: Sigstore bundles (v0.1, v0.2, v0.3), trusted_root.json,
 * Fulcio certificates with embedded SCTs, Rekor v1 and v2 transparency-log
 * entries, RFC 3161 timestamps, DSSE envelopes, in-toto Statements, SLSA
 * provenance and cosign simple-signing payloads, and the meshward.io/v1alpha1
 * ImagePolicy with a verdict cache.
 *
 * Everything verifies offline: the bundle and the trusted root are all the
 * input there is. The order of checks follows sigstore-python and
 * sigstore-js (../shared/reference/anchors-supply-chain.md §2): trusted time
 * (RFC 3161 timestamps, Rekor v1 signed entry timestamps), the signing key
 * (Fulcio chain at that time, SCT, identity), the log entry (inclusion proof,
 * signed checkpoint, body matching the bundle), then the signature.
 */
#ifndef MESHWARD_VERIFY_H
#define MESHWARD_VERIFY_H

#include <meshward/base.h>

/* ---------------------------------------------------------------- trusted root */

/*
 * A dev.sigstore.trustroot.v1.TrustedRoot (media types
 * application/vnd.dev.sigstore.trustedroot+json;version=0.1 and
 * application/vnd.dev.sigstore.trustedroot.v0.2+json): Fulcio CAs, Rekor logs,
 * CT logs and timestamp authorities, each with a validity window whose ends
 * are both inclusive. Every CA and TSA chain is checked once, at load.
 */
struct mw_trust_root;

MW_RESULT mw_trust_root_load(mw_slice json, const char *name, struct mw_trust_root **out);
MW_RESULT mw_trust_root_load_file(const char *path, struct mw_trust_root **out);
void mw_trust_root_free(struct mw_trust_root *tr);
/* SHA-256 of the bytes the root was loaded from (a verdict-cache key). */
void mw_trust_root_digest(const struct mw_trust_root *tr, uint8_t out[32]);

struct mw_trust_root_counts {
    size_t cas, tlogs, ctlogs, tsas;
};
void mw_trust_root_counts(const struct mw_trust_root *tr, struct mw_trust_root_counts *out);

/* ---------------------------------------------------------------- bundles */

struct mw_sigstore_bundle;

enum mw_bundle_material {
    MW_MATERIAL_PUBLIC_KEY = 1, /* publicKey{hint}: the key comes from the verifier */
    MW_MATERIAL_CHAIN,          /* x509CertificateChain (v0.1, v0.2) */
    MW_MATERIAL_CERTIFICATE,    /* certificate (v0.3) */
};

enum mw_bundle_content {
    MW_CONTENT_MESSAGE_SIGNATURE = 1,
    MW_CONTENT_DSSE,
};

/*
 * Parse a bundle (protobuf JSON mapping). Rejects unknown media types,
 * duplicate keys, bad base64, negative indexes, a DSSE envelope without
 * exactly one signature, and a bundle without exactly one kind of key
 * material and one kind of content.
 */
MW_RESULT mw_sigstore_bundle_parse(mw_slice json, const char *name,
                                   struct mw_sigstore_bundle **out);
void mw_sigstore_bundle_free(struct mw_sigstore_bundle *b);
/* 1, 2 or 3 for bundle versions 0.1, 0.2, 0.3. */
int mw_sigstore_bundle_version(const struct mw_sigstore_bundle *b);
enum mw_bundle_material mw_sigstore_bundle_material(const struct mw_sigstore_bundle *b);
enum mw_bundle_content mw_sigstore_bundle_content(const struct mw_sigstore_bundle *b);
size_t mw_sigstore_bundle_tlog_count(const struct mw_sigstore_bundle *b);
size_t mw_sigstore_bundle_timestamp_count(const struct mw_sigstore_bundle *b);
/* The DSSE payload and its type (empty for a message signature); borrowed. */
mw_slice mw_sigstore_bundle_payload(const struct mw_sigstore_bundle *b, const char **payload_type);

/* ---------------------------------------------------------------- verification */

/* What the signature must be over: the artifact's bytes or its SHA-256. */
struct mw_artifact {
    bool is_digest;
    uint8_t sha256[32]; /* always filled by the caller when is_digest */
    mw_slice bytes;     /* when !is_digest */
};

/* The artifact from "sha256:<64 hex>" or from bytes. */
MW_RESULT mw_artifact_from_digest(const char *text, struct mw_artifact *out);
void mw_artifact_from_bytes(mw_slice bytes, struct mw_artifact *out);

/*
 * Who must have signed. Keyless: identity (exact SAN) or identity_regex
 * (POSIX extended, anchored at both ends), and issuer or issuer_regex (the
 * Fulcio OIDC issuer extension); source_repo, source_ref and build_signer
 * are optional exact constraints on Fulcio extensions .12, .14 and .9.
 * Keyed: key_pem, a PEM public key (cosign key pair); the bundle must carry
 * publicKey material.
 */
struct mw_verify_policy {
    const char *identity;
    const char *identity_regex;
    const char *issuer;
    const char *issuer_regex;
    const char *source_repo;
    const char *source_ref;
    const char *build_signer;
    mw_slice key_pem;
};

#define MW_VERIFY_STR 512

/* What a successful verification established. */
struct mw_verify_result {
    bool keyed;
    int64_t signed_at;            /* earliest verified time (Unix seconds) */
    size_t times_verified;        /* timestamps and signed entry timestamps */
    size_t tlog_entries;          /* log entries verified */
    char identity[MW_VERIFY_STR]; /* SAN of the Fulcio certificate */
    char issuer[MW_VERIFY_STR];
    char source_repo[MW_VERIFY_STR];
    char source_ref[MW_VERIFY_STR];
    char build_signer[MW_VERIFY_STR];
    bool dsse;
    char payload_type[128];
    uint8_t payload_sha256[32]; /* the attestation (DSSE payload) digest */
    char predicate_type[256];
    char builder_id[MW_VERIFY_STR];
    char build_type[MW_VERIFY_STR];
};

/*
 * Verify bundle b for artifact a against the trusted root and policy. now
 * (may be NULL for the system clock) is only used for the SCT "not in the
 * future" check: certificates and keys are judged at the verified signing
 * time. MW_E_VERIFY (or MW_E_EXPIRED) with the reason on failure.
 */
MW_RESULT mw_verify_bundle(const struct mw_trust_root *tr, const struct mw_sigstore_bundle *b,
                           const struct mw_artifact *a, const struct mw_verify_policy *p,
                           const struct mw_clock *now, struct mw_verify_result *out);

/* ---------------------------------------------------------------- DSSE, in-toto, SLSA */

/* DSSE v1 pre-authentication encoding: "DSSEv1 <len> <type> <len> <body>". */
MW_RESULT mw_dsse_pae(mw_slice payload_type, mw_slice payload, struct mw_dynbuf *out);

/*
 * A DSSE envelope as JSON ({payload, payloadType, signatures[{sig, keyid}]}).
 * The payload and the first signature land in payload and sig.
 */
MW_RESULT mw_dsse_parse(mw_slice json, struct mw_dynbuf *payload, struct mw_dynbuf *payload_type,
                        struct mw_dynbuf *sig, size_t *nsigs);

#define MW_INTOTO_MAX_SUBJECTS 1024

struct mw_intoto;

/*
 * An in-toto Statement (v1, or v0.1 for SLSA v0.2). Subjects with a sha256
 * digest are kept; the SLSA provenance predicate (v1 or v0.2) is read when
 * predicateType names it.
 */
MW_RESULT mw_intoto_parse(mw_slice payload, struct mw_intoto **out);
void mw_intoto_free(struct mw_intoto *st);
const char *mw_intoto_predicate_type(const struct mw_intoto *st);
size_t mw_intoto_subject_count(const struct mw_intoto *st);
bool mw_intoto_has_sha256(const struct mw_intoto *st, const uint8_t digest[32]);

/* SLSA provenance facts, v1 and v0.2 mapped to the v1 names. */
struct mw_slsa {
    int version; /* 1 for v1, 2 for v0.2, 0 when the predicate is not SLSA provenance */
    const char *builder_id;
    const char *build_type;
    const char *source_repo; /* externalParameters.workflow.repository or configSource.uri */
    const char *source_ref;  /* externalParameters.workflow.ref or the configSource ref */
};
/* The SLSA facts; strings borrow from st. */
void mw_intoto_slsa(const struct mw_intoto *st, struct mw_slsa *out);

/*
 * A cosign simple-signing payload: critical.type "cosign container image
 * signature", critical.image.docker-manifest-digest "sha256:<hex>". The
 * digest text lands in digest (NUL-terminated).
 */
MW_RESULT mw_simplesign_parse(mw_slice payload, char *digest, size_t digest_len, char *identity,
                              size_t identity_len);

/* ---------------------------------------------------------------- image policy */

/*
 * A meshward.io/v1alpha1 ImagePolicy:
 *
 *   apiVersion: meshward.io/v1alpha1
 *   kind: ImagePolicy
 *   metadata: {name: prod}
 *   spec:
 *     images:
 *     - glob: ghcr.io/acme/app*            # fnmatch(3) on the repository
 *       signers:                          # any one of them
 *       - identity: https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main
 *         issuer: https://token.actions.githubusercontent.com
 *       - identityRegex: "https://github.com/acme/.*"
 *         issuer: https://token.actions.githubusercontent.com
 *       - key: "-----BEGIN PUBLIC KEY-----\n..."
 *       provenance:                       # optional; needs an in-toto SLSA attestation
 *         builderIds: [...]
 *         sourceRepos: [...]
 *         sourceRefs: [...]
 *         buildTypes: [...]
 *     sidecars:
 *     - namespace: prod
 *       digests: ["sha256:..."]
 */
struct mw_image_policy;

MW_RESULT mw_image_policy_load(mw_slice yaml, const char *name, struct mw_image_policy **out);
MW_RESULT mw_image_policy_load_file(const char *path, struct mw_image_policy **out);
void mw_image_policy_free(struct mw_image_policy *ip);
/* SHA-256 of the policy text (a verdict-cache key). */
void mw_image_policy_digest(const struct mw_image_policy *ip, uint8_t out[32]);
/* A human description of what the policy requires, one rule per line. */
MW_RESULT mw_image_policy_explain(const struct mw_image_policy *ip, struct mw_dynbuf *out);
/* Is digest ("sha256:...") a pinned sidecar image in namespace ns? */
bool mw_image_policy_sidecar_pinned(const struct mw_image_policy *ip, const char *ns,
                                    const char *digest);

/* Key ids are the lower-case hex SHA-256 of the key's SubjectPublicKeyInfo DER. */
#define MW_VERIFY_KEY_ID_HEX 64

/* The key id of a PEM public key. */
MW_RESULT mw_verify_key_id(mw_slice key_pem, char out[MW_VERIFY_KEY_ID_HEX + 1]);

struct mw_image_verdict {
    bool allowed;
    char reason[1024];    /* why: the rule that matched and what passed or failed */
    char rule[256];       /* the glob of the matching image rule, "" if none */
    char digest[80];      /* "sha256:<hex>" */
    char attestation[80]; /* "sha256:<hex>" of the DSSE payload, "" if none */
    char builder_id[MW_VERIFY_STR];
    char identity[MW_VERIFY_STR]; /* the SAN, or "(key)" for a keyed signature */
    /* Who signed and what was built, for admission and revocation: */
    char issuer[MW_VERIFY_STR];            /* OIDC issuer; "" when keyed */
    char key_id[MW_VERIFY_KEY_ID_HEX + 1]; /* keyed: hex SHA-256 of the SPKI DER; else "" */
    /* SLSA provenance's source repository and ref, each falling back to the
     * Fulcio certificate's (.12, .14); "" when neither names one. */
    char source_repo[MW_VERIFY_STR];
    char source_ref[MW_VERIFY_STR];
};

/*
 * Judge image reference image ("repo@sha256:<hex>") with bundle b. An image
 * no rule matches is denied. Fails only for malformed input; a policy
 * rejection is a verdict with allowed false.
 */
MW_RESULT mw_image_policy_evaluate(const struct mw_image_policy *ip, const struct mw_trust_root *tr,
                                   const char *image, const struct mw_sigstore_bundle *b,
                                   const struct mw_clock *now, struct mw_image_verdict *out);

/* ---------------------------------------------------------------- verdict cache */

/*
 * Verdicts keyed by (image digest, policy hash, trusted-root hash), each
 * valid for ttl seconds from the caller's clock (now). Each entry keeps its
 * whole verdict, so revoking a digest, a signer (SAN, issuer), a key or an
 * attestation drops the verdicts it affects at once.
 */
struct mw_verdict_cache;

MW_RESULT mw_verdict_cache_new(size_t capacity, int64_t ttl_s, struct mw_verdict_cache **out);
void mw_verdict_cache_free(struct mw_verdict_cache *c);
MW_RESULT mw_verdict_cache_put(struct mw_verdict_cache *c, const uint8_t policy[32],
                               const uint8_t root[32], const struct mw_image_verdict *v,
                               int64_t now);
/* True and *out filled when a fresh verdict exists. */
bool mw_verdict_cache_get(struct mw_verdict_cache *c, const char *digest, const uint8_t policy[32],
                          const uint8_t root[32], int64_t now, struct mw_image_verdict *out);
/* Drop every verdict for this digest; returns how many. */
size_t mw_verdict_cache_revoke_digest(struct mw_verdict_cache *c, const char *digest);
/*
 * The revocations below drop every matching verdict, fresh or expired, at
 * once, and append each affected image digest to affected once, one per
 * line; *n counts the digests (not the verdicts: one digest may have
 * verdicts under several policies or trusted roots).
 *
 * revoke_identity: verdicts signed by this SAN, whatever the issuer.
 */
MW_RESULT mw_verdict_cache_revoke_identity(struct mw_verdict_cache *c, const char *identity,
                                           struct mw_dynbuf *affected, size_t *n);
/* Verdicts signed by this SAN as issued by issuer (NULL: any issuer). */
MW_RESULT mw_verdict_cache_revoke_signer(struct mw_verdict_cache *c, const char *identity,
                                         const char *issuer, struct mw_dynbuf *affected, size_t *n);
/* Verdicts signed with the key whose id (mw_verify_key_id) is key_id. */
MW_RESULT mw_verdict_cache_revoke_key(struct mw_verdict_cache *c, const char *key_id,
                                      struct mw_dynbuf *affected, size_t *n);
/* Verdicts resting on this attestation ("sha256:<hex>" of the DSSE payload). */
MW_RESULT mw_verdict_cache_revoke_attestation(struct mw_verdict_cache *c, const char *attestation,
                                              struct mw_dynbuf *affected, size_t *n);

/* ---------------------------------------------------------------- admission */

/*
 * Admission writes an allowed verdict into the CA's admitted-artifact store
 * (include/meshward/ca_auth.h), which the CA's provenance binding reads.
 *
 * The attestation digest is "sha256:" + hex SHA-256 of the DSSE payload as
 * signed (the in-toto Statement bytes after base64 decoding), not of the
 * envelope or the bundle: it is what Rekor's dsse and intoto entries record
 * as the payload hash, and it stays the same when an envelope is re-wrapped
 * or countersigned.
 */
struct mw_ca_store;
struct mw_ca_artifact;
struct mw_ca_artifact_match;

/*
 * Record verdict v, made under the ImagePolicy with SHA-256 policy and the
 * trusted root with SHA-256 root, as admitted at now; the stored record lands
 * in out (may be NULL). Refuses (MW_E_VERIFY) a DENY verdict, and an ALLOW
 * verdict without SLSA provenance (no attestation or builder id): the
 * provenance binding has nothing to bind. Replaces an earlier record for the
 * same image digest.
 */
MW_RESULT mw_verify_admit(struct mw_ca_store *s, const struct mw_image_verdict *v,
                          const uint8_t policy[32], const uint8_t root[32], int64_t now,
                          struct mw_ca_artifact *out);

/*
 * Revoke in the store and in the verdict cache c (may be NULL) what m
 * matches: a digest, a signer (SAN and issuer), a key id or an attestation
 * digest. Every affected image digest is appended to affected once, one per
 * line; *n counts them. Nothing matched is success with *n == 0.
 */
MW_RESULT mw_verify_revoke(struct mw_ca_store *s, struct mw_verdict_cache *c,
                           const struct mw_ca_artifact_match *m, struct mw_dynbuf *affected,
                           size_t *n);

#endif
