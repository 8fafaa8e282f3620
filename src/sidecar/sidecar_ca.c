/*
 * CA mode: the sidecar's SVID comes from the CA service (POST /v1/svid with
 * a CSR for a P-256 key made in memory and a workload credential), and the
 * trust domain's bundle from GET /v1/bundle. The connection to the CA is
 * pinned to the bundle of the workload's trust domain and the server must be
 * spiffe://TD/meshward/ca.
 *
 * Renewal runs on a worker thread, one exchange at a time: the blocking
 * client (bounded by SC_CA_TIMEOUT_MS per request) never stalls the event
 * loop, and the thread shares nothing with it but the job, which the loop
 * reads only after pthread_join (signalled with ev_async). The loop then
 * builds new TLS contexts and swaps them in as a SIGHUP reload does: new
 * handshakes use the new SVID, open connections keep theirs.
 *
 * Renewal presents the current SVID: while it is valid, the sidecar connects
 * with it as its TLS client certificate (key from memory) and posts a CSR
 * for a new key to POST /v1/svid/renew; the CA renews the identity the
 * certificate names. So a workload that joined with a single-use join token
 * renews for as long as it reaches the CA in time. The credential file is
 * posted again (POST /v1/svid) only when there is no valid SVID to present,
 * or when the CA refuses the renewal (401/403) and the credential is
 * reusable (a Kubernetes token). docs/sidecar.md "Identity: CA mode".
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>

#include <meshward/ca_auth.h>
#include <meshward/ca_service.h>
#include <meshward/conf.h>

#include "base/mw_ossl.h"
#include "net/net_internal.h"
#include "sidecar/sidecar_internal.h"

#define CRED_MAX     16384
#define RESPONSE_MAX (1u << 20)

/* ---------------------------------------------------------------- one exchange (any thread) */

mw_result sc_bundle_dup(const struct mw_bundle *b, struct mw_bundle **out)
{
    struct mw_dynbuf j;
    mw_dynbuf_init(&j, 4u << 20);
    mw_result r = mw_bundle_write_jwks(b, &j);
    if (mw_ok(r))
        r = mw_bundle_parse(mw_dynbuf_slice(&j), MW_BUNDLE_FMT_SPIFFE, mw_bundle_td(b), out, NULL);
    mw_dynbuf_free(&j);
    return r;
}

void sc_ca_job_clear(struct sc_ca_job *job)
{
    mw_bundle_free(job->pin);
    mw_bundle_free(job->bundle);
    X509_free(job->leaf);
    sk_X509_pop_free(job->chain, X509_free);
    EVP_PKEY_free(job->key);
    memset(job, 0, sizeof(*job));
}

mw_result sc_ca_job_init(struct sc_ca_job *job, const struct mw_sidecar_config *cfg,
                         const struct mw_bundle *pin, bool want_svid)
{
    memset(job, 0, sizeof(*job));
    MW_ENSURE(pin != NULL, MW_E_INPUT, "no bundle for the workload's trust domain \"%s\"", cfg->td);
    snprintf(job->url, sizeof(job->url), "%s", cfg->ca_url);
    snprintf(job->credential_file, sizeof(job->credential_file), "%s", cfg->credential_file);
    job->credential_kind = cfg->credential_kind;
    if (cfg->image_digest != NULL)
        snprintf(job->image_digest, sizeof(job->image_digest), "%s", cfg->image_digest);
    job->ttl = cfg->svid_ttl;
    snprintf(job->td, sizeof(job->td), "%s", cfg->td);
    snprintf(job->want_id, sizeof(job->want_id), "spiffe://%s/ns/%s/sa/%s", cfg->td, cfg->ns,
             cfg->sa);
    job->want_svid = want_svid;
    return sc_bundle_dup(pin, &job->pin);
}

/* The CA (or control plane) presents an SVID under the pinned bundle, for spiffe://TD/meshward/ca.
 */
