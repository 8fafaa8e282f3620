/*
 * Inbound: PeerAuthentication per port (STRICT: mTLS; PERMISSIVE: the
 * first bytes decide, a TLS record header 0x16 0x03 means TLS; DISABLE:
 * plaintext), the peer's X.509-SVID validated against the bundle of its
 * trust domain, then authorization: once per connection on TCP ports, per
 * request on HTTP/1.1 ports, and forwarding to the app on loopback.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

#include <meshward/ca.h>

#include "net/net_internal.h"
#include "sidecar/sidecar_internal.h"

#define BODY_OUT_MAX (64u << 10) /* stop decoding a body while this much waits to be sent */

/* ---------------------------------------------------------------- policy requests */

static void ip_of(const struct sockaddr_storage *ss, struct mw_policy_ip *ip)
{
    memset(ip, 0, sizeof(*ip));
    if (ss->ss_family == AF_INET) {
        memcpy(ip->b, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        ip->family = 4;
    } else if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(ip->b, a->s6_addr + 12, 4);
            ip->family = 4;
        } else {
            memcpy(ip->b, a, 16);
            ip->family = 6;
        }
    }
}

static mw_slice opt_slice(const char *s)
{
    return s[0] ? mw_slice_cstr(s) : mw_slice_make(NULL, 0);
}

static void request_base(const struct sc_conn *c, struct mw_policy_request *r)
{
    memset(r, 0, sizeof(*r));
    r->source_principal = opt_slice(c->principal);
    ip_of(&c->peer_ss, &r->source_ip);
    ip_of(&c->local_ss, &r->destination_ip);
    r->destination_port = c->dport;
    r->sni = opt_slice(c->sni);
    r->image_digest = opt_slice(c->image_digest);
    r->builder_id = opt_slice(c->builder_id);
}

static const char *deny_policy(const struct mw_policy_decision *d)
{
    return d->policy != NULL ? d->policy : "default";
}

/* ---------------------------------------------------------------- telemetry */

static void labels(const struct sc_conn *c, struct mw_istio_labels *l, int code)
{
    sc_labels_init(c->sc, l, c->inbound);
    if (c->inbound) {
        l->source_principal = c->peer_id[0] ? c->peer_id : NULL;
    } else {
        /* reporter="source": the destination is the service and the sidecar checked. */
        l->destination_principal = c->expected_id[0] ? c->expected_id : NULL;
        l->destination_service = c->service[0] ? c->service : NULL;
        l->destination_service_name = l->destination_service;
    }
    l->request_protocol = c->http ? "http" : "tcp";
    l->response_code = code;
    l->connection_security_policy = c->mtls ? "mutual_tls" : "none";
}

static void log_request(struct sc_conn *c, int code, const char *decision, const char *policy,
                        const char *flags)
{
    struct mw_sidecar *sc = c->sc;
    struct mw_istio_labels l;
    labels(c, &l, code);
    l.response_flags = flags;
    double ms = (double)(mw_monotonic_ns() - c->req_start_ns) / 1e6;
    /* The labels but code and flags are the connection's and the configuration's. */
    if (c->mref_gen != sc->reloads || c->mref_id != sc->id) {
        memset(&c->mref, 0, sizeof(c->mref));
        c->mref_gen = sc->reloads;
        c->mref_id = sc->id;
    }
    sc_ignore(
        mw_metrics_request_cached(sc->metrics, &l, &c->mref, ms, c->req_bytes, c->resp_bytes));
    if (sc->access_log == NULL)
        return;
    char cluster[300];
    if (c->inbound)
        snprintf(cluster, sizeof(cluster), "inbound|%u||", c->dport);
    else
        snprintf(cluster, sizeof(cluster), "outbound|%u||%s", c->dport, c->service);
    struct mw_access_entry e = {
        .start_time_ms = c->req_start_ms,
        .method = c->method,
        .path = c->path,
        .protocol = "HTTP/1.1",
        .response_code = code,
        .response_flags = flags,
        .bytes_received = c->req_bytes,
        .bytes_sent = c->resp_bytes,
        .duration_ms = (uint64_t)ms,
        .upstream_host = c->upstream_addr,
        .downstream_remote_address = c->peer_addr,
        .downstream_local_address = c->local_addr,
        .authority = c->authority,
        .user_agent = c->user_agent,
        .request_id = c->request_id,
        .requested_server_name = c->sni,
        .upstream_cluster = cluster,
        .source_principal = c->inbound ? c->peer_id : sc->id->spiffe_id,
        .destination_principal = c->inbound ? sc->id->spiffe_id : c->expected_id,
        .decision = decision,
        .policy = policy ? policy : "",
    };
    sc_ignore(mw_accesslog_write(sc->access_log, &e));
    fflush(sc->access_log);
}

