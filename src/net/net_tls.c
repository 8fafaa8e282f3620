/*
 * TLS contexts over sockets (OpenSSL 3, socket BIOs set by the users of the
 * context). Policy: TLS 1.3; TLS 1.2 only with ECDHE key exchange and AEAD
 * ciphers; no renegotiation, no compression.
 */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "base/mw_ossl.h"
#include "net/net_internal.h"

struct mw_tls_ctx {
    SSL_CTX *ssl;
    int refs;
    bool server;
    mw_tls_peer_check_fn peer_check;
    void *peer_check_arg;
};

/* ECDHE + AEAD only (the TLS 1.2 suites RFC 7525 §4.2 and Mozilla "intermediate" keep). */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

SSL_CTX *mw_tls_ctx_ssl(struct mw_tls_ctx *ctx)
{
    return ctx->ssl;
}

void mw_tls_ctx_ref(struct mw_tls_ctx *ctx)
{
    ctx->refs++;
}

void mw_tls_ctx_free(struct mw_tls_ctx *ctx)
{
    if (ctx == NULL || --ctx->refs > 0)
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx);
}

static mw_result add_der(struct mw_dynbuf *out, X509 *x)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    if (n <= 0) {
        mw_error_openssl(MW_E_CRYPTO, "encoding a peer certificate");
        return MW_FAILURE;
    }
    mw_result r = mw_dynbuf_add(out, der, (size_t)n);
    OPENSSL_free(der);
    return r;
}

/* leaf, then the rest of chain without the leaf (chains differ on whether they hold it). */
static mw_result chain_der(X509 *leaf, STACK_OF(X509) * chain, struct mw_dynbuf *out)
{
    MW_ENSURE(leaf != NULL, MW_E_VERIFY, "the peer sent no certificate");
    MW_GUARD(add_der(out, leaf));
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        if (X509_cmp(x, leaf) == 0)
            continue;
        MW_GUARD(add_der(out, x));
    }
    return MW_SUCCESS;
}

/*
 * A server's session keeps only the client's leaf when it goes into a ticket
 * (OpenSSL serialises no peer chain), so after a resumed handshake the
 * intermediates would be missing and the chain could not be verified again.
 * The ticket therefore carries them itself, as its application data: one
 * version byte, then the certificates after the leaf as concatenated DER.
 * The ticket is sealed with the context's ticket key, so this is data we
 * wrote; it is still verified, as part of the chain, like any peer chain.
 */
#define TICKET_CHAIN_V1  1
#define TICKET_CHAIN_MAX (32u << 10)

static int ticket_gen(SSL *ssl, void *arg)
{
    (void)arg;
    SSL_SESSION *sess = SSL_get_session(ssl);
    /* A resumed session already holds the chain of the handshake that made it. */
    if (sess == NULL || SSL_session_reused(ssl))
        return 1;
    struct mw_dynbuf d;
    mw_dynbuf_init(&d, TICKET_CHAIN_MAX);
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    mw_result r = mw_dynbuf_add_byte(&d, TICKET_CHAIN_V1);
    for (int i = 0; mw_ok(r) && leaf != NULL && chain != NULL && i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        if (X509_cmp(x, leaf) != 0)
            r = add_der(&d, x);
    }
    /* Without the chain (too long) the ticket is issued but never accepted (ticket_dec). */
    if (mw_ok(r) && leaf != NULL)
        (void)SSL_SESSION_set1_ticket_appdata(sess, d.p, d.n);
    mw_error_clear();
    ERR_clear_error();
    mw_dynbuf_free(&d);
    return 1;
}

static SSL_TICKET_RETURN ticket_dec(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
                                    size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    (void)ssl;
    (void)keyname;
    (void)keyname_len;
    (void)arg;
    switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW: {
        void *data = NULL;
        size_t n = 0;
        /* No chain with it (another format, or none fitted): a full handshake instead. */
        if (SSL_SESSION_get0_ticket_appdata(sess, &data, &n) != 1 || n < 1 ||
            ((const uint8_t *)data)[0] != TICKET_CHAIN_V1)
            return SSL_TICKET_RETURN_IGNORE_RENEW;
        return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
    }
    case SSL_TICKET_FATAL_ERR_MALLOC:
    case SSL_TICKET_FATAL_ERR_OTHER:
        return SSL_TICKET_RETURN_ABORT;
    default: /* SSL_TICKET_NONE, SSL_TICKET_EMPTY, SSL_TICKET_NO_DECRYPT */
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    }
}

