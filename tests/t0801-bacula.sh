#!/bin/bash
# t0801-bacula: contrib/bacula with a real Bacula 9.6 (Debian packages) run by
# the test on loopback ports: director (sqlite3 catalog made with the Debian
# script), storage daemon (File device under the test dir), file daemon and
# bconsole, each daemon started by hand with -f -c CONFIG.
# The FileSet's file list is `\\|chjournal-bacula-list CONSUMER %i %l`, the
# Job runs at level Full with Accurate = no, and a RunScript After (on success
# and on failure) runs `chjournal-bacula-end CONSUMER %i '%e'`.
# Covers: a first complete job; a job with no change; jobs after changes
# (files created, modified, a directory renamed, a symlink, names with spaces,
# UTF-8, Latin-1) that hold exactly the changed files and the run's manifest
# (its deleted and reconcile lists and its list, NUL-separated, in the
# client's manifest directory); the job ids to merge found with the README's
# query, point-in-time restores of those merges bringing back exactly the
# files deleted or renamed away, and equal to the spool at that time once
# chjournal-apply-merged has applied the manifests the merge holds; after
# more deletions, renames, a file and a folder deleted and created again and
# deletions made while chjournald was stopped (in the reconcile list), the
# chain (the README's query of committed jobs) restored job by job by
# chjournal-bacula-restore, the manifests restored from the jobs or read from
# the client, equal to the spool, and a merged restore of it bringing back
# exactly what went, which chjournal-apply-merged removes; the manifests of
# runs not committed dropped, those of the previous chain pruned when a full
# run is committed; a job failing after the list
# aborts the run and the next job lists those changes again; a listed file
# vanishing before Bacula reads it ("OK -- with warnings") aborts too; paths
# Bacula cannot take (newline, > 998 bytes, trailing blank) fail the job
# visibly and nothing is committed; a level other than Full is refused; a
# restore opens no run; estimate opens a run the next job replaces; with
# chjournald stopped begin's stderr notice stays out of the file list; the
# client-side (ClientRunAfterJob) variant; the shipped bacula-dir snippet
# passes bacula-dir -t.
# Skips (does not fail) when the Bacula packages cannot be installed.
. "$(dirname "$0")/test-lib.sh"

require_root

BACULA_PKGS="bacula-director bacula-director-sqlite3 bacula-sd bacula-fd bacula-console"
MAKE_TABLES=/usr/share/bacula-director/make_sqlite3_tables

bacula_present() {
	[ -x /usr/sbin/bacula-dir ] && [ -x /usr/sbin/bacula-sd ] &&
	[ -x /usr/sbin/bacula-fd ] && [ -x /usr/sbin/bconsole ] &&
	[ -r "$MAKE_TABLES" ] && [ -r /etc/bacula/scripts/query.sql ] &&
	command -v sqlite3 >/dev/null 2>&1 &&
	dpkg -s bacula-director-sqlite3 >/dev/null 2>&1
}

if ! bacula_present; then
	command -v apt-get >/dev/null 2>&1 || skip_all "Bacula is not installed and there is no apt-get"
	apt-cache policy bacula-director 2>/dev/null | grep -q 'Candidate: [0-9]' ||
		skip_all "Bacula is not installed and apt has no candidate for bacula-director"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y $BACULA_PKGS \
		>"$TRASH/apt.log" 2>&1; then
		skip_all "cannot install $BACULA_PKGS: $(tail -n 1 "$TRASH/apt.log")"
	fi
	bacula_present || skip_all "installed $BACULA_PKGS but bacula-dir/sd/fd, bconsole, sqlite3 or $MAKE_TABLES is missing"
fi
command -v perl >/dev/null 2>&1 || skip_all "perl is needed by chjournal-bacula-list"

LIST_CMD="$CHJ_SRCDIR/contrib/bacula/chjournal-bacula-list"
END_CMD="$CHJ_SRCDIR/contrib/bacula/chjournal-bacula-end"
RESTORE_CMD="$CHJ_SRCDIR/contrib/bacula/chjournal-bacula-restore"
MERGED_CMD="$CHJ_SRCDIR/contrib/cron/chjournal-apply-merged"
B="$TRASH/bacula"
BSTATE="$B/chj-state"
BLOG="$B/chjournal-bacula.log"
CONSUMER=bacula-spool
# the client's manifest directory (the default below --state-dir)
MDIR="$BSTATE/manifests/$CONSUMER"
mkdir -p "$B/dir" "$B/sd" "$B/fd" "$B/run" "$B/volumes" "$B/restore" "$BSTATE"

# --- loopback ports of this test's own (test_ports: reserved against the
# tests running beside it)
BACULA_PORTS=$(test_ports 3) || skip_all "no three free loopback ports"
read -r DIR_PORT FD_PORT SD_PORT <<EOF
$BACULA_PORTS
EOF

