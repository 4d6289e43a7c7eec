/* test-pending.c: cmocka unit tests for the daemon's coalescing set
 * (daemon/pending.h) written into a real journal: one row per path with the
 * union of its flags, rows in the journal whatever order they came in,
 * written in the paths' byte order (the flush's sort keys: paths alike for
 * more than the 32 bytes it keys on, a path that begins another, bytes past
 * 0x7f), and
 * the inodes of files with more than one link noted at the flush, both for a
 * small flush (probed in turn) and for a large one (probed on a second
 * thread while the changes are written); a path gone or with one link is
 * not noted. The same probe marks a plain file's row (JF_PLAIN), and the
 * changeset of `list` (changeset_build) takes the mark instead of an lstat()
 * of its own only inside the running daemon's window, never across a
 * rescan, and never once a later write of the row says otherwise, or its
 * directory has moved away. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "changeset.h"
#include "config.h"
#include "journal.h"
#include "pending.h"
#include "unit-tmp.h"

struct fix {
	char *dir;
	char file[PATH_MAX];
	struct journal *j;
	struct pending *p;
};

static int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->dir = unit_tmpdir_new("pending");
	unit_join(f->file, sizeof f->file, f->dir, "j.db");
	f->j = journal_new();
	assert_non_null(f->j);
	assert_int_equal(journal_open(f->j, f->file, JOURNAL_CREATE), 0);
	f->p = pending_new();
	assert_non_null(f->p);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;

	pending_free(f->p);
	journal_free(f->j);
	unit_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

struct seen {
	size_t n;
	unsigned flags_of_a;
	char last[PATH_MAX];
	int in_order;
};

static int
count_change(void *ctx, const char *path, int64_t seq, int64_t time, unsigned flags)
{
	struct seen *s = ctx;

	(void)seq;
	(void)time;
	if (strstr(path, "/a") != NULL && strcmp(strrchr(path, '/'), "/a") == 0)
		s->flags_of_a = flags;
	s->n++;
	snprintf(s->last, sizeof s->last, "%s", path);
	return 0;
}

static int
flush(struct fix *f)
{
	int rc = pending_flush(f->p, f->j, 0, 1000, 1000, NULL, NULL);

	if (rc < 0)
		fprintf(stderr, "%s\n", journal_errmsg(f->j));
	return rc;
}

/* the same path twice is one row with both flags; every path is written */
static void
test_coalesce_and_write(void **state)
{
	struct fix *f = *state;
	struct seen s = { 0 };
	char path[PATH_MAX];
	int i;

	snprintf(path, sizeof path, "%s/a", f->dir);
	assert_int_equal(pending_change(f->p, path, JF_CREATED), 0);
	assert_int_equal(pending_change(f->p, path, JF_MODIFIED), 0);
	for (i = 0; i < 5000; i++) {
		snprintf(path, sizeof path, "%s/d%d/f%d", f->dir, (i * 7919) % 97, i);
		assert_int_equal(pending_change(f->p, path, JF_MODIFIED), 0);
	}
	assert_int_equal(pending_count(f->p), 5001);
	assert_int_equal(flush(f), 0);
	assert_int_equal(pending_count(f->p), 0);
	assert_int_equal(journal_foreach_change(f->j, 0, NULL, count_change, &s), 0);
	assert_int_equal(s.n, 5001);
	assert_int_equal(s.flags_of_a, JF_CREATED | JF_MODIFIED);
}

struct by_seq {
	size_t n;
	char paths[64][PATH_MAX];
	int64_t seqs[64];
};

static int
note_row(void *ctx, const char *path, int64_t seq, int64_t time, unsigned flags)
{
	struct by_seq *r = ctx;

	(void)time;
	(void)flags;
	assert_true(r->n < 64);
	snprintf(r->paths[r->n], PATH_MAX, "%s", path);
	r->seqs[r->n++] = seq;
	return 0;
}

/* the rows' seqs go up in the paths' byte order (strcmp), whatever the
 * prefix they share and wherever they differ */
