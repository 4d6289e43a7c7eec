#!/bin/bash
# t0701-netbackup: contrib/netbackup/bpstart_notify and bpend_notify, called
# exactly as a NetBackup UNIX client calls them: from a fake
# /usr/openv/netbackup/bin (the most specific of bpstart_notify.POLICY.SCHEDULE,
# bpstart_notify.POLICY, bpstart_notify), with the arguments CLIENT POLICY
# SCHEDULE SCHEDTYPE (bpend_notify: plus the client's exit status) and the
# environment BACKUPID, STREAM_NUMBER, STREAM_COUNT. NetBackup itself is not
# run: its images are simulated (a full job's: a copy of its selection, the
# spool and the manifest directory; a list job's: a copy of each path of its
# include list), and so are its restores (an image copied over the restore
# directory), to check the run manifests: written per run, named in run
# order, in the include list (escaped), dropped when the run is not
# committed, pruned when a chain start is; a chain restored image by image
# with chjournal-apply-run before each journal image equals the spool, and a
# merged restore brings back exactly what went, which chjournal-apply-merged
# removes.
. "$(dirname "$0")/test-lib.sh"

command -v perl >/dev/null 2>&1 || skip_all "perl is needed by bpstart_notify"
command -v flock >/dev/null 2>&1 || skip_all "flock(1) is needed by the scripts"

NBU=$TRASH/openv/netbackup
NBSTATE=$TRASH/nbstate
NBLOG=$TRASH/chjournal-netbackup.log
mkdir -p "$NBU/bin"
cp "$CHJ_SRCDIR/contrib/netbackup/bpstart_notify" "$CHJ_SRCDIR/contrib/netbackup/bpend_notify" "$NBU/bin/"
chmod 755 "$NBU/bin/bpstart_notify" "$NBU/bin/bpend_notify"
cat >"$TRASH/netbackup.conf" <<EOF
# written by $test_name
CHJOURNAL='$CHJOURNAL'
CHJOURNAL_CONF='$CONF'
CHJ_NBU_DIR='$NBU'
CHJ_LIST_DIR='$NBSTATE'
CHJ_LOG='$NBLOG'
EOF
export CHJ_CONF="$TRASH/netbackup.conf"
CLIENT=mailhost
jobs_run=0

# notify start|end POLICY SCHEDULE SCHEDTYPE [STATUS]: what the client does.
# One job = one BACKUPID (CLIENT_TIME, as NetBackup makes it) seen by both its
# bpstart_notify and its bpend_notify, unless the caller sets BACKUPID.
job_backupid=
notify() {
	_kind=$1
	shift
	_script=
	for _n in "bp${_kind}_notify.$1.$2" "bp${_kind}_notify.$1" "bp${_kind}_notify"; do
		if [ -x "$NBU/bin/$_n" ]; then
			_script=$NBU/bin/$_n
			break
		fi
	done
	[ -n "$_script" ] || return 0
	if [ "$_kind" = start ]; then
		jobs_run=$((jobs_run + 1))
		job_backupid=${CLIENT}_$(( $(date +%s) + jobs_run ))
	fi
	BACKUPID=${BACKUPID:-$job_backupid} "$_script" "$CLIENT" "$@"
}
nbu_start() { notify start "$@"; }
nbu_end() { notify end "$@"; }

# the include list NetBackup reads for POLICY SCHEDULE, and what it must hold
inclist() { echo "$NBU/include_list.$1.$2"; }
escape_list() { sed 's/[][?*{}]/\\&/g' | sort; }
# the run manifests of policy POLICY (the default directory)
mdir() { echo "$NBSTATE/manifests/nbu-$1"; }
# inc_paths POLICY SCHEDULE: the include list without the run's manifest
inc_paths() { grep -vF "$(mdir "$1")/" "$(inclist "$1" "$2")" | sort; }
# inc_manifest POLICY SCHEDULE: the manifest files in the include list
inc_manifest() { grep -F "$(mdir "$1")/" "$(inclist "$1" "$2")"; }
# last_manifest: the manifest base the last bpstart_notify logged
last_manifest() { sed -n 's/.*run opened (.*, manifest \(.*\) ([0-9]* deleted, [0-9]* to reconcile), [0-9]*s$/\1/p' "$NBLOG" | tail -n 1; }
# in_nul FILE PATH: PATH is an entry of the NUL-separated FILE
in_nul() {
	tr '\n\0' '\001\n' <"$1" | grep -qxF -- "$(printf '%s' "$2" | tr '\n' '\001')"
}
# consumer_line CONSUMER: its line in `chjournal consumers`
consumer_line() { chj consumers | grep "^$1	"; }
is_open() { consumer_line "$1" | grep -qv 'open=no$'; }
is_committed() { consumer_line "$1" | grep -q 'committed_begin=[0-9]'; }
all_files() {
	find "$SPOOL" \( -type f -o -type l \) ! -name '.chjournal-cookie.*' | sort
}

