#!/bin/bash
# t0205-sync: `chjournal sync` waits until the daemon has journaled every
# change made before it (a cookie file per root); it fails when no daemon
# runs or the daemon does not answer in time; cookies never reach a list and
# do not stay in the roots. A cookie made while the daemon starts (its lock
# taken, its roots not watched yet) is journaled when the root is watched.
# With flush_idle_ms, a change is journaled once the events stop, without a
# sync and long before flush_interval_ms, and a sync cookie is still synced
# to disk while those early flushes are not.
. "$(dirname "$0")/test-lib.sh"

SPOOL2="$TRASH/spool2"
mkdir -p "$SPOOL/u" "$SPOOL2/v"
echo 1 >"$SPOOL/u/1."
echo 2 >"$SPOOL2/v/2."
# a long flush interval and no flush when the events stop: without a sync,
# a change stays in the daemon's memory for a minute
write_config "flush_interval_ms = 60000" "flush_idle_ms = 0" "root = $SPOOL2"

# no_cookies: no cookie file left in any root
no_cookies() {
	find "$SPOOL" "$SPOOL2" -name ".chjournal-cookie.*" >cookies.out &&
	test_cmp /dev/null cookies.out
}

in_query() {
	chj query | cut -f4 | grep -qxF -- "$1"
}

expect_success 'sync before any daemon created the journal fails saying so' '
	test_expect_code 1 chj sync 2>err.out &&
	grep "journal .$STATE/journal.db.: cannot open: .*has chjournald ever run" err.out &&
	no_cookies
'

expect_success 'sync with the daemon: exit 0, the change just made is journaled' '
	start_daemon &&
	echo a >"$SPOOL/u/a." &&
	echo b >"$SPOOL2/v/b." &&
	chj sync &&
	in_query "$SPOOL/u/a." &&
	in_query "$SPOOL2/v/b." &&
	no_cookies
'

expect_success 'without sync the change is not journaled yet (60 s flush interval)' '
	echo c >"$SPOOL/u/c." &&
	! in_query "$SPOOL/u/c." &&
	chj sync &&
	in_query "$SPOOL/u/c."
'

expect_success 'sync --timeout N and --timeout=N are accepted' '
	echo d >"$SPOOL/u/d." &&
	chj sync --timeout 5 &&
	in_query "$SPOOL/u/d." &&
	echo e >"$SPOOL/u/e." &&
	chj sync --timeout=5 &&
	in_query "$SPOOL/u/e."
'

expect_success_inotify 'a cookie is made without a close after it: one event, one journal commit' '
	chj sync && chj sync &&
	grep "event CREATE .*chjournal-cookie" "$DAEMON_LOG" &&
	! grep "event CLOSE_WRITE.*chjournal-cookie" "$DAEMON_LOG"
'

expect_success 'bad --timeout values are usage errors (exit 2)' '
	for t in 0 abc -1 5x "" 86401; do
		test_expect_code 2 chj sync --timeout "$t" 2>err.out || return 1
		grep -F "bad --timeout" err.out || return 1
		grep "^usage: chjournal sync" err.out || return 1
	done &&
	test_expect_code 2 chj sync --timeout 2>err.out &&
	grep "needs a number of seconds" err.out &&
	test_expect_code 2 chj sync extra 2>err.out &&
	grep "unexpected argument .extra." err.out &&
	no_cookies
'

expect_success 'a stopped daemon makes sync time out' '
	kill -STOP "$DAEMON_PID" &&
	start=$(date +%s) &&
	test_expect_code 1 chj sync --timeout 2 2>err.out
	rc=$?
	kill -CONT "$DAEMON_PID"
	test $rc -eq 0 &&
	end=$(date +%s) &&
	test $((end - start)) -ge 2 &&
	test $((end - start)) -lt 10 &&
	grep "sync timed out after 2 s: chjournald (pid $DAEMON_PID) has not journaled the cookie in root" err.out &&
	no_cookies
'

expect_success 'after SIGCONT the daemon syncs again' '
	echo f >"$SPOOL/u/f." &&
	chj sync &&
	in_query "$SPOOL/u/f." &&
	no_cookies
'

expect_success 'cookies are never journaled as changes' '
	chj query >query.out &&
	! grep -F ".chjournal-cookie." query.out
'

