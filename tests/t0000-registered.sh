#!/bin/bash
# t0000-registered: every test is registered with the test driver
# (Makefile.am): a tests/tNNNN-*.sh missing from SH_TESTS, a journal-core test
# missing from FANOTIFY_TESTS, or a cmocka test missing from UNIT_TESTS would
# silently never run; one of ASAN_TESTS that is not registered would not run
# under the sanitizers either.
. "$(dirname "$0")/test-lib.sh"

MAKEFILE_AM="$CHJ_SRCDIR/Makefile.am"
[ -f "$MAKEFILE_AM" ] || skip_all "no $MAKEFILE_AM"

# am_var NAME: the words of Makefile.am's variable NAME, one a line
am_var() {
	sed -e ':a' -e '/\\$/{N;s/\\\n/ /;ba' -e '}' "$MAKEFILE_AM" |
		sed -n "s/^$1 *= *//p" | tr -s ' \t' '\n\n' | sed '/^$/d'
}

am_var SH_TESTS >sh.list
am_var FANOTIFY_TESTS >fanotify.list
am_var UNIT_TESTS >unit.list

expect_success 'every tests/tNNNN-*.sh is in SH_TESTS, once' '
	(cd "$CHJ_SRCDIR" && ls tests/t[0-9]*.sh) | sort >expect &&
	sort sh.list >actual &&
	test_cmp expect actual
'

expect_success 'every journal-core test (t00, t01, t02, t05, t09) is in FANOTIFY_TESTS unless it skips on fanotify' '
	for t in "$CHJ_SRCDIR"/tests/t0[0-2]*.sh "$CHJ_SRCDIR"/tests/t05*.sh "$CHJ_SRCDIR"/tests/t09*.sh; do
		n=$(basename "$t" .sh)
		[ "$n" = "$test_name" ] && continue
		if grep -q "^skip_on_fanotify\|^\[ \"\$CHJ_BACKEND\" = fanotify \] && skip_all" "$t"; then
			! grep -qx "tests/fanotify/$n.fanotify" fanotify.list ||
				{ echo "$n skips on fanotify: drop it from FANOTIFY_TESTS"; return 1; }
		else
			grep -qx "tests/fanotify/$n.fanotify" fanotify.list ||
				{ echo "$n is not in FANOTIFY_TESTS"; return 1; }
		fi
	done &&
	while read -r f; do
		n=$(basename "$f" .fanotify)
		[ -f "$CHJ_SRCDIR/tests/$n.sh" ] || { echo "$f: no tests/$n.sh"; return 1; }
	done <fanotify.list
'

expect_success 'every cmocka test (tests/unit/test-*.c) is in UNIT_TESTS' '
	(cd "$CHJ_SRCDIR" && ls tests/unit/test-*.c) | sed "s/\.c\$//" | sort >expect &&
	sort unit.list >actual &&
	test_cmp expect actual
'

expect_success 'every test of ASAN_TESTS is a registered test' '
	am_var ASAN_TESTS | sed "/^\$(UNIT_TESTS)\$/d" >asan.list &&
	cat sh.list fanotify.list >all.list &&
	while read -r t; do
		grep -qxF "$t" all.list || { echo "$t (ASAN_TESTS) is not registered"; return 1; }
	done <asan.list &&
	test -s asan.list
'

test_done
