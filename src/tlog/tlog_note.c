/*
 * C2SP signed notes (c2sp.org/signed-note) and tlog checkpoints
 * (c2sp.org/tlog-checkpoint).
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <string.h>

#include <meshward/tlog.h>

#include "base/mw_ossl.h"

enum {
    SIG_ED25519 = 0x01, /* signed-note §Signature types */
    SIG_ECDSA = 0x02,
    ED25519_LEN = 32,
    MAX_NAME = 255,
    MAX_SIGNATURES = 100, /* the spec asks verifiers to accept at least 16 */
    MAX_NOTE = 1 << 20,
};

/* "— ": U+2014 EM DASH then a space. */
static const uint8_t sig_prefix[] = {0xe2, 0x80, 0x94, ' '};

struct mw_note_signer {
    char name[MAX_NAME + 1];
    uint32_t id;
    EVP_PKEY *key;
};

struct mw_note_verifier {
    char name[MAX_NAME + 1];
    uint32_t id;
    uint8_t type;
    EVP_PKEY *key;
};

/* Key names are non-empty and hold no Unicode spaces or '+' (signed-note §Format). */
static mw_result check_name(mw_slice name)
{
    MW_ENSURE(name.n > 0, MW_E_INPUT, "key name is empty");
    MW_ENSURE(name.n <= MAX_NAME, MW_E_INPUT, "key name longer than %d bytes", MAX_NAME);
    for (size_t i = 0; i < name.n; i++) {
        uint8_t c = name.p[i];
        /* ASCII spaces, controls, '+'; non-ASCII spaces are rejected by rejecting non-ASCII. */
        MW_ENSURE(c > 0x20 && c < 0x7f && c != '+', MW_E_INPUT,
                  "key name has a space, '+', control or non-ASCII byte at offset %zu", i);
    }
    return MW_SUCCESS;
}

/* key ID = SHA-256(key name || 0x0A || type || public key)[:4], big-endian. */
static uint32_t key_id(mw_slice name, uint8_t type, mw_slice pub)
{
    uint8_t d[32];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t nl = '\n';
    memset(d, 0, sizeof(d));
    if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, name.p, name.n) == 1 && EVP_DigestUpdate(ctx, &nl, 1) == 1 &&
        EVP_DigestUpdate(ctx, &type, 1) == 1 && EVP_DigestUpdate(ctx, pub.p, pub.n) == 1)
        (void)EVP_DigestFinal_ex(ctx, d, &len);
    EVP_MD_CTX_free(ctx);
    return (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
}

static mw_result parse_hex_id(mw_slice hex, uint32_t *out)
{
    MW_ENSURE(hex.n == 8, MW_E_INPUT, "key ID must be 8 hex digits");
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 8);
    mw_result r = mw_hex_decode(hex, &b);
    if (mw_ok(r))
        *out = (uint32_t)b.p[0] << 24 | (uint32_t)b.p[1] << 16 | (uint32_t)b.p[2] << 8 | b.p[3];
    mw_dynbuf_free(&b);
    return r;
}

/*
 * Split "<name>+<hex id>+<base64>" (the base64 may itself hold '+', so only
 * the first two are separators).
 */
static mw_result split_key(mw_slice key, mw_slice *name, uint32_t *id, mw_slice *b64)
{
    size_t p1 = mw_slice_find(key, '+', 0);
    MW_ENSURE(p1 < key.n, MW_E_INPUT, "key has no '+' after its name");
    size_t p2 = mw_slice_find(key, '+', p1 + 1);
    MW_ENSURE(p2 < key.n, MW_E_INPUT, "key has no '+' after its ID");
    *name = mw_slice_sub(key, 0, p1);
    MW_GUARD(check_name(*name));
    MW_GUARD(parse_hex_id(mw_slice_sub(key, p1 + 1, p2 - p1 - 1), id));
    *b64 = mw_slice_sub(key, p2 + 1, key.n - p2 - 1);
    return MW_SUCCESS;
}

static void copy_name(char *dst, mw_slice name)
{
    memcpy(dst, name.p, name.n);
    dst[name.n] = '\0';
}

