/*
 * `meshward verify-bundle` (the sigstore-conformance CLI protocol,
 * docs/cli_protocol.md) and `meshward verify image|revoke|policy`.
 */
#include <stdlib.h>
#include <string.h>

#include <meshward/ca_auth.h>
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
    "                             [--trusted-root FILE] [--json] [--admit --db FILE]\n"
    "       meshward verify revoke --db FILE (--digest sha256:DIGEST\n"
    "                             | --identity SAN --issuer URL | --key-id HEX | --key PEM\n"
    "                             | --attestation-digest sha256:DIGEST) [--json]\n"
    "       meshward verify policy FILE\n\n"
    "image:  judges an image by the ImagePolicy (meshward.io/v1alpha1): signer, provenance.\n"
    "        Prints the verdict, its reason, the attestation digest and the builder id.\n"
    "        With --admit, an allowed image with SLSA provenance is recorded in the CA store\n"
    "        --db (the admitted artifacts the CA's provenance binding reads); a denied one\n"
    "        writes nothing. Exit 0 allowed (and admitted), 1 denied, not admitted or\n"
    "        invalid, 2 usage, 3 unreadable file.\n"
    "revoke: removes every admitted artifact that matches and prints the affected image\n"
    "        digests, one per line (--json: a JSON list). Exit 0, also when nothing matched.\n"
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

static mw_result add_json_field(struct mw_dynbuf *j, const char *key, const char *val)
{
    MW_GUARD(mw_dynbuf_addf(j, ",\"%s\":", key));
    return mw_dynbuf_add_json_str(j, mw_slice_cstr(val));
}

/* admit: NULL without --admit; admitted: whether a record was written. */
static void print_verdict_json(const struct mw_image_verdict *v, const char *admit_db,
                               bool admitted, const char *not_admitted)
{
    struct mw_dynbuf j;
    mw_dynbuf_init(&j, 1u << 16);
    mw_result r =
        mw_dynbuf_addf(&j, "{\"allowed\":%s,\"image_digest\":", v->allowed ? "true" : "false");
    const char *keys[] = {"reason", "rule",   "attestation_digest", "builder_id", "identity",
                          "issuer", "key_id", "source_repo",        "source_ref"};
    const char *vals[] = {v->reason, v->rule,   v->attestation, v->builder_id, v->identity,
                          v->issuer, v->key_id, v->source_repo, v->source_ref};
    if (mw_ok(r))
        r = mw_dynbuf_add_json_str(&j, mw_slice_cstr(v->digest));
    for (size_t i = 0; i < MW_ARRAY_LEN(keys) && mw_ok(r); i++)
        r = add_json_field(&j, keys[i], vals[i]);
    if (mw_ok(r) && admit_db != NULL) {
        r = mw_dynbuf_addf(&j, ",\"admitted\":%s", admitted ? "true" : "false");
        if (mw_ok(r))
            r = add_json_field(&j, "store", admit_db);
        if (mw_ok(r) && !admitted)
            r = add_json_field(&j, "not_admitted_reason", not_admitted);
    }
    if (mw_ok(r))
        r = mw_dynbuf_add_cstr(&j, "}\n");
    if (mw_ok(r))
        fputs(mw_dynbuf_cstr(&j), stdout);
    mw_dynbuf_free(&j);
}

static void print_admitted(const struct mw_ca_artifact *a, const char *db)
{
    printf("  admitted to %s:\n    image %s\n    attestation %s\n    builder %s\n", db,
           a->image_digest, a->attestation_digest, a->builder_id);
    if (a->source_repo[0] != '\0')
        printf("    source %s%s%s\n", a->source_repo, a->source_ref[0] ? " " : "", a->source_ref);
    if (a->key_id[0] != '\0')
        printf("    key %s\n", a->key_id);
    else
        printf("    signer %s (issuer %s)\n", a->signer_identity, a->signer_issuer);
    printf("    policy %s\n    trusted root %s\n", a->policy_hash, a->trusted_root_hash);
}

/*
 * --admit: write an allowed verdict into the store. Returns false (with the
 * reason in why) when nothing was written.
 */
