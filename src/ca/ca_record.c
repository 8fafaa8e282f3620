/*
 * The issuance-log record: a canonical, length-prefixed binary encoding of
 * one issued certificate (docs/ca-auth.md has the layout). Canonical means
 * one record has exactly one encoding and the parser accepts nothing else:
 * fixed field order, no optional padding, no trailing bytes, booleans 0 or 1,
 * integers in fixed width, serials without leading zero bytes. Two logs that
 * agree on the records therefore agree on the leaf hashes.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <openssl/err.h>
#include <string.h>
#include <time.h>

#include "base/mw_ossl.h"
#include "ca/ca_auth_internal.h"

static const uint8_t magic[4] = {'M', 'W', 'I', 'R'};
#define RECORD_VERSION 1

static bool printable(mw_slice s)
{
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] < 0x21 || s.p[i] > 0x7e)
            return false;
    return true;
}

static mw_result check_text(mw_slice s, size_t max, const char *what)
{
    MW_ENSURE(s.n > 0, MW_E_INPUT, "record %s is empty", what);
    MW_ENSURE(s.n <= max, MW_E_LIMIT, "record %s is %zu bytes, at most %zu", what, s.n, max);
    MW_ENSURE(printable(s), MW_E_INPUT, "record %s has a byte outside printable ASCII", what);
    return MW_SUCCESS;
}

bool mw_ca_serial_hex_ok(mw_slice hex)
{
    if (hex.n == 0 || hex.n > 40 || (hex.n > 1 && hex.p[0] == '0'))
        return false;
    for (size_t i = 0; i < hex.n; i++)
        if (!((hex.p[i] >= '0' && hex.p[i] <= '9') || (hex.p[i] >= 'a' && hex.p[i] <= 'f')))
            return false;
    return true;
}

mw_result mw_ca_record_renewed_serial(const struct mw_ca_record *r, mw_slice *out)
{
    MW_ENSURE(r->cred_kind == MW_CA_CRED_SVID, MW_E_INPUT, "record is not a renewal");
    mw_slice pre = mw_slice_cstr("svid:");
    MW_ENSURE(mw_slice_has_prefix(r->cred_subject, pre), MW_E_INPUT,
              "renewal record subject must be svid:<serial>");
    mw_slice hex = mw_slice_sub(r->cred_subject, pre.n, r->cred_subject.n - pre.n);
    MW_ENSURE(mw_ca_serial_hex_ok(hex), MW_E_INPUT,
              "renewal record serial must be 1..40 lower-case hex digits without leading zeros");
    if (out != NULL)
        *out = hex;
    return MW_SUCCESS;
}

/* Every rule a record must keep, for the encoder and the parser alike. */
static mw_result check(const struct mw_ca_record *r)
{
    MW_ENSURE(r->serial.n >= 1 && r->serial.n <= 20, MW_E_INPUT,
              "record serial is %zu bytes, want 1..20 (RFC 5280 §4.1.2.2)", r->serial.n);
    MW_ENSURE(r->serial.n == 1 || r->serial.p[0] != 0, MW_E_INPUT,
              "record serial has a leading zero byte");
    struct mw_spiffe_id id;
    if (mw_failed(mw_spiffe_id_parse(r->spiffe_id, &id, NULL))) {
        mw_error_prefix("record SPIFFE ID: ");
        return MW_FAILURE;
    }
    MW_ENSURE(r->issued_at >= 0 && r->not_before >= 0 && r->not_after >= 0, MW_E_INPUT,
              "record times must not be before 1970");
    MW_ENSURE(r->not_before <= r->not_after, MW_E_INPUT, "record not-before is after not-after");
    MW_ENSURE(r->cred_kind == MW_CA_CRED_K8S || r->cred_kind == MW_CA_CRED_JOIN ||
                  r->cred_kind == MW_CA_CRED_SVID,
              MW_E_INPUT, "record credential kind %d is unknown", (int)r->cred_kind);
    MW_GUARD(check_text(r->cred_subject, 511, "credential subject"));
    /*
     * A renewal names the certificate it renewed, one spelling only, so that
     * the monitor can follow renewal chains by serial (docs/ca-auth.md).
     */
    if (r->cred_kind == MW_CA_CRED_SVID)
        MW_GUARD(mw_ca_record_renewed_serial(r, NULL));
    if (r->has_provenance) {
        MW_GUARD(mw_ca_digest_check(r->image_digest, "record image digest"));
        MW_GUARD(mw_ca_digest_check(r->attestation_digest, "record attestation digest"));
        MW_GUARD(check_text(r->builder_id, 1023, "builder id"));
    } else {
        MW_ENSURE(r->image_digest.n == 0 && r->attestation_digest.n == 0 && r->builder_id.n == 0,
                  MW_E_INPUT, "record has provenance fields but no provenance flag");
    }
    MW_GUARD(check_text(r->ca_key_id, 255, "CA key id"));
    MW_ENSURE(r->n_sans <= MW_CA_RECORD_MAX_SANS, MW_E_LIMIT, "record has %zu SANs, at most %d",
              r->n_sans, MW_CA_RECORD_MAX_SANS);
    for (size_t i = 0; i < r->n_sans; i++) {
        const struct mw_ca_san *s = &r->sans[i];
        switch (s->type) {
        case MW_CA_SAN_URI:
        case MW_CA_SAN_DNS:
        case MW_CA_SAN_EMAIL:
            MW_GUARD(check_text(s->value, 4096, "SAN"));
            break;
        case MW_CA_SAN_IP:
            MW_ENSURE(s->value.n == 4 || s->value.n == 16, MW_E_INPUT,
                      "record IP SAN is %zu bytes, want 4 or 16", s->value.n);
            break;
        case MW_CA_SAN_OTHER:
            MW_ENSURE(s->value.n > 0 && s->value.n <= 4096, MW_E_INPUT,
                      "record SAN %zu of other type must be 1..4096 bytes", i);
            break;
        default:
            MW_BAIL(MW_E_INPUT, "record SAN %zu has unknown type %d", i, (int)s->type);
        }
    }
    return MW_SUCCESS;
}

