#!/bin/bash
# t0303-progress: long operations (the daemon's initial crawl, a full list)
# draw a progress line on stderr when it is a terminal, and print nothing
# extra when it is not.
. "$(dirname "$0")/test-lib.sh"

command -v script >/dev/null || skip_all "script(1) from bsdutils is needed for a pseudo-terminal"
for i in $(seq 1 50); do mkdir -p "$SPOOL/u$i/INBOX"; echo m >"$SPOOL/u$i/INBOX/1."; done

expect_success 'the daemon draws crawl progress on a terminal' '
	script -qec "timeout -s TERM 2 $CHJOURNALD -c $CONF" tty.log >/dev/null 2>&1 </dev/null;
	tr "\r" "\n" <tty.log >tty.txt &&
	grep -E "^$SPOOL: 101 directories watched, [0-9]+/s" tty.txt
'

expect_success 'a full list draws progress on a terminal, and only there' '
	start_daemon &&
	chj begin c1 &&
	script -qec "$CHJOURNAL -c $CONF list c1 >list.txt" tty2.log >/dev/null 2>&1 </dev/null &&
	tr "\r" "\n" <tty2.log >tty2.txt &&
	grep -E "^listing: 101 directories, .*50 files" tty2.txt &&
	test "$(wc -l <list.txt)" = 50 &&
	chj list c1 >list2.txt 2>err.txt &&
	test_cmp list.txt list2.txt &&
	test_cmp /dev/null err.txt &&
	grep -c "watched" "$DAEMON_LOG" >/dev/null &&
	! grep -q "directories watched, [0-9]*/s" "$DAEMON_LOG"
'

test_done
