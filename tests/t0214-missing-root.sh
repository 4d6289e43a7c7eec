#!/bin/bash
# t0214-missing-root: one root of three missing (moved away, or removed with
# rmdir) breaks nothing. The configuration keeps it; the daemon starts with
# it and covers it; status (text, --json, --prometheus) shows it missing;
# consumers, sync, begin, list (full and incremental, rescan records of the
# missing root too), commit and abort all work, serving the other roots and
# naming the missing one on stderr; and once the root is back, the next run
# lists all of it: also a change journaled before it went away that a run
# made while it was missing committed past, with the daemon down throughout.
. "$(dirname "$0")/test-lib.sh"

R2="$TRASH/spool2"
R3="$TRASH/spool3"
write_config "root = $R2" "root = $R3"

mkdir -p "$SPOOL/a" "$R2/b/c" "$R3"
echo 1 >"$SPOOL/a/1"
echo 2 >"$R2/b/2"
echo 3 >"$R2/b/c/3"

# run_ok CONSUMER: begin, list -0 (into list.out, one per line), list
# --deleted, commit; each must exit 0; their stderr into run.err
run_ok() {
	: >run.err
	chj begin "$1" >mode.out 2>>run.err &&
	chj list "$1" -0 2>>run.err | tr '\0' '\n' >list.out &&
	test "${PIPESTATUS[0]}" = 0 &&
	chj list "$1" --deleted 2>>run.err >deleted.out &&
	chj commit "$1" 2>>run.err
}

# files_under DIR...: every file below the DIRs, sorted
files_under() {
	find "$@" -type f ! -name '.chjournal-cookie.*' | LC_ALL=C sort
}

# lists_all EXPECTED: list.out holds every line of EXPECTED (and may hold
# more: a rescan may list a recent file of another root too)
lists_all() {
	LC_ALL=C comm -23 "$1" list.out >not-listed &&
	test_cmp /dev/null not-listed
}

# says_missing FILE ROOT WHAT: FILE has the line naming ROOT missing
says_missing() {
	grep -F "chjournal: root '$2' is missing (No such file or directory): $3" "$1"
}

# watched_again ROOT: the daemon logged that ROOT is watched again
watched_again() {
	grep -qF "root '$1' is watched again" "$DAEMON_LOG"
}

# flushed_after T: the daemon's last flush (up to which every change is
# journaled; rescans after a stop start from it) is later than unix time T
flushed_after() {
	test "$(chj status --json | sed -n 's/.*"last_flush":\([0-9]*\).*/\1/p')" -gt "$1"
}

# all_watched: the daemon has journaled that it watches every directory
all_watched() {
	chj status | grep -q "^watches: *[0-9]*\$"
}

expect_success 'three roots: the first run is full and lists all of them' '
	start_daemon &&
	run_ok c &&
	grep "^full:" mode.out &&
	files_under "$SPOOL" "$R2" "$R3" >expect &&
	test_cmp expect list.out
'

expect_success 'a root moved away and an empty root removed while the daemon runs: status shows them missing' '
	echo pending >"$R2/b/pending" &&
	chj sync &&
	mv "$R2" "$R2.away" &&
	rmdir "$R3" &&
	chj status >status.out &&
	grep -x "root:        $R2" status.out &&
	grep -x "missing:     $R2 (No such file or directory)" status.out &&
	grep -x "missing:     $R3 (No such file or directory)" status.out &&
	! grep "missing:     $SPOOL " status.out &&
	chj status --json >status.json &&
	python3 -c "
