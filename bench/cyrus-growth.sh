#!/bin/bash
# bench/cyrus-growth.sh: how much the archives grow per simulated day of
# busy users on a real Cyrus 3.6 lab (../shared/cyrus-lab): chjournal
# storing whole copies (the build before common/cyrus/metadelta.c), storing
# cyrus.index as deltas (the build before the per-user databases' deltas),
# and this build (cyrus.index and the per-user databases, dav.db and
# seen.db, as deltas), the first two compiled here from git; and Cyrus's
# own backupd (sync_client -u pushing each user to it,
# bench/cyrus-backupd.sh). All four back up the same spool after each day
# in the same run.
#
#   bench/cyrus-growth.sh
#
# A day is `cyrus-lab.sh churn LAB ROUNDS` (appends, copies, moves, flags,
# expunges, a rename, a folder deleted, a sieve change, LMTP deliveries).
# Knobs: GROWTH_USERS (4), GROWTH_MESSAGES per user (2000), GROWTH_DAYS (5),
# GROWTH_ROUNDS per day (3), CHJ_BASELINE and CHJ_INDEXONLY (chjournal
# binaries of the two baselines: skip their builds), BENCH_KEEP=1 keeps the
# work directory. Needs root and the Cyrus tools, backupd and sync_client
# among them (says why and exits 0 without them); CHJ_BUILDDIR names the
# build directory (default .). Sizes are of the data: chjournal's USER.tar.gz files and backupd's
# chunk files, not the indexes beside them (USER.idx, backupd's
# .index: both rebuilt from the data). Prints one table, and checks that
# this build's archives verify and restore the last day's files as the
# whole copies do.
set -eu
export LC_ALL=C
unset CHJOURNAL_CONF

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
CHJ_BUILDDIR=${CHJ_BUILDDIR:-.}
CHJ=$(cd "$CHJ_BUILDDIR" && pwd)/agent/chjournal
CHJD=$(cd "$CHJ_BUILDDIR" && pwd)/daemon/chjournald
LABSH="$SRCDIR/../shared/cyrus-lab/cyrus-lab.sh"
USERS=${GROWTH_USERS:-4}
MSGS=${GROWTH_MESSAGES:-2000}
DAYS=${GROWTH_DAYS:-5}
ROUNDS=${GROWTH_ROUNDS:-3}

[ "$(id -u)" = 0 ] || { echo "bench-growth: needs root (the Cyrus lab), skipped"; exit 0; }
[ -x /usr/lib/cyrus/bin/master ] && [ -f "$LABSH" ] ||
	{ echo "bench-growth: no Cyrus lab (../shared/cyrus-lab/cyrus-lab.sh install), skipped"; exit 0; }
for t in backupd sync_client; do
	[ -x "/usr/lib/cyrus/bin/$t" ] ||
		{ echo "bench-growth: /usr/lib/cyrus/bin/$t is missing (cyrus-lab.sh install), skipped"; exit 0; }
done
. "$SRCDIR/bench/cyrus-backupd.sh"

W=$(mktemp -d /var/tmp/chj-bench-growth.XXXXXX)
chmod 755 "$W"
trap '[ -n "${DPID:-}" ] && kill "$DPID" 2>/dev/null; wait 2>/dev/null; bash "$LABSH" stop "$W/lab" >/dev/null 2>&1 || true; cyrus_backupd_stop "$W/backupd"; [ "${BENCH_KEEP:-}" = 1 ] || rm -rf "$W"' EXIT

