# test-lib.sh: the small library every end-to-end test (tests/tNNNN-*.sh)
# sources. Each test script runs in its own temporary directory with its own
# spool, journal and configuration; a daemon it starts is stopped on exit.
#
#   . "$(dirname "$0")/test-lib.sh"
#   expect_success 'title' 'commands && commands'
#   expect_failure 'title' 'commands'    (a known breakage: see below)
#   test_done
#
# Helpers: chj ARGS (the agent on this test's config), start_daemon,
# stop_daemon, kill_daemon, wait_for SECONDS CMD..., backup CONSUMER (begin,
# list -0 into list.out as lines, commit), test_cmp EXPECTED ACTUAL, must_fail
# CMD..., require_root, skip_all REASON, write_config [extra lines],
# sync_across_overflow CMD...,
# require_fanotify, skip_on_fanotify REASON, test_skip TITLE REASON,
# test_ports N (free TCP ports, reserved for this test), sysctl_lock and
# sysctl_unlock (around a brief change of a kernel setting that daemons read
# when they start), daemon_start_lock and daemon_start_unlock (around a
# daemon's start that does not go through start_daemon).
#
# The output is TAP, read by Automake's TAP driver (`make check`): "ok N",
# "not ok N", "# TODO" for the known breakages, "1..0 # SKIP" for a script
# skipped whole, and the plan "1..N" at the end (test_done): a script that
# dies before test_done has no plan, which the driver reports as an error.
#
# CHJ_BACKEND (inotify by default, or fanotify) is the backend write_config
# puts in the configuration: `make check` runs the journal-core tests on both
# (tests/NAME.sh on inotify, tests/fanotify/NAME.fanotify on fanotify).
#
# Isolation, for tests run side by side (make -j check): each test has its own
# directory ($TRASH, a tmpfs of its own on a fanotify run as root: see
# below), its own ports (test_ports), and changes a kernel setting only under
# sysctl_lock, restoring it at once.

set -u
test_name=$(basename "$0" .sh)
CHJ_SRCDIR=${CHJ_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
CHJ_BUILDDIR=${CHJ_BUILDDIR:-$CHJ_SRCDIR}
CHJOURNAL="$CHJ_BUILDDIR/agent/chjournal"
CHJOURNALD="$CHJ_BUILDDIR/daemon/chjournald"
export LC_ALL=C
unset CHJOURNAL_CONF

TRASH=$(mktemp -d "${TMPDIR:-/tmp}/chj-$test_name.XXXXXX") || exit 1
SPOOL="$TRASH/spool"
STATE="$TRASH/state"
CONF="$TRASH/chjournal.conf"
DAEMON_LOG="$TRASH/daemon.log"
DAEMON_PID=
CHJ_BACKEND=${CHJ_BACKEND:-inotify}
FANOTIFY_PROBE="$CHJ_BUILDDIR/tests/probe/fanotify-probe"
test_count=0
test_failed=0
test_passed=0
test_broken=0
test_fixed=0

# The test's directory is a tmpfs of its own on a fanotify run, as root
# (CHJ_TRASH_TMPFS=yes before sourcing this file asks for it on any run, =no
# never): fanotify marks a whole file system, and on a shared /tmp the daemon
# would see, and spend its time on, the events of every test running beside
# it and of every other program there. Where fanotify refuses the tmpfs, the
# test stays on $TMPDIR's file system. Unmounted at the end (test_cleanup).
TRASH_TMPFS=
case "${CHJ_TRASH_TMPFS:-}" in
'') [ "$CHJ_BACKEND" = fanotify ] && _tl_tmpfs=yes || _tl_tmpfs=no ;;
*) _tl_tmpfs=$CHJ_TRASH_TMPFS ;;
esac
if [ "$_tl_tmpfs" = yes ] && [ "$(id -u)" = 0 ] &&
   mount -t tmpfs -o size=4g,mode=0700 "chj-$test_name" "$TRASH" 2>/dev/null; then
	TRASH_TMPFS=1
	if [ -x "$FANOTIFY_PROBE" ] && ! "$FANOTIFY_PROBE" "$TRASH" >/dev/null 2>&1; then
		umount "$TRASH"
		TRASH_TMPFS=
	fi
fi
mkdir -p "$SPOOL" "$STATE"
cd "$TRASH" || exit 1

# Ports reserved by test_ports: a file per port, holding the test's pid.
CHJ_PORTS_DIR=/tmp/chjournal-tests.ports

