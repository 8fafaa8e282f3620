/* meshward sidecar iptables: install or remove the interception rules in a network namespace. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sidecar/sidecar_iptables.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: meshward sidecar iptables --inbound-port PORT --outbound-port PORT\n"
        "                                 --proxy-uid UID [options]\n\n"
        "Install Istio-style nat REDIRECT rules (chains MESHWARD_INBOUND, MESHWARD_IN_REDIRECT,\n"
        "MESHWARD_OUTPUT, MESHWARD_REDIRECT): inbound TCP to the inbound port, outbound TCP to\n"
        "the outbound port, except traffic of the proxy uid, loopback and the exclusions.\n"
        "Running it again gives the same rules. IPv4 only.\n\n"
        "options:\n"
        "  --inbound-port PORT              sidecar's inbound listener (e.g. 15006)\n"
        "  --outbound-port PORT             sidecar's outbound listener (e.g. 15001)\n"
        "  --proxy-uid UID                  numeric uid the sidecar runs as (not redirected)\n"
        "  --exclude-inbound-ports P,P      inbound ports not redirected\n"
        "  --exclude-outbound-ports P,P     outbound destination ports not redirected\n"
        "  --exclude-outbound-cidrs C,C     outbound IPv4 destinations not redirected\n"
        "  --netns NAME                     apply in network namespace NAME (ip netns)\n"
        "  --dry-run                        print the iptables-restore input and change nothing\n"
        "                                   (for a table without our rules; with --cleanup, for\n"
        "                                   a table with them)\n"
        "  --cleanup                        remove the chains and jumps this command adds\n");
}

enum {
    OPT_IN = 1,
    OPT_OUT,
    OPT_UID,
    OPT_EX_IN,
    OPT_EX_OUT,
    OPT_EX_CIDR,
    OPT_NETNS,
    OPT_DRY,
    OPT_CLEANUP,
    OPT_HELP
};

struct args {
    struct mw_iptables_opts o;
    const char *netns;
    bool dry_run, cleanup, have_uid;
};

static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        {"inbound-port", required_argument, NULL, OPT_IN},
        {"outbound-port", required_argument, NULL, OPT_OUT},
        {"proxy-uid", required_argument, NULL, OPT_UID},
        {"exclude-inbound-ports", required_argument, NULL, OPT_EX_IN},
        {"exclude-outbound-ports", required_argument, NULL, OPT_EX_OUT},
        {"exclude-outbound-cidrs", required_argument, NULL, OPT_EX_CIDR},
        {"netns", required_argument, NULL, OPT_NETNS},
        {"dry-run", no_argument, NULL, OPT_DRY},
        {"cleanup", no_argument, NULL, OPT_CLEANUP},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof(*a));
    optind = 1;
    int c;
    mw_result r = MW_SUCCESS;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_IN:
            r = mw_ipt_parse_port(optarg, "--inbound-port", &a->o.inbound_port);
            break;
        case OPT_OUT:
            r = mw_ipt_parse_port(optarg, "--outbound-port", &a->o.outbound_port);
            break;
        case OPT_UID:
            r = mw_ipt_parse_uid(optarg, &a->o.proxy_uid);
            a->have_uid = true;
            break;
        case OPT_EX_IN:
            r = mw_ipt_parse_ports(optarg, "--exclude-inbound-ports", a->o.exclude_inbound,
                                   MW_IPT_MAX_PORTS, &a->o.n_exclude_inbound);
            break;
        case OPT_EX_OUT:
            r = mw_ipt_parse_ports(optarg, "--exclude-outbound-ports", a->o.exclude_outbound,
                                   MW_IPT_MAX_PORTS, &a->o.n_exclude_outbound);
            break;
        case OPT_EX_CIDR:
            r = mw_ipt_parse_cidrs(optarg, a->o.exclude_cidrs, MW_IPT_MAX_CIDRS,
                                   &a->o.n_exclude_cidrs);
            break;
        case OPT_NETNS:
            a->netns = optarg;
            r = mw_ipt_check_netns(optarg);
            break;
        case OPT_DRY:
            a->dry_run = true;
            break;
        case OPT_CLEANUP:
            a->cleanup = true;
            break;
        case OPT_HELP:
        case 'h':
            usage(stdout);
            return -1;
        default:
            return MW_EXIT_USAGE;
        }
        if (mw_failed(r)) {
            mw_cli_report_error(NULL);
            return MW_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "meshward: sidecar iptables: unexpected argument '%s'\n", argv[optind]);
        return MW_EXIT_USAGE;
    }
    if (!a->cleanup) {
        if (!a->have_uid) {
            fprintf(stderr, "meshward: sidecar iptables needs --proxy-uid UID\n");
            return MW_EXIT_USAGE;
        }
        if (mw_failed(mw_ipt_check(&a->o))) {
            mw_cli_report_error(NULL);
            return MW_EXIT_USAGE;
        }
    }
    return MW_EXIT_OK;
}

/* The rules our own install would leave, for --cleanup --dry-run. */
static mw_result installed_state(struct mw_dynbuf *state)
{
    struct mw_iptables_opts o = {.inbound_port = 15006, .outbound_port = 15001};
    return mw_ipt_install_rules(&o, mw_slice_make(NULL, 0), state);
}

int mw_cmd_sidecar_iptables(int argc, char **argv)
{
    if (argc >= 2 && mw_cli_is_help(argv[1])) {
        usage(stdout);
        return MW_EXIT_OK;
    }
    struct args a;
    int rc = parse_args(argc, argv, &a);
    if (rc < 0)
        return MW_EXIT_OK;
    if (rc != MW_EXIT_OK) {
        if (rc == MW_EXIT_USAGE)
            fprintf(stderr, "meshward: see 'meshward sidecar iptables --help'\n");
        return rc;
    }

    struct mw_dynbuf current, input;
    mw_dynbuf_init(&current, 8u << 20);
    mw_dynbuf_init(&input, 1u << 20);
    mw_result r = MW_SUCCESS;
    if (a.dry_run) {
        if (a.cleanup)
            r = installed_state(&current);
    } else if (geteuid() != 0) {
        mw_error_set(MW_E_PERM, "sidecar iptables must run as root (or use --dry-run)");
        r = MW_FAILURE;
    } else {
        r = mw_ipt_save(a.netns, &current);
    }
    if (mw_ok(r)) {
        r = a.cleanup ? mw_ipt_cleanup_rules(mw_dynbuf_slice(&current), &input)
                      : mw_ipt_install_rules(&a.o, mw_dynbuf_slice(&current), &input);
    }
    if (mw_ok(r)) {
        if (a.dry_run)
            fwrite(input.p, 1, input.n, stdout);
        else if (!a.cleanup || mw_ipt_present(mw_dynbuf_slice(&current)))
            r = mw_ipt_restore(a.netns, mw_dynbuf_slice(&input));
    }
    rc = mw_failed(r) ? mw_cli_report_error("sidecar iptables") : MW_EXIT_OK;
    mw_dynbuf_free(&current);
    mw_dynbuf_free(&input);
    return rc;
}
