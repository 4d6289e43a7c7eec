/* cmd-abort.c: `chjournal abort CONSUMER`: drop the open run; the window
 * stays where the last commit left it. */
#include "agent.h"

int
cmd_abort(struct agent *a, int argc, char **argv)
{
	struct consumers cs;
	struct consumer_state st;
	const char *name;
	int rc = EXIT_ERROR, lr;

	if (argc != 2)
		return agent_usage_error("abort", "expected one consumer name");
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
	if (lr == 1) {
		agent_error("no consumer '%s'", name);
		goto done;
	}
	if (!st.has_open) {
		agent_warn("consumer '%s' has no open run: nothing to abort", name);
		rc = EXIT_OK;
		goto done;
	}
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
