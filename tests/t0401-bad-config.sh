#!/bin/bash
# t0401-bad-config: malformed configurations are refused by both programs
# with exit status 1 and a message naming the file, the line and the key;
# the daemon does not start on them (no lock file, no journal). A root that
# is missing is not malformed (t0214), but one written wrong still is.
. "$(dirname "$0")/test-lib.sh"

BAD="$TRASH/bad"
mkdir -p "$BAD" "$SPOOL/u" "$TRASH/spool2"
echo x >"$TRASH/a-file"
ln -s "$SPOOL" "$TRASH/spool-link"

# case NAME MODE EXPECTED LINE...: configuration $BAD/NAME.conf made of the
# lines (printf %b: \0 makes a NUL byte); both programs must print EXPECTED
# (MODE "=": the whole message, after "PROGRAM: "; MODE "^": its beginning).
# Each case's journal is in its own directory $STATE/NAME, which must not
# be created.
names=()
modes=()
expects=()
case_() {
	_name=$1 _mode=$2 _expect=$3
	shift 3
	names+=("$_name")
	modes+=("$_mode")
	expects+=("$_expect")
	: >"$BAD/$_name.conf"
	for _l in "$@"; do
		printf "%b\n" "$_l" >>"$BAD/$_name.conf"
	done
}

# the usual first line: this case's own journal
J() {
	echo "journal = $STATE/$1/journal.db"
}

F() {
	echo "$BAD/$1.conf"
}

case_ unknown-key = "$(F unknown-key):3: key 'foo': unknown key" \
	"$(J unknown-key)" "root = $SPOOL" "foo = bar"
case_ key-case = "$(F key-case):2: key 'Root': unknown key" \
	"$(J key-case)" "Root = $SPOOL"
case_ key-with-space = "$(F key-with-space):4: key 'flush interval_ms': unknown key" \
	"$(J key-with-space)" "root = $SPOOL" "# a comment" "flush interval_ms = 100"
case_ missing-equals = "$(F missing-equals):2: expected 'key = value', got 'root $SPOOL'" \
	"$(J missing-equals)" "root $SPOOL"
case_ empty-value = "$(F empty-value):3: key 'exclude': missing value" \
	"$(J empty-value)" "root = $SPOOL" "exclude =   "
case_ empty-root = "$(F empty-root):2: key 'root': missing value" \
	"$(J empty-root)" "root ="
case_ missing-key = "$(F missing-key):3: missing key before '='" \
	"$(J missing-key)" "root = $SPOOL" "  = 100"
case_ relative-root = "$(F relative-root):2: key 'root': 'spool' is not an absolute path" \
	"$(J relative-root)" "root = spool"
case_ unnormalized-root = "$(F unnormalized-root):2: key 'root': '$SPOOL/../spool' is not a normalized path (no '.', '..' or '//')" \
	"$(J unnormalized-root)" "root = $SPOOL/../spool"
case_ missing-root-relative = "$(F missing-root-relative):3: key 'root': 'nosuch' is not an absolute path" \
	"$(J missing-root-relative)" "root = $SPOOL" "root = nosuch"
case_ missing-root-overlaps = "$(F missing-root-overlaps):3: key 'root': '$SPOOL/nosuch' overlaps root '$SPOOL'" \
	"$(J missing-root-overlaps)" "root = $SPOOL" "root = $SPOOL/nosuch"
case_ root-is-file = "$(F root-is-file):2: key 'root': '$TRASH/a-file' is not a directory" \
	"$(J root-is-file)" "root = $TRASH/a-file"
case_ root-is-symlink = "$(F root-is-symlink):2: key 'root': '$TRASH/spool-link' is a symlink: name the directory it points to ('$SPOOL')" \
	"$(J root-is-symlink)" "root = $TRASH/spool-link"
case_ overlapping-roots = "$(F overlapping-roots):3: key 'root': '$SPOOL/u' overlaps root '$SPOOL'" \
	"$(J overlapping-roots)" "root = $SPOOL" "root = $SPOOL/u"
case_ overlapping-roots-parent = "$(F overlapping-roots-parent):4: key 'root': '$SPOOL' overlaps root '$SPOOL/u'" \
	"$(J overlapping-roots-parent)" "root = $TRASH/spool2" "root = $SPOOL/u" "root = $SPOOL"
