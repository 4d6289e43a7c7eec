/* cmd-serve.c: `chjournal serve`: answers the read-only requests of a
 * `chjournal backup --from` at the other end of stdin and stdout (sshd's
 * forced command), through the protocol of common/proto.h on a local
 * source. Whatever else might print to stdout is sent to stderr: stdout
 * carries frames only. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "proto.h"

/* A refused request: one line on stderr (ssh hands it to the client). */
static void
on_refused(void *ctx, const char *line)
{
	(void)ctx;
	agent_warn("serve: %s", line);
}

int
cmd_serve(struct agent *a, const struct cmdline *args)
{
	struct source_local_opts lo;
	struct source_runner runner;
	struct serve_opts so;
	struct source *src = NULL;
	struct chj_error e;
	struct wire w;
	const char *consumer = BACKUP_DEFAULT_CONSUMER;
	char host[256];
	int out, rc = EXIT_ERROR;

	memset(&lo, 0, sizeof lo);
	/* --no-cyrus: the consumer's run and list alone (a file server) */
	if (!cmdline_has(args, "--no-cyrus"))
		lo.imapd_conf = cmdline_value(args, "-C") ? cmdline_value(args, "-C") :
		    BACKUP_DEFAULT_IMAPD_CONF;
	if (cmdline_value(args, "--consumer") != NULL)
		consumer = cmdline_value(args, "--consumer");
	if (!consumer_name_valid(consumer))
		return agent_usage_error("serve", "bad consumer name '%s'", consumer);
	/* stdout is the connection: nothing else may write to it */
	out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	if (out < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
		return agent_error("serve: cannot set up stdout: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	agent_runner(a, &runner);
	lo.cfg = &a->cfg;
	lo.journal = a->journal;
	lo.runner = &runner;
	if (source_local_open(&src, &lo, &e) < 0) {
		agent_error("serve: %s", e.msg);
		close(out);
		return EXIT_ERROR;
	}
	if (gethostname(host, sizeof host) < 0)
		snprintf(host, sizeof host, "?");
	host[sizeof host - 1] = '\0';
	memset(&so, 0, sizeof so);
	so.local = src;
	so.consumer = consumer;
	so.host = host;
	so.refused = on_refused;
	wire_init(&w, STDIN_FILENO, out);
	if (serve_run(&w, &so, &e) < 0)
		agent_error("serve: %s", e.msg);
	else
		rc = EXIT_OK;
	wire_free(&w);
	source_free(src);
	close(out);
	return rc;
}
