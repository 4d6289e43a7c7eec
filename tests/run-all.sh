#!/bin/sh
# run-all.sh: runs every suite (cmocka unit tests, end-to-end shell tests) and
# ends with one line "N passed, N failed, N skipped, N known breakages".
# A known breakage is a test line "not ok N - TITLE # TODO known breakage"
# (test-lib's expect_failure): counted apart, not as a failure; one that
# passes ("ok N - TITLE # TODO known breakage vanished") is a failure.
# Environment: CHJ_BUILDDIR, CHJ_SRCDIR (set by `make check`); CHJ_TESTS, a
# pattern to run only some shell tests (e.g. CHJ_TESTS='t01*'). The journal-
# core tests (t00, t01, t02, t05) and the torture test (t09) run twice: on inotify, then on fanotify
# (names ending in [fanotify]); CHJ_FANOTIFY=no runs only the first pass.
set -u
CHJ_SRCDIR=${CHJ_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
CHJ_BUILDDIR=${CHJ_BUILDDIR:-$CHJ_SRCDIR}
export CHJ_SRCDIR CHJ_BUILDDIR
out="$CHJ_BUILDDIR/tests/out"
rm -rf "$out"
mkdir -p "$out"
passed=0
failed=0
skipped=0
known=0

units=0
for t in "$CHJ_BUILDDIR"/tests/unit/test-*; do
	[ -x "$t" ] || continue
	case "$t" in *.c|*.o) continue ;; esac
	name=$(basename "$t")
	units=$((units + 1))
	CMOCKA_MESSAGE_OUTPUT=stdout "$t" >"$out/$name.log" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out/$name.log" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out/$name.log" | tail -n 1)
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -gt 0 ]; then
		echo "FAIL unit/$name ($p passed, $f failed)"
		cat "$out/$name.log"
	else
		echo "ok   unit/$name ($p passed)"
	fi
done

if [ "$units" -eq 0 ] && [ -z "${CHJ_TESTS:-}" ]; then
	echo "FAIL unit: no unit test binaries in $CHJ_BUILDDIR/tests/unit (run make check)"
	failed=$((failed + 1))
fi

# run_one TEST BACKEND SUFFIX: runs the shell test with CHJ_BACKEND=BACKEND;
# SUFFIX marks its name and log
run_one() {
	name=$(basename "$1" .sh)$3
	start=$(date +%s)
	CHJ_BACKEND=$2 bash "$1" >"$out/$name.log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	k=$(grep -c '^not ok .* # TODO known breakage$' "$out/$name.log")
	v=$(grep -c '^ok .* # TODO known breakage vanished$' "$out/$name.log")
	p=$(( $(grep -c '^ok ' "$out/$name.log") - v ))
	f=$(( $(grep -c '^not ok ' "$out/$name.log") - k + v ))
	if grep -q '^1\.\.0 # SKIP' "$out/$name.log"; then
		skipped=$((skipped + 1))
		echo "skip $name: $(sed -n 's/^# skipped: //p' "$out/$name.log")"
		return
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $name exited $rc" >>"$out/$name.log"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	known=$((known + k))
	more=
	[ "$k" -eq 0 ] || more=", $k known breakages"
	if [ "$f" -gt 0 ]; then
		echo "FAIL $name ($p passed, $f failed$more, ${secs}s)"
		cat "$out/$name.log"
	else
		echo "ok   $name ($p passed$more, ${secs}s)"
	fi
}

for t in "$CHJ_SRCDIR"/tests/${CHJ_TESTS:-t[0-9]*}.sh; do
	[ -f "$t" ] || continue
	run_one "$t" inotify ""
done

# The journal-core tests again on the fanotify backend (CHJ_FANOTIFY=no
# leaves them out): skipped, not failed, where the kernel, the privileges or
# the file system of $TMPDIR refuse fanotify (each test probes it).
if [ "${CHJ_FANOTIFY:-yes}" != no ]; then
	for t in "$CHJ_SRCDIR"/tests/${CHJ_TESTS:-t[0-9]*}.sh; do
		[ -f "$t" ] || continue
		case $(basename "$t") in
		t00*|t01*|t02*|t05*|t09*) run_one "$t" fanotify "[fanotify]" ;;
		esac
	done
fi

echo "$passed passed, $failed failed, $skipped skipped, $known known breakages"
[ "$failed" -eq 0 ]
