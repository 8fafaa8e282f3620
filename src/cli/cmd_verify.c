/*
 * `meshward verify-bundle` (the sigstore-conformance CLI protocol,
 * docs/cli_protocol.md) and `meshward verify image|policy`.
 */
#include <stdlib.h>
#include <string.h>

#include <meshward/verify.h>

#include "cli/cli.h"

#define MW_ARTIFACT_MAX  (1u << 30)
#define MW_CLI_FILE_MAX  (16u << 20)
#define DEFAULT_ROOT_ENV "MESHWARD_TRUSTED_ROOT"
#define DEFAULT_ROOT     "/etc/meshward/trusted_root.json"

static const char verify_bundle_usage[] =
    "usage: meshward verify-bundle [--staging] --bundle FILE\n"
    "           (--certificate-identity ID --certificate-oidc-issuer URL | --key PEM)\n"
    "           [--certificate-identity-regexp RE] [--certificate-oidc-issuer-regexp RE]\n"
    "           [--trusted-root FILE] FILE_OR_sha256:DIGEST\n\n"
    "Verifies one Sigstore bundle offline against a trusted_root.json (default $" DEFAULT_ROOT_ENV
    "\nor " DEFAULT_ROOT "). Exit 0 when it verifies; otherwise 1 with one line on stderr\n"
    "naming the reason (2 usage, 3 unreadable file).\n";

static const char verify_usage[] =
    "usage: meshward verify image IMAGE@sha256:DIGEST --bundle FILE --policy FILE\n"
    "                             [--trusted-root FILE] [--json]\n"
    "       meshward verify policy FILE\n\n"
    "image:  judges an image by the ImagePolicy (meshward.io/v1alpha1): signer, provenance.\n"
    "        Prints the verdict, its reason, the attestation digest and the builder id.\n"
    "        Exit 0 allowed, 1 denied or invalid, 2 usage, 3 unreadable file.\n"
    "policy: validates an ImagePolicy and explains what it requires.\n";

static const char *default_root(const char *given)
{
    if (given != NULL)
        return given;
    const char *env = getenv(DEFAULT_ROOT_ENV);
    return env != NULL && env[0] != '\0' ? env : DEFAULT_ROOT;
}

static int fail(const char *what)
{
    return mw_cli_report_error(what);
}

