/* Internal to src/ca: what the credential, store and monitor files share. */
#ifndef MESHWARD_CA_AUTH_INTERNAL_H
#define MESHWARD_CA_AUTH_INTERNAL_H

#include <sqlite3.h>

#include <meshward/ca_auth.h>

/* Schema version this code reads and writes (the store's meta table). */
#define MW_CA_STORE_SCHEMA 2

struct mw_ca_store {
    sqlite3 *db;
    char path[4096];
};

/* Set the thread's error from SQLite's last error on db: "what: message". */
void mw_ca_store_error(struct mw_ca_store *s, enum mw_err code, const char *what);
/* Prepare a statement (fixed SQL text only; values are bound, never spliced). */
MW_RESULT mw_ca_store_prepare(struct mw_ca_store *s, const char *sql, sqlite3_stmt **out);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
MW_RESULT mw_ca_store_begin(struct mw_ca_store *s);
MW_RESULT mw_ca_store_commit(struct mw_ca_store *s);
void mw_ca_store_rollback(struct mw_ca_store *s);

static inline void mw_ca_stmt_cleanup(sqlite3_stmt **p)
{
    if (*p != NULL)
        sqlite3_finalize(*p);
    *p = NULL;
}
#define MW_DEFER_STMT __attribute__((cleanup(mw_ca_stmt_cleanup)))

/* Copy a slice into a fixed buffer with a NUL; fails (MW_E_LIMIT) when it does not fit. */
MW_RESULT mw_ca_copy(char *dst, size_t cap, mw_slice src, const char *what);

/* A serial as svid.serial and renewal records spell it: 1..40 lower-case hex, no leading zero. */
bool mw_ca_serial_hex_ok(mw_slice hex);

/* Registrations: build a set (used by the YAML loader and the store). */
MW_RESULT mw_ca_registrations_new(struct mw_ca_registrations **out);
MW_RESULT mw_ca_registrations_add(struct mw_ca_registrations *r,
                                  const struct mw_ca_registration *reg);

#endif
