/*
 * SidecarConfig (meshward.io/v1alpha1) and EgressPolicy files: strict
 * validation, every unknown key refused, errors as file:line:col.
 */
#include <arpa/inet.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include <meshward/ca_auth.h>
#include <meshward/conf.h>

#include "sidecar/sidecar_internal.h"

#define API_VERSION "meshward.io/v1alpha1"
#define MAX_ITEMS   4096

static const struct mw_conf_limits cfg_limits = {
    .max_bytes = 4u << 20,
    .max_depth = 16,
    .max_nodes = 200000,
    .max_scalar = 8192,
    .max_docs = 64,
};

/* ---------------------------------------------------------------- ownership */

static void *own(struct mw_sidecar_config *c, void *p)
{
    if (p == NULL)
        return NULL;
    if (c->n_owned == c->cap_owned) {
        size_t cap = c->cap_owned ? c->cap_owned * 2 : 32;
        void **n = realloc(c->owned, cap * sizeof(*n));
        if (n == NULL) {
            free(p);
            return NULL;
        }
        c->owned = n;
        c->cap_owned = cap;
    }
    c->owned[c->n_owned++] = p;
    return p;
}

static mw_result alloc_array(struct mw_sidecar_config *c, size_t n, size_t size, void **out)
{
    void *p = own(c, calloc(n ? n : 1, size));
    MW_ENSURE(p != NULL, MW_E_NOMEM, "out of memory");
    *out = p;
    return MW_SUCCESS;
}

static mw_result dup_str(struct mw_sidecar_config *c, const char *s, const char **out)
{
    char *p = own(c, strdup(s));
    MW_ENSURE(p != NULL, MW_E_NOMEM, "out of memory");
    *out = p;
    return MW_SUCCESS;
}

void mw_sidecar_config_free(struct mw_sidecar_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->n_owned; i++)
        free(cfg->owned[i]);
    free(cfg->owned);
    free(cfg);
}

/* ---------------------------------------------------------------- node readers */

static mw_result fail_at(const struct mw_node *n, const char *fmt, ...) MW_PRINTF(2, 3);
static mw_result fail_at(const struct mw_node *n, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mw_node_error(n, MW_E_INPUT, "%s", msg);
    return MW_FAILURE;
}

/* Refuse keys other than the allowed ones (a misspelt key must not be ignored). */
static mw_result check_keys(const struct mw_node *map, const char *what, const char *const *keys)
{
    if (mw_node_kind(map) != MW_NODE_MAP)
        return fail_at(map, "%s must be a mapping", what);
    for (size_t i = 0; i < mw_node_len(map); i++) {
        const struct mw_node *k = mw_node_key_at(map, i);
        const char *name = mw_node_str(k);
        bool known = false;
        for (size_t j = 0; keys[j] != NULL && name != NULL; j++)
            known = known || strcmp(keys[j], name) == 0;
        if (!known) {
            mw_node_error(k, MW_E_INPUT, "unknown key \"%s\" in %s", name ? name : "?", what);
            return MW_FAILURE;
        }
    }
    return MW_SUCCESS;
}

static mw_result get_str(struct mw_sidecar_config *c, const struct mw_node *map, const char *key,
                         bool required, const char **out)
{
    const struct mw_node *n = mw_node_get(map, key);
    if (n == NULL) {
        if (required) {
            mw_node_error(map, MW_E_INPUT, "missing required key \"%s\"", key);
            return MW_FAILURE;
        }
        return MW_SUCCESS;
    }
    if (mw_node_kind(n) != MW_NODE_SCALAR || mw_node_is_null(n)) {
        mw_node_error(n, MW_E_INPUT, "\"%s\" must be a string", key);
        return MW_FAILURE;
    }
    mw_slice s = mw_node_slice(n);
    if (s.n == 0 || memchr(s.p, 0, s.n) != NULL) {
        mw_node_error(n, MW_E_INPUT, "\"%s\" must be a non-empty string without NUL", key);
        return MW_FAILURE;
    }
    return dup_str(c, mw_node_str(n), out);
}

static mw_result get_port(const struct mw_node *map, const char *key, bool required, uint16_t *out)
{
    const struct mw_node *n = mw_node_get(map, key);
    if (n == NULL) {
        if (required) {
            mw_node_error(map, MW_E_INPUT, "missing required key \"%s\"", key);
            return MW_FAILURE;
        }
        return MW_SUCCESS;
    }
    int64_t v;
    if (mw_failed(mw_node_i64(n, 1, 65535, &v))) {
        mw_node_error(n, MW_E_INPUT, "\"%s\" must be a port number in 1..65535", key);
        return MW_FAILURE;
    }
    *out = (uint16_t)v;
    return MW_SUCCESS;
}

static mw_result get_seconds(const struct mw_node *map, const char *key, double *out)
{
    const struct mw_node *n = mw_node_get(map, key);
    if (n == NULL)
        return MW_SUCCESS;
    uint64_t s;
    if (mw_node_kind(n) != MW_NODE_SCALAR ||
        mw_failed(mw_parse_duration(mw_node_slice(n), 86400, key, &s)) || s == 0) {
        mw_node_error(n, MW_E_INPUT, "\"%s\" must be a duration like 30s (1s..24h)", key);
        return MW_FAILURE;
    }
    *out = (double)s;
    return MW_SUCCESS;
}

static mw_result get_seq(const struct mw_node *map, const char *key, const struct mw_node **out)
{
    const struct mw_node *n = mw_node_get(map, key);
    *out = NULL;
    if (n == NULL || mw_node_is_null(n))
        return MW_SUCCESS;
    if (mw_node_kind(n) != MW_NODE_SEQ) {
        mw_node_error(n, MW_E_INPUT, "\"%s\" must be a list", key);
        return MW_FAILURE;
    }
    if (mw_node_len(n) > MAX_ITEMS) {
        mw_node_error(n, MW_E_LIMIT, "\"%s\" has more than %d items", key, MAX_ITEMS);
        return MW_FAILURE;
    }
    *out = n;
    return MW_SUCCESS;
}

/* A path relative to the config file's directory. */
static mw_result get_path(struct mw_sidecar_config *c, const struct mw_node *map, const char *key,
                          bool required, const char **out)
{
    const char *p = NULL;
    MW_GUARD(get_str(c, map, key, required, &p));
    if (p == NULL || p[0] == '/' || c->dir == NULL) {
        *out = p;
        return MW_SUCCESS;
    }
    size_t n = strlen(c->dir) + strlen(p) + 2;
    char *full = own(c, malloc(n));
    MW_ENSURE(full != NULL, MW_E_NOMEM, "out of memory");
    snprintf(full, n, "%s/%s", c->dir, p);
    *out = full;
    return MW_SUCCESS;
}

