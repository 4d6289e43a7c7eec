#!/bin/bash
# t0211-prune-open-run: the daemon prunes rows every consumer has committed
# past, but a consumer's open run (a first, full run too) will commit its
# begin point: rows after it must survive other consumers' commits.
. "$(dirname "$0")/test-lib.sh"

mkdir -p "$SPOOL/user/a"
echo x >"$SPOOL/user/a/old"

expect_success 'consumer B in its first (full) run keeps rows after its begin' '
	start_daemon &&
	backup A &&
	chj begin B >modeB &&
	grep "^full" modeB &&
	chj list B >/dev/null &&
	echo f >"$SPOOL/user/a/after-B-begin" &&
	backup A &&
	chj sync && sleep 0.2 && chj sync &&
	chj commit B &&
	chj begin B &&
	chj list B >listB &&
	echo "$SPOOL/user/a/after-B-begin" >expect &&
	test_cmp expect listB &&
	chj commit B
'

expect_success 'rows every consumer committed past are pruned' '
	echo g >"$SPOOL/user/a/later" &&
	backup A && backup B &&
	echo h >"$SPOOL/user/a/trigger" &&
	chj sync && sleep 0.2 && chj sync &&
	chj query >rows &&
	! grep -F "/later" rows &&
	grep -F "/trigger" rows
'

test_done
