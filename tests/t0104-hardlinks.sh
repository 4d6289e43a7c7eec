#!/bin/bash
# t0104-hardlinks: Cyrus delivers one message to several folders by hard
# link: each new link is a new name and must be listed. The kernel reports a
# change through one name under that name only: a write through any name
# must list every name the file has under the roots, whether the journal
# learnt it from a full run, a link, a rename or a rescan; names gone are
# forgotten; nothing outside the roots is listed.
. "$(dirname "$0")/test-lib.sh"

U="$SPOOL/user/alice"
OUT="$TRASH/outside"

# run CONSUMER: begin; list -0 into list.out, list --deleted -0 into
# deleted.out (one path per line); commit.
run() {
	chj begin "$1" >mode.out &&
	chj list "$1" -0 >list.raw &&
	chj list "$1" --deleted -0 >deleted.raw &&
	tr '\0' '\n' <list.raw >list.out &&
	tr '\0' '\n' <deleted.raw >deleted.out &&
	chj commit "$1"
}

# must_list PATH...: each PATH in list.out.
must_list() {
	for _p in "$@"; do
		grep -qxF -- "$_p" list.out || { echo "not listed: $_p" >&2; return 1; }
	done
}

# only_from PATH...: list.out holds nothing but some of these paths.
only_from() {
	printf '%s\n' "$@" >allowed &&
	if grep -vxF -f allowed list.out >extra; then
		echo "listed but not expected:" >&2
		cat extra >&2
		return 1
	fi
	return 0
}

mkdir -p "$U/INBOX" "$U/Archive" "$U/Sent" "$OUT"
echo message >"$U/INBOX/1."
# two names made before the daemon and the first run: learnt by the full run
echo early >"$U/Sent/pre."
ln "$U/Sent/pre." "$U/Archive/pre."
for i in $(seq 1 10); do mkdir -p "$SPOOL/user/u$i/INBOX"; done

expect_success 'start; first full run' '
	start_daemon &&
	run c1 &&
	grep "^full: " mode.out &&
	must_list "$U/INBOX/1."
'

expect_success 'a hard link in another folder is listed' '
	ln "$U/INBOX/1." "$U/Archive/1." &&
	run c1 &&
	must_list "$U/Archive/1." &&
	only_from "$U/Archive/1." "$U/INBOX/1." &&
	test_cmp /dev/null deleted.out
'

expect_success 'a hard link in the same folder is listed' '
	ln "$U/INBOX/1." "$U/INBOX/2." &&
	run c1 &&
	must_list "$U/INBOX/2." &&
	only_from "$U/INBOX/2." "$U/INBOX/1." "$U/Archive/1."
'

expect_success 'one message linked into ten mailboxes: every link listed' '
	echo delivery >"$OUT/staged" &&
	seq 1 10 | while read -r i; do
		ln "$OUT/staged" "$SPOOL/user/u$i/INBOX/7." || exit 1
	done &&
	run c1 &&
	for i in $(seq 1 10); do echo "$SPOOL/user/u$i/INBOX/7."; done | LC_ALL=C sort >expect &&
	test_cmp expect list.out
'

# (fanotify may list the ten names of the message above once more: the
# write of the staged file came just before its links, and the daemon
# journals the names of a file written outside the roots up to two
# heartbeats before they became known; listed twice, never missed)
expect_success 'a hard link from outside the root is listed' '
	echo outside >"$OUT/o" &&
	ln "$OUT/o" "$U/Sent/1." &&
	run c1 &&
	must_list "$U/Sent/1." &&
	only_from "$U/Sent/1." $(for i in $(seq 1 10); do echo "$SPOOL/user/u$i/INBOX/7."; done)
'

expect_success 'a hard link to outside the root lists nothing outside' '
	ln "$U/Sent/1." "$OUT/o2" &&
	run c1 &&
	only_from "$U/Sent/1." &&
	! grep -F "$OUT" list.out
'

expect_success 'a hard link in a brand new folder is listed' '
	mkdir -p "$U/New/Sub" &&
	ln "$U/INBOX/1." "$U/New/Sub/1." &&
	run c1 &&
	must_list "$U/New/Sub/1." &&
	only_from "$U/New/Sub/1." "$U/INBOX/1." "$U/INBOX/2." "$U/Archive/1."
