/*
 * A small HTTP/1.1 server on libev: plain or TLS sockets, keep-alive and
 * pipelining (responses in request order), bounded heads, bodies and
 * output, timeouts for slow requests and idle connections, a connection
 * limit and a graceful stop. Non-blocking throughout: SSL_accept, SSL_read
 * and SSL_write that want the other direction flip the io watcher.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "net/net_internal.h"

#define READ_ROOM      16384     /* input bytes beyond the head limit */
#define OUT_HIGH_WATER (1 << 18) /* stop reading while this much output waits */
#define CLOSE_GRACE    5.0       /* seconds to flush a last response */
#define LINGER_TIME    2.0       /* seconds to drain input after a last response */
#define LINGER_BYTES   (1 << 20) /* input bytes drained at most */
#define MAX_ROUNDS     16        /* read/write rounds per event, for fairness */

struct route {
    char *method;
    char *path;
    mw_http_handler_fn fn;
    void *arg;
    struct route *next;
};

struct mw_http_response {
    int status;
    struct mw_dynbuf fields;
    struct mw_dynbuf body;
    bool close;
    bool deferred;
    bool finished;     /* mw_http_response_finish() was called */
    bool head_only;    /* the request was HEAD */
    bool keep_alive;   /* the request allows reuse */
    struct conn *conn; /* NULL once the connection is gone */
};

struct conn {
    struct mw_http_server *srv;
    int fd;
    SSL *ssl;
    struct mw_tls_ctx *tls;
    ev_io io;
    ev_timer timer;
    int events;
    bool handshake_done;
    int hs_want;    /* EV_READ or EV_WRITE: what SSL_accept waits for */
    int read_want;  /* EV_READ, or EV_WRITE when SSL_read needs to write */
    int write_want; /* EV_WRITE, or EV_READ when SSL_write needs to read */
    bool lingering; /* last response sent, write side shut: draining input */
    size_t drained;
    bool closing; /* no more requests: flush and close */
    bool backlog; /* complete input left unprocessed behind pending output */
    double accepted_at;
    double request_at; /* first byte of the request in progress, or 0 */
    double closing_at;
    double active_at;
    uint8_t *in;
    size_t in_len;
    size_t in_cap;
    size_t head_len; /* > 0 while a parsed head is at the start of in */
    struct mw_http_head head;
    struct mw_http_body body_dec;
    struct mw_dynbuf body;
    struct mw_dynbuf out;
    size_t out_off;
    struct mw_dynbuf peer_chain;
    struct mw_http_response *pending; /* a deferred response not finished yet */
    char peer_addr[64];
    struct conn *prev, *next;
};

struct mw_http_server {
    struct ev_loop *loop;
    struct mw_http_server_config cfg;
    struct mw_tls_ctx *tls;
    int fd;
    uint16_t port;
    ev_io accept_io;
    struct route *routes;
    struct conn *conns;
    size_t nconns;
    bool stopping;
};

/* Output that is nice to have (a body text, a header) but whose failure changes nothing. */
static void best_effort(mw_result r)
{
    (void)r;
}

/* ---------------------------------------------------------------- responses */

void mw_http_response_status(struct mw_http_response *r, int status)
{
    r->status = status;
}

mw_result mw_http_response_header(struct mw_http_response *r, const char *name, const char *value)
{
    mw_slice n = mw_slice_cstr(name), v = mw_slice_cstr(value);
    MW_ENSURE(mw_http_is_token(n), MW_E_INPUT, "response field name \"%s\" is not a token", name);
    MW_ENSURE(mw_http_is_field_value(v), MW_E_INPUT, "response field %s: bad value", name);
    MW_ENSURE(!mw_http_slice_ieq(n, "content-length") &&
                  !mw_http_slice_ieq(n, "transfer-encoding") && !mw_http_slice_ieq(n, "connection"),
              MW_E_INPUT, "response field %s is set by the server", name);
    MW_GUARD(mw_dynbuf_addf(&r->fields, "%s: %s\r\n", name, value));
    return MW_SUCCESS;
}

mw_result mw_http_response_body(struct mw_http_response *r, mw_slice data)
{
    return mw_dynbuf_add_slice(&r->body, data);
}

void mw_http_response_close(struct mw_http_response *r)
{
    r->close = true;
}

/* ---------------------------------------------------------------- connections */

