/*
 * The meshward.io/v1alpha1 ImagePolicy: which images (a glob on the
 * repository) need which signers and which SLSA provenance, and the sidecar
 * image digests pinned per namespace. SLSA spec/verifying-artifacts.md:
 * consumers accept specific signer-builder pairs, so provenance requirements
 * live in the same rule as the signers they pair with.
 */
#include <fnmatch.h>
#include <regex.h>
#include <string.h>

#include <openssl/sha.h>

#include <meshward/conf.h>

#include "verify/verify_internal.h"

#define IP_MAX_RULES 256
#define IP_MAX_ITEMS 64
#define IP_STR_MAX   4096

struct ip_list {
    char *v[IP_MAX_ITEMS];
    size_t n;
};

struct ip_signer {
    char *identity, *identity_regex, *issuer, *issuer_regex, *key_pem;
    char *source_repo, *source_ref;
};

struct ip_rule {
    char *glob;
    struct ip_signer signers[IP_MAX_ITEMS];
    size_t nsigners;
    bool provenance;
    struct ip_list builders, repos, refs, build_types;
};

struct ip_sidecar {
    char *ns;
    struct ip_list digests;
};

struct mw_image_policy {
    uint8_t digest[32];
    char name[256];
    struct ip_rule *rules;
    size_t nrules;
    struct ip_sidecar *sidecars;
    size_t nsidecars;
};

#define IP_FAIL(node, ...)                              \
    do {                                                \
        mw_node_error((node), MW_E_INPUT, __VA_ARGS__); \
        return MW_FAILURE;                              \
    } while (0)

static mw_result str_of(const struct mw_node *n, const char *what, char **out)
{
    if (n == NULL)
        return MW_SUCCESS;
    if (mw_node_kind(n) != MW_NODE_SCALAR || mw_node_is_null(n))
        IP_FAIL(n, "%s must be a string", what);
    mw_slice s = mw_node_slice(n);
    if (s.n == 0 || s.n > IP_STR_MAX || memchr(s.p, '\0', s.n) != NULL)
        IP_FAIL(n, "%s must be a non-empty string of at most %d bytes", what, IP_STR_MAX);
    *out = strndup((const char *)s.p, s.n);
    MW_ENSURE(*out != NULL, MW_E_NOMEM, "out of memory");
    return MW_SUCCESS;
}

static mw_result list_of(const struct mw_node *n, const char *what, struct ip_list *out)
{
    if (n == NULL)
        return MW_SUCCESS;
    if (mw_node_kind(n) != MW_NODE_SEQ)
        IP_FAIL(n, "%s must be a list of strings", what);
    if (mw_node_len(n) > IP_MAX_ITEMS)
        IP_FAIL(n, "%s has %zu items, at most %d", what, mw_node_len(n), IP_MAX_ITEMS);
    for (size_t i = 0; i < mw_node_len(n); i++) {
        MW_GUARD(str_of(mw_node_item(n, i), what, &out->v[i]));
        out->n = i + 1;
    }
    return MW_SUCCESS;
}

static mw_result only_keys(const struct mw_node *map, const char *what, const char *const *keys,
                           size_t nkeys)
{
    for (size_t i = 0; i < mw_node_len(map); i++) {
        const char *k = mw_node_str(mw_node_key_at(map, i));
        bool known = false;
        for (size_t j = 0; j < nkeys && !known; j++)
            known = k != NULL && strcmp(k, keys[j]) == 0;
        if (!known)
            IP_FAIL(mw_node_key_at(map, i), "%s: unknown field \"%s\"", what, k ? k : "?");
    }
    return MW_SUCCESS;
}

static mw_result check_regex(const struct mw_node *n, const char *re)
{
    if (re == NULL)
        return MW_SUCCESS;
    regex_t rx;
    if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
        IP_FAIL(n, "regular expression \"%s\" does not compile (POSIX extended)", re);
    regfree(&rx);
    return MW_SUCCESS;
}

