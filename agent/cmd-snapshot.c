/* cmd-snapshot.c: `chjournal snapshot MIRROR DIR [--kind KIND]
 * [--keep-days N | --keep-last N --keep-hourly N --keep-daily N
 * --keep-weekly N --keep-monthly N] [--dry-run]`: takes a read-only
 * snapshot of a mirror into DIR (common/snapshot.h), then removes the
 * snapshots the retention rules do not keep (common/prune.h); one line
 * per snapshot taken or removed. --dry-run says what it would do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "prune.h"
#include "snapshot.h"

/* The snapshots to decide on: those in dir, and the one to be taken (a
 * dry run has not taken it). */
static int
list_with(const char *dir, const struct snapshot *taken, struct snapshot **v, size_t *n,
    struct chj_error *e)
{
	struct snapshot *nv;

	if (snapshot_list(dir, v, n, e) < 0)
		return -1;
	if (*n > 0 && strcmp((*v)[*n - 1].name, taken->name) == 0)
		return 0;
	if ((nv = realloc(*v, (*n + 1) * sizeof **v)) == NULL) {
		free(*v);
		*v = NULL;
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	}
	*v = nv;
	nv[(*n)++] = *taken;
	return 0;
}

/* Applies r to the snapshots of dir; taken is the newest. Returns the
 * number of failures (each printed). */
static int
prune(const char *dir, const struct snapshot *taken, const struct prune_rules *r, int dry_run)
{
	struct snapshot *v = NULL;
	prune_reason *why = NULL;
	int64_t *times = NULL;
	struct chj_error e;
	size_t n = 0, i;
	int failed = 0;

	if (list_with(dir, taken, &v, &n, &e) < 0) {
		agent_error("%s", e.msg);
		return 1;
	}
	if ((times = calloc(n, sizeof *times)) == NULL || (why = calloc(n, sizeof *why)) == NULL) {
		agent_error("out of memory");
		failed = 1;
		goto cleanup;
	}
	for (i = 0; i < n; i++)
		times[i] = v[i].time;
	prune_plan(times, n, r, (int64_t)time(NULL), why);
	for (i = 0; i < n; i++) {
		if (dry_run) {
			printf("%s/%s: would %s%s%s%s\n", dir, v[i].name, why[i] ? "keep" : "remove",
			    why[i] ? " (" : "", why[i] ? why[i] : "", why[i] ? ")" : "");
		} else if (why[i] == NULL) {
			if (snapshot_remove(dir, v[i].name, &e) < 0) {
				agent_error("%s", e.msg);
				failed++;
			} else {
				printf("%s/%s: removed (not retained)\n", dir, v[i].name);
			}
		}
	}
cleanup:
	free(times);
	free(why);
	free(v);
	return failed;
}

int
cmd_snapshot(struct agent *a, const struct cmdline *args)
{
	struct prune_rules r = { 0, 0, 0, 0, 0, 0 };
	enum snapshot_kind kind = SNAPSHOT_AUTO;
	const char *mirror = args->operands[0], *dir = args->operands[1];
	const char *k = cmdline_value(args, "--kind");
	int dry_run = cmdline_has(args, "--dry-run");
	struct snapshot s;
	struct chj_error e;

	(void)a;
	if (k != NULL && snapshot_kind_parse(k, &kind) < 0)
		return agent_usage_error("snapshot", "--kind '%s': expected auto, btrfs or reflink", k);
	if (agent_prune_options(args, "snapshot", &r) < 0)
		return EXIT_USAGE;
	if ((kind == SNAPSHOT_AUTO && snapshot_kind_of(mirror, &kind, &e) < 0) ||
	    snapshot_next_name(dir, (int64_t)time(NULL), &s, &e) < 0)
		return agent_error("%s", e.msg);
	if (dry_run) {
		printf("%s/%s: would take a %s snapshot of %s\n", dir, s.name, snapshot_kind_name(kind),
		    mirror);
	} else {
		if (snapshot_take(mirror, dir, &s, kind, &e) < 0)
			return agent_error("snapshot of '%s' into '%s': %s", mirror, dir, e.msg);
		printf("%s/%s: %s snapshot of %s\n", dir, s.name, snapshot_kind_name(kind), mirror);
	}
	if (r.keep_days == 0 && !prune_has_rules(&r))
		return EXIT_OK;                  /* no rule: every snapshot stays */
	return prune(dir, &s, &r, dry_run) ? EXIT_ERROR : EXIT_OK;
}
