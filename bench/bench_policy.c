/*
 * Policy evaluation benchmark (issue 4 "Performance"): decisions per second and ns per decision
 * for workloads with 1, 10, 100 and 1,000 AuthorizationPolicies of a realistic mix; load and
 * compile time for 10,000; peak RSS. Not a test: run through bench/run_policy.sh.
 *
 * The policies are generated as YAML text and go through the real loader. Every generated policy
 * applies to the benchmarked workload (namespace "shop", app=web): the engine's compile step
 * drops policies of other namespaces and selectors, so counting only applying ones measures the
 * request path at its worst.
 *
 * Timing: decisions are run in batches; each batch is timed with CLOCK_MONOTONIC and gives one
 * ns-per-decision sample. Median and p99 are over batches, so p99 is the slowest 1% of batches,
 * not of single decisions (a single decision is shorter than the clock's useful resolution).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <meshward/policy.h>

#define MAX_SAMPLES 4096

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_policy: %s: %s\n", what, mw_error_msg());
    exit(1);
}

/* ---------------------------------------------------------------- policy generation */

/*
 * Ten shapes, cycled. ALLOW and DENY, principals, namespaces, requestPrincipals, ipBlocks and
 * remoteIpBlocks, hosts, exact/prefix/suffix paths and {*}/{**} templates, methods, ports, and
 * when conditions on headers, claims, source.ip and destination.port. DENY shapes are written so
 * that the common requests below do not hit them: a DENY that matches ends evaluation early and
 * would flatter the figures.
 */
static int gen_policy(struct mw_dynbuf *b, size_t i)
{
    mw_result r = mw_dynbuf_addf(b,
                                 "---\napiVersion: security.istio.io/v1\nkind: "
                                 "AuthorizationPolicy\nmetadata:\n  name: p%zu\n  namespace: %s\n"
                                 "spec:\n",
                                 i, i % 7 == 3 ? "istio-system" : "shop");
    if (mw_failed(r))
        return -1;
    if (i % 3 != 2)
        r = mw_dynbuf_add_cstr(b, "  selector:\n    matchLabels:\n      app: web\n");
    if (mw_failed(r))
        return -1;
    switch (i % 10) {
    case 0:
        r = mw_dynbuf_addf(b,
                           "  action: ALLOW\n  rules:\n  - from:\n    - source:\n"
                           "        principals: [\"cluster.local/ns/team%zu/sa/frontend\", "
                           "\"cluster.local/ns/team%zu/sa/batch\"]\n"
                           "    to:\n    - operation:\n        methods: [\"GET\", \"HEAD\"]\n"
                           "        paths: [\"/api/v%zu/*\", \"/static/*\"]\n",
                           i, i, i);
        break;
    case 1:
        r = mw_dynbuf_addf(b,
                           "  action: DENY\n  rules:\n  - from:\n    - source:\n"
                           "        ipBlocks: [\"203.0.%zu.0/24\", \"2001:db8:%zx::/48\"]\n",
                           i % 256, i % 65536);
        break;
    case 2:
        r = mw_dynbuf_addf(b,
                           "  rules:\n  - from:\n    - source:\n        namespaces: [\"team%zu\", "
                           "\"ops-%zu-*\"]\n    to:\n    - operation:\n"
                           "        paths: [\"/items/{*}/v%zu/{**}\", \"*.json\"]\n"
                           "        methods: [\"GET\", \"POST\", \"PUT\"]\n",
                           i, i, i);
        break;
    case 3:
        r = mw_dynbuf_addf(b,
                           "  action: DENY\n  rules:\n  - to:\n    - operation:\n"
                           "        ports: [\"%zu\"]\n        paths: [\"/admin%zu/*\", "
                           "\"/debug/pprof%zu\"]\n",
                           8000 + i % 1000, i, i);
        break;
    case 4:
        r = mw_dynbuf_addf(b,
                           "  rules:\n  - from:\n    - source:\n        requestPrincipals: "
                           "[\"https://idp%zu.example.com/*\"]\n"
                           "    when:\n    - key: request.auth.claims[groups]\n"
                           "      values: [\"tenant-%zu\", \"admins\"]\n",
                           i, i);
        break;
    case 5:
        r = mw_dynbuf_addf(b,
                           "  rules:\n  - to:\n    - operation:\n        hosts: "
                           "[\"svc%zu.example.com\", \"*.svc%zu.internal\"]\n"
                           "        notPaths: [\"/internal/*\"]\n"
                           "    when:\n    - key: request.headers[x-tenant]\n"
                           "      values: [\"t%zu\"]\n",
                           i, i, i);
        break;
    case 6:
        r = mw_dynbuf_addf(b,
                           "  rules:\n  - from:\n    - source:\n        principals: "
                           "[\"cluster.local/ns/db%zu/sa/*\"]\n    to:\n    - operation:\n"
                           "        ports: [\"%zu\", \"%zu\"]\n",
                           i, 5000 + i % 1000, 6000 + i % 1000);
        break;
    case 7:
        r = mw_dynbuf_addf(b,
                           "  action: DENY\n  rules:\n  - from:\n    - source:\n"
                           "        notNamespaces: [\"*\"]\n    to:\n    - operation:\n"
                           "        ports: [\"%zu\"]\n",
                           9000 + i % 1000);
        break;
    case 8:
        r = mw_dynbuf_addf(b,
                           "  rules:\n  - from:\n    - source:\n        remoteIpBlocks: "
                           "[\"10.%zu.0.0/16\"]\n        notIpBlocks: [\"10.%zu.66.0/24\"]\n"
                           "    when:\n    - key: destination.port\n      values: [\"%zu\"]\n"
                           "    - key: source.ip\n      notValues: [\"10.%zu.99.1\"]\n",
                           i % 256, i % 256, 7000 + i % 1000, i % 256);
        break;
    default:
        r = mw_dynbuf_addf(b,
                           "  rules:\n  - from:\n    - source:\n        principals: "
                           "[\"*/sa/reporter%zu\"]\n    to:\n    - operation:\n"
                           "        methods: [\"GET\"]\n        paths: [\"/reports/%zu\", "
                           "\"/reports/%zu/*\"]\n  - from:\n    - source:\n"
                           "        namespaces: [\"audit\"]\n",
                           i, i, i);
        break;
    }
    return mw_failed(r) ? -1 : 0;
}

