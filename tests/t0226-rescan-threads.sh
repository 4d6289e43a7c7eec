#!/bin/bash
# t0226-rescan-threads: a restart that cannot hand over (a crash) leaves a
# rescan of every root; list resolves it by a walk on several threads, and
# lists what the one-thread walk listed: the files changed since, every file
# below a directory moved in (old times) or changed since (it may have been
# moved in: deep/er below deep), nothing quiet, nothing excluded, no sync
# cookie; the changed directories to reconcile. strace counts the
# walk's threads (the list's own stat pass starts none below 1024 rows).
. "$(dirname "$0")/test-lib.sh"

command -v strace >/dev/null || skip_all "no strace"
write_config "exclude = /skip(/|$)"

for u in 1 2 3 4 5 6 7 8; do
	for f in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25; do
		mkdir -p "$SPOOL/u$u/f$f/deep/er" || exit 1
		echo "$u.$f" >"$SPOOL/u$u/f$f/1."
		echo "$u.$f" >"$SPOOL/u$u/f$f/deep/er/2."
	done
done
mkdir -p "$SPOOL/u1/skip" "$TRASH/outside/tree/sub"
echo o >"$TRASH/outside/tree/sub/o."
echo o >"$TRASH/outside/tree/t."
touch -d '2001-01-01' "$TRASH/outside/tree/sub/o." "$TRASH/outside/tree/t."

# LeakSanitizer cannot run under ptrace: no leak check for the strace'd agent
STRACE_ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

# the rescan starts 2 s before the daemon's last flush: what is older than
# that is quiet
clock_passed() {
	[ "$(date +%s)" -ge "$1" ]
}

expect_success 'setup: a committed run, the daemon crashes' '
	start_daemon &&
	backup c1 && grep "^full:" mode.out &&
	t=$(date +%s) &&
	wait_for 10 clock_passed $((t + 4)) &&
	chj sync &&
	kill_daemon
'

expect_success 'changes while it is down' '
	echo more >>"$SPOOL/u3/f7/1." &&
	echo more >>"$SPOOL/u8/f25/deep/er/2." &&
	echo new >"$SPOOL/u5/f1/deep/new." &&
	mv "$TRASH/outside/tree" "$SPOOL/u2/f2/deep/moved" &&
	echo x >"$SPOOL/u1/skip/x." &&
	echo c >"$SPOOL/.chjournal-cookie.1.0123456789abcdef"
'

expect_success 'begin records the rescan; list walks it on several threads' '
	chj begin c1 >mode.out 2>err.out &&
	grep -x incremental mode.out &&
	grep "covered by a rescan of every root" err.out &&
	ASAN_OPTIONS=$STRACE_ASAN_OPTIONS strace -f -qq -e trace=clone,clone3 -o trace.out "$CHJOURNAL" -c "$CONF" list c1 >list.out &&
	threads=$(grep -c -E "clone3?\(" trace.out) &&
	echo "threads started: $threads" &&
	test "$threads" -ge 3 &&
	printf "%s\n" "$SPOOL/u2/f2/deep/er/2." "$SPOOL/u2/f2/deep/moved/sub/o." \
		"$SPOOL/u2/f2/deep/moved/t." "$SPOOL/u3/f7/1." "$SPOOL/u5/f1/deep/er/2." \
		"$SPOOL/u5/f1/deep/new." "$SPOOL/u8/f25/deep/er/2." >expect &&
	test_cmp expect list.out &&
	chj list c1 --reconcile >reconcile.out &&
	for d in "$SPOOL/u2/f2/deep" "$SPOOL/u2/f2/deep/moved" "$SPOOL/u5/f1/deep"; do
		grep -qxF "$d" reconcile.out || { echo "not to reconcile: $d"; return 1; }
	done &&
	! grep -F "/skip" reconcile.out
'

expect_success 'on one thread it lists the same, and starts none' '
	CHJ_RESCAN_THREADS=1 ASAN_OPTIONS=$STRACE_ASAN_OPTIONS strace -f -qq -e trace=clone,clone3 -o trace1.out \
		"$CHJOURNAL" -c "$CONF" list c1 >list1.out &&
	test "$(grep -c -E "clone3?\(" trace1.out)" = 0 &&
	test_cmp list.out list1.out &&
	chj commit c1
'

test_done
