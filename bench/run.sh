#!/bin/sh
# bench/run.sh: the chjournal benchmarks (`make bench`). Prints one table.
#
# Environment:
#   CHJ_BUILDDIR   build directory holding daemon/chjournald, agent/chjournal,
#                  bench/bare-walk
#   BENCH_SCALE    quick = the small tree only (10k dirs / 100k files, CI-sized);
#                  full = small and large (100k dirs / 1M files; the default);
#                  huge = small, large and 1M dirs / 2M files
#   BENCH_BACKENDS backends to measure (default "inotify fanotify"); one the
#                  daemon refuses (old build, kernel, privileges) shows n/a
#   BENCH_TMP      where the work directory goes (default /var/tmp)
#   BENCH_SEED     tree/selection seed (default 1)
#   BENCH_WRITE_SECONDS  length of the writer runs (default 10)
#   BENCH_DRAIN_FILES    files created while the daemon is stopped (default
#                  100000, 3 events each)
#   BENCH_COLD     1 = also measure with dropped caches (needs root; default:
#                  1 when root), 0 = warm cache only
#   BENCH_KEEP     keep the work directory
#
# For each tree (bench/gen-tree, Cyrus-like) and backend, in one run:
#  a) start-up until ready, warm (best of 3) against bench/bare-walk (readdir +
#     d_type + inotify_add_watch, no table; best of 3, alternating) and
#     inotifywait -m -r; cold; resident memory; user-space bytes per watched
#     directory (the daemon's "watch table" log line); kernel slab growth:
#     SUnreclaim and ext4_inode_cache with the daemon ready, after
#     drop_caches, against the same without it (watched inodes stay pinned)
#  b) 1% of the files changed after a commit: `begin`, then `list` (best of
#     3) vs `find ROOT -newer MARKER -type f` (best of 2) warm; begin+list vs
#     find cold; same file set?
#  c) one writer creating 200-byte files as fast as it can: its rate with and
#     without the daemon, events journaled per second, events lost (created,
#     not listed), daemon CPU as a share of the writer's
#  d) backlog: daemon stopped (SIGSTOP), N files created, SIGCONT: events per
#     second until `sync` returns, against a plain read() loop (bare-walk -d)
#  e) restarts: a restart in place (SIGUSR2) until ready, its state, the
#     rescans it recorded (none), then 1% changed: begin and list as in b);
#     a stop and start (the rescan of every root a crash or reboot leaves):
#     list resolving it on 1 and on 8 threads against `find -newer`, warm
#     (best of 2) and cold
# and how each figure grows from the small tree to the large one.
# The daemon and helpers are always stopped, sysctls restored and the work
# directory removed.

set -u
export LC_ALL=C
unset CHJOURNAL_CONF

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
CHJ_BUILDDIR=${CHJ_BUILDDIR:-$SRCDIR}
CHJOURNAL="$CHJ_BUILDDIR/agent/chjournal"
CHJOURNALD="$CHJ_BUILDDIR/daemon/chjournald"
BARE="$CHJ_BUILDDIR/bench/bare-walk"
GEN="$SRCDIR/bench/gen-tree"

case "${BENCH_SCALE:-full}" in
quick|small) SCALES="small" ;;
full) SCALES="small large" ;;
huge) SCALES="small large huge" ;;
*) echo "bench: BENCH_SCALE must be quick, full or huge" >&2; exit 2 ;;
esac
BACKENDS=${BENCH_BACKENDS:-inotify fanotify}
SEED=${BENCH_SEED:-1}
WSECS=${BENCH_WRITE_SECONDS:-10}
DRAIN_FILES=${BENCH_DRAIN_FILES:-100000}
BTMP=${BENCH_TMP:-/var/tmp}
if [ "$(id -u)" = 0 ]; then COLD=${BENCH_COLD:-1}; else COLD=0; fi

die() { echo "bench: $*" >&2; exit 1; }
scale_dirs() { case $1 in small) echo 10000 ;; large) echo 100000 ;; huge) echo 1000000 ;; esac; }
scale_files() { case $1 in small) echo 100000 ;; large) echo 1000000 ;; huge) echo 2000000 ;; esac; }

