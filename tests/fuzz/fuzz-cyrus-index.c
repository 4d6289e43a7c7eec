/* fuzz-cyrus-index.c: libFuzzer target for cyrus_index_parse (cyrus.index
 * and 2.x cyrus.expunge, minor versions 10 to 20). Whatever the bytes, no
 * crash, no read past the buffer (an exact-size heap copy), no leak; on
 * success the records it announces fit in the buffer and are all there; on
 * failure a one-line message and nothing allocated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cyrus/cyrus.h"

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "fuzz-cyrus-index: check failed: %s\n", #cond); \
			abort();                                                      \
		}                                                                     \
	} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cyrus_index x;
	uint32_t hs, rs, i;
	uint8_t *copy;

	copy = malloc(size ? size : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	if (cyrus_index_parse(&x, copy, size) == 0) {
		CHECK(cyrus_index_layout(x.minor_version, &hs, &rs) == 0);
		CHECK(x.start_offset >= hs && x.record_size >= rs);
		CHECK(x.num_records == 0 || x.records != NULL);
		CHECK((uint64_t)x.start_offset + (uint64_t)x.num_records * x.record_size <=
		    (x.num_records ? size : UINT64_MAX));
		for (i = 0; i < x.num_records; i++)
			(void)cyrus_record_has_file(&x.records[i]);
		CHECK(x.err.code == CHJ_OK && x.err.msg[0] == '\0');
	} else {
		CHECK(x.err.msg[0] != '\0' && strchr(x.err.msg, '\n') == NULL);
		CHECK(x.err.code == CHJ_ERR_CORRUPT || x.err.code == CHJ_ERR_NOMEM);
		CHECK(x.records == NULL);
	}
	cyrus_index_free(&x);
	free(copy);
	return 0;
}
