/*
 * The server, the client and the TLS contexts in one process: the server's
 * libev loop runs in a thread, the blocking client talks to it over
 * 127.0.0.1. Certificates are made here with OpenSSL (in memory).
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <ev.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <meshward/net.h>

#include "net/net_internal.h"

/* ---------------------------------------------------------------- certificates */

struct pem {
    struct mw_dynbuf cert, key;
    EVP_PKEY *pkey;
    X509 *x509;
};

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

static void to_pem(struct pem *p)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(b, p->x509), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    mw_dynbuf_init(&p->cert, 1 << 16);
    mw_assert_ok(mw_dynbuf_add(&p->cert, data, (size_t)n));
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, p->pkey, NULL, NULL, 0, NULL, NULL), 1);
    n = BIO_get_mem_data(b, &data);
    mw_dynbuf_init(&p->key, 1 << 16);
    mw_assert_ok(mw_dynbuf_add(&p->key, data, (size_t)n));
    BIO_free(b);
}

/* A P-256 certificate: self-signed CA when issuer is NULL. */
static void make_cert(struct pem *out, const char *cn, const struct pem *issuer, bool server)
{
    out->pkey = EVP_EC_gen("P-256");
    assert_non_null(out->pkey);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(mw_monotonic_ns() & 0x7fffffff));
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer->x509) : name);
    X509_set_pubkey(x, out->pkey);
    X509 *iss = issuer != NULL ? issuer->x509 : x;
    if (issuer == NULL) {
        add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, iss, NID_ext_key_usage, server ? "serverAuth" : "clientAuth");
        add_ext(x, iss, NID_subject_alt_name,
                server ? "IP:127.0.0.1,DNS:localhost" : "URI:spiffe://test.example/ns/a/sa/b");
    }
    assert_true(X509_sign(x, issuer != NULL ? issuer->pkey : out->pkey, EVP_sha256()) > 0);
    out->x509 = x;
    to_pem(out);
}

static void pem_free(struct pem *p)
{
    mw_dynbuf_free(&p->cert);
    mw_dynbuf_free(&p->key);
    EVP_PKEY_free(p->pkey);
    X509_free(p->x509);
}

/* ---------------------------------------------------------------- server thread */

struct fixture {
    struct ev_loop *loop;
    struct mw_http_server *srv;
    pthread_t thread;
    uint16_t port;
    int peer_checks;
    size_t last_chain;
    bool refuse_peer;
    unsigned char leaf_der[4096];
    size_t leaf_der_n;
    ev_timer later;
    struct mw_http_response *waiting;
    int finished_alive, finished_dead;
};

static void *run_loop(void *arg)
{
    struct fixture *f = arg;
    ev_run(f->loop, 0);
    return NULL;
}

static void h_hello(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    mw_assert_ok(mw_http_response_header(resp, "Content-Type", "text/plain"));
    mw_assert_ok(mw_http_response_body(resp, mw_slice_cstr("hello\n")));
}

static void h_echo(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    struct fixture *f = arg;
    f->last_chain = req->peer_chain.n;
    mw_assert_ok(mw_http_response_body(resp, req->body));
}

static void h_query(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    mw_assert_ok(mw_http_response_body(resp, req->query));
    mw_assert_fails(mw_http_response_header(resp, "Content-Length", "1"), MW_E_INPUT);
    mw_assert_fails(mw_http_response_header(resp, "X-Bad", "a\r\nb"), MW_E_INPUT);
    mw_assert_fails(mw_http_response_header(resp, "X Bad", "a"), MW_E_INPUT);
}

/* Runs on the loop thread: finish the deferred response. */
static void finish_later(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fixture *f = w->data;
    struct mw_http_response *r = f->waiting;
    f->waiting = NULL;
    if (mw_http_response_alive(r))
        f->finished_alive++;
    else
        f->finished_dead++;
    mw_http_response_status(r, 202);
    mw_assert_ok(mw_http_response_body(r, mw_slice_cstr("later\n")));
    mw_http_response_finish(r);
}

