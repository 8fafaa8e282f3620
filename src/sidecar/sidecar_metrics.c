/*
 * The sidecar's metrics registry and its Prometheus text rendering.
 *
 * Every labelled series lives in one hash table keyed by (family kind, label
 * values). The key is a length-prefixed byte string, so "a","bc" and "ab","c"
 * differ, and the table hashes it with SipHash-2-4 under a random key: label
 * values come from peers (SNI, Host, principals), and an unkeyed hash would let
 * them choose colliding values and turn every lookup into a walk of the chain.
 * The number of series is capped; beyond the cap a new series is counted in
 * meshward_metrics_series_dropped_total and otherwise ignored.
 *
 * Rendering follows the Prometheus text exposition format 0.0.4: one # HELP and
 * one # TYPE per family, label values escaped (\\, \", \n), histogram buckets
 * cumulative with le="+Inf" equal to _count. Series are sorted by label values,
 * so the same registry always renders to the same bytes.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "sidecar/sidecar_metrics.h"

/*
 * Envoy's default histogram buckets (envoyproxy/envoy
 * source/common/stats/histogram_impl.cc, HistogramSettingsImpl::defaultBuckets).
 * Istio sets no bucket override for its standard metrics, so duration (ms) and
 * request/response sizes (bytes) all use these bounds.
 */
static const double mw_buckets[] = {0.5,   1,      5,      10,      25,     50,    100,
                                    250,   500,    1000,   2500,    5000,   10000, 30000,
                                    60000, 300000, 600000, 1800000, 3600000};
#define NBUCKETS (MW_ARRAY_LEN(mw_buckets))

struct hist {
    uint64_t counts[NBUCKETS + 1]; /* per bucket, not cumulative; last is +Inf */
    uint64_t count;
    double sum;
};

enum kind { K_ISTIO = 1, K_AUTHZ, K_EGRESS, K_TLS_HS, K_TLS_FAIL, K_POOL };

/* Istio label order as Envoy's stats filter emits them. */
enum {
    L_REPORTER,
    L_SRC_WORKLOAD,
    L_SRC_CANON_SVC,
    L_SRC_CANON_REV,
    L_SRC_WORKLOAD_NS,
    L_SRC_PRINCIPAL,
    L_SRC_APP,
    L_SRC_VERSION,
    L_SRC_CLUSTER,
    L_DST_WORKLOAD,
    L_DST_WORKLOAD_NS,
    L_DST_PRINCIPAL,
    L_DST_APP,
    L_DST_VERSION,
    L_DST_SERVICE,
    L_DST_CANON_SVC,
    L_DST_CANON_REV,
    L_DST_SERVICE_NAME,
    L_DST_SERVICE_NS,
    L_DST_CLUSTER,
    L_REQUEST_PROTOCOL,
    L_RESPONSE_CODE, /* HTTP families only */
    L_RESPONSE_FLAGS,
    L_CSP,
    L_ISTIO_COUNT
};

static const char *const istio_label_names[L_ISTIO_COUNT] = {
    "reporter",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_service_name",
    "destination_service_namespace",
    "destination_cluster",
    "request_protocol",
    "response_code",
    "response_flags",
    "connection_security_policy",
};
static const char *const authz_label_names[] = {"policy", "direction"};
static const char *const egress_label_names[] = {"host", "port"};
static const char *const tls_hs_label_names[] = {"direction", "resumed"};
static const char *const tls_fail_label_names[] = {"direction", "reason"};
static const char *const pool_label_names[] = {"service", "event"};

#define MAX_LABELS L_ISTIO_COUNT

struct http_data {
    uint64_t requests;
    struct hist duration, req_bytes, resp_bytes;
};

struct series {
    struct series *next;
    uint64_t hash;
    enum kind kind;
    struct http_data *http; /* K_ISTIO with requests; allocated on the first one */
    bool tcp;               /* K_ISTIO with TCP activity */
    uint64_t tcp_opened, tcp_closed, tcp_sent, tcp_received;
    uint64_t count; /* K_AUTHZ, K_EGRESS, K_TLS_HS, K_TLS_FAIL, K_POOL */
    size_t keylen;
    uint8_t key[]; /* kind byte, then per label: u16be length, bytes */
};

struct gauge {
    char *name, *help;
    double v;
};

