/* run.c: opening and committing a consumer's run, shared by `begin`/`commit`
 * and by the commands that run a whole backup themselves (`backup`). */
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
agent_run_begin(struct agent *a, const char *name, unsigned timeout,
    struct consumer_state *st, const char **why)
{
	struct consumers cs;
	int64_t last_seq;
	int rc = -1, synced;

	if (agent_open_consumers(a, &cs, name, 1) < 0)
		return -1;
	if (consumers_lock(&cs) < 0) {
		agent_error("%s", cs.errmsg);
		goto done;
	}
	synced = agent_sync(a, timeout);
	if (synced < 0)
		goto done;
	if (synced == 1 && agent_cover_daemon_gap(a) < 0)
		goto done;
	if (consumer_load(&cs, name, st) < 0) {
		agent_error("%s", cs.errmsg);
		goto done;
	}
	if (journal_last_seq(a->journal, &last_seq) < 0) {
		agent_error("%s", journal_errmsg(a->journal));
		goto done;
	}
	*why = full_reason(st, journal_id(a->journal), last_seq);
	st->has_open = 1;
	memcpy(st->open_journal_id, journal_id(a->journal), sizeof st->open_journal_id);
	st->open_seq = last_seq;
	st->open_time = (int64_t)time(NULL);
	st->open_full = *why != NULL;
	st->open_after_seq = *why != NULL ? 0 : st->committed_seq;
	/* the files open for writing now, journaled after the begin point just
	 * fixed, before the run is saved: a run is never opened without them
	 * (agent/open-writers.c) */
	if (agent_journal_open_writers(a, &cs) < 0)
		goto done;
	if (consumer_save(&cs, name, st) < 0) {
		agent_error("%s", cs.errmsg);
		goto done;
	}
	rc = 0;
done:
	consumers_close(&cs);
	return rc;
}

int
agent_run_commit(struct agent *a, const char *name)
{
	struct consumers cs;
	struct consumer_state st;
	int rc = -1, lr;

	if (agent_open_consumers(a, &cs, name, 0) < 0)
		return -1;
	if (consumers_lock(&cs) < 0) {
		agent_error("%s", cs.errmsg);
		goto done;
	}
	lr = consumer_load(&cs, name, &st);
	if (lr < 0) {
		agent_error("%s", cs.errmsg);
		goto done;
	}
	if (lr == 1 || !st.has_open) {
		agent_error("consumer '%s' has no open run to commit (run `chjournal begin %s` first)",
		    name, name);
		goto done;
	}
	if (strcmp(st.open_journal_id, journal_id(a->journal)) != 0) {
		agent_error("consumer '%s': the journal was recreated since its begin: the run cannot "
		    "be committed; run begin again", name);
		goto done;
	}
	st.has_committed = 1;
	memcpy(st.committed_journal_id, st.open_journal_id, sizeof st.committed_journal_id);
	st.committed_seq = st.open_seq;
	st.committed_time = st.open_time;
	st.commit_time = (int64_t)time(NULL);
	st.has_open = 0;
	if (consumer_save(&cs, name, &st) < 0) {
		agent_error("%s", cs.errmsg);
		goto done;
	}
	rc = 0;
done:
	consumers_close(&cs);
	return rc;
}
