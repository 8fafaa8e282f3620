#include "testutil.h"

#include <jansson.h>
#include <string.h>

#include "sidecar/sidecar_metrics.h"

/* Istio's JSON access-log keys (EnvoyJSONLogFormatIstio) that we emit, plus ours. */
static const char *const keys[] = {
    "start_time",
    "method",
    "path",
    "protocol",
    "response_code",
    "response_flags",
    "response_code_details",
    "bytes_received",
    "bytes_sent",
    "duration",
    "x_forwarded_for",
    "user_agent",
    "request_id",
    "authority",
    "upstream_host",
    "upstream_cluster",
    "upstream_local_address",
    "downstream_local_address",
    "downstream_remote_address",
    "requested_server_name",
    "source_principal",
    "destination_principal",
    "decision",
    "policy",
};

static const struct mw_access_entry http_entry = {
    .start_time_ms = 1620671740449, /* 2021-05-10T18:35:40.449Z */
    .method = "GET",
    .path = "/api/v1/items?q=1",
    .protocol = "HTTP/1.1",
    .response_code = 200,
    .response_flags = "-",
    .bytes_received = 12,
    .bytes_sent = 612,
    .duration_ms = 7,
    .upstream_host = "127.0.0.1:8080",
    .downstream_remote_address = "10.248.1.2:51234",
    .downstream_local_address = "10.248.1.3:8080",
    .authority = "server.demo:8080",
    .user_agent = "curl/7.88.1",
    .x_forwarded_for = NULL,
    .request_id = "fde11243-0206-983c-bc60-b774c0886139",
    .requested_server_name = "outbound_.8080_._.server.demo.svc.cluster.local",
    .upstream_cluster = "inbound|8080||",
    .source_principal = "spiffe://example.org/ns/demo/sa/client",
    .destination_principal = "spiffe://example.org/ns/demo/sa/server",
    .decision = "allow",
    .policy = "demo/allow-get",
    .upstream_local_address = "127.0.0.1:40312",
    .response_code_details = "via_upstream",
};

static char *format(const struct mw_access_entry *e)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1u << 20);
    mw_assert_ok(mw_accesslog_format(e, &b));
    size_t n;
    char *p = (char *)mw_dynbuf_take(&b, &n);
    assert_non_null(p);
    return p;
}

/* Parse one line strictly: one object, nothing after the newline, every key known. */
static json_t *parse_line(const char *line)
{
    size_t n = strlen(line);
    assert_true(n > 1);
    assert_int_equal(line[n - 1], '\n');
    assert_null(memchr(line, '\n', n - 1));
    json_error_t err;
    json_t *j = json_loadb(line, n - 1, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL)
        fail_msg("jansson rejected the line: %s\n%s", err.text, line);
    assert_true(json_is_object(j));
    assert_int_equal(json_object_size(j), MW_ARRAY_LEN(keys));
    for (size_t i = 0; i < MW_ARRAY_LEN(keys); i++)
        if (json_object_get(j, keys[i]) == NULL)
            fail_msg("missing key %s in %s", keys[i], line);
    return j;
}

static const char *str(json_t *j, const char *k)
{
    json_t *v = json_object_get(j, k);
    if (!json_is_string(v))
        fail_msg("%s is not a string", k);
    return json_string_value(v);
}

static void test_http_golden(void **state)
{
    char *line = format(&http_entry);
    assert_string_equal(
        line,
        "{\"start_time\":\"2021-05-10T18:35:40.449Z\",\"method\":\"GET\",\"path\":\"/api/v1/"
        "items?q=1\",\"protocol\":\"HTTP/1.1\",\"response_code\":200,\"response_flags\":\"-\","
        "\"response_code_details\":\"via_upstream\",\"bytes_received\":12,\"bytes_sent\":612,"
        "\"duration\":7,\"x_forwarded_for\":null,\"user_agent\":\"curl/7.88.1\",\"request_id\":"
        "\"fde11243-0206-983c-bc60-b774c0886139\",\"authority\":\"server.demo:8080\","
        "\"upstream_host\":\"127.0.0.1:8080\",\"upstream_cluster\":\"inbound|8080||\","
        "\"upstream_local_address\":\"127.0.0.1:40312\",\"downstream_local_address\":\"10.248.1.3:"
        "8080\",\"downstream_remote_address\":\"10.248.1.2:51234\",\"requested_server_name\":"
        "\"outbound_.8080_._.server.demo.svc.cluster.local\",\"source_principal\":\"spiffe://"
        "example.org/ns/demo/sa/client\",\"destination_principal\":\"spiffe://example.org/ns/demo/"
        "sa/server\",\"decision\":\"allow\",\"policy\":\"demo/allow-get\"}\n");
    json_t *j = parse_line(line);
    assert_int_equal(json_integer_value(json_object_get(j, "response_code")), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_sent")), 612);
    assert_true(json_is_null(json_object_get(j, "x_forwarded_for")));
    json_decref(j);
    free(line);
}

static void test_tcp_nulls(void **state)
{
    /* A denied TCP connection: no HTTP fields, no flags given, empty policy. */
    struct mw_access_entry e = {
        .start_time_ms = 0,
        .protocol = "TCP",
        .downstream_remote_address = "10.248.1.2:40000",
        .decision = "deny",
        .policy = "",
    };
    char *line = format(&e);
    json_t *j = parse_line(line);
    assert_string_equal(str(j, "start_time"), "1970-01-01T00:00:00.000Z");
    assert_string_equal(str(j, "response_flags"), "-");
    assert_int_equal(json_integer_value(json_object_get(j, "response_code")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "duration")), 0);
    static const char *const nulls[] = {"method",
                                        "path",
                                        "user_agent",
                                        "request_id",
                                        "authority",
                                        "upstream_host",
                                        "upstream_cluster",
                                        "requested_server_name",
                                        "source_principal",
                                        "policy",
                                        "response_code_details",
                                        "upstream_local_address"};
    for (size_t i = 0; i < MW_ARRAY_LEN(nulls); i++)
        if (!json_is_null(json_object_get(j, nulls[i])))
            fail_msg("%s is not null in %s", nulls[i], line);
    assert_string_equal(str(j, "decision"), "deny");
    json_decref(j);
    free(line);
}

