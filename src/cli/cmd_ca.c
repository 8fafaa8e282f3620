/*
 * `meshward ca`: the mesh CA offline. init, issue, info, rotate and the
 * offline-root pair sign-intermediate / import-intermediate live here;
 * token, artifact and audit are dispatched to their own files.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <meshward/ca.h>

#include "cli/cli.h"

/* A duration: "90s", "1h", "30d", or "10y" (365-day years). */
static mw_result duration(const char *s, const char *what, int64_t *out)
{
    mw_slice v = mw_slice_cstr(s);
    uint64_t n;
    if (v.n > 1 && v.p[v.n - 1] == 'y') {
        MW_GUARD(mw_parse_u64(mw_slice_make(v.p, v.n - 1), 1, 100, what, &n));
        *out = (int64_t)n * 365 * 86400;
        return MW_SUCCESS;
    }
    MW_GUARD(mw_parse_duration(v, 100ULL * 365 * 86400, what, &n));
    MW_ENSURE(n > 0, MW_E_INPUT, "%s must be more than 0", what);
    *out = (int64_t)n;
    return MW_SUCCESS;
}

static int fail(const char *context)
{
    return mw_cli_report_error(context);
}

/* ---------------------------------------------------------------- init */

static void init_usage(FILE *f)
{
    fprintf(f,
            "usage: meshward ca init --trust-domain TD --out DIR [options]\n"
            "\n"
            "Makes a CA in DIR: a root and an intermediate (ECDSA P-256 by default), the trust\n"
            "bundle as bundle.pem and bundle.jwks.json (SPIFFE JWKS), and ca.yaml. Key files are\n"
            "written with mode 0600; with --pkcs11-module the keys are made on the token instead\n"
            "(sensitive, not extractable) and never leave it.\n"
            "\n"
            "  --trust-domain TD        the SPIFFE trust domain (example.org)\n"
            "  --out DIR                where the CA lives (created; must not hold a CA)\n"
            "  --key-type T             ec-p256 (default) or ec-p384\n"
            "  --root-ttl D             root lifetime (default 10y; units s m h d y)\n"
            "  --intermediate-ttl D     intermediate lifetime (default 1y)\n"
            "  --svid-ttl D             default SVID lifetime (default 1h)\n"
            "  --svid-max-ttl D         the longest SVID issued (default 24h)\n"
            "  --csr                    offline root: make only the intermediate key and\n"
            "                           DIR/intermediate-1.csr.pem; install the signed\n"
            "                           certificate with `meshward ca import-intermediate`\n"
            "  --pkcs11-module PATH     PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so)\n"
            "  --token-label L          the token's label\n"
            "  --key-label PREFIX       key labels PREFIX-root, PREFIX-intermediate-N\n"
            "                           (default meshward)\n"
            "  --pin-file F             the user PIN in F (mode 0600)\n"
            "  --pin-env VAR            the user PIN in environment variable VAR\n"
            "\n"
            "Exit: 0 made, 1 refused, 2 usage, 3 I/O.\n");
}

