/*
 * meshward ca_auth: who is asking the mesh CA for a certificate, and may they
 * have it.
 *
 *  - workload credentials: Kubernetes projected service-account tokens (JWT,
 *    RS256/ES256, verified against a JWKS file) and single-use join tokens;
 *  - the CA's SQLite store: join tokens (hashed), admitted artifacts, and
 *    workload registrations;
 *  - the authorization decision the CA makes before issuance;
 *  - the canonical issuance-log record (a leaf of the Merkle log) and the
 *    issuance monitor that audits an exported log.
 *
 * The certified identity always comes from the credential, never from the
 * CSR. docs/ca-auth.md describes the formats and the decisions.
 */
#ifndef MESHWARD_CA_AUTH_H
#define MESHWARD_CA_AUTH_H

#include <meshward/base.h>
#include <meshward/spiffe.h>

struct mw_note_verifier;

/* ---------------------------------------------------------------- credentials */

enum mw_ca_cred_kind {
    MW_CA_CRED_K8S = 1,  /* Kubernetes projected service-account token */
    MW_CA_CRED_JOIN = 2, /* single-use join token */
    /*
     * Renewal: the caller presented a currently valid X.509-SVID of the CA's
     * trust domain as its TLS client certificate (POST /v1/svid/renew). Only
     * the issuance record carries it; it is not a credential a request body
     * can name.
     */
    MW_CA_CRED_SVID = 3,
};

/* "k8s-sat", "join-token" or "svid" ("?" for anything else). */
const char *mw_ca_cred_kind_name(enum mw_ca_cred_kind kind);
/*
 * The credentials a request body or a configuration may name: "k8s-sat" or
 * "join-token". "svid" is refused: a renewal is authenticated by the TLS
 * connection, never by a name in the body.
 */
MW_RESULT mw_ca_cred_kind_parse(mw_slice name, enum mw_ca_cred_kind *out);

/* "sha256:" + 64 lower-case hex (what the SVID provenance extension carries). */
#define MW_CA_DIGEST_MAX 71
/* Fails (MW_E_INPUT, naming what) unless d is such a digest. */
MW_RESULT mw_ca_digest_check(mw_slice d, const char *what);

/* Kubernetes object names: DNS-1123 label (namespaces) and subdomain (service accounts). */
bool mw_k8s_is_dns_label(mw_slice s);
bool mw_k8s_is_dns_subdomain(mw_slice s);

/* ---------------------------------------------------------------- Kubernetes tokens */

struct mw_k8s_verifier;

struct mw_k8s_config {
    const char *issuer;       /* required: the token's "iss" must equal it */
    const char *audience;     /* required: "aud" must contain it */
    const char *trust_domain; /* required: IDs become spiffe://TD/ns/NS/sa/SA */
    int64_t leeway_s;         /* clock skew allowed on exp/nbf/iat; 0 means 60, at most 300 */
};

/*
 * A verifier from a JWKS (RFC 7517) of RSA (n, e; >= 2048 bits) and EC P-256
 * (crv, x, y) keys, each with a kid. Keys of other types are skipped; a kid
 * seen twice, a key without kid, or a JWKS with no usable key is refused.
 */
MW_RESULT mw_k8s_verifier_new(mw_slice jwks, const struct mw_k8s_config *cfg,
                              struct mw_k8s_verifier **out);
MW_RESULT mw_k8s_verifier_load(const char *jwks_path, const struct mw_k8s_config *cfg,
                               struct mw_k8s_verifier **out);
void mw_k8s_verifier_free(struct mw_k8s_verifier *v);

/* What a verified service-account token says. */
struct mw_k8s_identity {
    struct mw_spiffe_id id; /* spiffe://TD/ns/NS/sa/SA */
    char ns[64];            /* DNS-1123 label */
    char sa[254];           /* DNS-1123 subdomain */
    char pod_name[254];     /* "" when the token is not bound to a pod */
    char pod_uid[64];
    char kid[256];
    char alg[8];
    int64_t exp;
};

