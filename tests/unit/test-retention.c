/* test-retention.c: cmocka unit tests for compaction's choices
 * (common/cyrus/retention.h): which runs stay (the last of each UTC day
 * within keep-days, always the newest, the horizon's edge, days with
 * several runs and with none), the threshold's weekly rise, and one
 * compaction of a small synthetic archive: what the dropped runs alone
 * needed goes, what the kept run needs stays, the stamp is written. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive-int.h"    /* arch_run_commit_as: runs at given times */
#include "archive/manifest.h"
#include "cyrus-fixture.h"
#include "cyrus/retention.h"
#include "unit-tmp.h"

#define DAY 86400LL
#define T0 1704067200           /* 2024-01-01T00:00:00Z */

static size_t
retained(const struct arch_run *runs, size_t n, unsigned days, int64_t now, int64_t *keep)
{
	struct prune_rules r = { days, 0, 0, 0, 0, 0 };
	prune_reason why[16];

	assert_true(n <= 16);
	memset(keep, 0, n * sizeof *keep);
	return cyrus_retained_runs(runs, n, &r, now, keep, why);
}

/* cyrus_compact with the default retention (30 days); res keeps its
 * figures, the lists it holds are freed */
static int
compact(const char *path, int flags, int64_t now, struct cyrus_compact_result *res,
    struct chj_error *e)
{
	static const struct prune_rules r = { CYRUS_RETAIN_DAYS, 0, 0, 0, 0, 0 };
	int rc = cyrus_compact(path, &r, flags, now, res, e);

	cyrus_compact_result_free(res);
	return rc;
}

/* The rules as borg prune applies them, on 2024-01-01 (a Monday) onwards:
 * hourly runs through two days, then one run a week for five weeks, one a
 * month for three months. */
static void
test_keep_rules(void **state)
{
	struct arch_run runs[64];
	prune_reason why[64];
	int64_t keep[64], t;
	struct prune_rules r;
	size_t n = 0, nk, i;
	int h;

	(void)state;
	memset(runs, 0, sizeof runs);
	for (i = 0; i < 3; i++)                       /* months 1 to 3, the 15th */
		runs[n++].time = T0 - (int64_t)(3 - i) * 31 * DAY + 14 * DAY;
	for (i = 0; i < 5; i++)                       /* weeks 1 to 5, Wednesdays */
		runs[n++].time = T0 + (int64_t)i * 7 * DAY + 2 * DAY;
	t = T0 + 40 * DAY;                            /* 2024-02-10, hourly for 2 days */
	for (h = 0; h < 48; h++)
		runs[n++].time = t + h * 3600;
	for (i = 0; i < n; i++)
		runs[i].id = (int64_t)i + 1;

	/* --keep-last 3: the three newest, no more */
	memset(&r, 0, sizeof r);
	r.last = 3;
	nk = cyrus_retained_runs(runs, n, &r, 0, keep, why);
	assert_int_equal(nk, 3);
	assert_int_equal(keep[0], (int64_t)n - 2);
	assert_string_equal(why[n - 1], "last");
	assert_null(why[n - 4]);
	/* --keep-daily 2: the newest of 2024-02-11 and of 02-10 */
	memset(&r, 0, sizeof r);
	r.daily = 2;
	nk = cyrus_retained_runs(runs, n, &r, 0, keep, why);
	assert_int_equal(nk, 2);
	assert_string_equal(why[n - 1], "daily");
	assert_string_equal(why[8 + 23], "daily");   /* 02-10 23:00 */
	/* --keep-hourly 5 --keep-weekly 3 --keep-monthly 12: the five newest
	 * hours; ISO week 6 (02-10, 02-11) already holds a kept run, so weeks
	 * 5, 4 and 3; months 2024-02 and 2024-01 already hold kept runs, so
	 * December, November, October; fewer than 12, and the oldest run is
	 * kept already */
	memset(&r, 0, sizeof r);
	r.hourly = 5;
	r.weekly = 3;
	r.monthly = 12;
	nk = cyrus_retained_runs(runs, n, &r, 0, keep, why);
	for (i = n - 5; i < n; i++)
		assert_string_equal(why[i], "hourly");
	assert_null(why[n - 6]);
	assert_string_equal(why[7], "weekly");
	assert_string_equal(why[6], "weekly");
	assert_string_equal(why[5], "weekly");
	assert_null(why[4]);
	assert_null(why[3]);
	assert_string_equal(why[2], "monthly");
	assert_string_equal(why[1], "monthly");
	assert_string_equal(why[0], "monthly");
	assert_int_equal(nk, 5 + 3 + 3);
	/* --keep-monthly 5 alone: February, January, and the three before; a
	 * sixth month wanted: none, and the oldest is kept already */
	memset(&r, 0, sizeof r);
	r.monthly = 6;
	nk = cyrus_retained_runs(runs, n, &r, 0, keep, why);
	assert_int_equal(nk, 5);
	assert_string_equal(why[7], "monthly");      /* January's newest: 01-31 */
	assert_string_equal(why[0], "monthly");
	/* --keep-weekly 1 on runs of one week: the newest, and the oldest too,
	 * as borg keeps the oldest when the rule found fewer periods */
	memset(&r, 0, sizeof r);
	r.weekly = 2;
	nk = cyrus_retained_runs(runs + 8, 48, &r, 0, keep, why);
	assert_int_equal(nk, 2);
	assert_string_equal(why[47], "weekly");
	assert_string_equal(why[0], "weekly (oldest)");
}

