/* cmd-sync.c: `chjournal sync [--timeout SECONDS]`. */
#include "agent.h"

int
cmd_sync(struct agent *a, const struct cmdline *args)
{
	unsigned timeout = a->cfg.sync_timeout;
	int rc;

	if (agent_arg_timeout("sync", args, &timeout) < 0)
		return EXIT_USAGE;
	if (agent_missing_roots(a, "not synced (no sync cookie for it)", -1) < 0)
		return EXIT_ERROR;
	rc = agent_sync(a, timeout, NULL);
	if (rc == 1)
		return agent_error("no chjournald is running on journal '%s': cannot sync", a->cfg.journal);
	return rc < 0 ? EXIT_ERROR : EXIT_OK;
}