/*
 * Verify a compact-JWS service-account token: alg RS256 or ES256 only (none,
 * HS* and everything else refused), kid in the JWKS and of the alg's key
 * type, signature, iss, aud (string or array), exp (required), nbf and iat
 * (not in the future), all with the configured leeway; then the identity
 * from the "kubernetes.io" claim or, without one, from
 * sub "system:serviceaccount:NS:SA" (both present: they must agree).
 * MW_E_EXPIRED for time, MW_E_VERIFY for signature/issuer/audience/kid,
 * MW_E_INPUT for malformed tokens. The token is never put in a message.
 */
MW_RESULT mw_k8s_token_verify(const struct mw_k8s_verifier *v, mw_slice token,
                              const struct mw_clock *clock, struct mw_k8s_identity *out);

/* ---------------------------------------------------------------- the store */

/*
 * The CA's SQLite database (one file, WAL, busy timeout 5 s, schema version
 * checked). Not shared between threads: open one per thread.
 */
struct mw_ca_store;

MW_RESULT mw_ca_store_open(const char *path, struct mw_ca_store **out);
void mw_ca_store_close(struct mw_ca_store *s);

/* ---------------------------------------------------------------- join tokens */

/* Join tokens are "mwjt_" + base64url of 32 random bytes (43 characters). */
#define MW_CA_JOIN_TOKEN_LEN 48
#define MW_CA_JOIN_MAX_TTL   (30 * 86400)

struct mw_ca_join_info {
    char handle[17]; /* first 16 hex of SHA-256(token): names a token without revealing it */
    char spiffe_id[MW_SPIFFE_ID_MAX + 1];
    int64_t created_at;
    int64_t expires_at;
    bool used;
    int64_t used_at;
};

/*
 * Make a join token for id, valid ttl_s seconds (1 .. MW_CA_JOIN_MAX_TTL).
 * The token is written to token (initialize it with mw_dynbuf_init_secure);
 * only its SHA-256 is stored. It cannot be shown again.
 */
MW_RESULT mw_ca_join_create(struct mw_ca_store *s, const struct mw_spiffe_id *id, int64_t ttl_s,
                            const struct mw_clock *clock, struct mw_dynbuf *token,
                            struct mw_ca_join_info *info);
/* Look a token up without using it: fails as redeem would (unknown, used, expired). */
MW_RESULT mw_ca_join_check(struct mw_ca_store *s, mw_slice token, const struct mw_clock *clock,
                           struct mw_ca_join_info *out);
/*
 * Use a token: atomically marks it used (one transaction, UPDATE ... WHERE
 * used = 0), so of two concurrent redeemers one wins. A replay fails with
 * MW_E_VERIFY "join token already used at ..."; an expired token with
 * MW_E_EXPIRED; an unknown one with MW_E_VERIFY.
 */
MW_RESULT mw_ca_join_redeem(struct mw_ca_store *s, mw_slice token, const struct mw_clock *clock,
                            struct mw_ca_join_info *out);
/* Every token, oldest first; the callback may stop the walk by failing. */
MW_RESULT mw_ca_join_list(struct mw_ca_store *s,
                          mw_result (*each)(void *ctx, const struct mw_ca_join_info *info),
                          void *ctx);

/* ---------------------------------------------------------------- admitted artifacts */

/*
 * One admitted image. Schema version 2 added everything after admitted_at;
 * in a row written by version 1 those are NULL in the database and "" here.
 */
