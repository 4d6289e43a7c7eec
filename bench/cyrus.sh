#!/bin/sh
# bench/cyrus.sh: the Cyrus archive benchmark (`make bench`, after bench/run.sh;
# `make bench-cyrus` alone). Prints one table.
#
# Needs root, the Cyrus tools (/usr/lib/cyrus/bin: the generated spool's
# mailboxes.db is written and read by Cyrus's own ctl_cyrusdb and cyr_dbtool,
# as on a real server) and the cyrus user; without them it says why and exits 0.
#
# Environment:
#   CHJ_BUILDDIR    build directory holding daemon/chjournald, agent/chjournal
#   BIG=1           full size: 1000 users x 5 folders x 10 messages of ~20 KB
#                   (about 1 GB) and a COPY of 1000 messages; default: a quick
#                   run of 100 users x 5 x 8 messages and a COPY of 200
#   CYRUS_BENCH_USERS, CYRUS_BENCH_FOLDERS, CYRUS_BENCH_MESSAGES (per folder),
#   CYRUS_BENCH_COPY (messages copied)   override the sizes above
#   BENCH_TMP       where the work directory goes (default /var/tmp)
#   BENCH_SEED      generator seed (default 1)
#   BENCH_KEEP=1    keep the work directory
#   CYRUS_BENCH_ROUNDS  rounds of a)'s pigz and full backup, alternated (pigz,
#                   backup, pigz, ...; each backup into a new directory, as a
#                   new consumer: every user stored); the medians are shown
#                   and each round's ratio (default 3)
#
# Measured, page cache warm (the spool is read once before):
#  a) the first (full) `chjournal backup` of every user vs `tar czf` (gzip -6)
#     and `tar | pigz -6` on every core of the same message files, and
#     `sha1sum` of them: MB/s of message bytes, output size, CPU used; the
#     backup's MB/s and output size as a ratio of pigz's (issue 16's target:
#     >= 0.9x the MB/s, no larger); and as a ratio of `tar -cf - SPOOL |
#     pigz`'s time and size, the issue's own command (the whole spool: the
#     cyrus.* files the archive holds too);
#  b) `chjournal verify` of every archive;
#  c) a Cyrus COPY of N messages (hard links + the destination's cyrus.index
#     rewritten in place), then a journal-driven backup: the archive's growth
#     over the copied bytes;
#  d) 10 messages delivered to one user's INBOX and \Seen changed there, then
#     a journal-driven backup: time vs the full run and vs the full run's
#     per-user share; and, for comparison, the same run without a journal
#     window (a new consumer: every user's folders checked by stat).
# chjournald watches the partition, config and sieve directories throughout.

set -u
export LC_ALL=C
unset CHJOURNAL_CONF

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
CHJ_BUILDDIR=${CHJ_BUILDDIR:-$SRCDIR}
CHJOURNAL="$CHJ_BUILDDIR/agent/chjournal"
CHJOURNALD="$CHJ_BUILDDIR/daemon/chjournald"
GEN="$SRCDIR/bench/gen-cyrus"
TOOLS=/usr/lib/cyrus/bin
[ -x /usr/bin/time ] || { echo "bench-cyrus: /usr/bin/time (package time) is needed" >&2; exit 1; }

if [ "${BIG:-}" = 1 ]; then
	USERS=${CYRUS_BENCH_USERS:-1000}
	FOLDERS=${CYRUS_BENCH_FOLDERS:-5}
	MESSAGES=${CYRUS_BENCH_MESSAGES:-10}
	NCOPY=${CYRUS_BENCH_COPY:-1000}
else
	USERS=${CYRUS_BENCH_USERS:-100}
	FOLDERS=${CYRUS_BENCH_FOLDERS:-5}
	MESSAGES=${CYRUS_BENCH_MESSAGES:-8}
	NCOPY=${CYRUS_BENCH_COPY:-200}
fi
ROUNDS=${CYRUS_BENCH_ROUNDS:-3}
SEED=${BENCH_SEED:-1}
BTMP=${BENCH_TMP:-/var/tmp}

die() { echo "bench-cyrus: $*" >&2; exit 1; }
skip() { echo "bench-cyrus: Cyrus archive benchmark skipped: $*" >&2; exit 0; }
note() { echo "bench-cyrus: $*" >&2; }

for p in "$CHJOURNAL" "$CHJOURNALD"; do
	[ -x "$p" ] || die "'$p' not built (set CHJ_BUILDDIR or run make)"
