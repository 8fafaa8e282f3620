/*
 * The sidecar process: listeners, the admin port (/metrics, /healthz,
 * /readyz), signals (SIGHUP reloads, SIGINT/SIGTERM stop gracefully) and
 * the reload itself: a new configuration, policies, SVID and bundles are
 * loaded completely before anything is swapped, so a bad file leaves the
 * sidecar serving with what it had.
 */
#include <malloc.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "sidecar/sidecar_internal.h"

#define STOP_GRACE 5.0 /* seconds open connections get to finish at stop */

void sc_labels_init(const struct mw_sidecar *sc, struct mw_istio_labels *l, bool inbound)
{
    const struct mw_sidecar_config *cfg = sc->cfg;
    memset(l, 0, sizeof(*l));
    l->reporter = inbound ? "destination" : "source";
    if (inbound) {
        l->destination_workload = cfg->name;
        l->destination_workload_namespace = cfg->ns;
        l->destination_principal = sc->id->spiffe_id;
        l->destination_app = cfg->name;
        l->destination_service_name = cfg->name;
        l->destination_service_namespace = cfg->ns;
    } else {
        l->source_workload = cfg->name;
        l->source_workload_namespace = cfg->ns;
        l->source_principal = sc->id->spiffe_id;
        l->source_app = cfg->name;
    }
    l->response_flags = "-";
    l->connection_security_policy = "unknown";
}

/* ---------------------------------------------------------------- listeners */

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sc_listener *l = w->data;
    struct mw_sidecar *sc = l->sc;
    /* Bounded: other listeners and connections get their turn. */
    for (int i = 0; i < 64; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                mw_log_warn("sidecar", "accept: %s", strerror(errno));
            return;
        }
        if (sc->stopping || sc->n_conns >= sc->cfg->max_connections) {
            close(fd);
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (l->kind == SC_L_INBOUND || l->kind == SC_L_INBOUND_PORT)
            sc_inbound_accept(sc, l, fd);
        else
            sc_outbound_accept(sc, l, fd);
    }
}

static mw_result listen_on(struct mw_sidecar *sc, const char *address, uint16_t port, int kind,
                           size_t index)
{
    struct sc_addr a;
    MW_GUARD(sc_addr_parse(address, port, &a));
    int fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    MW_ENSURE(fd >= 0, MW_E_IO, "socket: %s", strerror(errno));
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a.ss, a.len) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        close(fd);
        MW_BAIL(MW_E_IO, "listening on %s: %s", a.text, strerror(e));
    }
    struct sc_listener *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        close(fd);
        MW_BAIL(MW_E_NOMEM, "out of memory");
    }
    l->fd = fd;
    l->kind = kind;
    l->index = index;
    l->sc = sc;
    ev_io_init(&l->io, accept_cb, fd, EV_READ);
    l->io.data = l;
    ev_io_start(sc->loop, &l->io);
    l->next = sc->listeners;
    sc->listeners = l;
    mw_log_info("sidecar", "listening on %s (%s)", a.text,
                kind == SC_L_INBOUND        ? "inbound, transparent"
                : kind == SC_L_INBOUND_PORT ? "inbound"
                : kind == SC_L_OUTBOUND     ? "outbound"
                                            : "outbound service");
    return MW_SUCCESS;
}

static mw_result listeners_open(struct mw_sidecar *sc)
{
    const struct mw_sidecar_config *cfg = sc->cfg;
    if (cfg->in_port != 0)
        MW_GUARD(listen_on(sc, cfg->in_address, cfg->in_port, SC_L_INBOUND, 0));
    for (size_t i = 0; i < cfg->n_ports; i++) {
        if (cfg->ports[i].listen_port == 0)
            continue;
        MW_GUARD(listen_on(sc, cfg->in_address, cfg->ports[i].listen_port, SC_L_INBOUND_PORT, i));
    }
    if (cfg->out_port != 0)
        MW_GUARD(listen_on(sc, cfg->out_address, cfg->out_port, SC_L_OUTBOUND, 0));
    for (size_t i = 0; i < cfg->n_services; i++)
        if (cfg->services[i].local_port != 0)
            MW_GUARD(listen_on(sc, cfg->out_address, cfg->services[i].local_port, SC_L_SERVICE, i));
    return MW_SUCCESS;
}

