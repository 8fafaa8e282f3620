/*
 * The CA's SQLite store: one file, WAL journal, a busy timeout, a schema
 * version, and prepared statements with bound values only (no SQL text is
 * ever built from data). Join tokens live in ca_cred_join.c; artifacts and
 * registrations here.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca/ca_auth_internal.h"

/* ---------------------------------------------------------------- shared helpers */

const char *mw_ca_cred_kind_name(enum mw_ca_cred_kind kind)
{
    switch (kind) {
    case MW_CA_CRED_K8S:
        return "k8s-sat";
    case MW_CA_CRED_JOIN:
        return "join-token";
    case MW_CA_CRED_SVID:
        return "svid";
    }
    return "?";
}

mw_result mw_ca_cred_kind_parse(mw_slice name, enum mw_ca_cred_kind *out)
{
    if (mw_slice_eq_cstr(name, "k8s-sat"))
        *out = MW_CA_CRED_K8S;
    else if (mw_slice_eq_cstr(name, "join-token"))
        *out = MW_CA_CRED_JOIN;
    else
        MW_BAIL(MW_E_INPUT, "unknown credential kind \"%.*s\" (want k8s-sat or join-token)",
                (int)(name.n > 32 ? 32 : name.n), (const char *)name.p);
    return MW_SUCCESS;
}

mw_result mw_ca_digest_check(mw_slice d, const char *what)
{
    /* sha256 only, as the SVID provenance extension (ca.h) carries: a digest the CA could
     * admit but not put in a certificate would fail late, at issuance. */
    mw_slice pre = mw_slice_cstr("sha256:");
    MW_ENSURE(mw_slice_has_prefix(d, pre), MW_E_INPUT, "%s: not a digest (want sha256:<64 hex>)",
              what);
    MW_ENSURE(d.n == pre.n + 64, MW_E_INPUT, "%s: sha256 digest has %zu hex digits, want 64", what,
              d.n - pre.n);
    for (size_t j = pre.n; j < d.n; j++) {
        uint8_t c = d.p[j];
        /* Lower case only: one spelling per digest, so equal digests compare equal. */
        MW_ENSURE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'), MW_E_INPUT,
                  "%s: digest has a character that is not lower-case hex at offset %zu", what, j);
    }
    return MW_SUCCESS;
}