bool sc_ca_peer_check(mw_slice chain, void *arg)
{
    struct sc_ca_peer *pe = arg;
    struct mw_x509svid *svid = NULL;
    char got[MW_SPIFFE_ID_MAX + 1] = "";
    bool ok = false;
    if (mw_failed(mw_x509svid_parse_der(chain, mw_slice_make(NULL, 0), &svid)) ||
        mw_failed(mw_x509svid_verify(svid, pe->pin, NULL)))
        snprintf(pe->why, sizeof(pe->why), "not the CA: %s", mw_error_msg());
    else if (!mw_spiffe_id_format(mw_x509svid_id(svid), got, sizeof(got)) ||
             strcmp(got, pe->want) != 0)
        snprintf(pe->why, sizeof(pe->why), "not the CA: server is %.200s, want %.200s", got,
                 pe->want);
    else
        ok = true;
    mw_x509svid_free(svid);
    return ok;
}

static mw_result request(struct sc_ca_job *job, struct mw_tls_ctx *tls, struct sc_ca_peer *pe,
                         const char *method, const char *path, mw_slice body,
                         struct mw_http_client_response *resp)
{
    struct mw_http_header hdr = {mw_slice_cstr("Content-Type"), mw_slice_cstr("application/json")};
    struct mw_http_client_request req = {
        .method = method,
        .headers = body.n > 0 ? &hdr : NULL,
        .nheaders = body.n > 0 ? 1 : 0,
        .body = body,
        .tls = tls,
        .timeout_ms = SC_CA_TIMEOUT_MS,
        .max_response = RESPONSE_MAX,
    };
    char url[1200];
    snprintf(url, sizeof(url), "%s%s", job->url, path);
    pe->why[0] = '\0';
    if (mw_failed(mw_http_client_request_url(url, &req, resp))) {
        if (pe->why[0] != '\0')
            mw_error_set(MW_E_VERIFY, "%s %s: %s", method, path, pe->why);
        else
            mw_error_prefix("%s %s: ", method, path);
        return MW_FAILURE;
    }
    job->reached = true;
    return MW_SUCCESS;
}

static mw_result fetch_bundle(struct sc_ca_job *job, struct mw_tls_ctx *tls, struct sc_ca_peer *pe)
{
    struct mw_http_client_response resp;
    MW_GUARD(request(job, tls, pe, "GET", "/v1/bundle", mw_slice_make(NULL, 0), &resp));
    mw_result r = MW_SUCCESS;
    if (resp.status != 200) {
        mw_error_set(MW_E_VERIFY, "GET /v1/bundle: status %d", resp.status);
        r = MW_FAILURE;
    } else {
        r = mw_bundle_parse(mw_dynbuf_slice(&resp.body), MW_BUNDLE_FMT_AUTO, job->td, &job->bundle,
                            NULL);
        if (mw_failed(r))
            mw_error_prefix("GET /v1/bundle: ");
    }
    mw_http_client_response_free(&resp);
    return r;
}

static mw_result make_key_and_csr(EVP_PKEY **key, struct mw_dynbuf *csr_pem)
{
    *key = EVP_EC_gen("P-256");
    MW_ENSURE(*key != NULL, MW_E_CRYPTO, "cannot make a P-256 key");
    X509_REQ *req = X509_REQ_new();
    MW_ENSURE(req != NULL, MW_E_NOMEM, "out of memory");
    MW_DEFER(BIO) BIO *cb = BIO_new(BIO_s_mem());
    bool ok = cb != NULL && X509_REQ_set_pubkey(req, *key) == 1 &&
              X509_REQ_sign(req, *key, EVP_sha256()) > 0 && PEM_write_bio_X509_REQ(cb, req) == 1;
    X509_REQ_free(req);
    if (!ok) {
        mw_error_openssl(MW_E_CRYPTO, "making the CSR");
        return MW_FAILURE;
    }
    const char *d;
    long n = BIO_get_mem_data(cb, &d);
    return mw_dynbuf_add(csr_pem, d, (size_t)n);
}

