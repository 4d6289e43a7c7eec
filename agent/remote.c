/* remote.c: the agent's end of a `chjournal serve` on another host: ssh
 * started with the host's serve as its command, a remote source
 * (common/proto.h) on its pipes, the one line that names a host that failed
 * (with the last line ssh wrote), and the end of it all. Used by `backup
 * --from` and by begin, list, commit and abort with --from. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "proto.h"

#define REMOTE_SSH_DEFAULT "ssh"

struct host_spec {
	char login[512];            /* [USER@]HOST, as ssh is given it */
	char name[256];             /* HOST: the archive directory's name */
	char port[16];              /* "" none */
};

/* Splits [USER@]HOST[:PORT] (an IPv6 address in brackets: [::1]:22); -1
 * when malformed. HOST names a directory: no '/', no control byte or blank,
 * not "." or "..", not an option. */
static int
parse_host(const char *spec, struct host_spec *h)
{
	const char *at = strrchr(spec, '@'), *host = at ? at + 1 : spec, *name = host, *port = NULL;
	size_t hl, ul = (size_t)(host - spec), i;

	memset(h, 0, sizeof h[0]);
	if (host[0] == '[') {
		const char *end = strchr(host, ']');

		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return -1;
		name = host + 1;
		hl = (size_t)(end - name);
		if (end[1] == ':')
			port = end + 2;
	} else {
		const char *colon = strrchr(host, ':');

		hl = colon ? (size_t)(colon - host) : strlen(host);
		if (colon != NULL)
			port = colon + 1;
	}
	if (hl == 0 || hl >= sizeof h->name || spec[0] == '-' || name[0] == '-' ||
	    (hl == 1 && name[0] == '.') || (hl == 2 && name[0] == '.' && name[1] == '.'))
		return -1;
	for (i = 0; i < hl; i++)
		if (name[i] == '/' || (unsigned char)name[i] <= ' ' || name[i] == 0x7f)
			return -1;
	memcpy(h->name, name, hl);
	if (port != NULL) {
		size_t pl = strlen(port);

		if (pl == 0 || pl >= sizeof h->port || strspn(port, "0123456789") != pl)
			return -1;
		memcpy(h->port, port, pl);
	}
	if (ul + hl >= sizeof h->login)
		return -1;
	memcpy(h->login, spec, ul);
	memcpy(h->login + ul, name, hl);
	return 0;
}

/* Starts CMD (split at blanks, as rsync -e) [-p PORT] LOGIN chjournal serve,
 * its stdin and stdout on pipes, its stderr into errf. Returns the pid, or
 * -1 (errno). */
static pid_t
spawn_ssh(const char *cmd, const struct host_spec *h, int *rfd, int *wfd, FILE *errf)
{
	char *words = strdup(cmd), *argv[64], *save = NULL, *t;
	int to[2] = { -1, -1 }, from[2] = { -1, -1 }, n = 0;
	pid_t pid = -1;

	if (words == NULL)
		return -1;
	for (t = strtok_r(words, " \t", &save); t != NULL && n < 56; t = strtok_r(NULL, " \t", &save))
		argv[n++] = t;
	if (n == 0) {
		errno = EINVAL;
		goto out;
	}
	if (h->port[0] != '\0') {
		argv[n++] = (char *)"-p";
		argv[n++] = (char *)h->port;
	}
	argv[n++] = (char *)"--";
	argv[n++] = (char *)h->login;
	argv[n++] = (char *)"chjournal";
	argv[n++] = (char *)"serve";
	argv[n] = NULL;
	if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
		goto out;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		if (dup2(to[0], STDIN_FILENO) < 0 || dup2(from[1], STDOUT_FILENO) < 0 ||
		    (errf != NULL && dup2(fileno(errf), STDERR_FILENO) < 0))
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (pid < 0)
		goto out;
	*wfd = to[1];
	*rfd = from[0];
	to[1] = from[0] = -1;
out:
	if (to[0] >= 0)
		close(to[0]);
	if (to[1] >= 0)
		close(to[1]);
	if (from[0] >= 0)
		close(from[0]);
	if (from[1] >= 0)
		close(from[1]);
	free(words);
	return pid;
}

