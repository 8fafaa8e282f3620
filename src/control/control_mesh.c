/*
 * The mesh directory: load, validate, select per namespace (docs/control.md).
 */
#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include <meshward/conf.h>
#include <meshward/control.h>
#include <meshward/policy.h>
#include <meshward/spiffe.h>

#define MESHWARD_API "meshward.io/v1alpha1"
#define MAX_FILES    4096
#define MAX_DOCS     100000

enum doc_kind { DOC_POLICY = 1, DOC_EGRESS, DOC_SERVICE };

struct doc {
    enum doc_kind kind;
    char *ns;   /* metadata.namespace ("default" when absent) */
    char *text; /* "--- {...}\n": the document as emitted */
    size_t len;
};

struct mw_control_mesh {
    char *root_ns;
    struct doc *docs;
    size_t n, cap;
    struct mw_control_mesh_stats stats;
};

void mw_control_mesh_free(struct mw_control_mesh *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->docs[i].ns);
        free(m->docs[i].text);
    }
    free(m->docs);
    free(m->root_ns);
    free(m);
}

static mw_result fail_at(const struct mw_node *n, const char *msg)
{
    mw_node_error(n, MW_E_INPUT, "%s", msg);
    return MW_FAILURE;
}

static bool is_str(const struct mw_node *n)
{
    return mw_node_kind(n) == MW_NODE_SCALAR && mw_node_slice(n).n > 0;
}

/* endpoints: numeric "address:port" strings, as the sidecar reads them. */
static mw_result check_endpoint(const struct mw_node *e)
{
    if (!is_str(e))
        return fail_at(e, "an endpoint must be \"address:port\"");
    const char *s = mw_node_str(e);
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || colon[1] == '\0')
        return fail_at(e, "an endpoint must be a numeric \"address:port\"");
    uint64_t port;
    if (mw_failed(mw_parse_u64(mw_slice_cstr(colon + 1), 1, 65535, "port", &port)))
        return fail_at(e, "an endpoint's port must be 1..65535");
    return MW_SUCCESS;
}

/* MeshService: spec {host, port, endpoints, spiffeId}; the registry entry of one service. */
static mw_result check_service(const struct mw_node *root)
{
    const struct mw_node *spec = mw_node_get(root, "spec");
    if (mw_node_kind(spec) != MW_NODE_MAP)
        return fail_at(root, "MeshService needs a spec mapping");
    for (size_t i = 0; i < mw_node_len(spec); i++) {
        const char *k = mw_node_str(mw_node_key_at(spec, i));
        if (k == NULL ||
            (strcmp(k, "host") != 0 && strcmp(k, "port") != 0 && strcmp(k, "endpoints") != 0 &&
             strcmp(k, "spiffeId") != 0 && strcmp(k, "protocol") != 0))
            return fail_at(mw_node_key_at(spec, i),
                           "unknown key in MeshService spec (want host, port, endpoints, "
                           "spiffeId, protocol)");
    }
    const struct mw_node *proto = mw_node_get(spec, "protocol");
    if (proto != NULL && (!is_str(proto) || (strcmp(mw_node_str(proto), "http") != 0 &&
                                             strcmp(mw_node_str(proto), "tcp") != 0)))
        return fail_at(proto, "MeshService spec.protocol must be http or tcp");
    if (!is_str(mw_node_get(spec, "host")))
        return fail_at(spec, "MeshService spec.host must be a host name");
    int64_t port;
    if (mw_failed(mw_node_i64(mw_node_get(spec, "port"), 1, 65535, &port)))
        return fail_at(mw_node_get(spec, "port") ? mw_node_get(spec, "port") : spec,
                       "MeshService spec.port must be a number in 1..65535");
    const struct mw_node *id = mw_node_get(spec, "spiffeId");
    struct mw_spiffe_id sid;
    if (!is_str(id) || mw_failed(mw_spiffe_id_parse(mw_node_slice(id), &sid, NULL)))
        return fail_at(id ? id : spec, "MeshService spec.spiffeId must be a SPIFFE ID");
    const struct mw_node *eps = mw_node_get(spec, "endpoints");
    if (mw_node_kind(eps) != MW_NODE_SEQ || mw_node_len(eps) == 0)
        return fail_at(eps ? eps : spec, "MeshService spec.endpoints must list the sidecars");
    for (size_t i = 0; i < mw_node_len(eps); i++)
        MW_GUARD(check_endpoint(mw_node_item(eps, i)));
    return MW_SUCCESS;
}

