/* fuzz-manifest.c: libFuzzer target for manifest_parse and manifest_format.
 * Whatever the bytes, no crash, no leak. What parses must format, and the
 * formatted text must parse again to the same state (user, folders, files,
 * time and seq) and format to the very same text (formatting is canonical). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/manifest.h"

#define CHECK(cond)                                                                \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "fuzz-manifest: check failed: %s\n", #cond); \
			abort();                                                   \
		}                                                                  \
	} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest m, m2;
	char *buf = NULL, *buf2 = NULL, *copy;
	size_t len = 0, len2 = 0;

	copy = malloc(size ? size : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	if (manifest_parse(&m, copy, size) < 0) {
		CHECK(m.err.msg[0] != '\0' && strchr(m.err.msg, '\n') == NULL);
		CHECK(m.user == NULL && m.folders == NULL && m.files == NULL);
		free(copy);
		return 0;
	}
	CHECK(m.user != NULL);
	CHECK(manifest_format(&m, &buf, &len) == 0);
	CHECK(buf != NULL && len > 0 && strlen(buf) == len);
	if (manifest_parse(&m2, buf, len) < 0) {
		fprintf(stderr, "fuzz-manifest: formatted text does not parse: %s\n", m2.err.msg);
		abort();
	}
	CHECK(manifest_same_state(&m, &m2));
	CHECK(m.time == m2.time && m.seq == m2.seq);
	CHECK(manifest_format(&m2, &buf2, &len2) == 0);
	CHECK(len == len2 && memcmp(buf, buf2, len) == 0);
	if (m.nfolders > 0)
		CHECK(manifest_find_folder(&m2, m.folders[0].name) != NULL);
	manifest_free(&m);
	manifest_free(&m2);
	free(buf);
	free(buf2);
	free(copy);
	return 0;
}
