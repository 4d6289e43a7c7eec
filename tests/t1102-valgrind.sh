#!/bin/bash
# t1102-valgrind: valgrind finds no memory errors and no leaks (definite or
# indirect) in a daemon run of more than a thousand events (creates, writes,
# renames of files and directories, mkdir -p, deletes, a reload, a sync and a
# backup), ended by SIGTERM; nor in the agent commands (begin, list, commit,
# abort, sync, query, status in its three formats, consumers, forget).
# Skipped without valgrind, and on a sanitizer build (valgrind cannot run
# ASan-instrumented programs).
. "$(dirname "$0")/test-lib.sh"

command -v valgrind >/dev/null 2>&1 || skip_all "valgrind is not installed"
for prog in "$CHJOURNALD" "$CHJOURNAL"; do
	if ldd "$prog" 2>/dev/null | grep -q 'lib[at]san\|libubsan' ||
	   nm "$prog" 2>/dev/null | grep -q '__asan_init\|__tsan_init\|__msan_init'; then
		skip_all "$(basename "$prog") is built with a sanitizer: valgrind cannot run it"
	fi
done
valgrind --error-exitcode=99 true >/dev/null 2>&1 ||
	skip_all "valgrind does not work here"

VG_OPTS="--leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-fds=no"

# vg_check LOG: the valgrind log reports no error and no lost bytes
vg_check() {
	grep -q "ERROR SUMMARY: 0 errors" "$1" || { echo "$1:"; cat "$1"; return 1; }
	if grep -E "(definitely|indirectly) lost: [1-9]" "$1"; then
		cat "$1"
		return 1
	fi
	if grep -q "Invalid \(read\|write\|free\)\|uninitialised\|Mismatched free" "$1"; then
		cat "$1"
		return 1
	fi
}

# vchj ARGS...: the agent under valgrind, stdout in vchj.out, stderr in
# vchj.err, valgrind's report in vg-agent-N.log; fails on a valgrind error
# (exit 99) and returns the command's own status otherwise.
vg_n=0
vchj() {
	vg_n=$((vg_n + 1))
	_vlog="$TRASH/vg-agent-$vg_n.log"
	# shellcheck disable=SC2086
	valgrind $VG_OPTS --log-file="$_vlog" "$CHJOURNAL" -c "$CONF" "$@" >vchj.out 2>vchj.err
	_vrc=$?
	if [ "$_vrc" -eq 99 ] || ! vg_check "$_vlog"; then
		echo "valgrind: chjournal $* (exit $_vrc):"
		cat "$_vlog" vchj.err
		return 99
	fi
	return "$_vrc"
}

# start_vg_daemon: chjournald under valgrind (the test-lib's start_daemon,
# with valgrind in front)
start_vg_daemon() {
	: >"$DAEMON_LOG"
	# shellcheck disable=SC2086
	valgrind $VG_OPTS --log-file="$TRASH/vg-daemon.log" \
		"$CHJOURNALD" -c "$CONF" -v 2>>"$DAEMON_LOG" &
	DAEMON_PID=$!
	if ! wait_for 60 daemon_ready; then
		echo "daemon not ready under valgrind; log:"
		cat "$DAEMON_LOG" "$TRASH/vg-daemon.log"
		return 1
	fi
}

mkdir -p "$SPOOL/user/seed"
for i in 1 2 3; do echo "$i" >"$SPOOL/user/seed/$i."; done

expect_success 'chjournald starts under valgrind' '
	start_vg_daemon
'