/* ---------------------------------------------------------------- peer identity */

static mw_result peer_identity(struct sc_conn *c, enum sc_hs_fail *why)
{
    SSL *ssl = c->d.ssl;
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (sni != NULL)
        snprintf(c->sni, sizeof(c->sni), "%s", sni);
    struct mw_spiffe_id id;
    MW_GUARD(sc_identity_handshake_peer(c->sc->id, ssl, &id, why));
    mw_spiffe_id_format(&id, c->peer_id, sizeof(c->peer_id));
    sc_principal(&id, c->principal, sizeof(c->principal));
    c->mtls = true;

    X509 *leaf = SSL_get0_peer_certificate(ssl);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (leaf != NULL && X509_digest(leaf, EVP_sha256(), md, &mdlen) == 1) {
        for (unsigned i = 0; i < mdlen && i < 32; i++)
            snprintf(c->xfcc_hash + 2 * i, 3, "%02x", md[i]);
    }
    unsigned char *leaf_der = NULL;
    int n = leaf != NULL ? i2d_X509(leaf, &leaf_der) : -1;
    if (n > 0) {
        struct mw_ca_provenance *prov = calloc(1, sizeof(*prov));
        bool present = false;
        if (prov != NULL &&
            mw_ok(mw_ca_provenance_from_cert(mw_slice_make(leaf_der, (size_t)n), prov, &present)) &&
            present) {
            snprintf(c->image_digest, sizeof(c->image_digest), "%s", prov->image_digest);
            snprintf(c->builder_id, sizeof(c->builder_id), "%s", prov->builder_id);
        } else if (prov != NULL && !present) {
            mw_error_clear();
        }
        free(prov);
        OPENSSL_free(leaf_der);
    }
    ERR_clear_error();
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- TCP ports */

static void tcp_authorize(struct sc_conn *c)
{
    struct mw_sidecar *sc = c->sc;
    struct mw_policy_request req;
    request_base(c, &req);
    req.http = false;
    struct mw_policy_decision d;
    mw_policy_evaluate(sc->engine, &req, &d);
    if (d.verdict != MW_POLICY_ALLOW) {
        sc_ignore(mw_metrics_authz_denied(sc->metrics, deny_policy(&d), "inbound"));
        mw_log_info("sidecar", "inbound tcp %s -> :%u from %s denied by %s: %s", c->peer_addr,
                    c->dport, c->peer_id[0] ? c->peer_id : "(plaintext)", deny_policy(&d),
                    d.reason ? d.reason : "");
        if (sc->access_log != NULL) {
            struct mw_access_entry e = {
                .start_time_ms = c->start_ms,
                .protocol = "TCP",
                .response_flags = "UAEX",
                .downstream_remote_address = c->peer_addr,
                .downstream_local_address = c->local_addr,
                .requested_server_name = c->sni,
                .source_principal = c->peer_id,
                .destination_principal = sc->id->spiffe_id,
                .decision = "deny",
                .policy = deny_policy(&d),
            };
            sc_ignore(mw_accesslog_write(sc->access_log, &e));
            fflush(sc->access_log);
        }
        sc_conn_close(c);
        return;
    }
    struct sc_addr app;
    if (mw_failed(sc_addr_parse(sc->cfg->app_address, c->app_port, &app)) ||
        mw_failed(sc_conn_connect(c, &app.ss, app.len))) {
        mw_log_warn("sidecar", "inbound tcp: %s", mw_error_msg());
        sc_conn_close(c);
        return;
    }
    c->kind = SC_RELAY;
    sc_conn_report_tcp(c, false);
}

/* ---------------------------------------------------------------- HTTP ports */

static bool name_is(mw_slice n, const char *s)
{
    return mw_http_slice_ieq(n, s);
}

/* Listed in a Connection field: hop-by-hop (RFC 9110 §7.6.1). */
static bool in_connection(const struct mw_http_head *h, mw_slice name)
{
    for (size_t i = 0; i < h->nheaders; i++) {
        if (!name_is(h->headers[i].name, "connection"))
            continue;
        mw_slice v = h->headers[i].value;
        size_t at = 0;
        while (at < v.n) {
            size_t end = mw_slice_find(v, ',', at);
            size_t a = at, b = end;
            while (a < b && (v.p[a] == ' ' || v.p[a] == '\t'))
                a++;
            while (b > a && (v.p[b - 1] == ' ' || v.p[b - 1] == '\t'))
                b--;
            if (b - a == name.n) {
                bool eq = true;
                for (size_t k = 0; k < name.n && eq; k++)
                    eq = mw_http_lower(v.p[a + k]) == mw_http_lower(name.p[k]);
                if (eq)
                    return true;
            }
            at = end + 1;
        }
    }
    return false;
}

static bool hop_by_hop(const struct mw_http_head *h, mw_slice name, bool request)
{
    static const char *const hop[] = {"connection",
                                      "keep-alive",
                                      "proxy-connection",
                                      "te",
                                      "trailer",
                                      "transfer-encoding",
                                      "upgrade",
                                      "content-length",
                                      "proxy-authenticate",
                                      "proxy-authorization"};
    for (size_t i = 0; i < MW_ARRAY_LEN(hop); i++)
        if (name_is(name, hop[i]))
            return true;
    /* Never trust a client's claim about who it is: Istio's default sanitises XFCC. */
    if (request && name_is(name, "x-forwarded-client-cert"))
        return true;
    if (name_is(name, "host"))
        return false;
    return in_connection(h, name);
}

static mw_result add_fields(struct mw_dynbuf *out, const struct mw_http_head *h, bool request,
                            bool keep_length)
{
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct mw_http_header *f = &h->headers[i];
        if (hop_by_hop(h, f->name, request) && !(keep_length && name_is(f->name, "content-length")))
            continue;
        MW_GUARD(mw_dynbuf_add_slice(out, f->name));
        MW_GUARD(mw_dynbuf_add(out, ": ", 2));
        MW_GUARD(mw_dynbuf_add_slice(out, f->value));
        MW_GUARD(mw_dynbuf_add(out, "\r\n", 2));
    }
    return MW_SUCCESS;
}

