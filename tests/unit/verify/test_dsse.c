/* DSSE PAE and envelopes, in-toto statements, SLSA v1 and v0.2, cosign simple signing. */
#include "testutil.h"

#include <string.h>

#include <meshward/verify.h>

static void test_pae(void **state)
{
    (void)state;
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1024);
    /* The example of secure-systems-lab/dsse protocol.md. */
    mw_assert_ok(mw_dsse_pae(mw_slice_cstr("http://example.com/HelloWorld"),
                             mw_slice_cstr("hello world"), &b));
    assert_string_equal(mw_dynbuf_cstr(&b),
                        "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
    mw_dynbuf_reset(&b);
    mw_assert_ok(mw_dsse_pae(mw_slice_cstr(""), mw_slice_cstr(""), &b));
    assert_string_equal(mw_dynbuf_cstr(&b), "DSSEv1 0  0 ");
    /* A bounded buffer refuses rather than truncates. */
    struct mw_dynbuf small;
    mw_dynbuf_init(&small, 8);
    assert_true(mw_failed(mw_dsse_pae(mw_slice_cstr("t"), mw_slice_cstr("body"), &small)));
    mw_dynbuf_free(&small);
    mw_dynbuf_free(&b);
}

static void test_envelope(void **state)
{
    (void)state;
    struct mw_dynbuf p, t, s;
    mw_dynbuf_init(&p, 1 << 16);
    mw_dynbuf_init(&t, 1 << 10);
    mw_dynbuf_init(&s, 1 << 10);
    size_t n;
    mw_assert_ok(mw_dsse_parse(
        mw_slice_cstr("{\"payload\":\"aGVsbG8=\",\"payloadType\":\"text/plain\",\"signatures\":"
                      "[{\"sig\":\"AQID\",\"keyid\":\"k\"},{\"sig\":\"BA==\"}]}"),
        &p, &t, &s, &n));
    assert_int_equal(n, 2);
    assert_string_equal(mw_dynbuf_cstr(&p), "hello");
    assert_string_equal(mw_dynbuf_cstr(&t), "text/plain");
    assert_int_equal(s.n, 3);
    const char *bad[] = {
        "{\"payload\":\"aGVsbG8\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"AQID\"}]}",
        "{\"payload\":\"aGVsbG8=\",\"signatures\":[{\"sig\":\"AQID\"}]}",
        "{\"payload\":\"aGVsbG8=\",\"payloadType\":\"t\",\"signatures\":[]}",
        "{\"payload\":\"aGVsbG8=\",\"payloadType\":\"t\",\"signatures\":{}}",
        "{\"payload\":\"aGVsbG8=\",\"payloadType\":\"t\",\"signatures\":[{\"keyid\":\"k\"}]}",
        "{\"payload\":\"aGVsbG8=\",\"payload\":\"aGVsbG8=\",\"payloadType\":\"t\",\"signatures\":[{"
        "\"sig\":\"AQID\"}]}",
        "[]",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++)
        mw_assert_fails(mw_dsse_parse(mw_slice_cstr(bad[i]), &p, &t, &s, &n), MW_E_INPUT);
    mw_dynbuf_free(&p);
    mw_dynbuf_free(&t);
    mw_dynbuf_free(&s);
}

static void test_slsa_v1_real(void **state)
{
    (void)state;
    struct mw_dynbuf bt;
    mw_dynbuf_init(&bt, 1u << 20);
    mw_test_read("sigstore-conformance/happy-path-intoto-in-dsse-v3/bundle.sigstore.json", &bt);
    struct mw_sigstore_bundle *b;
    mw_assert_ok(mw_sigstore_bundle_parse(mw_dynbuf_slice(&bt), "b", &b));
    const char *pt;
    struct mw_intoto *st;
    mw_assert_ok(mw_intoto_parse(mw_sigstore_bundle_payload(b, &pt), &st));
    assert_string_equal(mw_intoto_predicate_type(st), "https://slsa.dev/provenance/v1");
    assert_int_equal(mw_intoto_subject_count(st), 1);
    struct mw_slsa s;
    mw_intoto_slsa(st, &s);
    assert_int_equal(s.version, 1);
    assert_string_equal(s.build_type, "https://actions.github.io/buildtypes/workflow/v1");
    assert_string_equal(s.source_repo, "https://github.com/loosebazooka/aa-test");
    assert_string_equal(s.source_ref, "refs/heads/main");
    /* The subject is a.txt. */
    struct mw_dynbuf at;
    mw_dynbuf_init(&at, 1 << 16);
    mw_test_read("sigstore-conformance/a.txt", &at);
    struct mw_artifact a;
    mw_artifact_from_bytes(mw_dynbuf_slice(&at), &a);
    assert_true(mw_intoto_has_sha256(st, a.sha256));
    a.sha256[0] ^= 1;
    assert_false(mw_intoto_has_sha256(st, a.sha256));
    mw_intoto_free(st);
    mw_sigstore_bundle_free(b);
    mw_dynbuf_free(&bt);
    mw_dynbuf_free(&at);
}

#define DIG "2f46d5a0f2b8a6bb3df7ab2c3a1b9d0c7f1e3f5a6b7c8d9e0f1a2b3c4d5e6f70"