static bool is_loopback(const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

static mw_result get_addr(struct mw_sidecar_config *c, const struct mw_node *map, const char *key,
                          const char *def, bool loopback, const char **out)
{
    const char *a = NULL;
    MW_GUARD(get_str(c, map, key, false, &a));
    if (a == NULL) {
        *out = def;
        return MW_SUCCESS;
    }
    struct sc_addr tmp;
    if (mw_failed(sc_addr_parse(a, 1, &tmp)))
        return fail_at(mw_node_get(map, key), "\"%s\" must be a numeric IPv4 or IPv6 address", key);
    if (loopback && !is_loopback(a))
        return fail_at(mw_node_get(map, key), "\"%s\" must be a loopback address", key);
    *out = a;
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- addresses */

mw_result sc_addr_parse(const char *host, uint16_t port, struct sc_addr *out)
{
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        out->len = sizeof(*s4);
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        out->len = sizeof(*s6);
    } else {
        MW_BAIL(MW_E_INPUT, "\"%s\" is not a numeric IPv4 or IPv6 address", host);
    }
    sc_addr_format(&out->ss, out->text, sizeof(out->text));
    return MW_SUCCESS;
}

void sc_addr_format(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char a[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
        snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
        snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
    } else {
        snprintf(buf, len, "unknown");
    }
}

/* "host:port" or "[v6]:port" with a numeric host. */
static mw_result parse_endpoint(const struct mw_node *n, struct sc_addr *out)
{
    const char *s = mw_node_str(n);
    if (s == NULL)
        return fail_at(n, "%s", "an endpoint must be a string \"address:port\"");
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return fail_at(n, "endpoint \"%s\" is not \"address:port\"", s);
    size_t hl = (size_t)(colon - s);
    memcpy(host, s, hl);
    host[hl] = 0;
    char *h = host;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = 0;
        h = host + 1;
    }
    uint64_t port;
    if (mw_failed(mw_parse_u64(mw_slice_cstr(colon + 1), 1, 65535, "port", &port)) ||
        mw_failed(sc_addr_parse(h, (uint16_t)port, out)))
        return fail_at(n, "endpoint \"%s\" is not \"address:port\" with a numeric address", s);
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- sections */

static mw_result parse_workload(struct mw_sidecar_config *c, const struct mw_node *w)
{
    static const char *const keys[] = {"namespace", "serviceAccount", "trustDomain", "labels",
                                       NULL};
    MW_GUARD(check_keys(w, "workload", keys));
    MW_GUARD(get_str(c, w, "namespace", true, &c->ns));
    MW_GUARD(get_str(c, w, "serviceAccount", true, &c->sa));
    MW_GUARD(get_str(c, w, "trustDomain", false, &c->td));
    if (c->td == NULL)
        c->td = "cluster.local";
    char td[MW_SPIFFE_TD_MAX + 1];
    if (mw_failed(mw_spiffe_td_parse(mw_slice_cstr(c->td), td)))
        return fail_at(mw_node_get(w, "trustDomain"), "trustDomain \"%s\" is not a trust domain",
                       c->td);
    /* Each must be one path segment of the SPIFFE ID (Kubernetes names have no '/'). */
    if (strchr(c->ns, '/') != NULL || strchr(c->sa, '/') != NULL)
        return fail_at(w, "%s",
                       "namespace and serviceAccount do not form a SPIFFE ID: '/' in a name");
    /* The SPIFFE ID path segments the workload will hold must be valid. */
    char id[512];
    struct mw_spiffe_id parsed;
    snprintf(id, sizeof(id), "spiffe://%s/ns/%s/sa/%s", c->td, c->ns, c->sa);
    if (mw_failed(mw_spiffe_id_parse(mw_slice_cstr(id), &parsed, NULL)))
        return fail_at(w, "namespace and serviceAccount do not form a SPIFFE ID: %s",
                       mw_error_msg());
    const struct mw_node *labels = mw_node_get(w, "labels");
    if (labels == NULL || mw_node_is_null(labels))
        return MW_SUCCESS;
    if (mw_node_kind(labels) != MW_NODE_MAP)
        return fail_at(labels, "%s", "labels must be a mapping");
    size_t n = mw_node_len(labels);
    if (n > 64)
        return fail_at(labels, "%s", "more than 64 labels");
    MW_GUARD(alloc_array(c, n, sizeof(char *), (void **)&c->label_keys));
    MW_GUARD(alloc_array(c, n, sizeof(char *), (void **)&c->label_values));
    for (size_t i = 0; i < n; i++) {
        const struct mw_node *k = mw_node_key_at(labels, i), *v = mw_node_value_at(labels, i);
        if (mw_node_kind(v) != MW_NODE_SCALAR || mw_node_str(v) == NULL)
            return fail_at(v, "%s", "a label value must be a string");
        MW_GUARD(dup_str(c, mw_node_str(k), &c->label_keys[i]));
        MW_GUARD(dup_str(c, mw_node_str(v), &c->label_values[i]));
    }
    c->n_labels = n;
    return MW_SUCCESS;
}

/* A number in [lo, hi] (a YAML scalar such as 0.5). */
static mw_result get_fraction(const struct mw_node *map, const char *key, double lo, double hi,
                              double *out)
{
    const struct mw_node *n = mw_node_get(map, key);
    if (n == NULL)
        return MW_SUCCESS;
    char buf[32];
    mw_slice s = mw_node_slice(n);
    double v = 0;
    bool ok = mw_node_kind(n) == MW_NODE_SCALAR && s.n > 0 && s.n < sizeof(buf);
    if (ok) {
        memcpy(buf, s.p, s.n);
        buf[s.n] = '\0';
        char *end = NULL;
        v = strtod(buf, &end);
        ok = end == buf + s.n && (buf[0] >= '0' && buf[0] <= '9') && v >= lo && v <= hi;
    }
    if (!ok) {
        mw_node_error(n, MW_E_INPUT, "\"%s\" must be a number from %g to %g", key, lo, hi);
        return MW_FAILURE;
    }
    *out = v;
    return MW_SUCCESS;
}

/* CA mode: where the SVID comes from, with what credential, and how it is renewed. */
static mw_result parse_identity_ca(struct mw_sidecar_config *c, const struct mw_node *idn)
{
    static const char *const refused[] = {"certificate", "key", NULL};
    for (size_t i = 0; refused[i] != NULL; i++)
        if (mw_node_get(idn, refused[i]) != NULL)
            return fail_at(mw_node_get(idn, refused[i]),
                           "\"%s\" is for identity mode static: in mode ca the key is made in "
                           "memory and the SVID comes from the CA",
                           refused[i]);
    MW_GUARD(get_str(c, idn, "caURL", true, &c->ca_url));
    if (strncmp(c->ca_url, "https://", 8) != 0 || c->ca_url[8] == '\0' || strlen(c->ca_url) > 1024)
        return fail_at(mw_node_get(idn, "caURL"), "caURL \"%.100s\": want https://HOST:PORT",
                       c->ca_url);
    MW_GUARD(get_path(c, idn, "credentialFile", true, &c->credential_file));
    const char *kind = NULL;
    MW_GUARD(get_str(c, idn, "credentialKind", true, &kind));
    enum mw_ca_cred_kind k;
    if (mw_failed(mw_ca_cred_kind_parse(mw_slice_cstr(kind), &k)))
        return fail_at(mw_node_get(idn, "credentialKind"),
                       "credentialKind \"%s\": want join-token or k8s-sat", kind);
    c->credential_kind = k;
    MW_GUARD(get_str(c, idn, "imageDigest", false, &c->image_digest));
    if (c->image_digest != NULL &&
        mw_failed(mw_ca_digest_check(mw_slice_cstr(c->image_digest), "imageDigest")))
        return fail_at(mw_node_get(idn, "imageDigest"), "%s", mw_error_msg());
    const struct mw_node *n = mw_node_get(idn, "ttl");
    if (n != NULL) {
        uint64_t s;
        if (mw_node_kind(n) != MW_NODE_SCALAR ||
            mw_failed(mw_parse_duration(mw_node_slice(n), 30 * 86400, "ttl", &s)) || s == 0)
            return fail_at(n, "%s", "\"ttl\" must be a duration like 1h (1s..30d)");
        c->svid_ttl = (int64_t)s;
    }
    c->rotation_fraction = 0.5;
    c->rotation_jitter = 0.1;
    const struct mw_node *rot = mw_node_get(idn, "rotation");
    if (rot != NULL) {
        static const char *const rkeys[] = {"fraction", "jitter", NULL};
        if (mw_node_kind(rot) != MW_NODE_MAP)
            return fail_at(rot, "%s", "\"rotation\" must be a map {fraction, jitter}");
        MW_GUARD(check_keys(rot, "rotation", rkeys));
        MW_GUARD(get_fraction(rot, "fraction", 0.05, 0.95, &c->rotation_fraction));
        MW_GUARD(get_fraction(rot, "jitter", 0, 0.5, &c->rotation_jitter));
    }
    c->bundle_refresh = 300;
    MW_GUARD(get_seconds(idn, "bundleRefresh", &c->bundle_refresh));
    return MW_SUCCESS;
}

static mw_result parse_identity(struct mw_sidecar_config *c, const struct mw_node *idn)
{
    static const char *const keys[] = {
        "mode",           "certificate", "key", "bundles",  "caURL",         "credentialFile",
        "credentialKind", "imageDigest", "ttl", "rotation", "bundleRefresh", NULL};
    static const char *const ca_only[] = {
        "caURL", "credentialFile", "credentialKind", "imageDigest",
        "ttl",   "rotation",       "bundleRefresh",  NULL};
    MW_GUARD(check_keys(idn, "identity", keys));
    const char *mode = "static";
    MW_GUARD(get_str(c, idn, "mode", false, &mode));
    if (strcmp(mode, "static") == 0) {
        c->id_mode = SC_ID_STATIC;
        for (size_t i = 0; ca_only[i] != NULL; i++)
            if (mw_node_get(idn, ca_only[i]) != NULL)
                return fail_at(mw_node_get(idn, ca_only[i]),
                               "\"%s\" is for identity mode ca (this identity is static)",
                               ca_only[i]);
        MW_GUARD(get_path(c, idn, "certificate", true, &c->cert_file));
        MW_GUARD(get_path(c, idn, "key", true, &c->key_file));
    } else if (strcmp(mode, "ca") == 0) {
        c->id_mode = SC_ID_CA;
        MW_GUARD(parse_identity_ca(c, idn));
    } else {
        return fail_at(mw_node_get(idn, "mode"), "identity mode \"%s\": want static or ca", mode);
    }
    const struct mw_node *bs;
    MW_GUARD(get_seq(idn, "bundles", &bs));
    if (bs == NULL || mw_node_len(bs) == 0)
        return fail_at(idn, "%s", "identity needs at least one trust bundle (bundles)");
    size_t n = mw_node_len(bs);
    MW_GUARD(alloc_array(c, n, sizeof(*c->bundles), (void **)&c->bundles));
    for (size_t i = 0; i < n; i++) {
        const struct mw_node *b = mw_node_item(bs, i);
        static const char *const bkeys[] = {"trustDomain", "file", NULL};
        MW_GUARD(check_keys(b, "a bundle", bkeys));
        MW_GUARD(get_str(c, b, "trustDomain", true, &c->bundles[i].td));
        MW_GUARD(get_path(c, b, "file", true, &c->bundles[i].file));
        char td[MW_SPIFFE_TD_MAX + 1];
        if (mw_failed(mw_spiffe_td_parse(mw_slice_cstr(c->bundles[i].td), td)))
            return fail_at(mw_node_get(b, "trustDomain"), "\"%s\" is not a trust domain",
                           c->bundles[i].td);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->bundles[j].td, c->bundles[i].td) == 0)
                return fail_at(b, "a second bundle for trust domain \"%s\"", c->bundles[i].td);
    }
    c->n_bundles = n;
    if (c->id_mode == SC_ID_CA) {
        /* The CA connection is pinned to the bundle of the workload's trust domain. */
        bool own = false;
        for (size_t i = 0; i < n; i++)
            own = own || strcmp(c->bundles[i].td, c->td) == 0;
        if (!own)
            return fail_at(bs,
                           "identity mode ca needs a bundle for the workload's trust domain "
                           "\"%s\" (it pins the CA connection)",
                           c->td);
    }
    return MW_SUCCESS;
}