static mw_result put_u16(struct mw_dynbuf *b, size_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return mw_dynbuf_add(b, x, 2);
}

static mw_result put_u64(struct mw_dynbuf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (56 - 8 * i));
    return mw_dynbuf_add(b, x, 8);
}

static mw_result put_str8(struct mw_dynbuf *b, mw_slice s)
{
    MW_GUARD(mw_dynbuf_add_byte(b, (uint8_t)s.n));
    return mw_dynbuf_add_slice(b, s);
}

static mw_result put_str16(struct mw_dynbuf *b, mw_slice s)
{
    MW_GUARD(put_u16(b, s.n));
    return mw_dynbuf_add_slice(b, s);
}

static mw_result encode(const struct mw_ca_record *r, struct mw_dynbuf *b)
{
    MW_GUARD(mw_dynbuf_add(b, magic, sizeof(magic)));
    MW_GUARD(mw_dynbuf_add_byte(b, RECORD_VERSION));
    MW_GUARD(put_str8(b, r->serial));
    MW_GUARD(put_str16(b, r->spiffe_id));
    MW_GUARD(put_u64(b, (uint64_t)r->issued_at));
    MW_GUARD(put_u64(b, (uint64_t)r->not_before));
    MW_GUARD(put_u64(b, (uint64_t)r->not_after));
    MW_GUARD(mw_dynbuf_add(b, r->spki_sha256, 32));
    MW_GUARD(mw_dynbuf_add_byte(b, (uint8_t)r->cred_kind));
    MW_GUARD(put_str16(b, r->cred_subject));
    MW_GUARD(mw_dynbuf_add_byte(b, r->has_provenance ? 1 : 0));
    if (r->has_provenance) {
        MW_GUARD(put_str8(b, r->image_digest));
        MW_GUARD(put_str8(b, r->attestation_digest));
        MW_GUARD(put_str16(b, r->builder_id));
    }
    MW_GUARD(put_str16(b, r->ca_key_id));
    MW_GUARD(mw_dynbuf_add_byte(b, (uint8_t)r->n_sans));
    for (size_t i = 0; i < r->n_sans; i++) {
        MW_GUARD(mw_dynbuf_add_byte(b, (uint8_t)r->sans[i].type));
        MW_GUARD(put_str16(b, r->sans[i].value));
    }
    return MW_SUCCESS;
}

mw_result mw_ca_record_encode(const struct mw_ca_record *r, struct mw_dynbuf *out)
{
    MW_GUARD(check(r));
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, MW_CA_RECORD_MAX);
    mw_result res = encode(r, &b);
    if (mw_failed(res) && mw_error_code() == MW_E_LIMIT)
        mw_error_set(MW_E_LIMIT, "record does not fit in %d bytes", MW_CA_RECORD_MAX);
    if (mw_ok(res))
        res = mw_dynbuf_add_slice(out, mw_dynbuf_slice(&b));
    mw_dynbuf_free(&b);
    return res;
}

