/*
 * Control mode: follow `meshward control` with GET /v1/config long-polls
 * (docs/sidecar.md "Control mode").
 *
 * One request at a time runs on a worker thread with the blocking HTTP
 * client; it owns a job that holds copies of everything it needs (URL, a
 * TLS context holding a reference to our SVID, the pinned bundle) and hands
 * the answer back through ev_async. The loop applies a new version like a
 * reload: configuration file + documents + policies, swapped in whole or
 * refused whole. While the control plane cannot be reached the sidecar keeps
 * serving the last version it applied and says so in its metrics.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <meshward/ca_service.h>
#include <meshward/conf.h>

#include "net/net_internal.h"
#include "sidecar/sidecar_internal.h"

#define CONTROL_DOCS_MAX (16u << 20)
#define BACKOFF_MIN      1.0
#define BACKOFF_MAX      30.0

struct ctl_job {
    pthread_mutex_t mu;
    int refs;       /* the loop and the worker */
    bool abandoned; /* the sidecar stopped: do not signal */
    struct ev_loop *loop;
    ev_async *done;
    char url[1300];
    int timeout_ms;
    struct mw_tls_ctx *tls;
    struct mw_bundle *pin;  /* owned: the own trust domain's bundle */
    struct sc_ca_peer peer; /* the control plane is the CA service: spiffe://TD/meshward/ca */
    /* results */
    bool reached;
    int status;
    uint64_t version;
    struct mw_dynbuf docs;
    char error[512];
};

struct sc_control {
    struct mw_sidecar *sc;
    ev_async done;
    ev_timer next;
    struct ctl_job *job; /* in flight */
    uint64_t version;    /* last applied (0: none) */
    char *docs;          /* its documents */
    size_t docs_len;
    double backoff;
    bool reachable;
    uint64_t updates, failures, refused;
};

