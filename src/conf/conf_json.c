/*
 * JSON through jansson. RFC 8259 §4 leaves duplicate names to the
 * implementation ("SHOULD be unique"), and readers disagree on which one
 * wins, so they are refused (JSON_REJECT_DUPLICATES). The top level must be
 * an object or an array (jansson's default without JSON_DECODE_ANY), and
 * "\u0000" in strings is refused (no JSON_ALLOW_NUL), so every string is a C
 * string.
 */
#include <jansson.h>
#include <string.h>

#include "conf/conf_internal.h"

/*
 * jansson refuses nesting beyond its own compile-time limit (2048) while
 * parsing, so this recursion is at most that deep even when the caller's
 * limit is larger; it stops as soon as it passes max_depth.
 */
static bool json_too_deep(const json_t *v, size_t depth, size_t max_depth)
{
    if (!json_is_object(v) && !json_is_array(v))
        return false;
    if (depth + 1 > max_depth)
        return true;
    if (json_is_array(v)) {
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item)
        {
            if (json_too_deep(item, depth + 1, max_depth))
                return true;
        }
        return false;
    }
    const char *key;
    json_t *member;
    json_object_foreach((json_t *)v, key, member)
    {
        if (json_too_deep(member, depth + 1, max_depth))
            return true;
    }
    return false;
}

/*
 * jansson's values carry no position, so find the bracket that went too
 * deep in the text. The text has parsed, so brackets outside strings are
 * structure.
 */
static size_t json_deep_offset(mw_slice text, size_t max_depth)
{
    size_t depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < text.n; i++) {
        uint8_t c = text.p[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return i;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return text.n;
}

mw_result mw_json_load(mw_slice text, const char *name, const struct mw_conf_limits *limits,
                       struct json_t **out)
{
    *out = NULL;
    if (name == NULL)
        name = "<json>";
    struct mw_conf_limits lim = conf_limits_resolve(limits);
    MW_ENSURE(text.n <= lim.max_bytes, MW_E_LIMIT, "%s: %zu bytes is more than the limit of %zu",
              name, text.n, lim.max_bytes);
    json_error_t jerr;
    static const char empty[1];
    json_t *v = json_loadb(text.n > 0 ? (const char *)text.p : empty, text.n,
                           JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL) {
        enum mw_err code = MW_E_INPUT;
        switch (json_error_code(&jerr)) {
        case json_error_out_of_memory:
            code = MW_E_NOMEM;
            break;
        case json_error_stack_overflow:
            code = MW_E_LIMIT;
            break;
        default:
            break;
        }
        /* jansson's line and column are 1-based; both are -1 when it has no position. */
        int line = jerr.line > 0 ? jerr.line : 1;
        int col = jerr.column > 0 ? jerr.column : 1;
        /* jansson copies input bytes into its text ("invalid token near 'x'"); keep them printable.
         */
        char msg[4 * JSON_ERROR_TEXT_LENGTH];
        conf_escape(msg, sizeof(msg), (const uint8_t *)jerr.text,
                    strnlen(jerr.text, JSON_ERROR_TEXT_LENGTH - 1));
        mw_error_set(code, "%s:%d:%d: %s", name, line, col, msg);
        return MW_FAILURE;
    }
    if (json_too_deep(v, 0, lim.max_depth)) {
        json_decref(v);
        size_t line, col;
        conf_offset_pos(text, json_deep_offset(text, lim.max_depth), &line, &col);
        MW_BAIL(MW_E_LIMIT, "%s:%zu:%zu: nesting deeper than %zu", name, line, col, lim.max_depth);
    }
    *out = v;
    return MW_SUCCESS;
}

mw_result mw_json_load_file(const char *path, const struct mw_conf_limits *limits,
                            struct json_t **out)
{
    *out = NULL;
    struct mw_conf_limits lim = conf_limits_resolve(limits);
    struct mw_dynbuf buf;
    mw_dynbuf_init(&buf, lim.max_bytes);
    if (mw_failed(mw_file_read(path, lim.max_bytes, &buf))) {
        mw_dynbuf_free(&buf);
        return MW_FAILURE;
    }
    mw_result r = mw_json_load(mw_dynbuf_slice(&buf), path, &lim, out);
    mw_dynbuf_free(&buf);
    return r;
}
