/*
 * policy_match.c, one table per matcher: Istio's string forms (exact, prefix, suffix, presence),
 * hosts, path templates, IP addresses and CIDRs, identity patterns, and path normalisation in
 * each mode. Every table has rejecting rows.
 */
#include <stdio.h>
#include <string.h>

#include "policy/policy_internal.h"

#include "testutil.h"

static struct pol_arena arena;

static int teardown(void **state)
{
    (void)state;
    pol_arena_free(&arena);
    return 0;
}

static struct pol_value parse(uint8_t attr, const char *s)
{
    struct pol_value v;
    mw_result r = pol_value_parse(&arena, attr, s, strlen(s), "policy-ns", &v);
    if (mw_failed(r))
        fail_msg("pol_value_parse('%s') failed: %s", s, mw_error_msg());
    return v;
}

/* ---------------------------------------------------------------- strings */

static void test_string_forms(void **state)
{
    (void)state;
    static const struct {
        const char *pattern;
        uint8_t kind;
        const char *subject;
        bool want;
    } cases[] = {
        {"abc", PM_EXACT, "abc", true},
        {"abc", PM_EXACT, "abcd", false},
        {"abc", PM_EXACT, "ab", false},
        {"abc", PM_EXACT, "ABC", false}, /* methods, paths, principals: case matters */
        {"abc", PM_EXACT, "", false},
        {"abc*", PM_PREFIX, "abc", true},
        {"abc*", PM_PREFIX, "abcdef", true},
        {"abc*", PM_PREFIX, "ab", false},
        {"abc*", PM_PREFIX, "xabc", false},
        {"*abc", PM_SUFFIX, "abc", true},
        {"*abc", PM_SUFFIX, "xyzabc", true},
        {"*abc", PM_SUFFIX, "abcx", false},
        {"*abc", PM_SUFFIX, "bc", false},
        {"*", PM_PRESENCE, "x", true},
        {"*", PM_PRESENCE, "", false},
        /* "**" is a suffix match on "*", and a '*' inside is literal (matcher/string.go). */
        {"**", PM_SUFFIX, "a*", true},
        {"**", PM_SUFFIX, "a", false},
        {"a*c", PM_EXACT, "a*c", true},
        {"a*c", PM_EXACT, "abc", false},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct pol_value v = parse(PA_METHOD, cases[i].pattern);
        if (v.kind != cases[i].kind)
            fail_msg("'%s': kind %d, want %d", cases[i].pattern, v.kind, cases[i].kind);
        bool got = pol_str_match(&v, mw_slice_cstr(cases[i].subject), false);
        if (got != cases[i].want)
            fail_msg("'%s' vs '%s': got %d, want %d", cases[i].pattern, cases[i].subject, got,
                     cases[i].want);
    }
}

/* Hosts compare case-insensitively; a port in :authority must be matched by the pattern
 * (matcher.HostMatcher: exact/prefix/suffix with ignore_case, no port stripping). */
static void test_hosts(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *host;
        bool want;
    } cases[] = {
        {"example.com", "example.com", true},
        {"Example.COM", "example.com", true},
        {"example.com", "EXAMPLE.Com", true},
        {"example.com", "example.com:8080", false},
        {"example.com", "www.example.com", false},
        {"example.com:8080", "example.com:8080", true},
        {"example.com:8080", "example.com:8081", false},
        {"*.example.com", "api.Example.com", true},
        {"*.example.com", "example.com", false},
        {"*.example.com", "api.example.com:443", false},
        {"example.com*", "example.com:443", true},
        {"example.com*", "example.org", false},
        {"*", "anything", true},
        {"*", "", false},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct pol_value v = parse(PA_HOST, cases[i].pattern);
        bool got = pol_str_match(&v, mw_slice_cstr(cases[i].host), true);
        if (got != cases[i].want)
            fail_msg("host '%s' vs '%s': got %d, want %d", cases[i].pattern, cases[i].host, got,
                     cases[i].want);
    }
}

/* ---------------------------------------------------------------- templates */

