#!/bin/bash
# bench/open-writers.sh: what `begin`'s scan for files open for writing costs
# (`make bench`, after bench/cyrus.sh; `make bench-open-writers` alone).
# Prints one table.
#
# `begin` reads every process's descriptors and mappings in /proc; its cost
# grows with the processes and descriptors on the machine, not with the tree.
# Measured, best of 7 warm runs each, with chjournald running on a small spool:
# `begin` (a sync, the scan, the snapshot) with no process added, then with N
# processes holding K descriptors each (bench/hold-fds.py): read-only opens,
# and opens for writing (outside the roots: every descriptor is checked, none
# journaled); the difference over N x K is the cost per descriptor. Then the
# read-only opens again, each process also mapping a file under the root
# read-only and shared, its descriptor read-only (as a Cyrus imapd maps
# cyrus.index): the scan reads such a process's smaps; the difference over N
# is that cost per process. Last, one process of M mappings whose smaps lists
# them before its read-only shared mapping of the file under the root: the
# scan reads that smaps to its end (about 700 bytes per mapping).
#
# Environment:
#   CHJ_BUILDDIR       build directory holding daemon/chjournald, agent/chjournal
#   CHJ_BASE_BUILDDIR  another build (an older commit), measured the
#                      same way for comparison (optional)
#   OPENW_PROCS        N (default 1000)
#   OPENW_FDS          K (default 100)
#   OPENW_MAPS         M (default 20000)
#   BENCH_TMP          where the work directory goes (default /var/tmp)

set -u
export LC_ALL=C
unset CHJOURNAL_CONF

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
CHJ_BUILDDIR=${CHJ_BUILDDIR:-$SRCDIR}
BASE=${CHJ_BASE_BUILDDIR:-}
N=${OPENW_PROCS:-1000}
K=${OPENW_FDS:-100}
M=${OPENW_MAPS:-20000}
BTMP=${BENCH_TMP:-/var/tmp}
HOLD="$SRCDIR/bench/hold-fds.py"

die() { echo "bench-open-writers: $*" >&2; exit 1; }
[ -x "$CHJ_BUILDDIR/agent/chjournal" ] || die "no $CHJ_BUILDDIR/agent/chjournal (run make)"
command -v python3 >/dev/null || die "python3 is needed"
[ "$(ulimit -n)" -gt "$((K + 16))" ] || die "ulimit -n is below $((K + 16))"