static mw_result parse_signer(const struct mw_node *n, struct ip_signer *s)
{
    static const char *const keys[] = {"identity", "identityRegex", "issuer",   "issuerRegex",
                                       "key",      "sourceRepo",    "sourceRef"};
    if (mw_node_kind(n) != MW_NODE_MAP)
        IP_FAIL(n, "a signer must be a mapping");
    MW_GUARD(only_keys(n, "signer", keys, MW_ARRAY_LEN(keys)));
    MW_GUARD(str_of(mw_node_get(n, "identity"), "identity", &s->identity));
    MW_GUARD(str_of(mw_node_get(n, "identityRegex"), "identityRegex", &s->identity_regex));
    MW_GUARD(str_of(mw_node_get(n, "issuer"), "issuer", &s->issuer));
    MW_GUARD(str_of(mw_node_get(n, "issuerRegex"), "issuerRegex", &s->issuer_regex));
    MW_GUARD(str_of(mw_node_get(n, "key"), "key", &s->key_pem));
    MW_GUARD(str_of(mw_node_get(n, "sourceRepo"), "sourceRepo", &s->source_repo));
    MW_GUARD(str_of(mw_node_get(n, "sourceRef"), "sourceRef", &s->source_ref));
    MW_GUARD(check_regex(mw_node_get(n, "identityRegex"), s->identity_regex));
    MW_GUARD(check_regex(mw_node_get(n, "issuerRegex"), s->issuer_regex));
    bool keyless = s->identity || s->identity_regex || s->issuer || s->issuer_regex;
    if (s->key_pem != NULL && keyless)
        IP_FAIL(n, "a signer is either a key or an identity with an issuer, not both");
    if (s->key_pem == NULL &&
        (!(s->identity || s->identity_regex) || !(s->issuer || s->issuer_regex)))
        IP_FAIL(n, "a keyless signer needs identity (or identityRegex) and issuer (or "
                   "issuerRegex)");
    if (s->identity && s->identity_regex)
        IP_FAIL(n, "give identity or identityRegex, not both");
    if (s->key_pem != NULL) {
        if (strstr(s->key_pem, "-----BEGIN PUBLIC KEY-----") == NULL)
            IP_FAIL(n, "key must be a PEM public key (-----BEGIN PUBLIC KEY-----)");
    }
    return MW_SUCCESS;
}

static mw_result parse_rule(const struct mw_node *n, struct ip_rule *r)
{
    static const char *const keys[] = {"glob", "signers", "provenance"};
    static const char *const pkeys[] = {"builderIds", "sourceRepos", "sourceRefs", "buildTypes"};
    if (mw_node_kind(n) != MW_NODE_MAP)
        IP_FAIL(n, "an image rule must be a mapping");
    MW_GUARD(only_keys(n, "image rule", keys, MW_ARRAY_LEN(keys)));
    if (mw_node_get(n, "glob") == NULL)
        IP_FAIL(n, "an image rule needs a glob");
    MW_GUARD(str_of(mw_node_get(n, "glob"), "glob", &r->glob));
    const struct mw_node *sg = mw_node_get(n, "signers");
    if (mw_node_kind(sg) != MW_NODE_SEQ || mw_node_len(sg) == 0)
        IP_FAIL(sg != NULL ? sg : n, "rule %s: signers must be a non-empty list", r->glob);
    if (mw_node_len(sg) > IP_MAX_ITEMS)
        IP_FAIL(sg, "rule %s: %zu signers, at most %d", r->glob, mw_node_len(sg), IP_MAX_ITEMS);
    for (size_t i = 0; i < mw_node_len(sg); i++) {
        r->nsigners = i + 1;
        MW_GUARD(parse_signer(mw_node_item(sg, i), &r->signers[i]));
    }
    const struct mw_node *pv = mw_node_get(n, "provenance");
    if (pv != NULL) {
        if (mw_node_kind(pv) != MW_NODE_MAP)
            IP_FAIL(pv, "provenance must be a mapping");
        MW_GUARD(only_keys(pv, "provenance", pkeys, MW_ARRAY_LEN(pkeys)));
        r->provenance = true;
        MW_GUARD(list_of(mw_node_get(pv, "builderIds"), "builderIds", &r->builders));
        MW_GUARD(list_of(mw_node_get(pv, "sourceRepos"), "sourceRepos", &r->repos));
        MW_GUARD(list_of(mw_node_get(pv, "sourceRefs"), "sourceRefs", &r->refs));
        MW_GUARD(list_of(mw_node_get(pv, "buildTypes"), "buildTypes", &r->build_types));
        if (r->builders.n == 0)
            IP_FAIL(pv, "provenance needs at least one of builderIds: a builder must be named");
    }
    return MW_SUCCESS;
}

