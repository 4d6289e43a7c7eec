#!/bin/bash
# t0201-begin-commit-abort: a consumer's run life cycle: the first begin is
# full, commit makes the next incremental, abort keeps the window, a second
# begin is refused while a run is open (naming it) and begin --replace takes
# it over, consumers are independent, commit/list without an open run fail,
# forget removes a consumer, bad consumer names are refused. begin makes the
# new cursor's content durable but leaves its directory unsynced (a crash may
# only lose the open run), commit syncs both. begin --list prints the run's
# list after its first line(s). Two runners at once: t0213.
. "$(dirname "$0")/test-lib.sh"

mkdir -p "$SPOOL/user/alice" "$SPOOL/user/bob/Maildir/cur"
echo 1 >"$SPOOL/user/alice/1."
echo 2 >"$SPOOL/user/alice/2."
echo 3 >"$SPOOL/user/bob/Maildir/cur/3:2,S"
ln -s 1. "$SPOOL/user/alice/link"

# list_of CONSUMER: the open run's list, one path per line, into list.out
list_of() {
	chj list "$1" >list.out
}

expect_success 'daemon starts' '
	start_daemon
'

expect_success 'first begin is full and lists every file' '
	chj begin c1 >mode.out &&
	echo "full: no committed run yet" >expect &&
	test_cmp expect mode.out &&
	list_of c1 &&
	printf "%s\n" "$SPOOL/user/alice/1." "$SPOOL/user/alice/2." \
		"$SPOOL/user/alice/link" "$SPOOL/user/bob/Maildir/cur/3:2,S" >expect &&
	test_cmp expect list.out
'

expect_success 'commit, then begin is incremental with an empty list' '
	chj commit c1 &&
	chj begin c1 >mode.out &&
	echo incremental >expect &&
	test_cmp expect mode.out &&
	list_of c1 &&
	test_cmp /dev/null list.out &&
	chj commit c1
'

expect_success 'abort keeps the window: the next begin lists the change again' '
	echo changed >>"$SPOOL/user/alice/2." &&
	chj begin c1 >mode.out &&
	grep -x incremental mode.out &&
	list_of c1 &&
	echo "$SPOOL/user/alice/2." >expect &&
	test_cmp expect list.out &&
	chj abort c1 &&
	chj consumers >consumers.out &&
	grep "^c1	.*	open=no\$" consumers.out &&
	chj begin c1 >mode.out &&
	grep -x incremental mode.out &&
	list_of c1 &&
	test_cmp expect list.out &&
	chj commit c1 &&
	chj begin c1 >/dev/null &&
	list_of c1 &&
	test_cmp /dev/null list.out &&
	chj commit c1
'

expect_success 'abort without an open run only warns' '
	chj abort c1 2>err.out &&
	grep "consumer .c1. has no open run" err.out
'

expect_success 'abort of an unknown consumer fails naming it' '
	test_expect_code 1 chj abort nosuch 2>err.out &&
	grep "no consumer .nosuch." err.out
'

expect_success 'a begin on a consumer with an open run is refused, naming the run' '
	chj begin c1 --print-run-id >mode.out &&
	sed -n 1p mode.out | grep -x incremental &&
	run1=$(sed -n 2p mode.out) &&
	echo "$run1" | grep -x "[0-9a-f]\{16\}" &&
	test "$(wc -l <mode.out)" = 2 &&
	test_expect_code 1 chj begin c1 >out 2>err.out &&
	test_cmp /dev/null out &&
	test "$(wc -l <err.out)" = 1 &&
	grep "^chjournal: consumer .c1. has an open run .$run1. begun 20[0-9-]*T[0-9:]*Z: commit or abort it (.chjournal commit|abort c1 --run $run1.), or take it over with .chjournal begin c1 --replace.\$" err.out &&
	chj consumers >consumers.out &&
	grep "^c1	committed_begin=.*	open=20[0-9T:-]*Z	run=$run1\$" consumers.out &&
	chj status --json | grep "\"name\":\"c1\".*\"open_run\":true,\"open_since\":[0-9]*,\"open_run_id\":\"$run1\"" &&
	chj status | grep "^consumer c1: .*, run $run1 open since " &&
	# still the same run: its id lists and commits it
	chj list c1 --run "$run1" >/dev/null &&
	chj commit c1 --run "$run1" &&
	chj status --json | grep "\"name\":\"c1\".*\"open_run\":false,\"open_since\":0,\"open_run_id\":null"
'

expect_success 'begin --replace takes the run over and commits the replaced begin point' '
	chj begin c1 --print-run-id >mode.out &&
	run1=$(sed -n 2p mode.out) &&
	echo x >"$SPOOL/user/alice/3." &&
	chj begin c1 --replace --print-run-id >mode.out 2>err.out &&
	sed -n 1p mode.out | grep -x incremental &&
	run2=$(sed -n 2p mode.out) &&
	test "$run1" != "$run2" &&
	grep "^chjournal: consumer .c1.: run .$run2. takes over run .$run1. (begun 20[0-9T:-]*Z)" err.out &&
	list_of c1 &&
	echo "$SPOOL/user/alice/3." >expect &&
	test_cmp expect list.out &&
	chj commit c1 &&
	# the commit is the first begin: 3. (changed between the two begins)
	# is in the next window again, a duplicate rather than a loss
	chj begin c1 >mode.out &&
	list_of c1 &&
	test_cmp expect list.out &&
	chj commit c1 &&
	chj begin c1 --replace >mode.out 2>err.out &&
	test_cmp /dev/null err.out &&
	list_of c1 &&
	test_cmp /dev/null list.out &&
	chj commit c1
