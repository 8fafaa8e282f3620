#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"svid", mw_cmd_svid, "inspect and validate X.509-SVIDs"},
    {"bundle", mw_cmd_bundle, "inspect SPIFFE trust bundles (JWKS or PEM)"},
    {"policy", mw_cmd_policy, "check requests against Istio authorization policies"},
    {"control", mw_cmd_control,
     "the control plane: the CA service plus configuration for sidecars (long-poll)"},
    {"ca", mw_cmd_ca, "the mesh CA: keys, init, tokens, artifacts, issuance, audit"},
    {"verify", mw_cmd_verify,
     "verify Sigstore bundles and SLSA provenance against an image policy"},
    {"verify-bundle", mw_cmd_verify_bundle,
     "verify one Sigstore bundle (sigstore-conformance CLI)"},
    {"sidecar", mw_cmd_sidecar, "run the sidecar: mTLS, authorization, egress control, telemetry"},
    {"log", mw_cmd_log, "verify and prove entries of a tamper-evident Merkle log"},
    {"version", mw_cmd_version, "print the version"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: meshward <command> [options]\n\n"
               "meshward: provenance-aware zero-trust for service meshes.\n\ncommands:\n");
    for (size_t i = 0; i < MW_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'meshward <command> --help' for a command's options.\n");
}

bool mw_cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0 || strcmp(arg, "help") == 0;
}

int mw_cli_report_error(const char *context)
{
    enum mw_err code = mw_error_code();
    if (context != NULL)
        fprintf(stderr, "meshward: %s: %s\n", context, mw_error_msg());
    else
        fprintf(stderr, "meshward: %s\n", mw_error_msg());
    switch (code) {
    case MW_E_IO:
    case MW_E_NOTFOUND:
    case MW_E_PERM:
        return MW_EXIT_IO;
    default:
        return MW_EXIT_REJECT;
    }
}

int mw_cmd_version(int argc, char **argv)
{
    if (argc > 1 && mw_cli_is_help(argv[1])) {
        printf(
            "usage: meshward version\n\nPrints meshward's version and the OpenSSL it runs with.\n");
        return MW_EXIT_OK;
    }
    if (argc > 1) {
        fprintf(stderr, "meshward: version takes no arguments\n");
        return MW_EXIT_USAGE;
    }
    printf("meshward %s\n", MW_VERSION);
    return MW_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return MW_EXIT_USAGE;
    }
    if (mw_cli_is_help(argv[1])) {
        usage(stdout);
        return MW_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return mw_cmd_version(1, argv + 1);
    /* The sidecar is one event loop plus, in CA mode, a short-lived thread per CA exchange.
     * glibc gives that thread an arena of its own, which outlives it: about 180 KiB resident
     * for the life of the process, for a thread that runs seconds a day. */
    if (strcmp(argv[1], "sidecar") == 0)
        (void)mallopt(M_ARENA_MAX, 1);
    for (size_t i = 0; i < MW_ARRAY_LEN(commands); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "meshward: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return MW_EXIT_USAGE;
}
