#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include <meshward/tlog.h>

/* RFC 6962 §2.1: domain separation between leaves and interior nodes. */
enum { LEAF_PREFIX = 0x00, NODE_PREFIX = 0x01 };

static void sha256_parts(uint8_t prefix, const void *a, size_t an, const void *b, size_t bn,
                         mw_tlog_hash *out)
{
    /*
     * One-shot digest of prefix || a || b. EVP_Digest cannot take parts, so
     * a small fixed buffer holds node inputs; leaves stream through a context.
     */
    if (an + bn <= 2 * MW_TLOG_HASH_LEN) {
        uint8_t buf[1 + 2 * MW_TLOG_HASH_LEN];
        buf[0] = prefix;
        if (an > 0)
            memcpy(buf + 1, a, an);
        if (bn > 0)
            memcpy(buf + 1 + an, b, bn);
        unsigned int len = 0;
        (void)EVP_Digest(buf, 1 + an + bn, out->b, &len, EVP_sha256(), NULL);
        return;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    /* SHA-256 over memory cannot fail except for allocation; then the hash is zeros, never a match.
     */
    memset(out->b, 0, sizeof(out->b));
    if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, &prefix, 1) == 1 && EVP_DigestUpdate(ctx, a, an) == 1 &&
        EVP_DigestUpdate(ctx, b, bn) == 1)
        (void)EVP_DigestFinal_ex(ctx, out->b, &len);
    EVP_MD_CTX_free(ctx);
}

void mw_tlog_leaf_hash(mw_slice data, mw_tlog_hash *out)
{
    sha256_parts(LEAF_PREFIX, data.p, data.n, NULL, 0, out);
}

void mw_tlog_node_hash(const mw_tlog_hash *left, const mw_tlog_hash *right, mw_tlog_hash *out)
{
    mw_tlog_hash l = *left, r = *right; /* out may alias an input */
    sha256_parts(NODE_PREFIX, l.b, sizeof(l.b), r.b, sizeof(r.b), out);
}

void mw_tlog_empty_root(mw_tlog_hash *out)
{
    unsigned int len = 0;
    (void)EVP_Digest("", 0, out->b, &len, EVP_sha256(), NULL);
}

static bool hash_eq(const mw_tlog_hash *a, const mw_tlog_hash *b)
{
    return CRYPTO_memcmp(a->b, b->b, MW_TLOG_HASH_LEN) == 0;
}

/* The largest power of two strictly less than n (n >= 2): RFC 6962 §2.1's k. */
static uint64_t split_point(uint64_t n)
{
    uint64_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    return k;
}

/* MTH over leaves[0, n), n >= 1; recursion depth is at most 64. */
static void mth(const mw_tlog_hash *leaves, uint64_t n, mw_tlog_hash *out)
{
    if (n == 1) {
        *out = leaves[0];
        return;
    }
    uint64_t k = split_point(n);
    mw_tlog_hash l, r;
    mth(leaves, k, &l);
    mth(leaves + k, n - k, &r);
    mw_tlog_node_hash(&l, &r, out);
}

mw_result mw_tlog_root(const mw_tlog_hash *leaves, uint64_t n, mw_tlog_hash *out)
{
    if (n == 0) {
        mw_tlog_empty_root(out);
        return MW_SUCCESS;
    }
    MW_ENSURE(leaves != NULL, MW_E_INTERNAL, "no leaves");
    mth(leaves, n, out);
    return MW_SUCCESS;
}

/* RFC 6962 §2.1.1 PATH(m, D[n]). */
static void path(const mw_tlog_hash *leaves, uint64_t n, uint64_t m, mw_tlog_hash *proof,
                 size_t *len)
{
    if (n <= 1)
        return;
    uint64_t k = split_point(n);
    mw_tlog_hash h;
    if (m < k) {
        path(leaves, k, m, proof, len);
        mth(leaves + k, n - k, &h);
    } else {
        path(leaves + k, n - k, m - k, proof, len);
        mth(leaves, k, &h);
    }
    proof[(*len)++] = h;
}

mw_result mw_tlog_inclusion_proof(const mw_tlog_hash *leaves, uint64_t n, uint64_t index,
                                  mw_tlog_hash *proof, size_t *proof_len)
{
    MW_ENSURE(index < n, MW_E_INPUT, "leaf index %llu is outside a tree of %llu leaves",
              (unsigned long long)index, (unsigned long long)n);
    *proof_len = 0;
    path(leaves, n, index, proof, proof_len);
    return MW_SUCCESS;
}

/* RFC 6962 §2.1.2 SUBPROOF(m, D[n], b). */
static void subproof(const mw_tlog_hash *leaves, uint64_t n, uint64_t m, bool whole,
                     mw_tlog_hash *proof, size_t *len)
{
    if (m == n) {
        if (!whole)
            mth(leaves, n, &proof[(*len)++]);
        return;
    }
    uint64_t k = split_point(n);
    mw_tlog_hash h;
    if (m <= k) {
        subproof(leaves, k, m, whole, proof, len);
        mth(leaves + k, n - k, &h);
    } else {
        subproof(leaves + k, n - k, m - k, false, proof, len);
        mth(leaves, k, &h);
    }
    proof[(*len)++] = h;
}

