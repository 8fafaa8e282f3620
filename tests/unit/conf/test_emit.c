/*
 * mw_node_emit_yaml: every document re-read from the emitted text must be
 * the same tree. Checked over every YAML file of the shared test data and
 * over hand-made scalars that need quoting.
 */
#include "testutil.h"

#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <meshward/conf.h>

/* A plain scalar the YAML 1.2 core schema reads as null, boolean, integer or float (§10.3.2). */
static bool core_special(const char *text)
{
    static const char *const re =
        "^(null|Null|NULL|~|true|True|TRUE|false|False|FALSE|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|"
        "[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\\.(inf|Inf|INF)|"
        "\\.(nan|NaN|NAN))$";
    regex_t rx;
    assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
    bool m = regexec(&rx, text, 0, NULL, 0) == 0;
    regfree(&rx);
    return m;
}

/*
 * Same kinds and texts; an empty plain scalar equals "null"; a plain scalar
 * may become quoted only when the core schema does not read it as special.
 */
static bool same_tree(const struct mw_node *a, const struct mw_node *b, char *why, size_t n)
{
    if (mw_node_kind(a) != mw_node_kind(b)) {
        snprintf(why, n, "line %zu: kind %d became %d", mw_node_line(a), mw_node_kind(a),
                 mw_node_kind(b));
        return false;
    }
    switch (mw_node_kind(a)) {
    case MW_NODE_SCALAR: {
        bool may_quote = mw_node_style(a) == MW_SCALAR_PLAIN &&
                         mw_node_style(b) == MW_SCALAR_QUOTED && mw_node_slice(a).n > 0 &&
                         !core_special(mw_node_str(a));
        if (mw_node_style(a) != mw_node_style(b) && !may_quote) {
            snprintf(why, n, "line %zu: \"%s\" changed style", mw_node_line(a), mw_node_str(a));
            return false;
        }
        mw_slice x = mw_node_slice(a), y = mw_node_slice(b);
        bool empty_null =
            mw_node_style(a) == MW_SCALAR_PLAIN && x.n == 0 && mw_slice_eq_cstr(y, "null");
        if (!empty_null && !mw_slice_eq(x, y)) {
            snprintf(why, n, "line %zu: \"%s\" became \"%s\"", mw_node_line(a), mw_node_str(a),
                     mw_node_str(b));
            return false;
        }
        return true;
    }
    case MW_NODE_SEQ:
    case MW_NODE_MAP:
        if (mw_node_len(a) != mw_node_len(b)) {
            snprintf(why, n, "line %zu: %zu items became %zu", mw_node_line(a), mw_node_len(a),
                     mw_node_len(b));
            return false;
        }
        for (size_t i = 0; i < mw_node_len(a); i++) {
            if (mw_node_kind(a) == MW_NODE_SEQ) {
                if (!same_tree(mw_node_item(a, i), mw_node_item(b, i), why, n))
                    return false;
            } else if (!same_tree(mw_node_key_at(a, i), mw_node_key_at(b, i), why, n) ||
                       !same_tree(mw_node_value_at(a, i), mw_node_value_at(b, i), why, n)) {
                return false;
            }
        }
        return true;
    default:
        return true;
    }
}

/* Emit every non-empty document of text, re-read, compare. Returns documents checked. */
static size_t roundtrip(mw_slice text, const char *name)
{
    struct mw_docs *d = NULL;
    if (mw_failed(mw_yaml_load(text, name, NULL, &d)))
        return 0; /* invalid inputs (the validation cases) are not ours to re-emit */
    size_t checked = 0;
    for (size_t i = 0; i < mw_docs_count(d); i++) {
        const struct mw_node *root = mw_docs_root(d, i);
        if (root == NULL)
            continue;
        struct mw_dynbuf out;
        mw_dynbuf_init(&out, 1 << 24);
        mw_assert_ok(mw_node_emit_yaml(root, &out));
        struct mw_docs *e = NULL;
        if (mw_failed(mw_yaml_load(mw_dynbuf_slice(&out), "emitted", NULL, &e)))
            fail_msg("%s doc %zu: emitted text does not parse: %s\n%s", name, i, mw_error_msg(),
                     mw_dynbuf_cstr(&out));
        assert_int_equal(mw_docs_count(e), 1);
        char why[512];
        if (!same_tree(root, mw_docs_root(e, 0), why, sizeof(why)))
            fail_msg("%s doc %zu: %s\n%s", name, i, why, mw_dynbuf_cstr(&out));
        mw_docs_free(e);
        mw_dynbuf_free(&out);
        checked++;
    }
    mw_docs_free(d);
    return checked;
}

