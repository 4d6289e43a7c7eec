/* cmd-verify.c: `chjournal verify ARCHIVE...`: checks each archive alone
 * (common/cyrus/verify.h) and names every problem on stderr, one line each;
 * a good archive is "ARCHIVE: ok" on stdout. */
#include <stdio.h>

#include "agent.h"
#include "cyrus/verify.h"

static void
say(void *ctx, int problem, const char *msg)
{
	(void)problem;
	agent_warn("%s: %s", (const char *)ctx, msg);
}

int
cmd_verify(struct agent *a, const struct cmdline *args)
{
	struct chj_error e;
	int i, rc = EXIT_OK;
	long n;

	(void)a;
	for (i = 0; i < args->operand_count; i++) {
		char *path = args->operands[i];

		n = cyrus_verify(path, say, path, &e);
		if (n < 0) {
			agent_error("%s", e.msg);
			rc = EXIT_ERROR;
		} else if (n > 0) {
			agent_warn("%s: %ld problem%s", path, n, n == 1 ? "" : "s");
			rc = EXIT_ERROR;
		} else {
			printf("%s: ok\n", path);
		}
	}
	return rc;
}
