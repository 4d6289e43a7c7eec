#!/bin/bash
# t0118-nfs-export: the kernel NFS server writes for its clients through file
# handles (open_by_handle_at), which inotify does not hear once the file's
# name has left the kernel's cache. A root the export table names (itself, a
# directory above it or below it) is named in the daemon's log and in status
# (text, --json, --prometheus) with the advice to use fanotify; fanotify
# hears such writes (a write whose name is unknown becomes a rescan of the
# roots on its file system, t0120) and names nothing. The table read is
# CHJ_TEST_NFS_EXPORTS (a test hook: the daemon reads /proc/fs/nfsd/exports
# and /var/lib/nfs/etab).
. "$(dirname "$0")/test-lib.sh"

# the root has a space: the table writes it \040
ROOT="$TRASH/with space"
mkdir -p "$ROOT/sub" "$TRASH/other"
write_config "root = $ROOT"
esc=$(printf '%s' "$ROOT" | sed 's/ /\\040/g')
printf '# Version 1.1\n%s\t*(rw,sync,root_squash)\n%s/sub\t10.0.0.0/8(rw,sync)\n' \
	"$TRASH/other" "$esc" >"$TRASH/etab"
printf '%s\t*(rw)\n' "$TRASH/other" >"$TRASH/etab2"
export CHJ_TEST_NFS_EXPORTS="$TRASH/etab"

if [ "$CHJ_BACKEND" = inotify ]; then
expect_success 'inotify: an exported directory below the root is named in the log' '
	start_daemon &&
	grep -q "the kernel NFS server exports these roots.*$ROOT.*use backend = fanotify" "$DAEMON_LOG"
'

expect_success 'status names it, in text, --json and --prometheus' '
	chj status >status.out &&
	grep -qx "nfs export:  $ROOT (exported by the kernel NFS server: inotify does not hear writes by file handle: use backend = fanotify)" status.out &&
	chj status --json | python3 -c "
import json, sys
s = json.load(sys.stdin)
assert s[\"nfs_exported_roots\"] == [sys.argv[1]], s[\"nfs_exported_roots\"]
" "$ROOT" &&
	chj status --prometheus | grep -qx "chjournal_root_nfs_exported{root=\"$ROOT\"} 1"
'

expect_success 'a table that exports nothing of the roots names nothing' '
	stop_daemon &&
	CHJ_TEST_NFS_EXPORTS="$TRASH/etab2" start_daemon &&
	! grep -q "NFS server exports" "$DAEMON_LOG" &&
	! chj status | grep -q "^nfs export:" &&
	chj status --prometheus | grep -qx "chjournal_root_nfs_exported{root=\"$ROOT\"} 0"
'
else
expect_success 'fanotify hears writes by file handle: no advice' '
	start_daemon &&
	! grep -q "NFS server exports" "$DAEMON_LOG" &&
	! chj status | grep -q "^nfs export:"
'
fi

expect_success 'daemon stops cleanly' '
	stop_daemon
'

test_done
