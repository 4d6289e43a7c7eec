/* cmd-abort.c: `chjournal abort CONSUMER [--run ID]`: drop the open run; the
 * window stays where the last commit left it. */
#include "agent.h"

int
cmd_abort(struct agent *a, const struct cmdline *args)
{
	const char *run_id = NULL;

	if (agent_arg_run("abort", args, &run_id) < 0)
		return EXIT_USAGE;
	return agent_run_abort(a, args->operands[0], run_id) == 0 ? EXIT_OK : EXIT_ERROR;
}
