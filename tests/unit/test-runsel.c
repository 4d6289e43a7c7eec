/* test-runsel.c: cmocka unit tests for the run selector
 * (common/archive/runsel.h): every form --at takes, read against timegm()
 * and picked among a list of runs (two in one second, a day with none);
 * every kind of bad input refused with its one line; the UTC days retention
 * shares. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "archive/runsel.h"

static int64_t
utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm;

	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	return (int64_t)timegm(&tm);
}

/* Five runs: two on 2024-01-01 (the second in the same second as the first,
 * so named .1), one on 2024-01-02, none on 2024-01-03, one on 2024-01-04
 * and the newest on 2024-01-05; ids 1 to 5. */
static struct arch_run runs[5];

static int
setup(void **state)
{
	static const struct { const char *name; int d, h, mi, s; } r[5] = {
		{ "20240101T100000Z", 1, 10, 0, 0 },
		{ "20240101T100000Z.1", 1, 10, 0, 0 },
		{ "20240102T235959Z", 2, 23, 59, 59 },
		{ "20240104T000000Z", 4, 0, 0, 0 },
		{ "20240105T120000Z", 5, 12, 0, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < 5; i++) {
		memset(&runs[i], 0, sizeof runs[i]);
		runs[i].id = (int64_t)i + 1;
		snprintf(runs[i].name, sizeof runs[i].name, "%s", r[i].name);
		runs[i].time = utc(2024, 1, r[i].d, r[i].h, r[i].mi, r[i].s);
	}
	return 0;
}

/* The id of the run at picks, 0 when it picks none (e then says why). */
static int64_t
pick(const char *at, struct chj_error *e)
{
	struct runsel s;
	size_t i = 99;

	assert_int_equal(runsel_parse(&s, at, e), 0);
	if (runsel_pick(&s, runs, 5, "u.tar.gz", &i, e) < 0) {
		assert_int_equal(e->code, CHJ_ERR_NOTFOUND);
		assert_null(strchr(e->msg, '\n'));
		return 0;
	}
	assert_true(i < 5);
	return runs[i].id;
}

static void
test_forms(void **state)
{
	struct runsel s;
	struct chj_error e;

	(void)state;
	assert_int_equal(runsel_parse(&s, NULL, &e), 0);
	assert_int_equal(s.kind, RUNSEL_NEWEST);
	assert_int_equal(runsel_parse(&s, "3", &e), 0);
	assert_int_equal(s.kind, RUNSEL_NUMBER);
	assert_int_equal(s.number, 3);
	assert_int_equal(runsel_parse(&s, "007", &e), 0);
	assert_int_equal(s.number, 7);
	assert_int_equal(runsel_parse(&s, "9223372036854775807", &e), 0);
	assert_int_equal(s.number, INT64_MAX);
	assert_int_equal(runsel_parse(&s, "20240102T235959Z", &e), 0);
	assert_int_equal(s.kind, RUNSEL_NAME);
	assert_int_equal(s.time, utc(2024, 1, 2, 23, 59, 59));
	assert_string_equal(s.text, "20240102T235959Z");
	assert_int_equal(runsel_parse(&s, "20240101T100000Z.1", &e), 0);
	assert_int_equal(s.kind, RUNSEL_NAME);
	assert_int_equal(s.time, utc(2024, 1, 1, 10, 0, 0));
	assert_int_equal(runsel_parse(&s, "2024-02-29T13:14:15Z", &e), 0);
	assert_int_equal(s.kind, RUNSEL_TIME);
	assert_int_equal(s.time, utc(2024, 2, 29, 13, 14, 15));
	/* the variants restore always took: no Z, a space for the T */
	assert_int_equal(runsel_parse(&s, "2024-02-29T13:14:15", &e), 0);
	assert_int_equal(s.time, utc(2024, 2, 29, 13, 14, 15));
	assert_int_equal(runsel_parse(&s, "2024-02-29 13:14:15", &e), 0);
	assert_int_equal(s.time, utc(2024, 2, 29, 13, 14, 15));
	assert_int_equal(runsel_parse(&s, "2024-02-29 13:14:15Z", &e), 0);
	assert_int_equal(s.time, utc(2024, 2, 29, 13, 14, 15));
	/* a day: its last second */
	assert_int_equal(runsel_parse(&s, "2024-12-31", &e), 0);
	assert_int_equal(s.kind, RUNSEL_TIME);
	assert_int_equal(s.time, utc(2024, 12, 31, 23, 59, 59));
	assert_int_equal(runsel_parse(&s, "1970-01-01", &e), 0);
	assert_int_equal(s.time, 86399);
	assert_int_equal(runsel_parse(&s, "2000-02-29", &e), 0);
	assert_int_equal(s.time, utc(2000, 2, 29, 23, 59, 59));
	assert_int_equal(runsel_parse(&s, "@1704103200", &e), 0);
	assert_int_equal(s.kind, RUNSEL_TIME);
	assert_int_equal(s.time, 1704103200);
	assert_int_equal(runsel_parse(&s, "@0", &e), 0);
	assert_int_equal(s.time, 0);
}

/* Each bad input: refused, CHJ_ERR_INVALID, exactly one line. */
static void
test_bad(void **state)
{
	static const struct { const char *at, *msg; } cases[] = {
		{ "", "bad --at '': expected a run number, a run name (YYYYmmddTHHMMSSZ), a UTC time "
		    "(YYYY-mm-ddTHH:MM:SSZ), a day (YYYY-mm-dd) or @UNIXTIME" },
		{ "bogus", "bad --at 'bogus': expected a run number, a run name (YYYYmmddTHHMMSSZ), a UTC "
		    "time (YYYY-mm-ddTHH:MM:SSZ), a day (YYYY-mm-dd) or @UNIXTIME" },
		{ "-1", "bad --at '-1': expected a run number, a run name (YYYYmmddTHHMMSSZ), a UTC time "
		    "(YYYY-mm-ddTHH:MM:SSZ), a day (YYYY-mm-dd) or @UNIXTIME" },
		{ "1.5", "bad --at '1.5': expected a run number, a run name (YYYYmmddTHHMMSSZ), a UTC "
		    "time (YYYY-mm-ddTHH:MM:SSZ), a day (YYYY-mm-dd) or @UNIXTIME" },
		{ "0", "bad --at '0': runs are numbered from 1" },
		{ "99999999999999999999", "bad --at '99999999999999999999': no run has so large a number" },
		{ "@", "bad --at '@': expected @ and the seconds since 1970-01-01 (UTC)" },
		{ "@abc", "bad --at '@abc': expected @ and the seconds since 1970-01-01 (UTC)" },
		{ "@-5", "bad --at '@-5': expected @ and the seconds since 1970-01-01 (UTC)" },
		{ "@1e9", "bad --at '@1e9': expected @ and the seconds since 1970-01-01 (UTC)" },
		{ "@99999999999999999999", "bad --at '@99999999999999999999': too far in the future" },
		{ "2026-13-01", "bad --at '2026-13-01': no such date" },
		{ "2026-00-10", "bad --at '2026-00-10': no such date" },
		{ "2026-02-29", "bad --at '2026-02-29': no such date" },
		{ "2100-02-29", "bad --at '2100-02-29': no such date" },
		{ "2026-04-31", "bad --at '2026-04-31': no such date" },
		{ "2026-01-00", "bad --at '2026-01-00': no such date" },
		{ "2026-01-01T24:00:00Z", "bad --at '2026-01-01T24:00:00Z': no such time of day" },
		{ "2026-01-01T23:60:00Z", "bad --at '2026-01-01T23:60:00Z': no such time of day" },
		{ "2026-01-01T23:59:60Z", "bad --at '2026-01-01T23:59:60Z': no such time of day" },
		{ "20261301T000000Z", "bad --at '20261301T000000Z': no such date" },
		{ "20260101T250000Z.1", "bad --at '20260101T250000Z.1': no such time of day" },
		{ "2026-1-2", "bad --at '2026-1-2': expected a run number, a run name (YYYYmmddTHHMMSSZ), "
		    "a UTC time (YYYY-mm-ddTHH:MM:SSZ), a day (YYYY-mm-dd) or @UNIXTIME" },
		{ " 2026-01-02", "bad --at ' 2026-01-02': expected a run number, a run name "
		    "(YYYYmmddTHHMMSSZ), a UTC time (YYYY-mm-ddTHH:MM:SSZ), a day (YYYY-mm-dd) or @UNIXTIME" },
		{ "2026-01-02T10:00Z", "bad --at '2026-01-02T10:00Z': expected a run number, a run name "
		    "(YYYYmmddTHHMMSSZ), a UTC time (YYYY-mm-ddTHH:MM:SSZ), a day (YYYY-mm-dd) or @UNIXTIME" },
		{ "20260101T000000Z.", "bad --at '20260101T000000Z.': expected a run number, a run name "
		    "(YYYYmmddTHHMMSSZ), a UTC time (YYYY-mm-ddTHH:MM:SSZ), a day (YYYY-mm-dd) or @UNIXTIME" },
		{ "20260101T000000Z.x", "bad --at '20260101T000000Z.x': expected a run number, a run name "
		    "(YYYYmmddTHHMMSSZ), a UTC time (YYYY-mm-ddTHH:MM:SSZ), a day (YYYY-mm-dd) or @UNIXTIME" },
		{ "a\tb\001", "bad --at 'a\\tb\\x01': expected a run number, a run name "
		    "(YYYYmmddTHHMMSSZ), a UTC time (YYYY-mm-ddTHH:MM:SSZ), a day (YYYY-mm-dd) or @UNIXTIME" },
		{ "20260101T000000", "bad --at '20260101T000000': expected a run number, a run name "
		    "(YYYYmmddTHHMMSSZ), a UTC time (YYYY-mm-ddTHH:MM:SSZ), a day (YYYY-mm-dd) or @UNIXTIME" },
		{ "2026-01-02\n", "bad --at '2026-01-02\\n': expected a run number, a run name "
		    "(YYYYmmddTHHMMSSZ), a UTC time (YYYY-mm-ddTHH:MM:SSZ), a day (YYYY-mm-dd) or @UNIXTIME" },
	};
	struct runsel s;
	struct chj_error e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		chj_error_clear(&e);
		assert_int_equal(runsel_parse(&s, cases[i].at, &e), -1);
		assert_int_equal(e.code, CHJ_ERR_INVALID);
		assert_string_equal(e.msg, cases[i].msg);
	}
	/* longer than any selector: refused, the message still one line */
	{
		char lng[400];

		memset(lng, '1', sizeof lng - 1);
		lng[sizeof lng - 1] = '\0';
		lng[3] = 'x';
		assert_int_equal(runsel_parse(&s, lng, &e), -1);
		assert_int_equal(e.code, CHJ_ERR_INVALID);
		assert_non_null(strstr(e.msg, "...': expected a run number"));
		assert_true(strlen(e.msg) < 500);
	}
}