mkdir -p "$SPOOL/user/alice/INBOX" "$SPOOL/user/alice/Sent" "$SPOOL/user/bob/INBOX"
echo 1 >"$SPOOL/user/alice/INBOX/1."
echo 2 >"$SPOOL/user/alice/INBOX/2."
echo 3 >"$SPOOL/user/alice/Sent/1."
echo 4 >"$SPOOL/user/alice/Sent/2."
echo 5 >"$SPOOL/user/bob/INBOX/1."
start_daemon || exit 1

expect_success 'FULL job of a new policy opens a full run; bpend status 0 commits it' '
	nbu_start spool full FULL &&
	grep -q "chjournal begin nbu-spool: full: no committed run yet" "$NBLOG" &&
	is_open nbu-spool &&
	test ! -e "$(inclist spool full)" &&
	test ! -e "$NBU/exclude_list.spool.full" &&
	: a chain start: its manifest marks it, with nothing to remove &&
	m=$(last_manifest) &&
	case $m in "$(mdir spool)"/[0-9]*T[0-9]*Z-01.full) ;; *) false ;; esac &&
	test -f "$m.deleted" && test ! -s "$m.deleted" &&
	test -f "$m.reconcile" && test ! -s "$m.reconcile" && test ! -e "$m.list" &&
	grep -q "^state=ready" "$NBSTATE/spool.run" &&
	nbu_end spool full FULL 0 &&
	is_committed nbu-spool && ! is_open nbu-spool &&
	test ! -e "$NBSTATE/spool.run" &&
	grep -q "run committed (full: no committed run yet, full schedule)" "$NBLOG"
'

expect_success 'INCR after the FULL: the include list holds only the changes, wildcards escaped' '
	echo more >>"$SPOOL/user/alice/INBOX/1." &&
	mkdir "$SPOOL/user/bob/Projects" &&
	echo a >"$SPOOL/user/bob/Projects/1." &&
	echo b >"$SPOOL/user/bob/Projects/x[1]*?{y}" &&
	mv "$SPOOL/user/alice/Sent" "$SPOOL/user/alice/Sent Items" &&
	nbu_start spool incr INCR &&
	grep -q "chjournal begin nbu-spool: incremental" "$NBLOG" &&
	printf "%s\n" "$SPOOL/user/alice/INBOX/1." "$SPOOL/user/bob/Projects/1." \
		"$SPOOL/user/bob/Projects/x[1]*?{y}" \
		"$SPOOL/user/alice/Sent Items/1." "$SPOOL/user/alice/Sent Items/2." |
		escape_list >expect &&
	inc_paths spool incr >actual &&
	test_cmp expect actual &&
	grep -qxF "$SPOOL/user/bob/Projects/x\[1\]\*\?\{y\}" "$(inclist spool incr)" &&
	: the run manifest is in the include list: the image holds it &&
	m=$(last_manifest) &&
	case $m in "$(mdir spool)"/[0-9]*T[0-9]*Z-[0-9][0-9].incremental) ;; *) false ;; esac &&
	inc_manifest spool incr >m.out &&
	printf "%s\n" "$m.deleted" "$m.reconcile" "$m.list" | test_cmp - m.out &&
	printf "%s\0" "$SPOOL/user/alice/Sent" | cmp - "$m.deleted" &&
	test ! -s "$m.reconcile" &&
	tr "\0" "\n" <"$m.list" | escape_list | test_cmp expect - &&
	echo "/*" >expect.exclude &&
	test_cmp expect.exclude "$NBU/exclude_list.spool.incr" &&
	nbu_end spool incr INCR 0 &&
	! is_open nbu-spool &&
	test ! -e "$(inclist spool incr)"
'

expect_success 'INCR of a policy with no committed run (begin says full) gets the complete list' '
	nbu_start fresh incr INCR &&
	grep -q "chjournal begin nbu-fresh: full: no committed run yet" "$NBLOG" &&
	all_files | escape_list >expect &&
	inc_paths fresh incr >actual &&
	test_cmp expect actual &&
	test "$(wc -l <actual)" -ge 7 &&
	nbu_end fresh incr INCR 0 &&
	is_committed nbu-fresh && ! is_open nbu-fresh
