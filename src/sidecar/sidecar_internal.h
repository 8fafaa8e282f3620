/* Internal to the sidecar part (not the telemetry files, see sidecar_metrics.h). */
#ifndef MESHWARD_SIDECAR_INTERNAL_H
#define MESHWARD_SIDECAR_INTERNAL_H

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <ev.h>

#include <meshward/net.h>
#include <meshward/policy.h>
#include <meshward/sidecar.h>
#include <meshward/spiffe.h>

#include "sidecar/sidecar_metrics.h"

/* linux/netfilter_ipv4.h; that header cannot be included beside netinet/in.h. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif

/*
 * For results nothing can be done about (a metric not counted for lack of
 * memory, an access-log line not written): the request goes on.
 */
static inline void sc_ignore(mw_result r)
{
    (void)r;
}

/* ---------------------------------------------------------------- configuration */

struct sc_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    char text[64]; /* "127.0.0.1:8080" or "[::1]:8080" */
};

struct sc_port {
    uint16_t port;        /* workload port: what policies and PeerAuthentication name */
    bool http;            /* protocol http (true) or tcp */
    uint16_t listen_port; /* explicit listener for this port; 0: SO_ORIGINAL_DST on inbound.port */
    uint16_t app_port;    /* where the app listens; default port */
    enum mw_policy_mtls mtls; /* effective mode, resolved at start and on reload */
    const char *mtls_policy;
};

struct sc_service {
    const char *name;          /* host name the app uses (proxy mode) */
    uint16_t port;             /* service port (proxy mode) */
    struct sc_addr *endpoints; /* the destination sidecars (transparent mode matches these) */
    size_t n_endpoints;
    size_t next;           /* round robin */
    const char *spiffe_id; /* expected server identity, "spiffe://td/ns/x/sa/y" */
    uint16_t local_port;   /* explicit local listener for this service; 0: none */
    bool http;             /* protocol http: parsed, pooled mTLS upstreams; false: byte relay */
};

struct sc_egress {
    const char *host; /* exact name or "*.suffix"; NULL for a CIDR */
    struct mw_policy_ip net;
    unsigned prefix;
    uint16_t *ports;
    size_t n_ports;
    const char *where; /* "file:line" of the declaration */
};

struct sc_bundle_ref {
    const char *td;
    const char *file;
};

enum sc_identity_mode { SC_ID_STATIC = 1, SC_ID_CA };

struct mw_sidecar_config {
    const char *path, *dir;
    const char *name; /* metadata.name */
    const char *ns, *sa, *td;
    const char **label_keys, **label_values;
    size_t n_labels;

    enum sc_identity_mode id_mode;
    const char *cert_file, *key_file;
    struct sc_bundle_ref *bundles;
    size_t n_bundles;
    /* CA mode (docs/sidecar.md "Identity: CA mode") */
    const char *ca_url, *credential_file;
    int credential_kind;      /* enum mw_ca_cred_kind */
    const char *image_digest; /* NULL: none sent */
    int64_t svid_ttl;         /* seconds asked for; 0: the CA's default */
    double rotation_fraction, rotation_jitter;
    double bundle_refresh; /* seconds between GET /v1/bundle */

    const char *in_address;
    uint16_t in_port; /* 0: no transparent inbound listener */
    const char *app_address;
    struct sc_port *ports;
    size_t n_ports;

    const char *out_address;
    uint16_t out_port; /* 0: no outbound listener */
    struct sc_service *services;
    size_t n_services;

    struct sc_egress *egress;
    size_t n_egress;
    const char **policy_files;
    size_t n_policy_files;
    enum mw_policy_path_norm path_norm;
    const char *root_namespace;

    const char *admin_address;
    uint16_t admin_port;
    const char *access_log; /* NULL: none; "-": stdout */

    double head_timeout, idle_timeout, connect_timeout;
    double pool_idle_timeout; /* an idle pooled mTLS connection to a sidecar is closed after */
    size_t max_connections;

    /* Control mode (docs/sidecar.md "Control mode") */
    const char *control_url; /* NULL: not in control mode */
    double control_wait;     /* long-poll, seconds */
    const char *mesh_text;   /* the documents last applied from the control plane */
    size_t mesh_len;

    /* every allocation above, freed together */
    void **owned;
    size_t n_owned, cap_owned;
};

/*
 * Control mode: add what the control plane sent (a YAML stream of MeshService,
 * EgressPolicy and policy documents) to a freshly loaded configuration; the
 * policy documents are kept for sc_policies_load.
 */
