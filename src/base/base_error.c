#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include <meshward/base.h>

/*
 * One error slot per thread, as errno: the failing function records code and
 * message, callers add context with mw_error_prefix() on the way up.
 */
#define MW_ERRMSG_MAX 1024

static __thread enum mw_err err_code;
static __thread char err_msg[MW_ERRMSG_MAX];

const char *mw_err_name(enum mw_err code)
{
    switch (code) {
    case MW_E_NONE:
        return "none";
    case MW_E_INPUT:
        return "input";
    case MW_E_LIMIT:
        return "limit";
    case MW_E_VERIFY:
        return "verify";
    case MW_E_EXPIRED:
        return "expired";
    case MW_E_NOTFOUND:
        return "notfound";
    case MW_E_UNSUPPORTED:
        return "unsupported";
    case MW_E_IO:
        return "io";
    case MW_E_PERM:
        return "permission";
    case MW_E_CRYPTO:
        return "crypto";
    case MW_E_NOMEM:
        return "nomem";
    case MW_E_STATE:
        return "state";
    case MW_E_INTERNAL:
        return "internal";
    }
    return "unknown";
}

void mw_error_setv(enum mw_err code, const char *fmt, va_list ap)
{
    err_code = code;
    int n = vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
    if (n < 0)
        snprintf(err_msg, sizeof(err_msg), "%s error", mw_err_name(code));
}

void mw_error_set(enum mw_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mw_error_setv(code, fmt, ap);
    va_end(ap);
}

void mw_error_prefix(const char *fmt, ...)
{
    char prefix[MW_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    /* Shift the message right and put the prefix in front; the tail is cut if it must be. */
    size_t plen = strlen(prefix);
    size_t mlen = strlen(err_msg);
    if (plen >= sizeof(err_msg) - 1)
        plen = sizeof(err_msg) - 1;
    if (mlen > sizeof(err_msg) - 1 - plen)
        mlen = sizeof(err_msg) - 1 - plen;
    memmove(err_msg + plen, err_msg, mlen);
    memcpy(err_msg, prefix, plen);
    err_msg[plen + mlen] = '\0';
}

void mw_error_openssl(enum mw_err code, const char *fmt, ...)
{
    char ours[MW_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ours, sizeof(ours), fmt, ap);
    va_end(ap);
    if (n < 0)
        ours[0] = '\0';

    /* The earliest error on the queue is the root cause; later ones are context. */
    unsigned long e = ERR_get_error();
    char reason[256] = "";
    if (e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    err_code = code;
    if (reason[0] != '\0')
        mw_error_set(code, "%.700s (%.250s)", ours, reason);
    else
        mw_error_set(code, "%s", ours);
}

enum mw_err mw_error_code(void)
{
    return err_code;
}

const char *mw_error_msg(void)
{
    return err_msg[0] != '\0' ? err_msg : "no error";
}

void mw_error_clear(void)
{
    err_code = MW_E_NONE;
    err_msg[0] = '\0';
}
