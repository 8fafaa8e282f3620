/*
 * The PKCS#11 key backend. The module is loaded with dlopen (any path); the
 * private key is found by label (and CKA_ID) on the token with the given
 * label and used through C_Sign only: CKM_ECDSA over a digest computed here,
 * and the raw r || s the token returns (PKCS#11 v2.40 §2.3.1) converted to
 * the DER ECDSA-Sig-Value that X.509 carries. The private key never leaves
 * the token; keys made here are CKA_SENSITIVE and not CKA_EXTRACTABLE.
 *
 * A PKCS#11 session must not run two operations at once, so each key holds
 * its own session behind a mutex. Modules are shared between keys with a
 * reference count: C_Finalize is called only by the last user, and only when
 * meshward was the one that initialized the module.
 */
#include <dlfcn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_internal.h"

/* Last: p11-kit's compatibility macros rename common words (value, count, params). */
#include <p11-kit/pkcs11.h>

#define PIN_MAX   256
#define MAX_SLOTS 128

struct module {
    char path[512];
    void *dl;
    CK_FUNCTION_LIST_PTR fl;
    unsigned refs;
    bool finalize; /* we initialized it */
};

static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static struct module modules[8];

static const char *rv_name(CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
        return "CKR_OK";
    case CKR_PIN_INCORRECT:
        return "CKR_PIN_INCORRECT";
    case CKR_PIN_LOCKED:
        return "CKR_PIN_LOCKED";
    case CKR_USER_PIN_NOT_INITIALIZED:
        return "CKR_USER_PIN_NOT_INITIALIZED";
    case CKR_TOKEN_NOT_PRESENT:
        return "CKR_TOKEN_NOT_PRESENT";
    case CKR_KEY_HANDLE_INVALID:
        return "CKR_KEY_HANDLE_INVALID";
    case CKR_MECHANISM_INVALID:
        return "CKR_MECHANISM_INVALID";
    case CKR_KEY_TYPE_INCONSISTENT:
        return "CKR_KEY_TYPE_INCONSISTENT";
    case CKR_USER_NOT_LOGGED_IN:
        return "CKR_USER_NOT_LOGGED_IN";
    case CKR_DEVICE_ERROR:
        return "CKR_DEVICE_ERROR";
    case CKR_GENERAL_ERROR:
        return "CKR_GENERAL_ERROR";
    case CKR_ARGUMENTS_BAD:
        return "CKR_ARGUMENTS_BAD";
    case CKR_TEMPLATE_INCONSISTENT:
        return "CKR_TEMPLATE_INCONSISTENT";
    case CKR_ATTRIBUTE_VALUE_INVALID:
        return "CKR_ATTRIBUTE_VALUE_INVALID";
    case CKR_DOMAIN_PARAMS_INVALID:
        return "CKR_DOMAIN_PARAMS_INVALID";
    case CKR_CRYPTOKI_NOT_INITIALIZED:
        return "CKR_CRYPTOKI_NOT_INITIALIZED";
    default:
        return "an error";
    }
}

static void p11_fail(enum mw_err code, CK_RV rv, const char *fmt, ...) MW_PRINTF(3, 4);
static void p11_fail(enum mw_err code, CK_RV rv, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    mw_error_set(code, "PKCS#11 %s: %s (0x%lx)", what, rv_name(rv), (unsigned long)rv);
}

#define P11_CHECK(call, code, ...)              \
    do {                                        \
        CK_RV rv_ = (call);                     \
        if (rv_ != CKR_OK) {                    \
            p11_fail((code), rv_, __VA_ARGS__); \
            return MW_FAILURE;                  \
        }                                       \
    } while (0)

static void module_unref(struct module *m)
{
    pthread_mutex_lock(&modules_lock);
    if (m->refs > 0 && --m->refs == 0) {
        if (m->finalize)
            (void)m->fl->C_Finalize(NULL);
        dlclose(m->dl);
        memset(m, 0, sizeof(*m));
    }
    pthread_mutex_unlock(&modules_lock);
}

