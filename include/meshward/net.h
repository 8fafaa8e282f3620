/*
 * meshward net: a strict HTTP/1.1 parser (RFC 9110, RFC 9112), chunked and
 * fixed-length body decoding, TLS contexts over sockets (OpenSSL 3 inside,
 * no OpenSSL types here), a small non-blocking HTTP/1.1 server on libev and a
 * blocking HTTP(S) client.
 *
 * The parser is incremental and zero-copy: call it again with the whole
 * buffer received so far; every slice it returns points into that buffer.
 * It is stricter than RFC 9112 requires a recipient to be wherever leniency
 * lets two parsers disagree on where a message ends (request smuggling):
 * bare LF and bare CR, obs-fold, whitespace before the colon, conflicting
 * Content-Length, Content-Length with Transfer-Encoding are all rejected.
 * docs/net.md lists every rule and why.
 */
#ifndef MESHWARD_NET_H
#define MESHWARD_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <meshward/base.h>

/* ---------------------------------------------------------------- parser */

/* Parser returns: > 0 bytes consumed; these otherwise. */
#define MW_HTTP_INCOMPLETE 0
#define MW_HTTP_ERROR      (-1)

/* The most header fields a head may hold, whatever the limits say. */
#define MW_HTTP_MAX_HEADERS 128

/* Why a message was refused, and what to answer a client with. */
struct mw_http_error {
    int status;         /* 400, 413, 431, 501 or 505 */
    const char *reason; /* static text naming the fault, e.g. "space before colon" */
    size_t offset;      /* byte offset of the fault in the input (best effort) */
};

struct mw_http_limits {
    size_t max_head;      /* bytes of the whole head, CRLFs included; 431 beyond */
    size_t max_line;      /* bytes of one line without its CRLF; 431 beyond */
    size_t max_headers;   /* header fields (<= MW_HTTP_MAX_HEADERS); 431 beyond */
    size_t max_chunk_ext; /* bytes of one chunk's extensions; 400 beyond */
    size_t max_trailer;   /* bytes of the trailer section; 400 beyond */
};

/* 16 KiB head, 8 KiB line, 100 fields, 256 B chunk extensions, 4 KiB trailers. */
extern const struct mw_http_limits mw_http_limits_default;

struct mw_http_header {
    mw_slice name;  /* a token, as received (compare case-insensitively) */
    mw_slice value; /* without leading and trailing whitespace */
};

/* RFC 9112 §3.2 */
enum mw_http_target_form {
    MW_HTTP_TARGET_ORIGIN,    /* "/path?query" */
    MW_HTTP_TARGET_ABSOLUTE,  /* "http://host/path" (to proxies) */
    MW_HTTP_TARGET_AUTHORITY, /* "host:port", CONNECT only */
    MW_HTTP_TARGET_ASTERISK,  /* "*", OPTIONS only */
};

/* How the body that follows a head ends (RFC 9112 §6.3). */
enum mw_http_framing {
    MW_HTTP_BODY_NONE,    /* no body */
    MW_HTTP_BODY_LENGTH,  /* content_length bytes */
    MW_HTTP_BODY_CHUNKED, /* chunked transfer coding, last */
    MW_HTTP_BODY_CLOSE,   /* responses only: until the connection closes */
};

/* A parsed request or response head. All slices borrow the input buffer. */
struct mw_http_head {
    /* requests */
    mw_slice method;
    mw_slice target;
    enum mw_http_target_form form;
    mw_slice host; /* the Host field value (empty for HTTP/1.0 without Host) */
    /* responses */
    int status;
    mw_slice reason;
    /* both */
    int version_minor; /* HTTP/1.<version_minor>: 0 or 1 */
    enum mw_http_framing framing;
    uint64_t content_length; /* when framing is MW_HTTP_BODY_LENGTH */
    bool keep_alive;         /* per version and Connection (RFC 9112 §9.3) */
    bool expect_continue;    /* requests: "Expect: 100-continue" */
    bool upgrade;            /* an Upgrade field is present */
    size_t nheaders;
    struct mw_http_header headers[MW_HTTP_MAX_HEADERS];
};