'

expect_success 'a failing job (bpend status 1) aborts; the next INCR lists its changes again' '
	before=$(consumer_line nbu-spool) &&
	echo A >"$SPOOL/user/alice/INBOX/3." &&
	nbu_start spool incr INCR &&
	grep -qxF "$SPOOL/user/alice/INBOX/3." "$(inclist spool incr)" &&
	m=$(last_manifest) && test -f "$m.deleted" &&
	nbu_end spool incr INCR 1 &&
	! is_open nbu-spool &&
	test "$(consumer_line nbu-spool)" = "$before" &&
	test ! -e "$(inclist spool incr)" &&
	grep -q "job failed: run aborted" "$NBLOG" &&
	: the manifest of a run not committed is not kept &&
	test ! -e "$m.deleted" && test ! -e "$m.list" && test ! -e "$m.reconcile" &&
	echo B >"$SPOOL/user/bob/INBOX/2." &&
	nbu_start spool incr INCR &&
	printf "%s\n" "$SPOOL/user/alice/INBOX/3." "$SPOOL/user/bob/INBOX/2." | escape_list >expect &&
	inc_paths spool incr >actual &&
	test_cmp expect actual &&
	nbu_end spool incr INCR 0 &&
	test "$(consumer_line nbu-spool)" != "$before" && ! is_open nbu-spool
'

expect_success 'a job killed before bpend (no bpend): the next bpstart takes the open run over and says so' '
	echo C >"$SPOOL/user/alice/INBOX/4." &&
	nbu_start spool incr INCR &&
	is_open nbu-spool &&
	echo D >"$SPOOL/user/alice/INBOX/5." &&
	nbu_start spool incr INCR &&
	grep -q "a run is still open (schedule incr, INCR, state ready.*begin takes it over" "$NBLOG" &&
	grep -q "chjournal begin: chjournal: consumer .nbu-spool.: run .[0-9a-f]*. takes over run" "$NBLOG" &&
	printf "%s\n" "$SPOOL/user/alice/INBOX/4." "$SPOOL/user/alice/INBOX/5." | escape_list >expect &&
	inc_paths spool incr >actual &&
	test_cmp expect actual &&
	nbu_end spool incr INCR 0 && ! is_open nbu-spool
'

expect_success 'bpend of another job does not commit the open run' '
	echo E >"$SPOOL/user/alice/INBOX/6." &&
	BACKUPID=${CLIENT}_100 nbu_start spool incr INCR &&
	must_fail env BACKUPID=${CLIENT}_99 "$NBU/bin/bpend_notify" "$CLIENT" spool incr INCR 0 &&
	is_open nbu-spool &&
	grep -q "belongs to another job" "$NBLOG" &&
	BACKUPID=${CLIENT}_100 nbu_end spool incr INCR 0 && ! is_open nbu-spool
'

expect_success 'no backup ids: the bpend of a job whose run was taken over commits the earlier begin, nothing lost' '
	echo G >"$SPOOL/user/alice/INBOX/7." &&
	env -u BACKUPID "$NBU/bin/bpstart_notify" "$CLIENT" spool incr INCR &&
	echo H >"$SPOOL/user/alice/INBOX/8." &&
	env -u BACKUPID "$NBU/bin/bpstart_notify" "$CLIENT" spool incr INCR &&
	grep -qxF "$SPOOL/user/alice/INBOX/8." "$(inclist spool incr)" &&
	# the first job ends: it cannot tell the open run from its own, and
	# commits the run the second job took over, at the first job'"'"'s begin
	env -u BACKUPID "$NBU/bin/bpend_notify" "$CLIENT" spool incr INCR 0 &&
	! is_open nbu-spool &&
	nbu_start spool incr INCR &&
	echo "$SPOOL/user/alice/INBOX/8." | escape_list >expect &&
	inc_paths spool incr >actual &&
	test_cmp expect actual &&
	nbu_end spool incr INCR 0 && ! is_open nbu-spool
'

