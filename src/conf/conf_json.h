/*
 * Internal to meshward: MW_DEFER_JSON, for json_t locals that other parts (ca,
 * spiffe, verify) own and release at scope exit (STYLE.md, Errors).
 */
#ifndef MESHWARD_CONF_JSON_H
#define MESHWARD_CONF_JSON_H

#include <jansson.h>

static inline void mw_cleanup_json(json_t **p)
{
    if (*p != NULL)
        json_decref(*p);
    *p = NULL;
}
#define MW_DEFER_JSON __attribute__((cleanup(mw_cleanup_json)))

#endif