static mw_result get_str8(struct mw_cursor *c, mw_slice *out)
{
    uint8_t n;
    MW_GUARD(mw_cursor_u8(c, &n));
    return mw_cursor_bytes(c, n, out);
}

static mw_result get_str16(struct mw_cursor *c, mw_slice *out)
{
    uint16_t n;
    MW_GUARD(mw_cursor_u16be(c, &n));
    return mw_cursor_bytes(c, n, out);
}

static mw_result get_time(struct mw_cursor *c, int64_t *out)
{
    uint64_t v;
    MW_GUARD(mw_cursor_u64be(c, &v));
    MW_ENSURE(v <= INT64_MAX, MW_E_INPUT, "record time out of range");
    *out = (int64_t)v;
    return MW_SUCCESS;
}

static mw_result parse(struct mw_cursor *c, struct mw_ca_record *r)
{
    mw_slice m;
    uint8_t u8;
    MW_GUARD(mw_cursor_bytes(c, 4, &m));
    MW_ENSURE(memcmp(m.p, magic, 4) == 0, MW_E_INPUT, "not an issuance record (no MWIR magic)");
    MW_GUARD(mw_cursor_u8(c, &u8));
    MW_ENSURE(u8 == RECORD_VERSION, MW_E_UNSUPPORTED, "issuance record version %u, want %d", u8,
              RECORD_VERSION);
    MW_GUARD(get_str8(c, &r->serial));
    MW_GUARD(get_str16(c, &r->spiffe_id));
    MW_GUARD(get_time(c, &r->issued_at));
    MW_GUARD(get_time(c, &r->not_before));
    MW_GUARD(get_time(c, &r->not_after));
    MW_GUARD(mw_cursor_bytes(c, 32, &m));
    memcpy(r->spki_sha256, m.p, 32);
    MW_GUARD(mw_cursor_u8(c, &u8));
    r->cred_kind = (enum mw_ca_cred_kind)u8;
    MW_GUARD(get_str16(c, &r->cred_subject));
    MW_GUARD(mw_cursor_u8(c, &u8));
    MW_ENSURE(u8 <= 1, MW_E_INPUT, "record provenance flag is %u, want 0 or 1", u8);
    r->has_provenance = u8 == 1;
    if (r->has_provenance) {
        MW_GUARD(get_str8(c, &r->image_digest));
        MW_GUARD(get_str8(c, &r->attestation_digest));
        MW_GUARD(get_str16(c, &r->builder_id));
    }
    MW_GUARD(get_str16(c, &r->ca_key_id));
    MW_GUARD(mw_cursor_u8(c, &u8));
    MW_ENSURE(u8 <= MW_CA_RECORD_MAX_SANS, MW_E_LIMIT, "record has %u SANs, at most %d", u8,
              MW_CA_RECORD_MAX_SANS);
    r->n_sans = u8;
    for (size_t i = 0; i < r->n_sans; i++) {
        MW_GUARD(mw_cursor_u8(c, &u8));
        r->sans[i].type = (enum mw_ca_san_type)u8;
        MW_GUARD(get_str16(c, &r->sans[i].value));
    }
    MW_ENSURE(mw_cursor_left(c) == 0, MW_E_INPUT, "record has %zu trailing bytes",
              mw_cursor_left(c));
    return MW_SUCCESS;
}

