/*
 * The sidecar's identity (static mode): the X.509-SVID and key from files,
 * the trust bundles per trust domain, the TLS contexts made from them, and
 * the validation of peers' SVIDs. Refuses an SVID that does not verify
 * against the bundle of its own trust domain or whose key does not match.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>

#include "base/mw_ossl.h"
#include "net/net_internal.h"
#include "sidecar/sidecar_internal.h"

#define MAX_PEM (1u << 20)

void sc_identity_free(struct sc_identity *id)
{
    if (id == NULL)
        return;
    X509_free(id->leaf);
    sk_X509_pop_free(id->chain, X509_free);
    EVP_PKEY_free(id->key);
    for (size_t i = 0; i < id->n_bundles; i++)
        mw_bundle_free(id->bundles[i]);
    free(id->bundles);
    free(id);
}

void sc_principal(const struct mw_spiffe_id *sid, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", sid->td, sid->path);
}

static const struct mw_bundle *bundle_for(const struct sc_identity *id, const char *td)
{
    for (size_t i = 0; i < id->n_bundles; i++)
        if (strcmp(mw_bundle_td(id->bundles[i]), td) == 0)
            return id->bundles[i];
    return NULL;
}

mw_result sc_identity_verify_peer(const struct sc_identity *id, mw_slice chain,
                                  struct mw_spiffe_id *peer)
{
    struct mw_x509svid *svid;
    MW_GUARD(mw_x509svid_parse_der(chain, mw_slice_make(NULL, 0), &svid));
    const struct mw_spiffe_id *sid = mw_x509svid_id(svid);
    const struct mw_bundle *b = bundle_for(id, sid->td);
    if (b == NULL) {
        mw_error_set(MW_E_VERIFY, "no trust bundle for trust domain \"%s\"", sid->td);
        mw_x509svid_free(svid);
        return MW_FAILURE;
    }
    mw_result r = mw_x509svid_verify(svid, b, NULL);
    if (mw_ok(r) && peer != NULL)
        *peer = *sid;
    mw_x509svid_free(svid);
    return r;
}

bool sc_peer_check(mw_slice chain, void *arg)
{
    struct mw_sidecar *sc = arg;
    if (mw_ok(sc_identity_verify_peer(sc->id, chain, NULL)))
        return true;
    mw_log_info("sidecar", "peer certificate refused: %s", mw_error_msg());
    return false;
}

static mw_result load_ossl(const struct mw_dynbuf *certs, const struct mw_dynbuf *key,
                           struct sc_identity *id)
{
    MW_DEFER(BIO) BIO *bio = BIO_new_mem_buf(certs->p, (int)certs->n);
    MW_ENSURE(bio != NULL, MW_E_NOMEM, "out of memory");
    id->leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    MW_GUARD_OSSL(id->leaf != NULL, MW_E_INPUT, "SVID: no certificate");
    id->chain = sk_X509_new_null();
    MW_ENSURE(id->chain != NULL, MW_E_NOMEM, "out of memory");
    for (;;) {
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (x == NULL)
            break;
        if (sk_X509_push(id->chain, x) <= 0) {
            X509_free(x);
            MW_BAIL(MW_E_NOMEM, "out of memory");
        }
    }
    ERR_clear_error();
    MW_DEFER(BIO) BIO *kbio = BIO_new_mem_buf(key->p, (int)key->n);
    MW_ENSURE(kbio != NULL, MW_E_NOMEM, "out of memory");
    id->key = PEM_read_bio_PrivateKey(kbio, NULL, NULL, NULL);
    MW_GUARD_OSSL(id->key != NULL, MW_E_INPUT, "SVID key: no PEM private key");
    MW_GUARD_OSSL(X509_check_private_key(id->leaf, id->key), MW_E_INPUT,
                  "the SVID key does not match its certificate");
    return MW_SUCCESS;
}

static mw_result identity_fill(const struct mw_sidecar_config *cfg, struct sc_identity *id)
{
    MW_ENSURE((id->bundles = calloc(cfg->n_bundles, sizeof(*id->bundles))) != NULL, MW_E_NOMEM,
              "out of memory");
    for (size_t i = 0; i < cfg->n_bundles; i++) {
        MW_GUARD(mw_bundle_load_file(cfg->bundles[i].file, MW_BUNDLE_FMT_AUTO, cfg->bundles[i].td,
                                     &id->bundles[i], NULL));
        id->n_bundles++;
    }
    /* Key files must be private; mw_x509svid_load_files checks the mode. */
    struct mw_x509svid *svid;
    MW_GUARD(mw_x509svid_load_files(cfg->cert_file, cfg->key_file, &svid));
    const struct mw_spiffe_id *sid = mw_x509svid_id(svid);
    mw_result r = MW_SUCCESS;
    const struct mw_bundle *own = bundle_for(id, sid->td);
    if (own == NULL) {
        mw_error_set(MW_E_VERIFY, "%s: no trust bundle for the SVID's trust domain \"%s\"",
                     cfg->cert_file, sid->td);
        r = MW_FAILURE;
    }
    if (mw_ok(r) && strcmp(sid->td, cfg->td) != 0) {
        mw_error_set(MW_E_VERIFY, "%s: SVID trust domain \"%s\", workload's is \"%s\"",
                     cfg->cert_file, sid->td, cfg->td);
        r = MW_FAILURE;
    }
    if (mw_ok(r)) {
        r = mw_x509svid_verify(svid, own, NULL);
        if (mw_failed(r))
            mw_error_prefix("%s: ", cfg->cert_file);
    }
    if (mw_ok(r)) {
        struct mw_cert_info ci;
        r = mw_x509svid_cert_info(svid, 0, &ci);
        id->not_after = ci.not_after;
        mw_spiffe_id_format(sid, id->spiffe_id, sizeof(id->spiffe_id));
        sc_principal(sid, id->principal, sizeof(id->principal));
        char want[512];
        snprintf(want, sizeof(want), "/ns/%s/sa/%s", cfg->ns, cfg->sa);
        if (strcmp(sid->path, want) != 0)
            mw_log_warn("sidecar", "SVID %s does not name the workload's %s", id->spiffe_id, want);
    }
    mw_x509svid_free(svid);
    MW_GUARD(r);

    struct mw_dynbuf certs, key;
    mw_dynbuf_init(&certs, MAX_PEM);
    mw_dynbuf_init_secure(&key, MAX_PEM);
    r = mw_file_read(cfg->cert_file, MAX_PEM, &certs);
    if (mw_ok(r))
        r = mw_file_read(cfg->key_file, MAX_PEM, &key);
    if (mw_ok(r))
        r = load_ossl(&certs, &key, id);
    mw_dynbuf_free(&certs);
    mw_dynbuf_free(&key);
    return r;
}

