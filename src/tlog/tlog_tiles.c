/*
 * A Merkle log stored as C2SP tlog-tiles (c2sp.org/tlog-tiles) in a
 * directory, with a C2SP checkpoint signed as a C2SP signed note.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <meshward/tlog.h>

enum {
    TILE_WIDTH = 256, /* hashes in a full tile: tile height 8 */
    MAX_LEVELS = 8,   /* 256^8 = 2^64 leaves */
    NOTE_MAX = 1 << 16,
    BUNDLE_MAX = TILE_WIDTH * (2 + MW_TLOG_MAX_ENTRY),
};

struct hashvec {
    mw_tlog_hash *h;
    uint64_t n, cap;
};

struct mw_tlog {
    char dir[4096];
    char origin[256];
    const struct mw_note_signer *signer;
    /* levels[0] are leaf hashes; levels[l][j] = MTH of leaves [j*256^l, (j+1)*256^l). */
    struct hashvec levels[MAX_LEVELS];
    struct mw_dynbuf bundle; /* the entries of the current partial bundle */
    bool failed;             /* an append failed part way; memory is ahead of disk */
};

static mw_result hv_push(struct hashvec *v, const mw_tlog_hash *h)
{
    if (v->n == v->cap) {
        uint64_t cap = v->cap == 0 ? 1024 : v->cap * 2;
        mw_tlog_hash *p = realloc(v->h, cap * sizeof(*p));
        MW_ENSURE(p != NULL, MW_E_NOMEM, "out of memory for %" PRIu64 " hashes", cap);
        v->h = p;
        v->cap = cap;
    }
    v->h[v->n++] = *h;
    return MW_SUCCESS;
}

static void hv_free(struct hashvec *v)
{
    free(v->h);
    memset(v, 0, sizeof(*v));
}

/* Push a leaf hash and fold every tile it completes into the level above. */
static mw_result levels_push(struct hashvec *levels, const mw_tlog_hash *leaf)
{
    MW_GUARD(hv_push(&levels[0], leaf));
    for (int l = 0; l + 1 < MAX_LEVELS && levels[l].n % TILE_WIDTH == 0; l++) {
        mw_tlog_hash parent;
        MW_GUARD(mw_tlog_root(levels[l].h + levels[l].n - TILE_WIDTH, TILE_WIDTH, &parent));
        MW_GUARD(hv_push(&levels[l + 1], &parent));
    }
    return MW_SUCCESS;
}

/* <dir>/tile/<kind>/<N>[.p/<W>] with N as x001/x234/067 (tlog-tiles §Merkle Tree). */
static mw_result tile_path(struct mw_dynbuf *out, const char *dir, const char *kind, uint64_t n,
                           unsigned width)
{
    mw_dynbuf_reset(out);
    MW_GUARD(mw_dynbuf_addf(out, "%s/tile/%s/", dir, kind));
    char groups[8][4];
    int ng = 0;
    do {
        snprintf(groups[ng++], sizeof(groups[0]), "%03u", (unsigned)(n % 1000));
        n /= 1000;
    } while (n > 0);
    for (int i = ng - 1; i >= 0; i--)
        MW_GUARD(mw_dynbuf_addf(out, "%s%s%s", i > 0 ? "x" : "", groups[i], i > 0 ? "/" : ""));
    if (width > 0 && width < TILE_WIDTH)
        MW_GUARD(mw_dynbuf_addf(out, ".p/%u", width));
    return MW_SUCCESS;
}

/* mkdir -p of every parent of path. */
static mw_result make_parents(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    MW_ENSURE(n < sizeof(tmp), MW_E_INPUT, "path too long: %s", path);
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (tmp[i] != '/')
            continue;
        tmp[i] = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            MW_BAIL(MW_E_IO, "mkdir %s: %s", tmp, strerror(errno));
        tmp[i] = '/';
    }
    return MW_SUCCESS;
}

/*
 * Tiles and bundles are written without their own fsync; append_locked makes
 * the whole batch durable with one syncfs before it commits the checkpoint.
 * A crash before that leaves files the old checkpoint does not reference.
 */
static mw_result write_file(const char *path, mw_slice data)
{
    MW_GUARD(make_parents(path));
    return mw_file_write_replace(path, data, 0644);
}

