/*
 * Workload registrations (meshward.io/v1alpha1 WorkloadRegistration) and the
 * decision the CA makes before it issues: who the caller is (from the
 * credential only), whether that identity is registered, and whether the
 * image it runs satisfies the registration's provenance requirement.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <meshward/ca_service.h>
#include <meshward/conf.h>

#include "ca/ca_auth_internal.h"

#define REG_MAX        10000
#define REG_MAX_IMAGES 1024
#define MAX_TTL_LIMIT  (30 * 86400)

struct mw_ca_registrations {
    struct mw_ca_registration *e;
    size_t n, cap;
};

mw_result mw_ca_registrations_new(struct mw_ca_registrations **out)
{
    *out = calloc(1, sizeof(**out));
    MW_ENSURE(*out != NULL, MW_E_NOMEM, "out of memory");
    return MW_SUCCESS;
}

void mw_ca_registrations_free(struct mw_ca_registrations *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->e[i].images);
    free(r->e);
    free(r);
}

size_t mw_ca_registrations_count(const struct mw_ca_registrations *r)
{
    return r == NULL ? 0 : r->n;
}

const struct mw_ca_registration *mw_ca_registrations_at(const struct mw_ca_registrations *r,
                                                        size_t i)
{
    return r != NULL && i < r->n ? &r->e[i] : NULL;
}

static bool same_selector(const struct mw_ca_registration *a, const struct mw_ca_registration *b)
{
    if (a->by_k8s != b->by_k8s)
        return false;
    if (a->by_k8s)
        return strcmp(a->ns, b->ns) == 0 && strcmp(a->sa, b->sa) == 0;
    return strcmp(a->spiffe_id, b->spiffe_id) == 0;
}

mw_result mw_ca_registrations_add(struct mw_ca_registrations *r,
                                  const struct mw_ca_registration *reg)
{
    MW_ENSURE(r->n < REG_MAX, MW_E_LIMIT, "more than %d registrations", REG_MAX);
    for (size_t i = 0; i < r->n; i++)
        MW_ENSURE(!same_selector(&r->e[i], reg), MW_E_INPUT,
                  "registrations %s and %s select the same workload", r->e[i].name, reg->name);
    if (r->n == r->cap) {
        size_t cap = r->cap == 0 ? 8 : r->cap * 2;
        void *p = realloc(r->e, cap * sizeof(*r->e));
        MW_ENSURE(p != NULL, MW_E_NOMEM, "out of memory");
        r->e = p;
        r->cap = cap;
    }
    struct mw_ca_registration copy = *reg;
    copy.images = NULL;
    if (reg->n_images > 0) {
        copy.images = malloc(reg->n_images * sizeof(*copy.images));
        MW_ENSURE(copy.images != NULL, MW_E_NOMEM, "out of memory");
        memcpy(copy.images, reg->images, reg->n_images * sizeof(*copy.images));
    }
    r->e[r->n++] = copy;
    return MW_SUCCESS;
}

const struct mw_ca_registration *mw_ca_registrations_find(const struct mw_ca_registrations *r,
                                                          const struct mw_spiffe_id *id)
{
    char uri[MW_SPIFFE_ID_MAX + 16];
    if (r == NULL || !mw_spiffe_id_format(id, uri, sizeof(uri)))
        return NULL;
    for (size_t i = 0; i < r->n; i++)
        if (!r->e[i].by_k8s && strcmp(r->e[i].spiffe_id, uri) == 0)
            return &r->e[i];
    for (size_t i = 0; i < r->n; i++) {
        if (!r->e[i].by_k8s)
            continue;
        char path[MW_SPIFFE_ID_MAX + 16];
        int n = snprintf(path, sizeof(path), "/ns/%s/sa/%s", r->e[i].ns, r->e[i].sa);
        if (n > 0 && (size_t)n < sizeof(path) && strcmp(path, id->path) == 0)
            return &r->e[i];
    }
    return NULL;
}

/* ---------------------------------------------------------------- YAML */

#define NODE_BAIL(node, ...)                            \
    do {                                                \
        mw_node_error((node), MW_E_INPUT, __VA_ARGS__); \
        return MW_FAILURE;                              \
    } while (0)

