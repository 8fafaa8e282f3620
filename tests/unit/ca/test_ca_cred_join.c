/* Single-use join tokens: creation, storage as hashes, redemption, replay, expiry. */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <meshward/ca_auth.h>

#define NOW 1795521600 /* 2026-11-24T12:00:00Z */

static struct mw_ca_store *open_store(char *path, size_t cap)
{
    snprintf(path, cap, "%s/ca.db", mw_test_tmpdir());
    struct mw_ca_store *s = NULL;
    mw_assert_ok(mw_ca_store_open(path, &s));
    return s;
}

static void make_id(const char *uri, struct mw_spiffe_id *id)
{
    mw_assert_ok(mw_spiffe_id_parse(mw_slice_cstr(uri), id, NULL));
}

static void create(struct mw_ca_store *s, const char *uri, int64_t ttl, int64_t at,
                   struct mw_dynbuf *tok, struct mw_ca_join_info *info)
{
    struct mw_spiffe_id id;
    make_id(uri, &id);
    struct mw_clock clk = mw_clock_fixed(at);
    mw_dynbuf_init_secure(tok, 256);
    mw_assert_ok(mw_ca_join_create(s, &id, ttl, &clk, tok, info));
}

static void test_create_redeem_replay(void **state)
{
    char path[512];
    struct mw_ca_store *s = open_store(path, sizeof(path));
    struct mw_dynbuf tok;
    struct mw_ca_join_info info;
    create(s, "spiffe://example.org/host/db-1", 3600, NOW, &tok, &info);
    assert_int_equal(tok.n, MW_CA_JOIN_TOKEN_LEN);
    assert_memory_equal(tok.p, "mwjt_", 5);
    assert_int_equal(info.expires_at, NOW + 3600);
    assert_int_equal(strlen(info.handle), 16);

    struct mw_clock clk = mw_clock_fixed(NOW + 10);
    struct mw_ca_join_info got;
    /* check does not spend it */
    mw_assert_ok(mw_ca_join_check(s, mw_dynbuf_slice(&tok), &clk, &got));
    mw_assert_ok(mw_ca_join_check(s, mw_dynbuf_slice(&tok), &clk, &got));
    assert_false(got.used);
    mw_assert_ok(mw_ca_join_redeem(s, mw_dynbuf_slice(&tok), &clk, &got));
    assert_string_equal(got.spiffe_id, "spiffe://example.org/host/db-1");
    assert_true(got.used);
    assert_string_equal(got.handle, info.handle);

    struct mw_clock later = mw_clock_fixed(NOW + 20);
    mw_assert_fails(mw_ca_join_redeem(s, mw_dynbuf_slice(&tok), &later, &got), MW_E_VERIFY);
    assert_non_null(strstr(mw_error_msg(), "already used at 2026-11-24T12:00:10Z"));
    mw_assert_fails(mw_ca_join_check(s, mw_dynbuf_slice(&tok), &later, &got), MW_E_VERIFY);

    /* A second handle on the same file sees the token spent (the state is in the DB). */
    struct mw_ca_store *s2 = NULL;
    mw_assert_ok(mw_ca_store_open(path, &s2));
    mw_assert_fails(mw_ca_join_redeem(s2, mw_dynbuf_slice(&tok), &later, &got), MW_E_VERIFY);
    mw_ca_store_close(s2);
    mw_dynbuf_free(&tok);
    mw_ca_store_close(s);
}

static void test_expired(void **state)
{
    char path[512];
    struct mw_ca_store *s = open_store(path, sizeof(path));
    struct mw_dynbuf tok;
    struct mw_ca_join_info info;
    create(s, "spiffe://example.org/host/db-1", 60, NOW, &tok, &info);
    struct mw_clock clk = mw_clock_fixed(NOW + 60);
    struct mw_ca_join_info got;
    mw_assert_fails(mw_ca_join_redeem(s, mw_dynbuf_slice(&tok), &clk, &got), MW_E_EXPIRED);
    assert_non_null(strstr(mw_error_msg(), "expired at 2026-11-24T12:01:00Z"));
    /* Still unused: the refusal did not mark it. */
    clk = mw_clock_fixed(NOW + 59);
    mw_assert_ok(mw_ca_join_redeem(s, mw_dynbuf_slice(&tok), &clk, &got));
    mw_dynbuf_free(&tok);
    mw_ca_store_close(s);
}

