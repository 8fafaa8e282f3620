/*
 * The issuance monitor: rules over an exported issuance log.
 *
 * The log is read as the tiles on disk say, and trusted only as far as the
 * signed checkpoint vouches for it: mw_tlog_each_entry hands over each entry
 * once it matches its tile hash and fails unless those hashes make the root
 * the checkpoint signs, so every record audited is one the log committed to
 * (findings are dropped when it fails).
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include <meshward/conf.h>
#include <meshward/tlog.h>

#include "ca/ca_auth_internal.h"

#define MAX_WINDOWS 64
#define MAX_RETIRED 256
#define MAX_ENTRIES ((uint64_t)1 << 26)

struct window {
    uint8_t days;   /* bit d: weekday d (0 Sunday .. 6 Saturday) */
    int start, end; /* minutes since 00:00 UTC, [start, end) */
};

struct mw_ca_monitor_policy {
    char name[254];
    struct window windows[MAX_WINDOWS];
    size_t n_windows;   /* 0: no change-window rule */
    int64_t max_ttl_s;  /* 0: no TTL rule (registrations' maxTTL still apply) */
    uint64_t burst_max; /* 0: no burst rule */
    int64_t burst_window_s;
    char retired[MAX_RETIRED][256];
    size_t n_retired;
    bool require_registration;
};

/* ---------------------------------------------------------------- policy YAML */

#define NODE_BAIL(node, ...)                            \
    do {                                                \
        mw_node_error((node), MW_E_INPUT, __VA_ARGS__); \
        return MW_FAILURE;                              \
    } while (0)

static bool is_scalar(const struct mw_node *n)
{
    return mw_node_kind(n) == MW_NODE_SCALAR && !mw_node_is_null(n);
}

static mw_result only_keys(const struct mw_node *map, const char *const *allowed, size_t n,
                           const char *where)
{
    for (size_t i = 0; i < mw_node_len(map); i++) {
        const char *k = mw_node_str(mw_node_key_at(map, i));
        bool ok = false;
        for (size_t j = 0; j < n && !ok; j++)
            ok = k != NULL && strcmp(k, allowed[j]) == 0;
        if (!ok)
            NODE_BAIL(mw_node_key_at(map, i), "unknown field \"%s\" in %s", k != NULL ? k : "?",
                      where);
    }
    return MW_SUCCESS;
}

static mw_result duration(const struct mw_node *n, const char *what, int64_t *out)
{
    uint64_t s = 0;
    if (!is_scalar(n) || mw_failed(mw_parse_duration(mw_node_slice(n), 366 * 86400, what, &s)) ||
        s == 0) {
        mw_node_error(n, MW_E_INPUT, "%s must be a positive duration such as 1h", what);
        return MW_FAILURE;
    }
    *out = (int64_t)s;
    return MW_SUCCESS;
}

static bool two_digits(const uint8_t *p, int max, int *out)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return false;
    *out = (p[0] - '0') * 10 + (p[1] - '0');
    return *out <= max;
}

/* "HH:MM" (two digits each, as people write times), 00:00 .. 24:00. */
static mw_result hhmm(mw_slice s, int *out)
{
    int h, m;
    MW_ENSURE(s.n == 5 && s.p[2] == ':' && two_digits(s.p, 24, &h) && two_digits(s.p + 3, 59, &m),
              MW_E_INPUT, "want HH:MM");
    MW_ENSURE(h < 24 || m == 0, MW_E_INPUT, "24:MM is only 24:00");
    *out = h * 60 + m;
    return MW_SUCCESS;
}