static void test_template_check(void **state)
{
    (void)state;
    static const struct {
        const char *t;
        bool is_template, valid;
    } cases[] = {
        {"/{*}", true, true},
        {"/a/{*}/b", true, true},
        {"/a/{**}", true, true},
        {"/{*}/{**}", true, true},
        {"/{**}", true, true},
        {"/{**}/b", true, true}, /* literals may follow {**}; operators may not */
        {"/a/b", false, true},
        {"/a/*", false, true}, /* a prefix match, not a template */
        {"/a{*}", true, false},
        {"/{*}b", true, false},
        {"/a/{*}.txt", true, false},
        {"/{**}/a/{*}", true, false},
        {"/{**}/{**}", true, false},
        {"/a/{*}/b*", true, false},
        {"/a/{*}/{b}", true, false},
        {"/{***}", false, false}, /* not a template, but '{' and '}' are refused anyway */
        {"/a/{b}", false, false},
        {"/a}", false, false},
        {"{*}", true, false}, /* must start with '/' */
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        const char *t = cases[i].t;
        bool is_t = pol_is_template(t, strlen(t));
        if (is_t != cases[i].is_template)
            fail_msg("pol_is_template('%s') = %d, want %d", t, is_t, cases[i].is_template);
        if (is_t) {
            bool ok = mw_ok(pol_template_check(t, strlen(t)));
            if (ok != cases[i].valid)
                fail_msg("pol_template_check('%s') = %d, want %d (%s)", t, ok, cases[i].valid,
                         ok ? "" : mw_error_msg());
        }
        /* The loader accepts and refuses the same paths. */
        struct pol_value v;
        bool loads = mw_ok(pol_value_parse(&arena, PA_PATH, t, strlen(t), "ns", &v));
        if (loads != cases[i].valid)
            fail_msg("paths: ['%s'] loads = %d, want %d", t, loads, cases[i].valid);
    }
}

static void test_template_match(void **state)
{
    (void)state;
    static const struct {
        const char *t, *path;
        bool want;
    } cases[] = {
        {"/a/{*}/c", "/a/b/c", true},
        {"/a/{*}/c", "/a/bbb/c", true},
        {"/a/{*}/c", "/a//c", false}, /* {*} is one non-empty segment */
        {"/a/{*}/c", "/a/b/d/c", false},
        {"/a/{*}/c", "/a/b/c/", false},
        {"/a/{*}/c", "/a/b c/c", false}, /* not a pchar */
        {"/a/{*}/c", "/a/%20/c", true},  /* '%' is a pchar: escapes stay as written */
        {"/a/{**}", "/a/", true},
        {"/a/{**}", "/a/b/c/d", true},
        {"/a/{**}", "/a", false},
        {"/a/{**}", "/ab/c", false},
        {"/{**}", "/", true},
        {"/{**}", "/x/y", true},
        {"/{*}/{**}", "/x", false},
        {"/{*}/{**}", "/x/", true},
        {"/{**}/b", "/x/b", true},
        {"/api/{*}", "/api/v1", true},
        {"/api/{*}", "/API/v1", false},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct pol_value v = parse(PA_PATH, cases[i].t);
        assert_int_equal(v.kind, PM_TEMPLATE);
        bool got = pol_template_match(&v, mw_slice_cstr(cases[i].path));
        if (got != cases[i].want)
            fail_msg("template '%s' vs '%s': got %d, want %d", cases[i].t, cases[i].path, got,
                     cases[i].want);
    }
}

/* ---------------------------------------------------------------- IPs and CIDRs */

