/* crypto-lib.c: libcrypto (OpenSSL), loaded with dlopen() on the first hash
 * instead of when a program starts.
 *
 * Linked the ordinary way, libcrypto.so.3 (4.5 MB, built BIND_NOW by Debian:
 * every one of its symbols bound at exec) cost each chjournal process 1.5 to
 * 2 ms here, against 0.7 ms for SQLite: a fifth of a `begin --list`, which
 * hashes nothing. Only the Cyrus archive code hashes (SHA1, SHA256, base64),
 * so the program is not linked with libcrypto; it defines the few EVP
 * functions that code calls, each forwarding to libcrypto's own, loaded (by
 * the soname configure found) on the first call, once per process, from any
 * thread: the technique of Implib.so's lazy-loading stubs. The call sites
 * keep OpenSSL's prototypes (declared by <openssl/evp.h>, checked here by
 * __typeof__). A program that also links libcrypto itself (a unit test)
 * gets these definitions first, with the same effect.
 *
 * When libcrypto cannot be loaded each function fails as OpenSSL's fail (0,
 * NULL), and crypto_lib_error() says why for the message of the caller. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto-lib.h"

#ifndef LIBCRYPTO_SONAME
#define LIBCRYPTO_SONAME "libcrypto.so.3"
#endif

/* Every libcrypto function the programs call. */
#define CRYPTO_LIB_FUNCS(X) \
	X(EVP_Digest) X(EVP_DigestInit_ex) X(EVP_DigestUpdate) X(EVP_DigestFinal_ex) \
	X(EVP_MD_CTX_new) X(EVP_MD_CTX_free) X(EVP_sha1) X(EVP_sha256) X(EVP_EncodeBlock)

static struct {
#define CRYPTO_LIB_FIELD(name) __typeof__(name) *name;
	CRYPTO_LIB_FUNCS(CRYPTO_LIB_FIELD)
#undef CRYPTO_LIB_FIELD
	int loaded;
	char error[256];
} lib;

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void
lib_load(void)
{
	const char *e;
	void *h, *sym;

	/* NODELETE: never unloaded, as the pointers below are kept */
	h = dlopen(LIBCRYPTO_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (h == NULL)
		goto fail;
#define CRYPTO_LIB_LOAD(name)                                                   \
	if ((sym = dlsym(h, #name)) == NULL)                                     \
		goto fail;                                                       \
	memcpy(&lib.name, &sym, sizeof sym);
	CRYPTO_LIB_FUNCS(CRYPTO_LIB_LOAD)
#undef CRYPTO_LIB_LOAD
	lib.loaded = 1;
	return;
fail:
	e = dlerror();
	snprintf(lib.error, sizeof lib.error, "cannot load libcrypto '%s': %s", LIBCRYPTO_SONAME,
	    e != NULL ? e : "unknown error");
}

/* 1 when libcrypto is there to call. */
static int
lib_ready(void)
{
	pthread_once(&lib_once, lib_load);
	return lib.loaded;
}

const char *
crypto_lib_error(void)
{
	return lib_ready() ? NULL : lib.error;
}

int
EVP_Digest(const void *data, size_t count, unsigned char *md, unsigned int *size,
    const EVP_MD *type, ENGINE *impl)
{
	return lib_ready() ? lib.EVP_Digest(data, count, md, size, type, impl) : 0;
}

int
EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl)
{
	return lib_ready() ? lib.EVP_DigestInit_ex(ctx, type, impl) : 0;
}

int
EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt)
{
	return lib_ready() ? lib.EVP_DigestUpdate(ctx, d, cnt) : 0;
}

int
EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s)
{
	return lib_ready() ? lib.EVP_DigestFinal_ex(ctx, md, s) : 0;
}

EVP_MD_CTX *
EVP_MD_CTX_new(void)
{
	return lib_ready() ? lib.EVP_MD_CTX_new() : NULL;
}

void
EVP_MD_CTX_free(EVP_MD_CTX *ctx)
{
	/* a context exists only if libcrypto made it */
	if (ctx != NULL && lib_ready())
		lib.EVP_MD_CTX_free(ctx);
}

const EVP_MD *
EVP_sha1(void)
{
	return lib_ready() ? lib.EVP_sha1() : NULL;
}

const EVP_MD *
EVP_sha256(void)
{
	return lib_ready() ? lib.EVP_sha256() : NULL;
}

int
EVP_EncodeBlock(unsigned char *t, const unsigned char *f, int n)
{
	if (lib_ready())
		return lib.EVP_EncodeBlock(t, f, n);
	t[0] = '\0';
	return 0;
}
