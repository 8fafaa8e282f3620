/*
 * Connections: two sockets (downstream, upstream), each maybe TLS, bounded
 * buffers, one timer, and a pump that moves whatever can move whenever
 * either socket is ready. Nothing blocks: every read, write, connect and
 * handshake is non-blocking, and the pump registers interest only in what
 * an operation actually blocked on (libev is level-triggered).
 */
#include <errno.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net_internal.h"
#include "sidecar/sidecar_internal.h"

#define OUT_MAX   (256u << 10) /* a pending output buffer never grows beyond this */
#define POOL_MAX  64
#define POOL_IDLE 30.0 /* seconds an idle app connection is kept */
#define PUMP_MAX  64   /* rounds per event: bounded, the loop gets back control */

/* ---------------------------------------------------------------- buffers */

static bool buf_init(struct sc_buf *b)
{
    b->p = malloc(SC_BUF_CAP);
    b->off = b->len = 0;
    return b->p != NULL;
}

void sc_buf_consume(struct sc_buf *b, size_t n)
{
    b->off += n;
    b->len -= n;
    if (b->len == 0)
        b->off = 0;
}

static size_t buf_room(struct sc_buf *b)
{
    if (b->off > 0 && b->off + b->len == SC_BUF_CAP) {
        memmove(b->p, b->p + b->off, b->len);
        b->off = 0;
    }
    return SC_BUF_CAP - b->off - b->len;
}

/* ---------------------------------------------------------------- sockets */

static void sock_init(struct sc_sock *s, int fd)
{
    memset(s, 0, sizeof(*s));
    s->fd = fd;
}

static bool sock_ready(const struct sc_sock *s)
{
    return s->fd >= 0 && !s->connecting && !s->handshaking && !s->failed;
}

static void sock_close(struct mw_sidecar *sc, struct sc_sock *s)
{
    if (s->fd < 0)
        return;
    ev_io_stop(sc->loop, &s->io);
    if (s->ssl != NULL) {
        /* A quiet close_notify when it can be sent now; never wait for it. */
        if (!s->failed && !s->handshaking && !s->wr_shut)
            (void)SSL_shutdown(s->ssl);
        SSL_free(s->ssl);
        mw_tls_ctx_free(s->tls);
    }
    ERR_clear_error();
    close(s->fd);
    s->fd = -1;
    s->ssl = NULL;
    s->tls = NULL;
    s->events = 0;
}

/* Map an OpenSSL result to: >0 done, 0 blocked (*want set), -1 failed, -2 end of stream. */
static int ssl_result(struct sc_sock *s, int ret, int *want)
{
    if (ret > 0)
        return ret;
    int e = SSL_get_error(s->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        *want = EV_READ;
        return 0;
    case SSL_ERROR_WANT_WRITE:
        *want = EV_WRITE;
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        return -2;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0 && errno == 0)
            return -2;
        /* fallthrough */
    default:
        ERR_clear_error();
        return -1;
    }
}

/*
 * Read into b. Returns bytes read, 0 when nothing (blocked, full or EOF).
 * A read that did not fill the room drained the socket (for TLS: nothing is
 * left in OpenSSL's read-ahead buffer either): r_want is set to EV_READ
 * right away, so the pump does not spend a read() on EAGAIN; libev is
 * level-triggered, so bytes that arrive meanwhile wake the loop again.
 * r_want is cleared when the socket's watcher reports it readable (io_cb).
 */
static size_t sock_fill(struct sc_sock *s, struct sc_buf *b)
{
    if (s->r_want != 0)
        return 0;
    if (!sock_ready(s) || s->rd_eof)
        return 0;
    size_t room = buf_room(b);
    if (room == 0)
        return 0;
    uint8_t *dst = b->p + b->off + b->len;
    if (s->ssl != NULL) {
        errno = 0;
        int n = SSL_read(s->ssl, dst, (int)room);
        int r = ssl_result(s, n, &s->r_want);
        if (r == -2)
            s->rd_eof = true;
        else if (r < 0)
            s->failed = true;
        if (r <= 0)
            return 0;
        b->len += (size_t)r;
        if ((size_t)r < room && !SSL_has_pending(s->ssl))
            s->r_want = EV_READ;
        return (size_t)r;
    }
    ssize_t n = recv(s->fd, dst, room, 0);
    if (n > 0) {
        b->len += (size_t)n;
        if ((size_t)n < room)
            s->r_want = EV_READ;
        return (size_t)n;
    }
    if (n == 0)
        s->rd_eof = true;
    else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        s->r_want = EV_READ;
    else
        s->failed = true;
    return 0;
}

