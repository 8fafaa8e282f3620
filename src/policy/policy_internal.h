/* Internal: the policy model shared by loading, compiling, evaluation and the review helpers. */
#ifndef MESHWARD_POLICY_INTERNAL_H
#define MESHWARD_POLICY_INTERNAL_H

#include <meshward/policy.h>

/* Longest :path we normalise; longer paths are denied (fail closed) rather than truncated. */
#define MW_POLICY_MAX_PATH 8192

/* ---------------------------------------------------------------- arena */

/* Everything a set keeps lives in one arena, freed at once. */
struct pol_arena_block;
struct pol_arena {
    struct pol_arena_block *head;
};
void *pol_alloc(struct pol_arena *a, size_t n);
char *pol_strndup(struct pol_arena *a, const char *s, size_t n);
void pol_arena_free(struct pol_arena *a);

/* ---------------------------------------------------------------- matchers */

enum pol_match {
    PM_EXACT = 1,
    PM_PREFIX,
    PM_SUFFIX,
    PM_PRESENCE,
    PM_TEMPLATE, /* {*} / {**} path template */
    PM_CIDR,
    PM_PORT,
    PM_NS_GLOB,      /* .../ns/<glob>/... on the peer identity */
    PM_SA,           /* serviceAccounts regex of generator.go */
    PM_PRINCIPAL_TD, /* <cluster.local|td|alias>/ns/N/sa/S: the trust domain is the mesh's */
};

/* One segment of a path template: literal text, {*} (one segment) or {**} (the rest). */
struct pol_tseg {
    uint8_t kind; /* 0 literal, 1 one segment, 2 any run */
    const char *s;
    size_t n;
};

struct pol_value {
    uint8_t kind;
    const char *s; /* text (hosts lowercased); for PM_SA the namespace; PM_PRINCIPAL_TD the rest */
    size_t n;
    const char *s2; /* PM_SA: the service account name */
    size_t n2;
    const struct pol_tseg *segs; /* PM_TEMPLATE */
    size_t nsegs;
    struct mw_policy_ip ip; /* PM_CIDR */
    uint8_t bits;
    uint16_t port;   /* PM_PORT */
    const char *raw; /* as written, for explanations */
};

enum pol_attr {
    PA_PRINCIPAL = 1,
    PA_NAMESPACE,
    PA_SERVICE_ACCOUNT,
    PA_TRUST_DOMAIN,
    PA_REQUEST_PRINCIPAL,
    PA_SOURCE_IP,
    PA_REMOTE_IP,
    PA_DEST_IP,
    PA_HOST,
    PA_PORT,
    PA_METHOD,
    PA_PATH,
    PA_HEADER,
    PA_CLAIM,
    PA_SNI,
    PA_METADATA, /* experimental.envoy.filters.*: no value in our request model */
    PA_IMAGE_DIGEST,
    PA_BUILDER_ID,
    PA_SOURCE_REPO,
};

/* One field (principals, notPaths, a when key's values or notValues): values are ORed. */
struct pol_field {
    uint8_t attr;
    bool neg;
    bool http_only;
    const char *name; /* as written: "principals", "request.headers[x-token]" */
    const struct pol_value *v;
    size_t nv;
    const char *hname; /* PA_HEADER: header name */
    size_t hname_n;
    const char *const *claim; /* PA_CLAIM: path of claim names */
    size_t claim_n;
};

/* The fields of one source, one operation, or all the when conditions: ANDed. */
struct pol_clause {
    const struct pol_field *f;
    size_t nf;
};

struct pol_rule {
    const struct pol_clause *from; /* ORed; nfrom == 0 means any */
    size_t nfrom;
    const struct pol_clause *to; /* ORed; nto == 0 means any */
    size_t nto;
    struct pol_clause when;
    bool http_only; /* some field anywhere is HTTP-only */
    size_t line;
};

enum pol_action { PACT_ALLOW = 0, PACT_DENY, PACT_AUDIT, PACT_CUSTOM };

struct pol_label {
    const char *k;
    const char *v;
};

