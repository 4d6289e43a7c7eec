#!/bin/bash
# t0502-watch-limit: inotify watch limit exhaustion. The daemon cannot watch
# every directory (ENOSPC): it must name the sysctl to raise, cover the
# unwatched directories with rescan records (renewed, so changes after a
# commit are still listed), and watch them once the limit is raised.
#
# The limit is per user and per user namespace, and other root processes
# (other daemons, other tests) share the host's: lowering
# fs.inotify.max_user_watches for everyone would break them. So the daemon
# runs in its own user namespace (unshare -U -r, root mapped to root) whose
# limit (/proc/sys/user/max_inotify_watches there) is set to 40: only this
# daemon hits it, deterministically. Raising it back is done in that
# namespace, and fs.inotify.max_user_watches is raised by one as well (the
# daemon retries when it sees that sysctl change); it is restored on exit.
. "$(dirname "$0")/test-lib.sh"

skip_on_fanotify "the inotify watch limit does not apply to fanotify file system marks"

require_root
LIMIT=40
GLOBAL=/proc/sys/fs/inotify/max_user_watches
command -v unshare >/dev/null 2>&1 || skip_all "needs unshare (util-linux)"
command -v nsenter >/dev/null 2>&1 || skip_all "needs nsenter (util-linux)"
unshare -U -r sh -c "echo $LIMIT >/proc/sys/user/max_inotify_watches" 2>/dev/null ||
	skip_all "cannot set a watch limit in a new user namespace"
saved_watches=$(cat "$GLOBAL" 2>/dev/null) || skip_all "cannot read $GLOBAL"
( echo "$saved_watches" >"$GLOBAL" ) 2>/dev/null || skip_all "cannot write $GLOBAL"
test_cleanup_extra='echo "$saved_watches" >"$GLOBAL"'

# 10 user dirs x 10 folders: 111 directories with the root, one file in each
for u in 0 1 2 3 4 5 6 7 8 9; do
	for d in 0 1 2 3 4 5 6 7 8 9; do
		mkdir -p "$SPOOL/u$u/f$d"
		echo "mail $u $d" >"$SPOOL/u$u/f$d/m"
	done
	echo "top $u" >"$SPOOL/u$u/m"
done
echo top >"$SPOOL/m"
ndirs=$(find "$SPOOL" -type d | wc -l)

# start_daemon_limited: like start_daemon, in a user namespace whose watch
# limit is $LIMIT
start_daemon_limited() {
	: >"$DAEMON_LOG"
	unshare -U -r sh -c 'echo "$1" >/proc/sys/user/max_inotify_watches && exec "$2" -c "$3" -v' \
		sh "$LIMIT" "$CHJOURNALD" "$CONF" 2>>"$DAEMON_LOG" &
	DAEMON_PID=$!
	if ! wait_for 30 daemon_ready; then
		echo "start_daemon_limited: daemon not ready; log:" >&2
		cat "$DAEMON_LOG" >&2
		return 1
	fi
}

# json_int KEY: the integer KEY of `chj status --json`
json_int() {
	chj status --json | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"
}

unwatched_is_zero() {
	test "$(json_int unwatched)" = 0
}

# renewals: rescan records logged for unwatched directories so far
renewals() {
	grep -c "rescan recorded .*directory not watched" "$DAEMON_LOG"
}

renewed_since() {
	test "$(renewals)" -gt "$1"
}

# watches_of PID: inotify watches the process holds
watches_of() {
	cat /proc/"$1"/fdinfo/* 2>/dev/null | grep -c '^inotify wd:'
}

# change_all TAG: appends to every file and creates one in every directory;
# the list of changed files goes to expect (sorted)
change_all() {
	find "$SPOOL" -type d | while read -r dir; do
		echo "$1" >>"$dir/m" &&
		echo "$1" >"$dir/new-$1" || exit 1
		printf "%s\n" "$dir/m" "$dir/new-$1"
	done | LC_ALL=C sort >expect
}

# listed_all: every path of expect is in the last backup's list
listed_all() {
	LC_ALL=C sort list.out >listed &&
	LC_ALL=C comm -23 expect listed >missed &&
	test_cmp /dev/null missed
}

expect_success 'first backup (full) with a daemon without limit' '
	start_daemon &&
	backup c1 &&
	grep "^full:" mode.out &&
	test "$(wc -l <list.out)" -eq "$ndirs" &&
	stop_daemon
'

expect_success "restarted at the watch limit, the daemon names the sysctl" '
	start_daemon_limited &&
	grep "inotify watch limit reached" "$DAEMON_LOG" &&
	grep "sysctl -w fs.inotify.max_user_watches=[0-9]" "$DAEMON_LOG" &&
	chj sync &&
	test "$(json_int watches)" -eq "$LIMIT" &&
	test "$(json_int unwatched)" -gt 0 &&
	test "$(watches_of "$DAEMON_PID")" -eq "$LIMIT" &&
	chj status >status.out &&
	grep "^watches: *$LIMIT (some directories unwatched: covered by rescans)" status.out
'

expect_success 'changes in unwatched directories are listed (rescan records)' '
	change_all one &&
	chj sync &&
	chj query >query.out &&
	grep "rescan(since=[0-9T:-]*Z,directory not watched)	$SPOOL/" query.out &&
	backup c1 &&
	grep -x incremental mode.out &&
	listed_all
'

expect_success 'right after that commit, new changes are listed again' '
	change_all two &&
	backup c1 &&
	listed_all
'

expect_success 'after a renewal of the rescan records, changes are listed again' '
	n=$(renewals) &&
	wait_for 30 renewed_since "$n" &&
	change_all three &&
	backup c1 &&
	listed_all
'

expect_success 'raising the limit: the daemon watches every directory again' '
	nsenter -t "$DAEMON_PID" -U sh -c "echo 100000 >/proc/sys/user/max_inotify_watches" &&
	echo $((saved_watches + 1)) >"$GLOBAL" &&
	wait_for 40 grep "is watched now" "$DAEMON_LOG" &&
	wait_for 20 unwatched_is_zero &&
	test "$(watches_of "$DAEMON_PID")" -eq "$ndirs"
'

expect_success 'changes in the formerly unwatched directories are listed' '
	backup c1 &&
	change_all four &&
	backup c1 &&
	listed_all
'

expect_success 'daemon stops cleanly' '
	stop_daemon
'

test_done