static mw_result module_load_locked(const char *path, struct module **out)
{
    struct module *free_slot = NULL;
    for (size_t i = 0; i < MW_ARRAY_LEN(modules); i++) {
        if (modules[i].refs > 0 && strcmp(modules[i].path, path) == 0) {
            modules[i].refs++;
            *out = &modules[i];
            return MW_SUCCESS;
        }
        if (modules[i].refs == 0 && free_slot == NULL)
            free_slot = &modules[i];
    }
    MW_ENSURE(free_slot != NULL, MW_E_LIMIT, "too many PKCS#11 modules loaded");
    MW_ENSURE(strlen(path) < sizeof(free_slot->path), MW_E_LIMIT,
              "PKCS#11 module path is too long");
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL)
        MW_BAIL(MW_E_NOTFOUND, "cannot load PKCS#11 module %s: %s", path, dlerror());
    CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR) = NULL;
    *(void **)&get = dlsym(dl, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR fl = NULL;
    if (get == NULL || get(&fl) != CKR_OK || fl == NULL) {
        dlclose(dl);
        MW_BAIL(MW_E_INPUT, "%s is not a PKCS#11 module (no C_GetFunctionList)", path);
    }
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = fl->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        dlclose(dl);
        MW_BAIL(MW_E_IO, "PKCS#11 module %s: C_Initialize failed: %s (0x%lx)", path, rv_name(rv),
                (unsigned long)rv);
    }
    memcpy(free_slot->path, path, strlen(path) + 1);
    free_slot->dl = dl;
    free_slot->fl = fl;
    free_slot->refs = 1;
    free_slot->finalize = rv == CKR_OK;
    *out = free_slot;
    return MW_SUCCESS;
}

static mw_result module_load(const char *path, struct module **out)
{
    pthread_mutex_lock(&modules_lock);
    mw_result r = module_load_locked(path, out);
    pthread_mutex_unlock(&modules_lock);
    return r;
}

/* The PIN into secure memory: a 0600 file (one line) or an environment variable. */
static mw_result read_pin(const struct mw_ca_pkcs11 *p, struct mw_dynbuf *pin)
{
    if (p->pin_file != NULL) {
        MW_GUARD(mw_file_check_private(p->pin_file));
        MW_GUARD(mw_file_read(p->pin_file, PIN_MAX, pin));
        while (pin->n > 0 && (pin->p[pin->n - 1] == '\n' || pin->p[pin->n - 1] == '\r'))
            pin->p[--pin->n] = '\0';
    } else if (p->pin_env != NULL) {
        const char *v = getenv(p->pin_env);
        MW_ENSURE(v != NULL, MW_E_NOTFOUND, "environment variable %s (the token PIN) is not set",
                  p->pin_env);
        MW_ENSURE(strlen(v) <= PIN_MAX, MW_E_LIMIT, "the token PIN in %s is too long", p->pin_env);
        MW_GUARD(mw_dynbuf_add_cstr(pin, v));
    } else {
        MW_BAIL(MW_E_INPUT, "a PKCS#11 key needs a PIN: give a PIN file or a PIN variable");
    }
    MW_ENSURE(pin->n > 0, MW_E_INPUT, "the token PIN is empty");
    return MW_SUCCESS;
}

/* CK_TOKEN_INFO.label is 32 bytes padded with spaces, not NUL-terminated. */
static bool label_eq(const unsigned char label[32], const char *want)
{
    size_t n = 32;
    while (n > 0 && (label[n - 1] == ' ' || label[n - 1] == '\0'))
        n--;
    return strlen(want) == n && memcmp(label, want, n) == 0;
}

static mw_result find_slot(struct module *m, const char *token_label, CK_SLOT_ID *out)
{
    CK_SLOT_ID slots[MAX_SLOTS];
    CK_ULONG n = MAX_SLOTS;
    P11_CHECK(m->fl->C_GetSlotList(CK_TRUE, slots, &n), MW_E_IO, "C_GetSlotList on %s", m->path);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (m->fl->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        if (label_eq(ti.label, token_label)) {
            *out = slots[i];
            return MW_SUCCESS;
        }
    }
    MW_BAIL(MW_E_NOTFOUND, "no token labelled \"%s\" in PKCS#11 module %s (%lu tokens present)",
            token_label, m->path, (unsigned long)n);
}