static void test_ip_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint8_t family; /* 0: rejected */
        uint8_t b0, b15;
    } cases[] = {
        {"1.2.3.4", 4, 1, 0},
        {"0.0.0.0", 4, 0, 0},
        {"255.255.255.255", 4, 255, 0},
        {"::", 6, 0, 0},
        {"::1", 6, 0, 1},
        {"2001:db8::ff", 6, 0x20, 0xff},
        {"2001:0DB8:0:0:0:0:0:1", 6, 0x20, 1},
        {"::ffff:10.0.0.7", 6, 0, 7},
        {"fe80::", 6, 0xfe, 0},
        {"", 0, 0, 0},
        {"1.2.3", 0, 0, 0},
        {"1.2.3.4.5", 0, 0, 0},
        {"256.1.1.1", 0, 0, 0},
        {"01.2.3.4", 0, 0, 0}, /* octal-looking: netip refuses */
        {"1.2.3.4 ", 0, 0, 0},
        {"1..3.4", 0, 0, 0},
        {"a.b.c.d", 0, 0, 0},
        {"-1.2.3.4", 0, 0, 0},
        {":::1", 0, 0, 0},
        {"1::2::3", 0, 0, 0},
        {"12345::", 0, 0, 0},
        {"1:2:3:4:5:6:7:8:9", 0, 0, 0},
        {"1:2:3:4:5:6:7", 0, 0, 0},
        {":1::", 0, 0, 0},
        {"1::", 6, 0, 0},
        {"fe80::1%eth0", 0, 0, 0}, /* zones are not addresses in policies */
        {"[::1]", 0, 0, 0},
        {"::ffff:1.2.3", 0, 0, 0},
        {"1.2.3.4/8", 0, 0, 0},
        {"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255:1", 0, 0, 0},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct mw_policy_ip ip;
        mw_result r = mw_policy_ip_parse(mw_slice_cstr(cases[i].s), &ip);
        if (cases[i].family == 0) {
            if (mw_ok(r))
                fail_msg("'%s' parsed as an IP, want rejected", cases[i].s);
            continue;
        }
        if (mw_failed(r))
            fail_msg("'%s' rejected: %s", cases[i].s, mw_error_msg());
        assert_int_equal(ip.family, cases[i].family);
        assert_int_equal(ip.b[0], cases[i].b0);
        if (ip.family == 6)
            assert_int_equal(ip.b[15], cases[i].b15);
    }
}

static void test_cidr(void **state)
{
    (void)state;
    static const struct {
        const char *cidr, *ip;
        int want; /* 1 contains, 0 not, -1 the CIDR is rejected */
    } cases[] = {
        {"10.0.0.0/8", "10.255.1.1", 1},
        {"10.0.0.0/8", "11.0.0.1", 0},
        {"10.1.2.3", "10.1.2.3", 1}, /* a bare address is a /32 */
        {"10.1.2.3", "10.1.2.4", 0},
        {"1.2.3.4/31", "1.2.3.5", 1},
        {"1.2.3.4/31", "1.2.3.6", 0},
        {"1.2.3.4/0", "200.1.1.1", 1},
        {"10.0.0.1/8", "10.9.9.9", 1}, /* host bits set: accepted, masked when matching */
        {"192.168.0.0/23", "192.168.1.255", 1},
        {"192.168.0.0/23", "192.168.2.0", 0},
        {"10.0.0.0/8", "::ffff:10.0.0.1", 0}, /* families never cross */
        {"::/0", "1.2.3.4", 0},
        {"::/0", "2001:db8::1", 1},
        {"2001:db8::/32", "2001:db8:ffff::1", 1},
        {"2001:db8::/32", "2001:db9::1", 0},
        {"2001:db8:8000::/33", "2001:db8:8000::1", 1},
        {"2001:db8:8000::/33", "2001:db8:7fff::1", 0},
        {"::1/128", "::1", 1},
        {"::1", "::2", 0},
        {"10.0.0.0/33", NULL, -1},
        {"::/129", NULL, -1},
        {"10.0.0.0/", NULL, -1},
        {"10.0.0.0/-1", NULL, -1},
        {"10.0.0.0/8x", NULL, -1},
        {"10.0.0.0/08a", NULL, -1},
        {"10.0.0.0//8", NULL, -1},
        {"/8", NULL, -1},
        {"10.0.0/8", NULL, -1},
        {"10.0.0.0/ 8", NULL, -1},
        {"garbage", NULL, -1},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct pol_value v = {.kind = PM_CIDR};
        mw_result r = pol_cidr_parse(mw_slice_cstr(cases[i].cidr), &v.ip, &v.bits);
        if (cases[i].want < 0) {
            if (mw_ok(r))
                fail_msg("CIDR '%s' accepted, want rejected", cases[i].cidr);
            /* The loader refuses it for ipBlocks as well. */
            struct pol_value pv;
            assert_true(mw_failed(pol_value_parse(&arena, PA_SOURCE_IP, cases[i].cidr,
                                                  strlen(cases[i].cidr), "ns", &pv)));
            continue;
        }
        if (mw_failed(r))
            fail_msg("CIDR '%s' rejected: %s", cases[i].cidr, mw_error_msg());
        struct mw_policy_ip ip;
        mw_assert_ok(mw_policy_ip_parse(mw_slice_cstr(cases[i].ip), &ip));
        bool got = pol_cidr_contains(&v, &ip);
        if (got != (cases[i].want == 1))
            fail_msg("'%s' contains '%s': got %d, want %d", cases[i].cidr, cases[i].ip, got,
                     cases[i].want);
    }
}

