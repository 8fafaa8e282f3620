/* meshward log: keys, appends, offline verification and proofs for a tiled Merkle log. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <meshward/ca_auth.h>
#include <meshward/tlog.h>

#include "cli/cli.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: meshward log <command> [options]\n\n"
        "A tamper-evident log: RFC 6962 Merkle tree stored as C2SP tlog-tiles, with a\n"
        "checkpoint signed as a C2SP signed note (Ed25519).\n\n"
        "commands:\n"
        "  keygen --name NAME --out DIR        make a log key: DIR/log.key (0600), DIR/log.pub\n"
        "  append DIR --key KEY --origin ORIGIN [--batch N] [FILE]\n"
        "                                      append each line of FILE (or stdin) as an entry;\n"
        "                                      prints 'ack INDEX' once each entry is durable\n"
        "  verify DIR --pub PUB [--since CHECKPOINT] [--json]\n"
        "                                      recompute the tree from the tiles, check the\n"
        "                                      checkpoint signature and, with --since, that an\n"
        "                                      earlier checkpoint is a prefix of this log\n"
        "  prove DIR INDEX --pub PUB [--json]  print entry INDEX and its inclusion proof\n"
        "  prove DIR --serial HEX [--serial HEX ...] --pub PUB [--json]\n"
        "                                      find the issuance records of these certificate\n"
        "                                      serials and print each with its inclusion proof;\n"
        "                                      exit 1 when one is not in the log\n");
}

static int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = NULL, *out = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "n:o:h", opts, NULL)) != -1) {
        if (c == 'n')
            name = optarg;
        else if (c == 'o')
            out = optarg;
        else if (c == 'h') {
            usage(stdout);
            return MW_EXIT_OK;
        } else
            return MW_EXIT_USAGE;
    }
    if (name == NULL || out == NULL || optind != argc) {
        fprintf(stderr, "meshward: log keygen needs --name NAME and --out DIR\n");
        return MW_EXIT_USAGE;
    }
    struct mw_dynbuf sk, vk;
    mw_dynbuf_init_secure(&sk, 1024);
    mw_dynbuf_init(&vk, 1024);
    char path[4096];
    int rc = MW_EXIT_OK;
    if (mw_failed(mw_note_keygen(name, &sk, &vk)) || mw_failed(mw_dynbuf_add_byte(&sk, '\n')) ||
        mw_failed(mw_dynbuf_add_byte(&vk, '\n'))) {
        rc = mw_cli_report_error("log keygen");
    } else {
        mkdir(out, 0700);
        snprintf(path, sizeof(path), "%s/log.key", out);
        if (mw_failed(mw_file_write_atomic(path, mw_dynbuf_slice(&sk), 0600)))
            rc = mw_cli_report_error(NULL);
        snprintf(path, sizeof(path), "%s/log.pub", out);
        if (rc == MW_EXIT_OK && mw_failed(mw_file_write_atomic(path, mw_dynbuf_slice(&vk), 0644)))
            rc = mw_cli_report_error(NULL);
        if (rc == MW_EXIT_OK)
            printf("%s", mw_dynbuf_cstr(&vk));
    }
    mw_dynbuf_free(&sk);
    mw_dynbuf_free(&vk);
    return rc;
}

static int append_batch(struct mw_tlog *log, mw_slice *batch, size_t n)
{
    uint64_t first;
    if (mw_failed(mw_tlog_append(log, batch, n, &first)))
        return mw_cli_report_error("log append");
    /* Acknowledge only now: the checkpoint covering these entries is on disk. */
    for (size_t i = 0; i < n; i++)
        printf("ack %" PRIu64 "\n", first + i);
    fflush(stdout);
    return MW_EXIT_OK;
}

