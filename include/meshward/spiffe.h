/*
 * meshward spiffe: SPIFFE IDs and trust domains, X.509-SVIDs, JWT-SVIDs and
 * SPIFFE trust bundles (JWKS and PEM), per the SPIFFE standards:
 * SPIFFE-ID.md, X509-SVID.md, JWT-SVID.md and SPIFFE_Trust_Domain_and_Bundle.md.
 *
 * Objects are opaque; no OpenSSL or jansson types appear here. Validation
 * takes a struct mw_clock so that tests decide what "now" is.
 */
#ifndef MESHWARD_SPIFFE_H
#define MESHWARD_SPIFFE_H

#include <meshward/base.h>

/* SPIFFE-ID.md §2.1: a trust domain name is at most 255 bytes. */
#define MW_SPIFFE_TD_MAX 255
/* SPIFFE-ID.md §2.3: URI SANs up to 2048 bytes; we accept no longer ID. */
#define MW_SPIFFE_ID_MAX 2048

/* ---------------------------------------------------------------- IDs */

/* A parsed SPIFFE ID: "spiffe://" + td + path. A value type. */
struct mw_spiffe_id {
    char td[MW_SPIFFE_TD_MAX + 1];   /* trust domain name, NUL-terminated */
    char path[MW_SPIFFE_ID_MAX + 1]; /* "" (the trust domain's own ID) or "/seg/seg" */
};

/* Why a SPIFFE ID was refused; the names match the test vectors' error_class. */
enum mw_spiffe_id_fault {
    MW_SPIFFE_ID_OK = 0,
    MW_SPIFFE_ID_EMPTY,                 /* "empty" */
    MW_SPIFFE_ID_BAD_SCHEME,            /* "bad_scheme": not "spiffe://" */
    MW_SPIFFE_ID_MISSING_TRUST_DOMAIN,  /* "missing_trust_domain" */
    MW_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR, /* "bad_trust_domain_char": not a-z 0-9 - . _ */
    MW_SPIFFE_ID_BAD_PATH_CHAR,         /* "bad_path_char": not a-z A-Z 0-9 - . _ */
    MW_SPIFFE_ID_EMPTY_SEGMENT,         /* "empty_segment": "//" */
    MW_SPIFFE_ID_DOT_SEGMENT,           /* "dot_segment": "/." or "/.." */
    MW_SPIFFE_ID_TRAILING_SLASH,        /* "trailing_slash" */
    MW_SPIFFE_ID_TOO_LONG,              /* "too_long": trust domain > 255 or ID > 2048 bytes */
};

/* The stable name of a fault ("bad_scheme", ...). */
const char *mw_spiffe_id_fault_name(enum mw_spiffe_id_fault fault);

/*
 * Parse a SPIFFE ID exactly as SPIFFE-ID.md §2 defines it: lower-case
 * "spiffe" scheme, no userinfo, port, query, fragment or percent-encoding,
 * trust domain of [a-z0-9._-], path segments of [a-zA-Z0-9._-] that are not
 * empty, "." or "..", and no trailing slash. On failure the error (MW_E_INPUT)
 * names the fault class and the offending byte, and *fault (may be NULL) says
 * which rule was broken.
 */
MW_RESULT mw_spiffe_id_parse(mw_slice s, struct mw_spiffe_id *out, enum mw_spiffe_id_fault *fault);

/*
 * Parse a trust domain name, given bare ("example.org") or as a SPIFFE ID
 * with no path ("spiffe://example.org"). out holds MW_SPIFFE_TD_MAX + 1 bytes.
 */
MW_RESULT mw_spiffe_td_parse(mw_slice s, char out[MW_SPIFFE_TD_MAX + 1]);

/* "spiffe://td/path" into buf; false if it does not fit. */
bool mw_spiffe_id_format(const struct mw_spiffe_id *id, char *buf, size_t len);

/* ---------------------------------------------------------------- certificate facts */

/* What the CLI and logs show about one certificate. */
struct mw_cert_info {
    char subject[256];                  /* RFC 2253 one-line form, truncated */
    char issuer[256];                   /* likewise */
    char serial[132];                   /* lower-case hex, no separators */
    int64_t not_before;                 /* Unix seconds */
    int64_t not_after;                  /* Unix seconds */
    char key_type[16];                  /* "RSA", "EC", "Ed25519", "Ed448", ... */
    int key_bits;                       /* modulus or field size */
    char curve[16];                     /* "P-256" etc. for EC keys, "" otherwise */
    bool is_ca;                         /* basicConstraints cA */
    char uri_san[MW_SPIFFE_ID_MAX + 1]; /* first URI SAN, "" if none */
};

