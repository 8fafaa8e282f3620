/* Internal to src/ca: key backends, certificate assembly, the CA object. */
#ifndef MESHWARD_CA_INTERNAL_H
#define MESHWARD_CA_INTERNAL_H

#include <openssl/x509.h>
#include <pthread.h>

#include <meshward/ca.h>

#include "base/mw_ossl.h"

MW_DEFINE_CLEANUP(X509_REQ, X509_REQ_free)
MW_DEFINE_CLEANUP(X509_NAME, X509_NAME_free)
MW_DEFINE_CLEANUP(X509_EXTENSION, X509_EXTENSION_free)
MW_DEFINE_CLEANUP(ASN1_INTEGER, ASN1_INTEGER_free)
MW_DEFINE_CLEANUP(ASN1_OBJECT, ASN1_OBJECT_free)
MW_DEFINE_CLEANUP(X509_ALGOR, X509_ALGOR_free)

/* What a backend must do; the private key is behind impl. */
struct mw_ca_key_ops {
    const char *name;
    /* Sign a digest (already hashed with the key's hash); DER ECDSA-Sig-Value into out. */
    mw_result (*sign_digest)(void *impl, const uint8_t *digest, size_t len, struct mw_dynbuf *out);
    void (*free)(void *impl);
};

struct mw_ca_key {
    const struct mw_ca_key_ops *ops;
    void *impl;
    enum mw_ca_key_type type;
    EVP_PKEY *pub; /* public half, for SPKIs and for checking what we signed */
    char id[65];
    /*
     * Fetched once: OpenSSL 3.0 spends as long looking up an algorithm as
     * doing a P-256 operation, so the digest and a verify context on pub
     * are kept (the context under lock: one operation at a time).
     */
    EVP_MD *md;
    EVP_PKEY_CTX *vctx;
    pthread_mutex_t vlock;
};

/* Wrap a backend: takes ownership of impl and pub (freed on failure too). */
MW_RESULT mw_ca_key_wrap(const struct mw_ca_key_ops *ops, void *impl, enum mw_ca_key_type type,
                         EVP_PKEY *pub, struct mw_ca_key **out);
/* The curve's type for a public key, or fail naming what it is. */
MW_RESULT mw_ca_key_type_of(EVP_PKEY *pub, enum mw_ca_key_type *out);
const EVP_MD *mw_ca_key_md(enum mw_ca_key_type t);
EVP_PKEY *mw_ca_key_pub(const struct mw_ca_key *k);

/*
 * Sign a certificate whose TBS fields are all set: set both signature
 * AlgorithmIdentifiers, sign the DER TBSCertificate with k, check the
 * signature over those exact bytes under k's public key, and append
 * Certificate ::= SEQUENCE { tbs, signatureAlgorithm, BIT STRING } (RFC 5280
 * §4.1) to der.
 */
MW_RESULT mw_ca_sign_cert_der(const struct mw_ca_key *k, X509 *tbs, struct mw_dynbuf *der);
/* mw_ca_sign_cert_der, then parse the result back and X509_verify it: for CA certificates. */
MW_RESULT mw_ca_sign_cert(const struct mw_ca_key *k, X509 *tbs, X509 **out);
/* The same for a PKCS#10 request (RFC 2986 §4.2). */
MW_RESULT mw_ca_sign_req(const struct mw_ca_key *k, X509_REQ *req, X509_REQ **out);

/* Add an extension by NID from its OpenSSL config text ("critical,CA:TRUE"). */
MW_RESULT mw_ca_add_ext(X509 *cert, X509 *issuer, int nid, const char *value);
/* A positive random serial of 128 bits. */
MW_RESULT mw_ca_random_serial(X509 *cert);
/* SHA-256 of a DER SubjectPublicKeyInfo (svid.spki_sha256, the renewal's new-key check). */
MW_RESULT mw_ca_spki_sha256(X509_PUBKEY *pk, uint8_t out[32]);
/* Set notBefore/notAfter. */
MW_RESULT mw_ca_set_validity(X509 *cert, int64_t nb, int64_t na);
/* notAfter of a certificate in Unix seconds. */
MW_RESULT mw_ca_cert_times(const X509 *cert, int64_t *nb, int64_t *na);
/* PEM of a certificate appended to out. */
MW_RESULT mw_ca_cert_pem(X509 *cert, struct mw_dynbuf *out);
/* Check that cert verifies under issuer and its time fits in [nb, na] of issuer. */
MW_RESULT mw_ca_check_signed_by(X509 *cert, X509 *issuer);

/* The provenance extension as an X509_EXTENSION (non-critical). */
MW_RESULT mw_ca_provenance_ext(const struct mw_ca_provenance *p, X509_EXTENSION **out);

/* ---------------------------------------------------------------- the CA object */

#define MW_CA_MAX_SLOTS 8

struct mw_ca_keyref {
    char file[512];     /* key file relative to the CA dir, or "" */
    char module[512];   /* PKCS#11 module */
    char token[64];     /* token label */
    char label[128];    /* key label */
    char id_hex[130];   /* CKA_ID hex, or "" */
    char pin_file[512]; /* or "" */
    char pin_env[128];  /* or "" */
};

struct mw_ca_slot {
    int id;
    enum mw_ca_slot_state state;
    char cert_file[256]; /* relative to dir; "" while pending */
    struct mw_ca_keyref keyref;
    X509 *cert;            /* NULL while pending */
    struct mw_ca_key *key; /* loaded for prepared/active/pending slots */
};

struct mw_ca {
    char dir[1024];
    char config_path[1100];
    char td[256];
    enum mw_ca_key_type key_type;
    int64_t root_ttl, intermediate_ttl, default_ttl, max_ttl;
    uint64_t bundle_sequence;
    char root_cert_file[256];
    struct mw_ca_keyref root_keyref; /* file and module empty: offline root */
    X509 *root;
    struct mw_ca_key *root_key; /* NULL for an offline root */
    struct mw_ca_slot slots[MW_CA_MAX_SLOTS];
    size_t nslots;
    const char *pin_file_override, *pin_env_override;
};

/* Write ca.yaml from the object (atomically). */
MW_RESULT mw_ca_save_config(const struct mw_ca *ca);
/* Write bundle.pem and bundle.jwks.json (bumping the sequence) when a root is known. */
MW_RESULT mw_ca_write_bundle(struct mw_ca *ca);
/* Open the key a keyref names. */
MW_RESULT mw_ca_keyref_open(const struct mw_ca *ca, const struct mw_ca_keyref *ref,
                            struct mw_ca_key **out);
/* Make a new key for slot id (file intermediate-<id>.key or a token key label-<id>). */
MW_RESULT mw_ca_new_slot_key(struct mw_ca *ca, int id, struct mw_ca_keyref *ref,
                             struct mw_ca_key **out);
/* Make an intermediate certificate for key under the root key (online root). */
MW_RESULT mw_ca_make_intermediate(const struct mw_ca *ca, X509 *root,
                                  const struct mw_ca_key *root_key, EVP_PKEY *pub, int id,
                                  int64_t now, int64_t ttl, X509 **out);
/* The active slot, or NULL. */
struct mw_ca_slot *mw_ca_active_slot(struct mw_ca *ca);

#endif
