/* cmd-commit.c: `chjournal commit CONSUMER [--run ID]`: the window advances
 * to the open run's commit point (its begin, or that of a run it took over). */
#include "agent.h"

int
cmd_commit(struct agent *a, const struct cmdline *args)
{
	const char *run_id = NULL;

	if (agent_arg_run("commit", args, &run_id) < 0)
		return EXIT_USAGE;
	return agent_run_commit(a, args->operands[0], run_id) == 0 ? EXIT_OK : EXIT_ERROR;
}
