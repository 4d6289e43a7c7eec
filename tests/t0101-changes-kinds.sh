#!/bin/bash
# t0101-changes-kinds: each kind of change a file can go through is listed
# (created, appended, truncated, chmod, touch -m, chown), deletions show in
# `list --deleted` and not in `list`, symlinks are listed but never followed,
# a FIFO is never listed; lists are sorted and hold every path once.
. "$(dirname "$0")/test-lib.sh"

D="$SPOOL/user/alice"
OUT="$TRASH/outside"

# run CONSUMER: begin; list -0 into list.out and list --deleted -0 into
# deleted.out (one path per line); the plain lists must be sorted and unique
# (LC_ALL=C sort -u leaves them as they are); commit.
run() {
	chj begin "$1" >mode.out &&
	chj list "$1" -0 >list.raw &&
	chj list "$1" --deleted -0 >deleted.raw &&
	chj list "$1" >plain.out &&
	chj list "$1" --deleted >plain-deleted.out &&
	tr '\0' '\n' <list.raw >list.out &&
	tr '\0' '\n' <deleted.raw >deleted.out &&
	test_cmp list.out plain.out &&
	test_cmp deleted.out plain-deleted.out &&
	LC_ALL=C sort -u plain.out >sorted.out &&
	test_cmp sorted.out plain.out &&
	LC_ALL=C sort -u plain-deleted.out >sorted.out &&
	test_cmp sorted.out plain-deleted.out &&
	chj commit "$1"
}