/*
 * Parse a request head at the start of buf. Returns the head's length
 * (> 0), MW_HTTP_INCOMPLETE when buf holds a valid but unfinished prefix, or
 * MW_HTTP_ERROR with *err set. A prefix of a message gives either
 * MW_HTTP_INCOMPLETE or the same answer as the whole message. Empty lines
 * before the request line are skipped (RFC 9112 §2.2) and counted in the
 * length. lim may be NULL for the defaults.
 */
ssize_t mw_http_parse_request(mw_slice buf, const struct mw_http_limits *lim,
                              struct mw_http_head *head, struct mw_http_error *err);

/*
 * Parse a response head. request_method is the method of the request it
 * answers (framing differs for HEAD and CONNECT); an empty slice means GET.
 */
ssize_t mw_http_parse_response(mw_slice buf, mw_slice request_method,
                               const struct mw_http_limits *lim, struct mw_http_head *head,
                               struct mw_http_error *err);

/* The first field named name (case-insensitive), or NULL. */
const struct mw_http_header *mw_http_head_find(const struct mw_http_head *head, const char *name);

/* The standard reason phrase of a status code ("Not Found"), or "Unknown". */
const char *mw_http_status_text(int status);

/* True when s is a token (RFC 9110 §5.6.2): a valid method or field name. */
bool mw_http_is_token(mw_slice s);
/* True when s may be sent as a field value: no CTL but HTAB, no edge whitespace. */
bool mw_http_is_field_value(mw_slice s);

/* ---------------------------------------------------------------- bodies */

/*
 * An incremental body decoder for one message: fixed length, chunked
 * (RFC 9112 §7.1: hex sizes checked for overflow, extensions and trailers
 * bounded and discarded) or until close. Zero-copy: data slices point into
 * the input.
 */
struct mw_http_body {
    enum mw_http_framing framing;
    int state;
    uint64_t remaining; /* bytes left in the current chunk or the fixed body */
    uint64_t total;     /* decoded body bytes so far */
    size_t count;       /* bytes in the current size line, or of the trailer section */
    bool in_value;      /* in a trailer line, past the colon */
    size_t max_chunk_ext;
    size_t max_trailer;
    bool done;
};

/* Start decoding the body that head announces. lim may be NULL. */
void mw_http_body_init(struct mw_http_body *b, const struct mw_http_head *head,
                       const struct mw_http_limits *lim);
/* Start decoding a chunked body (without a head). */
void mw_http_body_init_chunked(struct mw_http_body *b, const struct mw_http_limits *lim);

/*
 * Consume bytes from in: framing bytes and at most one piece of body data,
 * returned in *data (empty when none). Returns the bytes consumed (0 only
 * when in is empty or the body is done) or MW_HTTP_ERROR with *err set.
 * Call again with the rest until mw_http_body_done(). For
 * MW_HTTP_BODY_CLOSE, all input is data; call mw_http_body_eof() at close.
 */
ssize_t mw_http_body_decode(struct mw_http_body *b, mw_slice in, mw_slice *data,
                            struct mw_http_error *err);
static inline bool mw_http_body_done(const struct mw_http_body *b)
{
    return b->done;
}
/* The peer closed: fine for MW_HTTP_BODY_CLOSE, a truncation otherwise. */
MW_RESULT mw_http_body_eof(struct mw_http_body *b);

/* ---------------------------------------------------------------- TLS */

/*
 * A peer check: chain is the peer's certificates as concatenated DER, leaf
 * first (what mw_x509svid_parse_der() takes). Return true to accept. When a
 * callback is set it replaces OpenSSL's chain verification entirely: this is
 * where the spiffe module validates SPIFFE IDs against its bundles.
 */