static void conn_close(struct conn *c)
{
    struct mw_http_server *s = c->srv;
    ev_io_stop(s->loop, &c->io);
    ev_timer_stop(s->loop, &c->timer);
    if (c->ssl != NULL) {
        if (c->handshake_done && !c->lingering)
            (void)SSL_shutdown(c->ssl); /* best effort close_notify, never waits */
        SSL_free(c->ssl);
        ERR_clear_error();
    }
    mw_tls_ctx_free(c->tls);
    if (c->pending != NULL)
        c->pending->conn = NULL; /* the handler's owner finishes (and frees) it */
    close(c->fd);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->nconns--;
    free(c->in);
    mw_dynbuf_free(&c->body);
    mw_dynbuf_free(&c->out);
    mw_dynbuf_free(&c->peer_chain);
    free(c);
}

static void append_response(struct conn *c, struct mw_http_response *r, bool head_only)
{
    struct mw_dynbuf *o = &c->out;
    bool ok =
        mw_ok(mw_dynbuf_addf(o, "HTTP/1.1 %d %s\r\n", r->status, mw_http_status_text(r->status)));
    ok = ok && mw_ok(mw_dynbuf_add_slice(o, mw_dynbuf_slice(&r->fields)));
    /* RFC 9110 §6.6.1: an origin server with a clock sends Date. */
    char date[64];
    time_t now = (time_t)ev_now(c->srv->loop);
    struct tm tm;
    if (gmtime_r(&now, &tm) != NULL &&
        strftime(date, sizeof(date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm) > 0)
        ok = ok && mw_ok(mw_dynbuf_add_cstr(o, date));
    bool no_body = r->status < 200 || r->status == 204 || r->status == 304;
    if (!no_body)
        ok = ok && mw_ok(mw_dynbuf_addf(o, "Content-Length: %zu\r\n", r->body.n));
    if (r->close)
        ok = ok && mw_ok(mw_dynbuf_add_cstr(o, "Connection: close\r\n"));
    else if (c->head_len > 0 && c->head.version_minor == 0)
        ok = ok && mw_ok(mw_dynbuf_add_cstr(o, "Connection: keep-alive\r\n"));
    ok = ok && mw_ok(mw_dynbuf_add_cstr(o, "\r\n"));
    if (!no_body && !head_only)
        ok = ok && mw_ok(mw_dynbuf_add_slice(o, mw_dynbuf_slice(&r->body)));
    if (!ok) {
        /* Output over its bound: nothing sensible can follow on this connection. */
        mw_log_warn("net", "%s: response does not fit the output buffer: closing", c->peer_addr);
        c->closing = true;
        c->closing_at = ev_now(c->srv->loop);
        c->out_off = c->out.n;
    }
    if (r->close && !c->closing) {
        c->closing = true;
        c->closing_at = ev_now(c->srv->loop);
    }
}

static void response_init(struct mw_http_response *r, const struct mw_http_server *s)
{
    r->status = 200;
    r->close = false;
    mw_dynbuf_init(&r->fields, 65536);
    mw_dynbuf_init(&r->body, s->cfg.max_response);
}

static void response_free(struct mw_http_response *r)
{
    mw_dynbuf_free(&r->fields);
    mw_dynbuf_free(&r->body);
}

/* An error answer; the connection closes after it (we may have lost the framing). */
static void send_error(struct conn *c, int status, const char *reason)
{
    struct mw_http_response r;
    response_init(&r, c->srv);
    r.status = status;
    r.close = true;
    best_effort(mw_http_response_header(&r, "Content-Type", "text/plain; charset=utf-8"));
    best_effort(mw_dynbuf_addf(&r.body, "%d %s: %s\n", status, mw_http_status_text(status),
                               reason != NULL ? reason : ""));
    mw_log_debug("net", "%s: %d %s", c->peer_addr, status, reason != NULL ? reason : "");
    append_response(c, &r, false);
    response_free(&r);
}

static mw_slice target_path(const struct mw_http_head *h, mw_slice *query)
{
    mw_slice t = h->target;
    *query = mw_slice_make(t.p, 0);
    if (h->form == MW_HTTP_TARGET_ABSOLUTE) {
        size_t at = mw_slice_find(t, ':', 0) + 3;
        size_t slash = mw_slice_find(t, '/', at);
        t = slash < t.n ? mw_slice_sub(t, slash, t.n - slash) : mw_slice_cstr("/");
    } else if (h->form != MW_HTTP_TARGET_ORIGIN) {
        return t;
    }
    size_t q = mw_slice_find(t, '?', 0);
    if (q < t.n)
        *query = mw_slice_sub(t, q + 1, t.n - q - 1);
    return mw_slice_sub(t, 0, q);
}

static void response_destroy(struct mw_http_response *r)
{
    response_free(r);
    free(r);
}

/* The request at the start of the input is answered: drop it. */
static void request_done(struct conn *c)
{
    memmove(c->in, c->in + c->head_len, c->in_len - c->head_len);
    c->in_len -= c->head_len;
    c->head_len = 0;
    c->request_at = c->in_len > 0 ? ev_now(c->srv->loop) : 0;
}

static void response_send(struct conn *c, struct mw_http_response *r)
{
    if (!r->keep_alive || c->srv->stopping)
        r->close = true;
    append_response(c, r, r->head_only);
}

/* Run the handler; false when it deferred the response. */
static bool dispatch(struct conn *c)
{
    struct mw_http_server *s = c->srv;
    struct mw_http_request req = {0};
    req.head = &c->head;
    req.path = target_path(&c->head, &req.query);
    req.body = mw_dynbuf_slice(&c->body);
    req.peer_chain = mw_dynbuf_slice(&c->peer_chain);
    req.peer_addr = c->peer_addr;

    struct mw_http_response *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        send_error(c, 500, "out of memory");
        return true;
    }
    response_init(r, s);
    r->conn = c;
    r->head_only = mw_slice_eq_cstr(c->head.method, "HEAD");
    r->keep_alive = c->head.keep_alive;
    const struct route *match = NULL;
    bool path_known = false;
    for (const struct route *rt = s->routes; rt != NULL; rt = rt->next) {
        if (!mw_slice_eq_cstr(req.path, rt->path))
            continue;
        path_known = true;
        if (mw_slice_eq_cstr(c->head.method, rt->method) ||
            (r->head_only && strcmp(rt->method, "GET") == 0)) {
            match = rt;
            break;
        }
    }
    if (match != NULL) {
        match->fn(&req, r, match->arg);
    } else if (path_known) {
        r->status = 405;
        struct mw_dynbuf allow;
        mw_dynbuf_init(&allow, 1024);
        for (const struct route *rt = s->routes; rt != NULL; rt = rt->next) {
            if (mw_slice_eq_cstr(req.path, rt->path))
                best_effort(mw_dynbuf_addf(&allow, "%s%s", allow.n ? ", " : "", rt->method));
        }
        best_effort(mw_http_response_header(r, "Allow", mw_dynbuf_cstr(&allow)));
        mw_dynbuf_free(&allow);
        best_effort(mw_dynbuf_add_cstr(&r->body, "405 Method Not Allowed\n"));
    } else if (s->cfg.fallback != NULL) {
        s->cfg.fallback(&req, r, s->cfg.fallback_arg);
    } else {
        r->status = 404;
        best_effort(mw_dynbuf_add_cstr(&r->body, "404 Not Found\n"));
    }
    if (r->deferred && !r->finished) {
        c->pending = r;
        return false;
    }
    response_send(c, r);
    response_destroy(r);
    return true;
}

