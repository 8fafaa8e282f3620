/* The verdict cache: keys, TTL with an injected clock, capacity eviction, revocation. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include <meshward/verify.h>

#define ALICE  "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
#define BOB    "https://github.com/acme/lib/.github/workflows/release.yml@refs/heads/main"
#define GHA    "https://token.actions.githubusercontent.com"
#define GITLAB "https://gitlab.com"
#define KEY1   "4cb32c4837c6dda8cfb1681efb3fef5f94ffce5b979e6bdb9139302c857af139"
#define KEY2   "1111111111111111111111111111111111111111111111111111111111111111"
#define ATT1   "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ATT2   "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const uint8_t POL[32] = {1}, POL2[32] = {3}, ROOT[32] = {2};

/* One cached verdict: image digest number, signer (SAN + issuer, or key id), attestation. */
struct row {
    int digest;
    const char *identity, *issuer, *key_id, *attestation;
    const uint8_t *policy;
};

static void digest_of(int i, char *out, size_t cap)
{
    snprintf(out, cap, "sha256:%064d", i);
}

static struct mw_image_verdict verdict(const struct row *r)
{
    struct mw_image_verdict v;
    memset(&v, 0, sizeof(v));
    v.allowed = true;
    digest_of(r->digest, v.digest, sizeof(v.digest));
    snprintf(v.identity, sizeof(v.identity), "%s", r->key_id ? "(key)" : r->identity);
    snprintf(v.issuer, sizeof(v.issuer), "%s", r->issuer ? r->issuer : "");
    snprintf(v.key_id, sizeof(v.key_id), "%s", r->key_id ? r->key_id : "");
    snprintf(v.attestation, sizeof(v.attestation), "%s", r->attestation ? r->attestation : "");
    return v;
}

/*
 * Digests 1..6; digest 1 is cached under two policies (one digest, two
 * verdicts); 4 and 5 are keyed, 5 with the same attestation as 1.
 */
static const struct row rows[] = {
    {1, ALICE, GHA, NULL, ATT1, POL},    {1, ALICE, GHA, NULL, ATT1, POL2},
    {2, ALICE, GITLAB, NULL, ATT2, POL}, {3, BOB, GHA, NULL, NULL, POL},
    {4, NULL, NULL, KEY1, ATT2, POL},    {5, NULL, NULL, KEY1, ATT1, POL},
    {6, NULL, NULL, KEY2, NULL, POL},
};

static struct mw_verdict_cache *filled(void)
{
    struct mw_verdict_cache *c;
    mw_assert_ok(mw_verdict_cache_new(64, 60, &c));
    for (size_t i = 0; i < MW_ARRAY_LEN(rows); i++) {
        struct mw_image_verdict v = verdict(&rows[i]);
        mw_assert_ok(mw_verdict_cache_put(c, rows[i].policy, ROOT, &v, 1000));
    }
    return c;
}

static bool cached(struct mw_verdict_cache *c, int digest, const uint8_t *policy)
{
    char d[80];
    digest_of(digest, d, sizeof(d));
    struct mw_image_verdict out;
    return mw_verdict_cache_get(c, d, policy, ROOT, 1001, &out);
}

/* The affected list must be exactly these digests, each once (in any order). */
static void assert_affected(const struct mw_dynbuf *aff, size_t n, const int *want, size_t nwant)
{
    assert_int_equal(n, nwant);
    size_t lines = 0;
    for (size_t i = 0; i < aff->n; i++)
        lines += aff->p[i] == '\n';
    assert_int_equal(lines, nwant);
    for (size_t i = 0; i < nwant; i++) {
        char line[96];
        snprintf(line, sizeof(line), "sha256:%064d\n", want[i]);
        const char *at = strstr(mw_dynbuf_cstr(aff), line);
        if (at == NULL)
            fail_msg("digest %d missing from the affected list:\n%s", want[i], mw_dynbuf_cstr(aff));
        assert_null(strstr(at + 1, line));
    }
}