static mw_result only_keys(const struct mw_node *map, const char *const *allowed, size_t n,
                           const char *where)
{
    for (size_t i = 0; i < mw_node_len(map); i++) {
        const char *k = mw_node_str(mw_node_key_at(map, i));
        bool ok = false;
        for (size_t j = 0; j < n && !ok; j++)
            ok = k != NULL && strcmp(k, allowed[j]) == 0;
        /* An unknown field is most often a typo of a security setting: refuse it. */
        if (!ok)
            NODE_BAIL(mw_node_key_at(map, i), "unknown field \"%s\" in %s", k != NULL ? k : "?",
                      where);
    }
    return MW_SUCCESS;
}

static mw_result str_field(const struct mw_node *map, const char *key, bool required, mw_slice *out)
{
    const struct mw_node *n = mw_node_get(map, key);
    *out = mw_slice_make("", 0);
    if (n == NULL) {
        if (required)
            NODE_BAIL(map, "missing \"%s\"", key);
        return MW_SUCCESS;
    }
    if (mw_node_kind(n) != MW_NODE_SCALAR || mw_node_is_null(n))
        NODE_BAIL(n, "\"%s\" must be a string", key);
    *out = mw_node_slice(n);
    return MW_SUCCESS;
}

static mw_result duration_field(const struct mw_node *map, const char *key, int64_t *out)
{
    const struct mw_node *n = mw_node_get(map, key);
    if (n == NULL)
        return MW_SUCCESS;
    if (mw_node_kind(n) != MW_NODE_SCALAR)
        NODE_BAIL(n, "\"%s\" must be a duration such as 1h", key);
    uint64_t s = 0;
    if (mw_failed(mw_parse_duration(mw_node_slice(n), MAX_TTL_LIMIT, key, &s))) {
        mw_node_error(n, MW_E_INPUT, "%s", mw_error_msg());
        return MW_FAILURE;
    }
    if (s == 0)
        NODE_BAIL(n, "\"%s\" must be more than 0", key);
    *out = (int64_t)s;
    return MW_SUCCESS;
}

static mw_result parse_images(const struct mw_node *seq, struct mw_ca_registration *e)
{
    if (mw_node_kind(seq) != MW_NODE_SEQ || mw_node_len(seq) == 0)
        NODE_BAIL(seq, "\"images\" must be a non-empty list of digests (omit it for any admitted "
                       "image)");
    if (mw_node_len(seq) > REG_MAX_IMAGES)
        NODE_BAIL(seq, "more than %d images", REG_MAX_IMAGES);
    e->images = calloc(mw_node_len(seq), sizeof(*e->images));
    MW_ENSURE(e->images != NULL, MW_E_NOMEM, "out of memory");
    for (size_t i = 0; i < mw_node_len(seq); i++) {
        const struct mw_node *d = mw_node_item(seq, i);
        if (mw_node_kind(d) != MW_NODE_SCALAR ||
            mw_failed(mw_ca_digest_check(mw_node_slice(d), "image"))) {
            mw_node_error(d, MW_E_INPUT, "images[%zu]: %s", i,
                          mw_node_kind(d) == MW_NODE_SCALAR ? mw_error_msg() : "not a string");
            return MW_FAILURE;
        }
        memcpy(e->images[i], mw_node_str(d), mw_node_slice(d).n + 1);
        e->n_images++;
    }
    return MW_SUCCESS;
}