# --- Bacula configuration
write_bacula_configs() {
	cat >"$B/bacula-dir.conf" <<EOF
Director {
  Name = chj-dir
  DIRport = $DIR_PORT
  DirAddress = 127.0.0.1
  QueryFile = "/etc/bacula/scripts/query.sql"
  WorkingDirectory = "$B/dir"
  PidDirectory = "$B/run"
  Maximum Concurrent Jobs = 5
  Password = "chj-console-pw"
  Messages = Daemon
}
Catalog {
  Name = chj-catalog
  dbname = "bacula"; dbuser = ""; dbpassword = ""
}
Messages {
  Name = Standard
  console = all, !skipped, !saved
  append = "$B/jobs.log" = all, !skipped
  catalog = all
}
Messages {
  Name = Daemon
  console = all, !skipped, !saved
  append = "$B/jobs.log" = all, !skipped
}
Client {
  Name = chj-fd
  Address = 127.0.0.1
  FDPort = $FD_PORT
  Catalog = chj-catalog
  Password = "chj-fd-pw"
  File Retention = 1 year
  Job Retention = 1 year
  AutoPrune = no
}
Storage {
  Name = chj-sd
  Address = 127.0.0.1
  SDPort = $SD_PORT
  Password = "chj-sd-pw"
  Device = chj-dev
  Media Type = File
}
Pool {
  Name = chj-pool
  Pool Type = Backup
  Label Format = "chj-vol-"
  Maximum Volume Bytes = 1G
  Recycle = no
  AutoPrune = no
  Volume Retention = 1 year
}
FileSet {
  Name = chj-list
  Include {
    Options {
      signature = MD5
    }
    File = "\\\\|$LIST_CMD -c $CONF --state-dir $BSTATE --log $BLOG $CONSUMER %i %l"
  }
}
# the same list, through a wrapper that lets the test break a job
FileSet {
  Name = chj-list-hook
  Include {
    Options {
      signature = MD5
    }
    File = "\\\\|$B/list-hook $CONSUMER %i %l"
  }
}
FileSet {
  Name = chj-none
  Include {
    File = "$B/nothing"
  }
}
JobDefs {
  Name = chj-defs
  Type = Backup
  Level = Full
  Accurate = no
  Client = chj-fd
  Storage = chj-sd
  Pool = chj-pool
  Messages = Standard
  Write Bootstrap = "$B/dir/%n-%i.bsr"
  RunScript {
    RunsWhen = After
    RunsOnSuccess = yes
    RunsOnFailure = yes
    RunsOnClient = no
    Command = "$END_CMD -c $CONF --state-dir $BSTATE --log $BLOG $CONSUMER %i '%e'"
  }
}
Job {
  Name = chj-backup
  JobDefs = chj-defs
  FileSet = chj-list
}
# the client-side variant (a ClientRunAfterJob)
Job {
  Name = chj-backup-client
  Type = Backup
  Level = Full
  Accurate = no
  Client = chj-fd
  Storage = chj-sd
  Pool = chj-pool
  Messages = Standard
  FileSet = chj-list-hook
  RunScript {
    RunsWhen = After
    RunsOnSuccess = yes
    RunsOnFailure = yes
    RunsOnClient = yes
    Command = "$END_CMD -c $CONF --state-dir $BSTATE --log $BLOG $CONSUMER %i '%e'"
  }
}
Job {
  Name = chj-backup-hook
  JobDefs = chj-defs
  FileSet = chj-list-hook
}
Job {
  Name = chj-restore
  Type = Restore
  Client = chj-fd
  FileSet = chj-none
  Storage = chj-sd
  Pool = chj-pool
  Messages = Standard
  Where = "$B/restore"
}
EOF
	cat >"$B/bacula-sd.conf" <<EOF
Storage {
  Name = chj-sd
  SDPort = $SD_PORT
  SDAddress = 127.0.0.1
  WorkingDirectory = "$B/sd"
  Pid Directory = "$B/run"
  Maximum Concurrent Jobs = 5
}
Director {
  Name = chj-dir
  Password = "chj-sd-pw"
}
Device {
  Name = chj-dev
  Media Type = File
  Archive Device = "$B/volumes"
  LabelMedia = yes
  Random Access = yes
  AutomaticMount = yes
  RemovableMedia = no
  AlwaysOpen = no
}
Messages {
  Name = Standard
  director = chj-dir = all
}
EOF
	cat >"$B/bacula-fd.conf" <<EOF
Director {
  Name = chj-dir
  Password = "chj-fd-pw"
}
FileDaemon {
  Name = chj-fd
  FDport = $FD_PORT
  FDAddress = 127.0.0.1
  WorkingDirectory = "$B/fd"
  Pid Directory = "$B/run"
  Maximum Concurrent Jobs = 5
}
Messages {
  Name = Standard
  director = chj-dir = all, !skipped, !restored
}
EOF
	cat >"$B/bconsole.conf" <<EOF
Director {
  Name = chj-dir
  DIRport = $DIR_PORT
  Address = 127.0.0.1
  Password = "chj-console-pw"
}
EOF
	: >"$B/nothing"
	# list-hook: the real list, then what $B/hook-action says (see below)
	cat >"$B/list-hook" <<EOF
#!/bin/bash
opts=\$(cat "$B/hook-opts" 2>/dev/null)
"$LIST_CMD" -c "$CONF" --state-dir "$BSTATE" --log "$BLOG" \$opts "\$@" || exit \$?
action=\$(cat "$B/hook-action" 2>/dev/null)
case \$action in
fail) exit 9 ;;
rm\ *) rm -f -- "\${action#rm }" ;;
esac
exit 0
EOF
	chmod +x "$B/list-hook"
}

BACULA_PIDS=
stop_bacula() {
	for pid in $BACULA_PIDS; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in $BACULA_PIDS; do
		for _i in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	BACULA_PIDS=
}
test_cleanup_extra=stop_bacula

port_listening() {
	_pl_hex=$(printf ':%04X ' "$1")
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
		awk -v p="$_pl_hex" '$4 == "0A" && index($2 " ", p) { f = 1 } END { exit !f }'
}

# start_bacula_daemon NAME PORT: NAME is dir, sd or fd
start_bacula_daemon() {
	CHJOURNAL="$CHJOURNAL" "/usr/sbin/bacula-$1" -f -c "$B/bacula-$1.conf" \
		-d 50 -dt >"$B/$1.out" 2>&1 &
	BACULA_PIDS="$BACULA_PIDS $!"
	if ! wait_for 30 port_listening "$2"; then
		echo "bacula-$1 does not listen on $2; its output:" >&2
		cat "$B/$1.out" >&2
		return 1
	fi
}

# bcons COMMAND...: one bconsole session running the commands
bcons() {
	printf '%s\n' "$@" quit | timeout 120 bconsole -n -c "$B/bconsole.conf" 2>&1
}

