/*
 * Reading a loaded tree. Every accessor takes NULL (a missing key, an empty
 * document) and answers as for an absent node, so callers can chain lookups
 * and check once.
 */
#include <string.h>

#include "conf/conf_internal.h"

size_t mw_docs_count(const struct mw_docs *docs)
{
    return docs != NULL ? docs->n : 0;
}

const struct mw_node *mw_docs_root(const struct mw_docs *docs, size_t i)
{
    if (docs == NULL || i >= docs->n)
        return NULL;
    return docs->roots[i];
}

const char *mw_docs_name(const struct mw_docs *docs)
{
    return docs != NULL ? docs->name : NULL;
}

enum mw_node_kind mw_node_kind(const struct mw_node *n)
{
    return n != NULL ? (enum mw_node_kind)n->kind : (enum mw_node_kind)0;
}

size_t mw_node_line(const struct mw_node *n)
{
    return n != NULL ? n->line : 0;
}

size_t mw_node_col(const struct mw_node *n)
{
    return n != NULL ? n->col : 0;
}

const char *mw_node_file(const struct mw_node *n)
{
    return n != NULL ? n->file : NULL;
}

const char *mw_node_str(const struct mw_node *n)
{
    if (n == NULL || n->kind != MW_NODE_SCALAR)
        return NULL;
    return n->u.scalar.p;
}

mw_slice mw_node_slice(const struct mw_node *n)
{
    if (n == NULL || n->kind != MW_NODE_SCALAR)
        return mw_slice_make(NULL, 0);
    return mw_slice_make(n->u.scalar.p, n->u.scalar.n);
}

enum mw_scalar_style mw_node_style(const struct mw_node *n)
{
    if (n == NULL || n->kind != MW_NODE_SCALAR)
        return (enum mw_scalar_style)0;
    return (enum mw_scalar_style)n->style;
}

bool mw_node_is_null(const struct mw_node *n)
{
    if (n == NULL)
        return true;
    if (n->kind != MW_NODE_SCALAR || n->style != MW_SCALAR_PLAIN)
        return false;
    /* YAML 1.2 §10.3.2 (core schema): null | Null | NULL | ~ | the empty plain scalar. */
    mw_slice s = mw_node_slice(n);
    return s.n == 0 || mw_slice_eq_cstr(s, "null") || mw_slice_eq_cstr(s, "Null") ||
           mw_slice_eq_cstr(s, "NULL") || mw_slice_eq_cstr(s, "~");
}

static const char *kind_name(const struct mw_node *n)
{
    if (n == NULL)
        return "nothing";
    switch (n->kind) {
    case MW_NODE_SEQ:
        return "a sequence";
    case MW_NODE_MAP:
        return "a mapping";
    default:
        return "a scalar";
    }
}

mw_result mw_node_bool(const struct mw_node *n, bool *out)
{
    MW_ENSURE(n != NULL, MW_E_INPUT, "missing value, want true or false");
    if (n->kind != MW_NODE_SCALAR) {
        mw_node_error(n, MW_E_INPUT, "want true or false, got %s", kind_name(n));
        return MW_FAILURE;
    }
    char q[80];
    conf_quote(q, sizeof(q), (const uint8_t *)n->u.scalar.p, n->u.scalar.n);
    if (n->style != MW_SCALAR_PLAIN) {
        mw_node_error(n, MW_E_INPUT, "%s is quoted, so it is a string; want plain true or false",
                      q);
        return MW_FAILURE;
    }
    /*
     * YAML 1.2 §10.3.2 (core schema) only. YAML 1.1's yes/no/on/off/y/n are
     * refused rather than read as strings, because other tools (Go's
     * yaml.v2) read them as booleans and the policy must mean one thing.
     */
    mw_slice s = mw_node_slice(n);
    if (mw_slice_eq_cstr(s, "true") || mw_slice_eq_cstr(s, "True") || mw_slice_eq_cstr(s, "TRUE")) {
        *out = true;
        return MW_SUCCESS;
    }
    if (mw_slice_eq_cstr(s, "false") || mw_slice_eq_cstr(s, "False") ||
        mw_slice_eq_cstr(s, "FALSE")) {
        *out = false;
        return MW_SUCCESS;
    }
    mw_node_error(n, MW_E_INPUT, "want true or false, got %s", q);
    return MW_FAILURE;
}

mw_result mw_node_i64(const struct mw_node *n, int64_t min, int64_t max, int64_t *out)
{
    MW_ENSURE(n != NULL, MW_E_INPUT, "missing value, want an integer");
    if (n->kind != MW_NODE_SCALAR) {
        mw_node_error(n, MW_E_INPUT, "want an integer, got %s", kind_name(n));
        return MW_FAILURE;
    }
    if (n->style != MW_SCALAR_PLAIN) {
        char q[80];
        conf_quote(q, sizeof(q), (const uint8_t *)n->u.scalar.p, n->u.scalar.n);
        mw_node_error(n, MW_E_INPUT, "%s is quoted, so it is a string; want a plain integer", q);
        return MW_FAILURE;
    }
    /*
     * Decimal only: YAML 1.2's 0o and 0x forms and '+' are refused, so that
     * a number has one spelling.
     */
    if (mw_failed(mw_parse_i64(mw_node_slice(n), min, max, "integer", out))) {
        mw_error_prefix("%s:%zu:%zu: ", n->file, n->line, n->col);
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

size_t mw_node_len(const struct mw_node *n)
{
    if (n == NULL)
        return 0;
    if (n->kind == MW_NODE_SEQ)
        return n->u.coll.n;
    if (n->kind == MW_NODE_MAP)
        return n->u.coll.n / 2;
    return 0;
}

const struct mw_node *mw_node_item(const struct mw_node *n, size_t i)
{
    if (n == NULL || n->kind != MW_NODE_SEQ || i >= n->u.coll.n)
        return NULL;
    return n->u.coll.kids[i];
}

const struct mw_node *mw_node_key_at(const struct mw_node *n, size_t i)
{
    if (n == NULL || n->kind != MW_NODE_MAP || i >= n->u.coll.n / 2)
        return NULL;
    return n->u.coll.kids[2 * i];
}

const struct mw_node *mw_node_value_at(const struct mw_node *n, size_t i)
{
    if (n == NULL || n->kind != MW_NODE_MAP || i >= n->u.coll.n / 2)
        return NULL;
    return n->u.coll.kids[2 * i + 1];
}

const struct mw_node *mw_node_get(const struct mw_node *map, const char *key)
{
    if (map == NULL || map->kind != MW_NODE_MAP || key == NULL)
        return NULL;
    mw_slice want = mw_slice_cstr(key);
    for (size_t i = 0; i + 1 < map->u.coll.n; i += 2) {
        const struct mw_node *k = map->u.coll.kids[i];
        if (k->kind == MW_NODE_SCALAR && mw_slice_eq(mw_node_slice(k), want))
            return map->u.coll.kids[i + 1];
    }
    return NULL;
}

void mw_node_error(const struct mw_node *n, enum mw_err code, const char *fmt, ...)
{
    /*
     * Format first into a buffer of our own: the caller may pass
     * mw_error_msg() as an argument, and the error slot is what we write.
     */
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r < 0)
        msg[0] = '\0';
    if (n == NULL)
        mw_error_set(code, "%s", msg);
    else
        mw_error_set(code, "%s:%zu:%zu: %s", n->file, n->line, n->col, msg);
}
