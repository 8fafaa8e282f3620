/*
 * CA keys: the common interface, the file backend, and certificate signing
 * that works the same for every backend.
 *
 * OpenSSL's X509_sign wants the private key in the process. A PKCS#11 key
 * is not, so certificates are built with the X509 API, the DER
 * TBSCertificate is taken with i2d_re_X509_tbs, signed by the backend, and
 * the Certificate SEQUENCE is assembled here (RFC 5280 §4.1). What comes out
 * is parsed back and verified under the public key, so a backend that
 * returns a wrong signature cannot produce a certificate.
 */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <string.h>
#include <unistd.h>

#include "ca/ca_internal.h"

#define KEY_FILE_MAX 65536

const char *mw_ca_key_type_name(enum mw_ca_key_type t)
{
    switch (t) {
    case MW_CA_KEY_EC_P256:
        return "ec-p256";
    case MW_CA_KEY_EC_P384:
        return "ec-p384";
    }
    return "unknown";
}

mw_result mw_ca_key_type_parse(const char *name, enum mw_ca_key_type *out)
{
    if (strcmp(name, "ec-p256") == 0)
        *out = MW_CA_KEY_EC_P256;
    else if (strcmp(name, "ec-p384") == 0)
        *out = MW_CA_KEY_EC_P384;
    else
        MW_BAIL(MW_E_UNSUPPORTED, "CA key type \"%s\" is not supported (ec-p256, ec-p384)", name);
    return MW_SUCCESS;
}

const EVP_MD *mw_ca_key_md(enum mw_ca_key_type t)
{
    return t == MW_CA_KEY_EC_P384 ? EVP_sha384() : EVP_sha256();
}

static int sig_nid(enum mw_ca_key_type t)
{
    return t == MW_CA_KEY_EC_P384 ? NID_ecdsa_with_SHA384 : NID_ecdsa_with_SHA256;
}

mw_result mw_ca_key_type_of(EVP_PKEY *pub, enum mw_ca_key_type *out)
{
    MW_ENSURE(EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC, MW_E_UNSUPPORTED,
              "CA key type %s is not supported (ec-p256, ec-p384)",
              OBJ_nid2sn(EVP_PKEY_get_base_id(pub)));
    char group[64];
    size_t glen = 0;
    MW_GUARD_OSSL(EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof(group), &glen),
                  MW_E_UNSUPPORTED, "CA key has no named curve");
    if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
        *out = MW_CA_KEY_EC_P256;
    else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
        *out = MW_CA_KEY_EC_P384;
    else
        MW_BAIL(MW_E_UNSUPPORTED, "CA key curve %s is not supported (P-256, P-384)", group);
    return MW_SUCCESS;
}

mw_result mw_ca_key_wrap(const struct mw_ca_key_ops *ops, void *impl, enum mw_ca_key_type type,
                         EVP_PKEY *pub, struct mw_ca_key **out)
{
    struct mw_ca_key *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        ops->free(impl);
        EVP_PKEY_free(pub);
        MW_BAIL(MW_E_NOMEM, "out of memory for a CA key");
    }
    k->ops = ops;
    k->impl = impl;
    k->type = type;
    k->pub = pub;
    pthread_mutex_init(&k->vlock, NULL);
    k->md = EVP_MD_fetch(NULL, type == MW_CA_KEY_EC_P384 ? "SHA384" : "SHA256", NULL);
    k->vctx = EVP_PKEY_CTX_new(pub, NULL);
    if (k->md == NULL || k->vctx == NULL || EVP_PKEY_verify_init(k->vctx) != 1) {
        mw_ca_key_free(k);
        mw_error_openssl(MW_E_CRYPTO, "cannot set up verification for a CA key");
        return MW_FAILURE;
    }
    struct mw_dynbuf spki;
    mw_dynbuf_init(&spki, 4096);
    uint8_t h[32];
    if (mw_failed(mw_ca_key_spki(k, &spki)) ||
        EVP_Digest(spki.p, spki.n, h, NULL, EVP_sha256(), NULL) != 1) {
        mw_dynbuf_free(&spki);
        mw_ca_key_free(k);
        MW_BAIL(MW_E_CRYPTO, "cannot compute the CA key ID");
    }
    mw_dynbuf_free(&spki);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        k->id[2 * i] = hex[h[i] >> 4];
        k->id[2 * i + 1] = hex[h[i] & 15];
    }
    k->id[64] = '\0';
    *out = k;
    return MW_SUCCESS;
}