static mw_result request_body(const struct sc_ca_job *job, mw_slice token, mw_slice csr_pem,
                              struct mw_dynbuf *b)
{
    MW_GUARD(mw_dynbuf_add_cstr(b, "{\"csr\":"));
    MW_GUARD(mw_dynbuf_add_json_str(b, csr_pem));
    MW_GUARD(mw_dynbuf_add_cstr(b, ",\"credential\":{\"kind\":"));
    MW_GUARD(mw_dynbuf_add_json_str(b, mw_slice_cstr(mw_ca_cred_kind_name(job->credential_kind))));
    MW_GUARD(mw_dynbuf_add_cstr(b, ",\"token\":"));
    MW_GUARD(mw_dynbuf_add_json_str(b, token));
    MW_GUARD(mw_dynbuf_add_cstr(b, "}"));
    if (job->image_digest[0] != '\0') {
        MW_GUARD(mw_dynbuf_add_cstr(b, ",\"image_digest\":"));
        MW_GUARD(mw_dynbuf_add_json_str(b, mw_slice_cstr(job->image_digest)));
    }
    if (job->ttl > 0)
        MW_GUARD(mw_dynbuf_addf(b, ",\"ttl\":\"%llds\"", (long long)job->ttl));
    return mw_dynbuf_add_cstr(b, "}");
}

static mw_result read_credential(const struct sc_ca_job *job, struct mw_dynbuf *token)
{
    /* A join token is a bearer secret for one issuance: its file must be private. */
    if (job->credential_kind == MW_CA_CRED_JOIN)
        MW_GUARD(mw_file_check_private(job->credential_file));
    MW_GUARD(mw_file_read(job->credential_file, CRED_MAX, token));
    while (token->n > 0 && (token->p[token->n - 1] == '\n' || token->p[token->n - 1] == '\r'))
        token->n--;
    MW_ENSURE(token->n > 0, MW_E_INPUT, "%s: empty credential", job->credential_file);
    return MW_SUCCESS;
}

/* The SVID the CA answered: ours (key), under the bundle, naming this workload. */
static mw_result accept_svid(struct sc_ca_job *job, const char *chain_pem)
{
    const struct mw_bundle *b = job->bundle != NULL ? job->bundle : job->pin;
    struct mw_x509svid *svid;
    MW_GUARD(mw_x509svid_parse_pem(mw_slice_cstr(chain_pem), mw_slice_make(NULL, 0), &svid));
    char got[MW_SPIFFE_ID_MAX + MW_SPIFFE_TD_MAX + 16] = "";
    mw_result r = mw_x509svid_verify(svid, b, NULL);
    if (mw_ok(r) && (!mw_spiffe_id_format(mw_x509svid_id(svid), got, sizeof(got)) ||
                     strcmp(got, job->want_id) != 0)) {
        mw_error_set(MW_E_VERIFY, "the CA issued %.200s, this workload is %.200s", got,
                     job->want_id);
        r = MW_FAILURE;
    }
    struct mw_cert_info ci;
    if (mw_ok(r))
        r = mw_x509svid_cert_info(svid, 0, &ci);
    mw_x509svid_free(svid);
    MW_GUARD(r);
    job->not_before = ci.not_before;
    job->not_after = ci.not_after;

    MW_DEFER(BIO) BIO *bio = BIO_new_mem_buf(chain_pem, -1);
    MW_ENSURE(bio != NULL, MW_E_NOMEM, "out of memory");
    job->leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    MW_GUARD_OSSL(job->leaf != NULL, MW_E_INPUT, "svid_chain: no certificate");
    job->chain = sk_X509_new_null();
    MW_ENSURE(job->chain != NULL, MW_E_NOMEM, "out of memory");
    for (;;) {
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (x == NULL)
            break;
        if (sk_X509_push(job->chain, x) <= 0) {
            X509_free(x);
            MW_BAIL(MW_E_NOMEM, "out of memory");
        }
    }
    ERR_clear_error();
    MW_GUARD_OSSL(X509_check_private_key(job->leaf, job->key), MW_E_VERIFY,
                  "the SVID from the CA is not for this sidecar's key");
    return MW_SUCCESS;
}

/*
 * POST body to path (/v1/svid or /v1/svid/renew) and accept the SVID in the
 * answer. *status is the HTTP status when the CA answered, else 0.
 */
