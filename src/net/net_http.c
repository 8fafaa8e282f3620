/*
 * A strict HTTP/1.1 head parser (RFC 9112 message syntax, RFC 9110
 * semantics). Strict where two parsers could otherwise disagree on the
 * framing of a message: that disagreement is request smuggling, and a
 * security proxy sits between two parsers by construction.
 */
#include <string.h>

#include "net/net_internal.h"

const struct mw_http_limits mw_http_limits_default = {
    .max_head = 16384,
    .max_line = 8192,
    .max_headers = 100,
    .max_chunk_ext = 256,
    .max_trailer = 4096,
};

/* RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 * "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
#define T1(c) [c] = 1
const uint8_t mw_http_tchar[256] = {
    T1('!'), T1('#'), T1('$'), T1('%'), T1('&'), T1('\''), T1('*'), T1('+'), T1('-'), T1('.'),
    T1('^'), T1('_'), T1('`'), T1('|'), T1('~'), T1('0'),  T1('1'), T1('2'), T1('3'), T1('4'),
    T1('5'), T1('6'), T1('7'), T1('8'), T1('9'), T1('A'),  T1('B'), T1('C'), T1('D'), T1('E'),
    T1('F'), T1('G'), T1('H'), T1('I'), T1('J'), T1('K'),  T1('L'), T1('M'), T1('N'), T1('O'),
    T1('P'), T1('Q'), T1('R'), T1('S'), T1('T'), T1('U'),  T1('V'), T1('W'), T1('X'), T1('Y'),
    T1('Z'), T1('a'), T1('b'), T1('c'), T1('d'), T1('e'),  T1('f'), T1('g'), T1('h'), T1('i'),
    T1('j'), T1('k'), T1('l'), T1('m'), T1('n'), T1('o'),  T1('p'), T1('q'), T1('r'), T1('s'),
    T1('t'), T1('u'), T1('v'), T1('w'), T1('x'), T1('y'),  T1('z'),
};
#undef T1

bool mw_http_slice_ieq(mw_slice a, const char *b)
{
    size_t n = strlen(b);
    if (a.n != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (mw_http_lower(a.p[i]) != mw_http_lower((uint8_t)b[i]))
            return false;
    }
    return true;
}

bool mw_http_is_token(mw_slice s)
{
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        if (!mw_http_tchar[s.p[i]])
            return false;
    }
    return true;
}

/* RFC 9110 §5.5: field-vchar = VCHAR / obs-text, with SP and HTAB inside. */
static bool is_field_byte(uint8_t c)
{
    return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f);
}

bool mw_http_is_field_value(mw_slice s)
{
    for (size_t i = 0; i < s.n; i++) {
        if (!is_field_byte(s.p[i]))
            return false;
    }
    return s.n == 0 ||
           (s.p[0] != ' ' && s.p[0] != '\t' && s.p[s.n - 1] != ' ' && s.p[s.n - 1] != '\t');
}

static ssize_t fail(struct mw_http_error *err, int status, const char *reason, size_t offset)
{
    err->status = status;
    err->reason = reason;
    err->offset = offset;
    return MW_HTTP_ERROR;
}

static struct mw_http_limits limits_of(const struct mw_http_limits *lim)
{
    struct mw_http_limits l = mw_http_limits_default;
    if (lim == NULL)
        return l;
    if (lim->max_head)
        l.max_head = lim->max_head;
    if (lim->max_line)
        l.max_line = lim->max_line;
    if (lim->max_headers)
        l.max_headers = lim->max_headers;
    if (lim->max_chunk_ext)
        l.max_chunk_ext = lim->max_chunk_ext;
    if (lim->max_trailer)
        l.max_trailer = lim->max_trailer;
    if (l.max_head > SIZE_MAX / 2)
        l.max_head = SIZE_MAX / 2;
    if (l.max_line > l.max_head)
        l.max_line = l.max_head; /* and max_line + 2 cannot wrap */
    if (l.max_headers > MW_HTTP_MAX_HEADERS)
        l.max_headers = MW_HTTP_MAX_HEADERS;
    return l;
}