typedef bool (*mw_tls_peer_check_fn)(mw_slice chain, void *arg);

enum mw_tls_client_auth {
    MW_TLS_CLIENT_NONE,    /* do not ask for a client certificate */
    MW_TLS_CLIENT_REQUEST, /* ask; accept clients without one */
    MW_TLS_CLIENT_REQUIRE, /* ask; refuse clients without one (mTLS) */
};

/*
 * What a TLS context is made of. Zero-initialise and fill what applies. The
 * certificate and key come from files or from PEM in memory (not both);
 * key files must be private (mode 0600 or stricter).
 */
struct mw_tls_config {
    const char *cert_file; /* PEM: leaf first, then intermediates */
    const char *key_file;  /* PEM private key */
    mw_slice cert_pem;
    mw_slice key_pem;
    /*
     * Server: CAs that client certificates must chain to (when no
     * peer_check). Client: the pinned CA bundle; the system store is never
     * used. File or PEM in memory.
     */
    const char *ca_file;
    mw_slice ca_pem;
    enum mw_tls_client_auth client_auth; /* server only */
    mw_tls_peer_check_fn peer_check;     /* optional, see above */
    void *peer_check_arg;
    bool tls13_only; /* refuse TLS 1.2 too */
};

struct mw_tls_ctx;

/*
 * TLS 1.3, and TLS 1.2 with ECDHE and AEAD ciphers only (unless
 * tls13_only); older versions, renegotiation and compression are off.
 * A server needs a certificate and key.
 */
MW_RESULT mw_tls_server_new(const struct mw_tls_config *cfg, struct mw_tls_ctx **out);
/*
 * A client context: the pinned CA bundle is required unless peer_check is
 * set; the server's name is checked against the host given at connection
 * time unless peer_check is set.
 */
MW_RESULT mw_tls_client_new(const struct mw_tls_config *cfg, struct mw_tls_ctx **out);
/* Contexts are reference-counted: a server keeps one per connection. */
void mw_tls_ctx_ref(struct mw_tls_ctx *ctx);
void mw_tls_ctx_free(struct mw_tls_ctx *ctx);

/* ---------------------------------------------------------------- server */

/* A request as a handler sees it; valid for the duration of the call. */
struct mw_http_request {
    const struct mw_http_head *head;
    mw_slice path;         /* target up to '?' (origin-form) */
    mw_slice query;        /* after '?', without it; empty when none */
    mw_slice body;         /* decoded (de-chunked), at most max_body bytes */
    mw_slice peer_chain;   /* mTLS: client chain as concatenated DER, leaf first */
    const char *peer_addr; /* "127.0.0.1:54321" */
};

/* A response a handler fills in. Status 200 and no body by default. */
struct mw_http_response;

void mw_http_response_status(struct mw_http_response *r, int status);
/*
 * Add a header field. Content-Length, Transfer-Encoding and Connection are
 * set by the server and refused here. Fails on bad names or values.
 */
MW_RESULT mw_http_response_header(struct mw_http_response *r, const char *name, const char *value);
/* Append to the body (bounded by the server's max_response). */
MW_RESULT mw_http_response_body(struct mw_http_response *r, mw_slice data);
/* Close the connection after this response. */
void mw_http_response_close(struct mw_http_response *r);
/*
 * Answer later (long-polls, work on other connections): call in the handler,
 * keep the returned handle, fill it in with the functions above and call
 * mw_http_response_finish() from the loop's thread. Until then the
 * connection answers nothing else (pipelined requests wait, in order) and no
 * request timeout runs. The handle stays valid until finished, even when
 * the client goes away; the request's slices do not: copy what you need.
 */
struct mw_http_response *mw_http_response_defer(struct mw_http_response *r);
/* False once the client's connection is gone (finishing then only frees). */
bool mw_http_response_alive(const struct mw_http_response *r);
/* Send a deferred response and free the handle. */
void mw_http_response_finish(struct mw_http_response *r);

