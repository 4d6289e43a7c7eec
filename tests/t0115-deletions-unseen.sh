#!/bin/bash
# t0115-deletions-unseen: deletions the journal could not see one by one (the
# daemon was down, a rescan record covers the window) and exchanges of names
# (renameat2 RENAME_EXCHANGE). After each, every path that existed at the
# last committed begin and is gone now must be in `list --deleted` or below a
# path in it, or its nearest existing ancestor must be in `list --reconcile`
# (tests/deletion_cover.py); the reconcile list holds only directories whose
# times moved; `begin` says on stderr that the window has rescanned subtrees,
# and `status` counts them.
. "$(dirname "$0")/test-lib.sh"

COVER="$CHJ_SRCDIR/tests/deletion_cover.py"

populate() {
	for u in alice bob carol dave; do
		for f in INBOX Sent Trash; do
			mkdir -p "$SPOOL/$u/$f/sub"
			for i in 1 2 3; do
				echo "$u $f $i" >"$SPOOL/$u/$f/$i."
				echo "$u $f deep $i" >"$SPOOL/$u/$f/sub/$i."
			done
		done
	done
}

# committed_run CONSUMER: a run committed, then the snapshot of every path
# (files and directories) as the run's begin saw them
committed_run() {
	backup "$1" &&
	find "$SPOOL" -mindepth 1 -print0 >before.lst
}

# check_cover CONSUMER: the next run's --deleted and --reconcile cover every
# path of before.lst that is gone
check_cover() {
	chj begin "$1" >mode.out 2>begin.err &&
	grep -qx incremental mode.out &&
	chj list "$1" --deleted -0 >deleted.lst &&
	chj list "$1" --reconcile -0 >reconcile.lst &&
	python3 "$COVER" before.lst deleted.lst reconcile.lst "$SPOOL"
}

# exchange A B: renameat2(RENAME_EXCHANGE)
exchange() {
	python3 - "$1" "$2" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = (os.fsencode(x) for x in sys.argv[1:3])
if libc.renameat2(-100, a, -100, b, 2) != 0:
    e = ctypes.get_errno()
    sys.exit("renameat2: %s" % os.strerror(e))
PY
}

# clock_past T: the clock has passed the unix time T
clock_past() {
	[ "$(date +%s)" -gt "$1" ]
}

populate
populated=$(date +%s)

# The rescan of a restart covers changes since the daemon's last flush minus
# a 2 s margin: the populated directories must be older than that to tell
# the directories that lost entries from the others.
expect_success 'daemon down: files and trees deleted, renamed, moved out' '
	start_daemon &&
	committed_run c1 &&
	wait_for 10 clock_past $((populated + 3)) &&
	chj sync &&
	stop_daemon &&
	rm "$SPOOL/alice/INBOX/1." &&
	rm -r "$SPOOL/bob/Sent" &&
	mv "$SPOOL/carol/Trash" "$SPOOL/carol/Old" &&
	mv "$SPOOL/dave/INBOX/sub" "$TRASH/moved-out" &&
	start_daemon &&
	check_cover c1 &&
	! grep -q "alice/INBOX/1\." deleted.lst
'

expect_success 'begin names the rescanned subtrees and --reconcile on stderr' '
	grep -q "subtree(s) in this window were rescanned" begin.err &&
	grep -q -- "--reconcile" begin.err
'

expect_success 'the reconcile list is the directories that lost entries, and only those' '
	tr "\0" "\n" <reconcile.lst >reconcile.txt &&
	grep -qx "$SPOOL/alice/INBOX" reconcile.txt &&
	grep -qx "$SPOOL/bob" reconcile.txt &&
	grep -qx "$SPOOL/carol" reconcile.txt &&
	grep -qx "$SPOOL/dave/INBOX" reconcile.txt &&
	! grep -qx "$SPOOL/alice/Sent" reconcile.txt &&
	! grep -qx "$SPOOL/bob/INBOX" reconcile.txt &&
	! grep -qx "$SPOOL/dave/Sent/sub" reconcile.txt
'

expect_success 'status counts the rescanned subtrees of the window' '
	chj status >status.out &&
	grep "consumer c1:" status.out | grep -q "rescanned subtree" &&
	chj status --json | python3 -c "
