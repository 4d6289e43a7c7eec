#!/bin/bash
# t0225-restart-in-place: SIGUSR2 re-executes chjournald
# with its kernel state handed over: the same pid, the lock never let go, no
# crawl and no rescan record; every change made while it restarts (files and
# new directories written in a loop across several restarts) is listed; a new
# program file at the same path is the one that runs after it. A restart that
# cannot be handed over (a program that cannot take the state) starts afresh
# with a rescan, and one that cannot happen at all (a broken configuration,
# no program file) is refused while the daemon goes on. Under --daemon the
# pid, the pid file and the --log-file are kept.
. "$(dirname "$0")/test-lib.sh"

mkdir -p "$SPOOL/u/a" "$SPOOL/u/b" "$SPOOL/quiet/d" "$TRASH/bin"
echo 1 >"$SPOOL/u/a/1."
echo q >"$SPOOL/quiet/d/q."

# log_count PATTERN: lines of the daemon log matching PATTERN
log_count() {
	grep -c -- "$1" "$DAEMON_LOG" || :
}

log_count_is() {
	[ "$(log_count "$1")" -ge "$2" ]
}

# daemon_alive: the daemon runs (a zombie, not reaped yet, has exited)
daemon_alive() {
	[ -e "/proc/$DAEMON_PID" ] &&
	[ "$(sed 's/.*) \(.\).*/\1/' "/proc/$DAEMON_PID/stat" 2>/dev/null)" != Z ]
}

# restarted_or_gone N: the log says N restarts, or the daemon is gone
restarted_or_gone() {
	log_count_is "restarted in place" "$1" || ! daemon_alive
}

# restart_and_wait: SIGUSR2, then wait until the restarted process is ready
restart_and_wait() {
	_n=$(log_count "restarted in place")
	daemon_alive && kill -USR2 "$DAEMON_PID" &&
	wait_for 30 restarted_or_gone $((_n + 1)) &&
	daemon_alive &&
	wait_for 30 daemon_ready
}

# no_startup_rescan: the journal holds no rescan record of a start
no_startup_rescan() {
	chj query >query.out &&
	if grep -F "daemon was not running" query.out; then
		echo "a restart recorded a rescan" >&2
		return 1
	fi
}

# second_daemon_refused PROGRAM: a second daemon started on the journal is
# refused at once, naming the running one (bounded: a daemon that does start
# would run on)
second_daemon_refused() {
	timeout 10 "$1" -c "$CONF" 2>second.err
	_rc=$?
	[ "$_rc" -eq 1 ] && grep "another chjournald (pid $DAEMON_PID) is running" second.err
}

fd_count() {
	ls "/proc/$DAEMON_PID/fd" | wc -l
}

# the daemon runs from a copy of the program: the tests replace it
cp "$CHJOURNALD" "$TRASH/bin/chjournald"
CHJOURNALD="$TRASH/bin/chjournald"

expect_success 'setup: daemon runs, c1 has a committed run' '
	start_daemon &&
	backup c1 && grep "^full:" mode.out &&
	backup c1 && grep -x incremental mode.out && test_cmp /dev/null list.out
'

expect_success 'SIGUSR2: same pid, state handed over, no crawl, no rescan' '
	pid=$DAEMON_PID &&
	fds=$(fd_count) &&
	echo before >"$SPOOL/u/a/before." &&
	restart_and_wait &&
	kill -0 "$pid" && test "$DAEMON_PID" = "$pid" &&
	chj status >status.out &&
	grep "^daemon: *running (pid $pid," status.out &&
	grep "restarted in place (from chjournald .*: the $CHJ_BACKEND state handed over" "$DAEMON_LOG" &&
	! grep "covered by a rescan" "$DAEMON_LOG" &&
	test "$(fd_count)" = "$fds" &&
	echo after >"$SPOOL/u/a/after." &&
	chj sync && no_startup_rescan &&
	backup c1 && grep -x incremental mode.out &&
	printf "%s\n" "$SPOOL/u/a/after." "$SPOOL/u/a/before." >expect &&
	test_cmp expect list.out
'

expect_success 'the lock is kept: a second daemon is refused after the restart' '
	second_daemon_refused "$CHJOURNALD"
