#include <openssl/crypto.h>
#include <string.h>

#include <meshward/base.h>

mw_slice mw_slice_cstr(const char *s)
{
    if (s == NULL)
        return mw_slice_make(NULL, 0);
    return mw_slice_make(s, strlen(s));
}

bool mw_slice_eq(mw_slice a, mw_slice b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

bool mw_slice_eq_cstr(mw_slice a, const char *s)
{
    return mw_slice_eq(a, mw_slice_cstr(s));
}

bool mw_slice_has_prefix(mw_slice s, mw_slice prefix)
{
    return s.n >= prefix.n && (prefix.n == 0 || memcmp(s.p, prefix.p, prefix.n) == 0);
}

bool mw_slice_has_suffix(mw_slice s, mw_slice suffix)
{
    return s.n >= suffix.n &&
           (suffix.n == 0 || memcmp(s.p + (s.n - suffix.n), suffix.p, suffix.n) == 0);
}

mw_slice mw_slice_sub(mw_slice s, size_t from, size_t len)
{
    if (from > s.n)
        from = s.n;
    if (len > s.n - from)
        len = s.n - from;
    return mw_slice_make(s.p == NULL ? NULL : s.p + from, len);
}

size_t mw_slice_find(mw_slice s, uint8_t c, size_t from)
{
    for (size_t i = from; i < s.n; i++) {
        if (s.p[i] == c)
            return i;
    }
    return s.n;
}

bool mw_slice_eq_ct(mw_slice a, mw_slice b)
{
    if (a.n != b.n)
        return false;
    if (a.n == 0)
        return true;
    return CRYPTO_memcmp(a.p, b.p, a.n) == 0;
}

/* ---------------------------------------------------------------- cursor */

void mw_cursor_init(struct mw_cursor *c, mw_slice buf)
{
    c->buf = buf;
    c->off = 0;
}

size_t mw_cursor_left(const struct mw_cursor *c)
{
    return c->buf.n - c->off;
}

mw_slice mw_cursor_rest(const struct mw_cursor *c)
{
    return mw_slice_sub(c->buf, c->off, c->buf.n - c->off);
}

static mw_result need(const struct mw_cursor *c, size_t n)
{
    MW_ENSURE(n <= mw_cursor_left(c), MW_E_INPUT,
              "truncated: need %zu bytes at offset %zu, have %zu", n, c->off, mw_cursor_left(c));
    return MW_SUCCESS;
}

static mw_result read_be(struct mw_cursor *c, size_t width, uint64_t *out)
{
    MW_GUARD(need(c, width));
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++)
        v = (v << 8) | c->buf.p[c->off + i];
    c->off += width;
    *out = v;
    return MW_SUCCESS;
}

mw_result mw_cursor_u8(struct mw_cursor *c, uint8_t *out)
{
    uint64_t v;
    MW_GUARD(read_be(c, 1, &v));
    *out = (uint8_t)v;
    return MW_SUCCESS;
}

mw_result mw_cursor_u16be(struct mw_cursor *c, uint16_t *out)
{
    uint64_t v;
    MW_GUARD(read_be(c, 2, &v));
    *out = (uint16_t)v;
    return MW_SUCCESS;
}

mw_result mw_cursor_u24be(struct mw_cursor *c, uint32_t *out)
{
    uint64_t v;
    MW_GUARD(read_be(c, 3, &v));
    *out = (uint32_t)v;
    return MW_SUCCESS;
}

mw_result mw_cursor_u32be(struct mw_cursor *c, uint32_t *out)
{
    uint64_t v;
    MW_GUARD(read_be(c, 4, &v));
    *out = (uint32_t)v;
    return MW_SUCCESS;
}

mw_result mw_cursor_u64be(struct mw_cursor *c, uint64_t *out)
{
    return read_be(c, 8, out);
}

mw_result mw_cursor_bytes(struct mw_cursor *c, size_t n, mw_slice *out)
{
    MW_GUARD(need(c, n));
    *out = mw_slice_make(c->buf.p + c->off, n);
    c->off += n;
    return MW_SUCCESS;
}

mw_result mw_cursor_skip(struct mw_cursor *c, size_t n)
{
    MW_GUARD(need(c, n));
    c->off += n;
    return MW_SUCCESS;
}

mw_result mw_cursor_until(struct mw_cursor *c, uint8_t delim, mw_slice *out)
{
    size_t at = mw_slice_find(c->buf, delim, c->off);
    MW_ENSURE(at < c->buf.n, MW_E_INPUT, "truncated: no 0x%02x after offset %zu", delim, c->off);
    *out = mw_slice_make(c->buf.p + c->off, at - c->off);
    c->off = at + 1;
    return MW_SUCCESS;
}