static bool admit(const char *db, const struct mw_image_verdict *v,
                  const struct mw_image_policy *ip, const struct mw_trust_root *tr,
                  struct mw_ca_artifact *out, char *why, size_t why_len)
{
    if (!v->allowed) {
        snprintf(why, why_len, "the verdict is DENY");
        return false;
    }
    uint8_t policy[32], root[32];
    mw_image_policy_digest(ip, policy);
    mw_trust_root_digest(tr, root);
    struct mw_ca_store *s = NULL;
    mw_result r = mw_ca_store_open(db, &s);
    if (mw_ok(r))
        r = mw_verify_admit(s, v, policy, root, mw_clock_now(NULL), out);
    mw_ca_store_close(s);
    if (mw_failed(r)) {
        snprintf(why, why_len, "%s", mw_error_msg());
        return false;
    }
    return true;
}

static int verify_image(int argc, char **argv)
{
    const char *image = NULL, *bundle = NULL, *policy = NULL, *root = NULL, *db = NULL;
    bool json = false, admit_it = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            json = true;
            continue;
        }
        if (strcmp(a, "--admit") == 0) {
            admit_it = true;
            continue;
        }
        const char **slot = strcmp(a, "--bundle") == 0         ? &bundle
                            : strcmp(a, "--policy") == 0       ? &policy
                            : strcmp(a, "--trusted-root") == 0 ? &root
                            : strcmp(a, "--db") == 0           ? &db
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
    if (admit_it != (db != NULL)) {
        fprintf(stderr, "meshward: verify image: --admit and --db go together\n");
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
    struct mw_ca_artifact stored;
    char why[1200] = "";
    bool admitted = admit_it && admit(db, &v, ip, tr, &stored, why, sizeof(why));
    if (json) {
        print_verdict_json(&v, db, admitted, why);
    } else {
        printf("%s %s\n  reason: %s\n", v.allowed ? "ALLOW" : "DENY", image, v.reason);
        if (v.attestation[0] != '\0')
            printf("  attestation: %s\n", v.attestation);
        if (v.builder_id[0] != '\0')
            printf("  builder: %s\n", v.builder_id);
        if (v.key_id[0] != '\0')
            printf("  key: %s\n", v.key_id);
        else if (v.identity[0] != '\0')
            printf("  signer: %s (issuer %s)\n", v.identity, v.issuer);
        if (admitted)
            print_admitted(&stored, db);
        else if (admit_it)
            printf("  not admitted: %s; nothing written to %s\n", why, db);
    }
    rc = v.allowed && (admitted || !admit_it) ? MW_EXIT_OK : MW_EXIT_REJECT;
out:
    mw_sigstore_bundle_free(b);
    mw_trust_root_free(tr);
    mw_image_policy_free(ip);
    mw_dynbuf_free(&text);
    return rc;
}

/* ---------------------------------------------------------------- verify revoke */

static void print_revoked_json(const struct mw_dynbuf *affected)
{
    struct mw_dynbuf j;
    mw_dynbuf_init(&j, affected->n * 2 + 16);
    mw_result r = mw_dynbuf_add_cstr(&j, "[");
    size_t at = 0, k = 0;
    while (mw_ok(r) && at < affected->n) {
        const uint8_t *nl = memchr(affected->p + at, '\n', affected->n - at);
        size_t ln = nl != NULL ? (size_t)(nl - (affected->p + at)) : affected->n - at;
        if (k++ > 0)
            r = mw_dynbuf_add_cstr(&j, ",");
        if (mw_ok(r))
            r = mw_dynbuf_add_json_str(&j, mw_slice_make(affected->p + at, ln));
        at += ln + 1;
    }
    if (mw_ok(r))
        r = mw_dynbuf_add_cstr(&j, "]\n");
    if (mw_ok(r))
        fputs(mw_dynbuf_cstr(&j), stdout);
    mw_dynbuf_free(&j);
}

