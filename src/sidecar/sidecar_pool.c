/*
 * A pool of idle mTLS connections to destination sidecars, for protocol
 * http services (docs/sidecar.md, "Pooling mTLS connections between
 * sidecars").
 *
 * A connection is only ever handed out again for the very key it was
 * checked under: the endpoint, the SNI (the service name), the SPIFFE ID
 * check_server accepted, and the client TLS context (our SVID and the
 * bundles) it was made with. Every change of SVID or bundle makes a new
 * client context, so older connections stop matching at once and the
 * sweep closes them. A pooled connection holds a reference on its context,
 * so the pointer comparison cannot be fooled by a new context at a freed
 * address.
 *
 * The HTTP engine puts a connection here only at a clean message boundary
 * (the response read to its end by its own framing, nothing buffered either
 * way, no Connection: close). While idle, any readable byte other than a
 * TLS record without application data (a session ticket) means the
 * connection is over: close_notify, EOF, a reset, or a stray response the
 * server should never have sent. Such a connection is closed, never handed
 * out.
 */
#include <errno.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net_internal.h"
#include "sidecar/sidecar_internal.h"

#define SWEEP_EVERY 1.0 /* seconds between sweeps while the pool is not empty */

struct sc_upool_entry {
    struct mw_sidecar *sc;
    struct sc_upool_entry *prev, *next;
    int fd;
    SSL *ssl;
    struct mw_tls_ctx *tls;
    struct sockaddr_storage ss;
    char addr[64];
    char sni[256];
    char expected_id[MW_SPIFFE_ID_MAX + MW_SPIFFE_TD_MAX + 16];
    char peer_id[MW_SPIFFE_ID_MAX + MW_SPIFFE_TD_MAX + 16];
    double since;
    ev_io io;
};

/* Updated by the sweep (once a second), not per request. */
static void gauge(struct mw_sidecar *sc)
{
    sc_ignore(mw_metrics_gauge(sc->metrics, "meshward_outbound_pool_idle",
                               "Idle pooled mTLS connections to destination sidecars",
                               (double)sc->n_upool));
}

static void unlink_entry(struct mw_sidecar *sc, struct sc_upool_entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        sc->upool = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
    sc->n_upool--;
    ev_io_stop(sc->loop, &e->io);
}

static void destroy(struct sc_upool_entry *e)
{
    /* A quiet close_notify when it can go now; never wait for the answer. */
    (void)SSL_shutdown(e->ssl);
    SSL_free(e->ssl);
    mw_tls_ctx_free(e->tls);
    ERR_clear_error();
    close(e->fd);
    free(e);
}

static void drop(struct mw_sidecar *sc, struct sc_upool_entry *e)
{
    unlink_entry(sc, e);
    destroy(e);
}

/*
 * True while an idle connection shows nothing: SSL_read must block. It may
 * consume records without application data (NewSessionTicket, RFC 8446
 * §4.6.1; app data is NULL here, so sidecar_session.c ignores them).
 * Application data, close_notify, EOF or an error: the connection is over.
 */
static bool alive(struct sc_upool_entry *e)
{
    uint8_t b;
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(e->ssl, &b, 1);
    int err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(e->ssl, n);
    ERR_clear_error();
    return n <= 0 && err == SSL_ERROR_WANT_READ;
}

static void readable_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sc_upool_entry *e = w->data;
    if (!alive(e)) {
        mw_log_debug("sidecar", "pooled connection to %s closed by the peer", e->addr);
        struct mw_sidecar *sc = e->sc;
        drop(sc, e);
        gauge(sc);
    }
}

static bool current(const struct mw_sidecar *sc, const struct sc_upool_entry *e, double now)
{
    return !sc->stopping && e->tls == sc->tls_client && now - e->since < sc->cfg->pool_idle_timeout;
}

static void sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct mw_sidecar *sc = w->data;
    double now = ev_now(loop);
    struct sc_upool_entry *e = sc->upool;
    while (e != NULL) {
        struct sc_upool_entry *next = e->next;
        if (!current(sc, e, now))
            drop(sc, e);
        e = next;
    }
    gauge(sc);
    if (sc->upool == NULL)
        ev_timer_stop(loop, w);
}

static bool key_eq(const struct sc_upool_entry *e, const char *addr, const char *sni,
                   const char *expected_id)
{
    return strcmp(e->addr, addr) == 0 && strcmp(e->sni, sni) == 0 &&
           strcmp(e->expected_id, expected_id) == 0;
}

