#!/bin/bash
# t1231-cyrus-restore-folder: a folder a user deleted comes back into the
# running Cyrus 3.6 server: `chjournal backup`, IMAP DELETE, `chjournal
# restore --folder`, contrib/cyrus/chjournal-cyrus-restore-folder; the owner
# then FETCHes the same messages (bytes), flags, keywords and internal dates
# as before. A second restore goes to NAME-restored, a third is refused; bad
# folder directories give one-line errors and exit 1 before any connection.
. "$(dirname "$0")/test-lib.sh"
. "$CHJ_SRCDIR/tests/cyrus-lib.sh"

cyrus_require

IMAPQ="python3 $CHJ_SRCDIR/tests/cyrus-imap.py"
RESTORE_FOLDER="$CHJ_SRCDIR/contrib/cyrus/chjournal-cyrus-restore-folder"
ARCH="$TRASH/archives"
LAB="$TRASH/lab"
FOLDER="INBOX/Archive/Trips.2024"
INTERNAL="user.user01.Archive.Trips^2024"
export CHJ_IMAP_PASSWORD=secret

# restore_folder ARGS: the script against the lab, as the admin for the owner
restore_folder() {
	python3 "$RESTORE_FOLDER" --host 127.0.0.1 --port "$IMAP_PORT" "$@"
}

# one_line_error FILE: FILE holds exactly one line, from the script
one_line_error() {
	test "$(wc -l <"$1")" = 1 && grep -q "^chjournal-cyrus-restore-folder: " "$1"
}

expect_success 'a Cyrus lab starts, is populated, and the journal daemon runs' '
	cyrus_start "$LAB" &&
	bash "$CYRUS_LAB" populate "$LAB" 2 10 >populate.log 2>&1 &&
	. "$LAB/lab.env" &&
	cyrus_config "$LAB" &&
	start_daemon
'
. "$LAB/lab.env" 2>/dev/null

expect_success 'user01 fills a folder with flags, keywords and dates over IMAP' '
	$IMAPQ fill "$IMAP_PORT" user01 "$FOLDER" &&
	$IMAPQ state "$IMAP_PORT" user01 "$FOLDER" >before &&
	test "$(wc -l <before)" = 10 &&
	grep -q " \\\\Seen lab-kw1$" before &&
	grep -q "\\\\Deleted" before &&
	grep -q "\$Junk \\\\Flagged lab-kw1" before &&
	$IMAPQ state "$IMAP_PORT" user02 INBOX >user02-before
'

expect_success 'chjournal backup archives it; the user deletes the folder' '
	chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
	chj show "$ARCH/user01.tar.gz" --at "$(last_run "$ARCH/user01.tar.gz")" >show.out &&
	grep -qF "$INTERNAL" show.out &&
	$IMAPQ delete "$IMAP_PORT" user01 "$FOLDER" &&
	! $IMAPQ exists "$IMAP_PORT" user01 "$FOLDER"
'

expect_success 'chjournal restore --folder recreates the folder directory' '
	chj restore "$ARCH/user01.tar.gz" --to "$TRASH/r" --folder "$INTERNAL" >out &&
	find "$TRASH/r/spool" -name cyrus.index >idx &&
	test "$(wc -l <idx)" = 1 &&
	D=$(dirname "$(cat idx)") &&
	echo "$D" >folder-dir &&
	test -f "$D/cyrus.header" && ls "$D" | grep -q "^[0-9]*\\.$"
'
D=$(cat "$TRASH/folder-dir" 2>/dev/null)

expect_success '--dry-run names the folder and owner and skips the expunged record' '
	restore_folder --dry-run "$D" >dry &&
	grep -qF "$INTERNAL (cyrus.index v17), owner user01: 10 messages" dry &&
	grep -q "1 expunged records skipped" dry &&
	restore_folder --dry-run --include-expunged "$D" >dry2 &&
	grep -q "owner user01: 11 messages" dry2 &&
	! $IMAPQ exists "$IMAP_PORT" user01 "$FOLDER"
'

expect_success 'the script puts it back under its name; the owner sees the same messages, flags and dates' '
	restore_folder --admin admin "$D" >out 2>err &&
	grep -qF "restored 10 messages" out &&
	grep -qF "into '"'"'$FOLDER'"'"' for user01" out &&
	$IMAPQ state "$IMAP_PORT" user01 "$FOLDER" >after &&
	test_cmp before after &&
	$IMAPQ state "$IMAP_PORT" user02 INBOX >user02-after &&
	test_cmp user02-before user02-after
'