struct mw_http_response *mw_http_response_defer(struct mw_http_response *r)
{
    r->deferred = true;
    return r;
}

bool mw_http_response_alive(const struct mw_http_response *r)
{
    return r->conn != NULL;
}

static bool conn_run(struct conn *c);
static void process(struct conn *c);

void mw_http_response_finish(struct mw_http_response *r)
{
    struct conn *c = r->conn;
    r->finished = true;
    if (c != NULL && c->pending != r)
        return; /* finished inside the handler: dispatch sends it */
    if (c == NULL) {
        response_destroy(r);
        return;
    }
    c->pending = NULL;
    response_send(c, r);
    response_destroy(r);
    request_done(c);
    /* Pipelined requests that waited behind this one. */
    process(c);
    (void)conn_run(c);
}

/* Parse and answer every complete request in the input, in order. */
static void process(struct conn *c)
{
    struct mw_http_server *s = c->srv;
    double now = ev_now(s->loop);
    c->backlog = false;
    while (!c->closing && c->pending == NULL) {
        if (c->out.n - c->out_off >= OUT_HIGH_WATER) {
            c->backlog = c->in_len > 0;
            break;
        }
        if (c->head_len == 0) {
            if (c->in_len == 0) {
                c->request_at = 0;
                break;
            }
            if (c->request_at == 0)
                c->request_at = now;
            struct mw_http_error err;
            ssize_t r = mw_http_parse_request(mw_slice_make(c->in, c->in_len), &s->cfg.limits,
                                              &c->head, &err);
            if (r == MW_HTTP_INCOMPLETE)
                break;
            if (r < 0) {
                send_error(c, err.status, err.reason);
                break;
            }
            c->head_len = (size_t)r;
            if (c->head.framing == MW_HTTP_BODY_LENGTH &&
                c->head.content_length > s->cfg.max_body) {
                send_error(c, 413, "body larger than allowed");
                break;
            }
            mw_http_body_init(&c->body_dec, &c->head, &s->cfg.limits);
            mw_dynbuf_reset(&c->body);
            /* RFC 9110 §10.1.1: answer 100-continue only while the body is still to come. */
            if (c->head.expect_continue && !mw_http_body_done(&c->body_dec) &&
                c->in_len == c->head_len)
                best_effort(mw_dynbuf_add_cstr(&c->out, "HTTP/1.1 100 Continue\r\n\r\n"));
        }
        while (!mw_http_body_done(&c->body_dec) && c->in_len > c->head_len) {
            mw_slice data;
            struct mw_http_error err;
            mw_slice rest = mw_slice_make(c->in + c->head_len, c->in_len - c->head_len);
            ssize_t k = mw_http_body_decode(&c->body_dec, rest, &data, &err);
            if (k < 0) {
                send_error(c, err.status, err.reason);
                return;
            }
            if (data.n > 0 && (c->body.n + data.n > s->cfg.max_body ||
                               mw_failed(mw_dynbuf_add_slice(&c->body, data)))) {
                send_error(c, 413, "body larger than allowed");
                return;
            }
            memmove(c->in + c->head_len, c->in + c->head_len + k, rest.n - (size_t)k);
            c->in_len -= (size_t)k;
            if (k == 0)
                break;
        }
        if (!mw_http_body_done(&c->body_dec))
            break;
        if (!dispatch(c))
            break; /* deferred: the rest waits for mw_http_response_finish() */
        request_done(c);
    }
}

