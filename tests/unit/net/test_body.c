#include "testutil.h"

#include <string.h>

#include <meshward/net.h>

struct chunk_case {
    const char *name;
    const char *in;
    int want;         /* 1 done, 0 needs more, -1 error */
    const char *body; /* decoded body when done */
    size_t rest;      /* bytes left after the body when done */
};

static const struct chunk_case cases[] = {
    {"one chunk", "5\r\nhello\r\n0\r\n\r\n", 1, "hello", 0},
    {"two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 1, "hello world", 0},
    {"upper hex", "A\r\n0123456789\r\n0\r\n\r\n", 1, "0123456789", 0},
    {"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", 1, "hello", 0},
    {"extension", "5;name=value\r\nhello\r\n0;x\r\n\r\n", 1, "hello", 0},
    {"quoted ext", "5;a=\"b c\"\r\nhello\r\n0\r\n\r\n", 1, "hello", 0},
    {"trailers", "5\r\nhello\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n", 1, "hello", 0},
    {"empty body", "0\r\n\r\n", 1, "", 0},
    {"pipelined rest", "0\r\n\r\nGET / ", 1, "", 6},
    {"truncated size", "5", 0, NULL, 0},
    {"truncated data", "5\r\nhel", 0, NULL, 0},
    {"truncated end", "5\r\nhello\r\n0\r\n", 0, NULL, 0},
    {"truncated trailer", "0\r\nX: y", 0, NULL, 0},
    {"no size", "\r\nhello\r\n0\r\n\r\n", -1, NULL, 0},
    {"negative", "-5\r\nhello\r\n0\r\n\r\n", -1, NULL, 0},
    {"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", -1, NULL, 0},
    {"space before ext", "5 ;a\r\nhello\r\n0\r\n\r\n", -1, NULL, 0},
    {"space after size", "5 \r\nhello\r\n0\r\n\r\n", -1, NULL, 0},
    {"bare LF size", "5\nhello\r\n0\r\n\r\n", -1, NULL, 0},
    {"bare LF after data", "5\r\nhello\n0\r\n\r\n", -1, NULL, 0},
    {"data too long", "5\r\nhelloX\r\n0\r\n\r\n", -1, NULL, 0},
    {"overflow", "fffffffffffffffff\r\n", -1, NULL, 0},
    {"too big", "4000000000000001\r\n", -1, NULL, 0},
    {"LF in ext", "5;a\nb\r\nhello\r\n0\r\n\r\n", -1, NULL, 0},
    {"NUL in ext", "5;a\0b\r\nhello\r\n0\r\n\r\n", -1, NULL, 0},
    {"trailer obs-fold", "0\r\nX: a\r\n b\r\n\r\n", -1, NULL, 0},
    {"trailer no name", "0\r\n: a\r\n\r\n", -1, NULL, 0},
    {"trailer space before colon", "0\r\nX : a\r\n\r\n", -1, NULL, 0},
    {"bare LF at end", "0\r\n\n", -1, NULL, 0},
};

/* Decode in pieces of at most step bytes; returns 1 done, 0 more, -1 error. */
static int run(const char *in, size_t n, size_t step, struct mw_dynbuf *out, size_t *rest,
               const struct mw_http_limits *lim)
{
    struct mw_http_body b;
    mw_http_body_init_chunked(&b, lim);
    size_t off = 0;
    while (!mw_http_body_done(&b) && off < n) {
        size_t end = off + step < n ? off + step : n;
        mw_slice piece = mw_slice_make(in + off, end - off);
        while (piece.n > 0 && !mw_http_body_done(&b)) {
            mw_slice data;
            struct mw_http_error err;
            ssize_t r = mw_http_body_decode(&b, piece, &data, &err);
            if (r < 0)
                return -1;
            if (data.n > 0 && mw_failed(mw_dynbuf_add_slice(out, data)))
                return -1;
            if (r == 0)
                break;
            piece = mw_slice_sub(piece, (size_t)r, piece.n - (size_t)r);
            off += (size_t)r;
        }
        if (!mw_http_body_done(&b))
            off = end;
    }
    *rest = n - off;
    return mw_http_body_done(&b) ? 1 : 0;
}

static size_t len_of(const struct chunk_case *c)
{
    if (strcmp(c->name, "NUL in ext") == 0)
        return 19;
    return strlen(c->in);
}

static void test_chunked_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        const struct chunk_case *c = &cases[i];
        size_t n = len_of(c);
        /* All at once, byte by byte, and in threes: the same verdict. */
        static const size_t steps[] = {(size_t)-1 / 2, 1, 3};
        for (size_t s = 0; s < MW_ARRAY_LEN(steps); s++) {
            struct mw_dynbuf out;
            mw_dynbuf_init(&out, 1 << 16);
            size_t rest = 0;
            int got = run(c->in, n, steps[s], &out, &rest, NULL);
            if (got != c->want)
                fail_msg("%s (step %zu): got %d, want %d", c->name, steps[s], got, c->want);
            if (got == 1) {
                if (!mw_slice_eq_cstr(mw_dynbuf_slice(&out), c->body))
                    fail_msg("%s: body \"%s\", want \"%s\"", c->name, mw_dynbuf_cstr(&out),
                             c->body);
                if (rest != c->rest)
                    fail_msg("%s: %zu bytes left, want %zu", c->name, rest, c->rest);
            }
            mw_dynbuf_free(&out);
        }
    }
}

