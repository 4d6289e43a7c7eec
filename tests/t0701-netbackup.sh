#!/bin/bash
# t0701-netbackup: contrib/netbackup/bpstart_notify and bpend_notify, called
# exactly as a NetBackup UNIX client calls them: from a fake
# /usr/openv/netbackup/bin (the most specific of bpstart_notify.POLICY.SCHEDULE,
# bpstart_notify.POLICY, bpstart_notify), with the arguments CLIENT POLICY
# SCHEDULE SCHEDTYPE (bpend_notify: plus the client's exit status) and the
# environment BACKUPID, STREAM_NUMBER, STREAM_COUNT.
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
	sort "$(inclist spool incr)" >actual &&
	test_cmp expect actual &&
	grep -qxF "$SPOOL/user/bob/Projects/x\[1\]\*\?\{y\}" "$(inclist spool incr)" &&
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
	sort "$(inclist fresh incr)" >actual &&
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
	nbu_end spool incr INCR 1 &&
	! is_open nbu-spool &&
	test "$(consumer_line nbu-spool)" = "$before" &&
	test ! -e "$(inclist spool incr)" &&
	grep -q "job failed: run aborted" "$NBLOG" &&
	echo B >"$SPOOL/user/bob/INBOX/2." &&
	nbu_start spool incr INCR &&
	printf "%s\n" "$SPOOL/user/alice/INBOX/3." "$SPOOL/user/bob/INBOX/2." | escape_list >expect &&
	sort "$(inclist spool incr)" >actual &&
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
	sort "$(inclist spool incr)" >actual &&
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
	sort "$(inclist spool incr)" >actual &&
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
	sort "$(inclist spool incr)" >actual &&
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
	t0=$(date +%s) &&
	{ CHJ_CONF=$TRASH/slow.conf timeout -s TERM 3 "$NBU/bin/bpstart_notify" "$CLIENT" spool incr INCR 2>err; test $? -ne 0; } &&
	test $(( $(date +%s) - t0 )) -lt 25 &&
	test ! -e "$(inclist spool incr)" &&
	test -z "$(find "$NBU" -name ".include_list*")" &&
	test -z "$(find "$NBSTATE" -name ".*" ! -name .)" &&
	grep -q "killed by a signal" err &&
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
	sort "$(inclist spool incr)" >actual &&
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