struct p11_key {
    struct module *m;
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE priv;
    size_t half; /* bytes of r (and of s) */
    pthread_mutex_t lock;
};

static void p11_free(void *impl)
{
    struct p11_key *k = impl;
    if (k == NULL)
        return;
    if (k->session != CK_INVALID_HANDLE)
        (void)k->m->fl->C_CloseSession(k->session);
    if (k->m != NULL)
        module_unref(k->m);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

/* ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } from PKCS#11's r || s. */
static mw_result raw_to_der(const uint8_t *rs, size_t half, struct mw_dynbuf *out)
{
    MW_DEFER(ECDSA_SIG) ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, (int)half, NULL);
    BIGNUM *s = BN_bin2bn(rs + half, (int)half, NULL);
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        MW_BAIL(MW_E_NOMEM, "out of memory for a signature");
    }
    int n = i2d_ECDSA_SIG(sig, NULL);
    MW_GUARD_OSSL(n, MW_E_CRYPTO, "cannot encode the token's signature");
    MW_GUARD(mw_dynbuf_reserve(out, (size_t)n));
    uint8_t *p = out->p + out->n;
    MW_GUARD_OSSL(i2d_ECDSA_SIG(sig, &p), MW_E_CRYPTO, "cannot encode the token's signature");
    out->n += (size_t)n;
    out->p[out->n] = '\0';
    return MW_SUCCESS;
}

static mw_result p11_sign_locked(struct p11_key *k, const uint8_t *digest, size_t len,
                                 struct mw_dynbuf *out)
{
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    P11_CHECK(k->m->fl->C_SignInit(k->session, &mech, k->priv), MW_E_CRYPTO,
              "C_SignInit(CKM_ECDSA)");
    uint8_t rs[2 * 66];
    CK_ULONG rslen = sizeof(rs);
    P11_CHECK(k->m->fl->C_Sign(k->session, (CK_BYTE_PTR)digest, len, rs, &rslen), MW_E_CRYPTO,
              "C_Sign");
    MW_ENSURE(rslen == 2 * k->half, MW_E_CRYPTO,
              "PKCS#11 token returned a %lu-byte ECDSA signature, want %zu", (unsigned long)rslen,
              2 * k->half);
    return raw_to_der(rs, k->half, out);
}

static mw_result p11_sign(void *impl, const uint8_t *digest, size_t len, struct mw_dynbuf *out)
{
    struct p11_key *k = impl;
    pthread_mutex_lock(&k->lock);
    mw_result r = p11_sign_locked(k, digest, len, out);
    pthread_mutex_unlock(&k->lock);
    return r;
}

static const struct mw_ca_key_ops p11_ops = {"pkcs11", p11_sign, p11_free};

/* DER OIDs of the curves (RFC 5480 §2.1.1.1), as CKA_EC_PARAMS holds them. */
static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

static mw_result get_attr(struct p11_key *k, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
                          uint8_t *buf, size_t cap, size_t *len, const char *what)
{
    CK_ATTRIBUTE a = {type, buf, cap};
    P11_CHECK(k->m->fl->C_GetAttributeValue(k->session, obj, &a, 1), MW_E_INPUT,
              "cannot read %s of the key", what);
    MW_ENSURE(a.ulValueLen != CK_UNAVAILABLE_INFORMATION && a.ulValueLen <= cap, MW_E_INPUT,
              "PKCS#11 key attribute %s is missing or too long", what);
    *len = a.ulValueLen;
    return MW_SUCCESS;
}

