/* cmd-list.c: `chjournal list CONSUMER [-0] [--deleted] [--run ID]`: the exact
 * files to back up for the open run. */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "changeset.h"
#include "progress.h"

struct full_ctx {
	int nul;
	unsigned long refused;
	int write_failed;
	int show_progress;             /* stderr is a terminal */
	struct progress progress;      /* directories walked of those watched */
	uint64_t files;
};

static int
full_cb(void *ctx, const char *path, size_t len, unsigned char type, const struct stat *st, int depth)
{
	struct full_ctx *f = ctx;

	(void)len;
	(void)st;
	(void)depth;
	if (f->show_progress && type == DT_DIR) {
		char line[256];

		f->progress.done++;
		if (progress_format(&f->progress, 0, line, sizeof line))
			fprintf(stderr, "\r%s, %llu files\033[K", line, (unsigned long long)f->files);
	}
	if (type != DT_REG && type != DT_LNK)
		return WALK_CONTINUE;
	f->files++;
	if (agent_print_path(stdout, path, f->nul, &f->refused) < 0) {
		f->write_failed = 1;
		return WALK_STOP;
	}
	return WALK_CONTINUE;
}

static int
list_full(struct agent *a, int nul)
{
	struct full_ctx f;
	struct walk_result res;
	int64_t watched = 0;
	int rc = EXIT_OK;

	memset(&f, 0, sizeof f);
	f.nul = nul;
	/* progress on a terminal only; the daemon's watch count sizes the ETA */
	f.show_progress = isatty(STDERR_FILENO);
	if (journal_meta_get_int(a->journal, "watches", &watched) != 0)
		watched = 0;
	progress_start(&f.progress, "listing", "directories", (uint64_t)watched);
	changeset_walk_full(&a->cfg, full_cb, &f, &res);
	if (f.show_progress) {
		char line[256];

		progress_format(&f.progress, 1, line, sizeof line);
		fprintf(stderr, "\r%s, %llu files\033[K\n", line, (unsigned long long)f.files);
	}
	if (f.write_failed)
		return agent_error("cannot write the list: %s", strerror(errno));
	if (res.errors > 0)
		rc = agent_error("the list is incomplete: %s (%lu unreadable)", res.errmsg, res.errors);
	if (f.refused > 0)
		rc = agent_error("%lu path(s) with a newline left out: use -0", f.refused);
	return rc;
}

static int
list_window(struct agent *a, int64_t after_seq, int nul, int deleted)
{
	struct changeset cs;
	char **arr;
	size_t n, i;
	unsigned long refused = 0;
	int rc = EXIT_OK, built;

	built = changeset_build(&cs, a->journal, &a->cfg, after_seq);
	arr = deleted ? cs.deleted : cs.paths;
	n = deleted ? cs.ndeleted : cs.npaths;
	for (i = 0; i < n; i++) {
		if (agent_print_path(stdout, arr[i], nul, &refused) < 0) {
			rc = agent_error("cannot write the list: %s", strerror(errno));
			break;
		}
	}
	if (built < 0)
		rc = agent_error("the list is incomplete: %s", cs.errmsg);
	if (refused > 0)
		rc = agent_error("%lu path(s) with a newline left out: use -0", refused);
	changeset_free(&cs);
	return rc;
}

int
cmd_list(struct agent *a, int argc, char **argv)
{
	struct consumers cs;
	struct consumer_state st;
	const char *name = NULL, *run_id = NULL;
	int nul = 0, deleted = 0, i, lr, code;

	for (i = 1; i < argc; i++) {
		int r = agent_opt_run("list", argc, argv, &i, &run_id);

		if (r < 0)
			return EXIT_USAGE;
		if (r == 1)
			continue;
		if (strcmp(argv[i], "-0") == 0 || strcmp(argv[i], "--null") == 0)
			nul = 1;
		else if (strcmp(argv[i], "--deleted") == 0)
			deleted = 1;
		else if (argv[i][0] == '-')
			return agent_usage_error("list", "unknown option '%s'", argv[i]);
		else if (name == NULL)
			name = argv[i];
		else
			return agent_usage_error("list", "unexpected argument '%s'", argv[i]);
	}
	if (name == NULL)
		return agent_usage_error("list", "expected a consumer name");
	if (agent_open_consumers(a, &cs, name, 0) < 0)
		return EXIT_ERROR;
	lr = consumer_load(&cs, name, &st);
	if (lr < 0) {
		agent_error("%s", cs.errmsg);
		consumers_close(&cs);
		return EXIT_ERROR;
	}
	consumers_close(&cs);
	code = consumer_run_check(&st, run_id, journal_id(a->journal));
	if (code != CONSUMER_RUN_OK)
		return agent_run_refused(name, &st, code, run_id, AGENT_RUN_LIST);
	/* the other roots are listed; a missing one is covered once it is back
	 * (the record comes after the run's begin, so in the next window) */
	if (agent_missing_roots(a, "none of its files are listed; the first run after it is back "
	    "lists all of it", st.open_seq) < 0)
		return EXIT_ERROR;
	if (st.open_full)
		return deleted ? EXIT_OK : list_full(a, nul);
	return list_window(a, st.open_after_seq, nul, deleted);
}
