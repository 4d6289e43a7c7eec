#!/bin/bash
# bench/cyrus-restore-server.sh: `chjournal restore --to-server` side by side
# with Cyrus's own backup system (backupd fed by sync_client, restore(8)), on
# the same data in the same run, each restore checked over IMAP (UIDVALIDITY,
# UIDs, bytes, flags, dates equal to the original's):
#   1. three deleted folders of one user back into the live server;
#   2. one deleted user back into the live server;
#   3. every user (a whole server) into a fresh Cyrus, --jobs N for
#      chjournal and N restore(8) processes at a time.
#
#   bench/cyrus-restore-server.sh          (make bench-cyrus-restore)
#
# Starts its own cyrus-lab instances (../shared/cyrus-lab/cyrus-lab.sh, or
# CYRUS_LAB) on free loopback ports under a work directory in BENCH_TMP
# (/var/tmp): the source (with sync_server), two fresh ones (one for each
# tool), and a Cyrus backup server (master running backupd, configured
# here: backuppartition-default, backup_db_path, backup_staging_path; the
# source's sync_client -A pushes every user to it, as backupd(8) and
# sync_client(8) describe).
#
# Sizes: USERS (50) x MSGS (200) through `cyrus-lab.sh populate` (small,
# varied messages, flags, folders). BIG=1: 250 users, each populated with 10
# messages then filled by bench/fill-lab with 190 more of about 20 KB
# through LMTP: 50,000 messages, about 1 GB. BENCH_JOBS (2): the
# parallelism of case 3. Needs root; CHJ_BUILDDIR names the build
# directory (default .); BENCH_KEEP=1 keeps the work directory and the
# labs running.
set -eu
export LC_ALL=C
unset CHJOURNAL_CONF

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
CHJ_BUILDDIR=${CHJ_BUILDDIR:-.}
CHJ="$CHJ_BUILDDIR/agent/chjournal"
CHJD="$CHJ_BUILDDIR/daemon/chjournald"
LABSH=${CYRUS_LAB:-$SRCDIR/../shared/cyrus-lab/cyrus-lab.sh}
CYRBIN=/usr/lib/cyrus/bin
IMAPQ="python3 $SRCDIR/tests/cyrus-imap.py"
BTMP=${BENCH_TMP:-/var/tmp}
JOBS=${BENCH_JOBS:-2}
if [ "${BIG:-}" = 1 ]; then
	USERS=${USERS:-250}
	MSGS=${MSGS:-200}
	SMALL=10
else
	USERS=${USERS:-50}
	MSGS=${MSGS:-200}
	SMALL=$MSGS
fi
U1=user01
U2=user02

. "$SRCDIR/bench/cyrus-backupd.sh"

note() { echo "bench-restore: $*" >&2; }
die() { note "$*"; exit 1; }
skip() { note "skipped: $*"; exit 0; }

[ "$(id -u)" = 0 ] || skip "needs root (Cyrus's master and tools)"
[ -x "$LABSH" ] || skip "no cyrus-lab.sh at $LABSH (set CYRUS_LAB)"
for t in master sync_server sync_client backupd restore cyr_backup; do
	[ -x "$CYRBIN/$t" ] || skip "$CYRBIN/$t is missing (cyrus-lab.sh install)"
done
for p in "$CHJ" "$CHJD"; do
	[ -x "$p" ] || die "'$p' not built (set CHJ_BUILDDIR or run make)"
done
[ "$USERS" -ge 2 ] || die "USERS must be at least 2"
kb_msg=10
[ "${BIG:-}" = 1 ] && kb_msg=20
need_kb=$((USERS * MSGS * kb_msg * 6 + 1048576))
avail_kb=$(df -Pk "$BTMP" | awk 'NR == 2 { print $4 }')
[ "$avail_kb" -ge "$need_kb" ] ||
	die "only $((avail_kb / 1024)) MiB free in $BTMP; $((need_kb / 1024)) MiB needed (set BENCH_TMP)"

W=$(mktemp -d "$BTMP/chj-bench-rs.XXXXXX")
chmod 755 "$W"
SRC=$W/src
FA=$W/fresh-chj
FB=$W/fresh-cyr
BK=$W/backupd
DPID=

cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	if [ "${BENCH_KEEP:-}" = 1 ]; then
		note "kept $W (labs still running)"
		return
	fi
	for d in "$FB" "$FA" "$BK" "$SRC"; do
		[ -f "$d/run/master.pid" ] || continue
		if [ "$d" = "$BK" ]; then
			cyrus_backupd_stop "$BK"
		else
			"$LABSH" stop "$d" >/dev/null 2>&1 || true
		fi
	done
	cd / && rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
