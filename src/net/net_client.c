/*
 * A blocking HTTP(S) client for CLIs and tests: one request per connection
 * (Connection: close), every step bounded by one deadline, the response
 * parsed with the strict parser and bounded in size.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "net/net_internal.h"

struct client {
    int fd;
    SSL *ssl;
    uint64_t deadline_ns;
};

static mw_result wait_io(struct client *c, short events)
{
    uint64_t now = mw_monotonic_ns();
    MW_ENSURE(now < c->deadline_ns, MW_E_IO, "timed out");
    int ms = (int)((c->deadline_ns - now) / 1000000) + 1;
    struct pollfd p = {.fd = c->fd, .events = events};
    int r;
    do {
        r = poll(&p, 1, ms);
    } while (r < 0 && errno == EINTR);
    MW_ENSURE(r > 0, MW_E_IO, r == 0 ? "timed out" : "poll failed");
    return MW_SUCCESS;
}

static mw_result connect_tcp(struct client *c, const char *host, uint16_t port)
{
    char service[8];
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, service, &hints, &res);
    MW_ENSURE(g == 0, MW_E_IO, "resolving %s: %s", host, gai_strerror(g));
    int last = 0;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last = errno;
            continue;
        }
        c->fd = fd;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 ||
            (errno == EINPROGRESS && mw_ok(wait_io(c, POLLOUT)))) {
            int err = 0;
            socklen_t len = sizeof(err);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
                freeaddrinfo(res);
                return MW_SUCCESS;
            }
            last = err;
        } else {
            last = errno ? errno : ETIMEDOUT;
        }
        close(fd);
        c->fd = -1;
    }
    freeaddrinfo(res);
    MW_BAIL(MW_E_IO, "connecting to %s port %u: %s", host, (unsigned)port, strerror(last));
}

/* Wait for what a TLS call wants; fail on anything else. */
static mw_result tls_want(struct client *c, int ret, const char *what)
{
    int e = SSL_get_error(c->ssl, ret);
    if (e == SSL_ERROR_WANT_READ)
        return wait_io(c, POLLIN);
    if (e == SSL_ERROR_WANT_WRITE)
        return wait_io(c, POLLOUT);
    long v = SSL_get_verify_result(c->ssl);
    if (v != X509_V_OK) {
        ERR_clear_error();
        MW_BAIL(MW_E_VERIFY, "%s: server certificate: %s", what, X509_verify_cert_error_string(v));
    }
    mw_error_openssl(MW_E_IO, "%s", what);
    return MW_FAILURE;
}

static mw_result send_all(struct client *c, mw_slice data)
{
    size_t off = 0;
    while (off < data.n) {
        size_t left = data.n - off;
        if (c->ssl != NULL) {
            int w = SSL_write(c->ssl, data.p + off, left > INT32_MAX ? INT32_MAX : (int)left);
            if (w <= 0) {
                MW_GUARD(tls_want(c, w, "TLS write"));
                continue;
            }
            off += (size_t)w;
        } else {
            ssize_t w = send(c->fd, data.p + off, left, MSG_NOSIGNAL);
            if (w < 0) {
                MW_ENSURE(errno == EAGAIN || errno == EINTR, MW_E_IO, "send: %s", strerror(errno));
                MW_GUARD(wait_io(c, POLLOUT));
                continue;
            }
            off += (size_t)w;
        }
    }
    return MW_SUCCESS;
}

