#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include <meshward/net.h>

struct req_case {
    const char *name;
    const char *in;
    int want;           /* 0 = incomplete, 1 = complete, else an error status */
    const char *reason; /* substring of the error reason, or NULL */
};

static const struct req_case req_cases[] = {
    /* accepted */
    {"simple GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1, NULL},
    {"HTTP/1.0 no host", "GET / HTTP/1.0\r\n\r\n", 1, NULL},
    {"absolute-form", "GET http://a.example/x?y HTTP/1.1\r\nHost: a.example\r\n\r\n", 1, NULL},
    {"authority-form CONNECT", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 1,
     NULL},
    {"asterisk OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 1, NULL},
    {"leading CRLF", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 1, NULL},
    {"same CL twice",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 1, NULL},
    {"CL list agreeing", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 1, NULL},
    {"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     1, NULL},
    {"empty value", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n", 1, NULL},
    {"obs-text value", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", 1, NULL},
    {"tab in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n", 1, NULL},
    /* incomplete */
    {"empty", "", 0, NULL},
    {"truncated request line", "GET / HTT", 0, NULL},
    {"truncated CR", "GET / HTTP/1.1\r", 0, NULL},
    {"truncated head", "GET / HTTP/1.1\r\nHost: a\r\n", 0, NULL},
    {"truncated final CR", "GET / HTTP/1.1\r\nHost: a\r\n\r", 0, NULL},
    /* rejected: framing and smuggling */
    {"CL and TE",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
     "together"},
    {"TE and CL",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400,
     "together"},
    {"CL mismatch", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
     400, "conflicting"},
    {"CL list mismatch", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400,
     "conflicting"},
    {"CL sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400, "decimal"},
    {"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400, "decimal"},
    {"CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400, "decimal"},
    {"CL overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
     400, "decimal"},
    {"CL space inside", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400,
     "decimal"},
    {"TE chunked, identity",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 501, "unknown"},
    {"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501,
     "unknown"},
    {"TE chunked, gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
     400, "final"},
    {"TE gzip only", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "final"},
    {"TE chunked twice",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
     "chunked\r\n\r\n",
     400, "twice"},
    {"TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 501,
     "unknown"},
    {"TE chunked with param",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;a=b\r\n\r\n", 400, "bare coding"},
    {"TE empty element", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n", 400,
     "empty"},
    {"TE obs-fold", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n ,chunked\r\n\r\n",
     400, "obs-fold"},
    {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0"},
    {"space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400,
     "whitespace before colon"},
    {"tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400, "whitespace before colon"},
    {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", 400, "obs-fold"},
    {"no colon", "GET / HTTP/1.1\r\nHost: a\r\nXyz\r\n\r\n", 400, "colon"},
    {"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400, "empty field name"},
    {"bad name char", "GET / HTTP/1.1\r\nHost: a\r\nX(y): x\r\n\r\n", 400, "field name"},
    /* rejected: bytes */
    {"bare LF", "GET / HTTP/1.1\nHost: a\n\n", 400, "bare LF"},
    {"bare LF in fields", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400, "bare LF"},
    {"bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, "bare CR"},
    {"bare CR line", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n", 400, "bare CR"},
    {"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400, "control"},
    {"VT in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x0b\r\n\r\n", 400, "control"},
    /* rejected: request line */
    {"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "two spaces"},
    {"two spaces before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400, "two spaces"},
    {"HTTP/0.9", "GET /\r\n\r\n", 400, "without HTTP version"},
    {"tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "method"},
    {"lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400, "malformed"},
    {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "not supported"},
    {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "not supported"},
    {"HTTP/1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, "malformed"},
    {"trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "malformed"},
    {"no host", "GET / HTTP/1.1\r\n\r\n", 400, "without Host"},
    {"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host"},
    {"bad host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "Host"},
    {"relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "form"},
    {"asterisk GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "asterisk"},
    {"CONNECT origin-form", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "host:port"},
    {"CONNECT no port", "CONNECT a.example HTTP/1.1\r\nHost: a\r\n\r\n", 400, "host:port"},
    {"fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "fragment"},
    {"8-bit target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "target"},
    {"NUL in target", "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "target"},
};

/* "\0" inside the literal is real input: take the length from the table entry itself. */
static size_t case_len(const struct req_case *c)
{
    if (strcmp(c->name, "NUL in target") == 0)
        return 28;
    if (strcmp(c->name, "NUL in value") == 0)
        return 35;
    return strlen(c->in);
}

static void check_case(const struct req_case *c, mw_slice in)
{
    struct mw_http_head head;
    struct mw_http_error err = {0};
    ssize_t r = mw_http_parse_request(in, NULL, &head, &err);
    if (c->want == 1) {
        if (r != (ssize_t)in.n)
            fail_msg("%s: got %zd (%d %s), want %zu", c->name, r, err.status,
                     r < 0 ? err.reason : "", in.n);
    } else if (c->want == 0) {
        if (r != MW_HTTP_INCOMPLETE)
            fail_msg("%s: got %zd (%s), want incomplete", c->name, r, r < 0 ? err.reason : "");
    } else {
        if (r != MW_HTTP_ERROR)
            fail_msg("%s: got %zd, want error %d", c->name, r, c->want);
        if (err.status != c->want)
            fail_msg("%s: status %d (%s), want %d", c->name, err.status, err.reason, c->want);
        if (c->reason != NULL && strstr(err.reason, c->reason) == NULL)
            fail_msg("%s: reason \"%s\", want \"%s\"", c->name, err.reason, c->reason);
    }
}

static void test_request_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < MW_ARRAY_LEN(req_cases); i++) {
        const struct req_case *c = &req_cases[i];
        size_t n = case_len(c);
        check_case(c, mw_slice_make(c->in, n));
        /* Every proper prefix of a complete or rejected head is incomplete or the same verdict. */
        for (size_t k = 0; k < n; k++) {
            struct mw_http_head head;
            struct mw_http_error err = {0};
            ssize_t r = mw_http_parse_request(mw_slice_make(c->in, k), NULL, &head, &err);
            if (r > 0)
                fail_msg("%s: prefix %zu complete (%zd)", c->name, k, r);
            if (r < 0 && (c->want < 2 || err.status != c->want))
                fail_msg("%s: prefix %zu fails with %d %s", c->name, k, err.status, err.reason);
        }
    }
}

static void test_nul_in_value(void **state)
{
    (void)state;
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    struct mw_http_head head;
    struct mw_http_error err = {0};
    assert_int_equal(mw_http_parse_request(mw_slice_make(in, sizeof(in) - 1), NULL, &head, &err),
                     MW_HTTP_ERROR);
    assert_int_equal(err.status, 400);
    assert_non_null(strstr(err.reason, "NUL"));
}

static void test_fields_and_framing(void **state)
{
    (void)state;
    static const char in[] = "POST /v1/svid?x=1 HTTP/1.1\r\nHost: ca.example:8443\r\n"
                             "Content-Length: 0012\r\nX-A:  spaced  \r\nConnection: close\r\n"
                             "Expect: 100-continue\r\n\r\nBODY";
    struct mw_http_head h;
    struct mw_http_error err;
    mw_slice buf = mw_slice_make(in, sizeof(in) - 1);
    ssize_t r = mw_http_parse_request(buf, NULL, &h, &err);
    assert_int_equal(r, (ssize_t)(sizeof(in) - 1 - 4));
    assert_true(mw_slice_eq_cstr(h.method, "POST"));
    assert_true(mw_slice_eq_cstr(h.target, "/v1/svid?x=1"));
    assert_true(mw_slice_eq_cstr(h.host, "ca.example:8443"));
    assert_int_equal(h.form, MW_HTTP_TARGET_ORIGIN);
    assert_int_equal(h.version_minor, 1);
    assert_int_equal(h.framing, MW_HTTP_BODY_LENGTH);
    assert_int_equal(h.content_length, 12);
    assert_false(h.keep_alive);
    assert_true(h.expect_continue);
    assert_int_equal(h.nheaders, 5);
    const struct mw_http_header *x = mw_http_head_find(&h, "x-a");
    assert_non_null(x);
    assert_true(mw_slice_eq_cstr(x->value, "spaced"));
    /* Zero-copy: slices point into the input. */
    assert_ptr_equal(h.method.p, (const uint8_t *)in);
    assert_true(x->value.p > (const uint8_t *)in && x->value.p < (const uint8_t *)in + r);
}

static void test_keep_alive(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool ka;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n", false},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n", false},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct mw_http_head h;
        struct mw_http_error err;
        assert_true(mw_http_parse_request(mw_slice_cstr(cases[i].in), NULL, &h, &err) > 0);
        if (h.keep_alive != cases[i].ka)
            fail_msg("case %zu: keep_alive %d, want %d", i, h.keep_alive, cases[i].ka);
    }
}

static void test_limits(void **state)
{
    (void)state;
    struct mw_http_limits lim = {.max_head = 64, .max_line = 32, .max_headers = 2};
    struct mw_http_head h;
    struct mw_http_error err;
    /* A line longer than max_line: 431 even before it ends. */
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "GET /%040d", 0);
    assert_int_equal(mw_http_parse_request(mw_slice_make(buf, (size_t)n), &lim, &h, &err),
                     MW_HTTP_ERROR);
    assert_int_equal(err.status, 431);
    /* Too many fields. */
    const char *many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    assert_int_equal(mw_http_parse_request(mw_slice_cstr(many), &lim, &h, &err), MW_HTTP_ERROR);
    assert_int_equal(err.status, 431);
    assert_non_null(strstr(err.reason, "too many"));
    /* The whole head over max_head, each line within max_line. */
    const char *big = "GET / HTTP/1.1\r\nHost: a\r\nAaaaaaaaaa: 1111111111111\r\n"
                      "Bbbbbbbbbb: 2222222222222\r\n\r\n";
    assert_int_equal(mw_http_parse_request(mw_slice_cstr(big), &lim, &h, &err), MW_HTTP_ERROR);
    assert_int_equal(err.status, 431);
    /* An endless stream of empty lines is bounded too. */
    char crlf[200];
    for (size_t i = 0; i < sizeof(crlf); i += 2) {
        crlf[i] = '\r';
        crlf[i + 1] = '\n';
    }
    assert_int_equal(mw_http_parse_request(mw_slice_make(crlf, sizeof(crlf)), &lim, &h, &err),
                     MW_HTTP_ERROR);
    assert_int_equal(err.status, 431);
    /* The default field limit: 101 fields. */
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1 << 16);
    mw_assert_ok(mw_dynbuf_add_cstr(&b, "GET / HTTP/1.1\r\nHost: a\r\n"));
    for (int i = 0; i < 100; i++)
        mw_assert_ok(mw_dynbuf_addf(&b, "X-%d: v\r\n", i));
    mw_assert_ok(mw_dynbuf_add_cstr(&b, "\r\n"));
    assert_int_equal(mw_http_parse_request(mw_dynbuf_slice(&b), NULL, &h, &err), MW_HTTP_ERROR);
    assert_int_equal(err.status, 431);
    mw_dynbuf_free(&b);
}

struct resp_case {
    const char *name;
    const char *in;
    const char *method;
    int want; /* 1 ok, 0 incomplete, else error status */
    enum mw_http_framing framing;
    int status;
};

static const struct resp_case resp_cases[] = {
    {"200 CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", "GET", 1, MW_HTTP_BODY_LENGTH, 200},
    {"200 chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", 1,
     MW_HTTP_BODY_CHUNKED, 200},
    {"200 close", "HTTP/1.1 200 OK\r\n\r\n", "GET", 1, MW_HTTP_BODY_CLOSE, 200},
    {"200 gzip only", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "GET", 1,
     MW_HTTP_BODY_CLOSE, 200},
    {"204", "HTTP/1.1 204 No Content\r\n\r\n", "GET", 1, MW_HTTP_BODY_NONE, 204},
    {"304 with CL", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", "GET", 1,
     MW_HTTP_BODY_NONE, 304},
    {"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "HEAD", 1, MW_HTTP_BODY_NONE, 200},
    {"CONNECT 200", "HTTP/1.1 200 OK\r\n\r\n", "CONNECT", 1, MW_HTTP_BODY_NONE, 200},
    {"100", "HTTP/1.1 100 Continue\r\n\r\n", "POST", 1, MW_HTTP_BODY_NONE, 100},
    {"empty reason", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", "GET", 1, MW_HTTP_BODY_LENGTH,
     200},
    {"no reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "GET", 1, MW_HTTP_BODY_LENGTH, 200},
    {"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", 1, MW_HTTP_BODY_LENGTH,
     200},
    {"truncated", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n", "GET", 0, 0, 0},
    {"CL+TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "GET",
     400, 0, 0},
    {"CL mismatch", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", "GET", 400,
     0, 0},
    {"2 digit status", "HTTP/1.1 20 OK\r\n\r\n", "GET", 400, 0, 0},
    {"4 digit status", "HTTP/1.1 2000 OK\r\n\r\n", "GET", 400, 0, 0},
    {"status 099", "HTTP/1.1 099 OK\r\n\r\n", "GET", 400, 0, 0},
    {"bare LF", "HTTP/1.1 200 OK\n\n", "GET", 400, 0, 0},
    {"HTTP/2", "HTTP/2.0 200 OK\r\n\r\n", "GET", 505, 0, 0},
    {"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", "GET", 400, 0, 0},
    {"control in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", "GET", 400, 0, 0},
};

static void test_response_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < MW_ARRAY_LEN(resp_cases); i++) {
        const struct resp_case *c = &resp_cases[i];
        struct mw_http_head h;
        struct mw_http_error err = {0};
        mw_slice in = mw_slice_cstr(c->in);
        ssize_t r = mw_http_parse_response(in, mw_slice_cstr(c->method), NULL, &h, &err);
        if (c->want == 1) {
            if (r != (ssize_t)in.n)
                fail_msg("%s: got %zd (%s)", c->name, r, r < 0 ? err.reason : "");
            if (h.framing != c->framing || h.status != c->status)
                fail_msg("%s: framing %d status %d", c->name, h.framing, h.status);
        } else if (c->want == 0) {
            if (r != 0)
                fail_msg("%s: got %zd, want incomplete", c->name, r);
        } else if (r != MW_HTTP_ERROR || err.status != c->want) {
            fail_msg("%s: got %zd status %d, want error %d", c->name, r, err.status, c->want);
        }
    }
}

static void test_helpers(void **state)
{
    (void)state;
    assert_true(mw_http_is_token(mw_slice_cstr("X-Forwarded-For")));
    assert_false(mw_http_is_token(mw_slice_cstr("X Y")));
    assert_false(mw_http_is_token(mw_slice_cstr("")));
    assert_true(mw_http_is_field_value(mw_slice_cstr("a b")));
    assert_false(mw_http_is_field_value(mw_slice_cstr("a\r\nb")));
    assert_false(mw_http_is_field_value(mw_slice_cstr(" a")));
    assert_string_equal(mw_http_status_text(431), "Request Header Fields Too Large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_table),
        cmocka_unit_test(test_nul_in_value),
        cmocka_unit_test(test_fields_and_framing),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_response_table),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
