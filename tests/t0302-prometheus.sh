#!/bin/bash
# t0302-prometheus: `chjournal status --prometheus` prints the daemon's and the
# consumers' figures in the node_exporter text format, with real values.
. "$(dirname "$0")/test-lib.sh"

mkdir -p "$SPOOL/u"
echo a >"$SPOOL/u/a"

# check_format FILE: every sample belongs to a family announced by HELP and
# TYPE, names and labels are well formed, values are integers.
check_format() {
	python3 - "$1" <<'PY'
import re, sys
seen_type = {}
sample = re.compile(r'^([a-z_][a-z0-9_]*)(\{[a-z_]+="(?:[^"\\]|\\.)*"\})? (-?[0-9]+)$')
for n, line in enumerate(open(sys.argv[1]), 1):
    line = line.rstrip("\n")
    if line.startswith("# HELP "):
        continue
    m = re.match(r"^# TYPE ([a-z_][a-z0-9_]*) (gauge|counter)$", line)
    if m:
        seen_type[m.group(1)] = m.group(2)
        continue
    m = sample.match(line)
    if not m:
        sys.exit("line %d malformed: %r" % (n, line))
    if m.group(1) not in seen_type:
        sys.exit("line %d: %s has no TYPE before it" % (n, m.group(1)))
    if seen_type[m.group(1)] == "counter" and not (m.group(1).endswith("_total") or m.group(1) == "chjournal_last_seq"):
        sys.exit("line %d: counter %s" % (n, m.group(1)))
PY
}

value() {
	sed -n "s/^$1 //p" prom.out
}

expect_success 'metrics of a running daemon with two consumers' '
	start_daemon &&
	backup c1 && backup c1 &&
	chj begin c2 >/dev/null &&
	echo b >"$SPOOL/u/b" && echo c >"$SPOOL/u/c" &&
	chj sync &&
	chj status --prometheus >prom.out &&
	check_format prom.out &&
	test "$(value chjournal_daemon_up)" = 1 &&
	test "$(value chjournal_watches)" = 2 &&
	test "$(value chjournal_overflows_total)" = 0 &&
	test "$(value "chjournal_consumer_rows_behind{consumer=\"c1\"}")" = 2 &&
	test "$(value "chjournal_consumer_next_run_full{consumer=\"c1\"}")" = 0 &&
	test "$(value "chjournal_consumer_next_run_full{consumer=\"c2\"}")" = 1 &&
	test "$(value "chjournal_consumer_run_open{consumer=\"c2\"}")" = 1 &&
	test "$(value "chjournal_consumer_run_open{consumer=\"c1\"}")" = 0 &&
	test "$(value "chjournal_consumer_last_commit_time_seconds{consumer=\"c1\"}")" -gt 1000000000 &&
	grep -F "chjournal_root_info{root=\"$SPOOL\"} 1" prom.out
'

expect_success 'a stopped daemon shows up as down; --json with --prometheus is a usage error' '
	stop_daemon &&
	chj status --prometheus >prom.out &&
	check_format prom.out &&
	test "$(value chjournal_daemon_up)" = 0 &&
	chj status --json --prometheus 2>err; test $? = 2
'

test_done