/* EgressPolicy: spec {egress: [...]}; entries are checked by the sidecar that applies them. */
static mw_result check_egress(const struct mw_node *root)
{
    const struct mw_node *spec = mw_node_get(root, "spec");
    if (mw_node_kind(spec) != MW_NODE_MAP || mw_node_len(spec) != 1 ||
        mw_node_kind(mw_node_get(spec, "egress")) != MW_NODE_SEQ)
        return fail_at(spec ? spec : root, "EgressPolicy spec must be {egress: [...]}");
    for (size_t i = 0; i < mw_node_len(mw_node_get(spec, "egress")); i++)
        if (mw_node_kind(mw_node_item(mw_node_get(spec, "egress"), i)) != MW_NODE_MAP)
            return fail_at(mw_node_item(mw_node_get(spec, "egress"), i),
                           "an egress declaration must be a mapping");
    return MW_SUCCESS;
}

static mw_result classify(const struct mw_node *root, enum doc_kind *kind)
{
    if (mw_node_kind(root) != MW_NODE_MAP)
        return fail_at(root, "a document must be a mapping with apiVersion and kind");
    const char *api = mw_node_str(mw_node_get(root, "apiVersion"));
    const char *k = mw_node_str(mw_node_get(root, "kind"));
    if (api == NULL || k == NULL)
        return fail_at(root, "a document needs apiVersion and kind");
    bool ours = strcmp(api, MESHWARD_API) == 0;
    if (ours && strcmp(k, "EgressPolicy") == 0)
        *kind = DOC_EGRESS;
    else if (ours && strcmp(k, "MeshService") == 0)
        *kind = DOC_SERVICE;
    else if ((ours && strcmp(k, "ProvenancePolicy") == 0) ||
             (strncmp(api, "security.istio.io/", 18) == 0 &&
              (strcmp(k, "AuthorizationPolicy") == 0 || strcmp(k, "PeerAuthentication") == 0 ||
               strcmp(k, "RequestAuthentication") == 0)))
        *kind = DOC_POLICY;
    else
        return fail_at(root, "not a kind the control plane distributes (want Istio "
                             "AuthorizationPolicy, PeerAuthentication, RequestAuthentication, "
                             "or meshward.io/v1alpha1 ProvenancePolicy, EgressPolicy, "
                             "MeshService)");
    return MW_SUCCESS;
}

static mw_result add_doc(struct mw_control_mesh *m, const struct mw_node *root, enum doc_kind kind)
{
    MW_ENSURE(m->n < MAX_DOCS, MW_E_LIMIT, "more than %d documents in the mesh", MAX_DOCS);
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct doc *d = realloc(m->docs, cap * sizeof(*d));
        MW_ENSURE(d != NULL, MW_E_NOMEM, "out of memory");
        m->docs = d;
        m->cap = cap;
    }
    const char *ns = mw_node_str(mw_node_get(mw_node_get(root, "metadata"), "namespace"));
    struct mw_dynbuf text;
    mw_dynbuf_init(&text, 16 << 20);
    mw_result r = mw_node_emit_yaml(root, &text);
    struct doc *d = &m->docs[m->n];
    d->kind = kind;
    d->ns = strdup(ns != NULL && ns[0] != '\0' ? ns : "default");
    d->len = 0;
    d->text = mw_ok(r) ? (char *)mw_dynbuf_take(&text, &d->len) : NULL;
    mw_dynbuf_free(&text);
    if (mw_failed(r) || d->ns == NULL || d->text == NULL) {
        free(d->ns);
        free(d->text);
        if (mw_ok(r))
            mw_error_set(MW_E_NOMEM, "out of memory");
        return MW_FAILURE;
    }
    m->n++;
    return MW_SUCCESS;
}

