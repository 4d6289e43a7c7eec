#!/bin/bash
# t0112-long-paths: paths longer than PATH_MAX (4096 bytes) below a root are
# journaled and listed whole, like any other. Two trees: A, 45 levels of
# 198-byte names (about 9,000 bytes), and B, 2,100 levels of "d" (about 4,200
# bytes and far more levels than a process may hold descriptors for). Files
# are made before the daemon starts, then written, created, renamed and
# deleted at that depth, in a new deep directory and in a renamed one, while
# it runs and while it is stopped; `list -0`, `list --deleted -0` and `query`
# must name exactly the expected full paths (computed by tests/long-paths.py,
# which walks with dir_fd), every command exits 0 with nothing on stderr, the
# daemon watches (inotify) every deep directory and logs no failure, and a
# rescan record naming a deep directory resolves its subtree. Lists run with
# at most 128 descriptors (ulimit -n). As root the spool is a tmpfs of its own.
LONG_PATHS_PY=$(cd "$(dirname "$0")" && pwd)/long-paths.py
. "$(dirname "$0")/test-lib.sh"

command -v python3 >/dev/null 2>&1 || skip_all "needs python3"

# The spool gets a file system of its own where one can be mounted: fanotify
# marks a whole file system, and events in directories that other programs
# on a shared /tmp delete before the daemon reads them become rescans of the
# roots on it (never a miss, but more than this test's exact lists).
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=64m,mode=0755 chj-t0112 "$SPOOL" 2>/dev/null; then
	test_cleanup_extra='umount "$SPOOL"'
	if [ "$CHJ_BACKEND" = fanotify ] && fanotify_refused >/dev/null; then
		umount "$SPOOL"
		test_cleanup_extra=
	fi
fi

lp() {
	python3 "$LONG_PATHS_PY" "$@"
}

# list_ok CONSUMER OUT [--deleted]: list -0 into OUT with at most 128
# descriptors; it must exit 0 and print nothing on stderr.
list_ok() {
	_lo_c=$1
	_lo_out=$2
	shift 2
	(ulimit -n 128 && "$CHJOURNAL" -c "$CONF" list "$_lo_c" -0 "$@" >"$_lo_out" 2>list.err)
	_lo_rc=$?
	if [ "$_lo_rc" -ne 0 ] || [ -s list.err ]; then
		echo "list $_lo_c $*: exit $_lo_rc, stderr:" >&2
		cut -c 1-300 list.err >&2
		return 1
	fi
}

# short FILE: a NUL-terminated list as lines, the deep prefixes abbreviated
short() {
	python3 - "$1" "$A" "$B" <<'PY'
import os, sys
data, a, b = open(sys.argv[1], "rb").read(), os.fsencode(sys.argv[2]), os.fsencode(sys.argv[3])
for p in data.split(b"\0"):
    if p:
        print(p.replace(a, b"$A").replace(b, b"$B").decode("utf-8", "replace"))
PY
}

# same_nul EXPECTED ACTUAL: equal NUL-terminated lists (the diff, shortened,
# when not)
same_nul() {
	cmp -s "$1" "$2" && return 0
	short "$1" >"$1.short"
	short "$2" >"$2.short"
	diff -u "$1.short" "$2.short" >&2
	return 1
}

