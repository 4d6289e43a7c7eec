#!/bin/bash
# t1301-debian-package: debian/ builds a package from a copy of the tree
# (dpkg-buildpackage -us -uc -b, out of the source tree), lintian finds no
# error in it, and installed it puts the programs, the manual pages, the
# systemd unit (enabled), /etc/chjournal.conf as a conffile, the contrib
# programs, the hooks and their documentation in place; chjournald -t and
# chjournal --version run; the service runs (under systemd, else chjournald
# by hand on the installed configuration pointed at a temporary root); an
# upgrade (the package installed again) does not stop the daemon: the
# postinst restarts it in place (SIGUSR2; the same pid, no rescan recorded,
# no change lost; debhelper's scripts neither stop nor restart the unit on
# upgrade); remove keeps the configuration and the state, purge removes both.
# The machine is restored whatever happens: the package purged, the daemon
# stopped.
. "$(dirname "$0")/test-lib.sh"

require_root
command -v dpkg-buildpackage >/dev/null 2>&1 ||
	skip_all "no dpkg-buildpackage (apt-get install dpkg-dev debhelper)"
[ -f "$CHJ_SRCDIR/debian/control" ] || skip_all "no debian/ in $CHJ_SRCDIR"
if dpkg-query -W -f='${Status}' chjournal 2>/dev/null | grep -q "installed\|config-files"; then
	skip_all "a chjournal package is installed on this machine: not ours to replace"
fi
[ -e /var/lib/chjournal ] && skip_all "/var/lib/chjournal exists: not ours to remove"
[ -e /etc/chjournal.conf ] && skip_all "/etc/chjournal.conf exists: not ours to replace"

# a copy of the tree: what git tracks and what it would track (not the
# build products it ignores), else everything but build directories
SRC="$TRASH/src/chjournal"
mkdir -p "$SRC"
if git -C "$CHJ_SRCDIR" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$CHJ_SRCDIR" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$SRC")
else
	(cd "$CHJ_SRCDIR" && tar --exclude=./build --exclude='./build-*' --exclude=./debian/chjournal \
	    --exclude=./autom4te.cache -cf - .) | (cd "$SRC" && tar -xf -)
fi
why=$(cd "$SRC" && dpkg-checkbuilddeps 2>&1) || skip_all "build dependencies missing: $why"

DEB="$TRASH/src/chjournal_$(cd "$SRC" && dpkg-parsechangelog -S Version)_$(dpkg --print-architecture).deb"
HAND_PID=

MADE_PIDFILE=

restore_machine() {
	stop_hand_daemon
	[ -z "$MADE_PIDFILE" ] || rm -f /run/chjournald.pid
	if dpkg-query -W -f='${Status}' chjournal 2>/dev/null | grep -q "installed\|config-files\|half"; then
		dpkg_retry --purge chjournal >/dev/null 2>&1
	fi
}
test_cleanup_extra=restore_machine

# dpkg_retry ARGS: dpkg, waiting while another dpkg or apt holds its lock
dpkg_retry() {
	_dr_i=0
	while :; do
		dpkg "$@" >"$TRASH/dpkg.out" 2>&1 && { cat "$TRASH/dpkg.out"; return 0; }
		grep -q "lock" "$TRASH/dpkg.out" || { cat "$TRASH/dpkg.out"; return 1; }
		_dr_i=$((_dr_i + 1))
		[ "$_dr_i" -lt 600 ] || { cat "$TRASH/dpkg.out"; return 1; }
		sleep 0.5
	done
}

expect_success 'dpkg-buildpackage builds the package from a copy of the tree' '
	(cd "$SRC" && DEB_BUILD_OPTIONS="parallel=2" dpkg-buildpackage -us -uc -b) >build.log 2>&1 ||
		{ tail -n 40 build.log; return 1; }
	test -f "$DEB" &&
	# the source tree itself got nothing
	! test -e "$CHJ_SRCDIR/debian/chjournal" &&
	! test -e "$CHJ_SRCDIR/debian/files" &&
	! test -e "$CHJ_SRCDIR/debian/.debhelper"
'

if command -v lintian >/dev/null 2>&1; then
	expect_success 'lintian: no error, no warning' '
		lintian "$TRASH"/src/chjournal_*.changes >lintian.out 2>&1
		sed "s/^/# lintian: /" lintian.out &&
		! grep "^[EW]: " lintian.out
	'
else
	test_skip 'lintian: no error, no warning' 'no lintian'
fi

expect_success 'dpkg -i installs it' '
	dpkg_retry -i "$DEB" >install.out 2>&1 || { cat install.out; return 1; }
	dpkg-query -W -f="\${Status}" chjournal | grep -x "install ok installed"
'

