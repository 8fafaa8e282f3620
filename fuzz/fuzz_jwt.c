/*
 * Kubernetes service-account tokens arrive from anyone who can reach the CA.
 * The first byte picks what the rest of the input is:
 *   0: a whole token, verified as is;
 *   1: the claims, signed here with the JWKS key, so the claim checks are
 *      reached past the signature;
 *   2: the header, with valid claims, signed here;
 *   3: a JWKS for the verifier.
 * What verification accepts must be a well-formed identity in the configured
 * trust domain, with Kubernetes names only.
 */
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <meshward/ca_auth.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1795521600

static EVP_PKEY *key;
static struct mw_k8s_verifier *verifier;
static const struct mw_k8s_config cfg = {.issuer = "https://kubernetes.default.svc",
                                         .audience = "meshward-ca",
                                         .trust_domain = "example.org"};

static void b64url(const void *p, size_t n, struct mw_dynbuf *out)
{
    if (mw_failed(mw_b64_encode(mw_slice_make(p, n), MW_B64_URL, out)))
        abort();
}

static void init(void)
{
    key = EVP_EC_gen("P-256");
    unsigned char pt[65];
    size_t len = 0;
    if (key == NULL ||
        EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &len) != 1 ||
        len != 65)
        abort();
    struct mw_dynbuf j;
    mw_dynbuf_init(&j, 4096);
    if (mw_failed(mw_dynbuf_add_cstr(&j, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":"
                                         "\"k1\",\"x\":\"")))
        abort();
    b64url(pt + 1, 32, &j);
    if (mw_failed(mw_dynbuf_add_cstr(&j, "\",\"y\":\"")))
        abort();
    b64url(pt + 33, 32, &j);
    if (mw_failed(mw_dynbuf_add_cstr(&j, "\"}]}")))
        abort();
    if (mw_failed(mw_k8s_verifier_new(mw_dynbuf_slice(&j), &cfg, &verifier)))
        abort();
    mw_dynbuf_free(&j);
}

/* header.claims.signature, ES256 with r || s. */
static void sign(mw_slice header, mw_slice claims, struct mw_dynbuf *out)
{
    b64url(header.p, header.n, out);
    if (mw_failed(mw_dynbuf_add_byte(out, '.')))
        abort();
    b64url(claims.p, claims.n, out);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char der[128], rs[64];
    size_t dl = sizeof(der);
    if (ctx == NULL || EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
        EVP_DigestSign(ctx, der, &dl, out->p, out->n) != 1)
        abort();
    EVP_MD_CTX_free(ctx);
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    if (es == NULL || BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32) != 32)
        abort();
    ECDSA_SIG_free(es);
    if (mw_failed(mw_dynbuf_add_byte(out, '.')))
        abort();
    b64url(rs, 64, out);
}

static void check_identity(const struct mw_k8s_identity *id)
{
    char uri[MW_SPIFFE_ID_MAX + 1], want[MW_SPIFFE_ID_MAX + 1];
    if (!mw_k8s_is_dns_label(mw_slice_cstr(id->ns)) ||
        !mw_k8s_is_dns_subdomain(mw_slice_cstr(id->sa)))
        abort();
    snprintf(want, sizeof(want), "spiffe://example.org/ns/%s/sa/%s", id->ns, id->sa);
    if (!mw_spiffe_id_format(&id->id, uri, sizeof(uri)) || strcmp(uri, want) != 0)
        abort();
    if (id->exp + 60 <= NOW)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (verifier == NULL)
        init();
    if (size < 1)
        return 0;
    mw_slice rest = mw_slice_make(data + 1, size - 1);
    struct mw_clock clk = mw_clock_fixed(NOW);
    struct mw_k8s_identity id;
    struct mw_dynbuf tok;
    mw_dynbuf_init(&tok, 1u << 20);
    static const char good_claims[] =
        "{\"aud\":\"meshward-ca\",\"exp\":1795525200,\"iss\":\"https://kubernetes.default.svc\","
        "\"sub\":\"system:serviceaccount:ns:sa\"}";
    switch (data[0] % 4) {
    case 0:
        if (mw_ok(mw_k8s_token_verify(verifier, rest, &clk, &id)))
            check_identity(&id);
        break;
    case 1:
        sign(mw_slice_cstr("{\"alg\":\"ES256\",\"kid\":\"k1\"}"), rest, &tok);
        if (mw_ok(mw_k8s_token_verify(verifier, mw_dynbuf_slice(&tok), &clk, &id)))
            check_identity(&id);
        break;
    case 2:
        sign(rest, mw_slice_cstr(good_claims), &tok);
        if (mw_ok(mw_k8s_token_verify(verifier, mw_dynbuf_slice(&tok), &clk, &id)))
            check_identity(&id);
        break;
    default: {
        struct mw_k8s_verifier *v = NULL;
        if (mw_ok(mw_k8s_verifier_new(rest, &cfg, &v)))
            mw_k8s_verifier_free(v);
        break;
    }
    }
    mw_dynbuf_free(&tok);
    mw_error_clear();
    return 0;
}
