/*
 * meshward base: results and errors, slices, a bounds-checked cursor, bounded
 * growable buffers, logging, an injectable clock, secure memory for secrets,
 * base64/base64url/hex, range-checked numbers and size-limited file reads.
 *
 * Every other part of meshward builds on this header. It holds no OpenSSL,
 * jansson or libyaml types.
 */
#ifndef MESHWARD_BASE_H
#define MESHWARD_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MW_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

/* ---------------------------------------------------------------- results */

/*
 * A fallible function returns mw_result. It is a struct, not an int, so that
 * it cannot be mistaken for a count or silently ignored: every function that
 * returns it is declared with MW_RESULT, which makes the compiler warn when a
 * caller drops the value.
 *
 * On failure the details (code and message) are in the calling thread's error
 * slot; read them with mw_error_code() and mw_error_msg().
 */
typedef struct mw_result {
    int failed_;
} mw_result;

#define MW_RESULT  __attribute__((warn_unused_result)) mw_result
#define MW_SUCCESS ((mw_result){0})
#define MW_FAILURE ((mw_result){1})

static inline bool mw_ok(mw_result r)
{
    return r.failed_ == 0;
}
static inline bool mw_failed(mw_result r)
{
    return r.failed_ != 0;
}

/* Error codes. Callers branch on the code; the message is for people. */
enum mw_err {
    MW_E_NONE = 0,
    MW_E_INPUT,       /* the input is malformed or breaks a rule */
    MW_E_LIMIT,       /* the input is larger or deeper than allowed */
    MW_E_VERIFY,      /* well-formed, but verification failed */
    MW_E_EXPIRED,     /* outside its validity window */
    MW_E_NOTFOUND,    /* a file, key or entry does not exist */
    MW_E_UNSUPPORTED, /* a valid feature meshward does not implement */
    MW_E_IO,          /* the operating system failed a read or write */
    MW_E_PERM,        /* refused for permissions (e.g. a world-readable key) */
    MW_E_CRYPTO,      /* the crypto library failed */
    MW_E_NOMEM,       /* out of memory */
    MW_E_STATE,       /* called at the wrong time */
    MW_E_INTERNAL,    /* a bug in meshward */
};

/* A short stable name for a code: "input", "limit", "verify", ... */
const char *mw_err_name(enum mw_err code);

/* Set the thread's error. The message should name what was wrong. */
void mw_error_set(enum mw_err code, const char *fmt, ...) MW_PRINTF(2, 3);
void mw_error_setv(enum mw_err code, const char *fmt, va_list ap) MW_PRINTF(2, 0);
/* Put context in front of the current message: "bundle.json: " + msg. */
void mw_error_prefix(const char *fmt, ...) MW_PRINTF(1, 2);
/*
 * Set the error from OpenSSL: our message, then the reason of the first
 * error on OpenSSL's queue; drains the queue.
 */
void mw_error_openssl(enum mw_err code, const char *fmt, ...) MW_PRINTF(2, 3);
enum mw_err mw_error_code(void);
const char *mw_error_msg(void);
void mw_error_clear(void);

/* Propagate a failure. */
#define MW_GUARD(x)            \
    do {                       \
        if (mw_failed(x))      \
            return MW_FAILURE; \
    } while (0)

/* Fail with a code and a message. */
#define MW_BAIL(code, ...)                 \
    do {                                   \
        mw_error_set((code), __VA_ARGS__); \
        return MW_FAILURE;                 \
    } while (0)

/* Fail unless cond holds. */
#define MW_ENSURE(cond, code, ...)        \
    do {                                  \
        if (!(cond))                      \
            MW_BAIL((code), __VA_ARGS__); \
    } while (0)

/* Fail when an OpenSSL call returns <= 0 (or NULL, cast by the caller). */
#define MW_GUARD_OSSL(x, code, ...)                \
    do {                                           \
        if ((x) <= 0) {                            \
            mw_error_openssl((code), __VA_ARGS__); \
            return MW_FAILURE;                     \
        }                                          \
    } while (0)

#define MW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- slices */

/* Borrowed bytes. Never assumed to be NUL-terminated. */
typedef struct mw_slice {
    const uint8_t *p;
    size_t n;
} mw_slice;

static inline mw_slice mw_slice_make(const void *p, size_t n)
{
    return (mw_slice){(const uint8_t *)p, n};
}
mw_slice mw_slice_cstr(const char *s);
bool mw_slice_eq(mw_slice a, mw_slice b);
bool mw_slice_eq_cstr(mw_slice a, const char *s);
bool mw_slice_has_prefix(mw_slice s, mw_slice prefix);
bool mw_slice_has_suffix(mw_slice s, mw_slice suffix);
/* Bytes [from, from+len) of s; clamps to s. */
mw_slice mw_slice_sub(mw_slice s, size_t from, size_t len);
/* Index of the first byte c at or after from, or s.n. */
size_t mw_slice_find(mw_slice s, uint8_t c, size_t from);
/* Constant-time equality for secrets (lengths are not secret). */
bool mw_slice_eq_ct(mw_slice a, mw_slice b);

