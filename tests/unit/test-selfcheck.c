/* test-selfcheck.c: cmocka unit tests for common/selfcheck.h on a temporary
 * tree, with a fake /proc/sys (the inotify limits) and an empty /proc (no
 * other process holds inotify watches): every configuration error in one
 * pass, with its line; the directory count (leaf directories not read,
 * excluded ones left out, "more than N" past the limit) against
 * max_user_watches; max_user_instances; a missing root; NFS exports by
 * backend; the journal (a real one, one that is not a journal); free-space
 * thresholds; a corrupt cursor. */
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
#include <unistd.h>

#include "journal.h"
#include "selfcheck.h"
#include "unit-tmp.h"

static char T[PATH_MAX];

struct findings {
	int n;
	int level[256];
	char msg[256][2048];
};

static void
collect(void *ctx, enum selfcheck_level level, const char *msg)
{
	struct findings *f = ctx;

	assert_true(f->n < 256);
	f->level[f->n] = (int)level;
	snprintf(f->msg[f->n], sizeof f->msg[0], "%s", msg);
	f->n++;
}

/* The index of the first finding of level containing text, or -1. */
static int
find(const struct findings *f, int level, const char *text)
{
	int i;

	for (i = 0; i < f->n; i++)
		if ((level < 0 || f->level[i] == level) && strstr(f->msg[i], text) != NULL)
			return i;
	return -1;
}

static void
dump(const struct findings *f)
{
	int i;

	for (i = 0; i < f->n; i++)
		fprintf(stderr, "  %s: %s\n", selfcheck_level_name((enum selfcheck_level)f->level[i]),
		    f->msg[i]);
}

#define assert_found(f, level, text) do { \
	if (find((f), (level), (text)) < 0) { dump(f); fail_msg("not found: %s", (text)); } \
} while (0)

/* T/rel, in a buffer good until the eighth call after (unit-tmp.h). */
static const char *
tp(const char *rel)
{
	return unit_join_static(T, rel);
}

