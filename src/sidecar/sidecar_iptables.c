/*
 * Interception rules for the sidecar (see sidecar_iptables.h for the chain
 * layout). The rule text mirrors what `iptables-save` prints for the same
 * rules, so the integration test can compare the two line for line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sidecar/sidecar_iptables.h"

static const char *const our_chains[] = {"MESHWARD_INBOUND", "MESHWARD_IN_REDIRECT",
                                         "MESHWARD_OUTPUT", "MESHWARD_REDIRECT"};

/* ---------------------------------------------------------------- parsing */

mw_result mw_ipt_parse_port(const char *s, const char *what, uint16_t *out)
{
    uint64_t v;
    MW_GUARD(mw_parse_u64(mw_slice_cstr(s != NULL ? s : ""), 1, 65535, what, &v));
    *out = (uint16_t)v;
    return MW_SUCCESS;
}

mw_result mw_ipt_parse_ports(const char *s, const char *what, uint16_t *out, size_t max, size_t *n)
{
    *n = 0;
    mw_slice rest = mw_slice_cstr(s != NULL ? s : "");
    if (rest.n == 0)
        return MW_SUCCESS;
    for (size_t from = 0; from <= rest.n;) {
        size_t comma = mw_slice_find(rest, ',', from);
        mw_slice item = mw_slice_sub(rest, from, comma - from);
        uint64_t v;
        MW_GUARD(mw_parse_u64(item, 1, 65535, what, &v));
        for (size_t i = 0; i < *n; i++)
            MW_ENSURE(out[i] != v, MW_E_INPUT, "%s: port %" PRIu64 " is listed twice", what, v);
        MW_ENSURE(*n < max, MW_E_LIMIT, "%s: more than %zu ports", what, max);
        out[(*n)++] = (uint16_t)v;
        from = comma + 1;
    }
    return MW_SUCCESS;
}

static mw_result parse_cidr(mw_slice item, struct mw_ipt_cidr *out)
{
    char text[64];
    MW_ENSURE(item.n > 0 && item.n < sizeof(text), MW_E_INPUT,
              "--exclude-outbound-cidrs: empty or overlong entry");
    memcpy(text, item.p, item.n);
    text[item.n] = '\0';
    MW_ENSURE(memchr(text, ':', item.n) == NULL, MW_E_UNSUPPORTED,
              "--exclude-outbound-cidrs: %s is IPv6; only IPv4 is intercepted", text);
    char *slash = strchr(text, '/');
    uint64_t prefix = 32;
    if (slash != NULL) {
        *slash = '\0';
        MW_GUARD(mw_parse_u64(mw_slice_cstr(slash + 1), 0, 32, "--exclude-outbound-cidrs prefix",
                              &prefix));
    }
    struct in_addr a;
    MW_ENSURE(inet_pton(AF_INET, text, &a) == 1, MW_E_INPUT,
              "--exclude-outbound-cidrs: %s is not a dotted-quad IPv4 address", text);
    uint32_t addr = ntohl(a.s_addr);
    uint32_t mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
    MW_ENSURE((addr & ~mask) == 0, MW_E_INPUT,
              "--exclude-outbound-cidrs: %s/%" PRIu64 " has host bits set", text, prefix);
    for (int i = 0; i < 4; i++)
        out->addr[i] = (uint8_t)(addr >> (24 - 8 * i));
    out->prefix = (uint8_t)prefix;
    return MW_SUCCESS;
}

mw_result mw_ipt_parse_cidrs(const char *s, struct mw_ipt_cidr *out, size_t max, size_t *n)
{
    *n = 0;
    mw_slice rest = mw_slice_cstr(s != NULL ? s : "");
    if (rest.n == 0)
        return MW_SUCCESS;
    for (size_t from = 0; from <= rest.n;) {
        size_t comma = mw_slice_find(rest, ',', from);
        struct mw_ipt_cidr c;
        MW_GUARD(parse_cidr(mw_slice_sub(rest, from, comma - from), &c));
        for (size_t i = 0; i < *n; i++)
            MW_ENSURE(memcmp(&out[i], &c, sizeof(c)) != 0, MW_E_INPUT,
                      "--exclude-outbound-cidrs: %u.%u.%u.%u/%u is listed twice", c.addr[0],
                      c.addr[1], c.addr[2], c.addr[3], c.prefix);
        MW_ENSURE(*n < max, MW_E_LIMIT, "--exclude-outbound-cidrs: more than %zu entries", max);
        out[(*n)++] = c;
        from = comma + 1;
    }
    return MW_SUCCESS;
}