struct mw_metrics {
    struct series **buckets;
    size_t nbuckets; /* power of two */
    size_t nseries, max_series;
    uint64_t dropped;
    uint8_t sipkey[16];
    struct gauge gauges[MW_METRICS_MAX_GAUGES];
    size_t ngauges;
};

/* ---------------------------------------------------------------- SipHash-2-4 */

static uint64_t rd64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND           \
    do {                   \
        v0 += v1;          \
        v1 = ROTL(v1, 13); \
        v1 ^= v0;          \
        v0 = ROTL(v0, 32); \
        v2 += v3;          \
        v3 = ROTL(v3, 16); \
        v3 ^= v2;          \
        v0 += v3;          \
        v3 = ROTL(v3, 21); \
        v3 ^= v0;          \
        v2 += v1;          \
        v1 = ROTL(v1, 17); \
        v1 ^= v2;          \
        v2 = ROTL(v2, 32); \
    } while (0)

static uint64_t siphash24(const uint8_t key[16], const uint8_t *in, size_t n)
{
    uint64_t k0 = rd64le(key), k1 = rd64le(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    size_t full = n - (n % 8);
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = rd64le(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)n << 56;
    for (size_t i = 0; i < n % 8; i++)
        b |= (uint64_t)in[full + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---------------------------------------------------------------- UTF-8 */

/* Length of the valid UTF-8 sequence at p (RFC 3629 §4), or 0 if invalid. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

mw_result mw_telemetry_add_utf8(struct mw_dynbuf *b, mw_slice s, size_t max)
{
    static const uint8_t replacement[3] = {0xef, 0xbf, 0xbd};
    size_t added = 0;
    for (size_t i = 0; i < s.n;) {
        size_t len = utf8_seq(s.p + i, s.n - i);
        const uint8_t *out = len > 0 ? s.p + i : replacement;
        size_t outlen = len > 0 ? len : sizeof(replacement);
        if (added + outlen > max)
            break;
        MW_GUARD(mw_dynbuf_add(b, out, outlen));
        added += outlen;
        i += len > 0 ? len : 1;
    }
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- registry */

mw_result mw_metrics_new_limited(size_t max_series, struct mw_metrics **out)
{
    *out = NULL;
    MW_ENSURE(max_series >= 1 && max_series <= (1u << 24), MW_E_INPUT,
              "metrics series cap %zu outside [1, %u]", max_series, 1u << 24);
    struct mw_metrics *m = calloc(1, sizeof(*m));
    MW_ENSURE(m != NULL, MW_E_NOMEM, "out of memory for the metrics registry");
    size_t nb = 16;
    while (nb < max_series / 2 && nb < (1u << 16))
        nb *= 2;
    m->buckets = calloc(nb, sizeof(*m->buckets));
    if (m->buckets == NULL) {
        free(m);
        MW_BAIL(MW_E_NOMEM, "out of memory for the metrics registry");
    }
    m->nbuckets = nb;
    m->max_series = max_series;
    if (getrandom(m->sipkey, sizeof(m->sipkey), 0) != (ssize_t)sizeof(m->sipkey)) {
        int e = errno;
        free(m->buckets);
        free(m);
        MW_BAIL(MW_E_IO, "getrandom for the metrics hash key: %s", strerror(e));
    }
    *out = m;
    return MW_SUCCESS;
}

mw_result mw_metrics_new(struct mw_metrics **out)
{
    return mw_metrics_new_limited(MW_METRICS_DEFAULT_MAX_SERIES, out);
}

void mw_metrics_free(struct mw_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct series *s = m->buckets[i];
        while (s != NULL) {
            struct series *next = s->next;
            free(s->http);
            free(s);
            s = next;
        }
    }
    free(m->buckets);
    for (size_t i = 0; i < m->ngauges; i++) {
        free(m->gauges[i].name);
        free(m->gauges[i].help);
    }
    free(m);
}

uint64_t mw_metrics_series_dropped(const struct mw_metrics *m)
{
    return m->dropped;
}

/* Append one label value to a key: u16be length, then the sanitised bytes. */
static mw_result key_add(struct mw_dynbuf *key, const char *v, const char *dflt)
{
    if (v == NULL || v[0] == '\0')
        v = dflt;
    size_t at = key->n;
    MW_GUARD(mw_dynbuf_add(key, "\0\0", 2));
    MW_GUARD(mw_telemetry_add_utf8(key, mw_slice_cstr(v), MW_METRICS_MAX_LABEL_LEN));
    size_t len = key->n - at - 2;
    key->p[at] = (uint8_t)(len >> 8);
    key->p[at + 1] = (uint8_t)len;
    return MW_SUCCESS;
}

/* Decode the label values of a key into vals (slices into the key). */
static size_t key_values(const uint8_t *key, size_t keylen, mw_slice *vals)
{
    size_t n = 0;
    for (size_t i = 1; i + 2 <= keylen && n < MAX_LABELS; n++) {
        size_t len = ((size_t)key[i] << 8) | key[i + 1];
        vals[n] = mw_slice_make(key + i + 2, len);
        i += 2 + len;
    }
    return n;
}

/*
 * The series for key, created if absent. *out is NULL (and success returned)
 * when the cap refuses a new series: losing a telemetry point must never fail
 * the request it describes.
 */
static mw_result series_get(struct mw_metrics *m, const struct mw_dynbuf *key, struct series **out)
{
    *out = NULL;
    uint64_t h = siphash24(m->sipkey, key->p, key->n);
    struct series **slot = &m->buckets[h & (m->nbuckets - 1)];
    for (struct series *s = *slot; s != NULL; s = s->next) {
        if (s->hash == h && s->keylen == key->n && memcmp(s->key, key->p, key->n) == 0) {
            *out = s;
            return MW_SUCCESS;
        }
    }
    if (m->nseries >= m->max_series) {
        m->dropped++;
        return MW_SUCCESS;
    }
    struct series *s = calloc(1, sizeof(*s) + key->n);
    MW_ENSURE(s != NULL, MW_E_NOMEM, "out of memory for a metrics series");
    s->hash = h;
    s->kind = (enum kind)key->p[0];
    s->keylen = key->n;
    memcpy(s->key, key->p, key->n);
    s->next = *slot;
    *slot = s;
    m->nseries++;
    *out = s;
    return MW_SUCCESS;
}

static mw_result istio_key(const struct mw_istio_labels *l, int response_code,
                           struct mw_dynbuf *key)
{
    char code[16];
    snprintf(code, sizeof(code), "%d", response_code);
    const char *v[L_ISTIO_COUNT] = {
        [L_REPORTER] = l->reporter,
        [L_SRC_WORKLOAD] = l->source_workload,
        [L_SRC_CANON_SVC] = l->source_canonical_service,
        [L_SRC_CANON_REV] = l->source_canonical_revision,
        [L_SRC_WORKLOAD_NS] = l->source_workload_namespace,
        [L_SRC_PRINCIPAL] = l->source_principal,
        [L_SRC_APP] = l->source_app,
        [L_SRC_VERSION] = l->source_version,
        [L_SRC_CLUSTER] = l->source_cluster,
        [L_DST_WORKLOAD] = l->destination_workload,
        [L_DST_WORKLOAD_NS] = l->destination_workload_namespace,
        [L_DST_PRINCIPAL] = l->destination_principal,
        [L_DST_APP] = l->destination_app,
        [L_DST_VERSION] = l->destination_version,
        [L_DST_SERVICE] = l->destination_service,
        [L_DST_CANON_SVC] = l->destination_canonical_service,
        [L_DST_CANON_REV] = l->destination_canonical_revision,
        [L_DST_SERVICE_NAME] = l->destination_service_name,
        [L_DST_SERVICE_NS] = l->destination_service_namespace,
        [L_DST_CLUSTER] = l->destination_cluster,
        [L_REQUEST_PROTOCOL] = l->request_protocol,
        [L_RESPONSE_CODE] = code,
        [L_RESPONSE_FLAGS] = l->response_flags,
        [L_CSP] = l->connection_security_policy,
    };
    MW_GUARD(mw_dynbuf_add_byte(key, K_ISTIO));
    for (size_t i = 0; i < L_ISTIO_COUNT; i++)
        MW_GUARD(key_add(key, v[i], i == L_RESPONSE_FLAGS ? "-" : "unknown"));
    return MW_SUCCESS;
}

/* Key buffers hold at most MAX_LABELS values of bounded length. */
#define KEY_MAX (1 + MAX_LABELS * (2 + MW_METRICS_MAX_LABEL_LEN))

static mw_result istio_series(struct mw_metrics *m, const struct mw_istio_labels *l,
                              int response_code, struct series **out)
{
    MW_ENSURE(m != NULL && l != NULL, MW_E_INTERNAL, "metrics: NULL registry or labels");
    struct mw_dynbuf key;
    mw_dynbuf_init(&key, KEY_MAX);
    mw_result r = istio_key(l, response_code, &key);
    if (mw_ok(r))
        r = series_get(m, &key, out);
    mw_dynbuf_free(&key);
    return r;
}

static void hist_observe(struct hist *h, double v)
{
    if (isnan(v))
        return;
    size_t i = 0;
    while (i < NBUCKETS && v > mw_buckets[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

mw_result mw_metrics_request(struct mw_metrics *m, const struct mw_istio_labels *l,
                             double duration_ms, uint64_t request_bytes, uint64_t response_bytes)
{
    return mw_metrics_request_cached(m, l, NULL, duration_ms, request_bytes, response_bytes);
}

mw_result mw_metrics_request_cached(struct mw_metrics *m, const struct mw_istio_labels *l,
                                    struct mw_metrics_series_ref *ref, double duration_ms,
                                    uint64_t request_bytes, uint64_t response_bytes)
{
    struct series *s = NULL;
    if (ref != NULL && ref->series != NULL && ref->code == l->response_code &&
        ref->flags == l->response_flags)
        s = ref->series; /* series live as long as the registry */
    else
        MW_GUARD(istio_series(m, l, l != NULL ? l->response_code : 0, &s));
    if (s == NULL)
        return MW_SUCCESS;
    if (ref != NULL) {
        ref->series = s;
        ref->code = l->response_code;
        ref->flags = l->response_flags;
    }
    if (s->http == NULL) {
        s->http = calloc(1, sizeof(*s->http));
        MW_ENSURE(s->http != NULL, MW_E_NOMEM, "out of memory for request histograms");
    }
    s->http->requests++;
    hist_observe(&s->http->duration, duration_ms);
    hist_observe(&s->http->req_bytes, (double)request_bytes);
    hist_observe(&s->http->resp_bytes, (double)response_bytes);
    return MW_SUCCESS;
}

/* TCP metrics carry no response_code (Istio), so the key fixes it at 0. */
static mw_result tcp_series(struct mw_metrics *m, const struct mw_istio_labels *l,
                            struct series **out)
{
    MW_GUARD(istio_series(m, l, 0, out));
    if (*out != NULL)
        (*out)->tcp = true;
    return MW_SUCCESS;
}

mw_result mw_metrics_tcp_opened(struct mw_metrics *m, const struct mw_istio_labels *l)
{
    struct series *s;
    MW_GUARD(tcp_series(m, l, &s));
    if (s != NULL)
        s->tcp_opened++;
    return MW_SUCCESS;
}

mw_result mw_metrics_tcp_closed(struct mw_metrics *m, const struct mw_istio_labels *l)
{
    struct series *s;
    MW_GUARD(tcp_series(m, l, &s));
    if (s != NULL)
        s->tcp_closed++;
    return MW_SUCCESS;
}

mw_result mw_metrics_tcp_bytes(struct mw_metrics *m, const struct mw_istio_labels *l, uint64_t sent,
                               uint64_t received)
{
    struct series *s;
    MW_GUARD(tcp_series(m, l, &s));
    if (s != NULL) {
        s->tcp_sent += sent;
        s->tcp_received += received;
    }
    return MW_SUCCESS;
}

static mw_result count_pair(struct mw_metrics *m, enum kind kind, const char *a, const char *b)
{
    MW_ENSURE(m != NULL, MW_E_INTERNAL, "metrics: NULL registry");
    struct mw_dynbuf key;
    mw_dynbuf_init(&key, KEY_MAX);
    struct series *s = NULL;
    mw_result r = mw_dynbuf_add_byte(&key, (uint8_t)kind);
    if (mw_ok(r))
        r = key_add(&key, a, "unknown");
    if (mw_ok(r))
        r = key_add(&key, b, "unknown");
    if (mw_ok(r))
        r = series_get(m, &key, &s);
    mw_dynbuf_free(&key);
    if (mw_ok(r) && s != NULL)
        s->count++;
    return r;
}

mw_result mw_metrics_authz_denied(struct mw_metrics *m, const char *policy, const char *direction)
{
    return count_pair(m, K_AUTHZ, policy, direction);
}

mw_result mw_metrics_egress_denied(struct mw_metrics *m, const char *host, unsigned port)
{
    char p[16];
    snprintf(p, sizeof(p), "%u", port);
    return count_pair(m, K_EGRESS, host, p);
}

mw_result mw_metrics_tls_handshake(struct mw_metrics *m, const char *direction, bool resumed)
{
    return count_pair(m, K_TLS_HS, direction, resumed ? "true" : "false");
}

mw_result mw_metrics_tls_handshake_failure(struct mw_metrics *m, const char *direction,
                                           const char *reason)
{
    return count_pair(m, K_TLS_FAIL, direction, reason);
}

mw_result mw_metrics_outbound_pool(struct mw_metrics *m, const char *service, const char *event)
{
    return count_pair(m, K_POOL, service, event);
}

/* ---------------------------------------------------------------- gauges */

static bool metric_name_ok(const char *n)
{
    /* [a-zA-Z_:][a-zA-Z0-9_:]* (exposition format 0.0.4); we also bound the length. */
    size_t len = strlen(n);
    if (len == 0 || len > 200)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* Family names the registry renders itself; a gauge must not shadow them. */
static const char *const reserved_families[] = {
    "istio_requests_total",
    "istio_request_duration_milliseconds",
    "istio_request_bytes",
    "istio_response_bytes",
    "istio_tcp_connections_opened_total",
    "istio_tcp_connections_closed_total",
    "istio_tcp_received_bytes_total",
    "istio_tcp_sent_bytes_total",
    "meshward_authz_denied_total",
    "meshward_egress_denied_total",
    "meshward_tls_handshakes_total",
    "meshward_tls_handshake_failures_total",
    "meshward_outbound_pool_connections_total",
    "meshward_metrics_series_dropped_total",
};

static bool reserved_name(const char *n)
{
    for (size_t i = 0; i < MW_ARRAY_LEN(reserved_families); i++) {
        const char *f = reserved_families[i];
        size_t fl = strlen(f);
        /* The family itself, or one of a histogram's _bucket/_sum/_count series. */
        if (strncmp(n, f, fl) == 0 &&
            (n[fl] == '\0' || strcmp(n + fl, "_bucket") == 0 || strcmp(n + fl, "_sum") == 0 ||
             strcmp(n + fl, "_count") == 0))
            return true;
    }
    return false;
}

mw_result mw_metrics_gauge(struct mw_metrics *m, const char *name, const char *help, double v)
{
    MW_ENSURE(m != NULL && name != NULL, MW_E_INTERNAL, "metrics: NULL registry or gauge name");
    MW_ENSURE(metric_name_ok(name), MW_E_INPUT,
              "gauge name is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, at most 200)");
    MW_ENSURE(!reserved_name(name), MW_E_INPUT, "gauge name %s collides with a built-in family",
              name);
    for (size_t i = 0; i < m->ngauges; i++) {
        if (strcmp(m->gauges[i].name, name) == 0) {
            m->gauges[i].v = v;
            return MW_SUCCESS;
        }
    }
    MW_ENSURE(m->ngauges < MW_METRICS_MAX_GAUGES, MW_E_LIMIT, "more than %d gauges",
              MW_METRICS_MAX_GAUGES);
    struct gauge *g = &m->gauges[m->ngauges];
    g->name = strdup(name);
    g->help = strdup(help != NULL ? help : "");
    if (g->name == NULL || g->help == NULL) {
        free(g->name);
        free(g->help);
        g->name = g->help = NULL;
        MW_BAIL(MW_E_NOMEM, "out of memory for a gauge");
    }
    g->v = v;
    m->ngauges++;
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- rendering */

/* A float as Prometheus reads it: shortest text that reads back exactly. */
static mw_result add_float(struct mw_dynbuf *b, double v)
{
    if (isnan(v))
        return mw_dynbuf_add_cstr(b, "NaN");
    if (isinf(v))
        return mw_dynbuf_add_cstr(b, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 1e15)
        return mw_dynbuf_addf(b, "%" PRId64, (int64_t)v);
    char t[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(t, sizeof(t), "%.*g", prec, v);
        if (strtod(t, NULL) == v)
            break;
    }
    return mw_dynbuf_add_cstr(b, t);
}

static mw_result add_label_value(struct mw_dynbuf *b, mw_slice v)
{
    MW_GUARD(mw_dynbuf_add_byte(b, '"'));
    for (size_t i = 0; i < v.n; i++) {
        uint8_t c = v.p[i];
        if (c == '\\')
            MW_GUARD(mw_dynbuf_add(b, "\\\\", 2));
        else if (c == '"')
            MW_GUARD(mw_dynbuf_add(b, "\\\"", 2));
        else if (c == '\n')
            MW_GUARD(mw_dynbuf_add(b, "\\n", 2));
        else
            MW_GUARD(mw_dynbuf_add_byte(b, c));
    }
    return mw_dynbuf_add_byte(b, '"');
}

/* HELP text escapes backslash and newline only (format 0.0.4). */
static mw_result add_help(struct mw_dynbuf *b, const char *name, const char *help, const char *type)
{
    MW_GUARD(mw_dynbuf_addf(b, "# HELP %s ", name));
    struct mw_dynbuf clean;
    mw_dynbuf_init(&clean, 4096);
    mw_result r = mw_telemetry_add_utf8(&clean, mw_slice_cstr(help), 1024);
    for (size_t i = 0; mw_ok(r) && i < clean.n; i++) {
        uint8_t c = clean.p[i];
        if (c == '\\')
            r = mw_dynbuf_add(b, "\\\\", 2);
        else if (c == '\n')
            r = mw_dynbuf_add(b, "\\n", 2);
        else
            r = mw_dynbuf_add_byte(b, c);
    }
    mw_dynbuf_free(&clean);
    MW_GUARD(r);
    return mw_dynbuf_addf(b, "\n# TYPE %s %s\n", name, type);
}

/*
 * "{a="x",b="y"" without the closing brace, so a histogram can add le. With
 * skip_code the response_code label is left out (TCP families).
 */
static mw_result add_labels(struct mw_dynbuf *b, const struct series *s, bool skip_code)
{
    mw_slice vals[MAX_LABELS];
    size_t n = key_values(s->key, s->keylen, vals);
    const char *const *names = s->kind == K_ISTIO      ? istio_label_names
                               : s->kind == K_AUTHZ    ? authz_label_names
                               : s->kind == K_TLS_HS   ? tls_hs_label_names
                               : s->kind == K_TLS_FAIL ? tls_fail_label_names
                               : s->kind == K_POOL     ? pool_label_names
                                                       : egress_label_names;
    MW_GUARD(mw_dynbuf_add_byte(b, '{'));
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (skip_code && s->kind == K_ISTIO && i == L_RESPONSE_CODE)
            continue;
        if (!first)
            MW_GUARD(mw_dynbuf_add_byte(b, ','));
        first = false;
        MW_GUARD(mw_dynbuf_addf(b, "%s=", names[i]));
        MW_GUARD(add_label_value(b, vals[i]));
    }
    return MW_SUCCESS;
}

static mw_result add_counter_line(struct mw_dynbuf *b, const char *name, const struct series *s,
                                  bool skip_code, uint64_t v)
{
    MW_GUARD(mw_dynbuf_add_cstr(b, name));
    MW_GUARD(add_labels(b, s, skip_code));
    return mw_dynbuf_addf(b, "} %" PRIu64 "\n", v);
}

static mw_result add_histogram(struct mw_dynbuf *b, const char *name, const struct series *s,
                               const struct hist *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= NBUCKETS; i++) {
        cum += h->counts[i];
        MW_GUARD(mw_dynbuf_addf(b, "%s_bucket", name));
        MW_GUARD(add_labels(b, s, false));
        MW_GUARD(mw_dynbuf_add_cstr(b, ",le=\""));
        MW_GUARD(add_float(b, i < NBUCKETS ? mw_buckets[i] : INFINITY));
        MW_GUARD(mw_dynbuf_addf(b, "\"} %" PRIu64 "\n", cum));
    }
    MW_GUARD(mw_dynbuf_addf(b, "%s_sum", name));
    MW_GUARD(add_labels(b, s, false));
    MW_GUARD(mw_dynbuf_add_cstr(b, "} "));
    MW_GUARD(add_float(b, h->sum));
    MW_GUARD(mw_dynbuf_addf(b, "\n%s_count", name));
    MW_GUARD(add_labels(b, s, false));
    return mw_dynbuf_addf(b, "} %" PRIu64 "\n", h->count);
}

/* Order series by kind, then label values in label order (bytewise). */
static int series_cmp(const void *pa, const void *pb)
{
    const struct series *a = *(const struct series *const *)pa;
    const struct series *b = *(const struct series *const *)pb;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    mw_slice va[MAX_LABELS], vb[MAX_LABELS];
    size_t na = key_values(a->key, a->keylen, va);
    size_t nb = key_values(b->key, b->keylen, vb);
    for (size_t i = 0; i < na && i < nb; i++) {
        size_t n = va[i].n < vb[i].n ? va[i].n : vb[i].n;
        int c = n > 0 ? memcmp(va[i].p, vb[i].p, n) : 0;
        if (c != 0)
            return c;
        if (va[i].n != vb[i].n)
            return va[i].n < vb[i].n ? -1 : 1;
    }
    return na < nb ? -1 : na > nb ? 1 : 0;
}

static int gauge_cmp(const void *pa, const void *pb)
{
    const struct gauge *a = *(const struct gauge *const *)pa;
    const struct gauge *b = *(const struct gauge *const *)pb;
    return strcmp(a->name, b->name);
}

enum sel { SEL_HTTP, SEL_TCP, SEL_AUTHZ, SEL_EGRESS, SEL_TLS_HS, SEL_TLS_FAIL, SEL_POOL };

static bool selected(const struct series *s, enum sel sel)
{
    switch (sel) {
    case SEL_HTTP:
        return s->kind == K_ISTIO && s->http != NULL;
    case SEL_TCP:
        return s->kind == K_ISTIO && s->tcp;
    case SEL_AUTHZ:
        return s->kind == K_AUTHZ;
    case SEL_EGRESS:
        return s->kind == K_EGRESS;
    case SEL_TLS_HS:
        return s->kind == K_TLS_HS;
    case SEL_TLS_FAIL:
        return s->kind == K_TLS_FAIL;
    case SEL_POOL:
        return s->kind == K_POOL;
    }
    return false;
}

static bool any_selected(struct series *const *all, size_t n, enum sel sel)
{
    for (size_t i = 0; i < n; i++)
        if (selected(all[i], sel))
            return true;
    return false;
}

enum field {
    F_REQUESTS,
    F_DURATION,
    F_REQ_BYTES,
    F_RESP_BYTES,
    F_TCP_OPENED,
    F_TCP_CLOSED,
    F_TCP_RECEIVED,
    F_TCP_SENT,
    F_COUNT
};

struct family {
    const char *name, *help, *type;
    enum sel sel;
    enum field field;
};

static const struct family families[] = {
    {"istio_requests_total", "Requests handled by this proxy.", "counter", SEL_HTTP, F_REQUESTS},
    {"istio_request_duration_milliseconds", "Request duration in milliseconds.", "histogram",
     SEL_HTTP, F_DURATION},
    {"istio_request_bytes", "HTTP request body size in bytes.", "histogram", SEL_HTTP, F_REQ_BYTES},
    {"istio_response_bytes", "HTTP response body size in bytes.", "histogram", SEL_HTTP,
     F_RESP_BYTES},
    {"istio_tcp_connections_opened_total", "TCP connections opened.", "counter", SEL_TCP,
     F_TCP_OPENED},
    {"istio_tcp_connections_closed_total", "TCP connections closed.", "counter", SEL_TCP,
     F_TCP_CLOSED},
    {"istio_tcp_received_bytes_total", "Bytes received from the downstream on TCP connections.",
     "counter", SEL_TCP, F_TCP_RECEIVED},
    {"istio_tcp_sent_bytes_total", "Bytes sent to the downstream on TCP connections.", "counter",
     SEL_TCP, F_TCP_SENT},
    {"meshward_authz_denied_total", "Requests and connections denied by authorization policy.",
     "counter", SEL_AUTHZ, F_COUNT},
    {"meshward_egress_denied_total", "Outbound connections refused by egress control.", "counter",
     SEL_EGRESS, F_COUNT},
    {"meshward_tls_handshakes_total",
     "mTLS handshakes completed with the peer's identity accepted, full or resumed (TLS 1.3 PSK).",
     "counter", SEL_TLS_HS, F_COUNT},
    {"meshward_tls_handshake_failures_total", "mTLS handshakes refused or failed, by reason.",
     "counter", SEL_TLS_FAIL, F_COUNT},
    {"meshward_outbound_pool_connections_total",
     "Upstream mTLS connections of protocol http services: opened, reused (from the pool or kept "
     "from the client's previous request) and requests retried on a new connection.",
     "counter", SEL_POOL, F_COUNT},
};

static mw_result render_series(struct mw_dynbuf *b, const struct family *f, const struct series *s)
{
    switch (f->field) {
    case F_REQUESTS:
        return add_counter_line(b, f->name, s, false, s->http->requests);
    case F_DURATION:
        return add_histogram(b, f->name, s, &s->http->duration);
    case F_REQ_BYTES:
        return add_histogram(b, f->name, s, &s->http->req_bytes);
    case F_RESP_BYTES:
        return add_histogram(b, f->name, s, &s->http->resp_bytes);
    case F_TCP_OPENED:
        return add_counter_line(b, f->name, s, true, s->tcp_opened);
    case F_TCP_CLOSED:
        return add_counter_line(b, f->name, s, true, s->tcp_closed);
    case F_TCP_RECEIVED:
        return add_counter_line(b, f->name, s, true, s->tcp_received);
    case F_TCP_SENT:
        return add_counter_line(b, f->name, s, true, s->tcp_sent);
    case F_COUNT:
        return add_counter_line(b, f->name, s, false, s->count);
    }
    MW_BAIL(MW_E_INTERNAL, "metrics: unknown field");
}

static mw_result render_sorted(const struct mw_metrics *m, struct series *const *all, size_t n,
                               struct mw_dynbuf *out)
{
    for (size_t fi = 0; fi < MW_ARRAY_LEN(families); fi++) {
        const struct family *f = &families[fi];
        if (!any_selected(all, n, f->sel))
            continue;
        MW_GUARD(add_help(out, f->name, f->help, f->type));
        for (size_t i = 0; i < n; i++)
            if (selected(all[i], f->sel))
                MW_GUARD(render_series(out, f, all[i]));
    }
    MW_GUARD(add_help(out, "meshward_metrics_series_dropped_total",
                      "Metric series not recorded because the series cap was reached.", "counter"));
    MW_GUARD(
        mw_dynbuf_addf(out, "meshward_metrics_series_dropped_total %" PRIu64 "\n", m->dropped));

    const struct gauge *g[MW_METRICS_MAX_GAUGES];
    for (size_t i = 0; i < m->ngauges; i++)
        g[i] = &m->gauges[i];
    if (m->ngauges > 1)
        qsort(g, m->ngauges, sizeof(g[0]), gauge_cmp);
    for (size_t i = 0; i < m->ngauges; i++) {
        MW_GUARD(add_help(out, g[i]->name, g[i]->help, "gauge"));
        MW_GUARD(mw_dynbuf_addf(out, "%s ", g[i]->name));
        MW_GUARD(add_float(out, g[i]->v));
        MW_GUARD(mw_dynbuf_add_byte(out, '\n'));
    }
    return MW_SUCCESS;
}

mw_result mw_metrics_render(const struct mw_metrics *m, struct mw_dynbuf *out)
{
    MW_ENSURE(m != NULL, MW_E_INTERNAL, "metrics: NULL registry");
    struct series **all = NULL;
    if (m->nseries > 0) {
        all = malloc(m->nseries * sizeof(*all));
        MW_ENSURE(all != NULL, MW_E_NOMEM, "out of memory rendering metrics");
    }
    size_t n = 0;
    for (size_t i = 0; i < m->nbuckets; i++)
        for (struct series *s = m->buckets[i]; s != NULL; s = s->next)
            all[n++] = s;
    if (n > 1)
        qsort(all, n, sizeof(*all), series_cmp);
    mw_result r = render_sorted(m, all, n, out);
    free(all);
    return r;
}
