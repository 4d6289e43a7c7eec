#!/bin/bash
# t1222-restore-hostile: `chjournal restore` on archives built to escape its
# target (written by Python's tarfile, not by chjournal): folder paths and
# partitions with '..' or absolute, per-user file names with '..', a symlink
# entry followed by a file through it, a target directory holding a symlink,
# an existing file, set-id modes. Each is refused with a one-line error (or,
# for modes, neutralized); nothing is ever written outside the target.
. "$(dirname "$0")/test-lib.sh"

MAKE="$CHJ_SRCDIR/tests/make-hostile-archive.py"
OUTSIDE="$TRASH/outside"
export OUTSIDE
mkdir -p "$OUTSIDE"

# nothing_outside: the directory outside the targets is still empty, and
# no "escaped" file exists anywhere above the test's directory
nothing_outside() {
	test -z "$(ls -A "$OUTSIDE")" &&
	! find "$TRASH/.." -maxdepth 3 -name escaped 2>/dev/null | grep -q .
}

for kind in relpath partition abspath userfile linkdir; do
	expect_success "restore refuses an archive with a hostile $kind" '
		python3 "$MAKE" '"$kind"'.tar.gz '"$kind"' &&
		! chj restore '"$kind"'.tar.gz --to "$TRASH/r-'"$kind"'" >out 2>err &&
		test "$(wc -l <err)" = 1 &&
		grep -q "^chjournal: .*\(unsafe\|refused\|cannot create\)" err &&
		nothing_outside
	'
done

expect_success 'a valid archive restores (the control case)' '
	python3 "$MAKE" ok.tar.gz ok &&
	chj restore ok.tar.gz --to "$TRASH/r-ok" >out 2>err &&
	test -f "$TRASH/r-ok/spool/default/uuid/a/b/abcdefghijklmnopqrstuvwx/cyrus.index" &&
	grep -q "restored run 20260101T000000Z of user .eve.: 1 folders" out
'

expect_success 'a symlink inside the target is not followed' '
	mkdir -p "$TRASH/r-sym" && ln -s "$OUTSIDE" "$TRASH/r-sym/spool" &&
	! chj restore ok.tar.gz --to "$TRASH/r-sym" >out 2>err &&
	test "$(wc -l <err)" = 1 && grep -q "cannot create" err &&
	nothing_outside
'

expect_success 'an existing file is not overwritten' '
	mkdir -p "$TRASH/r-exist/spool/default/uuid/a/b/abcdefghijklmnopqrstuvwx" &&
	echo keep >"$TRASH/r-exist/spool/default/uuid/a/b/abcdefghijklmnopqrstuvwx/cyrus.header" &&
	! chj restore ok.tar.gz --to "$TRASH/r-exist" >out 2>err &&
	grep -q "File exists" err &&
	test "$(cat "$TRASH/r-exist/spool/default/uuid/a/b/abcdefghijklmnopqrstuvwx/cyrus.header")" = keep
'

expect_success 'set-id bits and modes from the archive are not restored' '
	python3 "$MAKE" setuid.tar.gz setuid &&
	chj restore setuid.tar.gz --to "$TRASH/r-setuid" >out 2>err &&
	test "$(stat -c %a "$TRASH/r-setuid/spool/default/uuid/a/b/abcdefghijklmnopqrstuvwx/cyrus.index")" = 600
'

expect_success 'restore: usage errors exit 2, a missing archive 1' '
	chj restore >out 2>err; test $? = 2 &&
	chj restore ok.tar.gz >out 2>err; test $? = 2 &&
	chj restore ok.tar.gz --to "$TRASH/x" --at nonsense >out 2>err; test $? = 2 &&
	chj restore "$TRASH/none.tar.gz" --to "$TRASH/x" >out 2>err; test $? = 1 &&
	test "$(wc -l <err)" = 1 &&
	chj restore ok.tar.gz --to "$TRASH/x" --folder user.eve.Nope >out 2>err; test $? = 1 &&
	grep -q "folder .user.eve.Nope. is not in the run" err
'

test_done
