#!/bin/bash
# t1223-archive-crash: SIGKILL at several points of `chjournal reindex` and
# of `chjournal compact --force` on a sizeable archive (20 runs of 200
# entries, 12 hours apart, written by tests/make-big-archive.py with real
# Cyrus-format cyrus.index files whose GUIDs name the stored messages).
# After each kill: verify passes, show lists every run (reindex) or the runs
# of the old or of the new archive (compact), the oldest run kept restores
# and the newest restores to exactly what the uncompacted archive restores
# (restoring every kept run each time would take minutes: 4000 files each). Also: compact with
# several retained runs sharing an unchanged folder's index (it used to fail
# with "wanted twice").
. "$(dirname "$0")/test-lib.sh"

BIG="$TRASH/big.tar.gz"
python3 "$CHJ_SRCDIR/tests/make-big-archive.py" "$BIG" 20 200 || exit 1

# runs_of ARCHIVE: the number of runs show lists
runs_of() {
	"$CHJOURNAL" show "$1" | tail -n +2 | wc -l
}

expect_success 'the built archive: verify passes, 20 runs, the newest restores' '
	chj reindex "$BIG" >/dev/null &&
	chj verify "$BIG" >/dev/null &&
	test "$(runs_of "$BIG")" = 20 &&
	chj restore "$BIG" --to "$TRASH/want" >out &&
	grep -q "20 folders, 3940 message files" out
'

expect_success 'compact with retained runs sharing a folder index, then restore' '
	cp "$BIG" "$TRASH/c.tar.gz" && cp "$TRASH/big.idx" "$TRASH/c.idx" &&
	chj compact --force "$TRASH/c.tar.gz" >out 2>err &&
	grep -q "compacted: 10 of 20 runs retained" out &&
	chj verify "$TRASH/c.tar.gz" >/dev/null &&
	chj restore "$TRASH/c.tar.gz" --to "$TRASH/c-restore" >/dev/null &&
	diff -r "$TRASH/want" "$TRASH/c-restore"
'

for delay in 0 0.01 0.03 0.06 0.1 0.2 0.4; do
	expect_success "SIGKILL during reindex after ${delay}s: verify passes, show lists all 20 runs" '
		cp "$BIG" "$TRASH/k.tar.gz" && rm -f "$TRASH/k.idx" || return 1
		# the command alone in the background: $! is its pid, not a subshell
		"$CHJOURNAL" reindex "$TRASH/k.tar.gz" >/dev/null 2>&1 &
		pid=$!
		sleep '"$delay"'
		kill -KILL "$pid" 2>/dev/null
		wait "$pid"
		chj verify "$TRASH/k.tar.gz" >/dev/null 2>err || { cat err; return 1; }
		test "$(runs_of "$TRASH/k.tar.gz")" = 20 &&
		chj reindex "$TRASH/k.tar.gz" >/dev/null &&
		test "$(runs_of "$TRASH/k.tar.gz")" = 20 &&
		cmp "$BIG" "$TRASH/k.tar.gz"
	'
done

for delay in 0 0.05 0.15 0.3 0.6; do
	expect_success "SIGKILL during compact --force after ${delay}s: verify passes, the runs kept restore" '
		cp "$BIG" "$TRASH/k.tar.gz" && cp "$TRASH/big.idx" "$TRASH/k.idx" || return 1
		"$CHJOURNAL" compact --force "$TRASH/k.tar.gz" >/dev/null 2>&1 &
		pid=$!
		sleep '"$delay"'
		kill -KILL "$pid" 2>/dev/null
		wait "$pid"
		chj verify "$TRASH/k.tar.gz" >/dev/null 2>err || { cat err; return 1; }
		n=$(runs_of "$TRASH/k.tar.gz") &&
		echo "$n runs after the kill" &&
		{ test "$n" = 20 || test "$n" = 10; } &&
		first=$("$CHJOURNAL" show "$TRASH/k.tar.gz" | awk "NR == 2 { print \$2 }") &&
		rm -rf "$TRASH/k-first" "$TRASH/k-restore" &&
		chj restore "$TRASH/k.tar.gz" --to "$TRASH/k-first" --at "$first" >out &&
		grep -q "user .eve.: [0-9]* folders" out &&
		chj restore "$TRASH/k.tar.gz" --to "$TRASH/k-restore" >/dev/null &&
		diff -r "$TRASH/want" "$TRASH/k-restore" &&
		chj compact --force "$TRASH/k.tar.gz" >/dev/null &&
		chj verify "$TRASH/k.tar.gz" >/dev/null &&
		test "$(runs_of "$TRASH/k.tar.gz")" = 10
	'
done

expect_success 'no temporary files left (sidecars and .compacted markers are not)' '
	ls -A "$TRASH" | grep -E "\.(tmp|new)|-journal$|~$" && return 1
	true
'

test_done