typedef void (*mw_http_handler_fn)(const struct mw_http_request *req, struct mw_http_response *resp,
                                   void *arg);

struct mw_http_server_config {
    const char *address;          /* numeric IPv4 or IPv6; "127.0.0.1" when NULL */
    uint16_t port;                /* 0: pick one (see mw_http_server_port) */
    struct mw_tls_ctx *tls;       /* NULL: plain HTTP; referenced, not owned */
    struct mw_http_limits limits; /* zero: mw_http_limits_default */
    size_t max_body;              /* 413 beyond; default 1 MiB */
    size_t max_response;          /* bytes of one response body; default 16 MiB */
    size_t max_connections;       /* default 1024; further connections are closed */
    double head_timeout;          /* seconds from a request's first byte to its end; 408 */
    double idle_timeout;          /* seconds without a request on a kept-alive connection */
    mw_http_handler_fn fallback;  /* requests no route matches; 404 when NULL */
    void *fallback_arg;
};

struct mw_http_server;
struct ev_loop;

/* Bind and listen; serving starts when the loop runs. */
MW_RESULT mw_http_server_new(struct ev_loop *loop, const struct mw_http_server_config *cfg,
                             struct mw_http_server **out);
/*
 * Route requests with this method and exactly this path (query ignored).
 * A path routed for other methods only gets 405.
 */
MW_RESULT mw_http_server_route(struct mw_http_server *s, const char *method, const char *path,
                               mw_http_handler_fn fn, void *arg);
/* The bound port (useful with port 0). */
uint16_t mw_http_server_port(const struct mw_http_server *s);
size_t mw_http_server_connections(const struct mw_http_server *s);
/*
 * Replace the TLS context for new connections (certificate rotation);
 * open connections keep theirs.
 */
void mw_http_server_set_tls(struct mw_http_server *s, struct mw_tls_ctx *tls);
/*
 * Graceful stop: stop accepting, close idle connections, let requests in
 * progress finish their response. The loop ends once all are gone.
 */
void mw_http_server_stop(struct mw_http_server *s);
/* Close everything at once and free. */
void mw_http_server_free(struct mw_http_server *s);

/* ---------------------------------------------------------------- client */

struct mw_http_client_request {
    const char *host; /* name or address to connect to */
    uint16_t port;
    const char *method;                   /* "GET" when NULL */
    const char *path;                     /* origin-form target; "/" when NULL */
    const struct mw_http_header *headers; /* extra fields; Host and framing are ours */
    size_t nheaders;
    mw_slice body;           /* sent with Content-Length when non-empty or not GET/HEAD */
    struct mw_tls_ctx *tls;  /* client context; NULL: plain HTTP */
    const char *server_name; /* SNI and name check; host when NULL */
    int timeout_ms;          /* whole exchange; default 10000 */
    size_t max_response;     /* head + body bytes; default 16 MiB */
};

struct mw_http_client_response {
    int status;
    struct mw_dynbuf raw;     /* the response head as received */
    struct mw_http_head head; /* slices into raw */
    struct mw_dynbuf body;    /* decoded body */
};

/*
 * One request on a fresh connection, blocking, bounded by timeout_ms and
 * max_response. On success resp must be freed with
 * mw_http_client_response_free().
 */
MW_RESULT mw_http_client_request(const struct mw_http_client_request *req,
                                 struct mw_http_client_response *resp);
/*
 * The same from a URL "http[s]://host[:port]/path"; https needs tls.
 * base may be NULL; its other fields (headers, body, timeout ...) are used.
 */
MW_RESULT mw_http_client_request_url(const char *url, const struct mw_http_client_request *base,
                                     struct mw_http_client_response *resp);
void mw_http_client_response_free(struct mw_http_client_response *resp);

#endif