'

expect_success 'removing one name: it is in --deleted, the other names are not' '
	rm "$U/INBOX/2." &&
	run c1 &&
	grep -qxF "$U/INBOX/2." deleted.out &&
	! grep -qxF "$U/INBOX/1." deleted.out &&
	! grep -qxF "$U/Archive/1." deleted.out &&
	! grep -qxF "$U/INBOX/2." list.out
'

expect_success 'a hard link made by rename over an existing name is listed' '
	echo other >"$U/INBOX/3." &&
	run c1 &&
	ln "$U/INBOX/1." "$U/INBOX/tmp" &&
	mv -f "$U/INBOX/tmp" "$U/INBOX/3." &&
	run c1 &&
	must_list "$U/INBOX/3." &&
	! grep -qxF "$U/INBOX/tmp" list.out &&
	test "$(cat "$U/INBOX/3.")" = message
'

expect_success 'writing through a name lists that name' '
	echo appended >>"$U/Archive/1." &&
	run c1 &&
	must_list "$U/Archive/1."
'

expect_success 'writing through one name lists every name under the roots, none outside' '
	echo more >>"$U/Archive/1." &&
	run c1 &&
	printf "%s\n" "$U/Archive/1." "$U/INBOX/1." "$U/INBOX/3." "$U/New/Sub/1." |
		LC_ALL=C sort >expect &&
	test_cmp expect list.out
'

expect_success 'names made before the first (full) run are known: a write lists both' '
	echo more >>"$U/Sent/pre." &&
	run c1 &&
	printf "%s\n" "$U/Archive/pre." "$U/Sent/pre." >expect &&
	test_cmp expect list.out
'

expect_success 'a renamed name is followed, a removed one forgotten' '
	mv "$U/Archive/1." "$U/Archive/1.moved" &&
	rm "$U/New/Sub/1." &&
	run c1 &&
	echo again >>"$U/INBOX/3." &&
	run c1 &&
	printf "%s\n" "$U/Archive/1.moved" "$U/INBOX/1." "$U/INBOX/3." | LC_ALL=C sort >expect &&
	test_cmp expect list.out
'

expect_success 'a write through a name outside the roots: the names inside are listed on fanotify' '
	echo outside-write >>"$OUT/o2" &&
	run c1 &&
	if [ "$CHJ_BACKEND" = fanotify ]; then
		echo "$U/Sent/1." >expect && test_cmp expect list.out
	else
		test_cmp /dev/null list.out
	fi
'

expect_success 'a write through one name while the daemon is down lists every name' '
	stop_daemon &&
	echo down >>"$U/INBOX/1." &&
	start_daemon &&
	run c1 &&
	must_list "$U/Archive/1.moved" "$U/INBOX/1." "$U/INBOX/3."
'

# (inotify: the write before the linkat is heard as "#INODE" with no such
# name yet: the root is rescanned, so more is listed than the one file)
expect_success 'an O_TMPFILE file linked into a folder (linkat) is listed' '
	python3 -c "
import ctypes, os, sys
d, name = sys.argv[1], sys.argv[2]
try:
    fd = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o600)
except OSError as e:
    print(\"O_TMPFILE not supported here: %s\" % e)
    sys.exit(3)
os.write(fd, b\"tmpfile message\\n\")
libc = ctypes.CDLL(None, use_errno=True)
# linkat(fd, \"\", AT_FDCWD, path, AT_EMPTY_PATH)
if libc.linkat(fd, b\"\", -100, os.fsencode(os.path.join(d, name)), 0x1000) != 0:
    sys.exit(\"linkat: \" + os.strerror(ctypes.get_errno()))
os.write(fd, b\"written after the link\\n\")
os.close(fd)
" "$U/INBOX" 9.
	rc=$?
	test "$rc" -eq 3 || {
		test "$rc" -eq 0 &&
		run c1 &&
		test "$(wc -l <"$U/INBOX/9.")" -eq 2 &&
		must_list "$U/INBOX/9." &&
		! grep -F "$OUT" list.out
	}
'

expect_success 'daemon stops cleanly' '
	stop_daemon
'

test_done
