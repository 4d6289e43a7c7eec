/* cmd-commit.c: `chjournal commit CONSUMER`: the window advances to the
 * open run's begin. */
#include <string.h>
#include <time.h>

#include "agent.h"

int
cmd_commit(struct agent *a, int argc, char **argv)
{
	struct consumers cs;
	struct consumer_state st;
	const char *name;
	int rc = EXIT_ERROR, lr;

	if (argc != 2)
		return agent_usage_error("commit", "expected one consumer name");
	name = argv[1];
	if (agent_open_consumers(a, &cs, name, 0) < 0)
		return EXIT_ERROR;
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
	rc = EXIT_OK;
done:
	consumers_close(&cs);
	return rc;
}
