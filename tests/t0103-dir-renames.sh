#!/bin/bash
# t0103-dir-renames: renames and moves of directories and files. A directory
# renamed within the roots is listed whole under its new name and its old name
# is in --deleted; its watches follow it, so later changes are journaled under
# the new path. A directory moved in from outside is listed whole and watched;
# one moved out is in --deleted and no longer watched. File renames list the
# new name and put the old one in --deleted.
. "$(dirname "$0")/test-lib.sh"

U="$SPOOL/user"
OUT="$TRASH/outside"
SPOOL2="$TRASH/spool2"
mkdir -p "$SPOOL2"
write_config "root = $SPOOL2"

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

# files_under DIR...: every regular file below, sorted (into expect.files).
files_under() {
	find "$@" -type f | LC_ALL=C sort >expect.files
}

# test_eq WHAT EXPECTED ACTUAL: numbers equal, or say what differs.
test_eq() {
	[ "$2" -eq "$3" ] && return 0
	echo "$1: expected $2, got $3" >&2
	return 1
}

last_seq() {
	chj status | sed -n 's/^last seq: *\([0-9]*\).*/\1/p'
}

watches() {
	chj sync >/dev/null &&
	chj status | sed -n 's/^watches: *\([0-9]*\).*/\1/p'
}

# a small mailbox tree: DIR with 2 files, DIR/sub with 2, DIR/sub/deep with 1
make_tree() {
	mkdir -p "$1/sub/deep" &&
	echo 1 >"$1/1." &&
	echo 2 >"$1/2." &&
	echo 3 >"$1/sub/3." &&
	echo 4 >"$1/sub/4." &&
	echo 5 >"$1/sub/deep/5."
}

# exchange A B: renameat2(RENAME_EXCHANGE), atomically swapping two names
exchange() {
	python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.renameat2(-100, os.fsencode(sys.argv[1]), -100, os.fsencode(sys.argv[2]), 2) != 0:
    sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
' "$1" "$2"
}

mkdir -p "$U" "$OUT"
make_tree "$U/old"
make_tree "$U/a/x"
mkdir -p "$U/b"
make_tree "$U/out"
echo f >"$U/file-old"
echo target-old >"$U/target"
make_tree "$U/empty-target-src"
mkdir "$U/empty-target"

expect_success 'start; first full run' '
	start_daemon &&
	run c1 &&
	grep "^full: " mode.out &&
	files_under "$SPOOL" &&
	test_cmp expect.files list.out
'

expect_success 'directory renamed within the root: whole subtree under the new name' '
	mv "$U/old" "$U/new" &&
	run c1 &&
	files_under "$U/new" &&
	test $(wc -l <expect.files) -eq 5 &&
	test_cmp expect.files list.out &&
	grep -qxF "$U/old" deleted.out &&
	! grep -F "$U/new" deleted.out
'

expect_success 'later changes below the renamed directory carry the new path' '
	echo more >>"$U/new/sub/3." &&
	echo n >"$U/new/sub/deep/new." &&
	mkdir "$U/new/sub/deep/d2" &&
	echo d >"$U/new/sub/deep/d2/6." &&
	chmod 600 "$U/new/1." &&
	run c1 &&
	expect_lines list.out "$U/new/1." "$U/new/sub/3." "$U/new/sub/deep/d2/6." \
		"$U/new/sub/deep/new." &&
	expect_lines deleted.out &&
	chj query >query.out &&
	! grep -F "$U/old/" query.out
'

expect_success 'directory moved into another watched directory' '
	mv "$U/a/x" "$U/b/x" &&
	run c1 &&
	files_under "$U/b/x" &&
	test_cmp expect.files list.out &&
	grep -qxF "$U/a/x" deleted.out &&
	echo later >"$U/b/x/sub/deep/later." &&
	echo later >>"$U/b/x/2." &&
	run c1 &&
	expect_lines list.out "$U/b/x/2." "$U/b/x/sub/deep/later."
'

expect_success 'a directory renamed twice in one window: only the final name listed' '
	mv "$U/b/x" "$U/b/y" &&
	mv "$U/b/y" "$U/z" &&
	run c1 &&
	files_under "$U/z" &&
	test_cmp expect.files list.out &&
	grep -qxF "$U/b/x" deleted.out &&
	echo w >>"$U/z/sub/4." &&
	run c1 &&
	expect_lines list.out "$U/z/sub/4."
'

expect_success 'directory moved in from outside the root: all below listed' '
	make_tree "$OUT/incoming" &&
	mkdir -p "$OUT/incoming/sub/deep/deeper" &&
	echo 6 >"$OUT/incoming/sub/deep/deeper/6." &&
	before=$(watches) &&
	mv "$OUT/incoming" "$U/incoming" &&
	run c1 &&
	files_under "$U/incoming" &&
	test $(wc -l <expect.files) -eq 6 &&
	test_cmp expect.files list.out &&
	on_inotify test_eq watches $((before + 4)) "$(watches)"
'

