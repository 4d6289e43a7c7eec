/* snapshot.c: read-only snapshots of a mirror (snapshot.h): btrfs
 * subvolume snapshots or reflink copies, published by a rename, listed and
 * removed by their names. The copying is the file system's, through its
 * own tools (btrfs-progs, coreutils' cp), never done here. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "atomicfile.h"
#include "path.h"
#include "runtool.h"
#include "snapshot.h"

#define PARTIAL_PREFIX ".partial."     /* a snapshot being made */
#define BTRFS_SUBVOL_INO 256           /* the inode of a subvolume's root */

int
snapshot_kind_parse(const char *s, enum snapshot_kind *kind)
{
	static const char *names[] = { "auto", "btrfs", "reflink" };
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(s, names[i]) == 0) {
			*kind = (enum snapshot_kind)i;
			return 0;
		}
	return -1;
}

const char *
snapshot_kind_name(enum snapshot_kind kind)
{
	return kind == SNAPSHOT_BTRFS ? "btrfs" : kind == SNAPSHOT_REFLINK ? "reflink" : "auto";
}

/* 1 when path is the root of a btrfs subvolume, 0 when not, -1 (errno). */
static int
is_subvolume(const char *path)
{
	struct statfs sf;
	struct stat st;

	if (statfs(path, &sf) < 0 || lstat(path, &st) < 0)
		return -1;
	return sf.f_type == BTRFS_SUPER_MAGIC && st.st_ino == BTRFS_SUBVOL_INO && S_ISDIR(st.st_mode);
}

int
snapshot_kind_of(const char *mirror, enum snapshot_kind *kind, struct chj_error *e)
{
	struct stat st;
	int sub;

	if (stat(mirror, &st) < 0)
		return chj_error_set(e, errno == ENOENT ? CHJ_ERR_NOTFOUND : CHJ_ERR_SYS, errno,
		    "mirror '%s'", mirror);
	if (!S_ISDIR(st.st_mode))
		return chj_error_set(e, CHJ_ERR_INVALID, 0, "mirror '%s' is not a directory", mirror);
	if ((sub = is_subvolume(mirror)) < 0)
		return chj_error_set(e, CHJ_ERR_SYS, errno, "mirror '%s'", mirror);
	*kind = sub ? SNAPSHOT_BTRFS : SNAPSHOT_REFLINK;
	return 0;
}

int64_t
snapshot_name_time(const char *name)
{
	struct tm tm;
	const char *rest;
	char *end;

	memset(&tm, 0, sizeof tm);
	if (strlen(name) < 16 || (rest = strptime(name, "%Y%m%dT%H%M%SZ", &tm)) == NULL ||
	    rest != name + 16)
		return -1;
	if (*rest == '.') {
		if (rest[1] < '1' || rest[1] > '9')
			return -1;
		errno = 0;
		(void)strtoul(rest + 1, &end, 10);
		if (*end != '\0' || errno != 0)
			return -1;
	} else if (*rest != '\0') {
		return -1;
	}
	return (int64_t)timegm(&tm);
}

static int
snapshot_cmp(const void *a, const void *b)
{
	const struct snapshot *x = a, *y = b;
	size_t lx = strlen(x->name), ly = strlen(y->name);

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	if (lx != ly)                        /* NAME before NAME.1 before NAME.10 */
		return lx < ly ? -1 : 1;
	return strcmp(x->name, y->name);
}

int
snapshot_list(const char *dir, struct snapshot **out, size_t *n, struct chj_error *e)
{
	struct snapshot *v = NULL, *nv;
	size_t len = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int64_t t;

	*out = NULL;
	*n = 0;
	if ((d = opendir(dir)) == NULL)
		return chj_error_set(e, errno == ENOENT ? CHJ_ERR_NOTFOUND : CHJ_ERR_SYS, errno,
		    "snapshot directory '%s'", dir);
	while ((errno = 0, de = readdir(d)) != NULL) {
		if ((t = snapshot_name_time(de->d_name)) < 0 || strlen(de->d_name) >= sizeof v->name)
			continue;
		if ((nv = array_grow(v, len, &cap, sizeof *v, 64)) == NULL) {
			free(v);
			closedir(d);
			return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory listing '%s'", dir);
		}
		v = nv;
		snprintf(v[len].name, sizeof v[len].name, "%s", de->d_name);
		v[len++].time = t;
	}
	if (errno != 0) {
		int err = errno;

		free(v);
		closedir(d);
		return chj_error_set(e, CHJ_ERR_SYS, err, "cannot read '%s'", dir);
	}
	closedir(d);
	if (len > 1)
		qsort(v, len, sizeof *v, snapshot_cmp);
	*out = v;
	*n = len;
	return 0;
}

