#!/bin/bash
# t1232-cyrus-restore-server: `chjournal restore --to-server` puts a deleted
# folder and a deleted user back into a running Cyrus 3.6 through its
# replication protocol (sync_server): the owner then sees, over IMAP, the
# same UIDVALIDITY, UIDNEXT and, per UID, the same bytes, flags, keywords and
# internal date as before the delete. A folder or user that exists is
# refused in one line with nothing written; --dry-run writes nothing. The
# lab's spool layout is uuid-based, or the legacy name-based one with
# CHJ_CYRUS_LEGACY_DIRS=1 (t1233).
. "$(dirname "$0")/test-lib.sh"
. "$CHJ_SRCDIR/tests/cyrus-lib.sh"

cyrus_require
[ -x /usr/lib/cyrus/bin/sync_server ] ||
	skip_all "Cyrus's sync_server is not installed (the cyrus-replication package: run ../shared/cyrus-lab/cyrus-lab.sh install)"

IMAPQ="python3 $CHJ_SRCDIR/tests/cyrus-imap.py"
ARCH="$TRASH/archives"
LAB="$TRASH/lab"
FOLDER="INBOX/Archive/Trips.2024"
INTERNAL="user.user01.Archive.Trips^2024"

expect_success 'a Cyrus lab with a sync port starts, is populated, and the journal daemon runs' '
	SYNC=$(test_ports 1) &&
	cyrus_start "$LAB" CYRUS_LAB_SYNC_PORT=$SYNC CYRUS_LAB_LEGACY_DIRS=${CHJ_CYRUS_LEGACY_DIRS:-0} &&
	bash "$CYRUS_LAB" populate "$LAB" 3 10 >populate.log 2>&1 &&
	. "$LAB/lab.env" &&
	test -n "$SYNC_PORT" &&
	grep -qx "LEGACY_DIRS=${CHJ_CYRUS_LEGACY_DIRS:-0}" "$LAB/lab.env" &&
	cyrus_config "$LAB" &&
	start_daemon
'
. "$LAB/lab.env" 2>/dev/null
SERVER="127.0.0.1:$SYNC_PORT"

expect_success 'user01 fills a folder; the state with UIDs is taken; chjournal backup archives it' '
	$IMAPQ fill "$IMAP_PORT" user01 "$FOLDER" &&
	$IMAPQ annotate "$IMAP_PORT" user01 "$FOLDER" &&
	$IMAPQ annots "$IMAP_PORT" user01 "$FOLDER" >annots-before &&
	grep -q "value.priv=\"the owner.s note\" value.shared=\"seen by all\"" annots-before &&
	grep -q "value.shared=\"the last one\"" annots-before &&
	$IMAPQ ustate "$IMAP_PORT" user01 "$FOLDER" >before &&
	test "$(wc -l <before)" = 11 &&
	$IMAPQ ustate "$IMAP_PORT" user02 "*" >user02-before &&
	grep -q "^== INBOX$" user02-before &&
	$IMAPQ ustate "$IMAP_PORT" user03 "*" >user03-before &&
	$IMAPQ lsub "$IMAP_PORT" user02 - >user02-lsub-before &&
	printf "require [\"fileinto\"];\nif header :contains \"subject\" \"x\" { fileinto \"INBOX/Sent\"; }\n" |
		$IMAPQ sieveput "$SIEVE_PORT" user02 other &&
	printf "# the active one\nkeep;\n" | $IMAPQ sieveput "$SIEVE_PORT" user02 main &&
	$IMAPQ sievelist "$SIEVE_PORT" user02 - >user02-sieve-before &&
	test "$(wc -l <user02-sieve-before)" = 2 && grep -q "^main .* ACTIVE$" user02-sieve-before &&
	test "$(wc -l <user02-lsub-before)" -ge 3 &&
	printf "/shared/comment a folder for trips\n/private/comment the owners own\n/shared/vendor/cmu/cyrus-imapd/expire 30\n" |
		$IMAPQ setmeta "$IMAP_PORT" user01 "$FOLDER" &&
	$IMAPQ getmeta "$IMAP_PORT" user01 "$FOLDER" >meta-before &&
	test "$(wc -l <meta-before)" = 3 &&
	printf "/private/comment user02s inbox\n/shared/comment {not a literal}\n" |
		$IMAPQ setmeta "$IMAP_PORT" user02 INBOX &&
	$IMAPQ getmeta "$IMAP_PORT" user02 INBOX >user02-meta-before &&
	test "$(wc -l <user02-meta-before)" = 2 &&
	chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
	test -f "$ARCH/user01.tar.gz" && test -f "$ARCH/user02.tar.gz"
