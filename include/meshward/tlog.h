/*
 * meshward tlog: RFC 6962 Merkle trees (as restated in RFC 9162 §2.1).
 *
 * Leaves and interior nodes are hashed with SHA-256 under domain-separation
 * prefixes (0x00 for leaves, 0x01 for nodes) so that a leaf can never be
 * passed off as a node. Verification follows RFC 9162 §2.1.3.2 (inclusion)
 * and §2.1.4.2 (consistency), and rejects proofs with missing or extra
 * elements.
 */
#ifndef MESHWARD_TLOG_H
#define MESHWARD_TLOG_H

#include <meshward/base.h>

#define MW_TLOG_HASH_LEN 32

typedef struct mw_tlog_hash {
    uint8_t b[MW_TLOG_HASH_LEN];
} mw_tlog_hash;

/* SHA-256(0x00 || data): the hash of a leaf (RFC 6962 §2.1). */
void mw_tlog_leaf_hash(mw_slice data, mw_tlog_hash *out);
/* SHA-256(0x01 || left || right): an interior node. */
void mw_tlog_node_hash(const mw_tlog_hash *left, const mw_tlog_hash *right, mw_tlog_hash *out);
/* The root of an empty tree: SHA-256 of the empty string. */
void mw_tlog_empty_root(mw_tlog_hash *out);

/* The Merkle tree hash (MTH) of n leaf hashes. */
MW_RESULT mw_tlog_root(const mw_tlog_hash *leaves, uint64_t n, mw_tlog_hash *out);

/*
 * The audit path for leaf index in a tree of n leaves (RFC 6962 §2.1.1).
 * proof must have room for 64 hashes; *proof_len receives the count.
 */
MW_RESULT mw_tlog_inclusion_proof(const mw_tlog_hash *leaves, uint64_t n, uint64_t index,
                                  mw_tlog_hash *proof, size_t *proof_len);
/* The consistency proof between sizes m <= n (RFC 6962 §2.1.2); room for 128 hashes. */
MW_RESULT mw_tlog_consistency_proof(const mw_tlog_hash *leaves, uint64_t m, uint64_t n,
                                    mw_tlog_hash *proof, size_t *proof_len);

/*
 * Does leaf_hash sit at index in the tree of tree_size leaves with this root?
 * MW_E_VERIFY with the reason when it does not; MW_E_INPUT for impossible
 * parameters (index >= size).
 */
MW_RESULT mw_tlog_verify_inclusion(uint64_t index, uint64_t tree_size,
                                   const mw_tlog_hash *leaf_hash, const mw_tlog_hash *proof,
                                   size_t proof_len, const mw_tlog_hash *root);

/*
 * Is the tree (size1, root1) a prefix of (size2, root2)? The roots are byte
 * strings as a checkpoint carries them: for equal sizes they must be equal,
 * otherwise each must be a 32-byte hash that the proof leads to.
 */
MW_RESULT mw_tlog_verify_consistency(uint64_t size1, uint64_t size2, mw_slice root1, mw_slice root2,
                                     const mw_tlog_hash *proof, size_t proof_len);

/* ---------------------------------------------------------------- signed notes */

/*
 * C2SP signed notes (c2sp.org/signed-note): a text ending in a newline, a
 * blank line, then lines "— <key name> base64(key ID || signature)". meshward
 * signs with Ed25519 (signature type 0x01) and verifies Ed25519 and ECDSA
 * (type 0x02, as Rekor v1 checkpoints are signed).
 */
struct mw_note_signer;
struct mw_note_verifier;

/* A new Ed25519 key; writes "PRIVATE+KEY+name+id+key" and "name+id+key" texts. */
MW_RESULT mw_note_keygen(const char *name, struct mw_dynbuf *skey, struct mw_dynbuf *vkey);
/* A signer from "PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>". */
MW_RESULT mw_note_signer_new(mw_slice skey, struct mw_note_signer **out);
void mw_note_signer_free(struct mw_note_signer *s);
const char *mw_note_signer_name(const struct mw_note_signer *s);
/* The verifier key text "<name>+<hex id>+<base64(0x01 || public key)>". */
MW_RESULT mw_note_signer_vkey(const struct mw_note_signer *s, struct mw_dynbuf *out);
/* A verifier from "<name>+<hex id>+<base64(0x01 || public key)>". */
MW_RESULT mw_note_verifier_new(mw_slice vkey, struct mw_note_verifier **out);
/*
 * A verifier for an ECDSA key given as DER SubjectPublicKeyInfo; the key ID
 * is the first four bytes of SHA-256 of that DER (signature type 0x02).
 */