static bool is_digest(const char *d)
{
    if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
        return false;
    for (size_t i = 7; i < 71; i++)
        if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
            return false;
    return true;
}

static mw_result parse_sidecar(const struct mw_node *n, struct ip_sidecar *s)
{
    static const char *const keys[] = {"namespace", "digests"};
    if (mw_node_kind(n) != MW_NODE_MAP)
        IP_FAIL(n, "a sidecar pin must be a mapping");
    MW_GUARD(only_keys(n, "sidecar pin", keys, MW_ARRAY_LEN(keys)));
    if (mw_node_get(n, "namespace") == NULL)
        IP_FAIL(n, "a sidecar pin needs a namespace");
    MW_GUARD(str_of(mw_node_get(n, "namespace"), "namespace", &s->ns));
    MW_GUARD(list_of(mw_node_get(n, "digests"), "digests", &s->digests));
    if (s->digests.n == 0)
        IP_FAIL(n, "sidecar pin for %s lists no digests", s->ns);
    for (size_t i = 0; i < s->digests.n; i++)
        if (!is_digest(s->digests.v[i]))
            IP_FAIL(mw_node_item(mw_node_get(n, "digests"), i),
                    "sidecar digest \"%s\" is not sha256:<64 lower-case hex>", s->digests.v[i]);
    return MW_SUCCESS;
}

static mw_result parse_policy(const struct mw_node *root, struct mw_image_policy *ip)
{
    static const char *const keys[] = {"apiVersion", "kind", "metadata", "spec"};
    static const char *const skeys[] = {"images", "sidecars"};
    if (mw_node_kind(root) != MW_NODE_MAP)
        IP_FAIL(root, "an ImagePolicy must be a mapping");
    MW_GUARD(only_keys(root, "ImagePolicy", keys, MW_ARRAY_LEN(keys)));
    const char *api = mw_node_str(mw_node_get(root, "apiVersion"));
    const char *kind = mw_node_str(mw_node_get(root, "kind"));
    if (api == NULL || strcmp(api, "meshward.io/v1alpha1") != 0)
        IP_FAIL(root, "apiVersion must be meshward.io/v1alpha1");
    if (kind == NULL || strcmp(kind, "ImagePolicy") != 0)
        IP_FAIL(root, "kind must be ImagePolicy");
    const char *name = mw_node_str(mw_node_get(mw_node_get(root, "metadata"), "name"));
    if (name == NULL)
        IP_FAIL(root, "metadata.name is required");
    MW_GUARD(mw_vcopy(ip->name, sizeof(ip->name), name, strlen(name), "metadata.name"));
    const struct mw_node *spec = mw_node_get(root, "spec");
    if (mw_node_kind(spec) != MW_NODE_MAP)
        IP_FAIL(root, "spec must be a mapping");
    MW_GUARD(only_keys(spec, "spec", skeys, MW_ARRAY_LEN(skeys)));
    const struct mw_node *imgs = mw_node_get(spec, "images");
    const struct mw_node *scs = mw_node_get(spec, "sidecars");
    if (imgs != NULL && mw_node_kind(imgs) != MW_NODE_SEQ)
        IP_FAIL(imgs, "spec.images must be a list");
    if (scs != NULL && mw_node_kind(scs) != MW_NODE_SEQ)
        IP_FAIL(scs, "spec.sidecars must be a list");
    if (mw_node_len(imgs) > IP_MAX_RULES || mw_node_len(scs) > IP_MAX_RULES)
        IP_FAIL(spec, "at most %d image rules and sidecar pins", IP_MAX_RULES);
    ip->rules = calloc(mw_node_len(imgs) + 1, sizeof(*ip->rules));
    ip->sidecars = calloc(mw_node_len(scs) + 1, sizeof(*ip->sidecars));
    MW_ENSURE(ip->rules != NULL && ip->sidecars != NULL, MW_E_NOMEM, "out of memory");
    for (size_t i = 0; i < mw_node_len(imgs); i++) {
        ip->nrules = i + 1;
        MW_GUARD(parse_rule(mw_node_item(imgs, i), &ip->rules[i]));
    }
    for (size_t i = 0; i < mw_node_len(scs); i++) {
        ip->nsidecars = i + 1;
        MW_GUARD(parse_sidecar(mw_node_item(scs, i), &ip->sidecars[i]));
    }
    return MW_SUCCESS;
}

