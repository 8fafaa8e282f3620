#include <openssl/crypto.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <meshward/base.h>

void mw_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

/*
 * Secrets get their own pages so that mlock and MADV_DONTDUMP cover them and
 * nothing else; a key is a few hundred bytes, so the waste is a page each.
 * mlock can fail under RLIMIT_MEMLOCK; the memory is still excluded from core
 * dumps and wiped, so that failure is tolerated (and skipped entirely under
 * sanitizers, whose allocators do not mix with mmap'd secrets well).
 */
void *mw_secmem_alloc(size_t n)
{
    if (n == 0)
        n = 1;
#ifdef MW_NO_MLOCK
    return calloc(1, n);
#else
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    (void)mlock(p, n);
    (void)madvise(p, n, MADV_DONTDUMP);
    return p;
#endif
}

void mw_secmem_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    if (n == 0)
        n = 1;
    mw_wipe(p, n);
#ifdef MW_NO_MLOCK
    free(p);
#else
    (void)munlock(p, n);
    munmap(p, n);
#endif
}

void mw_secmem_openssl_heap(void)
{
#ifndef MW_NO_MLOCK
    if (!CRYPTO_secure_malloc_initialized())
        (void)CRYPTO_secure_malloc_init(65536, 32);
#endif
}

mw_result mw_secmem_harden_process(void)
{
    /* No core files and no ptrace by other users' processes: keys stay in this process. */
    struct rlimit rl = {0, 0};
    MW_ENSURE(setrlimit(RLIMIT_CORE, &rl) == 0, MW_E_IO, "cannot disable core dumps");
    MW_ENSURE(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, MW_E_IO,
              "cannot make the process non-dumpable");
    return MW_SUCCESS;
}
