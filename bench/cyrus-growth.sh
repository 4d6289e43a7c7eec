#!/bin/bash
# bench/cyrus-growth.sh: how much the archives grow per simulated day of
# busy users on a real Cyrus 3.6 lab (../shared/cyrus-lab), with cyrus.index
# and the per-user databases (dav.db, seen.db) stored as deltas (this build)
# and as whole copies (the build before the deltas, compiled here from git),
# and how much Cyrus's own backupd's backups grow (sync_client -u pushing
# each user to it, bench/cyrus-backupd.sh): all three back up the same
# spool after each day in the same run.
#
#   bench/cyrus-growth.sh
#
# A day is `cyrus-lab.sh churn LAB ROUNDS` (appends, copies, moves, flags,
# expunges, a rename, a folder deleted, a sieve change, LMTP deliveries).
# Knobs: GROWTH_USERS (4), GROWTH_MESSAGES per user (2000), GROWTH_DAYS (5),
# GROWTH_ROUNDS per day (3), CHJ_BASELINE (a chjournal binary storing whole
# copies: skips the build), BENCH_KEEP=1 keeps the work directory. Needs
# root and the Cyrus tools, backupd and sync_client among them (says why and
# exits 0 without them); CHJ_BUILDDIR names the build directory (default
# .). Sizes are of the data: chjournal's USER.tar.gz files and backupd's
# chunk files, not the indexes beside them (USER.tar.gz.idx, backupd's
# .index: both rebuilt from the data). Prints one table, and checks that
# both chjournal archives verify and restore the last day's files alike.
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

# the baseline: the commit before common/cyrus/metadelta.c, built apart
BASE=${CHJ_BASELINE:-}
if [ -z "$BASE" ]; then
	first=$(git -C "$SRCDIR" log --diff-filter=A --format=%H -- common/cyrus/metadelta.c | tail -n 1)
	[ -n "$first" ] || { echo "bench-growth: no git history to build the baseline from (set CHJ_BASELINE)" >&2; exit 1; }
	mkdir "$W/base"
	git -C "$SRCDIR" archive "$first^" | tar -x -C "$W/base"
	(cd "$W/base" && ./autogen.sh >/dev/null 2>&1 && ./configure -q >/dev/null &&
	    make -j2 agent/chjournal >/dev/null 2>&1) || { echo "bench-growth: the baseline does not build" >&2; exit 1; }
	BASE="$W/base/agent/chjournal"
	BASEREV=$(git -C "$SRCDIR" rev-parse --short "$first^")
else
	BASEREV=$CHJ_BASELINE
fi

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

backup "$BASE" "$W/whole"
backup "$CHJ" "$W/delta"
bksync
w0=$(total "$W/whole")
d0=$(total "$W/delta")
k0=$(bktotal)
echo "Archive growth per simulated day ($USERS users, $MSGS messages each, a day = $ROUNDS churn rounds)"
echo "whole copies: chjournal $BASEREV; deltas: this build; backupd: Cyrus $(dpkg-query -W -f='${Version}' cyrus-imapd 2>/dev/null || echo 3.6) fed by sync_client -u; same spool, same run"
echo
printf '| %-5s | %18s | %12s | %7s | %13s | %16s | %5s |\n' "day" "whole copies (KB)" "deltas (KB)" "ratio" \
    "backupd (KB)" "deltas / backupd" "load"
printf '| %-5s | %18s | %12s | %7s | %13s | %16s | %5s |\n' "-----" "-----------------:" "-----------:" \
    "------:" "------------:" "---------------:" "----:"
printf '| %-5s | %18.1f | %12.1f | %7s | %13.1f | %16.2f | %5s |\n' "full" "$(kb "$w0")" "$(kb "$d0")" "" \
    "$(kb "$k0")" "$(echo "$d0 / $k0" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
sw=0
sd=0
sk=0
for day in $(seq 1 "$DAYS"); do
	bash "$LABSH" churn "$W/lab" "$ROUNDS" >>"$W/lab.log" 2>&1
	wb=$(total "$W/whole")
	db=$(total "$W/delta")
	kb0=$(bktotal)
	backup "$BASE" "$W/whole"
	backup "$CHJ" "$W/delta"
	bksync
	gw=$(( $(total "$W/whole") - wb ))
	gd=$(( $(total "$W/delta") - db ))
	gk=$(( $(bktotal) - kb0 ))
	sw=$((sw + gw))
	sd=$((sd + gd))
	sk=$((sk + gk))
	printf '| %-5s | %18.1f | %12.1f | %7.2f | %13.1f | %16.2f | %5s |\n' "$day" "$(kb "$gw")" "$(kb "$gd")" \
	    "$(echo "$gd / $gw" | bc -l)" "$(kb "$gk")" "$(echo "$gd / $gk" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
done
printf '| %-5s | %18.1f | %12.1f | %7.2f | %13.1f | %16.2f | %5s |\n' "mean" "$(echo "$sw / $DAYS / 1024" | bc -l)" \
    "$(echo "$sd / $DAYS / 1024" | bc -l)" "$(echo "$sd / $sw" | bc -l)" "$(echo "$sk / $DAYS / 1024" | bc -l)" \
    "$(echo "$sd / $sk" | bc -l)" ""

# both archives hold the same indexes at the last run
ok=1
for i in $(seq 1 "$USERS"); do
	u=$(printf 'user%02d' "$i")
	"$CHJ" verify "$W/delta/$u.tar.gz" >/dev/null 2>&1 || { echo "bench-growth: verify $u failed" >&2; ok=0; }
	"$CHJ" restore "$W/delta/$u.tar.gz" --to "$W/rd-$u" >/dev/null
	"$CHJ" restore "$W/whole/$u.tar.gz" --to "$W/rw-$u" >/dev/null
	diff -r "$W/rd-$u" "$W/rw-$u" >/dev/null || { echo "bench-growth: $u restores differ" >&2; ok=0; }
done
[ "$ok" = 1 ] && echo && echo "both archives verify; each user's last run restores the same files from both"
