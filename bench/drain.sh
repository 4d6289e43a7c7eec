#!/bin/bash
# bench/drain.sh: the backlog drain alone (`make bench-drain`), row d) of
# bench/run.sh in a form quick enough to compare two builds in one run.
#
# A Cyrus-like tree (bench/gen-tree, DRAIN_DIRS mailboxes); the daemon is
# started, synced and stopped (SIGSTOP); DRAIN_FILES files are created
# round-robin over every mailbox (each an open(O_CREAT) and a close: a CREATE
# and a CLOSE_WRITE); then SIGCONT, and the time until `chjournal sync`
# returns, and the daemon's CPU over that time. Events per second are counted
# as 2 per file, as in bench/run.sh. DRAIN_OP=remove measures deletions
# instead: the files are made before the daemon starts, and removed while it
# is stopped (one DELETE each, counted as 1 event).
#
# Environment:
#   CHJ_BUILDDIR       the build measured (daemon/chjournald, agent/chjournal)
#   CHJ_BASE_BUILDDIR  another build measured in the same run, alternating
#                      (e.g. a worktree of an older commit); its column says
#                      n/a when unset
#   DRAIN_BACKENDS     default "fanotify inotify"
#   DRAIN_DIRS         mailboxes in the tree (default 10000)
#   DRAIN_FILES        files created while stopped (default 100000)
#   DRAIN_ROUNDS       measurements per build and backend (default 3; the
#                      median is shown)
#   DRAIN_OP           create (default) or remove
#   BENCH_TMP          where the work directory goes (default /var/tmp)
# Needs root for fanotify and to raise the queue sysctls (restored on exit).
set -u
export LC_ALL=C
unset CHJOURNAL_CONF

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
NEW=${CHJ_BUILDDIR:-$SRCDIR}
BASE=${CHJ_BASE_BUILDDIR:-}
BACKENDS=${DRAIN_BACKENDS:-fanotify inotify}
DIRS=${DRAIN_DIRS:-10000}
FILES=${DRAIN_FILES:-100000}
ROUNDS=${DRAIN_ROUNDS:-3}
OP=${DRAIN_OP:-create}
BTMP=${BENCH_TMP:-/var/tmp}

die() { echo "bench-drain: $*" >&2; exit 1; }
note() { echo "bench-drain: $*" >&2; }
now() { date +%s.%N; }
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print v[int((NR + 1) / 2)] }'; }

case $OP in create|remove) ;; *) die "DRAIN_OP '$OP': expected create or remove" ;; esac
for b in "$NEW" $BASE; do
	[ -x "$b/daemon/chjournald" ] && [ -x "$b/agent/chjournal" ] ||
		die "'$b' has no daemon/chjournald and agent/chjournal (build it first)"
done
command -v python3 >/dev/null || die "python3 is needed (bench/gen-tree)"

W=$(mktemp -d "$BTMP/chj-drain.XXXXXX") || die "cannot create a work directory in '$BTMP'"
DPID=
QS=/proc/sys/fs/inotify/max_queued_events
FQS=/proc/sys/fs/fanotify/max_queued_events
old_q=$(cat "$QS")
old_fq=$(cat "$FQS" 2>/dev/null)
cleanup() {
	if [ -n "$DPID" ]; then
		kill -CONT "$DPID" 2>/dev/null
		kill -TERM "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
	fi
	if [ "$(id -u)" = 0 ]; then
		echo "$old_q" >"$QS"
		[ -n "$old_fq" ] && echo "$old_fq" >"$FQS"
	fi
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
need=$((FILES * 4 + 100000))
if [ "$(id -u)" = 0 ]; then
	[ "$old_q" -lt "$need" ] && echo "$need" >"$QS"
	[ -n "$old_fq" ] && [ "$old_fq" -lt "$need" ] && echo "$need" >"$FQS"
fi

note "generating $DIRS mailboxes ..."
python3 "$SRCDIR/bench/gen-tree" --dirs "$DIRS" --files $((DIRS * 10)) --seed 1 \
	--out "$W/spool" --manifest "$W/manifest" >/dev/null 2>&1 || die "gen-tree failed"
sed -n 's|/[^/]*$||p' "$W/manifest" | sort -u >"$W/dirs"

# files.py create|remove: the backlog's files, round-robin over the mailboxes
cat >"$W/files.py" <<'EOF'
import os, sys
dirs = open(sys.argv[2]).read().split("\n")[:-1]
n = int(sys.argv[3])
for i in range(n):
    p = "%s/drain-%d." % (dirs[i % len(dirs)], i)
    if sys.argv[1] == "create":
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o600))
    else:
        os.unlink(p)
