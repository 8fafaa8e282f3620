#include "testutil.h"

#include <math.h>
#include <string.h>

#include "sidecar/sidecar_metrics.h"

/* ---------------------------------------------------------------- a strict exposition checker */

/*
 * Checks text against the Prometheus text format 0.0.4 as we emit it:
 * every line is a comment (# HELP / # TYPE) or a sample; names match
 * [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*; label values
 * are quoted with only \\, \" and \n escapes; each family has exactly one
 * TYPE, before its samples, and its samples are contiguous; histogram buckets
 * are cumulative, end with le="+Inf" and match _count. Returns NULL or a
 * message naming the first problem.
 */
#define MAX_FAMILIES 64

struct checker {
    char families[MAX_FAMILIES][128];
    char types[MAX_FAMILIES][16];
    bool closed[MAX_FAMILIES];
    size_t nfam;
    int current;
    char msg[256];
    /* histogram state of the series in progress */
    char hist_labels[16384];
    double last_bucket;
    double last_le;
    bool saw_inf;
    double inf_count;
};

static bool name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':'))
        return true;
    return !first && c >= '0' && c <= '9';
}

/* Length of a metric (colon) or label name at p, 0 if none. */
static size_t name_len(const char *p, bool colon)
{
    size_t n = 0;
    while (p[n] != '\0' && name_char(p[n], n == 0, colon))
        n++;
    return n;
}

static int find_family(struct checker *c, const char *name, size_t n)
{
    for (size_t i = 0; i < c->nfam; i++)
        if (strlen(c->families[i]) == n && memcmp(c->families[i], name, n) == 0)
            return (int)i;
    return -1;
}

static const char *bad_line(struct checker *c, size_t lineno, const char *what)
{
    snprintf(c->msg, sizeof(c->msg), "line %zu: %s", lineno, what);
    return c->msg;
}

/* Parse {labels} at *pp into canon (labels without le), le into *le (NaN when absent). */
static bool parse_labels(const char **pp, char *canon, size_t canon_len, double *le,
                         const char **why)
{
    const char *p = *pp;
    size_t cn = 0;
    canon[0] = '\0';
    *le = NAN;
    if (*p != '{') {
        *pp = p;
        return true;
    }
    p++;
    char seen[32][64];
    size_t nseen = 0;
    while (*p != '}') {
        size_t ln = name_len(p, false);
        if (ln == 0 || ln >= 64) {
            *why = "bad label name";
            return false;
        }
        for (size_t i = 0; i < nseen; i++)
            if (strlen(seen[i]) == ln && memcmp(seen[i], p, ln) == 0) {
                *why = "duplicate label";
                return false;
            }
        if (nseen < 32) {
            memcpy(seen[nseen], p, ln);
            seen[nseen++][ln] = '\0';
        }
        bool is_le = ln == 2 && memcmp(p, "le", 2) == 0;
        const char *name = p;
        p += ln;
        if (p[0] != '=' || p[1] != '"') {
            *why = "label without =\"";
            return false;
        }
        p += 2;
        char val[1024];
        size_t vn = 0;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n') {
                *why = "unterminated label value";
                return false;
            }
            char ch = *p;
            if (ch == '\\') {
                p++;
                if (*p == 'n')
                    ch = '\n';
                else if (*p == '\\' || *p == '"')
                    ch = *p;
                else {
                    *why = "bad escape in label value";
                    return false;
                }
            }
            if (vn + 1 < sizeof(val))
                val[vn++] = ch;
            p++;
        }
        val[vn] = '\0';
        p++;
        if (is_le) {
            char *end;
            *le = strcmp(val, "+Inf") == 0 ? INFINITY : strtod(val, &end);
            if (strcmp(val, "+Inf") != 0 && (*end != '\0' || vn == 0)) {
                *why = "bad le value";
                return false;
            }
        } else {
            int w = snprintf(canon + cn, canon_len - cn, "%.*s=%s;", (int)ln, name, val);
            if (w < 0 || (size_t)w >= canon_len - cn) {
                *why = "labels too long for the checker";
                return false;
            }
            cn += (size_t)w;
        }
        if (*p == ',')
            p++;
        else if (*p != '}') {
            *why = "expected , or } after label value";
            return false;
        }
    }
    *pp = p + 1;
    return true;
}

static bool parse_value(const char *p, double *v)
{
    if (*p == ' ' || *p == '\t' || *p == '\0')
        return false;
    if (strcmp(p, "+Inf") == 0 || strcmp(p, "-Inf") == 0 || strcmp(p, "NaN") == 0) {
        *v = strcmp(p, "NaN") == 0 ? NAN : (p[0] == '+' ? INFINITY : -INFINITY);
        return true;
    }
    char *end;
    *v = strtod(p, &end);
    return end != p && *end == '\0';
}