static void test_chunked_limits(void **state)
{
    (void)state;
    struct mw_http_limits lim = {.max_chunk_ext = 8, .max_trailer = 16};
    struct mw_dynbuf out;
    mw_dynbuf_init(&out, 1 << 16);
    size_t rest;
    const char *ok_ext = "1;abcdefg\r\nx\r\n0\r\n\r\n";
    assert_int_equal(run(ok_ext, strlen(ok_ext), 1000, &out, &rest, &lim), 1);
    const char *long_ext = "1;abcdefgh\r\nx\r\n0\r\n\r\n";
    assert_int_equal(run(long_ext, strlen(long_ext), 1000, &out, &rest, &lim), -1);
    const char *ok_tr = "0\r\nA: 12345678901\r\n\r\n";
    assert_int_equal(run(ok_tr, strlen(ok_tr), 1000, &out, &rest, &lim), 1);
    const char *long_tr = "0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    assert_int_equal(run(long_tr, strlen(long_tr), 1000, &out, &rest, &lim), -1);
    mw_dynbuf_free(&out);
}

static void test_fixed_length(void **state)
{
    (void)state;
    struct mw_http_head h = {.framing = MW_HTTP_BODY_LENGTH, .content_length = 5};
    struct mw_http_body b;
    mw_http_body_init(&b, &h, NULL);
    mw_slice data;
    struct mw_http_error err;
    assert_int_equal(mw_http_body_decode(&b, mw_slice_cstr("hel"), &data, &err), 3);
    assert_true(mw_slice_eq_cstr(data, "hel"));
    assert_false(mw_http_body_done(&b));
    mw_assert_fails(mw_http_body_eof(&b), MW_E_INPUT);
    assert_int_equal(mw_http_body_decode(&b, mw_slice_cstr("loGET"), &data, &err), 2);
    assert_true(mw_slice_eq_cstr(data, "lo"));
    assert_true(mw_http_body_done(&b));
    assert_int_equal(mw_http_body_decode(&b, mw_slice_cstr("GET"), &data, &err), 0);
    mw_assert_ok(mw_http_body_eof(&b));

    h.content_length = 0;
    mw_http_body_init(&b, &h, NULL);
    assert_true(mw_http_body_done(&b));
    h.framing = MW_HTTP_BODY_NONE;
    mw_http_body_init(&b, &h, NULL);
    assert_true(mw_http_body_done(&b));

    h.framing = MW_HTTP_BODY_CLOSE;
    mw_http_body_init(&b, &h, NULL);
    assert_int_equal(mw_http_body_decode(&b, mw_slice_cstr("abc"), &data, &err), 3);
    assert_false(mw_http_body_done(&b));
    mw_assert_ok(mw_http_body_eof(&b));
    assert_true(mw_http_body_done(&b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_table),
        cmocka_unit_test(test_chunked_limits),
        cmocka_unit_test(test_fixed_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