done
command -v python3 >/dev/null || die "python3 is needed (bench/gen-cyrus)"
[ "$(id -u)" = 0 ] || skip "needs root (Cyrus's tools run as the cyrus user)"
[ -x "$TOOLS/cyr_dbtool" ] && [ -x "$TOOLS/ctl_cyrusdb" ] ||
	skip "Cyrus is not installed (../shared/cyrus-lab/cyrus-lab.sh install)"
id cyrus >/dev/null 2>&1 || skip "no 'cyrus' user"
[ -d "$BTMP" ] || die "BENCH_TMP '$BTMP' is not a directory"

# Free space: the spool, then tar.gz, pigz and archive copies (~0.5 each) and
# slack: 3x the spool and at least 1 GB.
need_kb=$(( USERS * FOLDERS * MESSAGES * 20 * 3 + NCOPY * 60 + 1048576 ))
avail_kb=$(df -Pk "$BTMP" | awk 'NR == 2 { print $4 }')
[ "$avail_kb" -ge "$need_kb" ] ||
	die "only $((avail_kb / 1024)) MiB free in '$BTMP'; $((need_kb / 1024)) MiB needed (set BENCH_TMP elsewhere)"

# pigz: installed here if missing and apt-get can (only this tool), else n/a
if ! command -v pigz >/dev/null && command -v apt-get >/dev/null; then
	note "installing pigz (apt-get) for the comparison ..."
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q pigz >/dev/null 2>&1 ||
		note "pigz could not be installed: its column says n/a"
fi

W=$(mktemp -d "$BTMP/chj-bench-cyrus.XXXXXX") || die "cannot create a work directory in '$BTMP'"
chmod 755 "$W"		# Cyrus's tools run as the cyrus user below it
LAB="$W/lab"
ARCH="$W/archives"
CONF="$W/chjournal.conf"
LOG="$W/daemon.log"
DPID=

