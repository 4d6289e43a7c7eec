/* cmd-sync.c: `chjournal sync [--timeout SECONDS]`. */
#include "agent.h"

int
cmd_sync(struct agent *a, int argc, char **argv)
{
	unsigned timeout = a->cfg.sync_timeout;
	int i, rc;

	for (i = 1; i < argc; i++) {
		int r = agent_opt_timeout("sync", argc, argv, &i, &timeout);

		if (r < 0)
			return EXIT_USAGE;
		if (r == 0)
			return agent_usage_error("sync", "unexpected argument '%s'", argv[i]);
	}
	if (agent_missing_roots(a, "not synced (no sync cookie for it)", -1) < 0)
		return EXIT_ERROR;
	rc = agent_sync(a, timeout);
	if (rc == 1)
		return agent_error("no chjournald is running on journal '%s': cannot sync", a->cfg.journal);
	return rc < 0 ? EXIT_ERROR : EXIT_OK;
}
