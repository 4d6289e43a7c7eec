/* cmd-verify.c: `chjournal verify ARCHIVE...`: checks each archive alone
 * (gzip CRCs, tar framing, files/<sha1> contents, entry names, the sidecar)
 * and names every problem on stderr, one line each. */
#include <stdio.h>

#include "agent.h"
#include "archive/archive.h"

struct verify_ctx {
	const char *path;
	long problems;
};

static void
verify_problem(void *ctx, const char *msg)
{
	struct verify_ctx *v = ctx;

	v->problems++;
	agent_warn("%s: %s", v->path, msg);
}

/* HOOK (issue 3, lead): every GUID of every stored cyrus.index must exist as
 * files/<sha1>. arch_verify passes each folders/ entry here with its data;
 * parse the names ending in "/cyrus.index" with common/cyrus/ and, for each
 * record's GUID, look it up (e.g. collect the GUIDs here and check them with
 * arch_has() on an ARCH_READ handle after arch_verify returns), calling
 * verify_problem(ctx, "...") for each one missing. Returns 0. */
static int
verify_index(void *ctx, const struct arch_entry *e, const void *data, size_t len)
{
	(void)ctx;
	(void)e;
	(void)data;
	(void)len;
	return 0;
}

int
cmd_verify(struct agent *a, int argc, char **argv)
{
	char err[ARCH_ERR_MAX];
	int i, rc = EXIT_OK, n;

	(void)a;
	if (argc < 2)
		return agent_usage_error("verify", "expected one or more archives");
	for (i = 1; i < argc; i++) {
		struct verify_ctx v = { argv[i], 0 };

		n = arch_verify(argv[i], verify_problem, verify_index, &v, err, sizeof err);
		if (n < 0) {
			agent_error("%s", err);
			rc = EXIT_ERROR;
		} else if (n > 0 || v.problems > 0) {
			agent_warn("%s: %ld problem%s", argv[i], v.problems, v.problems == 1 ? "" : "s");
			rc = EXIT_ERROR;
		} else {
			printf("%s: ok\n", argv[i]);
		}
	}
	return rc;
}