void mw_ca_key_free(struct mw_ca_key *k)
{
    if (k == NULL)
        return;
    if (k->ops != NULL)
        k->ops->free(k->impl);
    EVP_PKEY_CTX_free(k->vctx);
    EVP_MD_free(k->md);
    EVP_PKEY_free(k->pub);
    pthread_mutex_destroy(&k->vlock);
    free(k);
}

enum mw_ca_key_type mw_ca_key_type(const struct mw_ca_key *k)
{
    return k->type;
}

const char *mw_ca_key_backend(const struct mw_ca_key *k)
{
    return k->ops->name;
}

EVP_PKEY *mw_ca_key_pub(const struct mw_ca_key *k)
{
    return k->pub;
}

void mw_ca_key_id(const struct mw_ca_key *k, char out[65])
{
    memcpy(out, k->id, 65);
}

mw_result mw_ca_key_spki(const struct mw_ca_key *k, struct mw_dynbuf *out)
{
    int n = i2d_PUBKEY(k->pub, NULL);
    MW_GUARD_OSSL(n, MW_E_CRYPTO, "cannot encode the CA public key");
    MW_GUARD(mw_dynbuf_reserve(out, (size_t)n));
    uint8_t *p = out->p + out->n;
    MW_GUARD_OSSL(i2d_PUBKEY(k->pub, &p), MW_E_CRYPTO, "cannot encode the CA public key");
    out->n += (size_t)n;
    out->p[out->n] = '\0';
    return MW_SUCCESS;
}

static mw_result digest_of(const struct mw_ca_key *k, mw_slice msg, uint8_t *digest, unsigned *dlen)
{
    MW_GUARD_OSSL(EVP_Digest(msg.p, msg.n, digest, dlen, k->md, NULL), MW_E_CRYPTO,
                  "cannot hash the data to sign");
    return MW_SUCCESS;
}

mw_result mw_ca_key_sign(const struct mw_ca_key *k, mw_slice msg, struct mw_dynbuf *out)
{
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    MW_GUARD(digest_of(k, msg, digest, &dlen));
    return k->ops->sign_digest(k->impl, digest, dlen, out);
}

/* ---------------------------------------------------------------- file backend */

struct file_key {
    EVP_PKEY *priv;
    EVP_PKEY_CTX *sctx; /* EVP_PKEY_sign_init done once; reused under lock */
    pthread_mutex_t lock;
};

static mw_result file_sign_locked(struct file_key *f, const uint8_t *digest, size_t len,
                                  struct mw_dynbuf *out)
{
    size_t siglen = 0;
    MW_GUARD_OSSL(EVP_PKEY_sign(f->sctx, NULL, &siglen, digest, len), MW_E_CRYPTO,
                  "cannot size the signature");
    MW_GUARD(mw_dynbuf_reserve(out, siglen));
    MW_GUARD_OSSL(EVP_PKEY_sign(f->sctx, out->p + out->n, &siglen, digest, len), MW_E_CRYPTO,
                  "the file key failed to sign");
    out->n += siglen;
    out->p[out->n] = '\0';
    return MW_SUCCESS;
}

static mw_result file_sign(void *impl, const uint8_t *digest, size_t len, struct mw_dynbuf *out)
{
    struct file_key *f = impl;
    pthread_mutex_lock(&f->lock);
    mw_result r = file_sign_locked(f, digest, len, out);
    pthread_mutex_unlock(&f->lock);
    return r;
}