static const char *check_exposition(const char *text, struct checker *c)
{
    memset(c, 0, sizeof(*c));
    c->current = -1;
    size_t lineno = 0;
    const char *p = text;
    if (*p == '\0')
        return NULL;
    while (*p != '\0') {
        lineno++;
        const char *nl = strchr(p, '\n');
        if (nl == NULL)
            return bad_line(c, lineno, "last line not terminated by \\n");
        char line[8192];
        size_t n = (size_t)(nl - p);
        if (n >= sizeof(line))
            return bad_line(c, lineno, "line too long for the checker");
        memcpy(line, p, n);
        line[n] = '\0';
        p = nl + 1;
        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
            bool type = line[2] == 'T';
            const char *q = line + 7;
            size_t ln = name_len(q, true);
            if (ln == 0 || (q[ln] != ' '))
                return bad_line(c, lineno, "bad name in comment");
            int f = find_family(c, q, ln);
            if (f < 0) {
                if (c->nfam == MAX_FAMILIES || ln >= 128)
                    return bad_line(c, lineno, "too many families");
                f = (int)c->nfam++;
                memcpy(c->families[f], q, ln);
                c->families[f][ln] = '\0';
            } else if (c->closed[f] || (c->current != f && c->current >= 0))
                return bad_line(c, lineno, "family comment after its samples or split family");
            if (c->current >= 0 && c->current != f)
                c->closed[c->current] = true;
            if (c->current != f)
                c->hist_labels[0] = '\0'; /* a new family starts its own series */
            c->current = f;
            if (type) {
                if (c->types[f][0] != '\0')
                    return bad_line(c, lineno, "second TYPE for a family");
                const char *t = q + ln + 1;
                if (strcmp(t, "counter") != 0 && strcmp(t, "gauge") != 0 &&
                    strcmp(t, "histogram") != 0 && strcmp(t, "summary") != 0 &&
                    strcmp(t, "untyped") != 0)
                    return bad_line(c, lineno, "unknown TYPE");
                snprintf(c->types[f], sizeof(c->types[f]), "%s", t);
            } else {
                const char *h = q + ln + 1;
                for (; *h != '\0'; h++)
                    if (*h == '\\' && h[1] != '\\' && h[1] != 'n')
                        return bad_line(c, lineno, "bad escape in HELP");
                    else if (*h == '\\')
                        h++;
            }
            continue;
        }
        if (line[0] == '#')
            return bad_line(c, lineno, "comment that is neither HELP nor TYPE");
        size_t ln = name_len(line, true);
        if (ln == 0)
            return bad_line(c, lineno, "sample without a metric name");
        const char *q = line + ln;
        char canon[16384];
        double le;
        const char *why = NULL;
        if (!parse_labels(&q, canon, sizeof(canon), &le, &why))
            return bad_line(c, lineno, why);
        if (*q != ' ')
            return bad_line(c, lineno, "expected one space before the value");
        double v;
        if (!parse_value(q + 1, &v))
            return bad_line(c, lineno, "bad sample value");
        /* Which family? The name itself, or a histogram's _bucket/_sum/_count. */
        int f = find_family(c, line, ln);
        const char *suffix = "";
        if (f < 0) {
            static const char *const sfx[] = {"_bucket", "_sum", "_count"};
            for (size_t i = 0; i < 3 && f < 0; i++) {
                size_t sl = strlen(sfx[i]);
                if (ln > sl && memcmp(line + ln - sl, sfx[i], sl) == 0) {
                    f = find_family(c, line, ln - sl);
                    if (f >= 0)
                        suffix = sfx[i];
                }
            }
        }
        if (f < 0 || c->types[f][0] == '\0')
            return bad_line(c, lineno, "sample of a family without TYPE");
        if (f != c->current || c->closed[f])
            return bad_line(c, lineno, "sample outside its family's block");
        bool hist = strcmp(c->types[f], "histogram") == 0;
        if (hist != (suffix[0] != '\0'))
            return bad_line(c, lineno, "histogram suffix mismatch");
        if (hist && strcmp(suffix, "_bucket") == 0) {
            if (isnan(le))
                return bad_line(c, lineno, "bucket without le");
            if (strcmp(canon, c->hist_labels) != 0) {
                if (c->hist_labels[0] != '\0' && !c->saw_inf)
                    return bad_line(c, lineno, "previous series has no +Inf bucket");
                snprintf(c->hist_labels, sizeof(c->hist_labels), "%s", canon);
                c->last_bucket = 0;
                c->last_le = -INFINITY;
                c->saw_inf = false;
            }
            if (!(le > c->last_le))
                return bad_line(c, lineno, "le not increasing");
            if (v < c->last_bucket)
                return bad_line(c, lineno, "buckets not cumulative");
            c->last_le = le;
            c->last_bucket = v;
            if (isinf(le)) {
                c->saw_inf = true;
                c->inf_count = v;
            }
        } else if (hist) {
            if (!isnan(le))
                return bad_line(c, lineno, "le on _sum/_count");
            if (strcmp(canon, c->hist_labels) != 0 || !c->saw_inf)
                return bad_line(c, lineno, "_sum/_count without the series' buckets");
            if (strcmp(suffix, "_count") == 0 && v != c->inf_count)
                return bad_line(c, lineno, "_count differs from the +Inf bucket");
        } else if (!isnan(le) && strcmp(c->types[f], "summary") != 0) {
            return bad_line(c, lineno, "le label on a non-histogram");
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- helpers */

static struct mw_metrics *new_metrics(size_t cap)
{
    struct mw_metrics *m = NULL;
    mw_assert_ok(mw_metrics_new_limited(cap, &m));
    return m;
}

static char *render(const struct mw_metrics *m)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 16u << 20);
    mw_assert_ok(mw_metrics_render(m, &b));
    size_t n;
    uint8_t *p = mw_dynbuf_take(&b, &n);
    if (p == NULL)
        return strdup("");
    return (char *)p;
}

