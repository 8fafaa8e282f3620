/*
 * YAML through libyaml's event API into a tree meshward owns.
 *
 * libyaml's document API would build its own tree first, expanding aliases
 * and holding everything before we could check a limit; with events every
 * limit is checked as the parser reaches it, and libyaml never gets further
 * than one event past the first fault.
 *
 * What is refused, beyond YAML syntax:
 *  - anchors and aliases (§3.2.2.2, §7.1): an alias makes one node appear in
 *    many places (billion laughs), and readers disagree on merging them;
 *  - duplicate mapping keys (§3.2.1.1 says keys are unique; libyaml does not
 *    check, and other readers keep the first or the last);
 *  - non-scalar ("complex", §8.2.2 "?") keys: nothing meshward reads has one;
 *  - the plain key "<<": YAML 1.1 merge keys are applied by some readers
 *    (Go's yaml.v2, which Kubernetes uses) and not by others;
 *  - every explicit tag (§6.8.2, §6.9.1), standard ones included: a tag
 *    changes how a scalar is typed (!!str 123, !!int "1") and other readers
 *    resolve non-standard tags differently; quoting says "string" already;
 *  - input that is not UTF-8 (§5.2 also allows UTF-16/32; policy files are
 *    UTF-8, and one encoding keeps byte offsets and error positions plain).
 */
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "conf/conf_internal.h"

/* An open sequence or mapping: its children are linked until it closes. */
struct yframe {
    struct mw_node *node;
    struct mw_node *head;
    struct mw_node *tail;
    size_t count;
};

struct yload {
    yaml_parser_t parser;
    mw_slice text;
    struct mw_conf_limits lim;
    struct mw_docs *docs;
    struct yframe *stack;
    size_t depth; /* open collections */
    size_t stack_cap;
    size_t nodes;
    struct mw_node *root;
    bool have_root;
};

static void yerr(struct yload *y, yaml_mark_t mark, enum mw_err code, const char *fmt, ...)
    MW_PRINTF(4, 5);

static void yerr(struct yload *y, yaml_mark_t mark, enum mw_err code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r < 0)
        msg[0] = '\0';
    mw_error_set(code, "%s:%zu:%zu: %s", y->docs->name, mark.line + 1, mark.column + 1, msg);
}