expect_success 'again, with the user'"'"'s own login, in batches of 3: into NAME-restored, the same state' '
	echo secret >pw &&
	restore_folder --password-file pw --batch 3 "$D" >out 2>err &&
	grep -qF "into '"'"'$FOLDER-restored'"'"'" out &&
	$IMAPQ state "$IMAP_PORT" user01 "$FOLDER-restored" >after2 &&
	test_cmp before after2 &&
	$IMAPQ state "$IMAP_PORT" user01 "$FOLDER" >after3 &&
	test_cmp before after3
'

expect_success 'a third time, both names exist: refused in one line, nothing added' '
	must_fail restore_folder --admin admin "$D" >out 2>err &&
	one_line_error err &&
	grep -q "both exist: choose a folder with --target" err &&
	must_fail restore_folder --admin admin --target "$FOLDER" "$D" >out 2>err &&
	one_line_error err &&
	grep -q "exists (add --into-existing" err &&
	$IMAPQ state "$IMAP_PORT" user01 "$FOLDER" >after4 &&
	test_cmp before after4
'

expect_success '--target NAME --into-existing adds to an existing folder (one APPEND each)' '
	restore_folder --admin admin --target INBOX/Sent --into-existing --batch 1 "$D" >out 2>err &&
	grep -q "restored 10 messages" out &&
	$IMAPQ state "$IMAP_PORT" user01 INBOX/Sent >sent &&
	test "$(grep -c "lab-kw2" sent)" = 1
'

# bad FOLDER_DIR copies: each fails before connecting, in one line
bad_case() {
	rm -rf bad && cp -a "$D" bad &&
	eval "$1" &&
	must_fail restore_folder --admin admin bad >out 2>err &&
	one_line_error err &&
	grep -q "$2" err || { cat err; return 1; }
}

expect_success 'bad input: one-line errors, exit status 1' '
	must_fail restore_folder "$TRASH/idx" >out 2>err && one_line_error err &&
	grep -q "idx: not a directory" err &&
	mkdir empty && must_fail restore_folder empty >out 2>err && one_line_error err &&
	grep -q "not a Cyrus folder directory" err &&
	restore_folder "$TRASH/nonexistent" >out 2>err; test $? = 1 && one_line_error err &&
	grep -q "nonexistent: no such directory" err &&
	bad_case "printf \"\\\\377\" | dd of=bad/cyrus.index bs=1 seek=200 conv=notrunc 2>/dev/null" \
		"cyrus.index: record 1: CRC mismatch" &&
	bad_case "printf \"\\\\000\\\\000\\\\000\\\\012\" | dd of=bad/cyrus.index bs=1 seek=8 conv=notrunc 2>/dev/null" \
		"minor version 10 is not supported" &&
	bad_case "truncate -s 300 bad/cyrus.index" "truncated: .* records announced" &&
	bad_case "truncate -s 100 bad/cyrus.index" "truncated header" &&
	bad_case "printf junk >bad/cyrus.header" "not a Cyrus mailbox header" &&
	bad_case "rm bad/1." "uid 1: .*No such file" &&
	bad_case "echo x >>bad/2." "uid 2: .*does not match the GUID" &&
	restore_folder --admin admin "$D" --port 1 >out 2>err; test $? = 1 &&
	one_line_error err && grep -q "cannot connect" err
'

expect_success 'name mapping: owners, domains, dots and modified UTF-7' '
	python3 - "$RESTORE_FOLDER" <<-EOF
	import importlib.machinery, sys
	m = importlib.machinery.SourceFileLoader("rf", sys.argv[1]).load_module()
	assert m.owner_of("user.jdoe") == ("jdoe", []), m.owner_of("user.jdoe")
	assert m.owner_of("user.j^doe.Sent.2024") == ("j.doe", ["Sent", "2024"])
	assert m.owner_of("example.com!user.jdoe.A^b") == ("jdoe@example.com", ["A^b"])
	assert m.owner_of("shared.folder") is None
	assert m.mutf7("Entw\u00fcrfe") == "Entw&APw-rfe", m.mutf7("Entw\u00fcrfe")
	assert m.mutf7("A&B") == "A&B"
	assert m.mutf7("\u65e5\u672c&") == "&ZeVnLA-&-", m.mutf7("\u65e5\u672c&")
	assert m.internaldate(0) == "\"01-Jan-1970 00:00:00 +0000\""
	EOF
'

expect_success 'the lab stops' '
	stop_daemon && bash "$CYRUS_LAB" stop "$LAB" >/dev/null
'

test_done
