/* test-pending.c: cmocka unit tests for the daemon's coalescing set
 * (daemon/pending.h) written into a real journal: one row per path with the
 * union of its flags, rows in the journal whatever order they came in,
 * written in the paths' byte order (the flush's sort keys: paths alike for
 * more than the 32 bytes it keys on, a path that begins another, bytes past
 * 0x7f), and
 * the inodes of files with more than one link noted at the flush, both for a
 * small flush (probed in turn) and for a large one (probed on a second
 * thread while the changes are written); a path gone or with one link is
 * not noted. */
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

static void
test_links_small_flush(void **state)
{
	struct fix *f = *state;

	make_linked(f, 10);
	assert_int_equal(flush(f), 0);
	check_linked(f, 10);
}

/* more than LINK_PROBE_THREAD_MIN candidates: probed on a second thread */
static void
test_links_large_flush(void **state)
{
	struct fix *f = *state;

	make_linked(f, 3000);
	assert_int_equal(flush(f), 0);
	check_linked(f, 3000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_coalesce_and_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_written_in_path_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_links_small_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_links_large_flush, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
