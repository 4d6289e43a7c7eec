#!/bin/bash
# t0404-selfcheck: `chjournald -t` and `chjournal check`: the configuration
# (every error, one line each, naming FILE:LINE and the key) and the machine
# (roots, the directories below them against fs.inotify.max_user_watches,
# what backend = auto would pick, the journal, the consumers); exit 0 with
# warnings, 1 with an error; -q; the systemd unit's reload runs it first.
. "$(dirname "$0")/test-lib.sh"

mkdir -p "$SPOOL/u/a/b" "$SPOOL/u/c" "$SPOOL/v"
echo 1 >"$SPOOL/u/a/1."
SYS="$TRASH/sys"
mkdir -p "$SYS/fs/inotify"

# fake_sysctls WATCHES: the inotify limits -t reads (CHJ_TEST_SYSCTL_DIR)
fake_sysctls() {
	echo "$1" >"$SYS/fs/inotify/max_user_watches"
	echo 100000 >"$SYS/fs/inotify/max_user_instances"
	echo 16384 >"$SYS/fs/inotify/max_queued_events"
}

expect_success '-t on a good configuration: ok lines, a passed summary, exit 0' '
	"$CHJOURNALD" -c "$CONF" -t >out 2>err.out &&
	test_cmp /dev/null err.out &&
	grep "^ok: $CONF: the configuration is valid: 1 root, 0 excludes, backend $CHJ_BACKEND\$" out &&
	grep "^ok: $CONF:[0-9]*: key .root.: .$SPOOL.: a readable directory on .*; 5 directories below it" out &&
	grep "^ok: .*journal.db. does not exist yet: the daemon creates it" out &&
	grep "^chjournald: test of .$CONF. passed: 0 errors, 0 warnings\$" out &&
	! grep -v "^ok: \|^chjournald: " out &&
	! test -e "$STATE/journal.db"
'

expect_success '-t -q prints nothing when all is fine; -q alone is a usage error' '
	"$CHJOURNALD" -c "$CONF" -t -q >out &&
	test_cmp /dev/null out &&
	test_expect_code 2 "$CHJOURNALD" -c "$CONF" -q 2>err.out &&
	grep "^usage: chjournald" err.out
'

expect_success '-t names every error of the file, one line each, and exits 1' '
	cp "$CONF" good.conf &&
	printf "%s\n" "root = relative/spool" "batch_size = 0" "colour = blue" >>"$CONF" &&
	n=$(wc -l <good.conf) &&
	test_expect_code 1 "$CHJOURNALD" -c "$CONF" -t >out &&
	grep -x "error: $CONF:$((n + 1)): key .root.: .relative/spool. is not an absolute path" out &&
	grep -x "error: $CONF:$((n + 2)): key .batch_size.: .0. is not a number from 1 to 10000000" out &&
	grep -x "error: $CONF:$((n + 3)): key .colour.: unknown key" out &&
	test "$(grep -c "^error: " out)" -eq 3 &&
	! grep "^ok: " out &&
	grep "^chjournald: test of .$CONF. failed: 3 errors, 0 warnings\$" out &&
	# -q keeps the errors and the summary
	test_expect_code 1 "$CHJOURNALD" -c "$CONF" -t -q >out.q &&
	test_cmp out out.q &&
	cp good.conf "$CONF"
'

expect_success 'a missing root is a warning (exit 0)' '
	write_config "root = $TRASH/gone" &&
	"$CHJOURNALD" -c "$CONF" -t >out &&
	grep "^warning: $CONF:[0-9]*: key .root.: .$TRASH/gone. is missing (No such file or directory): not an error" out &&
	grep "passed: 0 errors, 1 warning\$" out &&
	write_config
'

expect_success 'fewer inotify watches than directories: an error naming the sysctl' '
	fake_sysctls 3 &&
	if [ "$CHJ_BACKEND" = inotify ]; then
		test_expect_code 1 env CHJ_TEST_SYSCTL_DIR="$SYS" "$CHJOURNALD" -c "$CONF" -t >out &&
		grep "^error: fs.inotify.max_user_watches = 3 is less than the 6 directories under the roots plus the [0-9,]* watches" out &&
		grep "sysctl -w fs.inotify.max_user_watches=" out
	fi &&
	fake_sysctls 100000000 &&
	CHJ_TEST_SYSCTL_DIR="$SYS" "$CHJOURNALD" -c "$CONF" -t >out &&
	if [ "$CHJ_BACKEND" = inotify ]; then
		grep "^ok: fs.inotify.max_user_watches = 100,000,000: enough for the 6 directories" out
	fi
'

expect_success 'an excluded directory is not counted' '
	write_config "exclude = /u/a\$" &&
	"$CHJOURNALD" -c "$CONF" -t >out &&
	grep "key .root.: .$SPOOL.: .*; 3 directories below it (not excluded)" out &&
	write_config
'

