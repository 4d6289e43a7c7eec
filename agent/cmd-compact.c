/* cmd-compact.c: `chjournal compact ARCHIVE... [--keep-days N] [--force]`:
 * compacts each archive (common/cyrus/retention.h) and says, one line per
 * archive, what it kept or why it left it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "cyrus/retention.h"

/* Compacts one archive. Returns 0 (done or not due), -1 (error printed). */
static int
compact_one(const char *path, unsigned keep_days, int force)
{
	struct cyrus_compact_result res;
	struct chj_error e;

	if (cyrus_compact(path, keep_days, force, (int64_t)time(NULL), &res, &e) < 0) {
		agent_error("%s", e.msg);
		return -1;
	}
	switch (res.outcome) {
	case CYRUS_COMPACT_EMPTY:
		printf("%s: no complete run, nothing to compact\n", path);
		break;
	case CYRUS_COMPACT_NOT_DUE:
		printf("%s: live share %u%% >= threshold %u%%: not compacted (%zu of %zu runs retained)\n",
		    path, res.share, res.threshold, res.kept, res.runs);
		break;
	case CYRUS_COMPACT_DONE:
		if (res.stamp_failed)
			agent_warn("%s: cannot record the compaction time: %s", path, res.stamp_error.msg);
		printf("%s: compacted: %zu of %zu runs retained, live share was %u%% (threshold %u%%), "
		    "%llu of %llu bytes kept\n", path, res.kept, res.runs, res.share, res.threshold,
		    (unsigned long long)res.live_bytes, (unsigned long long)res.total_bytes);
		break;
	}
	return 0;
}

int
cmd_compact(struct agent *a, int argc, char **argv)
{
	unsigned keep_days = CYRUS_RETAIN_DAYS;
	int force = 0, i, failed = 0, narchives = 0;

	(void)a;
	for (i = 1; i < argc; i++) {
		const char *v;

		if (agent_opt_value(argc, argv, &i, "--keep-days", &v)) {
			char *end;
			unsigned long d;

			if (v == NULL)
				return agent_usage_error("compact", "--keep-days needs a number of days");
			d = strtoul(v, &end, 10);
			if (*v == '\0' || *end != '\0' || d == 0 || d > 36500)
				return agent_usage_error("compact", "--keep-days '%s': expected 1 to 36500", v);
			keep_days = (unsigned)d;
		} else if (strcmp(argv[i], "--force") == 0) {
			force = 1;
		} else if (argv[i][0] == '-') {
			return agent_usage_error("compact", "unknown option '%s'", argv[i]);
		}
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0)
			continue;
		if (strcmp(argv[i], "--keep-days") == 0) {
			i++;
			continue;
		}
		if (strncmp(argv[i], "--keep-days=", 12) == 0)
			continue;
		narchives++;
		if (compact_one(argv[i], keep_days, force) < 0)
			failed++;
	}
	if (narchives == 0)
		return agent_usage_error("compact", "expected one or more archives");
	return failed ? EXIT_ERROR : EXIT_OK;
}
