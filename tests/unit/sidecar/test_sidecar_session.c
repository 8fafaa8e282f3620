/*
 * Outbound TLS 1.3 session resumption (sidecar_session.c) and the peer check
 * after a resumed handshake (sc_identity_handshake_peer). Real handshakes over
 * in-memory BIO pairs between the sidecar's own TLS contexts; the certificates
 * are made here with OpenSSL.
 */
#include "testutil.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "net/net_internal.h"
#include "sidecar/sidecar_internal.h"

/* ---------------------------------------------------------------- certificates */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A P-256 CA (uri NULL) or an X.509-SVID for uri signed by ca, valid for lifetime seconds. */
static X509 *make_cert(EVP_PKEY **key, const char *uri, X509 *ca, EVP_PKEY *ca_key, long lifetime)
{
    static long serial = 1;
    *key = EVP_EC_gen("P-256");
    assert_non_null(*key);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), lifetime);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"meshward test", -1,
                               -1, 0);
    char cn[32];
    snprintf(cn, sizeof(cn), "%s %ld", uri == NULL ? "ca" : "svid", serial);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, ca != NULL ? X509_get_subject_name(ca) : name);
    X509_set_pubkey(x, *key);
    X509 *iss = ca != NULL ? ca : x;
    if (uri == NULL) {
        add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        char san[300];
        snprintf(san, sizeof(san), "URI:%s", uri);
        add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, iss, NID_key_usage, "critical,digitalSignature");
        add_ext(x, iss, NID_ext_key_usage, "serverAuth,clientAuth");
        add_ext(x, iss, NID_subject_alt_name, san);
    }
    assert_true(X509_sign(x, ca != NULL ? ca_key : *key, EVP_sha256()) > 0);
    return x;
}

static struct mw_bundle *bundle_of(X509 *ca, const char *td)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(b, ca), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    struct mw_bundle *out;
    mw_assert_ok(
        mw_bundle_parse(mw_slice_make(data, (size_t)n), MW_BUNDLE_FMT_PEM, td, &out, NULL));
    BIO_free(b);
    return out;
}

/* ---------------------------------------------------------------- two sidecars */

struct side {
    struct mw_sidecar sc;
    struct sc_identity *id;
    struct mw_tls_ctx *server, *client;
};

struct world {
    X509 *ca, *ca2;
    EVP_PKEY *ca_key, *ca2_key;
    struct side cli, srv;
};

/* An SVID from the root, or from inter (an intermediate, then sent in the chain). */
static void side_init(struct side *s, struct world *w, const char *uri, long lifetime, X509 *inter,
                      EVP_PKEY *inter_key)
{
    memset(s, 0, sizeof(*s));
    s->id = calloc(1, sizeof(*s->id));
    assert_non_null(s->id);
    s->id->leaf = make_cert(&s->id->key, uri, inter != NULL ? inter : w->ca,
                            inter != NULL ? inter_key : w->ca_key, lifetime);
    s->id->chain = sk_X509_new_null();
    if (inter != NULL) {
        X509_up_ref(inter);
        assert_true(sk_X509_push(s->id->chain, inter) > 0);
    }
    s->id->bundles = calloc(1, sizeof(*s->id->bundles));
    s->id->bundles[0] = bundle_of(w->ca, "cluster.local");
    s->id->n_bundles = 1;
    s->id->not_after = mw_clock_now(NULL) + lifetime;
    snprintf(s->id->spiffe_id, sizeof(s->id->spiffe_id), "%s", uri);
    s->sc.id = s->id;
    mw_assert_ok(sc_identity_tls(&s->sc, s->id, &s->server, &s->client));
}