static void job_unref(struct ctl_job *j)
{
    pthread_mutex_lock(&j->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last)
        return;
    mw_tls_ctx_free(j->tls);
    mw_bundle_free(j->pin);
    mw_dynbuf_free(&j->docs);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

mw_result sc_control_parse_answer(mw_slice body, uint64_t *version, struct mw_dynbuf *docs)
{
    struct mw_conf_limits lim = mw_conf_default_limits;
    lim.max_bytes = 2 * CONTROL_DOCS_MAX;
    json_t *doc = NULL;
    MW_GUARD(mw_json_load(body, "control plane answer", &lim, &doc));
    json_t *v = json_object_get(doc, "version");
    json_t *d = json_object_get(doc, "documents");
    mw_result r = MW_SUCCESS;
    if (!json_is_object(doc) || !json_is_integer(v) || json_integer_value(v) <= 0 ||
        !json_is_string(d)) {
        mw_error_set(MW_E_INPUT, "control plane answer: want {version, workload, documents}");
        r = MW_FAILURE;
    }
    if (mw_ok(r)) {
        *version = (uint64_t)json_integer_value(v);
        r = mw_dynbuf_add(docs, json_string_value(d), json_string_length(d));
    }
    json_decref(doc);
    return r;
}

static void job_run(struct ctl_job *j)
{
    struct mw_http_client_request req = {
        .tls = j->tls,
        .timeout_ms = j->timeout_ms,
        .max_response = 2 * CONTROL_DOCS_MAX,
    };
    struct mw_http_client_response resp;
    if (mw_failed(mw_http_client_request_url(j->url, &req, &resp))) {
        snprintf(j->error, sizeof(j->error), "%s",
                 j->peer.why[0] != '\0' ? j->peer.why : mw_error_msg());
        return;
    }
    j->reached = true;
    j->status = resp.status;
    if (resp.status == 200 &&
        mw_failed(sc_control_parse_answer(mw_dynbuf_slice(&resp.body), &j->version, &j->docs)))
        snprintf(j->error, sizeof(j->error), "%s", mw_error_msg());
    else if (resp.status != 200 && resp.status != 304)
        snprintf(j->error, sizeof(j->error), "HTTP %d: %.300s", resp.status,
                 mw_dynbuf_cstr(&resp.body));
    mw_http_client_response_free(&resp);
}

static void *worker(void *arg)
{
    struct ctl_job *j = arg;
    job_run(j);
    pthread_mutex_lock(&j->mu);
    if (!j->abandoned)
        ev_async_send(j->loop, j->done);
    pthread_mutex_unlock(&j->mu);
    job_unref(j);
    return NULL;
}

/* A job for GET /v1/config?since=V&wait=S with our current SVID. */
static mw_result job_new(struct sc_control *ctl, uint64_t since, double wait, struct ctl_job **out)
{
    struct mw_sidecar *sc = ctl->sc;
    struct ctl_job *j = calloc(1, sizeof(*j));
    MW_ENSURE(j != NULL, MW_E_NOMEM, "out of memory");
    pthread_mutex_init(&j->mu, NULL);
    j->refs = 1;
    j->loop = sc->loop;
    j->done = &ctl->done;
    mw_dynbuf_init(&j->docs, CONTROL_DOCS_MAX);
    snprintf(j->url, sizeof(j->url), "%s/v1/config?since=%llu&wait=%u", sc->cfg->control_url,
             (unsigned long long)since, (unsigned)wait);
    /* The server holds the poll up to wait seconds; allow for the answer on top. */
    j->timeout_ms = (int)(wait * 1000) + 10000;
    snprintf(j->peer.want, sizeof(j->peer.want), "spiffe://%s%s", sc->cfg->td, MW_CA_SERVICE_PATH);
    const struct mw_bundle *pin = sc_identity_bundle(sc->id, sc->cfg->td);
    mw_result r = pin != NULL ? sc_bundle_dup(pin, &j->pin) : MW_FAILURE;
    if (pin == NULL)
        mw_error_set(MW_E_INPUT, "no bundle for the own trust domain %s", sc->cfg->td);
    if (mw_ok(r)) {
        j->peer.pin = j->pin;
        struct mw_tls_config tc = {
            .peer_check = sc_ca_peer_check,
            .peer_check_arg = &j->peer,
        };
        r = mw_tls_client_new_ossl(&tc, sc->id->leaf, sc->id->chain, sc->id->key, &j->tls);
    }
    if (mw_failed(r)) {
        job_unref(j);
        return MW_FAILURE;
    }
    *out = j;
    return MW_SUCCESS;
}

static void set_gauges(struct sc_control *ctl)
{
    struct mw_metrics *m = ctl->sc->metrics;
    if (m == NULL)
        return;
    sc_ignore(mw_metrics_gauge(m, "meshward_control_reachable",
                               "1 when the last exchange with the control plane succeeded, else 0",
                               ctl->reachable ? 1 : 0));
    sc_ignore(mw_metrics_gauge(m, "meshward_config_version",
                               "the control plane's configuration version in use",
                               (double)ctl->version));
    sc_ignore(mw_metrics_gauge(m, "meshward_config_updates_total",
                               "configuration versions applied from the control plane",
                               (double)ctl->updates));
    sc_ignore(mw_metrics_gauge(m, "meshward_control_failures_total",
                               "long-polls that failed (connection, TLS, HTTP error)",
                               (double)ctl->failures));
    sc_ignore(mw_metrics_gauge(m, "meshward_config_refused_total",
                               "versions from the control plane that did not apply",
                               (double)ctl->refused));
}

static void schedule(struct sc_control *ctl, double after)
{
    ev_timer_stop(ctl->sc->loop, &ctl->next);
    ev_timer_set(&ctl->next, after, 0.);
    ev_timer_start(ctl->sc->loop, &ctl->next);
}

static void start_poll(struct sc_control *ctl)
{
    if (ctl->job != NULL || ctl->sc->stopping)
        return;
    struct ctl_job *j;
    if (mw_failed(job_new(ctl, ctl->version, ctl->sc->cfg->control_wait, &j))) {
        mw_log_error("sidecar", "control poll not started: %s", mw_error_msg());
        schedule(ctl, BACKOFF_MAX);
        return;
    }
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    j->refs = 2;
    if (pthread_create(&t, &attr, worker, j) != 0) {
        j->refs = 1;
        job_unref(j);
        mw_log_error("sidecar", "%s", "control poll not started: no thread");
        schedule(ctl, BACKOFF_MAX);
    } else {
        ctl->job = j;
    }
    pthread_attr_destroy(&attr);
}

static void next_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    start_poll(w->data);
}

/* Keep the documents of a version the loop has applied. */
static mw_result keep_docs(struct sc_control *ctl, const struct ctl_job *j)
{
    char *copy = malloc(j->docs.n + 1);
    MW_ENSURE(copy != NULL, MW_E_NOMEM, "out of memory");
    memcpy(copy, j->docs.p, j->docs.n);
    copy[j->docs.n] = '\0';
    free(ctl->docs);
    ctl->docs = copy;
    ctl->docs_len = j->docs.n;
    ctl->version = j->version;
    return MW_SUCCESS;
}