# run_job JOB [LEVEL]: runs the job, waits for it; its id in $JOBID, its
# JobStatus letter in $JOBSTATUS (T ok, W warnings, E/f error, A canceled)
run_job() {
	JOBID=
	JOBSTATUS=
	bcons "run job=$1 level=${2:-Full} yes" >run.out
	JOBID=$(sed -n 's/.*Job queued\. JobId=\([0-9]*\).*/\1/p' run.out)
	if [ -z "$JOBID" ]; then
		echo "run_job: no JobId; bconsole said:" >&2
		cat run.out >&2
		return 1
	fi
	bcons "wait jobid=$JOBID" >wait.out
	job_status "$JOBID"
}

job_status() {
	JOBSTATUS=$(bcons "list jobid=$1" |
		awk -F'|' -v id="$1" '$2 + 0 == id && NF > 3 { gsub(/ /, "", $(NF-1)); print $(NF-1) }')
}

# job_files JOBID: the files (not directories) stored by a job, sorted, into
# files.out (the manifest's files apart, in manifests.out); the directories
# into dirs.out
job_files() {
	bcons "list files jobid=$1" |
		sed -n 's/^| \(\/.*[^ ]\) *|$/\1/p' | LC_ALL=C sort >all-files.out
	grep -v '/$' all-files.out | grep -vF "$MDIR/" >files.out
	grep -F "$MDIR/" all-files.out >manifests.out
	grep '/$' all-files.out >dirs.out
	return 0
}

# manifest JOBID: the base of the job's manifest in the client's directory
# (exactly one), e.g. $MDIR/20261124T021500Z-0000000007.incremental
manifest() {
	_m=$(ls "$MDIR" | grep -E "^[0-9]{8}T[0-9]{6}Z-$(printf %010d "$1")\.(full|incremental)\.deleted\$") &&
	test "$(echo "$_m" | wc -l)" = 1 &&
	echo "$MDIR/${_m%.deleted}"
}

# in_nul FILE PATH: PATH is an entry of the NUL-separated FILE
in_nul() {
	tr '\n\0' '\001\n' <"$1" | grep -qxF -- "$(printf '%s' "$2" | tr '\n' '\001')"
}

# has_manifest JOBID MODE: the job saved its manifest (files.out: .deleted,
# .reconcile and, for an incremental run, .list) and the client keeps it
has_manifest() {
	_b=$(manifest "$1") &&
	case $2 in
	full) printf '%s\n' "$_b.deleted" "$_b.reconcile" ;;
	incremental) printf '%s\n' "$_b.deleted" "$_b.list" "$_b.reconcile" ;;
	esac | test_cmp - manifests.out &&
	case $_b in *".$2") ;; *) echo "manifest $_b is not $2" >&2; false ;; esac
}

# job_log JOBID: the job's messages from the catalog
job_log() {
	bcons "list joblog jobid=$1"
}

mkdir -p "$SPOOL/user/alice/INBOX" "$SPOOL/user/alice/Sent" \
	"$SPOOL/user/bob/INBOX" "$SPOOL/user/bob/Work/2024"
for i in 1 2 3; do
	echo "alice inbox $i" >"$SPOOL/user/alice/INBOX/$i."
	echo "bob inbox $i" >"$SPOOL/user/bob/INBOX/$i."
done
echo "sent 1" >"$SPOOL/user/alice/Sent/1."
echo "work 1" >"$SPOOL/user/bob/Work/2024/1."
echo "work 2" >"$SPOOL/user/bob/Work/2024/2."
printf 'header\n' >"$SPOOL/user/alice/cyrus.header"

expect_success 'bacula and chjournald start on loopback ports' '
	start_daemon &&
	write_bacula_configs &&
	sed -e "s|^cd /var/lib/bacula|cd $B/dir|" -e "s|XXX_DBNAME_XXX|bacula|g" \
		"$MAKE_TABLES" >"$B/make_tables" &&
	sh "$B/make_tables" &&
	test -s "$B/dir/bacula.db" &&
	/usr/sbin/bacula-dir -t -c "$B/bacula-dir.conf" &&
	start_bacula_daemon sd "$SD_PORT" &&
	start_bacula_daemon fd "$FD_PORT" &&
	start_bacula_daemon dir "$DIR_PORT" &&
	bcons "status dir" >status.out &&
	grep -q "chj-dir" status.out
'

# spool_files DIR: every file and symlink below DIR, relative, sorted
spool_files() {
	(cd "$1" && find . \( -type f -o -type l \) ! -name '.chjournal-cookie.*' |
		sed 's|^\./||' | LC_ALL=C sort)
}

# expect_files PATH...: the last job_files equals these spool paths
expect_files() {
	printf "$SPOOL/%s\n" "$@" | LC_ALL=C sort >expect.out &&
	test_cmp expect.out files.out
}

# run_ok JOB: the job must end OK (T) and commit its run
run_ok() {
	run_job "$1" &&
	if [ "$JOBSTATUS" != T ]; then
		echo "job $JOBID ended $JOBSTATUS, not T; its log:" >&2
		job_log "$JOBID" >&2
		cat "$BLOG" >&2
		return 1
	fi &&
	job_log "$JOBID" >joblog.out &&
	grep -q "chjournal-bacula-end: $CONSUMER: job $JOBID: job ended 'OK'; run (.*) committed" joblog.out &&
	job_files "$JOBID"
}

# no_open_run: the consumer exists and has no open run
no_open_run() {
	chj consumers >consumers.out &&
	grep -q "^$CONSUMER	.*	open=no\$" consumers.out
}

# restore_jobs IDS DIR: restores the merge of the jobs IDS (comma-separated)
# into DIR; waits for the restore and checks it ended OK
restore_jobs() {
	rm -rf "$2" &&
	bcons "restore client=chj-fd restorejob=chj-restore jobid=$1 where=$2 all done yes" >restore.out &&
	RJOB=$(sed -n 's/.*Job queued\. JobId=\([0-9]*\).*/\1/p' restore.out) &&
	if [ -z "$RJOB" ]; then
		echo "restore not queued:" >&2
		cat restore.out >&2
		return 1
	fi &&
	bcons "wait jobid=$RJOB" >/dev/null &&
	job_status "$RJOB" &&
	if [ "$JOBSTATUS" != T ]; then
		echo "restore job $RJOB ended $JOBSTATUS:" >&2
		job_log "$RJOB" >&2
		return 1
	fi
}

