/* atomicfile.c: durable replacement of a file (atomicfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"

/* Tests only: CHJ_TEST_ATOMIC_CRASH=N ends the process (as a crash or a power
 * loss would) at step N of a commit: 1 before the fsync of the temporary
 * file, 2 before the rename, 3 before the fsync of the directory. */
static void
crash_point(int step)
{
	const char *e = getenv("CHJ_TEST_ATOMIC_CRASH");

	if (e != NULL && atoi(e) == step)
		_exit(99);
}

int
atomicfile_sync_dir(const char *path)
{
	char *dir = strdup(path), *slash;
	int fd, rc, e;

	if (dir == NULL) {
		errno = ENOMEM;
		return -1;
	}
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	e = errno;
	close(fd);
	errno = e;
	return rc;
}

/* DIR/.BASE.tmp for DIR/BASE (hidden: a directory listing of valid names, as
 * the consumers directory's, never takes it for one) into tmp (room for
 * strlen(dest) + 7). */
static int
tmp_name(const char *dest, char *tmp)
{
	const char *base = strrchr(dest, '/');
	size_t dl = base ? (size_t)(base - dest) + 1 : 0;

	base = base ? base + 1 : dest;
	if (*base == '\0')
		return -1;
	memcpy(tmp, dest, dl);
	sprintf(tmp + dl, ".%s.tmp", base);
	return 0;
}

static void
atomicfile_free(struct atomicfile *af)
{
	if (af->fd >= 0)
		close(af->fd);
	af->fd = -1;
	free(af->dest);
	free(af->tmp);
	af->dest = af->tmp = NULL;
}

int
atomicfile_begin(struct atomicfile *af, const char *dest, mode_t mode, struct chj_error *e)
{
	af->fd = -1;
	af->no_dir_sync = 0;
	af->dest = strdup(dest);
	af->tmp = malloc(strlen(dest) + 7);
	if (af->dest == NULL || af->tmp == NULL) {
		atomicfile_free(af);
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	}
	if (tmp_name(dest, af->tmp) < 0) {
		atomicfile_free(af);
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	}
	/* a crashed writer's: never followed, never someone else's file */
	if (unlink(af->tmp) < 0 && errno != ENOENT) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot remove '%s'", af->tmp);
		atomicfile_free(af);
		return -1;
	}
	af->fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (af->fd < 0 || fchmod(af->fd, mode) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot create '%s'", af->tmp);
		atomicfile_rollback(af);
		return -1;
	}
	return 0;
}

int
atomicfile_commit(struct atomicfile *af, struct chj_error *e)
{
	crash_point(1);
	/* written by other means (SQLite): open again to fsync */
	if (af->fd < 0 && (af->fd = open(af->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot open '%s'", af->tmp);
		goto fail;
	}
	if (fsync(af->fd) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot write '%s'", af->tmp);
		goto fail;
	}
	if (close(af->fd) < 0) {
		af->fd = -1;
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot write '%s'", af->tmp);
		goto fail;
	}
	af->fd = -1;
	crash_point(2);
	if (rename(af->tmp, af->dest) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot replace '%s'", af->dest);
		goto fail;
	}
	crash_point(3);
	if (!af->no_dir_sync && atomicfile_sync_dir(af->dest) < 0) {
		/* replaced, but maybe not durably: say so, the file is in place */
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot sync the directory of '%s'", af->dest);
		atomicfile_free(af);
		return -1;
	}
	atomicfile_free(af);
	return 0;
fail:
	atomicfile_rollback(af);
	return -1;
}

int
atomicfile_commit_unsynced(struct atomicfile *af, struct chj_error *e)
{
	if (af->fd >= 0 && close(af->fd) < 0) {
		af->fd = -1;
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot write '%s'", af->tmp);
		atomicfile_rollback(af);
		return -1;
	}
	af->fd = -1;
	if (rename(af->tmp, af->dest) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot replace '%s'", af->dest);
		atomicfile_rollback(af);
		return -1;
	}
	atomicfile_free(af);
	return 0;
}

void
atomicfile_rollback(struct atomicfile *af)
{
	if (af->tmp != NULL)
		unlink(af->tmp);
	atomicfile_free(af);
}

int
atomicfile_publish(const char *tmp, const char *dest, struct chj_error *e)
{
	int fd = open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot write '%s'", tmp);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	if (rename(tmp, dest) < 0)
		return chj_error_set(e, CHJ_ERR_SYS, errno, "cannot rename '%s' to '%s'", tmp, dest);
	if (atomicfile_sync_dir(dest) < 0)
		return chj_error_set(e, CHJ_ERR_SYS, errno, "cannot sync the directory of '%s'", dest);
	return 0;
}

int
atomicfile_write(const char *dest, const void *buf, size_t len, mode_t mode, struct chj_error *e)
{
	struct atomicfile af;
	const char *p = buf;

	if (atomicfile_begin(&af, dest, mode, e) < 0)
		return -1;
	while (len > 0) {
		ssize_t n = write(af.fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			chj_error_set(e, CHJ_ERR_SYS, n < 0 ? errno : EIO, "cannot write '%s'", af.tmp);
			atomicfile_rollback(&af);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return atomicfile_commit(&af, e);
}
