/*
 * The CA service: POST /v1/svid, GET /v1/bundle, GET /healthz over HTTPS on
 * one libev loop, with group commit to the issuance log (docs/ca.md, "CA
 * service").
 *
 * A request is parsed, its CSR checked, its credential authorized, its SVID
 * signed and its log record encoded inside the handler; the response is then
 * deferred and the record queued. An ev_prepare watcher (it runs once per
 * loop iteration, after every ready connection has been served) appends the
 * queue to the log in one mw_tlog_append, which returns only once the batch
 * is durable, and only then finishes the responses of that batch. A client
 * is therefore never told about a certificate the log could lose.
 */
#include <ev.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include <meshward/ca_service.h>
#include <meshward/conf.h>
#include <meshward/net.h>
#include <meshward/spiffe.h>
#include <meshward/tlog.h>

#include "base/mw_ossl.h"
#include "ca/ca_internal.h"
#include "net/net_internal.h"

#define LOG_COMP      "ca-serve"
#define TOKEN_MAX     16384
#define TTL_MAX       (30 * 86400)
#define DEFAULT_BATCH 1024

/* ---------------------------------------------------------------- the request body */

void mw_ca_svid_request_init(struct mw_ca_svid_request *r)
{
    memset(r, 0, sizeof(*r));
    mw_dynbuf_init(&r->csr_der, MW_CA_CSR_MAX);
    mw_dynbuf_init_secure(&r->token, TOKEN_MAX);
}

void mw_ca_svid_request_free(struct mw_ca_svid_request *r)
{
    mw_dynbuf_free(&r->csr_der);
    mw_dynbuf_free(&r->token);
}

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One PEM CERTIFICATE REQUEST block (RFC 7468 §7), whitespace around it only. */
static mw_result csr_from_pem(mw_slice pem, struct mw_dynbuf *der)
{
    static const char begin[] = "-----BEGIN CERTIFICATE REQUEST-----";
    static const char end[] = "-----END CERTIFICATE REQUEST-----";
    size_t a = 0, b = pem.n;
    while (a < b && is_space(pem.p[a]))
        a++;
    while (b > a && is_space(pem.p[b - 1]))
        b--;
    mw_slice t = mw_slice_sub(pem, a, b - a);
    MW_ENSURE(t.n > 0, MW_E_INPUT, "csr is empty");
    MW_ENSURE(mw_slice_has_prefix(t, mw_slice_cstr(begin)), MW_E_INPUT,
              "csr is not a PEM CERTIFICATE REQUEST (want \"%s\")", begin);
    MW_ENSURE(mw_slice_has_suffix(t, mw_slice_cstr(end)) && t.n >= strlen(begin) + strlen(end),
              MW_E_INPUT, "csr: PEM block does not end with \"%s\" (one block only)", end);
    mw_slice inner = mw_slice_sub(t, strlen(begin), t.n - strlen(begin) - strlen(end));
    MW_ENSURE(memmem(inner.p, inner.n, "-----", 5) == NULL, MW_E_INPUT,
              "csr holds more than one PEM block");
    struct mw_dynbuf b64;
    mw_dynbuf_init(&b64, MW_CA_SVID_REQUEST_MAX);
    mw_result r = MW_SUCCESS;
    for (size_t i = 0; i < inner.n && mw_ok(r); i++)
        if (!is_space(inner.p[i]))
            r = mw_dynbuf_add_byte(&b64, inner.p[i]);
    if (mw_ok(r)) {
        r = mw_b64_decode(mw_dynbuf_slice(&b64), MW_B64_STD, der);
        if (mw_failed(r))
            mw_error_prefix("csr: PEM body: ");
    }
    if (mw_ok(r) && der->n == 0) {
        /* Found by fuzz_svid_request: BEGIN and END lines with nothing between. */
        mw_error_set(MW_E_INPUT, "csr: the PEM block is empty");
        r = MW_FAILURE;
    }
    mw_dynbuf_free(&b64);
    return r;
}

static mw_result string_member(json_t *v, const char *name, mw_slice *out)
{
    MW_ENSURE(json_is_string(v), MW_E_INPUT, "%s must be a string", name);
    *out = mw_slice_make(json_string_value(v), json_string_length(v));
    return MW_SUCCESS;
}

static mw_result parse_credential(json_t *cred, struct mw_ca_svid_request *out)
{
    MW_ENSURE(json_is_object(cred), MW_E_INPUT, "credential must be an object");
    bool have_kind = false, have_token = false;
    const char *key;
    json_t *v;
    json_object_foreach(cred, key, v)
    {
        mw_slice s;
        if (strcmp(key, "kind") == 0) {
            MW_GUARD(string_member(v, "credential.kind", &s));
            if (mw_failed(mw_ca_cred_kind_parse(s, &out->kind)))
                MW_BAIL(MW_E_INPUT, "credential.kind must be \"k8s-sat\" or \"join-token\"");
            have_kind = true;
        } else if (strcmp(key, "token") == 0) {
            MW_GUARD(string_member(v, "credential.token", &s));
            MW_ENSURE(s.n > 0, MW_E_INPUT, "credential.token is empty");
            MW_ENSURE(s.n <= TOKEN_MAX, MW_E_LIMIT, "credential.token is %zu bytes, more than %d",
                      s.n, TOKEN_MAX);
            MW_GUARD(mw_dynbuf_add_slice(&out->token, s));
            have_token = true;
        } else {
            MW_BAIL(MW_E_INPUT, "credential: unknown member \"%.64s\"", key);
        }
    }
    MW_ENSURE(have_kind, MW_E_INPUT, "credential.kind is missing");
    MW_ENSURE(have_token, MW_E_INPUT, "credential.token is missing");
    return MW_SUCCESS;
}

