#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <meshward/base.h>

static enum mw_log_level log_level = MW_LOG_INFO;
static bool log_json;
static FILE *log_stream;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void mw_log_set_level(enum mw_log_level level)
{
    log_level = level;
}
enum mw_log_level mw_log_get_level(void)
{
    return log_level;
}
void mw_log_set_json(bool json)
{
    log_json = json;
}
void mw_log_set_stream(FILE *f)
{
    log_stream = f;
}

mw_result mw_log_parse_level(const char *name, enum mw_log_level *out)
{
    for (size_t i = 0; i < MW_ARRAY_LEN(level_names); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum mw_log_level)i;
            return MW_SUCCESS;
        }
    }
    MW_BAIL(MW_E_INPUT, "unknown log level \"%s\" (want debug, info, warn, error or off)", name);
}

void mw_log(enum mw_log_level level, const char *component, const char *fmt, ...)
{
    if (level < log_level || level >= MW_LOG_OFF)
        return;
    FILE *out = log_stream != NULL ? log_stream : stderr;

    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    if (!log_json) {
        /* Messages may quote input; keep one event on one line. */
        for (char *p = msg; *p != '\0'; p++) {
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        }
        fprintf(out, "%s %-5s %s: %s\n", when, level_names[level], component, msg);
        fflush(out);
        return;
    }

    struct mw_dynbuf line;
    mw_dynbuf_init(&line, 16384);
    bool ok = mw_ok(mw_dynbuf_addf(&line, "{\"time\":\"%s\",\"level\":\"%s\",\"component\":", when,
                                   level_names[level])) &&
              mw_ok(mw_dynbuf_add_json_str(&line, mw_slice_cstr(component))) &&
              mw_ok(mw_dynbuf_add_cstr(&line, ",\"msg\":")) &&
              mw_ok(mw_dynbuf_add_json_str(&line, mw_slice_cstr(msg))) &&
              mw_ok(mw_dynbuf_add_cstr(&line, "}\n"));
    if (ok) {
        fwrite(line.p, 1, line.n, out);
        fflush(out);
    }
    mw_dynbuf_free(&line);
}