static mw_result parse_doc(const struct mw_node *root, struct mw_ca_registration *e)
{
    static const char *const top[] = {"apiVersion", "kind", "metadata", "spec"};
    static const char *const spec_keys[] = {"spiffeID", "kubernetes", "requiresProvenance",
                                            "images", "maxTTL"};
    static const char *const k8s_keys[] = {"namespace", "serviceAccount"};
    if (mw_node_kind(root) != MW_NODE_MAP)
        NODE_BAIL(root, "a WorkloadRegistration must be a mapping");
    MW_GUARD(only_keys(root, top, MW_ARRAY_LEN(top), "WorkloadRegistration"));
    mw_slice v;
    MW_GUARD(str_field(root, "apiVersion", true, &v));
    if (!mw_slice_eq_cstr(v, "meshward.io/v1alpha1"))
        NODE_BAIL(mw_node_get(root, "apiVersion"), "apiVersion must be meshward.io/v1alpha1");
    MW_GUARD(str_field(root, "kind", true, &v));
    if (!mw_slice_eq_cstr(v, "WorkloadRegistration"))
        NODE_BAIL(mw_node_get(root, "kind"), "kind %.*s is not WorkloadRegistration",
                  (int)(v.n > 64 ? 64 : v.n), (const char *)v.p);
    const struct mw_node *md = mw_node_get(root, "metadata");
    if (mw_node_kind(md) != MW_NODE_MAP)
        NODE_BAIL(root, "missing metadata mapping");
    MW_GUARD(str_field(md, "name", true, &v));
    if (!mw_k8s_is_dns_subdomain(v))
        NODE_BAIL(mw_node_get(md, "name"), "metadata.name must be a DNS-1123 subdomain");
    MW_GUARD(mw_ca_copy(e->name, sizeof(e->name), v, "name"));
    const struct mw_node *spec = mw_node_get(root, "spec");
    if (mw_node_kind(spec) != MW_NODE_MAP)
        NODE_BAIL(root, "missing spec mapping");
    MW_GUARD(only_keys(spec, spec_keys, MW_ARRAY_LEN(spec_keys), "spec"));

    const struct mw_node *idn = mw_node_get(spec, "spiffeID");
    const struct mw_node *k8s = mw_node_get(spec, "kubernetes");
    if ((idn == NULL) == (k8s == NULL))
        NODE_BAIL(spec, "spec needs exactly one of spiffeID and kubernetes");
    if (idn != NULL) {
        MW_GUARD(str_field(spec, "spiffeID", true, &v));
        struct mw_spiffe_id id;
        if (mw_failed(mw_spiffe_id_parse(v, &id, NULL))) {
            mw_node_error(idn, MW_E_INPUT, "spiffeID: %s", mw_error_msg());
            return MW_FAILURE;
        }
        if (id.path[0] == '\0')
            NODE_BAIL(idn, "spiffeID names a trust domain, not a workload");
        MW_GUARD(mw_ca_copy(e->spiffe_id, sizeof(e->spiffe_id), v, "spiffeID"));
    } else {
        if (mw_node_kind(k8s) != MW_NODE_MAP)
            NODE_BAIL(k8s, "kubernetes must be a mapping of namespace and serviceAccount");
        MW_GUARD(only_keys(k8s, k8s_keys, MW_ARRAY_LEN(k8s_keys), "kubernetes"));
        e->by_k8s = true;
        MW_GUARD(str_field(k8s, "namespace", true, &v));
        if (!mw_k8s_is_dns_label(v))
            NODE_BAIL(mw_node_get(k8s, "namespace"), "namespace is not a DNS-1123 label");
        MW_GUARD(mw_ca_copy(e->ns, sizeof(e->ns), v, "namespace"));
        MW_GUARD(str_field(k8s, "serviceAccount", true, &v));
        if (!mw_k8s_is_dns_subdomain(v))
            NODE_BAIL(mw_node_get(k8s, "serviceAccount"),
                      "serviceAccount is not a DNS-1123 subdomain");
        MW_GUARD(mw_ca_copy(e->sa, sizeof(e->sa), v, "serviceAccount"));
    }
    const struct mw_node *rp = mw_node_get(spec, "requiresProvenance");
    if (rp != NULL && mw_failed(mw_node_bool(rp, &e->requires_provenance))) {
        mw_node_error(rp, MW_E_INPUT, "requiresProvenance must be true or false");
        return MW_FAILURE;
    }
    const struct mw_node *images = mw_node_get(spec, "images");
    if (images != NULL)
        MW_GUARD(parse_images(images, e));
    return duration_field(spec, "maxTTL", &e->max_ttl_s);
}

mw_result mw_ca_registrations_parse(mw_slice yaml, const char *name,
                                    struct mw_ca_registrations **out)
{
    *out = NULL;
    struct mw_docs *docs = NULL;
    MW_GUARD(mw_yaml_load(yaml, name, NULL, &docs));
    struct mw_ca_registrations *set = NULL;
    mw_result r = mw_ca_registrations_new(&set);
    for (size_t i = 0; mw_ok(r) && i < mw_docs_count(docs); i++) {
        const struct mw_node *root = mw_docs_root(docs, i);
        if (root == NULL)
            continue;
        struct mw_ca_registration e;
        memset(&e, 0, sizeof(e));
        r = parse_doc(root, &e);
        if (mw_ok(r)) {
            r = mw_ca_registrations_add(set, &e);
            if (mw_failed(r))
                mw_error_prefix("%s: ", name);
        }
        free(e.images);
    }
    mw_docs_free(docs);
    if (mw_failed(r)) {
        mw_ca_registrations_free(set);
        return MW_FAILURE;
    }
    *out = set;
    return MW_SUCCESS;
}

