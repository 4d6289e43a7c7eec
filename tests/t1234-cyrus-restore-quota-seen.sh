#!/bin/bash
# t1234-cyrus-restore-quota-seen: what `chjournal restore --to-server` puts
# back beside the folders (t1232 checks the folders): the quota roots with
# their limits (the admin's SETQUOTA), the ACL another user was given
# (SETACL, from the archived mailboxes.db record), and another user's \Seen
# in a shared folder (that user's seen.db), after both users were deleted
# (their folders' uniqueids then held by the delayed-delete copies), and a
# deleted folder's own quota root with it (--folder). A change of a quota
# alone gives its user a run. Spool layout: uuid, or the
# legacy one with CHJ_CYRUS_LEGACY_DIRS=1.
. "$(dirname "$0")/test-lib.sh"
. "$CHJ_SRCDIR/tests/cyrus-lib.sh"

cyrus_require
[ -x /usr/lib/cyrus/bin/sync_server ] ||
	skip_all "Cyrus's sync_server is not installed (the cyrus-replication package: run ../shared/cyrus-lab/cyrus-lab.sh install)"

ARCH="$TRASH/archives"
LAB="$TRASH/lab"

# imap PORT USER CMD ARGS...: one IMAP step as USER (any password logs in)
#   setquota ROOT LIMITS   quota   FOLDER   (GETQUOTAROOT: "ROOT RESOURCE USED LIMIT ..." lines, sorted)
#   setacl FOLDER WHO RIGHTS   getacl FOLDER   append FOLDER N
#   seen FOLDER UID (+FLAGS \Seen)   flags FOLDER ("UID FLAGS" lines, without \Recent)
imap() {
	python3 - "$@" <<-'EOF'
	import imaplib, re, sys
	port, user, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
	m = imaplib.IMAP4("127.0.0.1", int(port))
	m.authenticate("PLAIN", lambda _: ("\0%s\0x" % user).encode())
	def ok(r):
	    if r[0] != "OK":
	        raise SystemExit("IMAP %s: %r" % (cmd, r))
	    return r[1]
	q = lambda s: '"%s"' % s
	if cmd == "setquota":
	    ok(m.setquota(q(args[0]), "(%s)" % args[1]))
	elif cmd == "quota":
	    data = ok(m.getquotaroot(q(args[0])))
	    out = []
	    for d in data[1]:
	        d = d.decode() if isinstance(d, bytes) else d
	        mm = re.match(r'^"?([^"(]*?)"? \((.*)\)$', d)
	        if mm:
	            f = mm.group(2).split()
	            for i in range(0, len(f), 3):
	                out.append("%s %s %s" % (mm.group(1), f[i], f[i + 2]))
	    print("\n".join(sorted(out)))
	elif cmd == "setacl":
	    ok(m.setacl(q(args[0]), args[1], args[2]))
	elif cmd == "getacl":
	    d = ok(m.getacl(q(args[0])))[0].decode().split()[1:]
	    print("\n".join(sorted("%s %s" % (d[i], d[i + 1]) for i in range(0, len(d), 2))))
	elif cmd == "append":
	    for i in range(int(args[1])):
	        ok(m.append(q(args[0]), None, None, b"Subject: shared %d\r\n\r\nbody %d\r\n" % (i, i)))
	elif cmd == "seen":
	    ok(m.select(q(args[0])))
	    ok(m.uid("STORE", args[1], "+FLAGS", "(\\Seen)"))
	elif cmd == "flags":
	    ok(m.select(q(args[0]), readonly=True))
	    for d in ok(m.uid("FETCH", "1:*", "(FLAGS)")):
	        d = d.decode()
	        uid = re.search(r"UID (\d+)", d).group(1)
	        fl = sorted(f for f in re.search(r"FLAGS \(([^)]*)\)", d).group(1).split() if f != "\\Recent")
	        print(uid, " ".join(fl))
	m.logout()
	EOF
}

expect_success 'a Cyrus lab with a sync port, the journal daemon' '
	SYNC=$(test_ports 1) &&
	cyrus_start "$LAB" CYRUS_LAB_SYNC_PORT=$SYNC CYRUS_LAB_LEGACY_DIRS=${CHJ_CYRUS_LEGACY_DIRS:-0} &&
	bash "$CYRUS_LAB" populate "$LAB" 3 5 >populate.log 2>&1 &&
	cyrus_config "$LAB" &&
	start_daemon
'
. "$LAB/lab.env" 2>/dev/null
SERVER="127.0.0.1:$SYNC_PORT"

expect_success 'quotas on user01 and its Archive; Sent shared with user02, who reads one message; backup' '
	imap "$IMAP_PORT" admin setquota user/user01 "STORAGE 5000 MESSAGE 300" &&
	imap "$IMAP_PORT" admin setquota user/user01/Archive "STORAGE 700" &&
	imap "$IMAP_PORT" admin setquota user/user01/Drafts "MESSAGE 50" &&
	imap "$IMAP_PORT" admin quota user/user01/Archive/2024 >quota-before &&
	cat >expect <<-\EOF &&
	user/user01/Archive STORAGE 700
	EOF
	test_cmp expect quota-before &&
	imap "$IMAP_PORT" admin quota user/user01 >inbox-quota-before &&
	grep -qx "user/user01 MESSAGE 300" inbox-quota-before &&
	grep -qx "user/user01 STORAGE 5000" inbox-quota-before &&
	imap "$IMAP_PORT" user01 setacl INBOX/Sent user02 lrsw &&
	imap "$IMAP_PORT" user01 getacl INBOX/Sent >acl-before &&
	grep -qx "user02 lrsw" acl-before &&
	imap "$IMAP_PORT" user01 append INBOX/Sent 3 &&
	imap "$IMAP_PORT" user02 seen user/user01/Sent 2 &&
	imap "$IMAP_PORT" user02 flags user/user01/Sent >user02-flags-before &&
	grep -qx "2 \\\\Seen" user02-flags-before &&
	! grep -q "^[13] .*Seen" user02-flags-before &&
	imap "$IMAP_PORT" user01 flags INBOX/Sent >user01-flags-before &&
	! grep -q Seen user01-flags-before &&
	chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
	tar -tzif "$ARCH/user01.tar.gz" >list &&
	grep -qx "user/conf/quota/u/user.user01" list &&
	grep -qx "user/conf/quota/u/user.user01.Archive" list &&
	id=$(python3 "$CHJ_SRCDIR/tests/cyrus-imap.py" mailboxid "$IMAP_PORT" user01 INBOX/Sent) &&
	tar -xzOif "$ARCH/user01.tar.gz" "folders/$id/mailbox" | tail -n 1 >rec &&
	grep -q "^%(MBOXLIST %(T e.* A %(user01 lrswipkxtecdan user02 lrsw)) ANNOTATIONS (" rec
