/*
 * `meshward ca serve`: the CA service over HTTPS, and `meshward ca request`:
 * its client (for tests and for sidecars that bootstrap from a join token),
 * which can also renew an SVID by presenting it (--renew).
 */
#include <ev.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <meshward/ca.h>
#include <meshward/ca_auth.h>
#include <meshward/ca_service.h>
#include <meshward/conf.h>
#include <meshward/control.h>
#include <meshward/net.h>
#include <meshward/spiffe.h>
#include <meshward/tlog.h>

#include "base/mw_ossl.h"
#include "cli/cli.h"

/* "host:port" or "[v6]:port" */
static mw_result split_listen(const char *s, char *host, size_t hlen, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    MW_ENSURE(colon != NULL, MW_E_INPUT, "--listen wants ADDRESS:PORT, got \"%s\"", s);
    const char *h = s;
    size_t n = (size_t)(colon - s);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    MW_ENSURE(n > 0 && n < hlen, MW_E_INPUT, "--listen: bad address in \"%s\"", s);
    memcpy(host, h, n);
    host[n] = '\0';
    uint64_t p;
    MW_GUARD(mw_parse_u64(mw_slice_cstr(colon + 1), 0, 65535, "--listen port", &p));
    *port = (uint16_t)p;
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- serve */

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: meshward ca serve --config CA.yaml --listen ADDR:PORT --log DIR\n"
            "                         --log-key KEYFILE --db STORE [options]\n"
            "\n"
            "The CA over HTTPS: POST /v1/svid (CSR + credential -> X.509-SVID), POST\n"
            "/v1/svid/renew (CSR, with the current SVID as TLS client certificate -> a new SVID\n"
            "for the same ID), GET /v1/bundle (SPIFFE JWKS; ?format=pem for PEM), GET /healthz.\n"
            "The service presents an SVID of its own CA for spiffe://TD/meshward/ca: clients pin\n"
            "bundle.pem and check that ID. It requests (does not require) a client certificate\n"
            "and refuses the handshake of one that is not a valid SVID of its trust domain.\n"
            "Every SVID is answered only after its issuance record is durable in the log.\n"
            "\n"
            "  --config CA.yaml         the CA (file or PKCS#11 keys)\n"
            "  --listen ADDR:PORT       numeric address and port (port 0: pick one; the chosen\n"
            "                           one is printed as 'listening on ADDR:PORT')\n"
            "  --log DIR                the issuance log (C2SP tlog-tiles), created if missing\n"
            "  --log-key KEYFILE        its signed-note key (from `meshward log keygen`; 0600)\n"
            "  --origin ORIGIN          the log's origin line (default TD/issuance)\n"
            "  --db STORE               the CA store: join tokens, artifacts, registrations\n"
            "  --registrations FILE     WorkloadRegistration YAML (default: the store's)\n"
            "  --allow-unregistered     issue to identities no registration selects\n"
            "  --k8s-jwks F --k8s-issuer I --k8s-audience A\n"
            "                           accept Kubernetes service-account tokens\n"
            "  --batch N                most records per log append (default 1024)\n"
            "  --rotate-every D         how often to apply the rotation thresholds (default 1m)\n"
            "  --log-level L            debug, info (default), warn, error\n"
            "  --pin-file F, --pin-env VAR   the token PIN, overriding ca.yaml\n"
            "\n"
            "SIGTERM/SIGINT: stop accepting, answer what is in flight, exit 0.\n"
            "Exit: 0 stopped, 1 refused, 2 usage, 3 I/O.\n");
}