mw_result mw_ca_registrations_load_file(const char *path, struct mw_ca_registrations **out)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 16u << 20);
    mw_result r = mw_file_read(path, 16u << 20, &b);
    if (mw_ok(r))
        r = mw_ca_registrations_parse(mw_dynbuf_slice(&b), path, out);
    mw_dynbuf_free(&b);
    return r;
}

/* ---------------------------------------------------------------- the decision */

static mw_result credential(const struct mw_ca_authz *az, const struct mw_ca_authz_request *req,
                            struct mw_ca_grant *g, struct mw_ca_join_info *join)
{
    if (req->kind == MW_CA_CRED_K8S) {
        MW_ENSURE(az->k8s != NULL, MW_E_VERIFY,
                  "Kubernetes service-account tokens are not accepted by this CA (no JWKS "
                  "configured)");
        struct mw_k8s_identity k;
        if (mw_failed(mw_k8s_token_verify(az->k8s, req->credential, az->clock, &k))) {
            mw_error_prefix("Kubernetes token refused: ");
            return MW_FAILURE;
        }
        g->id = k.id;
        snprintf(g->subject, sizeof(g->subject), "system:serviceaccount:%s:%s", k.ns, k.sa);
        return MW_SUCCESS;
    }
    MW_ENSURE(req->kind == MW_CA_CRED_JOIN, MW_E_INPUT, "unknown credential kind %d",
              (int)req->kind);
    if (mw_failed(mw_ca_join_check(az->store, req->credential, az->clock, join))) {
        mw_error_prefix("join token refused: ");
        return MW_FAILURE;
    }
    MW_GUARD(mw_spiffe_id_parse(mw_slice_cstr(join->spiffe_id), &g->id, NULL));
    snprintf(g->subject, sizeof(g->subject), "join:%s", join->handle);
    return MW_SUCCESS;
}

static mw_result provenance(const struct mw_ca_authz *az, const struct mw_ca_authz_request *req,
                            const struct mw_ca_registration *reg, const char *uri,
                            struct mw_ca_grant *g)
{
    bool required = reg != NULL && reg->requires_provenance;
    if (req->image_digest == NULL || req->image_digest[0] == '\0') {
        MW_ENSURE(!required, MW_E_VERIFY,
                  "workload %s requires provenance, but the request names no image digest", uri);
        MW_ENSURE(reg == NULL || reg->n_images == 0, MW_E_VERIFY,
                  "workload %s is limited to listed images, but the request names no image digest",
                  uri);
        return MW_SUCCESS;
    }
    mw_slice img = mw_slice_cstr(req->image_digest);
    if (mw_failed(mw_ca_digest_check(img, "requested image"))) {
        mw_error_prefix("workload %s: ", uri);
        return MW_FAILURE;
    }
    if (reg != NULL && reg->n_images > 0) {
        bool listed = false;
        for (size_t i = 0; i < reg->n_images && !listed; i++)
            listed = strcmp(reg->images[i], req->image_digest) == 0;
        MW_ENSURE(listed, MW_E_VERIFY,
                  "workload %s may run only the images its registration %s lists, and %s is not "
                  "one of them",
                  uri, reg->name, req->image_digest);
    }
    mw_result r = mw_ca_artifact_get(az->store, img, &g->provenance);
    if (mw_ok(r)) {
        g->has_provenance = true;
        return MW_SUCCESS;
    }
    if (mw_error_code() != MW_E_NOTFOUND)
        return MW_FAILURE;
    MW_ENSURE(!required, MW_E_VERIFY,
              "workload %s requires provenance, but image %s is not admitted", uri,
              req->image_digest);
    mw_error_clear();
    return MW_SUCCESS;
}

/*
 * Clients know the CA service only by its SPIFFE ID (docs/ca.md, "How clients
 * verify the service"): an SVID for it in a workload's hands would let that
 * workload impersonate the CA to every sidecar. Never issue or renew it.
 */
static mw_result not_reserved(const struct mw_spiffe_id *id, const char *uri)
{
    MW_ENSURE(strcmp(id->path, MW_CA_SERVICE_PATH) != 0, MW_E_VERIFY,
              "%s is the CA service's own identity; it is never issued to a workload", uri);
    return MW_SUCCESS;
}

