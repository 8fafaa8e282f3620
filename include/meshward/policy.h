/*
 * meshward policy: Istio AuthorizationPolicy and PeerAuthentication (security.istio.io v1 and
 * v1beta1), validated as Istio validates them, compiled per workload and evaluated on the request
 * path without allocation.
 *
 * Also meshward's own ProvenancePolicy kind (meshward.io/v1alpha1, docs/policy.md): the same
 * rule language plus conditions on the caller's image digest, builder id and source repository.
 *
 * Life cycle: a set (mw_policy_set) holds validated policies from any number of YAML streams; an
 * engine (mw_policy_engine) is compiled from a set for one workload (namespace + labels) and
 * borrows the set, which must outlive it. Evaluation is const and thread-safe.
 */
#ifndef MESHWARD_POLICY_H
#define MESHWARD_POLICY_H

#include <meshward/base.h>
#include <meshward/conf.h>

struct mw_policy_set;
struct mw_policy_engine;

/* MeshConfig.pathNormalization (istio/api mesh/v1alpha1/config.proto ProxyPathNormalization). */
enum mw_policy_path_norm {
    MW_POLICY_PATH_BASE = 0, /* DEFAULT: RFC 3986 + backslash to slash */
    MW_POLICY_PATH_MERGE_SLASHES,
    MW_POLICY_PATH_DECODE_AND_MERGE_SLASHES,
    MW_POLICY_PATH_NONE,
};

/* Parse "BASE", "DEFAULT", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES" or "NONE". */
MW_RESULT mw_policy_path_norm_parse(const char *name, enum mw_policy_path_norm *out);

/* PeerAuthentication.MutualTLS.Mode. */
enum mw_policy_mtls {
    MW_POLICY_MTLS_UNSET = 0,
    MW_POLICY_MTLS_DISABLE,
    MW_POLICY_MTLS_PERMISSIVE,
    MW_POLICY_MTLS_STRICT,
};
const char *mw_policy_mtls_name(enum mw_policy_mtls mode);

/* Mesh-wide settings that change how policies apply (MeshConfig). */
struct mw_policy_mesh {
    const char *root_namespace; /* NULL: "istio-system" */
    const char *trust_domain;   /* NULL: "cluster.local" */
    const char *const *trust_domain_aliases;
    size_t n_trust_domain_aliases;
    enum mw_policy_path_norm path_norm;
};

/* ---------------------------------------------------------------- loading */

MW_RESULT mw_policy_set_new(struct mw_policy_set **out);
void mw_policy_set_free(struct mw_policy_set *set);

/*
 * Validate and add every document of a YAML stream. RequestAuthentication is validated as Istio
 * does and kept (it counts in mw_policy_set_count) but never takes part in decisions: the caller
 * supplies the validated request principal and claims. Documents of kinds meshward does not model
 * (Deployment, ...) are skipped with a warning. Fails on the first invalid
 * document with a "file:line:col: " message naming the fault; the documents before it stay added.
 */
MW_RESULT mw_policy_set_add_yaml(struct mw_policy_set *set, mw_slice text, const char *name);
MW_RESULT mw_policy_set_add_file(struct mw_policy_set *set, const char *path);
/*
 * Validate and add one already-parsed document (root of a mw_docs). The set copies what it keeps;
 * the docs may be freed afterwards. A NULL root (empty document) is accepted and adds nothing.
 */
MW_RESULT mw_policy_set_add_doc(struct mw_policy_set *set, const struct mw_node *root);

size_t mw_policy_set_count(const struct mw_policy_set *set);
/* Warnings found while loading ("file:line: text"), in order. */
size_t mw_policy_set_warning_count(const struct mw_policy_set *set);
const char *mw_policy_set_warning(const struct mw_policy_set *set, size_t i);

/* ---------------------------------------------------------------- requests */

/* An IPv4 or IPv6 address; family 0 means absent. IPv4 is stored in b[0..3]. */
struct mw_policy_ip {
    uint8_t b[16];
    uint8_t family; /* 0, 4 or 6 */
};
MW_RESULT mw_policy_ip_parse(mw_slice text, struct mw_policy_ip *out);

struct mw_policy_header {
    mw_slice name; /* compared case-insensitively */
    mw_slice value;
};

/*
 * One request or connection as the sidecar sees it. Slices with p == NULL are absent (a plaintext
 * connection has no source_principal; a TCP connection has no method). All bytes are borrowed.
 */