expect_success 'with the daemon running: -t and check name it; check passes' '
	start_daemon &&
	backup c1 &&
	"$CHJOURNALD" -c "$CONF" -t >out &&
	grep "^ok: .*: a journal of schema 1, id [0-9a-f]*, last seq" out &&
	grep "^ok: .*: a daemon runs on it (pid $DAEMON_PID)" out &&
	grep "^ok: .*consumers.: 1 consumers (0 with an open run)" out &&
	chj check >out.check &&
	grep "^ok: .*: a daemon runs on it (pid $DAEMON_PID)" out.check &&
	grep "^chjournal: check of .$CONF. passed: 0 errors, 0 warnings\$" out.check
'

expect_success 'a reload as the systemd unit makes it: a configuration with an error is not sent' '
	# the unit: ExecReload=chjournald -t -q, then ExecReload=kill -HUP
	grep -x "ExecReload=/usr/sbin/chjournald -t -q" "$CHJ_SRCDIR/contrib/systemd/chjournald.service" &&
	grep -A1 -x "ExecReload=/usr/sbin/chjournald -t -q" "$CHJ_SRCDIR/contrib/systemd/chjournald.service" |
		grep -x "ExecReload=/bin/kill -HUP \$MAINPID" &&
	cp "$CONF" good.conf &&
	echo "batch_size = lots" >>"$CONF" &&
	! { "$CHJOURNALD" -c "$CONF" -t -q >out && kill -HUP "$DAEMON_PID"; } &&
	grep "^error: $CONF:[0-9]*: key .batch_size.: .lots. is not a number" out &&
	! grep "SIGHUP" "$DAEMON_LOG" &&
	cp good.conf "$CONF" &&
	"$CHJOURNALD" -c "$CONF" -t -q >out && kill -HUP "$DAEMON_PID" &&
	wait_for 20 grep -q "reload done" "$DAEMON_LOG"
'

expect_success 'check with no daemon: a warning (begin covers the gap, sync fails)' '
	stop_daemon &&
	chj check >out &&
	grep "^warning: .*: no daemon runs on it: begin covers" out &&
	grep "passed: 0 errors, 1 warning\$" out
'

expect_success 'a journal that is not one: an error' '
	mv "$STATE/journal.db" "$TRASH/journal.saved" &&
	mv "$STATE/journal.db-wal" "$TRASH/journal.saved-wal" &&
	mv "$STATE/journal.db-shm" "$TRASH/journal.saved-shm" &&
	echo "not a database, not at all, this is text" >"$STATE/journal.db" &&
	test_expect_code 1 "$CHJOURNALD" -c "$CONF" -t >out &&
	grep "^error: .*journal.db.*the daemon cannot use it" out &&
	rm -f "$STATE/journal.db" "$STATE/journal.db-wal" "$STATE/journal.db-shm" &&
	mv "$TRASH/journal.saved" "$STATE/journal.db" &&
	mv "$TRASH/journal.saved-wal" "$STATE/journal.db-wal" &&
	mv "$TRASH/journal.saved-shm" "$STATE/journal.db-shm"
'

expect_success 'help check; check takes no arguments' '
	chj help check >out &&
	grep "^usage: chjournal check" out &&
	test_expect_code 2 chj check extra 2>err.out &&
	grep "^usage: chjournal check" err.out
'

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1 && [ "$CHJ_BACKEND" = inotify ]; then
	expect_success 'fanotify without CAP_SYS_ADMIN: an error for backend = fanotify, inotify for auto' '
		write_config "backend = fanotify" &&
		test_expect_code 1 setpriv --bounding-set=-sys_admin "$CHJOURNALD" -c "$CONF" -t >out &&
		grep "^error: $CONF:[0-9]*: key .backend.: fanotify is refused here (as this process): .*CAP_SYS_ADMIN" out &&
		write_config "backend = auto" &&
		setpriv --bounding-set=-sys_admin "$CHJOURNALD" -c "$CONF" -t >out &&
		grep "^ok: $CONF:[0-9]*: key .backend.: auto would use inotify: .*CAP_SYS_ADMIN" out &&
		grep "^ok: fs.inotify.max_user_watches" out &&
		write_config
	'
	chmod 0755 "$TRASH"
	if setpriv --reuid=nobody --regid=nogroup --clear-groups "$CHJOURNAL" --version >/dev/null 2>&1; then
		expect_success 'check as a user who cannot write in the root: an error (sync cookies)' '
			test_expect_code 1 setpriv --reuid=nobody --regid=nogroup --clear-groups \
			    "$CHJOURNAL" -c "$CONF" check >out &&
			grep "^error: $CONF:[0-9]*: key .root.: .$SPOOL. is not writable by this user (Permission denied): begin and sync create their sync cookies" out
		'
	fi
else
	test_skip 'fanotify without CAP_SYS_ADMIN; check as another user' 'needs root, setpriv, the inotify pass'
fi

test_done