MW_RESULT sc_config_apply_mesh(struct mw_sidecar_config *cfg, mw_slice text);
/* The policy set and engine a configuration names (policies + workload). */
MW_RESULT sc_policies_load(const struct mw_sidecar_config *cfg, struct mw_policy_set **set,
                           struct mw_policy_engine **engine);
void sc_mesh(const struct mw_sidecar_config *cfg, struct mw_policy_mesh *mesh);
/* Resolve each port's PeerAuthentication mode. */
void sc_ports_resolve_mtls(struct mw_sidecar_config *cfg, const struct mw_policy_set *set);

/* Egress: true when host (may be NULL) or addr, with port, is declared. *where: declaration. */
bool sc_egress_allowed(const struct mw_sidecar_config *cfg, const char *host,
                       const struct sockaddr_storage *addr, uint16_t port, const char **where);
/* The service whose endpoint is addr, or whose name:port is host:port (host may be NULL). */
struct sc_service *sc_registry_find(const struct mw_sidecar_config *cfg, const char *host,
                                    const struct sockaddr_storage *addr, uint16_t port);
MW_RESULT sc_addr_parse(const char *host, uint16_t port, struct sc_addr *out);
void sc_addr_format(const struct sockaddr_storage *ss, char *buf, size_t len);

/* ---------------------------------------------------------------- identity */

struct sc_identity {
    X509 *leaf;
    STACK_OF(X509) * chain; /* intermediates */
    EVP_PKEY *key;
    char spiffe_id[MW_SPIFFE_ID_MAX + MW_SPIFFE_TD_MAX + 16];
    char principal[MW_SPIFFE_ID_MAX + MW_SPIFFE_TD_MAX + 16]; /* without "spiffe://" */
    int64_t not_after;
    struct mw_bundle **bundles;
    size_t n_bundles;
    int64_t not_before;
    int64_t received_at; /* CA mode: when the SVID arrived (the CA backdates notBefore) */
    bool from_ca;        /* issued by the CA to this process's in-memory key (CA mode) */
    bool own_from_ca;    /* the own trust domain's bundle came from GET /v1/bundle */
};

struct mw_sidecar;
struct sc_conn;

/*
 * Why a TLS handshake was refused or failed: a fixed set, the reason label of
 * meshward_tls_handshake_failures_total (docs/sidecar.md, "Telemetry").
 */
enum sc_hs_fail {
    SC_HSF_NONE = 0,
    SC_HSF_PLAINTEXT,        /* the peer did not speak TLS (plaintext on a STRICT port) */
    SC_HSF_NO_CERTIFICATE,   /* inbound: the client sent no certificate */
    SC_HSF_BAD_CERTIFICATE,  /* the chain does not verify against its trust domain's bundle */
    SC_HSF_UNKNOWN_TD,       /* no bundle for the peer's trust domain */
    SC_HSF_ID_MISMATCH,      /* outbound: a valid SVID, not the SPIFFE ID the registry expects */
    SC_HSF_OWN_SVID_EXPIRED, /* our own SVID expired: no handshake is made with it */
    SC_HSF_PEER_ALERT,       /* the peer aborted with an alert (e.g. it refused our SVID) */
    SC_HSF_PEER_CLOSED,      /* the peer closed or reset the connection mid-handshake */
    SC_HSF_TIMEOUT,          /* not done within timeouts.head */
    SC_HSF_PROTOCOL,         /* anything else: versions, ciphers, malformed messages */
};
const char *sc_hs_fail_name(enum sc_hs_fail why);

/*
 * Load and validate the SVID (against the bundle of its own trust domain) and all bundles.
 * Static mode: from files. CA mode: cur NULL (start) fetches a new SVID from the CA; cur
 * non-NULL (SIGHUP) keeps cur's SVID and key and reloads the other bundles from files.
 */
MW_RESULT sc_identity_load(const struct mw_sidecar_config *cfg, const struct sc_identity *cur,
                           struct sc_identity **out);
void sc_identity_free(struct sc_identity *id);
/*
 * Validate a peer chain (concatenated DER, leaf first) against the bundle of its trust domain.
 * why (may be NULL) says what failed: SC_HSF_UNKNOWN_TD or SC_HSF_BAD_CERTIFICATE.
 */
MW_RESULT sc_identity_verify_peer(const struct sc_identity *id, mw_slice chain,
                                  struct mw_spiffe_id *peer, enum sc_hs_fail *why);
