/* The issuance monitor: each rule fires on a log built here, and stays quiet when it should. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include <meshward/ca_auth.h>
#include <meshward/tlog.h>

#define TUE_NOON 1795521600 /* Tuesday 2026-11-24T12:00:00Z */
#define HOUR     3600

static const char *POLICY = "apiVersion: meshward.io/v1alpha1\n"
                            "kind: IssuanceMonitorPolicy\n"
                            "metadata: {name: prod}\n"
                            "spec:\n"
                            "  changeWindows:\n"
                            "    - days: [Mon, Tue, Wed, Thu, Fri]\n"
                            "      hours: \"08:00-18:00\"\n"
                            "  maxTTL: 1h\n"
                            "  burst: {max: 3, window: 10m}\n"
                            "  retiredKeys: [int-2025]\n";

static const char *REGS = "apiVersion: meshward.io/v1alpha1\n"
                          "kind: WorkloadRegistration\n"
                          "metadata: {name: api}\n"
                          "spec:\n"
                          "  kubernetes: {namespace: shop, serviceAccount: api}\n"
                          "---\n"
                          "apiVersion: meshward.io/v1alpha1\n"
                          "kind: WorkloadRegistration\n"
                          "metadata: {name: web}\n"
                          "spec:\n"
                          "  spiffeID: spiffe://example.org/ns/shop/sa/web\n"
                          "  maxTTL: 30m\n";

struct rec {
    const char *id;
    int64_t issued_at;
    int64_t ttl;
    const char *key;
    const char *extra_dns; /* NULL: only the URI SAN */
};

struct logfix {
    char dir[512];
    struct mw_dynbuf sk, vk;
    struct mw_note_signer *signer;
    struct mw_note_verifier *verifier;
    struct mw_tlog *log;
    unsigned serial;
};

static void fix_open(struct logfix *f)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "%s/log", mw_test_tmpdir());
    mw_dynbuf_init_secure(&f->sk, 512);
    mw_dynbuf_init(&f->vk, 512);
    mw_assert_ok(mw_note_keygen("meshward.test/issuance", &f->sk, &f->vk));
    mw_assert_ok(mw_note_signer_new(mw_dynbuf_slice(&f->sk), &f->signer));
    mw_assert_ok(mw_note_verifier_new(mw_dynbuf_slice(&f->vk), &f->verifier));
    mw_assert_ok(mw_tlog_open(f->dir, "meshward.test/issuance", f->signer, &f->log));
}

static void fix_close(struct logfix *f)
{
    mw_tlog_close(f->log);
    mw_note_signer_free(f->signer);
    mw_note_verifier_free(f->verifier);
    mw_dynbuf_free(&f->sk);
    mw_dynbuf_free(&f->vk);
}

static void append_raw(struct logfix *f, mw_slice e)
{
    uint64_t first;
    mw_assert_ok(mw_tlog_append(f->log, &e, 1, &first));
}

static void append(struct logfix *f, const struct rec *x)
{
    struct mw_ca_record r;
    memset(&r, 0, sizeof(r));
    uint8_t serial[4] = {0x10, 0, (uint8_t)(f->serial >> 8), (uint8_t)f->serial};
    f->serial++;
    r.serial = mw_slice_make(serial, 4);
    r.spiffe_id = mw_slice_cstr(x->id);
    r.issued_at = x->issued_at;
    r.not_before = x->issued_at;
    r.not_after = x->issued_at + (x->ttl != 0 ? x->ttl : HOUR);
    r.cred_kind = MW_CA_CRED_K8S;
    r.cred_subject = mw_slice_cstr("system:serviceaccount:shop:api");
    r.ca_key_id = mw_slice_cstr(x->key != NULL ? x->key : "int-2026");
    r.n_sans = 1;
    r.sans[0].type = MW_CA_SAN_URI;
    r.sans[0].value = mw_slice_cstr(x->id);
    if (x->extra_dns != NULL) {
        r.n_sans = 2;
        r.sans[1].type = MW_CA_SAN_DNS;
        r.sans[1].value = mw_slice_cstr(x->extra_dns);
    }
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, MW_CA_RECORD_MAX);
    mw_assert_ok(mw_ca_record_encode(&r, &b));
    append_raw(f, mw_dynbuf_slice(&b));
    mw_dynbuf_free(&b);
}