enum pol_kind { PK_AUTHZ = 1, PK_PEERAUTH, PK_PROVENANCE, PK_REQAUTHN };

struct pol_port_mtls {
    uint16_t port;
    enum mw_policy_mtls mode;
};

/* One RequestAuthentication jwtRule: only what review and duplicate checks need. */
struct pol_jwt_rule {
    const char *issuer;   /* "" when only jwksUri names the issuer */
    const char *jwks_uri; /* "" when absent */
    size_t line;
};

struct pol_policy {
    enum pol_kind kind;
    const char *ns;
    const char *name;
    const char *id; /* ns/name */
    const char *file;
    size_t line;
    const char *created; /* metadata.creationTimestamp, RFC 3339 or "" */
    bool has_selector;
    const struct pol_label *labels;
    size_t nlabels;
    bool has_target_refs;
    /* authorization */
    enum pol_action action;
    bool dry_run;
    const char *provider;
    const struct pol_rule *rules;
    size_t nrules;
    /* PeerAuthentication */
    enum mw_policy_mtls mode;
    const struct pol_port_mtls *ports;
    size_t nports;
    /* RequestAuthentication */
    const struct pol_jwt_rule *jwt;
    size_t njwt;
};

struct mw_policy_set {
    struct pol_arena arena;
    struct pol_policy **p;
    size_t n, cap;
    char **warnings;
    size_t nwarnings, capwarnings;
};

/* ---------------------------------------------------------------- loading hooks */

/* policy_load.c: append "file:line: msg" to the set's warnings. */
MW_RESULT pol_add_warning(struct mw_policy_set *set, const struct mw_node *n, const char *msg);
/*
 * policy_load.c: selector, targetRef and targetRefs of spec into p (validation.go
 * validateOneOfSelectorType, validateWorkloadSelector, validatePolicyTargetReference); warns
 * about a selector without labels when warn_empty.
 */
MW_RESULT pol_load_targeting(struct mw_policy_set *set, struct pol_policy *p,
                             const struct mw_node *root, const struct mw_node *spec,
                             bool warn_empty);
/* policy_reqauthn.c: validate a RequestAuthentication spec (non-NULL mapping) into p. */
MW_RESULT pol_reqauthn_load(struct mw_policy_set *set, struct pol_policy *p,
                            const struct mw_node *root, const struct mw_node *spec);
/* policy_reqauthn.c: the checks on one jwksUri and one Go duration, exposed for tests. */
MW_RESULT pol_jwks_uri_check(mw_slice uri);
MW_RESULT pol_go_duration_ms(mw_slice text, uint64_t *ms);

/* ---------------------------------------------------------------- helpers */

/* Parse one string value into a matcher for attr (no validation beyond what the kind needs). */
MW_RESULT pol_value_parse(struct pol_arena *a, uint8_t attr, const char *s, size_t n,
                          const char *policy_ns, struct pol_value *out);
MW_RESULT pol_cidr_parse(mw_slice text, struct mw_policy_ip *ip, uint8_t *bits);
bool pol_cidr_contains(const struct pol_value *v, const struct mw_policy_ip *ip);
/* Istio's path template checks (pkg/config/security/security.go). */
bool pol_is_template(const char *s, size_t n);
MW_RESULT pol_template_check(const char *s, size_t n);

/* Normalise p (the :path without query and fragment) for mode into out[MW_POLICY_MAX_PATH]. */
MW_RESULT pol_path_normalize(mw_slice p, enum mw_policy_path_norm mode, char *out, size_t *outn);
/* The strictest reading any backend could give: used so that no DENY can be side-stepped. */
MW_RESULT pol_path_strict(mw_slice p, char *out, size_t *outn);

/*
 * Whether pol_path_normalize (any mode) or pol_path_strict would refuse path: 1 refused, 0 not,
 * -1 too long to tell without running them.
 */
int pol_path_refused(mw_slice path);

bool pol_labels_subset(const struct pol_policy *p, const char *const *k, const char *const *v,
                       size_t n);