/*
 * Who the peer of a finished handshake is. A full handshake already ran
 * sc_peer_check on this very chain, so it is only read; a resumed session
 * never did (RFC 8446 §2.2: no certificates are sent), so its chain is
 * verified again, now, against today's bundles, and refused while our own
 * SVID is expired, as sc_peer_check does. why (may be NULL) says what failed.
 */
MW_RESULT sc_identity_handshake_peer(const struct sc_identity *id, SSL *ssl,
                                     struct mw_spiffe_id *peer, enum sc_hs_fail *why);
/* Server (client certificate required) and client TLS contexts for this identity. */
MW_RESULT sc_identity_tls(struct mw_sidecar *sc, struct sc_identity *id, struct mw_tls_ctx **server,
                          struct mw_tls_ctx **client);

/* ---------------------------------------------------------------- CA mode (sidecar_ca.c) */

#define SC_CA_TIMEOUT_MS 5000 /* one exchange with the CA, connect to last byte */

/* The peer check of every connection to the CA service (and the control plane on it). */
struct sc_ca_peer {
    const struct mw_bundle *pin;     /* the own trust domain's bundle */
    char want[MW_SPIFFE_ID_MAX + 1]; /* spiffe://TD/meshward/ca */
    char why[512];                   /* set when the check refuses */
};
bool sc_ca_peer_check(mw_slice chain, void *arg);

/* What one exchange with the CA needs and gives; the worker thread shares nothing else. */
struct sc_ca_job {
    char url[1100];
    char credential_file[4096];
    int credential_kind;
    char image_digest[80];
    int64_t ttl;
    char td[MW_SPIFFE_TD_MAX + 1];
    char want_id[MW_SPIFFE_ID_MAX + MW_SPIFFE_TD_MAX + 16]; /* the workload's SPIFFE ID */
    struct mw_bundle *pin; /* owned: the own trust domain's bundle the CA must chain to */
    bool want_svid;        /* false: the bundle only */
    /* results */
    bool reached; /* the CA answered over a verified connection */
    bool ok;
    char error[512];
    struct mw_bundle *bundle; /* from GET /v1/bundle, bound to td; NULL if not fetched */
    X509 *leaf;
    STACK_OF(X509) * chain;
    EVP_PKEY *key;
    int64_t not_before, not_after;
};

/* A job's inputs from the configuration and pin (a copy of the bundle is taken). */
MW_RESULT sc_ca_job_init(struct sc_ca_job *job, const struct mw_sidecar_config *cfg,
                         const struct mw_bundle *pin, bool want_svid);
/* Blocking, bounded by SC_CA_TIMEOUT_MS per request; fills the results. Any thread. */
void sc_ca_job_run(struct sc_ca_job *job);
void sc_ca_job_clear(struct sc_ca_job *job);
/* A copy of b (same trust domain and authorities). */
MW_RESULT sc_bundle_dup(const struct mw_bundle *b, struct mw_bundle **out);
/* The identity's bundle for td, or NULL. */
const struct mw_bundle *sc_identity_bundle(const struct sc_identity *id, const char *td);

struct sc_ca;
/* CA mode: timers for renewal and bundle refresh, the worker thread, the gauges. */
MW_RESULT sc_ca_start(struct mw_sidecar *sc);
void sc_ca_stop(struct mw_sidecar *sc);

/* ---------------------------------------------------------------- runtime */

struct sc_listener {
    int fd;
    ev_io io;
    enum { SC_L_INBOUND, SC_L_INBOUND_PORT, SC_L_OUTBOUND, SC_L_SERVICE } kind;
    size_t index; /* port (SC_L_INBOUND_PORT) or service (SC_L_SERVICE) index */
    struct mw_sidecar *sc;
    struct sc_listener *next;
};

/* Bytes of one outbound request kept for its one retry; a longer request is not retried. */
#define SC_REPLAY_MAX (64u << 10)

/* A linear buffer of bytes read from one socket. */
#define SC_BUF_CAP (32u << 10)
struct sc_buf {
    uint8_t *p;
    size_t off, len; /* unread bytes are p[off .. off+len) */
};

/* One side of a connection: a socket, maybe TLS. */
struct sc_sock {
    int fd;
    SSL *ssl;
    struct mw_tls_ctx *tls; /* referenced while ssl lives */
    ev_io io;
    int events;
    bool connecting, handshaking;
    int hs_want, r_want, w_want; /* events an operation blocked on; 0: not blocked */
    bool rd_eof, wr_shut, failed;
    enum sc_hs_fail hs_fail; /* the handshake itself failed, and why (SC_HSF_NONE: it did not) */
};