struct mw_ca_artifact {
    char image_digest[MW_CA_DIGEST_MAX + 1];
    char attestation_digest[MW_CA_DIGEST_MAX + 1]; /* SHA-256 of the DSSE payload (verify.h) */
    char builder_id[1024];                         /* a URI */
    char source_repo[1024];                        /* "" when unknown */
    int64_t admitted_at;
    char source_ref[1024];      /* e.g. "refs/heads/main"; "" when unknown */
    char signer_identity[1024]; /* the certificate SAN (keyless); "" when keyed or unknown */
    char signer_issuer[1024];   /* its OIDC issuer, a URI; "" when keyed or unknown */
    char key_id[65];            /* keyed: hex SHA-256 of the SPKI DER; "" otherwise */
    char policy_hash[MW_CA_DIGEST_MAX + 1];       /* "sha256:" ImagePolicy text; "" unknown */
    char trusted_root_hash[MW_CA_DIGEST_MAX + 1]; /* "sha256:" trusted_root.json; "" unknown */
};

/* Insert or replace the artifact for a->image_digest (digests and builder id are checked). */
MW_RESULT mw_ca_artifact_put(struct mw_ca_store *s, const struct mw_ca_artifact *a);
/* MW_E_NOTFOUND when the image is not admitted. */
MW_RESULT mw_ca_artifact_get(struct mw_ca_store *s, mw_slice image_digest,
                             struct mw_ca_artifact *out);
MW_RESULT mw_ca_artifact_remove(struct mw_ca_store *s, mw_slice image_digest);
MW_RESULT mw_ca_artifact_list(struct mw_ca_store *s,
                              mw_result (*each)(void *ctx, const struct mw_ca_artifact *a),
                              void *ctx);

/* What a revocation matches. */
enum mw_ca_artifact_match_kind {
    MW_CA_MATCH_DIGEST = 1,  /* value: the image digest */
    MW_CA_MATCH_SIGNER,      /* value: the signer SAN; issuer: its OIDC issuer (NULL: any) */
    MW_CA_MATCH_KEY_ID,      /* value: 64 lower-case hex */
    MW_CA_MATCH_ATTESTATION, /* value: the attestation digest */
};

struct mw_ca_artifact_match {
    enum mw_ca_artifact_match_kind kind;
    const char *value;
    const char *issuer;
};

/*
 * Remove every admitted artifact m matches, in one transaction; then call
 * each (may be NULL) once per removed record, in image-digest order, and set
 * *n (may be NULL) to how many. Nothing matched is success with *n == 0.
 * Rows written by schema version 1 carry no signer or key and match only by
 * digest or attestation. A malformed match value is MW_E_INPUT and removes
 * nothing. The callback runs after the commit: its failure is returned, but
 * the revocation stands.
 */
MW_RESULT mw_ca_artifact_revoke(struct mw_ca_store *s, const struct mw_ca_artifact_match *m,
                                mw_result (*each)(void *ctx, const struct mw_ca_artifact *a),
                                void *ctx, size_t *n);

/* ---------------------------------------------------------------- registrations */

/* One meshward.io/v1alpha1 WorkloadRegistration (schema: docs/ca-auth.md). */
struct mw_ca_registration {
    char name[254];
    bool by_k8s;                          /* selector: kubernetes ns/sa, else spiffeID */
    char spiffe_id[MW_SPIFFE_ID_MAX + 1]; /* when !by_k8s */
    char ns[64], sa[254];                 /* when by_k8s: matches path /ns/NS/sa/SA */
    bool requires_provenance;
    size_t n_images; /* 0: any admitted image */
    char (*images)[MW_CA_DIGEST_MAX + 1];
    int64_t max_ttl_s; /* 0: the CA's maximum */
};

struct mw_ca_registrations;

/* Parse a YAML stream of WorkloadRegistration documents (other kinds refused). */
MW_RESULT mw_ca_registrations_parse(mw_slice yaml, const char *name,
                                    struct mw_ca_registrations **out);
MW_RESULT mw_ca_registrations_load_file(const char *path, struct mw_ca_registrations **out);
void mw_ca_registrations_free(struct mw_ca_registrations *r);
size_t mw_ca_registrations_count(const struct mw_ca_registrations *r);
const struct mw_ca_registration *mw_ca_registrations_at(const struct mw_ca_registrations *r,
                                                        size_t i);
