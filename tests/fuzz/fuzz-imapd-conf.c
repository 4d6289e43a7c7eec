/* fuzz-imapd-conf.c: libFuzzer target for cyrus_conf_load. The input is
 * written to a temp file (mode 0600, removed after each input) and loaded as
 * imapd.conf. An @include line in the input names a file on this machine:
 * reading it is harmless (it is only parsed). No crash, no leak; on success
 * configdirectory and the default partition's path are set; on failure a
 * one-line message. cyrus_conf_free leaves nothing behind. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cyrus/cyrus.h"

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "fuzz-imapd-conf: check failed: %s\n", #cond); \
			abort();                                                     \
		}                                                                    \
	} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/fuzz-imapd-conf.XXXXXX";
	struct cyrus_conf c;
	size_t i;
	int fd;

	fd = mkstemp(path);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	memset(&c, 0, sizeof c);
	if (cyrus_conf_load(&c, path) == 0) {
		CHECK(c.configdirectory != NULL);
		CHECK(c.defaultpartition != NULL);
		CHECK(cyrus_partition_path(&c, c.defaultpartition) != NULL);
		CHECK(!c.virtdomains);
		for (i = 0; i < c.npartitions; i++)
			CHECK(c.partitions[i].name != NULL && c.partitions[i].path != NULL);
	} else {
		CHECK(c.err.msg[0] != '\0' && strchr(c.err.msg, '\n') == NULL);
		CHECK(c.err.code != CHJ_OK);
	}
	cyrus_conf_free(&c);
	unlink(path);
	return 0;
}