expect_success 'cookies (directly in a root) never appear in lists; the same name deeper is data' '
	# a cookie left behind by an agent that crashed, and a user file that
	# only looks like one (below a root: ordinary data, must be backed up)
	: >"$SPOOL/.chjournal-cookie.1.deadbeefdeadbeef" &&
	: >"$SPOOL2/v/.chjournal-cookie.2.0123456789abcdef" &&
	chj begin c1 >mode.out &&
	grep "^full:" mode.out &&
	chj list c1 -0 | tr "\0" "\n" >list.out &&
	! grep -F "$SPOOL/.chjournal-cookie." list.out &&
	grep -qxF "$SPOOL2/v/.chjournal-cookie.2.0123456789abcdef" list.out &&
	grep -qxF "$SPOOL/u/1." list.out &&
	grep -qxF "$SPOOL2/v/2." list.out &&
	chj commit c1 &&
	echo g >"$SPOOL/u/g." &&
	echo more >>"$SPOOL/.chjournal-cookie.1.deadbeefdeadbeef" &&
	echo more >>"$SPOOL2/v/.chjournal-cookie.2.0123456789abcdef" &&
	chj begin c1 >mode.out &&
	grep -x incremental mode.out &&
	chj list c1 >list.out &&
	printf "%s\n" "$SPOOL/u/g." "$SPOOL2/v/.chjournal-cookie.2.0123456789abcdef" | LC_ALL=C sort >expect &&
	test_cmp expect list.out &&
	chj commit c1 &&
	rm "$SPOOL/.chjournal-cookie.1.deadbeefdeadbeef" \
		"$SPOOL2/v/.chjournal-cookie.2.0123456789abcdef" &&
	no_cookies
'

expect_success 'begin removes its cookies too' '
	backup c1 &&
	no_cookies &&
	backup c2 &&
	no_cookies
'

# an immutable root (root ignores modes): cookie creation fails there
if chattr +i "$SPOOL2" 2>/dev/null; then
	chattr -i "$SPOOL2"
	expect_success 'sync fails, naming the root, when a cookie cannot be created' '
		chattr +i "$SPOOL2" &&
		test_expect_code 1 chj sync 2>err.out
		rc=$?
		chattr -i "$SPOOL2"
		test $rc -eq 0 &&
		grep "cannot create sync cookie in root .$SPOOL2.: " err.out &&
		no_cookies
	'
else
	echo "# chattr +i does not work here: cookie creation failure not tested"
fi

expect_success 'sync with no daemon running fails saying so' '
	stop_daemon &&
	test_expect_code 1 chj sync 2>err.out &&
	grep "no chjournald is running on journal .$STATE/journal.db.: cannot sync" err.out &&
	no_cookies
'

# cookie_journaled NAME: the journal holds the cookie NAME
cookie_journaled() {
	[ "$(sqlite3 "$STATE/journal.db" "SELECT count(*) FROM cookies WHERE name = '$1'")" = 1 ]
}

if command -v sqlite3 >/dev/null 2>&1; then
	expect_success 'a cookie made before the starting daemon watched its root is journaled then' '
		: >"$SPOOL/.chjournal-cookie.1.0123456789abcdef" &&
		start_daemon &&
		chj sync &&
		cookie_journaled .chjournal-cookie.1.0123456789abcdef &&
		rm "$SPOOL/.chjournal-cookie.1.0123456789abcdef" &&
		stop_daemon
	'
else
	test_skip 'a cookie made before the starting daemon watched its root is journaled then' \
		'no sqlite3 command-line shell'
fi

# the daemon's fdatasync/fsync calls while CMD runs (strace on its pid)
daemon_syncs() {
	_ds_out=$1
	shift
	strace -f -qq -e trace=fdatasync,fsync -o "$_ds_out" -p "$DAEMON_PID" &
	_ds_pid=$!
	# strace is attached once the daemon's state says so
	wait_for 10 grep -q "^TracerPid:[[:space:]]*$_ds_pid\$" "/proc/$DAEMON_PID/status" &&
	"$@"
	_ds_rc=$?
	kill -INT "$_ds_pid" && wait "$_ds_pid"
	return $_ds_rc
}

expect_success 'flush_idle_ms: a change is journaled without a sync once the events stop' '
	write_config "flush_interval_ms = 60000" "root = $SPOOL2" &&
	start_daemon &&
	echo f >"$SPOOL/u/f." &&
	wait_for 20 in_query "$SPOOL/u/f." &&
	stop_daemon
'

early_change() {
	echo g >"$SPOOL/u/g." &&
	wait_for 20 in_query "$SPOOL/u/g."
}

if command -v strace >/dev/null 2>&1 && strace -qq -e trace=none true 2>/dev/null; then
	expect_success 'the early flush is not synced to disk; the flush of a sync cookie is' '
		write_config "flush_interval_ms = 60000" "flush_idle_ms = 20" "root = $SPOOL2" &&
		start_daemon &&
		daemon_syncs early.strace early_change &&
		! grep -E "f(data)?sync" early.strace &&
		daemon_syncs cookie.strace chj sync &&
		grep -E "f(data)?sync" cookie.strace &&
		stop_daemon
	'
else
	test_skip 'the early flush is not synced to disk; the flush of a sync cookie is' 'no strace'
fi

test_done