# expect_lines FILE LINE...: FILE holds exactly these lines (given sorted).
expect_lines() {
	_el_file=$1
	shift
	if [ $# -eq 0 ]; then
		: >expect
	else
		printf '%s\n' "$@" >expect
	fi
	test_cmp expect "$_el_file"
}

mkdir -p "$D" "$OUT/sub"
for f in append trunc chmod touchm chown delme keep; do
	echo "old $f" >"$D/$f"
done
mkdir -p "$D/gone/deeper"
echo x >"$D/gone/x"
echo y >"$D/gone/deeper/y"
echo outside >"$OUT/o1"
echo outside >"$OUT/sub/o2"

expect_success 'start; first run is full, second lists nothing' '
	start_daemon &&
	run c1 &&
	grep "^full: " mode.out &&
	expect_lines list.out "$D/append" "$D/chmod" "$D/chown" "$D/delme" \
		"$D/gone/deeper/y" "$D/gone/x" "$D/keep" "$D/touchm" "$D/trunc" &&
	expect_lines deleted.out &&
	run c1 &&
	grep -x incremental mode.out &&
	expect_lines list.out &&
	expect_lines deleted.out
'

expect_success 'a created file is listed' '
	echo new >"$D/created" &&
	run c1 &&
	expect_lines list.out "$D/created" &&
	expect_lines deleted.out
'

expect_success 'an empty file created with touch is listed' '
	touch "$D/empty" &&
	run c1 &&
	expect_lines list.out "$D/empty"
'

expect_success 'an appended file is listed' '
	echo more >>"$D/append" &&
	run c1 &&
	expect_lines list.out "$D/append"
'

expect_success 'a truncated file is listed (O_TRUNC and truncate -s)' '
	: >"$D/trunc" &&
	run c1 &&
	expect_lines list.out "$D/trunc" &&
	echo again >"$D/keep" &&
	run c1 &&
	truncate -s 2 "$D/keep" &&
	run c1 &&
	expect_lines list.out "$D/keep"
'

expect_success 'a write without close (still open) is listed; its close again' '
	exec 9>>"$D/append" &&
	echo held >&9 &&
	run c1 &&
	exec 9>&- &&
	expect_lines list.out "$D/append" &&
	run c1 &&
	expect_lines list.out "$D/append"
'

expect_success 'chmod alone is listed' '
	chmod 600 "$D/chmod" &&
	run c1 &&
	expect_lines list.out "$D/chmod"
'

expect_success 'touch -m (mtime only) is listed' '
	touch -m -d "2001-02-03 04:05:06" "$D/touchm" &&
	run c1 &&
	expect_lines list.out "$D/touchm"
'

expect_success 'chown is listed' '
	if [ "$(id -u)" = 0 ]; then
		chown 1:1 "$D/chown"
	else
		chgrp "$(id -g)" "$D/chown"
	fi &&
	run c1 &&
	expect_lines list.out "$D/chown"
'

expect_success 'truncate(2) by path, without an open file, is listed' '
	echo long-content >"$D/bypath" &&
	run c1 &&
	python3 -c "import os, sys; os.truncate(sys.argv[1], 3)" "$D/bypath" &&
	run c1 &&
	expect_lines list.out "$D/bypath"
'

expect_success 'fallocate (size grows, no write) is listed' '
	fallocate -l 65536 "$D/bypath" &&
	run c1 &&
	expect_lines list.out "$D/bypath"
'

expect_success 'an extended attribute change alone is listed' '
	python3 -c "import os, sys; os.setxattr(sys.argv[1], \"user.chj\", b\"1\")" "$D/bypath" ||
		skip_xattr=1
	if [ -z "${skip_xattr:-}" ]; then
		run c1 &&
		expect_lines list.out "$D/bypath"
	fi
'

expect_success 'a deleted file is in --deleted, not in the list' '
	rm "$D/delme" &&
	run c1 &&
	expect_lines list.out &&
	expect_lines deleted.out "$D/delme"
'

expect_success 'a deleted directory and the files in it are in --deleted' '
	rm -r "$D/gone" &&
	run c1 &&
	expect_lines list.out &&
	grep -qxF "$D/gone" deleted.out &&
	grep -qxF "$D/gone/x" deleted.out &&
	grep -qxF "$D/gone/deeper/y" deleted.out &&
	! grep -v "^$D/gone\(/\|$\)" deleted.out ||
	{ echo "deleted.out:"; cat deleted.out; chj query; false; }
'

expect_success 'a directory deleted and recreated in one window: new files listed' '
	mkdir -p "$D/redo/sub" &&
	echo old >"$D/redo/old" &&
	echo old >"$D/redo/sub/old2" &&
	run c1 &&
	rm -r "$D/redo" &&
	mkdir -p "$D/redo/sub" &&
	echo new >"$D/redo/new" &&
	echo new >"$D/redo/sub/new2" &&
	run c1 &&
	expect_lines list.out "$D/redo/new" "$D/redo/sub/new2" &&
	grep -qxF "$D/redo/old" deleted.out &&
	grep -qxF "$D/redo/sub/old2" deleted.out &&
	! grep -qxF "$D/redo" deleted.out &&
	echo later >"$D/redo/sub/later" &&
	run c1 &&
	expect_lines list.out "$D/redo/sub/later"
'

expect_success 'a file replaced by a directory and a directory by a file' '
	echo f >"$D/was-file" &&
	mkdir "$D/was-dir" &&
	echo x >"$D/was-dir/x" &&
	run c1 &&
	rm "$D/was-file" &&
	mkdir "$D/was-file" &&
	echo y >"$D/was-file/y" &&
	rm -r "$D/was-dir" &&
	echo z >"$D/was-dir" &&
	run c1 &&
	expect_lines list.out "$D/was-dir" "$D/was-file/y" &&
	grep -qxF "$D/was-dir/x" deleted.out &&
	echo later >>"$D/was-file/y" &&
	run c1 &&
	expect_lines list.out "$D/was-file/y"
'

expect_success 'a symlink is listed itself and not followed' '
	ln -s "$OUT" "$D/link-to-dir" &&
	ln -s "$OUT/o1" "$D/link-to-file" &&
	ln -s /nonexistent/target "$D/dangling" &&
	run c1 &&
	expect_lines list.out "$D/dangling" "$D/link-to-dir" "$D/link-to-file" &&
	! grep -F "$OUT" list.out
'

expect_success 'a symlink inside a new directory is not followed either' '
	mkdir "$D/newdir" &&
	ln -s "$OUT" "$D/newdir/l" &&
	ln -s "$D" "$D/newdir/loop" &&
	echo f >"$D/newdir/f" &&
	run c1 &&
	expect_lines list.out "$D/newdir/f" "$D/newdir/l" "$D/newdir/loop"
'

expect_success 'a FIFO is never listed, a socket neither' '
	mkfifo "$D/fifo" &&
	mkdir "$D/fifodir" &&
	mkfifo "$D/fifodir/p" &&
	{ python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" \
		"$D/fifodir/sock" 2>/dev/null || :; } &&
	echo f >"$D/fifodir/real" &&
	run c1 &&
	expect_lines list.out "$D/fifodir/real" &&
	chmod 600 "$D/fifo" &&
	run c1 &&
	expect_lines list.out
'

expect_success 'every kind at once: each path listed exactly once, sorted' '
	echo 1 >"$D/z-new" &&
	echo 2 >>"$D/z-new" &&
	chmod 640 "$D/z-new" &&
	echo 3 >>"$D/append" &&
	: >"$D/trunc" &&
	echo 4 >>"$D/append" &&
	chmod 644 "$D/chmod" &&
	touch -m "$D/touchm" &&
	touch -m "$D/touchm" &&
	echo 5 >"$D/A-upper" &&
	echo 6 >"$D/tmp-gone" &&
	rm "$D/tmp-gone" &&
	rm "$D/created" &&
	mkdir -p "$D/sub/dir" &&
	echo 7 >"$D/sub/dir/f" &&
	echo 8 >>"$D/sub/dir/f" &&
	run c1 &&
	expect_lines list.out "$D/A-upper" "$D/append" "$D/chmod" "$D/sub/dir/f" \
		"$D/touchm" "$D/trunc" "$D/z-new" &&
	grep -qxF "$D/created" deleted.out &&
	! grep -qxF "$D/z-new" deleted.out &&
	! grep -qxF "$D/append" deleted.out
'

expect_success 'a second consumer sees the same changes independently' '
	run c2 &&
	grep "^full: " mode.out &&
	echo new >"$D/for-both" &&
	run c1 &&
	expect_lines list.out "$D/for-both" &&
	run c2 &&
	expect_lines list.out "$D/for-both"
'

expect_success 'a file deleted and recreated is listed, not only deleted' '
	rm "$D/keep" &&
	echo reborn >"$D/keep" &&
	run c1 &&
	expect_lines list.out "$D/keep" &&
	! grep -qxF "$D/keep" deleted.out
'

expect_success 'daemon stops cleanly' '
	stop_daemon
'

test_done