expect_success 'later changes inside the moved-in directory are seen' '
	echo x >>"$U/incoming/sub/deep/deeper/6." &&
	echo y >"$U/incoming/sub/new." &&
	run c1 &&
	expect_lines list.out "$U/incoming/sub/deep/deeper/6." "$U/incoming/sub/new."
'

expect_success 'directory moved out of the root: old path in --deleted, unwatched' '
	before=$(watches) &&
	mv "$U/out" "$OUT/out" &&
	run c1 &&
	expect_lines list.out &&
	grep -qxF "$U/out" deleted.out &&
	on_inotify test_eq watches $((before - 3)) "$(watches)"
'

expect_success 'changes in the moved-out directory are not journaled' '
	seq0=$(last_seq) &&
	echo x >>"$OUT/out/1." &&
	echo y >"$OUT/out/sub/new." &&
	mkdir "$OUT/out/sub/deep/d" &&
	chmod 600 "$OUT/out/sub/deep/5." &&
	rm "$OUT/out/2." &&
	echo mark >"$U/marker" &&
	run c1 &&
	expect_lines list.out "$U/marker" &&
	expect_lines deleted.out &&
	chj query --since "$seq0" >query.out &&
	grep -F "$U/marker" query.out &&
	! grep -F "/out/" query.out
'

expect_success 'a new directory under the moved-out name is a new directory' '
	mkdir "$U/out" &&
	echo new >"$U/out/1." &&
	run c1 &&
	expect_lines list.out "$U/out/1." &&
	echo again >>"$OUT/out/1." &&
	echo again >>"$U/out/1." &&
	run c1 &&
	expect_lines list.out "$U/out/1."
'

expect_success 'file rename: new name listed, old name in --deleted' '
	mv "$U/file-old" "$U/file-new" &&
	run c1 &&
	expect_lines list.out "$U/file-new" &&
	expect_lines deleted.out "$U/file-old"
'

expect_success 'file moved into another directory and in from outside' '
	mv "$U/file-new" "$U/new/sub/file-moved" &&
	echo o >"$OUT/from-outside" &&
	mv "$OUT/from-outside" "$U/z/from-outside" &&
	run c1 &&
	expect_lines list.out "$U/new/sub/file-moved" "$U/z/from-outside" &&
	expect_lines deleted.out "$U/file-new"
'

expect_success 'file moved out of the root: only in --deleted' '
	mv "$U/z/from-outside" "$OUT/back-out" &&
	run c1 &&
	expect_lines list.out &&
	expect_lines deleted.out "$U/z/from-outside"
'

expect_success 'rename over an existing file: target listed, not deleted' '
	echo replacement >"$U/tmp-target" &&
	run c1 &&
	mv -f "$U/tmp-target" "$U/target" &&
	run c1 &&
	expect_lines list.out "$U/target" &&
	expect_lines deleted.out "$U/tmp-target" &&
	test "$(cat "$U/target")" = replacement
'

expect_success 'rename over an existing file in the same window as its creation' '
	echo second >"$U/tmp2" &&
	mv -f "$U/tmp2" "$U/target" &&
	run c1 &&
	expect_lines list.out "$U/target" &&
	! grep -qxF "$U/target" deleted.out
'

expect_success 'directory renamed over an existing empty directory' '
	mv -T "$U/empty-target-src" "$U/empty-target" &&
	run c1 &&
	files_under "$U/empty-target" &&
	test $(wc -l <expect.files) -eq 5 &&
	test_cmp expect.files list.out &&
	grep -qxF "$U/empty-target-src" deleted.out &&
	echo later >>"$U/empty-target/sub/deep/5." &&
	echo later >"$U/empty-target/6." &&
	run c1 &&
	expect_lines list.out "$U/empty-target/6." "$U/empty-target/sub/deep/5."
'

expect_success 'directory moved out and straight back in elsewhere: still watched' '
	make_tree "$U/roundtrip" &&
	run c1 &&
	before=$(watches) &&
	mv "$U/roundtrip" "$OUT/roundtrip" &&
	mv "$OUT/roundtrip" "$U/back" &&
	run c1 &&
	files_under "$U/back" &&
	test_cmp expect.files list.out &&
	grep -qxF "$U/roundtrip" deleted.out &&
	echo later >>"$U/back/sub/deep/5." &&
	echo later >"$U/back/new." &&
	run c1 &&
	expect_lines list.out "$U/back/new." "$U/back/sub/deep/5." &&
	on_inotify test_eq watches "$before" "$(watches)"
'

expect_success 'two directories swapped through a temporary name' '
	make_tree "$U/swap1" &&
	make_tree "$U/swap2" &&
	echo one >"$U/swap1/which" &&
	echo two >"$U/swap2/which" &&
	run c1 &&
	mv "$U/swap1" "$U/swaptmp" &&
	mv "$U/swap2" "$U/swap1" &&
	mv "$U/swaptmp" "$U/swap2" &&
	run c1 &&
	files_under "$U/swap1" "$U/swap2" &&
	test_cmp expect.files list.out &&
	test "$(cat "$U/swap1/which")" = two &&
	echo later >>"$U/swap1/sub/deep/5." &&
	echo later >"$U/swap2/sub/new." &&
	run c1 &&
	expect_lines list.out "$U/swap1/sub/deep/5." "$U/swap2/sub/new." &&
	chj query >query.out &&
	! grep -F swaptmp/ query.out