# build_before COMMIT DIR: the tree of COMMIT's parent, built in DIR
build_before() {
	mkdir "$2"
	git -C "$SRCDIR" archive "$1^" | tar -x -C "$2"
	(cd "$2" && ./autogen.sh >/dev/null 2>&1 && ./configure -q >/dev/null &&
	    make -j2 agent/chjournal >/dev/null 2>&1)
}
# baseline GIVEN PICKAXE DIR WHAT: sets BIN and REV to GIVEN when it is set
# (a chjournal binary), else to the build, in DIR, of the commit before the
# first that added PICKAXE to common/cyrus/metadelta.h
baseline() {
	if [ -n "$1" ]; then
		BIN=$1 REV=$1
		return
	fi
	_c=$(git -C "$SRCDIR" log --format=%H -S "$2" -- common/cyrus/metadelta.h | tail -n 1)
	[ -n "$_c" ] ||
		{ echo "bench-growth: no git history to build $4 from (set CHJ_BASELINE, CHJ_INDEXONLY)" >&2; exit 1; }
	build_before "$_c" "$3" || { echo "bench-growth: $4 does not build" >&2; exit 1; }
	BIN=$3/agent/chjournal
	REV=$(git -C "$SRCDIR" rev-parse --short "$_c^")
}

# the baselines, built apart: whole copies (before common/cyrus/metadelta.c)
# and cyrus.index deltas only (before the per-user databases' deltas)
baseline "${CHJ_BASELINE:-}" cyrus_delta_encode "$W/base" "the whole-copy baseline"
BASE=$BIN BASEREV=$REV
baseline "${CHJ_INDEXONLY:-}" cyrus_delta_eligible "$W/mid" "the index-delta baseline"
MID=$BIN MIDREV=$REV

# the lab (its imapd.conf then has sync_authname for sync_client) and
# backupd on free ports
PORTS=$(cyrus_bench_ports 8)
[ -n "$PORTS" ] || { echo "bench-growth: no free block of ports" >&2; exit 1; }
BK_PORT=$((PORTS + 4))
CYRUS_LAB_IMAP_PORT=$PORTS CYRUS_LAB_LMTP_PORT=$((PORTS + 1)) CYRUS_LAB_SIEVE_PORT=$((PORTS + 2)) \
	CYRUS_LAB_SYNC_PORT=$((PORTS + 3)) CYRUS_LAB_SYSLOG=0 bash "$LABSH" start "$W/lab" >"$W/lab.log" 2>&1
cyrus_backupd_start "$W/backupd" "$BK_PORT" || { echo "bench-growth: backupd does not listen on $BK_PORT" >&2; exit 1; }
bash "$LABSH" populate "$W/lab" "$USERS" "$MSGS" >>"$W/lab.log" 2>&1
cat >"$W/chjournal.conf" <<EOF
journal = $W/journal.db
root = $W/lab/spool
root = $W/lab/conf
root = $W/lab/sieve
exclude = ^$W/lab/conf/(lock|proc|socket|sync|log|msg|db)(/|\$)
exclude = ^$W/lab/spool/stage\\.(/|\$)
EOF
# the journal the backups open (--user takes no window of it)
"$CHJD" -c "$W/chjournal.conf" 2>"$W/daemon.log" &
DPID=$!
for _ in $(seq 600); do
	"$CHJ" -c "$W/chjournal.conf" status 2>/dev/null | grep -q '^daemon: *running' && break
	sleep 0.1
done
userargs=
users=
for i in $(seq 1 "$USERS"); do
	userargs="$userargs --user $(printf 'user%02d' "$i")"
	users="$users $(printf 'user%02d' "$i")"
done