for p in "$CHJOURNAL" "$CHJOURNALD" "$BARE"; do
	[ -x "$p" ] || die "'$p' not built (set CHJ_BUILDDIR or run make bench)"
done
command -v python3 >/dev/null || die "python3 is needed (bench/gen-tree)"
command -v inotifywait >/dev/null || die "inotifywait is needed (package inotify-tools)"
[ -d "$BTMP" ] || die "BENCH_TMP '$BTMP' is not a directory"

MAXD=0; MAXF=0
for s in $SCALES; do MAXD=$(scale_dirs "$s"); MAXF=$(scale_files "$s"); done
avail_kb=$(df -Pk "$BTMP" | awk 'NR == 2 { print $4 }')
need_kb=$(( (MAXF + 3 * MAXD) * 6 * 2 + 1048576 ))
[ "$need_kb" -lt 5242880 ] && need_kb=5242880
if [ "$avail_kb" -lt "$need_kb" ]; then
	die "only $((avail_kb / 1024)) MiB free in '$BTMP'; $((need_kb / 1024)) MiB needed: refusing (set BENCH_TMP elsewhere)"
fi

# sysctls: watches for the daemon, queue room for the backlog run (inotify's
# and fanotify's queue sizes are read when the daemon starts); raised
# temporarily when root, restored on exit.
WATCH_SYSCTL=/proc/sys/fs/inotify/max_user_watches
QUEUE_SYSCTL=/proc/sys/fs/inotify/max_queued_events
FQUEUE_SYSCTL=/proc/sys/fs/fanotify/max_queued_events	# Linux 5.13 and later
old_watches=$(cat "$WATCH_SYSCTL")
old_queue=$(cat "$QUEUE_SYSCTL")
old_fqueue=$(cat "$FQUEUE_SYSCTL" 2>/dev/null)
need_watches=$(( MAXD * 24 / 10 + 40000 ))	# the daemon and bare-walk -d at once
need_queue=$(( DRAIN_FILES * 4 + 100000 ))
raised=
if [ "$(id -u)" = 0 ]; then
	raised=1
	[ "$old_watches" -lt "$need_watches" ] && echo "$need_watches" >"$WATCH_SYSCTL"
	[ "$old_queue" -lt "$need_queue" ] && echo "$need_queue" >"$QUEUE_SYSCTL"
	[ -n "$old_fqueue" ] && [ "$old_fqueue" -lt "$need_queue" ] && echo "$need_queue" >"$FQUEUE_SYSCTL"
elif [ "$old_watches" -lt "$need_watches" ]; then
	die "fs.inotify.max_user_watches is $old_watches; $need_watches needed: raise it (sysctl) first"
fi

W=$(mktemp -d "$BTMP/chj-bench.XXXXXX") || die "cannot create a work directory in '$BTMP'"
DPID=
IWPID=
BWPID=

cleanup() {
	for pid in $IWPID $BWPID; do
		kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	if [ -n "$DPID" ]; then
		kill -CONT "$DPID" 2>/dev/null
		kill -TERM "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	fi
	if [ -n "$raised" ]; then
		echo "$old_watches" >"$WATCH_SYSCTL"
		echo "$old_queue" >"$QUEUE_SYSCTL"
		[ -z "$old_fqueue" ] || echo "$old_fqueue" >"$FQUEUE_SYSCTL"
	fi
	if [ -n "${BENCH_KEEP:-}" ]; then
		echo "bench: work directory kept: $W" >&2
	else
		echo "bench: removing $W ..." >&2
		cd / && rm -rf "$W"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

now() { date +%s.%N; }
# elapsed START: seconds since START, 3 decimals
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
note() { echo "bench: $*" >&2; }
# rss PID: VmRSS in MiB
rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# cpu PID: user+system seconds so far
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# slab: "SUnreclaim_KiB ext4_inode_cache_KiB"
slab() {
	su=$(awk '/^SUnreclaim:/ { print $2 }' /proc/meminfo)
	ic=$(awk '$1 == "ext4_inode_cache" { printf "%d", $2 * $4 / 1024 }' /proc/slabinfo 2>/dev/null)
	echo "$su ${ic:-0}"
}
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b ? a : b) }'; }
add() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.3f", a + b; else print "-" }'; }

# put KEY VALUE: one result of the current tree/backend
put() { echo "$1 $2" >>"$RES"; }

