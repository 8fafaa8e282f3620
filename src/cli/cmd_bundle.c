/*
 * `meshward bundle inspect`: what a trust bundle holds. The format (SPIFFE
 * JWKS or PEM) is detected; every authority is listed with its use, kid, key
 * type, and for CA certificates subject and validity.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <meshward/spiffe.h>

#include "cli/cli.h"

static void bundle_usage(FILE *f)
{
    fprintf(f,
            "usage: meshward bundle inspect FILE [--trust-domain TD] [--format FMT] [--json]\n"
            "\n"
            "Shows a SPIFFE trust bundle: a SPIFFE JWKS (SPIFFE_Trust_Domain_and_Bundle.md) or\n"
            "PEM CA certificates. Rejects duplicate JSON members, repeated kids or certificates,\n"
            "jwt-svid keys without kid and bundles without authorities; keys of unknown use or\n"
            "type are skipped and counted.\n"
            "\n"
            "  --trust-domain TD   the trust domain the bundle belongs to (shown, and checked)\n"
            "  --format FMT        auto (default), spiffe, jwt (a plain JWKS of JWT keys, where\n"
            "                      \"use\" may be absent) or pem\n"
            "  --json              one JSON object instead of text\n"
            "\n"
            "Exit: 0 valid, 1 rejected, 2 usage, 3 unreadable file.\n");
}

static void put(json_t *o, const char *k, json_t *v)
{
    if (v != NULL)
        json_object_set_new(o, k, v);
}

static int show(const char *file, const struct mw_bundle *b, enum mw_bundle_format fmt, bool json)
{
    uint64_t seq = 0;
    int64_t refresh = 0;
    bool has_seq = mw_bundle_sequence(b, &seq);
    bool has_refresh = mw_bundle_refresh_hint(b, &refresh);
    size_t nx = mw_bundle_x509_count(b), nj = mw_bundle_jwt_count(b);
    const char *td = mw_bundle_td(b);

    if (json) {
        json_t *root = json_object();
        json_t *keys = json_array();
        if (root == NULL || keys == NULL) {
            json_decref(root);
            json_decref(keys);
            fprintf(stderr, "meshward: out of memory\n");
            return MW_EXIT_REJECT;
        }
        put(root, "file", json_string(file));
        put(root, "format", json_string(mw_bundle_format_name(fmt)));
        put(root, "trust_domain", td[0] ? json_string(td) : json_null());
        put(root, "sequence", has_seq ? json_integer((json_int_t)seq) : json_null());
        put(root, "refresh_hint", has_refresh ? json_integer((json_int_t)refresh) : json_null());
        put(root, "x509_authorities", json_integer((json_int_t)nx));
        put(root, "jwt_authorities", json_integer((json_int_t)nj));
        put(root, "ignored_keys", json_integer((json_int_t)mw_bundle_ignored(b)));
        put(root, "x5c_extra", json_integer((json_int_t)mw_bundle_x5c_extra(b)));
        for (size_t i = 0; i < nx; i++) {
            struct mw_cert_info ci;
            if (mw_failed(mw_bundle_x509_info(b, i, &ci)))
                continue;
            char nb[32], na[32];
            mw_time_format(ci.not_before, nb, sizeof(nb));
            mw_time_format(ci.not_after, na, sizeof(na));
            json_t *k = json_object();
            put(k, "use", json_string("x509-svid"));
            put(k, "key_type", json_string(ci.key_type));
            put(k, "key_bits", json_integer(ci.key_bits));
            if (ci.curve[0])
                put(k, "curve", json_string(ci.curve));
            put(k, "subject", json_string(ci.subject));
            put(k, "issuer", json_string(ci.issuer));
            put(k, "serial", json_string(ci.serial));
            put(k, "not_before", json_string(nb));
            put(k, "not_after", json_string(na));
            put(k, "ca", json_boolean(ci.is_ca));
            json_array_append_new(keys, k);
        }
        for (size_t i = 0; i < nj; i++) {
            struct mw_jwt_key_info ki;
            if (mw_failed(mw_bundle_jwt_info(b, i, &ki)))
                continue;
            json_t *k = json_object();
            put(k, "use", json_string("jwt-svid"));
            put(k, "kid", json_string(ki.kid));
            put(k, "key_type", json_string(ki.key_type));
            put(k, "key_bits", json_integer(ki.key_bits));
            if (ki.curve[0])
                put(k, "curve", json_string(ki.curve));
            json_array_append_new(keys, k);
        }
        put(root, "keys", keys);
        return mw_cli_print_json(root);
    }

    printf("file:              %s\n", file);
    printf("format:            %s\n", mw_bundle_format_name(fmt));
    printf("trust_domain:      %s\n", td[0] ? td : "(not given)");
    if (has_seq)
        printf("sequence:          %llu\n", (unsigned long long)seq);
    else
        printf("sequence:          (none)\n");
    if (has_refresh)
        printf("refresh_hint:      %llds\n", (long long)refresh);
    else
        printf("refresh_hint:      (none)\n");
    printf("x509_authorities:  %zu\n", nx);
    printf("jwt_authorities:   %zu\n", nj);
    if (mw_bundle_ignored(b) > 0)
        printf("ignored_keys:      %zu (unknown use or key type)\n", mw_bundle_ignored(b));
    if (mw_bundle_x5c_extra(b) > 0)
        printf("x5c_extra:         %zu entries hold more than one x5c value; only the first is "
               "used (X509-SVID 6.2)\n",
               mw_bundle_x5c_extra(b));
    size_t n = 0;
    for (size_t i = 0; i < nx; i++) {
        struct mw_cert_info ci;
        if (mw_failed(mw_bundle_x509_info(b, i, &ci)))
            continue;
        char nb[32], na[32];
        mw_time_format(ci.not_before, nb, sizeof(nb));
        mw_time_format(ci.not_after, na, sizeof(na));
        printf("key %zu: use=x509-svid type=%s%s%s bits=%d subject=\"%s\" not_before=%s "
               "not_after=%s%s\n",
               ++n, ci.key_type, ci.curve[0] ? " " : "", ci.curve, ci.key_bits, ci.subject, nb, na,
               ci.is_ca ? "" : " (not a CA!)");
    }
    for (size_t i = 0; i < nj; i++) {
        struct mw_jwt_key_info ki;
        if (mw_failed(mw_bundle_jwt_info(b, i, &ki)))
            continue;
        printf("key %zu: use=jwt-svid kid=%s type=%s%s%s bits=%d\n", ++n, ki.kid, ki.key_type,
               ki.curve[0] ? " " : "", ki.curve, ki.key_bits);
    }
    return MW_EXIT_OK;
}

static bool parse_format(const char *s, enum mw_bundle_format *out)
{
    static const struct {
        const char *name;
        enum mw_bundle_format fmt;
    } names[] = {{"auto", MW_BUNDLE_FMT_AUTO},
                 {"spiffe", MW_BUNDLE_FMT_SPIFFE},
                 {"jwt", MW_BUNDLE_FMT_JWKS_JWT},
                 {"pem", MW_BUNDLE_FMT_PEM}};
    for (size_t i = 0; i < MW_ARRAY_LEN(names); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].fmt;
            return true;
        }
    }
    return false;
}

int mw_cmd_bundle(int argc, char **argv)
{
    int rc = mw_cli_want_command(argc, argv, bundle_usage);
    if (rc >= 0)
        return rc;
    if (strcmp(argv[1], "inspect") != 0) {
        fprintf(stderr, "meshward: bundle: unknown subcommand '%s' (want inspect)\n", argv[1]);
        return MW_EXIT_USAGE;
    }
    static const struct option longopts[] = {
        {"trust-domain", required_argument, NULL, 't'},
        {"format", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *td = NULL;
    enum mw_bundle_format fmt = MW_BUNDLE_FMT_AUTO;
    bool json = false;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            td = optarg;
            break;
        case 'f':
            if (!parse_format(optarg, &fmt)) {
                fprintf(stderr,
                        "meshward: bundle inspect: --format %s: want auto, spiffe, jwt or pem\n",
                        optarg);
                return MW_EXIT_USAGE;
            }
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            bundle_usage(stdout);
            return MW_EXIT_OK;
        default:
            return mw_cli_bad_option(c, "bundle inspect", argv[optind]);
        }
    }
    int rest = argc - 1 - optind;
    if (rest != 1) {
        fprintf(stderr, "meshward: bundle inspect: want one FILE, got %d (see --help)\n", rest);
        return MW_EXIT_USAGE;
    }
    const char *file = argv[1 + optind];
    if (td != NULL) {
        char name[MW_SPIFFE_TD_MAX + 1];
        if (mw_failed(mw_spiffe_td_parse(mw_slice_cstr(td), name))) {
            fprintf(stderr, "meshward: bundle inspect: --trust-domain: %s\n", mw_error_msg());
            return MW_EXIT_USAGE;
        }
    }
    struct mw_bundle *b = NULL;
    enum mw_bundle_format detected = fmt;
    if (mw_failed(mw_bundle_load_file(file, fmt, td, &b, &detected)))
        return mw_cli_report_error("bundle inspect");
    rc = show(file, b, detected, json);
    mw_bundle_free(b);
    return rc;
}