/* s as a C string in buf, cut to len - 1 bytes (the per-request path: no printf). */
static void copy_slice(char *buf, size_t len, mw_slice s)
{
    size_t n = s.n < len - 1 ? s.n : len - 1;
    if (n > 0)
        memcpy(buf, s.p, n);
    buf[n] = 0;
}

static void copy_field(const struct mw_http_head *h, const char *name, char *buf, size_t len)
{
    const struct mw_http_header *f = mw_http_head_find(h, name);
    buf[0] = 0;
    if (f != NULL)
        copy_slice(buf, len, f->value);
}

/* "name: <decimal>\r\n" without printf. */
static mw_result add_u64_field(struct mw_dynbuf *o, const char *name, uint64_t v)
{
    char d[24];
    size_t i = sizeof(d);
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    MW_GUARD(mw_dynbuf_add_cstr(o, name));
    MW_GUARD(mw_dynbuf_add(o, d + i, sizeof(d) - i));
    return mw_dynbuf_add(o, "\r\n", 2);
}

/* "HTTP/1.1 <status> <reason>\r\n" without printf (the parser gives 3-digit statuses). */
static mw_result add_status_line(struct mw_dynbuf *o, int status, mw_slice reason)
{
    if (status < 100 || status > 999)
        return mw_dynbuf_addf(o, "HTTP/1.1 %d %.*s\r\n", status, (int)reason.n,
                              (const char *)reason.p);
    char line[14] = "HTTP/1.1 000 ";
    line[9] = (char)('0' + status / 100);
    line[10] = (char)('0' + status / 10 % 10);
    line[11] = (char)('0' + status % 10);
    MW_GUARD(mw_dynbuf_add(o, line, 13));
    MW_GUARD(mw_dynbuf_add_slice(o, reason));
    return mw_dynbuf_add(o, "\r\n", 2);
}

/* A response the sidecar makes itself (errors, 403). */
static void local_reply(struct sc_conn *c, int status, const char *body, const char *denied_by,
                        bool close)
{
    mw_result r = mw_dynbuf_addf(&c->d_out,
                                 "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\n"
                                 "content-length: %zu\r\n",
                                 status, mw_http_status_text(status), strlen(body));
    if (mw_ok(r) && denied_by != NULL)
        r = mw_dynbuf_addf(&c->d_out, "x-meshward-denied-by: %s\r\n", denied_by);
    if (mw_ok(r))
        r = mw_dynbuf_addf(&c->d_out, "%s\r\n%s", close ? "connection: close\r\n" : "", body);
    c->resp_bytes = strlen(body);
    if (mw_failed(r) || close)
        c->hs = H_CLOSING;
}

static void release_upstream(struct sc_conn *c, bool reuse);

