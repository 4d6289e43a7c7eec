#!/bin/bash
# t0501-queue-overflow: a forced inotify queue overflow. The kernel sizes an
# inotify instance's queue from fs.inotify.max_queued_events when the
# instance is created, so the daemon is started with the sysctl at 64 (and
# the sysctl restored at once); the daemon is then SIGSTOPped while thousands
# of changes are made. After SIGCONT: the overflow is counted, logged and
# journaled as a rescan of the root, every changed file is listed, and the
# directories made during the stop are watched afterwards.
. "$(dirname "$0")/test-lib.sh"

skip_on_fanotify "the queue size is the inotify sysctl max_queued_events (t0503 overflows the fanotify queue)"

require_root
SYSCTL=/proc/sys/fs/inotify/max_queued_events
saved_queue=$(cat "$SYSCTL" 2>/dev/null) || skip_all "cannot read $SYSCTL"
( echo "$saved_queue" >"$SYSCTL" ) 2>/dev/null || skip_all "cannot write $SYSCTL"
# restored right after the daemon starts; here if the test dies before
test_cleanup_extra='[ -z "$_tl_sysctl_locked" ] || echo "$saved_queue" >"$SYSCTL"'

# snapshot: one line per file: path, inode, size, mtime, ctime
snapshot() {
	find "$SPOOL" -type f -printf '%p\t%i\t%s\t%T@\t%C@\n' | LC_ALL=C sort
}

for u in 0 1 2 3 4 5 6 7 8 9; do
	mkdir -p "$SPOOL/u$u/cur" "$SPOOL/u$u/new" "$SPOOL/u$u/old"
	for i in 1 2 3 4 5 6 7 8 9 10; do
		echo "mail $u $i" >"$SPOOL/u$u/cur/m$i"
		echo "old $u $i" >"$SPOOL/u$u/old/o$i"
	done
done

# has_inotify_fd PID: the process holds an inotify instance
has_inotify_fd() {
	for fd in /proc/"$1"/fd/*; do
		[ "$(readlink "$fd" 2>/dev/null)" = "anon_inode:inotify" ] && return 0
	done
	return 1
}

# start_daemon_small_queue: the sysctl is low only until the daemon's inotify
# instance exists (a few ms), under sysctl_lock: the daemons of the tests
# running beside this one wait to start until it is restored (test-lib)
start_daemon_small_queue() {
	: >"$DAEMON_LOG"
	sysctl_lock || return 1
	saved_queue=$(cat "$SYSCTL") &&
	echo 64 >"$SYSCTL" || { sysctl_unlock; return 1; }
	"$CHJOURNALD" -c "$CONF" -v 2>>"$DAEMON_LOG" 5<&- &
	DAEMON_PID=$!
	wait_for 10 has_inotify_fd "$DAEMON_PID"
	_rc=$?
	echo "$saved_queue" >"$SYSCTL"
	sysctl_unlock
	[ "$_rc" -eq 0 ] && wait_for 30 daemon_ready
}

expect_success 'daemon starts with a 64-event queue; the sysctl is restored' '
	start_daemon_small_queue &&
	test "$(cat "$SYSCTL")" = "$saved_queue" &&
	backup c1 &&
	grep "^full:" mode.out
'

# make_changes: about 2700 changed files (8000 events): new files in existing and new
# directories, appends, file renames, directory renames
make_changes() {
	for u in 0 1 2 3 4 5 6 7 8 9; do
		for i in $(seq 1 150); do
			echo "new $u $i" >"$SPOOL/u$u/new/n$i" || return 1
		done
		for i in 1 2 3 4 5; do
			echo "more" >>"$SPOOL/u$u/cur/m$i" || return 1
		done
		for i in 6 7; do
			mv "$SPOOL/u$u/cur/m$i" "$SPOOL/u$u/cur/m$i:2,S" || return 1
		done
		mkdir -p "$SPOOL/u$u/fresh/a/b" || return 1
		for i in $(seq 1 50); do
			echo "fresh $u $i" >"$SPOOL/u$u/fresh/f$i" &&
			echo "deep $u $i" >"$SPOOL/u$u/fresh/a/b/d$i" || return 1
		done
		for i in $(seq 1 30); do
			mv "$SPOOL/u$u/new/n$i" "$SPOOL/u$u/cur/n$i:2,S" || return 1
		done
		mv "$SPOOL/u$u/old" "$SPOOL/u$u/archived" || return 1
	done
}

expect_success 'thousands of changes while the daemon is stopped' '
	snapshot >before.snap &&
	kill -STOP "$DAEMON_PID" &&
	make_changes &&
	snapshot >after.snap &&
	kill -CONT "$DAEMON_PID" &&
	# changed: every line of the second snapshot not in the first
	LC_ALL=C comm -13 before.snap after.snap | cut -f1 >changed &&
	wc -l <changed &&
	test "$(wc -l <changed)" -ge 2500
'

expect_success 'status counts the overflow; query shows the rescan; the log names it' '
	chj sync &&
	chj status >status.out &&
	cat status.out &&
	n=$(sed -n "s/^overflows: *//p" status.out) &&
	test "$n" -ge 1 &&
	chj query >query.out &&
	grep "rescan(since=[0-9T:-]*Z,inotify queue overflow)	$SPOOL\$" query.out &&
	grep "inotify queue overflow" "$DAEMON_LOG"
'

expect_success 'the backup lists every changed file' '
	backup c1 &&
	grep -x incremental mode.out &&
	LC_ALL=C sort list.out >listed &&
	LC_ALL=C comm -23 changed listed >missed &&
	test_cmp /dev/null missed
'

expect_success 'directories made during the stop are watched after the overflow' '
	echo later >"$SPOOL/u3/fresh/a/b/later" &&
	echo later >"$SPOOL/u7/archived/later" &&
	echo later >"$SPOOL/u0/new/n99" &&
	backup c1 &&
	printf "%s\n" "$SPOOL/u0/new/n99" "$SPOOL/u3/fresh/a/b/later" \
		"$SPOOL/u7/archived/later" >expect &&
	test_cmp expect list.out
'

# A sync whose cookie is made while the queue is already full: the cookie's
# event is lost with the others, and the daemon finds the cookie in the root
# when it handles the overflow (before, sync waited until its timeout).
# make_full_files: 300 files (900 events) into a queue of 64
make_full_files() {
	for i in $(seq 1 300); do echo x >"$SPOOL/u1/new/full$i" || return 1; done
}

expect_success 'a sync begun while the queue is full returns once the overflow is handled' '
	sync_across_overflow make_full_files &&
	backup c1 &&
	test "$(grep -c "^$SPOOL/u1/new/full" list.out)" = 300
'

expect_success 'daemon stops cleanly' '
	stop_daemon
'

test_done
