/* test-stateperm.c: cmocka unit tests for common/stateperm.h: with `group`,
 * the journal's files 0640 and its directories 0750 in that group (the
 * process's own group here, which any user may give its files); the key
 * removed, private again; directories others may write in, and symlinks,
 * left alone; nothing done for a state that was never shared. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "stateperm.h"
#include "unit-tmp.h"

static char T[PATH_MAX];

/* T/rel, in a buffer good until the eighth call after (unit-tmp.h). */
static const char *
tp(const char *rel)
{
	return unit_join_static(T, rel);
}

static void
touch(const char *rel, mode_t mode)
{
	int fd = open(tp(rel), O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static mode_t
mode_of(const char *rel)
{
	struct stat st;

	assert_int_equal(lstat(tp(rel), &st), 0);
	return st.st_mode & 07777;
}

/* A state as the daemon leaves it: T/state (0700) with the journal and its
 * files, T/state/consumers with a lock and a cursor. */
static int
setup(void **state)
{

	(void)state;
	if (unit_tmpdir(T, sizeof T, "stateperm") == NULL)
		return -1;
	if (mkdir(tp("state"), 0700) < 0 || mkdir(tp("state/consumers"), 0700) < 0)
		return -1;
	touch("state/journal.db", 0600);
	touch("state/journal.db-wal", 0600);
	touch("state/journal.db-shm", 0600);
	touch("state/journal.db.lock", 0600);
	touch("state/journal.db.status", 0644);
	touch("state/consumers/.lock", 0600);
	touch("state/consumers/nightly", 0600);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unit_rmtree(T);
	return 0;
}

/* A configuration on T/state, with the process's group or none. */
static void
conf(struct config *c, int with_group)
{
	static char journal[PATH_MAX + 64], consumers[PATH_MAX + 64];

	memset(c, 0, sizeof *c);
	strcpy(journal, tp("state/journal.db"));
	strcpy(consumers, tp("state/consumers"));
	c->journal = journal;
	c->consumers = consumers;
	c->group = with_group ? (char *)"self" : NULL;
	c->gid = getegid();
}

static void
test_shared_then_private(void **state)
{
	static const char *const files[] = { "state/journal.db", "state/journal.db-wal",
		"state/journal.db-shm", "state/journal.db.lock", "state/journal.db.status",
		"state/consumers/.lock", "state/consumers/nightly" };
	struct config c;
	struct chj_error e;
	size_t i;

	(void)state;
	conf(&c, 1);
	assert_int_equal(stateperm_file_mode(&c), 0640);
	assert_int_equal(stateperm_apply(&c, &e), 0);
	for (i = 0; i < sizeof files / sizeof files[0]; i++)
		assert_int_equal(mode_of(files[i]), 0640);
	assert_int_equal(mode_of("state"), 0750);
	assert_int_equal(mode_of("state/consumers"), 0750);
	/* again: nothing changes */
	assert_int_equal(stateperm_apply(&c, &e), 0);
	assert_int_equal(mode_of("state/journal.db"), 0640);

	/* the key removed: private again; the status file as the daemon makes it */
	conf(&c, 0);
	assert_int_equal(stateperm_file_mode(&c), 0600);
	assert_int_equal(stateperm_apply(&c, &e), 0);
	for (i = 0; i < sizeof files / sizeof files[0]; i++)
		assert_int_equal(mode_of(files[i]), strstr(files[i], ".status") ? 0644 : 0600);
	assert_int_equal(mode_of("state"), 0700);
	assert_int_equal(mode_of("state/consumers"), 0700);
}

/* Never shared: a private state is left exactly as it is (a 0755 journal
 * directory an administrator made stays 0755). */
static void
test_never_shared(void **state)
{
	struct config c;
	struct chj_error e;

	(void)state;
	assert_int_equal(chmod(tp("state"), 0755), 0);
	conf(&c, 0);
	assert_int_equal(stateperm_apply(&c, &e), 0);
	assert_int_equal(mode_of("state"), 0755);
	assert_int_equal(mode_of("state/journal.db"), 0600);
	assert_int_equal(mode_of("state/journal.db.status"), 0644);
	assert_int_equal(chmod(tp("state"), 0700), 0);
}

/* A consumers directory others may write in (say /tmp) is not changed, and
 * a symlink in it is not followed. */
static void
test_foreign_dir_and_symlink(void **state)
{
	struct config c;
	struct chj_error e;

	(void)state;
	assert_int_equal(mkdir(tp("open"), 01777), 0);
	assert_int_equal(chmod(tp("open"), 01777), 0);
	touch("victim", 0600);
	assert_int_equal(symlink(tp("victim"), tp("state/consumers/link")), 0);
	conf(&c, 1);
	c.consumers = (char *)tp("open");
	assert_int_equal(stateperm_apply(&c, &e), 0);
	assert_int_equal(mode_of("open"), 01777);
	c.consumers = (char *)tp("state/consumers");
	assert_int_equal(stateperm_apply(&c, &e), 0);
	assert_int_equal(mode_of("victim"), 0600);
	assert_int_equal(mode_of("state/consumers/nightly"), 0640);
	unlink(tp("state/consumers/link"));
}

/* stateperm_fix_fd: a file made by the agent gets the group's mode. */
static void
test_fix_fd(void **state)
{
	struct config c;
	int fd;

	(void)state;
	conf(&c, 0);
	fd = open(tp("state/new"), O_WRONLY | O_CREAT | O_EXCL, stateperm_file_mode(&c));
	assert_true(fd >= 0);
	assert_int_equal(stateperm_fix_fd(&c, fd), 0);
	close(fd);
	assert_int_equal(mode_of("state/new"), 0600 & ~(mode_t)umask(umask(0)));
	conf(&c, 1);
	fd = open(tp("state/new"), O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(stateperm_fix_fd(&c, fd), 0);
	close(fd);
	assert_int_equal(mode_of("state/new"), 0640);
	unlink(tp("state/new"));
}

/* 1 when another process sees a POSIX lock on byte off of file rel (held by
 * this one), by F_GETLK from a forked child. */
static int
locked_for_others(const char *rel, off_t off)
{
	int status;
	pid_t child = fork();

	assert_true(child >= 0);
	if (child == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = off,
			.l_len = 1 };
		int fd = open(tp(rel), O_RDWR);

		if (fd < 0 || fcntl(fd, F_GETLK, &fl) < 0)
			_exit(2);
		_exit(fl.l_type != F_UNLCK ? 1 : 0);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 2);
	return WEXITSTATUS(status) == 1;
}

/* The daemon applies `group` with the journal open in SQLite, which holds
 * POSIX locks on the journal and its -shm (the -shm's dead man switch at
 * byte 128 among them). The close of any descriptor of those files drops
 * all of them for the whole process: stateperm_apply() must not close one
 * it opened for I/O (it opens them O_PATH). Before, another process took
 * the -shm as abandoned and truncated it under the daemon (SIGBUS). */
static void
test_locks_kept(void **state)
{
	static const char *const files[] = { "state/journal.db", "state/journal.db-shm" };
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 128, .l_len = 1 };
	struct config c;
	struct chj_error e;
	int fds[2];
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		fds[i] = open(tp(files[i]), O_RDWR);
		assert_true(fds[i] >= 0);
		assert_int_equal(fcntl(fds[i], F_SETLK, &fl), 0);
		assert_true(locked_for_others(files[i], 128));
	}
	conf(&c, 1);
	assert_int_equal(stateperm_apply(&c, &e), 0);
	assert_int_equal(mode_of("state/journal.db-shm"), 0640);
	for (i = 0; i < 2; i++) {
		assert_true(locked_for_others(files[i], 128));
		close(fds[i]);
	}
	conf(&c, 0);
	assert_int_equal(stateperm_apply(&c, &e), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_then_private),
		cmocka_unit_test(test_never_shared),
		cmocka_unit_test(test_foreign_dir_and_symlink),
		cmocka_unit_test(test_fix_fd),
		cmocka_unit_test(test_locks_kept),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
