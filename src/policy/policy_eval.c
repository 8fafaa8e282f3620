/*
 * Per-workload compilation and request evaluation (istio/api authorization_policy.proto
 * evaluation order; istio/istio pilot/pkg/security/authz/builder and model for the Envoy RBAC
 * that Istio generates, whose behaviour we reproduce).
 */
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policy/policy_internal.h"

struct mw_policy_engine {
    struct mw_policy_mesh mesh;
    const char *td;
    mw_slice *tds; /* trust domain and its aliases */
    size_t ntds;
    const struct pol_policy **by[4]; /* by action */
    size_t n[4];
    size_t enforced_allow;
    struct pol_index ix;
};

static const char *const action_names[] = {"ALLOW", "DENY", "AUDIT", "CUSTOM"};

MW_RESULT mw_policy_path_norm_parse(const char *name, enum mw_policy_path_norm *out)
{
    static const struct {
        const char *n;
        enum mw_policy_path_norm m;
    } t[] = {{"BASE", MW_POLICY_PATH_BASE},
             {"DEFAULT", MW_POLICY_PATH_BASE},
             {"MERGE_SLASHES", MW_POLICY_PATH_MERGE_SLASHES},
             {"DECODE_AND_MERGE_SLASHES", MW_POLICY_PATH_DECODE_AND_MERGE_SLASHES},
             {"NONE", MW_POLICY_PATH_NONE}};
    for (size_t i = 0; i < MW_ARRAY_LEN(t); i++) {
        if (strcmp(name, t[i].n) == 0) {
            *out = t[i].m;
            return MW_SUCCESS;
        }
    }
    MW_BAIL(MW_E_INPUT,
            "unknown path normalization \"%s\": want BASE, MERGE_SLASHES, "
            "DECODE_AND_MERGE_SLASHES or NONE",
            name);
}

const char *mw_policy_mtls_name(enum mw_policy_mtls mode)
{
    static const char *const names[] = {"UNSET", "DISABLE", "PERMISSIVE", "STRICT"};
    return (unsigned)mode < MW_ARRAY_LEN(names) ? names[mode] : "?";
}

static const char *root_ns(const struct mw_policy_mesh *m)
{
    return m && m->root_namespace ? m->root_namespace : "istio-system";
}

/* Which policies apply (pilot/pkg/model/authorization.go ListAuthorizationPolicies). */
static bool applies(const struct pol_policy *p, const struct mw_policy_mesh *mesh, const char *ns,
                    const char *const *k, const char *const *v, size_t n)
{
    if (strcmp(p->ns, ns) != 0 && strcmp(p->ns, root_ns(mesh)) != 0)
        return false;
    /* Sidecars ignore targetRefs policies; only waypoints and gateways read them (1.22+). */
    if (p->has_target_refs)
        return false;
    return pol_labels_subset(p, k, v, n);
}

MW_RESULT mw_policy_engine_compile(const struct mw_policy_set *set,
                                   const struct mw_policy_mesh *mesh, const char *ns,
                                   const char *const *label_keys, const char *const *label_values,
                                   size_t n_labels, struct mw_policy_engine **out)
{
    struct mw_policy_engine *e = calloc(1, sizeof(*e));
    MW_ENSURE(e != NULL, MW_E_NOMEM, "out of memory");
    if (mesh != NULL)
        e->mesh = *mesh;
    e->td = e->mesh.trust_domain ? e->mesh.trust_domain : "cluster.local";
    e->tds = calloc(1 + e->mesh.n_trust_domain_aliases, sizeof(*e->tds));
    for (int a = 0; a < 4; a++)
        e->by[a] = calloc(set->n ? set->n : 1, sizeof(*e->by[a]));
    if (e->tds == NULL || !e->by[0] || !e->by[1] || !e->by[2] || !e->by[3]) {
        mw_policy_engine_free(e);
        MW_BAIL(MW_E_NOMEM, "out of memory");
    }
    e->tds[e->ntds++] = mw_slice_cstr(e->td);
    for (size_t i = 0; i < e->mesh.n_trust_domain_aliases; i++)
        e->tds[e->ntds++] = mw_slice_cstr(e->mesh.trust_domain_aliases[i]);
    for (size_t i = 0; i < set->n; i++) {
        const struct pol_policy *p = set->p[i];
        /* Only authorization kinds decide; RequestAuthentication is validated, not evaluated. */
        if ((p->kind != PK_AUTHZ && p->kind != PK_PROVENANCE) || p->dry_run)
            continue;
        if (!applies(p, &e->mesh, ns, label_keys, label_values, n_labels))
            continue;
        e->by[p->action][e->n[p->action]++] = p;
    }
    const struct pol_policy *const *const by[4] = {e->by[0], e->by[1], e->by[2], e->by[3]};
    if (mw_failed(pol_index_build(&e->ix, by, e->n))) {
        mw_policy_engine_free(e);
        return MW_FAILURE;
    }
    *out = e;
    return MW_SUCCESS;
}