'

# writer: files and new directories as fast as it can until the stop file
# appears (at most 50000); each directory gets a file at once (made before
# its watch exists unless the new directory is journaled whole)
writer() {
	_i=0
	while [ ! -e "$TRASH/stop" ] && [ "$_i" -lt 50000 ]; do
		echo "$_i" >"$SPOOL/u/b/f$_i."
		if [ $((_i % 50)) -eq 0 ]; then
			mkdir "$SPOOL/u/b/d$_i" && echo "$_i" >"$SPOOL/u/b/d$_i/m$_i."
		fi
		_i=$((_i + 1))
	done
	echo "$_i" >"$TRASH/written"
}

# second_daemons: tries to start a second daemon until the stop file
# appears; each attempt must be refused by the lock at once
second_daemons() {
	while [ ! -e "$TRASH/stop" ]; do
		timeout 10 "$CHJOURNALD" -c "$CONF" 2>>second.err
		echo $? >>second.rc
	done
}

expect_success 'changes made while it restarts, over and over, are all listed' '
	rm -f "$TRASH/stop" second.rc second.err &&
	writer &
	wpid=$!
	second_daemons &
	spid=$!
	ok=1
	for n in 1 2 3 4 5; do
		restart_and_wait || ok=0
	done
	touch "$TRASH/stop"
	wait "$wpid" && wait "$spid" && test "$ok" = 1 &&
	echo "written: $(cat "$TRASH/written") files; second daemons refused: $(wc -l <second.rc)" &&
	test "$(sort -u second.rc)" = 1 &&
	! grep -v "another chjournald" second.err &&
	chj sync && no_startup_rescan &&
	backup c1 && grep -x incremental mode.out &&
	find "$SPOOL/u/b" -type f | sort >expect &&
	grep "^$SPOOL/u/b/" list.out >got &&
	test_cmp expect got &&
	! grep "^$SPOOL/quiet/" list.out
'

expect_success 'a new program file at the same path is the one that runs after it' '
	pid=$DAEMON_PID &&
	cp "$CHJOURNALD" "$TRASH/bin/.new" && mv "$TRASH/bin/.new" "$CHJOURNALD" &&
	readlink "/proc/$pid/exe" | grep -F "(deleted)" &&
	restart_and_wait &&
	test "$DAEMON_PID" = "$pid" &&
	readlink "/proc/$pid/exe" >exe.out &&
	! grep -F "(deleted)" exe.out &&
	test "$(stat -L -c %i "/proc/$pid/exe")" = "$(stat -c %i "$CHJOURNALD")" &&
	echo new >"$SPOOL/u/a/new." &&
	chj sync && no_startup_rescan &&
	backup c1 && test_cmp - list.out <<-EOF
	$SPOOL/u/a/new.
	EOF
'

expect_success 'what changes before the next process reads the queue is read by it' '
	mkdir -p "$SPOOL/u/a/sub/deep" &&
	echo s >"$SPOOL/u/a/sub/s." && echo d >"$SPOOL/u/a/sub/deep/d." &&
	echo g >"$SPOOL/u/a/gone." &&
	backup c1 &&
	cp "$CHJOURNALD" "$TRASH/bin/chjournald-real" &&
	cat >"$TRASH/bin/.new" <<-EOF &&
	#!/bin/bash
	# holds the restart (the lock and the kernel descriptor open, the
	# daemon not reading) until the test says go
	touch "$TRASH/paused"
	while [ ! -e "$TRASH/go" ]; do sleep 0.05; done
	exec -a "\$0" "$TRASH/bin/chjournald-real" "\$@"
	EOF
	chmod +x "$TRASH/bin/.new" && mv "$TRASH/bin/.new" "$CHJOURNALD" &&
	rm -f "$TRASH/paused" "$TRASH/go" &&
	n=$(log_count "restarted in place") &&
	daemon_alive && kill -USR2 "$DAEMON_PID" &&
	wait_for 30 test -e "$TRASH/paused" &&
	second_daemon_refused "$TRASH/bin/chjournald-real" &&
	mv "$SPOOL/u/a/sub" "$SPOOL/u/a/sub2" &&
	echo s2 >"$SPOOL/u/a/sub2/deep/d2." &&
	mkdir -p "$SPOOL/u/n/x/y" && echo f >"$SPOOL/u/n/x/y/f." &&
	echo more >>"$SPOOL/u/a/1." &&
	rm "$SPOOL/u/a/gone." &&
	echo c >"$SPOOL/u/a/created." &&
	touch "$TRASH/go" &&
	wait_for 30 log_count_is "restarted in place" $((n + 1)) &&
	mv "$TRASH/bin/chjournald-real" "$CHJOURNALD" &&
	chj sync && no_startup_rescan &&
	chj begin c1 >mode.out && grep -x incremental mode.out &&
	chj list c1 >list.out && chj list c1 --deleted >deleted.out && chj commit c1 &&
	printf "%s\n" "$SPOOL/u/a/1." "$SPOOL/u/a/created." "$SPOOL/u/a/sub2/deep/d." \
		"$SPOOL/u/a/sub2/deep/d2." "$SPOOL/u/a/sub2/s." "$SPOOL/u/n/x/y/f." >expect &&
	test_cmp expect list.out &&
	printf "%s\n" "$SPOOL/u/a/gone." "$SPOOL/u/a/sub" >expect &&
	test_cmp expect deleted.out