load() { cut -d' ' -f1 /proc/loadavg; }
msgcount() { grep -vc '^\(==\|UIDVALIDITY\)' "$1" || true; }

# 16 consecutive free loopback ports
BASE=$(cyrus_bench_ports 16)
[ -n "$BASE" ] || die "no free block of ports"

lab() {	# lab DIR OFFSET: a lab with a sync_server on ports BASE+OFFSET..+3
	CYRUS_LAB_IMAP_PORT=$((BASE + $2)) CYRUS_LAB_LMTP_PORT=$((BASE + $2 + 1)) \
	CYRUS_LAB_SIEVE_PORT=$((BASE + $2 + 2)) CYRUS_LAB_SYNC_PORT=$((BASE + $2 + 3)) \
		"$LABSH" start "$1" >/dev/null || die "lab $1 did not start"
}
lab "$SRC" 0
lab "$FA" 4
lab "$FB" 8
IMAP=$((BASE + 0)); LMTP=$((BASE + 1)); SYNC=$((BASE + 3))
FA_IMAP=$((BASE + 4)); FA_SYNC=$((BASE + 7))
FB_IMAP=$((BASE + 8))
BK_PORT=$((BASE + 12))

# The Cyrus backup server (bench/cyrus-backupd.sh)
cyrus_backupd_start "$BK" "$BK_PORT" || die "backupd does not listen on $BK_PORT"

note "populating $USERS users x $SMALL messages (cyrus-lab populate) ..."
"$LABSH" populate "$SRC" "$USERS" "$SMALL" >&2
if [ "$MSGS" -gt "$SMALL" ]; then
	note "filling with $USERS x $((MSGS - SMALL)) messages of ~20 KB (bench/fill-lab) ..."
	python3 "$SRCDIR/bench/fill-lab" "$LMTP" "$USERS" $((MSGS - SMALL)) --jobs 4 >&2
fi
spool_mb=$(du -sm "$SRC/spool" | cut -f1)

# --- both backups ---------------------------------------------------------------
cat >"$W/chjournal.conf" <<EOF2
journal = $W/journal.db
flush_interval_ms = 100
sync_timeout = 300
root = $SRC/spool
root = $SRC/conf
root = $SRC/sieve
exclude = ^$SRC/conf/(lock|proc|socket|sync|log|msg|db)(/|\$)
exclude = ^$SRC/spool/stage\\.(/|\$)
EOF2
"$CHJD" -c "$W/chjournal.conf" 2>"$W/daemon.log" &
DPID=$!
for _ in $(seq 600); do
	"$CHJ" -c "$W/chjournal.conf" status 2>/dev/null | grep -q '^daemon: *running' && break
	sleep 0.1
done

note "backing up with chjournal and with sync_client -> backupd ..."
l_b=$(load)
t0=$(now)
"$CHJ" -c "$W/chjournal.conf" backup -C "$SRC/imapd.conf" --to "$W/arch" >"$W/backup.out"
t1=$(now)
# one sync_client -u per user: with -A each user's backup also receives the
# messages of every user after it (user01's holds nearly the whole server),
# ~N/2 times the spool in all
for a in "$W/arch/"*.tar.gz; do basename "$a" .tar.gz; done >"$W/users"
cyrus_backupd_sync "$SRC/imapd.conf" "$BK_PORT" $(cat "$W/users") >"$W/sync_client.out" 2>&1 ||
	die "sync_client -u to backupd failed: $(tail -1 "$W/sync_client.out")"
t2=$(now)
b_chj=$(secs "$t0" "$t1")
b_cyr=$(secs "$t1" "$t2")
arch_mb=$(du -sm "$W/arch" | cut -f1)
bk_mb=$(du -sm "$BK/backups" | cut -f1)

# every user's state before anything is deleted
mkdir "$W/before"
while read -r u; do
	$IMAPQ ustate "$IMAP" "$u" '*' </dev/null >"$W/before/$u"
done <"$W/users"
nusers=$(wc -l <"$W/users")
nmsg=0
for f in "$W/before/"*; do nmsg=$((nmsg + $(msgcount "$f"))); done
FOLDERS="INBOX/Archive/2024 INBOX/Archive INBOX/Sent"
for f in $FOLDERS; do
	$IMAPQ ustate "$IMAP" $U1 "$f" >"$W/u1-$(echo "$f" | tr / _)"
