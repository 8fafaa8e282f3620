/*
 * Every sigstore-conformance bundle-verify case (../shared/testdata/
 * sigstore-conformance/cases.json), each run twice as the suite does: with
 * the artifact's bytes and with its sha256 digest. Expected outcomes come
 * from the case list; nothing here knows a case by name.
 */
#include "testutil.h"

#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include <meshward/verify.h>

static const char *case_path(const char *rel, char *buf, size_t cap)
{
    snprintf(buf, cap, "sigstore-conformance/%s", rel);
    return mw_test_data(buf);
}

/* Verify one case; 0 = verified, otherwise the message in err. */
static int run_case(json_t *c, bool by_digest, char *err, size_t errcap)
{
    char rel[1024];
    const char *bundle = json_string_value(json_object_get(c, "bundle"));
    const char *artifact = json_string_value(json_object_get(c, "artifact"));
    const char *root = json_string_value(json_object_get(c, "trusted_root"));
    const char *key = json_string_value(json_object_get(c, "key"));
    struct mw_dynbuf bt, at, kt;
    mw_dynbuf_init(&bt, 16u << 20);
    mw_dynbuf_init(&at, 16u << 20);
    mw_dynbuf_init(&kt, 1u << 20);
    struct mw_trust_root *tr = NULL;
    struct mw_sigstore_bundle *b = NULL;
    struct mw_verify_policy p = {
        .identity = json_string_value(json_object_get(c, "certificate_identity")),
        .issuer = json_string_value(json_object_get(c, "certificate_oidc_issuer")),
    };
    struct mw_artifact art;
    struct mw_verify_result res;
    int rc = 1;
    mw_result r = mw_file_read(case_path(bundle, rel, sizeof(rel)), 16u << 20, &bt);
    if (mw_ok(r))
        r = mw_file_read(case_path(artifact, rel, sizeof(rel)), 16u << 20, &at);
    if (mw_ok(r) && key != NULL) {
        r = mw_file_read(case_path(key, rel, sizeof(rel)), 1u << 20, &kt);
        p.key_pem = mw_dynbuf_slice(&kt);
    }
    if (mw_ok(r))
        r = mw_trust_root_load_file(case_path(root, rel, sizeof(rel)), &tr);
    if (mw_ok(r))
        r = mw_sigstore_bundle_parse(mw_dynbuf_slice(&bt), bundle, &b);
    if (mw_ok(r)) {
        mw_artifact_from_bytes(mw_dynbuf_slice(&at), &art);
        if (by_digest) {
            art.is_digest = true;
            art.bytes = mw_slice_make(NULL, 0);
        }
        r = mw_verify_bundle(tr, b, &art, &p, NULL, &res);
    }
    if (mw_ok(r))
        rc = 0;
    else
        snprintf(err, errcap, "%s", mw_error_msg());
    mw_sigstore_bundle_free(b);
    mw_trust_root_free(tr);
    mw_dynbuf_free(&bt);
    mw_dynbuf_free(&at);
    mw_dynbuf_free(&kt);
    return rc;
}

static void test_all_cases_agree(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *cases = json_load_file(mw_test_data("sigstore-conformance/cases.json"), 0, &jerr);
    assert_non_null(cases);
    json_t *list = json_object_get(cases, "cases");
    assert_true(json_array_size(list) >= 56);
    size_t agree = 0, total = 0, passes = 0;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *c = json_array_get(list, i);
        bool want_pass = strcmp(json_string_value(json_object_get(c, "expect")), "pass") == 0;
        for (int d = 0; d < 2; d++) {
            char err[2048] = "";
            bool ok = run_case(c, d == 1, err, sizeof(err)) == 0;
            total++;
            passes += ok;
            if (ok == want_pass) {
                agree++;
                /* A failure must name its reason. */
                if (!ok && strlen(err) < 10)
                    fail_msg("%s: failure without a reason",
                             json_string_value(json_object_get(c, "name")));
            } else {
                fprintf(stderr, "DISAGREE %s-%s: want %s: %s\n", d ? "DIGEST" : "FILE",
                        json_string_value(json_object_get(c, "name")), want_pass ? "pass" : "fail",
                        ok ? "verified" : err);
            }
        }
    }
    fprintf(stderr, "sigstore-conformance: %zu of %zu agree (%zu verified)\n", agree, total,
            passes);
    json_decref(cases);
    assert_int_equal(agree, total);
    assert_true(passes > 0);
}

