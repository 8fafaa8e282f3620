/* Internal: the `meshward` command-line tool. One file per command. */
#ifndef MESHWARD_CLI_H
#define MESHWARD_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include <meshward/base.h>

/*
 * Each command gets argv with argv[0] = its own name ("svid", "bundle", ...)
 * and returns the process exit code:
 *   0  success (for checks: the check ran; the verdict is in the output)
 *   1  the input was rejected (invalid, failed verification)
 *   2  usage error (bad flags, missing argument)
 *   3  the input could not be read (missing file, I/O)
 */
enum { MW_EXIT_OK = 0, MW_EXIT_REJECT = 1, MW_EXIT_USAGE = 2, MW_EXIT_IO = 3 };

int mw_cmd_version(int argc, char **argv);
int mw_cmd_svid(int argc, char **argv);
int mw_cmd_bundle(int argc, char **argv);
int mw_cmd_policy(int argc, char **argv);
int mw_cmd_log(int argc, char **argv);
/* meshward ca ...: keys, init, issue, serve (cmd_ca.c) dispatches to these too: */
int mw_cmd_ca(int argc, char **argv);
int mw_cmd_ca_token(int argc, char **argv);    /* ca token create|list (cmd_ca_token.c) */
int mw_cmd_ca_artifact(int argc, char **argv); /* ca artifact add|list|remove (cmd_ca_artifact.c) */
int mw_cmd_ca_audit(int argc, char **argv);    /* ca audit DIR (cmd_ca_audit.c) */
int mw_cmd_ca_serve(int argc, char **argv);    /* ca serve: the CA over HTTPS (cmd_ca_serve.c) */
int mw_cmd_control(int argc, char **argv);     /* control: ca serve + GET /v1/config (same file) */
int mw_cmd_ca_request(int argc, char **argv);  /* ca request: its client (cmd_ca_serve.c) */
/* meshward verify image|... and the sigstore-conformance verify-bundle (cmd_verify.c) */
int mw_cmd_verify(int argc, char **argv);
int mw_cmd_verify_bundle(int argc, char **argv);
/* meshward sidecar ...: run, and dispatch of `sidecar iptables` (cmd_sidecar.c) */
int mw_cmd_sidecar(int argc, char **argv);
int mw_cmd_sidecar_iptables(int argc, char **argv); /* sidecar iptables (cmd_sidecar_iptables.c) */

/* Print "meshward: " + the thread's error to stderr; returns the exit code for it. */
int mw_cli_report_error(const char *context);
/* True when arg is -h or --help. */
bool mw_cli_is_help(const char *arg);

/* The helpers below (cli_util.c) return an exit code; -1 means "go on". */

/*
 * Long options only, each with val MW_CLI_OPT + i: after mw_cli_parse_opts, values[i] is
 * its argument ("1" for a flag) or NULL, and rest the index of the first operand. cmd
 * ("ca init") prefixes the messages; -h/--help prints usage to stdout.
 */
#define MW_CLI_OPT      256
#define MW_CLI_MAX_OPTS 24
struct mw_cli_opts {
    const char *values[MW_CLI_MAX_OPTS];
    int rest;
};
int mw_cli_parse_opts(int argc, char **argv, const struct option *opts, const char *cmd,
                      void (*usage)(FILE *), struct mw_cli_opts *out);
/* For getopt_long with a leading ':' in its optstring: reports option c (':' or '?'). */
int mw_cli_bad_option(int c, const char *cmd, const char *arg);
/* argv[1] missing (usage to stderr, 2) or help (usage to stdout, 0); else -1. */
int mw_cli_want_command(int argc, char **argv, void (*usage)(FILE *));

struct mw_cli_sub {
    const char *name;
    int (*run)(int argc, char **argv);
};
/* Runs the subcommand argv[1] names with argv + 1 (optind reset), or reports it unknown. */
int mw_cli_dispatch(int argc, char **argv, const char *cmd, void (*usage)(FILE *),
                    const struct mw_cli_sub *subs, size_t nsubs);

/*
 * A one-line key or token file of at most max bytes, trailing newline dropped. With
 * secret it must be 0600 (mw_file_check_private). Errors are reported under context.
 */
int mw_cli_read_key_text(const char *path, bool secret, size_t max, const char *context,
                         struct mw_dynbuf *out);
struct mw_note_verifier;
/* A signed-note verifier key ("name+hash+key") from a file. */
int mw_cli_load_verifier(const char *path, struct mw_note_verifier **v);
/* Prints o indented in its order and drops the reference. */
int mw_cli_print_json(json_t *o);

#endif