mw_result mw_tls_peer_chain_der(SSL *ssl, struct mw_dynbuf *out)
{
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    if (!SSL_is_server(ssl) || !SSL_session_reused(ssl) || leaf == NULL)
        return chain_der(leaf, SSL_get_peer_cert_chain(ssl), out);
    void *data = NULL;
    size_t n = 0;
    SSL_SESSION *sess = SSL_get_session(ssl);
    MW_ENSURE(sess != NULL && SSL_SESSION_get0_ticket_appdata(sess, &data, &n) == 1 && n >= 1 &&
                  ((const uint8_t *)data)[0] == TICKET_CHAIN_V1,
              MW_E_VERIFY, "resumed session without the peer's certificate chain");
    MW_GUARD(add_der(out, leaf));
    return mw_dynbuf_add(out, (const uint8_t *)data + 1, n - 1);
}

/* Replaces OpenSSL's chain verification: the caller's check decides. */
static int verify_with_callback(X509_STORE_CTX *xs, void *arg)
{
    struct mw_tls_ctx *ctx = arg;
    struct mw_dynbuf der;
    mw_dynbuf_init(&der, 1 << 20);
    bool ok =
        mw_ok(chain_der(X509_STORE_CTX_get0_cert(xs), X509_STORE_CTX_get0_untrusted(xs), &der)) &&
        ctx->peer_check(mw_dynbuf_slice(&der), ctx->peer_check_arg);
    mw_dynbuf_free(&der);
    if (!ok)
        X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
    return ok ? 1 : 0;
}

static mw_result load_identity(SSL_CTX *ssl, const struct mw_tls_config *cfg)
{
    if (cfg->cert_file != NULL) {
        MW_GUARD_OSSL(SSL_CTX_use_certificate_chain_file(ssl, cfg->cert_file), MW_E_INPUT,
                      "%s: loading the certificate chain", cfg->cert_file);
    } else {
        MW_DEFER(BIO) BIO *bio = BIO_new_mem_buf(cfg->cert_pem.p, (int)cfg->cert_pem.n);
        MW_ENSURE(bio != NULL, MW_E_NOMEM, "out of memory");
        MW_DEFER(X509) X509 *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        MW_GUARD_OSSL(leaf != NULL, MW_E_INPUT, "certificate PEM: no certificate");
        MW_GUARD_OSSL(SSL_CTX_use_certificate(ssl, leaf), MW_E_INPUT, "using the certificate");
        for (;;) {
            X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
            if (x == NULL)
                break;
            if (SSL_CTX_add0_chain_cert(ssl, x) <= 0) {
                X509_free(x);
                mw_error_openssl(MW_E_INPUT, "adding an intermediate certificate");
                return MW_FAILURE;
            }
        }
        ERR_clear_error(); /* the end of the PEM stream */
    }
    if (cfg->key_file != NULL) {
        /* STYLE.md: key files readable by others are refused. */
        MW_GUARD(mw_file_check_private(cfg->key_file));
        MW_GUARD_OSSL(SSL_CTX_use_PrivateKey_file(ssl, cfg->key_file, SSL_FILETYPE_PEM), MW_E_INPUT,
                      "%s: loading the private key", cfg->key_file);
    } else {
        MW_DEFER(BIO) BIO *bio = BIO_new_mem_buf(cfg->key_pem.p, (int)cfg->key_pem.n);
        MW_ENSURE(bio != NULL, MW_E_NOMEM, "out of memory");
        MW_DEFER(EVP_PKEY) EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        MW_GUARD_OSSL(key != NULL, MW_E_INPUT, "private key PEM: no key");
        MW_GUARD_OSSL(SSL_CTX_use_PrivateKey(ssl, key), MW_E_INPUT, "using the private key");
    }
    MW_GUARD_OSSL(SSL_CTX_check_private_key(ssl), MW_E_INPUT,
                  "the private key does not match the certificate");
    return MW_SUCCESS;
}