static void side_free(struct side *s)
{
    mw_tls_ctx_free(s->server);
    mw_tls_ctx_free(s->client);
    sc_identity_free(s->id);
}

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    w->ca = make_cert(&w->ca_key, NULL, NULL, NULL, 86400);
    w->ca2 = make_cert(&w->ca2_key, NULL, NULL, NULL, 86400);
    side_init(&w->cli, w, "spiffe://cluster.local/ns/foo/sa/client", 3600, NULL, NULL);
    side_init(&w->srv, w, "spiffe://cluster.local/ns/foo/sa/server", 3600, NULL, NULL);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    side_free(&w->cli);
    side_free(&w->srv);
    X509_free(w->ca);
    X509_free(w->ca2);
    EVP_PKEY_free(w->ca_key);
    EVP_PKEY_free(w->ca2_key);
    free(w);
    return 0;
}

/* One connection: client SSL from cli, server SSL from server_ctx, offering session. */
struct conn {
    SSL *c, *s;
};

static bool handshake(struct conn *k, struct mw_tls_ctx *client, struct mw_tls_ctx *server,
                      SSL_SESSION *offer)
{
    k->c = SSL_new(mw_tls_ctx_ssl(client));
    k->s = SSL_new(mw_tls_ctx_ssl(server));
    assert_non_null(k->c);
    assert_non_null(k->s);
    BIO *bc, *bs;
    assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(k->c, bc, bc);
    SSL_set_bio(k->s, bs, bs);
    SSL_set_connect_state(k->c);
    SSL_set_accept_state(k->s);
    assert_int_equal(SSL_set_tlsext_host_name(k->c, "server.foo"), 1);
    if (offer != NULL)
        assert_int_equal(SSL_set_session(k->c, offer), 1);
    int rc = 0, rs = 0;
    for (int i = 0; i < 50 && (rc != 1 || rs != 1); i++) {
        if (rc != 1)
            rc = SSL_do_handshake(k->c);
        if (rs != 1)
            rs = SSL_do_handshake(k->s);
        if ((rc <= 0 && SSL_get_error(k->c, rc) == SSL_ERROR_SSL) ||
            (rs <= 0 && SSL_get_error(k->s, rs) == SSL_ERROR_SSL))
            break;
    }
    ERR_clear_error();
    if (rc != 1 || rs != 1)
        return false;
    /* The server's NewSessionTicket messages follow its handshake; a read takes them in. */
    uint8_t b[16];
    assert_true(SSL_read(k->c, b, sizeof(b)) <= 0);
    ERR_clear_error();
    return true;
}

/*
 * A clean close: OpenSSL marks the session of a connection freed without a
 * close_notify not resumable (as the sidecar's sock_close avoids).
 */
static void conn_free(struct conn *k)
{
    (void)SSL_shutdown(k->c);
    (void)SSL_shutdown(k->s);
    ERR_clear_error();
    SSL_free(k->c);
    SSL_free(k->s);
}

/* A resumable session from a full handshake between the world's two sidecars. */
static SSL_SESSION *fresh_session(struct world *w)
{
    struct conn k;
    assert_true(handshake(&k, w->cli.client, w->srv.server, NULL));
    SSL_SESSION *s = SSL_get1_session(k.c);
    assert_non_null(s);
    assert_true(SSL_SESSION_is_resumable(s));
    conn_free(&k);
    return s;
}

/* ---------------------------------------------------------------- the peer after resumption */