mw_result mw_image_policy_load(mw_slice yaml, const char *name, struct mw_image_policy **out)
{
    *out = NULL;
    struct mw_docs *docs;
    MW_GUARD(mw_yaml_load(yaml, name, &mw_conf_default_limits, &docs));
    struct mw_image_policy *ip = calloc(1, sizeof(*ip));
    if (ip == NULL) {
        mw_docs_free(docs);
        MW_BAIL(MW_E_NOMEM, "out of memory");
    }
    SHA256(yaml.p, yaml.n, ip->digest);
    mw_result r = MW_SUCCESS;
    if (mw_docs_count(docs) != 1) {
        mw_error_set(MW_E_INPUT, "%s: want exactly one ImagePolicy document, got %zu", name,
                     mw_docs_count(docs));
        r = MW_FAILURE;
    } else {
        r = parse_policy(mw_docs_root(docs, 0), ip);
    }
    mw_docs_free(docs);
    if (mw_failed(r)) {
        mw_image_policy_free(ip);
        return r;
    }
    *out = ip;
    return MW_SUCCESS;
}

mw_result mw_image_policy_load_file(const char *path, struct mw_image_policy **out)
{
    MW_DEFER_BUF struct mw_dynbuf b;
    mw_dynbuf_init(&b, 4u << 20);
    *out = NULL;
    MW_GUARD(mw_file_read(path, 4u << 20, &b));
    return mw_image_policy_load(mw_dynbuf_slice(&b), path, out);
}

static void free_list(struct ip_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
}

void mw_image_policy_free(struct mw_image_policy *ip)
{
    if (ip == NULL)
        return;
    for (size_t i = 0; i < ip->nrules; i++) {
        struct ip_rule *r = &ip->rules[i];
        free(r->glob);
        for (size_t j = 0; j < r->nsigners; j++) {
            struct ip_signer *s = &r->signers[j];
            free(s->identity);
            free(s->identity_regex);
            free(s->issuer);
            free(s->issuer_regex);
            free(s->key_pem);
            free(s->source_repo);
            free(s->source_ref);
        }
        free_list(&r->builders);
        free_list(&r->repos);
        free_list(&r->refs);
        free_list(&r->build_types);
    }
    for (size_t i = 0; i < ip->nsidecars; i++) {
        free(ip->sidecars[i].ns);
        free_list(&ip->sidecars[i].digests);
    }
    free(ip->rules);
    free(ip->sidecars);
    free(ip);
}

void mw_image_policy_digest(const struct mw_image_policy *ip, uint8_t out[32])
{
    memcpy(out, ip->digest, 32);
}

static mw_result explain_list(struct mw_dynbuf *o, const char *what, const struct ip_list *l)
{
    if (l->n == 0)
        return mw_dynbuf_addf(o, "    %s: any\n", what);
    MW_GUARD(mw_dynbuf_addf(o, "    %s: one of", what));
    for (size_t i = 0; i < l->n; i++)
        MW_GUARD(mw_dynbuf_addf(o, "%s %s", i ? "," : "", l->v[i]));
    return mw_dynbuf_add_cstr(o, "\n");
}