mw_result mw_ca_record_parse(mw_slice in, struct mw_ca_record *out)
{
    MW_ENSURE(in.n <= MW_CA_RECORD_MAX, MW_E_LIMIT, "record is %zu bytes, at most %d", in.n,
              MW_CA_RECORD_MAX);
    struct mw_ca_record r;
    memset(&r, 0, sizeof(r));
    struct mw_cursor c;
    mw_cursor_init(&c, in);
    if (mw_failed(parse(&c, &r))) {
        if (mw_error_code() == MW_E_INPUT && mw_cursor_left(&c) < 64)
            mw_error_prefix("truncated or malformed record: ");
        return MW_FAILURE;
    }
    MW_GUARD(check(&r));
    *out = r;
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- from a certificate */

static mw_result asn1_time(const ASN1_TIME *t, const char *what, int64_t *out)
{
    struct tm tm;
    MW_GUARD_OSSL(ASN1_TIME_to_tm(t, &tm), MW_E_INPUT, "certificate %s", what);
    *out = (int64_t)timegm(&tm);
    MW_ENSURE(*out >= 0, MW_E_INPUT, "certificate %s is before 1970", what);
    return MW_SUCCESS;
}

struct san_span {
    enum mw_ca_san_type type;
    size_t off, n;
};

static mw_result add_san(const GENERAL_NAME *gn, struct mw_dynbuf *st, struct san_span *span)
{
    span->off = st->n;
    const ASN1_STRING *v = NULL;
    switch (gn->type) {
    case GEN_URI:
        span->type = MW_CA_SAN_URI;
        v = gn->d.uniformResourceIdentifier;
        break;
    case GEN_DNS:
        span->type = MW_CA_SAN_DNS;
        v = gn->d.dNSName;
        break;
    case GEN_IPADD:
        span->type = MW_CA_SAN_IP;
        v = gn->d.iPAddress;
        break;
    case GEN_EMAIL:
        span->type = MW_CA_SAN_EMAIL;
        v = gn->d.rfc822Name;
        break;
    default: {
        span->type = MW_CA_SAN_OTHER;
        unsigned char *der = NULL;
        int len = i2d_GENERAL_NAME((GENERAL_NAME *)gn, &der);
        MW_GUARD_OSSL(len, MW_E_CRYPTO, "cannot encode a SAN");
        mw_result r = mw_dynbuf_add(st, der, (size_t)len);
        OPENSSL_free(der);
        MW_GUARD(r);
        span->n = (size_t)len;
        return MW_SUCCESS;
    }
    }
    MW_GUARD(mw_dynbuf_add(st, ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v)));
    span->n = (size_t)ASN1_STRING_length(v);
    return MW_SUCCESS;
}

static void gens_cleanup(GENERAL_NAMES **p)
{
    if (*p != NULL)
        GENERAL_NAMES_free(*p);
    *p = NULL;
}

mw_result mw_ca_record_from_cert(mw_slice leaf_der, struct mw_ca_record *r,
                                 struct mw_dynbuf *storage)
{
    const unsigned char *p = leaf_der.p;
    MW_DEFER(X509) X509 *cert = d2i_X509(NULL, &p, (long)leaf_der.n);
    MW_GUARD_OSSL(cert != NULL, MW_E_INPUT, "issued certificate is not DER X.509");
    MW_ENSURE(p == leaf_der.p + leaf_der.n, MW_E_INPUT,
              "issued certificate has bytes after its DER");
    mw_dynbuf_reset(storage);

    /* Serial: the magnitude, without the sign byte DER may add. */
    MW_DEFER(BIGNUM) BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    MW_GUARD_OSSL(bn != NULL, MW_E_INPUT, "certificate serial");
    MW_ENSURE(!BN_is_negative(bn) && !BN_is_zero(bn) && BN_num_bytes(bn) <= 20, MW_E_INPUT,
              "certificate serial must be positive and at most 20 bytes (RFC 5280 §4.1.2.2)");
    size_t serial_n = (size_t)BN_num_bytes(bn);
    MW_GUARD(mw_dynbuf_reserve(storage, serial_n));
    BN_bn2bin(bn, storage->p);
    storage->n = serial_n;

    MW_GUARD(asn1_time(X509_get0_notBefore(cert), "notBefore", &r->not_before));
    MW_GUARD(asn1_time(X509_get0_notAfter(cert), "notAfter", &r->not_after));

    unsigned char *spki = NULL;
    int spki_n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &spki);
    MW_GUARD_OSSL(spki_n, MW_E_INPUT, "certificate public key");
    unsigned int hl = 0;
    int ok = EVP_Digest(spki, (size_t)spki_n, r->spki_sha256, &hl, EVP_sha256(), NULL);
    OPENSSL_free(spki);
    MW_GUARD_OSSL(ok, MW_E_CRYPTO, "SHA-256");

    int crit = 0;
    __attribute__((cleanup(gens_cleanup))) GENERAL_NAMES *gens =
        X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    /* -1: absent; -2: repeated, which is itself worth recording as malformed. */
    MW_ENSURE(gens != NULL || crit == -1, MW_E_INPUT,
              "certificate subjectAltName is malformed or repeated");
    int n = gens != NULL ? sk_GENERAL_NAME_num(gens) : 0;
    MW_ENSURE(n <= MW_CA_RECORD_MAX_SANS, MW_E_LIMIT, "certificate has %d SANs, at most %d", n,
              MW_CA_RECORD_MAX_SANS);
    struct san_span spans[MW_CA_RECORD_MAX_SANS];
    for (int i = 0; i < n; i++)
        MW_GUARD(add_san(sk_GENERAL_NAME_value(gens, i), storage, &spans[i]));
    /* Only now is storage final: slices taken earlier could move with a realloc. */
    r->serial = mw_slice_make(storage->p, serial_n);
    r->n_sans = (size_t)n;
    for (int i = 0; i < n; i++) {
        r->sans[i].type = spans[i].type;
        r->sans[i].value = mw_slice_make(storage->p + spans[i].off, spans[i].n);
    }
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- JSON */

