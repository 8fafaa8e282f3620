/*
 * SPIFFE IDs and trust domain names (SPIFFE-ID.md §2).
 *
 * The grammar is deliberately narrower than RFC 3986: one spelling per
 * identity, so that comparing IDs byte for byte is comparing identities. No
 * percent-encoding, no upper case in the trust domain, no userinfo or port,
 * no query or fragment, no dot segments.
 */
#include <string.h>

#include <meshward/spiffe.h>

static const char scheme_prefix[] = "spiffe://";
#define SCHEME_LEN (sizeof(scheme_prefix) - 1)

const char *mw_spiffe_id_fault_name(enum mw_spiffe_id_fault fault)
{
    switch (fault) {
    case MW_SPIFFE_ID_OK:
        return "ok";
    case MW_SPIFFE_ID_EMPTY:
        return "empty";
    case MW_SPIFFE_ID_BAD_SCHEME:
        return "bad_scheme";
    case MW_SPIFFE_ID_MISSING_TRUST_DOMAIN:
        return "missing_trust_domain";
    case MW_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR:
        return "bad_trust_domain_char";
    case MW_SPIFFE_ID_BAD_PATH_CHAR:
        return "bad_path_char";
    case MW_SPIFFE_ID_EMPTY_SEGMENT:
        return "empty_segment";
    case MW_SPIFFE_ID_DOT_SEGMENT:
        return "dot_segment";
    case MW_SPIFFE_ID_TRAILING_SLASH:
        return "trailing_slash";
    case MW_SPIFFE_ID_TOO_LONG:
        return "too_long";
    }
    return "unknown";
}

/* §2.1: "Trust domain names ... MUST contain only lowercase letters, numbers, dots, dashes, and
 * underscores." */
static bool td_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/* §2.2: path segments are letters (either case), numbers, dots, dashes and underscores. */
static bool path_char(uint8_t c)
{
    return td_char(c) || (c >= 'A' && c <= 'Z');
}

static mw_result fail(enum mw_spiffe_id_fault *fault, enum mw_spiffe_id_fault f, const char *fmt,
                      ...) MW_PRINTF(3, 4);

static mw_result fail(enum mw_spiffe_id_fault *fault, enum mw_spiffe_id_fault f, const char *fmt,
                      ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (fault != NULL)
        *fault = f;
    mw_error_set(MW_E_INPUT, "SPIFFE ID: %s (%s)", msg, mw_spiffe_id_fault_name(f));
    return MW_FAILURE;
}

/* A byte for a message: printable as itself, else as hex. */
static void show_byte(uint8_t c, char buf[8])
{
    if (c >= 0x21 && c <= 0x7e)
        snprintf(buf, 8, "'%c'", c);
    else
        snprintf(buf, 8, "0x%02x", c);
}

/*
 * The path rules of §2.2, in the order go-spiffe checks them so that the
 * fault class of an input with several faults is the same in both.
 */
static mw_result check_path(mw_slice path, size_t base, enum mw_spiffe_id_fault *fault)
{
    size_t seg = 0;
    char b[8];
    for (size_t i = 0; i < path.n; i++) {
        uint8_t c = path.p[i];
        if (c == '/') {
            size_t len = i - seg;
            if (len == 1)
                return fail(fault, MW_SPIFFE_ID_EMPTY_SEGMENT, "empty path segment at offset %zu",
                            base + seg);
            if ((len == 2 && path.p[seg + 1] == '.') ||
                (len == 3 && path.p[seg + 1] == '.' && path.p[seg + 2] == '.'))
                return fail(fault, MW_SPIFFE_ID_DOT_SEGMENT,
                            "path segment '%.*s' at offset %zu is a dot segment", (int)(len - 1),
                            (const char *)path.p + seg + 1, base + seg);
            seg = i;
            continue;
        }
        if (!path_char(c)) {
            show_byte(c, b);
            return fail(fault, MW_SPIFFE_ID_BAD_PATH_CHAR,
                        "path byte %s at offset %zu is not one of a-z A-Z 0-9 - . _", b, base + i);
        }
    }
    size_t len = path.n - seg;
    if (len == 1)
        return fail(fault, MW_SPIFFE_ID_TRAILING_SLASH, "path ends with '/'");
    if ((len == 2 && path.p[seg + 1] == '.') ||
        (len == 3 && path.p[seg + 1] == '.' && path.p[seg + 2] == '.'))
        return fail(fault, MW_SPIFFE_ID_DOT_SEGMENT, "last path segment '%.*s' is a dot segment",
                    (int)(len - 1), (const char *)path.p + seg + 1);
    return MW_SUCCESS;
}

