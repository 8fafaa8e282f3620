/*
 * JSON from the network and from files (bundles, JWKS, trust roots) goes
 * through mw_json_load. Whatever the bytes: no crash, no leak, accepted
 * documents respect the depth limit and survive a round trip through
 * jansson's encoder, and every refusal names the input.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include <meshward/conf.h>

#define FUZZ_NAME "fuzz.json"

static const struct mw_conf_limits fuzz_limits = {
    .max_bytes = 64u << 10,
    .max_depth = 16,
};

static size_t depth_of(const json_t *v)
{
    size_t max = 0;
    if (json_is_array(v)) {
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item)
        {
            size_t d = depth_of(item);
            max = d > max ? d : max;
        }
        return max + 1;
    }
    if (json_is_object(v)) {
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)v, key, member)
        {
            size_t d = depth_of(member);
            max = d > max ? d : max;
        }
        return max + 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = NULL;
    if (mw_failed(mw_json_load(mw_slice_make(data, size), FUZZ_NAME, &fuzz_limits, &v))) {
        if (v != NULL || strncmp(mw_error_msg(), FUZZ_NAME, strlen(FUZZ_NAME)) != 0)
            abort();
        return 0;
    }
    if (v == NULL || depth_of(v) > fuzz_limits.max_depth)
        abort();
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        abort();
    /* Re-encoding can grow the text ("1E5" becomes "100000.0"); only the depth must hold. */
    struct mw_conf_limits relaxed = fuzz_limits;
    relaxed.max_bytes = 16u << 20;
    json_t *again = NULL;
    if (mw_failed(mw_json_load(mw_slice_cstr(text), FUZZ_NAME, &relaxed, &again)))
        abort();
    if (!json_equal(v, again))
        abort();
    json_decref(again);
    free(text);
    json_decref(v);
    return 0;
}
