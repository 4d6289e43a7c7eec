#!/bin/bash
# t0202-coalescing-trap: the journal keeps one row per path (coalesced, the
# seq moves to the newest change). A path changed before a consumer's begin
# and again after it must not fall out of the window: the commit advances the
# cursor to the begin, the row's seq is past it, so the next run lists it.
. "$(dirname "$0")/test-lib.sh"

mkdir -p "$SPOOL/u/a" "$SPOOL/u/b"
echo 1 >"$SPOOL/u/a/1."
echo 2 >"$SPOOL/u/a/2."
echo 3 >"$SPOOL/u/b/3."

list_of() {
	chj list "$1" >list.out
}

# seq_of PATH: the journal seq of PATH's row (empty when none)
seq_of() {
	chj query | awk -F '\t' -v p="$1" '$4 == p { print $1 }'
}

expect_success 'daemon starts; c1 and c2 have a committed full run' '
	start_daemon &&
	backup c1 && grep "^full:" mode.out &&
	backup c2 && grep "^full:" mode.out &&
	backup c1 && test_cmp /dev/null list.out &&
	backup c2 && test_cmp /dev/null list.out
'

expect_success 'changed before begin and again after begin: listed by the next run too' '
	echo x >>"$SPOOL/u/a/1." &&
	chj begin c1 >mode.out &&
	grep -x incremental mode.out &&
	seq_before=$(seq_of "$SPOOL/u/a/1.") &&
	test -n "$seq_before" &&
	list_of c1 &&
	echo "$SPOOL/u/a/1." >expect &&
	test_cmp expect list.out &&
	echo y >>"$SPOOL/u/a/1." &&
	chj sync &&
	seq_after=$(seq_of "$SPOOL/u/a/1.") &&
	# the row was coalesced: one row, its seq moved past the begin
	test "$(chj query | awk -F "\t" -v p="$SPOOL/u/a/1." "\$4 == p" | wc -l)" -eq 1 &&
	test "$seq_after" -gt "$seq_before" &&
	chj commit c1 &&
	backup c1 &&
	grep -x incremental mode.out &&
	test_cmp expect list.out &&
	backup c1 &&
	test_cmp /dev/null list.out
'

expect_success 'the other consumer still sees the path (its window is older)' '
	backup c2 &&
	grep -x incremental mode.out &&
	echo "$SPOOL/u/a/1." >expect &&
	test_cmp expect list.out &&
	backup c2 &&
	test_cmp /dev/null list.out
'

expect_success 'a path changed between begin and list is listed' '
	chj begin c1 >mode.out &&
	grep -x incremental mode.out &&
	list_of c1 &&
	test_cmp /dev/null list.out &&
	echo new >"$SPOOL/u/a/4." &&
	chj sync &&
	list_of c1 &&
	echo "$SPOOL/u/a/4." >expect &&
	test_cmp expect list.out &&
	chj commit c1
'

expect_success 'after commit, a change made after begin is listed in the following run' '
	backup c1 &&
	echo "$SPOOL/u/a/4." >expect &&
	test_cmp expect list.out &&
	backup c1 &&
	test_cmp /dev/null list.out
'

expect_success 'a change after begin that is not yet journaled at commit is listed next run' '
	chj begin c1 >mode.out &&
	list_of c1 &&
	test_cmp /dev/null list.out &&
	echo late >>"$SPOOL/u/b/3." &&
	chj commit c1 &&
	backup c1 &&
	echo "$SPOOL/u/b/3." >expect &&
	test_cmp expect list.out
'

expect_success 'two consumers interleaved around the same path lose nothing' '
	# c2 begins, the path changes, c1 runs a whole backup, the path
	# changes again, c2 commits: both see it in their next run
	backup c2 &&
	echo 1 >>"$SPOOL/u/a/2." &&
	chj begin c2 >mode.out &&
	echo 2 >>"$SPOOL/u/a/2." &&
	backup c1 &&
	echo "$SPOOL/u/a/2." >expect &&
	test_cmp expect list.out &&
	echo 3 >>"$SPOOL/u/a/2." &&
	chj sync &&
	list_of c2 &&
	test_cmp expect list.out &&
	chj commit c2 &&
	backup c2 &&
	test_cmp expect list.out &&
	backup c1 &&
	test_cmp expect list.out &&
	backup c1 && test_cmp /dev/null list.out &&
	backup c2 && test_cmp /dev/null list.out
'

expect_success 'renamed before begin and written after begin: listed next run' '
	mv "$SPOOL/u/a/2." "$SPOOL/u/a/2.moved" &&
	chj begin c1 >mode.out &&
	list_of c1 &&
	echo "$SPOOL/u/a/2.moved" >expect &&
	test_cmp expect list.out &&
	echo more >>"$SPOOL/u/a/2.moved" &&
	chj commit c1 &&
	backup c1 &&
	test_cmp expect list.out
'

expect_success 'directory created before begin, file added in it after begin: listed next run' '
	mkdir "$SPOOL/u/c" &&
	echo 5 >"$SPOOL/u/c/5." &&
	chj begin c1 >mode.out &&
	list_of c1 &&
	echo "$SPOOL/u/c/5." >expect &&
	test_cmp expect list.out &&
	echo 6 >"$SPOOL/u/c/6." &&
	chj commit c1 &&
	backup c1 &&
	echo "$SPOOL/u/c/6." >expect &&
	test_cmp expect list.out
'

expect_success 'deleted and recreated after begin: listed next run' '
	chj begin c1 >mode.out &&
	list_of c1 &&
	test_cmp /dev/null list.out &&
	rm "$SPOOL/u/c/5." &&
	chj sync &&
	echo again >"$SPOOL/u/c/5." &&
	chj commit c1 &&
	backup c1 &&
	echo "$SPOOL/u/c/5." >expect &&
	test_cmp expect list.out
'

expect_success 'daemon stops' '
	stop_daemon
'

test_done