static void listeners_close(struct mw_sidecar *sc)
{
    while (sc->listeners != NULL) {
        struct sc_listener *l = sc->listeners;
        sc->listeners = l->next;
        ev_io_stop(sc->loop, &l->io);
        close(l->fd);
        free(l);
    }
}

/* The same sockets are needed: listeners stay open across reloads. */
static bool same_listeners(const struct mw_sidecar_config *a, const struct mw_sidecar_config *b)
{
    if (a->in_port != b->in_port || a->out_port != b->out_port || a->n_ports != b->n_ports ||
        a->n_services != b->n_services || strcmp(a->in_address, b->in_address) != 0 ||
        strcmp(a->out_address, b->out_address) != 0 || a->admin_port != b->admin_port)
        return false;
    for (size_t i = 0; i < a->n_ports; i++)
        if (a->ports[i].listen_port != b->ports[i].listen_port)
            return false;
    for (size_t i = 0; i < a->n_services; i++)
        if (a->services[i].local_port != b->services[i].local_port)
            return false;
    return true;
}

/* ---------------------------------------------------------------- admin */

static bool svid_valid(const struct mw_sidecar *sc)
{
    return sc->id != NULL && sc->id->not_after > mw_clock_now(NULL);
}

static void update_gauges(struct mw_sidecar *sc)
{
    sc_ignore(mw_metrics_gauge(sc->metrics, "meshward_svid_expiry_timestamp_seconds",
                               "When the sidecar's X.509-SVID expires (Unix seconds)",
                               (double)sc->id->not_after));
    sc_ignore(mw_metrics_gauge(sc->metrics, "meshward_config_age_seconds",
                               "Seconds since the configuration in use was loaded",
                               (double)(mw_clock_now(NULL) - sc->config_loaded_at)));
    sc_ignore(mw_metrics_gauge(sc->metrics, "meshward_config_reload_failures_total",
                               "SIGHUP reloads refused (the previous configuration stays)",
                               (double)sc->reload_failures));
    sc_ignore(mw_metrics_gauge(sc->metrics, "meshward_open_connections",
                               "Connections the sidecar holds open", (double)sc->n_conns));
}

static void h_metrics(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    struct mw_sidecar *sc = arg;
    update_gauges(sc);
    struct mw_dynbuf out;
    mw_dynbuf_init(&out, 64u << 20);
    if (mw_failed(mw_metrics_render(sc->metrics, &out))) {
        mw_http_response_status(resp, 500);
        mw_dynbuf_free(&out);
        return;
    }
    sc_ignore(mw_http_response_header(resp, "Content-Type", "text/plain; version=0.0.4"));
    if (mw_failed(mw_http_response_body(resp, mw_dynbuf_slice(&out))))
        mw_http_response_status(resp, 500);
    mw_dynbuf_free(&out);
}

static void h_healthz(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    sc_ignore(mw_http_response_body(resp, mw_slice_cstr("ok\n")));
}

static void h_readyz(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    struct mw_sidecar *sc = arg;
    if (!svid_valid(sc) || sc->stopping) {
        mw_http_response_status(resp, 503);
        sc_ignore(mw_http_response_body(
            resp, mw_slice_cstr(sc->stopping ? "stopping\n" : "no valid SVID\n")));
        return;
    }
    sc_ignore(mw_http_response_body(resp, mw_slice_cstr("ready\n")));
}

/* ---------------------------------------------------------------- load and reload */

struct sc_state {
    struct mw_sidecar_config *cfg;
    struct mw_policy_set *set;
    struct mw_policy_engine *engine;
    struct sc_identity *id;
    struct mw_tls_ctx *server, *client;
};

static void state_free(struct sc_state *s)
{
    mw_tls_ctx_free(s->server);
    mw_tls_ctx_free(s->client);
    sc_identity_free(s->id);
    mw_policy_engine_free(s->engine);
    mw_policy_set_free(s->set);
    mw_sidecar_config_free(s->cfg);
    memset(s, 0, sizeof(*s));
}