static struct mw_policy_set *load_policies(size_t n, double *gen_ms, double *load_ms)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, (size_t)1 << 30);
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        if (gen_policy(&b, i) != 0)
            die("generating YAML");
    }
    uint64_t t1 = now_ns();
    struct mw_policy_set *set;
    if (mw_failed(mw_policy_set_new(&set)))
        die("set");
    if (mw_failed(mw_policy_set_add_yaml(set, mw_dynbuf_slice(&b), "bench.yaml")))
        die("loading generated policies");
    uint64_t t2 = now_ns();
    mw_dynbuf_free(&b);
    if (mw_policy_set_count(set) != n) {
        fprintf(stderr, "bench_policy: loaded %zu policies, want %zu\n", mw_policy_set_count(set),
                n);
        exit(1);
    }
    *gen_ms = (double)(t1 - t0) / 1e6;
    *load_ms = (double)(t2 - t1) / 1e6;
    return set;
}

/* ---------------------------------------------------------------- requests */

static const char *const label_k[] = {"app", "version"};
static const char *const label_v[] = {"web", "v1"};

static struct mw_policy_ip ip(const char *s)
{
    struct mw_policy_ip a;
    if (mw_failed(mw_policy_ip_parse(mw_slice_cstr(s), &a)))
        die("ip");
    return a;
}

enum { R_HTTP_MATCH, R_HTTP_NOMATCH, R_TCP };

struct req {
    const char *name;
    int cls;
    struct mw_policy_request r;
    struct mw_policy_header h[3];
};

#define NREQ 10
static struct req reqs[NREQ];

