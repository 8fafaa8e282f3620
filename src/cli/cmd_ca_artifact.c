/* meshward ca artifact add|list|remove: the store of admitted artifacts. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <meshward/ca_auth.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: meshward ca artifact <command> [options]\n\n"
               "Admitted artifacts: image digests whose provenance was verified. A workload whose\n"
               "registration requires provenance gets an SVID only for an admitted image.\n\n"
               "commands:\n"
               "  add --db FILE --image-digest sha256:... --attestation-digest sha256:...\n"
               "      --builder-id URI [--source-repo URI]\n"
               "                       admit an image (replaces an earlier record for it)\n"
               "  list --db FILE [--json]\n"
               "  remove --db FILE --image-digest sha256:...\n");
}

struct args {
    const char *db, *image, *attestation, *builder, *source;
    bool json;
};

static int parse(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"image-digest", required_argument, NULL, 'i'},
        {"attestation-digest", required_argument, NULL, 'a'},
        {"builder-id", required_argument, NULL, 'b'},
        {"source-repo", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof(*a));
    int c;
    while ((c = getopt_long(argc, argv, "d:i:a:b:s:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            a->db = optarg;
            break;
        case 'i':
            a->image = optarg;
            break;
        case 'a':
            a->attestation = optarg;
            break;
        case 'b':
            a->builder = optarg;
            break;
        case 's':
            a->source = optarg;
            break;
        case 'j':
            a->json = true;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            return MW_EXIT_USAGE;
        }
    }
    if (a->db == NULL || optind != argc) {
        fprintf(stderr, "meshward: ca artifact needs --db FILE (and no other arguments)\n");
        return MW_EXIT_USAGE;
    }
    return MW_EXIT_OK;
}

static bool fill(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

static mw_result print_one(void *ctx, const struct mw_ca_artifact *a)
{
    bool json = *(bool *)ctx;
    char when[32];
    mw_time_format(a->admitted_at, when, sizeof(when));
    if (!json) {
        printf("%s  attestation %s  builder %s  admitted %s%s%s\n", a->image_digest,
               a->attestation_digest, a->builder_id, when, a->source_repo[0] ? "  source " : "",
               a->source_repo);
        return MW_SUCCESS;
    }
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 8192);
    mw_result r = mw_dynbuf_addf(&b,
                                 "{\"image_digest\":\"%s\",\"attestation_digest\":\"%s\","
                                 "\"builder_id\":",
                                 a->image_digest, a->attestation_digest);
    if (mw_ok(r))
        r = mw_dynbuf_add_json_str(&b, mw_slice_cstr(a->builder_id));
    if (mw_ok(r))
        r = mw_dynbuf_add_cstr(&b, ",\"source_repo\":");
    if (mw_ok(r))
        r = mw_dynbuf_add_json_str(&b, mw_slice_cstr(a->source_repo));
    if (mw_ok(r))
        r = mw_dynbuf_addf(&b, ",\"admitted_at\":\"%s\"}\n", when);
    if (mw_ok(r))
        fputs(mw_dynbuf_cstr(&b), stdout);
    mw_dynbuf_free(&b);
    return r;
}

int mw_cmd_ca_artifact(int argc, char **argv)
{
    int rc = mw_cli_want_command(argc, argv, usage);
    if (rc >= 0)
        return rc;
    const char *sub = argv[1];
    argc--;
    argv++;
    optind = 1;
    if (strcmp(sub, "add") != 0 && strcmp(sub, "list") != 0 && strcmp(sub, "remove") != 0) {
        fprintf(stderr, "meshward: ca artifact: unknown command '%s'\n\n", sub);
        usage(stderr);
        return MW_EXIT_USAGE;
    }
    struct args a;
    rc = parse(argc, argv, &a);
    if (rc != MW_EXIT_OK)
        return rc < 0 ? MW_EXIT_OK : rc;
    struct mw_ca_artifact art;
    memset(&art, 0, sizeof(art));
    if (strcmp(sub, "add") == 0) {
        if (a.image == NULL || a.attestation == NULL || a.builder == NULL) {
            fprintf(stderr, "meshward: ca artifact add needs --image-digest, "
                            "--attestation-digest and --builder-id\n");
            return MW_EXIT_USAGE;
        }
        if (!fill(art.image_digest, sizeof(art.image_digest), a.image) ||
            !fill(art.attestation_digest, sizeof(art.attestation_digest), a.attestation) ||
            !fill(art.builder_id, sizeof(art.builder_id), a.builder) ||
            !fill(art.source_repo, sizeof(art.source_repo), a.source != NULL ? a.source : "")) {
            fprintf(stderr, "meshward: ca artifact add: a value is too long\n");
            return MW_EXIT_REJECT;
        }
        art.admitted_at = mw_clock_now(NULL);
    } else if (strcmp(sub, "remove") == 0 && a.image == NULL) {
        fprintf(stderr, "meshward: ca artifact remove needs --image-digest\n");
        return MW_EXIT_USAGE;
    }
    struct mw_ca_store *s = NULL;
    if (mw_failed(mw_ca_store_open(a.db, &s)))
        return mw_cli_report_error(NULL);
    mw_result r;
    if (strcmp(sub, "add") == 0) {
        r = mw_ca_artifact_put(s, &art);
        if (mw_ok(r))
            printf("admitted %s\n", art.image_digest);
    } else if (strcmp(sub, "remove") == 0) {
        r = mw_ca_artifact_remove(s, mw_slice_cstr(a.image));
        if (mw_ok(r))
            printf("removed %s\n", a.image);
    } else {
        r = mw_ca_artifact_list(s, print_one, &a.json);
    }
    rc = mw_ok(r) ? MW_EXIT_OK : mw_cli_report_error("ca artifact");
    /* Removing what is not there is a rejected request, not a missing file. */
    if (mw_failed(r) && mw_error_code() == MW_E_NOTFOUND)
        rc = MW_EXIT_REJECT;
    mw_ca_store_close(s);
    return rc;
}
