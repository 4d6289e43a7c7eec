#!/bin/bash
# t0213-two-runners: two backup runners on one consumer cannot lose a change.
# The race that lost one (begin, list, change X, a second begin, the first
# runner's commit, the second runner's abort: X never listed again) now ends
# with X in the next run; begin --replace keeps the replaced run's commit
# point, so whichever runner commits, X is listed again; run ids make commit,
# abort and list refuse a run that is not the open one.
. "$(dirname "$0")/test-lib.sh"

mkdir -p "$SPOOL/d"
echo 0 >"$SPOOL/d/base"
X="$SPOOL/d/X"

# begin_id CONSUMER [ARGS]: begin --print-run-id; the mode into mode.out, the
# run id on stdout
begin_id() {
	_c=$1
	shift
	chj begin "$_c" --print-run-id "$@" >begin.out || return 1
	sed -n 1p begin.out >mode.out
	sed -n 2p begin.out
}

# next_run_lists_X CONSUMER: a new run (begin, list, commit) lists X
next_run_lists_X() {
	backup "$1" &&
	in_list "$X"
}

# settled CONSUMER: X is committed past, and the next run lists nothing
settled() {
	backup "$1" &&
	test_cmp /dev/null list.out
}

expect_success 'daemon starts; the consumer has a committed run' '
	start_daemon &&
	backup c &&
	grep "^full:" mode.out
'

expect_success 'the race: begin, list, change X, second begin refused, commit, abort: X is listed next' '
	chj begin c >mode.out &&
	grep -x incremental mode.out &&
	chj list c >list.a &&
	echo x >"$X" &&
	# runner B begins (refused: checked below, once the loss is ruled out)
	{ chj begin c >out 2>err.out; echo $? >rc.b; } &&
	# runner A commits what it listed; runner B aborts
	chj commit c &&
	chj abort c 2>abort.err &&
	# the change made between the two begins is not lost
	next_run_lists_X c &&
	# B was refused: one line naming the open run and what to do
	test "$(cat rc.b)" = 1 &&
	test_cmp /dev/null out &&
	test "$(wc -l <err.out)" = 1 &&
	grep "consumer .c. has an open run .[0-9a-f]*. begun .*Z: commit or abort it" err.out &&
	grep "take it over with .chjournal begin c --replace." err.out &&
	grep "consumer .c. has no open run: nothing to abort" abort.err &&
	settled c
'

expect_success 'the race with B aborting before A commits: A commit refused, X listed next' '
	chj begin c >/dev/null &&
	chj list c >list.a &&
	echo x2 >"$X" &&
	test_expect_code 1 chj begin c 2>/dev/null &&
	chj abort c &&
	test_expect_code 1 chj commit c 2>err.out &&
	grep "consumer .c. has no open run to commit" err.out &&
	next_run_lists_X c &&
	settled c
'

expect_success 'B replaces A; A commit --run refused naming both runs; B commits: X listed next' '
	a=$(begin_id c) &&
	chj list c --run "$a" >list.a &&
	echo x3 >"$X" &&
	b=$(begin_id c --replace) &&
	test "$a" != "$b" &&
	test_expect_code 1 chj commit c --run "$a" 2>err.out &&
	test "$(wc -l <err.out)" = 1 &&
	grep "^chjournal: consumer .c.: run .$a. is not the open run .$b. (begun .*Z): not committed\$" err.out &&
	test_expect_code 1 chj list c --run "$a" >out 2>err.out &&
	test_cmp /dev/null out &&
	grep "run .$a. is not the open run .$b." err.out &&
	chj list c --run "$b" >list.b &&
	grep -xF "$X" list.b &&
	chj commit c --run "$b" &&
	next_run_lists_X c &&
	settled c
'

expect_success 'B replaces A; A commits without --run: the earlier point is kept, X listed next' '
	chj begin c >/dev/null &&
	chj list c >list.a &&
	echo x4 >"$X" &&
	chj begin c --replace >mode.out 2>err.out &&
	grep -x incremental mode.out &&
	grep "takes over run" err.out &&
	# runner A, which passes no run id, commits the run B took over
	chj commit c &&
	# runner B: its run is closed
	test_expect_code 1 chj list c >out 2>/dev/null &&
	test_expect_code 1 chj commit c 2>err.out &&
	grep "consumer .c. has no open run to commit" err.out &&
	next_run_lists_X c &&
	settled c
'

expect_success 'B replaces A, lists and commits without --run; A then finds no run: X listed next' '
	chj begin c >/dev/null &&
	chj list c >list.a &&
	echo x5 >"$X" &&
	chj begin c --replace >/dev/null 2>&1 &&
	chj list c >list.b &&
	grep -xF "$X" list.b &&
	chj commit c &&
	test_expect_code 1 chj commit c 2>/dev/null &&
	next_run_lists_X c &&
	settled c