mw_result mw_ipt_parse_uid(const char *s, uint32_t *out)
{
    uint64_t v;
    MW_GUARD(mw_parse_u64(mw_slice_cstr(s != NULL ? s : ""), 0, 0xfffffffeu, "--proxy-uid", &v));
    *out = (uint32_t)v;
    return MW_SUCCESS;
}

mw_result mw_ipt_check(const struct mw_iptables_opts *o)
{
    MW_ENSURE(o->inbound_port != 0, MW_E_INPUT, "--inbound-port is required");
    MW_ENSURE(o->outbound_port != 0, MW_E_INPUT, "--outbound-port is required");
    MW_ENSURE(o->inbound_port != o->outbound_port, MW_E_INPUT,
              "--inbound-port and --outbound-port are both %u", o->inbound_port);
    return MW_SUCCESS;
}

/* ---------------------------------------------------------------- the nat table */

/* What of ours the nat table already holds. */
struct nat_state {
    bool chain[MW_ARRAY_LEN(our_chains)];
    bool jump_in, jump_out; /* our jumps from PREROUTING / OUTPUT */
};

static bool is_our_chain(mw_slice name, size_t *idx)
{
    for (size_t i = 0; i < MW_ARRAY_LEN(our_chains); i++) {
        if (mw_slice_eq_cstr(name, our_chains[i])) {
            *idx = i;
            return true;
        }
    }
    return false;
}

/* The target of a rule line ("... -j TARGET [options]"), or an empty slice. */
static mw_slice rule_target(mw_slice line)
{
    static const char tag[] = " -j ";
    for (size_t i = 0; i + sizeof(tag) - 1 <= line.n; i++) {
        if (memcmp(line.p + i, tag, sizeof(tag) - 1) == 0) {
            size_t from = i + sizeof(tag) - 1;
            size_t end = mw_slice_find(line, ' ', from);
            return mw_slice_sub(line, from, end - from);
        }
    }
    return mw_slice_make(NULL, 0);
}

/* A rule in a built-in chain that jumps to one of ours: "-A PREROUTING ... -j MESHWARD_*". */
static bool is_our_jump(mw_slice line, bool *prerouting)
{
    size_t idx;
    bool pre = mw_slice_has_prefix(line, mw_slice_cstr("-A PREROUTING "));
    bool out = mw_slice_has_prefix(line, mw_slice_cstr("-A OUTPUT "));
    if (!pre && !out)
        return false;
    if (!is_our_chain(rule_target(line), &idx))
        return false;
    *prerouting = pre;
    return true;
}

/*
 * Walk the nat section of iptables-save text; for each jump of ours call
 * on_jump (when not NULL) with the line.
 */
static mw_result scan_nat(mw_slice text, struct nat_state *st,
                          mw_result (*on_jump)(mw_slice line, void *arg), void *arg)
{
    memset(st, 0, sizeof(*st));
    bool in_nat = false;
    for (size_t from = 0; from < text.n;) {
        size_t nl = mw_slice_find(text, '\n', from);
        mw_slice line = mw_slice_sub(text, from, nl - from);
        from = nl + 1;
        if (line.n > 0 && line.p[line.n - 1] == '\r')
            line.n--;
        if (line.n > 0 && line.p[0] == '*') {
            in_nat = mw_slice_eq_cstr(line, "*nat");
            continue;
        }
        if (!in_nat)
            continue;
        if (mw_slice_eq_cstr(line, "COMMIT")) {
            in_nat = false;
            continue;
        }
        size_t idx;
        bool pre;
        if (line.n > 1 && line.p[0] == ':') {
            size_t sp = mw_slice_find(line, ' ', 1);
            if (is_our_chain(mw_slice_sub(line, 1, sp - 1), &idx))
                st->chain[idx] = true;
        } else if (is_our_jump(line, &pre)) {
            if (pre)
                st->jump_in = true;
            else
                st->jump_out = true;
            if (on_jump != NULL)
                MW_GUARD(on_jump(line, arg));
        }
    }
    return MW_SUCCESS;
}

