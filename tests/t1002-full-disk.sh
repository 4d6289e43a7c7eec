#!/bin/bash
# t1002-full-disk: the journal's filesystem fills up (a small loop-mounted
# ext4). The daemon must keep running, log that it cannot write the journal,
# keep the changes in memory (up to pending_limit, then a rescan of every root
# instead of losing them), and recover by itself when space returns: the next
# backup lists every change made while the disk was full, and the database
# passes `PRAGMA integrity_check`. A begin while the disk is full must fail
# cleanly (one line, exit 1), not crash.
. "$(dirname "$0")/test-lib.sh"

require_root
command -v mkfs.ext4 >/dev/null 2>&1 || skip_all "needs mkfs.ext4 (e2fsprogs)"
command -v sqlite3 >/dev/null 2>&1 || skip_all "needs the sqlite3 command-line shell"
command -v losetup >/dev/null 2>&1 || skip_all "needs losetup (util-linux)"

IMG="$TRASH/journal.img"
MNT="$TRASH/mnt"
mkdir -p "$MNT"
truncate -s 8M "$IMG" || skip_all "cannot create the image file"
mkfs.ext4 -q -F -m 0 "$IMG" >mkfs.out 2>&1 || skip_all "mkfs.ext4 failed: $(head -n 1 mkfs.out)"
mount -o loop "$IMG" "$MNT" 2>mount.out || skip_all "cannot loop-mount an image: $(head -n 1 mount.out)"
# umount and detach the loop device whatever happens (the daemon is stopped
# before this runs)
test_cleanup_extra='umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
for dev in $(losetup -j "$IMG" 2>/dev/null | cut -d: -f1); do losetup -d "$dev"; done'

STATE="$MNT"
# pending_limit 500: reachable in a test (the default, 2,000,000, is not)
write_config "sync_timeout = 3" "pending_limit = 500"

for u in 0 1 2; do
	mkdir -p "$SPOOL/u$u/cur"
	echo "old $u" >"$SPOOL/u$u/cur/1."
done
mkdir -p "$SPOOL/quiet"
echo q >"$SPOOL/quiet/q."

# snapshot FILE: every file and symlink below the spool with its identity
snapshot() {
	find "$SPOOL" \( -type f -o -type l \) -printf '%p\t%i\t%s\t%T@\t%C@\n' | sort >"$1"
}

# fill: the journal's filesystem has no free block left
fill() {
	dd if=/dev/zero of="$MNT/filler" bs=64k 2>dd.err
	grep -q "No space left on device" dd.err || return 1
	# what the daemon frees meanwhile (a file of the state directory
	# replaced) is filled too, until none is left
	_f_n=0
	while [ "$(df -P -k "$MNT" | awk 'NR == 2 { print $4 }')" -ne 0 ]; do
		[ "$_f_n" -lt 100 ] || return 1
		dd if=/dev/zero of="$MNT/filler.$_f_n" bs=1k 2>/dev/null
		_f_n=$((_f_n + 1))
	done
}

# unfill: space returns
unfill() {
	rm -f "$MNT"/filler*
}

# churn TAG COUNT: COUNT new mails with long names in u0..u2, an append and
# a folder moved in
churn() {
	_c_i=0
	while [ "$_c_i" -lt "$2" ]; do
		echo "mail $1 $_c_i" >"$SPOOL/u$((_c_i % 3))/cur/$1-$_c_i-$(printf '%0150d' "$_c_i")."
		_c_i=$((_c_i + 1))
	done
	echo "appended $1" >>"$SPOOL/u1/cur/1." &&
	mkdir -p "$TRASH/out/$1/sub" &&
	echo x >"$TRASH/out/$1/sub/x." &&
	mv "$TRASH/out/$1" "$SPOOL/u2/$1"
}

# check_list BEFORE AFTER: every file changed between the snapshots is in
# list.out
check_list() {
	comm -13 "$1" "$2" | cut -f1 | sort -u >changed.out &&
	sort -u list.out >list.sorted &&
	comm -23 changed.out list.sorted >missed.out &&
	echo "$(wc -l <changed.out) changed, $(wc -l <list.sorted) listed, $(wc -l <missed.out) missed" &&
	test -s changed.out &&
	test_cmp /dev/null missed.out
}

