/*
 * GET /v1/config: the long-poll by which sidecars follow the mesh
 * (docs/control.md). Runs on the CA service's listener, so a caller is
 * known by the client certificate it presented there.
 */
#include <dirent.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <meshward/ca_service.h>
#include <meshward/control.h>
#include <meshward/net.h>
#include <meshward/spiffe.h>

#define LOG_COMP           "control"
#define MAX_WAITERS_PER_ID 8 /* long-polls held at once for one SPIFFE ID */

struct waiter {
    struct waiter *next;
    struct mw_http_response *resp;
    char ns[256];
    char id[MW_SPIFFE_ID_MAX + MW_SPIFFE_TD_MAX + 16];
    double deadline; /* ev_now time */
};

struct mw_control {
    struct ev_loop *loop;
    struct mw_ca_service *ca;
    char *dir;
    char *root_ns;
    double max_wait;
    size_t max_waiters;
    struct mw_control_mesh *mesh;
    uint8_t digest[32];
    uint64_t version;
    struct waiter *waiters;
    size_t n_waiters;
    ev_timer scan_w;  /* looks at the directory */
    ev_timer sweep_w; /* ends long-polls that waited long enough */
    uint64_t dir_sig; /* names, sizes and times of the files last loaded (or refused) */
    bool stopped;
};

static void respond_json_error(struct mw_http_response *resp, int status, const char *msg)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 4096);
    mw_result r = mw_dynbuf_add_cstr(&b, "{\"error\":");
    if (mw_ok(r))
        r = mw_dynbuf_add_json_str(&b, mw_slice_cstr(msg));
    if (mw_ok(r))
        r = mw_dynbuf_add_cstr(&b, "}\n");
    mw_http_response_status(resp, status);
    if (mw_ok(r))
        r = mw_http_response_header(resp, "Content-Type", "application/json");
    if (mw_ok(r))
        r = mw_http_response_body(resp, mw_dynbuf_slice(&b));
    if (mw_failed(r))
        mw_log_warn(LOG_COMP, "error answer: %s", mw_error_msg());
    mw_dynbuf_free(&b);
}

/* 200 with the workload's documents at the current version. */
static void respond_config(struct mw_control *c, struct mw_http_response *resp, const char *ns,
                           const char *id)
{
    struct mw_dynbuf docs, b;
    mw_dynbuf_init(&docs, 64 << 20);
    mw_dynbuf_init(&b, 128 << 20);
    mw_result r = mw_control_mesh_render(c->mesh, ns, &docs);
    if (mw_ok(r))
        r = mw_dynbuf_addf(&b, "{\"version\":%llu,\"workload\":", (unsigned long long)c->version);
    if (mw_ok(r))
        r = mw_dynbuf_add_json_str(&b, mw_slice_cstr(id));
    if (mw_ok(r))
        r = mw_dynbuf_add_cstr(&b, ",\"documents\":");
    if (mw_ok(r))
        r = mw_dynbuf_add_json_str(&b, mw_dynbuf_slice(&docs));
    if (mw_ok(r))
        r = mw_dynbuf_add_cstr(&b, "}\n");
    if (mw_ok(r))
        r = mw_http_response_header(resp, "Content-Type", "application/json");
    if (mw_ok(r))
        r = mw_http_response_body(resp, mw_dynbuf_slice(&b));
    if (mw_failed(r)) {
        mw_log_error(LOG_COMP, "config for %s: %s", id, mw_error_msg());
        respond_json_error(resp, 500, "cannot produce the configuration");
    }
    mw_dynbuf_free(&docs);
    mw_dynbuf_free(&b);
}

/* One query parameter's value (no percent-decoding: ours are numbers and SPIFFE IDs). */
static bool query_get(mw_slice q, const char *name, mw_slice *out)
{
    size_t nl = strlen(name);
    size_t i = 0;
    while (i <= q.n) {
        size_t amp = mw_slice_find(q, '&', i);
        mw_slice part = mw_slice_sub(q, i, amp - i);
        if (part.n > nl && memcmp(part.p, name, nl) == 0 && part.p[nl] == '=') {
            *out = mw_slice_sub(part, nl + 1, part.n - nl - 1);
            return true;
        }
        if (amp >= q.n)
            break;
        i = amp + 1;
    }
    return false;
}

