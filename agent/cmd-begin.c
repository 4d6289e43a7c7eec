/* cmd-begin.c: `chjournal begin CONSUMER`: sync, then open a run. */
#include <inttypes.h>

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

int
cmd_begin(struct agent *a, int argc, char **argv)
{
	struct consumer_state st;
	const char *name = NULL, *why = NULL;
	unsigned timeout = a->cfg.sync_timeout;
	int i;

	for (i = 1; i < argc; i++) {
		int r = agent_opt_timeout("begin", argc, argv, &i, &timeout);

		if (r < 0)
			return EXIT_USAGE;
		if (r == 1)
			continue;
		if (name != NULL)
			return agent_usage_error("begin", "expected one consumer name");
		name = argv[i];
	}
	if (name == NULL)
		return agent_usage_error("begin", "expected one consumer name");
	if (agent_run_begin(a, name, timeout, &st, &why) < 0)
		return EXIT_ERROR;
	if (why != NULL)
		printf("full: %s\n", why);
	else
		printf("incremental\n");
	note_unknown_deletions(a, name, &st);
	return EXIT_OK;
}