mw_result mw_image_policy_explain(const struct mw_image_policy *ip, struct mw_dynbuf *o)
{
    MW_GUARD(mw_dynbuf_addf(o, "ImagePolicy %s: %zu image rules, %zu sidecar pins\n", ip->name,
                            ip->nrules, ip->nsidecars));
    for (size_t i = 0; i < ip->nrules; i++) {
        const struct ip_rule *r = &ip->rules[i];
        MW_GUARD(mw_dynbuf_addf(o, "rule %zu: images matching %s need a signature by one of:\n",
                                i + 1, r->glob));
        for (size_t j = 0; j < r->nsigners; j++) {
            const struct ip_signer *s = &r->signers[j];
            if (s->key_pem != NULL)
                MW_GUARD(mw_dynbuf_add_cstr(o, "  - the key given in the policy\n"));
            else
                MW_GUARD(mw_dynbuf_addf(
                    o, "  - identity %s%s issued by %s%s\n",
                    s->identity ? s->identity : s->identity_regex, s->identity ? "" : " (regex)",
                    s->issuer ? s->issuer : s->issuer_regex, s->issuer ? "" : " (regex)"));
        }
        if (r->provenance) {
            MW_GUARD(mw_dynbuf_add_cstr(o, "  and SLSA provenance (in-toto, signed by that signer) "
                                           "with\n"));
            MW_GUARD(explain_list(o, "builder id", &r->builders));
            MW_GUARD(explain_list(o, "source repository", &r->repos));
            MW_GUARD(explain_list(o, "source ref", &r->refs));
            MW_GUARD(explain_list(o, "build type", &r->build_types));
        }
    }
    MW_GUARD(mw_dynbuf_add_cstr(o, "images no rule matches are denied\n"));
    for (size_t i = 0; i < ip->nsidecars; i++)
        MW_GUARD(mw_dynbuf_addf(o, "namespace %s: sidecar images pinned to %zu digests\n",
                                ip->sidecars[i].ns, ip->sidecars[i].digests.n));
    return MW_SUCCESS;
}

bool mw_image_policy_sidecar_pinned(const struct mw_image_policy *ip, const char *ns,
                                    const char *digest)
{
    for (size_t i = 0; i < ip->nsidecars; i++) {
        if (strcmp(ip->sidecars[i].ns, ns) != 0)
            continue;
        for (size_t j = 0; j < ip->sidecars[i].digests.n; j++)
            if (strcmp(ip->sidecars[i].digests.v[j], digest) == 0)
                return true;
    }
    return false;
}

static bool in_list(const struct ip_list *l, const char *v)
{
    if (l->n == 0)
        return true;
    for (size_t i = 0; v != NULL && i < l->n; i++)
        if (strcmp(l->v[i], v) == 0)
            return true;
    return false;
}

static void set_reason(struct mw_image_verdict *v, bool allowed, const char *fmt, ...)
    MW_PRINTF(3, 4);
static void set_reason(struct mw_image_verdict *v, bool allowed, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
    va_end(ap);
    v->allowed = allowed;
}

static mw_result check_provenance(const struct ip_rule *r, const struct mw_sigstore_bundle *b,
                                  struct mw_image_verdict *v, bool *ok)
{
    *ok = false;
    const char *pt;
    mw_slice payload = mw_sigstore_bundle_payload(b, &pt);
    if (payload.n == 0) {
        set_reason(v, false, "rule %s requires SLSA provenance; the bundle is a plain signature",
                   r->glob);
        return MW_SUCCESS;
    }
    struct mw_intoto *st;
    MW_GUARD(mw_intoto_parse(payload, &st));
    struct mw_slsa s;
    mw_intoto_slsa(st, &s);
    if (s.version == 0)
        set_reason(v, false, "rule %s requires SLSA provenance; the attestation is %s", r->glob,
                   mw_intoto_predicate_type(st));
    else if (!in_list(&r->builders, s.builder_id))
        set_reason(v, false, "builder %s is not an allowed builder of rule %s", s.builder_id,
                   r->glob);
    else if (!in_list(&r->build_types, s.build_type))
        set_reason(v, false, "build type %s is not allowed by rule %s", s.build_type, r->glob);
    else if (!in_list(&r->repos, s.source_repo))
        set_reason(v, false, "source repository %s is not allowed by rule %s",
                   s.source_repo ? s.source_repo : "(none)", r->glob);
    else if (!in_list(&r->refs, s.source_ref))
        set_reason(v, false, "source ref %s is not allowed by rule %s",
                   s.source_ref ? s.source_ref : "(none)", r->glob);
    else
        *ok = true;
    mw_intoto_free(st);
    return MW_SUCCESS;
}

/*
 * The source repository and ref for admission: SLSA provenance's, each
 * falling back to the Fulcio certificate's (.12, .14). Both were verified:
 * the provenance is signed by the signer, the extensions by Fulcio.
 */
