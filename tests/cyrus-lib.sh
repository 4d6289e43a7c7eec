# cyrus-lib.sh: helpers for tests against a real Cyrus IMAP server, started
# with ../shared/cyrus-lab/cyrus-lab.sh (sourced after test-lib.sh).
#
#   cyrus_require                 skip_all unless Cyrus and the lab script exist
#   cyrus_require_sync            cyrus_require, and GNU tar and sync_server
#   cyrus_start DIR [VAR=VALUE]…  first start of a lab instance on ports of its own
#   cyrus_config DIR              chjournal.conf ($CONF) watching the lab's
#                                 spool, config and sieve directories
#   cyrus_snapshot DIR USER OUT   the oracle's copy of USER's state (tests/cyrus-state.py)
#   cyrus_compare SNAP RESTORED   the oracle's comparison
#   last_run ARCHIVE              the name of the archive's last run, read with GNU tar

CYRUS_LAB=${CYRUS_LAB:-$CHJ_SRCDIR/../shared/cyrus-lab/cyrus-lab.sh}
CYRUS_STATE="$CHJ_SRCDIR/tests/cyrus-state.py"
CYRUS_LABS=

cyrus_require() {
	require_root
	[ -x /usr/lib/cyrus/bin/master ] ||
		skip_all "Cyrus IMAP is not installed (run: ../shared/cyrus-lab/cyrus-lab.sh install)"
	[ -f "$CYRUS_LAB" ] || skip_all "the Cyrus lab script is missing ($CYRUS_LAB)"
	id cyrus >/dev/null 2>&1 || skip_all "no 'cyrus' user"
	# the lab runs as the cyrus user: every parent of the test's directory
	# must be traversable
	chmod 755 "$TRASH"
}

cyrus_require_sync() {
	cyrus_require
	tar --version 2>/dev/null | grep -q 'GNU tar' || skip_all "GNU tar not found"
	[ -x /usr/lib/cyrus/bin/sync_server ] ||
		skip_all "Cyrus's sync_server is not installed (the cyrus-replication package: run ../shared/cyrus-lab/cyrus-lab.sh install)"
}

cyrus_stop_all() {
	for _d in $CYRUS_LABS; do
		bash "$CYRUS_LAB" stop "$_d" >/dev/null 2>&1
	done
}
test_cleanup_extra='cyrus_stop_all'

# The lab's ports are test_ports (test-lib): reserved for this test, so that
# labs of tests run side by side (make -j check) never share one.
cyrus_start() {
	_dir=$1
	shift
	_cs_ports=$(test_ports 3) || return 1
	set -- $_cs_ports "$@"
	env CYRUS_LAB_IMAP_PORT="$1" CYRUS_LAB_LMTP_PORT="$2" CYRUS_LAB_SIEVE_PORT="$3" \
	    CYRUS_LAB_SYSLOG=0 "${@:4}" \
	    bash "$CYRUS_LAB" start "$_dir" >"$TRASH/lab-start.log" 2>&1 || {
		cat "$TRASH/lab-start.log" >&2
		return 1
	}
	CYRUS_LABS="$CYRUS_LABS $_dir"
}

cyrus_config() {
	cat >"$CONF" <<-EOF
	journal = $STATE/journal.db
	flush_interval_ms = 50
	sync_timeout = 20
	root = $1/spool
	root = $1/conf
	root = $1/sieve
	exclude = ^$1/conf/(lock|proc|socket|sync|log|msg|db)(/|\$)
	exclude = ^$1/spool/stage\\.(/|\$)
	EOF
}

cyrus_snapshot() {
	rm -rf "$3"
	python3 "$CYRUS_STATE" snapshot "$1" "$2" "$3"
}

cyrus_compare() {
	python3 "$CYRUS_STATE" compare "$1" "$2"
}

last_run() {
	tar -tzif "$1" 2>/dev/null | sed -n 's|^runs/||p' | tail -n 1
}

# cyrus_imap PORT USER CMD ARGS...: one IMAP step as USER (any password logs in)
#   setquota ROOT LIMITS   quota   FOLDER   (GETQUOTAROOT: "ROOT RESOURCE USED LIMIT ..." lines, sorted)
#   setacl FOLDER WHO RIGHTS   getacl FOLDER   append FOLDER N
#   seen FOLDER UID (+FLAGS \Seen)   flags FOLDER ("UID FLAGS" lines, without \Recent)
cyrus_imap() {
	python3 - "$@" <<-'EOF'
	import imaplib, re, sys
	port, user, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
	m = imaplib.IMAP4("127.0.0.1", int(port))
	m.authenticate("PLAIN", lambda _: ("\0%s\0x" % user).encode())
	def ok(r):
	    if r[0] != "OK":
	        raise SystemExit("IMAP %s: %r" % (cmd, r))
	    return r[1]
	q = lambda s: '"%s"' % s
	if cmd == "setquota":
	    ok(m.setquota(q(args[0]), "(%s)" % args[1]))
	elif cmd == "quota":
	    data = ok(m.getquotaroot(q(args[0])))
	    out = []
	    for d in data[1]:
	        d = d.decode() if isinstance(d, bytes) else d
	        mm = re.match(r'^"?([^"(]*?)"? \((.*)\)$', d)
	        if mm:
	            f = mm.group(2).split()
	            for i in range(0, len(f), 3):
	                out.append("%s %s %s" % (mm.group(1), f[i], f[i + 2]))
	    print("\n".join(sorted(out)))
	elif cmd == "setacl":
	    ok(m.setacl(q(args[0]), args[1], args[2]))
	elif cmd == "getacl":
	    d = ok(m.getacl(q(args[0])))[0].decode().split()[1:]
	    print("\n".join(sorted("%s %s" % (d[i], d[i + 1]) for i in range(0, len(d), 2))))
	elif cmd == "append":
	    for i in range(int(args[1])):
	        ok(m.append(q(args[0]), None, None, b"Subject: shared %d\r\n\r\nbody %d\r\n" % (i, i)))
	elif cmd == "seen":
	    ok(m.select(q(args[0])))
	    ok(m.uid("STORE", args[1], "+FLAGS", "(\\Seen)"))
	elif cmd == "flags":
	    ok(m.select(q(args[0]), readonly=True))
	    for d in ok(m.uid("FETCH", "1:*", "(FLAGS)")):
	        d = d.decode()
	        uid = re.search(r"UID (\d+)", d).group(1)
	        fl = sorted(f for f in re.search(r"FLAGS \(([^)]*)\)", d).group(1).split() if f != "\\Recent")
	        print(uid, " ".join(fl))
	m.logout()
	EOF
}

# cyrus_fake_sshd LAB: $TRASH/as-sshd, an --ssh command that runs LAB's
# `chjournal serve` whatever host it is given, as sshd runs the forced
# command of a backup key (t1241 has the real sshd).
cyrus_fake_sshd() {
	cat >"$TRASH/as-sshd" <<-EOF
	#!/bin/sh
	exec "$CHJOURNAL" -c "$CONF" serve -C "$1/imapd.conf"
	EOF
	chmod +x "$TRASH/as-sshd"
}

# cyrus_pull DIR [OPTION...]: `backup --from imap1` through it into DIR
cyrus_pull() {
	_dir=$1
	shift
	env -u CHJOURNAL_CONF "$CHJOURNAL" backup --from imap1 --ssh "$TRASH/as-sshd" --to "$_dir" "$@"
}

# cyrus_pulled_runs DIR USER: how many runs DIR's pulled archive of USER holds
cyrus_pulled_runs() {
	tar -tzif "$1/imap1/$2.tar.gz" | grep -c "^runs/"
}