static void file_free(void *impl)
{
    struct file_key *f = impl;
    if (f == NULL)
        return;
    EVP_PKEY_CTX_free(f->sctx);
    EVP_PKEY_free(f->priv);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static const struct mw_ca_key_ops file_ops = {"file", file_sign, file_free};

static mw_result pub_of(EVP_PKEY *priv, EVP_PKEY **out)
{
    uint8_t *der = NULL;
    int n = i2d_PUBKEY(priv, &der);
    MW_GUARD_OSSL(n, MW_E_CRYPTO, "cannot encode a public key");
    const uint8_t *p = der;
    *out = d2i_PUBKEY(NULL, &p, n);
    OPENSSL_free(der);
    MW_ENSURE(*out != NULL, MW_E_CRYPTO, "cannot decode a public key");
    return MW_SUCCESS;
}

static mw_result wrap_file(EVP_PKEY *priv, struct mw_ca_key **out)
{
    enum mw_ca_key_type type;
    EVP_PKEY *pub = NULL;
    struct file_key *f = NULL;
    if (mw_failed(mw_ca_key_type_of(priv, &type)) || mw_failed(pub_of(priv, &pub))) {
        EVP_PKEY_free(priv);
        return MW_FAILURE;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        EVP_PKEY_free(priv);
        EVP_PKEY_free(pub);
        MW_BAIL(MW_E_NOMEM, "out of memory for a CA key");
    }
    f->priv = priv;
    pthread_mutex_init(&f->lock, NULL);
    f->sctx = EVP_PKEY_CTX_new(priv, NULL);
    if (f->sctx == NULL || EVP_PKEY_sign_init(f->sctx) != 1) {
        file_free(f);
        EVP_PKEY_free(pub);
        mw_error_openssl(MW_E_CRYPTO, "cannot set up signing with the CA key");
        return MW_FAILURE;
    }
    return mw_ca_key_wrap(&file_ops, f, type, pub, out);
}

mw_result mw_ca_key_load_file(const char *path, struct mw_ca_key **out)
{
    MW_GUARD(mw_file_check_private(path));
    mw_secmem_openssl_heap();
    struct mw_dynbuf pem;
    mw_dynbuf_init_secure(&pem, KEY_FILE_MAX);
    if (mw_failed(mw_file_read(path, KEY_FILE_MAX, &pem))) {
        mw_dynbuf_free(&pem);
        return MW_FAILURE;
    }
    EVP_PKEY *priv = NULL;
    BIO *bio = BIO_new_mem_buf(pem.p, (int)pem.n);
    if (bio != NULL)
        priv = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    mw_dynbuf_free(&pem);
    if (priv == NULL) {
        mw_error_openssl(MW_E_INPUT, "%s: not a PEM private key", path);
        return MW_FAILURE;
    }
    if (mw_failed(wrap_file(priv, out))) {
        mw_error_prefix("%s: ", path);
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

mw_result mw_ca_key_generate_file(enum mw_ca_key_type type, const char *path,
                                  struct mw_ca_key **out)
{
    mw_secmem_openssl_heap();
    EVP_PKEY *priv = EVP_EC_gen(type == MW_CA_KEY_EC_P384 ? "P-384" : "P-256");
    MW_ENSURE(priv != NULL, MW_E_CRYPTO, "cannot generate a %s key", mw_ca_key_type_name(type));
    struct mw_dynbuf pem;
    mw_dynbuf_init_secure(&pem, KEY_FILE_MAX);
    BIO *bio = BIO_new(BIO_s_secmem());
    BUF_MEM *mem = NULL;
    bool ok = bio != NULL && PEM_write_bio_PrivateKey(bio, priv, NULL, NULL, 0, NULL, NULL) == 1 &&
              BIO_get_mem_ptr(bio, &mem) == 1 && mw_ok(mw_dynbuf_add(&pem, mem->data, mem->length));
    BIO_free(bio);
    if (!ok) {
        mw_dynbuf_free(&pem);
        EVP_PKEY_free(priv);
        mw_error_openssl(MW_E_CRYPTO, "cannot encode the new key");
        return MW_FAILURE;
    }
    if (access(path, F_OK) == 0) {
        mw_dynbuf_free(&pem);
        EVP_PKEY_free(priv);
        MW_BAIL(MW_E_STATE, "%s exists; refusing to overwrite a key", path);
    }
    mw_result r = mw_file_write_atomic(path, mw_dynbuf_slice(&pem), 0600);
    mw_dynbuf_free(&pem);
    if (mw_failed(r)) {
        EVP_PKEY_free(priv);
        return r;
    }
    return wrap_file(priv, out);
}

/* ---------------------------------------------------------------- DER assembly */

static mw_result der_header(struct mw_dynbuf *b, uint8_t tag, size_t len)
{
    uint8_t h[6];
    size_t n = 0;
    h[n++] = tag;
    if (len < 0x80) {
        h[n++] = (uint8_t)len;
    } else if (len <= 0xff) {
        h[n++] = 0x81;
        h[n++] = (uint8_t)len;
    } else if (len <= 0xffff) {
        h[n++] = 0x82;
        h[n++] = (uint8_t)(len >> 8);
        h[n++] = (uint8_t)len;
    } else if (len <= 0xffffff) {
        h[n++] = 0x83;
        h[n++] = (uint8_t)(len >> 16);
        h[n++] = (uint8_t)(len >> 8);
        h[n++] = (uint8_t)len;
    } else {
        MW_BAIL(MW_E_LIMIT, "DER element of %zu bytes is too long", len);
    }
    return mw_dynbuf_add(b, h, n);
}

static size_t der_header_len(size_t len)
{
    return len < 0x80 ? 2 : len <= 0xff ? 3 : len <= 0xffff ? 4 : 5;
}

/* SEQUENCE { body, algid, BIT STRING { 0 unused bits, sig } } */
static mw_result assemble(mw_slice body, mw_slice algid, mw_slice sig, struct mw_dynbuf *out)
{
    size_t bits = 1 + sig.n;
    size_t inner = body.n + algid.n + der_header_len(bits) + bits;
    MW_GUARD(der_header(out, 0x30, inner));
    MW_GUARD(mw_dynbuf_add_slice(out, body));
    MW_GUARD(mw_dynbuf_add_slice(out, algid));
    MW_GUARD(der_header(out, 0x03, bits));
    MW_GUARD(mw_dynbuf_add_byte(out, 0));
    return mw_dynbuf_add_slice(out, sig);
}

/* Does sig verify over digest under k's public key? Catches a backend that signed wrongly. */
static mw_result check_sig(const struct mw_ca_key *k, const uint8_t *digest, size_t dlen,
                           mw_slice sig)
{
    struct mw_ca_key *mk = (struct mw_ca_key *)k; /* the lock is not part of the value */
    pthread_mutex_lock(&mk->vlock);
    int ok = EVP_PKEY_verify(mk->vctx, sig.p, sig.n, digest, dlen);
    pthread_mutex_unlock(&mk->vlock);
    if (ok != 1) {
        mw_error_openssl(MW_E_CRYPTO, "the %s key's signature does not verify under its public key",
                         k->ops->name);
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

/* Sign body DER, check the signature, and assemble the signed structure with algid DER. */
static mw_result sign_and_assemble(const struct mw_ca_key *k, const uint8_t *body, int body_len,
                                   X509_ALGOR *alg, struct mw_dynbuf *out)
{
    uint8_t *algid = NULL;
    int alen = i2d_X509_ALGOR(alg, &algid);
    MW_GUARD_OSSL(alen, MW_E_CRYPTO, "cannot encode the signature algorithm");
    mw_slice msg = mw_slice_make(body, (size_t)body_len);
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    struct mw_dynbuf sig;
    mw_dynbuf_init(&sig, 1024);
    mw_result r = digest_of(k, msg, digest, &dlen);
    if (mw_ok(r))
        r = k->ops->sign_digest(k->impl, digest, dlen, &sig);
    if (mw_ok(r))
        r = check_sig(k, digest, dlen, mw_dynbuf_slice(&sig));
    if (mw_ok(r))
        r = assemble(msg, mw_slice_make(algid, (size_t)alen), mw_dynbuf_slice(&sig), out);
    mw_dynbuf_free(&sig);
    OPENSSL_free(algid);
    return r;
}

mw_result mw_ca_sign_cert_der(const struct mw_ca_key *k, X509 *tbs, struct mw_dynbuf *der)
{
    int nid = sig_nid(k->type);
    /* RFC 5758 §3.2: ecdsa-with-SHA* take no parameters; both copies must match (§4.1.1.2). */
    X509_ALGOR *inner = (X509_ALGOR *)X509_get0_tbs_sigalg(tbs);
    MW_ENSURE(X509_ALGOR_set0(inner, OBJ_nid2obj(nid), V_ASN1_UNDEF, NULL) == 1, MW_E_CRYPTO,
              "cannot set the signature algorithm");
    uint8_t *body = NULL;
    int blen = i2d_re_X509_tbs(tbs, &body);
    MW_GUARD_OSSL(blen, MW_E_CRYPTO, "cannot encode the TBSCertificate");
    mw_result r = sign_and_assemble(k, body, blen, inner, der);
    OPENSSL_free(body);
    return r;
}

mw_result mw_ca_sign_cert(const struct mw_ca_key *k, X509 *tbs, X509 **out)
{
    struct mw_dynbuf der;
    mw_dynbuf_init(&der, 1 << 20);
    if (mw_failed(mw_ca_sign_cert_der(k, tbs, &der))) {
        mw_dynbuf_free(&der);
        return MW_FAILURE;
    }
    const uint8_t *p = der.p;
    X509 *cert = d2i_X509(NULL, &p, (long)der.n);
    bool whole = cert != NULL && p == der.p + der.n;
    mw_dynbuf_free(&der);
    if (!whole) {
        X509_free(cert);
        mw_error_openssl(MW_E_INTERNAL, "the assembled certificate does not parse");
        return MW_FAILURE;
    }
    if (X509_verify(cert, k->pub) != 1) {
        X509_free(cert);
        mw_error_openssl(MW_E_CRYPTO, "the %s key's signature on the certificate does not verify",
                         k->ops->name);
        return MW_FAILURE;
    }
    *out = cert;
    return MW_SUCCESS;
}

mw_result mw_ca_sign_req(const struct mw_ca_key *k, X509_REQ *req, X509_REQ **out)
{
    MW_DEFER(X509_ALGOR) X509_ALGOR *alg = X509_ALGOR_new();
    MW_ENSURE(alg != NULL, MW_E_NOMEM, "out of memory");
    MW_ENSURE(X509_ALGOR_set0(alg, OBJ_nid2obj(sig_nid(k->type)), V_ASN1_UNDEF, NULL) == 1,
              MW_E_CRYPTO, "cannot set the signature algorithm");
    uint8_t *body = NULL;
    int blen = i2d_re_X509_REQ_tbs(req, &body);
    MW_GUARD_OSSL(blen, MW_E_CRYPTO, "cannot encode the CertificationRequestInfo");
    struct mw_dynbuf der;
    mw_dynbuf_init(&der, 1 << 20);
    mw_result r = sign_and_assemble(k, body, blen, alg, &der);
    OPENSSL_free(body);
    if (mw_failed(r)) {
        mw_dynbuf_free(&der);
        return r;
    }
    const uint8_t *p = der.p;
    X509_REQ *signed_req = d2i_X509_REQ(NULL, &p, (long)der.n);
    bool whole = signed_req != NULL && p == der.p + der.n;
    mw_dynbuf_free(&der);
    if (!whole || X509_REQ_verify(signed_req, k->pub) != 1) {
        X509_REQ_free(signed_req);
        mw_error_openssl(MW_E_CRYPTO, "the signed CSR does not verify");
        return MW_FAILURE;
    }
    *out = signed_req;
    return MW_SUCCESS;
}
