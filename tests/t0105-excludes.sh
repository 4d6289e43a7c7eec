#!/bin/bash
# t0105-excludes: paths matching an exclude pattern are never listed, never in
# --deleted, never journaled (no query rows), and excluded directories are
# not watched. A file renamed from an excluded name to a real one (how Cyrus
# delivers: write to a temporary name, rename) is listed.
. "$(dirname "$0")/test-lib.sh"

write_config 'exclude = \.tmp$' 'exclude = /skipdir$'
U="$SPOOL/user"

# run CONSUMER: begin; list -0 into list.out, list --deleted -0 into
# deleted.out (one path per line); commit.
run() {
	chj begin "$1" >mode.out &&
	chj list "$1" -0 >list.raw &&
	chj list "$1" --deleted -0 >deleted.raw &&
	tr '\0' '\n' <list.raw >list.out &&
	tr '\0' '\n' <deleted.raw >deleted.out &&
	chj commit "$1"
}

# expect_lines FILE LINE...: FILE holds exactly these lines (sorted).
expect_lines() {
	_el_file=$1
	shift
	if [ $# -eq 0 ]; then
		: >expect
	else
		printf '%s\n' "$@" | LC_ALL=C sort >expect
	fi
	test_cmp expect "$_el_file"
}

test_eq() {
	[ "$2" -eq "$3" ] && return 0
	echo "$1: expected $2, got $3" >&2
	return 1
}

# none_excluded FILE: FILE names no excluded path (says which otherwise).
none_excluded() {
	if grep -e '\.tmp$' -e '/skipdir$' -e '/skipdir/' "$1" >bad; then
		echo "excluded paths in $1:" >&2
		cat bad >&2
		return 1
	fi
	return 0
}

# watched_dirs: the directories that should be watched: all but those at or
# below a skipdir.
watched_dirs() {
	find "$SPOOL" -type d | grep -v '/skipdir\(/\|$\)' | wc -l
}

watches() {
	chj sync >/dev/null &&
	chj status | sed -n 's/^watches: *\([0-9]*\).*/\1/p'
}

# all_files: every file below the spool but the excluded ones, sorted.
all_files() {
	find "$SPOOL" -type f | grep -v -e '\.tmp$' -e '/skipdir/' | LC_ALL=C sort
}

mkdir -p "$U/a/skipdir/inner/deeper" "$U/b" "$U/a/skipdir.not" "$U/a/not-skipdir"
echo 1 >"$U/a/1."
echo t >"$U/a/old.tmp"
echo s >"$U/a/skipdir/s1"
echo s >"$U/a/skipdir/inner/deeper/s2"
echo n >"$U/a/skipdir.not/n1"
echo n >"$U/a/not-skipdir/n2"
echo n >"$U/a/x.tmp.real"
echo n >"$U/b/tmp"

expect_success 'start; the full run leaves excluded files out' '
	start_daemon &&
	run c1 &&
	grep "^full: " mode.out &&
	expect_lines list.out "$U/a/1." "$U/a/not-skipdir/n2" "$U/a/skipdir.not/n1" \
		"$U/a/x.tmp.real" "$U/b/tmp"
'

expect_success 'excluded directories are not watched' '
	on_inotify test_eq watches "$(watched_dirs)" "$(watches)" &&
	test_eq "watched dirs" 6 "$(watched_dirs)"
'

expect_success 'created and written excluded files are never listed nor journaled' '
	echo new >"$U/a/new.tmp" &&
	echo more >>"$U/a/old.tmp" &&
	chmod 600 "$U/a/old.tmp" &&
	echo s >"$U/a/skipdir/s3" &&
	echo more >>"$U/a/skipdir/s1" &&
	echo more >>"$U/a/skipdir/inner/deeper/s2" &&
	mkdir "$U/a/skipdir/inner/newdir" &&
	echo s >"$U/a/skipdir/inner/newdir/s4" &&
	echo real >"$U/b/real" &&
	run c1 &&
	expect_lines list.out "$U/b/real" &&
	expect_lines deleted.out &&
	chj query >query.out &&
	grep -F "$U/b/real" query.out &&
	none_excluded query.out
'

expect_success 'deleted excluded files are not in --deleted' '
	rm "$U/a/new.tmp" "$U/a/skipdir/s3" "$U/a/skipdir/inner/deeper/s2" &&
	rm "$U/b/real" &&
	run c1 &&
	expect_lines list.out &&
	expect_lines deleted.out "$U/b/real" &&
	chj query >query.out &&
	none_excluded query.out
'

expect_success 'a new excluded directory is not listed, not watched' '
	before=$(watches) &&
	mkdir -p "$U/b/c/skipdir/x/y" &&
	echo s >"$U/b/c/skipdir/f" &&
	echo s >"$U/b/c/skipdir/x/y/f" &&
	echo c >"$U/b/c/f" &&
	run c1 &&
	expect_lines list.out "$U/b/c/f" &&
	on_inotify test_eq watches $((before + 1)) "$(watches)" &&
	echo more >>"$U/b/c/skipdir/x/y/f" &&
	echo new >"$U/b/c/skipdir/x/new" &&
	run c1 &&
	expect_lines list.out &&
	chj query >query.out &&
	none_excluded query.out
'

expect_success 'temporary file renamed to its real name (Cyrus delivery) is listed' '
	echo msg >"$U/b/2.tmp" &&
	mv "$U/b/2.tmp" "$U/b/2." &&
	run c1 &&
	expect_lines list.out "$U/b/2." &&
	expect_lines deleted.out
'

expect_success 'a real file renamed to an excluded name: only its old name, deleted' '
	mv "$U/b/2." "$U/b/2.tmp" &&
	run c1 &&
	expect_lines list.out &&
	expect_lines deleted.out "$U/b/2."
'

expect_success 'a file moved into an excluded directory: old name deleted only' '
	echo m >"$U/b/moving" &&
	run c1 &&
	mv "$U/b/moving" "$U/a/skipdir/moving" &&
	run c1 &&
	expect_lines list.out &&
	expect_lines deleted.out "$U/b/moving"
'

expect_success 'a directory renamed to an excluded name: deleted, no longer watched' '
	mkdir -p "$U/b/tohide/sub" &&
	echo h >"$U/b/tohide/sub/h" &&
	run c1 &&
	before=$(watches) &&
	mv "$U/b/tohide" "$U/b/skipdir" &&
	run c1 &&
	expect_lines list.out &&
	expect_lines deleted.out "$U/b/tohide" &&
	on_inotify test_eq watches $((before - 2)) "$(watches)" &&
	echo later >>"$U/b/skipdir/sub/h" &&
	echo later >"$U/b/skipdir/sub/new" &&
	run c1 &&
	expect_lines list.out &&
	chj query >query.out &&
	none_excluded query.out &&
	! grep -F tohide/ query.out
'

expect_success 'an excluded directory renamed to a real name: all below listed, watched' '
	before=$(watches) &&
	mv "$U/a/skipdir" "$U/a/unhidden" &&
	run c1 &&
	find "$U/a/unhidden" -type f | LC_ALL=C sort >expect &&
	test $(wc -l <expect) -eq 3 &&
	test_cmp expect list.out &&
	on_inotify test_eq watches $((before + 4)) "$(watches)" &&
	echo later >>"$U/a/unhidden/inner/newdir/s4" &&
	run c1 &&
	expect_lines list.out "$U/a/unhidden/inner/newdir/s4"
'

expect_success 'a file moved or linked out of an excluded directory is listed' '
	mkdir -p "$U/b/skipdir" &&
	echo a >"$U/b/skipdir/out1" &&
	echo b >"$U/b/skipdir/out2" &&
	echo c >"$U/b/skipdir/x.tmp" &&
	run c1 &&
	expect_lines list.out &&
	mv "$U/b/skipdir/out1" "$U/b/out1" &&
	ln "$U/b/skipdir/out2" "$U/b/out2" &&
	mv "$U/b/skipdir/x.tmp" "$U/b/x-real" &&
	run c1 &&
	expect_lines list.out "$U/b/out1" "$U/b/out2" "$U/b/x-real" &&
	expect_lines deleted.out
'

expect_success 'a full run of a new consumer matches the tree minus excludes' '
	run c2 &&
	grep "^full: " mode.out &&
	all_files >expect &&
	test_cmp expect list.out
'

expect_success 'the watch count still matches the tree minus excluded dirs' '
	on_inotify test_eq watches "$(watched_dirs)" "$(watches)"
'

expect_success 'daemon stops cleanly' '
	stop_daemon
'

test_done