# extra_files A B: the files and symlinks below B that A lacks (relative)
extra_files() {
	spool_files "$1" >extra-a.out &&
	spool_files "$2" >extra-b.out &&
	LC_ALL=C comm -13 extra-a.out extra-b.out
}

# extra_dirs A B: the directories below B that A lacks (relative)
extra_dirs() {
	(cd "$1" && find . -mindepth 1 -type d | sed 's|^\./||' | LC_ALL=C sort) >extra-a.out &&
	(cd "$2" && find . -mindepth 1 -type d | sed 's|^\./||' | LC_ALL=C sort) >extra-b.out &&
	LC_ALL=C comm -13 extra-a.out extra-b.out
}

# same_tree A B: the same files and symlinks with the same contents/targets
same_tree() {
	spool_files "$1" >tree-a.out &&
	spool_files "$2" >tree-b.out &&
	test_cmp tree-a.out tree-b.out &&
	while IFS= read -r f; do
		if [ -L "$1/$f" ]; then
			[ "$(readlink "$1/$f")" = "$(readlink "$2/$f")" ] ||
				{ echo "symlink differs: $f" >&2; return 1; }
		else
			cmp "$1/$f" "$2/$f" || return 1
		fi
	done <tree-a.out
}

expect_success 'first job (complete: the consumer is new) lists the root, holds every file and directory, commits' '
	run_ok chj-backup &&
	JOB1=$JOBID &&
	spool_files "$SPOOL" | sed "s|^|$SPOOL/|" >expect.out &&
	test_cmp expect.out files.out &&
	grep -qx "$SPOOL/user/bob/Work/2024/" dirs.out &&
	! grep -F "$MDIR" dirs.out &&
	grep -q "job $JOB1: full: no committed run yet, 1 roots listed; manifest $MDIR/[0-9T]*Z-$(printf %010d $JOB1).full (0 deleted, 0 to reconcile)" "$BLOG" &&
	: the chain start saved its manifest, empty: nothing to remove before it &&
	has_manifest $JOB1 full &&
	test ! -s "$(manifest $JOB1).deleted" && test ! -s "$(manifest $JOB1).reconcile" &&
	test "$(stat -c %a "$MDIR")" = 700 &&
	grep -q "run (full: no committed run yet, 1 roots) committed" joblog.out &&
	no_open_run &&
	! grep -q "committed_begin=never" consumers.out
'

expect_success 'a job with nothing changed saves nothing and commits' '
	run_ok chj-backup &&
	test_cmp /dev/null files.out &&
	grep -q "job $JOBID: incremental, 0 files listed; manifest .* (0 deleted, 0 to reconcile)" "$BLOG" &&
	has_manifest $JOBID incremental &&
	test ! -s "$(manifest $JOBID).list"
'

expect_success 'changes: created, modified, directory renamed, symlink, odd names; deleted file' '
	echo "alice inbox 4" >"$SPOOL/user/alice/INBOX/4." &&
	echo "bob inbox 1, edited" >"$SPOOL/user/bob/INBOX/1." &&
	mv "$SPOOL/user/bob/Work" "$SPOOL/user/bob/Projects" &&
	ln -s INBOX/1. "$SPOOL/user/alice/first" &&
	echo "odd" >"$SPOOL/user/alice/Sent/name with  spaces, $(printf "\303\274") & *" &&
	echo "latin-1" >"$SPOOL/user/alice/Sent/caf$(printf "\351")" &&
	rm "$SPOOL/user/alice/INBOX/2." &&
	run_ok chj-backup &&
	JOB2=$JOBID &&
	expect_files user/alice/INBOX/4. user/bob/INBOX/1. \
		user/bob/Projects/2024/1. user/bob/Projects/2024/2. \
		user/alice/first "user/alice/Sent/name with  spaces, $(printf "\303\274") & *" \
		"user/alice/Sent/caf$(printf "\351")" &&
	: the manifest saved with the files: the deletion, the old name, the list &&
	has_manifest $JOB2 incremental &&
	m=$(manifest $JOB2) &&
	printf "%s\0" "$SPOOL/user/alice/INBOX/2." "$SPOOL/user/bob/Work" | cmp - "$m.deleted" &&
	test ! -s "$m.reconcile" &&
	tr "\0" "\n" <"$m.list" | LC_ALL=C sort | test_cmp - files.out &&
	grep -q "job $JOB2: incremental, 7 files listed; manifest $m (2 deleted, 0 to reconcile)" "$BLOG" &&
	rm -rf "$B/snap2" && cp -a "$SPOOL" "$B/snap2" &&
	T2=$(date "+%Y-%m-%d %H:%M:%S")
'

expect_success 'a job that fails after the list aborts the run; the next job lists the changes again' '
	echo "alice inbox 3, edited" >"$SPOOL/user/alice/INBOX/3." &&
	mkdir -p "$SPOOL/user/carol/INBOX" &&
	echo "carol 1" >"$SPOOL/user/carol/INBOX/1." &&
	echo fail >"$B/hook-action" &&
	run_job chj-backup-hook &&
	rm -f "$B/hook-action" &&
	JOBF=$JOBID &&
	case $JOBSTATUS in E|f) ;; *) echo "failed job ended $JOBSTATUS" >&2; false ;; esac &&
	job_log "$JOBF" >joblog.out &&
	grep -q "Child exited with code 9" joblog.out &&
	grep -q "chjournal-bacula-end: $CONSUMER: job $JOBF: job ended .*Error.*; run aborted" joblog.out &&
	no_open_run &&
	: the manifest of a run not committed is not kept on the client &&
	test -z "$(ls "$MDIR" | grep -- "-$(printf %010d $JOBF)\.")" &&
	run_ok chj-backup &&
	JOB3=$JOBID &&
	expect_files user/alice/INBOX/3. user/carol/INBOX/1.
