/*
 * Writing a parsed document back as YAML, in flow style on one line.
 *
 * The control plane sends the documents it selected for a workload as text
 * that the sidecar parses with the same strict loader. Re-emitting from the
 * tree (instead of cutting the source file apart) means a document is sent
 * exactly as it was understood, whatever the source layout was.
 *
 * Fidelity is what matters: re-parsing the output must give the same tree,
 * node kinds and scalar texts, and every scalar a reader could take for a
 * null, boolean or number keeps its plain style (tests/unit/conf/test_emit.c
 * checks this over every YAML file of the shared test data, and fuzz_yaml
 * over arbitrary input). Plain scalars are written plain only when their
 * characters cannot mean anything else in flow context; every other scalar
 * is double-quoted (YAML 1.2 §7.3.1). A plain scalar that needs quoting is
 * never a null, boolean or number of the core schema (§10.3.2: those use
 * only the characters kept plain here), so quoting it changes nothing a
 * reader can see. An empty plain scalar (a null) is written "null".
 */
#include <string.h>

#include "conf/conf_internal.h"

/* Safe as a plain scalar in flow context (YAML 1.2 §7.3.3): no indicators, no spaces. */
static bool plain_safe(mw_slice s)
{
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        uint8_t c = s.p[i];
        bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '/' || c == '~';
        if (word)
            continue;
        /* '-' and '+' inside, or first when a digit or '.' follows ("-1", "+.5"). */
        if ((c == '-' || c == '+') && i > 0)
            continue;
        if ((c == '-' || c == '+') && i == 0 && s.n > 1 &&
            ((s.p[1] >= '0' && s.p[1] <= '9') || s.p[1] == '.'))
            continue;
        return false;
    }
    return true;
}

/* The length of the UTF-8 sequence at p (the loader only keeps valid UTF-8), 1 on a stray byte. */
static size_t utf8_len(const uint8_t *p, size_t left, uint32_t *cp)
{
    uint8_t c = p[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 0;
    if (n == 0 || n > left) {
        *cp = c;
        return 1;
    }
    uint32_t v = n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            *cp = c;
            return 1;
        }
        v = (v << 6) | (p[i] & 0x3f);
    }
    *cp = v;
    return n;
}

/*
 * A double-quoted scalar. Escaped: '"', '\\', C0 and C1 controls, DEL, and
 * the characters a reader would take for line breaks or a byte-order mark
 * (NEL, LS, PS, BOM; YAML 1.2 §5.4, §5.2) or refuses as non-printable.
 */
static mw_result quoted(struct mw_dynbuf *b, mw_slice s)
{
    static const char hex[] = "0123456789abcdef";
    MW_GUARD(mw_dynbuf_add_byte(b, '"'));
    for (size_t i = 0; i < s.n;) {
        uint32_t cp;
        size_t n = utf8_len(s.p + i, s.n - i, &cp);
        if (cp == '"' || cp == '\\') {
            uint8_t esc[2] = {'\\', (uint8_t)cp};
            MW_GUARD(mw_dynbuf_add(b, esc, 2));
        } else if (cp == '\n') {
            MW_GUARD(mw_dynbuf_add(b, "\\n", 2));
        } else if (cp == '\t') {
            MW_GUARD(mw_dynbuf_add(b, "\\t", 2));
        } else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
                   cp == 0xfeff || cp == 0xfffe || cp == 0xffff) {
            uint8_t esc[6] = {'\\',
                              'u',
                              (uint8_t)hex[(cp >> 12) & 15],
                              (uint8_t)hex[(cp >> 8) & 15],
                              (uint8_t)hex[(cp >> 4) & 15],
                              (uint8_t)hex[cp & 15]};
            MW_GUARD(mw_dynbuf_add(b, esc, 6));
        } else {
            MW_GUARD(mw_dynbuf_add(b, s.p + i, n));
        }
        i += n;
    }
    return mw_dynbuf_add_byte(b, '"');
}

static mw_result scalar(struct mw_dynbuf *b, const struct mw_node *n)
{
    mw_slice s = mw_node_slice(n);
    if (mw_node_style(n) == MW_SCALAR_PLAIN) {
        if (s.n == 0)
            return mw_dynbuf_add_cstr(b, "null");
        if (plain_safe(s))
            return mw_dynbuf_add_slice(b, s);
    }
    return quoted(b, s);
}

static mw_result emit(struct mw_dynbuf *b, const struct mw_node *n, unsigned depth)
{
    /* The loader bounds depth; this bound only keeps the recursion finite for any tree. */
    MW_ENSURE(depth < 1024, MW_E_LIMIT, "document nested too deeply to emit");
    switch (mw_node_kind(n)) {
    case MW_NODE_SCALAR:
        return scalar(b, n);
    case MW_NODE_SEQ:
        MW_GUARD(mw_dynbuf_add_byte(b, '['));
        for (size_t i = 0; i < mw_node_len(n); i++) {
            if (i > 0)
                MW_GUARD(mw_dynbuf_add(b, ", ", 2));
            MW_GUARD(emit(b, mw_node_item(n, i), depth + 1));
        }
        return mw_dynbuf_add_byte(b, ']');
    case MW_NODE_MAP:
        MW_GUARD(mw_dynbuf_add_byte(b, '{'));
        for (size_t i = 0; i < mw_node_len(n); i++) {
            if (i > 0)
                MW_GUARD(mw_dynbuf_add(b, ", ", 2));
            MW_GUARD(emit(b, mw_node_key_at(n, i), depth + 1));
            MW_GUARD(mw_dynbuf_add(b, ": ", 2));
            MW_GUARD(emit(b, mw_node_value_at(n, i), depth + 1));
        }
        return mw_dynbuf_add_byte(b, '}');
    default:
        /* An empty document. */
        return mw_dynbuf_add_cstr(b, "null");
    }
}

mw_result mw_node_emit_yaml(const struct mw_node *n, struct mw_dynbuf *out)
{
    MW_GUARD(mw_dynbuf_add_cstr(out, "--- "));
    MW_GUARD(emit(out, n, 0));
    return mw_dynbuf_add_byte(out, '\n');
}
