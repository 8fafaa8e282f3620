/*
 * The sidecar's identity: the X.509-SVID and key (static mode: from files;
 * CA mode: a key made in memory and an SVID from the CA, sidecar_ca.c), the
 * trust bundles per trust domain, the TLS contexts made from them, and the
 * validation of peers' SVIDs. Refuses an SVID that does not verify against
 * the bundle of its own trust domain or whose key does not match.
 */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>

#include <meshward/ca_auth.h>

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

const struct mw_bundle *sc_identity_bundle(const struct sc_identity *id, const char *td)
{
    for (size_t i = 0; i < id->n_bundles; i++)
        if (strcmp(mw_bundle_td(id->bundles[i]), td) == 0)
            return id->bundles[i];
    return NULL;
}

mw_result sc_identity_verify_peer(const struct sc_identity *id, mw_slice chain,
                                  struct mw_spiffe_id *peer, enum sc_hs_fail *why)
{
    enum sc_hs_fail ignored;
    if (why == NULL)
        why = &ignored;
    *why = SC_HSF_BAD_CERTIFICATE;
    struct mw_x509svid *svid;
    MW_GUARD(mw_x509svid_parse_der(chain, mw_slice_make(NULL, 0), &svid));
    const struct mw_spiffe_id *sid = mw_x509svid_id(svid);
    const struct mw_bundle *b = sc_identity_bundle(id, sid->td);
    if (b == NULL) {
        *why = SC_HSF_UNKNOWN_TD;
        mw_error_set(MW_E_VERIFY, "no trust bundle for trust domain \"%s\"", sid->td);
        mw_x509svid_free(svid);
        return MW_FAILURE;
    }
    mw_result r = mw_x509svid_verify(svid, b, NULL);
    if (mw_ok(r))
        *why = SC_HSF_NONE;
    if (mw_ok(r) && peer != NULL)
        *peer = *sid;
    mw_x509svid_free(svid);
    return r;
}

mw_result sc_identity_handshake_peer(const struct sc_identity *id, SSL *ssl,
                                     struct mw_spiffe_id *peer, enum sc_hs_fail *why)
{
    enum sc_hs_fail ignored;
    if (why == NULL)
        why = &ignored;
    *why = SC_HSF_BAD_CERTIFICATE;
    bool resumed = SSL_session_reused(ssl) == 1;
    if (resumed && id->not_after <= mw_clock_now(NULL)) {
        *why = SC_HSF_OWN_SVID_EXPIRED;
        MW_BAIL(MW_E_VERIFY, "resumed session refused: this sidecar's SVID expired");
    }
    struct mw_dynbuf der;
    mw_dynbuf_init(&der, 1 << 20);
    mw_result r = mw_tls_peer_chain_der(ssl, &der);
    if (mw_ok(r) && resumed) {
        r = sc_identity_verify_peer(id, mw_dynbuf_slice(&der), peer, why);
        if (mw_failed(r))
            mw_error_prefix("resumed session: ");
    } else if (mw_ok(r)) {
        struct mw_x509svid *svid;
        r = mw_x509svid_parse_der(mw_dynbuf_slice(&der), mw_slice_make(NULL, 0), &svid);
        if (mw_ok(r)) {
            *peer = *mw_x509svid_id(svid);
            mw_x509svid_free(svid);
        }
    }
    mw_dynbuf_free(&der);
    if (mw_ok(r))
        *why = SC_HSF_NONE;
    return r;
}

