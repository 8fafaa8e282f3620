/* trusted_root.json: the production root, both media types, validity windows, rejections. */
#include "testutil.h"

#include <jansson.h>
#include <string.h>

#include <meshward/verify.h>

#include "verify/verify_internal.h"

#define PROD "sigstore/trusted_root.production.json"

static json_t *load_json(const char *rel)
{
    json_error_t e;
    json_t *j = json_load_file(mw_test_data(rel), JSON_REJECT_DUPLICATES, &e);
    assert_non_null(j);
    return j;
}

/* Load a modified root; returns the result and frees everything. */
static mw_result load_mod(json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    assert_non_null(text);
    struct mw_trust_root *tr = NULL;
    mw_result r = mw_trust_root_load(mw_slice_cstr(text), "mod", &tr);
    mw_trust_root_free(tr);
    free(text);
    return r;
}

static void test_production_root(void **state)
{
    (void)state;
    struct mw_trust_root *tr;
    mw_assert_ok(mw_trust_root_load_file(mw_test_data(PROD), &tr));
    struct mw_trust_root_counts n;
    mw_trust_root_counts(tr, &n);
    assert_int_equal(n.cas, 2);
    assert_int_equal(n.tlogs, 2);
    assert_int_equal(n.ctlogs, 2);
    assert_int_equal(n.tsas, 1);
    /* The digest README.md gives for this file. */
    uint8_t d[32];
    mw_trust_root_digest(tr, d);
    assert_int_equal(d[0], 0x64);
    assert_int_equal(d[1], 0x94);
    /* Rekor v1 and v2 logs, found by their declared log IDs. */
    assert_string_equal(tr->tlogs[0].name, "rekor.sigstore.dev");
    assert_int_equal(tr->tlogs[0].details, MW_KEY_ECDSA_P256);
    assert_string_equal(tr->tlogs[1].name, "log2025-1.rekor.sigstore.dev");
    assert_int_equal(tr->tlogs[1].details, MW_KEY_ED25519);
    assert_non_null(tr->tlogs[1].note);
    assert_ptr_equal(mw_trust_root_tlog(tr, mw_slice_make(tr->tlogs[1].log_id, 32)), &tr->tlogs[1]);
    assert_null(mw_trust_root_tlog(tr, mw_slice_make(tr->tlogs[1].log_id, 31)));
    /* The 2021 CA ends 2022-12-31T23:59:59.999Z: the last whole second is inside. */
    int64_t end;
    mw_assert_ok(mw_parse_rfc3339("2022-12-31T23:59:59Z", &end));
    assert_true(mw_validity_has(&tr->cas[0].valid, end));
    assert_false(mw_validity_has(&tr->cas[0].valid, end + 1));
    assert_false(tr->cas[1].valid.has_end);
    mw_trust_root_free(tr);
}

static void test_media_types(void **state)
{
    (void)state;
    json_t *j = load_json(PROD);
    json_object_set_new(j, "mediaType",
                        json_string("application/vnd.dev.sigstore.trustedroot.v0.2+json"));
    mw_assert_ok(load_mod(j));
    json_object_set_new(j, "mediaType",
                        json_string("application/vnd.dev.sigstore.trustedroot+json;version=0.9"));
    mw_assert_fails(load_mod(j), MW_E_UNSUPPORTED);
    json_object_del(j, "mediaType");
    mw_assert_fails(load_mod(j), MW_E_INPUT);
    json_decref(j);
}