static mw_result parse_inbound(struct mw_sidecar_config *c, const struct mw_node *in)
{
    static const char *const keys[] = {"address", "port", "appAddress", "ports", NULL};
    MW_GUARD(check_keys(in, "inbound", keys));
    MW_GUARD(get_addr(c, in, "address", "0.0.0.0", false, &c->in_address));
    MW_GUARD(get_port(in, "port", false, &c->in_port));
    MW_GUARD(get_addr(c, in, "appAddress", "127.0.0.1", true, &c->app_address));
    const struct mw_node *ps;
    MW_GUARD(get_seq(in, "ports", &ps));
    size_t n = mw_node_len(ps);
    MW_GUARD(alloc_array(c, n, sizeof(*c->ports), (void **)&c->ports));
    for (size_t i = 0; i < n; i++) {
        const struct mw_node *p = mw_node_item(ps, i);
        static const char *const pkeys[] = {"port", "protocol", "listenPort", "appPort", NULL};
        MW_GUARD(check_keys(p, "an inbound port", pkeys));
        struct sc_port *sp = &c->ports[i];
        MW_GUARD(get_port(p, "port", true, &sp->port));
        MW_GUARD(get_port(p, "listenPort", false, &sp->listen_port));
        MW_GUARD(get_port(p, "appPort", false, &sp->app_port));
        if (sp->app_port == 0)
            sp->app_port = sp->port;
        const char *proto = NULL;
        MW_GUARD(get_str(c, p, "protocol", true, &proto));
        if (strcmp(proto, "http") == 0)
            sp->http = true;
        else if (strcmp(proto, "tcp") != 0)
            return fail_at(mw_node_get(p, "protocol"), "protocol \"%s\": want http or tcp", proto);
        for (size_t j = 0; j < i; j++) {
            if (c->ports[j].port == sp->port)
                return fail_at(p, "port %s is listed twice", mw_node_str(mw_node_get(p, "port")));
            if (sp->listen_port != 0 && c->ports[j].listen_port == sp->listen_port)
                return fail_at(p, "listenPort %s is used twice",
                               mw_node_str(mw_node_get(p, "listenPort")));
        }
    }
    c->n_ports = n;
    return MW_SUCCESS;
}