/* ---------------------------------------------------------------- bundles */

/*
 * A trust bundle for one trust domain: X.509 authorities (CA certificates,
 * for X.509-SVIDs) and JWT authorities (public keys by kid, for JWT-SVIDs),
 * with the optional spiffe_sequence and spiffe_refresh_hint.
 */
struct mw_bundle;

enum mw_bundle_format {
    MW_BUNDLE_FMT_AUTO = 0, /* JWKS if the first non-space byte is '{' or '[', else PEM */
    MW_BUNDLE_FMT_SPIFFE,   /* SPIFFE bundle: a JWKS whose keys carry "use" */
    MW_BUNDLE_FMT_JWKS_JWT, /* plain JWKS of JWT authorities: "use" may be absent */
    MW_BUNDLE_FMT_PEM,      /* one or more CERTIFICATE blocks: X.509 authorities only */
};

/* A short name: "spiffe-jwks", "jwt-jwks", "pem". */
const char *mw_bundle_format_name(enum mw_bundle_format fmt);

/* An empty bundle for trust domain td (bare name); NULL td leaves it unbound. */
MW_RESULT mw_bundle_new(const char *td, struct mw_bundle **out);
void mw_bundle_free(struct mw_bundle *b);

/*
 * Parse a bundle. td binds it to a trust domain (SPIFFE_Trust_Domain_and_Bundle
 * §5: the bundle itself does not say whose it is); NULL leaves it unbound.
 * *detected (may be NULL) receives the format used. Rejects duplicate JSON
 * members, duplicate kids, the same certificate twice, a jwt-svid key without
 * kid, and a bundle with no authorities. Unknown "use" and "kty" are skipped
 * and counted (mw_bundle_ignored).
 */
MW_RESULT mw_bundle_parse(mw_slice data, enum mw_bundle_format fmt, const char *td,
                          struct mw_bundle **out, enum mw_bundle_format *detected);

/* Read and parse a file (at most 4 MiB); the error names the file. */
MW_RESULT mw_bundle_load_file(const char *path, enum mw_bundle_format fmt, const char *td,
                              struct mw_bundle **out, enum mw_bundle_format *detected);

/*
 * Write b as a SPIFFE bundle JWKS (SPIFFE_Trust_Domain_and_Bundle §4): one
 * x509-svid entry per CA certificate with exactly one x5c value
 * (X509-SVID §6.1), one jwt-svid entry per JWT authority, keys in order.
 */
MW_RESULT mw_bundle_write_jwks(const struct mw_bundle *b, struct mw_dynbuf *out);

/* Add a DER CA certificate; refuses one already present. */
MW_RESULT mw_bundle_add_x509_der(struct mw_bundle *b, mw_slice der);
/* Add a JWT authority from a DER SubjectPublicKeyInfo; refuses a kid already present. */
MW_RESULT mw_bundle_add_jwt_spki(struct mw_bundle *b, const char *kid, mw_slice spki_der);
void mw_bundle_set_sequence(struct mw_bundle *b, uint64_t seq);
void mw_bundle_set_refresh_hint(struct mw_bundle *b, int64_t seconds);

/* The trust domain name, or "" when unbound. */
const char *mw_bundle_td(const struct mw_bundle *b);
/* Bind an unbound bundle (or rebind) to td. */
MW_RESULT mw_bundle_set_td(struct mw_bundle *b, const char *td);
size_t mw_bundle_x509_count(const struct mw_bundle *b);
MW_RESULT mw_bundle_x509_info(const struct mw_bundle *b, size_t i, struct mw_cert_info *out);
/* Append CA certificate i as DER to out. */
MW_RESULT mw_bundle_x509_der(const struct mw_bundle *b, size_t i, struct mw_dynbuf *out);
size_t mw_bundle_jwt_count(const struct mw_bundle *b);

/* What is known of one JWT authority. */
struct mw_jwt_key_info {
    char kid[256];
    char key_type[16]; /* "RSA", "EC", "Ed25519", "Ed448" */
    int key_bits;
    char curve[16];
};
MW_RESULT mw_bundle_jwt_info(const struct mw_bundle *b, size_t i, struct mw_jwt_key_info *out);
/* true and *out when spiffe_sequence was present (or set). */
bool mw_bundle_sequence(const struct mw_bundle *b, uint64_t *out);
/* true and *out (seconds) when spiffe_refresh_hint was present (or set). */
bool mw_bundle_refresh_hint(const struct mw_bundle *b, int64_t *out);
/* JWK entries skipped for an unknown use or key type (spec: MUST ignore). */
size_t mw_bundle_ignored(const struct mw_bundle *b);
/* x509-svid entries whose x5c held more than one value (extra values ignored). */
size_t mw_bundle_x5c_extra(const struct mw_bundle *b);