bool pol_str_match(const struct pol_value *v, mw_slice s, bool ci);
bool pol_template_match(const struct pol_value *v, mw_slice s);
bool pol_ns_glob_match(const struct pol_value *v, mw_slice identity);
/* The glob of a namespace pattern ('*' is ".*") against one namespace. */
bool pol_glob(const char *g, size_t gn, const uint8_t *t, size_t tn);
bool pol_sa_match(const struct pol_value *v, mw_slice identity);

/* ---------------------------------------------------------------- compiled index */

/*
 * The rules of one workload's policies, flattened per action in evaluation order (policy, then
 * rule), with two kinds of necessary condition checked before a rule is evaluated:
 *
 * - presence bits: attributes a rule's positive fields need (a positive field on an absent
 *   attribute is false), against the attributes the request has;
 * - a gate: a rule whose every source names exact principals or exact namespaces, or whose
 *   every operation names ports, is filed in hash buckets under those values, and is only
 *   visited when the request's principal, namespace or port selects one of its buckets.
 *
 * Both only skip rules that cannot match, and candidates are visited in ascending order, so the
 * first matching rule, and with it every decision and explanation, is the one a full scan finds.
 */
enum {
    PB_PEER = 1u << 0, /* source_principal */
    PB_REQ_PRINCIPAL = 1u << 1,
    PB_HOST = 1u << 2,
    PB_METHOD = 1u << 3,
    PB_PATH = 1u << 4,
    PB_SNI = 1u << 5,
    PB_CLAIMS = 1u << 6,
    PB_SOURCE_IP = 1u << 7,
    PB_REMOTE_IP = 1u << 8,
    PB_DEST_IP = 1u << 9,
    PB_IMAGE_DIGEST = 1u << 10,
    PB_BUILDER_ID = 1u << 11,
    PB_SOURCE_REPO = 1u << 12,
    PB_NEVER = 1u << 31, /* no request has it: dynamic metadata; ALLOW rules on TCP */
};

enum pol_gate { PG_PORT = 1, PG_PRINCIPAL, PG_NAMESPACE };

/* One rule of one applying policy. */
struct pol_entry {
    const struct pol_policy *p;
    const struct pol_rule *rule;
    size_t idx;         /* index of the rule in p */
    uint32_t need_http; /* presence bits needed by an HTTP request */
    uint32_t need_tcp;  /* ... by a TCP connection (HTTP-only fields dropped) */
};

/* Ordinals into pol_action_index.e, ascending. */
struct pol_list {
    const uint32_t *o;
    size_t n;
};

struct pol_action_index {
    struct pol_entry *e;
    size_t n;
    struct pol_list ungated;
    struct pol_list ns_gated; /* every namespace-gated rule: used when a principal names too many */
    bool port_gated, principal_gated; /* some rule is filed under that gate */
    bool indexed;                     /* enough rules for the gates to pay (else scan e) */
    bool http_possible, tcp_possible; /* some rule can match that protocol */
};

struct pol_bucket {
    uint64_t h;
    const char *key; /* PG_PRINCIPAL: from the first '/'; PG_NAMESPACE: the namespace */
    size_t keyn;
    uint16_t port; /* PG_PORT */
    uint8_t gate;  /* 0: empty slot */
    uint8_t action;
    struct pol_list l;
};

struct pol_index {
    struct pol_action_index a[4];
    struct pol_bucket *tab;
    size_t mask; /* table size - 1 */
    uint32_t *pool;
};

/* Build the index of the policies by[action][0..n[action]); they must outlive it. */
MW_RESULT pol_index_build(struct pol_index *ix, const struct pol_policy *const *const by[4],
                          const size_t n[4]);
void pol_index_free(struct pol_index *ix);
/* Hash of a key's bytes; pol_index_get mixes in the gate, action and port. */
uint64_t pol_index_hash(const void *key, size_t n);
/* The rules of action filed under (gate, key or port); empty when none. */
struct pol_list pol_index_get(const struct pol_index *ix, int action, uint8_t gate, uint64_t h,
                              const void *key, size_t keyn, uint16_t port);

#endif
