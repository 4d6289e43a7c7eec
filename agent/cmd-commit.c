/* cmd-commit.c: `chjournal commit CONSUMER`: the window advances to the
 * open run's begin. */
#include "agent.h"

int
cmd_commit(struct agent *a, int argc, char **argv)
{
	if (argc != 2)
		return agent_usage_error("commit", "expected one consumer name");
	return agent_run_commit(a, argv[1]) == 0 ? EXIT_OK : EXIT_ERROR;
}