'

expect_success 'a chain of takeovers keeps the first begin point' '
	chj begin c >/dev/null &&
	echo x6 >"$X" &&
	chj begin c --replace >/dev/null 2>&1 &&
	echo y >"$SPOOL/d/Y" &&
	chj begin c --replace >/dev/null 2>&1 &&
	chj commit c &&
	backup c &&
	in_list "$X" && in_list "$SPOOL/d/Y" &&
	settled c
'

expect_success 'abort --run of a run that is not the open one is refused; the open run stays' '
	a=$(begin_id c) &&
	echo x7 >"$X" &&
	b=$(begin_id c --replace 2>/dev/null) &&
	test_expect_code 1 chj abort c --run "$a" 2>err.out &&
	test "$(wc -l <err.out)" = 1 &&
	grep "^chjournal: consumer .c.: run .$a. is not the open run .$b. (begun .*Z): not aborted\$" err.out &&
	chj consumers | grep "^c	.*	run=$b\$" &&
	chj abort c --run "$b" &&
	chj consumers | grep "^c	.*	open=no\$" &&
	test_expect_code 1 chj abort c --run "$b" 2>err.out &&
	grep "consumer .c. has no open run to abort: run .$b. is not open" err.out &&
	test_expect_code 1 chj commit c --run "$b" 2>err.out &&
	grep "consumer .c. has no open run to commit: run .$b. is not open" err.out &&
	next_run_lists_X c &&
	settled c
'

expect_success 'commit --run with an id never seen is refused; the run commits with its own' '
	a=$(begin_id c) &&
	test_expect_code 1 chj commit c --run 0123456789abcdef 2>err.out &&
	grep "run .0123456789abcdef. is not the open run .$a." err.out &&
	test_expect_code 2 chj commit c --run 2>err.out &&
	grep "^usage: chjournal commit" err.out &&
	chj commit c --run "$a"
'

expect_success 'a run opened by a chjournal without run ids is named legacy' '
	chj begin c >/dev/null &&
	grep -v "^open_run_id=\|^open_floor_\|^cursor_id=\|^generation=\|^# end" \
		"$STATE/consumers/.c.run" >cursor.old &&
	cp cursor.old "$STATE/consumers/c" && rm "$STATE/consumers/.c.run" &&
	chj consumers | grep "^c	.*	run=legacy\$" &&
	test_expect_code 1 chj begin c 2>err.out &&
	grep "has an open run .legacy." err.out &&
	chj commit c --run legacy &&
	settled c
'

# the README's tar script (section "Using it from a backup script"), run as
# written: chjournal on PATH is the agent on this test's configuration
readme_tar() {
	mkdir -p bin backup &&
	printf "#!/bin/sh\nexec \"%s\" -c \"%s\" \"\$@\"\n" "$CHJOURNAL" "$CONF" >bin/chjournal &&
	chmod +x bin/chjournal &&
	awk "/^With GNU tar/ { on = 1; next } /^Two runs of one consumer/ { on = 0 }
	    on && /^    / { print substr(\$0, 5) }" "$CHJ_SRCDIR/README" |
		sed "s|=/backup/|=$TRASH/backup/|" >readme-tar.sh &&
	grep -q "commit \"\$consumer\" --run \"\$run\"" readme-tar.sh &&
	PATH="$TRASH/bin:$PATH" bash readme-tar.sh
}

expect_success 'the README tar script: commits its own run; refused while another run is open' '
	readme_tar >run.out 2>run.err &&
	grep "^run [0-9a-f]*: full: no committed run yet\$" run.out &&
	tar -tf backup/spool-*.tar | grep -x "${SPOOL#/}/d/base" &&
	chj consumers | grep "^tar-nightly	committed_begin=20.*	open=no\$" &&
	rm -f backup/* &&
	chj begin tar-nightly >/dev/null &&
	echo readme >"$SPOOL/d/readme" &&
	{ readme_tar >run.out 2>run.err; test $? = 1; } &&
	grep "consumer .tar-nightly. has an open run" run.err &&
	test_cmp /dev/null run.out &&
	chj abort tar-nightly &&
	readme_tar >run.out 2>run.err &&
	grep "^run [0-9a-f]*: incremental\$" run.out &&
	tar -tf backup/spool-*.tar >tar.list &&
	echo "${SPOOL#/}/d/readme" >expect &&
	test_cmp expect tar.list
'

expect_success 'daemon stops' '
	stop_daemon
'

test_done
