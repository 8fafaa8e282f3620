/*
 * meshward ca_service: the mesh CA over HTTPS (`meshward ca serve`).
 *
 *   POST /v1/svid        a PKCS#10 CSR and a workload credential -> an X.509-SVID
 *   POST /v1/svid/renew  a CSR, over TLS with the caller's current SVID as its
 *                        client certificate -> a new SVID for the same ID
 *   GET  /v1/bundle      the trust bundle (SPIFFE JWKS, or PEM with ?format=pem)
 *   GET  /healthz
 *
 * One libev loop does everything. Every issued certificate becomes a record
 * in the issuance log, and a response leaves only after the log append that
 * holds its record is durable (group commit: one append per loop iteration).
 * docs/ca.md ("CA service") describes the protocol and the failure modes.
 */
#ifndef MESHWARD_CA_SERVICE_H
#define MESHWARD_CA_SERVICE_H

#include <meshward/base.h>
#include <meshward/ca.h>
#include <meshward/ca_auth.h>

/* ---------------------------------------------------------------- the request body */

/* The largest POST /v1/svid body (a 64 KiB DER CSR as PEM, a 16 KiB token, the rest). */
#define MW_CA_SVID_REQUEST_MAX (128 * 1024)

struct mw_ca_svid_request {
    struct mw_dynbuf csr_der; /* the CSR, decoded from PEM */
    enum mw_ca_cred_kind kind;
    struct mw_dynbuf token; /* secure memory; never logged */
    bool has_image;
    char image_digest[MW_CA_DIGEST_MAX + 1];
    int64_t ttl; /* seconds; 0 when not asked for */
};

void mw_ca_svid_request_init(struct mw_ca_svid_request *r);
void mw_ca_svid_request_free(struct mw_ca_svid_request *r);

/*
 * Parse a POST /v1/svid body strictly:
 *   {"csr": "<PEM CERTIFICATE REQUEST>",
 *    "credential": {"kind": "k8s-sat" | "join-token", "token": "..."},
 *    "image_digest": "sha256:<64 hex>",   optional
 *    "ttl": "1h"}                          optional: 1 s .. 30 d
 * At most MW_CA_SVID_REQUEST_MAX bytes, one JSON object, duplicate and
 * unknown members refused, every member of the right type, the CSR one PEM
 * block with nothing else but whitespace around it. The error names the
 * member; it never quotes the token.
 */
MW_RESULT mw_ca_svid_request_parse(mw_slice body, struct mw_ca_svid_request *out);

/*
 * Parse a POST /v1/svid/renew body as strictly:
 *   {"csr": "<PEM CERTIFICATE REQUEST>", "ttl": "1h"}    ttl optional
 * Any other member is refused (the identity is the client certificate; a
 * body cannot name one, a credential or an image). Fills csr_der and ttl of
 * out; kind stays 0 and token empty.
 */
MW_RESULT mw_ca_svid_renew_request_parse(mw_slice body, struct mw_ca_svid_request *out);

/*
 * The checks mw_ca_issue() makes of a CSR, without issuing: DER, one
 * request, its key of an allowed type (EC P-256/P-384, RSA 2048..8192) and
 * its signature verifying under that key (proof of possession). The service
 * runs it before authorizing, so that a join token is not spent on a CSR
 * that cannot be certified.
 */
MW_RESULT mw_ca_csr_check(mw_slice csr_der);

/* ---------------------------------------------------------------- the service */

struct mw_ca_service;
struct mw_tlog;
struct mw_http_server;
struct mw_http_request;
struct ev_loop;

struct mw_ca_service_config {
    struct mw_ca *ca;                       /* required; borrowed */
    struct mw_tlog *log;                    /* required: the issuance log; borrowed */
    struct mw_ca_store *store;              /* required; borrowed, used on the loop's thread */
    const struct mw_k8s_verifier *k8s;      /* NULL: Kubernetes tokens refused */
    const struct mw_ca_registrations *regs; /* required (may be empty) */
    bool allow_unregistered;
    const char *address;          /* numeric; "127.0.0.1" when NULL */
    uint16_t port;                /* 0: pick one */
    size_t max_batch;             /* records per log append; 0: 1024 */
    double rotate_interval;       /* seconds between rotation checks; 0: 60; < 0: never */
    int64_t server_cert_ttl;      /* the service's own certificate; 0: the CA's default TTL */
    const struct mw_clock *clock; /* NULL: the system clock */
};

/*
 * Issue the service's own certificate (spiffe://TD/meshward/ca) and start
 * serving on loop. Nothing runs until the loop does.
 */
MW_RESULT mw_ca_service_new(struct ev_loop *loop, const struct mw_ca_service_config *cfg,
                            struct mw_ca_service **out);
uint16_t mw_ca_service_port(const struct mw_ca_service *s);
/*
 * The service's HTTPS server, so that a host process (meshward control) can
 * route more endpoints on the same listener and certificate.
 */
struct mw_http_server *mw_ca_service_http(struct mw_ca_service *s);
/*
 * The SPIFFE ID of the X.509-SVID the caller presented as its TLS client
 * certificate, for handlers routed on mw_ca_service_http(). The service's
 * TLS context requests (does not require) a client certificate and fails the
 * handshake of one that is not a valid SVID of the CA's trust domain under
 * the CA's bundle; here the chain is validated again at the service's clock
 * (a connection may outlive its certificate). Fails with MW_E_PERM when the
 * request carries no client certificate, MW_E_EXPIRED when it has expired
 * since, MW_E_VERIFY (or MW_E_INPUT) when it no longer validates (say, after
 * a root rotation); answer 401 or 403. Call on the loop's thread.
 */
MW_RESULT mw_ca_service_peer_id(struct mw_ca_service *s, const struct mw_http_request *req,
                                struct mw_spiffe_id *out);
/*
 * True once a log append has failed: every request of that batch got 503
 * and issuance stays refused (503) until the process is restarted.
 */
bool mw_ca_service_failed(const struct mw_ca_service *s);
/* Counters: SVIDs acknowledged, requests refused, log appends made. */
struct mw_ca_service_stats {
    uint64_t issued, refused, appends, max_batch_seen;
};
void mw_ca_service_stats(const struct mw_ca_service *s, struct mw_ca_service_stats *out);
/* Stop accepting; requests in flight finish (their batch is flushed first). */
void mw_ca_service_stop(struct mw_ca_service *s);
void mw_ca_service_free(struct mw_ca_service *s);

/* The SPIFFE ID the service presents: "spiffe://" + trust domain + "/meshward/ca". */
#define MW_CA_SERVICE_PATH "/meshward/ca"

#endif