static int cmd_append(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"origin", required_argument, NULL, 'o'},
        {"batch", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key = NULL, *origin = NULL;
    uint64_t batch = 1;
    int c;
    while ((c = getopt_long(argc, argv, "k:o:b:h", opts, NULL)) != -1) {
        if (c == 'k') {
            key = optarg;
        } else if (c == 'o') {
            origin = optarg;
        } else if (c == 'b') {
            if (mw_failed(mw_parse_u64(mw_slice_cstr(optarg), 1, 4096, "--batch", &batch))) {
                (void)mw_cli_report_error(NULL);
                return MW_EXIT_USAGE;
            }
        } else if (c == 'h') {
            usage(stdout);
            return MW_EXIT_OK;
        } else {
            return MW_EXIT_USAGE;
        }
    }
    if (key == NULL || origin == NULL || argc - optind < 1 || argc - optind > 2) {
        fprintf(stderr, "meshward: log append needs DIR, --key KEY and --origin ORIGIN\n");
        return MW_EXIT_USAGE;
    }
    const char *dir = argv[optind];
    FILE *in = stdin;
    if (argc - optind == 2 && strcmp(argv[optind + 1], "-") != 0) {
        in = fopen(argv[optind + 1], "r");
        if (in == NULL) {
            fprintf(stderr, "meshward: %s: cannot open\n", argv[optind + 1]);
            return MW_EXIT_IO;
        }
    }
    struct mw_dynbuf sk;
    mw_dynbuf_init_secure(&sk, 4096);
    struct mw_note_signer *signer = NULL;
    struct mw_tlog *log = NULL;
    int rc = mw_cli_read_key_text(key, true, 4096, NULL, &sk);
    if (rc == MW_EXIT_OK && mw_failed(mw_note_signer_new(mw_dynbuf_slice(&sk), &signer)))
        rc = mw_cli_report_error(key);
    mw_dynbuf_free(&sk);
    if (rc == MW_EXIT_OK && mw_failed(mw_tlog_open(dir, origin, signer, &log)))
        rc = mw_cli_report_error("log append");

    char *lines[4096];
    mw_slice entries[4096];
    size_t n = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (rc == MW_EXIT_OK && (len = getline(&line, &cap, in)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        lines[n] = strdup(line);
        if (lines[n] == NULL) {
            rc = MW_EXIT_IO;
            break;
        }
        entries[n] = mw_slice_make(lines[n], (size_t)len);
        n++;
        /* A line-at-a-time reader acknowledges at each batch or when input pauses. */
        if (n == batch) {
            rc = append_batch(log, entries, n);
            for (size_t i = 0; i < n; i++)
                free(lines[i]);
            n = 0;
        }
    }
    if (rc == MW_EXIT_OK && n > 0)
        rc = append_batch(log, entries, n);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(line);
    if (in != stdin)
        fclose(in);
    mw_tlog_close(log);
    mw_note_signer_free(signer);
    return rc;
}

static void print_hash_b64(const char *label, const mw_tlog_hash *h)
{
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 128);
    if (mw_ok(mw_b64_encode(mw_slice_make(h->b, MW_TLOG_HASH_LEN), MW_B64_STD, &b)))
        printf("%s%s\n", label, mw_dynbuf_cstr(&b));
    mw_dynbuf_free(&b);
}

static int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"pub", required_argument, NULL, 'p'},
        {"since", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *pub = NULL, *since = NULL;
    bool json = false;
    int c;
    while ((c = getopt_long(argc, argv, "p:s:jh", opts, NULL)) != -1) {
        if (c == 'p') {
            pub = optarg;
        } else if (c == 's') {
            since = optarg;
        } else if (c == 'j') {
            json = true;
        } else if (c == 'h') {
            usage(stdout);
            return MW_EXIT_OK;
        } else {
            return MW_EXIT_USAGE;
        }
    }
    if (pub == NULL || argc - optind != 1) {
        fprintf(stderr, "meshward: log verify needs DIR and --pub PUB\n");
        return MW_EXIT_USAGE;
    }
    struct mw_note_verifier *v = NULL;
    int rc = mw_cli_load_verifier(pub, &v);
    struct mw_dynbuf old;
    mw_dynbuf_init(&old, 1 << 16);
    mw_slice since_note;
    if (rc == MW_EXIT_OK && since != NULL) {
        if (mw_failed(mw_file_read(since, 1 << 16, &old)))
            rc = mw_cli_report_error(NULL);
        since_note = mw_dynbuf_slice(&old);
    }
    struct mw_tlog_report rep;
    if (rc == MW_EXIT_OK) {
        if (mw_failed(mw_tlog_verify_dir(argv[optind], v, since ? &since_note : NULL, &rep))) {
            if (json) {
                struct mw_dynbuf o;
                mw_dynbuf_init(&o, 4096);
                if (mw_ok(mw_dynbuf_add_cstr(&o, "{\"verified\":false,\"reason\":")) &&
                    mw_ok(mw_dynbuf_add_json_str(&o, mw_slice_cstr(mw_error_msg()))) &&
                    mw_ok(mw_dynbuf_add_cstr(&o, "}")))
                    printf("%s\n", mw_dynbuf_cstr(&o));
                mw_dynbuf_free(&o);
            }
            rc = mw_cli_report_error("log verify");
        } else if (json) {
            struct mw_dynbuf o;
            mw_dynbuf_init(&o, 4096);
            if (mw_ok(mw_dynbuf_add_cstr(&o, "{\"verified\":true,\"origin\":")) &&
                mw_ok(mw_dynbuf_add_json_str(&o, mw_slice_cstr(rep.checkpoint.origin))) &&
                mw_ok(mw_dynbuf_addf(&o,
                                     ",\"size\":%" PRIu64 ",\"entries_checked\":%" PRIu64
                                     ",\"tiles_checked\":%" PRIu64 ",\"since_size\":%" PRIu64 "}",
                                     rep.checkpoint.size, rep.entries_checked, rep.tiles_checked,
                                     rep.since_size)))
                printf("%s\n", mw_dynbuf_cstr(&o));
            mw_dynbuf_free(&o);
        } else {
            printf("log %s verifies\n", argv[optind]);
            printf("origin:  %s\n", rep.checkpoint.origin);
            printf("size:    %" PRIu64 " entries (%" PRIu64 " checked, %" PRIu64 " tiles)\n",
                   rep.checkpoint.size, rep.entries_checked, rep.tiles_checked);
            print_hash_b64("root:    ", &rep.checkpoint.root);
            if (since != NULL)
                printf("since:   the checkpoint at size %" PRIu64 " is a prefix of this log\n",
                       rep.since_size);
        }
    }
    mw_dynbuf_free(&old);
    mw_note_verifier_free(v);
    return rc;
}

