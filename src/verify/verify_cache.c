/*
 * The verdict cache: verdicts keyed by (image digest, policy hash,
 * trusted-root hash) so that an admission answer is a hash lookup, not a
 * P-384 verification (anchors-supply-chain.md §11). Changing the policy or
 * the trusted root changes the key, so stale verdicts can never be served
 * for a new policy; revocation drops affected entries at once. Each entry
 * carries its verdict whole, so the signer (SAN and issuer, or key id) and
 * the attestation digest a revocation matches on are in the entry itself.
 */
#include <string.h>

#include "verify/verify_internal.h"

struct cache_entry {
    bool used;
    int64_t expires;
    uint8_t policy[32];
    uint8_t root[32];
    uint64_t hash;
    int32_t next; /* bucket chain, -1 ends */
    struct mw_image_verdict v;
};

struct mw_verdict_cache {
    struct cache_entry *e;
    int32_t *buckets;
    size_t cap;
    size_t nbuckets;
    size_t used;
    int64_t ttl;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t key_hash(const char *digest, const uint8_t policy[32], const uint8_t root[32])
{
    uint64_t h = fnv(0xcbf29ce484222325ull, digest, strlen(digest));
    h = fnv(h, policy, 32);
    return fnv(h, root, 32);
}

mw_result mw_verdict_cache_new(size_t capacity, int64_t ttl_s, struct mw_verdict_cache **out)
{
    *out = NULL;
    MW_ENSURE(capacity > 0 && capacity <= (1u << 24), MW_E_INPUT,
              "verdict cache capacity %zu is outside 1..16777216", capacity);
    MW_ENSURE(ttl_s > 0, MW_E_INPUT, "verdict cache TTL must be positive");
    struct mw_verdict_cache *c = calloc(1, sizeof(*c));
    MW_ENSURE(c != NULL, MW_E_NOMEM, "out of memory");
    c->cap = capacity;
    c->nbuckets = capacity * 2;
    c->e = calloc(capacity, sizeof(*c->e));
    c->buckets = malloc(c->nbuckets * sizeof(*c->buckets));
    if (c->e == NULL || c->buckets == NULL) {
        mw_verdict_cache_free(c);
        MW_BAIL(MW_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < c->nbuckets; i++)
        c->buckets[i] = -1;
    c->ttl = ttl_s;
    *out = c;
    return MW_SUCCESS;
}

void mw_verdict_cache_free(struct mw_verdict_cache *c)
{
    if (c == NULL)
        return;
    free(c->e);
    free(c->buckets);
    free(c);
}

static void unlink_entry(struct mw_verdict_cache *c, int32_t idx)
{
    int32_t *pp = &c->buckets[c->e[idx].hash % c->nbuckets];
    while (*pp != -1 && *pp != idx)
        pp = &c->e[*pp].next;
    if (*pp == idx)
        *pp = c->e[idx].next;
    c->e[idx].used = false;
    c->used--;
}

static int32_t find(struct mw_verdict_cache *c, uint64_t h, const char *digest,
                    const uint8_t policy[32], const uint8_t root[32])
{
    for (int32_t i = c->buckets[h % c->nbuckets]; i != -1; i = c->e[i].next) {
        const struct cache_entry *e = &c->e[i];
        if (e->hash == h && strcmp(e->v.digest, digest) == 0 &&
            memcmp(e->policy, policy, 32) == 0 && memcmp(e->root, root, 32) == 0)
            return i;
    }
    return -1;
}

mw_result mw_verdict_cache_put(struct mw_verdict_cache *c, const uint8_t policy[32],
                               const uint8_t root[32], const struct mw_image_verdict *v,
                               int64_t now)
{
    uint64_t h = key_hash(v->digest, policy, root);
    int32_t idx = find(c, h, v->digest, policy, root);
    if (idx != -1)
        unlink_entry(c, idx);
    if (c->used == c->cap) {
        /* Full: evict the entry closest to expiry (rare; an O(n) scan is fine). */
        int32_t victim = 0;
        for (size_t i = 1; i < c->cap; i++)
            if (c->e[i].expires < c->e[victim].expires)
                victim = (int32_t)i;
        unlink_entry(c, victim);
    }
    for (idx = 0; (size_t)idx < c->cap && c->e[idx].used; idx++)
        ;
    MW_ENSURE((size_t)idx < c->cap, MW_E_INTERNAL, "verdict cache has no free slot");
    struct cache_entry *e = &c->e[idx];
    e->used = true;
    e->expires = now + c->ttl;
    memcpy(e->policy, policy, 32);
    memcpy(e->root, root, 32);
    e->hash = h;
    e->v = *v;
    e->next = c->buckets[h % c->nbuckets];
    c->buckets[h % c->nbuckets] = idx;
    c->used++;
    return MW_SUCCESS;
}

bool mw_verdict_cache_get(struct mw_verdict_cache *c, const char *digest, const uint8_t policy[32],
                          const uint8_t root[32], int64_t now, struct mw_image_verdict *out)
{
    int32_t idx = find(c, key_hash(digest, policy, root), digest, policy, root);
    if (idx == -1)
        return false;
    if (now >= c->e[idx].expires) {
        unlink_entry(c, idx);
        return false;
    }
    *out = c->e[idx].v;
    return true;
}

size_t mw_verdict_cache_revoke_digest(struct mw_verdict_cache *c, const char *digest)
{
    size_t n = 0;
    for (size_t i = 0; i < c->cap; i++)
        if (c->e[i].used && strcmp(c->e[i].v.digest, digest) == 0) {
            unlink_entry(c, (int32_t)i);
            n++;
        }
    return n;
}

/* What a revocation drops: a predicate over the cached verdict. */
struct revoke_match {
    bool (*hit)(const struct mw_image_verdict *v, const struct revoke_match *m);
    const char *value;
    const char *issuer;
};

/* Has this call already listed digest? affected[from..] holds its lines so far. */
static bool listed(const struct mw_dynbuf *affected, size_t from, const char *digest)
{
    if (affected->n == from)
        return false;
    size_t dn = strlen(digest);
    const char *p = (const char *)affected->p + from;
    const char *end = (const char *)affected->p + affected->n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ln = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        if (ln == dn && memcmp(p, digest, dn) == 0)
            return true;
        p += ln + 1;
    }
    return false;
}

static mw_result revoke(struct mw_verdict_cache *c, const struct revoke_match *m,
                        struct mw_dynbuf *affected, size_t *n)
{
    *n = 0;
    size_t from = affected->n;
    /* List first, then drop: a failure to list (the buffer's limit) leaves the cache as it was,
     * so the caller can retry rather than lose track of what was revoked. */
    for (size_t i = 0; i < c->cap; i++) {
        const struct cache_entry *e = &c->e[i];
        if (!e->used || !m->hit(&e->v, m) || listed(affected, from, e->v.digest))
            continue;
        MW_GUARD(mw_dynbuf_addf(affected, "%s\n", e->v.digest));
        (*n)++;
    }
    for (size_t i = 0; i < c->cap; i++)
        if (c->e[i].used && m->hit(&c->e[i].v, m))
            unlink_entry(c, (int32_t)i);
    return MW_SUCCESS;
}

/* A keyed verdict's identity is a placeholder, never a SAN: only keyless verdicts match. */
static bool hit_signer(const struct mw_image_verdict *v, const struct revoke_match *m)
{
    return v->key_id[0] == '\0' && strcmp(v->identity, m->value) == 0 &&
           (m->issuer == NULL || strcmp(v->issuer, m->issuer) == 0);
}

static bool hit_key(const struct mw_image_verdict *v, const struct revoke_match *m)
{
    return v->key_id[0] != '\0' && strcmp(v->key_id, m->value) == 0;
}

static bool hit_attestation(const struct mw_image_verdict *v, const struct revoke_match *m)
{
    return v->attestation[0] != '\0' && strcmp(v->attestation, m->value) == 0;
}

mw_result mw_verdict_cache_revoke_identity(struct mw_verdict_cache *c, const char *identity,
                                           struct mw_dynbuf *affected, size_t *n)
{
    return mw_verdict_cache_revoke_signer(c, identity, NULL, affected, n);
}

mw_result mw_verdict_cache_revoke_signer(struct mw_verdict_cache *c, const char *identity,
                                         const char *issuer, struct mw_dynbuf *affected, size_t *n)
{
    *n = 0;
    MW_ENSURE(identity != NULL && identity[0] != '\0', MW_E_INPUT,
              "revocation by identity needs a non-empty SAN");
    struct revoke_match m = {.hit = hit_signer, .value = identity, .issuer = issuer};
    return revoke(c, &m, affected, n);
}

mw_result mw_verdict_cache_revoke_key(struct mw_verdict_cache *c, const char *key_id,
                                      struct mw_dynbuf *affected, size_t *n)
{
    *n = 0;
    MW_ENSURE(key_id != NULL && key_id[0] != '\0', MW_E_INPUT, "revocation by key needs a key id");
    struct revoke_match m = {.hit = hit_key, .value = key_id};
    return revoke(c, &m, affected, n);
}

mw_result mw_verdict_cache_revoke_attestation(struct mw_verdict_cache *c, const char *attestation,
                                              struct mw_dynbuf *affected, size_t *n)
{
    *n = 0;
    MW_ENSURE(attestation != NULL && attestation[0] != '\0', MW_E_INPUT,
              "revocation by attestation needs an attestation digest");
    struct revoke_match m = {.hit = hit_attestation, .value = attestation};
    return revoke(c, &m, affected, n);
}
