/*
 * Outbound TLS 1.3 session resumption: a small client-side cache of session
 * tickets, keyed by (upstream endpoint, SNI, expected server SPIFFE ID).
 *
 * A resumed handshake (RFC 8446 §2.2) sends no certificates: the server's
 * identity is the one of the handshake that issued the ticket. So a session
 * is only ever offered to the endpoint, name and expected identity it was
 * made with, and after a resumed handshake the session's stored peer chain
 * is verified again against the bundles in force now and compared with the
 * expected SPIFFE ID (sc_identity_handshake_peer, check_server), exactly as
 * after a full handshake.
 *
 * The cache hangs off the client TLS context (SSL_CTX ex_data) and dies with
 * it. Every change of our SVID or of any bundle builds a new client context
 * (reload, CA renewal, bundle refresh), so such a change starts from an
 * empty cache: no session made with an old client certificate or under old
 * trust is offered again. Open connections keep their old context (and its
 * cache) until they end; tickets they receive land in that cache, which
 * nothing reads any more.
 */
#include <openssl/err.h>
#include <pthread.h>
#include <string.h>

#include "net/net_internal.h"
#include "sidecar/sidecar_internal.h"

struct sess_entry {
    char *key;
    SSL_SESSION *s;
    int64_t expires; /* epoch seconds: the ticket's lifetime */
    uint64_t seq;    /* insertion order: larger is newer */
};

struct sc_sess_cache {
    struct sess_entry *e;
    size_t n, max, per_key;
    uint64_t seq;
};

struct sc_sess_cache *sc_sess_cache_new(size_t max, size_t per_key)
{
    if (max == 0 || per_key == 0)
        return NULL;
    struct sc_sess_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->e = calloc(max, sizeof(*c->e));
    if (c->e == NULL) {
        free(c);
        return NULL;
    }
    c->max = max;
    c->per_key = per_key;
    return c;
}

static void entry_drop(struct sc_sess_cache *c, size_t i)
{
    free(c->e[i].key);
    SSL_SESSION_free(c->e[i].s);
    c->e[i] = c->e[--c->n];
    memset(&c->e[c->n], 0, sizeof(c->e[c->n]));
}

void sc_sess_cache_flush(struct sc_sess_cache *c)
{
    if (c == NULL)
        return;
    while (c->n > 0)
        entry_drop(c, c->n - 1);
}

void sc_sess_cache_free(struct sc_sess_cache *c)
{
    if (c == NULL)
        return;
    sc_sess_cache_flush(c);
    free(c->e);
    free(c);
}

size_t sc_sess_cache_count(const struct sc_sess_cache *c)
{
    return c != NULL ? c->n : 0;
}

/*
 * Usable at now: a resumable TLS 1.3 session inside its ticket lifetime
 * (RFC 8446 §4.6.1: never used past ticket_lifetime, which OpenSSL caps at
 * 7 days) whose server certificate has not expired. An expired server
 * certificate would fail the re-verification after resumption and so fail
 * the connection; dropping the session here gives a full handshake instead.
 */
static bool usable(const struct sess_entry *e, int64_t now)
{
    if (now >= e->expires || !SSL_SESSION_is_resumable(e->s))
        return false;
    X509 *peer = SSL_SESSION_get0_peer(e->s);
    return peer != NULL && ASN1_TIME_cmp_time_t(X509_get0_notAfter(peer), (time_t)now) > 0;
}

static void drop_expired(struct sc_sess_cache *c, int64_t now)
{
    for (size_t i = c->n; i-- > 0;)
        if (!usable(&c->e[i], now))
            entry_drop(c, i);
}

/* The oldest entry (for key, or any when key is NULL); c->n when none. */
static size_t oldest(const struct sc_sess_cache *c, const char *key, size_t *count)
{
    size_t at = c->n;
    *count = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (key != NULL && strcmp(c->e[i].key, key) != 0)
            continue;
        (*count)++;
        if (at == c->n || c->e[i].seq < c->e[at].seq)
            at = i;
    }
    return at;
}

bool sc_sess_cache_put(struct sc_sess_cache *c, const char *key, SSL_SESSION *s, int64_t now)
{
    if (c == NULL || SSL_SESSION_get_protocol_version(s) != TLS1_3_VERSION)
        return false;
    struct sess_entry e = {
        .s = s,
        .expires = (int64_t)SSL_SESSION_get_time(s) + (int64_t)SSL_SESSION_get_timeout(s),
    };
    if (!usable(&e, now))
        return false;
    drop_expired(c, now);
    size_t count;
    size_t old = oldest(c, key, &count);
    if (count >= c->per_key)
        entry_drop(c, old);
    if (c->n >= c->max)
        entry_drop(c, oldest(c, NULL, &count));
    e.key = strdup(key);
    if (e.key == NULL)
        return false;
    e.seq = ++c->seq;
    c->e[c->n++] = e;
    return true;
}