static void done_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    struct sc_control *ctl = w->data;
    struct ctl_job *j = ctl->job;
    if (j == NULL)
        return;
    ctl->job = NULL;
    bool ok = j->reached && (j->status == 304 || (j->status == 200 && j->error[0] == '\0'));
    if (!ok) {
        ctl->failures++;
        if (ctl->reachable || ctl->backoff == 0)
            mw_log_warn("sidecar", "control plane %s: %s; serving version %llu",
                        ctl->sc->cfg->control_url, j->error[0] ? j->error : "no answer",
                        (unsigned long long)ctl->version);
        ctl->reachable = false;
        ctl->backoff = ctl->backoff == 0 ? BACKOFF_MIN : ctl->backoff * 2;
        if (ctl->backoff > BACKOFF_MAX)
            ctl->backoff = BACKOFF_MAX;
        set_gauges(ctl);
        job_unref(j);
        schedule(ctl, ctl->backoff);
        return;
    }
    if (!ctl->reachable && ctl->backoff != 0)
        mw_log_info("sidecar", "control plane %s reachable again", ctl->sc->cfg->control_url);
    ctl->reachable = true;
    ctl->backoff = 0;
    if (j->status == 200 && j->version != ctl->version) {
        bool same = ctl->docs != NULL && j->docs.n == ctl->docs_len &&
                    memcmp(j->docs.p, ctl->docs, j->docs.n) == 0;
        char *prev = ctl->docs;
        size_t prev_len = ctl->docs_len;
        uint64_t prev_version = ctl->version;
        ctl->docs = NULL;
        if (mw_failed(keep_docs(ctl, j))) {
            ctl->docs = prev;
        } else if (same) {
            /* Another namespace changed: same documents, nothing to reload. */
            free(prev);
        } else if (sc_reload_for_control(ctl->sc)) {
            free(prev);
            ctl->updates++;
            mw_log_info("sidecar", "control plane version %llu applied",
                        (unsigned long long)ctl->version);
        } else {
            /* Refused: keep serving the previous documents; wait for the next version. */
            free(ctl->docs);
            ctl->docs = prev;
            ctl->docs_len = prev_len;
            ctl->refused++;
            mw_log_error("sidecar", "control plane version %llu refused, still on %llu",
                         (unsigned long long)j->version, (unsigned long long)prev_version);
            ctl->version = j->version;
        }
    }
    set_gauges(ctl);
    job_unref(j);
    schedule(ctl, 0);
}

mw_slice sc_control_docs(const struct mw_sidecar *sc)
{
    if (sc->control == NULL || sc->control->docs == NULL)
        return mw_slice_make("", 0);
    return mw_slice_make(sc->control->docs, sc->control->docs_len);
}

mw_result sc_control_first(struct mw_sidecar *sc)
{
    struct sc_control *ctl = calloc(1, sizeof(*ctl));
    MW_ENSURE(ctl != NULL, MW_E_NOMEM, "out of memory");
    ctl->sc = sc;
    sc->control = ctl;
    ev_async_init(&ctl->done, done_cb);
    ctl->done.data = ctl;
    ev_init(&ctl->next, next_cb);
    ctl->next.data = ctl;
    /* The first answer is waited for here: no traffic is served without a configuration. */
    struct ctl_job *j;
    MW_GUARD(job_new(ctl, 0, 0, &j));
    job_run(j);
    mw_result r = MW_SUCCESS;
    if (!j->reached || j->status != 200 || j->error[0] != '\0') {
        mw_error_set(MW_E_IO, "no configuration from the control plane %s: %s",
                     sc->cfg->control_url, j->error[0] ? j->error : "no answer");
        r = MW_FAILURE;
    }
    if (mw_ok(r))
        r = keep_docs(ctl, j);
    if (mw_ok(r)) {
        ctl->reachable = true;
        mw_log_info("sidecar", "control plane %s: version %llu", sc->cfg->control_url,
                    (unsigned long long)ctl->version);
    }
    job_unref(j);
    return r;
}

void sc_control_start(struct mw_sidecar *sc)
{
    struct sc_control *ctl = sc->control;
    if (ctl == NULL)
        return;
    ctl->updates = 0;
    set_gauges(ctl);
    ev_async_start(sc->loop, &ctl->done);
    start_poll(ctl);
}

void sc_control_stop(struct mw_sidecar *sc)
{
    struct sc_control *ctl = sc->control;
    if (ctl == NULL)
        return;
    ev_timer_stop(sc->loop, &ctl->next);
    ev_async_stop(sc->loop, &ctl->done);
    if (ctl->job != NULL) {
        /* A poll may be held for pollTimeout: leave it to finish on its own. */
        pthread_mutex_lock(&ctl->job->mu);
        ctl->job->abandoned = true;
        pthread_mutex_unlock(&ctl->job->mu);
        job_unref(ctl->job);
    }
    free(ctl->docs);
    free(ctl);
    sc->control = NULL;
}