int mw_cmd_verify_bundle(int argc, char **argv)
{
    const char *bundle = NULL, *identity = NULL, *issuer = NULL, *key = NULL, *root = NULL;
    const char *identity_re = NULL, *issuer_re = NULL, *input = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (mw_cli_is_help(a)) {
            fputs(verify_bundle_usage, stdout);
            return MW_EXIT_OK;
        }
        if (strcmp(a, "--staging") == 0)
            continue; /* offline: the staging root comes in through --trusted-root */
        const char **slot = strcmp(a, "--bundle") == 0                           ? &bundle
                            : strcmp(a, "--certificate-identity") == 0           ? &identity
                            : strcmp(a, "--certificate-oidc-issuer") == 0        ? &issuer
                            : strcmp(a, "--certificate-identity-regexp") == 0    ? &identity_re
                            : strcmp(a, "--certificate-oidc-issuer-regexp") == 0 ? &issuer_re
                            : strcmp(a, "--key") == 0                            ? &key
                            : strcmp(a, "--trusted-root") == 0                   ? &root
                                                                                 : NULL;
        if (slot == NULL) {
            if (a[0] == '-' && a[1] == '-') {
                fprintf(stderr, "meshward: verify-bundle: unknown option %s\n", a);
                return MW_EXIT_USAGE;
            }
            if (input != NULL) {
                fprintf(stderr, "meshward: verify-bundle: more than one artifact given\n");
                return MW_EXIT_USAGE;
            }
            input = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "meshward: verify-bundle: %s needs a value\n", a);
            return MW_EXIT_USAGE;
        }
        *slot = argv[++i];
    }
    bool keyless = identity != NULL || identity_re != NULL || issuer != NULL || issuer_re != NULL;
    if (bundle == NULL || input == NULL || (key != NULL) == keyless ||
        (keyless &&
         ((identity == NULL && identity_re == NULL) || (issuer == NULL && issuer_re == NULL)))) {
        fprintf(stderr, "meshward: verify-bundle: need --bundle, an artifact, and either "
                        "--certificate-identity with --certificate-oidc-issuer or --key\n");
        return MW_EXIT_USAGE;
    }

    struct mw_dynbuf bundle_text, key_text, artifact_bytes;
    mw_dynbuf_init(&bundle_text, MW_CLI_FILE_MAX);
    mw_dynbuf_init(&key_text, 1u << 20);
    mw_dynbuf_init(&artifact_bytes, MW_ARTIFACT_MAX);
    struct mw_trust_root *tr = NULL;
    struct mw_sigstore_bundle *b = NULL;
    int rc = MW_EXIT_OK;
    struct mw_artifact art;
    struct mw_verify_policy pol = {.identity = identity,
                                   .identity_regex = identity_re,
                                   .issuer = issuer,
                                   .issuer_regex = issuer_re};
    struct mw_verify_result res;

    if (mw_failed(mw_file_read(bundle, MW_CLI_FILE_MAX, &bundle_text))) {
        rc = fail("bundle");
        goto out;
    }
    if (key != NULL) {
        if (mw_failed(mw_file_read(key, 1u << 20, &key_text))) {
            rc = fail("key");
            goto out;
        }
        pol.key_pem = mw_dynbuf_slice(&key_text);
    }
    if (strncmp(input, "sha256:", 7) == 0) {
        if (mw_failed(mw_artifact_from_digest(input, &art))) {
            rc = fail(NULL);
            goto out;
        }
    } else {
        if (mw_failed(mw_file_read(input, MW_ARTIFACT_MAX, &artifact_bytes))) {
            rc = fail("artifact");
            goto out;
        }
        mw_artifact_from_bytes(mw_dynbuf_slice(&artifact_bytes), &art);
    }
    if (mw_failed(mw_trust_root_load_file(default_root(root), &tr))) {
        rc = fail("trusted root");
        goto out;
    }
    if (mw_failed(mw_sigstore_bundle_parse(mw_dynbuf_slice(&bundle_text), bundle, &b))) {
        rc = fail(NULL);
        goto out;
    }
    if (mw_failed(mw_verify_bundle(tr, b, &art, &pol, NULL, &res))) {
        /* A bundle that fails verification is a rejection, whatever the error code. */
        fprintf(stderr, "meshward: %s: %s\n", bundle, mw_error_msg());
        rc = MW_EXIT_REJECT;
        goto out;
    }
    char when[32];
    mw_time_format(res.signed_at, when, sizeof(when));
    printf("OK: %s signed at %s by %s\n", bundle, when, res.keyed ? "the given key" : res.identity);
out:
    mw_sigstore_bundle_free(b);
    mw_trust_root_free(tr);
    mw_dynbuf_free(&bundle_text);
    mw_dynbuf_free(&key_text);
    mw_dynbuf_free(&artifact_bytes);
    return rc;
}

/* ---------------------------------------------------------------- verify image|policy */

static int verify_policy(int argc, char **argv)
{
    if (argc != 2) {
        fputs(verify_usage, stderr);
        return MW_EXIT_USAGE;
    }
    struct mw_image_policy *ip;
    if (mw_failed(mw_image_policy_load_file(argv[1], &ip)))
        return fail(NULL);
    struct mw_dynbuf text;
    mw_dynbuf_init(&text, 1u << 20);
    int rc = MW_EXIT_OK;
    if (mw_failed(mw_image_policy_explain(ip, &text)))
        rc = fail(NULL);
    else
        fputs(mw_dynbuf_cstr(&text), stdout);
    mw_dynbuf_free(&text);
    mw_image_policy_free(ip);
    return rc;
}