enum sc_kind {
    SC_RELAY,    /* bytes both ways (TCP ports, outbound, egress) */
    SC_HTTP_IN,  /* the HTTP/1.1 engine: an inbound http port, or an outbound http service */
    SC_PROXY_IN, /* outbound explicit proxy: read the first head to learn the destination */
    SC_PEEK,     /* inbound PERMISSIVE: first bytes not seen yet */
};

enum sc_http_state { H_HEAD, H_REQ_BODY, H_RESP_HEAD, H_RESP_BODY, H_CLOSING };

struct sc_conn {
    struct mw_sidecar *sc;
    struct sc_conn *prev, *next;
    struct sc_conn *ready_next;        /* in sc->ready: had an event this loop pass */
    struct mw_metrics_series_ref mref; /* the request series of this connection's labels */
    uint64_t mref_gen;                 /* sc->reloads when mref was filled */
    const struct sc_identity *mref_id; /* and sc->id (the own principal is a label) */
    bool ready_queued;
    enum sc_kind kind;
    bool inbound;
    struct sc_sock d, u; /* downstream (the peer or the app), upstream */
    struct sc_buf d_in, u_in;
    struct mw_dynbuf d_out, u_out; /* HTTP: bytes to write */
    ev_timer timer;
    double deadline; /* ev_now time; 0: none */
    bool closing;
    /* who and where */
    struct sockaddr_storage peer_ss, local_ss, dst_ss;
    char peer_addr[64], local_addr[64], upstream_addr[64];
    uint16_t dport; /* workload port (inbound) or destination port (outbound) */
    uint16_t app_port;
    bool http;
    enum mw_policy_mtls mtls_mode;
    bool mtls; /* the downstream (inbound) or upstream (outbound) is mutual TLS */
    char peer_id[MW_SPIFFE_ID_MAX + MW_SPIFFE_TD_MAX + 16];   /* "spiffe://..." or "" */
    char principal[MW_SPIFFE_ID_MAX + MW_SPIFFE_TD_MAX + 16]; /* "td/ns/x/sa/y" or "" */
    char xfcc_hash[65];
    char image_digest[80];
    char builder_id[1040];
    char sni[256];
    char expected_id[MW_SPIFFE_ID_MAX + MW_SPIFFE_TD_MAX +
                     16]; /* outbound: the server must be this */
    char service[256];
    bool egress;
    bool pre_done; /* inbound: TLS or plaintext decided, peer identity known */
    bool tls_chosen;
    /* HTTP inbound */
    enum sc_http_state hs;
    struct mw_http_body body;
    bool req_keep_alive, resp_keep_alive, resp_chunked_out, resp_close_out;
    bool head_started;
    bool client10;    /* the request was HTTP/1.0 */
    bool established; /* outbound: destination chosen and (for mTLS) the server checked */
    char method[32];
    char path[1024];
    char authority[256];
    char user_agent[256];
    char request_id[128];
    int status;
    const char *decision_policy;
    uint64_t req_bytes, resp_bytes;
    uint64_t req_start_ns;
    int64_t req_start_ms;
    /* stats */
    uint64_t sent, received, sent_reported, received_reported;
    uint64_t start_ns;
    int64_t start_ms;
    bool opened_reported;
    bool hs_counted; /* the handshake's outcome is in the TLS metrics */
    /* HTTP outbound (protocol http services, sidecar_outbound.c) */
    struct sc_addr u_ep;     /* the destination sidecar new upstream connections go to */
    bool u_unchecked;        /* a new mTLS upstream whose server check_server has not passed */
    bool u_refused;          /* the current upstream's connect, handshake or server check failed */
    bool u_reused;           /* the current upstream carried an earlier request */
    bool retried;            /* this request was already sent again on a new connection */
    bool resp_started;       /* a byte of this request's response (1xx included) was taken */
    bool replay_ok;          /* replay holds everything of this request sent upstream so far */
    struct mw_dynbuf replay; /* for the one retry (RFC 9110 §9.2.2: idempotent requests) */
};

struct sc_pool_entry {
    int fd;
    uint16_t port;
    double since;
    struct sc_pool_entry *next;
};

/* An idle mTLS connection to a destination sidecar (sidecar_pool.c). */
struct sc_upool_entry;