total() { du -cb "$1"/*.tar.gz | tail -n 1 | cut -f1; }
# backupd's data: its chunk files, not their .index databases
bktotal() {
	find "$W/backupd/backups" -type f ! -name '*.index' -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }'
}
# bksync: every user pushed to backupd
bksync() {
	cyrus_backupd_sync "$W/lab/imapd.conf" "$BK_PORT" $users >>"$W/sync_client.log" 2>&1 ||
		{ echo "bench-growth: sync_client to backupd failed: $(tail -n 1 "$W/sync_client.log")" >&2; exit 1; }
}
kb() { echo "$1 / 1024" | bc -l; }
# backup BIN DIR: every user into DIR, every folder checked (no journal window)
backup() {
	"$1" -c "$W/chjournal.conf" backup -C "$W/lab/imapd.conf" --to "$2" $userargs >>"$W/backup.log" 2>&1
}

# sizes: the bytes of data each holds now: whole, index, deltas, backupd
sizes() {
	echo "$(total "$W/whole") $(total "$W/index") $(total "$W/delta") $(bktotal)"
}
# row DAY W I D K: one line of the table (bytes; the ratios are the deltas'
# to whole copies and to backupd)
row() {
	printf '| %-5s | %13.1f | %13.1f | %11.1f | %12.1f | %7.2f | %8.2f | %5s |\n' "$1" "$(kb "$2")" \
	    "$(kb "$3")" "$(kb "$4")" "$(kb "$5")" "$(echo "$4 / $2" | bc -l)" "$(echo "$4 / $5" | bc -l)" \
	    "$(cut -d' ' -f1 /proc/loadavg)"
}
# all_backups: the same spool by the three builds, then into backupd
all_backups() {
	backup "$BASE" "$W/whole"
	backup "$MID" "$W/index"
	backup "$CHJ" "$W/delta"
	bksync
}

all_backups
echo "Archive growth per simulated day ($USERS users, $MSGS messages each, a day = $ROUNDS churn rounds)"
echo "whole: chjournal $BASEREV (whole copies); index: $MIDREV (cyrus.index deltas); deltas: this build (and"
echo "per-user databases); backupd: Cyrus $(dpkg-query -W -f='${Version}' cyrus-imapd 2>/dev/null || echo 3.6)" \
    "fed by sync_client -u; same spool, same run; KB of data"
echo
printf '| %-5s | %13s | %13s | %11s | %12s | %7s | %8s | %5s |\n' "day" "whole (KB)" "index (KB)" \
    "deltas (KB)" "backupd (KB)" "d/whole" "d/backupd" "load"
printf '| %-5s | %13s | %13s | %11s | %12s | %7s | %8s | %5s |\n' "-----" "------------:" "------------:" \
    "----------:" "-----------:" "------:" "-------:" "----:"
read -r w0 i0 d0 k0 <<<"$(sizes)"
row full "$w0" "$i0" "$d0" "$k0"
sw=0 si=0 sd=0 sk=0
for day in $(seq 1 "$DAYS"); do
	bash "$LABSH" churn "$W/lab" "$ROUNDS" >>"$W/lab.log" 2>&1
	all_backups
	read -r w1 i1 d1 k1 <<<"$(sizes)"
	row "$day" $((w1 - w0)) $((i1 - i0)) $((d1 - d0)) $((k1 - k0))
	sw=$((sw + w1 - w0)) si=$((si + i1 - i0)) sd=$((sd + d1 - d0)) sk=$((sk + k1 - k0))
	w0=$w1 i0=$i1 d0=$d1 k0=$k1
done
row mean $((sw / DAYS)) $((si / DAYS)) $((sd / DAYS)) $((sk / DAYS))

# the chjournal archives hold the same files at the last run
ok=1
for i in $(seq 1 "$USERS"); do
	u=$(printf 'user%02d' "$i")
	"$CHJ" verify "$W/delta/$u.tar.gz" >/dev/null 2>&1 || { echo "bench-growth: verify $u failed" >&2; ok=0; }
	"$CHJ" restore "$W/delta/$u.tar.gz" --to "$W/rd-$u" >/dev/null
	"$CHJ" restore "$W/whole/$u.tar.gz" --to "$W/rw-$u" >/dev/null
	diff -r "$W/rd-$u" "$W/rw-$u" >/dev/null || { echo "bench-growth: $u restores differ" >&2; ok=0; }
done
[ "$ok" = 1 ] && echo && echo "this build's archives verify; each user's last run restores the same files as from whole copies"
