/* Internal: the document tree shared by the YAML loader and the node accessors. */
#ifndef MESHWARD_CONF_INTERNAL_H
#define MESHWARD_CONF_INTERNAL_H

#include <meshward/conf.h>

/* ---------------------------------------------------------------- arena */

/*
 * Every node and scalar of a stream lives in one arena owned by its mw_docs,
 * so freeing a stream is one walk over a short list of blocks and an error
 * half way through a parse leaks nothing.
 */
struct conf_arena_block;
struct conf_arena {
    struct conf_arena_block *head;
    size_t total; /* bytes allocated from the system, for tests and limits */
};
/* NULL with an MW_E_NOMEM error set on failure. */
void *conf_alloc(struct conf_arena *a, size_t n);
void conf_arena_free(struct conf_arena *a);

/* ---------------------------------------------------------------- tree */

struct mw_node {
    const char *file;     /* the stream's name, owned by mw_docs */
    size_t line;          /* 1-based */
    size_t col;           /* 1-based, in characters as libyaml counts them */
    size_t seq;           /* creation order in the stream: ties in the duplicate-key sort */
    uint8_t kind;         /* enum mw_node_kind */
    uint8_t style;        /* enum mw_scalar_style, scalars only */
    struct mw_node *next; /* sibling link while the parent is still open */
    union {
        struct {
            char *p; /* NUL-terminated copy; n excludes the NUL */
            size_t n;
        } scalar;
        struct {
            /* Items of a sequence; key0, value0, key1, value1, ... of a mapping. */
            struct mw_node **kids;
            size_t n; /* entries in kids (twice the pair count for a mapping) */
        } coll;
    } u;
};

struct mw_docs {
    char *name;
    struct mw_node **roots; /* NULL entries for empty documents */
    size_t n;
    size_t cap;
    struct conf_arena arena;
};

/* ---------------------------------------------------------------- helpers */

/*
 * The limits to apply: mw_conf_default_limits for NULL, and the default for
 * any field that is zero.
 */
struct mw_conf_limits conf_limits_resolve(const struct mw_conf_limits *limits);

/*
 * Input bytes as a quoted, printable C string for an error message: bytes
 * outside printable ASCII become \xNN and long text is cut with "...". Error
 * text ends up on terminals and in logs; this keeps a hostile file from
 * writing escape sequences or fake log lines there.
 */
void conf_quote(char *buf, size_t cap, const uint8_t *p, size_t n);
/* The same without the quotes, for names and text that is already delimited. */
void conf_escape(char *buf, size_t cap, const uint8_t *p, size_t n);

/* 1-based line and byte column of byte offset off in text. */
void conf_offset_pos(mw_slice text, size_t off, size_t *line, size_t *col);

#endif