static void test_ports(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int want; /* port, or -1 rejected */
    } cases[] = {
        {"80", 80}, {"0", 0}, {"65535", 65535}, {"65536", -1}, {"-1", -1},
        {"8o", -1}, {"", -1}, {" 80", -1},      {"+80", -1},   {"0x50", -1},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct pol_value v;
        mw_result r = pol_value_parse(&arena, PA_PORT, cases[i].s, strlen(cases[i].s), "ns", &v);
        if (cases[i].want < 0) {
            if (mw_ok(r))
                fail_msg("port '%s' accepted", cases[i].s);
            continue;
        }
        if (mw_failed(r))
            fail_msg("port '%s' rejected: %s", cases[i].s, mw_error_msg());
        assert_int_equal(v.kind, PM_PORT);
        assert_int_equal(v.port, cases[i].want);
    }
}

/* ---------------------------------------------------------------- identities */

static void test_namespaces(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *identity;
        bool want;
    } cases[] = {
        {"foo", "cluster.local/ns/foo/sa/bar", true},
        {"foo", "cluster.local/ns/foobar/sa/bar", false},
        {"foo", "cluster.local/ns/xfoo/sa/bar", false},
        {"foo", "cluster.local/ns/bar/sa/foo", false},
        {"foo", "td/ns/foo", false}, /* the regex wants ".../ns/foo/..." */
        {"team-*", "cluster.local/ns/team-a/sa/x", true},
        {"team-*", "cluster.local/ns/team/sa/x", false},
        {"*-prod", "cluster.local/ns/pay-prod/sa/x", true},
        {"*", "cluster.local/ns/anything/sa/x", true},
        {"*", "spiffe-without-ns", false},
        {"Foo", "cluster.local/ns/foo/sa/x", false},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct pol_value v = parse(PA_NAMESPACE, cases[i].pattern);
        bool got = pol_ns_glob_match(&v, mw_slice_cstr(cases[i].identity));
        if (got != cases[i].want)
            fail_msg("namespace '%s' vs '%s': got %d, want %d", cases[i].pattern, cases[i].identity,
                     got, cases[i].want);
    }
}

static void test_service_accounts(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *identity;
        bool want;
    } cases[] = {
        {"ns1/sa1", "cluster.local/ns/ns1/sa/sa1", true},
        {"ns1/sa1", "cluster.local/ns/ns1/sa/sa1x", false},
        {"ns1/sa1", "cluster.local/ns/ns1/sa/sa", false},
        {"ns1/sa1", "cluster.local/ns/ns2/sa/sa1", false},
        {"ns1/sa1", "ns/ns1/sa/sa1", false}, /* a trust domain is required */
        {"ns1/sa1", "cluster.local/ns/ns1/extra/sa/sa1", true},
        {"sa1", "cluster.local/ns/policy-ns/sa/sa1", true}, /* bare name: the policy's ns */
        {"sa1", "cluster.local/ns/other/sa/sa1", false},
    };
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        struct pol_value v = parse(PA_SERVICE_ACCOUNT, cases[i].pattern);
        bool got = pol_sa_match(&v, mw_slice_cstr(cases[i].identity));
        if (got != cases[i].want)
            fail_msg("serviceAccount '%s' vs '%s': got %d, want %d", cases[i].pattern,
                     cases[i].identity, got, cases[i].want);
    }
}

/* ---------------------------------------------------------------- paths */