void mw_policy_engine_free(struct mw_policy_engine *e)
{
    if (e == NULL)
        return;
    pol_index_free(&e->ix);
    for (int a = 0; a < 4; a++)
        free(e->by[a]);
    free(e->tds);
    free(e);
}

size_t mw_policy_engine_count(const struct mw_policy_engine *e, const char *action)
{
    for (int a = 0; a < 4; a++) {
        if (strcmp(action, action_names[a]) == 0)
            return e->n[a];
    }
    return 0;
}

/* ---------------------------------------------------------------- request context */

/* At most this many "/ns/<x>/" readings of a principal are kept; more fall back to scanning. */
#define MAX_NS 8

/* Per-request values derived once, on the stack. */
struct ctx {
    const struct mw_policy_engine *e;
    const struct mw_policy_request *r;
    uint32_t have; /* PB_* bits of the attributes the request has */
    /* Made when first needed (peer_td, peer_ns, peer_keys): */
    bool td_ready, ns_ready, keys_ready;
    mw_slice td;  /* trust domain of the peer */
    bool td_mesh; /* it is the mesh's trust domain or an alias */
    size_t nns;   /* namespaces the principal can be read as (pol_ns_glob_match), or SIZE_MAX */
    mw_slice ns[MAX_NS];
    uint64_t ns_h[MAX_NS];
    mw_slice id_rest; /* the principal from its first '/' (the principal gate's key) */
    uint64_t id_rest_h;
    /* Both path readings are made at the first path condition: most requests never reach one. */
    bool paths_ready;
    bool path_failed;
    mw_slice path;   /* normalised per the mesh mode */
    mw_slice strict; /* strictest reading, compared case-insensitively */
    char pbuf[MW_POLICY_MAX_PATH];
    char sbuf[MW_POLICY_MAX_PATH];
};

static bool present(mw_slice s)
{
    return s.p != NULL;
}

static bool slice_eq_str(mw_slice a, const char *s, size_t n)
{
    return a.n == n && memcmp(a.p, s, n) == 0;
}

/* The peer's trust domain, once per request (source_principal is present). */
static void peer_td(struct ctx *c)
{
    if (c->td_ready)
        return;
    c->td_ready = true;
    mw_slice id = c->r->source_principal;
    c->td = mw_slice_sub(id, 0, mw_slice_find(id, '/', 0));
    c->td_mesh = false;
    for (size_t i = 0; i < c->e->ntds && !c->td_mesh; i++)
        c->td_mesh = mw_slice_eq(c->td, c->e->tds[i]);
}