static int verify_revoke(int argc, char **argv)
{
    const char *db = NULL, *digest = NULL, *identity = NULL, *issuer = NULL, *key_id = NULL;
    const char *key = NULL, *attestation = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            json = true;
            continue;
        }
        const char **slot = strcmp(a, "--db") == 0                   ? &db
                            : strcmp(a, "--digest") == 0             ? &digest
                            : strcmp(a, "--identity") == 0           ? &identity
                            : strcmp(a, "--issuer") == 0             ? &issuer
                            : strcmp(a, "--key-id") == 0             ? &key_id
                            : strcmp(a, "--key") == 0                ? &key
                            : strcmp(a, "--attestation-digest") == 0 ? &attestation
                                                                     : NULL;
        if (slot == NULL) {
            fprintf(stderr, "meshward: verify revoke: unexpected argument %s\n", a);
            return MW_EXIT_USAGE;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "meshward: verify revoke: %s needs a value\n", a);
            return MW_EXIT_USAGE;
        }
        *slot = argv[++i];
    }
    int kinds = (digest != NULL) + (identity != NULL) + (key_id != NULL) + (key != NULL) +
                (attestation != NULL);
    if (db == NULL || kinds != 1 || (identity != NULL) != (issuer != NULL)) {
        fprintf(stderr, "meshward: verify revoke: need --db and exactly one of --digest, "
                        "--identity with --issuer, --key-id, --key or --attestation-digest\n");
        return MW_EXIT_USAGE;
    }
    struct mw_ca_artifact_match m = {0};
    char kid[MW_VERIFY_KEY_ID_HEX + 1];
    char what[1200];
    if (digest != NULL) {
        m = (struct mw_ca_artifact_match){.kind = MW_CA_MATCH_DIGEST, .value = digest};
        snprintf(what, sizeof(what), "image digest %s", digest);
    } else if (identity != NULL) {
        m = (struct mw_ca_artifact_match){
            .kind = MW_CA_MATCH_SIGNER, .value = identity, .issuer = issuer};
        snprintf(what, sizeof(what), "signer %s (issuer %s)", identity, issuer);
    } else if (attestation != NULL) {
        m = (struct mw_ca_artifact_match){.kind = MW_CA_MATCH_ATTESTATION, .value = attestation};
        snprintf(what, sizeof(what), "attestation %s", attestation);
    } else {
        if (key != NULL) {
            struct mw_dynbuf pem;
            mw_dynbuf_init(&pem, 1u << 20);
            mw_result r = mw_file_read(key, 1u << 20, &pem);
            if (mw_ok(r))
                r = mw_verify_key_id(mw_dynbuf_slice(&pem), kid);
            mw_dynbuf_free(&pem);
            if (mw_failed(r))
                return fail("key");
            key_id = kid;
        }
        m = (struct mw_ca_artifact_match){.kind = MW_CA_MATCH_KEY_ID, .value = key_id};
        snprintf(what, sizeof(what), "key id %s", key_id);
    }
    struct mw_ca_store *s = NULL;
    if (mw_failed(mw_ca_store_open(db, &s)))
        return fail(NULL);
    struct mw_dynbuf affected;
    mw_dynbuf_init(&affected, 64u << 20);
    size_t n = 0;
    /* No verdict cache lives in this process; a running admission gate revokes its own. */
    mw_result r = mw_verify_revoke(s, NULL, &m, &affected, &n);
    mw_ca_store_close(s);
    int rc = MW_EXIT_OK;
    if (mw_failed(r)) {
        rc = fail("verify revoke");
    } else {
        if (json)
            print_revoked_json(&affected);
        else
            fputs(mw_dynbuf_cstr(&affected), stdout);
        if (n == 0)
            fprintf(stderr, "meshward: verify revoke: nothing matched %s in %s\n", what, db);
        else
            fprintf(stderr,
                    "meshward: verify revoke: revoked %zu admitted artifact%s matching %s\n", n,
                    n == 1 ? "" : "s", what);
    }
    mw_dynbuf_free(&affected);
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
    if (strcmp(argv[1], "revoke") == 0)
        return verify_revoke(argc - 1, argv + 1);
    if (strcmp(argv[1], "bundle") == 0)
        return mw_cmd_verify_bundle(argc - 1, argv + 1);
    fprintf(stderr,
            "meshward: verify: unknown subcommand '%s' (want image, revoke, policy or bundle)\n",
            argv[1]);
    return MW_EXIT_USAGE;
}
