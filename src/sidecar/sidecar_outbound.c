/*
 * Outbound: the app's connections out. The destination comes from
 * SO_ORIGINAL_DST (iptables REDIRECT), from the service a local listener is
 * bound to, or, on the explicit outbound port, from the first request (an
 * HTTP proxy request: CONNECT host:port, an absolute-form target, or Host).
 * A destination in the registry gets mTLS with the sidecar's SVID and must
 * present the SPIFFE ID the registry expects; anything else is egress,
 * passed through in plaintext only when declared, refused and counted
 * otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <string.h>
#include <unistd.h>

#include "net/net_internal.h"
#include "sidecar/sidecar_internal.h"

/* The server's certificate was refused: untrusted, unknown trust domain or the wrong ID. */
static void count_mismatch(struct mw_sidecar *sc)
{
    sc->spiffe_mismatch++;
    sc_ignore(mw_metrics_gauge(sc->metrics, "meshward_outbound_identity_mismatch_total",
                               "Outbound connections closed because the server's SPIFFE ID was not "
                               "the one the registry expects",
                               (double)sc->spiffe_mismatch));
}

static void egress_refused(struct sc_conn *c, const char *host, uint16_t port, bool http)
{
    struct mw_sidecar *sc = c->sc;
    char addr[64];
    if (host == NULL) {
        sc_addr_format(&c->dst_ss, addr, sizeof(addr));
        char *colon = strrchr(addr, ':');
        if (colon != NULL)
            *colon = 0;
        host = addr;
    }
    sc->egress_denied++;
    sc_ignore(mw_metrics_egress_denied(sc->metrics, host, port));
    mw_log_info("sidecar", "egress to %s:%u refused: not declared", host, port);
    if (sc->access_log != NULL) {
        struct mw_access_entry e = {
            .start_time_ms = c->start_ms,
            .protocol = http ? "HTTP/1.1" : "TCP",
            .response_code = http ? 403 : 0,
            .response_flags = "UAEX",
            .downstream_remote_address = c->peer_addr,
            .downstream_local_address = c->local_addr,
            .authority = host,
            .source_principal = sc->id->spiffe_id,
            .decision = "deny",
            .policy = "egress",
        };
        sc_ignore(mw_accesslog_write(sc->access_log, &e));
        fflush(sc->access_log);
    }
    if (http) {
        static const char body[] = "egress denied: destination not declared\n";
        sc_ignore(mw_dynbuf_addf(&c->d_out,
                                 "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n"
                                 "content-length: %zu\r\nx-meshward-denied-by: egress\r\n"
                                 "connection: close\r\n\r\n%s",
                                 sizeof(body) - 1, body));
        c->hs = H_CLOSING;
        c->established = true;
        c->kind = SC_HTTP_IN; /* reuse the lingering close of the HTTP path */
        c->pre_done = true;
        return;
    }
    sc_conn_close(c);
}

/*
 * Connect to the chosen destination: mTLS for a service, plaintext for
 * declared egress. fixed: the service of a localPort listener, used as it is
 * (a search by endpoint could find another service sharing that endpoint,
 * with another expected SPIFFE ID).
 */
