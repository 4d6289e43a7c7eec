#!/bin/bash
# t0116-open-writers: files whose content changes with no inotify or fanotify
# event at all are listed because `begin` journals every file under the root
# that is open for writing: writes through a shared writable mapping whose
# descriptor is closed, native AIO (io_submit on an O_DIRECT descriptor),
# writes through a loop device backed by a file under the root. A read-only
# open, a private mapping and a read-only loop device are not writers. Each
# writer is tests/open_writer.py, driven by commands on a fifo and answering
# each on another once it is done: no test waits on time.
. "$(dirname "$0")/test-lib.sh"

WRITER="$CHJ_SRCDIR/tests/open_writer.py"
WRITER_PID=
LOOPDEVS=
NS_PID=
test_cleanup_extra='writer_kill; for l in $LOOPDEVS; do losetup -d "$l" 2>/dev/null; done
	[ -z "$NS_PID" ] || kill "$NS_PID" 2>/dev/null'

# writer_start: an open_writer.py on the fifos w.cmd and w.ack, held open on
# fds 7 and 8 (opened read-write: never blocks, whatever the writer does);
# the writer of a test that failed before writer_stop is ended first
writer_start() {
	writer_kill
	rm -f w.cmd w.ack &&
	mkfifo w.cmd w.ack &&
	exec 7<>w.cmd 8<>w.ack &&
	{ python3 "$WRITER" w.cmd w.ack & } &&
	WRITER_PID=$!
}

# writer CMD [ARGS]: one command, and its answer
writer() {
	_w_reply=
	echo "$*" >&7 &&
	read -t 60 -r _w_reply <&8 &&
	[ "$_w_reply" = ok ] || { echo "writer: $*: ${_w_reply:-no answer}" >&2; return 1; }
}

writer_stop() {
	writer exit &&
	wait "$WRITER_PID" &&
	WRITER_PID= &&
	exec 7>&- 8>&-
}

writer_kill() {
	[ -z "$WRITER_PID" ] || { kill "$WRITER_PID" 2>/dev/null; wait "$WRITER_PID" 2>/dev/null; }
	WRITER_PID=
}

# a file of 4096 bytes (one page, one O_DIRECT block): $1
page_file() {
	head -c 4096 /dev/zero | tr '\0' . >"$1"
}

# apart_run SCRIPT: runs SCRIPT (sh) in a mount namespace of its own, with a
# tmpfs on apart/ holding root/, the root of apart.conf, and a daemon of its
# own watching it (stopped after). SCRIPT has $T (the trash directory), $R
# (the root), $C (the agent with apart.conf) and $W (open_writer.py). What
# it holds is on a file system no test run beside this one looks at: their
# begin does not see, and count, files held under names it cannot match.
apart_run() {
	rm -rf apart apart-state && mkdir apart apart-state &&
	printf "journal = %s\nroot = %s\n" "$TRASH/apart-state/journal.db" "$TRASH/apart/root" >apart.conf &&
	unshare --mount --propagation private sh -c "
		mount -t tmpfs none \"\$1/apart\" && mkdir \"\$1/apart/root\" &&
		{ \"\$2\" -c \"\$1/apart.conf\" 2>>\"\$1/apart.log\" & } && dpid=\$! && i=0 &&
		until \"\$3\" -c \"\$1/apart.conf\" status 2>/dev/null | grep -q \"^daemon: *running\"; do
			i=\$((i + 1)); [ \$i -lt 600 ] || { kill \$dpid; exit 1; }; sleep 0.05
		done &&
		T=\$1 R=\$1/apart/root C=\"\$3 -c \$1/apart.conf\" W=\$4 && { $1
		}
		rc=\$?; kill \$dpid; wait \$dpid; exit \$rc" \
		sh "$TRASH" "$CHJOURNALD" "$CHJOURNAL" "$WRITER"
}

# in a root apart: a file under the root held through a bind mount of a
# directory under it (from the first run on, no event for it), then begin and
# list while it is held (closing it is an event, and list lists up to now)
apart_held_through_bind='mkdir "$R/bound" "$T/alias2" && echo a >"$R/bound/held" &&
	$C begin c1 >/dev/null && $C commit c1 &&
	mount --bind "$R/bound" "$T/alias2" && exec 3>>"$T/alias2/held" &&
	$C begin c1 && $C list c1 >"$T/list.out"'
