/* The CA store: file, schema and its migration, artifacts and their revocation, registrations. */
#include "testutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <meshward/ca_auth.h>

#define D1      "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2      "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3      "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D4      "sha256:4444444444444444444444444444444444444444444444444444444444444444"
#define D5      "sha256:5555555555555555555555555555555555555555555555555555555555555555"
#define A1      "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define A2      "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define P1      "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define R1      "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define ALICE   "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
#define GHA     "https://token.actions.githubusercontent.com"
#define GITLAB  "https://gitlab.com"
#define KEY1    "4cb32c4837c6dda8cfb1681efb3fef5f94ffce5b979e6bdb9139302c857af139"
#define KEY2    "9999999999999999999999999999999999999999999999999999999999999999"
#define BUILDER "https://builder.example/v1"

static struct mw_ca_store *open_store(char *path, size_t cap)
{
    snprintf(path, cap, "%s/ca.db", mw_test_tmpdir());
    struct mw_ca_store *s = NULL;
    mw_assert_ok(mw_ca_store_open(path, &s));
    return s;
}

static void test_open(void **state)
{
    char path[512];
    struct mw_ca_store *s = open_store(path, sizeof(path));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    mw_ca_store_close(s);
    /* WAL mode persists in the file. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    /* A store from a future meshward is refused. */
    assert_int_equal(
        sqlite3_exec(db, "UPDATE meta SET value = 99 WHERE key = 'schema'", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    mw_assert_fails(mw_ca_store_open(path, &s), MW_E_UNSUPPORTED);
    assert_non_null(strstr(mw_error_msg(), "schema version 99"));
    assert_null(s);
    /* Not a database. */
    char junk[600];
    snprintf(junk, sizeof(junk), "%s.junk", path);
    mw_assert_ok(mw_file_write_atomic(junk,
                                      mw_slice_cstr("this is not sqlite, not at all....."
                                                    "................................."
                                                    "................................."),
                                      0600));
    mw_assert_fails(mw_ca_store_open(junk, &s), MW_E_IO);
    snprintf(junk, sizeof(junk), "%s/missing/dir/ca.db", mw_test_tmpdir());
    mw_assert_fails(mw_ca_store_open(junk, &s), MW_E_IO);
}

static struct mw_ca_artifact art(const char *img, const char *att, const char *builder)
{
    struct mw_ca_artifact a;
    memset(&a, 0, sizeof(a));
    snprintf(a.image_digest, sizeof(a.image_digest), "%s", img);
    snprintf(a.attestation_digest, sizeof(a.attestation_digest), "%s", att);
    snprintf(a.builder_id, sizeof(a.builder_id), "%s", builder);
    a.admitted_at = 1795521600;
    return a;
}

static mw_result count_each(void *ctx, const struct mw_ca_artifact *a)
{
    (*(size_t *)ctx)++;
    return MW_SUCCESS;
}

static void test_artifacts(void **state)
{
    char path[512];
    struct mw_ca_store *s = open_store(path, sizeof(path));
    const char *builder = "https://github.com/slsa-framework/slsa-github-generator/.github/"
                          "workflows/generator_container_slsa3.yml@refs/tags/v2.0.0";
    struct mw_ca_artifact a = art(D1, A1, builder);
    snprintf(a.source_repo, sizeof(a.source_repo), "git+https://github.com/acme/shop");
    mw_assert_ok(mw_ca_artifact_put(s, &a));
    struct mw_ca_artifact got;
    mw_assert_ok(mw_ca_artifact_get(s, mw_slice_cstr(D1), &got));
    assert_string_equal(got.attestation_digest, A1);
    assert_string_equal(got.builder_id, builder);
    assert_string_equal(got.source_repo, "git+https://github.com/acme/shop");
    assert_int_equal(got.admitted_at, 1795521600);
    mw_assert_fails(mw_ca_artifact_get(s, mw_slice_cstr(D2), &got), MW_E_NOTFOUND);
    /* Replace. */
    a.admitted_at++;
    mw_assert_ok(mw_ca_artifact_put(s, &a));
    struct mw_ca_artifact b = art(D2, A1, "https://builder.example/v1");
    mw_assert_ok(mw_ca_artifact_put(s, &b));
    size_t n = 0;
    mw_assert_ok(mw_ca_artifact_list(s, count_each, &n));
    assert_int_equal(n, 2);
    mw_assert_ok(mw_ca_artifact_remove(s, mw_slice_cstr(D1)));
    mw_assert_fails(mw_ca_artifact_remove(s, mw_slice_cstr(D1)), MW_E_NOTFOUND);
    n = 0;
    mw_assert_ok(mw_ca_artifact_list(s, count_each, &n));
    assert_int_equal(n, 1);

    /* Bad input is refused before it reaches SQL. */
    static const char *bad_digests[] = {
        "sha256:111",
        "SHA256:1111111111111111111111111111111111111111111111111111111111111111",
        "sha256:111111111111111111111111111111111111111111111111111111111111111G",
        "sha256:'; DROP TABLE artifact;--111111111111111111111111111111111111111",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        ""};
    for (size_t i = 0; i < MW_ARRAY_LEN(bad_digests); i++) {
        struct mw_ca_artifact x = art(bad_digests[i], A1, builder);
        mw_assert_fails(mw_ca_artifact_put(s, &x), MW_E_INPUT);
        x = art(D1, bad_digests[i], builder);
        mw_assert_fails(mw_ca_artifact_put(s, &x), MW_E_INPUT);
        mw_assert_fails(mw_ca_artifact_get(s, mw_slice_cstr(bad_digests[i]), &got), MW_E_INPUT);
    }
    struct mw_ca_artifact x = art(D1, A1, "not a uri");
    mw_assert_fails(mw_ca_artifact_put(s, &x), MW_E_INPUT);
    x = art(D1, A1, "");
    mw_assert_fails(mw_ca_artifact_put(s, &x), MW_E_INPUT);
    mw_ca_store_close(s);
}

/* ---------------------------------------------------------------- schema migration */

/* The schema meshward wrote at version 1, verbatim: the migration must read what it left. */
static const char v1_schema[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE join_token("
    " hash BLOB PRIMARY KEY CHECK(length(hash) = 32),"
    " spiffe_id TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " used INTEGER NOT NULL DEFAULT 0 CHECK(used IN (0, 1)),"
    " used_at INTEGER);"
    "CREATE TABLE artifact("
    " image_digest TEXT PRIMARY KEY,"
    " attestation_digest TEXT NOT NULL,"
    " builder_id TEXT NOT NULL,"
    " source_repo TEXT NOT NULL,"
    " admitted_at INTEGER NOT NULL);"
    "CREATE TABLE registration("
    " seq INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " by_k8s INTEGER NOT NULL,"
    " spiffe_id TEXT NOT NULL,"
    " ns TEXT NOT NULL,"
    " sa TEXT NOT NULL,"
    " requires_provenance INTEGER NOT NULL,"
    " max_ttl INTEGER NOT NULL);"
    "CREATE TABLE registration_image("
    " seq INTEGER NOT NULL REFERENCES registration(seq) ON DELETE CASCADE,"
    " pos INTEGER NOT NULL,"
    " digest TEXT NOT NULL,"
    " PRIMARY KEY(seq, pos));"
    "INSERT INTO meta(key, value) VALUES('schema', 1);"
    "INSERT INTO artifact VALUES('" D1 "', '" A1 "', '" BUILDER
    "', 'git+https://github.com/acme/shop', 1700000000);"
    "INSERT INTO artifact VALUES('" D2 "', '" A2 "', '" BUILDER "', '', 1700000001);"
    "INSERT INTO registration VALUES(1, 'api', 1, '', 'shop', 'api', 1, 0);"
    "INSERT INTO registration_image VALUES(1, 0, '" D1 "');";

static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static void make_v1(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, v1_schema, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("v1 schema: %s", err);
    sqlite3_close(db);
}

static void test_migrate_v1(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof(path), "%s/v1.db", mw_test_tmpdir());
    make_v1(path);
    struct mw_ca_store *s = NULL;
    mw_assert_ok(mw_ca_store_open(path, &s));
    /* Old rows read back whole; what version 1 did not record is "". */
    struct mw_ca_artifact got;
    mw_assert_ok(mw_ca_artifact_get(s, mw_slice_cstr(D1), &got));
    assert_string_equal(got.attestation_digest, A1);
    assert_string_equal(got.builder_id, BUILDER);
    assert_string_equal(got.source_repo, "git+https://github.com/acme/shop");
    assert_int_equal(got.admitted_at, 1700000000);
    assert_string_equal(got.source_ref, "");
    assert_string_equal(got.signer_identity, "");
    assert_string_equal(got.signer_issuer, "");
    assert_string_equal(got.key_id, "");
    assert_string_equal(got.policy_hash, "");
    assert_string_equal(got.trusted_root_hash, "");
    mw_assert_ok(mw_ca_artifact_get(s, mw_slice_cstr(D2), &got));
    assert_string_equal(got.source_repo, "");
    size_t n = 0;
    mw_assert_ok(mw_ca_artifact_list(s, count_each, &n));
    assert_int_equal(n, 2);
    /* Other tables are untouched. */
    struct mw_ca_registrations *r = NULL;
    mw_assert_ok(mw_ca_store_get_registrations(s, &r));
    assert_int_equal(mw_ca_registrations_count(r), 1);
    assert_string_equal(mw_ca_registrations_at(r, 0)->images[0], D1);
    mw_ca_registrations_free(r);
    /* A version-2 record goes next to them. */
    struct mw_ca_artifact a = art(D3, A1, BUILDER);
    snprintf(a.signer_identity, sizeof(a.signer_identity), ALICE);
    snprintf(a.signer_issuer, sizeof(a.signer_issuer), GHA);
    snprintf(a.source_ref, sizeof(a.source_ref), "refs/heads/main");
    snprintf(a.policy_hash, sizeof(a.policy_hash), P1);
    snprintf(a.trusted_root_hash, sizeof(a.trusted_root_hash), R1);
    mw_assert_ok(mw_ca_artifact_put(s, &a));
    mw_ca_store_close(s);

    /* On disk: version 2, the new columns NULL (not "") in old rows, and set in the new one. */
    assert_int_equal(sql_int(path, "SELECT value FROM meta WHERE key = 'schema'"), 2);
    assert_int_equal(sql_int(path,
                             "SELECT count(*) FROM artifact WHERE signer_identity IS NULL"
                             " AND signer_issuer IS NULL AND key_id IS NULL AND source_ref"
                             " IS NULL AND policy_hash IS NULL AND trusted_root_hash IS NULL"),
                     2);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM artifact WHERE signer_identity = '" ALICE
                                   "' AND key_id IS NULL"),
                     1);
    assert_int_equal(sql_int(path,
                             "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN"
                             " ('artifact_signer', 'artifact_key', 'artifact_attestation')"),
                     3);

    /* Opening again does not migrate twice; a migrated old row revokes by attestation. */
    mw_assert_ok(mw_ca_store_open(path, &s));
    mw_assert_ok(mw_ca_artifact_get(s, mw_slice_cstr(D3), &got));
    assert_string_equal(got.signer_identity, ALICE);
    assert_string_equal(got.source_ref, "refs/heads/main");
    assert_string_equal(got.policy_hash, P1);
    struct mw_ca_artifact_match m = {.kind = MW_CA_MATCH_ATTESTATION, .value = A2};
    mw_assert_ok(mw_ca_artifact_revoke(s, &m, NULL, NULL, &n));
    assert_int_equal(n, 1);
    mw_assert_fails(mw_ca_artifact_get(s, mw_slice_cstr(D2), &got), MW_E_NOTFOUND);
    mw_ca_store_close(s);
}

static void test_migrate_fresh_and_refused(void **state)
{
    (void)state;
    char path[512];
    struct mw_ca_store *s = open_store(path, sizeof(path));
    mw_ca_store_close(s);
    assert_int_equal(sql_int(path, "SELECT value FROM meta WHERE key = 'schema'"), 2);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM pragma_table_info('artifact')"), 11);
    /* A version this code never wrote (0, or from the future) is refused, and left as it was. */
    static const int64_t bad[] = {0, -1, 3};
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_stmt *q = NULL;
        assert_int_equal(
            sqlite3_prepare_v2(db, "UPDATE meta SET value = ?1 WHERE key = 'schema'", -1, &q, NULL),
            SQLITE_OK);
        assert_int_equal(sqlite3_bind_int64(q, 1, bad[i]), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_DONE);
        sqlite3_finalize(q);
        sqlite3_close(db);
        mw_assert_fails(mw_ca_store_open(path, &s), MW_E_UNSUPPORTED);
        assert_null(s);
        assert_int_equal(sql_int(path, "SELECT value FROM meta WHERE key = 'schema'"), bad[i]);
    }
}