mw_result mw_spiffe_id_parse(mw_slice s, struct mw_spiffe_id *out, enum mw_spiffe_id_fault *fault)
{
    char b[8];
    if (fault != NULL)
        *fault = MW_SPIFFE_ID_OK;
    if (s.n == 0)
        return fail(fault, MW_SPIFFE_ID_EMPTY, "empty");
    /* §2: the scheme is "spiffe", lower case; "://" introduces the authority. */
    if (s.n < SCHEME_LEN || memcmp(s.p, scheme_prefix, SCHEME_LEN) != 0)
        return fail(fault, MW_SPIFFE_ID_BAD_SCHEME, "does not start with \"spiffe://\"");

    size_t i = SCHEME_LEN;
    for (; i < s.n && s.p[i] != '/'; i++) {
        if (!td_char(s.p[i])) {
            show_byte(s.p[i], b);
            return fail(fault, MW_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR,
                        "trust domain byte %s at offset %zu is not one of a-z 0-9 - . _", b, i);
        }
    }
    size_t td_len = i - SCHEME_LEN;
    if (td_len == 0)
        return fail(fault, MW_SPIFFE_ID_MISSING_TRUST_DOMAIN, "no trust domain");
    if (td_len > MW_SPIFFE_TD_MAX)
        return fail(fault, MW_SPIFFE_ID_TOO_LONG, "trust domain is %zu bytes, limit %d", td_len,
                    MW_SPIFFE_TD_MAX);
    if (s.n > MW_SPIFFE_ID_MAX)
        return fail(fault, MW_SPIFFE_ID_TOO_LONG, "%zu bytes, limit %d", s.n, MW_SPIFFE_ID_MAX);

    mw_slice path = mw_slice_sub(s, i, s.n - i);
    MW_GUARD(check_path(path, i, fault));

    memcpy(out->td, s.p + SCHEME_LEN, td_len);
    out->td[td_len] = '\0';
    memcpy(out->path, path.p, path.n);
    out->path[path.n] = '\0';
    return MW_SUCCESS;
}

mw_result mw_spiffe_td_parse(mw_slice s, char out[MW_SPIFFE_TD_MAX + 1])
{
    if (mw_slice_has_prefix(s, mw_slice_cstr(scheme_prefix))) {
        struct mw_spiffe_id id;
        MW_GUARD(mw_spiffe_id_parse(s, &id, NULL));
        MW_ENSURE(id.path[0] == '\0', MW_E_INPUT, "trust domain: \"%.*s\" has a path",
                  (int)(s.n > 300 ? 300 : s.n), (const char *)s.p);
        memcpy(out, id.td, strlen(id.td) + 1);
        return MW_SUCCESS;
    }
    char b[8];
    MW_ENSURE(s.n > 0, MW_E_INPUT, "trust domain: empty (missing_trust_domain)");
    MW_ENSURE(s.n <= MW_SPIFFE_TD_MAX, MW_E_INPUT, "trust domain: %zu bytes, limit %d (too_long)",
              s.n, MW_SPIFFE_TD_MAX);
    for (size_t i = 0; i < s.n; i++) {
        if (!td_char(s.p[i])) {
            show_byte(s.p[i], b);
            MW_BAIL(MW_E_INPUT,
                    "trust domain: byte %s at offset %zu is not one of a-z 0-9 - . _ "
                    "(bad_trust_domain_char)",
                    b, i);
        }
    }
    memcpy(out, s.p, s.n);
    out[s.n] = '\0';
    return MW_SUCCESS;
}

bool mw_spiffe_id_format(const struct mw_spiffe_id *id, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s%s%s", scheme_prefix, id->td, id->path);
    return n >= 0 && (size_t)n < len;
}