static mw_result add_hex(struct mw_dynbuf *b, mw_slice s)
{
    MW_GUARD(mw_dynbuf_add_byte(b, '"'));
    MW_GUARD(mw_hex_encode(s, b));
    return mw_dynbuf_add_byte(b, '"');
}

static mw_result add_time(struct mw_dynbuf *b, const char *key, int64_t t)
{
    char buf[32];
    mw_time_format(t, buf, sizeof(buf));
    return mw_dynbuf_addf(b, ",\"%s\":\"%s\"", key, buf);
}

static const char *san_type_name(enum mw_ca_san_type t)
{
    switch (t) {
    case MW_CA_SAN_URI:
        return "uri";
    case MW_CA_SAN_DNS:
        return "dns";
    case MW_CA_SAN_IP:
        return "ip";
    case MW_CA_SAN_EMAIL:
        return "email";
    case MW_CA_SAN_OTHER:
        return "other";
    }
    return "?";
}

mw_result mw_ca_record_to_json(const struct mw_ca_record *r, struct mw_dynbuf *b)
{
    MW_GUARD(mw_dynbuf_add_cstr(b, "{\"serial\":"));
    MW_GUARD(add_hex(b, r->serial));
    MW_GUARD(mw_dynbuf_add_cstr(b, ",\"spiffe_id\":"));
    MW_GUARD(mw_dynbuf_add_json_str(b, r->spiffe_id));
    MW_GUARD(add_time(b, "issued_at", r->issued_at));
    MW_GUARD(add_time(b, "not_before", r->not_before));
    MW_GUARD(add_time(b, "not_after", r->not_after));
    MW_GUARD(mw_dynbuf_add_cstr(b, ",\"spki_sha256\":"));
    MW_GUARD(add_hex(b, mw_slice_make(r->spki_sha256, 32)));
    MW_GUARD(mw_dynbuf_addf(
        b, ",\"credential\":{\"kind\":\"%s\",\"subject\":", mw_ca_cred_kind_name(r->cred_kind)));
    MW_GUARD(mw_dynbuf_add_json_str(b, r->cred_subject));
    MW_GUARD(mw_dynbuf_add_cstr(b, "},\"provenance\":"));
    if (r->has_provenance) {
        MW_GUARD(mw_dynbuf_add_cstr(b, "{\"image_digest\":"));
        MW_GUARD(mw_dynbuf_add_json_str(b, r->image_digest));
        MW_GUARD(mw_dynbuf_add_cstr(b, ",\"attestation_digest\":"));
        MW_GUARD(mw_dynbuf_add_json_str(b, r->attestation_digest));
        MW_GUARD(mw_dynbuf_add_cstr(b, ",\"builder_id\":"));
        MW_GUARD(mw_dynbuf_add_json_str(b, r->builder_id));
        MW_GUARD(mw_dynbuf_add_byte(b, '}'));
    } else {
        MW_GUARD(mw_dynbuf_add_cstr(b, "null"));
    }
    MW_GUARD(mw_dynbuf_add_cstr(b, ",\"ca_key_id\":"));
    MW_GUARD(mw_dynbuf_add_json_str(b, r->ca_key_id));
    MW_GUARD(mw_dynbuf_add_cstr(b, ",\"sans\":["));
    for (size_t i = 0; i < r->n_sans; i++) {
        const struct mw_ca_san *s = &r->sans[i];
        MW_GUARD(mw_dynbuf_addf(b, "%s{\"type\":\"%s\",\"value\":", i > 0 ? "," : "",
                                san_type_name(s->type)));
        if (s->type == MW_CA_SAN_IP) {
            char ip[INET6_ADDRSTRLEN];
            if (inet_ntop(s->value.n == 4 ? AF_INET : AF_INET6, s->value.p, ip, sizeof(ip)) == NULL)
                MW_BAIL(MW_E_INPUT, "bad IP SAN");
            MW_GUARD(mw_dynbuf_addf(b, "\"%s\"", ip));
        } else if (s->type == MW_CA_SAN_OTHER) {
            MW_GUARD(add_hex(b, s->value));
        } else {
            MW_GUARD(mw_dynbuf_add_json_str(b, s->value));
        }
        MW_GUARD(mw_dynbuf_add_byte(b, '}'));
    }
    return mw_dynbuf_add_cstr(b, "]}");
}