W=$(mktemp -d "$BTMP/chj-bench-openw.XXXXXX") || die "cannot make a work directory in $BTMP"
DAEMON=
HOLDER=
cleanup() {
	[ -z "$HOLDER" ] || { exec 9>&-; wait "$HOLDER"; }
	[ -z "$DAEMON" ] || { kill "$DAEMON"; wait "$DAEMON"; }
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$W/spool/a" "$W/state" "$W/fds"
for i in $(seq 100); do echo "$i" >"$W/spool/a/$i."; done
printf 'journal = %s\nflush_interval_ms = 50\nroot = %s\n' "$W/state/journal.db" "$W/spool" >"$W/conf"

# daemon_start BUILD / daemon_stop
daemon_start() {
	rm -rf "$W/state" && mkdir "$W/state"
	"$1/daemon/chjournald" -c "$W/conf" 2>>"$W/daemon.log" &
	DAEMON=$!
	for _ in $(seq 200); do
		"$1/agent/chjournal" -c "$W/conf" status 2>/dev/null | grep -q '^daemon: *running' && return 0
		sleep 0.05
	done
	die "chjournald did not start: $(tail -n 5 "$W/daemon.log")"
}
daemon_stop() {
	kill "$DAEMON" && wait "$DAEMON"
	DAEMON=
}

# best_begin BUILD: the best of 7 `begin` (each committed), in seconds
best_begin() {
	_b=
	for _ in 1 2 3 4 5 6 7; do
		_s=$(date +%s%N)
		"$1/agent/chjournal" -c "$W/conf" begin bench >/dev/null 2>&1 || die "begin failed"
		_e=$(date +%s%N)
		"$1/agent/chjournal" -c "$W/conf" commit bench || die "commit failed"
		_t=$((_e - _s))
		if [ -z "$_b" ] || [ "$_t" -lt "$_b" ]; then _b=$_t; fi
	done
	awk -v ns="$_b" 'BEGIN { printf "%.3f", ns / 1e9 }'
}

# hold MODE [PROCS COUNT]: N processes holding K descriptors each (or PROCS
# and COUNT as hold-fds.py takes them), until unhold
hold() {
	rm -f "$W/hold.in" "$W/hold.out" && mkfifo "$W/hold.in"
	python3 "$HOLD" "${2:-$N}" "${3:-$K}" "$1" "$W/fds" "$W/spool/a/1." <"$W/hold.in" >"$W/hold.out" &
	HOLDER=$!
	exec 9>"$W/hold.in"
	for _ in $(seq 1200); do
		grep -q ready "$W/hold.out" && return 0
		kill -0 "$HOLDER" 2>/dev/null || die "hold-fds.py failed"
		sleep 0.05
	done
	die "hold-fds.py did not get ready"
}
unhold() {
	exec 9>&-
	wait "$HOLDER"
	HOLDER=
}

# measure BUILD: fills T0, TR, TW, TM, TMM (seconds)
measure() {
	daemon_start "$1"
	"$1/agent/chjournal" -c "$W/conf" begin bench >/dev/null 2>&1 &&
		"$1/agent/chjournal" -c "$W/conf" commit bench || die "first run failed"
	T0=$(best_begin "$1")
	hold read
	TR=$(best_begin "$1")
	unhold
	hold write
	TW=$(best_begin "$1")
	unhold
	hold map
	TM=$(best_begin "$1")
	unhold
	hold maps 1 "$M"
	TMM=$(best_begin "$1")
	unhold
	daemon_stop
}

per_fd_us() {
	awk -v t="$1" -v t0="$2" -v n="$((N * K))" 'BEGIN { printf "%.2f", (t - t0) * 1e6 / n }'
}

nprocs=$(ls /proc | grep -c '^[0-9]')
measure "$CHJ_BUILDDIR"
if [ -n "$BASE" ]; then
	s0=$T0 sr=$TR sw=$TW sm=$TM smm=$TMM
	measure "$BASE"
	b0=$T0 br=$TR bw=$TW bm=$TM bmm=$TMM
	T0=$s0 TR=$sr TW=$sw TM=$sm TMM=$smm
fi

echo "begin and the scan for files open for writing ($(nproc) CPUs, $nprocs processes before;"
echo "N = $N processes x K = $K descriptors; best of 7, warm)"
echo
if [ -n "$BASE" ]; then
	echo "| Measurement | begin (s) | $BASE (s) |"
	echo "|---|---|---|"
	echo "| no process added | $T0 | $b0 |"
	echo "| N x K read-only descriptors | $TR | $br |"
	echo "| N x K descriptors open for writing | $TW | $bw |"
	echo "| N x K read-only descriptors, and a read-only shared mapping under the root each | $TM | $bm |"
	echo "| one process of M = $M mappings, its read-only shared mapping under the root after them | $TMM | $bmm |"
else
	echo "| Measurement | begin (s) |"
	echo "|---|---|"
	echo "| no process added | $T0 |"
	echo "| N x K read-only descriptors | $TR |"
	echo "| N x K descriptors open for writing | $TW |"
	echo "| N x K read-only descriptors, and a read-only shared mapping under the root each | $TM |"
	echo "| one process of M = $M mappings, its read-only shared mapping under the root after them | $TMM |"
fi
sep=
[ -z "$BASE" ] || sep=" |"
echo "| added per descriptor, read-only (us; the processes' own cost included) | $(per_fd_us "$TR" "$T0") |$sep"
echo "| added per descriptor, open for writing (us; the same) | $(per_fd_us "$TW" "$T0") |$sep"
echo "| added per process by its read-only shared mapping under the root (us) | $(awk -v t="$TM" -v r="$TR" -v n="$N" 'BEGIN { printf "%.2f", (t - r) * 1e6 / n }') |$sep"
