#!/bin/bash
# t0601-cron-tar: contrib/cron/chjournal-incremental driving real GNU tar, end
# to end. A first run is full (CHJ_MODE=full) and writes archive 0; rounds of
# changes (create, modify, delete, rename files and directories, type changes,
# names with spaces and newlines, symlinks) each followed by a run writing an
# incremental archive plus its deleted list; after every round the full
# archive and each incremental, extracted in order into an empty directory
# with the deletions applied (the restore procedure of contrib/cron/README),
# equal the spool; so do all the archives extracted at once (a merged
# restore) followed by chjournal-apply-merged, but for the paths whose kind
# changed within the chain, which it names. Also: the log line's fields, a failing command aborts (its
# exit status is the script's, the next run lists the changes again),
# --ok-status, a failing begin, a second concurrent run refused by the lock
# (exit 75) or waiting with --wait, SIGTERM during the command, --syslog
# (through a stand-in logger) and --quiet.
. "$(dirname "$0")/test-lib.sh"
. "$CHJ_SRCDIR/tests/lib-cron.sh"

tar --version 2>/dev/null | grep -q 'GNU tar' || skip_all "GNU tar not found"
command -v flock >/dev/null || skip_all "flock(1) not found"

SCRIPT="$CHJ_SRCDIR/contrib/cron/chjournal-incremental"
ARCH="$TRASH/archives"
LOCK="$TRASH/cron.lock"
mkdir -p "$ARCH"

# cron [ARGS]: one run of the script on this test's journal
cron() {
	"$SCRIPT" -c "$CONF" --chjournal "$CHJOURNAL" --lock "$LOCK" --tmpdir "$TRASH" "$@"
}

# cron_bg [ARGS]: the same in the background; $! is the script's own pid
cron_bg() {
	( exec "$SCRIPT" -c "$CONF" --chjournal "$CHJOURNAL" --lock "$LOCK" --tmpdir "$TRASH" "$@" ) &
}

# expect_code CODE CMD...: CMD exits with CODE
expect_code() {
	_want=$1
	shift
	"$@"
	_got=$?
	[ "$_got" -eq "$_want" ] && return 0
	echo "expect_code: want exit $_want, got $_got: $*" >&2
	return 1
}

# the installed archive program: one archive per run named after the run id
# and mode, with the run's list, deleted list and reconcile entries beside it
TAR_CMD='"$CHJ_SRCDIR/contrib/cron/chjournal-tar-archive" "$DEST"'
export DEST="$ARCH" CHJ_SRCDIR

# restore_tar DEST ARCHIVE...: the installed restore program: for each archive
# in order, what its run says is gone is removed, then it is extracted
restore_tar() {
	"$CHJ_SRCDIR/contrib/cron/chjournal-tar-restore" "$@"
}

