/*
 * `meshward log verify` reads a log directory that may have been copied from
 * anywhere: its entry bundles and tiles are untrusted. The harness builds a
 * one-tile log from the input (a width byte, that many level-0 hashes, then
 * an entry bundle), signs a checkpoint for it with a fixed key, and verifies
 * the directory. Whatever the bytes, verification must end in a verdict, and
 * it must accept only when every entry hashes to its level-0 hash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <meshward/tlog.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char skey[] =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
static const char vkey[] = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

static void put(const char *dir, const char *rel, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        abort();
    if (n > 0 && fwrite(p, 1, n, f) != n)
        abort();
    fclose(f);
}

static char dir[256];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The scratch directory goes when the fuzzer exits. */
static void cleanup(void)
{
    if (dir[0] != '\0')
        nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mw_note_signer *s;
    static struct mw_note_verifier *v;
    if (s == NULL) {
        snprintf(dir, sizeof(dir), "/tmp/mw-fuzz-tlog.%d", (int)getpid());
        atexit(cleanup);
        char p[300];
        mkdir(dir, 0755);
        snprintf(p, sizeof(p), "%s/tile", dir);
        mkdir(p, 0755);
        snprintf(p, sizeof(p), "%s/tile/0", dir);
        mkdir(p, 0755);
        snprintf(p, sizeof(p), "%s/tile/entries", dir);
        mkdir(p, 0755);
        snprintf(p, sizeof(p), "%s/tile/0/000.p", dir);
        mkdir(p, 0755);
        snprintf(p, sizeof(p), "%s/tile/entries/000.p", dir);
        mkdir(p, 0755);
        if (mw_failed(mw_note_signer_new(mw_slice_cstr(skey), &s)) ||
            mw_failed(mw_note_verifier_new(mw_slice_cstr(vkey), &v)))
            abort();
    }
    if (size < 1)
        return 0;
    unsigned w = data[0];
    if (w == 0 || size < 1 + (size_t)w * 32)
        return 0;
    const uint8_t *tile = data + 1;
    mw_slice bundle = mw_slice_make(data + 1 + (size_t)w * 32, size - 1 - (size_t)w * 32);

    struct mw_checkpoint cp;
    memset(&cp, 0, sizeof(cp));
    snprintf(cp.origin, sizeof(cp.origin), "fuzz");
    cp.size = w;
    mw_tlog_hash hashes[255];
    memcpy(hashes, tile, (size_t)w * 32);
    if (mw_failed(mw_tlog_root(hashes, w, &cp.root)))
        abort();
    struct mw_dynbuf text, note;
    mw_dynbuf_init(&text, 4096);
    mw_dynbuf_init(&note, 4096);
    if (mw_failed(mw_checkpoint_format(&cp, &text)) ||
        mw_failed(mw_note_sign(s, mw_dynbuf_slice(&text), &note)))
        abort();
    put(dir, "checkpoint", note.p, note.n);
    char rel[64];
    snprintf(rel, sizeof(rel), "tile/0/000.p/%u", w);
    put(dir, rel, tile, (size_t)w * 32);
    snprintf(rel, sizeof(rel), "tile/entries/000.p/%u", w);
    put(dir, rel, bundle.p, bundle.n);

    struct mw_tlog_report rep;
    if (mw_ok(mw_tlog_verify_dir(dir, v, NULL, &rep))) {
        /* Accepted: then every entry really hashes to its tile hash. */
        struct mw_cursor c;
        mw_cursor_init(&c, bundle);
        for (unsigned i = 0; i < w; i++) {
            uint16_t len;
            mw_slice e;
            mw_tlog_hash h;
            if (mw_failed(mw_cursor_u16be(&c, &len)) || mw_failed(mw_cursor_bytes(&c, len, &e)))
                abort();
            mw_tlog_leaf_hash(e, &h);
            if (memcmp(h.b, tile + (size_t)i * 32, 32) != 0)
                abort();
        }
        if (mw_cursor_left(&c) != 0)
            abort();
    }
    mw_dynbuf_free(&text);
    mw_dynbuf_free(&note);
    return 0;
}
