/*
 * Response heads come from upstreams the sidecar and the client do not
 * trust. Same invariants as for requests: bounds, slices inside the input,
 * prefixes give the same verdict, and the body framing is decided.
 */
#include <stdlib.h>

#include <meshward/net.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void in_buf(mw_slice s, const uint8_t *data, size_t size)
{
    if (s.n > 0 && (s.p < data || s.p + s.n > data + size))
        abort();
}

static struct mw_http_head head, head2;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *methods[] = {"GET", "HEAD", "CONNECT", "POST"};
    if (size < 1)
        return 0;
    mw_slice method = mw_slice_cstr(methods[data[0] & 3]);
    data++;
    size--;
    static const struct mw_http_limits lim = {.max_head = 2048, .max_line = 512, .max_headers = 16};
    struct mw_http_error err = {0}, err2 = {0};
    ssize_t r = mw_http_parse_response(mw_slice_make(data, size), method, &lim, &head, &err);
    if (r > (ssize_t)size)
        abort();
    if (r > 0) {
        if (head.status < 100 || head.status > 999 || head.nheaders > 16)
            abort();
        in_buf(head.reason, data, (size_t)r);
        for (size_t i = 0; i < head.nheaders; i++) {
            in_buf(head.headers[i].name, data, (size_t)r);
            in_buf(head.headers[i].value, data, (size_t)r);
        }
        if (head.framing == MW_HTTP_BODY_CLOSE && head.keep_alive)
            abort();
        /* Whatever the framing, the body decoder terminates on the rest. */
        struct mw_http_body b;
        mw_http_body_init(&b, &head, &lim);
        mw_slice rest = mw_slice_make(data + r, size - (size_t)r);
        while (rest.n > 0 && !mw_http_body_done(&b)) {
            mw_slice d;
            ssize_t k = mw_http_body_decode(&b, rest, &d, &err);
            if (k <= 0)
                break;
            rest = mw_slice_make(rest.p + k, rest.n - (size_t)k);
        }
    }
    size_t limit = size < 600 ? size : 600;
    for (size_t k = 0; k < limit; k++) {
        ssize_t p = mw_http_parse_response(mw_slice_make(data, k), method, &lim, &head2, &err2);
        if (p == MW_HTTP_INCOMPLETE)
            continue;
        if (p != r || (p < 0 && err2.status != err.status))
            abort();
        break;
    }
    return 0;
}