mw_result mw_note_verifier_new(mw_slice vkey, struct mw_note_verifier **out)
{
    mw_slice name, b64;
    uint32_t id;
    MW_GUARD(split_key(vkey, &name, &id, &b64));
    struct mw_dynbuf raw;
    mw_dynbuf_init(&raw, 4096);
    if (mw_failed(mw_b64_decode(b64, MW_B64_STD, &raw))) {
        mw_dynbuf_free(&raw);
        mw_error_prefix("verifier key: ");
        return MW_FAILURE;
    }
    mw_result r = MW_SUCCESS;
    EVP_PKEY *key = NULL;
    if (raw.n != 1 + ED25519_LEN || raw.p[0] != SIG_ED25519) {
        mw_error_set(MW_E_UNSUPPORTED,
                     "verifier key: want type 0x01 (Ed25519) and a 32-byte key, got type 0x%02x "
                     "and %zu bytes",
                     raw.n > 0 ? raw.p[0] : 0, raw.n > 0 ? raw.n - 1 : 0);
        r = MW_FAILURE;
    } else if (key_id(name, SIG_ED25519, mw_slice_make(raw.p + 1, ED25519_LEN)) != id) {
        mw_error_set(MW_E_INPUT, "verifier key: ID %08x does not match the key", id);
        r = MW_FAILURE;
    } else {
        key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw.p + 1, ED25519_LEN);
        if (key == NULL) {
            mw_error_openssl(MW_E_INPUT, "verifier key: not an Ed25519 public key");
            r = MW_FAILURE;
        }
    }
    mw_dynbuf_free(&raw);
    MW_GUARD(r);
    struct mw_note_verifier *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        EVP_PKEY_free(key);
        MW_BAIL(MW_E_NOMEM, "out of memory");
    }
    copy_name(v->name, name);
    v->id = id;
    v->type = SIG_ED25519;
    v->key = key;
    *out = v;
    return MW_SUCCESS;
}

mw_result mw_note_verifier_new_ecdsa(const char *name, mw_slice spki_der,
                                     struct mw_note_verifier **out)
{
    MW_GUARD(check_name(mw_slice_cstr(name)));
    const unsigned char *p = spki_der.p;
    MW_DEFER(EVP_PKEY) EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)spki_der.n);
    MW_GUARD_OSSL(key != NULL, MW_E_INPUT, "ECDSA note key: not a DER public key");
    MW_ENSURE(p == spki_der.p + spki_der.n, MW_E_INPUT, "ECDSA note key: trailing bytes");
    MW_ENSURE(EVP_PKEY_is_a(key, "EC"), MW_E_UNSUPPORTED, "note key for \"%s\" is not ECDSA", name);
    uint8_t d[32];
    unsigned int len = 0;
    MW_GUARD_OSSL(EVP_Digest(spki_der.p, spki_der.n, d, &len, EVP_sha256(), NULL), MW_E_CRYPTO,
                  "SHA-256");
    struct mw_note_verifier *v = calloc(1, sizeof(*v));
    MW_ENSURE(v != NULL, MW_E_NOMEM, "out of memory");
    copy_name(v->name, mw_slice_cstr(name));
    /* Sigstore's convention for type 0x02: the ID is SHA-256 of the SPKI DER. */
    v->id = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    v->type = SIG_ECDSA;
    v->key = key;
    key = NULL;
    *out = v;
    return MW_SUCCESS;
}

void mw_note_verifier_free(struct mw_note_verifier *v)
{
    if (v == NULL)
        return;
    EVP_PKEY_free(v->key);
    free(v);
}

const char *mw_note_verifier_name(const struct mw_note_verifier *v)
{
    return v->name;
}

mw_result mw_note_signer_new(mw_slice skey, struct mw_note_signer **out)
{
    mw_slice prefix = mw_slice_cstr("PRIVATE+KEY+");
    MW_ENSURE(mw_slice_has_prefix(skey, prefix), MW_E_INPUT,
              "signer key must start with PRIVATE+KEY+");
    mw_slice name, b64;
    uint32_t id;
    MW_GUARD(split_key(mw_slice_sub(skey, prefix.n, skey.n - prefix.n), &name, &id, &b64));
    struct mw_dynbuf raw;
    mw_dynbuf_init_secure(&raw, 4096);
    mw_result r = mw_b64_decode(b64, MW_B64_STD, &raw);
    EVP_PKEY *key = NULL;
    if (mw_ok(r) && (raw.n != 1 + ED25519_LEN || raw.p[0] != SIG_ED25519)) {
        mw_error_set(MW_E_UNSUPPORTED, "signer key: want type 0x01 (Ed25519) and a 32-byte seed");
        r = MW_FAILURE;
    }
    if (mw_ok(r)) {
        key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw.p + 1, ED25519_LEN);
        if (key == NULL) {
            mw_error_openssl(MW_E_INPUT, "signer key: not an Ed25519 seed");
            r = MW_FAILURE;
        }
    }
    mw_dynbuf_free(&raw);
    MW_GUARD(r);
    uint8_t pub[ED25519_LEN];
    size_t publen = sizeof(pub);
    if (EVP_PKEY_get_raw_public_key(key, pub, &publen) != 1 ||
        key_id(name, SIG_ED25519, mw_slice_make(pub, publen)) != id) {
        EVP_PKEY_free(key);
        MW_BAIL(MW_E_INPUT, "signer key: ID %08x does not match the key", id);
    }
    struct mw_note_signer *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        EVP_PKEY_free(key);
        MW_BAIL(MW_E_NOMEM, "out of memory");
    }
    copy_name(s->name, name);
    s->id = id;
    s->key = key;
    *out = s;
    return MW_SUCCESS;
}

