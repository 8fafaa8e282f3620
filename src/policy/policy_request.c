/* Requests from JSON (the shape of authz-decisions.json), and the who-can review summary. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policy/policy_internal.h"

static MW_RESULT opt_str(const json_t *obj, const char *key, mw_slice *out)
{
    const json_t *v = json_object_get(obj, key);
    *out = mw_slice_make(NULL, 0);
    if (v == NULL || json_is_null(v))
        return MW_SUCCESS;
    MW_ENSURE(json_is_string(v), MW_E_INPUT, "request field \"%s\" must be a string or null", key);
    *out = mw_slice_make(json_string_value(v), json_string_length(v));
    return MW_SUCCESS;
}

static MW_RESULT opt_ip(const json_t *obj, const char *key, struct mw_policy_ip *out)
{
    mw_slice s;
    memset(out, 0, sizeof(*out));
    MW_GUARD(opt_str(obj, key, &s));
    if (s.p == NULL)
        return MW_SUCCESS;
    if (mw_failed(mw_policy_ip_parse(s, out))) {
        mw_error_prefix("request field \"%s\": ", key);
        return MW_FAILURE;
    }
    return MW_SUCCESS;
}

MW_RESULT mw_policy_request_from_json(const json_t *obj, struct mw_policy_request *req,
                                      struct mw_policy_header **headers_out)
{
    memset(req, 0, sizeof(*req));
    *headers_out = NULL;
    MW_ENSURE(json_is_object(obj), MW_E_INPUT, "request must be a JSON object");
    static const char *const known[] = {
        "protocol", "source_principal", "source_ip", "destination_port", "method", "path", "host",
        "headers", "request_principal", "jwt_claims", "sni", "remote_ip", "destination_ip",
        "image_digest", "builder_id", "source_repository",
        /* fields of the decision tables that are expectations, not request data */
        "expect", "audit", "matched_policy"};
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        bool ok = false;
        for (size_t i = 0; i < MW_ARRAY_LEN(known) && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        MW_ENSURE(ok, MW_E_INPUT, "unknown request field \"%s\"", key);
    }
    mw_slice proto;
    MW_GUARD(opt_str(obj, "protocol", &proto));
    if (proto.p == NULL || mw_slice_eq_cstr(proto, "http"))
        req->http = true;
    else if (mw_slice_eq_cstr(proto, "tcp"))
        req->http = false;
    else
        MW_BAIL(MW_E_INPUT, "request protocol must be \"http\" or \"tcp\"");
    MW_GUARD(opt_str(obj, "source_principal", &req->source_principal));
    MW_GUARD(opt_ip(obj, "source_ip", &req->source_ip));
    MW_GUARD(opt_ip(obj, "remote_ip", &req->remote_ip));
    MW_GUARD(opt_ip(obj, "destination_ip", &req->destination_ip));
    const json_t *port = json_object_get(obj, "destination_port");
    if (port != NULL && !json_is_null(port)) {
        MW_ENSURE(json_is_integer(port) && json_integer_value(port) >= 0 &&
                      json_integer_value(port) <= 65535,
                  MW_E_INPUT, "request destination_port must be an integer in 0..65535");
        req->destination_port = (uint16_t)json_integer_value(port);
    }
    MW_GUARD(opt_str(obj, "method", &req->method));
    MW_GUARD(opt_str(obj, "path", &req->path));
    MW_GUARD(opt_str(obj, "host", &req->host));
    MW_GUARD(opt_str(obj, "sni", &req->sni));
    MW_GUARD(opt_str(obj, "request_principal", &req->request_principal));
    MW_GUARD(opt_str(obj, "image_digest", &req->image_digest));
    MW_GUARD(opt_str(obj, "builder_id", &req->builder_id));
    MW_GUARD(opt_str(obj, "source_repository", &req->source_repository));
    const json_t *claims = json_object_get(obj, "jwt_claims");
    if (claims != NULL && !json_is_null(claims)) {
        MW_ENSURE(json_is_object(claims), MW_E_INPUT, "request jwt_claims must be an object");
        req->jwt_claims = claims;
    }
    const json_t *hdrs = json_object_get(obj, "headers");
    if (hdrs != NULL && !json_is_null(hdrs)) {
        MW_ENSURE(json_is_object(hdrs), MW_E_INPUT, "request headers must be an object");
        size_t n = json_object_size(hdrs);
        struct mw_policy_header *h = calloc(n ? n : 1, sizeof(*h));
        MW_ENSURE(h != NULL, MW_E_NOMEM, "out of memory");
        size_t i = 0;
        json_object_foreach((json_t *)hdrs, key, val)
        {
            if (!json_is_string(val)) {
                free(h);
                MW_BAIL(MW_E_INPUT, "request header \"%s\" must be a string", key);
            }
            h[i].name = mw_slice_cstr(key);
            h[i].value = mw_slice_make(json_string_value(val), json_string_length(val));
            i++;
        }
        req->headers = h;
        req->n_headers = n;
        *headers_out = h;
    }
    return MW_SUCCESS;
}
