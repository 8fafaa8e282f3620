/*
 * The YAML loader reads policy files that an attacker may write. Whatever
 * the bytes, loading must stay inside its limits, every accessor must be
 * safe on every node, every error must say where, and freeing must release
 * everything (LeakSanitizer checks after each input). Every document, written
 * back with mw_node_emit_yaml (what the control plane sends to sidecars),
 * must load again as the same tree.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include <meshward/conf.h>

#define FUZZ_NAME "fuzz.yaml"

static const struct mw_conf_limits fuzz_limits = {
    .max_bytes = 64u << 10,
    .max_depth = 16,
    .max_nodes = 4096,
    .max_scalar = 4096,
    .max_docs = 16,
};

static size_t walk(const struct mw_node *n, size_t depth)
{
    if (n == NULL || depth > fuzz_limits.max_depth + 1)
        abort();
    if (mw_node_line(n) == 0 || mw_node_col(n) == 0 || strcmp(mw_node_file(n), FUZZ_NAME) != 0)
        abort();
    bool b;
    int64_t i64;
    /* The typed readers may fail; they must not crash, and must leave an error when they do. */
    if (mw_failed(mw_node_bool(n, &b)) && mw_error_code() != MW_E_INPUT)
        abort();
    if (mw_failed(mw_node_i64(n, INT64_MIN, INT64_MAX, &i64)) && mw_error_code() != MW_E_INPUT)
        abort();
    (void)mw_node_is_null(n);
    mw_node_error(n, MW_E_INPUT, "%s", "probe");
    size_t count = 1;
    switch (mw_node_kind(n)) {
    case MW_NODE_SCALAR: {
        mw_slice s = mw_node_slice(n);
        const char *str = mw_node_str(n);
        if (str == NULL || (const uint8_t *)str != s.p || str[s.n] != '\0' ||
            s.n > fuzz_limits.max_scalar || mw_node_len(n) != 0)
            abort();
        if (mw_node_style(n) != MW_SCALAR_PLAIN && mw_node_style(n) != MW_SCALAR_QUOTED)
            abort();
        break;
    }
    case MW_NODE_SEQ:
        if (mw_node_str(n) != NULL || mw_node_item(n, mw_node_len(n)) != NULL ||
            mw_node_key_at(n, 0) != NULL)
            abort();
        for (size_t i = 0; i < mw_node_len(n); i++)
            count += walk(mw_node_item(n, i), depth + 1);
        break;
    case MW_NODE_MAP:
        if (mw_node_item(n, 0) != NULL || mw_node_key_at(n, mw_node_len(n)) != NULL ||
            mw_node_value_at(n, mw_node_len(n)) != NULL)
            abort();
        for (size_t i = 0; i < mw_node_len(n); i++) {
            const struct mw_node *k = mw_node_key_at(n, i);
            /* Keys are scalars and unique: a lookup by the key's text finds this pair. */
            if (mw_node_kind(k) != MW_NODE_SCALAR)
                abort();
            if (strlen(mw_node_str(k)) == mw_node_slice(k).n &&
                mw_node_get(n, mw_node_str(k)) != mw_node_value_at(n, i))
                abort();
            count += walk(k, depth + 1);
            count += walk(mw_node_value_at(n, i), depth + 1);
        }
        break;
    default:
        abort();
    }
    return count;
}

/*
 * The emitter's promise: same kinds and texts; a plain scalar may come back
 * quoted only when the YAML 1.2 core schema does not read it as a null,
 * boolean or number (§10.3.2); an empty plain scalar comes back as "null".
 */
static bool core_special(const char *text)
{
    static regex_t rx;
    static bool ready;
    if (!ready) {
        if (regcomp(&rx,
                    "^(null|Null|NULL|~|true|True|TRUE|false|False|FALSE|[-+]?[0-9]+|0o[0-7]+|"
                    "0x[0-9a-fA-F]+|[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?|"
                    "[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN))$",
                    REG_EXTENDED | REG_NOSUB) != 0)
            abort();
        ready = true;
    }
    return regexec(&rx, text, 0, NULL, 0) == 0;
}

static bool same(const struct mw_node *a, const struct mw_node *b)
{
    if (mw_node_kind(a) != mw_node_kind(b))
        return false;
    if (mw_node_kind(a) == MW_NODE_SCALAR) {
        mw_slice x = mw_node_slice(a), y = mw_node_slice(b);
        if (mw_node_style(a) == MW_SCALAR_PLAIN && x.n == 0)
            return mw_node_style(b) == MW_SCALAR_PLAIN && mw_slice_eq_cstr(y, "null");
        /* Scalars with a NUL cannot be special (regexec would stop at it). */
        bool special = strlen(mw_node_str(a)) == x.n && core_special(mw_node_str(a));
        if (mw_node_style(a) != mw_node_style(b) &&
            !(mw_node_style(a) == MW_SCALAR_PLAIN && !special))
            return false;
        return mw_slice_eq(x, y);
    }
    if (mw_node_len(a) != mw_node_len(b))
        return false;
    for (size_t i = 0; i < mw_node_len(a); i++) {
        bool ok = mw_node_kind(a) == MW_NODE_SEQ
                      ? same(mw_node_item(a, i), mw_node_item(b, i))
                      : same(mw_node_key_at(a, i), mw_node_key_at(b, i)) &&
                            same(mw_node_value_at(a, i), mw_node_value_at(b, i));
        if (!ok)
            return false;
    }
    return true;
}

static void roundtrip(const struct mw_node *root)
{
    struct mw_dynbuf out;
    mw_dynbuf_init(&out, 1u << 24);
    struct mw_docs *again = NULL;
    if (mw_failed(mw_node_emit_yaml(root, &out)) ||
        mw_failed(mw_yaml_load(mw_dynbuf_slice(&out), "emitted", NULL, &again)) ||
        mw_docs_count(again) != 1 || !same(root, mw_docs_root(again, 0)))
        abort();
    mw_docs_free(again);
    mw_dynbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mw_docs *docs = NULL;
    if (mw_failed(mw_yaml_load(mw_slice_make(data, size), FUZZ_NAME, &fuzz_limits, &docs))) {
        /* Every refusal names the input and a position (or the size, which has none). */
        if (docs != NULL || strstr(mw_error_msg(), FUZZ_NAME) == NULL)
            abort();
        if (mw_error_code() == MW_E_INTERNAL)
            abort();
        return 0;
    }
    if (mw_docs_count(docs) > fuzz_limits.max_docs || strcmp(mw_docs_name(docs), FUZZ_NAME) != 0)
        abort();
    size_t nodes = 0;
    for (size_t i = 0; i < mw_docs_count(docs); i++) {
        const struct mw_node *root = mw_docs_root(docs, i);
        if (root != NULL) {
            nodes += walk(root, 1);
            roundtrip(root);
        }
    }
    if (nodes > fuzz_limits.max_nodes || mw_docs_root(docs, mw_docs_count(docs)) != NULL)
        abort();
    mw_docs_free(docs);
    return 0;
}