static bool route(struct sc_conn *c, struct sc_service *fixed, const char *host,
                  const struct sockaddr_storage *addr, uint16_t port, bool http, bool tunnel)
{
    struct mw_sidecar *sc = c->sc;
    struct sc_service *svc = fixed != NULL ? fixed : sc_registry_find(sc->cfg, host, addr, port);
    c->dport = port;
    memset(&c->mref, 0, sizeof(c->mref)); /* the labels change with the destination */
    if (svc != NULL) {
        const struct sc_addr *ep = &svc->endpoints[svc->next++ % svc->n_endpoints];
        snprintf(c->expected_id, sizeof(c->expected_id), "%s", svc->spiffe_id);
        snprintf(c->service, sizeof(c->service), "%s", svc->name);
        if (svc->http && !tunnel) {
            /*
             * Requests are parsed and sent on pooled connections; the endpoint
             * is copied (a reload frees the registry this connection came from).
             */
            c->u_ep = *ep;
            c->mtls = true;
            c->http = true;
            c->established = true;
            c->pre_done = true;
            c->kind = SC_HTTP_IN;
            c->hs = H_HEAD;
            sc_conn_set_deadline(c, sc->cfg->idle_timeout);
            return true;
        }
        if (mw_failed(sc_conn_connect(c, &ep->ss, ep->len)) ||
            mw_failed(sc_sock_tls(c, &c->u, sc->tls_client, false, svc->name))) {
            mw_log_warn("sidecar", "outbound to %s: %s", svc->name, mw_error_msg());
            sc_conn_close(c);
            return false;
        }
        c->mtls = true;
        /* A ticket from an earlier connection to this endpoint, name and expected ID. */
        sc_session_offer(c);
        return true;
    }
    struct sc_addr numeric;
    if (addr == NULL && host != NULL && mw_ok(sc_addr_parse(host, port, &numeric))) {
        /* A numeric host: CIDR declarations apply to it. */
        c->dst_ss = numeric.ss;
        addr = &c->dst_ss;
    }
    mw_error_clear();
    const char *where = NULL;
    if (!sc_egress_allowed(sc->cfg, host, addr, port, &where)) {
        egress_refused(c, host, port, http);
        return false;
    }
    if (addr == NULL) {
        /* A name: resolution would block the loop; only numeric hosts are routed here. */
        struct sc_addr a;
        if (host == NULL || mw_failed(sc_addr_parse(host, port, &a))) {
            mw_log_info("sidecar",
                        "egress to %s:%u: only numeric addresses are supported in "
                        "proxy mode",
                        host ? host : "?", port);
            egress_refused(c, host, port, http);
            return false;
        }
        c->dst_ss = a.ss;
        addr = &c->dst_ss;
    }
    c->egress = true;
    snprintf(c->service, sizeof(c->service), "%s", host ? host : "");
    struct sockaddr_storage copy = *addr;
    if (mw_failed(sc_conn_connect(c, &copy,
                                  copy.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                            : sizeof(struct sockaddr_in6)))) {
        mw_log_warn("sidecar", "egress: %s", mw_error_msg());
        sc_conn_close(c);
        return false;
    }
    mw_log_debug("sidecar", "egress to %s allowed by %s", c->upstream_addr, where);
    return true;
}

/* host[:port] from an authority; port defaults to def. */
static bool split_authority(mw_slice a, uint16_t def, char *host, size_t hlen, uint16_t *port)
{
    size_t colon = a.n;
    if (a.n > 0 && a.p[0] == '[') {
        size_t close = mw_slice_find(a, ']', 0);
        if (close == a.n)
            return false;
        if (close + 1 < a.n && a.p[close + 1] != ':')
            return false;
        colon = close + 1 < a.n ? close + 1 : a.n;
        if (close - 1 >= hlen)
            return false;
        memcpy(host, a.p + 1, close - 1);
        host[close - 1] = 0;
    } else {
        for (size_t i = 0; i < a.n; i++)
            if (a.p[i] == ':')
                colon = i;
        if (colon >= hlen || colon == 0)
            return false;
        memcpy(host, a.p, colon);
        host[colon] = 0;
        for (size_t i = 0; host[i]; i++)
            if (host[i] >= 'A' && host[i] <= 'Z')
                host[i] = (char)(host[i] + 32);
    }
    *port = def;
    if (colon < a.n) {
        uint64_t p;
        if (mw_failed(mw_parse_u64(mw_slice_sub(a, colon + 1, a.n), 1, 65535, "port", &p)))
            return false;
        *port = (uint16_t)p;
    }
    return true;
}

