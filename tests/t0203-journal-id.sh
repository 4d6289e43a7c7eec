#!/bin/bash
# t0203-journal-id: a journal database deleted and recreated gets a new id;
# every consumer's next run is full (its cursor names the old id), and a run
# opened on the old journal can be neither listed nor committed.
. "$(dirname "$0")/test-lib.sh"

mkdir -p "$SPOOL/u/a" "$SPOOL/u/b"
echo 1 >"$SPOOL/u/a/1."
echo 2 >"$SPOOL/u/b/2."

journal_id_of() {
	sed -n 's/^journal: .*(id \([0-9a-f]*\),.*/\1/p' "$1"
}

expect_success 'setup: c1 and c2 committed on the first journal' '
	start_daemon &&
	chj status >status1.out &&
	id1=$(journal_id_of status1.out) &&
	test -n "$id1" &&
	backup c1 && backup c1 && grep -x incremental mode.out &&
	backup c2 && backup c2 && grep -x incremental mode.out &&
	chj begin c2 >mode.out
'

expect_success 'journal deleted while the daemon is stopped; restart creates a new one' '
	stop_daemon &&
	test -f "$STATE/journal.db" &&
	rm -f "$STATE/journal.db" "$STATE/journal.db-wal" "$STATE/journal.db-shm" &&
	echo 3 >"$SPOOL/u/a/3." &&
	start_daemon &&
	grep "created (id" "$DAEMON_LOG" &&
	chj status >status2.out &&
	id2=$(journal_id_of status2.out) &&
	test -n "$id2" &&
	test "$id1" != "$id2" &&
	grep "^consumer c1: committed at .* on another journal (next run full)" status2.out
'

expect_success 'status --json shows the new journal id' '
	chj status --json >status.json &&
	python3 -c "
import json, sys
s = json.load(open(\"status.json\"))
assert s[\"journal_id\"] == sys.argv[1], s[\"journal_id\"]
assert s[\"journal_id\"] != sys.argv[2]
c = {x[\"name\"]: x for x in s[\"consumers\"]}
assert c[\"c1\"][\"next_run\"] == \"full\", c
" "$id2" "$id1"
'

expect_success 'the run opened on the old journal cannot be listed or committed' '
	must_fail chj list c2 >out 2>err.out &&
	grep "consumer .c2.: the journal was recreated since its begin" err.out &&
	must_fail chj commit c2 2>err.out &&
	grep "consumer .c2.: the journal was recreated since its begin" err.out
'

expect_success 'the next begin is full with the journal-id reason and lists everything' '
	backup c1 &&
	echo "full: the journal id changed (database recreated)" >expect &&
	test_cmp expect mode.out &&
	printf "%s\n" "$SPOOL/u/a/1." "$SPOOL/u/a/3." "$SPOOL/u/b/2." >expect &&
	test_cmp expect list.out &&
	# the run begun on the old journal is still open: begin refuses until
	# it is aborted (or taken over)
	must_fail chj begin c2 2>err.out &&
	grep "consumer .c2. has an open run" err.out &&
	chj abort c2 &&
	backup c2 &&
	echo "full: the journal id changed (database recreated)" >expect &&
	test_cmp expect mode.out &&
	printf "%s\n" "$SPOOL/u/a/1." "$SPOOL/u/a/3." "$SPOOL/u/b/2." >expect &&
	test_cmp expect list.out
'

expect_success 'after the full run on the new journal, runs are incremental again' '
	echo 4 >"$SPOOL/u/b/4." &&
	backup c1 &&
	grep -x incremental mode.out &&
	echo "$SPOOL/u/b/4." >expect &&
	test_cmp expect list.out &&
	chj status >status3.out &&
	test "$(journal_id_of status3.out)" = "$id2"
'

expect_success 'a restart without deleting keeps the journal id' '
	stop_daemon &&
	start_daemon &&
	chj status >status4.out &&
	test "$(journal_id_of status4.out)" = "$id2" &&
	backup c1 &&
	grep -x incremental mode.out &&
	stop_daemon
'

test_done
