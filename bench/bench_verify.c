/*
 * Sigstore verification cost (issue 5): cold verification per bundle kind and
 * verdict-cache hits. A cold verification is what an admission request pays
 * when nothing is cached: parse the bundle JSON, hash the artifact and run
 * mw_verify_bundle. The trusted root is loaded once, outside the timed loop,
 * as a long-running verifier would hold it. The peer, @sigstore/verify, runs
 * the same cases in bench_verify_sigstore_js.mjs.
 *
 *   bench_verify CONFORMANCE_DIR SECONDS_PER_ROW CASE=KIND...
 *
 * Each CASE names a sigstore-conformance case in CONFORMANCE_DIR/cases.json;
 * its bundle, trusted root, artifact and identity (or key) come from there.
 * One "RESULT" line per row, then one "RSS" line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <meshward/verify.h>

#define MAX_SAMPLES 400000

struct bench_case {
    char name[128];
    char kind[64];
    struct mw_dynbuf bundle, root, artifact, key;
    char identity[512], issuer[512];
};

static void die(const char *what)
{
    fprintf(stderr, "bench_verify: %s: %s\n", what, mw_error_msg());
    exit(1);
}

static void read_into(const char *dir, const char *rel, struct mw_dynbuf *b)
{
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    mw_dynbuf_init(b, 8u << 20);
    if (mw_failed(mw_file_read(path, 8u << 20, b)))
        die(path);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

static void load_case(const char *dir, json_t *cases, const char *spec, struct bench_case *c)
{
    memset(c, 0, sizeof(*c));
    const char *eq = strchr(spec, '=');
    if (eq == NULL || (size_t)(eq - spec) >= sizeof(c->name)) {
        fprintf(stderr, "bench_verify: want CASE=KIND, got %s\n", spec);
        exit(2);
    }
    snprintf(c->name, sizeof(c->name), "%.*s", (int)(eq - spec), spec);
    copy_str(c->kind, sizeof(c->kind), eq + 1);
    json_t *found = NULL, *it;
    size_t i;
    json_array_foreach(cases, i, it)
    {
        const char *n = json_string_value(json_object_get(it, "name"));
        if (n != NULL && strcmp(n, c->name) == 0)
            found = it;
    }
    if (found == NULL || strcmp(json_string_value(json_object_get(found, "expect")), "pass") != 0) {
        fprintf(stderr, "bench_verify: %s is not a passing case of cases.json\n", c->name);
        exit(2);
    }
    read_into(dir, json_string_value(json_object_get(found, "bundle")), &c->bundle);
    read_into(dir, json_string_value(json_object_get(found, "trusted_root")), &c->root);
    read_into(dir, json_string_value(json_object_get(found, "artifact")), &c->artifact);
    const char *key = json_string_value(json_object_get(found, "key"));
    if (key != NULL)
        read_into(dir, key, &c->key);
    else
        mw_dynbuf_init(&c->key, 1);
    copy_str(c->identity, sizeof(c->identity),
             json_string_value(json_object_get(found, "certificate_identity")));
    copy_str(c->issuer, sizeof(c->issuer),
             json_string_value(json_object_get(found, "certificate_oidc_issuer")));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Median and p99 of n samples (sorted in place), mean too. */
static void stats(uint64_t *s, size_t n, double *median, double *p99, double *mean)
{
    qsort(s, n, sizeof(*s), cmp_u64);
    *median = n % 2 ? (double)s[n / 2] : ((double)s[n / 2 - 1] + (double)s[n / 2]) / 2;
    size_t k = (size_t)((double)n * 0.99);
    *p99 = (double)s[k < n ? k : n - 1];
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)s[i];
    *mean = sum / (double)n;
}

static void verify_once(const struct bench_case *c, const struct mw_trust_root *tr)
{
    struct mw_sigstore_bundle *b;
    if (mw_failed(mw_sigstore_bundle_parse(mw_dynbuf_slice(&c->bundle), c->name, &b)))
        die("parse");
    struct mw_artifact a;
    mw_artifact_from_bytes(mw_dynbuf_slice(&c->artifact), &a);
    struct mw_verify_policy p = {0};
    if (c->key.n > 0) {
        p.key_pem = mw_dynbuf_slice(&c->key);
    } else {
        p.identity = c->identity;
        p.issuer = c->issuer;
    }
    static struct mw_verify_result res;
    if (mw_failed(mw_verify_bundle(tr, b, &a, &p, NULL, &res)))
        die(c->name);
    mw_sigstore_bundle_free(b);
}