static bool start_upstream(struct sc_conn *c)
{
    struct mw_sidecar *sc = c->sc;
    if (!c->inbound)
        return sc_out_upstream_start(c, false);
    if (c->u.fd >= 0) {
        /*
         * Kept from the previous request on this connection. The pump has been
         * reading it while idle, so EOF or stray bytes from the app show here.
         */
        if (!c->u.failed && !c->u.rd_eof && !c->u.connecting && c->u_in.len == 0 && c->u_out.n == 0)
            return true;
        release_upstream(c, false);
    }
    struct sc_addr app;
    if (mw_failed(sc_addr_parse(sc->cfg->app_address, c->app_port, &app)))
        return false;
    snprintf(c->upstream_addr, sizeof(c->upstream_addr), "%s", app.text);
    int fd = sc_pool_take(sc, c->app_port);
    if (fd >= 0) {
        memset(&c->u, 0, sizeof(c->u));
        c->u.fd = fd;
        ev_init(&c->u.io, c->d.io.cb);
        c->u.io.data = c;
        return true;
    }
    if (mw_failed(sc_conn_connect(c, &app.ss, app.len))) {
        mw_log_warn("sidecar", "inbound http: %s", mw_error_msg());
        return false;
    }
    return true;
}

static void release_upstream(struct sc_conn *c, bool reuse)
{
    struct mw_sidecar *sc = c->sc;
    if (c->u.fd < 0)
        return;
    if (!c->inbound) {
        sc_out_upstream_release(c, reuse);
        return;
    }
    ev_io_stop(sc->loop, &c->u.io);
    if (reuse && !c->u.failed && !c->u.rd_eof && !c->u.connecting && c->u_in.len == 0 &&
        c->u_out.n == 0) {
        sc_pool_put(sc, c->u.fd, c->app_port);
    } else {
        close(c->u.fd);
    }
    memset(&c->u, 0, sizeof(c->u));
    c->u.fd = -1;
    c->u_in.off = c->u_in.len = 0;
    mw_dynbuf_reset(&c->u_out);
}

void sc_http_release_kept(struct sc_conn *c)
{
    if (c->kind == SC_HTTP_IN && c->hs == H_HEAD)
        release_upstream(c, true);
}

static bool forward_head(struct sc_conn *c, struct mw_http_head *h, size_t n, const char *policy);

