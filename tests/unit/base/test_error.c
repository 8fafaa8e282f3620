#include "testutil.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <string.h>

static mw_result fails_with_input(int depth)
{
    if (depth == 0)
        MW_BAIL(MW_E_INPUT, "SVID has %d URI SANs, want 1", 2);
    MW_GUARD(fails_with_input(depth - 1));
    return MW_SUCCESS;
}

static mw_result ensure_positive(int v)
{
    MW_ENSURE(v > 0, MW_E_INPUT, "value %d is not positive", v);
    return MW_SUCCESS;
}

static void test_bail_and_guard_propagate(void **state)
{
    (void)state;
    mw_error_clear();
    assert_int_equal(mw_error_code(), MW_E_NONE);
    mw_assert_fails(fails_with_input(3), MW_E_INPUT);
    assert_string_equal(mw_error_msg(), "SVID has 2 URI SANs, want 1");
    mw_assert_ok(ensure_positive(1));
    mw_assert_fails(ensure_positive(-4), MW_E_INPUT);
    assert_string_equal(mw_error_msg(), "value -4 is not positive");
}

static void test_prefix(void **state)
{
    (void)state;
    mw_error_set(MW_E_LIMIT, "nesting deeper than %d", 64);
    mw_error_prefix("%s:%d: ", "policy.yaml", 12);
    assert_string_equal(mw_error_msg(), "policy.yaml:12: nesting deeper than 64");
    assert_int_equal(mw_error_code(), MW_E_LIMIT);

    /* A prefix that fills the slot cuts the old message rather than overflowing. */
    char big[2000];
    memset(big, 'p', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    mw_error_prefix("%s", big);
    assert_true(strlen(mw_error_msg()) < 1024);
}

static void test_openssl_error_is_drained(void **state)
{
    (void)state;
    /* Provoke an OpenSSL error: decode garbage as a private key. */
    const unsigned char junk[] = "not a key";
    const unsigned char *p = junk;
    EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &p, (long)sizeof(junk));
    assert_null(k);
    mw_error_openssl(MW_E_CRYPTO, "reading key %s", "k.pem");
    assert_int_equal(mw_error_code(), MW_E_CRYPTO);
    assert_true(strncmp(mw_error_msg(), "reading key k.pem", 17) == 0);
    assert_int_equal(ERR_peek_error(), 0);
}

static void test_err_names(void **state)
{
    (void)state;
    assert_string_equal(mw_err_name(MW_E_INPUT), "input");
    assert_string_equal(mw_err_name(MW_E_PERM), "permission");
    assert_string_equal(mw_err_name((enum mw_err)999), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bail_and_guard_propagate),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_openssl_error_is_drained),
        cmocka_unit_test(test_err_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
