/* cmd-check.c: `chjournal check`: the configuration and the machine as the
 * agent sees them (common/selfcheck.h), one line per finding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "selfcheck.h"

struct check_counts {
	unsigned warnings, errors;
};

static void
check_line(void *ctx, enum selfcheck_level level, const char *msg)
{
	struct check_counts *t = ctx;

	t->warnings += level == SELFCHECK_WARNING;
	t->errors += level == SELFCHECK_ERROR;
	printf("%s: %s\n", selfcheck_level_name(level), msg);
}

int
cmd_check(struct agent *a, const struct cmdline *args)
{
	struct selfcheck_opts o;
	struct check_counts t = { 0, 0 };
	struct chj_error e;
	const char *file = config_choose_file(a->config_file);

	(void)args;
	memset(&o, 0, sizeof o);
	o.role = SELFCHECK_AGENT;
	/* test hooks, nothing to configure */
	o.sysctl_dir = getenv("CHJ_TEST_SYSCTL_DIR");
	o.nfs_table = getenv("CHJ_TEST_NFS_EXPORTS");
	if (selfcheck_run(file, &o, check_line, &t, &e) < 0)
		return agent_error("%s", e.msg);
	printf("chjournal: check of '%s' %s: %u error%s, %u warning%s\n", file,
	    t.errors ? "failed" : "passed", t.errors, t.errors == 1 ? "" : "s", t.warnings,
	    t.warnings == 1 ? "" : "s");
	return t.errors ? EXIT_ERROR : EXIT_OK;
}
