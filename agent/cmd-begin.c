/* cmd-begin.c: `chjournal begin CONSUMER`: sync, then open a run. */
#include <string.h>
#include <time.h>

#include "agent.h"

/* Returns NULL for an incremental run, else why it must be full. */
static const char *
full_reason(const struct consumer_state *st, const char *journal_id, int64_t last_seq)
{
	if (!st->has_committed)
		return "no committed run yet";
	if (strcmp(st->committed_journal_id, journal_id) != 0)
		return "the journal id changed (database recreated)";
	if (st->committed_seq > last_seq)
		return "the journal is older than the consumer's cursor (database restored from a copy)";
	return NULL;
}

int
cmd_begin(struct agent *a, int argc, char **argv)
{
	struct consumers cs;
	struct consumer_state st;
	const char *name = NULL, *why;
	int64_t last_seq;
	unsigned timeout = a->cfg.sync_timeout;
	int rc = EXIT_ERROR, synced, i;

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
	if (agent_open_consumers(a, &cs, name, 1) < 0)
		return EXIT_ERROR;
	if (consumers_lock(&cs) < 0) {
		agent_error("%s", cs.errmsg);
		goto done;
	}
	synced = agent_sync(a, timeout);
	if (synced < 0)
		goto done;
	if (synced == 1 && agent_cover_daemon_gap(a) < 0)
		goto done;
	if (consumer_load(&cs, name, &st) < 0) {
		agent_error("%s", cs.errmsg);
		goto done;
	}
	if (journal_last_seq(a->journal, &last_seq) < 0) {
		agent_error("%s", journal_errmsg(a->journal));
		goto done;
	}
	why = full_reason(&st, journal_id(a->journal), last_seq);
	st.has_open = 1;
	memcpy(st.open_journal_id, journal_id(a->journal), sizeof st.open_journal_id);
	st.open_seq = last_seq;
	st.open_time = (int64_t)time(NULL);
	st.open_full = why != NULL;
	st.open_after_seq = why != NULL ? 0 : st.committed_seq;
	if (consumer_save(&cs, name, &st) < 0) {
		agent_error("%s", cs.errmsg);
		goto done;
	}
	if (why != NULL)
		printf("full: %s\n", why);
	else
		printf("incremental\n");
	rc = EXIT_OK;
done:
	consumers_close(&cs);
	return rc;
}