test_cleanup() {
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -CONT "$DAEMON_PID" 2>/dev/null
		kill -TERM "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
	fi
	if [ -n "${test_cleanup_extra:-}" ]; then
		eval "$test_cleanup_extra"
	fi
	cd /
	if [ -d "$CHJ_PORTS_DIR" ]; then
		for _tc_p in "$CHJ_PORTS_DIR"/*; do
			[ "$(cat "$_tc_p" 2>/dev/null)" = "$$" ] && rm -f "$_tc_p"
		done
	fi
	if [ "${CHJ_KEEP_TRASH:-}" != "" ]; then
		[ -z "$TRASH_TMPFS" ] || echo "# kept $TRASH, a tmpfs: umount it when done"
		return
	fi
	if [ -n "$TRASH_TMPFS" ]; then
		# with whatever the test left mounted below it
		umount -R "$TRASH" 2>/dev/null || umount -R -l "$TRASH" 2>/dev/null ||
			umount -l "$TRASH"
	fi
	rm -rf "$TRASH"
}
trap test_cleanup EXIT
trap 'exit 130' INT TERM

# write_config [LINE]...: the test's configuration (one root, fast flushes).
write_config() {
	{
		# the defaults, for the single-valued keys the test does not set
		for d in "journal = $STATE/journal.db" "flush_interval_ms = 50" "sync_timeout = 20" \
		    "backend = $CHJ_BACKEND"; do
			_wc_key=${d%% =*}
			_wc_set=
			for line in "$@"; do
				case "$line" in "$_wc_key "*|"$_wc_key="*) _wc_set=1 ;; esac
			done
			[ -n "$_wc_set" ] || echo "$d"
		done
		echo "root = $SPOOL"
		for line in "$@"; do
			echo "$line"
		done
	} >"$CONF"
}
write_config

# Where a process exists whose descriptors root cannot read (a VM's or a
# container's supervisor as pid 1, with capabilities root lacks here), every
# `begin` says that files open for writing by it could not be checked (see
# t0116, which checks that line itself). Tests about other things take it
# out of chj's stderr, on such a machine only; the exit status is kept.
if [ -L /proc/1/fd/0 ] && ! readlink /proc/1/fd/0 >/dev/null 2>&1; then
	CHJ_UNCHECKABLE_PID1=1
fi
chj() {
	if [ -z "${CHJ_UNCHECKABLE_PID1:-}" ]; then
		"$CHJOURNAL" -c "$CONF" "$@"
		return
	fi
	"$CHJOURNAL" -c "$CONF" "$@" 2>"$TRASH/.chj-stderr"
	_chj_rc=$?
	grep -v "^chjournal: files open for writing by 1 process(es) could not be checked (permission denied" \
		"$TRASH/.chj-stderr" >&2
	return $_chj_rc
}

# wait_for SECONDS CMD...: polls CMD every 50 ms until it succeeds.
wait_for() {
	_wf_limit=$(( $1 * 20 ))
	shift
	_wf_i=0
	while ! "$@" >/dev/null 2>&1; do
		_wf_i=$((_wf_i + 1))
		if [ "$_wf_i" -ge "$_wf_limit" ]; then
			echo "wait_for: timed out: $*" >&2
			return 1
		fi
		sleep 0.05
	done
	return 0
}

daemon_ready() {
	grep -q 'ready:' "$DAEMON_LOG" 2>/dev/null &&
	chj status 2>/dev/null | grep -q '^daemon: *running'
}

# The kernel sizes an inotify or fanotify queue when the instance is made,
# from fs.inotify.max_queued_events or fs.fanotify.max_queued_events. A test
# that changes such a setting for a moment (t0501 lowers the inotify one to
# overflow its daemon's queue) does it under sysctl_lock, restores it and
# calls sysctl_unlock; start_daemon (and daemon_start_lock) holds the same
# lock shared until the daemon is ready, so that no daemon of another test
# is started with the changed value. The lock is the machine's, not the
# build's: test runs of other checkouts take it too. Fd 5 holds it; the
# daemon is started with fd 5 closed.
CHJ_SYSCTL_LOCK=/tmp/chjournal-tests.sysctl.lock
_tl_sysctl_locked=
# _tl_lock -s|-x: takes the lock shared or exclusive (at most 300 s)
_tl_lock() {
	[ -e "$CHJ_SYSCTL_LOCK" ] || : >>"$CHJ_SYSCTL_LOCK" 2>/dev/null
	exec 5<"$CHJ_SYSCTL_LOCK" || return 1
	flock -w 300 "$1" 5 || { echo "cannot take $CHJ_SYSCTL_LOCK ($1)" >&2; exec 5<&-; return 1; }
}
sysctl_lock() {
	_tl_lock -x && _tl_sysctl_locked=1
}
sysctl_unlock() {
	_tl_sysctl_locked=
	exec 5<&-
}
# daemon_start_lock, daemon_start_unlock: around the start of a daemon (with
# 5<&- on its command) until it is ready; nothing while the test itself holds
# sysctl_lock
daemon_start_lock() {
	[ -n "$_tl_sysctl_locked" ] || _tl_lock -s
}
daemon_start_unlock() {
	[ -n "$_tl_sysctl_locked" ] || exec 5<&-
}

# start_daemon [ARGS]: starts chjournald in the background, waits until ready.
start_daemon() {
	: >"$DAEMON_LOG"
	daemon_start_lock || return 1
	"$CHJOURNALD" -c "$CONF" -v "$@" 2>>"$DAEMON_LOG" 5<&- &
	DAEMON_PID=$!
	if ! wait_for 30 daemon_ready; then
		daemon_start_unlock
		echo "start_daemon: daemon not ready; log:" >&2
		cat "$DAEMON_LOG" >&2
		return 1
	fi
	daemon_start_unlock
}

# test_ports N: prints N TCP ports that nothing on the machine is bound to,
# below the kernel's range of ephemeral ports (so that no outgoing
# connection takes one before the test's server listens), each reserved for
# this test until it ends: tests run side by side, in this checkout or
# another, never get the same one (tests/ports.py).
test_ports() {
	python3 "$CHJ_SRCDIR/tests/ports.py" "$CHJ_PORTS_DIR" "$$" "$1"
}

# stop_daemon: SIGTERM, and the daemon must exit 0.
stop_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill -TERM "$DAEMON_PID"
	wait "$DAEMON_PID"
	_sd_rc=$?
	DAEMON_PID=
	if [ "$_sd_rc" -ne 0 ]; then
		echo "stop_daemon: exit status $_sd_rc; log:" >&2
		cat "$DAEMON_LOG" >&2
		return 1
	fi
}

# kill_daemon: SIGKILL, as a crash would.
kill_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill -KILL "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
	return 0
}

# backup CONSUMER: begin (mode into mode.out), list -0 into list.out (one path
# per line; names with newlines are shown escaped as \n), commit.
backup() {
	chj begin "$1" >mode.out &&
	chj list "$1" -0 >list.raw &&
	tr '\n\0' '\001\n' <list.raw | sed 's/\x01/\\n/g' >list.out &&
	chj commit "$1"
}

# test_cmp EXPECTED ACTUAL: files must be equal; shows the diff otherwise.
test_cmp() {
	diff -u "$1" "$2"
}

# must_fail CMD...: CMD must exit non-zero without being killed by a signal.
must_fail() {
	"$@"
	_mf_rc=$?
	if [ "$_mf_rc" -eq 0 ]; then
		echo "must_fail: succeeded: $*" >&2
		return 1
	fi
	if [ "$_mf_rc" -gt 128 ]; then
		echo "must_fail: died of a signal ($_mf_rc): $*" >&2
		return 1
	fi
	return 0
}

# sync_across_overflow CMD...: with the daemon stopped, runs CMD (which must
# overflow the kernel queue), starts `chj sync` (its cookie's event is lost
# with the others), resumes the daemon; the sync must return and status must
# count a new overflow.
sync_across_overflow() {
	_so_n0=$(chj status | sed -n "s/^overflows: *//p")
	kill -STOP "$DAEMON_PID" || return 1
	"$@" || { kill -CONT "$DAEMON_PID"; return 1; }
	chj sync >sync.out 2>&1 &
	_so_pid=$!
	wait_for 10 sh -c "ls -a \"$SPOOL\" | grep -q chjournal-cookie" &&
	kill -CONT "$DAEMON_PID" &&
	wait "$_so_pid" &&
	test "$(chj status | sed -n "s/^overflows: *//p")" -gt "$_so_n0"
}