static mw_result state_load(struct mw_sidecar *sc, const char *path, struct sc_state *s)
{
    memset(s, 0, sizeof(*s));
    mw_result r = mw_sidecar_config_load(path, &s->cfg);
    /* Control mode: the documents of the version in use (none before the first answer). */
    if (mw_ok(r) && s->cfg->control_url != NULL && sc->control != NULL)
        r = sc_config_apply_mesh(s->cfg, sc_control_docs(sc));
    if (mw_ok(r))
        r = sc_policies_load(s->cfg, &s->set, &s->engine);
    if (mw_ok(r)) {
        sc_ports_resolve_mtls(s->cfg, s->set);
        for (size_t i = 0; i < mw_policy_set_warning_count(s->set); i++)
            mw_log_warn("sidecar", "%s", mw_policy_set_warning(s->set, i));
        r = sc_identity_load(s->cfg, sc->id, &s->id);
    }
    if (mw_ok(r))
        r = sc_identity_tls(sc, s->id, &s->server, &s->client);
    if (mw_failed(r))
        state_free(s);
    return r;
}

/* Swap in s; the previous state goes into s (for the caller to free). */
static void state_swap(struct mw_sidecar *sc, struct sc_state *s)
{
    struct sc_state old = {sc->cfg, sc->set, sc->engine, sc->id, sc->tls_server, sc->tls_client};
    sc->cfg = s->cfg;
    sc->set = s->set;
    sc->engine = s->engine;
    sc->id = s->id;
    sc->tls_server = s->server;
    sc->tls_client = s->client;
    sc->config_loaded_at = mw_clock_now(NULL);
    *s = old;
}

static void open_access_log(struct mw_sidecar *sc)
{
    if (sc->access_log != NULL && sc->access_log != stdout)
        fclose(sc->access_log);
    sc->access_log = NULL;
    const char *p = sc->cfg->access_log;
    if (p == NULL)
        return;
    if (strcmp(p, "-") == 0) {
        sc->access_log = stdout;
        return;
    }
    sc->access_log = fopen(p, "ae");
    if (sc->access_log == NULL)
        mw_log_warn("sidecar", "access log %s: %s", p, strerror(errno));
}

static void log_ports(const struct mw_sidecar *sc)
{
    for (size_t i = 0; i < sc->cfg->n_ports; i++) {
        const struct sc_port *p = &sc->cfg->ports[i];
        mw_log_info("sidecar", "inbound port %u (%s) -> app %s:%u, mTLS %s (%s)", p->port,
                    p->http ? "http" : "tcp", sc->cfg->app_address, p->app_port,
                    mw_policy_mtls_name(p->mtls), p->mtls_policy ? p->mtls_policy : "default");
    }
}

static bool reload(struct mw_sidecar *sc)
{
    struct sc_state s;
    const char *path = sc->cfg->path;
    if (mw_failed(state_load(sc, path, &s))) {
        sc->reload_failures++;
        mw_log_error("sidecar", "reload refused, still serving the previous configuration: %s",
                     mw_error_msg());
        return false;
    }
    if (!same_listeners(sc->cfg, s.cfg)) {
        sc->reload_failures++;
        mw_log_error("sidecar", "reload refused: listening addresses or ports changed (restart "
                                "for that)");
        state_free(&s);
        return false;
    }
    state_swap(sc, &s);
    state_free(&s);
    open_access_log(sc);
    sc->reloads++;
    mw_log_info("sidecar", "reloaded: identity %s, %zu policies", sc->id->spiffe_id,
                mw_policy_set_count(sc->set));
    log_ports(sc);
    return true;
}

bool sc_reload_for_control(struct mw_sidecar *sc)
{
    return reload(sc);
}

/* ---------------------------------------------------------------- file watch */

/*
 * The configuration file and the policy files it names are watched (inotify
 * through libev where the kernel has it, a stat poll every second
 * otherwise). A change reloads after a short quiet period, so that an
 * editor's write-then-rename, or a copy in several writes, is read once and
 * whole. A file that is broken at that moment is refused like a broken
 * SIGHUP reload; the next change tries again.
 */