static void h_wait(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    struct fixture *f = arg;
    f->waiting = mw_http_response_defer(resp);
    ev_timer_init(&f->later, finish_later, 0.3, 0.);
    f->later.data = f;
    ev_timer_start(f->loop, &f->later);
}

/* Deferred and finished inside the handler: the same as answering at once. */
static void h_quick(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    struct mw_http_response *r = mw_http_response_defer(resp);
    mw_assert_ok(mw_http_response_body(r, mw_slice_cstr("quick\n")));
    mw_http_response_finish(r);
}

static void h_stop(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    struct fixture *f = arg;
    mw_http_server_stop(f->srv);
}

static bool peer_check(mw_slice chain, void *arg)
{
    struct fixture *f = arg;
    f->peer_checks++;
    f->last_chain = chain.n;
    /* The leaf comes first, as DER. */
    if (chain.n >= f->leaf_der_n && memcmp(chain.p, f->leaf_der, f->leaf_der_n) != 0)
        return false;
    return !f->refuse_peer;
}

static void start(struct fixture *f, struct mw_tls_ctx *tls)
{
    f->loop = ev_loop_new(EVFLAG_AUTO);
    struct mw_http_server_config cfg = {.tls = tls, .max_body = 4096, .head_timeout = 2};
    mw_assert_ok(mw_http_server_new(f->loop, &cfg, &f->srv));
    mw_assert_ok(mw_http_server_route(f->srv, "GET", "/hello", h_hello, f));
    mw_assert_ok(mw_http_server_route(f->srv, "POST", "/echo", h_echo, f));
    mw_assert_ok(mw_http_server_route(f->srv, "GET", "/query", h_query, f));
    mw_assert_ok(mw_http_server_route(f->srv, "POST", "/stop", h_stop, f));
    mw_assert_ok(mw_http_server_route(f->srv, "GET", "/wait", h_wait, f));
    mw_assert_ok(mw_http_server_route(f->srv, "GET", "/quick", h_quick, f));
    mw_assert_fails(mw_http_server_route(f->srv, "G T", "/x", h_hello, f), MW_E_INPUT);
    mw_assert_fails(mw_http_server_route(f->srv, "GET", "x", h_hello, f), MW_E_INPUT);
    f->port = mw_http_server_port(f->srv);
    assert_true(f->port != 0);
    assert_int_equal(pthread_create(&f->thread, NULL, run_loop, f), 0);
}

/* Graceful stop through a request; the loop then ends by itself. */
static void stop(struct fixture *f, struct mw_tls_ctx *client_tls)
{
    struct mw_http_client_request req = {
        .host = "127.0.0.1", .port = f->port, .method = "POST", .path = "/stop", .tls = client_tls};
    struct mw_http_client_response resp;
    mw_assert_ok(mw_http_client_request(&req, &resp));
    assert_int_equal(resp.status, 200);
    mw_http_client_response_free(&resp);
    assert_int_equal(pthread_join(f->thread, NULL), 0);
    assert_int_equal(mw_http_server_connections(f->srv), 0);
    mw_http_server_free(f->srv);
    ev_loop_destroy(f->loop);
}

static void get(struct fixture *f, struct mw_tls_ctx *tls, const char *method, const char *path,
                const char *body, int want_status, const char *want_body)
{
    struct mw_http_client_request req = {.host = "127.0.0.1",
                                         .port = f->port,
                                         .method = method,
                                         .path = path,
                                         .tls = tls,
                                         .body = mw_slice_cstr(body != NULL ? body : "")};
    struct mw_http_client_response resp;
    mw_assert_ok(mw_http_client_request(&req, &resp));
    if (resp.status != want_status)
        fail_msg("%s %s: status %d, want %d", method, path, resp.status, want_status);
    if (want_body != NULL && !mw_slice_eq_cstr(mw_dynbuf_slice(&resp.body), want_body))
        fail_msg("%s %s: body \"%s\", want \"%s\"", method, path, mw_dynbuf_cstr(&resp.body),
                 want_body);
    mw_http_client_response_free(&resp);
}