/* Bytes into buf; *n = 0 at a clean end of stream. */
static mw_result recv_some(struct client *c, uint8_t *buf, size_t cap, size_t *n)
{
    for (;;) {
        if (c->ssl != NULL) {
            int r = SSL_read(c->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
            if (r > 0) {
                *n = (size_t)r;
                return MW_SUCCESS;
            }
            if (SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN) {
                *n = 0;
                return MW_SUCCESS;
            }
            MW_GUARD(tls_want(c, r, "TLS read"));
        } else {
            ssize_t r = recv(c->fd, buf, cap, 0);
            if (r >= 0) {
                *n = (size_t)r;
                return MW_SUCCESS;
            }
            MW_ENSURE(errno == EAGAIN || errno == EINTR, MW_E_IO, "recv: %s", strerror(errno));
            MW_GUARD(wait_io(c, POLLIN));
        }
    }
}

static mw_result build_request(const struct mw_http_client_request *req, struct mw_dynbuf *out)
{
    const char *method = req->method != NULL ? req->method : "GET";
    const char *path = req->path != NULL ? req->path : "/";
    MW_ENSURE(mw_http_is_token(mw_slice_cstr(method)), MW_E_INPUT, "method is not a token");
    for (const char *p = path; *p; p++)
        MW_ENSURE(*p > 0x20 && *p < 0x7f, MW_E_INPUT, "path holds a space or control character");
    MW_ENSURE(path[0] == '/', MW_E_INPUT, "path \"%s\" does not start with /", path);
    bool v6 = strchr(req->host, ':') != NULL;
    MW_GUARD(mw_dynbuf_addf(out, "%s %s HTTP/1.1\r\nHost: %s%s%s:%u\r\n", method, path,
                            v6 ? "[" : "", req->host, v6 ? "]" : "", (unsigned)req->port));
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct mw_http_header *h = &req->headers[i];
        MW_ENSURE(mw_http_is_token(h->name) && mw_http_is_field_value(h->value), MW_E_INPUT,
                  "request header %zu is not a valid field", i);
        MW_ENSURE(!mw_http_slice_ieq(h->name, "host") &&
                      !mw_http_slice_ieq(h->name, "content-length") &&
                      !mw_http_slice_ieq(h->name, "transfer-encoding") &&
                      !mw_http_slice_ieq(h->name, "connection"),
                  MW_E_INPUT, "request header %.*s is set by the client", (int)h->name.n,
                  (const char *)h->name.p);
        MW_GUARD(mw_dynbuf_add_slice(out, h->name));
        MW_GUARD(mw_dynbuf_add_cstr(out, ": "));
        MW_GUARD(mw_dynbuf_add_slice(out, h->value));
        MW_GUARD(mw_dynbuf_add_cstr(out, "\r\n"));
    }
    if (req->body.n > 0 || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0))
        MW_GUARD(mw_dynbuf_addf(out, "Content-Length: %zu\r\n", req->body.n));
    MW_GUARD(mw_dynbuf_add_cstr(out, "Connection: close\r\n\r\n"));
    MW_GUARD(mw_dynbuf_add_slice(out, req->body));
    return MW_SUCCESS;
}

static mw_result exchange(struct client *c, const struct mw_http_client_request *req,
                          struct mw_http_client_response *resp, size_t max)
{
    struct mw_dynbuf wire;
    mw_dynbuf_init(&wire, 64 + req->body.n + 65536);
    mw_result r = build_request(req, &wire);
    if (mw_ok(r))
        r = send_all(c, mw_dynbuf_slice(&wire));
    mw_dynbuf_free(&wire);
    MW_GUARD(r);

    mw_slice method = mw_slice_cstr(req->method != NULL ? req->method : "GET");
    uint8_t buf[16384];
    size_t head_len = 0;
    bool eof = false;
    /* The head, skipping interim 1xx responses (RFC 9110 §15.2). */
    for (;;) {
        struct mw_http_error err;
        ssize_t p =
            mw_http_parse_response(mw_dynbuf_slice(&resp->raw), method, NULL, &resp->head, &err);
        if (p < 0)
            MW_BAIL(MW_E_INPUT, "response head: %s", err.reason);
        if (p > 0 && resp->head.status >= 100 && resp->head.status < 200 &&
            resp->head.status != 101) {
            memmove(resp->raw.p, resp->raw.p + p, resp->raw.n - (size_t)p);
            resp->raw.n -= (size_t)p;
            continue;
        }
        if (p > 0) {
            head_len = (size_t)p;
            break;
        }
        MW_ENSURE(!eof, MW_E_INPUT, "connection closed before the end of the response head");
        size_t n;
        MW_GUARD(recv_some(c, buf, sizeof(buf), &n));
        eof = n == 0;
        MW_ENSURE(resp->raw.n + n <= max, MW_E_LIMIT, "response larger than %zu bytes", max);
        MW_GUARD(mw_dynbuf_add(&resp->raw, buf, n));
    }
    resp->status = resp->head.status;
    struct mw_http_body body;
    mw_http_body_init(&body, &resp->head, NULL);
    /* Body bytes that came with the head; raw then keeps only the head (no reallocation). */
    mw_slice rest = mw_slice_make(resp->raw.p + head_len, resp->raw.n - head_len);
    for (;;) {
        while (rest.n > 0 && !mw_http_body_done(&body)) {
            mw_slice data;
            struct mw_http_error err;
            ssize_t k = mw_http_body_decode(&body, rest, &data, &err);
            MW_ENSURE(k >= 0, MW_E_INPUT, "response body: %s", err.reason);
            MW_ENSURE(head_len + resp->body.n + data.n <= max, MW_E_LIMIT,
                      "response larger than %zu bytes", max);
            MW_GUARD(mw_dynbuf_add_slice(&resp->body, data));
            rest = mw_slice_sub(rest, (size_t)k, rest.n - (size_t)k);
            if (k == 0)
                break;
        }
        if (mw_http_body_done(&body))
            break;
        if (eof)
            return mw_http_body_eof(&body);
        size_t n;
        MW_GUARD(recv_some(c, buf, sizeof(buf), &n));
        eof = n == 0;
        rest = mw_slice_make(buf, n);
    }
    /* Keep only the head (the body bytes in raw were decoded); keep the dynbuf's NUL. */
    resp->raw.n = head_len;
    resp->raw.p[head_len] = 0;
    return MW_SUCCESS;
}