/* What both decisions share once the identity is known: registration, provenance, lifetime. */
static mw_result entitle(const struct mw_ca_authz *az, const char *image_digest, const char *uri,
                         struct mw_ca_grant *g)
{
    MW_GUARD(not_reserved(&g->id, uri));
    const struct mw_ca_registration *reg = mw_ca_registrations_find(az->regs, &g->id);
    MW_ENSURE(reg != NULL || az->allow_unregistered, MW_E_VERIFY,
              "workload %s is not registered (no WorkloadRegistration selects it)", uri);
    if (reg != NULL) {
        g->registered = true;
        snprintf(g->registration, sizeof(g->registration), "%s", reg->name);
    }
    struct mw_ca_authz_request preq = {.image_digest = image_digest};
    MW_GUARD(provenance(az, &preq, reg, uri, g));
    int64_t ca_max = az->max_ttl_s > 0 ? az->max_ttl_s : 3600;
    g->max_ttl_s =
        reg != NULL && reg->max_ttl_s > 0 && reg->max_ttl_s < ca_max ? reg->max_ttl_s : ca_max;
    return MW_SUCCESS;
}

mw_result mw_ca_authorize_renewal(const struct mw_ca_authz *az,
                                  const struct mw_ca_renewal_request *req, struct mw_ca_grant *out)
{
    MW_ENSURE(az->store != NULL && az->trust_domain != NULL, MW_E_STATE,
              "authorization needs a store and a trust domain");
    MW_ENSURE(req->serial != NULL && mw_ca_serial_hex_ok(mw_slice_cstr(req->serial)), MW_E_INPUT,
              "renewal: the presented certificate's serial is not 1..20 bytes of lower-case hex");
    struct mw_ca_grant g;
    memset(&g, 0, sizeof(g));
    g.id = req->id;
    g.kind = MW_CA_CRED_SVID;
    snprintf(g.subject, sizeof(g.subject), "svid:%s", req->serial);
    char uri[MW_SPIFFE_ID_MAX + 16];
    MW_ENSURE(mw_spiffe_id_format(&g.id, uri, sizeof(uri)), MW_E_LIMIT, "SPIFFE ID too long");
    MW_ENSURE(strcmp(g.id.td, az->trust_domain) == 0, MW_E_VERIFY,
              "the presented SVID is for %s, outside this CA's trust domain %s", uri,
              az->trust_domain);
    MW_ENSURE(g.id.path[0] != '\0', MW_E_VERIFY, "the presented SVID names no workload");
    if (mw_failed(entitle(az, req->image_digest, uri, &g))) {
        if (req->image_digest == NULL)
            mw_error_prefix("renewal (the presented SVID carries no provenance): ");
        else
            mw_error_prefix("renewal: ");
        return MW_FAILURE;
    }
    *out = g;
    return MW_SUCCESS;
}

mw_result mw_ca_authorize(const struct mw_ca_authz *az, const struct mw_ca_authz_request *req,
                          struct mw_ca_grant *out)
{
    MW_ENSURE(az->store != NULL && az->trust_domain != NULL, MW_E_STATE,
              "authorization needs a store and a trust domain");
    struct mw_ca_grant g;
    memset(&g, 0, sizeof(g));
    g.kind = req->kind;
    struct mw_ca_join_info join;
    MW_GUARD(credential(az, req, &g, &join));
    char uri[MW_SPIFFE_ID_MAX + 16];
    MW_ENSURE(mw_spiffe_id_format(&g.id, uri, sizeof(uri)), MW_E_LIMIT, "SPIFFE ID too long");
    /* A join token made for another trust domain is not ours to honour. */
    MW_ENSURE(strcmp(g.id.td, az->trust_domain) == 0, MW_E_VERIFY,
              "credential is for %s, outside this CA's trust domain %s", uri, az->trust_domain);
    MW_GUARD(entitle(az, req->image_digest, uri, &g));
    /* Spend the join token last, so that a refusal above leaves it usable. */
    if (req->kind == MW_CA_CRED_JOIN &&
        mw_failed(mw_ca_join_redeem(az->store, req->credential, az->clock, &join))) {
        mw_error_prefix("join token refused: ");
        return MW_FAILURE;
    }
    *out = g;
    return MW_SUCCESS;
}