static mw_result parse_window(const struct mw_node *w, struct window *out)
{
    static const char *const keys[] = {"days", "hours"};
    static const char *const names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    if (mw_node_kind(w) != MW_NODE_MAP)
        NODE_BAIL(w, "a change window is a mapping of days and hours");
    MW_GUARD(only_keys(w, keys, MW_ARRAY_LEN(keys), "changeWindows"));
    const struct mw_node *days = mw_node_get(w, "days");
    if (mw_node_kind(days) != MW_NODE_SEQ || mw_node_len(days) == 0)
        NODE_BAIL(days != NULL ? days : w, "days must be a non-empty list such as [Mon, Tue]");
    out->days = 0;
    for (size_t i = 0; i < mw_node_len(days); i++) {
        const struct mw_node *d = mw_node_item(days, i);
        size_t j = 0;
        while (j < 7 && !(is_scalar(d) && strcmp(mw_node_str(d), names[j]) == 0))
            j++;
        if (j == 7)
            NODE_BAIL(d, "days[%zu] is not one of Sun Mon Tue Wed Thu Fri Sat", i);
        if (out->days & (1u << j))
            NODE_BAIL(d, "day %s is listed twice", names[j]);
        out->days |= (uint8_t)(1u << j);
    }
    const struct mw_node *hours = mw_node_get(w, "hours");
    if (!is_scalar(hours))
        NODE_BAIL(hours != NULL ? hours : w, "hours must be \"HH:MM-HH:MM\" (UTC)");
    mw_slice s = mw_node_slice(hours);
    if (s.n != 11 || s.p[5] != '-' || mw_failed(hhmm(mw_slice_sub(s, 0, 5), &out->start)) ||
        mw_failed(hhmm(mw_slice_sub(s, 6, 5), &out->end)))
        NODE_BAIL(hours, "hours must be \"HH:MM-HH:MM\" (UTC)");
    /* No wrapping past midnight: two windows say that without ambiguity about the day. */
    if (out->end <= out->start)
        NODE_BAIL(hours, "hours end before they start; split a window that crosses midnight");
    return MW_SUCCESS;
}

static mw_result parse_spec(const struct mw_node *spec, struct mw_ca_monitor_policy *p)
{
    static const char *const keys[] = {"changeWindows", "maxTTL", "burst", "retiredKeys",
                                       "requireRegistration"};
    MW_GUARD(only_keys(spec, keys, MW_ARRAY_LEN(keys), "spec"));
    const struct mw_node *cw = mw_node_get(spec, "changeWindows");
    if (cw != NULL) {
        if (mw_node_kind(cw) != MW_NODE_SEQ || mw_node_len(cw) == 0 ||
            mw_node_len(cw) > MAX_WINDOWS)
            NODE_BAIL(cw, "changeWindows must be a list of 1..%d windows", MAX_WINDOWS);
        for (size_t i = 0; i < mw_node_len(cw); i++)
            MW_GUARD(parse_window(mw_node_item(cw, i), &p->windows[p->n_windows++]));
    }
    const struct mw_node *ttl = mw_node_get(spec, "maxTTL");
    if (ttl != NULL)
        MW_GUARD(duration(ttl, "maxTTL", &p->max_ttl_s));
    const struct mw_node *burst = mw_node_get(spec, "burst");
    if (burst != NULL) {
        static const char *const bkeys[] = {"max", "window"};
        if (mw_node_kind(burst) != MW_NODE_MAP)
            NODE_BAIL(burst, "burst must be a mapping of max and window");
        MW_GUARD(only_keys(burst, bkeys, MW_ARRAY_LEN(bkeys), "burst"));
        const struct mw_node *mx = mw_node_get(burst, "max");
        int64_t m = 0;
        if (mx == NULL || mw_failed(mw_node_i64(mx, 1, 1000000, &m)))
            NODE_BAIL(mx != NULL ? mx : burst, "burst.max must be an integer 1..1000000");
        p->burst_max = (uint64_t)m;
        const struct mw_node *win = mw_node_get(burst, "window");
        if (win == NULL)
            NODE_BAIL(burst, "burst needs a window such as 5m");
        MW_GUARD(duration(win, "burst.window", &p->burst_window_s));
    }
    const struct mw_node *rk = mw_node_get(spec, "retiredKeys");
    if (rk != NULL) {
        if (mw_node_kind(rk) != MW_NODE_SEQ || mw_node_len(rk) > MAX_RETIRED)
            NODE_BAIL(rk, "retiredKeys must be a list of at most %d key ids", MAX_RETIRED);
        for (size_t i = 0; i < mw_node_len(rk); i++) {
            const struct mw_node *k = mw_node_item(rk, i);
            if (!is_scalar(k) || mw_node_slice(k).n == 0 || mw_node_slice(k).n > 255)
                NODE_BAIL(k, "retiredKeys[%zu] must be a key id of 1..255 bytes", i);
            MW_GUARD(mw_ca_copy(p->retired[p->n_retired], sizeof(p->retired[0]), mw_node_slice(k),
                                "key id"));
            p->n_retired++;
        }
    }
    const struct mw_node *rr = mw_node_get(spec, "requireRegistration");
    if (rr != NULL && mw_failed(mw_node_bool(rr, &p->require_registration)))
        NODE_BAIL(rr, "requireRegistration must be true or false");
    return MW_SUCCESS;
}