'

expect_success 'two consumers have independent windows' '
	backup c2 &&
	grep "^full: no committed run yet" mode.out &&
	echo a >"$SPOOL/user/alice/A" &&
	backup c1 &&
	grep -x incremental mode.out &&
	echo "$SPOOL/user/alice/A" >expect &&
	test_cmp expect list.out &&
	# c2 begins but does not commit
	chj begin c2 >mode.out &&
	grep -x incremental mode.out &&
	list_of c2 &&
	test_cmp expect list.out &&
	chj abort c2 &&
	echo b >"$SPOOL/user/alice/B" &&
	backup c1 &&
	echo "$SPOOL/user/alice/B" >expect &&
	test_cmp expect list.out &&
	backup c2 &&
	grep -x incremental mode.out &&
	printf "%s\n" "$SPOOL/user/alice/A" "$SPOOL/user/alice/B" >expect &&
	test_cmp expect list.out
'

expect_success 'a consumer that never committed stays full while another commits' '
	chj begin c3 >mode.out &&
	grep "^full: no committed run yet" mode.out &&
	chj abort c3 &&
	echo c >"$SPOOL/user/alice/C" &&
	backup c1 &&
	grep -x incremental mode.out &&
	echo "$SPOOL/user/alice/C" >expect &&
	test_cmp expect list.out &&
	chj begin c3 >mode.out &&
	grep "^full: no committed run yet" mode.out &&
	list_of c3 &&
	find "$SPOOL" \( -type f -o -type l \) ! -name ".chjournal-cookie.*" | sort >expect &&
	test_cmp expect list.out &&
	chj abort c3
'

expect_success 'commit without an open run fails naming the consumer' '
	test_expect_code 1 chj commit c1 2>err.out &&
	grep "consumer .c1. has no open run to commit" err.out &&
	test_expect_code 1 chj commit nosuch 2>err.out &&
	grep "consumer .nosuch. has no open run" err.out
'

expect_success 'list without an open run fails naming the consumer' '
	test_expect_code 1 chj list c1 >out 2>err.out &&
	test_cmp /dev/null out &&
	grep "consumer .c1. has no open run" err.out &&
	test_expect_code 1 chj list nosuch >out 2>err.out &&
	grep "consumer .nosuch. has no open run" err.out
'

expect_success 'consumers lists every consumer' '
	chj consumers >consumers.out &&
	cut -f1 consumers.out >names &&
	printf "%s\n" c1 c2 c3 >expect &&
	test_cmp expect names &&
	grep "^c1	committed_begin=[0-9T:-]*Z	committed_at=[0-9T:-]*Z	seq=[1-9][0-9]*	open=no\$" consumers.out &&
	grep "^c3	committed_begin=never	committed_at=never	seq=0	open=no\$" consumers.out
'

expect_success 'status and consumers name the same two times of a commit alike' '
	# a commit made a while after its begin: the two times differ
	chj begin c4 >/dev/null &&
	t=$(date +%s) && while [ "$(date +%s)" -le "$t" ]; do sleep 0.1; done &&
	chj commit c4 &&
	line=$(chj consumers | grep "^c4	") &&
	b=$(echo "$line" | sed -n "s/.*	committed_begin=\([^	]*\).*/\1/p") &&
	at=$(echo "$line" | sed -n "s/.*	committed_at=\([^	]*\).*/\1/p") &&
	: what a failure shows &&
	echo "consumers: $line" && chj status >status.out; cat status.out &&
	test -n "$b" && test -n "$at" && test "$b" != "$at" &&
	grep -F "consumer c4: committed at $at (up to its begin at $b, seq " status.out &&
	chj status --json | python3 -c "
