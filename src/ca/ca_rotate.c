/*
 * Intermediate rotation, with SPIRE's thresholds (pkg/server/ca/manager/slot.go):
 * the next intermediate is prepared when the active one has at most
 * min(lifetime/2, 30 days) left, and activated at min(lifetime/6, 7 days).
 *
 * The trust bundle holds the root only. Every intermediate is signed by that
 * root and every SVID travels with its own intermediate, so an SVID issued
 * under the old intermediate and one issued under the new one both validate
 * against the same, unchanged bundle; and since an SVID's notAfter is capped
 * at its intermediate's, no SVID outlives its chain. The bundle changes only
 * when the root does (docs/ca.md).
 *
 * Also the offline-root path: signing an intermediate CSR with a root, and
 * installing the signed intermediate into the CA that made the CSR.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>
#include <unistd.h>

#include "ca/ca_internal.h"

#define DAY (86400LL)

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

int64_t mw_ca_prepare_at(int64_t not_before, int64_t not_after)
{
    return not_after - min64((not_after - not_before) / 2, 30 * DAY);
}

int64_t mw_ca_activate_at(int64_t not_before, int64_t not_after)
{
    return not_after - min64((not_after - not_before) / 6, 7 * DAY);
}

size_t mw_ca_slot_count(const struct mw_ca *ca)
{
    return ca->nslots;
}

mw_result mw_ca_slot_info(const struct mw_ca *ca, size_t i, struct mw_ca_slot_info *out)
{
    MW_ENSURE(i < ca->nslots, MW_E_INPUT, "no intermediate %zu", i);
    const struct mw_ca_slot *s = &ca->slots[i];
    memset(out, 0, sizeof(*out));
    out->id = s->id;
    out->state = s->state;
    if (s->key != NULL)
        mw_ca_key_id(s->key, out->key_id);
    if (s->cert == NULL)
        return MW_SUCCESS;
    MW_GUARD(mw_ca_cert_times(s->cert, &out->not_before, &out->not_after));
    X509_NAME_oneline(X509_get_subject_name(s->cert), out->subject, sizeof(out->subject));
    if (s->key == NULL) {
        uint8_t *der = NULL, h[32];
        int n = i2d_PUBKEY(X509_get0_pubkey(s->cert), &der);
        MW_GUARD_OSSL(n, MW_E_CRYPTO, "cannot encode a key");
        int ok = EVP_Digest(der, (size_t)n, h, NULL, EVP_sha256(), NULL);
        OPENSSL_free(der);
        MW_GUARD_OSSL(ok, MW_E_CRYPTO, "cannot hash a key");
        static const char hex[] = "0123456789abcdef";
        for (size_t j = 0; j < 32; j++) {
            out->key_id[2 * j] = hex[h[j] >> 4];
            out->key_id[2 * j + 1] = hex[h[j] & 15];
        }
    }
    return MW_SUCCESS;
}

static struct mw_ca_slot *slot_in(struct mw_ca *ca, enum mw_ca_slot_state st)
{
    for (size_t i = 0; i < ca->nslots; i++)
        if (ca->slots[i].state == st)
            return &ca->slots[i];
    return NULL;
}

/* Forget retired intermediates whose certificates have expired; their SVIDs have too. */
static void prune(struct mw_ca *ca, int64_t now)
{
    size_t w = 0;
    for (size_t i = 0; i < ca->nslots; i++) {
        struct mw_ca_slot *s = &ca->slots[i];
        int64_t nb, na;
        if (s->state == MW_CA_SLOT_OLD && s->cert != NULL &&
            mw_ok(mw_ca_cert_times(s->cert, &nb, &na)) && na < now) {
            if (s->keyref.file[0] != '\0') {
                char path[1600];
                int n = s->keyref.file[0] == '/'
                            ? snprintf(path, sizeof(path), "%s", s->keyref.file)
                            : snprintf(path, sizeof(path), "%s/%s", ca->dir, s->keyref.file);
                if (n > 0 && (size_t)n < sizeof(path))
                    (void)unlink(path);
            }
            X509_free(s->cert);
            mw_ca_key_free(s->key);
            continue;
        }
        if (w != i)
            ca->slots[w] = *s;
        w++;
    }
    for (size_t i = w; i < ca->nslots; i++)
        memset(&ca->slots[i], 0, sizeof(ca->slots[i]));
    ca->nslots = w;
}

