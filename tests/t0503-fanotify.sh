#!/bin/bash
# t0503-fanotify: what only the fanotify backend does. backend = auto picks
# fanotify here and says so; fanotify refused (no CAP_SYS_ADMIN, no
# CAP_DAC_READ_SEARCH) is a one-line error naming the reason with
# backend = fanotify and a logged fall-back to inotify with auto; events in
# directories deleted before the daemon read them are reported under their
# paths when the events that made or deleted the directories name them, and
# the deletion of the topmost deleted directory is journaled either way (it
# covers what was below), with no rescan; a queue overflow (more
# than the 16384 events of fanotify's queue while the daemon is stopped)
# becomes a rescan of the root and the backup still lists every change.
# fanotify marks the whole file system of the spool: a tmpfs of the test's
# own (test-lib), not the /tmp where other tests and programs write
CHJ_TRASH_TMPFS=${CHJ_TRASH_TMPFS:-yes}
. "$(dirname "$0")/test-lib.sh"

[ "$CHJ_BACKEND" = fanotify ] && skip_all "runs once, on the inotify pass (it sets its own backend)"
require_root
require_fanotify
command -v setpriv >/dev/null 2>&1 || skip_all "needs setpriv (util-linux)"

mkdir -p "$SPOOL/old/sub" "$SPOOL/keep"
for i in 1 2 3; do
	echo "old $i" >"$SPOOL/old/sub/o$i"
done
echo keep >"$SPOOL/keep/k"

# daemon_fails_with CONF TEXT: chjournald on CONF exits 1, its error (one
# line) holds TEXT
daemon_fails_with() {
	"$@" >out 2>err.out
	_rc=$?
	cat err.out
	test "$_rc" -eq 1 &&
	grep -F "$DF_TEXT" err.out &&
	test "$(grep -c "error:" err.out)" -eq 1
}

expect_success 'backend = fanotify without CAP_SYS_ADMIN: one-line error naming it, exit 1' '
	write_config "backend = fanotify" &&
	DF_TEXT="needs CAP_SYS_ADMIN" daemon_fails_with \
		setpriv --bounding-set=-sys_admin "$CHJOURNALD" -c "$CONF"
'

expect_success 'backend = fanotify without CAP_DAC_READ_SEARCH: one-line error naming it' '
	DF_TEXT="needs CAP_DAC_READ_SEARCH" daemon_fails_with \
		setpriv --bounding-set=-dac_read_search "$CHJOURNALD" -c "$CONF"
'

expect_success 'backend = auto without CAP_SYS_ADMIN: inotify, and the log says why' '
	write_config "backend = auto" &&
	: >"$DAEMON_LOG" &&
	daemon_start_lock &&
	{ setpriv --bounding-set=-sys_admin "$CHJOURNALD" -c "$CONF" -v 2>>"$DAEMON_LOG" 5<&- & } &&
	DAEMON_PID=$! &&
	{ wait_for 30 daemon_ready; _rc=$?; daemon_start_unlock; test "$_rc" = 0; } &&
	grep "backend auto: using inotify: .*needs CAP_SYS_ADMIN" "$DAEMON_LOG" &&
	chj status | grep "^backend: *inotify$" &&
	stop_daemon
'

# The overflow tests below need the default queue (16384 events): the
# sysctl (Linux 5.13+) is read when the daemon's group is made, so it is set
# for the start only, as something else (bench/run.sh) may have raised it.
# It is changed under sysctl_lock (test-lib), so that no daemon of a test
# running beside this one starts with it.
FQ_SYSCTL=/proc/sys/fs/fanotify/max_queued_events
saved_fq=$(cat "$FQ_SYSCTL" 2>/dev/null)
[ -z "$saved_fq" ] || test_cleanup_extra='[ -z "$_tl_sysctl_locked" ] || echo "$saved_fq" >"$FQ_SYSCTL"'

expect_success 'backend = auto picks fanotify here and logs it; one mark, no crawl' '
	if [ -n "$saved_fq" ]; then
		sysctl_lock &&
		saved_fq=$(cat "$FQ_SYSCTL") &&
		echo 16384 >"$FQ_SYSCTL" &&
		{ start_daemon; _rc=$?; echo "$saved_fq" >"$FQ_SYSCTL"; sysctl_unlock; test "$_rc" = 0; }
	else
		start_daemon
	fi &&
	grep "backend auto: using fanotify" "$DAEMON_LOG" &&
	grep "ready: 1 file systems marked" "$DAEMON_LOG" &&
	chj status >status.out &&
	grep "^backend: *fanotify$" status.out &&
	grep "^watches: *1$" status.out &&
	backup c1 &&
	grep "^full:" mode.out
'