# the same for a loop device set up through a bind mount of the root
apart_loop_through_bind='head -c 1048576 /dev/zero >"$R/disk.img" && mkdir "$T/loopalias" &&
	$C begin c1 >/dev/null && $C commit c1 &&
	mount --bind "$R" "$T/loopalias" && dev=$(losetup -f --show "$T/loopalias/disk.img") &&
	{ $C begin c1 && $C list c1 >"$T/list.out"; r=$?; losetup -d "$dev"; [ $r = 0 ]; }'
# a file held under a name too long for /proc
apart_held_too_long='python3 "$W" --hold-deep "$R" 22 -- $C begin c-deep'

start_daemon

expect_success 'shared mapping, fd closed: a write before begin is listed, and one after it by the next run' '
	page_file "$SPOOL/mapped" &&
	writer_start &&
	writer map "$SPOOL/mapped" &&
	backup c1 &&
	writer mwrite first &&
	backup c1 &&
	grep -q "^first" "$SPOOL/mapped" &&
	in_list "$SPOOL/mapped" &&
	writer mwrite second &&
	writer unmap &&
	backup c1 &&
	grep -q "^second" "$SPOOL/mapped" &&
	in_list "$SPOOL/mapped" &&
	backup c1 &&
	! in_list "$SPOOL/mapped" &&
	writer_stop
'

# The munmap of the last reference is an IN_CLOSE_WRITE, which alone lists the
# file in the next run above. With the descriptor held unreceived in a unix
# socket there is no close: only the rows of the begin carry the write made
# after it to the next run.
expect_success 'shared mapping whose file description outlives the munmap: the next run lists the write made after begin' '
	page_file "$SPOOL/inflight" &&
	writer_start &&
	writer map-inflight "$SPOOL/inflight" &&
	backup c1 &&
	writer mwrite one &&
	backup c1 &&
	in_list "$SPOOL/inflight" &&
	chj query --under "$SPOOL/inflight" >row.before &&
	test "$(wc -l <row.before)" -eq 1 &&
	writer mwrite two &&
	writer unmap &&
	chj sync &&
	chj query --under "$SPOOL/inflight" >row.after &&
	test_cmp row.before row.after &&
	backup c1 &&
	grep -q "^two" "$SPOOL/inflight" &&
	in_list "$SPOOL/inflight" &&
	backup c1 &&
	! in_list "$SPOOL/inflight" &&
	writer_stop
'

expect_success 'native AIO write (io_submit, O_DIRECT) through a held descriptor is listed' '
	page_file "$SPOOL/aio" &&
	writer_start &&
	if writer aio "$SPOOL/aio"; then
		backup c1 &&
		writer aio-write aio-data &&
		grep -q "^aio-data" "$SPOOL/aio"
	else
		# no O_DIRECT or AIO here: a descriptor held for writing at least
		echo "# no native AIO on this file system: the held descriptor alone" &&
		writer hold "$SPOOL/aio" &&
		backup c1
	fi &&
	backup c1 &&
	in_list "$SPOOL/aio" &&
	writer_stop
'

expect_success 'exactly the writers: held for writing listed; read-only open and private mapping not' '
	page_file "$SPOOL/held" && page_file "$SPOOL/readonly" && page_file "$SPOOL/private" &&
	cp "$SPOOL/private" private.orig &&
	writer_start &&
	writer hold "$SPOOL/held" &&
	writer read "$SPOOL/readonly" &&
	writer private "$SPOOL/private" &&
	backup c1 &&
	backup c1 &&
	in_list "$SPOOL/held" &&
	! in_list "$SPOOL/readonly" &&
	! in_list "$SPOOL/private" &&
	cmp "$SPOOL/private" private.orig &&
	writer_stop
'

# last_seq: the journal's last seq (after a sync)
last_seq() {
	chj sync >/dev/null &&
	chj status | sed -n "s/^last seq: *\([0-9]*\).*/\1/p"
}