static mw_result write_tile(const char *dir, int level, const struct hashvec *v, uint64_t t,
                            struct mw_dynbuf *path)
{
    uint64_t start = t * TILE_WIDTH;
    uint64_t w = v->n - start < TILE_WIDTH ? v->n - start : TILE_WIDTH;
    char kind[16];
    snprintf(kind, sizeof(kind), "%d", level);
    MW_GUARD(tile_path(path, dir, kind, t, (unsigned)w));
    return write_file(mw_dynbuf_cstr(path), mw_slice_make(v->h + start, w * MW_TLOG_HASH_LEN));
}

static mw_result read_note(const char *dir, struct mw_dynbuf *out)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/checkpoint", dir);
    return mw_file_read(path, NOTE_MAX, out);
}

/* Read and verify the signed checkpoint of dir. */
static mw_result load_checkpoint(const char *dir, struct mw_note_verifier *v,
                                 struct mw_checkpoint *cp, struct mw_dynbuf *note)
{
    MW_GUARD(read_note(dir, note));
    mw_slice text;
    if (mw_failed(mw_note_open(mw_dynbuf_slice(note), &v, 1, &text))) {
        mw_error_prefix("%s/checkpoint: ", dir);
        return MW_FAILURE;
    }
    if (mw_failed(mw_checkpoint_parse(text, cp))) {
        mw_error_prefix("%s/checkpoint: ", dir);
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

/* Read tile t of a level (w hashes) into v. */
static mw_result read_tile(const char *dir, const char *kind, uint64_t t, unsigned w,
                           struct mw_dynbuf *path, struct mw_dynbuf *buf)
{
    MW_GUARD(tile_path(path, dir, kind, t, w));
    mw_dynbuf_reset(buf);
    MW_GUARD(mw_file_read(mw_dynbuf_cstr(path), (size_t)w * MW_TLOG_HASH_LEN, buf));
    MW_ENSURE(buf->n == (size_t)w * MW_TLOG_HASH_LEN, MW_E_VERIFY, "%s: %zu bytes, want %u hashes",
              mw_dynbuf_cstr(path), buf->n, w);
    return MW_SUCCESS;
}

/*
 * Rebuild the tree of size n from the level-0 tiles of dir, check every
 * higher-level tile and every entry bundle against it, and leave the hashes
 * in levels and the last partial bundle in bundle (when non-NULL).
 */
static mw_result load_tree(const char *dir, uint64_t n, struct hashvec *levels,
                           struct mw_dynbuf *bundle, struct mw_tlog_report *rep,
                           mw_tlog_entry_fn each, void *each_ctx)
{
    struct mw_dynbuf path, buf;
    mw_dynbuf_init(&path, 8192);
    mw_dynbuf_init(&buf, BUNDLE_MAX);
    mw_result r = MW_SUCCESS;
    uint64_t tiles = 0, entries = 0;

    for (uint64_t t = 0; mw_ok(r) && t * TILE_WIDTH < n; t++) {
        uint64_t left = n - t * TILE_WIDTH;
        unsigned w = left >= TILE_WIDTH ? TILE_WIDTH : (unsigned)left;
        r = read_tile(dir, "0", t, w, &path, &buf);
        for (unsigned i = 0; mw_ok(r) && i < w; i++) {
            mw_tlog_hash h;
            memcpy(h.b, buf.p + (size_t)i * MW_TLOG_HASH_LEN, MW_TLOG_HASH_LEN);
            r = levels_push(levels, &h);
        }
        tiles++;
        /* The entries of this tile: each must hash to its level-0 hash. */
        if (mw_ok(r))
            r = tile_path(&path, dir, "entries", t, w);
        if (mw_ok(r)) {
            mw_dynbuf_reset(&buf);
            r = mw_file_read(mw_dynbuf_cstr(&path), BUNDLE_MAX, &buf);
        }
        struct mw_cursor c;
        mw_cursor_init(&c, mw_dynbuf_slice(&buf));
        for (unsigned i = 0; mw_ok(r) && i < w; i++) {
            uint16_t len;
            mw_slice e;
            mw_tlog_hash h;
            if (mw_failed(mw_cursor_u16be(&c, &len)) || mw_failed(mw_cursor_bytes(&c, len, &e))) {
                mw_error_set(MW_E_VERIFY, "%s: entry %u is truncated", mw_dynbuf_cstr(&path), i);
                r = MW_FAILURE;
                break;
            }
            mw_tlog_leaf_hash(e, &h);
            if (memcmp(h.b, levels[0].h[t * TILE_WIDTH + i].b, MW_TLOG_HASH_LEN) != 0) {
                mw_error_set(MW_E_VERIFY,
                             "entry %" PRIu64 " does not match its hash in tile 0/%" PRIu64,
                             t * TILE_WIDTH + i, t);
                r = MW_FAILURE;
            }
            if (mw_ok(r) && each != NULL)
                r = each(each_ctx, t * TILE_WIDTH + i, e);
            entries++;
        }
        if (mw_ok(r) && mw_cursor_left(&c) != 0) {
            mw_error_set(MW_E_VERIFY, "%s: %zu bytes after the last entry", mw_dynbuf_cstr(&path),
                         mw_cursor_left(&c));
            r = MW_FAILURE;
        }
        if (mw_ok(r) && bundle != NULL && w < TILE_WIDTH) {
            mw_dynbuf_reset(bundle);
            r = mw_dynbuf_add_slice(bundle, mw_dynbuf_slice(&buf));
        }
    }
    /* Higher levels: each stored tile must equal what the level below hashes to. */
    for (int l = 1; mw_ok(r) && l < MAX_LEVELS && levels[l].n > 0; l++) {
        char kind[16];
        snprintf(kind, sizeof(kind), "%d", l);
        for (uint64_t t = 0; mw_ok(r) && t * TILE_WIDTH < levels[l].n; t++) {
            uint64_t left = levels[l].n - t * TILE_WIDTH;
            unsigned w = left >= TILE_WIDTH ? TILE_WIDTH : (unsigned)left;
            r = read_tile(dir, kind, t, w, &path, &buf);
            if (mw_ok(r) &&
                memcmp(buf.p, levels[l].h + t * TILE_WIDTH, (size_t)w * MW_TLOG_HASH_LEN) != 0) {
                mw_error_set(MW_E_VERIFY, "%s does not match the tiles below it",
                             mw_dynbuf_cstr(&path));
                r = MW_FAILURE;
            }
            tiles++;
        }
    }
    if (rep != NULL) {
        rep->tiles_checked = tiles;
        rep->entries_checked = entries;
    }
    mw_dynbuf_free(&path);
    mw_dynbuf_free(&buf);
    return r;
}

static void levels_free(struct hashvec *levels)
{
    for (int l = 0; l < MAX_LEVELS; l++)
        hv_free(&levels[l]);
}

static mw_result write_checkpoint(struct mw_tlog *log)
{
    struct mw_checkpoint cp;
    memset(&cp, 0, sizeof(cp));
    snprintf(cp.origin, sizeof(cp.origin), "%s", log->origin);
    cp.size = log->levels[0].n;
    MW_GUARD(mw_tlog_root(log->levels[0].h, cp.size, &cp.root));
    struct mw_dynbuf text, note;
    mw_dynbuf_init(&text, NOTE_MAX);
    mw_dynbuf_init(&note, NOTE_MAX);
    mw_result r = mw_checkpoint_format(&cp, &text);
    if (mw_ok(r))
        r = mw_note_sign(log->signer, mw_dynbuf_slice(&text), &note);
    if (mw_ok(r)) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/checkpoint", log->dir);
        r = mw_file_write_atomic(path, mw_dynbuf_slice(&note), 0644);
    }
    mw_dynbuf_free(&text);
    mw_dynbuf_free(&note);
    return r;
}

mw_result mw_tlog_open(const char *dir, const char *origin, const struct mw_note_signer *signer,
                       struct mw_tlog **out)
{
    MW_ENSURE(strlen(dir) < sizeof(((struct mw_tlog *)0)->dir), MW_E_INPUT, "path too long");
    MW_ENSURE(origin[0] != '\0' && strlen(origin) < sizeof(((struct mw_tlog *)0)->origin) &&
                  strchr(origin, '\n') == NULL,
              MW_E_INPUT, "log origin must be one non-empty line");
    struct mw_tlog *log = calloc(1, sizeof(*log));
    MW_ENSURE(log != NULL, MW_E_NOMEM, "out of memory");
    snprintf(log->dir, sizeof(log->dir), "%s", dir);
    snprintf(log->origin, sizeof(log->origin), "%s", origin);
    log->signer = signer;
    mw_dynbuf_init(&log->bundle, BUNDLE_MAX);

