/*
 * A test program for test_net_server.sh: serves meshward's HTTP server on
 * 127.0.0.1, or runs meshward's client once.
 *
 *   net_echo_server serve [--tls CERT KEY] [--ca CA] [--require|--request] [--peer-check]
 *                         [--head-timeout S] [--idle-timeout S] [--max-body N]
 *                         [--max-head N] [--max-conns N] [--port-file F]
 *   net_echo_server get URL [--ca CA] [--cert CERT KEY] [--max N] [--method M] [--body B]
 *
 * Routes: GET /hello, POST /echo (body back), GET /peer (client chain size),
 * POST /stop (graceful stop after the answer); anything else: the fallback
 * answers "METHOD TARGET" so tests can see what was parsed.
 */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <meshward/net.h>

static struct mw_http_server *server;
static int peer_checks;

static void ok(mw_result r)
{
    if (mw_failed(r)) {
        fprintf(stderr, "error: %s\n", mw_error_msg());
        exit(2);
    }
}

static void hello(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    ok(mw_http_response_header(resp, "Content-Type", "text/plain"));
    ok(mw_http_response_body(resp, mw_slice_cstr("hello\n")));
}

static void echo(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    ok(mw_http_response_body(resp, req->body));
}

static void peer(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "peer chain %zu bytes, checks %d\n", req->peer_chain.n, peer_checks);
    ok(mw_http_response_body(resp, mw_slice_cstr(buf)));
}

static void stop(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    ok(mw_http_response_body(resp, mw_slice_cstr("stopping\n")));
    mw_http_server_stop(server);
}

static void fallback(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%.*s %.*s\n", (int)req->head->method.n,
             (const char *)req->head->method.p, (int)req->head->target.n,
             (const char *)req->head->target.p);
    ok(mw_http_response_body(resp, mw_slice_cstr(buf)));
}

static bool check_peer(mw_slice chain, void *arg)
{
    peer_checks++;
    return chain.n > 0;
}

static int serve(int argc, char **argv)
{
    struct mw_tls_config tc = {0};
    struct mw_http_server_config sc = {0};
    const char *port_file = NULL;
    bool tls = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            tls = true;
            tc.cert_file = argv[++i];
            tc.key_file = argv[++i];
        } else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc) {
            tc.ca_file = argv[++i];
        } else if (strcmp(argv[i], "--require") == 0) {
            tc.client_auth = MW_TLS_CLIENT_REQUIRE;
        } else if (strcmp(argv[i], "--request") == 0) {
            tc.client_auth = MW_TLS_CLIENT_REQUEST;
        } else if (strcmp(argv[i], "--peer-check") == 0) {
            tc.peer_check = check_peer;
        } else if (strcmp(argv[i], "--head-timeout") == 0 && i + 1 < argc) {
            sc.head_timeout = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "--idle-timeout") == 0 && i + 1 < argc) {
            sc.idle_timeout = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "--max-body") == 0 && i + 1 < argc) {
            sc.max_body = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--max-head") == 0 && i + 1 < argc) {
            sc.limits.max_head = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--max-conns") == 0 && i + 1 < argc) {
            sc.max_connections = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc) {
            port_file = argv[++i];
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    struct mw_tls_ctx *ctx = NULL;
    if (tls) {
        ok(mw_tls_server_new(&tc, &ctx));
        sc.tls = ctx;
    }
    sc.fallback = fallback;
    struct ev_loop *loop = EV_DEFAULT;
    ok(mw_http_server_new(loop, &sc, &server));
    ok(mw_http_server_route(server, "GET", "/hello", hello, NULL));
    ok(mw_http_server_route(server, "POST", "/echo", echo, NULL));
    ok(mw_http_server_route(server, "GET", "/peer", peer, NULL));
    ok(mw_http_server_route(server, "POST", "/stop", stop, NULL));
    if (port_file != NULL) {
        FILE *f = fopen(port_file, "w");
        if (f == NULL)
            return 2;
        fprintf(f, "%u\n", (unsigned)mw_http_server_port(server));
        fclose(f);
    }
    ev_run(loop, 0);
    /* The loop ends only after a graceful stop has closed every connection. */
    fprintf(stderr, "stopped with %zu connections\n", mw_http_server_connections(server));
    mw_http_server_free(server);
    mw_tls_ctx_free(ctx);
    return 0;
}

static int get(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    struct mw_tls_config tc = {0};
    struct mw_http_client_request req = {0};
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc) {
            tc.ca_file = argv[++i];
        } else if (strcmp(argv[i], "--cert") == 0 && i + 2 < argc) {
            tc.cert_file = argv[++i];
            tc.key_file = argv[++i];
        } else if (strcmp(argv[i], "--max") == 0 && i + 1 < argc) {
            req.max_response = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--method") == 0 && i + 1 < argc) {
            req.method = argv[++i];
        } else if (strcmp(argv[i], "--body") == 0 && i + 1 < argc) {
            req.body = mw_slice_cstr(argv[++i]);
        } else {
            return 2;
        }
    }
    struct mw_tls_ctx *ctx = NULL;
    if (tc.ca_file != NULL) {
        ok(mw_tls_client_new(&tc, &ctx));
        req.tls = ctx;
    }
    req.timeout_ms = 5000;
    struct mw_http_client_response resp;
    mw_result r = mw_http_client_request_url(argv[2], &req, &resp);
    mw_tls_ctx_free(ctx);
    if (mw_failed(r)) {
        printf("error: %s: %s\n", mw_err_name(mw_error_code()), mw_error_msg());
        return 1;
    }
    printf("%d\n%s", resp.status, mw_dynbuf_cstr(&resp.body));
    mw_http_client_response_free(&resp);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return serve(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "get") == 0)
        return get(argc, argv);
    fprintf(stderr, "usage: net_echo_server serve|get ...\n");
    return 2;
}
