/* Sigstore bundle parsing: every conformance bundle, media types, and rejections. */
#include "testutil.h"

#include <jansson.h>
#include <string.h>

#include <meshward/verify.h>

#define CONF "sigstore-conformance/"

static json_t *load_json(const char *rel)
{
    json_error_t e;
    json_t *j = json_load_file(mw_test_data(rel), 0, &e);
    assert_non_null(j);
    return j;
}

static mw_result parse_mod(json_t *j, struct mw_sigstore_bundle **out)
{
    char *text = json_dumps(j, JSON_COMPACT);
    assert_non_null(text);
    struct mw_sigstore_bundle *b = NULL;
    mw_result r = mw_sigstore_bundle_parse(mw_slice_cstr(text), "mod", &b);
    free(text);
    if (out != NULL)
        *out = b;
    else
        mw_sigstore_bundle_free(b);
    return r;
}

static void test_real_bundles(void **state)
{
    (void)state;
    static const struct {
        const char *dir;
        int version;
        enum mw_bundle_material material;
        enum mw_bundle_content content;
        size_t tsrs;
    } cases[] = {
        {"happy-path-v0.1", 1, MW_MATERIAL_CHAIN, MW_CONTENT_MESSAGE_SIGNATURE, 0},
        {"happy-path-v0.3", 3, MW_MATERIAL_CERTIFICATE, MW_CONTENT_MESSAGE_SIGNATURE, 0},
        {"happy-path-v0.3-new-mediaType", 3, MW_MATERIAL_CERTIFICATE, MW_CONTENT_MESSAGE_SIGNATURE,
         0},
        {"happy-path-intoto-in-dsse-v3", 3, MW_MATERIAL_CERTIFICATE, MW_CONTENT_DSSE, 0},
        {"intoto-with-custom-trust-root", 2, MW_MATERIAL_CHAIN, MW_CONTENT_DSSE, 1},
        {"managed-key-happy-path", 3, MW_MATERIAL_PUBLIC_KEY, MW_CONTENT_MESSAGE_SIGNATURE, 1},
        {"rekor2-happy-path", 3, MW_MATERIAL_CERTIFICATE, MW_CONTENT_MESSAGE_SIGNATURE, 1},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        char rel[256];
        snprintf(rel, sizeof(rel), CONF "%s/bundle.sigstore.json", cases[i].dir);
        struct mw_dynbuf t;
        mw_dynbuf_init(&t, 1u << 20);
        mw_test_read(rel, &t);
        struct mw_sigstore_bundle *b;
        mw_assert_ok(mw_sigstore_bundle_parse(mw_dynbuf_slice(&t), rel, &b));
        assert_int_equal(mw_sigstore_bundle_version(b), cases[i].version);
        assert_int_equal(mw_sigstore_bundle_material(b), cases[i].material);
        assert_int_equal(mw_sigstore_bundle_content(b), cases[i].content);
        assert_int_equal(mw_sigstore_bundle_tlog_count(b), 1);
        assert_int_equal(mw_sigstore_bundle_timestamp_count(b), cases[i].tsrs);
        const char *pt;
        mw_slice payload = mw_sigstore_bundle_payload(b, &pt);
        if (cases[i].content == MW_CONTENT_DSSE) {
            assert_string_equal(pt, "application/vnd.in-toto+json");
            assert_true(payload.n > 100);
        } else {
            assert_int_equal(payload.n, 0);
        }
        mw_sigstore_bundle_free(b);
        mw_dynbuf_free(&t);
    }
}

#define V3   CONF "happy-path-v0.3/bundle.sigstore.json"
#define V1   CONF "happy-path-v0.1/bundle.sigstore.json"
#define DSSE CONF "happy-path-intoto-in-dsse-v3/bundle.sigstore.json"

static json_t *entry0(json_t *j)
{
    return json_array_get(
        json_object_get(json_object_get(j, "verificationMaterial"), "tlogEntries"), 0);
}