static mw_result load_cas(SSL_CTX *ssl, const struct mw_tls_config *cfg)
{
    if (cfg->ca_file != NULL) {
        MW_GUARD_OSSL(SSL_CTX_load_verify_locations(ssl, cfg->ca_file, NULL), MW_E_INPUT,
                      "%s: loading CA certificates", cfg->ca_file);
        return MW_SUCCESS;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(ssl);
    MW_DEFER(BIO) BIO *bio = BIO_new_mem_buf(cfg->ca_pem.p, (int)cfg->ca_pem.n);
    MW_ENSURE(bio != NULL, MW_E_NOMEM, "out of memory");
    int n = 0;
    for (;;) {
        MW_DEFER(X509) X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (x == NULL)
            break;
        MW_GUARD_OSSL(X509_STORE_add_cert(store, x), MW_E_INPUT, "adding a CA certificate");
        n++;
    }
    ERR_clear_error();
    MW_ENSURE(n > 0, MW_E_INPUT, "CA PEM holds no certificate");
    return MW_SUCCESS;
}

static mw_result ctx_new(const struct mw_tls_config *cfg, bool server, struct mw_tls_ctx **out)
{
    SSL_CTX *ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ssl == NULL) {
        mw_error_openssl(MW_E_CRYPTO, "SSL_CTX_new");
        return MW_FAILURE;
    }
    struct mw_tls_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        SSL_CTX_free(ssl);
        MW_BAIL(MW_E_NOMEM, "out of memory");
    }
    ctx->ssl = ssl;
    ctx->refs = 1;
    ctx->server = server;
    ctx->peer_check = cfg->peer_check;
    ctx->peer_check_arg = cfg->peer_check_arg;
    if (SSL_CTX_set_min_proto_version(ssl, cfg->tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION) <=
            0 ||
        SSL_CTX_set_cipher_list(ssl, tls12_ciphers) <= 0) {
        mw_error_openssl(MW_E_CRYPTO, "setting the TLS versions and ciphers");
        goto err;
    }
    SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /*
     * Partial writes from a buffer that may move (the server's output buffer
     * grows). No auto-chain: send exactly the chain configured, never
     * certificates OpenSSL finds in the trust store.
     */
    SSL_CTX_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
    *out = ctx;
    return MW_SUCCESS;
err:
    mw_tls_ctx_free(ctx);
    return MW_FAILURE;
}

static bool has_identity(const struct mw_tls_config *cfg)
{
    return (cfg->cert_file != NULL || cfg->cert_pem.n > 0) &&
           (cfg->key_file != NULL || cfg->key_pem.n > 0);
}

static bool has_ca(const struct mw_tls_config *cfg)
{
    return cfg->ca_file != NULL || cfg->ca_pem.n > 0;
}

/* An identity held as OpenSSL objects (HSM keys have no PEM). */
struct ossl_identity {
    X509 *leaf;
    STACK_OF(X509) * chain;
    EVP_PKEY *key;
};

static mw_result use_identity(SSL_CTX *ssl, const struct mw_tls_config *cfg,
                              const struct ossl_identity *id)
{
    if (id == NULL)
        return load_identity(ssl, cfg);
    /* override = 1: replace; the chain is copied, the objects are up-referenced. */
    MW_GUARD_OSSL(SSL_CTX_use_cert_and_key(ssl, id->leaf, id->key, id->chain, 1), MW_E_INPUT,
                  "using the certificate, chain and key");
    MW_GUARD_OSSL(SSL_CTX_check_private_key(ssl), MW_E_INPUT,
                  "the private key does not match the certificate");
    return MW_SUCCESS;
}

static mw_result server_new(const struct mw_tls_config *cfg, const struct ossl_identity *id,
                            struct mw_tls_ctx **out)
{
    MW_ENSURE(id != NULL || has_identity(cfg), MW_E_INPUT,
              "a TLS server needs a certificate and a key");
    MW_ENSURE(cfg->client_auth == MW_TLS_CLIENT_NONE || cfg->peer_check != NULL || has_ca(cfg),
              MW_E_INPUT, "client certificates need a CA bundle or a peer check");
    struct mw_tls_ctx *ctx;
    MW_GUARD(ctx_new(cfg, true, &ctx));
    SSL_CTX *ssl = ctx->ssl;
    if (mw_failed(use_identity(ssl, cfg, id)))
        goto err;
    if (cfg->client_auth != MW_TLS_CLIENT_NONE) {
        int mode = SSL_VERIFY_PEER;
        if (cfg->client_auth == MW_TLS_CLIENT_REQUIRE)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        if (has_ca(cfg) && mw_failed(load_cas(ssl, cfg)))
            goto err;
        if (cfg->peer_check != NULL)
            SSL_CTX_set_cert_verify_callback(ssl, verify_with_callback, ctx);
        SSL_CTX_set_verify(ssl, mode, NULL);
        /* Resumed sessions would skip the peer check; one context, one policy. */
        SSL_CTX_set_session_id_context(ssl, (const unsigned char *)"meshward", 8);
        /*
         * Stateless TLS 1.3 tickets (RFC 8446 §4.6.1), sealed with a key that
         * belongs to this context: a new context (a rotated certificate, new
         * bundles) cannot open tickets of the old one, so clients holding
         * them get a full handshake. Two per handshake, because clients use a
         * ticket once (RFC 8446 §C.4) and may open connections in parallel.
         * No early data: 0-RTT data could be replayed.
         */
        if (SSL_CTX_set_num_tickets(ssl, 2) != 1 || SSL_CTX_set_max_early_data(ssl, 0) != 1 ||
            SSL_CTX_set_session_ticket_cb(ssl, ticket_gen, ticket_dec, NULL) != 1) {
            mw_error_openssl(MW_E_CRYPTO, "setting up TLS 1.3 session tickets");
            goto err;
        }
    }
    *out = ctx;
    return MW_SUCCESS;
err:
    mw_tls_ctx_free(ctx);
    return MW_FAILURE;
}

