#!/bin/bash
# t1221-cyrus-backup: `chjournal backup` and `restore` against a real Cyrus
# IMAP 3.6 server, in the uuid and the legacy (hashed, name-based) layouts:
# populate, back up, churn (append, copy, move, flags, expunge, create,
# rename, delete, sieve, LMTP), back up, repeatedly. After every backup the
# oracle (tests/cyrus-state.py, which asks Cyrus itself) copies each user's
# state; `restore --at` every run then reproduces it byte for byte, before
# and after `compact`; only the changed users get a run; a copy of messages
# costs an index, not the messages; verify passes and catches a flipped
# byte; SIGKILL during a backup loses nothing.
. "$(dirname "$0")/test-lib.sh"
. "$CHJ_SRCDIR/tests/cyrus-lib.sh"

cyrus_require
tar --version 2>/dev/null | grep -q 'GNU tar' || skip_all "GNU tar not found"

USERS="user01 user02 user03"
ARCH="$TRASH/archives"

# snap_all N: snapshot every user after backup number N, remembering the
# run that backup wrote for each (or the one before, when it wrote none)
snap_all() {
	for u in $USERS; do
		cyrus_snapshot "$LAB" "$u" "$TRASH/snap-$LAYOUT-$1-$u" || return 1
		last_run "$ARCH/$u.tar.gz" >"$TRASH/run-$LAYOUT-$1-$u"
		[ -s "$TRASH/run-$LAYOUT-$1-$u" ] || return 1
	done
}

# check_restores N: every user's run of every backup up to N restores to
# exactly its snapshot
check_restores() {
	for i in $(seq 1 "$1"); do
		for u in $USERS; do
			run=$(cat "$TRASH/run-$LAYOUT-$i-$u")
			out="$TRASH/restore-$LAYOUT-$i-$u"
			rm -rf "$out"
			chj restore "$ARCH/$u.tar.gz" --to "$out" --at "$run" >/dev/null || return 1
			cyrus_compare "$TRASH/snap-$LAYOUT-$i-$u" "$out" || {
				echo "backup $i, user $u, run $run differs" >&2
				return 1
			}
		done
	done
}

