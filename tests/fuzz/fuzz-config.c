/* fuzz-config.c: libFuzzer target for the chjournal.conf parser.
 *
 * The input is configuration text: it is NUL-terminated and handed to
 * config_parse(). The parser must never crash, read out of bounds or leak,
 * whatever the text; on success the result must be well formed (at least one
 * absolute root, journal and consumers absolute, values in their ranges) and
 * config_free() must release everything. config_parse() only lstat()s the
 * roots (and realpath()s symlinks) to validate them: it writes nothing, so the
 * paths named by the input are harmless.
 *
 * Built with -DCHJ_FUZZ_SKIP_REGEX_BLOWUP (FUZZ_CFLAGS=... run.sh), inputs
 * with a '{' or more than 6 of '+', '*', '?' are skipped: glibc's regcomp()
 * expands stacked/nested repetition exponentially (o+++...+ with 22 '+' takes
 * 3 GB; (a{32767}){32767} more), which the fuzzer finds in seconds. Only for fuzzing the rest while
 * that is open; the default build keeps it a failure. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz-config: check failed: %s\n", #cond); \
			abort();                                               \
		}                                                              \
	} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char *text;
	size_t i;

#ifdef CHJ_FUZZ_SKIP_REGEX_BLOWUP
	{
		size_t reps = 0;

		for (i = 0; i < size; i++)
			reps += (data[i] == '+' || data[i] == '*' || data[i] == '?') ? 1 : data[i] == '{' ? 7 : 0;
		if (reps > 6)
			return 0;
	}
#endif
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (config_parse(&c, "fuzz.conf", text) == 0) {
		CHECK(c.err.code == CHJ_OK && c.err.msg[0] == '\0');
		CHECK(c.file != NULL && strcmp(c.file, "fuzz.conf") == 0);
		CHECK(c.journal != NULL && c.journal[0] == '/');
		CHECK(c.consumers != NULL && c.consumers[0] == '/');
		CHECK(c.nroots > 0 && c.roots != NULL);
		for (i = 0; i < c.nroots; i++) {
			size_t l = strlen(c.roots[i]);

			CHECK(c.roots[i][0] == '/');
			CHECK(l == 1 || c.roots[i][l - 1] != '/');
			CHECK(config_root_of(&c, c.roots[i]) == (int)i);
		}
		CHECK(c.flush_interval_ms >= 10 && c.flush_interval_ms <= 60000);
		CHECK(c.batch_size >= 1 && c.batch_size <= 10000000);
		CHECK(c.sync_timeout >= 1 && c.sync_timeout <= 86400);
		CHECK(c.pending_limit >= 100 && c.pending_limit <= 100000000);
		CHECK(c.log_level <= CONFIG_LOG_DEBUG);
		CHECK(strcmp(config_backend_name(c.backend), "inotify") == 0);
		/* the compiled excludes must be usable */
		for (i = 0; i < c.nroots; i++)
			(void)config_is_excluded(&c, c.roots[i]);
		config_free(&c);
		CHECK(c.file == NULL && c.roots == NULL && c.nroots == 0);
	} else {
		/* failure: a message, nothing left allocated (LeakSanitizer checks) */
		CHECK(c.err.code != CHJ_OK && c.err.msg[0] != '\0');
		CHECK(memchr(c.err.msg, '\0', sizeof c.err.msg) != NULL);
		CHECK(c.file == NULL && c.journal == NULL && c.roots == NULL && c.excludes == NULL);
	}
	free(text);
	return 0;
}
