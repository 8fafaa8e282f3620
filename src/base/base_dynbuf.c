#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <meshward/base.h>

static const char empty_cstr[1] = "";

void mw_dynbuf_init(struct mw_dynbuf *b, size_t max)
{
    b->p = NULL;
    b->n = 0;
    b->cap = 0;
    b->max = max;
    b->secure = false;
}

void mw_dynbuf_init_secure(struct mw_dynbuf *b, size_t max)
{
    mw_dynbuf_init(b, max);
    b->secure = true;
}

void mw_dynbuf_free(struct mw_dynbuf *b)
{
    if (b->p != NULL && b->secure)
        mw_wipe(b->p, b->cap);
    free(b->p);
    b->p = NULL;
    b->n = 0;
    b->cap = 0;
}

void mw_dynbuf_reset(struct mw_dynbuf *b)
{
    if (b->p != NULL && b->secure)
        mw_wipe(b->p, b->n);
    b->n = 0;
    if (b->p != NULL)
        b->p[0] = 0;
}

mw_result mw_dynbuf_reserve(struct mw_dynbuf *b, size_t extra)
{
    /* Room for extra bytes plus the trailing NUL, never past max. */
    MW_ENSURE(extra <= b->max && b->n <= b->max - extra, MW_E_LIMIT,
              "buffer limit of %zu bytes exceeded", b->max);
    size_t want = b->n + extra + 1;
    if (want <= b->cap)
        return MW_SUCCESS;
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    uint8_t *p;
    if (b->secure) {
        /* realloc could leave a copy of a secret behind; move it ourselves. */
        p = malloc(cap);
        MW_ENSURE(p != NULL, MW_E_NOMEM, "out of memory (%zu bytes)", cap);
        if (b->p != NULL) {
            memcpy(p, b->p, b->n + 1);
            mw_wipe(b->p, b->cap);
            free(b->p);
        }
    } else {
        p = realloc(b->p, cap);
        MW_ENSURE(p != NULL, MW_E_NOMEM, "out of memory (%zu bytes)", cap);
    }
    b->p = p;
    b->cap = cap;
    /* The contents stay a C string even before the first byte is added. */
    b->p[b->n] = 0;
    return MW_SUCCESS;
}

mw_result mw_dynbuf_add(struct mw_dynbuf *b, const void *p, size_t n)
{
    MW_GUARD(mw_dynbuf_reserve(b, n));
    if (n > 0)
        memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
    return MW_SUCCESS;
}

mw_result mw_dynbuf_add_byte(struct mw_dynbuf *b, uint8_t c)
{
    return mw_dynbuf_add(b, &c, 1);
}

mw_result mw_dynbuf_add_slice(struct mw_dynbuf *b, mw_slice s)
{
    return mw_dynbuf_add(b, s.p, s.n);
}

mw_result mw_dynbuf_add_cstr(struct mw_dynbuf *b, const char *s)
{
    return mw_dynbuf_add(b, s, strlen(s));
}

mw_result mw_dynbuf_addv(struct mw_dynbuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    MW_ENSURE(n >= 0, MW_E_INTERNAL, "bad format string");
    MW_GUARD(mw_dynbuf_reserve(b, (size_t)n));
    vsnprintf((char *)b->p + b->n, (size_t)n + 1, fmt, ap);
    b->n += (size_t)n;
    return MW_SUCCESS;
}

mw_result mw_dynbuf_addf(struct mw_dynbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mw_result r = mw_dynbuf_addv(b, fmt, ap);
    va_end(ap);
    return r;
}

mw_result mw_dynbuf_add_json_str(struct mw_dynbuf *b, mw_slice s)
{
    static const char hex[] = "0123456789abcdef";
    MW_GUARD(mw_dynbuf_add_byte(b, '"'));
    for (size_t i = 0; i < s.n; i++) {
        uint8_t c = s.p[i];
        if (c == '"' || c == '\\') {
            uint8_t esc[2] = {'\\', c};
            MW_GUARD(mw_dynbuf_add(b, esc, 2));
        } else if (c == '\n') {
            MW_GUARD(mw_dynbuf_add(b, "\\n", 2));
        } else if (c == '\r') {
            MW_GUARD(mw_dynbuf_add(b, "\\r", 2));
        } else if (c == '\t') {
            MW_GUARD(mw_dynbuf_add(b, "\\t", 2));
        } else if (c < 0x20 || c == 0x7f) {
            uint8_t esc[6] = {'\\', 'u', '0', '0', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
            MW_GUARD(mw_dynbuf_add(b, esc, 6));
        } else {
            /* Bytes >= 0x80 pass through; callers hand us UTF-8 text. */
            MW_GUARD(mw_dynbuf_add_byte(b, c));
        }
    }
    return mw_dynbuf_add_byte(b, '"');
}

const char *mw_dynbuf_cstr(const struct mw_dynbuf *b)
{
    return b->p != NULL ? (const char *)b->p : empty_cstr;
}

uint8_t *mw_dynbuf_take(struct mw_dynbuf *b, size_t *n)
{
    uint8_t *p = b->p;
    if (n != NULL)
        *n = b->n;
    b->p = NULL;
    b->n = 0;
    b->cap = 0;
    return p;
}
