/*
 * Matchers: Istio's string forms, CIDRs, path templates, identity patterns, and path
 * normalisation. Parsing happens once when a policy is loaded; matching never allocates.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_internal.h"

/* ---------------------------------------------------------------- arena */

struct pol_arena_block {
    struct pol_arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

#define POL_BLOCK 16384

void *pol_alloc(struct pol_arena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0)
        n = sizeof(max_align_t);
    struct pol_arena_block *b = a->head;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > POL_BLOCK ? n : POL_BLOCK;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = (uint8_t *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *pol_strndup(struct pol_arena *a, const char *s, size_t n)
{
    char *d = pol_alloc(a, n + 1);
    if (d == NULL)
        return NULL;
    if (n > 0)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void pol_arena_free(struct pol_arena *a)
{
    struct pol_arena_block *b = a->head;
    while (b != NULL) {
        struct pol_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* ---------------------------------------------------------------- IPs */

static bool parse_dec_u8(const char *s, size_t n, unsigned *out)
{
    /* netip.ParseAddr refuses leading zeros ("01.2.3.4") so that octal readings cannot differ. */
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 255)
        return false;
    *out = v;
    return true;
}

static bool parse_v4(const char *s, size_t n, uint8_t out[4])
{
    size_t part = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            unsigned v;
            if (part >= 4 || !parse_dec_u8(s + start, i - start, &v))
                return false;
            out[part++] = (uint8_t)v;
            start = i + 1;
        }
    }
    return part == 4;
}

static bool parse_v6(const char *s, size_t n, uint8_t out[16])
{
    uint16_t groups[8];
    size_t ng = 0, gap = SIZE_MAX, i = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 0;
        i = 2;
        if (n == 2)
            goto done;
    } else if (n > 0 && s[0] == ':') {
        return false;
    }
    while (i < n) {
        size_t j = i;
        unsigned v = 0;
        while (j < n && j - i < 5 && mw_hex_digit((uint8_t)s[j]) >= 0) {
            v = v * 16 + (unsigned)mw_hex_digit((uint8_t)s[j]);
            j++;
        }
        if (j < n && s[j] == '.') {
            /* Embedded IPv4 in the last 32 bits. */
            uint8_t v4[4];
            if (ng > 6 || !parse_v4(s + i, n - i, v4))
                return false;
            groups[ng++] = (uint16_t)(v4[0] << 8 | v4[1]);
            groups[ng++] = (uint16_t)(v4[2] << 8 | v4[3]);
            i = n;
            break;
        }
        if (j == i || j - i > 4 || ng >= 8)
            return false;
        groups[ng++] = (uint16_t)v;
        i = j;
        if (i == n)
            break;
        if (s[i] != ':')
            return false;
        i++;
        if (i < n && s[i] == ':') {
            if (gap != SIZE_MAX)
                return false;
            gap = ng;
            i++;
            if (i == n)
                break;
        } else if (i == n) {
            return false;
        }
    }
done:
    if (gap == SIZE_MAX) {
        if (ng != 8)
            return false;
    } else if (ng > 7) {
        return false;
    }
    memset(out, 0, 16);
    size_t tail = gap == SIZE_MAX ? 0 : ng - gap;
    size_t head = gap == SIZE_MAX ? ng : gap;
    for (size_t k = 0; k < head; k++) {
        out[2 * k] = (uint8_t)(groups[k] >> 8);
        out[2 * k + 1] = (uint8_t)groups[k];
    }
    for (size_t k = 0; k < tail; k++) {
        size_t pos = 8 - tail + k;
        out[2 * pos] = (uint8_t)(groups[head + k] >> 8);
        out[2 * pos + 1] = (uint8_t)groups[head + k];
    }
    return true;
}

MW_RESULT mw_policy_ip_parse(mw_slice text, struct mw_policy_ip *out)
{
    memset(out, 0, sizeof(*out));
    const char *s = (const char *)text.p;
    if (text.n == 0 || text.n > 45)
        MW_BAIL(MW_E_INPUT, "'%.*s' is not an IP address", (int)(text.n > 64 ? 64 : text.n), s);
    if (memchr(s, ':', text.n) != NULL) {
        if (!parse_v6(s, text.n, out->b))
            MW_BAIL(MW_E_INPUT, "'%.*s' is not an IPv6 address", (int)text.n, s);
        out->family = 6;
    } else {
        if (!parse_v4(s, text.n, out->b))
            MW_BAIL(MW_E_INPUT, "'%.*s' is not an IPv4 address", (int)text.n, s);
        out->family = 4;
    }
    return MW_SUCCESS;
}

MW_RESULT pol_cidr_parse(mw_slice text, struct mw_policy_ip *ip, uint8_t *bits)
{
    size_t slash = mw_slice_find(text, '/', 0);
    MW_GUARD(mw_policy_ip_parse(mw_slice_sub(text, 0, slash), ip));
    uint64_t max = ip->family == 4 ? 32 : 128;
    if (slash == text.n) {
        *bits = (uint8_t)max;
        return MW_SUCCESS;
    }
    uint64_t b;
    MW_GUARD(mw_parse_u64(mw_slice_sub(text, slash + 1, text.n), 0, max, "CIDR prefix length", &b));
    *bits = (uint8_t)b;
    return MW_SUCCESS;
}

bool pol_cidr_contains(const struct pol_value *v, const struct mw_policy_ip *ip)
{
    if (ip->family != v->ip.family)
        return false;
    size_t full = v->bits / 8, rest = v->bits % 8;
    if (memcmp(v->ip.b, ip->b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (v->ip.b[full] & mask) == (ip->b[full] & mask);
}

/* ---------------------------------------------------------------- templates */

bool pol_is_template(const char *s, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++) {
        if (s[i] == '{' && s[i + 1] == '*' &&
            (s[i + 2] == '}' || (i + 3 < n && s[i + 2] == '*' && s[i + 3] == '}')))
            return true;
    }
    return false;
}

/*
 * Istio accepts a template only when every operator is a whole segment, {**} is the last
 * operator, and no '*', '{' or '}' appears outside an operator (pkg/config/security/security.go
 * CheckValidPathTemplate, matching Envoy's uri_template rules).
 */
MW_RESULT pol_template_check(const char *s, size_t n)
{
    bool seen_any = false;
    size_t i = 0;
    MW_ENSURE(n > 0 && s[0] == '/', MW_E_INPUT, "path template '%.*s' must start with '/'", (int)n,
              s);
    while (i < n) {
        i++; /* the '/' */
        size_t j = i;
        while (j < n && s[j] != '/')
            j++;
        const char *seg = s + i;
        size_t len = j - i;
        bool one = len == 3 && memcmp(seg, "{*}", 3) == 0;
        bool any = len == 4 && memcmp(seg, "{**}", 4) == 0;
        if (one || any) {
            MW_ENSURE(!seen_any, MW_E_INPUT,
                      "invalid path template '%.*s': {**} must be the last operator", (int)n, s);
            seen_any = any;
        } else {
            for (size_t k = 0; k < len; k++) {
                MW_ENSURE(seg[k] != '*' && seg[k] != '{' && seg[k] != '}', MW_E_INPUT,
                          "invalid path template '%.*s': operators must be whole segments and "
                          "'*', '{', '}' are not allowed outside them",
                          (int)n, s);
            }
        }
        i = j;
    }
    return MW_SUCCESS;
}

static MW_RESULT template_compile(struct pol_arena *a, const char *s, size_t n,
                                  struct pol_value *out)
{
    MW_GUARD(pol_template_check(s, n));
    size_t nseg = 0;
    for (size_t i = 0; i < n; i++)
        nseg += s[i] == '/';
    struct pol_tseg *segs = pol_alloc(a, nseg * sizeof(*segs));
    MW_ENSURE(segs != NULL, MW_E_NOMEM, "out of memory");
    size_t k = 0, i = 0;
    while (i < n) {
        i++;
        size_t j = i;
        while (j < n && s[j] != '/')
            j++;
        if (j - i == 3 && memcmp(s + i, "{*}", 3) == 0)
            segs[k].kind = 1;
        else if (j - i == 4 && memcmp(s + i, "{**}", 4) == 0)
            segs[k].kind = 2;
        segs[k].s = s + i;
        segs[k].n = j - i;
        k++;
        i = j;
    }
    out->kind = PM_TEMPLATE;
    out->segs = segs;
    out->nsegs = k;
    return MW_SUCCESS;
}

/* RFC 3986 pchar without pct-encoded: what Envoy's uri_template operators accept. */
static bool is_pchar(uint8_t c)
{
    return isalnum(c) || strchr("-._~!$&'()*+,;=:@%", c) != NULL;
}

/*
 * Envoy's rewrite of the template into a regex: {*} is [pchar]+ (one non-empty segment), {**}
 * is [pchar/]* (possibly empty). The path is matched segment by segment, {**} last.
 */
bool pol_template_match(const struct pol_value *v, mw_slice s)
{
    size_t pos = 0;
    for (size_t k = 0; k < v->nsegs; k++) {
        const struct pol_tseg *g = &v->segs[k];
        if (pos >= s.n || s.p[pos] != '/')
            return false;
        pos++;
        if (g->kind == 2) {
            for (size_t i = pos; i < s.n; i++) {
                if (s.p[i] != '/' && !is_pchar(s.p[i]))
                    return false;
            }
            return true;
        }
        size_t end = mw_slice_find(s, '/', pos);
        if (g->kind == 1) {
            if (end == pos)
                return false;
            for (size_t i = pos; i < end; i++) {
                if (!is_pchar(s.p[i]))
                    return false;
            }
        } else if (end - pos != g->n || memcmp(s.p + pos, g->s, g->n) != 0) {
            return false;
        }
        pos = end;
    }
    return pos == s.n;
}

/* ---------------------------------------------------------------- strings */

static bool eq_ci(const uint8_t *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (tolower(a[i]) != tolower((unsigned char)b[i]))
            return false;
    }
    return true;
}

static bool eq_bytes(const uint8_t *a, const char *b, size_t n, bool ci)
{
    return ci ? eq_ci(a, b, n) : memcmp(a, b, n) == 0;
}

/* Istio's StringMatcherWithPrefix forms; presence is "non-empty" unless the caller knew better. */
bool pol_str_match(const struct pol_value *v, mw_slice s, bool ci)
{
    switch (v->kind) {
    case PM_EXACT:
        return s.n == v->n && eq_bytes(s.p, v->s, v->n, ci);
    case PM_PREFIX:
        return s.n >= v->n && eq_bytes(s.p, v->s, v->n, ci);
    case PM_SUFFIX:
        return s.n >= v->n && eq_bytes(s.p + s.n - v->n, v->s, v->n, ci);
    case PM_PRESENCE:
        return s.n > 0;
    default:
        return false;
    }
}

/* Glob with '*' as ".*" over t: the namespace patterns become regexes of that shape. */
bool pol_glob(const char *g, size_t gn, const uint8_t *t, size_t tn)
{
    size_t gi = 0, ti = 0, star = SIZE_MAX, mark = 0;
    while (ti < tn) {
        if (gi < gn && g[gi] == '*') {
            star = gi++;
            mark = ti;
        } else if (gi < gn && (uint8_t)g[gi] == t[ti]) {
            gi++;
            ti++;
        } else if (star != SIZE_MAX) {
            gi = star + 1;
            ti = ++mark;
        } else {
            return false;
        }
    }
    while (gi < gn && g[gi] == '*')
        gi++;
    return gi == gn;
}

/*
 * namespaces: [x] is the regex ".*\/ns/x/.*" on the principal (generator.go srcNamespace), so
 * the namespace is read from the SPIFFE ID. The regex is unanchored on both sides: any "/ns/"
 * followed by text matching the glob and then a '/'.
 */
bool pol_ns_glob_match(const struct pol_value *v, mw_slice id)
{
    for (size_t i = 0; i + 4 <= id.n; i++) {
        if (memcmp(id.p + i, "/ns/", 4) != 0)
            continue;
        size_t start = i + 4;
        for (size_t j = start; j < id.n; j++) {
            if (id.p[j] == '/' && pol_glob(v->s, v->n, id.p + start, j - start))
                return true;
        }
    }
    return false;
}

/*
 * serviceAccounts: [ns/sa] is "spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?" (generator.go
 * srcServiceAccount); identity has no "spiffe://", so the trust domain is the non-empty text
 * before "/ns/".
 */
bool pol_sa_match(const struct pol_value *v, mw_slice id)
{
    for (size_t i = 1; i + 4 + v->n + 1 <= id.n; i++) {
        if (memcmp(id.p + i, "/ns/", 4) != 0 || memcmp(id.p + i + 4, v->s, v->n) != 0 ||
            id.p[i + 4 + v->n] != '/')
            continue;
        size_t r = i + 4 + v->n + 1; /* after "/ns/<ns>/" */
        for (size_t k = r; k + 3 + v->n2 <= id.n; k++) {
            /* (.+/|) : k == r, or the text r..k is non-empty and ends in '/' */
            if (k != r && !(k - r >= 2 && id.p[k - 1] == '/'))
                continue;
            if (memcmp(id.p + k, "sa/", 3) != 0 || memcmp(id.p + k + 3, v->s2, v->n2) != 0)
                continue;
            size_t t = k + 3 + v->n2;
            if (t == id.n || (id.p[t] == '/' && t + 1 < id.n))
                return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------------- values */

MW_RESULT pol_value_parse(struct pol_arena *a, uint8_t attr, const char *s, size_t n,
                          const char *policy_ns, struct pol_value *out)
{
    memset(out, 0, sizeof(*out));
    switch (attr) {
    case PA_SOURCE_IP:
    case PA_REMOTE_IP:
    case PA_DEST_IP:
        out->kind = PM_CIDR;
        return pol_cidr_parse(mw_slice_make(s, n), &out->ip, &out->bits);
    case PA_PORT: {
        uint64_t port;
        MW_GUARD(mw_parse_u64(mw_slice_make(s, n), 0, 65535, "port", &port));
        out->kind = PM_PORT;
        out->port = (uint16_t)port;
        return MW_SUCCESS;
    }
    case PA_NAMESPACE:
        out->kind = PM_NS_GLOB;
        out->s = pol_strndup(a, s, n);
        out->n = n;
        MW_ENSURE(out->s != NULL, MW_E_NOMEM, "out of memory");
        return MW_SUCCESS;
    case PA_SERVICE_ACCOUNT: {
        const char *slash = memchr(s, '/', n);
        out->kind = PM_SA;
        if (slash == NULL) {
            /* "<sa>" alone means the policy's own namespace (authorization_policy.proto). */
            out->s = policy_ns;
            out->n = strlen(policy_ns);
            out->s2 = pol_strndup(a, s, n);
            out->n2 = n;
        } else {
            out->s = pol_strndup(a, s, (size_t)(slash - s));
            out->n = (size_t)(slash - s);
            out->s2 = pol_strndup(a, slash + 1, n - (size_t)(slash - s) - 1);
            out->n2 = n - (size_t)(slash - s) - 1;
        }
        MW_ENSURE(out->s != NULL && out->s2 != NULL, MW_E_NOMEM, "out of memory");
        return MW_SUCCESS;
    }
    case PA_PATH:
        if (pol_is_template(s, n))
            return template_compile(a, pol_strndup(a, s, n), n, out);
        /* security.go CheckValidPathTemplate refuses '{' and '}' in every path, not only in
         * templates ("/a/{b}", "/{***}"). */
        MW_ENSURE(memchr(s, '{', n) == NULL && memchr(s, '}', n) == NULL, MW_E_INPUT,
                  "invalid or unsupported path '%.*s': contains '{' or '}' beyond a supported "
                  "path template",
                  (int)n, s);
        break;
    default:
        break;
    }
    /* matcher/string.go: "*" presence, "*x" suffix, "x*" prefix, anything else exact. */
    if (n == 1 && s[0] == '*') {
        out->kind = PM_PRESENCE;
        return MW_SUCCESS;
    }
    if (n > 0 && s[0] == '*') {
        out->kind = PM_SUFFIX;
        s++;
        n--;
    } else if (n > 0 && s[n - 1] == '*') {
        out->kind = PM_PREFIX;
        n--;
    } else {
        out->kind = PM_EXACT;
    }
    char *d = pol_strndup(a, s, n);
    MW_ENSURE(d != NULL, MW_E_NOMEM, "out of memory");
    if (attr == PA_HOST) {
        /* hosts compare case-insensitively (authorization_policy.proto Operation.hosts). */
        for (size_t i = 0; i < n; i++)
            d[i] = (char)tolower((unsigned char)d[i]);
    }
    out->s = d;
    out->n = n;
    if (attr == PA_PRINCIPAL && out->kind != PM_SUFFIX) {
        /*
         * A principal of exactly five parts whose trust domain is cluster.local or the mesh's
         * matches the mesh's trust domain and its aliases (trustdomain/bundle.go
         * ReplaceTrustDomainAliases); keep the rest and let the engine supply the domains.
         */
        size_t parts = 1;
        for (size_t i = 0; i < n; i++)
            parts += d[i] == '/';
        const char *slash = memchr(d, '/', n);
        if (parts == 5 && out->kind == PM_EXACT && slash != NULL && slash != d) {
            out->kind = PM_PRINCIPAL_TD;
            out->s2 = d; /* trust domain as written */
            out->n2 = (size_t)(slash - d);
            out->s = slash;
            out->n = n - (size_t)(slash - d);
        }
    }
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- labels */

bool pol_labels_subset(const struct pol_policy *p, const char *const *k, const char *const *v,
                       size_t n)
{
    for (size_t i = 0; i < p->nlabels; i++) {
        bool found = false;
        for (size_t j = 0; j < n && !found; j++)
            found = strcmp(p->labels[i].k, k[j]) == 0 && strcmp(p->labels[i].v, v[j]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- paths */

struct pbuf {
    char *p;
    size_t n;
};

static bool put(struct pbuf *b, char c)
{
    if (b->n + 1 >= MW_POLICY_MAX_PATH)
        return false;
    b->p[b->n++] = c;
    return true;
}

static bool is_unreserved(int c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/*
 * One pass of percent handling. %00 is refused outright (Istio normalization doc: rejected with
 * 400). Unreserved characters are decoded (RFC 3986 §6.2.2.2); %2F and %5C only when decode_slash
 * (DECODE_AND_MERGE_SLASHES); other escapes are kept, hex upper-cased (§6.2.2.1). Decoding happens
 * once, never twice, as in Envoy.
 */
static MW_RESULT pct_pass(mw_slice in, bool decode_slash, bool decode_all, struct pbuf *out)
{
    for (size_t i = 0; i < in.n; i++) {
        uint8_t c = in.p[i];
        if (c == '%' && i + 2 < in.n + 0 && mw_hex_digit(in.p[i + 1]) >= 0 &&
            mw_hex_digit(in.p[i + 2]) >= 0) {
            int v = mw_hex_digit(in.p[i + 1]) * 16 + mw_hex_digit(in.p[i + 2]);
            MW_ENSURE(v != 0, MW_E_INPUT, "path contains %%00");
            if (decode_all || is_unreserved(v) || (decode_slash && (v == '/' || v == '\\'))) {
                MW_ENSURE(put(out, (char)v), MW_E_LIMIT, "path too long");
            } else {
                MW_ENSURE(put(out, '%') && put(out, (char)toupper(in.p[i + 1])) &&
                              put(out, (char)toupper(in.p[i + 2])),
                          MW_E_LIMIT, "path too long");
            }
            i += 2;
            continue;
        }
        MW_ENSURE(c != 0, MW_E_INPUT, "path contains a NUL byte");
        MW_ENSURE(put(out, (char)c), MW_E_LIMIT, "path too long");
    }
    return MW_SUCCESS;
}

/* RFC 3986 §5.2.4 remove_dot_segments over a path that starts with '/', in place. */
static void remove_dots(struct pbuf *b, bool merge)
{
    size_t w = 0, r = 0, n = b->n;
    char *p = b->p;
    while (r < n) {
        /* p[r] == '/' here (the path starts with '/' and every segment ends before one). */
        size_t s = r + 1, e = s;
        while (e < n && p[e] != '/')
            e++;
        size_t len = e - s;
        if (len == 1 && p[s] == '.') {
            if (e == n)
                p[w++] = '/';
        } else if (len == 2 && p[s] == '.' && p[s + 1] == '.') {
            /*
             * The output is a run of "/seg"; ".." drops exactly the last one (§5.2.4 C), so
             * "/a/b/../c" is "/a/c". Dropping two would let "/admin/x/../y" read as "/y" and
             * slip past a DENY on "/admin/" + anything that Envoy (which reads "/admin/y") would
             * apply.
             */
            while (w > 0 && p[w - 1] != '/')
                w--;
            if (w > 0)
                w--;
            if (e == n)
                p[w++] = '/';
        } else if (len == 0 && merge && e < n) {
            /* an empty segment: dropped when merging slashes */
        } else {
            p[w++] = '/';
            memmove(p + w, p + s, len);
            w += len;
        }
        r = e;
    }
    if (w == 0)
        p[w++] = '/';
    b->n = w;
}

static mw_slice strip_query(mw_slice p)
{
    size_t q = mw_slice_find(p, '?', 0);
    size_t h = mw_slice_find(p, '#', 0);
    return mw_slice_sub(p, 0, q < h ? q : h);
}

MW_RESULT pol_path_normalize(mw_slice path, enum mw_policy_path_norm mode, char *out, size_t *outn)
{
    /* Envoy's path matcher compares the path without query string and fragment. */
    mw_slice p = strip_query(path);
    struct pbuf b = {out, 0};
    if (mode == MW_POLICY_PATH_NONE) {
        MW_ENSURE(p.n + 1 < MW_POLICY_MAX_PATH, MW_E_LIMIT, "path too long");
        memcpy(out, p.p, p.n);
        *outn = p.n;
        return MW_SUCCESS;
    }
    MW_GUARD(pct_pass(p, mode == MW_POLICY_PATH_DECODE_AND_MERGE_SLASHES, false, &b));
    /* BASE also turns backslashes into slashes (Istio normalization doc: "\da" -> "/da"). */
    for (size_t i = 0; i < b.n; i++) {
        if (b.p[i] == '\\')
            b.p[i] = '/';
    }
    if (b.n == 0 || b.p[0] != '/') {
        MW_ENSURE(b.n + 2 < MW_POLICY_MAX_PATH, MW_E_LIMIT, "path too long");
        memmove(b.p + 1, b.p, b.n);
        b.p[0] = '/';
        b.n++;
    }
    remove_dots(&b, mode != MW_POLICY_PATH_BASE);
    *outn = b.n;
    return MW_SUCCESS;
}

/*
 * Both readings refuse a path for the same content: a NUL byte or "%00" before the query (in
 * pct_pass a '%' is never consumed as a hex digit, so every "%00" is read as an escape). They
 * can only run out of room for long paths: the mesh reading is at most one byte longer than its
 * input (escapes are kept or decoded, never lengthened; one '/' may be prepended), and so is the
 * strict one (a '/' first, then segments with no more separators than the input had, plus one
 * trailing). Under MW_POLICY_MAX_PATH - 8 bytes, neither can hit the limit.
 */
int pol_path_refused(mw_slice path)
{
    if (path.n >= MW_POLICY_MAX_PATH - 8)
        return -1;
    mw_slice p = strip_query(path);
    for (size_t i = 0; i < p.n; i++) {
        if (p.p[i] == 0 || (p.p[i] == '%' && i + 2 < p.n && p.p[i + 1] == '0' && p.p[i + 2] == '0'))
            return 1;
    }
    return 0;
}

/*
 * What a lenient backend might make of the path: every escape decoded once (so %2F and %2e%2e
 * act), backslashes as slashes, dot segments removed, slashes merged, and each segment cut at ';'
 * (path parameters, as servlet containers do) and stripped of trailing dots and spaces (as
 * Windows file servers do). Compared case-insensitively by the caller.
 */
MW_RESULT pol_path_strict(mw_slice path, char *out, size_t *outn)
{
    mw_slice p = strip_query(path);
    char tmp[MW_POLICY_MAX_PATH];
    struct pbuf t = {tmp, 0};
    MW_GUARD(pct_pass(p, true, true, &t));
    struct pbuf b = {out, 0};
    MW_ENSURE(put(&b, '/'), MW_E_LIMIT, "path too long");
    size_t i = 0;
    while (i < t.n) {
        while (i < t.n && (t.p[i] == '/' || t.p[i] == '\\'))
            i++;
        size_t s = i;
        while (i < t.n && t.p[i] != '/' && t.p[i] != '\\')
            i++;
        size_t e = s;
        while (e < i && t.p[e] != ';')
            e++;
        size_t end = e;
        /* Keep "." and ".." for remove_dots; trim trailing dots/spaces of other segments. */
        bool dots =
            (e - s == 1 && t.p[s] == '.') || (e - s == 2 && t.p[s] == '.' && t.p[s + 1] == '.');
        if (!dots) {
            while (end > s && (t.p[end - 1] == '.' || t.p[end - 1] == ' '))
                end--;
        }
        if (end == s && !dots)
            continue;
        if (b.n > 1)
            MW_ENSURE(put(&b, '/'), MW_E_LIMIT, "path too long");
        for (size_t k = s; k < end; k++)
            MW_ENSURE(put(&b, t.p[k]), MW_E_LIMIT, "path too long");
    }
    if (i > 0 && (t.p[t.n - 1] == '/' || t.p[t.n - 1] == '\\') && b.n > 1)
        MW_ENSURE(put(&b, '/'), MW_E_LIMIT, "path too long");
    remove_dots(&b, true);
    *outn = b.n;
    return MW_SUCCESS;
}
