/*
 * meshward ca: the mesh CA. Signing keys (a PEM file or a PKCS#11 token),
 * the root and intermediate certificates, X.509-SVID issuance from PKCS#10
 * CSRs, the provenance extension, and intermediate rotation.
 *
 * The CA does not authenticate anyone: mw_ca_issue() takes an identity that
 * the caller has already verified (a join token, a Kubernetes token) and
 * certifies it. Names requested in the CSR are ignored (docs/ca.md).
 *
 * No OpenSSL or PKCS#11 types appear here.
 */
#ifndef MESHWARD_CA_H
#define MESHWARD_CA_H

#include <meshward/base.h>

/* ---------------------------------------------------------------- keys */

/*
 * A CA signing key. The private half stays where it lives: in the process
 * (file backend, secure heap) or in a PKCS#11 token (C_Sign; never
 * extracted). meshward CA keys are ECDSA (P-256 or P-384).
 */
struct mw_ca_key;

enum mw_ca_key_type {
    MW_CA_KEY_EC_P256 = 1, /* ecdsa-with-SHA256 */
    MW_CA_KEY_EC_P384,     /* ecdsa-with-SHA384 */
};

/* "ec-p256" / "ec-p384" <-> the type. */
const char *mw_ca_key_type_name(enum mw_ca_key_type t);
MW_RESULT mw_ca_key_type_parse(const char *name, enum mw_ca_key_type *out);

/* Where a PKCS#11 key lives and how to log in. */
struct mw_ca_pkcs11 {
    const char *module;      /* path of the PKCS#11 module (dlopen) */
    const char *token_label; /* CK_TOKEN_INFO.label */
    const char *key_label;   /* CKA_LABEL of the private key */
    const char *key_id_hex;  /* CKA_ID in hex, or NULL: then the label alone selects */
    const char *pin_file;    /* the user PIN in a file (mode 0600), or NULL */
    const char *pin_env;     /* the name of an environment variable holding the PIN, or NULL */
};

/* Load a PEM private key (PKCS#8 or SEC1). Refused unless the file is 0600 or stricter. */
MW_RESULT mw_ca_key_load_file(const char *path, struct mw_ca_key **out);
/* Generate a key and write it as PKCS#8 PEM, mode 0600 (fails if path exists). */
MW_RESULT mw_ca_key_generate_file(enum mw_ca_key_type type, const char *path,
                                  struct mw_ca_key **out);
/* Open a private key on a token: C_Initialize, find the token, C_Login, find the key. */
MW_RESULT mw_ca_key_open_pkcs11(const struct mw_ca_pkcs11 *p, struct mw_ca_key **out);
/*
 * Generate a key pair on the token (C_GenerateKeyPair; private key
 * CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_TOKEN). Refuses a label that is
 * already in use. key_id_hex NULL picks a random 16-byte CKA_ID.
 */
MW_RESULT mw_ca_key_generate_pkcs11(const struct mw_ca_pkcs11 *p, enum mw_ca_key_type type,
                                    struct mw_ca_key **out);
void mw_ca_key_free(struct mw_ca_key *k);

enum mw_ca_key_type mw_ca_key_type(const struct mw_ca_key *k);
/* "file" or "pkcs11". */
const char *mw_ca_key_backend(const struct mw_ca_key *k);
/* The DER SubjectPublicKeyInfo. */
MW_RESULT mw_ca_key_spki(const struct mw_ca_key *k, struct mw_dynbuf *out);
/* The key ID: lower-case hex SHA-256 of the DER SPKI (64 characters + NUL). */
void mw_ca_key_id(const struct mw_ca_key *k, char out[65]);
/*
 * Sign msg: hash it (SHA-256 for P-256, SHA-384 for P-384) and sign the
 * digest; out receives a DER ECDSA-Sig-Value (RFC 5480 §2.2 / RFC 3279 §2.2.3).
 */
MW_RESULT mw_ca_key_sign(const struct mw_ca_key *k, mw_slice msg, struct mw_dynbuf *out);

/* ---------------------------------------------------------------- provenance */

