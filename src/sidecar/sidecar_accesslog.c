/*
 * The sidecar's JSON access log: one object per line with the keys of Istio's
 * JSON access-log format (istio/istio pilot/pkg/model/telemetry_logging.go,
 * EnvoyJSONLogFormatIstio) plus meshward's source_principal,
 * destination_principal, decision and policy.
 *
 * Envoy's JSON formatter writes an unavailable value as null, numbers
 * (response_code, bytes_*, duration) as JSON numbers, and response_flags as
 * "-" when there are none; we do the same so that tools written for Istio's
 * logs read ours. Values that came from the peer (path, user agent, authority,
 * x-forwarded-for, SNI) are made valid UTF-8 and JSON-escaped, so a hostile
 * request cannot break a line or inject a field.
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "sidecar/sidecar_metrics.h"

/* Per-field bound; the HTTP parser already bounds heads, this bounds the rest. */
#define FIELD_MAX (16 * 1024)
#define LINE_MAX  (256 * 1024)

static mw_result add_key(struct mw_dynbuf *b, const char *key, bool first)
{
    if (!first)
        MW_GUARD(mw_dynbuf_add_byte(b, ','));
    return mw_dynbuf_addf(b, "\"%s\":", key);
}

static mw_result add_str(struct mw_dynbuf *b, const char *key, const char *v)
{
    MW_GUARD(add_key(b, key, false));
    if (v == NULL)
        return mw_dynbuf_add_cstr(b, "null");
    struct mw_dynbuf clean;
    mw_dynbuf_init(&clean, FIELD_MAX);
    mw_result r = mw_telemetry_add_utf8(&clean, mw_slice_cstr(v), FIELD_MAX);
    if (mw_ok(r))
        r = mw_dynbuf_add_json_str(b, mw_dynbuf_slice(&clean));
    mw_dynbuf_free(&clean);
    return r;
}

static mw_result add_u64(struct mw_dynbuf *b, const char *key, uint64_t v)
{
    MW_GUARD(add_key(b, key, false));
    return mw_dynbuf_addf(b, "%" PRIu64, v);
}

/* RFC 3339 UTC with milliseconds, as Envoy's %START_TIME%: 2026-01-02T03:04:05.678Z. */
static mw_result add_start_time(struct mw_dynbuf *b, int64_t ms)
{
    int64_t secs = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    MW_ENSURE(gmtime_r(&t, &tm) != NULL, MW_E_INPUT, "access log start time %" PRId64 " ms", ms);
    MW_ENSURE(tm.tm_year + 1900 >= 0 && tm.tm_year + 1900 <= 9999, MW_E_INPUT,
              "access log start time %" PRId64 " ms is outside years 0000-9999", ms);
    return mw_dynbuf_addf(b, "\"start_time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
                          tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                          tm.tm_sec, (int)frac);
}

static mw_result format_fields(const struct mw_access_entry *e, struct mw_dynbuf *b)
{
    MW_GUARD(mw_dynbuf_add_byte(b, '{'));
    MW_GUARD(add_start_time(b, e->start_time_ms));
    MW_GUARD(add_str(b, "method", e->method));
    MW_GUARD(add_str(b, "path", e->path));
    MW_GUARD(add_str(b, "protocol", e->protocol));
    MW_GUARD(add_u64(b, "response_code", e->response_code > 0 ? (uint64_t)e->response_code : 0));
    MW_GUARD(add_str(b, "response_flags",
                     e->response_flags != NULL && e->response_flags[0] != '\0' ? e->response_flags
                                                                               : "-"));
    MW_GUARD(add_str(b, "response_code_details", e->response_code_details));
    MW_GUARD(add_u64(b, "bytes_received", e->bytes_received));
    MW_GUARD(add_u64(b, "bytes_sent", e->bytes_sent));
    MW_GUARD(add_u64(b, "duration", e->duration_ms));
    MW_GUARD(add_str(b, "x_forwarded_for", e->x_forwarded_for));
    MW_GUARD(add_str(b, "user_agent", e->user_agent));
    MW_GUARD(add_str(b, "request_id", e->request_id));
    MW_GUARD(add_str(b, "authority", e->authority));
    MW_GUARD(add_str(b, "upstream_host", e->upstream_host));
    MW_GUARD(add_str(b, "upstream_cluster", e->upstream_cluster));
    MW_GUARD(add_str(b, "upstream_local_address", e->upstream_local_address));
    MW_GUARD(add_str(b, "downstream_local_address", e->downstream_local_address));
    MW_GUARD(add_str(b, "downstream_remote_address", e->downstream_remote_address));
    MW_GUARD(add_str(b, "requested_server_name", e->requested_server_name));
    MW_GUARD(add_str(b, "source_principal", e->source_principal));
    MW_GUARD(add_str(b, "destination_principal", e->destination_principal));
    MW_GUARD(add_str(b, "decision", e->decision));
    MW_GUARD(add_str(b, "policy", e->policy != NULL && e->policy[0] != '\0' ? e->policy : NULL));
    return mw_dynbuf_add_cstr(b, "}\n");
}

mw_result mw_accesslog_format(const struct mw_access_entry *e, struct mw_dynbuf *out)
{
    MW_ENSURE(e != NULL && out != NULL, MW_E_INTERNAL, "access log: NULL entry or buffer");
    size_t start = out->n;
    mw_result r = format_fields(e, out);
    if (mw_failed(r)) {
        /* Never leave half a line behind: the next entry would join it. */
        out->n = start;
        if (out->p != NULL)
            out->p[start] = '\0';
    }
    return r;
}

mw_result mw_accesslog_write(FILE *f, const struct mw_access_entry *e)
{
    MW_ENSURE(f != NULL, MW_E_INTERNAL, "access log: NULL stream");
    struct mw_dynbuf line;
    mw_dynbuf_init(&line, LINE_MAX);
    mw_result r = mw_accesslog_format(e, &line);
    /* One fwrite per line: with a line- or fully-buffered stream, lines never interleave. */
    if (mw_ok(r) && fwrite(line.p, 1, line.n, f) != line.n) {
        mw_error_set(MW_E_IO, "access log: write failed");
        r = MW_FAILURE;
    }
    mw_dynbuf_free(&line);
    return r;
}