static void bench_cold(const struct bench_case *c, double secs, uint64_t *samples)
{
    struct mw_trust_root *tr;
    if (mw_failed(mw_trust_root_load(mw_dynbuf_slice(&c->root), c->name, &tr)))
        die("trusted root");
    for (int i = 0; i < 20; i++)
        verify_once(c, tr);
    uint64_t start = mw_monotonic_ns(), budget = (uint64_t)(secs * 1e9);
    size_t n = 0;
    while (n < MAX_SAMPLES && (n < 50 || mw_monotonic_ns() - start < budget)) {
        uint64_t t0 = mw_monotonic_ns();
        verify_once(c, tr);
        samples[n++] = mw_monotonic_ns() - t0;
    }
    double med, p99, mean;
    stats(samples, n, &med, &p99, &mean);
    printf("RESULT impl=meshward kind=%s case=%s iters=%zu median_us=%.1f p99_us=%.1f "
           "mean_us=%.1f\n",
           c->kind, c->name, n, med / 1e3, p99 / 1e3, mean / 1e3);
    fflush(stdout);
    mw_trust_root_free(tr);
}

/*
 * Hits in a cache of 10,000 verdicts. One lookup is tens of nanoseconds, below
 * what a clock read resolves well, so each sample is a batch of 1,000 hits on
 * a pseudo-random sequence of keys and reports the time per hit.
 */
static void bench_cache(double secs, uint64_t *samples)
{
    enum { N = 10000, BATCH = 1000 };
    struct mw_verdict_cache *vc;
    if (mw_failed(mw_verdict_cache_new(N, 3600, &vc)))
        die("cache");
    uint8_t policy[32], root[32];
    memset(policy, 0x11, sizeof(policy));
    memset(root, 0x22, sizeof(root));
    static char digests[N][80];
    static struct mw_image_verdict v;
    for (int i = 0; i < N; i++) {
        memset(&v, 0, sizeof(v));
        v.allowed = true;
        snprintf(v.digest, sizeof(v.digest), "sha256:%064x", i * 2654435761u);
        snprintf(v.rule, sizeof(v.rule), "ghcr.io/acme/*");
        snprintf(v.identity, sizeof(v.identity),
                 "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main");
        snprintf(v.reason, sizeof(v.reason), "signed by %s", v.identity);
        memcpy(digests[i], v.digest, sizeof(v.digest));
        if (mw_failed(mw_verdict_cache_put(vc, policy, root, &v, 1000)))
            die("cache put");
    }
    uint64_t start = mw_monotonic_ns(), budget = (uint64_t)(secs * 1e9);
    size_t n = 0;
    uint32_t x = 12345;
    unsigned hits = 0;
    while (n < MAX_SAMPLES && (n < 50 || mw_monotonic_ns() - start < budget)) {
        uint64_t t0 = mw_monotonic_ns();
        for (int i = 0; i < BATCH; i++) {
            x = x * 1664525u + 1013904223u;
            hits += mw_verdict_cache_get(vc, digests[(x >> 8) % N], policy, root, 2000, &v);
        }
        samples[n++] = (mw_monotonic_ns() - t0) / BATCH;
    }
    if (hits != n * BATCH) {
        fprintf(stderr, "bench_verify: %u hits of %zu lookups\n", hits, n * BATCH);
        exit(1);
    }
    double med, p99, mean;
    stats(samples, n, &med, &p99, &mean);
    printf("RESULT impl=meshward kind=cache_hit case=10000_verdicts iters=%zu median_ns=%.0f "
           "p99_ns=%.0f mean_ns=%.0f\n",
           n * BATCH, med, p99, mean);
    mw_verdict_cache_free(vc);
}

static long vm_hwm_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f != NULL)
        fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_verify CONFORMANCE_DIR SECONDS_PER_ROW CASE=KIND...\n");
        return 2;
    }
    const char *dir = argv[1];
    char *end;
    double secs = strtod(argv[2], &end);
    if (*end != '\0' || secs <= 0 || secs > 60) {
        fprintf(stderr, "bench_verify: SECONDS_PER_ROW %s is not in (0, 60]\n", argv[2]);
        return 2;
    }
    char path[2048];
    snprintf(path, sizeof(path), "%s/cases.json", dir);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    json_t *cases = json_object_get(doc, "cases");
    if (!json_is_array(cases)) {
        fprintf(stderr, "bench_verify: %s: no \"cases\" array (%s)\n", path, jerr.text);
        return 1;
    }
    uint64_t *samples = malloc(MAX_SAMPLES * sizeof(*samples));
    if (samples == NULL)
        return 1;
    for (int i = 3; i < argc; i++) {
        struct bench_case c;
        load_case(dir, cases, argv[i], &c);
        bench_cold(&c, secs, samples);
        mw_dynbuf_free(&c.bundle);
        mw_dynbuf_free(&c.root);
        mw_dynbuf_free(&c.artifact);
        mw_dynbuf_free(&c.key);
    }
    bench_cache(secs, samples);
    printf("RSS impl=meshward vmhwm_kib=%ld\n", vm_hwm_kib());
    free(samples);
    json_decref(doc);
    return 0;
}