EOF

# one BUILD BACKEND: prints "SECONDS CPU_SECONDS", or nothing if refused
one() {
	b=$1 be=$2
	rm -rf "$W/state"
	printf 'journal = %s\nroot = %s\nflush_interval_ms = 1000\nbatch_size = 10000\nsync_timeout = 900\nlog_level = info\nbackend = %s\n' \
		"$W/state/journal.db" "$W/spool" "$be" >"$W/conf"
	: >"$W/log"
	[ "$OP" = remove ] && python3 "$W/files.py" create "$W/dirs" "$FILES"
	"$b/daemon/chjournald" -c "$W/conf" 2>>"$W/log" &
	DPID=$!
	until grep -q 'ready:' "$W/log"; do
		kill -0 "$DPID" 2>/dev/null || { wait "$DPID"; DPID=; return 0; }
		sleep 0.02
	done
	"$b/agent/chjournal" -c "$W/conf" sync >/dev/null || die "sync failed"
	kill -STOP "$DPID"
	python3 "$W/files.py" "$OP" "$W/dirs" "$FILES"
	c0=$(cpu "$DPID")
	t0=$(now)
	kill -CONT "$DPID"
	"$b/agent/chjournal" -c "$W/conf" sync >/dev/null || die "sync after the backlog failed"
	t1=$(now)
	c1=$(cpu "$DPID")
	ovf=$("$b/agent/chjournal" -c "$W/conf" status | sed -n 's/^overflows: *//p')
	kill -TERM "$DPID"; wait "$DPID"; DPID=
	[ "$OP" = create ] && python3 "$W/files.py" remove "$W/dirs" "$FILES"
	[ "${ovf:-0}" = 0 ] || note "$be: $ovf overflows (raise the queue sysctl)"
	awk -v a="$t0" -v b="$t1" -v c0="$c0" -v c1="$c1" 'BEGIN { printf "%.3f %.3f\n", b - a, c1 - c0 }'
}

for be in $BACKENDS; do
	: >"$W/new.$be"; : >"$W/base.$be"
	for r in $(seq 1 "$ROUNDS"); do
		note "$be: round $r of $ROUNDS ..."
		one "$NEW" "$be" >>"$W/new.$be"
		[ -n "$BASE" ] && one "$BASE" "$be" >>"$W/base.$be"
	done
done

ev=$((2 * FILES))
[ "$OP" = remove ] && ev=$FILES
cell() { # FILE: "EV/S (EV per CPU s)" of the medians
	[ -s "$1" ] || { echo "n/a"; return; }
	s=$(awk '{ print $1 }' "$1" | median); c=$(awk '{ print $2 }' "$1" | median)
	awk -v s="$s" -v c="$c" -v e="$ev" 'BEGIN { printf "%.0f/s (%.0f per CPU s)", e / s, e / (c + 0.001) }'
}
ratio() {
	[ -s "$1" ] && [ -s "$2" ] || { echo "-"; return; }
	a=$(awk '{ print $1 }' "$1" | median); b=$(awk '{ print $1 }' "$2" | median)
	awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }'
}
echo
echo "Backlog of $FILES files ${OP}d ($ev events) over $DIRS mailboxes, until sync returns; median of $ROUNDS; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| backend | this build | base build | this / base |"
echo "|---|---|---|---|"
for be in $BACKENDS; do
	echo "| $be | $(cell "$W/new.$be") | $(cell "$W/base.$be") | $(ratio "$W/new.$be" "$W/base.$be") |"
done
