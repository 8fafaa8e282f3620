/* The ImagePolicy: loading, validation, explanation, evaluation; the verdict cache. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include <meshward/verify.h>

#define BEACON                                                                                \
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/" \
    "workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
#define GHA "https://token.actions.githubusercontent.com"
#define BUILDER \
    "https://github.com/loosebazooka/aa-test/.github/workflows/provenance.yaml@refs/heads/main"

static const char policy_text[] =
    "apiVersion: meshward.io/v1alpha1\n"
    "kind: ImagePolicy\n"
    "metadata: {name: prod}\n"
    "spec:\n"
    "  images:\n"
    "  - glob: ghcr.io/acme/*\n"
    "    signers:\n"
    "    - identity: " BEACON "\n"
    "      issuer: " GHA "\n"
    "    provenance:\n"
    "      builderIds: [\"" BUILDER "\"]\n"
    "      sourceRepos: [https://github.com/loosebazooka/aa-test]\n"
    "      sourceRefs: [refs/heads/main]\n"
    "  - glob: ghcr.io/strict/*\n"
    "    signers:\n"
    "    - identityRegex: https://github.com/sigstore-conformance/.*\n"
    "      issuer: " GHA "\n"
    "    provenance:\n"
    "      builderIds: [https://github.com/slsa-framework/slsa-github-generator]\n"
    "  - glob: ghcr.io/other/*\n"
    "    signers:\n"
    "    - identity: https://github.com/other/x\n"
    "      issuer: " GHA "\n"
    "  sidecars:\n"
    "  - namespace: prod\n"
    "    digests: [\"sha256:0000000000000000000000000000000000000000000000000000000000000001\"]\n";

struct fixture {
    struct mw_image_policy *ip;
    struct mw_trust_root *tr;
    struct mw_sigstore_bundle *b;
    char digest[80];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    mw_assert_ok(mw_image_policy_load(mw_slice_cstr(policy_text), "policy.yaml", &f->ip));
    mw_assert_ok(
        mw_trust_root_load_file(mw_test_data("sigstore/trusted_root.production.json"), &f->tr));
    struct mw_dynbuf t;
    mw_dynbuf_init(&t, 1u << 20);
    mw_test_read("sigstore-conformance/happy-path-intoto-in-dsse-v3/bundle.sigstore.json", &t);
    mw_assert_ok(mw_sigstore_bundle_parse(mw_dynbuf_slice(&t), "b", &f->b));
    mw_dynbuf_free(&t);
    mw_test_read("sigstore-conformance/a.txt", &t);
    struct mw_artifact a;
    mw_artifact_from_bytes(mw_dynbuf_slice(&t), &a);
    struct mw_dynbuf h;
    mw_dynbuf_init(&h, 128);
    mw_assert_ok(mw_hex_encode(mw_slice_make(a.sha256, 32), &h));
    snprintf(f->digest, sizeof(f->digest), "sha256:%s", mw_dynbuf_cstr(&h));
    mw_dynbuf_free(&h);
    mw_dynbuf_free(&t);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mw_image_policy_free(f->ip);
    mw_trust_root_free(f->tr);
    mw_sigstore_bundle_free(f->b);
    free(f);
    return 0;
}

static void test_evaluate(void **state)
{
    struct fixture *f = *state;
    char image[256];
    struct mw_image_verdict v;

    snprintf(image, sizeof(image), "ghcr.io/acme/app@%s", f->digest);
    mw_assert_ok(mw_image_policy_evaluate(f->ip, f->tr, image, f->b, NULL, &v));
    assert_true(v.allowed);
    assert_string_equal(v.rule, "ghcr.io/acme/*");
    assert_string_equal(v.builder_id, BUILDER);
    assert_string_equal(v.identity, BEACON);
    assert_memory_equal(v.attestation, "sha256:", 7);
    assert_string_equal(v.digest, f->digest);

    /* Signed by an allowed identity, but the builder is not allowed. */
    snprintf(image, sizeof(image), "ghcr.io/strict/app@%s", f->digest);
    mw_assert_ok(mw_image_policy_evaluate(f->ip, f->tr, image, f->b, NULL, &v));
    assert_false(v.allowed);
    assert_non_null(strstr(v.reason, "not an allowed builder"));

    /* The wrong signer. */
    snprintf(image, sizeof(image), "ghcr.io/other/app@%s", f->digest);
    mw_assert_ok(mw_image_policy_evaluate(f->ip, f->tr, image, f->b, NULL, &v));
    assert_false(v.allowed);
    assert_non_null(strstr(v.reason, "no allowed signer"));

    /* No rule matches. */
    snprintf(image, sizeof(image), "docker.io/library/nginx@%s", f->digest);
    mw_assert_ok(mw_image_policy_evaluate(f->ip, f->tr, image, f->b, NULL, &v));
    assert_false(v.allowed);
    assert_non_null(strstr(v.reason, "no rule"));

    /* A digest the attestation is not about. */
    mw_assert_ok(mw_image_policy_evaluate(
        f->ip, f->tr,
        "ghcr.io/acme/app@sha256:0000000000000000000000000000000000000000000000000000000000000001",
        f->b, NULL, &v));
    assert_false(v.allowed);

    /* Malformed image references. */
    const char *bad[] = {"ghcr.io/acme/app:latest", "ghcr.io/acme/app@sha256:abc",
                         "@sha256:"
                         "0000000000000000000000000000000000000000000000000000000000000001"};
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++)
        mw_assert_fails(mw_image_policy_evaluate(f->ip, f->tr, bad[i], f->b, NULL, &v), MW_E_INPUT);
}