/* Write from p. Returns bytes written (0 when blocked or failed). */
static size_t sock_write(struct sc_sock *s, const uint8_t *p, size_t n)
{
    s->w_want = 0;
    if (!sock_ready(s) || s->wr_shut || n == 0)
        return 0;
    if (s->ssl != NULL) {
        errno = 0;
        int w = SSL_write(s->ssl, p, n > (1u << 30) ? (1 << 30) : (int)n);
        int r = ssl_result(s, w, &s->w_want);
        if (r < 0)
            s->failed = true;
        return r > 0 ? (size_t)r : 0;
    }
    ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
    if (w >= 0)
        return (size_t)w;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        s->w_want = EV_WRITE;
    else
        s->failed = true;
    return 0;
}

static void sock_shut_write(struct sc_sock *s)
{
    if (s->wr_shut || !sock_ready(s))
        return;
    if (s->ssl != NULL) {
        (void)SSL_shutdown(s->ssl);
        ERR_clear_error();
    }
    (void)shutdown(s->fd, SHUT_WR);
    s->wr_shut = true;
}

/*
 * Why SSL_do_handshake returned ret <= 0, read before ssl_result drains the
 * error queue; SC_HSF_NONE when it only blocked. A refusal by our own peer
 * check wins: the callback said why in sc->check_refusal.
 */
static enum sc_hs_fail hs_classify(struct mw_sidecar *sc, SSL *ssl, int ret)
{
    int saved = errno;
    int e = SSL_get_error(ssl, ret);
    unsigned long err = ERR_peek_error();
    int reason = ERR_GET_LIB(err) == ERR_LIB_SSL ? ERR_GET_REASON(err) : 0;
    enum sc_hs_fail why = SC_HSF_PROTOCOL;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        why = SC_HSF_NONE;
    else if (sc->check_refusal != SC_HSF_NONE)
        why = sc->check_refusal;
    else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && err == 0))
        why = SC_HSF_PEER_CLOSED; /* EOF or a reset */
    else if (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST ||
             reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
             reason == SSL_R_UNKNOWN_PROTOCOL)
        why = SC_HSF_PLAINTEXT; /* the first record header was not TLS */
    else if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
        why = SC_HSF_NO_CERTIFICATE;
    else if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        why = SC_HSF_PEER_CLOSED;
    else if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED)
        why = SC_HSF_BAD_CERTIFICATE;
    else if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256)
        why = SC_HSF_PEER_ALERT; /* a fatal alert received: SSL_R_<alert> = offset + number */
    errno = saved;
    return why;
}

/* Connect and handshake steps; true on progress. */
static bool sock_progress(struct sc_sock *s, struct sc_conn *c)
{
    if (s->fd < 0 || s->failed)
        return false;
    if (s->connecting) {
        if (connect(s->fd, (struct sockaddr *)&c->dst_ss, sizeof(c->dst_ss)) == 0 ||
            errno == EISCONN) {
            s->connecting = false;
            return true;
        }
        if (errno != EALREADY && errno != EINPROGRESS && errno != EINTR) {
            mw_log_debug("sidecar", "connect to %s: %s", c->upstream_addr, strerror(errno));
            s->failed = true;
            return true;
        }
        return false;
    }
    if (s->handshaking) {
        s->hs_want = 0;
        errno = 0;
        c->sc->check_refusal = SC_HSF_NONE;
        int ret = SSL_do_handshake(s->ssl);
        enum sc_hs_fail why = ret > 0 ? SC_HSF_NONE : hs_classify(c->sc, s->ssl, ret);
        int r = ssl_result(s, ret, &s->hs_want);
        if (r > 0) {
            s->handshaking = false;
            return true;
        }
        if (r < 0) {
            s->failed = true;
            s->hs_fail = why != SC_HSF_NONE ? why : SC_HSF_PROTOCOL;
            return true;
        }
    }
    return false;
}

/*
 * Connections are served in the order the kernel reported them ready. libev
 * calls the watchers of one poll last-reported first, so a connection that
 * has waited longest in a busy pass would be served last: every event only
 * queues its connection here (a stack, so the order comes out reversed
 * again), and the queue is served just before the loop polls again.
 */