/* 1: progress, 0: would block, -1: closed or failed. */
static int conn_write(struct conn *c)
{
    size_t left = c->out.n - c->out_off;
    if (left == 0)
        return 0;
    ssize_t n;
    if (c->ssl != NULL) {
        int w = SSL_write(c->ssl, c->out.p + c->out_off, left > INT32_MAX ? INT32_MAX : (int)left);
        if (w <= 0) {
            int e = SSL_get_error(c->ssl, w);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                c->write_want = e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE;
                return 0;
            }
            return -1;
        }
        n = w;
    } else {
        n = send(c->fd, c->out.p + c->out_off, left, MSG_NOSIGNAL);
        if (n < 0)
            return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    }
    c->out_off += (size_t)n;
    if (c->out_off == c->out.n) {
        mw_dynbuf_reset(&c->out);
        c->out_off = 0;
    }
    c->active_at = ev_now(c->srv->loop);
    return 1;
}

static int conn_read(struct conn *c)
{
    size_t room = c->in_cap - c->in_len;
    if (room == 0)
        return 0;
    ssize_t n;
    if (c->ssl != NULL) {
        int r = SSL_read(c->ssl, c->in + c->in_len, (int)room);
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                c->read_want = e == SSL_ERROR_WANT_WRITE ? EV_WRITE : EV_READ;
                return 0;
            }
            return -1;
        }
        n = r;
    } else {
        n = recv(c->fd, c->in + c->in_len, room, 0);
        if (n < 0)
            return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
        if (n == 0)
            return -1;
    }
    c->in_len += (size_t)n;
    c->active_at = ev_now(c->srv->loop);
    return 1;
}