cat >"$W/writer.py" <<'EOF'
# writer.py MANIFEST SECONDS TAG OUTLIST: creates 200-byte files for SECONDS
# seconds, mostly in existing mailboxes, one in 20 in a new directory (a new
# mailbox, then 20 files in it); prints "FILES SECONDS CPU_SECONDS".
import os, random, sys, time
dirs = sorted({os.path.dirname(p) for p in open(sys.argv[1]).read().split("\n")
               if p.endswith("/cyrus.header")})
secs, tag = float(sys.argv[2]), sys.argv[3]
rng = random.Random(tag)
data = b"From: writer@example.org\r\nSubject: bench\r\n\r\n" + b"x" * 155
flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
made = []
i = nd = 0
t0 = time.time()
end = t0 + secs
newdir = None
while True:
    if i % 64 == 0 and time.time() >= end:
        break
    if i % 400 == 0:
        newdir = "%s/%s-new%d" % (rng.choice(dirs), tag, nd)
        nd += 1
        os.mkdir(newdir)
    if i % 400 < 20:
        p = "%s/%d." % (newdir, i)
    else:
        p = "%s/%s-%d." % (rng.choice(dirs), tag, i)
    fd = os.open(p, flags, 0o600)
    os.write(fd, data)
    os.close(fd)
    made.append(p)
    i += 1
dt = time.time() - t0
with open(sys.argv[4], "w") as f:
    f.write("\n".join(made) + "\n")
t = os.times()
print(i, "%.3f" % dt, "%.2f" % (t.user + t.system))
EOF

# --- one tree, one backend ------------------------------------------------------

# write_conf BACKEND
write_conf() {
	cat >"$CONF" <<EOF
journal = $T/state/journal.db
root = $ROOT
flush_interval_ms = 1000
batch_size = 10000
sync_timeout = 900
log_level = info
EOF
	[ "$1" = inotify ] || echo "backend = $1" >>"$CONF"
}

chj() { "$CHJOURNAL" -c "$CONF" "$@"; }

daemon_ready() {
	grep -q 'ready:' "$LOG" 2>/dev/null &&
	chj status 2>/dev/null | grep -q '^daemon: *running'
}

# daemon_start [keep]: fresh journal (keep: the journal as it is), start,
# wait until ready; RES_S = seconds (wall, from exec until `status` says
# running). Returns 1 if it refused.
daemon_start() {
	[ "${1:-}" = keep ] || rm -rf "$T/state"
	: >"$LOG"
	t=$(now)
	"$CHJOURNALD" -c "$CONF" 2>>"$LOG" &
	DPID=$!
	while ! daemon_ready; do
		if ! kill -0 "$DPID" 2>/dev/null; then
			wait "$DPID" 2>/dev/null
			DPID=
			return 1
		fi
		sleep 0.01
	done
	RES_S=$(elapsed "$t")
	return 0
}

daemon_stop() {
	kill -CONT "$DPID" 2>/dev/null
	kill -TERM "$DPID"
	wait "$DPID"
	rc=$?
	[ "$rc" -eq 0 ] || note "chjournald exited with status $rc on SIGTERM"
	DPID=
	return 0
}

# inotifywait_start: RES_S = seconds until "Watches established", RES_RSS
inotifywait_start() {
	: >"$T/iw.err"
	t=$(now)
	inotifywait -m -r "$ROOT" >/dev/null 2>"$T/iw.err" &
	IWPID=$!
	while ! grep -q 'Watches established' "$T/iw.err"; do
		if ! kill -0 "$IWPID" 2>/dev/null; then
			note "inotifywait failed: $(cat "$T/iw.err")"
			IWPID=; RES_S=-; RES_RSS=-
			return
		fi
		sleep 0.01
	done
	RES_S=$(elapsed "$t")
	RES_RSS=$(rss "$IWPID")
	kill -TERM "$IWPID"; wait "$IWPID" 2>/dev/null; IWPID=
}