static mw_result post_for_svid(struct sc_ca_job *job, struct mw_tls_ctx *tls, struct sc_ca_peer *pe,
                               const char *path, mw_slice body, int *status)
{
    *status = 0;
    struct mw_http_client_response resp;
    MW_GUARD(request(job, tls, pe, "POST", path, body, &resp));
    *status = resp.status;
    json_t *doc = NULL;
    mw_result r = MW_SUCCESS;
    struct mw_conf_limits lim = {.max_bytes = RESPONSE_MAX, .max_depth = 4};
    if (mw_failed(mw_json_load(mw_dynbuf_slice(&resp.body), "response", &lim, &doc)) ||
        !json_is_object(doc)) {
        mw_error_set(MW_E_VERIFY, "POST %s: status %d, a body that is not JSON", path, resp.status);
        r = MW_FAILURE;
    } else if (resp.status != 200) {
        const char *e = json_string_value(json_object_get(doc, "error"));
        mw_error_set(MW_E_VERIFY, "POST %s refused (%d): %.300s", path, resp.status,
                     e != NULL ? e : "(no reason given)");
        r = MW_FAILURE;
    }
    if (mw_ok(r)) {
        const char *chain = json_string_value(json_object_get(doc, "svid_chain"));
        if (chain == NULL) {
            mw_error_set(MW_E_VERIFY, "POST %s: the response lacks svid_chain", path);
            r = MW_FAILURE;
        } else {
            r = accept_svid(job, chain);
            if (mw_failed(r))
                mw_error_prefix("the SVID from the CA: ");
        }
    }
    json_decref(doc);
    mw_http_client_response_free(&resp);
    return r;
}

static mw_result fetch_svid(struct sc_ca_job *job, struct mw_tls_ctx *tls, struct sc_ca_peer *pe)
{
    struct mw_dynbuf token, csr, body;
    mw_dynbuf_init_secure(&token, CRED_MAX);
    mw_dynbuf_init(&csr, MW_CA_SVID_REQUEST_MAX);
    mw_dynbuf_init_secure(&body, MW_CA_SVID_REQUEST_MAX * 2);
    int status = 0;
    mw_result r = read_credential(job, &token);
    if (mw_ok(r))
        r = make_key_and_csr(&job->key, &csr);
    if (mw_ok(r))
        r = request_body(job, mw_dynbuf_slice(&token), mw_dynbuf_slice(&csr), &body);
    mw_dynbuf_free(&token);
    if (mw_ok(r))
        r = post_for_svid(job, tls, pe, "/v1/svid", mw_dynbuf_slice(&body), &status);
    mw_dynbuf_free(&csr);
    mw_dynbuf_free(&body);
    return r;
}

/* The SVID in use, presented to renew it. Up-referenced by the loop; read-only here. */
struct sc_renew_from {
    X509 *leaf;
    STACK_OF(X509) * chain;
    EVP_PKEY *key;
};

/*
 * POST /v1/svid/renew over a connection that presents the current SVID.
 * *refused is set when the CA answered with 401 or 403 (it does not accept
 * that SVID as a credential), as opposed to not being reached.
 */
static mw_result renew_svid(struct sc_ca_job *job, const struct sc_renew_from *from,
                            struct sc_ca_peer *pe, bool *refused)
{
    *refused = false;
    struct mw_tls_config tc = {.peer_check = sc_ca_peer_check, .peer_check_arg = pe};
    struct mw_tls_ctx *tls = NULL;
    MW_GUARD(mw_tls_client_new_ossl(&tc, from->leaf, from->chain, from->key, &tls));
    struct mw_dynbuf csr, body;
    mw_dynbuf_init(&csr, MW_CA_SVID_REQUEST_MAX);
    mw_dynbuf_init(&body, MW_CA_SVID_REQUEST_MAX * 2);
    int status = 0;
    mw_result r = make_key_and_csr(&job->key, &csr);
    if (mw_ok(r))
        r = mw_dynbuf_add_cstr(&body, "{\"csr\":");
    if (mw_ok(r))
        r = mw_dynbuf_add_json_str(&body, mw_dynbuf_slice(&csr));
    if (mw_ok(r) && job->ttl > 0)
        r = mw_dynbuf_addf(&body, ",\"ttl\":\"%llds\"", (long long)job->ttl);
    if (mw_ok(r))
        r = mw_dynbuf_add_cstr(&body, "}");
    if (mw_ok(r)) {
        r = post_for_svid(job, tls, pe, "/v1/svid/renew", mw_dynbuf_slice(&body), &status);
        *refused = mw_failed(r) && (status == 401 || status == 403);
    }
    mw_dynbuf_free(&csr);
    mw_dynbuf_free(&body);
    mw_tls_ctx_free(tls);
    if (mw_failed(r)) {
        /* A key made for a renewal that did not happen is not reused for the fallback. */
        EVP_PKEY_free(job->key);
        job->key = NULL;
        X509_free(job->leaf);
        sk_X509_pop_free(job->chain, X509_free);
        job->leaf = NULL;
        job->chain = NULL;
    }
    return r;
}

