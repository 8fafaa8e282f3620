/*
 * `meshward svid inspect`: show an X.509-SVID and, given a bundle, whether its
 * chain verifies at a chosen time. Exit codes as in cli.h: a rejected SVID
 * or chain is 1, with the reason on stderr and in the output's verdict.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <meshward/ca.h>
#include <meshward/spiffe.h>

#include "cli/cli.h"

static void svid_usage(FILE *f)
{
    fprintf(f,
            "usage: meshward svid inspect FILE [--key KEYFILE] [--bundle BUNDLE]\n"
            "                             [--trust-domain TD] [--at TIME] [--json]\n"
            "\n"
            "Shows an X.509-SVID (PEM or DER; leaf first, then its signing certificates) and\n"
            "checks the SPIFFE rules of X509-SVID.md: one URI SAN holding a SPIFFE ID with a\n"
            "path, a non-CA leaf with digitalSignature, CA signers with keyCertSign.\n"
            "\n"
            "  --key KEYFILE       the private key (PEM or DER; mode 0600): check it matches\n"
            "                      the leaf. May be FILE itself when key and certs share a file.\n"
            "  --bundle BUNDLE     verify the chain against this trust bundle (SPIFFE JWKS or\n"
            "                      PEM). A PEM bundle is taken to belong to the SVID's trust\n"
            "                      domain unless --trust-domain says otherwise.\n"
            "  --trust-domain TD   the trust domain the bundle belongs to\n"
            "  --at TIME           judge validity at TIME (RFC 3339, e.g. 2026-01-02T03:04:05Z)\n"
            "                      instead of now\n"
            "  --json              one JSON object instead of text\n"
            "\n"
            "Exit: 0 valid, 1 rejected, 2 usage, 3 unreadable file.\n");
}

struct svid_opts {
    const char *file, *key, *bundle, *td, *at;
    bool json;
};

static void put(json_t *o, const char *k, json_t *v)
{
    if (v != NULL)
        json_object_set_new(o, k, v);
}

static json_t *cert_json(const struct mw_cert_info *ci)
{
    char nb[32], na[32];
    mw_time_format(ci->not_before, nb, sizeof(nb));
    mw_time_format(ci->not_after, na, sizeof(na));
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    put(o, "subject", json_string(ci->subject));
    put(o, "issuer", json_string(ci->issuer));
    put(o, "serial", json_string(ci->serial));
    put(o, "not_before", json_string(nb));
    put(o, "not_after", json_string(na));
    put(o, "key_type", json_string(ci->key_type));
    put(o, "key_bits", json_integer(ci->key_bits));
    if (ci->curve[0])
        put(o, "curve", json_string(ci->curve));
    put(o, "ca", json_boolean(ci->is_ca));
    if (ci->uri_san[0])
        put(o, "uri_san", json_string(ci->uri_san));
    return o;
}

static int inspect(const struct svid_opts *o)
{
    char ctx[600];
    snprintf(ctx, sizeof(ctx), "svid inspect: %s", o->file);
    int64_t at = 0;
    if (o->at != NULL && mw_failed(mw_time_parse_rfc3339(mw_slice_cstr(o->at), "--at", &at))) {
        fprintf(stderr, "meshward: svid inspect: %s\n", mw_error_msg());
        return MW_EXIT_USAGE;
    }
    struct mw_clock fixed = mw_clock_fixed(at);
    const struct mw_clock *clock = o->at != NULL ? &fixed : mw_clock_system();

    struct mw_x509svid *svid = NULL;
    if (mw_failed(mw_x509svid_load_files(o->file, o->key, &svid)))
        return mw_cli_report_error("svid inspect");

    struct mw_bundle *bundle = NULL;
    enum mw_bundle_format fmt = MW_BUNDLE_FMT_AUTO;
    if (o->bundle != NULL) {
        if (mw_failed(mw_bundle_load_file(o->bundle, MW_BUNDLE_FMT_AUTO, o->td, &bundle, &fmt))) {
            mw_x509svid_free(svid);
            return mw_cli_report_error("svid inspect: bundle");
        }
        /*
         * A bundle file does not name its trust domain (bundle spec §5): without
         * --trust-domain we take the SVID's, and say so in the output.
         */
        if (mw_bundle_td(bundle)[0] == '\0' &&
            mw_failed(mw_bundle_set_td(bundle, mw_x509svid_id(svid)->td))) {
            mw_bundle_free(bundle);
            mw_x509svid_free(svid);
            return mw_cli_report_error(ctx);
        }
    }

    int rc = MW_EXIT_OK;
    char verdict[1200] = "";
    if (bundle != NULL) {
        if (mw_ok(mw_x509svid_verify(svid, bundle, clock))) {
            snprintf(verdict, sizeof(verdict), "ok");
        } else {
            snprintf(verdict, sizeof(verdict), "%s", mw_error_msg());
            rc = MW_EXIT_REJECT;
        }
    }

    char id[MW_SPIFFE_ID_MAX + 16];
    mw_spiffe_id_format(mw_x509svid_id(svid), id, sizeof(id));
    struct mw_cert_info leaf;
    if (mw_failed(mw_x509svid_cert_info(svid, 0, &leaf))) {
        rc = mw_cli_report_error(ctx);
        goto out;
    }
    char nb[32], na[32], when[32];
    mw_time_format(leaf.not_before, nb, sizeof(nb));
    mw_time_format(leaf.not_after, na, sizeof(na));
    mw_time_format(mw_clock_now(clock), when, sizeof(when));
    size_t n = mw_x509svid_chain_len(svid);

    /* meshward's provenance extension (docs/ca.md), when the CA put one in. */
    struct mw_ca_provenance prov;
    bool has_prov = false;
    struct mw_dynbuf leaf_der;
    mw_dynbuf_init(&leaf_der, 1 << 20);
    if (mw_failed(mw_x509svid_cert_der(svid, 0, &leaf_der)) ||
        mw_failed(mw_ca_provenance_from_cert(mw_dynbuf_slice(&leaf_der), &prov, &has_prov))) {
        mw_dynbuf_free(&leaf_der);
        rc = mw_cli_report_error(ctx);
        goto out;
    }
    mw_dynbuf_free(&leaf_der);

    if (o->json) {
        json_t *root = json_object();
        json_t *chain = json_array();
        if (root == NULL || chain == NULL) {
            json_decref(root);
            json_decref(chain);
            fprintf(stderr, "meshward: out of memory\n");
            rc = MW_EXIT_REJECT;
            goto out;
        }
        put(root, "file", json_string(o->file));
        put(root, "spiffe_id", json_string(id));
        put(root, "trust_domain", json_string(mw_x509svid_id(svid)->td));
        put(root, "serial", json_string(leaf.serial));
        put(root, "not_before", json_string(nb));
        put(root, "not_after", json_string(na));
        put(root, "key_type", json_string(leaf.key_type));
        put(root, "key_bits", json_integer(leaf.key_bits));
        if (leaf.curve[0])
            put(root, "curve", json_string(leaf.curve));
        put(root, "issuer", json_string(leaf.issuer));
        put(root, "chain_length", json_integer((json_int_t)n));
        for (size_t i = 0; i < n; i++) {
            struct mw_cert_info ci;
            if (mw_ok(mw_x509svid_cert_info(svid, i, &ci)))
                json_array_append_new(chain, cert_json(&ci));
        }
        put(root, "chain", chain);
        if (has_prov) {
            json_t *p = json_object();
            if (p != NULL) {
                put(p, "image_digest", json_string(prov.image_digest));
                put(p, "attestation_digest", json_string(prov.attestation_digest));
                put(p, "builder_id", json_string(prov.builder_id));
                put(root, "provenance", p);
            }
        } else {
            put(root, "provenance", json_null());
        }
        if (o->key != NULL)
            put(root, "key_match", json_true());
        if (bundle != NULL) {
            put(root, "bundle", json_string(o->bundle));
            put(root, "bundle_format", json_string(mw_bundle_format_name(fmt)));
            put(root, "bundle_trust_domain", json_string(mw_bundle_td(bundle)));
            put(root, "at", json_string(when));
            put(root, "verdict", json_string(rc == MW_EXIT_OK ? "ok" : "rejected"));
            if (rc != MW_EXIT_OK)
                put(root, "reason", json_string(verdict));
        }
        mw_cli_print_json(root);
    } else {
        printf("file:          %s\n", o->file);
        printf("spiffe_id:     %s\n", id);
        printf("serial:        %s\n", leaf.serial);
        printf("not_before:    %s\n", nb);
        printf("not_after:     %s\n", na);
        printf("key:           %s%s%s %d bits\n", leaf.key_type, leaf.curve[0] ? " " : "",
               leaf.curve, leaf.key_bits);
        printf("issuer:        %s\n", leaf.issuer);
        printf("chain_length:  %zu\n", n);
        for (size_t i = 1; i < n; i++) {
            struct mw_cert_info ci;
            if (mw_ok(mw_x509svid_cert_info(svid, i, &ci)))
                printf("  signer %zu:    %s (until %s)\n", i, ci.subject,
                       (mw_time_format(ci.not_after, when, sizeof(when)), when));
        }
        if (has_prov) {
            printf("provenance:    image %s\n", prov.image_digest);
            printf("               attestation %s\n", prov.attestation_digest);
            printf("               builder %s\n", prov.builder_id);
        } else {
            printf("provenance:    none (the workload's artifact was not verified)\n");
        }
        if (o->key != NULL)
            printf("key_match:     yes\n");
        if (bundle != NULL) {
            mw_time_format(mw_clock_now(clock), when, sizeof(when));
            printf("bundle:        %s (%s, trust domain %s%s)\n", o->bundle,
                   mw_bundle_format_name(fmt), mw_bundle_td(bundle),
                   o->td == NULL ? ", assumed from the SVID" : "");
            printf("at:            %s\n", when);
            printf("verdict:       %s%s\n",
                   rc == MW_EXIT_OK ? "ok" : "rejected: ", rc == MW_EXIT_OK ? "" : verdict);
        }
    }
    if (rc != MW_EXIT_OK)
        fprintf(stderr, "meshward: %s: %s\n", ctx, verdict);
