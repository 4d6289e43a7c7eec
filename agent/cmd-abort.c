/* cmd-abort.c: `chjournal abort CONSUMER [--run ID]`: drop the open run; the
 * window stays where the last commit left it. */
#include "agent.h"

int
cmd_abort(struct agent *a, const struct cmdline *args)
{
	return agent_end_run(a, "abort", args, 0);
}
