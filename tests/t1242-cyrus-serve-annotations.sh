#!/bin/bash
# t1242-cyrus-serve-annotations: folder annotations (IMAP METADATA, kept in
# Cyrus's global annotations.db) in backups pulled by `chjournal backup
# --from` from `chjournal serve`, as a local backup has them. One Cyrus lab
# stands for the IMAP host; its serve is run as sshd runs a backup key's
# forced command (a script given as --ssh), so no sshd is needed (t1241 has
# the real one). SETMETADATA on a folder, then a pull: the folder record of
# the pulled archive holds it, and `restore --to-server` of that archive
# puts it back over IMAP; a METADATA change alone is pulled, for its owner
# only (the window serve hands out names annotations.db as the local path
# sees it).
. "$(dirname "$0")/test-lib.sh"
. "$CHJ_SRCDIR/tests/cyrus-lib.sh"

cyrus_require
tar --version 2>/dev/null | grep -q 'GNU tar' || skip_all "GNU tar not found"

IMAPQ="python3 $CHJ_SRCDIR/tests/cyrus-imap.py"
LAB="$TRASH/lab"
PULL="$TRASH/pull"
FOLDER="INBOX/Notes"

expect_success 'a Cyrus lab starts, is populated, and the journal daemon runs' '
	SYNC=$(test_ports 1) &&
	cyrus_start "$LAB" CYRUS_LAB_SYNC_PORT=$SYNC &&
	bash "$CYRUS_LAB" populate "$LAB" 3 10 >populate.log 2>&1 &&
	cyrus_config "$LAB" &&
	start_daemon
'
. "$LAB/lab.env" 2>/dev/null

cyrus_fake_sshd "$LAB"
pull() { cyrus_pull "$PULL" "$@"; }
runs_of() { cyrus_pulled_runs "$PULL" "$1"; }

# record USER FOLDER: the newest folder record of USER's FOLDER in the pull
record() {
	id=$($IMAPQ mailboxid "$IMAP_PORT" "$1" "$2") &&
	tar -xzOif "$PULL/imap1/$1.tar.gz" "folders/$id/mailbox" | tail -n 1
}

expect_success 'SETMETADATA on a folder, then the first pull: its folder record holds the annotations' '
	$IMAPQ fill "$IMAP_PORT" user01 "$FOLDER" &&
	printf "/shared/comment pulled with the folder\n/private/comment the owners own\n" |
		$IMAPQ setmeta "$IMAP_PORT" user01 "$FOLDER" &&
	$IMAPQ getmeta "$IMAP_PORT" user01 "$FOLDER" >meta-before &&
	test "$(wc -l <meta-before)" = 2 &&
	pull >out 2>err &&
	! grep -q "too old for folder annotations" err &&
	record user01 "$FOLDER" >rec &&
	cat rec &&
	grep -q "ENTRY /comment USERID \"\" MODSEQ [0-9]* VALUE \"pulled with the folder\"" rec &&
	grep -qF "ENTRY /comment USERID [.OwNeR.] MODSEQ 0 VALUE \"the owners own\"" rec &&
	test -f "$PULL/imap1/.cyrus-annotations"
'

expect_success 'a METADATA change alone is pulled: a run for its owner only' '
	pull >out 2>err &&
	r1=$(runs_of user01) && r2=$(runs_of user02) && r3=$(runs_of user03) &&
	printf "/shared/comment changed alone\n" | $IMAPQ setmeta "$IMAP_PORT" user03 INBOX &&
	pull >out 2>err &&
	test "$(runs_of user03)" = $((r3 + 1)) &&
	test "$(runs_of user01)" = "$r1" && test "$(runs_of user02)" = "$r2" &&
	record user03 INBOX >rec &&
	grep -q "ENTRY /comment USERID \"\" MODSEQ [0-9]* VALUE \"changed alone\"" rec &&
	pull >out 2>err &&
	test "$(runs_of user03)" = $((r3 + 1))
'

if [ -x /usr/lib/cyrus/bin/sync_server ]; then
expect_success 'restore --to-server of the pulled archive puts the folder and its annotations back' '
	$IMAPQ ustate "$IMAP_PORT" user01 "$FOLDER" >before &&
	$IMAPQ delete "$IMAP_PORT" user01 "$FOLDER" &&
	! $IMAPQ exists "$IMAP_PORT" user01 "$FOLDER" &&
	chj restore "$PULL/imap1/user01.tar.gz" --to-server "127.0.0.1:$SYNC_PORT" \
		--folder "user.user01.Notes" >out 2>err &&
	$IMAPQ ustate "$IMAP_PORT" user01 "$FOLDER" >after &&
	test_cmp before after &&
	$IMAPQ getmeta "$IMAP_PORT" user01 "$FOLDER" >meta-after &&
	test_cmp meta-before meta-after
'
else
	test_skip 'restore --to-server of the pulled archive' "no sync_server (the cyrus-replication package)"
fi

test_done