void mw_note_signer_free(struct mw_note_signer *s)
{
    if (s == NULL)
        return;
    EVP_PKEY_free(s->key);
    free(s);
}

const char *mw_note_signer_name(const struct mw_note_signer *s)
{
    return s->name;
}

static mw_result add_key_text(struct mw_dynbuf *out, const char *name, uint32_t id,
                              const uint8_t *key, size_t keylen)
{
    uint8_t typed[1 + ED25519_LEN];
    typed[0] = SIG_ED25519;
    memcpy(typed + 1, key, keylen);
    MW_GUARD(mw_dynbuf_addf(out, "%s+%08x+", name, id));
    mw_result r = mw_b64_encode(mw_slice_make(typed, 1 + keylen), MW_B64_STD, out);
    mw_wipe(typed, sizeof(typed));
    return r;
}

mw_result mw_note_signer_vkey(const struct mw_note_signer *s, struct mw_dynbuf *out)
{
    uint8_t pub[ED25519_LEN];
    size_t publen = sizeof(pub);
    MW_GUARD_OSSL(EVP_PKEY_get_raw_public_key(s->key, pub, &publen), MW_E_CRYPTO, "public key");
    return add_key_text(out, s->name, s->id, pub, publen);
}

mw_result mw_note_keygen(const char *name, struct mw_dynbuf *skey, struct mw_dynbuf *vkey)
{
    MW_GUARD(check_name(mw_slice_cstr(name)));
    uint8_t seed[ED25519_LEN];
    MW_GUARD_OSSL(RAND_priv_bytes(seed, sizeof(seed)), MW_E_CRYPTO, "random seed");
    MW_DEFER(EVP_PKEY)
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
    if (key == NULL) {
        mw_wipe(seed, sizeof(seed));
        mw_error_openssl(MW_E_CRYPTO, "Ed25519 key");
        return MW_FAILURE;
    }
    uint8_t pub[ED25519_LEN];
    size_t publen = sizeof(pub);
    if (EVP_PKEY_get_raw_public_key(key, pub, &publen) != 1) {
        mw_wipe(seed, sizeof(seed));
        mw_error_openssl(MW_E_CRYPTO, "Ed25519 public key");
        return MW_FAILURE;
    }
    uint32_t id = key_id(mw_slice_cstr(name), SIG_ED25519, mw_slice_make(pub, publen));
    mw_result r = mw_dynbuf_add_cstr(skey, "PRIVATE+KEY+");
    if (mw_ok(r))
        r = add_key_text(skey, name, id, seed, sizeof(seed));
    mw_wipe(seed, sizeof(seed));
    MW_GUARD(r);
    return add_key_text(vkey, name, id, pub, publen);
}