static void
write_file(const char *rel, const char *text)
{
	FILE *f = fopen(tp(rel), "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The inotify limits in the fake /proc/sys. */
static void
sysctls(long watches, long instances, long queued)
{
	char v[32];

	snprintf(v, sizeof v, "%ld\n", watches);
	write_file("sys/fs/inotify/max_user_watches", v);
	snprintf(v, sizeof v, "%ld\n", instances);
	write_file("sys/fs/inotify/max_user_instances", v);
	snprintf(v, sizeof v, "%ld\n", queued);
	write_file("sys/fs/inotify/max_queued_events", v);
}

/* T/spool holds 6 directories below it: a, a/b, a/b/c, a/d, e, skip (and
 * skip/x, excluded with it by the configuration some tests write). */
static int
setup(void **state)
{
	static const char *const dirs[] = { "spool", "spool/a", "spool/a/b", "spool/a/b/c",
		"spool/a/d", "spool/e", "spool/skip", "spool/skip/x", "state", "empty-proc", "sys",
		"sys/fs", "sys/fs/inotify", NULL };
	size_t i;

	(void)state;
	if (unit_tmpdir(T, sizeof T, "selfcheck") == NULL)
		return -1;
	for (i = 0; dirs[i] != NULL; i++)
		if (mkdir(tp(dirs[i]), 0755) < 0)
			return -1;
	write_file("spool/a/file", "x");
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unit_rmtree(T);
	return 0;
}

/* Writes T/c.conf: the spool, the journal in T/state, then extra lines. */
static const char *
conf(const char *extra)
{
	char text[8192];

	snprintf(text, sizeof text, "root = %s\njournal = %s\n%s", tp("spool"), tp("state/journal.db"),
	    extra);
	write_file("c.conf", text);
	return tp("c.conf");
}

static int
run(const char *file, struct selfcheck_opts *o, struct findings *f)
{
	struct chj_error e;
	int worst;

	static char sys[PATH_MAX + 64], proc[PATH_MAX + 64], nfs[PATH_MAX + 64];

	memset(f, 0, sizeof *f);
	/* tp()'s buffers are reused: the defaults are kept apart */
	strcpy(sys, tp("sys"));
	strcpy(proc, tp("empty-proc"));
	strcpy(nfs, tp("no-exports"));
	if (o->sysctl_dir == NULL)
		o->sysctl_dir = sys;
	if (o->proc_dir == NULL)
		o->proc_dir = proc;
	if (o->nfs_table == NULL)
		o->nfs_table = nfs;
	worst = selfcheck_run(file, o, collect, f, &e);
	assert_true(worst >= 0);
	return worst;
}

/* Every error of the file, one finding each, with its line; no machine
 * finding then. */
static void
test_config_errors(void **state)
{
	struct selfcheck_opts o;
	struct findings f;
	char text[4096];

	(void)state;
	snprintf(text, sizeof text, "root = relative\nfoo = bar\nroot = %s\nflush_interval_ms = 5\n",
	    tp("spool"));
	write_file("bad.conf", text);
	memset(&o, 0, sizeof o);
	assert_int_equal(run(tp("bad.conf"), &o, &f), SELFCHECK_ERROR);
	assert_int_equal(f.n, 3);
	assert_non_null(strstr(f.msg[0], "bad.conf:1: key 'root': 'relative' is not an absolute path"));
	assert_non_null(strstr(f.msg[1], "bad.conf:2: key 'foo': unknown key"));
	assert_non_null(strstr(f.msg[2], "bad.conf:4: key 'flush_interval_ms'"));
	/* unreadable */
	assert_int_equal(run(tp("no-such.conf"), &o, &f), SELFCHECK_ERROR);
	assert_int_equal(f.n, 1);
	assert_non_null(strstr(f.msg[0], "cannot read configuration"));
}

/* A valid file, enough watches: every finding ok; the count is exact (the
 * leaf directories are not read, an excluded subtree is left out). */
static void
test_all_fine(void **state)
{
	struct selfcheck_opts o;
	struct findings f;

	(void)state;
	sysctls(100000, 128, 16384);
	memset(&o, 0, sizeof o);
	assert_int_equal(run(conf("exclude = /skip$\n"), &o, &f), SELFCHECK_OK);
	assert_found(&f, SELFCHECK_OK, "the configuration is valid: 1 root, 1 exclude, backend inotify");
	assert_found(&f, SELFCHECK_OK, "c.conf:1: key 'root'");
	assert_found(&f, SELFCHECK_OK, "5 directories below it (not excluded)");
	assert_found(&f, SELFCHECK_OK, "fs.inotify.max_user_watches = 100,000: enough for the 6 directories");
	assert_found(&f, SELFCHECK_OK, "fs.inotify.max_user_instances = 128");
	assert_found(&f, SELFCHECK_OK, "does not exist yet: the daemon creates it");
	/* without the exclude: skip and skip/x counted too */
	assert_int_equal(run(conf(""), &o, &f), SELFCHECK_OK);
	assert_found(&f, SELFCHECK_OK, "7 directories below it");
}

/* Fewer watches than directories: an error naming the sysctl and the
 * command; close to it: a warning; counting stopped: "more than". */
static void
test_watch_limit(void **state)
{
	struct selfcheck_opts o;
	struct findings f;

	(void)state;
	memset(&o, 0, sizeof o);
	sysctls(5, 128, 16384);
	assert_int_equal(run(conf(""), &o, &f), SELFCHECK_ERROR);
	assert_found(&f, SELFCHECK_ERROR, "fs.inotify.max_user_watches = 5 is less than the 8 directories");
	assert_found(&f, SELFCHECK_ERROR, "sysctl -w fs.inotify.max_user_watches=10");
	sysctls(9, 128, 16384);
	assert_int_equal(run(conf(""), &o, &f), SELFCHECK_WARNING);
	assert_found(&f, SELFCHECK_WARNING, "fs.inotify.max_user_watches = 9 is barely more");
	/* a bounded count */
	memset(&o, 0, sizeof o);
	o.dir_limit = 3;
	sysctls(100000, 128, 16384);
	assert_int_equal(run(conf(""), &o, &f), SELFCHECK_WARNING);
	assert_found(&f, SELFCHECK_OK, "more than 2 directories below it (counting stopped there)");
	assert_found(&f, SELFCHECK_WARNING, "there are more than 3 directories under the roots");
	/* past the limit and past the watches: an error still */
	memset(&o, 0, sizeof o);
	o.dir_limit = 3;
	sysctls(2, 128, 16384);
	assert_int_equal(run(conf(""), &o, &f), SELFCHECK_ERROR);
	assert_found(&f, SELFCHECK_ERROR, "is less than the more than 3 directories");
}

static void
test_instances_and_queue(void **state)
{
	struct selfcheck_opts o;
	struct findings f;

	(void)state;
	memset(&o, 0, sizeof o);
	sysctls(100000, 0, 1000);
	assert_int_equal(run(conf(""), &o, &f), SELFCHECK_ERROR);
	assert_found(&f, SELFCHECK_ERROR, "fs.inotify.max_user_instances = 0");
	assert_found(&f, SELFCHECK_WARNING, "fs.inotify.max_queued_events = 1,000, below");
}

/* A missing root is a warning; with backend = fanotify the inotify limits
 * are not checked. */
static void
test_missing_root(void **state)
{
	struct selfcheck_opts o;
	struct findings f;
	char extra[PATH_MAX + 64];

	(void)state;
	memset(&o, 0, sizeof o);
	sysctls(100000, 128, 16384);
	snprintf(extra, sizeof extra, "root = %s\n", tp("gone"));
	assert_int_equal(run(conf(extra), &o, &f), SELFCHECK_WARNING);
	assert_found(&f, SELFCHECK_WARNING, "c.conf:3: key 'root': '");
	assert_found(&f, SELFCHECK_WARNING, "is missing (No such file or directory): not an error");
}

/* An exported root: a warning on inotify. */
static void
test_nfs_export(void **state)
{
	struct selfcheck_opts o;
	struct findings f;
	char table[PATH_MAX + 64];

	(void)state;
	sysctls(100000, 128, 16384);
	static char exports[PATH_MAX + 64];

	snprintf(table, sizeof table, "%s\t*(rw)\n", tp("spool/a"));
	write_file("exports", table);
	memset(&o, 0, sizeof o);
	strcpy(exports, tp("exports"));
	o.nfs_table = exports;
	assert_int_equal(run(conf(""), &o, &f), SELFCHECK_WARNING);
	assert_found(&f, SELFCHECK_WARNING, "is exported by the kernel NFS server");
	assert_found(&f, SELFCHECK_WARNING, "use backend = fanotify there");
}

/* The journal: a real one is described; a file that is not one is an
 * error; free-space thresholds. */
static void
test_journal(void **state)
{
	struct selfcheck_opts o;
	struct findings f;
	struct journal *j = journal_new();

	(void)state;
	sysctls(100000, 128, 16384);
	assert_int_equal(journal_open(j, tp("state/journal.db"), JOURNAL_CREATE), 0);
	journal_free(j);
	memset(&o, 0, sizeof o);
	assert_int_equal(run(conf(""), &o, &f), SELFCHECK_OK);
	assert_found(&f, SELFCHECK_OK, "a journal of schema 1, id ");
	assert_found(&f, SELFCHECK_OK, "no daemon runs on it");
	/* the agent's view: no daemon is a warning */
	o.role = SELFCHECK_AGENT;
	assert_int_equal(run(conf(""), &o, &f), SELFCHECK_WARNING);
	assert_found(&f, SELFCHECK_WARNING, "no daemon runs on it: begin covers");
	/* free space */
	memset(&o, 0, sizeof o);
	o.free_warn = UINT64_MAX / 2;
	assert_int_equal(run(conf(""), &o, &f), SELFCHECK_WARNING);
	assert_found(&f, SELFCHECK_WARNING, "free on the file system of");
	o.free_error = UINT64_MAX / 4;
	assert_int_equal(run(conf(""), &o, &f), SELFCHECK_ERROR);
	assert_found(&f, SELFCHECK_ERROR, "the journal will soon not be written");
	/* not a journal */
	unlink(tp("state/journal.db-wal"));
	unlink(tp("state/journal.db-shm"));
	write_file("state/journal.db", "this is not an SQLite database, not at all, no\n");
	memset(&o, 0, sizeof o);
	assert_int_equal(run(conf(""), &o, &f), SELFCHECK_ERROR);
	assert_found(&f, SELFCHECK_ERROR, "the daemon cannot use it");
	unlink(tp("state/journal.db"));
}

/* A corrupt cursor: an error naming the consumer. */
static void
test_consumers(void **state)
{
	struct selfcheck_opts o;
	struct findings f;

	(void)state;
	sysctls(100000, 128, 16384);
	assert_int_equal(mkdir(tp("state/consumers"), 0700), 0);
	write_file("state/consumers/nightly", "has_committed=1\ncommitted_seq=12x\n");
	memset(&o, 0, sizeof o);
	assert_int_equal(run(conf(""), &o, &f), SELFCHECK_ERROR);
	assert_found(&f, SELFCHECK_ERROR, "consumer 'nightly'");
	assert_found(&f, SELFCHECK_OK, "0 consumers (0 with an open run)");
	unlink(tp("state/consumers/nightly"));
	assert_int_equal(run(conf(""), &o, &f), SELFCHECK_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_all_fine),
		cmocka_unit_test(test_watch_limit),
		cmocka_unit_test(test_instances_and_queue),
		cmocka_unit_test(test_missing_root),
		cmocka_unit_test(test_nfs_export),
		cmocka_unit_test(test_journal),
		cmocka_unit_test(test_consumers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
