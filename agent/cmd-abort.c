/* cmd-abort.c: `chjournal abort CONSUMER [--run ID]`: drop the open run; the
 * window stays where the last commit left it. */
#include "agent.h"

int
cmd_abort(struct agent *a, const struct cmdline *args)
{
	const char *run_id = NULL;

	if (agent_arg_run("abort", args, &run_id) < 0)
		return EXIT_USAGE;
	if (cmdline_has(args, "--from")) {
		struct agent_remote rm;
		int rc = agent_remote_open(&rm, cmdline_value(args, "--from"), cmdline_value(args, "--ssh"));

		if (rc != EXIT_OK)
			return rc;
		if (source_end(rm.src, args->operands[0], run_id, 0) < 0)
			rc = agent_error("%s", rm.src->err.msg);
		return agent_remote_close(&rm, rc);
	}
	return agent_run_abort(a, args->operands[0], run_id) == 0 ? EXIT_OK : EXIT_ERROR;
}