mw_result mw_ca_copy(char *dst, size_t cap, mw_slice src, const char *what)
{
    MW_ENSURE(src.n < cap, MW_E_LIMIT, "%s is %zu bytes, at most %zu", what, src.n, cap - 1);
    MW_ENSURE(memchr(src.p, 0, src.n) == NULL, MW_E_INPUT, "%s contains a NUL byte", what);
    if (src.n > 0)
        memcpy(dst, src.p, src.n);
    dst[src.n] = '\0';
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- open / close */

void mw_ca_store_error(struct mw_ca_store *s, enum mw_err code, const char *what)
{
    mw_error_set(code, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

mw_result mw_ca_store_prepare(struct mw_ca_store *s, const char *sql, sqlite3_stmt **out)
{
    *out = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, out, NULL) != SQLITE_OK) {
        mw_ca_store_error(s, MW_E_IO, "prepare");
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

static mw_result exec_fixed(struct mw_ca_store *s, const char *sql, const char *what)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        mw_ca_store_error(s, MW_E_IO, what);
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

mw_result mw_ca_store_begin(struct mw_ca_store *s)
{
    /* IMMEDIATE: take the write lock now, so the read that decides and the write agree. */
    return exec_fixed(s, "BEGIN IMMEDIATE", "begin");
}

mw_result mw_ca_store_commit(struct mw_ca_store *s)
{
    return exec_fixed(s, "COMMIT", "commit");
}

void mw_ca_store_rollback(struct mw_ca_store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* The tables as schema version 1 made them; later versions are migrations[] below. */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS join_token("
    " hash BLOB PRIMARY KEY CHECK(length(hash) = 32),"
    " spiffe_id TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " used INTEGER NOT NULL DEFAULT 0 CHECK(used IN (0, 1)),"
    " used_at INTEGER);"
    "CREATE TABLE IF NOT EXISTS artifact("
    " image_digest TEXT PRIMARY KEY,"
    " attestation_digest TEXT NOT NULL,"
    " builder_id TEXT NOT NULL,"
    " source_repo TEXT NOT NULL,"
    " admitted_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS registration("
    " seq INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " by_k8s INTEGER NOT NULL,"
    " spiffe_id TEXT NOT NULL,"
    " ns TEXT NOT NULL,"
    " sa TEXT NOT NULL,"
    " requires_provenance INTEGER NOT NULL,"
    " max_ttl INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS registration_image("
    " seq INTEGER NOT NULL REFERENCES registration(seq) ON DELETE CASCADE,"
    " pos INTEGER NOT NULL,"
    " digest TEXT NOT NULL,"
    " PRIMARY KEY(seq, pos));";

/*
 * Migrations: migrations[v - 1] takes a store from version v to v + 1. Each
 * only adds (columns that are NULL in old rows, indexes), so rows an earlier
 * meshward wrote stay readable; a store is never migrated down.
 */
static const char *const migrations[] = {
    /* 1 -> 2: who signed the admitted artifact, its source ref, and the policy and trusted
     * root the verdict was made under; indexes for revocation by signer, key and attestation. */
    "ALTER TABLE artifact ADD COLUMN source_ref TEXT;"
    "ALTER TABLE artifact ADD COLUMN signer_identity TEXT;"
    "ALTER TABLE artifact ADD COLUMN signer_issuer TEXT;"
    "ALTER TABLE artifact ADD COLUMN key_id TEXT;"
    "ALTER TABLE artifact ADD COLUMN policy_hash TEXT;"
    "ALTER TABLE artifact ADD COLUMN trusted_root_hash TEXT;"
    "CREATE INDEX artifact_signer ON artifact(signer_identity, signer_issuer);"
    "CREATE INDEX artifact_key ON artifact(key_id);"
    "CREATE INDEX artifact_attestation ON artifact(attestation_digest);",
};
_Static_assert(MW_ARRAY_LEN(migrations) == MW_CA_STORE_SCHEMA - 1,
               "one migration per schema version step");

/* *found false: a new store (no version recorded yet). */
static mw_result read_schema_version(struct mw_ca_store *s, int64_t *out, bool *found)
{
    MW_DEFER_STMT sqlite3_stmt *get = NULL;
    MW_GUARD(mw_ca_store_prepare(s, "SELECT value FROM meta WHERE key = 'schema'", &get));
    int rc = sqlite3_step(get);
    *found = rc == SQLITE_ROW;
    *out = 0;
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(get, 0);
    } else if (rc != SQLITE_DONE) {
        mw_ca_store_error(s, MW_E_IO, "read schema version");
        return MW_FAILURE;
    }
    /* A statement still holding a row blocks COMMIT. */
    sqlite3_reset(get);
    return MW_SUCCESS;
}

static mw_result write_schema_version(struct mw_ca_store *s)
{
    MW_DEFER_STMT sqlite3_stmt *put = NULL;
    MW_GUARD(mw_ca_store_prepare(s, "INSERT OR REPLACE INTO meta(key, value) VALUES('schema', ?1)",
                                 &put));
    if (sqlite3_bind_int(put, 1, MW_CA_STORE_SCHEMA) != SQLITE_OK ||
        sqlite3_step(put) != SQLITE_DONE) {
        mw_ca_store_error(s, MW_E_IO, "write schema version");
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

static mw_result migrate(struct mw_ca_store *s)
{
    /* The version-1 tables (IF NOT EXISTS): a new store starts at 1 and migrates up. */
    MW_GUARD(exec_fixed(s, schema_sql, "create schema"));
    int64_t v;
    bool found;
    MW_GUARD(read_schema_version(s, &v, &found));
    bool fresh = !found;
    if (fresh)
        v = 1;
    MW_ENSURE(v >= 1 && v <= MW_CA_STORE_SCHEMA, MW_E_UNSUPPORTED,
              "%s: store schema version %" PRId64 ", this meshward reads version %d", s->path, v,
              MW_CA_STORE_SCHEMA);
    if (v == MW_CA_STORE_SCHEMA && !fresh)
        return MW_SUCCESS;
    for (; v < MW_CA_STORE_SCHEMA; v++)
        MW_GUARD(exec_fixed(s, migrations[v - 1], "migrate schema"));
    return write_schema_version(s);
}

static mw_result check_schema(struct mw_ca_store *s)
{
    /* One IMMEDIATE transaction: two processes opening an old store migrate it once. */
    MW_GUARD(mw_ca_store_begin(s));
    mw_result r = migrate(s);
    if (mw_ok(r))
        r = mw_ca_store_commit(s);
    if (mw_failed(r))
        mw_ca_store_rollback(s);
    return r;
}

mw_result mw_ca_store_open(const char *path, struct mw_ca_store **out)
{
    *out = NULL;
    struct mw_ca_store *s = calloc(1, sizeof(*s));
    MW_ENSURE(s != NULL, MW_E_NOMEM, "out of memory");
    size_t n = strlen(path);
    if (n >= sizeof(s->path)) {
        free(s);
        MW_BAIL(MW_E_INPUT, "store path is too long");
    }
    memcpy(s->path, path, n + 1);
    /* The store holds token hashes and policy: create it private (SQLite would use 0644). */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        mw_error_set(MW_E_IO, "%s: %s", path, strerror(errno));
        free(s);
        return MW_FAILURE;
    }
    close(fd);
    mw_result r = MW_SUCCESS;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        mw_error_set(MW_E_IO, "%s: cannot open: %s", path,
                     s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
        r = MW_FAILURE;
    }
    if (mw_ok(r) && sqlite3_busy_timeout(s->db, 5000) != SQLITE_OK) {
        mw_ca_store_error(s, MW_E_IO, "busy timeout");
        r = MW_FAILURE;
    }
    /* WAL: readers do not block the writer; FULL: a redeemed join token stays redeemed
     * after a power cut, or it could be replayed. */
    MW_DEFER_STMT sqlite3_stmt *wal = NULL;
    if (mw_ok(r))
        r = mw_ca_store_prepare(s, "PRAGMA journal_mode=WAL", &wal);
    if (mw_ok(r)) {
        if (sqlite3_step(wal) != SQLITE_ROW) {
            mw_ca_store_error(s, MW_E_IO, "journal mode");
            r = MW_FAILURE;
        } else if (strcmp((const char *)sqlite3_column_text(wal, 0), "wal") != 0) {
            mw_error_set(MW_E_IO, "%s: cannot use WAL mode", path);
            r = MW_FAILURE;
        }
        sqlite3_reset(wal);
    }
    if (mw_ok(r))
        r = exec_fixed(s, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", "pragmas");
    if (mw_ok(r))
        r = check_schema(s);
    if (mw_failed(r)) {
        sqlite3_finalize(wal);
        wal = NULL;
        mw_ca_store_close(s);
        return MW_FAILURE;
    }
    *out = s;
    return MW_SUCCESS;
}

void mw_ca_store_close(struct mw_ca_store *s)
{
    if (s == NULL)
        return;
    sqlite3_close(s->db);
    free(s);
}

/* ---------------------------------------------------------------- artifacts */

static mw_result bind_text(struct mw_ca_store *s, sqlite3_stmt *st, int i, const char *v)
{
    if (sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        mw_ca_store_error(s, MW_E_IO, "bind");
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

static mw_result bind_slice(struct mw_ca_store *s, sqlite3_stmt *st, int i, mw_slice v)
{
    if (sqlite3_bind_text(st, i, (const char *)v.p, (int)v.n, SQLITE_TRANSIENT) != SQLITE_OK) {
        mw_ca_store_error(s, MW_E_IO, "bind");
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

static mw_result column_text(sqlite3_stmt *st, int i, char *dst, size_t cap, const char *what)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    return mw_ca_copy(
        dst, cap,
        mw_slice_make(t != NULL ? t : (const unsigned char *)"", t != NULL ? (size_t)n : 0), what);
}

/* A URI: a scheme, ':', then printable ASCII without spaces. */
static mw_result check_uri(mw_slice u, const char *what)
{
    size_t colon = mw_slice_find(u, ':', 0);
    MW_ENSURE(colon > 0 && colon < u.n && colon + 1 < u.n, MW_E_INPUT, "%s \"%.*s\" is not a URI",
              what, (int)(u.n > 64 ? 64 : u.n), (const char *)u.p);
    for (size_t i = 0; i < u.n; i++)
        MW_ENSURE(u.p[i] > 0x20 && u.p[i] < 0x7f, MW_E_INPUT,
                  "%s has a space or a non-ASCII byte at offset %zu", what, i);
    return MW_SUCCESS;
}

/* Printable ASCII without spaces (a Git ref, a key id): nothing a log line could be split on. */
static mw_result check_token(mw_slice t, const char *what)
{
    for (size_t i = 0; i < t.n; i++)
        MW_ENSURE(t.p[i] > 0x20 && t.p[i] < 0x7f, MW_E_INPUT,
                  "%s has a space, control or non-ASCII byte at offset %zu", what, i);
    return MW_SUCCESS;
}

/* A SAN (URI or e-mail address): printable ASCII, at most what the record holds. */
static mw_result check_identity(mw_slice id)
{
    MW_ENSURE(id.n > 0, MW_E_INPUT, "signer identity is empty");
    MW_ENSURE(id.n < sizeof(((struct mw_ca_artifact *)0)->signer_identity), MW_E_LIMIT,
              "signer identity is %zu bytes, at most %zu", id.n,
              sizeof(((struct mw_ca_artifact *)0)->signer_identity) - 1);
    return check_token(id, "signer identity");
}

static mw_result check_key_id(mw_slice k)
{
    MW_ENSURE(k.n == 64, MW_E_INPUT, "key id has %zu characters, want 64 hex (SHA-256 of the SPKI)",
              k.n);
    for (size_t i = 0; i < k.n; i++)
        MW_ENSURE((k.p[i] >= '0' && k.p[i] <= '9') || (k.p[i] >= 'a' && k.p[i] <= 'f'), MW_E_INPUT,
                  "key id has a character that is not lower-case hex at offset %zu", i);
    return MW_SUCCESS;
}

static mw_result artifact_check(const struct mw_ca_artifact *a)
{
    MW_GUARD(mw_ca_digest_check(mw_slice_cstr(a->image_digest), "image digest"));
    MW_GUARD(mw_ca_digest_check(mw_slice_cstr(a->attestation_digest), "attestation digest"));
    MW_GUARD(check_uri(mw_slice_cstr(a->builder_id), "builder id"));
    if (a->source_repo[0] != '\0')
        MW_GUARD(check_uri(mw_slice_cstr(a->source_repo), "source repo"));
    if (a->source_ref[0] != '\0')
        MW_GUARD(check_token(mw_slice_cstr(a->source_ref), "source ref"));
    /* A record names one kind of signer: a certificate identity with its issuer, or a key. */
    MW_ENSURE(a->signer_identity[0] == '\0' || a->key_id[0] == '\0', MW_E_INPUT,
              "an admitted artifact has a signer identity or a key id, not both");
    MW_ENSURE((a->signer_identity[0] == '\0') == (a->signer_issuer[0] == '\0'), MW_E_INPUT,
              "a signer identity needs its OIDC issuer, and an issuer its identity");
    if (a->signer_identity[0] != '\0') {
        MW_GUARD(check_identity(mw_slice_cstr(a->signer_identity)));
        MW_GUARD(check_uri(mw_slice_cstr(a->signer_issuer), "signer issuer"));
    }
    if (a->key_id[0] != '\0')
        MW_GUARD(check_key_id(mw_slice_cstr(a->key_id)));
    if (a->policy_hash[0] != '\0')
        MW_GUARD(mw_ca_digest_check(mw_slice_cstr(a->policy_hash), "policy hash"));
    if (a->trusted_root_hash[0] != '\0')
        MW_GUARD(mw_ca_digest_check(mw_slice_cstr(a->trusted_root_hash), "trusted-root hash"));
    return MW_SUCCESS;
}

/* Columns added by schema version 2 are NULL, not "", when unknown: what old rows have too. */
static mw_result bind_opt(struct mw_ca_store *s, sqlite3_stmt *st, int i, const char *v)
{
    if (v[0] != '\0')
        return bind_text(s, st, i, v);
    if (sqlite3_bind_null(st, i) != SQLITE_OK) {
        mw_ca_store_error(s, MW_E_IO, "bind");
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

#define ARTIFACT_COLUMNS                                                                  \
    "image_digest, attestation_digest, builder_id, source_repo, admitted_at, source_ref," \
    " signer_identity, signer_issuer, key_id, policy_hash, trusted_root_hash"

mw_result mw_ca_artifact_put(struct mw_ca_store *s, const struct mw_ca_artifact *a)
{
    MW_GUARD(artifact_check(a));
    MW_DEFER_STMT sqlite3_stmt *st = NULL;
    MW_GUARD(mw_ca_store_prepare(s,
                                 "INSERT OR REPLACE INTO artifact(" ARTIFACT_COLUMNS ")"
                                 " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                                 &st));
    MW_GUARD(bind_text(s, st, 1, a->image_digest));
    MW_GUARD(bind_text(s, st, 2, a->attestation_digest));
    MW_GUARD(bind_text(s, st, 3, a->builder_id));
    MW_GUARD(bind_text(s, st, 4, a->source_repo));
    MW_GUARD(bind_opt(s, st, 6, a->source_ref));
    MW_GUARD(bind_opt(s, st, 7, a->signer_identity));
    MW_GUARD(bind_opt(s, st, 8, a->signer_issuer));
    MW_GUARD(bind_opt(s, st, 9, a->key_id));
    MW_GUARD(bind_opt(s, st, 10, a->policy_hash));
    MW_GUARD(bind_opt(s, st, 11, a->trusted_root_hash));
    if (sqlite3_bind_int64(st, 5, a->admitted_at) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
        mw_ca_store_error(s, MW_E_IO, "add artifact");
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

static mw_result artifact_row(sqlite3_stmt *st, struct mw_ca_artifact *a)
{
    memset(a, 0, sizeof(*a));
    MW_GUARD(column_text(st, 0, a->image_digest, sizeof(a->image_digest), "image digest"));
    MW_GUARD(column_text(st, 1, a->attestation_digest, sizeof(a->attestation_digest),
                         "attestation digest"));
    MW_GUARD(column_text(st, 2, a->builder_id, sizeof(a->builder_id), "builder id"));
    MW_GUARD(column_text(st, 3, a->source_repo, sizeof(a->source_repo), "source repo"));
    a->admitted_at = sqlite3_column_int64(st, 4);
    /* NULL (a version-1 row) reads as "". */
    MW_GUARD(column_text(st, 5, a->source_ref, sizeof(a->source_ref), "source ref"));
    MW_GUARD(column_text(st, 6, a->signer_identity, sizeof(a->signer_identity), "signer identity"));
    MW_GUARD(column_text(st, 7, a->signer_issuer, sizeof(a->signer_issuer), "signer issuer"));
    MW_GUARD(column_text(st, 8, a->key_id, sizeof(a->key_id), "key id"));
    MW_GUARD(column_text(st, 9, a->policy_hash, sizeof(a->policy_hash), "policy hash"));
    MW_GUARD(column_text(st, 10, a->trusted_root_hash, sizeof(a->trusted_root_hash),
                         "trusted-root hash"));
    return MW_SUCCESS;
}

mw_result mw_ca_artifact_get(struct mw_ca_store *s, mw_slice image_digest,
                             struct mw_ca_artifact *out)
{
    MW_GUARD(mw_ca_digest_check(image_digest, "image digest"));
    MW_DEFER_STMT sqlite3_stmt *st = NULL;
    MW_GUARD(mw_ca_store_prepare(
        s, "SELECT " ARTIFACT_COLUMNS " FROM artifact WHERE image_digest = ?1", &st));
    MW_GUARD(bind_slice(s, st, 1, image_digest));
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        MW_BAIL(MW_E_NOTFOUND, "image %.*s is not admitted", (int)image_digest.n,
                (const char *)image_digest.p);
    if (rc != SQLITE_ROW) {
        mw_ca_store_error(s, MW_E_IO, "read artifact");
        return MW_FAILURE;
    }
    return artifact_row(st, out);
}

mw_result mw_ca_artifact_remove(struct mw_ca_store *s, mw_slice image_digest)
{
    MW_GUARD(mw_ca_digest_check(image_digest, "image digest"));
    MW_DEFER_STMT sqlite3_stmt *st = NULL;
    MW_GUARD(mw_ca_store_prepare(s, "DELETE FROM artifact WHERE image_digest = ?1", &st));
    MW_GUARD(bind_slice(s, st, 1, image_digest));
    if (sqlite3_step(st) != SQLITE_DONE) {
        mw_ca_store_error(s, MW_E_IO, "remove artifact");
        return MW_FAILURE;
    }
    MW_ENSURE(sqlite3_changes(s->db) == 1, MW_E_NOTFOUND, "image %.*s is not admitted",
              (int)image_digest.n, (const char *)image_digest.p);
    return MW_SUCCESS;
}

mw_result mw_ca_artifact_list(struct mw_ca_store *s,
                              mw_result (*each)(void *ctx, const struct mw_ca_artifact *a),
                              void *ctx)
{
    MW_DEFER_STMT sqlite3_stmt *st = NULL;
    MW_GUARD(mw_ca_store_prepare(
        s, "SELECT " ARTIFACT_COLUMNS " FROM artifact ORDER BY admitted_at, image_digest", &st));
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            return MW_SUCCESS;
        if (rc != SQLITE_ROW) {
            mw_ca_store_error(s, MW_E_IO, "list artifacts");
            return MW_FAILURE;
        }
        struct mw_ca_artifact a;
        MW_GUARD(artifact_row(st, &a));
        MW_GUARD(each(ctx, &a));
    }
}

/* ---------------------------------------------------------------- revocation */

/* The same WHERE clause selects what will go and then deletes it, inside one transaction. */
#define REVOKE_SQL(where)                                                                  \
    {                                                                                      \
        "SELECT " ARTIFACT_COLUMNS " FROM artifact WHERE " where " ORDER BY image_digest", \
            "DELETE FROM artifact WHERE " where                                            \
    }

static const struct {
    const char *select, *delete;
} revoke_sql[] = {
    [MW_CA_MATCH_DIGEST] = REVOKE_SQL("image_digest = ?1"),
    [MW_CA_MATCH_SIGNER] =
        REVOKE_SQL("signer_identity = ?1 AND (?2 IS NULL OR signer_issuer = ?2)"),
    [MW_CA_MATCH_KEY_ID] = REVOKE_SQL("key_id = ?1"),
    [MW_CA_MATCH_ATTESTATION] = REVOKE_SQL("attestation_digest = ?1"),
};

static mw_result match_check(const struct mw_ca_artifact_match *m)
{
    MW_ENSURE(m->kind >= MW_CA_MATCH_DIGEST && m->kind <= MW_CA_MATCH_ATTESTATION, MW_E_INPUT,
              "unknown revocation match kind %d", (int)m->kind);
    MW_ENSURE(m->value != NULL, MW_E_INPUT, "revocation needs a value to match");
    mw_slice v = mw_slice_cstr(m->value);
    switch (m->kind) {
    case MW_CA_MATCH_DIGEST:
        return mw_ca_digest_check(v, "image digest");
    case MW_CA_MATCH_ATTESTATION:
        return mw_ca_digest_check(v, "attestation digest");
    case MW_CA_MATCH_KEY_ID:
        return check_key_id(v);
    case MW_CA_MATCH_SIGNER:
        MW_GUARD(check_identity(v));
        if (m->issuer != NULL)
            MW_GUARD(check_uri(mw_slice_cstr(m->issuer), "signer issuer"));
        return MW_SUCCESS;
    }
    return MW_SUCCESS;
}

struct artifact_list {
    struct mw_ca_artifact *v;
    size_t n, cap;
};

static mw_result collect_and_delete(struct mw_ca_store *s, const struct mw_ca_artifact_match *m,
                                    struct artifact_list *out)
{
    MW_DEFER_STMT sqlite3_stmt *sel = NULL;
    MW_DEFER_STMT sqlite3_stmt *del = NULL;
    MW_GUARD(mw_ca_store_prepare(s, revoke_sql[m->kind].select, &sel));
    MW_GUARD(mw_ca_store_prepare(s, revoke_sql[m->kind].delete, &del));
    sqlite3_stmt *both[] = {sel, del};
    for (size_t i = 0; i < MW_ARRAY_LEN(both); i++) {
        MW_GUARD(bind_text(s, both[i], 1, m->value));
        if (m->kind == MW_CA_MATCH_SIGNER)
            MW_GUARD(m->issuer != NULL ? bind_text(s, both[i], 2, m->issuer)
                                       : bind_opt(s, both[i], 2, ""));
    }
    for (;;) {
        int rc = sqlite3_step(sel);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            mw_ca_store_error(s, MW_E_IO, "read artifacts to revoke");
            return MW_FAILURE;
        }
        if (out->n == out->cap) {
            size_t cap = out->cap == 0 ? 4 : out->cap * 2;
            void *p = realloc(out->v, cap * sizeof(*out->v));
            MW_ENSURE(p != NULL, MW_E_NOMEM, "out of memory");
            out->v = p;
            out->cap = cap;
        }
        MW_GUARD(artifact_row(sel, &out->v[out->n]));
        out->n++;
    }
    sqlite3_reset(sel);
    if (sqlite3_step(del) != SQLITE_DONE) {
        mw_ca_store_error(s, MW_E_IO, "revoke artifacts");
        return MW_FAILURE;
    }
    /* Inside the write transaction nothing else can change the rows between the two. */
    MW_ENSURE((size_t)sqlite3_changes(s->db) == out->n, MW_E_INTERNAL,
              "revocation selected %zu artifacts but removed %d", out->n, sqlite3_changes(s->db));
    return MW_SUCCESS;
}

mw_result mw_ca_artifact_revoke(struct mw_ca_store *s, const struct mw_ca_artifact_match *m,
                                mw_result (*each)(void *ctx, const struct mw_ca_artifact *a),
                                void *ctx, size_t *n)
{
    if (n != NULL)
        *n = 0;
    MW_GUARD(match_check(m));
    struct artifact_list got = {0};
    mw_result r = mw_ca_store_begin(s);
    if (mw_ok(r)) {
        r = collect_and_delete(s, m, &got);
        if (mw_ok(r))
            r = mw_ca_store_commit(s);
        if (mw_failed(r))
            mw_ca_store_rollback(s);
    }
    /* Report only what is durably gone. */
    if (mw_ok(r) && n != NULL)
        *n = got.n;
    for (size_t i = 0; mw_ok(r) && each != NULL && i < got.n; i++)
        r = each(ctx, &got.v[i]);
    free(got.v);
    return r;
}

/* ---------------------------------------------------------------- registrations */

/* Bind the values of one registration to reg (and its images to img) and run the inserts. */
static bool put_registration_rows(sqlite3_stmt *reg, sqlite3_stmt *img, int64_t seq,
                                  const struct mw_ca_registration *e)
{
    sqlite3_reset(reg);
    sqlite3_clear_bindings(reg);
    if (sqlite3_bind_int64(reg, 1, seq) != SQLITE_OK ||
        sqlite3_bind_text(reg, 2, e->name, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int(reg, 3, e->by_k8s ? 1 : 0) != SQLITE_OK ||
        sqlite3_bind_text(reg, 4, e->spiffe_id, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(reg, 5, e->ns, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(reg, 6, e->sa, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int(reg, 7, e->requires_provenance ? 1 : 0) != SQLITE_OK ||
        sqlite3_bind_int64(reg, 8, e->max_ttl_s) != SQLITE_OK || sqlite3_step(reg) != SQLITE_DONE)
        return false;
    for (size_t i = 0; i < e->n_images; i++) {
        sqlite3_reset(img);
        sqlite3_clear_bindings(img);
        if (sqlite3_bind_int64(img, 1, seq) != SQLITE_OK ||
            sqlite3_bind_int64(img, 2, (int64_t)i) != SQLITE_OK ||
            sqlite3_bind_text(img, 3, e->images[i], -1, SQLITE_TRANSIENT) != SQLITE_OK ||
            sqlite3_step(img) != SQLITE_DONE)
            return false;
    }
    return true;
}

static mw_result put_registration(struct mw_ca_store *s, sqlite3_stmt *reg, sqlite3_stmt *img,
                                  int64_t seq, const struct mw_ca_registration *e)
{
    if (!put_registration_rows(reg, img, seq, e)) {
        mw_ca_store_error(s, MW_E_IO, "write registration");
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

mw_result mw_ca_store_set_registrations(struct mw_ca_store *s, const struct mw_ca_registrations *r)
{
    MW_DEFER_STMT sqlite3_stmt *reg = NULL;
    MW_DEFER_STMT sqlite3_stmt *img = NULL;
    MW_GUARD(mw_ca_store_prepare(s,
                                 "INSERT INTO registration(seq, name, by_k8s, spiffe_id, ns, sa,"
                                 " requires_provenance, max_ttl) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7,"
                                 " ?8)",
                                 &reg));
    MW_GUARD(mw_ca_store_prepare(
        s, "INSERT INTO registration_image(seq, pos, digest) VALUES(?1, ?2, ?3)", &img));
    MW_GUARD(mw_ca_store_begin(s));
    mw_result res = exec_fixed(s, "DELETE FROM registration_image; DELETE FROM registration",
                               "clear registrations");
    for (size_t i = 0; mw_ok(res) && i < mw_ca_registrations_count(r); i++)
        res = put_registration(s, reg, img, (int64_t)i + 1, mw_ca_registrations_at(r, i));
    if (mw_ok(res))
        res = mw_ca_store_commit(s);
    if (mw_failed(res))
        mw_ca_store_rollback(s);
    return res;
}

static mw_result read_images(struct mw_ca_store *s, sqlite3_stmt *img, int64_t seq,
                             struct mw_ca_registration *e)
{
    sqlite3_reset(img);
    if (sqlite3_bind_int64(img, 1, seq) != SQLITE_OK) {
        mw_ca_store_error(s, MW_E_IO, "bind");
        return MW_FAILURE;
    }
    size_t cap = 0;
    for (;;) {
        int rc = sqlite3_step(img);
        if (rc == SQLITE_DONE)
            return MW_SUCCESS;
        if (rc != SQLITE_ROW) {
            mw_ca_store_error(s, MW_E_IO, "read registration images");
            return MW_FAILURE;
        }
        if (e->n_images == cap) {
            cap = cap == 0 ? 4 : cap * 2;
            void *p = realloc(e->images, cap * sizeof(*e->images));
            MW_ENSURE(p != NULL, MW_E_NOMEM, "out of memory");
            e->images = p;
        }
        MW_GUARD(column_text(img, 0, e->images[e->n_images], sizeof(e->images[0]), "image"));
        e->n_images++;
    }
}

mw_result mw_ca_store_get_registrations(struct mw_ca_store *s, struct mw_ca_registrations **out)
{
    *out = NULL;
    MW_DEFER_STMT sqlite3_stmt *reg = NULL;
    MW_DEFER_STMT sqlite3_stmt *img = NULL;
    MW_GUARD(mw_ca_store_prepare(s,
                                 "SELECT seq, name, by_k8s, spiffe_id, ns, sa, requires_provenance,"
                                 " max_ttl FROM registration ORDER BY seq",
                                 &reg));
    MW_GUARD(mw_ca_store_prepare(
        s, "SELECT digest FROM registration_image WHERE seq = ?1 ORDER BY pos", &img));
    struct mw_ca_registrations *set = NULL;
    MW_GUARD(mw_ca_registrations_new(&set));
    mw_result r = MW_SUCCESS;
    for (;;) {
        int rc = sqlite3_step(reg);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            mw_ca_store_error(s, MW_E_IO, "read registrations");
            r = MW_FAILURE;
            break;
        }
        struct mw_ca_registration e;
        memset(&e, 0, sizeof(e));
        r = column_text(reg, 1, e.name, sizeof(e.name), "name");
        e.by_k8s = sqlite3_column_int(reg, 2) != 0;
        if (mw_ok(r))
            r = column_text(reg, 3, e.spiffe_id, sizeof(e.spiffe_id), "SPIFFE ID");
        if (mw_ok(r))
            r = column_text(reg, 4, e.ns, sizeof(e.ns), "namespace");
        if (mw_ok(r))
            r = column_text(reg, 5, e.sa, sizeof(e.sa), "service account");
        e.requires_provenance = sqlite3_column_int(reg, 6) != 0;
        e.max_ttl_s = sqlite3_column_int64(reg, 7);
        if (mw_ok(r))
            r = read_images(s, img, sqlite3_column_int64(reg, 0), &e);
        if (mw_ok(r))
            r = mw_ca_registrations_add(set, &e);
        free(e.images);
        if (mw_failed(r))
            break;
    }
    if (mw_failed(r)) {
        mw_ca_registrations_free(set);
        return MW_FAILURE;
    }
    *out = set;
    return MW_SUCCESS;
}
