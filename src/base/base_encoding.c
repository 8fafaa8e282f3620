#include <string.h>

#include <meshward/base.h>

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static bool is_url(enum mw_b64 a)
{
    return a == MW_B64_URL || a == MW_B64_URL_ANYPAD;
}

static int b64_value(uint8_t c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/*
 * RFC 4648 §3.5: decoders may reject encodings whose pad bits are not zero.
 * We do, so that each byte string has exactly one accepted encoding (a
 * signature or digest compared by its text cannot then be respelled).
 */
mw_result mw_b64_decode(mw_slice in, enum mw_b64 alphabet, struct mw_dynbuf *out)
{
    bool url = is_url(alphabet);
    size_t n = in.n;
    size_t pad = 0;
    while (n > 0 && in.p[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (pad > 0) {
        MW_ENSURE(alphabet != MW_B64_URL, MW_E_INPUT, "base64url: padding is not allowed");
        MW_ENSURE(in.n % 4 == 0, MW_E_INPUT,
                  "base64: padded input length %zu is not a multiple of 4", in.n);
    } else if (alphabet == MW_B64_STD) {
        MW_ENSURE(in.n % 4 == 0, MW_E_INPUT, "base64: length %zu without padding", in.n);
    }
    MW_ENSURE(n % 4 != 1, MW_E_INPUT, "base64: impossible length %zu", in.n);
    if (pad > 0)
        MW_ENSURE((n + pad) % 4 == 0, MW_E_INPUT, "base64: wrong amount of padding");

    MW_GUARD(mw_dynbuf_reserve(out, n / 4 * 3 + 2));
    uint32_t acc = 0;
    size_t bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(in.p[i], url);
        MW_ENSURE(v >= 0, MW_E_INPUT, "base64: invalid character 0x%02x at offset %zu", in.p[i], i);
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            MW_GUARD(mw_dynbuf_add_byte(out, (uint8_t)(acc >> bits)));
            acc &= (1u << bits) - 1;
        }
    }
    MW_ENSURE(acc == 0, MW_E_INPUT, "base64: non-zero trailing bits");
    return MW_SUCCESS;
}

mw_result mw_b64_encode(mw_slice in, enum mw_b64 alphabet, struct mw_dynbuf *out)
{
    const char *tab = is_url(alphabet) ? b64_url : b64_std;
    bool pad = alphabet == MW_B64_STD;
    MW_GUARD(mw_dynbuf_reserve(out, (in.n + 2) / 3 * 4));
    size_t i = 0;
    for (; i + 3 <= in.n; i += 3) {
        uint32_t v = ((uint32_t)in.p[i] << 16) | ((uint32_t)in.p[i + 1] << 8) | in.p[i + 2];
        uint8_t q[4] = {(uint8_t)tab[v >> 18], (uint8_t)tab[(v >> 12) & 63],
                        (uint8_t)tab[(v >> 6) & 63], (uint8_t)tab[v & 63]};
        MW_GUARD(mw_dynbuf_add(out, q, 4));
    }
    size_t rest = in.n - i;
    if (rest == 1) {
        uint32_t v = (uint32_t)in.p[i] << 16;
        uint8_t q[4] = {(uint8_t)tab[v >> 18], (uint8_t)tab[(v >> 12) & 63], '=', '='};
        MW_GUARD(mw_dynbuf_add(out, q, pad ? 4 : 2));
    } else if (rest == 2) {
        uint32_t v = ((uint32_t)in.p[i] << 16) | ((uint32_t)in.p[i + 1] << 8);
        uint8_t q[4] = {(uint8_t)tab[v >> 18], (uint8_t)tab[(v >> 12) & 63],
                        (uint8_t)tab[(v >> 6) & 63], '='};
        MW_GUARD(mw_dynbuf_add(out, q, pad ? 4 : 3));
    }
    return MW_SUCCESS;
}

mw_result mw_hex_encode(mw_slice in, struct mw_dynbuf *out)
{
    static const char hex[] = "0123456789abcdef";
    MW_GUARD(mw_dynbuf_reserve(out, in.n * 2));
    for (size_t i = 0; i < in.n; i++) {
        uint8_t two[2] = {(uint8_t)hex[in.p[i] >> 4], (uint8_t)hex[in.p[i] & 15]};
        MW_GUARD(mw_dynbuf_add(out, two, 2));
    }
    return MW_SUCCESS;
}

int mw_hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

mw_result mw_hex_decode(mw_slice in, struct mw_dynbuf *out)
{
    MW_ENSURE(in.n % 2 == 0, MW_E_INPUT, "hex: odd length %zu", in.n);
    MW_GUARD(mw_dynbuf_reserve(out, in.n / 2));
    for (size_t i = 0; i < in.n; i += 2) {
        int hi = mw_hex_digit(in.p[i]);
        int lo = mw_hex_digit(in.p[i + 1]);
        MW_ENSURE(hi >= 0 && lo >= 0, MW_E_INPUT, "hex: invalid character at offset %zu",
                  hi < 0 ? i : i + 1);
        MW_GUARD(mw_dynbuf_add_byte(out, (uint8_t)(hi << 4 | lo)));
    }
    return MW_SUCCESS;
}
