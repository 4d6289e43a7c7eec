#!/bin/bash
# bench/cyrus-restore-server.sh: how long `chjournal restore --to-server`
# takes to put back, through Cyrus's replication protocol, two deleted
# folders and one deleted user of a populated lab, each checked over IMAP
# (UIDVALIDITY, UIDs, bytes, flags, dates equal to before the delete).
#
#   bench/cyrus-restore-server.sh LABDIR [FRESHLAB]
#
# With FRESHLAB (another lab instance with a sync port, started and never
# populated), also every user's archive into it, a whole server, with
# --jobs 1 or BENCH_JOBS, each user then compared with LABDIR's over IMAP.
#
# LABDIR: a cyrus-lab instance started with CYRUS_LAB_SYNC_PORT and populated
# (e.g. `cyrus-lab.sh populate LABDIR 50 200`). It changes the lab: user01
# loses and gets back Archive and Sent, user02 is deleted and restored.
# Needs root; CHJ_BUILDDIR names the build directory (default .);
# BENCH_U1, BENCH_U2 name other users than user01 and user02 (for a second
# run on the same lab); BENCH_KEEP=1 keeps the work directory.
# Prints one table; Cyrus's own restore(8) is not run here.
set -eu
export LC_ALL=C
unset CHJOURNAL_CONF

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
CHJ_BUILDDIR=${CHJ_BUILDDIR:-.}
CHJ="$CHJ_BUILDDIR/agent/chjournal"
CHJD="$CHJ_BUILDDIR/daemon/chjournald"
IMAPQ="python3 $SRCDIR/tests/cyrus-imap.py"
LAB=$(cd "$1" && pwd)
. "$LAB/lab.env"
[ -n "$SYNC_PORT" ] || { echo "bench: $LAB runs no sync_server (start it with CYRUS_LAB_SYNC_PORT)" >&2; exit 1; }
W=$(mktemp -d /var/tmp/chj-bench-rs.XXXXXX)
chmod 755 "$W"
trap '[ -n "${DPID:-}" ] && kill "$DPID" 2>/dev/null; wait 2>/dev/null; [ "${BENCH_KEEP:-}" = 1 ] || rm -rf "$W"' EXIT
U1=${BENCH_U1:-user01}
U2=${BENCH_U2:-user02}

cat >"$W/chjournal.conf" <<EOF2
journal = $W/journal.db
flush_interval_ms = 100
sync_timeout = 300
root = $LAB/spool
root = $LAB/conf
root = $LAB/sieve
exclude = ^$LAB/conf/(lock|proc|socket|sync|log|msg|db)(/|\$)
exclude = ^$LAB/spool/stage\\.(/|\$)
EOF2
"$CHJD" -c "$W/chjournal.conf" 2>"$W/daemon.log" &
DPID=$!
for _ in $(seq 600); do
	"$CHJ" -c "$W/chjournal.conf" status 2>/dev/null | grep -q '^daemon: *running' && break
	sleep 0.1
done

now() { date +%s.%N; }
secs() { echo "$1 $2" | awk '{ printf "%.2f", $2 - $1 }'; }

t0=$(now)
"$CHJ" -c "$W/chjournal.conf" backup -C "$LAB/imapd.conf" --to "$W/arch" >"$W/backup.out"
t1=$(now)
backup_s=$(secs "$t0" "$t1")

for f in INBOX/Archive/2024 INBOX/Archive INBOX/Sent; do
	$IMAPQ ustate "$IMAP_PORT" $U1 "$f" >"$W/u1-$(echo "$f" | tr / _)"
done
$IMAPQ ustate "$IMAP_PORT" $U2 '*' >"$W/u2.before"
msgs2=$(grep -vc '^\(==\|UIDVALIDITY\)' "$W/u2.before")
$IMAPQ delete "$IMAP_PORT" $U1 INBOX/Archive/2024
$IMAPQ delete "$IMAP_PORT" $U1 INBOX/Archive
$IMAPQ delete "$IMAP_PORT" $U1 INBOX/Sent
$IMAPQ deluser "$IMAP_PORT" $U2 -

t0=$(now)
"$CHJ" restore "$W/arch/$U1.tar.gz" --to-server "127.0.0.1:$SYNC_PORT" \
	--folder user.$U1.Archive --folder user.$U1.Archive.2024 --folder user.$U1.Sent >"$W/r1.out"
t1=$(now)
"$CHJ" restore "$W/arch/$U2.tar.gz" --to-server "127.0.0.1:$SYNC_PORT" >"$W/r2.out"
t2=$(now)
folders_s=$(secs "$t0" "$t1")
user_s=$(secs "$t1" "$t2")

for f in INBOX/Archive/2024 INBOX/Archive INBOX/Sent; do
	$IMAPQ ustate "$IMAP_PORT" $U1 "$f" | cmp -s - "$W/u1-$(echo "$f" | tr / _)" ||
		{ echo "bench: $U1 $f differs after the restore" >&2; exit 1; }
done
$IMAPQ ustate "$IMAP_PORT" $U2 '*' | cmp -s - "$W/u2.before" ||
	{ echo "bench: $U2 differs after the restore" >&2; exit 1; }
msgs1=$(grep -o '[0-9]* message files' "$W/r1.out" | cut -d' ' -f1)

if [ $# -ge 2 ]; then
	FRESH=$(cd "$2" && pwd)
	FIMAP=$(. "$FRESH/lab.env" && echo "$IMAP_PORT")
	FSYNC=$(. "$FRESH/lab.env" && echo "$SYNC_PORT")
	JOBS=${BENCH_JOBS:-1}
	nusers=$(ls "$W/arch/"*.tar.gz | wc -l)
	t0=$(now)
	"$CHJ" restore "$W/arch/"*.tar.gz --to-server "127.0.0.1:$FSYNC" --jobs "$JOBS" >"$W/r3.out"
	t1=$(now)
	server_s=$(secs "$t0" "$t1")
	nmsg=0
	for a in "$W/arch/"*.tar.gz; do
		u=$(basename "$a" .tar.gz)
		$IMAPQ ustate "$IMAP_PORT" "$u" '*' >"$W/s.a"
		$IMAPQ ustate "$FIMAP" "$u" '*' >"$W/s.b"
		cmp -s "$W/s.a" "$W/s.b" || { echo "bench: $u differs in $FRESH" >&2; exit 1; }
		nmsg=$((nmsg + $(grep -vc '^\(==\|UIDVALIDITY\)' "$W/s.a")))
	done
fi

printf '%-58s %8s\n' "case (checked over IMAP: UIDVALIDITY, UIDs, bytes, flags, dates)" "seconds"
printf '%-58s %8s\n' "full backup of the lab (chjournal backup)" "$backup_s"
printf '%-58s %8s\n' "3 deleted folders of $U1 ($msgs1 messages), one call" "$folders_s"
printf '%-58s %8s\n' "deleted $U2 ($msgs2 messages), whole user" "$user_s"
[ -z "${server_s:-}" ] ||
	printf '%-58s %8s\n' "whole server, $nusers users ($nmsg messages) into a fresh Cyrus, --jobs $JOBS" "$server_s"