'

expect_success 'a quota changed alone: the next backup gives user01 a run with its quota file' '
	runs=$(tar -tzif "$ARCH/user01.tar.gz" | grep -c "^runs/") &&
	imap "$IMAP_PORT" admin setquota user/user01 "STORAGE 6000 MESSAGE 300" &&
	chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
	test "$(tar -tzif "$ARCH/user01.tar.gz" | grep -c "^runs/")" = $((runs + 1)) &&
	tar -xzOif "$ARCH/user01.tar.gz" "user/conf/quota/u/user.user01" | tail -n 1 >qfile &&
	grep -q "^%(S ([0-9]* 6000) M ([0-9]* 300) " qfile &&
	imap "$IMAP_PORT" admin quota user/user01 >inbox-quota-before &&
	grep -qx "user/user01 STORAGE 6000" inbox-quota-before
'

expect_success 'verify finds the archive sound; restore --to puts the quota files under conf/quota' '
	chj verify "$ARCH/user01.tar.gz" >out 2>err &&
	chj restore "$ARCH/user01.tar.gz" --to "$TRASH/scratch" >out 2>err &&
	grep -q "^%(S ([0-9]* 6000) M ([0-9]* 300) " "$TRASH/scratch/conf/quota/u/user.user01" &&
	grep -q "^%(S ([0-9]* 700) " "$TRASH/scratch/conf/quota/u/user.user01.Archive"
'

expect_success 'both users are deleted; a dry run says which quota roots it would set, writes nothing' '
	python3 "$CHJ_SRCDIR/tests/cyrus-imap.py" deluser "$IMAP_PORT" user01 - &&
	python3 "$CHJ_SRCDIR/tests/cyrus-imap.py" deluser "$IMAP_PORT" user02 - &&
	chj restore "$ARCH/user01.tar.gz" --to-server "$SERVER" --dry-run >out 2>err &&
	grep -qx "dry run: would set quota root '"'"'user.user01'"'"' (STORAGE 6000 MESSAGE 300)" out &&
	grep -qx "dry run: would set quota root '"'"'user.user01.Archive'"'"' (STORAGE 700)" out &&
	! python3 "$CHJ_SRCDIR/tests/cyrus-imap.py" exists "$IMAP_PORT" user01 INBOX
'

expect_success 'restore --to-server of both: quota roots and limits, the ACL, user02s \Seen come back' '
	chj restore "$ARCH/user01.tar.gz" "$ARCH/user02.tar.gz" --to-server "$SERVER" >out 2>err &&
	grep -qx "set quota root '"'"'user.user01'"'"' (STORAGE 6000 MESSAGE 300)" out &&
	grep -q "user '"'"'user02'"'"': .*; its seen state in 1 folders of other users restored" out &&
	imap "$IMAP_PORT" admin quota user/user01/Archive/2024 >quota-after &&
	test_cmp quota-before quota-after &&
	imap "$IMAP_PORT" admin quota user/user01 >inbox-quota-after &&
	grep -qx "user/user01 STORAGE 6000" inbox-quota-after &&
	grep -qx "user/user01 MESSAGE 300" inbox-quota-after &&
	imap "$IMAP_PORT" user01 getacl INBOX/Sent >acl-after &&
	test_cmp acl-before acl-after &&
	imap "$IMAP_PORT" user02 flags user/user01/Sent >user02-flags-after &&
	test_cmp user02-flags-before user02-flags-after &&
	imap "$IMAP_PORT" user01 flags INBOX/Sent >user01-flags-after &&
	test_cmp user01-flags-before user01-flags-after
'

expect_success 'a deleted folder that was a quota root: restore --folder sets its root again' '
	python3 "$CHJ_SRCDIR/tests/cyrus-imap.py" delete "$IMAP_PORT" user01 INBOX/Drafts &&
	chj restore "$ARCH/user01.tar.gz" --to-server "$SERVER" --folder user.user01.Drafts >out 2>err &&
	grep -qx "set quota root '"'"'user.user01.Drafts'"'"' (MESSAGE 50)" out &&
	! grep -q "quota root '"'"'user.user01'"'"'" out &&
	imap "$IMAP_PORT" admin quota user/user01/Drafts >drafts-quota &&
	grep -qx "user/user01/Drafts MESSAGE 50" drafts-quota
'

expect_success 'quota usage is counted again: user01 is refused a message over its MESSAGE limit only' '
	imap "$IMAP_PORT" admin setquota user/user01 "MESSAGE 1" &&
	must_fail imap "$IMAP_PORT" user01 append INBOX 1 2>err &&
	grep -qi "quota" err
'

test_done
