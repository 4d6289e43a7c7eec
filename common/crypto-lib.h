/* crypto-lib.h: libcrypto, loaded on the first hash instead of when a
 * program starts (see crypto-lib.c for why and how). The EVP functions the
 * programs call are used as declared by <openssl/evp.h>. */
#ifndef CHJ_CRYPTO_LIB_H
#define CHJ_CRYPTO_LIB_H

/* NULL when libcrypto is loaded (loading it now if need be); else why it
 * cannot be: each EVP function then fails as OpenSSL's do (0, NULL). */
const char *crypto_lib_error(void);

#endif
