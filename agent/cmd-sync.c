/* cmd-sync.c: `chjournal sync [--timeout SECONDS]`. */
#include <stdlib.h>

#include "agent.h"

int
cmd_sync(struct agent *a, int argc, char **argv)
{
	unsigned timeout = a->cfg.sync_timeout;
	int i, rc;

	for (i = 1; i < argc; i++) {
		const char *v;

		if (agent_opt_value(argc, argv, &i, "--timeout", &v)) {
			char *end;
			unsigned long t;

			if (v == NULL)
				return agent_usage_error("sync", "--timeout needs a number of seconds");
			t = strtoul(v, &end, 10);
			if (*end != '\0' || end == v || t == 0 || t > 86400)
				return agent_usage_error("sync", "bad --timeout '%s': seconds from 1 to 86400", v);
			timeout = (unsigned)t;
		} else {
			return agent_usage_error("sync", "unexpected argument '%s'", argv[i]);
		}
	}
	rc = agent_sync(a, timeout);
	if (rc == 1)
		return agent_error("no chjournald is running on journal '%s': cannot sync", a->cfg.journal);
	return rc < 0 ? EXIT_ERROR : EXIT_OK;
}
