/*
 * Internal: the sidecar's telemetry. A registry of counters, gauges and
 * histograms keyed by Istio's standard label set, rendered as Prometheus text
 * exposition with Istio's metric names (istio_requests_total,
 * istio_request_duration_milliseconds, istio_tcp_*), plus meshward's own.
 * An access log writes one JSON line per request or connection with Envoy's /
 * Istio's field names plus decision and policy.
 *
 * Single-threaded: the sidecar's event loop owns it.
 */
#ifndef MESHWARD_SIDECAR_METRICS_H
#define MESHWARD_SIDECAR_METRICS_H

#include <stdio.h>

#include <meshward/base.h>

struct mw_metrics;

/* Istio's standard labels. NULL or "" renders as "unknown" (Istio's convention). */
struct mw_istio_labels {
    const char *reporter; /* "destination" (inbound) or "source" (outbound) */
    const char *source_workload, *source_workload_namespace, *source_principal;
    const char *source_app, *source_version, *source_cluster;
    const char *destination_workload, *destination_workload_namespace, *destination_principal;
    const char *destination_app, *destination_version, *destination_service;
    const char *destination_service_name, *destination_service_namespace, *destination_cluster;
    const char *request_protocol;           /* "http" or "tcp" */
    int response_code;                      /* HTTP status; 0 for TCP */
    const char *response_flags;             /* Envoy response flags, "-" when none */
    const char *connection_security_policy; /* "mutual_tls", "none" or "unknown" */
    /* Added after the first cut (render as "unknown" when NULL, like the rest). */
    const char *source_canonical_service, *source_canonical_revision;
    const char *destination_canonical_service, *destination_canonical_revision;
};

/*
 * Label values are stored as given up to MW_METRICS_MAX_LABEL_LEN bytes (cut on
 * a UTF-8 boundary), with invalid UTF-8 replaced by U+FFFD. response_flags NULL
 * or "" renders as "-" (Envoy's "no flags"), every other NULL or "" as "unknown".
 * At most max_series labelled series exist at once (all families together); a
 * new series beyond that is not recorded and counts in
 * meshward_metrics_series_dropped_total instead, so hostile label values (SNI,
 * hosts, principals) cannot grow memory without bound.
 */
#define MW_METRICS_DEFAULT_MAX_SERIES 4096
#define MW_METRICS_MAX_LABEL_LEN      256
#define MW_METRICS_MAX_GAUGES         64

MW_RESULT mw_metrics_new(struct mw_metrics **out);
/* As mw_metrics_new with a series cap other than MW_METRICS_DEFAULT_MAX_SERIES (>= 1). */
MW_RESULT mw_metrics_new_limited(size_t max_series, struct mw_metrics **out);
void mw_metrics_free(struct mw_metrics *m);
/* Series refused because the cap was reached (meshward_metrics_series_dropped_total). */
uint64_t mw_metrics_series_dropped(const struct mw_metrics *m);

/* One HTTP request: istio_requests_total, istio_request_duration_milliseconds,
 * istio_request_bytes, istio_response_bytes. */
MW_RESULT mw_metrics_request(struct mw_metrics *m, const struct mw_istio_labels *l,
                             double duration_ms, uint64_t request_bytes, uint64_t response_bytes);
/*
 * The same for a caller whose labels stay the same from request to request
 * (one connection, one configuration) except the response code and flags:
 * ref remembers the series of the last call, so the key is built only when
 * the code or the flags change. The caller clears ref (zeroes it) whenever
 * any other label may have changed; series are freed only with the registry.
 */
struct mw_metrics_series_ref {
    void *series;
    int code;
    const char *flags; /* compared by pointer: flags are constant strings */
};
MW_RESULT mw_metrics_request_cached(struct mw_metrics *m, const struct mw_istio_labels *l,
                                    struct mw_metrics_series_ref *ref, double duration_ms,
                                    uint64_t request_bytes, uint64_t response_bytes);
/* TCP: istio_tcp_connections_opened_total / _closed_total, istio_tcp_sent_bytes_total /
 * istio_tcp_received_bytes_total (add the bytes moved since the last call). */
