#!/bin/bash
# t0204-crash-restart: changes the daemon never journaled (killed with SIGKILL
# before its flush, or made while it was down) are covered by a rescan record
# from the last flush: after a restart, or by a begin with no daemon at all.
. "$(dirname "$0")/test-lib.sh"

# a long flush interval: the changes made just before the SIGKILL stay in
# the daemon's memory (only sync cookies force a flush)
write_config "flush_interval_ms = 60000" "flush_idle_ms = 0"

mkdir -p "$SPOOL/u/a" "$SPOOL/u/olddir/sub" "$SPOOL/u/gone" "$SPOOL/quiet/d"
echo 1 >"$SPOOL/u/a/1."
echo 2 >"$SPOOL/u/a/2."
echo o >"$SPOOL/u/olddir/o1."
echo o >"$SPOOL/u/olddir/sub/o2."
echo q >"$SPOOL/quiet/q1."
echo q >"$SPOOL/quiet/d/q2."
echo g >"$SPOOL/u/gone/g1."
echo g >"$SPOOL/u/gone/g2."

# the rescan covers from the last flush minus a margin of 2 s: files older
# than that, in directories not changed since (quiet/), must not come back in
# the list (a directory changed since then counts as moved in: everything
# below u/ comes back, a false positive the design accepts)
sleep 3

# contains FILE PATH...: FILE holds each PATH as a line
contains() {
	_c_file=$1
	shift
	for _c_p in "$@"; do
		grep -qxF -- "$_c_p" "$_c_file" || { echo "missing from $_c_file: $_c_p"; return 1; }
	done
}

# lacks FILE PATTERN: no line of FILE starts with PATTERN (a fixed string)
lacks() {
	if awk -v p="$2" 'index($0, p) == 1 { found = 1 } END { exit !found }' "$1"; then
		echo "$1 has a line starting with $2:"
		cat "$1"
		return 1
	fi
}

expect_success 'setup: daemon runs, c1 has a committed run' '
	start_daemon &&
	backup c1 && grep "^full:" mode.out &&
	backup c1 && grep -x incremental mode.out && test_cmp /dev/null list.out
'

expect_success 'SIGKILL while changes are not yet flushed to the journal' '
	echo unflushed >>"$SPOOL/u/a/1." &&
	echo unflushed >"$SPOOL/u/a/unflushed." &&
	chj query >query.out &&
	! grep -F "$SPOOL/u/a/unflushed." query.out &&
	kill_daemon &&
	chj status >status.out &&
	grep "^daemon: *not running" status.out
'

expect_success 'changes while the daemon is down' '
	echo new >"$SPOOL/u/a/created." &&
	echo more >>"$SPOOL/u/a/2." &&
	mv "$SPOOL/u/olddir" "$SPOOL/u/newdir" &&
	mkdir -p "$SPOOL/u/tree/x/y" &&
	echo t >"$SPOOL/u/tree/t1." &&
	echo t >"$SPOOL/u/tree/x/y/t2." &&
	ln -s t1. "$SPOOL/u/tree/link" &&
	rm -r "$SPOOL/u/gone"
'

expect_success 'restart: begin is incremental and lists every change made while down' '
	start_daemon &&
	grep "covered by a rescan" "$DAEMON_LOG" &&
	chj begin c1 >mode.out &&
	grep -x incremental mode.out &&
	chj list c1 >list.out &&
	contains list.out "$SPOOL/u/a/1." "$SPOOL/u/a/unflushed." "$SPOOL/u/a/created." \
		"$SPOOL/u/a/2." "$SPOOL/u/newdir/o1." "$SPOOL/u/newdir/sub/o2." \
		"$SPOOL/u/tree/t1." "$SPOOL/u/tree/x/y/t2." "$SPOOL/u/tree/link" &&
	lacks list.out "$SPOOL/quiet/" &&
	lacks list.out "$SPOOL/u/gone/" &&
	lacks list.out "$SPOOL/u/olddir/" &&
	chj commit c1
'

expect_success 'query shows the rescan record of the restart' '
	chj query >query.out &&
	grep -F "	rescan(since=" query.out >rescans.out &&
	grep -F "daemon was not running)	$SPOOL" rescans.out &&
	chj query --json >query.json &&
	python3 -c "
import json, sys
rows = [json.loads(l) for l in open(\"query.json\")]
r = [x for x in rows if x[\"type\"] == \"rescan\" and x[\"path\"] == sys.argv[1]]
assert r, rows
assert all(x[\"since\"] <= x[\"time\"] for x in r), r
" "$SPOOL"
'

expect_success 'after the committed run, the next one is empty' '
	backup c1 &&
	grep -x incremental mode.out &&
	test_cmp /dev/null list.out
'

expect_success 'begin with no daemon running: exit 0, says so, lists the changes' '
	stop_daemon &&
	echo nodaemon >"$SPOOL/u/a/nodaemon." &&
	echo more >>"$SPOOL/u/tree/t1." &&
	mkdir -p "$SPOOL/u/tree2/d" &&
	echo x >"$SPOOL/u/tree2/d/x." &&
	chj begin c1 >mode.out 2>err.out &&
	grep -x incremental mode.out &&
	grep "no chjournald is running on journal .$STATE/journal.db." err.out &&
	grep "covered by a rescan of every root" err.out &&
	chj list c1 >list.out &&
	contains list.out "$SPOOL/u/a/nodaemon." "$SPOOL/u/tree/t1." "$SPOOL/u/tree2/d/x." &&
	lacks list.out "$SPOOL/quiet/" &&
	chj commit c1 &&
	chj query >query.out &&
	grep -F "no daemon running at begin)	$SPOOL" query.out
'

expect_success 'a consumer that never ran is full without a daemon too' '
	chj begin c2 >mode.out 2>err.out &&
	grep "^full: no committed run yet" mode.out &&
	grep "no chjournald is running" err.out &&
	chj list c2 >list.out &&
	find "$SPOOL" \( -type f -o -type l \) | sort >expect &&
	test_cmp expect list.out &&
	chj commit c2
'

expect_success 'the daemon starts again after the daemon-less runs' '
	start_daemon &&
	echo after >"$SPOOL/u/a/after." &&
	backup c1 &&
	grep -x incremental mode.out &&
	contains list.out "$SPOOL/u/a/after." &&
	lacks list.out "$SPOOL/quiet/" &&
	stop_daemon
'

test_done