'

expect_success 'a listed file vanishing before Bacula reads it: OK with warnings, run aborted, next job lists the rest again' '
	echo "alice inbox 5" >"$SPOOL/user/alice/INBOX/5." &&
	echo "alice inbox 6" >"$SPOOL/user/alice/INBOX/6." &&
	echo "rm $SPOOL/user/alice/INBOX/6." >"$B/hook-action" &&
	run_job chj-backup-hook &&
	rm -f "$B/hook-action" &&
	JOBW=$JOBID &&
	job_log "$JOBW" >joblog.out &&
	grep -q "INBOX/6.*No such file" joblog.out &&
	grep -q "chjournal-bacula-end: $CONSUMER: job $JOBW: job ended .OK -- with warnings. (a file may not have been saved); run aborted" joblog.out &&
	no_open_run &&
	test -z "$(ls "$MDIR" | grep -- "-$(printf %010d $JOBW)\.")" &&
	run_ok chj-backup &&
	JOB4=$JOBID &&
	expect_files user/alice/INBOX/5.
'

long_dir=
for _i in 1 2 3 4; do
	long_dir="$long_dir/$(printf "%0250d" "$_i")"
done

expect_success 'paths Bacula cannot take (newline, over 998 bytes, trailing blank) fail the job, nothing is committed' '
	chj consumers >before.out &&
	echo "alice inbox 7" >"$SPOOL/user/alice/INBOX/7." &&
	echo nl >"$SPOOL/user/alice/INBOX/bad
name" &&
	echo blank >"$SPOOL/user/alice/INBOX/trailing " &&
	mkdir -p "$SPOOL/user/long$long_dir" &&
	echo long >"$SPOOL/user/long$long_dir/1." &&
	run_job chj-backup &&
	case $JOBSTATUS in E|f) ;; *) echo "job ended $JOBSTATUS" >&2; false ;; esac &&
	job_log "$JOBID" >joblog.out &&
	grep -q "Child exited with code 3" joblog.out &&
	grep -q "cannot put in a Bacula file list, path contains a newline: $SPOOL/user/alice/INBOX/bad\\\\x0aname\$" "$BLOG" &&
	grep -q "cannot put in a Bacula file list, path ends with white space: $SPOOL/user/alice/INBOX/trailing \$" "$BLOG" &&
	grep -q "cannot put in a Bacula file list, path is longer than 998 bytes (10[0-9][0-9]): $SPOOL/user/long/0*1/" "$BLOG" &&
	no_open_run &&
	test -z "$(ls "$MDIR" | grep -- "-$(printf %010d $JOBID)\.")" &&
	chj consumers >after.out &&
	test_cmp before.out after.out &&
	mv "$SPOOL/user/alice/INBOX/bad
name" "$SPOOL/user/alice/INBOX/bad-name" &&
	mv "$SPOOL/user/alice/INBOX/trailing " "$SPOOL/user/alice/INBOX/trailing" &&
	rm -r "$SPOOL/user/long" &&
	run_ok chj-backup &&
	JOB5=$JOBID &&
	expect_files user/alice/INBOX/7. user/alice/INBOX/bad-name user/alice/INBOX/trailing &&
	: the old names, a newline in one, are in the NUL-separated deleted list &&
	in_nul "$(manifest $JOB5).deleted" "$SPOOL/user/alice/INBOX/bad
name" &&
	in_nul "$(manifest $JOB5).deleted" "$SPOOL/user/alice/INBOX/trailing " &&
	in_nul "$(manifest $JOB5).deleted" "$SPOOL/user/long"
'

expect_success 'a job at level Incremental is refused (exit 4) and opens no run' '
	echo "bob inbox 4" >"$SPOOL/user/bob/INBOX/4." &&
	run_job chj-backup Incremental &&
	case $JOBSTATUS in E|f) ;; *) echo "job ended $JOBSTATUS" >&2; false ;; esac &&
	job_log "$JOBID" >joblog.out &&
	grep -q "Child exited with code 4" joblog.out &&
	grep -q "job $JOBID runs at level Incremental; a chjournal change list must run at level Full" "$BLOG" &&
	no_open_run &&
	run_ok chj-backup &&
	JOB6=$JOBID &&
	expect_files user/bob/INBOX/4.
'

# chain_ids [TIME]: the jobs of the chain as of TIME (default now), for a
# restore, with the query of contrib/bacula/README: the jobs whose run
# chjournal-bacula-end committed, since the last one that committed a full run
chain_ids() {
	_t=${1:-$(date "+%Y-%m-%d %H:%M:%S")}
	bcons ".sql query=\"SELECT DISTINCT Log.JobId FROM Log, Job WHERE Log.JobId = Job.JobId AND Job.EndTime <= '$_t' AND Log.LogText LIKE '%chjournal-bacula-end: $CONSUMER: job %: job ended %; run (%) committed%' AND Log.JobId >= (SELECT MAX(L.JobId) FROM Log AS L, Job AS J WHERE L.JobId = J.JobId AND J.EndTime <= '$_t' AND L.LogText LIKE '%chjournal-bacula-end: $CONSUMER: job %: job ended %; run (full:%) committed%') ORDER BY Log.JobId\"" >sql.out &&
	tr "\t" "\n" <sql.out | grep -E "^[0-9]+\$" | paste -s -d, -
}

expect_success 'the chain'"'"'s job ids (README query): the committed jobs since the last full run, up to a time' '
	chain_ids >ids.out &&
	echo "$JOB1,$(($JOB1 + 1)),$JOB2,$JOB3,$JOB4,$JOB5,$JOB6" >expect.out &&
	test_cmp expect.out ids.out &&
	chain_ids "$T2" >ids2.out &&
	echo "$JOB1,$(($JOB1 + 1)),$JOB2" >expect.out &&
	test_cmp expect.out ids2.out
