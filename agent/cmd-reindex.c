/* cmd-reindex.c: `chjournal reindex ARCHIVE`: rebuilds the sidecar index
 * from the archive alone. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent.h"
#include "archive/archive.h"

int
cmd_reindex(struct agent *a, const struct cmdline *args)
{
	struct chj_error err;
	struct arch *ar;
	struct arch_run *runs;
	size_t n, i;
	int64_t entries = 0;

	(void)a;
	if (arch_reindex(args->operands[0], &err) < 0)
		return agent_error("%s", err.msg);
	if (arch_open(&ar, args->operands[0], ARCH_READ, &err) < 0)
		return agent_error("%s", err.msg);
	if (arch_runs(ar, &runs, &n) < 0) {
		agent_error("%s", arch_error(ar)->msg);
		arch_close(ar);
		return EXIT_ERROR;
	}
	for (i = 0; i < n; i++)
		entries += runs[i].entries;
	printf("%s: %zu run%s, %" PRId64 " entries indexed\n", args->operands[0], n, n == 1 ? "" : "s", entries);
	free(runs);
	arch_close(ar);
	return EXIT_OK;
}