static void ready_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct mw_sidecar *sc = w->data;
    while (sc->ready != NULL) {
        struct sc_conn *c = sc->ready;
        sc->ready = c->ready_next;
        c->ready_next = NULL;
        c->ready_queued = false;
        sc_conn_pump(c);
    }
}

void sc_conns_init(struct mw_sidecar *sc)
{
    ev_prepare_init(&sc->ready_w, ready_cb);
    sc->ready_w.data = sc;
    ev_prepare_start(sc->loop, &sc->ready_w);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sc_conn *c = w->data;
    struct sc_sock *s = w == &c->d.io ? &c->d : &c->u;
    /*
     * Only the socket whose read was waiting for this event is read again (the
     * other one is known to be drained). A TLS read can wait for EV_WRITE.
     */
    if (revents & s->r_want)
        s->r_want = 0;
    if (!c->ready_queued) {
        c->ready_queued = true;
        c->ready_next = c->sc->ready;
        c->sc->ready = c;
    }
}

/* A connection freed while queued (a timeout in the same pass) leaves the queue. */
static void ready_remove(struct sc_conn *c)
{
    if (!c->ready_queued)
        return;
    for (struct sc_conn **pp = &c->sc->ready; *pp != NULL; pp = &(*pp)->ready_next) {
        if (*pp == c) {
            *pp = c->ready_next;
            break;
        }
    }
    c->ready_queued = false;
}

static void sock_watch(struct mw_sidecar *sc, struct sc_sock *s)
{
    if (s->fd < 0)
        return;
    int ev = 0;
    if (!s->failed) {
        if (s->connecting)
            ev = EV_WRITE;
        else if (s->handshaking)
            ev = s->hs_want;
        else
            ev = s->r_want | s->w_want;
    }
    if (ev == s->events)
        return;
    ev_io_stop(sc->loop, &s->io);
    s->events = ev;
    if (ev != 0) {
        ev_io_set(&s->io, s->fd, ev);
        ev_io_start(sc->loop, &s->io);
    }
}

mw_result sc_sock_tls(struct sc_conn *c, struct sc_sock *s, struct mw_tls_ctx *ctx, bool server,
                      const char *sni)
{
    SSL *ssl = SSL_new(mw_tls_ctx_ssl(ctx));
    if (ssl == NULL) {
        mw_error_openssl(MW_E_CRYPTO, "SSL_new");
        return MW_FAILURE;
    }
    /* One read() per batch of records instead of two per record (header, then body). */
    SSL_set_read_ahead(ssl, 1);
    /* For the session callback (sidecar_session.c): which connection a ticket came on. */
    SSL_set_app_data(ssl, c);
    if (SSL_set_fd(ssl, s->fd) <= 0) {
        SSL_free(ssl);
        mw_error_openssl(MW_E_CRYPTO, "SSL_set_fd");
        return MW_FAILURE;
    }
    if (server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
        if (mw_failed(mw_tls_client_prepare(ctx, ssl, sni))) {
            SSL_free(ssl);
            return MW_FAILURE;
        }
    }
    mw_tls_ctx_ref(ctx);
    s->ssl = ssl;
    s->tls = ctx;
    s->handshaking = true;
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- connections */

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sc_conn *c = w->data;
    if (c->deadline > 0 && ev_now(loop) >= c->deadline) {
        mw_log_debug("sidecar", "%s: timeout", c->peer_addr);
        c->closing = true;
        const struct sc_sock *tls = c->inbound ? &c->d : &c->u;
        if (tls->ssl != NULL && tls->handshaking && !tls->connecting && !tls->failed)
            sc_count_handshake_failure(c, SC_HSF_TIMEOUT);
        if (c->kind == SC_HTTP_IN && c->hs == H_HEAD && c->d_in.len > 0) {
            /* A slow head: answer 408 if the socket takes it now, then close. */
            static const char r408[] = "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n"
                                       "Connection: close\r\n\r\n";
            (void)sock_write(&c->d, (const uint8_t *)r408, sizeof(r408) - 1);
        }
    }
    sc_conn_pump(c);
}