mw_result mw_tlog_consistency_proof(const mw_tlog_hash *leaves, uint64_t m, uint64_t n,
                                    mw_tlog_hash *proof, size_t *proof_len)
{
    MW_ENSURE(m <= n, MW_E_INPUT, "consistency from size %llu to smaller size %llu",
              (unsigned long long)m, (unsigned long long)n);
    *proof_len = 0;
    if (m == 0 || m == n)
        return MW_SUCCESS;
    subproof(leaves, n, m, true, proof, proof_len);
    return MW_SUCCESS;
}

mw_result mw_tlog_verify_inclusion(uint64_t index, uint64_t tree_size,
                                   const mw_tlog_hash *leaf_hash, const mw_tlog_hash *proof,
                                   size_t proof_len, const mw_tlog_hash *root)
{
    MW_ENSURE(index < tree_size, MW_E_INPUT, "leaf index %llu is outside a tree of %llu leaves",
              (unsigned long long)index, (unsigned long long)tree_size);
    /* RFC 9162 §2.1.3.2. */
    uint64_t fn = index, sn = tree_size - 1;
    mw_tlog_hash r = *leaf_hash;
    for (size_t i = 0; i < proof_len; i++) {
        MW_ENSURE(sn != 0, MW_E_VERIFY, "inclusion proof has %zu hashes, more than the tree needs",
                  proof_len);
        if ((fn & 1) == 1 || fn == sn) {
            mw_tlog_node_hash(&proof[i], &r, &r);
            if ((fn & 1) == 0) {
                while ((fn & 1) == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            mw_tlog_node_hash(&r, &proof[i], &r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    MW_ENSURE(sn == 0, MW_E_VERIFY, "inclusion proof has %zu hashes, fewer than the tree needs",
              proof_len);
    MW_ENSURE(hash_eq(&r, root), MW_E_VERIFY,
              "inclusion proof does not lead to the root of the tree of size %llu",
              (unsigned long long)tree_size);
    return MW_SUCCESS;
}

mw_result mw_tlog_verify_consistency(uint64_t size1, uint64_t size2, mw_slice root1_bytes,
                                     mw_slice root2_bytes, const mw_tlog_hash *proof,
                                     size_t proof_len)
{
    MW_ENSURE(size1 <= size2, MW_E_INPUT, "tree size went backwards from %llu to %llu",
              (unsigned long long)size1, (unsigned long long)size2);
    /*
     * Every tree extends the empty one, so a check from size 0 proves nothing;
     * a caller asking for it has lost its previous checkpoint. Refused, as
     * transparency-dev/merkle does.
     */
    MW_ENSURE(size1 != 0, MW_E_INPUT, "consistency from the empty tree proves nothing");
    if (size1 == size2) {
        MW_ENSURE(proof_len == 0, MW_E_VERIFY,
                  "equal tree sizes need an empty consistency proof, got %zu hashes", proof_len);
        MW_ENSURE(mw_slice_eq_ct(root1_bytes, root2_bytes), MW_E_VERIFY,
                  "two different roots for the same tree size %llu", (unsigned long long)size1);
        return MW_SUCCESS;
    }
    MW_ENSURE(proof_len > 0, MW_E_VERIFY, "empty consistency proof from size %llu to %llu",
              (unsigned long long)size1, (unsigned long long)size2);
    MW_ENSURE(root1_bytes.n == MW_TLOG_HASH_LEN && root2_bytes.n == MW_TLOG_HASH_LEN, MW_E_INPUT,
              "tree roots must be %d-byte SHA-256 hashes", MW_TLOG_HASH_LEN);
    mw_tlog_hash r1, r2;
    memcpy(r1.b, root1_bytes.p, MW_TLOG_HASH_LEN);
    memcpy(r2.b, root2_bytes.p, MW_TLOG_HASH_LEN);
    const mw_tlog_hash *root1 = &r1, *root2 = &r2;

    /* RFC 9162 §2.1.4.2. When size1 is a power of two, root1 is the first node of the path. */
    size_t i = 0;
    mw_tlog_hash first;
    if ((size1 & (size1 - 1)) == 0) {
        first = *root1;
    } else {
        first = proof[0];
        i = 1;
    }
    uint64_t fn = size1 - 1, sn = size2 - 1;
    while ((fn & 1) == 1) {
        fn >>= 1;
        sn >>= 1;
    }
    mw_tlog_hash fr = first, sr = first;
    for (; i < proof_len; i++) {
        MW_ENSURE(sn != 0, MW_E_VERIFY, "consistency proof has more hashes than the trees need");
        if ((fn & 1) == 1 || fn == sn) {
            mw_tlog_node_hash(&proof[i], &fr, &fr);
            mw_tlog_node_hash(&proof[i], &sr, &sr);
            while ((fn & 1) == 0 && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            mw_tlog_node_hash(&sr, &proof[i], &sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    MW_ENSURE(sn == 0, MW_E_VERIFY, "consistency proof has fewer hashes than the trees need");
    MW_ENSURE(hash_eq(&fr, root1), MW_E_VERIFY,
              "consistency proof does not match the old root (size %llu)",
              (unsigned long long)size1);
    MW_ENSURE(hash_eq(&sr, root2), MW_E_VERIFY,
              "consistency proof does not match the new root (size %llu)",
              (unsigned long long)size2);
    return MW_SUCCESS;
}
