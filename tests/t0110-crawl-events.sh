#!/bin/bash
# t0110-crawl-events: the start-up crawl runs in slices from the main loop, so
# changes are read and journaled while it is still running (before "ready"),
# and a directory created during the crawl, in a part already crawled or not,
# is watched and listed. CHJ_TEST_CRAWL_DELAY_MS holds the crawl open (one
# directory per slice, a pause after each) so this is not a race.
. "$(dirname "$0")/test-lib.sh"
skip_on_fanotify "the crawl in slices is the inotify backend's (fanotify has no crawl)"

for i in $(seq 1 40); do mkdir -p "$SPOOL/u$i/a" "$SPOOL/u$i/b"; done

# not_ready: the daemon has not logged "ready" yet.
not_ready() { ! grep -q 'ready:' "$DAEMON_LOG"; }

expect_success 'start with a slow crawl (120 directories, 50 ms each)' '
	: >"$DAEMON_LOG" &&
	{ CHJ_TEST_CRAWL_DELAY_MS=50 "$CHJOURNALD" -c "$CONF" -v 2>>"$DAEMON_LOG" & } &&
	DAEMON_PID=$! &&
	wait_for 10 chj status &&
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

expect_success 'directories made mid-crawl, crawled part or not, are watched' '
	mkdir "$SPOOL/new" && echo 2 >"$SPOOL/new/f" &&
	mkdir "$SPOOL/u1/a/new" && mkdir "$SPOOL/u40/b/new" &&
	chj sync && not_ready &&
	wait_for 30 grep -q "ready: 124 directories watched" "$DAEMON_LOG" &&
	echo 3 >"$SPOOL/u1/a/new/g" && echo 4 >"$SPOOL/u40/b/new/h" &&
	echo 5 >"$SPOOL/new/f2" &&
	chj begin c1 && chj list c1 >list.out && chj commit c1 &&
	for f in early new/f new/f2 u1/a/new/g u40/b/new/h; do
		grep -qx "$SPOOL/$f" list.out || { echo "missing $f"; exit 1; }
	done &&
	grep -q "^watches: *124" <(chj status)
'

expect_success 'the log: the mid-crawl events were read before ready' '
	stop_daemon &&
	grep -E "ready:|event CREATE wd 1 name .early.|event CREATE,ISDIR wd 1 name .new." "$DAEMON_LOG" >order.txt &&
	test "$(wc -l <order.txt)" = 3 &&
	tail -n 1 order.txt | grep -q "ready: 124"
'

test_done