/*
 * The provenance extension (docs/ca.md): non-critical, under meshward's own
 * OID in the 2.25 (UUID) arc, UUID f038f2ee-fe8a-40ef-82da-0af3c2818922:
 *
 *   MeshwardProvenance ::= SEQUENCE {
 *       imageDigest       UTF8String,  -- "sha256:" 64 lower-case hex
 *       attestationDigest UTF8String,  -- "sha256:" 64 lower-case hex
 *       builderId         UTF8String } -- 1..1024 visible ASCII (a URI)
 */
#define MW_CA_PROVENANCE_OID     "2.25.319310414890660852850650409127980927266"
#define MW_CA_DIGEST_LEN         71 /* "sha256:" + 64 */
#define MW_CA_BUILDER_MAX        1024
#define MW_CA_PROVENANCE_DER_MAX 1200

struct mw_ca_provenance {
    char image_digest[MW_CA_DIGEST_LEN + 1];
    char attestation_digest[MW_CA_DIGEST_LEN + 1];
    char builder_id[MW_CA_BUILDER_MAX + 1];
};

/* Fill p from C strings, checking each field; the error names the field. */
MW_RESULT mw_ca_provenance_set(struct mw_ca_provenance *p, const char *image_digest,
                               const char *attestation_digest, const char *builder_id);
/* The DER of the extension value (the SEQUENCE). */
MW_RESULT mw_ca_provenance_encode(const struct mw_ca_provenance *p, struct mw_dynbuf *out);
/* Strict: exact DER (definite minimal lengths, no trailing bytes), field rules as above. */
MW_RESULT mw_ca_provenance_decode(mw_slice der, struct mw_ca_provenance *out);
/*
 * Find the extension in a DER certificate. *present is false (and MW_SUCCESS)
 * when it is absent; a malformed, critical or repeated extension fails.
 */
MW_RESULT mw_ca_provenance_from_cert(mw_slice cert_der, struct mw_ca_provenance *out,
                                     bool *present);

/* ---------------------------------------------------------------- the CA */

/*
 * A CA directory (made by mw_ca_init): ca.yaml (configuration and the list
 * of intermediates), root.pem, root.key (absent for an offline root),
 * intermediate-<n>.pem / .key, bundle.pem, bundle.jwks.json.
 */
struct mw_ca;

struct mw_ca_init_opts {
    const char *trust_domain;       /* bare name: "example.org" */
    const char *dir;                /* created if missing; must not hold a ca.yaml */
    enum mw_ca_key_type key_type;   /* 0: ec-p256 */
    int64_t root_ttl;               /* seconds; 0: 10 years */
    int64_t intermediate_ttl;       /* seconds; 0: 1 year */
    int64_t svid_default_ttl;       /* seconds; 0: 1 hour */
    int64_t svid_max_ttl;           /* seconds; 0: 24 hours */
    bool csr_only;                  /* intermediate key + CSR for an offline root */
    const struct mw_ca_pkcs11 *p11; /* keys on this token (key_label is a prefix), or NULL */
    const struct mw_clock *clock;   /* NULL: the system clock */
};

/* Make a CA in opts->dir. With csr_only, writes intermediate.csr.pem and no root. */
MW_RESULT mw_ca_init(const struct mw_ca_init_opts *opts);

/*
 * Open the CA in the directory holding config_path (ca.yaml): load the
 * certificates and the keys named there. pin_file / pin_env, when not NULL,
 * override those in the configuration for PKCS#11 keys.
 */
MW_RESULT mw_ca_open(const char *config_path, const char *pin_file, const char *pin_env,
                     struct mw_ca **out);
void mw_ca_free(struct mw_ca *ca);

const char *mw_ca_trust_domain(const struct mw_ca *ca);
int64_t mw_ca_default_ttl(const struct mw_ca *ca);
int64_t mw_ca_max_ttl(const struct mw_ca *ca);
/* The trust bundle (root certificates) as PEM and as SPIFFE JWKS. */
MW_RESULT mw_ca_bundle_pem(const struct mw_ca *ca, struct mw_dynbuf *out);
MW_RESULT mw_ca_bundle_jwks(const struct mw_ca *ca, struct mw_dynbuf *out);