expect_success 'multi-stream: stream 2 cannot start a run; only stream 1 opens it; commit waits for every stream' '
	echo F >"$SPOOL/user/bob/INBOX/3." &&
	begins=$(grep -c "chjournal begin nbu-spool:" "$NBLOG") &&
	CHJ_STREAM_WAIT=1 STREAM_NUMBER=2 STREAM_COUNT=2 must_fail nbu_start spool incr INCR 2>err &&
	grep -q "stream 1 has not opened a run" err &&
	! is_open nbu-spool &&
	test "$(grep -c "chjournal begin nbu-spool:" "$NBLOG")" = "$begins" &&
	STREAM_NUMBER=1 STREAM_COUNT=2 BACKUPID=${CLIENT}_201 nbu_start spool incr INCR &&
	t0=$(date +%s) &&
	STREAM_NUMBER=2 STREAM_COUNT=2 BACKUPID=${CLIENT}_202 nbu_start spool incr INCR &&
	test $(( $(date +%s) - t0 )) -le 5 &&
	test "$(grep -c "chjournal begin nbu-spool:" "$NBLOG")" = $((begins + 1)) &&
	grep -q "stream 2/2 backupid=${CLIENT}_202: joins the run opened by stream 1" "$NBLOG" &&
	grep -qxF "$SPOOL/user/bob/INBOX/3." "$(inclist spool incr)" &&
	STREAM_NUMBER=2 STREAM_COUNT=2 BACKUPID=${CLIENT}_202 nbu_end spool incr INCR 0 &&
	is_open nbu-spool &&
	grep -q "1 of 2 streams ended successfully, commit waits" "$NBLOG" &&
	STREAM_NUMBER=1 STREAM_COUNT=2 BACKUPID=${CLIENT}_201 nbu_end spool incr INCR 0 &&
	! is_open nbu-spool &&
	grep -q "stream 1/2 backupid=${CLIENT}_201 status 0: job succeeded: run committed" "$NBLOG"
'

expect_success 'multi-stream: one failed stream aborts the run, the other stream cannot commit it' '
	before=$(consumer_line nbu-spool) &&
	echo G >"$SPOOL/user/bob/INBOX/4." &&
	STREAM_NUMBER=1 STREAM_COUNT=3 BACKUPID=${CLIENT}_301 nbu_start spool incr INCR &&
	STREAM_NUMBER=2 STREAM_COUNT=3 BACKUPID=${CLIENT}_302 nbu_start spool incr INCR &&
	STREAM_NUMBER=3 STREAM_COUNT=3 BACKUPID=${CLIENT}_303 nbu_start spool incr INCR &&
	STREAM_NUMBER=1 STREAM_COUNT=3 BACKUPID=${CLIENT}_301 nbu_end spool incr INCR 0 &&
	is_open nbu-spool &&
	STREAM_NUMBER=3 STREAM_COUNT=3 BACKUPID=${CLIENT}_303 nbu_end spool incr INCR 13 &&
	! is_open nbu-spool &&
	STREAM_NUMBER=2 STREAM_COUNT=3 BACKUPID=${CLIENT}_302 nbu_end spool incr INCR 0 &&
	test "$(consumer_line nbu-spool)" = "$before" &&
	grep -q "another stream of this job failed" "$NBLOG" &&
	nbu_start spool incr INCR &&
	grep -q "the previous job (schedule incr) failed in another stream" "$NBLOG" &&
	grep -qxF "$SPOOL/user/bob/INBOX/4." "$(inclist spool incr)" &&
	nbu_end spool incr INCR 0 && ! is_open nbu-spool
'

nl_file="$SPOOL/user/alice/INBOX/bad
name"
expect_success 'a path with a newline: reported on stderr and in the log, the job fails, nothing committed' '
	before=$(consumer_line nbu-spool) &&
	echo H >"$nl_file" &&
	echo I >"$SPOOL/user/alice/INBOX/7." &&
	must_fail nbu_start spool incr INCR 2>err &&
	grep -qF "NOT backed up by this job: $SPOOL/user/alice/INBOX/bad\\nname" err &&
	grep -qF "NOT backed up by this job: $SPOOL/user/alice/INBOX/bad\\nname" "$NBLOG" &&
	grep -q "failing the job so that nothing is skipped" err &&
	grep -qxF "$SPOOL/user/alice/INBOX/bad\\nname" "$NBSTATE/spool.incr.unlisted" &&
	! is_open nbu-spool &&
	test "$(consumer_line nbu-spool)" = "$before" &&
	test ! -e "$(inclist spool incr)" &&
	test -z "$(find "$NBU" -name ".include_list*")"
'

expect_success 'CHJ_UNLISTABLE=warn: the job goes on without the newline path, still reporting it' '
	CHJ_UNLISTABLE=warn nbu_start spool incr INCR 2>err &&
	grep -qF "NOT backed up by this job: $SPOOL/user/alice/INBOX/bad\\nname" err &&
	grep -qF "CHJ_UNLISTABLE=warn" "$NBLOG" &&
	printf "%s\n" "$SPOOL/user/alice/INBOX/7." | escape_list >expect &&
	inc_paths spool incr >actual &&
	test_cmp expect actual &&
	nbu_end spool incr INCR 0 && ! is_open nbu-spool