enum { WATCH_MAX = 64 };
#define WATCH_POLL   1.0
#define WATCH_SETTLE 0.3

static struct watch_set {
    struct mw_sidecar *sc;
    ev_stat st[WATCH_MAX];
    char *paths[WATCH_MAX];
    size_t n;
    ev_timer settle;
} watch;

static void watch_changed_cb(struct ev_loop *loop, ev_stat *w, int revents)
{
    ev_timer_stop(loop, &watch.settle);
    ev_timer_set(&watch.settle, WATCH_SETTLE, 0.);
    ev_timer_start(loop, &watch.settle);
}

static void watch_add(const char *path)
{
    if (watch.n == WATCH_MAX) {
        mw_log_warn("sidecar", "not watching %s: more than %d files", path, WATCH_MAX);
        return;
    }
    char *copy = strdup(path);
    if (copy == NULL)
        return;
    watch.paths[watch.n] = copy;
    ev_stat_init(&watch.st[watch.n], watch_changed_cb, copy, WATCH_POLL);
    ev_stat_start(watch.sc->loop, &watch.st[watch.n]);
    watch.n++;
}

static void watch_stop(void)
{
    for (size_t i = 0; i < watch.n; i++) {
        ev_stat_stop(watch.sc->loop, &watch.st[i]);
        free(watch.paths[i]);
    }
    watch.n = 0;
}

/* (Re)arm the watchers for the files the current configuration names. */
static void watch_arm(void)
{
    watch_stop();
    watch_add(watch.sc->cfg->path);
    for (size_t i = 0; i < watch.sc->cfg->n_policy_files; i++)
        watch_add(watch.sc->cfg->policy_files[i]);
}

static void reload_and_rearm(struct mw_sidecar *sc)
{
    (void)reload(sc);
    watch_arm();
}

static void watch_settled_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    mw_log_info("sidecar", "configuration or policy files changed: reloading");
    reload_and_rearm(watch.sc);
}

/* ---------------------------------------------------------------- memory */

/*
 * Give the heap back once the traffic is gone. glibc keeps freed memory for
 * reuse: after 1,000 connections the heap stayed near 100 MB with under
 * 1 MB in use (bench/RESULTS.md, sidecar memory). Every TRIM_EVERY seconds
 * the open connections are compared with the most seen since the last trim:
 * when they are all gone, or fewer than an eighth of a peak of at least 64
 * (pooled connections from client sidecars stay open for their idle
 * timeout), the free memory at the top of the heap and in whole free pages
 * goes back to the kernel (malloc_trim).
 */
#define TRIM_EVERY 2.0

static struct {
    ev_timer t;
    size_t seen; /* most connections open at a look since the last trim */
} trim;

static void trim_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct mw_sidecar *sc = w->data;
    size_t n = sc->n_conns;
    if (n > trim.seen)
        trim.seen = n;
    if ((n == 0 && trim.seen > 0) || (trim.seen >= 64 && n <= trim.seen / 8)) {
        (void)malloc_trim(0);
        trim.seen = n;
    }
}

/* ---------------------------------------------------------------- signals */

static void sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    reload_and_rearm(w->data);
}

static void stop_check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct mw_sidecar *sc = w->data;
    if (sc->n_conns == 0 || ev_now(loop) >= sc->stop_deadline)
        ev_break(loop, EVBREAK_ALL);
}

static void sigterm_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct mw_sidecar *sc = w->data;
    if (sc->stopping) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    mw_log_info("sidecar", "stopping: %zu connections open", sc->n_conns);
    sc->stopping = true;
    sc->stop_deadline = ev_now(loop) + STOP_GRACE;
    listeners_close(sc);
    static ev_timer t;
    ev_timer_init(&t, stop_check_cb, 0.05, 0.1);
    t.data = sc;
    ev_timer_start(loop, &t);
}