'

expect_success 'a directory moved below a sibling, then its parent renamed' '
	make_tree "$U/p" &&
	mkdir "$U/q" &&
	run c1 &&
	mv "$U/p" "$U/q/p" &&
	mv "$U/q" "$U/r" &&
	run c1 &&
	files_under "$U/r" &&
	test_cmp expect.files list.out &&
	echo later >>"$U/r/p/sub/deep/5." &&
	echo later >"$U/r/p/new." &&
	run c1 &&
	expect_lines list.out "$U/r/p/new." "$U/r/p/sub/deep/5."
'

expect_success 'many directories renamed at once: all listed, all still watched' '
	mkdir "$U/bulk" &&
	seq 1 300 | while read -r i; do mkdir "$U/bulk/d$i" && echo $i >"$U/bulk/d$i/f" || exit 1; done &&
	run c1 &&
	seq 1 300 | while read -r i; do mv "$U/bulk/d$i" "$U/bulk/e$i" || exit 1; done &&
	run c1 &&
	files_under "$U/bulk" &&
	test $(wc -l <expect.files) -eq 300 &&
	test_cmp expect.files list.out &&
	seq 1 300 | while read -r i; do echo more >>"$U/bulk/e$i/f" || exit 1; done &&
	run c1 &&
	test_cmp expect.files list.out
'

expect_success 'many directories moved out at once: none watched any more' '
	before=$(watches) &&
	mkdir "$OUT/bulk" &&
	seq 1 300 | while read -r i; do mv "$U/bulk/e$i" "$OUT/bulk/" || exit 1; done &&
	run c1 &&
	expect_lines list.out &&
	test $(grep -c "^$U/bulk/e" deleted.out) -eq 300 &&
	on_inotify test_eq watches $((before - 300)) "$(watches)" &&
	seq0=$(last_seq) &&
	seq 1 300 | while read -r i; do echo x >>"$OUT/bulk/e$i/f" || exit 1; done &&
	chj sync &&
	chj query --since "$seq0" >query.out &&
	! grep -F /bulk/ query.out
'

expect_success 'two directories exchanged atomically (RENAME_EXCHANGE)' '
	make_tree "$U/xa" &&
	make_tree "$U/xb" &&
	echo a >"$U/xa/which" &&
	echo b >"$U/xb/which" &&
	run c1 &&
	exchange "$U/xa" "$U/xb" &&
	test "$(cat "$U/xa/which")" = b &&
	run c1 &&
	files_under "$U/xa" "$U/xb" &&
	test_cmp expect.files list.out &&
	echo later >"$U/xa/only-in-xa" &&
	echo later >>"$U/xb/sub/deep/5." &&
	run c1 &&
	expect_lines list.out "$U/xa/only-in-xa" "$U/xb/sub/deep/5."
'

expect_success 'a file and a directory exchanged atomically' '
	echo f >"$U/xfile" &&
	make_tree "$U/xdir" &&
	run c1 &&
	exchange "$U/xfile" "$U/xdir" &&
	test -f "$U/xdir" &&
	run c1 &&
	{ echo "$U/xdir" && find "$U/xfile" -type f; } | LC_ALL=C sort >expect.files &&
	test_cmp expect.files list.out &&
	echo later >"$U/xfile/sub/new." &&
	run c1 &&
	expect_lines list.out "$U/xfile/sub/new."
'

expect_success 'a directory moved from one root to another: listed, watched there' '
	make_tree "$U/toroot2" &&
	run c1 &&
	mv "$U/toroot2" "$SPOOL2/fromroot1" &&
	run c1 &&
	files_under "$SPOOL2/fromroot1" &&
	test_cmp expect.files list.out &&
	grep -qxF "$U/toroot2" deleted.out &&
	echo later >"$SPOOL2/fromroot1/sub/deep/later" &&
	echo later >>"$SPOOL2/fromroot1/1." &&
	run c1 &&
	expect_lines list.out "$SPOOL2/fromroot1/1." "$SPOOL2/fromroot1/sub/deep/later" &&
	mv "$SPOOL2/fromroot1/sub" "$U/back-from-root2" &&
	run c1 &&
	files_under "$U/back-from-root2" &&
	test_cmp expect.files list.out &&
	echo later2 >>"$U/back-from-root2/deep/later" &&
	run c1 &&
	expect_lines list.out "$U/back-from-root2/deep/later"
'

expect_success_inotify 'the watch count matches the tree after all the moves' '
	find "$SPOOL" "$SPOOL2" -type d | wc -l >expect.n &&
	watches >actual.n &&
	on_inotify test_cmp expect.n actual.n
'

expect_success 'daemon stops cleanly' '
	stop_daemon
'

test_done
