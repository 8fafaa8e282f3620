/*
 * Internal: scope-bound ownership of OpenSSL objects.
 *
 *     MW_DEFER(X509) X509 *cert = NULL;
 *
 * frees cert when it goes out of scope. To hand the object out on success,
 * move it: *out = cert; cert = NULL;
 */
#ifndef MESHWARD_MW_OSSL_H
#define MESHWARD_MW_OSSL_H

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/param_build.h>
#include <openssl/core.h>
#include <openssl/params.h>

#define MW_DEFER(type) __attribute__((cleanup(mw_cleanup_##type)))

#define MW_DEFINE_CLEANUP(type, fn)                \
    static inline void mw_cleanup_##type(type **p) \
    {                                              \
        if (*p != NULL)                            \
            fn(*p);                                \
        *p = NULL;                                 \
    }

MW_DEFINE_CLEANUP(X509, X509_free)
MW_DEFINE_CLEANUP(EVP_PKEY, EVP_PKEY_free)
MW_DEFINE_CLEANUP(EVP_PKEY_CTX, EVP_PKEY_CTX_free)
MW_DEFINE_CLEANUP(EVP_MD_CTX, EVP_MD_CTX_free)
MW_DEFINE_CLEANUP(BIO, BIO_free)
MW_DEFINE_CLEANUP(BIGNUM, BN_free)
MW_DEFINE_CLEANUP(X509_STORE, X509_STORE_free)
MW_DEFINE_CLEANUP(X509_STORE_CTX, X509_STORE_CTX_free)
MW_DEFINE_CLEANUP(GENERAL_NAMES, GENERAL_NAMES_free)
MW_DEFINE_CLEANUP(ASN1_OCTET_STRING, ASN1_OCTET_STRING_free)
MW_DEFINE_CLEANUP(ASN1_TIME, ASN1_TIME_free)
MW_DEFINE_CLEANUP(ECDSA_SIG, ECDSA_SIG_free)
MW_DEFINE_CLEANUP(OSSL_PARAM_BLD, OSSL_PARAM_BLD_free)
MW_DEFINE_CLEANUP(OSSL_PARAM, OSSL_PARAM_free)

static inline void mw_cleanup_STACK_OF_X509(STACK_OF(X509) * *p)
{
    if (*p != NULL)
        sk_X509_pop_free(*p, X509_free);
    *p = NULL;
}
#define MW_DEFER_X509_STACK __attribute__((cleanup(mw_cleanup_STACK_OF_X509)))

#endif