static mw_result parse_members(json_t *doc, struct mw_ca_svid_request *out)
{
    MW_ENSURE(json_is_object(doc), MW_E_INPUT, "request body must be a JSON object");
    bool have_csr = false, have_cred = false;
    const char *key;
    json_t *v;
    /* Unknown members first: a request asking for something we do not do is refused as such. */
    json_object_foreach(doc, key, v)
    {
        MW_ENSURE(strcmp(key, "csr") == 0 || strcmp(key, "credential") == 0 ||
                      strcmp(key, "image_digest") == 0 || strcmp(key, "ttl") == 0,
                  MW_E_INPUT, "unknown member \"%.64s\"", key);
    }
    json_object_foreach(doc, key, v)
    {
        mw_slice s;
        if (strcmp(key, "csr") == 0) {
            MW_GUARD(string_member(v, "csr", &s));
            MW_GUARD(csr_from_pem(s, &out->csr_der));
            have_csr = true;
        } else if (strcmp(key, "credential") == 0) {
            MW_GUARD(parse_credential(v, out));
            have_cred = true;
        } else if (strcmp(key, "image_digest") == 0) {
            MW_GUARD(string_member(v, "image_digest", &s));
            MW_GUARD(mw_ca_digest_check(s, "image_digest"));
            memcpy(out->image_digest, s.p, s.n);
            out->image_digest[s.n] = '\0';
            out->has_image = true;
        } else if (strcmp(key, "ttl") == 0) {
            MW_GUARD(string_member(v, "ttl", &s));
            uint64_t n;
            MW_GUARD(mw_parse_duration(s, TTL_MAX, "ttl", &n));
            MW_ENSURE(n > 0, MW_E_INPUT, "ttl must be more than 0 seconds");
            out->ttl = (int64_t)n;
        } else {
            MW_BAIL(MW_E_INPUT, "unknown member \"%.64s\"", key);
        }
    }
    MW_ENSURE(have_csr, MW_E_INPUT, "csr is missing");
    MW_ENSURE(have_cred, MW_E_INPUT, "credential is missing");
    return MW_SUCCESS;
}

/* jansson copied the token into its own heap; wipe it there before freeing. */
static void wipe_token_copy(json_t *doc)
{
    json_t *cred = json_object_get(doc, "credential");
    json_t *tok = json_is_object(cred) ? json_object_get(cred, "token") : NULL;
    if (json_is_string(tok))
        mw_wipe((char *)json_string_value(tok), json_string_length(tok));
}

/* The JSON object of a request body, bounded; then parse(doc, out). */
static mw_result parse_body(mw_slice body,
                            mw_result (*parse)(json_t *, struct mw_ca_svid_request *),
                            struct mw_ca_svid_request *out)
{
    MW_ENSURE(body.n <= MW_CA_SVID_REQUEST_MAX, MW_E_LIMIT,
              "request body is %zu bytes, more than %d", body.n, MW_CA_SVID_REQUEST_MAX);
    MW_ENSURE(body.n > 0, MW_E_INPUT, "request body is empty (want a JSON object)");
    struct mw_conf_limits lim = {.max_bytes = MW_CA_SVID_REQUEST_MAX, .max_depth = 4};
    json_t *doc = NULL;
    if (mw_failed(mw_json_load(body, "request body", &lim, &doc))) {
        /*
         * jansson quotes input near the fault, which may be token bytes:
         * say where, not what.
         */
        enum mw_err code = mw_error_code();
        MW_BAIL(code == MW_E_LIMIT ? MW_E_LIMIT : MW_E_INPUT,
                "request body is not valid JSON (or has a duplicate member or is too deep)");
    }
    mw_result r = parse(doc, out);
    /* jansson copied a token into its own heap: wipe it there before freeing. */
    wipe_token_copy(doc);
    json_decref(doc);
    return r;
}

mw_result mw_ca_svid_request_parse(mw_slice body, struct mw_ca_svid_request *out)
{
    return parse_body(body, parse_members, out);
}

/*
 * POST /v1/svid/renew: {"csr": PEM, "ttl": optional}. Nothing else: the
 * identity, and with it the credential, is the client certificate.
 */
static mw_result parse_renew_members(json_t *doc, struct mw_ca_svid_request *out)
{
    MW_ENSURE(json_is_object(doc), MW_E_INPUT, "request body must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        MW_ENSURE(strcmp(key, "csr") == 0 || strcmp(key, "ttl") == 0, MW_E_INPUT,
                  "unknown member \"%.64s\" (a renewal takes csr and ttl; the identity is the "
                  "client certificate)",
                  key);
    }
    bool have_csr = false;
    json_object_foreach(doc, key, v)
    {
        mw_slice sl;
        if (strcmp(key, "csr") == 0) {
            MW_GUARD(string_member(v, "csr", &sl));
            MW_GUARD(csr_from_pem(sl, &out->csr_der));
            have_csr = true;
        } else {
            MW_GUARD(string_member(v, "ttl", &sl));
            uint64_t n;
            MW_GUARD(mw_parse_duration(sl, TTL_MAX, "ttl", &n));
            MW_ENSURE(n > 0, MW_E_INPUT, "ttl must be more than 0 seconds");
            out->ttl = (int64_t)n;
        }
    }
    MW_ENSURE(have_csr, MW_E_INPUT, "csr is missing");
    return MW_SUCCESS;
}

mw_result mw_ca_svid_renew_request_parse(mw_slice body, struct mw_ca_svid_request *out)
{
    return parse_body(body, parse_renew_members, out);
}

/* ---------------------------------------------------------------- the service */

/* One issued SVID waiting for its batch to be durable. */
struct pending {
    struct mw_http_response *resp;
    struct mw_dynbuf record; /* the encoded issuance record: the log entry */
    struct mw_dynbuf body;   /* the 200 body, without ,"log_index":N} */
};