'

expect_success 'the folder exists (changed since): refused in one line naming it, nothing written' '
	$IMAPQ touch "$IMAP_PORT" user01 "$FOLDER" &&
	$IMAPQ ustate "$IMAP_PORT" user01 "$FOLDER" >touched &&
	! test_cmp before touched >/dev/null &&
	must_fail chj restore "$ARCH/user01.tar.gz" --to-server "$SERVER" --folder "$INTERNAL" >out 2>err &&
	test "$(wc -l <err)" = 1 &&
	grep -qF "folder '"'"'$INTERNAL'"'"' exists on $SERVER: refused" err &&
	$IMAPQ ustate "$IMAP_PORT" user01 "$FOLDER" >still &&
	test_cmp touched still
'

expect_success '--beside -restored puts it back beside the changed one, under a new name' '
	chj restore "$ARCH/user01.tar.gz" --to-server "$SERVER" --folder "$INTERNAL" --beside -restored \
		>out 2>err &&
	grep -qF "created folder '"'"'$INTERNAL-restored'"'"'" out &&
	$IMAPQ ustate "$IMAP_PORT" user01 "$FOLDER-restored" >beside &&
	test_cmp before beside &&
	$IMAPQ ustate "$IMAP_PORT" user01 "$FOLDER" >still2 &&
	test_cmp touched still2
'

expect_success 'the user deletes the folder; --dry-run says it would create it and writes nothing' '
	$IMAPQ hms "$IMAP_PORT" user01 "$FOLDER" >hms-before &&
	$IMAPQ delete "$IMAP_PORT" user01 "$FOLDER" &&
	! $IMAPQ exists "$IMAP_PORT" user01 "$FOLDER" &&
	chj restore "$ARCH/user01.tar.gz" --to-server "$SERVER" --folder "$INTERNAL" --dry-run >out 2>err &&
	grep -qF "dry run: would create folder '"'"'$INTERNAL'"'"'" out &&
	grep -q "nothing written" out &&
	! $IMAPQ exists "$IMAP_PORT" user01 "$FOLDER"
'

expect_success 'restore --to-server --folder puts it back with its UIDVALIDITY, UIDs, flags, dates, bytes and message annotations; HIGHESTMODSEQ above what clients saw' '
	chj restore "$ARCH/user01.tar.gz" --to-server "$SERVER" --folder "$INTERNAL" >out 2>err &&
	cp out folder-out &&
	grep -qF "created folder '"'"'$INTERNAL'"'"'" out &&
	grep -q "1 folders created" out &&
	$IMAPQ ustate "$IMAP_PORT" user01 "$FOLDER" >after &&
	test_cmp before after &&
	$IMAPQ annots "$IMAP_PORT" user01 "$FOLDER" >annots-after &&
	test_cmp annots-before annots-after &&
	$IMAPQ hms "$IMAP_PORT" user01 "$FOLDER" >hms-after &&
	test "$(cat hms-after)" -gt "$(cat hms-before)"
'

expect_success 'the restored folders have their folder annotations (METADATA) back, /private ones the owners' '
	$IMAPQ getmeta "$IMAP_PORT" user01 "$FOLDER" >meta-after &&
	test_cmp meta-before meta-after &&
	$IMAPQ getmeta "$IMAP_PORT" user01 "$FOLDER-restored" >meta-beside &&
	test_cmp meta-before meta-beside
'

expect_success 'a second run finds it restored: nothing written, exit 0' '
	chj restore "$ARCH/user01.tar.gz" --to-server "$SERVER" --folder "$INTERNAL" >out 2>err &&
	grep -qF "already restored: folder '"'"'$INTERNAL'"'"'" out &&
	grep -q "0 folders created" out &&
	$IMAPQ ustate "$IMAP_PORT" user01 "$FOLDER" >after2 &&
	test_cmp before after2
