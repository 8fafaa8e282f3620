/*
 * Admission and revocation against real bundles: the production SLSA v1
 * provenance bundle (keyless) and the managed-key bundle (keyed) of
 * sigstore-conformance, through mw_image_policy_evaluate, the CA store and
 * the verdict cache.
 */
#include "testutil.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include <meshward/ca_auth.h>
#include <meshward/verify.h>

#define BEACON                                                                                \
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/" \
    "workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
#define GHA "https://token.actions.githubusercontent.com"
#define BUILDER \
    "https://github.com/loosebazooka/aa-test/.github/workflows/provenance.yaml@refs/heads/main"
/* openssl pkey -pubin -in managed-key-happy-path/key.pub -outform DER | sha256sum */
#define KEY_ID "4cb32c4837c6dda8cfb1681efb3fef5f94ffce5b979e6bdb9139302c857af139"
#define OTHER  "sha256:0000000000000000000000000000000000000000000000000000000000000077"

struct fixture {
    struct mw_trust_root *tr;
    struct mw_sigstore_bundle *intoto, *keyed;
    struct mw_image_policy *ip;
    char digest[80]; /* a.txt */
    char key_pem[1024];
    char store_path[512];
    struct mw_ca_store *store;
};

static void hex_digest(const uint8_t d[32], char *out, size_t cap)
{
    struct mw_dynbuf h;
    mw_dynbuf_init(&h, 128);
    mw_assert_ok(mw_hex_encode(mw_slice_make(d, 32), &h));
    snprintf(out, cap, "sha256:%s", mw_dynbuf_cstr(&h));
    mw_dynbuf_free(&h);
}

static struct mw_sigstore_bundle *bundle(const char *rel)
{
    struct mw_dynbuf t;
    mw_dynbuf_init(&t, 1u << 22);
    mw_test_read(rel, &t);
    struct mw_sigstore_bundle *b = NULL;
    mw_assert_ok(mw_sigstore_bundle_parse(mw_dynbuf_slice(&t), rel, &b));
    mw_dynbuf_free(&t);
    return b;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    mw_assert_ok(
        mw_trust_root_load_file(mw_test_data("sigstore/trusted_root.production.json"), &f->tr));
    f->intoto = bundle("sigstore-conformance/happy-path-intoto-in-dsse-v3/bundle.sigstore.json");
    f->keyed = bundle("sigstore-conformance/managed-key-happy-path/bundle.sigstore.json");
    struct mw_dynbuf t;
    mw_dynbuf_init(&t, 1u << 20);
    mw_test_read("sigstore-conformance/a.txt", &t);
    struct mw_artifact a;
    mw_artifact_from_bytes(mw_dynbuf_slice(&t), &a);
    hex_digest(a.sha256, f->digest, sizeof(f->digest));
    mw_dynbuf_free(&t);
    mw_test_read("sigstore-conformance/managed-key-happy-path/key.pub", &t);
    assert_true(t.n < sizeof(f->key_pem));
    memcpy(f->key_pem, t.p, t.n);

    /* The key as a YAML block scalar: each PEM line indented under "key: |". */
    struct mw_dynbuf y;
    mw_dynbuf_init(&y, 1u << 16);
    mw_assert_ok(mw_dynbuf_add_cstr(&y, "apiVersion: meshward.io/v1alpha1\n"
                                        "kind: ImagePolicy\n"
                                        "metadata: {name: admit}\n"
                                        "spec:\n"
                                        "  images:\n"
                                        "  - glob: ghcr.io/acme/*\n"
                                        "    signers:\n"
                                        "    - identity: " BEACON "\n"
                                        "      issuer: " GHA "\n"
                                        "    provenance:\n"
                                        "      builderIds: [\"" BUILDER "\"]\n"
                                        "  - glob: ghcr.io/strict/*\n"
                                        "    signers:\n"
                                        "    - identity: " BEACON "\n"
                                        "      issuer: " GHA "\n"
                                        "    provenance:\n"
                                        "      builderIds: [https://builder.example/other]\n"
                                        "  - glob: ghcr.io/keyed/*\n"
                                        "    signers:\n"
                                        "    - key: |\n"));
    for (size_t i = 0; i < t.n;) {
        const uint8_t *nl = memchr(t.p + i, '\n', t.n - i);
        size_t ln = nl != NULL ? (size_t)(nl - (t.p + i)) : t.n - i;
        mw_assert_ok(mw_dynbuf_add_cstr(&y, "        "));
        mw_assert_ok(mw_dynbuf_add(&y, t.p + i, ln));
        mw_assert_ok(mw_dynbuf_add_cstr(&y, "\n"));
        i += ln + 1;
    }
    mw_assert_ok(mw_image_policy_load(mw_dynbuf_slice(&y), "admit.yaml", &f->ip));
    mw_dynbuf_free(&y);
    mw_dynbuf_free(&t);
    snprintf(f->store_path, sizeof(f->store_path), "%s/ca.db", mw_test_tmpdir());
    mw_assert_ok(mw_ca_store_open(f->store_path, &f->store));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mw_ca_store_close(f->store);
    mw_image_policy_free(f->ip);
    mw_sigstore_bundle_free(f->intoto);
    mw_sigstore_bundle_free(f->keyed);
    mw_trust_root_free(f->tr);
    free(f);
    return 0;
}