case_ duplicate-root = "$(F duplicate-root):3: key 'root': '$SPOOL' overlaps root '$SPOOL'" \
	"$(J duplicate-root)" "root = $SPOOL" "root = $SPOOL/"
case_ no-root = "$(F no-root): key 'root': no root configured (add a line 'root = /path/to/spool')" \
	"$(J no-root)" "flush_interval_ms = 100"
case_ bad-regex ^ "$(F bad-regex):3: key 'exclude': bad regular expression '(unclosed': " \
	"$(J bad-regex)" "root = $SPOOL" "exclude = (unclosed"
case_ unknown-backend = "$(F unknown-backend):3: key 'backend': unknown backend 'kqueue' (expected 'inotify', 'fanotify' or 'auto')" \
	"$(J unknown-backend)" "root = $SPOOL" "backend = kqueue"
case_ upper-backend = "$(F upper-backend):3: key 'backend': unknown backend 'FANOTIFY' (expected 'inotify', 'fanotify' or 'auto')" \
	"$(J upper-backend)" "root = $SPOOL" "backend = FANOTIFY"
case_ flush-too-small = "$(F flush-too-small):3: key 'flush_interval_ms': '9' is not a number from 10 to 60000" \
	"$(J flush-too-small)" "root = $SPOOL" "flush_interval_ms = 9"
case_ flush-too-large = "$(F flush-too-large):3: key 'flush_interval_ms': '60001' is not a number from 10 to 60000" \
	"$(J flush-too-large)" "root = $SPOOL" "flush_interval_ms = 60001"
case_ flush-not-numeric = "$(F flush-not-numeric):3: key 'flush_interval_ms': 'fast' is not a number from 10 to 60000" \
	"$(J flush-not-numeric)" "root = $SPOOL" "flush_interval_ms = fast"
case_ flush-unit = "$(F flush-unit):3: key 'flush_interval_ms': '100ms' is not a number from 10 to 60000" \
	"$(J flush-unit)" "root = $SPOOL" "flush_interval_ms = 100ms"
case_ flush-negative = "$(F flush-negative):3: key 'flush_interval_ms': '-100' is not a number from 10 to 60000" \
	"$(J flush-negative)" "root = $SPOOL" "flush_interval_ms = -100"
case_ flush-inline-comment = "$(F flush-inline-comment):3: key 'flush_interval_ms': '100 # fast' is not a number from 10 to 60000" \
	"$(J flush-inline-comment)" "root = $SPOOL" "flush_interval_ms = 100 # fast"
case_ batch-zero = "$(F batch-zero):3: key 'batch_size': '0' is not a number from 1 to 10000000" \
	"$(J batch-zero)" "root = $SPOOL" "batch_size = 0"
case_ batch-overflow = "$(F batch-overflow):3: key 'batch_size': '18446744073709551617' is not a number from 1 to 10000000" \
	"$(J batch-overflow)" "root = $SPOOL" "batch_size = 18446744073709551617"
case_ sync-timeout-zero = "$(F sync-timeout-zero):3: key 'sync_timeout': '0' is not a number of seconds from 1 to 86400" \
	"$(J sync-timeout-zero)" "root = $SPOOL" "sync_timeout = 0"
case_ log-level = "$(F log-level):3: key 'log_level': unknown level 'verbose' (expected error, warning, info or debug)" \
	"$(J log-level)" "root = $SPOOL" "log_level = verbose"
case_ relative-journal = "$(F relative-journal):2: key 'journal': 'state/journal.db' is not an absolute path" \
	"root = $SPOOL" "journal = state/journal.db"
case_ relative-consumers = "$(F relative-consumers):3: key 'consumers': 'consumers' is not an absolute path" \
	"$(J relative-consumers)" "root = $SPOOL" "consumers = consumers"
case_ nul-byte = "$(F nul-byte):3: line contains a NUL byte" \
	"$(J nul-byte)" "root = $SPOOL" "flush_interval_ms = 10\\00"
case_ error-after-valid-lines = "$(F error-after-valid-lines):7: key 'log_level': unknown level 'loud' (expected error, warning, info or debug)" \
	"$(J error-after-valid-lines)" "root = $SPOOL" "" "# comment" "exclude = /tmp/x$" "batch_size = 10" "log_level = loud"