/* Audit with the given policy text and registrations (NULL: none); returns the findings. */
static size_t audit(struct logfix *f, const char *policy, const char *regs, struct mw_dynbuf *out)
{
    struct mw_ca_monitor_policy *p = NULL;
    mw_assert_ok(mw_ca_monitor_policy_parse(mw_slice_cstr(policy), "policy.yaml", &p));
    struct mw_ca_registrations *r = NULL;
    if (regs != NULL)
        mw_assert_ok(mw_ca_registrations_parse(mw_slice_cstr(regs), "regs.yaml", &r));
    mw_dynbuf_init(out, 1u << 22);
    size_t n = 0;
    mw_assert_ok(mw_ca_audit_dir(f->dir, f->verifier, p, r, out, &n));
    mw_ca_registrations_free(r);
    mw_ca_monitor_policy_free(p);
    return n;
}

static size_t count_id(const struct mw_dynbuf *out, const char *id)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "{\"id\":\"%s\"", id);
    size_t n = 0;
    for (const char *p = mw_dynbuf_cstr(out); (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

#define API "spiffe://example.org/ns/shop/sa/api"
#define WEB "spiffe://example.org/ns/shop/sa/web"

static void test_quiet_log(void **state)
{
    struct logfix f;
    fix_open(&f);
    append(&f, &(struct rec){API, TUE_NOON, HOUR, NULL, NULL});
    append(&f, &(struct rec){WEB, TUE_NOON + 60, 1800, NULL, NULL});
    append(&f, &(struct rec){API, TUE_NOON + 700, HOUR, NULL, NULL});
    struct mw_dynbuf out;
    assert_int_equal(audit(&f, POLICY, REGS, &out), 0);
    assert_int_equal(out.n, 0);
    mw_dynbuf_free(&out);
    /* An empty log is quiet too. */
    fix_close(&f);
    fix_open(&f);
    assert_int_equal(audit(&f, POLICY, REGS, &out), 0);
    mw_dynbuf_free(&out);
    fix_close(&f);
}

static void test_unregistered(void **state)
{
    struct logfix f;
    fix_open(&f);
    append(&f, &(struct rec){API, TUE_NOON, HOUR, NULL, NULL});
    append(&f, &(struct rec){"spiffe://example.org/ns/kube-system/sa/admin", TUE_NOON, HOUR, NULL,
                             NULL});
    struct mw_dynbuf out;
    assert_int_equal(audit(&f, POLICY, REGS, &out), 1);
    assert_int_equal(count_id(&out, "ca-unregistered-identity"), 1);
    assert_non_null(strstr(mw_dynbuf_cstr(&out),
                           "\"resource\":\"spiffe://example.org/ns/kube-system/sa/admin\""));
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "\"severity\":\"high\""));
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "\"evidence\":{\"log_index\":1,\"record\":{"));
    mw_dynbuf_free(&out);
    /* Without registrations the rule has nothing to compare with, and is off. */
    assert_int_equal(audit(&f, POLICY, NULL, &out), 0);
    mw_dynbuf_free(&out);
    char off[2048];
    snprintf(off, sizeof(off), "%s  requireRegistration: false\n", POLICY);
    assert_int_equal(audit(&f, off, REGS, &out), 0);
    mw_dynbuf_free(&out);
    fix_close(&f);
}