expect_success 'more than a thousand events: creates, writes, renames, mkdir -p, deletes' '
	for d in 1 2 3 4 5; do
		mkdir -p "$SPOOL/user/u$d/INBOX/sub/deeper" &&
		for i in $(seq 1 30); do
			f="$SPOOL/user/u$d/INBOX/$i." &&
			echo "mail $i" >"$f" &&
			echo "more" >>"$f" &&
			mv "$f" "$SPOOL/user/u$d/INBOX/sub/$i." &&
			chmod 600 "$SPOOL/user/u$d/INBOX/sub/$i." || return 1
		done &&
		mv "$SPOOL/user/u$d/INBOX/sub" "$SPOOL/user/u$d/Archive" &&
		for i in $(seq 1 10); do
			rm "$SPOOL/user/u$d/Archive/$i." || return 1
		done &&
		mkdir -p "$SPOOL/user/u$d/tmp/a/b/c" &&
		echo x >"$SPOOL/user/u$d/tmp/a/b/c/x" &&
		rm -r "$SPOOL/user/u$d/tmp" || return 1
	done &&
	kill -HUP "$DAEMON_PID" &&
	wait_for 30 grep -q "reload" "$DAEMON_LOG" &&
	chj sync &&
	grep -c "debug: event" "$DAEMON_LOG" >events.count &&
	echo "events: $(cat events.count)" &&
	test "$(cat events.count)" -ge 1000
'

expect_success 'the agent commands under valgrind: begin, list, commit, query, status' '
	vchj begin c1 && grep -q "^full" vchj.out &&
	vchj list c1 && grep -qxF "$SPOOL/user/u1/Archive/11." vchj.out &&
	vchj list c1 -0 --deleted &&
	vchj commit c1 &&
	echo new >"$SPOOL/user/u2/Archive/new." &&
	rm "$SPOOL/user/u3/Archive/12." &&
	vchj sync &&
	vchj begin c1 && grep -q "^incremental" vchj.out &&
	vchj list c1 && grep -qxF "$SPOOL/user/u2/Archive/new." vchj.out &&
	vchj list c1 --deleted && grep -qxF "$SPOOL/user/u3/Archive/12." vchj.out &&
	vchj commit c1 &&
	vchj begin c2 && vchj abort c2 &&
	# rows c1 has committed are pruned: make one more for query
	echo again >>"$SPOOL/user/u1/Archive/11." &&
	vchj sync &&
	vchj query --json && grep -qF "$SPOOL/user/u1/Archive/11." vchj.out &&
	vchj query --since 5 --under "$SPOOL/user/u1" &&
	vchj query --since @0 -0 &&
	vchj status --json && grep -q "\"running\"" vchj.out &&
	vchj status --prometheus && grep -q "^chjournal_" vchj.out &&
	vchj status && grep -q "^daemon: *running" vchj.out &&
	vchj consumers && grep -q "c1" vchj.out &&
	vchj forget c2
'

expect_success 'the agent error paths under valgrind' '
	{ vchj begin "bad name"; test $? = 1; } &&
	{ vchj list nosuch; test $? = 1; } &&
	{ vchj query --since garbage; test $? = 2; } &&
	{ vchj status --bogus; test $? = 2; } &&
	{ vchj frobnicate; test $? = 2; }
'

expect_success 'SIGTERM: chjournald exits 0, valgrind reports no error and no leak' '
	kill -TERM "$DAEMON_PID" &&
	{ wait "$DAEMON_PID"; rc=$?; } ;
	DAEMON_PID= &&
	echo "exit status $rc" &&
	{ [ "$rc" -eq 0 ] || { cat "$TRASH/vg-daemon.log"; false; }; } &&
	grep "stopped cleanly" "$DAEMON_LOG" &&
	vg_check "$TRASH/vg-daemon.log" &&
	grep -q "All heap blocks were freed\|definitely lost: 0 bytes" "$TRASH/vg-daemon.log"
'

expect_success 'with no daemon: begin (rescan cover) and status under valgrind' '
	vchj begin c1 && grep -q "^incremental" vchj.out &&
	grep -q "no chjournald is running" vchj.err &&
	vchj list c1 &&
	vchj commit c1 &&
	vchj status --json &&
	{ vchj sync; test $? = 1; }
'

test_done