/* A registry entry's protocol: "http" (pooled, HTTP-aware) or "tcp" (the default: a relay). */
static mw_result get_service_protocol(struct mw_sidecar_config *c, const struct mw_node *map,
                                      bool *http)
{
    const char *proto = NULL;
    MW_GUARD(get_str(c, map, "protocol", false, &proto));
    *http = proto != NULL && strcmp(proto, "http") == 0;
    if (proto != NULL && !*http && strcmp(proto, "tcp") != 0)
        return fail_at(mw_node_get(map, "protocol"), "protocol \"%s\": want http or tcp", proto);
    return MW_SUCCESS;
}

static mw_result parse_outbound(struct mw_sidecar_config *c, const struct mw_node *out)
{
    static const char *const keys[] = {"address", "port", "services", NULL};
    MW_GUARD(check_keys(out, "outbound", keys));
    MW_GUARD(get_addr(c, out, "address", "127.0.0.1", false, &c->out_address));
    MW_GUARD(get_port(out, "port", false, &c->out_port));
    const struct mw_node *ss;
    MW_GUARD(get_seq(out, "services", &ss));
    size_t n = mw_node_len(ss);
    MW_GUARD(alloc_array(c, n, sizeof(*c->services), (void **)&c->services));
    for (size_t i = 0; i < n; i++) {
        const struct mw_node *s = mw_node_item(ss, i);
        static const char *const skeys[] = {"name",      "port",     "endpoints", "spiffeId",
                                            "localPort", "protocol", NULL};
        static const char *const ckeys[] = {"name", "port", "localPort", NULL};
        struct sc_service *sv = &c->services[i];
        if (c->control_url != NULL) {
            /*
             * Control mode: a local listener for a service of the control plane's
             * registry, which says where it is and who it must be.
             */
            if (mw_node_get(s, "endpoints") != NULL || mw_node_get(s, "spiffeId") != NULL ||
                mw_node_get(s, "protocol") != NULL)
                return fail_at(s, "%s",
                               "in control mode a service names only name, port and localPort: "
                               "endpoints, spiffeId and protocol come from the control plane "
                               "(MeshService)");
            MW_GUARD(check_keys(s, "a service", ckeys));
            MW_GUARD(get_str(c, s, "name", true, &sv->name));
            MW_GUARD(get_port(s, "port", true, &sv->port));
            MW_GUARD(get_port(s, "localPort", true, &sv->local_port));
            for (size_t j = 0; j < i; j++)
                if ((strcmp(c->services[j].name, sv->name) == 0 &&
                     c->services[j].port == sv->port) ||
                    c->services[j].local_port == sv->local_port)
                    return fail_at(s, "service \"%s\" or its localPort is listed twice", sv->name);
            continue;
        }
        MW_GUARD(check_keys(s, "a service", skeys));
        MW_GUARD(get_str(c, s, "name", true, &sv->name));
        MW_GUARD(get_port(s, "port", true, &sv->port));
        MW_GUARD(get_port(s, "localPort", false, &sv->local_port));
        MW_GUARD(get_str(c, s, "spiffeId", true, &sv->spiffe_id));
        struct mw_spiffe_id id;
        if (mw_failed(mw_spiffe_id_parse(mw_slice_cstr(sv->spiffe_id), &id, NULL)))
            return fail_at(mw_node_get(s, "spiffeId"), "spiffeId: %s", mw_error_msg());
        MW_GUARD(get_service_protocol(c, s, &sv->http));
        const struct mw_node *eps;
        MW_GUARD(get_seq(s, "endpoints", &eps));
        if (eps == NULL || mw_node_len(eps) == 0)
            return fail_at(s, "service \"%s\" needs at least one endpoint", sv->name);
        sv->n_endpoints = mw_node_len(eps);
        MW_GUARD(alloc_array(c, sv->n_endpoints, sizeof(*sv->endpoints), (void **)&sv->endpoints));
        for (size_t j = 0; j < sv->n_endpoints; j++)
            MW_GUARD(parse_endpoint(mw_node_item(eps, j), &sv->endpoints[j]));
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->services[j].name, sv->name) == 0 && c->services[j].port == sv->port)
                return fail_at(s, "service \"%s\" is listed twice", sv->name);
            if (sv->local_port != 0 && c->services[j].local_port == sv->local_port)
                return fail_at(s, "localPort of \"%s\" is used twice", sv->name);
        }
    }
    c->n_services = n;
    return MW_SUCCESS;
}