struct mw_ca_service {
    struct ev_loop *loop;
    struct mw_http_server *srv;
    struct mw_ca *ca;
    struct mw_tlog *log;
    struct mw_ca_authz authz;
    const struct mw_clock *clock;
    char self_id[MW_SPIFFE_ID_MAX + 1];
    int64_t server_cert_ttl;
    size_t max_batch;
    struct pending **queue;
    size_t nqueue, capqueue;
    ev_prepare flush_w;
    ev_idle more_w; /* keeps the loop from blocking while a backlog remains */
    ev_timer rotate_w;
    ev_timer renew_w;
    bool failed;
    bool stopping;
    struct mw_ca_service_stats stats;
    mw_slice *entries; /* max_batch slices, reused */
    /*
     * Client SVIDs are validated against the CA's own trust bundle, rebuilt
     * whenever the bundle's PEM changes (a root rotation); intermediates come
     * from the client, so SVIDs of every live intermediate validate.
     */
    struct mw_bundle *peer_bundle;
    struct mw_dynbuf peer_bundle_pem;
};

static void pending_free(struct pending *p)
{
    if (p == NULL)
        return;
    mw_dynbuf_free(&p->record);
    mw_dynbuf_free(&p->body);
    free(p);
}

/* {"error": msg} with status; msg never holds a credential (see the parsers). */
static void respond_error(struct mw_http_response *resp, int status, const char *msg)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 8192);
    mw_http_response_status(resp, status);
    if (mw_ok(mw_dynbuf_add_cstr(&b, "{\"error\":")) &&
        mw_ok(mw_dynbuf_add_json_str(&b, mw_slice_cstr(msg))) &&
        mw_ok(mw_dynbuf_add_cstr(&b, "}\n")) &&
        mw_ok(mw_http_response_header(resp, "Content-Type", "application/json")) &&
        mw_failed(mw_http_response_body(resp, mw_dynbuf_slice(&b))))
        mw_log_warn(LOG_COMP, "error response: %s", mw_error_msg());
    mw_dynbuf_free(&b);
}

static void refuse(struct mw_ca_service *s, struct mw_http_response *resp, int status,
                   const char *peer, const char *msg)
{
    s->stats.refused++;
    mw_log_info(LOG_COMP, "refused %d for %s: %s", status, peer, msg);
    respond_error(resp, status, msg);
}

/* Credential failures: malformed or expired is 401, well-formed but not entitled is 403. */
static int authz_status(enum mw_err code)
{
    switch (code) {
    case MW_E_INPUT:
    case MW_E_EXPIRED:
        return 401;
    case MW_E_VERIFY:
    case MW_E_LIMIT:
    case MW_E_UNSUPPORTED:
    case MW_E_NOTFOUND:
        return 403;
    default:
        return 500;
    }
}

static mw_result build_record(struct mw_ca_service *s, const struct mw_ca_svid *svid,
                              const struct mw_ca_grant *g, const char *spiffe_id, int64_t now,
                              struct mw_dynbuf *out)
{
    struct mw_ca_record rec;
    memset(&rec, 0, sizeof(rec));
    struct mw_dynbuf storage;
    mw_dynbuf_init(&storage, 1 << 16);
    mw_result r = mw_ca_record_from_cert(mw_dynbuf_slice(&svid->leaf_der), &rec, &storage);
    if (mw_ok(r)) {
        rec.spiffe_id = mw_slice_cstr(spiffe_id);
        rec.issued_at = now;
        rec.cred_kind = g->kind;
        rec.cred_subject = mw_slice_cstr(g->subject);
        rec.has_provenance = g->has_provenance;
        if (g->has_provenance) {
            rec.image_digest = mw_slice_cstr(g->provenance.image_digest);
            rec.attestation_digest = mw_slice_cstr(g->provenance.attestation_digest);
            rec.builder_id = mw_slice_cstr(g->provenance.builder_id);
        }
        rec.ca_key_id = mw_slice_cstr(svid->ca_key_id);
        r = mw_ca_record_encode(&rec, out);
    }
    mw_dynbuf_free(&storage);
    return r;
}

static mw_result build_body(const struct mw_ca_svid *svid, const char *spiffe_id,
                            struct mw_dynbuf *b)
{
    char exp[32];
    mw_time_format(svid->not_after, exp, sizeof(exp));
    MW_GUARD(mw_dynbuf_add_cstr(b, "{\"svid_chain\":"));
    MW_GUARD(mw_dynbuf_add_json_str(b, mw_dynbuf_slice(&svid->chain_pem)));
    MW_GUARD(mw_dynbuf_add_cstr(b, ",\"spiffe_id\":"));
    MW_GUARD(mw_dynbuf_add_json_str(b, mw_slice_cstr(spiffe_id)));
    MW_GUARD(mw_dynbuf_addf(b, ",\"expires_at\":\"%s\",\"serial\":\"%s\"", exp, svid->serial));
    return MW_SUCCESS;
}

static mw_result enqueue(struct mw_ca_service *s, struct pending *p)
{
    if (s->nqueue == s->capqueue) {
        size_t cap = s->capqueue ? s->capqueue * 2 : 64;
        struct pending **q = realloc(s->queue, cap * sizeof(*q));
        MW_ENSURE(q != NULL, MW_E_NOMEM, "out of memory");
        s->queue = q;
        s->capqueue = cap;
    }
    s->queue[s->nqueue++] = p;
    return MW_SUCCESS;
}

/* Refusals every issuing endpoint shares: a failed log, a stop, an oversized body. */
static bool issuing_refused(struct mw_ca_service *s, const struct mw_http_request *req,
                            struct mw_http_response *resp, const char *peer)
{
    if (s->failed) {
        refuse(s, resp, 503, peer,
               "the issuance log failed; this CA issues nothing until it is restarted");
        return true;
    }
    if (s->stopping) {
        refuse(s, resp, 503, peer, "the CA is shutting down");
        return true;
    }
    if (req->body.n > MW_CA_SVID_REQUEST_MAX) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request body is %zu bytes, more than %d", req->body.n,
                 MW_CA_SVID_REQUEST_MAX);
        refuse(s, resp, 413, peer, msg);
        return true;
    }
    return false;
}

