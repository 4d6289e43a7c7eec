#!/bin/bash
# t0212-begin-timeout: begin --timeout bounds the wait for a daemon that does
# not answer (a hook with its own deadline needs that), and is validated.
. "$(dirname "$0")/test-lib.sh"

expect_success 'begin --timeout against a stopped daemon fails in time, the run stays closed' '
	start_daemon &&
	backup c1 &&
	kill -STOP "$DAEMON_PID" &&
	start=$(date +%s) &&
	must_fail chj begin c1 --timeout 2 2>err &&
	end=$(date +%s) &&
	kill -CONT "$DAEMON_PID" &&
	test $((end - start)) -le 6 &&
	grep "sync timed out after 2 s" err &&
	must_fail chj list c1
'

expect_success 'bad --timeout values are usage errors' '
	for v in 0 abc -1 86401 ""; do
		chj begin c1 --timeout "$v" 2>/dev/null; test $? = 2 || return 1
	done &&
	chj begin --timeout 5 c1 >mode &&
	grep -x incremental mode
'

test_done
