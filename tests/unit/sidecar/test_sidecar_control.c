/* What a sidecar accepts as a GET /v1/config answer from the control plane. */
#include <string.h>

#include "sidecar/sidecar_internal.h"
#include "testutil.h"

static void test_answer_ok(void **state)
{
    struct mw_dynbuf docs;
    mw_dynbuf_init(&docs, 1 << 20);
    uint64_t v = 0;
    mw_assert_ok(sc_control_parse_answer(
        mw_slice_cstr("{\"version\":1795534041199,\"workload\":\"spiffe://td/ns/a/sa/b\","
                      "\"documents\":\"--- {kind: X}\\n\"}"),
        &v, &docs));
    assert_true(v == 1795534041199ull);
    assert_string_equal(mw_dynbuf_cstr(&docs), "--- {kind: X}\n");
    mw_dynbuf_free(&docs);
}

static void test_answer_refused(void **state)
{
    static const char *const bad[] = {
        "",
        "not json",
        "[1, 2]",
        "{\"workload\":\"w\",\"documents\":\"\"}",
        "{\"version\":0,\"documents\":\"\"}",
        "{\"version\":-5,\"documents\":\"\"}",
        "{\"version\":\"7\",\"documents\":\"\"}",
        "{\"version\":1.5,\"documents\":\"\"}",
        "{\"version\":7}",
        "{\"version\":7,\"documents\":[\"a\"]}",
        "{\"version\":7,\"documents\":\"a\",\"documents\":\"b\"}",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        struct mw_dynbuf docs;
        mw_dynbuf_init(&docs, 1 << 20);
        uint64_t v = 0;
        if (mw_ok(sc_control_parse_answer(mw_slice_cstr(bad[i]), &v, &docs)))
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(docs.n, 0);
        mw_dynbuf_free(&docs);
    }
}

/* Documents larger than the sidecar's bound are refused, not cut. */
static void test_answer_too_large(void **state)
{
    struct mw_dynbuf body, docs;
    mw_dynbuf_init(&body, 1 << 20);
    mw_dynbuf_init(&docs, 16);
    mw_assert_ok(mw_dynbuf_add_cstr(&body, "{\"version\":3,\"documents\":\""));
    for (int i = 0; i < 10; i++)
        mw_assert_ok(mw_dynbuf_add_cstr(&body, "xxxxxxxx"));
    mw_assert_ok(mw_dynbuf_add_cstr(&body, "\"}"));
    uint64_t v = 0;
    assert_true(mw_failed(sc_control_parse_answer(mw_dynbuf_slice(&body), &v, &docs)));
    mw_dynbuf_free(&body);
    mw_dynbuf_free(&docs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_ok),
        cmocka_unit_test(test_answer_refused),
        cmocka_unit_test(test_answer_too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
