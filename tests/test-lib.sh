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
# require_fanotify, skip_on_fanotify REASON, test_skip TITLE REASON.
#
# CHJ_BACKEND (inotify by default, or fanotify) is the backend write_config
# puts in the configuration: run-all.sh runs the journal-core tests on both.

set -u
test_name=$(basename "$0" .sh)
CHJ_SRCDIR=${CHJ_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
CHJ_BUILDDIR=${CHJ_BUILDDIR:-$CHJ_SRCDIR}
CHJOURNAL="$CHJ_BUILDDIR/agent/chjournal"
CHJOURNALD="$CHJ_BUILDDIR/daemon/chjournald"
export LC_ALL=C
unset CHJOURNAL_CONF

TRASH=$(mktemp -d "${TMPDIR:-/tmp}/chj-$test_name.XXXXXX")
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
mkdir -p "$SPOOL" "$STATE"
cd "$TRASH" || exit 1

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
	if [ "${CHJ_KEEP_TRASH:-}" = "" ]; then
		rm -rf "$TRASH"
	fi
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

# start_daemon [ARGS]: starts chjournald in the background, waits until ready.
start_daemon() {
	: >"$DAEMON_LOG"
	"$CHJOURNALD" -c "$CONF" -v "$@" 2>>"$DAEMON_LOG" &
	DAEMON_PID=$!
	if ! wait_for 30 daemon_ready; then
		echo "start_daemon: daemon not ready; log:" >&2
		cat "$DAEMON_LOG" >&2
		return 1
	fi
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

# in_list PATH: the last backup's list.out holds PATH.
in_list() {
	grep -qxF -- "$1" list.out
}

skip_all() {
	echo "1..0 # SKIP $test_name: $*"
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
	echo "# $test_name: $test_passed passed, $test_failed failed$_td_more"
	[ "$test_failed" -eq 0 ] && [ "$test_fixed" -eq 0 ]
}
