/*
 * The compiled rule index of an engine (policy_internal.h "compiled index"): built once per
 * workload, read without allocation on every request.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"

/* Overridable so that tests can force the index on for small policy sets. */
#ifndef POL_INDEX_MIN_RULES
#define POL_INDEX_MIN_RULES 16
#endif

/* ---------------------------------------------------------------- presence bits */

/* The bit a positive field needs: with the attribute absent it is false (policy_eval.c). */
static uint32_t field_bit(const struct pol_field *f)
{
    switch (f->attr) {
    case PA_PRINCIPAL:
    case PA_NAMESPACE:
    case PA_SERVICE_ACCOUNT:
    case PA_TRUST_DOMAIN:
        return PB_PEER;
    case PA_REQUEST_PRINCIPAL:
        return PB_REQ_PRINCIPAL;
    case PA_HOST:
        return PB_HOST;
    case PA_METHOD:
        return PB_METHOD;
    case PA_PATH:
        return PB_PATH;
    case PA_SNI:
        return PB_SNI;
    case PA_CLAIM:
        return PB_CLAIMS;
    case PA_SOURCE_IP:
        return PB_SOURCE_IP;
    case PA_REMOTE_IP:
        return PB_REMOTE_IP;
    case PA_DEST_IP:
        return PB_DEST_IP;
    case PA_IMAGE_DIGEST:
        return PB_IMAGE_DIGEST;
    case PA_BUILDER_ID:
        return PB_BUILDER_ID;
    case PA_SOURCE_REPO:
        return PB_SOURCE_REPO;
    case PA_METADATA:
        return PB_NEVER;
    default: /* ports are always present; a header's presence is not known up front */
        return 0;
    }
}

/* Fields are ANDed: every positive field's bit. On TCP, HTTP-only fields are dropped (true). */
static uint32_t clause_need(const struct pol_clause *cl, bool tcp)
{
    uint32_t need = 0;
    for (size_t i = 0; i < cl->nf; i++) {
        const struct pol_field *f = &cl->f[i];
        if (!f->neg && !(tcp && f->http_only))
            need |= field_bit(f);
    }
    return need;
}

/* Clauses are ORed: only what all of them need; none means any. */
static uint32_t side_need(const struct pol_clause *cl, size_t n, bool tcp)
{
    if (n == 0)
        return 0;
    uint32_t need = UINT32_MAX;
    for (size_t i = 0; i < n; i++)
        need &= clause_need(&cl[i], tcp);
    return need;
}

static uint32_t rule_need(const struct pol_rule *r, bool tcp, bool deny_side)
{
    /* An ALLOW rule naming any HTTP-only attribute is dropped whole on TCP (rule_eval). */
    if (tcp && !deny_side && r->http_only)
        return PB_NEVER;
    return side_need(r->from, r->nfrom, tcp) | side_need(r->to, r->nto, tcp) |
           clause_need(&r->when, tcp);
}

/* ---------------------------------------------------------------- gates */

struct gkey {
    const char *key;
    size_t keyn;
    uint16_t port;
    uint8_t gate;
    uint8_t action;
    uint32_t ord;
};

struct gkeys {
    struct gkey *k;
    size_t n, cap;
};

static bool gkeys_add(struct gkeys *g, struct gkey k)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 64;
        struct gkey *nk = realloc(g->k, cap * sizeof(*nk));
        if (nk == NULL)
            return false;
        g->k = nk;
        g->cap = cap;
    }
    g->k[g->n++] = k;
    return true;
}

/*
 * A field that gates its clause: positive, read on TCP too, and every value exact. An exact
 * principal, or one whose trust domain the engine supplies (PM_PRINCIPAL_TD), only matches an
 * identity with the same text from its first '/' on; an exact namespace only matches where the
 * identity holds "/ns/<namespace>/".
 */