/* After a revocation: exactly the digests in gone are no longer cached, under any policy. */
static void assert_left(struct mw_verdict_cache *c, const int *gone, size_t ngone)
{
    for (size_t i = 0; i < MW_ARRAY_LEN(rows); i++) {
        bool revoked = false;
        for (size_t j = 0; j < ngone; j++)
            revoked |= rows[i].digest == gone[j];
        if (cached(c, rows[i].digest, rows[i].policy) == revoked)
            fail_msg("digest %d (row %zu) is %s, want %s", rows[i].digest, i,
                     revoked ? "still cached" : "gone", revoked ? "gone" : "cached");
    }
}

enum kind { BY_SIGNER, BY_IDENTITY, BY_KEY, BY_ATTESTATION };

static const struct revoke_case {
    const char *name;
    enum kind kind;
    const char *value, *issuer;
    int want[4];
    size_t nwant;
} revoke_cases[] = {
    {"signer with issuer", BY_SIGNER, ALICE, GHA, {1}, 1},
    {"signer, any issuer", BY_SIGNER, ALICE, NULL, {1, 2}, 2},
    {"identity (any issuer)", BY_IDENTITY, ALICE, NULL, {1, 2}, 2},
    {"signer, other issuer", BY_SIGNER, BOB, GITLAB, {0}, 0},
    {"key placeholder is not a SAN", BY_IDENTITY, "(key)", NULL, {0}, 0},
    {"key 1", BY_KEY, KEY1, NULL, {4, 5}, 2},
    {"key 2", BY_KEY, KEY2, NULL, {6}, 1},
    {"unknown key", BY_KEY, "ff", NULL, {0}, 0},
    {"attestation 1 (keyless and keyed)", BY_ATTESTATION, ATT1, NULL, {1, 5}, 2},
    {"attestation 2", BY_ATTESTATION, ATT2, NULL, {2, 4}, 2},
    {"unknown attestation", BY_ATTESTATION, "sha256:cc", NULL, {0}, 0},
};

static void test_revoke_kinds(void **state)
{
    (void)state;
    for (size_t i = 0; i < MW_ARRAY_LEN(revoke_cases); i++) {
        const struct revoke_case *k = &revoke_cases[i];
        struct mw_verdict_cache *c = filled();
        struct mw_dynbuf aff;
        mw_dynbuf_init(&aff, 4096);
        /* A line already in the buffer is the caller's: kept, and not counted. */
        mw_assert_ok(mw_dynbuf_add_cstr(&aff, "earlier\n"));
        size_t n = 99;
        switch (k->kind) {
        case BY_SIGNER:
            mw_assert_ok(mw_verdict_cache_revoke_signer(c, k->value, k->issuer, &aff, &n));
            break;
        case BY_IDENTITY:
            mw_assert_ok(mw_verdict_cache_revoke_identity(c, k->value, &aff, &n));
            break;
        case BY_KEY:
            mw_assert_ok(mw_verdict_cache_revoke_key(c, k->value, &aff, &n));
            break;
        case BY_ATTESTATION:
            mw_assert_ok(mw_verdict_cache_revoke_attestation(c, k->value, &aff, &n));
            break;
        }
        print_message("case %zu: %s\n", i, k->name);
        assert_memory_equal(aff.p, "earlier\n", 8);
        struct mw_dynbuf tail;
        mw_dynbuf_init(&tail, 4096);
        mw_assert_ok(mw_dynbuf_add(&tail, aff.p + 8, aff.n - 8));
        assert_affected(&tail, n, k->want, k->nwant);
        assert_left(c, k->want, k->nwant);
        /* Revoking again finds nothing. */
        mw_dynbuf_reset(&tail);
        switch (k->kind) {
        case BY_KEY:
            mw_assert_ok(mw_verdict_cache_revoke_key(c, k->value, &tail, &n));
            break;
        case BY_ATTESTATION:
            mw_assert_ok(mw_verdict_cache_revoke_attestation(c, k->value, &tail, &n));
            break;
        default:
            mw_assert_ok(mw_verdict_cache_revoke_signer(c, k->value, k->issuer, &tail, &n));
        }
        assert_int_equal(n, 0);
        assert_int_equal(tail.n, 0);
        mw_dynbuf_free(&tail);
        mw_dynbuf_free(&aff);
        mw_verdict_cache_free(c);
    }
}