/* Every text between a "/ns/" and a later '/': what pol_ns_glob_match tries. */
static void peer_ns(struct ctx *c)
{
    if (c->ns_ready)
        return;
    c->ns_ready = true;
    mw_slice id = c->r->source_principal;
    c->nns = 0;
    for (size_t i = mw_slice_find(id, '/', 0); i + 4 <= id.n && c->nns != SIZE_MAX;
         i = mw_slice_find(id, '/', i + 1)) {
        if (memcmp(id.p + i, "/ns/", 4) != 0)
            continue;
        for (size_t j = i + 4; j < id.n && c->nns != SIZE_MAX; j++) {
            if (id.p[j] != '/')
                continue;
            if (c->nns == MAX_NS) {
                c->nns = SIZE_MAX;
                break;
            }
            c->ns[c->nns++] = mw_slice_make(id.p + i + 4, j - i - 4);
        }
    }
}

/* The keys the peer's identity is looked up under in the index. */
static void peer_keys(struct ctx *c)
{
    if (c->keys_ready)
        return;
    c->keys_ready = true;
    mw_slice id = c->r->source_principal;
    size_t slash = mw_slice_find(id, '/', 0);
    c->id_rest = mw_slice_make(id.p + slash, id.n - slash);
    c->id_rest_h = pol_index_hash(c->id_rest.p, c->id_rest.n);
    peer_ns(c);
    for (size_t i = 0; i < c->nns && c->nns != SIZE_MAX; i++)
        c->ns_h[i] = pol_index_hash(c->ns[i].p, c->ns[i].n);
}

/* Which attributes the request has (PB_*), for the index's presence bits. */
static uint32_t presence(const struct mw_policy_request *r)
{
    uint32_t have = 0;
    have |= present(r->source_principal) ? PB_PEER : 0;
    have |= present(r->request_principal) ? PB_REQ_PRINCIPAL : 0;
    have |= present(r->host) ? PB_HOST : 0;
    have |= present(r->method) ? PB_METHOD : 0;
    have |= present(r->path) ? PB_PATH : 0;
    have |= present(r->sni) ? PB_SNI : 0;
    have |= present(r->image_digest) ? PB_IMAGE_DIGEST : 0;
    have |= present(r->builder_id) ? PB_BUILDER_ID : 0;
    have |= present(r->source_repository) ? PB_SOURCE_REPO : 0;
    have |= r->jwt_claims != NULL ? PB_CLAIMS : 0;
    have |= r->source_ip.family != 0 ? PB_SOURCE_IP : 0;
    have |=
        (r->remote_ip.family ? r->remote_ip.family : r->source_ip.family) != 0 ? PB_REMOTE_IP : 0;
    have |= r->destination_ip.family != 0 ? PB_DEST_IP : 0;
    return have;
}

static bool principal_match(struct ctx *c, const struct pol_value *v, mw_slice id)
{
    if (v->kind != PM_PRINCIPAL_TD)
        return pol_str_match(v, id, false);
    peer_td(c);
    /* The written trust domain is either a pointer to the mesh's, or kept as is. */
    static const char local[] = "cluster.local";
    bool pointer = v->n2 == sizeof(local) - 1 && memcmp(v->s2, local, v->n2) == 0;
    for (size_t i = 0; i < c->e->ntds && !pointer; i++)
        pointer = slice_eq_str(c->e->tds[i], v->s2, v->n2);
    if (!pointer)
        return id.n == v->n2 + v->n && memcmp(id.p, v->s2, v->n2) == 0 &&
               memcmp(id.p + v->n2, v->s, v->n) == 0;
    return c->td_mesh && id.n - c->td.n == v->n && memcmp(id.p + c->td.n, v->s, v->n) == 0;
}

/* pol_ns_glob_match over the readings found once per request. */
static bool ns_match(struct ctx *c, const struct pol_value *v, mw_slice id)
{
    peer_ns(c);
    if (c->nns == SIZE_MAX)
        return pol_ns_glob_match(v, id);
    for (size_t i = 0; i < c->nns; i++) {
        if (pol_glob(v->s, v->n, c->ns[i].p, c->ns[i].n))
            return true;
    }
    return false;
}

static const json_t *claim_at(const json_t *claims, const struct pol_field *f)
{
    const json_t *cur = claims;
    for (size_t i = 0; i < f->claim_n && cur != NULL; i++)
        cur = json_is_object(cur) ? json_object_get(cur, f->claim[i]) : NULL;
    return cur;
}