static bool host_valid(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return false;
    size_t i = 0;
    if (n > 2 && h[0] == '*' && h[1] == '.')
        i = 2;
    for (; i < n; i++) {
        char ch = h[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';
        if (!ok)
            return false;
    }
    return h[n - 1] != '.';
}

/* One declaration: {host | cidr, ports}. */
static mw_result parse_egress_entry(struct mw_sidecar_config *c, const struct mw_node *e,
                                    struct sc_egress *out)
{
    static const char *const keys[] = {"host", "cidr", "ports", NULL};
    MW_GUARD(check_keys(e, "an egress declaration", keys));
    const char *host = NULL, *cidr = NULL;
    MW_GUARD(get_str(c, e, "host", false, &host));
    MW_GUARD(get_str(c, e, "cidr", false, &cidr));
    if ((host == NULL) == (cidr == NULL))
        return fail_at(e, "%s", "an egress declaration needs exactly one of host and cidr");
    if (host != NULL) {
        if (!host_valid(host))
            return fail_at(mw_node_get(e, "host"),
                           "host \"%s\": want a lower-case DNS name or *.suffix", host);
        out->host = host;
    } else {
        const char *slash = strchr(cidr, '/');
        char addr[INET6_ADDRSTRLEN];
        size_t al = slash ? (size_t)(slash - cidr) : strlen(cidr);
        if (al >= sizeof(addr))
            return fail_at(mw_node_get(e, "cidr"), "cidr \"%s\" is not address/prefix", cidr);
        memcpy(addr, cidr, al);
        addr[al] = 0;
        if (mw_failed(mw_policy_ip_parse(mw_slice_cstr(addr), &out->net)))
            return fail_at(mw_node_get(e, "cidr"), "cidr \"%s\" is not address/prefix", cidr);
        unsigned max = out->net.family == 4 ? 32 : 128;
        uint64_t prefix = max;
        if (slash != NULL &&
            mw_failed(mw_parse_u64(mw_slice_cstr(slash + 1), 0, max, "prefix", &prefix)))
            return fail_at(mw_node_get(e, "cidr"), "cidr \"%s\": bad prefix length", cidr);
        out->prefix = (unsigned)prefix;
    }
    const struct mw_node *ps;
    MW_GUARD(get_seq(e, "ports", &ps));
    if (ps == NULL || mw_node_len(ps) == 0)
        return fail_at(e, "%s", "an egress declaration needs ports (a list of 1..65535)");
    out->n_ports = mw_node_len(ps);
    MW_GUARD(alloc_array(c, out->n_ports, sizeof(uint16_t), (void **)&out->ports));
    for (size_t i = 0; i < out->n_ports; i++) {
        int64_t v;
        if (mw_failed(mw_node_i64(mw_node_item(ps, i), 1, 65535, &v)))
            return fail_at(mw_node_item(ps, i), "%s", "a port must be a number in 1..65535");
        out->ports[i] = (uint16_t)v;
    }
    char where[512];
    snprintf(where, sizeof(where), "%s:%zu", mw_node_file(e), mw_node_line(e));
    return dup_str(c, where, &out->where);
}

static mw_result add_egress_list(struct mw_sidecar_config *c, const struct mw_node *list)
{
    size_t n = mw_node_len(list);
    MW_ENSURE(c->n_egress + n <= MAX_ITEMS, MW_E_LIMIT, "more than %d egress declarations",
              MAX_ITEMS);
    struct sc_egress *all;
    MW_GUARD(alloc_array(c, c->n_egress + n, sizeof(*all), (void **)&all));
    if (c->n_egress > 0)
        memcpy(all, c->egress, c->n_egress * sizeof(*all));
    for (size_t i = 0; i < n; i++)
        MW_GUARD(parse_egress_entry(c, mw_node_item(list, i), &all[c->n_egress + i]));
    c->egress = all;
    c->n_egress += n;
    return MW_SUCCESS;
}

static mw_result check_header(const struct mw_node *root, const char *kind)
{
    const char *api = mw_node_str(mw_node_get(root, "apiVersion"));
    const char *k = mw_node_str(mw_node_get(root, "kind"));
    if (api == NULL || strcmp(api, API_VERSION) != 0)
        return fail_at(root, "apiVersion must be \"%s\"", API_VERSION);
    if (k == NULL || strcmp(k, kind) != 0)
        return fail_at(root, "kind must be \"%s\"", kind);
    return MW_SUCCESS;
}

/* One EgressPolicy document. */
static mw_result egress_doc(struct mw_sidecar_config *c, const struct mw_node *root)
{
    static const char *const keys[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    static const char *const skeys[] = {"egress", NULL};
    MW_GUARD(check_keys(root, "an EgressPolicy", keys));
    MW_GUARD(check_header(root, "EgressPolicy"));
    const struct mw_node *spec = mw_node_get(root, "spec"), *list = NULL;
    MW_GUARD(check_keys(spec, "spec", skeys));
    MW_GUARD(get_seq(spec, "egress", &list));
    return list != NULL ? add_egress_list(c, list) : MW_SUCCESS;
}

/* An EgressPolicy file: every document an EgressPolicy. */
static mw_result load_egress_file(struct mw_sidecar_config *c, const char *path)
{
    struct mw_docs *docs;
    MW_GUARD(mw_yaml_load_file(path, &cfg_limits, &docs));
    mw_result r = MW_SUCCESS;
    for (size_t i = 0; i < mw_docs_count(docs) && mw_ok(r); i++)
        if (mw_docs_root(docs, i) != NULL)
            r = egress_doc(c, mw_docs_root(docs, i));
    mw_docs_free(docs);
    return r;
}

/* spec.control: the control plane this sidecar follows (docs/sidecar.md "Control mode"). */
static mw_result parse_control(struct mw_sidecar_config *c, const struct mw_node *spec)
{
    const struct mw_node *ctl = mw_node_get(spec, "control");
    if (ctl == NULL)
        return MW_SUCCESS;
    static const char *const keys[] = {"url", "pollTimeout", NULL};
    if (mw_node_kind(ctl) != MW_NODE_MAP)
        return fail_at(ctl, "%s", "\"control\" must be a map {url, pollTimeout}");
    MW_GUARD(check_keys(ctl, "control", keys));
    if (c->id_mode != SC_ID_CA)
        return fail_at(ctl, "%s",
                       "control needs identity mode ca: the control plane knows a sidecar by "
                       "the SVID its CA issued");
    MW_GUARD(get_str(c, ctl, "url", true, &c->control_url));
    if (strncmp(c->control_url, "https://", 8) != 0 || c->control_url[8] == '\0' ||
        strlen(c->control_url) > 1024)
        return fail_at(mw_node_get(ctl, "url"), "url \"%.100s\": want https://HOST:PORT",
                       c->control_url);
    c->control_wait = 30;
    MW_GUARD(get_seconds(ctl, "pollTimeout", &c->control_wait));
    if (c->control_wait < 1 || c->control_wait > 300)
        return fail_at(mw_node_get(ctl, "pollTimeout"), "%s", "pollTimeout must be 1s..5m");
    /* What the control plane sends is not also read from files: one source of truth. */
    static const char *const theirs[] = {"policies", "egress", "egressFiles", NULL};
    for (size_t i = 0; theirs[i] != NULL; i++)
        if (mw_node_get(spec, theirs[i]) != NULL)
            return fail_at(mw_node_get(spec, theirs[i]),
                           "\"%s\" comes from the control plane in control mode", theirs[i]);
    return MW_SUCCESS;
}

static mw_result parse_spec(struct mw_sidecar_config *c, const struct mw_node *spec)
{
    static const char *const keys[] = {
        "workload", "identity", "inbound",   "outbound", "egress",  "egressFiles", "policies",
        "mesh",     "admin",    "accessLog", "timeouts", "control", NULL};
    MW_GUARD(check_keys(spec, "spec", keys));
    if (mw_node_get(spec, "workload") == NULL)
        return fail_at(spec, "%s", "missing required key \"workload\"");
    MW_GUARD(parse_workload(c, mw_node_get(spec, "workload")));
    if (mw_node_get(spec, "identity") == NULL)
        return fail_at(spec, "%s", "missing required key \"identity\"");
    MW_GUARD(parse_identity(c, mw_node_get(spec, "identity")));
    c->in_address = "0.0.0.0";
    c->app_address = "127.0.0.1";
    c->out_address = "127.0.0.1";
    if (mw_node_get(spec, "inbound") != NULL)
        MW_GUARD(parse_inbound(c, mw_node_get(spec, "inbound")));
    MW_GUARD(parse_control(c, spec));
    if (mw_node_get(spec, "outbound") != NULL)
        MW_GUARD(parse_outbound(c, mw_node_get(spec, "outbound")));

    const struct mw_node *list;
    MW_GUARD(get_seq(spec, "egress", &list));
    if (list != NULL)
        MW_GUARD(add_egress_list(c, list));
    MW_GUARD(get_seq(spec, "egressFiles", &list));
    for (size_t i = 0; list != NULL && i < mw_node_len(list); i++) {
        const struct mw_node *f = mw_node_item(list, i);
        if (mw_node_kind(f) != MW_NODE_SCALAR || mw_node_str(f) == NULL)
            return fail_at(f, "%s", "egressFiles: each item must be a file name");
        const char *p;
        char buf[4096];
        const char *name = mw_node_str(f);
        if (name[0] != '/' && c->dir != NULL) {
            snprintf(buf, sizeof(buf), "%s/%s", c->dir, name);
            name = buf;
        }
        MW_GUARD(dup_str(c, name, &p));
        MW_GUARD(load_egress_file(c, p));
    }

    MW_GUARD(get_seq(spec, "policies", &list));
    size_t np = mw_node_len(list);
    MW_GUARD(alloc_array(c, np, sizeof(char *), (void **)&c->policy_files));
    for (size_t i = 0; i < np; i++) {
        const struct mw_node *f = mw_node_item(list, i);
        if (mw_node_kind(f) != MW_NODE_SCALAR || mw_node_str(f) == NULL)
            return fail_at(f, "%s", "policies: each item must be a file name");
        const char *name = mw_node_str(f);
        if (name[0] != '/' && c->dir != NULL) {
            size_t n = strlen(c->dir) + strlen(name) + 2;
            char *full = own(c, malloc(n));
            MW_ENSURE(full != NULL, MW_E_NOMEM, "out of memory");
            snprintf(full, n, "%s/%s", c->dir, name);
            c->policy_files[i] = full;
        } else {
            MW_GUARD(dup_str(c, name, &c->policy_files[i]));
        }
    }
    c->n_policy_files = np;

    const struct mw_node *mesh = mw_node_get(spec, "mesh");
    if (mesh != NULL) {
        static const char *const mkeys[] = {"pathNormalization", "rootNamespace", NULL};
        MW_GUARD(check_keys(mesh, "mesh", mkeys));
        const char *pn = NULL;
        MW_GUARD(get_str(c, mesh, "pathNormalization", false, &pn));
        if (pn != NULL && mw_failed(mw_policy_path_norm_parse(pn, &c->path_norm)))
            return fail_at(mw_node_get(mesh, "pathNormalization"),
                           "pathNormalization \"%s\": want BASE, MERGE_SLASHES, "
                           "DECODE_AND_MERGE_SLASHES or NONE",
                           pn);
        MW_GUARD(get_str(c, mesh, "rootNamespace", false, &c->root_namespace));
    }
    const struct mw_node *admin = mw_node_get(spec, "admin");
    c->admin_address = "127.0.0.1";
    if (admin != NULL) {
        static const char *const akeys[] = {"address", "port", NULL};
        MW_GUARD(check_keys(admin, "admin", akeys));
        /* The admin port answers without authentication: loopback only. */
        MW_GUARD(get_addr(c, admin, "address", "127.0.0.1", true, &c->admin_address));
        MW_GUARD(get_port(admin, "port", false, &c->admin_port));
    }
    const char *log = NULL;
    MW_GUARD(get_str(c, spec, "accessLog", false, &log));
    if (log != NULL && strcmp(log, "-") != 0) {
        MW_GUARD(get_path(c, spec, "accessLog", false, &log));
    }
    c->access_log = log;
    c->head_timeout = 10;
    c->idle_timeout = 300;
    c->connect_timeout = 5;
    c->pool_idle_timeout = 30;
    c->max_connections = 4096;
    const struct mw_node *t = mw_node_get(spec, "timeouts");
    if (t != NULL) {
        static const char *const tkeys[] = {"head", "idle", "connect", "poolIdle", NULL};
        MW_GUARD(check_keys(t, "timeouts", tkeys));
        MW_GUARD(get_seconds(t, "head", &c->head_timeout));
        MW_GUARD(get_seconds(t, "idle", &c->idle_timeout));
        MW_GUARD(get_seconds(t, "connect", &c->connect_timeout));
        MW_GUARD(get_seconds(t, "poolIdle", &c->pool_idle_timeout));
    }
    if (c->in_port == 0 && c->out_port == 0 && c->n_services == 0) {
        bool any = false;
        for (size_t i = 0; i < c->n_ports; i++)
            any = any || c->ports[i].listen_port != 0;
        if (!any)
            return fail_at(spec, "%s",
                           "nothing to listen on: set inbound.port, a listenPort, "
                           "outbound.port or a service localPort");
    }
    return MW_SUCCESS;
}

mw_result mw_sidecar_config_parse(mw_slice text, const char *name, const char *base_dir,
                                  struct mw_sidecar_config **out)
{
    *out = NULL;
    struct mw_docs *docs;
    MW_GUARD(mw_yaml_load(text, name, &cfg_limits, &docs));
    struct mw_sidecar_config *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        mw_docs_free(docs);
        MW_BAIL(MW_E_NOMEM, "out of memory");
    }
    mw_result r = MW_SUCCESS;
    const struct mw_node *root = mw_docs_count(docs) == 1 ? mw_docs_root(docs, 0) : NULL;
    if (root == NULL) {
        mw_error_set(MW_E_INPUT, "%s: want exactly one SidecarConfig document", name);
        r = MW_FAILURE;
    }
    static const char *const keys[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    if (mw_ok(r))
        r = check_keys(root, "a SidecarConfig", keys);
    if (mw_ok(r))
        r = check_header(root, "SidecarConfig");
    if (mw_ok(r) && base_dir != NULL)
        r = dup_str(c, base_dir, &c->dir);
    if (mw_ok(r))
        r = dup_str(c, name, &c->path);
    const struct mw_node *md = mw_node_get(root, "metadata");
    if (mw_ok(r) && md != NULL) {
        static const char *const mkeys[] = {"name", "namespace", "labels", "annotations", NULL};
        r = check_keys(md, "metadata", mkeys);
        if (mw_ok(r))
            r = get_str(c, md, "name", false, &c->name);
    }
    if (mw_ok(r)) {
        const struct mw_node *spec = mw_node_get(root, "spec");
        if (spec == NULL)
            r = fail_at(root, "%s", "missing required key \"spec\"");
        else
            r = parse_spec(c, spec);
    }
    if (mw_ok(r) && c->name == NULL)
        r = dup_str(c, c->sa, &c->name);
    mw_docs_free(docs);
    if (mw_failed(r)) {
        mw_sidecar_config_free(c);
        return r;
    }
    *out = c;
    return MW_SUCCESS;
}

mw_result mw_sidecar_config_load(const char *path, struct mw_sidecar_config **out)
{
    struct mw_dynbuf text;
    mw_dynbuf_init(&text, cfg_limits.max_bytes);
    if (mw_failed(mw_file_read(path, cfg_limits.max_bytes, &text))) {
        mw_dynbuf_free(&text);
        return MW_FAILURE;
    }
    char *copy = strdup(path);
    if (copy == NULL) {
        mw_dynbuf_free(&text);
        MW_BAIL(MW_E_NOMEM, "out of memory");
    }
    mw_result r = mw_sidecar_config_parse(mw_dynbuf_slice(&text), path, dirname(copy), out);
    free(copy);
    mw_dynbuf_free(&text);
    return r;
}

/* ---------------------------------------------------------------- lookups */

static bool ip_in(const struct mw_policy_ip *net, unsigned prefix, const struct mw_policy_ip *a)
{
    if (net->family != a->family)
        return false;
    size_t full = prefix / 8;
    if (memcmp(net->b, a->b, full) != 0)
        return false;
    unsigned rest = prefix % 8;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (net->b[full] & mask) == (a->b[full] & mask);
}

static void ip_from_ss(const struct sockaddr_storage *ss, struct mw_policy_ip *ip)
{
    memset(ip, 0, sizeof(*ip));
    if (ss->ss_family == AF_INET) {
        memcpy(ip->b, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        ip->family = 4;
    } else if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(ip->b, a->s6_addr + 12, 4);
            ip->family = 4;
        } else {
            memcpy(ip->b, a, 16);
            ip->family = 6;
        }
    }
}

static bool host_match(const char *pattern, const char *host)
{
    if (pattern[0] == '*') {
        size_t pl = strlen(pattern) - 1, hl = strlen(host);
        return hl > pl && strcasecmp(host + hl - pl, pattern + 1) == 0;
    }
    return strcasecmp(pattern, host) == 0;
}

bool sc_egress_allowed(const struct mw_sidecar_config *cfg, const char *host,
                       const struct sockaddr_storage *addr, uint16_t port, const char **where)
{
    struct mw_policy_ip ip = {0};
    if (addr != NULL)
        ip_from_ss(addr, &ip);
    for (size_t i = 0; i < cfg->n_egress; i++) {
        const struct sc_egress *e = &cfg->egress[i];
        bool port_ok = false;
        for (size_t j = 0; j < e->n_ports; j++)
            port_ok = port_ok || e->ports[j] == port;
        if (!port_ok)
            continue;
        bool match = e->host != NULL ? (host != NULL && host_match(e->host, host))
                                     : (ip.family != 0 && ip_in(&e->net, e->prefix, &ip));
        if (match) {
            if (where != NULL)
                *where = e->where;
            return true;
        }
    }
    return false;
}

static bool ss_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    struct mw_policy_ip x, y;
    ip_from_ss(a, &x);
    ip_from_ss(b, &y);
    uint16_t pa = a->ss_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
                                          : ((const struct sockaddr_in6 *)a)->sin6_port;
    uint16_t pb = b->ss_family == AF_INET ? ((const struct sockaddr_in *)b)->sin_port
                                          : ((const struct sockaddr_in6 *)b)->sin6_port;
    return x.family == y.family && memcmp(x.b, y.b, 16) == 0 && pa == pb;
}

