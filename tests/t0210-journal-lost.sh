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

test_done
