#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf_internal.h"

const struct mw_conf_limits mw_conf_default_limits = {
    .max_bytes = 16u << 20,
    .max_depth = 64,
    .max_nodes = 1000000,
    .max_scalar = 1u << 20,
    .max_docs = 10000,
};

struct mw_conf_limits conf_limits_resolve(const struct mw_conf_limits *limits)
{
    const struct mw_conf_limits *d = &mw_conf_default_limits;
    if (limits == NULL)
        return *d;
    struct mw_conf_limits l = *limits;
    /* A zero field is "not set": a limit of zero would refuse every input. */
    if (l.max_bytes == 0)
        l.max_bytes = d->max_bytes;
    if (l.max_depth == 0)
        l.max_depth = d->max_depth;
    if (l.max_nodes == 0)
        l.max_nodes = d->max_nodes;
    if (l.max_scalar == 0)
        l.max_scalar = d->max_scalar;
    if (l.max_docs == 0)
        l.max_docs = d->max_docs;
    return l;
}

/* ---------------------------------------------------------------- arena */

#define CONF_ARENA_BLOCK (64u << 10)
#define CONF_ALIGN       alignof(max_align_t)

struct conf_arena_block {
    struct conf_arena_block *next;
    size_t used;
    size_t cap;
    alignas(max_align_t) unsigned char data[];
};

void *conf_alloc(struct conf_arena *a, size_t n)
{
    if (n > SIZE_MAX - CONF_ALIGN - sizeof(struct conf_arena_block)) {
        mw_error_set(MW_E_NOMEM, "allocation of %zu bytes is too large", n);
        return NULL;
    }
    n = (n + CONF_ALIGN - 1) & ~(CONF_ALIGN - 1);
    struct conf_arena_block *b = a->head;
    if (b != NULL && b->cap - b->used >= n) {
        void *p = b->data + b->used;
        b->used += n;
        return p;
    }
    size_t cap = n > CONF_ARENA_BLOCK / 4 ? n : CONF_ARENA_BLOCK;
    struct conf_arena_block *nb = malloc(sizeof(*nb) + cap);
    if (nb == NULL) {
        mw_error_set(MW_E_NOMEM, "out of memory allocating %zu bytes", cap);
        return NULL;
    }
    nb->used = n;
    nb->cap = cap;
    a->total += sizeof(*nb) + cap;
    /*
     * A large allocation gets a block of its own, kept behind the current
     * block so that the room left there is still used.
     */
    if (cap != CONF_ARENA_BLOCK && b != NULL) {
        nb->next = b->next;
        b->next = nb;
    } else {
        nb->next = b;
        a->head = nb;
    }
    return nb->data;
}

void conf_arena_free(struct conf_arena *a)
{
    struct conf_arena_block *b = a->head;
    while (b != NULL) {
        struct conf_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* ---------------------------------------------------------------- messages */

static void conf_escape_into(char *buf, size_t cap, const uint8_t *p, size_t n, bool quote)
{
    static const char hex[] = "0123456789abcdef";
    /* Room for one escaped byte, the "..." marker, the closing quote and the NUL. */
    const size_t reserve = 4 + 3 + 1 + 1;
    size_t o = 0;
    if (cap < reserve + 1) {
        if (cap > 0)
            buf[0] = '\0';
        return;
    }
    if (quote)
        buf[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (o + reserve > cap) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        uint8_t c = p[i];
        if (quote && (c == '"' || c == '\\')) {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    if (quote)
        buf[o++] = '"';
    buf[o] = '\0';
}

void conf_quote(char *buf, size_t cap, const uint8_t *p, size_t n)
{
    conf_escape_into(buf, cap, p, n, true);
}

void conf_escape(char *buf, size_t cap, const uint8_t *p, size_t n)
{
    conf_escape_into(buf, cap, p, n, false);
}

void conf_offset_pos(mw_slice text, size_t off, size_t *line, size_t *col)
{
    size_t l = 1, start = 0;
    if (off > text.n)
        off = text.n;
    for (size_t i = 0; i < off; i++) {
        if (text.p[i] == '\n') {
            l++;
            start = i + 1;
        }
    }
    *line = l;
    *col = off - start + 1;
}
