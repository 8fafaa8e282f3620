/*
 * Intermediate rotation: SPIRE's thresholds, and SVIDs issued before and
 * after each switch validating against the published bundle at every
 * instant of their lives, with an injected clock.
 */
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <string.h>

#include <meshward/ca.h>
#include <meshward/spiffe.h>

#include "base/mw_ossl.h"

#define T0   1790000000LL
#define TD   "example.org"
#define SID  "spiffe://example.org/ns/prod/sa/web"
#define HOUR 3600LL
#define DAY  86400LL

MW_DEFINE_CLEANUP(X509_REQ, X509_REQ_free)

static void test_thresholds(void **state)
{
    (void)state;
    /* SPIRE slot.go: prepare at min(lifetime/2, 30 d) left, activate at min(lifetime/6, 7 d). */
    int64_t nb = T0, na = T0 + 365 * DAY;
    assert_int_equal(mw_ca_prepare_at(nb, na), na - 30 * DAY);
    assert_int_equal(mw_ca_activate_at(nb, na), na - 7 * DAY);
    na = T0 + 6 * HOUR;
    assert_int_equal(mw_ca_prepare_at(nb, na), na - 3 * HOUR);
    assert_int_equal(mw_ca_activate_at(nb, na), na - 1 * HOUR);
    na = T0 + 24 * HOUR; /* SPIRE's default ca_ttl */
    assert_int_equal(mw_ca_prepare_at(nb, na), T0 + 12 * HOUR);
    assert_int_equal(mw_ca_activate_at(nb, na), T0 + 20 * HOUR);
}

static void csr_for(EVP_PKEY *key, struct mw_dynbuf *out)
{
    MW_DEFER(X509_REQ) X509_REQ *req = X509_REQ_new();
    X509_REQ_set_pubkey(req, key);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    uint8_t *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    mw_assert_ok(mw_dynbuf_add(out, der, (size_t)n));
    OPENSSL_free(der);
}

struct issued {
    struct mw_x509svid *svid;
    int64_t nb, na;
    int slot; /* intermediate that signed it */
};

static int active_id(struct mw_ca *ca)
{
    for (size_t i = 0; i < mw_ca_slot_count(ca); i++) {
        struct mw_ca_slot_info si;
        mw_assert_ok(mw_ca_slot_info(ca, i, &si));
        if (si.state == MW_CA_SLOT_ACTIVE)
            return si.id;
    }
    return 0;
}

