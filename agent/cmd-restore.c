/* cmd-restore.c: `chjournal restore ARCHIVE --to DIR [--at RUN|TIME]
 * [--folder NAME]...`: recreates under DIR the state of one run of a user's
 * archive (common/cyrus/restore.h) and says what it wrote. */
#include <stdio.h>
#include <stdlib.h>

#include "agent.h"
#include "archive/runsel.h"
#include "cyrus/restore.h"

int
cmd_restore(struct agent *a, const struct cmdline *args)
{
	struct cyrus_restore_result res;
	struct runsel sel = { .kind = RUNSEL_NEWEST };
	struct chj_error e;
	const char *archive = args->operands[0], *to = cmdline_value(args, "--to");
	const char *const *only;
	size_t nonly;
	int rc;

	(void)a;
	if (agent_arg_at("restore", args, &sel) < 0)
		return EXIT_USAGE;
	only = cmdline_values(args, "--folder", &nonly);
	if (cyrus_restore(archive, to, &sel, only, nonly, &res, &e) < 0) {
		rc = agent_error("%s", e.msg);
	} else {
		printf("restored run %s of user '%s': %lu folders, %lu message files, %lu other files, "
		    "%llu bytes to %s\n", res.run_name, res.user, res.folders, res.messages, res.files,
		    (unsigned long long)res.bytes, to);
		rc = EXIT_OK;
	}
	cyrus_restore_result_free(&res);
	return rc;
}
