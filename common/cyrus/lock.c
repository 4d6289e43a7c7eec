/* lock.c: the locks a Cyrus reader takes on a mailbox, so that chjournal
 * reads cyrus.header and cyrus.index while no Cyrus process writes them.
 * Cyrus 3.6 (imap/mailbox.c mailbox_open_irl -> mailbox_open_advanced,
 * mboxname_lock; lib/lock_fcntl.c) takes a shared fcntl lock on the
 * mailbox's name lock, LOCKPATH/UNIQUEID.lock for a uuid mailbox and
 * LOCKPATH/[h/]user/NAME/Sub.lock for a legacy one, then a shared fcntl
 * lock on cyrus.index; writers hold that index lock exclusively, and
 * renames, deletes and repacks hold the name lock exclusively. Cyrus 2.x
 * locked cyrus.header, then cyrus.index (mailbox_lock_header and
 * mailbox_lock_index); a shared lock on cyrus.header is taken too, which a
 * 3.x server never contends for. The waits poll with F_SETLK until the
 * deadline (no signal handler: no process-wide state). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cyrus/cyrus.h"
#include "cyrus/internal.h"

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* F_RDLCK on the whole of fd, retried until deadline. 0, or -1 with errno. */
static int
rdlock_until(int fd, long long deadline)
{
	struct flock fl;
	struct timespec nap = { 0, 5 * 1000 * 1000 };

	for (;;) {
		memset(&fl, 0, sizeof fl);
		fl.l_type = F_RDLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return 0;
		if (errno != EACCES && errno != EAGAIN && errno != EINTR)
			return -1;
		if (now_ms() >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		nanosleep(&nap, NULL);
		if (nap.tv_nsec < 50 * 1000 * 1000)
			nap.tv_nsec *= 2;
	}
}

/* mkdir -p of file's parent directories below root, owned like root. */
static int
mkdirs_owned(const char *root, const char *file, const struct stat *owner)
{
	char buf[8192];
	size_t rl = strlen(root);
	char *p;

	if (strlen(file) >= sizeof buf)
		return -1;
	strcpy(buf, file);
	for (p = buf + rl + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(buf, 0700) == 0) {
			if (geteuid() == 0 && chown(buf, owner->st_uid, owner->st_gid) < 0)
				return -1;
		} else if (errno != EEXIST) {
			return -1;
		}
		*p = '/';
	}
	return 0;
}

/* The name lock file of m, opened (created as Cyrus would, owned by the
 * lock directory's owner, when no Cyrus process has made it yet). */
static int
open_namelock(struct cyrus_lock *lk, const struct cyrus_conf *c, const struct cyrus_mailbox *m)
{
	char path[8192];
	struct stat st;
	char *rel = NULL;
	int fd;

	if (stat(c->lockpath, &st) < 0) {
		chj_error_set(&lk->err, CHJ_ERR_SYS, errno, "lock directory '%s'", c->lockpath);
		return -1;
	}
	if (cyrus_mailbox_is_legacy(m)) {
		rel = cyrus_legacy_relpath(c, m->name);
		if (!rel) {
			chj_error_set(&lk->err, CHJ_ERR_NOMEM, 0, "out of memory");
			return -1;
		}
		snprintf(path, sizeof path, "%s/%s.lock", c->lockpath, rel);
		free(rel);
	} else {
		snprintf(path, sizeof path, "%s/%s.lock", c->lockpath, m->uniqueid);
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0 || errno != ENOENT)
		goto done;
	if (mkdirs_owned(c->lockpath, path, &st) < 0) {
		chj_error_set(&lk->err, CHJ_ERR_SYS, errno, "cannot make the directory of '%s'", path);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0 && geteuid() == 0 && fchown(fd, st.st_uid, st.st_gid) < 0) {
		close(fd);
		fd = -1;
	}
done:
	if (fd < 0)
		chj_error_set(&lk->err, CHJ_ERR_SYS, errno, "cannot open lock '%s'", path);
	return fd;
}

