#!/bin/bash
# t0117-mounts: a mount or an unmount at or below a root replaces what the
# paths below the mount point show. Whether it happens while the daemon runs
# (the mount table polled) or while it is down (the table compared with the
# one of the last run), the mount point counts as replaced: its old entries
# in --deleted, its new ones listed whole; and what is mounted is watched
# (inotify) or marked (fanotify). A root that is itself a mount point,
# unmounted and mounted again, is watched again before begin returns; the
# daemon never keeps an unmounted file system busy. Mounts are undone on
# exit. Needs root.
. "$(dirname "$0")/test-lib.sh"

require_root
MNT_LIST="$TRASH/mounted"
: >"$MNT_LIST"
test_cleanup_extra='tac "$MNT_LIST" | while read -r m; do umount -l "$m" 2>/dev/null; done'

# mnt ARGS... POINT: mount, remembered for the cleanup
mnt() {
	mount "$@" || return 1
	eval "echo \"\${$#}\"" >>"$MNT_LIST"
}

# run: begin (incremental), list and --deleted into list.out / deleted.out
run() {
	chj begin c >mode.out &&
	grep -qx incremental mode.out &&
	chj list c >list.out &&
	chj list c --deleted >deleted.out &&
	chj commit c
}

# has FILE PATH...: each PATH is a line of FILE
has() {
	_f=$1
	shift
	for _p in "$@"; do
		grep -qxF -- "$_p" "$_f" || { echo "not in $_f: $_p"; cat "$_f"; return 1; }
	done
}

OUTSIDE="$TRASH/outside"
mkdir -p "$SPOOL/a/mp" "$SPOOL/b" "$OUTSIDE/data"
echo covered >"$SPOOL/a/mp/covered"
echo plain >"$SPOOL/b/plain"
echo out >"$OUTSIDE/data/o1"

mount -t tmpfs none "$TRASH/probe-mnt" 2>/dev/null ||
	{ mkdir -p "$TRASH/probe-mnt" && mount -t tmpfs none "$TRASH/probe-mnt"; } ||
	skip_all "cannot mount a tmpfs here"
umount "$TRASH/probe-mnt"

expect_success 'daemon starts; a first (full) run' '
	start_daemon &&
	chj begin c >/dev/null && chj list c >/dev/null && chj commit c
'

expect_success 'a tmpfs mounted inside the root: what it shows is listed, what it covers deleted' '
	mnt -t tmpfs none "$SPOOL/a/mp" &&
	echo inside >"$SPOOL/a/mp/new" &&
	mkdir "$SPOOL/a/mp/sub" && echo deep >"$SPOOL/a/mp/sub/deep" &&
	run &&
	has list.out "$SPOOL/a/mp/new" "$SPOOL/a/mp/sub/deep" &&
	has deleted.out "$SPOOL/a/mp"
'

expect_success 'a later write in the mounted file system is listed (it is watched)' '
	echo later >>"$SPOOL/a/mp/sub/deep" &&
	run &&
	has list.out "$SPOOL/a/mp/sub/deep"
'

expect_success 'the unmount: the covered files listed again, the mount point deleted' '
	umount "$SPOOL/a/mp" &&
	run &&
	has list.out "$SPOOL/a/mp/covered" &&
	has deleted.out "$SPOOL/a/mp" &&
	! grep -qF "$SPOOL/a/mp/new" list.out
'

expect_success 'after the unmount, writes in the covered directory are seen again' '
	echo again >>"$SPOOL/a/mp/covered" &&
	run &&
	has list.out "$SPOOL/a/mp/covered"
'

expect_success 'a bind mount of an outside directory: its files listed, later writes too' '
	mnt --bind "$OUTSIDE/data" "$SPOOL/b" &&
	run &&
	has list.out "$SPOOL/b/o1" &&
	echo more >>"$SPOOL/b/o1" &&
	run &&
	has list.out "$SPOOL/b/o1" &&
	umount "$SPOOL/b" &&
	run &&
	has list.out "$SPOOL/b/plain"
