#!/bin/bash
# t0603-cron-snapshots: a full copy per run for file servers. The rsync
# mirror of contrib/cron (chjournal-rsync-mirror --snapshot DIR) kept on a
# loop-mounted btrfs as a subvolume: after each committed run, one full run
# then incremental ones (creates, writes, deletions, renames, and deletions
# made while the daemon was down, which reconciliation removes), DIR holds a
# read-only snapshot equal to the spool as it was at that run, and the
# snapshots of earlier runs are unchanged: every run restores as a full.
# The --keep-* rules remove the snapshots they do not keep; a snapshot that
# cannot be made fails the run, which the next run catches up. On xfs (or
# any mirror that is not a subvolume) the snapshots are reflink copies.
. "$(dirname "$0")/test-lib.sh"
. "$CHJ_SRCDIR/tests/lib-cron.sh"

require_root
command -v rsync >/dev/null || skip_all "rsync not found (apt-get install rsync)"
command -v flock >/dev/null || skip_all "flock(1) not found"
command -v losetup >/dev/null 2>&1 || skip_all "needs losetup (util-linux)"
command -v mkfs.btrfs >/dev/null 2>&1 || skip_all "needs mkfs.btrfs (apt-get install btrfs-progs)"
grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null ||
	skip_all "the kernel has no btrfs"

IMG="$TRASH/btrfs.img"
MNT="$TRASH/btrfs"
XIMG="$TRASH/xfs.img"
XMNT="$TRASH/xfs"
mkdir -p "$MNT" "$XMNT"
test_cleanup_extra='for m in "$MNT" "$XMNT"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
for i in "$IMG" "$XIMG"; do for dev in $(losetup -j "$i" 2>/dev/null | cut -d: -f1); do losetup -d "$dev"; done; done'
truncate -s 256M "$IMG" || skip_all "cannot create the image file"
mkfs.btrfs -q -f "$IMG" >mkfs.out 2>&1 || skip_all "mkfs.btrfs failed: $(head -n 1 mkfs.out)"
mount -o loop "$IMG" "$MNT" 2>mount.out || skip_all "cannot loop-mount btrfs: $(head -n 1 mount.out)"

SCRIPT="$CHJ_SRCDIR/contrib/cron/chjournal-incremental"
LOCK="$TRASH/cron.lock"
export MIRROR="$MNT/mirror" SNAPS="$MNT/snapshots" KEEP=""
export CHJ_SRCDIR CHJOURNAL
btrfs subvolume create "$MIRROR" >/dev/null
mkdir -p "$SNAPS"

cron() {
	"$SCRIPT" -c "$CONF" --chjournal "$CHJOURNAL" --lock "$LOCK" --tmpdir "$TRASH" "$@"
}

# the installed mirror program, snapshotting; MIRROR, SNAPS and KEEP are
# read when the command runs
MIRROR_CMD='"$CHJ_SRCDIR/contrib/cron/chjournal-rsync-mirror" --chjournal "$CHJOURNAL" --snapshot "$SNAPS" $KEEP "$MIRROR"'

S="$SPOOL"
mkdir -p "$S/user/alice/cur" "$S/user/bob/cur/deep"
echo 1 >"$S/user/alice/cur/1."
echo 2 >"$S/user/alice/cur/2."
echo b >"$S/user/bob/cur/deep/b."
ln -s ../alice "$S/user/bob/link"

# snapshots: the names in SNAPS, oldest first
snapshots() {
	ls "$SNAPS" | LC_ALL=C sort
}

# run_and_record N: one run, whose snapshot must equal the spool; the
# spool's listing as of run N is kept (expect.N) with the snapshot's name
# (name.N)
run_and_record() {
	snap "$S" >"expect.$1" &&
	dirs "$S" >"dirs.$1" &&
	snapshots >before &&
	cron --consumer mirror --command "$MIRROR_CMD" 2>run.err
	_rc=$?
	cat run.err
	test_eq exit 0 "$_rc" &&
	test_eq result committed "$(field result run.err)" &&
	snapshots >after &&
	LC_ALL=C comm -13 before after >new &&
	test_eq "new snapshots" 1 "$(wc -l <new)" &&
	cp new "name.$1" &&
	check_snapshot "$1"
}