'
rm -f "$nl_file"

expect_success 'user backups and archives leave the journal alone; CINC and unknown types are refused' '
	before=$(consumer_line nbu-spool) &&
	echo J >"$SPOOL/user/alice/INBOX/8." &&
	nbu_start spool user UBAK && nbu_end spool user UBAK 0 &&
	nbu_start spool user UARC && nbu_end spool user UARC 0 &&
	test "$(consumer_line nbu-spool)" = "$before" &&
	test ! -e "$(inclist spool user)" &&
	must_fail nbu_start spool cumul CINC 2>err &&
	grep -q "cumulative incremental schedules are not supported" err &&
	must_fail nbu_start spool odd WEIRD &&
	test "$(consumer_line nbu-spool)" = "$before"
'

expect_success 'a Full-type schedule named in CHJ_LIST_SCHEDULES gets the list, not a full run' '
	CHJ_LIST_SCHEDULES="other journal" nbu_start spool journal FULL &&
	grep -qxF "$SPOOL/user/alice/INBOX/8." "$(inclist spool journal)" &&
	test "$(wc -l <"$(inclist spool journal)")" -lt "$(all_files | wc -l)" &&
	test -e "$NBU/exclude_list.spool.journal" &&
	nbu_end spool journal FULL 0 && ! is_open nbu-spool
'

expect_success 'policy-specific scripts (bpstart_notify.POLICY.SCHEDULE) work the same' '
	cp "$NBU/bin/bpstart_notify" "$NBU/bin/bpstart_notify.spool.incr" &&
	cp "$NBU/bin/bpend_notify" "$NBU/bin/bpend_notify.spool.incr" &&
	: the generic scripts must not be the ones run: &&
	printf "#!/bin/sh\nexit 9\n" >"$NBU/bin/bpstart_notify" &&
	printf "#!/bin/sh\nexit 9\n" >"$NBU/bin/bpend_notify" &&
	echo K >"$SPOOL/user/alice/INBOX/9." &&
	nbu_start spool incr INCR &&
	grep -qxF "$SPOOL/user/alice/INBOX/9." "$(inclist spool incr)" &&
	nbu_end spool incr INCR 0 && ! is_open nbu-spool &&
	cp "$CHJ_SRCDIR/contrib/netbackup/bpstart_notify" "$CHJ_SRCDIR/contrib/netbackup/bpend_notify" "$NBU/bin/" &&
	rm -f "$NBU/bin/bpstart_notify.spool.incr" "$NBU/bin/bpend_notify.spool.incr"
'

expect_success 'chjournal failing (no agent binary) fails bpstart_notify; a successful job without a run fails bpend_notify' '
	sed "s|^CHJOURNAL=.*|CHJOURNAL=$TRASH/no-such-chjournal|" "$CHJ_CONF" >bad.conf &&
	CHJ_CONF=$TRASH/bad.conf must_fail nbu_start spool incr INCR 2>err &&
	grep -q "chjournal begin nbu-spool failed" err &&
	must_fail nbu_end spool incr INCR 0 2>err &&
	grep -q "no open chjournal run" err &&
	nbu_end spool incr INCR 1
'

expect_success 'bpstart_notify killed while listing (BPSTART_TIMEOUT): no partial list, run aborted' '
	before=$(consumer_line nbu-spool) &&
	cat >slowchj <<-EOF &&
	#!/bin/sh
	for a in "\$@"; do [ "\$a" = list ] && sleep 30; done
	exec "$CHJOURNAL" "\$@"
	EOF
	chmod +x slowchj &&
	sed "s|^CHJOURNAL=.*|CHJOURNAL=$TRASH/slowchj|" "$CHJ_CONF" >slow.conf &&
	echo L >"$SPOOL/user/alice/INBOX/10." &&
	ls -a "$(mdir spool)" >mdir.before &&
	t0=$(date +%s) &&
	{ CHJ_CONF=$TRASH/slow.conf timeout -s TERM 3 "$NBU/bin/bpstart_notify" "$CLIENT" spool incr INCR 2>err; test $? -ne 0; } &&
	test $(( $(date +%s) - t0 )) -lt 25 &&
	test ! -e "$(inclist spool incr)" &&
	test -z "$(find "$NBU" -name ".include_list*")" &&
	test -z "$(find "$NBSTATE" -name ".*" ! -name .)" &&
	grep -q "killed by a signal" err &&
	ls -a "$(mdir spool)" | test_cmp mdir.before - &&
	! is_open nbu-spool &&
	test "$(consumer_line nbu-spool)" = "$before" &&
	nbu_start spool incr INCR &&
	grep -qxF "$SPOOL/user/alice/INBOX/10." "$(inclist spool incr)" &&
	nbu_end spool incr INCR 0
