#!/bin/bash
# t0402-daemon-options: chjournald's options and signals: --daemon with
# --pidfile, SIGTERM/SIGINT, SIGHUP adding and removing roots, a refused
# reload, a second daemon on the same journal, --help and bad options.
. "$(dirname "$0")/test-lib.sh"

SPOOL2="$TRASH/spool2"
PIDFILE="$TRASH/run/chjournald.pid"
mkdir -p "$SPOOL/u" "$SPOOL2/v/w" "$TRASH/run"
echo 1 >"$SPOOL/u/1."
echo 2 >"$SPOOL2/v/2."
echo 3 >"$SPOOL2/v/w/3."

# pid_gone PID: no such process (or a zombie nobody reaps: it has exited)
pid_gone() {
	[ ! -e "/proc/$1" ] || [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

pid_alive() {
	! pid_gone "$1"
}

status_running_pid() {
	chj status | grep -q "^daemon: *running (pid $1,"
}

# log_count PATTERN: lines of the daemon log matching PATTERN
log_count() {
	grep -c -- "$1" "$DAEMON_LOG"
}

log_count_is() {
	[ "$(log_count "$1")" -ge "$2" ]
}

# hup_and_wait PATTERN: SIGHUP, then wait until the log has one more line
# matching PATTERN
hup_and_wait() {
	_n=$(log_count "$1")
	kill -HUP "$DAEMON_PID" &&
	wait_for 20 log_count_is "$1" $((_n + 1))
}

contains() {
	_c_file=$1
	shift
	for _c_p in "$@"; do
		grep -qxF -- "$_c_p" "$_c_file" || { echo "missing from $_c_file: $_c_p"; return 1; }
	done
}

expect_success 'chjournald --help and --version exit 0' '
	"$CHJOURNALD" --help >out &&
	grep "^usage: chjournald" out &&
	grep -- "--pidfile FILE" out &&
	"$CHJOURNALD" -h >out &&
	grep "^usage: chjournald" out &&
	"$CHJOURNALD" --version >out &&
	grep "^chjournald [0-9]" out
'

expect_success 'bad options and arguments exit 2' '
	test_expect_code 2 "$CHJOURNALD" -c "$CONF" --bogus 2>err.out &&
	grep "^usage: chjournald" err.out &&
	test_expect_code 2 "$CHJOURNALD" -c "$CONF" -x 2>err.out &&
	test_expect_code 2 "$CHJOURNALD" -c "$CONF" extra 2>err.out &&
	grep "unexpected argument .extra." err.out &&
	test_expect_code 2 "$CHJOURNALD" -c 2>err.out &&
	test_expect_code 2 "$CHJOURNALD" -c "$CONF" --pidfile relative.pid 2>err.out &&
	grep "must be an absolute path" err.out &&
	! test -e "$STATE/journal.db"
'

expect_success '--daemon --pidfile detaches; the pid file names the live daemon' '
	"$CHJOURNALD" -c "$CONF" --daemon --pidfile "$PIDFILE" >out 2>err.out &&
	test_cmp /dev/null out &&
	wait_for 20 test -s "$PIDFILE" &&
	dpid=$(cat "$PIDFILE") &&
	DAEMON_PID=$dpid &&
	pid_alive "$dpid" &&
	wait_for 20 status_running_pid "$dpid" &&
	test "$(cat "$STATE/journal.db.lock")" = "$dpid" &&
	# detached: its own session, not a child of this shell
	test "$(ps -o sid= -p "$dpid" | tr -d " ")" = "$dpid" &&
	test "$(ps -o ppid= -p "$dpid" | tr -d " ")" != "$$"
'

expect_success 'the detached daemon journals changes' '
	backup c1 &&
	grep "^full:" mode.out &&
	echo x >"$SPOOL/u/x." &&
	backup c1 &&
	grep -x incremental mode.out &&
	echo "$SPOOL/u/x." >expect &&
	test_cmp expect list.out
'

expect_success 'a second daemon on the same journal fails naming the first pid' '
	test_expect_code 1 "$CHJOURNALD" -c "$CONF" 2>err.out &&
	grep "another chjournald (pid $dpid) is running on journal .$STATE/journal.db." err.out &&
	pid_alive "$dpid" &&
	test "$(cat "$STATE/journal.db.lock")" = "$dpid" &&
	status_running_pid "$dpid"
'

expect_success 'a second daemon with the same --pidfile leaves the pid file alone' '
	test_expect_code 1 "$CHJOURNALD" -c "$CONF" --pidfile "$PIDFILE" 2>err.out &&
	grep "another chjournald (pid $dpid) is running" err.out &&
	test "$(cat "$PIDFILE")" = "$dpid"
'

expect_success 'a second daemon with --daemon fails visibly (exit 1, message on stderr)' '
	echo "$dpid" >"$PIDFILE" &&
	"$CHJOURNALD" -c "$CONF" --daemon --pidfile "$TRASH/run/second.pid" >out 2>err.out
	rc=$?
	# if it detached before failing, let its child finish
	if [ -s "$TRASH/run/second.pid" ]; then
		wait_for 20 pid_gone "$(cat "$TRASH/run/second.pid")"
	fi
	test $rc -eq 1 &&
	grep "another chjournald (pid $dpid) is running" err.out
'

expect_success 'SIGTERM stops the detached daemon and removes its pid file' '
	kill -TERM "$dpid" &&
	wait_for 20 pid_gone "$dpid" &&
	DAEMON_PID= &&
	! test -e "$PIDFILE" &&
	chj status >status.out &&
	grep "^daemon: *not running" status.out
'

expect_success 'SIGINT stops a foreground daemon with exit 0' '
	start_daemon &&
	kill -INT "$DAEMON_PID" &&
	wait "$DAEMON_PID" &&
	DAEMON_PID= &&
	grep "SIGINT received: flushing and stopping" "$DAEMON_LOG" &&
	grep "stopped cleanly" "$DAEMON_LOG"
'

expect_success 'setup for reloads: c1 has a committed run' '
	start_daemon &&
	backup c1 &&
	backup c1 &&
	grep -x incremental mode.out
'

expect_success 'SIGHUP with an added root: its files count as new, its changes are listed' '
	cp "$CONF" one-root.conf &&
	write_config "root = $SPOOL2" &&
	cp "$CONF" two-roots.conf &&
	hup_and_wait "reload done: 2 roots" &&
	grep "root .$SPOOL2. added" "$DAEMON_LOG" &&
	backup c1 &&
	grep -x incremental mode.out &&
	printf "%s\n" "$SPOOL2/v/2." "$SPOOL2/v/w/3." >expect &&
	test_cmp expect list.out &&
	echo 4 >"$SPOOL2/v/w/4." &&
	echo more >>"$SPOOL2/v/2." &&
	mkdir "$SPOOL2/new" &&
	echo 5 >"$SPOOL2/new/5." &&
	echo y >"$SPOOL/u/y." &&
	backup c1 &&
	printf "%s\n" "$SPOOL2/new/5." "$SPOOL2/v/2." "$SPOOL2/v/w/4." "$SPOOL/u/y." | sort >expect &&
	test_cmp expect list.out
'

expect_success 'a consumer that never ran lists both roots in full' '
	backup c2 &&
	grep "^full:" mode.out &&
	find "$SPOOL" "$SPOOL2" -type f | sort >expect &&
	test_cmp expect list.out
'

expect_success 'SIGHUP with a broken configuration keeps the running one' '
	printf "%s\n" "journal = $STATE/journal.db" "root = $SPOOL" "flush_interval_ms = soon" >"$CONF" &&
	hup_and_wait "reload refused" &&
	grep "reload refused, keeping the running configuration: $CONF:3: key .flush_interval_ms.: .soon. is not a number" "$DAEMON_LOG" &&
	pid_alive "$DAEMON_PID" &&
	# the agent reads a good copy; the daemon still watches both roots
	cp two-roots.conf "$CONF" &&
	echo 6 >"$SPOOL2/v/6." &&
	echo z >"$SPOOL/u/z." &&
	backup c1 &&
	printf "%s\n" "$SPOOL2/v/6." "$SPOOL/u/z." | sort >expect &&
	test_cmp expect list.out
'

expect_success 'SIGHUP changing the journal is refused' '
	write_config "root = $SPOOL2" "journal = $STATE/other.db" &&
	hup_and_wait "reload refused" &&
	grep "reload refused: key .journal. changed" "$DAEMON_LOG" &&
	cp two-roots.conf "$CONF" &&
	pid_alive "$DAEMON_PID" &&
	! test -e "$STATE/other.db" &&
	echo 7 >"$SPOOL2/v/7." &&
	backup c1 &&
	echo "$SPOOL2/v/7." >expect &&
	test_cmp expect list.out
'

expect_success 'SIGHUP with a removed root: its changes are no longer listed' '
	# journaled before the removal, not yet backed up
	echo before >>"$SPOOL2/v/7." &&
	chj sync &&
	chj query --under "$SPOOL2/v/7." | grep -F "$SPOOL2/v/7." &&
	cp one-root.conf "$CONF" &&
	hup_and_wait "reload done: 1 roots" &&
	grep "root .$SPOOL2. removed" "$DAEMON_LOG" &&
	echo 8 >"$SPOOL2/v/8." &&
	echo more >>"$SPOOL2/v/w/3." &&
	mkdir "$SPOOL2/v/w/deeper" &&
	echo 9 >"$SPOOL2/v/w/deeper/9." &&
	echo w >"$SPOOL/u/w." &&
	backup c1 &&
	echo "$SPOOL/u/w." >expect &&
	test_cmp expect list.out &&
	chj query --under "$SPOOL2/v/8." >q.out &&
	test_cmp /dev/null q.out &&
	chj query --under "$SPOOL2/v/w/deeper" >q.out &&
	test_cmp /dev/null q.out
'

expect_success 'SIGHUP with new excludes: excluded paths are no longer listed' '
	backup c1 &&
	test_cmp /dev/null list.out &&
	write_config "exclude = \\.tmp\$" &&
	hup_and_wait "reload done: 1 roots" &&
	grep "root .$SPOOL. has new excludes" "$DAEMON_LOG" &&
	echo t >"$SPOOL/u/t.tmp" &&
	echo n >"$SPOOL/u/n." &&
	backup c1 &&
	# everything below the root counts as changed (a consumer may not have
	# all of it under the new rules), except what is now excluded
	find "$SPOOL" -type f ! -name "*.tmp" | sort >expect &&
	test_cmp expect list.out &&
	echo more >>"$SPOOL/u/t.tmp" &&
	echo more >>"$SPOOL/u/n." &&
	backup c1 &&
	echo "$SPOOL/u/n." >expect &&
	test_cmp expect list.out
'

expect_success 'a root added while the daemon is down: its files count as new' '
	stop_daemon &&
	mkdir -p "$TRASH/spool3/q" &&
	echo 3 >"$TRASH/spool3/q/3." &&
	write_config "root = $TRASH/spool3" &&
	start_daemon &&
	grep "root .$TRASH/spool3. is new to this journal" "$DAEMON_LOG" &&
	backup c1 &&
	grep -x incremental mode.out &&
	in_list "$TRASH/spool3/q/3." &&
	! grep -F "$SPOOL2" list.out
'

expect_success 'the daemon still runs and stops cleanly after the reloads' '
	chj status >status.out &&
	grep "^daemon: *running (pid $DAEMON_PID," status.out &&
	stop_daemon
'

test_done