void sc_upool_put(struct sc_conn *c)
{
    struct mw_sidecar *sc = c->sc;
    struct sc_sock *u = &c->u;
    if (u->fd < 0 || u->ssl == NULL)
        return;
    ev_io_stop(sc->loop, &u->io);
    struct sc_upool_entry *e = NULL;
    if (!sc->stopping && u->tls == sc->tls_client && c->expected_id[0] != 0 &&
        strcmp(c->peer_id, c->expected_id) == 0)
        e = calloc(1, sizeof(*e));
    if (e == NULL) {
        /* Not kept: closed like any other upstream. */
        if (!u->failed && !u->wr_shut)
            (void)SSL_shutdown(u->ssl);
        SSL_free(u->ssl);
        mw_tls_ctx_free(u->tls);
        ERR_clear_error();
        close(u->fd);
    } else {
        e->sc = sc;
        e->fd = u->fd;
        e->ssl = u->ssl;
        e->tls = u->tls;
        e->ss = c->dst_ss;
        /* From the socket's address: c->upstream_addr is per request (the access log's). */
        sc_addr_format(&c->dst_ss, e->addr, sizeof(e->addr));
        snprintf(e->sni, sizeof(e->sni), "%s", c->service);
        snprintf(e->expected_id, sizeof(e->expected_id), "%s", c->expected_id);
        snprintf(e->peer_id, sizeof(e->peer_id), "%s", c->peer_id);
        e->since = ev_now(sc->loop);
        /* No connection to call back into while idle (tickets are not kept). */
        SSL_set_app_data(e->ssl, NULL);
        /* Bounds: the oldest of the key, then the oldest of all, make room. */
        size_t same = 0;
        struct sc_upool_entry *oldest_key = NULL, *last = NULL;
        for (struct sc_upool_entry *x = sc->upool; x != NULL; x = x->next) {
            last = x;
            if (x->tls == e->tls && key_eq(x, e->addr, e->sni, e->expected_id)) {
                same++;
                oldest_key = x;
            }
        }
        if (same >= SC_UPOOL_PER_KEY && oldest_key != NULL) {
            if (last == oldest_key)
                last = oldest_key->prev;
            drop(sc, oldest_key);
        }
        if (sc->n_upool >= SC_UPOOL_MAX && last != NULL)
            drop(sc, last);
        e->next = sc->upool;
        if (sc->upool != NULL)
            sc->upool->prev = e;
        sc->upool = e;
        sc->n_upool++;
        ev_io_init(&e->io, readable_cb, e->fd, EV_READ);
        e->io.data = e;
        ev_io_start(sc->loop, &e->io);
        if (!ev_is_active(&sc->upool_sweep)) {
            ev_timer_init(&sc->upool_sweep, sweep_cb, SWEEP_EVERY, SWEEP_EVERY);
            sc->upool_sweep.data = sc;
            ev_timer_start(sc->loop, &sc->upool_sweep);
        }
    }
    memset(u, 0, sizeof(*u));
    u->fd = -1;
}

bool sc_upool_take(struct sc_conn *c, const struct sc_addr *ep)
{
    struct mw_sidecar *sc = c->sc;
    /* With our own SVID expired nothing is sent with it, on a new or an old connection. */
    if (sc->upool == NULL || sc->id->not_after <= mw_clock_now(NULL))
        return false;
    char addr[64];
    sc_addr_format(&ep->ss, addr, sizeof(addr));
    double now = ev_now(sc->loop);
    struct sc_upool_entry *e = sc->upool;
    while (e != NULL) {
        struct sc_upool_entry *next = e->next;
        if (!key_eq(e, addr, c->service, c->expected_id)) {
            e = next;
            continue;
        }
        if (!current(sc, e, now) || !alive(e)) {
            mw_log_debug("sidecar", "pooled connection to %s not reused: %s", e->addr,
                         current(sc, e, now) ? "closed by the peer" : "stale");
            drop(sc, e);
            e = next;
            continue;
        }
        unlink_entry(sc, e);
        struct sc_sock *u = &c->u;
        memset(u, 0, sizeof(*u));
        u->fd = e->fd;
        u->ssl = e->ssl;
        u->tls = e->tls;
        ev_init(&u->io, c->d.io.cb);
        u->io.data = c;
        SSL_set_app_data(u->ssl, c);
        c->dst_ss = e->ss;
        snprintf(c->upstream_addr, sizeof(c->upstream_addr), "%s", e->addr);
        snprintf(c->peer_id, sizeof(c->peer_id), "%s", e->peer_id);
        free(e);
        return true;
    }
    return false;
}

void sc_upool_flush(struct mw_sidecar *sc)
{
    while (sc->upool != NULL)
        drop(sc, sc->upool);
    if (ev_is_active(&sc->upool_sweep))
        ev_timer_stop(sc->loop, &sc->upool_sweep);
}