/* Raw bytes in, everything until the server closes out. */
static void raw(struct fixture *f, const char *in, struct mw_dynbuf *out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(f->port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(send(fd, in, strlen(in), MSG_NOSIGNAL), (ssize_t)strlen(in));
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        mw_assert_ok(mw_dynbuf_add(out, buf, (size_t)n));
    }
    close(fd);
}

/* ---------------------------------------------------------------- tests */

static void test_plain(void **state)
{
    (void)state;
    struct fixture f = {0};
    start(&f, NULL);
    get(&f, NULL, "GET", "/hello", NULL, 200, "hello\n");
    get(&f, NULL, "HEAD", "/hello", NULL, 200, "");
    get(&f, NULL, "POST", "/echo", "some body", 200, "some body");
    get(&f, NULL, "GET", "/query?a=1&b=2", NULL, 200, "a=1&b=2");
    get(&f, NULL, "GET", "/missing", NULL, 404, NULL);
    get(&f, NULL, "PUT", "/hello", "x", 405, NULL);

    struct mw_dynbuf out;
    mw_dynbuf_init(&out, 1 << 20);
    /* Pipelined, the second with a chunked body; the answers in order, then close. */
    raw(&f,
        "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
        "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n"
        "GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        &out);
    const char *o = mw_dynbuf_cstr(&out);
    const char *first = strstr(o, "hello\n");
    const char *second = first != NULL ? strstr(first, "abcde") : NULL;
    const char *third = second != NULL ? strstr(second, "hello\n") : NULL;
    if (third == NULL)
        fail_msg("pipelined answers out of order: %s", o);
    mw_dynbuf_reset(&out);

    raw(&f, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &out);
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "HTTP/1.1 400 "));
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "conflicting Content-Length"));
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "Connection: close"));
    mw_dynbuf_reset(&out);
    raw(&f, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n", &out);
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "HTTP/1.1 413 "));
    mw_dynbuf_reset(&out);
    raw(&f, "GET / HTTP/2.0\r\nHost: a\r\n\r\n", &out);
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "HTTP/1.1 505 "));
    mw_dynbuf_reset(&out);
    /* A head that never ends: 408 after the head timeout (2 s). */
    uint64_t t0 = mw_monotonic_ns();
    raw(&f, "GET / HTTP/1.1\r\nHost: a\r\n", &out);
    uint64_t ms = (mw_monotonic_ns() - t0) / 1000000;
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "HTTP/1.1 408 "));
    assert_true(ms >= 1500 && ms < 4000);
    mw_dynbuf_reset(&out);

    /* A deferred response, with a pipelined request behind it: in order. */
    get(&f, NULL, "GET", "/quick", NULL, 200, "quick\n");
    raw(&f,
        "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n"
        "GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        &out);
    o = mw_dynbuf_cstr(&out);
    first = strstr(o, "HTTP/1.1 202 ");
    if (first == NULL || strstr(first, "later\n") == NULL || strstr(first, "hello\n") == NULL)
        fail_msg("deferred answer not first: %s", o);
    assert_int_equal(f.finished_alive, 1);
    mw_dynbuf_free(&out);

    /* The client leaves before the answer: finishing only frees. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(f.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    const char *w = "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(send(fd, w, strlen(w), MSG_NOSIGNAL), (ssize_t)strlen(w));
    usleep(100000);
    close(fd);
    for (int i = 0; i < 50 && f.finished_dead == 0; i++)
        usleep(20000);
    assert_int_equal(f.finished_dead, 1);
    stop(&f, NULL);
}

static void test_tls_and_mtls(void **state)
{
    (void)state;
    struct pem ca, srv, cli, other;
    make_cert(&ca, "test-ca", NULL, false);
    make_cert(&srv, "localhost", &ca, true);
    make_cert(&cli, "client", &ca, false);
    make_cert(&other, "other-ca", NULL, false);

    struct fixture f = {0};
    unsigned char *p = f.leaf_der;
    f.leaf_der_n = (size_t)i2d_X509(cli.x509, &p);

    struct mw_tls_config sc = {.cert_pem = mw_dynbuf_slice(&srv.cert),
                               .key_pem = mw_dynbuf_slice(&srv.key),
                               .client_auth = MW_TLS_CLIENT_REQUIRE,
                               .peer_check = peer_check,
                               .peer_check_arg = &f};
    struct mw_tls_ctx *server_tls;
    mw_assert_ok(mw_tls_server_new(&sc, &server_tls));
    start(&f, server_tls);

    struct mw_tls_config cc = {.ca_pem = mw_dynbuf_slice(&ca.cert),
                               .cert_pem = mw_dynbuf_slice(&cli.cert),
                               .key_pem = mw_dynbuf_slice(&cli.key)};
    struct mw_tls_ctx *client_tls;
    mw_assert_ok(mw_tls_client_new(&cc, &client_tls));
    get(&f, client_tls, "POST", "/echo", "over mTLS", 200, "over mTLS");
    assert_true(f.peer_checks >= 1);
    assert_int_equal(f.last_chain, f.leaf_der_n);

    /* The peer check refuses: the handshake fails. */
    f.refuse_peer = true;
    struct mw_http_client_request req = {
        .host = "127.0.0.1", .port = f.port, .path = "/hello", .tls = client_tls};
    struct mw_http_client_response resp;
    assert_true(mw_failed(mw_http_client_request(&req, &resp)));
    f.refuse_peer = false;

    /* No client certificate: refused. */
    struct mw_tls_config nc = {.ca_pem = mw_dynbuf_slice(&ca.cert)};
    struct mw_tls_ctx *anon_tls;
    mw_assert_ok(mw_tls_client_new(&nc, &anon_tls));
    req.tls = anon_tls;
    assert_true(mw_failed(mw_http_client_request(&req, &resp)));

    /* A client that pins another CA refuses the server. */
    struct mw_tls_config oc = {.ca_pem = mw_dynbuf_slice(&other.cert),
                               .cert_pem = mw_dynbuf_slice(&cli.cert),
                               .key_pem = mw_dynbuf_slice(&cli.key)};
    struct mw_tls_ctx *other_tls;
    mw_assert_ok(mw_tls_client_new(&oc, &other_tls));
    req.tls = other_tls;
    mw_assert_fails(mw_http_client_request(&req, &resp), MW_E_VERIFY);

    /* The name is checked: the certificate is for 127.0.0.1 and localhost only. */
    req.tls = client_tls;
    req.server_name = "wrong.example";
    mw_assert_fails(mw_http_client_request(&req, &resp), MW_E_VERIFY);
    req.server_name = "localhost";
    mw_assert_ok(mw_http_client_request(&req, &resp));
    assert_int_equal(resp.status, 200);
    mw_http_client_response_free(&resp);

    /* Plain HTTP to the TLS port fails cleanly. */
    req.tls = NULL;
    req.timeout_ms = 3000;
    assert_true(mw_failed(mw_http_client_request(&req, &resp)));

    stop(&f, client_tls);
    mw_tls_ctx_free(server_tls);
    mw_tls_ctx_free(client_tls);
    mw_tls_ctx_free(anon_tls);
    mw_tls_ctx_free(other_tls);
    pem_free(&ca);
    pem_free(&srv);
    pem_free(&cli);
    pem_free(&other);
}