static void h_config(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    struct mw_control *c = arg;
    struct mw_spiffe_id peer;
    if (mw_failed(mw_ca_service_peer_id(c->ca, req, &peer))) {
        /* None presented, or expired since the handshake: 401; no longer valid otherwise: 403. */
        bool none = mw_error_code() == MW_E_PERM || mw_error_code() == MW_E_EXPIRED;
        respond_json_error(resp, none ? 401 : 403,
                           none ? "GET /v1/config needs the workload's valid SVID as the client "
                                  "certificate"
                                : "the client certificate is not a valid SVID of this trust "
                                  "domain");
        return;
    }
    char id[sizeof(((struct waiter *)0)->id)];
    mw_spiffe_id_format(&peer, id, sizeof(id));
    /* The namespace from /ns/NS/sa/SA: the Istio identity shape policies select on. */
    char ns[256];
    const char *p = peer.path;
    const char *sa = strstr(p, "/sa/");
    size_t nsl = sa != NULL ? (size_t)(sa - p) : 0;
    if (strncmp(p, "/ns/", 4) != 0 || sa == NULL || nsl <= 4 || nsl - 4 >= sizeof(ns) ||
        strchr(sa + 4, '/') != NULL || sa[4] == '\0') {
        respond_json_error(resp, 403,
                           "the control plane serves identities of the form "
                           "spiffe://TD/ns/NAMESPACE/sa/ACCOUNT");
        return;
    }
    memcpy(ns, p + 4, nsl - 4);
    ns[nsl - 4] = '\0';
    mw_slice v;
    if (query_get(req->query, "workload", &v) && !mw_slice_eq_cstr(v, id)) {
        respond_json_error(resp, 403, "a workload may read only its own configuration");
        return;
    }
    uint64_t since = 0, wait = (uint64_t)c->max_wait;
    if ((query_get(req->query, "since", &v) &&
         mw_failed(mw_parse_u64(v, 0, UINT64_MAX, "since", &since))) ||
        (query_get(req->query, "wait", &v) && mw_failed(mw_parse_u64(v, 0, 3600, "wait", &wait)))) {
        respond_json_error(resp, 400, mw_error_msg());
        return;
    }
    /* Answer now unless the caller already has this version (a restart renumbers: answer). */
    if (since != c->version || wait == 0) {
        if (since == c->version) {
            mw_http_response_status(resp, 304);
            return;
        }
        respond_config(c, resp, ns, id);
        return;
    }
    if (c->n_waiters >= c->max_waiters || c->stopped) {
        respond_json_error(resp, 503, "too many long-polls; try again");
        return;
    }
    /*
     * One workload cannot hold the shared waiting room: a sidecar needs one
     * long-poll at a time, a few allow for restarts and replicas sharing an
     * identity.
     */
    size_t mine = 0;
    for (const struct waiter *w = c->waiters; w != NULL; w = w->next)
        mine += strcmp(w->id, id) == 0 && mw_http_response_alive(w->resp);
    if (mine >= MAX_WAITERS_PER_ID) {
        respond_json_error(resp, 429, "too many long-polls from this workload");
        return;
    }
    struct waiter *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        respond_json_error(resp, 503, "out of memory");
        return;
    }
    snprintf(w->ns, sizeof(w->ns), "%s", ns);
    snprintf(w->id, sizeof(w->id), "%s", id);
    double d = (double)wait < c->max_wait ? (double)wait : c->max_wait;
    w->deadline = ev_now(c->loop) + d;
    w->resp = mw_http_response_defer(resp);
    w->next = c->waiters;
    c->waiters = w;
    c->n_waiters++;
}

/* Finish the waiters: all (every = true, with the new version) or those past their deadline. */
static void finish_waiters(struct mw_control *c, bool every)
{
    double now = ev_now(c->loop);
    struct waiter **pp = &c->waiters;
    while (*pp != NULL) {
        struct waiter *w = *pp;
        bool gone = !mw_http_response_alive(w->resp);
        if (!every && !gone && w->deadline > now) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        c->n_waiters--;
        if (!gone && every && !c->stopped)
            respond_config(c, w->resp, w->ns, w->id);
        else if (!gone)
            mw_http_response_status(w->resp, 304);
        mw_http_response_finish(w->resp);
        free(w);
    }
}

static void sweep_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    finish_waiters(t->data, false);
}

/* A cheap signature of the directory: names, sizes, modification times, inode numbers. */
static uint64_t dir_signature(const char *dir)
{
    uint64_t h = 1469598103934665603ull;
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        struct stat st;
        int n = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (n < 0 || (size_t)n >= sizeof(path) || stat(path, &st) != 0)
            continue;
        uint64_t parts[5] = {(uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec,
                             (uint64_t)st.st_mtim.tv_nsec, (uint64_t)st.st_ino, 0};
        /* Order-independent: readdir order is not stable. */
        uint64_t e = 1469598103934665603ull;
        for (const char *q = de->d_name; *q; q++)
            e = (e ^ (uint8_t)*q) * 1099511628211ull;
        for (size_t i = 0; i < 4; i++)
            e = (e ^ parts[i]) * 1099511628211ull;
        h += e * 0x9e3779b97f4a7c15ull;
    }
    closedir(d);
    return h;
}