static mw_result parse_policy(const struct mw_node *root, struct mw_ca_monitor_policy *p)
{
    static const char *const top[] = {"apiVersion", "kind", "metadata", "spec"};
    if (mw_node_kind(root) != MW_NODE_MAP)
        NODE_BAIL(root, "an IssuanceMonitorPolicy must be a mapping");
    MW_GUARD(only_keys(root, top, MW_ARRAY_LEN(top), "IssuanceMonitorPolicy"));
    const struct mw_node *av = mw_node_get(root, "apiVersion");
    if (!is_scalar(av) || strcmp(mw_node_str(av), "meshward.io/v1alpha1") != 0)
        NODE_BAIL(av != NULL ? av : root, "apiVersion must be meshward.io/v1alpha1");
    const struct mw_node *kind = mw_node_get(root, "kind");
    if (!is_scalar(kind) || strcmp(mw_node_str(kind), "IssuanceMonitorPolicy") != 0)
        NODE_BAIL(kind != NULL ? kind : root, "kind must be IssuanceMonitorPolicy");
    const struct mw_node *md = mw_node_get(root, "metadata");
    const struct mw_node *name = mw_node_get(md, "name");
    if (mw_node_kind(md) != MW_NODE_MAP || !is_scalar(name))
        NODE_BAIL(md != NULL ? md : root, "metadata.name is required");
    MW_GUARD(mw_ca_copy(p->name, sizeof(p->name), mw_node_slice(name), "metadata.name"));
    const struct mw_node *spec = mw_node_get(root, "spec");
    if (mw_node_kind(spec) != MW_NODE_MAP)
        NODE_BAIL(root, "missing spec mapping");
    return parse_spec(spec, p);
}

mw_result mw_ca_monitor_policy_parse(mw_slice yaml, const char *name,
                                     struct mw_ca_monitor_policy **out)
{
    *out = NULL;
    struct mw_docs *docs = NULL;
    MW_GUARD(mw_yaml_load(yaml, name, NULL, &docs));
    mw_result r = MW_SUCCESS;
    if (mw_docs_count(docs) != 1 || mw_docs_root(docs, 0) == NULL) {
        mw_error_set(MW_E_INPUT, "%s: want exactly one IssuanceMonitorPolicy document", name);
        r = MW_FAILURE;
    }
    struct mw_ca_monitor_policy *p = mw_ok(r) ? calloc(1, sizeof(*p)) : NULL;
    if (mw_ok(r) && p == NULL) {
        mw_error_set(MW_E_NOMEM, "out of memory");
        r = MW_FAILURE;
    }
    if (mw_ok(r)) {
        p->require_registration = true;
        r = parse_policy(mw_docs_root(docs, 0), p);
    }
    mw_docs_free(docs);
    if (mw_failed(r)) {
        free(p);
        return MW_FAILURE;
    }
    *out = p;
    return MW_SUCCESS;
}

