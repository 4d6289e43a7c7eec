#!/bin/bash
# t0602-cron-rsync: contrib/cron/chjournal-incremental keeping a mirror up to
# date with real rsync through contrib/cron/chjournal-rsync-mirror: a full run
# mirrors each root with `rsync -a --delete`; each incremental run sends the
# listed files, turns the deleted list into deletions, copies a directory
# exchanged onto a name whole, and reconciles the directories a rescan could
# not see lose entries (rsync -d --delete, one level). After every run the
# mirror's files and symlinks (content, mode, mtime, targets) equal the
# spool's and it has no directory the spool lacks, through creates,
# modifications, deletions, file and directory renames, type changes, odd
# names, exchanges, and deletions made while the daemon was down. A failing
# rsync aborts the run with rsync's exit status and the next run catches up.
. "$(dirname "$0")/test-lib.sh"
. "$CHJ_SRCDIR/tests/lib-cron.sh"

command -v rsync >/dev/null || skip_all "rsync not found (apt-get install rsync)"
command -v flock >/dev/null || skip_all "flock(1) not found"
rsync --help 2>&1 | grep -q -- '--delete-missing-args' ||
	skip_all "rsync without --delete-missing-args (needs 3.1 or later)"

SCRIPT="$CHJ_SRCDIR/contrib/cron/chjournal-incremental"
LOCK="$TRASH/cron.lock"
export MIRROR="$TRASH/mirror"
mkdir -p "$MIRROR"

cron() {
	"$SCRIPT" -c "$CONF" --chjournal "$CHJOURNAL" --lock "$LOCK" --tmpdir "$TRASH" "$@"
}

# the installed mirror program; MIRROR is read when the command runs
RSYNC_CMD='"$CHJ_SRCDIR/contrib/cron/chjournal-rsync-mirror" "$MIRROR"'
export CHJ_SRCDIR

check_mirror() {
	snap "$SPOOL" >snap.spool &&
	snap "$MIRROR$SPOOL" >snap.mirror &&
	test -s snap.spool &&
	test_cmp snap.spool snap.mirror &&
	dirs "$SPOOL" >dirs.spool &&
	dirs "$MIRROR$SPOOL" >dirs.mirror &&
	{ LC_ALL=C comm -13 dirs.spool dirs.mirror >dirs.extra; test ! -s dirs.extra ||
	  { echo "directories the spool lacks on the mirror:"; cat dirs.extra; false; }; }
}

# round CHANGES: apply them, one incremental run, the mirror equals the spool
round() {
	eval "$1" &&
	cron --consumer mirror --command "$RSYNC_CMD" 2>run.err
	_rc=$?
	cat run.err
	test_eq exit 0 "$_rc" &&
	test_eq mode incremental "$(field mode run.err)" &&
	test_eq result committed "$(field result run.err)" &&
	check_mirror
}

NL=$'new\nline'
S="$SPOOL"
mkdir -p "$S/user/alice/Trash" "$S/user/bob/Maildir/cur" "$S/user/with space/sub"
echo 1 >"$S/user/alice/1."
echo 2 >"$S/user/alice/2."
echo t >"$S/user/alice/Trash/1."
echo b >"$S/user/bob/Maildir/cur/1:2,S"
echo sp >"$S/user/with space/a file"
echo nl >"$S/user/with space/$NL"
echo deep >"$S/user/with space/sub/x"
ln -s ../alice/1. "$S/user/bob/link"

expect_success 'daemon starts' '
	start_daemon
'

expect_success 'first run is full: each root mirrored' '
	cron --consumer mirror --command "echo \$CHJ_MODE >$TRASH/mode.out; $RSYNC_CMD" 2>run.err &&
	cat run.err &&
	test_eq mode full "$(cat mode.out)" &&
	test_eq log-mode full "$(field mode run.err)" &&
	test_eq consumer mirror "$(field consumer run.err)" &&
	test_eq files 8 "$(field files run.err)" &&
	test_eq status 0 "$(field status run.err)" &&
	check_mirror
'

expect_success 'a full run also removes what the mirror has beyond the spool' '
	echo stale >"$MIRROR$S/user/stale" &&
	cron --consumer mirror2 --lock "$TRASH/m2.lock" --command "$RSYNC_CMD" 2>run.err &&
	test_eq log-mode full "$(field mode run.err)" &&
	test ! -e "$MIRROR$S/user/stale" &&
	check_mirror
