#!/bin/bash
# t0219-live-status: `chjournal status` shows the running daemon's figures as
# they are now (its live status file, livestatus.h), not as of its last
# flush: the crawl in progress and its watches, the changes held in memory
# before any flush, and a clean stop.
. "$(dirname "$0")/test-lib.sh"

for i in $(seq 1 40); do mkdir -p "$SPOOL/d$i/sub"; done
# one flush a minute: what status shows of the changes is the live count
write_config "flush_interval_ms = 60000" "flush_idle_ms = 0" "batch_size = 1000000"

status_field() {
	chj status --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
print(d[\"daemon\"][sys.argv[1]] if sys.argv[1] in d[\"daemon\"] else d[sys.argv[1]])" "$1"
}

# field_is NAME VALUE / field_over NAME N: a figure of status --json
field_is() {
	[ "$(status_field "$1")" = "$2" ]
}
field_over() {
	[ "$(status_field "$1")" -gt "$2" ]
}

expect_success_inotify 'during the crawl: state crawling, watches growing' '
	: >"$DAEMON_LOG" &&
	{ CHJ_TEST_CRAWL_DELAY_MS=40 "$CHJOURNALD" -c "$CONF" -v 2>>"$DAEMON_LOG" & } &&
	DAEMON_PID=$! &&
	wait_for 10 field_is state crawling &&
	w1=$(status_field watches) &&
	wait_for 30 field_over watches "$w1" &&
	wait_for 60 daemon_ready &&
	field_is state ready &&
	field_is watches 81
'

expect_success 'changes held in memory are counted before any flush' '
	{ [ -n "$DAEMON_PID" ] || start_daemon; } &&
	wait_for 30 field_is state ready &&
	for i in 1 2 3 4 5; do echo "$i" >"$SPOOL/d$i/f" || return 1; done &&
	wait_for 10 field_over pending 4 &&
	chj status | grep -q "^pending:     [5-9][0-9]* changes in memory" &&
	chj status | grep -q "^rows:        0 changed paths" &&
	chj status --prometheus | grep -q "^chjournal_pending_changes [5-9][0-9]*$"
'

expect_success 'a stopped daemon: not running, no live figures' '
	stop_daemon &&
	chj status >status.out &&
	grep -q "^daemon:      not running" status.out &&
	! grep -q "^pending:" status.out &&
	field_is live False
'

test_done
