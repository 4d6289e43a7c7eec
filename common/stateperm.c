/* stateperm.c: the group that may read the daemon's state (stateperm.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "path.h"
#include "stateperm.h"

/* s + suffix, allocated (NULL: out of memory). */
static char *
concat(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	char *p = malloc(a + b + 1);

	if (p != NULL) {
		memcpy(p, s, a);
		memcpy(p + a, suffix, b + 1);
	}
	return p;
}

mode_t
stateperm_file_mode(const struct config *c)
{
	return c->group != NULL ? STATEPERM_FILE_SHARED : STATEPERM_FILE_PRIVATE;
}

int
stateperm_fix_fd(const struct config *c, int fd)
{
	if (c->group == NULL)
		return 0;
	if (fchown(fd, (uid_t)-1, c->gid) < 0 || fchmod(fd, STATEPERM_FILE_SHARED) < 0)
		return -1;
	return 0;
}

/* Sets fd's group (gid, or unchanged with (gid_t)-1) and mode. */
static int
set_fd(int fd, gid_t gid, mode_t mode)
{
	if (gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) < 0)
		return -1;
	return fchmod(fd, mode);
}

/* A directory: only one of ours that others cannot write in. shared: the
 * group reads and searches it; else the group loses what it had. Returns
 * 0 (done, or not ours to change), -1 with errno. */
static int
fix_dir(const char *dir, gid_t gid, int shared)
{
	struct stat st;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) < 0) {
		rc = -1;
	} else if (st.st_uid == geteuid() && !(st.st_mode & S_IWOTH)) {
		mode_t m = shared ? STATEPERM_DIR_SHARED : STATEPERM_DIR_PRIVATE;

		if ((m != (st.st_mode & 07777) || (shared && st.st_gid != gid)) &&
		    set_fd(fd, shared ? gid : (gid_t)-1, m) < 0)
			rc = -1;
	}
	if (rc < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

int
stateperm_share_dir(const char *dir, gid_t gid)
{
	return fix_dir(dir, gid, 1);
}

/* Sets the group (gid, or unchanged with (gid_t)-1) and mode of the file
 * at an O_PATH descriptor: fchownat() takes it (AT_EMPTY_PATH); fchmod()
 * does not, chmod() of its /proc/self/fd link does (as glibc's
 * fchmodat(AT_SYMLINK_NOFOLLOW) does). */
static int
set_path_fd(int fd, gid_t gid, mode_t mode)
{
	char link[64];

	if (gid != (gid_t)-1 && fchownat(fd, "", (uid_t)-1, gid, AT_EMPTY_PATH) < 0)
		return -1;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	return chmod(link, mode);
}

/* A regular file (a missing one is fine; a symlink is refused by
 * O_NOFOLLOW and left alone). Opened O_PATH: the daemon has the journal's
 * files open in SQLite, which holds POSIX (fcntl) locks on them, and the
 * close of any other descriptor of a file a process opened for I/O drops
 * every such lock the process holds on it (the -shm's "dead man switch"
 * among them: another process opening the journal then took it as
 * abandoned and truncated the -shm the daemon had mapped, and the daemon
 * died of SIGBUS in t0220). Closing an O_PATH descriptor drops none. */
static int
fix_file(const char *path, gid_t gid, mode_t mode)
{
	struct stat st;
	int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	/* O_PATH | O_NOFOLLOW opens a symlink itself: left alone */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    ((st.st_mode & 07777) != mode || (gid != (gid_t)-1 && st.st_gid != gid)))
		rc = set_path_fd(fd, gid, mode);
	if (rc < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

/* Records the first failure in e. */
static void
note(struct chj_error *e, int *failed, const char *what)
{
	if (!*failed)
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot give '%s' its group and mode", what);
	*failed = 1;
}

int
stateperm_apply(const struct config *c, struct chj_error *e)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", ".lock" };
	int shared = c->group != NULL, failed = 0;
	gid_t gid = shared ? c->gid : (gid_t)-1;
	mode_t fmode = stateperm_file_mode(c);
	char *jdir = NULL, *p;
	struct stat st;
	size_t i;
	DIR *d;

	chj_error_clear(e);
	if (!shared) {
		/* private already (the default), or was it shared? */
		if (lstat(c->journal, &st) < 0 || !(st.st_mode & 0070))
			return 0;
	}
	if ((jdir = path_dirname(c->journal)) == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	if (fix_dir(jdir, gid, shared) < 0)
		note(e, &failed, jdir);
	free(jdir);
	for (i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		if ((p = concat(c->journal, suffixes[i])) == NULL)
			return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		if (fix_file(p, gid, fmode) < 0)
			note(e, &failed, p);
		free(p);
	}
	/* read by status only: private, it is 0644 in the private directory */
	if ((p = concat(c->journal, ".status")) == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	if (fix_file(p, gid, shared ? STATEPERM_FILE_SHARED : 0644) < 0)
		note(e, &failed, p);
	free(p);
	if (fix_dir(c->consumers, gid, shared) < 0)
		note(e, &failed, c->consumers);
	if ((d = opendir(c->consumers)) != NULL) {
		struct dirent *de;

		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if ((p = path_join(c->consumers, de->d_name)) == NULL) {
				closedir(d);
				return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
			}
			if (fix_file(p, gid, fmode) < 0)
				note(e, &failed, p);
			free(p);
		}
		closedir(d);
	}
	return failed ? -1 : 0;
}