static void job_run(struct sc_ca_job *job, const struct sc_renew_from *from)
{
    struct sc_ca_peer pe = {.pin = job->pin};
    snprintf(pe.want, sizeof(pe.want), "spiffe://%s%s", job->td, MW_CA_SERVICE_PATH);
    struct mw_tls_config tc = {.peer_check = sc_ca_peer_check, .peer_check_arg = &pe};
    struct mw_tls_ctx *tls = NULL;
    mw_result r = mw_tls_client_new(&tc, &tls);
    /* The bundle first: an SVID issued under a root added since start must verify. */
    if (mw_ok(r))
        r = fetch_bundle(job, tls, &pe);
    if (mw_ok(r) && job->want_svid && from != NULL) {
        bool refused = false;
        r = renew_svid(job, from, &pe, &refused);
        /*
         * Only a credential that can be used again is worth posting when the
         * CA refuses the SVID: a join token was spent at the first issuance.
         */
        if (mw_failed(r) && refused && job->credential_kind == MW_CA_CRED_K8S) {
            mw_log_warn("sidecar",
                        "renewal with the current SVID refused (%s); posting the "
                        "credential instead",
                        mw_error_msg());
            r = fetch_svid(job, tls, &pe);
        }
    } else if (mw_ok(r) && job->want_svid) {
        r = fetch_svid(job, tls, &pe);
    }
    mw_tls_ctx_free(tls);
    job->ok = mw_ok(r);
    if (!job->ok) {
        snprintf(job->error, sizeof(job->error), "%s", mw_error_msg());
        X509_free(job->leaf);
        sk_X509_pop_free(job->chain, X509_free);
        EVP_PKEY_free(job->key);
        job->leaf = NULL;
        job->chain = NULL;
        job->key = NULL;
    }
}

void sc_ca_job_run(struct sc_ca_job *job)
{
    job_run(job, NULL);
}

/* ---------------------------------------------------------------- the loop side */

struct sc_ca {
    struct mw_sidecar *sc;
    ev_timer renew, refresh;
    ev_async done;
    pthread_t thread;
    bool busy, renew_pending;
    struct sc_ca_job job;
    bool reachable;
    uint64_t failures, renewals;
    unsigned retries; /* consecutive failed renewals */
    bool expired_warned;
    struct sc_renew_from from; /* what the running job presents; NULL fields: nothing */
};

static void from_clear(struct sc_renew_from *f)
{
    X509_free(f->leaf);
    sk_X509_pop_free(f->chain, X509_free);
    EVP_PKEY_free(f->key);
    memset(f, 0, sizeof(*f));
}

/* The SVID in use, if it came from the CA and is valid now: what a renewal presents. */
static void from_current(struct sc_ca *ca)
{
    const struct sc_identity *id = ca->sc->id;
    int64_t now = mw_clock_now(NULL);
    from_clear(&ca->from);
    if (!id->from_ca || id->leaf == NULL || id->key == NULL || now < id->not_before ||
        now >= id->not_after)
        return;
    STACK_OF(X509) *chain = id->chain != NULL ? X509_chain_up_ref(id->chain) : NULL;
    if ((id->chain != NULL && chain == NULL) || X509_up_ref(id->leaf) != 1) {
        sk_X509_pop_free(chain, X509_free);
        return;
    }
    if (EVP_PKEY_up_ref(id->key) != 1) {
        X509_free(id->leaf);
        sk_X509_pop_free(chain, X509_free);
        return;
    }
    ca->from = (struct sc_renew_from){id->leaf, chain, id->key};
}