/* ---------------------------------------------------------------- X.509-SVIDs */

/* A parsed X.509-SVID: leaf, intermediates, optional private key. */
struct mw_x509svid;

/*
 * Parse an X.509-SVID from PEM. certs holds the leaf first, then its signing
 * certificates; key (key.p may be NULL for "no key") holds the private key.
 * certs and key may be the same bytes (cert and key in one file, any order):
 * PRIVATE KEY blocks in certs and CERTIFICATE blocks in key are skipped.
 *
 * Checks X509-SVID §2-§5.2: the leaf has exactly one URI SAN, a SPIFFE ID with
 * a non-root path; basicConstraints cA false; keyUsage with digitalSignature
 * and without keyCertSign or cRLSign; every signing certificate has cA true
 * and keyCertSign; the key (when given) matches the leaf. Chains are not
 * verified here: see mw_x509svid_verify().
 */
MW_RESULT mw_x509svid_parse_pem(mw_slice certs, mw_slice key, struct mw_x509svid **out);

/* As mw_x509svid_parse_pem for concatenated DER certificates and a DER key (PKCS#8 or RSA/EC). */
MW_RESULT mw_x509svid_parse_der(mw_slice certs, mw_slice key, struct mw_x509svid **out);

/*
 * Load from files, PEM or DER detected per file. key_path may be NULL, or
 * equal to cert_path. Key files must be private (mode 0600 or stricter).
 */
MW_RESULT mw_x509svid_load_files(const char *cert_path, const char *key_path,
                                 struct mw_x509svid **out);

void mw_x509svid_free(struct mw_x509svid *svid);

/* The SPIFFE ID in the leaf's URI SAN. */
const struct mw_spiffe_id *mw_x509svid_id(const struct mw_x509svid *svid);
/* Certificates in the chain, leaf included. */
size_t mw_x509svid_chain_len(const struct mw_x509svid *svid);
MW_RESULT mw_x509svid_cert_info(const struct mw_x509svid *svid, size_t i, struct mw_cert_info *out);
/* Append the DER of certificate i of the chain (0 is the leaf) to out. */
MW_RESULT mw_x509svid_cert_der(const struct mw_x509svid *svid, size_t i, struct mw_dynbuf *out);
/* Whether a private key was loaded (and so matched the leaf). */
bool mw_x509svid_has_key(const struct mw_x509svid *svid);

/*
 * Verify the chain (X509-SVID §5.1) against bundle, which must be bound to
 * the SVID's trust domain (or unbound: then the caller vouches for it), at the
 * time clock says. Every CA certificate in the bundle is a trust anchor, as
 * SPIFFE bundles define (self-signed or not). Fails with MW_E_EXPIRED when a
 * certificate is outside its validity at that time, MW_E_VERIFY otherwise,
 * with the reason in the message.
 */
MW_RESULT mw_x509svid_verify(const struct mw_x509svid *svid, const struct mw_bundle *bundle,
                             const struct mw_clock *clock);

/* ---------------------------------------------------------------- JWT-SVIDs */

/* The validated facts of a JWT-SVID. */
struct mw_jwtsvid {
    struct mw_spiffe_id sub;
    int64_t exp;
    bool has_iat;
    int64_t iat;
    char alg[8];
    char kid[256];
};

/*
 * Validate a compact JWS JWT-SVID (JWT-SVID.md §3, §7): alg one of
 * RS256/384/512, ES256/384/512, PS256/384/512 and fitting the key; typ, if
 * present, JWT or JOSE; no crit; kid names a JWT authority in bundle; the
 * signature verifies; sub is a SPIFFE ID in the bundle's trust domain; aud
 * contains audience; exp present and after now; nbf, if present, not after
 * now. MW_E_EXPIRED for time, MW_E_VERIFY for a bad signature or unknown kid,
 * MW_E_INPUT for malformed tokens.
 */
MW_RESULT mw_jwtsvid_validate(mw_slice token, const struct mw_bundle *bundle, const char *audience,
                              const struct mw_clock *clock, struct mw_jwtsvid *out);

#endif