'

# A merged restore brings back what the jobs saved, the newest version of each
# path: what was deleted or renamed away since, too. Each job saved its
# manifest, so the merge holds the manifests of the jobs merged, and
# chjournal-apply-merged removes exactly that.
expect_success 'merged restore up to the second change: brings back exactly the deleted file and the old names; chjournal-apply-merged removes them' '
	restore_jobs "$(cat ids2.out)" "$B/r2" &&
	R="$B/r2$SPOOL" &&
	extra_files "$B/snap2" "$R" >extra.out &&
	printf "%s\n" user/alice/INBOX/2. user/bob/Work/2024/1. user/bob/Work/2024/2. |
		test_cmp - extra.out &&
	extra_files "$R" "$B/snap2" | test_cmp /dev/null - &&
	extra_dirs "$B/snap2" "$R" >extra.out &&
	printf "%s\n" user/bob/Work user/bob/Work/2024 | test_cmp - extra.out &&
	ls "$B/r2$MDIR" | sed -n "s/^[0-9T]*Z-0*\([0-9]*\)\.\(full\|incremental\)\.deleted\$/\1/p" |
		paste -s -d, - | test_cmp ids2.out - &&
	"$MERGED_CMD" "$B/r2" "$B/r2$MDIR"/*.deleted 2>merged.err &&
	grep -q ": 2 runs applied, 2 paths removed\$" merged.err &&
	same_tree "$B/snap2" "$R" &&
	extra_dirs "$B/snap2" "$R" | test_cmp /dev/null - &&
	grep -qx "bob inbox 1, edited" "$R/user/bob/INBOX/1."
'

expect_success 'merged restore of every OK job: the same old paths come back, and go; a restore opens no run' '
	restore_jobs "$(cat ids.out)" "$B/r-all" &&
	R="$B/r-all$SPOOL" &&
	extra_files "$SPOOL" "$R" >extra.out &&
	printf "%s\n" user/alice/INBOX/2. user/bob/Work/2024/1. user/bob/Work/2024/2. |
		test_cmp - extra.out &&
	"$MERGED_CMD" "$B/r-all" "$B/r-all$MDIR"/*.deleted &&
	same_tree "$SPOOL" "$R" &&
	extra_dirs "$SPOOL" "$R" | test_cmp /dev/null - &&
	no_open_run
'

# On the client the after-script only runs once the file daemon has got it
# from the Director, which comes after the FileSet: a job failing in the file
# list stage leaves the run open. That loses nothing (the next begin replaces
# an open run; the cursor has not moved), which is what this checks.
expect_success 'client-side variant (ClientRunAfterJob): a failed job commits nothing, the next one lists the change and commits' '
	echo "carol 2" >"$SPOOL/user/carol/INBOX/2." &&
	chj consumers >before.out &&
	echo fail >"$B/hook-action" &&
	run_job chj-backup-client &&
	rm -f "$B/hook-action" &&
	case $JOBSTATUS in E|f) ;; *) echo "failed job ended $JOBSTATUS" >&2; false ;; esac &&
	chj consumers | sed "s/	open=.*//" >after.out &&
	sed "s/	open=.*//" before.out | test_cmp - after.out &&
	run_job chj-backup-client &&
	test "$JOBSTATUS" = T &&
	JOBCL=$JOBID &&
	job_log "$JOBID" >joblog.out &&
	grep -q "ClientAfterJob: chjournal-bacula-end: $CONSUMER: job $JOBID: job ended .OK.; run (incremental, 1 files) committed" joblog.out &&
	job_files "$JOBID" &&
	expect_files user/carol/INBOX/2. &&
	no_open_run
'

expect_success 'estimate runs the list (opens a run); the next job replaces it and commits' '
	echo "bob inbox 5" >"$SPOOL/user/bob/INBOX/5." &&
	bcons "estimate job=chj-backup level=Full listing" >estimate.out &&
	grep -q "$SPOOL/user/bob/INBOX/5\\." estimate.out &&
	chj consumers >consumers.out &&
	grep -q "^$CONSUMER	.*	open=2" consumers.out &&
	run_ok chj-backup &&
	JOBE=$JOBID &&
	expect_files user/bob/INBOX/5. &&
	no_open_run
'

# begin with no chjournald says so on stderr; the file daemon reads the
# command's stderr as part of the list, so the script must log it instead (a
# stray line would be a path Bacula cannot stat: "OK -- with warnings").
# What went while no daemon watched is not known one by one: the manifest's
# reconcile list holds the directories that lost entries, with what they
# hold now.
expect_success 'chjournald stopped: begin notice goes to the log, not into the list; deletions then are in the reconcile list; job OK' '
	stop_daemon &&
	echo "bob inbox 6" >"$SPOOL/user/bob/INBOX/6." &&
	rm "$SPOOL/user/bob/INBOX/3." &&
	mv "$SPOOL/user/alice/Sent" "$SPOOL/user/alice/Archive" &&
	run_ok chj-backup &&
	JOBS=$JOBID &&
	in_files() { grep -qxF -- "$1" files.out; } &&
	in_files "$SPOOL/user/bob/INBOX/6." &&
	in_files "$SPOOL/user/alice/Archive/1." &&
	! grep -v "^/" files.out &&
	grep -q "chjournal-bacula-list.*no chjournald is running" "$BLOG" &&
	has_manifest $JOBS incremental &&
	m=$(manifest $JOBS) &&
	in_nul "$m.reconcile" "$SPOOL/user/bob/INBOX/" &&
	in_nul "$m.reconcile" "$SPOOL/user/bob/INBOX/6." &&
	! in_nul "$m.reconcile" "$SPOOL/user/bob/INBOX/3." &&
	in_nul "$m.reconcile" "$SPOOL/user/alice/" &&
	in_nul "$m.reconcile" "$SPOOL/user/alice/Archive" &&
	! in_nul "$m.reconcile" "$SPOOL/user/alice/Sent" &&
	start_daemon &&
	: the daemon covers its downtime with a rescan too: the next job lists it again &&
	run_ok chj-backup &&
	JOBS2=$JOBID &&
	in_files "$SPOOL/user/bob/INBOX/6."