bool mw_ipt_present(mw_slice current)
{
    struct nat_state st;
    if (mw_failed(scan_nat(current, &st, NULL, NULL)))
        return true;
    for (size_t i = 0; i < MW_ARRAY_LEN(our_chains); i++)
        if (st.chain[i])
            return true;
    return st.jump_in || st.jump_out;
}

static mw_result declare_chains(struct mw_dynbuf *out)
{
    /* With --noflush, declaring an existing user chain flushes it; a missing one is created. */
    for (size_t i = 0; i < MW_ARRAY_LEN(our_chains); i++)
        MW_GUARD(mw_dynbuf_addf(out, ":%s - [0:0]\n", our_chains[i]));
    return MW_SUCCESS;
}

mw_result mw_ipt_install_rules(const struct mw_iptables_opts *o, mw_slice current,
                               struct mw_dynbuf *out)
{
    MW_GUARD(mw_ipt_check(o));
    struct nat_state st;
    MW_GUARD(scan_nat(current, &st, NULL, NULL));
    unsigned uid = o->proxy_uid;

    MW_GUARD(mw_dynbuf_add_cstr(out, "*nat\n"));
    MW_GUARD(declare_chains(out));

    /* Inbound: everything but the excluded ports goes to the sidecar's inbound port. */
    for (size_t i = 0; i < o->n_exclude_inbound; i++)
        MW_GUARD(mw_dynbuf_addf(out, "-A MESHWARD_INBOUND -p tcp -m tcp --dport %u -j RETURN\n",
                                o->exclude_inbound[i]));
    MW_GUARD(mw_dynbuf_add_cstr(out, "-A MESHWARD_INBOUND -p tcp -j MESHWARD_IN_REDIRECT\n"));
    MW_GUARD(mw_dynbuf_addf(out, "-A MESHWARD_IN_REDIRECT -p tcp -j REDIRECT --to-ports %u\n",
                            o->inbound_port));

    /* Outbound. Excluded ports first, so they bypass the sidecar whoever connects. */
    for (size_t i = 0; i < o->n_exclude_outbound; i++)
        MW_GUARD(mw_dynbuf_addf(out, "-A MESHWARD_OUTPUT -p tcp -m tcp --dport %u -j RETURN\n",
                                o->exclude_outbound[i]));
    /* Istio's passthrough source: the proxy's own inbound forwarding marked by 127.0.0.6. */
    MW_GUARD(mw_dynbuf_add_cstr(out, "-A MESHWARD_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN\n"));
    /*
     * The proxy calling the pod's own (non-127.0.0.1) address leaves through lo:
     * treat it as inbound so that policy still applies to it (Istio does the same).
     */
    MW_GUARD(mw_dynbuf_addf(out,
                            "-A MESHWARD_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner %u "
                            "-j MESHWARD_IN_REDIRECT\n",
                            uid));
    /* The application talking to itself over loopback is not mesh traffic. */
    MW_GUARD(
        mw_dynbuf_addf(out, "-A MESHWARD_OUTPUT -o lo -m owner ! --uid-owner %u -j RETURN\n", uid));
    /* The proxy's own upstream connections: redirecting them would loop. */
    MW_GUARD(mw_dynbuf_addf(out, "-A MESHWARD_OUTPUT -m owner --uid-owner %u -j RETURN\n", uid));
    MW_GUARD(mw_dynbuf_add_cstr(out, "-A MESHWARD_OUTPUT -d 127.0.0.1/32 -j RETURN\n"));
    for (size_t i = 0; i < o->n_exclude_cidrs; i++) {
        const struct mw_ipt_cidr *c = &o->exclude_cidrs[i];
        MW_GUARD(mw_dynbuf_addf(out, "-A MESHWARD_OUTPUT -d %u.%u.%u.%u/%u -j RETURN\n", c->addr[0],
                                c->addr[1], c->addr[2], c->addr[3], c->prefix));
    }
    MW_GUARD(mw_dynbuf_add_cstr(out, "-A MESHWARD_OUTPUT -j MESHWARD_REDIRECT\n"));
    MW_GUARD(mw_dynbuf_addf(out, "-A MESHWARD_REDIRECT -p tcp -j REDIRECT --to-ports %u\n",
                            o->outbound_port));