'

expect_success 'a broken configuration: the restart is refused, the daemon goes on' '
	cp "$CONF" conf.good &&
	echo "bogus_key = 1" >>"$CONF" &&
	n=$(log_count "restart refused") &&
	daemon_alive && kill -USR2 "$DAEMON_PID" &&
	wait_for 20 log_count_is "restart refused" $((n + 1)) &&
	cp conf.good "$CONF" &&
	kill -0 "$DAEMON_PID" &&
	echo still >"$SPOOL/u/a/still." &&
	backup c1 && in_list "$SPOOL/u/a/still."
'

expect_success 'no program file: the restart is refused, the daemon goes on' '
	mv "$CHJOURNALD" "$TRASH/bin/moved" &&
	n=$(log_count "restart refused") &&
	daemon_alive && kill -USR2 "$DAEMON_PID" &&
	wait_for 20 log_count_is "restart refused" $((n + 1)) &&
	mv "$TRASH/bin/moved" "$CHJOURNALD" &&
	grep "restart refused, the daemon goes on: cannot execute .$CHJOURNALD." "$DAEMON_LOG" &&
	echo still2 >"$SPOOL/u/a/still2." &&
	backup c1 && in_list "$SPOOL/u/a/still2."
'

expect_success 'a program that cannot take the state starts afresh with a rescan' '
	pid=$DAEMON_PID &&
	cp "$CHJOURNALD" "$TRASH/bin/chjournald-real" &&
	: >"$TRASH/empty" &&
	cat >"$TRASH/bin/.new" <<-EOF &&
	#!/bin/bash
	# spoils the hand-over: its state descriptor reads an empty file
	fd=\$(echo "\$CHJ_HANDOVER" | sed -n "s/^state=\\([0-9]*\\) .*/\\1/p")
	[ -n "\$fd" ] && eval "exec \$fd<\"$TRASH/empty\""
	exec -a "\$0" "$TRASH/bin/chjournald-real" "\$@"
	EOF
	chmod +x "$TRASH/bin/.new" && mv "$TRASH/bin/.new" "$CHJOURNALD" &&
	n=$(log_count "starting afresh") &&
	daemon_alive && kill -USR2 "$DAEMON_PID" &&
	echo during >"$SPOOL/u/a/during." &&
	wait_for 30 log_count_is "starting afresh" $((n + 1)) &&
	wait_for 30 daemon_ready &&
	grep "restart in place: the hand-over is refused (malformed state at byte 0: truncated): starting afresh" "$DAEMON_LOG" &&
	test "$DAEMON_PID" = "$pid" && kill -0 "$pid" &&
	second_daemon_refused "$TRASH/bin/chjournald-real" &&
	chj sync && chj query >query.out &&
	grep -F "daemon was not running)	$SPOOL" query.out &&
	backup c1 && in_list "$SPOOL/u/a/during." &&
	mv "$TRASH/bin/chjournald-real" "$CHJOURNALD"
