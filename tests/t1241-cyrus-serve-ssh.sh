#!/bin/bash
# t1241-cyrus-serve-ssh: `chjournal backup --from` pulling two Cyrus IMAP
# hosts through a real OpenSSH server into one backup directory. Two Cyrus
# lab instances, each with its own chjournald and configuration, stand for
# two IMAP hosts (the second with 33 users: a full run reads every user's
# mailbox list at once, CYRUS_BACKUP_BULK_USERS); a sshd started here on a
# loopback port (its own host key) runs `chjournal -c CONF serve` as the
# forced command of each host's key (restrict). Full and incremental pulls of both hosts at once (-j 2), the
# restore of every pulled archive identical to its spool, an idle host, a
# host down, a connection cut in the middle (its consumer not committed, the
# archives valid, the next run covers the gap), and serve refusing a path
# outside the Cyrus directories, another consumer, a write, and a malformed
# or oversized request.
. "$(dirname "$0")/test-lib.sh"
. "$CHJ_SRCDIR/tests/cyrus-lib.sh"

cyrus_require
[ -x /usr/sbin/sshd ] || skip_all "no OpenSSH server (/usr/sbin/sshd: apt-get install openssh-server)"
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null ||
	skip_all "no OpenSSH client (ssh, ssh-keygen)"
tar --version 2>/dev/null | grep -q 'GNU tar' || skip_all "GNU tar not found"

USERS="user01 user02 user03"
LAB1="$TRASH/lab1"
LAB2="$TRASH/lab2"
CONF2="$TRASH/chjournal2.conf"
STATE2="$TRASH/state2"
PULL="$TRASH/pull"
SSHCFG="$TRASH/ssh_config"
SSHD_PID=
DAEMON2_PID=
CLIENT="$CHJ_SRCDIR/tests/serve-client.py"

stop_extra() {
	[ -z "$SSHD_PID" ] || kill "$SSHD_PID" 2>/dev/null
	[ -z "$DAEMON2_PID" ] || kill "$DAEMON2_PID" 2>/dev/null
	[ -z "$DAEMON2_PID" ] || wait "$DAEMON2_PID" 2>/dev/null
	cyrus_stop_all
}
test_cleanup_extra='stop_extra'

# pull ARGS: the backup host's command: no configuration, no journal
pull() {
	env -u CHJOURNAL_CONF "$CHJOURNAL" backup --ssh "ssh -F $SSHCFG" --to "$PULL" "$@"
}

# check_restores HOST LAB: every user's pulled archive restores to exactly
# what the lab's oracle sees now
check_restores() {
	for u in $USERS; do
		cyrus_snapshot "$2" "$u" "$TRASH/snap-$1-$u" || return 1
		rm -rf "$TRASH/restore-$1-$u"
		chj restore "$PULL/$1/$u.tar.gz" --to "$TRASH/restore-$1-$u" >/dev/null || return 1
		cyrus_compare "$TRASH/snap-$1-$u" "$TRASH/restore-$1-$u" || {
			echo "host $1, user $u differs" >&2
			return 1
		}
	done
}

daemon2_ready() {
	"$CHJOURNAL" -c "$CONF2" status 2>/dev/null | grep -q '^daemon: *running'
}

expect_success 'two Cyrus labs start, each with its chjournald' '
	cyrus_start "$LAB1" &&
	bash "$CYRUS_LAB" populate "$LAB1" 3 15 >"$TRASH/populate1.log" 2>&1 &&
	cyrus_config "$LAB1" &&
	start_daemon &&
	cyrus_start "$LAB2" &&
	bash "$CYRUS_LAB" populate "$LAB2" 33 6 >"$TRASH/populate2.log" 2>&1 &&
	sed -e "s|$LAB1|$LAB2|g" -e "s|$STATE/|$STATE2/|" "$CONF" >"$CONF2" &&
	mkdir -p "$STATE2" &&
	{ "$CHJOURNALD" -c "$CONF2" -v 2>"$TRASH/daemon2.log" & DAEMON2_PID=$!; } &&
	wait_for 30 daemon2_ready
'

