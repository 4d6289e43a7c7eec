#!/bin/bash
# t0120-change-matrix: every kind of change a file under a root can go
# through, measured on the backend of this run (`make check` runs t01* on
# inotify, then on fanotify). One scenario per kind, each on a fresh spool,
# journal and daemon: the files are made, the daemon started, a baseline
# run committed, the change made; then the first run begun after it must
# list the changed path (a deletion: --deleted must hold the path or a
# directory above it). "listed late" kinds also check the run after the
# event that comes late (a close, a detach).
#
# A change the current code misses is an expect_failure (a known breakage,
# with a comment saying why and what would see it): the fix turns its line
# into an expect_success, since test-lib fails the script when a known
# breakage vanishes. README's "What is seen, by kind of change and backend"
# is this test's table.
. "$(dirname "$0")/test-lib.sh"

PROBE="$CHJ_BUILDDIR/tests/probe/change-probe"
[ -x "$PROBE" ] || skip_all "no $PROBE (run make check)"

D="$SPOOL/d"          # the directory most scenarios change
OUT="$TRASH/outside"  # outside the root, on the same file system
CTL="$TRASH/ctl"      # change-probe handshakes (ready.N, go.N)
MNT="$TRASH/mnt"      # mount points and images outside the root
IS_ROOT=
[ "$(id -u)" = 0 ] && IS_ROOT=1

HOLDER_PID=      # a change-probe holding a descriptor or mapping
MOUNTS=          # our mounts, one a line, unmounted last first
LOOPS=           # our loop devices
kind_skip=       # why the scenario's change cannot be made here
kind_ok=         # the scenario's change was made and measured
test_cleanup_extra='holder_kill; unmount_all'

# holder STEP...: change-probe -c $CTL STEP... in the background.
holder() {
	rm -f "$CTL"/ready.* "$CTL"/go.*
	"$PROBE" -c "$CTL" "$@" >"$TRASH/holder.out" 2>&1 &
	HOLDER_PID=$!
}

# holder_at N: waits until the holder has made the steps before its Nth sync
# (fails, or skips the kind on exit status 77, if it exited instead).
holder_at() {
	while [ ! -e "$CTL/ready.$1" ]; do
		if ! kill -0 "$HOLDER_PID" 2>/dev/null; then
			holder_end
			return 1
		fi
		sleep 0.01
	done
}

# holder_go N: lets the holder go past its Nth sync.
holder_go() {
	: >"$CTL/go.$1"
}

# holder_end: waits for the holder; its exit status (77: the kind is skipped).
holder_end() {
	[ -n "$HOLDER_PID" ] || return 0
	wait "$HOLDER_PID"
	_he_rc=$?
	HOLDER_PID=
	[ "$_he_rc" -eq 77 ] && skip_kind "$(cat "$TRASH/holder.out")"
	[ "$_he_rc" -eq 0 ] || { cat "$TRASH/holder.out"; return 1; }
}

holder_kill() {
	[ -n "$HOLDER_PID" ] || return 0
	kill "$HOLDER_PID" 2>/dev/null
	wait "$HOLDER_PID" 2>/dev/null
	HOLDER_PID=
}

# skip_kind REASON: the change cannot be made here; fails, to end the chain
# of the change's body (change() then reports the kind as skipped).
skip_kind() {
	kind_skip=$1
	return 1
}

need_root() {
	[ -n "$IS_ROOT" ] || skip_kind "needs root"
}

# mount_at DIR MOUNT-ARGS...: mount, remembered for unmount_all.
mount_at() {
	_ma_dir=$1
	shift
	mount "$@" "$_ma_dir" || return 1
	MOUNTS="$MOUNTS$_ma_dir
"
}

# unmount DIR: one of our mounts (lazily when busy: the fanotify daemon
# keeps a descriptor on every file system it marks).
unmount() {
	umount "$1" 2>/dev/null || umount -l "$1" || return 1
	MOUNTS=$(printf '%s' "$MOUNTS" | grep -vxF -- "$1")
	[ -z "$MOUNTS" ] || MOUNTS="$MOUNTS
"
}

unmount_all() {
	printf '%s' "$MOUNTS" | tac | while IFS= read -r _m; do
		[ -n "$_m" ] && { umount "$_m" 2>/dev/null || umount -l "$_m"; }
	done
	MOUNTS=
	for _l in $LOOPS; do
		losetup -d "$_l" 2>/dev/null
	done
	LOOPS=
}

# loop_attach FILE: attaches FILE to a free loop device, named in LOOP.
loop_attach() {
	command -v losetup >/dev/null || { skip_kind "no losetup"; return 1; }
	LOOP=$(losetup -f --show "$1") || { skip_kind "losetup failed"; return 1; }
	LOOPS="$LOOPS $LOOP"
}

# loop_detach DEV
loop_detach() {
	losetup -d "$1" || return 1
	LOOPS=$(echo "$LOOPS" | tr ' ' '\n' | grep -vxF -- "$1" | tr '\n' ' ')
}