int
snapshot_next_name(const char *dir, int64_t now, struct snapshot *s, struct chj_error *e)
{
	time_t tt = (time_t)now;
	char base[24], *path;
	struct stat st;
	struct tm tm;
	unsigned i;
	int taken;

	if (stat(dir, &st) < 0)
		return chj_error_set(e, errno == ENOENT ? CHJ_ERR_NOTFOUND : CHJ_ERR_SYS, errno,
		    "snapshot directory '%s'", dir);
	if (!S_ISDIR(st.st_mode))
		return chj_error_set(e, CHJ_ERR_INVALID, ENOTDIR, "snapshot directory '%s'", dir);
	gmtime_r(&tt, &tm);
	strftime(base, sizeof base, "%Y%m%dT%H%M%SZ", &tm);
	s->time = now;
	for (i = 0; i < 100000; i++) {
		if (i == 0)
			snprintf(s->name, sizeof s->name, "%s", base);
		else
			snprintf(s->name, sizeof s->name, "%s.%u", base, i);
		if ((path = path_join(dir, s->name)) == NULL)
			return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		taken = lstat(path, &st) == 0;
		if (!taken && errno != ENOENT) {
			chj_error_set(e, CHJ_ERR_SYS, errno, "snapshot '%s'", path);
			free(path);
			return -1;
		}
		free(path);
		if (!taken)
			return 0;
	}
	return chj_error_set(e, CHJ_ERR_REFUSED, 0, "no free snapshot name for %s in '%s'", base, dir);
}

/* Removes path, a subvolume or a directory tree. */
static int
remove_path(const char *path, struct chj_error *e)
{
	int sub = is_subvolume(path);

	if (sub < 0)
		return errno == ENOENT ? 0 : chj_error_set(e, CHJ_ERR_SYS, errno, "snapshot '%s'", path);
	if (sub) {
		char *argv[] = { "btrfs", "subvolume", "delete", (char *)path, NULL };

		return runtool(argv, e);
	} else {
		char *argv[] = { "rm", "-rf", "--one-file-system", "--", (char *)path, NULL };

		return runtool(argv, e);
	}
}

int
snapshot_remove(const char *dir, const char *name, struct chj_error *e)
{
	char *path = path_join(dir, name);
	int rc;

	if (path == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	rc = remove_path(path, e);
	free(path);
	return rc;
}

/* Makes tmp, a read-only copy of mirror, with the file system's tool. */
static int
copy_mirror(const char *mirror, const char *tmp, enum snapshot_kind kind, struct chj_error *e)
{
	char *src = NULL;
	int rc;

	if (kind == SNAPSHOT_BTRFS) {
		char *argv[] = { "btrfs", "subvolume", "snapshot", "-r", (char *)mirror, (char *)tmp, NULL };

		return runtool(argv, e);
	}
	/* "MIRROR/." copies the directory's content into tmp, made here */
	if (mkdir(tmp, 0700) < 0)
		return chj_error_set(e, CHJ_ERR_SYS, errno, "cannot make '%s'", tmp);
	if ((src = path_join(mirror, ".")) == NULL)
		return chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
	{
		char *argv[] = { "cp", "-a", "--reflink=always", "--", src, (char *)tmp, NULL };

		rc = runtool(argv, e);
	}
	free(src);
	return rc;
}

/* Syncs the file system holding path (the copy's data and metadata). */
static int
sync_fs(const char *path, struct chj_error *e)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return chj_error_set(e, CHJ_ERR_SYS, errno, "cannot open '%s'", path);
	rc = syncfs(fd);
	close(fd);
	return rc < 0 ? chj_error_set(e, CHJ_ERR_SYS, errno, "cannot sync '%s'", path) : 0;
}

/* The hidden names of snapshots a crash left half made: removed. */
static int
remove_partials(const char *dir, struct chj_error *e)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int rc = 0;

	if (d == NULL)
		return chj_error_set(e, errno == ENOENT ? CHJ_ERR_NOTFOUND : CHJ_ERR_SYS, errno,
		    "snapshot directory '%s'", dir);
	while (rc == 0 && (de = readdir(d)) != NULL)
		if (strncmp(de->d_name, PARTIAL_PREFIX, strlen(PARTIAL_PREFIX)) == 0)
			rc = snapshot_remove(dir, de->d_name, e);
	closedir(d);
	return rc;
}

int
snapshot_take(const char *mirror, const char *dir, const struct snapshot *s,
    enum snapshot_kind kind, struct chj_error *e)
{
	char hidden[sizeof PARTIAL_PREFIX + sizeof s->name], *tmp = NULL, *dest = NULL;
	struct chj_error ignored;
	int rc = -1;

	if (remove_partials(dir, e) < 0)
		return -1;
	snprintf(hidden, sizeof hidden, "%s%s", PARTIAL_PREFIX, s->name);
	if ((tmp = path_join(dir, hidden)) == NULL || (dest = path_join(dir, s->name)) == NULL) {
		chj_error_set(e, CHJ_ERR_NOMEM, 0, "out of memory");
		goto cleanup;
	}
	if (copy_mirror(mirror, tmp, kind, e) < 0 || sync_fs(tmp, e) < 0)
		goto fail;
	if (rename(tmp, dest) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot rename '%s' to '%s'", tmp, dest);
		goto fail;
	}
	if (atomicfile_sync_dir(dest) < 0) {
		chj_error_set(e, CHJ_ERR_SYS, errno, "cannot sync the directory of '%s'", dest);
		goto cleanup;
	}
	rc = 0;
	goto cleanup;
fail:
	remove_path(tmp, &ignored);
cleanup:
	free(tmp);
	free(dest);
	return rc;
}