# test_expect_code N COMMAND...: COMMAND exits with status N (else says both)
test_expect_code() {
	_want=$1
	shift
	"$@"
	_got=$?
	if [ "$_got" -ne "$_want" ]; then
		echo "test_expect_code: want exit $_want, got $_got: $*" >&2
		return 1
	fi
}

# in_list PATH: the last backup's list.out holds PATH.
in_list() {
	grep -qxF -- "$1" list.out
}

# skip_all REASON: the rest of the script cannot run here; before any test,
# the whole script is skipped ("1..0 # SKIP")
skip_all() {
	if [ "$test_count" -eq 0 ]; then
		echo "1..0 # SKIP $test_name: $*"
	else
		echo "# the rest skipped: $*"
		echo "1..$test_count"
	fi
	echo "# skipped: $*"
	exit 0
}

require_root() {
	[ "$(id -u)" = 0 ] || skip_all "needs root"
}

# fanotify_refused: prints why fanotify cannot mark the spool's file system
# here (kernel, privileges, file system); fails when it can.
fanotify_refused() {
	[ -x "$FANOTIFY_PROBE" ] || { echo "no $FANOTIFY_PROBE (run make check)"; return 0; }
	! "$FANOTIFY_PROBE" "$SPOOL"
}

# require_fanotify: skips the test where fanotify is refused.
require_fanotify() {
	_rf_why=$(fanotify_refused) && skip_all "fanotify refused here: $_rf_why"
	:
}

