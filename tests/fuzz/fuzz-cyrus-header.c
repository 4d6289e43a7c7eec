/* fuzz-cyrus-header.c: libFuzzer target for cyrus_header_parse (both the
 * 2.x line format and the 3.x dlist line). Whatever the bytes, the parser
 * must not crash, read out of bounds or leak; on success every field it
 * sets is a NUL-terminated string and nflags names as many flags. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cyrus/cyrus.h"

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "fuzz-cyrus-header: check failed: %s\n", #cond); \
			abort();                                                       \
		}                                                                      \
	} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cyrus_header h;
	void *copy;
	size_t i;

	/* an exact-size heap copy: ASan sees any read past the end */
	copy = malloc(size ? size : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	memset(&h, 0, sizeof h);
	if (cyrus_header_parse(&h, copy, size) == 0) {
		if (h.uniqueid != NULL)
			(void)strlen(h.uniqueid);
		if (h.name != NULL)
			(void)strlen(h.name);
		if (h.quotaroot != NULL)
			(void)strlen(h.quotaroot);
		if (h.acl != NULL)
			(void)strlen(h.acl);
		CHECK(h.nflags == 0 || h.flagnames != NULL);
		for (i = 0; i < h.nflags; i++)
			CHECK(h.flagnames[i] != NULL && strlen(h.flagnames[i]) < size);
	} else {
		CHECK(h.err.msg[0] != '\0');
		CHECK(h.err.code == CHJ_ERR_CORRUPT || h.err.code == CHJ_ERR_NOMEM);
		CHECK(memchr(h.err.msg, '\0', sizeof h.err.msg) != NULL);
		CHECK(strchr(h.err.msg, '\n') == NULL);
	}
	cyrus_header_free(&h);
	free(copy);
	return 0;
}
