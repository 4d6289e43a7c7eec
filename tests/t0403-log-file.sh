#!/bin/bash
# t0403-log-file: chjournald --log-file: the log in a file of its own, in the
# foreground or with --daemon (which otherwise logs to syslog only), reopened
# on SIGHUP so that logrotate can move it away; the options it refuses.
. "$(dirname "$0")/test-lib.sh"

LOG="$TRASH/log/chjournald.log"
PIDFILE="$TRASH/run/chjournald.pid"
mkdir -p "$TRASH/log" "$TRASH/run" "$SPOOL/u"

pid_gone() {
	[ ! -e "/proc/$1" ] || [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# log_has FILE PATTERN: FILE has a line matching PATTERN
log_has() {
	grep -q -- "$2" "$1" 2>/dev/null
}

# log_count_is FILE PATTERN N: FILE has N lines matching PATTERN, or more
log_count_is() {
	[ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "$3" ]
}

expect_success '--help names --log-file' '
	"$CHJOURNALD" --help >out &&
	grep -- "--log-file FILE" out
'

expect_success 'a relative --log-file, or one with --syslog, is a usage error' '
	test_expect_code 2 "$CHJOURNALD" -c "$CONF" --log-file rel.log 2>err.out &&
	grep "log-file .rel.log. must be an absolute path" err.out &&
	test_expect_code 2 "$CHJOURNALD" -c "$CONF" --log-file "$LOG" --syslog 2>err.out &&
	grep "do not go together" err.out &&
	! test -e "$LOG" && ! test -e "$STATE/journal.db"
'

expect_success 'a log file that cannot be opened: exit 1, said on stderr' '
	test_expect_code 1 "$CHJOURNALD" -c "$CONF" --log-file "$TRASH/nodir/x.log" 2>err.out &&
	grep "cannot open log file .$TRASH/nodir/x.log.: No such file or directory" err.out
'

expect_success 'in the foreground: the log goes to the file, nothing to stderr' '
	"$CHJOURNALD" -c "$CONF" --log-file "$LOG" 2>fg.err &
	DAEMON_PID=$! &&
	wait_for 30 log_has "$LOG" "ready:" &&
	log_has "$LOG" "^[0-9-]*T[0-9:]* chjournald: info: starting: journal" &&
	test "$(stat -c %a "$LOG")" = 640 &&
	stop_daemon &&
	log_has "$LOG" "stopped cleanly" &&
	test_cmp /dev/null fg.err
'

expect_success '--daemon --log-file: the detached daemon logs to the file (appended)' '
	n0=$(wc -l <"$LOG") &&
	"$CHJOURNALD" -c "$CONF" --daemon --pidfile "$PIDFILE" --log-file "$LOG" >out 2>err.out &&
	test_cmp /dev/null out && test_cmp /dev/null err.out &&
	wait_for 20 test -s "$PIDFILE" &&
	DAEMON_PID=$(cat "$PIDFILE") &&
	# the foreground daemon above logged the first "ready:"
	wait_for 30 log_count_is "$LOG" "ready:" 2 &&
	test "$(wc -l <"$LOG")" -gt "$n0"
'

expect_success 'SIGHUP reopens the log: logrotate moved it away, a new file is written' '
	mv "$LOG" "$LOG.1" &&
	cp "$LOG.1" rotated.before &&
	echo x >"$SPOOL/u/x." &&
	kill -HUP "$DAEMON_PID" &&
	wait_for 20 log_has "$LOG" "reload done" &&
	log_has "$LOG" "SIGHUP: reloading" &&
	! log_has "$LOG.1" "SIGHUP: reloading" &&
	chj sync &&
	kill -TERM "$DAEMON_PID" &&
	wait_for 20 pid_gone "$DAEMON_PID" &&
	DAEMON_PID= &&
	log_has "$LOG" "SIGTERM received" &&
	log_has "$LOG" "stopped cleanly" &&
	# nothing more went to the file moved away
	test_cmp rotated.before "$LOG.1"
'

expect_success 'SIGHUP with the log directory gone: the old file is kept, the daemon goes on' '
	"$CHJOURNALD" -c "$CONF" --log-file "$LOG" 2>fg.err &
	DAEMON_PID=$! &&
	wait_for 30 log_has "$LOG" "ready:" &&
	mv "$TRASH/log" "$TRASH/log.old" &&
	kill -HUP "$DAEMON_PID" &&
	wait_for 20 log_has "$TRASH/log.old/chjournald.log" "cannot reopen the log file: No such file or directory" &&
	chj status | grep "^daemon: *running" &&
	stop_daemon &&
	mv "$TRASH/log.old" "$TRASH/log"
'

# contrib/logrotate/chjournal itself, its paths pointed into the test
if ! command -v logrotate >/dev/null; then
	test_skip 'logrotate rotates the log and the daemon writes the new one' 'no logrotate'
elif [ "$(id -u)" != 0 ]; then
	test_skip 'logrotate rotates the log and the daemon writes the new one' 'needs root (create root adm)'
else
	expect_success 'logrotate rotates the log and the daemon writes the new one' '
		sed -e "s|/var/log/chjournald.log|$LOG|" -e "s|/run/chjournald.pid|$PIDFILE|" \
		    -e "s|/var/log/chjournal-|$TRASH/log/chjournal-|g" \
		    "$CHJ_SRCDIR/contrib/logrotate/chjournal" >logrotate.conf &&
		chmod 644 logrotate.conf &&
		echo "hook line" >"$TRASH/log/chjournal-bacula.log" &&
		rm -f "$LOG" "$LOG".* &&
		"$CHJOURNALD" -c "$CONF" --daemon --pidfile "$PIDFILE" --log-file "$LOG" &&
		wait_for 20 test -s "$PIDFILE" &&
		DAEMON_PID=$(cat "$PIDFILE") &&
		wait_for 30 log_has "$LOG" "ready:" &&
		logrotate -f -s "$TRASH/logrotate.state" logrotate.conf &&
		test -s "$LOG.1" &&
		test -s "$TRASH/log/chjournal-bacula.log.1" &&
		wait_for 20 log_has "$LOG" "SIGHUP: reloading" &&
		wait_for 20 log_has "$LOG" "reload done" &&
		test "$(stat -c "%a %U %G" "$LOG")" = "640 root adm" &&
		kill -TERM "$DAEMON_PID" &&
		wait_for 20 pid_gone "$DAEMON_PID" &&
		DAEMON_PID= &&
		log_has "$LOG" "stopped cleanly" &&
		! log_has "$LOG.1" "stopped cleanly"
	'
fi

test_done