static void test_explain_and_pins(void **state)
{
    struct fixture *f = *state;
    struct mw_dynbuf t;
    mw_dynbuf_init(&t, 1 << 16);
    mw_assert_ok(mw_image_policy_explain(f->ip, &t));
    assert_non_null(strstr(mw_dynbuf_cstr(&t), "ImagePolicy prod: 3 image rules, 1 sidecar pins"));
    assert_non_null(strstr(mw_dynbuf_cstr(&t), "builder id: one of " BUILDER));
    assert_non_null(strstr(mw_dynbuf_cstr(&t), "(regex)"));
    mw_dynbuf_free(&t);
    assert_true(mw_image_policy_sidecar_pinned(
        f->ip, "prod", "sha256:0000000000000000000000000000000000000000000000000000000000000001"));
    assert_false(mw_image_policy_sidecar_pinned(
        f->ip, "dev", "sha256:0000000000000000000000000000000000000000000000000000000000000001"));
    assert_false(mw_image_policy_sidecar_pinned(
        f->ip, "prod", "sha256:0000000000000000000000000000000000000000000000000000000000000002"));
}

static void test_validation(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *want; /* in the message */
    } cases[] = {
        {"apiVersion: v1\nkind: ImagePolicy\nmetadata: {name: a}\nspec: {}\n", "apiVersion"},
        {"apiVersion: meshward.io/v1alpha1\nkind: Pod\nmetadata: {name: a}\nspec: {}\n", "kind"},
        {"apiVersion: meshward.io/v1alpha1\nkind: ImagePolicy\nspec: {}\n", "metadata.name"},
        {"apiVersion: meshward.io/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a}\nspec: {x: 1}\n",
         "unknown field"},
        {"apiVersion: meshward.io/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a}\nspec:\n  "
         "images:\n"
         "  - glob: a/*\n",
         "signers"},
        {"apiVersion: meshward.io/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a}\nspec:\n  "
         "images:\n"
         "  - glob: a/*\n    signers: [{identity: x}]\n",
         "issuer"},
        {"apiVersion: meshward.io/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a}\nspec:\n  "
         "images:\n"
         "  - glob: a/*\n    signers: [{identityRegex: \"(\", issuer: i}]\n",
         "does not compile"},
        {"apiVersion: meshward.io/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a}\nspec:\n  "
         "images:\n"
         "  - glob: a/*\n    signers: [{key: \"x\", identity: y, issuer: z}]\n",
         "not both"},
        {"apiVersion: meshward.io/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a}\nspec:\n  "
         "images:\n"
         "  - glob: a/*\n    signers: [{key: notpem}]\n",
         "PEM"},
        {"apiVersion: meshward.io/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a}\nspec:\n  "
         "images:\n"
         "  - glob: a/*\n    signers: [{identity: x, issuer: y}]\n    provenance: {sourceRefs: "
         "[a]}\n",
         "builderIds"},
        {"apiVersion: meshward.io/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a}\nspec:\n  "
         "sidecars:\n"
         "  - namespace: p\n    digests: [\"sha256:abc\"]\n",
         "sha256:"},
        {"apiVersion: meshward.io/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a}\nspec:\n  "
         "sidecars:\n"
         "  - digests: []\n",
         "namespace"},
        {"apiVersion: meshward.io/v1alpha1\nkind: ImagePolicy\nmetadata: {name: a}\nspec: {}\n---\n"
         "apiVersion: meshward.io/v1alpha1\nkind: ImagePolicy\nmetadata: {name: b}\nspec: {}\n",
         "exactly one"},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct mw_image_policy *ip = NULL;
        mw_result r = mw_image_policy_load(mw_slice_cstr(cases[i].yaml), "p.yaml", &ip);
        if (mw_ok(r))
            fail_msg("case %zu loaded, want an error about %s", i, cases[i].want);
        assert_null(ip);
        if (strstr(mw_error_msg(), cases[i].want) == NULL)
            fail_msg("case %zu: \"%s\" does not mention %s", i, mw_error_msg(), cases[i].want);
    }
}