/* The index of the last policy of shape k among n (k itself when there is none). */
static size_t last_of(size_t n, size_t k)
{
    return n - 1 >= k ? (n - 1) - (n - 1 - k) % 10 : k;
}

/*
 * Requests aimed at a workload of n policies: some ALLOWed by the first policies, some by the
 * last ones (a full scan of DENY and ALLOW lists), some denied because nothing matches (also a
 * full scan), and plain TCP connections. Templated on n so that "last policy" means the last.
 */
static void make_requests(size_t n)
{
    static char p_first[64], p_last[96], path_last[96], tpl_path[96], host_last[64], tenant[32],
        ns_pr[96], db_pr[96];
    size_t last0 = last_of(n, 0), last2 = last_of(n, 2), last5 = last_of(n, 5),
           last6 = last_of(n, 6);
    snprintf(p_first, sizeof(p_first), "cluster.local/ns/team0/sa/frontend");
    snprintf(p_last, sizeof(p_last), "cluster.local/ns/team%zu/sa/batch", last0);
    snprintf(path_last, sizeof(path_last), "/api/v%zu/orders/17?expand=1", last0);
    snprintf(ns_pr, sizeof(ns_pr), "cluster.local/ns/team%zu/sa/default", last2);
    snprintf(tpl_path, sizeof(tpl_path), "/items/42/v%zu/a/b/c", last2);
    snprintf(host_last, sizeof(host_last), "api.svc%zu.internal", last5);
    snprintf(tenant, sizeof(tenant), "t%zu", last5);
    snprintf(db_pr, sizeof(db_pr), "cluster.local/ns/db%zu/sa/writer", last6);
    memset(reqs, 0, sizeof(reqs));
    struct mw_policy_ip src = ip("10.1.2.3"), dst = ip("10.9.0.1");
    for (int i = 0; i < NREQ; i++) {
        reqs[i].r.source_ip = src;
        reqs[i].r.destination_ip = dst;
        reqs[i].r.destination_port = 8080;
    }
    int k = 0;
    /* HTTP, allowed by the first ALLOW policy. */
    reqs[k] = (struct req){.name = "http-allow-first", .cls = R_HTTP_MATCH, .r = reqs[k].r};
    reqs[k].r.http = true;
    reqs[k].r.source_principal = mw_slice_cstr(p_first);
    reqs[k].r.method = mw_slice_cstr("GET");
    reqs[k].r.path = mw_slice_cstr("/api/v0/orders");
    reqs[k].r.host = mw_slice_cstr("shop.example.com");
    k++;
    /* HTTP, allowed by the last shape-0 policy after the whole DENY list. */
    reqs[k] = (struct req){.name = "http-allow-last", .cls = R_HTTP_MATCH, .r = reqs[k].r};
    reqs[k].r.http = true;
    reqs[k].r.source_principal = mw_slice_cstr(p_last);
    reqs[k].r.method = mw_slice_cstr("GET");
    reqs[k].r.path = mw_slice_cstr(path_last);
    reqs[k].r.host = mw_slice_cstr("shop.example.com");
    k++;
    /* HTTP, namespace + path template. */
    reqs[k] = (struct req){.name = "http-template", .cls = R_HTTP_MATCH, .r = reqs[k].r};
    reqs[k].r.http = true;
    reqs[k].r.source_principal = mw_slice_cstr(ns_pr);
    reqs[k].r.method = mw_slice_cstr("PUT");
    reqs[k].r.path = mw_slice_cstr(tpl_path);
    reqs[k].r.host = mw_slice_cstr("shop.example.com");
    k++;
    /* HTTP, host suffix + header condition. */
    reqs[k] = (struct req){.name = "http-host-header", .cls = R_HTTP_MATCH, .r = reqs[k].r};
    reqs[k].r.http = true;
    reqs[k].r.source_principal = mw_slice_cstr("cluster.local/ns/edge/sa/gw");
    reqs[k].r.method = mw_slice_cstr("POST");
    reqs[k].r.path = mw_slice_cstr("/checkout");
    reqs[k].r.host = mw_slice_cstr(host_last);
    reqs[k].h[0] = (struct mw_policy_header){mw_slice_cstr("user-agent"), mw_slice_cstr("curl")};
    reqs[k].h[1] = (struct mw_policy_header){mw_slice_cstr("X-Tenant"), mw_slice_cstr(tenant)};
    reqs[k].r.headers = reqs[k].h;
    reqs[k].r.n_headers = 2;
    k++;
    /* HTTP, nothing matches: denied after every policy was tried. */
    reqs[k] = (struct req){.name = "http-nomatch", .cls = R_HTTP_NOMATCH, .r = reqs[k].r};
    reqs[k].r.http = true;
    reqs[k].r.source_principal = mw_slice_cstr("cluster.local/ns/stranger/sa/default");
    reqs[k].r.method = mw_slice_cstr("DELETE");
    reqs[k].r.path = mw_slice_cstr("/api/v1/../../etc/passwd");
    reqs[k].r.host = mw_slice_cstr("shop.example.com");
    k++;
    /* HTTP, plaintext and no principal, odd path: denied. */
    reqs[k] = (struct req){.name = "http-nomatch-plain", .cls = R_HTTP_NOMATCH, .r = reqs[k].r};
    reqs[k].r.http = true;
    reqs[k].r.method = mw_slice_cstr("GET");
    reqs[k].r.path = mw_slice_cstr("//static/%2e%2e/admin;x=1");
    reqs[k].r.host = mw_slice_cstr("Shop.Example.com:8080");
    k++;
    /* HTTP from an attacker range: some DENY policy (shape 1) matches when n > 1. */
    reqs[k] = (struct req){.name = "http-deny-ip", .cls = R_HTTP_NOMATCH, .r = reqs[k].r};
    reqs[k].r.http = true;
    reqs[k].r.source_principal = mw_slice_cstr(p_first);
    reqs[k].r.source_ip = ip("203.0.1.77");
    reqs[k].r.method = mw_slice_cstr("GET");
    reqs[k].r.path = mw_slice_cstr("/api/v0/x");
    k++;
    /* TCP to a database port allowed by shape 6. */
    reqs[k] = (struct req){.name = "tcp-allow", .cls = R_TCP, .r = reqs[k].r};
    reqs[k].r.source_principal = mw_slice_cstr(db_pr);
    reqs[k].r.destination_port = (uint16_t)(5000 + last6 % 1000);
    k++;
    /* TCP with no matching ALLOW (HTTP-only rules never match TCP). */
    reqs[k] = (struct req){.name = "tcp-nomatch", .cls = R_TCP, .r = reqs[k].r};
    reqs[k].r.source_principal = mw_slice_cstr(p_first);
    reqs[k].r.destination_port = 3306;
    k++;
    /* TCP plaintext from outside. */
    reqs[k] = (struct req){.name = "tcp-plain", .cls = R_TCP, .r = reqs[k].r};
    reqs[k].r.source_ip = ip("2001:db8:ffff::5");
    reqs[k].r.destination_port = 6379;
    k++;
}