# skip_on_fanotify REASON: a test of inotify internals; skipped when the
# run is on fanotify (and skipped on a fanotify run the kernel refuses).
skip_on_fanotify() {
	[ "$CHJ_BACKEND" = fanotify ] && skip_all "inotify only: $*"
	:
}

# on_inotify CMD...: runs CMD (an assertion on inotify internals, such as the
# watch count) on an inotify run; succeeds without it on a fanotify run.
on_inotify() {
	[ "$CHJ_BACKEND" != inotify ] || "$@"
}

# expect_success_inotify TITLE BODY: a test of inotify internals, only run
# on an inotify run (a comment line, not counted, on a fanotify run).
expect_success_inotify() {
	if [ "$CHJ_BACKEND" != inotify ]; then
		echo "# skip: $1 (inotify only)"
		return 0
	fi
	expect_success "$@"
}

# On a fanotify run, every test needs fanotify.
[ "$CHJ_BACKEND" = fanotify ] && require_fanotify

test_run_body() {
	eval "$1"
}

expect_success() {
	test_count=$((test_count + 1))
	_es_out="$TRASH/.test-$test_count.out"
	# the body runs in this shell (like git's test-lib), so a daemon it starts
	# stays known to the rest of the script; inside a function, so that a
	# `return` in a body ends that test with its status instead of escaping
	if test_run_body "$2" >"$_es_out" 2>&1 </dev/null; then
		test_passed=$((test_passed + 1))
		echo "ok $test_count - $1"
	else
		test_failed=$((test_failed + 1))
		echo "not ok $test_count - $1"
		sed 's/^/#    /' "$_es_out"
		if [ -s "$DAEMON_LOG" ]; then
			echo "#    --- daemon log (last 20 lines) ---"
			tail -n 20 "$DAEMON_LOG" | sed 's/^/#    /'
		fi
	fi
}

# expect_failure TITLE BODY: a known breakage (git's test_expect_failure):
# BODY asserts what should happen and today does not. A failing BODY is
# "not ok N - TITLE # TODO known breakage" and does not fail the script; a
# BODY that passes is "ok N - TITLE # TODO known breakage vanished" and fails
# the script, so that whoever fixes it turns it into an expect_success.
expect_failure() {
	test_count=$((test_count + 1))
	_ef_out="$TRASH/.test-$test_count.out"
	if test_run_body "$2" >"$_ef_out" 2>&1 </dev/null; then
		test_fixed=$((test_fixed + 1))
		echo "ok $test_count - $1 # TODO known breakage vanished"
		echo "#    it passes now: make it an expect_success"
	else
		test_broken=$((test_broken + 1))
		echo "not ok $test_count - $1 # TODO known breakage"
		sed 's/^/#    /' "$_ef_out"
	fi
}

# test_skip TITLE REASON: a test that cannot run here (a comment line, not
# counted).
test_skip() {
	echo "# skip: $1 ($2)"
}

test_done() {
	_td_more=
	[ "$test_broken" -eq 0 ] || _td_more="$_td_more, $test_broken known breakages"
	[ "$test_fixed" -eq 0 ] || _td_more="$_td_more, $test_fixed known breakages vanished"
	echo "# $test_name: $test_passed passed, $test_failed failed$_td_more (${SECONDS:-?} s)"
	echo "1..$test_count"
	[ "$test_failed" -eq 0 ] && [ "$test_fixed" -eq 0 ]
}