static void test_revoke_digest(void **state)
{
    (void)state;
    struct mw_verdict_cache *c = filled();
    char d[80];
    digest_of(1, d, sizeof(d));
    /* Both verdicts of digest 1 (two policies) go. */
    assert_int_equal(mw_verdict_cache_revoke_digest(c, d), 2);
    const int gone[] = {1};
    assert_left(c, gone, 1);
    assert_int_equal(mw_verdict_cache_revoke_digest(c, d), 0);
    mw_verdict_cache_free(c);
}

static void test_revoke_bad_input(void **state)
{
    (void)state;
    struct mw_verdict_cache *c = filled();
    struct mw_dynbuf aff;
    mw_dynbuf_init(&aff, 4096);
    size_t n;
    mw_assert_fails(mw_verdict_cache_revoke_signer(c, "", GHA, &aff, &n), MW_E_INPUT);
    mw_assert_fails(mw_verdict_cache_revoke_identity(c, NULL, &aff, &n), MW_E_INPUT);
    mw_assert_fails(mw_verdict_cache_revoke_key(c, "", &aff, &n), MW_E_INPUT);
    mw_assert_fails(mw_verdict_cache_revoke_attestation(c, "", &aff, &n), MW_E_INPUT);
    assert_left(c, NULL, 0);
    /* A list that cannot be written leaves the cache as it was: nothing is dropped unlisted. */
    struct mw_dynbuf tiny;
    mw_dynbuf_init(&tiny, 16);
    assert_true(mw_failed(mw_verdict_cache_revoke_key(c, KEY1, &tiny, &n)));
    assert_left(c, NULL, 0);
    mw_dynbuf_free(&tiny);
    mw_dynbuf_free(&aff);
    mw_verdict_cache_free(c);
}

static void test_ttl(void **state)
{
    (void)state;
    struct mw_verdict_cache *c;
    mw_assert_ok(mw_verdict_cache_new(8, 60, &c));
    struct row r = {7, ALICE, GHA, NULL, ATT1, POL};
    struct mw_image_verdict v = verdict(&r), out;
    mw_assert_ok(mw_verdict_cache_put(c, POL, ROOT, &v, 1000));
    /* The clock is the caller's: fresh through 1059, gone at 1060 (expiry is exclusive). */
    assert_true(mw_verdict_cache_get(c, v.digest, POL, ROOT, 1000, &out));
    assert_string_equal(out.identity, ALICE);
    assert_string_equal(out.issuer, GHA);
    assert_string_equal(out.attestation, ATT1);
    assert_true(mw_verdict_cache_get(c, v.digest, POL, ROOT, 1059, &out));
    assert_false(mw_verdict_cache_get(c, v.digest, POL, ROOT, 1060, &out));
    /* The expired entry was dropped by the lookup: an earlier clock does not revive it. */
    assert_false(mw_verdict_cache_get(c, v.digest, POL, ROOT, 1001, &out));
    /* Putting it again restarts its TTL from the new time. */
    mw_assert_ok(mw_verdict_cache_put(c, POL, ROOT, &v, 2000));
    assert_true(mw_verdict_cache_get(c, v.digest, POL, ROOT, 2059, &out));
    assert_false(mw_verdict_cache_get(c, v.digest, POL, ROOT, 2060, &out));
    /* Keys: another policy or root is another verdict. */
    mw_assert_ok(mw_verdict_cache_put(c, POL, ROOT, &v, 3000));
    assert_false(mw_verdict_cache_get(c, v.digest, POL2, ROOT, 3001, &out));
    assert_false(mw_verdict_cache_get(c, v.digest, POL, POL2, 3001, &out));
    assert_true(mw_verdict_cache_get(c, v.digest, POL, ROOT, 3001, &out));
    mw_verdict_cache_free(c);
    mw_assert_fails(mw_verdict_cache_new(0, 60, &c), MW_E_INPUT);
    mw_assert_fails(mw_verdict_cache_new(8, 0, &c), MW_E_INPUT);
    mw_assert_fails(mw_verdict_cache_new((1u << 24) + 1, 60, &c), MW_E_INPUT);
}