'

# A directory holding a mount, moved into the root from outside: the kernel
# does not signal the mount table for a rename, so the daemon did not know
# the mount was there (fanotify never marked it: writes in it were missed;
# inotify did not watch again what its unmount showed: writes there were
# missed). A directory moved makes the daemon read the mount table.
expect_success 'a directory holding a mount moved into the root: writes in it, and after its unmount, listed' '
	mkdir -p "$OUTSIDE/holder/mp" &&
	echo under >"$OUTSIDE/holder/mp/under" &&
	mnt -t tmpfs none "$OUTSIDE/holder/mp" &&
	echo first >"$OUTSIDE/holder/mp/first" &&
	mv "$OUTSIDE/holder" "$SPOOL/holder" &&
	echo "$SPOOL/holder/mp" >>"$MNT_LIST" &&
	run &&
	has list.out "$SPOOL/holder/mp/first" &&
	echo later >"$SPOOL/holder/mp/later" &&
	run &&
	has list.out "$SPOOL/holder/mp/later" &&
	umount "$SPOOL/holder/mp" &&
	run &&
	has list.out "$SPOOL/holder/mp/under" &&
	has deleted.out "$SPOOL/holder/mp" &&
	echo again >"$SPOOL/holder/mp/again" &&
	run &&
	has list.out "$SPOOL/holder/mp/again"
'

expect_success 'a file system mounted while the daemon is down, with old files: all listed' '
	stop_daemon &&
	mkdir -p "$TRASH/img" && mnt -t tmpfs none "$TRASH/img" &&
	echo old >"$TRASH/img/old" && touch -d "2001-01-01" "$TRASH/img/old" &&
	umount "$TRASH/img" &&
	mnt -t tmpfs none "$SPOOL/a/mp" &&
	echo old >"$SPOOL/a/mp/old" && touch -d "2001-01-01" "$SPOOL/a/mp/old" &&
	start_daemon &&
	run &&
	has list.out "$SPOOL/a/mp/old" &&
	has deleted.out "$SPOOL/a/mp"
'

expect_success 'unmounted while the daemon is down: the covered files listed' '
	stop_daemon &&
	umount "$SPOOL/a/mp" &&
	start_daemon &&
	run &&
	has list.out "$SPOOL/a/mp/covered" &&
	has deleted.out "$SPOOL/a/mp"
'

# The root itself on its own file system
ROOT2="$TRASH/root2"
mkdir -p "$ROOT2"

expect_success 'a root that is a mount point, unmounted and mounted again: every write listed' '
	stop_daemon &&
	mnt -t tmpfs none "$ROOT2" &&
	echo one >"$ROOT2/one" &&
	write_config "root = $ROOT2" &&
	start_daemon &&
	chj begin c2 >/dev/null && chj list c2 >/dev/null && chj commit c2 &&
	umount "$ROOT2" &&
	mnt -t tmpfs none "$ROOT2" &&
	echo two >"$ROOT2/two" &&
	echo old >"$ROOT2/old" && touch -d "2001-01-01" "$ROOT2/old" &&
	chj begin c2 >mode.out &&
	chj list c2 >list.out &&
	chj list c2 --deleted >deleted.out &&
	chj commit c2 &&
	has list.out "$ROOT2/two" "$ROOT2/old" &&
	has deleted.out "$ROOT2" &&
	echo three >"$ROOT2/three" &&
	chj begin c2 >/dev/null && chj list c2 >list.out && chj commit c2 &&
	has list.out "$ROOT2/three"
'

expect_success 'the daemon keeps no unmounted file system busy: a plain umount succeeds' '
	umount "$ROOT2" &&
	mnt -t tmpfs none "$ROOT2" &&
	chj begin c2 >/dev/null && chj list c2 >/dev/null && chj commit c2
'

expect_success 'daemon stops cleanly' '
	stop_daemon
'

test_done