expect_success 'the programs, manual pages, unit, configuration and contrib files are in place' '
	for f in /usr/sbin/chjournald /usr/bin/chjournal /usr/bin/chjournal-incremental \
	    /usr/bin/chjournal-rsync-mirror /usr/bin/chjournal-tar-archive /usr/bin/chjournal-tar-restore \
	    /usr/bin/chjournal-apply-run /usr/bin/chjournal-apply-merged /usr/bin/chjournal-cyrus-restore-folder \
	    /usr/share/chjournal/netbackup/bpstart_notify /usr/share/chjournal/netbackup/bpend_notify \
	    /usr/share/chjournal/bacula/chjournal-bacula-list /usr/share/chjournal/bacula/chjournal-bacula-end \
	    /usr/share/chjournal/bacula/chjournal-bacula-restore; do
		test -x "$f" || { echo "not executable: $f"; return 1; }
	done &&
	for f in /usr/share/man/man1/chjournal.1.gz /usr/share/man/man8/chjournald.8.gz \
	    /usr/share/man/man5/chjournal.conf.5.gz /usr/share/man/man1/chjournal-incremental.1.gz \
	    /usr/share/man/man1/chjournal-cyrus-restore-folder.1.gz /usr/share/man/man1/chjournal-apply-merged.1.gz \
	    /lib/systemd/system/chjournald.service /etc/logrotate.d/chjournal \
	    /usr/share/bash-completion/completions/chjournal /usr/share/bash-completion/completions/chjournald \
	    /usr/share/doc/chjournal/README.gz /usr/share/doc/chjournal/copyright \
	    /usr/share/doc/chjournal/cron/README.gz /usr/share/doc/chjournal/netbackup/README.gz \
	    /usr/share/doc/chjournal/bacula/README.gz /usr/share/doc/chjournal/cyrus/README.gz \
	    /usr/share/doc/chjournal/examples/chjournal.cron /usr/share/doc/chjournal/examples/bacula-dir-snippet.conf; do
		test -e "$f" || { echo "missing: $f"; return 1; }
	done &&
	dpkg-query -W -f="\${Conffiles}\n" chjournal >conffiles &&
	grep "^ /etc/chjournal.conf " conffiles &&
	grep "^ /etc/logrotate.d/chjournal " conffiles &&
	grep -q "^pending_limit\|^#pending_limit" /etc/chjournal.conf &&
	grep -x "ExecReload=/usr/sbin/chjournald -t -q" /lib/systemd/system/chjournald.service &&
	# enabled: deb-systemd-helper made the link, systemd running or not
	test -L /etc/systemd/system/multi-user.target.wants/chjournald.service &&
	MANWIDTH=80 man chjournal-incremental 2>/dev/null | grep -q "chjournal-incremental" &&
	bash -c ". /usr/share/bash-completion/completions/chjournal && complete -p chjournal" &&
	logrotate -d /etc/logrotate.d/chjournal >/dev/null 2>&1
'

expect_success 'chjournald -t and chjournal --version run' '
	chjournal --version | grep -x "chjournal [0-9.]*" &&
	chjournald --version | grep -x "chjournald [0-9.]*" &&
	chjournald -t >t.out 2>&1; rc=$?
	cat t.out &&
	# the example root (/var/spool/imap) may be missing here: a warning
	test "$rc" -eq 0 &&
	grep "^chjournald: test of ./etc/chjournal.conf. passed" t.out
'

if [ -d /run/systemd/system ]; then
	expect_success 'under systemd the service runs, reloads and answers status' '
		wait_for 30 systemctl is-active --quiet chjournald &&
		wait_for 30 sh -c "chjournal status | grep -q \"^daemon: *running\"" &&
		systemctl reload chjournald &&
		systemctl is-active --quiet chjournald
	'
else
	expect_success 'no systemd here: chjournald by hand, the installed configuration on a temporary root' '
		mkdir -p "$TRASH/root/u" &&
		sed "s|^root = .*|root = $TRASH/root|" /etc/chjournal.conf >hand.conf &&
		grep -x "root = $TRASH/root" hand.conf || return 1
		# alone: "a && b &" would put the whole list in the background
		/usr/sbin/chjournald -c "$TRASH/hand.conf" -v 2>hand.log &
		HAND_PID=$!
		wait_for 30 grep -q "ready:" hand.log &&
		test -f /var/lib/chjournal/journal.db &&
		chjournal -c "$TRASH/hand.conf" begin pkgtest >mode.out &&
		grep "^full:" mode.out &&
		chjournal -c "$TRASH/hand.conf" commit pkgtest &&
		echo x >"$TRASH/root/u/1." &&
		chjournal -c "$TRASH/hand.conf" begin pkgtest &&
		chjournal -c "$TRASH/hand.conf" list pkgtest >list.out &&
		echo "$TRASH/root/u/1." >expect &&
		test_cmp expect list.out &&
		chjournal -c "$TRASH/hand.conf" commit pkgtest &&
		chjournal -c "$TRASH/hand.conf" status | grep "^daemon: *running (pid $HAND_PID," &&
		kill -TERM "$HAND_PID" && wait "$HAND_PID" && HAND_PID= &&
		test -f /var/lib/chjournal/consumers/pkgtest
	'
fi

# a daemon left running by a failed test above would write the state again
stop_hand_daemon() {
	if [ -n "$HAND_PID" ] && kill -0 "$HAND_PID" 2>/dev/null; then
		kill -TERM "$HAND_PID"
		wait "$HAND_PID" 2>/dev/null
	fi
	HAND_PID=
}