import json, sys, calendar, time
c = [c for c in json.load(sys.stdin)[\"consumers\"] if c[\"name\"] == \"c4\"][0]
iso = lambda t: time.strftime(\"%Y-%m-%dT%H:%M:%SZ\", time.gmtime(t))
assert iso(c[\"commit_time\"]) == \"$at\" and iso(c[\"committed_begin_time\"]) == \"$b\", c
" &&
	chj forget c4
'

expect_success 'forget removes a consumer: its next begin is full again' '
	: the last case forgets c4, unless it failed first &&
	{ chj forget c4 2>/dev/null; true; } &&
	chj forget c2 &&
	chj consumers | cut -f1 >names &&
	printf "%s\n" c1 c3 >expect &&
	test_cmp expect names &&
	chj begin c2 >mode.out &&
	grep "^full: no committed run yet" mode.out &&
	chj abort c2 &&
	chj forget c2 &&
	test_expect_code 1 chj forget c2 2>err.out &&
	grep "no consumer .c2." err.out
'

expect_success 'a 64-character name is valid' '
	name64=$(printf "%064d" 0 | tr 0 a) &&
	chj begin "$name64" >mode.out &&
	grep "^full:" mode.out &&
	chj abort "$name64" &&
	chj forget "$name64"
'

# check_bad_name NAME: every command taking a consumer refuses NAME, exit 1,
# naming it, and creates no cursor
check_bad_name() {
	for cmd in begin list commit abort forget; do
		test_expect_code 1 chj $cmd "$1" >out 2>err.out || return 1
		grep -qF "invalid consumer name '$1'" err.out || {
			echo "$cmd: message does not name '$1':"; cat err.out; return 1; }
	done
	chj consumers | cut -f1 >names &&
	printf "%s\n" c1 c3 >expect &&
	test_cmp expect names
}

expect_success 'names with /, quotes, spaces, leading dot, 65 chars or empty are refused' '
	check_bad_name "a/b" &&
	check_bad_name "../c1" &&
	check_bad_name "a'"'"'b" &&
	check_bad_name "a\"b" &&
	check_bad_name "a b" &&
	check_bad_name " c1" &&
	check_bad_name ".hidden" &&
	check_bad_name "." &&
	check_bad_name "$(printf "%065d" 0 | tr 0 a)" &&
	check_bad_name "" &&
	ls -A "$STATE/consumers" | grep -v "^\.lock\$" | sort >files &&
	printf "%s\n" c1 c3 >expect &&
	test_cmp expect files
'

expect_success 'a name starting with - is an unknown option to begin, and refused as a name after --' '
	test_expect_code 2 chj begin -x 2>err.out &&
	grep -F "unknown option '"'"'-x'"'"'" err.out &&
	test_expect_code 1 chj begin -- -x 2>err.out &&
	grep -F "invalid consumer name '"'"'-x'"'"'" err.out
'

# fsyncs_of TRACE: the paths fsynced in an strace -y trace, one a line
fsyncs_of() {
	sed -n "s/^[0-9]* *f\(data\)*sync([0-9]*<\(.*\)>) *= 0$/\2/p" "$1"
}

# LeakSanitizer cannot run under ptrace: no leak check for the strace'd agent
STRACE_ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
if command -v strace >/dev/null 2>&1; then
	expect_success 'begin fsyncs the new cursor but not its directory; commit both' '
		ASAN_OPTIONS="$STRACE_ASAN_OPTIONS" strace -f -qq -y -e trace=fsync,fdatasync -o begin.trace \
			"$CHJOURNAL" -c "$CONF" begin fs >/dev/null 2>begin.err &&
		fsyncs_of begin.trace >begin.fsyncs &&
		echo "$STATE/consumers/.fs.tmp" >expect &&
		test_cmp expect begin.fsyncs &&
		chj list fs >/dev/null &&
		ASAN_OPTIONS="$STRACE_ASAN_OPTIONS" strace -f -qq -y -e trace=fsync,fdatasync -o commit.trace \
			"$CHJOURNAL" -c "$CONF" commit fs 2>commit.err &&
		fsyncs_of commit.trace >commit.fsyncs &&
		printf "%s\n" "$STATE/consumers/.fs.tmp" "$STATE/consumers" >expect &&
		test_cmp expect commit.fsyncs
	'
else
	test_skip 'begin fsyncs the new cursor but not its directory; commit both' 'no strace'
fi

expect_success 'begin --list prints the first line(s), then what list prints; -0 needs --list' '
	chj begin ls >/dev/null && chj commit ls &&
	echo more >>"$SPOOL/user/alice/1." &&
	echo new >"$SPOOL/user/bob/Maildir/cur/4:2," &&
	chj begin ls --list >begin.out &&
	chj list ls >list.out &&
	{ echo incremental && cat list.out; } >expect &&
	test_cmp expect begin.out &&
	test "$(wc -l <list.out)" = 2 &&
	chj abort ls &&
	chj begin ls --list -0 --print-run-id >begin0.out &&
	run=$(sed -n 2p begin0.out) &&
	chj list ls -0 --run "$run" >list0.out &&
	{ printf "incremental\n%s\n" "$run" && cat list0.out; } >expect0 &&
	cmp expect0 begin0.out &&
	test "$(tr -cd "\0" <list0.out | wc -c)" = 2 &&
	chj commit ls --run "$run" &&
	test_expect_code 2 chj begin ls -0 2>err.out &&
	grep -- "-0" err.out &&
	chj consumers | grep "^ls	.*	open=no\$"
'

expect_success 'begin --list of a full run lists every file' '
	chj begin fl --list >begin.out &&
	chj list fl >list.out &&
	{ echo "full: no committed run yet" && cat list.out; } >expect &&
	test_cmp expect begin.out &&
	grep -qxF "$SPOOL/user/alice/link" list.out &&
	chj abort fl
'

expect_success 'daemon stops' '
	stop_daemon
'

test_done