/* Print one entry with its proof; false when the output cannot be built. */
static bool print_proof(uint64_t index, const struct mw_dynbuf *entry, const mw_tlog_hash *proof,
                        size_t len, const struct mw_checkpoint *cp, bool json,
                        const struct mw_dynbuf *record_json)
{
    struct mw_dynbuf o, b;
    mw_dynbuf_init(&o, 1 << 20);
    mw_dynbuf_init(&b, 1 << 18);
    bool ok;
    if (json) {
        ok = mw_ok(mw_dynbuf_addf(&o, "{\"index\":%" PRIu64 ",\"tree_size\":%" PRIu64 ",\"entry\":",
                                  index, cp->size)) &&
             mw_ok(mw_dynbuf_add_json_str(&o, mw_dynbuf_slice(entry)));
        if (ok && record_json != NULL)
            ok = mw_ok(mw_dynbuf_add_cstr(&o, ",\"record\":")) &&
                 mw_ok(mw_dynbuf_add_slice(&o, mw_dynbuf_slice(record_json)));
        ok = ok && mw_ok(mw_dynbuf_add_cstr(&o, ",\"root\":\"")) &&
             mw_ok(mw_b64_encode(mw_slice_make(cp->root.b, 32), MW_B64_STD, &o)) &&
             mw_ok(mw_dynbuf_add_cstr(&o, "\",\"proof\":["));
        for (size_t i = 0; ok && i < len; i++)
            ok = mw_ok(mw_dynbuf_add_cstr(&o, i ? ",\"" : "\"")) &&
                 mw_ok(mw_b64_encode(mw_slice_make(proof[i].b, 32), MW_B64_STD, &o)) &&
                 mw_ok(mw_dynbuf_add_byte(&o, '"'));
        ok = ok && mw_ok(mw_dynbuf_add_cstr(&o, "]}"));
        if (ok)
            printf("%s\n", mw_dynbuf_cstr(&o));
    } else {
        printf("index:     %" PRIu64 "\ntree size: %" PRIu64 "\n", index, cp->size);
        if (record_json != NULL)
            printf("record:    %s\n", mw_dynbuf_cstr(record_json));
        ok = mw_ok(mw_dynbuf_add_json_str(&b, mw_dynbuf_slice(entry)));
        if (ok)
            printf("entry:     %s\n", mw_dynbuf_cstr(&b));
        print_hash_b64("root:      ", &cp->root);
        for (size_t i = 0; i < len; i++)
            print_hash_b64("proof:     ", &proof[i]);
    }
    mw_dynbuf_free(&o);
    mw_dynbuf_free(&b);
    return ok;
}

#define MAX_SERIALS 4096

/* Lower-case hex without leading zeros ("0" for zero); false if s is not hex or too long. */
static bool normalize_serial(const char *s, char out[64])
{
    while (*s == '0' && s[1] != '\0')
        s++;
    size_t n = strlen(s);
    if (n == 0 || n >= 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        out[i] = c;
    }
    out[n] = '\0';
    return true;
}

/*
 * Scan the log for issuance records of the given serials. Each entry read is
 * verified against the signed checkpoint (mw_tlog_read_entry), so what is
 * printed is what the checkpoint commits to.
 */
