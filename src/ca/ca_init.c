/*
 * The CA directory: making a root and an intermediate (or an intermediate
 * CSR for an offline root), ca.yaml, the trust bundle, and opening it all
 * again. Also the certificate helpers the rest of the part shares.
 */
#include <errno.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <meshward/conf.h>
#include <meshward/spiffe.h>

#include "ca/ca_internal.h"

#define YEAR       (365 * 86400LL)
#define CLOCK_SKEW 10

/* ---------------------------------------------------------------- certificate helpers */

mw_result mw_ca_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : cert, cert, NULL, NULL, 0);
    MW_DEFER(X509_EXTENSION) X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    MW_ENSURE(ext != NULL, MW_E_CRYPTO, "cannot make extension %s = %s", OBJ_nid2sn(nid), value);
    MW_GUARD_OSSL(X509_add_ext(cert, ext, -1), MW_E_CRYPTO, "cannot add extension %s",
                  OBJ_nid2sn(nid));
    return MW_SUCCESS;
}

mw_result mw_ca_random_serial(X509 *cert)
{
    uint8_t r[16];
    MW_DEFER(BIGNUM) BIGNUM *bn = NULL;
    do {
        MW_GUARD_OSSL(RAND_bytes(r, sizeof(r)), MW_E_CRYPTO, "no randomness for a serial");
        BN_free(bn);
        bn = BN_bin2bn(r, sizeof(r), NULL);
        MW_ENSURE(bn != NULL, MW_E_NOMEM, "out of memory");
    } while (BN_is_zero(bn));
    MW_DEFER(ASN1_INTEGER) ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
    MW_ENSURE(ai != NULL, MW_E_NOMEM, "out of memory");
    MW_GUARD_OSSL(X509_set_serialNumber(cert, ai), MW_E_CRYPTO, "cannot set the serial");
    return MW_SUCCESS;
}

mw_result mw_ca_set_validity(X509 *cert, int64_t nb, int64_t na)
{
    MW_ENSURE(ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)nb) != NULL &&
                  ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)na) != NULL,
              MW_E_CRYPTO, "cannot set the validity");
    return MW_SUCCESS;
}

static mw_result asn1_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    MW_GUARD_OSSL(ASN1_TIME_to_tm(t, &tm), MW_E_INPUT, "bad certificate time");
    *out = (int64_t)timegm(&tm);
    return MW_SUCCESS;
}

mw_result mw_ca_cert_times(const X509 *cert, int64_t *nb, int64_t *na)
{
    MW_GUARD(asn1_unix(X509_get0_notBefore(cert), nb));
    return asn1_unix(X509_get0_notAfter(cert), na);
}

mw_result mw_ca_cert_pem(X509 *cert, struct mw_dynbuf *out)
{
    MW_DEFER(BIO) BIO *bio = BIO_new(BIO_s_mem());
    MW_ENSURE(bio != NULL, MW_E_NOMEM, "out of memory");
    MW_GUARD_OSSL(PEM_write_bio_X509(bio, cert), MW_E_CRYPTO, "cannot write PEM");
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    return mw_dynbuf_add(out, p, (size_t)n);
}

mw_result mw_ca_check_signed_by(X509 *cert, X509 *issuer)
{
    EVP_PKEY *pub = X509_get0_pubkey(issuer);
    MW_ENSURE(pub != NULL && X509_verify(cert, pub) == 1, MW_E_VERIFY,
              "certificate does not verify under its issuer's key");
    return MW_SUCCESS;
}

static mw_result name_for(X509_NAME **out, const char *td, const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    MW_ENSURE(n != NULL, MW_E_NOMEM, "out of memory");
    bool ok = X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const uint8_t *)"meshward", -1, -1,
                                         0) == 1;
    /* ub-organizational-unit-name is 64: longer trust domains are only in the URI SAN. */
    if (ok && strlen(td) <= 64)
        ok =
            X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_UTF8, (const uint8_t *)td, -1, -1, 0) == 1;
    if (ok)
        ok =
            X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const uint8_t *)cn, -1, -1, 0) == 1;
    if (!ok) {
        X509_NAME_free(n);
        mw_error_openssl(MW_E_CRYPTO, "cannot build the name CN=%s", cn);
        return MW_FAILURE;
    }
    *out = n;
    return MW_SUCCESS;
}