struct mw_sidecar {
    struct ev_loop *loop;
    struct mw_sidecar_config *cfg;
    struct mw_policy_set *set;
    struct mw_policy_engine *engine;
    struct sc_identity *id;
    struct mw_tls_ctx *tls_server, *tls_client;
    struct mw_metrics *metrics;
    FILE *access_log;
    struct mw_http_server *admin;
    struct sc_listener *listeners;
    struct sc_conn *conns; /* every open connection */
    size_t n_conns;
    int64_t config_loaded_at;
    bool stopping;
    double stop_deadline;
    struct sc_pool_entry *pool; /* idle loopback connections to the app */
    struct sc_conn *ready; /* connections with events, served in arrival order (sidecar_proxy.c) */
    ev_prepare ready_w;
    size_t n_pool;
    uint64_t spiffe_mismatch, egress_denied, reloads, reload_failures;
    struct sc_ca *ca; /* CA mode only */
    /* Set by sc_peer_check when it refuses: read right after the handshake call that ran it. */
    enum sc_hs_fail check_refusal;
    struct sc_control *control; /* control mode only */
    /* idle mTLS connections to destination sidecars, newest first (sidecar_pool.c) */
    struct sc_upool_entry *upool;
    size_t n_upool;
    ev_timer upool_sweep;
    uint64_t upool_reused, upool_opened, upool_retried;
};

/* ---------------------------------------------------------------- control mode (sidecar_control.c)
 */

/* Fetch the first configuration (blocking, before anything is served). */
MW_RESULT sc_control_first(struct mw_sidecar *sc);
/* Start following the control plane (long-polls on a worker thread). */
void sc_control_start(struct mw_sidecar *sc);
void sc_control_stop(struct mw_sidecar *sc);
/*
 * A 200 answer of GET /v1/config: {"version": N > 0, "workload": ID, "documents": TEXT}.
 * The documents are appended to docs (bounded by its maximum).
 */
MW_RESULT sc_control_parse_answer(mw_slice body, uint64_t *version, struct mw_dynbuf *docs);
/* The documents of the version in use (empty before the first). */
mw_slice sc_control_docs(const struct mw_sidecar *sc);
/* sidecar_main.c: reload with the control plane's new documents; false when refused. */
bool sc_reload_for_control(struct mw_sidecar *sc);

/* Counted in the peer check; peer identity is read again after the handshake. */
bool sc_peer_check(mw_slice chain, void *arg);

/* sidecar_proxy.c: connections, sockets, buffers, the relay and the pump */
struct sc_conn *sc_conn_new(struct mw_sidecar *sc, int fd, enum sc_kind kind, bool inbound);
void sc_conn_close(struct sc_conn *c);
void sc_conn_pump(struct sc_conn *c);
void sc_conn_set_deadline(struct sc_conn *c, double seconds);
/* Start TLS on a socket (server or client side). */
mw_result sc_sock_tls(struct sc_conn *c, struct sc_sock *s, struct mw_tls_ctx *ctx, bool server,
                      const char *sni);
/* Non-blocking connect of c->u to addr. */
mw_result sc_conn_connect(struct sc_conn *c, const struct sockaddr_storage *addr, socklen_t len);
/* An idle pooled connection to the app port, or -1. */
int sc_pool_take(struct mw_sidecar *sc, uint16_t port);
void sc_pool_put(struct mw_sidecar *sc, int fd, uint16_t port);
void sc_pool_flush(struct mw_sidecar *sc);
void sc_conns_close_all(struct mw_sidecar *sc);
/* Start serving connections' events (once, at start). */
void sc_conns_init(struct mw_sidecar *sc);
void sc_buf_consume(struct sc_buf *b, size_t n);
bool sc_relay_step(struct sc_conn *c);
static inline mw_slice sc_buf_slice(const struct sc_buf *b)
{
    return mw_slice_make(b->p + b->off, b->len);
}
/* Telemetry at the end of a TCP connection (and bytes so far). */
void sc_conn_report_tcp(struct sc_conn *c, bool closing);
/* The TLS handshake's outcome, counted once per connection (direction from c->inbound). */
void sc_count_handshake(struct sc_conn *c, bool resumed);
void sc_count_handshake_failure(struct sc_conn *c, enum sc_hs_fail why);

