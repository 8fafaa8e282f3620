/*
 * Signed notes and checkpoints come from logs and witnesses we do not trust.
 * The parser must give a verdict on any bytes without reading out of bounds,
 * and must never accept a note that the trusted key did not sign.
 */
#include <stdlib.h>

#include <meshward/tlog.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char vkey[] = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mw_note_verifier *v;
    if (v == NULL && mw_failed(mw_note_verifier_new(mw_slice_cstr(vkey), &v)))
        abort();
    mw_slice in = mw_slice_make(data, size);
    mw_slice text;
    if (mw_ok(mw_note_open(in, &v, 1, &text))) {
        if (text.p != data || text.n >= size)
            abort();
    }
    struct mw_checkpoint cp;
    if (mw_ok(mw_checkpoint_parse(in, &cp))) {
        struct mw_dynbuf b;
        mw_dynbuf_init(&b, 1 << 16);
        if (mw_failed(mw_checkpoint_format(&cp, &b)))
            abort();
        mw_dynbuf_free(&b);
    }
    /* Keys are untrusted text too (configuration, witness lists). */
    struct mw_note_verifier *kv = NULL;
    if (mw_ok(mw_note_verifier_new(in, &kv)))
        mw_note_verifier_free(kv);
    return 0;
}
