/*
 * Differential test: meshward's HTTP/1.1 parser against Debian's
 * libhttp-parser (nodejs/http-parser 2.9). Built and run by
 * test_net_differential.sh.
 *
 * - valid: both must accept and agree on method, target, version, every
 *   header (name and value, in order), keep-alive, body bytes and where the
 *   message ends.
 * - stricter: http-parser accepts, meshward rejects by design; each case
 *   says why. The test fails if http-parser starts rejecting one (move it)
 *   or if meshward accepts it.
 * - invalid: both reject.
 */
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <meshward/net.h>

struct msg {
    char method[32];
    char url[512];
    char hname[64][128];
    char hval[64][512];
    int nh;
    int nh_head;
    int last_was_value;
    char body[4096];
    size_t body_n;
    int complete;
    int keep_alive;
    int major, minor;
    int chunked;
    size_t consumed;
};

static void app(char *dst, size_t cap, const char *p, size_t n)
{
    size_t have = strlen(dst);
    if (have + n >= cap)
        n = cap - have - 1;
    memcpy(dst + have, p, n);
    dst[have + n] = 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct msg *m = p->data;
    app(m->url, sizeof(m->url), at, n);
    return 0;
}
static int on_hf(http_parser *p, const char *at, size_t n)
{
    struct msg *m = p->data;
    if (m->last_was_value || m->nh == 0) {
        if (m->nh >= 64)
            return 1;
        m->nh++;
        m->hname[m->nh - 1][0] = 0;
        m->hval[m->nh - 1][0] = 0;
    }
    m->last_was_value = 0;
    app(m->hname[m->nh - 1], 128, at, n);
    return 0;
}
static int on_hv(http_parser *p, const char *at, size_t n)
{
    struct msg *m = p->data;
    m->last_was_value = 1;
    app(m->hval[m->nh - 1], 512, at, n);
    return 0;
}
static int on_hc(http_parser *p)
{
    struct msg *m = p->data;
    snprintf(m->method, sizeof(m->method), "%s", http_method_str(p->method));
    m->keep_alive = http_should_keep_alive(p);
    m->major = p->http_major;
    m->minor = p->http_minor;
    m->chunked = (p->flags & F_CHUNKED) != 0;
    m->nh_head = m->nh; /* later fields are trailers */
    return 0;
}
static int on_body(http_parser *p, const char *at, size_t n)
{
    struct msg *m = p->data;
    if (m->body_n + n > sizeof(m->body))
        return 1;
    memcpy(m->body + m->body_n, at, n);
    m->body_n += n;
    return 0;
}
static int on_mc(http_parser *p)
{
    struct msg *m = p->data;
    m->complete = 1;
    http_parser_pause(p, 1); /* stop at the end of the first message */
    return 0;
}

/* 1 when http-parser accepts one complete message. */
static int ref_parse(const char *in, size_t n, struct msg *m)
{
    memset(m, 0, sizeof(*m));
    http_parser_settings s = {0};
    s.on_url = on_url;
    s.on_header_field = on_hf;
    s.on_header_value = on_hv;
    s.on_headers_complete = on_hc;
    s.on_body = on_body;
    s.on_message_complete = on_mc;
    http_parser p;
    http_parser_init(&p, HTTP_REQUEST);
    p.data = m;
    size_t r = http_parser_execute(&p, &s, in, n);
    enum http_errno e = HTTP_PARSER_ERRNO(&p);
    m->consumed = r;
    m->nh = m->nh_head;
    if (e != HPE_OK && e != HPE_PAUSED)
        return 0;
    return m->complete;
}

