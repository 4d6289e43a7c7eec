#!/bin/bash
# t0301-cli: chjournal's command line: help for every command, usage errors
# (exit 2), query filters and JSON, status --json, and the choice of the
# configuration file (-c over $CHJOURNAL_CONF).
. "$(dirname "$0")/test-lib.sh"

COMMANDS="begin list commit abort sync query status consumers forget help"

mkdir -p "$SPOOL/u" "$SPOOL/u2" "$SPOOL/u.x"
echo 1 >"$SPOOL/u/1."

# json_lines FILE: every line of FILE is a JSON object
json_lines() {
	python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    obj = json.loads(line)
    assert isinstance(obj, dict), line
    n += 1
assert n > 0, "no lines"
' "$1"
}

# paths_of: the path column of `chj query` output on stdin (changes only)
paths_of() {
	awk -F '\t' '$3 !~ /^rescan/ { print $4 }'
}

expect_success 'help lists every command, without a configuration' '
	"$CHJOURNAL" help >help.out &&
	for c in $COMMANDS; do
		grep "^  $c " help.out || { echo "help lacks $c"; return 1; }
	done &&
	grep "Exit status: 0 success, 1 error, 2 usage error" help.out
'

expect_success 'help CMD for every command exits 0 and shows its usage' '
	for c in $COMMANDS; do
		"$CHJOURNAL" help $c >help.out || { echo "help $c failed"; return 1; }
		grep "^usage: chjournal $c" help.out || { echo "help $c: no usage line"; return 1; }
	done
'

expect_success '--help and --version exit 0' '
	"$CHJOURNAL" --help >out && grep "^usage: chjournal" out &&
	"$CHJOURNAL" -h >out && grep "^usage: chjournal" out &&
	"$CHJOURNAL" --version >out && grep "^chjournal [0-9]" out
'

# libarchive (with libxml2, ICU, libstdc++) is loaded by the archive code when
# it needs it, not at every start: 2 ms of each begin/list/commit
expect_success 'a command that writes no archive does not load libarchive' '
	LD_DEBUG=files "$CHJOURNAL" --version 2>ld.out >/dev/null &&
	grep "file=libsqlite3" ld.out &&
	! grep "file=libarchive" ld.out
'

expect_success 'unknown command, unknown option, missing command: exit 2' '
	test_expect_code 2 chj frobnicate 2>err.out &&
	grep "unknown command .frobnicate." err.out &&
	grep "^usage: chjournal" err.out &&
	test_expect_code 2 "$CHJOURNAL" --bogus status 2>err.out &&
	grep "unknown option .--bogus." err.out &&
	test_expect_code 2 "$CHJOURNAL" 2>err.out &&
	grep "^usage: chjournal" err.out &&
	test_expect_code 2 "$CHJOURNAL" -c 2>err.out &&
	grep "option .-c. needs a file" err.out &&
	test_expect_code 2 "$CHJOURNAL" help frobnicate 2>err.out &&
	grep "unknown command .frobnicate." err.out
'

expect_success 'bad arguments to each command: exit 2 with its usage' '
	start_daemon &&
	test_expect_code 2 chj begin 2>err.out && grep "^usage: chjournal begin" err.out &&
	test_expect_code 2 chj begin a b 2>err.out && grep "^usage: chjournal begin" err.out &&
	test_expect_code 2 chj commit 2>err.out && grep "^usage: chjournal commit" err.out &&
	test_expect_code 2 chj abort 2>err.out && grep "^usage: chjournal abort" err.out &&
	test_expect_code 2 chj forget 2>err.out && grep "^usage: chjournal forget" err.out &&
	test_expect_code 2 chj list 2>err.out && grep "^usage: chjournal list" err.out &&
	test_expect_code 2 chj list c1 --bogus 2>err.out && grep "unknown option .--bogus." err.out &&
	test_expect_code 2 chj list c1 c2 2>err.out && grep "unexpected argument .c2." err.out &&
	test_expect_code 2 chj query --bogus 2>err.out && grep "^usage: chjournal query" err.out &&
	test_expect_code 2 chj query --since 2>err.out && grep "needs SEQ, TIME or @UNIXTIME" err.out &&
	test_expect_code 2 chj query --since x1 2>err.out && grep "bad --since .x1." err.out &&
	test_expect_code 2 chj query --since @ 2>err.out && grep "bad --since" err.out &&
	test_expect_code 2 chj query --since @12x 2>err.out && grep "bad --since" err.out &&
	test_expect_code 2 chj query --since -3 2>err.out && grep "bad --since" err.out &&
	test_expect_code 2 chj query --under relative/path 2>err.out && grep "needs an absolute path" err.out &&
	test_expect_code 2 chj query --json -0 2>err.out && grep "do not go together" err.out &&
	test_expect_code 2 chj status --bogus 2>err.out && grep "^usage: chjournal status" err.out &&
	test_expect_code 2 chj consumers extra 2>err.out && grep "^usage: chjournal consumers" err.out &&
	test_expect_code 2 chj help a b 2>err.out && grep "^usage: chjournal help" err.out
