/* Internal: the `meshward` command-line tool. One file per command. */
#ifndef MESHWARD_CLI_H
#define MESHWARD_CLI_H

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

#endif