static mw_result load_file(struct mw_control_mesh *m, struct mw_policy_set *set, const char *path)
{
    struct mw_docs *docs;
    MW_GUARD(mw_yaml_load_file(path, &mw_conf_default_limits, &docs));
    mw_result r = MW_SUCCESS;
    for (size_t i = 0; i < mw_docs_count(docs) && mw_ok(r); i++) {
        const struct mw_node *root = mw_docs_root(docs, i);
        if (root == NULL)
            continue;
        enum doc_kind kind = 0;
        r = classify(root, &kind);
        if (mw_ok(r) && kind == DOC_POLICY)
            r = mw_policy_set_add_doc(set, root);
        else if (mw_ok(r) && kind == DOC_EGRESS)
            r = check_egress(root);
        else if (mw_ok(r) && kind == DOC_SERVICE)
            r = check_service(root);
        if (mw_ok(r))
            r = add_doc(m, root, kind);
        if (mw_ok(r)) {
            m->stats.policies += kind == DOC_POLICY;
            m->stats.egress += kind == DOC_EGRESS;
            m->stats.services += kind == DOC_SERVICE;
        }
    }
    mw_docs_free(docs);
    return r;
}

static int yaml_name(const struct dirent *de)
{
    size_t n = strlen(de->d_name);
    if (de->d_name[0] == '.')
        return 0;
    return (n > 5 && strcmp(de->d_name + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(de->d_name + n - 4, ".yml") == 0);
}

mw_result mw_control_mesh_load(const char *dir, const char *root_namespace,
                               struct mw_control_mesh **out)
{
    *out = NULL;
    struct dirent **names = NULL;
    int n = scandir(dir, &names, yaml_name, alphasort);
    MW_ENSURE(n >= 0, MW_E_IO, "mesh directory %s: %s", dir, strerror(errno));
    struct mw_control_mesh *m = calloc(1, sizeof(*m));
    struct mw_policy_set *set = NULL;
    mw_result r = MW_SUCCESS;
    if (m == NULL ||
        (m->root_ns = strdup(root_namespace ? root_namespace : "istio-system")) == NULL) {
        mw_error_set(MW_E_NOMEM, "out of memory");
        r = MW_FAILURE;
    }
    if (mw_ok(r) && n > MAX_FILES) {
        mw_error_set(MW_E_LIMIT, "mesh directory %s: more than %d files", dir, MAX_FILES);
        r = MW_FAILURE;
    }
    if (mw_ok(r))
        r = mw_policy_set_new(&set);
    for (int i = 0; i < n && mw_ok(r); i++) {
        char path[4096];
        int len = snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (len < 0 || (size_t)len >= sizeof(path)) {
            mw_error_set(MW_E_INPUT, "mesh directory: path too long");
            r = MW_FAILURE;
            break;
        }
        r = load_file(m, set, path);
        m->stats.files++;
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (mw_ok(r))
        for (size_t i = 0; i < mw_policy_set_warning_count(set); i++)
            mw_log_warn("control", "%s", mw_policy_set_warning(set, i));
    mw_policy_set_free(set);
    if (mw_failed(r)) {
        mw_control_mesh_free(m);
        return r;
    }
    *out = m;
    return MW_SUCCESS;
}

void mw_control_mesh_stats(const struct mw_control_mesh *m, struct mw_control_mesh_stats *out)
{
    *out = m->stats;
}

void mw_control_mesh_digest(const struct mw_control_mesh *m, uint8_t out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    memset(out, 0, 32);
    if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(ctx);
        return;
    }
    bool ok = true;
    for (size_t i = 0; i < m->n && ok; i++) {
        /* The namespace and the text are both part of what a sidecar receives. */
        ok = EVP_DigestUpdate(ctx, m->docs[i].ns, strlen(m->docs[i].ns) + 1) &&
             EVP_DigestUpdate(ctx, m->docs[i].text, m->docs[i].len);
    }
    unsigned len = 32;
    if (ok)
        (void)EVP_DigestFinal_ex(ctx, out, &len);
    EVP_MD_CTX_free(ctx);
}

mw_result mw_control_mesh_render(const struct mw_control_mesh *m, const char *ns,
                                 struct mw_dynbuf *out)
{
    for (size_t i = 0; i < m->n; i++) {
        const struct doc *d = &m->docs[i];
        /*
         * Istio semantics: a policy applies in its own namespace, and mesh-wide from the root
         * namespace. The registry is mesh-wide.
         */
        bool want =
            d->kind == DOC_SERVICE || strcmp(d->ns, ns) == 0 || strcmp(d->ns, m->root_ns) == 0;
        if (want)
            MW_GUARD(mw_dynbuf_add(out, d->text, d->len));
    }
    return MW_SUCCESS;
}
