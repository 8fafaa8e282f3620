/*
 * CA issuance throughput (bench/run_ca.sh drives it).
 *
 *   bench_ca floor SECONDS                      raw ECDSA P-256 signatures/s (EVP, one core)
 *   bench_ca issue CA.yaml SECONDS [PIN_ENV]    mw_ca_issue alone, one core
 *   bench_ca logged CA.yaml LOGDIR LOGKEY SECONDS BATCH
 *                                               issue + record + mw_tlog_append per BATCH
 *   bench_ca https PORT CLIENTS SECONDS TOKENFILE
 *                                               POST /v1/svid over keep-alive TLS from CLIENTS
 *                                               threads; k8s-sat token (reusable)
 *
 * Each prints "result <name> <value> <unit>" lines for machines and a line for people.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <meshward/ca.h>
#include <meshward/ca_auth.h>
#include <meshward/tlog.h>

static double now_s(void)
{
    return (double)mw_monotonic_ns() / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_ca: %s: %s\n", what, mw_error_msg());
    exit(1);
}

/* A P-256 CSR (DER) and its PEM. */
static void make_csr(struct mw_dynbuf *der, char **pem)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    if (key == NULL || req == NULL || X509_REQ_set_pubkey(req, key) != 1 ||
        X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
        fprintf(stderr, "bench_ca: CSR\n");
        exit(1);
    }
    unsigned char *p = NULL;
    int n = i2d_X509_REQ(req, &p);
    if (mw_failed(mw_dynbuf_add(der, p, (size_t)n)))
        die("csr");
    OPENSSL_free(p);
    if (pem != NULL) {
        BIO *b = BIO_new(BIO_s_mem());
        PEM_write_bio_X509_REQ(b, req);
        char *d;
        long len = BIO_get_mem_data(b, &d);
        *pem = strndup(d, (size_t)len);
        BIO_free(b);
    }
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

static int floor_bench(double secs)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    unsigned char msg[256] = {1}, sig[128];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint64_t n = 0;
    double t0 = now_s(), t;
    do {
        size_t len = sizeof(sig);
        if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
            EVP_DigestSign(ctx, sig, &len, msg, sizeof(msg)) != 1) {
            fprintf(stderr, "bench_ca: sign\n");
            return 1;
        }
        n++;
        t = now_s() - t0;
    } while (t < secs);
    printf("result ecdsa_p256_sign %.0f per_s\n", (double)n / t);
    printf("ECDSA P-256 sign (EVP, 1 core): %.0f/s\n", (double)n / t);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    return 0;
}

static int issue_bench(const char *conf, double secs, const char *pin_env)
{
    struct mw_ca *ca = NULL;
    if (mw_failed(mw_ca_open(conf, NULL, pin_env, &ca)))
        die("ca open");
    struct mw_dynbuf csr;
    mw_dynbuf_init(&csr, MW_CA_CSR_MAX);
    make_csr(&csr, NULL);
    uint64_t n = 0;
    double t0 = now_s(), t;
    do {
        struct mw_ca_svid s;
        mw_ca_svid_init(&s);
        if (mw_failed(mw_ca_issue(ca, mw_dynbuf_slice(&csr), "spiffe://example.org/bench", 0, NULL,
                                  NULL, &s)))
            die("issue");
        mw_ca_svid_free(&s);
        n++;
        t = now_s() - t0;
    } while (t < secs);
    printf("result issue_inproc %.0f per_s\n", (double)n / t);
    printf("mw_ca_issue (1 core): %.0f SVIDs/s\n", (double)n / t);
    mw_dynbuf_free(&csr);
    mw_ca_free(ca);
    return 0;
}

