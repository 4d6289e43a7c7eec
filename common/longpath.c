/* longpath.c: paths of any length, resolved in pieces shorter than PATH_MAX,
 * and the path of a directory descriptor however long it is (see
 * longpath.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "array.h"
#include "longpath.h"

/* Walks down from dirfd along path until what is left is shorter than
 * PATH_MAX, each step opening the longest prefix that fits and ends before a
 * '/'. Returns the descriptor to resolve *rest from: dirfd itself when path
 * is short (nothing opened), else a new O_PATH descriptor the caller closes;
 * -1 with errno. */
static int
descend(int dirfd, const char *path, const char **rest)
{
	char piece[PATH_MAX];
	size_t len = strlen(path), cut;
	int fd = dirfd, nfd, e;

	while (len >= PATH_MAX) {
		for (cut = PATH_MAX - 1; cut > 0 && path[cut] != '/'; cut--)
			;
		if (cut == 0) {
			errno = ENAMETOOLONG;    /* one name longer than any file system takes */
			goto fail;
		}
		memcpy(piece, path, cut);
		piece[cut] = '\0';
		if ((nfd = openat(fd, piece, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
			goto fail;
		if (fd != dirfd)
			close(fd);
		fd = nfd;
		while (path[cut] == '/')
			cut++;
		path += cut;
		len -= cut;
	}
	*rest = len > 0 ? path : ".";
	return fd;
fail:
	e = errno;
	if (fd != dirfd)
		close(fd);
	errno = e;
	return -1;
}

int
longpath_openat(int dirfd, const char *path, int flags)
{
	const char *rest;
	int base, fd, e;

	if (strlen(path) < PATH_MAX)
		return openat(dirfd, path, flags);
	if ((base = descend(dirfd, path, &rest)) < 0)
		return -1;
	fd = openat(base, rest, flags);
	e = errno;
	if (base != dirfd)
		close(base);
	errno = e;
	return fd;
}

int
longpath_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	const char *rest;
	int base, rc, e;

	if (strlen(path) < PATH_MAX)
		return fstatat(dirfd, path, st, flags);
	if ((base = descend(dirfd, path, &rest)) < 0)
		return -1;
	rc = fstatat(base, rest, st, flags);
	e = errno;
	if (base != dirfd)
		close(base);
	errno = e;
	return rc;
}

/* Looks in the directory open at parent for the entry whose inode is st's.
 * by_ino: trust d_ino to pick the candidates (not for a mount point, whose
 * entry carries the covered directory's inode: then every directory is
 * stat()ed). Returns the name (newly allocated), or NULL with errno (ENOENT:
 * none). */
static char *
find_entry(int parent, const struct stat *st, int by_ino)
{
	struct dirent *de;
	struct stat est;
	char *name = NULL;
	DIR *d;
	int fd, e = ENOENT;

	if ((fd = openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return NULL;
	if ((d = fdopendir(fd)) == NULL) {
		e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	for (errno = 0; (de = readdir(d)) != NULL; errno = 0) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (by_ino ? de->d_ino != st->st_ino :
		    de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (fstatat(parent, de->d_name, &est, AT_SYMLINK_NOFOLLOW) == 0 &&
		    est.st_dev == st->st_dev && est.st_ino == st->st_ino) {
			if ((name = strdup(de->d_name)) == NULL)
				e = ENOMEM;
			break;
		}
	}
	if (de == NULL && errno != 0)
		e = errno;
	closedir(d);
	if (name == NULL)
		errno = e;
	return name;
}

/* The name of the directory open at child in the directory open at parent
 * (its ".."). Returns it newly allocated, or NULL with errno. */
static char *
name_in_parent(int parent, int child)
{
	struct stat cst, pst;
	char *name;

	if (fstat(child, &cst) < 0 || fstat(parent, &pst) < 0)
		return NULL;
	if (cst.st_dev == pst.st_dev && cst.st_ino == pst.st_ino) {
		errno = ENOENT;          /* the top, and still no name: unreachable */
		return NULL;
	}
	name = find_entry(parent, &cst, 1);
	if (name == NULL && errno == ENOENT)
		name = find_entry(parent, &cst, 0);
	return name;
}

/* Joins prefix and the names (innermost first) into one new path. */
static char *
join_up(const char *prefix, char **names, size_t n)
{
	size_t len = strlen(prefix), i, o;
	char *path;

	for (i = 0; i < n; i++)
		len += 1 + strlen(names[i]);
	if ((path = malloc(len + 1)) == NULL)
		return NULL;
	o = strlen(prefix);
	memcpy(path, prefix, o);
	if (o == 1 && n > 0)
		o = 0;                   /* the prefix is "/" */
	for (i = n; i > 0; i--) {
		size_t l = strlen(names[i - 1]);

		path[o++] = '/';
		memcpy(path + o, names[i - 1], l);
		o += l;
	}
	path[o] = '\0';
	return path;
}

/* 1 when the directory open at fd has no name left (or cannot be stat()ed). */
static int
removed(int fd)
{
	struct stat st;

	return fstat(fd, &st) < 0 || st.st_nlink == 0;
}

char *
longpath_of_dir(int fd)
{
	char proc[48], *link, *path = NULL, *name, **names = NULL, **nn;
	size_t n = 0, cap = 0;
	ssize_t r;
	int cur = fd, parent, e;

	/* a directory removed before is found by the check after the
	 * readlink() (its link says "... (deleted)"): no fstat() first, which
	 * cost a drain one call more for each directory it names */
	if ((link = malloc(PATH_MAX + 1)) == NULL)
		return NULL;
	for (;;) {
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", cur);
		r = readlink(proc, link, PATH_MAX);
		if (r > 0 && r < PATH_MAX) {
			link[r] = '\0';
			if (link[0] != '/') {
				errno = ENOENT;  /* not a path: outside our root */
				goto done;
			}
			/* removed (before, or while we read): the link then
			 * says "... (deleted)", and the directory's link count
			 * is already 0 (rmdir drops it before the name goes) */
			if (removed(fd) || (cur != fd && removed(cur))) {
				errno = ENOENT;
				goto done;
			}
			path = join_up(link, names, n);
			goto done;
		}
		/* too long for the kernel (or for link): name this level by
		 * reading its parent, and try again from there */
		if (r < 0 && errno != ENAMETOOLONG)
			goto done;
		if ((parent = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
			goto done;
		name = name_in_parent(parent, cur);
		e = errno;
		if (cur != fd)
			close(cur);
		cur = parent;
		if (name == NULL) {
			errno = e;
			goto done;
		}
		if ((nn = array_grow(names, n, &cap, sizeof *names, 16)) == NULL) {
			free(name);
			errno = ENOMEM;
			goto done;
		}
		names = nn;
		names[n++] = name;
	}
done:
	e = errno;
	if (cur != fd)
		close(cur);
	while (n > 0)
		free(names[--n]);
	free(names);
	free(link);
	errno = e;
	return path;
}