/*
 * Sign for an authorized grant, encode its record and queue it for the next
 * log append; the response is deferred until that append is durable. The
 * same path for first issuance and renewal, so every SVID is in the log.
 */
static void issue_and_queue(struct mw_ca_service *s, struct mw_http_response *resp,
                            const char *peer, mw_slice csr_der, int64_t ttl_asked,
                            const struct mw_ca_grant *g)
{
    char spiffe_id[MW_SPIFFE_ID_MAX + 1];
    struct mw_ca_svid svid;
    mw_ca_svid_init(&svid);
    struct pending *p = NULL;
    if (!mw_spiffe_id_format(&g->id, spiffe_id, sizeof(spiffe_id))) {
        refuse(s, resp, 500, peer, "SPIFFE ID does not fit");
        goto out;
    }
    int64_t ttl = ttl_asked > 0 ? ttl_asked : mw_ca_default_ttl(s->ca);
    if (g->max_ttl_s > 0 && ttl > g->max_ttl_s)
        ttl = g->max_ttl_s;
    if (ttl > mw_ca_max_ttl(s->ca))
        ttl = mw_ca_max_ttl(s->ca);
    struct mw_ca_provenance prov;
    if (g->has_provenance && mw_failed(mw_ca_provenance_set(&prov, g->provenance.image_digest,
                                                            g->provenance.attestation_digest,
                                                            g->provenance.builder_id))) {
        refuse(s, resp, 500, peer, mw_error_msg());
        goto out;
    }
    int64_t now = mw_clock_now(s->clock);
    if (mw_failed(mw_ca_issue(s->ca, csr_der, spiffe_id, ttl, g->has_provenance ? &prov : NULL,
                              s->clock, &svid))) {
        enum mw_err code = mw_error_code();
        bool client = code == MW_E_INPUT || code == MW_E_VERIFY || code == MW_E_UNSUPPORTED ||
                      code == MW_E_LIMIT;
        if (!client)
            mw_log_error(LOG_COMP, "issue for %s: %s", spiffe_id, mw_error_msg());
        refuse(s, resp, client ? 400 : 500, peer, client ? mw_error_msg() : "the CA cannot issue");
        goto out;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        refuse(s, resp, 500, peer, "out of memory");
        goto out;
    }
    mw_dynbuf_init(&p->record, MW_CA_RECORD_MAX);
    mw_dynbuf_init(&p->body, 1 << 20);
    if (mw_failed(build_record(s, &svid, g, spiffe_id, now, &p->record)) ||
        mw_failed(build_body(&svid, spiffe_id, &p->body)) || mw_failed(enqueue(s, p))) {
        mw_log_error(LOG_COMP, "record for %s: %s", spiffe_id, mw_error_msg());
        refuse(s, resp, 500, peer, "cannot record the issuance");
        pending_free(p);
        goto out;
    }
    p->resp = mw_http_response_defer(resp);
    mw_log_debug(LOG_COMP, "issued %s serial %s (%s), awaiting the log", spiffe_id, svid.serial,
                 g->subject);
out:
    mw_ca_svid_free(&svid);
}

static void h_svid(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    struct mw_ca_service *s = arg;
    const char *peer = req->peer_addr != NULL ? req->peer_addr : "?";
    if (issuing_refused(s, req, resp, peer))
        return;
    struct mw_ca_svid_request rq;
    mw_ca_svid_request_init(&rq);
    if (mw_failed(mw_ca_svid_request_parse(req->body, &rq))) {
        refuse(s, resp, mw_error_code() == MW_E_LIMIT ? 413 : 400, peer, mw_error_msg());
        goto out;
    }
    /* Before authorizing: a granted join token is spent. */
    if (mw_failed(mw_ca_csr_check(mw_dynbuf_slice(&rq.csr_der)))) {
        refuse(s, resp, 400, peer, mw_error_msg());
        goto out;
    }
    struct mw_ca_authz_request areq = {
        .kind = rq.kind,
        .credential = mw_dynbuf_slice(&rq.token),
        .image_digest = rq.has_image ? rq.image_digest : NULL,
    };
    struct mw_ca_grant g;
    if (mw_failed(mw_ca_authorize(&s->authz, &areq, &g))) {
        int st = authz_status(mw_error_code());
        refuse(s, resp, st, peer, st == 500 ? "internal error while authorizing" : mw_error_msg());
        if (st == 500)
            mw_log_error(LOG_COMP, "authorize: %s", mw_error_msg());
        goto out;
    }
    issue_and_queue(s, resp, peer, mw_dynbuf_slice(&rq.csr_der), rq.ttl, &g);
out:
    mw_ca_svid_request_free(&rq);
}

/* ---------------------------------------------------------------- client SVIDs */

/* The CA's bundle as a struct mw_bundle, parsed again only when its PEM changed. */
static mw_result peer_bundle(struct mw_ca_service *s, const struct mw_bundle **out)
{
    struct mw_dynbuf pem;
    mw_dynbuf_init(&pem, 1 << 20);
    mw_result r = mw_ca_bundle_pem(s->ca, &pem);
    if (mw_ok(r) && (s->peer_bundle == NULL ||
                     !mw_slice_eq(mw_dynbuf_slice(&pem), mw_dynbuf_slice(&s->peer_bundle_pem)))) {
        struct mw_bundle *b = NULL;
        r = mw_bundle_parse(mw_dynbuf_slice(&pem), MW_BUNDLE_FMT_PEM, mw_ca_trust_domain(s->ca), &b,
                            NULL);
        if (mw_ok(r)) {
            mw_dynbuf_reset(&s->peer_bundle_pem);
            r = mw_dynbuf_add_slice(&s->peer_bundle_pem, mw_dynbuf_slice(&pem));
        }
        if (mw_ok(r)) {
            mw_bundle_free(s->peer_bundle);
            s->peer_bundle = b;
        } else {
            mw_bundle_free(b);
            mw_dynbuf_reset(&s->peer_bundle_pem);
        }
    }
    mw_dynbuf_free(&pem);
    MW_GUARD(r);
    *out = s->peer_bundle;
    return MW_SUCCESS;
}

