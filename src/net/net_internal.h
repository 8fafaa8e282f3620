/* Internal to the net part. */
#ifndef MESHWARD_NET_INTERNAL_H
#define MESHWARD_NET_INTERNAL_H

#include <openssl/ssl.h>

#include <meshward/net.h>

/* RFC 9110 §5.6.2 tchar. */
extern const uint8_t mw_http_tchar[256];

static inline uint8_t mw_http_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}
bool mw_http_slice_ieq(mw_slice a, const char *b);

/*
 * For parts inside src/ that hold their identity as OpenSSL objects (a CA
 * key in an HSM, the sidecar's in-memory SVID key): as mw_tls_server_new() /
 * mw_tls_client_new(), with leaf, chain (may be NULL) and key instead of
 * cfg's certificate and key fields. The objects are referenced, not taken.
 */
MW_RESULT mw_tls_server_new_ossl(const struct mw_tls_config *cfg, X509 *leaf,
                                 STACK_OF(X509) * chain, EVP_PKEY *key, struct mw_tls_ctx **out);
MW_RESULT mw_tls_client_new_ossl(const struct mw_tls_config *cfg, X509 *leaf,
                                 STACK_OF(X509) * chain, EVP_PKEY *key, struct mw_tls_ctx **out);

/* The OpenSSL context behind a mw_tls_ctx. */
SSL_CTX *mw_tls_ctx_ssl(struct mw_tls_ctx *ctx);
/* The peer's chain as concatenated DER, leaf first (server or client side). */
MW_RESULT mw_tls_peer_chain_der(SSL *ssl, struct mw_dynbuf *out);
/* For a client connection: SNI and the name check (unless a peer_check is set). */
MW_RESULT mw_tls_client_prepare(struct mw_tls_ctx *ctx, SSL *ssl, const char *server_name);

#endif