static void
test_pick(void **state)
{
	struct chj_error e;
	struct runsel s;
	size_t i;

	(void)state;
	assert_int_equal(pick(NULL, &e), 5);
	/* numbers */
	assert_int_equal(pick("1", &e), 1);
	assert_int_equal(pick("5", &e), 5);
	assert_int_equal(pick("6", &e), 0);
	assert_string_equal(e.msg, "archive 'u.tar.gz' has no run 6 (its runs are numbered 1 to 5)");
	/* names, also two in one second */
	assert_int_equal(pick("20240101T100000Z", &e), 1);
	assert_int_equal(pick("20240101T100000Z.1", &e), 2);
	assert_int_equal(pick("20240104T000000Z", &e), 4);
	/* a name it lacks: that time; with a suffix: none */
	assert_int_equal(pick("20240103T120000Z", &e), 3);
	assert_int_equal(pick("20240101T100000Z.2", &e), 0);
	assert_string_equal(e.msg, "archive 'u.tar.gz' has no run named '20240101T100000Z.2'");
	assert_int_equal(pick("20231231T000000Z", &e), 0);
	assert_string_equal(e.msg, "archive 'u.tar.gz' has no run at or before '20231231T000000Z' "
	    "(the first is 20240101T100000Z)");
	/* times: the last at or before */
	assert_int_equal(pick("2024-01-01T10:00:00Z", &e), 2);
	assert_int_equal(pick("2024-01-01T09:59:59Z", &e), 0);
	assert_string_equal(e.msg, "archive 'u.tar.gz' has no run at or before '2024-01-01T09:59:59Z' "
	    "(the first is 20240101T100000Z)");
	assert_int_equal(pick("2024-01-02T23:59:58Z", &e), 2);
	assert_int_equal(pick("2024-01-02T23:59:59Z", &e), 3);
	assert_int_equal(pick("2030-01-01T00:00:00Z", &e), 5);
	/* days: the day's last run, or the last before it */
	assert_int_equal(pick("2024-01-01", &e), 2);
	assert_int_equal(pick("2024-01-02", &e), 3);
	assert_int_equal(pick("2024-01-03", &e), 3);
	assert_int_equal(pick("2024-01-04", &e), 4);
	assert_int_equal(pick("2023-12-31", &e), 0);
	assert_string_equal(e.msg, "archive 'u.tar.gz' has no run at or before '2023-12-31' "
	    "(the first is 20240101T100000Z)");
	/* unix times */
	assert_int_equal(pick("@1704103200", &e), 2);
	assert_int_equal(pick("@1704103199", &e), 0);
	assert_int_equal(pick("@1999999999", &e), 5);
	/* no run at all, and no archive name */
	assert_int_equal(runsel_parse(&s, "1", &e), 0);
	assert_int_equal(runsel_pick(&s, runs, 0, "empty.tar.gz", &i, &e), -1);
	assert_int_equal(e.code, CHJ_ERR_NOTFOUND);
	assert_string_equal(e.msg, "archive 'empty.tar.gz' holds no complete run");
	assert_int_equal(runsel_parse(&s, NULL, &e), 0);
	assert_int_equal(runsel_pick(&s, runs, 0, NULL, &i, &e), -1);
	assert_string_equal(e.msg, "the archive holds no complete run");
}

static void
test_days(void **state)
{
	(void)state;
	assert_int_equal(runsel_day(0), 0);
	assert_int_equal(runsel_day(86399), 0);
	assert_int_equal(runsel_day(86400), 1);
	assert_int_equal(runsel_day(-1), -1);
	assert_int_equal(runsel_day(-86400), -1);
	assert_int_equal(runsel_day(-86401), -2);
	assert_int_equal(runsel_day(utc(2024, 1, 2, 0, 0, 0)), utc(2024, 1, 2, 0, 0, 0) / 86400);
	assert_false(runsel_last_of_day(runs, 5, 0));     /* .1 follows in that second */
	assert_true(runsel_last_of_day(runs, 5, 1));
	assert_true(runsel_last_of_day(runs, 5, 2));
	assert_true(runsel_last_of_day(runs, 5, 3));
	assert_true(runsel_last_of_day(runs, 5, 4));      /* the newest */
	assert_true(runsel_last_of_day(runs, 1, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_bad),
		cmocka_unit_test_setup(test_pick, setup),
		cmocka_unit_test_setup(test_days, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