static void proxy_error(struct sc_conn *c, int status, const char *reason)
{
    sc_ignore(mw_dynbuf_addf(&c->d_out,
                             "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %zu\r\n"
                             "connection: close\r\n\r\n%s\n",
                             status, mw_http_status_text(status), strlen(reason) + 1, reason));
    c->hs = H_CLOSING;
    c->kind = SC_HTTP_IN;
    c->pre_done = true;
    c->established = true;
}

/*
 * The first request on the explicit outbound port. A plain HTTP request
 * is rewritten to origin form with "Connection: close": the connection
 * carries this one request, then ends (the destination of a next request
 * could differ). CONNECT becomes a tunnel after "200".
 */
static bool proxy_head(struct sc_conn *c)
{
    if (c->d_in.len == 0) {
        if (c->d.rd_eof || c->d.failed)
            sc_conn_close(c);
        return false;
    }
    struct mw_http_head *h = malloc(sizeof(*h));
    if (h == NULL) {
        sc_conn_close(c);
        return false;
    }
    struct mw_http_error err;
    ssize_t n = mw_http_parse_request(sc_buf_slice(&c->d_in), NULL, h, &err);
    if (n == MW_HTTP_INCOMPLETE) {
        free(h);
        if (c->d.rd_eof || c->d.failed)
            sc_conn_close(c);
        return false;
    }
    if (n < 0) {
        free(h);
        proxy_error(c, err.status, err.reason ? err.reason : "bad request");
        return true;
    }
    char host[256];
    uint16_t port = 80;
    mw_slice path = h->target;
    bool ok;
    if (h->form == MW_HTTP_TARGET_AUTHORITY) {
        ok = split_authority(h->target, 443, host, sizeof(host), &port);
    } else if (h->form == MW_HTTP_TARGET_ABSOLUTE) {
        mw_slice t = h->target;
        ok = t.n > 7 && memcmp(t.p, "http://", 7) == 0;
        if (ok) {
            size_t slash = mw_slice_find(t, '/', 7);
            ok = split_authority(mw_slice_sub(t, 7, slash - 7), 80, host, sizeof(host), &port);
            path = slash < t.n ? mw_slice_sub(t, slash, t.n) : mw_slice_cstr("/");
        }
    } else {
        ok = h->host.n > 0 && split_authority(h->host, 80, host, sizeof(host), &port);
    }
    if (!ok) {
        free(h);
        proxy_error(c, 400, "no destination: want CONNECT, an absolute URL or a Host field");
        return true;
    }
    bool connect_method = h->form == MW_HTTP_TARGET_AUTHORITY;
    struct mw_dynbuf head;
    mw_dynbuf_init(&head, SC_BUF_CAP);
    mw_result r = MW_SUCCESS;
    if (!connect_method) {
        r = mw_dynbuf_addf(&head, "%.*s %.*s HTTP/1.1\r\n", (int)h->method.n,
                           (const char *)h->method.p, (int)path.n, (const char *)path.p);
        for (size_t i = 0; mw_ok(r) && i < h->nheaders; i++) {
            mw_slice nm = h->headers[i].name;
            if (mw_http_slice_ieq(nm, "connection") || mw_http_slice_ieq(nm, "proxy-connection") ||
                mw_http_slice_ieq(nm, "keep-alive") || mw_http_slice_ieq(nm, "proxy-authorization"))
                continue;
            r = mw_dynbuf_addf(&head, "%.*s: %.*s\r\n", (int)nm.n, (const char *)nm.p,
                               (int)h->headers[i].value.n, (const char *)h->headers[i].value.p);
        }
        if (mw_ok(r) && h->host.n == 0)
            r = mw_dynbuf_addf(&head, "Host: %s:%u\r\n", host, port);
        if (mw_ok(r))
            r = mw_dynbuf_add_cstr(&head, "Connection: close\r\n\r\n");
    }
    free(h);
    size_t rest = c->d_in.len - (size_t)n;
    if (mw_failed(r) || head.n + rest > SC_BUF_CAP) {
        mw_dynbuf_free(&head);
        proxy_error(c, 431, "request head too large");
        return true;
    }
    /* Replace the head in the buffer: what follows it (a body) is relayed as it is. */
    memmove(c->d_in.p + head.n, c->d_in.p + c->d_in.off + n, rest);
    if (head.n > 0)
        memcpy(c->d_in.p, head.p, head.n);
    c->d_in.off = 0;
    c->d_in.len = head.n + rest;
    mw_dynbuf_free(&head);
    if (!route(c, NULL, host, NULL, port, true, connect_method))
        return true;
    if (connect_method)
        sc_ignore(mw_dynbuf_add_cstr(&c->d_out, "HTTP/1.1 200 Connection established\r\n\r\n"));
    c->pre_done = true;
    return true;
}