static bool header_value(const struct mw_policy_request *r, const struct pol_field *f,
                         mw_slice *out)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        mw_slice n = r->headers[i].name;
        if (n.n != f->hname_n)
            continue;
        size_t k = 0;
        while (k < n.n && tolower(n.p[k]) == tolower((unsigned char)f->hname[k]))
            k++;
        if (k == n.n) {
            *out = r->headers[i].value;
            return true;
        }
    }
    return false;
}

/* Path matching reads two interpretations; see any_value. */
static bool path_value(const struct pol_value *v, mw_slice p, bool ci)
{
    if (v->kind == PM_TEMPLATE)
        return pol_template_match(v, p);
    return pol_str_match(v, p, ci);
}

static bool make_paths(struct ctx *c)
{
    if (!c->paths_ready) {
        size_t pn = 0, sn = 0;
        c->path_failed =
            !mw_ok(pol_path_normalize(c->r->path, c->e->mesh.path_norm, c->pbuf, &pn)) ||
            !mw_ok(pol_path_strict(c->r->path, c->sbuf, &sn));
        c->path = mw_slice_make(c->pbuf, pn);
        c->strict = mw_slice_make(c->sbuf, sn);
        c->paths_ready = true;
    }
    return !c->path_failed;
}

/*
 * Does any value of f match the request? -1: the attribute is absent. Absent attributes make a
 * positive field false and a negated one true (news/security/istio-security-2021-004: notPrincipals
 * matches plaintext).
 */
