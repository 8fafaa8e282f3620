#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <meshward/tlog.h>

struct keys {
    struct mw_dynbuf sk, vk;
    struct mw_note_signer *signer;
    struct mw_note_verifier *verifier;
};

static void keys_make(struct keys *k)
{
    mw_dynbuf_init_secure(&k->sk, 512);
    mw_dynbuf_init(&k->vk, 512);
    mw_assert_ok(mw_note_keygen("meshward.test/issuance", &k->sk, &k->vk));
    mw_assert_ok(mw_note_signer_new(mw_dynbuf_slice(&k->sk), &k->signer));
    mw_assert_ok(mw_note_verifier_new(mw_dynbuf_slice(&k->vk), &k->verifier));
}

static void keys_free(struct keys *k)
{
    mw_note_signer_free(k->signer);
    mw_note_verifier_free(k->verifier);
    mw_dynbuf_free(&k->sk);
    mw_dynbuf_free(&k->vk);
}

static void append_n(struct mw_tlog *log, uint64_t from, uint64_t n)
{
    char buf[64];
    for (uint64_t i = from; i < from + n; i++) {
        int len = snprintf(buf, sizeof(buf), "entry %llu", (unsigned long long)i);
        mw_slice e = mw_slice_make(buf, (size_t)len);
        uint64_t first;
        mw_assert_ok(mw_tlog_append(log, &e, 1, &first));
        assert_true(first == i);
    }
}

static bool exists(const char *dir, const char *rel)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    struct stat st;
    return stat(p, &st) == 0;
}

/* Tile paths and partial tiles as c2sp.org/tlog-tiles lays them out. */
static void test_layout_and_reopen(void **state)
{
    (void)state;
    struct keys k;
    keys_make(&k);
    const char *dir = mw_test_tmpdir();
    struct mw_tlog *log;
    mw_assert_ok(mw_tlog_open(dir, "meshward.test/issuance", k.signer, &log));
    assert_true(mw_tlog_size(log) == 0);
    assert_true(exists(dir, "checkpoint"));

    /* 300 single appends, then a batch of 100: 400 entries. */
    append_n(log, 0, 300);
    mw_slice batch[100];
    char bufs[100][32];
    for (int i = 0; i < 100; i++) {
        int len = snprintf(bufs[i], sizeof(bufs[i]), "entry %d", 300 + i);
        batch[i] = mw_slice_make(bufs[i], (size_t)len);
    }
    uint64_t first;
    mw_assert_ok(mw_tlog_append(log, batch, 100, &first));
    assert_true(first == 300);
    assert_true(mw_tlog_size(log) == 400);
    mw_tlog_close(log);

    assert_true(exists(dir, "tile/0/000"));
    assert_true(exists(dir, "tile/0/001.p/144"));
    assert_true(exists(dir, "tile/1/000.p/1"));
    assert_true(exists(dir, "tile/entries/000"));
    assert_true(exists(dir, "tile/entries/001.p/144"));

    struct mw_tlog_report rep;
    mw_assert_ok(mw_tlog_verify_dir(dir, k.verifier, NULL, &rep));
    assert_true(rep.checkpoint.size == 400);
    assert_true(rep.entries_checked == 400);
    assert_true(rep.tiles_checked == 3);

    /* Reopen and continue: the state comes back from the tiles. */
    mw_assert_ok(mw_tlog_open(dir, "meshward.test/issuance", k.signer, &log));
    assert_true(mw_tlog_size(log) == 400);
    append_n(log, 400, 113);
    mw_tlog_close(log);
    mw_assert_ok(mw_tlog_verify_dir(dir, k.verifier, NULL, &rep));
    assert_true(rep.checkpoint.size == 513);

    /* Entries read back with proofs that verify against the checkpoint. */
    for (uint64_t i = 0; i < 513; i += 37) {
        struct mw_dynbuf e;
        mw_dynbuf_init(&e, 1024);
        mw_tlog_hash proof[64], leaf;
        size_t len;
        struct mw_checkpoint cp;
        mw_assert_ok(mw_tlog_read_entry(dir, k.verifier, i, &e, proof, &len, &cp));
        char want[32];
        snprintf(want, sizeof(want), "entry %llu", (unsigned long long)i);
        assert_string_equal(mw_dynbuf_cstr(&e), want);
        mw_tlog_leaf_hash(mw_dynbuf_slice(&e), &leaf);
        mw_assert_ok(mw_tlog_verify_inclusion(i, cp.size, &leaf, proof, len, &cp.root));
        mw_dynbuf_free(&e);
    }
    keys_free(&k);
}

