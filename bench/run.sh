#!/bin/sh
# bench/run.sh: the chjournal benchmarks (`make bench`). Prints one table.
#
# Environment:
#   CHJ_BUILDDIR   build directory holding daemon/chjournald, agent/chjournal
#   BENCH_DIRS     mailbox directories in the generated tree (default 100000)
#   BENCH_FILES    message files in the generated tree (default 1000000)
#   BENCH_SCALE    "small" = 10000 dirs / 100000 files (quick run)
#   BENCH_TMP      where the work directory goes (default /var/tmp)
#   BENCH_SEED     tree/selection seed (default 1)
#   BENCH_WRITE_SECONDS  length of the writer runs (default 10)
#   BENCH_COLD     1 = also measure with dropped caches (needs root; default:
#                  1 when root), 0 = warm cache only
#
# Measured in one run on one generated Cyrus-like tree (bench/gen-tree):
#  a) start-up until ready and resident memory: chjournald vs inotifywait -m -r
#  b) 1% of the files changed after a commit: `begin`+`list` vs
#     `find ROOT -newer MARKER -type f`, and whether both give the same set
#  c) one writer creating 200-byte files as fast as it can (existing and new
#     directories): its rate with and without the daemon, events journaled per
#     second, and events lost (files created that `list` does not show).
# The daemon and inotifywait are always stopped and the work directory removed.

set -u
export LC_ALL=C
unset CHJOURNAL_CONF

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
CHJ_BUILDDIR=${CHJ_BUILDDIR:-$SRCDIR}
CHJOURNAL="$CHJ_BUILDDIR/agent/chjournal"
CHJOURNALD="$CHJ_BUILDDIR/daemon/chjournald"
GEN="$SRCDIR/bench/gen-tree"

if [ "${BENCH_SCALE:-}" = small ]; then
	DIRS=${BENCH_DIRS:-10000}
	FILES=${BENCH_FILES:-100000}
else
	DIRS=${BENCH_DIRS:-100000}
	FILES=${BENCH_FILES:-1000000}
fi
SEED=${BENCH_SEED:-1}
WSECS=${BENCH_WRITE_SECONDS:-10}
BTMP=${BENCH_TMP:-/var/tmp}
if [ "$(id -u)" = 0 ]; then COLD=${BENCH_COLD:-1}; else COLD=0; fi

die() { echo "bench: $*" >&2; exit 1; }

for p in "$CHJOURNAL" "$CHJOURNALD"; do
	[ -x "$p" ] || die "'$p' not built (set CHJ_BUILDDIR or run make)"
done
command -v python3 >/dev/null || die "python3 is needed (bench/gen-tree)"
command -v inotifywait >/dev/null || die "inotifywait is needed (package inotify-tools)"
[ -d "$BTMP" ] || die "BENCH_TMP '$BTMP' is not a directory"

# Free space: at least 5 GB, and about 6 KB per file of the tree plus 1 GB.
avail_kb=$(df -Pk "$BTMP" | awk 'NR == 2 { print $4 }')
need_kb=$(( (FILES + 3 * DIRS) * 6 + 1048576 ))
[ "$need_kb" -lt 5242880 ] && need_kb=5242880
if [ "$avail_kb" -lt "$need_kb" ]; then
	die "only $((avail_kb / 1024)) MiB free in '$BTMP'; $((need_kb / 1024)) MiB needed (at least 5 GB): refusing (set BENCH_TMP elsewhere)"
fi