'

expect_success 'a root added before SIGUSR2 is watched after it, listed whole' '
	mkdir -p "$TRASH/spool2/v" && echo v >"$TRASH/spool2/v/v." &&
	cp "$CONF" conf.one && echo "root = $TRASH/spool2" >>"$CONF" &&
	restart_and_wait &&
	grep "root .$TRASH/spool2. added: everything below it counts as changed" "$DAEMON_LOG" &&
	echo w >"$TRASH/spool2/v/w." &&
	chj sync && chj query >query.out &&
	! grep -F "daemon was not running)	$SPOOL" query.out &&
	backup c1 && in_list "$TRASH/spool2/v/v." && in_list "$TRASH/spool2/v/w." &&
	! grep "^$SPOOL/" list.out &&
	cp conf.one "$CONF" && restart_and_wait
'

expect_success 'stops cleanly after the restarts' '
	stop_daemon
'

daemon_crawling() {
	chj status | grep -q "^daemon: .*crawling"
}

daemon_running_as() {
	chj status | grep -q "^daemon: *running (pid $1,"
}

# exe_is INODE: the daemon runs the program file of that inode
exe_is() {
	test "$(stat -L -c %i "/proc/$DAEMON_PID/exe")" = "$1"
}

# rescans_of_start: the rescan records of a start in the journal
rescans_of_start() {
	chj query | grep -c -F "daemon was not running)	$SPOOL" || :
}

expect_success_inotify 'SIGUSR2 during the crawl: the crawl is finished first, then handed over' '
	mkdir -p "$SPOOL/crawl" &&
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		mkdir -p "$SPOOL/crawl/d$i/e" || return 1
	done
	: >"$DAEMON_LOG"
	CHJ_TEST_CRAWL_DELAY_MS=50 "$CHJOURNALD" -c "$CONF" -v 2>>"$DAEMON_LOG" &
	DAEMON_PID=$!
	wait_for 30 daemon_crawling &&
	n=$(rescans_of_start) &&
	restart_and_wait &&
	grep "restart: $(find "$SPOOL" -type d | wc -l) directories watched" "$DAEMON_LOG" &&
	echo e >"$SPOOL/crawl/d20/e/deep." &&
	chj sync && test "$(rescans_of_start)" = "$n" &&
	backup c1 && in_list "$SPOOL/crawl/d20/e/deep." &&
	stop_daemon
'

# restarted_in_log: the --log-file says the restart in place happened
restarted_in_log() {
	grep -q "restarted in place (from chjournald .*no rescan" "$TRASH/daemon.log"
}

expect_success 'with --daemon: the same pid, pid file and log file, the new program runs, not detached again' '
	: >"$DAEMON_LOG" &&
	"$CHJOURNALD" -c "$CONF" --daemon --pidfile "$TRASH/chjournald.pid" \
		--log-file "$TRASH/daemon.log" &&
	wait_for 30 test -s "$TRASH/chjournald.pid" &&
	DAEMON_PID=$(cat "$TRASH/chjournald.pid") &&
	wait_for 30 daemon_alive &&
	wait_for 30 daemon_running_as "$DAEMON_PID" &&
	n=$(rescans_of_start) &&
	cp "$CHJOURNALD" "$TRASH/bin/.new" && mv "$TRASH/bin/.new" "$CHJOURNALD" &&
	ino=$(stat -c %i "$CHJOURNALD") &&
	kill -USR2 "$DAEMON_PID" &&
	wait_for 30 exe_is "$ino" &&
	test "$(cat "$TRASH/chjournald.pid")" = "$DAEMON_PID" &&
	wait_for 30 restarted_in_log &&
	tr "\0" " " <"/proc/$DAEMON_PID/cmdline" | grep -F -- "--log-file $TRASH/daemon.log" &&
	echo detached >"$SPOOL/u/a/detached." &&
	chj sync && test "$(rescans_of_start)" = "$n" &&
	backup c1 && in_list "$SPOOL/u/a/detached." &&
	kill -TERM "$DAEMON_PID" &&
	wait_for 30 eval "! daemon_alive" &&
	DAEMON_PID= &&
	! test -e "$TRASH/chjournald.pid"
'

test_done