cleanup() {
	if [ -n "$DPID" ]; then
		kill -TERM "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	fi
	if [ -n "${BENCH_KEEP:-}" ]; then
		note "work directory kept: $W"
	else
		note "removing $W ..."
		cd / && rm -rf "$W"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

chj() { "$CHJOURNAL" -c "$CONF" "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
# timed OUT CMD...: runs CMD, puts "ELAPSED CPU% CPUSECONDS" in OUT (CPU: user +
# sys of CMD and its children; MB per CPU second holds up on a busy machine,
# where wall-clock MB/s depends on what else runs)
timed() {
	_out=$1
	shift
	/usr/bin/time -f '%e %U %S' -o "$W/time.out" "$@"
	_rc=$?
	# GNU time prefixes "Command exited with non-zero status N" on failure
	awk '$1 ~ /^[0-9.]+$/ { printf "%.2f %.0f %.2f\n", $1, ($1 > 0 ? 100 * ($2 + $3) / $1 : 0), $2 + $3 }' \
	    "$W/time.out" >"$_out"
	return $_rc
}
# sizes FILE...: total bytes
sizes() { du -cb "$@" | awk 'END { print $1 }'; }
folder() { awk -v u="$1" -v f="$2" '$1 == u && $2 == f { print $4 }' "$LAB/folders.txt"; }

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the spool ---------------------------------------------------------------------
note "generating $USERS users x $FOLDERS folders x $MESSAGES messages (+ $NCOPY in u0001's Big) ..."
t=$(now)
python3 "$GEN" spool "$LAB" --users "$USERS" --folders "$FOLDERS" --messages "$MESSAGES" \
	--big "$NCOPY" --seed "$SEED" || die "gen-cyrus failed"
gen_s=$(elapsed "$t")
(cd "$LAB/spool" && find uuid -type f -name '*.' -print0) >"$W/messages.0"
nmsg=$(tr -cd '\0' <"$W/messages.0" | wc -c)
msg_bytes=$( (cd "$LAB/spool" && xargs -0 stat -c %s <"$W/messages.0") | awk '{ s += $1 } END { print s }')
msg_mb=$(mb "$msg_bytes")
nfolders=$(wc -l <"$LAB/folders.txt")

cat >"$CONF" <<EOF
journal = $W/state/journal.db
flush_interval_ms = 200
sync_timeout = 300
root = $LAB/spool
root = $LAB/conf
root = $LAB/sieve
exclude = ^$LAB/conf/(lock|proc|socket|sync|log|msg|db)(/|\$)
exclude = ^$LAB/spool/stage\\.(/|\$)
log_level = info
EOF

daemon_ready() {
	grep -q 'ready:' "$LOG" 2>/dev/null && chj status 2>/dev/null | grep -q '^daemon: *running'
}
note "starting chjournald ..."
"$CHJOURNALD" -c "$CONF" 2>>"$LOG" &
DPID=$!
i=0
while ! daemon_ready; do
	kill -0 "$DPID" 2>/dev/null || { cat "$LOG" >&2; DPID=; die "chjournald exited during start-up"; }
	i=$((i + 1))
	[ "$i" -lt 6000 ] || die "chjournald not ready after 60 s"
	sleep 0.01
done
grep -q 'could not be watched' "$LOG" && note "daemon: some directories could not be watched"

note "warming the page cache ..."
(cd "$LAB/spool" && xargs -0 cat <"$W/messages.0" >/dev/null)

# --- a) full backup vs tar czf, pigz, sha1sum ------------------------------------------
note "a) sha1sum of the messages ..."
timed "$W/t.sha1" sh -c 'cd "$1" && xargs -0 sha1sum <"$2" >/dev/null' sh "$LAB/spool" "$W/messages.0" ||
	die "sha1sum failed"
note "a) tar czf of the messages ..."
timed "$W/t.tar" sh -c 'cd "$1" && tar czf "$2" --null -T "$3" && sync "$2"' sh \
	"$LAB/spool" "$W/tar.tar.gz" "$W/messages.0" || die "tar czf failed"
tar_bytes=$(sizes "$W/tar.tar.gz")
rm -f "$W/tar.tar.gz"
# pigz and the full backup in turn, ROUNDS times: on a shared machine the
# CPU each gets changes from minute to minute, so each backup has a pigz run
# beside it, and the medians are compared
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# pigz_round NAME TAR-ARGS...: times `tar cf - TAR-ARGS | pigz` in the spool
# into $W/t.NAME (appended to $W/t.NAME.all); its output's size in round_bytes
pigz_round() {
	_pr_name=$1
	shift
	timed "$W/t.$_pr_name" sh -c 'cd "$1" && out=$2 p=$3 && shift 3 && tar cf - "$@" | pigz -6 -p "$p" >"$out" && sync "$out"' sh \
		"$LAB/spool" "$W/tar.pigz.gz" "$(nproc)" "$@" || die "tar | pigz ($_pr_name) failed"
	round_bytes=$(sizes "$W/tar.pigz.gz")
	rm -f "$W/tar.pigz.gz"
	cat "$W/t.$_pr_name" >>"$W/t.$_pr_name.all"
}
# each_round FILE: each round's ratio of FILE's time to the full backup's
each_round() {
	paste -d' ' "$1" "$W/t.full.all" | awk '{ printf "%s%.2fx", (NR > 1 ? ", " : ""), $1 / $4 }'
}
: >"$W/t.pigz.all"
: >"$W/t.pigzspool.all"
: >"$W/t.full.all"
r=1
while [ "$r" -le "$ROUNDS" ]; do
	if command -v pigz >/dev/null; then
		note "a) round $r/$ROUNDS: tar | pigz -6 -p $(nproc) of the messages ..."
		pigz_round pigz --null -T "$W/messages.0"
		pigz_bytes=$round_bytes
		# the issue's own command: the whole spool, the cyrus.* files the
		# archive also holds included (gen-cyrus writes a 4-byte cyrus.cache,
		# where Cyrus's holds every message's headers: pigz's output here is
		# smaller than on a real spool)
		note "a) round $r/$ROUNDS: tar -cf - SPOOL | pigz -6 -p $(nproc) ..."
		pigz_round pigzspool .
		pigzspool_bytes=$round_bytes
	fi
	# the first round's archives are the ones b) to d) go on with
	if [ "$r" = 1 ]; then
		to=$ARCH consumer=
	else
		to=$W/round-archives consumer="--consumer bench-round-$r"
	fi
	note "a) round $r/$ROUNDS: full backup ..."
	# shellcheck disable=SC2086
	timed "$W/t.full" "$CHJOURNAL" -c "$CONF" backup -C "$LAB/imapd.conf" --to "$to" $consumer \
		>"$W/full.out" 2>&1 || {
		cat "$W/full.out" >&2
		die "the full backup failed"
	}
	cat "$W/t.full" >>"$W/t.full.all"
	[ "$r" = 1 ] || rm -rf "$W/round-archives"
	r=$((r + 1))
done
# the medians of time, CPU% and CPU seconds, each on its own
med3() { for k in 1 2 3; do awk -v k="$k" '{ print $k }' "$1" | median; done | tr '\n' ' '; }
med3 "$W/t.full.all" >"$W/t.full"
[ -s "$W/t.pigz.all" ] && med3 "$W/t.pigz.all" >"$W/t.pigz"
[ -s "$W/t.pigzspool.all" ] && med3 "$W/t.pigzspool.all" >"$W/t.pigzspool"
arch_bytes=$(sizes "$ARCH"/*.tar.gz)
idx_bytes=$(sizes "$ARCH"/*.idx)

# --- b) verify ---------------------------------------------------------------------------
note "b) verify ..."
if timed "$W/t.verify" sh -c '"$1" verify "$2"/*.tar.gz >"$3" 2>&1' sh "$CHJOURNAL" "$ARCH" "$W/verify.out"; then
	verify_res="all $(grep -c ': ok$' "$W/verify.out") ok"
else
	verify_res="FAILED: $(grep -vc ': ok$' "$W/verify.out") problems"
	grep -v ': ok$' "$W/verify.out" | head -n 5 | sed 's/^/bench-cyrus: verify: /' >&2
fi

# --- c) COPY of N messages -------------------------------------------------------------------
note "c) COPY of $NCOPY messages from u0001/Big to u0001/Archive, backup ..."
a0=$(sizes "$ARCH/u0001.tar.gz")
i0=$(sizes "$ARCH/u0001.idx")
copied=$(python3 "$GEN" copy "$(folder u0001 Big)" "$(folder u0001 Archive)" "$NCOPY") || die "copy failed"
timed "$W/t.copy" "$CHJOURNAL" -c "$CONF" backup -C "$LAB/imapd.conf" --to "$ARCH" >"$W/copy.out" 2>&1 || {
	cat "$W/copy.out" >&2
	die "the backup after the copy failed"
}
a1=$(sizes "$ARCH/u0001.tar.gz")
i1=$(sizes "$ARCH/u0001.idx")
copy_users=$(sed -n 's/^backup: \([0-9]*\) users checked.*/\1/p' "$W/copy.out")

# --- d) one user changed ---------------------------------------------------------------------
CU=$(printf 'u%04d' $(( (USERS + 1) / 2 )))
note "d) 10 messages delivered to $CU's INBOX, \\Seen changed, backup ..."
added=$(python3 "$GEN" append "$(folder "$CU" INBOX)" 10) || die "append failed"
timed "$W/t.one" "$CHJOURNAL" -c "$CONF" backup -C "$LAB/imapd.conf" --to "$ARCH" >"$W/one.out" 2>&1 || {
	cat "$W/one.out" >&2
	die "the backup after the change failed"
}
one_users=$(sed -n 's/^backup: \([0-9]*\) users checked.*/\1/p' "$W/one.out")
note "d) the same without a journal window (new consumer: every user checked) ..."
timed "$W/t.scan" "$CHJOURNAL" -c "$CONF" backup -C "$LAB/imapd.conf" --to "$ARCH" \
	--consumer bench-scan >"$W/scan.out" 2>&1 || {
	cat "$W/scan.out" >&2
	die "the scanning backup failed"
}
scan_msgs=$(sed -n 's/.* folders changed, \([0-9]*\) messages.*/\1/p' "$W/scan.out")
final_verify=ok
chj verify "$ARCH/u0001.tar.gz" "$ARCH/$CU.tar.gz" >/dev/null 2>&1 || final_verify=FAILED

# --- the table ---------------------------------------------------------------------------
set -- $(cat "$W/t.sha1");  sha1_s=$1 sha1_cpu=$2 sha1_cs=$3
set -- $(cat "$W/t.tar");   tar_s=$1 tar_cpu=$2 tar_cs=$3
set -- $(cat "$W/t.full");  full_s=$1 full_cpu=$2 full_cs=$3
set -- $(cat "$W/t.verify"); verify_s=$1
set -- $(cat "$W/t.copy");  copy_s=$1
set -- $(cat "$W/t.one");   one_s=$1
set -- $(cat "$W/t.scan");  scan_s=$1
rate() { calc '%.1f' "$msg_bytes / 1e6 / $1"; }
# cell ELAPSED CPU% CPUSECONDS: "R MB/s (S s, CPU P%; R2 MB per CPU-s)"
cell() { echo "$(rate "$1") MB/s ($1 s, CPU $2%; $(rate "$3") MB per CPU-s)"; }
pct() { calc '%.0f%%' "100 * $1 / $msg_bytes"; }
if [ -n "${pigz_bytes:-}" ]; then
	set -- $(cat "$W/t.pigz")
	pigz_col="$(cell "$1" "$2" "$3"), $(mb "$pigz_bytes") MB = $(pct "$pigz_bytes")"
	# the same message bytes both ways: the ratio of MB/s is that of the times
	pigz_ratio="$(calc '%.2f' "$1 / $full_s")x pigz's MB/s (median of $ROUNDS rounds; each round: $(each_round "$W/t.pigz.all")), output $(calc '%.3f' "$arch_bytes / $pigz_bytes")x pigz's"
	set -- $(cat "$W/t.pigzspool")
	pigzspool_col="$1 s (CPU $2%), $(mb "$pigzspool_bytes") MB"
	pigzspool_ratio="$(calc '%.2f' "$1 / $full_s")x its speed (each round: $(each_round "$W/t.pigzspool.all")), output $(calc '%.3f' "$arch_bytes / $pigzspool_bytes")x"
else
	pigz_col="n/a (pigz not installed)"
	pigz_ratio="n/a"
	pigzspool_col="n/a" pigzspool_ratio="n/a"
fi
share=$(calc '%.3f' "$full_s / $USERS")
growth=$(( a1 - a0 ))

echo
echo "chjournal Cyrus archive benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load average before the run: $LOAD0, after: $(cut -d" " -f1-3 /proc/loadavg) (other work on the machine slows the wall-clock figures, not the per-CPU-second ones)"
echo "kernel: $(uname -sr), CPUs: $(nproc), memory: $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), filesystem: $(df -PT "$BTMP" | awk 'NR == 2 { print $2 }') ($BTMP)"
echo "spool (bench/gen-cyrus, uuid layout, mailboxes.db by cyr_dbtool): $USERS users, $nfolders folders, $nmsg messages, $msg_mb MB of messages (12-28 KB, half with a base64 attachment), generated in $gen_s s; page cache warm"
echo
echo "| Measurement | chjournal | baseline | target |"
echo "|---|---|---|---|"
echo "| a) full backup, message bytes per second (time, CPU; medians of $ROUNDS rounds) | $(cell "$full_s" "$full_cpu" "$full_cs") | tar czf: $(cell "$tar_s" "$tar_cpu" "$tar_cs") | >= tar czf |"
echo "| a) output size (share of message bytes) | $(mb "$arch_bytes") MB = $(pct "$arch_bytes") (+ sidecars $(mb "$idx_bytes") MB) | tar czf: $(mb "$tar_bytes") MB = $(pct "$tar_bytes") | |"
echo "| a) on every core | $pigz_ratio | tar \| pigz -6 -p $(nproc): $pigz_col | >= 0.9x pigz's MB/s, output <= 1.0x |"
echo "| a) the same against the whole spool (the issue's \`tar -cf - SPOOL \| pigz\`: messages and cyrus.* files) | $pigzspool_ratio | tar -cf - SPOOL \| pigz -6 -p $(nproc): $pigzspool_col | >= 0.9x, output <= 1.0x |"
echo "| a) SHA1 of every message | | sha1sum: $(cell "$sha1_s" "$sha1_cpu" "$sha1_cs") | |"
echo "| b) verify every archive | $verify_s s, $verify_res | | passes |"
echo "| c) COPY of $NCOPY messages ($(mb "$copied") MB) in one user, backup | archive +$growth B = $(calc '%.3f%%' "100 * $growth / $copied") of their size (sidecar +$((i1 - i0)) B); $copy_s s, $copy_users user(s) | | < 1% |"
echo "| d) 10 messages ($(mb "$added") MB) + \\Seen in 1 user of $USERS, backup | $one_s s, $one_users user(s) | full run: $full_s s ($(calc '%.0fx' "$full_s / $one_s") longer); per user: $share s | ~ one user |"
echo "| d) the same run without a journal window (new consumer) | | every user checked by stat: $scan_s s ($scan_msgs messages added) | |"
echo "| archives after all runs: verify | $final_verify | | |"
echo
