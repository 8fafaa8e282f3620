/*
 * meshward conf: YAML and JSON input, loaded into bounded document trees.
 *
 * YAML goes through libyaml's event API (never its document API) into a tree
 * that meshward owns. The loader is strict where YAML is loose, because these
 * files are policy: anchors and aliases are rejected (billion-laughs and
 * "the policy you read is not the policy that applies"), duplicate mapping
 * keys are rejected (YAML 1.2 §3.2.1.1 requires unique keys; libyaml does not
 * check), and depth, node count, scalar size and input size are capped.
 * Also rejected: non-scalar mapping keys, the YAML 1.1 merge key "<<" (plain),
 * every explicit tag (!!str, !foo, "!"; quote a value to make it a string),
 * and input that is not UTF-8. Every error says file:line:column.
 *
 * JSON goes through jansson with duplicate keys rejected.
 */
#ifndef MESHWARD_CONF_H
#define MESHWARD_CONF_H

#include <meshward/base.h>

struct json_t;

/* A field left zero takes its value from mw_conf_default_limits. */
struct mw_conf_limits {
    size_t max_bytes;  /* input size */
    size_t max_depth;  /* nesting of sequences and mappings (a top-level mapping is 1) */
    size_t max_nodes;  /* nodes in the whole stream */
    size_t max_scalar; /* bytes in one scalar */
    size_t max_docs;   /* documents in one stream */
};

/* 16 MiB input, depth 64, 1M nodes, 1 MiB scalars, 10000 documents. */
extern const struct mw_conf_limits mw_conf_default_limits;

enum mw_node_kind {
    MW_NODE_SCALAR = 1,
    MW_NODE_SEQ,
    MW_NODE_MAP,
};

/* How a scalar was written: plain scalars may be null/bool/number, quoted ones are strings. */
enum mw_scalar_style {
    MW_SCALAR_PLAIN = 1,
    MW_SCALAR_QUOTED, /* single, double, literal or folded: always a string */
};

struct mw_node;
struct mw_docs;

/*
 * Parse a YAML stream (one or more documents separated by ---). name is used
 * in error messages (a file path, or "<stdin>"). An empty document (just
 * "---") is kept as a NULL root so document indexes match the input. On
 * failure *out is NULL and nothing is left allocated.
 */
MW_RESULT mw_yaml_load(mw_slice text, const char *name, const struct mw_conf_limits *limits,
                       struct mw_docs **out);
MW_RESULT mw_yaml_load_file(const char *path, const struct mw_conf_limits *limits,
                            struct mw_docs **out);
void mw_docs_free(struct mw_docs *docs);

size_t mw_docs_count(const struct mw_docs *docs);
/* Root node of document i, or NULL for an empty document. */
const struct mw_node *mw_docs_root(const struct mw_docs *docs, size_t i);
/* The name given at load time. */
const char *mw_docs_name(const struct mw_docs *docs);

/*
 * The node accessors accept NULL (a missing key, an empty document) and
 * answer as for an absent node: kind 0, line 0, NULL text, length 0.
 */
enum mw_node_kind mw_node_kind(const struct mw_node *n);
/* 1-based line and column where the node starts. */
size_t mw_node_line(const struct mw_node *n);
size_t mw_node_col(const struct mw_node *n);
/* The file name the node came from. */
const char *mw_node_file(const struct mw_node *n);

/*
 * Scalar text (NUL-terminated, may contain NULs only if the YAML escaped one);
 * NULL for a sequence or mapping.
 */
const char *mw_node_str(const struct mw_node *n);
mw_slice mw_node_slice(const struct mw_node *n);
/* 0 for a sequence or mapping. */
enum mw_scalar_style mw_node_style(const struct mw_node *n);
/* A plain scalar spelling null (null, Null, NULL, ~) or empty plain; also true for NULL. */
bool mw_node_is_null(const struct mw_node *n);
/* Only "true"/"false" (and True/TRUE/False/FALSE) plain scalars, per YAML 1.2 core schema. */
MW_RESULT mw_node_bool(const struct mw_node *n, bool *out);
/* A plain decimal integer scalar within [min, max] (no '+', 0x, 0o or leading zeros). */
MW_RESULT mw_node_i64(const struct mw_node *n, int64_t min, int64_t max, int64_t *out);

/* Items in a sequence, or key/value pairs in a mapping; 0 for a scalar. */
size_t mw_node_len(const struct mw_node *n);
/* Item i of a sequence (NULL if out of range or not a sequence). */
const struct mw_node *mw_node_item(const struct mw_node *n, size_t i);
/* Key node and value node of pair i of a mapping, in document order. */
const struct mw_node *mw_node_key_at(const struct mw_node *n, size_t i);
const struct mw_node *mw_node_value_at(const struct mw_node *n, size_t i);
/* The value for a scalar key in a mapping, or NULL. */
const struct mw_node *mw_node_get(const struct mw_node *map, const char *key);

/*
 * Set the thread's error to "FILE:LINE:COL: " + message, for callers that
 * find a semantic fault in a node. With n NULL, the message alone.
 */
void mw_node_error(const struct mw_node *n, enum mw_err code, const char *fmt, ...) MW_PRINTF(3, 4);

/*
 * Append node n as one YAML document ("--- " + flow style + newline) that
 * mw_yaml_load reads back as the same tree: kinds and scalar texts; plain
 * scalars of the core schema (null, booleans, numbers) stay plain, other
 * plain scalars may come back quoted (still strings); an empty plain scalar
 * comes back as "null". NULL writes "--- null".
 */
MW_RESULT mw_node_emit_yaml(const struct mw_node *n, struct mw_dynbuf *out);

/*
 * Parse JSON with jansson: duplicate keys rejected, input size bounded by
 * limits->max_bytes, nesting by limits->max_depth. The top level must be an
 * object or an array; "\u0000" in strings and integers outside int64 are
 * refused (jansson keeps neither exactly). The caller owns *out
 * (json_decref); it is NULL on failure. Errors say name:line:column.
 */
MW_RESULT mw_json_load(mw_slice text, const char *name, const struct mw_conf_limits *limits,
                       struct json_t **out);
MW_RESULT mw_json_load_file(const char *path, const struct mw_conf_limits *limits,
                            struct json_t **out);

#endif
