#include <meshward/base.h>

static const char *name_of(const char *what)
{
    return what != NULL ? what : "number";
}

/*
 * The input as it may appear in a message: at most 32 bytes, and anything
 * but printable ASCII as \xNN, so that hostile input cannot put control
 * sequences into terminals and logs.
 */
struct quoted {
    char s[32 * 4 + 4];
};

static struct quoted quote(mw_slice in)
{
    static const char hex[] = "0123456789abcdef";
    struct quoted q;
    size_t o = 0;
    for (size_t i = 0; i < in.n && i < 32; i++) {
        uint8_t c = in.p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
            q.s[o++] = (char)c;
        } else {
            q.s[o++] = '\\';
            q.s[o++] = 'x';
            q.s[o++] = hex[c >> 4];
            q.s[o++] = hex[c & 15];
        }
    }
    if (in.n > 32) {
        q.s[o++] = '.';
        q.s[o++] = '.';
        q.s[o++] = '.';
    }
    q.s[o] = '\0';
    return q;
}

mw_result mw_parse_u64(mw_slice s, uint64_t min, uint64_t max, const char *what, uint64_t *out)
{
    MW_ENSURE(s.n > 0, MW_E_INPUT, "%s: empty, want a number in [%llu, %llu]", name_of(what),
              (unsigned long long)min, (unsigned long long)max);
    /* Leading zeros are refused so that a number has one spelling ("010" is not 8 or 10). */
    MW_ENSURE(!(s.n > 1 && s.p[0] == '0'), MW_E_INPUT, "%s: \"%s\" has a leading zero",
              name_of(what), quote(s).s);
    uint64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        uint8_t c = s.p[i];
        MW_ENSURE(c >= '0' && c <= '9', MW_E_INPUT, "%s: \"%s\" is not a decimal number",
                  name_of(what), quote(s).s);
        uint64_t d = (uint64_t)(c - '0');
        MW_ENSURE(v <= (UINT64_MAX - d) / 10, MW_E_INPUT, "%s: number too large", name_of(what));
        v = v * 10 + d;
    }
    MW_ENSURE(v >= min && v <= max, MW_E_INPUT, "%s: %llu is outside [%llu, %llu]", name_of(what),
              (unsigned long long)v, (unsigned long long)min, (unsigned long long)max);
    *out = v;
    return MW_SUCCESS;
}

mw_result mw_parse_i64(mw_slice s, int64_t min, int64_t max, const char *what, int64_t *out)
{
    bool neg = s.n > 0 && s.p[0] == '-';
    mw_slice digits = neg ? mw_slice_sub(s, 1, s.n - 1) : s;
    uint64_t mag;
    /* Parse the magnitude without a range first; |INT64_MIN| = INT64_MAX + 1. */
    MW_GUARD(mw_parse_u64(digits, 0, (uint64_t)INT64_MAX + 1, what, &mag));
    int64_t v;
    if (neg) {
        MW_ENSURE(mag != 0, MW_E_INPUT, "%s: \"-0\" is not a number", name_of(what));
        v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        MW_ENSURE(mag <= (uint64_t)INT64_MAX, MW_E_INPUT, "%s: number too large", name_of(what));
        v = (int64_t)mag;
    }
    MW_ENSURE(v >= min && v <= max, MW_E_INPUT, "%s: %lld is outside [%lld, %lld]", name_of(what),
              (long long)v, (long long)min, (long long)max);
    *out = v;
    return MW_SUCCESS;
}

mw_result mw_parse_duration(mw_slice s, uint64_t max_s, const char *what, uint64_t *out_s)
{
    size_t i = 0;
    while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9')
        i++;
    mw_slice num = mw_slice_sub(s, 0, i);
    mw_slice unit = mw_slice_sub(s, i, s.n - i);
    uint64_t mult;
    bool ms = false;
    if (mw_slice_eq_cstr(unit, "ms")) {
        ms = true;
        mult = 1;
    } else if (mw_slice_eq_cstr(unit, "s")) {
        mult = 1;
    } else if (mw_slice_eq_cstr(unit, "m")) {
        mult = 60;
    } else if (mw_slice_eq_cstr(unit, "h")) {
        mult = 3600;
    } else if (mw_slice_eq_cstr(unit, "d")) {
        mult = 86400;
    } else {
        MW_BAIL(MW_E_INPUT, "%s: \"%s\" needs a unit of ms, s, m, h or d", name_of(what),
                quote(s).s);
    }
    uint64_t v;
    MW_GUARD(mw_parse_u64(num, 0, UINT64_MAX / 86400, what, &v));
    uint64_t secs = ms ? v / 1000 : v * mult;
    MW_ENSURE(secs <= max_s, MW_E_INPUT, "%s: %llu s is more than the maximum of %llu s",
              name_of(what), (unsigned long long)secs, (unsigned long long)max_s);
    *out_s = secs;
    return MW_SUCCESS;
}
