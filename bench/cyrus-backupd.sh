# bench/cyrus-backupd.sh: Cyrus's own backup server, for the benchmarks that
# measure chjournal against it (sourced by cyrus-restore-server.sh and
# cyrus-growth.sh): backupd under its own master on a loopback port, fed by
# the source's sync_client (backupd(8), sync_client(8)).
#
#   cyrus_backupd_start DIR PORT   configures DIR (backups in DIR/backups) and
#                                  starts it; 1 when it does not listen
#   cyrus_backupd_stop DIR         stops its master
#   cyrus_bench_ports N            the first of N consecutive free loopback
#                                  ports (for the labs and backupd)
#   cyrus_backupd_sync SRCCONF PORT USER...
#                                  sync_client pushes each user (one process
#                                  each: with -A a user's backup also takes
#                                  the messages of the users after it)
#
# restore(8) runs on this server too ("from the server containing the backup
# storage") and, in Cyrus 3.6.1, authenticates with sync_authname and
# sync_password (restore_authname is not what it sends); admin with any
# password is an admin of the labs.
CYRBIN=${CYRBIN:-/usr/lib/cyrus/bin}

cyrus_backupd_start() {
	_bk=$1
	_port=$2
	mkdir -p "$_bk"/conf/{proc,lock,socket,log,db,sync} "$_bk"/{backups,staging,spool,run,log}
	cat >"$_bk/imapd.conf" <<-EOF
	configdirectory: $_bk/conf
	defaultpartition: default
	partition-default: $_bk/spool
	backuppartition-default: $_bk/backups
	backup_db_path: $_bk/conf/backups.db
	backup_staging_path: $_bk/staging
	servername: backup.localhost
	admins: admin
	allowplaintext: yes
	sasl_pwcheck_method: alwaystrue
	sasl_mech_list: PLAIN LOGIN
	unixhierarchysep: yes
	proc_path: $_bk/conf/proc
	mboxname_lockpath: $_bk/conf/lock
	syslog_prefix: cyruslab
	restore_authname: admin
	restore_password: x
	sync_authname: admin
	sync_password: x
	EOF
	cat >"$_bk/cyrus.conf" <<-EOF
	START {
	  recover cmd="ctl_cyrusdb -C $_bk/imapd.conf -r"
	}
	SERVICES {
	  backupd cmd="backupd -C $_bk/imapd.conf" listen="127.0.0.1:$_port" prefork=0 maxchild=8
	}
	EVENTS {
	}
	EOF
	chown -R cyrus:mail "$_bk"
	"$CYRBIN/master" -C "$_bk/imapd.conf" -M "$_bk/cyrus.conf" -p "$_bk/run/master.pid" \
		-L "$_bk/log/master.out" -d
	for _ in $(seq 200); do
		ss -ltnH "sport = :$_port" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

cyrus_backupd_stop() {
	[ -f "$1/run/master.pid" ] && kill "$(cat "$1/run/master.pid")" 2>/dev/null || true
}

cyrus_backupd_sync() {
	_conf=$1
	_port=$2
	shift 2
	printf '%s\n' "$@" | xargs -n 1 "$CYRBIN/sync_client" -C "$_conf" -S "127.0.0.1:$_port" -u
}

cyrus_bench_ports() {
	python3 - "$1" <<-'PY'
	import random, socket, sys
	n = int(sys.argv[1])
	for _ in range(200):
	    b = random.randrange(20000, 60000, 16)
	    ss = []
	    try:
	        for p in range(b, b + n):
	            s = socket.socket(); s.bind(("127.0.0.1", p)); ss.append(s)
	        print(b); break
	    except OSError:
	        pass
	    finally:
	        for s in ss: s.close()
	PY
}