'

expect_success 'a new message in the restored folder gets a UID above the restored ones' '
	python3 - "$IMAP_PORT" "$FOLDER" <<-EOF
	import imaplib, sys
	m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
	m.authenticate("PLAIN", lambda _: b"\0user01\0x")
	assert m.append("\"%s\"" % sys.argv[2], None, None, b"Subject: new\r\n\r\nnew\r\n")[0] == "OK"
	EOF
	$IMAPQ ustate "$IMAP_PORT" user01 "$FOLDER" >after3 &&
	next=$(sed -n "1s/.*UIDNEXT //p" before) &&
	tail -n 1 after3 | grep -q "^$next " &&
	head -n 1 after3 | grep -q "UIDNEXT $((next + 1))$"
'

expect_success 'a second backup gives user01 a second run (the restored folder, one message more)' '
	chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
	test "$(tar -tzif "$ARCH/user01.tar.gz" | grep -c "^runs/")" = 2
'

runs_of() {
	tar -tzif "$ARCH/$1.tar.gz" | grep -c "^runs/"
}

expect_success 'a METADATA change alone: the next backup writes a run for that user only' '
	chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
	r1=$(runs_of user01) && r2=$(runs_of user02) && r3=$(runs_of user03) &&
	{ test -f "$ARCH/.cyrus-annotations" || { echo no state file; false; }; } &&
	printf "/shared/comment changed alone\n" | $IMAPQ setmeta "$IMAP_PORT" user03 INBOX &&
	chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
	test "$(runs_of user03)" = $((r3 + 1)) &&
	test "$(runs_of user01)" = "$r1" && test "$(runs_of user02)" = "$r2" &&
	id=$($IMAPQ mailboxid "$IMAP_PORT" user03 INBOX) &&
	tar -xzOif "$ARCH/user03.tar.gz" "folders/$id/mailbox" | tail -n 1 >rec &&
	grep -q "ENTRY /comment USERID \"\" MODSEQ [0-9]* VALUE \"changed alone\"" rec &&
	chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
	test "$(runs_of user03)" = $((r3 + 1))
'

expect_success 'annotations removed: a run whose folder record holds none' '
	r3=$(runs_of user03) &&
	printf "/shared/comment NIL\n" | $IMAPQ setmeta "$IMAP_PORT" user03 INBOX &&
	chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
	test "$(runs_of user03)" = $((r3 + 1)) &&
	id=$($IMAPQ mailboxid "$IMAP_PORT" user03 INBOX) &&
	tar -xzOif "$ARCH/user03.tar.gz" "folders/$id/mailbox" | tail -n 1 >rec &&
	grep -qx "%(MBOXLIST %(T e.*) ANNOTATIONS ())" rec &&
	printf "/private/comment user03s own\n" | $IMAPQ setmeta "$IMAP_PORT" user03 INBOX &&
	$IMAPQ getmeta "$IMAP_PORT" user03 INBOX >user03-meta-before &&
	chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
	test "$(runs_of user03)" = $((r3 + 2))
'

expect_success 'user02 exists (unchanged): every folder is found already restored' '
	chj restore "$ARCH/user02.tar.gz" --to-server "$SERVER" >out 2>err &&
	test "$(grep -v "#sieve" out | grep -c "already restored: folder")" = "$(grep -c "^== " user02-before)" &&
	grep -q "0 folders created" out
'

expect_success 'user02 exists (changed since): the whole-user restore is refused in one line' '
	$IMAPQ touch "$IMAP_PORT" user02 INBOX &&
	$IMAPQ ustate "$IMAP_PORT" user02 "*" >user02-touched &&
	must_fail chj restore "$ARCH/user02.tar.gz" --to-server "$SERVER" >out 2>err &&
	test "$(wc -l <err)" = 1 &&
	grep -qF "user '"'"'user02'"'"' exists on $SERVER: refused" err &&
	$IMAPQ ustate "$IMAP_PORT" user02 "*" >user02-still &&
	test_cmp user02-touched user02-still
'