static void test_switch_keeps_validating(void **state)
{
    (void)state;
    const char *dir = mw_test_tmpdir();
    struct mw_clock clk = mw_clock_fixed(T0);
    struct mw_ca_init_opts o = {.trust_domain = TD,
                                .dir = dir,
                                .clock = &clk,
                                .root_ttl = 30 * DAY,
                                .intermediate_ttl = 6 * HOUR,
                                .svid_default_ttl = HOUR,
                                .svid_max_ttl = HOUR};
    mw_assert_ok(mw_ca_init(&o));
    char config[1100], bundle_path[1100];
    snprintf(config, sizeof(config), "%s/ca.yaml", dir);
    snprintf(bundle_path, sizeof(bundle_path), "%s/bundle.jwks.json", dir);
    struct mw_ca *ca = NULL;
    mw_assert_ok(mw_ca_open(config, NULL, NULL, &ca));
    /* The published bundle, read once: rotation of intermediates must not need a new one. */
    struct mw_bundle *bundle = NULL;
    mw_assert_ok(mw_bundle_load_file(bundle_path, MW_BUNDLE_FMT_SPIFFE, TD, &bundle, NULL));
    struct mw_dynbuf before;
    mw_dynbuf_init(&before, 1 << 20);
    mw_assert_ok(mw_file_read(bundle_path, 1 << 20, &before));

    MW_DEFER(EVP_PKEY) EVP_PKEY *key = EVP_EC_gen("P-256");
    struct mw_dynbuf csr;
    mw_dynbuf_init(&csr, 1 << 16);
    csr_for(key, &csr);

    enum { STEP = 300, SPAN = 20 * HOUR };
    static struct issued all[SPAN / STEP + 1];
    size_t n = 0, checks = 0;
    int prepared = 0, activated = 0, last_active = active_id(ca);
    int64_t switch_at = 0;
    for (int64_t t = T0; t < T0 + SPAN; t += STEP) {
        struct mw_clock now = mw_clock_fixed(t);
        enum mw_ca_rotation done;
        mw_assert_ok(mw_ca_rotate(ca, &now, false, false, &done));
        if (done == MW_CA_ROTATE_PREPARED)
            prepared++;
        if (done == MW_CA_ROTATE_ACTIVATED) {
            activated++;
            assert_int_not_equal(active_id(ca), last_active);
            last_active = active_id(ca);
            if (switch_at == 0)
                switch_at = t;
        }
        struct mw_ca_svid s;
        mw_ca_svid_init(&s);
        mw_assert_ok(mw_ca_issue(ca, mw_dynbuf_slice(&csr), SID, 0, NULL, &now, &s));
        assert_true(s.not_after > t); /* never an SVID that is born dead */
        mw_assert_ok(mw_x509svid_parse_der(mw_dynbuf_slice(&s.chain_der), mw_slice_make(NULL, 0),
                                           &all[n].svid));
        all[n].nb = s.not_before;
        all[n].na = s.not_after;
        all[n].slot = active_id(ca);
        n++;
        mw_ca_svid_free(&s);
        /* Every SVID inside its validity window validates now, whichever intermediate signed it. */
        int64_t probes[] = {t, t + STEP / 2};
        for (size_t pi = 0; pi < MW_ARRAY_LEN(probes); pi++) {
            struct mw_clock at = mw_clock_fixed(probes[pi]);
            for (size_t i = 0; i < n; i++) {
                if (probes[pi] < all[i].nb || probes[pi] >= all[i].na)
                    continue;
                mw_result r = mw_x509svid_verify(all[i].svid, bundle, &at);
                if (mw_failed(r))
                    fail_msg("SVID %zu (intermediate %d) fails at t0+%lld: %s", i, all[i].slot,
                             (long long)(probes[pi] - T0), mw_error_msg());
                checks++;
            }
        }
    }
    /* 6 h intermediates over 20 h: at least three switches, each prepared first. */
    assert_true(activated >= 3);
    assert_true(prepared >= activated);
    /* The first switch happens at the activation threshold of intermediate 1 (5 h). */
    assert_true(switch_at >= T0 + 5 * HOUR - 10 - STEP && switch_at <= T0 + 5 * HOUR);
    /* Around the switch SVIDs of both intermediates were live and were checked together. */
    bool old_live = false, new_live = false;
    for (size_t i = 0; i < n; i++) {
        if (all[i].nb <= switch_at && switch_at < all[i].na) {
            old_live |= all[i].slot == 1;
            new_live |= all[i].slot == 2;
        }
    }
    assert_true(old_live && new_live);
    assert_true(checks > n * 5);
    /* The bundle did not change. */
    struct mw_dynbuf after;
    mw_dynbuf_init(&after, 1 << 20);
    mw_assert_ok(mw_file_read(bundle_path, 1 << 20, &after));
    assert_true(mw_slice_eq(mw_dynbuf_slice(&before), mw_dynbuf_slice(&after)));
    /* The state survives a reopen: the same intermediate is active. */
    int want = active_id(ca);
    mw_ca_free(ca);
    mw_assert_ok(mw_ca_open(config, NULL, NULL, &ca));
    assert_int_equal(active_id(ca), want);
    assert_true(mw_ca_slot_count(ca) <= 8);
    /* SVIDs past their intermediate's life: expired, not silently valid. */
    struct mw_clock late = mw_clock_fixed(all[0].na + 1);
    mw_assert_fails(mw_x509svid_verify(all[0].svid, bundle, &late), MW_E_EXPIRED);

    for (size_t i = 0; i < n; i++)
        mw_x509svid_free(all[i].svid);
    mw_ca_free(ca);
    mw_bundle_free(bundle);
    mw_dynbuf_free(&before);
    mw_dynbuf_free(&after);
    mw_dynbuf_free(&csr);
}