static bool http_head(struct sc_conn *c)
{
    struct mw_sidecar *sc = c->sc;
    if (c->d_in.len == 0) {
        if (c->d.rd_eof || c->d.failed)
            sc_conn_close(c);
        return false;
    }
    if (!c->head_started) {
        c->head_started = true;
        sc_conn_set_deadline(c, sc->cfg->head_timeout);
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
    c->req_start_ns = mw_monotonic_ns();
    c->req_start_ms = mw_clock_now(NULL) * 1000;
    c->req_bytes = c->resp_bytes = 0;
    c->method[0] = c->path[0] = c->authority[0] = c->user_agent[0] = c->request_id[0] = 0;
    c->upstream_addr[0] = 0;
    if (n < 0) {
        free(h);
        char body[160];
        snprintf(body, sizeof(body), "%s\n", err.reason ? err.reason : "bad request");
        local_reply(c, err.status, body, NULL, true);
        log_request(c, err.status, "deny", NULL, "DPE");
        return true;
    }
    c->head_started = false;
    copy_slice(c->method, sizeof(c->method), h->method);
    copy_slice(c->path, sizeof(c->path), h->target);
    copy_slice(c->authority, sizeof(c->authority), h->host);
    copy_field(h, "user-agent", c->user_agent, sizeof(c->user_agent));
    copy_field(h, "x-request-id", c->request_id, sizeof(c->request_id));
    c->req_keep_alive = h->keep_alive && !sc->stopping;
    c->client10 = h->version_minor == 0;
    if (!c->inbound) {
        /*
         * Outbound: the registry and egress rules chose the destination; the
         * server's sidecar authorizes. A protocol switch or a tunnel cannot
         * share a connection: the rest goes over a dedicated one as bytes.
         */
        bool tunnel = h->upgrade || h->form == MW_HTTP_TARGET_AUTHORITY;
        if (!tunnel)
            return forward_head(c, h, (size_t)n, NULL);
        free(h);
        return sc_out_tunnel(c);
    }

    struct mw_policy_header ph[MW_HTTP_MAX_HEADERS];
    for (size_t i = 0; i < h->nheaders; i++) {
        ph[i].name = h->headers[i].name;
        ph[i].value = h->headers[i].value;
    }
    struct mw_policy_request req;
    request_base(c, &req);
    req.http = true;
    req.method = h->method;
    req.path = h->target;
    req.host = h->host;
    req.headers = ph;
    req.n_headers = h->nheaders;
    struct mw_policy_decision d;
    mw_policy_evaluate(sc->engine, &req, &d);
    if (d.verdict != MW_POLICY_ALLOW) {
        sc_ignore(mw_metrics_authz_denied(sc->metrics, deny_policy(&d), "inbound"));
        mw_log_info("sidecar", "inbound %s %s from %s denied by %s: %s", c->method, c->path,
                    c->peer_id[0] ? c->peer_id : "(plaintext)", deny_policy(&d),
                    d.reason ? d.reason : "");
        /* A denied request's body is never read: the connection ends after the 403. */
        bool close = !c->req_keep_alive || h->framing != MW_HTTP_BODY_NONE;
        sc_buf_consume(&c->d_in, (size_t)n);
        local_reply(c, 403, "RBAC: access denied\n", deny_policy(&d), close);
        log_request(c, 403, "deny", deny_policy(&d), "UAEX");
        free(h);
        return true;
    }
    return forward_head(c, h, (size_t)n, d.policy);
}

/* The allowed request's head, rewritten for the upstream; h is freed. */
static bool forward_head(struct sc_conn *c, struct mw_http_head *h, size_t n, const char *policy)
{
    struct mw_sidecar *sc = c->sc;
    c->decision_policy = policy;
    c->retried = c->resp_started = false;
    mw_dynbuf_reset(&c->replay);
    if (!start_upstream(c)) {
        sc_buf_consume(&c->d_in, n);
        local_reply(c, 503, "upstream connect error\n", NULL, true);
        log_request(c, 503, "allow", policy, "UF");
        free(h);
        return true;
    }
    /* Bytes are kept for a replay only when sc_out_retry could send them again. */
    c->replay_ok = !c->inbound && sc_out_may_retry(c);
    struct mw_dynbuf *o = &c->u_out;
    mw_result r = mw_dynbuf_add_slice(o, h->method);
    if (mw_ok(r))
        r = mw_dynbuf_add(o, " ", 1);
    if (mw_ok(r))
        r = mw_dynbuf_add_slice(o, h->target);
    if (mw_ok(r))
        r = mw_dynbuf_add_cstr(o, " HTTP/1.1\r\n");
    if (mw_ok(r))
        r = add_fields(o, h, true, false);
    if (mw_ok(r) && mw_http_head_find(h, "host") == NULL) /* HTTP/1.0 without Host */
        r = c->inbound ? mw_dynbuf_addf(o, "Host: %s\r\n", c->upstream_addr)
                       : mw_dynbuf_addf(o, "Host: %s:%u\r\n", c->service, c->dport);
    if (mw_ok(r) && h->framing == MW_HTTP_BODY_LENGTH)
        r = add_u64_field(o, "Content-Length: ", h->content_length);
    if (mw_ok(r) && h->framing == MW_HTTP_BODY_CHUNKED)
        r = mw_dynbuf_add_cstr(o, "Transfer-Encoding: chunked\r\n");
    /* Outbound: the client's identity is the handshake's; the server's sidecar adds these. */
    if (mw_ok(r) && c->mtls && c->inbound) {
        r = mw_dynbuf_add_cstr(o, "x-forwarded-client-cert: By=");
        if (mw_ok(r))
            r = mw_dynbuf_add_cstr(o, sc->id->spiffe_id);
        if (mw_ok(r))
            r = mw_dynbuf_add_cstr(o, ";Hash=");
        if (mw_ok(r))
            r = mw_dynbuf_add_cstr(o, c->xfcc_hash);
        if (mw_ok(r))
            r = mw_dynbuf_add_cstr(o, ";URI=");
        if (mw_ok(r))
            r = mw_dynbuf_add_cstr(o, c->peer_id);
        if (mw_ok(r))
            r = mw_dynbuf_add(o, "\r\n", 2);
    }
    if (mw_ok(r) && c->inbound)
        r = mw_dynbuf_add_cstr(o, c->mtls ? "x-forwarded-proto: https\r\n"
                                          : "x-forwarded-proto: http\r\n");
    if (mw_ok(r))
        r = mw_dynbuf_add(o, "\r\n", 2);
    if (mw_ok(r) && c->replay_ok && mw_failed(mw_dynbuf_add(&c->replay, o->p, o->n))) {
        mw_error_clear();
        c->replay_ok = false;
    }
    mw_http_body_init(&c->body, h, NULL);
    sc_buf_consume(&c->d_in, n);
    free(h);
    if (mw_failed(r)) {
        release_upstream(c, false);
        local_reply(c, 431, "request head too large\n", NULL, true);
        return true;
    }
    c->hs = c->body.framing == MW_HTTP_BODY_NONE ? H_RESP_HEAD : H_REQ_BODY;
    return true;
}

/* Decode a body from in and re-encode it into out; true on progress. */
static bool body_move(struct mw_http_body *b, struct sc_buf *in, struct mw_dynbuf *out,
                      bool chunked_out, uint64_t *count, bool *bad)
{
    bool progress = false;
    while (in->len > 0 && !mw_http_body_done(b) && out->n < BODY_OUT_MAX) {
        mw_slice data;
        struct mw_http_error err;
        ssize_t n = mw_http_body_decode(b, sc_buf_slice(in), &data, &err);
        if (n < 0) {
            *bad = true;
            return true;
        }
        if (n == 0)
            break;
        mw_result r = MW_SUCCESS;
        if (data.n > 0 && chunked_out)
            r = mw_dynbuf_addf(out, "%zx\r\n", data.n);
        if (mw_ok(r) && data.n > 0)
            r = mw_dynbuf_add_slice(out, data);
        if (mw_ok(r) && data.n > 0 && chunked_out)
            r = mw_dynbuf_add(out, "\r\n", 2);
        if (mw_failed(r)) {
            *bad = true;
            return true;
        }
        *count += data.n;
        sc_buf_consume(in, (size_t)n);
        progress = true;
    }
    return progress;
}

static void upstream_failed(struct sc_conn *c, const char *flags);

/* Outbound: what was appended to u_out since before, also kept for a retry while it fits. */
static void keep_for_replay(struct sc_conn *c, size_t before)
{
    if (!c->replay_ok || c->u_out.n <= before)
        return;
    if (mw_failed(mw_dynbuf_add(&c->replay, c->u_out.p + before, c->u_out.n - before))) {
        mw_error_clear();
        c->replay_ok = false;
        mw_dynbuf_reset(&c->replay);
    }
}

static bool http_req_body(struct sc_conn *c)
{
    if (c->u.failed) {
        upstream_failed(c, "UF");
        return true;
    }
    bool bad = false;
    bool chunked = c->body.framing == MW_HTTP_BODY_CHUNKED;
    size_t before = c->u_out.n;
    bool progress = body_move(&c->body, &c->d_in, &c->u_out, chunked, &c->req_bytes, &bad);
    if (bad) {
        release_upstream(c, false);
        local_reply(c, 400, "bad request body\n", NULL, true);
        log_request(c, 400, "allow", c->decision_policy, "DPE");
        return true;
    }
    if (mw_http_body_done(&c->body)) {
        if (chunked && mw_failed(mw_dynbuf_add_cstr(&c->u_out, "0\r\n\r\n"))) {
            sc_conn_close(c);
            return false;
        }
        keep_for_replay(c, before);
        c->hs = H_RESP_HEAD;
        return true;
    }
    keep_for_replay(c, before);
    if (c->d.rd_eof || c->d.failed)
        sc_conn_close(c);
    return progress;
}

static void upstream_failed(struct sc_conn *c, const char *flags)
{
    if (!c->inbound && sc_out_retry(c))
        return;
    if (!c->inbound && c->u_refused) {
        /* No connection to the destination (connect, handshake or its identity). */
        release_upstream(c, false);
        local_reply(c, 503, "upstream connect error\n", NULL, true);
        log_request(c, 503, "allow", c->decision_policy, "UF");
        return;
    }
    release_upstream(c, false);
    local_reply(c, 502, "upstream reset before response\n", NULL, true);
    log_request(c, 502, "allow", c->decision_policy, flags);
}

static bool http_resp_head(struct sc_conn *c)
{
    /* Whatever the server sent, the request reached it: never sent again (sc_out_retry). */
    if (c->u_in.len > 0) {
        c->resp_started = true;
        if (c->replay.cap > 4096)
            mw_dynbuf_free(&c->replay); /* a large body is not held past its use */
    }
    if (c->u_in.len == 0) {
        if (c->u.rd_eof || c->u.failed) {
            upstream_failed(c, "UC");
            return true;
        }
        return false;
    }
    struct mw_http_head *h = malloc(sizeof(*h));
    if (h == NULL) {
        sc_conn_close(c);
        return false;
    }
    struct mw_http_error err;
    ssize_t n =
        mw_http_parse_response(sc_buf_slice(&c->u_in), mw_slice_cstr(c->method), NULL, h, &err);
    if (n == MW_HTTP_INCOMPLETE) {
        free(h);
        if (c->u.rd_eof || c->u.failed)
            upstream_failed(c, "UC");
        return false;
    }
    if (n < 0 || h->status == 101) {
        free(h);
        upstream_failed(c, "UPE");
        return true;
    }
    struct mw_dynbuf *o = &c->d_out;
    /* HTTP/1.0 clients get no interim responses and no chunking (RFC 9110 §15.2). */
    bool client10 = c->client10;
    mw_result r = MW_SUCCESS;
    if (h->status < 200) {
        if (!client10) {
            r = mw_dynbuf_addf(o, "HTTP/1.1 %d %.*s\r\n", h->status, (int)h->reason.n,
                               (const char *)h->reason.p);
            if (mw_ok(r))
                r = add_fields(o, h, false, false);
            if (mw_ok(r))
                r = mw_dynbuf_add(o, "\r\n", 2);
        }
        sc_buf_consume(&c->u_in, (size_t)n);
        free(h);
        if (mw_failed(r))
            sc_conn_close(c);
        return true;
    }
    c->status = h->status;
    c->resp_keep_alive = h->keep_alive && h->framing != MW_HTTP_BODY_CLOSE;
    c->resp_chunked_out = h->framing == MW_HTTP_BODY_CHUNKED || h->framing == MW_HTTP_BODY_CLOSE;
    c->resp_close_out = !c->req_keep_alive;
    if (client10 && c->resp_chunked_out) {
        c->resp_chunked_out = false;
        c->resp_close_out = true;
    }
    r = add_status_line(o, h->status, h->reason);
    if (mw_ok(r))
        r = add_fields(o, h, false, h->framing == MW_HTTP_BODY_NONE);
    if (mw_ok(r) && h->framing == MW_HTTP_BODY_LENGTH)
        r = add_u64_field(o, "Content-Length: ", h->content_length);
    if (mw_ok(r) && c->resp_chunked_out)
        r = mw_dynbuf_add_cstr(o, "Transfer-Encoding: chunked\r\n");
    if (mw_ok(r) && c->resp_close_out)
        r = mw_dynbuf_add_cstr(o, "Connection: close\r\n");
    else if (mw_ok(r) && client10)
        r = mw_dynbuf_add_cstr(o, "Connection: keep-alive\r\n");
    if (mw_ok(r))
        r = mw_dynbuf_add(o, "\r\n", 2);
    mw_http_body_init(&c->body, h, NULL);
    sc_buf_consume(&c->u_in, (size_t)n);
    free(h);
    if (mw_failed(r)) {
        upstream_failed(c, "UPE");
        return true;
    }
    c->hs = H_RESP_BODY;
    return true;
}

static bool http_resp_body(struct sc_conn *c)
{
    bool bad = false;
    bool progress =
        body_move(&c->body, &c->u_in, &c->d_out, c->resp_chunked_out, &c->resp_bytes, &bad);
    if (bad) {
        /* The head is already sent: all the client can learn is a cut connection. */
        log_request(c, c->status, "allow", c->decision_policy, "UPE");
        sc_conn_close(c);
        return false;
    }
    bool done = mw_http_body_done(&c->body);
    if (!done && c->body.framing == MW_HTTP_BODY_CLOSE && c->u.rd_eof && c->u_in.len == 0) {
        sc_ignore(mw_http_body_eof(&c->body));
        done = true;
    }
    if (!done) {
        if (c->u.rd_eof || c->u.failed) {
            log_request(c, c->status, "allow", c->decision_policy, "UC");
            sc_conn_close(c);
        }
        return progress;
    }
    if (c->resp_chunked_out && mw_failed(mw_dynbuf_add_cstr(&c->d_out, "0\r\n\r\n"))) {
        sc_conn_close(c);
        return false;
    }
    log_request(c, c->status, "allow", c->decision_policy, "-");
    c->hs = c->resp_close_out ? H_CLOSING : H_HEAD;
    /*
     * A keep-alive app connection stays with a keep-alive client connection
     * for its next request (no pool round trip, no MSG_PEEK); it goes to the
     * pool when the client connection ends (conn_free).
     */
    if (!c->resp_keep_alive || c->hs != H_HEAD)
        release_upstream(c, c->resp_keep_alive);
    if (c->hs == H_HEAD)
        sc_conn_set_deadline(c, c->sc->cfg->idle_timeout);
    return true;
}

bool sc_http_step(struct sc_conn *c)
{
    bool progress = false;
    if (!c->inbound)
        sc_out_upstream_check(c);
    for (int i = 0; i < 16 && !c->closing; i++) {
        bool p = false;
        switch (c->hs) {
        case H_HEAD:
            /* A kept app connection that the app closed meanwhile is let go at once. */
            if (c->u.fd >= 0 && (c->u.rd_eof || c->u.failed || c->u_in.len > 0))
                release_upstream(c, false);
            /* Pipelined requests wait until the answer before them is out (order kept). */
            if (c->d_out.n < BODY_OUT_MAX)
                p = http_head(c);
            break;
        case H_REQ_BODY:
            p = http_req_body(c);
            break;
        case H_RESP_HEAD:
            p = http_resp_head(c);
            break;
        case H_RESP_BODY:
            p = http_resp_body(c);
            break;
        case H_CLOSING:
            /* Lingering close (RFC 9112 §9.6): send all, shut the write side, drain a while. */
            c->d_in.off = c->d_in.len = 0;
            if (c->u.fd >= 0)
                release_upstream(c, false);
            if (c->d_out.n == 0 && !c->d.wr_shut) {
                if (c->d.ssl != NULL)
                    (void)SSL_shutdown(c->d.ssl);
                ERR_clear_error();
                (void)shutdown(c->d.fd, SHUT_WR);
                c->d.wr_shut = true;
                sc_conn_set_deadline(c, 2.0);
                p = true;
            }
            if (c->d.rd_eof || c->d.failed)
                sc_conn_close(c);
            break;
        }
        if (!p)
            break;
        progress = true;
    }
    return progress;
}

/* ---------------------------------------------------------------- before the first byte */

static bool pre_step(struct sc_conn *c)
{
    struct mw_sidecar *sc = c->sc;
    if (!c->tls_chosen) {
        bool tls = c->mtls_mode == MW_POLICY_MTLS_STRICT;
        if (c->mtls_mode == MW_POLICY_MTLS_PERMISSIVE) {
            uint8_t b[2];
            ssize_t n = recv(c->d.fd, b, sizeof(b), MSG_PEEK);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                sc_conn_close(c);
                return false;
            }
            if (n < 2) {
                c->d.r_want = EV_READ;
                return false;
            }
            /* TLS record: ContentType handshake (22), then legacy version major 3. */
            tls = b[0] == 0x16 && b[1] == 0x03;
        }
        c->tls_chosen = true;
        if (tls && mw_failed(sc_sock_tls(c, &c->d, sc->tls_server, true, NULL))) {
            mw_log_warn("sidecar", "inbound TLS: %s", mw_error_msg());
            sc_conn_close(c);
            return false;
        }
        return true;
    }
    if (c->d.failed) {
        mw_log_debug("sidecar", "inbound %s: handshake failed (%s)", c->peer_addr,
                     sc_hs_fail_name(c->d.hs_fail));
        if (c->d.ssl != NULL && c->d.hs_fail != SC_HSF_NONE)
            sc_count_handshake_failure(c, c->d.hs_fail);
        sc_conn_close(c);
        return false;
    }
    if (c->d.handshaking)
        return false;
    if (c->d.ssl != NULL) {
        enum sc_hs_fail why;
        if (mw_failed(peer_identity(c, &why))) {
            mw_log_info("sidecar", "inbound %s: peer refused: %s", c->peer_addr, mw_error_msg());
            sc_count_handshake_failure(c, why);
            sc_conn_close(c);
            return false;
        }
        sc_count_handshake(c, SSL_session_reused(c->d.ssl) == 1);
    }
    c->pre_done = true;
    if (c->http) {
        c->kind = SC_HTTP_IN;
        c->hs = H_HEAD;
        sc_conn_set_deadline(c, sc->cfg->idle_timeout);
    } else {
        tcp_authorize(c);
    }
    return true;
}