/* The entry for id (by SPIFFE ID, then by /ns/NS/sa/SA path), or NULL. */
const struct mw_ca_registration *mw_ca_registrations_find(const struct mw_ca_registrations *r,
                                                          const struct mw_spiffe_id *id);
/* Replace every registration in the store with r (one transaction). */
MW_RESULT mw_ca_store_set_registrations(struct mw_ca_store *s, const struct mw_ca_registrations *r);
MW_RESULT mw_ca_store_get_registrations(struct mw_ca_store *s, struct mw_ca_registrations **out);

/* ---------------------------------------------------------------- authorization */

struct mw_ca_authz {
    const struct mw_k8s_verifier *k8s;      /* NULL: Kubernetes tokens refused */
    struct mw_ca_store *store;              /* join tokens and artifacts; required */
    const struct mw_ca_registrations *regs; /* required (may be empty) */
    const char *trust_domain;               /* required: join tokens must be for it */
    bool allow_unregistered;                /* default false: unregistered IDs refused */
    int64_t max_ttl_s;                      /* the CA's maximum SVID lifetime; 0 means 1 h */
    const struct mw_clock *clock;           /* NULL: the system clock */
};

struct mw_ca_authz_request {
    enum mw_ca_cred_kind kind;
    mw_slice credential;      /* the token bytes; secret, never logged */
    const char *image_digest; /* optional (NULL): the image the workload runs */
};

/* What the CA may issue. */
struct mw_ca_grant {
    struct mw_spiffe_id id;
    enum mw_ca_cred_kind kind;
    char subject[512]; /* "system:serviceaccount:NS:SA" / "join:<handle>" / "svid:<serial>" */
    bool registered;
    char registration[254];
    bool has_provenance; /* the SVID carries the provenance extension */
    struct mw_ca_artifact provenance;
    int64_t max_ttl_s; /* the lifetime the SVID may have, at most */
};

/*
 * Decide. Checks the credential, finds the registration, applies the
 * provenance requirement and the image list, and only then, for a join token,
 * redeems it (so a refused request does not burn the token). On refusal the
 * error says why, e.g. "workload spiffe://td/ns/a/sa/b requires provenance,
 * but image sha256:... is not admitted". Call it after the CSR has been
 * checked: a granted join token is spent.
 */
MW_RESULT mw_ca_authorize(const struct mw_ca_authz *az, const struct mw_ca_authz_request *req,
                          struct mw_ca_grant *out);

/* A renewal: the caller proved, over TLS, that it holds this SVID now. */
struct mw_ca_renewal_request {
    struct mw_spiffe_id id;   /* the SPIFFE ID of the presented, validated SVID */
    const char *serial;       /* its serial, lower-case hex without leading zeros (1..40) */
    const char *image_digest; /* the image its provenance extension names, or NULL */
};

/*
 * Decide a renewal as mw_ca_authorize() decides a first issuance, minus the
 * credential: the ID must be in the trust domain and must not be the CA
 * service's own (spiffe://TD/meshward/ca); its registration must still
 * select it (or allow_unregistered); and provenance is computed again from
 * the store for the image the old SVID named, so that a revoked image loses
 * it and a registration that requires provenance still refuses without it.
 * The grant's kind is MW_CA_CRED_SVID and its subject "svid:<serial>": the
 * issuance log links each renewal to the certificate it renewed.
 */
MW_RESULT mw_ca_authorize_renewal(const struct mw_ca_authz *az,
                                  const struct mw_ca_renewal_request *req, struct mw_ca_grant *out);

/* ---------------------------------------------------------------- issuance records */

#define MW_CA_RECORD_MAX      65535 /* one log entry */
#define MW_CA_RECORD_MAX_SANS 32

enum mw_ca_san_type {
    MW_CA_SAN_URI = 1,
    MW_CA_SAN_DNS = 2,
    MW_CA_SAN_IP = 3, /* 4 or 16 raw bytes */
    MW_CA_SAN_EMAIL = 4,
    MW_CA_SAN_OTHER = 5, /* DER of the GeneralName */
};

