#include <stdio.h>
#include <time.h>

#include <meshward/base.h>

static int64_t system_now(const struct mw_clock *self)
{
    (void)self;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

static int64_t fixed_now(const struct mw_clock *self)
{
    return self->fixed;
}

static const struct mw_clock system_clock = {system_now, 0};

const struct mw_clock *mw_clock_system(void)
{
    return &system_clock;
}

struct mw_clock mw_clock_fixed(int64_t t)
{
    return (struct mw_clock){fixed_now, t};
}

int64_t mw_clock_now(const struct mw_clock *c)
{
    if (c == NULL)
        c = &system_clock;
    return c->now(c);
}

uint64_t mw_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void mw_time_format(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL) {
        snprintf(buf, len, "@%lld", (long long)t);
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* A fixed-width field of digits; leading zeros are part of the format here ("09"). */
static mw_result field(mw_slice s, size_t off, size_t len, uint64_t min, uint64_t max,
                       const char *what, const char *part, uint64_t *out)
{
    MW_ENSURE(off + len <= s.n, MW_E_INPUT, "%s %s: missing", what, part);
    uint64_t v = 0;
    for (size_t i = off; i < off + len; i++) {
        MW_ENSURE(s.p[i] >= '0' && s.p[i] <= '9', MW_E_INPUT, "%s %s: not %zu digits", what, part,
                  len);
        v = v * 10 + (uint64_t)(s.p[i] - '0');
    }
    MW_ENSURE(v >= min && v <= max, MW_E_INPUT, "%s %s: %llu is not in [%llu, %llu]", what, part,
              (unsigned long long)v, (unsigned long long)min, (unsigned long long)max);
    *out = v;
    return MW_SUCCESS;
}

/* RFC 3339 §5.6 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm). */
mw_result mw_time_parse_rfc3339(mw_slice s, const char *what, int64_t *out)
{
    char text[40];
    snprintf(text, sizeof(text), "%.*s", (int)(s.n < 39 ? s.n : 39), (const char *)s.p);
    uint64_t y, mo, d, h, mi, se, oh = 0, om = 0;
    MW_ENSURE(s.n >= 20 && s.p[4] == '-' && s.p[7] == '-' && (s.p[10] == 'T' || s.p[10] == 't') &&
                  s.p[13] == ':' && s.p[16] == ':',
              MW_E_INPUT, "%s: \"%s\" is not an RFC 3339 time (2026-01-02T03:04:05Z)", what, text);
    MW_GUARD(field(s, 0, 4, 1970, 9999, what, "year", &y));
    MW_GUARD(field(s, 5, 2, 1, 12, what, "month", &mo));
    MW_GUARD(field(s, 8, 2, 1, 31, what, "day", &d));
    static const uint8_t mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    MW_ENSURE(d <= mdays[mo - 1] && !(mo == 2 && d == 29 && !leap), MW_E_INPUT,
              "%s: %s has no day %llu", what, text, (unsigned long long)d);
    MW_GUARD(field(s, 11, 2, 0, 23, what, "hour", &h));
    MW_GUARD(field(s, 14, 2, 0, 59, what, "minute", &mi));
    MW_GUARD(field(s, 17, 2, 0, 60, what, "second", &se));
    size_t i = 19;
    if (i < s.n && s.p[i] == '.') {
        i++;
        size_t start = i;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9')
            i++;
        MW_ENSURE(i > start, MW_E_INPUT, "%s: empty fraction of a second", what);
    }
    int64_t sign = 0;
    if (i + 1 == s.n && (s.p[i] == 'Z' || s.p[i] == 'z')) {
        sign = 0;
    } else if (i + 6 == s.n && (s.p[i] == '+' || s.p[i] == '-') && s.p[i + 3] == ':') {
        sign = s.p[i] == '+' ? 1 : -1;
        MW_GUARD(field(s, i + 1, 2, 0, 23, what, "offset hours", &oh));
        MW_GUARD(field(s, i + 4, 2, 0, 59, what, "offset minutes", &om));
    } else {
        MW_BAIL(MW_E_INPUT, "%s: \"%s\" needs a zone: Z or +hh:mm", what, text);
    }
    int64_t t = days_from_civil((int64_t)y, (int64_t)mo, (int64_t)d) * 86400 +
                (int64_t)(h * 3600 + mi * 60 + se);
    *out = t - sign * (int64_t)(oh * 3600 + om * 60);
    return MW_SUCCESS;
}
