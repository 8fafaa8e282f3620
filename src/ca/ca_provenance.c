/*
 * The provenance extension (docs/ca.md):
 *
 *   MeshwardProvenance ::= SEQUENCE {
 *       imageDigest UTF8String, attestationDigest UTF8String, builderId UTF8String }
 *
 * The decoder reads peers' certificates, so it is strict: DER only
 * (X.690 §10.1: definite, minimal lengths), no trailing bytes anywhere,
 * bounded sizes, and the field rules the encoder enforces, so that anything
 * that decodes would also have been issued.
 */
#include <pthread.h>
#include <string.h>

#include "ca/ca_internal.h"

static bool is_digest(mw_slice s)
{
    static const char prefix[] = "sha256:";
    if (s.n != MW_CA_DIGEST_LEN || memcmp(s.p, prefix, 7) != 0)
        return false;
    for (size_t i = 7; i < s.n; i++) {
        uint8_t c = s.p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* A builder ID is a URI (SLSA builder.id): visible ASCII, no spaces. */
static bool is_builder(mw_slice s)
{
    if (s.n == 0 || s.n > MW_CA_BUILDER_MAX)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] < 0x21 || s.p[i] > 0x7e)
            return false;
    return true;
}

static mw_result check_fields(mw_slice image, mw_slice att, mw_slice builder)
{
    MW_ENSURE(is_digest(image), MW_E_INPUT,
              "provenance image digest is not sha256:<64 lower-case hex>");
    MW_ENSURE(is_digest(att), MW_E_INPUT,
              "provenance attestation digest is not sha256:<64 lower-case hex>");
    MW_ENSURE(is_builder(builder), MW_E_INPUT,
              "provenance builder ID must be 1..%d visible ASCII characters (a URI)",
              MW_CA_BUILDER_MAX);
    return MW_SUCCESS;
}

static void copy_field(char *dst, mw_slice s)
{
    memcpy(dst, s.p, s.n);
    dst[s.n] = '\0';
}

mw_result mw_ca_provenance_set(struct mw_ca_provenance *p, const char *image_digest,
                               const char *attestation_digest, const char *builder_id)
{
    MW_ENSURE(image_digest != NULL && attestation_digest != NULL && builder_id != NULL, MW_E_INPUT,
              "provenance needs an image digest, an attestation digest and a builder");
    mw_slice img = mw_slice_cstr(image_digest), att = mw_slice_cstr(attestation_digest),
             bld = mw_slice_cstr(builder_id);
    MW_GUARD(check_fields(img, att, bld));
    copy_field(p->image_digest, img);
    copy_field(p->attestation_digest, att);
    copy_field(p->builder_id, bld);
    return MW_SUCCESS;
}

static mw_result put_header(struct mw_dynbuf *b, uint8_t tag, size_t len)
{
    uint8_t h[4] = {tag};
    size_t n = 1;
    if (len < 0x80) {
        h[n++] = (uint8_t)len;
    } else if (len <= 0xff) {
        h[n++] = 0x81;
        h[n++] = (uint8_t)len;
    } else {
        h[n++] = 0x82;
        h[n++] = (uint8_t)(len >> 8);
        h[n++] = (uint8_t)len;
    }
    return mw_dynbuf_add(b, h, n);
}

static size_t header_len(size_t len)
{
    return len < 0x80 ? 2 : len <= 0xff ? 3 : 4;
}

mw_result mw_ca_provenance_encode(const struct mw_ca_provenance *p, struct mw_dynbuf *out)
{
    mw_slice f[3] = {mw_slice_cstr(p->image_digest), mw_slice_cstr(p->attestation_digest),
                     mw_slice_cstr(p->builder_id)};
    MW_GUARD(check_fields(f[0], f[1], f[2]));
    size_t body = 0;
    for (size_t i = 0; i < 3; i++)
        body += header_len(f[i].n) + f[i].n;
    MW_GUARD(put_header(out, 0x30, body));
    for (size_t i = 0; i < 3; i++) {
        MW_GUARD(put_header(out, 0x0c, f[i].n));
        MW_GUARD(mw_dynbuf_add_slice(out, f[i]));
    }
    return MW_SUCCESS;
}

/* One DER TLV with the expected tag; minimal definite length of at most two bytes. */
static mw_result read_tlv(struct mw_cursor *c, uint8_t want_tag, const char *what, mw_slice *out)
{
    struct mw_cursor save = *c;
    uint8_t tag, l0;
    if (mw_failed(mw_cursor_u8(c, &tag)) || mw_failed(mw_cursor_u8(c, &l0))) {
        *c = save;
        MW_BAIL(MW_E_INPUT, "provenance extension: %s is truncated", what);
    }
    size_t len = l0;
    if (tag != want_tag) {
        *c = save;
        MW_BAIL(MW_E_INPUT, "provenance extension: %s has tag 0x%02x, want 0x%02x", what, tag,
                want_tag);
    }
    if (l0 == 0x81) {
        uint8_t b;
        if (mw_failed(mw_cursor_u8(c, &b)) || b < 0x80) {
            *c = save;
            MW_BAIL(MW_E_INPUT, "provenance extension: %s length is not minimal DER", what);
        }
        len = b;
    } else if (l0 == 0x82) {
        uint16_t v;
        if (mw_failed(mw_cursor_u16be(c, &v)) || v < 0x100) {
            *c = save;
            MW_BAIL(MW_E_INPUT, "provenance extension: %s length is not minimal DER", what);
        }
        len = v;
    } else if (l0 >= 0x80) {
        *c = save;
        MW_BAIL(MW_E_INPUT, "provenance extension: %s length form 0x%02x is not allowed", what, l0);
    }
    if (mw_failed(mw_cursor_bytes(c, len, out))) {
        *c = save;
        MW_BAIL(MW_E_INPUT, "provenance extension: %s says %zu bytes, %zu remain", what, len,
                mw_cursor_left(c));
    }
    return MW_SUCCESS;
}