import json, sys
c = [c for c in json.load(sys.stdin)[\"consumers\"] if c[\"name\"] == \"c1\"][0]
assert c[\"rescans_behind\"] > 0, c
" &&
	chj status --prometheus | grep -q "^chjournal_consumer_rescans_behind{consumer=\"c1\"} [1-9]" &&
	chj commit c1
'

expect_success 'the same window seen by events: --deleted alone covers it' '
	committed_run c1 &&
	rm "$SPOOL/alice/INBOX/2." &&
	rm -r "$SPOOL/bob/INBOX" &&
	mv "$SPOOL/carol/Old" "$TRASH/old-out" &&
	check_cover c1 &&
	test ! -s reconcile.lst &&
	! grep -q "subtree(s) in this window were rescanned" begin.err &&
	chj commit c1
'

expect_success 'exchange of two directories: both old names in --deleted, both listed whole' '
	committed_run c1 &&
	exchange "$SPOOL/alice/Sent" "$SPOOL/dave/Trash" &&
	check_cover c1 &&
	tr "\0" "\n" <deleted.lst >deleted.txt &&
	grep -qx "$SPOOL/alice/Sent" deleted.txt &&
	grep -qx "$SPOOL/dave/Trash" deleted.txt &&
	chj list c1 >list.txt &&
	grep -qx "$SPOOL/alice/Sent/sub/1." list.txt &&
	grep -qx "$SPOOL/dave/Trash/sub/1." list.txt &&
	chj commit c1
'

expect_success 'exchange of a file and a directory: both old names in --deleted' '
	committed_run c1 &&
	exchange "$SPOOL/alice/INBOX/3." "$SPOOL/dave/Sent" &&
	check_cover c1 &&
	tr "\0" "\n" <deleted.lst >deleted.txt &&
	grep -qx "$SPOOL/alice/INBOX/3." deleted.txt &&
	grep -qx "$SPOOL/dave/Sent" deleted.txt &&
	chj list c1 >list.txt &&
	grep -qx "$SPOOL/dave/Sent" list.txt &&
	grep -qx "$SPOOL/alice/INBOX/3./sub/1." list.txt &&
	chj commit c1
'

expect_success 'exchange of two files: both listed, neither deleted' '
	committed_run c1 &&
	exchange "$SPOOL/alice/Trash/1." "$SPOOL/dave/Trash/sub/2." &&
	check_cover c1 &&
	test ! -s deleted.lst &&
	chj list c1 >list.txt &&
	grep -qx "$SPOOL/alice/Trash/1." list.txt &&
	grep -qx "$SPOOL/dave/Trash/sub/2." list.txt &&
	chj commit c1
'

expect_success 'an exchange while the daemon is down: covered by --reconcile' '
	committed_run c1 &&
	stop_daemon &&
	exchange "$SPOOL/carol/INBOX" "$SPOOL/carol/Sent" &&
	start_daemon &&
	check_cover c1 &&
	chj commit c1
'

expect_success 'a directory replaced by a file: the old name in --deleted, the file listed' '
	committed_run c1 &&
	rm -r "$SPOOL/carol/INBOX/sub" &&
	echo now-a-file >"$SPOOL/carol/INBOX/sub" &&
	check_cover c1 &&
	tr "\0" "\n" <deleted.lst >deleted.txt &&
	grep -qx "$SPOOL/carol/INBOX/sub" deleted.txt &&
	chj list c1 | grep -qx "$SPOOL/carol/INBOX/sub" &&
	chj commit c1
'

expect_success 'a full run reconciles every directory' '
	chj begin c2 >mode.out &&
	grep -q "^full:" mode.out &&
	chj list c2 --reconcile >reconcile.txt &&
	find "$SPOOL" -type d | LC_ALL=C sort >dirs.txt &&
	test_cmp dirs.txt reconcile.txt &&
	test -z "$(chj list c2 --deleted)" &&
	chj commit c2
'

expect_success '--deleted and --reconcile do not go together' '
	chj begin c2 >/dev/null &&
	must_fail chj list c2 --deleted --reconcile 2>err.out &&
	grep -q "do not go together" err.out &&
	chj abort c2
'

test_done