static void
test_written_in_path_order(void **state)
{
	static const char *const names[] = {
		"m", "m/a", "m/a/", "ma", "m0", "m/", "z", "\xc3\xa9t\xc3\xa9", "\x7f", "\x80",
		"abcdefghijklmnopqrstuvwxyz0123456789/x",     /* alike past 32 bytes */
		"abcdefghijklmnopqrstuvwxyz0123456789/w",
		"abcdefghijklmnopqrstuvwxyz0123456789",
		"abcdefghijklmnopqrstuvwxyz012345",           /* ends at the key's end */
		"abcdefghijklmnopqrstuvwxyz01234",
		"abcdefghijklmnopqrstuvwxyz012345/",
		"abcdefgh", "abcdefgi", "abcdefg", "Z", "a b", "a\tb",
	};
	struct fix *f = *state;
	static struct by_seq r;
	char path[PATH_MAX];
	size_t i, k;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/same-prefix/%s", f->dir, names[i]);
		assert_int_equal(pending_change(f->p, path, JF_MODIFIED), 0);
	}
	assert_int_equal(flush(f), 0);
	assert_int_equal(journal_foreach_change(f->j, 0, NULL, note_row, &r), 0);
	assert_int_equal(r.n, sizeof names / sizeof names[0]);
	for (i = 0; i < r.n; i++)
		for (k = 0; k < r.n; k++)
			if (r.seqs[i] < r.seqs[k])
				assert_true(strcmp(r.paths[i], r.paths[k]) < 0);
}

/* makes n files DIR/A/i with a second name DIR/B/i, and a file with one link
 * DIR/single; each A/i and single is changed in the pending set */
static void
make_linked(struct fix *f, int n)
{
	char a[PATH_MAX], b[PATH_MAX];
	int i;

	assert_int_equal(mkdir(unit_join_static(f->dir, "A"), 0700), 0);
	assert_int_equal(mkdir(unit_join_static(f->dir, "B"), 0700), 0);
	for (i = 0; i < n; i++) {
		FILE *fp;

		snprintf(a, sizeof a, "%s/A/%d", f->dir, i);
		snprintf(b, sizeof b, "%s/B/%d", f->dir, i);
		assert_non_null(fp = fopen(a, "w"));
		fclose(fp);
		assert_int_equal(link(a, b), 0);
		assert_int_equal(pending_change(f->p, a, i % 2 ? JF_MODIFIED : JF_CREATED), 0);
	}
	snprintf(a, sizeof a, "%s/single", f->dir);
	fclose(fopen(a, "w"));
	assert_int_equal(pending_change(f->p, a, JF_MODIFIED), 0);
	/* a path gone before the flush, and a directory: neither is noted */
	snprintf(a, sizeof a, "%s/gone", f->dir);
	assert_int_equal(pending_change(f->p, a, JF_MODIFIED), 0);
	assert_int_equal(pending_change(f->p, unit_join_static(f->dir, "B"), JF_ATTRIB | JF_DIR), 0);
}

static int
one_name(void *ctx, const char *path)
{
	snprintf(ctx, PATH_MAX, "%s", path);
	return 0;
}

/* each A/i is noted with its inode: the journal names it for that inode */
static void
check_linked(struct fix *f, int n)
{
	char a[PATH_MAX], got[PATH_MAX];
	int64_t count = -1;
	uint64_t dev, ino;
	struct stat st;
	int i;

	assert_int_equal(journal_links_count(f->j, &count), 0);
	assert_int_equal(count, n);
	for (i = 0; i < n; i++) {
		snprintf(a, sizeof a, "%s/A/%d", f->dir, i);
		assert_int_equal(stat(a, &st), 0);
		assert_int_equal(journal_links_ino_of(f->j, a, &dev, &ino), 1);
		assert_int_equal(ino, (uint64_t)st.st_ino);
		assert_int_equal(dev, (uint64_t)st.st_dev);
		got[0] = '\0';
		assert_int_equal(journal_links_names(f->j, ino, one_name, got), 0);
		assert_string_equal(got, a);
	}
}

struct flags_of {
	const char *path;
	unsigned flags;
	int64_t seq;
};

static int
find_flags(void *ctx, const char *path, int64_t seq, int64_t time, unsigned flags)
{
	struct flags_of *w = ctx;

	(void)time;
	if (strcmp(path, w->path) == 0) {
		w->flags = flags;
		w->seq = seq;
	}
	return 0;
}