static void test_tamper_is_detected(void **state)
{
    (void)state;
    struct keys k;
    keys_make(&k);
    const char *dir = mw_test_tmpdir();
    struct mw_tlog *log;
    mw_assert_ok(mw_tlog_open(dir, "meshward.test/issuance", k.signer, &log));
    append_n(log, 0, 260);
    mw_tlog_close(log);

    /* Save the checkpoint at 260 for the --since check. */
    char cpath[4096];
    snprintf(cpath, sizeof(cpath), "%s/checkpoint", dir);
    struct mw_dynbuf old;
    mw_dynbuf_init(&old, 1 << 16);
    mw_assert_ok(mw_file_read(cpath, 1 << 16, &old));

    mw_assert_ok(mw_tlog_open(dir, "meshward.test/issuance", k.signer, &log));
    append_n(log, 260, 10);
    mw_tlog_close(log);
    struct mw_tlog_report rep;
    mw_slice since = mw_dynbuf_slice(&old);
    mw_assert_ok(mw_tlog_verify_dir(dir, k.verifier, &since, &rep));
    assert_true(rep.since_size == 260);

    /* Change one entry byte in a full bundle: verify and reopen both refuse. */
    char path[4096];
    snprintf(path, sizeof(path), "%s/tile/entries/000", dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 5, SEEK_SET);
    fputc('X', f);
    fclose(f);
    mw_assert_fails(mw_tlog_verify_dir(dir, k.verifier, NULL, &rep), MW_E_VERIFY);
    mw_assert_fails(mw_tlog_open(dir, "meshward.test/issuance", k.signer, &log), MW_E_VERIFY);

    /* A different log's checkpoint (other key) is refused. */
    struct keys other;
    keys_make(&other);
    mw_assert_fails(mw_tlog_verify_dir(dir, other.verifier, NULL, &rep), MW_E_VERIFY);
    /* Wrong origin. */
    mw_assert_fails(mw_tlog_open(dir, "other.origin", k.signer, &log), MW_E_INPUT);
    keys_free(&other);
    mw_dynbuf_free(&old);
    keys_free(&k);
}

struct walked {
    uint64_t n;
    bool in_order;
    uint64_t stop_at; /* fail with MW_E_STATE at this index */
};

static mw_result walk(void *ctx, uint64_t index, mw_slice entry)
{
    struct walked *w = ctx;
    char want[64];
    int len = snprintf(want, sizeof(want), "entry %llu", (unsigned long long)index);
    if (index != w->n || !mw_slice_eq(entry, mw_slice_make(want, (size_t)len)))
        w->in_order = false;
    w->n++;
    MW_ENSURE(index != w->stop_at, MW_E_STATE, "stop at %llu", (unsigned long long)index);
    return MW_SUCCESS;
}

