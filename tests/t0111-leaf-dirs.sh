#!/bin/bash
# t0111-leaf-dirs: the crawl does not read a directory whose link count says
# it has no subdirectory (st_nlink 2), on the file systems known to keep that
# count exact (ext2/3/4, xfs, tmpfs); elsewhere (here: ramfs) it reads every
# directory. Either way every directory is watched: a file made in each one
# after start is listed, and so is a subdirectory made in a skipped leaf.
. "$(dirname "$0")/test-lib.sh"
skip_on_fanotify "the crawl is the inotify backend's (fanotify has no crawl)"

# make_tree DIR: users with folders, a deep chain, empty leaves, files
make_tree() {
	for u in 1 2 3 4 5; do
		mkdir -p "$1/user/u$u/INBOX" "$1/user/u$u/Sent" "$1/user/u$u/Arch/2024" "$1/user/u$u/Arch/2025"
		for f in 1 2 3; do echo m >"$1/user/u$u/INBOX/$f."; done
		echo idx >"$1/user/u$u/cyrus.index"
	done
	mkdir -p "$1/deep/a/b/c/d/e/f" "$1/empty"
	echo x >"$1/deep/a/b/file"
}

# leaves DIR: directories below DIR (not DIR) without a subdirectory, not
# counting mount points below them separately
leaves() {
	find "$1" -mindepth 1 -type d | while IFS= read -r d; do
		[ -n "$(find "$d" -mindepth 1 -maxdepth 1 -type d -print -quit)" ] || echo "$d"
	done | wc -l
}

# counts_nlink DIR: the file system of DIR is one the crawl trusts
counts_nlink() {
	case $(stat -f -c %t "$1") in
	ef53|58465342|1021994) return 0 ;;
	esac
	return 1
}

make_tree "$SPOOL"
ndirs=$(find "$SPOOL" -type d | wc -l)
expect_leaves=0
counts_nlink "$SPOOL" && expect_leaves=$(leaves "$SPOOL")

expect_success 'ready: every directory watched, leaves not read' '
	start_daemon &&
	grep -q "ready: $ndirs directories watched" "$DAEMON_LOG" &&
	grep -q "; $expect_leaves without subdirectories not read" "$DAEMON_LOG"
'

expect_success 'a file made in every directory after start is listed' '
	chj begin c1 >/dev/null && chj commit c1 &&
	find "$SPOOL" -type d | while IFS= read -r d; do echo n >"$d/new-file"; done &&
	find "$SPOOL" -name new-file | sort >expect &&
	backup c1 &&
	grep /new-file list.out | sort >got &&
	test_cmp expect got
'

expect_success 'a subdirectory made in a leaf that was not read is watched' '
	mkdir "$SPOOL/deep/a/b/c/d/e/f/g" "$SPOOL/empty/sub" &&
	echo 1 >"$SPOOL/deep/a/b/c/d/e/f/g/x" &&
	sleep 0.2 && echo 2 >"$SPOOL/empty/sub/y" &&
	backup c1 &&
	in_list "$SPOOL/deep/a/b/c/d/e/f/g/x" && in_list "$SPOOL/empty/sub/y" &&
	stop_daemon
'

# file systems mounted inside the root: a trusted one (tmpfs) and one the
# crawl does not trust (ramfs counts links too, but is not on the list)
if [ "$(id -u)" = 0 ] && mkdir -p "$SPOOL/tmpfs" "$SPOOL/ramfs" &&
   mount -t tmpfs -o size=4m tmpfs "$SPOOL/tmpfs" 2>/dev/null; then
	test_cleanup_extra="umount '$SPOOL/tmpfs' 2>/dev/null; umount '$SPOOL/ramfs' 2>/dev/null"
	have_ramfs=
	mount -t ramfs ramfs "$SPOOL/ramfs" 2>/dev/null && have_ramfs=1
	make_tree "$SPOOL/tmpfs"
	make_tree "$SPOOL/ramfs"
	expect_success 'crossing into tmpfs and ramfs: tmpfs leaves skipped, ramfs read' '
		ndirs=$(find "$SPOOL" -type d | wc -l) &&
		if counts_nlink "$SPOOL"; then
			want=$(leaves "$SPOOL")
			[ -z "$have_ramfs" ] || want=$(( want - $(leaves "$SPOOL/ramfs") ))
		else
			want=$(leaves "$SPOOL/tmpfs")
		fi &&
		start_daemon &&
		grep -q "ready: $ndirs directories watched" "$DAEMON_LOG" &&
		grep -q "; $want without subdirectories not read" "$DAEMON_LOG"
	'
	expect_success 'files in every directory of both mounts are listed' '
		chj begin c1 >/dev/null && chj commit c1 &&
		find "$SPOOL/tmpfs" "$SPOOL/ramfs" -type d | while IFS= read -r d; do echo n >"$d/new2"; done &&
		find "$SPOOL" -name new2 | sort >expect &&
		backup c1 &&
		grep /new2 list.out | sort >got &&
		test_cmp expect got &&
		stop_daemon
	'
else
	echo "# skipped: tmpfs and ramfs mounts inside the root (needs root and mount)"
fi

test_done