/* Valid UTF-8 with no control characters other than newline (signed-note §Format). */
static mw_result check_note_text(mw_slice s)
{
    size_t i = 0;
    while (i < s.n) {
        uint8_t c = s.p[i];
        if (c < 0x80) {
            MW_ENSURE(c >= 0x20 || c == '\n', MW_E_INPUT,
                      "note has control character 0x%02x at offset %zu", c, i);
            MW_ENSURE(c != 0x7f, MW_E_INPUT, "note has DEL at offset %zu", i);
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            MW_BAIL(MW_E_INPUT, "note is not UTF-8 at offset %zu", i);
        }
        MW_ENSURE(i + len <= s.n, MW_E_INPUT, "note ends inside a UTF-8 sequence");
        for (size_t k = 1; k < len; k++) {
            MW_ENSURE((s.p[i + k] & 0xc0) == 0x80, MW_E_INPUT, "note is not UTF-8 at offset %zu",
                      i + k);
            cp = cp << 6 | (s.p[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and code points past U+10FFFF are not UTF-8 (RFC 3629 §3). */
        MW_ENSURE(cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff), MW_E_INPUT,
                  "note is not UTF-8 at offset %zu", i);
        i += len;
    }
    return MW_SUCCESS;
}

mw_result mw_note_sign(const struct mw_note_signer *s, mw_slice text, struct mw_dynbuf *out)
{
    MW_ENSURE(text.n > 0 && text.p[text.n - 1] == '\n', MW_E_INPUT,
              "note text must end in a newline");
    MW_GUARD(check_note_text(text));
    MW_DEFER(EVP_MD_CTX) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    MW_GUARD_OSSL(ctx != NULL, MW_E_NOMEM, "out of memory");
    uint8_t sig[4 + 64];
    size_t siglen = 64;
    /* Ed25519 signs the message itself (RFC 8032 §5.1.6): no digest. */
    MW_GUARD_OSSL(EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->key), MW_E_CRYPTO, "Ed25519 sign");
    MW_GUARD_OSSL(EVP_DigestSign(ctx, sig + 4, &siglen, text.p, text.n), MW_E_CRYPTO,
                  "Ed25519 sign");
    sig[0] = (uint8_t)(s->id >> 24);
    sig[1] = (uint8_t)(s->id >> 16);
    sig[2] = (uint8_t)(s->id >> 8);
    sig[3] = (uint8_t)s->id;
    MW_GUARD(mw_dynbuf_add_slice(out, text));
    MW_GUARD(mw_dynbuf_add_byte(out, '\n'));
    MW_GUARD(mw_dynbuf_add(out, sig_prefix, sizeof(sig_prefix)));
    MW_GUARD(mw_dynbuf_addf(out, "%s ", s->name));
    MW_GUARD(mw_b64_encode(mw_slice_make(sig, 4 + siglen), MW_B64_STD, out));
    return mw_dynbuf_add_byte(out, '\n');
}

static mw_result verify_one(const struct mw_note_verifier *v, mw_slice text, mw_slice sig)
{
    MW_DEFER(EVP_MD_CTX) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    MW_GUARD_OSSL(ctx != NULL, MW_E_NOMEM, "out of memory");
    const EVP_MD *md = v->type == SIG_ECDSA ? EVP_sha256() : NULL;
    MW_GUARD_OSSL(EVP_DigestVerifyInit(ctx, NULL, md, NULL, v->key), MW_E_CRYPTO, "verify init");
    int ok = EVP_DigestVerify(ctx, sig.p, sig.n, text.p, text.n);
    if (ok != 1) {
        mw_error_openssl(MW_E_VERIFY, "signature by \"%s\" (%08x) does not verify", v->name, v->id);
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

mw_result mw_note_open(mw_slice note, struct mw_note_verifier *const *verifiers, size_t n,
                       mw_slice *text_out)
{
    MW_ENSURE(note.n <= MAX_NOTE, MW_E_LIMIT, "signed note larger than %d bytes", MAX_NOTE);
    MW_GUARD(check_note_text(note));
    /* The text ends at the last blank line; what follows are the signature lines. */
    size_t split = note.n;
    for (size_t i = note.n; i >= 2; i--) {
        if (note.p[i - 2] == '\n' && note.p[i - 1] == '\n') {
            split = i - 2;
            break;
        }
    }
    MW_ENSURE(split < note.n, MW_E_INPUT, "signed note has no blank line before its signatures");
    mw_slice text = mw_slice_sub(note, 0, split + 1);
    mw_slice sigs = mw_slice_sub(note, split + 2, note.n - split - 2);
    MW_ENSURE(sigs.n > 0 && sigs.p[sigs.n - 1] == '\n', MW_E_INPUT,
              "signed note has no signature lines, or they do not end in a newline");

    struct mw_cursor c;
    mw_cursor_init(&c, sigs);
    size_t count = 0, verified = 0;
    uint32_t seen_ids[MAX_SIGNATURES];
    const struct mw_note_verifier *seen_keys[MAX_SIGNATURES];
    size_t nseen = 0;
    while (mw_cursor_left(&c) > 0) {
        mw_slice line;
        MW_GUARD(mw_cursor_until(&c, '\n', &line));
        MW_ENSURE(++count <= MAX_SIGNATURES, MW_E_LIMIT, "signed note has more than %d signatures",
                  MAX_SIGNATURES);
        MW_ENSURE(mw_slice_has_prefix(line, mw_slice_make(sig_prefix, sizeof(sig_prefix))),
                  MW_E_INPUT, "signature line %zu does not start with an em dash and a space",
                  count);
        mw_slice rest = mw_slice_sub(line, sizeof(sig_prefix), line.n - sizeof(sig_prefix));
        size_t sp = mw_slice_find(rest, ' ', 0);
        MW_ENSURE(sp < rest.n, MW_E_INPUT, "signature line %zu has no space after the key name",
                  count);
        mw_slice name = mw_slice_sub(rest, 0, sp);
        MW_GUARD(check_name(name));
        struct mw_dynbuf sig;
        mw_dynbuf_init(&sig, 8192);
        if (mw_failed(
                mw_b64_decode(mw_slice_sub(rest, sp + 1, rest.n - sp - 1), MW_B64_STD, &sig))) {
            mw_dynbuf_free(&sig);
            mw_error_prefix("signature line %zu: ", count);
            return MW_FAILURE;
        }
        if (sig.n < 5) {
            mw_dynbuf_free(&sig);
            MW_BAIL(MW_E_INPUT, "signature line %zu is too short", count);
        }
        uint32_t id = (uint32_t)sig.p[0] << 24 | (uint32_t)sig.p[1] << 16 |
                      (uint32_t)sig.p[2] << 8 | sig.p[3];
        const struct mw_note_verifier *v = NULL;
        for (size_t k = 0; k < n; k++) {
            if (verifiers[k]->id == id && mw_slice_eq_cstr(name, verifiers[k]->name)) {
                v = verifiers[k];
                break;
            }
        }
        if (v == NULL) {
            /* Unknown keys are ignored, even when name or ID alone match (signed-note §Signatures).
             */
            mw_dynbuf_free(&sig);
            continue;
        }
        for (size_t k = 0; k < nseen; k++) {
            if (seen_keys[k] == v && seen_ids[k] == id) {
                mw_dynbuf_free(&sig);
                MW_BAIL(MW_E_INPUT, "signed note has two signatures by \"%s\"", v->name);
            }
        }
        seen_keys[nseen] = v;
        seen_ids[nseen++] = id;
        mw_result r = verify_one(v, text, mw_slice_make(sig.p + 4, sig.n - 4));
        mw_dynbuf_free(&sig);
        /* A known key whose signature fails condemns the whole note. */
        MW_GUARD(r);
        verified++;
    }
    MW_ENSURE(verified > 0, MW_E_VERIFY, "signed note has no signature by a trusted key");
    *text_out = text;
    return MW_SUCCESS;
}

mw_result mw_checkpoint_parse(mw_slice text, struct mw_checkpoint *out)
{
    struct mw_cursor c;
    mw_cursor_init(&c, text);
    mw_slice origin, size, root;
    if (mw_failed(mw_cursor_until(&c, '\n', &origin)) ||
        mw_failed(mw_cursor_until(&c, '\n', &size)) || mw_failed(mw_cursor_until(&c, '\n', &root)))
        MW_BAIL(MW_E_INPUT, "checkpoint needs origin, size and root hash lines");
    MW_ENSURE(origin.n > 0 && origin.n < sizeof(out->origin), MW_E_INPUT,
              "checkpoint origin is empty or longer than %zu bytes", sizeof(out->origin) - 1);
    for (size_t i = 0; i < origin.n; i++)
        MW_ENSURE(origin.p[i] >= 0x20, MW_E_INPUT, "checkpoint origin has a control character");
    uint64_t n;
    MW_GUARD(mw_parse_u64(size, 0, UINT64_MAX, "checkpoint tree size", &n));
    struct mw_dynbuf h;
    mw_dynbuf_init(&h, 64);
    mw_result r = mw_b64_decode(root, MW_B64_STD, &h);
    if (mw_ok(r) && h.n != MW_TLOG_HASH_LEN) {
        mw_error_set(MW_E_INPUT, "checkpoint root hash is %zu bytes, want 32", h.n);
        r = MW_FAILURE;
    }
    if (mw_ok(r))
        memcpy(out->root.b, h.p, MW_TLOG_HASH_LEN);
    mw_dynbuf_free(&h);
    if (mw_failed(r)) {
        mw_error_prefix("checkpoint root: ");
        return MW_FAILURE;
    }
    memcpy(out->origin, origin.p, origin.n);
    out->origin[origin.n] = '\0';
    out->size = n;
    out->extensions = mw_cursor_rest(&c);
    return MW_SUCCESS;
}

mw_result mw_checkpoint_format(const struct mw_checkpoint *c, struct mw_dynbuf *out)
{
    MW_ENSURE(c->origin[0] != '\0' && strchr(c->origin, '\n') == NULL, MW_E_INPUT,
              "checkpoint origin is empty or has a newline");
    MW_GUARD(mw_dynbuf_addf(out, "%s\n%llu\n", c->origin, (unsigned long long)c->size));
    MW_GUARD(mw_b64_encode(mw_slice_make(c->root.b, MW_TLOG_HASH_LEN), MW_B64_STD, out));
    return mw_dynbuf_add_byte(out, '\n');
}