mw_result mw_ca_monitor_policy_load_file(const char *path, struct mw_ca_monitor_policy **out)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1u << 20);
    mw_result r = mw_file_read(path, 1u << 20, &b);
    if (mw_ok(r))
        r = mw_ca_monitor_policy_parse(mw_dynbuf_slice(&b), path, out);
    mw_dynbuf_free(&b);
    return r;
}

void mw_ca_monitor_policy_free(struct mw_ca_monitor_policy *p)
{
    free(p);
}

/* ---------------------------------------------------------------- findings */

struct audit {
    const struct mw_ca_monitor_policy *p;
    const struct mw_ca_registrations *regs;
    struct mw_dynbuf *out;
    size_t n;
    /* for the burst rule */
    struct seen {
        char *id;
        int64_t t;
        uint64_t index;
    } * seen;
    size_t n_seen, cap_seen;
    /* for the renewal rules: every certificate, and every renewal's parent */
    struct cert {
        uint8_t serial[20];
        uint8_t serial_n;
        uint8_t id_hash[16]; /* SHA-256 of the SPIFFE ID, truncated */
        int64_t not_before, not_after;
        uint64_t index;
    } * certs;
    size_t n_certs, cap_certs;
    struct renewal {
        uint8_t parent[20];
        uint8_t parent_n;
        uint8_t id_hash[16];
        int64_t issued_at;
        uint64_t index;
    } * renewals;
    size_t n_renewals, cap_renewals;
};

static mw_result finding(struct audit *a, const char *id, const char *severity, mw_slice resource,
                         uint64_t index, const char *record_json, const char *fmt, ...)
    MW_PRINTF(7, 8);

static mw_result finding(struct audit *a, const char *id, const char *severity, mw_slice resource,
                         uint64_t index, const char *record_json, const char *fmt, ...)
{
    struct mw_dynbuf msg;
    mw_dynbuf_init(&msg, 4096);
    va_list ap;
    va_start(ap, fmt);
    mw_result r = mw_dynbuf_addv(&msg, fmt, ap);
    va_end(ap);
    struct mw_dynbuf *o = a->out;
    if (mw_ok(r))
        r = mw_dynbuf_addf(o, "{\"id\":\"%s\",\"severity\":\"%s\",\"resource\":", id, severity);
    if (mw_ok(r))
        r = mw_dynbuf_add_json_str(o, resource);
    if (mw_ok(r))
        r = mw_dynbuf_add_cstr(o, ",\"message\":");
    if (mw_ok(r))
        r = mw_dynbuf_add_json_str(o, mw_dynbuf_slice(&msg));
    if (mw_ok(r))
        r = mw_dynbuf_addf(o, ",\"evidence\":{\"log_index\":%" PRIu64 ",\"record\":%s}}\n", index,
                           record_json != NULL ? record_json : "null");
    mw_dynbuf_free(&msg);
    if (mw_ok(r))
        a->n++;
    return r;
}

static bool in_window(const struct mw_ca_monitor_policy *p, int64_t t)
{
    int64_t days = t / 86400;
    int weekday = (int)((days + 4) % 7); /* 1970-01-01 was a Thursday */
    int minute = (int)((t % 86400) / 60);
    for (size_t i = 0; i < p->n_windows; i++)
        if ((p->windows[i].days & (1u << weekday)) && minute >= p->windows[i].start &&
            minute < p->windows[i].end)
            return true;
    return false;
}

static mw_result san_list(const struct mw_ca_record *r, struct mw_dynbuf *b)
{
    for (size_t i = 0; i < r->n_sans; i++) {
        static const char *const types[] = {"?", "URI", "DNS", "IP", "email", "other"};
        unsigned t = (unsigned)r->sans[i].type <= 5 ? (unsigned)r->sans[i].type : 0;
        MW_GUARD(mw_dynbuf_addf(b, "%s%s", i > 0 ? ", " : "", types[t]));
        if (t == MW_CA_SAN_URI || t == MW_CA_SAN_DNS || t == MW_CA_SAN_EMAIL)
            MW_GUARD(mw_dynbuf_addf(b, ":%.*s",
                                    (int)(r->sans[i].value.n > 128 ? 128 : r->sans[i].value.n),
                                    (const char *)r->sans[i].value.p));
    }
    return MW_SUCCESS;
}