static mw_result client_new(const struct mw_tls_config *cfg, const struct ossl_identity *id,
                            struct mw_tls_ctx **out)
{
    MW_ENSURE(cfg->peer_check != NULL || has_ca(cfg), MW_E_INPUT,
              "a TLS client needs a pinned CA bundle or a peer check");
    struct mw_tls_ctx *ctx;
    MW_GUARD(ctx_new(cfg, false, &ctx));
    SSL_CTX *ssl = ctx->ssl;
    if ((id != NULL || has_identity(cfg)) && mw_failed(use_identity(ssl, cfg, id)))
        goto err;
    if (has_ca(cfg) && mw_failed(load_cas(ssl, cfg)))
        goto err;
    if (cfg->peer_check != NULL)
        SSL_CTX_set_cert_verify_callback(ssl, verify_with_callback, ctx);
    SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    *out = ctx;
    return MW_SUCCESS;
err:
    mw_tls_ctx_free(ctx);
    return MW_FAILURE;
}

mw_result mw_tls_server_new(const struct mw_tls_config *cfg, struct mw_tls_ctx **out)
{
    return server_new(cfg, NULL, out);
}

mw_result mw_tls_client_new(const struct mw_tls_config *cfg, struct mw_tls_ctx **out)
{
    return client_new(cfg, NULL, out);
}

mw_result mw_tls_server_new_ossl(const struct mw_tls_config *cfg, X509 *leaf,
                                 STACK_OF(X509) * chain, EVP_PKEY *key, struct mw_tls_ctx **out)
{
    MW_ENSURE(leaf != NULL && key != NULL, MW_E_INPUT, "no certificate or key");
    struct ossl_identity id = {leaf, chain, key};
    return server_new(cfg, &id, out);
}

mw_result mw_tls_client_new_ossl(const struct mw_tls_config *cfg, X509 *leaf,
                                 STACK_OF(X509) * chain, EVP_PKEY *key, struct mw_tls_ctx **out)
{
    MW_ENSURE(leaf != NULL && key != NULL, MW_E_INPUT, "no certificate or key");
    struct ossl_identity id = {leaf, chain, key};
    return client_new(cfg, &id, out);
}

mw_result mw_tls_client_prepare(struct mw_tls_ctx *ctx, SSL *ssl, const char *server_name)
{
    if (server_name == NULL || server_name[0] == 0)
        return MW_SUCCESS;
    unsigned char ip[16];
    bool is_ip =
        inet_pton(AF_INET, server_name, ip) == 1 || inet_pton(AF_INET6, server_name, ip) == 1;
    /* RFC 6066 §3: SNI carries host names, never addresses. */
    if (!is_ip)
        MW_GUARD_OSSL(SSL_set_tlsext_host_name(ssl, server_name), MW_E_INPUT, "setting SNI \"%s\"",
                      server_name);
    if (ctx->peer_check == NULL) {
        if (is_ip) {
            MW_GUARD_OSSL(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name),
                          MW_E_INPUT, "setting the expected address %s", server_name);
        } else {
            MW_GUARD_OSSL(SSL_set1_host(ssl, server_name), MW_E_INPUT,
                          "setting the expected name %s", server_name);
        }
    }
    return MW_SUCCESS;
}
