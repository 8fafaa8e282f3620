/*
 * DSSE envelopes, in-toto statements (with SLSA predicates) and cosign
 * simple-signing payloads are attacker-supplied JSON. No crash, no leak; a
 * parsed statement's SLSA facts are NUL-terminated strings or NULL, and a
 * parsed simple-signing digest is exactly sha256:<64 hex>.
 */
#include <stdlib.h>
#include <string.h>

#include <meshward/verify.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw_slice in = mw_slice_make(data, size);
    struct mw_dynbuf p, t, s;
    mw_dynbuf_init(&p, 1u << 20);
    mw_dynbuf_init(&t, 1u << 16);
    mw_dynbuf_init(&s, 1u << 16);
    size_t n;
    if (mw_ok(mw_dsse_parse(in, &p, &t, &s, &n))) {
        if (n == 0)
            abort();
        struct mw_dynbuf pae;
        mw_dynbuf_init(&pae, 4u << 20);
        if (mw_failed(mw_dsse_pae(mw_dynbuf_slice(&t), mw_dynbuf_slice(&p), &pae)) ||
            pae.n < p.n + t.n + 10)
            abort();
        mw_dynbuf_free(&pae);
        struct mw_intoto *inner;
        if (mw_ok(mw_intoto_parse(mw_dynbuf_slice(&p), &inner)))
            mw_intoto_free(inner);
    }
    mw_dynbuf_free(&p);
    mw_dynbuf_free(&t);
    mw_dynbuf_free(&s);

    struct mw_intoto *st;
    if (mw_ok(mw_intoto_parse(in, &st))) {
        struct mw_slsa slsa;
        mw_intoto_slsa(st, &slsa);
        if (mw_intoto_subject_count(st) == 0 || mw_intoto_predicate_type(st) == NULL)
            abort();
        if (slsa.version != 0 && (slsa.builder_id == NULL || slsa.build_type == NULL))
            abort();
        uint8_t zero[32] = {0};
        (void)mw_intoto_has_sha256(st, zero);
        mw_intoto_free(st);
    } else if (st != NULL) {
        abort();
    }

    char digest[80], ident[256];
    if (mw_ok(mw_simplesign_parse(in, digest, sizeof(digest), ident, sizeof(ident))))
        if (strlen(digest) != 71 || strncmp(digest, "sha256:", 7) != 0)
            abort();
    return 0;
}