/* ---------------------------------------------------------------- cursor */

/*
 * A read cursor over borrowed bytes. Every read checks bounds; a failed read
 * sets an MW_E_INPUT error and leaves the cursor where it was.
 */
struct mw_cursor {
    mw_slice buf;
    size_t off;
};

void mw_cursor_init(struct mw_cursor *c, mw_slice buf);
size_t mw_cursor_left(const struct mw_cursor *c);
mw_slice mw_cursor_rest(const struct mw_cursor *c);
MW_RESULT mw_cursor_u8(struct mw_cursor *c, uint8_t *out);
MW_RESULT mw_cursor_u16be(struct mw_cursor *c, uint16_t *out);
MW_RESULT mw_cursor_u24be(struct mw_cursor *c, uint32_t *out);
MW_RESULT mw_cursor_u32be(struct mw_cursor *c, uint32_t *out);
MW_RESULT mw_cursor_u64be(struct mw_cursor *c, uint64_t *out);
MW_RESULT mw_cursor_bytes(struct mw_cursor *c, size_t n, mw_slice *out);
MW_RESULT mw_cursor_skip(struct mw_cursor *c, size_t n);
/* Read up to (not including) byte delim; consumes the delimiter too. */
MW_RESULT mw_cursor_until(struct mw_cursor *c, uint8_t delim, mw_slice *out);

/* ---------------------------------------------------------------- dynbuf */

/*
 * A growable buffer with a mandatory maximum. The bytes are always followed
 * by a NUL that is not counted in n, so text built here can be passed to C
 * APIs, but the contents may hold NULs of their own.
 */
struct mw_dynbuf {
    uint8_t *p;
    size_t n;
    size_t cap;
    size_t max;
    bool secure; /* wipe on free and on reallocation */
};

void mw_dynbuf_init(struct mw_dynbuf *b, size_t max);
/* Like init, but the contents are wiped whenever memory is released. */
void mw_dynbuf_init_secure(struct mw_dynbuf *b, size_t max);
void mw_dynbuf_free(struct mw_dynbuf *b);
void mw_dynbuf_reset(struct mw_dynbuf *b);
MW_RESULT mw_dynbuf_reserve(struct mw_dynbuf *b, size_t extra);
MW_RESULT mw_dynbuf_add(struct mw_dynbuf *b, const void *p, size_t n);
MW_RESULT mw_dynbuf_add_byte(struct mw_dynbuf *b, uint8_t c);
MW_RESULT mw_dynbuf_add_slice(struct mw_dynbuf *b, mw_slice s);
MW_RESULT mw_dynbuf_add_cstr(struct mw_dynbuf *b, const char *s);
MW_RESULT mw_dynbuf_addf(struct mw_dynbuf *b, const char *fmt, ...) MW_PRINTF(2, 3);
MW_RESULT mw_dynbuf_addv(struct mw_dynbuf *b, const char *fmt, va_list ap) MW_PRINTF(2, 0);
/* Append s as a JSON string literal, quotes included. */
MW_RESULT mw_dynbuf_add_json_str(struct mw_dynbuf *b, mw_slice s);
static inline mw_slice mw_dynbuf_slice(const struct mw_dynbuf *b)
{
    return mw_slice_make(b->p, b->n);
}
/* The contents as a C string ("" when empty); valid until the next change. */
const char *mw_dynbuf_cstr(const struct mw_dynbuf *b);
/* Hand the allocation to the caller (free with free()); b is left empty. */
uint8_t *mw_dynbuf_take(struct mw_dynbuf *b, size_t *n);

/* ---------------------------------------------------------------- logging */

enum mw_log_level { MW_LOG_DEBUG = 0, MW_LOG_INFO, MW_LOG_WARN, MW_LOG_ERROR, MW_LOG_OFF };

void mw_log_set_level(enum mw_log_level level);
enum mw_log_level mw_log_get_level(void);
/* One JSON object per line instead of text. */
void mw_log_set_json(bool json);
/* Where log lines go; stderr by default. */
void mw_log_set_stream(FILE *f);
MW_RESULT mw_log_parse_level(const char *name, enum mw_log_level *out);
void mw_log(enum mw_log_level level, const char *component, const char *fmt, ...) MW_PRINTF(3, 4);

#define mw_log_debug(comp, ...) mw_log(MW_LOG_DEBUG, (comp), __VA_ARGS__)
#define mw_log_info(comp, ...)  mw_log(MW_LOG_INFO, (comp), __VA_ARGS__)
#define mw_log_warn(comp, ...)  mw_log(MW_LOG_WARN, (comp), __VA_ARGS__)
#define mw_log_error(comp, ...) mw_log(MW_LOG_ERROR, (comp), __VA_ARGS__)

/* ---------------------------------------------------------------- clock */

/*
 * Time is seconds since the Unix epoch. Code that judges validity takes a
 * clock so that tests can put "now" wherever they need it.
 */