/* Objects of a class matching label (and id); at most cap handles. */
static mw_result find_objects(struct p11_key *k, CK_OBJECT_CLASS cls, const char *label,
                              const uint8_t *id, size_t id_len, CK_OBJECT_HANDLE *found,
                              CK_ULONG cap, CK_ULONG *n)
{
    CK_ATTRIBUTE tmpl[3];
    CK_ULONG nt = 0;
    tmpl[nt++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
    if (label != NULL)
        tmpl[nt++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    if (id != NULL)
        tmpl[nt++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, id_len};
    P11_CHECK(k->m->fl->C_FindObjectsInit(k->session, tmpl, nt), MW_E_IO, "C_FindObjectsInit");
    CK_RV rv = k->m->fl->C_FindObjects(k->session, found, cap, n);
    (void)k->m->fl->C_FindObjectsFinal(k->session);
    P11_CHECK(rv, MW_E_IO, "C_FindObjects");
    return MW_SUCCESS;
}

/* The public key of the pair: CKA_EC_PARAMS and CKA_EC_POINT of the public object. */
static mw_result public_key(struct p11_key *k, CK_OBJECT_HANDLE pubh, EVP_PKEY **out,
                            enum mw_ca_key_type *type)
{
    uint8_t ecp[64], point[256];
    size_t ecp_len = 0, point_len = 0;
    MW_GUARD(get_attr(k, pubh, CKA_EC_PARAMS, ecp, sizeof(ecp), &ecp_len, "CKA_EC_PARAMS"));
    MW_GUARD(get_attr(k, pubh, CKA_EC_POINT, point, sizeof(point), &point_len, "CKA_EC_POINT"));
    const char *group;
    if (ecp_len == sizeof(oid_p256) && memcmp(ecp, oid_p256, ecp_len) == 0) {
        *type = MW_CA_KEY_EC_P256;
        group = "P-256";
        k->half = 32;
    } else if (ecp_len == sizeof(oid_p384) && memcmp(ecp, oid_p384, ecp_len) == 0) {
        *type = MW_CA_KEY_EC_P384;
        group = "P-384";
        k->half = 48;
    } else {
        MW_BAIL(MW_E_UNSUPPORTED, "PKCS#11 key is on a curve meshward does not use (P-256, P-384)");
    }
    /*
     * v2.40 says CKA_EC_POINT is a DER OCTET STRING; some modules return the
     * bare point. An uncompressed point is 1 + 2 * half bytes starting 0x04.
     */
    const uint8_t *pt = point;
    size_t pt_len = point_len;
    if (point_len == 3 + 2 * k->half && point[0] == 0x04 && point[1] == 1 + 2 * k->half) {
        pt = point + 2;
        pt_len = point_len - 2;
    }
    MW_ENSURE(pt_len == 1 + 2 * k->half && pt[0] == 0x04, MW_E_INPUT,
              "PKCS#11 CKA_EC_POINT is not an uncompressed %s point", group);
    MW_DEFER(OSSL_PARAM_BLD) OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    MW_ENSURE(bld != NULL, MW_E_NOMEM, "out of memory");
    MW_GUARD_OSSL(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
                  MW_E_CRYPTO, "cannot build the public key");
    MW_GUARD_OSSL(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, pt_len),
                  MW_E_CRYPTO, "cannot build the public key");
    MW_DEFER(OSSL_PARAM) OSSL_PARAM *prm = OSSL_PARAM_BLD_to_param(bld);
    MW_DEFER(EVP_PKEY_CTX) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    MW_ENSURE(prm != NULL && ctx != NULL, MW_E_NOMEM, "out of memory");
    MW_GUARD_OSSL(EVP_PKEY_fromdata_init(ctx), MW_E_CRYPTO, "cannot build the public key");
    EVP_PKEY *pub = NULL;
    MW_GUARD_OSSL(EVP_PKEY_fromdata(ctx, &pub, EVP_PKEY_PUBLIC_KEY, prm), MW_E_INPUT,
                  "the token's EC public key is not a valid %s point", group);
    *out = pub;
    return MW_SUCCESS;
}

static mw_result hex_id(const char *hex, struct mw_dynbuf *id)
{
    if (hex == NULL)
        return MW_SUCCESS;
    MW_GUARD(mw_hex_decode(mw_slice_cstr(hex), id));
    MW_ENSURE(id->n > 0, MW_E_INPUT, "the PKCS#11 key ID is empty");
    return MW_SUCCESS;
}

/* Load the module, open a R/W session on the token and log in as the user. */
static mw_result session_open(const struct mw_ca_pkcs11 *p, struct p11_key *k)
{
    MW_ENSURE(p->module != NULL && p->token_label != NULL && p->key_label != NULL, MW_E_INPUT,
              "a PKCS#11 key needs a module, a token label and a key label");
    struct mw_dynbuf pin;
    mw_dynbuf_init_secure(&pin, PIN_MAX + 1);
    if (mw_failed(read_pin(p, &pin))) {
        mw_dynbuf_free(&pin);
        return MW_FAILURE;
    }
    mw_result r = module_load(p->module, &k->m);
    CK_SLOT_ID slot = 0;
    if (mw_ok(r))
        r = find_slot(k->m, p->token_label, &slot);
    if (mw_ok(r)) {
        CK_RV rv = k->m->fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                           &k->session);
        if (rv != CKR_OK) {
            k->session = CK_INVALID_HANDLE;
            mw_error_set(MW_E_IO, "PKCS#11 C_OpenSession on token \"%s\": %s (0x%lx)",
                         p->token_label, rv_name(rv), (unsigned long)rv);
            r = MW_FAILURE;
        }
    }
    if (mw_ok(r)) {
        CK_RV rv = k->m->fl->C_Login(k->session, CKU_USER, pin.p, pin.n);
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
            mw_error_set(rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED ? MW_E_PERM : MW_E_IO,
                         "PKCS#11 login to token \"%s\" failed: %s (0x%lx)", p->token_label,
                         rv_name(rv), (unsigned long)rv);
            r = MW_FAILURE;
        }
    }
    mw_dynbuf_free(&pin);
    return r;
}

