/* cmd-begin.c: `chjournal begin CONSUMER [--list [-0]]`: sync, then open a
 * run (and list it). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "agent.h"

/* An incremental window with rescan records: the files are found by their
 * times, but what vanished there is known only as the directories to
 * reconcile. Says so on stderr, so a script that ignores --reconcile is told. */
static void
note_unknown_deletions(struct agent *a, const char *name, const struct consumer_state *st)
{
	int64_t n = 0;

	if (st->open_full)
		return;
	if (journal_count_rescans(a->journal, st->open_after_seq, &n) < 0)
		agent_warn("%s", journal_errmsg(a->journal));
	else if (n > 0)
		agent_warn("consumer '%s': %" PRId64 " subtree(s) in this window were rescanned "
		    "(changes not seen one by one): entries that vanished there are not in "
		    "`list --deleted`; `chjournal list %s --reconcile` names the directories "
		    "to reconcile", name, n, name);
}

/* begin --from: the run is begun by the host's serve and stays open there
 * (for list and commit --from, each a connection of its own). The host's
 * sync timeout applies. */
static int
begin_remote(const char *name, const char *from, const char *ssh, int replace, int print_id,
    int list, int nul)
{
	struct agent_remote rm;
	struct source_run run;
	int rc = agent_remote_open(&rm, from, ssh, 0);

	if (rc != EXIT_OK)
		return rc;
	rm.src->note = agent_remote_note;
	if (source_begin(rm.src, name, replace ? SOURCE_BEGIN_REPLACE : 0, &run) < 0) {
		rc = agent_error("%s", rm.src->err.msg);
	} else {
		if (run.full_reason[0] != '\0')
			printf("full: %s\n", run.full_reason);
		else
			printf("incremental\n");
		if (print_id)
			printf("%s\n", run.run_id);
	}
	/* the run is open there: a failing list leaves it so, to list again */
	if (rc == EXIT_OK && list) {
		if (fflush(stdout) != 0)
			rc = agent_error("cannot write the list: %s", strerror(errno));
		else
			rc = agent_print_remote_list(&rm, name, run.run_id, SOURCE_LIST_FILES, nul);
	}
	source_run_free(&run);
	return agent_remote_close(&rm, rc);
}

int
cmd_begin(struct agent *a, const struct cmdline *args)
{
	struct consumer_state st;
	struct consumer_begin b;
	const char *name = args->operands[0];
	unsigned timeout = a->cfg.sync_timeout;
	int list, nul;

	memset(&b, 0, sizeof b);
	if (agent_arg_timeout("begin", args, &timeout) < 0)
		return EXIT_USAGE;
	b.replace = cmdline_has(args, "--replace") > 0;
	list = cmdline_has(args, "--list") > 0;
	nul = cmdline_has(args, "-0") > 0;
	if (cmdline_has(args, "--from"))
		return begin_remote(name, cmdline_value(args, "--from"), cmdline_value(args, "--ssh"),
		    b.replace, cmdline_has(args, "--print-run-id") > 0, list, nul);
	if (agent_run_begin(a, name, timeout, &b, &st) < 0)
		return EXIT_ERROR;
	/* the first line is what scripts compare: it never changes */
	if (b.full_reason != NULL)
		printf("full: %s\n", b.full_reason);
	else
		printf("incremental\n");
	if (cmdline_has(args, "--print-run-id"))
		printf("%s\n", consumer_run_id(&st));
	note_unknown_deletions(a, name, &st);
	if (!list)
		return EXIT_OK;
	/* the run is open: a failing list leaves it so, to list again */
	if (fflush(stdout) != 0)
		return agent_error("cannot write the list: %s", strerror(errno));
	return agent_list(a, name, consumer_run_id(&st), SOURCE_LIST_FILES, nul, stdout);
}
