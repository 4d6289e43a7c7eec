/* cmd-begin.c: `chjournal begin CONSUMER`: sync, then open a run. */
#include "agent.h"

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
	return EXIT_OK;
}
