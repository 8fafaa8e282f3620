#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <meshward/base.h>

mw_result mw_file_read(const char *path, size_t max, struct mw_dynbuf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        MW_BAIL(e == ENOENT ? MW_E_NOTFOUND : (e == EACCES ? MW_E_PERM : MW_E_IO), "%s: %s", path,
                strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        MW_BAIL(MW_E_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        MW_BAIL(MW_E_LIMIT, "%s: %lld bytes is more than the limit of %zu", path,
                (long long)st.st_size, max);
    }
    size_t start = out->n;
    uint8_t chunk[4096];
    for (;;) {
        /* Read in chunks: the size from fstat may be stale, the cap is what counts. */
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            out->n = start;
            MW_BAIL(MW_E_IO, "%s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        if (out->n - start + (size_t)r > max) {
            close(fd);
            out->n = start;
            MW_BAIL(MW_E_LIMIT, "%s: more than the limit of %zu bytes", path, max);
        }
        if (mw_failed(mw_dynbuf_add(out, chunk, (size_t)r))) {
            close(fd);
            out->n = start;
            mw_error_prefix("%s: ", path);
            return MW_FAILURE;
        }
    }
    /* The chunk may have held a key file's bytes. */
    mw_wipe(chunk, sizeof(chunk));
    if (mw_failed(mw_dynbuf_reserve(out, 0))) {
        close(fd);
        return MW_FAILURE;
    }
    out->p[out->n] = 0;
    close(fd);
    return MW_SUCCESS;
}

mw_result mw_file_read_stream(FILE *f, const char *name, size_t max, struct mw_dynbuf *out)
{
    size_t start = out->n;
    uint8_t chunk[4096];
    for (;;) {
        size_t r = fread(chunk, 1, sizeof(chunk), f);
        if (r > 0) {
            if (out->n - start + r > max) {
                out->n = start;
                MW_BAIL(MW_E_LIMIT, "%s: more than the limit of %zu bytes", name, max);
            }
            MW_GUARD(mw_dynbuf_add(out, chunk, r));
        }
        if (r < sizeof(chunk)) {
            if (ferror(f)) {
                out->n = start;
                MW_BAIL(MW_E_IO, "%s: read error", name);
            }
            break;
        }
    }
    MW_GUARD(mw_dynbuf_reserve(out, 0));
    out->p[out->n] = 0;
    return MW_SUCCESS;
}

mw_result mw_file_check_private(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        MW_BAIL(e == ENOENT ? MW_E_NOTFOUND : MW_E_IO, "%s: %s", path, strerror(e));
    }
    MW_ENSURE(S_ISREG(st.st_mode), MW_E_PERM, "%s: not a regular file", path);
    MW_ENSURE((st.st_mode & (S_IRWXG | S_IRWXO)) == 0, MW_E_PERM,
              "%s: mode %04o lets group or others read it; secrets must be 0600 or stricter (chmod "
              "600 %s)",
              path, (unsigned)(st.st_mode & 07777), path);
    return MW_SUCCESS;
}

static mw_result fsync_dir_of(const char *path)
{
    char copy[4096];
    int n = snprintf(copy, sizeof(copy), "%s", path);
    MW_ENSURE(n >= 0 && (size_t)n < sizeof(copy), MW_E_INPUT, "path too long: %s", path);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    MW_ENSURE(dfd >= 0, MW_E_IO, "%s: cannot open its directory: %s", path, strerror(errno));
    int rc = fsync(dfd);
    int e = errno;
    close(dfd);
    MW_ENSURE(rc == 0, MW_E_IO, "%s: fsync of directory: %s", path, strerror(e));
    return MW_SUCCESS;
}

static mw_result write_replace(const char *path, mw_slice data, unsigned mode, bool durable)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    MW_ENSURE(n >= 0 && (size_t)n < sizeof(tmp), MW_E_INPUT, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
    MW_ENSURE(fd >= 0, MW_E_IO, "%s: %s", tmp, strerror(errno));
    size_t off = 0;
    while (off < data.n) {
        ssize_t w = write(fd, data.p + off, data.n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            MW_BAIL(MW_E_IO, "%s: write: %s", tmp, strerror(e));
        }
        off += (size_t)w;
    }
    if (fchmod(fd, (mode_t)mode) != 0 || (durable && fsync(fd) != 0)) {
        int e = errno;
        close(fd);
        unlink(tmp);
        MW_BAIL(MW_E_IO, "%s: %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        MW_BAIL(MW_E_IO, "rename %s to %s: %s", tmp, path, strerror(e));
    }
    return durable ? fsync_dir_of(path) : MW_SUCCESS;
}

mw_result mw_file_write_atomic(const char *path, mw_slice data, unsigned mode)
{
    return write_replace(path, data, mode, true);
}

mw_result mw_file_write_replace(const char *path, mw_slice data, unsigned mode)
{
    return write_replace(path, data, mode, false);
}

mw_result mw_fs_sync(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    MW_ENSURE(fd >= 0, MW_E_IO, "%s: %s", path, strerror(errno));
    int rc = syncfs(fd);
    int e = errno;
    close(fd);
    MW_ENSURE(rc == 0, MW_E_IO, "syncfs %s: %s", path, strerror(e));
    return MW_SUCCESS;
}
