/* test-snapshot.c: cmocka unit tests for the mirror snapshots
 * (common/snapshot.h) and the retention rules they share with compaction
 * (common/prune.h): which names are snapshots and their times, the order
 * of a listing (NAME, NAME.1, NAME.2, NAME.10; hidden partial ones and
 * other names left out), the next free name, the kind a plain directory
 * gets, a copy that cannot be made leaving nothing behind, and the rules
 * over plain times (keep-days' daily window, the borg-like rules, the
 * newest always kept). Snapshots of real btrfs and xfs: t0603. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prune.h"
#include "snapshot.h"
#include "unit-tmp.h"

#define HOUR 3600LL
#define DAY 86400LL
#define T0 1704067200           /* 2024-01-01T00:00:00Z, a Monday */

static int
tmpdir_setup(void **state)
{
	*state = unit_tmpdir_new("snapshot");
	return 0;
}

static void
mkdir_in(const char *dir, const char *name)
{
	char path[256];

	unit_join(path, sizeof path, dir, name);
	assert_int_equal(mkdir(path, 0755), 0);
}

static void
test_name_time(void **state)
{
	(void)state;
	assert_int_equal(snapshot_name_time("20240101T000000Z"), T0);
	assert_int_equal(snapshot_name_time("20240101T010203Z.1"), T0 + 3723);
	assert_int_equal(snapshot_name_time("20240101T000000Z.12"), T0);
	assert_int_equal(snapshot_name_time("20240101T000000Z.0"), -1);
	assert_int_equal(snapshot_name_time("20240101T000000Z."), -1);
	assert_int_equal(snapshot_name_time("20240101T000000Z.1x"), -1);
	assert_int_equal(snapshot_name_time("20240101T000000"), -1);
	assert_int_equal(snapshot_name_time("20240101T000000Zx"), -1);
	assert_int_equal(snapshot_name_time(".partial.20240101T000000Z"), -1);
	assert_int_equal(snapshot_name_time("lost+found"), -1);
	assert_int_equal(snapshot_name_time(""), -1);
}

static void
test_list_and_next_name(void **state)
{
	const char *dir = *state;
	static const char *want[] = { "20240101T000000Z", "20240101T000000Z.1", "20240101T000000Z.2",
		"20240101T000000Z.10", "20240102T000000Z" };
	struct snapshot *v, s;
	struct chj_error e;
	size_t n, i;

	mkdir_in(dir, "20240102T000000Z");
	mkdir_in(dir, "20240101T000000Z.10");
	mkdir_in(dir, "20240101T000000Z.2");
	mkdir_in(dir, "20240101T000000Z");
	mkdir_in(dir, "20240101T000000Z.1");
	mkdir_in(dir, ".partial.20240103T000000Z");
	mkdir_in(dir, "notes");
	assert_int_equal(snapshot_list(dir, &v, &n, &e), 0);
	assert_int_equal(n, 5);
	for (i = 0; i < n; i++)
		assert_string_equal(v[i].name, want[i]);
	assert_int_equal(v[4].time, T0 + DAY);
	free(v);
	/* the next free name in a second that has three: .3 */
	assert_int_equal(snapshot_next_name(dir, T0, &s, &e), 0);
	assert_string_equal(s.name, "20240101T000000Z.3");
	assert_int_equal(snapshot_next_name(dir, T0 + 2 * DAY, &s, &e), 0);
	assert_string_equal(s.name, "20240103T000000Z");
	/* a directory that is not there: one error naming it */
	assert_int_equal(snapshot_list("/nonexistent/snaps", &v, &n, &e), -1);
	assert_int_equal(e.code, CHJ_ERR_NOTFOUND);
	assert_non_null(strstr(e.msg, "/nonexistent/snaps"));
	assert_int_equal(snapshot_next_name("/nonexistent/snaps", T0, &s, &e), -1);
	assert_int_equal(e.code, CHJ_ERR_NOTFOUND);
	assert_non_null(strstr(e.msg, "snapshot directory '/nonexistent/snaps'"));
}