static int any_value(struct ctx *c, const struct pol_field *f, bool deny_side)
{
    const struct mw_policy_request *r = c->r;
    mw_slice s = {0};
    const struct mw_policy_ip *ip = NULL;
    bool ci = false;
    switch (f->attr) {
    case PA_PRINCIPAL:
    case PA_NAMESPACE:
    case PA_SERVICE_ACCOUNT:
    case PA_TRUST_DOMAIN:
        if (!present(r->source_principal))
            return -1;
        if (f->attr == PA_TRUST_DOMAIN)
            peer_td(c);
        for (size_t i = 0; i < f->nv; i++) {
            const struct pol_value *v = &f->v[i];
            bool m = f->attr == PA_PRINCIPAL         ? principal_match(c, v, r->source_principal)
                     : f->attr == PA_NAMESPACE       ? ns_match(c, v, r->source_principal)
                     : f->attr == PA_SERVICE_ACCOUNT ? pol_sa_match(v, r->source_principal)
                                                     : pol_str_match(v, c->td, false);
            if (m)
                return 1;
        }
        return 0;
    case PA_SOURCE_IP:
        ip = &r->source_ip;
        break;
    case PA_REMOTE_IP:
        ip = r->remote_ip.family ? &r->remote_ip : &r->source_ip;
        break;
    case PA_DEST_IP:
        ip = &r->destination_ip;
        break;
    case PA_PORT:
        for (size_t i = 0; i < f->nv; i++) {
            if (f->v[i].port == r->destination_port)
                return 1;
        }
        return 0;
    case PA_REQUEST_PRINCIPAL:
        s = r->request_principal;
        break;
    case PA_HOST:
        /* Host values are lowercased when loaded (pol_value_parse). */
        s = r->host;
        ci = true;
        break;
    case PA_METHOD:
        s = r->method;
        break;
    case PA_SNI:
        s = r->sni;
        break;
    case PA_IMAGE_DIGEST:
        s = r->image_digest;
        break;
    case PA_BUILDER_ID:
        s = r->builder_id;
        break;
    case PA_SOURCE_REPO:
        s = r->source_repository;
        break;
    case PA_HEADER:
        if (!header_value(r, f, &s))
            return -1;
        break;
    case PA_PATH: {
        if (!present(r->path))
            return -1;
        /*
         * Cannot fail: mw_policy_evaluate has refused every path these refuse
         * (pol_path_refused). Should it, the condition reads as failing closed here and the
         * request is refused once evaluation returns.
         */
        if (!make_paths(c))
            return deny_side != f->neg ? 1 : 0;
        /*
         * Fail closed against path confusion: a DENY-side path condition holds if it holds for
         * the mesh-normalised path or for the strictest reading of it; an ALLOW-side one only if
         * it holds for both.
         */
        for (size_t i = 0; i < f->nv; i++) {
            bool a = path_value(&f->v[i], c->path, false);
            bool b = path_value(&f->v[i], c->strict, true);
            /* For a negated field the roles swap: "matches some value" must be read strictly. */
            bool want_any = deny_side != f->neg;
            if (want_any ? (a || b) : (a && b))
                return 1;
        }
        return 0;
    }
    case PA_CLAIM: {
        if (r->jwt_claims == NULL)
            return -1;
        const json_t *cl = claim_at(r->jwt_claims, f);
        if (cl == NULL)
            return -1;
        /* A list-valued claim matches when any element does (matcher/metadata.go list match). */
        if (json_is_string(cl)) {
            s = mw_slice_make(json_string_value(cl), json_string_length(cl));
            break;
        }
        if (!json_is_array(cl))
            return -1;
        for (size_t j = 0; j < json_array_size(cl); j++) {
            const json_t *el = json_array_get(cl, j);
            if (!json_is_string(el))
                continue;
            mw_slice es = mw_slice_make(json_string_value(el), json_string_length(el));
            for (size_t i = 0; i < f->nv; i++) {
                if (pol_str_match(&f->v[i], es, false))
                    return 1;
            }
        }
        return 0;
    }
    case PA_METADATA:
    default:
        return -1;
    }
    if (ip != NULL) {
        if (ip->family == 0)
            return -1;
        for (size_t i = 0; i < f->nv; i++) {
            if (pol_cidr_contains(&f->v[i], ip))
                return 1;
        }
        return 0;
    }
    if (!present(s))
        return -1;
    /* On headers, hosts and methods "*" is a presence match (matcher/header.go). */
    bool presence = f->attr == PA_HEADER || f->attr == PA_HOST || f->attr == PA_METHOD;
    for (size_t i = 0; i < f->nv; i++) {
        const struct pol_value *v = &f->v[i];
        if ((v->kind == PM_PRESENCE && presence) || pol_str_match(v, s, ci))
            return 1;
    }
    return 0;
}

static bool field_eval(struct ctx *c, const struct pol_field *f, bool deny_side)
{
    /* On TCP, DENY and AUDIT rules drop HTTP-only fields (model.go; builder/testdata/tcp). */
    if (!c->r->http && f->http_only)
        return true;
    int m = any_value(c, f, deny_side);
    if (m < 0)
        return f->neg;
    return f->neg ? m == 0 : m == 1;
}

static bool clause_eval(struct ctx *c, const struct pol_clause *cl, bool deny_side)
{
    for (size_t i = 0; i < cl->nf; i++) {
        if (!field_eval(c, &cl->f[i], deny_side))
            return false;
    }
    return true;
}

static bool rule_eval(struct ctx *c, const struct pol_rule *r, bool deny_side)
{
    /* An ALLOW rule naming any HTTP-only attribute is dropped whole on TCP (builder.go). */
    if (!c->r->http && !deny_side && r->http_only)
        return false;
    bool any = r->nfrom == 0;
    for (size_t i = 0; i < r->nfrom && !any; i++)
        any = clause_eval(c, &r->from[i], deny_side);
    if (!any)
        return false;
    any = r->nto == 0;
    for (size_t i = 0; i < r->nto && !any; i++)
        any = clause_eval(c, &r->to[i], deny_side);
    if (!any)
        return false;
    return clause_eval(c, &r->when, deny_side);
}