/* One issued X.509-SVID, with the facts the issuance log records. */
struct mw_ca_svid {
    struct mw_dynbuf chain_pem; /* leaf, then the issuing intermediate */
    struct mw_dynbuf leaf_der;
    struct mw_dynbuf chain_der; /* leaf DER then intermediate DER, concatenated */
    char serial[33];            /* lower-case hex, no leading zeros */
    int64_t not_before, not_after;
    uint8_t spki_sha256[32]; /* of the leaf's SubjectPublicKeyInfo */
    char ca_key_id[65];      /* mw_ca_key_id of the signing intermediate */
};
void mw_ca_svid_init(struct mw_ca_svid *s);
void mw_ca_svid_free(struct mw_ca_svid *s);

#define MW_CA_CSR_MAX 65536

/*
 * Issue an X.509-SVID for spiffe_id (already authenticated by the caller; it
 * must be in the CA's trust domain and have a path) to the key in csr_der.
 * The CSR must be DER, verify under its own key (proof of possession) and
 * hold an EC P-256/P-384 or RSA 2048..8192 key; its names and extensions
 * are ignored. ttl 0 means the default; it is capped at the configured
 * maximum and at the intermediate's notAfter. notBefore is now - 10 s.
 * prov (or NULL) is embedded as the provenance extension. The signature is
 * verified under the intermediate's key before the certificate is assembled.
 * Nothing is written anywhere: logging the issuance is the caller's job
 * (the out fields are what the issuance-log record needs). Several threads
 * may issue at once; mw_ca_rotate must not run at the same time.
 */
MW_RESULT mw_ca_issue(struct mw_ca *ca, mw_slice csr_der, const char *spiffe_id, int64_t ttl,
                      const struct mw_ca_provenance *prov, const struct mw_clock *clock,
                      struct mw_ca_svid *out);

/* ---------------------------------------------------------------- intermediates and rotation */

/*
 * Intermediates in ca.yaml, in order of creation. At most one is active (it
 * signs SVIDs); a prepared one waits for activation; an old one has been
 * replaced (its SVIDs stay valid until they expire).
 */
enum mw_ca_slot_state {
    MW_CA_SLOT_PENDING = 1,
    MW_CA_SLOT_PREPARED,
    MW_CA_SLOT_ACTIVE,
    MW_CA_SLOT_OLD
};

struct mw_ca_slot_info {
    int id;
    enum mw_ca_slot_state state;
    int64_t not_before, not_after;
    char key_id[65];
    char subject[128];
};
const char *mw_ca_slot_state_name(enum mw_ca_slot_state s);
size_t mw_ca_slot_count(const struct mw_ca *ca);
MW_RESULT mw_ca_slot_info(const struct mw_ca *ca, size_t i, struct mw_ca_slot_info *out);

/*
 * SPIRE's thresholds (pkg/server/ca/manager/slot.go) for an intermediate
 * valid [nb, na): prepare the next one when the time left is at most
 * min(lifetime/2, 30 days); activate it when at most min(lifetime/6, 7 days).
 */
int64_t mw_ca_prepare_at(int64_t not_before, int64_t not_after);
int64_t mw_ca_activate_at(int64_t not_before, int64_t not_after);

enum mw_ca_rotation { MW_CA_ROTATE_NONE = 0, MW_CA_ROTATE_PREPARED, MW_CA_ROTATE_ACTIVATED };

/*
 * Apply the thresholds at the clock's time: prepare a new intermediate
 * (signed by the root key, which must be online) and/or activate the
 * prepared one; persist ca.yaml. force_prepare / force_activate do it now
 * regardless of time. *done receives what happened (the later step when both).
 */
MW_RESULT mw_ca_rotate(struct mw_ca *ca, const struct mw_clock *clock, bool force_prepare,
                       bool force_activate, enum mw_ca_rotation *done);

/*
 * Offline root: sign an intermediate CSR (PEM or DER) with this CA's root;
 * the result is an intermediate for trust domain td (its own name
 * constraint) as PEM.
 */
MW_RESULT mw_ca_sign_intermediate(struct mw_ca *ca, mw_slice csr, int64_t ttl,
                                  const struct mw_clock *clock, struct mw_dynbuf *cert_pem);
/*
 * Install a signed intermediate (PEM) into a CA made with csr_only, with the
 * root certificate (PEM) that signed it: the certificate must carry the
 * pending key, be a CA for this trust domain and verify under the root. Writes
 * the bundle and activates the intermediate.
 */
MW_RESULT mw_ca_import_intermediate(struct mw_ca *ca, mw_slice cert_pem, mw_slice root_pem,
                                    const struct mw_clock *clock);

#endif