/*
 * A client chain (DER, leaf first) is an X.509-SVID (X509-SVID §5.1) that
 * chains to this CA's bundle at the service's clock and names an ID in this
 * CA's trust domain. The intermediate comes from the client.
 */
static mw_result validate_client(struct mw_ca_service *s, mw_slice chain, struct mw_x509svid **out)
{
    const struct mw_bundle *b;
    MW_GUARD(peer_bundle(s, &b));
    struct mw_x509svid *svid = NULL;
    MW_GUARD(mw_x509svid_parse_der(chain, mw_slice_make(NULL, 0), &svid));
    mw_result r = mw_x509svid_verify(svid, b, s->clock);
    if (mw_ok(r) && strcmp(mw_x509svid_id(svid)->td, mw_ca_trust_domain(s->ca)) != 0) {
        mw_error_set(MW_E_VERIFY, "client SVID is for trust domain %.255s, not %s",
                     mw_x509svid_id(svid)->td, mw_ca_trust_domain(s->ca));
        r = MW_FAILURE;
    }
    if (mw_failed(r)) {
        mw_x509svid_free(svid);
        return MW_FAILURE;
    }
    *out = svid;
    return MW_SUCCESS;
}

/*
 * The TLS peer check: runs in the handshake, only when the client sent a
 * certificate (the context requests one, it does not require one). A
 * certificate that is not a valid SVID of this trust domain fails the
 * handshake, so a request's peer_chain is either empty or validated.
 */
static bool check_client(mw_slice chain, void *arg)
{
    struct mw_ca_service *s = arg;
    struct mw_x509svid *svid = NULL;
    if (mw_failed(validate_client(s, chain, &svid))) {
        mw_log_info(LOG_COMP, "client certificate refused: %s", mw_error_msg());
        return false;
    }
    mw_x509svid_free(svid);
    return true;
}

/* Validate the request's client SVID again, now: a connection can outlive its certificate. */
static mw_result request_client(struct mw_ca_service *s, const struct mw_http_request *req,
                                struct mw_x509svid **out)
{
    MW_ENSURE(req->peer_chain.n > 0, MW_E_PERM,
              "no client certificate: present a valid X.509-SVID of %s", mw_ca_trust_domain(s->ca));
    if (mw_failed(validate_client(s, req->peer_chain, out))) {
        mw_error_prefix("client SVID: ");
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

mw_result mw_ca_service_peer_id(struct mw_ca_service *s, const struct mw_http_request *req,
                                struct mw_spiffe_id *out)
{
    struct mw_x509svid *svid = NULL;
    MW_GUARD(request_client(s, req, &svid));
    *out = *mw_x509svid_id(svid);
    mw_x509svid_free(svid);
    return MW_SUCCESS;
}

/* Lower-case hex, no leading zeros: the spelling of svid.serial and of renewal records. */
static mw_result cert_serial(X509 *x, char *out, size_t len)
{
    MW_DEFER(BIGNUM) BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    MW_ENSURE(bn != NULL && !BN_is_negative(bn) && !BN_is_zero(bn), MW_E_INPUT,
              "client SVID serial is not a positive integer");
    char *hex = BN_bn2hex(bn);
    MW_ENSURE(hex != NULL, MW_E_NOMEM, "out of memory");
    const char *h = hex;
    while (h[0] == '0' && h[1] != '\0')
        h++;
    size_t n = strlen(h);
    bool fits = n <= 40 && n < len;
    for (size_t i = 0; fits && i <= n; i++)
        out[i] = (char)(h[i] >= 'A' && h[i] <= 'F' ? h[i] - 'A' + 'a' : h[i]);
    OPENSSL_free(hex);
    MW_ENSURE(fits, MW_E_INPUT, "client SVID serial is longer than 20 bytes (RFC 5280 §4.1.2.2)");
    return MW_SUCCESS;
}

/* What a renewal takes from the presented certificate besides its ID. */
struct presented {
    char serial[41];
    uint8_t spki_sha256[32];
    bool has_provenance;
    struct mw_ca_provenance prov;
};

static mw_result presented_facts(const struct mw_x509svid *svid, struct presented *out)
{
    struct mw_dynbuf der;
    mw_dynbuf_init(&der, 1 << 16);
    mw_result r = mw_x509svid_cert_der(svid, 0, &der);
    X509 *x = NULL;
    if (mw_ok(r)) {
        const unsigned char *p = der.p;
        x = d2i_X509(NULL, &p, (long)der.n);
        if (x == NULL) {
            mw_error_openssl(MW_E_INPUT, "client SVID leaf");
            r = MW_FAILURE;
        }
    }
    if (mw_ok(r))
        r = cert_serial(x, out->serial, sizeof(out->serial));
    if (mw_ok(r))
        r = mw_ca_spki_sha256(X509_get_X509_PUBKEY(x), out->spki_sha256);
    /* Strict decoder: a malformed, critical or repeated extension is refused. */
    if (mw_ok(r))
        r = mw_ca_provenance_from_cert(mw_dynbuf_slice(&der), &out->prov, &out->has_provenance);
    X509_free(x);
    mw_dynbuf_free(&der);
    return r;
}

static mw_result csr_spki_hash(mw_slice csr_der, uint8_t out[32])
{
    const unsigned char *p = csr_der.p;
    MW_DEFER(X509_REQ) X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)csr_der.n);
    MW_GUARD_OSSL(req != NULL, MW_E_INPUT, "CSR");
    return mw_ca_spki_sha256(X509_REQ_get_X509_PUBKEY(req), out);
}