static void test_resumed_peer_is_verified_again(void **state)
{
    struct world *w = *state;
    SSL_SESSION *s = fresh_session(w);
    struct conn k;
    assert_true(handshake(&k, w->cli.client, w->srv.server, s));
    assert_int_equal(SSL_session_reused(k.c), 1);
    assert_int_equal(SSL_session_reused(k.s), 1);

    /* Today's bundles: the stored chain verifies, both ways. */
    struct mw_spiffe_id peer;
    enum sc_hs_fail why;
    mw_assert_ok(sc_identity_handshake_peer(w->cli.id, k.c, &peer, &why));
    assert_int_equal(why, SC_HSF_NONE);
    char text[512];
    mw_spiffe_id_format(&peer, text, sizeof(text));
    assert_string_equal(text, "spiffe://cluster.local/ns/foo/sa/server");
    mw_assert_ok(sc_identity_handshake_peer(w->srv.id, k.s, &peer, &why));
    mw_spiffe_id_format(&peer, text, sizeof(text));
    assert_string_equal(text, "spiffe://cluster.local/ns/foo/sa/client");

    /* The bundle changes (another CA for the trust domain): the ticket does not get past it. */
    struct mw_bundle *keep = w->cli.id->bundles[0];
    w->cli.id->bundles[0] = bundle_of(w->ca2, "cluster.local");
    mw_assert_fails(sc_identity_handshake_peer(w->cli.id, k.c, &peer, &why), MW_E_VERIFY);
    assert_int_equal(why, SC_HSF_BAD_CERTIFICATE);
    mw_bundle_free(w->cli.id->bundles[0]);

    /* The trust domain's bundle is gone. */
    w->cli.id->bundles[0] = bundle_of(w->ca, "partner.example");
    mw_assert_fails(sc_identity_handshake_peer(w->cli.id, k.c, &peer, &why), MW_E_VERIFY);
    assert_int_equal(why, SC_HSF_UNKNOWN_TD);
    mw_bundle_free(w->cli.id->bundles[0]);
    w->cli.id->bundles[0] = keep;

    /* Our own SVID expired: no handshake, resumed or not. */
    int64_t na = w->cli.id->not_after;
    w->cli.id->not_after = mw_clock_now(NULL) - 1;
    mw_assert_fails(sc_identity_handshake_peer(w->cli.id, k.c, &peer, &why), MW_E_VERIFY);
    assert_int_equal(why, SC_HSF_OWN_SVID_EXPIRED);
    w->cli.id->not_after = na;
    mw_assert_ok(sc_identity_handshake_peer(w->cli.id, k.c, &peer, &why));

    conn_free(&k);
    SSL_SESSION_free(s);
}

/*
 * A client whose SVID comes from an intermediate (as the CA issues them): the
 * server's ticket carries the intermediate, so the resumed chain verifies.
 */
static void test_resumed_chain_keeps_intermediates(void **state)
{
    struct world *w = *state;
    EVP_PKEY *ikey;
    X509 *inter = make_cert(&ikey, NULL, w->ca, w->ca_key, 86400);
    struct side cli;
    side_init(&cli, w, "spiffe://cluster.local/ns/foo/sa/client", 3600, inter, ikey);
    struct conn k;
    assert_true(handshake(&k, cli.client, w->srv.server, NULL));
    SSL_SESSION *s = SSL_get1_session(k.c);
    conn_free(&k);
    assert_true(handshake(&k, cli.client, w->srv.server, s));
    assert_int_equal(SSL_session_reused(k.s), 1);
    struct mw_spiffe_id peer;
    enum sc_hs_fail why;
    mw_assert_ok(sc_identity_handshake_peer(w->srv.id, k.s, &peer, &why));
    char text[512];
    mw_spiffe_id_format(&peer, text, sizeof(text));
    assert_string_equal(text, "spiffe://cluster.local/ns/foo/sa/client");
    /* And the server's side of the next resumption (from a ticket issued on a resumption). */
    SSL_SESSION *s2 = SSL_get1_session(k.c);
    conn_free(&k);
    assert_true(handshake(&k, cli.client, w->srv.server, s2));
    assert_int_equal(SSL_session_reused(k.s), 1);
    mw_assert_ok(sc_identity_handshake_peer(w->srv.id, k.s, &peer, &why));
    conn_free(&k);
    SSL_SESSION_free(s);
    SSL_SESSION_free(s2);
    side_free(&cli);
    X509_free(inter);
    EVP_PKEY_free(ikey);
}

/* A new server context (rotation, reload) cannot open old tickets: a full handshake, not a failure.
 */