/* ---------------------------------------------------------------- revocation */

static struct mw_ca_artifact signed_art(const char *img, const char *att, const char *identity,
                                        const char *issuer, const char *key_id)
{
    struct mw_ca_artifact a = art(img, att, BUILDER);
    snprintf(a.signer_identity, sizeof(a.signer_identity), "%s", identity ? identity : "");
    snprintf(a.signer_issuer, sizeof(a.signer_issuer), "%s", issuer ? issuer : "");
    snprintf(a.key_id, sizeof(a.key_id), "%s", key_id ? key_id : "");
    snprintf(a.policy_hash, sizeof(a.policy_hash), P1);
    snprintf(a.trusted_root_hash, sizeof(a.trusted_root_hash), R1);
    return a;
}

static struct mw_ca_store *revoke_fixture(void)
{
    char path[512];
    struct mw_ca_store *s = open_store(path, sizeof(path));
    const struct mw_ca_artifact rows[] = {
        signed_art(D1, A1, ALICE, GHA, NULL),
        signed_art(D2, A2, ALICE, GITLAB, NULL),
        signed_art(D3, A1, NULL, NULL, KEY1),
        signed_art(D4, A2, NULL, NULL, KEY2),
        art(D5, A1, BUILDER), /* no signer, as a version-1 row */
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(rows); i++)
        mw_assert_ok(mw_ca_artifact_put(s, &rows[i]));
    return s;
}