MW_RESULT mw_note_verifier_new_ecdsa(const char *name, mw_slice spki_der,
                                     struct mw_note_verifier **out);
void mw_note_verifier_free(struct mw_note_verifier *v);
const char *mw_note_verifier_name(const struct mw_note_verifier *v);

/* Sign text (which must end in a newline) and append the whole note to out. */
MW_RESULT mw_note_sign(const struct mw_note_signer *s, mw_slice text, struct mw_dynbuf *out);
/*
 * Open a signed note: parse it strictly, verify every signature made by one of
 * the given keys (name and key ID both match) and require at least one.
 * Signatures by unknown keys are ignored. *text borrows from note.
 */
MW_RESULT mw_note_open(mw_slice note, struct mw_note_verifier *const *verifiers, size_t n,
                       mw_slice *text);

/* ---------------------------------------------------------------- checkpoints */

/* A C2SP tlog-checkpoint body: origin, tree size, root hash, extension lines. */
struct mw_checkpoint {
    char origin[256];
    uint64_t size;
    mw_tlog_hash root;
    mw_slice extensions; /* lines after the root, borrowed; empty if none */
};

/* Parse a checkpoint body (the text of a signed note). */
MW_RESULT mw_checkpoint_parse(mw_slice text, struct mw_checkpoint *out);
/* Write the body "origin\nsize\nbase64(root)\n" (no extensions). */
MW_RESULT mw_checkpoint_format(const struct mw_checkpoint *c, struct mw_dynbuf *out);

/* ---------------------------------------------------------------- tiled log on disk */

/*
 * A log stored as C2SP tlog-tiles in a directory: checkpoint, tile/<L>/<N>,
 * tile/entries/<N> (each with .p/<W> for partial tiles). The directory is
 * what gets copied to an immutable store, and what `meshward log verify`
 * checks.
 *
 * Appends are durable when mw_tlog_append returns: tiles and entry bundles are
 * written and fsynced first, then a new signed checkpoint replaces the old one
 * atomically. The checkpoint is the commit point: after a crash, entries past
 * it were never acknowledged and are discarded when the log is reopened.
 */
struct mw_tlog;

#define MW_TLOG_MAX_ENTRY 65535 /* entry bundles use uint16 length prefixes */

/*
 * Open the log in dir, creating it (and an empty checkpoint) when dir has
 * none. The existing checkpoint must verify with the signer's own key and
 * match the tiles, or the log is refused. The signer is borrowed.
 */
MW_RESULT mw_tlog_open(const char *dir, const char *origin, const struct mw_note_signer *signer,
                       struct mw_tlog **out);
void mw_tlog_close(struct mw_tlog *log);
uint64_t mw_tlog_size(const struct mw_tlog *log);
/* Append n entries; *first receives the index of the first. Durable on success. */
MW_RESULT mw_tlog_append(struct mw_tlog *log, const mw_slice *entries, size_t n, uint64_t *first);

/* What mw_tlog_verify_dir found. */
struct mw_tlog_report {
    struct mw_checkpoint checkpoint;
    uint64_t entries_checked;
    uint64_t tiles_checked;
    uint64_t since_size; /* size of the earlier checkpoint, when one was given */
};

/*
 * Verify a log directory offline: the checkpoint signature (by v), every
 * entry against its level-0 hash, every tile against the level below, the
 * root against the checkpoint, and, if since_note is given, that the earlier
 * checkpoint is signed by v and the tree it names is a prefix of this one.
 */
MW_RESULT mw_tlog_verify_dir(const char *dir, struct mw_note_verifier *v,
                             const mw_slice *since_note, struct mw_tlog_report *report);

/*
 * Read entry index of the log in dir (verified against the signed checkpoint)
 * and its inclusion proof in the checkpoint's tree.
 */
MW_RESULT mw_tlog_read_entry(const char *dir, struct mw_note_verifier *v, uint64_t index,
                             struct mw_dynbuf *entry, mw_tlog_hash *proof, size_t *proof_len,
                             struct mw_checkpoint *checkpoint);

typedef mw_result (*mw_tlog_entry_fn)(void *ctx, uint64_t index, mw_slice entry);
/*
 * Verify the log in dir as mw_tlog_verify_dir does (without since_note) and
 * hand each entry, in order, to each once it matches its level-0 hash. The
 * root is compared with the checkpoint only after the last entry: when this
 * fails, drop whatever each gathered. A failure of each stops the walk and is
 * returned as it is.
 */
MW_RESULT mw_tlog_each_entry(const char *dir, struct mw_note_verifier *v, mw_tlog_entry_fn each,
                             void *ctx);

#endif
