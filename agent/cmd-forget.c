/* cmd-forget.c: `chjournal forget CONSUMER`: remove a cursor. */
#include "agent.h"

int
cmd_forget(struct agent *a, int argc, char **argv)
{
	struct consumers cs;
	int rc;

	if (argc != 2)
		return agent_usage_error("forget", "expected one consumer name");
	if (agent_open_consumers(a, &cs, argv[1], 0) < 0)
		return EXIT_ERROR;
	if (consumers_lock(&cs) < 0) {
		agent_error("%s", cs.errmsg);
		consumers_close(&cs);
		return EXIT_ERROR;
	}
	rc = consumer_remove(&cs, argv[1]);
	if (rc < 0)
		agent_error("%s", cs.errmsg);
	else if (rc == 1)
		agent_error("no consumer '%s'", argv[1]);
	consumers_close(&cs);
	return rc == 0 ? EXIT_OK : EXIT_ERROR;
}
