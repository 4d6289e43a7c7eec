/* cmd-show.c: `chjournal show ARCHIVE [--at TIME|RUN]`: the runs of an
 * archive, or what one run holds: its folders, messages, bytes and the share
 * of the archive still live. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent.h"
#include "archive/archive.h"
#include "archive/runsel.h"

static void
show_runs(const struct arch_run *runs, size_t n)
{
	char tb[32];
	size_t i;

	printf("%-5s %-20s %-20s %10s %14s\n", "RUN", "NAME", "TIME", "ENTRIES", "BYTES");
	for (i = 0; i < n; i++)
		printf("%-5" PRId64 " %-20s %-20s %10" PRId64 " %14" PRId64 "\n", runs[i].id, runs[i].name,
		    agent_time_str(runs[i].time, tb, sizeof tb), runs[i].entries, runs[i].bytes);
}

static int
show_run(struct arch *ar, const struct arch_run *runs, size_t n, size_t r)
{
	int64_t run = runs[r].id;
	struct arch_entry *all = NULL, *links = NULL;
	size_t nall = 0, nlinks = 0, i, folders = 0, messages = 0;
	int64_t total = 0, live = 0;
	char tb[32];

	if (arch_list(ar, "", run, &all, &nall) < 0 || arch_list(ar, ARCH_IMAP, run, &links, &nlinks) < 0) {
		arch_entries_free(all, nall);
		return agent_error("%s", arch_error(ar)->msg);
	}
	for (i = 0; i < n && runs[i].id <= run; i++)
		total += runs[i].bytes;
	for (i = 0; i < nall; i++) {
		live += (int64_t)all[i].size;
		if (strncmp(all[i].name, ARCH_FILES, strlen(ARCH_FILES)) == 0)
			messages++;
	}
	for (i = 0; i < nlinks; i++)
		if (links[i].kind == ARCH_KIND_SYMLINK && links[i].target && links[i].target[0] != '\0')
			folders++;
	printf("run %" PRId64 " %s %s\n", run, runs[r].name, agent_time_str(runs[r].time, tb, sizeof tb));
	printf("folders %zu\nmessages %zu\nbytes %" PRId64 "\nlive %.1f%%\n", folders, messages, total,
	    total > 0 ? 100.0 * (double)live / (double)total : 100.0);
	for (i = 0; i < nlinks; i++)
		if (links[i].kind == ARCH_KIND_SYMLINK && links[i].target && links[i].target[0] != '\0')
			printf("folder %s -> %s\n", links[i].name + strlen(ARCH_IMAP), links[i].target);
	arch_entries_free(all, nall);
	arch_entries_free(links, nlinks);
	return EXIT_OK;
}

int
cmd_show(struct agent *a, const struct cmdline *args)
{
	const char *path = args->operands[0];
	struct arch *ar;
	struct arch_run *runs = NULL;
	struct runsel sel = { .kind = RUNSEL_NEWEST };
	struct chj_error e;
	size_t n, r;
	int rc;

	(void)a;
	if (agent_arg_at("show", args, &sel) < 0)
		return EXIT_USAGE;
	if (arch_open(&ar, path, ARCH_READ, &e) < 0)
		return agent_error("%s", e.msg);
	if (arch_runs(ar, &runs, &n) < 0) {
		rc = agent_error("%s", arch_error(ar)->msg);
		goto out;
	}
	if (n == 0) {
		struct stat st;

		/* bytes but no run (not gzip, torn, hostile): say so, not an empty list */
		if (stat(path, &st) == 0 && st.st_size > 0) {
			rc = agent_error("archive '%s' holds no complete run (%lld bytes that are not one; "
			    "see `chjournal verify`)", path, (long long)st.st_size);
			goto out;
		}
	}
	if (sel.kind == RUNSEL_NEWEST) {
		show_runs(runs, n);
		rc = EXIT_OK;
		goto out;
	}
	if (runsel_pick(&sel, runs, n, path, &r, &e) < 0)
		rc = agent_error("%s", e.msg);
	else
		rc = show_run(ar, runs, n, r);
out:
	free(runs);
	arch_close(ar);
	return rc;
}