expect_success 'a sshd on a loopback port, the forced command on each key' '
	set -- $(test_ports 2) &&
	SSH_PORT=$1 DOWN_PORT=$2 &&
	ssh-keygen -q -t ed25519 -N "" -f "$TRASH/hostkey" &&
	ssh-keygen -q -t ed25519 -N "" -f "$TRASH/key1" &&
	ssh-keygen -q -t ed25519 -N "" -f "$TRASH/key2" &&
	ssh-keygen -q -t ed25519 -N "" -f "$TRASH/key4" &&
	{
		echo "command=\"$CHJOURNAL -c $CONF serve -C $LAB1/imapd.conf\",restrict $(cat "$TRASH/key1.pub")"
		echo "command=\"$CHJOURNAL -c $CONF2 serve -C $LAB2/imapd.conf\",restrict $(cat "$TRASH/key2.pub")"
		echo "command=\"$CHJOURNAL -c $CONF serve --no-cyrus --consumer nightly\",restrict $(cat "$TRASH/key4.pub")"
	} >"$TRASH/authorized_keys" &&
	cat >"$TRASH/sshd_config" <<-EOF &&
	Port $SSH_PORT
	ListenAddress 127.0.0.1
	HostKey $TRASH/hostkey
	AuthorizedKeysFile $TRASH/authorized_keys
	PidFile $TRASH/sshd.pid
	StrictModes no
	UsePAM no
	PasswordAuthentication no
	KbdInteractiveAuthentication no
	PermitRootLogin prohibit-password
	LogLevel ERROR
	EOF
	echo "[127.0.0.1]:$SSH_PORT $(cat "$TRASH/hostkey.pub")" >"$TRASH/known_hosts" &&
	for h in 1 2 3 4; do
		port=$SSH_PORT
		[ $h = 3 ] && port=$DOWN_PORT
		cat <<-EOF
		Host imap$h
		  HostName 127.0.0.1
		  Port $port
		  User root
		  IdentityFile $TRASH/key$h
		  IdentitiesOnly yes
		  UserKnownHostsFile $TRASH/known_hosts
		  StrictHostKeyChecking yes
		  BatchMode yes
		  LogLevel ERROR
		EOF
	done >"$SSHCFG" &&
	cp "$TRASH/key1" "$TRASH/key3" &&
	mkdir -p /run/sshd &&
	/usr/sbin/sshd -t -f "$TRASH/sshd_config" &&
	{ /usr/sbin/sshd -D -e -f "$TRASH/sshd_config" 2>"$TRASH/sshd.log" & SSHD_PID=$!; } &&
	wait_for 10 ssh -F "$SSHCFG" imap1 true
'