static mw_result write_cert_file(const struct mw_ca *ca, const char *file, X509 *cert)
{
    char path[1600];
    int n = snprintf(path, sizeof(path), "%s/%s", ca->dir, file);
    MW_ENSURE(n > 0 && (size_t)n < sizeof(path), MW_E_LIMIT, "path too long");
    struct mw_dynbuf pem;
    mw_dynbuf_init(&pem, 1 << 20);
    mw_result r = mw_ca_cert_pem(cert, &pem);
    if (mw_ok(r))
        r = mw_file_write_atomic(path, mw_dynbuf_slice(&pem), 0644);
    mw_dynbuf_free(&pem);
    return r;
}

static mw_result prepare(struct mw_ca *ca, int64_t now)
{
    MW_ENSURE(ca->root != NULL && ca->root_key != NULL, MW_E_STATE,
              "the root key is offline: make a CSR with `ca init --csr` and sign it with the root");
    prune(ca, now);
    MW_ENSURE(ca->nslots < MW_CA_MAX_SLOTS, MW_E_LIMIT,
              "%d intermediates are still valid; cannot prepare another", MW_CA_MAX_SLOTS);
    int id = 0;
    for (size_t i = 0; i < ca->nslots; i++)
        if (ca->slots[i].id > id)
            id = ca->slots[i].id;
    id++;
    struct mw_ca_slot s;
    memset(&s, 0, sizeof(s));
    s.id = id;
    s.state = MW_CA_SLOT_PREPARED;
    MW_GUARD(mw_ca_new_slot_key(ca, id, &s.keyref, &s.key));
    mw_result r = mw_ca_make_intermediate(ca, ca->root, ca->root_key, mw_ca_key_pub(s.key), id, now,
                                          ca->intermediate_ttl, &s.cert);
    snprintf(s.cert_file, sizeof(s.cert_file), "intermediate-%d.pem", id);
    if (mw_ok(r))
        r = write_cert_file(ca, s.cert_file, s.cert);
    if (mw_failed(r)) {
        X509_free(s.cert);
        mw_ca_key_free(s.key);
        return r;
    }
    ca->slots[ca->nslots++] = s;
    return MW_SUCCESS;
}

mw_result mw_ca_rotate(struct mw_ca *ca, const struct mw_clock *clock, bool force_prepare,
                       bool force_activate, enum mw_ca_rotation *done)
{
    *done = MW_CA_ROTATE_NONE;
    int64_t now = mw_clock_now(clock);
    struct mw_ca_slot *active = mw_ca_active_slot(ca);
    int64_t nb = 0, na = 0;
    if (active != NULL)
        MW_GUARD(mw_ca_cert_times(active->cert, &nb, &na));
    bool changed = false;
    if (slot_in(ca, MW_CA_SLOT_PREPARED) == NULL &&
        (force_prepare || force_activate || active == NULL || now >= mw_ca_prepare_at(nb, na))) {
        MW_GUARD(prepare(ca, now));
        *done = MW_CA_ROTATE_PREPARED;
        changed = true;
        active = mw_ca_active_slot(ca); /* prune may have moved slots */
    }
    struct mw_ca_slot *next = slot_in(ca, MW_CA_SLOT_PREPARED);
    if (next != NULL && (force_activate || active == NULL || now >= mw_ca_activate_at(nb, na))) {
        if (active != NULL)
            active->state = MW_CA_SLOT_OLD;
        next->state = MW_CA_SLOT_ACTIVE;
        *done = MW_CA_ROTATE_ACTIVATED;
        changed = true;
    }
    return changed ? mw_ca_save_config(ca) : MW_SUCCESS;
}

/* ---------------------------------------------------------------- offline root */

static mw_result parse_req(mw_slice in, X509_REQ **out)
{
    MW_ENSURE(in.n > 0 && in.n <= MW_CA_CSR_MAX, MW_E_LIMIT, "CSR is empty or over %d bytes",
              MW_CA_CSR_MAX);
    X509_REQ *req = NULL;
    if (mw_slice_has_prefix(in, mw_slice_cstr("-----BEGIN"))) {
        BIO *bio = BIO_new_mem_buf(in.p, (int)in.n);
        req = bio != NULL ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    } else {
        const uint8_t *p = in.p;
        req = d2i_X509_REQ(NULL, &p, (long)in.n);
        if (req != NULL && p != in.p + in.n) {
            X509_REQ_free(req);
            MW_BAIL(MW_E_INPUT, "CSR has bytes after the request");
        }
    }
    if (req == NULL) {
        mw_error_openssl(MW_E_INPUT, "not a PKCS#10 CSR (PEM or DER)");
        return MW_FAILURE;
    }
    *out = req;
    return MW_SUCCESS;
}