# ext4_image IMG SRCDIR [OLD]: an ext4 image holding SRCDIR's files; with OLD,
# every inode's ctime and mtime set to 2001 (files that existed long before
# the daemon's last flush, as on a disk mounted after a downtime).
ext4_image() {
	command -v mkfs.ext4 >/dev/null || { skip_kind "no mkfs.ext4"; return 1; }
	rm -f "$1" && truncate -s 16M "$1" &&
	mkfs.ext4 -q -F -d "$2" "$1" || return 1
	[ -n "${3:-}" ] || return 0
	command -v debugfs >/dev/null || { skip_kind "no debugfs (e2fsprogs)"; return 1; }
	(cd "$2" && find . -mindepth 1 -printf '/%P\n'; echo /; echo /lost+found) |
	while IFS= read -r _p; do
		echo "set_inode_field \"$_p\" ctime 20010101000000"
		echo "set_inode_field \"$_p\" mtime 20010101000000"
	done >"$TRASH/debugfs.cmd" &&
	debugfs -w -f "$TRASH/debugfs.cmd" "$1" >/dev/null 2>&1
}

# scenario: a fresh spool, journal and configuration, no daemon, no mount.
scenario() {
	stop_daemon || return 1
	holder_kill
	unmount_all
	rm -rf --one-file-system "$SPOOL" "$STATE" "$OUT" "$CTL" "$MNT" &&
	mkdir -p "$SPOOL" "$STATE" "$OUT" "$CTL" "$MNT" &&
	write_config &&
	kind_skip= &&
	kind_ok=
}

# baseline: the daemon, and a first run committed.
baseline() {
	start_daemon &&
	chj begin c >mode.out &&
	chj list c -0 >/dev/null &&
	chj commit c
}

# measure: the run after the change: begin (must be incremental), list -0
# into list.out and list --deleted -0 into deleted.out (one path a line; their
# exit status in list.rc and deleted.rc, stderr in list.err and deleted.err);
# commit, or abort when a list failed.
measure() {
	chj begin c >mode.out &&
	grep -qx incremental mode.out || { cat mode.out; return 1; }
	chj list c -0 >list.raw 2>list.err
	echo $? >list.rc
	chj list c --deleted -0 >deleted.raw 2>deleted.err
	echo $? >deleted.rc
	chj list c --reconcile -0 >reconcile.raw 2>reconcile.err
	echo $? >reconcile.rc
	tr '\0' '\n' <list.raw >list.out &&
	tr '\0' '\n' <deleted.raw >deleted.out &&
	tr '\0' '\n' <reconcile.raw >reconcile.out || return 1
	if [ "$(cat list.rc)" -eq 0 ] && [ "$(cat deleted.rc)" -eq 0 ] &&
	   [ "$(cat reconcile.rc)" -eq 0 ]; then
		chj commit c
	else
		chj abort c
	fi && kind_ok=1
}

# show_run: what the run listed and what the journal holds (on a failure).
show_run() {
	echo "--- list (status $(cat list.rc)):"
	cat list.out list.err
	echo "--- deleted (status $(cat deleted.rc)):"
	cat deleted.out deleted.err
	echo "--- journal:"
	chj query 2>&1 | tail -n 20
}

# listed PATH...: list succeeded and holds each PATH.
listed() {
	[ "$(cat list.rc)" -eq 0 ] || { echo "list failed"; show_run; return 1; }
	for _l in "$@"; do
		grep -qxF -- "$_l" list.out || { echo "not listed: $_l"; show_run; return 1; }
	done
}