static void load_mesh(struct mw_control *c, const char *why)
{
    c->dir_sig = dir_signature(c->dir);
    struct mw_control_mesh *m;
    if (mw_failed(mw_control_mesh_load(c->dir, c->root_ns, &m))) {
        mw_log_error(LOG_COMP, "%s: mesh not loaded, still serving version %llu: %s", why,
                     (unsigned long long)c->version, mw_error_msg());
        return;
    }
    uint8_t dg[32];
    mw_control_mesh_digest(m, dg);
    if (memcmp(dg, c->digest, sizeof(dg)) == 0) {
        mw_control_mesh_free(m);
        return;
    }
    mw_control_mesh_free(c->mesh);
    c->mesh = m;
    memcpy(c->digest, dg, sizeof(dg));
    c->version++;
    struct mw_control_mesh_stats st;
    mw_control_mesh_stats(m, &st);
    mw_log_info(LOG_COMP,
                "%s: version %llu: %zu files, %zu policies, %zu egress policies, %zu services", why,
                (unsigned long long)c->version, st.files, st.policies, st.egress, st.services);
    finish_waiters(c, true);
}

static void scan_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct mw_control *c = t->data;
    if (dir_signature(c->dir) != c->dir_sig)
        load_mesh(c, "mesh directory changed");
}

void mw_control_rescan(struct mw_control *c)
{
    load_mesh(c, "rescan");
}

uint64_t mw_control_version(const struct mw_control *c)
{
    return c->version;
}

mw_result mw_control_new(struct ev_loop *loop, const struct mw_control_config *cfg,
                         struct mw_control **out)
{
    *out = NULL;
    MW_ENSURE(cfg->mesh_dir != NULL && cfg->ca != NULL, MW_E_INPUT,
              "the control plane needs a mesh directory and the CA service");
    struct mw_control *c = calloc(1, sizeof(*c));
    MW_ENSURE(c != NULL, MW_E_NOMEM, "out of memory");
    c->loop = loop;
    c->ca = cfg->ca;
    c->max_wait = cfg->max_wait > 0 ? cfg->max_wait : 30;
    c->max_waiters = cfg->max_waiters ? cfg->max_waiters : 4096;
    c->dir = strdup(cfg->mesh_dir);
    c->root_ns = strdup(cfg->root_namespace ? cfg->root_namespace : "istio-system");
    mw_result r = MW_SUCCESS;
    if (c->dir == NULL || c->root_ns == NULL) {
        mw_error_set(MW_E_NOMEM, "out of memory");
        r = MW_FAILURE;
    }
    if (mw_ok(r)) {
        c->dir_sig = dir_signature(c->dir);
        r = mw_control_mesh_load(c->dir, c->root_ns, &c->mesh);
    }
    if (mw_ok(r)) {
        mw_control_mesh_digest(c->mesh, c->digest);
        /*
         * Versions start at the wall clock in milliseconds and count up by one per
         * change (at most one per scan or SIGHUP), so a restarted control plane
         * starts above every version it gave before as long as the clock does not
         * go back; and a sidecar holding another number is answered at once anyway.
         */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        c->version = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        r = mw_http_server_route(mw_ca_service_http(c->ca), "GET", "/v1/config", h_config, c);
    }
    if (mw_failed(r)) {
        mw_control_free(c);
        return r;
    }
    struct mw_control_mesh_stats st;
    mw_control_mesh_stats(c->mesh, &st);
    mw_log_info(LOG_COMP,
                "mesh %s: version %llu: %zu files, %zu policies, %zu egress policies, "
                "%zu services",
                c->dir, (unsigned long long)c->version, st.files, st.policies, st.egress,
                st.services);
    double every = cfg->scan_interval > 0 ? cfg->scan_interval : 1.0;
    ev_timer_init(&c->scan_w, scan_cb, every, every);
    c->scan_w.data = c;
    ev_timer_start(loop, &c->scan_w);
    ev_timer_init(&c->sweep_w, sweep_cb, 0.5, 0.5);
    c->sweep_w.data = c;
    ev_timer_start(loop, &c->sweep_w);
    *out = c;
    return MW_SUCCESS;
}

void mw_control_stop(struct mw_control *c)
{
    if (c == NULL || c->stopped)
        return;
    c->stopped = true;
    ev_timer_stop(c->loop, &c->scan_w);
    ev_timer_stop(c->loop, &c->sweep_w);
    finish_waiters(c, true);
}

void mw_control_free(struct mw_control *c)
{
    if (c == NULL)
        return;
    mw_control_stop(c);
    mw_control_mesh_free(c->mesh);
    free(c->dir);
    free(c->root_ns);
    free(c);
}