struct seen {
    char digests[8][MW_CA_DIGEST_MAX + 1];
    size_t n;
    size_t fail_at; /* fail on this call (1-based); 0 never */
};

static mw_result collect(void *ctx, const struct mw_ca_artifact *a)
{
    struct seen *s = ctx;
    assert_true(s->n < 8);
    snprintf(s->digests[s->n++], sizeof(s->digests[0]), "%s", a->image_digest);
    /* The callback gets the whole record. */
    assert_string_equal(a->builder_id, BUILDER);
    if (s->fail_at == s->n) {
        mw_error_set(MW_E_IO, "reporting failed");
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

static const struct {
    struct mw_ca_artifact_match m;
    const char *want[5]; /* in image-digest order */
    size_t nwant;
} revoke_cases[] = {
    {{MW_CA_MATCH_DIGEST, D4, NULL}, {D4}, 1},
    {{MW_CA_MATCH_SIGNER, ALICE, GHA}, {D1}, 1},
    {{MW_CA_MATCH_SIGNER, ALICE, NULL}, {D1, D2}, 2},
    {{MW_CA_MATCH_SIGNER, ALICE, "https://accounts.google.com"}, {NULL}, 0},
    {{MW_CA_MATCH_SIGNER, "https://github.com/acme/other", GHA}, {NULL}, 0},
    {{MW_CA_MATCH_KEY_ID, KEY1, NULL}, {D3}, 1},
    {{MW_CA_MATCH_KEY_ID, "0000000000000000000000000000000000000000000000000000000000000000", NULL},
     {NULL},
     0},
    {{MW_CA_MATCH_ATTESTATION, A1, NULL}, {D1, D3, D5}, 3},
    {{MW_CA_MATCH_ATTESTATION, A2, NULL}, {D2, D4}, 2},
    {{MW_CA_MATCH_DIGEST, "sha256:6666666666666666666666666666666666666666666666666666666666666666",
      NULL},
     {NULL},
     0},
};

static void test_revoke(void **state)
{
    (void)state;
    static const char *all[] = {D1, D2, D3, D4, D5};
    for (size_t i = 0; i < MW_ARRAY_LEN(revoke_cases); i++) {
        struct mw_ca_store *s = revoke_fixture();
        struct seen seen = {0};
        size_t n = 99;
        mw_assert_ok(mw_ca_artifact_revoke(s, &revoke_cases[i].m, collect, &seen, &n));
        if (n != revoke_cases[i].nwant || seen.n != n)
            fail_msg("case %zu: %zu revoked (%zu reported), want %zu", i, n, seen.n,
                     revoke_cases[i].nwant);
        for (size_t j = 0; j < n; j++)
            assert_string_equal(seen.digests[j], revoke_cases[i].want[j]);
        /* Exactly those are gone; the rest stay. */
        for (size_t j = 0; j < MW_ARRAY_LEN(all); j++) {
            bool gone = false;
            for (size_t k = 0; k < n; k++)
                gone |= strcmp(all[j], revoke_cases[i].want[k]) == 0;
            struct mw_ca_artifact got;
            mw_result r = mw_ca_artifact_get(s, mw_slice_cstr(all[j]), &got);
            if (mw_ok(r) == gone)
                fail_msg("case %zu: %s is %s", i, all[j], gone ? "still there" : "gone");
        }
        mw_ca_store_close(s);
    }
}

static void test_revoke_refused(void **state)
{
    (void)state;
    struct mw_ca_store *s = revoke_fixture();
    static const struct mw_ca_artifact_match bad[] = {
        {0, D1, NULL},
        {MW_CA_MATCH_DIGEST, NULL, NULL},
        {MW_CA_MATCH_DIGEST, "sha256:1", NULL},
        {MW_CA_MATCH_DIGEST, "' OR 1=1 --", NULL},
        {MW_CA_MATCH_ATTESTATION, "AAAA", NULL},
        {MW_CA_MATCH_KEY_ID, "4CB32C4837C6DDA8CFB1681EFB3FEF5F94FFCE5B979E6BDB9139302C857AF139",
         NULL},
        {MW_CA_MATCH_KEY_ID, "4cb32c", NULL},
        {MW_CA_MATCH_KEY_ID, "%", NULL},
        {MW_CA_MATCH_SIGNER, "", GHA},
        {MW_CA_MATCH_SIGNER, "has space", GHA},
        {MW_CA_MATCH_SIGNER, ALICE, "not a uri"},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        size_t n = 99;
        mw_assert_fails(mw_ca_artifact_revoke(s, &bad[i], NULL, NULL, &n), MW_E_INPUT);
        assert_int_equal(n, 0);
    }
    size_t n = 0;
    mw_assert_ok(mw_ca_artifact_list(s, count_each, &n));
    assert_int_equal(n, 5);
    /* A failing callback does not undo the revocation: both records are gone. */
    struct seen seen = {.fail_at = 1};
    struct mw_ca_artifact_match m = {MW_CA_MATCH_SIGNER, ALICE, NULL};
    mw_assert_fails(mw_ca_artifact_revoke(s, &m, collect, &seen, &n), MW_E_IO);
    assert_int_equal(n, 2);
    n = 0;
    mw_assert_ok(mw_ca_artifact_list(s, count_each, &n));
    assert_int_equal(n, 3);
    mw_ca_store_close(s);
}

static void test_artifact_v2_fields(void **state)
{
    (void)state;
    char path[512];
    struct mw_ca_store *s = open_store(path, sizeof(path));
    struct mw_ca_artifact a = signed_art(D1, A1, NULL, NULL, KEY1);
    snprintf(a.source_ref, sizeof(a.source_ref), "refs/tags/v1.2.3");
    mw_assert_ok(mw_ca_artifact_put(s, &a));
    struct mw_ca_artifact got;
    mw_assert_ok(mw_ca_artifact_get(s, mw_slice_cstr(D1), &got));
    assert_string_equal(got.key_id, KEY1);
    assert_string_equal(got.signer_identity, "");
    assert_string_equal(got.source_ref, "refs/tags/v1.2.3");
    assert_string_equal(got.policy_hash, P1);
    assert_string_equal(got.trusted_root_hash, R1);

    /* Each kind of bad record is refused before it reaches SQL. */
    struct {
        struct mw_ca_artifact a;
        const char *want;
    } bad[] = {
        {signed_art(D1, A1, ALICE, GHA, KEY1), "not both"},
        {signed_art(D1, A1, ALICE, NULL, NULL), "issuer"},
        {signed_art(D1, A1, NULL, GHA, NULL), "issuer"},
        {signed_art(D1, A1, ALICE, "accounts.google.com", NULL), "signer issuer"},
        {signed_art(D1, A1, "alice example", GHA, NULL), "signer identity"},
        {signed_art(D1, A1, NULL, NULL, "ABCD"), "key id"},
        {signed_art(D1, A1, NULL, NULL, KEY1), "policy hash"},
        {signed_art(D1, A1, NULL, NULL, KEY1), "trusted-root hash"},
        {signed_art(D1, A1, NULL, NULL, KEY1), "source ref"},
    };
    snprintf(bad[6].a.policy_hash, sizeof(bad[6].a.policy_hash), "md5:00");
    snprintf(bad[7].a.trusted_root_hash, sizeof(bad[7].a.trusted_root_hash), "sha256:00");
    snprintf(bad[8].a.source_ref, sizeof(bad[8].a.source_ref), "refs/heads/main\nx");
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        mw_assert_fails(mw_ca_artifact_put(s, &bad[i].a), MW_E_INPUT);
        if (strstr(mw_error_msg(), bad[i].want) == NULL)
            fail_msg("case %zu: \"%s\" does not mention %s", i, mw_error_msg(), bad[i].want);
    }
    mw_assert_ok(mw_ca_artifact_get(s, mw_slice_cstr(D1), &got));
    assert_string_equal(got.key_id, KEY1);
    mw_ca_store_close(s);
}

static void test_registrations_roundtrip(void **state)
{
    char path[512];
    struct mw_ca_store *s = open_store(path, sizeof(path));
    const char *yaml = "apiVersion: meshward.io/v1alpha1\n"
                       "kind: WorkloadRegistration\n"
                       "metadata: {name: api}\n"
                       "spec:\n"
                       "  kubernetes: {namespace: shop, serviceAccount: api}\n"
                       "  requiresProvenance: true\n"
                       "  images: [" D1 ", " D2 "]\n"
                       "  maxTTL: 30m\n"
                       "---\n"
                       "apiVersion: meshward.io/v1alpha1\n"
                       "kind: WorkloadRegistration\n"
                       "metadata: {name: db-host}\n"
                       "spec:\n"
                       "  spiffeID: spiffe://example.org/host/db-1\n";
    struct mw_ca_registrations *r = NULL;
    mw_assert_ok(mw_ca_registrations_parse(mw_slice_cstr(yaml), "regs.yaml", &r));
    mw_assert_ok(mw_ca_store_set_registrations(s, r));
    mw_assert_ok(mw_ca_store_set_registrations(s, r)); /* replaces, no duplicates */
    mw_ca_registrations_free(r);
    mw_ca_store_close(s);
    mw_assert_ok(mw_ca_store_open(path, &s));
    mw_assert_ok(mw_ca_store_get_registrations(s, &r));
    assert_int_equal(mw_ca_registrations_count(r), 2);
    const struct mw_ca_registration *e = mw_ca_registrations_at(r, 0);
    assert_string_equal(e->name, "api");
    assert_true(e->by_k8s);
    assert_string_equal(e->ns, "shop");
    assert_string_equal(e->sa, "api");
    assert_true(e->requires_provenance);
    assert_int_equal(e->n_images, 2);
    assert_string_equal(e->images[1], D2);
    assert_int_equal(e->max_ttl_s, 1800);
    e = mw_ca_registrations_at(r, 1);
    assert_false(e->by_k8s);
    assert_string_equal(e->spiffe_id, "spiffe://example.org/host/db-1");
    assert_false(e->requires_provenance);
    assert_int_equal(e->n_images, 0);
    assert_null(mw_ca_registrations_at(r, 2));
    mw_ca_registrations_free(r);
    mw_ca_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_artifacts),
        cmocka_unit_test(test_migrate_v1),
        cmocka_unit_test(test_migrate_fresh_and_refused),
        cmocka_unit_test(test_revoke),
        cmocka_unit_test(test_revoke_refused),
        cmocka_unit_test(test_artifact_v2_fields),
        cmocka_unit_test(test_registrations_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