static mw_result make_root(const struct mw_ca *ca, const struct mw_ca_key *key, int64_t now,
                           X509 **out)
{
    MW_DEFER(X509) X509 *x = X509_new();
    MW_ENSURE(x != NULL, MW_E_NOMEM, "out of memory");
    MW_DEFER(X509_NAME) X509_NAME *name = NULL;
    MW_GUARD(name_for(&name, ca->td, "meshward root CA"));
    char san[300];
    snprintf(san, sizeof(san), "URI:spiffe://%s", ca->td);
    MW_GUARD_OSSL(X509_set_version(x, X509_VERSION_3), MW_E_CRYPTO, "cannot set version");
    MW_GUARD(mw_ca_random_serial(x));
    MW_GUARD_OSSL(X509_set_subject_name(x, name), MW_E_CRYPTO, "cannot set subject");
    MW_GUARD_OSSL(X509_set_issuer_name(x, name), MW_E_CRYPTO, "cannot set issuer");
    MW_GUARD(mw_ca_set_validity(x, now - CLOCK_SKEW, now + ca->root_ttl));
    MW_GUARD_OSSL(X509_set_pubkey(x, mw_ca_key_pub(key)), MW_E_CRYPTO, "cannot set key");
    MW_GUARD(mw_ca_add_ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE"));
    MW_GUARD(mw_ca_add_ext(x, NULL, NID_key_usage, "critical,keyCertSign,cRLSign"));
    MW_GUARD(mw_ca_add_ext(x, NULL, NID_subject_key_identifier, "hash"));
    MW_GUARD(mw_ca_add_ext(x, NULL, NID_subject_alt_name, san));
    return mw_ca_sign_cert(key, x, out);
}

mw_result mw_ca_make_intermediate(const struct mw_ca *ca, X509 *root,
                                  const struct mw_ca_key *root_key, EVP_PKEY *pub, int id,
                                  int64_t now, int64_t ttl, X509 **out)
{
    int64_t root_nb, root_na;
    MW_GUARD(mw_ca_cert_times(root, &root_nb, &root_na));
    MW_ENSURE(now < root_na, MW_E_EXPIRED, "the root CA expired; rotate the root first");
    int64_t nb = now - CLOCK_SKEW < root_nb ? root_nb : now - CLOCK_SKEW;
    int64_t na = now + ttl > root_na ? root_na : now + ttl;
    MW_DEFER(X509) X509 *x = X509_new();
    MW_ENSURE(x != NULL, MW_E_NOMEM, "out of memory");
    char cn[64], san[300], nc[300];
    if (id > 0)
        snprintf(cn, sizeof(cn), "meshward intermediate CA %d", id);
    else
        snprintf(cn, sizeof(cn), "meshward intermediate CA");
    snprintf(san, sizeof(san), "URI:spiffe://%s", ca->td);
    /* RFC 5280 §4.2.1.10: a URI constraint names the host; this one admits only the trust domain.
     */
    snprintf(nc, sizeof(nc), "critical,permitted;URI:%s", ca->td);
    MW_DEFER(X509_NAME) X509_NAME *name = NULL;
    MW_GUARD(name_for(&name, ca->td, cn));
    MW_GUARD_OSSL(X509_set_version(x, X509_VERSION_3), MW_E_CRYPTO, "cannot set version");
    MW_GUARD(mw_ca_random_serial(x));
    MW_GUARD_OSSL(X509_set_subject_name(x, name), MW_E_CRYPTO, "cannot set subject");
    MW_GUARD_OSSL(X509_set_issuer_name(x, X509_get_subject_name(root)), MW_E_CRYPTO,
                  "cannot set issuer");
    MW_GUARD(mw_ca_set_validity(x, nb, na));
    MW_GUARD_OSSL(X509_set_pubkey(x, pub), MW_E_CRYPTO, "cannot set key");
    MW_GUARD(mw_ca_add_ext(x, root, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
    MW_GUARD(mw_ca_add_ext(x, root, NID_key_usage, "critical,keyCertSign,cRLSign"));
    MW_GUARD(mw_ca_add_ext(x, root, NID_subject_key_identifier, "hash"));
    MW_GUARD(mw_ca_add_ext(x, root, NID_authority_key_identifier, "keyid:always"));
    MW_GUARD(mw_ca_add_ext(x, root, NID_name_constraints, nc));
    MW_GUARD(mw_ca_add_ext(x, root, NID_subject_alt_name, san));
    return mw_ca_sign_cert(root_key, x, out);
}

/* ---------------------------------------------------------------- files and paths */

static mw_result join(const struct mw_ca *ca, const char *file, char *buf, size_t len)
{
    int n = file[0] == '/' ? snprintf(buf, len, "%s", file)
                           : snprintf(buf, len, "%s/%s", ca->dir, file);
    MW_ENSURE(n > 0 && (size_t)n < len, MW_E_LIMIT, "path %s/%s is too long", ca->dir, file);
    return MW_SUCCESS;
}

static mw_result write_cert(const struct mw_ca *ca, const char *file, X509 *cert)
{
    char path[1600];
    MW_GUARD(join(ca, file, path, sizeof(path)));
    struct mw_dynbuf pem;
    mw_dynbuf_init(&pem, 1 << 20);
    mw_result r = mw_ca_cert_pem(cert, &pem);
    if (mw_ok(r))
        r = mw_file_write_atomic(path, mw_dynbuf_slice(&pem), 0644);
    mw_dynbuf_free(&pem);
    return r;
}

static mw_result read_cert(const struct mw_ca *ca, const char *file, X509 **out)
{
    char path[1600];
    MW_GUARD(join(ca, file, path, sizeof(path)));
    struct mw_dynbuf pem;
    mw_dynbuf_init(&pem, 1 << 20);
    MW_GUARD(mw_file_read(path, 1 << 20, &pem));
    BIO *bio = BIO_new_mem_buf(pem.p, (int)pem.n);
    X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    mw_dynbuf_free(&pem);
    if (x == NULL) {
        mw_error_openssl(MW_E_INPUT, "%s: not a PEM certificate", path);
        return MW_FAILURE;
    }
    *out = x;
    return MW_SUCCESS;
}

static void set_str(char *dst, size_t cap, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

mw_result mw_ca_keyref_open(const struct mw_ca *ca, const struct mw_ca_keyref *ref,
                            struct mw_ca_key **out)
{
    if (ref->file[0] != '\0') {
        char path[1600];
        MW_GUARD(join(ca, ref->file, path, sizeof(path)));
        return mw_ca_key_load_file(path, out);
    }
    MW_ENSURE(ref->module[0] != '\0', MW_E_STATE, "no key configured");
    struct mw_ca_pkcs11 p = {
        .module = ref->module,
        .token_label = ref->token,
        .key_label = ref->label,
        .key_id_hex = ref->id_hex[0] ? ref->id_hex : NULL,
        .pin_file = ref->pin_file[0] ? ref->pin_file : NULL,
        .pin_env = ref->pin_env[0] ? ref->pin_env : NULL,
    };
    if (ca->pin_file_override != NULL || ca->pin_env_override != NULL) {
        p.pin_file = ca->pin_file_override;
        p.pin_env = ca->pin_env_override;
    }
    return mw_ca_key_open_pkcs11(&p, out);
}

/* A key for a new certificate: a file beside ca.yaml, or on the root's token. */
static mw_result new_key(struct mw_ca *ca, const char *name, struct mw_ca_keyref *ref,
                         struct mw_ca_key **out)
{
    if (ref->module[0] != '\0') {
        struct mw_ca_pkcs11 p = {
            .module = ref->module,
            .token_label = ref->token,
            .key_label = ref->label,
            .pin_file = ref->pin_file[0] ? ref->pin_file : ca->pin_file_override,
            .pin_env = ref->pin_env[0] ? ref->pin_env : ca->pin_env_override,
        };
        MW_GUARD(mw_ca_key_generate_pkcs11(&p, ca->key_type, out));
        return MW_SUCCESS;
    }
    char path[1600];
    snprintf(ref->file, sizeof(ref->file), "%s.key", name);
    MW_GUARD(join(ca, ref->file, path, sizeof(path)));
    return mw_ca_key_generate_file(ca->key_type, path, out);
}

/* "<prefix>-root" or "<prefix>-intermediate-<n>" -> "<prefix>". */
static void label_prefix(const char *label, char *out, size_t cap)
{
    set_str(out, cap, label);
    size_t n = strlen(out);
    if (n >= 5 && strcmp(out + n - 5, "-root") == 0) {
        out[n - 5] = '\0';
        return;
    }
    char *cut = strstr(out, "-intermediate-");
    if (cut != NULL)
        *cut = '\0';
}

mw_result mw_ca_new_slot_key(struct mw_ca *ca, int id, struct mw_ca_keyref *ref,
                             struct mw_ca_key **out)
{
    char name[64];
    snprintf(name, sizeof(name), "intermediate-%d", id);
    memset(ref, 0, sizeof(*ref));
    /* New keys go where the others are: the root's token, or an intermediate's. */
    const struct mw_ca_keyref *tmpl = ca->root_keyref.module[0] != '\0' ? &ca->root_keyref : NULL;
    for (size_t i = 0; tmpl == NULL && i < ca->nslots; i++)
        if (ca->slots[i].keyref.module[0] != '\0')
            tmpl = &ca->slots[i].keyref;
    if (tmpl != NULL) {
        *ref = *tmpl;
        ref->id_hex[0] = '\0';
        char prefix[128];
        label_prefix(tmpl->label, prefix, sizeof(prefix));
        snprintf(ref->label, sizeof(ref->label), "%.64s-%.32s", prefix, name);
    }
    return new_key(ca, name, ref, out);
}

struct mw_ca_slot *mw_ca_active_slot(struct mw_ca *ca)
{
    for (size_t i = 0; i < ca->nslots; i++)
        if (ca->slots[i].state == MW_CA_SLOT_ACTIVE)
            return &ca->slots[i];
    return NULL;
}

/* ---------------------------------------------------------------- ca.yaml */

const char *mw_ca_slot_state_name(enum mw_ca_slot_state s)
{
    switch (s) {
    case MW_CA_SLOT_PENDING:
        return "pending";
    case MW_CA_SLOT_PREPARED:
        return "prepared";
    case MW_CA_SLOT_ACTIVE:
        return "active";
    case MW_CA_SLOT_OLD:
        return "old";
    }
    return "unknown";
}

static mw_result kv(struct mw_dynbuf *b, int indent, const char *key, const char *val)
{
    MW_GUARD(mw_dynbuf_addf(b, "%*s%s: ", indent, "", key));
    MW_GUARD(mw_dynbuf_add_json_str(b, mw_slice_cstr(val)));
    return mw_dynbuf_add_byte(b, '\n');
}

static mw_result write_keyref(struct mw_dynbuf *b, int indent, const struct mw_ca_keyref *r)
{
    if (r->file[0] == '\0' && r->module[0] == '\0')
        return MW_SUCCESS;
    MW_GUARD(mw_dynbuf_addf(b, "%*skey:\n", indent, ""));
    if (r->file[0] != '\0')
        return kv(b, indent + 2, "file", r->file);
    MW_GUARD(mw_dynbuf_addf(b, "%*spkcs11:\n", indent + 2, ""));
    MW_GUARD(kv(b, indent + 4, "module", r->module));
    MW_GUARD(kv(b, indent + 4, "token", r->token));
    MW_GUARD(kv(b, indent + 4, "label", r->label));
    if (r->id_hex[0])
        MW_GUARD(kv(b, indent + 4, "id", r->id_hex));
    if (r->pin_file[0])
        MW_GUARD(kv(b, indent + 4, "pin_file", r->pin_file));
    if (r->pin_env[0])
        MW_GUARD(kv(b, indent + 4, "pin_env", r->pin_env));
    return MW_SUCCESS;
}

mw_result mw_ca_save_config(const struct mw_ca *ca)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1 << 20);
    mw_result r = mw_dynbuf_addf(
        &b,
        "# meshward CA: written by `meshward ca init`, updated by `meshward ca rotate`.\n"
        "# Times are seconds. Keys are files (mode 0600) beside this file or PKCS#11 objects.\n");
    if (mw_ok(r))
        r = kv(&b, 0, "trust_domain", ca->td);
    if (mw_ok(r))
        r = kv(&b, 0, "key_type", mw_ca_key_type_name(ca->key_type));
    if (mw_ok(r))
        r = mw_dynbuf_addf(&b,
                           "root_ttl: %lld\nintermediate_ttl: %lld\nsvid_default_ttl: %lld\n"
                           "svid_max_ttl: %lld\nbundle_sequence: %llu\nroot:\n",
                           (long long)ca->root_ttl, (long long)ca->intermediate_ttl,
                           (long long)ca->default_ttl, (long long)ca->max_ttl,
                           (unsigned long long)ca->bundle_sequence);
    if (mw_ok(r))
        r = kv(&b, 2, "cert", ca->root_cert_file);
    if (mw_ok(r))
        r = write_keyref(&b, 2, &ca->root_keyref);
    if (mw_ok(r))
        r = mw_dynbuf_addf(&b, "intermediates:\n");
    for (size_t i = 0; i < ca->nslots && mw_ok(r); i++) {
        const struct mw_ca_slot *s = &ca->slots[i];
        r = mw_dynbuf_addf(&b, "  - id: %d\n", s->id);
        if (mw_ok(r))
            r = kv(&b, 4, "state", mw_ca_slot_state_name(s->state));
        if (mw_ok(r))
            r = kv(&b, 4, "cert", s->cert_file);
        if (mw_ok(r))
            r = write_keyref(&b, 4, &s->keyref);
    }
    if (mw_ok(r))
        r = mw_file_write_atomic(ca->config_path, mw_dynbuf_slice(&b), 0644);
    mw_dynbuf_free(&b);
    return r;
}

static mw_result get_str(const struct mw_node *map, const char *key, bool required, char *dst,
                         size_t cap)
{
    const struct mw_node *n = mw_node_get(map, key);
    if (n == NULL) {
        if (required) {
            mw_node_error(map, MW_E_INPUT, "missing \"%s\"", key);
            return MW_FAILURE;
        }
        dst[0] = '\0';
        return MW_SUCCESS;
    }
    const char *s = mw_node_str(n);
    if (s == NULL || strlen(s) >= cap) {
        mw_node_error(n, MW_E_INPUT, "\"%s\" must be a string shorter than %zu bytes", key, cap);
        return MW_FAILURE;
    }
    set_str(dst, cap, s);
    return MW_SUCCESS;
}

static mw_result get_secs(const struct mw_node *map, const char *key, int64_t def, int64_t *out)
{
    const struct mw_node *n = mw_node_get(map, key);
    if (n == NULL) {
        *out = def;
        return MW_SUCCESS;
    }
    if (mw_ok(mw_node_i64(n, 1, 100 * YEAR, out)))
        return MW_SUCCESS;
    uint64_t v;
    if (mw_node_str(n) != NULL && mw_ok(mw_parse_duration(mw_node_slice(n), 100 * YEAR, key, &v)) &&
        v > 0) {
        *out = (int64_t)v;
        return MW_SUCCESS;
    }
    mw_node_error(n, MW_E_INPUT, "\"%s\" must be seconds or a duration like 1h", key);
    return MW_FAILURE;
}

static mw_result get_keyref(const struct mw_node *parent, struct mw_ca_keyref *r)
{
    memset(r, 0, sizeof(*r));
    const struct mw_node *k = mw_node_get(parent, "key");
    if (k == NULL)
        return MW_SUCCESS;
    MW_GUARD(get_str(k, "file", false, r->file, sizeof(r->file)));
    const struct mw_node *p = mw_node_get(k, "pkcs11");
    if (p != NULL) {
        MW_GUARD(get_str(p, "module", true, r->module, sizeof(r->module)));
        MW_GUARD(get_str(p, "token", true, r->token, sizeof(r->token)));
        MW_GUARD(get_str(p, "label", true, r->label, sizeof(r->label)));
        MW_GUARD(get_str(p, "id", false, r->id_hex, sizeof(r->id_hex)));
        MW_GUARD(get_str(p, "pin_file", false, r->pin_file, sizeof(r->pin_file)));
        MW_GUARD(get_str(p, "pin_env", false, r->pin_env, sizeof(r->pin_env)));
    }
    if ((r->file[0] != '\0') == (p != NULL)) {
        mw_node_error(k, MW_E_INPUT, "a key is either \"file\" or \"pkcs11\"");
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

static mw_result parse_config(struct mw_ca *ca, const struct mw_node *root)
{
    MW_ENSURE(mw_node_kind(root) == MW_NODE_MAP, MW_E_INPUT, "%s: not a mapping", ca->config_path);
    MW_GUARD(get_str(root, "trust_domain", true, ca->td, sizeof(ca->td)));
    char td[MW_SPIFFE_TD_MAX + 1];
    MW_GUARD(mw_spiffe_td_parse(mw_slice_cstr(ca->td), td));
    char kt[32];
    MW_GUARD(get_str(root, "key_type", false, kt, sizeof(kt)));
    ca->key_type = MW_CA_KEY_EC_P256;
    if (kt[0])
        MW_GUARD(mw_ca_key_type_parse(kt, &ca->key_type));
    MW_GUARD(get_secs(root, "root_ttl", 10 * YEAR, &ca->root_ttl));
    MW_GUARD(get_secs(root, "intermediate_ttl", YEAR, &ca->intermediate_ttl));
    MW_GUARD(get_secs(root, "svid_default_ttl", 3600, &ca->default_ttl));
    MW_GUARD(get_secs(root, "svid_max_ttl", 86400, &ca->max_ttl));
    int64_t seq = 0;
    const struct mw_node *sq = mw_node_get(root, "bundle_sequence");
    if (sq != NULL)
        MW_GUARD(mw_node_i64(sq, 0, INT64_MAX, &seq));
    ca->bundle_sequence = (uint64_t)seq;
    const struct mw_node *rt = mw_node_get(root, "root");
    MW_ENSURE(mw_node_kind(rt) == MW_NODE_MAP, MW_E_INPUT, "%s: \"root\" is missing",
              ca->config_path);
    MW_GUARD(get_str(rt, "cert", false, ca->root_cert_file, sizeof(ca->root_cert_file)));
    MW_GUARD(get_keyref(rt, &ca->root_keyref));
    const struct mw_node *ints = mw_node_get(root, "intermediates");
    MW_ENSURE(mw_node_kind(ints) == MW_NODE_SEQ, MW_E_INPUT, "%s: \"intermediates\" must be a list",
              ca->config_path);
    MW_ENSURE(mw_node_len(ints) <= MW_CA_MAX_SLOTS, MW_E_LIMIT,
              "%s: more than %d intermediates; remove expired ones", ca->config_path,
              MW_CA_MAX_SLOTS);
    size_t active = 0;
    for (size_t i = 0; i < mw_node_len(ints); i++) {
        const struct mw_node *it = mw_node_item(ints, i);
        struct mw_ca_slot *s = &ca->slots[ca->nslots];
        int64_t id;
        MW_GUARD(mw_node_i64(mw_node_get(it, "id"), 1, 1000000, &id));
        s->id = (int)id;
        char st[16];
        MW_GUARD(get_str(it, "state", true, st, sizeof(st)));
        if (strcmp(st, "pending") == 0)
            s->state = MW_CA_SLOT_PENDING;
        else if (strcmp(st, "prepared") == 0)
            s->state = MW_CA_SLOT_PREPARED;
        else if (strcmp(st, "active") == 0)
            s->state = MW_CA_SLOT_ACTIVE;
        else if (strcmp(st, "old") == 0)
            s->state = MW_CA_SLOT_OLD;
        else {
            mw_node_error(mw_node_get(it, "state"), MW_E_INPUT,
                          "state \"%s\" is not pending, prepared, active or old", st);
            return MW_FAILURE;
        }
        active += s->state == MW_CA_SLOT_ACTIVE;
        MW_GUARD(get_str(it, "cert", false, s->cert_file, sizeof(s->cert_file)));
        MW_GUARD(get_keyref(it, &s->keyref));
        ca->nslots++;
    }
    MW_ENSURE(active <= 1, MW_E_INPUT, "%s: %zu intermediates are active; at most one may be",
              ca->config_path, active);
    return MW_SUCCESS;
}

static mw_result load_material(struct mw_ca *ca)
{
    if (ca->root_cert_file[0] != '\0')
        MW_GUARD(read_cert(ca, ca->root_cert_file, &ca->root));
    if (ca->root_keyref.file[0] != '\0' || ca->root_keyref.module[0] != '\0') {
        MW_ENSURE(ca->root != NULL, MW_E_INPUT, "%s: a root key without a root certificate",
                  ca->config_path);
        MW_GUARD(mw_ca_keyref_open(ca, &ca->root_keyref, &ca->root_key));
        MW_ENSURE(EVP_PKEY_eq(mw_ca_key_pub(ca->root_key), X509_get0_pubkey(ca->root)) == 1,
                  MW_E_INPUT, "%s: the root key does not match the root certificate",
                  ca->config_path);
    }
    for (size_t i = 0; i < ca->nslots; i++) {
        struct mw_ca_slot *s = &ca->slots[i];
        if (s->cert_file[0] != '\0')
            MW_GUARD(read_cert(ca, s->cert_file, &s->cert));
        MW_ENSURE(s->cert != NULL || s->state == MW_CA_SLOT_PENDING, MW_E_INPUT,
                  "%s: intermediate %d has no certificate", ca->config_path, s->id);
        if (s->state == MW_CA_SLOT_OLD)
            continue;
        MW_GUARD(mw_ca_keyref_open(ca, &s->keyref, &s->key));
        if (s->cert != NULL) {
            MW_ENSURE(EVP_PKEY_eq(mw_ca_key_pub(s->key), X509_get0_pubkey(s->cert)) == 1,
                      MW_E_INPUT, "%s: intermediate %d's key does not match its certificate",
                      ca->config_path, s->id);
            if (ca->root != NULL)
                MW_GUARD(mw_ca_check_signed_by(s->cert, ca->root));
        }
    }
    return MW_SUCCESS;
}

static mw_result ca_alloc(const char *config_path, struct mw_ca **out)
{
    struct mw_ca *ca = calloc(1, sizeof(*ca));
    MW_ENSURE(ca != NULL, MW_E_NOMEM, "out of memory");
    int n = snprintf(ca->config_path, sizeof(ca->config_path), "%s", config_path);
    const char *slash = strrchr(config_path, '/');
    int m = slash == NULL
                ? snprintf(ca->dir, sizeof(ca->dir), ".")
                : snprintf(ca->dir, sizeof(ca->dir), "%.*s",
                           (int)(slash == config_path ? 1 : slash - config_path), config_path);
    if (n < 0 || (size_t)n >= sizeof(ca->config_path) || m < 0 || (size_t)m >= sizeof(ca->dir)) {
        free(ca);
        MW_BAIL(MW_E_LIMIT, "CA path %s is too long", config_path);
    }
    *out = ca;
    return MW_SUCCESS;
}

mw_result mw_ca_open(const char *config_path, const char *pin_file, const char *pin_env,
                     struct mw_ca **out)
{
    struct mw_ca *ca = NULL;
    MW_GUARD(ca_alloc(config_path, &ca));
    ca->pin_file_override = pin_file;
    ca->pin_env_override = pin_env;
    struct mw_docs *docs = NULL;
    mw_result r = mw_yaml_load_file(config_path, NULL, &docs);
    if (mw_ok(r) && mw_docs_count(docs) != 1) {
        mw_error_set(MW_E_INPUT, "%s: want one YAML document", config_path);
        r = MW_FAILURE;
    }
    if (mw_ok(r))
        r = parse_config(ca, mw_docs_root(docs, 0));
    mw_docs_free(docs);
    if (mw_ok(r))
        r = load_material(ca);
    if (mw_failed(r)) {
        mw_ca_free(ca);
        return r;
    }
    *out = ca;
    return MW_SUCCESS;
}

void mw_ca_free(struct mw_ca *ca)
{
    if (ca == NULL)
        return;
    X509_free(ca->root);
    mw_ca_key_free(ca->root_key);
    for (size_t i = 0; i < ca->nslots; i++) {
        X509_free(ca->slots[i].cert);
        mw_ca_key_free(ca->slots[i].key);
    }
    free(ca);
}

const char *mw_ca_trust_domain(const struct mw_ca *ca)
{
    return ca->td;
}

int64_t mw_ca_default_ttl(const struct mw_ca *ca)
{
    return ca->default_ttl;
}

int64_t mw_ca_max_ttl(const struct mw_ca *ca)
{
    return ca->max_ttl;
}

/* ---------------------------------------------------------------- the bundle */

mw_result mw_ca_bundle_pem(const struct mw_ca *ca, struct mw_dynbuf *out)
{
    MW_ENSURE(ca->root != NULL, MW_E_STATE, "the CA has no root certificate yet");
    return mw_ca_cert_pem(ca->root, out);
}

mw_result mw_ca_bundle_jwks(const struct mw_ca *ca, struct mw_dynbuf *out)
{
    MW_ENSURE(ca->root != NULL, MW_E_STATE, "the CA has no root certificate yet");
    uint8_t *der = NULL;
    int n = i2d_X509(ca->root, &der);
    MW_GUARD_OSSL(n, MW_E_CRYPTO, "cannot encode the root");
    struct mw_bundle *b = NULL;
    mw_result r = mw_bundle_new(ca->td, &b);
    if (mw_ok(r))
        r = mw_bundle_add_x509_der(b, mw_slice_make(der, (size_t)n));
    OPENSSL_free(der);
    if (mw_ok(r)) {
        mw_bundle_set_sequence(b, ca->bundle_sequence);
        mw_bundle_set_refresh_hint(b, 300);
        r = mw_bundle_write_jwks(b, out);
    }
    mw_bundle_free(b);
    return r;
}

mw_result mw_ca_write_bundle(struct mw_ca *ca)
{
    if (ca->root == NULL)
        return MW_SUCCESS;
    ca->bundle_sequence++;
    char path[1600];
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1 << 20);
    mw_result r = mw_ca_bundle_pem(ca, &b);
    if (mw_ok(r))
        r = join(ca, "bundle.pem", path, sizeof(path));
    if (mw_ok(r))
        r = mw_file_write_atomic(path, mw_dynbuf_slice(&b), 0644);
    mw_dynbuf_reset(&b);
    if (mw_ok(r))
        r = mw_ca_bundle_jwks(ca, &b);
    if (mw_ok(r))
        r = mw_dynbuf_add_byte(&b, '\n');
    if (mw_ok(r))
        r = join(ca, "bundle.jwks.json", path, sizeof(path));
    if (mw_ok(r))
        r = mw_file_write_atomic(path, mw_dynbuf_slice(&b), 0644);
    mw_dynbuf_free(&b);
    return r;
}

/* ---------------------------------------------------------------- ca init */

static mw_result write_csr(struct mw_ca *ca, const struct mw_ca_key *key, int id)
{
    MW_DEFER(X509_REQ) X509_REQ *req = X509_REQ_new();
    MW_ENSURE(req != NULL, MW_E_NOMEM, "out of memory");
    char cn[64];
    snprintf(cn, sizeof(cn), "meshward intermediate CA %d", id);
    MW_DEFER(X509_NAME) X509_NAME *name = NULL;
    MW_GUARD(name_for(&name, ca->td, cn));
    MW_GUARD_OSSL(X509_REQ_set_version(req, X509_REQ_VERSION_1), MW_E_CRYPTO, "cannot set version");
    MW_GUARD_OSSL(X509_REQ_set_subject_name(req, name), MW_E_CRYPTO, "cannot set subject");
    MW_GUARD_OSSL(X509_REQ_set_pubkey(req, mw_ca_key_pub(key)), MW_E_CRYPTO, "cannot set key");
    MW_DEFER(X509_REQ) X509_REQ *signed_req = NULL;
    MW_GUARD(mw_ca_sign_req(key, req, &signed_req));
    MW_DEFER(BIO) BIO *bio = BIO_new(BIO_s_mem());
    MW_ENSURE(bio != NULL, MW_E_NOMEM, "out of memory");
    MW_GUARD_OSSL(PEM_write_bio_X509_REQ(bio, signed_req), MW_E_CRYPTO, "cannot write the CSR");
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    char path[1600], file[64];
    snprintf(file, sizeof(file), "intermediate-%d.csr.pem", id);
    MW_GUARD(join(ca, file, path, sizeof(path)));
    return mw_file_write_atomic(path, mw_slice_make(p, (size_t)n), 0644);
}

static mw_result init_into(struct mw_ca *ca, const struct mw_ca_init_opts *o)
{
    int64_t now = mw_clock_now(o->clock);
    if (o->p11 != NULL) {
        struct mw_ca_keyref *r = o->csr_only ? &ca->slots[0].keyref : &ca->root_keyref;
        set_str(r->module, sizeof(r->module), o->p11->module);
        set_str(r->token, sizeof(r->token), o->p11->token_label);
        const char *prefix = o->p11->key_label != NULL ? o->p11->key_label : "meshward";
        snprintf(r->label, sizeof(r->label), "%.64s-%s", prefix,
                 o->csr_only ? "intermediate-1" : "root");
        set_str(r->pin_file, sizeof(r->pin_file), o->p11->pin_file);
        set_str(r->pin_env, sizeof(r->pin_env), o->p11->pin_env);
        MW_ENSURE(o->p11->module && o->p11->token_label, MW_E_INPUT,
                  "PKCS#11 needs a module and a token label");
    }
    struct mw_ca_slot *s = &ca->slots[0];
    s->id = 1;
    ca->nslots = 1;
    if (o->csr_only) {
        s->state = MW_CA_SLOT_PENDING;
        MW_GUARD(new_key(ca, "intermediate-1", &s->keyref, &s->key));
        MW_GUARD(write_csr(ca, s->key, 1));
        return mw_ca_save_config(ca);
    }
    MW_GUARD(new_key(ca, "root", &ca->root_keyref, &ca->root_key));
    MW_GUARD(make_root(ca, ca->root_key, now, &ca->root));
    set_str(ca->root_cert_file, sizeof(ca->root_cert_file), "root.pem");
    MW_GUARD(write_cert(ca, ca->root_cert_file, ca->root));
    s->state = MW_CA_SLOT_ACTIVE;
    MW_GUARD(mw_ca_new_slot_key(ca, 1, &s->keyref, &s->key));
    MW_GUARD(mw_ca_make_intermediate(ca, ca->root, ca->root_key, mw_ca_key_pub(s->key), 1, now,
                                     ca->intermediate_ttl, &s->cert));
    set_str(s->cert_file, sizeof(s->cert_file), "intermediate-1.pem");
    MW_GUARD(write_cert(ca, s->cert_file, s->cert));
    MW_GUARD(mw_ca_write_bundle(ca));
    return mw_ca_save_config(ca);
}

mw_result mw_ca_init(const struct mw_ca_init_opts *o)
{
    MW_ENSURE(o->trust_domain != NULL && o->dir != NULL, MW_E_INPUT,
              "ca init needs a trust domain and a directory");
    char td[MW_SPIFFE_TD_MAX + 1];
    MW_GUARD(mw_spiffe_td_parse(mw_slice_cstr(o->trust_domain), td));
    if (mkdir(o->dir, 0700) != 0 && errno != EEXIST)
        MW_BAIL(MW_E_IO, "cannot create %s: %s", o->dir, strerror(errno));
    char config[1100];
    int n = snprintf(config, sizeof(config), "%s/ca.yaml", o->dir);
    MW_ENSURE(n > 0 && (size_t)n < sizeof(config), MW_E_LIMIT, "directory path is too long");
    MW_ENSURE(access(config, F_OK) != 0, MW_E_STATE, "%s exists; refusing to replace a CA", config);
    struct mw_ca *ca = NULL;
    MW_GUARD(ca_alloc(config, &ca));
    set_str(ca->td, sizeof(ca->td), td);
    ca->key_type = o->key_type != 0 ? o->key_type : MW_CA_KEY_EC_P256;
    ca->root_ttl = o->root_ttl > 0 ? o->root_ttl : 10 * YEAR;
    ca->intermediate_ttl = o->intermediate_ttl > 0 ? o->intermediate_ttl : YEAR;
    ca->default_ttl = o->svid_default_ttl > 0 ? o->svid_default_ttl : 3600;
    ca->max_ttl = o->svid_max_ttl > 0 ? o->svid_max_ttl : 86400;
    mw_result r = MW_SUCCESS;
    if (ca->default_ttl > ca->max_ttl) {
        mw_error_set(MW_E_INPUT, "default SVID TTL %llds is over the maximum %llds",
                     (long long)ca->default_ttl, (long long)ca->max_ttl);
        r = MW_FAILURE;
    }
    if (mw_ok(r) && ca->intermediate_ttl > ca->root_ttl) {
        mw_error_set(MW_E_INPUT, "intermediate TTL is longer than the root TTL");
        r = MW_FAILURE;
    }
    if (mw_ok(r))
        r = init_into(ca, o);
    mw_ca_free(ca);
    return r;
}