static int prove_serials(const char *dir, struct mw_note_verifier *v, char (*want)[64], size_t n,
                         bool json)
{
    bool *found = calloc(n, sizeof(bool));
    if (found == NULL)
        return MW_EXIT_IO;
    struct mw_dynbuf entry, hex, rj;
    mw_dynbuf_init(&entry, MW_TLOG_MAX_ENTRY + 1);
    mw_dynbuf_init(&hex, 128);
    mw_dynbuf_init(&rj, 1 << 18);
    mw_tlog_hash proof[64];
    size_t len = 0, nfound = 0;
    struct mw_checkpoint cp = {.size = 1};
    int rc = MW_EXIT_OK;
    for (uint64_t i = 0; i < cp.size && nfound < n; i++) {
        mw_dynbuf_reset(&entry);
        if (mw_failed(mw_tlog_read_entry(dir, v, i, &entry, proof, &len, &cp))) {
            if (i == 0 && mw_error_code() == MW_E_NOTFOUND)
                break; /* an empty log */
            rc = mw_cli_report_error("log prove");
            break;
        }
        struct mw_ca_record rec;
        if (mw_failed(mw_ca_record_parse(mw_dynbuf_slice(&entry), &rec)))
            continue; /* not an issuance record: ca audit reports those */
        mw_dynbuf_reset(&hex);
        char got[64];
        if (mw_failed(mw_hex_encode(rec.serial, &hex)) ||
            !normalize_serial(mw_dynbuf_cstr(&hex), got))
            continue;
        for (size_t k = 0; k < n; k++) {
            if (found[k] || strcmp(want[k], got) != 0)
                continue;
            found[k] = true;
            nfound++;
            mw_dynbuf_reset(&rj);
            if (mw_failed(mw_ca_record_to_json(&rec, &rj)) ||
                !print_proof(i, &entry, proof, len, &cp, json, &rj))
                rc = mw_cli_report_error("log prove");
        }
    }
    for (size_t k = 0; rc == MW_EXIT_OK && k < n; k++)
        if (!found[k]) {
            fprintf(stderr,
                    "meshward: log prove: serial %s is not in the log (%" PRIu64 " entries)\n",
                    want[k], cp.size);
            rc = MW_EXIT_REJECT;
        }
    for (size_t k = 0; rc == MW_EXIT_REJECT && k < n; k++)
        if (!found[k])
            fprintf(stderr, "missing: %s\n", want[k]);
    free(found);
    mw_dynbuf_free(&entry);
    mw_dynbuf_free(&hex);
    mw_dynbuf_free(&rj);
    return rc;
}

static int cmd_prove(int argc, char **argv)
{
    static const struct option opts[] = {
        {"pub", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"serial", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *pub = NULL;
    bool json = false;
    static char serials[MAX_SERIALS][64];
    size_t nserials = 0;
    int c;
    while ((c = getopt_long(argc, argv, "p:js:h", opts, NULL)) != -1) {
        if (c == 'p') {
            pub = optarg;
        } else if (c == 'j') {
            json = true;
        } else if (c == 's') {
            if (nserials == MAX_SERIALS || !normalize_serial(optarg, serials[nserials])) {
                fprintf(stderr,
                        "meshward: log prove: --serial wants hex digits (at most %d "
                        "serials), got \"%.80s\"\n",
                        MAX_SERIALS, optarg);
                return MW_EXIT_USAGE;
            }
            nserials++;
        } else if (c == 'h') {
            usage(stdout);
            return MW_EXIT_OK;
        } else {
            return MW_EXIT_USAGE;
        }
    }
    uint64_t index = 0;
    if (pub == NULL || argc - optind != (nserials > 0 ? 1 : 2)) {
        fprintf(stderr,
                "meshward: log prove needs DIR INDEX (or DIR --serial HEX) and --pub PUB\n");
        return MW_EXIT_USAGE;
    }
    if (nserials == 0 &&
        mw_failed(mw_parse_u64(mw_slice_cstr(argv[optind + 1]), 0, UINT64_MAX, "INDEX", &index))) {
        mw_cli_report_error(NULL);
        return MW_EXIT_USAGE;
    }
    struct mw_note_verifier *v = NULL;
    int rc = mw_cli_load_verifier(pub, &v);
    if (rc == MW_EXIT_OK && nserials > 0) {
        rc = prove_serials(argv[optind], v, serials, nserials, json);
        mw_note_verifier_free(v);
        return rc;
    }
    struct mw_dynbuf entry;
    mw_dynbuf_init(&entry, MW_TLOG_MAX_ENTRY + 1);
    mw_tlog_hash proof[64];
    size_t len = 0;
    struct mw_checkpoint cp;
    if (rc == MW_EXIT_OK &&
        mw_failed(mw_tlog_read_entry(argv[optind], v, index, &entry, proof, &len, &cp)))
        rc = mw_cli_report_error("log prove");
    if (rc == MW_EXIT_OK && !print_proof(index, &entry, proof, len, &cp, json, NULL))
        rc = mw_cli_report_error("log prove");
    mw_dynbuf_free(&entry);
    mw_note_verifier_free(v);
    return rc;
}

int mw_cmd_log(int argc, char **argv)
{
    static const struct mw_cli_sub subs[] = {
        {"keygen", cmd_keygen},
        {"append", cmd_append},
        {"verify", cmd_verify},
        {"prove", cmd_prove},
    };
    return mw_cli_dispatch(argc, argv, "log", usage, subs, MW_ARRAY_LEN(subs));
}
