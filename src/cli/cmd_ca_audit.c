/* meshward ca audit DIR: the issuance monitor's rules over an exported issuance log. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <meshward/ca_auth.h>
#include <meshward/tlog.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: meshward ca audit DIR --pub LOGKEY --policy FILE [--registrations FILE | --db "
            "FILE]\n\n"
            "Verify the issuance log in DIR (checkpoint signed by LOGKEY, tiles, root), then run\n"
            "the rules of an IssuanceMonitorPolicy over every record: identity not registered,\n"
            "issuance outside change windows, SANs other than the one SPIFFE URI, TTL over\n"
            "policy, burst rate per identity, issuance by a retired CA key.\n\n"
            "Findings are printed as JSON lines {id, severity, resource, message, evidence}.\n"
            "Registrations come from a WorkloadRegistration YAML file or from the CA store.\n"
            "Exit 0 when the audit ran (with or without findings), 1 when the log does not\n"
            "verify or an input is invalid, 2 for usage errors, 3 when a file cannot be read.\n");
}

int mw_cmd_ca_audit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"pub", required_argument, NULL, 'p'},
        {"policy", required_argument, NULL, 'P'},
        {"registrations", required_argument, NULL, 'r'},
        {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *pub = NULL, *policy = NULL, *regs_path = NULL, *db = NULL;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "p:P:r:d:h", opts, NULL)) != -1) {
        if (c == 'p')
            pub = optarg;
        else if (c == 'P')
            policy = optarg;
        else if (c == 'r')
            regs_path = optarg;
        else if (c == 'd')
            db = optarg;
        else if (c == 'h') {
            usage(stdout);
            return MW_EXIT_OK;
        } else
            return MW_EXIT_USAGE;
    }
    if (pub == NULL || policy == NULL || argc - optind != 1 || (regs_path != NULL && db != NULL)) {
        fprintf(stderr, "meshward: ca audit needs DIR, --pub LOGKEY and --policy FILE "
                        "(and at most one of --registrations, --db)\n");
        return MW_EXIT_USAGE;
    }
    const char *dir = argv[optind];
    struct mw_note_verifier *v = NULL;
    struct mw_ca_monitor_policy *p = NULL;
    struct mw_ca_registrations *regs = NULL;
    int rc = mw_cli_load_verifier(pub, &v);
    if (rc == MW_EXIT_OK && mw_failed(mw_ca_monitor_policy_load_file(policy, &p)))
        rc = mw_cli_report_error(NULL);
    if (rc == MW_EXIT_OK && regs_path != NULL &&
        mw_failed(mw_ca_registrations_load_file(regs_path, &regs)))
        rc = mw_cli_report_error(NULL);
    if (rc == MW_EXIT_OK && db != NULL) {
        struct mw_ca_store *s = NULL;
        if (mw_failed(mw_ca_store_open(db, &s)) ||
            mw_failed(mw_ca_store_get_registrations(s, &regs)))
            rc = mw_cli_report_error(NULL);
        mw_ca_store_close(s);
    }
    struct mw_dynbuf out;
    mw_dynbuf_init(&out, (size_t)1 << 30);
    size_t n = 0;
    if (rc == MW_EXIT_OK && mw_failed(mw_ca_audit_dir(dir, v, p, regs, &out, &n)))
        rc = mw_cli_report_error("ca audit");
    if (rc == MW_EXIT_OK) {
        if (out.n > 0)
            fwrite(out.p, 1, out.n, stdout);
        fflush(stdout);
        fprintf(stderr, "meshward: ca audit: %zu finding%s\n", n, n == 1 ? "" : "s");
    }
    mw_dynbuf_free(&out);
    mw_ca_registrations_free(regs);
    mw_ca_monitor_policy_free(p);
    mw_note_verifier_free(v);
    return rc;
}
