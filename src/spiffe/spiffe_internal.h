/* Internal to src/spiffe: the OpenSSL-typed side of bundles and SVIDs. */
#ifndef MESHWARD_SPIFFE_INTERNAL_H
#define MESHWARD_SPIFFE_INTERNAL_H

#include <openssl/x509.h>

#include <meshward/spiffe.h>

/* Largest bundle or SVID file we read: real ones are a few KiB. */
#define MW_SPIFFE_FILE_MAX (4u << 20)
/* Most keys one JWKS may hold; bounds work per bundle (an attacker-fed endpoint). */
#define MW_BUNDLE_MAX_KEYS 4096
/* Most certificates in one SVID chain (leaf included). */
#define MW_X509SVID_MAX_CHAIN 16

struct mw_jwt_authority {
    char *kid;
    EVP_PKEY *key;
};

struct mw_bundle {
    char td[MW_SPIFFE_TD_MAX + 1];
    STACK_OF(X509) * x509;
    struct mw_jwt_authority *jwt;
    size_t jwt_n;
    size_t jwt_cap;
    bool has_seq;
    uint64_t seq;
    bool has_refresh;
    int64_t refresh;
    size_t ignored;
    size_t x5c_extra;
};

/* Find the JWT authority with this kid, or NULL. */
const struct mw_jwt_authority *mw_bundle_find_jwt(const struct mw_bundle *b, mw_slice kid);

/* Facts of one certificate. */
MW_RESULT mw_spiffe_cert_info(X509 *cert, struct mw_cert_info *out);
/* Key type name, bits and curve of a public key. */
void mw_spiffe_key_desc(const EVP_PKEY *key, char *type, size_t type_len, int *bits, char *curve,
                        size_t curve_len);

/* One PEM block: its label and decoded body (owned; free with OPENSSL_free). */
struct mw_pem_block {
    char *name;
    unsigned char *data;
    long len;
};

/*
 * Iterate the PEM blocks in text. Returns 1 and a block, 0 at the end, or
 * fails for a malformed block. Text outside blocks is skipped (RFC 7468 §2).
 */
MW_RESULT mw_pem_next(BIO *in, struct mw_pem_block *blk, int *got);
void mw_pem_block_free(struct mw_pem_block *blk);
/* Whether text contains a PEM begin line at all. */
bool mw_pem_present(mw_slice text);

#endif