'

expect_success 'more changes: a file and a folder deleted, then created again; a folder renamed a second time' '
	rm "$SPOOL/user/alice/INBOX/1." &&
	rm -r "$SPOOL/user/carol" &&
	mv "$SPOOL/user/bob/Projects" "$SPOOL/user/bob/Projects-old" &&
	run_ok chj-backup &&
	JOBX1=$JOBID &&
	expect_files user/bob/Projects-old/2024/1. user/bob/Projects-old/2024/2. &&
	echo "alice inbox 1, new" >"$SPOOL/user/alice/INBOX/1." &&
	mkdir -p "$SPOOL/user/carol/INBOX" &&
	echo "carol new 9" >"$SPOOL/user/carol/INBOX/9." &&
	run_ok chj-backup &&
	JOBX2=$JOBID &&
	expect_files user/alice/INBOX/1. user/carol/INBOX/9.
'

expect_success 'the chain restored job by job (chjournal-bacula-restore: each job'"'"'s manifest restored from it and applied first) equals the spool' '
	chain_ids >chain.out &&
	echo "$JOB1,$(($JOB1 + 1)),$JOB2,$JOB3,$JOB4,$JOB5,$JOB6,$JOBCL,$JOBE,$JOBS,$JOBS2,$JOBX1,$JOBX2" |
		test_cmp - chain.out &&
	"$RESTORE_CMD" -c "$B/bconsole.conf" --restore-job chj-restore \
		--manifest-dir "$BSTATE/manifests" "$CONSUMER" chj-fd "$B/r-chain" \
		"$(cat chain.out)" 2>restore.err &&
	cat restore.err &&
	grep -q "^chjournal-bacula-restore: consumer=$CONSUMER client=chj-fd where=$B/r-chain jobs=$(cat chain.out) restored=$(cat chain.out) manifests=job result=restored" restore.err &&
	same_tree "$SPOOL" "$B/r-chain$SPOOL" &&
	extra_dirs "$SPOOL" "$B/r-chain$SPOOL" | test_cmp /dev/null - &&
	grep -qx "alice inbox 1, new" "$B/r-chain$SPOOL/user/alice/INBOX/1." &&
	no_open_run
'

expect_success 'the same with the manifests read from the client'"'"'s manifest directory (--manifests-from)' '
	"$RESTORE_CMD" -c "$B/bconsole.conf" --restore-job chj-restore \
		--manifests-from "$MDIR" "$CONSUMER" chj-fd "$B/r-chain2" $(tr , " " <chain.out) 2>restore.err &&
	grep -q "restored=$(cat chain.out) manifests=client-dir result=restored" restore.err &&
	same_tree "$SPOOL" "$B/r-chain2$SPOOL" &&
	extra_dirs "$SPOOL" "$B/r-chain2$SPOOL" | test_cmp /dev/null -
'