# check_snapshot N: run N's snapshot holds the spool as it was at run N
check_snapshot() {
	_n=$(cat "name.$1") &&
	snap "$SNAPS/$_n$S" >got &&
	test_cmp "expect.$1" got &&
	dirs "$SNAPS/$_n$S" >dirs.got &&
	{ LC_ALL=C comm -13 "dirs.$1" dirs.got >dirs.extra; test ! -s dirs.extra ||
	  { echo "directories the spool lacked at run $1 in its snapshot:"; cat dirs.extra; false; }; }
}

expect_success 'daemon starts' '
	start_daemon
'

expect_success 'full run: the mirror and its first snapshot hold the spool' '
	run_and_record 1 &&
	test_eq mode full "$(field mode run.err)" &&
	test_eq ro true "$(btrfs property get "$SNAPS/$(cat name.1)" ro | cut -d= -f2)"
'

expect_success 'a snapshot is read-only: nothing can be written into it' '
	! echo x 2>/dev/null >"$SNAPS/$(cat name.1)$S/user/alice/cur/1." &&
	! touch "$SNAPS/$(cat name.1)$S/new" 2>/dev/null &&
	check_snapshot 1
'

expect_success 'incremental runs: each snapshot is its run, the earlier ones unchanged' '
	echo 3 >"$S/user/alice/cur/3." &&
	echo more >>"$S/user/alice/cur/1." &&
	rm "$S/user/alice/cur/2." &&
	run_and_record 2 &&
	test_eq mode incremental "$(field mode run.err)" &&
	mv "$S/user/bob" "$S/user/robert" &&
	mkdir -p "$S/user/carol" && echo c >"$S/user/carol/c." &&
	run_and_record 3 &&
	check_snapshot 1 && check_snapshot 2
'

expect_success 'deletions while the daemon was down: reconciled in the run'"'"'s snapshot' '
	stop_daemon &&
	rm "$S/user/alice/cur/3." &&
	rm -r "$S/user/robert/cur/deep" &&
	start_daemon &&
	run_and_record 4 &&
	test "$(field reconcile run.err)" -gt 0 &&
	test ! -e "$SNAPS/$(cat name.4)$S/user/robert/cur/deep" &&
	test -e "$SNAPS/$(cat name.3)$S/user/robert/cur/deep/b." &&
	check_snapshot 1 && check_snapshot 2 && check_snapshot 3
'

expect_success 'restoring a run is copying from its snapshot' '
	rm -rf "$TRASH/restored" &&
	rsync -a "$SNAPS/$(cat name.2)$S/" "$TRASH/restored/" &&
	snap "$TRASH/restored" >got &&
	test_cmp expect.2 got
'

expect_success '--keep-last 2: the older snapshots go, the newest two stay' '
	echo 5 >"$S/user/alice/cur/5." &&
	KEEP="--keep-last 2" &&
	run_and_record 5 &&
	KEEP="" &&
	snapshots >left &&
	printf "%s\n" "$(cat name.4)" "$(cat name.5)" >want &&
	test_cmp want left &&
	check_snapshot 4 && check_snapshot 5
'

expect_success 'chjournal snapshot --dry-run: says what it would do, does nothing' '
	"$CHJOURNAL" snapshot --dry-run --keep-last 2 "$MIRROR" "$SNAPS" >dry.out &&
	cat dry.out &&
	new=$(sed -n "s|^$SNAPS/\(.*\): would take a btrfs snapshot of $MIRROR\$|\1|p" dry.out) &&
	test -n "$new" &&
	grep -q "$(cat name.4): would remove\$" dry.out &&
	grep -q "$(cat name.5): would keep (last)" dry.out &&
	grep -q "$new: would keep (last)" dry.out &&
	test_eq lines 4 "$(wc -l <dry.out)" &&
	snapshots >left2 &&
	test_cmp left left2