SSL_SESSION *sc_sess_cache_take(struct sc_sess_cache *c, const char *key, int64_t now)
{
    if (c == NULL)
        return NULL;
    drop_expired(c, now);
    size_t at = c->n;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].key, key) == 0 && (at == c->n || c->e[i].seq > c->e[at].seq))
            at = i;
    if (at == c->n)
        return NULL;
    /* Single use (RFC 8446 §C.4): a ticket offered twice would link the two connections. */
    SSL_SESSION *s = c->e[at].s;
    c->e[at].s = NULL;
    entry_drop(c, at);
    return s;
}

/* ---------------------------------------------------------------- on the client context */

static int ex_index = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

static void ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    sc_sess_cache_free(ptr);
}

static void ex_init(void)
{
    ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ex_free);
}

struct sc_sess_cache *sc_session_cache(struct mw_tls_ctx *client)
{
    if (client == NULL || ex_index < 0)
        return NULL;
    return SSL_CTX_get_ex_data(mw_tls_ctx_ssl(client), ex_index);
}

/* Where a connection's sessions are kept: endpoint, SNI and expected ID all must match. */
static bool conn_key(const struct sc_conn *c, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s\n%s\n%s", c->upstream_addr, c->service, c->expected_id);
    return n > 0 && (size_t)n < len && c->expected_id[0] != 0;
}

/*
 * OpenSSL hands us each NewSessionTicket (RFC 8446 §4.6.1) as a session.
 * Only a connection whose server identity was checked keeps it: the
 * outbound pump reads nothing from the server before check_server, so no
 * ticket from an unchecked server reaches here. Returning 1 keeps the
 * reference OpenSSL passed.
 */
static int new_session(SSL *ssl, SSL_SESSION *s)
{
    struct sc_conn *c = SSL_get_app_data(ssl);
    if (c == NULL || c->inbound || !c->mtls || !c->established || c->peer_id[0] == 0 ||
        strcmp(c->peer_id, c->expected_id) != 0)
        return 0;
    char key[sizeof(c->upstream_addr) + sizeof(c->service) + sizeof(c->expected_id) + 4];
    if (!conn_key(c, key, sizeof(key)))
        return 0;
    struct sc_sess_cache *cache = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index);
    return sc_sess_cache_put(cache, key, s, mw_clock_now(NULL)) ? 1 : 0;
}

mw_result sc_session_attach(struct mw_tls_ctx *client)
{
    MW_ENSURE(pthread_once(&ex_once, ex_init) == 0 && ex_index >= 0, MW_E_CRYPTO,
              "no SSL_CTX ex_data index for the session cache");
    struct sc_sess_cache *cache = sc_sess_cache_new(SC_SESS_MAX, SC_SESS_PER_KEY);
    MW_ENSURE(cache != NULL, MW_E_NOMEM, "out of memory for the TLS session cache");
    SSL_CTX *ssl = mw_tls_ctx_ssl(client);
    if (SSL_CTX_set_ex_data(ssl, ex_index, cache) != 1) {
        sc_sess_cache_free(cache);
        mw_error_openssl(MW_E_NOMEM, "attaching the TLS session cache");
        return MW_FAILURE;
    }
    /* Sessions go only to our cache; OpenSSL's own client store stays empty. */
    SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ssl, new_session);
    return MW_SUCCESS;
}

void sc_session_offer(struct sc_conn *c)
{
    struct mw_sidecar *sc = c->sc;
    /* With our own SVID expired no handshake is made, resumed or not (sc_peer_check). */
    if (c->u.ssl == NULL || sc->id->not_after <= mw_clock_now(NULL))
        return;
    char key[sizeof(c->upstream_addr) + sizeof(c->service) + sizeof(c->expected_id) + 4];
    if (!conn_key(c, key, sizeof(key)))
        return;
    SSL_SESSION *s = sc_sess_cache_take(sc_session_cache(c->u.tls), key, mw_clock_now(NULL));
    if (s == NULL)
        return;
    /*
     * If the server no longer accepts the ticket (its context, and so its
     * ticket key, changed: rotation, reload, restart), it ignores the PSK and
     * the handshake is a full one with the usual peer check (RFC 8446 §4.2.11).
     */
    if (SSL_set_session(c->u.ssl, s) != 1)
        ERR_clear_error();
    SSL_SESSION_free(s);
}