static void assert_valid(const char *text)
{
    struct checker c;
    const char *err = check_exposition(text, &c);
    if (err != NULL)
        fail_msg("exposition check failed: %s\n%s", err, text);
}

static const struct mw_istio_labels inbound = {
    .reporter = "destination",
    .source_workload = "client",
    .source_workload_namespace = "demo",
    .source_principal = "spiffe://example.org/ns/demo/sa/client",
    .source_app = "client",
    .source_version = "v1",
    .source_cluster = "c1",
    .destination_workload = "server",
    .destination_workload_namespace = "demo",
    .destination_principal = "spiffe://example.org/ns/demo/sa/server",
    .destination_app = "server",
    .destination_version = "v2",
    .destination_service = "server.demo.svc.cluster.local",
    .destination_service_name = "server",
    .destination_service_namespace = "demo",
    .destination_cluster = "c1",
    .request_protocol = "http",
    .response_code = 200,
    .response_flags = "-",
    .connection_security_policy = "mutual_tls",
};

#define INBOUND_LABELS                                                                             \
    "reporter=\"destination\",source_workload=\"client\",source_canonical_service=\"unknown\","    \
    "source_canonical_revision=\"unknown\",source_workload_namespace=\"demo\","                    \
    "source_principal=\"spiffe://example.org/ns/demo/sa/client\",source_app=\"client\","           \
    "source_version=\"v1\",source_cluster=\"c1\",destination_workload=\"server\","                 \
    "destination_workload_namespace=\"demo\","                                                     \
    "destination_principal=\"spiffe://example.org/ns/demo/sa/server\",destination_app=\"server\"," \
    "destination_version=\"v2\",destination_service=\"server.demo.svc.cluster.local\","            \
    "destination_canonical_service=\"unknown\",destination_canonical_revision=\"unknown\","        \
    "destination_service_name=\"server\",destination_service_namespace=\"demo\","                  \
    "destination_cluster=\"c1\",request_protocol=\"http\""

#define DROPPED_FOOTER                                                                            \
    "# HELP meshward_metrics_series_dropped_total Metric series not recorded because the series " \
    "cap was reached.\n"                                                                          \
    "# TYPE meshward_metrics_series_dropped_total counter\n"

/* ---------------------------------------------------------------- tests */

static void test_empty(void **state)
{
    struct mw_metrics *m = new_metrics(16);
    char *t = render(m);
    assert_string_equal(t, DROPPED_FOOTER "meshward_metrics_series_dropped_total 0\n");
    assert_valid(t);
    free(t);
    mw_metrics_free(m);
}