static void test_new_server_context_gives_full_handshake(void **state)
{
    struct world *w = *state;
    SSL_SESSION *s = fresh_session(w);
    struct mw_tls_ctx *srv2, *cli2;
    mw_assert_ok(sc_identity_tls(&w->srv.sc, w->srv.id, &srv2, &cli2));
    struct conn k;
    assert_true(handshake(&k, w->cli.client, srv2, s));
    assert_int_equal(SSL_session_reused(k.c), 0);
    struct mw_spiffe_id peer;
    mw_assert_ok(sc_identity_handshake_peer(w->cli.id, k.c, &peer, NULL));
    conn_free(&k);
    /* The old context still resumes its own tickets. */
    assert_true(handshake(&k, w->cli.client, w->srv.server, s));
    assert_int_equal(SSL_session_reused(k.c), 1);
    conn_free(&k);
    mw_tls_ctx_free(srv2);
    mw_tls_ctx_free(cli2);
    SSL_SESSION_free(s);
}

/* A full handshake with a peer the check refuses fails, and says why. */
static void test_peer_check_refusal_reason(void **state)
{
    struct world *w = *state;
    struct mw_bundle *keep = w->cli.id->bundles[0];
    w->cli.id->bundles[0] = bundle_of(w->ca2, "cluster.local");
    w->cli.sc.check_refusal = SC_HSF_NONE;
    struct conn k;
    assert_false(handshake(&k, w->cli.client, w->srv.server, NULL));
    assert_int_equal(w->cli.sc.check_refusal, SC_HSF_BAD_CERTIFICATE);
    conn_free(&k);
    mw_bundle_free(w->cli.id->bundles[0]);
    w->cli.id->bundles[0] = keep;
}

/* ---------------------------------------------------------------- the cache */

static void test_cache_attached_per_context(void **state)
{
    struct world *w = *state;
    struct sc_sess_cache *a = sc_session_cache(w->cli.client);
    assert_non_null(a);
    assert_non_null(sc_session_cache(w->srv.client));
    assert_ptr_not_equal(a, sc_session_cache(w->srv.client));
    /* A new context (a new SVID or bundle) has a cache of its own, empty. */
    struct mw_tls_ctx *srv2, *cli2;
    mw_assert_ok(sc_identity_tls(&w->cli.sc, w->cli.id, &srv2, &cli2));
    assert_true(sc_sess_cache_put(a, "k", fresh_session(w), mw_clock_now(NULL)));
    assert_int_equal(sc_sess_cache_count(a), 1);
    assert_int_equal(sc_sess_cache_count(sc_session_cache(cli2)), 0);
    assert_null(sc_sess_cache_take(sc_session_cache(cli2), "k", mw_clock_now(NULL)));
    sc_sess_cache_flush(a);
    assert_int_equal(sc_sess_cache_count(a), 0);
    mw_tls_ctx_free(srv2);
    mw_tls_ctx_free(cli2);
}

/* Put with a reference of its own for the cache (the test keeps its own). */
static bool put(struct sc_sess_cache *c, const char *key, SSL_SESSION *s, int64_t now)
{
    SSL_SESSION_up_ref(s);
    if (sc_sess_cache_put(c, key, s, now))
        return true;
    SSL_SESSION_free(s);
    return false;
}

