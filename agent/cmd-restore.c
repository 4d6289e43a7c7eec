/* cmd-restore.c: `chjournal restore ARCHIVE --to DIR [--at RUN|TIME]
 * [--folder NAME]...`: recreates under DIR the state of one run of a user's
 * archive (common/cyrus/restore.h) and says what it wrote. */
#include <stdio.h>
#include <stdlib.h>

#include "agent.h"
#include "archive/runsel.h"
#include "cyrus/restore.h"

int
cmd_restore(struct agent *a, int argc, char **argv)
{
	struct cyrus_restore_result res;
	struct runsel sel = { .kind = RUNSEL_NEWEST };
	struct chj_error e;
	const char *archive = NULL, *to = NULL;
	char **only;
	size_t nonly = 0;
	int i, o, rc = EXIT_USAGE;

	(void)a;
	only = calloc((size_t)argc, sizeof *only);
	if (only == NULL)
		return agent_error("out of memory");
	for (i = 1; i < argc; i++) {
		const char *v;

		if ((o = agent_opt_at("restore", argc, argv, &i, &sel)) != 0) {
			if (o < 0)
				goto out;
		} else if (agent_opt_value(argc, argv, &i, "--to", &v)) {
			to = v;
		} else if (agent_opt_value(argc, argv, &i, "--folder", &v)) {
			if (v == NULL) {
				rc = agent_usage_error("restore", "--folder needs a folder name");
				goto out;
			}
			only[nonly++] = (char *)v;
		} else if (argv[i][0] == '-' || archive != NULL) {
			rc = agent_usage_error("restore", "unexpected argument '%s'", argv[i]);
			goto out;
		} else {
			archive = argv[i];
		}
	}
	if (archive == NULL || to == NULL) {
		rc = agent_usage_error("restore", "expected ARCHIVE and --to DIR");
		goto out;
	}
	if (cyrus_restore(archive, to, &sel, only, nonly, &res, &e) < 0) {
		rc = agent_error("%s", e.msg);
	} else {
		printf("restored run %s of user '%s': %lu folders, %lu message files, %lu other files, "
		    "%llu bytes to %s\n", res.run_name, res.user, res.folders, res.messages, res.files,
		    (unsigned long long)res.bytes, to);
		rc = EXIT_OK;
	}
	cyrus_restore_result_free(&res);
out:
	free(only);
	return rc;
}
