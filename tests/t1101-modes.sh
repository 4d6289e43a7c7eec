#!/bin/bash
# t1101-modes: what SECURITY.md promises about the files chjournal writes.
# - the journal directory (0700), the database and its -wal/-shm, the lock
#   file (0600), the consumers directory (0700) and every cursor file (0600)
#   get restrictive modes even when the daemon and the agent run under
#   `umask 000`;
# - sync cookies are created by mknod(S_IFREG|0600), which fails on any
#   existing name and follows no symlink, and never opened (checked with
#   strace; skipped without it), no cookie is left in a root, none is ever
#   listed or kept as a journal row;
# - consumer names carrying quotes, semicolons or SQL are refused, and the
#   journal is intact afterwards.
. "$(dirname "$0")/test-lib.sh"

# mode_of FILE: the permission bits in octal (e.g. 600)
mode_of() {
	stat -c %a "$1"
}

# want_mode MODE FILE...
want_mode() {
	_wm_mode=$1
	shift
	for _wm_f in "$@"; do
		[ -e "$_wm_f" ] || { echo "missing: $_wm_f"; return 1; }
		_wm_got=$(mode_of "$_wm_f")
		[ "$_wm_got" = "$_wm_mode" ] || { echo "$_wm_f: mode $_wm_got, want $_wm_mode"; return 1; }
	done
}

mkdir -p "$SPOOL/user/alice"
echo hello >"$SPOOL/user/alice/1."

expect_success 'daemon and agent under umask 000: journal dir 0700, db/-wal/-shm/lock 0600' '
	umask 000 &&
	rmdir "$STATE" &&
	start_daemon &&
	echo more >"$SPOOL/user/alice/2." &&
	chj sync &&
	want_mode 700 "$STATE" &&
	want_mode 600 "$STATE/journal.db" "$STATE/journal.db-wal" \
		"$STATE/journal.db-shm" "$STATE/journal.db.lock"
'

expect_success 'umask 000: consumers directory 0700, cursor files and their lock 0600' '
	umask 000 &&
	backup c1 &&
	backup other@host &&
	chj begin c1 >/dev/null &&
	want_mode 700 "$STATE/consumers" &&
	want_mode 600 "$STATE/consumers/c1" "$STATE/consumers/other@host" \
		"$STATE/consumers/.lock" &&
	chj abort c1 &&
	want_mode 600 "$STATE/consumers/c1" &&
	# no temporary cursor file is left behind
	ls -A "$STATE/consumers" >consumers.ls &&
	printf "%s\n" .lock c1 other@host >consumers.want &&
	test_cmp consumers.want consumers.ls
'

expect_success 'umask 000: a configured consumers directory is created 0700 too' '
	umask 000 &&
	stop_daemon &&
	write_config "consumers = $TRASH/cursors" &&
	start_daemon &&
	backup c2 &&
	want_mode 700 "$TRASH/cursors" &&
	want_mode 600 "$TRASH/cursors/c2" &&
	stop_daemon &&
	write_config &&
	start_daemon
'

expect_success 'a journal created by a restarted daemon under umask 000 is 0600' '
	umask 000 &&
	stop_daemon &&
	rm -rf "$STATE" &&
	start_daemon &&
	chj sync &&
	want_mode 700 "$STATE" &&
	want_mode 600 "$STATE/journal.db" "$STATE/journal.db-wal" \
		"$STATE/journal.db-shm" "$STATE/journal.db.lock"
'

# LeakSanitizer cannot run under ptrace: no leak check for the strace'd agent
STRACE_ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
if command -v strace >/dev/null 2>&1 && strace -f -o /dev/null true 2>/dev/null; then
	# cookie_calls_ok FILE: every call naming a cookie creates it with
	# mknod(S_IFREG|0600) (exclusive, follows no symlink) and none opens it
	cookie_calls_ok() {
		grep "chjournal-cookie\\." "$1" >cookie-calls.out &&
		grep -E "^[0-9]+ +mknod(at)?\(" cookie-calls.out >cookie-mknods.out &&
		test "$(wc -l <cookie-mknods.out)" -ge 1 &&
		! grep -v "S_IFREG|0600" cookie-mknods.out &&
		! grep -E "^[0-9]+ +open(at)?\(" cookie-calls.out
	}
	expect_success 'the agent creates each sync cookie with mknod(S_IFREG|0600) and never opens one' '
		ASAN_OPTIONS=$STRACE_ASAN_OPTIONS strace -f -e trace=open,openat,mknod,mknodat -o strace.out "$CHJOURNAL" -c "$CONF" sync &&
		cookie_calls_ok strace.out &&
		ASAN_OPTIONS=$STRACE_ASAN_OPTIONS strace -f -e trace=open,openat,mknod,mknodat -o strace2.out "$CHJOURNAL" -c "$CONF" begin c1 >/dev/null &&
		cookie_calls_ok strace2.out &&
		chj abort c1
	'
