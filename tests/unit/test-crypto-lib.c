/* test-crypto-lib.c: cmocka unit tests for libcrypto loaded on first use
 * (common/crypto-lib.c): a program linked without it has no libcrypto
 * mapped until its first hash; then SHA1, SHA256 (one call and in parts)
 * and base64 give the known answers, the same from several threads at once
 * for the first call. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto-lib.h"

/* 1 when a libcrypto is mapped into this process. */
static int
libcrypto_mapped(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	assert_non_null(f);
	while (!found && fgets(line, sizeof line, f) != NULL)
		found = strstr(line, "/libcrypto.so") != NULL;
	fclose(f);
	return found;
}

static void
hex(const unsigned char *d, unsigned n, char *out)
{
	unsigned i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

/* SHA1 of "abc" by one call, as hex into out. */
static void *
sha1_abc(void *out)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	if (EVP_Digest("abc", 3, d, &n, EVP_sha1(), NULL) == 1 && n == 20)
		hex(d, n, out);
	return NULL;
}

/* Runs first (cmocka keeps the order): nothing has hashed yet. */
static void
test_loaded_on_first_use(void **state)
{
	char got[4][41];
	pthread_t t[4];
	int i;

	(void)state;
	assert_false(libcrypto_mapped());
	memset(got, 0, sizeof got);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, sha1_abc, got[i]), 0);
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_string_equal(got[i], "a9993e364706816aba3e25717850c26c9cd0d89d");
	}
	assert_true(libcrypto_mapped());
	assert_null(crypto_lib_error());
}

static void
test_digests(void **state)
{
	unsigned char d[EVP_MAX_MD_SIZE], b64[16];
	char h[2 * EVP_MAX_MD_SIZE + 1];
	unsigned n = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	(void)state;
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, "a", 1), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, "bc", 2), 1);
	assert_int_equal(EVP_DigestFinal_ex(ctx, d, &n), 1);
	assert_int_equal(n, 32);
	hex(d, n, h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	EVP_MD_CTX_free(ctx);
	EVP_MD_CTX_free(NULL);
	assert_int_equal(EVP_EncodeBlock(b64, (const unsigned char *)"abcd", 4), 8);
	assert_string_equal((char *)b64, "YWJjZA==");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loaded_on_first_use),
		cmocka_unit_test(test_digests),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
