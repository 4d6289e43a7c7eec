/* cmd-compact.c: `chjournal compact ARCHIVE... [--keep-days N |
 * --keep-last N --keep-hourly N --keep-daily N --keep-weekly N
 * --keep-monthly N] [--force] [--dry-run]`: compacts each archive
 * (common/cyrus/retention.h) and says, one line per archive, what it kept or
 * why it left it; --dry-run says, run by run, what would stay and go. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "cyrus/retention.h"

/* --dry-run: each run, kept (and why) or not */
static void
print_plan(const char *path, const struct cyrus_compact_result *res)
{
	size_t i;

	for (i = 0; i < res->runs; i++)
		printf("%s: %s run %lld %s%s%s%s\n", path, res->why[i] ? "keep" : "drop",
		    (long long)res->all[i].id, res->all[i].name, res->why[i] ? " (" : "",
		    res->why[i] ? res->why[i] : "", res->why[i] ? ")" : "");
	printf("%s: would %s: %zu of %zu runs retained, live share %u%% (threshold %u%%)\n", path,
	    res->would_compact ? "be compacted" : "not be compacted", res->kept, res->runs, res->share,
	    res->threshold);
}

/* Compacts one archive. Returns 0 (done or not due), -1 (error printed). */
static int
compact_one(const char *path, const struct prune_rules *r, int flags)
{
	struct cyrus_compact_result res;
	struct chj_error e;

	if (cyrus_compact(path, r, flags, (int64_t)time(NULL), &res, &e) < 0) {
		cyrus_compact_result_free(&res);
		agent_error("%s", e.msg);
		return -1;
	}
	switch (res.outcome) {
	case CYRUS_COMPACT_EMPTY:
		printf("%s: no complete run, nothing to compact\n", path);
		break;
	case CYRUS_COMPACT_PLANNED:
		print_plan(path, &res);
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
	cyrus_compact_result_free(&res);
	return 0;
}

int
cmd_compact(struct agent *a, const struct cmdline *args)
{
	struct prune_rules r = { CYRUS_RETAIN_DAYS, 0, 0, 0, 0, 0 };
	int flags = 0, i, failed = 0;

	(void)a;
	if (agent_prune_options(args, "compact", &r) < 0)
		return EXIT_USAGE;
	if (cmdline_has(args, "--force"))
		flags |= CYRUS_COMPACT_FORCE;
	if (cmdline_has(args, "--dry-run"))
		flags |= CYRUS_COMPACT_DRY_RUN;
	for (i = 0; i < args->operand_count; i++)
		if (compact_one(args->operands[i], &r, flags) < 0)
			failed++;
	return failed ? EXIT_ERROR : EXIT_OK;
}