void sc_conn_set_deadline(struct sc_conn *c, double seconds)
{
    struct ev_loop *loop = c->sc->loop;
    c->deadline = ev_now(loop) + seconds;
    ev_timer_stop(loop, &c->timer);
    ev_timer_set(&c->timer, seconds + 0.01, 0.);
    ev_timer_start(loop, &c->timer);
}

struct sc_conn *sc_conn_new(struct mw_sidecar *sc, int fd, enum sc_kind kind, bool inbound)
{
    struct sc_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if (!buf_init(&c->d_in) || !buf_init(&c->u_in)) {
        free(c->d_in.p);
        free(c->u_in.p);
        free(c);
        return NULL;
    }
    c->sc = sc;
    c->kind = kind;
    c->inbound = inbound;
    sock_init(&c->d, fd);
    sock_init(&c->u, -1);
    ev_init(&c->d.io, io_cb);
    c->d.io.data = c;
    ev_init(&c->u.io, io_cb);
    c->u.io.data = c;
    ev_init(&c->timer, timer_cb);
    c->timer.data = c;
    mw_dynbuf_init(&c->d_out, OUT_MAX);
    mw_dynbuf_init(&c->u_out, OUT_MAX);
    mw_dynbuf_init(&c->replay, SC_REPLAY_MAX);
    c->start_ns = mw_monotonic_ns();
    c->start_ms = mw_clock_now(NULL) * 1000 + (int64_t)(c->start_ns / 1000000 % 1000);
    socklen_t len = sizeof(c->peer_ss);
    if (getpeername(fd, (struct sockaddr *)&c->peer_ss, &len) == 0)
        sc_addr_format(&c->peer_ss, c->peer_addr, sizeof(c->peer_addr));
    len = sizeof(c->local_ss);
    if (getsockname(fd, (struct sockaddr *)&c->local_ss, &len) == 0)
        sc_addr_format(&c->local_ss, c->local_addr, sizeof(c->local_addr));
    c->next = sc->conns;
    if (sc->conns != NULL)
        sc->conns->prev = c;
    sc->conns = c;
    sc->n_conns++;
    sc_conn_set_deadline(c, sc->cfg->head_timeout);
    return c;
}

static void conn_free(struct sc_conn *c)
{
    struct mw_sidecar *sc = c->sc;
    ready_remove(c);
    if (c->kind == SC_RELAY && c->opened_reported)
        sc_conn_report_tcp(c, true);
    sc_http_release_kept(c);
    sock_close(sc, &c->d);
    sock_close(sc, &c->u);
    ev_timer_stop(sc->loop, &c->timer);
    free(c->d_in.p);
    free(c->u_in.p);
    mw_dynbuf_free(&c->d_out);
    mw_dynbuf_free(&c->u_out);
    mw_dynbuf_free(&c->replay);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        sc->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    sc->n_conns--;
    free(c);
}

void sc_conn_close(struct sc_conn *c)
{
    c->closing = true;
}

void sc_conns_close_all(struct mw_sidecar *sc)
{
    while (sc->conns != NULL)
        conn_free(sc->conns);
    sc_upool_flush(sc);
}

mw_result sc_conn_connect(struct sc_conn *c, const struct sockaddr_storage *addr, socklen_t len)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        MW_BAIL(MW_E_IO, "socket: %s", strerror(errno));
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memcpy(&c->dst_ss, addr, len);
    sc_addr_format(addr, c->upstream_addr, sizeof(c->upstream_addr));
    sock_init(&c->u, fd);
    ev_init(&c->u.io, io_cb);
    c->u.io.data = c;
    if (connect(fd, (const struct sockaddr *)addr, len) != 0) {
        if (errno != EINPROGRESS) {
            int e = errno;
            close(fd);
            c->u.fd = -1;
            MW_BAIL(MW_E_IO, "connect to %s: %s", c->upstream_addr, strerror(e));
        }
        c->u.connecting = true;
    }
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- the app pool */

int sc_pool_take(struct mw_sidecar *sc, uint16_t port)
{
    double now = ev_now(sc->loop);
    struct sc_pool_entry **pp = &sc->pool;
    while (*pp != NULL) {
        struct sc_pool_entry *e = *pp;
        if (e->port != port && now - e->since < POOL_IDLE) {
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        sc->n_pool--;
        int fd = e->fd;
        bool fresh = now - e->since < POOL_IDLE;
        free(e);
        /* An idle connection must have nothing to read: EOF or stray bytes mean it is gone. */
        uint8_t b;
        if (fresh && recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK))
            return fd;
        close(fd);
    }
    return -1;
}

