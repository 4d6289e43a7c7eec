#!/bin/bash
# t0108-stale-create: the daemon reads a directory's CREATE only after its
# parent was renamed (it lags behind the file system): the new directory must
# still get its watch, under its real path, and a directory that took the old
# name must not be confused with it.
. "$(dirname "$0")/test-lib.sh"

mkdir -p "$SPOOL/a"

expect_success 'a new directory whose parent was renamed before the daemon saw it is watched' '
	start_daemon &&
	backup c1 &&
	kill -STOP "$DAEMON_PID" &&
	mkdir "$SPOOL/a/d" && mv "$SPOOL/a" "$SPOOL/b" &&
	kill -CONT "$DAEMON_PID" &&
	backup c1 &&
	echo hello >"$SPOOL/b/d/new-file" &&
	backup c1 &&
	echo "$SPOOL/b/d/new-file" >expect &&
	test_cmp expect list.out
'

expect_success 'the old name reused at once by another directory: both watched, right paths' '
	kill -STOP "$DAEMON_PID" &&
	mkdir "$SPOOL/b/e" && mv "$SPOOL/b" "$SPOOL/c" && mkdir -p "$SPOOL/b/e" &&
	kill -CONT "$DAEMON_PID" &&
	backup c1 &&
	echo one >"$SPOOL/c/e/f1" && echo two >"$SPOOL/b/e/f2" &&
	backup c1 &&
	printf "%s\n" "$SPOOL/b/e/f2" "$SPOOL/c/e/f1" >expect &&
	test_cmp expect list.out &&
	stop_daemon
'

test_done