mw_result sc_identity_load(const struct mw_sidecar_config *cfg, struct sc_identity **out)
{
    struct sc_identity *id = calloc(1, sizeof(*id));
    MW_ENSURE(id != NULL, MW_E_NOMEM, "out of memory");
    if (mw_failed(identity_fill(cfg, id))) {
        sc_identity_free(id);
        return MW_FAILURE;
    }
    *out = id;
    return MW_SUCCESS;
}

mw_result sc_identity_tls(struct mw_sidecar *sc, struct sc_identity *id, struct mw_tls_ctx **server,
                          struct mw_tls_ctx **client)
{
    struct mw_tls_config tc = {
        .client_auth = MW_TLS_CLIENT_REQUIRE,
        .peer_check = sc_peer_check,
        .peer_check_arg = sc,
    };
    MW_GUARD(mw_tls_server_new_ossl(&tc, id->leaf, id->chain, id->key, server));
    tc.client_auth = MW_TLS_CLIENT_NONE;
    if (mw_failed(mw_tls_client_new_ossl(&tc, id->leaf, id->chain, id->key, client))) {
        mw_tls_ctx_free(*server);
        *server = NULL;
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

mw_result mw_sidecar_config_check(const struct mw_sidecar_config *cfg, struct mw_dynbuf *out)
{
    struct mw_policy_set *set;
    struct mw_policy_engine *engine;
    MW_GUARD(sc_policies_load(cfg, &set, &engine));
    struct mw_sidecar_config *c = (struct mw_sidecar_config *)cfg;
    sc_ports_resolve_mtls(c, set);
    struct sc_identity *id = NULL;
    mw_result r = sc_identity_load(cfg, &id);
    if (mw_ok(r)) {
        char exp[32];
        mw_time_format(id->not_after, exp, sizeof(exp));
        r = mw_dynbuf_addf(out,
                           "config %s: ok\nworkload %s/%s (service account %s)\n"
                           "identity %s, expires %s\n",
                           cfg->path, cfg->ns, cfg->name, cfg->sa, id->spiffe_id, exp);
    }
    for (size_t i = 0; mw_ok(r) && i < cfg->n_ports; i++) {
        const struct sc_port *p = &cfg->ports[i];
        r = mw_dynbuf_addf(out, "inbound port %u %s -> app %u, mTLS %s (%s)\n", p->port,
                           p->http ? "http" : "tcp", p->app_port, mw_policy_mtls_name(p->mtls),
                           p->mtls_policy ? p->mtls_policy : "default");
    }
    for (size_t i = 0; mw_ok(r) && i < cfg->n_services; i++)
        r = mw_dynbuf_addf(out, "service %s:%u -> %s (%zu endpoints)\n", cfg->services[i].name,
                           cfg->services[i].port, cfg->services[i].spiffe_id,
                           cfg->services[i].n_endpoints);
    if (mw_ok(r))
        r = mw_dynbuf_addf(out, "policies: %zu (ALLOW %zu, DENY %zu); egress declarations: %zu\n",
                           mw_policy_set_count(set), mw_policy_engine_count(engine, "ALLOW"),
                           mw_policy_engine_count(engine, "DENY"), cfg->n_egress);
    for (size_t i = 0; mw_ok(r) && i < mw_policy_set_warning_count(set); i++)
        r = mw_dynbuf_addf(out, "warning: %s\n", mw_policy_set_warning(set, i));
    sc_identity_free(id);
    mw_policy_engine_free(engine);
    mw_policy_set_free(set);
    return r;
}
