/* `meshward policy check|mtls|lint|who-can`: Istio authorization and mTLS policy, offline. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <meshward/conf.h>
#include <meshward/policy.h>

#include "cli/cli.h"

#define MAX_FILES  64
#define MAX_LABELS 64

struct opts {
    const char *files[MAX_FILES];
    size_t nfiles;
    const char *ns;
    const char *lk[MAX_LABELS];
    const char *lv[MAX_LABELS];
    char *lbuf[MAX_LABELS];
    size_t nlabels;
    const char *request;
    const char *port;
    bool json;
    struct mw_policy_mesh mesh;
};

static const char *const usage_text[] = {
    /* check */
    "usage: meshward policy check -f FILE... --workload-namespace NS [--label K=V]...\n"
    "                             --request FILE|- [--json] [--root-namespace NS]\n"
    "                             [--trust-domain TD] [--path-normalization MODE]\n\n"
    "Evaluates one request (a JSON object: protocol, source_principal, source_ip,\n"
    "destination_port, method, path, host, headers, request_principal, jwt_claims, sni)\n"
    "against the AuthorizationPolicies that apply to the workload. Prints ALLOW or DENY\n"
    "and the policy and rule that decided. Exit 0 for either verdict; 1 invalid input,\n"
    "2 usage, 3 unreadable file.\n",
    /* mtls */
    "usage: meshward policy mtls -f FILE... --workload-namespace NS [--label K=V]...\n"
    "                            --port P [--json] [--root-namespace NS]\n\n"
    "Prints the effective PeerAuthentication mode for the workload port and which\n"
    "policy decided it.\n",
    /* lint */
    "usage: meshward policy lint -f FILE...\n\n"
    "Validates every document as Istio does; prints findings as file:line: message.\n"
    "Exit 0 when all documents are valid, 1 otherwise.\n",
    /* who-can */
    "usage: meshward policy who-can -f FILE... --workload-namespace NS [--label K=V]...\n"
    "                               [--root-namespace NS]\n\n"
    "Lists, per applying policy rule, which principals and namespaces it admits or\n"
    "blocks on which ports and paths. An over-approximation: conditions are shown,\n"
    "not solved.\n",
};

static void free_opts(struct opts *o)
{
    for (size_t i = 0; i < o->nlabels; i++)
        free(o->lbuf[i]);
}

static int parse(int argc, char **argv, struct opts *o, int which)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (mw_cli_is_help(a)) {
            fputs(usage_text[which], stdout);
            return -1;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (val == NULL) {
            fprintf(stderr, "meshward: policy: %s needs a value\n%s", a, usage_text[which]);
            return MW_EXIT_USAGE;
        }
        i++;
        if (strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0) {
            if (o->nfiles == MAX_FILES) {
                fprintf(stderr, "meshward: policy: at most %d files\n", MAX_FILES);
                return MW_EXIT_USAGE;
            }
            o->files[o->nfiles++] = val;
        } else if (strcmp(a, "--workload-namespace") == 0) {
            o->ns = val;
        } else if (strcmp(a, "--label") == 0) {
            const char *eq = strchr(val, '=');
            if (eq == NULL || eq == val || o->nlabels == MAX_LABELS) {
                fprintf(stderr, "meshward: policy: --label wants K=V\n");
                return MW_EXIT_USAGE;
            }
            char *copy = strdup(val);
            if (copy == NULL)
                return MW_EXIT_REJECT;
            copy[eq - val] = '\0';
            o->lbuf[o->nlabels] = copy;
            o->lk[o->nlabels] = copy;
            o->lv[o->nlabels] = copy + (eq - val) + 1;
            o->nlabels++;
        } else if (strcmp(a, "--request") == 0) {
            o->request = val;
        } else if (strcmp(a, "--port") == 0) {
            o->port = val;
        } else if (strcmp(a, "--root-namespace") == 0) {
            o->mesh.root_namespace = val;
        } else if (strcmp(a, "--trust-domain") == 0) {
            o->mesh.trust_domain = val;
        } else if (strcmp(a, "--path-normalization") == 0) {
            if (mw_failed(mw_policy_path_norm_parse(val, &o->mesh.path_norm))) {
                fprintf(stderr, "meshward: policy: %s\n", mw_error_msg());
                return MW_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "meshward: policy: unknown option %s\n%s", a, usage_text[which]);
            return MW_EXIT_USAGE;
        }
    }
    if (o->nfiles == 0) {
        fprintf(stderr, "meshward: policy: at least one -f FILE is required\n");
        return MW_EXIT_USAGE;
    }
    if (which != 2 && o->ns == NULL) {
        fprintf(stderr, "meshward: policy: --workload-namespace is required\n");
        return MW_EXIT_USAGE;
    }
    return 0;
}