static int logged_bench(const char *conf, const char *dir, const char *keyfile, double secs,
                        size_t batch)
{
    struct mw_ca *ca = NULL;
    struct mw_dynbuf sk;
    mw_dynbuf_init_secure(&sk, 4096);
    struct mw_note_signer *signer = NULL;
    struct mw_tlog *log = NULL;
    if (mw_failed(mw_ca_open(conf, NULL, NULL, &ca)) || mw_failed(mw_file_read(keyfile, 4096, &sk)))
        die("open");
    while (sk.n > 0 && sk.p[sk.n - 1] == '\n')
        sk.n--;
    if (mw_failed(mw_note_signer_new(mw_dynbuf_slice(&sk), &signer)) ||
        mw_failed(mw_tlog_open(dir, "example.org/issuance", signer, &log)))
        die("log open");
    struct mw_dynbuf csr;
    mw_dynbuf_init(&csr, MW_CA_CSR_MAX);
    make_csr(&csr, NULL);
    struct mw_dynbuf *recs = calloc(batch, sizeof(*recs));
    mw_slice *ents = calloc(batch, sizeof(*ents));
    uint64_t n = 0;
    double t0 = now_s(), t;
    do {
        for (size_t i = 0; i < batch; i++) {
            struct mw_ca_svid s;
            mw_ca_svid_init(&s);
            if (mw_failed(mw_ca_issue(ca, mw_dynbuf_slice(&csr), "spiffe://example.org/bench", 0,
                                      NULL, NULL, &s)))
                die("issue");
            struct mw_ca_record r;
            memset(&r, 0, sizeof(r));
            struct mw_dynbuf st;
            mw_dynbuf_init(&st, 1 << 16);
            mw_dynbuf_init(&recs[i], MW_CA_RECORD_MAX);
            if (mw_failed(mw_ca_record_from_cert(mw_dynbuf_slice(&s.leaf_der), &r, &st)))
                die("record");
            r.spiffe_id = mw_slice_cstr("spiffe://example.org/bench");
            r.issued_at = mw_clock_now(NULL);
            r.cred_kind = MW_CA_CRED_JOIN;
            r.cred_subject = mw_slice_cstr("join:0123456789abcdef");
            r.ca_key_id = mw_slice_cstr(s.ca_key_id);
            if (mw_failed(mw_ca_record_encode(&r, &recs[i])))
                die("encode");
            ents[i] = mw_dynbuf_slice(&recs[i]);
            mw_dynbuf_free(&st);
            mw_ca_svid_free(&s);
        }
        uint64_t first;
        if (mw_failed(mw_tlog_append(log, ents, batch, &first)))
            die("append");
        for (size_t i = 0; i < batch; i++)
            mw_dynbuf_free(&recs[i]);
        n += batch;
        t = now_s() - t0;
    } while (t < secs);
    printf("result issue_logged_batch%zu %.0f per_s\n", batch, (double)n / t);
    printf("issue + record + durable append, batch %zu (1 core): %.0f SVIDs/s\n", batch,
           (double)n / t);
    free(recs);
    free(ents);
    mw_dynbuf_free(&csr);
    mw_dynbuf_free(&sk);
    mw_tlog_close(log);
    mw_note_signer_free(signer);
    mw_ca_free(ca);
    return 0;
}

/* ---------------------------------------------------------------- https */

struct client {
    int port;
    double until;
    const char *body;
    size_t body_n;
    uint64_t ok, fail;
};

static SSL_CTX *client_ctx;

/* Read one response; returns the status or -1. Content-Length framing only (ours). */
static int read_response(SSL *ssl)
{
    static __thread char buf[1 << 16];
    size_t n = 0;
    char *end = NULL;
    while (end == NULL) {
        int r = SSL_read(ssl, buf + n, (int)(sizeof(buf) - 1 - n));
        if (r <= 0)
            return -1;
        n += (size_t)r;
        buf[n] = 0;
        end = strstr(buf, "\r\n\r\n");
        if (end == NULL && n >= sizeof(buf) - 1)
            return -1;
    }
    int status = (int)strtol(buf + 9, NULL, 10);
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t want = cl != NULL ? strtoul(cl + 17, NULL, 10) : 0;
    size_t have = n - (size_t)(end + 4 - buf);
    while (have < want) {
        int r = SSL_read(ssl, buf, (int)(want - have < sizeof(buf) ? want - have : sizeof(buf)));
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    return status;
}

static void *client_run(void *arg)
{
    struct client *c = arg;
    char head[256];
    int hn = snprintf(head, sizeof(head),
                      "POST /v1/svid HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      "application/json\r\nContent-Length: %zu\r\n\r\n",
                      c->body_n);
    while (now_s() < c->until) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
            if (fd >= 0)
                close(fd);
            c->fail++;
            usleep(10000);
            continue;
        }
        SSL *ssl = SSL_new(client_ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) == 1) {
            while (now_s() < c->until) {
                if (SSL_write(ssl, head, hn) != hn ||
                    SSL_write(ssl, c->body, (int)c->body_n) != (int)c->body_n)
                    break;
                int st = read_response(ssl);
                if (st == 200)
                    c->ok++;
                else
                    c->fail++;
                if (st < 0)
                    break;
            }
        }
        SSL_free(ssl);
        close(fd);
    }
    return NULL;
}