/* The last line ssh (or serve) wrote on stderr, for the one line that
 * names a failed host; "" when none. */
static void
last_err_line(FILE *errf, char *out, size_t len)
{
	char line[1024];

	out[0] = '\0';
	if (errf == NULL || fflush(errf) != 0 || fseek(errf, 0, SEEK_SET) != 0)
		return;
	while (fgets(line, sizeof line, errf) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] != '\0')
			snprintf(out, len, "%s", line);
	}
}

int
agent_remote_open(struct agent_remote *r, const char *spec, const char *ssh, int timeout_s)
{
	struct host_spec h;
	struct chj_error e;
	char why[1024];
	int status;

	memset(r, 0, sizeof *r);
	r->rfd = r->wfd = -1;
	r->pid = -1;
	if (parse_host(spec, &h) < 0)
		return agent_usage_error("--from", "host '%s': not [USER@]HOST[:PORT]", spec);
	snprintf(r->name, sizeof r->name, "%s", h.name);
	/* ssh gone: a write to it fails (the host's line says so), it does
	 * not kill the pulls of the other hosts */
	signal(SIGPIPE, SIG_IGN);
	r->errf = tmpfile();
	if (ssh == NULL)
		ssh = REMOTE_SSH_DEFAULT;
	r->pid = spawn_ssh(ssh, &h, &r->rfd, &r->wfd, r->errf);
	if (r->pid < 0) {
		agent_error("host '%s': cannot run '%s': %s", r->name, ssh, strerror(errno));
		return agent_remote_close(r, EXIT_ERROR);
	}
	if (source_remote_open(&r->src, r->rfd, r->wfd, r->name,
	    (timeout_s > 0 ? timeout_s : AGENT_REMOTE_TIMEOUT) * 1000, &e) < 0) {
		close(r->wfd);
		r->wfd = -1;
		waitpid(r->pid, &status, 0);
		r->pid = -1;
		last_err_line(r->errf, why, sizeof why);
		agent_error("host '%s': %s%s%s", r->name, e.msg, why[0] ? ": " : "", why);
		return agent_remote_close(r, EXIT_ERROR);
	}
	return EXIT_OK;
}

void
agent_remote_why(struct agent_remote *r, char *out, size_t len)
{
	char why[1024];

	out[0] = '\0';
	if (r->src == NULL || !r->src->broken)
		return;
	last_err_line(r->errf, why, sizeof why);
	if (why[0] != '\0')
		snprintf(out, len, ": %s", why);
}

int
agent_remote_close(struct agent_remote *r, int rc)
{
	char why[1024];
	int status;

	/* a connection that broke (a host that hangs, garbage): ssh may wait
	 * on it for ever; it goes */
	if (r->src != NULL && r->src->broken && r->pid > 0)
		kill(r->pid, SIGTERM);
	source_free(r->src);
	r->src = NULL;
	if (r->wfd >= 0)
		close(r->wfd);
	if (r->rfd >= 0)
		close(r->rfd);
	r->wfd = r->rfd = -1;
	if (r->pid > 0 && waitpid(r->pid, &status, 0) == r->pid && rc == EXIT_OK &&
	    !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		last_err_line(r->errf, why, sizeof why);
		rc = agent_error("host '%s': serve ended badly%s%s", r->name, why[0] ? ": " : "", why);
	}
	r->pid = -1;
	if (r->errf != NULL)
		fclose(r->errf);
	r->errf = NULL;
	return rc;
}

void
agent_remote_note(void *ctx, const char *line)
{
	(void)ctx;
	agent_warn("%s", line);
}