static void test_media_types(void **state)
{
    (void)state;
    json_t *j = load_json(V3);
    const char *ok[] = {"application/vnd.dev.sigstore.bundle+json;version=0.3",
                        "application/vnd.dev.sigstore.bundle.v0.3+json"};
    for (size_t i = 0; i < MW_ARRAY_LEN(ok); i++) {
        json_object_set_new(j, "mediaType", json_string(ok[i]));
        mw_assert_ok(parse_mod(j, NULL));
    }
    const char *bad[] = {"application/vnd.dev.sigstore.bundle+json;version=0.4",
                         "application/vnd.dev.sigstore.bundle.v0.4+json",
                         "application/vnd.dev.sigstore.bundle+json;version=0.3 ",
                         "application/json"};
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        json_object_set_new(j, "mediaType", json_string(bad[i]));
        mw_assert_fails(parse_mod(j, NULL), MW_E_UNSUPPORTED);
    }
    json_object_set_new(j, "mediaType", json_integer(3));
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_decref(j);
}

static void test_rejections(void **state)
{
    (void)state;
    json_t *j;
    /* Two kinds of key material at once. */
    j = load_json(V3);
    json_object_set_new(json_object_get(j, "verificationMaterial"), "publicKey",
                        json_pack("{s:s}", "hint", "x"));
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_decref(j);
    /* No content, or both kinds. */
    j = load_json(V3);
    json_object_del(j, "messageSignature");
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_decref(j);
    j = load_json(DSSE);
    json_t *v3 = load_json(V3);
    json_object_set(j, "messageSignature", json_object_get(v3, "messageSignature"));
    json_decref(v3);
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_decref(j);
    /* DSSE with two signatures, or none. */
    j = load_json(DSSE);
    json_t *sigs = json_object_get(json_object_get(j, "dsseEnvelope"), "signatures");
    json_array_append(sigs, json_array_get(sigs, 0));
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_array_clear(sigs);
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_decref(j);
    /* Negative and non-numeric indexes; unpadded base64. */
    j = load_json(V3);
    json_object_set_new(entry0(j), "logIndex", json_string("-5"));
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_object_set_new(entry0(j), "logIndex", json_string("12a"));
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_object_set_new(entry0(j), "logIndex", json_integer(-1));
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_object_set_new(entry0(j), "logIndex", json_string("7"));
    mw_assert_ok(parse_mod(j, NULL));
    json_object_set_new(json_object_get(j, "messageSignature"), "signature", json_string("MEUCIQ"));
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_decref(j);
    /* v0.2+ needs the inclusion proof; v0.1 needs the promise. */
    j = load_json(V3);
    json_object_del(entry0(j), "inclusionProof");
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_decref(j);
    j = load_json(V1);
    json_object_del(entry0(j), "inclusionPromise");
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_decref(j);
    /* A v0.3 bundle carries a single certificate, not a chain. */
    j = load_json(V1);
    json_object_set_new(j, "mediaType",
                        json_string("application/vnd.dev.sigstore.bundle.v0.3+json"));
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_decref(j);
    /* Proof hashes of the wrong size; wrong types. */
    j = load_json(V3);
    json_array_append_new(json_object_get(json_object_get(entry0(j), "inclusionProof"), "hashes"),
                          json_string("AAAA"));
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_decref(j);
    j = load_json(V3);
    json_object_set_new(j, "verificationMaterial", json_array());
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_decref(j);
    /* A certificate that is not DER. */
    j = load_json(V3);
    json_object_set_new(json_object_get(json_object_get(j, "verificationMaterial"), "certificate"),
                        "rawBytes", json_string("AAAA"));
    mw_assert_fails(parse_mod(j, NULL), MW_E_INPUT);
    json_decref(j);
}

static void test_malformed_text(void **state)
{
    (void)state;
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1u << 20);
    mw_test_read(DSSE, &b);
    struct mw_sigstore_bundle *out;
    for (size_t n = 0; n + 1 < b.n; n += 211) {
        mw_result r = mw_sigstore_bundle_parse(mw_slice_make(b.p, n), "cut", &out);
        assert_true(mw_failed(r));
        assert_null(out);
    }
    const char *dup =
        "{\"mediaType\":\"x\",\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\"}";
    mw_assert_fails(mw_sigstore_bundle_parse(mw_slice_cstr(dup), "dup", &out), MW_E_INPUT);
    mw_dynbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_bundles),
        cmocka_unit_test(test_media_types),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_malformed_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
