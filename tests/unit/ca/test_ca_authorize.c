/* Registrations and the authorization decision before issuance. */
#include "testutil.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include <meshward/ca_auth.h>

#define NOW     1795521600
#define ISS     "https://kubernetes.default.svc.cluster.local"
#define IMG_OK  "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define IMG_NEW "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define ATT     "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const char *REGS = "apiVersion: meshward.io/v1alpha1\n"
                          "kind: WorkloadRegistration\n"
                          "metadata: {name: api}\n"
                          "spec:\n"
                          "  kubernetes: {namespace: shop, serviceAccount: api}\n"
                          "  requiresProvenance: true\n"
                          "  maxTTL: 20m\n"
                          "---\n"
                          "apiVersion: meshward.io/v1alpha1\n"
                          "kind: WorkloadRegistration\n"
                          "metadata: {name: web}\n"
                          "spec:\n"
                          "  kubernetes: {namespace: shop, serviceAccount: web}\n"
                          "  images: [" IMG_OK "]\n"
                          "---\n"
                          "apiVersion: meshward.io/v1alpha1\n"
                          "kind: WorkloadRegistration\n"
                          "metadata: {name: db-host}\n"
                          "spec:\n"
                          "  spiffeID: spiffe://example.org/host/db-1\n"
                          "  requiresProvenance: true\n";

struct fix {
    EVP_PKEY *key;
    struct mw_k8s_verifier *k8s;
    struct mw_ca_store *store;
    struct mw_ca_registrations *regs;
    struct mw_clock clock;
    struct mw_ca_authz az;
};

static void b64url(const void *p, size_t n, struct mw_dynbuf *out)
{
    mw_assert_ok(mw_b64_encode(mw_slice_make(p, n), MW_B64_URL, out));
}

static void fix_open(struct fix *f)
{
    memset(f, 0, sizeof(*f));
    f->key = EVP_EC_gen("P-256");
    assert_non_null(f->key);
    unsigned char pt[65];
    size_t len = 0;
    assert_int_equal(
        EVP_PKEY_get_octet_string_param(f->key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &len), 1);
    struct mw_dynbuf jwks;
    mw_dynbuf_init(&jwks, 4096);
    mw_assert_ok(mw_dynbuf_add_cstr(&jwks, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":"
                                           "\"k1\",\"x\":\""));
    b64url(pt + 1, 32, &jwks);
    mw_assert_ok(mw_dynbuf_add_cstr(&jwks, "\",\"y\":\""));
    b64url(pt + 33, 32, &jwks);
    mw_assert_ok(mw_dynbuf_add_cstr(&jwks, "\"}]}"));
    struct mw_k8s_config cfg = {
        .issuer = ISS, .audience = "meshward-ca", .trust_domain = "example.org"};
    mw_assert_ok(mw_k8s_verifier_new(mw_dynbuf_slice(&jwks), &cfg, &f->k8s));
    mw_dynbuf_free(&jwks);
    char path[512];
    snprintf(path, sizeof(path), "%s/ca.db", mw_test_tmpdir());
    mw_assert_ok(mw_ca_store_open(path, &f->store));
    mw_assert_ok(mw_ca_registrations_parse(mw_slice_cstr(REGS), "regs.yaml", &f->regs));
    struct mw_ca_artifact a;
    memset(&a, 0, sizeof(a));
    snprintf(a.image_digest, sizeof(a.image_digest), IMG_OK);
    snprintf(a.attestation_digest, sizeof(a.attestation_digest), ATT);
    snprintf(a.builder_id, sizeof(a.builder_id), "https://builder.example/v1");
    a.admitted_at = NOW - 100;
    mw_assert_ok(mw_ca_artifact_put(f->store, &a));
    f->clock = mw_clock_fixed(NOW);
    f->az = (struct mw_ca_authz){.k8s = f->k8s,
                                 .store = f->store,
                                 .regs = f->regs,
                                 .trust_domain = "example.org",
                                 .max_ttl_s = 3600,
                                 .clock = &f->clock};
}