static mw_result remember(struct audit *a, mw_slice id, int64_t t, uint64_t index)
{
    if (a->n_seen == a->cap_seen) {
        size_t cap = a->cap_seen == 0 ? 256 : a->cap_seen * 2;
        void *p = realloc(a->seen, cap * sizeof(*a->seen));
        MW_ENSURE(p != NULL, MW_E_NOMEM, "out of memory");
        a->seen = p;
        a->cap_seen = cap;
    }
    char *s = strndup((const char *)id.p, id.n);
    MW_ENSURE(s != NULL, MW_E_NOMEM, "out of memory");
    a->seen[a->n_seen++] = (struct seen){s, t, index};
    return MW_SUCCESS;
}

static mw_result grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return MW_SUCCESS;
    size_t c = *cap == 0 ? 256 : *cap * 2;
    void *p = realloc(*arr, c * size);
    MW_ENSURE(p != NULL, MW_E_NOMEM, "out of memory");
    *arr = p;
    *cap = c;
    return MW_SUCCESS;
}

static mw_result id_hash(mw_slice id, uint8_t out[16])
{
    uint8_t h[32];
    unsigned int hl = 0;
    MW_ENSURE(EVP_Digest(id.p, id.n, h, &hl, EVP_sha256(), NULL) == 1, MW_E_CRYPTO, "SHA-256");
    memcpy(out, h, 16);
    return MW_SUCCESS;
}

/* Hex digits (no leading zeros, as records spell them) to the serial's bytes. */
static void serial_from_hex(mw_slice hex, uint8_t out[20], uint8_t *n)
{
    size_t bytes = (hex.n + 1) / 2;
    memset(out, 0, 20);
    for (size_t i = 0; i < hex.n; i++) {
        uint8_t c = hex.p[hex.n - 1 - i];
        uint8_t v = (uint8_t)(c <= '9' ? c - '0' : c - 'a' + 10);
        out[bytes - 1 - i / 2] |= (uint8_t)(i % 2 ? v << 4 : v);
    }
    *n = (uint8_t)bytes;
}

/* What the renewal rules need of a record, kept until the whole log has been read. */
static mw_result remember_cert(struct audit *a, const struct mw_ca_record *r, uint64_t index)
{
    MW_GUARD(grow((void **)&a->certs, &a->cap_certs, a->n_certs, sizeof(*a->certs)));
    struct cert *c = &a->certs[a->n_certs];
    memset(c, 0, sizeof(*c));
    memcpy(c->serial, r->serial.p, r->serial.n);
    c->serial_n = (uint8_t)r->serial.n;
    MW_GUARD(id_hash(r->spiffe_id, c->id_hash));
    c->not_before = r->not_before;
    c->not_after = r->not_after;
    c->index = index;
    a->n_certs++;
    if (r->cred_kind != MW_CA_CRED_SVID)
        return MW_SUCCESS;
    mw_slice hex;
    MW_GUARD(mw_ca_record_renewed_serial(r, &hex));
    MW_GUARD(grow((void **)&a->renewals, &a->cap_renewals, a->n_renewals, sizeof(*a->renewals)));
    struct renewal *w = &a->renewals[a->n_renewals++];
    memset(w, 0, sizeof(*w));
    serial_from_hex(hex, w->parent, &w->parent_n);
    memcpy(w->id_hash, c->id_hash, 16);
    w->issued_at = r->issued_at;
    w->index = index;
    return MW_SUCCESS;
}

static int cmp_serial(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    if (an != bn)
        return an < bn ? -1 : 1;
    return memcmp(a, b, an);
}