/*
 * The line starting at s: 1 with *line (without CRLF) and *next, 0 when it
 * is not complete yet, MW_HTTP_ERROR. Only the bytes up to the line limit
 * are looked at, so that a prefix gets the same verdict as the whole.
 *
 * RFC 9112 §2.2 lets a recipient accept a bare LF as a line terminator. We
 * do not: a front end that accepts it and a back end that does not (or the
 * other way round) see different messages.
 */
static int next_line(mw_slice buf, size_t s, const struct mw_http_limits *lim, mw_slice *line,
                     size_t *next, struct mw_http_error *err)
{
    size_t stop;
    bool head_bound = s >= lim->max_head || lim->max_line + 2 >= lim->max_head - s;
    if (head_bound)
        stop = lim->max_head;
    else
        stop = s + lim->max_line + 2;
    size_t end = buf.n < stop ? buf.n : stop;
    for (size_t i = s; i < end; i++) {
        if (buf.p[i] != '\n')
            continue;
        if (i == s || buf.p[i - 1] != '\r')
            return (int)fail(err, 400, "bare LF line ending (CRLF required)", i);
        *line = mw_slice_make(buf.p + s, i - 1 - s);
        *next = i + 1;
        return 1;
    }
    if (buf.n >= stop)
        return (int)fail(err, 431, head_bound ? "head too large" : "line too long", s);
    return 0;
}

/* A parsed list element of a field value (RFC 9110 §5.6.1), OWS trimmed. */
static bool list_next(mw_slice v, size_t *pos, mw_slice *elem)
{
    if (*pos > v.n)
        return false;
    size_t i = *pos;
    size_t comma = mw_slice_find(v, ',', i);
    size_t a = i, b = comma;
    while (a < b && (v.p[a] == ' ' || v.p[a] == '\t'))
        a++;
    while (b > a && (v.p[b - 1] == ' ' || v.p[b - 1] == '\t'))
        b--;
    *elem = mw_slice_make(v.p + a, b - a);
    *pos = comma + 1;
    return true;
}

