/*
 * Single-use join tokens: 256 random bits, shown once, stored as SHA-256
 * only, bound to one SPIFFE ID, with an expiry. Redemption is one
 * transaction whose UPDATE only matches an unused token, so two redeemers
 * racing for one token cannot both win.
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "ca/ca_auth_internal.h"

#define TOKEN_PREFIX "mwjt_"

static mw_result token_hash(mw_slice token, uint8_t hash[32])
{
    unsigned int len = 0;
    MW_GUARD_OSSL(EVP_Digest(token.p, token.n, hash, &len, EVP_sha256(), NULL), MW_E_CRYPTO,
                  "SHA-256");
    return MW_SUCCESS;
}

static void handle_of(const uint8_t hash[32], char out[17])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < 8; i++) {
        out[2 * i] = hex[hash[i] >> 4];
        out[2 * i + 1] = hex[hash[i] & 15];
    }
    out[16] = '\0';
}

/* The shape of a token: refuses garbage before it reaches the database. */
static mw_result token_shape(mw_slice token)
{
    MW_ENSURE(
        token.n == MW_CA_JOIN_TOKEN_LEN && mw_slice_has_prefix(token, mw_slice_cstr(TOKEN_PREFIX)),
        MW_E_INPUT, "not a join token (want %s followed by 43 base64url characters)", TOKEN_PREFIX);
    for (size_t i = strlen(TOKEN_PREFIX); i < token.n; i++) {
        uint8_t c = token.p[i];
        MW_ENSURE((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_',
                  MW_E_INPUT, "join token has a character outside base64url");
    }
    return MW_SUCCESS;
}

mw_result mw_ca_join_create(struct mw_ca_store *s, const struct mw_spiffe_id *id, int64_t ttl_s,
                            const struct mw_clock *clock, struct mw_dynbuf *token,
                            struct mw_ca_join_info *info)
{
    MW_ENSURE(ttl_s >= 1 && ttl_s <= MW_CA_JOIN_MAX_TTL, MW_E_INPUT,
              "join token TTL of %" PRId64 " s, want 1 s .. %d days", ttl_s,
              MW_CA_JOIN_MAX_TTL / 86400);
    MW_ENSURE(id->path[0] != '\0', MW_E_INPUT,
              "a join token needs a workload ID, not the trust domain's own ID");
    MW_ENSURE(token->secure, MW_E_INTERNAL, "join token buffer must be secure memory");
    memset(info, 0, sizeof(*info));
    MW_ENSURE(mw_spiffe_id_format(id, info->spiffe_id, sizeof(info->spiffe_id)), MW_E_LIMIT,
              "SPIFFE ID too long");

    uint8_t raw[32], hash[32];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        mw_wipe(raw, sizeof(raw));
        mw_error_openssl(MW_E_CRYPTO, "no randomness for a join token");
        return MW_FAILURE;
    }
    size_t start = token->n;
    mw_result r = mw_dynbuf_add_cstr(token, TOKEN_PREFIX);
    if (mw_ok(r))
        r = mw_b64_encode(mw_slice_make(raw, sizeof(raw)), MW_B64_URL, token);
    mw_wipe(raw, sizeof(raw));
    if (mw_ok(r))
        r = token_hash(mw_slice_sub(mw_dynbuf_slice(token), start, token->n - start), hash);
    if (mw_failed(r)) {
        mw_wipe(token->p + start, token->n - start);
        token->n = start;
        return MW_FAILURE;
    }
    info->created_at = mw_clock_now(clock);
    info->expires_at = info->created_at + ttl_s;
    handle_of(hash, info->handle);

    MW_DEFER_STMT sqlite3_stmt *st = NULL;
    r = mw_ca_store_prepare(s,
                            "INSERT INTO join_token(hash, spiffe_id, created_at, expires_at, used)"
                            " VALUES(?1, ?2, ?3, ?4, 0)",
                            &st);
    if (mw_ok(r) && (sqlite3_bind_blob(st, 1, hash, 32, SQLITE_TRANSIENT) != SQLITE_OK ||
                     sqlite3_bind_text(st, 2, info->spiffe_id, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
                     sqlite3_bind_int64(st, 3, info->created_at) != SQLITE_OK ||
                     sqlite3_bind_int64(st, 4, info->expires_at) != SQLITE_OK ||
                     sqlite3_step(st) != SQLITE_DONE)) {
        mw_ca_store_error(s, MW_E_IO, "store join token");
        r = MW_FAILURE;
    }
    if (mw_failed(r)) {
        mw_wipe(token->p + start, token->n - start);
        token->n = start;
    }
    return r;
}

static mw_result info_row(sqlite3_stmt *st, struct mw_ca_join_info *info)
{
    memset(info, 0, sizeof(*info));
    const void *h = sqlite3_column_blob(st, 0);
    MW_ENSURE(h != NULL && sqlite3_column_bytes(st, 0) == 32, MW_E_INTERNAL,
              "join token row without a hash");
    handle_of(h, info->handle);
    const unsigned char *id = sqlite3_column_text(st, 1);
    MW_GUARD(mw_ca_copy(info->spiffe_id, sizeof(info->spiffe_id),
                        mw_slice_make(id, id != NULL ? (size_t)sqlite3_column_bytes(st, 1) : 0),
                        "SPIFFE ID"));
    info->created_at = sqlite3_column_int64(st, 2);
    info->expires_at = sqlite3_column_int64(st, 3);
    info->used = sqlite3_column_int(st, 4) != 0;
    info->used_at = sqlite3_column_int64(st, 5);
    return MW_SUCCESS;
}

/* Find the token and judge it; *hash receives its SHA-256. Inside or outside a transaction. */
static mw_result lookup(struct mw_ca_store *s, mw_slice token, const struct mw_clock *clock,
                        uint8_t hash[32], struct mw_ca_join_info *info)
{
    MW_GUARD(token_shape(token));
    MW_GUARD(token_hash(token, hash));
    MW_DEFER_STMT sqlite3_stmt *st = NULL;
    MW_GUARD(mw_ca_store_prepare(s,
                                 "SELECT hash, spiffe_id, created_at, expires_at, used, used_at"
                                 " FROM join_token WHERE hash = ?1",
                                 &st));
    if (sqlite3_bind_blob(st, 1, hash, 32, SQLITE_TRANSIENT) != SQLITE_OK) {
        mw_ca_store_error(s, MW_E_IO, "bind");
        return MW_FAILURE;
    }
    int rc = sqlite3_step(st);
    MW_ENSURE(rc == SQLITE_ROW || rc == SQLITE_DONE, MW_E_IO, "%s: read join token: %s", s->path,
              sqlite3_errmsg(s->db));
    MW_ENSURE(rc == SQLITE_ROW, MW_E_VERIFY, "join token is not known to this CA");
    /* The lookup used the hash as a key; compare it again in constant time anyway. */
    MW_ENSURE(
        sqlite3_column_bytes(st, 0) == 32 &&
            mw_slice_eq_ct(mw_slice_make(sqlite3_column_blob(st, 0), 32), mw_slice_make(hash, 32)),
        MW_E_VERIFY, "join token is not known to this CA");
    MW_GUARD(info_row(st, info));
    char t[32];
    if (info->used) {
        mw_time_format(info->used_at, t, sizeof(t));
        MW_BAIL(MW_E_VERIFY, "join token %s already used at %s", info->handle, t);
    }
    int64_t now = mw_clock_now(clock);
    if (now >= info->expires_at) {
        mw_time_format(info->expires_at, t, sizeof(t));
        MW_BAIL(MW_E_EXPIRED, "join token %s expired at %s", info->handle, t);
    }
    return MW_SUCCESS;
}

mw_result mw_ca_join_check(struct mw_ca_store *s, mw_slice token, const struct mw_clock *clock,
                           struct mw_ca_join_info *out)
{
    uint8_t hash[32];
    return lookup(s, token, clock, hash, out);
}

mw_result mw_ca_join_redeem(struct mw_ca_store *s, mw_slice token, const struct mw_clock *clock,
                            struct mw_ca_join_info *out)
{
    uint8_t hash[32];
    MW_GUARD(token_shape(token));
    MW_GUARD(mw_ca_store_begin(s));
    mw_result r = lookup(s, token, clock, hash, out);
    MW_DEFER_STMT sqlite3_stmt *st = NULL;
    int64_t now = mw_clock_now(clock);
    if (mw_ok(r))
        r = mw_ca_store_prepare(s,
                                "UPDATE join_token SET used = 1, used_at = ?1"
                                " WHERE hash = ?2 AND used = 0 AND expires_at > ?1",
                                &st);
    if (mw_ok(r) && (sqlite3_bind_int64(st, 1, now) != SQLITE_OK ||
                     sqlite3_bind_blob(st, 2, hash, 32, SQLITE_TRANSIENT) != SQLITE_OK ||
                     sqlite3_step(st) != SQLITE_DONE)) {
        mw_ca_store_error(s, MW_E_IO, "redeem join token");
        r = MW_FAILURE;
    }
    /* The WHERE clause is the guard: zero rows changed means someone else redeemed it. */
    if (mw_ok(r) && sqlite3_changes(s->db) != 1) {
        mw_error_set(MW_E_VERIFY, "join token %s already used", out->handle);
        r = MW_FAILURE;
    }
    if (mw_ok(r))
        r = mw_ca_store_commit(s);
    if (mw_failed(r)) {
        mw_ca_store_rollback(s);
        return MW_FAILURE;
    }
    out->used = true;
    out->used_at = now;
    return MW_SUCCESS;
}

mw_result mw_ca_join_list(struct mw_ca_store *s,
                          mw_result (*each)(void *ctx, const struct mw_ca_join_info *info),
                          void *ctx)
{
    MW_DEFER_STMT sqlite3_stmt *st = NULL;
    MW_GUARD(mw_ca_store_prepare(s,
                                 "SELECT hash, spiffe_id, created_at, expires_at, used, used_at"
                                 " FROM join_token ORDER BY created_at, hash",
                                 &st));
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            return MW_SUCCESS;
        if (rc != SQLITE_ROW) {
            mw_ca_store_error(s, MW_E_IO, "list join tokens");
            return MW_FAILURE;
        }
        struct mw_ca_join_info info;
        MW_GUARD(info_row(st, &info));
        MW_GUARD(each(ctx, &info));
    }
}