expect_success '--beside -old restores user02 as user user02-old, which owns and reads it' '
	chj restore "$ARCH/user02.tar.gz" --to-server "$SERVER" --beside -old >out 2>err &&
	grep -q "as '"'"'user02-old'"'"'" out &&
	$IMAPQ ustate "$IMAP_PORT" user02-old "*" >old-after &&
	test_cmp user02-before old-after &&
	$IMAPQ getmeta "$IMAP_PORT" user02-old INBOX >old-meta &&
	test_cmp user02-meta-before old-meta
'

expect_success 'the admin deletes user02; --dry-run lists its folders and writes nothing' '
	$IMAPQ deluser "$IMAP_PORT" user02 - &&
	! $IMAPQ exists "$IMAP_PORT" user02 INBOX &&
	chj restore "$ARCH/user02.tar.gz" --to-server "$SERVER" --dry-run >out 2>err &&
	grep -qF "dry run: would create folder '"'"'user.user02'"'"'" out &&
	test "$(grep -v "#sieve" out | grep -c "would create folder")" = "$(grep -c "^== " user02-before)" &&
	! $IMAPQ exists "$IMAP_PORT" user02 INBOX
'

expect_success 'a folder of a user that is gone: refused in one line, nothing written' '
	must_fail chj restore "$ARCH/user02.tar.gz" --to-server "$SERVER" --folder user.user02.Sent >out 2>err &&
	test "$(wc -l <err)" = 1 &&
	grep -qF "user '"'"'user02'"'"' does not exist on $SERVER: refused" err &&
	! $IMAPQ exists "$IMAP_PORT" user02 INBOX
'

expect_success 'an interrupted restore (INBOX and Sent written) is completed by the whole-user run' '
	chj restore "$ARCH/user02.tar.gz" --to-server "$SERVER" --folder user.user02 \
		--folder user.user02.Sent >out 2>err &&
	grep -q "2 folders created" out
'

expect_success 'restore --to-server --jobs 2 brings two whole users back: every folder as it was' '
	$IMAPQ deluser "$IMAP_PORT" user03 - &&
	chj restore "$ARCH/user02.tar.gz" "$ARCH/user03.tar.gz" --to-server "$SERVER" --jobs 2 >out 2>err &&
	grep -q "restored run .* of user '"'"'user03'"'"'" out &&
	cp out user-out &&
	grep -qF "already restored: folder '"'"'user.user02.Sent'"'"'" out &&
	grep -qF "already restored: folder '"'"'user.user02'"'"'" out &&
	grep -q " 2 already there" out &&
	grep -q "restored run .* of user '"'"'user02'"'"'" out &&
	$IMAPQ ustate "$IMAP_PORT" user02 "*" >user02-after &&
	test_cmp user02-before user02-after &&
	grep -q "user02.: [1-9][0-9]* subscriptions and" out &&
	$IMAPQ lsub "$IMAP_PORT" user02 - >user02-lsub-after &&
	test_cmp user02-lsub-before user02-lsub-after &&
	grep -q "user02.: .* and 2 sieve scripts restored (active: .main.bc.)" out &&
	$IMAPQ sievelist "$SIEVE_PORT" user02 - >user02-sieve-after &&
	test_cmp user02-sieve-before user02-sieve-after &&
	$IMAPQ ustate "$IMAP_PORT" user03 "*" >user03-after &&
	test_cmp user03-before user03-after &&
	$IMAPQ getmeta "$IMAP_PORT" user02 INBOX >user02-meta-after &&
	test_cmp user02-meta-before user02-meta-after &&
	$IMAPQ getmeta "$IMAP_PORT" user03 INBOX >user03-meta-after &&
	test_cmp user03-meta-before user03-meta-after
'

