/*
 * Loading and validation of AuthorizationPolicy, PeerAuthentication and meshward's
 * ProvenancePolicy. The checks follow istio/istio pkg/config/validation/validation.go
 * (ValidateAuthorizationPolicy, ValidatePeerAuthentication, validateMetadata) and
 * pkg/config/security/security.go (ValidateAttribute, CheckValidPathTemplate), plus the CRD
 * schema rules (CEL) of istio/api for what the Go code leaves to the API server.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"

#define NOMEM_IF(x)                               \
    do {                                          \
        if ((x) == NULL)                          \
            MW_BAIL(MW_E_NOMEM, "out of memory"); \
    } while (0)

#define FAIL(node, ...)                                 \
    do {                                                \
        mw_node_error((node), MW_E_INPUT, __VA_ARGS__); \
        return MW_FAILURE;                              \
    } while (0)

struct loader {
    struct mw_policy_set *set;
    struct pol_policy *p;
    const struct mw_node *root;
};

MW_RESULT pol_add_warning(struct mw_policy_set *set, const struct mw_node *n, const char *msg)
{
    if (set->nwarnings == set->capwarnings) {
        size_t cap = set->capwarnings ? set->capwarnings * 2 : 8;
        char **w = realloc(set->warnings, cap * sizeof(*w));
        NOMEM_IF(w);
        set->warnings = w;
        set->capwarnings = cap;
    }
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 4096);
    mw_result r =
        mw_dynbuf_addf(&b, "%s:%zu: %s", n ? mw_node_file(n) : "?", n ? mw_node_line(n) : 0, msg);
    if (mw_failed(r)) {
        mw_dynbuf_free(&b);
        return r;
    }
    size_t len;
    set->warnings[set->nwarnings++] = (char *)mw_dynbuf_take(&b, &len);
    return MW_SUCCESS;
}

static bool is_str(const struct mw_node *n)
{
    return n != NULL && mw_node_kind(n) == MW_NODE_SCALAR;
}

static bool is_map(const struct mw_node *n)
{
    return n != NULL && mw_node_kind(n) == MW_NODE_MAP;
}

static bool is_seq(const struct mw_node *n)
{
    return n != NULL && mw_node_kind(n) == MW_NODE_SEQ;
}

/* Scalar text; a plain null reads as "" (proto3: an absent string and "" are the same). */
static mw_slice text_of(const struct mw_node *n)
{
    if (n == NULL || mw_node_is_null(n))
        return mw_slice_make("", 0);
    return mw_node_slice(n);
}

static MW_RESULT want_map(const struct mw_node *n, const char *what)
{
    if (!is_map(n) && !(n != NULL && mw_node_is_null(n)))
        FAIL(n, "%s must be a mapping", what);
    return MW_SUCCESS;
}

static MW_RESULT check_keys(const struct mw_node *map, const char *what, const char *const *allowed)
{
    for (size_t i = 0; i < mw_node_len(map); i++) {
        const struct mw_node *k = mw_node_key_at(map, i);
        const char *ks = mw_node_str(k);
        bool ok = false;
        for (size_t j = 0; allowed[j] != NULL && !ok; j++)
            ok = strcmp(ks, allowed[j]) == 0;
        if (!ok)
            FAIL(k, "unknown field \"%s\" in %s", ks, what);
    }
    return MW_SUCCESS;
}

static char *dup_slice(struct pol_arena *a, mw_slice s)
{
    return pol_strndup(a, (const char *)s.p, s.n);
}

/* ---------------------------------------------------------------- metadata */