'

expect_success 'a snapshot that cannot be made fails the run; the next run catches up' '
	echo 6 >"$S/user/alice/cur/6." &&
	SNAPS="$TRASH/no-such-dir" &&
	cron --consumer mirror --command "$MIRROR_CMD" 2>run.err
	rc=$?
	SNAPS="$MNT/snapshots"
	cat run.err &&
	test "$rc" -ne 0 &&
	test_eq result aborted "$(field result run.err)" &&
	grep -q "snapshot directory .*no-such-dir" run.err &&
	run_and_record 6 &&
	test -e "$SNAPS/$(cat name.6)$S/user/alice/cur/6."
'

expect_success 'bad uses: one line each, exit 64 or 1, nothing made' '
	snapshots >b0 &&
	test_expect_code 64 env CHJ_MODE=full CHJ_LIST=/dev/null CHJ_ROOTS=/ \
		"$CHJ_SRCDIR/contrib/cron/chjournal-rsync-mirror" --snapshot "$SNAPS" host:/m 2>err &&
	grep -q "needs DEST to be a local directory" err &&
	test_expect_code 64 "$CHJ_SRCDIR/contrib/cron/chjournal-rsync-mirror" --keep-last 2 "$MIRROR" 2>err &&
	grep -q "need --snapshot" err &&
	test_expect_code 2 "$CHJOURNAL" snapshot --kind zfs "$MIRROR" "$SNAPS" 2>err &&
	grep -q "expected auto, btrfs or reflink" err &&
	test_expect_code 1 "$CHJOURNAL" snapshot "$TRASH/nothing" "$SNAPS" 2>err &&
	test_eq lines 1 "$(wc -l <err)" && grep -q "mirror .*nothing" err &&
	test_expect_code 1 "$CHJOURNAL" snapshot --kind btrfs "$TRASH" "$SNAPS" 2>err &&
	grep -q "btrfs failed" err &&
	snapshots >b1 && test_cmp b0 b1 &&
	test -z "$(ls -A "$SNAPS" | grep "^\.")"
'

expect_success 'a mirror that is not a subvolume: reflink copies, pruned alike' '
	mkdir -p "$MNT/plain" "$MNT/plain-snaps" &&
	cp -a "$MIRROR/." "$MNT/plain/" &&
	"$CHJOURNAL" snapshot "$MNT/plain" "$MNT/plain-snaps" >out &&
	grep -q "reflink snapshot of $MNT/plain" out &&
	n=$(ls "$MNT/plain-snaps") &&
	snap "$MNT/plain-snaps/$n$S" >got && test_cmp "expect.6" got &&
	"$CHJOURNAL" snapshot --keep-last 1 "$MNT/plain" "$MNT/plain-snaps" >out &&
	grep -q "$n: removed (not retained)" out &&
	test_eq count 1 "$(ls "$MNT/plain-snaps" | wc -l)"
'

expect_success 'on xfs: reflink copies of the mirror' '
	if ! command -v mkfs.xfs >/dev/null 2>&1; then
		echo "# skipped: no mkfs.xfs"
	else
		truncate -s 320M "$XIMG" &&
		mkfs.xfs -q -m reflink=1 "$XIMG" &&
		mount -o loop "$XIMG" "$XMNT" &&
		mkdir "$XMNT/mirror" "$XMNT/snaps" &&
		cp -a "$MIRROR/." "$XMNT/mirror/" &&
		"$CHJOURNAL" snapshot "$XMNT/mirror" "$XMNT/snaps" >out &&
		grep -q "reflink snapshot" out &&
		n=$(ls "$XMNT/snaps") &&
		snap "$XMNT/snaps/$n$S" >got && test_cmp "expect.6" got &&
		echo changed >>"$XMNT/mirror$S/user/alice/cur/1." &&
		snap "$XMNT/snaps/$n$S" >got && test_cmp "expect.6" got
	fi
'

expect_success 'daemon stops cleanly' '
	stop_daemon
'

test_done