static int cert_cmp(const void *x, const void *y)
{
    const struct cert *a = x, *b = y;
    int c = cmp_serial(a->serial, a->serial_n, b->serial, b->serial_n);
    if (c != 0)
        return c;
    return a->index < b->index ? -1 : a->index > b->index;
}

static int renewal_cmp(const void *x, const void *y)
{
    const struct renewal *a = x, *b = y;
    int c = cmp_serial(a->parent, a->parent_n, b->parent, b->parent_n);
    if (c != 0)
        return c;
    return a->index < b->index ? -1 : a->index > b->index;
}

/*
 * Renewal chains. A renewal (credential "svid:<serial>") is issued only to a
 * caller holding that certificate, valid at that moment, for the same ID, so
 * its parent must be an earlier record of the log with the same SPIFFE ID
 * whose validity covers the renewal's issued-at. Anything else means a
 * certificate the log does not know was accepted as a credential (a key used
 * outside the service, or a log that lost entries): ca-renewal-unknown-parent.
 * A sidecar renews each SVID once, so two renewals of one parent mean two
 * holders of one key, the signature of a stolen SVID renewed by the thief
 * and the owner alike: ca-renewal-fork (medium: a client that timed out and
 * retried also forks).
 */
static mw_result renewal_rules(struct audit *a)
{
    if (a->n_renewals == 0)
        return MW_SUCCESS;
    qsort(a->certs, a->n_certs, sizeof(*a->certs), cert_cmp);
    qsort(a->renewals, a->n_renewals, sizeof(*a->renewals), renewal_cmp);
    for (size_t i = 0; i < a->n_renewals; i++) {
        const struct renewal *w = &a->renewals[i];
        char hex[41];
        struct mw_dynbuf hb;
        mw_dynbuf_init(&hb, 64);
        MW_GUARD(mw_hex_encode(mw_slice_make(w->parent, w->parent_n), &hb));
        const char *h = mw_dynbuf_cstr(&hb);
        while (h[0] == '0' && h[1] != '\0')
            h++;
        snprintf(hex, sizeof(hex), "%s", h);
        mw_dynbuf_free(&hb);
        char res[96];
        int rn = snprintf(res, sizeof(res), "serial %s", hex);
        mw_slice resource = mw_slice_make(res, (size_t)rn);
        if (i > 0 && cmp_serial(a->renewals[i - 1].parent, a->renewals[i - 1].parent_n, w->parent,
                                w->parent_n) == 0) {
            /* One finding per parent: at its second renewal. */
            if (i < 2 || cmp_serial(a->renewals[i - 2].parent, a->renewals[i - 2].parent_n,
                                    w->parent, w->parent_n) != 0)
                MW_GUARD(finding(a, "ca-renewal-fork", "medium", resource, w->index, NULL,
                                 "certificate serial %s was renewed more than once (log entries "
                                 "%" PRIu64 " and %" PRIu64 "): two holders of one SVID, or a "
                                 "client that retried",
                                 hex, a->renewals[i - 1].index, w->index));
        }
        /* The parent: the first record with that serial. */
        size_t lo = 0, hi = a->n_certs;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (cmp_serial(a->certs[mid].serial, a->certs[mid].serial_n, w->parent, w->parent_n) <
                0)
                lo = mid + 1;
            else
                hi = mid;
        }
        const struct cert *c =
            lo < a->n_certs && cmp_serial(a->certs[lo].serial, a->certs[lo].serial_n, w->parent,
                                          w->parent_n) == 0
                ? &a->certs[lo]
                : NULL;
        const char *why = NULL;
        if (c == NULL || c->index >= w->index)
            why = "is not an earlier record of this log";
        else if (memcmp(c->id_hash, w->id_hash, 16) != 0)
            why = "was issued to another SPIFFE ID";
        else if (w->issued_at < c->not_before || w->issued_at > c->not_after)
            why = "was not valid when the renewal was issued";
        if (why != NULL)
            MW_GUARD(finding(a, "ca-renewal-unknown-parent", "high", resource, w->index, NULL,
                             "log entry %" PRIu64 " renews certificate serial %s, which %s",
                             w->index, hex, why));
    }
    return MW_SUCCESS;
}