/*
 * After the handshake: the server must be the service's SPIFFE ID. The same
 * check for a full and a resumed handshake; for a resumed one the session's
 * stored chain is verified again first (sc_identity_handshake_peer), so a
 * bundle change or our own SVID's expiry is not bypassed by a ticket.
 */
static bool server_accepted(struct sc_conn *c)
{
    struct mw_sidecar *sc = c->sc;
    struct mw_spiffe_id id;
    enum sc_hs_fail why;
    bool resumed = SSL_session_reused(c->u.ssl) == 1;
    mw_result r = sc_identity_handshake_peer(sc->id, c->u.ssl, &id, &why);
    if (mw_ok(r))
        mw_spiffe_id_format(&id, c->peer_id, sizeof(c->peer_id));
    if (mw_failed(r) || strcmp(c->peer_id, c->expected_id) != 0) {
        mw_log_warn("sidecar", "outbound to %s (%s): server is %s, want %s%s: closed%s%s",
                    c->service, c->upstream_addr, c->peer_id[0] ? c->peer_id : "unverified",
                    c->expected_id, resumed ? " (resumed session)" : "", mw_failed(r) ? ": " : "",
                    mw_failed(r) ? mw_error_msg() : "");
        sc_count_handshake_failure(c, mw_failed(r) ? why : SC_HSF_ID_MISMATCH);
        if (why != SC_HSF_OWN_SVID_EXPIRED)
            count_mismatch(sc);
        return false;
    }
    sc_count_handshake(c, resumed);
    return true;
}

static bool check_server(struct sc_conn *c)
{
    if (server_accepted(c))
        return true;
    sc_conn_close(c);
    return false;
}

/* A failed connect or handshake of c->u, counted as sc_outbound_step does. */
static void count_upstream_failure(struct sc_conn *c)
{
    enum sc_hs_fail why = c->u.hs_fail;
    if (c->u.ssl != NULL && c->mtls && why != SC_HSF_NONE) {
        mw_log_info("sidecar", "outbound to %s (%s): handshake failed (%s)", c->service,
                    c->upstream_addr, sc_hs_fail_name(why));
        sc_count_handshake_failure(c, why);
        if (why == SC_HSF_BAD_CERTIFICATE || why == SC_HSF_UNKNOWN_TD)
            count_mismatch(c->sc);
    }
}

bool sc_outbound_step(struct sc_conn *c)
{
    if (!c->pre_done)
        return proxy_head(c);
    if (!c->established) {
        if (c->u.failed) {
            count_upstream_failure(c);
            sc_conn_close(c);
            return false;
        }
        if (c->u.connecting || c->u.handshaking)
            return false;
        if (c->mtls && !check_server(c))
            return false;
        c->established = true;
        c->kind = SC_RELAY;
        sc_conn_report_tcp(c, false);
        return true;
    }
    return false;
}