static struct p11_key *p11_new(void)
{
    struct p11_key *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->session = CK_INVALID_HANDLE;
    pthread_mutex_init(&k->lock, NULL);
    return k;
}

mw_result mw_ca_key_open_pkcs11(const struct mw_ca_pkcs11 *p, struct mw_ca_key **out)
{
    struct p11_key *k = p11_new();
    MW_ENSURE(k != NULL, MW_E_NOMEM, "out of memory for a PKCS#11 key");
    struct mw_dynbuf id;
    mw_dynbuf_init(&id, 128);
    EVP_PKEY *pub = NULL;
    enum mw_ca_key_type type = MW_CA_KEY_EC_P256;
    CK_OBJECT_HANDLE found[2], pubs[2];
    CK_ULONG n = 0, npub = 0;
    mw_result r = hex_id(p->key_id_hex, &id);
    if (mw_ok(r))
        r = session_open(p, k);
    if (mw_ok(r))
        r = find_objects(k, CKO_PRIVATE_KEY, p->key_label, p->key_id_hex ? id.p : NULL, id.n, found,
                         2, &n);
    if (mw_ok(r) && n != 1) {
        mw_error_set(n == 0 ? MW_E_NOTFOUND : MW_E_INPUT,
                     n == 0 ? "no private key labelled \"%s\" on token \"%s\""
                            : "more than one private key labelled \"%s\" on token \"%s\"; "
                              "give the key ID",
                     p->key_label, p->token_label);
        r = MW_FAILURE;
    }
    if (mw_ok(r)) {
        k->priv = found[0];
        CK_KEY_TYPE kt = 0;
        CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof(kt)};
        if (k->m->fl->C_GetAttributeValue(k->session, k->priv, &a, 1) != CKR_OK || kt != CKK_EC) {
            mw_error_set(MW_E_UNSUPPORTED,
                         "PKCS#11 key \"%s\" is not an EC key; meshward CA keys are ECDSA",
                         p->key_label);
            r = MW_FAILURE;
        }
    }
    if (mw_ok(r))
        r = find_objects(k, CKO_PUBLIC_KEY, p->key_label, p->key_id_hex ? id.p : NULL, id.n, pubs,
                         2, &npub);
    if (mw_ok(r) && npub != 1) {
        mw_error_set(MW_E_NOTFOUND, "no single public key labelled \"%s\" on token \"%s\"",
                     p->key_label, p->token_label);
        r = MW_FAILURE;
    }
    if (mw_ok(r))
        r = public_key(k, pubs[0], &pub, &type);
    mw_dynbuf_free(&id);
    if (mw_failed(r)) {
        p11_free(k);
        return r;
    }
    return mw_ca_key_wrap(&p11_ops, k, type, pub, out);
}