static void test_cache_single_use_and_bounds(void **state)
{
    struct world *w = *state;
    int64_t now = mw_clock_now(NULL);
    struct sc_sess_cache *c = sc_sess_cache_new(3, 2);
    assert_non_null(c);
    assert_null(sc_sess_cache_new(0, 1));
    assert_null(sc_sess_cache_new(1, 0));
    SSL_SESSION *s[4];
    for (size_t i = 0; i < 4; i++)
        s[i] = fresh_session(w);

    /* Per key: two at most, the oldest goes. */
    assert_true(put(c, "a", s[0], now));
    assert_true(put(c, "a", s[1], now));
    assert_true(put(c, "a", s[2], now));
    assert_int_equal(sc_sess_cache_count(c), 2);
    /* Newest first, each once (RFC 8446 §C.4). */
    SSL_SESSION *t = sc_sess_cache_take(c, "a", now);
    assert_ptr_equal(t, s[2]);
    SSL_SESSION_free(t);
    t = sc_sess_cache_take(c, "a", now);
    assert_ptr_equal(t, s[1]);
    SSL_SESSION_free(t);
    assert_null(sc_sess_cache_take(c, "a", now));
    assert_int_equal(sc_sess_cache_count(c), 0);

    /* Globally: three at most, the oldest of any key goes. Keys match exactly. */
    assert_true(put(c, "a", s[0], now));
    assert_true(put(c, "b", s[1], now));
    assert_true(put(c, "c", s[2], now));
    assert_true(put(c, "d", s[3], now));
    assert_int_equal(sc_sess_cache_count(c), 3);
    assert_null(sc_sess_cache_take(c, "a", now));
    assert_null(sc_sess_cache_take(c, "b ", now));
    assert_null(sc_sess_cache_take(c, "", now));
    t = sc_sess_cache_take(c, "b", now);
    assert_ptr_equal(t, s[1]);
    SSL_SESSION_free(t);
    sc_sess_cache_free(c);
    for (size_t i = 0; i < 4; i++)
        SSL_SESSION_free(s[i]);
}

static void test_cache_expiry(void **state)
{
    struct world *w = *state;
    int64_t now = mw_clock_now(NULL);
    struct sc_sess_cache *c = sc_sess_cache_new(8, 4);
    SSL_SESSION *s = fresh_session(w);
    int64_t end = (int64_t)SSL_SESSION_get_time(s) + (int64_t)SSL_SESSION_get_timeout(s);
    assert_true(end > now);

    /* Past the ticket lifetime: not kept, and dropped when found. */
    assert_false(put(c, "a", s, end));
    assert_true(put(c, "a", s, now));
    assert_null(sc_sess_cache_take(c, "a", end));
    assert_int_equal(sc_sess_cache_count(c), 0);

    /* The server's certificate expires (1 h) before the ticket (2 h, OpenSSL's default). */
    int64_t leaf_end = w->srv.id->not_after;
    if (end > leaf_end + 10) {
        assert_false(put(c, "a", s, leaf_end + 5));
        assert_true(put(c, "a", s, leaf_end - 120));
        assert_null(sc_sess_cache_take(c, "a", leaf_end + 5));
    }
    sc_sess_cache_free(c);
    SSL_SESSION_free(s);
}

/* Only TLS 1.3 sessions are kept. */
static void test_cache_refuses_tls12(void **state)
{
    struct world *w = *state;
    struct mw_tls_ctx *srv2, *cli2;
    mw_assert_ok(sc_identity_tls(&w->cli.sc, w->cli.id, &srv2, &cli2));
    assert_int_equal(SSL_CTX_set_max_proto_version(mw_tls_ctx_ssl(cli2), TLS1_2_VERSION), 1);
    struct conn k;
    assert_true(handshake(&k, cli2, w->srv.server, NULL));
    SSL_SESSION *s = SSL_get1_session(k.c);
    assert_int_equal(SSL_SESSION_get_protocol_version(s), TLS1_2_VERSION);
    struct sc_sess_cache *c = sc_sess_cache_new(8, 4);
    assert_false(put(c, "a", s, mw_clock_now(NULL)));
    assert_int_equal(sc_sess_cache_count(c), 0);
    sc_sess_cache_free(c);
    SSL_SESSION_free(s);
    conn_free(&k);
    mw_tls_ctx_free(srv2);
    mw_tls_ctx_free(cli2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resumed_peer_is_verified_again),
        cmocka_unit_test(test_resumed_chain_keeps_intermediates),
        cmocka_unit_test(test_new_server_context_gives_full_handshake),
        cmocka_unit_test(test_peer_check_refusal_reason),
        cmocka_unit_test(test_cache_attached_per_context),
        cmocka_unit_test(test_cache_single_use_and_bounds),
        cmocka_unit_test(test_cache_expiry),
        cmocka_unit_test(test_cache_refuses_tls12),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
