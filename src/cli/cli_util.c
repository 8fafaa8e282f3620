/* Pieces every `meshward` command shares: option tables, subcommand dispatch, key files, JSON. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <meshward/tlog.h>

#include "cli/cli.h"

int mw_cli_parse_opts(int argc, char **argv, const struct option *opts, const char *cmd,
                      void (*usage)(FILE *), struct mw_cli_opts *out)
{
    memset(out, 0, sizeof(*out));
    optind = 1;
    opterr = 0;
    int c, idx = -1;
    while ((c = getopt_long(argc, argv, "+:h", opts, &idx)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return MW_EXIT_OK;
        }
        if (c == ':') {
            fprintf(stderr, "meshward: %s: %s needs a value\n", cmd, argv[optind - 1]);
            return MW_EXIT_USAGE;
        }
        if (c == '?') {
            fprintf(stderr, "meshward: %s: unknown option %s\n", cmd, argv[optind - 1]);
            usage(stderr);
            return MW_EXIT_USAGE;
        }
        if (c >= MW_CLI_OPT && c < MW_CLI_OPT + MW_CLI_MAX_OPTS)
            out->values[c - MW_CLI_OPT] = optarg != NULL ? optarg : "1";
    }
    out->rest = optind;
    return -1;
}

int mw_cli_bad_option(int c, const char *cmd, const char *arg)
{
    if (c == ':')
        fprintf(stderr, "meshward: %s: %s needs a value\n", cmd, arg);
    else
        fprintf(stderr, "meshward: %s: unknown option '%s'\n", cmd, arg);
    return MW_EXIT_USAGE;
}

int mw_cli_want_command(int argc, char **argv, void (*usage)(FILE *))
{
    if (argc >= 2 && !mw_cli_is_help(argv[1]))
        return -1;
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? MW_EXIT_USAGE : MW_EXIT_OK;
}

int mw_cli_dispatch(int argc, char **argv, const char *cmd, void (*usage)(FILE *),
                    const struct mw_cli_sub *subs, size_t nsubs)
{
    int rc = mw_cli_want_command(argc, argv, usage);
    if (rc >= 0)
        return rc;
    for (size_t i = 0; i < nsubs; i++) {
        if (strcmp(argv[1], subs[i].name) == 0) {
            optind = 1;
            return subs[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "meshward: %s: unknown command '%s'\n\n", cmd, argv[1]);
    usage(stderr);
    return MW_EXIT_USAGE;
}

int mw_cli_read_key_text(const char *path, bool secret, size_t max, const char *context,
                         struct mw_dynbuf *out)
{
    /* Key and token files hold secrets: refuse ones others can read (STYLE.md, Secrets). */
    if (secret && mw_failed(mw_file_check_private(path)))
        return mw_cli_report_error(context);
    if (mw_failed(mw_file_read(path, max, out)))
        return mw_cli_report_error(context);
    /* One line; a trailing newline is allowed. */
    while (out->n > 0 && (out->p[out->n - 1] == '\n' || out->p[out->n - 1] == '\r'))
        out->n--;
    return MW_EXIT_OK;
}

int mw_cli_load_verifier(const char *path, struct mw_note_verifier **v)
{
    struct mw_dynbuf text;
    mw_dynbuf_init(&text, 4096);
    int rc = mw_cli_read_key_text(path, false, 4096, NULL, &text);
    if (rc == MW_EXIT_OK && mw_failed(mw_note_verifier_new(mw_dynbuf_slice(&text), v)))
        rc = mw_cli_report_error(path);
    mw_dynbuf_free(&text);
    return rc;
}

int mw_cli_print_json(json_t *o)
{
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text == NULL) {
        fprintf(stderr, "meshward: out of memory\n");
        return MW_EXIT_REJECT;
    }
    printf("%s\n", text);
    free(text);
    return MW_EXIT_OK;
}
