/*
 * DSSE (secure-systems-lab/dsse protocol.md), in-toto Statements
 * (in-toto/attestation spec v1), SLSA provenance v1 and v0.2
 * (slsa-framework/slsa spec/build-provenance.md) and cosign simple-signing
 * payloads (sigstore/cosign specs/SIGNATURE_SPEC.md).
 */
#include <string.h>

#include <meshward/conf.h>

#include "verify/verify_internal.h"

#define MW_PAYLOAD_MAX (4u << 20)

static const struct mw_conf_limits payload_limits = {.max_bytes = MW_PAYLOAD_MAX, .max_depth = 32};

mw_result mw_dsse_pae(mw_slice payload_type, mw_slice payload, struct mw_dynbuf *out)
{
    MW_GUARD(mw_dynbuf_addf(out, "DSSEv1 %zu ", payload_type.n));
    MW_GUARD(mw_dynbuf_add_slice(out, payload_type));
    MW_GUARD(mw_dynbuf_addf(out, " %zu ", payload.n));
    return mw_dynbuf_add_slice(out, payload);
}

mw_result mw_dsse_parse(mw_slice json, struct mw_dynbuf *payload, struct mw_dynbuf *payload_type,
                        struct mw_dynbuf *sig, size_t *nsigs)
{
    MW_DEFER_JSON json_t *env = NULL;
    MW_GUARD(mw_json_load(json, "DSSE envelope", &payload_limits, &env));
    MW_ENSURE(json_is_object(env), MW_E_INPUT, "DSSE envelope is not a JSON object");
    const char *pt;
    MW_GUARD(mw_vj_b64(env, "payload", "DSSE envelope", true, payload, NULL));
    MW_GUARD(mw_vj_str(env, "payloadType", "DSSE envelope", true, &pt));
    mw_dynbuf_reset(payload_type);
    MW_GUARD(mw_dynbuf_add_cstr(payload_type, pt));
    json_t *sigs = json_object_get(env, "signatures");
    MW_ENSURE(json_is_array(sigs), MW_E_INPUT, "DSSE envelope: \"signatures\" is not an array");
    *nsigs = json_array_size(sigs);
    MW_ENSURE(*nsigs > 0, MW_E_INPUT, "DSSE envelope has no signatures");
    for (size_t i = 0; i < *nsigs; i++) {
        json_t *s = json_array_get(sigs, i);
        MW_ENSURE(json_is_object(s), MW_E_INPUT, "DSSE signature %zu is not an object", i);
        const char *keyid;
        MW_GUARD(mw_vj_str(s, "keyid", "DSSE signature", false, &keyid));
        MW_DEFER_BUF struct mw_dynbuf tmp;
        mw_dynbuf_init(&tmp, 64 << 10);
        MW_GUARD(mw_vj_b64(s, "sig", "DSSE signature", true, i == 0 ? sig : &tmp, NULL));
    }
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- in-toto */

struct mw_intoto {
    json_t *root;
    const char *predicate_type;
    size_t nsubjects;
    uint8_t (*sha256)[32];
    size_t nsha256;
    struct mw_slsa slsa;
};

static const char *opt_str(json_t *j)
{
    return json_is_string(j) ? json_string_value(j) : NULL;
}

static json_t *get2(json_t *j, const char *a, const char *b)
{
    return json_object_get(json_object_get(j, a), b);
}

static mw_result read_slsa(struct mw_intoto *st)
{
    json_t *pred = json_object_get(st->root, "predicate");
    struct mw_slsa *s = &st->slsa;
    if (strcmp(st->predicate_type, "https://slsa.dev/provenance/v1") == 0) {
        MW_ENSURE(json_is_object(pred), MW_E_INPUT, "SLSA v1 provenance without a predicate");
        json_t *bd = json_object_get(pred, "buildDefinition");
        s->version = 1;
        s->build_type = opt_str(json_object_get(bd, "buildType"));
        s->builder_id = opt_str(get2(json_object_get(pred, "runDetails"), "builder", "id"));
        /* SLSA v1 L1 requires both (spec/build-provenance.md). */
        MW_ENSURE(s->build_type != NULL, MW_E_INPUT,
                  "SLSA v1 provenance: buildDefinition.buildType is missing");
        MW_ENSURE(s->builder_id != NULL, MW_E_INPUT,
                  "SLSA v1 provenance: runDetails.builder.id is missing");
        json_t *ext = json_object_get(bd, "externalParameters");
        MW_ENSURE(json_is_object(ext), MW_E_INPUT,
                  "SLSA v1 provenance: buildDefinition.externalParameters is missing");
        json_t *wf = json_object_get(ext, "workflow");
        s->source_repo = opt_str(json_object_get(wf, "repository"));
        s->source_ref = opt_str(json_object_get(wf, "ref"));
    } else if (strcmp(st->predicate_type, "https://slsa.dev/provenance/v0.2") == 0) {
        MW_ENSURE(json_is_object(pred), MW_E_INPUT, "SLSA v0.2 provenance without a predicate");
        s->version = 2;
        s->builder_id = opt_str(get2(pred, "builder", "id"));
        s->build_type = opt_str(json_object_get(pred, "buildType"));
        MW_ENSURE(s->builder_id != NULL, MW_E_INPUT, "SLSA v0.2 provenance: builder.id is missing");
        MW_ENSURE(s->build_type != NULL, MW_E_INPUT, "SLSA v0.2 provenance: buildType is missing");
        /* v0.2 invocation.configSource {uri: "git+https://...@refs/heads/main", entryPoint} */
        json_t *cs = get2(pred, "invocation", "configSource");
        s->source_repo = opt_str(json_object_get(cs, "uri"));
        s->source_ref = NULL;
    }
    return MW_SUCCESS;
}

static mw_result parse_statement(struct mw_intoto *st)
{
    json_t *root = st->root;
    MW_ENSURE(json_is_object(root), MW_E_INPUT, "in-toto statement is not a JSON object");
    const char *type;
    MW_GUARD(mw_vj_str(root, "_type", "in-toto statement", true, &type));
    MW_ENSURE(strcmp(type, "https://in-toto.io/Statement/v1") == 0 ||
                  strcmp(type, "https://in-toto.io/Statement/v0.1") == 0,
              MW_E_UNSUPPORTED, "in-toto statement _type \"%.100s\" is not supported", type);
    MW_GUARD(mw_vj_str(root, "predicateType", "in-toto statement", true, &st->predicate_type));
    json_t *subs = json_object_get(root, "subject");
    MW_ENSURE(json_is_array(subs) && json_array_size(subs) > 0, MW_E_INPUT,
              "in-toto statement has no subjects");
    st->nsubjects = json_array_size(subs);
    MW_ENSURE(st->nsubjects <= MW_INTOTO_MAX_SUBJECTS, MW_E_LIMIT,
              "in-toto statement has %zu subjects, at most %d", st->nsubjects,
              MW_INTOTO_MAX_SUBJECTS);
    st->sha256 = calloc(st->nsubjects, 32);
    MW_ENSURE(st->sha256 != NULL, MW_E_NOMEM, "out of memory");
    MW_DEFER_BUF struct mw_dynbuf h;
    mw_dynbuf_init(&h, 64);
    for (size_t i = 0; i < st->nsubjects; i++) {
        json_t *s = json_array_get(subs, i);
        json_t *d = json_object_get(s, "digest");
        MW_ENSURE(json_is_object(s) && json_is_object(d), MW_E_INPUT,
                  "in-toto subject %zu has no digest object", i);
        json_t *v = json_object_get(d, "sha256");
        if (v == NULL)
            continue;
        MW_ENSURE(json_is_string(v), MW_E_INPUT, "in-toto subject %zu: sha256 is not a string", i);
        mw_dynbuf_reset(&h);
        if (mw_failed(
                mw_hex_decode(mw_slice_make(json_string_value(v), json_string_length(v)), &h)) ||
            h.n != 32)
            MW_BAIL(MW_E_INPUT, "in-toto subject %zu: sha256 is not 64 hex digits", i);
        memcpy(st->sha256[st->nsha256++], h.p, 32);
    }
    return read_slsa(st);
}

mw_result mw_intoto_parse(mw_slice payload, struct mw_intoto **out)
{
    *out = NULL;
    struct mw_intoto *st = calloc(1, sizeof(*st));
    MW_ENSURE(st != NULL, MW_E_NOMEM, "out of memory");
    if (mw_failed(mw_json_load(payload, "in-toto statement", &payload_limits, &st->root)) ||
        mw_failed(parse_statement(st))) {
        mw_intoto_free(st);
        return MW_FAILURE;
    }
    *out = st;
    return MW_SUCCESS;
}

void mw_intoto_free(struct mw_intoto *st)
{
    if (st == NULL)
        return;
    json_decref(st->root);
    free(st->sha256);
    free(st);
}

const char *mw_intoto_predicate_type(const struct mw_intoto *st)
{
    return st->predicate_type;
}

size_t mw_intoto_subject_count(const struct mw_intoto *st)
{
    return st->nsubjects;
}

bool mw_intoto_has_sha256(const struct mw_intoto *st, const uint8_t digest[32])
{
    for (size_t i = 0; i < st->nsha256; i++)
        if (memcmp(st->sha256[i], digest, 32) == 0)
            return true;
    return false;
}

void mw_intoto_slsa(const struct mw_intoto *st, struct mw_slsa *out)
{
    *out = st->slsa;
}

/* ---------------------------------------------------------------- simple signing */

mw_result mw_simplesign_parse(mw_slice payload, char *digest, size_t digest_len, char *identity,
                              size_t identity_len)
{
    MW_DEFER_JSON json_t *root = NULL;
    MW_GUARD(mw_json_load(payload, "simple-signing payload", &payload_limits, &root));
    json_t *crit = json_object_get(root, "critical");
    MW_ENSURE(json_is_object(crit), MW_E_INPUT, "simple-signing payload: missing \"critical\"");
    const char *type, *d, *ref = NULL;
    MW_GUARD(mw_vj_str(crit, "type", "critical", true, &type));
    MW_ENSURE(strcmp(type, "cosign container image signature") == 0, MW_E_UNSUPPORTED,
              "simple-signing payload: critical.type \"%.100s\" is not a cosign signature", type);
    json_t *img = json_object_get(crit, "image");
    MW_ENSURE(json_is_object(img), MW_E_INPUT, "simple-signing payload: missing critical.image");
    MW_GUARD(mw_vj_str(img, "docker-manifest-digest", "critical.image", true, &d));
    MW_ENSURE(strncmp(d, "sha256:", 7) == 0 && strlen(d) == 71, MW_E_INPUT,
              "simple-signing payload: docker-manifest-digest \"%.100s\" is not sha256:<64 hex>",
              d);
    for (size_t i = 7; i < 71; i++)
        MW_ENSURE((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f'), MW_E_INPUT,
                  "simple-signing payload: docker-manifest-digest is not lower-case hex");
    MW_GUARD(mw_vcopy(digest, digest_len, d, strlen(d), "docker-manifest-digest"));
    json_t *ident = json_object_get(crit, "identity");
    if (json_is_object(ident))
        MW_GUARD(mw_vj_str(ident, "docker-reference", "critical.identity", false, &ref));
    if (identity != NULL && identity_len > 0) {
        identity[0] = '\0';
        if (ref != NULL)
            MW_GUARD(mw_vcopy(identity, identity_len, ref, strlen(ref), "docker-reference"));
    }
    return MW_SUCCESS;
}