static void test_statements(void **state)
{
    (void)state;
    struct mw_intoto *st;
    /* SLSA v0.2 in a Statement v0.1, mapped to the v1 names. */
    const char *v02 =
        "{\"_type\":\"https://in-toto.io/Statement/v0.1\",\"predicateType\":"
        "\"https://slsa.dev/provenance/"
        "v0.2\",\"subject\":[{\"name\":\"img\",\"digest\":{\"sha256\":\"" DIG
        "\"}}],\"predicate\":{\"builder\":{\"id\":\"https://github.com/slsa-framework/"
        "slsa-github-generator/"
        ".github/workflows/generator_container_slsa3.yml@refs/tags/v1.9.0\"},\"buildType\":"
        "\"https://github.com/slsa-framework/slsa-github-generator/container@v1\",\"invocation\":"
        "{\"configSource\":{\"uri\":\"git+https://github.com/acme/app@refs/heads/"
        "main\",\"entryPoint\":"
        "\"release.yml\"}}}}";
    mw_assert_ok(mw_intoto_parse(mw_slice_cstr(v02), &st));
    struct mw_slsa s;
    mw_intoto_slsa(st, &s);
    assert_int_equal(s.version, 2);
    assert_string_equal(s.build_type,
                        "https://github.com/slsa-framework/slsa-github-generator/container@v1");
    assert_string_equal(s.source_repo, "git+https://github.com/acme/app@refs/heads/main");
    mw_intoto_free(st);
    /* Another predicate: parsed, no SLSA facts. */
    const char *other = "{\"_type\":\"https://in-toto.io/Statement/v1\",\"predicateType\":"
                        "\"https://spdx.dev/"
                        "Document\",\"subject\":[{\"name\":\"x\",\"digest\":{\"sha512\":\"00\"}}],"
                        "\"predicate\":{}}";
    mw_assert_ok(mw_intoto_parse(mw_slice_cstr(other), &st));
    mw_intoto_slsa(st, &s);
    assert_int_equal(s.version, 0);
    mw_intoto_free(st);
    const char *bad[] = {
        /* wrong _type */
        "{\"_type\":\"https://in-toto.io/Statement/"
        "v2\",\"predicateType\":\"p\",\"subject\":[{\"digest\":{}}]}",
        /* no subjects */
        "{\"_type\":\"https://in-toto.io/Statement/v1\",\"predicateType\":\"p\",\"subject\":[]}",
        /* bad hex */
        "{\"_type\":\"https://in-toto.io/Statement/"
        "v1\",\"predicateType\":\"p\",\"subject\":[{\"digest\":{\"sha256\":\"xyz\"}}]}",
        /* SLSA v1 without builder id */
        "{\"_type\":\"https://in-toto.io/Statement/v1\",\"predicateType\":\"https://slsa.dev/"
        "provenance/v1\","
        "\"subject\":[{\"digest\":{\"sha256\":\"" DIG "\"}}],\"predicate\":{\"buildDefinition\":"
        "{\"buildType\":\"b\",\"externalParameters\":{}},\"runDetails\":{}}}",
        /* SLSA v1 without externalParameters */
        "{\"_type\":\"https://in-toto.io/Statement/v1\",\"predicateType\":\"https://slsa.dev/"
        "provenance/v1\","
        "\"subject\":[{\"digest\":{\"sha256\":\"" DIG "\"}}],\"predicate\":{\"buildDefinition\":"
        "{\"buildType\":\"b\"},\"runDetails\":{\"builder\":{\"id\":\"x\"}}}}",
        /* duplicate key */
        "{\"_type\":\"https://in-toto.io/Statement/v1\",\"_type\":\"https://in-toto.io/Statement/"
        "v1\"}",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        mw_result r = mw_intoto_parse(mw_slice_cstr(bad[i]), &st);
        assert_true(mw_failed(r));
        assert_null(st);
    }
}

static void test_simplesign(void **state)
{
    (void)state;
    char d[80], id[256];
    const char *ok =
        "{\"critical\":{\"identity\":{\"docker-reference\":\"ghcr.io/acme/app\"},\"image\":"
        "{\"docker-manifest-digest\":\"sha256:" DIG "\"},\"type\":\"cosign container image "
        "signature\"},\"optional\":null}";
    mw_assert_ok(mw_simplesign_parse(mw_slice_cstr(ok), d, sizeof(d), id, sizeof(id)));
    assert_string_equal(d, "sha256:" DIG);
    assert_string_equal(id, "ghcr.io/acme/app");
    const char *bad[] = {
        "{\"critical\":{\"image\":{\"docker-manifest-digest\":\"sha256:" DIG
        "\"},\"type\":\"other\"}}",
        "{\"critical\":{\"image\":{\"docker-manifest-digest\":\"sha256:ABC\"},\"type\":\"cosign "
        "container image signature\"}}",
        "{\"critical\":{\"type\":\"cosign container image signature\"}}",
        "{\"optional\":{}}",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++)
        assert_true(
            mw_failed(mw_simplesign_parse(mw_slice_cstr(bad[i]), d, sizeof(d), id, sizeof(id))));
    /* Too small an output buffer is refused, not truncated. */
    assert_true(mw_failed(mw_simplesign_parse(mw_slice_cstr(ok), d, 10, id, sizeof(id))));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pae),          cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_slsa_v1_real), cmocka_unit_test(test_statements),
        cmocka_unit_test(test_simplesign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
