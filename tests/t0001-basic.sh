#!/bin/bash
# t0001-basic: a first run is full; then each kind of change is listed.
. "$(dirname "$0")/test-lib.sh"

mkdir -p "$SPOOL/user/alice"
echo old >"$SPOOL/user/alice/1."

expect_success 'daemon starts and status shows it' '
	start_daemon &&
	chj status >status.out &&
	grep "^daemon: *running" status.out &&
	grep "^backend: *$CHJ_BACKEND\$" status.out
'

expect_success 'first begin is full and lists every file' '
	backup c1 &&
	grep "^full: no committed run yet" mode.out &&
	echo "$SPOOL/user/alice/1." >expect &&
	test_cmp expect list.out
'

expect_success 'second begin is incremental and lists nothing' '
	backup c1 &&
	grep -x incremental mode.out &&
	test_cmp /dev/null list.out
'

expect_success 'created, written, chmod-ed files are listed' '
	echo new >"$SPOOL/user/alice/2." &&
	echo more >>"$SPOOL/user/alice/1." &&
	backup c1 &&
	printf "%s\n" "$SPOOL/user/alice/1." "$SPOOL/user/alice/2." >expect &&
	test_cmp expect list.out &&
	chmod 600 "$SPOOL/user/alice/2." &&
	backup c1 &&
	echo "$SPOOL/user/alice/2." >expect &&
	test_cmp expect list.out
'

expect_success 'daemon stops cleanly on SIGTERM' '
	stop_daemon &&
	grep "stopped cleanly" "$DAEMON_LOG"
'

test_done