bool sc_peer_check(mw_slice chain, void *arg)
{
    struct mw_sidecar *sc = arg;
    /*
     * With our own SVID expired (the CA unreachable for a whole TTL) no new
     * handshake is made either way: peers would refuse the certificate, and
     * serving with it would let a stale identity live on.
     */
    if (sc->id->not_after <= mw_clock_now(NULL)) {
        sc->check_refusal = SC_HSF_OWN_SVID_EXPIRED;
        mw_log_warn("sidecar", "handshake refused: this sidecar's SVID expired (CA unreachable?)");
        return false;
    }
    enum sc_hs_fail why;
    if (mw_ok(sc_identity_verify_peer(sc->id, chain, NULL, &why)))
        return true;
    sc->check_refusal = why;
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

static mw_result load_bundles(const struct mw_sidecar_config *cfg, struct sc_identity *id)
{
    MW_ENSURE((id->bundles = calloc(cfg->n_bundles, sizeof(*id->bundles))) != NULL, MW_E_NOMEM,
              "out of memory");
    for (size_t i = 0; i < cfg->n_bundles; i++) {
        MW_GUARD(mw_bundle_load_file(cfg->bundles[i].file, MW_BUNDLE_FMT_AUTO, cfg->bundles[i].td,
                                     &id->bundles[i], NULL));
        id->n_bundles++;
    }
    return MW_SUCCESS;
}

static void set_names(struct sc_identity *id, const struct mw_spiffe_id *sid)
{
    mw_spiffe_id_format(sid, id->spiffe_id, sizeof(id->spiffe_id));
    sc_principal(sid, id->principal, sizeof(id->principal));
}

static mw_result identity_fill(const struct mw_sidecar_config *cfg, struct sc_identity *id)
{
    MW_GUARD(load_bundles(cfg, id));
    /* Key files must be private; mw_x509svid_load_files checks the mode. */
    struct mw_x509svid *svid;
    MW_GUARD(mw_x509svid_load_files(cfg->cert_file, cfg->key_file, &svid));
    const struct mw_spiffe_id *sid = mw_x509svid_id(svid);
    mw_result r = MW_SUCCESS;
    const struct mw_bundle *own = sc_identity_bundle(id, sid->td);
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
        id->not_before = ci.not_before;
        set_names(id, sid);
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

/* Replace the bundle of td (which must be there) with b, taking it. */
static void replace_bundle(struct sc_identity *id, const char *td, struct mw_bundle *b)
{
    for (size_t i = 0; i < id->n_bundles; i++)
        if (strcmp(mw_bundle_td(id->bundles[i]), td) == 0) {
            mw_bundle_free(id->bundles[i]);
            id->bundles[i] = b;
            return;
        }
    mw_bundle_free(b);
}

static mw_result names_from_leaf(struct sc_identity *id)
{
    struct mw_x509svid *svid;
    MW_DEFER(BIO) BIO *bio = BIO_new(BIO_s_mem());
    MW_ENSURE(bio != NULL && PEM_write_bio_X509(bio, id->leaf) == 1, MW_E_NOMEM, "out of memory");
    const char *d;
    long n = BIO_get_mem_data(bio, &d);
    MW_GUARD(mw_x509svid_parse_pem(mw_slice_make(d, (size_t)n), mw_slice_make(NULL, 0), &svid));
    set_names(id, mw_x509svid_id(svid));
    mw_x509svid_free(svid);
    return MW_SUCCESS;
}

/* CA mode at start: a key in memory, a CSR, POST /v1/svid, the SVID checked (sidecar_ca.c). */
static mw_result identity_from_ca(const struct mw_sidecar_config *cfg, struct sc_identity *id)
{
    MW_GUARD(load_bundles(cfg, id));
    /* The key lives in OpenSSL's secure heap where it can, and the process is not dumpable. */
    mw_secmem_openssl_heap();
    if (mw_failed(mw_secmem_harden_process()))
        mw_log_warn("sidecar", "%s", mw_error_msg());
    struct sc_ca_job job;
    MW_GUARD(sc_ca_job_init(&job, cfg, sc_identity_bundle(id, cfg->td), true));
    sc_ca_job_run(&job);
    if (!job.ok) {
        mw_error_set(MW_E_VERIFY, "no SVID from the CA %s: %s", cfg->ca_url, job.error);
        sc_ca_job_clear(&job);
        return MW_FAILURE;
    }
    id->leaf = job.leaf;
    id->chain = job.chain;
    id->key = job.key;
    job.leaf = NULL;
    job.chain = NULL;
    job.key = NULL;
    id->not_before = job.not_before;
    id->not_after = job.not_after;
    id->received_at = mw_clock_now(NULL);
    id->from_ca = true;
    if (job.bundle != NULL) {
        replace_bundle(id, cfg->td, job.bundle);
        job.bundle = NULL;
        id->own_from_ca = true;
    }
    sc_ca_job_clear(&job);
    return names_from_leaf(id);
}

/* CA mode on SIGHUP: the SVID and key stay (a join token cannot be spent twice). */
static mw_result identity_keep(const struct mw_sidecar_config *cfg, const struct sc_identity *cur,
                               struct sc_identity *id)
{
    MW_GUARD(load_bundles(cfg, id));
    MW_ENSURE(sc_identity_bundle(id, cfg->td) != NULL, MW_E_INPUT,
              "no bundle for the workload's trust domain \"%s\"", cfg->td);
    if (cur->own_from_ca) {
        struct mw_bundle *b;
        MW_GUARD(sc_bundle_dup(sc_identity_bundle(cur, cfg->td), &b));
        replace_bundle(id, cfg->td, b);
        id->own_from_ca = true;
    }
    MW_ENSURE((id->chain = X509_chain_up_ref(cur->chain)) != NULL, MW_E_NOMEM, "out of memory");
    MW_ENSURE(X509_up_ref(cur->leaf) == 1, MW_E_NOMEM, "out of memory");
    id->leaf = cur->leaf;
    MW_ENSURE(EVP_PKEY_up_ref(cur->key) == 1, MW_E_NOMEM, "out of memory");
    id->key = cur->key;
    id->not_before = cur->not_before;
    id->not_after = cur->not_after;
    id->received_at = cur->received_at;
    id->from_ca = true;
    memcpy(id->spiffe_id, cur->spiffe_id, sizeof(id->spiffe_id));
    memcpy(id->principal, cur->principal, sizeof(id->principal));
    return MW_SUCCESS;
}

mw_result sc_identity_load(const struct mw_sidecar_config *cfg, const struct sc_identity *cur,
                           struct sc_identity **out)
{
    bool ca = cfg->id_mode == SC_ID_CA;
    MW_ENSURE(cur == NULL || cur->from_ca == ca, MW_E_INPUT,
              "the identity mode changed (%s to %s): restart the sidecar for that",
              cur != NULL && cur->from_ca ? "ca" : "static", ca ? "ca" : "static");
    struct sc_identity *id = calloc(1, sizeof(*id));
    MW_ENSURE(id != NULL, MW_E_NOMEM, "out of memory");
    mw_result r = !ca           ? identity_fill(cfg, id)
                  : cur == NULL ? identity_from_ca(cfg, id)
                                : identity_keep(cfg, cur, id);
    if (mw_failed(r)) {
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
    /* A new client context for every new SVID or bundle: its session cache starts empty. */
    if (mw_failed(sc_session_attach(*client))) {
        mw_tls_ctx_free(*server);
        mw_tls_ctx_free(*client);
        *server = *client = NULL;
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

/*
 * check-config in CA mode: the bundles, the credential file and GET /v1/bundle
 * over the pinned connection. No SVID is asked for: that would spend a join
 * token.
 */
static mw_result check_ca(const struct mw_sidecar_config *cfg, struct mw_dynbuf *out)
{
    struct sc_identity tmp;
    memset(&tmp, 0, sizeof(tmp));
    mw_result r = load_bundles(cfg, &tmp);
    struct mw_dynbuf cred;
    mw_dynbuf_init_secure(&cred, 16384);
    if (mw_ok(r))
        r = mw_file_read(cfg->credential_file, 16384, &cred);
    mw_dynbuf_free(&cred);
    struct sc_ca_job job;
    bool have_job = false;
    if (mw_ok(r)) {
        r = sc_ca_job_init(&job, cfg, sc_identity_bundle(&tmp, cfg->td), false);
        have_job = mw_ok(r);
    }
    if (have_job) {
        sc_ca_job_run(&job);
        if (!job.ok) {
            mw_error_set(MW_E_VERIFY, "the CA %s: %s", cfg->ca_url, job.error);
            r = MW_FAILURE;
        }
        sc_ca_job_clear(&job);
    }
    for (size_t i = 0; i < tmp.n_bundles; i++)
        mw_bundle_free(tmp.bundles[i]);
    free(tmp.bundles);
    if (mw_ok(r))
        r = mw_dynbuf_addf(out,
                           "config %s: ok\nworkload %s/%s (service account %s)\n"
                           "identity from the CA %s (%s; the CA answered GET /v1/bundle; no SVID "
                           "asked for by check-config)\n",
                           cfg->path, cfg->ns, cfg->name, cfg->sa, cfg->ca_url,
                           mw_ca_cred_kind_name(cfg->credential_kind));
    return r;
}

mw_result mw_sidecar_config_check(const struct mw_sidecar_config *cfg, struct mw_dynbuf *out)
{
    struct mw_policy_set *set;
    struct mw_policy_engine *engine;
    MW_GUARD(sc_policies_load(cfg, &set, &engine));
    struct mw_sidecar_config *c = (struct mw_sidecar_config *)cfg;
    sc_ports_resolve_mtls(c, set);
    struct sc_identity *id = NULL;
    mw_result r;
    if (cfg->id_mode == SC_ID_CA) {
        r = check_ca(cfg, out);
    } else {
        r = sc_identity_load(cfg, NULL, &id);
        if (mw_ok(r)) {
            char exp[32];
            mw_time_format(id->not_after, exp, sizeof(exp));
            r = mw_dynbuf_addf(out,
                               "config %s: ok\nworkload %s/%s (service account %s)\n"
                               "identity %s, expires %s\n",
                               cfg->path, cfg->ns, cfg->name, cfg->sa, id->spiffe_id, exp);
        }
    }
    for (size_t i = 0; mw_ok(r) && i < cfg->n_ports; i++) {
        const struct sc_port *p = &cfg->ports[i];
        r = mw_dynbuf_addf(out, "inbound port %u %s -> app %u, mTLS %s (%s)\n", p->port,
                           p->http ? "http" : "tcp", p->app_port, mw_policy_mtls_name(p->mtls),
                           p->mtls_policy ? p->mtls_policy : "default");
    }
    for (size_t i = 0; mw_ok(r) && i < cfg->n_services; i++) {
        const struct sc_service *sv = &cfg->services[i];
        if (sv->spiffe_id == NULL) /* control mode: the registry says where and who */
            r = mw_dynbuf_addf(out, "service %s:%u on local port %u (from the control plane)\n",
                               sv->name, sv->port, sv->local_port);
        else
            r = mw_dynbuf_addf(out, "service %s:%u -> %s (%zu endpoints)\n", sv->name, sv->port,
                               sv->spiffe_id, sv->n_endpoints);
    }
    if (mw_ok(r) && cfg->control_url != NULL)
        r = mw_dynbuf_addf(out,
                           "control plane %s: policies, egress and the registry come from it "
                           "(not checked here)\n",
                           cfg->control_url);
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