mw_result mw_http_client_request(const struct mw_http_client_request *req,
                                 struct mw_http_client_response *resp)
{
    MW_ENSURE(req->host != NULL && req->port != 0, MW_E_INPUT, "no host or port to connect to");
    size_t max = req->max_response ? req->max_response : (16 << 20);
    int timeout = req->timeout_ms > 0 ? req->timeout_ms : 10000;
    memset(resp, 0, sizeof(*resp));
    mw_dynbuf_init(&resp->raw, max);
    mw_dynbuf_init(&resp->body, max);
    struct client c = {.fd = -1, .deadline_ns = mw_monotonic_ns() + (uint64_t)timeout * 1000000};
    mw_result r = connect_tcp(&c, req->host, req->port);
    if (mw_ok(r) && req->tls != NULL) {
        c.ssl = SSL_new(mw_tls_ctx_ssl(req->tls));
        if (c.ssl == NULL) {
            mw_error_openssl(MW_E_CRYPTO, "SSL_new");
            r = MW_FAILURE;
        } else {
            SSL_set_fd(c.ssl, c.fd);
            r = mw_tls_client_prepare(req->tls, c.ssl,
                                      req->server_name != NULL ? req->server_name : req->host);
            while (mw_ok(r)) {
                int k = SSL_connect(c.ssl);
                if (k == 1)
                    break;
                r = tls_want(&c, k, "TLS handshake");
            }
        }
    }
    if (mw_ok(r))
        r = exchange(&c, req, resp, max);
    if (c.ssl != NULL) {
        if (mw_ok(r))
            (void)SSL_shutdown(c.ssl);
        SSL_free(c.ssl);
    }
    ERR_clear_error();
    if (c.fd >= 0)
        close(c.fd);
    if (mw_failed(r)) {
        mw_error_prefix("%s port %u: ", req->host, (unsigned)req->port);
        mw_http_client_response_free(resp);
    }
    return r;
}

mw_result mw_http_client_request_url(const char *url, const struct mw_http_client_request *base,
                                     struct mw_http_client_response *resp)
{
    struct mw_http_client_request req = {0};
    if (base != NULL)
        req = *base;
    mw_slice u = mw_slice_cstr(url);
    bool tls;
    if (mw_slice_has_prefix(u, mw_slice_cstr("https://"))) {
        tls = true;
        u = mw_slice_sub(u, 8, u.n);
    } else if (mw_slice_has_prefix(u, mw_slice_cstr("http://"))) {
        tls = false;
        u = mw_slice_sub(u, 7, u.n);
    } else {
        MW_BAIL(MW_E_INPUT, "URL \"%s\" is not http:// or https://", url);
    }
    MW_ENSURE(!tls || req.tls != NULL, MW_E_INPUT, "an https URL needs a TLS client context");
    if (!tls)
        req.tls = NULL;
    size_t slash = mw_slice_find(u, '/', 0);
    mw_slice authority = mw_slice_sub(u, 0, slash);
    char host[256];
    uint64_t port = tls ? 443 : 80;
    size_t colon = authority.n;
    mw_slice h = authority;
    if (authority.n > 0 && authority.p[0] == '[') {
        size_t close_br = mw_slice_find(authority, ']', 0);
        MW_ENSURE(close_br < authority.n, MW_E_INPUT, "URL \"%s\": unterminated [", url);
        h = mw_slice_sub(authority, 1, close_br - 1);
        colon = close_br + 1 < authority.n ? close_br + 1 : authority.n;
        MW_ENSURE(colon == authority.n || authority.p[colon] == ':', MW_E_INPUT,
                  "URL \"%s\": bad authority", url);
    } else {
        colon = mw_slice_find(authority, ':', 0);
        h = mw_slice_sub(authority, 0, colon);
    }
    if (colon < authority.n)
        MW_GUARD(mw_parse_u64(mw_slice_sub(authority, colon + 1, authority.n), 1, 65535, "URL port",
                              &port));
    MW_ENSURE(h.n > 0 && h.n < sizeof(host) && mw_slice_find(h, '@', 0) == h.n, MW_E_INPUT,
              "URL \"%s\": bad host", url);
    memcpy(host, h.p, h.n);
    host[h.n] = 0;
    req.host = host;
    req.port = (uint16_t)port;
    req.path = slash < u.n ? (const char *)u.p + slash : "/";
    return mw_http_client_request(&req, resp);
}

void mw_http_client_response_free(struct mw_http_client_response *resp)
{
    mw_dynbuf_free(&resp->raw);
    mw_dynbuf_free(&resp->body);
    resp->status = 0;
}