out:
    mw_bundle_free(bundle);
    mw_x509svid_free(svid);
    return rc;
}

int mw_cmd_svid(int argc, char **argv)
{
    int rc = mw_cli_want_command(argc, argv, svid_usage);
    if (rc >= 0)
        return rc;
    if (strcmp(argv[1], "inspect") != 0) {
        fprintf(stderr, "meshward: svid: unknown subcommand '%s' (want inspect)\n", argv[1]);
        return MW_EXIT_USAGE;
    }
    static const struct option longopts[] = {
        {"key", required_argument, NULL, 'k'},
        {"bundle", required_argument, NULL, 'b'},
        {"trust-domain", required_argument, NULL, 't'},
        {"at", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct svid_opts o = {0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            o.key = optarg;
            break;
        case 'b':
            o.bundle = optarg;
            break;
        case 't':
            o.td = optarg;
            break;
        case 'a':
            o.at = optarg;
            break;
        case 'j':
            o.json = true;
            break;
        case 'h':
            svid_usage(stdout);
            return MW_EXIT_OK;
        default:
            return mw_cli_bad_option(c, "svid inspect", argv[optind]);
        }
    }
    int rest = argc - 1 - optind;
    if (rest != 1) {
        fprintf(stderr, "meshward: svid inspect: want one FILE, got %d (see --help)\n", rest);
        return MW_EXIT_USAGE;
    }
    o.file = argv[1 + optind];
    return inspect(&o);
}
