/* runtool.c: runs a tool, keeping the first line of what it says on stderr
 * for the error (runtool.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtool.h"

#define SAID_MAX 512            /* the part of stderr kept */

/* In the child: /dev/null on stdin and stdout, the pipe on stderr, exec. */
static void
child(char *const argv[], int errfd)
{
	int null = open("/dev/null", O_RDWR);

	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
	}
	dup2(errfd, 2);
	execvp(argv[0], argv);
	_exit(127);
}

/* Reads all of fd, keeping its first SAID_MAX - 1 bytes' first line. */
static void
read_said(int fd, char *said)
{
	char buf[4096];
	size_t len = 0;
	ssize_t n;

	said[0] = '\0';
	for (;;) {
		n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (len < SAID_MAX - 1) {
			size_t take = (size_t)n < SAID_MAX - 1 - len ? (size_t)n : SAID_MAX - 1 - len;

			memcpy(said + len, buf, take);
			len += take;
			said[len] = '\0';
		}
	}
	said[strcspn(said, "\n")] = '\0';
}

int
runtool(char *const argv[], struct chj_error *e)
{
	char said[SAID_MAX];
	int pfd[2], status;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return chj_error_set(e, CHJ_ERR_SYS, errno, "cannot run %s: pipe", argv[0]);
	if ((pid = fork()) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return chj_error_set(e, CHJ_ERR_SYS, errno, "cannot run %s: fork", argv[0]);
	}
	if (pid == 0)
		child(argv, pfd[1]);
	close(pfd[1]);
	read_said(pfd[0], said);
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return chj_error_set(e, CHJ_ERR_SYS, errno, "%s: waitpid", argv[0]);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && said[0] == '\0')
		return chj_error_set(e, CHJ_ERR_SYS, ENOENT, "cannot run %s", argv[0]);
	if (WIFSIGNALED(status))
		return chj_error_set(e, CHJ_ERR_REFUSED, 0, "%s killed by signal %d%s%s", argv[0],
		    WTERMSIG(status), said[0] ? ": " : "", said);
	return chj_error_set(e, CHJ_ERR_REFUSED, 0, "%s failed (exit status %d)%s%s", argv[0],
	    WEXITSTATUS(status), said[0] ? ": " : "", said);
}