static const char *const modes[] = {"BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES", "NONE"};

static void test_path_normalize(void **state)
{
    (void)state;
    /* want[mode]: the normalised path, or NULL when the path is refused. */
    static const struct {
        const char *in;
        const char *want[4];
    } cases[] = {
        {"/a/b", {"/a/b", "/a/b", "/a/b", "/a/b"}},
        {"/a/./b", {"/a/b", "/a/b", "/a/b", "/a/./b"}},
        {"/a/b/../c", {"/a/c", "/a/c", "/a/c", "/a/b/../c"}},
        {"/a/b/c/../../d", {"/a/d", "/a/d", "/a/d", "/a/b/c/../../d"}},
        {"/admin/x/../y", {"/admin/y", "/admin/y", "/admin/y", "/admin/x/../y"}},
        {"/a/../b", {"/b", "/b", "/b", "/a/../b"}},
        {"/a/b/..", {"/a/", "/a/", "/a/", "/a/b/.."}},
        {"/a/.", {"/a/", "/a/", "/a/", "/a/."}},
        {"/..", {"/", "/", "/", "/.."}},
        {"/../../x", {"/x", "/x", "/x", "/../../x"}},
        {"/a//b", {"/a//b", "/a/b", "/a/b", "/a//b"}},
        {"//a", {"//a", "/a", "/a", "//a"}},
        {"/a/", {"/a/", "/a/", "/a/", "/a/"}},
        {"/a%2Fb", {"/a%2Fb", "/a%2Fb", "/a/b", "/a%2Fb"}},
        {"/a%2fb", {"/a%2Fb", "/a%2Fb", "/a/b", "/a%2fb"}},
        {"/a%2F..%2Fb", {"/a%2F..%2Fb", "/a%2F..%2Fb", "/b", "/a%2F..%2Fb"}},
        {"/a%5Cb", {"/a%5Cb", "/a%5Cb", "/a/b", "/a%5Cb"}},
        {"/%61dmin", {"/admin", "/admin", "/admin", "/%61dmin"}},
        {"/%2e%2e/admin", {"/admin", "/admin", "/admin", "/%2e%2e/admin"}},
        {"/a%20b", {"/a%20b", "/a%20b", "/a%20b", "/a%20b"}},
        {"/a%zzb", {"/a%zzb", "/a%zzb", "/a%zzb", "/a%zzb"}},
        {"/a%2", {"/a%2", "/a%2", "/a%2", "/a%2"}},
        {"\\a\\b", {"/a/b", "/a/b", "/a/b", "\\a\\b"}},
        {"a/b", {"/a/b", "/a/b", "/a/b", "a/b"}},
        {"/a?x=/../b", {"/a", "/a", "/a", "/a"}},
        {"/a#/../b", {"/a", "/a", "/a", "/a"}},
        {"", {"/", "/", "/", ""}},
        {"/%00", {NULL, NULL, NULL, "/%00"}},
        {"/a%00/../b", {NULL, NULL, NULL, "/a%00/../b"}},
    };
    char out[MW_POLICY_MAX_PATH];
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        for (int m = 0; m < 4; m++) {
            size_t n = 0;
            mw_result r = pol_path_normalize(mw_slice_cstr(cases[i].in),
                                             (enum mw_policy_path_norm)m, out, &n);
            const char *want = cases[i].want[m];
            if (want == NULL) {
                if (mw_ok(r))
                    fail_msg("%s: '%s' -> '%.*s', want refused", modes[m], cases[i].in, (int)n,
                             out);
                continue;
            }
            if (mw_failed(r))
                fail_msg("%s: '%s' refused: %s", modes[m], cases[i].in, mw_error_msg());
            if (n != strlen(want) || memcmp(out, want, n) != 0)
                fail_msg("%s: '%s' -> '%.*s', want '%s'", modes[m], cases[i].in, (int)n, out, want);
        }
    }
}

