/* meshward ca token create|list: single-use join tokens in the CA store. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <meshward/ca_auth.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: meshward ca token <command> [options]\n\n"
               "Single-use join tokens, each bound to one SPIFFE ID. The token is printed once;\n"
               "the store keeps only its SHA-256.\n\n"
               "commands:\n"
               "  create --db FILE --spiffe-id ID [--ttl 1h]\n"
               "                       make a token (TTL 1s .. 30d, default 1h) and print it\n"
               "  list --db FILE [--json]\n"
               "                       list tokens by handle (no secrets): ID, expiry, use\n");
}

static int cmd_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"spiffe-id", required_argument, NULL, 'i'},
        {"ttl", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *id_text = NULL, *ttl_text = "1h";
    int c;
    while ((c = getopt_long(argc, argv, "d:i:t:h", opts, NULL)) != -1) {
        if (c == 'd')
            db = optarg;
        else if (c == 'i')
            id_text = optarg;
        else if (c == 't')
            ttl_text = optarg;
        else if (c == 'h') {
            usage(stdout);
            return MW_EXIT_OK;
        } else
            return MW_EXIT_USAGE;
    }
    if (db == NULL || id_text == NULL || optind != argc) {
        fprintf(stderr, "meshward: ca token create needs --db FILE and --spiffe-id ID\n");
        return MW_EXIT_USAGE;
    }
    uint64_t ttl = 0;
    struct mw_spiffe_id id;
    if (mw_failed(mw_parse_duration(mw_slice_cstr(ttl_text), MW_CA_JOIN_MAX_TTL, "--ttl", &ttl))) {
        mw_cli_report_error(NULL);
        return MW_EXIT_USAGE;
    }
    if (mw_failed(mw_spiffe_id_parse(mw_slice_cstr(id_text), &id, NULL)))
        return mw_cli_report_error("--spiffe-id");
    struct mw_ca_store *s = NULL;
    if (mw_failed(mw_ca_store_open(db, &s)))
        return mw_cli_report_error(NULL);
    struct mw_dynbuf tok;
    mw_dynbuf_init_secure(&tok, 256);
    struct mw_ca_join_info info;
    int rc = MW_EXIT_OK;
    if (mw_failed(mw_ca_join_create(s, &id, (int64_t)ttl, NULL, &tok, &info))) {
        rc = mw_cli_report_error("ca token create");
    } else {
        char exp[32];
        mw_time_format(info.expires_at, exp, sizeof(exp));
        /* The token alone on stdout, for scripts; it cannot be shown again. */
        fwrite(tok.p, 1, tok.n, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        fprintf(stderr,
                "meshward: join token %s for %s, single use, expires %s; it is shown only once\n",
                info.handle, info.spiffe_id, exp);
    }
    mw_dynbuf_free(&tok);
    mw_ca_store_close(s);
    return rc;
}

struct list_ctx {
    bool json;
    int64_t now;
};

static mw_result print_one(void *ctx, const struct mw_ca_join_info *info)
{
    const struct list_ctx *l = ctx;
    char created[32], expires[32], used[32];
    mw_time_format(info->created_at, created, sizeof(created));
    mw_time_format(info->expires_at, expires, sizeof(expires));
    mw_time_format(info->used_at, used, sizeof(used));
    const char *state = info->used ? "used" : info->expires_at <= l->now ? "expired" : "unused";
    if (l->json) {
        struct mw_dynbuf b;
        mw_dynbuf_init(&b, 8192);
        mw_result r = mw_dynbuf_addf(&b, "{\"handle\":\"%s\",\"spiffe_id\":", info->handle);
        if (mw_ok(r))
            r = mw_dynbuf_add_json_str(&b, mw_slice_cstr(info->spiffe_id));
        if (mw_ok(r))
            r = mw_dynbuf_addf(&b, ",\"created_at\":\"%s\",\"expires_at\":\"%s\",\"state\":\"%s\"",
                               created, expires, state);
        if (mw_ok(r) && info->used)
            r = mw_dynbuf_addf(&b, ",\"used_at\":\"%s\"", used);
        if (mw_ok(r))
            r = mw_dynbuf_add_cstr(&b, "}\n");
        if (mw_ok(r))
            fputs(mw_dynbuf_cstr(&b), stdout);
        mw_dynbuf_free(&b);
        return r;
    }
    printf("%s  %-8s  expires %s  %s", info->handle, state, expires, info->spiffe_id);
    if (info->used)
        printf("  (used %s)", used);
    printf("\n");
    return MW_SUCCESS;
}

static int cmd_list(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL;
    struct list_ctx l = {.json = false, .now = mw_clock_now(NULL)};
    int c;
    while ((c = getopt_long(argc, argv, "d:jh", opts, NULL)) != -1) {
        if (c == 'd')
            db = optarg;
        else if (c == 'j')
            l.json = true;
        else if (c == 'h') {
            usage(stdout);
            return MW_EXIT_OK;
        } else
            return MW_EXIT_USAGE;
    }
    if (db == NULL || optind != argc) {
        fprintf(stderr, "meshward: ca token list needs --db FILE\n");
        return MW_EXIT_USAGE;
    }
    struct mw_ca_store *s = NULL;
    if (mw_failed(mw_ca_store_open(db, &s)))
        return mw_cli_report_error(NULL);
    int rc = MW_EXIT_OK;
    if (mw_failed(mw_ca_join_list(s, print_one, &l)))
        rc = mw_cli_report_error("ca token list");
    mw_ca_store_close(s);
    return rc;
}

int mw_cmd_ca_token(int argc, char **argv)
{
    static const struct mw_cli_sub subs[] = {
        {"create", cmd_create},
        {"list", cmd_list},
    };
    return mw_cli_dispatch(argc, argv, "ca token", usage, subs, MW_ARRAY_LEN(subs));
}