else
	echo "# skipped the strace check: strace missing or not permitted"
fi

expect_success 'no cookie is left in the root, listed, or kept in the journal' '
	mkdir -p "$SPOOL/user/bob" &&
	for i in 1 2 3 4 5; do
		echo "$i" >"$SPOOL/user/bob/$i." &&
		chj sync || return 1
	done &&
	backup c1 &&
	find "$SPOOL" -name ".chjournal-cookie*" >cookies.left &&
	test_cmp /dev/null cookies.left &&
	! grep -F ".chjournal-cookie" list.out &&
	chj begin c1 >/dev/null &&
	chj list c1 --deleted >deleted.out &&
	! grep -F ".chjournal-cookie" deleted.out &&
	chj abort c1 &&
	chj query >query.out &&
	chj query --json >query.json &&
	! grep -F ".chjournal-cookie" query.out query.json &&
	# a full run (which walks the roots) does not list one either
	chj forget c1 &&
	backup c1 &&
	grep -q "^full" mode.out &&
	! grep -F ".chjournal-cookie" list.out
'

expect_success 'a left-over cookie file directly in a root is never listed' '
	# e.g. an agent killed between creating and removing its cookie
	echo stale >"$SPOOL/.chjournal-cookie.1.0011223344556677" &&
	backup c1 &&
	! grep -F ".chjournal-cookie" list.out &&
	chj forget c1 &&
	backup c1 &&
	grep -q "^full" mode.out &&
	! grep -F ".chjournal-cookie" list.out &&
	rm -f "$SPOOL/.chjournal-cookie.1.0011223344556677"
'

expect_success 'a cookie-like name below the root is real data: listed (incremental and full)' '
	mkdir -p "$SPOOL/user/alice/.chjournal-cookie.Secret/cur" &&
	echo mail >"$SPOOL/user/alice/.chjournal-cookie.Secret/cur/1." &&
	echo note >"$SPOOL/user/alice/.chjournal-cookie.note" &&
	backup c1 &&
	in_list "$SPOOL/user/alice/.chjournal-cookie.Secret/cur/1." &&
	in_list "$SPOOL/user/alice/.chjournal-cookie.note" &&
	chj forget c1 &&
	backup c1 &&
	grep -q "^full" mode.out &&
	in_list "$SPOOL/user/alice/.chjournal-cookie.Secret/cur/1." &&
	in_list "$SPOOL/user/alice/.chjournal-cookie.note"
'

expect_success 'consumer names with quotes, semicolons or SQL are refused; the journal is intact' '
	chj query >query.before &&
	ls -A "$STATE/consumers" >consumers.before &&
	for name in "x'"'"';DROP TABLE changes;--" "x\";DROP TABLE changes;--" \
		"a;b" "a'"'"'b" "1 OR 1=1" "x) ; DELETE FROM changes; --" "../journal.db" \
		"c1;" "\`id\`" "\$(id)"; do
		for cmd in begin list commit abort forget; do
			"$CHJOURNAL" -c "$CONF" $cmd "$name" >out 2>err
			rc=$?
			[ $rc -eq 1 ] || { echo "$cmd $name: exit $rc, want 1"; cat err; return 1; }
			test_cmp /dev/null out || return 1
			grep -q "^chjournal: invalid consumer name " err ||
				{ echo "$cmd $name:"; cat err; return 1; }
		done
	done &&
	ls -A "$STATE/consumers" >consumers.after &&
	test_cmp consumers.before consumers.after &&
	chj query >query.after &&
	test_cmp query.before query.after &&
	echo new >"$SPOOL/user/alice/3." &&
	backup c1 &&
	grep -q "^incremental" mode.out &&
	in_list "$SPOOL/user/alice/3." &&
	chj status >/dev/null
'

expect_success 'daemon still fine after all that' '
	stop_daemon
'

test_done