/*
 * The first matching rule of the policies of action a, in policy then rule order, or NULL. The
 * index only leaves out rules that cannot match (policy_internal.h), and the candidate lists are
 * merged in ascending order, so this is the rule a scan of every rule finds first.
 */
static const struct pol_entry *first_match(struct ctx *c, int a)
{
    const struct pol_action_index *A = &c->e->ix.a[a];
    bool http = c->r->http;
    if (!(http ? A->http_possible : A->tcp_possible))
        return NULL;
    bool deny_side = a != PACT_ALLOW;
    if (!A->indexed) {
        for (size_t i = 0; i < A->n; i++) {
            const struct pol_entry *en = &A->e[i];
            if (((http ? en->need_http : en->need_tcp) & ~c->have) == 0 &&
                rule_eval(c, en->rule, deny_side))
                return en;
        }
        return NULL;
    }
    struct pol_list l[3 + MAX_NS];
    size_t pos[3 + MAX_NS] = {0};
    size_t nl = 0;
    if (A->ungated.n > 0)
        l[nl++] = A->ungated;
    if (A->port_gated) {
        l[nl] = pol_index_get(&c->e->ix, a, PG_PORT, 0, NULL, 0, c->r->destination_port);
        nl += l[nl].n > 0;
    }
    if ((c->have & PB_PEER) && A->principal_gated) {
        peer_keys(c);
        l[nl] =
            pol_index_get(&c->e->ix, a, PG_PRINCIPAL, c->id_rest_h, c->id_rest.p, c->id_rest.n, 0);
        nl += l[nl].n > 0;
        if (A->ns_gated.n > 0 && c->nns == SIZE_MAX) {
            l[nl++] = A->ns_gated;
        } else if (A->ns_gated.n > 0) {
            for (size_t i = 0; i < c->nns; i++) {
                l[nl] = pol_index_get(&c->e->ix, a, PG_NAMESPACE, c->ns_h[i], c->ns[i].p,
                                      c->ns[i].n, 0);
                nl += l[nl].n > 0;
            }
        }
    }
    if (nl == 1) {
        for (size_t i = 0; i < l[0].n; i++) {
            const struct pol_entry *en = &A->e[l[0].o[i]];
            if (((http ? en->need_http : en->need_tcp) & ~c->have) == 0 &&
                rule_eval(c, en->rule, deny_side))
                return en;
        }
        return NULL;
    }
    for (;;) {
        uint32_t o = UINT32_MAX;
        for (size_t i = 0; i < nl; i++) {
            if (pos[i] < l[i].n && l[i].o[pos[i]] < o)
                o = l[i].o[pos[i]];
        }
        if (o == UINT32_MAX)
            return NULL;
        for (size_t i = 0; i < nl; i++)
            pos[i] += pos[i] < l[i].n && l[i].o[pos[i]] == o;
        const struct pol_entry *en = &A->e[o];
        if (((http ? en->need_http : en->need_tcp) & ~c->have) != 0)
            continue;
        if (rule_eval(c, en->rule, deny_side))
            return en;
    }
}

static void decide(struct mw_policy_decision *d, enum mw_policy_verdict v,
                   const struct pol_policy *p, long rule, const char *reason)
{
    d->verdict = v;
    d->policy = p ? p->id : NULL;
    d->action = p ? action_names[p->action] : NULL;
    d->rule = rule >= 0 ? (size_t)rule : 0;
    d->file = p ? p->file : NULL;
    d->line = p ? (rule >= 0 && p->rules ? p->rules[rule].line : p->line) : 0;
    d->reason = reason;
}

static void decide_entry(struct mw_policy_decision *d, enum mw_policy_verdict v,
                         const struct pol_entry *en, const char *reason)
{
    decide(d, v, en->p, (long)en->idx, reason);
}