static void test_change_window(void **state)
{
    struct logfix f;
    fix_open(&f);
    append(&f, &(struct rec){API, TUE_NOON - 4 * HOUR, HOUR, NULL, NULL});     /* 08:00 Tue: in */
    append(&f, &(struct rec){API, TUE_NOON + 6 * HOUR - 1, HOUR, NULL, NULL}); /* 17:59:59: in */
    struct mw_dynbuf out;
    assert_int_equal(audit(&f, POLICY, REGS, &out), 0);
    mw_dynbuf_free(&out);
    append(&f, &(struct rec){API, TUE_NOON + 6 * HOUR, HOUR, NULL, NULL});     /* 18:00: out */
    append(&f, &(struct rec){API, TUE_NOON - 2 * 86400, HOUR, NULL, NULL});    /* Sunday noon */
    append(&f, &(struct rec){API, TUE_NOON - 4 * HOUR - 1, HOUR, NULL, NULL}); /* 07:59:59 */
    assert_int_equal(audit(&f, POLICY, REGS, &out), 3);
    assert_int_equal(count_id(&out, "ca-outside-change-window"), 3);
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "issued at 2026-11-22T12:00:00Z"));
    mw_dynbuf_free(&out);
    fix_close(&f);
}

static void test_sans(void **state)
{
    struct logfix f;
    fix_open(&f);
    append(&f, &(struct rec){API, TUE_NOON, HOUR, NULL, "evil.example.com"});
    struct mw_dynbuf out;
    assert_int_equal(audit(&f, POLICY, REGS, &out), 1);
    assert_int_equal(count_id(&out, "ca-unexpected-san"), 1);
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "DNS:evil.example.com"));
    mw_dynbuf_free(&out);
    fix_close(&f);
    /* A URI SAN that is not the record's SPIFFE ID, and no SAN at all. */
    fix_open(&f);
    struct mw_ca_record r;
    memset(&r, 0, sizeof(r));
    uint8_t serial = 1;
    r.serial = mw_slice_make(&serial, 1);
    r.spiffe_id = mw_slice_cstr(API);
    r.issued_at = r.not_before = TUE_NOON;
    r.not_after = TUE_NOON + 60;
    r.cred_kind = MW_CA_CRED_JOIN;
    r.cred_subject = mw_slice_cstr("join:0011223344556677");
    r.ca_key_id = mw_slice_cstr("int-2026");
    r.n_sans = 1;
    r.sans[0].type = MW_CA_SAN_URI;
    r.sans[0].value = mw_slice_cstr(WEB);
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, MW_CA_RECORD_MAX);
    mw_assert_ok(mw_ca_record_encode(&r, &b));
    append_raw(&f, mw_dynbuf_slice(&b));
    mw_dynbuf_reset(&b);
    r.n_sans = 0;
    mw_assert_ok(mw_ca_record_encode(&r, &b));
    append_raw(&f, mw_dynbuf_slice(&b));
    mw_dynbuf_free(&b);
    assert_int_equal(audit(&f, POLICY, REGS, &out), 2);
    assert_int_equal(count_id(&out, "ca-unexpected-san"), 2);
    mw_dynbuf_free(&out);
    fix_close(&f);
}

static void test_ttl(void **state)
{
    struct logfix f;
    fix_open(&f);
    append(&f, &(struct rec){API, TUE_NOON, HOUR, NULL, NULL});
    append(&f, &(struct rec){WEB, TUE_NOON, 1800, NULL, NULL});
    struct mw_dynbuf out;
    assert_int_equal(audit(&f, POLICY, REGS, &out), 0);
    mw_dynbuf_free(&out);
    append(&f, &(struct rec){API, TUE_NOON, HOUR + 1, NULL, NULL});
    append(&f, &(struct rec){WEB, TUE_NOON, 1801, NULL, NULL}); /* over its registration's 30m */
    assert_int_equal(audit(&f, POLICY, REGS, &out), 2);
    assert_int_equal(count_id(&out, "ca-ttl-over-policy"), 2);
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "lives 3601 s, policy allows 3600 s"));
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "lives 1801 s, policy allows 1800 s"));
    mw_dynbuf_free(&out);
    fix_close(&f);
}