static void conn_arm(struct conn *c)
{
    struct mw_http_server *s = c->srv;
    int ev = 0;
    bool pending = c->out.n > c->out_off;
    if (!c->handshake_done) {
        ev = c->hs_want;
    } else if (c->lingering) {
        ev = c->read_want;
    } else {
        if (pending)
            ev |= c->write_want;
        if (!c->closing && c->out.n - c->out_off < OUT_HIGH_WATER && c->in_len < c->in_cap)
            ev |= c->read_want;
    }
    if (ev != c->events) {
        ev_io_stop(s->loop, &c->io);
        ev_io_set(&c->io, c->fd, ev);
        if (ev != 0)
            ev_io_start(s->loop, &c->io);
        c->events = ev;
    }
    double deadline;
    if (c->lingering)
        deadline = c->closing_at + LINGER_TIME;
    else if (c->closing)
        deadline = c->closing_at + CLOSE_GRACE;
    else if (!c->handshake_done)
        deadline = c->accepted_at + s->cfg.head_timeout;
    else if (c->request_at != 0)
        deadline = c->request_at + s->cfg.head_timeout;
    else
        deadline = c->active_at + s->cfg.idle_timeout;
    ev_timer_stop(s->loop, &c->timer);
    if (c->pending != NULL && !c->closing)
        return; /* the handler's owner decides how long a deferred response takes */
    double after = deadline - ev_now(s->loop);
    ev_timer_set(&c->timer, after > 0.001 ? after : 0.001, 0.);
    ev_timer_start(s->loop, &c->timer);
}

static void conn_handshake_done(struct conn *c)
{
    c->handshake_done = true;
    c->read_want = EV_READ;
    c->write_want = EV_WRITE;
    if (c->ssl != NULL && SSL_get0_peer_certificate(c->ssl) != NULL &&
        mw_failed(mw_tls_peer_chain_der(c->ssl, &c->peer_chain))) {
        mw_log_warn("net", "%s: peer chain: %s", c->peer_addr, mw_error_msg());
        mw_dynbuf_reset(&c->peer_chain);
    }
}

/*
 * After a last response, closing at once would make the kernel answer the
 * client's unread bytes with a reset, which can destroy the response before
 * the client reads it (RFC 9112 §9.6). So: shut our side, drain what comes
 * for a bounded time and amount, then close.
 */
static bool conn_linger(struct conn *c)
{
    uint8_t scratch[4096];
    for (;;) {
        ssize_t n;
        if (c->ssl != NULL) {
            int r = SSL_read(c->ssl, scratch, sizeof(scratch));
            int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                c->read_want = e == SSL_ERROR_WANT_WRITE ? EV_WRITE : EV_READ;
                break;
            }
            n = r > 0 ? r : -1;
        } else {
            n = recv(c->fd, scratch, sizeof(scratch), 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                c->read_want = EV_READ;
                break;
            }
        }
        c->drained += n > 0 ? (size_t)n : 0;
        if (n <= 0 || c->drained > LINGER_BYTES) {
            conn_close(c);
            return false;
        }
    }
    conn_arm(c);
    return true;
}

static bool conn_linger_start(struct conn *c)
{
    c->lingering = true;
    c->closing_at = ev_now(c->srv->loop);
    if (c->ssl != NULL) {
        (void)SSL_shutdown(c->ssl); /* close_notify; the peer's reply is drained below */
        ERR_clear_error();
    } else {
        (void)shutdown(c->fd, SHUT_WR);
    }
    return conn_linger(c);
}

