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
cmd_verify(struct agent *a, int argc, char **argv)
{
	struct chj_error e;
	int i, rc = EXIT_OK;
	long n;

	(void)a;
	if (argc < 2)
		return agent_usage_error("verify", "expected one or more archives");
	for (i = 1; i < argc; i++) {
		n = cyrus_verify(argv[i], say, argv[i], &e);
		if (n < 0) {
			agent_error("%s", e.msg);
			rc = EXIT_ERROR;
		} else if (n > 0) {
			agent_warn("%s: %ld problem%s", argv[i], n, n == 1 ? "" : "s");
			rc = EXIT_ERROR;
		} else {
			printf("%s: ok\n", argv[i]);
		}
	}
	return rc;
}