# Configurations that are not files.
names+=(nonexistent)
modes+=(=)
expects+=("$BAD/nonexistent.conf: cannot read configuration: No such file or directory")
mkdir "$BAD/a-directory.conf"
names+=(a-directory)
modes+=(=)
expects+=("$BAD/a-directory.conf: cannot read configuration: Is a directory")

# check_msg PROGRAM ERRFILE: ERRFILE is one line, "PROGRAM: " + the case's
# expected message
check_msg() {
	_want="$1: $_expect"
	if [ "$(wc -l <"$2")" -ne 1 ]; then
		echo "$1: expected one line of error, got:"
		cat "$2"
		return 1
	fi
	_got=$(cat "$2")
	case $_mode in
	=)
		[ "$_got" = "$_want" ] ;;
	^)
		[ "${_got#"$_want"}" != "$_got" ] && [ "$_got" != "$_want" ] ;;
	esac || {
		echo "$1: message differs"
		echo "want: $_want"
		echo "got:  $_got"
		return 1
	}
}

# check_case INDEX
check_case() {
	_name=${names[$1]} _mode=${modes[$1]} _expect=${expects[$1]}
	_conf="$BAD/$_name.conf"
	timeout 20 "$CHJOURNALD" -c "$_conf" >out 2>err.out
	_rc=$?
	[ "$_rc" -eq 1 ] || { echo "chjournald: exit $_rc, want 1"; cat err.out; return 1; }
	test_cmp /dev/null out || return 1
	check_msg chjournald err.out || return 1
	timeout 20 "$CHJOURNALD" -c "$_conf" --daemon --pidfile "$TRASH/$_name.pid" >out 2>err.out
	_rc=$?
	[ "$_rc" -eq 1 ] || { echo "chjournald --daemon: exit $_rc, want 1"; return 1; }
	check_msg chjournald err.out || return 1
	[ ! -e "$TRASH/$_name.pid" ] || { echo "pid file written"; return 1; }
	"$CHJOURNAL" -c "$_conf" status >out 2>err.out
	_rc=$?
	[ "$_rc" -eq 1 ] || { echo "chjournal status: exit $_rc, want 1"; cat err.out; return 1; }
	test_cmp /dev/null out || return 1
	check_msg chjournal err.out || return 1
	"$CHJOURNAL" -c "$_conf" begin c1 >out 2>err.out
	_rc=$?
	[ "$_rc" -eq 1 ] || { echo "chjournal begin: exit $_rc, want 1"; return 1; }
	check_msg chjournal err.out || return 1
	# nothing created: no journal directory, no lock file, no journal
	if [ -e "$STATE/$_name" ]; then
		echo "$STATE/$_name was created:"
		ls -la "$STATE/$_name"
		return 1
	fi
}

default_lock_existed=no
[ -e /var/lib/chjournal/journal.db.lock ] && default_lock_existed=yes

expect_success 'at least 20 malformed configurations' '
	test "${#names[@]}" -ge 20
'

for i in "${!names[@]}"; do
	expect_success "bad config ${names[$i]}: both programs exit 1 with the message" "
		check_case $i
	"
done

expect_success 'the state directory holds nothing after all the cases' '
	ls -A "$STATE" >state.ls &&
	test_cmp /dev/null state.ls &&
	# the cases without a journal key would use the default journal
	{ [ $default_lock_existed = yes ] || [ ! -e /var/lib/chjournal/journal.db.lock ]; }
'

expect_success 'control: the same checks pass on a valid configuration' '
	printf "%s\n" "$(J good)" "root = $SPOOL" \
		"exclude = \\.tmp$" "backend = inotify" "log_level = debug" "batch_size = 10000000" \
		"flush_interval_ms = 60000" "sync_timeout = 86400" >"$BAD/good.conf" &&
	CONF="$BAD/good.conf" &&
	start_daemon &&
	test -s "$STATE/good/journal.db.lock" &&
	test "$(cat "$STATE/good/journal.db.lock")" = "$DAEMON_PID" &&
	test -f "$STATE/good/journal.db" &&
	chj status >status.out &&
	grep "^daemon: *running" status.out &&
	stop_daemon
'

test_done