static mw_result rules(struct audit *a, uint64_t index, mw_slice entry)
{
    const struct mw_ca_monitor_policy *p = a->p;
    struct mw_ca_record r;
    if (mw_failed(mw_ca_record_parse(entry, &r))) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", mw_error_msg());
        mw_error_clear();
        char res[64];
        int n = snprintf(res, sizeof(res), "log entry %" PRIu64, index);
        return finding(a, "ca-malformed-record", "high", mw_slice_make(res, (size_t)n), index, NULL,
                       "log entry %" PRIu64 " is not a valid issuance record: %s", index, msg);
    }
    struct mw_dynbuf js;
    mw_dynbuf_init(&js, 1u << 20);
    if (mw_failed(mw_ca_record_to_json(&r, &js))) {
        mw_dynbuf_free(&js);
        return MW_FAILURE;
    }
    const char *rec = mw_dynbuf_cstr(&js);
    char idtxt[MW_SPIFFE_ID_MAX + 1];
    snprintf(idtxt, sizeof(idtxt), "%.*s", (int)r.spiffe_id.n, (const char *)r.spiffe_id.p);
    char when[32];
    mw_time_format(r.issued_at, when, sizeof(when));
    mw_result res = MW_SUCCESS;

    const struct mw_ca_registration *reg = NULL;
    struct mw_spiffe_id id;
    if (a->regs != NULL && mw_ok(mw_spiffe_id_parse(r.spiffe_id, &id, NULL)))
        reg = mw_ca_registrations_find(a->regs, &id);
    if (a->regs != NULL && p->require_registration && reg == NULL)
        res = finding(a, "ca-unregistered-identity", "high", r.spiffe_id, index, rec,
                      "certificate issued at %s to %s, which no WorkloadRegistration selects", when,
                      idtxt);
    /*
     * A renewal by SVID is the automatic continuation of an identity that
     * already holds a valid certificate: sidecars renew around the clock.
     * Change windows govern new issuance; renewals are watched by the
     * renewal-chain rules instead.
     */
    if (mw_ok(res) && p->n_windows > 0 && r.cred_kind != MW_CA_CRED_SVID &&
        !in_window(p, r.issued_at))
        res = finding(a, "ca-outside-change-window", "medium", r.spiffe_id, index, rec,
                      "certificate for %s issued at %s, outside every change window of policy %s",
                      idtxt, when, p->name);
    bool san_ok = r.n_sans == 1 && r.sans[0].type == MW_CA_SAN_URI &&
                  mw_slice_eq(r.sans[0].value, r.spiffe_id);
    if (mw_ok(res) && !san_ok) {
        struct mw_dynbuf sans;
        mw_dynbuf_init(&sans, 8192);
        res = san_list(&r, &sans);
        if (mw_ok(res))
            res = finding(a, "ca-unexpected-san", "high", r.spiffe_id, index, rec,
                          "certificate for %s has SANs [%s]; an X.509-SVID has exactly one, the "
                          "URI %s",
                          idtxt, mw_dynbuf_cstr(&sans), idtxt);
        mw_dynbuf_free(&sans);
    }
    int64_t ttl = r.not_after - r.not_before;
    int64_t limit = p->max_ttl_s;
    if (reg != NULL && reg->max_ttl_s > 0 && (limit == 0 || reg->max_ttl_s < limit))
        limit = reg->max_ttl_s;
    if (mw_ok(res) && limit > 0 && ttl > limit)
        res = finding(a, "ca-ttl-over-policy", "medium", r.spiffe_id, index, rec,
                      "certificate for %s lives %" PRId64 " s, policy allows %" PRId64 " s", idtxt,
                      ttl, limit);
    for (size_t i = 0; mw_ok(res) && i < p->n_retired; i++)
        if (mw_slice_eq_cstr(r.ca_key_id, p->retired[i]))
            res = finding(a, "ca-retired-key", "critical", r.spiffe_id, index, rec,
                          "certificate for %s issued at %s by retired CA key %s", idtxt, when,
                          p->retired[i]);
    if (mw_ok(res) && p->burst_max > 0)
        res = remember(a, r.spiffe_id, r.issued_at, index);
    if (mw_ok(res))
        res = remember_cert(a, &r, index);
    mw_dynbuf_free(&js);
    return res;
}