/* the flags of path's row (0 when it has none) */
static unsigned
row_flags(struct fix *f, const char *path)
{
	struct flags_of w = { path, 0, 0 };

	assert_int_equal(journal_foreach_change(f->j, 0, NULL, find_flags, &w), 0);
	return w.flags;
}

/* the probe's verdict on each row: only a file with one link is plain */
static void
check_plain(struct fix *f, int n)
{
	char a[PATH_MAX];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(a, sizeof a, "%s/A/%d", f->dir, i);
		assert_int_equal(row_flags(f, a) & JF_PLAIN, 0);
	}
	snprintf(a, sizeof a, "%s/single", f->dir);
	assert_int_equal(row_flags(f, a) & JF_PLAIN, JF_PLAIN);
	snprintf(a, sizeof a, "%s/gone", f->dir);
	assert_int_equal(row_flags(f, a) & JF_PLAIN, 0);
	assert_int_equal(row_flags(f, unit_join_static(f->dir, "B")) & JF_PLAIN, 0);
}

static void
test_links_small_flush(void **state)
{
	struct fix *f = *state;

	make_linked(f, 10);
	assert_int_equal(flush(f), 0);
	check_linked(f, 10);
	check_plain(f, 10);
}

/* more than LINK_PROBE_THREAD_MIN candidates: probed on a second thread */
static void
test_links_large_flush(void **state)
{
	struct fix *f = *state;

	make_linked(f, 3000);
	assert_int_equal(flush(f), 0);
	check_linked(f, 3000);
	check_plain(f, 3000);
}

/* DIR/r/plain, a file with one link, under the root of listed() */
static void
make_plain(struct fix *f, char *plain)
{
	FILE *fp;

	assert_int_equal(mkdir(unit_join_static(f->dir, "r"), 0700), 0);
	snprintf(plain, PATH_MAX, "%s/r/plain", f->dir);
	assert_non_null(fp = fopen(plain, "w"));
	fclose(fp);
}

/* 1 when the changeset of every row (root DIR/r) holds path among the files
 * to back up */
static int
listed(struct fix *f, const char *path)
{
	struct config cfg;
	struct changeset cs;
	char *conf = NULL;
	size_t i;
	int found = 0;

	memset(&cfg, 0, sizeof cfg);
	assert_true(asprintf(&conf, "journal = %s\nroot = %s/r\n", f->file, f->dir) > 0);
	assert_int_equal(config_parse(&cfg, "test.conf", conf), 0);
	free(conf);
	assert_int_equal(changeset_build(&cs, f->j, &cfg, 0), 0);
	for (i = 0; i < cs.npaths; i++)
		found |= strcmp(cs.paths[i], path) == 0;
	changeset_free(&cs);
	config_free(&cfg);
	return found;
}

/* list takes a plain row as the file it was at the flush, without an lstat()
 * (a file gone since, with its deletion not flushed yet, is still listed:
 * it was there at the begin that followed the flush); not once the row is
 * written again by an event the probe does not vouch for, nor across a
 * rescan, nor from a daemon other than the running one */
static void
test_plain_taken_by_list(void **state)
{
	struct fix *f = *state;
	char plain[PATH_MAX];
	int64_t from, upto;

	make_plain(f, plain);
	assert_int_equal(pending_change(f->p, plain, JF_CREATED | JF_MODIFIED), 0);
	assert_int_equal(flush(f), 0);
	assert_int_equal(row_flags(f, plain), JF_CREATED | JF_MODIFIED | JF_PLAIN);
	assert_int_equal(journal_plain_window(f->j, &from, &upto), 0);
	assert_true(from >= 1 && from <= upto);
	assert_int_equal(unlink(plain), 0);
	assert_true(listed(f, plain));

	/* a rescan in the run: every row is stat()ed, the gone one is not listed */
	assert_int_equal(journal_batch_begin(f->j, 0), 0);
	assert_int_equal(journal_batch_rescan(f->j, unit_join_static(f->dir, "r"), 0, "test", 1000), 0);
	assert_int_equal(journal_batch_commit(f->j), 0);
	assert_false(listed(f, plain));
}