expect_success 'into a second, fresh Cyrus: user03 comes back the same, with its uniqueids' '
	SYNC2=$(test_ports 1) &&
	cyrus_start "$TRASH/lab2" CYRUS_LAB_SYNC_PORT=$SYNC2 \
		CYRUS_LAB_LEGACY_DIRS=${CHJ_CYRUS_LEGACY_DIRS:-0} &&
	IMAP2=$(. "$TRASH/lab2/lab.env" && echo "$IMAP_PORT") &&
	chj restore "$ARCH/user03.tar.gz" --to-server "127.0.0.1:$SYNC2" >out 2>err &&
	! grep -q "a new one" out &&
	$IMAPQ ustate "$IMAP2" user03 "*" >fresh-after &&
	test_cmp user03-before fresh-after &&
	run=$(last_run "$ARCH/user03.tar.gz") &&
	id=$(tar -xzOif "$ARCH/user03.tar.gz" "runs/$run" | awk -F "\t" "\$4 == \"user.user03\" { print \$1 }" |
		sed "s/^folder //") &&
	test -n "$id" &&
	test "$($IMAPQ mailboxid "$IMAP2" user03 INBOX)" = "$id"
'

expect_success 'into the fresh Cyrus, user01 --at 1: the folder as the first run holds it' '
	chj restore "$ARCH/user01.tar.gz" --at 1 --to-server "127.0.0.1:$SYNC2" >out 2>err &&
	$IMAPQ ustate "$IMAP2" user01 "$FOLDER" >at1 &&
	test_cmp before at1 &&
	bash "$CYRUS_LAB" stop "$TRASH/lab2" >/dev/null
'

expect_success 'bad input: a bad server, an unreachable one, --to with --to-server' '
	must_fail chj restore "$ARCH/user02.tar.gz" --to-server "127.0.0.1:x" >out 2>err &&
	grep -q "bad server" err &&
	must_fail chj restore "$ARCH/user02.tar.gz" --to-server "127.0.0.1:1" >out 2>err &&
	test "$(wc -l <err)" = 1 && grep -q "cannot connect" err &&
	must_fail chj restore "$ARCH/user02.tar.gz" --to-server "$SERVER" --to "$TRASH/r" >out 2>err
'

expect_success 'restore --to-origin: a run pulled by backup --from goes back to the host it came from' '
	cat >"$TRASH/as-sshd" <<-EOF &&
	#!/bin/sh
	# ssh to any host, as sshd runs the forced command of a backup key (the
	# command asked for is not run): this machine'"'"'s serve
	exec "$CHJOURNAL" -c "$CONF" serve --consumer origin -C "$LAB/imapd.conf"
	EOF
	chmod +x "$TRASH/as-sshd" &&
	env -u CHJOURNAL_CONF "$CHJOURNAL" backup --from localhost --ssh "$TRASH/as-sshd" \
		--consumer origin --to "$TRASH/pull" >out 2>err &&
	run=$(last_run "$TRASH/pull/localhost/user01.tar.gz") &&
	tar -xzOf "$TRASH/pull/localhost/user01.tar.gz" "runs/$run" | grep -qx "host localhost" &&
	chj restore "$TRASH/pull/localhost/user01.tar.gz" --to-origin --sync-port "$SYNC_PORT" \
		--folder "$INTERNAL" --beside -origin >out 2>err &&
	cat out &&
	grep -q "into localhost:$SYNC_PORT as" out &&
	grep -qF "created folder '"'"'$INTERNAL-origin'"'"'" out &&
	$IMAPQ ustate "$IMAP_PORT" user01 "$FOLDER-origin" >origin &&
	$IMAPQ ustate "$IMAP_PORT" user01 "$FOLDER" >now &&
	test_cmp now origin
'

expect_success 'restore --to-origin of a run backed up on this machine: refused in one line' '
	must_fail chj restore "$ARCH/user01.tar.gz" --to-origin --folder "$INTERNAL" >out 2>err &&
	test "$(wc -l <err)" = 1 &&
	grep -q "was backed up on this machine, not pulled from a host: name the server with --to-server" err &&
	must_fail chj restore "$ARCH/user01.tar.gz" --to-origin --to "$TRASH/r" >out 2>err &&
	grep -q "do not go together" err &&
	must_fail chj restore "$ARCH/user01.tar.gz" --sync-port 2005 --to-server "$SERVER" >out 2>err &&
	grep -q "goes with --to-origin" err &&
	must_fail chj restore "$ARCH/user01.tar.gz" --authname admin --to "$TRASH/r" >out 2>err &&
	grep -q "goes with --to-server or --to-origin" err
'

expect_success 'the lab stops' '
	stop_daemon && bash "$CYRUS_LAB" stop "$LAB" >/dev/null
'

test_done
