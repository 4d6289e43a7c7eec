#!/bin/bash
# t0109-rename-cycle: renames read late can describe a directory moved below
# its own former child (in the daemon's table). The daemon must not build a
# cycle (it hung at 100% CPU): it re-syncs with a rescan and keeps going.
. "$(dirname "$0")/test-lib.sh"

O="$TRASH/outside"
mkdir -p "$SPOOL/A/D/X" "$SPOOL/B" "$O"

expect_success 'a directory moved below its former child while the daemon lags' '
	start_daemon &&
	backup c1 &&
	kill -STOP "$DAEMON_PID" &&
	mv "$SPOOL/A/D/X" "$O/X" &&
	mv "$O/X" "$SPOOL/B/X2" &&
	mv "$SPOOL/A/D" "$SPOOL/B/X2/D2" &&
	echo f >"$SPOOL/B/X2/D2/f" &&
	mv "$SPOOL/B/X2" "$SPOOL/B/X3" &&
	kill -CONT "$DAEMON_PID" &&
	chj sync --timeout 20 &&
	backup c1 &&
	in_list "$SPOOL/B/X3/D2/f"
'

# watch_count_is_tree: inotify watches exactly the directories of the tree
watch_count_is_tree() {
	test "$(chj status --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"watches\"])")" = \
	     "$(find "$SPOOL" -type d | wc -l)"
}

expect_success 'afterwards every directory is watched and changes are listed' '
	echo g >"$SPOOL/B/X3/D2/g" && echo h >"$SPOOL/B/X3/h" &&
	backup c1 &&
	printf "%s\n" "$SPOOL/B/X3/D2/g" "$SPOOL/B/X3/h" >expect &&
	test_cmp expect list.out &&
	on_inotify watch_count_is_tree &&
	stop_daemon
'

test_done