/* sidecar_session.c: outbound TLS 1.3 session resumption (client-side ticket cache) */
#define SC_SESS_MAX     256 /* sessions held, all destinations together */
#define SC_SESS_PER_KEY 4   /* per (endpoint, SNI, expected SPIFFE ID) */
struct sc_sess_cache;
/* NULL when out of memory or a bound is 0. */
struct sc_sess_cache *sc_sess_cache_new(size_t max, size_t per_key);
void sc_sess_cache_free(struct sc_sess_cache *cache);
void sc_sess_cache_flush(struct sc_sess_cache *cache);
size_t sc_sess_cache_count(const struct sc_sess_cache *cache);
/*
 * Keep s under key, taking the caller's reference, evicting the oldest
 * session of the key or of the cache when full. False (s not taken) for a
 * session that is not TLS 1.3, not resumable, past its ticket lifetime, or
 * whose server certificate expired.
 */
bool sc_sess_cache_put(struct sc_sess_cache *cache, const char *key, SSL_SESSION *s, int64_t now);
/* The newest usable session for key, removed (single use); the caller frees it. NULL: none. */
SSL_SESSION *sc_sess_cache_take(struct sc_sess_cache *cache, const char *key, int64_t now);
/*
 * Give a client context (from sc_identity_tls) its cache: tickets are kept for
 * outbound connections whose server passed check_server, and the cache is freed
 * with the context, so a new SVID or bundle (a new context) starts empty.
 */
MW_RESULT sc_session_attach(struct mw_tls_ctx *client);
struct sc_sess_cache *sc_session_cache(struct mw_tls_ctx *client);
/* Before an outbound handshake: offer the cached session for c's endpoint, SNI, expected ID. */
void sc_session_offer(struct sc_conn *c);

/* sidecar_inbound.c */
void sc_inbound_accept(struct mw_sidecar *sc, struct sc_listener *l, int fd);
/* The kind-specific step of the pump; returns true when it made progress. */
bool sc_inbound_step(struct sc_conn *c);
bool sc_http_step(struct sc_conn *c);
/*
 * The connection ends between requests: the upstream it kept for the next
 * one (an app connection inbound, an mTLS connection outbound) goes to its
 * pool when it is at a clean boundary, else it is closed.
 */
void sc_http_release_kept(struct sc_conn *c);

/* sidecar_outbound.c */
void sc_outbound_accept(struct mw_sidecar *sc, struct sc_listener *l, int fd);
bool sc_outbound_step(struct sc_conn *c);
/*
 * The HTTP engine's upstream on the outbound side (protocol http services):
 * the connection kept from this client's previous request, an idle pooled
 * one, or a new mTLS connection to c->u_ep (checked by sc_out_upstream_check
 * before a byte is written to it or read from it).
 */
bool sc_out_upstream_start(struct sc_conn *c, bool fresh);
/* Run check_server once the handshake of a new upstream is done; count failures. */
void sc_out_upstream_check(struct sc_conn *c);
/* Let the upstream go: into the pool when reuse and it is at a clean boundary, else closed. */
void sc_out_upstream_release(struct sc_conn *c, bool reuse);
/* Upgrade or CONNECT on an http service: the rest of the connection is a relay on its own
 * (never pooled) mTLS connection. False: wait (a response is still being sent). */
bool sc_out_tunnel(struct sc_conn *c);
/* Send the request again on a new connection, when that is safe; false: it is not. */
bool sc_out_retry(struct sc_conn *c);
/*
 * Whether the request just started could be sent again (a reused upstream
 * connection, an idempotent method): only then is it kept for a replay.
 */
bool sc_out_may_retry(const struct sc_conn *c);
void sc_out_count(struct mw_sidecar *sc);

/* sidecar_pool.c: idle mTLS connections to destination sidecars */
#define SC_UPOOL_MAX     256 /* idle connections, all destinations together */
#define SC_UPOOL_PER_KEY 32  /* per (endpoint, SNI, expected SPIFFE ID, client context) */
/*
 * Keep c's upstream (a clean message boundary: the caller checked) for
 * another request: c->u is emptied. Closed instead when the sidecar stops,
 * the client context changed, or a bound is reached.
 */
void sc_upool_put(struct sc_conn *c);
/* Move an idle, live connection for ep, c->service and c->expected_id into c->u. */
bool sc_upool_take(struct sc_conn *c, const struct sc_addr *ep);
void sc_upool_flush(struct mw_sidecar *sc);

/* sidecar_main.c: telemetry helpers */
void sc_labels_init(const struct mw_sidecar *sc, struct mw_istio_labels *l, bool inbound);

/* Path normalisation is the policy engine's; this makes "td/ns/x/sa/y" from an ID. */
void sc_principal(const struct mw_spiffe_id *id, char *buf, size_t len);

#endif