'

expect_success 'setup: changes journaled in two batches' '
	backup c1 &&
	echo a >"$SPOOL/u/a." &&
	echo b >"$SPOOL/u2/b." &&
	echo x >"$SPOOL/u.x/x." &&
	chj sync &&
	chj query >q1.out &&
	seq1=$(awk -F "\t" "\$1 > m { m = \$1 } END { print m }" q1.out) &&
	time1=$(date -u -d "$(awk -F "\t" "\$1 == $seq1 { print \$2 }" q1.out)" +%s) &&
	test "$seq1" -gt 0 &&
	# the time filter has a resolution of one second
	while [ "$(date +%s)" -le "$time1" ]; do sleep 0.1; done &&
	echo c >"$SPOOL/u/c." &&
	echo d >"$SPOOL/u2/d." &&
	chj sync &&
	chj query >q2.out &&
	time2=$(date -u -d "$(awk -F "\t" -v p="$SPOOL/u/c." "\$4 == p { print \$2 }" q2.out)" +%s) &&
	test "$time2" -gt "$time1"
'

expect_success 'query --json: every line is a JSON object with the fields' '
	chj query --json >q.json &&
	json_lines q.json &&
	python3 -c "
import json, sys
rows = [json.loads(l) for l in open(\"q.json\")]
ch = [r for r in rows if r[\"type\"] == \"change\"]
assert ch, rows
for r in ch:
    assert set(r) >= {\"seq\", \"time\", \"what\", \"path\"}, r
paths = {r[\"path\"] for r in ch}
for p in sys.argv[1:]:
    assert p in paths, (p, paths)
" "$SPOOL/u/a." "$SPOOL/u/c." "$SPOOL/u2/d."
'

expect_success 'query --json handles names that are not plain text' '
	printf "q\n" >"$SPOOL/u2/tab	quote\"back\\\\nl
x" &&
	printf "q\n" >"$SPOOL/u2/$(printf "bad\377byte")" &&
	chj sync &&
	chj query --json --under "$SPOOL/u2" >q.json &&
	json_lines q.json &&
	python3 -c "
import json, sys
rows = [json.loads(l) for l in open(\"q.json\", encoding=\"utf-8\")]
paths = {r[\"path\"] for r in rows if r[\"type\"] == \"change\"}
want = sys.argv[1] + \"/tab\tquote\\\"back\\\\\\\\nl\nx\"
assert want in paths, (want, paths)
hexes = [bytes.fromhex(r[\"path_hex\"]) for r in rows if \"path_hex\" in r]
assert (sys.argv[1] + \"/bad\").encode() + b\"\\xffbyte\" in hexes, hexes
" "$SPOOL/u2"
'

expect_success 'query --since SEQ: only rows after SEQ' '
	chj query --since "$seq1" | paths_of | sort >got &&
	chj query | awk -F "\t" -v s="$seq1" "\$1 > s && \$3 !~ /^rescan/ { print \$4 }" | sort >expect &&
	test_cmp expect got &&
	grep -qxF "$SPOOL/u/c." got &&
	! grep -qxF "$SPOOL/u/a." got &&
	chj query --since=0 | paths_of | sort >all &&
	chj query | paths_of | sort >expect &&
	test_cmp expect all &&
	last=$(chj query | awk -F "\t" "\$1 > m { m = \$1 } END { print m }") &&
	chj query --since "$last" >none &&
	test_cmp /dev/null none
'

expect_success 'query --since @TIME: only rows changed at or after TIME' '
	chj query --since "@$time2" | paths_of >got &&
	grep -qxF "$SPOOL/u/c." got &&
	grep -qxF "$SPOOL/u2/d." got &&
	! grep -qxF "$SPOOL/u/a." got &&
	! grep -qxF "$SPOOL/u.x/x." got &&
	# the times are UTC ISO 8601: they sort as strings
	chj query --since "@$time2" |
		awk -F "\t" -v t="$(date -u -d "@$time2" +%Y-%m-%dT%H:%M:%SZ)" "\$2 < t" >older &&
	test_cmp /dev/null older &&
	chj query --since "@$time1" | paths_of >got &&
	grep -qxF "$SPOOL/u/a." got &&
	chj query --since "@$(( $(date +%s) + 100 ))" >none &&
	test_cmp /dev/null none
'

expect_success 'query prints times in UTC ISO 8601, --json in unix times; --since takes both' '
	chj query >q.out &&
	awk -F "\t" "\$2 !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z\$/" q.out >bad &&
	test_cmp /dev/null bad &&
	iso2=$(date -u -d "@$time2" +%Y-%m-%dT%H:%M:%SZ) &&
	grep -F "	$iso2	" q.out | grep -F "$SPOOL/u/c." &&
	chj query --json | grep -F "\"time\":$time2," | grep -F "$SPOOL/u/c." &&
	chj query --since "$iso2" | paths_of | sort >got &&
	chj query --since "@$time2" | paths_of | sort >expect &&
	test_cmp expect got &&
	grep -qxF "$SPOOL/u/c." got &&
	! grep -qxF "$SPOOL/u/a." got &&
	test_expect_code 2 chj query --since 2026-13-45T00:00:00Z 2>err.out &&
	grep "bad --since" err.out
'

expect_success 'query --under PATH: only paths below PATH (not u2, not u.x)' '
	chj query --under "$SPOOL/u" | paths_of | sort >got &&
	printf "%s\n" "$SPOOL/u/a." "$SPOOL/u/c." >expect &&
	test_cmp expect got &&
	chj query --under "$SPOOL/u/c." | paths_of >got &&
	echo "$SPOOL/u/c." >expect &&
	test_cmp expect got &&
	chj query --under "$SPOOL/u.x" | paths_of >got &&
	echo "$SPOOL/u.x/x." >expect &&
	test_cmp expect got &&
	chj query --under "$SPOOL/u" --since "$seq1" | paths_of >got &&
	echo "$SPOOL/u/c." >expect &&
	test_cmp expect got &&
	chj query --under "$SPOOL/nothing" >none &&
	test_cmp /dev/null none
'

expect_success 'query --under PATH/ (trailing slash) is the same as PATH' '
	chj query --under "$SPOOL/u/" | paths_of | sort >got &&
	printf "%s\n" "$SPOOL/u/a." "$SPOOL/u/c." >expect &&
	test_cmp expect got
'

expect_success 'query --under shows a rescan of a directory above PATH' '
	stop_daemon &&
	start_daemon &&
	chj query --under "$SPOOL/u" >q.out &&
	grep -F "rescan(since=" q.out | cut -f4 >got &&
	echo "$SPOOL" >expect &&
	test_cmp expect got
'

expect_success 'query -0 ends each record with NUL' '
	chj query -0 --under "$SPOOL/u" >q0.out &&
	chj query --under "$SPOOL/u" >q.lines &&
	test "$(wc -l <q.lines)" -ge 3 &&
	test "$(tr -cd "\0" <q0.out | wc -c)" -eq "$(wc -l <q.lines)" &&
	test "$(tr -cd "\n" <q0.out | wc -c)" -eq 0 &&
	tr "\0" "\n" <q0.out >q0.lines &&
	test_cmp q.lines q0.lines
'

expect_success 'status --json with the daemon running' '
	backup c2 &&
	chj status --json >status.json &&
	python3 -c "
import json, sys
s = json.load(open(\"status.json\"))
assert s[\"daemon\"][\"running\"] is True, s
assert s[\"daemon\"][\"pid\"] == int(sys.argv[1]), s
assert len(s[\"journal_id\"]) == 32 and int(s[\"journal_id\"], 16) >= 0, s
assert isinstance(s[\"last_seq\"], int) and s[\"last_seq\"] > 0, s
assert s[\"roots\"] == [sys.argv[2]], s
c = {x[\"name\"]: x for x in s[\"consumers\"]}
assert set(c) == {\"c1\", \"c2\"}, c
assert c[\"c2\"][\"rows_behind\"] == 0, c
assert c[\"c1\"][\"rows_behind\"] > 0, c
assert c[\"c1\"][\"next_run\"] == \"incremental\", c
" "$DAEMON_PID" "$SPOOL"
'

expect_success 'status rows_behind counts the rows after the commit' '
	backup c1 &&
	echo e >"$SPOOL/u/e." &&
	echo f >"$SPOOL/u/f." &&
	chj sync &&
	chj status --json >status.json &&
	python3 -c "
import json
s = json.load(open(\"status.json\"))
c = {x[\"name\"]: x for x in s[\"consumers\"]}
assert c[\"c1\"][\"rows_behind\"] == 2, c
"
'

expect_success 'status --json with the daemon stopped' '
	stop_daemon &&
	chj status --json >status.json &&
	python3 -c "
import json
s = json.load(open(\"status.json\"))
assert s[\"daemon\"][\"running\"] is False, s
assert s[\"daemon\"][\"pid\"] == 0, s
assert s[\"last_seq\"] > 0, s
assert len(s[\"consumers\"]) == 2, s
" &&
	chj status >status.out &&
	grep "^daemon: *not running" status.out
'

expect_success 'configuration from $CHJOURNAL_CONF; -c overrides it' '
	mkdir -p "$TRASH/other-spool" &&
	printf "%s\n" "journal = $TRASH/other/journal.db" "root = $TRASH/other-spool" >other.conf &&
	CHJOURNAL_CONF="$CONF" "$CHJOURNAL" status >status.out &&
	grep "^root: *$SPOOL\$" status.out &&
	CHJOURNAL_CONF="$CONF" "$CHJOURNAL" consumers | cut -f1 >names &&
	printf "%s\n" c1 c2 >expect &&
	test_cmp expect names &&
	CHJOURNAL_CONF="$TRASH/other.conf" "$CHJOURNAL" -c "$CONF" status >status.out &&
	grep "^root: *$SPOOL\$" status.out &&
	CHJOURNAL_CONF="$TRASH/other.conf" "$CHJOURNAL" --config="$CONF" status >status.out &&
	grep "^root: *$SPOOL\$" status.out &&
	CHJOURNAL_CONF="$TRASH/missing.conf" "$CHJOURNAL" -c "$CONF" status >status.out &&
	CHJOURNAL_CONF="$TRASH/other.conf" "$CHJOURNAL" consumers >out 2>&1 &&
	test_cmp /dev/null out &&
	test_expect_code 1 env CHJOURNAL_CONF="$TRASH/missing.conf" "$CHJOURNAL" status 2>err.out &&
	grep "$TRASH/missing.conf: cannot read configuration" err.out &&
	test_expect_code 1 env CHJOURNAL_CONF="$TRASH/other.conf" "$CHJOURNAL" status 2>err.out &&
	grep "$TRASH/other/journal.db" err.out
'

expect_success 'the daemon reads $CHJOURNAL_CONF; -c overrides it' '
	test_expect_code 1 env CHJOURNAL_CONF="$TRASH/missing.conf" "$CHJOURNALD" 2>err.out &&
	grep "$TRASH/missing.conf: cannot read configuration" err.out &&
	CHJOURNAL_CONF="$TRASH/missing.conf" start_daemon &&
	stop_daemon &&
	: >"$DAEMON_LOG" &&
	{ CHJOURNAL_CONF="$CONF" "$CHJOURNALD" -v 2>>"$DAEMON_LOG" & } &&
	DAEMON_PID=$! &&
	wait_for 30 daemon_ready &&
	grep "starting: journal .$STATE/journal.db." "$DAEMON_LOG" &&
	stop_daemon
'

test_done