struct sc_service *sc_registry_find(const struct mw_sidecar_config *cfg, const char *host,
                                    const struct sockaddr_storage *addr, uint16_t port)
{
    for (size_t i = 0; i < cfg->n_services; i++) {
        struct sc_service *s = &cfg->services[i];
        if (host != NULL && s->port == port && strcasecmp(s->name, host) == 0)
            return s;
        for (size_t j = 0; addr != NULL && j < s->n_endpoints; j++)
            if (ss_eq(&s->endpoints[j].ss, addr))
                return s;
    }
    return NULL;
}

/* ---------------------------------------------------------------- policies */

void sc_mesh(const struct mw_sidecar_config *cfg, struct mw_policy_mesh *mesh)
{
    memset(mesh, 0, sizeof(*mesh));
    mesh->root_namespace = cfg->root_namespace;
    mesh->trust_domain = cfg->td;
    mesh->path_norm = cfg->path_norm;
}

/* ---------------------------------------------------------------- control mode */

/* What the control plane may send: 16 MiB of documents (the sidecar's own file is smaller). */
static const struct mw_conf_limits mesh_limits = {
    .max_bytes = 16 << 20,
    .max_depth = 64,
    .max_nodes = 2000000,
    .max_scalar = 1 << 20,
    .max_docs = 100000,
};

