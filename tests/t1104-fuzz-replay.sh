#!/bin/bash
# t1104-fuzz-replay: replays every seed corpus of tests/fuzz/ (the inputs
# that once crashed, leaked or tripped UBSan are kept there) through its
# libFuzzer target built with ASan and UBSan: `tests/fuzz/run.sh` with
# FUZZ_SECONDS=0. Skips when clang has no libFuzzer.
. "$(dirname "$0")/test-lib.sh"

command -v clang >/dev/null 2>&1 || skip_all "clang not found (make fuzz needs it)"

FUZZ_SECONDS=0 sh "$CHJ_SRCDIR/tests/fuzz/run.sh" "$TRASH/fuzz" >replay.out 2>&1
rc=$?
cat replay.out
if grep -q '^fuzz: SKIP' replay.out; then
	skip_all "clang has no libFuzzer runtime"
fi

expect_success 'every corpus of every fuzz target replays without a crash, leak or UB' '
	test '"$rc"' = 0 &&
	for t in config consumer path cyrus-header cyrus-index manifest archive imapd-conf; do
		grep -q "^fuzz-$t .* ok$" replay.out || return 1
	done
'

test_done