bool sc_inbound_step(struct sc_conn *c)
{
    if (!c->pre_done)
        return pre_step(c);
    if (c->kind == SC_HTTP_IN)
        return sc_http_step(c);
    return false;
}

void sc_inbound_accept(struct mw_sidecar *sc, struct sc_listener *l, int fd)
{
    const struct mw_sidecar_config *cfg = sc->cfg;
    const struct sc_port *port = NULL;
    if (l->kind == SC_L_INBOUND) {
        /* Transparent: the port the peer asked for (iptables REDIRECT keeps it here). */
        struct sockaddr_in dst;
        socklen_t len = sizeof(dst);
        if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) == 0) {
            for (size_t i = 0; i < cfg->n_ports && port == NULL; i++)
                if (cfg->ports[i].port == ntohs(dst.sin_port))
                    port = &cfg->ports[i];
        } else if (cfg->n_ports == 1) {
            port = &cfg->ports[0];
        }
    } else if (l->index < cfg->n_ports) {
        port = &cfg->ports[l->index];
    }
    if (port == NULL) {
        mw_log_info("sidecar", "inbound connection to a port not in the configuration: closed");
        close(fd);
        return;
    }
    struct sc_conn *c = sc_conn_new(sc, fd, SC_PEEK, true);
    if (c == NULL) {
        close(fd);
        return;
    }
    c->dport = port->port;
    c->app_port = port->app_port;
    c->http = port->http;
    c->mtls_mode = port->mtls;
    sc_conn_pump(c);
}
