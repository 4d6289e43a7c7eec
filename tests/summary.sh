#!/bin/sh
# summary.sh TEST-SUITE-LOG: the last line of `make check`,
#   N passed, N failed, N skipped, N known breakages
# from the counts at the head of the test driver's test-suite.log (one per
# TAP line: a cmocka test, an expect_success, a whole script skipped...).
# Failed counts FAIL, ERROR (a script dead before its plan, a unit test that
# crashed or exited non-zero) and XPASS (a known breakage that passes now:
# test-lib's "# TODO known breakage vanished"); a known breakage is an XFAIL.
# Before it, the tests that failed and their logs' names.
log=${1:-test-suite.log}
[ -f "$log" ] || { echo "summary.sh: no $log (no test ran)" >&2; exit 0; }
count() {
	n=$(sed -n "s/^# $1: *\\([0-9][0-9]*\\)\$/\\1/p" "$log" | head -n 1)
	echo "${n:-0}"
}
pass=$(count PASS)
skip=$(count SKIP)
xfail=$(count XFAIL)
fail=$(( $(count FAIL) + $(count ERROR) + $(count XPASS) ))
if [ "$fail" -gt 0 ]; then
	# the sections of test-suite.log: "FAIL: NAME" (or ERROR, XPASS) over a
	# line of '='; NAME.log holds the test's whole output
	dir=$(dirname "$log")
	awk '/^(FAIL|ERROR|XPASS): / { name = $0; next }
	     name != "" && /^=+$/ { sub(/^[A-Z]+: /, "", name); print name; }
	     { name = "" }' "$log" | sort -u | while read -r t; do
		echo "failed: $t (see $dir/$t.log)"
		# what failed and why, for a run whose logs are gone (CI): each
		# "not ok" line and the diagnostics ("#    ...") under it
		awk '/^not ok / { show = 1; n = 0; print "  " $0; next }
		     /^(ok|not ok|PASS|FAIL|XFAIL|SKIP|ERROR|XPASS)[ :]/ && !/^FAIL: / { show = 0 }
		     show && /^#/ && n < 40 { print "  " $0; n++ }' "$dir/$t.log" 2>/dev/null
	done
fi
echo "$pass passed, $fail failed, $skip skipped, $xfail known breakages"