void sc_outbound_accept(struct mw_sidecar *sc, struct sc_listener *l, int fd)
{
    struct sc_conn *c = sc_conn_new(sc, fd, SC_PROXY_IN, false);
    if (c == NULL) {
        close(fd);
        return;
    }
    if (l->kind == SC_L_SERVICE) {
        struct sc_service *svc = &sc->cfg->services[l->index];
        c->pre_done = true;
        if (svc->n_endpoints > 0)
            (void)route(c, svc, svc->name, NULL, svc->port, false, false);
        sc_conn_pump(c);
        return;
    }
    struct sockaddr_storage dst;
    socklen_t len = sizeof(dst);
    memset(&dst, 0, sizeof(dst));
    const struct sockaddr_in *d4 = (const struct sockaddr_in *)&dst;
    const struct sockaddr_in *l4 = (const struct sockaddr_in *)&c->local_ss;
    /* With conntrack loaded an unredirected socket reports its own address: not a redirect. */
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) == 0 && dst.ss_family == AF_INET &&
        (d4->sin_addr.s_addr != l4->sin_addr.s_addr || d4->sin_port != l4->sin_port)) {
        /* Redirected by iptables: the address the app dialled. */
        c->pre_done = true;
        c->dst_ss = dst;
        (void)route(c, NULL, NULL, &dst, ntohs(((struct sockaddr_in *)&dst)->sin_port), false,
                    false);
    }
    sc_conn_pump(c);
}

/* ---------------------------------------------------------------- protocol http services */

static void count_pool(struct sc_conn *c, const char *event)
{
    sc_ignore(mw_metrics_outbound_pool(c->sc->metrics, c->service, event));
}

/* A new mTLS connection to c->u_ep; checked by sc_out_upstream_check before any byte moves. */
static bool upstream_open(struct sc_conn *c)
{
    struct mw_sidecar *sc = c->sc;
    if (mw_failed(sc_conn_connect(c, &c->u_ep.ss, c->u_ep.len)) ||
        mw_failed(sc_sock_tls(c, &c->u, sc->tls_client, false, c->service))) {
        mw_log_warn("sidecar", "outbound to %s: %s", c->service, mw_error_msg());
        if (c->u.fd >= 0) {
            close(c->u.fd);
            c->u.fd = -1;
        }
        return false;
    }
    c->u_unchecked = true;
    c->u_refused = false;
    c->u_reused = false;
    c->hs_counted = false;
    c->peer_id[0] = 0;
    sc_session_offer(c);
    count_pool(c, "opened");
    /* Connect and handshake are bounded like a head; the pump does not push this deadline. */
    sc_conn_set_deadline(c, sc->cfg->head_timeout);
    return true;
}

bool sc_out_upstream_start(struct sc_conn *c, bool fresh)
{
    struct mw_sidecar *sc = c->sc;
    if (c->u.fd >= 0) {
        /*
         * Kept from this client's previous request. The pump read it while
         * idle, so a close or stray bytes from the server show here; a new
         * client context (rotation, reload) retires it.
         */
        if (!fresh && !c->u.failed && !c->u.rd_eof && !c->u.wr_shut && !c->u.connecting &&
            !c->u.handshaking && !c->u_unchecked && !c->u_refused && c->u_in.len == 0 &&
            c->u_out.n == 0 && c->u.tls == sc->tls_client) {
            c->u_reused = true;
            sc_addr_format(&c->dst_ss, c->upstream_addr, sizeof(c->upstream_addr));
            count_pool(c, "reused");
            return true;
        }
        sc_out_upstream_release(c, false);
    }
    if (!fresh && sc_upool_take(c, &c->u_ep)) {
        c->u_unchecked = c->u_refused = false;
        c->u_reused = true;
        count_pool(c, "reused");
        return true;
    }
    return upstream_open(c);
}

void sc_out_upstream_check(struct sc_conn *c)
{
    if (!c->u_unchecked || c->u.fd < 0)
        return;
    if (c->u.failed) {
        count_upstream_failure(c);
        c->u_unchecked = false;
        c->u_refused = true;
        return;
    }
    if (c->u.connecting || c->u.handshaking)
        return;
    c->u_unchecked = false;
    if (!server_accepted(c)) {
        /* Nothing was written to it or read from it; it is closed with the 503. */
        c->u.failed = true;
        c->u_refused = true;
    }
}