void sc_pool_put(struct mw_sidecar *sc, int fd, uint16_t port)
{
    struct sc_pool_entry *e = sc->n_pool < POOL_MAX ? malloc(sizeof(*e)) : NULL;
    if (e == NULL) {
        close(fd);
        return;
    }
    e->fd = fd;
    e->port = port;
    e->since = ev_now(sc->loop);
    e->next = sc->pool;
    sc->pool = e;
    sc->n_pool++;
}

void sc_pool_flush(struct mw_sidecar *sc)
{
    while (sc->pool != NULL) {
        struct sc_pool_entry *e = sc->pool;
        sc->pool = e->next;
        close(e->fd);
        free(e);
    }
    sc->n_pool = 0;
}

/* ---------------------------------------------------------------- telemetry */

void sc_conn_report_tcp(struct sc_conn *c, bool closing)
{
    struct mw_sidecar *sc = c->sc;
    struct mw_istio_labels l;
    sc_labels_init(sc, &l, c->inbound);
    char src[sizeof(c->peer_id)];
    if (c->inbound) {
        l.source_principal = c->peer_id[0] ? c->peer_id : NULL;
    } else {
        l.destination_principal = c->peer_id[0] ? c->peer_id : NULL;
        l.destination_service = c->service[0] ? c->service : NULL;
        snprintf(src, sizeof(src), "%s", sc->id->spiffe_id);
        l.source_principal = src;
    }
    l.request_protocol = "tcp";
    l.connection_security_policy = c->mtls ? "mutual_tls" : "none";
    if (!c->opened_reported) {
        c->opened_reported = true;
        sc_ignore(mw_metrics_tcp_opened(sc->metrics, &l));
    }
    uint64_t ds = c->sent - c->sent_reported, dr = c->received - c->received_reported;
    if (ds != 0 || dr != 0)
        sc_ignore(mw_metrics_tcp_bytes(sc->metrics, &l, ds, dr));
    c->sent_reported = c->sent;
    c->received_reported = c->received;
    if (!closing)
        return;
    sc_ignore(mw_metrics_tcp_closed(sc->metrics, &l));
    if (sc->access_log != NULL) {
        struct mw_access_entry e = {
            .start_time_ms = c->start_ms,
            .protocol = "TCP",
            .response_flags = "-",
            .bytes_received = c->received,
            .bytes_sent = c->sent,
            .duration_ms = (mw_monotonic_ns() - c->start_ns) / 1000000,
            .upstream_host = c->upstream_addr,
            .downstream_remote_address = c->peer_addr,
            .downstream_local_address = c->local_addr,
            .requested_server_name = c->sni,
            .source_principal = l.source_principal,
            .destination_principal = l.destination_principal,
            .decision = "allow",
            .policy = "",
        };
        sc_ignore(mw_accesslog_write(sc->access_log, &e));
        fflush(sc->access_log);
    }
}

static const char *const hs_fail_names[] = {
    [SC_HSF_NONE] = "none",
    [SC_HSF_PLAINTEXT] = "plaintext",
    [SC_HSF_NO_CERTIFICATE] = "no_certificate",
    [SC_HSF_BAD_CERTIFICATE] = "bad_certificate",
    [SC_HSF_UNKNOWN_TD] = "unknown_trust_domain",
    [SC_HSF_ID_MISMATCH] = "identity_mismatch",
    [SC_HSF_OWN_SVID_EXPIRED] = "own_svid_expired",
    [SC_HSF_PEER_ALERT] = "peer_alert",
    [SC_HSF_PEER_CLOSED] = "peer_closed",
    [SC_HSF_TIMEOUT] = "timeout",
    [SC_HSF_PROTOCOL] = "protocol",
};

const char *sc_hs_fail_name(enum sc_hs_fail why)
{
    return (size_t)why < MW_ARRAY_LEN(hs_fail_names) ? hs_fail_names[why] : "protocol";
}

void sc_count_handshake(struct sc_conn *c, bool resumed)
{
    if (c->hs_counted)
        return;
    c->hs_counted = true;
    sc_ignore(
        mw_metrics_tls_handshake(c->sc->metrics, c->inbound ? "inbound" : "outbound", resumed));
}

