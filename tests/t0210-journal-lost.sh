#!/bin/bash
# t0210-journal-lost: the journal database (and its lock file) deleted under
# a running daemon: the daemon notices, creates a new journal and lock, and
# the next begin is full because the journal id changed.
. "$(dirname "$0")/test-lib.sh"

mkdir -p "$SPOOL/d"
echo one >"$SPOOL/d/one"

expect_success 'set up a committed consumer' '
	start_daemon &&
	backup c1 && backup c1 &&
	grep -x incremental mode.out &&
	old_id=$(chj status --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"journal_id\"])") &&
	echo "$old_id" >old_id
'

expect_success 'deleting journal.db* while the daemon runs: new journal, full run' '
	rm -f "$STATE"/journal.db* &&
	echo two >"$SPOOL/d/two" &&
	wait_for 20 grep -q "creating a new journal" "$DAEMON_LOG" &&
	wait_for 20 daemon_ready &&
	backup c1 &&
	grep "^full: the journal id changed" mode.out &&
	printf "%s\n" "$SPOOL/d/one" "$SPOOL/d/two" >expect &&
	test_cmp expect list.out &&
	new_id=$(chj status --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"journal_id\"])") &&
	test "$new_id" != "$(cat old_id)"
'

expect_success 'the new journal records changes again' '
	echo three >"$SPOOL/d/three" &&
	backup c1 &&
	grep -x incremental mode.out &&
	echo "$SPOOL/d/three" >expect &&
	test_cmp expect list.out &&
	stop_daemon
'

# cpu_ticks PID: user + system clock ticks the process has used
cpu_ticks() {
	awk '{ print $14 + $15 }' /proc/"$1"/stat
}

# The journal's directory removed with its parent: the new journal cannot
# be made until the parent is back (the daemon makes one directory level). The daemon went round its loop without waiting, logging
# three lines each turn (a test left behind filled 280 million lines and a
# core); now it tries once a second, says so once, keeps the changes in
# memory, and makes the journal when the directory is back.
expect_success 'the journal directory removed: the daemon waits without spinning, and recovers' '
	mkdir -p jp/jdir &&
	write_config "journal = $TRASH/jp/jdir/journal.db" "consumers = $STATE/consumers" &&
	start_daemon &&
	backup c2 &&
	rm -rf jp &&
	echo four >"$SPOOL/d/four" &&
	wait_for 20 grep -q "cannot write the journal (changes kept in memory" "$DAEMON_LOG" &&
	t0=$(cpu_ticks "$DAEMON_PID") && lines0=$(wc -l <"$DAEMON_LOG") &&
	sleep 3 &&
	t1=$(cpu_ticks "$DAEMON_PID") && lines1=$(wc -l <"$DAEMON_LOG") &&
	echo "cpu ticks in 3 s: $((t1 - t0)); log lines: $((lines1 - lines0))" &&
	test $((t1 - t0)) -lt 30 && test $((lines1 - lines0)) -lt 10 &&
	test "$(grep -c "was removed or replaced" "$DAEMON_LOG")" = 1 &&
	mkdir jp &&
	wait_for 20 grep -q "journal writable again" "$DAEMON_LOG" &&
	backup c2 &&
	grep "^full: the journal id changed" mode.out &&
	in_list "$SPOOL/d/four" &&
	stop_daemon
'

test_done