static void evaluate(struct ctx *c, struct mw_policy_decision *out)
{
    /* AUDIT only marks; it is evaluated even when the request is then denied. */
    const struct pol_entry *en = first_match(c, PACT_AUDIT);
    if (en != NULL) {
        out->audit = true;
        out->audit_policy = en->p->id;
    }
    en = first_match(c, PACT_CUSTOM);
    if (en != NULL) {
        decide_entry(out, MW_POLICY_DENY, en,
                     "CUSTOM policy matched and no external authorizer is configured: denied");
        return;
    }
    en = first_match(c, PACT_DENY);
    if (en != NULL) {
        decide_entry(out, MW_POLICY_DENY, en, "DENY policy matched");
        return;
    }
    if (c->e->n[PACT_ALLOW] == 0) {
        decide(out, MW_POLICY_ALLOW, NULL, -1, "no ALLOW policy applies to the workload");
        return;
    }
    en = first_match(c, PACT_ALLOW);
    if (en != NULL) {
        decide_entry(out, MW_POLICY_ALLOW, en, "ALLOW policy matched");
        return;
    }
    decide(out, MW_POLICY_DENY, NULL, -1, "no ALLOW policy matched");
}

static void refuse_path(struct mw_policy_decision *out)
{
    /* Envoy answers 400 to paths it cannot normalise; we never let them through. */
    memset(out, 0, sizeof(*out));
    decide(out, MW_POLICY_DENY, NULL, -1, "path rejected by normalisation (%00, or too long)");
}

void mw_policy_evaluate(const struct mw_policy_engine *e, const struct mw_policy_request *r,
                        struct mw_policy_decision *out)
{
    struct ctx c;
    memset(out, 0, sizeof(*out));
    c.e = e;
    c.r = r;
    c.have = presence(r);
    c.td_ready = false;
    c.ns_ready = false;
    c.keys_ready = false;
    c.paths_ready = false;
    c.path_failed = false;
    if (r->http && present(r->path)) {
        /* Refused up front as before, though the readings themselves are made lazily. */
        int refused = pol_path_refused(r->path);
        if (refused < 0 && !make_paths(&c))
            refused = 1;
        if (refused > 0) {
            refuse_path(out);
            return;
        }
    }
    evaluate(&c, out);
    if (c.path_failed)
        refuse_path(out);
}

/* ---------------------------------------------------------------- PeerAuthentication */

static bool older(const struct pol_policy *a, const struct pol_policy *b)
{
    /* Oldest creationTimestamp wins; ties by name then namespace (policy_applier.go). */
    int c = strcmp(a->created, b->created);
    if (c != 0)
        return c < 0;
    c = strcmp(a->name, b->name);
    if (c != 0)
        return c < 0;
    return strcmp(a->ns, b->ns) < 0;
}

void mw_policy_mtls_mode(const struct mw_policy_set *set, const struct mw_policy_mesh *mesh,
                         const char *ns, const char *const *label_keys,
                         const char *const *label_values, size_t n_labels, uint16_t port,
                         struct mw_policy_mtls_result *out)
{
    const struct pol_policy *mesh_p = NULL, *ns_p = NULL, *wl_p = NULL;
    const char *root = root_ns(mesh);
    for (size_t i = 0; i < set->n; i++) {
        const struct pol_policy *p = set->p[i];
        if (p->kind != PK_PEERAUTH)
            continue;
        bool wide = p->nlabels == 0; /* no selector or empty matchLabels */
        const struct pol_policy **slot = NULL;
        if (strcmp(p->ns, root) == 0) {
            /* Selector policies in the root namespace are ignored (peer_authentication.proto). */
            if (wide)
                slot = &mesh_p;
        } else if (strcmp(p->ns, ns) == 0) {
            if (wide)
                slot = &ns_p;
            else if (pol_labels_subset(p, label_keys, label_values, n_labels))
                slot = &wl_p;
        }
        if (slot != NULL && (*slot == NULL || older(p, *slot)))
            *slot = p;
    }
    out->mode = MW_POLICY_MTLS_PERMISSIVE;
    out->policy = NULL;
    out->scope = "default";
    const struct pol_policy *chain[3] = {mesh_p, ns_p, wl_p};
    static const char *const scopes[3] = {"mesh", "namespace", "workload"};
    for (int i = 0; i < 3; i++) {
        if (chain[i] != NULL && chain[i]->mode != MW_POLICY_MTLS_UNSET) {
            out->mode = chain[i]->mode;
            out->policy = chain[i]->id;
            out->scope = scopes[i];
        }
    }
    if (wl_p != NULL) {
        for (size_t i = 0; i < wl_p->nports; i++) {
            if (wl_p->ports[i].port == port && wl_p->ports[i].mode != MW_POLICY_MTLS_UNSET) {
                out->mode = wl_p->ports[i].mode;
                out->policy = wl_p->id;
                out->scope = "port";
            }
        }
    }
}