static void fix_close(struct fix *f)
{
    mw_ca_registrations_free(f->regs);
    mw_ca_store_close(f->store);
    mw_k8s_verifier_free(f->k8s);
    EVP_PKEY_free(f->key);
}

static void sa_token(struct fix *f, const char *ns, const char *sa, const char *aud,
                     struct mw_dynbuf *out)
{
    char claims[1024];
    snprintf(claims, sizeof(claims),
             "{\"aud\":[\"%s\"],\"exp\":%d,\"iat\":%d,\"iss\":\"" ISS "\","
             "\"sub\":\"system:serviceaccount:%s:%s\"}",
             aud, NOW + 600, NOW - 10, ns, sa);
    const char *hdr = "{\"alg\":\"ES256\",\"kid\":\"k1\"}";
    mw_dynbuf_init(out, 8192);
    b64url(hdr, strlen(hdr), out);
    mw_assert_ok(mw_dynbuf_add_byte(out, '.'));
    b64url(claims, strlen(claims), out);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, f->key, NULL), 1);
    unsigned char der[128];
    size_t dl = sizeof(der);
    assert_int_equal(EVP_DigestSign(ctx, der, &dl, out->p, out->n), 1);
    EVP_MD_CTX_free(ctx);
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    unsigned char rs[64];
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32), 32);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32), 32);
    ECDSA_SIG_free(es);
    mw_assert_ok(mw_dynbuf_add_byte(out, '.'));
    b64url(rs, 64, out);
}