/* 1 when fd is still the file dir/name (not replaced by a rename). */
static int
same_file(int fd, const char *dir, const char *name)
{
	char path[8192];
	struct stat a, b;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static int
open_meta(struct cyrus_lock *lk, const struct cyrus_mailbox *m, const char *name)
{
	char path[8192];
	int fd;

	snprintf(path, sizeof path, "%s/%s", m->path, name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		chj_error_set(&lk->err, CHJ_ERR_SYS, errno, "mailbox '%s': cannot open '%s'", m->name,
		    path);
	return fd;
}

int
cyrus_lock_mailbox(struct cyrus_lock *lk, const struct cyrus_conf *c, const struct cyrus_mailbox *m,
    int timeout_ms)
{
	long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	const char *what = "name lock";
	int fd;

	chj_error_clear(&lk->err);
	lk->fd = lk->name_fd = lk->header_fd = -1;
	if ((lk->name_fd = open_namelock(lk, c, m)) < 0)
		goto fail_quiet;
	if (rdlock_until(lk->name_fd, deadline) < 0)
		goto fail;
	what = "cyrus.header";
	if ((lk->header_fd = open_meta(lk, m, "cyrus.header")) < 0)
		goto fail_quiet;
	if (rdlock_until(lk->header_fd, deadline) < 0)
		goto fail;
	what = "cyrus.index";
	for (;;) {
		if ((fd = open_meta(lk, m, "cyrus.index")) < 0)
			goto fail_quiet;
		lk->fd = fd;
		if (rdlock_until(lk->fd, deadline) < 0)
			goto fail;
		/* a repack renames a new cyrus.index over the one we waited on
		 * (Cyrus's mailbox_lock_index checks the same) */
		if (same_file(lk->fd, m->path, "cyrus.index"))
			return 0;
		close(lk->fd);
		lk->fd = -1;
		if (now_ms() >= deadline) {
			errno = ETIMEDOUT;
			goto fail;
		}
	}
fail:
	if (errno == ETIMEDOUT) {
		chj_error_set(&lk->err, CHJ_ERR_SYS, 0,
		    "mailbox '%s': cannot lock %s: timed out (a Cyrus process holds it)", m->name, what);
		lk->err.errnum = ETIMEDOUT;
	} else {
		chj_error_set(&lk->err, CHJ_ERR_SYS, errno, "mailbox '%s': cannot lock %s", m->name, what);
	}
fail_quiet:
	cyrus_unlock(lk);
	return -1;
}

void
cyrus_unlock(struct cyrus_lock *lk)
{
	if (lk->fd >= 0)
		close(lk->fd);
	if (lk->header_fd >= 0)
		close(lk->header_fd);
	if (lk->name_fd >= 0)
		close(lk->name_fd);
	lk->fd = lk->header_fd = lk->name_fd = -1;
}

int
cyrus_lock_db(const char *path, int timeout_ms, struct chj_error *e)
{
	long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	struct stat a, b;
	int fd, err;

	for (;;) {
		if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
			err = errno;
			chj_error_set(e, err == ENOENT ? CHJ_ERR_NOTFOUND : CHJ_ERR_SYS, err,
			    "cannot open '%s'", path);
			return -1;
		}
		if (rdlock_until(fd, deadline) < 0) {
			err = errno;
			if (err == ETIMEDOUT) {
				chj_error_set(e, CHJ_ERR_SYS, 0, "cannot lock '%s': timed out (a Cyrus "
				    "process holds it)", path);
				e->errnum = ETIMEDOUT;
			} else {
				chj_error_set(e, CHJ_ERR_SYS, err, "cannot lock '%s'", path);
			}
			close(fd);
			return -1;
		}
		/* a checkpoint renames a new file over the one waited on */
		if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev)
			return fd;
		close(fd);
		if (now_ms() >= deadline) {
			chj_error_set(e, CHJ_ERR_SYS, 0, "cannot lock '%s': it keeps being replaced", path);
			e->errnum = ETIMEDOUT;
			return -1;
		}
	}
}