mw_result mw_ca_key_generate_pkcs11(const struct mw_ca_pkcs11 *p, enum mw_ca_key_type type,
                                    struct mw_ca_key **out)
{
    struct p11_key *k = p11_new();
    MW_ENSURE(k != NULL, MW_E_NOMEM, "out of memory for a PKCS#11 key");
    struct mw_dynbuf id;
    mw_dynbuf_init(&id, 128);
    mw_result r = hex_id(p->key_id_hex, &id);
    if (mw_ok(r) && p->key_id_hex == NULL) {
        uint8_t rnd[16];
        r = RAND_bytes(rnd, sizeof(rnd)) == 1 ? mw_dynbuf_add(&id, rnd, sizeof(rnd)) : MW_FAILURE;
    }
    if (mw_ok(r))
        r = session_open(p, k);
    CK_OBJECT_HANDLE found[1];
    CK_ULONG n = 0, n2 = 0;
    if (mw_ok(r))
        r = find_objects(k, CKO_PRIVATE_KEY, p->key_label, NULL, 0, found, 1, &n);
    if (mw_ok(r))
        r = find_objects(k, CKO_PUBLIC_KEY, p->key_label, NULL, 0, found, 1, &n2);
    if (mw_ok(r) && n + n2 > 0) {
        mw_error_set(MW_E_STATE, "token \"%s\" already holds a key labelled \"%s\"", p->token_label,
                     p->key_label);
        r = MW_FAILURE;
    }
    CK_OBJECT_HANDLE pubh = CK_INVALID_HANDLE, privh = CK_INVALID_HANDLE;
    if (mw_ok(r)) {
        CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
        const uint8_t *ecp = type == MW_CA_KEY_EC_P384 ? oid_p384 : oid_p256;
        size_t ecp_len = type == MW_CA_KEY_EC_P384 ? sizeof(oid_p384) : sizeof(oid_p256);
        size_t llen = strlen(p->key_label);
        CK_ATTRIBUTE pub_t[] = {
            {CKA_EC_PARAMS, (void *)ecp, ecp_len},   {CKA_TOKEN, &yes, 1}, {CKA_VERIFY, &yes, 1},
            {CKA_LABEL, (void *)p->key_label, llen}, {CKA_ID, id.p, id.n},
        };
        CK_ATTRIBUTE priv_t[] = {
            {CKA_TOKEN, &yes, 1},     {CKA_PRIVATE, &yes, 1},
            {CKA_SENSITIVE, &yes, 1}, {CKA_EXTRACTABLE, &no, 1},
            {CKA_SIGN, &yes, 1},      {CKA_DERIVE, &no, 1},
            {CKA_DECRYPT, &no, 1},    {CKA_LABEL, (void *)p->key_label, llen},
            {CKA_ID, id.p, id.n},
        };
        CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
        CK_RV rv = k->m->fl->C_GenerateKeyPair(k->session, &mech, pub_t, MW_ARRAY_LEN(pub_t),
                                               priv_t, MW_ARRAY_LEN(priv_t), &pubh, &privh);
        if (rv != CKR_OK) {
            mw_error_set(MW_E_IO, "PKCS#11 C_GenerateKeyPair(%s) on token \"%s\": %s (0x%lx)",
                         mw_ca_key_type_name(type), p->token_label, rv_name(rv), (unsigned long)rv);
            r = MW_FAILURE;
        }
    }
    EVP_PKEY *pub = NULL;
    enum mw_ca_key_type got = type;
    if (mw_ok(r)) {
        k->priv = privh;
        r = public_key(k, pubh, &pub, &got);
    }
    mw_dynbuf_free(&id);
    if (mw_failed(r)) {
        p11_free(k);
        return r;
    }
    return mw_ca_key_wrap(&p11_ops, k, got, pub, out);
}