/*
 * POST /v1/svid/renew: the identity is the client certificate's, validated
 * again here at the service's clock; the CSR is checked as for /v1/svid and
 * must be for a new key; the registration still applies and provenance is
 * computed again for the image the old SVID names (mw_ca_authorize_renewal).
 */
static void h_svid_renew(const struct mw_http_request *req, struct mw_http_response *resp,
                         void *arg)
{
    struct mw_ca_service *s = arg;
    const char *peer = req->peer_addr != NULL ? req->peer_addr : "?";
    if (issuing_refused(s, req, resp, peer))
        return;
    struct mw_ca_svid_request rq;
    mw_ca_svid_request_init(&rq);
    struct mw_x509svid *client = NULL;
    if (mw_failed(request_client(s, req, &client))) {
        /* None, or no longer valid (expired since the handshake): not authenticated. */
        refuse(s, resp, mw_error_code() == MW_E_VERIFY ? 403 : 401, peer, mw_error_msg());
        goto out;
    }
    struct presented pr;
    memset(&pr, 0, sizeof(pr));
    if (mw_failed(presented_facts(client, &pr))) {
        refuse(s, resp, 403, peer, mw_error_msg());
        goto out;
    }
    if (mw_failed(mw_ca_svid_renew_request_parse(req->body, &rq))) {
        refuse(s, resp, mw_error_code() == MW_E_LIMIT ? 413 : 400, peer, mw_error_msg());
        goto out;
    }
    mw_slice csr = mw_dynbuf_slice(&rq.csr_der);
    uint8_t csr_spki[32];
    if (mw_failed(mw_ca_csr_check(csr)) || mw_failed(csr_spki_hash(csr, csr_spki))) {
        refuse(s, resp, 400, peer, mw_error_msg());
        goto out;
    }
    /* A new key with every SVID: a key that leaked stops being certified at the next renewal. */
    if (CRYPTO_memcmp(csr_spki, pr.spki_sha256, 32) == 0) {
        refuse(s, resp, 400, peer,
               "the CSR is for the key of the presented SVID; renewal needs a new key");
        goto out;
    }
    struct mw_ca_renewal_request rr = {
        .id = *mw_x509svid_id(client),
        .serial = pr.serial,
        .image_digest = pr.has_provenance ? pr.prov.image_digest : NULL,
    };
    struct mw_ca_grant g;
    if (mw_failed(mw_ca_authorize_renewal(&s->authz, &rr, &g))) {
        int st = authz_status(mw_error_code());
        refuse(s, resp, st, peer, st == 500 ? "internal error while authorizing" : mw_error_msg());
        if (st == 500)
            mw_log_error(LOG_COMP, "authorize renewal: %s", mw_error_msg());
        goto out;
    }
    issue_and_queue(s, resp, peer, csr, rq.ttl, &g);
out:
    mw_x509svid_free(client);
    mw_ca_svid_request_free(&rq);
}

/* Append up to max_batch queued records in one durable append, then answer them. */
static void flush_batch(struct mw_ca_service *s)
{
    if (s->nqueue == 0)
        return;
    size_t n = s->nqueue < s->max_batch ? s->nqueue : s->max_batch;
    for (size_t i = 0; i < n; i++)
        s->entries[i] = mw_dynbuf_slice(&s->queue[i]->record);
    uint64_t first = 0;
    bool ok = !s->failed && mw_ok(mw_tlog_append(s->log, s->entries, n, &first));
    if (!ok && !s->failed) {
        /*
         * A failed append leaves the log writer in an unknown state by
         * design: stop issuing rather than risk acknowledging what a later
         * append cannot commit.
         */
        mw_log_error(LOG_COMP, "issuance log append failed, refusing issuance until restart: %s",
                     mw_error_msg());
        s->failed = true;
    }
    if (ok) {
        s->stats.appends++;
        if (n > s->stats.max_batch_seen)
            s->stats.max_batch_seen = n;
    }
    for (size_t i = 0; i < n; i++) {
        struct pending *p = s->queue[i];
        if (ok &&
            mw_ok(mw_dynbuf_addf(&p->body, ",\"log_index\":%llu}\n",
                                 (unsigned long long)(first + i))) &&
            mw_ok(mw_http_response_header(p->resp, "Content-Type", "application/json")) &&
            mw_ok(mw_http_response_body(p->resp, mw_dynbuf_slice(&p->body)))) {
            mw_http_response_status(p->resp, 200);
            s->stats.issued++;
        } else {
            s->stats.refused++;
            respond_error(p->resp, 503,
                          ok ? "cannot build the response"
                             : "the issuance log failed; the certificate was not issued");
        }
        mw_http_response_finish(p->resp);
        p->resp = NULL;
        pending_free(p);
    }
    memmove(s->queue, s->queue + n, (s->nqueue - n) * sizeof(*s->queue));
    s->nqueue -= n;
}

static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct mw_ca_service *s = w->data;
    flush_batch(s);
    if (s->nqueue > 0)
        ev_idle_start(loop, &s->more_w);
    else
        ev_idle_stop(loop, &s->more_w);
}

static void more_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    /* Nothing: being active makes the loop poll without blocking, so prepare runs again. */
}

static void h_bundle(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    struct mw_ca_service *s = arg;
    bool pem = mw_slice_eq_cstr(req->query, "format=pem");
    if (!pem && req->query.n > 0 && !mw_slice_eq_cstr(req->query, "format=jwks")) {
        respond_error(resp, 400, "unknown query: want format=pem or format=jwks");
        return;
    }
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1 << 20);
    mw_result r = pem ? mw_ca_bundle_pem(s->ca, &b) : mw_ca_bundle_jwks(s->ca, &b);
    if (mw_ok(r))
        r = mw_http_response_header(resp, "Content-Type",
                                    pem ? "application/x-pem-file" : "application/json");
    if (mw_ok(r))
        r = mw_http_response_body(resp, mw_dynbuf_slice(&b));
    if (mw_failed(r)) {
        mw_log_error(LOG_COMP, "bundle: %s", mw_error_msg());
        respond_error(resp, 500, "cannot produce the bundle");
    }
    mw_dynbuf_free(&b);
}