expect_success 'the first pull of both hosts (-j 2) is full and archives every user' '
	pull --from imap1 --from imap2 -j 2 >out 2>err &&
	grep -q "^backup imap1: 3 users checked, 3 runs written.*full run" out &&
	grep -q "^backup imap2: 33 users checked, 33 runs written.*full run" out &&
	for h in imap1 imap2; do
		for u in $USERS; do
			test -f "$PULL/$h/$u.tar.gz" &&
			test "$(stat -c %a "$PULL/$h/$u.tar.gz")" = 600 || return 1
		done
	done &&
	test ! -e "$TRASH/.chjournal" &&
	chj verify "$PULL"/imap1/*.tar.gz "$PULL"/imap2/*.tar.gz >/dev/null
'

expect_success 'every pulled message is stored under its SHA1, compressed here' '
	tar -xzif "$PULL/imap1/user01.tar.gz" -C "$TRASH" --wildcards "files/*" &&
	for f in "$TRASH"/files/*; do
		test "$(sha1sum <"$f" | cut -c1-40)" = "$(basename "$f")" || return 1
	done
'

expect_success 'restore of each pulled archive is identical to its spool' '
	check_restores imap1 "$LAB1" && check_restores imap2 "$LAB2"
'

expect_success 'churn on both, an incremental pull, restores identical again' '
	bash "$CYRUS_LAB" churn "$LAB1" 2 >>"$TRASH/churn.log" 2>&1 &&
	bash "$CYRUS_LAB" churn "$LAB2" 2 >>"$TRASH/churn.log" 2>&1 &&
	pull --from imap1 --from imap2 -j 2 >out 2>err &&
	grep "^backup imap1:" out >line1 && ! grep -q "full run" line1 &&
	grep "^backup imap2:" out >line2 && ! grep -q "full run" line2 &&
	! grep -q " 0 runs written" out &&
	check_restores imap1 "$LAB1" && check_restores imap2 "$LAB2"
'

# an idle pull takes ~0.1 s here (ssh's handshake most of it); the bound is
# loose so that a loaded machine does not fail it
expect_success 'an idle host: nothing written, quickly' '
	pull --from imap1 >out 2>err &&
	grep -q "^backup imap1: 0 users checked, 0 runs written" out &&
	start=$(date +%s%N) && pull --from imap1 >out 2>err && end=$(date +%s%N) &&
	echo "idle pull: $(( (end - start) / 1000000 )) ms" &&
	test $(( (end - start) / 1000000 )) -lt 5000
'

expect_success 'a host down: named in one line, non-zero; the other host is pulled' '
	bash "$CYRUS_LAB" churn "$LAB2" 1 >>"$TRASH/churn.log" 2>&1 &&
	must_fail pull --from imap3 --from imap2 -j 2 >out 2>err &&
	cat err &&
	test "$(grep -c "imap3" err)" = 1 &&
	grep -q "^chjournal: host .imap3.: " err &&
	grep -q "^backup imap2: " out &&
	test ! -e "$PULL/imap3/user01.tar.gz" &&
	# each host its metrics, for the textfile collector of node_exporter
	grep -qx "chjournal_pull_success{host=\"imap3\"} 0" "$PULL/imap3.prom" &&
	grep -qx "chjournal_pull_last_success_time_seconds{host=\"imap3\"} 0.000" "$PULL/imap3.prom" &&
	grep -qx "chjournal_pull_success{host=\"imap2\"} 1" "$PULL/imap2.prom" &&
	grep -q "^chjournal_pull_received_bytes{host=\"imap2\"} [1-9]" "$PULL/imap2.prom" &&
	grep -q "^chjournal_pull_runs_written{host=\"imap2\"} [1-9]" "$PULL/imap2.prom" &&
	# an ssh that ends at once, for two hosts one after the other: each is
	# named, and no SIGPIPE ends the run at the first
	must_fail "$CHJOURNAL" backup --from a --from b --ssh true --to "$TRASH/none" 2>err &&
	test "$(grep -c "^chjournal: host .[ab].: " err)" = 2
'

expect_success 'a host that hangs (says nothing): --timeout ends its pull, the other host is pulled' '
	printf "#!/bin/sh\nexec sleep 3600\n" >"$TRASH/hangssh" &&
	chmod +x "$TRASH/hangssh" &&
	cat >"$TRASH/mixssh" <<-EOF &&
	#!/bin/sh
	# the host "hung" hangs, the others are reached through the real ssh
	for a; do [ "\$a" = hung ] && exec sleep 3600; done
	exec ssh -F "$SSHCFG" "\$@"
	EOF
	chmod +x "$TRASH/mixssh" &&
	test_expect_code 1 timeout 120 env -u CHJOURNAL_CONF "$CHJOURNAL" backup --ssh "$TRASH/mixssh" \
		--to "$PULL" --from hung --from imap1 -j 2 --timeout 2 >out 2>err &&
	cat err &&
	test "$(grep -c "hung" err)" = 1 &&
	grep -q "^chjournal: host .hung.: .*no answer in 2 s: the other end hangs" err &&
	grep -q "^backup imap1: " out &&
	grep -qx "chjournal_pull_success{host=\"hung\"} 0" "$PULL/hung.prom" &&
	rm "$PULL/hung.prom" &&
	! pgrep -f "sleep 3600" >/dev/null &&
	test_expect_code 2 "$CHJOURNAL" backup --to "$PULL" --timeout 5 2>err &&
	grep -q "goes with --from" err
'

expect_success 'status --pulls: every host of the backup host in one place (text, JSON, Prometheus)' '
	must_fail env -u CHJOURNAL_CONF "$CHJOURNAL" -c /nonexistent status --pulls "$PULL" >st 2>err &&
	cat st &&
	grep -q "^pulls in $PULL: 3 hosts, 1 failing$" st &&
	grep -q "^host imap1: ok; last run 20[0-9-]*T[0-9:]*Z" st &&
	grep -q "^host imap2: ok; .*, [1-9][0-9]* runs written, 0 users failed$" st &&
	grep -q "^host imap3: FAILED; .* last success never;" st &&
	test ! -s err &&
	must_fail env -u CHJOURNAL_CONF "$CHJOURNAL" status --pulls "$PULL" --json >st.json &&
	python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
h = {x[\"host\"]: x for x in d[\"hosts\"]}
assert sorted(h) == [\"imap1\", \"imap2\", \"imap3\"], h
assert h[\"imap2\"][\"success\"] is True and h[\"imap2\"][\"received_bytes\"] > 0
assert h[\"imap3\"][\"success\"] is False and h[\"imap3\"][\"last_success\"] == 0
" st.json &&
	must_fail env -u CHJOURNAL_CONF "$CHJOURNAL" status --pulls "$PULL" --prometheus >st.prom &&
	test "$(grep -c "^# HELP chjournal_pull_success " st.prom)" = 1 &&
	test "$(grep -c "^chjournal_pull_success{" st.prom)" = 3 &&
	grep -qx "chjournal_pull_success{host=\"imap3\"} 0" st.prom &&
	grep -qx "chjournal_pull_success{host=\"imap1\"} 1" st.prom &&
	# what the collector reads, a host at a time, says the same
	cat "$PULL/imap2.prom" | grep -v "^#" >one &&
	grep "host=\"imap2\"" st.prom >fromall &&
	test_cmp one fromall &&
	# a backup directory without pulls, and a damaged file: one line each
	mkdir -p "$TRASH/nopulls" &&
	must_fail env -u CHJOURNAL_CONF "$CHJOURNAL" status --pulls "$TRASH/nopulls" 2>err &&
	test "$(wc -l <err)" = 1 && grep -q "no pull recorded in" err &&
	echo "chjournal_pull_success{host=\"x\"} yes" >"$TRASH/nopulls/x.prom" &&
	must_fail env -u CHJOURNAL_CONF "$CHJOURNAL" status --pulls "$TRASH/nopulls" 2>err &&
	test "$(wc -l <err)" = 1 && grep -q "x.prom. line 1: a malformed value" err
'

expect_success 'a connection cut in the middle: not committed, archives valid, the next pull covers it' '
	bash "$CYRUS_LAB" churn "$LAB1" 2 >>"$TRASH/churn.log" 2>&1 &&
	cat >"$TRASH/cutssh" <<-EOF &&
	#!/usr/bin/env python3
	# ssh whose answer is cut after CUT bytes, as a dropped connection
	import os, subprocess, sys
	p = subprocess.Popen(["ssh", "-F", "$SSHCFG"] + sys.argv[1:], stdout=subprocess.PIPE)
	left = int(os.environ.get("CUT", "30000"))
	while left > 0:
	    b = p.stdout.read1(min(left, 65536))
	    if not b:
	        break
	    os.write(1, b)
	    left -= len(b)
	os.close(1)
	p.kill()
	p.wait()
	sys.exit(255)
	EOF
	chmod +x "$TRASH/cutssh" &&
	chj consumers >before &&
	for cut in 10 3000 20000; do
		must_fail env CUT=$cut "$CHJOURNAL" backup --ssh "$TRASH/cutssh" --to "$PULL" \
		    --from imap1 >out 2>err &&
		cat err &&
		test "$(grep -c "host .imap1." err)" = 1 &&
		grep -q "^chjournal: host .imap1.: " err &&
		chj consumers >after &&
		grep "^cyrus-archive" before | cut -f2-4 >b && grep "^cyrus-archive" after | cut -f2-4 >a &&
		test_cmp b a &&
		chj verify "$PULL"/imap1/*.tar.gz >/dev/null || return 1
	done &&
	grep -qx "chjournal_pull_success{host=\"imap1\"} 0" "$PULL/imap1.prom" &&
	grep "^chjournal_pull_last_success_time_seconds{host=\"imap1\"}" "$PULL/imap1.prom" >ls &&
	! grep -q " 0.000$" ls &&
	pull --from imap1 >out 2>err &&
	! grep -q " 0 runs written" out &&
	check_restores imap1 "$LAB1"
'

expect_success 'serve refuses a path outside the Cyrus directories, in one line' '
	ln -s /etc "$LAB1/spool/evil" &&
	for p in /etc/passwd "$LAB1/spool/../../../../etc/passwd" "$LAB1/spool/evil/passwd" \
	    "$LAB1/conf/mailboxes.db" relative/path; do
		python3 "$CLIENT" fetch "$p" -- ssh -F "$SSHCFG" imap1 >answer 2>err &&
		grep -q "^ERR 5 path .* refused" answer &&
		grep -q "^exit 0$" answer &&
		test "$(grep -c refused err)" = 1 || { cat answer err; return 1; }
	done &&
	rm "$LAB1/spool/evil" &&
	f=$(find "$LAB1/spool" -name "1." | head -n 1) &&
	python3 "$CLIENT" fetch "$f" -- ssh -F "$SSHCFG" imap1 >answer &&
	grep -q "^FILE 0 0 " answer && grep -q "^OK$" answer
'

expect_success 'serve refuses another consumer and any write' '
	python3 "$CLIENT" begin other -- ssh -F "$SSHCFG" imap1 >answer 2>err &&
	grep -q "^ERR 5 consumer .other. refused" answer &&
	for t in 12 20 63 100 200 255; do
		python3 "$CLIENT" type $t -- ssh -F "$SSHCFG" imap1 >answer 2>err &&
		grep -q "^ERR 5 request of type $t refused: serve only reads" answer &&
		test "$(wc -l <err)" = 1 || { cat answer err; return 1; }
	done &&
	chj consumers | grep -q "^cyrus-archive" &&
	! chj consumers | grep -q "^other"
'

expect_success 'serve refuses a malformed or oversized request in one line and ends' '
	for c in oversized badcrc longfield; do
		python3 "$CLIENT" $c -- ssh -F "$SSHCFG" imap1 >answer 2>err &&
		grep -q "^ERR 10 " answer &&
		! grep -q "^exit 0$" answer &&
		test "$(wc -l <err)" = 1 || { cat answer err; return 1; }
	done
'

expect_success 'a generic consumer through serve --no-cyrus: begin, list, commit --from' '
	pull4() { env -u CHJOURNAL_CONF "$CHJOURNAL" "$@" --from imap4 --ssh "ssh -F $SSHCFG"; } &&
	pull4 begin nightly --print-run-id >begin.out 2>err &&
	test "$(head -n 1 begin.out)" = "full: no committed run yet" &&
	run=$(sed -n 2p begin.out) &&
	pull4 list nightly --run "$run" >list.out 2>err &&
	grep -q "^$LAB1/spool/" list.out &&
	pull4 commit nightly --run "$run" 2>err &&
	chj consumers | grep "^nightly" | grep -q "open=no" &&
	bash "$CYRUS_LAB" churn "$LAB1" 1 >>"$TRASH/churn.log" 2>&1 &&
	pull4 begin nightly >begin.out 2>err &&
	test "$(cat begin.out)" = incremental &&
	pull4 list nightly -0 >list0.out 2>err &&
	test -s list0.out &&
	test "$(tr -cd "\0" <list0.out | wc -c)" -lt "$(wc -l <list.out)" &&
	pull4 abort nightly 2>err &&
	pull4 begin nightly --list -0 --print-run-id >beginlist.out 2>err &&
	run=$(sed -n 2p beginlist.out) &&
	pull4 list nightly -0 --run "$run" >list0b.out 2>err &&
	{ printf "incremental\n%s\n" "$run" && cat list0b.out; } >expect0 &&
	cmp expect0 beginlist.out &&
	test -s list0b.out &&
	pull4 abort nightly --run "$run" 2>err &&
	must_fail pull4 begin cyrus-archive 2>err &&
	grep -q "consumer .cyrus-archive. refused" err &&
	f=$(find "$LAB1/spool" -name "1." | head -n 1) &&
	python3 "$CLIENT" fetch "$f" -- ssh -F "$SSHCFG" imap4 >answer 2>err &&
	grep -q "^ERR 5 path .* refused" answer
'

expect_success 'the labs and daemons stop' '
	stop_daemon &&
	kill "$DAEMON2_PID" && wait "$DAEMON2_PID"; DAEMON2_PID= &&
	kill "$SSHD_PID" && SSHD_PID= &&
	bash "$CYRUS_LAB" stop "$LAB1" >/dev/null && bash "$CYRUS_LAB" stop "$LAB2" >/dev/null
'

test_done