static void test_burst(void **state)
{
    struct logfix f;
    fix_open(&f);
    /* Three per 10 minutes is allowed; two identities do not add up. */
    for (int i = 0; i < 3; i++) {
        append(&f, &(struct rec){API, TUE_NOON + i * 60, HOUR, NULL, NULL});
        append(&f, &(struct rec){WEB, TUE_NOON + i * 60, 1800, NULL, NULL});
    }
    /* Spread out: the fourth comes when the first has left the window. */
    append(&f, &(struct rec){API, TUE_NOON + 600, HOUR, NULL, NULL});
    struct mw_dynbuf out;
    assert_int_equal(audit(&f, POLICY, REGS, &out), 0);
    mw_dynbuf_free(&out);
    /* Now a burst: 5 more within a minute. One finding for the episode. */
    for (int i = 0; i < 5; i++)
        append(&f, &(struct rec){WEB, TUE_NOON + 3000 + i, 1800, NULL, NULL});
    assert_int_equal(audit(&f, POLICY, REGS, &out), 1);
    assert_int_equal(count_id(&out, "ca-burst-rate"), 1);
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "4 certificates for " WEB));
    mw_dynbuf_free(&out);
    fix_close(&f);
}

static void test_retired_key(void **state)
{
    struct logfix f;
    fix_open(&f);
    append(&f, &(struct rec){API, TUE_NOON, HOUR, "int-2025b", NULL}); /* not a prefix match */
    struct mw_dynbuf out;
    assert_int_equal(audit(&f, POLICY, REGS, &out), 0);
    mw_dynbuf_free(&out);
    append(&f, &(struct rec){API, TUE_NOON, HOUR, "int-2025", NULL});
    assert_int_equal(audit(&f, POLICY, REGS, &out), 1);
    assert_int_equal(count_id(&out, "ca-retired-key"), 1);
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "\"severity\":\"critical\""));
    mw_dynbuf_free(&out);
    fix_close(&f);
}

static void test_malformed_entry(void **state)
{
    struct logfix f;
    fix_open(&f);
    append(&f, &(struct rec){API, TUE_NOON, HOUR, NULL, NULL});
    append_raw(&f, mw_slice_cstr("not a record"));
    struct mw_dynbuf out;
    assert_int_equal(audit(&f, POLICY, REGS, &out), 1);
    assert_int_equal(count_id(&out, "ca-malformed-record"), 1);
    assert_non_null(strstr(mw_dynbuf_cstr(&out), "\"resource\":\"log entry 1\""));
    mw_dynbuf_free(&out);
    fix_close(&f);
}

static void test_bad_log(void **state)
{
    struct logfix f;
    fix_open(&f);
    for (int i = 0; i < 3; i++)
        append(&f, &(struct rec){API, TUE_NOON + i, HOUR, NULL, NULL});
    struct mw_ca_monitor_policy *p = NULL;
    mw_assert_ok(mw_ca_monitor_policy_parse(mw_slice_cstr(POLICY), "p", &p));
    struct mw_dynbuf out;
    mw_dynbuf_init(&out, 1 << 20);
    size_t n = 99;
    /* Another log key. */
    struct mw_dynbuf sk, vk;
    mw_dynbuf_init_secure(&sk, 512);
    mw_dynbuf_init(&vk, 512);
    mw_assert_ok(mw_note_keygen("meshward.test/issuance", &sk, &vk));
    struct mw_note_verifier *other = NULL;
    mw_assert_ok(mw_note_verifier_new(mw_dynbuf_slice(&vk), &other));
    mw_assert_fails(mw_ca_audit_dir(f.dir, other, p, NULL, &out, &n), MW_E_VERIFY);
    assert_int_equal(n, 0);
    mw_note_verifier_free(other);
    mw_dynbuf_free(&sk);
    mw_dynbuf_free(&vk);
    /* A changed entry. */
    char path[700];
    snprintf(path, sizeof(path), "%s/tile/entries/000.p/3", f.dir);
    struct mw_dynbuf e;
    mw_dynbuf_init(&e, 1 << 20);
    mw_assert_ok(mw_file_read(path, 1 << 20, &e));
    e.p[e.n - 1] ^= 1;
    mw_assert_ok(mw_file_write_atomic(path, mw_dynbuf_slice(&e), 0644));
    mw_dynbuf_free(&e);
    mw_assert_fails(mw_ca_audit_dir(f.dir, f.verifier, p, NULL, &out, &n), MW_E_VERIFY);
    assert_int_equal(out.n, 0);
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/none", mw_test_tmpdir());
    mw_result r = mw_ca_audit_dir(missing, f.verifier, p, NULL, &out, &n);
    assert_true(mw_failed(r));
    mw_dynbuf_free(&out);
    mw_ca_monitor_policy_free(p);
    fix_close(&f);
}