/* The happy paths also establish the facts the policy layer reads. */
static void test_happy_path_facts(void **state)
{
    (void)state;
    struct mw_trust_root *tr;
    struct mw_sigstore_bundle *b;
    struct mw_dynbuf bt, at;
    mw_dynbuf_init(&bt, 1u << 20);
    mw_dynbuf_init(&at, 1u << 20);
    mw_test_read("sigstore-conformance/happy-path-intoto-in-dsse-v3/bundle.sigstore.json", &bt);
    mw_test_read("sigstore-conformance/a.txt", &at);
    mw_assert_ok(
        mw_trust_root_load_file(mw_test_data("sigstore/trusted_root.production.json"), &tr));
    mw_assert_ok(mw_sigstore_bundle_parse(mw_dynbuf_slice(&bt), "dsse", &b));
    struct mw_artifact art;
    mw_artifact_from_bytes(mw_dynbuf_slice(&at), &art);
    struct mw_verify_policy p = {
        .identity_regex = "https://github.com/sigstore-conformance/.*",
        .issuer = "https://token.actions.githubusercontent.com",
    };
    struct mw_verify_result res;
    mw_assert_ok(mw_verify_bundle(tr, b, &art, &p, NULL, &res));
    assert_true(res.dsse);
    assert_false(res.keyed);
    assert_string_equal(res.predicate_type, "https://slsa.dev/provenance/v1");
    assert_string_equal(res.builder_id, "https://github.com/loosebazooka/aa-test/.github/workflows/"
                                        "provenance.yaml@refs/heads/main");
    assert_string_equal(res.build_type, "https://actions.github.io/buildtypes/workflow/v1");
    assert_string_equal(res.issuer, "https://token.actions.githubusercontent.com");
    assert_true(res.signed_at > 1700000000);
    assert_int_equal(res.tlog_entries, 1);

    /* The regex is anchored: a prefix does not match, nor does a wrong issuer. */
    p.identity_regex = "https://github.com/sigstore-conformance";
    mw_assert_fails(mw_verify_bundle(tr, b, &art, &p, NULL, &res), MW_E_VERIFY);
    p.identity_regex = NULL;
    p.identity = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
                 ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    p.issuer = "https://accounts.google.com";
    mw_assert_fails(mw_verify_bundle(tr, b, &art, &p, NULL, &res), MW_E_VERIFY);
    /* Optional Fulcio constraints. */
    p.issuer = "https://token.actions.githubusercontent.com";
    p.source_repo = "https://github.com/someone/else";
    mw_assert_fails(mw_verify_bundle(tr, b, &art, &p, NULL, &res), MW_E_VERIFY);
    p.source_repo = NULL;
    mw_assert_ok(mw_verify_bundle(tr, b, &art, &p, NULL, &res));
    /* A different artifact is not a subject of the statement. */
    struct mw_artifact other;
    mw_artifact_from_bytes(mw_slice_cstr("not the artifact"), &other);
    mw_assert_fails(mw_verify_bundle(tr, b, &other, &p, NULL, &res), MW_E_VERIFY);
    /* Keyless bundle, keyed verification: refused. */
    p.key_pem = mw_slice_cstr("-----BEGIN PUBLIC KEY-----\n");
    mw_assert_fails(mw_verify_bundle(tr, b, &art, &p, NULL, &res), MW_E_VERIFY);

    mw_sigstore_bundle_free(b);
    mw_trust_root_free(tr);
    mw_dynbuf_free(&bt);
    mw_dynbuf_free(&at);
}

static void test_artifact_digest_text(void **state)
{
    (void)state;
    struct mw_artifact a;
    mw_assert_ok(mw_artifact_from_digest(
        "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf", &a));
    assert_true(a.is_digest);
    assert_int_equal(a.sha256[0], 0xa0);
    const char *bad[] = {
        "sha256:a0cf",
        "sha512:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf",
        "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf",
        "sha256:z0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf",
        "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf00",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++)
        mw_assert_fails(mw_artifact_from_digest(bad[i], &a), MW_E_INPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_cases_agree),
        cmocka_unit_test(test_happy_path_facts),
        cmocka_unit_test(test_artifact_digest_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
