/* cmd-forget.c: `chjournal forget CONSUMER`: remove a cursor. */
#include "agent.h"

int
cmd_forget(struct agent *a, const struct cmdline *args)
{
	const char *name = args->operands[0];
	struct consumers cs;
	int rc;

	if (agent_open_consumers(a, &cs, name, 0) < 0)
		return EXIT_ERROR;
	if (consumers_lock(&cs) < 0) {
		agent_error("%s", cs.err.msg);
		consumers_close(&cs);
		return EXIT_ERROR;
	}
	rc = consumer_remove(&cs, name);
	if (rc < 0)
		agent_error("%s", cs.err.msg);
	else if (rc == 1)
		agent_error("no consumer '%s'", name);
	consumers_close(&cs);
	return rc == 0 ? EXIT_OK : EXIT_ERROR;
}
