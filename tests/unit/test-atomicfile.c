/* test-atomicfile.c: the one durable-write helper. The process is killed at
 * each step of a commit (CHJ_TEST_ATOMIC_CRASH): the file is then the old
 * one or the new one, whole, never a mix or missing; the next writer clears
 * the crashed one's temporary file. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "atomicfile.h"
#include "unit-tmp.h"

static char dir[PATH_MAX];

static int
setup(void **state)
{
	(void)state;
	return unit_tmpdir(dir, sizeof dir, "atomic") == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	return unit_rmtree(dir);
}

/* The content of path into buf ("" when missing). */
static const char *
content(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? 0 : read(fd, buf, size - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void
test_write_and_replace(void **state)
{
	struct chj_error e;
	char path[PATH_MAX + 64], buf[64];
	struct stat st;

	(void)state;
	snprintf(path, sizeof path, "%s/file", dir);
	assert_int_equal(atomicfile_write(path, "one\n", 4, 0640, &e), 0);
	assert_string_equal(content(path, buf, sizeof buf), "one\n");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(atomicfile_write(path, "two, longer\n", 12, 0600, &e), 0);
	assert_string_equal(content(path, buf, sizeof buf), "two, longer\n");
	snprintf(path, sizeof path, "%s/.file.tmp", dir);
	assert_int_equal(stat(path, &st), -1);
}

static void
test_errors(void **state)
{
	struct chj_error e;
	char path[PATH_MAX + 64];

	(void)state;
	snprintf(path, sizeof path, "%s/no/such/dir/file", dir);
	assert_int_equal(atomicfile_write(path, "x", 1, 0600, &e), -1);
	assert_int_equal(e.code, CHJ_ERR_SYS);
	assert_int_equal(e.errnum, ENOENT);
	assert_non_null(strstr(e.msg, "no/such/dir/.file.tmp"));
}

static void
test_rollback(void **state)
{
	struct atomicfile af;
	struct chj_error e;
	char path[PATH_MAX + 64], buf[64];
	struct stat st;

	(void)state;
	snprintf(path, sizeof path, "%s/rb", dir);
	assert_int_equal(atomicfile_write(path, "kept\n", 5, 0600, &e), 0);
	assert_int_equal(atomicfile_begin(&af, path, 0600, &e), 0);
	assert_int_equal(write(af.fd, "lost\n", 5), 5);
	atomicfile_rollback(&af);
	assert_string_equal(content(path, buf, sizeof buf), "kept\n");
	snprintf(path, sizeof path, "%s/.rb.tmp", dir);
	assert_int_equal(stat(path, &st), -1);
}

/* atomicfile_commit_unsynced: the same rename (written with the fd open or
 * closed, as SQLite leaves it), no temporary file left. */
static void
test_commit_unsynced(void **state)
{
	struct atomicfile af;
	struct chj_error e;
	char path[PATH_MAX + 64], buf[64];
	struct stat st;

	(void)state;
	snprintf(path, sizeof path, "%s/lazy", dir);
	assert_int_equal(atomicfile_write(path, "old\n", 4, 0600, &e), 0);
	assert_int_equal(atomicfile_begin(&af, path, 0600, &e), 0);
	assert_int_equal(write(af.fd, "new\n", 4), 4);
	assert_int_equal(atomicfile_commit_unsynced(&af, &e), 0);
	assert_string_equal(content(path, buf, sizeof buf), "new\n");
	assert_int_equal(atomicfile_begin(&af, path, 0600, &e), 0);
	assert_int_equal(write(af.fd, "newer\n", 6), 6);
	close(af.fd);
	af.fd = -1;
	assert_int_equal(atomicfile_commit_unsynced(&af, &e), 0);
	assert_string_equal(content(path, buf, sizeof buf), "newer\n");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	snprintf(path, sizeof path, "%s/.lazy.tmp", dir);
	assert_int_equal(stat(path, &st), -1);
}

/* Writes "new" over "old" in a child killed at step; returns what is left. */
static const char *
crash_at(int step, char *buf, size_t size)
{
	struct chj_error e;
	char path[PATH_MAX + 64], env[32];
	pid_t pid;
	int status;

	snprintf(path, sizeof path, "%s/crash%d", dir, step);
	assert_int_equal(atomicfile_write(path, "old content\n", 12, 0600, &e), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		snprintf(env, sizeof env, "%d", step);
		setenv("CHJ_TEST_ATOMIC_CRASH", env, 1);
		atomicfile_write(path, "new content, longer\n", 20, 0600, &e);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 99);      /* it did crash there */
	return content(path, buf, size);
}

static void
test_crash_each_step(void **state)
{
	struct chj_error e;
	char buf[64], path[PATH_MAX + 64];
	struct stat st;

	(void)state;
	/* before the fsync, before the rename: the old file, whole */
	assert_string_equal(crash_at(1, buf, sizeof buf), "old content\n");
	assert_string_equal(crash_at(2, buf, sizeof buf), "old content\n");
	/* after the rename, before the directory's fsync: the new one */
	assert_string_equal(crash_at(3, buf, sizeof buf), "new content, longer\n");
	/* the next writer clears a crashed one's temporary file */
	snprintf(path, sizeof path, "%s/.crash2.tmp", dir);
	assert_int_equal(stat(path, &st), 0);
	snprintf(path, sizeof path, "%s/crash2", dir);
	assert_int_equal(atomicfile_write(path, "again\n", 6, 0600, &e), 0);
	assert_string_equal(content(path, buf, sizeof buf), "again\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_and_replace),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_rollback),
		cmocka_unit_test(test_commit_unsynced),
		cmocka_unit_test(test_crash_each_step),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