run_layout() {
	LAYOUT=$1
	shift
	LAB="$TRASH/lab-$LAYOUT"
	rm -rf "$STATE" "$ARCH"
	mkdir -p "$STATE"

	expect_success "$LAYOUT: a Cyrus lab starts and is populated" '
		cyrus_start "$LAB" '"$*"' &&
		bash "$CYRUS_LAB" populate "$LAB" 3 20 >"$TRASH/populate.log" 2>&1 &&
		cyrus_config "$LAB" &&
		start_daemon
	'

	expect_success "$LAYOUT: the first backup is full and archives every user" '
		chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
		grep -q "3 users checked, 3 runs written" out &&
		grep -q "full run: no committed run yet" out &&
		for u in $USERS; do
			test -f "$ARCH/$u.tar.gz" && test -f "$ARCH/$u.idx" &&
			test "$(stat -c %a "$ARCH/$u.tar.gz")" = 600 || return 1
		done &&
		snap_all 1
	'

	expect_success "$LAYOUT: GNU tar and zcat read an archive without chjournal" '
		tar -tzif "$ARCH/user01.tar.gz" >tar.out &&
		grep -q "^files/[0-9a-f]\{40\}$" tar.out &&
		grep -q "^folders/.*/cyrus.index$" tar.out &&
		grep -q "^imap/" tar.out &&
		grep -q "^runs/" tar.out &&
		! grep -q "cyrus.cache" tar.out &&
		zcat "$ARCH/user01.tar.gz" >/dev/null
	'

	expect_success "$LAYOUT: every message is stored once, under its SHA1" '
		tar -xzif "$ARCH/user01.tar.gz" -C "$TRASH" --wildcards "files/*" &&
		for f in "$TRASH"/files/*; do
			test "$(sha1sum <"$f" | cut -c1-40)" = "$(basename "$f")" || return 1
		done &&
		test "$(grep -c "^files/" tar.out)" = "$(grep "^files/" tar.out | sort -u | wc -l)"
	'

	for round in 2 3 4; do
		expect_success "$LAYOUT: churn (every user), backup $round, snapshot" '
			bash "$CYRUS_LAB" churn "$LAB" 3 >>"$TRASH/churn.log" 2>&1 &&
			chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
			grep -q "3 runs written" out &&
			snap_all '"$round"'
		'
	done

	expect_success "$LAYOUT: restore --at every run reproduces its spool byte for byte" '
		check_restores 4
	'

	expect_success "$LAYOUT: a change to one user writes a run for that user only" '
		for u in $USERS; do
			tar -tzif "$ARCH/$u.tar.gz" | grep -c "^runs/" >"runs-before-$u" || return 1
		done &&
		bash "$CYRUS_LAB" churn "$LAB" 1 >churn1.log 2>&1 &&
		churned=$(sed -n "s/^churn round [0-9]* user //p" churn1.log) &&
		test -n "$churned" &&
		chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
		grep -q "1 runs written" out &&
		for u in $USERS; do
			n=$(tar -tzif "$ARCH/$u.tar.gz" | grep -c "^runs/")
			if [ "$u" = "$churned" ]; then
				test "$n" = $(( $(cat "runs-before-$u") + 1 )) || return 1
			else
				test "$n" = "$(cat "runs-before-$u")" || return 1
			fi
		done &&
		snap_all 5
	'

	expect_success "$LAYOUT: nothing changed: no run is written" '
		chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err &&
		grep -q "0 runs written" out || { cat out err; return 1; }
	'

	expect_success "$LAYOUT: verify passes; a flipped byte is named" '
		chj verify "$ARCH"/user0*.tar.gz >out 2>err &&
		cp "$ARCH/user01.tar.gz" bad.tar.gz && rm -f bad.idx lacking.tar.gz lacking.idx &&
		python3 -c "import sys; f = open(sys.argv[1], \"r+b\"); f.seek(0, 2); n = f.tell() // 2; f.seek(n); b = f.read(1)[0]; f.seek(n); f.write(bytes([b ^ 0xff]))" bad.tar.gz &&
		! chj verify bad.tar.gz >out 2>err &&
		grep -q "bad.tar.gz" err &&
		gone=$(python3 "$CHJ_SRCDIR/tests/archive-drop-entry.py" "$ARCH/user01.tar.gz" \
		    lacking.tar.gz files/) &&
		test -n "$gone" &&
		! chj verify lacking.tar.gz >out 2>err &&
		grep "references message ${gone#files/}, which the archive does not hold" err
	'

	expect_success "$LAYOUT: SIGKILL at points during a backup loses nothing" '
		for delay in 0.05 0.2 0.5; do
			bash "$CYRUS_LAB" churn "$LAB" 3 >>"$TRASH/churn.log" 2>&1 || return 1
			"$CHJOURNAL" -c "$CONF" backup -C "$LAB/imapd.conf" --to "$ARCH" >/dev/null 2>&1 &
			pid=$!
			sleep "$delay"
			kill -KILL "$pid" 2>/dev/null
			wait "$pid"
			chj verify "$ARCH"/user0*.tar.gz >/dev/null || return 1
		done
		chj backup -C "$LAB/imapd.conf" --to "$ARCH" >out 2>err || { cat out err; return 1; }
		chj verify "$ARCH"/user0*.tar.gz >/dev/null &&
		snap_all 6 &&
		check_restores 6
	'

	expect_success "$LAYOUT: SIGKILL at points during compact leaves a valid archive" '
		for delay in 0.01 0.03 0.06 0.1 0.2; do
			cp "$ARCH/user01.tar.gz" "$TRASH/k.tar.gz" && rm -f "$TRASH/k.idx" || return 1
			"$CHJOURNAL" compact --force "$TRASH/k.tar.gz" >/dev/null 2>&1 &
			pid=$!
			sleep "$delay"
			kill -KILL "$pid" 2>/dev/null
			wait "$pid"
			chj verify "$TRASH/k.tar.gz" >/dev/null || return 1
			rm -rf "$TRASH/k-restore"
			chj restore "$TRASH/k.tar.gz" --to "$TRASH/k-restore" >/dev/null &&
			cyrus_compare "$TRASH/snap-$LAYOUT-6-user01" "$TRASH/k-restore" || return 1
		done
	'

	expect_success "$LAYOUT: compact --dry-run --keep-last 2: each run kept or dropped, nothing written" '
		a="$ARCH/user01.tar.gz" &&
		sum=$(md5sum <"$a") &&
		n=$(chj show "$a" | tail -n +2 | wc -l) &&
		test "$n" -ge 3 &&
		chj compact --dry-run --keep-last 2 "$a" >out 2>err &&
		test "$(grep -c ": keep run [0-9]* .* (last)\$" out)" = 2 &&
		grep -q ": keep run $n .* (last)\$" out &&
		test "$(grep -c ": drop run " out)" = $((n - 2)) &&
		grep -q "would \(not \)\{0,1\}be compacted: 2 of $n runs retained" out &&
		test "$(md5sum <"$a")" = "$sum" &&
		test_expect_code 2 chj compact --keep-days 3 --keep-last 2 "$a" 2>err &&
		grep -q "do not go together" err
	'

	expect_success "$LAYOUT: compact keeps the retained runs restorable" '
		chj compact --force "$ARCH"/user0*.tar.gz >out 2>err &&
		grep -q compacted out &&
		chj verify "$ARCH"/user0*.tar.gz >/dev/null &&
		tar -tzif "$ARCH/user01.tar.gz" >/dev/null &&
		for u in $USERS; do
			out="$TRASH/restore-c-$u"; rm -rf "$out"
			chj restore "$ARCH/$u.tar.gz" --to "$out" >/dev/null &&
			cyrus_compare "$TRASH/snap-$LAYOUT-6-$u" "$out" || return 1
		done
	'

	if [ "$LAYOUT" = uuid ] && mkdir -p "$TRASH/full" &&
	   mount -t tmpfs -o size=4m tmpfs "$TRASH/full" 2>/dev/null; then
		test_cleanup_extra="umount '$TRASH/full' 2>/dev/null; $test_cleanup_extra"
		expect_success "$LAYOUT: a full disk during backup and compact leaves the archives as they were" '
			cp -p "$ARCH"/* "$TRASH/full/" &&
			( cd "$TRASH/full" && sha1sum *.tar.gz >"$TRASH/full.sums" ) &&
			fallocate -l $(( $(stat -f -c "%a*%S" "$TRASH/full") - 8192 )) "$TRASH/full/filler" 2>/dev/null ||
				dd if=/dev/zero of="$TRASH/full/filler" bs=4k 2>/dev/null
			bash "$CYRUS_LAB" churn "$LAB" 3 >>"$TRASH/churn.log" 2>&1 &&
			! chj backup -C "$LAB/imapd.conf" --consumer full --to "$TRASH/full" >out 2>err &&
			grep -q "No space left on device" err &&
			( cd "$TRASH/full" && sha1sum -c --quiet "$TRASH/full.sums" ) &&
			chj verify "$TRASH/full"/user0*.tar.gz >/dev/null &&
			! chj compact --force "$TRASH/full/user01.tar.gz" >out 2>err &&
			grep -q "the archive is unchanged" err &&
			( cd "$TRASH/full" && sha1sum -c --quiet "$TRASH/full.sums" ) &&
			rm "$TRASH/full/filler" &&
			chj backup -C "$LAB/imapd.conf" --consumer full --to "$TRASH/full" >out 2>err &&
			chj verify "$TRASH/full"/user0*.tar.gz >/dev/null
		'
		umount "$TRASH/full"
	fi

	expect_success "$LAYOUT: the lab stops" '
		stop_daemon && bash "$CYRUS_LAB" stop "$LAB" >/dev/null
	'
}

run_layout uuid
run_layout legacy CYRUS_LAB_LEGACY_DIRS=1 CYRUS_LAB_HASHSPOOL=1

test_done