static void test_forced_and_offline(void **state)
{
    (void)state;
    const char *dir = mw_test_tmpdir();
    struct mw_clock clk = mw_clock_fixed(T0);
    struct mw_ca_init_opts o = {.trust_domain = TD, .dir = dir, .clock = &clk};
    mw_assert_ok(mw_ca_init(&o));
    char config[1100];
    snprintf(config, sizeof(config), "%s/ca.yaml", dir);
    struct mw_ca *ca = NULL;
    mw_assert_ok(mw_ca_open(config, NULL, NULL, &ca));
    enum mw_ca_rotation done;
    /* Early in a 1-year life nothing happens on its own. */
    struct mw_clock day = mw_clock_fixed(T0 + DAY);
    mw_assert_ok(mw_ca_rotate(ca, &day, false, false, &done));
    assert_int_equal(done, MW_CA_ROTATE_NONE);
    mw_assert_ok(mw_ca_rotate(ca, &day, true, false, &done));
    assert_int_equal(done, MW_CA_ROTATE_PREPARED);
    assert_int_equal(active_id(ca), 1);
    mw_assert_ok(mw_ca_rotate(ca, &day, false, true, &done));
    assert_int_equal(done, MW_CA_ROTATE_ACTIVATED);
    assert_int_equal(active_id(ca), 2);
    mw_ca_free(ca);

    /* An offline root: a CSR, signed by another CA's root, imported. */
    const char *dir2 = mw_test_tmpdir();
    struct mw_ca_init_opts o2 = {.trust_domain = TD, .dir = dir2, .clock = &clk, .csr_only = true};
    mw_assert_ok(mw_ca_init(&o2));
    char config2[1100], csr_path[1100];
    snprintf(config2, sizeof(config2), "%s/ca.yaml", dir2);
    snprintf(csr_path, sizeof(csr_path), "%s/intermediate-1.csr.pem", dir2);
    struct mw_ca *off = NULL;
    mw_assert_ok(mw_ca_open(config2, NULL, NULL, &off));
    struct mw_dynbuf csr;
    mw_dynbuf_init(&csr, 1 << 16);
    mw_assert_ok(mw_file_read(csr_path, 1 << 16, &csr));
    /* Before import: no active intermediate, no issuing, no rotation without a root key. */
    mw_assert_fails(mw_ca_rotate(off, &day, false, false, &done), MW_E_STATE);
    assert_non_null(strstr(mw_error_msg(), "offline"));

    mw_assert_ok(mw_ca_open(config, NULL, NULL, &ca));
    struct mw_dynbuf cert, root;
    mw_dynbuf_init(&cert, 1 << 16);
    mw_dynbuf_init(&root, 1 << 16);
    mw_assert_ok(mw_ca_sign_intermediate(ca, mw_dynbuf_slice(&csr), 0, &day, &cert));
    mw_assert_ok(mw_ca_bundle_pem(ca, &root));
    /* The wrong root is refused. */
    struct mw_dynbuf other;
    mw_dynbuf_init(&other, 1 << 16);
    mw_assert_ok(mw_dynbuf_add_slice(&other, mw_dynbuf_slice(&cert)));
    mw_assert_fails(
        mw_ca_import_intermediate(off, mw_dynbuf_slice(&cert), mw_dynbuf_slice(&cert), &day),
        MW_E_INPUT);
    mw_assert_ok(
        mw_ca_import_intermediate(off, mw_dynbuf_slice(&cert), mw_dynbuf_slice(&root), &day));
    mw_ca_free(off);
    mw_assert_ok(mw_ca_open(config2, NULL, NULL, &off));
    assert_int_equal(active_id(off), 1);
    /* It issues, and its SVIDs validate against the first CA's bundle. */
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = EVP_EC_gen("P-256");
    struct mw_dynbuf leafcsr;
    mw_dynbuf_init(&leafcsr, 1 << 16);
    csr_for(key, &leafcsr);
    struct mw_ca_svid s;
    mw_ca_svid_init(&s);
    mw_assert_ok(mw_ca_issue(off, mw_dynbuf_slice(&leafcsr), SID, 0, NULL, &day, &s));
    struct mw_x509svid *svid = NULL;
    mw_assert_ok(
        mw_x509svid_parse_der(mw_dynbuf_slice(&s.chain_der), mw_slice_make(NULL, 0), &svid));
    struct mw_bundle *b = NULL;
    mw_assert_ok(mw_bundle_parse(mw_dynbuf_slice(&root), MW_BUNDLE_FMT_PEM, TD, &b, NULL));
    mw_assert_ok(mw_x509svid_verify(svid, b, &day));
    mw_bundle_free(b);
    mw_x509svid_free(svid);
    mw_ca_svid_free(&s);
    mw_ca_free(off);
    mw_ca_free(ca);
    mw_dynbuf_free(&csr);
    mw_dynbuf_free(&cert);
    mw_dynbuf_free(&root);
    mw_dynbuf_free(&other);
    mw_dynbuf_free(&leafcsr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_switch_keeps_validating),
        cmocka_unit_test(test_forced_and_offline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