/* libyaml's own error as "name:line:col: problem (context at line L)". */
static void yerr_parser(struct yload *y)
{
    yaml_parser_t *p = &y->parser;
    const char *problem = p->problem != NULL ? p->problem : "unknown YAML error";
    if (p->error == YAML_MEMORY_ERROR) {
        mw_error_set(MW_E_NOMEM, "%s: out of memory parsing YAML", y->docs->name);
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset and no mark. */
        size_t line, col;
        conf_offset_pos(y->text, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            mw_error_set(MW_E_INPUT, "%s:%zu:%zu: %s (#%X)", y->docs->name, line, col, problem,
                         (unsigned)p->problem_value);
        else
            mw_error_set(MW_E_INPUT, "%s:%zu:%zu: %s", y->docs->name, line, col, problem);
        return;
    }
    if (p->context != NULL)
        mw_error_set(MW_E_INPUT, "%s:%zu:%zu: %s (%s at line %zu)", y->docs->name,
                     p->problem_mark.line + 1, p->problem_mark.column + 1, problem, p->context,
                     p->context_mark.line + 1);
    else
        mw_error_set(MW_E_INPUT, "%s:%zu:%zu: %s", y->docs->name, p->problem_mark.line + 1,
                     p->problem_mark.column + 1, problem);
}

static MW_RESULT check_props(struct yload *y, const yaml_event_t *ev, const yaml_char_t *anchor,
                             const yaml_char_t *tag)
{
    if (anchor != NULL) {
        char q[80];
        conf_escape(q, sizeof(q), anchor, strlen((const char *)anchor));
        mw_error_set(MW_E_INPUT, "anchor &%s at %s:%zu:%zu: anchors and aliases are not allowed", q,
                     y->docs->name, ev->start_mark.line + 1, ev->start_mark.column + 1);
        return MW_FAILURE;
    }
    /* Even the non-specific "!" (§6.9.1), which libyaml marks implicit: it forces a string. */
    if (tag != NULL) {
        static const char core[] = "tag:yaml.org,2002:";
        const char *t = (const char *)tag;
        size_t tlen = strlen(t);
        char q[80];
        bool core_tag = tlen > sizeof(core) - 1 && memcmp(t, core, sizeof(core) - 1) == 0;
        if (core_tag)
            conf_escape(q, sizeof(q), tag + sizeof(core) - 1, tlen - (sizeof(core) - 1));
        else
            conf_escape(q, sizeof(q), tag, tlen);
        yerr(y, ev->start_mark, MW_E_UNSUPPORTED,
             "explicit tag %s%s is not allowed (meshward reads untagged YAML; quote a value to "
             "make it a string)",
             core_tag ? "!!" : "", q);
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

static MW_RESULT new_node(struct yload *y, const yaml_event_t *ev, enum mw_node_kind kind,
                          struct mw_node **out)
{
    if (y->nodes >= y->lim.max_nodes) {
        yerr(y, ev->start_mark, MW_E_LIMIT, "more than %zu nodes", y->lim.max_nodes);
        return MW_FAILURE;
    }
    struct mw_node *n = conf_alloc(&y->docs->arena, sizeof(*n));
    if (n == NULL)
        return MW_FAILURE;
    memset(n, 0, sizeof(*n));
    n->file = y->docs->name;
    n->line = ev->start_mark.line + 1;
    n->col = ev->start_mark.column + 1;
    n->seq = y->nodes++;
    n->kind = (uint8_t)kind;
    *out = n;
    return MW_SUCCESS;
}

/* The open mapping, when the next node is one of its keys. */
static struct yframe *key_position(struct yload *y)
{
    if (y->depth == 0)
        return NULL;
    struct yframe *f = &y->stack[y->depth - 1];
    if (f->node->kind == MW_NODE_MAP && f->count % 2 == 0)
        return f;
    return NULL;
}

static void attach(struct yload *y, struct mw_node *n)
{
    if (y->depth == 0) {
        y->root = n;
        y->have_root = true;
        return;
    }
    struct yframe *f = &y->stack[y->depth - 1];
    if (f->tail != NULL)
        f->tail->next = n;
    else
        f->head = n;
    f->tail = n;
    f->count++;
}

static MW_RESULT on_scalar(struct yload *y, const yaml_event_t *ev)
{
    MW_GUARD(check_props(y, ev, ev->data.scalar.anchor, ev->data.scalar.tag));
    size_t len = ev->data.scalar.length;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (len > y->lim.max_scalar) {
        yerr(y, ev->start_mark, MW_E_LIMIT, "scalar of %zu bytes is longer than the limit of %zu",
             len, y->lim.max_scalar);
        return MW_FAILURE;
    }
    /* "---" and nothing else: libyaml gives an empty plain scalar; keep the slot, not a node. */
    if (y->depth == 0 && plain && len == 0) {
        y->root = NULL;
        y->have_root = true;
        return MW_SUCCESS;
    }
    if (key_position(y) != NULL && plain && len == 2 &&
        memcmp(ev->data.scalar.value, "<<", 2) == 0) {
        yerr(y, ev->start_mark, MW_E_UNSUPPORTED,
             "merge key << is not allowed (YAML 1.1 merges are applied by some readers and not "
             "others; quote it if it is meant as text)");
        return MW_FAILURE;
    }
    struct mw_node *n;
    MW_GUARD(new_node(y, ev, MW_NODE_SCALAR, &n));
    char *p = conf_alloc(&y->docs->arena, len + 1);
    if (p == NULL)
        return MW_FAILURE;
    if (len > 0)
        memcpy(p, ev->data.scalar.value, len);
    p[len] = '\0';
    n->u.scalar.p = p;
    n->u.scalar.n = len;
    n->style = plain ? MW_SCALAR_PLAIN : MW_SCALAR_QUOTED;
    attach(y, n);
    return MW_SUCCESS;
}

static MW_RESULT on_open(struct yload *y, const yaml_event_t *ev, enum mw_node_kind kind)
{
    bool map = kind == MW_NODE_MAP;
    MW_GUARD(check_props(y, ev,
                         map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor,
                         map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag));
    if (key_position(y) != NULL) {
        yerr(y, ev->start_mark, MW_E_UNSUPPORTED,
             "mapping key is a %s; only scalar keys are allowed", map ? "mapping" : "sequence");
        return MW_FAILURE;
    }
    if (y->depth >= y->lim.max_depth) {
        yerr(y, ev->start_mark, MW_E_LIMIT, "nesting deeper than %zu", y->lim.max_depth);
        return MW_FAILURE;
    }
    struct mw_node *n;
    MW_GUARD(new_node(y, ev, kind, &n));
    if (y->depth == y->stack_cap) {
        size_t cap = y->stack_cap == 0 ? 16 : y->stack_cap * 2;
        if (cap > y->lim.max_depth)
            cap = y->lim.max_depth;
        struct yframe *s = realloc(y->stack, cap * sizeof(*s));
        if (s == NULL)
            MW_BAIL(MW_E_NOMEM, "%s: out of memory", y->docs->name);
        y->stack = s;
        y->stack_cap = cap;
    }
    y->stack[y->depth++] = (struct yframe){.node = n};
    return MW_SUCCESS;
}

static bool same_text(const struct mw_node *x, const struct mw_node *y)
{
    return x->u.scalar.n == y->u.scalar.n &&
           (x->u.scalar.n == 0 || memcmp(x->u.scalar.p, y->u.scalar.p, x->u.scalar.n) == 0);
}

static int key_cmp(const void *a, const void *b)
{
    const struct mw_node *x = *(const struct mw_node *const *)a;
    const struct mw_node *y = *(const struct mw_node *const *)b;
    if (x->u.scalar.n != y->u.scalar.n)
        return x->u.scalar.n < y->u.scalar.n ? -1 : 1;
    int c = x->u.scalar.n > 0 ? memcmp(x->u.scalar.p, y->u.scalar.p, x->u.scalar.n) : 0;
    if (c != 0)
        return c;
    return x->seq < y->seq ? -1 : (x->seq > y->seq ? 1 : 0);
}

/*
 * Sorting makes the check O(n log n): a mapping of many keys must not cost
 * quadratic time. Of all repeated keys the one reported is the earliest
 * repetition in the file, so the message does not depend on the sort.
 */
static MW_RESULT check_dup_keys(struct yload *y, struct mw_node *map)
{
    size_t pairs = map->u.coll.n / 2;
    if (pairs < 2)
        return MW_SUCCESS;
    struct mw_node **keys = malloc(pairs * sizeof(*keys));
    if (keys == NULL)
        MW_BAIL(MW_E_NOMEM, "%s: out of memory", y->docs->name);
    for (size_t i = 0; i < pairs; i++)
        keys[i] = map->u.coll.kids[2 * i];
    qsort(keys, pairs, sizeof(*keys), key_cmp);
    /* Equal keys are now adjacent, each run in document order. */
    const struct mw_node *first = NULL, *dup = NULL;
    for (size_t i = 1; i < pairs; i++) {
        const struct mw_node *a = keys[i - 1], *b = keys[i];
        if (!same_text(a, b))
            continue;
        if (dup == NULL || b->seq < dup->seq) {
            first = a;
            dup = b;
        }
        while (i + 1 < pairs && same_text(a, keys[i + 1]))
            i++;
    }
    free(keys);
    if (dup != NULL) {
        char q[96];
        conf_quote(q, sizeof(q), (const uint8_t *)dup->u.scalar.p, dup->u.scalar.n);
        mw_error_set(MW_E_INPUT, "%s:%zu:%zu: duplicate key %s (first at line %zu)", dup->file,
                     dup->line, dup->col, q, first->line);
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

static MW_RESULT on_close(struct yload *y)
{
    if (y->depth == 0)
        MW_BAIL(MW_E_INTERNAL, "%s: libyaml closed a collection that is not open", y->docs->name);
    struct yframe f = y->stack[--y->depth];
    struct mw_node *n = f.node;
    if (f.count > 0) {
        if (f.count > SIZE_MAX / sizeof(*n->u.coll.kids))
            MW_BAIL(MW_E_NOMEM, "%s: too many children", y->docs->name);
        struct mw_node **kids = conf_alloc(&y->docs->arena, f.count * sizeof(*kids));
        if (kids == NULL)
            return MW_FAILURE;
        size_t i = 0;
        for (struct mw_node *c = f.head; c != NULL; c = c->next)
            kids[i++] = c;
        n->u.coll.kids = kids;
    }
    n->u.coll.n = f.count;
    if (n->kind == MW_NODE_MAP) {
        if (f.count % 2 != 0)
            MW_BAIL(MW_E_INTERNAL, "%s: libyaml gave a mapping an odd number of nodes",
                    y->docs->name);
        MW_GUARD(check_dup_keys(y, n));
    }
    attach(y, n);
    return MW_SUCCESS;
}

static MW_RESULT on_doc_start(struct yload *y, const yaml_event_t *ev)
{
    if (y->docs->n >= y->lim.max_docs) {
        yerr(y, ev->start_mark, MW_E_LIMIT, "more than %zu documents", y->lim.max_docs);
        return MW_FAILURE;
    }
    y->root = NULL;
    y->have_root = false;
    return MW_SUCCESS;
}

static MW_RESULT on_doc_end(struct yload *y)
{
    struct mw_docs *d = y->docs;
    if (d->n == d->cap) {
        size_t cap = d->cap == 0 ? 4 : d->cap * 2;
        struct mw_node **r = realloc(d->roots, cap * sizeof(*r));
        if (r == NULL)
            MW_BAIL(MW_E_NOMEM, "%s: out of memory", d->name);
        d->roots = r;
        d->cap = cap;
    }
    d->roots[d->n++] = y->root;
    y->root = NULL;
    y->have_root = false;
    return MW_SUCCESS;
}

static MW_RESULT on_event(struct yload *y, const yaml_event_t *ev, bool *done)
{
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_NO_EVENT:
        return MW_SUCCESS;
    case YAML_STREAM_END_EVENT:
        *done = true;
        return MW_SUCCESS;
    case YAML_DOCUMENT_START_EVENT:
        return on_doc_start(y, ev);
    case YAML_DOCUMENT_END_EVENT:
        return on_doc_end(y);
    case YAML_ALIAS_EVENT: {
        const char *a = (const char *)ev->data.alias.anchor;
        char q[80];
        conf_escape(q, sizeof(q), (const uint8_t *)a, a != NULL ? strlen(a) : 0);
        mw_error_set(MW_E_INPUT, "alias *%s at %s:%zu:%zu: anchors and aliases are not allowed", q,
                     y->docs->name, ev->start_mark.line + 1, ev->start_mark.column + 1);
        return MW_FAILURE;
    }
    case YAML_SCALAR_EVENT:
        return on_scalar(y, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_open(y, ev, MW_NODE_SEQ);
    case YAML_MAPPING_START_EVENT:
        return on_open(y, ev, MW_NODE_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_close(y);
    }
    MW_BAIL(MW_E_INTERNAL, "%s: unknown libyaml event %d", y->docs->name, (int)ev->type);
}

mw_result mw_yaml_load(mw_slice text, const char *name, const struct mw_conf_limits *limits,
                       struct mw_docs **out)
{
    *out = NULL;
    if (name == NULL)
        name = "<yaml>";
    struct yload y = {.text = text, .lim = conf_limits_resolve(limits)};
    if (text.n > y.lim.max_bytes)
        MW_BAIL(MW_E_LIMIT, "%s: %zu bytes is more than the limit of %zu", name, text.n,
                y.lim.max_bytes);
    struct mw_docs *docs = calloc(1, sizeof(*docs));
    if (docs == NULL)
        MW_BAIL(MW_E_NOMEM, "%s: out of memory", name);
    size_t name_len = strlen(name);
    docs->name = malloc(name_len + 1);
    if (docs->name == NULL) {
        free(docs);
        MW_BAIL(MW_E_NOMEM, "%s: out of memory", name);
    }
    memcpy(docs->name, name, name_len + 1);
    y.docs = docs;

    if (!yaml_parser_initialize(&y.parser)) {
        mw_docs_free(docs);
        MW_BAIL(MW_E_NOMEM, "%s: out of memory starting the YAML parser", name);
    }
    /* libyaml reads (const unsigned char *) and never writes; an empty input needs a pointer. */
    static const unsigned char empty[1];
    yaml_parser_set_input_string(&y.parser, text.n > 0 ? text.p : empty, text.n);
    yaml_parser_set_encoding(&y.parser, YAML_UTF8_ENCODING);

    bool done = false, ok = true;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&y.parser, &ev)) {
            yerr_parser(&y);
            ok = false;
            break;
        }
        mw_result r = on_event(&y, &ev, &done);
        yaml_event_delete(&ev);
        if (mw_failed(r)) {
            ok = false;
            break;
        }
    }
    yaml_parser_delete(&y.parser);
    free(y.stack);
    if (!ok) {
        mw_docs_free(docs);
        return MW_FAILURE;
    }
    *out = docs;
    return MW_SUCCESS;
}

mw_result mw_yaml_load_file(const char *path, const struct mw_conf_limits *limits,
                            struct mw_docs **out)
{
    *out = NULL;
    struct mw_conf_limits lim = conf_limits_resolve(limits);
    struct mw_dynbuf buf;
    mw_dynbuf_init(&buf, lim.max_bytes);
    if (mw_failed(mw_file_read(path, lim.max_bytes, &buf))) {
        mw_dynbuf_free(&buf);
        return MW_FAILURE;
    }
    mw_result r = mw_yaml_load(mw_dynbuf_slice(&buf), path, &lim, out);
    mw_dynbuf_free(&buf);
    return r;
}

void mw_docs_free(struct mw_docs *docs)
{
    if (docs == NULL)
        return;
    conf_arena_free(&docs->arena);
    free(docs->roots);
    free(docs->name);
    free(docs);
}