static void set_gauges(struct sc_ca *ca)
{
    struct mw_metrics *m = ca->sc->metrics;
    sc_ignore(mw_metrics_gauge(m, "meshward_ca_reachable",
                               "1 when the last exchange with the CA succeeded, else 0",
                               ca->reachable ? 1 : 0));
    sc_ignore(mw_metrics_gauge(m, "meshward_svid_renewal_failures_total",
                               "SVID renewals that failed (the last good SVID stays in use)",
                               (double)ca->failures));
    sc_ignore(mw_metrics_gauge(m, "meshward_svid_renewals_total",
                               "SVIDs received from the CA after the first", (double)ca->renewals));
}

static double uniform(void)
{
    uint32_t v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
        ERR_clear_error();
    return (double)v / 4294967295.0;
}

/*
 * The lifetime counts from when the SVID arrived, not from notBefore: the CA
 * backdates that by its skew allowance (10 s), which would eat a short TTL.
 */
static double lifetime(const struct sc_identity *id)
{
    int64_t from = id->received_at > id->not_before ? id->received_at : id->not_before;
    return id->not_after > from ? (double)(id->not_after - from) : 0;
}

/* Renew at fraction of the lifetime, ± jitter of that point (docs/sidecar.md). */
static void schedule_renewal(struct sc_ca *ca)
{
    const struct mw_sidecar_config *cfg = ca->sc->cfg;
    const struct sc_identity *id = ca->sc->id;
    double life = lifetime(id);
    double at = life * cfg->rotation_fraction * (1 + cfg->rotation_jitter * (2 * uniform() - 1));
    int64_t from = id->received_at > id->not_before ? id->received_at : id->not_before;
    double delay = (double)from + at - (double)mw_clock_now(NULL);
    if (delay < 0.5)
        delay = 0.5;
    ev_timer_stop(ca->sc->loop, &ca->renew);
    ev_timer_set(&ca->renew, delay, 0);
    ev_timer_start(ca->sc->loop, &ca->renew);
    mw_log_debug("sidecar", "next SVID renewal in %.1fs", delay);
}

/* After a failure: 1, 2, 4 ... s, capped at a tenth of the lifetime (1 s .. 60 s). */
static void schedule_retry(struct sc_ca *ca)
{
    const struct sc_identity *id = ca->sc->id;
    double cap = lifetime(id) / 10;
    cap = cap < 1 ? 1 : cap > 60 ? 60 : cap;
    unsigned shift = ca->retries > 1 ? ca->retries - 1 : 0;
    double delay = shift >= 6 ? cap : (double)(1u << shift);
    if (delay > cap)
        delay = cap;
    ev_timer_stop(ca->sc->loop, &ca->renew);
    ev_timer_set(&ca->renew, delay, 0);
    ev_timer_start(ca->sc->loop, &ca->renew);
}

static void *worker(void *arg)
{
    struct sc_ca *ca = arg;
    job_run(&ca->job, ca->from.leaf != NULL ? &ca->from : NULL);
    ev_async_send(ca->sc->loop, &ca->done);
    return NULL;
}

static void spawn(struct sc_ca *ca, bool want_svid)
{
    struct mw_sidecar *sc = ca->sc;
    const struct mw_bundle *pin = sc_identity_bundle(sc->id, sc->cfg->td);
    if (mw_failed(sc_ca_job_init(&ca->job, sc->cfg, pin, want_svid))) {
        mw_log_error("sidecar", "CA exchange not started: %s", mw_error_msg());
        sc_ca_job_clear(&ca->job);
        return;
    }
    if (want_svid)
        from_current(ca);
    if (pthread_create(&ca->thread, NULL, worker, ca) != 0) {
        mw_log_error("sidecar", "%s", "CA exchange not started: no thread");
        sc_ca_job_clear(&ca->job);
        from_clear(&ca->from);
        if (want_svid) {
            ca->failures++;
            ca->retries++;
            schedule_retry(ca);
        }
        return;
    }
    ca->busy = true;
}