    struct mw_dynbuf note, vkey;
    mw_dynbuf_init(&note, NOTE_MAX);
    mw_dynbuf_init(&vkey, 1024);
    struct mw_note_verifier *v = NULL;
    mw_result r = mw_note_signer_vkey(signer, &vkey);
    if (mw_ok(r))
        r = mw_note_verifier_new(mw_dynbuf_slice(&vkey), &v);
    if (mw_ok(r) && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        mw_error_set(MW_E_IO, "mkdir %s: %s", dir, strerror(errno));
        r = MW_FAILURE;
    }
    if (mw_ok(r)) {
        r = read_note(dir, &note);
        if (mw_failed(r) && mw_error_code() == MW_E_NOTFOUND) {
            /* A new log: its first checkpoint is the empty tree. */
            r = write_checkpoint(log);
        } else if (mw_ok(r)) {
            struct mw_checkpoint cp;
            mw_dynbuf_reset(&note);
            r = load_checkpoint(dir, v, &cp, &note);
            if (mw_ok(r) && strcmp(cp.origin, origin) != 0) {
                mw_error_set(MW_E_INPUT, "%s/checkpoint is for log \"%s\", not \"%s\"", dir,
                             cp.origin, origin);
                r = MW_FAILURE;
            }
            if (mw_ok(r))
                r = load_tree(dir, cp.size, log->levels, &log->bundle, NULL, NULL, NULL);
            mw_tlog_hash root;
            if (mw_ok(r))
                r = mw_tlog_root(log->levels[0].h, cp.size, &root);
            if (mw_ok(r) && memcmp(root.b, cp.root.b, MW_TLOG_HASH_LEN) != 0) {
                mw_error_set(MW_E_VERIFY, "%s: tiles do not hash to the checkpoint's root", dir);
                r = MW_FAILURE;
            }
        }
    }
    mw_note_verifier_free(v);
    mw_dynbuf_free(&note);
    mw_dynbuf_free(&vkey);
    if (mw_failed(r)) {
        mw_tlog_close(log);
        return r;
    }
    *out = log;
    return MW_SUCCESS;
}

void mw_tlog_close(struct mw_tlog *log)
{
    if (log == NULL)
        return;
    levels_free(log->levels);
    mw_dynbuf_free(&log->bundle);
    free(log);
}

uint64_t mw_tlog_size(const struct mw_tlog *log)
{
    return log->levels[0].n;
}

static mw_result append_locked(struct mw_tlog *log, const mw_slice *entries, size_t n)
{
    struct mw_dynbuf path;
    mw_dynbuf_init(&path, 8192);
    uint64_t old[MAX_LEVELS];
    for (int l = 0; l < MAX_LEVELS; l++)
        old[l] = log->levels[l].n;
    mw_result r = MW_SUCCESS;

    /* 1. Entry bundles, as each fills, and the hashes of every level. */
    for (size_t i = 0; mw_ok(r) && i < n; i++) {
        uint8_t len[2] = {(uint8_t)(entries[i].n >> 8), (uint8_t)entries[i].n};
        mw_tlog_hash h;
        mw_tlog_leaf_hash(entries[i], &h);
        r = mw_dynbuf_add(&log->bundle, len, 2);
        if (mw_ok(r))
            r = mw_dynbuf_add_slice(&log->bundle, entries[i]);
        if (mw_ok(r))
            r = levels_push(log->levels, &h);
        if (mw_ok(r) && log->levels[0].n % TILE_WIDTH == 0) {
            r = tile_path(&path, log->dir, "entries", log->levels[0].n / TILE_WIDTH - 1, 0);
            if (mw_ok(r))
                r = write_file(mw_dynbuf_cstr(&path), mw_dynbuf_slice(&log->bundle));
            mw_dynbuf_reset(&log->bundle);
        }
    }
    if (mw_ok(r) && log->bundle.n > 0) {
        r = tile_path(&path, log->dir, "entries", log->levels[0].n / TILE_WIDTH,
                      (unsigned)(log->levels[0].n % TILE_WIDTH));
        if (mw_ok(r))
            r = write_file(mw_dynbuf_cstr(&path), mw_dynbuf_slice(&log->bundle));
    }
    /* 2. Every tile that changed, at every level. */
    for (int l = 0; mw_ok(r) && l < MAX_LEVELS; l++) {
        const struct hashvec *v = &log->levels[l];
        if (v->n == old[l])
            continue;
        for (uint64_t t = old[l] / TILE_WIDTH; mw_ok(r) && t * TILE_WIDTH < v->n; t++)
            r = write_tile(log->dir, l, v, t, &path);
    }
    /* 3. Everything the new checkpoint refers to is on disk; then the commit point. */
    if (mw_ok(r))
        r = mw_fs_sync(log->dir);
    if (mw_ok(r))
        r = write_checkpoint(log);
    mw_dynbuf_free(&path);
    return r;
}

mw_result mw_tlog_append(struct mw_tlog *log, const mw_slice *entries, size_t n, uint64_t *first)
{
    MW_ENSURE(!log->failed, MW_E_STATE,
              "log %s had a failed append; reopen it to recover from its checkpoint", log->dir);
    for (size_t i = 0; i < n; i++)
        MW_ENSURE(entries[i].n <= MW_TLOG_MAX_ENTRY, MW_E_LIMIT,
                  "log entry %zu is %zu bytes, more than %d", i, entries[i].n, MW_TLOG_MAX_ENTRY);
    uint64_t start = log->levels[0].n;
    if (n == 0) {
        *first = start;
        return MW_SUCCESS;
    }
    if (mw_failed(append_locked(log, entries, n))) {
        /* Memory is ahead of the last checkpoint; only reopening brings them together. */
        log->failed = true;
        return MW_FAILURE;
    }
    *first = start;
    return MW_SUCCESS;
}

/*
 * The signed checkpoint of dir and the tree its tiles hold, checked against
 * each other; levels and root are left for the caller.
 */
static mw_result verified_tree(const char *dir, struct mw_note_verifier *v,
                               struct mw_checkpoint *cp, struct hashvec *levels, mw_tlog_hash *root,
                               struct mw_tlog_report *rep, mw_tlog_entry_fn each, void *each_ctx)
{
    struct mw_dynbuf note;
    mw_dynbuf_init(&note, NOTE_MAX);
    mw_result r = load_checkpoint(dir, v, cp, &note);
    if (mw_ok(r))
        r = load_tree(dir, cp->size, levels, NULL, rep, each, each_ctx);
    if (mw_ok(r))
        r = mw_tlog_root(levels[0].h, cp->size, root);
    if (mw_ok(r) && memcmp(root->b, cp->root.b, MW_TLOG_HASH_LEN) != 0) {
        mw_error_set(MW_E_VERIFY, "the tiles hash to a different root than the checkpoint's");
        r = MW_FAILURE;
    }
    mw_dynbuf_free(&note);
    return r;
}

mw_result mw_tlog_verify_dir(const char *dir, struct mw_note_verifier *v,
                             const mw_slice *since_note, struct mw_tlog_report *report)
{
    memset(report, 0, sizeof(*report));
    struct hashvec levels[MAX_LEVELS];
    memset(levels, 0, sizeof(levels));
    mw_tlog_hash root;
    mw_result r = verified_tree(dir, v, &report->checkpoint, levels, &root, report, NULL, NULL);
    if (mw_ok(r) && since_note != NULL) {
        mw_slice text;
        struct mw_checkpoint old;
        r = mw_note_open(*since_note, &v, 1, &text);
        if (mw_ok(r))
            r = mw_checkpoint_parse(text, &old);
        if (mw_failed(r))
            mw_error_prefix("earlier checkpoint: ");
        if (mw_ok(r) && strcmp(old.origin, report->checkpoint.origin) != 0) {
            mw_error_set(MW_E_VERIFY, "earlier checkpoint is for log \"%s\", not \"%s\"",
                         old.origin, report->checkpoint.origin);
            r = MW_FAILURE;
        }
        if (mw_ok(r) && old.size > report->checkpoint.size) {
            mw_error_set(MW_E_VERIFY, "the log shrank from %" PRIu64 " to %" PRIu64 " entries",
                         old.size, report->checkpoint.size);
            r = MW_FAILURE;
        }
        /* A consistency proof from our own tiles, checked as a remote verifier would. */
        mw_tlog_hash proof[128];
        size_t len = 0;
        if (mw_ok(r) && old.size > 0)
            r = mw_tlog_consistency_proof(levels[0].h, old.size, report->checkpoint.size, proof,
                                          &len);
        if (mw_ok(r) && old.size > 0) {
            r = mw_tlog_verify_consistency(old.size, report->checkpoint.size,
                                           mw_slice_make(old.root.b, MW_TLOG_HASH_LEN),
                                           mw_slice_make(root.b, MW_TLOG_HASH_LEN), proof, len);
            if (mw_failed(r))
                mw_error_prefix("earlier checkpoint (size %" PRIu64
                                ") is not a prefix of this log: ",
                                old.size);
        }
        report->since_size = old.size;
    }
    levels_free(levels);
    return r;
}

mw_result mw_tlog_read_entry(const char *dir, struct mw_note_verifier *v, uint64_t index,
                             struct mw_dynbuf *entry, mw_tlog_hash *proof, size_t *proof_len,
                             struct mw_checkpoint *cp)
{
    struct mw_dynbuf note;
    mw_dynbuf_init(&note, NOTE_MAX);
    struct hashvec levels[MAX_LEVELS];
    memset(levels, 0, sizeof(levels));
    mw_result r = load_checkpoint(dir, v, cp, &note);
    if (mw_ok(r) && index >= cp->size) {
        mw_error_set(MW_E_NOTFOUND, "entry %" PRIu64 " is not in a log of %" PRIu64 " entries",
                     index, cp->size);
        r = MW_FAILURE;
    }
    if (mw_ok(r))
        r = load_tree(dir, cp->size, levels, NULL, NULL, NULL, NULL);
    mw_tlog_hash root;
    if (mw_ok(r))
        r = mw_tlog_root(levels[0].h, cp->size, &root);
    if (mw_ok(r) && memcmp(root.b, cp->root.b, MW_TLOG_HASH_LEN) != 0) {
        mw_error_set(MW_E_VERIFY, "the tiles hash to a different root than the checkpoint's");
        r = MW_FAILURE;
    }
    if (mw_ok(r))
        r = mw_tlog_inclusion_proof(levels[0].h, cp->size, index, proof, proof_len);
    struct mw_dynbuf path, buf;
    mw_dynbuf_init(&path, 8192);
    mw_dynbuf_init(&buf, BUNDLE_MAX);
    uint64_t t = index / TILE_WIDTH;
    uint64_t left = cp->size - t * TILE_WIDTH;
    if (mw_ok(r))
        r = tile_path(&path, dir, "entries", t, left >= TILE_WIDTH ? 0 : (unsigned)left);
    if (mw_ok(r))
        r = mw_file_read(mw_dynbuf_cstr(&path), BUNDLE_MAX, &buf);
    struct mw_cursor c;
    mw_cursor_init(&c, mw_dynbuf_slice(&buf));
    for (uint64_t i = t * TILE_WIDTH; mw_ok(r) && i <= index; i++) {
        uint16_t len;
        mw_slice e;
        r = mw_cursor_u16be(&c, &len);
        if (mw_ok(r))
            r = mw_cursor_bytes(&c, len, &e);
        if (mw_ok(r) && i == index)
            r = mw_dynbuf_add_slice(entry, e);
    }
    mw_dynbuf_free(&path);
    mw_dynbuf_free(&buf);
    levels_free(levels);
    mw_dynbuf_free(&note);
    return r;
}

mw_result mw_tlog_each_entry(const char *dir, struct mw_note_verifier *v, mw_tlog_entry_fn each,
                             void *ctx)
{
    struct hashvec levels[MAX_LEVELS];
    memset(levels, 0, sizeof(levels));
    struct mw_checkpoint cp;
    mw_tlog_hash root;
    mw_result r = verified_tree(dir, v, &cp, levels, &root, NULL, each, ctx);
    levels_free(levels);
    return r;
}
