/* cmd-help.c: `chjournal help [COMMAND]`. */
#include <stdio.h>

#include "agent.h"

int
cmd_help(struct agent *a, const struct cmdline *args)
{
	const struct agent_command *c;
	char usage[512];

	(void)a;
	if (args->operand_count == 0) {
		printf("usage: chjournal [-c FILE] COMMAND [ARGS]\n\ncommands:\n");
		for (c = agent_commands; c->name != NULL; c++)
			printf("  %-10s %s\n", c->name, c->summary);
		printf("\nThe configuration is -c FILE, else $CHJOURNAL_CONF, else %s.\n"
		    "Exit status: 0 success, 1 error, 2 usage error. See chjournal(1).\n",
		    CONFIG_DEFAULT_FILE);
		return EXIT_OK;
	}
	c = agent_find_command(args->operands[0]);
	if (c == NULL)
		return agent_usage_error("help", "unknown command '%s'", args->operands[0]);
	printf("usage: %s\n\n%s.\n\n%s\n", agent_usage_line(c, usage, sizeof usage), c->summary,
	    c->help);
	return EXIT_OK;
}