static bool same_bundle(const struct mw_bundle *a, const struct mw_bundle *b)
{
    struct mw_dynbuf x, y;
    mw_dynbuf_init(&x, 4u << 20);
    mw_dynbuf_init(&y, 4u << 20);
    bool same = mw_ok(mw_bundle_write_jwks(a, &x)) && mw_ok(mw_bundle_write_jwks(b, &y)) &&
                x.n == y.n && memcmp(x.p, y.p, x.n) == 0;
    mw_dynbuf_free(&x);
    mw_dynbuf_free(&y);
    return same;
}

/* A new identity from the current one and the job's SVID and/or bundle; swapped in. */
static mw_result apply(struct sc_ca *ca)
{
    struct mw_sidecar *sc = ca->sc;
    struct sc_ca_job *job = &ca->job;
    const struct sc_identity *cur = sc->id;
    const char *td = sc->cfg->td;
    bool new_bundle = job->bundle != NULL && !same_bundle(job->bundle, sc_identity_bundle(cur, td));
    if (job->leaf == NULL && !new_bundle)
        return MW_SUCCESS;
    struct sc_identity *id = calloc(1, sizeof(*id));
    MW_ENSURE(id != NULL, MW_E_NOMEM, "out of memory");
    *id = (struct sc_identity){.from_ca = true, .own_from_ca = cur->own_from_ca || new_bundle};
    memcpy(id->spiffe_id, cur->spiffe_id, sizeof(id->spiffe_id));
    memcpy(id->principal, cur->principal, sizeof(id->principal));
    mw_result r = MW_SUCCESS;
    id->bundles = calloc(cur->n_bundles, sizeof(*id->bundles));
    if (id->bundles == NULL) {
        mw_error_set(MW_E_NOMEM, "%s", "out of memory");
        r = MW_FAILURE;
    }
    for (size_t i = 0; mw_ok(r) && i < cur->n_bundles; i++) {
        if (new_bundle && strcmp(mw_bundle_td(cur->bundles[i]), td) == 0) {
            id->bundles[i] = job->bundle;
            job->bundle = NULL;
        } else {
            r = sc_bundle_dup(cur->bundles[i], &id->bundles[i]);
        }
        if (mw_ok(r))
            id->n_bundles++;
    }
    if (mw_ok(r) && job->leaf != NULL) {
        id->leaf = job->leaf;
        id->chain = job->chain;
        id->key = job->key;
        job->leaf = NULL;
        job->chain = NULL;
        job->key = NULL;
        id->not_before = job->not_before;
        id->not_after = job->not_after;
        id->received_at = mw_clock_now(NULL);
    } else if (mw_ok(r)) {
        id->chain = X509_chain_up_ref(cur->chain);
        if (id->chain == NULL || X509_up_ref(cur->leaf) != 1 || EVP_PKEY_up_ref(cur->key) != 1) {
            mw_error_set(MW_E_NOMEM, "%s", "out of memory");
            r = MW_FAILURE;
        } else {
            id->leaf = cur->leaf;
            id->key = cur->key;
        }
        id->not_before = cur->not_before;
        id->not_after = cur->not_after;
        id->received_at = cur->received_at;
    }
    struct mw_tls_ctx *srv = NULL, *cli = NULL;
    if (mw_ok(r))
        r = sc_identity_tls(sc, id, &srv, &cli);
    if (mw_failed(r)) {
        sc_identity_free(id);
        return MW_FAILURE;
    }
    struct sc_identity *old = sc->id;
    struct mw_tls_ctx *old_srv = sc->tls_server, *old_cli = sc->tls_client;
    sc->id = id;
    sc->tls_server = srv;
    sc->tls_client = cli;
    /* Open connections hold their own references to the old contexts. */
    mw_tls_ctx_free(old_srv);
    mw_tls_ctx_free(old_cli);
    sc_identity_free(old);
    if (new_bundle)
        mw_log_info("sidecar", "trust bundle of %s updated from the CA", td);
    return MW_SUCCESS;
}

