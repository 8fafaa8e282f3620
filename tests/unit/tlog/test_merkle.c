#include "testutil.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <meshward/tlog.h>

/* Decode base64 into a hash; false unless it is exactly 32 bytes. */
static bool decode_hash(json_t *v, mw_tlog_hash *out)
{
    if (!json_is_string(v))
        return false;
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1024);
    bool ok = mw_ok(mw_b64_decode(mw_slice_cstr(json_string_value(v)), MW_B64_STD, &b)) &&
              b.n == MW_TLOG_HASH_LEN;
    if (ok)
        memcpy(out->b, b.p, MW_TLOG_HASH_LEN);
    mw_dynbuf_free(&b);
    return ok;
}

/* Proof array into hashes; false if any element is not a 32-byte hash. */
static bool decode_proof(json_t *arr, mw_tlog_hash *proof, size_t max, size_t *n)
{
    *n = 0;
    if (json_is_null(arr))
        return true;
    if (!json_is_array(arr) || json_array_size(arr) > max)
        return false;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (!decode_hash(json_array_get(arr, i), &proof[i]))
            return false;
    }
    *n = json_array_size(arr);
    return true;
}

struct tally {
    int agree, disagree;
};

/*
 * The vectors hold sizes up to 2^64-1, past what jansson's json_int_t holds,
 * so integers are read from the file's text with the range-checked parser.
 */
static bool u64_of(const char *text, const char *key, uint64_t *out)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *at = strstr(text, pat);
    if (at == NULL)
        return false;
    at += strlen(pat);
    while (*at == ' ')
        at++;
    size_t n = 0;
    while (at[n] >= '0' && at[n] <= '9')
        n++;
    return mw_ok(mw_parse_u64(mw_slice_make(at, n), 0, UINT64_MAX, key, out));
}

static bool bytes_of(json_t *v, struct mw_dynbuf *b)
{
    return json_is_string(v) &&
           mw_ok(mw_b64_decode(mw_slice_cstr(json_string_value(v)), MW_B64_STD, b));
}

static void run_inclusion(const char *path, const char *text, json_t *c, struct tally *t)
{
    mw_tlog_hash leaf, root, proof[128];
    size_t n;
    uint64_t idx, size;
    bool want_err = json_is_true(json_object_get(c, "wantErr"));
    bool parsed = u64_of(text, "leafIdx", &idx) && u64_of(text, "treeSize", &size) &&
                  decode_hash(json_object_get(c, "leafHash"), &leaf) &&
                  decode_hash(json_object_get(c, "root"), &root) &&
                  decode_proof(json_object_get(c, "proof"), proof, 128, &n);
    mw_error_clear();
    bool got_err =
        !parsed || mw_failed(mw_tlog_verify_inclusion(idx, size, &leaf, proof, n, &root));
    if (got_err == want_err) {
        t->agree++;
    } else {
        t->disagree++;
        print_message("inclusion %s: wantErr=%d, got error=%d (%s)\n", path, want_err, got_err,
                      parsed ? mw_error_msg() : "did not parse");
    }
}

static void run_consistency(const char *path, const char *text, json_t *c, struct tally *t)
{
    mw_tlog_hash proof[128];
    size_t n;
    uint64_t s1, s2;
    struct mw_dynbuf r1, r2;
    mw_dynbuf_init(&r1, 1024);
    mw_dynbuf_init(&r2, 1024);
    bool want_err = json_is_true(json_object_get(c, "wantErr"));
    bool parsed = u64_of(text, "size1", &s1) && u64_of(text, "size2", &s2) &&
                  bytes_of(json_object_get(c, "root1"), &r1) &&
                  bytes_of(json_object_get(c, "root2"), &r2) &&
                  decode_proof(json_object_get(c, "proof"), proof, 128, &n);
    mw_error_clear();
    bool got_err = !parsed || mw_failed(mw_tlog_verify_consistency(s1, s2, mw_dynbuf_slice(&r1),
                                                                   mw_dynbuf_slice(&r2), proof, n));
    mw_dynbuf_free(&r1);
    mw_dynbuf_free(&r2);
    if (got_err == want_err) {
        t->agree++;
    } else {
        t->disagree++;
        print_message("consistency %s: wantErr=%d, got error=%d (%s)\n", path, want_err, got_err,
                      parsed ? mw_error_msg() : "did not parse");
    }
}

static void walk(const char *dir, bool inclusion, struct tally *t)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        fail_msg("cannot open %s", dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            walk(path, inclusion, t);
            continue;
        }
        if (strlen(e->d_name) < 5 || strcmp(e->d_name + strlen(e->d_name) - 5, ".json") != 0)
            continue;
        struct mw_dynbuf text;
        mw_dynbuf_init(&text, 1 << 20);
        mw_assert_ok(mw_file_read(path, 1 << 20, &text));
        json_error_t err;
        /* Integers as reals: jansson refuses 2^64-1 otherwise; u64_of reads them exactly. */
        json_t *c = json_loadb((const char *)text.p, text.n,
                               JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &err);
        if (c == NULL)
            fail_msg("%s: %s", path, err.text);
        if (inclusion)
            run_inclusion(path, mw_dynbuf_cstr(&text), c, t);
        else
            run_consistency(path, mw_dynbuf_cstr(&text), c, t);
        json_decref(c);
        mw_dynbuf_free(&text);
    }
    closedir(d);
}

