/*
 * Internal to meshward: the JOSE pieces JWT-SVID validation (spiffe_jwtsvid.c)
 * and Kubernetes service-account tokens (ca_cred_k8s.c) share. Each caller keeps
 * its own algorithm allowlist and its own messages.
 */
#ifndef MESHWARD_SPIFFE_JOSE_H
#define MESHWARD_SPIFFE_JOSE_H

#include <meshward/base.h>

/* The parts of a compact JWS (RFC 7515 §7.1), borrowed from the token. */
struct mw_jws_parts {
    mw_slice header, payload, signature;
    mw_slice signing_input; /* header '.' payload: what the signature covers */
};

/*
 * Split token at its first two dots. Returns how many dots it has, counting
 * at most 3: a compact JWS has exactly 2. parts is filled only for 2.
 */
size_t mw_jws_split(mw_slice token, struct mw_jws_parts *parts);

/*
 * RFC 7518 §3.4: an ECDSA JWS signature is r || s, each half bytes (sig.n must
 * be 2 * half, which the caller checks with its own message); OpenSSL verifies
 * DER ECDSA-Sig-Value. Writes that DER to der.
 */
MW_RESULT mw_jws_ecdsa_to_der(mw_slice sig, size_t half, struct mw_dynbuf *der);

#endif