static void control_usage(FILE *f)
{
    fprintf(f, "usage: meshward control --mesh DIR --config CA.yaml --listen ADDR:PORT --log DIR\n"
               "                        --log-key KEYFILE --db STORE [options]\n"
               "\n"
               "The control plane: the CA service (every `meshward ca serve` endpoint and option)\n"
               "and configuration distribution on the same mTLS listener:\n"
               "  GET /v1/config?since=N[&wait=S]   long-poll; the client certificate (the\n"
               "      workload's SVID) says who asks; answers the policies, egress declarations\n"
               "      and service registry that apply to that workload's namespace.\n"
               "\n"
               "  --mesh DIR               YAML: Istio AuthorizationPolicy, PeerAuthentication,\n"
               "                           RequestAuthentication; meshward.io/v1alpha1\n"
               "                           ProvenancePolicy, EgressPolicy, MeshService. Watched:\n"
               "                           a change that loads becomes a new version; one that\n"
               "                           does not is refused and logged (docs/control.md)\n"
               "  --root-namespace NS      mesh-wide policies live here (default istio-system)\n"
               "  (the rest as for `meshward ca serve --help`)\n"
               "\n"
               "SIGHUP: look at the mesh directory now. SIGTERM/SIGINT: stop.\n"
               "Exit: 0 stopped, 1 refused, 2 usage, 3 I/O.\n");
}

struct serve_ctx {
    struct mw_ca_service *svc;
    struct mw_control *ctl; /* meshward control only */
    ev_signal sigterm, sigint, sighup;
};

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct serve_ctx *c = w->data;
    if (w->signum == SIGHUP) {
        if (c->ctl != NULL)
            mw_control_rescan(c->ctl);
        return;
    }
    mw_log_info("ca-serve", "signal %d: stopping", w->signum);
    ev_signal_stop(loop, &c->sigterm);
    ev_signal_stop(loop, &c->sigint);
    ev_signal_stop(loop, &c->sighup);
    mw_control_stop(c->ctl);
    mw_ca_service_stop(c->svc);
}

