/* cmd-abort.c: `chjournal abort CONSUMER [--run ID]`: drop the open run; the
 * window stays where the last commit left it. */
#include "agent.h"

int
cmd_abort(struct agent *a, int argc, char **argv)
{
	const char *name = NULL, *run_id = NULL, *from = NULL, *ssh = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		int r = agent_opt_run("abort", argc, argv, &i, &run_id);

		if (r == 0)
			r = agent_opt_from("abort", argc, argv, &i, &from, &ssh);
		if (r < 0)
			return EXIT_USAGE;
		if (r == 1)
			continue;
		if (name != NULL)
			return agent_usage_error("abort", "expected one consumer name");
		name = argv[i];
	}
	if (name == NULL)
		return agent_usage_error("abort", "expected one consumer name");
	if (from != NULL) {
		struct agent_remote rm;
		int rc = agent_remote_open(&rm, from, ssh);

		if (rc != EXIT_OK)
			return rc;
		if (source_end(rm.src, name, run_id, 0) < 0)
			rc = agent_error("%s", rm.src->err.msg);
		return agent_remote_close(&rm, rc);
	}
	if (ssh != NULL)
		return agent_usage_error("abort", "--ssh goes with --from");
	return agent_run_abort(a, name, run_id) == 0 ? EXIT_OK : EXIT_ERROR;
}