# Bounded: a begin among many processes and descriptors journals one row per
# file open for writing under the root, not one per descriptor or process.
# Timing belongs to the benchmarks (README: "What it guarantees").
expect_success 'among 100 processes holding 50 descriptors each, begin journals only the one writer' '
	mkdir -p outside &&
	page_file "$SPOOL/shared-ro" && page_file "$SPOOL/needle" &&
	writer_start &&
	writer spawn 100 50 "$TRASH/outside" "$SPOOL/shared-ro" "$SPOOL/needle" &&
	backup c1 &&
	seq0=$(last_seq) && test -n "$seq0" &&
	chj begin c1 >mode.out &&
	chj query --since "$seq0" >rows.out &&
	cut -f4 rows.out >paths.out &&
	echo "$SPOOL/needle" >expect &&
	test_cmp expect paths.out &&
	chj list c1 >list.out &&
	in_list "$SPOOL/needle" && ! in_list "$SPOOL/shared-ro" &&
	chj commit c1 &&
	writer reap &&
	writer_stop
'

# A process exiting while begin reads it: its /proc/PID/fd opened, then gone
# before fdopendir's fstat (ENOENT) made begin fail "out of memory" (seen
# under load, one begin in some hundreds). strace injects that ENOENT into
# the fstat of one sleeping process's fd directory, every time.
if command -v strace >/dev/null &&
   strace -f -qq -o /dev/null -e trace=fstat -e inject=fstat:error=ENOENT true 2>/dev/null; then
	expect_success 'a process gone while begin reads its descriptors: begin succeeds' '
		sleep 600 &
		sleeper=$! &&
		: LeakSanitizer does not work under ptrace: no leak check in an ASan build &&
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -qq -o /dev/null -P /proc/$sleeper/fd -e trace=newfstatat,fstat \
			-e inject=newfstatat,fstat:error=ENOENT \
			"$CHJOURNAL" -c "$CONF" begin c1 >mode.out 2>begin.err
		rc=$?
		kill $sleeper; wait $sleeper 2>/dev/null
		cat begin.err >&2
		: the run begin opened goes, whatever failed, so the next cases start clean &&
		aborted=0 && { chj abort c1 >/dev/null 2>&1 || aborted=1; } &&
		test $rc = 0 && test $aborted = 0 && ! grep "out of memory" begin.err
	'
else
	test_skip 'a process gone while begin reads its descriptors' 'strace with fault injection is missing'
fi

if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null && [ -e /dev/loop-control ] &&
   head -c 1048576 /dev/zero >"$SPOOL/disk.img" && cp "$SPOOL/disk.img" "$SPOOL/ro.img" &&
   loopdev=$(losetup -f --show "$SPOOL/disk.img" 2>/dev/null); then
	LOOPDEVS=$loopdev
	roloop=$(losetup -r -f --show "$SPOOL/ro.img" 2>/dev/null) && LOOPDEVS="$LOOPDEVS $roloop"
	expect_success 'a file under the root written through a loop device is listed' '
		backup c1 &&
		echo through-the-loop | dd of="$loopdev" bs=4096 count=1 conv=sync,fsync oflag=direct status=none &&
		grep -q "^through-the-loop" "$SPOOL/disk.img" &&
		backup c1 &&
		in_list "$SPOOL/disk.img" &&
		{ [ -z "$roloop" ] || ! in_list "$SPOOL/ro.img"; } &&
		losetup -d "$loopdev" &&
		{ [ -z "$roloop" ] || losetup -d "$roloop"; } &&
		LOOPDEVS= &&
		backup c1 &&
		in_list "$SPOOL/disk.img" &&
		backup c1 &&
		! in_list "$SPOOL/disk.img"
	'
	# the backing file named through a bind mount of the root's directory
	# (sysfs gives the name as begin sees it), listed before the detach
	if command -v unshare >/dev/null && unshare --mount --propagation private true 2>/dev/null; then
		expect_success 'a loop device backed by a file under the root, set up through a bind mount: listed' '
			apart_run "$apart_loop_through_bind" >mode.out 2>begin.err &&
			cat begin.err &&
			in_list "$TRASH/apart/root/disk.img" &&
			! grep -q loopalias list.out
		'
	fi
else
	rm -f "$SPOOL/disk.img" "$SPOOL/ro.img"
	echo "# skipped: a loop device backed by a file under the root (needs root, losetup and loop support)"
fi