static void
test_retained_runs(void **state)
{
	/* day 0: three runs; day 1: one; days 2 to 9: none; day 10: two;
	 * day 40: one, the newest */
	static const int64_t at[] = {
		T0 + 100, T0 + 200, T0 + DAY - 1, T0 + DAY + 5, T0 + 10 * DAY, T0 + 10 * DAY + 60,
		T0 + 40 * DAY + 7,
	};
	struct arch_run runs[7];
	int64_t keep[7], now = T0 + 40 * DAY + 3600;
	size_t i, nk;

	(void)state;
	memset(runs, 0, sizeof runs);
	for (i = 0; i < 7; i++) {
		runs[i].id = (int64_t)i + 1;
		runs[i].time = at[i];
	}
	/* 30 days: the horizon is day 10 plus an hour: day 10's last run is
	 * before it, so only the newest stays */
	nk = retained(runs, 7, 30, now, keep);
	assert_int_equal(nk, 1);
	assert_int_equal(keep[0], 7);
	/* 31 days: day 10's last (not its first) comes in */
	nk = retained(runs, 7, 31, now, keep);
	assert_int_equal(nk, 2);
	assert_int_equal(keep[0], 6);
	assert_int_equal(keep[1], 7);
	/* 41 days: the last of day 0 (one second before midnight), of day 1,
	 * of day 10, and the newest; ids ascending */
	nk = retained(runs, 7, 41, now, keep);
	assert_int_equal(nk, 4);
	assert_int_equal(keep[0], 3);
	assert_int_equal(keep[1], 4);
	assert_int_equal(keep[2], 6);
	assert_int_equal(keep[3], 7);
	/* a run exactly at the horizon stays */
	nk = retained(runs, 7, 30, T0 + 10 * DAY + 60 + 30 * DAY, keep);
	assert_int_equal(nk, 2);
	assert_int_equal(keep[0], 6);
	nk = retained(runs, 7, 30, T0 + 10 * DAY + 61 + 30 * DAY, keep);
	assert_int_equal(nk, 1);
	/* however old, the newest run stays; one run, no run */
	nk = retained(runs, 7, 1, T0 + 1000 * DAY, keep);
	assert_int_equal(nk, 1);
	assert_int_equal(keep[0], 7);
	nk = retained(runs, 1, 30, now, keep);
	assert_int_equal(nk, 1);
	assert_int_equal(keep[0], 1);
	assert_int_equal(retained(runs, 0, 30, now, keep), 0);
}

static void
test_threshold(void **state)
{
	(void)state;
	assert_int_equal(cyrus_compact_threshold(T0, T0), 80);
	assert_int_equal(cyrus_compact_threshold(T0, T0 + 7 * DAY - 1), 80);
	assert_int_equal(cyrus_compact_threshold(T0, T0 + 7 * DAY), 81);
	assert_int_equal(cyrus_compact_threshold(T0, T0 + 19 * 7 * DAY), 99);
	assert_int_equal(cyrus_compact_threshold(T0, T0 + 20 * 7 * DAY), 100);
	assert_int_equal(cyrus_compact_threshold(T0, T0 + 5000 * 7 * DAY), 100);
	assert_int_equal(cyrus_compact_threshold(T0 + DAY, T0), 80);   /* a clock set back */
}

/* ---- one compaction ---- */

static char dir[4096], apath[4200];

/* One run at time t: INBOX's index holds the messages texts[0..n), each
 * stored. */
