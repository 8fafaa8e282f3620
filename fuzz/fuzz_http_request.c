/*
 * Request heads and chunked bodies come straight from the network. The
 * parser must give a verdict on any bytes without reading out of bounds;
 * every slice it returns must lie inside the input; and feeding the input
 * in pieces must give the same verdict as feeding it at once (the server
 * calls the parser again on every read).
 */
#include <stdlib.h>
#include <string.h>

#include <meshward/net.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void in_buf(mw_slice s, const uint8_t *data, size_t size)
{
    if (s.n == 0)
        return;
    if (s.p < data || s.p + s.n > data + size)
        abort();
}

static struct mw_http_head head, head2;

static ssize_t parse(const uint8_t *data, size_t size, struct mw_http_head *h,
                     struct mw_http_error *err)
{
    static const struct mw_http_limits lim = {.max_head = 2048, .max_line = 512, .max_headers = 16};
    return mw_http_parse_request(mw_slice_make(data, size), &lim, h, err);
}

/* Chunked decoding of in with pieces of step bytes: verdict, body length and hash, consumed. */
static int chunked(mw_slice in, size_t step, uint64_t *body_n, uint64_t *hash, size_t *used)
{
    struct mw_http_body b;
    mw_http_body_init_chunked(&b, NULL);
    size_t off = 0;
    *body_n = 0;
    *hash = 1469598103934665603ull;
    while (off < in.n && !mw_http_body_done(&b)) {
        size_t end = off + step < in.n ? off + step : in.n;
        mw_slice piece = mw_slice_make(in.p + off, end - off);
        mw_slice d;
        struct mw_http_error err;
        ssize_t r = mw_http_body_decode(&b, piece, &d, &err);
        if (r < 0)
            return -1;
        if ((size_t)r > piece.n)
            abort();
        if (d.n > 0 && (d.p < piece.p || d.p + d.n > piece.p + (size_t)r))
            abort();
        for (size_t i = 0; i < d.n; i++)
            *hash = (*hash ^ d.p[i]) * 1099511628211ull;
        *body_n += d.n;
        off += (size_t)r;
        if (r == 0)
            break;
    }
    *used = off;
    return mw_http_body_done(&b) ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mw_http_error err = {0}, err2 = {0};
    ssize_t r = parse(data, size, &head, &err);
    if (r > (ssize_t)size)
        abort();
    if (r < 0 && (err.reason == NULL || err.status < 400 || err.status > 599))
        abort();
    if (r > 0) {
        if (head.nheaders > 16)
            abort();
        in_buf(head.method, data, (size_t)r);
        in_buf(head.target, data, (size_t)r);
        in_buf(head.host, data, (size_t)r);
        for (size_t i = 0; i < head.nheaders; i++) {
            in_buf(head.headers[i].name, data, (size_t)r);
            in_buf(head.headers[i].value, data, (size_t)r);
            if (!mw_http_is_token(head.headers[i].name))
                abort();
            if (!mw_http_is_field_value(head.headers[i].value))
                abort();
        }
        if (head.framing == MW_HTTP_BODY_CLOSE)
            abort();
    }
    /* Prefixes: incomplete, or the same verdict as the whole. */
    size_t limit = size < 600 ? size : 600;
    for (size_t k = 0; k < limit; k++) {
        ssize_t p = parse(data, k, &head2, &err2);
        if (p == MW_HTTP_INCOMPLETE)
            continue;
        if (p != r)
            abort();
        if (p < 0 && err2.status != err.status)
            abort();
        break;
    }
    /* The chunked decoder on what follows the head (or on everything). */
    mw_slice body = r > 0 ? mw_slice_make(data + r, size - (size_t)r) : mw_slice_make(data, size);
    uint64_t n1, h1, n2, h2;
    size_t u1, u2;
    int v1 = chunked(body, body.n + 1, &n1, &h1, &u1);
    int v2 = chunked(body, 1, &n2, &h2, &u2);
    if (v1 != v2)
        abort();
    if (v1 >= 0 && (n1 != n2 || h1 != h2 || u1 != u2))
        abort();
    return 0;
}