/* the bit is replaced, not merged, by the row's next write */
static void
test_plain_replaced(void **state)
{
	struct fix *f = *state;
	char plain[PATH_MAX];

	make_plain(f, plain);
	assert_int_equal(pending_change(f->p, plain, JF_MODIFIED), 0);
	assert_int_equal(flush(f), 0);
	assert_int_equal(row_flags(f, plain) & JF_PLAIN, JF_PLAIN);
	assert_int_equal(unlink(plain), 0);
	assert_int_equal(pending_change(f->p, plain, JF_DELETED), 0);
	assert_int_equal(flush(f), 0);
	assert_int_equal(row_flags(f, plain), JF_MODIFIED | JF_DELETED);
	assert_false(listed(f, plain));
}

/* A directory at name under r, with a file in it and a sibling file
 * "name.x", all marked plain; then the directory goes (renamed away
 * on disk) and its event says flags: the file's mark is cleared, the
 * sibling's kept. */
static void
check_cleared_below(struct fix *f, const char *name, unsigned flags)
{
	char dir[PATH_MAX], below[PATH_MAX], sibling[PATH_MAX], gone[PATH_MAX];
	FILE *fp;

	snprintf(dir, sizeof dir, "%s/r/%s", f->dir, name);
	snprintf(below, sizeof below, "%s/r/%s/f", f->dir, name);
	snprintf(sibling, sizeof sibling, "%s/r/%s.x", f->dir, name);
	snprintf(gone, sizeof gone, "%s/gone-%s", f->dir, name);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_non_null(fp = fopen(below, "w"));
	fclose(fp);
	assert_non_null(fp = fopen(sibling, "w"));
	fclose(fp);
	assert_int_equal(pending_change(f->p, below, JF_CREATED), 0);
	assert_int_equal(pending_change(f->p, sibling, JF_CREATED), 0);
	assert_int_equal(flush(f), 0);
	assert_int_equal(row_flags(f, below) & JF_PLAIN, JF_PLAIN);
	assert_int_equal(rename(dir, gone), 0);
	assert_int_equal(pending_change(f->p, dir, flags), 0);
	assert_int_equal(flush(f), 0);
	assert_int_equal(row_flags(f, below), JF_CREATED);
	assert_int_equal(row_flags(f, sibling) & JF_PLAIN, JF_PLAIN);
	assert_false(listed(f, below));
	assert_true(listed(f, sibling));
}

/* The names below a directory moved away, deleted, or replaced by a mount
 * go without an event each: their marks are cleared. Only a directory's
 * event does it (a file's deletion has no rows below: a seek each cost a
 * drain of deletions a sixth to a quarter of its speed). */
static void
test_plain_cleared_below_moved_dir(void **state)
{
	struct fix *f = *state;
	char plain[PATH_MAX];

	make_plain(f, plain);
	check_cleared_below(f, "moved", JF_DELETED | JF_MOVED_OUT | JF_DIR);
	check_cleared_below(f, "deleted", JF_DELETED | JF_DIR);
	check_cleared_below(f, "mounted", JF_REPLACED);
	check_cleared_below(f, "renamed-over", JF_RENAMED | JF_SUBTREE | JF_DIR);
}

/* a new daemon (a new pending set) starts a new window: a bit an earlier
 * one left is not taken */
static void
test_plain_window_per_daemon(void **state)
{
	struct fix *f = *state;
	char plain[PATH_MAX], other[PATH_MAX];
	struct pending *next;

	make_plain(f, plain);
	snprintf(other, sizeof other, "%s/r/other", f->dir);
	assert_int_equal(pending_change(f->p, plain, JF_MODIFIED), 0);
	assert_int_equal(flush(f), 0);
	assert_int_equal(unlink(plain), 0);
	assert_true(listed(f, plain));
	assert_non_null(next = pending_new());
	assert_int_equal(pending_change(next, other, JF_MODIFIED), 0);
	assert_int_equal(pending_flush(next, f->j, 0, 1000, 1000, NULL, NULL), 0);
	pending_free(next);
	assert_false(listed(f, plain));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_coalesce_and_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_written_in_path_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_links_small_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_links_large_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_taken_by_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_window_per_daemon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_cleared_below_moved_dir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