'

expect_success 'no daemon running: begin covers the gap with a rescan (said on stderr and in the log), the list still holds the change' '
	stop_daemon &&
	echo M >>"$SPOOL/user/bob/INBOX/1." &&
	nbu_start spool incr INCR 2>err &&
	grep -q "no chjournald is running" err &&
	grep -q "chjournal begin: .*no chjournald is running" "$NBLOG" &&
	grep -qxF "$SPOOL/user/bob/INBOX/1." "$(inclist spool incr)" &&
	nbu_end spool incr INCR 0 && ! is_open nbu-spool &&
	start_daemon
'

# --- a chain restored from simulated images: the full schedule backs up its
# selection (the spool and the manifest directory), a list schedule the paths
# of its include list (the run's manifest among them). The manifest directory
# has wildcards and a space in its name, as the include list must escape.
CMDIR="$TRASH/mani[fests] {dir}"
CM="$CMDIR/nbu-chain"
IMG=$TRASH/images
chain_start() { CHJ_MANIFEST_DIR=$CMDIR CHJ_LIST_SCHEDULES=journal nbu_start chain "$@"; }
chain_end() { CHJ_MANIFEST_DIR=$CMDIR CHJ_LIST_SCHEDULES=journal nbu_end chain "$@"; }
# image_full NAME: the image of a full job (cp -a --parents from /, relative:
# coreutils 9.1 fails on the parents' attributes of an absolute path)
image_full() {
	mkdir -p "$IMG/$1" && (cd / && cp -a --parents "${SPOOL#/}" "${CM#/}" "$IMG/$1/")
}
# image_list NAME: the image of a journal job: each path of its include list
image_list() {
	mkdir -p "$IMG/$1" &&
	sed 's/\\\([][?*{}]\)/\1/g' "$(inclist chain journal)" | while IFS= read -r p; do
		(cd / && cp -a --parents "${p#/}" "$IMG/$1/") || exit 1
	done
}
# put_image NAME DEST: an image restored over DEST (existing files replaced)
put_image() {
	cp -a --remove-destination "$IMG/$1/." "$2/"
}
# restore_chain DEST FULL LIST...: the procedure of contrib/netbackup/README:
# the full image, then each journal image in order, its manifest restored
# first on its own (here: read from the image) and applied by
# chjournal-apply-run before its files
restore_chain() {
	_dest=$1
	shift
	rm -rf "$_dest" && mkdir -p "$_dest" && put_image "$1" "$_dest" && shift &&
	for _i in "$@"; do
		set -- "$IMG/$_i$CM"/*.deleted
		[ $# = 1 ] && [ -f "$1" ] || { echo "image $_i: $# manifests" >&2; return 1; }
		"$CHJ_SRCDIR/contrib/cron/chjournal-apply-run" "$_dest" "${1%.deleted}" &&
		put_image "$_i" "$_dest" || return 1
	done
}
# spool_files DIR: the files and symlinks below DIR (relative, sorted)
spool_files() {
	(cd "$1" && find . \( -type f -o -type l \) ! -name '.chjournal-cookie.*' |
		sed 's|^\./||' | LC_ALL=C sort)
}
# tree_dirs DIR: the directories below DIR (relative, sorted)
tree_dirs() {
	(cd "$1" && find . -mindepth 1 -type d | sed 's|^\./||' | LC_ALL=C sort)
}
# same_tree A B: the same files and symlinks (contents, targets), and no
# directory in B that A lacks
same_tree() {
	spool_files "$1" >tree-a.out && spool_files "$2" >tree-b.out &&
	test_cmp tree-a.out tree-b.out &&
	while IFS= read -r f; do
		if [ -L "$1/$f" ]; then
			[ "$(readlink "$1/$f")" = "$(readlink "$2/$f")" ] ||
				{ echo "symlink differs: $f" >&2; return 1; }
		else
			cmp "$1/$f" "$2/$f" || return 1
		fi
	done <tree-a.out &&
	tree_dirs "$1" >dirs-a.out && tree_dirs "$2" >dirs-b.out &&
	LC_ALL=C comm -13 dirs-a.out dirs-b.out | test_cmp /dev/null -
}
C="$SPOOL/chain"
chain_bases=()

expect_success 'chain: a full schedule job writes a chain-start manifest (the image holds it); committing it prunes the previous chain'"'"'s' '
	mkdir -p "$C/INBOX" "$C/Work/2024" "$C/Sent" &&
	for i in 1 2 3; do echo "inbox $i" >"$C/INBOX/$i." || return 1; done &&
	echo "work 1" >"$C/Work/2024/1." && echo "work 2" >"$C/Work/2024/2." &&
	echo "sent 1" >"$C/Sent/1." && echo odd >"$C/odd [x]*?" &&
	: an earlier chain: a full job and a journal job &&
	chain_start full FULL && old1=$(last_manifest) && chain_end full FULL 0 &&
	echo "old chain" >"$C/INBOX/old." &&
	chain_start journal FULL && old2=$(last_manifest) && chain_end journal FULL 0 &&
	case $old2 in *.incremental) ;; *) false ;; esac &&
	: the new chain start &&
	chain_start full FULL &&
	F0=$(last_manifest) &&
	case $F0 in "$CM"/[0-9]*T[0-9]*Z-[0-9][0-9].full) ;; *) false ;; esac &&
	test ! -s "$F0.deleted" && test ! -s "$F0.reconcile" &&
	image_full F0 &&
	test -f "$IMG/F0$F0.deleted" && test -f "$IMG/F0$old2.list" &&
	chain_end full FULL 0 &&
	grep -q "job succeeded: run committed (incremental, full schedule); 5 manifest files of the previous chain removed" "$NBLOG" &&
	ls "$CM" >ls.out &&
	printf "%s\n" "${F0##*/}.deleted" "${F0##*/}.reconcile" | test_cmp - ls.out &&
	chain_bases=("$F0")
'

expect_success 'chain: each journal job writes its manifest and puts it (escaped) in the include list; a failed job'"'"'s manifest goes' '
	rm "$C/INBOX/2." "$C/odd [x]*?" &&
	mv "$C/Work" "$C/Projects" &&
	echo "inbox 4" >"$C/INBOX/4." &&
	ln -s INBOX/1. "$C/first" &&
	chain_start journal FULL &&
	I1=$(last_manifest) &&
	case $I1 in "$CM"/[0-9]*T[0-9]*Z-[0-9][0-9].incremental) ;; *) false ;; esac &&
	for m in deleted reconcile list; do
		grep -qxF "$(printf "%s" "$I1.$m" | sed "s/[][?*{}]/\\\\&/g")" "$(inclist chain journal)" || return 1
	done &&
	printf "%s\0" "$C/INBOX/2." "$C/Work" "$C/odd [x]*?" | cmp - "$I1.deleted" &&
	image_list I1 &&
	test -f "$IMG/I1$I1.deleted" && test -f "$IMG/I1$C/Projects/2024/1." &&
	chain_end journal FULL 0 &&
	: a failed job: its run aborted, its manifest removed &&
	rm -r "$C/Sent" &&
	echo "inbox 5" >"$C/INBOX/5." &&
	chain_start journal FULL &&
	X=$(last_manifest) && test -f "$X.deleted" &&
	chain_end journal FULL 1 &&
	test ! -e "$X.deleted" && test ! -e "$X.list" && test ! -e "$X.reconcile" &&
	chain_start journal FULL &&
	I2=$(last_manifest) &&
	in_nul "$I2.deleted" "$C/Sent" && in_nul "$I2.list" "$C/INBOX/5." &&
	image_list I2 &&
	chain_end journal FULL 0 &&
	chain_bases+=("$I1" "$I2")