static mw_result verdict_source(struct mw_image_verdict *v, const struct mw_sigstore_bundle *b,
                                const struct mw_verify_result *res)
{
    const char *repo = res->source_repo, *ref = res->source_ref;
    struct mw_intoto *st = NULL;
    if (res->dsse) {
        const char *pt;
        MW_GUARD(mw_intoto_parse(mw_sigstore_bundle_payload(b, &pt), &st));
        struct mw_slsa slsa;
        mw_intoto_slsa(st, &slsa);
        if (slsa.version != 0 && slsa.source_repo != NULL && slsa.source_repo[0] != '\0')
            repo = slsa.source_repo;
        if (slsa.version != 0 && slsa.source_ref != NULL && slsa.source_ref[0] != '\0')
            ref = slsa.source_ref;
    }
    mw_result r =
        mw_vcopy(v->source_repo, sizeof(v->source_repo), repo, strlen(repo), "source repository");
    if (mw_ok(r))
        r = mw_vcopy(v->source_ref, sizeof(v->source_ref), ref, strlen(ref), "source ref");
    mw_intoto_free(st);
    return r;
}

mw_result mw_image_policy_evaluate(const struct mw_image_policy *ip, const struct mw_trust_root *tr,
                                   const char *image, const struct mw_sigstore_bundle *b,
                                   const struct mw_clock *now, struct mw_image_verdict *v)
{
    memset(v, 0, sizeof(*v));
    const char *at = strrchr(image, '@');
    MW_ENSURE(at != NULL && at != image && is_digest(at + 1), MW_E_INPUT,
              "image \"%.200s\" is not REPOSITORY@sha256:<64 hex>", image);
    MW_GUARD(mw_vcopy(v->digest, sizeof(v->digest), at + 1, strlen(at + 1), "image digest"));
    char repo[1024];
    MW_GUARD(mw_vcopy(repo, sizeof(repo), image, (size_t)(at - image), "image repository"));
    struct mw_artifact art;
    MW_GUARD(mw_artifact_from_digest(v->digest, &art));

    const struct ip_rule *r = NULL;
    for (size_t i = 0; i < ip->nrules && r == NULL; i++)
        if (fnmatch(ip->rules[i].glob, repo, 0) == 0)
            r = &ip->rules[i];
    if (r == NULL) {
        set_reason(v, false, "no rule of ImagePolicy %s matches repository %s", ip->name, repo);
        return MW_SUCCESS;
    }
    MW_GUARD(mw_vcopy(v->rule, sizeof(v->rule), r->glob, strlen(r->glob), "glob"));
    char last[512] = "";
    for (size_t i = 0; i < r->nsigners; i++) {
        const struct ip_signer *s = &r->signers[i];
        struct mw_verify_policy p = {.identity = s->identity,
                                     .identity_regex = s->identity_regex,
                                     .issuer = s->issuer,
                                     .issuer_regex = s->issuer_regex,
                                     .source_repo = s->source_repo,
                                     .source_ref = s->source_ref,
                                     .key_pem = mw_slice_cstr(s->key_pem ? s->key_pem : "")};
        struct mw_verify_result res;
        if (mw_failed(mw_verify_bundle(tr, b, &art, &p, now, &res))) {
            snprintf(last, sizeof(last), "%s", mw_error_msg());
            continue;
        }
        snprintf(v->identity, sizeof(v->identity), "%s", res.keyed ? "(key)" : res.identity);
        if (res.keyed)
            MW_GUARD(mw_verify_key_id(mw_slice_cstr(s->key_pem), v->key_id));
        else
            snprintf(v->issuer, sizeof(v->issuer), "%s", res.issuer);
        MW_GUARD(verdict_source(v, b, &res));
        if (res.dsse) {
            MW_DEFER_BUF struct mw_dynbuf h;
            mw_dynbuf_init(&h, 128);
            MW_GUARD(mw_hex_encode(mw_slice_make(res.payload_sha256, 32), &h));
            snprintf(v->attestation, sizeof(v->attestation), "sha256:%s", mw_dynbuf_cstr(&h));
            snprintf(v->builder_id, sizeof(v->builder_id), "%s", res.builder_id);
        }
        if (r->provenance) {
            bool ok;
            MW_GUARD(check_provenance(r, b, v, &ok));
            if (!ok)
                return MW_SUCCESS;
        }
        set_reason(v, true, "rule %s: signed by %s%s", r->glob, v->identity,
                   r->provenance ? " with allowed SLSA provenance" : "");
        return MW_SUCCESS;
    }
    set_reason(v, false, "rule %s: no allowed signer verified (last: %s)", r->glob, last);
    return MW_SUCCESS;
}