/* transparency-dev/merkle testdata: every inclusion vector agrees. */
static void test_inclusion_vectors(void **state)
{
    (void)state;
    struct tally t = {0, 0};
    walk(mw_test_data("merkle/testdata/inclusion"), true, &t);
    print_message("inclusion vectors: %d agree, %d disagree\n", t.agree, t.disagree);
    assert_int_equal(t.agree, 98); /* the count in transparency-dev/merkle at 417fb0c */
    assert_int_equal(t.disagree, 0);
}

static void test_consistency_vectors(void **state)
{
    (void)state;
    struct tally t = {0, 0};
    walk(mw_test_data("merkle/testdata/consistency"), false, &t);
    print_message("consistency vectors: %d agree, %d disagree\n", t.agree, t.disagree);
    assert_int_equal(t.agree, 98); /* the count in transparency-dev/merkle at 417fb0c */
    assert_int_equal(t.disagree, 0);
}

/* RFC 6962 §2.1: MTH({}) = SHA-256(), and a leaf is hashed with a 0x00 prefix. */
static void test_known_hashes(void **state)
{
    (void)state;
    mw_tlog_hash h;
    struct mw_dynbuf hex;
    mw_dynbuf_init(&hex, 128);
    mw_tlog_empty_root(&h);
    mw_assert_ok(mw_hex_encode(mw_slice_make(h.b, 32), &hex));
    assert_string_equal(mw_dynbuf_cstr(&hex),
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    mw_dynbuf_reset(&hex);
    mw_tlog_leaf_hash(mw_slice_make(NULL, 0), &h);
    mw_assert_ok(mw_hex_encode(mw_slice_make(h.b, 32), &hex));
    /* SHA-256 of the single byte 0x00. */
    assert_string_equal(mw_dynbuf_cstr(&hex),
                        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    mw_dynbuf_free(&hex);
}

/* Proofs we generate verify, for every index and size pair up to 70 leaves; any flip fails. */
static void test_generated_proofs_roundtrip(void **state)
{
    (void)state;
    enum { N = 70 };
    mw_tlog_hash leaves[N], roots[N + 1], proof[128];
    for (int i = 0; i < N; i++) {
        char data[32];
        int len = snprintf(data, sizeof(data), "leaf %d", i);
        mw_tlog_leaf_hash(mw_slice_make(data, (size_t)len), &leaves[i]);
    }
    for (uint64_t n = 0; n <= N; n++)
        mw_assert_ok(mw_tlog_root(leaves, n, &roots[n]));
    for (uint64_t n = 1; n <= N; n++) {
        for (uint64_t i = 0; i < n; i++) {
            size_t len;
            mw_assert_ok(mw_tlog_inclusion_proof(leaves, n, i, proof, &len));
            mw_assert_ok(mw_tlog_verify_inclusion(i, n, &leaves[i], proof, len, &roots[n]));
            if (len > 0) {
                proof[len - 1].b[7] ^= 1;
                mw_assert_fails(mw_tlog_verify_inclusion(i, n, &leaves[i], proof, len, &roots[n]),
                                MW_E_VERIFY);
                proof[len - 1].b[7] ^= 1;
                mw_assert_fails(
                    mw_tlog_verify_inclusion(i, n, &leaves[i], proof, len - 1, &roots[n]),
                    MW_E_VERIFY);
            }
            /* The wrong index fails too (unless the tree has one leaf). */
            if (n > 1)
                mw_assert_fails(
                    mw_tlog_verify_inclusion((i + 1) % n, n, &leaves[i], proof, len, &roots[n]),
                    MW_E_VERIFY);
        }
        for (uint64_t m = 0; m <= n; m++) {
            size_t len;
            mw_assert_ok(mw_tlog_consistency_proof(leaves, m, n, proof, &len));
            mw_slice rm = mw_slice_make(roots[m].b, 32), rn = mw_slice_make(roots[n].b, 32);
            if (m == 0) {
                mw_assert_fails(mw_tlog_verify_consistency(m, n, rm, rn, proof, len), MW_E_INPUT);
                continue;
            }
            mw_assert_ok(mw_tlog_verify_consistency(m, n, rm, rn, proof, len));
            if (len > 0) {
                proof[0].b[0] ^= 0x80;
                mw_assert_fails(mw_tlog_verify_consistency(m, n, rm, rn, proof, len), MW_E_VERIFY);
                proof[0].b[0] ^= 0x80;
            }
            if (m > 0 && m < n)
                mw_assert_fails(mw_tlog_verify_consistency(m, n, rm, rm, proof, len), MW_E_VERIFY);
        }
    }
    mw_assert_fails(mw_tlog_inclusion_proof(leaves, 3, 3, proof, &(size_t){0}), MW_E_INPUT);
    mw_assert_fails(mw_tlog_consistency_proof(leaves, 4, 3, proof, &(size_t){0}), MW_E_INPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inclusion_vectors),
        cmocka_unit_test(test_consistency_vectors),
        cmocka_unit_test(test_known_hashes),
        cmocka_unit_test(test_generated_proofs_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