done
msgs1=$(cat "$W"/u1-* | grep -vc '^UIDVALIDITY')
msgs2=$(msgcount "$W/before/$U2")

check_folders() {	# check_folders TOOL
	for f in $FOLDERS; do
		$IMAPQ ustate "$IMAP" $U1 "$f" | cmp -s - "$W/u1-$(echo "$f" | tr / _)" ||
			die "$1: $U1 $f differs after the restore"
	done
}
delete_folders() {
	$IMAPQ delete "$IMAP" $U1 INBOX/Archive/2024
	$IMAPQ delete "$IMAP" $U1 INBOX/Archive
	$IMAPQ delete "$IMAP" $U1 INBOX/Sent
}
# restore(8) is given the folders by uniqueid (3.6.1 finds none by name)
uniqueid() {
	"$CYRBIN/cyr_backup" -C "$BK/imapd.conf" -u $U1 list mailboxes |
		awk -v n="$1" '$4 == n { id = $1 } END { print id }'
}
ids=
for n in user.$U1.Archive user.$U1.Archive.2024 user.$U1.Sent; do
	id=$(uniqueid "$n")
	[ -n "$id" ] || die "$n is not in $U1's Cyrus backup"
	ids="$ids $id"
done

# --- 1. three deleted folders ------------------------------------------------------
note "case 1: three deleted folders of $U1 ..."
delete_folders
l_1=$(load)
t0=$(now)
"$CHJ" restore "$W/arch/$U1.tar.gz" --to-server "127.0.0.1:$SYNC" \
	--folder user.$U1.Archive --folder user.$U1.Archive.2024 --folder user.$U1.Sent >"$W/r1.out"
t1=$(now)
f_chj=$(secs "$t0" "$t1")
check_folders chjournal
delete_folders
t0=$(now)
# shellcheck disable=SC2086
"$CYRBIN/restore" -C "$BK/imapd.conf" -U "127.0.0.1:$IMAP" -u $U1 $ids >"$W/c1.out" 2>&1 ||
	die "restore(8) of the folders failed: $(tail -1 "$W/c1.out")"
t1=$(now)
f_cyr=$(secs "$t0" "$t1")
check_folders "restore(8)"

# --- 2. one deleted user -----------------------------------------------------------
check_user() {	# check_user TOOL PORT USER
	$IMAPQ ustate "$2" "$3" '*' </dev/null | cmp -s - "$W/before/$3" ||
		die "$1: $3 differs after the restore"
}
note "case 2: deleted user $U2 ..."
$IMAPQ deluser "$IMAP" $U2 -
l_2=$(load)
t0=$(now)
"$CHJ" restore "$W/arch/$U2.tar.gz" --to-server "127.0.0.1:$SYNC" >"$W/r2.out"
t1=$(now)
u_chj=$(secs "$t0" "$t1")
check_user chjournal "$IMAP" $U2
$IMAPQ deluser "$IMAP" $U2 -
t0=$(now)
"$CYRBIN/restore" -C "$BK/imapd.conf" -U -a "127.0.0.1:$IMAP" -u $U2 >"$W/c2.out" 2>&1 ||
	die "restore(8) of $U2 failed: $(tail -1 "$W/c2.out")"
t1=$(now)
u_cyr=$(secs "$t0" "$t1")
check_user "restore(8)" "$IMAP" $U2

# labcpu DIR: CPU seconds (user + sys) of the lab's server processes: its
# master's exited children and the ones still running (sync_server, imapd)
labcpu() {
	python3 - "$(cat "$1/run/master.pid")" <<'PY'
import os, sys
hz, m = os.sysconf("SC_CLK_TCK"), sys.argv[1]
def stat(p):
    return open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()
t = sum(int(x) for x in stat(m)[13:15])
for p in os.listdir("/proc"):
    try:
        st = stat(p) if p.isdigit() else None
    except OSError:
        continue
    if st and st[1] == m:
        t += int(st[11]) + int(st[12])
print("%.1f" % (t / hz))
PY
}
# timed CMD...: runs CMD; puts the CPU seconds of it and its children in $W/cpu
timed() {
	/usr/bin/time -f '%U %S' -o "$W/time.out" "$@"
	_rc=$?
	awk '$1 ~ /^[0-9.]+$/ { printf "%.1f\n", $1 + $2 }' "$W/time.out" >"$W/cpu"
	return $_rc
}