'

expect_success 'chain: deletions and a rename while chjournald is stopped are in the manifest'"'"'s reconcile list; a file and a folder created again' '
	stop_daemon &&
	rm "$C/INBOX/3." "$C/INBOX/1." &&
	echo "inbox 1, new" >"$C/INBOX/1." &&
	mv "$C/Projects" "$C/Archive" &&
	mkdir "$C/Sent" && echo "sent new" >"$C/Sent/9." &&
	start_daemon &&
	chain_start journal FULL &&
	I3=$(last_manifest) &&
	in_nul "$I3.reconcile" "$C/" && in_nul "$I3.reconcile" "$C/Archive" &&
	! in_nul "$I3.reconcile" "$C/Projects" &&
	in_nul "$I3.reconcile" "$C/INBOX/" && ! in_nul "$I3.reconcile" "$C/INBOX/3." &&
	in_nul "$I3.list" "$C/INBOX/1." && in_nul "$I3.list" "$C/Sent/9." &&
	image_list I3 &&
	chain_end journal FULL 0 &&
	chain_bases+=("$I3") &&
	: the manifests sort in run order &&
	ls "$CM" | sed -n "s/\.deleted\$//p" >ls.out &&
	for b in "${chain_bases[@]}"; do echo "${b##*/}"; done | test_cmp - ls.out
