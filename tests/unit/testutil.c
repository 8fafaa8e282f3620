#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *mw_test_data(const char *rel)
{
    static __thread char path[4096];
    struct stat st;
    if (stat(MW_TESTDATA_DIR, &st) != 0 || !S_ISDIR(st.st_mode))
        fail_msg("shared test data is missing: %s does not exist. meshward's tests read "
                 "../shared/testdata beside the repository; check it out there.",
                 MW_TESTDATA_DIR);
    int n = snprintf(path, sizeof(path), "%s/%s", MW_TESTDATA_DIR, rel);
    if (n < 0 || (size_t)n >= sizeof(path))
        fail_msg("test data path too long: %s", rel);
    if (stat(path, &st) != 0)
        fail_msg("test data file missing: %s", path);
    return path;
}

void mw_test_read(const char *rel, struct mw_dynbuf *b)
{
    mw_dynbuf_init(b, 64u << 20);
    const char *path = mw_test_data(rel);
    if (mw_failed(mw_file_read(path, 64u << 20, b)))
        fail_msg("reading %s: %s", path, mw_error_msg());
}

const char *mw_test_tmpdir(void)
{
    static __thread char dir[256];
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    int n = snprintf(dir, sizeof(dir), "%s/mwtest.XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof(dir) || mkdtemp(dir) == NULL)
        fail_msg("cannot make a temporary directory under %s", base);
    return dir;
}