void sc_out_upstream_release(struct sc_conn *c, bool reuse)
{
    struct sc_sock *u = &c->u;
    if (u->fd < 0)
        return;
    /*
     * Only at a message boundary (the caller says so with reuse) and only
     * when nothing is left either way: a byte buffered here or in OpenSSL
     * would be read as the start of the next request's response.
     */
    bool clean = reuse && u->ssl != NULL && !u->failed && !u->rd_eof && !u->wr_shut &&
                 !u->connecting && !u->handshaking && !c->u_unchecked && !c->u_refused &&
                 c->u_in.len == 0 && c->u_out.n == 0 && !SSL_has_pending(u->ssl);
    if (clean) {
        sc_upool_put(c);
    } else {
        ev_io_stop(c->sc->loop, &u->io);
        if (u->ssl != NULL) {
            if (!u->failed && !u->handshaking && !u->wr_shut && !c->u_unchecked)
                (void)SSL_shutdown(u->ssl);
            SSL_free(u->ssl);
            mw_tls_ctx_free(u->tls);
        }
        ERR_clear_error();
        close(u->fd);
        memset(u, 0, sizeof(*u));
        u->fd = -1;
    }
    c->u_unchecked = c->u_refused = c->u_reused = false;
    c->u_in.off = c->u_in.len = 0;
    mw_dynbuf_reset(&c->u_out);
}

bool sc_out_tunnel(struct sc_conn *c)
{
    /* Responses to earlier requests go out first, in order. */
    if (c->d_out.n > 0)
        return false;
    sc_out_upstream_release(c, true);
    if (mw_failed(sc_conn_connect(c, &c->u_ep.ss, c->u_ep.len)) ||
        mw_failed(sc_sock_tls(c, &c->u, c->sc->tls_client, false, c->service))) {
        mw_log_warn("sidecar", "outbound to %s: %s", c->service, mw_error_msg());
        sc_conn_close(c);
        return false;
    }
    c->hs_counted = false;
    c->peer_id[0] = 0;
    sc_session_offer(c);
    /* The request head stays in d_in: sc_outbound_step checks the server, then relays. */
    c->kind = SC_PROXY_IN;
    c->established = false;
    c->http = false;
    c->head_started = false;
    sc_conn_set_deadline(c, c->sc->cfg->head_timeout);
    return true;
}

/* RFC 9110 §9.2.2 */
static bool idempotent(const char *method)
{
    static const char *const m[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    for (size_t i = 0; i < MW_ARRAY_LEN(m); i++)
        if (strcmp(method, m[i]) == 0)
            return true;
    return false;
}

bool sc_out_may_retry(const struct sc_conn *c)
{
    return c->u_reused && idempotent(c->method);
}

bool sc_out_retry(struct sc_conn *c)
{
    /*
     * Only when the connection had carried an earlier request (the server
     * may have closed it as idle just as this one was sent), not one byte of
     * a response came back, the method is idempotent, and everything sent so
     * far is still at hand. Then the request cannot have been answered, and
     * sending it again is allowed even if the server had started on it.
     */
    if (!sc_out_may_retry(c) || c->retried || c->resp_started || c->u_in.len > 0 || !c->replay_ok ||
        (c->hs != H_REQ_BODY && c->hs != H_RESP_HEAD))
        return false;
    mw_log_debug("sidecar", "outbound %s %s to %s: reused connection failed, sending again",
                 c->method, c->path, c->service);
    sc_out_upstream_release(c, false);
    c->retried = true;
    if (!sc_out_upstream_start(c, true))
        return false;
    if (mw_failed(mw_dynbuf_add(&c->u_out, c->replay.p, c->replay.n))) {
        mw_error_clear();
        return false;
    }
    count_pool(c, "retried");
    return true;
}