/* 1 when meshward accepts one complete message. */
static int mw_parse(const char *in, size_t n, struct msg *m, const char **why)
{
    memset(m, 0, sizeof(*m));
    static struct mw_http_head h;
    struct mw_http_error err = {0};
    ssize_t r = mw_http_parse_request(mw_slice_make(in, n), NULL, &h, &err);
    if (r <= 0) {
        *why = r == 0 ? "incomplete head" : err.reason;
        return 0;
    }
    snprintf(m->method, sizeof(m->method), "%.*s", (int)h.method.n, (const char *)h.method.p);
    snprintf(m->url, sizeof(m->url), "%.*s", (int)h.target.n, (const char *)h.target.p);
    for (size_t i = 0; i < h.nheaders && i < 64; i++) {
        snprintf(m->hname[i], 128, "%.*s", (int)h.headers[i].name.n,
                 (const char *)h.headers[i].name.p);
        snprintf(m->hval[i], 512, "%.*s", (int)h.headers[i].value.n,
                 (const char *)h.headers[i].value.p);
    }
    m->nh = (int)h.nheaders;
    m->keep_alive = h.keep_alive;
    m->major = 1;
    m->minor = h.version_minor;
    m->chunked = h.framing == MW_HTTP_BODY_CHUNKED;
    struct mw_http_body b;
    mw_http_body_init(&b, &h, NULL);
    size_t off = (size_t)r;
    while (!mw_http_body_done(&b)) {
        mw_slice data;
        ssize_t k = mw_http_body_decode(&b, mw_slice_make(in + off, n - off), &data, &err);
        if (k < 0) {
            *why = err.reason;
            return 0;
        }
        if (k == 0) {
            *why = "incomplete body";
            return 0;
        }
        if (m->body_n + data.n > sizeof(m->body))
            return 0;
        memcpy(m->body + m->body_n, data.p, data.n);
        m->body_n += data.n;
        off += (size_t)k;
    }
    m->consumed = off;
    m->complete = 1;
    return 1;
}

/* http-parser keeps trailing whitespace of a value; RFC 9110 §5.5 excludes it. */
static void rtrim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = 0;
}

static int compare(const char *name, struct msg *a, struct msg *b)
{
    int bad = 0;
#define DIFF(cond, ...)                \
    do {                               \
        if (cond) {                    \
            printf("DIFF %s: ", name); \
            printf(__VA_ARGS__);       \
            printf("\n");              \
            bad = 1;                   \
        }                              \
    } while (0)
    DIFF(strcmp(a->method, b->method) != 0, "method %s vs %s", a->method, b->method);
    DIFF(strcmp(a->url, b->url) != 0, "target %s vs %s", a->url, b->url);
    DIFF(a->major != b->major || a->minor != b->minor, "version");
    DIFF(a->nh != b->nh, "header count %d vs %d", a->nh, b->nh);
    for (int i = 0; i < a->nh && i < b->nh; i++) {
        rtrim(b->hval[i]);
        DIFF(strcmp(a->hname[i], b->hname[i]) != 0, "header %d name %s vs %s", i, a->hname[i],
             b->hname[i]);
        DIFF(strcmp(a->hval[i], b->hval[i]) != 0, "header %d value '%s' vs '%s'", i, a->hval[i],
             b->hval[i]);
    }
    DIFF(a->keep_alive != b->keep_alive, "keep-alive %d vs %d", a->keep_alive, b->keep_alive);
    DIFF(a->chunked != b->chunked, "chunked %d vs %d", a->chunked, b->chunked);
    DIFF(a->body_n != b->body_n || memcmp(a->body, b->body, a->body_n) != 0,
         "body %zu vs %zu bytes", a->body_n, b->body_n);
    DIFF(a->consumed != b->consumed, "message end %zu vs %zu", a->consumed, b->consumed);
    return bad;
}

struct tcase {
    const char *name;
    const char *in;
    const char *why; /* stricter: the reason meshward rejects */
};

