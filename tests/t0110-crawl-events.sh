#!/bin/bash
# t0110-crawl-events: the start-up crawl runs in slices from the main loop, so
# changes are read and journaled while it is still running (before "ready"),
# and a directory created during the crawl, in a part already crawled or not,
# is watched and listed. Test hooks of the daemon hold the crawl open so
# this is not a race, however slow the machine: CHJ_TEST_CRAWL_DELAY_MS
# crawls one directory per slice with a pause after each, and
# CHJ_TEST_CRAWL_HOLD keeps the last queued directory waiting while the file
# it names exists (removed by the test when it is done acting mid-crawl).
. "$(dirname "$0")/test-lib.sh"
skip_on_fanotify "the crawl in slices is the inotify backend's (fanotify has no crawl)"

for i in $(seq 1 40); do mkdir -p "$SPOOL/u$i/a" "$SPOOL/u$i/b"; done
HOLD="$TRASH/crawl.hold"

# not_ready: the daemon has not logged "ready" yet.
not_ready() { ! grep -q 'ready:' "$DAEMON_LOG"; }

# roots_watched: the daemon has watched its root (it has written its start
# time, after that): a sync cookie made in the root is seen
roots_watched() { chj status --json | grep -q '"since":[1-9]'; }

expect_success 'start with a slow crawl (121 directories, 50 ms each), held open' '
	: >"$DAEMON_LOG" && : >"$HOLD" &&
	daemon_start_lock &&
	{ CHJ_TEST_CRAWL_DELAY_MS=50 CHJ_TEST_CRAWL_HOLD="$HOLD" "$CHJOURNALD" -c "$CONF" -v \
		2>>"$DAEMON_LOG" 5<&- & } &&
	DAEMON_PID=$! &&
	{ wait_for 30 roots_watched; _rc=$?; daemon_start_unlock; test "$_rc" = 0; } &&
	chj begin c1 >mode.out && chj commit c1 &&
	grep "^full: " mode.out &&
	not_ready
'

expect_success 'a change made mid-crawl is journaled before ready' '
	echo 1 >"$SPOOL/early" &&
	chj sync &&
	chj query >q.out &&
	grep "$SPOOL/early" q.out &&
	not_ready
'

# The held directory is one of the 40 u$i, the others crawled: a directory
# made in each u$i/b is made in a crawled part, and in one not crawled yet.
expect_success 'directories made mid-crawl, crawled part or not, are watched' '
	mkdir "$SPOOL/new" && echo 2 >"$SPOOL/new/f" &&
	for i in $(seq 1 40); do mkdir "$SPOOL/u$i/b/new" || return 1; done &&
	chj sync && not_ready &&
	rm "$HOLD" &&
	wait_for 30 grep -q "ready: 162 directories watched" "$DAEMON_LOG" &&
	for i in $(seq 1 40); do echo "$i" >"$SPOOL/u$i/b/new/g" || return 1; done &&
	echo 5 >"$SPOOL/new/f2" &&
	chj begin c1 && chj list c1 >list.out && chj commit c1 &&
	for f in early new/f new/f2 $(seq -f "u%g/b/new/g" 1 40); do
		grep -qx "$SPOOL/$f" list.out || { echo "missing $f"; return 1; }
	done &&
	grep -q "^watches: *162" <(chj status)
'

expect_success 'the log: the mid-crawl events were read before ready' '
	stop_daemon &&
	grep -E "ready:|event CREATE wd 1 name .early.|event CREATE,ISDIR wd 1 name .new." "$DAEMON_LOG" >order.txt &&
	test "$(wc -l <order.txt)" = 3 &&
	tail -n 1 order.txt | grep -q "ready: 162"
'

test_done