mw_result mw_ca_provenance_decode(mw_slice der, struct mw_ca_provenance *out)
{
    MW_ENSURE(der.n <= MW_CA_PROVENANCE_DER_MAX, MW_E_LIMIT,
              "provenance extension is %zu bytes, more than %d", der.n, MW_CA_PROVENANCE_DER_MAX);
    struct mw_cursor c;
    mw_cursor_init(&c, der);
    mw_slice seq, f[3];
    MW_GUARD(read_tlv(&c, 0x30, "the SEQUENCE", &seq));
    MW_ENSURE(mw_cursor_left(&c) == 0, MW_E_INPUT,
              "provenance extension has %zu bytes after the SEQUENCE", mw_cursor_left(&c));
    struct mw_cursor in;
    mw_cursor_init(&in, seq);
    static const char *const names[3] = {"imageDigest", "attestationDigest", "builderId"};
    for (size_t i = 0; i < 3; i++)
        MW_GUARD(read_tlv(&in, 0x0c, names[i], &f[i]));
    MW_ENSURE(mw_cursor_left(&in) == 0, MW_E_INPUT,
              "provenance extension has %zu bytes after builderId", mw_cursor_left(&in));
    MW_GUARD(check_fields(f[0], f[1], f[2]));
    copy_field(out->image_digest, f[0]);
    copy_field(out->attestation_digest, f[1]);
    copy_field(out->builder_id, f[2]);
    return MW_SUCCESS;
}

static ASN1_OBJECT *prov_oid;
static pthread_once_t prov_once = PTHREAD_ONCE_INIT;

static void prov_oid_init(void)
{
    prov_oid = OBJ_txt2obj(MW_CA_PROVENANCE_OID, 1);
}

static const ASN1_OBJECT *provenance_oid(void)
{
    pthread_once(&prov_once, prov_oid_init);
    return prov_oid;
}

mw_result mw_ca_provenance_ext(const struct mw_ca_provenance *p, X509_EXTENSION **out)
{
    const ASN1_OBJECT *oid = provenance_oid();
    MW_ENSURE(oid != NULL, MW_E_CRYPTO, "cannot make the provenance OID");
    struct mw_dynbuf der;
    mw_dynbuf_init(&der, MW_CA_PROVENANCE_DER_MAX);
    if (mw_failed(mw_ca_provenance_encode(p, &der))) {
        mw_dynbuf_free(&der);
        return MW_FAILURE;
    }
    MW_DEFER(ASN1_OCTET_STRING) ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    bool ok = os != NULL && ASN1_OCTET_STRING_set(os, der.p, (int)der.n) == 1;
    mw_dynbuf_free(&der);
    MW_ENSURE(ok, MW_E_NOMEM, "out of memory for the provenance extension");
    /* Non-critical (DESIGN.md): peers that do not know it must still accept the SVID. */
    *out = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os);
    MW_ENSURE(*out != NULL, MW_E_CRYPTO, "cannot make the provenance extension");
    return MW_SUCCESS;
}

mw_result mw_ca_provenance_from_cert(mw_slice cert_der, struct mw_ca_provenance *out, bool *present)
{
    *present = false;
    const ASN1_OBJECT *oid = provenance_oid();
    MW_ENSURE(oid != NULL, MW_E_CRYPTO, "cannot make the provenance OID");
    const uint8_t *p = cert_der.p;
    MW_DEFER(X509) X509 *cert = d2i_X509(NULL, &p, (long)cert_der.n);
    MW_ENSURE(cert != NULL && p == cert_der.p + cert_der.n, MW_E_INPUT, "not a DER certificate");
    int idx = X509_get_ext_by_OBJ(cert, oid, -1);
    if (idx < 0)
        return MW_SUCCESS;
    MW_ENSURE(X509_get_ext_by_OBJ(cert, oid, idx) < 0, MW_E_INPUT,
              "certificate has the provenance extension twice");
    X509_EXTENSION *ext = X509_get_ext(cert, idx);
    MW_ENSURE(!X509_EXTENSION_get_critical(ext), MW_E_INPUT,
              "provenance extension is marked critical; meshward issues it non-critical");
    const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
    MW_GUARD(mw_ca_provenance_decode(
        mw_slice_make(ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v)), out));
    *present = true;
    return MW_SUCCESS;
}