static int cmd_init(int argc, char **argv)
{
    enum { TD, OUT, KT, RTTL, ITTL, STTL, SMAX, CSR, MOD, TOK, KLAB, PINF, PINE };
    static const struct option opts[] = {
        {"trust-domain", required_argument, NULL, MW_CLI_OPT + TD},
        {"out", required_argument, NULL, MW_CLI_OPT + OUT},
        {"key-type", required_argument, NULL, MW_CLI_OPT + KT},
        {"root-ttl", required_argument, NULL, MW_CLI_OPT + RTTL},
        {"intermediate-ttl", required_argument, NULL, MW_CLI_OPT + ITTL},
        {"svid-ttl", required_argument, NULL, MW_CLI_OPT + STTL},
        {"svid-max-ttl", required_argument, NULL, MW_CLI_OPT + SMAX},
        {"csr", no_argument, NULL, MW_CLI_OPT + CSR},
        {"pkcs11-module", required_argument, NULL, MW_CLI_OPT + MOD},
        {"token-label", required_argument, NULL, MW_CLI_OPT + TOK},
        {"key-label", required_argument, NULL, MW_CLI_OPT + KLAB},
        {"pin-file", required_argument, NULL, MW_CLI_OPT + PINF},
        {"pin-env", required_argument, NULL, MW_CLI_OPT + PINE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mw_cli_opts p;
    int rc = mw_cli_parse_opts(argc, argv, opts, "ca init", init_usage, &p);
    if (rc >= 0)
        return rc;
    const char **v = p.values;
    if (v[TD] == NULL || v[OUT] == NULL || p.rest != argc) {
        fprintf(stderr, "meshward: ca init: --trust-domain and --out are required\n");
        init_usage(stderr);
        return MW_EXIT_USAGE;
    }
    struct mw_ca_init_opts o = {.trust_domain = v[TD], .dir = v[OUT], .csr_only = v[CSR] != NULL};
    struct mw_ca_pkcs11 p11 = {0};
    if ((v[KT] && mw_failed(mw_ca_key_type_parse(v[KT], &o.key_type))) ||
        (v[RTTL] && mw_failed(duration(v[RTTL], "--root-ttl", &o.root_ttl))) ||
        (v[ITTL] && mw_failed(duration(v[ITTL], "--intermediate-ttl", &o.intermediate_ttl))) ||
        (v[STTL] && mw_failed(duration(v[STTL], "--svid-ttl", &o.svid_default_ttl))) ||
        (v[SMAX] && mw_failed(duration(v[SMAX], "--svid-max-ttl", &o.svid_max_ttl)))) {
        fprintf(stderr, "meshward: ca init: %s\n", mw_error_msg());
        return MW_EXIT_USAGE;
    }
    if (v[MOD] != NULL || v[TOK] != NULL) {
        if (v[MOD] == NULL || v[TOK] == NULL || (v[PINF] == NULL) == (v[PINE] == NULL)) {
            fprintf(stderr, "meshward: ca init: PKCS#11 needs --pkcs11-module, --token-label "
                            "and one of --pin-file or --pin-env\n");
            return MW_EXIT_USAGE;
        }
        p11 = (struct mw_ca_pkcs11){.module = v[MOD],
                                    .token_label = v[TOK],
                                    .key_label = v[KLAB] ? v[KLAB] : "meshward",
                                    .pin_file = v[PINF],
                                    .pin_env = v[PINE]};
        o.p11 = &p11;
    } else if (v[PINF] || v[PINE] || v[KLAB]) {
        fprintf(stderr, "meshward: ca init: --pin-file, --pin-env and --key-label need "
                        "--pkcs11-module\n");
        return MW_EXIT_USAGE;
    }
    if (mw_failed(mw_ca_init(&o)))
        return fail("ca init");
    if (o.csr_only)
        printf("made %s/intermediate-1.csr.pem: have the offline root sign it, then run\n"
               "  meshward ca import-intermediate --config %s/ca.yaml --cert CERT --root ROOT\n",
               v[OUT], v[OUT]);
    else
        printf("made CA for %s in %s (bundle: %s/bundle.pem, %s/bundle.jwks.json)\n", v[TD], v[OUT],
               v[OUT], v[OUT]);
    return MW_EXIT_OK;
}

/* ---------------------------------------------------------------- issue */

static void issue_usage(FILE *f)
{
    fprintf(f, "usage: meshward ca issue --config CA.yaml --csr FILE --spiffe-id ID [options]\n"
               "\n"
               "Issues an X.509-SVID offline and prints the chain (leaf, intermediate) as PEM.\n"
               "The identity is --spiffe-id; names requested in the CSR are ignored. Offline\n"
               "issuance is not written to the issuance log.\n"
               "\n"
               "  --csr FILE               PKCS#10 request, PEM or DER ('-' for stdin)\n"
               "  --spiffe-id ID           spiffe://TD/path, in the CA's trust domain\n"
               "  --ttl D                  lifetime (default from ca.yaml; capped at the maximum)\n"
               "  --image-digest D         provenance: sha256:<64 hex> of the image ...\n"
               "  --attestation-digest D   ... of its attestation ...\n"
               "  --builder-id URI         ... and the builder (all three, or none)\n"
               "  --out FILE               write the chain to FILE instead of stdout\n"
               "  --pin-file F, --pin-env VAR   the token PIN, overriding ca.yaml\n"
               "\n"
               "Exit: 0 issued, 1 refused, 2 usage, 3 I/O.\n");
}

/* PEM "CERTIFICATE REQUEST" or DER, into der. */
static mw_result read_csr(const char *path, struct mw_dynbuf *der)
{
    struct mw_dynbuf raw;
    mw_dynbuf_init(&raw, MW_CA_CSR_MAX * 2);
    mw_result r = strcmp(path, "-") == 0
                      ? mw_file_read_stream(stdin, "<stdin>", MW_CA_CSR_MAX * 2, &raw)
                      : mw_file_read(path, MW_CA_CSR_MAX * 2, &raw);
    if (mw_ok(r)) {
        mw_slice s = mw_dynbuf_slice(&raw);
        static const char begin[] = "-----BEGIN CERTIFICATE REQUEST-----";
        static const char end[] = "-----END CERTIFICATE REQUEST-----";
        size_t b = 0;
        while (b < s.n && (s.p[b] == ' ' || s.p[b] == '\n' || s.p[b] == '\r' || s.p[b] == '\t'))
            b++;
        mw_slice t = mw_slice_sub(s, b, s.n - b);
        if (mw_slice_has_prefix(t, mw_slice_cstr("-----BEGIN"))) {
            const char *e = memmem(t.p, t.n, end, strlen(end));
            if (!mw_slice_has_prefix(t, mw_slice_cstr(begin)) || e == NULL) {
                mw_error_set(MW_E_INPUT, "%s: not a PEM CERTIFICATE REQUEST", path);
                r = MW_FAILURE;
            } else {
                struct mw_dynbuf b64;
                mw_dynbuf_init(&b64, MW_CA_CSR_MAX * 2);
                for (const uint8_t *q = t.p + strlen(begin); q < (const uint8_t *)e && mw_ok(r);
                     q++)
                    if (*q != '\n' && *q != '\r' && *q != ' ' && *q != '\t')
                        r = mw_dynbuf_add_byte(&b64, *q);
                if (mw_ok(r))
                    r = mw_b64_decode(mw_dynbuf_slice(&b64), MW_B64_STD, der);
                if (mw_failed(r))
                    mw_error_prefix("%s: ", path);
                mw_dynbuf_free(&b64);
            }
        } else {
            r = mw_dynbuf_add_slice(der, s);
        }
    }
    mw_dynbuf_free(&raw);
    return r;
}

static int cmd_issue(int argc, char **argv)
{
    enum { CONF, CSR, ID, TTL, IMG, ATT, BLD, OUT, PINF, PINE };
    static const struct option opts[] = {
        {"config", required_argument, NULL, MW_CLI_OPT + CONF},
        {"csr", required_argument, NULL, MW_CLI_OPT + CSR},
        {"spiffe-id", required_argument, NULL, MW_CLI_OPT + ID},
        {"ttl", required_argument, NULL, MW_CLI_OPT + TTL},
        {"image-digest", required_argument, NULL, MW_CLI_OPT + IMG},
        {"attestation-digest", required_argument, NULL, MW_CLI_OPT + ATT},
        {"builder-id", required_argument, NULL, MW_CLI_OPT + BLD},
        {"out", required_argument, NULL, MW_CLI_OPT + OUT},
        {"pin-file", required_argument, NULL, MW_CLI_OPT + PINF},
        {"pin-env", required_argument, NULL, MW_CLI_OPT + PINE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mw_cli_opts p;
    int rc = mw_cli_parse_opts(argc, argv, opts, "ca issue", issue_usage, &p);
    if (rc >= 0)
        return rc;
    const char **v = p.values;
    if (v[CONF] == NULL || v[CSR] == NULL || v[ID] == NULL || p.rest != argc) {
        fprintf(stderr, "meshward: ca issue: --config, --csr and --spiffe-id are required\n");
        issue_usage(stderr);
        return MW_EXIT_USAGE;
    }
    int64_t ttl = 0;
    if (v[TTL] != NULL && mw_failed(duration(v[TTL], "--ttl", &ttl))) {
        fprintf(stderr, "meshward: ca issue: %s\n", mw_error_msg());
        return MW_EXIT_USAGE;
    }
    int nprov = (v[IMG] != NULL) + (v[ATT] != NULL) + (v[BLD] != NULL);
    if (nprov != 0 && nprov != 3) {
        fprintf(stderr, "meshward: ca issue: provenance needs --image-digest, "
                        "--attestation-digest and --builder-id together\n");
        return MW_EXIT_USAGE;
    }
    struct mw_ca_provenance prov;
    if (nprov == 3 && mw_failed(mw_ca_provenance_set(&prov, v[IMG], v[ATT], v[BLD])))
        return fail("ca issue");
    struct mw_dynbuf csr;
    mw_dynbuf_init(&csr, MW_CA_CSR_MAX * 2);
    if (mw_failed(read_csr(v[CSR], &csr))) {
        mw_dynbuf_free(&csr);
        return fail("ca issue");
    }
    struct mw_ca *ca = NULL;
    if (mw_failed(mw_ca_open(v[CONF], v[PINF], v[PINE], &ca))) {
        mw_dynbuf_free(&csr);
        return fail("ca issue");
    }
    struct mw_ca_svid s;
    mw_ca_svid_init(&s);
    mw_result r =
        mw_ca_issue(ca, mw_dynbuf_slice(&csr), v[ID], ttl, nprov ? &prov : NULL, NULL, &s);
    if (mw_ok(r)) {
        if (v[OUT] != NULL) {
            r = mw_file_write_atomic(v[OUT], mw_dynbuf_slice(&s.chain_pem), 0644);
        } else {
            fwrite(s.chain_pem.p, 1, s.chain_pem.n, stdout);
        }
    }
    if (mw_ok(r)) {
        char na[32];
        mw_time_format(s.not_after, na, sizeof(na));
        fprintf(stderr, "issued %s serial %s until %s by intermediate key %.16s\n", v[ID], s.serial,
                na, s.ca_key_id);
    }
    rc = mw_ok(r) ? MW_EXIT_OK : fail("ca issue");
    mw_ca_svid_free(&s);
    mw_ca_free(ca);
    mw_dynbuf_free(&csr);
    return rc;
}

/* ---------------------------------------------------------------- info */

static void info_usage(FILE *f)
{
    fprintf(f, "usage: meshward ca info --config CA.yaml [--json] [--pin-file F|--pin-env VAR]\n"
               "\n"
               "Shows the trust domain, the intermediates with their state and rotation times\n"
               "(prepare at min(life/2, 30d) left, activate at min(life/6, 7d) left).\n");
}

static int cmd_info(int argc, char **argv)
{
    enum { CONF, JSON, PINF, PINE };
    static const struct option opts[] = {
        {"config", required_argument, NULL, MW_CLI_OPT + CONF},
        {"json", no_argument, NULL, MW_CLI_OPT + JSON},
        {"pin-file", required_argument, NULL, MW_CLI_OPT + PINF},
        {"pin-env", required_argument, NULL, MW_CLI_OPT + PINE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mw_cli_opts p;
    int rc = mw_cli_parse_opts(argc, argv, opts, "ca info", info_usage, &p);
    if (rc >= 0)
        return rc;
    const char **v = p.values;
    if (v[CONF] == NULL || p.rest != argc) {
        info_usage(stderr);
        return MW_EXIT_USAGE;
    }
    struct mw_ca *ca = NULL;
    if (mw_failed(mw_ca_open(v[CONF], v[PINF], v[PINE], &ca)))
        return fail("ca info");
    json_t *out = json_object();
    json_t *ints = json_array();
    json_object_set_new(out, "trust_domain", json_string(mw_ca_trust_domain(ca)));
    json_object_set_new(out, "svid_default_ttl", json_integer(mw_ca_default_ttl(ca)));
    json_object_set_new(out, "svid_max_ttl", json_integer(mw_ca_max_ttl(ca)));
    if (!v[JSON])
        printf("trust domain  %s\nSVID TTL      %llds (max %llds)\nintermediates\n",
               mw_ca_trust_domain(ca), (long long)mw_ca_default_ttl(ca),
               (long long)mw_ca_max_ttl(ca));
    for (size_t i = 0; i < mw_ca_slot_count(ca); i++) {
        struct mw_ca_slot_info si;
        if (mw_failed(mw_ca_slot_info(ca, i, &si)))
            continue;
        char nb[32] = "", na[32] = "", pa[32] = "", aa[32] = "";
        if (si.not_after != 0) {
            mw_time_format(si.not_before, nb, sizeof(nb));
            mw_time_format(si.not_after, na, sizeof(na));
            mw_time_format(mw_ca_prepare_at(si.not_before, si.not_after), pa, sizeof(pa));
            mw_time_format(mw_ca_activate_at(si.not_before, si.not_after), aa, sizeof(aa));
        }
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(si.id));
        json_object_set_new(o, "state", json_string(mw_ca_slot_state_name(si.state)));
        json_object_set_new(o, "key_id", json_string(si.key_id));
        json_object_set_new(o, "subject", json_string(si.subject));
        json_object_set_new(o, "not_before", json_string(nb));
        json_object_set_new(o, "not_after", json_string(na));
        json_object_set_new(o, "prepare_next_at", json_string(pa));
        json_object_set_new(o, "activate_next_at", json_string(aa));
        json_array_append_new(ints, o);
        if (!v[JSON])
            printf("  #%d %-8s %s .. %s  key %.16s\n      next: prepare %s, activate %s\n", si.id,
                   mw_ca_slot_state_name(si.state), nb[0] ? nb : "-", na[0] ? na : "-", si.key_id,
                   pa[0] ? pa : "-", aa[0] ? aa : "-");
    }
    json_object_set_new(out, "intermediates", ints);
    rc = MW_EXIT_OK;
    if (v[JSON])
        rc = mw_cli_print_json(out);
    else
        json_decref(out);
    mw_ca_free(ca);
    return rc;
}

/* ---------------------------------------------------------------- rotate */

static void rotate_usage(FILE *f)
{
    fprintf(f, "usage: meshward ca rotate --config CA.yaml [--prepare] [--activate]\n"
               "                          [--pin-file F|--pin-env VAR]\n"
               "\n"
               "Applies SPIRE's thresholds to the active intermediate now: prepares the next one\n"
               "when min(life/2, 30d) or less is left, activates it at min(life/6, 7d). --prepare\n"
               "and --activate force the step. Run it from cron or let `ca serve` do it. The\n"
               "root key must be online (file or token).\n");
}

static int cmd_rotate(int argc, char **argv)
{
    enum { CONF, PREP, ACT, PINF, PINE };
    static const struct option opts[] = {
        {"config", required_argument, NULL, MW_CLI_OPT + CONF},
        {"prepare", no_argument, NULL, MW_CLI_OPT + PREP},
        {"activate", no_argument, NULL, MW_CLI_OPT + ACT},
        {"pin-file", required_argument, NULL, MW_CLI_OPT + PINF},
        {"pin-env", required_argument, NULL, MW_CLI_OPT + PINE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mw_cli_opts p;
    int rc = mw_cli_parse_opts(argc, argv, opts, "ca rotate", rotate_usage, &p);
    if (rc >= 0)
        return rc;
    const char **v = p.values;
    if (v[CONF] == NULL || p.rest != argc) {
        rotate_usage(stderr);
        return MW_EXIT_USAGE;
    }
    struct mw_ca *ca = NULL;
    if (mw_failed(mw_ca_open(v[CONF], v[PINF], v[PINE], &ca)))
        return fail("ca rotate");
    enum mw_ca_rotation done;
    mw_result r = mw_ca_rotate(ca, NULL, v[PREP] != NULL, v[ACT] != NULL, &done);
    if (mw_ok(r))
        printf("%s\n", done == MW_CA_ROTATE_NONE       ? "nothing to do"
                       : done == MW_CA_ROTATE_PREPARED ? "prepared the next intermediate"
                                                       : "activated the next intermediate");
    rc = mw_ok(r) ? MW_EXIT_OK : fail("ca rotate");
    mw_ca_free(ca);
    return rc;
}

/* ---------------------------------------------------------------- offline root */

static void sign_usage(FILE *f)
{
    fprintf(f, "usage: meshward ca sign-intermediate --config ROOT-CA.yaml --csr FILE [--ttl D]\n"
               "                                     [--out FILE]\n"
               "\n"
               "With the root of this CA, signs an intermediate CSR made by `ca init --csr`\n"
               "(same trust domain) and prints the certificate as PEM.\n");
}

static int cmd_sign(int argc, char **argv)
{
    enum { CONF, CSR, TTL, OUT, PINF, PINE };
    static const struct option opts[] = {
        {"config", required_argument, NULL, MW_CLI_OPT + CONF},
        {"csr", required_argument, NULL, MW_CLI_OPT + CSR},
        {"ttl", required_argument, NULL, MW_CLI_OPT + TTL},
        {"out", required_argument, NULL, MW_CLI_OPT + OUT},
        {"pin-file", required_argument, NULL, MW_CLI_OPT + PINF},
        {"pin-env", required_argument, NULL, MW_CLI_OPT + PINE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mw_cli_opts p;
    int rc = mw_cli_parse_opts(argc, argv, opts, "ca sign-intermediate", sign_usage, &p);
    if (rc >= 0)
        return rc;
    const char **v = p.values;
    if (v[CONF] == NULL || v[CSR] == NULL || p.rest != argc) {
        sign_usage(stderr);
        return MW_EXIT_USAGE;
    }
    int64_t ttl = 0;
    if (v[TTL] != NULL && mw_failed(duration(v[TTL], "--ttl", &ttl))) {
        fprintf(stderr, "meshward: ca sign-intermediate: %s\n", mw_error_msg());
        return MW_EXIT_USAGE;
    }
    struct mw_dynbuf csr, pem;
    mw_dynbuf_init(&csr, MW_CA_CSR_MAX * 2);
    mw_dynbuf_init(&pem, 1 << 16);
    struct mw_ca *ca = NULL;
    mw_result r = read_csr(v[CSR], &csr);
    if (mw_ok(r))
        r = mw_ca_open(v[CONF], v[PINF], v[PINE], &ca);
    if (mw_ok(r))
        r = mw_ca_sign_intermediate(ca, mw_dynbuf_slice(&csr), ttl, NULL, &pem);
    if (mw_ok(r)) {
        if (v[OUT] != NULL)
            r = mw_file_write_atomic(v[OUT], mw_dynbuf_slice(&pem), 0644);
        else
            fwrite(pem.p, 1, pem.n, stdout);
    }
    rc = mw_ok(r) ? MW_EXIT_OK : fail("ca sign-intermediate");
    mw_ca_free(ca);
    mw_dynbuf_free(&csr);
    mw_dynbuf_free(&pem);
    return rc;
}

static void import_usage(FILE *f)
{
    fprintf(f, "usage: meshward ca import-intermediate --config CA.yaml --cert FILE --root FILE\n"
               "\n"
               "Installs the intermediate certificate signed for the pending CSR of `ca init\n"
               "--csr`, with the root that signed it: checks that it carries the pending key,\n"
               "is a CA and verifies under the root; then writes the bundle and activates it.\n");
}

static int cmd_import(int argc, char **argv)
{
    enum { CONF, CERT, ROOT, PINF, PINE };
    static const struct option opts[] = {
        {"config", required_argument, NULL, MW_CLI_OPT + CONF},
        {"cert", required_argument, NULL, MW_CLI_OPT + CERT},
        {"root", required_argument, NULL, MW_CLI_OPT + ROOT},
        {"pin-file", required_argument, NULL, MW_CLI_OPT + PINF},
        {"pin-env", required_argument, NULL, MW_CLI_OPT + PINE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mw_cli_opts p;
    int rc = mw_cli_parse_opts(argc, argv, opts, "ca import-intermediate", import_usage, &p);
    if (rc >= 0)
        return rc;
    const char **v = p.values;
    if (v[CONF] == NULL || v[CERT] == NULL || v[ROOT] == NULL || p.rest != argc) {
        import_usage(stderr);
        return MW_EXIT_USAGE;
    }
    struct mw_dynbuf cert, root;
    mw_dynbuf_init(&cert, 1 << 20);
    mw_dynbuf_init(&root, 1 << 20);
    struct mw_ca *ca = NULL;
    mw_result r = mw_file_read(v[CERT], 1 << 20, &cert);
    if (mw_ok(r))
        r = mw_file_read(v[ROOT], 1 << 20, &root);
    if (mw_ok(r))
        r = mw_ca_open(v[CONF], v[PINF], v[PINE], &ca);
    if (mw_ok(r))
        r = mw_ca_import_intermediate(ca, mw_dynbuf_slice(&cert), mw_dynbuf_slice(&root), NULL);
    if (mw_ok(r))
        printf("installed the intermediate; the CA can issue\n");
    rc = mw_ok(r) ? MW_EXIT_OK : fail("ca import-intermediate");
    mw_ca_free(ca);
    mw_dynbuf_free(&cert);
    mw_dynbuf_free(&root);
    return rc;
}

/* ---------------------------------------------------------------- dispatch */

static void ca_usage(FILE *f)
{
    fprintf(f, "usage: meshward ca <command> [options]\n"
               "\n"
               "The mesh CA.\n"
               "\n"
               "commands:\n"
               "  init                 make a root and intermediate (or an intermediate CSR)\n"
               "  issue                issue an X.509-SVID for a CSR, offline\n"
               "  info                 show the CA and its intermediates\n"
               "  rotate               prepare/activate the next intermediate (SPIRE thresholds)\n"
               "  sign-intermediate    sign an intermediate CSR with this CA's root\n"
               "  import-intermediate  install an intermediate signed by an offline root\n"
               "  token                join tokens: create, list\n"
               "  artifact             admitted artifacts: add, list, remove\n"
               "  audit                run the issuance monitor's rules over a log\n"
               "  serve                the CA service over HTTPS (POST /v1/svid, GET /v1/bundle)\n"
               "  request              ask a CA service for an X.509-SVID\n"
               "\n"
               "Run 'meshward ca <command> --help' for a command's options.\n");
}

int mw_cmd_ca(int argc, char **argv)
{
    static const struct mw_cli_sub subs[] = {
        {"init", cmd_init},
        {"issue", cmd_issue},
        {"info", cmd_info},
        {"rotate", cmd_rotate},
        {"sign-intermediate", cmd_sign},
        {"import-intermediate", cmd_import},
        {"token", mw_cmd_ca_token},
        {"artifact", mw_cmd_ca_artifact},
        {"audit", mw_cmd_ca_audit},
        {"serve", mw_cmd_ca_serve},
        {"request", mw_cmd_ca_request},
    };
    return mw_cli_dispatch(argc, argv, "ca", ca_usage, subs, MW_ARRAY_LEN(subs));
}
