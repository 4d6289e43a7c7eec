#!/bin/bash
# t1001-sigkill-integrity: SIGKILL of the daemon at random points during heavy
# churn, CHJ_KILLS times (100 by default). After each kill the journal passes
# `PRAGMA integrity_check`, and the daemon restarts on it; every 10 kills (and
# at the end) a backup lists every file changed since the previous backup,
# checked against a find-based ground truth (path, inode, size, mtime, ctime
# before and after).
#
# Randomness (churn durations, the writer's choices) is seeded: CHJ_SEED
# (printed) replays the kill times; the writer races the kill, so a replay is
# close, not exact.
. "$(dirname "$0")/test-lib.sh"

command -v sqlite3 >/dev/null 2>&1 || skip_all "needs the sqlite3 command-line shell"

KILLS=${CHJ_KILLS:-100}
SEED=${CHJ_SEED:-1001}
CHECK_EVERY=10
RANDOM=$SEED
echo "# seed $SEED (CHJ_SEED), $KILLS kills (CHJ_KILLS)"

for d in 0 1 2 3; do
	mkdir -p "$SPOOL/u$d/cur" "$SPOOL/u$d/new"
	for i in 0 1 2 3 4; do
		echo "seed mail $d $i" >"$SPOOL/u$d/cur/$i."
	done
done

# snapshot FILE: every file and symlink below the spool with its identity
snapshot() {
	find "$SPOOL" \( -type f -o -type l \) -printf '%p\t%i\t%s\t%T@\t%C@\n' | sort >"$1"
}

# changed_since BEFORE AFTER: paths of AFTER whose line is not in BEFORE
# (new, renamed, written or attribute-changed files)
changed_since() {
	comm -13 "$1" "$2" | cut -f1 | sort -u
}

# writer SEED: churn in the spool until the file "stop" exists: creates,
# appends, renames within and across folders, deletes, new folders with
# mail moved in as a whole
writer() {
	RANDOM=$1
	_w_n=0
	while [ ! -e "$TRASH/stop" ]; do
		_w_n=$((_w_n + 1))
		_w_u="$SPOOL/u$((RANDOM % 4))"
		case $((RANDOM % 8)) in
		0|1)	echo "new $1 $_w_n" >"$_w_u/new/m$1-$_w_n." ;;
		2)	for _w_f in "$_w_u"/cur/*.; do
				[ -f "$_w_f" ] && echo "append $_w_n" >>"$_w_f"
				break
			done ;;
		3)	for _w_f in "$_w_u"/new/*.; do
				[ -f "$_w_f" ] && mv -f "$_w_f" "$SPOOL/u$((RANDOM % 4))/cur/r$1-$_w_n."
				break
			done ;;
		4)	for _w_f in "$_w_u"/cur/r*.; do
				[ -f "$_w_f" ] && rm -f "$_w_f"
				break
			done ;;
		5)	mkdir -p "$TRASH/tmpdir/f$1-$_w_n/sub" &&
			echo a >"$TRASH/tmpdir/f$1-$_w_n/a." &&
			echo b >"$TRASH/tmpdir/f$1-$_w_n/sub/b." &&
			mv "$TRASH/tmpdir/f$1-$_w_n" "$_w_u/f$1-$_w_n" ;;
		6)	for _w_f in "$_w_u"/f*; do
				[ -d "$_w_f" ] && mv "$_w_f" "$SPOOL/u$((RANDOM % 4))/g$1-$_w_n"
				break
			done ;;
		7)	mkdir -p "$_w_u/h$1-$_w_n" &&
			echo c >"$_w_u/h$1-$_w_n/c." &&
			touch -d @$((1000000000 + RANDOM)) "$_w_u/h$1-$_w_n/c." ;;
		esac
	done
}

# ms_sleep MS
ms_sleep() {
	sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
}

# integrity: the journal passes sqlite's integrity check
integrity() {
	_i_out=$(sqlite3 "$STATE/journal.db" 'PRAGMA integrity_check' 2>&1)
	if [ "$_i_out" != ok ]; then
		echo "integrity_check: $_i_out"
		return 1
	fi
}

# check_backup N: a backup; every file changed since the previous backup's
# snapshot must be in its list
missed_total=0
changed_total=0
checks=0
check_backup() {
	snapshot after.snap &&
	backup c1 &&
	grep -x incremental mode.out &&
	changed_since before.snap after.snap >changed.out &&
	sort -u list.out >list.sorted &&
	comm -23 changed.out list.sorted >missed.out &&
	_cb_changed=$(wc -l <changed.out) &&
	_cb_missed=$(wc -l <missed.out) &&
	_cb_listed=$(wc -l <list.sorted) &&
	changed_total=$((changed_total + _cb_changed)) &&
	missed_total=$((missed_total + _cb_missed)) &&
	checks=$((checks + 1)) &&
	echo "after kill $1: $_cb_changed changed, $_cb_listed listed, $_cb_missed missed" >>summary.out &&
	if [ "$_cb_missed" -ne 0 ]; then
		echo "missed after kill $1:"
		cat missed.out
		return 1
	fi &&
	[ "$_cb_changed" -gt 0 ] &&
	mv after.snap before.snap
}

expect_success 'setup: daemon runs, baseline backup' '
	mkdir -p "$TRASH/tmpdir" &&
	start_daemon &&
	backup c1 && grep "^full:" mode.out &&
	snapshot before.snap
'

: >summary.out
: >kills.out
expect_success "$KILLS kills during churn: integrity ok, restart, no change missed" '
	k=0 &&
	while [ "$k" -lt "$KILLS" ]; do
		k=$((k + 1))
		ms=$((50 + RANDOM % 251))
		rm -f "$TRASH/stop"
		writer "$RANDOM" &
		wpid=$!
		ms_sleep "$ms"
		kill_daemon
		touch "$TRASH/stop"
		wait "$wpid"
		echo "kill $k at ${ms} ms" >>kills.out
		integrity || { echo "after kill $k (${ms} ms)"; return 1; }
		start_daemon || return 1
		if [ $((k % CHECK_EVERY)) -eq 0 ] || [ "$k" -eq "$KILLS" ]; then
			check_backup "$k" || return 1
		fi
	done &&
	test "$checks" -gt 0 &&
	test "$missed_total" -eq 0
'
sed 's/^/# /' summary.out
echo "# $(wc -l <kills.out) kills, $checks backups checked, $changed_total changed files, $missed_total missed"

expect_success 'the daemon restarted after each kill and recorded the gap' '
	chj status >status.out &&
	grep "^daemon: *running" status.out &&
	grep "covered by a rescan" "$DAEMON_LOG"
'

expect_success 'a clean stop leaves a journal that passes the integrity check' '
	stop_daemon &&
	integrity
'

test_done