/* Identity as OpenSSL objects (HSM keys), and a TLS 1.3-only server. */
static void test_tls_ossl_identity(void **state)
{
    (void)state;
    struct pem ca, srv;
    make_cert(&ca, "test-ca", NULL, false);
    make_cert(&srv, "localhost", &ca, true);
    struct mw_tls_config sc = {.tls13_only = true};
    struct mw_tls_ctx *server_tls, *client_tls;
    mw_assert_fails(mw_tls_server_new_ossl(&sc, NULL, NULL, srv.pkey, &server_tls), MW_E_INPUT);
    mw_assert_fails(mw_tls_server_new_ossl(&sc, srv.x509, NULL, ca.pkey, &server_tls), MW_E_INPUT);
    mw_assert_ok(mw_tls_server_new_ossl(&sc, srv.x509, NULL, srv.pkey, &server_tls));
    struct fixture f = {0};
    start(&f, server_tls);
    struct mw_tls_config cc = {.ca_pem = mw_dynbuf_slice(&ca.cert)};
    mw_assert_ok(mw_tls_client_new(&cc, &client_tls));
    get(&f, client_tls, "GET", "/hello", NULL, 200, "hello\n");
    /* Rotation: a new context for new connections; the old one lives on while referenced. */
    struct mw_tls_ctx *next_tls;
    mw_assert_ok(mw_tls_server_new_ossl(&sc, srv.x509, NULL, srv.pkey, &next_tls));
    mw_http_server_set_tls(f.srv, next_tls);
    mw_tls_ctx_free(next_tls);
    get(&f, client_tls, "GET", "/hello", NULL, 200, "hello\n");
    stop(&f, client_tls);
    mw_tls_ctx_free(server_tls);
    mw_tls_ctx_free(client_tls);
    pem_free(&ca);
    pem_free(&srv);
}