# gone PATH...: each PATH (gone now) is in list --deleted or below a path of
# it, or its nearest existing directory is in list --reconcile: the promise
# the two lists keep together for a consumer (a mirror reconciles those
# directories one level).
gone() {
	[ "$(cat deleted.rc)" -eq 0 ] && [ "$(cat reconcile.rc)" -eq 0 ] ||
		{ echo "list --deleted or --reconcile failed"; show_run; return 1; }
	for _d in "$@"; do
		_p=$_d
		until grep -qxF -- "$_p" deleted.out; do
			_p=${_p%/*}
			case $_p in
			"$SPOOL"|"$SPOOL"/*) ;;
			*) _p=; break ;;
			esac
		done
		[ -n "$_p" ] && continue
		_p=${_d%/*}
		while [ ! -d "$_p" ] || [ -L "$_p" ]; do _p=${_p%/*}; done
		grep -qxF -- "$_p" reconcile.out ||
			{ echo "gone, not covered: $_d (nearest directory $_p not to reconcile)"; show_run; return 1; }
	done
}

# deleted PATH...: list --deleted succeeded and holds each PATH or a
# directory above it.
deleted() {
	[ "$(cat deleted.rc)" -eq 0 ] || { echo "list --deleted failed"; show_run; return 1; }
	for _d in "$@"; do
		_p=$_d
		until grep -qxF -- "$_p" deleted.out; do
			_p=${_p%/*}
			case $_p in
			"$SPOOL"|"$SPOOL"/*) ;;
			*) echo "not in --deleted: $_d"; show_run; return 1 ;;
			esac
		done
	done
}

# journaled PATH: the journal holds a row for PATH.
journaled() {
	chj query | cut -f4- | grep -qxF -- "$1"
}

# change KIND SETUP CHANGE: a scenario: SETUP (before the daemon starts), the
# baseline, CHANGE, the measuring run. SETUP or CHANGE call skip_kind where
# the change cannot be made here.
change() {
	expect_success "$1: change made" "scenario && {
		$2
	} && baseline && {
		$3
	} && measure || test -n \"\$kind_skip\""
	[ -z "$kind_skip" ] || echo "# skip: $1 ($kind_skip)"
}

# then_ KIND TITLE BODY: a further step of the scenario (a late event, a
# second change), ending with its own measure.
then_() {
	[ -n "$kind_skip" ] && return 0
	_th_ok=$kind_ok
	kind_ok=
	expect_success "$1: $2" "test -n \"$_th_ok\" && { $3
	} && measure"
}

# matrix KNOWN TITLE CHECK: the verdict on the last measure: an
# expect_failure on the backends named in KNOWN (the current code misses
# the change there; "-" for none), an expect_success on the others.
matrix() {
	_mx_known=$1
	shift
	if [ -n "$kind_skip" ]; then
		test_skip "$1" "$kind_skip"
		return 0
	fi
	if [ -z "$kind_ok" ]; then
		expect_success "$1" 'echo "the change was not made or not measured"; false'
		return 0
	fi
	case " $_mx_known " in
	*" $CHJ_BACKEND "*) expect_failure "$@" ;;
	*) expect_success "$@" ;;
	esac
}

# ---- contents and metadata ----

change 'create a file' 'mkdir -p "$D"' 'echo new >"$D/new"'
matrix - 'create a file: listed' 'listed "$D/new"'

change 'append (write)' 'mkdir -p "$D" && echo old >"$D/f"' 'echo more >>"$D/f"'
matrix - 'append (write): listed' 'listed "$D/f"'

change 'overwrite in place (pwrite, same size)' \
	'mkdir -p "$D" && printf 0123456789 >"$D/f"' \
	'"$PROBE" open "$D/f" pwrite AB close'
matrix - 'overwrite in place (pwrite, same size): listed' 'listed "$D/f"'

# the writer still holds the file open when the run begins: IN_MODIFY /
# FAN_MODIFY came with the write
change 'write(2), descriptor open across begin' \
	'mkdir -p "$D" && echo old >"$D/f"' \
	'holder open "$D/f" write more sync close && holder_at 1'
matrix - 'write(2), descriptor open across begin: listed' 'listed "$D/f"'
then_ 'write(2), descriptor open across begin' 'the writer closes' 'holder_go 1 && holder_end'

change 'O_DIRECT write' \
	'mkdir -p "$D" && head -c 8192 /dev/zero >"$D/f"' \
	'dd if=/dev/urandom of="$D/f" bs=4096 count=1 oflag=direct conv=notrunc status=none 2>dd.err ||
		skip_kind "O_DIRECT refused here: $(cat dd.err)"'
matrix - 'O_DIRECT write: listed' 'listed "$D/f"'

change 'truncate' 'mkdir -p "$D" && echo long-content >"$D/f"' 'truncate -s 2 "$D/f"'
matrix - 'truncate: listed' 'listed "$D/f"'

change 'fallocate (size grows)' 'mkdir -p "$D" && echo x >"$D/f"' \
	'fallocate -l 65536 "$D/f" 2>fa.err || skip_kind "fallocate: $(cat fa.err)"'
matrix - 'fallocate (size grows): listed' 'listed "$D/f"'

change 'fallocate --punch-hole (data zeroed, size kept)' \
	'mkdir -p "$D" && head -c 16384 /dev/urandom >"$D/f"' \
	'fallocate -p -o 0 -l 4096 "$D/f" 2>fa.err || skip_kind "punch hole: $(cat fa.err)"'
matrix - 'fallocate --punch-hole (data zeroed, size kept): listed' 'listed "$D/f"'

change 'chmod' 'mkdir -p "$D" && echo x >"$D/f"' 'chmod 600 "$D/f"'
matrix - 'chmod: listed' 'listed "$D/f"'

change 'chown' 'mkdir -p "$D" && echo x >"$D/f"' \
	'if [ -n "$IS_ROOT" ]; then chown 1:1 "$D/f"; else chgrp "$(id -g)" "$D/f"; fi'
matrix - 'chown: listed' 'listed "$D/f"'

change 'utime (touch -d: times only)' 'mkdir -p "$D" && echo x >"$D/f"' \
	'touch -m -d "2001-02-03 04:05:06" "$D/f"'
matrix - 'utime (touch -d: times only): listed' 'listed "$D/f"'

change 'setxattr' 'mkdir -p "$D" && echo x >"$D/f"' \
	'python3 -c "import os, sys; os.setxattr(sys.argv[1], \"user.chj\", b\"1\")" "$D/f" 2>xa.err ||
		skip_kind "setxattr: $(tail -n 1 xa.err)"'
matrix - 'setxattr: listed' 'listed "$D/f"'

# [issue: chattr]
# FS_IOC_SETFLAGS changes the inode's flags and ctime, and the kernel sends
# no fsnotify event for it (vfs_fileattr_set() has no hook; measured on
# 6.18: neither IN_ATTRIB nor FAN_ATTRIB): nothing but a ctime walk would
# see it.
change 'chattr +i then -i (inode flags only)' 'mkdir -p "$D" && echo x >"$D/f"' \
	'{ chattr +i "$D/f" 2>ch.err || skip_kind "chattr: $(cat ch.err)"; } &&
	chattr -i "$D/f"'
matrix 'inotify fanotify' 'chattr +i then -i (inode flags only): listed' 'listed "$D/f"'

# ---- names ----

change 'rename a file' 'mkdir -p "$D" && echo x >"$D/f"' 'mv "$D/f" "$D/g"'
matrix - 'rename a file: new name listed' 'listed "$D/g"'
matrix - 'rename a file: old name in --deleted' 'deleted "$D/f"'

change 'rename over an existing file' 'mkdir -p "$D" && echo x >"$D/f" && echo y >"$D/g"' \
	'mv -f "$D/f" "$D/g"'
matrix - 'rename over an existing file: target listed' 'listed "$D/g"'
matrix - 'rename over an existing file: source in --deleted' 'deleted "$D/f"'

change 'rename a directory' 'mkdir -p "$D/sub/deep" && echo x >"$D/sub/x" && echo y >"$D/sub/deep/y"' \
	'mv "$D/sub" "$D/sub2"'
matrix - 'rename a directory: files under the new name listed' 'listed "$D/sub2/x" "$D/sub2/deep/y"'
matrix - 'rename a directory: old paths in --deleted' 'deleted "$D/sub/x" "$D/sub/deep/y"'

change 'a symlink replaced (ln -sfn)' 'mkdir -p "$D" && ln -s one "$D/l"' 'ln -sfn two "$D/l"'
matrix - 'a symlink replaced (ln -sfn): listed' 'listed "$D/l"'

change 'delete a file' 'mkdir -p "$D" && echo x >"$D/f"' 'rm "$D/f"'
matrix - 'delete a file: in --deleted' 'deleted "$D/f"'

change 'delete a directory tree' 'mkdir -p "$D/t/u" && echo x >"$D/t/x" && echo y >"$D/t/u/y"' \
	'rm -r "$D/t"'
matrix - 'delete a directory tree: every path in --deleted' 'deleted "$D/t/x" "$D/t/u/y"'

change 'move a file in from outside the root' 'mkdir -p "$D" && echo x >"$OUT/f"' 'mv "$OUT/f" "$D/f"'
matrix - 'move a file in from outside the root: listed' 'listed "$D/f"'

change 'move a file out of the root' 'mkdir -p "$D" && echo x >"$D/f"' 'mv "$D/f" "$OUT/f"'
matrix - 'move a file out of the root: in --deleted' 'deleted "$D/f"'

change 'move a directory in from outside the root' \
	'mkdir -p "$D" "$OUT/t/u" && echo x >"$OUT/t/x" && echo y >"$OUT/t/u/y"' 'mv "$OUT/t" "$D/t"'
matrix - 'move a directory in from outside the root: its files listed' 'listed "$D/t/x" "$D/t/u/y"'

change 'move a directory out of the root' \
	'mkdir -p "$D/t/u" && echo x >"$D/t/x" && echo y >"$D/t/u/y"' 'mv "$D/t" "$OUT/t"'
matrix - 'move a directory out of the root: its paths in --deleted' 'deleted "$D/t/x" "$D/t/u/y"'

# ---- renameat2(RENAME_EXCHANGE) ----
# The kernel reports an exchange as two renames (inotify: MOVED_FROM a /
# MOVED_TO b, then MOVED_FROM b / MOVED_TO a; fanotify also FAN_RENAME), so
# both names are journaled, each as renamed away (moved_out) and renamed in.
# A name renamed away that holds a directory again, or a name a directory
# left that holds a file now, is in --deleted: the consumer removes what it
# had there (the old directory's files, which no event named) and adds the
# new entry, listed whole.

change 'exchange two files' 'mkdir -p "$D" && echo f >"$D/f" && echo g >"$D/g"' \
	'"$PROBE" exchange "$D/f" "$D/g"'
matrix - 'exchange two files: both listed' 'listed "$D/f" "$D/g"'

change 'exchange two directories' \
	'mkdir -p "$D/a" "$D/b" && echo x >"$D/a/x" && echo y >"$D/b/y"' \
	'"$PROBE" exchange "$D/a" "$D/b"'
matrix - 'exchange two directories: both trees listed' 'listed "$D/a/y" "$D/b/x"'
matrix - 'exchange two directories: the old paths in --deleted' \
	'deleted "$D/a/x" "$D/b/y"'

change 'exchange a file and a directory' \
	'mkdir -p "$D/dir" && echo x >"$D/dir/x" && echo f >"$D/file"' \
	'"$PROBE" exchange "$D/file" "$D/dir"'
matrix - 'exchange a file and a directory: both listed' 'listed "$D/file/x" "$D/dir"'
matrix - 'exchange a file and a directory: the old paths in --deleted' \
	'deleted "$D/dir/x"'

# ---- hard links ----
# A link, an unlink or a write reaches the watcher of the directory of the
# name it went through (inotify: the parent's watch; fanotify: the event's
# directory handle and name); the other names' directories hear nothing: a
# link count change is an inode-only IN_ATTRIB (fanotify: FAN_ATTRIB with
# the inode's handle and no name). No kernel interface maps an inode to its
# names: the journal keeps the names of multiply-linked files (list, full
# runs, the daemon's flushes) and list lists every known name of a file
# changed through one (searching the roots once when fewer are known than
# links). A link made or removed changes only the other names' link count
# and ctime, metadata no backup restores: [issue: hard links] those lines
# stay known breakages.

change 'hard link: create a link' 'mkdir -p "$D/a" "$D/b" && echo m >"$D/a/1"' 'ln "$D/a/1" "$D/b/1"'
matrix - 'hard link: create a link: the new name listed' 'listed "$D/b/1"'
matrix inotify 'hard link: create a link: the other name listed (link count, ctime)' \
	'listed "$D/a/1"'

change 'hard link: write through one name' \
	'mkdir -p "$D/a" "$D/b" && echo m >"$D/a/1" && ln "$D/a/1" "$D/b/1" && ln "$D/a/1" "$D/a/2"' \
	'echo more >>"$D/a/1"'
matrix - 'hard link: write through one name: that name listed' 'listed "$D/a/1"'
matrix - 'hard link: write through one name: every other name listed' \
	'listed "$D/a/2" "$D/b/1"'

change 'hard link: unlink one name' \
	'mkdir -p "$D/a" "$D/b" && echo m >"$D/a/1" && ln "$D/a/1" "$D/b/1" && ln "$D/a/1" "$D/a/2"' \
	'rm "$D/a/2"'
matrix - 'hard link: unlink one name: in --deleted' 'deleted "$D/a/2"'
matrix inotify 'hard link: unlink one name: the other names listed (link count, ctime)' \
	'listed "$D/a/1" "$D/b/1"'

change 'hard link: link into the root from a name outside' \
	'mkdir -p "$D" && echo o >"$OUT/o"' 'ln "$OUT/o" "$D/o"'
matrix - 'hard link: link into the root from a name outside: listed' 'listed "$D/o"'

# the write's event names the outside directory: inotify has no watch there;
# fanotify gets it (one mark per file system) with the file's own handle,
# which the daemon finds among the known multiply-linked files
change 'hard link: write through a name outside the root' \
	'mkdir -p "$D" && echo o >"$OUT/o" && ln "$OUT/o" "$D/o"' 'echo more >>"$OUT/o"'
matrix inotify 'hard link: write through a name outside the root: the inside name listed' \
	'listed "$D/o"'

# ---- writes with no event until a close ----
# A write through a shared mapping, a native AIO write and a loop device's
# write to its backing file make no IN_MODIFY / FAN_MODIFY: the only event
# is IN_CLOSE_WRITE when the last reference to the open file goes (close of
# the descriptor, or munmap when the mapping outlives it; the loop device's
# detach). begin journals every file under the roots open for writing
# (/proc: descriptors and shared writable mappings; the loop devices'
# backing files), so the run that begins in between lists it (t0116).

change 'mmap write, descriptor open across begin' \
	'mkdir -p "$D" && head -c 8192 /dev/zero >"$D/f"' \
	'holder open "$D/f" mmap mwrite MMAP sync munmap close && holder_at 1'
matrix - 'mmap write, descriptor open across begin: listed' 'listed "$D/f"'
then_ 'mmap write, descriptor open across begin' 'the writer unmaps and closes' \
	'holder_go 1 && holder_end'
matrix - 'mmap write, descriptor open across begin: listed after the close' 'listed "$D/f"'

change 'mmap write, descriptor closed before begin, mapping alive' \
	'mkdir -p "$D" && head -c 8192 /dev/zero >"$D/f" &&
	holder open "$D/f" mmap close sync mwrite MMAP sync munmap && holder_at 1' \
	'holder_go 1 && holder_at 2'
matrix - 'mmap write, descriptor closed before begin, mapping alive: listed' \
	'listed "$D/f"'
then_ 'mmap write, descriptor closed before begin, mapping alive' 'the writer unmaps' \
	'holder_go 2 && holder_end'
matrix - 'mmap write, descriptor closed before begin, mapping alive: listed after munmap' \
	'listed "$D/f"'

# fs/aio.c's write path calls no fsnotify_modify() (io_uring's does)
change 'native AIO write (io_submit), descriptor open across begin' \
	'mkdir -p "$D" && head -c 8192 /dev/zero >"$D/f"' \
	'holder open "$D/f" aio AIO sync close && holder_at 1'
matrix - 'native AIO write (io_submit), descriptor open across begin: listed' \
	'listed "$D/f"'
then_ 'native AIO write (io_submit), descriptor open across begin' 'the writer closes' \
	'holder_go 1 && holder_end'
matrix - 'native AIO write (io_submit), descriptor open across begin: listed after the close' \
	'listed "$D/f"'

change 'io_uring write, descriptor open across begin' \
	'mkdir -p "$D" && head -c 8192 /dev/zero >"$D/f"' \
	'holder open "$D/f" uring URING sync close && holder_at 1'
matrix - 'io_uring write, descriptor open across begin: listed' 'listed "$D/f"'
then_ 'io_uring write, descriptor open across begin' 'the writer closes' 'holder_go 1 && holder_end'

change 'a write through a loop device backed by a file under the root' \
	'need_root && mkdir -p "$D" && truncate -s 1M "$D/img"' \
	'loop_attach "$D/img" && printf LOOPDATA | dd of="$LOOP" bs=512 conv=notrunc,fsync status=none'
matrix - 'a write through a loop device backed by a file under the root: listed' \
	'listed "$D/img"'
# the loop device drops its file when detached, maybe after losetup -d returns
then_ 'a write through a loop device backed by a file under the root' 'the loop device is detached' \
	'loop_detach "$LOOP" && wait_for 10 journaled "$D/img"'
matrix - 'a write through a loop device backed by a file under the root: listed after the detach' \
	'listed "$D/img"'

# ---- writes through a descriptor that has no name ----
# After linkat(), writes through the O_TMPFILE descriptor are reported under
# the descriptor's own dentry, named "#<inode>" (inotify: IN_MODIFY and
# IN_CLOSE_WRITE "#12345" in the directory, heard because the watches do not
# set IN_EXCL_UNLINK; fanotify: the same name, with the file's own handle).
# fanotify takes the path from the handle; inotify looks for an entry with
# that inode number in the directory (where it is most often linked), else
# records a rescan of the root.
change 'O_TMPFILE linked into the root, then written through its descriptor' \
	'mkdir -p "$D" && holder tmpfile "$D" linkat "$D/tf" write first sync write second sync close &&
	holder_at 1' \
	'holder_go 1 && holder_at 2'
matrix - 'O_TMPFILE linked into the root, then written through its descriptor: listed' \
	'listed "$D/tf"'
then_ 'O_TMPFILE linked into the root, then written through its descriptor' 'the writer closes' \
	'holder_go 2 && holder_end'
matrix - \
	'O_TMPFILE linked into the root, then written through its descriptor: listed after the close' \
	'listed "$D/tf"'

# open_by_handle_at(2) of a file whose dentry is not cached (as the kernel
# NFS server opens after a reboot or a cache drop) gives a disconnected
# dentry ("/"): inotify hears nothing (no parent to notify) [issue:
# handle-based writes: the kernel gives inotify nothing; an NFS-exported root
# is named in the log and status, t0118]; fanotify gets FAN_MODIFY with the
# inode's handle only (no directory, no name), which opens only as "/": the
# daemon records a rescan of the roots on that file system.
change 'a write through open_by_handle_at(2), dentry not cached' \
	'need_root && mkdir -p "$D/sub" && echo old >"$D/sub/h" &&
	"$PROBE" handle-save "$D/sub/h" "$TRASH/handle"' \
	'sync && echo 2 >/proc/sys/vm/drop_caches &&
	"$PROBE" handle-open "$SPOOL" "$TRASH/handle" path write HANDLE close >where.out &&
	{ test "$(cat where.out)" = / ||
		skip_kind "the dentry stayed cached (opened as $(cat where.out))"; }'
matrix inotify 'a write through open_by_handle_at(2), dentry not cached: listed' \
	'listed "$D/sub/h"'

# The same write, then the file removed, while chjournald is stopped (a
# backlog): the kernel merges the unlink's link-count ATTRIB and the
# DELETE_SELF of the file's last name into the write's queued event, so
# fanotify reads one event of the handle alone saying the file has no name
# left. Its deletion comes by directory and name: nothing to rescan.
change 'a write through open_by_handle_at(2), dentry not cached, then removed in a backlog' \
	'need_root && mkdir -p "$D/sub" && echo old >"$D/sub/h" &&
	"$PROBE" handle-save "$D/sub/h" "$TRASH/handle"' \
	'sync && kill -STOP "$DAEMON_PID" && echo 2 >/proc/sys/vm/drop_caches &&
	"$PROBE" handle-open "$SPOOL" "$TRASH/handle" path write HANDLE close >where.out &&
	rm "$D/sub/h" && kill -CONT "$DAEMON_PID" &&
	{ test "$(cat where.out)" = / ||
		skip_kind "the dentry stayed cached (opened as $(cat where.out))"; }'
matrix - 'a write by handle, then removed in a backlog: deleted, nothing to reconcile' \
	'deleted "$D/sub/h" && { test ! -s reconcile.out || { echo "to reconcile:"; cat reconcile.out; false; }; }'

change 'a write through open_by_handle_at(2), dentry cached' \
	'need_root && mkdir -p "$D/sub" && echo old >"$D/sub/h" &&
	"$PROBE" handle-save "$D/sub/h" "$TRASH/handle"' \
	'cat "$D/sub/h" >/dev/null &&
	"$PROBE" handle-open "$SPOOL" "$TRASH/handle" write HANDLE close'
matrix - 'a write through open_by_handle_at(2), dentry cached: listed' 'listed "$D/sub/h"'

# ---- copies in the kernel ----

change 'copy_file_range into a file' 'mkdir -p "$D" && echo old >"$D/f" && echo src >"$OUT/src"' \
	'"$PROBE" open "$D/f" copy-range "$OUT/src" close'
matrix - 'copy_file_range into a file: listed' 'listed "$D/f"'

change 'sendfile into a file' 'mkdir -p "$D" && echo old >"$D/f" && echo src >"$OUT/src"' \
	'"$PROBE" open "$D/f" sendfile "$OUT/src" close'
matrix - 'sendfile into a file: listed' 'listed "$D/f"'

change 'splice into a file' 'mkdir -p "$D" && echo old >"$D/f" && echo src >"$OUT/src"' \
	'"$PROBE" open "$D/f" splice "$OUT/src" close'
matrix - 'splice into a file: listed' 'listed "$D/f"'

# a reflink needs a file system that has them: the root's own, else an XFS
# image mounted as the root (root, mkfs.xfs)
reflink_root() {
	"$PROBE" open "$OUT/probe-dst" clone "$OUT/src" close 2>/dev/null && return 0
	need_root || return 1
	command -v mkfs.xfs >/dev/null || { skip_kind "no reflinks on $TMPDIR's file system, no mkfs.xfs"; return 1; }
	truncate -s 300M "$MNT/xfs.img" && mkfs.xfs -q -m reflink=1 "$MNT/xfs.img" &&
	mount_at "$SPOOL" -o loop "$MNT/xfs.img" || { skip_kind "cannot mount an XFS image"; return 1; }
}
change 'FICLONE (reflink) onto a file' \
	'echo src >"$OUT/src" && : >"$OUT/probe-dst" && reflink_root &&
	mkdir -p "$D" && echo old >"$D/f" && echo src >"$D/src"' \
	'"$PROBE" open "$D/f" clone "$D/src" close 2>cl.err || skip_kind "FICLONE: $(cat cl.err)"'
matrix - 'FICLONE (reflink) onto a file: listed' 'listed "$D/f"'

# ---- mounts ----
# A mount or an unmount makes no fsnotify event in the directories. The
# daemon follows the mount table (poll POLLPRI on /proc/self/mountinfo; the
# last run's table per root in the journal for the downtime): a mount point
# counts as replaced (in --deleted, listed whole) and is watched again
# (fanotify: its file system marked).

change 'a tmpfs mounted in the root, then a file written in it' \
	'need_root && mkdir -p "$D/mnt"' \
	'mount_at "$D/mnt" -t tmpfs chj-t0120 && echo f >"$D/mnt/f"'
matrix - 'a tmpfs mounted in the root, then a file written in it: listed' \
	'listed "$D/mnt/f"'

change 'a bind mount of an outside directory in the root' \
	'need_root && mkdir -p "$D/bind" "$OUT/b" && echo o >"$OUT/b/o"' \
	'mount_at "$D/bind" --bind "$OUT/b"'
matrix - 'a bind mount of an outside directory in the root: its files listed' \
	'listed "$D/bind/o"'
then_ 'a bind mount of an outside directory in the root' 'a file written through it' \
	'echo more >>"$D/bind/o"'
# fanotify hears this write (the same file system) but names it by the
# outside path, which its handle resolves to
matrix - 'a bind mount of an outside directory in the root: a write through it listed' \
	'listed "$D/bind/o"'

# inotify crawls into a mount present at start (a watch per directory, on
# whatever file system); fanotify marks only the roots' file systems
change 'a mount present at start, then a file written in it' \
	'need_root && mkdir -p "$D/mnt" && mount_at "$D/mnt" -t tmpfs chj-t0120 && echo f >"$D/mnt/f"' \
	'echo more >>"$D/mnt/f"'
matrix - 'a mount present at start, then a file written in it: listed' 'listed "$D/mnt/f"'

# inotify gets IN_UNMOUNT on the watches inside, and records a rescan of the
# mount point; a rescan finds files, never deletions
change 'an unmount in the root' \
	'need_root && mkdir -p "$D/mnt" && mount_at "$D/mnt" -t tmpfs chj-t0120 && echo f >"$D/mnt/f"' \
	'unmount "$D/mnt"'
matrix - 'an unmount in the root: its files in --deleted' 'deleted "$D/mnt/f"'

# the restart's rescan lists files whose ctime or mtime is after the last
# flush, and everything below a directory changed since: the files of a file
# system mounted in the downtime are older, and so is its root directory,
# which is what the mount point shows (mounted in the root: the rescanned
# directory's own time does not count; deeper, the mkdir of the mount point
# would have been seconds before the flush)
change 'a mount made while the daemon is down' \
	'need_root && mkdir -p "$SPOOL/mnt" "$MNT/src/old" && echo o >"$MNT/src/old/o" &&
	ext4_image "$MNT/old.img" "$MNT/src" old' \
	'stop_daemon && mount_at "$SPOOL/mnt" -o loop,ro "$MNT/old.img" && start_daemon'
matrix - 'a mount made while the daemon is down: its files listed' \
	'listed "$SPOOL/mnt/old/o"'

# the root itself on its own file system (an ext4 image on one loop device):
# unmounted, changed while mounted elsewhere, mounted back. The daemon
# follows the mount table (POLLPRI on /proc/self/mountinfo): each time the
# root counts as replaced (the old entries in --deleted, the new ones listed
# whole) and is watched again at once (fanotify: its file system marked
# through a detached copy of its mount, so the umount is not refused).
# mounts_noted N: the daemon has logged N mount-table changes of the root
mounts_noted() {
	[ "$(grep -c "mount table: what '$SPOOL' shows" "$DAEMON_LOG")" -ge "$1" ]
}
change 'the root unmounted, changed elsewhere, mounted back' \
	'need_root && mkdir -p "$MNT/src/d" && echo a >"$MNT/src/d/a" && echo b >"$MNT/src/d/b" &&
	ext4_image "$MNT/root.img" "$MNT/src" && loop_attach "$MNT/root.img" &&
	mount_at "$SPOOL" "$LOOP"' \
	'unmount "$SPOOL" && wait_for 10 mounts_noted 1 &&
	mkdir -p "$MNT/else" && mount_at "$MNT/else" "$LOOP" &&
	echo more >>"$MNT/else/d/a" && rm "$MNT/else/d/b" && echo c >"$MNT/else/d/c" &&
	unmount "$MNT/else" && mount_at "$SPOOL" "$LOOP" && wait_for 10 mounts_noted 2'
matrix - 'the root unmounted, changed elsewhere, mounted back: changed files listed' \
	'listed "$D/a" "$D/c"'
matrix - 'the root unmounted, changed elsewhere, mounted back: deleted file in --deleted' \
	'deleted "$D/b"'

# ---- the daemon stopped ----
# The restart records a rescan of every root from the last flush: a walk for
# ctime or mtime after it finds what was written or moved, never what was
# deleted; the directories whose times moved are in --reconcile (a queue
# overflow is the same rescan).

change 'a file written while the daemon is stopped' 'mkdir -p "$D" && echo x >"$D/f"' \
	'stop_daemon && echo more >>"$D/f" && start_daemon'
matrix - 'a file written while the daemon is stopped: listed' 'listed "$D/f"'

change 'a file deleted while the daemon is stopped' 'mkdir -p "$D" && echo x >"$D/f"' \
	'stop_daemon && rm "$D/f" && start_daemon'
matrix - 'a file deleted while the daemon is stopped: covered by --reconcile' 'gone "$D/f"'

change 'a directory renamed while the daemon is stopped' \
	'mkdir -p "$D/old" && echo x >"$D/old/x"' \
	'stop_daemon && mv "$D/old" "$D/new" && start_daemon'
matrix - 'a directory renamed while the daemon is stopped: files under the new name listed' \
	'listed "$D/new/x"'
matrix - 'a directory renamed while the daemon is stopped: old paths covered by --reconcile' \
	'gone "$D/old/x"'

# ---- a path longer than PATH_MAX ----
# 20 directories of 250 bytes: the file's path is over 5000 bytes. Listed
# (with -0): list stats and walks relative to descriptors, inotify watches
# such a directory through /proc/self/fd, fanotify names it by reading its
# parents (t0112).
LONG_DIRS=$(python3 -c 'print("/".join(["d%03d" % i + "x" * 246 for i in range(20)]))')
# long_path CMD: runs python3 with the deep directory made (descriptor-
# relative: no path argument may reach PATH_MAX) and CMD on the file there
long_path() {
	python3 - "$D" "$LONG_DIRS" "$1" <<'EOF'
import os, sys
top, dirs, what = sys.argv[1], sys.argv[2].split("/"), sys.argv[3]
fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
for d in dirs:
    try:
        os.mkdir(d, dir_fd=fd)
    except FileExistsError:
        pass
    nfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
f = os.open("f", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644, dir_fd=fd)
os.write(f, (what + "\n").encode())
os.close(f)
EOF
}

change 'a file created at a path longer than PATH_MAX' 'mkdir -p "$D"' 'long_path create'
matrix - 'a file created at a path longer than PATH_MAX: listed' \
	'listed "$D/$LONG_DIRS/f"'

change 'a file written at a path longer than PATH_MAX' 'mkdir -p "$D" && long_path create' \
	'long_path append'
matrix - 'a file written at a path longer than PATH_MAX: listed' \
	'listed "$D/$LONG_DIRS/f"'

expect_success 'the daemon stops cleanly' '
	holder_kill &&
	stop_daemon
'

test_done