mw_result mw_ca_sign_intermediate(struct mw_ca *ca, mw_slice csr, int64_t ttl,
                                  const struct mw_clock *clock, struct mw_dynbuf *cert_pem)
{
    MW_ENSURE(ca->root != NULL && ca->root_key != NULL, MW_E_STATE,
              "this CA has no root key to sign with");
    MW_DEFER(X509_REQ) X509_REQ *req = NULL;
    MW_GUARD(parse_req(csr, &req));
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    MW_ENSURE(pub != NULL, MW_E_INPUT, "CSR public key cannot be decoded");
    if (X509_REQ_verify(req, pub) != 1) {
        ERR_clear_error();
        MW_BAIL(MW_E_VERIFY, "CSR signature does not verify");
    }
    enum mw_ca_key_type t;
    MW_GUARD(mw_ca_key_type_of(pub, &t));
    MW_DEFER(X509) X509 *x = NULL;
    MW_GUARD(mw_ca_make_intermediate(ca, ca->root, ca->root_key, pub, 0, mw_clock_now(clock),
                                     ttl > 0 ? ttl : ca->intermediate_ttl, &x));
    return mw_ca_cert_pem(x, cert_pem);
}

static mw_result read_pem_cert(mw_slice pem, const char *what, X509 **out)
{
    BIO *bio = BIO_new_mem_buf(pem.p, (int)pem.n);
    *out = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (*out == NULL) {
        mw_error_openssl(MW_E_INPUT, "%s is not a PEM certificate", what);
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

mw_result mw_ca_import_intermediate(struct mw_ca *ca, mw_slice cert_pem, mw_slice root_pem,
                                    const struct mw_clock *clock)
{
    struct mw_ca_slot *s = slot_in(ca, MW_CA_SLOT_PENDING);
    MW_ENSURE(s != NULL && s->key != NULL, MW_E_STATE,
              "this CA has no pending intermediate (made by `ca init --csr`)");
    MW_DEFER(X509) X509 *cert = NULL;
    MW_DEFER(X509) X509 *root = NULL;
    MW_GUARD(read_pem_cert(cert_pem, "the intermediate", &cert));
    MW_GUARD(read_pem_cert(root_pem, "the root", &root));
    MW_ENSURE(EVP_PKEY_eq(X509_get0_pubkey(cert), mw_ca_key_pub(s->key)) == 1, MW_E_INPUT,
              "the intermediate certificate is not for this CA's pending key");
    MW_ENSURE(X509_check_ca(root) == 1 && X509_check_issued(root, root) == X509_V_OK, MW_E_INPUT,
              "the root is not a self-signed CA certificate");
    MW_ENSURE(X509_verify(root, X509_get0_pubkey(root)) == 1, MW_E_VERIFY,
              "the root's self-signature does not verify");
    MW_ENSURE(X509_check_ca(cert) == 1 && (X509_get_key_usage(cert) & KU_KEY_CERT_SIGN), MW_E_INPUT,
              "the intermediate is not a CA with keyCertSign");
    MW_ENSURE(X509_check_issued(root, cert) == X509_V_OK, MW_E_VERIFY,
              "the intermediate was not issued by this root");
    MW_GUARD(mw_ca_check_signed_by(cert, root));
    int64_t now = mw_clock_now(clock), nb, na;
    MW_GUARD(mw_ca_cert_times(cert, &nb, &na));
    MW_ENSURE(now >= nb - 60 && now < na, MW_E_EXPIRED, "the intermediate is not valid now");
    if (ca->root != NULL)
        MW_ENSURE(X509_cmp(ca->root, root) == 0, MW_E_INPUT,
                  "the root differs from this CA's root");
    if (ca->root == NULL) {
        snprintf(ca->root_cert_file, sizeof(ca->root_cert_file), "root.pem");
        MW_GUARD(write_cert_file(ca, ca->root_cert_file, root));
        ca->root = root;
        root = NULL;
    }
    snprintf(s->cert_file, sizeof(s->cert_file), "intermediate-%d.pem", s->id);
    MW_GUARD(write_cert_file(ca, s->cert_file, cert));
    struct mw_ca_slot *old = mw_ca_active_slot(ca);
    if (old != NULL)
        old->state = MW_CA_SLOT_OLD;
    s->cert = cert;
    cert = NULL;
    s->state = MW_CA_SLOT_ACTIVE;
    MW_GUARD(mw_ca_write_bundle(ca));
    return mw_ca_save_config(ca);
}