/* ---------------------------------------------------------------- review */

static MW_RESULT add_clause(struct mw_dynbuf *b, const struct pol_clause *cl)
{
    for (size_t i = 0; i < cl->nf; i++) {
        const struct pol_field *f = &cl->f[i];
        MW_GUARD(mw_dynbuf_addf(b, "%s%s=[", i ? " " : "", f->name));
        for (size_t j = 0; j < f->nv; j++)
            MW_GUARD(mw_dynbuf_addf(b, "%s%s", j ? "," : "", f->v[j].raw ? f->v[j].raw : "?"));
        MW_GUARD(mw_dynbuf_add_cstr(b, "]"));
    }
    return MW_SUCCESS;
}

static MW_RESULT summarise(struct mw_dynbuf *b, const struct pol_rule *r)
{
    MW_GUARD(mw_dynbuf_add_cstr(b, "from: "));
    if (r->nfrom == 0)
        MW_GUARD(mw_dynbuf_add_cstr(b, "anyone"));
    for (size_t i = 0; i < r->nfrom; i++) {
        MW_GUARD(mw_dynbuf_add_cstr(b, i ? " OR " : ""));
        MW_GUARD(add_clause(b, &r->from[i]));
    }
    MW_GUARD(mw_dynbuf_add_cstr(b, "; to: "));
    if (r->nto == 0)
        MW_GUARD(mw_dynbuf_add_cstr(b, "any port, any path"));
    for (size_t i = 0; i < r->nto; i++) {
        MW_GUARD(mw_dynbuf_add_cstr(b, i ? " OR " : ""));
        MW_GUARD(add_clause(b, &r->to[i]));
    }
    if (r->when.nf > 0) {
        MW_GUARD(mw_dynbuf_add_cstr(b, "; when: "));
        MW_GUARD(add_clause(b, &r->when));
    }
    if (r->http_only)
        MW_GUARD(mw_dynbuf_add_cstr(b, " (HTTP only)"));
    return MW_SUCCESS;
}

MW_RESULT mw_policy_who_can(const struct mw_policy_engine *e, mw_policy_who_fn fn, void *ctx)
{
    static const int order[] = {PACT_CUSTOM, PACT_DENY, PACT_ALLOW};
    if (e->n[PACT_ALLOW] == 0)
        fn(ctx, "ALLOW", NULL, 0, "no ALLOW policy applies: anyone not denied can connect");
    for (size_t o = 0; o < MW_ARRAY_LEN(order); o++) {
        int a = order[o];
        for (size_t i = 0; i < e->n[a]; i++) {
            const struct pol_policy *p = e->by[a][i];
            if (p->nrules == 0)
                fn(ctx, action_names[a], p->id, 0, "no rules: matches nothing");
            for (size_t k = 0; k < p->nrules; k++) {
                struct mw_dynbuf b;
                mw_dynbuf_init(&b, 1 << 20);
                if (mw_failed(summarise(&b, &p->rules[k]))) {
                    mw_dynbuf_free(&b);
                    return MW_FAILURE;
                }
                fn(ctx, action_names[a], p->id, k, mw_dynbuf_cstr(&b));
                mw_dynbuf_free(&b);
            }
        }
    }
    return MW_SUCCESS;
}