static int https_bench(int port, int nclients, double secs, const char *tokfile)
{
    struct mw_dynbuf tok, body, csr;
    mw_dynbuf_init(&tok, 65536);
    mw_dynbuf_init(&body, 1 << 20);
    mw_dynbuf_init(&csr, MW_CA_CSR_MAX);
    if (mw_failed(mw_file_read(tokfile, 65536, &tok)))
        die("token");
    while (tok.n > 0 && tok.p[tok.n - 1] == '\n')
        tok.n--;
    char *pem = NULL;
    make_csr(&csr, &pem);
    if (mw_failed(mw_dynbuf_add_cstr(&body, "{\"csr\":")) ||
        mw_failed(mw_dynbuf_add_json_str(&body, mw_slice_cstr(pem))) ||
        mw_failed(mw_dynbuf_add_cstr(&body, ",\"credential\":{\"kind\":\"k8s-sat\",\"token\":")) ||
        mw_failed(mw_dynbuf_add_json_str(&body, mw_dynbuf_slice(&tok))) ||
        mw_failed(mw_dynbuf_add_cstr(&body, "}}")))
        die("body");
    /* A benchmark client: the tests check the server's identity; here only throughput counts. */
    client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
    struct client *cs = calloc((size_t)nclients, sizeof(*cs));
    pthread_t *th = calloc((size_t)nclients, sizeof(*th));
    double t0 = now_s();
    for (int i = 0; i < nclients; i++) {
        cs[i] = (struct client){
            .port = port, .until = t0 + secs, .body = (const char *)body.p, .body_n = body.n};
        pthread_create(&th[i], NULL, client_run, &cs[i]);
    }
    uint64_t ok = 0, fail = 0;
    for (int i = 0; i < nclients; i++) {
        pthread_join(th[i], NULL);
        ok += cs[i].ok;
        fail += cs[i].fail;
    }
    double t = now_s() - t0;
    printf("result https_c%d %.0f per_s\n", nclients, (double)ok / t);
    printf("HTTPS POST /v1/svid, %d keep-alive clients: %.0f SVIDs/s (%llu ok, %llu failed)\n",
           nclients, (double)ok / t, (unsigned long long)ok, (unsigned long long)fail);
    free(cs);
    free(th);
    free(pem);
    SSL_CTX_free(client_ctx);
    mw_dynbuf_free(&tok);
    mw_dynbuf_free(&body);
    mw_dynbuf_free(&csr);
    return fail > ok / 100 ? 1 : 0;
}

int main(int argc, char **argv)
{
    mw_log_set_level(MW_LOG_WARN);
    if (argc == 3 && strcmp(argv[1], "floor") == 0)
        return floor_bench(strtod(argv[2], NULL));
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "issue") == 0)
        return issue_bench(argv[2], strtod(argv[3], NULL), argc == 5 ? argv[4] : NULL);
    if (argc == 7 && strcmp(argv[1], "logged") == 0)
        return logged_bench(argv[2], argv[3], argv[4], strtod(argv[5], NULL),
                            strtoul(argv[6], NULL, 10));
    if (argc == 6 && strcmp(argv[1], "https") == 0)
        return https_bench((int)strtol(argv[2], NULL, 10), (int)strtol(argv[3], NULL, 10),
                           strtod(argv[4], NULL), argv[5]);
    fprintf(stderr, "usage: see the comment at the top of bench/bench_ca.c\n");
    return 2;
}
