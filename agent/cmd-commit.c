/* cmd-commit.c: `chjournal commit CONSUMER [--run ID]`: the window advances
 * to the open run's commit point (its begin, or that of a run it took over). */
#include "agent.h"

int
cmd_commit(struct agent *a, const struct cmdline *args)
{
	return agent_end_run(a, "commit", args, 1);
}