#define H "Host: example.com\r\n"
static const struct tcase valid[] = {
    {"GET", "GET / HTTP/1.1\r\n" H "\r\n", NULL},
    {"GET query", "GET /a/b?c=d&e=%20f HTTP/1.1\r\n" H "Accept: */*\r\n\r\n", NULL},
    {"HTTP/1.0", "GET /index.html HTTP/1.0\r\n\r\n", NULL},
    {"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", NULL},
    {"HTTP/1.1 close", "GET / HTTP/1.1\r\n" H "Connection: close\r\n\r\n", NULL},
    {"POST CL", "POST /v1/svid HTTP/1.1\r\n" H "Content-Length: 11\r\n\r\nhello world", NULL},
    {"POST CL 0", "POST / HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n", NULL},
    {"POST chunked",
     "POST / HTTP/1.1\r\n" H
     "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
     NULL},
    {"chunked ext",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n", NULL},
    {"chunked trailer",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
     NULL},
    {"chunked upper hex",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
     NULL},
    {"TE gzip, chunked",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n", NULL},
    {"many headers",
     "GET / HTTP/1.1\r\n" H "User-Agent: curl/7.88.1\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n"
     "Cookie: a=b; c=d\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\nX-Empty:\r\n\r\n",
     NULL},
    {"OWS", "GET / HTTP/1.1\r\n" H "X-A:   padded\t \r\n\r\n", NULL},
    {"tab inside value", "GET / HTTP/1.1\r\n" H "X-A: a\tb\r\n\r\n", NULL},
    {"absolute-form", "GET http://example.com/x?y=1 HTTP/1.1\r\n" H "\r\n", NULL},
    {"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", NULL},
    {"OPTIONS *", "OPTIONS * HTTP/1.1\r\n" H "\r\n", NULL},
    {"PUT", "PUT /x HTTP/1.1\r\n" H "Content-Length: 3\r\n\r\nabc", NULL},
    {"DELETE", "DELETE /x/1 HTTP/1.1\r\n" H "\r\n", NULL},
    {"PATCH", "PATCH /x HTTP/1.1\r\n" H "Content-Length: 2\r\n\r\n{}", NULL},
    {"HEAD", "HEAD / HTTP/1.1\r\n" H "\r\n", NULL},
    {"leading CRLF", "\r\nGET / HTTP/1.1\r\n" H "\r\n", NULL},
    {"pipelined (first only)", "GET /1 HTTP/1.1\r\n" H "\r\nGET /2 HTTP/1.1\r\n" H "\r\n", NULL},
    {"body then next", "POST / HTTP/1.1\r\n" H "Content-Length: 2\r\n\r\nokGET / HTTP/1.1\r\n\r\n",
     NULL},
    {"obs-text value", "GET / HTTP/1.1\r\n" H "X-Name: caf\xc3\xa9\r\n\r\n", NULL},
    {"percent target", "GET /%7Euser/a%2Fb HTTP/1.1\r\n" H "\r\n", NULL},
    {"leading zero CL", "POST / HTTP/1.1\r\n" H "Content-Length: 03\r\n\r\nabc", NULL},
    {"Expect", "POST / HTTP/1.1\r\n" H "Expect: 100-continue\r\nContent-Length: 1\r\n\r\nx", NULL},
};

static const struct tcase stricter[] = {
    {"bare LF", "GET / HTTP/1.1\n" H "\n", "bare LF desynchronises CRLF-only peers"},
    {"bare LF in fields", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", "bare LF"},
    {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     "RFC 9112 §6.1: faulty framing"},
    {"obs-fold", "GET / HTTP/1.1\r\n" H "X-A: a\r\n b\r\n\r\n", "RFC 9112 §5.2 obs-fold"},
    {"no Host", "GET / HTTP/1.1\r\n\r\n", "RFC 9112 §3.2: HTTP/1.1 needs Host"},
    {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "RFC 9112 §3.2"},
    {"HTTP/1.2", "GET / HTTP/1.2\r\n" H "\r\n", "505 for anything but 1.0 and 1.1"},
    {"fragment", "GET /a#frag HTTP/1.1\r\n" H "\r\n", "fragments are never sent; ambiguous path"},
    {"chunk ext with LF",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n1;a\nb\r\nx\r\n0\r\n\r\n",
     "bare LF inside a chunk extension"},
    {"chunk size with space",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n",
     "BWS after chunk size"},
    {"asterisk with GET", "GET * HTTP/1.1\r\n" H "\r\n", "RFC 9112 §3.2.4: OPTIONS only"},
    {"CONNECT origin-form", "CONNECT / HTTP/1.1\r\n" H "\r\n",
     "RFC 9112 §3.2.3: authority-form only"},
    {"same CL list", "POST / HTTP/1.1\r\n" H "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx",
     "http-parser refuses; meshward accepts identical values (RFC 9110 §8.6) -- inverse case"},
    {"space before colon", "GET / HTTP/1.1\r\n" H "Content-Length : 0\r\n\r\n",
     "RFC 9112 §5.1: MUST reject whitespace before the colon"},
    {"two spaces", "GET  / HTTP/1.1\r\n" H "\r\n",
     "RFC 9112 §3: exactly one SP; lenient splitting differs between parsers"},
    {"HTTP/0.9", "GET /\r\n\r\n", "HTTP/0.9 has no headers and no framing; never valid on a mesh"},
};

static const struct tcase invalid[] = {
    {"CL+TE",
     "POST / HTTP/1.1\r\n" H "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     "RFC 9112 §6.1: CL with TE is the classic smuggling vector"},
    {"TE: chunked, identity",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, identity\r\n\r\n",
     "identity is not a transfer coding since RFC 7230; chunked not last"},
    {"TE: identity", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: identity\r\n\r\n",
     "unknown coding: 501"},
    {"TE: gzip (no chunked)", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n",
     "RFC 9112 §6.3: request length unknowable"},
    {"TE obs-fold",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n , chunked\r\n\r\n0\r\n\r\n",
     "obs-fold hides a coding from other parsers"},
    {"CL mismatch", "POST / HTTP/1.1\r\n" H "Content-Length: 1\r\nContent-Length: 2\r\n\r\nx",
     NULL},
    {"CL not a number", "POST / HTTP/1.1\r\n" H "Content-Length: abc\r\n\r\n", NULL},
    {"control char in value",
     "GET / HTTP/1.1\r\n" H "X: a\x01"
     "b\r\n\r\n",
     NULL},
    {"bad method char", "GE(T / HTTP/1.1\r\n" H "\r\n", NULL},
    {"chunk size not hex", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\nzz\r\n",
     NULL},
    {"chunk data too long",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n", NULL},
    {"lowercase version", "GET / http/1.1\r\n" H "\r\n", NULL},
};

int main(void)
{
    int pass = 0, failn = 0;
    struct msg a, b;
    const char *why = NULL;
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        const struct tcase *c = &valid[i];
        size_t n = strlen(c->in);
        int mo = mw_parse(c->in, n, &a, &why);
        int ro = ref_parse(c->in, n, &b);
        if (!mo || !ro) {
            printf("FAIL valid %s: meshward %s (%s), http-parser %s (%s)\n", c->name,
                   mo ? "accepts" : "rejects", mo ? "" : why, ro ? "accepts" : "rejects",
                   http_errno_name((enum http_errno)0));
            failn++;
            continue;
        }
        if (compare(c->name, &a, &b)) {
            failn++;
            continue;
        }
        pass++;
    }
    printf("valid: %d agree\n", pass);
    for (size_t i = 0; i < sizeof(stricter) / sizeof(stricter[0]); i++) {
        const struct tcase *c = &stricter[i];
        size_t n = strlen(c->in);
        int mo = mw_parse(c->in, n, &a, &why);
        int ro = ref_parse(c->in, n, &b);
        int inverse = strstr(c->why, "inverse") != NULL;
        if (inverse ? (mo && !ro) : (!mo && ro)) {
            printf("stricter %-24s meshward %s%s; http-parser %s -- %s\n", c->name,
                   mo ? "accepts" : "rejects: ", mo ? "" : why, ro ? "accepts" : "rejects", c->why);
            pass++;
        } else {
            printf("FAIL stricter %s: meshward %s (%s), http-parser %s\n", c->name,
                   mo ? "accepts" : "rejects", mo ? "" : why, ro ? "accepts" : "rejects");
            failn++;
        }
    }
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        const struct tcase *c = &invalid[i];
        size_t n = strlen(c->in);
        int mo = mw_parse(c->in, n, &a, &why);
        int ro = ref_parse(c->in, n, &b);
        if (!mo && !ro) {
            pass++;
        } else {
            printf("FAIL invalid %s: meshward %s, http-parser %s\n", c->name,
                   mo ? "accepts" : "rejects", ro ? "accepts" : "rejects");
            failn++;
        }
    }
    printf("%d passed, %d failed\n", pass, failn);
    return failn ? 1 : 0;
}