/* ---------------------------------------------------------------- measurement */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct stats {
    double median, p99, mean, min;
    size_t samples;
    uint64_t decisions;
};

static volatile unsigned sink;
static struct mw_dynbuf machine;

/*
 * Evaluate the requests of the chosen class (or all, cls < 0) round-robin, in batches of
 * `batch` decisions, for about budget_ns.
 */
static struct stats measure(const struct mw_policy_engine *e, int cls, uint64_t budget_ns)
{
    const struct mw_policy_request *pick[NREQ];
    size_t np = 0;
    for (int i = 0; i < NREQ; i++) {
        if (cls < 0 || reqs[i].cls == cls)
            pick[np++] = &reqs[i].r;
    }
    /* Warm up, and size the batch to about 100 µs of work. */
    struct mw_policy_decision d;
    uint64_t t0 = now_ns();
    size_t warm = 0;
    while (now_ns() - t0 < 20000000ull || warm < 64) {
        mw_policy_evaluate(e, pick[warm % np], &d);
        sink += d.verdict;
        warm++;
    }
    double per = (double)(now_ns() - t0) / (double)warm;
    size_t batch = (size_t)(100000.0 / per);
    if (batch < np)
        batch = np;
    batch = (batch + np - 1) / np * np; /* whole rounds, so every request weighs the same */
    static double samples[MAX_SAMPLES];
    size_t ns = 0;
    uint64_t start = now_ns(), decisions = 0;
    while (ns < MAX_SAMPLES && (now_ns() - start < budget_ns || ns < 30)) {
        uint64_t b0 = now_ns();
        for (size_t i = 0; i < batch; i++) {
            mw_policy_evaluate(e, pick[i % np], &d);
            sink += d.verdict;
        }
        uint64_t b1 = now_ns();
        samples[ns++] = (double)(b1 - b0) / (double)batch;
        decisions += batch;
    }
    qsort(samples, ns, sizeof(samples[0]), cmp_double);
    struct stats s = {0};
    double sum = 0;
    for (size_t i = 0; i < ns; i++)
        sum += samples[i];
    s.samples = ns;
    s.decisions = decisions;
    s.min = samples[0];
    s.mean = sum / (double)ns;
    s.median = ns % 2 ? samples[ns / 2] : (samples[ns / 2 - 1] + samples[ns / 2]) / 2;
    size_t i99 = (size_t)((double)(ns - 1) * 0.99 + 0.5);
    s.p99 = samples[i99];
    return s;
}