    /* The hooks last, and only once: a second install must not add a second jump. */
    if (!st.jump_in)
        MW_GUARD(mw_dynbuf_add_cstr(out, "-A PREROUTING -p tcp -j MESHWARD_INBOUND\n"));
    if (!st.jump_out)
        MW_GUARD(mw_dynbuf_add_cstr(out, "-A OUTPUT -p tcp -j MESHWARD_OUTPUT\n"));
    return mw_dynbuf_add_cstr(out, "COMMIT\n");
}

static mw_result add_delete(mw_slice line, void *arg)
{
    struct mw_dynbuf *out = arg;
    /* "-A CHAIN spec" -> "-D CHAIN spec": delete by the exact spec iptables-save printed. */
    MW_GUARD(mw_dynbuf_add_cstr(out, "-D"));
    MW_GUARD(mw_dynbuf_add_slice(out, mw_slice_sub(line, 2, line.n - 2)));
    return mw_dynbuf_add_byte(out, '\n');
}

mw_result mw_ipt_cleanup_rules(mw_slice current, struct mw_dynbuf *out)
{
    struct nat_state st;
    MW_GUARD(mw_dynbuf_add_cstr(out, "*nat\n"));
    MW_GUARD(scan_nat(current, &st, add_delete, out));
    /* Declaring flushes (so no rule of ours still names another of our chains), then -X. */
    bool any = false;
    for (size_t i = 0; i < MW_ARRAY_LEN(our_chains); i++) {
        if (st.chain[i]) {
            MW_GUARD(mw_dynbuf_addf(out, ":%s - [0:0]\n", our_chains[i]));
            any = true;
        }
    }
    for (size_t i = 0; any && i < MW_ARRAY_LEN(our_chains); i++)
        if (st.chain[i])
            MW_GUARD(mw_dynbuf_addf(out, "-X %s\n", our_chains[i]));
    return mw_dynbuf_add_cstr(out, "COMMIT\n");
}

/* ---------------------------------------------------------------- running iptables */