static void test_golden_request(void **state)
{
    struct mw_metrics *m = new_metrics(16);
    mw_assert_ok(mw_metrics_request(m, &inbound, 3.5, 100, 2048));
    mw_assert_ok(mw_metrics_request(m, &inbound, 1, 0, 5));
    char *t = render(m);
    /* Durations 3.5 and 1: 1 <= le=1 (inclusive), 3.5 in le=5. Bytes 0 and 100; 5 and 2048. */
    const char *want =
        "# HELP istio_requests_total Requests handled by this proxy.\n"
        "# TYPE istio_requests_total counter\n"
        "istio_requests_total{" INBOUND_LABELS
        ",response_code=\"200\",response_flags=\"-\",connection_security_policy=\"mutual_tls\"} 2\n"
        "# HELP istio_request_duration_milliseconds Request duration in milliseconds.\n"
        "# TYPE istio_request_duration_milliseconds histogram\n";
    assert_true(strncmp(t, want, strlen(want)) == 0);
    const char *l = INBOUND_LABELS ",response_code=\"200\",response_flags=\"-\","
                                   "connection_security_policy=\"mutual_tls\"";
    static const char *const les[] = {"0.5",    "1",      "5",       "10",      "25",
                                      "50",     "100",    "250",     "500",     "1000",
                                      "2500",   "5000",   "10000",   "30000",   "60000",
                                      "300000", "600000", "1800000", "3600000", "+Inf"};
    static const int dur_cum[] = {0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
    static const int req_cum[] = {1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
    static const int resp_cum[] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
    struct {
        const char *name;
        const int *cum;
        const char *sum;
    } h[] = {{"istio_request_duration_milliseconds", dur_cum, "4.5"},
             {"istio_request_bytes", req_cum, "100"},
             {"istio_response_bytes", resp_cum, "2053"}};
    for (size_t k = 0; k < 3; k++) {
        char line[4096];
        for (size_t i = 0; i < 20; i++) {
            snprintf(line, sizeof(line), "\n%s_bucket{%s,le=\"%s\"} %d\n", h[k].name, l, les[i],
                     h[k].cum[i]);
            if (strstr(t, line) == NULL)
                fail_msg("missing %s in\n%s", line, t);
        }
        snprintf(line, sizeof(line), "\n%s_sum{%s} %s\n%s_count{%s} 2\n", h[k].name, l, h[k].sum,
                 h[k].name, l);
        if (strstr(t, line) == NULL)
            fail_msg("missing %s in\n%s", line, t);
    }
    assert_valid(t);
    free(t);
    mw_metrics_free(m);
}

static void test_golden_small_families(void **state)
{
    struct mw_metrics *m = new_metrics(16);
    mw_assert_ok(mw_metrics_authz_denied(m, "demo/deny-all", "inbound"));
    mw_assert_ok(mw_metrics_authz_denied(m, "demo/deny-all", "inbound"));
    mw_assert_ok(mw_metrics_authz_denied(m, "demo/allow-get", "inbound"));
    mw_assert_ok(mw_metrics_egress_denied(m, "example.com", 443));
    mw_assert_ok(mw_metrics_gauge(m, "meshward_svid_expiry_timestamp_seconds",
                                  "When the SVID expires.", 1767225600));
    mw_assert_ok(mw_metrics_gauge(m, "meshward_config_age_seconds", "Age of the config.", 2.25));
    mw_assert_ok(mw_metrics_gauge(m, "meshward_config_age_seconds", "Age of the config.", 0.1));
    char *t = render(m);
    const char *want =
        "# HELP meshward_authz_denied_total Requests and connections denied by authorization "
        "policy.\n"
        "# TYPE meshward_authz_denied_total counter\n"
        "meshward_authz_denied_total{policy=\"demo/allow-get\",direction=\"inbound\"} 1\n"
        "meshward_authz_denied_total{policy=\"demo/deny-all\",direction=\"inbound\"} 2\n"
        "# HELP meshward_egress_denied_total Outbound connections refused by egress control.\n"
        "# TYPE meshward_egress_denied_total counter\n"
        "meshward_egress_denied_total{host=\"example.com\",port=\"443\"} 1\n" DROPPED_FOOTER
        "meshward_metrics_series_dropped_total 0\n"
        "# HELP meshward_config_age_seconds Age of the config.\n"
        "# TYPE meshward_config_age_seconds gauge\n"
        "meshward_config_age_seconds 0.1\n"
        "# HELP meshward_svid_expiry_timestamp_seconds When the SVID expires.\n"
        "# TYPE meshward_svid_expiry_timestamp_seconds gauge\n"
        "meshward_svid_expiry_timestamp_seconds 1767225600\n";
    assert_string_equal(t, want);
    assert_valid(t);
    free(t);
    mw_metrics_free(m);
}

/* The TLS handshake families: counters by direction and resumed / by direction and reason. */
static void test_tls_handshakes(void **state)
{
    struct mw_metrics *m = new_metrics(16);
    mw_assert_ok(mw_metrics_tls_handshake(m, "outbound", false));
    mw_assert_ok(mw_metrics_tls_handshake(m, "outbound", true));
    mw_assert_ok(mw_metrics_tls_handshake(m, "outbound", true));
    mw_assert_ok(mw_metrics_tls_handshake(m, "inbound", true));
    mw_assert_ok(mw_metrics_tls_handshake_failure(m, "inbound", "plaintext"));
    mw_assert_ok(mw_metrics_tls_handshake_failure(m, "inbound", "plaintext"));
    mw_assert_ok(mw_metrics_tls_handshake_failure(m, "outbound", "identity_mismatch"));
    mw_assert_ok(mw_metrics_tls_handshake_failure(m, "inbound", NULL));
    char *t = render(m);
    const char *want =
        "# HELP meshward_tls_handshakes_total mTLS handshakes completed with the peer's identity "
        "accepted, full or resumed (TLS 1.3 PSK).\n"
        "# TYPE meshward_tls_handshakes_total counter\n"
        "meshward_tls_handshakes_total{direction=\"inbound\",resumed=\"true\"} 1\n"
        "meshward_tls_handshakes_total{direction=\"outbound\",resumed=\"false\"} 1\n"
        "meshward_tls_handshakes_total{direction=\"outbound\",resumed=\"true\"} 2\n"
        "# HELP meshward_tls_handshake_failures_total mTLS handshakes refused or failed, by "
        "reason.\n"
        "# TYPE meshward_tls_handshake_failures_total counter\n"
        "meshward_tls_handshake_failures_total{direction=\"inbound\",reason=\"plaintext\"} 2\n"
        "meshward_tls_handshake_failures_total{direction=\"inbound\",reason=\"unknown\"} 1\n"
        "meshward_tls_handshake_failures_total{direction=\"outbound\",reason=\"identity_mismatch\"}"
        " "
        "1\n" DROPPED_FOOTER "meshward_metrics_series_dropped_total 0\n";
    assert_string_equal(t, want);
    assert_valid(t);
    free(t);
    /* Built-in families: a gauge cannot shadow them. */
    mw_assert_fails(mw_metrics_gauge(m, "meshward_tls_handshakes_total", "x", 1), MW_E_INPUT);
    mw_assert_fails(mw_metrics_gauge(m, "meshward_tls_handshake_failures_total", "x", 1),
                    MW_E_INPUT);
    mw_metrics_free(m);
}

static void test_tcp(void **state)
{
    struct mw_metrics *m = new_metrics(16);
    struct mw_istio_labels l = {.reporter = "destination",
                                .request_protocol = "tcp",
                                .response_code = 503,
                                .connection_security_policy = "none"};
    mw_assert_ok(mw_metrics_tcp_opened(m, &l));
    mw_assert_ok(mw_metrics_tcp_bytes(m, &l, 10, 20));
    mw_assert_ok(mw_metrics_tcp_bytes(m, &l, 1, 2));
    mw_assert_ok(mw_metrics_tcp_closed(m, &l));
    char *t = render(m);
    /* NULL → "unknown", response_flags NULL → "-", and no response_code on TCP families. */
    const char *labels =
        "{reporter=\"destination\",source_workload=\"unknown\",source_canonical_service="
        "\"unknown\","
        "source_canonical_revision=\"unknown\",source_workload_namespace=\"unknown\","
        "source_principal=\"unknown\",source_app=\"unknown\",source_version=\"unknown\","
        "source_cluster=\"unknown\",destination_workload=\"unknown\","
        "destination_workload_namespace=\"unknown\",destination_principal=\"unknown\","
        "destination_app=\"unknown\",destination_version=\"unknown\","
        "destination_service=\"unknown\",destination_canonical_service=\"unknown\","
        "destination_canonical_revision=\"unknown\",destination_service_name=\"unknown\","
        "destination_service_namespace=\"unknown\",destination_cluster=\"unknown\","
        "request_protocol=\"tcp\",response_flags=\"-\",connection_security_policy=\"none\"}";
    char want[8192];
    snprintf(want, sizeof(want),
             "# HELP istio_tcp_connections_opened_total TCP connections opened.\n"
             "# TYPE istio_tcp_connections_opened_total counter\n"
             "istio_tcp_connections_opened_total%s 1\n"
             "# HELP istio_tcp_connections_closed_total TCP connections closed.\n"
             "# TYPE istio_tcp_connections_closed_total counter\n"
             "istio_tcp_connections_closed_total%s 1\n"
             "# HELP istio_tcp_received_bytes_total Bytes received from the downstream on TCP "
             "connections.\n"
             "# TYPE istio_tcp_received_bytes_total counter\n"
             "istio_tcp_received_bytes_total%s 22\n"
             "# HELP istio_tcp_sent_bytes_total Bytes sent to the downstream on TCP connections.\n"
             "# TYPE istio_tcp_sent_bytes_total counter\n"
             "istio_tcp_sent_bytes_total%s 11\n" DROPPED_FOOTER
             "meshward_metrics_series_dropped_total 0\n",
             labels, labels, labels, labels);
    assert_string_equal(t, want);
    assert_valid(t);
    free(t);
    mw_metrics_free(m);
}

static void test_bucket_boundaries(void **state)
{
    struct mw_metrics *m = new_metrics(16);
    /* On a bound (le is inclusive), just above it, far above the last, zero, NaN ignored. */
    static const double obs[] = {0.5, 0.5000001, 3600000, 3600000.5, 0, NAN, 1e300};
    for (size_t i = 0; i < MW_ARRAY_LEN(obs); i++)
        mw_assert_ok(mw_metrics_request(m, &inbound, obs[i], 0, 0));
    char *t = render(m);
    const char *l = INBOUND_LABELS ",response_code=\"200\",response_flags=\"-\","
                                   "connection_security_policy=\"mutual_tls\"";
    char want[4096];
    struct {
        const char *le;
        int cum;
    } cases[] = {{"0.5", 2}, {"1", 3}, {"1800000", 3}, {"3600000", 4}, {"+Inf", 6}};
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        snprintf(want, sizeof(want),
                 "istio_request_duration_milliseconds_bucket{%s,le=\"%s\"} %d\n", l, cases[i].le,
                 cases[i].cum);
        if (strstr(t, want) == NULL)
            fail_msg("missing %s", want);
    }
    snprintf(want, sizeof(want), "istio_request_duration_milliseconds_count{%s} 6\n", l);
    assert_non_null(strstr(t, want));
    /* Requests are counted even when the duration is NaN. */
    snprintf(want, sizeof(want), "istio_requests_total{%s} 7\n", l);
    assert_non_null(strstr(t, want));
    assert_valid(t);
    free(t);
    mw_metrics_free(m);
}

static void test_hostile_labels(void **state)
{
    struct mw_metrics *m = new_metrics(64);
    static const char *const hostile[] = {
        "a\"b",
        "back\\slash",
        "new\nline} 1\nfake_metric 2",
        "\"}",
        "\\\"",
        "\xff\xfe",
        "tr\xc3",
        "ok\xe2\x82\xacok",
        "\xed\xa0\x80",
        "x=\"y\",z",
        "\r\t",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(hostile); i++) {
        mw_assert_ok(mw_metrics_egress_denied(m, hostile[i], 1));
        struct mw_istio_labels l = inbound;
        l.source_principal = hostile[i];
        l.destination_service = hostile[i];
        mw_assert_ok(mw_metrics_request(m, &l, 1, 1, 1));
    }
    char *t = render(m);
    assert_valid(t);
    assert_non_null(strstr(t, "host=\"a\\\"b\""));
    assert_non_null(strstr(t, "host=\"back\\\\slash\""));
    assert_non_null(strstr(t, "host=\"new\\nline} 1\\nfake_metric 2\""));
    assert_non_null(strstr(t, "host=\"\\\\\\\"\""));
    /* Invalid UTF-8 becomes U+FFFD; valid multi-byte text is kept. */
    assert_non_null(strstr(t, "host=\"\xef\xbf\xbd\xef\xbf\xbd\""));
    assert_non_null(strstr(t, "host=\"tr\xef\xbf\xbd\""));
    assert_non_null(strstr(t, "host=\"ok\xe2\x82\xacok\""));
    assert_null(strstr(t, "\nfake_metric"));
    free(t);
    mw_metrics_free(m);
}

static void test_label_truncation(void **state)
{
    struct mw_metrics *m = new_metrics(16);
    char big[4000];
    memset(big, 'h', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    /* A multi-byte character straddling the cut must not be split. */
    big[MW_METRICS_MAX_LABEL_LEN - 1] = '\xc3';
    big[MW_METRICS_MAX_LABEL_LEN] = '\xa9';
    mw_assert_ok(mw_metrics_egress_denied(m, big, 443));
    char *t = render(m);
    assert_valid(t);
    const char *h = strstr(t, "host=\"");
    assert_non_null(h);
    h += 6;
    size_t n = strcspn(h, "\"");
    assert_int_equal(n, MW_METRICS_MAX_LABEL_LEN - 1);
    /* Two values equal up to the cut are one series. */
    big[3000] = 'y';
    mw_assert_ok(mw_metrics_egress_denied(m, big, 443));
    free(t);
    t = render(m);
    assert_non_null(strstr(t, "\",port=\"443\"} 2\n"));
    free(t);
    mw_metrics_free(m);
}

static void test_series_cap(void **state)
{
    struct mw_metrics *m = new_metrics(3);
    char host[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(host, sizeof(host), "h%04d.example", i);
        mw_assert_ok(mw_metrics_egress_denied(m, host, 443));
    }
    /* Existing series keep counting after the cap is reached. */
    mw_assert_ok(mw_metrics_egress_denied(m, "h0001.example", 443));
    mw_assert_ok(mw_metrics_request(m, &inbound, 1, 1, 1));
    mw_assert_ok(mw_metrics_authz_denied(m, "p", "inbound"));
    assert_int_equal(mw_metrics_series_dropped(m), 999);
    char *t = render(m);
    assert_valid(t);
    assert_non_null(strstr(t, "meshward_metrics_series_dropped_total 999\n"));
    assert_non_null(strstr(t, "host=\"h0001.example\",port=\"443\"} 2\n"));
    assert_null(strstr(t, "h0003.example"));
    assert_null(strstr(t, "istio_requests_total"));
    size_t lines = 0;
    for (const char *p = t; *p != '\0'; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2 + 3 + 2 + 1);
    free(t);
    mw_metrics_free(m);
    mw_assert_fails(mw_metrics_new_limited(0, &m), MW_E_INPUT);
}

static void test_deterministic_order(void **state)
{
    /* Two registries fed the same series in different orders render the same bytes. */
    struct mw_metrics *a = new_metrics(256), *b = new_metrics(256);
    char host[32];
    for (int i = 0; i < 100; i++) {
        snprintf(host, sizeof(host), "h%d", i);
        mw_assert_ok(mw_metrics_egress_denied(a, host, (unsigned)i));
        snprintf(host, sizeof(host), "h%d", 99 - i);
        mw_assert_ok(mw_metrics_egress_denied(b, host, (unsigned)(99 - i)));
        struct mw_istio_labels l = inbound;
        l.response_code = 200 + i;
        mw_assert_ok(mw_metrics_request(a, &l, i, 0, 0));
        l.response_code = 200 + (99 - i);
        mw_assert_ok(mw_metrics_request(b, &l, 99 - i, 0, 0));
    }
    char *ta = render(a), *tb = render(b);
    assert_string_equal(ta, tb);
    assert_valid(ta);
    /* Sorted bytewise: "h0" < "h1" < "h10". */
    const char *h0 = strstr(ta, "host=\"h0\""), *h1 = strstr(ta, "host=\"h1\"");
    const char *h10 = strstr(ta, "host=\"h10\"");
    assert_true(h0 != NULL && h1 != NULL && h10 != NULL && h0 < h1 && h1 < h10);
    free(ta);
    free(tb);
    mw_metrics_free(a);
    mw_metrics_free(b);
}

/* The cached path counts into exactly the series the full path finds, code and flags included. */
static void test_request_cached(void **state)
{
    struct mw_metrics *a = new_metrics(256), *b = new_metrics(256);
    struct mw_metrics_series_ref ref = {0};
    static const int codes[] = {200, 200, 404, 404, 200, 503, 200};
    for (size_t i = 0; i < MW_ARRAY_LEN(codes); i++) {
        struct mw_istio_labels l = inbound;
        l.response_code = codes[i];
        l.response_flags = codes[i] == 503 ? "UF" : "-";
        mw_assert_ok(mw_metrics_request(a, &l, (double)i, 10, 20));
        mw_assert_ok(mw_metrics_request_cached(b, &l, &ref, (double)i, 10, 20));
        assert_non_null(ref.series);
        assert_int_equal(ref.code, codes[i]);
    }
    char *ta = render(a), *tb = render(b);
    assert_string_equal(ta, tb);
    assert_non_null(strstr(tb, "response_code=\"404\""));
    free(ta);
    free(tb);
    mw_metrics_free(a);
    mw_metrics_free(b);
}

static void test_gauge_rejects(void **state)
{
    struct mw_metrics *m = new_metrics(16);
    static const char *const bad[] = {"",
                                      "1abc",
                                      "has space",
                                      "dash-name",
                                      "quote\"",
                                      "istio_requests_total",
                                      "istio_request_bytes_bucket",
                                      "istio_request_duration_milliseconds_count",
                                      "meshward_metrics_series_dropped_total"};
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++)
        mw_assert_fails(mw_metrics_gauge(m, bad[i], "h", 1), MW_E_INPUT);
    mw_assert_ok(mw_metrics_gauge(m, "ok:name_1", "help with \\ and\nnewline", -0.5));
    mw_assert_ok(mw_metrics_gauge(m, "inf_gauge", "", INFINITY));
    mw_assert_ok(mw_metrics_gauge(m, "nan_gauge", "", NAN));
    char *t = render(m);
    assert_valid(t);
    assert_non_null(strstr(t, "# HELP ok:name_1 help with \\\\ and\\nnewline\n"));
    assert_non_null(strstr(t, "\nok:name_1 -0.5\n"));
    assert_non_null(strstr(t, "\ninf_gauge +Inf\n"));
    assert_non_null(strstr(t, "\nnan_gauge NaN\n"));
    free(t);
    char name[32];
    for (int i = 3; i < MW_METRICS_MAX_GAUGES; i++) {
        snprintf(name, sizeof(name), "g%d", i);
        mw_assert_ok(mw_metrics_gauge(m, name, "", i));
    }
    mw_assert_fails(mw_metrics_gauge(m, "one_too_many", "", 1), MW_E_LIMIT);
    mw_metrics_free(m);
}

/* The checker itself must reject what it is meant to catch. */
static void test_checker_rejects(void **state)
{
    static const char *const bad[] = {
        "x 1\n",                                                             /* no TYPE */
        "# TYPE x counter\n# TYPE x counter\nx 1\n",                         /* two TYPEs */
        "# TYPE x counter\nx{a=\"b} 1\n",                                    /* unterminated */
        "# TYPE x counter\nx{a=\"\\t\"} 1\n",                                /* bad escape */
        "# TYPE x counter\nx{1a=\"b\"} 1\n",                                 /* label name */
        "# TYPE x counter\nx{a=\"b\",a=\"c\"} 1\n",                          /* duplicate label */
        "# TYPE x counter\nx 1",                                             /* no final newline */
        "# TYPE x counter\nx abc\n",                                         /* value */
        "# TYPE x counter\nx  1\n",                                          /* two spaces */
        "# TYPE x counter\nx 1\n# TYPE y gauge\ny 1\nx 2\n",                 /* split family */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n",  /* not cumulative */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",    /* no +Inf */
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 2\n", /* count */
        "# TYPE x-y counter\n",                                              /* name */
        "# TYPE x widget\n",                                                 /* type */
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        struct checker c;
        if (check_exposition(bad[i], &c) == NULL)
            fail_msg("checker accepted case %zu: %s", i, bad[i]);
    }
    struct checker c;
    assert_null(check_exposition("# HELP h x\n# TYPE h histogram\nh_bucket{a=\"1\",le=\"0.5\"} 0\n"
                                 "h_bucket{a=\"1\",le=\"+Inf\"} 1\nh_sum{a=\"1\"} 3\n"
                                 "h_count{a=\"1\"} 1\n",
                                 &c));
}

static void test_utf8_helper(void **state)
{
    struct {
        const char *in;
        size_t max;
        const char *want;
    } cases[] = {
        {"plain", 100, "plain"},
        {"\xc0\xaf", 100, "\xef\xbf\xbd\xef\xbf\xbd"}, /* overlong '/' */
        {"\xf4\x90\x80\x80", 100,
         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > 10FFFF */
        {"\xf0\x9f\x98\x80", 100, "\xf0\x9f\x98\x80"},
        {"ab\xf0\x9f\x98\x80", 5, "ab"}, /* no split character */
        {"abc", 0, ""},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct mw_dynbuf b;
        mw_dynbuf_init(&b, 1024);
        mw_assert_ok(mw_telemetry_add_utf8(&b, mw_slice_cstr(cases[i].in), cases[i].max));
        assert_string_equal(mw_dynbuf_cstr(&b), cases[i].want);
        mw_dynbuf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_golden_request),
        cmocka_unit_test(test_golden_small_families),
        cmocka_unit_test(test_tls_handshakes),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_request_cached),
        cmocka_unit_test(test_bucket_boundaries),
        cmocka_unit_test(test_hostile_labels),
        cmocka_unit_test(test_label_truncation),
        cmocka_unit_test(test_series_cap),
        cmocka_unit_test(test_deterministic_order),
        cmocka_unit_test(test_gauge_rejects),
        cmocka_unit_test(test_checker_rejects),
        cmocka_unit_test(test_utf8_helper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