static long rss_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            char *end;
            v = strtol(line + n + 1, &end, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* Check the requests decide as designed, so the figures measure the intended paths. */
static void sanity(const struct mw_policy_engine *e, size_t n)
{
    for (int i = 0; i < NREQ; i++) {
        struct mw_policy_decision d;
        mw_policy_evaluate(e, &reqs[i].r, &d);
        bool want = reqs[i].cls == R_HTTP_MATCH ||
                    (reqs[i].cls == R_TCP && strcmp(reqs[i].name, "tcp-allow") == 0);
        /* Below ten policies not every shape exists: check only the requests that cannot
         * depend on that. */
        if (n < 10 && strcmp(reqs[i].name, "http-allow-first") != 0 &&
            strncmp(reqs[i].name, "http-nomatch", 12) != 0)
            continue;
        if ((d.verdict == MW_POLICY_ALLOW) != want) {
            fprintf(stderr, "bench_policy: %zu policies: request %s decided %s (%s), want %s\n", n,
                    reqs[i].name, d.verdict == MW_POLICY_ALLOW ? "ALLOW" : "DENY", d.reason,
                    want ? "ALLOW" : "DENY");
            exit(1);
        }
    }
}

int main(int argc, char **argv)
{
    double budget_s = argc > 1 ? strtod(argv[1], NULL) : 1.5;
    if (!(budget_s > 0 && budget_s <= 30))
        budget_s = 1.5;
    uint64_t budget = (uint64_t)(budget_s * 1e9);
    mw_dynbuf_init(&machine, 1 << 20);
    static const size_t sizes[] = {1, 10, 100, 1000};
    static const struct {
        const char *name;
        int cls;
    } classes[] = {{"mixed", -1},
                   {"http-match", R_HTTP_MATCH},
                   {"http-nomatch", R_HTTP_NOMATCH},
                   {"tcp", R_TCP}};
    struct mw_policy_mesh mesh = {.root_namespace = "istio-system"};

    printf("meshward policy evaluation benchmark\n");
    printf(
        "peer: none measured. Nothing packaged in Debian 12 evaluates Istio AuthorizationPolicy\n"
        "      (Envoy/istio-proxy is not in Debian; OPA is not packaged), so no same-run ratio\n"
        "      is reported. Published anchors for context only: OPA-Envoy ext_authz eval\n"
        "      median 0.18-0.31 ms (reference/anchors-performance.md).\n");
    printf("timing: CLOCK_MONOTONIC per batch of ~100 us; median/p99 over batches; per row up to "
           "%d batches or %.1f s;\n        decisions/s = 1e9 / median\n\n",
           MAX_SAMPLES, budget_s);
    printf("%-9s %-8s %-13s %10s %10s %10s %14s %8s\n", "policies", "applying", "requests",
           "median_ns", "p99_ns", "mean_ns", "decisions/s", "batches");
    for (size_t si = 0; si < MW_ARRAY_LEN(sizes); si++) {
        size_t n = sizes[si];
        double gen_ms, load_ms;
        struct mw_policy_set *set = load_policies(n, &gen_ms, &load_ms);
        struct mw_policy_engine *e;
        if (mw_failed(mw_policy_engine_compile(set, &mesh, "shop", label_k, label_v, 2, &e)))
            die("compile");
        size_t applying = mw_policy_engine_count(e, "ALLOW") + mw_policy_engine_count(e, "DENY");
        make_requests(n);
        sanity(e, n);
        for (size_t c = 0; c < MW_ARRAY_LEN(classes); c++) {
            struct stats s = measure(e, classes[c].cls, budget);
            double dps = 1e9 / s.median;
            printf("%-9zu %-8zu %-13s %10.0f %10.0f %10.0f %14.0f %8zu\n", n, applying,
                   classes[c].name, s.median, s.p99, s.mean, dps, s.samples);
            mw_result mr = mw_dynbuf_addf(
                &machine,
                "BENCH policy_eval policies=%zu applying=%zu requests=%s median_ns=%.1f "
                "p99_ns=%.1f mean_ns=%.1f min_ns=%.1f decisions_per_s=%.0f batches=%zu "
                "decisions=%llu\n",
                n, applying, classes[c].name, s.median, s.p99, s.mean, s.min, dps, s.samples,
                (unsigned long long)s.decisions);
            if (mw_failed(mr))
                die("output");
        }
        mw_policy_engine_free(e);
        mw_policy_set_free(set);
    }

    /* 10,000 policies: generate, load (parse + validate + model), compile for the workload. */
    printf("\n");
    long rss_before = rss_kb("VmRSS");
    double gen_ms, load_ms;
    struct mw_policy_set *set = load_policies(10000, &gen_ms, &load_ms);
    uint64_t c0 = now_ns();
    struct mw_policy_engine *e;
    if (mw_failed(mw_policy_engine_compile(set, &mesh, "shop", label_k, label_v, 2, &e)))
        die("compile");
    double compile_ms = (double)(now_ns() - c0) / 1e6;
    long rss_after = rss_kb("VmRSS");
    long hwm = rss_kb("VmHWM");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    make_requests(10000);
    struct stats s = measure(e, -1, budget);
    printf("10000 policies: YAML generated in %.1f ms; loaded (parse+validate) in %.1f ms "
           "(%.1f us/policy); engine compiled in %.3f ms\n",
           gen_ms, load_ms, load_ms * 1000.0 / 10000, compile_ms);
    printf("10000 policies: mixed requests median %.0f ns, p99 %.0f ns per decision\n", s.median,
           s.p99);
    printf("RSS: %ld kB before loading 10000, %ld kB after compiling; peak (VmHWM) %ld kB; "
           "getrusage maxrss %ld kB\n",
           rss_before, rss_after, hwm, ru.ru_maxrss);
    mw_result mr = mw_dynbuf_addf(
        &machine,
        "BENCH policy_compile policies=10000 gen_ms=%.1f load_ms=%.1f compile_ms=%.3f "
        "rss_before_kb=%ld rss_after_kb=%ld vmhwm_kb=%ld maxrss_kb=%ld "
        "mixed_median_ns=%.1f mixed_p99_ns=%.1f\n",
        gen_ms, load_ms, compile_ms, rss_before, rss_after, hwm, ru.ru_maxrss, s.median, s.p99);
    if (mw_failed(mr))
        die("output");
    mw_policy_engine_free(e);
    mw_policy_set_free(set);
    printf("\n# machine-readable, one line per row\n%s", mw_dynbuf_cstr(&machine));
    mw_dynbuf_free(&machine);
    return sink == 0xdeadbeef;
}