/* Oversized paths are refused in every mode rather than truncated. */
static void test_path_too_long(void **state)
{
    (void)state;
    static char big[MW_POLICY_MAX_PATH + 16];
    char out[MW_POLICY_MAX_PATH];
    memset(big, 'a', sizeof(big) - 1);
    big[0] = '/';
    for (int m = 0; m < 4; m++) {
        size_t n;
        mw_assert_fails(
            pol_path_normalize(mw_slice_cstr(big), (enum mw_policy_path_norm)m, out, &n),
            MW_E_LIMIT);
    }
    size_t n;
    mw_assert_fails(pol_path_strict(mw_slice_cstr(big), out, &n), MW_E_LIMIT);
    /* Just under the limit is fine. */
    big[MW_POLICY_MAX_PATH - 2] = '\0';
    mw_assert_ok(pol_path_normalize(mw_slice_cstr(big), MW_POLICY_PATH_BASE, out, &n));
    assert_int_equal(n, MW_POLICY_MAX_PATH - 2);
}

/* The strictest reading, used on the DENY side so that no spelling side-steps a rule. */
static void test_path_strict(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want; /* want NULL: refused */
    } cases[] = {
        {"/a/b", "/a/b"},
        {"//a///b", "/a/b"},
        {"/a/./b/../c", "/a/c"},
        {"/admin/x/%2e%2e/y", "/admin/y"},
        {"/a/b/c/../../d", "/a/d"},
        {"/x/%2e%2e/admin", "/admin"},
        {"/x%2f..%2fadmin", "/admin"},
        {"/x\\..\\admin", "/admin"},
        {"/admin;jsessionid=1", "/admin"},
        {"/admin./x", "/admin/x"},
        {"/admin%20", "/admin"},
        {"/ADMIN", "/ADMIN"}, /* case is folded by the caller */
        {"/a/", "/a/"},
        {"/a?q=1", "/a"},
        {"/%2561", "/%61"}, /* decoded once, never twice */
        {"/%00", NULL},
    };
    char out[MW_POLICY_MAX_PATH];
    for (size_t i = 0; i < MW_ARRAY_LEN(cases); i++) {
        size_t n = 0;
        mw_result r = pol_path_strict(mw_slice_cstr(cases[i].in), out, &n);
        if (cases[i].want == NULL) {
            if (mw_ok(r))
                fail_msg("strict: '%s' -> '%.*s', want refused", cases[i].in, (int)n, out);
            continue;
        }
        if (mw_failed(r))
            fail_msg("strict: '%s' refused: %s", cases[i].in, mw_error_msg());
        if (n != strlen(cases[i].want) || memcmp(out, cases[i].want, n) != 0)
            fail_msg("strict: '%s' -> '%.*s', want '%s'", cases[i].in, (int)n, out, cases[i].want);
    }
}

static void test_path_norm_names(void **state)
{
    (void)state;
    enum mw_policy_path_norm m;
    mw_assert_ok(mw_policy_path_norm_parse("DEFAULT", &m));
    assert_int_equal(m, MW_POLICY_PATH_BASE);
    for (int i = 0; i < 4; i++) {
        mw_assert_ok(mw_policy_path_norm_parse(modes[i], &m));
        assert_int_equal(m, i);
    }
    mw_assert_fails(mw_policy_path_norm_parse("base", &m), MW_E_INPUT);
    mw_assert_fails(mw_policy_path_norm_parse("", &m), MW_E_INPUT);
    mw_assert_fails(mw_policy_path_norm_parse("MERGE_SLASHES ", &m), MW_E_INPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_string_forms, teardown),
        cmocka_unit_test_teardown(test_hosts, teardown),
        cmocka_unit_test_teardown(test_template_check, teardown),
        cmocka_unit_test_teardown(test_template_match, teardown),
        cmocka_unit_test_teardown(test_ip_parse, teardown),
        cmocka_unit_test_teardown(test_cidr, teardown),
        cmocka_unit_test_teardown(test_ports, teardown),
        cmocka_unit_test_teardown(test_namespaces, teardown),
        cmocka_unit_test_teardown(test_service_accounts, teardown),
        cmocka_unit_test_teardown(test_path_normalize, teardown),
        cmocka_unit_test_teardown(test_path_too_long, teardown),
        cmocka_unit_test_teardown(test_path_strict, teardown),
        cmocka_unit_test_teardown(test_path_norm_names, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