static int cmd_serve(int argc, char **argv, bool control)
{
    const char *cmd = control ? "control" : "ca serve";
    enum {
        CONF,
        LISTEN,
        LOGDIR,
        LOGKEY,
        ORIGIN,
        DB,
        REGS,
        ALLOW,
        JWKS,
        ISS,
        AUD,
        BATCH,
        ROT,
        LEVEL,
        PINF,
        PINE,
        MESH,
        ROOTNS
    };
    static const struct option opts[] = {
        {"config", required_argument, NULL, MW_CLI_OPT + CONF},
        {"listen", required_argument, NULL, MW_CLI_OPT + LISTEN},
        {"log", required_argument, NULL, MW_CLI_OPT + LOGDIR},
        {"log-key", required_argument, NULL, MW_CLI_OPT + LOGKEY},
        {"origin", required_argument, NULL, MW_CLI_OPT + ORIGIN},
        {"db", required_argument, NULL, MW_CLI_OPT + DB},
        {"registrations", required_argument, NULL, MW_CLI_OPT + REGS},
        {"allow-unregistered", no_argument, NULL, MW_CLI_OPT + ALLOW},
        {"k8s-jwks", required_argument, NULL, MW_CLI_OPT + JWKS},
        {"k8s-issuer", required_argument, NULL, MW_CLI_OPT + ISS},
        {"k8s-audience", required_argument, NULL, MW_CLI_OPT + AUD},
        {"batch", required_argument, NULL, MW_CLI_OPT + BATCH},
        {"rotate-every", required_argument, NULL, MW_CLI_OPT + ROT},
        {"log-level", required_argument, NULL, MW_CLI_OPT + LEVEL},
        {"pin-file", required_argument, NULL, MW_CLI_OPT + PINF},
        {"pin-env", required_argument, NULL, MW_CLI_OPT + PINE},
        {"mesh", required_argument, NULL, MW_CLI_OPT + MESH},
        {"root-namespace", required_argument, NULL, MW_CLI_OPT + ROOTNS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mw_cli_opts p;
    int rc = mw_cli_parse_opts(argc, argv, opts, cmd, control ? control_usage : serve_usage, &p);
    if (rc >= 0)
        return rc;
    const char **v = p.values;
    if (control != (v[MESH] != NULL) || (!control && v[ROOTNS] != NULL)) {
        fprintf(stderr, control ? "meshward: control: --mesh DIR is required\n"
                                : "meshward: ca serve: --mesh and --root-namespace belong to "
                                  "`meshward control`\n");
        return MW_EXIT_USAGE;
    }
    if (!v[CONF] || !v[LISTEN] || !v[LOGDIR] || !v[LOGKEY] || !v[DB] || p.rest != argc) {
        fprintf(stderr, "meshward: ca serve: --config, --listen, --log, --log-key and --db are "
                        "required\n");
        serve_usage(stderr);
        return MW_EXIT_USAGE;
    }
    int nk8s = (v[JWKS] != NULL) + (v[ISS] != NULL) + (v[AUD] != NULL);
    if (nk8s != 0 && nk8s != 3) {
        fprintf(stderr, "meshward: ca serve: --k8s-jwks, --k8s-issuer and --k8s-audience go "
                        "together\n");
        return MW_EXIT_USAGE;
    }
    char host[256];
    uint16_t port = 0;
    uint64_t batch = 1024, rot = 60;
    enum mw_log_level level = MW_LOG_INFO;
    if (mw_failed(split_listen(v[LISTEN], host, sizeof(host), &port)) ||
        (v[BATCH] &&
         mw_failed(mw_parse_u64(mw_slice_cstr(v[BATCH]), 1, 4096, "--batch", &batch))) ||
        (v[ROT] &&
         mw_failed(mw_parse_duration(mw_slice_cstr(v[ROT]), 86400, "--rotate-every", &rot))) ||
        (v[LEVEL] && mw_failed(mw_log_parse_level(v[LEVEL], &level)))) {
        fprintf(stderr, "meshward: ca serve: %s\n", mw_error_msg());
        return MW_EXIT_USAGE;
    }
    if (rot == 0)
        rot = 1;
    mw_log_set_level(level);
    if (mw_failed(mw_secmem_harden_process()))
        mw_log_warn("ca-serve", "cannot harden the process: %s", mw_error_msg());

    struct mw_ca *ca = NULL;
    struct mw_note_signer *signer = NULL;
    struct mw_tlog *log = NULL;
    struct mw_ca_store *store = NULL;
    struct mw_ca_registrations *regs = NULL;
    struct mw_k8s_verifier *k8s = NULL;
    struct ev_loop *loop = NULL;
    struct serve_ctx sc = {0};
    struct mw_dynbuf sk;
    mw_dynbuf_init_secure(&sk, 4096);
    char origin[512];

    if (mw_failed(mw_ca_open(v[CONF], v[PINF], v[PINE], &ca))) {
        rc = mw_cli_report_error(cmd);
        goto out;
    }
    snprintf(origin, sizeof(origin), "%s/issuance", mw_ca_trust_domain(ca));
    if (v[ORIGIN] != NULL)
        snprintf(origin, sizeof(origin), "%s", v[ORIGIN]);
    rc = mw_cli_read_key_text(v[LOGKEY], true, 4096, NULL, &sk);
    if (rc != MW_EXIT_OK)
        goto out;
    if (mw_failed(mw_note_signer_new(mw_dynbuf_slice(&sk), &signer)) ||
        mw_failed(mw_tlog_open(v[LOGDIR], origin, signer, &log)) ||
        mw_failed(mw_ca_store_open(v[DB], &store))) {
        rc = mw_cli_report_error(cmd);
        goto out;
    }
    mw_dynbuf_free(&sk);
    if (v[REGS] != NULL ? mw_failed(mw_ca_registrations_load_file(v[REGS], &regs))
                        : mw_failed(mw_ca_store_get_registrations(store, &regs))) {
        rc = mw_cli_report_error(cmd);
        goto out;
    }
    if (nk8s == 3) {
        struct mw_k8s_config kc = {
            .issuer = v[ISS], .audience = v[AUD], .trust_domain = mw_ca_trust_domain(ca)};
        if (mw_failed(mw_k8s_verifier_load(v[JWKS], &kc, &k8s))) {
            rc = mw_cli_report_error(cmd);
            goto out;
        }
    }
    loop = ev_loop_new(EVFLAG_AUTO);
    if (loop == NULL) {
        fprintf(stderr, "meshward: ca serve: cannot make an event loop\n");
        rc = MW_EXIT_IO;
        goto out;
    }
    struct mw_ca_service_config cfg = {
        .ca = ca,
        .log = log,
        .store = store,
        .k8s = k8s,
        .regs = regs,
        .allow_unregistered = v[ALLOW] != NULL,
        .address = host,
        .port = port,
        .max_batch = (size_t)batch,
        .rotate_interval = (double)rot,
    };
    if (mw_failed(mw_ca_service_new(loop, &cfg, &sc.svc))) {
        rc = mw_cli_report_error(cmd);
        goto out;
    }
    if (control) {
        struct mw_control_config cc = {
            .mesh_dir = v[MESH], .root_namespace = v[ROOTNS], .ca = sc.svc};
        if (mw_failed(mw_control_new(loop, &cc, &sc.ctl))) {
            rc = mw_cli_report_error(cmd);
            goto out;
        }
    }
    ev_signal_init(&sc.sigterm, on_signal, SIGTERM);
    ev_signal_init(&sc.sigint, on_signal, SIGINT);
    ev_signal_init(&sc.sighup, on_signal, SIGHUP);
    sc.sigterm.data = sc.sigint.data = sc.sighup.data = &sc;
    ev_signal_start(loop, &sc.sigterm);
    ev_signal_start(loop, &sc.sigint);
    ev_signal_start(loop, &sc.sighup);
    printf("listening on %s:%u\n", host, (unsigned)mw_ca_service_port(sc.svc));
    printf("log %s (origin %s, size %llu)\n", v[LOGDIR], origin,
           (unsigned long long)mw_tlog_size(log));
    fflush(stdout);
    ev_run(loop, 0);
    struct mw_ca_service_stats st;
    mw_ca_service_stats(sc.svc, &st);
    mw_log_info("ca-serve", "stopped: %llu issued, %llu refused, %llu log appends",
                (unsigned long long)st.issued, (unsigned long long)st.refused,
                (unsigned long long)st.appends);
    rc = mw_ca_service_failed(sc.svc) ? MW_EXIT_IO : MW_EXIT_OK;
out:
    mw_control_free(sc.ctl);
    mw_ca_service_free(sc.svc);
    if (loop != NULL)
        ev_loop_destroy(loop);
    mw_dynbuf_free(&sk);
    mw_k8s_verifier_free(k8s);
    mw_ca_registrations_free(regs);
    mw_ca_store_close(store);
    mw_tlog_close(log);
    mw_note_signer_free(signer);
    mw_ca_free(ca);
    return rc;
}

/* ---------------------------------------------------------------- request */

static void request_usage(FILE *f)
{
    fprintf(f,
            "usage: meshward ca request --server https://HOST:PORT --bundle BUNDLE.pem\n"
            "                           --credential-kind join-token|k8s-sat --token-file F\n"
            "                           (--key-out KEY --cert-out SVID | --csr CSR --cert-out "
            "SVID)\n"
            "                           [--image-digest sha256:...] [--ttl D]\n"
            "       meshward ca request --renew --cert SVID.pem --key KEY.pem\n"
            "                           --server https://HOST:PORT --bundle BUNDLE.pem\n"
            "                           (--key-out KEY --cert-out SVID | --csr CSR --cert-out "
            "SVID)\n"
            "                           [--ttl D]\n"
            "\n"
            "Asks the CA service for an X.509-SVID. Makes an EC P-256 key (written 0600) and a\n"
            "CSR, or posts the PEM CSR given with --csr. The connection is TLS pinned to the\n"
            "bundle, and the server must present an SVID for spiffe://TD/meshward/ca. The SVID\n"
            "received is checked against the bundle (and the key) before it is written.\n"
            "\n"
            "  --renew              renew instead: present the SVID in --cert (leaf, then its\n"
            "                       intermediate) with its key --key (mode 0600) as the TLS\n"
            "                       client certificate and post to /v1/svid/renew. The CA\n"
            "                       renews the SPIFFE ID of that SVID, which must be valid now;\n"
            "                       the new SVID is for a new key. No credential is sent.\n"
            "  --trust-domain TD    the CA's trust domain (default: from the bundle's root)\n"
            "  --timeout D          the whole exchange (default 10s)\n"
            "\n"
            "Exit: 0 issued, 1 refused (the server's reason on stderr), 2 usage, 3 I/O.\n");
}

struct peer_expect {
    const struct mw_bundle *bundle;
    char want[MW_SPIFFE_ID_MAX + 1];
    char got[MW_SPIFFE_ID_MAX + 1];
    char why[512];
};

/* Bundle-pinned TLS: the server's chain must validate and name the CA service. */
static bool check_server(mw_slice chain, void *arg)
{
    struct peer_expect *pe = arg;
    struct mw_x509svid *svid = NULL;
    bool ok = false;
    if (mw_failed(mw_x509svid_parse_der(chain, mw_slice_make(NULL, 0), &svid)) ||
        mw_failed(mw_x509svid_verify(svid, pe->bundle, NULL))) {
        snprintf(pe->why, sizeof(pe->why), "%s", mw_error_msg());
    } else if (!mw_spiffe_id_format(mw_x509svid_id(svid), pe->got, sizeof(pe->got)) ||
               strcmp(pe->got, pe->want) != 0) {
        snprintf(pe->why, sizeof(pe->why), "server is %.200s, want %.200s", pe->got, pe->want);
    } else {
        ok = true;
    }
    mw_x509svid_free(svid);
    return ok;
}

static mw_result make_key_and_csr(struct mw_dynbuf *key_pem, struct mw_dynbuf *csr_pem)
{
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = EVP_EC_gen("P-256");
    MW_ENSURE(key != NULL, MW_E_CRYPTO, "cannot make a P-256 key");
    X509_REQ *req = X509_REQ_new();
    MW_ENSURE(req != NULL, MW_E_NOMEM, "out of memory");
    MW_DEFER(BIO) BIO *kb = BIO_new(BIO_s_secmem());
    MW_DEFER(BIO) BIO *cb = BIO_new(BIO_s_mem());
    bool ok = kb != NULL && cb != NULL && X509_REQ_set_pubkey(req, key) == 1 &&
              X509_REQ_sign(req, key, EVP_sha256()) > 0 &&
              PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) == 1 &&
              PEM_write_bio_X509_REQ(cb, req) == 1;
    X509_REQ_free(req);
    if (!ok) {
        mw_error_openssl(MW_E_CRYPTO, "making the key and CSR");
        return MW_FAILURE;
    }
    const char *d;
    long n = BIO_get_mem_data(kb, &d);
    MW_GUARD(mw_dynbuf_add(key_pem, d, (size_t)n));
    n = BIO_get_mem_data(cb, &d);
    return mw_dynbuf_add(csr_pem, d, (size_t)n);
}

static mw_result request_body(const char *kind, mw_slice token, mw_slice csr_pem, const char *image,
                              const char *ttl, struct mw_dynbuf *b)
{
    MW_GUARD(mw_dynbuf_add_cstr(b, "{\"csr\":"));
    MW_GUARD(mw_dynbuf_add_json_str(b, csr_pem));
    MW_GUARD(mw_dynbuf_add_cstr(b, ",\"credential\":{\"kind\":"));
    MW_GUARD(mw_dynbuf_add_json_str(b, mw_slice_cstr(kind)));
    MW_GUARD(mw_dynbuf_add_cstr(b, ",\"token\":"));
    MW_GUARD(mw_dynbuf_add_json_str(b, token));
    MW_GUARD(mw_dynbuf_add_cstr(b, "}"));
    if (image != NULL) {
        MW_GUARD(mw_dynbuf_add_cstr(b, ",\"image_digest\":"));
        MW_GUARD(mw_dynbuf_add_json_str(b, mw_slice_cstr(image)));
    }
    if (ttl != NULL) {
        MW_GUARD(mw_dynbuf_add_cstr(b, ",\"ttl\":"));
        MW_GUARD(mw_dynbuf_add_json_str(b, mw_slice_cstr(ttl)));
    }
    return mw_dynbuf_add_cstr(b, "}");
}

/* POST /v1/svid/renew: the identity is the client certificate, the body only the CSR. */
static mw_result renew_body(mw_slice csr_pem, const char *ttl, struct mw_dynbuf *b)
{
    MW_GUARD(mw_dynbuf_add_cstr(b, "{\"csr\":"));
    MW_GUARD(mw_dynbuf_add_json_str(b, csr_pem));
    if (ttl != NULL) {
        MW_GUARD(mw_dynbuf_add_cstr(b, ",\"ttl\":"));
        MW_GUARD(mw_dynbuf_add_json_str(b, mw_slice_cstr(ttl)));
    }
    return mw_dynbuf_add_cstr(b, "}");
}

static int cmd_request(int argc, char **argv)
{
    enum {
        SERVER,
        BUNDLE,
        KIND,
        TOKF,
        KEYOUT,
        CERTOUT,
        CSR,
        IMG,
        TTL,
        TD,
        TIMEOUT,
        RENEW,
        CERT,
        KEY
    };
    static const struct option opts[] = {
        {"server", required_argument, NULL, MW_CLI_OPT + SERVER},
        {"bundle", required_argument, NULL, MW_CLI_OPT + BUNDLE},
        {"credential-kind", required_argument, NULL, MW_CLI_OPT + KIND},
        {"token-file", required_argument, NULL, MW_CLI_OPT + TOKF},
        {"key-out", required_argument, NULL, MW_CLI_OPT + KEYOUT},
        {"cert-out", required_argument, NULL, MW_CLI_OPT + CERTOUT},
        {"csr", required_argument, NULL, MW_CLI_OPT + CSR},
        {"image-digest", required_argument, NULL, MW_CLI_OPT + IMG},
        {"ttl", required_argument, NULL, MW_CLI_OPT + TTL},
        {"trust-domain", required_argument, NULL, MW_CLI_OPT + TD},
        {"timeout", required_argument, NULL, MW_CLI_OPT + TIMEOUT},
        {"renew", no_argument, NULL, MW_CLI_OPT + RENEW},
        {"cert", required_argument, NULL, MW_CLI_OPT + CERT},
        {"key", required_argument, NULL, MW_CLI_OPT + KEY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mw_cli_opts p;
    int rc = mw_cli_parse_opts(argc, argv, opts, "ca request", request_usage, &p);
    if (rc >= 0)
        return rc;
    const char **v = p.values;
    bool renew = v[RENEW] != NULL;
    if (!v[SERVER] || !v[BUNDLE] || !v[CERTOUT] || (v[KEYOUT] == NULL) == (v[CSR] == NULL) ||
        p.rest != argc) {
        fprintf(stderr, "meshward: ca request: --server, --bundle, --cert-out and one of "
                        "--key-out or --csr are required\n");
        request_usage(stderr);
        return MW_EXIT_USAGE;
    }
    if (renew ? (!v[CERT] || !v[KEY] || v[KIND] || v[TOKF] || v[IMG])
              : (!v[KIND] || !v[TOKF] || v[CERT] || v[KEY])) {
        fprintf(stderr, "meshward: ca request: %s\n",
                renew ? "--renew takes --cert and --key (the current SVID), and no "
                        "--credential-kind, --token-file or --image-digest"
                      : "--credential-kind and --token-file are required (--cert and --key "
                        "only with --renew)");
        request_usage(stderr);
        return MW_EXIT_USAGE;
    }
    enum mw_ca_cred_kind kind;
    uint64_t timeout_s = 10;
    if ((!renew && mw_failed(mw_ca_cred_kind_parse(mw_slice_cstr(v[KIND]), &kind))) ||
        (v[TIMEOUT] &&
         mw_failed(mw_parse_duration(mw_slice_cstr(v[TIMEOUT]), 600, "--timeout", &timeout_s)))) {
        fprintf(stderr, "meshward: ca request: --credential-kind is join-token or k8s-sat, "
                        "--timeout a duration up to 10m\n");
        return MW_EXIT_USAGE;
    }
    (void)kind;
    struct mw_dynbuf token, key_pem, csr_pem, body;
    mw_dynbuf_init_secure(&token, 16384);
    mw_dynbuf_init_secure(&key_pem, 16384);
    mw_dynbuf_init(&csr_pem, MW_CA_SVID_REQUEST_MAX);
    mw_dynbuf_init_secure(&body, MW_CA_SVID_REQUEST_MAX * 2);
    struct mw_bundle *bundle = NULL;
    struct mw_tls_ctx *tls = NULL;
    struct mw_x509svid *got = NULL;
    struct mw_http_client_response resp;
    bool have_resp = false;
    json_t *doc = NULL;
    static struct peer_expect pe;
    memset(&pe, 0, sizeof(pe));
    mw_result r = MW_SUCCESS;

    rc = renew ? MW_EXIT_OK : mw_cli_read_key_text(v[TOKF], true, 16384, "ca request", &token);
    if (rc != MW_EXIT_OK)
        goto out;
    if (mw_failed(mw_bundle_load_file(v[BUNDLE], MW_BUNDLE_FMT_AUTO, NULL, &bundle, NULL))) {
        rc = mw_cli_report_error("ca request");
        goto out;
    }
    char td[MW_SPIFFE_TD_MAX + 1] = "";
    if (v[TD] != NULL) {
        r = mw_spiffe_td_parse(mw_slice_cstr(v[TD]), td);
    } else {
        /* The root carries the trust domain's own ID, spiffe://TD (docs/ca.md). */
        struct mw_cert_info ci;
        r = mw_bundle_x509_info(bundle, 0, &ci);
        if (mw_ok(r))
            r = mw_spiffe_td_parse(mw_slice_cstr(ci.uri_san), td);
        if (mw_failed(r))
            mw_error_prefix("cannot tell the trust domain from the bundle (use --trust-domain): ");
    }
    if (mw_ok(r))
        r = mw_bundle_set_td(bundle, td);
    if (mw_failed(r)) {
        rc = mw_cli_report_error("ca request");
        goto out;
    }
    pe.bundle = bundle;
    snprintf(pe.want, sizeof(pe.want), "spiffe://%s%s", td, MW_CA_SERVICE_PATH);
    r = v[CSR] != NULL ? mw_file_read(v[CSR], MW_CA_SVID_REQUEST_MAX, &csr_pem)
                       : make_key_and_csr(&key_pem, &csr_pem);
    if (mw_ok(r))
        r = renew ? renew_body(mw_dynbuf_slice(&csr_pem), v[TTL], &body)
                  : request_body(v[KIND], mw_dynbuf_slice(&token), mw_dynbuf_slice(&csr_pem),
                                 v[IMG], v[TTL], &body);
    /* --renew: the current SVID is the TLS client certificate (its key file must be 0600). */
    struct mw_tls_config tc = {.peer_check = check_server,
                               .peer_check_arg = &pe,
                               .cert_file = renew ? v[CERT] : NULL,
                               .key_file = renew ? v[KEY] : NULL};
    if (mw_ok(r))
        r = mw_tls_client_new(&tc, &tls);
    if (mw_failed(r)) {
        rc = mw_cli_report_error("ca request");
        goto out;
    }
    struct mw_http_header hdr = {mw_slice_cstr("Content-Type"), mw_slice_cstr("application/json")};
    struct mw_http_client_request req = {
        .method = "POST",
        .headers = &hdr,
        .nheaders = 1,
        .body = mw_dynbuf_slice(&body),
        .tls = tls,
        .timeout_ms = (int)timeout_s * 1000,
    };
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", v[SERVER], renew ? "/v1/svid/renew" : "/v1/svid");
    if (mw_failed(mw_http_client_request_url(url, &req, &resp))) {
        if (pe.why[0])
            fprintf(stderr, "meshward: ca request: the server is not the CA: %s\n", pe.why);
        rc = mw_cli_report_error("ca request");
        goto out;
    }
    have_resp = true;
    struct mw_conf_limits lim = {.max_bytes = 1 << 20, .max_depth = 4};
    if (mw_failed(mw_json_load(mw_dynbuf_slice(&resp.body), "response", &lim, &doc)) ||
        !json_is_object(doc)) {
        fprintf(stderr, "meshward: ca request: server answered %d with a body that is not JSON\n",
                resp.status);
        rc = MW_EXIT_REJECT;
        goto out;
    }
    if (resp.status != 200) {
        const char *e = json_string_value(json_object_get(doc, "error"));
        fprintf(stderr, "meshward: ca request: refused (%d): %s\n", resp.status,
                e != NULL ? e : "(no reason given)");
        rc = MW_EXIT_REJECT;
        goto out;
    }
    const char *chain = json_string_value(json_object_get(doc, "svid_chain"));
    json_t *idx = json_object_get(doc, "log_index");
    if (chain == NULL || !json_is_integer(idx)) {
        fprintf(stderr, "meshward: ca request: response lacks svid_chain or log_index\n");
        rc = MW_EXIT_REJECT;
        goto out;
    }
    /* Check what came back before writing it: a valid SVID under the bundle, for our key. */
    r = mw_x509svid_parse_pem(mw_slice_cstr(chain),
                              v[CSR] ? mw_slice_make(NULL, 0) : mw_dynbuf_slice(&key_pem), &got);
    if (mw_ok(r))
        r = mw_x509svid_verify(got, bundle, NULL);
    if (mw_ok(r) && renew) {
        /* A renewal is for the identity presented, never another. */
        struct mw_x509svid *old = NULL;
        char a[MW_SPIFFE_ID_MAX + 1], b[MW_SPIFFE_ID_MAX + 1];
        r = mw_x509svid_load_files(v[CERT], NULL, &old);
        if (mw_ok(r) &&
            (!mw_spiffe_id_format(mw_x509svid_id(old), a, sizeof(a)) ||
             !mw_spiffe_id_format(mw_x509svid_id(got), b, sizeof(b)) || strcmp(a, b) != 0)) {
            mw_error_set(MW_E_VERIFY, "renewed %.200s, but presented %.200s", b, a);
            r = MW_FAILURE;
        }
        mw_x509svid_free(old);
    }
    if (mw_failed(r)) {
        rc = mw_cli_report_error("ca request: the SVID received");
        goto out;
    }
    if (v[KEYOUT] != NULL)
        r = mw_file_write_atomic(v[KEYOUT], mw_dynbuf_slice(&key_pem), 0600);
    if (mw_ok(r))
        r = mw_file_write_atomic(v[CERTOUT], mw_slice_cstr(chain), 0644);
    if (mw_failed(r)) {
        rc = mw_cli_report_error("ca request");
        goto out;
    }
    printf("issued %s serial %s until %s log_index %lld\n",
           json_string_value(json_object_get(doc, "spiffe_id")),
           json_string_value(json_object_get(doc, "serial")),
           json_string_value(json_object_get(doc, "expires_at")),
           (long long)json_integer_value(idx));
    rc = MW_EXIT_OK;
out:
    json_decref(doc);
    if (have_resp)
        mw_http_client_response_free(&resp);
    mw_x509svid_free(got);
    mw_tls_ctx_free(tls);
    mw_bundle_free(bundle);
    mw_dynbuf_free(&token);
    mw_dynbuf_free(&key_pem);
    mw_dynbuf_free(&csr_pem);
    mw_dynbuf_free(&body);
    return rc;
}

int mw_cmd_control(int argc, char **argv)
{
    return cmd_serve(argc, argv, true);
}

int mw_cmd_ca_serve(int argc, char **argv)
{
    return cmd_serve(argc, argv, false);
}

int mw_cmd_ca_request(int argc, char **argv)
{
    return cmd_request(argc, argv);
}