struct mw_policy_request {
    bool http;                          /* HTTP filter chain (true) or plain TCP (false) */
    mw_slice source_principal;          /* peer SPIFFE ID without "spiffe://" (td/ns/N/sa/S) */
    struct mw_policy_ip source_ip;      /* direct peer address */
    struct mw_policy_ip remote_ip;      /* client address (XFF/PROXY); absent: source_ip */
    struct mw_policy_ip destination_ip; /* local address */
    uint16_t destination_port;          /* workload (container) port */
    mw_slice method;
    mw_slice path; /* :path as sent, query string included */
    mw_slice host; /* :authority as sent */
    mw_slice sni;
    const struct mw_policy_header *headers;
    size_t n_headers;
    mw_slice request_principal;      /* iss + "/" + sub of a validated JWT */
    const struct json_t *jwt_claims; /* payload of that JWT (NULL: no token) */
    /* From the peer SVID's provenance extension (meshward). */
    mw_slice image_digest;
    mw_slice builder_id;
    mw_slice source_repository;
};

/*
 * Fill *req from a JSON object in the shape of the requests of authz-decisions.json (protocol,
 * source_principal, source_ip, destination_port, method, path, host, headers, request_principal,
 * jwt_claims, sni; plus remote_ip, destination_ip, image_digest, builder_id, source_repository).
 * *req borrows from obj and from *headers_out, an array the caller frees with free().
 */
MW_RESULT mw_policy_request_from_json(const struct json_t *obj, struct mw_policy_request *req,
                                      struct mw_policy_header **headers_out);

/* ---------------------------------------------------------------- evaluation */

MW_RESULT mw_policy_engine_compile(const struct mw_policy_set *set,
                                   const struct mw_policy_mesh *mesh, const char *ns,
                                   const char *const *label_keys, const char *const *label_values,
                                   size_t n_labels, struct mw_policy_engine **out);
void mw_policy_engine_free(struct mw_policy_engine *e);

/* Counts of the policies that apply to the workload, by action; dry-run ones are not counted. */
size_t mw_policy_engine_count(const struct mw_policy_engine *e, const char *action);

enum mw_policy_verdict { MW_POLICY_DENY = 0, MW_POLICY_ALLOW = 1 };

/*
 * The result of one evaluation. Strings point into the engine (or are static) and stay valid
 * while it lives.
 */
struct mw_policy_decision {
    enum mw_policy_verdict verdict;
    bool audit;         /* an AUDIT policy matched */
    const char *policy; /* "ns/name" of the deciding policy, NULL when a default decided */
    const char *action; /* "ALLOW", "DENY", "CUSTOM", or NULL */
    size_t rule;        /* index of the deciding rule in that policy */
    const char *file;   /* where the deciding rule is written */
    size_t line;
    const char *reason;       /* one line for people */
    const char *audit_policy; /* "ns/name" of the first AUDIT policy that matched */
};

void mw_policy_evaluate(const struct mw_policy_engine *e, const struct mw_policy_request *req,
                        struct mw_policy_decision *out);

/* ---------------------------------------------------------------- mTLS */

struct mw_policy_mtls_result {
    enum mw_policy_mtls mode;
    const char *policy; /* "ns/name" that decided, NULL for the PERMISSIVE default */
    const char *scope;  /* "default", "mesh", "namespace", "workload" or "port" */
};

/*
 * The effective PeerAuthentication mode for a workload and workload port
 * (istio/istio pilot/pkg/security/authn/policy_applier.go ComposePeerAuthentication).
 */
void mw_policy_mtls_mode(const struct mw_policy_set *set, const struct mw_policy_mesh *mesh,
                         const char *ns, const char *const *label_keys,
                         const char *const *label_values, size_t n_labels, uint16_t port,
                         struct mw_policy_mtls_result *out);

/* ---------------------------------------------------------------- review */

/*
 * Call fn once per ALLOW rule that applies to the workload, with a one-line summary of who it
 * admits (principals, namespaces, ports, paths); and once per DENY rule with what it blocks.
 * An over-approximation: when conditions and negations are summarised, not solved.
 */
typedef void (*mw_policy_who_fn)(void *ctx, const char *action, const char *policy, size_t rule,
                                 const char *summary);
MW_RESULT mw_policy_who_can(const struct mw_policy_engine *e, mw_policy_who_fn fn, void *ctx);

#endif
