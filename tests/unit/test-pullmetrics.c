/* test-pullmetrics.c: cmocka unit tests for a backup host's per-host pull
 * metrics (common/pullmetrics.h): written and read back equal, the time of
 * the last success kept across a failed pull, several hosts formatted with
 * each metric family once, the listing sorted by host, and a damaged or
 * foreign file refused naming it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "promtext.h"
#include "pullmetrics.h"
#include "unit-tmp.h"

static int
tmpdir_setup(void **state)
{
	*state = unit_tmpdir_new("pullmetrics");
	return 0;
}

static struct pull_metrics
sample(const char *host, int ok, double t)
{
	struct pull_metrics m;

	memset(&m, 0, sizeof m);
	snprintf(m.host, sizeof m.host, "%s", host);
	m.last_run = t;
	m.last_success = t;
	m.success = ok;
	m.duration = 1.5;
	m.received_bytes = 123456789012ULL;
	m.runs_written = 33;
	m.users_failed = ok ? 0 : 2;
	return m;
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	unit_join(path, sizeof path, dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

static void
test_round_trip_and_failures(void **state)
{
	const char *dir = *state;
	struct pull_metrics m = sample("imap1", 1, 1000.25), got, *v;
	struct chj_error e;
	char path[256];
	size_t n;

	assert_int_equal(pull_metrics_write(dir, &m, &e), 0);
	snprintf(path, sizeof path, "%s/imap1.prom", dir);
	assert_int_equal(pull_metrics_read(path, &got, &e), 0);
	assert_string_equal(got.host, "imap1");
	assert_true(got.success);
	assert_true(got.last_run == 1000.25 && got.last_success == 1000.25 && got.duration == 1.5);
	assert_true(got.received_bytes == 123456789012ULL);
	assert_int_equal(got.runs_written, 33);
	/* a failed pull keeps the time of the last success */
	m = sample("imap1", 0, 2000);
	assert_int_equal(pull_metrics_write(dir, &m, &e), 0);
	assert_true(m.last_success == 1000.25);
	assert_int_equal(pull_metrics_read(path, &got, &e), 0);
	assert_false(got.success);
	assert_true(got.last_run == 2000 && got.last_success == 1000.25);
	assert_int_equal(got.users_failed, 2);
	/* a host never pulled with success: 0 */
	m = sample("imap0", 0, 3000);
	assert_int_equal(pull_metrics_write(dir, &m, &e), 0);
	assert_true(m.last_success == 0);
	/* listed sorted by host */
	assert_int_equal(pull_metrics_list(dir, &v, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].host, "imap0");
	assert_string_equal(v[1].host, "imap1");
	free(v);
}

static void
test_format_groups_families(void **state)
{
	struct pull_metrics v[2] = { sample("a", 1, 10), sample("b\"q", 0, 20) };
	char *text = pull_metrics_format(v, 2), *p;
	int helps = 0;

	(void)state;
	assert_non_null(text);
	for (p = text; (p = strstr(p, "# HELP chjournal_pull_success ")) != NULL; p++)
		helps++;
	assert_int_equal(helps, 1);
	assert_non_null(strstr(text, "chjournal_pull_success{host=\"a\"} 1\n"
	    "chjournal_pull_success{host=\"b\\\"q\"} 0\n"));
	free(text);
}

/* The label values of the text format (common/promtext.h, shared with
 * status --prometheus): escaped, and cut short without a half escape. */
static void
test_label_value(void **state)
{
	char out[64], small[6];

	(void)state;
	assert_string_equal(prom_label_value("a\\b\"c\nd", out, sizeof out), "a\\\\b\\\"c\\nd");
	assert_string_equal(prom_label_value("abcdef", small, sizeof small), "abc");
	assert_string_equal(prom_label_value("ab\"", small, sizeof small), "ab\\\"");
	assert_string_equal(prom_label_value("abc\"", small, sizeof small), "abc");
	assert_string_equal(prom_label_value("x", out, 1), "");
}

static void
test_damaged(void **state)
{
	const char *dir = *state;
	struct pull_metrics got, *v;
	struct chj_error e;
	char path[256];
	size_t n;

	write_file(dir, "bad.prom", "chjournal_pull_success{host=\"bad\"} yes\n");
	snprintf(path, sizeof path, "%s/bad.prom", dir);
	assert_int_equal(pull_metrics_read(path, &got, &e), -1);
	assert_int_equal(e.code, CHJ_ERR_CORRUPT);
	assert_non_null(strstr(e.msg, "bad.prom' line 1"));
	write_file(dir, "bad.prom", "# some other exporter\nnode_load1 0.5\n");
	assert_int_equal(pull_metrics_read(path, &got, &e), -1);
	assert_non_null(strstr(e.msg, "metrics missing"));
	/* the listing fails naming it; a hidden file and other names are not read */
	assert_int_equal(pull_metrics_list(dir, &v, &n, &e), -1);
	assert_non_null(strstr(e.msg, "bad.prom"));
	assert_int_equal(unlink(path), 0);
	write_file(dir, ".hidden.prom", "junk\n");
	write_file(dir, "notes.txt", "junk\n");
	assert_int_equal(pull_metrics_list(dir, &v, &n, &e), 0);
	assert_int_equal(n, 0);
	free(v);
	assert_int_equal(pull_metrics_list("/nonexistent/pulls", &v, &n, &e), -1);
	assert_int_equal(e.code, CHJ_ERR_NOTFOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_and_failures, tmpdir_setup,
		    unit_tmpdir_teardown),
		cmocka_unit_test(test_format_groups_families),
		cmocka_unit_test(test_label_value),
		cmocka_unit_test_setup_teardown(test_damaged, tmpdir_setup, unit_tmpdir_teardown),
	};

	return cmocka_run_group_tests_name("pull metrics", tests, NULL, NULL);
}