static void h_healthz(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    struct mw_ca_service *s = arg;
    mw_http_response_status(resp, s->failed ? 503 : 200);
    if (mw_failed(mw_http_response_header(resp, "Content-Type", "text/plain")) ||
        mw_failed(mw_http_response_body(
            resp, mw_slice_cstr(s->failed ? "issuance log failed\n" : "ok\n"))))
        mw_log_warn(LOG_COMP, "healthz: %s", mw_error_msg());
}

static void not_found(const struct mw_http_request *req, struct mw_http_response *resp, void *arg)
{
    respond_error(resp, 404,
                  "no such endpoint (POST /v1/svid, POST /v1/svid/renew, GET /v1/bundle, GET "
                  "/healthz)");
}

/* ---------------------------------------------------------------- the service's own certificate */

/*
 * An SVID for the service itself, from its own CA: a fresh P-256 key in the
 * process, a CSR, mw_ca_issue. Clients pin the bundle and check the SPIFFE
 * ID, so the certificate needs no DNS or IP name.
 */
static mw_result make_tls(struct mw_ca_service *s, struct mw_tls_ctx **out, int64_t *not_after)
{
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = EVP_EC_gen("P-256");
    MW_ENSURE(key != NULL, MW_E_CRYPTO, "cannot make the service key");
    MW_DEFER(X509_REQ) X509_REQ *req = X509_REQ_new();
    MW_ENSURE(req != NULL, MW_E_NOMEM, "out of memory");
    MW_GUARD_OSSL(X509_REQ_set_pubkey(req, key), MW_E_CRYPTO, "CSR key");
    MW_GUARD_OSSL(X509_REQ_sign(req, key, EVP_sha256()), MW_E_CRYPTO, "signing the service CSR");
    unsigned char *der = NULL;
    int len = i2d_X509_REQ(req, &der);
    MW_ENSURE(len > 0, MW_E_CRYPTO, "encoding the service CSR");
    struct mw_ca_svid svid;
    mw_ca_svid_init(&svid);
    mw_result r = mw_ca_issue(s->ca, mw_slice_make(der, (size_t)len), s->self_id,
                              s->server_cert_ttl, NULL, s->clock, &svid);
    OPENSSL_free(der);
    X509 *leaf = NULL, *inter = NULL;
    STACK_OF(X509) *chain = NULL;
    if (mw_ok(r)) {
        const uint8_t *p = svid.chain_der.p;
        leaf = d2i_X509(NULL, &p, (long)svid.chain_der.n);
        long rest = (long)(svid.chain_der.p + svid.chain_der.n - p);
        inter = leaf != NULL ? d2i_X509(NULL, &p, rest) : NULL;
        chain = sk_X509_new_null();
        if (leaf == NULL || inter == NULL || chain == NULL || !sk_X509_push(chain, inter)) {
            mw_error_openssl(MW_E_CRYPTO, "parsing the service certificate");
            r = MW_FAILURE;
        } else {
            inter = NULL; /* owned by chain */
        }
    }
    if (mw_ok(r)) {
        /*
         * Request, do not require, a client certificate: first issuance has
         * only a token, renewal and the control API authenticate with the
         * caller's SVID (check_client).
         */
        struct mw_tls_config tc = {
            .client_auth = MW_TLS_CLIENT_REQUEST,
            .peer_check = check_client,
            .peer_check_arg = s,
        };
        r = mw_tls_server_new_ossl(&tc, leaf, chain, key, out);
        if (mw_ok(r)) {
            /*
             * No session resumption: a resumed session skips the peer check
             * and restores a client certificate validated at another time.
             * Clients of the CA make one request per connection, so
             * resumption saves nothing worth that.
             */
            SSL_CTX *sctx = mw_tls_ctx_ssl(*out);
            SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_OFF);
            SSL_CTX_set_options(sctx, SSL_OP_NO_TICKET);
            if (SSL_CTX_set_num_tickets(sctx, 0) != 1) {
                mw_error_openssl(MW_E_CRYPTO, "turning off TLS session tickets");
                mw_tls_ctx_free(*out);
                *out = NULL;
                r = MW_FAILURE;
            }
        }
        *not_after = svid.not_after;
        char na[32];
        mw_time_format(svid.not_after, na, sizeof(na));
        if (mw_ok(r))
            mw_log_info(LOG_COMP, "service certificate %s serial %s until %s", s->self_id,
                        svid.serial, na);
    }
    X509_free(leaf);
    X509_free(inter);
    sk_X509_pop_free(chain, X509_free);
    mw_ca_svid_free(&svid);
    return r;
}

static void schedule_renew(struct mw_ca_service *s, int64_t not_after)
{
    /* Renew at half the remaining lifetime, at least every 10 s when it is short. */
    double left = (double)(not_after - mw_clock_now(s->clock));
    double at = left / 2 > 10 ? left / 2 : 10;
    ev_timer_stop(s->loop, &s->renew_w);
    ev_timer_set(&s->renew_w, at, 0.);
    ev_timer_start(s->loop, &s->renew_w);
}

static void renew_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct mw_ca_service *s = w->data;
    struct mw_tls_ctx *tls = NULL;
    int64_t na = 0;
    if (mw_failed(make_tls(s, &tls, &na))) {
        mw_log_error(LOG_COMP, "renewing the service certificate: %s (retrying in 60 s)",
                     mw_error_msg());
        ev_timer_set(&s->renew_w, 60., 0.);
        ev_timer_start(loop, &s->renew_w);
        return;
    }
    mw_http_server_set_tls(s->srv, tls);
    mw_tls_ctx_free(tls);
    schedule_renew(s, na);
}