/* Go strconv.ParseBool, which validateMetadata uses for istio.io/dry-run. */
static bool go_parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < MW_ARRAY_LEN(t); i++) {
        if (strcmp(s, t[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(s, f[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static MW_RESULT load_metadata(struct loader *L, const struct mw_node *md)
{
    struct pol_arena *a = &L->set->arena;
    if (!is_map(md))
        FAIL(md ? md : L->root, "metadata must be a mapping with a name");
    const struct mw_node *name = mw_node_get(md, "name");
    if (!is_str(name) || text_of(name).n == 0)
        FAIL(md, "metadata.name must not be empty");
    const struct mw_node *ns = mw_node_get(md, "namespace");
    mw_slice nss = is_str(ns) ? text_of(ns) : mw_slice_cstr("default");
    if (nss.n == 0)
        nss = mw_slice_cstr("default");
    NOMEM_IF(L->p->name = dup_slice(a, text_of(name)));
    NOMEM_IF(L->p->ns = dup_slice(a, nss));
    size_t idn = nss.n + 1 + text_of(name).n;
    char *id = pol_alloc(a, idn + 1);
    NOMEM_IF(id);
    memcpy(id, nss.p, nss.n);
    id[nss.n] = '/';
    memcpy(id + nss.n + 1, text_of(name).p, text_of(name).n);
    L->p->id = id;
    const struct mw_node *ct = mw_node_get(md, "creationTimestamp");
    NOMEM_IF(L->p->created = dup_slice(a, is_str(ct) ? text_of(ct) : mw_slice_make("", 0)));
    return MW_SUCCESS;
}

/* validateMetadata: istio.io/dry-run only on ALLOW/DENY AuthorizationPolicy, Go bool value. */
static MW_RESULT check_dry_run(struct loader *L, const struct mw_node *md)
{
    const struct mw_node *ann = is_map(md) ? mw_node_get(md, "annotations") : NULL;
    const struct mw_node *dr = is_map(ann) ? mw_node_get(ann, "istio.io/dry-run") : NULL;
    if (dr == NULL)
        return MW_SUCCESS;
    if (L->p->kind != PK_AUTHZ)
        FAIL(dr, "annotation istio.io/dry-run is only supported on AuthorizationPolicy");
    bool v;
    if (!is_str(dr) || !go_parse_bool(mw_node_str(dr), &v))
        FAIL(dr, "invalid istio.io/dry-run annotation value \"%s\": want a boolean",
             is_str(dr) ? mw_node_str(dr) : "");
    if (L->p->action != PACT_ALLOW && L->p->action != PACT_DENY)
        FAIL(dr, "istio.io/dry-run annotation is only supported with action ALLOW or DENY");
    L->p->dry_run = v;
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- selector / targetRefs */

static MW_RESULT load_selector(struct loader *L, const struct mw_node *sel, bool *has_labels)
{
    *has_labels = false;
    if (sel == NULL)
        return MW_SUCCESS;
    MW_GUARD(want_map(sel, "selector"));
    L->p->has_selector = true;
    if (is_map(sel)) {
        static const char *const keys[] = {"matchLabels", NULL};
        MW_GUARD(check_keys(sel, "selector", keys));
    }
    const struct mw_node *ml = is_map(sel) ? mw_node_get(sel, "matchLabels") : NULL;
    if (ml == NULL)
        return MW_SUCCESS;
    MW_GUARD(want_map(ml, "selector.matchLabels"));
    size_t n = mw_node_len(ml);
    struct pol_label *labels = pol_alloc(&L->set->arena, (n ? n : 1) * sizeof(*labels));
    NOMEM_IF(labels);
    for (size_t i = 0; i < n; i++) {
        const struct mw_node *k = mw_node_key_at(ml, i), *v = mw_node_value_at(ml, i);
        mw_slice ks = text_of(k), vs = text_of(v);
        /* validation.go validateWorkloadSelector: no empty keys, no wildcards. */
        if (ks.n == 0)
            FAIL(k, "selector has an empty label key");
        if (!is_str(v))
            FAIL(v, "selector label \"%s\" must have a string value", mw_node_str(k));
        if (memchr(ks.p, '*', ks.n) != NULL || memchr(vs.p, '*', vs.n) != NULL)
            FAIL(k, "wildcard '*' is not supported in selector label \"%.*s: %.*s\"", (int)ks.n,
                 (const char *)ks.p, (int)vs.n, (const char *)vs.p);
        NOMEM_IF(labels[i].k = dup_slice(&L->set->arena, ks));
        NOMEM_IF(labels[i].v = dup_slice(&L->set->arena, vs));
    }
    L->p->labels = labels;
    L->p->nlabels = n;
    *has_labels = n > 0;
    return MW_SUCCESS;
}

/* RFC 1123 subdomain, or "": Gateway API PolicyTargetReference.group. */
static bool is_group(mw_slice g)
{
    if (g.n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < g.n; i++) {
        uint8_t c = g.p[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (c == '.') {
            if (label == 0 || g.p[i - 1] == '-')
                return false;
            label = 0;
        } else if (alnum || (c == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
    return g.n == 0 || (label > 0 && g.p[g.n - 1] != '-');
}

/* Gateway API Kind: ^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$, at most 63 characters. */
static bool is_kind(mw_slice k)
{
    if (k.n == 0 || k.n > 63)
        return false;
    for (size_t i = 0; i < k.n; i++) {
        uint8_t c = k.p[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        bool digit = c >= '0' && c <= '9';
        if (!(alpha || (i > 0 && (digit || c == '-'))))
            return false;
    }
    return k.p[k.n - 1] != '-';
}

/*
 * Kinds a policy may target (validation.go validatePolicyTargetReference; the CRD schema's
 * patterns for group and kind, checked first as the API server does).
 */
static MW_RESULT check_target_ref(const struct mw_node *ref, const char *what)
{
    if (!is_map(ref))
        FAIL(ref, "%s must be a mapping", what);
    static const char *const keys[] = {"group", "kind", "name", "namespace", NULL};
    MW_GUARD(check_keys(ref, what, keys));
    const struct mw_node *gn = mw_node_get(ref, "group");
    const struct mw_node *kn = mw_node_get(ref, "kind");
    const struct mw_node *nn = mw_node_get(ref, "name");
    mw_slice group = text_of(gn), kind = text_of(kn), name = text_of(nn);
    if (!is_group(group))
        FAIL(gn, "%s.group \"%.*s\" should match an RFC 1123 subdomain or be empty", what,
             (int)(group.n > 253 ? 253 : group.n), (const char *)group.p);
    if (!is_kind(kind))
        FAIL(kn ? kn : ref, "%s.kind \"%.*s\" should match ^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$",
             what, (int)(kind.n > 63 ? 63 : kind.n), (const char *)kind.p);
    if (nn == NULL)
        FAIL(ref, "%s.name: Required value", what);
    if (name.n == 0)
        FAIL(nn, "%s.name must not be empty", what);
    if (text_of(mw_node_get(ref, "namespace")).n != 0)
        FAIL(mw_node_get(ref, "namespace"),
             "%s.namespace must not be set: cross namespace referencing is not supported", what);
    bool ok =
        (mw_slice_eq_cstr(group, "gateway.networking.k8s.io") &&
         (mw_slice_eq_cstr(kind, "Gateway") || mw_slice_eq_cstr(kind, "GatewayClass"))) ||
        ((group.n == 0 || mw_slice_eq_cstr(group, "core")) && mw_slice_eq_cstr(kind, "Service")) ||
        (mw_slice_eq_cstr(group, "networking.istio.io") && mw_slice_eq_cstr(kind, "ServiceEntry"));
    if (!ok)
        FAIL(ref,
             "%s kind \"%.*s/%.*s\" is not supported: want Gateway, GatewayClass, "
             "Service or ServiceEntry",
             what, (int)group.n, (const char *)group.p, (int)kind.n, (const char *)kind.p);
    return MW_SUCCESS;
}

MW_RESULT pol_load_targeting(struct mw_policy_set *set, struct pol_policy *p,
                             const struct mw_node *root, const struct mw_node *spec,
                             bool warn_empty)
{
    struct loader L0 = {set, p, root};
    struct loader *L = &L0;
    const struct mw_node *sel = mw_node_get(spec, "selector");
    const struct mw_node *tr = mw_node_get(spec, "targetRef");
    const struct mw_node *trs = mw_node_get(spec, "targetRefs");
    bool has_trs = trs != NULL && !mw_node_is_null(trs) && !(is_seq(trs) && mw_node_len(trs) == 0);
    if ((sel != NULL) + (tr != NULL) + has_trs > 1)
        FAIL(spec, "only one of targetRefs, targetRef or selector can be set");
    bool has_labels;
    MW_GUARD(load_selector(L, sel, &has_labels));
    if (warn_empty && p->has_selector && !has_labels)
        MW_GUARD(pol_add_warning(set, sel,
                                 "workload selector specified without labels: the policy applies "
                                 "to the whole namespace"));
    if (tr != NULL) {
        MW_GUARD(check_target_ref(tr, "targetRef"));
        p->has_target_refs = true;
    }
    if (trs != NULL && !mw_node_is_null(trs)) {
        if (!is_seq(trs))
            FAIL(trs, "targetRefs must be a list");
        if (mw_node_len(trs) > 16)
            FAIL(trs, "targetRefs has %zu entries, at most 16 are allowed", mw_node_len(trs));
        for (size_t i = 0; i < mw_node_len(trs); i++) {
            char what[48];
            snprintf(what, sizeof(what), "targetRefs[%zu]", i);
            MW_GUARD(check_target_ref(mw_node_item(trs, i), what));
        }
        p->has_target_refs = mw_node_len(trs) > 0;
    }
    return MW_SUCCESS;
}

static MW_RESULT load_targeting(struct loader *L, const struct mw_node *spec)
{
    return pol_load_targeting(L->set, L->p, L->root, spec, false);
}

/* ---------------------------------------------------------------- fields */

enum { F_MTLS = 1, F_HTTP = 2, F_IP = 4, F_PORT = 8, F_SA = 16, F_NOWILD = 32 };

struct field_def {
    const char *name;
    uint8_t attr;
    bool neg;
    unsigned flags;
};

static const struct field_def source_fields[] = {
    {"principals", PA_PRINCIPAL, false, F_MTLS},
    {"notPrincipals", PA_PRINCIPAL, true, F_MTLS},
    {"requestPrincipals", PA_REQUEST_PRINCIPAL, false, F_HTTP},
    {"notRequestPrincipals", PA_REQUEST_PRINCIPAL, true, F_HTTP},
    {"namespaces", PA_NAMESPACE, false, F_MTLS},
    {"notNamespaces", PA_NAMESPACE, true, F_MTLS},
    {"ipBlocks", PA_SOURCE_IP, false, F_IP},
    {"notIpBlocks", PA_SOURCE_IP, true, F_IP},
    {"remoteIpBlocks", PA_REMOTE_IP, false, F_IP},
    {"notRemoteIpBlocks", PA_REMOTE_IP, true, F_IP},
    {"serviceAccounts", PA_SERVICE_ACCOUNT, false, F_MTLS | F_SA},
    {"notServiceAccounts", PA_SERVICE_ACCOUNT, true, F_MTLS | F_SA},
    {"trustDomains", PA_TRUST_DOMAIN, false, F_MTLS},
    {"notTrustDomains", PA_TRUST_DOMAIN, true, F_MTLS},
};

static const struct field_def operation_fields[] = {
    {"hosts", PA_HOST, false, F_HTTP},     {"notHosts", PA_HOST, true, F_HTTP},
    {"ports", PA_PORT, false, F_PORT},     {"notPorts", PA_PORT, true, F_PORT},
    {"methods", PA_METHOD, false, F_HTTP}, {"notMethods", PA_METHOD, true, F_HTTP},
    {"paths", PA_PATH, false, F_HTTP},     {"notPaths", PA_PATH, true, F_HTTP},
};

/* Build one field from a list of strings, with the checks every value list gets. */
static MW_RESULT load_values(struct loader *L, const struct mw_node *list, const char *name,
                             uint8_t attr, bool neg, bool http_only, struct pol_field *f)
{
    struct pol_arena *a = &L->set->arena;
    if (!is_seq(list))
        FAIL(list, "%s must be a list of strings", name);
    size_t n = mw_node_len(list);
    struct pol_value *v = pol_alloc(a, (n ? n : 1) * sizeof(*v));
    NOMEM_IF(v);
    for (size_t i = 0; i < n; i++) {
        const struct mw_node *it = mw_node_item(list, i);
        if (!is_str(it))
            FAIL(it, "%s[%zu] must be a string", name, i);
        mw_slice s = text_of(it);
        /* validation.go: "empty value is not allowed, found in %s". */
        if (s.n == 0)
            FAIL(it, "empty value is not allowed, found in %s", name);
        if (mw_failed(pol_value_parse(a, attr, (const char *)s.p, s.n, L->p->ns, &v[i]))) {
            mw_node_error(it, MW_E_INPUT, "invalid value in %s: %s", name, mw_error_msg());
            return MW_FAILURE;
        }
        NOMEM_IF(v[i].raw = dup_slice(a, s));
    }
    f->attr = attr;
    f->neg = neg;
    f->http_only = http_only;
    NOMEM_IF(f->name = pol_strndup(a, name, strlen(name)));
    f->v = v;
    f->nv = n;
    return MW_SUCCESS;
}

static MW_RESULT check_service_accounts(const struct mw_node *list, const char *name)
{
    /* validation.go validateServiceAccounts: 1..16 entries, 320 chars, no '*', ns/sa or sa. */
    if (mw_node_len(list) > 16)
        FAIL(list, "%s has %zu entries, at most 16 are allowed", name, mw_node_len(list));
    for (size_t i = 0; i < mw_node_len(list); i++) {
        mw_slice s = text_of(mw_node_item(list, i));
        if (s.n > 320)
            FAIL(mw_node_item(list, i), "%s entry longer than 320 characters", name);
        if (memchr(s.p, '*', s.n) != NULL)
            FAIL(mw_node_item(list, i), "wildcards are not allowed in %s", name);
        size_t slashes = 0;
        for (size_t k = 0; k < s.n; k++)
            slashes += s.p[k] == '/';
        if (slashes > 1 || (s.n > 0 && (s.p[0] == '/' || s.p[s.n - 1] == '/')))
            FAIL(mw_node_item(list, i),
                 "%s entry \"%.*s\" must be \"serviceAccount\" or "
                 "\"namespace/serviceAccount\"",
                 name, (int)s.n, (const char *)s.p);
    }
    return MW_SUCCESS;
}

static MW_RESULT load_clause(struct loader *L, const struct mw_node *map, const char *what,
                             const struct field_def *defs, size_t ndefs, struct pol_clause *out,
                             bool *http_only)
{
    if (map == NULL)
        FAIL(L->root, "`%s` must not be nil", what);
    if (mw_node_is_null(map))
        FAIL(map, "`%s` must not be nil", what);
    if (!is_map(map))
        FAIL(map, "%s must be a mapping", what);
    size_t n = mw_node_len(map);
    if (n == 0)
        FAIL(map, "`%s` must not be empty", what);
    struct pol_field *f = pol_alloc(&L->set->arena, n * sizeof(*f));
    NOMEM_IF(f);
    size_t nf = 0;
    bool sa = false, ns_or_p = false;
    for (size_t i = 0; i < n; i++) {
        const struct mw_node *k = mw_node_key_at(map, i), *v = mw_node_value_at(map, i);
        const struct field_def *d = NULL;
        for (size_t j = 0; j < ndefs && d == NULL; j++) {
            if (strcmp(mw_node_str(k), defs[j].name) == 0)
                d = &defs[j];
        }
        if (d == NULL)
            FAIL(k, "unknown field \"%s\" in %s", mw_node_str(k), what);
        if (mw_node_is_null(v) || (is_seq(v) && mw_node_len(v) == 0))
            continue; /* proto3: an empty list is the same as an absent one */
        if (L->p->action == PACT_CUSTOM && !(d->flags & (F_IP | F_PORT)) && d->attr != PA_HOST &&
            d->attr != PA_METHOD && d->attr != PA_PATH)
            FAIL(k, "%s is not supported with action CUSTOM", d->name);
        MW_GUARD(load_values(L, v, d->name, d->attr, d->neg, (d->flags & F_HTTP) != 0, &f[nf]));
        if (d->flags & F_SA) {
            MW_GUARD(check_service_accounts(v, d->name));
            sa = true;
        }
        if (d->attr == PA_PRINCIPAL || d->attr == PA_NAMESPACE)
            ns_or_p = true;
        if (d->flags & F_HTTP)
            *http_only = true;
        nf++;
    }
    if (nf == 0)
        FAIL(map, "`%s` must not be empty", what);
    if (sa && ns_or_p)
        FAIL(map, "cannot set serviceAccounts with namespaces or principals in one source");
    out->f = f;
    out->nf = nf;
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- when keys */

static bool has_brackets(const char *k, const char *prefix, mw_slice *inner)
{
    size_t pn = strlen(prefix), n = strlen(k);
    if (n < pn + 3 || memcmp(k, prefix, pn) != 0 || k[pn] != '[' || k[n - 1] != ']')
        return false;
    *inner = mw_slice_make(k + pn + 1, n - pn - 2);
    return true;
}

/* Split "a][b][c" (the inside of request.auth.claims[...]) into claim names. */
static MW_RESULT claim_path(struct pol_arena *a, const struct mw_node *kn, mw_slice inner,
                            struct pol_field *f)
{
    size_t parts = 1;
    for (size_t i = 0; i + 1 < inner.n; i++)
        parts += inner.p[i] == ']' && inner.p[i + 1] == '[';
    const char **names = pol_alloc(a, parts * sizeof(*names));
    NOMEM_IF(names);
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= inner.n; i++) {
        if (i == inner.n || (inner.p[i] == ']' && i + 1 < inner.n && inner.p[i + 1] == '[')) {
            if (i == start)
                FAIL(kn, "invalid claim key \"%s\": empty claim name", mw_node_str(kn));
            mw_slice part = mw_slice_sub(inner, start, i - start);
            if (mw_slice_find(part, '[', 0) != part.n || mw_slice_find(part, ']', 0) != part.n)
                FAIL(kn, "invalid claim key \"%s\"", mw_node_str(kn));
            NOMEM_IF(names[k++] = dup_slice(a, part));
            start = i + 2;
            i++;
        }
    }
    f->claim = names;
    f->claim_n = k;
    return MW_SUCCESS;
}

/*
 * security.go ValidateAttribute: the accepted keys, the explicitly refused ones, and which of
 * them are HTTP-only (model/generator.go "... is HTTP only").
 */
static MW_RESULT when_key(struct loader *L, const struct mw_node *kn, struct pol_field *f,
                          bool *http_only)
{
    struct pol_arena *a = &L->set->arena;
    const char *k = mw_node_str(kn);
    mw_slice inner;
    bool custom = L->p->action == PACT_CUSTOM;
    bool prov = L->p->kind == PK_PROVENANCE;
    static const struct {
        const char *key;
        uint8_t attr;
        bool http, mtls;
    } simple[] = {
        {"source.ip", PA_SOURCE_IP, false, false},
        {"remote.ip", PA_REMOTE_IP, false, false},
        {"source.namespace", PA_NAMESPACE, false, true},
        {"source.principal", PA_PRINCIPAL, false, true},
        {"source.serviceAccount", PA_SERVICE_ACCOUNT, false, true},
        {"source.trustDomain", PA_TRUST_DOMAIN, false, true},
        {"request.auth.principal", PA_REQUEST_PRINCIPAL, true, false},
        {"request.auth.audiences", PA_CLAIM, true, false},
        {"request.auth.presenter", PA_CLAIM, true, false},
        {"destination.ip", PA_DEST_IP, false, false},
        {"destination.port", PA_PORT, false, false},
        {"connection.sni", PA_SNI, false, false},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(simple); i++) {
        if (strcmp(k, simple[i].key) != 0)
            continue;
        if (custom && (simple[i].mtls || simple[i].attr == PA_REQUEST_PRINCIPAL ||
                       simple[i].attr == PA_CLAIM))
            FAIL(kn, "condition key \"%s\" is not supported with action CUSTOM", k);
        f->attr = simple[i].attr;
        f->http_only = simple[i].http;
        if (simple[i].attr == PA_CLAIM) {
            /* Envoy reads these from the JWT payload: aud and azp. */
            const char **names = pol_alloc(a, sizeof(*names));
            NOMEM_IF(names);
            names[0] = strcmp(k, "request.auth.audiences") == 0 ? "aud" : "azp";
            f->claim = names;
            f->claim_n = 1;
        }
        *http_only |= simple[i].http;
        return MW_SUCCESS;
    }
    if (has_brackets(k, "request.headers", &inner)) {
        if (inner.n == 0)
            FAIL(kn, "invalid condition key \"%s\": empty header name", k);
        f->attr = PA_HEADER;
        f->http_only = true;
        NOMEM_IF(f->hname = dup_slice(a, inner));
        f->hname_n = inner.n;
        *http_only = true;
        return MW_SUCCESS;
    }
    if (strncmp(k, "request.auth.claims", 19) == 0) {
        if (custom)
            FAIL(kn, "condition key \"%s\" is not supported with action CUSTOM", k);
        if (!has_brackets(k, "request.auth.claims", &inner) || inner.n == 0)
            FAIL(kn, "invalid condition key \"%s\": want request.auth.claims[name]", k);
        f->attr = PA_CLAIM;
        f->http_only = true;
        *http_only = true;
        return claim_path(a, kn, inner, f);
    }
    if (strncmp(k, "experimental.envoy.filters.", 27) == 0) {
        f->attr = PA_METADATA;
        return MW_SUCCESS;
    }
    if (prov) {
        static const struct {
            const char *key;
            uint8_t attr;
        } pk[] = {
            {"source.provenance.imageDigest", PA_IMAGE_DIGEST},
            {"source.provenance.builderId", PA_BUILDER_ID},
            {"source.provenance.sourceRepository", PA_SOURCE_REPO},
        };
        for (size_t i = 0; i < MW_ARRAY_LEN(pk); i++) {
            if (strcmp(k, pk[i].key) == 0) {
                f->attr = pk[i].attr;
                return MW_SUCCESS;
            }
        }
    }
    if (strcmp(k, "destination.namespace") == 0)
        FAIL(kn, "condition key destination.namespace is not supported: use metadata.namespace");
    if (strncmp(k, "destination.labels", 18) == 0)
        FAIL(kn, "condition key %s is not supported: use selector", k);
    if (strcmp(k, "destination.name") == 0 || strcmp(k, "destination.user") == 0)
        FAIL(kn, "condition key %s is only supported in v1alpha1", k);
    FAIL(kn, "unknown attribute: %s", k);
}

static MW_RESULT load_when(struct loader *L, const struct mw_node *when, struct pol_clause *out,
                           bool *http_only)
{
    if (!is_seq(when))
        FAIL(when, "when must be a list");
    size_t n = mw_node_len(when);
    struct pol_field *f = pol_alloc(&L->set->arena, (n > 0 ? 2 * n : 1) * sizeof(*f));
    NOMEM_IF(f);
    size_t nf = 0;
    for (size_t i = 0; i < n; i++) {
        const struct mw_node *c = mw_node_item(when, i);
        if (!is_map(c))
            FAIL(c ? c : when, "when[%zu] must be a mapping", i);
        static const char *const keys[] = {"key", "values", "notValues", NULL};
        MW_GUARD(check_keys(c, "when", keys));
        const struct mw_node *kn = mw_node_get(c, "key");
        if (!is_str(kn) || text_of(kn).n == 0)
            FAIL(c, "`key` must not be empty");
        const struct mw_node *vals = mw_node_get(c, "values");
        const struct mw_node *nvals = mw_node_get(c, "notValues");
        bool hv = vals != NULL && !mw_node_is_null(vals) && mw_node_len(vals) > 0;
        bool hn = nvals != NULL && !mw_node_is_null(nvals) && mw_node_len(nvals) > 0;
        if (!hv && !hn)
            FAIL(c, "at least one of values or notValues must be set for key %s", mw_node_str(kn));
        struct pol_field proto = {0};
        MW_GUARD(when_key(L, kn, &proto, http_only));
        const char *kname = pol_strndup(&L->set->arena, mw_node_str(kn), strlen(mw_node_str(kn)));
        NOMEM_IF(kname);
        for (int neg = 0; neg < 2; neg++) {
            const struct mw_node *list = neg ? nvals : vals;
            if (!(neg ? hn : hv))
                continue;
            struct pol_field *dst = &f[nf];
            *dst = proto;
            uint8_t parse_attr = proto.attr;
            if (parse_attr == PA_SERVICE_ACCOUNT) {
                /* source.serviceAccount values are "ns/sa" (conditions doc). */
                for (size_t j = 0; j < mw_node_len(list); j++) {
                    mw_slice s = text_of(mw_node_item(list, j));
                    if (s.n > 0 && mw_slice_find(s, '/', 0) == s.n)
                        FAIL(mw_node_item(list, j),
                             "source.serviceAccount value \"%.*s\" must be namespace/name",
                             (int)s.n, (const char *)s.p);
                }
            }
            if (parse_attr == PA_METADATA || parse_attr == PA_IMAGE_DIGEST ||
                parse_attr == PA_BUILDER_ID || parse_attr == PA_SOURCE_REPO)
                parse_attr = PA_SNI; /* plain string forms */
            MW_GUARD(load_values(L, list, kname, parse_attr, neg != 0, proto.http_only, dst));
            dst->attr = proto.attr;
            nf++;
        }
    }
    out->f = f;
    out->nf = nf;
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- rules */

static MW_RESULT load_side(struct loader *L, const struct mw_node *list, const char *side,
                           const char *inner, const struct field_def *defs, size_t ndefs,
                           const struct pol_clause **out, size_t *nout, bool *http_only)
{
    if (list == NULL || mw_node_is_null(list))
        return MW_SUCCESS;
    if (!is_seq(list))
        FAIL(list, "%s must be a list", side);
    size_t n = mw_node_len(list);
    /*
     * validation.go: "`from` must not be empty". The Go test builds a non-nil empty slice;
     * we keep an explicit [] apart from an absent field and refuse it the same way.
     */
    if (n == 0)
        FAIL(list, "`%s` must not be empty", side);
    struct pol_clause *c = pol_alloc(&L->set->arena, n * sizeof(*c));
    NOMEM_IF(c);
    char what[64];
    snprintf(what, sizeof(what), "%s.%s", side, inner);
    for (size_t i = 0; i < n; i++) {
        const struct mw_node *item = mw_node_item(list, i);
        if (!is_map(item))
            FAIL(item ? item : list, "%s[%zu] must be a mapping", side, i);
        const char *const keys[] = {inner, NULL};
        MW_GUARD(check_keys(item, side, keys));
        const struct mw_node *body = mw_node_get(item, inner);
        if (body == NULL)
            FAIL(item, "`%s` must not be nil", what);
        MW_GUARD(load_clause(L, body, what, defs, ndefs, &c[i], http_only));
    }
    *out = c;
    *nout = n;
    return MW_SUCCESS;
}

static MW_RESULT load_rules(struct loader *L, const struct mw_node *rules)
{
    if (!is_seq(rules))
        FAIL(rules, "rules must be a list");
    size_t n = mw_node_len(rules);
    struct pol_rule *r = pol_alloc(&L->set->arena, (n ? n : 1) * sizeof(*r));
    NOMEM_IF(r);
    for (size_t i = 0; i < n; i++) {
        const struct mw_node *rn = mw_node_item(rules, i);
        if (rn != NULL && mw_node_is_null(rn))
            FAIL(rn, "rule must not be nil");
        if (!is_map(rn))
            FAIL(rn ? rn : rules, "rules[%zu] must be a mapping", i);
        static const char *const keys[] = {"from", "to", "when", NULL};
        MW_GUARD(check_keys(rn, "rule", keys));
        r[i].line = mw_node_line(rn);
        MW_GUARD(load_side(L, mw_node_get(rn, "from"), "from", "source", source_fields,
                           MW_ARRAY_LEN(source_fields), &r[i].from, &r[i].nfrom, &r[i].http_only));
        MW_GUARD(load_side(L, mw_node_get(rn, "to"), "to", "operation", operation_fields,
                           MW_ARRAY_LEN(operation_fields), &r[i].to, &r[i].nto, &r[i].http_only));
        const struct mw_node *when = mw_node_get(rn, "when");
        if (when != NULL && !mw_node_is_null(when))
            MW_GUARD(load_when(L, when, &r[i].when, &r[i].http_only));
    }
    L->p->rules = r;
    L->p->nrules = n;
    return MW_SUCCESS;
}

static bool rule_has_http_to(const struct mw_node *rule)
{
    const struct mw_node *to = mw_node_get(rule, "to");
    for (size_t i = 0; is_seq(to) && i < mw_node_len(to); i++) {
        const struct mw_node *op = mw_node_get(mw_node_item(to, i), "operation");
        if (is_map(op) && mw_node_get(op, "ports") == NULL && mw_node_get(op, "notPorts") == NULL &&
            (mw_node_get(op, "methods") || mw_node_get(op, "notMethods") ||
             mw_node_get(op, "paths") || mw_node_get(op, "notPaths") || mw_node_get(op, "hosts") ||
             mw_node_get(op, "notHosts")))
            return true;
    }
    return false;
}

static MW_RESULT load_authz(struct loader *L, const struct mw_node *spec)
{
    static const char *const keys[] = {"selector", "targetRef", "targetRefs", "action",
                                       "provider", "rules",     NULL};
    MW_GUARD(check_keys(spec, "spec", keys));
    const struct mw_node *act = mw_node_get(spec, "action");
    mw_slice a = text_of(act);
    if (a.n == 0 || mw_slice_eq_cstr(a, "ALLOW"))
        L->p->action = PACT_ALLOW;
    else if (mw_slice_eq_cstr(a, "DENY"))
        L->p->action = PACT_DENY;
    else if (mw_slice_eq_cstr(a, "AUDIT") && L->p->kind == PK_AUTHZ)
        L->p->action = PACT_AUDIT;
    else if (mw_slice_eq_cstr(a, "CUSTOM") && L->p->kind == PK_AUTHZ)
        L->p->action = PACT_CUSTOM;
    else
        FAIL(act, "Unsupported value: \"%.*s\": action must be %s", (int)a.n, (const char *)a.p,
             L->p->kind == PK_AUTHZ ? "ALLOW, DENY, AUDIT or CUSTOM" : "ALLOW or DENY");
    MW_GUARD(load_targeting(L, spec));
    const struct mw_node *prov = mw_node_get(spec, "provider");
    if (L->p->action == PACT_CUSTOM) {
        static const char *const pkeys[] = {"name", NULL};
        if (is_map(prov))
            MW_GUARD(check_keys(prov, "provider", pkeys));
        mw_slice pn = is_map(prov) ? text_of(mw_node_get(prov, "name")) : mw_slice_make("", 0);
        if (pn.n == 0)
            FAIL(prov ? prov : spec, "`provider.name` must not be empty");
        NOMEM_IF(L->p->provider = dup_slice(&L->set->arena, pn));
    } else if (prov != NULL) {
        FAIL(prov, "`provider` must only be set with action CUSTOM");
    }
    const struct mw_node *rules = mw_node_get(spec, "rules");
    bool no_rules = rules == NULL || mw_node_is_null(rules) || mw_node_len(rules) == 0;
    if (no_rules && L->p->action == PACT_DENY)
        FAIL(act ? act : spec, "DENY action without `rules` is meaningless: it would never match");
    if (no_rules && L->p->action == PACT_CUSTOM)
        FAIL(act ? act : spec,
             "CUSTOM action without `rules` is meaningless: it would never match");
    MW_GUARD(check_dry_run(L, mw_node_get(L->root, "metadata")));
    if (!no_rules) {
        MW_GUARD(load_rules(L, rules));
        /*
         * validation.go warns about DENY rules that are HTTP-only on the operation side without
         * ports, or that only name HTTP attributes: on a TCP port they deny everything.
         */
        if (L->p->action == PACT_DENY) {
            for (size_t i = 0; i < mw_node_len(rules); i++) {
                const struct mw_node *rn = mw_node_item(rules, i);
                if (L->p->rules[i].http_only &&
                    (rule_has_http_to(rn) || mw_node_get(rn, "to") == NULL))
                    MW_GUARD(
                        pol_add_warning(L->set, rn,
                                        "DENY rule uses HTTP-only attributes without ports: it "
                                        "denies all TCP traffic; it is recommended to "
                                        "explicitly specify the port"));
            }
        }
    }
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- PeerAuthentication */

static MW_RESULT mtls_mode(const struct mw_node *mtls, enum mw_policy_mtls *out)
{
    *out = MW_POLICY_MTLS_UNSET;
    if (mtls == NULL || mw_node_is_null(mtls))
        return MW_SUCCESS;
    if (!is_map(mtls))
        FAIL(mtls, "mtls must be a mapping");
    static const char *const keys[] = {"mode", NULL};
    MW_GUARD(check_keys(mtls, "mtls", keys));
    const struct mw_node *m = mw_node_get(mtls, "mode");
    mw_slice s = text_of(m);
    static const char *const names[] = {"UNSET", "DISABLE", "PERMISSIVE", "STRICT"};
    if (s.n == 0)
        return MW_SUCCESS;
    for (size_t i = 0; i < MW_ARRAY_LEN(names); i++) {
        if (mw_slice_eq_cstr(s, names[i])) {
            *out = (enum mw_policy_mtls)i;
            return MW_SUCCESS;
        }
    }
    FAIL(m, "Unsupported value: \"%.*s\": mtls mode must be UNSET, DISABLE, PERMISSIVE or STRICT",
         (int)s.n, (const char *)s.p);
}

static MW_RESULT load_peerauth(struct loader *L, const struct mw_node *spec)
{
    static const char *const keys[] = {"selector", "mtls", "portLevelMtls", NULL};
    MW_GUARD(check_keys(spec, "spec", keys));
    bool has_labels;
    MW_GUARD(load_selector(L, mw_node_get(spec, "selector"), &has_labels));
    if (L->p->has_selector && !has_labels)
        MW_GUARD(pol_add_warning(L->set, mw_node_get(spec, "selector"),
                                 "workload selector specified without labels: the policy applies "
                                 "to the whole namespace"));
    MW_GUARD(mtls_mode(mw_node_get(spec, "mtls"), &L->p->mode));
    const struct mw_node *plm = mw_node_get(spec, "portLevelMtls");
    if (plm == NULL || mw_node_is_null(plm))
        return MW_SUCCESS;
    if (!is_map(plm))
        FAIL(plm, "portLevelMtls must be a mapping of port to mtls");
    size_t n = mw_node_len(plm);
    if (n == 0)
        FAIL(plm, "spec.portLevelMtls in body should have at least 1 properties: port level "
                  "mTLS, if defined, must have at least one element");
    if (!has_labels)
        FAIL(plm, "portLevelMtls requires selector: mesh and namespace peer authentication "
                  "cannot have port level mTLS");
    struct pol_port_mtls *ports = pol_alloc(&L->set->arena, n * sizeof(*ports));
    NOMEM_IF(ports);
    for (size_t i = 0; i < n; i++) {
        const struct mw_node *k = mw_node_key_at(plm, i);
        mw_slice ks = text_of(k);
        bool digits = ks.n > 0 && ks.n <= 19;
        for (size_t j = 0; j < ks.n && digits; j++)
            digits = ks.p[j] >= '0' && ks.p[j] <= '9';
        if (!digits)
            FAIL(k, "type conversion error from string \"%.*s\": portLevelMtls keys are ports",
                 (int)ks.n, (const char *)ks.p);
        uint64_t port;
        if (mw_failed(mw_parse_u64(ks, 0, UINT64_MAX, "port", &port)) || port < 1 || port > 65535)
            FAIL(k, "port must be between 1-65535, got %.*s", (int)ks.n, (const char *)ks.p);
        ports[i].port = (uint16_t)port;
        MW_GUARD(mtls_mode(mw_node_value_at(plm, i), &ports[i].mode));
    }
    L->p->ports = ports;
    L->p->nports = n;
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- documents */

static MW_RESULT push(struct mw_policy_set *set, struct pol_policy *p)
{
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        struct pol_policy **np = realloc(set->p, cap * sizeof(*np));
        NOMEM_IF(np);
        set->p = np;
        set->cap = cap;
    }
    set->p[set->n++] = p;
    return MW_SUCCESS;
}

MW_RESULT mw_policy_set_add_doc(struct mw_policy_set *set, const struct mw_node *root)
{
    if (root == NULL)
        return MW_SUCCESS;
    if (!is_map(root))
        FAIL(root, "document must be a mapping with apiVersion and kind");
    mw_slice api = text_of(mw_node_get(root, "apiVersion"));
    mw_slice kind = text_of(mw_node_get(root, "kind"));
    enum pol_kind k;
    bool istio = mw_slice_eq_cstr(api, "security.istio.io/v1") ||
                 mw_slice_eq_cstr(api, "security.istio.io/v1beta1");
    if (istio && mw_slice_eq_cstr(kind, "AuthorizationPolicy")) {
        k = PK_AUTHZ;
    } else if (istio && mw_slice_eq_cstr(kind, "PeerAuthentication")) {
        k = PK_PEERAUTH;
    } else if (istio && mw_slice_eq_cstr(kind, "RequestAuthentication")) {
        k = PK_REQAUTHN;
    } else if (mw_slice_eq_cstr(api, "meshward.io/v1alpha1") &&
               mw_slice_eq_cstr(kind, "ProvenancePolicy")) {
        k = PK_PROVENANCE;
    } else if (mw_slice_eq_cstr(api, "security.istio.io/v1alpha1") ||
               (mw_slice_eq_cstr(kind, "AuthorizationPolicy") ||
                mw_slice_eq_cstr(kind, "PeerAuthentication") ||
                mw_slice_eq_cstr(kind, "RequestAuthentication"))) {
        FAIL(root, "%.*s %.*s is not supported: want security.istio.io/v1 or v1beta1", (int)api.n,
             (const char *)api.p, (int)kind.n, (const char *)kind.p);
    } else {
        char msg[256];
        snprintf(msg, sizeof(msg), "skipped %.*s %.*s: not a policy kind meshward evaluates",
                 (int)(api.n > 80 ? 80 : api.n), (const char *)api.p,
                 (int)(kind.n > 80 ? 80 : kind.n), (const char *)kind.p);
        return pol_add_warning(set, root, msg);
    }
    struct pol_policy *p = pol_alloc(&set->arena, sizeof(*p));
    NOMEM_IF(p);
    p->kind = k;
    p->file = pol_strndup(&set->arena, mw_node_file(root), strlen(mw_node_file(root)));
    NOMEM_IF(p->file);
    p->line = mw_node_line(root);
    struct loader L = {set, p, root};
    MW_GUARD(load_metadata(&L, mw_node_get(root, "metadata")));
    const struct mw_node *spec = mw_node_get(root, "spec");
    if (spec == NULL || mw_node_is_null(spec)) {
        /* An absent spec is the empty spec: ALLOW with no rules (allow-nothing). */
        if (k == PK_AUTHZ || k == PK_PROVENANCE) {
            p->action = PACT_ALLOW;
            MW_GUARD(check_dry_run(&L, mw_node_get(root, "metadata")));
        } else if (mw_node_get(mw_node_get(root, "metadata"), "annotations") != NULL) {
            MW_GUARD(check_dry_run(&L, mw_node_get(root, "metadata")));
        }
        return push(set, p);
    }
    if (!is_map(spec))
        FAIL(spec, "spec must be a mapping");
    if (k == PK_PEERAUTH || k == PK_REQAUTHN) {
        if (mw_node_get(mw_node_get(root, "metadata"), "annotations") != NULL)
            MW_GUARD(check_dry_run(&L, mw_node_get(root, "metadata")));
        if (k == PK_PEERAUTH)
            MW_GUARD(load_peerauth(&L, spec));
        else
            MW_GUARD(pol_reqauthn_load(set, p, root, spec));
    } else {
        MW_GUARD(load_authz(&L, spec));
    }
    return push(set, p);
}

MW_RESULT mw_policy_set_add_yaml(struct mw_policy_set *set, mw_slice text, const char *name)
{
    struct mw_docs *docs;
    MW_GUARD(mw_yaml_load(text, name, &mw_conf_default_limits, &docs));
    for (size_t i = 0; i < mw_docs_count(docs); i++) {
        if (mw_failed(mw_policy_set_add_doc(set, mw_docs_root(docs, i)))) {
            mw_docs_free(docs);
            return MW_FAILURE;
        }
    }
    mw_docs_free(docs);
    return MW_SUCCESS;
}

MW_RESULT mw_policy_set_add_file(struct mw_policy_set *set, const char *path)
{
    struct mw_docs *docs;
    MW_GUARD(mw_yaml_load_file(path, &mw_conf_default_limits, &docs));
    for (size_t i = 0; i < mw_docs_count(docs); i++) {
        if (mw_failed(mw_policy_set_add_doc(set, mw_docs_root(docs, i)))) {
            mw_docs_free(docs);
            return MW_FAILURE;
        }
    }
    mw_docs_free(docs);
    return MW_SUCCESS;
}

MW_RESULT mw_policy_set_new(struct mw_policy_set **out)
{
    struct mw_policy_set *s = calloc(1, sizeof(*s));
    NOMEM_IF(s);
    *out = s;
    return MW_SUCCESS;
}

void mw_policy_set_free(struct mw_policy_set *set)
{
    if (set == NULL)
        return;
    pol_arena_free(&set->arena);
    for (size_t i = 0; i < set->nwarnings; i++)
        free(set->warnings[i]);
    free(set->warnings);
    free(set->p);
    free(set);
}

size_t mw_policy_set_count(const struct mw_policy_set *set)
{
    return set->n;
}

size_t mw_policy_set_warning_count(const struct mw_policy_set *set)
{
    return set->nwarnings;
}

const char *mw_policy_set_warning(const struct mw_policy_set *set, size_t i)
{
    return i < set->nwarnings ? set->warnings[i] : NULL;
}