/*
 * The canonical record of one issued certificate, a leaf of the issuance log.
 * Byte strings are borrowed (from the caller when encoding, from the input
 * when parsing). Encoding: docs/ca-auth.md ("MWIR" version 1, length-prefixed
 * binary; one byte sequence per record).
 */
struct mw_ca_record {
    mw_slice serial; /* unsigned big-endian, 1..20 bytes, no leading zero byte */
    mw_slice spiffe_id;
    int64_t issued_at; /* Unix seconds, >= 0 */
    int64_t not_before;
    int64_t not_after;
    uint8_t spki_sha256[32];
    enum mw_ca_cred_kind cred_kind;
    mw_slice cred_subject;
    bool has_provenance;
    mw_slice image_digest, attestation_digest, builder_id;
    mw_slice ca_key_id;
    size_t n_sans;
    struct mw_ca_san {
        enum mw_ca_san_type type;
        mw_slice value;
    } sans[MW_CA_RECORD_MAX_SANS];
};

/* Append the canonical encoding to out; fails (MW_E_INPUT/LIMIT) on a record that breaks a rule. */
MW_RESULT mw_ca_record_encode(const struct mw_ca_record *r, struct mw_dynbuf *out);
/* Parse strictly: exactly one canonical encoding is accepted; out borrows from in. */
MW_RESULT mw_ca_record_parse(mw_slice in, struct mw_ca_record *out);
/*
 * Fill the certificate's own facts into r from the issued leaf (DER): serial,
 * not-before, not-after, SHA-256 of the SubjectPublicKeyInfo, and every SAN it
 * carries, so that the log records what was signed rather than what was asked
 * for. The byte strings r then points at live in storage (reset first; keep it
 * until r is encoded). The caller sets the SPIFFE ID, issued_at, credential,
 * provenance and CA key id.
 */
MW_RESULT mw_ca_record_from_cert(mw_slice leaf_der, struct mw_ca_record *r,
                                 struct mw_dynbuf *storage);
/*
 * For a renewal record (cred_kind MW_CA_CRED_SVID): the serial of the
 * certificate it renewed, the hex after "svid:" in cred_subject (lower-case,
 * no leading zeros, 1..40 digits; the encoder and parser enforce it). out may
 * be NULL to only check.
 */
MW_RESULT mw_ca_record_renewed_serial(const struct mw_ca_record *r, mw_slice *out);
/* A JSON object for people and for findings' evidence (keys in a fixed order). */
MW_RESULT mw_ca_record_to_json(const struct mw_ca_record *r, struct mw_dynbuf *out);

/* ---------------------------------------------------------------- issuance monitor */

/* A meshward.io/v1alpha1 IssuanceMonitorPolicy (schema: docs/ca-auth.md). */
struct mw_ca_monitor_policy;

MW_RESULT mw_ca_monitor_policy_parse(mw_slice yaml, const char *name,
                                     struct mw_ca_monitor_policy **out);
MW_RESULT mw_ca_monitor_policy_load_file(const char *path, struct mw_ca_monitor_policy **out);
void mw_ca_monitor_policy_free(struct mw_ca_monitor_policy *p);

/*
 * Audit the log in dir: verify it (checkpoint signed by v, tiles, root),
 * read every entry, and run the rules of the policy. regs may be NULL (the
 * "identity not registered" rule is then off). Findings are appended to out
 * as JSON lines {"id","severity","resource","message","evidence"};
 * *n_findings counts them. Fails only when the log cannot be read or does not
 * verify; an entry that is not a record is a finding, not a failure.
 */
MW_RESULT mw_ca_audit_dir(const char *dir, struct mw_note_verifier *v,
                          const struct mw_ca_monitor_policy *p,
                          const struct mw_ca_registrations *regs, struct mw_dynbuf *out,
                          size_t *n_findings);

#endif