'

expect_success 'chain: restored image by image, each journal image'"'"'s manifest applied first, it equals the spool' '
	restore_chain "$TRASH/r-chain" F0 I1 I2 I3 &&
	same_tree "$SPOOL" "$TRASH/r-chain$SPOOL" &&
	grep -qx "inbox 1, new" "$TRASH/r-chain$C/INBOX/1." &&
	: without the manifests the deleted files come back &&
	rm -rf "$TRASH/r-plain" && mkdir "$TRASH/r-plain" &&
	for i in F0 I1 I2 I3; do put_image $i "$TRASH/r-plain" || return 1; done &&
	test -f "$TRASH/r-plain$C/INBOX/2."
'

expect_success 'chain: a merged restore (every image at once) brings back exactly what went; chjournal-apply-merged removes it' '
	M="$TRASH/r-merged" &&
	rm -rf "$M" && mkdir "$M" &&
	for i in F0 I1 I2 I3; do put_image $i "$M" || return 1; done &&
	spool_files "$SPOOL" >a.out && spool_files "$M$SPOOL" >b.out &&
	LC_ALL=C comm -13 a.out b.out >extra.out &&
	printf "chain/%s\n" INBOX/2. INBOX/3. "odd [x]*?" Projects/2024/1. Projects/2024/2. \
		Sent/1. Work/2024/1. Work/2024/2. | LC_ALL=C sort | test_cmp - extra.out &&
	LC_ALL=C comm -23 a.out b.out | test_cmp /dev/null - &&
	grep -qx "inbox 1, new" "$M$C/INBOX/1." &&
	: the full image holds the manifests of the previous chain too: ignored &&
	"$CHJ_SRCDIR/contrib/cron/chjournal-apply-merged" "$M" "$M$CM"/*.deleted 2>merged.err &&
	cat merged.err &&
	grep -q ": 3 runs applied, 2 runs before the chain start ignored, 6 paths removed\$" merged.err &&
	same_tree "$SPOOL" "$M$SPOOL" &&
	grep -qx "inbox 1, new" "$M$C/INBOX/1."
'

# A journal the size a real night can have: 20000 changed files. bpstart_notify
# must finish far within BPSTART_TIMEOUT (300 s by default).
big_secs=
expect_success 'a journal of 20000 changed files: bpstart_notify lists them all well within BPSTART_TIMEOUT' '
	for i in $(seq 1 20); do mkdir -p "$SPOOL/big/d$i" || return 1; done &&
	nbu_start spool full FULL && nbu_end spool full FULL 0 &&
	for i in $(seq 1 20); do
		(cd "$SPOOL/big/d$i" && seq 1 1000 | sed "s/\$/./" | xargs touch) || return 1
	done &&
	t0=$(date +%s%N) &&
	nbu_start spool incr INCR &&
	t1=$(date +%s%N) &&
	big_secs=$(( (t1 - t0) / 1000000 )) &&
	echo "bpstart_notify: ${big_secs} ms" &&
	find "$SPOOL/big" -type f | sort >expect &&
	test "$(wc -l <expect)" = 20000 &&
	inc_paths spool incr >actual &&
	comm -23 expect actual >missing &&
	test_cmp /dev/null missing &&
	test "$big_secs" -lt 300000 &&
	grep -q "run opened (incremental): [0-9]* paths" "$NBLOG" &&
	nbu_end spool incr INCR 0 && ! is_open nbu-spool
'
[ -n "$big_secs" ] && echo "# bpstart_notify with 20000 changed files took ${big_secs} ms (BPSTART_TIMEOUT 300 s)"

expect_success 'every bpstart_notify/bpend_notify call of this test was logged' '
	test -s "$NBLOG" &&
	grep -c "^[0-9-]*T[0-9:]*Z bp\(start\|end\)_notify\[[0-9]*\] " "$NBLOG" >n &&
	test "$(cat n)" -ge 30
'

stop_daemon
test_done