struct mw_clock {
    int64_t (*now)(const struct mw_clock *self);
    int64_t fixed; /* used by mw_clock_fixed() */
};

/* The system clock. */
const struct mw_clock *mw_clock_system(void);
/* A clock that always says t. */
struct mw_clock mw_clock_fixed(int64_t t);
/* c->now(c), or the system time when c is NULL. */
int64_t mw_clock_now(const struct mw_clock *c);
/* Monotonic nanoseconds, for measuring durations. */
uint64_t mw_monotonic_ns(void);
/* RFC 3339 UTC text ("2026-11-24T12:00:00Z") into buf (>= 21 bytes). */
void mw_time_format(int64_t t, char *buf, size_t len);
/*
 * RFC 3339 §5.6 date-time ("2026-11-24T12:00:00Z", "...T12:00:00.5+01:00")
 * into seconds since the epoch (fractions dropped). what names the field in
 * error messages.
 */
MW_RESULT mw_time_parse_rfc3339(mw_slice s, const char *what, int64_t *out);

/* ---------------------------------------------------------------- secrets */

/*
 * Memory for private keys and tokens: locked (best effort, never swapped),
 * excluded from core dumps, zeroed on allocation and wiped on free.
 */
void *mw_secmem_alloc(size_t n);
void mw_secmem_free(void *p, size_t n);
/* Wipe n bytes in a way the compiler may not elide. */
void mw_wipe(void *p, size_t n);
/*
 * Turn on OpenSSL's secure heap (locked, excluded from dumps) so that the
 * private scalars OpenSSL allocates with BN_secure_new land there. Best
 * effort and idempotent; skipped in sanitizer builds, as mlock is.
 */
void mw_secmem_openssl_heap(void);
/* Make the process non-dumpable and disable core files (daemons call this first). */
MW_RESULT mw_secmem_harden_process(void);

/* ---------------------------------------------------------------- encoding */

enum mw_b64 {
    MW_B64_STD,        /* RFC 4648 §4, padding required */
    MW_B64_STD_NOPAD,  /* RFC 4648 §4, padding optional */
    MW_B64_URL,        /* RFC 4648 §5, no padding (JOSE, RFC 7515 §2) */
    MW_B64_URL_ANYPAD, /* RFC 4648 §5, padding optional */
};

/* Strict: rejects bad characters, bad padding and non-zero trailing bits. */
MW_RESULT mw_b64_decode(mw_slice in, enum mw_b64 alphabet, struct mw_dynbuf *out);
MW_RESULT mw_b64_encode(mw_slice in, enum mw_b64 alphabet, struct mw_dynbuf *out);
/* Lower-case hex. decode accepts either case; odd length is an error. */
MW_RESULT mw_hex_encode(mw_slice in, struct mw_dynbuf *out);
MW_RESULT mw_hex_decode(mw_slice in, struct mw_dynbuf *out);
/* The value of one hex digit (either case), or -1 when c is not one. */
int mw_hex_digit(uint8_t c);

/* ---------------------------------------------------------------- numbers */

/*
 * Decimal digits only (no sign, spaces, "0x" or leading '+'), the whole of s,
 * within [min, max]. The error names the field and the allowed range.
 */
MW_RESULT mw_parse_u64(mw_slice s, uint64_t min, uint64_t max, const char *what, uint64_t *out);
/* As mw_parse_u64, with an optional leading '-'. */
MW_RESULT mw_parse_i64(mw_slice s, int64_t min, int64_t max, const char *what, int64_t *out);
/*
 * A duration: digits and a unit (ms, s, m, h, d), e.g. "90s", "1h"; into
 * seconds, rounded down for ms. Bounded by max_s.
 */
MW_RESULT mw_parse_duration(mw_slice s, uint64_t max_s, const char *what, uint64_t *out_s);

/* ---------------------------------------------------------------- files */

/* Read a whole regular file, failing if it is larger than max bytes. */
MW_RESULT mw_file_read(const char *path, size_t max, struct mw_dynbuf *out);
/* Read all of a stream ("-" for stdin), at most max bytes. */
MW_RESULT mw_file_read_stream(FILE *f, const char *name, size_t max, struct mw_dynbuf *out);
/*
 * Refuse a secret file (key, PIN, token) that group or others can read or
 * write, or that is not a regular file.
 */
MW_RESULT mw_file_check_private(const char *path);
/*
 * Write a file so that readers see the old or the new contents, never a
 * mixture: write a temporary file beside it, fsync, rename, fsync the
 * directory.
 */
MW_RESULT mw_file_write_atomic(const char *path, mw_slice data, unsigned mode);
/*
 * As mw_file_write_atomic but without any fsync: readers still never see a
 * torn file, but after a crash the file may be missing or empty. For writers
 * that make a batch durable at once with mw_fs_sync() before committing.
 */
MW_RESULT mw_file_write_replace(const char *path, mw_slice data, unsigned mode);
/* Flush every dirty file of the filesystem holding path (syncfs(2)). */
MW_RESULT mw_fs_sync(const char *path);

#endif
