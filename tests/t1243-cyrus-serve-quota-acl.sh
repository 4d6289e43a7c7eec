#!/bin/bash
# t1243-cyrus-serve-quota-acl: quota roots (quotalegacy files below
# configdirectory/quota) and each folder's mailboxes.db record (its ACL) in
# backups pulled by `chjournal backup --from` from `chjournal serve`, as a
# local backup of the same server has them. One Cyrus lab stands for the
# IMAP host; its serve is run as sshd runs a backup key's forced command (a
# script given as --ssh), as in t1242. SETQUOTA and SETACL, a pull and a
# local backup: the same quota files and folder records (MBOXLIST) in both
# (33 users: the first, full, pull lists every user's mailboxes at once);
# a quota change alone is pulled for its owner only; `restore --to-server`
# of the pulled archive brings back GETQUOTAROOT's limits and GETACL.
. "$(dirname "$0")/test-lib.sh"
. "$CHJ_SRCDIR/tests/cyrus-lib.sh"

cyrus_require
tar --version 2>/dev/null | grep -q 'GNU tar' || skip_all "GNU tar not found"

IMAPQ="python3 $CHJ_SRCDIR/tests/cyrus-imap.py"
LAB="$TRASH/lab"
PULL="$TRASH/pull"
LOCAL="$TRASH/local"

expect_success 'a Cyrus lab starts, is populated, and the journal daemon runs' '
	SYNC=$(test_ports 1) &&
	cyrus_start "$LAB" CYRUS_LAB_SYNC_PORT=$SYNC &&
	bash "$CYRUS_LAB" populate "$LAB" 33 6 >populate.log 2>&1 &&
	cyrus_config "$LAB" &&
	start_daemon
'
. "$LAB/lab.env" 2>/dev/null

cyrus_fake_sshd "$LAB"
pull() { cyrus_pull "$PULL" "$@"; }
runs_of() { cyrus_pulled_runs "$PULL" "$1"; }

# member DIR USER NAME: the newest copy of NAME in DIR's USER.tar.gz (a
# folder record, a quota file: one line each)
member() {
	tar -xzOif "$1/$2.tar.gz" "$3" | tail -n 1
}

expect_success 'SETQUOTA and SETACL, a pull and a local backup: the same quota files and folder records' '
	cyrus_imap "$IMAP_PORT" admin setquota user/user01 "STORAGE 5000 MESSAGE 300" &&
	cyrus_imap "$IMAP_PORT" admin setquota user/user01/Archive "STORAGE 700" &&
	cyrus_imap "$IMAP_PORT" admin quota user/user01/Archive/2024 >quota-before &&
	echo "user/user01/Archive STORAGE 700" >expect &&
	test_cmp expect quota-before &&
	cyrus_imap "$IMAP_PORT" user01 setacl INBOX/Sent user02 lrsw &&
	cyrus_imap "$IMAP_PORT" user01 getacl INBOX/Sent >acl-before &&
	grep -qx "user02 lrsw" acl-before &&
	pull >out 2>err &&
	! grep -q "too old" err &&
	chj backup -C "$LAB/imapd.conf" --consumer local-copy --to "$LOCAL" >out 2>err &&
	tar -tzif "$PULL/imap1/user01.tar.gz" >list &&
	grep -qx "user/conf/quota/u/user.user01" list &&
	grep -qx "user/conf/quota/u/user.user01.Archive" list &&
	for q in user.user01 user.user01.Archive; do
		member "$PULL/imap1" user01 "user/conf/quota/u/$q" >q-pulled &&
		member "$LOCAL" user01 "user/conf/quota/u/$q" >q-local &&
		test_cmp q-local q-pulled || return 1
	done &&
	member "$PULL/imap1" user01 user/conf/quota/u/user.user01 >qfile &&
	grep -q "^%(S ([0-9]* 5000) M ([0-9]* 300) " qfile &&
	id=$($IMAPQ mailboxid "$IMAP_PORT" user01 INBOX/Sent) &&
	member "$PULL/imap1" user01 "folders/$id/mailbox" >rec &&
	cat rec &&
	grep -q "^%(MBOXLIST %(T e.* A %(user01 lrswipkxtecdan user02 lrsw)) ANNOTATIONS (" rec &&
	member "$LOCAL" user01 "folders/$id/mailbox" >local-rec &&
	test_cmp local-rec rec
'

expect_success 'a quota change alone is pulled: a run for its owner only, with the new limit' '
	r1=$(runs_of user01) && r2=$(runs_of user02) && r3=$(runs_of user03) &&
	cyrus_imap "$IMAP_PORT" admin setquota user/user01 "STORAGE 6000 MESSAGE 300" &&
	pull >out 2>err &&
	test "$(runs_of user01)" = $((r1 + 1)) &&
	test "$(runs_of user02)" = "$r2" && test "$(runs_of user03)" = "$r3" &&
	member "$PULL/imap1" user01 user/conf/quota/u/user.user01 >qfile &&
	grep -q "^%(S ([0-9]* 6000) M ([0-9]* 300) " qfile
'

expect_success 'a SETACL is pulled: the folder record of its folder holds the new ACL' '
	r3=$(runs_of user03) &&
	cyrus_imap "$IMAP_PORT" user03 setacl INBOX user01 lr &&
	pull >out 2>err &&
	test "$(runs_of user03)" = $((r3 + 1)) &&
	id=$($IMAPQ mailboxid "$IMAP_PORT" user03 INBOX) &&
	member "$PULL/imap1" user03 "folders/$id/mailbox" >rec &&
	grep -q "^%(MBOXLIST %(T e .* A %(user03 lrswipkxtecdan user01 lr)) ANNOTATIONS (" rec
'

if [ -x /usr/lib/cyrus/bin/sync_server ]; then
expect_success 'user01 deleted; restore --to-server of the pulled archive: quota limits and the ACL come back' '
	cyrus_imap "$IMAP_PORT" admin quota user/user01 >inbox-quota-before &&
	grep -qx "user/user01 STORAGE 6000" inbox-quota-before &&
	$IMAPQ deluser "$IMAP_PORT" user01 - &&
	! $IMAPQ exists "$IMAP_PORT" user01 INBOX &&
	chj restore "$PULL/imap1/user01.tar.gz" --to-server "127.0.0.1:$SYNC_PORT" >out 2>err &&
	grep -qx "set quota root '"'"'user.user01'"'"' (STORAGE 6000 MESSAGE 300)" out &&
	grep -qx "set quota root '"'"'user.user01.Archive'"'"' (STORAGE 700)" out &&
	cyrus_imap "$IMAP_PORT" admin quota user/user01 >inbox-quota-after &&
	test_cmp inbox-quota-before inbox-quota-after &&
	cyrus_imap "$IMAP_PORT" admin quota user/user01/Archive/2024 >quota-after &&
	test_cmp quota-before quota-after &&
	cyrus_imap "$IMAP_PORT" user01 getacl INBOX/Sent >acl-after &&
	test_cmp acl-before acl-after
'
else
	test_skip 'restore --to-server of the pulled archive' "no sync_server (the cyrus-replication package)"
fi

test_done