static void test_capacity(void **state)
{
    (void)state;
    struct mw_verdict_cache *c;
    mw_assert_ok(mw_verdict_cache_new(3, 60, &c));
    struct mw_image_verdict out;
    /* Put at times 1000, 1003, 1001: digest 10 expires first, then 12, then 11. */
    const int64_t at[] = {1000, 1003, 1001};
    for (int i = 0; i < 3; i++) {
        struct row r = {10 + i, ALICE, GHA, NULL, NULL, POL};
        struct mw_image_verdict v = verdict(&r);
        mw_assert_ok(mw_verdict_cache_put(c, POL, ROOT, &v, at[i]));
    }
    /* Replacing an entry does not evict anything. */
    struct row again = {11, BOB, GHA, NULL, NULL, POL};
    struct mw_image_verdict v = verdict(&again);
    mw_assert_ok(mw_verdict_cache_put(c, POL, ROOT, &v, 1003));
    for (int i = 10; i < 13; i++)
        assert_true(cached(c, i, POL));
    char d[80];
    digest_of(11, d, sizeof(d));
    assert_true(mw_verdict_cache_get(c, d, POL, ROOT, 1004, &out));
    assert_string_equal(out.identity, BOB);
    /* Full: a fourth verdict evicts the one nearest expiry (10), then the next (12). */
    struct row r13 = {13, ALICE, GHA, NULL, NULL, POL};
    v = verdict(&r13);
    mw_assert_ok(mw_verdict_cache_put(c, POL, ROOT, &v, 1005));
    assert_false(cached(c, 10, POL));
    assert_true(cached(c, 11, POL));
    assert_true(cached(c, 12, POL));
    assert_true(cached(c, 13, POL));
    struct row r14 = {14, ALICE, GHA, NULL, NULL, POL};
    v = verdict(&r14);
    mw_assert_ok(mw_verdict_cache_put(c, POL, ROOT, &v, 1006));
    assert_false(cached(c, 12, POL));
    assert_true(cached(c, 11, POL));
    assert_true(cached(c, 13, POL));
    assert_true(cached(c, 14, POL));
    /* Revocation frees slots: two new verdicts fit without evicting 11. */
    struct mw_dynbuf aff;
    mw_dynbuf_init(&aff, 4096);
    size_t n;
    mw_assert_ok(mw_verdict_cache_revoke_identity(c, ALICE, &aff, &n));
    const int want[] = {13, 14};
    assert_affected(&aff, n, want, 2);
    for (int i = 15; i < 17; i++) {
        struct row r = {i, ALICE, GHA, NULL, NULL, POL};
        v = verdict(&r);
        mw_assert_ok(mw_verdict_cache_put(c, POL, ROOT, &v, 1000));
    }
    assert_true(cached(c, 11, POL));
    assert_true(cached(c, 15, POL));
    assert_true(cached(c, 16, POL));
    mw_dynbuf_free(&aff);
    mw_verdict_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_revoke_kinds),     cmocka_unit_test(test_revoke_digest),
        cmocka_unit_test(test_revoke_bad_input), cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