static void rotate_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct mw_ca_service *s = w->data;
    /* Never between issuing a batch and logging it: drain the queue first. */
    while (s->nqueue > 0)
        flush_batch(s);
    enum mw_ca_rotation done = MW_CA_ROTATE_NONE;
    if (mw_failed(mw_ca_rotate(s->ca, s->clock, false, false, &done))) {
        mw_log_warn(LOG_COMP, "intermediate rotation: %s", mw_error_msg());
        return;
    }
    if (done == MW_CA_ROTATE_PREPARED)
        mw_log_info(LOG_COMP, "prepared the next intermediate");
    else if (done == MW_CA_ROTATE_ACTIVATED)
        mw_log_info(LOG_COMP, "activated the next intermediate");
}

mw_result mw_ca_service_new(struct ev_loop *loop, const struct mw_ca_service_config *cfg,
                            struct mw_ca_service **out)
{
    *out = NULL;
    MW_ENSURE(cfg->ca != NULL && cfg->log != NULL && cfg->store != NULL && cfg->regs != NULL,
              MW_E_INPUT, "the CA service needs a CA, a log, a store and registrations");
    struct mw_ca_service *s = calloc(1, sizeof(*s));
    MW_ENSURE(s != NULL, MW_E_NOMEM, "out of memory");
    s->loop = loop;
    s->ca = cfg->ca;
    s->log = cfg->log;
    s->clock = cfg->clock;
    s->max_batch = cfg->max_batch ? cfg->max_batch : DEFAULT_BATCH;
    s->server_cert_ttl = cfg->server_cert_ttl;
    s->authz = (struct mw_ca_authz){
        .k8s = cfg->k8s,
        .store = cfg->store,
        .regs = cfg->regs,
        .trust_domain = mw_ca_trust_domain(cfg->ca),
        .allow_unregistered = cfg->allow_unregistered,
        .max_ttl_s = mw_ca_max_ttl(cfg->ca),
        .clock = cfg->clock,
    };
    snprintf(s->self_id, sizeof(s->self_id), "spiffe://%s%s", mw_ca_trust_domain(cfg->ca),
             MW_CA_SERVICE_PATH);
    mw_dynbuf_init(&s->peer_bundle_pem, 1 << 20);
    s->entries = calloc(s->max_batch, sizeof(*s->entries));
    struct mw_tls_ctx *tls = NULL;
    int64_t na = 0;
    mw_result r = MW_SUCCESS;
    if (s->entries == NULL) {
        mw_error_set(MW_E_NOMEM, "out of memory");
        r = MW_FAILURE;
    }
    if (mw_ok(r))
        r = make_tls(s, &tls, &na);
    if (mw_ok(r)) {
        struct mw_http_server_config sc = {
            .address = cfg->address,
            .port = cfg->port,
            .tls = tls,
            /* Larger than our own cap, so that an oversized body gets our JSON 413. */
            .max_body = 1 << 20,
            .head_timeout = 10,
            .idle_timeout = 60,
            .fallback = not_found,
            .fallback_arg = s,
        };
        r = mw_http_server_new(loop, &sc, &s->srv);
        mw_tls_ctx_free(tls);
    }
    if (mw_ok(r))
        r = mw_http_server_route(s->srv, "POST", "/v1/svid", h_svid, s);
    if (mw_ok(r))
        r = mw_http_server_route(s->srv, "POST", "/v1/svid/renew", h_svid_renew, s);
    if (mw_ok(r))
        r = mw_http_server_route(s->srv, "GET", "/v1/bundle", h_bundle, s);
    if (mw_ok(r))
        r = mw_http_server_route(s->srv, "GET", "/healthz", h_healthz, s);
    if (mw_failed(r)) {
        mw_ca_service_free(s);
        return r;
    }
    ev_prepare_init(&s->flush_w, flush_cb);
    s->flush_w.data = s;
    ev_prepare_start(loop, &s->flush_w);
    ev_idle_init(&s->more_w, more_cb);
    s->more_w.data = s;
    ev_init(&s->renew_w, renew_cb);
    s->renew_w.data = s;
    schedule_renew(s, na);
    double every = cfg->rotate_interval == 0 ? 60. : cfg->rotate_interval;
    ev_init(&s->rotate_w, rotate_cb);
    s->rotate_w.data = s;
    if (every > 0) {
        ev_timer_set(&s->rotate_w, every, every);
        ev_timer_start(loop, &s->rotate_w);
    }
    *out = s;
    return MW_SUCCESS;
}

uint16_t mw_ca_service_port(const struct mw_ca_service *s)
{
    return mw_http_server_port(s->srv);
}

struct mw_http_server *mw_ca_service_http(struct mw_ca_service *s)
{
    return s->srv;
}

bool mw_ca_service_failed(const struct mw_ca_service *s)
{
    return s->failed;
}

void mw_ca_service_stats(const struct mw_ca_service *s, struct mw_ca_service_stats *out)
{
    *out = s->stats;
}

void mw_ca_service_stop(struct mw_ca_service *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    while (s->nqueue > 0)
        flush_batch(s);
    ev_timer_stop(s->loop, &s->rotate_w);
    ev_timer_stop(s->loop, &s->renew_w);
    ev_idle_stop(s->loop, &s->more_w);
    ev_prepare_stop(s->loop, &s->flush_w);
    mw_http_server_stop(s->srv);
}

void mw_ca_service_free(struct mw_ca_service *s)
{
    if (s == NULL)
        return;
    if (s->loop != NULL && s->srv != NULL) {
        while (s->nqueue > 0)
            flush_batch(s);
        ev_timer_stop(s->loop, &s->rotate_w);
        ev_timer_stop(s->loop, &s->renew_w);
        ev_idle_stop(s->loop, &s->more_w);
        ev_prepare_stop(s->loop, &s->flush_w);
    }
    mw_http_server_free(s->srv);
    mw_bundle_free(s->peer_bundle);
    mw_dynbuf_free(&s->peer_bundle_pem);
    free(s->queue);
    free(s->entries);
    free(s);
}