static int load_set(const struct opts *o, struct mw_policy_set **set)
{
    if (mw_failed(mw_policy_set_new(set)))
        return mw_cli_report_error("policy");
    for (size_t i = 0; i < o->nfiles; i++) {
        if (mw_failed(mw_policy_set_add_file(*set, o->files[i]))) {
            int rc = mw_cli_report_error("policy");
            mw_policy_set_free(*set);
            *set = NULL;
            return rc;
        }
    }
    return 0;
}

static void print_json_str(const char *s)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1 << 16);
    if (s == NULL || mw_failed(mw_dynbuf_add_json_str(&b, mw_slice_cstr(s))))
        fputs("null", stdout);
    else
        fputs(mw_dynbuf_cstr(&b), stdout);
    mw_dynbuf_free(&b);
}

static int cmd_check(const struct opts *o)
{
    if (o->request == NULL) {
        fprintf(stderr, "meshward: policy check: --request FILE|- is required\n");
        return MW_EXIT_USAGE;
    }
    struct mw_dynbuf text;
    mw_dynbuf_init(&text, 1 << 20);
    mw_result r = strcmp(o->request, "-") == 0
                      ? mw_file_read_stream(stdin, "<stdin>", 1 << 20, &text)
                      : mw_file_read(o->request, 1 << 20, &text);
    if (mw_failed(r)) {
        mw_dynbuf_free(&text);
        return mw_cli_report_error("policy check");
    }
    json_t *obj = NULL;
    r = mw_json_load(mw_dynbuf_slice(&text), o->request, &mw_conf_default_limits, &obj);
    mw_dynbuf_free(&text);
    if (mw_failed(r))
        return mw_cli_report_error("policy check");
    struct mw_policy_request req;
    struct mw_policy_header *hdrs = NULL;
    if (mw_failed(mw_policy_request_from_json(obj, &req, &hdrs))) {
        json_decref(obj);
        return mw_cli_report_error("policy check");
    }
    struct mw_policy_set *set;
    int rc = load_set(o, &set);
    struct mw_policy_engine *e = NULL;
    if (rc == 0 &&
        mw_failed(mw_policy_engine_compile(set, &o->mesh, o->ns, o->lk, o->lv, o->nlabels, &e)))
        rc = mw_cli_report_error("policy check");
    if (rc == 0) {
        struct mw_policy_decision d;
        mw_policy_evaluate(e, &req, &d);
        const char *v = d.verdict == MW_POLICY_ALLOW ? "ALLOW" : "DENY";
        if (o->json) {
            printf("{\"decision\":\"%s\",\"audit\":%s,\"policy\":", v, d.audit ? "true" : "false");
            print_json_str(d.policy);
            printf(",\"rule\":");
            if (d.policy)
                printf("%zu", d.rule);
            else
                printf("null");
            printf(",\"file\":");
            print_json_str(d.file);
            printf(",\"line\":%zu,\"reason\":", d.line);
            print_json_str(d.reason);
            printf("}\n");
        } else {
            printf("%s\n", v);
            if (d.policy)
                printf("  %s: %s rules[%zu] (%s:%zu)\n", d.reason, d.policy, d.rule, d.file,
                       d.line);
            else
                printf("  %s\n", d.reason);
            if (d.audit)
                printf("  audited by %s\n", d.audit_policy);
        }
    }
    mw_policy_engine_free(e);
    mw_policy_set_free(set);
    free(hdrs);
    json_decref(obj);
    return rc;
}

