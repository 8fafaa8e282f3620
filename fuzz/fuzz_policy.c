/* libFuzzer: YAML bytes -> load + validate + compile + evaluate fixed requests + mTLS mode. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <meshward/policy.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mw_policy_set *set;
    if (mw_failed(mw_policy_set_new(&set)))
        return 0;
    (void)mw_policy_set_add_yaml(set, mw_slice_make(data, size), "fuzz.yaml");
    static const char *const k[] = {"app", "version"};
    static const char *const v[] = {"httpbin", "v1"};
    static const struct mw_policy_header h[] = {
        {{(const uint8_t *)"x-token", 7}, {(const uint8_t *)"abc", 3}}};
    for (int mode = 0; mode < 4; mode++) {
        struct mw_policy_mesh mesh = {.path_norm = (enum mw_policy_path_norm)mode};
        struct mw_policy_engine *e;
        if (mw_failed(mw_policy_engine_compile(set, &mesh, "foo", k, v, 2, &e)))
            continue;
        struct mw_policy_request r = {
            .http = mode != 3,
            .source_principal = mw_slice_cstr("cluster.local/ns/bar/sa/sleep"),
            .method = mw_slice_cstr("GET"),
            .path = mw_slice_cstr("/a/../admin//%2e%2E/x%2fy?q#f"),
            .host = mw_slice_cstr("Example.COM:80"),
            .headers = h,
            .n_headers = 1,
            .destination_port = 8080,
            .sni = mw_slice_cstr("svc.foo"),
        };
        (void)mw_policy_ip_parse(mw_slice_cstr("10.0.0.5"), &r.source_ip);
        struct mw_policy_decision d;
        mw_policy_evaluate(e, &r, &d);
        mw_policy_engine_free(e);
    }
    struct mw_policy_mtls_result m;
    mw_policy_mtls_mode(set, NULL, "foo", k, v, 2, 8080, &m);
    mw_policy_set_free(set);
    return 0;
}