MW_RESULT mw_metrics_tcp_opened(struct mw_metrics *m, const struct mw_istio_labels *l);
MW_RESULT mw_metrics_tcp_closed(struct mw_metrics *m, const struct mw_istio_labels *l);
MW_RESULT mw_metrics_tcp_bytes(struct mw_metrics *m, const struct mw_istio_labels *l, uint64_t sent,
                               uint64_t received);
/* meshward_authz_denied_total{policy=...,direction=...}. */
MW_RESULT mw_metrics_authz_denied(struct mw_metrics *m, const char *policy, const char *direction);
/* meshward_egress_denied_total{host=...,port=...}. */
MW_RESULT mw_metrics_egress_denied(struct mw_metrics *m, const char *host, unsigned port);
/* meshward_tls_handshakes_total{direction="inbound"|"outbound",resumed="true"|"false"}. */
MW_RESULT mw_metrics_tls_handshake(struct mw_metrics *m, const char *direction, bool resumed);
/*
 * meshward_tls_handshake_failures_total{direction=...,reason=...}. The caller
 * passes one of a fixed set of reasons (docs/sidecar.md), never peer data.
 */
MW_RESULT mw_metrics_tls_handshake_failure(struct mw_metrics *m, const char *direction,
                                           const char *reason);
/*
 * meshward_outbound_pool_connections_total{service=...,event="opened"|"reused"|"retried"}:
 * service is a registry name, event one of a fixed set.
 */
MW_RESULT mw_metrics_outbound_pool(struct mw_metrics *m, const char *service, const char *event);
/* A gauge without labels, e.g. meshward_svid_expiry_timestamp_seconds,
 * meshward_config_age_seconds, meshward_ca_reachable. */
MW_RESULT mw_metrics_gauge(struct mw_metrics *m, const char *name, const char *help, double v);

/*
 * Append at most max bytes of s (cut on a character boundary) with every
 * invalid UTF-8 sequence replaced by U+FFFD. Shared by the metrics and the
 * access log: both formats must be valid UTF-8 whatever a peer sent.
 */
MW_RESULT mw_telemetry_add_utf8(struct mw_dynbuf *b, mw_slice s, size_t max);

/* Prometheus text exposition format 0.0.4. */
MW_RESULT mw_metrics_render(const struct mw_metrics *m, struct mw_dynbuf *out);

/* One access-log entry (Istio's JSON access-log field names; see docs). */
struct mw_access_entry {
    int64_t start_time_ms;                /* epoch milliseconds */
    const char *method, *path, *protocol; /* protocol: "HTTP/1.1" or "TCP" */
    int response_code;                    /* 0 for TCP */
    const char *response_flags;           /* "-" when none */
    uint64_t bytes_received, bytes_sent;
    uint64_t duration_ms;
    const char *upstream_host;             /* "127.0.0.1:8080" */
    const char *downstream_remote_address; /* "10.0.0.2:51234" */
    const char *downstream_local_address;
    const char *authority, *user_agent, *x_forwarded_for, *request_id;
    const char *requested_server_name; /* SNI */
    const char *upstream_cluster;      /* "inbound|8080||" style */
    const char *source_principal, *destination_principal;
    const char *decision; /* "allow" or "deny" */
    const char *policy;   /* deciding policy "ns/name" or "" */
    /* Added after the first cut. */
    const char *upstream_local_address; /* "127.0.0.1:40312" */
    const char *response_code_details;  /* "via_upstream", "rbac_access_denied", ... */
};

/* Write one JSON line (terminated by \n) to f. */
MW_RESULT mw_accesslog_write(FILE *f, const struct mw_access_entry *e);
/*
 * Append the same JSON line (with its \n) to out, for callers that batch or
 * write asynchronously. NULL strings render as null, except response_flags
 * ("-"); policy "" renders as null. Invalid UTF-8 is replaced by U+FFFD so
 * that every line is valid JSON whatever the peer sent.
 */
MW_RESULT mw_accesslog_format(const struct mw_access_entry *e, struct mw_dynbuf *out);

#endif