mw_result mw_ipt_check_netns(const char *netns)
{
    if (netns == NULL)
        return MW_SUCCESS;
    size_t n = strlen(netns);
    MW_ENSURE(n >= 1 && n <= 64, MW_E_INPUT, "--netns: name must be 1 to 64 characters");
    MW_ENSURE(strcmp(netns, ".") != 0 && strcmp(netns, "..") != 0, MW_E_INPUT,
              "--netns: \"%s\" is not a namespace name", netns);
    for (size_t i = 0; i < n; i++) {
        char c = netns[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        MW_ENSURE(ok, MW_E_INPUT, "--netns: character 0x%02x is not allowed in a namespace name",
                  (unsigned)(unsigned char)c);
    }
    return MW_SUCCESS;
}

static const char *const restore_paths[] = {"/usr/sbin/iptables-restore", "/sbin/iptables-restore",
                                            "/usr/bin/iptables-restore"};
static const char *const save_paths[] = {"/usr/sbin/iptables-save", "/sbin/iptables-save",
                                         "/usr/bin/iptables-save"};

struct child_fail {
    int stage; /* 1 open netns, 2 setns, 3 exec */
    int err;
};

/* In the child: report why we could not get to exec, then exit. Async-signal-safe only. */
static void child_fail(int fd, int stage, int err)
{
    struct child_fail f = {stage, err};
    ssize_t w = write(fd, &f, sizeof(f));
    (void)w;
    _exit(127);
}

/*
 * Run one of paths (the first that exists) with argv, in netns, with stdin
 * fed from in (when in_fd_src >= 0) and stdout into out (when out != NULL).
 * No shell, no PATH search: the binary is one of the fixed paths.
 */
static mw_result run_tool(const char *netns, const char *const *paths, size_t npaths,
                          char *const argv[], mw_slice input, bool feed, struct mw_dynbuf *out)
{
    MW_GUARD(mw_ipt_check_netns(netns));
    const char *path = NULL;
    for (size_t i = 0; i < npaths && path == NULL; i++)
        if (access(paths[i], X_OK) == 0)
            path = paths[i];
    MW_ENSURE(path != NULL, MW_E_NOTFOUND, "%s not found in /usr/sbin, /sbin or /usr/bin", argv[0]);
    char nspath[96];
    if (netns != NULL)
        snprintf(nspath, sizeof(nspath), "/run/netns/%s", netns);

    int inp[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
    if (pipe2(errp, O_CLOEXEC) != 0 || (feed && pipe2(inp, O_CLOEXEC) != 0) ||
        (out != NULL && pipe2(outp, O_CLOEXEC) != 0)) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            if (errp[i] >= 0)
                close(errp[i]);
            if (inp[i] >= 0)
                close(inp[i]);
            if (outp[i] >= 0)
                close(outp[i]);
        }
        MW_BAIL(MW_E_IO, "pipe: %s", strerror(e));
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (netns != NULL) {
            int fd = open(nspath, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                child_fail(errp[1], 1, errno);
            if (setns(fd, CLONE_NEWNET) != 0)
                child_fail(errp[1], 2, errno);
            close(fd);
        }
        if (feed && dup2(inp[0], STDIN_FILENO) < 0)
            child_fail(errp[1], 3, errno);
        if (out != NULL && dup2(outp[1], STDOUT_FILENO) < 0)
            child_fail(errp[1], 3, errno);
        execv(path, argv);
        child_fail(errp[1], 3, errno);
    }
    int fork_errno = errno;
    close(errp[1]);
    if (feed)
        close(inp[0]);
    if (out != NULL)
        close(outp[1]);
    mw_result r = MW_SUCCESS;
    if (pid < 0) {
        mw_error_set(MW_E_IO, "fork: %s", strerror(fork_errno));
        r = MW_FAILURE;
    }
    if (pid > 0 && feed) {
        /* The child may exit before reading everything; a write error then is not ours to report.
         */
        struct sigaction ign = {.sa_handler = SIG_IGN}, old;
        sigaction(SIGPIPE, &ign, &old);
        for (size_t off = 0; off < input.n;) {
            ssize_t w = write(inp[1], input.p + off, input.n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        sigaction(SIGPIPE, &old, NULL);
    }
    if (feed)
        close(inp[1]);
    if (pid > 0 && out != NULL) {
        uint8_t buf[4096];
        for (;;) {
            ssize_t n = read(outp[0], buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            if (mw_ok(r) && mw_failed(mw_dynbuf_add(out, buf, (size_t)n)))
                r = MW_FAILURE; /* keep draining so the child can finish */
        }
    }
    if (out != NULL)
        close(outp[0]);
    struct child_fail cf = {0, 0};
    ssize_t got = 0;
    if (pid > 0) {
        do
            got = read(errp[0], &cf, sizeof(cf));
        while (got < 0 && errno == EINTR);
    }
    close(errp[0]);
    if (pid <= 0)
        return r;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (mw_failed(r))
        return r;
    if (got == (ssize_t)sizeof(cf)) {
        if (cf.stage == 1)
            MW_BAIL(cf.err == ENOENT ? MW_E_NOTFOUND : MW_E_IO,
                    "network namespace %s: %s (is it listed by `ip netns list`?)", netns,
                    strerror(cf.err));
        if (cf.stage == 2)
            MW_BAIL(cf.err == EPERM ? MW_E_PERM : MW_E_IO, "setns into %s: %s", netns,
                    strerror(cf.err));
        MW_BAIL(MW_E_IO, "exec %s: %s", path, strerror(cf.err));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return MW_SUCCESS;
    if (WIFEXITED(status))
        MW_BAIL(MW_E_IO, "%s exited with status %d", path, WEXITSTATUS(status));
    MW_BAIL(MW_E_IO, "%s was killed by signal %d", path,
            WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

mw_result mw_ipt_save(const char *netns, struct mw_dynbuf *out)
{
    char *argv[] = {"iptables-save", "-t", "nat", NULL};
    return run_tool(netns, save_paths, MW_ARRAY_LEN(save_paths), argv, mw_slice_make(NULL, 0),
                    false, out);
}

mw_result mw_ipt_restore(const char *netns, mw_slice input)
{
    char *argv[] = {"iptables-restore", "--noflush", NULL};
    return run_tool(netns, restore_paths, MW_ARRAY_LEN(restore_paths), argv, input, true, NULL);
}