/* Content-Length = 1*DIGIT (RFC 9110 §8.6); leading zeros are digits too. */
static bool parse_length(mw_slice s, uint64_t *out)
{
    if (s.n == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s.p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    /* Lengths beyond 2^62 are nonsense and would overflow sums downstream. */
    if (v > ((uint64_t)1 << 62))
        return false;
    *out = v;
    return true;
}

struct field_state {
    bool have_cl;
    uint64_t cl;
    bool have_te;
    bool chunked_seen;
    bool chunked_last;
    size_t host_count;
    bool conn_close;
    bool conn_keep_alive;
};

/* Per-field rules for the fields that decide framing and connection reuse. */
static ssize_t field_semantics(struct field_state *st, struct mw_http_head *head,
                               const struct mw_http_header *h, size_t off,
                               struct mw_http_error *err)
{
    mw_slice v = h->value;
    size_t pos = 0;
    mw_slice e;
    if (mw_http_slice_ieq(h->name, "content-length")) {
        /*
         * RFC 9110 §8.6: a list of identical values may be accepted as one;
         * differing values are an unrecoverable framing error.
         */
        while (list_next(v, &pos, &e)) {
            uint64_t n;
            if (!parse_length(e, &n))
                return fail(err, 400, "Content-Length is not a decimal number", off);
            if (st->have_cl && n != st->cl)
                return fail(err, 400, "conflicting Content-Length values", off);
            st->have_cl = true;
            st->cl = n;
        }
    } else if (mw_http_slice_ieq(h->name, "transfer-encoding")) {
        /* RFC 9112 §6.1, RFC 9110 §10.1.4 / §8.4.1 */
        st->have_te = true;
        while (list_next(v, &pos, &e)) {
            if (e.n == 0)
                return fail(err, 400, "empty Transfer-Encoding element", off);
            if (!mw_http_is_token(e))
                return fail(err, 400, "Transfer-Encoding element is not a bare coding", off);
            if (mw_http_slice_ieq(e, "chunked")) {
                /* §7: a sender MUST NOT apply chunked more than once. */
                if (st->chunked_seen)
                    return fail(err, 400, "chunked transfer coding applied twice", off);
                st->chunked_seen = true;
                st->chunked_last = true;
            } else if (mw_http_slice_ieq(e, "gzip") || mw_http_slice_ieq(e, "x-gzip") ||
                       mw_http_slice_ieq(e, "deflate") || mw_http_slice_ieq(e, "compress") ||
                       mw_http_slice_ieq(e, "x-compress")) {
                st->chunked_last = false;
            } else {
                /* §6.1: unknown coding in a request: 501. "identity" is gone since RFC 7230. */
                return fail(err, 501, "unknown transfer coding", off);
            }
        }
    } else if (mw_http_slice_ieq(h->name, "host")) {
        /* RFC 9112 §3.2: more than one Host is a 400. */
        if (++st->host_count > 1)
            return fail(err, 400, "more than one Host field", off);
        for (size_t i = 0; i < v.n; i++) {
            uint8_t c = v.p[i];
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      strchr("-._~!$&'()*+,;=%:[]", c) != NULL;
            if (!ok || c == 0)
                return fail(err, 400, "bad character in Host", off);
        }
        head->host = v;
    } else if (mw_http_slice_ieq(h->name, "connection")) {
        while (list_next(v, &pos, &e)) {
            if (mw_http_slice_ieq(e, "close"))
                st->conn_close = true;
            else if (mw_http_slice_ieq(e, "keep-alive"))
                st->conn_keep_alive = true;
        }
    } else if (mw_http_slice_ieq(h->name, "expect")) {
        if (mw_http_slice_ieq(v, "100-continue"))
            head->expect_continue = true;
    } else if (mw_http_slice_ieq(h->name, "upgrade")) {
        head->upgrade = true;
    }
    return 0;
}

/* One field line (RFC 9112 §5). */
static ssize_t parse_field(mw_slice line, size_t off, struct mw_http_header *out,
                           struct mw_http_error *err)
{
    /* §5.2: obs-fold is rejected with 400 (a server MAY, a proxy should). */
    if (line.p[0] == ' ' || line.p[0] == '\t')
        return fail(err, 400, "obs-fold (line starts with whitespace)", off);
    size_t i = 0;
    while (i < line.n && mw_http_tchar[line.p[i]])
        i++;
    if (i == line.n)
        return fail(err, 400, "field line without a colon", off);
    if (line.p[i] != ':') {
        /* §5.1: whitespace between name and colon MUST be rejected with 400. */
        if (line.p[i] == ' ' || line.p[i] == '\t')
            return fail(err, 400, "whitespace before colon", off + i);
        return fail(err, 400, "bad character in field name", off + i);
    }
    if (i == 0)
        return fail(err, 400, "empty field name", off);
    out->name = mw_slice_make(line.p, i);
    size_t a = i + 1, b = line.n;
    for (size_t k = a; k < b; k++) {
        uint8_t c = line.p[k];
        if (is_field_byte(c))
            continue;
        /* §5.5: CR, LF and NUL MUST be rejected or replaced; other CTLs too. */
        if (c == '\r')
            return fail(err, 400, "bare CR in field value", off + k);
        if (c == 0)
            return fail(err, 400, "NUL in field value", off + k);
        return fail(err, 400, "control character in field value", off + k);
    }
    while (a < b && (line.p[a] == ' ' || line.p[a] == '\t'))
        a++;
    while (b > a && (line.p[b - 1] == ' ' || line.p[b - 1] == '\t'))
        b--;
    out->value = mw_slice_make(line.p + a, b - a);
    return 0;
}

/* "HTTP/1.0" or "HTTP/1.1" (RFC 9112 §2.3). */
static ssize_t parse_version(mw_slice v, size_t off, int *minor, struct mw_http_error *err)
{
    if (v.n != 8 || memcmp(v.p, "HTTP/", 5) != 0 || v.p[5] < '0' || v.p[5] > '9' || v.p[6] != '.' ||
        v.p[7] < '0' || v.p[7] > '9')
        return fail(err, 400, "malformed HTTP version", off);
    if (v.p[5] != '1' || v.p[7] > '1')
        return fail(err, 505, "HTTP version not supported", off);
    *minor = v.p[7] - '0';
    return 0;
}

/*
 * The header section after the start line: fields up to the empty line.
 * Returns the head's total length, MW_HTTP_INCOMPLETE or MW_HTTP_ERROR.
 */
static ssize_t parse_fields(mw_slice buf, size_t pos, const struct mw_http_limits *lim,
                            struct mw_http_head *head, struct field_state *st,
                            struct mw_http_error *err)
{
    for (;;) {
        mw_slice line;
        size_t next;
        int r = next_line(buf, pos, lim, &line, &next, err);
        if (r <= 0)
            return r;
        if (line.n == 0)
            return (ssize_t)next;
        if (line.p[0] == '\r')
            return fail(err, 400, "bare CR in field line", pos);
        if (head->nheaders >= lim->max_headers)
            return fail(err, 431, "too many header fields", pos);
        struct mw_http_header *h = &head->headers[head->nheaders];
        if (parse_field(line, pos, h, err) < 0)
            return MW_HTTP_ERROR;
        head->nheaders++;
        if (field_semantics(st, head, h, pos, err) < 0)
            return MW_HTTP_ERROR;
        pos = next;
    }
}

static void head_reset(struct mw_http_head *head)
{
    head->method = head->target = head->host = head->reason = mw_slice_make(NULL, 0);
    head->form = MW_HTTP_TARGET_ORIGIN;
    head->status = 0;
    head->version_minor = 1;
    head->framing = MW_HTTP_BODY_NONE;
    head->content_length = 0;
    head->keep_alive = false;
    head->expect_continue = false;
    head->upgrade = false;
    head->nheaders = 0;
}

static bool is_scheme(mw_slice s)
{
    if (s.n == 0 || !((s.p[0] | 0x20) >= 'a' && (s.p[0] | 0x20) <= 'z'))
        return false;
    for (size_t i = 1; i < s.n; i++) {
        uint8_t c = s.p[i];
        bool ok = ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                  c == '-' || c == '.';
        if (!ok)
            return false;
    }
    return true;
}

/* RFC 9112 §3.2: which form the target has, and whether the method allows it. */
static ssize_t classify_target(struct mw_http_head *head, size_t off, struct mw_http_error *err)
{
    mw_slice t = head->target;
    bool connect = mw_slice_eq_cstr(head->method, "CONNECT");
    for (size_t i = 0; i < t.n; i++) {
        /*
         * Visible ASCII only; a fragment is never sent (RFC 9112 §3.2) and
         * would make the path that authorization sees ambiguous.
         */
        if (t.p[i] < 0x21 || t.p[i] > 0x7e)
            return fail(err, 400, "bad character in request target", off + i);
        if (t.p[i] == '#')
            return fail(err, 400, "fragment in request target", off + i);
    }
    if (connect) {
        /* §3.2.3: authority-form = uri-host ":" port, for CONNECT only. */
        size_t colon = t.n;
        while (colon > 0 && t.p[colon - 1] != ':')
            colon--;
        if (colon <= 1 || colon == t.n || mw_slice_find(t, '/', 0) != t.n ||
            mw_slice_find(t, '@', 0) != t.n)
            return fail(err, 400, "CONNECT target is not host:port", off);
        for (size_t i = colon; i < t.n; i++) {
            if (t.p[i] < '0' || t.p[i] > '9')
                return fail(err, 400, "CONNECT target port is not a number", off + i);
        }
        head->form = MW_HTTP_TARGET_AUTHORITY;
        return 0;
    }
    if (t.n == 1 && t.p[0] == '*') {
        /* §3.2.4: asterisk-form is for a server-wide OPTIONS only. */
        if (!mw_slice_eq_cstr(head->method, "OPTIONS"))
            return fail(err, 400, "asterisk-form target outside OPTIONS", off);
        head->form = MW_HTTP_TARGET_ASTERISK;
        return 0;
    }
    if (t.p[0] == '/') {
        head->form = MW_HTTP_TARGET_ORIGIN;
        return 0;
    }
    size_t colon = mw_slice_find(t, ':', 0);
    if (colon < t.n && is_scheme(mw_slice_sub(t, 0, colon)) && t.n >= colon + 3 &&
        t.p[colon + 1] == '/' && t.p[colon + 2] == '/') {
        head->form = MW_HTTP_TARGET_ABSOLUTE;
        return 0;
    }
    return fail(err, 400, "request target is not origin-, absolute-, authority- or asterisk-form",
                off);
}

ssize_t mw_http_parse_request(mw_slice buf, const struct mw_http_limits *limp,
                              struct mw_http_head *head, struct mw_http_error *err)
{
    struct mw_http_limits lim = limits_of(limp);
    head_reset(head);
    size_t pos = 0;
    mw_slice line;
    size_t next;
    /* §2.2: a server SHOULD ignore at least one empty line before the request line. */
    for (;;) {
        int r = next_line(buf, pos, &lim, &line, &next, err);
        if (r <= 0)
            return r;
        if (line.n > 0)
            break;
        pos = next;
    }
    size_t off = pos;
    /* §3: request-line = method SP request-target SP HTTP-version */
    size_t i = 0;
    while (i < line.n && mw_http_tchar[line.p[i]])
        i++;
    if (i == 0)
        return fail(err, 400, "request line does not start with a method", off);
    if (i == line.n || line.p[i] != ' ')
        return fail(err, 400, "bad character in method", off + i);
    head->method = mw_slice_make(line.p, i);
    size_t ts = ++i;
    if (ts < line.n && line.p[ts] == ' ')
        return fail(err, 400, "two spaces in request line", off + ts);
    while (i < line.n && line.p[i] != ' ')
        i++;
    if (i == ts)
        return fail(err, 400, "empty request target", off + ts);
    if (i == line.n)
        return fail(err, 400, "request line without HTTP version", off + i);
    head->target = mw_slice_make(line.p + ts, i - ts);
    mw_slice version = mw_slice_sub(line, i + 1, line.n - i - 1);
    if (version.n > 0 && version.p[0] == ' ')
        return fail(err, 400, "two spaces in request line", off + i + 1);
    if (parse_version(version, off + i + 1, &head->version_minor, err) < 0)
        return MW_HTTP_ERROR;
    if (classify_target(head, off + ts, err) < 0)
        return MW_HTTP_ERROR;

    struct field_state st = {0};
    ssize_t len = parse_fields(buf, next, &lim, head, &st, err);
    if (len <= 0)
        return len;
    size_t end = (size_t)len;
    if (head->version_minor == 1 && st.host_count == 0)
        return fail(err, 400, "HTTP/1.1 request without Host", end);
    if (st.have_te) {
        /* §6.1: TE in HTTP/1.0 means faulty framing. */
        if (head->version_minor == 0)
            return fail(err, 400, "Transfer-Encoding in an HTTP/1.0 request", end);
        /*
         * §6.1: a sender MUST NOT send both; a recipient MAY reject. Rejecting
         * is the only choice that cannot desynchronise us from the next hop.
         */
        if (st.have_cl)
            return fail(err, 400, "Content-Length together with Transfer-Encoding", end);
        /* §6.3 rule 4: without chunked last, a request's length is unknowable: 400. */
        if (!st.chunked_last)
            return fail(err, 400, "chunked is not the final transfer coding", end);
        head->framing = MW_HTTP_BODY_CHUNKED;
    } else if (st.have_cl) {
        head->framing = MW_HTTP_BODY_LENGTH;
        head->content_length = st.cl;
    }
    /* RFC 9112 §9.3 */
    head->keep_alive = !st.conn_close && (head->version_minor == 1 || st.conn_keep_alive);
    return len;
}

ssize_t mw_http_parse_response(mw_slice buf, mw_slice request_method,
                               const struct mw_http_limits *limp, struct mw_http_head *head,
                               struct mw_http_error *err)
{
    struct mw_http_limits lim = limits_of(limp);
    head_reset(head);
    mw_slice line;
    size_t next;
    int r = next_line(buf, 0, &lim, &line, &next, err);
    if (r <= 0)
        return r;
    /* §4: status-line = HTTP-version SP status-code SP [ reason-phrase ] */
    if (line.n < 12 || line.p[8] != ' ')
        return fail(err, 400, "malformed status line", 0);
    if (parse_version(mw_slice_sub(line, 0, 8), 0, &head->version_minor, err) < 0)
        return MW_HTTP_ERROR;
    int status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (line.p[i] < '0' || line.p[i] > '9')
            return fail(err, 400, "status code is not three digits", i);
        status = status * 10 + (line.p[i] - '0');
    }
    if (status < 100)
        return fail(err, 400, "status code below 100", 9);
    head->status = status;
    if (line.n > 12) {
        /* The SP is required; an empty reason after it is fine. */
        if (line.p[12] != ' ')
            return fail(err, 400, "status code is not three digits", 12);
        for (size_t i = 13; i < line.n; i++) {
            if (!is_field_byte(line.p[i]))
                return fail(err, 400, "control character in reason phrase", i);
        }
        head->reason = mw_slice_sub(line, 13, line.n - 13);
    }
    struct field_state st = {0};
    ssize_t len = parse_fields(buf, next, &lim, head, &st, err);
    if (len <= 0)
        return len;
    size_t end = (size_t)len;
    if (st.have_te && (st.have_cl || head->version_minor == 0))
        return fail(err, 400,
                    st.have_cl ? "Content-Length together with Transfer-Encoding"
                               : "Transfer-Encoding in an HTTP/1.0 response",
                    end);
    head->content_length = st.have_cl ? st.cl : 0;
    head->keep_alive = !st.conn_close && (head->version_minor == 1 || st.conn_keep_alive);
    /* RFC 9112 §6.3, in order. */
    bool head_req = mw_slice_eq_cstr(request_method, "HEAD");
    bool connect = mw_slice_eq_cstr(request_method, "CONNECT");
    if (head_req || (status >= 100 && status < 200) || status == 204 || status == 304 ||
        (connect && status >= 200 && status < 300)) {
        head->framing = MW_HTTP_BODY_NONE;
    } else if (st.have_te) {
        head->framing = st.chunked_last ? MW_HTTP_BODY_CHUNKED : MW_HTTP_BODY_CLOSE;
    } else if (st.have_cl) {
        head->framing = MW_HTTP_BODY_LENGTH;
    } else {
        head->framing = MW_HTTP_BODY_CLOSE;
    }
    if (head->framing == MW_HTTP_BODY_CLOSE)
        head->keep_alive = false;
    return len;
}

const struct mw_http_header *mw_http_head_find(const struct mw_http_head *head, const char *name)
{
    for (size_t i = 0; i < head->nheaders; i++) {
        if (mw_http_slice_ieq(head->headers[i].name, name))
            return &head->headers[i];
    }
    return NULL;
}

const char *mw_http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}