static bool gates(const struct pol_field *f)
{
    if (f->neg || f->http_only || f->nv == 0)
        return false;
    for (size_t i = 0; i < f->nv; i++) {
        const struct pol_value *v = &f->v[i];
        if (f->attr == PA_PRINCIPAL) {
            if (v->kind != PM_EXACT && v->kind != PM_PRINCIPAL_TD)
                return false;
        } else if (f->attr == PA_NAMESPACE) {
            if (v->kind != PM_NS_GLOB || memchr(v->s, '*', v->n) != NULL)
                return false;
        } else if (f->attr == PA_PORT) {
            if (v->kind != PM_PORT)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

/* The gating field of a clause: principals before namespaces (more selective), or NULL. */
static const struct pol_field *identity_gate(const struct pol_clause *cl)
{
    const struct pol_field *best = NULL;
    for (size_t i = 0; i < cl->nf; i++) {
        const struct pol_field *f = &cl->f[i];
        if ((f->attr == PA_PRINCIPAL || f->attr == PA_NAMESPACE) && gates(f) &&
            (best == NULL || (f->attr == PA_PRINCIPAL && best->attr != PA_PRINCIPAL)))
            best = f;
    }
    return best;
}

static const struct pol_field *port_gate(const struct pol_clause *cl)
{
    for (size_t i = 0; i < cl->nf; i++) {
        if (cl->f[i].attr == PA_PORT && gates(&cl->f[i]))
            return &cl->f[i];
    }
    return NULL;
}

static bool add_field_keys(struct gkeys *g, const struct pol_field *f, uint8_t action, uint32_t ord)
{
    for (size_t i = 0; i < f->nv; i++) {
        const struct pol_value *v = &f->v[i];
        struct gkey k = {.action = action, .ord = ord};
        if (f->attr == PA_PORT) {
            k.gate = PG_PORT;
            k.port = v->port;
        } else if (f->attr == PA_NAMESPACE) {
            k.gate = PG_NAMESPACE;
            k.key = v->s;
            k.keyn = v->n;
        } else if (v->kind == PM_PRINCIPAL_TD) {
            k.gate = PG_PRINCIPAL;
            k.key = v->s; /* the rest, from the '/' after the trust domain */
            k.keyn = v->n;
        } else {
            const char *slash = memchr(v->s, '/', v->n);
            size_t at = slash ? (size_t)(slash - v->s) : v->n;
            k.gate = PG_PRINCIPAL;
            k.key = v->s + at;
            k.keyn = v->n - at;
        }
        if (!gkeys_add(g, k))
            return false;
    }
    return true;
}

/*
 * File rule ord under its gate. Returns 0 ungated, else the gate kind used (the namespace gate
 * when any clause used it), or -1 out of memory.
 */
static int file_rule(struct gkeys *g, const struct pol_rule *r, uint8_t action, uint32_t ord)
{
    bool all = r->nfrom > 0, ns = false;
    for (size_t i = 0; i < r->nfrom && all; i++)
        all = identity_gate(&r->from[i]) != NULL;
    if (all) {
        for (size_t i = 0; i < r->nfrom; i++) {
            const struct pol_field *f = identity_gate(&r->from[i]);
            ns |= f->attr == PA_NAMESPACE;
            if (!add_field_keys(g, f, action, ord))
                return -1;
        }
        return ns ? PG_NAMESPACE : PG_PRINCIPAL;
    }
    const struct pol_field *f = identity_gate(&r->when);
    if (f != NULL) {
        if (!add_field_keys(g, f, action, ord))
            return -1;
        return f->attr == PA_NAMESPACE ? PG_NAMESPACE : PG_PRINCIPAL;
    }
    f = port_gate(&r->when);
    if (f != NULL)
        return add_field_keys(g, f, action, ord) ? PG_PORT : -1;
    all = r->nto > 0;
    for (size_t i = 0; i < r->nto && all; i++)
        all = port_gate(&r->to[i]) != NULL;
    if (!all)
        return 0;
    for (size_t i = 0; i < r->nto; i++) {
        if (!add_field_keys(g, port_gate(&r->to[i]), action, ord))
            return -1;
    }
    return PG_PORT;
}

static int cmp_gkey(const void *pa, const void *pb)
{
    const struct gkey *a = pa, *b = pb;
    if (a->action != b->action)
        return a->action < b->action ? -1 : 1;
    if (a->gate != b->gate)
        return a->gate < b->gate ? -1 : 1;
    if (a->port != b->port)
        return a->port < b->port ? -1 : 1;
    if (a->keyn != b->keyn)
        return a->keyn < b->keyn ? -1 : 1;
    int c = a->keyn ? memcmp(a->key, b->key, a->keyn) : 0;
    if (c != 0)
        return c;
    return a->ord < b->ord ? -1 : a->ord > b->ord;
}

static bool same_key(const struct gkey *a, const struct gkey *b)
{
    return a->action == b->action && a->gate == b->gate && a->port == b->port &&
           a->keyn == b->keyn && (a->keyn == 0 || memcmp(a->key, b->key, a->keyn) == 0);
}

/* ---------------------------------------------------------------- hash table */

uint64_t pol_index_hash(const void *key, size_t n)
{
    /* FNV-1a: keys are policy text and the peer's identity, not chosen to collide cheaply. */
    const uint8_t *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t mix(uint64_t h, uint8_t gate, int action, uint16_t port)
{
    h ^= (uint64_t)gate << 56 ^ (uint64_t)action << 48 ^ port;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

struct pol_list pol_index_get(const struct pol_index *ix, int action, uint8_t gate, uint64_t h,
                              const void *key, size_t keyn, uint16_t port)
{
    struct pol_list none = {NULL, 0};
    if (ix->tab == NULL)
        return none;
    h = mix(h, gate, action, port);
    for (size_t i = h & ix->mask;; i = (i + 1) & ix->mask) {
        const struct pol_bucket *b = &ix->tab[i];
        if (b->gate == 0)
            return none;
        if (b->h == h && b->gate == gate && b->action == action && b->port == port &&
            b->keyn == keyn && (keyn == 0 || memcmp(b->key, key, keyn) == 0))
            return b->l;
    }
}

/* ---------------------------------------------------------------- build */

void pol_index_free(struct pol_index *ix)
{
    for (int a = 0; a < 4; a++) {
        free(ix->a[a].e);
        free((void *)ix->a[a].ungated.o);
        free((void *)ix->a[a].ns_gated.o);
    }
    free(ix->tab);
    free(ix->pool);
    memset(ix, 0, sizeof(*ix));
}

static MW_RESULT build_action(struct pol_action_index *A, struct gkeys *g,
                              const struct pol_policy *const *by, size_t n, int action)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += by[i]->nrules;
    MW_ENSURE(total < UINT32_MAX, MW_E_LIMIT, "too many rules (%zu) for one workload", total);
    A->e = calloc(total ? total : 1, sizeof(*A->e));
    uint32_t *ungated = calloc(total ? total : 1, sizeof(*ungated));
    uint32_t *ns_gated = calloc(total ? total : 1, sizeof(*ns_gated));
    A->ungated.o = ungated;
    A->ns_gated.o = ns_gated;
    MW_ENSURE(A->e != NULL && ungated != NULL && ns_gated != NULL, MW_E_NOMEM, "out of memory");
    bool deny_side = action != PACT_ALLOW;
    for (size_t i = 0; i < n; i++) {
        const struct pol_policy *p = by[i];
        for (size_t k = 0; k < p->nrules; k++) {
            uint32_t ord = (uint32_t)A->n++;
            struct pol_entry *en = &A->e[ord];
            en->p = p;
            en->rule = &p->rules[k];
            en->idx = k;
            en->need_http = rule_need(en->rule, false, deny_side);
            en->need_tcp = rule_need(en->rule, true, deny_side);
            int gate = file_rule(g, en->rule, (uint8_t)action, ord);
            MW_ENSURE(gate >= 0, MW_E_NOMEM, "out of memory");
            if (gate == 0)
                ungated[A->ungated.n++] = ord;
            else if (gate == PG_NAMESPACE)
                ns_gated[A->ns_gated.n++] = ord;
            A->http_possible |= (en->need_http & PB_NEVER) == 0;
            A->tcp_possible |= (en->need_tcp & PB_NEVER) == 0;
            A->port_gated |= gate == PG_PORT;
            A->principal_gated |= gate == PG_PRINCIPAL || gate == PG_NAMESPACE;
        }
    }
    /*
     * Reading the principal and looking buckets up costs about as much as evaluating a few
     * rules (bench/bench_policy.c at 10 policies): below this many, scan them all.
     */
    A->indexed = A->n >= POL_INDEX_MIN_RULES;
    return MW_SUCCESS;
}

MW_RESULT pol_index_build(struct pol_index *ix, const struct pol_policy *const *const by[4],
                          const size_t n[4])
{
    struct gkeys g = {0};
    memset(ix, 0, sizeof(*ix));
    for (int a = 0; a < 4; a++) {
        if (mw_failed(build_action(&ix->a[a], &g, by[a], n[a], a))) {
            free(g.k);
            return MW_FAILURE;
        }
    }
    if (g.n == 0)
        return MW_SUCCESS;
    qsort(g.k, g.n, sizeof(*g.k), cmp_gkey);
    size_t distinct = 0;
    for (size_t i = 0; i < g.n; i++)
        distinct += i == 0 || !same_key(&g.k[i - 1], &g.k[i]);
    size_t size = 16;
    while (size < 2 * distinct)
        size *= 2;
    ix->tab = calloc(size, sizeof(*ix->tab));
    ix->pool = calloc(g.n, sizeof(*ix->pool));
    if (ix->tab == NULL || ix->pool == NULL) {
        free(g.k);
        MW_BAIL(MW_E_NOMEM, "out of memory");
    }
    ix->mask = size - 1;
    size_t used = 0;
    for (size_t i = 0; i < g.n;) {
        const struct gkey *k = &g.k[i];
        uint32_t *start = ix->pool + used;
        size_t cnt = 0;
        for (; i < g.n && same_key(k, &g.k[i]); i++) {
            /* Sorted by ordinal within a key: a rule naming a value twice is filed once. */
            if (cnt == 0 || start[cnt - 1] != g.k[i].ord)
                start[cnt++] = g.k[i].ord;
        }
        used += cnt;
        /* Port buckets are found by the port alone (pol_index_get with h 0). */
        uint64_t h0 = k->gate == PG_PORT ? 0 : pol_index_hash(k->key, k->keyn);
        uint64_t h = mix(h0, k->gate, k->action, k->port);
        size_t s = h & ix->mask;
        while (ix->tab[s].gate != 0)
            s = (s + 1) & ix->mask;
        ix->tab[s] = (struct pol_bucket){.h = h,
                                         .key = k->key,
                                         .keyn = k->keyn,
                                         .port = k->port,
                                         .gate = k->gate,
                                         .action = k->action,
                                         .l = {start, cnt}};
    }
    free(g.k);
    return MW_SUCCESS;
}