# change_pct SEED OUT: 1% of the files touched or appended to, their sorted
# list in OUT
change_pct() {
	python3 - "$T/manifest" "$2" "$1" <<'EOF'
import os, random, sys
files = open(sys.argv[1]).read().split("\n")[:-1]
rng = random.Random(int(sys.argv[3]))
pick = rng.sample(files, max(1, len(files) // 100))
with open(sys.argv[2], "w") as out:
    for i, p in enumerate(pick):
        if i % 2:
            os.utime(p)  # touch
        else:
            fd = os.open(p, os.O_WRONLY | os.O_APPEND)
            os.write(fd, b"X-Bench: appended\r\n")
            os.close(fd)
        out.write(p + "\n")
EOF
	sort -o "$2" "$2"
}

# restart_in_place: SIGUSR2, then until the new program is ready; RES_S
restart_in_place() {
	n0=$(grep -c 'restarted in place' "$LOG")
	t=$(now)
	kill -USR2 "$DPID"
	while [ "$(grep -c 'restarted in place' "$LOG")" -le "$n0" ] || ! daemon_ready; do
		kill -0 "$DPID" 2>/dev/null || die "chjournald did not survive SIGUSR2: $(tail -n 1 "$LOG")"
		sleep 0.005
	done
	RES_S=$(elapsed "$t")
}

# timed_list THREADS OUT: RES_S = seconds of one list with the rescan walk
# on THREADS threads
timed_list() {
	t=$(now)
	CHJ_RESCAN_THREADS=$1 chj list bench -0 >"$2" || die "list failed"
	RES_S=$(elapsed "$t")
}

# measure BACKEND: every figure for the tree at $ROOT into $RES
measure() {
	be=$1
	write_conf "$be"
	# a build without this backend refuses the configuration
	if ! chj status >/dev/null 2>"$T/conf.err" && grep -q "'backend'" "$T/conf.err"; then
		note "$be: n/a: $(head -n 1 "$T/conf.err")"
		put na "$(head -n 1 "$T/conf.err")"
		return
	fi
	# a) warm start-up: the daemon against the bare walk, alternating
	note "$scale/$be: a) warm start-up ..."
	"$BARE" "$ROOT" >/dev/null		# warms the cache
	best_d=999999; best_b=999999; best_r=999999
	for i in 1 2 3; do
		set -- $("$BARE" "$ROOT"); best_b=$(min "$best_b" "$2")
		if ! daemon_start; then
			note "$be: n/a: the daemon refused to start: $(tail -n 1 "$LOG")"
			put na "$(tail -n 1 "$LOG" | sed 's/^.*chjournald: //')"
			return
		fi
		best_d=$(min "$best_d" "$RES_S")
		best_r=$(min "$best_r" "$(sed -n 's/.*ready: .* in \([0-9.]*\) s.*/\1/p' "$LOG" | tail -n 1)")
		[ "$i" = 3 ] || daemon_stop
	done
	put start_warm "$best_d"
	put bare_warm "$best_b"
	put ready_log "$best_r"
	put watched "$(sed -n 's/.*ready: \([0-9]*\) directories.*/\1/p' "$LOG" | tail -n 1)"
	sleep 2					# the first flush is done: settled memory
	put rss "$(rss "$DPID")"
	put bytes_dir "$(sed -n 's/.*watch table: .*(\([0-9.]*\) per directory).*/\1/p' "$LOG" | tail -n 1)"
	put leaves "$(sed -n 's/.*watch table: .*; \([0-9]*\) without subdirectories not read.*/\1/p' "$LOG" | tail -n 1)"
	grep -q 'could not be watched' "$LOG" && note "daemon: some directories could not be watched"
	inotifywait_start; put iw_warm "$RES_S"; put iw_rss "$RES_RSS"

	# d) backlog drain (the daemon is running from a))
	note "$scale/$be: d) backlog of $DRAIN_FILES files ..."
	chj sync >/dev/null
	kill -STOP "$DPID"
	python3 - "$T/manifest" "$DRAIN_FILES" <<'EOF'
import os, sys
dirs = sorted({os.path.dirname(p) for p in open(sys.argv[1]).read().split("\n") if p})
n = int(sys.argv[2])
for i in range(n):
    fd = os.open("%s/drain-%d." % (dirs[i % len(dirs)], i), os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
EOF
	c0=$(cpu "$DPID")
	t=$(now)
	kill -CONT "$DPID"
	chj sync >/dev/null || note "sync after the backlog failed"
	drain_s=$(elapsed "$t")
	c1=$(cpu "$DPID")
	ovf=$(chj status | sed -n 's/^overflows: *//p')
	# CREATE + CLOSE_WRITE per file (os.open/close of an empty file)
	put drain_rate "$(calc '%.0f' "2 * $DRAIN_FILES / $drain_s")"
	put drain_cpu_rate "$(calc '%.0f' "2 * $DRAIN_FILES / ($c1 - $c0 + 0.001)")"
	put drain_ovf "${ovf:-?}"
	# the daemon's own figure: events read and handled per second
	put drain_read_rate "$(sed -n 's/.*inotify backlog: .*(\([0-9]*\)\/s).*/\1/p' "$LOG" | sort -n | tail -n 1)"
	# the backlog of removing those files, read by a plain read() loop
	rm -f "$T/bw.in"
	mkfifo "$T/bw.in"
	"$BARE" -d "$ROOT" <"$T/bw.in" >"$T/bw.out" &
	BWPID=$!
	exec 9>"$T/bw.in"
	while ! grep -q ready "$T/bw.out" 2>/dev/null; do sleep 0.05; done
	python3 - "$T/manifest" "$DRAIN_FILES" <<'EOF'
import os, sys
dirs = sorted({os.path.dirname(p) for p in open(sys.argv[1]).read().split("\n") if p})
for i in range(int(sys.argv[2])):
    os.unlink("%s/drain-%d." % (dirs[i % len(dirs)], i))
EOF
	echo go >&9
	exec 9>&-
	wait "$BWPID"; BWPID=
	set -- $(tail -n 1 "$T/bw.out")
	put plain_read_rate "$(calc '%.0f' "$1 / $2")"
	chj sync >/dev/null

	# b) 1% changed: begin+list vs find -newer
	note "$scale/$be: b) first (full) run, then 1% changed ..."
	chj begin bench >/dev/null && chj list bench -0 >/dev/null && chj commit bench >/dev/null ||
		die "first run failed"
	touch "$T/marker"
	sleep 1
	change_pct "$SEED" "$T/changed"
	put nchanged "$(wc -l <"$T/changed")"
	find "$ROOT" -newer "$T/marker" -type f >/dev/null	# warm-up
	t=$(now)
	chj begin bench >/dev/null || die "begin failed"
	put begin_warm "$(elapsed "$t")"
	best_l=999999
	for i in 1 2 3; do
		t=$(now)
		chj list bench -0 >"$T/inc.list" || die "list failed"
		best_l=$(min "$best_l" "$(elapsed "$t")")
	done
	put list_warm "$best_l"
	best_f=999999
	for i in 1 2; do
		t=$(now)
		find "$ROOT" -newer "$T/marker" -type f >"$T/find.out"
		best_f=$(min "$best_f" "$(elapsed "$t")")
	done
	put find_warm "$best_f"
	if [ "$COLD" = 1 ]; then
		chj abort bench >/dev/null || die "abort failed"
		drop_caches
		t=$(now)
		chj begin bench >/dev/null && chj list bench -0 >/dev/null || die "begin/list failed"
		put list_cold "$(elapsed "$t")"
		drop_caches
		t=$(now)
		find "$ROOT" -newer "$T/marker" -type f >/dev/null
		put find_cold "$(elapsed "$t")"
	fi
	chj commit bench >/dev/null || die "commit failed"
	tr '\0' '\n' <"$T/inc.list" | sort >"$T/inc.sorted"
	sort -o "$T/find.out" "$T/find.out"
	put mismatch "$(comm -3 "$T/inc.sorted" "$T/find.out" | wc -l)"
	put missed "$(comm -23 "$T/changed" "$T/inc.sorted" | wc -l)"

	# c) one writer as fast as it can
	note "$scale/$be: c) writer with the daemon running ($WSECS s) ..."
	ovf0=$(chj status | sed -n 's/^overflows: *//p')
	c0=$(cpu "$DPID")
	t=$(now)
	set -- $(python3 "$W/writer.py" "$T/manifest" "$WSECS" "wd$be" "$T/created.d")
	wd_n=$1 wd_s=$2 wd_cpu=$3
	chj sync >/dev/null || die "sync after the writer failed"
	wd_journal_s=$(elapsed "$t")
	c1=$(cpu "$DPID")
	ovf1=$(chj status | sed -n 's/^overflows: *//p')
	chj begin bench >/dev/null && chj list bench -0 >"$T/w.list" || die "begin/list failed"
	chj commit bench >/dev/null
	tr '\0' '\n' <"$T/w.list" | sort >"$T/w.sorted"
	sort -o "$T/created.d" "$T/created.d"
	put writer_with "$(calc '%.0f' "$wd_n / $wd_s")"
	put journal_rate "$(calc '%.0f' "$wd_n / $wd_journal_s")"
	put lost "$(comm -23 "$T/created.d" "$T/w.sorted" | wc -l)"
	put writer_ovf "$(( ${ovf1:-0} - ${ovf0:-0} ))"
	put cpu_share "$(calc '%.0f' "100 * ($c1 - $c0) / ($wd_cpu + 0.001)")"
	put rss_after "$(rss "$DPID")"

	# e) a restart in place: no crawl, no rescan, the next list as before
	note "$scale/$be: e) restart in place (SIGUSR2) ..."
	chj sync >/dev/null
	r0=$(chj query | grep -c 'daemon was not running')
	restart_in_place
	put restart_s "$RES_S"
	put restart_bytes "$(sed -n 's/.*restart: .*, \([0-9]*\) bytes of state.*/\1/p' "$LOG" | tail -n 1)"
	change_pct "$((SEED + 1))" "$T/changed.e"
	t=$(now)
	chj begin bench >/dev/null || die "begin failed"
	put restart_begin "$(elapsed "$t")"
	best_l=999999
	for i in 1 2 3; do
		timed_list 8 "$T/e.list"
		best_l=$(min "$best_l" "$RES_S")
	done
	put restart_list "$best_l"
	put restart_rescans "$(( $(chj query | grep -c 'daemon was not running') - r0 ))"
	chj commit bench >/dev/null || die "commit failed"
	daemon_stop

	# e) a stop and start: the rescan of every root, resolved by list's walk
	note "$scale/$be: e) stop and start: the rescan walk ..."
	touch "$T/marker.e"
	sleep 1
	change_pct "$((SEED + 2))" "$T/changed.e2"
	daemon_start keep || die "the daemon did not start again"
	chj begin bench >/dev/null || die "begin failed"
	timed_list 8 "$T/r.list"			# warms the cache
	best_1=999999; best_8=999999; best_f=999999
	for i in 1 2; do
		timed_list 1 "$T/r.list"; best_1=$(min "$best_1" "$RES_S")
		timed_list 8 "$T/r.list"; best_8=$(min "$best_8" "$RES_S")
		t=$(now)
		find "$ROOT" -newer "$T/marker.e" -type f >"$T/find.e"
		best_f=$(min "$best_f" "$(elapsed "$t")")
	done
	put rescan_1 "$best_1"
	put rescan_8 "$best_8"
	put rescan_find "$best_f"
	tr '\0' '\n' <"$T/r.list" | sort >"$T/r.sorted"
	sort -o "$T/find.e" "$T/find.e"
	put rescan_listed "$(wc -l <"$T/r.sorted")"
	put rescan_found "$(wc -l <"$T/find.e")"
	put rescan_missed "$(comm -23 "$T/find.e" "$T/r.sorted" | wc -l)"
	if [ "$COLD" = 1 ]; then
		drop_caches
		timed_list 1 "$T/r.list"; put rescan_1_cold "$RES_S"
		drop_caches
		timed_list 8 "$T/r.list"; put rescan_8_cold "$RES_S"
		drop_caches
		t=$(now)
		find "$ROOT" -newer "$T/marker.e" -type f >/dev/null
		put rescan_find_cold "$(elapsed "$t")"
	fi
	chj commit bench >/dev/null || die "commit failed"
	daemon_stop
	# after e): the files it writes would be in the rescan's window
	note "$scale/$be: c) writer without the daemon ($WSECS s) ..."
	set -- $(python3 "$W/writer.py" "$T/manifest" "$WSECS" "wn$be" "$T/created.n")
	put writer_without "$(calc '%.0f' "$1 / $2")"

	# a) cold start-up and kernel slab: watched inodes stay pinned
	if [ "$COLD" = 1 ]; then
		note "$scale/$be: a) cold start-up, kernel slab ..."
		drop_caches; sleep 1
		set -- $(slab); s0_su=$1 s0_ic=$2
		if daemon_start; then
			put start_cold "$RES_S"
			drop_caches; sleep 1
			set -- $(slab)
			put slab_su "$(calc '%.1f' "($1 - $s0_su) / 1024")"
			put slab_ic "$(calc '%.1f' "($2 - $s0_ic) / 1024")"
			daemon_stop
		fi
		drop_caches
		set -- $("$BARE" "$ROOT"); put bare_cold "$2"
	fi
}

# --- the trees --------------------------------------------------------------------
for scale in $SCALES; do
	T="$W/$scale"
	mkdir -p "$T"
	ROOT="$T/spool"
	CONF="$T/chjournal.conf"
	LOG="$T/daemon.log"
	dirs=$(scale_dirs "$scale"); files=$(scale_files "$scale")
	note "generating $dirs mailboxes / $files messages in $ROOT ..."
	t=$(now)
	python3 "$GEN" --dirs "$dirs" --files "$files" --seed "$SEED" --out "$ROOT" \
		--manifest "$T/manifest" >&2 || die "gen-tree failed"
	echo "$scale $(find "$ROOT" -type d | wc -l) $(wc -l <"$T/manifest") $(du -sk "$ROOT" | awk '{ printf "%.0f", $1 / 1024 }') $(elapsed "$t")" >>"$W/trees"
	for be in $BACKENDS; do
		RES="$W/res.$scale.$be"
		: >"$RES"
		measure "$be"
	done
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$ROOT"
done

# --- the table ------------------------------------------------------------------
# get SCALE BACKEND KEY: a result, "n/a" for a refused backend, "-" if none
get() {
	f="$W/res.$1.$2"
	if grep -q '^na ' "$f"; then echo n/a; return; fi
	v=$(awk -v k="$3" '$1 == k { print $2 }' "$f" | tail -n 1)
	echo "${v:--}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
kib() { awk -v a="${1:--}" 'BEGIN { if (a + 0 > 0) printf "%.0f", a / 1024; else print "-" }'; }
first=${SCALES%% *}
last=${SCALES##* }

# row TITLE FORMULA: FORMULA is shell code printing one cell from $s $b
row() {
	line="| $1 |"
	for b in $BACKENDS; do
		for s in $SCALES; do
			line="$line $(eval "$2") |"
		done
		if [ "$first" != "$last" ]; then
			line="$line $(s=$first; x=$(eval "$2"); s=$last; y=$(eval "$2"); ratio "$y" "$x") |"
		fi
	done
	echo "$line"
}

echo
echo "chjournal benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "kernel: $(uname -sr), CPUs: $(nproc), memory: $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), filesystem: $(df -PT "$BTMP" | awk 'NR == 2 { print $2 }')"
while read -r s d f mb gs; do
	echo "tree $s: $d directories, $f files, $mb MiB (generated in $gs s)"
done <"$W/trees"
echo "warm = page cache hot; cold = after drop_caches; growth = the last tree / the first"
echo
hdr="| Measurement |"; sep="|---|"
for b in $BACKENDS; do
	for s in $SCALES; do hdr="$hdr $b $s |"; sep="$sep---|"; done
	[ "$first" != "$last" ] && { hdr="$hdr $b growth |"; sep="$sep---|"; }
done
echo "$hdr"
echo "$sep"
row "a) start-up until ready, warm, best of 3 (s): exec to \`status\` running" 'get $s $b start_warm'
row "a) of which watching (log: \"ready: ... in S s\"), best of 3 (s)" 'get $s $b ready_log'
row "a) bare readdir+inotify_add_watch walk, warm, best of 3 (s)" 'get $s $b bare_warm'
row "a) watching / bare walk (target <= 1.1)" 'ratio $(get $s $b ready_log) $(get $s $b bare_warm)'
row "a) inotifywait -m -r, warm (s)" 'get $s $b iw_warm'
if [ "$COLD" = 1 ]; then
	row "a) start-up until ready, cold (s)" 'get $s $b start_cold'
	row "a) bare walk, cold (s)" 'get $s $b bare_cold'
fi
row "a) directories watched" 'get $s $b watched'
row "a) of which not read: no subdirectory (st_nlink 2)" 'get $s $b leaves'
row "a) daemon RSS when ready (MiB)" 'get $s $b rss'
row "a) inotifywait RSS (MiB)" 'get $s $b iw_rss'
row "a) user-space bytes per watched directory (target <= 60)" 'get $s $b bytes_dir'
if [ "$COLD" = 1 ]; then
	row "a) kernel SUnreclaim growth, ready, after drop_caches (MiB)" 'get $s $b slab_su'
	row "a) ext4_inode_cache growth, ready, after drop_caches (MiB)" 'get $s $b slab_ic'
fi
row "b) 1% of files changed: begin (sync + snapshot), warm (s)" 'get $s $b begin_warm'
row "b) list, warm, best of 3 (s)" 'get $s $b list_warm'
row "b) find -newer, warm, best of 2 (s)" 'get $s $b find_warm'
row "b) find / list, warm (target >= 100)" 'ratio $(get $s $b find_warm) $(get $s $b list_warm)'
row "b) find / (begin+list), warm" 'ratio $(get $s $b find_warm) $(add $(get $s $b begin_warm) $(get $s $b list_warm))'
if [ "$COLD" = 1 ]; then
	row "b) begin+list, cold (s)" 'get $s $b list_cold'
	row "b) find -newer, cold (s)" 'get $s $b find_cold'
fi
row "b) list vs find mismatches (changed, not listed)" 'echo "$(get $s $b mismatch) ($(get $s $b missed))"'
row "c) writer files/s with the daemon / without" 'echo "$(get $s $b writer_with) / $(get $s $b writer_without)"'
row "c) events journaled per second (until sync returns)" 'get $s $b journal_rate'
row "c) events lost; queue overflows (must be 0)" 'echo "$(get $s $b lost); $(get $s $b writer_ovf)"'
row "c) daemon CPU / writer CPU (%)" 'get $s $b cpu_share'
row "c) daemon RSS after the writer (MiB)" 'get $s $b rss_after'
row "d) backlog: events/s from SIGCONT until sync returns" 'get $s $b drain_rate'
row "d) backlog: events per daemon CPU second" 'get $s $b drain_cpu_rate'
row "d) backlog: events/s read and handled (daemon log; target >= 1M)" 'get $s $b drain_read_rate'
row "d) a plain read() loop on a backlog of the same size (events/s)" 'get $s $b plain_read_rate'
row "d) backlog overflows" 'get $s $b drain_ovf'
row "e) restart in place (SIGUSR2) until ready (s)" 'get $s $b restart_s'
row "e) state handed over (KiB)" 'kib $(get $s $b restart_bytes)'
row "e) rescans recorded by the restart (must be 0)" 'get $s $b restart_rescans'
row "e) after it, 1% changed: begin (s)" 'get $s $b restart_begin'
row "e) after it, 1% changed: list, best of 3 (s) (b: without a restart)" 'echo "$(get $s $b restart_list) ($(get $s $b list_warm))"'
row "e) stop and start: list resolving the rescan of every root, warm, 1 thread (s)" 'get $s $b rescan_1'
row "e) the same on 8 threads (s)" 'get $s $b rescan_8'
row "e) find -newer, warm, best of 2 (s)" 'get $s $b rescan_find'
row "e) find / list on 8 threads, warm" 'ratio $(get $s $b rescan_find) $(get $s $b rescan_8)'
if [ "$COLD" = 1 ]; then
	row "e) list resolving the rescan, cold, 1 thread / 8 threads (s)" 'echo "$(get $s $b rescan_1_cold) / $(get $s $b rescan_8_cold)"'
	row "e) find -newer, cold (s)" 'get $s $b rescan_find_cold'
fi
row "e) listed by the rescan / found by find (found, not listed: must be 0)" 'echo "$(get $s $b rescan_listed) / $(get $s $b rescan_found) ($(get $s $b rescan_missed))"'
for b in $BACKENDS; do
	for s in $SCALES; do
		[ "$(get $s $b start_warm)" = n/a ] && echo "$b: n/a: $(sed -n 's/^na //p' "$W/res.$s.$b" | head -n 1)" && break
	done
done
echo