/* Returns false when c was freed. */
static bool conn_run(struct conn *c)
{
    if (!c->handshake_done) {
        int r = SSL_accept(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                c->hs_want = e == SSL_ERROR_WANT_WRITE ? EV_WRITE : EV_READ;
                conn_arm(c);
                return true;
            }
            unsigned long ossl = ERR_peek_error();
            mw_log_debug("net", "%s: TLS handshake failed: %s", c->peer_addr,
                         ossl ? ERR_reason_error_string(ossl) : "connection closed");
            conn_close(c);
            return false;
        }
        conn_handshake_done(c);
    }
    if (c->lingering)
        return conn_linger(c);
    c->read_want = EV_READ;
    c->write_want = EV_WRITE;
    for (int round = 0; round < MAX_ROUNDS; round++) {
        int w = conn_write(c);
        if (w < 0) {
            conn_close(c);
            return false;
        }
        if (c->out.n > c->out_off && w == 0)
            break; /* wait for the socket */
        if (c->closing) {
            if (c->out.n == c->out_off)
                return conn_linger_start(c);
            continue;
        }
        if (c->out.n - c->out_off >= OUT_HIGH_WATER)
            continue;
        if (c->backlog)
            process(c);
        int r = conn_read(c);
        if (r < 0) {
            /* The peer closed or failed: what is half-read is lost. */
            conn_close(c);
            return false;
        }
        if (r == 0 && c->out.n == c->out_off)
            break;
        process(c);
        if (round == MAX_ROUNDS - 1) {
            /* Fairness: come back after other connections; TLS may hold decrypted bytes. */
            ev_feed_event(c->srv->loop, &c->io, EV_READ);
        }
    }
    conn_arm(c);
    return true;
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    (void)conn_run(c);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = w->data;
    if (c->closing || !c->handshake_done || c->request_at == 0) {
        /* Idle, a handshake that never finished, or a last response nobody reads. */
        conn_close(c);
        return;
    }
    /* RFC 9110 §15.5.9: a request that was not completed in time. */
    send_error(c, 408, "request not completed in time");
    (void)conn_run(c);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct mw_http_server *s = w->data;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(s->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (s->stopping || s->nconns >= s->cfg.max_connections) {
            mw_log_warn("net", "connection limit (%zu) reached: closing a new connection",
                        s->cfg.max_connections);
            close(fd);
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        uint8_t *in = malloc(s->cfg.limits.max_head + READ_ROOM);
        SSL *ssl = NULL;
        if (c == NULL || in == NULL ||
            (s->tls != NULL && (ssl = SSL_new(mw_tls_ctx_ssl(s->tls))) == NULL)) {
            free(c);
            free(in);
            close(fd);
            ERR_clear_error();
            continue;
        }
        c->srv = s;
        c->fd = fd;
        c->in = in;
        c->in_cap = s->cfg.limits.max_head + READ_ROOM;
        c->ssl = ssl;
        mw_dynbuf_init(&c->body, s->cfg.max_body);
        mw_dynbuf_init(&c->out, s->cfg.max_response + 65536 + OUT_HIGH_WATER);
        mw_dynbuf_init(&c->peer_chain, 1 << 20);
        char host[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
        snprintf(c->peer_addr, sizeof(c->peer_addr), "%s:%u", host, port);
        c->accepted_at = c->active_at = ev_now(loop);
        if (ssl != NULL) {
            c->tls = s->tls;
            mw_tls_ctx_ref(c->tls);
            SSL_set_fd(ssl, fd);
            SSL_set_accept_state(ssl);
        } else {
            c->handshake_done = true;
        }
        c->hs_want = c->read_want = EV_READ;
        c->write_want = EV_WRITE;
        ev_io_init(&c->io, conn_io_cb, fd, 0);
        c->io.data = c;
        ev_timer_init(&c->timer, conn_timer_cb, 1., 0.);
        c->timer.data = c;
        c->next = s->conns;
        if (s->conns != NULL)
            s->conns->prev = c;
        s->conns = c;
        s->nconns++;
        conn_arm(c);
    }
}

/* ---------------------------------------------------------------- server */

mw_result mw_http_server_new(struct ev_loop *loop, const struct mw_http_server_config *cfg,
                             struct mw_http_server **out)
{
    struct mw_http_server *s = calloc(1, sizeof(*s));
    MW_ENSURE(s != NULL, MW_E_NOMEM, "out of memory");
    s->loop = loop;
    s->cfg = *cfg;
    s->fd = -1;
    const struct mw_http_limits *d = &mw_http_limits_default;
    struct mw_http_limits *l = &s->cfg.limits;
    l->max_head = l->max_head ? l->max_head : d->max_head;
    l->max_line = l->max_line ? l->max_line : d->max_line;
    l->max_headers = l->max_headers ? l->max_headers : d->max_headers;
    l->max_chunk_ext = l->max_chunk_ext ? l->max_chunk_ext : d->max_chunk_ext;
    l->max_trailer = l->max_trailer ? l->max_trailer : d->max_trailer;
    if (s->cfg.max_body == 0)
        s->cfg.max_body = 1 << 20;
    if (s->cfg.max_response == 0)
        s->cfg.max_response = 16 << 20;
    if (s->cfg.max_connections == 0)
        s->cfg.max_connections = 1024;
    if (s->cfg.head_timeout <= 0)
        s->cfg.head_timeout = 10;
    if (s->cfg.idle_timeout <= 0)
        s->cfg.idle_timeout = 60;
    const char *addr = cfg->address != NULL ? cfg->address : "127.0.0.1";

    struct sockaddr_storage ss = {0};
    socklen_t sl;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(cfg->port);
        sl = sizeof(*a4);
    } else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(cfg->port);
        sl = sizeof(*a6);
    } else {
        free(s);
        MW_BAIL(MW_E_INPUT, "listen address \"%s\" is not a numeric IPv4 or IPv6 address", addr);
    }
    s->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        free(s);
        MW_BAIL(MW_E_IO, "socket: %s", strerror(errno));
    }
    int one = 1;
    (void)setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s->fd, (struct sockaddr *)&ss, sl) != 0 || listen(s->fd, 511) != 0) {
        int e = errno;
        close(s->fd);
        free(s);
        MW_BAIL(MW_E_IO, "listen on %s port %u: %s", addr, (unsigned)cfg->port, strerror(e));
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof(bound);
    if (getsockname(s->fd, (struct sockaddr *)&bound, &bl) == 0)
        s->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                   : ((struct sockaddr_in6 *)&bound)->sin6_port);
    /* A peer that goes away mid-write must not kill the daemon (SSL_write uses write(2)). */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    if (cfg->tls != NULL) {
        s->tls = cfg->tls;
        mw_tls_ctx_ref(s->tls);
    }
    ev_io_init(&s->accept_io, accept_cb, s->fd, EV_READ);
    s->accept_io.data = s;
    ev_io_start(loop, &s->accept_io);
    *out = s;
    return MW_SUCCESS;
}