static void grant_fails(struct fix *f, enum mw_ca_cred_kind kind, mw_slice cred, const char *image,
                        const char *want)
{
    struct mw_ca_authz_request req = {.kind = kind, .credential = cred, .image_digest = image};
    struct mw_ca_grant g;
    mw_assert_fails(mw_ca_authorize(&f->az, &req, &g), MW_E_VERIFY);
    if (strstr(mw_error_msg(), want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", mw_error_msg(), want);
}

static void test_registrations_parse(void **state)
{
    struct mw_ca_registrations *r = NULL;
    mw_assert_ok(mw_ca_registrations_parse(mw_slice_cstr(REGS), "regs.yaml", &r));
    assert_int_equal(mw_ca_registrations_count(r), 3);
    struct mw_spiffe_id id;
    mw_assert_ok(
        mw_spiffe_id_parse(mw_slice_cstr("spiffe://example.org/ns/shop/sa/web"), &id, NULL));
    assert_string_equal(mw_ca_registrations_find(r, &id)->name, "web");
    mw_assert_ok(mw_spiffe_id_parse(mw_slice_cstr("spiffe://example.org/host/db-1"), &id, NULL));
    assert_string_equal(mw_ca_registrations_find(r, &id)->name, "db-host");
    mw_assert_ok(
        mw_spiffe_id_parse(mw_slice_cstr("spiffe://example.org/ns/shop/sa/web/x"), &id, NULL));
    assert_null(mw_ca_registrations_find(r, &id));
    mw_ca_registrations_free(r);

    static const char *head = "apiVersion: meshward.io/v1alpha1\nkind: WorkloadRegistration\n"
                              "metadata: {name: x}\nspec:\n";
    static const char *bad[] = {
        "  kubernetes: {namespace: a, serviceAccount: b}\n  spiffeID: spiffe://td/a\n",
        "  {}\n",
        "  spiffeID: spiffe://td\n",
        "  spiffeID: spiffe://TD/a\n",
        "  kubernetes: {namespace: A, serviceAccount: b}\n",
        "  kubernetes: {namespace: a, serviceAccount: b, extra: 1}\n",
        "  kubernetes: {namespace: a}\n",
        "  spiffeID: spiffe://td/a\n  requiresProvenence: true\n",
        "  spiffeID: spiffe://td/a\n  requiresProvenance: yes\n",
        "  spiffeID: spiffe://td/a\n  images: []\n",
        "  spiffeID: spiffe://td/a\n  images: [sha256:abc]\n",
        "  spiffeID: spiffe://td/a\n  maxTTL: 0s\n",
        "  spiffeID: spiffe://td/a\n  maxTTL: 365d\n",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        char y[1024];
        snprintf(y, sizeof(y), "%s%s", head, bad[i]);
        if (mw_ok(mw_ca_registrations_parse(mw_slice_cstr(y), "r.yaml", &r)))
            fail_msg("registration case %zu accepted", i);
        assert_null(r);
        assert_non_null(strstr(mw_error_msg(), "r.yaml"));
    }
    /* Another kind, and two registrations for one workload. */
    mw_assert_fails(
        mw_ca_registrations_parse(mw_slice_cstr("apiVersion: meshward.io/v1alpha1\nkind: Pod\n"
                                                "metadata: {name: x}\nspec: {}\n"),
                                  "r.yaml", &r),
        MW_E_INPUT);
    char dup[1024];
    snprintf(dup, sizeof(dup), "%s  spiffeID: spiffe://td/a\n---\n%s  spiffeID: spiffe://td/a\n",
             head, head);
    mw_assert_fails(mw_ca_registrations_parse(mw_slice_cstr(dup), "r.yaml", &r), MW_E_INPUT);
    assert_non_null(strstr(mw_error_msg(), "select the same workload"));
}

static void test_k8s_provenance(void **state)
{
    struct fix f;
    fix_open(&f);
    struct mw_dynbuf tok;
    sa_token(&f, "shop", "api", "meshward-ca", &tok);
    struct mw_ca_authz_request req = {
        .kind = MW_CA_CRED_K8S, .credential = mw_dynbuf_slice(&tok), .image_digest = IMG_OK};
    struct mw_ca_grant g;
    mw_assert_ok(mw_ca_authorize(&f.az, &req, &g));
    char uri[256];
    assert_true(mw_spiffe_id_format(&g.id, uri, sizeof(uri)));
    assert_string_equal(uri, "spiffe://example.org/ns/shop/sa/api");
    assert_string_equal(g.subject, "system:serviceaccount:shop:api");
    assert_true(g.registered);
    assert_string_equal(g.registration, "api");
    assert_true(g.has_provenance);
    assert_string_equal(g.provenance.attestation_digest, ATT);
    assert_string_equal(g.provenance.builder_id, "https://builder.example/v1");
    assert_int_equal(g.max_ttl_s, 1200); /* the registration's 20m, below the CA's 1h */

    grant_fails(
        &f, MW_CA_CRED_K8S, mw_dynbuf_slice(&tok), IMG_NEW,
        "workload spiffe://example.org/ns/shop/sa/api requires provenance, but image " IMG_NEW
        " is not admitted");
    grant_fails(&f, MW_CA_CRED_K8S, mw_dynbuf_slice(&tok), NULL,
                "requires provenance, but the request names no image digest");
    mw_dynbuf_free(&tok);
    /* A token for another audience. */
    sa_token(&f, "shop", "api", "vault", &tok);
    grant_fails(&f, MW_CA_CRED_K8S, mw_dynbuf_slice(&tok), IMG_OK,
                "Kubernetes token refused: audience [vault] does not include meshward-ca");
    mw_dynbuf_free(&tok);
    fix_close(&f);
}

static void test_images_and_unregistered(void **state)
{
    struct fix f;
    fix_open(&f);
    struct mw_dynbuf tok;
    sa_token(&f, "shop", "web", "meshward-ca", &tok);
    struct mw_ca_authz_request req = {
        .kind = MW_CA_CRED_K8S, .credential = mw_dynbuf_slice(&tok), .image_digest = IMG_OK};
    struct mw_ca_grant g;
    mw_assert_ok(mw_ca_authorize(&f.az, &req, &g));
    assert_true(g.has_provenance); /* not required, but admitted: the SVID says so */
    assert_int_equal(g.max_ttl_s, 3600);
    grant_fails(&f, MW_CA_CRED_K8S, mw_dynbuf_slice(&tok), IMG_NEW,
                "may run only the images its registration web lists");
    grant_fails(&f, MW_CA_CRED_K8S, mw_dynbuf_slice(&tok), NULL, "names no image digest");
    mw_dynbuf_free(&tok);

    sa_token(&f, "kube-system", "admin", "meshward-ca", &tok);
    grant_fails(&f, MW_CA_CRED_K8S, mw_dynbuf_slice(&tok), NULL,
                "workload spiffe://example.org/ns/kube-system/sa/admin is not registered");
    f.az.allow_unregistered = true;
    req.credential = mw_dynbuf_slice(&tok);
    req.image_digest = IMG_NEW; /* not admitted, not required: no provenance, no refusal */
    mw_assert_ok(mw_ca_authorize(&f.az, &req, &g));
    assert_false(g.registered);
    assert_false(g.has_provenance);
    req.image_digest = "sha256:nothex";
    mw_assert_fails(mw_ca_authorize(&f.az, &req, &g), MW_E_INPUT);
    mw_dynbuf_free(&tok);

    /* No JWKS configured: Kubernetes tokens are refused outright. */
    f.az.k8s = NULL;
    grant_fails(&f, MW_CA_CRED_K8S, mw_slice_cstr("a.b.c"), NULL, "not accepted by this CA");
    fix_close(&f);
}

static void test_join(void **state)
{
    struct fix f;
    fix_open(&f);
    struct mw_spiffe_id id;
    mw_assert_ok(mw_spiffe_id_parse(mw_slice_cstr("spiffe://example.org/host/db-1"), &id, NULL));
    struct mw_dynbuf tok;
    mw_dynbuf_init_secure(&tok, 256);
    struct mw_ca_join_info info;
    mw_assert_ok(mw_ca_join_create(f.store, &id, 600, &f.clock, &tok, &info));
    /* Refused for provenance: the token is not spent. */
    grant_fails(&f, MW_CA_CRED_JOIN, mw_dynbuf_slice(&tok), IMG_NEW, "is not admitted");
    struct mw_ca_authz_request req = {
        .kind = MW_CA_CRED_JOIN, .credential = mw_dynbuf_slice(&tok), .image_digest = IMG_OK};
    struct mw_ca_grant g;
    mw_assert_ok(mw_ca_authorize(&f.az, &req, &g));
    assert_int_equal(g.kind, MW_CA_CRED_JOIN);
    char subj[64];
    snprintf(subj, sizeof(subj), "join:%s", info.handle);
    assert_string_equal(g.subject, subj);
    assert_true(g.has_provenance);
    /* Replay. */
    grant_fails(&f, MW_CA_CRED_JOIN, mw_dynbuf_slice(&tok), IMG_OK, "already used at");
    mw_dynbuf_reset(&tok);
    /* A token for another trust domain. */
    mw_assert_ok(mw_spiffe_id_parse(mw_slice_cstr("spiffe://other.org/host/db-1"), &id, NULL));
    mw_assert_ok(mw_ca_join_create(f.store, &id, 600, &f.clock, &tok, &info));
    grant_fails(&f, MW_CA_CRED_JOIN, mw_dynbuf_slice(&tok), IMG_OK,
                "outside this CA's trust domain example.org");
    mw_dynbuf_free(&tok);
    fix_close(&f);
}

static void renewal_fails(struct fix *f, const char *id, const char *serial, const char *image,
                          enum mw_err code, const char *says)
{
    struct mw_ca_renewal_request rr = {.serial = serial, .image_digest = image};
    mw_assert_ok(mw_spiffe_id_parse(mw_slice_cstr(id), &rr.id, NULL));
    struct mw_ca_grant g;
    mw_assert_fails(mw_ca_authorize_renewal(&f->az, &rr, &g), code);
    if (strstr(mw_error_msg(), says) == NULL)
        fail_msg("renewal of %s: \"%s\", want \"%s\"", id, mw_error_msg(), says);
}

static void test_renewal(void **state)
{
    struct fix f;
    fix_open(&f);
    /* Provenance recomputed from the store for the old SVID's image; registration's maxTTL. */
    struct mw_ca_renewal_request rr = {.serial = "7f0a", .image_digest = IMG_OK};
    mw_assert_ok(
        mw_spiffe_id_parse(mw_slice_cstr("spiffe://example.org/ns/shop/sa/api"), &rr.id, NULL));
    struct mw_ca_grant g;
    mw_assert_ok(mw_ca_authorize_renewal(&f.az, &rr, &g));
    assert_int_equal(g.kind, MW_CA_CRED_SVID);
    assert_string_equal(g.subject, "svid:7f0a");
    assert_true(g.has_provenance);
    assert_string_equal(g.provenance.attestation_digest, ATT);
    assert_int_equal(g.max_ttl_s, 20 * 60);
    assert_string_equal(g.registration, "api");
    /* requiresProvenance: an old SVID without provenance, or an image no longer admitted. */
    renewal_fails(&f, "spiffe://example.org/ns/shop/sa/api", "7f0a", NULL, MW_E_VERIFY,
                  "the presented SVID carries no provenance");
    renewal_fails(&f, "spiffe://example.org/ns/shop/sa/api", "7f0a", IMG_NEW, MW_E_VERIFY,
                  "is not admitted");
    mw_assert_ok(mw_ca_artifact_remove(f.store, mw_slice_cstr(IMG_OK)));
    renewal_fails(&f, "spiffe://example.org/ns/shop/sa/api", "7f0a", IMG_OK, MW_E_VERIFY,
                  "is not admitted");
    /* The image list still applies. */
    renewal_fails(&f, "spiffe://example.org/ns/shop/sa/web", "1", IMG_NEW, MW_E_VERIFY,
                  "may run only the images");
    /* Unregistered, another trust domain, the CA's own identity, malformed serials. */
    renewal_fails(&f, "spiffe://example.org/ns/x/sa/y", "1", NULL, MW_E_VERIFY, "not registered");
    renewal_fails(&f, "spiffe://other.org/ns/shop/sa/web", "1", NULL, MW_E_VERIFY,
                  "outside this CA's trust domain");
    f.az.allow_unregistered = true;
    renewal_fails(&f, "spiffe://example.org/meshward/ca", "1", NULL, MW_E_VERIFY,
                  "CA service's own identity");
    const char *bad_serials[] = {"", "07f", "7F", "xyz",
                                 "12345678901234567890123456789012345678901"};
    for (size_t i = 0; i < MW_ARRAY_LEN(bad_serials); i++)
        renewal_fails(&f, "spiffe://example.org/ns/x/sa/y", bad_serials[i], NULL, MW_E_INPUT,
                      "serial");
    mw_assert_ok(mw_spiffe_id_parse(mw_slice_cstr("spiffe://example.org/ns/x/sa/y"), &rr.id, NULL));
    rr.image_digest = NULL;
    mw_assert_ok(mw_ca_authorize_renewal(&f.az, &rr, &g));
    assert_false(g.has_provenance);
    /* A join token for the CA's own identity is refused, and not spent. */
    struct mw_spiffe_id id;
    mw_assert_ok(mw_spiffe_id_parse(mw_slice_cstr("spiffe://example.org/meshward/ca"), &id, NULL));
    struct mw_dynbuf tok;
    mw_dynbuf_init_secure(&tok, 256);
    struct mw_ca_join_info info;
    mw_assert_ok(mw_ca_join_create(f.store, &id, 600, &f.clock, &tok, &info));
    grant_fails(&f, MW_CA_CRED_JOIN, mw_dynbuf_slice(&tok), NULL, "CA service's own identity");
    mw_assert_ok(mw_ca_join_check(f.store, mw_dynbuf_slice(&tok), &f.clock, &info));
    assert_false(info.used);
    mw_dynbuf_free(&tok);
    fix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registrations_parse),
        cmocka_unit_test(test_k8s_provenance),
        cmocka_unit_test(test_images_and_unregistered),
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_renewal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