#define FFFD "\xef\xbf\xbd"

static void test_hostile_values(void **state)
{
    /* What the peer sent, and what a JSON reader must get back. */
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"/a\"b", "/a\"b"},
        {"/x\",\"decision\":\"allow", "/x\",\"decision\":\"allow"},
        {"line\nbreak\r\n{\"injected\":1}", "line\nbreak\r\n{\"injected\":1}"},
        {"back\\slash\\", "back\\slash\\"},
        {"\x01\x02\x1f\x7f", "\x01\x02\x1f\x7f"},
        {"\xff\xfe\xfd", FFFD FFFD FFFD},
        {"\xed\xa0\x80 surrogate", FFFD FFFD FFFD " surrogate"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"trunc\xe2\x82", "trunc" FFFD FFFD},
        {"", ""},
    };
    static const char *const fields[] = {"path", "user_agent", "authority", "x_forwarded_for",
                                         "requested_server_name"};
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct mw_access_entry e = http_entry;
        e.path = e.user_agent = e.authority = e.x_forwarded_for = e.requested_server_name =
            cases[i].in;
        char *line = format(&e);
        json_t *j = parse_line(line);
        assert_string_equal(str(j, "decision"), "allow");
        assert_string_equal(str(j, "policy"), "demo/allow-get");
        for (size_t k = 0; k < MW_ARRAY_LEN(fields); k++)
            assert_string_equal(str(j, fields[k]), cases[i].want);
        json_decref(j);
        free(line);
    }
}

static void test_times(void **state)
{
    struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {1, "1970-01-01T00:00:00.001Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {951782400000 + 999, "2000-02-29T00:00:00.999Z"},
        {253402300799999, "9999-12-31T23:59:59.999Z"},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct mw_access_entry e = http_entry;
        e.start_time_ms = cases[i].ms;
        char *line = format(&e);
        json_t *j = parse_line(line);
        assert_string_equal(str(j, "start_time"), cases[i].want);
        json_decref(j);
        free(line);
    }
    /* Year 10000 does not fit RFC 3339: refused, and nothing is left in the buffer. */
    struct mw_access_entry e = http_entry;
    e.start_time_ms = 253402300800000;
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1u << 20);
    mw_assert_ok(mw_dynbuf_add_cstr(&b, "prev\n"));
    mw_assert_fails(mw_accesslog_format(&e, &b), MW_E_INPUT);
    assert_string_equal(mw_dynbuf_cstr(&b), "prev\n");
    mw_dynbuf_free(&b);
}

static void test_write_stream(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    mw_assert_ok(mw_accesslog_write(f, &http_entry));
    struct mw_access_entry e = http_entry;
    e.decision = "deny";
    e.response_code = 403;
    mw_assert_ok(mw_accesslog_write(f, &e));
    fclose(f);
    /* Two lines, each a complete object. */
    char *nl = strchr(buf, '\n');
    assert_non_null(nl);
    char first[4096];
    size_t n = (size_t)(nl - buf) + 1;
    assert_true(n < sizeof(first));
    memcpy(first, buf, n);
    first[n] = '\0';
    json_t *a = parse_line(first);
    json_t *b = parse_line(nl + 1);
    assert_int_equal(json_integer_value(json_object_get(b, "response_code")), 403);
    assert_string_equal(str(b, "decision"), "deny");
    json_decref(a);
    json_decref(b);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_golden),    cmocka_unit_test(test_tcp_nulls),
        cmocka_unit_test(test_hostile_values), cmocka_unit_test(test_times),
        cmocka_unit_test(test_write_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