import json, sys
s = json.load(open(\"status.json\"))
assert s[\"missing_roots\"] == sys.argv[1:], s[\"missing_roots\"]
assert len(s[\"roots\"]) == 3
" "$R2" "$R3" &&
	chj status --prometheus >prom.out &&
	grep -x "chjournal_root_missing{root=\"$SPOOL\"} 0" prom.out &&
	grep -x "chjournal_root_missing{root=\"$R2\"} 1" prom.out &&
	grep -x "chjournal_root_missing{root=\"$R3\"} 1" prom.out &&
	grep -x "# TYPE chjournal_root_missing gauge" prom.out &&
	chj consumers | grep "^c	committed_begin=" &&
	wait_for 20 grep -qF "root '\''$R2'\'' was moved away" "$DAEMON_LOG"
'

expect_success 'sync, begin, list, commit serve the other root and name the missing ones' '
	echo new >"$SPOOL/a/new" &&
	chj sync 2>sync.err &&
	says_missing sync.err "$R2" "not synced" &&
	run_ok c &&
	grep -x incremental mode.out &&
	echo "$SPOOL/a/new" >expect &&
	lists_all expect &&
	! grep -F "$R2" list.out &&
	test_cmp /dev/null deleted.out &&
	says_missing run.err "$R2" "no sync cookie for it" &&
	says_missing run.err "$R3" "no sync cookie for it" &&
	says_missing run.err "$R2" "none of its files are listed" &&
	! grep -v -e "is missing" -e "were rescanned" run.err
'

expect_success 'abort works, and a new consumer full run lists the roots that are there' '
	chj begin c >/dev/null 2>&1 &&
	chj abort c &&
	chj consumers | grep "^c	.*	open=no\$" &&
	run_ok fresh &&
	grep "^full:" mode.out &&
	files_under "$SPOOL" >expect &&
	test_cmp expect list.out &&
	says_missing run.err "$R2" "none of its files are listed"
'

expect_success 'the roots come back: watched again, and the next run lists all of them' '
	mv "$R2.away" "$R2" &&
	mkdir "$R3" &&
	echo 4 >"$R3/4" &&
	wait_for 30 watched_again "$R2" &&
	wait_for 30 watched_again "$R3" &&
	wait_for 10 all_watched &&
	chj status >status.out &&
	! grep "^missing:" status.out &&
	run_ok c &&
	grep -x incremental mode.out &&
	files_under "$R2" "$R3" >expect &&
	lists_all expect &&
	! grep -v "were rescanned" run.err &&
	run_ok fresh &&
	lists_all expect
'

expect_success 'missing when the daemon starts: it starts, covers it, and says so' '
	stop_daemon &&
	mv "$R2" "$R2.away" &&
	echo while-down >"$SPOOL/a/down" &&
	start_daemon &&
	grep -F "root '\''$R2'\'' is missing (No such file or directory): its changes are covered by rescan records until it is back" "$DAEMON_LOG" &&
	chj status >status.out &&
	grep -x "missing:     $R2 (No such file or directory)" status.out &&
	chj query >query.out &&
	grep "	rescan(since=[0-9T:-]*Z,[^)]*)	$R2\$" query.out &&
	run_ok c &&
	# the start-up rescan may list other recent files of the first root too
	grep -xF "$SPOOL/a/down" list.out &&
	! grep -F "$R2" list.out &&
	says_missing run.err "$R2" "none of its files are listed"
'

expect_success 'back while the daemon runs: watched again, listed whole by the next run' '
	mv "$R2.away" "$R2" &&
	wait_for 30 watched_again "$R2" &&
	run_ok c &&
	files_under "$R2" >expect &&
	lists_all expect
'

# A change journaled before the root went away, a run with the root missing
# (which commits past the change), the root back before the daemon starts
# again: the daemon'"'"'s start-up rescan goes by time and would not list it (the
# file is older than the last flush); the run that could not see the root
# recorded that the first run after it is back lists all of it.
expect_success 'gone and back while the daemon is down, a run in between: the change is listed' '
	# a consumer that does not run keeps older rescan records (and their
	# earlier times) in every window: only c here
	chj forget fresh &&
	echo pending2 >"$R2/b/pending2" &&
	chj sync &&
	# older than what the start-up rescan covers (its time margin is 2 s)
	wait_for 30 flushed_after $(( $(stat -c %Z "$R2/b/pending2") + 3 )) &&
	stop_daemon &&
	mv "$R2" "$R2.away" &&
	run_ok c &&
	grep "no chjournald is running" run.err &&
	says_missing run.err "$R2" "no sync cookie for it" &&
	! grep -F "$R2" list.out &&
	mv "$R2.away" "$R2" &&
	start_daemon &&
	run_ok c &&
	grep -xF "$R2/b/pending2" list.out
'

expect_success 'daemon stops' '
	stop_daemon
'

test_done
