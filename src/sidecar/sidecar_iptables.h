/*
 * Internal: traffic interception for the sidecar. Builds the iptables-restore
 * input for Istio-style nat REDIRECT rules in chains of our own and applies
 * it (iptables-restore --noflush, exec'd without a shell, optionally inside a
 * named network namespace via setns(2)).
 *
 * Chains (mirroring Istio's ISTIO_*):
 *   PREROUTING -p tcp      -> MESHWARD_INBOUND -> RETURN for excluded ports,
 *                             else MESHWARD_IN_REDIRECT (REDIRECT --to-ports inbound)
 *   OUTPUT -p tcp          -> MESHWARD_OUTPUT  -> RETURN for the proxy uid, loopback
 *                             destinations, excluded ports and CIDRs, else
 *                             MESHWARD_REDIRECT (REDIRECT --to-ports outbound)
 *
 * Idempotence: the rules are planned against the current nat table (the text
 * of `iptables-save -t nat`): our chains are declared, which makes
 * iptables-restore --noflush flush them, and the jumps from PREROUTING/OUTPUT
 * are added only when absent. Cleanup deletes exactly the jumps to our chains
 * that exist, then our chains. IPv4 only.
 */
#ifndef MESHWARD_SIDECAR_IPTABLES_H
#define MESHWARD_SIDECAR_IPTABLES_H

#include <meshward/base.h>

#define MW_IPT_MAX_PORTS 64
#define MW_IPT_MAX_CIDRS 64

struct mw_ipt_cidr {
    uint8_t addr[4];
    uint8_t prefix;
};

struct mw_iptables_opts {
    uint16_t inbound_port, outbound_port;
    uint32_t proxy_uid;
    uint16_t exclude_inbound[MW_IPT_MAX_PORTS];
    size_t n_exclude_inbound;
    uint16_t exclude_outbound[MW_IPT_MAX_PORTS];
    size_t n_exclude_outbound;
    struct mw_ipt_cidr exclude_cidrs[MW_IPT_MAX_CIDRS];
    size_t n_exclude_cidrs;
};

/* A TCP port 1..65535; what names the option in errors. */
MW_RESULT mw_ipt_parse_port(const char *s, const char *what, uint16_t *out);
/* "15020,15021": ports, no duplicates, at most max. "" is an empty list. */
MW_RESULT mw_ipt_parse_ports(const char *s, const char *what, uint16_t *out, size_t max, size_t *n);
/* "10.0.0.0/8,192.168.1.7": IPv4 CIDRs (bare address = /32), no host bits set. */
MW_RESULT mw_ipt_parse_cidrs(const char *s, struct mw_ipt_cidr *out, size_t max, size_t *n);
/* A numeric uid, 0..2^32-2 (2^32-1 is (uid_t)-1, "no uid"). */
MW_RESULT mw_ipt_parse_uid(const char *s, uint32_t *out);
/* Cross-field checks (ports set and distinct). */
MW_RESULT mw_ipt_check(const struct mw_iptables_opts *o);

/*
 * iptables-restore input that installs the rules, given the current nat
 * table as printed by iptables-save (an empty slice for a fresh table).
 */
MW_RESULT mw_ipt_install_rules(const struct mw_iptables_opts *o, mw_slice current,
                               struct mw_dynbuf *out);
/* iptables-restore input that removes everything install added. */
MW_RESULT mw_ipt_cleanup_rules(mw_slice current, struct mw_dynbuf *out);
/* True when current holds any chain or jump of ours. */
bool mw_ipt_present(mw_slice current);

/*
 * A network namespace name as `ip netns` makes them: [A-Za-z0-9_.-], 1..64
 * characters, not "." or "..". NULL means the current namespace.
 */
MW_RESULT mw_ipt_check_netns(const char *netns);
/* `iptables-save -t nat` in netns (or the current namespace) into out. */
MW_RESULT mw_ipt_save(const char *netns, struct mw_dynbuf *out);
/* `iptables-restore --noflush` with input on its stdin, in netns. */
MW_RESULT mw_ipt_restore(const char *netns, mw_slice input);

#endif