static int cmd_mtls(const struct opts *o)
{
    uint64_t port;
    if (o->port == NULL ||
        mw_failed(mw_parse_u64(mw_slice_cstr(o->port), 1, 65535, "--port", &port))) {
        fprintf(stderr, "meshward: policy mtls: --port 1..65535 is required\n");
        return MW_EXIT_USAGE;
    }
    struct mw_policy_set *set;
    int rc = load_set(o, &set);
    if (rc != 0)
        return rc;
    struct mw_policy_mtls_result m;
    mw_policy_mtls_mode(set, &o->mesh, o->ns, o->lk, o->lv, o->nlabels, (uint16_t)port, &m);
    if (o->json) {
        printf("{\"mode\":\"%s\",\"scope\":\"%s\",\"policy\":", mw_policy_mtls_name(m.mode),
               m.scope);
        print_json_str(m.policy);
        printf("}\n");
    } else {
        printf("%s\n  decided by %s (%s)\n", mw_policy_mtls_name(m.mode),
               m.policy ? m.policy : "no PeerAuthentication: the default", m.scope);
    }
    mw_policy_set_free(set);
    return MW_EXIT_OK;
}

static int cmd_lint(const struct opts *o)
{
    size_t bad = 0, good = 0;
    for (size_t i = 0; i < o->nfiles; i++) {
        struct mw_docs *docs;
        if (mw_failed(mw_yaml_load_file(o->files[i], &mw_conf_default_limits, &docs))) {
            fprintf(stdout, "%s\n", mw_error_msg());
            if (mw_error_code() == MW_E_IO || mw_error_code() == MW_E_NOTFOUND)
                return MW_EXIT_IO;
            bad++;
            continue;
        }
        for (size_t d = 0; d < mw_docs_count(docs); d++) {
            struct mw_policy_set *set;
            if (mw_failed(mw_policy_set_new(&set))) {
                mw_docs_free(docs);
                return mw_cli_report_error("policy lint");
            }
            if (mw_failed(mw_policy_set_add_doc(set, mw_docs_root(docs, d)))) {
                printf("%s\n", mw_error_msg());
                bad++;
            } else {
                good += mw_policy_set_count(set);
            }
            for (size_t w = 0; w < mw_policy_set_warning_count(set); w++)
                printf("%s (warning)\n", mw_policy_set_warning(set, w));
            mw_policy_set_free(set);
        }
        mw_docs_free(docs);
    }
    printf("%zu valid, %zu invalid\n", good, bad);
    return bad ? MW_EXIT_REJECT : MW_EXIT_OK;
}

static void who_print(void *ctx, const char *action, const char *policy, size_t rule,
                      const char *summary)
{
    (void)ctx;
    if (policy)
        printf("%-6s %s rules[%zu]: %s\n", action, policy, rule, summary);
    else
        printf("%-6s %s\n", action, summary);
}

static int cmd_who_can(const struct opts *o)
{
    struct mw_policy_set *set;
    int rc = load_set(o, &set);
    if (rc != 0)
        return rc;
    struct mw_policy_engine *e;
    if (mw_failed(mw_policy_engine_compile(set, &o->mesh, o->ns, o->lk, o->lv, o->nlabels, &e))) {
        mw_policy_set_free(set);
        return mw_cli_report_error("policy who-can");
    }
    if (mw_failed(mw_policy_who_can(e, who_print, NULL)))
        rc = mw_cli_report_error("policy who-can");
    mw_policy_engine_free(e);
    mw_policy_set_free(set);
    return rc;
}

int mw_cmd_policy(int argc, char **argv)
{
    static const char *const subs[] = {"check", "mtls", "lint", "who-can"};
    if (argc < 2 || mw_cli_is_help(argv[1])) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: meshward policy <check|mtls|lint|who-can> [options]\n\n"
                   "  check    evaluate a request against AuthorizationPolicies\n"
                   "  mtls     effective PeerAuthentication mode for a workload port\n"
                   "  lint     validate policies as Istio does\n"
                   "  who-can  who can reach a workload, for policy reviews\n");
        return argc < 2 ? MW_EXIT_USAGE : MW_EXIT_OK;
    }
    for (int which = 0; which < 4; which++) {
        if (strcmp(argv[1], subs[which]) != 0)
            continue;
        struct opts o;
        int rc = parse(argc - 1, argv + 1, &o, which);
        if (rc != 0) {
            free_opts(&o);
            return rc < 0 ? MW_EXIT_OK : rc;
        }
        rc = which == 0   ? cmd_check(&o)
             : which == 1 ? cmd_mtls(&o)
             : which == 2 ? cmd_lint(&o)
                          : cmd_who_can(&o);
        free_opts(&o);
        return rc;
    }
    fprintf(stderr, "meshward: policy: unknown subcommand '%s'\n", argv[1]);
    return MW_EXIT_USAGE;
}
