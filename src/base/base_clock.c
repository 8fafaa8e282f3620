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
