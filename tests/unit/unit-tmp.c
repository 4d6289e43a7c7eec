/* unit-tmp.c: the unit tests' temporary directories (unit-tmp.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit-tmp.h"

char *
unit_tmpdir(char *dir, size_t size, const char *tag)
{
	const char *t = getenv("TMPDIR");
	char tmpl[PATH_MAX], real[PATH_MAX];
	int n = snprintf(tmpl, sizeof tmpl, "%s/chj-unit-%s.XXXXXX", t != NULL && *t ? t : "/tmp",
	    tag);

	if (n < 0 || (size_t)n >= sizeof tmpl) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	if (mkdtemp(tmpl) == NULL)
		return NULL;
	if (realpath(tmpl, real) == NULL) {
		int e = errno;

		rmdir(tmpl);
		errno = e;
		return NULL;
	}
	if (strlen(real) >= size) {
		rmdir(tmpl);
		errno = ENAMETOOLONG;
		return NULL;
	}
	return strcpy(dir, real);
}

char *
unit_tmpdir_new(const char *tag)
{
	char dir[PATH_MAX], *copy;

	assert_non_null(unit_tmpdir(dir, sizeof dir, tag));
	copy = strdup(dir);
	if (copy == NULL)
		unit_rmtree(dir);
	assert_non_null(copy);
	return copy;
}

/* Removes what the directory d holds. 0, or -1 when something is left. */
static int
empty_dir(DIR *d)
{
	struct dirent *de;
	int rc = 0;

	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unit_rmtree_at(dirfd(d), de->d_name) < 0)
			rc = -1;
	}
	return rc;
}

int
unit_rmtree_at(int dfd, const char *name)
{
	DIR *d;
	int fd, rc, e;

	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR)
		return -1;
	if ((fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	rc = empty_dir(d);
	e = errno;
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0)
		return -1;
	errno = e;
	return rc;
}

int
unit_rmtree(const char *path)
{
	return unit_rmtree_at(AT_FDCWD, path);
}

char *
unit_join(char *buf, size_t size, const char *dir, const char *rel)
{
	size_t dl = strlen(dir), rl = strlen(rel);

	assert_true(dl + 1 + rl < size);
	memcpy(buf, dir, dl);
	buf[dl] = '/';
	memcpy(buf + dl + 1, rel, rl + 1);
	return buf;
}

const char *
unit_join_static(const char *dir, const char *rel)
{
	static char bufs[8][PATH_MAX + 64];
	static unsigned n;

	return unit_join(bufs[n++ % 8], sizeof bufs[0], dir, rel);
}

int
unit_tmpdir_teardown(void **state)
{
	int rc = unit_rmtree(*state);

	free(*state);
	*state = NULL;
	return rc;
}