# what a merged restore of the chain brings back: every path deleted or
# renamed away while the chain ran (not one created again: its newest version
# is restored)
expect_success 'a merged restore of the chain brings back exactly what was deleted or renamed away; chjournal-apply-merged removes it, keeping what was created again' '
	restore_jobs "$(cat chain.out)" "$B/r-merged" &&
	R="$B/r-merged$SPOOL" &&
	extra_files "$SPOOL" "$R" >extra.out &&
	printf "%s\n" user/alice/INBOX/2. user/alice/Sent/1. \
		"user/alice/Sent/name with  spaces, $(printf "\303\274") & *" \
		"user/alice/Sent/caf$(printf "\351")" user/bob/INBOX/3. \
		user/bob/Projects/2024/1. user/bob/Projects/2024/2. \
		user/bob/Work/2024/1. user/bob/Work/2024/2. \
		user/carol/INBOX/1. user/carol/INBOX/2. | LC_ALL=C sort | test_cmp - extra.out &&
	extra_files "$R" "$SPOOL" | test_cmp /dev/null - &&
	extra_dirs "$SPOOL" "$R" >extra.out &&
	printf "%s\n" user/alice/Sent user/bob/Projects user/bob/Projects/2024 \
		user/bob/Work user/bob/Work/2024 | test_cmp - extra.out &&
	grep -qx "alice inbox 1, new" "$R/user/alice/INBOX/1." &&
	"$MERGED_CMD" "$B/r-merged" "$B/r-merged$MDIR"/*.deleted 2>merged.err &&
	cat merged.err &&
	grep -q ": 12 runs applied, 7 paths removed\$" merged.err &&
	same_tree "$SPOOL" "$R" &&
	extra_dirs "$SPOOL" "$R" | test_cmp /dev/null - &&
	grep -qx "alice inbox 1, new" "$R/user/alice/INBOX/1."
'

# Two jobs' lists without Bacula (the scripts run by hand, job ids 900 and
# 901): the second takes the first one's run over; the first job's end cannot
# commit it, and the second's commit keeps the first's begin point.
expect_success 'a job whose run another job took over: its end leaves that run; the commit loses nothing' '
	lst() { CHJOURNAL="$CHJOURNAL" "$LIST_CMD" -c "$CONF" --log "$BLOG" --state-dir "$BSTATE" "$CONSUMER" "$1" Full; } &&
	fin() { CHJOURNAL="$CHJOURNAL" "$END_CMD" -c "$CONF" --log "$BLOG" --state-dir "$BSTATE" "$CONSUMER" "$@"; } &&
	lst 900 >list900.out &&
	echo "between" >"$SPOOL/user/bob/INBOX/between." &&
	lst 901 >list901.out &&
	grep -q "takes over run" "$BLOG" &&
	grep -qxF "$SPOOL/user/bob/INBOX/between." list901.out &&
	run901=$(sed -n "s/^run=//p" "$BSTATE/$CONSUMER") &&
	{ fin 900 OK >end900.out; test $? = 1; } &&
	grep -q "listed by job 901, which took this job.s run over: not committed" end900.out &&
	chj consumers | grep -q "^$CONSUMER	.*	run=$run901\$" &&
	fin 901 Error >end901f.out &&
	grep -q "job 901: job ended .Error.; run aborted" end901f.out &&
	no_open_run &&
	lst 902 >list902.out &&
	fin 902 OK >end902.out &&
	grep -q "job 902: job ended .OK.; run (incremental, .*) committed" end902.out &&
	grep -qxF "$SPOOL/user/bob/INBOX/between." list902.out &&
	lst 903 >list903.out &&
	echo "again" >"$SPOOL/user/bob/INBOX/again." &&
	lst 904 >list904.out &&
	fin 904 OK >end904.out &&
	# 904 committed 903'"'"'s begin point: "again" is listed once more
	lst 905 >list905.out &&
	grep -qxF "$SPOOL/user/bob/INBOX/again." list905.out &&
	fin 905 OK >/dev/null &&
	{ fin 903 OK >end903.out; test $? = 1; } &&
	no_open_run &&
	: the hand-run jobs 900-905 left manifests named with ids no director &&
	: has given yet: in the same second they sort after the next real job, &&
	: whose full would then keep them as its own chain. Bacula ids only grow &&
	rm -f "$MDIR"/*-00000009[0-9][0-9].*
'

expect_success 'new chain: after forget, the next job (--full-list files) holds every file and the merge starts there' '
	chj forget "$CONSUMER" &&
	echo "--full-list files" >"$B/hook-opts" &&
	run_job chj-backup-hook &&
	rm -f "$B/hook-opts" &&
	test "$JOBSTATUS" = T &&
	JOBC=$JOBID &&
	job_files "$JOBC" &&
	spool_files "$SPOOL" | sed "s|^|$SPOOL/|" >expect.out &&
	test_cmp expect.out files.out &&
	test_cmp /dev/null dirs.out &&
	job_log "$JOBC" >joblog.out &&
	n=$(wc -l <expect.out) &&
	{ grep -q "job $JOBC: job ended .OK.; run (full: no committed run yet, $n files) committed; [1-9][0-9]* manifest files of the previous chain removed" joblog.out ||
		{ echo "job $JOBC log:"; grep chjournal joblog.out; false; }; } &&
	: the client keeps the manifests of the new chain only &&
	has_manifest $JOBC full &&
	b=$(manifest $JOBC) &&
	ls "$MDIR" >ls.out &&
	printf "%s\n" "${b##*/}.deleted" "${b##*/}.reconcile" | test_cmp - ls.out &&
	echo "alice inbox 8" >"$SPOOL/user/alice/INBOX/8." &&
	run_job chj-backup-hook &&
	test "$JOBSTATUS" = T &&
	job_files "$JOBID" &&
	expect_files user/alice/INBOX/8. &&
	has_manifest $JOBID incremental &&
	test "$(ls "$MDIR" | wc -l)" = 5 &&
	chain_ids >ids.out &&
	echo "$JOBC,$JOBID" >expect.out &&
	test_cmp expect.out ids.out
'

expect_success 'the shipped bacula-dir-snippet.conf is accepted by bacula-dir -t' '
	mkdir -p "$B/snippet" &&
	cat >"$B/snippet/bacula-dir.conf" <<-EOF &&
	Director {
	  Name = snippet-dir
	  DIRport = $DIR_PORT
	  DirAddress = 127.0.0.1
	  QueryFile = "/etc/bacula/scripts/query.sql"
	  WorkingDirectory = "$B/snippet"
	  PidDirectory = "$B/snippet"
	  Password = "x"
	  Messages = Standard
	}
	Catalog {
	  Name = c
	  dbname = "bacula"; dbuser = ""; dbpassword = ""
	}
	Messages {
	  Name = Standard
	  console = all
	}
	Client {
	  Name = mailhost-fd
	  Address = 127.0.0.1
	  Catalog = c
	  Password = "x"
	}
	Storage {
	  Name = File1
	  Address = 127.0.0.1
	  Password = "x"
	  Device = d
	  Media Type = File
	}
	Pool {
	  Name = File
	  Pool Type = Backup
	}
	@$CHJ_SRCDIR/contrib/bacula/bacula-dir-snippet.conf
	EOF
	cp "$B/dir/bacula.db" "$B/snippet/bacula.db" &&
	/usr/sbin/bacula-dir -t -c "$B/snippet/bacula-dir.conf"
'

expect_success 'the scripts refuse bad arguments (exit 2) before touching any state' '
	test_expect_code 2 "$LIST_CMD" --log "$BLOG" --state-dir "$BSTATE" ../x 1 Full &&
	test_expect_code 2 "$LIST_CMD" --log "$BLOG" --state-dir "$BSTATE" "$CONSUMER" %i Full &&
	test_expect_code 2 "$LIST_CMD" --log "$BLOG" --full-list all "$CONSUMER" 1 &&
	test_expect_code 2 "$END_CMD" --log "$BLOG" --state-dir "$BSTATE" "a/b" 1 OK &&
	test_expect_code 2 "$END_CMD" --log "$BLOG" "$CONSUMER" 1 &&
	test_expect_code 2 "$LIST_CMD" --log "$BLOG" --manifest-dir rel/dir "$CONSUMER" 1 Full &&
	test_expect_code 2 "$RESTORE_CMD" "$CONSUMER" chj-fd "$B/r-x" &&
	test_expect_code 2 "$RESTORE_CMD" ../x chj-fd "$B/r-x" 1 &&
	test_expect_code 2 "$RESTORE_CMD" "$CONSUMER" chj-fd r-x 1 &&
	test_expect_code 2 "$RESTORE_CMD" "$CONSUMER" chj-fd "$B/r-x" 1,x &&
	test ! -e "$B/r-x" &&
	no_open_run
'

test_done