expect_success 'debhelper neither stops nor restarts the unit on upgrade; it stops it on remove' '
	info=/var/lib/dpkg/info &&
	! grep -n "deb-systemd-invoke.*restart\|_dh_action=restart" "$info/chjournal.postinst" &&
	grep -q "restart_in_place" "$info/chjournal.postinst" &&
	! grep -s -n "deb-systemd-invoke stop" "$info/chjournal.preinst" &&
	grep -n "deb-systemd-invoke stop" "$info/chjournal.prerm" >stop.lines &&
	grep -q "\"\$1\" = remove" "$info/chjournal.prerm"
'

# up_rescans: the rescan records of a start in the journal (a stop and start)
up_rescans() {
	chjournal -c "$TRASH/up.conf" query | grep -c "daemon was not running" || :
}

if [ -d /run/systemd/system ]; then
	expect_success 'an upgrade restarts the unit in place: the same main pid, no rescan, no change lost' '
		mkdir -p "$TRASH/root/u" &&
		cp /etc/chjournal.conf "$TRASH/up.conf" &&
		wait_for 30 sh -c "chjournal status | grep -q \"^daemon: *running\"" &&
		pid0=$(systemctl show -p MainPID --value chjournald) &&
		r0=$(up_rescans) &&
		dpkg_retry -i "$DEB" >upgrade.out 2>&1 || { cat upgrade.out; return 1; }
		grep "restarted in place" upgrade.out &&
		wait_for 30 sh -c "journalctl -u chjournald | grep -q \"restarted in place\"" &&
		test "$(systemctl show -p MainPID --value chjournald)" = "$pid0" &&
		wait_for 30 sh -c "chjournal status | grep -q \"^daemon: *running\"" &&
		test "$(up_rescans)" = "$r0"
	'
elif [ -e /run/chjournald.pid ]; then
	test_skip 'an upgrade restarts the daemon of /run/chjournald.pid in place' \
		'/run/chjournald.pid exists: not ours to replace'
else
	expect_success 'an upgrade restarts the daemon of /run/chjournald.pid in place: the same pid, no rescan, no change lost' '
		mkdir -p "$TRASH/root/u" &&
		sed "s|^root = .*|root = $TRASH/root|" /etc/chjournal.conf >"$TRASH/up.conf" || return 1
		MADE_PIDFILE=1
		# alone: "a && b &" would put the whole list in the background
		/usr/sbin/chjournald -c "$TRASH/up.conf" --pidfile /run/chjournald.pid 2>up.log &
		HAND_PID=$!
		wait_for 30 grep -q "ready:" up.log &&
		wait_for 30 test -s /run/chjournald.pid &&
		chjournal -c "$TRASH/up.conf" begin uptest >/dev/null &&
		chjournal -c "$TRASH/up.conf" list uptest >/dev/null &&
		chjournal -c "$TRASH/up.conf" commit uptest &&
		r0=$(up_rescans) &&
		echo before >"$TRASH/root/u/before." &&
		dpkg_retry -i "$DEB" >upgrade.out 2>&1 || { cat upgrade.out; return 1; }
		cat upgrade.out &&
		grep "chjournald: restarted in place (SIGUSR2, pid $HAND_PID)" upgrade.out &&
		wait_for 30 grep -q "restarted in place" up.log &&
		kill -0 "$HAND_PID" &&
		wait_for 30 sh -c "chjournal -c \"$TRASH/up.conf\" status | grep -q \"^daemon: *running (pid $HAND_PID,\"" &&
		echo after >"$TRASH/root/u/after." &&
		chjournal -c "$TRASH/up.conf" begin uptest >mode.out &&
		grep -x incremental mode.out &&
		chjournal -c "$TRASH/up.conf" list uptest >list.out &&
		printf "%s\n" "$TRASH/root/u/after." "$TRASH/root/u/before." >expect &&
		test_cmp expect list.out &&
		chjournal -c "$TRASH/up.conf" commit uptest &&
		test "$(up_rescans)" = "$r0" &&
		kill -TERM "$HAND_PID" && wait "$HAND_PID" && HAND_PID= &&
		rm -f /run/chjournald.pid
	'
fi

expect_success 'dpkg -r removes the programs, keeps the configuration and the state' '
	stop_hand_daemon &&
	dpkg_retry -r chjournal >remove.out 2>&1 || { cat remove.out; return 1; }
	! test -e /usr/sbin/chjournald &&
	! test -e /usr/bin/chjournal &&
	! test -e /lib/systemd/system/chjournald.service &&
	test -f /etc/chjournal.conf &&
	test -d /var/lib/chjournal
'

expect_success 'dpkg --purge removes the configuration and the state' '
	dpkg_retry --purge chjournal >purge.out 2>&1 || { cat purge.out; return 1; }
	! test -e /etc/chjournal.conf &&
	! test -e /etc/logrotate.d/chjournal &&
	! test -e /var/lib/chjournal &&
	! test -e /etc/systemd/system/multi-user.target.wants/chjournald.service &&
	! dpkg-query -W -f="\${Status}" chjournal 2>/dev/null | grep -q "installed\|config-files"
'

test_done
