/* unit-tmp.h: the unit tests' temporary directories, shared by every
 * tests/unit/test-*.c that works on files: one made under $TMPDIR, removed
 * with everything below it (without a shell, however deep), and the paths
 * of files in it. */
#ifndef CHJ_UNIT_TMP_H
#define CHJ_UNIT_TMP_H

#include <stddef.h>

/* Makes a new directory $TMPDIR/chj-unit-TAG.XXXXXX ($TMPDIR unset or
 * empty: /tmp) and puts its real path (symlinks resolved) in dir, of size
 * bytes (PATH_MAX is enough). Returns dir, or NULL (errno set). */
char *unit_tmpdir(char *dir, size_t size, const char *tag);

/* The same in memory of its own (the caller frees it); a cmocka failure
 * when it cannot be made. */
char *unit_tmpdir_new(const char *tag);

/* A cmocka teardown for a test whose state is a unit_tmpdir_new()
 * directory: removes it and frees it. Returns 0, or -1 when something was
 * left. */
int unit_tmpdir_teardown(void **state);

/* Removes path and everything below it, not following symbolic links. A
 * path that does not exist is no error. Returns 0, or -1 when something
 * could not be removed (errno of the last failure). */
int unit_rmtree(const char *path);

/* The same for the entry name of the directory dfd (AT_FDCWD: the current
 * one): a tree deeper than PATH_MAX too (one descriptor a level). */
int unit_rmtree_at(int dfd, const char *name);

/* dir/rel into buf, of size bytes; a cmocka failure when it does not fit.
 * Returns buf. */
char *unit_join(char *buf, size_t size, const char *dir, const char *rel);

/* dir/rel in one of 8 static buffers of PATH_MAX + 64 bytes used in turn:
 * good until the eighth call after. A cmocka failure when it does not fit. */
const char *unit_join_static(const char *dir, const char *rel);

#endif
