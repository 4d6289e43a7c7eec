#!/bin/bash
# t0107-many-files: thousands of files created quickly are all listed, each
# once: 5000 files in 50 directories that already exist (each file seen
# through its own events), 1000 in 50 new directories, then all of them
# written again.
. "$(dirname "$0")/test-lib.sh"

# run CONSUMER: begin, list -0 into list.out (one path per line), commit.
run() {
	chj begin "$1" >mode.out &&
	chj list "$1" -0 >list.raw &&
	tr '\0' '\n' <list.raw >list.out &&
	chj commit "$1"
}

test_eq() {
	[ "$2" -eq "$3" ] && return 0
	echo "$1: expected $2, got $3" >&2
	return 1
}

# make_files TOP N: 50 directories TOP/dNN with N files each, quickly
make_files() {
	perl -e '
		my ($top, $n) = @ARGV;
		-d $top or mkdir $top or die "mkdir $top: $!";
		for my $d (1 .. 50) {
			my $dir = sprintf("%s/d%02d", $top, $d);
			-d $dir or mkdir $dir or die "mkdir $dir: $!";
			for my $f (1 .. $n) {
				open(my $fh, ">", "$dir/$f.") or die "open: $!";
				print $fh "message $d $f\n";
				close $fh;
			}
		}
	' "$1" "$2"
}

# append_line LINE FILE...: appends LINE to each FILE, quickly
append_line() {
	perl -e '
		my $line = shift;
		for my $f (@ARGV) {
			open(my $fh, ">>", $f) or die "open $f: $!";
			print $fh "$line\n";
			close $fh;
		}
	' "$@"
}

# expect_tree TOP: the files below TOP, sorted, into expect
expect_tree() {
	find "$1" -type f | LC_ALL=C sort >expect
}

mkdir -p "$SPOOL/user"
for d in $(seq -w 1 50); do mkdir -p "$SPOOL/user/old/d$d"; done

expect_success 'start; empty first run' '
	start_daemon &&
	run c1 &&
	grep "^full: " mode.out &&
	test_cmp /dev/null list.out
'

expect_success '5000 files in 50 existing directories: all listed, exactly once' '
	make_files "$SPOOL/user/old" 100 &&
	run c1 &&
	test_eq "listed" 5000 "$(wc -l <list.out)" &&
	expect_tree "$SPOOL/user/old" &&
	test_eq "created" 5000 "$(wc -l <expect)" &&
	test_cmp expect list.out
'

expect_success '1000 files in 50 new directories: all listed, exactly once' '
	make_files "$SPOOL/user/new" 20 &&
	run c1 &&
	test_eq "listed" 1000 "$(wc -l <list.out)" &&
	expect_tree "$SPOOL/user/new" &&
	test_cmp expect list.out
'

expect_success 'all 6000 written again: all listed' '
	append_line more $(find "$SPOOL/user" -type f) &&
	run c1 &&
	expect_tree "$SPOOL/user" &&
	test_eq "listed" 6000 "$(wc -l <list.out)" &&
	test_cmp expect list.out
'

# More than a thousand rows are stat()ed on several threads while they are
# still being read: deletions, new files, a new directory and a file replaced
# by a directory in one window, a row count that is no multiple of the blocks
# the threads take.
expect_success 'a window of 2800 mixed rows: list and list --deleted exact' '
	find "$SPOOL/user/old" -type f | LC_ALL=C sort | head -n 1500 >deleted.expect &&
	xargs rm -f <deleted.expect &&
	append_line again $(find "$SPOOL/user/new" -type f) &&
	mkdir "$SPOOL/user/fresh" &&
	for i in $(seq 1 300); do echo "m $i" >"$SPOOL/user/fresh/$i."; done &&
	rm "$SPOOL/user/new/d01/1." &&
	mkdir "$SPOOL/user/new/d01/1." &&
	echo inside >"$SPOOL/user/new/d01/1./x" &&
	chj begin c1 >mode.out &&
	chj list c1 -0 | tr "\0" "\n" >list.out &&
	chj list c1 --deleted -0 | tr "\0" "\n" >deleted.out &&
	chj commit c1 &&
	find "$SPOOL/user/new" "$SPOOL/user/fresh" -type f | LC_ALL=C sort >expect &&
	test_eq "listed" 1300 "$(wc -l <list.out)" &&
	test_cmp expect list.out &&
	test_eq "deleted" 1500 "$(wc -l <deleted.out)" &&
	test_cmp deleted.expect deleted.out
'

expect_success 'a quiet run after the burst lists nothing' '
	run c1 &&
	test_cmp /dev/null list.out
'

expect_success 'the journal rows were pruned after the commits' '
	chj sync &&
	chj query >query.out &&
	test_eq "rows" 0 "$(grep -c "^[0-9]" query.out)"
'

expect_success 'daemon stops cleanly' '
	stop_daemon
'

test_done