static void test_tls_config_errors(void **state)
{
    (void)state;
    struct mw_tls_ctx *ctx;
    struct mw_tls_config none = {0};
    mw_assert_fails(mw_tls_server_new(&none, &ctx), MW_E_INPUT);
    mw_assert_fails(mw_tls_client_new(&none, &ctx), MW_E_INPUT);
    struct pem a, b;
    make_cert(&a, "a", NULL, false);
    make_cert(&b, "b", NULL, false);
    /* Key of another certificate. */
    struct mw_tls_config mismatch = {.cert_pem = mw_dynbuf_slice(&a.cert),
                                     .key_pem = mw_dynbuf_slice(&b.key)};
    mw_assert_fails(mw_tls_server_new(&mismatch, &ctx), MW_E_INPUT);
    /* mTLS without a way to check clients. */
    struct mw_tls_config nocheck = {.cert_pem = mw_dynbuf_slice(&a.cert),
                                    .key_pem = mw_dynbuf_slice(&a.key),
                                    .client_auth = MW_TLS_CLIENT_REQUIRE};
    mw_assert_fails(mw_tls_server_new(&nocheck, &ctx), MW_E_INPUT);
    /* A key file others can read is refused. */
    char path[512];
    snprintf(path, sizeof(path), "%s/key.pem", mw_test_tmpdir());
    mw_assert_ok(mw_file_write_atomic(path, mw_dynbuf_slice(&a.key), 0644));
    struct mw_tls_config open_key = {.cert_pem = mw_dynbuf_slice(&a.cert), .key_file = path};
    mw_assert_fails(mw_tls_server_new(&open_key, &ctx), MW_E_PERM);
    pem_free(&a);
    pem_free(&b);
}

static void test_url_errors(void **state)
{
    (void)state;
    struct mw_http_client_response resp;
    mw_assert_fails(mw_http_client_request_url("ftp://x/", NULL, &resp), MW_E_INPUT);
    mw_assert_fails(mw_http_client_request_url("https://x/", NULL, &resp), MW_E_INPUT);
    mw_assert_fails(mw_http_client_request_url("http://x:0/", NULL, &resp), MW_E_INPUT);
    mw_assert_fails(mw_http_client_request_url("http://x:99999/", NULL, &resp), MW_E_INPUT);
    mw_assert_fails(mw_http_client_request_url("http://u@x/", NULL, &resp), MW_E_INPUT);
    mw_assert_fails(mw_http_client_request_url("http:///", NULL, &resp), MW_E_INPUT);
    /* Nothing listens on port 1. */
    mw_assert_fails(mw_http_client_request_url("http://127.0.0.1:1/", NULL, &resp), MW_E_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_tls_and_mtls),
        cmocka_unit_test(test_tls_ossl_identity),
        cmocka_unit_test(test_tls_config_errors),
        cmocka_unit_test(test_url_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
