#!/bin/bash
# t1003-pending-limit: while the journal cannot be written the daemon keeps
# changes in memory, up to pending_limit; past it they become a rescan of
# every root, and when the journal is writable again it catches up by itself
# with nothing lost.
. "$(dirname "$0")/test-lib.sh"

require_root
command -v chattr >/dev/null || skip_all "chattr (e2fsprogs) is needed"
write_config "pending_limit = 100"
mkdir -p "$SPOOL/d"
test_cleanup_extra='chattr -i "$STATE"/journal.db* 2>/dev/null'
touch "$STATE/probe" && chattr +i "$STATE/probe" 2>/dev/null && chattr -i "$STATE/probe" ||
	skip_all "cannot set the immutable attribute on $STATE's file system"
rm -f "$STATE/probe"

expect_success 'set up' '
	start_daemon &&
	backup c1 && backup c1 &&
	chattr +i "$STATE/journal.db-wal"
'

expect_success 'an unwritable journal: logged, changes kept, then collapsed into a rescan' '
	for i in $(seq 1 300); do echo "$i" >"$SPOOL/d/f$i"; done &&
	wait_for 20 grep -q "cannot write the journal" "$DAEMON_LOG" &&
	wait_for 20 grep -q "pending_limit" "$DAEMON_LOG" &&
	kill -0 "$DAEMON_PID"
'

expect_success 'writable again: the daemon recovers by itself and nothing is lost' '
	chattr -i "$STATE/journal.db-wal" &&
	wait_for 20 grep -q "journal writable again" "$DAEMON_LOG" &&
	backup c1 &&
	for i in $(seq 1 300); do echo "$SPOOL/d/f$i"; done | LC_ALL=C sort >expect &&
	test_cmp expect list.out &&
	chj query | grep -q "rescan(since=.*journal not writable" &&
	test "$(chj status --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"rescans_recorded\"])")" -ge 1 &&
	test "$(sqlite3 "$STATE/journal.db" "PRAGMA integrity_check")" = ok &&
	stop_daemon
'

test_done
