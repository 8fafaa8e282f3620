#include "testutil.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <string.h>

#include <meshward/tlog.h>

/*
 * The example key pair and signed note of golang.org/x/mod/sumdb/note, the
 * reference implementation of C2SP signed notes. Ed25519 is deterministic, so
 * our signature must equal theirs byte for byte.
 */
static const char go_vkey[] = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
static const char go_skey[] =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
static const char go_text[] = "If you think cryptography is the answer to your problem,\n"
                              "then you don't know what your problem is.\n";
static const char go_note[] =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\xe2\x80\x94 PeterNeumann "
    "x08go/ZJkuBS9UG/"
    "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

static void test_go_reference_sign_and_open(void **state)
{
    (void)state;
    struct mw_note_signer *s;
    mw_assert_ok(mw_note_signer_new(mw_slice_cstr(go_skey), &s));
    struct mw_dynbuf out;
    mw_dynbuf_init(&out, 4096);
    mw_assert_ok(mw_note_sign(s, mw_slice_cstr(go_text), &out));
    assert_string_equal(mw_dynbuf_cstr(&out), go_note);
    mw_dynbuf_reset(&out);
    mw_assert_ok(mw_note_signer_vkey(s, &out));
    assert_string_equal(mw_dynbuf_cstr(&out), go_vkey);
    mw_dynbuf_free(&out);
    mw_note_signer_free(s);

    struct mw_note_verifier *v;
    mw_assert_ok(mw_note_verifier_new(mw_slice_cstr(go_vkey), &v));
    mw_slice text;
    mw_assert_ok(mw_note_open(mw_slice_cstr(go_note), &v, 1, &text));
    assert_true(mw_slice_eq_cstr(text, go_text));
    mw_note_verifier_free(v);
}

static void test_tampering_and_unknown_keys(void **state)
{
    (void)state;
    struct mw_note_verifier *v;
    mw_assert_ok(mw_note_verifier_new(mw_slice_cstr(go_vkey), &v));
    mw_slice text;
    char buf[sizeof(go_note)];
    memcpy(buf, go_note, sizeof(go_note));
    buf[3] = 'Y'; /* "If yOu" */
    mw_assert_fails(mw_note_open(mw_slice_cstr(buf), &v, 1, &text), MW_E_VERIFY);

    /* No trusted key at all. */
    mw_assert_fails(mw_note_open(mw_slice_cstr(go_note), NULL, 0, &text), MW_E_VERIFY);

    /* A signature from another key with the same name is ignored; the known one still counts. */
    struct mw_dynbuf note;
    mw_dynbuf_init(&note, 8192);
    mw_assert_ok(mw_dynbuf_add_cstr(&note, go_note));
    mw_assert_ok(mw_dynbuf_add_cstr(&note, "\xe2\x80\x94 PeterNeumann "
                                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"));
    mw_assert_ok(mw_note_open(mw_dynbuf_slice(&note), &v, 1, &text));
    /* The same signature twice is malformed. */
    mw_dynbuf_reset(&note);
    mw_assert_ok(mw_dynbuf_add_cstr(&note, go_note));
    const char *sigline = strstr(go_note, "\xe2\x80\x94");
    mw_assert_ok(mw_dynbuf_add_cstr(&note, sigline));
    mw_assert_fails(mw_note_open(mw_dynbuf_slice(&note), &v, 1, &text), MW_E_INPUT);
    mw_dynbuf_free(&note);
    mw_note_verifier_free(v);
}

static void test_malformed_notes(void **state)
{
    (void)state;
    struct mw_note_verifier *v;
    mw_assert_ok(mw_note_verifier_new(mw_slice_cstr(go_vkey), &v));
    static const char *bad[] = {
        "",
        "text\n",
        "text\n\n",
        "text\n\n\xe2\x80\x94 PeterNeumann x08go\n",
        "text\n\n- PeterNeumann AAAAAAAA\n",
        "text\n\n\xe2\x80\x94 PeterNeumann AAAAAAAA",
        "text\r\n\n\xe2\x80\x94 PeterNeumann AAAAAAAA\n",
        "te\x01xt\n\n\xe2\x80\x94 PeterNeumann AAAAAAAA\n",
        "t\xc0\xafxt\n\n\xe2\x80\x94 PeterNeumann AAAAAAAA\n",     /* overlong UTF-8 */
        "t\xed\xa0\x80xt\n\n\xe2\x80\x94 PeterNeumann AAAAAAAA\n", /* surrogate */
        "text\n\n\xe2\x80\x94 Peter+Neumann AAAAAAAA\n",
        "text\n\n\xe2\x80\x94  AAAAAAAA\n",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        mw_slice text;
        if (mw_ok(mw_note_open(mw_slice_cstr(bad[i]), &v, 1, &text)))
            fail_msg("malformed note %zu was accepted", i);
    }
    /* More than 100 signature lines. */
    struct mw_dynbuf note;
    mw_dynbuf_init(&note, 1 << 20);
    mw_assert_ok(mw_dynbuf_add_cstr(&note, go_note));
    for (int i = 0; i < 101; i++)
        mw_assert_ok(mw_dynbuf_addf(&note, "\xe2\x80\x94 other%d AAAAAAAAAAAA\n", i));
    mw_slice text;
    mw_assert_fails(mw_note_open(mw_dynbuf_slice(&note), &v, 1, &text), MW_E_LIMIT);
    mw_dynbuf_free(&note);
    mw_note_verifier_free(v);
}

/* Every proper substring and every one-byte change of a verifier key is refused. */
static void test_verifier_key_manglings(void **state)
{
    (void)state;
    size_t n = strlen(go_vkey);
    int refused = 0;
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i + 1; j <= n; j++) {
            if (i == 0 && j == n)
                continue;
            struct mw_note_verifier *v = NULL;
            if (mw_ok(mw_note_verifier_new(mw_slice_make(go_vkey + i, j - i), &v)))
                fail_msg("substring [%zu,%zu) accepted", i, j);
            refused++;
        }
    }
    char k[sizeof(go_vkey)];
    for (size_t i = 0; i < n; i++) {
        memcpy(k, go_vkey, sizeof(k));
        k[i]++;
        struct mw_note_verifier *v = NULL;
        if (mw_ok(mw_note_verifier_new(mw_slice_make(k, n), &v)))
            fail_msg("key changed at %zu accepted", i);
        refused++;
    }
    assert_true(refused > 2000);
}