static int seen_cmp(const void *x, const void *y)
{
    const struct seen *a = x, *b = y;
    int c = strcmp(a->id, b->id);
    if (c != 0)
        return c;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Sliding window per identity: one finding each time the count first exceeds the maximum. */
static mw_result burst_rule(struct audit *a)
{
    const struct mw_ca_monitor_policy *p = a->p;
    if (p->burst_max == 0 || a->n_seen == 0)
        return MW_SUCCESS;
    qsort(a->seen, a->n_seen, sizeof(*a->seen), seen_cmp);
    size_t i = 0;
    bool in_burst = false;
    for (size_t j = 0; j < a->n_seen; j++) {
        if (j > 0 && strcmp(a->seen[j].id, a->seen[j - 1].id) != 0) {
            i = j;
            in_burst = false;
        }
        while (a->seen[j].t - a->seen[i].t >= p->burst_window_s)
            i++;
        uint64_t count = j - i + 1;
        if (count > p->burst_max && !in_burst) {
            char t1[32], t2[32];
            mw_time_format(a->seen[i].t, t1, sizeof(t1));
            mw_time_format(a->seen[j].t, t2, sizeof(t2));
            MW_GUARD(finding(
                a, "ca-burst-rate", "medium", mw_slice_cstr(a->seen[j].id), a->seen[j].index, NULL,
                "%" PRIu64 " certificates for %s between %s and %s; policy allows %" PRIu64
                " per %" PRId64 " s",
                count, a->seen[j].id, t1, t2, p->burst_max, p->burst_window_s));
            in_burst = true;
        } else if (count <= p->burst_max) {
            in_burst = false;
        }
    }
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- reading the log */

struct walk {
    struct audit *a;
    bool rule_failed; /* the failure is ours, not the log's */
};

static mw_result audit_entry(void *ctx, uint64_t index, mw_slice entry)
{
    struct walk *w = ctx;
    /* The burst rule keeps one record per entry. */
    w->rule_failed = true;
    MW_ENSURE(index < MAX_ENTRIES, MW_E_LIMIT,
              "log of more than %" PRIu64 " entries is too large to audit", MAX_ENTRIES);
    MW_GUARD(rules(w->a, index, entry));
    w->rule_failed = false;
    return MW_SUCCESS;
}

mw_result mw_ca_audit_dir(const char *dir, struct mw_note_verifier *v,
                          const struct mw_ca_monitor_policy *p,
                          const struct mw_ca_registrations *regs, struct mw_dynbuf *out,
                          size_t *n_findings)
{
    *n_findings = 0;
    struct audit a = {.p = p, .regs = regs, .out = out};
    struct walk w = {.a = &a};
    /* Findings go out only when the whole log was read and verified. */
    size_t start = out->n;
    mw_result r = mw_tlog_each_entry(dir, v, audit_entry, &w);
    if (mw_failed(r) && !w.rule_failed)
        mw_error_prefix("%s: ", dir);
    if (mw_ok(r))
        r = burst_rule(&a);
    if (mw_ok(r))
        r = renewal_rules(&a);
    for (size_t i = 0; i < a.n_seen; i++)
        free(a.seen[i].id);
    free(a.seen);
    free(a.certs);
    free(a.renewals);
    if (mw_failed(r)) {
        out->n = start;
        if (out->p != NULL)
            out->p[start] = '\0';
        return MW_FAILURE;
    }
    *n_findings = a.n;
    return MW_SUCCESS;
}