static void
add_run(struct arch *a, int64_t t, const char *const *texts, size_t n)
{
	struct fx_msg msgs[4];
	struct manifest m;
	unsigned char *x;
	char name[64], hex[41], *buf, *h = fx_header("user.bob", "bob-inbox");
	size_t i, len;

	assert_int_equal(arch_run_begin(a), 0);
	for (i = 0; i < n; i++) {
		msgs[i].uid = (uint32_t)i + 1;
		msgs[i].text = texts[i];
		msgs[i].system_flags = 0;
		fx_sha1_hex(texts[i], hex);
		snprintf(name, sizeof name, "files/%s", hex);
		if (arch_has(a, name) == 0)
			assert_int_equal(arch_run_add_buf(a, name, texts[i], strlen(texts[i]), 0, 0600), 0);
	}
	x = fx_index(msgs, n, &len);
	assert_int_equal(arch_run_add_buf(a, "folders/bob-inbox/cyrus.index", x, len, 0, 0600), 0);
	assert_int_equal(arch_run_add_buf(a, "folders/bob-inbox/cyrus.header", h, strlen(h), 0, 0600), 0);
	assert_int_equal(arch_run_add_symlink(a, "imap/user.bob", "../folders/bob-inbox", 0), 0);
	free(x);
	free(h);
	manifest_init(&m);
	m.user = strdup("bob");
	assert_int_equal(manifest_add_folder(&m, "bob-inbox", "default", "uuid/b/o/bob-inbox",
	    "user.bob"), 0);
	assert_int_equal(manifest_format(&m, &buf, &len), 0);
	snprintf(name, sizeof name, "run-%lld", (long long)t);
	assert_int_equal(arch_run_commit_as(a, buf, len, name, t, NULL, 0), 0);
	free(buf);
	manifest_free(&m);
}

static int
has_message(const char *text)
{
	struct chj_error err;
	char name[64], hex[41];
	struct arch *a;
	int r;

	fx_sha1_hex(text, hex);
	snprintf(name, sizeof name, "files/%s", hex);
	assert_int_equal(arch_open(&a, apath, ARCH_READ, &err), 0);
	r = arch_has(a, name);
	arch_close(a);
	return r;
}

static void
test_compact(void **state)
{
	static const char *const r1[] = { "From: a\r\n\r\n1\r\n", "From: a\r\n\r\n2\r\n" };
	static const char *const r2[] = { "From: a\r\n\r\n2\r\n", "From: a\r\n\r\n3\r\n" };
	static const char *const r3[] = { "From: a\r\n\r\n3\r\n", "From: a\r\n\r\n4\r\n" };
	struct cyrus_compact_result res;
	struct chj_error e;
	struct chj_error err;
	char stamp[4300], *s;
	struct arch *a;
	int64_t now = T0 + 3600;

	(void)state;
	assert_non_null(unit_tmpdir(dir, sizeof dir, "retention"));
	snprintf(apath, sizeof apath, "%s/bob.tar.gz", dir);
	/* an empty archive: nothing to do */
	fx_write(apath, "", 0);
	assert_int_equal(compact(apath, CYRUS_COMPACT_FORCE, now, &res, &e), 0);
	assert_int_equal(res.outcome, CYRUS_COMPACT_EMPTY);
	/* three runs of one day: only the last is retained */
	assert_int_equal(arch_open(&a, apath, ARCH_APPEND, &err), 0);
	add_run(a, T0 + 100, r1, 2);
	add_run(a, T0 + 200, r2, 2);
	add_run(a, T0 + 300, r3, 2);
	assert_int_equal(arch_close(a), 0);
	/* never compacted, first run an hour ago: threshold 80; the live
	 * share is low, so it is due even unforced */
	assert_int_equal(compact(apath, 0, now, &res, &e), 0);
	assert_int_equal(res.outcome, CYRUS_COMPACT_DONE);
	assert_int_equal(res.runs, 3);
	assert_int_equal(res.kept, 1);
	assert_int_equal(res.threshold, 80);
	assert_true(res.share < 80);
	assert_true(res.live_bytes < res.total_bytes);
	assert_false(res.stamp_failed);
	assert_int_equal(has_message(r1[0]), 0);
	assert_int_equal(has_message(r1[1]), 0);
	assert_int_equal(has_message(r3[0]), 1);   /* stored by run 2, needed by run 3 */
	assert_int_equal(has_message(r3[1]), 1);
	snprintf(stamp, sizeof stamp, "%s.compacted", apath);
	s = fx_read(stamp, NULL);
	assert_non_null(s);
	assert_int_equal(strtoll(s, NULL, 10), now);
	free(s);
	/* again: all is live now (but the manifest, which counts in the
	 * bytes and not in the live share), not due unless forced */
	assert_int_equal(compact(apath, 0, now, &res, &e), 0);
	assert_int_equal(res.outcome, CYRUS_COMPACT_NOT_DUE);
	assert_true(res.share >= res.threshold);
	assert_int_equal(res.runs, 1);
	assert_int_equal(compact(apath, CYRUS_COMPACT_FORCE, now, &res, &e), 0);
	assert_int_equal(res.outcome, CYRUS_COMPACT_DONE);
	/* an archive that is not there */
	snprintf(stamp, sizeof stamp, "%s/none.tar.gz", dir);
	assert_int_equal(compact(stamp, CYRUS_COMPACT_FORCE, now, &res, &e), -1);
	assert_int_equal(e.code, CHJ_ERR_SYS);
	assert_int_equal(e.errnum, ENOENT);
	assert_non_null(strstr(e.msg, "cannot open archive"));
	unit_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retained_runs),
		cmocka_unit_test(test_keep_rules),
		cmocka_unit_test(test_threshold),
		cmocka_unit_test(test_compact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
