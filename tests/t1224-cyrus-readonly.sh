#!/bin/bash
# t1224-cyrus-readonly: each backup run carries a real change, against a
# real Cyrus IMAP 3.6. Read-only IMAP sessions (LIST, LSUB, STATUS, EXAMINE
# and SELECT with FETCH of flags, envelopes and bodies by BODY.PEEK, SEARCH,
# NOOP, CHECK) rewrite cyrus.index's recentuid, recenttime and header CRC
# on the owner's SELECT: the users are in the journal's window, yet the next
# backup writes no run for them and says so; the archive still restores to
# the state before the sessions. A file only touched (a new mtime) writes
# none either. A FETCH BODY[] that sets \Seen, a \Flagged, an EXPUNGE each
# write a run for exactly their user, which restores to the new state.
. "$(dirname "$0")/test-lib.sh"
. "$CHJ_SRCDIR/tests/cyrus-lib.sh"

cyrus_require
tar --version 2>/dev/null | grep -q 'GNU tar' || skip_all "GNU tar not found"

IMAPQ="python3 $CHJ_SRCDIR/tests/cyrus-imap.py"
USERS="user01 user02 user03 user04"
LAB="$TRASH/lab"
ARCH="$TRASH/archives"

# runs_of USER: how many runs USER's archive holds
runs_of() {
	tar -tzif "$ARCH/$1.tar.gz" | grep -c "^runs/"
}

# count_runs: every user's run count into runs-USER
count_runs() {
	for u in $USERS; do
		runs_of "$u" >"runs-$u" || return 1
	done
}

# only_run_for USER: USER's archive has one run more than counted, the
# others as many
only_run_for() {
	for u in $USERS; do
		n=$(runs_of "$u")
		if [ "$u" = "$1" ]; then
			test "$n" = $(( $(cat "runs-$u") + 1 )) || { echo "$u: $n runs" >&2; return 1; }
		else
			test "$n" = "$(cat "runs-$u")" || { echo "$u: $n runs" >&2; return 1; }
		fi
	done
}

# restores_to USER SNAP [--recent]: USER's last run restores to snapshot
# SNAP byte for byte; with --recent, its cyrus.index files may differ in
# recentuid, recenttime and the header CRC (a read-only session's SELECT
# rewrote them, and the archive kept the copy before), nothing else
restores_to() {
	rm -rf "$TRASH/restore-$1"
	chj restore "$ARCH/$1.tar.gz" --to "$TRASH/restore-$1" >/dev/null &&
	python3 "$CYRUS_STATE" compare ${3:-} "$2" "$TRASH/restore-$1"
}

# backup_says USERS RUNS: a backup that checked USERS users and wrote RUNS runs
backup_says() {
	chj sync >/dev/null &&
	chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
	grep -q "^backup: $1 users checked, $2 runs written, .* 0 users failed" out || {
		cat out err >&2
		return 1
	}
}

expect_success 'a Cyrus lab with 4 users, a chjournald on it, a first backup' '
	cyrus_start "$LAB" &&
	bash "$CYRUS_LAB" populate "$LAB" 4 12 >"$TRASH/populate.log" 2>&1 &&
	IMAP_PORT=$(sed -n "s/^IMAP_PORT=//p" "$LAB/lab.env") &&
	test -n "$IMAP_PORT" &&
	cyrus_config "$LAB" &&
	start_daemon &&
	chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
	grep -q "4 users checked, 4 runs written" out &&
	backup_says 0 0
'
IMAP_PORT=$(sed -n "s/^IMAP_PORT=//p" "$LAB/lab.env" 2>/dev/null)

expect_success 'read-only sessions of three users: no run, and the backup says 0 runs' '
	count_runs &&
	for u in user01 user02 user03; do
		cyrus_snapshot "$LAB" "$u" "$TRASH/before-$u" || return 1
	done &&
	for u in user01 user02 user03; do
		$IMAPQ readonly "$IMAP_PORT" "$u" - || return 1
	done &&
	backup_says 3 0 &&
	grep -q "0 folders changed, 0 messages (0 bytes) added, [1-9][0-9]* folders touched but unchanged" out &&
	only_run_for none
'

expect_success 'the sessions did rewrite cyrus.index, and the archive restores the state before them' '
	cyrus_snapshot "$LAB" user01 "$TRASH/after-user01" &&
	! cyrus_compare "$TRASH/before-user01" "$TRASH/after-user01" >cmp.out 2>&1 &&
	grep -q "cyrus.index: content differs" cmp.out &&
	! grep -v "cyrus.index: content differs" cmp.out &&
	python3 "$CYRUS_STATE" compare --recent "$TRASH/before-user01" "$TRASH/after-user01" &&
	for u in user01 user02 user03; do
		restores_to "$u" "$TRASH/before-$u" || return 1
	done
'

expect_success 'a second read-only session (recentuid already set): no run either' '
	$IMAPQ readonly "$IMAP_PORT" user01 - &&
	backup_says "[01]" 0 &&
	only_run_for none
'

expect_success 'files only touched (a new mtime, the same bytes): no run' '
	inbox=$(runuser -u cyrus -- /usr/lib/cyrus/bin/mbpath -C "$LAB/imapd.conf" user/user02) &&
	test -f "$inbox/cyrus.index" &&
	touch "$inbox/cyrus.index" "$inbox/cyrus.header" &&
	sub=$(find "$LAB/conf/user" -name sub.db | head -n 1) &&
	test -n "$sub" && touch "$sub" &&
	backup_says "[12]" 0 &&
	only_run_for none
'

expect_success 'a FETCH BODY[] that sets \Seen: a run for that user only' '
	count_runs &&
	uid=$($IMAPQ seen "$IMAP_PORT" user01 INBOX) &&
	test -n "$uid" &&
	backup_says 1 1 &&
	grep -q "1 folders changed" out &&
	only_run_for user01 &&
	cyrus_snapshot "$LAB" user01 "$TRASH/seen-user01" &&
	restores_to user01 "$TRASH/seen-user01" --recent
'

expect_success 'a read-only session beside the \Seen: only the \Seen user gets a run' '
	count_runs &&
	$IMAPQ readonly "$IMAP_PORT" user04 - &&
	$IMAPQ seen "$IMAP_PORT" user03 INBOX >/dev/null &&
	backup_says 2 1 &&
	only_run_for user03
'

expect_success 'a flag change: a run for that user only' '
	count_runs &&
	$IMAPQ flag "$IMAP_PORT" user02 INBOX &&
	backup_says 1 1 &&
	only_run_for user02 &&
	cyrus_snapshot "$LAB" user02 "$TRASH/flag-user02" &&
	restores_to user02 "$TRASH/flag-user02" --recent
'

expect_success 'an EXPUNGE: a run for that user only' '
	count_runs &&
	$IMAPQ expunge "$IMAP_PORT" user04 INBOX &&
	backup_says 1 1 &&
	only_run_for user04 &&
	cyrus_snapshot "$LAB" user04 "$TRASH/expunge-user04" &&
	restores_to user04 "$TRASH/expunge-user04" --recent
'

expect_success 'verify passes; the lab stops' '
	chj verify "$ARCH"/user0*.tar.gz >/dev/null &&
	stop_daemon && bash "$CYRUS_LAB" stop "$LAB" >/dev/null
'

test_done
