/* The CA store: file, schema, artifacts, registrations. */
#include "testutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <meshward/ca_auth.h>

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define A1 "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

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
        cmocka_unit_test(test_registrations_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