'

expect_success 'round 1: create, modify, delete, rename files; odd names' '
	round "
	echo 3 >$S/user/alice/3. &&
	echo more >>$S/user/alice/1. &&
	rm $S/user/alice/Trash/1. &&
	mv $S/user/alice/2. $S/user/alice/2.renamed &&
	echo y >\"$S/user/with space/\$NL 2\" &&
	echo z >>\"$S/user/with space/\$NL\"
	" &&
	test_eq deleted 2 "$(field deleted run.err)"
'

expect_success 'round 2: rename and delete directories (with content), new tree, chmod' '
	round "
	mv $S/user/bob $S/user/robert &&
	rm -r \"$S/user/with space/sub\" &&
	mkdir -p \"$S/user/carol/new dir/\$NL\" &&
	echo c1 >\"$S/user/carol/new dir/\$NL/c 1\" &&
	chmod 600 $S/user/alice/3.
	" &&
	test ! -e "$MIRROR$S/user/bob" &&
	test ! -e "$MIRROR$S/user/with space/sub"
'

expect_success 'round 3: type changes and a symlink retargeted' '
	round "
	rm $S/user/alice/3. && mkdir $S/user/alice/3. && echo inner >$S/user/alice/3./inner &&
	rm -r $S/user/carol && echo now-a-file >$S/user/carol &&
	ln -sfn ../alice/2.renamed $S/user/robert/link
	"
'

expect_success 'round 4: replace by rename, move between directories, delete and re-create' '
	round "
	echo new >$S/user/alice/tmp && mv $S/user/alice/tmp $S/user/alice/1. &&
	mv $S/user/robert/Maildir/cur/1:2,S $S/user/alice/from-bob &&
	rm \"$S/user/with space/a file\" && echo again >\"$S/user/with space/a file\"
	"
'

expect_success 'a failing rsync: run aborted, exit status is rsync'"'"'s' '
	echo late >$S/user/alice/late &&
	rm $S/user/alice/from-bob &&
	MIRROR="$TRASH/not-a-dir/mirror" &&
	: >"$TRASH/not-a-dir" &&
	cron --consumer mirror --command "$RSYNC_CMD" 2>run.err
	rc=$?
	MIRROR="$TRASH/mirror"
	cat run.err &&
	test "$rc" -ne 0 && test "$rc" -lt 64 &&
	test_eq status "$rc" "$(field status run.err)" &&
	test_eq result aborted "$(field result run.err)" &&
	test -e "$MIRROR$S/user/alice/from-bob" &&
	test ! -e "$MIRROR$S/user/alice/late"
'

expect_success 'the next run catches up: the mirror equals the spool' '
	round "true" &&
	test_eq files 1 "$(field files run.err)" &&
	test_eq deleted 1 "$(field deleted run.err)"
'

expect_success 'round 5: exchanges of two directories and of a file and a directory' '
	mkdir -p $S/user/alice/Work/old $S/user/alice/Home &&
	echo w >$S/user/alice/Work/old/w &&
	echo h >$S/user/alice/Home/h &&
	round true &&
	round "
	exchange $S/user/alice/Work $S/user/alice/Home &&
	exchange $S/user/alice/1. $S/user/alice/Home
	" &&
	test -f "$MIRROR$S/user/alice/Home" &&
	test -f "$MIRROR$S/user/alice/1./old/w"
'

expect_success 'round 6: deletions and renames while the daemon is down: reconciled' '
	mkdir -p $S/user/dave/a/b $S/user/dave/c &&
	echo 1 >$S/user/dave/a/b/1 && echo 2 >$S/user/dave/c/2 && echo 3 >$S/user/dave/a/3 &&
	round true &&
	stop_daemon &&
	rm $S/user/dave/a/3 &&
	rm -r $S/user/dave/a/b &&
	mv $S/user/dave/c $S/user/dave/c2 &&
	rm "$S/user/with space/a file" &&
	start_daemon &&
	round true &&
	test "$(field reconcile run.err)" -gt 0 &&
	test ! -e "$MIRROR$S/user/dave/a/b" &&
	test ! -e "$MIRROR$S/user/dave/c" &&
	test ! -e "$MIRROR$S/user/with space/a file"
'

expect_success 'daemon stops cleanly' '
	stop_daemon
'

test_done