void sc_count_handshake_failure(struct sc_conn *c, enum sc_hs_fail why)
{
    if (c->hs_counted)
        return;
    c->hs_counted = true;
    sc_ignore(mw_metrics_tls_handshake_failure(c->sc->metrics, c->inbound ? "inbound" : "outbound",
                                               sc_hs_fail_name(why)));
}

/* ---------------------------------------------------------------- relay */

/* Bytes both ways; half-close passed on; ends when both directions have ended. */
bool sc_relay_step(struct sc_conn *c)
{
    bool progress = false;
    if (c->d_in.len > 0 && sock_ready(&c->u)) {
        size_t n = sock_write(&c->u, c->d_in.p + c->d_in.off, c->d_in.len);
        sc_buf_consume(&c->d_in, n);
        c->received += n;
        progress = progress || n > 0;
    }
    if (c->u_in.len > 0 && sock_ready(&c->d)) {
        size_t n = sock_write(&c->d, c->u_in.p + c->u_in.off, c->u_in.len);
        sc_buf_consume(&c->u_in, n);
        c->sent += n;
        progress = progress || n > 0;
    }
    if (c->d.rd_eof && c->d_in.len == 0 && sock_ready(&c->u) && !c->u.wr_shut) {
        sock_shut_write(&c->u);
        progress = true;
    }
    if (c->u.rd_eof && c->u_in.len == 0 && sock_ready(&c->d) && !c->d.wr_shut) {
        sock_shut_write(&c->d);
        progress = true;
    }
    if (c->d.rd_eof && c->u.rd_eof && c->d_in.len == 0 && c->u_in.len == 0)
        c->closing = true;
    if (c->d.failed || c->u.failed)
        c->closing = true;
    return progress;
}

static bool flush_out(struct sc_sock *s, struct mw_dynbuf *out)
{
    if (out->n == 0) {
        s->w_want = 0;
        return false;
    }
    size_t n = sock_write(s, out->p, out->n);
    if (n == 0)
        return false;
    memmove(out->p, out->p + n, out->n - n);
    out->n -= n;
    return true;
}

void sc_conn_pump(struct sc_conn *c)
{
    struct mw_sidecar *sc = c->sc;
    bool any = false;
    for (int round = 0; round < PUMP_MAX && !c->closing; round++) {
        bool progress = sock_progress(&c->d, c);
        progress = sock_progress(&c->u, c) || progress;
        if (c->kind != SC_PEEK)
            progress = sock_fill(&c->d, &c->d_in) > 0 || progress;
        else
            c->d.r_want = 0;
        /*
         * Nothing is read from a destination sidecar before check_server has
         * accepted its identity, so that no session ticket from an unchecked
         * server reaches the session cache (sidecar_session.c).
         */
        if (!(c->kind == SC_PROXY_IN && c->mtls && !c->established) && !c->u_unchecked)
            progress = sock_fill(&c->u, &c->u_in) > 0 || progress;
        switch (c->kind) {
        case SC_RELAY:
            progress = sc_relay_step(c) || progress;
            break;
        case SC_HTTP_IN:
        case SC_PEEK:
            progress = sc_inbound_step(c) || progress;
            break;
        case SC_PROXY_IN:
            progress = sc_outbound_step(c) || progress;
            break;
        }
        if (c->closing)
            break;
        progress = flush_out(&c->d, &c->d_out) || progress;
        /* Not a byte of a request to a destination sidecar before check_server. */
        if (!c->u_unchecked)
            progress = flush_out(&c->u, &c->u_out) || progress;
        any = any || progress;
        if (!progress)
            break;
    }
    if (c->closing) {
        conn_free(c);
        return;
    }
    /* Progress pushes the idle deadline; a head being read keeps its own (slowloris). */
    if (any && !(c->kind == SC_HTTP_IN && c->hs == H_HEAD && c->head_started) &&
        !c->d.handshaking && !c->u.handshaking && !c->u.connecting && c->kind != SC_PEEK)
        sc_conn_set_deadline(c, sc->cfg->idle_timeout);
    sock_watch(sc, &c->d);
    sock_watch(sc, &c->u);
    if (c->kind == SC_RELAY && c->opened_reported &&
        (c->sent - c->sent_reported) + (c->received - c->received_reported) > (1u << 20))
        sc_conn_report_tcp(c, false);
}
