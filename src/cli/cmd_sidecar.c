/* `meshward sidecar run|check-config|iptables`: the per-workload proxy. */
#include <stdio.h>
#include <string.h>

#include <meshward/sidecar.h>

#include "cli/cli.h"

static void sidecar_usage(FILE *f)
{
    fprintf(f, "usage: meshward sidecar run --config FILE [--log-level LEVEL] [--log-json]\n"
               "       meshward sidecar check-config FILE\n"
               "       meshward sidecar iptables ...   (see meshward sidecar iptables --help)\n"
               "\n"
               "run           serve inbound (mTLS termination, PeerAuthentication per port,\n"
               "              Istio authorization per connection or request) and outbound (mTLS\n"
               "              origination with the server's SPIFFE ID checked, egress refused\n"
               "              unless declared), with /metrics, /healthz and /readyz on the admin\n"
               "              port. SIGHUP reloads configuration, policies, SVID and bundles\n"
               "              without dropping connections; SIGTERM stops gracefully.\n"
               "check-config  validate a SidecarConfig (meshward.io/v1alpha1) and everything it\n"
               "              names: policy files, egress files, the SVID against its bundle.\n"
               "\n"
               "The configuration format is in docs/sidecar.md.\n"
               "Exit: 0 ok, 1 invalid input or refused, 2 usage, 3 unreadable file.\n");
}

static int cmd_check(int argc, char **argv)
{
    if (argc != 2 || mw_cli_is_help(argv[1])) {
        sidecar_usage(argc == 2 ? stdout : stderr);
        return argc == 2 ? MW_EXIT_OK : MW_EXIT_USAGE;
    }
    struct mw_sidecar_config *cfg;
    if (mw_failed(mw_sidecar_config_load(argv[1], &cfg)))
        return mw_cli_report_error(NULL);
    struct mw_dynbuf out;
    mw_dynbuf_init(&out, 1 << 20);
    int rc = MW_EXIT_OK;
    if (mw_failed(mw_sidecar_config_check(cfg, &out)))
        rc = mw_cli_report_error(NULL);
    else
        fputs(mw_dynbuf_cstr(&out), stdout);
    mw_dynbuf_free(&out);
    mw_sidecar_config_free(cfg);
    return rc;
}

static int cmd_run(int argc, char **argv)
{
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (mw_cli_is_help(a)) {
            sidecar_usage(stdout);
            return MW_EXIT_OK;
        } else if (strcmp(a, "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(a, "--log-level") == 0 && i + 1 < argc) {
            enum mw_log_level level;
            if (mw_failed(mw_log_parse_level(argv[++i], &level))) {
                (void)mw_cli_report_error(NULL);
                return MW_EXIT_USAGE;
            }
            mw_log_set_level(level);
        } else if (strcmp(a, "--log-json") == 0) {
            mw_log_set_json(true);
        } else {
            fprintf(stderr, "meshward: sidecar run: unexpected argument \"%s\"\n", a);
            sidecar_usage(stderr);
            return MW_EXIT_USAGE;
        }
    }
    if (config == NULL) {
        fprintf(stderr, "meshward: sidecar run: --config FILE is required\n");
        return MW_EXIT_USAGE;
    }
    if (mw_failed(mw_secmem_harden_process()))
        mw_log_warn("sidecar", "%s", mw_error_msg());
    if (mw_failed(mw_sidecar_run(config)))
        return mw_cli_report_error("sidecar");
    return MW_EXIT_OK;
}

int mw_cmd_sidecar(int argc, char **argv)
{
    if (argc < 2 || mw_cli_is_help(argv[1])) {
        sidecar_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? MW_EXIT_USAGE : MW_EXIT_OK;
    }
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "check-config") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(argv[1], "iptables") == 0)
        return mw_cmd_sidecar_iptables(argc - 1, argv + 1);
    fprintf(stderr, "meshward: sidecar: unknown subcommand \"%s\"\n", argv[1]);
    sidecar_usage(stderr);
    return MW_EXIT_USAGE;
}
