# cyrus-lib.sh: helpers for tests against a real Cyrus IMAP server, started
# with ../shared/cyrus-lab/cyrus-lab.sh (sourced after test-lib.sh).
#
#   cyrus_require                 skip_all unless Cyrus and the lab script exist
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
