/* test-longpath.c: cmocka unit tests for paths longer than PATH_MAX: the
 * helpers of common/longpath.h (longpath_openat, longpath_fstatat,
 * longpath_of_dir) and the walker of common/walk.h on a tree deeper than
 * PATH_MAX and deeper than the descriptors it may hold. Each test builds its
 * tree in a temporary directory with mkdirat/openat, one level at a time
 * (the kernel refuses such paths in one call). */
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
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "longpath.h"
#include "walk.h"
#include "unit-tmp.h"

#define NAME_LEN 200                 /* each level of the long tree */
#define LEVELS 45                    /* about 9,000 bytes: three pieces */
#define RACE_ROUNDS 20000            /* removals raced against naming */

struct tree {
	char *base;                      /* the temporary directory (real path) */
	char *deep;                      /* base + LEVELS long names */
	char *rel;                       /* deep, relative to base */
	int base_fd;
	int deep_fd;                     /* the deepest directory */
};

/* ---- helpers ---- */

/* Makes a chain of levels directories below the directory at fd, each named
 * fixed, or (NULL) NAME_LEN bytes numbered by its level; returns the deepest
 * one's fd, appends the names to *rel. */
static int
make_chain(int fd, const char *fixed, int levels, char **rel)
{
	size_t len = strlen(*rel);
	int i, nfd;

	fd = dup(fd);
	assert_true(fd >= 0);
	for (i = 1; i <= levels; i++) {
		char comp[NAME_LEN + 32];
		char *nr;

		if (fixed != NULL)
			snprintf(comp, sizeof comp, "%s", fixed);
		else
			snprintf(comp, sizeof comp, "%02d-%0*d", i, NAME_LEN - 3, 0);
		assert_int_equal(mkdirat(fd, comp, 0755), 0);
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(nfd >= 0);
		close(fd);
		fd = nfd;
		nr = realloc(*rel, len + strlen(comp) + 2);
		assert_non_null(nr);
		*rel = nr;
		len += (size_t)sprintf(*rel + len, "%s%s", len > 0 ? "/" : "", comp);
	}
	return fd;
}

static char *
concat(const char *a, const char *sep, const char *b)
{
	char *p = malloc(strlen(a) + strlen(sep) + strlen(b) + 1);

	assert_non_null(p);
	return strcat(strcat(strcpy(p, a), sep), b);
}

static int
tree_setup(void **state)
{
	struct tree *tr = calloc(1, sizeof *tr);
	int fd;

	assert_non_null(tr);
	tr->base = unit_tmpdir_new("longpath");
	tr->base_fd = open(tr->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(tr->base_fd >= 0);
	tr->rel = strdup("");
	tr->deep_fd = make_chain(tr->base_fd, NULL, LEVELS, &tr->rel);
	tr->deep = concat(tr->base, "/", tr->rel);
	/* a file, a symlink to it, and a file where a directory is expected */
	fd = openat(tr->deep_fd, "f", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "deep\n", 5), 5);
	close(fd);
	assert_int_equal(symlinkat("f", tr->deep_fd, "l"), 0);
	*state = tr;
	return 0;
}

static int
tree_teardown(void **state)
{
	struct tree *tr = *state;

	close(tr->deep_fd);
	close(tr->base_fd);
	unit_rmtree(tr->base);
	free(tr->base);
	free(tr->deep);
	free(tr->rel);
	free(tr);
	return 0;
}