# log_mark: remembers the daemon log's length; logged PATTERN: PATTERN is
# in the log after the mark
log_mark() {
	mark=$(wc -l <"$DAEMON_LOG")
}
logged() {
	tail -n "+$((mark + 1))" "$DAEMON_LOG" | grep -q -- "$1"
}

integrity() {
	_i_out=$(sqlite3 "$STATE/journal.db" 'PRAGMA integrity_check' 2>&1)
	if [ "$_i_out" != ok ]; then
		echo "integrity_check: $_i_out"
		return 1
	fi
}

expect_success 'setup: journal on an 8 MiB loop-mounted ext4, baseline backup' '
	start_daemon &&
	backup c1 && grep "^full:" mode.out &&
	backup c1 && grep -x incremental mode.out && test_cmp /dev/null list.out &&
	snapshot before.snap
'

expect_success 'disk full: the daemon keeps running and logs that it cannot write' '
	log_mark &&
	fill &&
	churn full1 300 &&
	wait_for 20 logged "cannot write the journal (changes kept in memory" &&
	kill -0 "$DAEMON_PID" &&
	! grep "pending_limit" "$DAEMON_LOG"
'

expect_success 'status tells the journal is not written, at once (text, --json, --prometheus)' '
	chj status >status.out &&
	grep "^journal:     NOT WRITTEN since .*: .*full" status.out &&
	grep "^pending:     [1-9][0-9]* changes in memory" status.out &&
	chj status --json | python3 -c "
import json, sys
d = json.load(sys.stdin)[\"daemon\"]
assert d[\"live\"] and d[\"journal_error_since\"] > 0 and d[\"pending\"] > 0, d
" &&
	chj status --prometheus | grep -q "^chjournal_journal_write_failing_since_seconds [1-9]"
'

expect_success 'begin while the disk is full fails cleanly, naming the cause: one line, exit 1' '
	start=$(date +%s) &&
	chj begin c1 --timeout 120 >begin.out 2>begin.err
	rc=$?
	echo "begin: exit $rc" && cat begin.out begin.err &&
	test "$rc" -eq 1 &&
	test "$(wc -l <begin.err)" -eq 1 &&
	grep -q "cannot write the journal since .*full" begin.err &&
	# not at the sync timeout (120 s): it gave up on what the daemon said
	test $(( $(date +%s) - start )) -lt 100 &&
	kill -0 "$DAEMON_PID"
'

expect_success 'space returns: the daemon recovers by itself, nothing lost' '
	log_mark &&
	unfill &&
	wait_for 20 logged "journal writable again" &&
	kill -0 "$DAEMON_PID" &&
	snapshot after.snap &&
	backup c1 && grep -x incremental mode.out &&
	check_list before.snap after.snap &&
	! grep -F "$SPOOL/quiet/" list.out &&
	mv after.snap before.snap
'

expect_success 'commit while the disk is full fails cleanly; the run is listed again' '
	echo "before commit" >"$SPOOL/u0/cur/c." &&
	chj begin c1 >mode.out && grep -x incremental mode.out &&
	chj list c1 >list.out && in_list "$SPOOL/u0/cur/c." &&
	fill &&
	chj commit c1 >commit.out 2>commit.err
	rc=$?
	echo "commit: exit $rc" && cat commit.out commit.err &&
	unfill &&
	test "$rc" -eq 1 &&
	test "$(wc -l <commit.err)" -eq 1 &&
	chj abort c1 &&
	backup c1 && grep -x incremental mode.out &&
	in_list "$SPOOL/u0/cur/c." &&
	snapshot before.snap
'

expect_success 'disk full again, more changes than pending_limit: a rescan replaces them' '
	log_mark &&
	fill &&
	churn full2 700 &&
	wait_for 20 logged "cannot write the journal (changes kept in memory" &&
	wait_for 20 logged "more than 500 changes pending (pending_limit): replacing them with a rescan of every root" &&
	kill -0 "$DAEMON_PID" &&
	churn full3 50
'

expect_success 'space returns: the rescan covers every change made while full' '
	log_mark &&
	unfill &&
	wait_for 20 logged "journal writable again" &&
	snapshot after.snap &&
	backup c1 && grep -x incremental mode.out &&
	check_list before.snap after.snap &&
	chj query >query.out &&
	grep -F "journal not writable)	$SPOOL" query.out
'

expect_success 'the journal passes the integrity check after a clean stop' '
	stop_daemon &&
	integrity
'

test_done