static void test_keygen_roundtrip(void **state)
{
    (void)state;
    struct mw_dynbuf sk, vk, note;
    mw_dynbuf_init_secure(&sk, 512);
    mw_dynbuf_init(&vk, 512);
    mw_dynbuf_init(&note, 4096);
    mw_assert_ok(mw_note_keygen("meshward.example/issuance", &sk, &vk));
    assert_true(strncmp(mw_dynbuf_cstr(&sk), "PRIVATE+KEY+meshward.example/issuance+", 38) == 0);
    struct mw_note_signer *s;
    struct mw_note_verifier *v;
    mw_assert_ok(mw_note_signer_new(mw_dynbuf_slice(&sk), &s));
    mw_assert_ok(mw_note_verifier_new(mw_dynbuf_slice(&vk), &v));
    mw_assert_ok(mw_note_sign(s, mw_slice_cstr("meshward.example/issuance\n3\nAAAA\n"), &note));
    mw_slice text;
    mw_assert_ok(mw_note_open(mw_dynbuf_slice(&note), &v, 1, &text));
    mw_assert_fails(mw_note_sign(s, mw_slice_cstr("no newline"), &note), MW_E_INPUT);
    mw_assert_fails(mw_note_keygen("bad name", &sk, &vk), MW_E_INPUT);
    mw_note_signer_free(s);
    mw_note_verifier_free(v);
    mw_dynbuf_free(&sk);
    mw_dynbuf_free(&vk);
    mw_dynbuf_free(&note);
}

/* Type 0x02 (ECDSA, as Rekor v1 signs checkpoints): made here with OpenSSL. */
static void test_ecdsa_verifier(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    unsigned char *der = NULL;
    int derlen = i2d_PUBKEY(key, &der);
    assert_true(derlen > 0);
    struct mw_note_verifier *v;
    mw_assert_ok(
        mw_note_verifier_new_ecdsa("rekor.example", mw_slice_make(der, (size_t)derlen), &v));

    const char *text = "rekor.example - 42\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    uint8_t digest[32];
    unsigned int dl;
    EVP_Digest(der, (size_t)derlen, digest, &dl, EVP_sha256(), NULL);
    uint8_t sig[4 + 128];
    memcpy(sig, digest, 4);
    size_t siglen = 128;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig + 4, &siglen, (const uint8_t *)text, strlen(text)), 1);
    EVP_MD_CTX_free(ctx);

    struct mw_dynbuf note;
    mw_dynbuf_init(&note, 4096);
    mw_assert_ok(mw_dynbuf_addf(&note, "%s\n\xe2\x80\x94 rekor.example ", text));
    mw_assert_ok(mw_b64_encode(mw_slice_make(sig, 4 + siglen), MW_B64_STD, &note));
    mw_assert_ok(mw_dynbuf_add_byte(&note, '\n'));
    mw_slice out;
    mw_assert_ok(mw_note_open(mw_dynbuf_slice(&note), &v, 1, &out));
    struct mw_checkpoint cp;
    mw_assert_ok(mw_checkpoint_parse(out, &cp));
    assert_string_equal(cp.origin, "rekor.example - 42");
    assert_true(cp.size == 7);
    note.p[5] ^= 1;
    mw_assert_fails(mw_note_open(mw_dynbuf_slice(&note), &v, 1, &out), MW_E_VERIFY);

    mw_dynbuf_free(&note);
    mw_note_verifier_free(v);
    OPENSSL_free(der);
    EVP_PKEY_free(key);
}

static void test_checkpoint_parse(void **state)
{
    (void)state;
    struct mw_checkpoint c;
    mw_assert_ok(mw_checkpoint_parse(
        mw_slice_cstr(
            "example.com/log\n1234\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next a\n"),
        &c));
    assert_string_equal(c.origin, "example.com/log");
    assert_true(c.size == 1234);
    assert_true(mw_slice_eq_cstr(c.extensions, "ext a\n"));
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1024);
    mw_assert_ok(mw_checkpoint_format(&c, &b));
    assert_string_equal(mw_dynbuf_cstr(&b),
                        "example.com/log\n1234\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n");
    mw_dynbuf_free(&b);
    static const char *bad[] = {
        "",
        "origin\n",
        "origin\n12\n",
        "\n12\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "origin\n012\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "origin\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "origin\n18446744073709551616\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "origin\n12\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\n",
        "origin\n12\nAAAA\n",
        "origin\n12\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(bad); i++) {
        if (mw_ok(mw_checkpoint_parse(mw_slice_cstr(bad[i]), &c)))
            fail_msg("bad checkpoint %zu accepted", i);
        assert_int_equal(mw_error_code(), MW_E_INPUT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_go_reference_sign_and_open),
        cmocka_unit_test(test_tampering_and_unknown_keys),
        cmocka_unit_test(test_malformed_notes),
        cmocka_unit_test(test_verifier_key_manglings),
        cmocka_unit_test(test_keygen_roundtrip),
        cmocka_unit_test(test_ecdsa_verifier),
        cmocka_unit_test(test_checkpoint_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
