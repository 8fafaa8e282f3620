/*
 * The control plane's configuration distribution (docs/control.md).
 *
 * A mesh directory holds the YAML a platform team applies: Istio
 * AuthorizationPolicy / PeerAuthentication / RequestAuthentication,
 * meshward.io/v1alpha1 ProvenancePolicy, EgressPolicy and MeshService (the
 * service registry: host, port, the destination sidecars, the SPIFFE ID they
 * must present). The control plane validates it, numbers each accepted
 * change, and answers each sidecar's long-poll with the documents that apply
 * to the sidecar's namespace.
 */
#ifndef MESHWARD_CONTROL_H
#define MESHWARD_CONTROL_H

#include <meshward/base.h>

/* ---------------------------------------------------------------- the mesh directory */

struct mw_control_mesh;

struct mw_control_mesh_stats {
    size_t files, policies, egress, services;
};

/*
 * Read every *.yaml / *.yml file directly in dir (names starting with '.'
 * skipped), in name order. Every document must be one of the kinds above;
 * policies are validated with the policy engine's loader, MeshService and
 * EgressPolicy by their shape. Any fault fails the whole load with
 * "file:line:col: message". root_namespace: where mesh-wide documents live
 * (NULL: istio-system).
 */
MW_RESULT mw_control_mesh_load(const char *dir, const char *root_namespace,
                               struct mw_control_mesh **out);
void mw_control_mesh_free(struct mw_control_mesh *m);
void mw_control_mesh_stats(const struct mw_control_mesh *m, struct mw_control_mesh_stats *out);
/* SHA-256 over every document as emitted: equal digests, equal meshes. */
void mw_control_mesh_digest(const struct mw_control_mesh *m, uint8_t out[32]);
/*
 * The documents for a workload in namespace ns, as a YAML stream: policies
 * and EgressPolicy of the root namespace and of ns, and every MeshService.
 */
MW_RESULT mw_control_mesh_render(const struct mw_control_mesh *m, const char *ns,
                                 struct mw_dynbuf *out);

/* ---------------------------------------------------------------- the service */

struct mw_control;
struct mw_ca_service;
struct ev_loop;

struct mw_control_config {
    const char *mesh_dir;       /* required */
    const char *root_namespace; /* NULL: istio-system */
    struct mw_ca_service *ca;   /* required: routes go on its mTLS listener; borrowed */
    double max_wait;            /* longest long-poll, seconds; 0: 30 */
    double scan_interval;       /* seconds between looks at the directory; 0: 1 */
    size_t max_waiters;         /* long-polls held at once; 0: 4096 (503 beyond) */
};

/*
 * Load the mesh directory (failing if it does not load) and route
 * GET /v1/config?since=N[&wait=S][&workload=ID] on the CA's listener. The
 * caller is the SPIFFE ID of the client certificate (mw_ca_service_peer_id);
 * "workload", when given, must name that same ID. The answer is
 * 200 {"version":N,"workload":ID,"documents":YAML} at once when the current
 * version differs from since, otherwise when the version changes, or 304
 * after min(wait, max_wait) seconds.
 */
MW_RESULT mw_control_new(struct ev_loop *loop, const struct mw_control_config *cfg,
                         struct mw_control **out);
/* Look at the directory now (SIGHUP); a mesh that does not load is refused and logged. */
void mw_control_rescan(struct mw_control *c);
uint64_t mw_control_version(const struct mw_control *c);
/* Answer every waiting long-poll (304) and stop. */
void mw_control_stop(struct mw_control *c);
void mw_control_free(struct mw_control *c);

#endif