static size_t store_count(struct mw_ca_store *s);

static mw_result count_each(void *ctx, const struct mw_ca_artifact *a)
{
    (void)a;
    (*(size_t *)ctx)++;
    return MW_SUCCESS;
}

static size_t store_count(struct mw_ca_store *s)
{
    size_t n = 0;
    mw_assert_ok(mw_ca_artifact_list(s, count_each, &n));
    return n;
}

static struct mw_image_verdict judge(struct fixture *f, const char *repo,
                                     const struct mw_sigstore_bundle *b)
{
    char image[256];
    snprintf(image, sizeof(image), "%s@%s", repo, f->digest);
    struct mw_image_verdict v;
    mw_assert_ok(mw_image_policy_evaluate(f->ip, f->tr, image, b, NULL, &v));
    return v;
}

static void test_key_id(void **state)
{
    struct fixture *f = *state;
    char id[MW_VERIFY_KEY_ID_HEX + 1];
    mw_assert_ok(mw_verify_key_id(mw_slice_cstr(f->key_pem), id));
    assert_string_equal(id, KEY_ID);
    /* The same key in other PEM whitespace has the same id (the DER is re-encoded). */
    char crlf[1200];
    size_t o = 0;
    for (size_t i = 0; f->key_pem[i] != '\0' && o + 2 < sizeof(crlf); i++) {
        if (f->key_pem[i] == '\n')
            crlf[o++] = '\r';
        crlf[o++] = f->key_pem[i];
    }
    crlf[o] = '\0';
    mw_assert_ok(mw_verify_key_id(mw_slice_cstr(crlf), id));
    assert_string_equal(id, KEY_ID);
    static const char *bad[] = {
        "",
        "not a key",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        mw_assert_fails(mw_verify_key_id(mw_slice_cstr(bad[i]), id), MW_E_INPUT);
        assert_string_equal(id, "");
    }
}

static void test_verdict_fields(void **state)
{
    struct fixture *f = *state;
    struct mw_image_verdict v = judge(f, "ghcr.io/acme/app", f->intoto);
    assert_true(v.allowed);
    assert_string_equal(v.identity, BEACON);
    assert_string_equal(v.issuer, GHA);
    assert_string_equal(v.key_id, "");
    assert_string_equal(v.builder_id, BUILDER);
    /* SLSA v1 externalParameters.workflow. */
    assert_string_equal(v.source_repo, "https://github.com/loosebazooka/aa-test");
    assert_string_equal(v.source_ref, "refs/heads/main");
    /* The attestation digest is SHA-256 of the DSSE payload as signed. */
    const char *pt;
    mw_slice payload = mw_sigstore_bundle_payload(f->intoto, &pt);
    uint8_t h[32];
    SHA256(payload.p, payload.n, h);
    char want[80];
    hex_digest(h, want, sizeof(want));
    assert_string_equal(v.attestation, want);

    v = judge(f, "ghcr.io/keyed/app", f->keyed);
    assert_true(v.allowed);
    assert_string_equal(v.key_id, KEY_ID);
    assert_string_equal(v.identity, "(key)");
    assert_string_equal(v.issuer, "");
    assert_string_equal(v.attestation, "");
}