# --- 3. the whole server into a fresh Cyrus ---------------------------------------
note "case 3: $nusers users into fresh Cyrus instances, $JOBS at a time ..."
l_3=$(load)
sa=$(labcpu "$FA")
t0=$(now)
timed "$CHJ" restore "$W/arch/"*.tar.gz --to-server "127.0.0.1:$FA_SYNC" --jobs "$JOBS" >"$W/r3.out"
t1=$(now)
s_chj=$(secs "$t0" "$t1")
c_chj=$(cat "$W/cpu")
sv_chj=$(awk -v a="$sa" -v b="$(labcpu "$FA")" 'BEGIN { printf "%.1f", b - a }')
l_3b=$(load)
mkdir "$W/c3"
sa=$(labcpu "$FB")
t0=$(now)
# shellcheck disable=SC2016
timed xargs -P "$JOBS" -I{} sh -c \
	'"$1" -C "$2" -U -a "$3" -u "$4" >"$5/$4.out" 2>&1; echo $? >"$5/$4.rc"' \
	sh "$CYRBIN/restore" "$BK/imapd.conf" "127.0.0.1:$FB_IMAP" {} "$W/c3" <"$W/users"
t1=$(now)
s_cyr=$(secs "$t0" "$t1")
c_cyr=$(cat "$W/cpu")
sv_cyr=$(awk -v a="$sa" -v b="$(labcpu "$FB")" 'BEGIN { printf "%.1f", b - a }')
while read -r u; do check_user chjournal "$FA_IMAP" "$u"; done <"$W/users"
cyr_failed=0
cyr_differ=0
while read -r u; do
	if [ "$(cat "$W/c3/$u.rc")" != 0 ]; then
		cyr_failed=$((cyr_failed + 1))
		[ -n "${cyr_err:-}" ] || cyr_err=$(grep -m1 . "$W/c3/$u.out" || true)
	elif ! $IMAPQ ustate "$FB_IMAP" "$u" '*' </dev/null | cmp -s - "$W/before/$u"; then
		cyr_differ=$((cyr_differ + 1))
	fi
done <"$W/users"

# --- the table ---------------------------------------------------------------------
ratio() { awk -v c="$1" -v r="$2" 'BEGIN { if (c > 0) printf "%.1f", r / c; else print "-" }'; }
printf '\n%s users, %s messages, %s MB of spool; chjournal archives %s MB, Cyrus backups %s MB\n' \
	"$nusers" "$nmsg" "$spool_mb" "$arch_mb" "$bk_mb"
printf '%-52s | %9s | %10s | %6s | %s\n' "case (each restore checked over IMAP)" chjournal "restore(8)" ratio load
printf '%-52s | %9s | %10s | %6s | %s\n' "full backup (chjournal backup / sync_client -u each)" \
	"$b_chj" "$b_cyr" "$(ratio "$b_chj" "$b_cyr")" "$l_b"
printf '%-52s | %9s | %10s | %6s | %s\n' "3 deleted folders of $U1 ($msgs1 messages)" \
	"$f_chj" "$f_cyr" "$(ratio "$f_chj" "$f_cyr")" "$l_1"
printf '%-52s | %9s | %10s | %6s | %s\n' "deleted $U2 ($msgs2 messages), whole user" \
	"$u_chj" "$u_cyr" "$(ratio "$u_chj" "$u_cyr")" "$l_2"
printf '%-52s | %9s | %10s | %6s | %s\n' "whole server into a fresh Cyrus, $JOBS at a time" \
	"$s_chj" "$s_cyr" "$(ratio "$s_chj" "$s_cyr")" "$l_3 / $l_3b"
echo "ratio: restore(8)'s seconds / chjournal's; load: the 1-minute load average before the case"
echo "whole server, CPU seconds (user + sys): chjournal $c_chj, its Cyrus's server processes $sv_chj;" \
	"restore(8) $c_cyr, its Cyrus's $sv_cyr; $(nproc) CPUs x $s_chj s = $(awk -v n="$(nproc)" -v s="$s_chj" 'BEGIN { printf "%.0f", n * s }')" \
	"CPU seconds were there during chjournal's"
if [ "$cyr_failed" -gt 0 ] || [ "$cyr_differ" -gt 0 ]; then
	echo "restore(8) into the fresh Cyrus: $cyr_failed of $nusers users failed${cyr_err:+ (first: $cyr_err)}, $cyr_differ differ"
else
	echo "restore(8) into the fresh Cyrus: all $nusers users equal to the original"
fi
