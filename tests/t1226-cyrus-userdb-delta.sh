#!/bin/bash
# t1226-cyrus-userdb-delta: against a real Cyrus IMAP 3.6, the per-user
# databases Cyrus rewrites in place are stored as deltas of the archived
# state: dav.db (SQLite, changed by a ManageSieve PUTSCRIPT: the lab has no
# CalDAV/CardDAV) and a non-owner's seen.db (twoskip, changed by \Seen in
# another user's shared folder; 36 of them first, as a database under 4 KiB
# is stored whole). Each delta is a small fraction of its file; each run restores both byte for byte (the newest and older ones by
# --at); verify passes; compaction keeps the retained runs restorable; and
# `restore --to-server` rebuilds user02's seen state from the delta chain.
. "$(dirname "$0")/test-lib.sh"
. "$CHJ_SRCDIR/tests/cyrus-lib.sh"

cyrus_require_sync

IMAPQ="python3 $CHJ_SRCDIR/tests/cyrus-imap.py"
LAB="$TRASH/lab"
ARCH="$TRASH/archives"

# sieve_put N: user01 uploads (and activates) script sN
sieve_put() {
	printf 'require ["fileinto"];\nif header :contains "subject" "x%s" { fileinto "INBOX"; }\n' "$1" |
		$IMAPQ sieveput "$SIEVE_PORT" user01 "s$1"
}

# keep N: copies of the live dav.db (user01) and seen.db (user02) as run N's
keep() {
	cp "$(find "$LAB/conf/user" -name dav.db)" "dav-$1" &&
	cp "$(find "$LAB/conf/user" -name seen.db)" "seen-$1"
}

# backup_both: a backup that writes a run for each user
backup_both() {
	chj sync >/dev/null &&
	chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
	grep -q "2 runs written" out || { cat out err >&2; return 1; }
}

# restored USER NAME DIR [--at RUN]: restores USER into DIR, prints the
# path of its restored file NAME
restored() {
	_u=$1 _n=$2 _d=$3
	shift 3
	rm -rf "$_d" &&
	chj restore "$ARCH/$_u.tar.gz" --to "$_d" "$@" >/dev/null &&
	find "$_d/conf/user" -name "$_n" | head -n 1
}

# member_size ARCHIVE NAME-SUFFIX: the size of the newest member ending so
member_size() {
	tar -tvzif "$1" | awk -v s="$2" 'substr($6, length($6) - length(s) + 1) == s { n = $3 } END { print n }'
}

expect_success 'a Cyrus lab, a sieve script for user01 (dav.db), user02 reads in user01s Sent (seen.db), a backup' '
	SYNC=$(test_ports 1) &&
	cyrus_start "$LAB" CYRUS_LAB_SYNC_PORT=$SYNC &&
	bash "$CYRUS_LAB" populate "$LAB" 2 5 >"$TRASH/populate.log" 2>&1 &&
	. "$LAB/lab.env" &&
	sieve_put 1 &&
	cyrus_imap "$IMAP_PORT" user01 setacl INBOX/Sent user02 lrsw &&
	cyrus_imap "$IMAP_PORT" user01 append INBOX/Sent 40 &&
	for u in $(seq 1 36); do
		cyrus_imap "$IMAP_PORT" user02 seen user/user01/Sent $u || return 1
	done &&
	cyrus_config "$LAB" &&
	start_daemon &&
	backup_both &&
	keep 1 &&
	test "$(stat -c %s seen-1)" -ge 4096 &&
	tar -tzif "$ARCH/user01.tar.gz" | grep -q "^user/conf/user/.*/dav\.db$" &&
	tar -tzif "$ARCH/user02.tar.gz" | grep -q "^user/conf/user/.*/seen\.db$"
'
. "$LAB/lab.env" 2>/dev/null

expect_success 'another script and another \Seen: each database a small delta, not a new copy' '
	sieve_put 2 &&
	cyrus_imap "$IMAP_PORT" user02 seen user/user01/Sent 37 &&
	backup_both &&
	keep 2 &&
	! cmp -s dav-1 dav-2 && ! cmp -s seen-1 seen-2 &&
	d=$(member_size "$ARCH/user01.tar.gz" /dav.db.delta) &&
	s=$(member_size "$ARCH/user02.tar.gz" /seen.db.delta) &&
	echo "dav.db $(stat -c %s dav-2) bytes: delta $d; seen.db $(stat -c %s seen-2) bytes: delta $s" >&2 &&
	test -n "$d" && test "$d" -lt $(($(stat -c %s dav-2) / 20)) &&
	test -n "$s" && test "$s" -lt $(($(stat -c %s seen-2) / 2))
'

expect_success 'a third change: a chain of two deltas each' '
	sieve_put 3 &&
	cyrus_imap "$IMAP_PORT" user02 seen user/user01/Sent 38 &&
	backup_both &&
	keep 3 &&
	test "$(tar -tzif "$ARCH/user01.tar.gz" | grep -c "/dav\.db\.delta$")" = 2 &&
	test "$(tar -tzif "$ARCH/user02.tar.gz" | grep -c "/seen\.db\.delta$")" = 2
'

expect_success 'restore, the newest run and older ones by --at: each database byte for byte' '
	for n in 1 2 3; do
		f=$(restored user01 dav.db "$TRASH/r1-$n" --at $n) && test -n "$f" && cmp "$f" dav-$n &&
		f=$(restored user02 seen.db "$TRASH/r2-$n" --at $n) && test -n "$f" && cmp "$f" seen-$n ||
		return 1
	done &&
	f=$(restored user01 dav.db "$TRASH/r1") && cmp "$f" dav-3 &&
	chj verify "$ARCH/user01.tar.gz" >out 2>err &&
	chj verify "$ARCH/user02.tar.gz" >out 2>err
'

expect_success 'compact keeps the retained runs restorable' '
	chj compact --force --keep-last 2 "$ARCH/user01.tar.gz" >out 2>err &&
	chj compact --force --keep-last 2 "$ARCH/user02.tar.gz" >>out 2>>err &&
	test "$(grep -c compacted out)" = 2 &&
	chj verify "$ARCH/user01.tar.gz" >/dev/null &&
	chj verify "$ARCH/user02.tar.gz" >/dev/null &&
	f=$(restored user01 dav.db "$TRASH/c1-1" --at 1) && cmp "$f" dav-2 &&
	f=$(restored user01 dav.db "$TRASH/c1-2") && cmp "$f" dav-3 &&
	f=$(restored user02 seen.db "$TRASH/c2-1" --at 1) && cmp "$f" seen-2 &&
	f=$(restored user02 seen.db "$TRASH/c2-2") && cmp "$f" seen-3
'

expect_success 'both users deleted, restore --to-server: user02s \Seen in user01s Sent comes back from the deltas' '
	cyrus_imap "$IMAP_PORT" user02 flags user/user01/Sent >flags-before &&
	test "$(grep -c Seen flags-before)" = 38 &&
	$IMAPQ deluser "$IMAP_PORT" user01 - &&
	$IMAPQ deluser "$IMAP_PORT" user02 - &&
	chj restore "$ARCH/user01.tar.gz" "$ARCH/user02.tar.gz" --to-server "127.0.0.1:$SYNC_PORT" >out 2>err &&
	grep -q "user '"'"'user02'"'"': .*; its seen state in 1 folders of other users restored" out &&
	cyrus_imap "$IMAP_PORT" user02 flags user/user01/Sent >flags-after &&
	test_cmp flags-before flags-after
'

test_done