# check_restore: the archives so far, restored into an empty directory, give
# the spool
check_restore() {
	rm -rf "$TRASH/restore" && mkdir "$TRASH/restore" &&
	restore_tar "$TRASH/restore" $(ls "$ARCH"/*.tar | LC_ALL=C sort) &&
	snap "$SPOOL" >snap.spool &&
	snap "$TRASH/restore$SPOOL" >snap.restore &&
	test -s snap.spool &&
	test_cmp snap.spool snap.restore &&
	dirs "$SPOOL" >dirs.spool &&
	dirs "$TRASH/restore$SPOOL" >dirs.restore &&
	{ LC_ALL=C comm -13 dirs.spool dirs.restore >dirs.extra; test ! -s dirs.extra ||
	  { echo "directories the spool lacks in the restore:"; cat dirs.extra; false; }; } &&
	check_merged $KIND_CHANGED
}
# the paths a merged restore of the chain so far cannot hold (check_merged)
KIND_CHANGED=

# check_merged [PATH...]: the archives so far extracted at once, in order,
# without the deletions (a merged restore: the newest version of each path
# wins), then chjournal-apply-merged with every run's lists, give the spool
# too. Each PATH (relative to the spool) changed from a file to a directory
# within the chain: the merge cannot hold it (tar cannot put the files below
# it: its errors are expected while an archive holds such a path),
# chjournal-apply-merged names it and exits 1, and the rest is the spool.
check_merged() {
	rm -rf "$TRASH/merged" && mkdir "$TRASH/merged" &&
	for _a in $(ls "$ARCH"/*.tar | LC_ALL=C sort); do
		tar --extract --file "$_a" -C "$TRASH/merged" --preserve-permissions \
			--recursive-unlink 2>/dev/null
	done
	test -d "$TRASH/merged$SPOOL" &&
	"$CHJ_SRCDIR/contrib/cron/chjournal-apply-merged" "$TRASH/merged" \
		$(ls "$ARCH"/*.tar | LC_ALL=C sort | sed 's/\.tar$//') 2>merged.err
	_rc=$?
	cat merged.err
	_skip='^$'
	for _p in "$@"; do
		grep -qxF "chjournal-apply-merged: $S/$_p: the restore holds a file where the chain left a directory (its kind changed within the chain): restore the chain run by run" merged.err ||
			{ echo "check_merged: $_p not named" >&2; return 1; }
		_skip="$_skip| \./$(printf '%s' "$_p" | sed 's/[.[\*^$]/\\&/g')(/| |\$)"
	done
	test_eq merged-exit "$([ $# -gt 0 ] && echo 1 || echo 0)" "$_rc" &&
	test_eq kind-changed $# "$(grep -c "its kind changed" merged.err)" &&
	snap "$TRASH/merged$SPOOL" | grep -Ev "$_skip" >snap.merged &&
	grep -Ev "$_skip" snap.spool | test_cmp - snap.merged &&
	dirs "$TRASH/merged$SPOOL" >dirs.merged &&
	{ LC_ALL=C comm -13 dirs.spool dirs.merged >dirs.extra; test ! -s dirs.extra ||
	  { echo "directories the spool lacks in the merged restore:"; cat dirs.extra; false; }; }
}

# nuls FILE: the number of NUL-terminated entries
nuls() {
	tr -cd '\0' <"$1" | wc -c
}

# size_of LIST: the total size of the files in a NUL-separated list
size_of() {
	xargs -0 -r stat --printf '%s\n' -- <"$1" | awk '{ s += $1 } END { print s + 0 }'
}

# latest EXT: the newest archive's file with that extension
latest() {
	ls "$ARCH"/*."$1" | LC_ALL=C sort | tail -n 1
}

NL=$'new\nline'
S="$SPOOL"
mkdir -p "$S/user/alice/Trash" "$S/user/bob/Maildir/cur" "$S/user/with space/sub" "$S/shared"
echo 1 >"$S/user/alice/1."
echo 2 >"$S/user/alice/2."
echo trash >"$S/user/alice/Trash/1."
echo index >"$S/user/alice/cyrus.index"
echo b1 >"$S/user/bob/Maildir/cur/1:2,S"
echo b2 >"$S/user/bob/Maildir/cur/2:2,"
echo sp >"$S/user/with space/a file"
echo nl >"$S/user/with space/$NL"
echo deep >"$S/user/with space/sub/x"
echo s >"$S/shared/readme"
ln -s ../user/alice/1. "$S/shared/link"
chmod 600 "$S/user/alice/2."

expect_success 'daemon starts' '
	start_daemon
'

expect_success 'first run is full (CHJ_MODE=full) and writes archive 0' '
	cron --command "echo \"\$CHJ_MODE|\$CHJ_FULL_REASON|\$CHJ_CONSUMER|\$CHJ_RUN_ID\" >$TRASH/env.out; $TAR_CMD" 2>run.err &&
	cat run.err &&
	IFS="|" read -r m reason consumer runid <env.out &&
	test_eq mode full "$m" &&
	test_eq reason "no committed run yet" "$reason" &&
	test_eq consumer cron "$consumer" &&
	echo "$runid" | grep -Ex "[0-9]{8}T[0-9]{6}Z" &&
	test -f "$ARCH/$runid.full.tar" &&
	test_eq archives 1 "$(ls "$ARCH"/*.tar | wc -l)" &&
	check_restore
'

expect_success 'the log line of the full run has the right fields' '
	test_eq lines 1 "$(grep -c "^chjournal-incremental: consumer=cron mode=full run=" run.err)" &&
	test_eq mode full "$(field mode run.err)" &&
	test_eq run "$runid" "$(field run run.err)" &&
	test_eq files "$(find "$S" ! -type d -print0 | tr -cd "\0" | wc -c)" "$(field files run.err)" &&
	test_eq files-in-list "$(nuls "$(latest list)")" "$(field files run.err)" &&
	test_eq deleted 0 "$(field deleted run.err)" &&
	test_eq bytes "$(size_of "$(latest list)")" "$(field bytes run.err)" &&
	test "$(field bytes run.err)" -gt 0 &&
	field duration run.err | grep -Ex "[0-9]+s" &&
	test_eq status 0 "$(field status run.err)" &&
	test_eq result committed "$(field result run.err)" &&
	grep -F "reason=\"no committed run yet\"" run.err
'

# one round: CHANGES, then a run that must be incremental and commit, then the
# restore check
round() {
	eval "$1" &&
	cron --command "echo \$CHJ_MODE >$TRASH/env.out; $TAR_CMD" 2>run.err
	_rc=$?
	cat run.err
	test_eq exit 0 "$_rc" &&
	test_eq mode incremental "$(cat env.out)" &&
	test_eq log-mode incremental "$(field mode run.err)" &&
	test_eq result committed "$(field result run.err)" &&
	test_eq files "$(nuls "$(latest list)")" "$(field files run.err)" &&
	test_eq deleted "$(nuls "$(latest deleted)")" "$(field deleted run.err)" &&
	check_restore
}

expect_success 'round 1: create, modify, delete, rename files; odd names' '
	round "
	echo 3 >$S/user/alice/3. &&
	echo more >>$S/user/alice/cyrus.index &&
	rm $S/user/alice/Trash/1. &&
	mv $S/user/bob/Maildir/cur/2:2, $S/user/bob/Maildir/cur/2:2,S &&
	echo x >\"$S/user/with space/new file with spaces\" &&
	echo y >\"$S/user/with space/\$NL 2\" &&
	echo z >>\"$S/user/with space/\$NL\"
	" &&
	test_eq deleted 2 "$(nuls "$(latest deleted)")" &&
	tr "\0" "\n" <"$(latest deleted)" | grep -xF "$S/user/alice/Trash/1." &&
	tr "\0" "\n" <"$(latest deleted)" | grep -xF "$S/user/bob/Maildir/cur/2:2,"
'

expect_success 'round 2: rename and delete directories, new tree, chmod, symlink retarget' '
	round "
	mv $S/user/bob $S/user/robert &&
	rm -r \"$S/user/with space/sub\" &&
	mkdir -p \"$S/user/carol/Maildir/new dir/\$NL\" &&
	echo c1 >\"$S/user/carol/Maildir/new dir/\$NL/c 1\" &&
	echo c2 >$S/user/carol/Maildir/c2 &&
	chmod 640 $S/user/alice/1. &&
	ln -sfn ../user/alice/3. $S/shared/link
	" &&
	tr "\0" "\n" <"$(latest deleted)" | grep -xF "$S/user/bob"
'

expect_success 'round 3: type changes (file -> directory, directory -> file, symlink -> file)' '
	KIND_CHANGED=user/alice/2. &&
	round "
	rm $S/user/alice/2. && mkdir $S/user/alice/2. && echo inner >$S/user/alice/2./inner &&
	rm -r $S/user/carol/Maildir && echo now-a-file >$S/user/carol/Maildir &&
	rm $S/shared/link && echo plain >$S/shared/link &&
	ln -s readme $S/shared/link2
	"
'

expect_success 'round 4: replace by rename, move between directories, delete and re-create' '
	KIND_CHANGED=shared/link2 &&
	round "
	echo new >$S/user/alice/tmp && mv $S/user/alice/tmp $S/user/alice/3. &&
	mv $S/user/robert/Maildir/cur/1:2,S $S/user/alice/from-bob &&
	rm $S/user/alice/1. && echo recreated >$S/user/alice/1. &&
	rm \"$S/user/with space/\$NL\" &&
	mv $S/user/alice/2. $S/user/alice/two &&
	rm $S/shared/link2 && mkdir $S/shared/link2 && echo d >$S/shared/link2/f
	"
'

expect_success 'round 5: exchanges of two directories and of a file and a directory' '
	mkdir -p "$S/user/alice/Work/old" "$S/user/alice/Home" &&
	echo w >"$S/user/alice/Work/old/w" &&
	echo h >"$S/user/alice/Home/h" &&
	round true &&
	KIND_CHANGED="shared/link2 user/alice/1." &&
	round "
	exchange $S/user/alice/Work $S/user/alice/Home &&
	exchange $S/user/alice/1. $S/user/alice/Home
	"
'

expect_success 'round 6: deletions and renames while the daemon is down, odd names' '
	mkdir -p "$S/user/dave/a/b" "$S/user/dave/c" "$S/user/dave/odd" &&
	echo 1 >"$S/user/dave/a/b/1" && echo 2 >"$S/user/dave/c/2" && echo 3 >"$S/user/dave/a/3" &&
	for n in "x]y" "*" "@" "a b" "$NL" "-n" "[z"; do echo "$n" >"$S/user/dave/odd/$n" || return 1; done &&
	round true &&
	stop_daemon &&
	rm "$S/user/dave/a/3" "$S/user/dave/odd/x]y" "$S/user/dave/odd/*" "$S/user/dave/odd/$NL" &&
	rm -r "$S/user/dave/a/b" &&
	mv "$S/user/dave/c" "$S/user/dave/c2" &&
	start_daemon &&
	round true &&
	test "$(field reconcile run.err)" -gt 0 &&
	test ! -e "$TRASH/restore$S/user/dave/a/b" &&
	test ! -e "$TRASH/restore$S/user/dave/odd/*" &&
	test -e "$TRASH/restore$S/user/dave/odd/@"
'

expect_success 'a run with no change is incremental and archives nothing' '
	round "true" &&
	test_eq files 0 "$(field files run.err)" &&
	test_eq deleted 0 "$(field deleted run.err)" &&
	test_eq bytes 0 "$(field bytes run.err)"
'

expect_success 'a failing command: the run is aborted, its status is the exit status' '
	echo changed >>$S/user/alice/3. &&
	echo fresh >$S/user/alice/fresh &&
	rm $S/shared/readme &&
	cron --command "cat >$TRASH/failed.list; exit 5" 2>run.err
	rc=$? &&
	cat run.err &&
	test_eq exit 5 "$rc" &&
	test_eq status 5 "$(field status run.err)" &&
	test_eq result aborted "$(field result run.err)" &&
	test_eq files 2 "$(field files run.err)" &&
	test_eq deleted 1 "$(field deleted run.err)" &&
	printf "%s\0" "$S/user/alice/3." "$S/user/alice/fresh" >expect.list &&
	cmp expect.list failed.list
'

expect_success 'the next run lists the aborted run'"'"'s changes again; restore still equal' '
	round "true" &&
	cmp expect.list "$(latest list)" &&
	printf "%s\0" "$S/shared/readme" >expect.deleted &&
	cmp expect.deleted "$(latest deleted)"
'

expect_success '--ok-status: tar-like exit 1 commits (script exits 0), without it aborts' '
	echo w >>$S/user/alice/fresh &&
	cron --command "cat >/dev/null; exit 1" 2>run.err
	rc=$? &&
	test_eq exit 1 "$rc" &&
	test_eq result aborted "$(field result run.err)" &&
	cron --ok-status 2,1 --command "cat >$TRASH/ok.list; exit 1" 2>run.err &&
	test_eq status 1 "$(field status run.err)" &&
	test_eq result committed "$(field result run.err)" &&
	printf "%s\0" "$S/user/alice/fresh" >expect.list &&
	cmp expect.list ok.list &&
	cron --command "cat >$TRASH/after.list" 2>run.err &&
	test_eq files 0 "$(field files run.err)" &&
	test_cmp /dev/null after.list
'

expect_success 'begin failing (bad configuration): exit 70, the command does not run' '
	"$SCRIPT" -c "$TRASH/no-such.conf" --chjournal "$CHJOURNAL" --lock "$LOCK" \
		--command "touch $TRASH/ran" 2>run.err
	rc=$? &&
	cat run.err &&
	test_eq exit 70 "$rc" &&
	test ! -e "$TRASH/ran" &&
	test_eq result failed "$(field result run.err)" &&
	test_eq status - "$(field status run.err)" &&
	grep -F "error=\"chjournal begin failed (exit 1)\"" run.err
'

expect_success 'usage errors exit 64' '
	expect_code 64 "$SCRIPT" 2>usage.err &&
	grep -F "no --command given" usage.err &&
	expect_code 64 "$SCRIPT" --bogus &&
	expect_code 64 "$SCRIPT" --command true --consumer "-bad" &&
	expect_code 64 "$SCRIPT" --command true --ok-status x &&
	expect_code 64 "$SCRIPT" --command true extra-arg &&
	"$SCRIPT" --help | grep -F -e "--ok-status"
'

# a run whose command waits until $TRASH/go exists (after saying it started)
BLOCK_CMD="cat >/dev/null; touch $TRASH/started; while [ ! -e $TRASH/go ]; do sleep 0.05; done"

expect_success 'a second run while one is running is refused by the lock (exit 75)' '
	rm -f started go &&
	echo locked >>$S/user/alice/fresh &&
	cron_bg --command "$BLOCK_CMD" 2>first.err &&
	first=$! &&
	wait_for 20 test -e started &&
	cron --command "touch $TRASH/second-ran" 2>second.err
	rc=$? &&
	cat second.err &&
	test_eq exit 75 "$rc" &&
	test ! -e second-ran &&
	grep -F "another run holds the lock $LOCK" second.err &&
	grep -F "pid $first," second.err &&
	test_eq result failed "$(field result second.err)" &&
	touch go &&
	wait "$first" &&
	test_eq first-result committed "$(field result first.err)"
'

expect_success '--wait waits for the running run, then runs' '
	rm -f started go &&
	echo waited >>$S/user/alice/fresh &&
	cron_bg --command "$BLOCK_CMD" 2>first.err &&
	first=$! &&
	wait_for 20 test -e started &&
	cron_bg --wait --command "cat >$TRASH/second.list" 2>second.err &&
	second=$! &&
	wait_for 20 grep -F "waiting for the lock" second.err &&
	test ! -e second.list &&
	echo later >$S/user/alice/later &&
	touch go &&
	wait "$first" &&
	wait "$second" &&
	test_eq second-result committed "$(field result second.err)" &&
	tr "\0" "\n" <second.list | grep -xF "$S/user/alice/later" &&
	test "$(field run first.err)" \< "$(field run second.err)"
'

expect_success 'SIGTERM during the command: command ended, run aborted, exit 143' '
	rm -f started go &&
	echo sig >$S/user/alice/sig &&
	cron_bg --command "$BLOCK_CMD; touch $TRASH/not-killed" 2>first.err &&
	first=$! &&
	wait_for 20 test -e started &&
	kill -TERM "$first" &&
	{ wait "$first"; rc=$?; } &&
	test_eq exit 143 "$rc" &&
	test_eq result interrupted "$(field result first.err)" &&
	touch go &&
	! wait_for 1 test -e not-killed &&
	cron --command "cat >$TRASH/after.list" 2>run.err &&
	tr "\0" "\n" <after.list | grep -xF "$S/user/alice/sig"
'

expect_success 'a run killed with SIGKILL leaves its run open: the next run takes it over and lists its changes' '
	rm -f started go &&
	echo dead >$S/user/alice/dead &&
	cron_bg --command "$BLOCK_CMD" 2>first.err &&
	first=$! &&
	wait_for 20 test -e started &&
	kill -KILL "$first" &&
	{ wait "$first"; true; } &&
	touch go &&
	dead_run=$(chj consumers | sed -n "s/^cron	.*	run=\([0-9a-f]*\)\$/\1/p") &&
	test -n "$dead_run" &&
	echo later >$S/user/alice/dead2 &&
	cron --command "cat >$TRASH/after.list" 2>run.err &&
	grep "consumer .cron.: run .[0-9a-f]*. takes over run .$dead_run." run.err &&
	test_eq result committed "$(field result run.err)" &&
	tr "\0" "\n" <after.list | grep -xF "$S/user/alice/dead" &&
	tr "\0" "\n" <after.list | grep -xF "$S/user/alice/dead2" &&
	chj consumers | grep "^cron	.*	open=no\$"
'

expect_success '--syslog sends the line to logger (user.info, user.err on failure); --quiet' '
	mkdir -p bin &&
	printf "#!/bin/sh\nprintf \"%%s|\" \"\$@\" >>$TRASH/logger.out\necho >>$TRASH/logger.out\n" >bin/logger &&
	chmod +x bin/logger &&
	PATH="$TRASH/bin:$PATH" cron --syslog --quiet --command "cat >/dev/null" 2>run.err &&
	# not a log line: begin says so when it may not read some process (one
	# more privileged than the test, such as a VM supervisor as pid 1)
	grep -v "files open for writing by .* could not be checked" run.err |
		test_cmp /dev/null - &&
	grep -F -- "-t|chjournal-incremental|-p|user.info|--|consumer=cron mode=incremental" logger.out &&
	echo again >>$S/user/alice/sig &&
	PATH="$TRASH/bin:$PATH" cron --syslog --quiet --command "exit 3" 2>run.err
	test $? -eq 3 &&
	test_eq result aborted "$(field result run.err)" &&
	grep -F -- "-p|user.err|--|consumer=cron mode=incremental" logger.out | grep -F "status=3 result=aborted"
'

expect_success 'a second consumer is independent: its first run is full' '
	cron --consumer other --command "echo \$CHJ_MODE >$TRASH/env.out; cat >$TRASH/other.list" 2>run.err &&
	test_eq mode full "$(cat env.out)" &&
	test_eq consumer other "$(field consumer run.err)" &&
	find "$S" ! -type d -print0 | LC_ALL=C sort -z >expect.list &&
	cmp expect.list other.list
'

expect_success 'daemon stops cleanly' '
	stop_daemon
'

test_done
