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
daemonlock_acquire(const char *journal, char *err, size_t errlen)
{
	char *p = lock_path(journal);
	int fd;

	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	fd = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open lock file '%s': %s", p, strerror(errno));
		free(p);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "another chjournald (pid %ld) is running on journal '%s'",
			    (long)read_pid(fd), journal);
		else
			snprintf(err, errlen, "cannot lock '%s': %s", p, strerror(errno));
		close(fd);
		free(p);
		return -1;
	}
	if (daemonlock_write_pid(fd) < 0) {
		snprintf(err, errlen, "cannot write lock file '%s': %s", p, strerror(errno));
		close(fd);
		free(p);
		return -1;
	}
	free(p);
	return fd;
}

int
daemonlock_adopt(const char *journal, int fd, char *err, size_t errlen)
{
	int cur = daemonlock_is_current(journal, fd);

	if (cur != 1) {
		snprintf(err, errlen, "the lock descriptor %d is not the lock file of journal '%s'%s%s",
		    fd, journal, cur < 0 ? ": " : "", cur < 0 ? strerror(errno) : "");
		return -1;
	}
	/* the flock belongs to the open file description: taking it again
	 * through it succeeds when it is ours already (or free: taken now), and
	 * fails when another process holds it */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "the lock descriptor %d does not hold the lock of journal '%s': %s",
		    fd, journal, strerror(errno));
		return -1;
	}
	if (daemonlock_write_pid(fd) < 0) {
		snprintf(err, errlen, "cannot write the lock file of journal '%s': %s", journal,
		    strerror(errno));
		return -1;
	}
	return fd;
}

int
daemonlock_probe(const char *journal, pid_t *pid, char *err, size_t errlen)
{
	char *p = lock_path(journal);
	int fd, ret;

	*pid = 0;
	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		if (e == ENOENT) {
			free(p);
			return 0;
		}
		snprintf(err, errlen, "cannot open lock file '%s': %s", p, strerror(e));
		free(p);
		return -1;
	}
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			*pid = read_pid(fd);
			ret = 1;
		} else {
			snprintf(err, errlen, "cannot probe lock '%s': %s", p, strerror(errno));
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