static void test_cache(void **state)
{
    (void)state;
    struct mw_verdict_cache *c;
    mw_assert_ok(mw_verdict_cache_new(4, 60, &c));
    uint8_t pol[32] = {1}, root[32] = {2}, pol2[32] = {3};
    struct mw_image_verdict v = {.allowed = true}, out;
    for (int i = 0; i < 6; i++) {
        snprintf(v.digest, sizeof(v.digest), "sha256:%064d", i);
        snprintf(v.identity, sizeof(v.identity), "%s", i % 2 ? "alice" : "bob");
        mw_assert_ok(mw_verdict_cache_put(c, pol, root, &v, 1000 + i));
    }
    /* Capacity 4: the two oldest were evicted. */
    assert_false(mw_verdict_cache_get(
        c, "sha256:0000000000000000000000000000000000000000000000000000000000000000", pol, root,
        1010, &out));
    snprintf(v.digest, sizeof(v.digest), "sha256:%064d", 5);
    assert_true(mw_verdict_cache_get(c, v.digest, pol, root, 1010, &out));
    assert_true(out.allowed);
    /* A different policy hash is a different key; expiry is exclusive. */
    assert_false(mw_verdict_cache_get(c, v.digest, pol2, root, 1010, &out));
    assert_false(mw_verdict_cache_get(c, v.digest, pol, root, 1065, &out));
    /* Revocation by identity lists the affected digests. */
    struct mw_dynbuf aff;
    mw_dynbuf_init(&aff, 4096);
    size_t n;
    mw_assert_ok(mw_verdict_cache_revoke_identity(c, "alice", &aff, &n));
    assert_int_equal(n, 1); /* digest 3; 5 expired and was dropped by the lookup above */
    assert_non_null(strstr(mw_dynbuf_cstr(&aff), "sha256:"));
    snprintf(v.digest, sizeof(v.digest), "sha256:%064d", 4);
    assert_int_equal(mw_verdict_cache_revoke_digest(c, v.digest), 1);
    assert_false(mw_verdict_cache_get(c, v.digest, pol, root, 1010, &out));
    mw_dynbuf_free(&aff);
    mw_verdict_cache_free(c);
    mw_assert_fails(mw_verdict_cache_new(0, 60, &c), MW_E_INPUT);
    mw_assert_fails(mw_verdict_cache_new(4, 0, &c), MW_E_INPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_evaluate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_explain_and_pins, setup, teardown),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