static void test_rejections(void **state)
{
    (void)state;
    json_t *j;
    /* validFor.start is required (conformance trust-root-tlog-missing-validity-start_fail). */
    j = load_json(PROD);
    json_object_del(json_object_get(json_object_get(json_array_get(json_object_get(j, "tlogs"), 0),
                                                    "publicKey"),
                                    "validFor"),
                    "start");
    mw_assert_fails(load_mod(j), MW_E_INPUT);
    json_decref(j);
    /* A window that ends before it starts. */
    j = load_json(PROD);
    json_object_set_new(
        json_object_get(json_array_get(json_object_get(j, "certificateAuthorities"), 0),
                        "validFor"),
        "end", json_string("2001-01-01T00:00:00Z"));
    mw_assert_fails(load_mod(j), MW_E_INPUT);
    json_decref(j);
    /* A key that is not DER. */
    j = load_json(PROD);
    json_object_set_new(
        json_object_get(json_array_get(json_object_get(j, "ctlogs"), 0), "publicKey"), "rawBytes",
        json_string("AAAA"));
    mw_assert_fails(load_mod(j), MW_E_INPUT);
    json_decref(j);
    /* keyDetails that lie about the key. */
    j = load_json(PROD);
    json_object_set_new(
        json_object_get(json_array_get(json_object_get(j, "tlogs"), 0), "publicKey"), "keyDetails",
        json_string("PKIX_ED25519"));
    mw_assert_fails(load_mod(j), MW_E_INPUT);
    json_decref(j);
    /* A log ID of the wrong length. */
    j = load_json(PROD);
    json_object_set_new(json_object_get(json_array_get(json_object_get(j, "tlogs"), 0), "logId"),
                        "keyId", json_string("AAAA"));
    mw_assert_fails(load_mod(j), MW_E_INPUT);
    json_decref(j);
    /* A CA chain whose intermediate is not signed by the root. */
    j = load_json(PROD);
    json_t *certs = json_object_get(
        json_object_get(json_array_get(json_object_get(j, "certificateAuthorities"), 1),
                        "certChain"),
        "certificates");
    json_t *c0 = json_array_get(
        json_object_get(
            json_object_get(json_array_get(json_object_get(j, "certificateAuthorities"), 0),
                            "certChain"),
            "certificates"),
        0);
    assert_int_equal(json_array_set(certs, 1, c0), 0);
    mw_assert_fails(load_mod(j), MW_E_INPUT);
    json_decref(j);
    /* Wrong types. */
    j = load_json(PROD);
    json_object_set_new(j, "tlogs", json_string("x"));
    mw_assert_fails(load_mod(j), MW_E_INPUT);
    json_decref(j);
}

static void test_malformed_text(void **state)
{
    (void)state;
    struct mw_trust_root *tr = NULL;
    const char *bad[] = {
        "",
        "[]",
        "{\"mediaType\":\"application/vnd.dev.sigstore.trustedroot+json;version=0.1\",",
        "{\"mediaType\":\"a\",\"mediaType\":\"application/"
        "vnd.dev.sigstore.trustedroot+json;version=0.1\"}",
        "{\"mediaType\":1}",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        mw_result r = mw_trust_root_load(mw_slice_cstr(bad[i]), "bad", &tr);
        assert_true(mw_failed(r));
        assert_null(tr);
    }
    /* Truncations of the real file never load. */
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1u << 20);
    mw_test_read(PROD, &b);
    for (size_t n = 0; n + 1 < b.n; n += 97) {
        mw_result r = mw_trust_root_load(mw_slice_make(b.p, n), "cut", &tr);
        assert_true(mw_failed(r));
    }
    mw_dynbuf_free(&b);
}

static void test_rfc3339(void **state)
{
    (void)state;
    int64_t t;
    mw_assert_ok(mw_parse_rfc3339("1970-01-01T00:00:00Z", &t));
    assert_int_equal(t, 0);
    mw_assert_ok(mw_parse_rfc3339("2021-01-12T11:53:27.000Z", &t));
    assert_int_equal(t, 1610452407);
    mw_assert_ok(mw_parse_rfc3339("2021-01-12T12:53:27+01:00", &t));
    assert_int_equal(t, 1610452407);
    const char *bad[] = {"2021-01-12",
                         "2021-01-12T11:53:27",
                         "2021-13-12T11:53:27Z",
                         "2021-01-12T11:53:27.Z",
                         "2021-01-12T11:53:27ZZ",
                         "2021-01-12 11:53:27Z",
                         "20x1-01-12T11:53:27Z"};
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++)
        mw_assert_fails(mw_parse_rfc3339(bad[i], &t), MW_E_INPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_production_root), cmocka_unit_test(test_media_types),
        cmocka_unit_test(test_rejections),      cmocka_unit_test(test_malformed_text),
        cmocka_unit_test(test_rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
