/*
 * meshward sidecar: one small proxy per workload. Inbound it terminates mTLS
 * (PeerAuthentication STRICT, PERMISSIVE, DISABLE per port), validates the
 * peer's X.509-SVID, authorizes every connection (TCP ports) or request
 * (HTTP/1.1 ports) with the policy engine and forwards to the application on
 * loopback. Outbound it originates mTLS to the destination's sidecar and
 * checks its SPIFFE ID against the registry; anything not in the registry is
 * egress, refused unless declared. docs/sidecar.md describes the
 * configuration (meshward.io/v1alpha1 SidecarConfig) and the behaviour.
 */
#ifndef MESHWARD_SIDECAR_H
#define MESHWARD_SIDECAR_H

#include <meshward/base.h>

struct mw_sidecar_config;

/*
 * Load and validate a SidecarConfig file. Relative paths in it are taken
 * from the file's directory. Referenced EgressPolicy files are read and
 * validated too; policy files and the SVID are not (see
 * mw_sidecar_config_check). Errors say file:line:col.
 */
MW_RESULT mw_sidecar_config_load(const char *path, struct mw_sidecar_config **out);
/* The same from text; name is used in errors, base_dir resolves relative paths. */
MW_RESULT mw_sidecar_config_parse(mw_slice text, const char *name, const char *base_dir,
                                  struct mw_sidecar_config **out);
void mw_sidecar_config_free(struct mw_sidecar_config *cfg);

/*
 * Everything a start would check, without listening: the policy files load
 * and compile for the workload, the SVID is valid now against the bundle of
 * its trust domain, its key matches, and it names the configured workload's
 * trust domain. A summary goes to out.
 */
MW_RESULT mw_sidecar_config_check(const struct mw_sidecar_config *cfg, struct mw_dynbuf *out);

/*
 * Run the sidecar until SIGINT or SIGTERM (graceful stop). SIGHUP reloads
 * the configuration, the policies, the SVID and the bundles; new
 * connections use them, open ones keep what they have. Refuses to start
 * without a valid SVID.
 */
MW_RESULT mw_sidecar_run(const char *config_path);

#endif