enum mesh_kind { MESH_POLICY = 1, MESH_EGRESS, MESH_SERVICE };

static enum mesh_kind mesh_kind(const struct mw_node *root)
{
    const char *api = mw_node_str(mw_node_get(root, "apiVersion"));
    const char *k = mw_node_str(mw_node_get(root, "kind"));
    if (api != NULL && k != NULL && strcmp(api, API_VERSION) == 0) {
        if (strcmp(k, "EgressPolicy") == 0)
            return MESH_EGRESS;
        if (strcmp(k, "MeshService") == 0)
            return MESH_SERVICE;
    }
    /* Everything else goes to the policy loader, which names what it refuses. */
    return MESH_POLICY;
}

/* MeshService: spec {host, port, endpoints, spiffeId, protocol} -> a registry entry. */
static mw_result mesh_service(struct mw_sidecar_config *c, const struct mw_node *root,
                              struct sc_service *sv)
{
    static const char *const keys[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    static const char *const skeys[] = {"host", "port", "endpoints", "spiffeId", "protocol", NULL};
    MW_GUARD(check_keys(root, "a MeshService", keys));
    const struct mw_node *spec = mw_node_get(root, "spec");
    MW_GUARD(check_keys(spec, "a MeshService spec", skeys));
    memset(sv, 0, sizeof(*sv));
    MW_GUARD(get_str(c, spec, "host", true, &sv->name));
    MW_GUARD(get_port(spec, "port", true, &sv->port));
    MW_GUARD(get_str(c, spec, "spiffeId", true, &sv->spiffe_id));
    struct mw_spiffe_id id;
    if (mw_failed(mw_spiffe_id_parse(mw_slice_cstr(sv->spiffe_id), &id, NULL)))
        return fail_at(mw_node_get(spec, "spiffeId"), "spiffeId: %s", mw_error_msg());
    MW_GUARD(get_service_protocol(c, spec, &sv->http));
    const struct mw_node *eps;
    MW_GUARD(get_seq(spec, "endpoints", &eps));
    if (eps == NULL || mw_node_len(eps) == 0)
        return fail_at(spec, "service \"%s\" needs at least one endpoint", sv->name);
    sv->n_endpoints = mw_node_len(eps);
    MW_GUARD(alloc_array(c, sv->n_endpoints, sizeof(*sv->endpoints), (void **)&sv->endpoints));
    for (size_t j = 0; j < sv->n_endpoints; j++)
        MW_GUARD(parse_endpoint(mw_node_item(eps, j), &sv->endpoints[j]));
    return MW_SUCCESS;
}

mw_result sc_config_apply_mesh(struct mw_sidecar_config *c, mw_slice text)
{
    MW_ENSURE(c->control_url != NULL, MW_E_INPUT, "not in control mode");
    struct mw_docs *docs;
    MW_GUARD(mw_yaml_load(text, "control plane", &mesh_limits, &docs));
    size_t n_svc = 0;
    for (size_t i = 0; i < mw_docs_count(docs); i++)
        n_svc += mw_docs_root(docs, i) != NULL && mesh_kind(mw_docs_root(docs, i)) == MESH_SERVICE;
    /* The file's services (local listeners) first, then the rest of the registry. */
    size_t n_local = c->n_services;
    mw_result r = n_svc + n_local <= MAX_ITEMS ? MW_SUCCESS : MW_FAILURE;
    if (mw_failed(r))
        mw_error_set(MW_E_LIMIT, "more than %d services from the control plane", MAX_ITEMS);
    struct sc_service *all = NULL;
    if (mw_ok(r))
        r = alloc_array(c, n_svc + n_local, sizeof(*all), (void **)&all);
    if (mw_ok(r) && n_local > 0)
        memcpy(all, c->services, n_local * sizeof(*all));
    if (mw_ok(r))
        c->services = all;
    for (size_t i = 0; i < mw_docs_count(docs) && mw_ok(r); i++) {
        const struct mw_node *root = mw_docs_root(docs, i);
        if (root == NULL)
            continue;
        switch (mesh_kind(root)) {
        case MESH_EGRESS:
            r = egress_doc(c, root);
            break;
        case MESH_SERVICE: {
            struct sc_service *sv = &c->services[c->n_services];
            r = mesh_service(c, root, sv);
            size_t dup = c->n_services;
            for (size_t j = 0; mw_ok(r) && j < c->n_services; j++)
                if (strcmp(c->services[j].name, sv->name) == 0 && c->services[j].port == sv->port)
                    dup = j;
            if (mw_failed(r))
                break;
            if (dup < n_local && c->services[dup].spiffe_id == NULL) {
                /* The registry entry of a service the file gives a local listener. */
                c->services[dup].endpoints = sv->endpoints;
                c->services[dup].n_endpoints = sv->n_endpoints;
                c->services[dup].spiffe_id = sv->spiffe_id;
                c->services[dup].http = sv->http;
            } else if (dup < c->n_services) {
                r = fail_at(root, "service \"%s\" is listed twice", sv->name);
            } else {
                c->n_services++;
            }
            break;
        }
        case MESH_POLICY:
            break; /* compiled by sc_policies_load */
        }
    }
    for (size_t i = 0; i < n_local && mw_ok(r); i++) {
        if (c->services[i].spiffe_id == NULL) {
            mw_error_set(MW_E_INPUT,
                         "service %s:%u (localPort %u) is not in the control plane's registry",
                         c->services[i].name, c->services[i].port, c->services[i].local_port);
            r = MW_FAILURE;
        }
    }
    mw_docs_free(docs);
    if (mw_ok(r)) {
        char *copy = own(c, malloc(text.n + 1));
        if (copy == NULL) {
            mw_error_set(MW_E_NOMEM, "out of memory");
            return MW_FAILURE;
        }
        memcpy(copy, text.p, text.n);
        copy[text.n] = '\0';
        c->mesh_text = copy;
        c->mesh_len = text.n;
    }
    return r;
}

/* The policy documents the control plane sent. */
static mw_result add_mesh_policies(const struct mw_sidecar_config *cfg, struct mw_policy_set *s)
{
    struct mw_docs *docs;
    MW_GUARD(mw_yaml_load(mw_slice_make(cfg->mesh_text, cfg->mesh_len), "control plane",
                          &mesh_limits, &docs));
    mw_result r = MW_SUCCESS;
    for (size_t i = 0; i < mw_docs_count(docs) && mw_ok(r); i++) {
        const struct mw_node *root = mw_docs_root(docs, i);
        if (root != NULL && mesh_kind(root) == MESH_POLICY)
            r = mw_policy_set_add_doc(s, root);
    }
    mw_docs_free(docs);
    return r;
}

/* ---------------------------------------------------------------- policies (compiled) */

mw_result sc_policies_load(const struct mw_sidecar_config *cfg, struct mw_policy_set **set,
                           struct mw_policy_engine **engine)
{
    struct mw_policy_set *s;
    MW_GUARD(mw_policy_set_new(&s));
    for (size_t i = 0; i < cfg->n_policy_files; i++) {
        if (mw_failed(mw_policy_set_add_file(s, cfg->policy_files[i]))) {
            mw_policy_set_free(s);
            return MW_FAILURE;
        }
    }
    if (cfg->mesh_text != NULL && mw_failed(add_mesh_policies(cfg, s))) {
        mw_policy_set_free(s);
        return MW_FAILURE;
    }
    struct mw_policy_mesh mesh;
    sc_mesh(cfg, &mesh);
    if (mw_failed(mw_policy_engine_compile(s, &mesh, cfg->ns, cfg->label_keys, cfg->label_values,
                                           cfg->n_labels, engine))) {
        mw_policy_set_free(s);
        return MW_FAILURE;
    }
    *set = s;
    return MW_SUCCESS;
}

void sc_ports_resolve_mtls(struct mw_sidecar_config *cfg, const struct mw_policy_set *set)
{
    struct mw_policy_mesh mesh;
    sc_mesh(cfg, &mesh);
    for (size_t i = 0; i < cfg->n_ports; i++) {
        struct mw_policy_mtls_result r;
        mw_policy_mtls_mode(set, &mesh, cfg->ns, cfg->label_keys, cfg->label_values, cfg->n_labels,
                            cfg->ports[i].port, &r);
        cfg->ports[i].mtls = r.mode == MW_POLICY_MTLS_UNSET ? MW_POLICY_MTLS_PERMISSIVE : r.mode;
        cfg->ports[i].mtls_policy = r.policy;
    }
}