mw_result mw_http_server_route(struct mw_http_server *s, const char *method, const char *path,
                               mw_http_handler_fn fn, void *arg)
{
    MW_ENSURE(mw_http_is_token(mw_slice_cstr(method)), MW_E_INPUT, "method \"%s\" is not a token",
              method);
    MW_ENSURE(path[0] == '/', MW_E_INPUT, "route path \"%s\" does not start with /", path);
    struct route *r = calloc(1, sizeof(*r));
    MW_ENSURE(r != NULL, MW_E_NOMEM, "out of memory");
    r->method = strdup(method);
    r->path = strdup(path);
    if (r->method == NULL || r->path == NULL) {
        free(r->method);
        free(r->path);
        free(r);
        MW_BAIL(MW_E_NOMEM, "out of memory");
    }
    r->fn = fn;
    r->arg = arg;
    struct route **tail = &s->routes;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = r;
    return MW_SUCCESS;
}

uint16_t mw_http_server_port(const struct mw_http_server *s)
{
    return s->port;
}

size_t mw_http_server_connections(const struct mw_http_server *s)
{
    return s->nconns;
}

void mw_http_server_set_tls(struct mw_http_server *s, struct mw_tls_ctx *tls)
{
    if (tls != NULL)
        mw_tls_ctx_ref(tls);
    mw_tls_ctx_free(s->tls);
    s->tls = tls;
}

void mw_http_server_stop(struct mw_http_server *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    ev_io_stop(s->loop, &s->accept_io);
    close(s->fd);
    s->fd = -1;
    struct conn *c = s->conns;
    while (c != NULL) {
        struct conn *next = c->next;
        if (c->handshake_done && c->in_len == 0 && c->out.n == c->out_off) {
            conn_close(c);
        } else if (c->head_len == 0 && c->in_len == 0) {
            /* Nothing in progress: finish writing, then close. */
            c->closing = true;
            c->closing_at = ev_now(s->loop);
            conn_arm(c);
        }
        /* Requests in progress end with Connection: close (see dispatch). */
        c = next;
    }
}

void mw_http_server_free(struct mw_http_server *s)
{
    if (s == NULL)
        return;
    while (s->conns != NULL)
        conn_close(s->conns);
    if (s->fd >= 0) {
        ev_io_stop(s->loop, &s->accept_io);
        close(s->fd);
    }
    struct route *r = s->routes;
    while (r != NULL) {
        struct route *next = r->next;
        free(r->method);
        free(r->path);
        free(r);
        r = next;
    }
    mw_tls_ctx_free(s->tls);
    free(s);
}