static void test_unknown_and_malformed(void **state)
{
    char path[512];
    struct mw_ca_store *s = open_store(path, sizeof(path));
    struct mw_dynbuf tok;
    struct mw_ca_join_info info, got;
    create(s, "spiffe://example.org/host/db-1", 60, NOW, &tok, &info);
    struct mw_clock clk = mw_clock_fixed(NOW);
    /* One character changed: unknown. */
    tok.p[10] = tok.p[10] == 'A' ? 'B' : 'A';
    mw_assert_fails(mw_ca_join_redeem(s, mw_dynbuf_slice(&tok), &clk, &got), MW_E_VERIFY);
    assert_non_null(strstr(mw_error_msg(), "not known"));
    static const char *bad[] = {
        "",
        "mwjt_",
        "mwjt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "xxxx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "mwjt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA A",
        "mwjt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++)
        mw_assert_fails(mw_ca_join_redeem(s, mw_slice_cstr(bad[i]), &clk, &got), MW_E_INPUT);
    mw_dynbuf_free(&tok);
    mw_ca_store_close(s);
}

static void test_create_rules(void **state)
{
    char path[512];
    struct mw_ca_store *s = open_store(path, sizeof(path));
    struct mw_spiffe_id id;
    make_id("spiffe://example.org/w", &id);
    struct mw_clock clk = mw_clock_fixed(NOW);
    struct mw_ca_join_info info;
    struct mw_dynbuf tok, plain;
    mw_dynbuf_init_secure(&tok, 256);
    mw_dynbuf_init(&plain, 256);
    mw_assert_fails(mw_ca_join_create(s, &id, 0, &clk, &tok, &info), MW_E_INPUT);
    mw_assert_fails(mw_ca_join_create(s, &id, MW_CA_JOIN_MAX_TTL + 1, &clk, &tok, &info),
                    MW_E_INPUT);
    mw_assert_fails(mw_ca_join_create(s, &id, 60, &clk, &plain, &info), MW_E_INTERNAL);
    make_id("spiffe://example.org", &id);
    mw_assert_fails(mw_ca_join_create(s, &id, 60, &clk, &tok, &info), MW_E_INPUT);
    assert_int_equal(tok.n, 0);
    mw_dynbuf_free(&tok);
    mw_dynbuf_free(&plain);
    mw_ca_store_close(s);
}

struct listed {
    size_t n;
    struct mw_ca_join_info last;
};

static mw_result each(void *ctx, const struct mw_ca_join_info *info)
{
    struct listed *l = ctx;
    l->n++;
    l->last = *info;
    return MW_SUCCESS;
}

static void test_list_and_hash_only(void **state)
{
    char path[512];
    struct mw_ca_store *s = open_store(path, sizeof(path));
    struct mw_dynbuf t1, t2;
    struct mw_ca_join_info i1, i2;
    create(s, "spiffe://example.org/a", 60, NOW, &t1, &i1);
    create(s, "spiffe://example.org/b", 60, NOW + 1, &t2, &i2);
    assert_memory_not_equal(t1.p, t2.p, t1.n);
    struct listed l = {0};
    mw_assert_ok(mw_ca_join_list(s, each, &l));
    assert_int_equal(l.n, 2);
    assert_string_equal(l.last.spiffe_id, "spiffe://example.org/b");
    assert_string_equal(l.last.handle, i2.handle);
    mw_ca_store_close(s);
    /* The database (and its WAL) never holds the token text. */
    char wal[600];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    const char *files[] = {path, wal};
    for (size_t f = 0; f < 2; f++) {
        struct mw_dynbuf db;
        mw_dynbuf_init(&db, 64u << 20);
        if (mw_failed(mw_file_read(files[f], 64u << 20, &db))) {
            mw_error_clear();
            mw_dynbuf_free(&db);
            continue;
        }
        assert_null(memmem(db.p, db.n, t1.p + 5, t1.n - 5));
        assert_null(memmem(db.p, db.n, t2.p + 5, t2.n - 5));
        mw_dynbuf_free(&db);
    }
    mw_dynbuf_free(&t1);
    mw_dynbuf_free(&t2);
}

struct racer {
    const char *path;
    mw_slice token;
    bool won;
    enum mw_err code;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct mw_ca_store *s = NULL;
    struct mw_clock clk = mw_clock_fixed(NOW + 1);
    struct mw_ca_join_info info;
    if (mw_failed(mw_ca_store_open(r->path, &s))) {
        r->code = mw_error_code();
        return NULL;
    }
    r->won = mw_ok(mw_ca_join_redeem(s, r->token, &clk, &info));
    r->code = r->won ? MW_E_NONE : mw_error_code();
    mw_ca_store_close(s);
    return NULL;
}

/* Eight connections redeem one token at once: exactly one wins, the others see it used. */
static void test_concurrent_redeem(void **state)
{
    char path[512];
    struct mw_ca_store *s = open_store(path, sizeof(path));
    struct mw_dynbuf tok;
    struct mw_ca_join_info info;
    create(s, "spiffe://example.org/host/db-1", 600, NOW, &tok, &info);
    mw_ca_store_close(s);
    struct racer r[8];
    pthread_t t[8];
    for (size_t i = 0; i < 8; i++) {
        r[i] = (struct racer){.path = path, .token = mw_dynbuf_slice(&tok)};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    size_t wins = 0;
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        if (r[i].won)
            wins++;
        else
            assert_int_equal(r[i].code, MW_E_VERIFY);
    }
    assert_int_equal(wins, 1);
    mw_dynbuf_free(&tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_redeem_replay),  cmocka_unit_test(test_expired),
        cmocka_unit_test(test_unknown_and_malformed), cmocka_unit_test(test_create_rules),
        cmocka_unit_test(test_list_and_hash_only),    cmocka_unit_test(test_concurrent_redeem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