static size_t walk(const char *dir, size_t *files)
{
    size_t docs = 0;
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            docs += walk(path, files);
            continue;
        }
        size_t len = strlen(de->d_name);
        bool yaml = (len > 5 && strcmp(de->d_name + len - 5, ".yaml") == 0) ||
                    (len > 4 && strcmp(de->d_name + len - 4, ".yml") == 0);
        if (!yaml)
            continue;
        struct mw_dynbuf b;
        mw_dynbuf_init(&b, 1 << 24);
        mw_assert_ok(mw_file_read(path, 1 << 24, &b));
        docs += roundtrip(mw_dynbuf_slice(&b), path);
        mw_dynbuf_free(&b);
        (*files)++;
    }
    closedir(dp);
    return docs;
}

static void test_shared_testdata(void **state)
{
    size_t files = 0;
    size_t docs = walk(mw_test_data("istio"), &files);
    print_message("re-emitted %zu documents from %zu YAML files\n", docs, files);
    assert_true(files > 200);
    assert_true(docs > 300);
}

static void test_scalars_that_need_quotes(void **state)
{
    static const char *const cases[] = {
        "a: \"1,2\"\n",
        "a: 1,2\n",
        "a: [x, 'y z', \"\\t\\u0085\\u2028\\ufeff\\0\"]\n",
        "a: 'it''s'\n",
        "a: \"#not a comment\"\n",
        "a: b#c\n",
        "a: '-'\n",
        "a: -1\n",
        "a: -.5\n",
        "a: +1\n",
        "a: +.5e3\n",
        "a: 0x1F\n",
        "a: .inf\n",
        "a: -.inf\n",
        "a: .NaN\n",
        "a: 1e-3\n",
        "a: ~\n",
        "a:\n",
        "? \"k: v\"\n: 'x'\n",
        "a: \"\\\\ and \\\" \"\n",
        "a: |\n  two\n  lines\n",
        "a: >-\n  folded\n  text\n",
        "a: plain with spaces\n",
        "a: 'trailing '\n",
        "a: ''\n",
        "a: \"\"\n",
        "a: {b: [], c: {}}\n",
        "a: \"é ☃ 😀\"\n",
        "a: \"\\x7f\\x9f\"\n",
        "a: \"*star\"\n",
        "a: \"&amp\"\n",
        "a: \"!tag\"\n",
        "a: \"%pct\"\n",
        "a: \"@at\"\n",
        "a: \"`tick\"\n",
        "- [nested, [deep, {k: v}]]\n",
        "just a scalar\n",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (roundtrip(mw_slice_cstr(cases[i]), cases[i]) != 1)
            fail_msg("case %zu did not load: %s", i, cases[i]);
}

static void test_output_shape(void **state)
{
    struct mw_docs *d = NULL;
    mw_assert_ok(
        mw_yaml_load(mw_slice_cstr("kind: X\nspec:\n  ports: [80, '443']\n  x:\n"), "t", NULL, &d));
    struct mw_dynbuf out;
    mw_dynbuf_init(&out, 4096);
    mw_assert_ok(mw_node_emit_yaml(mw_docs_root(d, 0), &out));
    assert_string_equal(mw_dynbuf_cstr(&out),
                        "--- {kind: X, spec: {ports: [80, \"443\"], x: null}}\n");
    mw_dynbuf_free(&out);
    mw_docs_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_testdata),
        cmocka_unit_test(test_scalars_that_need_quotes),
        cmocka_unit_test(test_output_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
