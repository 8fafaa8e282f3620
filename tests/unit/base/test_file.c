#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_read_and_limit(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof(path), "%s/data", mw_test_tmpdir());
    write_file(path, "0123456789", 0644);

    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1 << 20);
    mw_assert_ok(mw_file_read(path, 10, &b));
    assert_string_equal(mw_dynbuf_cstr(&b), "0123456789");
    mw_dynbuf_reset(&b);
    mw_assert_fails(mw_file_read(path, 9, &b), MW_E_LIMIT);
    assert_int_equal(b.n, 0);
    mw_assert_fails(mw_file_read("/nonexistent/meshward", 10, &b), MW_E_NOTFOUND);
    assert_non_null(strstr(mw_error_msg(), "/nonexistent/meshward"));
    mw_assert_fails(mw_file_read("/tmp", 10, &b), MW_E_IO);
    mw_dynbuf_free(&b);
}

static void test_check_private(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof(path), "%s/key.pem", mw_test_tmpdir());
    write_file(path, "secret", 0600);
    mw_assert_ok(mw_file_check_private(path));
    assert_int_equal(chmod(path, 0640), 0);
    mw_assert_fails(mw_file_check_private(path), MW_E_PERM);
    assert_non_null(strstr(mw_error_msg(), "0640"));
    assert_int_equal(chmod(path, 0602), 0);
    mw_assert_fails(mw_file_check_private(path), MW_E_PERM);
    assert_int_equal(chmod(path, 0400), 0);
    mw_assert_ok(mw_file_check_private(path));
    mw_assert_fails(mw_file_check_private("/nonexistent/key"), MW_E_NOTFOUND);
}

static void test_write_atomic(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof(path), "%s/out.json", mw_test_tmpdir());
    mw_assert_ok(mw_file_write_atomic(path, mw_slice_cstr("first"), 0600));
    mw_assert_ok(mw_file_write_atomic(path, mw_slice_cstr("second"), 0600));
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 100);
    mw_assert_ok(mw_file_read(path, 100, &b));
    assert_string_equal(mw_dynbuf_cstr(&b), "second");
    mw_dynbuf_free(&b);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    mw_assert_fails(mw_file_write_atomic("/nonexistent/dir/x", mw_slice_cstr("x"), 0600), MW_E_IO);
}

static void test_write_replace_and_sync(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof(path), "%s/tile", mw_test_tmpdir());
    mw_assert_ok(mw_file_write_replace(path, mw_slice_cstr("one"), 0644));
    mw_assert_ok(mw_file_write_replace(path, mw_slice_cstr("two"), 0644));
    mw_assert_ok(mw_fs_sync(path));
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 100);
    mw_assert_ok(mw_file_read(path, 100, &b));
    assert_string_equal(mw_dynbuf_cstr(&b), "two");
    mw_dynbuf_free(&b);
    mw_assert_fails(mw_fs_sync("/nonexistent/path"), MW_E_IO);
    mw_assert_fails(mw_file_write_replace("/nonexistent/dir/x", mw_slice_cstr("x"), 0644), MW_E_IO);
}

static void test_read_stream(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    for (int i = 0; i < 3000; i++)
        fputs("abc", f);
    rewind(f);
    struct mw_dynbuf b;
    mw_dynbuf_init(&b, 1 << 20);
    mw_assert_ok(mw_file_read_stream(f, "<stdin>", 9000, &b));
    assert_int_equal(b.n, 9000);
    rewind(f);
    mw_dynbuf_reset(&b);
    mw_assert_fails(mw_file_read_stream(f, "<stdin>", 8999, &b), MW_E_LIMIT);
    fclose(f);
    mw_dynbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_and_limit), cmocka_unit_test(test_check_private),
        cmocka_unit_test(test_write_atomic),   cmocka_unit_test(test_write_replace_and_sync),
        cmocka_unit_test(test_read_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