/* Same inode as the descriptor want. */
static void
assert_same_file(int fd, int want)
{
	struct stat a, b;

	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(fstat(want, &b), 0);
	assert_true(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
}

/* ---- longpath_openat ---- */

static void
test_openat_short(void **state)
{
	struct tree *tr = *state;
	int fd;

	/* one call, as openat(): same results, same errors */
	fd = longpath_openat(AT_FDCWD, tr->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_same_file(fd, tr->base_fd);
	close(fd);
	errno = 0;
	assert_int_equal(longpath_openat(tr->base_fd, "missing", O_RDONLY), -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_openat_deep(void **state)
{
	struct tree *tr = *state;
	char *p, *dbl, *q;
	char buf[8];
	int fd;

	assert_true(strlen(tr->deep) > 2 * PATH_MAX);
	/* absolute */
	fd = longpath_openat(AT_FDCWD, tr->deep, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_same_file(fd, tr->deep_fd);
	close(fd);
	/* relative to a descriptor */
	fd = longpath_openat(tr->base_fd, tr->rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_same_file(fd, tr->deep_fd);
	close(fd);
	/* a file at the end, read through the descriptor */
	p = concat(tr->deep, "/", "f");
	fd = longpath_openat(AT_FDCWD, p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof buf), 5);
	assert_memory_equal(buf, "deep\n", 5);
	close(fd);
	free(p);
	/* O_NOFOLLOW applies to the last name */
	p = concat(tr->deep, "/", "l");
	errno = 0;
	assert_int_equal(longpath_openat(AT_FDCWD, p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), -1);
	assert_int_equal(errno, ELOOP);
	free(p);
	/* "//" between the names, and a trailing '/' */
	dbl = malloc(2 * strlen(tr->deep) + 2);
	assert_non_null(dbl);
	for (p = tr->deep, q = dbl; *p != '\0'; p++) {
		*q++ = *p;
		if (*p == '/')
			*q++ = '/';
	}
	strcpy(q, "/");
	fd = longpath_openat(AT_FDCWD, dbl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_same_file(fd, tr->deep_fd);
	close(fd);
	free(dbl);
}

static void
test_openat_errors(void **state)
{
	struct tree *tr = *state;
	char *p, *huge;

	/* a missing name, deep */
	p = concat(tr->deep, "/", "missing/f");
	errno = 0;
	assert_int_equal(longpath_openat(AT_FDCWD, p, O_RDONLY), -1);
	assert_int_equal(errno, ENOENT);
	free(p);
	/* a file where a directory is expected, on the way (in a piece) */
	p = concat(tr->deep, "/", "f/x");
	errno = 0;
	assert_int_equal(longpath_openat(AT_FDCWD, p, O_RDONLY), -1);
	assert_int_equal(errno, ENOTDIR);
	free(p);
	/* one name longer than PATH_MAX: cannot be cut */
	huge = malloc(PATH_MAX + 32);
	assert_non_null(huge);
	memset(huge, 'n', PATH_MAX + 30);
	huge[PATH_MAX + 30] = '\0';
	p = concat(tr->base, "/", huge);
	errno = 0;
	assert_int_equal(longpath_openat(AT_FDCWD, p, O_RDONLY), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	free(p);
	free(huge);
}

/* ---- longpath_fstatat ---- */

static void
test_fstatat_deep(void **state)
{
	struct tree *tr = *state;
	struct stat st;
	char *p;

	assert_int_equal(longpath_fstatat(AT_FDCWD, tr->deep, &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISDIR(st.st_mode));
	p = concat(tr->deep, "/", "l");
	assert_int_equal(longpath_fstatat(AT_FDCWD, p, &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(longpath_fstatat(AT_FDCWD, p, &st, 0), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 5);
	free(p);
	p = concat(tr->rel, "/", "f");
	assert_int_equal(longpath_fstatat(tr->base_fd, p, &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	free(p);
	p = concat(tr->deep, "/", "gone");
	errno = 0;
	assert_int_equal(longpath_fstatat(AT_FDCWD, p, &st, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(errno, ENOENT);
	free(p);
	/* short: one call */
	assert_int_equal(longpath_fstatat(tr->base_fd, "", &st, AT_EMPTY_PATH), 0);
	assert_true(S_ISDIR(st.st_mode));
}

/* ---- longpath_of_dir ---- */

static void
test_of_dir(void **state)
{
	struct tree *tr = *state;
	char *p;
	int fd;

	/* short: what the kernel says */
	p = longpath_of_dir(tr->base_fd);
	assert_non_null(p);
	assert_string_equal(p, tr->base);
	free(p);
	/* deeper than the kernel names: every level found in its parent */
	p = longpath_of_dir(tr->deep_fd);
	assert_non_null(p);
	assert_string_equal(p, tr->deep);
	free(p);
	/* an O_PATH descriptor does as well */
	fd = openat(tr->deep_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	p = longpath_of_dir(fd);
	assert_non_null(p);
	assert_string_equal(p, tr->deep);
	free(p);
	close(fd);
}

static void
test_of_dir_renamed_and_removed(void **state)
{
	struct tree *tr = *state;
	char *p, *want;
	int up, fd;

	/* renamed after it was opened: the new name */
	assert_int_equal(mkdirat(tr->deep_fd, "sub", 0755), 0);
	fd = openat(tr->deep_fd, "sub", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(renameat(tr->deep_fd, "sub", tr->deep_fd, "renamed"), 0);
	want = concat(tr->deep, "/", "renamed");
	p = longpath_of_dir(fd);
	assert_non_null(p);
	assert_string_equal(p, want);
	free(p);
	free(want);
	/* removed: no name */
	assert_int_equal(unlinkat(tr->deep_fd, "renamed", AT_REMOVEDIR), 0);
	errno = 0;
	assert_null(longpath_of_dir(fd));
	assert_int_equal(errno, ENOENT);
	close(fd);
	/* removed, short: not the kernel's "... (deleted)" */
	assert_int_equal(mkdirat(tr->base_fd, "short", 0755), 0);
	fd = openat(tr->base_fd, "short", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(unlinkat(tr->base_fd, "short", AT_REMOVEDIR), 0);
	errno = 0;
	assert_null(longpath_of_dir(fd));
	assert_int_equal(errno, ENOENT);
	close(fd);
	/* a directory above it renamed: the path follows */
	up = openat(tr->deep_fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(up >= 0);
	p = strrchr(tr->deep, '/');
	assert_int_equal(renameat(up, p + 1, up, "moved"), 0);
	want = concat(tr->deep, "", "");
	strcpy(strrchr(want, '/') + 1, "moved");
	p = longpath_of_dir(tr->deep_fd);
	assert_non_null(p);
	assert_string_equal(p, want);
	free(p);
	assert_int_equal(renameat(up, "moved", up, strrchr(tr->deep, '/') + 1), 0);
	free(want);
	close(up);
}

/* ---- the walker ---- */

struct seen {
	char **paths;
	size_t n;
	unsigned long dirs;
	int max_depth;
};

static int
collect(void *ctx, const char *path, size_t len, unsigned char type, const struct stat *st,
    int depth)
{
	struct seen *s = ctx;

	(void)st;
	assert_int_equal(strlen(path), len);
	if (depth > s->max_depth)
		s->max_depth = depth;
	if (type == DT_DIR) {
		s->dirs++;
		return WALK_CONTINUE;
	}
	s->paths = realloc(s->paths, (s->n + 1) * sizeof *s->paths);
	assert_non_null(s->paths);
	s->paths[s->n++] = strdup(path);
	return WALK_CONTINUE;
}

static void
seen_free(struct seen *s)
{
	while (s->n > 0)
		free(s->paths[--s->n]);
	free(s->paths);
	memset(s, 0, sizeof *s);
}

/* Walks start with at most maxfd descriptors (RLIMIT_NOFILE), restored
 * after. */
static int
walk_limited(const char *start, int flags, rlim_t maxfd, struct seen *s, struct walk_result *res)
{
	struct rlimit old, lim;
	int rc;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	lim = old;
	lim.rlim_cur = maxfd;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	rc = walk_tree(start, flags, NULL, collect, s, res);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	return rc;
}

/* A directory removed while it is being named: never the kernel's
 * "... (deleted)" link text as if it were a path (the fanotify backend
 * journaled "gone (deleted)/x" this way, once, in CI). A second thread
 * removes the directory while this one names it, many times over; each
 * answer must be the directory's own path or ENOENT. */
struct racer {
	int dfd;
	atomic_int go;                   /* 1: remove "victim" now; 0: done */
	atomic_int stop;
};

static void *
racer_main(void *arg)
{
	struct racer *r = arg;

	for (;;) {
		while (atomic_load(&r->go) == 0)
			if (atomic_load(&r->stop))
				return NULL;
		unlinkat(r->dfd, "victim", AT_REMOVEDIR);
		atomic_store(&r->go, 0);
	}
}

static void
test_of_dir_removed_while_named(void **state)
{
	struct tree *tr = *state;
	struct racer r = { .dfd = tr->base_fd };
	char *want = concat(tr->base, "/", "victim"), *p;
	pthread_t th;
	int i, fd, named = 0, gone = 0;

	assert_int_equal(pthread_create(&th, NULL, racer_main, &r), 0);
	for (i = 0; i < RACE_ROUNDS; i++) {
		assert_int_equal(mkdirat(tr->base_fd, "victim", 0755), 0);
		fd = openat(tr->base_fd, "victim", O_PATH | O_DIRECTORY | O_CLOEXEC);
		assert_true(fd >= 0);
		atomic_store(&r.go, 1);
		errno = 0;
		p = longpath_of_dir(fd);
		if (p != NULL) {
			assert_string_equal(p, want);
			named++;
		} else {
			assert_int_equal(errno, ENOENT);
			gone++;
		}
		free(p);
		while (atomic_load(&r.go) != 0)
			;
		close(fd);
	}
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	print_message("# named %d times, removed first %d times\n", named, gone);
	free(want);
}

static void
test_walk_long_start(void **state)
{
	struct tree *tr = *state;
	struct walk_result res;
	struct seen s;
	char *f = concat(tr->deep, "/", "f"), *l = concat(tr->deep, "/", "l");
	int flags;

	/* the start itself deeper than PATH_MAX (a new directory, a rescan) */
	for (flags = 0; flags <= (WALK_SORTED | WALK_STAT); flags += WALK_SORTED | WALK_STAT) {
		memset(&s, 0, sizeof s);
		assert_int_equal(walk_tree(tr->deep, flags, NULL, collect, &s, &res), 0);
		assert_int_equal(res.errors, 0);
		assert_int_equal(s.n, 2);
		assert_int_equal(s.dirs, 1);
		assert_true((strcmp(s.paths[0], f) == 0 && strcmp(s.paths[1], l) == 0) ||
		    (strcmp(s.paths[0], l) == 0 && strcmp(s.paths[1], f) == 0));
		seen_free(&s);
	}
	/* from the base: every level, full paths */
	memset(&s, 0, sizeof s);
	assert_int_equal(walk_tree(tr->base, WALK_SORTED, NULL, collect, &s, &res), 0);
	assert_int_equal(res.errors, 0);
	assert_int_equal(s.dirs, LEVELS + 1);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.paths[0], f);
	assert_string_equal(s.paths[1], l);
	seen_free(&s);
	free(f);
	free(l);
}

static void
test_walk_deeper_than_descriptors(void **state)
{
	struct tree *tr = *state;
	struct walk_result res;
	struct seen s;
	char *rel = strdup(""), *top, *bottom, *mid;
	int fd, i, flags;

	/* 2,100 levels of "d" (about 4,200 bytes), a file at the bottom and
	 * one at level 1,000, walked with 100 descriptors at most */
	fd = make_chain(tr->base_fd, "d", 2100, &rel);
	close(openat(fd, "bottom", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	close(fd);
	mid = concat(tr->base, "/", "d");
	for (i = 2; i <= 1000; i++) {
		char *nm = concat(mid, "/", "d");

		free(mid);
		mid = nm;
	}
	fd = longpath_openat(AT_FDCWD, mid, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	close(openat(fd, "mid", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	close(fd);
	top = concat(tr->base, "/", "d");
	bottom = concat(tr->base, "/", rel);
	{
		char *b = concat(bottom, "/", "bottom"), *m = concat(mid, "/", "mid");

		for (flags = 0; flags <= (WALK_SORTED | WALK_STAT); flags += WALK_SORTED | WALK_STAT) {
			memset(&s, 0, sizeof s);
			assert_int_equal(walk_limited(top, flags, 100, &s, &res), 0);
			assert_int_equal(res.errors, 0);
			assert_int_equal(s.dirs, 2100);
			assert_int_equal(s.max_depth, 2100);
			assert_int_equal(s.n, 2);
			assert_true((strcmp(s.paths[0], b) == 0 && strcmp(s.paths[1], m) == 0) ||
			    (strcmp(s.paths[0], m) == 0 && strcmp(s.paths[1], b) == 0));
			seen_free(&s);
		}
		free(b);
		free(m);
	}
	unit_rmtree_at(tr->base_fd, "d");
	free(rel);
	free(top);
	free(mid);
	free(bottom);
}

int
main(void)
{
	struct rlimit lim;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_openat_short, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_openat_deep, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_openat_errors, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_fstatat_deep, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_of_dir, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_of_dir_renamed_and_removed, tree_setup,
		    tree_teardown),
		cmocka_unit_test_setup_teardown(test_of_dir_removed_while_named, tree_setup,
		    tree_teardown),
		cmocka_unit_test_setup_teardown(test_walk_long_start, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_walk_deeper_than_descriptors, tree_setup,
		    tree_teardown),
	};

	/* removing the 2,100-level tree holds a descriptor per level */
	if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
		lim.rlim_cur = lim.rlim_max;
		setrlimit(RLIMIT_NOFILE, &lim);
	}
	return cmocka_run_group_tests_name("long paths", tests, NULL, NULL);
}
