/* daemonlock.c: the daemon's lock file (see daemonlock.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemonlock.h"

static char *
lock_path(const char *journal)
{
	size_t n = strlen(journal);
	char *p = malloc(n + sizeof ".lock");

	if (p != NULL) {
		memcpy(p, journal, n);
		memcpy(p + n, ".lock", sizeof ".lock");
	}
	return p;
}

static pid_t
read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return (pid_t)strtol(buf, NULL, 10);
}

int
daemonlock_acquire(const char *journal, struct chj_error *e)
{
	char *p = lock_path(journal);
	int fd;

	if (p == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	fd = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot open lock file '%s'", p);
		free(p);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			chj_error_set(e, CHJ_ERR_REFUSED, 0,
			    "another chjournald (pid %ld) is running on journal '%s'",
			    (long)read_pid(fd), journal);
		else
			chj_error_set(e, CHJ_ERR_SYS, errno, "cannot lock '%s'", p);
		close(fd);
		free(p);
		return -1;
	}
	if (daemonlock_write_pid(fd) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot write lock file '%s'", p);
		close(fd);
		free(p);
		return -1;
	}
	free(p);
	return fd;
}

int
daemonlock_adopt(const char *journal, int fd, struct chj_error *e)
{
	int cur = daemonlock_is_current(journal, fd);

	if (cur < 0)
		return chj_error_set(e, CHJ_ERR_SYS, errno,
		    "the lock descriptor %d is not the lock file of journal '%s'", fd, journal);
	if (cur != 1)
		return chj_error_set(e, CHJ_ERR_INVALID, 0,
		    "the lock descriptor %d is not the lock file of journal '%s'", fd, journal);
	/* the flock belongs to the open file description: taking it again
	 * through it succeeds when it is ours already (or free: taken now), and
	 * fails when another process holds it */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)   /* the message names the errno as before */
			return chj_error_set(e, CHJ_ERR_REFUSED, 0, "the lock descriptor %d does not "
			    "hold the lock of journal '%s': %s", fd, journal, strerror(EWOULDBLOCK));
		return chj_error_set(e, CHJ_ERR_SYS, errno,
		    "the lock descriptor %d does not hold the lock of journal '%s'", fd, journal);
	}
	if (daemonlock_write_pid(fd) < 0)
		return chj_error_set(e, CHJ_ERR_SYS, errno, "cannot write the lock file of journal '%s'",
		    journal);
	return fd;
}

int
daemonlock_probe(const char *journal, pid_t *pid, struct chj_error *e)
{
	char *p = lock_path(journal);
	int fd, ret;

	*pid = 0;
	if (p == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int en = errno;

		if (en == ENOENT) {
			free(p);
			return 0;
		}
		chj_error_set(e, CHJ_ERR_SYS, en, "cannot open lock file '%s'", p);
		free(p);
		return -1;
	}
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			*pid = read_pid(fd);
			ret = 1;
		} else {
			chj_error_set(e, CHJ_ERR_SYS, errno, "cannot probe lock '%s'", p);
			ret = -1;
		}
	} else {
		ret = 0;
	}
	close(fd);
	free(p);
	return ret;
}

int
daemonlock_is_current(const char *journal, int fd)
{
	char *p = lock_path(journal);
	struct stat a, b;
	int rc;

	if (p == NULL)
		return -1;
	if (fstat(fd, &a) < 0) {
		free(p);
		return -1;
	}
	rc = stat(p, &b);
	free(p);
	if (rc < 0)
		return errno == ENOENT ? 0 : -1;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int
daemonlock_write_pid(int fd)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		return -1;
	return 0;
}