static void test_admit(void **state)
{
    struct fixture *f = *state;
    uint8_t pol[32], root[32];
    mw_image_policy_digest(f->ip, pol);
    mw_trust_root_digest(f->tr, root);
    char pol_hex[80], root_hex[80];
    hex_digest(pol, pol_hex, sizeof(pol_hex));
    hex_digest(root, root_hex, sizeof(root_hex));

    /* DENY writes nothing. */
    struct mw_image_verdict v = judge(f, "ghcr.io/strict/app", f->intoto);
    assert_false(v.allowed);
    mw_assert_fails(mw_verify_admit(f->store, &v, pol, root, 1795521600, NULL), MW_E_VERIFY);
    assert_non_null(strstr(mw_error_msg(), "denied"));
    /* ALLOW without provenance (a keyed plain signature) writes nothing either. */
    v = judge(f, "ghcr.io/keyed/app", f->keyed);
    assert_true(v.allowed);
    mw_assert_fails(mw_verify_admit(f->store, &v, pol, root, 1795521600, NULL), MW_E_VERIFY);
    assert_non_null(strstr(mw_error_msg(), "no SLSA provenance"));
    assert_int_equal(store_count(f->store), 0);

    /* ALLOW with provenance: the record, as returned and as read back. */
    v = judge(f, "ghcr.io/acme/app", f->intoto);
    struct mw_ca_artifact out, got;
    mw_assert_ok(mw_verify_admit(f->store, &v, pol, root, 1795521600, &out));
    mw_assert_ok(mw_ca_artifact_get(f->store, mw_slice_cstr(f->digest), &got));
    assert_memory_equal(&out, &got, sizeof(got));
    assert_string_equal(got.image_digest, f->digest);
    assert_string_equal(got.attestation_digest, v.attestation);
    assert_string_equal(got.builder_id, BUILDER);
    assert_string_equal(got.source_repo, "https://github.com/loosebazooka/aa-test");
    assert_string_equal(got.source_ref, "refs/heads/main");
    assert_string_equal(got.signer_identity, BEACON);
    assert_string_equal(got.signer_issuer, GHA);
    assert_string_equal(got.key_id, "");
    assert_string_equal(got.policy_hash, pol_hex);
    assert_string_equal(got.trusted_root_hash, root_hex);
    assert_int_equal(got.admitted_at, 1795521600);

    /* A keyed verdict records the key id and no identity (provenance faked in for the test). */
    struct mw_image_verdict k = judge(f, "ghcr.io/keyed/app", f->keyed);
    snprintf(k.digest, sizeof(k.digest), OTHER);
    snprintf(k.attestation, sizeof(k.attestation), "%s", v.attestation);
    snprintf(k.builder_id, sizeof(k.builder_id), BUILDER);
    mw_assert_ok(mw_verify_admit(f->store, &k, pol, root, 1795521601, &out));
    assert_string_equal(out.key_id, KEY_ID);
    assert_string_equal(out.signer_identity, "");
    assert_string_equal(out.signer_issuer, "");
    assert_int_equal(store_count(f->store), 2);
}

/* The affected list, one digest per line, must be exactly want (in any order). */
static void assert_lines(const struct mw_dynbuf *b, size_t n, const char **want, size_t nwant)
{
    assert_int_equal(n, nwant);
    size_t lines = 0;
    for (size_t i = 0; i < b->n; i++)
        lines += b->p[i] == '\n';
    assert_int_equal(lines, nwant);
    for (size_t i = 0; i < nwant; i++) {
        char line[96];
        snprintf(line, sizeof(line), "%s\n", want[i]);
        if (strstr(mw_dynbuf_cstr(b), line) == NULL)
            fail_msg("%s missing from:\n%s", want[i], mw_dynbuf_cstr(b));
    }
}