static void
test_kind_and_failed_copy(void **state)
{
	const char *dir = *state;
	enum snapshot_kind kind = SNAPSHOT_BTRFS;
	char mirror[256], snaps[256];
	struct snapshot s;
	struct chj_error e;
	struct snapshot *v;
	size_t n;

	assert_int_equal(snapshot_kind_parse("reflink", &kind), 0);
	assert_int_equal(kind, SNAPSHOT_REFLINK);
	assert_int_equal(snapshot_kind_parse("zfs", &kind), -1);
	snprintf(mirror, sizeof mirror, "%s/mirror", dir);
	snprintf(snaps, sizeof snaps, "%s/snaps", dir);
	assert_int_equal(snapshot_kind_of(mirror, &kind, &e), -1);
	assert_int_equal(e.code, CHJ_ERR_NOTFOUND);
	mkdir_in(dir, "mirror");
	mkdir_in(dir, "snaps");
	/* /tmp's file system is not btrfs, and a plain directory is no subvolume */
	assert_int_equal(snapshot_kind_of(mirror, &kind, &e), 0);
	assert_int_equal(kind, SNAPSHOT_REFLINK);
	/* btrfs insisted on where there is none: the tool's error, nothing left */
	assert_int_equal(snapshot_next_name(snaps, T0, &s, &e), 0);
	assert_int_equal(snapshot_take(mirror, snaps, &s, SNAPSHOT_BTRFS, &e), -1);
	assert_true(e.code == CHJ_ERR_SYS || e.code == CHJ_ERR_REFUSED);
	assert_non_null(strstr(e.msg, "btrfs"));
	assert_int_equal(snapshot_list(snaps, &v, &n, &e), 0);
	assert_int_equal(n, 0);
	free(v);
	assert_int_equal(rmdir(snaps), 0);    /* empty: no hidden partial left */
}

static void
test_prune_rules(void **state)
{
	struct prune_rules days = { 3, 0, 0, 0, 0, 0 }, last2 = { 0, 2, 0, 0, 0, 0 };
	struct prune_rules daily2 = { 0, 0, 0, 2, 0, 0 };
	/* two points a day for four days */
	int64_t t[8];
	prune_reason why[8];
	size_t i;

	(void)state;
	for (i = 0; i < 8; i++)
		t[i] = T0 + (int64_t)(i / 2) * DAY + (int64_t)(i % 2) * 12 * HOUR;
	/* keep-days 3: the last point of each day within 3 days (its edge
	 * included), and the newest */
	assert_int_equal(prune_plan(t, 8, &days, t[7], why), 4);
	assert_string_equal(why[1], "daily window");
	assert_int_equal(prune_plan(t, 8, &days, t[7] + 1, why), 3);
	assert_null(why[0]);
	assert_null(why[1]);
	assert_null(why[2]);
	assert_string_equal(why[3], "daily window");
	assert_string_equal(why[5], "daily window");
	assert_string_equal(why[7], "newest");
	assert_int_equal(prune_plan(t, 8, &last2, t[7], why), 2);
	assert_string_equal(why[6], "last");
	assert_string_equal(why[7], "last");
	assert_int_equal(prune_plan(t, 8, &daily2, t[7], why), 2);
	assert_string_equal(why[7], "daily");
	assert_string_equal(why[5], "daily");
	/* fewer periods than asked: the oldest point too */
	assert_int_equal(prune_plan(t, 4, &(struct prune_rules){ 0, 0, 0, 5, 0, 0 }, t[3], why), 3);
	assert_string_equal(why[0], "daily (oldest)");
	assert_int_equal(prune_plan(t, 0, &last2, t[7], why), 0);
	assert_true(prune_has_rules(&daily2));
	assert_false(prune_has_rules(&days));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_time),
		cmocka_unit_test_setup_teardown(test_list_and_next_name, tmpdir_setup, unit_tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_kind_and_failed_copy, tmpdir_setup, unit_tmpdir_teardown),
		cmocka_unit_test(test_prune_rules),
	};

	return cmocka_run_group_tests_name("snapshots", tests, NULL, NULL);
}