static void done_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    struct sc_ca *ca = w->data;
    if (!ca->busy)
        return;
    (void)pthread_join(ca->thread, NULL);
    ca->busy = false;
    from_clear(&ca->from);
    struct sc_ca_job *job = &ca->job;
    bool renewal = job->want_svid;
    ca->reachable = job->reached && job->ok;
    if (job->ok && mw_failed(apply(ca))) {
        mw_log_error("sidecar", "the CA's answer could not be used: %s", mw_error_msg());
        job->ok = false;
    }
    char exp[32];
    if (renewal && job->ok) {
        ca->renewals++;
        ca->retries = 0;
        ca->expired_warned = false;
        mw_time_format(ca->sc->id->not_after, exp, sizeof(exp));
        mw_log_info("sidecar", "SVID renewed: %s until %s", ca->sc->id->spiffe_id, exp);
        schedule_renewal(ca);
    } else if (renewal) {
        ca->failures++;
        ca->retries++;
        mw_time_format(ca->sc->id->not_after, exp, sizeof(exp));
        bool expired = ca->sc->id->not_after <= mw_clock_now(NULL);
        if (expired && !ca->expired_warned)
            mw_log_error("sidecar",
                         "SVID expired at %s and not renewed (%s): /readyz is 503 and "
                         "new handshakes are refused until the CA answers%s",
                         exp, job->error,
                         ca->sc->cfg->credential_kind == MW_CA_CRED_JOIN
                             ? "; with no valid SVID to present, the sidecar posts its "
                               "credential file: put a new join token there"
                             : "");
        else if (!expired)
            mw_log_warn("sidecar", "SVID renewal failed (%s); serving with the SVID valid until %s",
                        job->error, exp);
        ca->expired_warned = ca->expired_warned || expired;
        schedule_retry(ca);
    } else if (!job->ok) {
        mw_log_warn("sidecar", "trust bundle refresh failed: %s", job->error);
    }
    sc_ca_job_clear(job);
    set_gauges(ca);
    if (ca->renew_pending) {
        ca->renew_pending = false;
        spawn(ca, true);
    }
}

static void renew_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sc_ca *ca = w->data;
    const struct mw_sidecar_config *cfg = ca->sc->cfg;
    if (cfg->id_mode != SC_ID_CA)
        return;
    if (ca->busy) {
        ca->renew_pending = true;
        return;
    }
    spawn(ca, true);
}

static void refresh_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sc_ca *ca = w->data;
    if (ca->sc->cfg->id_mode == SC_ID_CA && !ca->busy && !ca->sc->stopping)
        spawn(ca, false);
}

mw_result sc_ca_start(struct mw_sidecar *sc)
{
    if (sc->cfg->id_mode != SC_ID_CA)
        return MW_SUCCESS;
    struct sc_ca *ca = calloc(1, sizeof(*ca));
    MW_ENSURE(ca != NULL, MW_E_NOMEM, "out of memory");
    ca->sc = sc;
    ca->reachable = true; /* the SVID in use just came from it */
    ev_async_init(&ca->done, done_cb);
    ca->done.data = ca;
    ev_async_start(sc->loop, &ca->done);
    ev_init(&ca->renew, renew_cb);
    ca->renew.data = ca;
    ev_init(&ca->refresh, refresh_cb);
    ca->refresh.data = ca;
    ev_timer_set(&ca->refresh, sc->cfg->bundle_refresh, sc->cfg->bundle_refresh);
    ev_timer_start(sc->loop, &ca->refresh);
    sc->ca = ca;
    schedule_renewal(ca);
    set_gauges(ca);
    return MW_SUCCESS;
}

void sc_ca_stop(struct mw_sidecar *sc)
{
    struct sc_ca *ca = sc->ca;
    if (ca == NULL)
        return;
    /* Bounded by the client's deadline (SC_CA_TIMEOUT_MS per request). */
    if (ca->busy)
        (void)pthread_join(ca->thread, NULL);
    ev_timer_stop(sc->loop, &ca->renew);
    ev_timer_stop(sc->loop, &ca->refresh);
    ev_async_stop(sc->loop, &ca->done);
    sc_ca_job_clear(&ca->job);
    from_clear(&ca->from);
    free(ca);
    sc->ca = NULL;
}