static void print_verdict_json(const struct mw_image_verdict *v)
{
    struct mw_dynbuf j;
    mw_dynbuf_init(&j, 1u << 16);
    mw_result r =
        mw_dynbuf_addf(&j, "{\"allowed\":%s,\"image_digest\":", v->allowed ? "true" : "false");
    const char *keys[] = {"reason", "rule", "attestation_digest", "builder_id", "identity"};
    const char *vals[] = {v->reason, v->rule, v->attestation, v->builder_id, v->identity};
    if (mw_ok(r))
        r = mw_dynbuf_add_json_str(&j, mw_slice_cstr(v->digest));
    for (size_t i = 0; i < MW_ARRAY_LEN(keys) && mw_ok(r); i++) {
        r = mw_dynbuf_addf(&j, ",\"%s\":", keys[i]);
        if (mw_ok(r))
            r = mw_dynbuf_add_json_str(&j, mw_slice_cstr(vals[i]));
    }
    if (mw_ok(r))
        r = mw_dynbuf_add_cstr(&j, "}\n");
    if (mw_ok(r))
        fputs(mw_dynbuf_cstr(&j), stdout);
    mw_dynbuf_free(&j);
}

static int verify_image(int argc, char **argv)
{
    const char *image = NULL, *bundle = NULL, *policy = NULL, *root = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            json = true;
            continue;
        }
        const char **slot = strcmp(a, "--bundle") == 0         ? &bundle
                            : strcmp(a, "--policy") == 0       ? &policy
                            : strcmp(a, "--trusted-root") == 0 ? &root
                                                               : NULL;
        if (slot == NULL) {
            if (a[0] == '-' || image != NULL) {
                fprintf(stderr, "meshward: verify image: unexpected argument %s\n", a);
                return MW_EXIT_USAGE;
            }
            image = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "meshward: verify image: %s needs a value\n", a);
            return MW_EXIT_USAGE;
        }
        *slot = argv[++i];
    }
    if (image == NULL || bundle == NULL || policy == NULL) {
        fputs(verify_usage, stderr);
        return MW_EXIT_USAGE;
    }
    struct mw_image_policy *ip = NULL;
    struct mw_trust_root *tr = NULL;
    struct mw_sigstore_bundle *b = NULL;
    struct mw_dynbuf text;
    mw_dynbuf_init(&text, MW_CLI_FILE_MAX);
    int rc = MW_EXIT_OK;
    struct mw_image_verdict v;
    if (mw_failed(mw_image_policy_load_file(policy, &ip))) {
        rc = fail(NULL);
        goto out;
    }
    if (mw_failed(mw_trust_root_load_file(default_root(root), &tr))) {
        rc = fail("trusted root");
        goto out;
    }
    if (mw_failed(mw_file_read(bundle, MW_CLI_FILE_MAX, &text))) {
        rc = fail("bundle");
        goto out;
    }
    if (mw_failed(mw_sigstore_bundle_parse(mw_dynbuf_slice(&text), bundle, &b))) {
        rc = fail(NULL);
        goto out;
    }
    if (mw_failed(mw_image_policy_evaluate(ip, tr, image, b, NULL, &v))) {
        rc = fail(NULL);
        goto out;
    }
    if (json) {
        print_verdict_json(&v);
    } else {
        printf("%s %s\n  reason: %s\n", v.allowed ? "ALLOW" : "DENY", image, v.reason);
        if (v.attestation[0] != '\0')
            printf("  attestation: %s\n", v.attestation);
        if (v.builder_id[0] != '\0')
            printf("  builder: %s\n", v.builder_id);
        if (v.identity[0] != '\0')
            printf("  signer: %s\n", v.identity);
    }
    rc = v.allowed ? MW_EXIT_OK : MW_EXIT_REJECT;
out:
    mw_sigstore_bundle_free(b);
    mw_trust_root_free(tr);
    mw_image_policy_free(ip);
    mw_dynbuf_free(&text);
    return rc;
}

int mw_cmd_verify(int argc, char **argv)
{
    if (argc < 2 || mw_cli_is_help(argv[1])) {
        fputs(verify_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? MW_EXIT_USAGE : MW_EXIT_OK;
    }
    if (strcmp(argv[1], "image") == 0)
        return verify_image(argc - 1, argv + 1);
    if (strcmp(argv[1], "policy") == 0)
        return verify_policy(argc - 1, argv + 1);
    if (strcmp(argv[1], "bundle") == 0)
        return mw_cmd_verify_bundle(argc - 1, argv + 1);
    fprintf(stderr, "meshward: verify: unknown subcommand '%s' (want image, policy or bundle)\n",
            argv[1]);
    return MW_EXIT_USAGE;
}
