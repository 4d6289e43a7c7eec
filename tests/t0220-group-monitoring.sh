#!/bin/bash
# t0220-group-monitoring: the key `group`: the journal, its -wal and -shm,
# the status file, the lock files and the cursors are readable by that group
# (files 0640, directories 0750), so that `chjournal status` (text, --json,
# --prometheus) and `query` work for a member with no write access, with the
# daemon running or stopped, and write nothing; others are refused; the key
# removed, the state is private again.
. "$(dirname "$0")/test-lib.sh"

require_root
command -v setpriv >/dev/null 2>&1 || skip_all "needs setpriv (util-linux)"
getent group nogroup >/dev/null || skip_all "needs the group nogroup"
getent passwd nobody >/dev/null || skip_all "needs the user nobody"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$CHJOURNAL" --version >/dev/null 2>&1 ||
	skip_all "nobody cannot run $CHJOURNAL"

# nobody must reach the configuration and the state (mktemp made TRASH 0700)
chmod 0755 "$TRASH"
mkdir -p "$SPOOL/u"
echo 1 >"$SPOOL/u/1."
write_config "group = nogroup"

# as_member CMD...: CMD as nobody in the group; as_other: in another group
as_member() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}
as_other() {
	setpriv --reuid=nobody --regid=users --clear-groups "$@"
}

# modes: "MODE GROUP NAME" of the state's files and directories
modes() {
	for f in "$STATE" "$STATE/journal.db" "$STATE/journal.db-wal" "$STATE/journal.db-shm" \
	    "$STATE/journal.db.status" "$STATE/journal.db.lock" "$STATE/consumers" \
	    "$STATE/consumers/.lock" "$STATE/consumers/c1"; do
		stat -c "%a %G ${f#$STATE}" "$f"
	done
}

# state_sum: the contents and times of every file of the state
state_sum() {
	find "$STATE" -type f -printf "%p %s %T@\n" | sort
	find "$STATE" -type f -exec md5sum {} + | sort
}

expect_success 'the daemon and a committed run, with group = nogroup' '
	start_daemon &&
	backup c1 &&
	echo 2 >"$SPOOL/u/2." &&
	chj sync &&
	grep "readable by group .nogroup." "$DAEMON_LOG"
'

expect_success 'state files are 0640 and directories 0750, group nogroup' '
	modes >modes.out &&
	cat >expect <<-\EOF &&
	750 nogroup 
	640 nogroup /journal.db
	640 nogroup /journal.db-wal
	640 nogroup /journal.db-shm
	640 nogroup /journal.db.status
	640 nogroup /journal.db.lock
	750 nogroup /consumers
	640 nogroup /consumers/.lock
	640 nogroup /consumers/c1
	EOF
	test_cmp expect modes.out
'

expect_success 'a member runs status (text, --json, --prometheus) and query, writing nothing' '
	# the daemon held still meanwhile: only what the member writes can differ
	kill -STOP "$DAEMON_PID" &&
	state_sum >before &&
	as_member "$CHJOURNAL" -c "$CONF" status >st.out 2>st.err &&
	test_cmp /dev/null st.err &&
	grep "^daemon: *running (pid $DAEMON_PID," st.out &&
	grep "^consumer c1: committed at .*, 1 rows behind" st.out &&
	as_member "$CHJOURNAL" -c "$CONF" status --json >st.json &&
	python3 -c "import json,sys; d=json.load(open(\"st.json\")); assert d[\"daemon\"][\"running\"] and d[\"daemon\"][\"live\"], d; assert d[\"consumers\"][0][\"name\"] == \"c1\"" &&
	as_member "$CHJOURNAL" -c "$CONF" status --prometheus >st.prom &&
	grep "^chjournal_daemon_up 1\$" st.prom &&
	grep "^chjournal_consumer_rows_behind{consumer=\"c1\"} 1\$" st.prom &&
	as_member "$CHJOURNAL" -c "$CONF" query >q.out &&
	grep -F "$SPOOL/u/2." q.out &&
	as_member "$CHJOURNAL" -c "$CONF" consumers | grep "^c1	committed_begin=" &&
	state_sum >after &&
	kill -CONT "$DAEMON_PID" &&
	test_cmp before after
'

expect_success 'the member may not change anything' '
	kill -CONT "$DAEMON_PID" &&
	must_fail as_member "$CHJOURNAL" -c "$CONF" begin c2 2>err.out &&
	must_fail as_member "$CHJOURNAL" -c "$CONF" forget c1 2>err.out &&
	test -f "$STATE/consumers/c1" &&
	! test -e "$STATE/consumers/c2"
'

expect_success 'someone outside the group is refused' '
	must_fail as_other "$CHJOURNAL" -c "$CONF" status >out 2>err.out &&
	grep "Permission denied" err.out
'

expect_success 'with the daemon stopped, a member still reads status' '
	stop_daemon &&
	state_sum >before &&
	as_member "$CHJOURNAL" -c "$CONF" status >st.out 2>st.err &&
	test_cmp /dev/null st.err &&
	grep "^daemon: *not running" st.out &&
	grep "^consumer c1: committed at " st.out &&
	as_member "$CHJOURNAL" -c "$CONF" status --prometheus | grep "^chjournal_daemon_up 0\$" &&
	state_sum >after &&
	test_cmp before after
'

expect_success 'the agent as root writes new cursors readable by the group' '
	backup c3 &&
	test "$(stat -c "%a %G" "$STATE/consumers/c3")" = "640 nogroup" &&
	as_member "$CHJOURNAL" -c "$CONF" status | grep "^consumer c3: committed at "
'

expect_success 'the key removed: the daemon makes the state private again' '
	write_config &&
	start_daemon &&
	stop_daemon &&
	stat -c "%a" "$STATE/journal.db" "$STATE/journal.db.lock" "$STATE/consumers" \
	    "$STATE/consumers/c1" "$STATE/journal.db-wal" >modes.out &&
	printf "%s\n" 600 600 700 600 600 >expect &&
	test_cmp expect modes.out &&
	test "$(stat -c %a "$STATE")" = 700 &&
	must_fail as_member "$CHJOURNAL" -c "$CONF" status >out 2>err.out
'

expect_success 'an unknown group is a configuration error naming the line' '
	write_config "group = no-such-group-chj" &&
	must_fail chj status 2>err.out &&
	grep "$CONF:[0-9]*: key .group.: no group named .no-such-group-chj." err.out
'

test_done
