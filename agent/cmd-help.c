/* cmd-help.c: `chjournal help [COMMAND]`. */
#include <stdio.h>

#include "agent.h"

int
cmd_help(struct agent *a, int argc, char **argv)
{
	const struct agent_command *c;

	(void)a;
	if (argc == 1) {
		printf("usage: chjournal [-c FILE] COMMAND [ARGS]\n\ncommands:\n");
		for (c = agent_commands; c->name != NULL; c++)
			printf("  %-10s %s\n", c->name, c->summary);
		printf("\nThe configuration is -c FILE, else $CHJOURNAL_CONF, else %s.\n"
		    "Exit status: 0 success, 1 error, 2 usage error. See chjournal(1).\n",
		    CONFIG_DEFAULT_FILE);
		return EXIT_OK;
	}
	if (argc > 2)
		return agent_usage_error("help", "expected at most one command");
	c = agent_find_command(argv[1]);
	if (c == NULL)
		return agent_usage_error("help", "unknown command '%s'", argv[1]);
	printf("usage: chjournal %s %s\n\n%s.\n\n%s\n", c->name, c->usage, c->summary, c->help);
	return EXIT_OK;
}