/* mw_tlog_each_entry: every entry once, in order, and only from a log that verifies. */
static void test_each_entry(void **state)
{
    (void)state;
    struct keys k;
    keys_make(&k);
    const char *dir = mw_test_tmpdir();
    struct mw_tlog *log;
    mw_assert_ok(mw_tlog_open(dir, "meshward.test/issuance", k.signer, &log));
    append_n(log, 0, 300); /* one full tile and a partial one */
    mw_tlog_close(log);

    struct walked w = {.in_order = true, .stop_at = UINT64_MAX};
    mw_assert_ok(mw_tlog_each_entry(dir, k.verifier, walk, &w));
    assert_true(w.n == 300);
    assert_true(w.in_order);

    /* The callback's failure stops the walk and comes back as it is. */
    w = (struct walked){.in_order = true, .stop_at = 7};
    mw_assert_fails(mw_tlog_each_entry(dir, k.verifier, walk, &w), MW_E_STATE);
    assert_true(w.n == 8);

    /* Another key's view of the checkpoint: nothing is handed out. */
    struct keys other;
    keys_make(&other);
    w = (struct walked){.in_order = true, .stop_at = UINT64_MAX};
    mw_assert_fails(mw_tlog_each_entry(dir, other.verifier, walk, &w), MW_E_VERIFY);
    assert_true(w.n == 0);
    keys_free(&other);

    /* A changed entry in the partial tile is refused. */
    char path[4096];
    snprintf(path, sizeof(path), "%s/tile/entries/001.p/44", dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 5, SEEK_SET);
    fputc('X', f);
    fclose(f);
    w = (struct walked){.in_order = true, .stop_at = UINT64_MAX};
    mw_assert_fails(mw_tlog_each_entry(dir, k.verifier, walk, &w), MW_E_VERIFY);
    mw_assert_fails(mw_tlog_each_entry("/nonexistent/log", k.verifier, walk, &w), MW_E_NOTFOUND);
    keys_free(&k);
}

/* A checkpoint from a forked history is not a prefix. */
static void test_fork_is_detected(void **state)
{
    (void)state;
    struct keys k;
    keys_make(&k);
    char a[512], b[512];
    snprintf(a, sizeof(a), "%s", mw_test_tmpdir());
    snprintf(b, sizeof(b), "%s", mw_test_tmpdir());
    struct mw_tlog *log;
    mw_assert_ok(mw_tlog_open(a, "meshward.test/issuance", k.signer, &log));
    append_n(log, 0, 5);
    mw_tlog_close(log);
    mw_assert_ok(mw_tlog_open(b, "meshward.test/issuance", k.signer, &log));
    mw_slice e = mw_slice_cstr("a different history");
    uint64_t first;
    mw_assert_ok(mw_tlog_append(log, &e, 1, &first));
    append_n(log, 1, 9);
    mw_tlog_close(log);

    char cpath[4096];
    snprintf(cpath, sizeof(cpath), "%s/checkpoint", a);
    struct mw_dynbuf old;
    mw_dynbuf_init(&old, 1 << 16);
    mw_assert_ok(mw_file_read(cpath, 1 << 16, &old));
    struct mw_tlog_report rep;
    mw_slice since = mw_dynbuf_slice(&old);
    mw_assert_fails(mw_tlog_verify_dir(b, k.verifier, &since, &rep), MW_E_VERIFY);
    mw_dynbuf_free(&old);
    keys_free(&k);
}

static void test_rejects_bad_input(void **state)
{
    (void)state;
    struct keys k;
    keys_make(&k);
    const char *dir = mw_test_tmpdir();
    struct mw_tlog *log;
    mw_assert_fails(mw_tlog_open(dir, "", k.signer, &log), MW_E_INPUT);
    mw_assert_fails(mw_tlog_open(dir, "two\nlines", k.signer, &log), MW_E_INPUT);
    mw_assert_ok(mw_tlog_open(dir, "meshward.test/issuance", k.signer, &log));
    static uint8_t big[MW_TLOG_MAX_ENTRY + 1];
    mw_slice e = mw_slice_make(big, sizeof(big));
    uint64_t first;
    mw_assert_fails(mw_tlog_append(log, &e, 1, &first), MW_E_LIMIT);
    assert_true(mw_tlog_size(log) == 0);
    e.n = MW_TLOG_MAX_ENTRY;
    mw_assert_ok(mw_tlog_append(log, &e, 1, &first));
    mw_tlog_close(log);
    struct mw_tlog_report rep;
    mw_assert_ok(mw_tlog_verify_dir(dir, k.verifier, NULL, &rep));
    assert_true(rep.checkpoint.size == 1);
    mw_assert_fails(mw_tlog_verify_dir("/nonexistent/log", k.verifier, NULL, &rep), MW_E_NOTFOUND);
    keys_free(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_reopen), cmocka_unit_test(test_tamper_is_detected),
        cmocka_unit_test(test_fork_is_detected),  cmocka_unit_test(test_each_entry),
        cmocka_unit_test(test_rejects_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