# expect_nul FILE PATH...: FILE holds exactly these paths
expect_nul() {
	_en_file=$1
	shift
	if [ $# -gt 0 ]; then
		printf '%s\0' "$@" | LC_ALL=C sort -z >expect.raw
	else
		: >expect.raw
	fi
	same_nul expect.raw "$_en_file"
}

# in_query PATH...: `query -0` has a record of each PATH, and plain `query`
# prints each whole (these names need no escaping)
in_query() {
	chj query -0 >query.raw 2>query.err && test ! -s query.err &&
	chj query >query.txt 2>query.err && test ! -s query.err &&
	python3 - query.raw query.txt "$@" <<'PY'
import os, sys
def paths(data, sep):
    return {r.split(b"\t", 3)[3] for r in data.split(sep) if r.count(b"\t") >= 3}
raw = paths(open(sys.argv[1], "rb").read(), b"\0")
txt = paths(open(sys.argv[2], "rb").read(), b"\n")
missing = [p for p in map(os.fsencode, sys.argv[3:]) if p not in raw or p not in txt]
for p in missing:
    print("not in query (-0: %s, text: %s): ...%s" % (p in raw, p in txt, p[-100:].decode()),
          file=sys.stderr)
sys.exit(1 if missing else 0)
PY
}

# rescan_since PATH: the since of the journal's rescan record of PATH (unix
# time; query prints it in UTC)
rescan_since() {
	_rs=$(chj query | awk -F '\t' -v p="$1" '$4 == p && $3 ~ /^rescan\(since=/ {
		s = $3; sub(/^rescan\(since=/, "", s); sub(/,.*/, "", s); print s }' | tail -n 1) &&
	test -n "$_rs" &&
	date -u -d "$_rs" +%s
}

watch_count() {
	chj sync >/dev/null &&
	chj status | sed -n 's/^watches: *\([0-9]*\).*/\1/p'
}

X190=$(printf 'x%.0s' $(seq 1 190))
A=$(lp chain "$SPOOL/a" "level%02d-$X190" 45)
AMID=$(lp chain "$SPOOL/a" "level%02d-$X190" 21)
B=$(lp chain "$SPOOL/b" d 2100)

expect_success 'the trees are deeper than PATH_MAX' '
	test "$(lp len "$AMID")" -gt 4096 &&
	test "$(lp len "$A")" -gt 8192 &&
	test "$(lp len "$B")" -gt 4096 &&
	! test -d "$A" 2>/dev/null
'

expect_success 'files at depth before the daemon starts' '
	lp write "$A/f-before" one &&
	lp write "$A/keep" one &&
	lp symlink target "$A/link" &&
	lp write "$AMID/mid-file" one &&
	lp mkdirs "$A/olddir" &&
	lp write "$A/olddir/o1" one &&
	lp write "$B/bfile" one &&
	echo one >"$SPOOL/short"
'

expect_success 'the daemon watches every directory, the deep ones too' '
	start_daemon &&
	on_inotify test "$(watch_count)" -eq "$(lp dirs "$SPOOL")" &&
	! chj status | grep "unwatched" &&
	! grep -i "cannot\|too long" "$DAEMON_LOG"
'

expect_success 'a full run lists every path whole' '
	chj begin c1 >mode.out &&
	grep "^full: " mode.out &&
	list_ok c1 list.raw &&
	lp files "$SPOOL" >expect.raw &&
	test "$(tr -cd "\0" <expect.raw | wc -c)" -eq 7 &&
	same_nul expect.raw list.raw &&
	list_ok c1 deleted.raw --deleted &&
	expect_nul deleted.raw &&
	chj commit c1
'

expect_success 'changes at depth: written, created, renamed, deleted, a new and a renamed directory' '
	lp write "$A/keep" two &&
	lp write "$A/new1" one &&
	lp mv "$A/f-before" "$A/f-renamed" &&
	lp rm "$AMID/mid-file" &&
	lp mkdirs "$A/newdir/sub" &&
	lp write "$A/newdir/sub/n1" one &&
	lp write "$A/newdir/n2" one &&
	lp mv "$A/olddir" "$A/movedir" &&
	lp write "$B/bnew" one &&
	chj begin c1 >mode.out &&
	grep "^incremental" mode.out &&
	list_ok c1 list.raw &&
	expect_nul list.raw "$A/keep" "$A/new1" "$A/f-renamed" "$A/newdir/sub/n1" \
		"$A/newdir/n2" "$A/movedir/o1" "$B/bnew" &&
	list_ok c1 deleted.raw --deleted &&
	expect_nul deleted.raw "$A/f-before" "$AMID/mid-file" "$A/olddir"
'

expect_success 'query names those changes by their full paths' '
	in_query "$A/keep" "$A/new1" "$A/f-renamed" "$A/f-before" "$AMID/mid-file" \
		"$A/newdir" "$A/olddir" "$A/movedir" "$B/bnew"
'

expect_success 'commit' '
	chj commit c1
'

expect_success 'later changes in the new and the renamed deep directories' '
	lp write "$A/newdir/sub/n1" two &&
	lp write "$A/movedir/o2" one &&
	chj begin c1 &&
	list_ok c1 list.raw &&
	expect_nul list.raw "$A/newdir/sub/n1" "$A/movedir/o2" &&
	in_query "$A/newdir/sub/n1" "$A/movedir/o2" &&
	chj commit c1
'

expect_success 'changes at depth while the daemon is stopped: its rescan finds them' '
	stop_daemon &&
	cat "$DAEMON_LOG" >>daemon-all.log &&
	lp write "$A/new1" two &&
	lp write "$A/while-stopped" one &&
	lp mkdirs "$A/stopped-dir" &&
	lp write "$A/stopped-dir/sd1" one &&
	lp write "$B/bstopped" one &&
	start_daemon &&
	chj begin c1 &&
	since=$(rescan_since "$SPOOL") &&
	test -n "$since" &&
	list_ok c1 list.raw &&
	lp rescan "$SPOOL" "$since" >expect.raw &&
	same_nul expect.raw list.raw &&
	tr "\0" "\n" <list.raw >list.lines &&
	for p in "$A/new1" "$A/while-stopped" "$A/stopped-dir/sd1" "$B/bstopped"; do
		grep -qxF -- "$p" list.lines || { echo "not listed: ...${p: -80}" >&2; return 1; }
	done &&
	chj commit c1
'

expect_success 'a rescan record naming a deep directory resolves its subtree' '
	stop_daemon &&
	cat "$DAEMON_LOG" >>daemon-all.log &&
	python3 - "$STATE/journal.db" "$AMID" <<-\PY &&
	import os, sqlite3, sys, time
	db = sqlite3.connect(sys.argv[1])
	seq = int(db.execute("SELECT value FROM meta WHERE key = ?", ("last_seq",)).fetchone()[0]) + 1
	db.execute("INSERT INTO rescans(path, seq, time, since, reason) VALUES(?, ?, ?, 0, ?)",
	           (os.fsencode(sys.argv[2]), seq, int(time.time()), "test"))
	db.execute("UPDATE meta SET value = ? WHERE key = ?", (seq, "last_seq"))
	db.commit()
	PY
	start_daemon &&
	chj begin c1 &&
	in_query "$AMID" &&
	since=$(rescan_since "$SPOOL") &&
	test -n "$since" &&
	list_ok c1 list.raw &&
	{ lp rescan "$SPOOL" "$since" && lp files "$AMID"; } | LC_ALL=C sort -zu >expect.raw &&
	grep -qzxF -- "$A/keep" expect.raw &&
	same_nul expect.raw list.raw &&
	chj commit c1
'

expect_success 'deletions at depth: --deleted names every deleted path whole' '
	lp rm "$A/newdir" "$A/link" "$B/bfile" &&
	chj begin c1 &&
	list_ok c1 list.raw &&
	expect_nul list.raw &&
	list_ok c1 deleted.raw --deleted &&
	expect_nul deleted.raw "$A/newdir" "$A/newdir/sub" "$A/newdir/sub/n1" "$A/newdir/n2" \
		"$A/link" "$B/bfile" &&
	in_query "$A/newdir/sub/n1" "$A/link" "$B/bfile" &&
	chj commit c1
'

expect_success 'a new consumer: a full run lists every path whole' '
	chj begin c2 >mode.out &&
	grep "^full: " mode.out &&
	list_ok c2 list.raw &&
	lp files "$SPOOL" >expect.raw &&
	same_nul expect.raw list.raw &&
	chj commit c2
'

expect_success 'the daemon stops cleanly; nothing could not be watched or resolved' '
	stop_daemon &&
	cat "$DAEMON_LOG" >>daemon-all.log &&
	! grep -i "cannot\|too long\|rescan recorded for .*: directory" daemon-all.log
'

test_done
