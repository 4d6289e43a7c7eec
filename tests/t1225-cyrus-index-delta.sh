#!/bin/bash
# t1225-cyrus-index-delta: against a real Cyrus IMAP 3.6, a delivery of one
# message to a folder of 1,000 costs the archive that message and a small
# delta of cyrus.index (folders/UID/cyrus.index.delta), not a new copy of
# the index; each run restores a cyrus.index byte for byte identical to the
# live one at that run (the newest, and an older one by --at), verify
# passes, plain tar lists the delta as a file, compaction keeps every
# retained run restorable, and `restore --to-server` puts the folder, deleted,
# back as it was (its index rebuilt from the deltas).
. "$(dirname "$0")/test-lib.sh"
. "$CHJ_SRCDIR/tests/cyrus-lib.sh"

cyrus_require_sync

IMAPQ="python3 $CHJ_SRCDIR/tests/cyrus-imap.py"

LAB="$TRASH/lab"
ARCH="$TRASH/archives"
A="$ARCH/user01.tar.gz"

# live_index: the path of the 1,000-message folder's (INBOX/Big) cyrus.index
live_index() {
	find "$LAB" -name cyrus.index -size +100k | head -n 1
}

# backup_one: a backup that writes one run
backup_one() {
	chj sync >/dev/null &&
	chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
	grep -q "1 runs written" out || { cat out err >&2; return 1; }
}

# restored_index DIR [--at RUN]: restores user01 into DIR, prints the path
# of the big folder's restored cyrus.index
restored_index() {
	_d=$1
	shift
	rm -rf "$_d" &&
	chj restore "$A" --to "$_d" "$@" >/dev/null &&
	find "$_d" -name cyrus.index -size +100k | head -n 1
}

# imap_py CODE: runs python CODE with m logged in as user01
imap_py() {
	python3 - "$IMAP_PORT" "$1" <<-'EOF'
	import imaplib, sys
	m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
	m.login("user01", "x")
	exec(sys.argv[2])
	m.logout()
	EOF
}

expect_success 'a Cyrus lab, user01 with 1,000 messages in INBOX/Big, a first backup' '
	SYNC=$(test_ports 1) &&
	cyrus_start "$LAB" CYRUS_LAB_SYNC_PORT=$SYNC &&
	bash "$CYRUS_LAB" populate "$LAB" 1 0 >"$TRASH/populate.log" 2>&1 &&
	IMAP_PORT=$(sed -n "s/^IMAP_PORT=//p" "$LAB/lab.env") &&
	LMTP_PORT=$(sed -n "s/^LMTP_PORT=//p" "$LAB/lab.env") &&
	imap_py "
assert m.create(\"INBOX/Big\")[0] == \"OK\"
assert m.setacl(\"INBOX/Big\", \"anyone\", \"p\")[0] == \"OK\"
for i in range(1000):
    msg = (\"From: a@example.org\r\nTo: user01\r\nSubject: m%d\r\n\r\nbody %d\r\n\" % (i, i)).encode()
    assert m.append(\"INBOX/Big\", None, None, msg)[0] == \"OK\"
" &&
	test -n "$(live_index)" &&
	cyrus_config "$LAB" &&
	start_daemon &&
	backup_one &&
	cp "$(live_index)" index-1
'
IMAP_PORT=$(sed -n "s/^IMAP_PORT=//p" "$LAB/lab.env" 2>/dev/null)
LMTP_PORT=$(sed -n "s/^LMTP_PORT=//p" "$LAB/lab.env" 2>/dev/null)
SYNC_PORT=$(sed -n "s/^SYNC_PORT=//p" "$LAB/lab.env" 2>/dev/null)

expect_success 'one message delivered: the run costs about that message and a small delta' '
	before=$(stat -c %s "$A") &&
	python3 -c "
import smtplib, sys
l = smtplib.LMTP(\"127.0.0.1\", int(sys.argv[1]))
l.sendmail(\"s@example.org\", [\"user01+Big\"], b\"From: s@example.org\r\nSubject: one more\r\n\r\n\" + b\"x\" * 2000 + b\"\r\n\")
l.quit()
" "$LMTP_PORT" &&
	backup_one &&
	cp "$(live_index)" index-2 &&
	after=$(stat -c %s "$A") &&
	size=$(stat -c %s index-2) &&
	growth=$((after - before)) &&
	echo "archive growth $growth bytes, cyrus.index $size bytes" >&2 &&
	test "$size" -gt 100000 &&
	test "$growth" -lt $((size / 20)) &&
	tar -tzif "$A" >list &&
	folder=$(sed -n "s|^\(folders/.*\)/cyrus.index.delta$|\1|p" list) &&
	test -n "$folder" &&
	test "$(grep -c "^$folder/cyrus.index$" list)" = 1
'

expect_success '\Flagged on one message: another delta' '
	imap_py "
m.select(\"INBOX/Big\")
assert m.uid(\"STORE\", \"500\", \"+FLAGS\", \"(\\\\Flagged)\")[0] == \"OK\"
" &&
	backup_one &&
	cp "$(live_index)" index-3 &&
	test "$(tar -tzif "$A" | grep -c "/cyrus.index.delta$")" = 2
'

expect_success 'restore, the newest run and older ones by --at: the live index byte for byte' '
	r=$(restored_index "$TRASH/r3") && test -n "$r" && cmp "$r" index-3 &&
	r=$(restored_index "$TRASH/r2" --at 2) && test -n "$r" && cmp "$r" index-2 &&
	r=$(restored_index "$TRASH/r1" --at 1) && test -n "$r" && cmp "$r" index-1 &&
	chj verify "$A" >out 2>err
'

expect_success 'compact keeps the retained runs restorable' '
	chj compact --force --keep-last 2 "$A" >out 2>err &&
	grep -q compacted out &&
	chj verify "$A" >/dev/null &&
	r=$(restored_index "$TRASH/c2") && test -n "$r" && cmp "$r" index-3 &&
	r=$(restored_index "$TRASH/c1" --at 1) && test -n "$r" && cmp "$r" index-2
'

expect_success 'the folder deleted, restore --to-server puts it back as it was' '
	$IMAPQ ustate "$IMAP_PORT" user01 INBOX/Big >before &&
	test "$(wc -l <before)" -gt 1000 &&
	$IMAPQ delete "$IMAP_PORT" user01 INBOX/Big &&
	chj restore "$A" --to-server "127.0.0.1:$SYNC_PORT" --folder user.user01.Big >out 2>err &&
	grep -q "1 folders created" out &&
	$IMAPQ ustate "$IMAP_PORT" user01 INBOX/Big >after &&
	test_cmp before after
'

test_done