static void test_revoke_store_and_cache(void **state)
{
    struct fixture *f = *state;
    uint8_t pol[32], root[32];
    mw_image_policy_digest(f->ip, pol);
    mw_trust_root_digest(f->tr, root);
    struct mw_image_verdict v = judge(f, "ghcr.io/acme/app", f->intoto);
    mw_assert_ok(mw_verify_admit(f->store, &v, pol, root, 1795521600, NULL));
    struct mw_verdict_cache *c;
    mw_assert_ok(mw_verdict_cache_new(16, 60, &c));
    /* The same digest in the store and in the cache, plus one only in the cache. */
    mw_assert_ok(mw_verdict_cache_put(c, pol, root, &v, 1000));
    struct mw_image_verdict only_cached = v;
    snprintf(only_cached.digest, sizeof(only_cached.digest), OTHER);
    mw_assert_ok(mw_verdict_cache_put(c, pol, root, &only_cached, 1000));
    struct mw_image_verdict out;

    struct mw_dynbuf aff;
    mw_dynbuf_init(&aff, 4096);
    size_t n;
    /* A signer that signed nothing here: nothing listed, nothing dropped. */
    struct mw_ca_artifact_match m = {MW_CA_MATCH_SIGNER, BEACON, "https://accounts.google.com"};
    mw_assert_ok(mw_verify_revoke(f->store, c, &m, &aff, &n));
    assert_int_equal(n, 0);
    assert_int_equal(aff.n, 0);
    assert_int_equal(store_count(f->store), 1);
    assert_true(mw_verdict_cache_get(c, v.digest, pol, root, 1001, &out));
    /* A malformed match changes neither. */
    m = (struct mw_ca_artifact_match){MW_CA_MATCH_SIGNER, BEACON, "not a uri"};
    mw_assert_fails(mw_verify_revoke(f->store, c, &m, &aff, &n), MW_E_INPUT);
    assert_true(mw_verdict_cache_get(c, v.digest, pol, root, 1001, &out));
    assert_int_equal(store_count(f->store), 1);

    /* The signer: the union of store and cache, each digest once. */
    m = (struct mw_ca_artifact_match){MW_CA_MATCH_SIGNER, BEACON, GHA};
    mw_assert_ok(mw_verify_revoke(f->store, c, &m, &aff, &n));
    const char *want[] = {f->digest, OTHER};
    assert_lines(&aff, n, want, 2);
    assert_int_equal(store_count(f->store), 0);
    assert_false(mw_verdict_cache_get(c, v.digest, pol, root, 1001, &out));
    assert_false(mw_verdict_cache_get(c, OTHER, pol, root, 1001, &out));

    /* By attestation, and by digest, with no store (a gate holding only its cache). */
    mw_assert_ok(mw_verdict_cache_put(c, pol, root, &v, 1000));
    mw_dynbuf_reset(&aff);
    m = (struct mw_ca_artifact_match){MW_CA_MATCH_ATTESTATION, v.attestation, NULL};
    mw_assert_ok(mw_verify_revoke(NULL, c, &m, &aff, &n));
    assert_lines(&aff, n, want, 1);
    mw_assert_ok(mw_verdict_cache_put(c, pol, root, &v, 1000));
    mw_dynbuf_reset(&aff);
    m = (struct mw_ca_artifact_match){MW_CA_MATCH_DIGEST, v.digest, NULL};
    mw_assert_ok(mw_verify_revoke(NULL, c, &m, &aff, &n));
    assert_lines(&aff, n, want, 1);
    assert_false(mw_verdict_cache_get(c, v.digest, pol, root, 1001, &out));

    /* By key, with no cache: the keyed record goes, the keyless one stays. */
    mw_assert_ok(mw_verify_admit(f->store, &v, pol, root, 1795521600, NULL));
    struct mw_image_verdict k = judge(f, "ghcr.io/keyed/app", f->keyed);
    snprintf(k.digest, sizeof(k.digest), OTHER);
    snprintf(k.attestation, sizeof(k.attestation), "%s", v.attestation);
    snprintf(k.builder_id, sizeof(k.builder_id), BUILDER);
    mw_assert_ok(mw_verify_admit(f->store, &k, pol, root, 1795521600, NULL));
    mw_dynbuf_reset(&aff);
    m = (struct mw_ca_artifact_match){MW_CA_MATCH_KEY_ID, KEY_ID, NULL};
    mw_assert_ok(mw_verify_revoke(f->store, NULL, &m, &aff, &n));
    const char *want_key[] = {OTHER};
    assert_lines(&aff, n, want_key, 1);
    assert_int_equal(store_count(f->store), 1);
    mw_dynbuf_free(&aff);
    mw_verdict_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verdict_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_store_and_cache, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