# Another mount namespace: its names are made in its mounts. A file of ours
# held there by our name is listed; one held through a bind mount of the root
# (a name that is not the file's here) cannot be matched, and begin says so.
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null &&
   unshare --mount --propagation private true 2>/dev/null; then
	expect_success 'another mount namespace: our name is listed, a bind-mounted name is said unchecked' '
		mkdir -p alias &&
		echo a >"$SPOOL/via-alias" && echo b >"$SPOOL/by-name" &&
		backup c1 &&
		{ unshare --mount --propagation private sh -c "mount --bind \"\$1\" \"\$2\" &&
			exec 3>>\"\$2/via-alias\" 4>>\"\$1/by-name\" && echo ready >\"\$3\" &&
			exec sleep 600" sh "$SPOOL" "$TRASH/alias" "$TRASH/ns.ready" & } &&
		NS_PID=$! &&
		wait_for 20 test -s ns.ready &&
		chj begin c1 >mode.out 2>begin.err &&
		cat begin.err &&
		grep "by 1 process(es) of another mount namespace could not be checked" begin.err &&
		chj list c1 >list.out && chj commit c1 &&
		in_list "$SPOOL/by-name" &&
		{ kill "$NS_PID"; wait "$NS_PID"; NS_PID=; } &&
		chj begin c1 >mode.out 2>begin.err &&
		! grep "another mount namespace" begin.err &&
		chj commit c1
	'
	# the bind mount in the namespace of begin itself: the name /proc gives
	# is the mount's, under no root, and is read as the root's
	expect_success 'a bind mount of a directory under the root, in our own namespace: the file held through it is listed' '
		apart_run "$apart_held_through_bind" >mode.out 2>begin.err &&
		cat begin.err &&
		in_list "$TRASH/apart/root/bound/held" &&
		! grep -q alias2 list.out
	'
	# readlink() of /proc/PID/fd/N fails for a name of PATH_MAX bytes or
	# more: such a file cannot be listed, and begin says so rather than pass
	# it over (the count is this test's alone: the file is in a root apart)
	expect_success 'a file held for writing under a name too long for /proc: counted and said' '
		apart_run "$apart_held_too_long" >mode.out 2>begin.err &&
		cat begin.err &&
		grep "^chjournal: files open for writing by 1 process(es) could not be checked: /proc gives no name that leads to them on a root.s file system (4096 bytes or more" begin.err
	'
else
	echo "# skipped: another mount namespace (needs root and unshare)"
fi

# A begin that cannot journal a file open for writing fails and opens no run:
# a run that misses what the writer writes must not be handed out. The
# journal refuses the write here by a file size limit of 1 KiB on the agent
# (SIGXFSZ ignored: the write fails with EFBIG), which every write of the
# journal's WAL passes; reading it is not limited. The writer is the shell
# that runs the agent (as a child: an agent leaves itself out).
expect_success 'a begin that cannot record a file open for writing fails, and no run is open' '
	echo x >"$SPOOL/held-by-sh" &&
	must_fail sh -c "trap \"\" XFSZ; ulimit -f 1 && exec 3>>\"\$1\" &&
		\"\$2\" -c \"\$3\" begin c1; exit \$?" sh "$SPOOL/held-by-sh" "$CHJOURNAL" "$CONF" \
		>begin.out 2>begin.err &&
	cat begin.err &&
	! test -s begin.out &&
	grep "cannot journal the 1 file(s) under the roots open for writing" begin.err &&
	grep -F "not recorded: '"'"'$SPOOL/held-by-sh'"'"'" begin.err &&
	grep "no run is opened" begin.err &&
	must_fail chj list c1 2>list.err &&
	grep "has no open run" list.err &&
	backup c1 &&
	in_list "$SPOOL/held-by-sh"
'

expect_success 'the daemon stops cleanly' '
	stop_daemon
'

# With no daemon, begin covers the downtime by a rescan, and journals the
# files open for writing all the same: a row only the agent can have made.
expect_success 'no daemon running: begin journals the files open for writing all the same' '
	page_file "$SPOOL/no-daemon" &&
	writer_start &&
	writer hold "$SPOOL/no-daemon" &&
	chj begin c1 >mode.out 2>begin.err &&
	grep "no chjournald is running" begin.err &&
	chj query --under "$SPOOL/no-daemon" >rows.out &&
	cut -f3,4 rows.out | grep -qxF "modified	$SPOOL/no-daemon" &&
	chj list c1 >list.out &&
	in_list "$SPOOL/no-daemon" &&
	chj commit c1 &&
	writer_stop
'

test_done
