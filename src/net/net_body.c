/*
 * Message bodies: fixed length, chunked (RFC 9112 §7.1) and until close.
 * The chunked decoder is a byte-level state machine, so it needs no buffer
 * of its own and any split of the input gives the same result.
 */
#include "net/net_internal.h"

enum {
    B_SIZE,       /* first hex digit of a chunk size */
    B_SIZE_MORE,  /* more hex digits, ';' or CR */
    B_EXT,        /* chunk extensions, up to CR */
    B_SIZE_LF,    /* LF after the size line */
    B_DATA,       /* chunk data */
    B_DATA_CR,    /* CR after chunk data */
    B_DATA_LF,    /* LF after chunk data */
    B_TRAILER,    /* start of a trailer line or the final CRLF */
    B_TRAILER_LN, /* inside a trailer field line */
    B_TRAILER_LF, /* LF after a trailer field line */
    B_END_LF,     /* LF of the final CRLF */
};

/* Longest size line: 16 hex digits plus leading zeros we tolerate. */
#define MAX_SIZE_DIGITS 32

static void init_common(struct mw_http_body *b, enum mw_http_framing framing,
                        const struct mw_http_limits *lim)
{
    const struct mw_http_limits *d = &mw_http_limits_default;
    b->framing = framing;
    b->state = B_SIZE;
    b->remaining = 0;
    b->total = 0;
    b->count = 0;
    b->in_value = false;
    b->max_chunk_ext = lim != NULL && lim->max_chunk_ext ? lim->max_chunk_ext : d->max_chunk_ext;
    b->max_trailer = lim != NULL && lim->max_trailer ? lim->max_trailer : d->max_trailer;
    b->done = framing == MW_HTTP_BODY_NONE;
}

void mw_http_body_init(struct mw_http_body *b, const struct mw_http_head *head,
                       const struct mw_http_limits *lim)
{
    init_common(b, head->framing, lim);
    if (head->framing == MW_HTTP_BODY_LENGTH) {
        b->remaining = head->content_length;
        b->done = b->remaining == 0;
    }
}

void mw_http_body_init_chunked(struct mw_http_body *b, const struct mw_http_limits *lim)
{
    init_common(b, MW_HTTP_BODY_CHUNKED, lim);
}

static ssize_t fail(struct mw_http_error *err, const char *reason, size_t offset)
{
    err->status = 400;
    err->reason = reason;
    err->offset = offset;
    return MW_HTTP_ERROR;
}

static bool is_field_byte(uint8_t c)
{
    return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f);
}

static ssize_t decode_chunked(struct mw_http_body *b, mw_slice in, mw_slice *data,
                              struct mw_http_error *err)
{
    size_t i = 0;
    while (i < in.n && !b->done) {
        uint8_t c = in.p[i];
        switch (b->state) {
        case B_SIZE:
        case B_SIZE_MORE: {
            int h = mw_hex_digit(c);
            if (h >= 0) {
                /* The size must fit in 62 bits: overflow would wrap the framing. */
                if (b->remaining > ((((uint64_t)1 << 62) - (uint64_t)h) >> 4))
                    return fail(err, "chunk size too large", i);
                if (++b->count > MAX_SIZE_DIGITS)
                    return fail(err, "chunk size has too many digits", i);
                b->remaining = (b->remaining << 4) | (uint64_t)h;
                b->state = B_SIZE_MORE;
            } else if (b->state == B_SIZE) {
                return fail(err, "chunk size is not hexadecimal", i);
            } else if (c == ';') {
                /*
                 * chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ).
                 * BWS before ';' is refused: parsers disagree on it.
                 */
                b->count = 1;
                b->state = B_EXT;
            } else if (c == '\r') {
                b->state = B_SIZE_LF;
            } else {
                return fail(err, "bad character after chunk size", i);
            }
            break;
        }
        case B_EXT:
            if (c == '\r') {
                b->state = B_SIZE_LF;
            } else if (!is_field_byte(c)) {
                return fail(err, "control character in chunk extension", i);
            } else if (++b->count > b->max_chunk_ext) {
                return fail(err, "chunk extension too long", i);
            }
            break;
        case B_SIZE_LF:
            if (c != '\n')
                return fail(err, "bare CR in chunk size line", i);
            b->count = 0;
            if (b->remaining == 0) {
                b->state = B_TRAILER;
            } else {
                b->state = B_DATA;
            }
            break;
        case B_DATA: {
            size_t left = in.n - i;
            size_t take = b->remaining < left ? (size_t)b->remaining : left;
            *data = mw_slice_make(in.p + i, take);
            b->remaining -= take;
            b->total += take;
            i += take;
            if (b->remaining == 0)
                b->state = B_DATA_CR;
            return (ssize_t)i;
        }
        case B_DATA_CR:
            if (c != '\r')
                return fail(err, "chunk data longer than its size", i);
            b->state = B_DATA_LF;
            break;
        case B_DATA_LF:
            if (c != '\n')
                return fail(err, "bare CR after chunk data", i);
            b->state = B_SIZE;
            b->count = 0;
            break;
        case B_TRAILER:
            if (c == '\r') {
                b->state = B_END_LF;
                break;
            }
            if (!mw_http_tchar[c])
                return fail(err,
                            c == ' ' || c == '\t' ? "obs-fold in trailer section"
                                                  : "bad character in trailer field name",
                            i);
            b->in_value = false;
            b->state = B_TRAILER_LN;
            if (++b->count > b->max_trailer)
                return fail(err, "trailer section too large", i);
            break;
        case B_TRAILER_LN:
            if (++b->count > b->max_trailer)
                return fail(err, "trailer section too large", i);
            if (!b->in_value) {
                if (c == ':')
                    b->in_value = true;
                else if (!mw_http_tchar[c])
                    return fail(err, "bad character in trailer field name", i);
            } else if (c == '\r') {
                b->state = B_TRAILER_LF;
            } else if (!is_field_byte(c)) {
                return fail(err, "control character in trailer field value", i);
            }
            break;
        case B_TRAILER_LF:
            if (c != '\n')
                return fail(err, "bare CR in trailer section", i);
            b->state = B_TRAILER;
            break;
        case B_END_LF:
            if (c != '\n')
                return fail(err, "bare CR at end of chunked body", i);
            b->done = true;
            break;
        default:
            return fail(err, "chunked decoder in a bad state", i);
        }
        i++;
    }
    return (ssize_t)i;
}

ssize_t mw_http_body_decode(struct mw_http_body *b, mw_slice in, mw_slice *data,
                            struct mw_http_error *err)
{
    *data = mw_slice_make(in.p, 0);
    if (b->done)
        return 0;
    switch (b->framing) {
    case MW_HTTP_BODY_LENGTH: {
        size_t take = b->remaining < in.n ? (size_t)b->remaining : in.n;
        *data = mw_slice_make(in.p, take);
        b->remaining -= take;
        b->total += take;
        b->done = b->remaining == 0;
        return (ssize_t)take;
    }
    case MW_HTTP_BODY_CLOSE:
        *data = in;
        b->total += in.n;
        return (ssize_t)in.n;
    case MW_HTTP_BODY_CHUNKED:
        return decode_chunked(b, in, data, err);
    case MW_HTTP_BODY_NONE:
    default:
        b->done = true;
        return 0;
    }
}

mw_result mw_http_body_eof(struct mw_http_body *b)
{
    if (b->framing == MW_HTTP_BODY_CLOSE)
        b->done = true;
    MW_ENSURE(b->done, MW_E_INPUT, "connection closed before the end of the body (%llu bytes in)",
              (unsigned long long)b->total);
    return MW_SUCCESS;
}
