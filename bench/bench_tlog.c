/*
 * Issuance-log throughput: durable appends (tiles + signed checkpoint, each
 * fsynced) at several batch sizes, and inclusion-proof generation and
 * verification. The floor it is compared against, in the same run, is the
 * cheapest durable commit there is on this disk: write a small file, fsync it,
 * rename it over the old one, fsync the directory (what any crash-safe
 * acknowledgement must pay at least once).
 *
 *   bench/run_tlog.sh [BUILD_DIR]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <meshward/tlog.h>

static double now_s(void)
{
    return (double)mw_monotonic_ns() / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_tlog: %s: %s\n", what, mw_error_msg());
    exit(1);
}

static double floor_commit_per_s(const char *dir, int n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/floor", dir);
    uint8_t buf[200];
    memset(buf, 'x', sizeof(buf));
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        if (mw_failed(mw_file_write_atomic(path, mw_slice_make(buf, sizeof(buf)), 0644)))
            die("floor write");
    }
    return n / (now_s() - t0);
}

static double appends_per_s(const char *dir, struct mw_note_signer *s, int batch, int total)
{
    struct mw_tlog *log;
    if (mw_failed(mw_tlog_open(dir, "bench.meshward/log", s, &log)))
        die("open");
    /* A record the size of a real issuance-log leaf (~400 bytes). */
    char rec[4096][400];
    mw_slice entries[4096];
    double t0 = now_s();
    int done = 0;
    while (done < total) {
        int n = batch < total - done ? batch : total - done;
        for (int i = 0; i < n; i++) {
            int len = snprintf(rec[i], sizeof(rec[i]),
                               "{\"serial\":\"%032x\",\"spiffe_id\":\"spiffe://bench.example/ns/"
                               "default/sa/workload-%d\",\"not_before\":1795521600,\"not_after\":"
                               "1795525200,\"spki_sha256\":\"%064d\",\"credential\":\"k8s-sa\"}",
                               done + i, (done + i) % 1000, done + i);
            entries[i] = mw_slice_make(rec[i], (size_t)len);
        }
        uint64_t first;
        if (mw_failed(mw_tlog_append(log, entries, (size_t)n, &first)))
            die("append");
        done += n;
    }
    double rate = total / (now_s() - t0);
    mw_tlog_close(log);
    return rate;
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "/tmp";
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/mw-bench-tlog.XXXXXX", base);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    struct mw_dynbuf sk, vk;
    mw_dynbuf_init(&sk, 512);
    mw_dynbuf_init(&vk, 512);
    struct mw_note_signer *s;
    if (mw_failed(mw_note_keygen("bench.meshward/log", &sk, &vk)) ||
        mw_failed(mw_note_signer_new(mw_dynbuf_slice(&sk), &s)))
        die("keygen");

    double floor = floor_commit_per_s(dir, 300);
    printf("%-44s %12s %14s\n", "operation", "per second", "vs fsync floor");
    printf("%-44s %12.0f %14s\n", "durable commit floor (write+fsync+rename)", floor, "1.00");
    static const int batches[] = {1, 16, 256};
    static const int totals[] = {300, 4000, 40000};
    for (int i = 0; i < 3; i++) {
        char sub[600];
        snprintf(sub, sizeof(sub), "%s/b%d", dir, batches[i]);
        double r = appends_per_s(sub, s, batches[i], totals[i]);
        char label[64];
        snprintf(label, sizeof(label), "durable appends, batch %d", batches[i]);
        printf("%-44s %12.0f %14.2f\n", label, r, r / floor);
        printf("RESULT tlog_append batch=%d per_s=%.0f floor_per_s=%.0f\n", batches[i], r, floor);
    }

    /* Proofs over an in-memory tree of 1M leaves. */
    enum { N = 1 << 20 };
    mw_tlog_hash *leaves = malloc(sizeof(*leaves) * N);
    if (leaves == NULL)
        return 1;
    for (uint32_t i = 0; i < N; i++) {
        uint8_t b[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        mw_tlog_leaf_hash(mw_slice_make(b, 4), &leaves[i]);
    }
    mw_tlog_hash root, proof[64];
    double t0 = now_s();
    if (mw_failed(mw_tlog_root(leaves, N, &root)))
        die("root");
    double root_s = now_s() - t0;
    int nverify = 20000;
    size_t len;
    if (mw_failed(mw_tlog_inclusion_proof(leaves, N, 12345, proof, &len)))
        die("proof");
    t0 = now_s();
    for (int i = 0; i < nverify; i++) {
        if (mw_failed(mw_tlog_verify_inclusion(12345, N, &leaves[12345], proof, len, &root)))
            die("verify");
    }
    double vrate = nverify / (now_s() - t0);
    printf("%-44s %12.2f %14s\n", "root of 1,048,576 leaves (seconds)", root_s, "-");
    printf("%-44s %12.0f %14s\n", "inclusion proof verifications (20 hashes)", vrate, "-");
    printf("RESULT tlog_verify_inclusion per_s=%.0f tree=%d\n", vrate, N);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS: %ld KiB (1M leaf hashes = 32 MiB of it)\n", ru.ru_maxrss);
    free(leaves);
    mw_note_signer_free(s);
    mw_dynbuf_free(&sk);
    mw_dynbuf_free(&vk);
    return 0;
}
