/* cmd-commit.c: `chjournal commit CONSUMER [--run ID]`: the window advances
 * to the open run's commit point (its begin, or that of a run it took over). */
#include "agent.h"

int
cmd_commit(struct agent *a, int argc, char **argv)
{
	const char *name = NULL, *run_id = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		int r = agent_opt_run("commit", argc, argv, &i, &run_id);

		if (r < 0)
			return EXIT_USAGE;
		if (r == 1)
			continue;
		if (name != NULL)
			return agent_usage_error("commit", "expected one consumer name");
		name = argv[i];
	}
	if (name == NULL)
		return agent_usage_error("commit", "expected one consumer name");
	return agent_run_commit(a, name, run_id) == 0 ? EXIT_OK : EXIT_ERROR;
}