mw_result mw_sidecar_run(const char *config_path)
{
    struct mw_sidecar sc;
    memset(&sc, 0, sizeof(sc));
    sc.loop = ev_default_loop(EVFLAG_AUTO);
    MW_ENSURE(sc.loop != NULL, MW_E_INTERNAL, "libev: no event loop");
    (void)signal(SIGPIPE, SIG_IGN);
    struct sc_state s;
    /* Refuse to start without a valid SVID: state_load verifies it. */
    MW_GUARD(state_load(&sc, config_path, &s));
    state_swap(&sc, &s);
    mw_result r = MW_SUCCESS;
    if (sc.cfg->control_url != NULL) {
        /* Control mode: nothing is served before the control plane's first answer applies. */
        r = sc_control_first(&sc);
        if (mw_ok(r))
            r = state_load(&sc, config_path, &s);
        if (mw_ok(r)) {
            state_swap(&sc, &s);
            state_free(&s);
        }
    }
    if (mw_ok(r))
        r = mw_metrics_new(&sc.metrics);
    if (mw_ok(r))
        sc_conns_init(&sc);
    if (mw_ok(r))
        r = listeners_open(&sc);
    if (mw_ok(r) && sc.cfg->admin_port != 0) {
        struct mw_http_server_config ac = {
            .address = sc.cfg->admin_address,
            .port = sc.cfg->admin_port,
            .head_timeout = 10,
            .idle_timeout = 60,
            .max_connections = 64,
        };
        r = mw_http_server_new(sc.loop, &ac, &sc.admin);
        if (mw_ok(r))
            r = mw_http_server_route(sc.admin, "GET", "/metrics", h_metrics, &sc);
        if (mw_ok(r))
            r = mw_http_server_route(sc.admin, "GET", "/healthz", h_healthz, &sc);
        if (mw_ok(r))
            r = mw_http_server_route(sc.admin, "GET", "/readyz", h_readyz, &sc);
        if (mw_ok(r))
            mw_log_info("sidecar", "admin on %s:%u", sc.cfg->admin_address,
                        mw_http_server_port(sc.admin));
    }
    if (mw_ok(r))
        r = sc_ca_start(&sc);
    if (mw_ok(r))
        sc_control_start(&sc);
    if (mw_ok(r)) {
        open_access_log(&sc);
        log_ports(&sc);
        mw_log_info("sidecar", "identity %s; ready", sc.id->spiffe_id);
        ev_signal hup, term, intr;
        ev_signal_init(&hup, sighup_cb, SIGHUP);
        ev_signal_init(&term, sigterm_cb, SIGTERM);
        ev_signal_init(&intr, sigterm_cb, SIGINT);
        hup.data = term.data = intr.data = &sc;
        ev_signal_start(sc.loop, &hup);
        ev_signal_start(sc.loop, &term);
        ev_signal_start(sc.loop, &intr);
        watch.sc = &sc;
        ev_init(&watch.settle, watch_settled_cb);
        watch_arm();
        ev_timer_init(&trim.t, trim_cb, TRIM_EVERY, TRIM_EVERY);
        trim.t.data = &sc;
        trim.seen = 1; /* once after start: the load and the first handshakes */
        ev_timer_start(sc.loop, &trim.t);
        ev_run(sc.loop, 0);
        ev_timer_stop(sc.loop, &watch.settle);
        ev_timer_stop(sc.loop, &trim.t);
        watch_stop();
        ev_signal_stop(sc.loop, &hup);
        ev_signal_stop(sc.loop, &term);
        ev_signal_stop(sc.loop, &intr);
        mw_log_info("sidecar", "stopped");
    }
    sc_control_stop(&sc);
    sc_ca_stop(&sc);
    if (sc.ready_w.data != NULL)
        ev_prepare_stop(sc.loop, &sc.ready_w);
    sc_conns_close_all(&sc);
    sc_pool_flush(&sc);
    listeners_close(&sc);
    if (sc.admin != NULL)
        mw_http_server_free(sc.admin);
    if (sc.access_log != NULL && sc.access_log != stdout)
        fclose(sc.access_log);
    mw_metrics_free(sc.metrics);
    struct sc_state cur = {sc.cfg, sc.set, sc.engine, sc.id, sc.tls_server, sc.tls_client};
    state_free(&cur);
    return r;
}