static void test_policy_errors(void **state)
{
    static const char *head = "apiVersion: meshward.io/v1alpha1\nkind: IssuanceMonitorPolicy\n"
                              "metadata: {name: p}\nspec:\n";
    static const char *bad_specs[] = {
        "  maxTTL: 0s\n",
        "  maxTTL: forever\n",
        "  burst: {max: 0, window: 1m}\n",
        "  burst: {max: 3}\n",
        "  burst: {max: 3, window: 1m, extra: 1}\n",
        "  changeWindows: []\n",
        "  changeWindows: [{days: [Mon], hours: \"18:00-08:00\"}]\n",
        "  changeWindows: [{days: [Monday], hours: \"08:00-18:00\"}]\n",
        "  changeWindows: [{days: [Mon, Mon], hours: \"08:00-18:00\"}]\n",
        "  changeWindows: [{days: [Mon], hours: \"8:00-18:00\"}]\n",
        "  changeWindows: [{days: [Mon], hours: \"08:00-24:01\"}]\n",
        "  changeWindows: [{days: [Mon]}]\n",
        "  retiredKeys: [\"\"]\n",
        "  retiredKeys: key\n",
        "  requireRegistration: yes\n",
        "  maxTtl: 1h\n",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad_specs); i++) {
        char y[1024];
        snprintf(y, sizeof(y), "%s%s", head, bad_specs[i]);
        struct mw_ca_monitor_policy *p = NULL;
        mw_result r = mw_ca_monitor_policy_parse(mw_slice_cstr(y), "p.yaml", &p);
        if (mw_ok(r))
            fail_msg("policy case %zu was accepted: %s", i, bad_specs[i]);
        assert_null(p);
        assert_non_null(strstr(mw_error_msg(), "p.yaml:"));
    }
    struct mw_ca_monitor_policy *p = NULL;
    mw_assert_fails(
        mw_ca_monitor_policy_parse(mw_slice_cstr("apiVersion: meshward.io/v1alpha1\nkind: Other\n"
                                                 "metadata: {name: p}\nspec: {}\n"),
                                   "p.yaml", &p),
        MW_E_INPUT);
    mw_assert_fails(mw_ca_monitor_policy_parse(mw_slice_cstr("---\n"), "p.yaml", &p), MW_E_INPUT);
    char two[2048];
    snprintf(two, sizeof(two), "%s---\n%s", POLICY, POLICY);
    mw_assert_fails(mw_ca_monitor_policy_parse(mw_slice_cstr(two), "p.yaml", &p), MW_E_INPUT);
    /* A window to midnight. */
    char ok[1024];
    snprintf(ok, sizeof(ok), "%s  changeWindows: [{days: [Sat], hours: \"00:00-24:00\"}]\n", head);
    mw_assert_ok(mw_ca_monitor_policy_parse(mw_slice_cstr(ok), "p.yaml", &p));
    mw_ca_monitor_policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quiet_log),     cmocka_unit_test(test_unregistered),
        cmocka_unit_test(test_change_window), cmocka_unit_test(test_sans),
        cmocka_unit_test(test_ttl),           cmocka_unit_test(test_burst),
        cmocka_unit_test(test_retired_key),   cmocka_unit_test(test_malformed_entry),
        cmocka_unit_test(test_bad_log),       cmocka_unit_test(test_policy_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