expect_success 'a new directory tree is listed and stays one mark' '
	mkdir -p "$SPOOL/new/a/b" &&
	echo x >"$SPOOL/new/a/b/f" &&
	backup c1 &&
	in_list "$SPOOL/new/a/b/f" &&
	chj status | grep "^watches: *1$"
'

expect_success 'directories deleted before their events were read: nothing dropped' '
	kill -STOP "$DAEMON_PID" &&
	# a directory made, filled and removed while the daemon sleeps
	mkdir "$SPOOL/burst" &&
	for i in $(seq 1 200); do echo "$i" >"$SPOOL/burst/f$i" || return 1; done &&
	rm -r "$SPOOL/burst" &&
	# an old directory (never seen by the daemon) emptied and removed
	echo more >>"$SPOOL/old/sub/o1" &&
	rm -r "$SPOOL/old/sub" &&
	echo after >"$SPOOL/keep/after" &&
	kill -CONT "$DAEMON_PID" &&
	chj sync &&
	chj query >query.out &&
	cat query.out &&
	# the burst and the old directory: their deletion journaled (it covers
	# what was below), and no rescan for events in deleted directories
	grep -E "deleted.*	$SPOOL/burst\$" query.out &&
	grep -E "deleted.*	$SPOOL/old/sub\$" query.out &&
	! grep "rescan(since=[0-9T:-]*Z,directory deleted" query.out &&
	backup c1 &&
	in_list "$SPOOL/keep/after" &&
	! grep -q "error:" "$DAEMON_LOG"
'

expect_success 'a renamed directory: later events use the new name' '
	mkdir -p "$SPOOL/ren/x/y" &&
	echo 1 >"$SPOOL/ren/x/y/f" &&
	backup c1 &&
	mv "$SPOOL/ren/x" "$SPOOL/ren/z" &&
	backup c1 &&
	echo 2 >>"$SPOOL/ren/z/y/f" &&
	backup c1 &&
	printf "%s\n" "$SPOOL/ren/z/y/f" >expect &&
	test_cmp expect list.out
'

expect_success 'queue overflow (daemon stopped, 20000 files made) is a rescan of the root' '
	mkdir "$SPOOL/flood" &&
	chj sync &&
	kill -STOP "$DAEMON_PID" &&
	( cd "$SPOOL/flood" && seq 1 20000 | xargs touch ) &&
	kill -CONT "$DAEMON_PID" &&
	chj sync &&
	chj status >status.out &&
	cat status.out &&
	n=$(sed -n "s/^overflows: *//p" status.out) &&
	test "$n" -ge 1 &&
	grep "rescan recorded for .$SPOOL. .*: fanotify queue overflow" "$DAEMON_LOG" &&
	# (rescans of one path are coalesced: the row keeps one reason)
	chj query >query.out &&
	grep "rescan(since=[0-9T:-]*Z,[^)]*)	$SPOOL\$" query.out
'

expect_success 'after the overflow the backup lists every new file, and events flow again' '
	backup c1 &&
	grep -c "^$SPOOL/flood/" list.out >n.out &&
	test "$(cat n.out)" -eq 20000 &&
	echo later >"$SPOOL/flood/later" &&
	backup c1 &&
	printf "%s\n" "$SPOOL/flood/later" >expect &&
	test_cmp expect list.out
'

# A sync whose cookie is made while the queue is already full: its event is
# lost with the others; the daemon finds the cookie when it handles the
# overflow (before, sync waited until its timeout).
# make_more_files: 20000 files (over 40000 events) into a queue of 16384
make_more_files() {
	( cd "$SPOOL/flood" && seq 1 20000 | sed s/^/more/ | xargs touch )
}

expect_success 'a sync begun while the queue is full returns once the overflow is handled' '
	sync_across_overflow make_more_files &&
	backup c1 &&
	test "$(grep -c "^$SPOOL/flood/more" list.out)" = 20000
'

expect_success 'the root moved away: a rescan, retried; back in place it is watched again' '
	mv "$SPOOL" "$SPOOL.away" &&
	wait_for 10 grep -q "root .$SPOOL. was moved away" "$DAEMON_LOG" &&
	mv "$SPOOL.away" "$SPOOL" &&
	grep "rescan recorded for .$SPOOL. .*: was moved away" "$DAEMON_LOG" &&
	wait_for 30 grep -q "root .$SPOOL. is watched again" "$DAEMON_LOG" &&
	chj sync &&
	chj query >query.out &&
	grep "rescan(since=[0-9T:-]*Z,[^)]*)	$SPOOL\$" query.out &&
	wait_for 30 grep -q "root .$SPOOL. is watched again" "$DAEMON_LOG" &&
	echo back >"$SPOOL/keep/back" &&
	backup c1 &&
	in_list "$SPOOL/keep/back"
'

expect_success 'daemon stops cleanly' '
	stop_daemon
'

test_done