# inotify watches: the daemon and inotifywait each need one per directory
# (they run one after the other). Raised temporarily when root, restored on exit.
WATCH_SYSCTL=/proc/sys/fs/inotify/max_user_watches
old_watches=$(cat "$WATCH_SYSCTL")
need_watches=$(( DIRS * 12 / 10 + 20000 ))
raised_watches=
if [ "$old_watches" -lt "$need_watches" ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "$need_watches" >"$WATCH_SYSCTL" || die "cannot raise fs.inotify.max_user_watches"
		raised_watches=1
	else
		die "fs.inotify.max_user_watches is $old_watches; $need_watches needed: raise it (sysctl) first"
	fi
fi

W=$(mktemp -d "$BTMP/chj-bench.XXXXXX") || die "cannot create a work directory in '$BTMP'"
ROOT="$W/spool"
CONF="$W/chjournal.conf"
LOG="$W/daemon.log"
DPID=
IWPID=
WRPID=

cleanup() {
	for pid in $WRPID $IWPID; do
		kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	if [ -n "$DPID" ]; then
		kill -CONT "$DPID" 2>/dev/null
		kill -TERM "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	fi
	[ -n "$raised_watches" ] && echo "$old_watches" >"$WATCH_SYSCTL"
	if [ -n "${BENCH_KEEP:-}" ]; then
		echo "bench: work directory kept: $W" >&2
	else
		echo "bench: removing $W ..." >&2
		cd / && rm -rf "$W"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

cat >"$CONF" <<EOF
journal = $W/state/journal.db
root = $ROOT
flush_interval_ms = 1000
batch_size = 10000
sync_timeout = 900
log_level = info
EOF

chj() { "$CHJOURNAL" -c "$CONF" "$@"; }
now() { date +%s.%N; }
# elapsed START: seconds since START, 3 decimals
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
note() { echo "bench: $*" >&2; }
mib() { awk '{ printf "%.1f", $1 / 1024 }'; }
# mem PID: "VmRSS VmHWM" in MiB
mem() {
	r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status")
	h=$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status")
	echo "$(echo "$r" | mib) $(echo "$h" | mib)"
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# --- the tree ----------------------------------------------------------------
note "generating $DIRS mailboxes / $FILES messages in $ROOT ..."
t=$(now)
python3 "$GEN" --dirs "$DIRS" --files "$FILES" --seed "$SEED" --out "$ROOT" \
	--manifest "$W/manifest" >&2 || die "gen-tree failed"
gen_s=$(elapsed "$t")
ndirs=$(find "$ROOT" -type d | wc -l)
nfiles=$(wc -l <"$W/manifest")
tree_mb=$(du -sk "$ROOT" | mib)

# --- a) start-up and memory ---------------------------------------------------
# inotifywait_start: seconds until "Watches established."; RES="S RSS HWM"
inotifywait_start() {
	: >"$W/iw.err"
	t=$(now)
	inotifywait -m -r "$ROOT" >/dev/null 2>"$W/iw.err" &
	IWPID=$!
	while ! grep -q 'Watches established' "$W/iw.err"; do
		if ! kill -0 "$IWPID" 2>/dev/null; then
			note "inotifywait failed: $(cat "$W/iw.err")"
			IWPID=
			RES="failed - -"
			return
		fi
		sleep 0.01
	done
	s=$(elapsed "$t")
	m=$(mem "$IWPID")
	kill -TERM "$IWPID"; wait "$IWPID" 2>/dev/null; IWPID=
	RES="$s $m"
}

daemon_ready() {
	grep -q 'ready:' "$LOG" 2>/dev/null &&
	chj status 2>/dev/null | grep -q '^daemon: *running'
}

# daemon_start: fresh journal, start, wait until ready; RES="S LOG_S WATCHED"
daemon_start() {
	rm -rf "$W/state"
	: >"$LOG"
	t=$(now)
	"$CHJOURNALD" -c "$CONF" 2>>"$LOG" &
	DPID=$!
	while ! daemon_ready; do
		if ! kill -0 "$DPID" 2>/dev/null; then
			note "chjournald exited during start-up; log:"; cat "$LOG" >&2
			DPID=
			exit 1
		fi
		sleep 0.01
	done
	s=$(elapsed "$t")
	# "ready: N directories watched in X s"
	set -- $(sed -n 's/.*ready: \([0-9]*\) directories watched in \([0-9.]*\) s.*/\1 \2/p' "$LOG" | tail -n 1)
	RES="$s ${2:-?} ${1:-?}"
}

daemon_stop() {
	kill -TERM "$DPID"
	wait "$DPID"
	rc=$?
	[ "$rc" -eq 0 ] || note "chjournald exited with status $rc on SIGTERM"
	DPID=
	return 0
}

if [ "$COLD" = 1 ]; then
	note "a) cold start-up (caches dropped) ..."
	drop_caches
	inotifywait_start; iw_cold=$RES
	drop_caches
	daemon_start; d_cold=$RES
	daemon_stop
fi
note "a) warm start-up ..."
inotifywait_start			# a first run warms the cache
inotifywait_start; iw_warm=$RES
daemon_start; d_warm=$RES
sleep 2					# the first flush is done; settled memory
d_mem=$(mem "$DPID")
grep -q 'could not be watched' "$LOG" && note "daemon: some directories could not be watched"

# --- b) 1% changed: begin+list vs find -newer ------------------------------------
note "b) first (full) run ..."
t=$(now)
chj begin bench >"$W/mode0" || die "begin failed"
chj list bench -0 >"$W/full.list" || die "list failed"
full_s=$(elapsed "$t")
chj commit bench >/dev/null || die "commit failed"
full_n=$(tr -cd '\0' <"$W/full.list" | wc -c)

touch "$W/marker"
sleep 1
note "b) changing 1% of the files ..."
python3 - "$W/manifest" "$W/changed" "$SEED" <<'EOF'
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
nchanged=$(wc -l <"$W/changed")
sort -o "$W/changed" "$W/changed"
find "$ROOT" -newer "$W/marker" -type f >/dev/null	# warm-up
t=$(now)
chj begin bench >"$W/mode1" && chj list bench -0 >"$W/inc.list" || die "begin/list failed"
inc_s=$(elapsed "$t")
t=$(now)
find "$ROOT" -newer "$W/marker" -type f >"$W/find.out"
find_s=$(elapsed "$t")
if [ "$COLD" = 1 ]; then
	chj abort bench >/dev/null || die "abort failed"
	drop_caches
	t=$(now)
	chj begin bench >/dev/null && chj list bench -0 >/dev/null || die "begin/list failed"
	inc_cold_s=$(elapsed "$t")
	drop_caches
	t=$(now)
	find "$ROOT" -newer "$W/marker" -type f >/dev/null
	find_cold_s=$(elapsed "$t")
fi
chj commit bench >/dev/null || die "commit failed"
tr '\0' '\n' <"$W/inc.list" | sort >"$W/inc.sorted"
sort -o "$W/find.out" "$W/find.out"
inc_n=$(wc -l <"$W/inc.sorted")
mismatch=$(comm -3 "$W/inc.sorted" "$W/find.out" | wc -l)
missed=$(comm -23 "$W/changed" "$W/inc.sorted" | wc -l)
[ "$mismatch" -eq 0 ] || comm -3 "$W/inc.sorted" "$W/find.out" | head -n 5 | sed 's/^/bench: list vs find: /' >&2
[ "$missed" -eq 0 ] || comm -23 "$W/changed" "$W/inc.sorted" | head -n 5 | sed 's/^/bench: changed, not listed: /' >&2

# --- c) one writer as fast as it can -----------------------------------------
cat >"$W/writer.py" <<'EOF'
# writer.py MANIFEST SECONDS TAG OUTLIST: creates 200-byte files for SECONDS
# seconds, mostly in existing mailboxes, one in 20 in a new directory (a new
# mailbox, then 20 files in it); prints "FILES SECONDS".
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
print(i, "%.3f" % dt)
EOF
note "c) writer with the daemon running ($WSECS s) ..."
ovf0=$(chj status | sed -n 's/^overflows: *//p')
t=$(now)
set -- $(python3 "$W/writer.py" "$W/manifest" "$WSECS" wd "$W/created.d")
wd_n=$1 wd_s=$2
chj sync >/dev/null || die "sync after the writer failed"
wd_journal_s=$(elapsed "$t")
ovf1=$(chj status | sed -n 's/^overflows: *//p')
chj begin bench >/dev/null && chj list bench -0 >"$W/w.list" || die "begin/list failed"
chj commit bench >/dev/null
tr '\0' '\n' <"$W/w.list" | sort >"$W/w.sorted"
sort -o "$W/created.d" "$W/created.d"
lost=$(comm -23 "$W/created.d" "$W/w.sorted" | wc -l)
[ "$lost" -eq 0 ] || comm -23 "$W/created.d" "$W/w.sorted" | head -n 5 | sed 's/^/bench: created, not listed: /' >&2
d_mem2=$(mem "$DPID")
daemon_stop

note "c) writer without the daemon ($WSECS s) ..."
set -- $(python3 "$W/writer.py" "$W/manifest" "$WSECS" wn "$W/created.n")
wn_n=$1 wn_s=$2

# --- the table ------------------------------------------------------------------
set -- $d_warm;  dw_wall=$1 dw_log=$2 dw_watched=$3
set -- $iw_warm; iww_s=$1 iww_rss=$2 iww_hwm=$3
set -- $d_mem;   dm_rss=$1 dm_hwm=$2
set -- $d_mem2;  dm2_rss=$1 dm2_hwm=$2
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }'; }
wd_rate=$(calc '%.0f' "$wd_n / $wd_s")
wn_rate=$(calc '%.0f' "$wn_n / $wn_s")
j_rate=$(calc '%.0f' "$wd_n / $wd_journal_s")

echo
echo "chjournal benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "kernel: $(uname -sr), CPUs: $(nproc), memory: $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "filesystem: $(df -PT "$BTMP" | awk 'NR == 2 { print $2 }') ($BTMP)"
echo "tree: $ndirs directories, $nfiles files ($FILES messages of 200-2000 B + cyrus.header/index/cache per mailbox), $tree_mb MiB, generated in ${gen_s} s"
echo "daemon config: flush_interval_ms = 1000, batch_size = 10000; warm = page cache hot$( [ "$COLD" = 1 ] && echo ", cold = after echo 3 > drop_caches")"
echo
echo "| Measurement | chjournald | baseline | baseline / chjournald |"
echo "|---|---|---|---|"
echo "| a) start-up until ready, warm (wall until \`status\` says running) | $dw_wall s (log: $dw_watched dirs watched in $dw_log s) | inotifywait -m -r: $iww_s s | $(ratio "$iww_s" "$dw_wall") |"
if [ "$COLD" = 1 ]; then
	set -- $d_cold;  dc_wall=$1 dc_log=$2
	set -- $iw_cold; iwc_s=$1
	echo "| a) start-up until ready, cold | $dc_wall s (log: $dc_log s) | inotifywait -m -r: $iwc_s s | $(ratio "$iwc_s" "$dc_wall") |"
fi
echo "| a) memory once all watches are set (VmRSS / VmHWM) | $dm_rss / $dm_hwm MiB | inotifywait: $iww_rss / $iww_hwm MiB | $(ratio "$iww_rss" "$dm_rss") |"
echo "| b) first run, full: begin+list of every file | $full_s s ($full_n files) | | |"
echo "| b) 1% changed ($nchanged files): begin+list, warm | $inc_s s ($inc_n files) | find -newer: $find_s s | $(ratio "$find_s" "$inc_s") |"
if [ "$COLD" = 1 ]; then
	echo "| b) 1% changed: begin+list, cold | $inc_cold_s s | find -newer: $find_cold_s s | $(ratio "$find_cold_s" "$inc_cold_s") |"
fi
echo "| b) file set mismatch list vs find (changed files missing from list) | $mismatch ($missed) | | |"
echo "| c) writer rate, 1 process, 200 B files, ${WSECS} s | $wd_rate files/s with the daemon | $wn_rate files/s without | with / without: $(calc '%.2f' "$wd_rate / $wn_rate") |"
echo "| c) events journaled per second (files created / time until \`sync\` returns) | $j_rate /s ($wd_n in $wd_journal_s s) | | |"
echo "| c) events lost (created, not listed); queue overflows | $lost of $wd_n; $(( ${ovf1:-0} - ${ovf0:-0} )) | | |"
echo "| c) daemon memory after the writer (VmRSS / VmHWM) | $dm2_rss / $dm2_hwm MiB | | |"
echo
